//! Unit tests of the zip source, on the released-style zips of `fixtures/forms/zip/` and the
//! small hostile and odd-layout ones `fixtures/gen_forms_zip_hostile.py` writes into
//! `fixtures/forms/zip/hostile/` (real index, a 4 KiB stub of the data shard).

use std::path::{Path, PathBuf};

use tf_checkpoint::ShardFile;

use super::*;

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_path_buf()
}

/// A zip of `fixtures/forms/zip/` (`hostile/NAME` for the small ones).
fn data(name: &str) -> PathBuf {
    root().join("fixtures/forms/zip").join(name)
}

fn hostile(name: &str) -> PathBuf {
    data("hostile").join(name)
}

fn original(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/electra/released").join(name)).unwrap()
}

fn index() -> Vec<u8> {
    original("electra_tiny.index")
}

fn shard_data() -> Vec<u8> {
    original("electra_tiny.data-00000-of-00001")
}

fn stub() -> Vec<u8> {
    shard_data()[..4096].to_vec()
}

fn open_ok(path: &Path, selector: Option<&str>) -> ZipCheckpoint {
    ZipCheckpoint::open(path, selector)
        .unwrap_or_else(|e| panic!("{} {selector:?}: {e}", path.display()))
}

fn open_err(path: &Path, selector: Option<&str>) -> ZipSourceError {
    match ZipCheckpoint::open(path, selector) {
        Ok(c) => panic!("{} {selector:?} opened as {}", path.display(), c.location()),
        Err(e) => e,
    }
}

/// Shard 0 of 1 placed in a fresh directory; the directory, the shard file and the bytes
/// inflated.
fn shard(ckpt: &ZipCheckpoint) -> Result<(tempfile::TempDir, ShardFile, u64), ZipSourceError> {
    let dir = tempfile::tempdir().unwrap();
    let mut inflated = 0;
    let file = ckpt.shard_file(0, 1, dir.path(), &mut inflated)?;
    Ok((dir, file, inflated))
}

fn shard_err(ckpt: &ZipCheckpoint) -> ZipSourceError {
    match shard(ckpt) {
        Ok((_, file, _)) => panic!("shard of {} was given: {file:?}", ckpt.location()),
        Err(e) => e,
    }
}

/// The bytes a shard file points at.
fn bytes_of(file: &ShardFile) -> Vec<u8> {
    let all = std::fs::read(&file.path).unwrap();
    let start = file.base as usize;
    all[start..start + file.len.unwrap() as usize].to_vec()
}

fn shard_bytes(ckpt: &ZipCheckpoint) -> Vec<u8> {
    let (_dir, file, _) = shard(ckpt).unwrap();
    bytes_of(&file)
}

#[test]
fn released_deflated_zip_inflates_its_shard_into_the_given_directory() {
    let ckpt = open_ok(&data("electra_tiny.zip"), None);
    assert_eq!(ckpt.prefix(), "electra_tiny/electra_tiny");
    assert_eq!(ckpt.folder(), "electra_tiny");
    assert_eq!(
        ckpt.resolution(),
        &Resolution::StateFile("electra_tiny/checkpoint".into())
    );
    assert_eq!(ckpt.index_bytes(), index().as_slice());
    let (dir, file, inflated) = shard(&ckpt).unwrap();
    assert_eq!(inflated, 365_228);
    assert!(file.path.starts_with(dir.path()));
    assert_eq!((file.id, file.base, file.len), (0, 0, Some(365_228)));
    assert_eq!(bytes_of(&file), shard_data());

    let vocab = ckpt.side_file("vocab.txt").unwrap().unwrap();
    assert_eq!(vocab.entry, "electra_tiny/vocab.txt");
    assert_eq!(vocab.bytes.len(), 324);
    let state = ckpt.side_file("checkpoint").unwrap().unwrap();
    assert_eq!(state.bytes, original("checkpoint"));
    assert_eq!(ckpt.side_file("params.yaml").unwrap(), None);
    assert_eq!(ckpt.read_entry("electra_tiny").unwrap(), None, "a folder");
}

