"""PyTorch side of the forward-pass benchmark (see benches/forward.rs and docs/performance.md).

ElectraForPreTraining from transformers at ELECTRA-base shapes, random weights, eval mode,
torch.no_grad(), float32 on the CPU, the same batch layout as the candle bench (8 x 128, the
last row's final quarter padded, two segments).

    .venv/bin/python benches/forward_torch.py --threads 2

transformers 4.57.6 has only the eager attention for ELECTRA (asking for "sdpa" raises
"ElectraForPreTraining does not support an attention implementation through
torch.nn.functional.scaled_dot_product_attention yet"), so that is what runs.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("USE_TF", "0")  # transformers would otherwise import TensorFlow too

import torch  # noqa: E402
from transformers import ElectraConfig, ElectraForPreTraining  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = ElectraConfig(
        vocab_size=30522,
        embedding_size=768,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
    )
    t = time.perf_counter()
    model = ElectraForPreTraining(config).eval()
    build = time.perf_counter() - t

    b, s = args.batch, args.seq
    ids = torch.randint(0, config.vocab_size, (b, s))
    mask = torch.ones(b, s, dtype=torch.long)
    pad_from = s - s // 4
    mask[-1, pad_from:] = 0
    ids[-1, pad_from:] = 0
    types = torch.zeros(b, s, dtype=torch.long)
    types[:, s // 2 :] = 1

    times = []
    checksum = 0.0
    with torch.no_grad():
        for _ in range(2):
            model(input_ids=ids, attention_mask=mask, token_type_ids=types)
        cpu_start = time.process_time()
        for _ in range(args.iters):
            t = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
            times.append(time.perf_counter() - t)
            checksum += float(out.logits.sum())
        cpu = (time.process_time() - cpu_start) / args.iters
    times.sort()
    print(
        f"torch {torch.__version__} forward ElectraForPreTraining base b{b} s{s} "
        f"threads={args.threads} attn=eager: median {statistics.median(times) * 1e3:.1f} ms, "
        f"min {times[0] * 1e3:.1f} ms, max {times[-1] * 1e3:.1f} ms over {args.iters} runs, "
        f"CPU time {cpu * 1e3:.1f} ms per run "
        f"(build {build:.1f} s, checksum {checksum:.4f})"
    )


if __name__ == "__main__":
    main()
