//! Fuzz target for the HDF5-subset reader under `tf_model.h5` (`source/h5`): open arbitrary
//! bytes, walk every group once, decode every attribute, locate and read every dataset, and run
//! the Keras view. Any panic is a finding.
#![no_main]

use std::collections::HashSet;

use electra_convert::source::h5::{keras_weights, Group, H5File, MemberKind};
use libfuzzer_sys::fuzz_target;

fn walk(f: &H5File, g: &Group<'_>, depth: usize, seen: &mut HashSet<u64>) {
    if let Ok(names) = g.attr_names() {
        for n in names {
            let _ = g.attr(&n);
        }
    }
    let _ = g.member_names();
    let Ok(members) = g.members() else { return };
    for m in members {
        match m.kind {
            MemberKind::Group => {
                let fresh = m.object_offset.is_some_and(|o| seen.insert(o));
                if depth < 32 && fresh {
                    if let Ok(sub) = g.group(&m.name) {
                        walk(f, &sub, depth + 1, seen);
                    }
                }
            }
            MemberKind::Dataset => {
                if let Ok(info) = g.dataset(&m.name) {
                    let bytes = f
                        .read_dataset_bytes(&info)
                        .expect("located data must be readable");
                    assert_eq!(bytes.len() as u64, info.data_len);
                    let count: u64 = info.shape.iter().product();
                    assert_eq!(count * info.dtype.size(), info.data_len);
                }
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(f) = H5File::from_bytes(data.to_vec()) else {
        return;
    };
    if let Ok(root) = f.root() {
        let mut seen = HashSet::new();
        walk(&f, &root, 0, &mut seen);
    }
    if let Ok(k) = keras_weights(&f) {
        for w in k.layers.iter().flat_map(|l| &l.weights) {
            let _ = f.read_dataset_bytes(&w.info);
        }
    }
});
