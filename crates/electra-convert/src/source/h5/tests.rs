//! Unit tests of the HDF5-subset reader on hostile inputs: truncations, bad offsets, cycles,
//! huge claims, heap overruns, random mutations. Each must give an error (never a panic) in
//! bounded time. The small files in `tests/data/h5/` are written by h5py (the scratch
//! reader's `make_test_files.py`: h5py 3.16.0, HDF5 2.0.0); two real transformers files are
//! compared through the Keras view.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{keras_weights, Error, Feature, Group, H5File, MemberKind};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/h5")
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap()
}

fn get64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Superblock v0, 8-byte sizes: root entry at 56 → header address at 64, scratch B-tree/heap at 80/88.
const ROOT_HEADER: usize = 64;
const ROOT_BTREE: usize = 80;
const ROOT_HEAP: usize = 88;

/// (type, data offset, size) of every message of the v1 header at `hdr`, following continuations.
fn messages(b: &[u8], hdr: usize) -> Vec<(u16, usize, usize)> {
    let mut out = Vec::new();
    let first = u32::from_le_bytes(b[hdr + 8..hdr + 12].try_into().unwrap()) as usize;
    let mut chunks = vec![(hdr + 16, first)];
    let mut i = 0;
    while i < chunks.len() {
        let (start, len) = chunks[i];
        i += 1;
        let mut p = start;
        while p + 8 <= start + len {
            let t = u16::from_le_bytes([b[p], b[p + 1]]);
            let s = u16::from_le_bytes([b[p + 2], b[p + 3]]) as usize;
            if t == 0x10 {
                chunks.push((get64(b, p + 8) as usize, get64(b, p + 16) as usize));
            }
            out.push((t, p + 8, s));
            p += 8 + s;
        }
    }
    out
}

fn find_msg(b: &[u8], hdr: usize, t: u16) -> usize {
    messages(b, hdr)
        .into_iter()
        .find(|m| m.0 == t)
        .unwrap_or_else(|| panic!("no message {t:#x} at {hdr}"))
        .1
}

fn object_offset(b: &[u8], path_parent: &str, name: &str) -> usize {
    let f = H5File::from_bytes(b.to_vec()).unwrap();
    let g = f.group(path_parent).unwrap();
    let m = g.members().unwrap();
    m.iter()
        .find(|m| m.name == name)
        .unwrap()
        .object_offset
        .unwrap() as usize
}

/// Opens and walks everything, including the Keras view; must not panic.
fn exercise(bytes: Vec<u8>) -> usize {
    match H5File::from_bytes(bytes) {
        Ok(f) => {
            let (read, errors) = walk_all(&f);
            let _ = keras_weights(&f);
            read.len() + errors
        }
        Err(_) => 1,
    }
}

