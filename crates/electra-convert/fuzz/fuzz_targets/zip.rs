//! Open arbitrary bytes as a checkpoint zip and read everything it offers.
//!
//! `electra_convert::source::zip`: the container parser, the resolver, the bounded inflater, and
//! the whole `Source` (checkpoint index, shards as windows of the zip or inflated files, side
//! files) the commands open. Input: `[mode][rest]`; `mode / 8` picks the selector from
//! `SELECTORS`, and `mode % 3` says what `rest` is:
//! - 0: `rest` is the archive, as it is;
//! - 1: `rest` describes members, written into a valid archive with the `zip` crate (so CRCs,
//!   sizes and names are right and the resolver, inflater and shard readers are reached):
//!   `[name byte][u16 LE len][data][method byte]*`; a name byte below 0x80 picks a name from
//!   `NAMES`, else `name byte & 0x7f` bytes of the input are the name;
//! - 2: as 1, then `[u16 LE offset][value]` patches of the written archive from the remaining
//!   bytes after a 0xff 0xff marker (headers of a valid archive, mutated in place).
//!
//! Promises checked besides "no panic, no hang, no blow-up": the index is at most its cap, a
//! shard is a window inside its file (the zip, or an inflated file of exactly the declared
//! length, within the budget), every tensor of an opened source reads or fails cleanly, nothing
//! is left in the temporary directory once the source is dropped, and where both this parser and
//! the `zip` crate accept an archive they agree on every entry.
#![no_main]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use electra_convert::source::zip::{
    inspect_bytes, open_with, ArchiveLimits, ZipCheckpoint, ZipOptions, ZipSourceError,
};
use libfuzzer_sys::fuzz_target;
use tf_checkpoint::ShardFile;

const NAMES: &[&str] = &[
    "checkpoint",
    "x.index",
    "x.data-00000-of-00001",
    "x.data-00000-of-00002",
    "x.data-00001-of-00002",
    "vocab.txt",
    "m/",
    "m/checkpoint",
    "m/x.index",
    "m/x.data-00000-of-00001",
    "m/y.index",
    "m/n/checkpoint",
    "m/n/x.index",
    "m/n/x.data-00000-of-00001",
    "m/vocab.txt",
    "../x.index",
    "x.meta",
    "y.index",
];

const SELECTORS: &[Option<&str>] = &[None, Some("m"), Some("x"), Some("m/x.index"), Some("m/n")];

struct Scratch {
    _dir: tempfile::TempDir,
    zip: PathBuf,
    temp: PathBuf,
}

fn scratch() -> &'static Scratch {
    static S: OnceLock<Scratch> = OnceLock::new();
    S.get_or_init(|| {
        // tmpfs where there is one: rewriting a file on ext4 costs a writeback per input.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("temp dir");
        let temp = dir.path().join("inflate");
        std::fs::create_dir(&temp).expect("inflate dir");
        Scratch {
            zip: dir.path().join("input.zip"),
            temp,
            _dir: dir,
        }
    })
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

/// Write an archive from the member description; returns it and the unread input.
fn build(mut rest: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut seen = std::collections::HashSet::new();
    while let Some(&[tag]) = take(&mut rest, 1) {
        if tag == 0xff {
            break; // patches follow
        }
        let name: String = if tag < 0x80 {
            NAMES[usize::from(tag) % NAMES.len()].to_string()
        } else {
            match take(&mut rest, usize::from(tag & 0x7f)) {
                Some(b) => String::from_utf8_lossy(b).into_owned(),
                None => break,
            }
        };
        let Some(len) = take(&mut rest, 2) else { break };
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let n = len.min(rest.len());
        let data = take(&mut rest, n).unwrap_or_default();
        let method = take(&mut rest, 1).map_or(0, |m| m[0]);
        if !seen.insert(name.clone()) {
            continue;
        }
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(if method & 1 == 1 {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            })
            .large_file(method & 2 == 2);
        let ok = if name.ends_with('/') {
            w.add_directory(name.trim_end_matches('/'), opts).is_ok()
        } else {
            w.start_file(name.as_str(), opts).is_ok() && w.write_all(data).is_ok()
        };
        if !ok {
            break;
        }
    }
    let bytes = w.finish().map(|c| c.into_inner()).unwrap_or_default();
    (bytes, rest)
}

/// A shard is a window inside its file; an inflated one is the whole file, within the budget.
fn check_shard(shard: &ShardFile, zip: &Path, temp: &Path) {
    let len = shard.len.expect("shards from a zip have a length");
    let file_len = std::fs::metadata(&shard.path).expect("shard file").len();
    assert!(shard
        .base
        .checked_add(len)
        .is_some_and(|end| end <= file_len));
    if shard.path.starts_with(temp) {
        assert_eq!((shard.base, file_len), (0, len), "inflated file length");
        assert!(len <= 2 << 20, "shard larger than the budget");
    } else {
        assert_eq!(shard.path, zip, "a stored shard is a window of the zip");
    }
}

