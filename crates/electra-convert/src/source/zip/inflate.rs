//! Copying one entry's contents out of the archive, bounded and checked: a stored entry's bytes
//! as they are, a deflated one's inflated. Either way the output must be exactly the declared
//! size (inflation stops at declared + 1 bytes) and match the entry's CRC-32.

use std::io::{self, Write};

use flate2::{Decompress, FlushDecompress, Status};

use super::archive::{Archive, DataWindow, ReadAt, METHOD_DEFLATED, METHOD_STORED};
use super::error::ZipSourceError;

/// DEFLATE's best case: a 258-byte match in two one-bit codes, 1032 output bytes per input byte.
pub const MAX_DEFLATE_RATIO: u64 = 1032;

const CHUNK: usize = 256 * 1024;

/// Could `compressed` DEFLATE bytes inflate to `declared`? (One byte of slack for tiny streams.)
pub fn ratio_possible(compressed: u64, declared: u64) -> bool {
    declared
        <= compressed
            .saturating_add(1)
            .saturating_mul(MAX_DEFLATE_RATIO)
}

/// Write entry `index`'s contents (whose data is at `window`) to `sink`. `sink_error` turns a
/// failed write into the caller's error. The caller has already checked the method, encryption
/// and size limits.
pub fn copy_entry(
    src: &dyn ReadAt,
    archive: &Archive,
    index: usize,
    window: DataWindow,
    sink: &mut dyn Write,
    sink_error: &dyn Fn(io::Error) -> ZipSourceError,
) -> Result<(), ZipSourceError> {
    let e = &archive.entries[index];
    let declared = e.uncompressed_size;
    let read_error = |error: io::Error| ZipSourceError::Io {
        path: archive.path.clone(),
        error,
    };
    let mut crc = crc32fast::Hasher::new();
    let mut inbuf = vec![
        0u8;
        CHUNK
            .min(usize::try_from(window.len).unwrap_or(CHUNK))
            .max(1)
    ];
    let produced = match e.method {
        METHOD_STORED => {
            let mut done = 0u64;
            while done < window.len {
                let n = (window.len - done).min(inbuf.len() as u64) as usize;
                src.read_exact_at(&mut inbuf[..n], window.offset + done)
                    .map_err(read_error)?;
                crc.update(&inbuf[..n]);
                sink.write_all(&inbuf[..n]).map_err(sink_error)?;
                done += n as u64;
            }
            done
        }
        METHOD_DEFLATED => inflate(
            src, archive, index, window, &mut inbuf, &mut crc, sink, sink_error,
        )?,
        other => {
            return Err(ZipSourceError::UnsupportedMethod {
                path: archive.path.clone(),
                entry: e.name.clone(),
                method: other,
                method_name: method_name(other),
            })
        }
    };
    if produced != declared {
        return Err(ZipSourceError::InflatesToLess {
            path: archive.path.clone(),
            entry: e.name.clone(),
            declared,
            actual: produced,
        });
    }
    let computed = crc.finalize();
    if computed != e.crc32 {
        return Err(ZipSourceError::Crc {
            path: archive.path.clone(),
            entry: e.name.clone(),
            len: produced,
            stored: e.crc32,
            computed,
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn inflate(
    src: &dyn ReadAt,
    archive: &Archive,
    index: usize,
    window: DataWindow,
    inbuf: &mut [u8],
    crc: &mut crc32fast::Hasher,
    sink: &mut dyn Write,
    sink_error: &dyn Fn(io::Error) -> ZipSourceError,
) -> Result<u64, ZipSourceError> {
    let e = &archive.entries[index];
    let declared = e.uncompressed_size;
    let mut outbuf = vec![
        0u8;
        usize::try_from(declared.saturating_add(1))
            .unwrap_or(CHUNK)
            .min(CHUNK)
    ];
    let mut inflater = Decompress::new(false);
    let mut fed = 0u64; // compressed bytes read from the window
    let (mut in_start, mut in_end) = (0usize, 0usize);
    let mut produced = 0u64;
    loop {
        if in_start == in_end && fed < window.len {
            let n = (window.len - fed).min(inbuf.len() as u64) as usize;
            src.read_exact_at(&mut inbuf[..n], window.offset + fed)
                .map_err(|error| ZipSourceError::Io {
                    path: archive.path.clone(),
                    error,
                })?;
            fed += n as u64;
            in_start = 0;
            in_end = n;
        }
        // Never ask for more than one byte past the declared size.
        let room = (declared - produced)
            .saturating_add(1)
            .min(outbuf.len() as u64) as usize;
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(
                &inbuf[in_start..in_end],
                &mut outbuf[..room],
                FlushDecompress::None,
            )
            .map_err(|err| ZipSourceError::CorruptDeflate {
                path: archive.path.clone(),
                entry: e.name.clone(),
                inflated: produced,
                reason: err.to_string(),
            })?;
        let consumed = (inflater.total_in() - before_in) as usize;
        let out = (inflater.total_out() - before_out) as usize;
        in_start += consumed.min(in_end - in_start);
        if out > 0 {
            produced += out as u64;
            if produced > declared {
                return Err(ZipSourceError::InflatesToMore {
                    path: archive.path.clone(),
                    entry: e.name.clone(),
                    declared,
                    stopped: produced,
                });
            }
            crc.update(&outbuf[..out]);
            sink.write_all(&outbuf[..out]).map_err(sink_error)?;
        }
        if status == Status::StreamEnd {
            return Ok(produced);
        }
        if consumed == 0 && out == 0 {
            if in_start == in_end && fed == window.len {
                return Err(ZipSourceError::TruncatedDeflate {
                    path: archive.path.clone(),
                    entry: e.name.clone(),
                    compressed: window.len,
                });
            }
            if in_start < in_end {
                // Input and output room but no progress: never loop on it.
                return Err(ZipSourceError::CorruptDeflate {
                    path: archive.path.clone(),
                    entry: e.name.clone(),
                    inflated: produced,
                    reason: "the inflater made no progress".into(),
                });
            }
        }
    }
}

/// Is `method` one this reader copies?
pub fn method_supported(method: u16) -> bool {
    method == METHOD_STORED || method == METHOD_DEFLATED
}

/// A name for a compression method, for messages.
pub fn method_name(method: u16) -> &'static str {
    match method {
        0 => "no compression",
        1 => "Shrink",
        2..=5 => "Reduce",
        6 => "Implode",
        8 => "DEFLATE",
        9 => "Deflate64",
        10 => "PKWARE DCL Implode",
        12 => "bzip2",
        14 => "LZMA",
        16 => "IBM z/OS CMPSC",
        18 => "IBM TERSE",
        19 => "IBM LZ77 z",
        20 | 93 => "Zstandard",
        94 => "MP3",
        95 => "XZ",
        96 => "JPEG",
        97 => "WavPack",
        98 => "PPMd",
        99 => "AES encryption",
        _ => "an unknown method",
    }
}