fn signatures(b: &[u8], sig: &[u8]) -> Vec<usize> {
    b.windows(sig.len())
        .enumerate()
        .filter(|(_, w)| *w == sig)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn truncated_files_at_many_cut_points() {
    let start = Instant::now();
    for name in [
        "keras_vlen.h5",
        "keras_fixed.h5",
        "basic.h5",
        "many_attrs.h5",
        "btree_levels.h5",
        "userblock.h5",
    ] {
        let full = load(name);
        let mut cuts: Vec<usize> = (0..full.len().min(3000)).step_by(5).collect();
        cuts.extend((0..200).map(|i| i * full.len() / 200));
        cuts.push(full.len() - 1);
        for cut in cuts {
            exercise(full[..cut].to_vec());
        }
    }
    assert!(start.elapsed() < Duration::from_secs(120));
}

#[test]
fn truncated_data_is_refused_at_lookup() {
    let full = load("keras_vlen.h5");
    let f = H5File::from_bytes(full.clone()).unwrap();
    let k = keras_weights(&f).unwrap();
    let last = k
        .layers
        .iter()
        .flat_map(|l| &l.weights)
        .max_by_key(|w| w.info.data_offset + w.info.data_len)
        .unwrap()
        .clone();
    let cut = (last.info.data_offset + last.info.data_len - 1) as usize;
    let f = H5File::from_bytes(full[..cut].to_vec()).unwrap();
    let e = f.dataset(&last.path).unwrap_err();
    assert!(matches!(e.root_cause(), Error::OutOfBounds { .. }), "{e}");
    // the Keras view refuses the whole file rather than hand out a short weight
    assert!(keras_weights(&f).is_err());
}

#[test]
fn offsets_past_the_end() {
    let mut b = load("keras_vlen.h5");
    put64(&mut b, ROOT_HEADER, 1 << 40);
    let f = H5File::from_bytes(b.clone()).unwrap();
    let e = f.root().err().unwrap();
    assert!(matches!(e.root_cause(), Error::OutOfBounds { .. }), "{e}");
    put64(&mut b, ROOT_HEADER, u64::MAX - 1);
    assert!(H5File::from_bytes(b.clone()).unwrap().root().is_err());
    put64(&mut b, ROOT_HEADER, u64::MAX); // undefined address
    assert!(H5File::from_bytes(b).is_err());

    // dataset data address past the end
    let mut b = load("refusals.h5");
    let hdr = object_offset(&b, "/", "ok");
    let layout = find_msg(&b, hdr, 0x08);
    put64(&mut b, layout + 2, 1 << 50);
    let e = H5File::from_bytes(b).unwrap().dataset("/ok").unwrap_err();
    assert!(matches!(e.root_cause(), Error::OutOfBounds { .. }), "{e}");

    // local heap and B-tree past the end
    // (the reader uses the symbol table message, not the superblock's cached scratch pad)
    let orig = load("many_members.h5");
    let st = find_msg(&orig, get64(&orig, ROOT_HEADER) as usize, 0x11);
    let mut b = orig.clone();
    put64(&mut b, st + 8, 1 << 45);
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(matches!(e.root_cause(), Error::OutOfBounds { .. }), "{e}");
    let mut b = orig.clone();
    put64(&mut b, st, u64::MAX - 7);
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(matches!(e.root_cause(), Error::OutOfBounds { .. }), "{e}");
    // the cached copy in the superblock is ignored
    let mut b = orig.clone();
    put64(&mut b, ROOT_HEAP, 1 << 45);
    put64(&mut b, ROOT_BTREE, 1 << 45);
    assert!(H5File::from_bytes(b).unwrap().root().is_ok());
}

#[test]
fn btree_node_pointing_to_itself() {
    // level >= 1 node whose first child is itself: level check fails
    let orig = load("btree_levels.h5");
    let inner: Vec<usize> = signatures(&orig, b"TREE")
        .into_iter()
        .filter(|&t| orig[t + 4] == 0 && orig[t + 5] >= 1)
        .collect();
    assert!(
        !inner.is_empty(),
        "fixture should have internal B-tree nodes"
    );
    let t = inner[0];
    let mut b = orig.clone();
    put64(&mut b, t + 32, t as u64); // child 0 (after 24-byte head + key 0)
    let e = H5File::from_bytes(b).unwrap().group("many").err().unwrap();
    assert!(
        matches!(
            e.root_cause(),
            Error::Malformed { .. } | Error::Cycle { .. }
        ),
        "{e}"
    );

    // two children of an internal node sharing a subtree: cycle/DAG detected
    let mut b = orig.clone();
    let child0 = get64(&b, t + 32);
    put64(&mut b, t + 48, child0);
    let e = H5File::from_bytes(b).unwrap().group("many").err().unwrap();
    assert!(matches!(e.root_cause(), Error::Cycle { .. }), "{e}");

    // the root group's B-tree pointing at itself (level 0 child = the node) and sharing a SNOD
    let orig = load("many_members.h5");
    let hdr = object_offset(&orig, "/", "big");
    let st = find_msg(&orig, hdr, 0x11);
    let tree = get64(&orig, st) as usize;
    assert_eq!(&orig[tree..tree + 4], b"TREE");
    let mut b = orig.clone();
    put64(&mut b, tree + 32, tree as u64);
    let e = H5File::from_bytes(b).unwrap().group("big").err().unwrap();
    assert!(
        matches!(
            e.root_cause(),
            Error::Malformed { .. } | Error::Cycle { .. }
        ),
        "{e}"
    );
    let mut b = orig.clone();
    let snod0 = get64(&b, tree + 32);
    put64(&mut b, tree + 48, snod0);
    let e = H5File::from_bytes(b).unwrap().group("big").err().unwrap();
    assert!(matches!(e.root_cause(), Error::Cycle { .. }), "{e}");
}

#[test]
fn continuation_pointing_back() {
    let orig = load("keras_vlen.h5");
    let hdr = get64(&orig, ROOT_HEADER) as usize;
    let cont = find_msg(&orig, hdr, 0x10);
    // back to the first block
    let mut b = orig.clone();
    put64(&mut b, cont, (hdr + 16) as u64);
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(matches!(e.root_cause(), Error::Cycle { .. }), "{e}");
    // to itself: the continuation block containing a continuation to the same block
    let mut b = orig.clone();
    let target = get64(&b, cont) as usize;
    let len = get64(&b, cont + 8) as usize;
    // write a continuation message at the start of the target block pointing to the block
    b[target..target + 2].copy_from_slice(&0x10u16.to_le_bytes());
    b[target + 2..target + 4].copy_from_slice(&16u16.to_le_bytes());
    put64(&mut b, target + 8, target as u64);
    put64(&mut b, target + 16, len as u64);
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(matches!(e.root_cause(), Error::Cycle { .. }), "{e}");
    // huge block length
    let mut b = orig.clone();
    put64(&mut b, cont + 8, 1 << 41);
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(matches!(e.root_cause(), Error::OutOfBounds { .. }), "{e}");
}

#[test]
fn dataspace_claiming_2_pow_40_elements() {
    let orig = load("refusals.h5");
    let hdr = object_offset(&orig, "/", "ok");
    let space = find_msg(&orig, hdr, 0x01);
    let layout = find_msg(&orig, hdr, 0x08);
    let mut b = orig.clone();
    put64(&mut b, space + 8, 1 << 40);
    let f = H5File::from_bytes(b.clone()).unwrap();
    assert!(f.dataset("/ok").is_err());
    // storage size patched to match: the file is far too small for it
    put64(&mut b, layout + 10, 4 << 40);
    let e = H5File::from_bytes(b.clone())
        .unwrap()
        .dataset("/ok")
        .unwrap_err();
    assert!(matches!(e.root_cause(), Error::OutOfBounds { .. }), "{e}");
    // element count × size overflows u64
    put64(&mut b, space + 8, 1 << 63);
    let e = H5File::from_bytes(b).unwrap().dataset("/ok").unwrap_err();
    assert!(matches!(e.root_cause(), Error::Limit { .. }), "{e}");

    // attribute dataspace claiming 2^40 strings / ints
    let orig = load("basic.h5");
    let root = get64(&orig, ROOT_HEADER) as usize;
    for (name, dims_at) in [
        ("int_array", 48usize),
        ("fixed_list", 48),
        ("vlen_list", 56),
    ] {
        let m = messages(&orig, root)
            .into_iter()
            .find(|m| m.0 == 0x0c && orig[m.1 + 8..].starts_with(name.as_bytes()))
            .unwrap();
        let mut b = orig.clone();
        // dataspace v1 dims sit after header (8) + padded name + padded datatype + 8
        let ds = (m.1..m.1 + m.2)
            .find(|&p| get64(&b, p) == get64(&orig, m.1 + dims_at) && b[p - 8] == 1)
            .unwrap_or(m.1 + dims_at);
        put64(&mut b, ds, 1 << 40);
        let e = H5File::from_bytes(b)
            .unwrap()
            .root()
            .unwrap()
            .attr(name)
            .unwrap_err();
        assert!(matches!(e.root_cause(), Error::Limit { .. }), "{name}: {e}");
    }
}

#[test]
fn names_past_the_heap_end() {
    let orig = load("many_members.h5");
    let st = find_msg(&orig, get64(&orig, ROOT_HEADER) as usize, 0x11);
    let heap = get64(&orig, st + 8) as usize;
    assert_eq!(&orig[heap..heap + 4], b"HEAP");
    let size = get64(&orig, heap + 8) as usize;
    let data = get64(&orig, heap + 24) as usize;
    // no NUL terminator anywhere in the heap
    let mut b = orig.clone();
    for x in &mut b[data..data + size] {
        *x = b'a';
    }
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(matches!(e.root_cause(), Error::Malformed { .. }), "{e}");
    // heap claiming 2^40 bytes
    let mut b = orig.clone();
    put64(&mut b, heap + 8, 1 << 40);
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(
        matches!(
            e.root_cause(),
            Error::Limit { .. } | Error::OutOfBounds { .. }
        ),
        "{e}"
    );
    // a symbol entry whose name offset is past the heap end
    let mut b = orig.clone();
    let tree = get64(&b, st) as usize;
    let snod = get64(&b, tree + 32) as usize;
    assert_eq!(&b[snod..snod + 4], b"SNOD");
    put64(&mut b, snod + 8, (size + 100) as u64);
    let e = H5File::from_bytes(b).unwrap().root().err().unwrap();
    assert!(e.to_string().contains("past the heap end"), "{e}");
    // every entry pointing at the same name (overlapping names)
    let mut b = orig.clone();
    let n = u16::from_le_bytes([b[snod + 6], b[snod + 7]]) as usize;
    let first = get64(&b, snod + 8);
    for i in 0..n {
        put64(&mut b, snod + 8 + 40 * i, first);
    }
    let f = H5File::from_bytes(b).unwrap();
    if let Ok(r) = f.root() {
        // small heaps may still hold all duplicated names; none may be huge
        assert!(r.member_names().len() <= 1000);
    }
}

#[test]
fn global_heap_damage() {
    let orig = load("keras_vlen.h5");
    for gcol in signatures(&orig, b"GCOL") {
        let mut b = orig.clone();
        put64(&mut b, gcol + 8, 1 << 42); // collection size
        let f = H5File::from_bytes(b).unwrap();
        let e = f.root().unwrap().attr("layer_names");
        assert!(e.is_err() || e.as_ref().unwrap().is_some());
        let mut b = orig.clone();
        b[gcol] = b'X';
        let f = H5File::from_bytes(b).unwrap();
        let _ = keras_weights(&f);
    }
    // all vlen references pointing at one object whose length is claimed huge
    let mut b = orig.clone();
    let gcol = signatures(&orig, b"GCOL")[0];
    put64(&mut b, gcol + 16 + 8, 1 << 40); // first object's size
    let f = H5File::from_bytes(b).unwrap();
    assert!(keras_weights(&f).is_err());
}

#[test]
fn random_mutations_never_panic() {
    let start = Instant::now();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut total = 0usize;
    for name in ["keras_vlen.h5", "keras_fixed.h5", "basic.h5", "refusals.h5"] {
        let orig = load(name);
        // metadata lives mostly in the first 4 KiB and around headers; mutate anywhere
        for _ in 0..300 {
            let mut b = orig.clone();
            for _ in 0..(1 + rnd() % 4) {
                let at = if rnd() % 2 == 0 {
                    (rnd() % 4096) as usize % b.len()
                } else {
                    (rnd() as usize) % b.len()
                };
                b[at] = match rnd() % 4 {
                    0 => 0xff,
                    1 => 0,
                    _ => rnd() as u8,
                };
            }
            total += exercise(b);
        }
    }
    assert!(total > 0);
    assert!(start.elapsed() < Duration::from_secs(300));
}

#[test]
fn not_hdf5_and_tiny_inputs() {
    for b in [
        vec![],
        vec![0u8; 7],
        b"\x89HDF\r\n\x1a\n".to_vec(),
        vec![0xffu8; 2048],
    ] {
        assert!(H5File::from_bytes(b).is_err());
    }
    let mut b = load("basic.h5");
    b[8] = 2; // superblock version 2
    let e = H5File::from_bytes(b).err().unwrap();
    assert_eq!(e.feature(), Some(Feature::SuperblockVersion));
    let mut b = load("basic.h5");
    b[13] = 2; // 2-byte offsets
    let e = H5File::from_bytes(b).err().unwrap();
    assert_eq!(e.feature(), Some(Feature::AddressSize), "{e}");
    let mut b = load("basic.h5");
    put64(&mut b, 48, 1234); // driver info block
    let e = H5File::from_bytes(b).err().unwrap();
    assert_eq!(e.feature(), Some(Feature::DriverInfo), "{e}");
    let f = H5File::from_bytes(load("refusals.h5")).unwrap();
    let kinds: Vec<MemberKind> = f
        .root()
        .unwrap()
        .members()
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert!(kinds.contains(&MemberKind::Dataset));
}

/// Walks everything reachable (each group once, depth ≤ 64): attributes decoded, datasets
/// located and read. Returns (datasets read, errors seen). Never panics on its own.
fn walk_all(f: &H5File) -> (Vec<(String, Vec<u8>)>, usize) {
    let mut out = Vec::new();
    let mut errors = 0;
    let mut seen = std::collections::HashSet::new();
    match f.root() {
        Ok(r) => walk(f, &r, 0, &mut seen, &mut out, &mut errors),
        Err(_) => errors += 1,
    }
    (out, errors)
}

fn walk(
    f: &H5File,
    g: &Group<'_>,
    depth: usize,
    seen: &mut std::collections::HashSet<u64>,
    out: &mut Vec<(String, Vec<u8>)>,
    errors: &mut usize,
) {
    match g.attr_names() {
        Ok(names) => {
            for n in names {
                if g.attr(&n).is_err() {
                    *errors += 1;
                }
            }
        }
        Err(_) => *errors += 1,
    }
    let members = match g.members() {
        Ok(m) => m,
        Err(_) => {
            *errors += 1;
            return;
        }
    };
    for m in members {
        let path = if g.path() == "/" {
            format!("/{}", m.name)
        } else {
            format!("{}/{}", g.path(), m.name)
        };
        match m.kind {
            MemberKind::Group => {
                if depth >= 64 || !seen.insert(m.object_offset.unwrap_or(u64::MAX)) {
                    continue;
                }
                match g.group(&m.name) {
                    Ok(sub) => walk(f, &sub, depth + 1, seen, out, errors),
                    Err(_) => *errors += 1,
                }
            }
            MemberKind::Dataset => match g.dataset(&m.name) {
                Ok(info) => match f.read_dataset_bytes(&info) {
                    Ok(b) => out.push((path, b)),
                    Err(_) => *errors += 1,
                },
                Err(_) => *errors += 1,
            },
            _ => {}
        }
    }
}

/// The fixed-length-string upload (h5py 2.x style) and the vlen one hold the same weights.
#[test]
fn fixed_and_variable_length_names_give_the_same_weights() {
    let forms = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/forms");
    let read = |dir: &str| {
        let f = H5File::open(forms.join(dir).join("tf_model.h5")).unwrap();
        let k = keras_weights(&f).unwrap();
        k.layers
            .iter()
            .flat_map(|l| &l.weights)
            .map(|w| {
                (
                    w.name.clone(),
                    w.info.shape.clone(),
                    f.read_dataset_bytes(&w.info).unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let vlen = read("h5_disc");
    assert_eq!(vlen.len(), 43);
    assert_eq!(vlen, read("h5_fixedstr"));
}

#[test]
fn non_keras_file_is_reported() {
    let f = H5File::open(data_dir().join("basic.h5")).unwrap();
    let err = keras_weights(&f).unwrap_err();
    assert!(matches!(err, Error::NotKeras { .. }), "{err}");
}
