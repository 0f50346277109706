//! Fuzz target `keras_metadata`: the reader of a SavedModel's `keras_metadata.pb`
//! (`source::keras_metadata`), untrusted bytes from a downloaded model.
//!
//! The first input byte picks the entry point (`mode % 2`), the rest is its input:
//!
//! - 0: the bytes as a whole `keras_metadata.pb`: `decode`, then `encoder` and the activation and
//!   class checks on what it found;
//! - 1: the bytes as the JSON metadata of a `root.layer_with_weights-0` node, wrapped in a valid
//!   `SavedMetadata` (so the JSON side is reached on every input).
//!
//! Besides "no panic, no sanitizer report", the target asserts what success promises: a
//! message that decodes also decodes when repeated (protobuf's repeated-field concatenation)
//! into twice the nodes, equal pairwise, and a wrapped node decodes back to what was wrapped.

#![no_main]

use electra_convert::source::keras_metadata::{decode, encoder, hidden_act, is_bert_encoder};
use libfuzzer_sys::fuzz_target;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(out: &mut Vec<u8>, num: u64, bytes: &[u8]) {
    varint(out, num << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn check(buf: &[u8]) {
    let Ok(nodes) = decode(buf) else {
        return;
    };
    if let Some(e) = encoder(&nodes) {
        let _ = is_bert_encoder(&e.class_name);
        if let Some(act) = &e.inner_activation {
            let _ = hidden_act(act);
        }
    }
    let twice = [buf, buf].concat();
    let again = decode(&twice).expect("a decodable message repeated decodes");
    assert_eq!(again.len(), 2 * nodes.len());
    assert_eq!(&again[..nodes.len()], &nodes[..]);
    assert_eq!(&again[nodes.len()..], &nodes[..]);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 2 {
        0 => check(rest),
        _ => {
            let Ok(json) = std::str::from_utf8(rest) else {
                return;
            };
            let mut object = Vec::new();
            varint(&mut object, 2 << 3);
            varint(&mut object, 4);
            field(&mut object, 3, b"root.layer_with_weights-0");
            field(&mut object, 4, b"_tf_keras_layer");
            field(&mut object, 5, json.as_bytes());
            let mut buf = Vec::new();
            field(&mut buf, 1, &object);
            let nodes = decode(&buf).expect("a well-formed message decodes");
            assert_eq!(nodes.len(), 1);
            assert_eq!(nodes[0].metadata, json);
            assert_eq!(nodes[0].node_id, 4);
            check(&buf);
        }
    }
});