fn empty_dir(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("temp dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("clean temp dir");
        } else {
            std::fs::remove_file(&path).expect("clean temp file");
        }
    }
}

fn differential(bytes: &[u8]) {
    let limits = ArchiveLimits {
        max_entries: 10_000,
        max_central_directory_bytes: 1 << 20,
    };
    let Ok(mine) = inspect_bytes(bytes, Path::new("fuzz.zip"), limits) else {
        return;
    };
    let Ok(mut theirs) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return;
    };
    if theirs.offset() != 0 {
        return; // the zip crate found the archive at another offset: a different reading
    }
    assert_eq!(mine.len(), theirs.len(), "entry count");
    for (i, e) in mine.iter().enumerate() {
        let Ok(f) = theirs.by_index_raw(i) else {
            continue;
        };
        assert_eq!(f.name_raw(), e.raw_name.as_slice(), "name of entry {i}");
        assert_eq!(
            f.compressed_size(),
            e.compressed_size,
            "compressed size of {}",
            e.name
        );
        assert_eq!(f.size(), e.uncompressed_size, "size of {}", e.name);
        assert_eq!(f.crc32(), e.crc32, "crc of {}", e.name);
        assert_eq!(
            f.header_start(),
            e.local_header_offset,
            "header of {}",
            e.name
        );
        if let (Some(theirs), Ok(mine)) = (f.data_start(), &e.data_offset) {
            assert_eq!(theirs, *mine, "data start of {}", e.name);
        }
    }
}

/// With `ZIP_TALLY` set, print one `TALLY <what> <outcome>` line per step to stderr (run
/// the binary with `-runs=0` over a corpus to count which refusals it reaches).
fn tally<T, E: std::fmt::Debug>(what: &str, result: &Result<T, E>) {
    static ON: OnceLock<bool> = OnceLock::new();
    if !*ON.get_or_init(|| std::env::var_os("ZIP_TALLY").is_some()) {
        return;
    }
    let outcome = match result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{e:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    eprintln!("TALLY {what} {outcome}");
}

fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match mode % 3 {
        0 => rest.to_vec(),
        1 => build(rest).0,
        _ => {
            let (mut bytes, mut patches) = build(rest);
            while let Some(p) = take(&mut patches, 3) {
                if !bytes.is_empty() {
                    let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % bytes.len();
                    bytes[at] = p[2];
                }
            }
            bytes
        }
    };
    differential(&bytes);

    let s = scratch();
    std::fs::write(&s.zip, &bytes).expect("write input");
    let options = ZipOptions {
        max_index_bytes: 1 << 20,
        max_side_file_bytes: 64 << 10,
        max_inflated_total: 2 << 20,
        max_entries: 10_000,
        max_central_directory_bytes: 1 << 20,
        temp_dir: Some(s.temp.clone()),
    };
    let selector = SELECTORS[usize::from(mode / 8) % SELECTORS.len()];
    let opened: Result<ZipCheckpoint, ZipSourceError> =
        ZipCheckpoint::open_with(&s.zip, selector, options.clone());
    tally("open", &opened);
    if let Ok(ckpt) = opened {
        assert!(ckpt.index_bytes().len() <= 1 << 20);
        let index = ckpt.read_entry(&format!("{}.index", ckpt.prefix()));
        if let Ok(Some(index)) = index {
            assert_eq!(index, ckpt.index_bytes());
        }
        let mut inflated = 0;
        for (i, n) in [(0, 1), (0, 2), (1, 2)] {
            let shard = ckpt.shard_file(i, n, &s.temp, &mut inflated);
            tally("shard", &shard);
            if let Ok(shard) = shard {
                check_shard(&shard, &s.zip, &s.temp);
            }
        }
        assert!(inflated <= 2 << 20);
        let _ = ckpt.side_file("vocab.txt");
        empty_dir(&s.temp);
    }
    // The whole source, as the commands open it.
    let source = open_with(&s.zip, selector, options);
    tally("source", &source);
    if let Ok(source) = source {
        for t in source.tensors() {
            let _ = source.read_bytes(&t.name);
        }
        assert!(source.side_dir().starts_with(&s.temp));
    }
    // Nothing is left in the temporary directory once the source is gone.
    assert!(
        std::fs::read_dir(&s.temp).map_or(true, |mut d| d.next().is_none()),
        "the source left a file behind"
    );
}

fuzz_target!(|data: &[u8]| run(data));
