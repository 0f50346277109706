#!/usr/bin/env python3
"""Write an ELECTRA-sized pretraining checkpoint for the benchmarks (never committed).

Runs in the TF1 fixture environment (fixtures/requirements.txt). Sizes (--size):

- base (default): google-research/electra's base model: vocab 30522, hidden 768, 12 layers, FFN 3072,
  512 positions, a generator of hidden 256 / FFN 1024 / 12 layers with its own embeddings_project.
  About 1.5 GB on disk with Adam slots.
- large: ELECTRA-large's shapes: embedding and hidden 1024, 24 layers, FFN 4096, 16 heads, and a
  generator of hidden 256 / FFN 1024 / 24 layers (generator_hidden_size 0.25, as released). About
  1.5 GB without Adam slots, 4.4 GB with them.

Both heads and global_step are always written; Adam slots (adam_m, adam_v for every trainable
variable) unless --no-slots.

    /path/to/python benches/make_base_checkpoint.py bench-data/base
    /path/to/python benches/make_base_checkpoint.py --size large --no-slots bench-data/large

Values come from TensorFlow's own seeded initializers inside the graph (no giant constants in the
GraphDef), written by tf.compat.v1.train.Saver exactly as a pretraining run would write them.
"""

import argparse
import os

try:
    # torch before tensorflow: with both installed they crash the other way round. The checkpoint
    # itself needs only TensorFlow, so a TensorFlow-only environment works too.
    import torch  # noqa: F401
except ImportError:
    pass
import tensorflow as tf

V, P, T = 30522, 512, 2
SIZES = {
    # E, H, L, I, generator H, L, I
    "base": (768, 768, 12, 3072, 256, 12, 1024),
    "large": (1024, 1024, 24, 4096, 256, 24, 1024),
}
STEP = 766000


def tower(scope, emb_width, hidden, ffn, layers, with_embeddings):
    shapes = {}
    if with_embeddings:
        shapes["electra/embeddings/word_embeddings"] = [V, emb_width]
        shapes["electra/embeddings/token_type_embeddings"] = [T, emb_width]
        shapes["electra/embeddings/position_embeddings"] = [P, emb_width]
        shapes["electra/embeddings/LayerNorm/gamma"] = [emb_width]
        shapes["electra/embeddings/LayerNorm/beta"] = [emb_width]
    if emb_width != hidden:
        shapes[f"{scope}/embeddings_project/kernel"] = [emb_width, hidden]
        shapes[f"{scope}/embeddings_project/bias"] = [hidden]
    for i in range(layers):
        p = f"{scope}/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            shapes[f"{p}/attention/self/{part}/kernel"] = [hidden, hidden]
            shapes[f"{p}/attention/self/{part}/bias"] = [hidden]
        shapes[f"{p}/attention/output/dense/kernel"] = [hidden, hidden]
        shapes[f"{p}/attention/output/dense/bias"] = [hidden]
        shapes[f"{p}/attention/output/LayerNorm/gamma"] = [hidden]
        shapes[f"{p}/attention/output/LayerNorm/beta"] = [hidden]
        shapes[f"{p}/intermediate/dense/kernel"] = [hidden, ffn]
        shapes[f"{p}/intermediate/dense/bias"] = [ffn]
        shapes[f"{p}/output/dense/kernel"] = [ffn, hidden]
        shapes[f"{p}/output/dense/bias"] = [hidden]
        shapes[f"{p}/output/LayerNorm/gamma"] = [hidden]
        shapes[f"{p}/output/LayerNorm/beta"] = [hidden]
    return shapes


def base_shapes(size):
    E, H, L, I, HG, LG, IG = SIZES[size]
    shapes = tower("electra", E, H, I, L, with_embeddings=True)
    shapes.update(tower("generator", E, HG, IG, LG, with_embeddings=False))
    shapes["discriminator_predictions/dense/kernel"] = [H, H]
    shapes["discriminator_predictions/dense/bias"] = [H]
    shapes["discriminator_predictions/dense_1/kernel"] = [H, 1]
    shapes["discriminator_predictions/dense_1/bias"] = [1]
    shapes["generator_predictions/dense/kernel"] = [HG, E]
    shapes["generator_predictions/dense/bias"] = [E]
    shapes["generator_predictions/LayerNorm/gamma"] = [E]
    shapes["generator_predictions/LayerNorm/beta"] = [E]
    shapes["generator_predictions/output_bias"] = [V]
    return shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="bench-data/base")
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--no-slots", action="store_true", help="no adam_m / adam_v variables")
    args = parser.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    shapes = base_shapes(args.size)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        for seed, name in enumerate(sorted(shapes)):
            leaf = name.rsplit("/", 1)[-1]
            if leaf == "gamma":
                init = tf.compat.v1.random_normal_initializer(1.0, 0.05, seed=seed)
            else:
                init = tf.compat.v1.truncated_normal_initializer(stddev=0.02, seed=seed)
            tf.compat.v1.get_variable(name, shape=shapes[name], initializer=init)
            for slot in () if args.no_slots else ("adam_m", "adam_v"):
                tf.compat.v1.get_variable(
                    f"{name}/{slot}", shape=shapes[name], trainable=False,
                    initializer=tf.compat.v1.random_normal_initializer(0.0, 1e-3, seed=seed + 100000))
        step = tf.compat.v1.train.get_or_create_global_step()
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(step.assign(STEP))
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        path = saver.save(sess, os.path.join(out, "model.ckpt"), global_step=STEP, write_meta_graph=False)
    print(path)


if __name__ == "__main__":
    main()
