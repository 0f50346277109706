//! Streaming, atomic writer of a complete HuggingFace model directory.
