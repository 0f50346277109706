#!/usr/bin/env python3
"""Write a Model-Garden-shaped ELECTRA-base pretraining checkpoint for the conversion benchmark
(never committed): TensorFlow Model Garden's own ElectraPretrainer (tf-models-official 2.20,
functional BertEncoder towers), saved as its trainer saves (tf.train.Checkpoint(global_step,
model, optimizer, encoder) through a CheckpointManager) after one AdamWeightDecay step, so the
`.OPTIMIZER_SLOT/optimizer/{m,v}` slots exist. About 1.3 GB on disk.

Sizes match benches/make_base_checkpoint.py's Google TF1 base checkpoint: vocab 30522, hidden 768,
12 layers of 12 heads, FFN 3072, 512 positions; generator hidden 256 (4 heads), FFN 1024, 12 layers,
projecting the shared 768-wide word table. Weights are seeded random normals.

    /work/venvs/mg/bin/python benches/make_model_garden_checkpoint.py bench-data/model-garden
"""

import os
import sys

import numpy as np
import tensorflow as tf
from official.modeling import tf_utils
from official.modeling.optimization import legacy_adamw
from official.nlp.modeling import models, networks

V, P, T = 30522, 512, 2
H, L, N, I = 768, 12, 12, 3072
HG, LG, NG, IG = 256, 12, 4, 1024
STEP = 766000


def main(out_dir):
    tf.random.set_seed(0)
    disc = networks.BertEncoder(
        vocab_size=V, hidden_size=H, num_layers=L, num_attention_heads=N, intermediate_size=I,
        max_sequence_length=P, type_vocab_size=T, dict_outputs=True)
    gen = networks.BertEncoder(
        vocab_size=V, hidden_size=HG, num_layers=LG, num_attention_heads=NG, intermediate_size=IG,
        max_sequence_length=P, type_vocab_size=T, embedding_width=H,
        embedding_layer=disc.get_embedding_layer(), dict_outputs=True)
    model = models.ElectraPretrainer(
        generator_network=gen, discriminator_network=disc, vocab_size=V, num_classes=2,
        num_token_predictions=4, mlm_activation=tf_utils.get_activation("gelu"),
        tie_embeddings=True)
    seq = 8
    batch = dict(
        input_word_ids=tf.ones((1, seq), tf.int32), input_mask=tf.ones((1, seq), tf.int32),
        input_type_ids=tf.zeros((1, seq), tf.int32),
        masked_lm_positions=tf.constant([[1, 2, 3, 4]]),
        masked_lm_ids=tf.constant([[5, 6, 7, 8]]))
    model(batch)
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:
        v.assign(rng.standard_normal(v.shape.as_list(), dtype=np.float32) * 0.02)
    optimizer = legacy_adamw.AdamWeightDecay(learning_rate=1e-4)
    with tf.GradientTape() as tape:
        out = model(batch)
        loss = tf.reduce_mean(out["disc_logits"]) + tf.reduce_mean(out["lm_outputs"])
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(
        [(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
    global_step = tf.Variable(STEP, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(global_step=global_step, model=model, optimizer=optimizer,
                               **model.checkpoint_items)
    manager = tf.train.CheckpointManager(ckpt, out_dir, max_to_keep=1, step_counter=global_step)
    print(manager.save(checkpoint_number=STEP))


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    main(sys.argv[1])
