//! Pure-Rust reader of TensorFlow V2 checkpoints (tensor bundles): .index SSTable + .data shards.
