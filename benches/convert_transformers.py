#!/usr/bin/env python3
"""The Python path we compare against: transformers 4.57.6's own ELECTRA conversion of the benchmark
checkpoint (load_tf_weights_in_electra into ElectraForPreTraining, then save_pretrained as safetensors).

    /usr/bin/time -v /path/to/python benches/convert_transformers.py bench-data/base/model.ckpt-766000 OUT

Run by benches/convert.sh, which records its wall time and peak RSS next to electra-convert's.
"""

import sys

import torch  # noqa: F401  (torch before tensorflow)
import transformers
from transformers import ElectraConfig, ElectraForPreTraining, load_tf_weights_in_electra

import tensorflow  # noqa: F401,E402  (the loader imports it; import it after transformers' models)


def main():
    ckpt, out = sys.argv[1], sys.argv[2]
    transformers.logging.set_verbosity_error()
    config = ElectraConfig(
        vocab_size=30522, embedding_size=768, hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
        type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
    )
    model = ElectraForPreTraining(config)
    load_tf_weights_in_electra(model, config, ckpt, discriminator_or_generator="discriminator")
    model.save_pretrained(out, safe_serialization=True)


if __name__ == "__main__":
    main()
