#!/usr/bin/env python3
"""Seeds for the `zip` target (any Python 3, run from the repository root; deterministic).

    python3 crates/electra-convert/fuzz/seeds/make_zip_seeds.py [RAW_DIR]

Modes 1 and 2 (committed, seeds/zip/): member descriptions that build small checkpoint archives
(see fuzz_targets/zip.rs for the layout). Mode 0 (the archives as they are, `raw-*`): every zip
of fixtures/forms/zip/hostile/ under 16 KB, written to RAW_DIR (default
crates/electra-convert/fuzz/corpus/zip, git-ignored) rather than committed, since the fixtures
already are.
"""
import glob
import os
import struct
import sys

ROOT = os.getcwd()
HOSTILE = os.path.join(ROOT, "fixtures", "forms", "zip", "hostile")
RELEASED = os.path.join(ROOT, "fixtures", "electra", "released")
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "zip")
RAW = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "corpus", "zip")
NAMES = ["checkpoint", "x.index", "x.data-00000-of-00001", "x.data-00000-of-00002",
         "x.data-00001-of-00002", "vocab.txt", "m/", "m/checkpoint", "m/x.index",
         "m/x.data-00000-of-00001", "m/y.index", "m/n/checkpoint", "m/n/x.index",
         "m/n/x.data-00000-of-00001", "m/vocab.txt", "../x.index", "x.meta", "y.index"]


def member(name, data, method):
    tag = NAMES.index(name) if name in NAMES else None
    head = bytes([tag]) if tag is not None else bytes([0x80 | len(name)]) + name.encode()
    return head + struct.pack("<H", len(data)) + data + bytes([method])


def state(prefix):
    return f'model_checkpoint_path: "{prefix}"\nall_model_checkpoint_paths: "{prefix}"\n'.encode()


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(RAW, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(HOSTILE, "*.zip"))):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) <= 16 * 1024:
            with open(os.path.join(RAW, "raw-" + os.path.basename(path)[:-4]), "wb") as f:
                f.write(b"\x00" + data)
    with open(os.path.join(RELEASED, "electra_tiny.index"), "rb") as f:
        index = f.read()
    with open(os.path.join(RELEASED, "electra_tiny.data-00000-of-00001"), "rb") as f:
        shard = f.read(1500) + bytes(1500)
    layouts = {
        "released": [("m/", b"", 0), ("m/checkpoint", state("x"), 1), ("m/x.index", index, 1),
                     ("m/x.data-00000-of-00001", shard, 1), ("m/vocab.txt", b"[PAD]\n[UNK]\n", 1)],
        "stored": [("x.index", index[:600], 0), ("x.data-00000-of-00001", shard, 0)],
        "two-shards": [("x.index", b"i", 1), ("x.data-00000-of-00002", shard[:100], 1),
                       ("x.data-00001-of-00002", shard[100:300], 0)],
        "nested": [("m/n/checkpoint", state("../n/x"), 0), ("m/n/x.index", b"idx", 1),
                   ("m/n/x.data-00000-of-00001", shard[:64], 2 | 1), ("m/vocab.txt", b"a\n", 0)],
        "two": [("m/x.index", b"a", 1), ("m/y.index", b"b", 1), ("weird name#1.index", b"c", 0)],
    }
    for name, members in layouts.items():
        body = b"".join(member(n, d, m) for n, d, m in members)
        write(f"built-{name}", b"\x01" + body)
        # The same with the other selectors (mode / 8 % 5); the two larger layouts with one.
        for sel in (range(1, 2) if len(body) > 1000 else range(1, 5)):
            mode = next(b for b in range(256) if b % 3 == 1 and b // 8 % 5 == sel)
            write(f"built-{name}-sel{sel}", bytes([mode]) + body)
        # Mode 2: the same, then three header patches (local method, a size byte, the EOCD count).
        write(f"patched-{name}", b"\x02" + body + b"\xff" + struct.pack("<HB", 8, 0)
              + struct.pack("<HB", 20, 7) + struct.pack("<HB", 0xFFF0, 1))


if __name__ == "__main__":
    main()
