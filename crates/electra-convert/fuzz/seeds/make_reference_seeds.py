"""Write the seed inputs of the `reference` fuzz target into crates/electra-convert/fuzz/seeds/reference/.

Run from the repository root: .venv/bin/python crates/electra-convert/fuzz/seeds/make_reference_seeds.py
Every seed starts with the target's mode byte (0 npy, 1 npz, 2 zip members, 3 reference bytes).
The fixture references are copied as they are (the smallest ones: the discriminator's); the
rest are crafted here, small, to cover what the fixtures do not (npy 2.0/3.0 headers, int32,
float64, scalars, compressed npz, f16/bf16 safetensors, near-misses of the validation).
"""

import io
import os
import struct
import zipfile

import numpy as np
from safetensors.numpy import save

OUT = "crates/electra-convert/fuzz/seeds/reference"
FIX = "fixtures/electra/released/expected"


def put(name, mode, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([mode]) + data)


def npy(a, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, a)
    else:
        np.lib.format.write_array(buf, a, version=version)
    return buf.getvalue()


def npz(arrays, compressed=False):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def members(entries, flags=0):
    out = bytes([flags])
    for name, data in entries:
        n = name.encode()
        out += bytes([len(n)]) + n + struct.pack("<H", len(data)) + data
    return out


os.makedirs(OUT, exist_ok=True)

# The fixtures, as written by generate.py.
put("fixture-disc.npz", 1, open(f"{FIX}/discriminator/reference.npz", "rb").read())
put("fixture-disc.safetensors", 3, open(f"{FIX}/discriminator/reference.safetensors", "rb").read())
with zipfile.ZipFile(f"{FIX}/discriminator/reference.npz") as z:
    fixture_members = {m: z.read(m) for m in z.namelist()}
for m in ("input_ids.npy", "logits.npy"):
    put(f"fixture-{m}", 0, fixture_members[m])
put("fixture-disc-members", 2, members(sorted(fixture_members.items())))

# A tiny valid reference: batch 1, sequence 2, hidden 3.
ids = np.array([[5, 7]], dtype=np.int64)
mask = np.array([[1, 1]], dtype=np.int64)
types = np.array([[0, 1]], dtype=np.int64)
hidden = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
logits = np.array([[0.5, -0.5]], dtype=np.float32)
tiny = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
        "last_hidden_state": hidden}

put("npy-v1-i8.npy", 0, npy(ids))
put("npy-v2-f4.npy", 0, npy(hidden, version=(2, 0)))
put("npy-v3-f8.npy", 0, npy(hidden.astype(np.float64), version=(3, 0)))
put("npy-i4-scalar.npy", 0, npy(np.array(3, dtype=np.int32)))
put("npy-empty.npy", 0, npy(np.zeros((0, 4), dtype=np.float32)))

put("tiny.npz", 1, npz(tiny))
put("tiny-compressed.npz", 1, npz({"input_ids": ids.astype(np.int32), "logits": logits},
                                   compressed=True))
put("tiny-members", 2, members([(k + ".npy", npy(v)) for k, v in tiny.items()]))
put("tiny-members-deflate-dir", 2,
    members([("input_ids.npy", npy(ids)), ("logits.npy", npy(logits.astype(np.float64)))],
            flags=3))
# Near misses: a member that is not .npy, a duplicate name, a header that lies about its size.
put("members-not-npy", 2, members([("input_ids.npy", npy(ids)), ("notes.txt", b"hi")]))
lying = npy(np.zeros(2, dtype=np.int64))[:-8]
put("members-lying-size", 2, members([("input_ids.npy", lying)]))

put("tiny.safetensors", 3, save(tiny))
put("tiny-f16.safetensors", 3, save({"input_ids": ids.astype(np.int32),
                                      "logits": logits.astype(np.float16)}))
put("tiny-f64-no-mask.safetensors", 3, save({"input_ids": ids,
                                              "last_hidden_state": hidden.astype(np.float64)}))
put("no-outputs.safetensors", 3, save({"input_ids": ids}))

# Regression (see crates/electra-convert/fuzz/README.md): a safetensors file whose header length starts with "PK".
pk = save({"input_ids": np.array([[3]], dtype=np.int64),
           "logits": np.array([[0.25]], dtype=np.float32)})
n = struct.unpack("<Q", pk[:8])[0]
header = pk[8:8 + n].rstrip(b" ") + b" " * (0x4B50 - len(pk[8:8 + n].rstrip(b" ")))
put("regression-pk-safetensors", 3, struct.pack("<Q", len(header)) + header + pk[8 + n:])
