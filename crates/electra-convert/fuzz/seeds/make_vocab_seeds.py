#!/usr/bin/env python3
"""Seeds of the `vocab` fuzz target, from the tokenizer fixtures (run from crates/electra-convert/fuzz/; any Python 3).

mode 0: [0][flags][u16 LE n][vocab.txt][text]; mode 1: [1][u16 LE n][vocab.txt][tokenizer_config.json].
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TOK = os.path.join(HERE, "..", "..", "..", "..", "fixtures", "hfdir", "tokenizer")
OUT = os.path.join(HERE, "vocab")

texts = json.load(open(os.path.join(TOK, "texts.json"), encoding="utf-8"))
sample = [texts["agree"][i] for i in (0, 4, 7, 10, 19)] + texts["diverge"]
os.makedirs(OUT, exist_ok=True)
for name, flags in [("lower_plain", 0b111), ("lower_accented", 0b101), ("cased", 0b100), ("missing_specials", 0b111)]:
    vocab = open(os.path.join(TOK, name + ".txt"), "rb").read()
    for i, text in enumerate(sample[:3]):
        data = bytes([0, flags]) + struct.pack("<H", len(vocab)) + vocab + text.encode("utf-8")
        open(os.path.join(OUT, f"{name}-m0-{i}"), "wb").write(data)
    config = json.dumps({"do_lower_case": bool(flags & 1), "strip_accents": None,
                         "tokenize_chinese_chars": True}).encode()
    open(os.path.join(OUT, f"{name}-m1"), "wb").write(bytes([1]) + struct.pack("<H", len(vocab)) + vocab + config)
dup = b"[UNK]\nthe\nof\nthe\n"
open(os.path.join(OUT, "repeat-m0"), "wb").write(bytes([0, 1]) + struct.pack("<H", len(dup)) + dup + b"the of")
