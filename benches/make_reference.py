#!/usr/bin/env python3
"""Write a reference file for `verify --reference` benchmarks (never committed): transformers'
outputs for a converted model directory on seeded inputs.

Runs in the TF1 fixture environment (fixtures/requirements.txt: torch 2.15.0, transformers 4.57.6).

    /path/to/python benches/make_reference.py MODEL_DIR OUT.safetensors [--batch 4] [--seq 128]

Inputs: numpy default_rng(0) ids in [0, vocab_size); the last row's final quarter padded (id 0,
attention_mask 0); token_type_ids 1 on the second half. Outputs: `logits` (ElectraForPreTraining,
ElectraForMaskedLM) or `last_hidden_state` (ElectraModel), float32, eval mode, no grad, one thread.
"""

import argparse

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import AutoConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel

CLASSES = {
    "ElectraForPreTraining": ElectraForPreTraining,
    "ElectraForMaskedLM": ElectraForMaskedLM,
    "ElectraModel": ElectraModel,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("out")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = AutoConfig.from_pretrained(args.model_dir)
    cls = CLASSES[config.architectures[0]]
    model = cls.from_pretrained(args.model_dir).eval()

    b, s = args.batch, args.seq
    rng = np.random.default_rng(0)
    ids = rng.integers(0, config.vocab_size, size=(b, s), dtype=np.int64)
    mask = np.ones((b, s), dtype=np.int64)
    pad_from = s - s // 4
    ids[b - 1, pad_from:] = 0
    mask[b - 1, pad_from:] = 0
    types = np.zeros((b, s), dtype=np.int64)
    types[:, s // 2:] = 1
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types),
        )
    name = "last_hidden_state" if cls is ElectraModel else "logits"
    value = getattr(out, name).numpy().astype(np.float32)
    save_file(
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, name: value},
        args.out,
    )
    print(args.out, name, value.shape)


if __name__ == "__main__":
    main()
