//! ELECTRA forward pass in candle and the parity checks built on it.
