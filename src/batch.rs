//! Batch conversion driven by a TOML/JSON manifest.