#[test]
fn released_stored_zip_is_read_in_place() {
    let path = data("electra_tiny_stored.zip");
    let ckpt = open_ok(&path, None);
    assert_eq!(ckpt.index_bytes(), index().as_slice());
    let (dir, file, inflated) = shard(&ckpt).unwrap();
    assert_eq!(inflated, 0, "nothing copied");
    assert_eq!(file.path, path, "a window of the zip itself");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(bytes_of(&file), shard_data());
}

#[test]
fn a_source_reads_the_same_tensors_as_the_plain_checkpoint() {
    let plain = tf_checkpoint::Checkpoint::open(&root().join("fixtures/electra/released")).unwrap();
    for name in ["electra_tiny.zip", "electra_tiny_stored.zip"] {
        let source = super::open(&data(name), None).unwrap();
        assert_eq!(source.form(), Form::Zip);
        assert!(
            source
                .location()
                .ends_with(&format!("{name}#electra_tiny/electra_tiny")),
            "{}",
            source.location()
        );
        assert_eq!(source.tensors(), plain.tensors());
        for t in plain.tensors() {
            assert_eq!(
                source.read_bytes(&t.name).unwrap(),
                plain.read_bytes(&t.name).unwrap(),
                "{name} {}",
                t.name
            );
        }
        let vocab = source.side_dir().join("vocab.txt");
        assert_eq!(std::fs::metadata(&vocab).unwrap().len(), 324);
        // Nothing else beside it: the parent is the private directory.
        let parent = source.side_dir().parent().unwrap().to_path_buf();
        assert!(!parent.join("vocab.txt").exists());
        drop(source);
        assert!(
            !parent.exists(),
            "the private directory goes with the source"
        );
    }
}

