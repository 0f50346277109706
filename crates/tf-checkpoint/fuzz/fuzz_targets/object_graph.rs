//! Fuzz target `object_graph`: the `TrackableObjectGraph` decoder of TF2 checkpoints and the path
//! resolution built on it.
//!
//! Mode byte 0: the rest is the serialized proto, decoded directly. Mode 1: the rest is wrapped
//! as the one element of a `_CHECKPOINTABLE_OBJECT_GRAPH` string tensor in a single-shard bundle
//! and read back through `Checkpoint::object_graph` (so the string-tensor framing and CRCs are
//! right and the proto decoder is what the mutation reaches).
//!
//! Asserted on success: every edge and slot points at an existing node; every node's
//! breadth-first discovery path walks back to a node; `resolve` of a discovery path that leads
//! to a variable returns that node's key; nothing hangs on cycles.

#![no_main]

use tf_checkpoint::{testing, Checkpoint, DType, ObjectGraph};
use libfuzzer_sys::fuzz_target;

fn check(graph: &ObjectGraph) {
    let n = graph.nodes().len();
    assert!(n >= 1);
    for node in graph.nodes() {
        for c in &node.children {
            assert!(c.node < n);
        }
        for s in &node.slot_variables {
            assert!(s.original < n && s.slot < n);
        }
    }
    let _ = graph.root_edges();
    for (id, path) in graph.discovery_paths().iter().enumerate() {
        let Some(path) = path else { continue };
        let reached = graph
            .walk_segments(path.iter().map(String::as_str))
            .expect("a discovery path walks");
        // With duplicate edge names the walk may pick another node; with unique ones it is `id`.
        let joined = path.join("/");
        if reached == id && !path.is_empty() && !joined.is_empty() {
            if let Some(key) = graph.node(id).and_then(|node| node.variable_key()) {
                assert_eq!(graph.resolve(&joined), Some(key));
            }
        }
        let _ = graph.children_at(&joined);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(graph) = ObjectGraph::decode(input) {
            check(&graph);
        }
        return;
    }
    let (bytes, crc) = testing::string_tensor_data(&[input], false);
    let mut spec = testing::tensor("_CHECKPOINTABLE_OBJECT_GRAPH", DType::String, &[], bytes);
    spec.crc = Some(crc);
    let (index, shard) = testing::build_bundle(&[spec], false);
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = testing::write_single_shard(dir.path(), &index, &shard).expect("write bundle");
    let ckpt = Checkpoint::open(&prefix).expect("a well-formed bundle opens");
    if let Ok(Some(graph)) = ckpt.object_graph() {
        check(&graph);
    }
});