#[test]
fn selectors_name_a_prefix_its_files_or_its_folder() {
    for sel in [
        "electra_tiny/electra_tiny",
        "electra_tiny/electra_tiny.index",
        "electra_tiny/electra_tiny.data-00000-of-00001",
        "electra_tiny/electra_tiny.meta",
        "electra_tiny",
        "electra_tiny/",
        "",
    ] {
        for zip in ["electra_tiny.zip", "electra_tiny_stored.zip"] {
            let ckpt = open_ok(&data(zip), Some(sel));
            assert_eq!(ckpt.prefix(), "electra_tiny/electra_tiny", "{zip}#{sel}");
        }
    }
    let zip = data("electra_tiny.zip");
    let by_prefix = open_ok(&zip, Some("electra_tiny/electra_tiny"));
    assert_eq!(by_prefix.resolution(), &Resolution::Selector);

    let err = open_err(&zip, Some("nope"));
    assert!(matches!(err, ZipSourceError::BadSelector { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("the archive holds: electra_tiny/electra_tiny"),
        "{msg}"
    );
    let err = open_err(&zip, Some("electra_tiny/vocab.txt"));
    assert!(
        err.to_string().contains("not part of a V2 checkpoint"),
        "{err}"
    );
    for bad in ["../electra_tiny", "/electra_tiny"] {
        let err = open_err(&zip, Some(bad));
        assert!(err.to_string().contains("not a plain path"), "{err}");
    }
    let err = open_err(&zip, Some("electra_tiny/other.index"));
    assert!(matches!(err, ZipSourceError::NoIndex { .. }), "{err}");
}

#[test]
fn two_checkpoints_need_a_selector() {
    let zip = data("two_checkpoints.zip");
    let err = open_err(&zip, None);
    let msg = err.to_string();
    assert!(
        matches!(err, ZipSourceError::SeveralCheckpoints { .. }),
        "{msg}"
    );
    assert!(msg.contains("(a/electra_tiny, b/electra_tiny)"), "{msg}");
    assert!(msg.contains("two_checkpoints.zip#a/electra_tiny"), "{msg}");
    let a = open_ok(&zip, Some("a"));
    assert_eq!(a.prefix(), "a/electra_tiny");
    assert_eq!(a.index_bytes().len(), 2209);
    let b = open_ok(&zip, Some("b/electra_tiny.index"));
    assert_eq!(b.prefix(), "b/electra_tiny");
    assert_eq!(b.index_bytes(), index().as_slice());
    assert_eq!(shard_bytes(&b), shard_data());
}

#[test]
fn nested_folders_and_a_vocab_in_the_parent() {
    let zip = hostile("nested.zip");
    let ckpt = open_ok(&zip, None);
    assert_eq!(ckpt.prefix(), "outer/inner/electra_tiny");
    assert_eq!(shard_bytes(&ckpt), stub());
    let vocab = ckpt.side_file("vocab.txt").unwrap().unwrap();
    assert_eq!(vocab.entry, "outer/vocab.txt");
    let err = open_err(&zip, Some("outer"));
    assert!(
        err.to_string().contains("folder outer holds no checkpoint"),
        "{err}"
    );
}

#[test]
fn without_a_state_file_the_single_index_counts() {
    let ckpt = open_ok(&hostile("no_state_single.zip"), None);
    assert_eq!(ckpt.prefix(), "m/electra_tiny");
    assert_eq!(ckpt.resolution(), &Resolution::SingleIndex);
    assert_eq!(shard_bytes(&ckpt), stub());
    for sel in [None, Some("m")] {
        let err = open_err(&hostile("no_state_two.zip"), sel);
        assert!(err.to_string().contains("(m/x, m/y)"), "{err}");
    }
    assert_eq!(
        open_ok(&hostile("no_state_two.zip"), Some("m/y")).prefix(),
        "m/y"
    );
}

#[test]
fn a_data_shard_without_its_index_is_named() {
    let err = open_err(&hostile("data_without_index.zip"), None);
    let msg = err.to_string();
    assert!(matches!(err, ZipSourceError::NoCheckpoint { .. }), "{msg}");
    assert!(msg.contains("m/x.data-00000-of-00001"), "{msg}");
    assert!(msg.contains("not the .index file"), "{msg}");
}

#[test]
fn an_absolute_state_file_path_points_at_the_local_copy() {
    let err = open_err(&hostile("state_absolute.zip"), None);
    let msg = err.to_string();
    assert!(
        matches!(err, ZipSourceError::StateFileMissingPrefix { .. }),
        "{msg}"
    );
    assert!(msg.contains("state_absolute.zip#m/electra_tiny"), "{msg}");
}

#[test]
fn data_descriptors_and_zip64_are_read() {
    let ckpt = open_ok(&hostile("descriptor.zip"), None);
    assert_eq!(ckpt.index_bytes(), index().as_slice());
    assert_eq!(shard_bytes(&ckpt), stub());
    let ckpt = open_ok(&hostile("zip64.zip"), None);
    assert_eq!(ckpt.prefix(), "z/electra_tiny");
    assert_eq!(shard_bytes(&ckpt), stub());
}

#[test]
fn zip_bombs_are_refused_quickly() {
    let started = std::time::Instant::now();
    let ckpt = open_ok(&hostile("bomb_declared.zip"), None);
    let err = shard_err(&ckpt);
    assert!(
        matches!(
            err,
            ZipSourceError::ImpossibleRatio {
                declared: 10_737_418_240,
                ..
            }
        ),
        "{err}"
    );
    let ckpt = open_ok(&hostile("bomb_inflates.zip"), None);
    let err = shard_err(&ckpt);
    assert!(
        matches!(
            err,
            ZipSourceError::InflatesToMore {
                declared: 1_048_576,
                stopped: 1_048_577,
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn the_inflate_budget_and_size_caps_hold() {
    let zip = data("electra_tiny.zip");
    let options = ZipOptions {
        max_inflated_total: 365_227,
        ..ZipOptions::default()
    };
    let err = super::open_with(&zip, None, options).unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Zip(ZipSourceError::InflateBudget {
                needed: 365_228,
                ..
            })
        ),
        "{err}"
    );
    let options = ZipOptions {
        max_index_bytes: 3270,
        ..ZipOptions::default()
    };
    let err = ZipCheckpoint::open_with(&zip, None, options).unwrap_err();
    assert!(
        matches!(
            err,
            ZipSourceError::TooLarge {
                declared: 3271,
                what: "a checkpoint index",
                ..
            }
        ),
        "{err}"
    );
    let options = ZipOptions {
        max_side_file_bytes: 100,
        ..ZipOptions::default()
    };
    let ckpt = ZipCheckpoint::open_with(&zip, None, options).unwrap();
    let err = ckpt.side_file("vocab.txt").unwrap_err();
    assert!(
        matches!(err, ZipSourceError::TooLarge { declared: 324, .. }),
        "{err}"
    );
    let options = ZipOptions {
        max_entries: 4,
        ..ZipOptions::default()
    };
    let err = ZipCheckpoint::open_with(&zip, None, options).unwrap_err();
    assert!(
        matches!(err, ZipSourceError::TooManyEntries { count: 5, .. }),
        "{err}"
    );
}

#[test]
fn shard_requests_are_checked() {
    let ckpt = open_ok(&data("electra_tiny.zip"), None);
    let dir = tempfile::tempdir().unwrap();
    let mut used = 0;
    let err = ckpt.shard_file(0, 2, dir.path(), &mut used).unwrap_err();
    assert!(
        matches!(&err, ZipSourceError::ShardMissing { entry, num_shards: 2, .. } if entry == "electra_tiny/electra_tiny.data-00000-of-00002"),
        "{err}"
    );
    for (s, n) in [(1, 1), (0, 0)] {
        let err = ckpt.shard_file(s, n, dir.path(), &mut used).unwrap_err();
        assert!(
            matches!(err, ZipSourceError::BadShardRequest { .. }),
            "{err}"
        );
    }
    assert_eq!(used, 0);
}

#[test]
fn lying_sizes_are_refused() {
    let err = shard_err(&open_ok(&hostile("lie_local_size.zip"), None));
    assert!(
        matches!(
            err,
            ZipSourceError::HeaderMismatch {
                field: "the compressed size",
                ..
            }
        ),
        "{err}"
    );
    let err = open_err(&hostile("lie_past_end.zip"), None);
    assert!(
        matches!(err, ZipSourceError::EntryOutOfBounds { .. }),
        "{err}"
    );
    let err = shard_err(&open_ok(&hostile("lie_inflates_less.zip"), None));
    assert!(
        matches!(
            err,
            ZipSourceError::InflatesToLess {
                declared: 4196,
                actual: 4096,
                ..
            }
        ),
        "{err}"
    );
    let err = shard_err(&open_ok(&hostile("crc_mismatch.zip"), None));
    assert!(
        matches!(
            err,
            ZipSourceError::Crc {
                stored: 0x1234_5678,
                ..
            }
        ),
        "{err}"
    );
    let err = open_err(&hostile("overlap.zip"), None);
    assert!(matches!(err, ZipSourceError::Overlap { .. }), "{err}");
}

#[test]
fn unsafe_names_refuse_the_whole_archive() {
    for (zip, name) in [
        ("traversal.zip", "../evil.index"),
        ("absolute.zip", "/abs/evil.index"),
        ("backslash.zip", "..\\evil.index"),
        ("drive.zip", "C:/evil.index"),
    ] {
        for sel in [None, Some("electra_tiny"), Some("evil")] {
            let err = open_err(&hostile(zip), sel);
            assert!(
                matches!(&err, ZipSourceError::UnsafeName { name: n, .. } if n == name),
                "{zip}: {err}"
            );
        }
    }
    let err = open_err(&hostile("duplicate.zip"), None);
    assert!(
        matches!(&err, ZipSourceError::DuplicateName { name, .. } if name == "electra_tiny.index"),
        "{err}"
    );
}

#[test]
fn encrypted_links_and_other_methods_are_refused() {
    let err = shard_err(&open_ok(&hostile("encrypted.zip"), None));
    assert!(matches!(err, ZipSourceError::Encrypted { .. }), "{err}");
    let err = shard_err(&open_ok(&hostile("method_bzip2.zip"), None));
    assert!(
        matches!(
            err,
            ZipSourceError::UnsupportedMethod {
                method: 12,
                method_name: "bzip2",
                ..
            }
        ),
        "{err}"
    );
    let err = open_err(&hostile("method_lzma_index.zip"), None);
    assert!(
        matches!(err, ZipSourceError::UnsupportedMethod { method: 14, .. }),
        "{err}"
    );
    let err = shard_err(&open_ok(&hostile("symlink.zip"), None));
    assert!(matches!(err, ZipSourceError::Symlink { .. }), "{err}");
}

#[test]
fn broken_containers_are_refused() {
    assert!(matches!(
        open_err(&hostile("multidisk.zip"), None),
        ZipSourceError::MultiDisk { .. }
    ));
    let err = open_err(&hostile("prepended.zip"), None);
    assert!(err.to_string().contains("data prepended"), "{err}");
    let err = open_err(&hostile("truncated.zip"), None);
    assert!(err.to_string().contains("incomplete download"), "{err}");
    let not_zip = root().join("fixtures/electra/released/electra_tiny.index");
    let err = open_err(&not_zip, None);
    assert!(matches!(err, ZipSourceError::NotAZip { .. }), "{err}");
    let err = open_err(&hostile("absent.zip"), None);
    assert!(matches!(err, ZipSourceError::Io { .. }), "{err}");
    let err = open_err(&hostile(""), None);
    assert!(
        matches!(err, ZipSourceError::Io { .. }),
        "a directory: {err}"
    );
}

/// The `zip` crate, read independently, sees the same entries, sizes, CRCs and data offsets.
#[test]
fn the_zip_crate_agrees_on_every_well_formed_archive() {
    let limits = ArchiveLimits {
        max_entries: 1000,
        max_central_directory_bytes: 1 << 20,
    };
    let mut paths: Vec<PathBuf> = ["electra_tiny.zip", "electra_tiny_stored.zip"]
        .into_iter()
        .map(data)
        .collect();
    paths.extend(
        [
            "nested.zip",
            "no_state_single.zip",
            "no_state_two.zip",
            "data_without_index.zip",
            "descriptor.zip",
            "zip64.zip",
            "bomb_declared.zip",
            "encrypted.zip",
            "method_bzip2.zip",
            "symlink.zip",
        ]
        .into_iter()
        .map(hostile),
    );
    paths.push(data("two_checkpoints.zip"));
    for path in paths {
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let mine = inspect_bytes(&bytes, &path, limits).unwrap();
        let mut theirs = ::zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(mine.len(), theirs.len(), "{name}");
        for (i, e) in mine.iter().enumerate() {
            let f = theirs.by_index_raw(i).unwrap();
            assert_eq!(f.name_raw(), e.raw_name.as_slice(), "{name}");
            assert_eq!(f.compressed_size(), e.compressed_size, "{name} {}", e.name);
            assert_eq!(f.size(), e.uncompressed_size, "{name} {}", e.name);
            assert_eq!(f.crc32(), e.crc32, "{name} {}", e.name);
            assert_eq!(f.is_dir(), e.is_dir, "{name} {}", e.name);
            assert_eq!(f.header_start(), e.local_header_offset, "{name} {}", e.name);
            assert_eq!(
                f.data_start(),
                e.data_offset.clone().ok(),
                "{name} {}",
                e.name
            );
        }
    }
}
