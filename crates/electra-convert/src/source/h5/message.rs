//! Decoders for the header messages in the subset: datatype, dataspace, data layout, attribute.

use super::error::{limit, unsupported, Feature, Result};
use super::source::{Ctx, Cursor};
use super::MAX_RANK;

/// Padding of a fixed-length string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrPad {
    NullTerm,
    NullPad,
    SpacePad,
}

/// A datatype in the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Datatype {
    Int {
        size: u8,
        signed: bool,
        big_endian: bool,
    },
    Float {
        size: u8,
        big_endian: bool,
    },
    FixedString {
        size: u32,
        pad: StrPad,
    },
    VlenString,
}

impl Datatype {
    /// Size in bytes of one element as stored in attribute or dataset data.
    pub(crate) fn size(&self, sizeof_addr: u8) -> u64 {
        match *self {
            Datatype::Int { size, .. } | Datatype::Float { size, .. } => u64::from(size),
            Datatype::FixedString { size, .. } => u64::from(size),
            Datatype::VlenString => 8 + u64::from(sizeof_addr),
        }
    }
}

/// IEEE layouts: (size, exponent location, exponent size, mantissa size, bias).
const IEEE: [(u32, u8, u8, u8, u32); 3] = [
    (2, 10, 5, 10, 15),
    (4, 23, 8, 23, 127),
    (8, 52, 11, 52, 1023),
];

/// Parses a datatype message body.
pub(crate) fn datatype(c: &mut Cursor<'_>) -> Result<Datatype> {
    let at = c.file_pos();
    let class_version = c.u8()?;
    let class = class_version & 0x0f;
    let version = class_version >> 4;
    let bits = c.uint(3)? as u32;
    let size = c.u32()?;
    if !(1..=4).contains(&version) {
        return Err(unsupported(
            Feature::Version,
            at,
            format!("datatype message version {version}"),
        ));
    }
    let bad = |what: String| unsupported(Feature::Datatype, at, what);
    match class {
        0 => {
            let big_endian = bits & 0x01 != 0;
            let signed = bits & 0x08 != 0;
            let offset = c.u16()?;
            let precision = c.u16()?;
            if !matches!(size, 1 | 2 | 4 | 8) || offset != 0 || u32::from(precision) != size * 8 {
                return Err(bad(format!(
                    "integer of size {size}, bit offset {offset}, precision {precision}"
                )));
            }
            Ok(Datatype::Int {
                size: size as u8,
                signed,
                big_endian,
            })
        }
        1 => {
            let order = (bits & 0x01) | ((bits >> 5) & 0x02);
            let big_endian = match order {
                0 => false,
                1 => true,
                _ => return Err(bad("VAX-order float".into())),
            };
            let pad = (bits >> 1) & 0x07;
            let norm = (bits >> 4) & 0x03;
            let sign = (bits >> 8) & 0xff;
            let offset = c.u16()?;
            let precision = c.u16()?;
            let exp_loc = c.u8()?;
            let exp_size = c.u8()?;
            let mant_loc = c.u8()?;
            let mant_size = c.u8()?;
            let bias = c.u32()?;
            let ieee = IEEE.iter().any(|&(s, el, es, ms, b)| {
                s == size
                    && el == exp_loc
                    && es == exp_size
                    && ms == mant_size
                    && b == bias
                    && mant_loc == 0
                    && offset == 0
                    && u32::from(precision) == s * 8
                    && sign == s * 8 - 1
                    && pad == 0
                    && norm == 2
            });
            if !ieee {
                return Err(bad(format!(
                    "non-IEEE float: size {size}, precision {precision}, exponent {exp_loc}/{exp_size}, \
                     mantissa {mant_loc}/{mant_size}, bias {bias}, sign bit {sign}, normalization {norm}"
                )));
            }
            Ok(Datatype::Float {
                size: size as u8,
                big_endian,
            })
        }
        3 => {
            let pad = match bits & 0x0f {
                0 => StrPad::NullTerm,
                1 => StrPad::NullPad,
                2 => StrPad::SpacePad,
                p => return Err(bad(format!("string padding type {p}"))),
            };
            if size == 0 {
                return Err(bad("zero-length fixed string".into()));
            }
            Ok(Datatype::FixedString { size, pad })
        }
        9 => {
            if bits & 0x0f != 1 {
                return Err(bad("variable-length sequence (not a string)".into()));
            }
            // The base type that follows is the string's character type; it is not needed.
            Ok(Datatype::VlenString)
        }
        other => Err(bad(format!(
            "datatype class {other} ({})",
            match other {
                2 => "time",
                4 => "bitfield",
                5 => "opaque",
                6 => "compound",
                7 => "reference",
                8 => "enum (h5py bool)",
                10 => "array",
                11 => "complex",
                _ => "unknown",
            }
        ))),
    }
}

/// A dataspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dataspace {
    Scalar,
    Null,
    Simple(Vec<u64>),
}

impl Dataspace {
    /// Number of elements, `None` on overflow.
    pub(crate) fn count(&self) -> Option<u64> {
        match self {
            Dataspace::Scalar => Some(1),
            Dataspace::Null => Some(0),
            Dataspace::Simple(d) => d.iter().try_fold(1u64, |acc, &x| acc.checked_mul(x)),
        }
    }

    pub(crate) fn shape(&self) -> Option<Vec<u64>> {
        match self {
            Dataspace::Simple(d) => Some(d.clone()),
            _ => None,
        }
    }
}

/// Parses a dataspace message body (versions 1 and 2).
pub(crate) fn dataspace(c: &mut Cursor<'_>) -> Result<Dataspace> {
    let at = c.file_pos();
    let version = c.u8()?;
    let rank = c.u8()?;
    let flags = c.u8()?;
    let kind = match version {
        1 => {
            c.skip(5)?;
            if rank == 0 {
                0
            } else {
                1
            }
        }
        2 => c.u8()?,
        v => {
            return Err(unsupported(
                Feature::Version,
                at,
                format!("dataspace message version {v}"),
            ))
        }
    };
    if usize::from(rank) > MAX_RANK {
        return Err(limit(
            "dataspace",
            at,
            format!("rank {rank} above {MAX_RANK}"),
        ));
    }
    if flags & 0x02 != 0 {
        return Err(unsupported(
            Feature::Dataspace,
            at,
            "permutation index present",
        ));
    }
    match kind {
        0 => Ok(Dataspace::Scalar),
        2 => Ok(Dataspace::Null),
        1 => {
            let mut dims = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                dims.push(c.length()?);
            }
            Ok(Dataspace::Simple(dims))
        }
        k => Err(unsupported(
            Feature::Dataspace,
            at,
            format!("dataspace type {k}"),
        )),
    }
}

/// Storage of a dataset's raw data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Inside the header: absolute offset and size.
    Compact { offset: u64, size: u64 },
    /// Relative address (None if never allocated) and size.
    Contiguous { addr: Option<u64>, size: u64 },
}

/// Parses a data layout message body (versions 3 and 4, compact or contiguous).
pub(crate) fn layout(c: &mut Cursor<'_>) -> Result<Layout> {
    let at = c.file_pos();
    let version = c.u8()?;
    if !(3..=4).contains(&version) {
        return Err(unsupported(
            Feature::LayoutVersion,
            at,
            format!("data layout message version {version} (3 and 4 are read)"),
        ));
    }
    let class = c.u8()?;
    match class {
        0 => {
            let size = c.u16()?;
            let offset = c.file_pos();
            c.skip(usize::from(size))?;
            Ok(Layout::Compact {
                offset,
                size: u64::from(size),
            })
        }
        1 => {
            let addr = c.addr()?;
            let size = c.length()?;
            Ok(Layout::Contiguous { addr, size })
        }
        2 => Err(unsupported(Feature::ChunkedLayout, at, "chunked storage")),
        3 => Err(unsupported(Feature::VirtualLayout, at, "virtual dataset")),
        k => Err(unsupported(
            Feature::LayoutVersion,
            at,
            format!("layout class {k}"),
        )),
    }
}

/// An attribute message split into its parts.
pub(crate) struct RawAttr<'a> {
    pub(crate) name: String,
    pub(crate) datatype: Datatype,
    pub(crate) dataspace: Dataspace,
    /// Raw value bytes and their absolute file offset.
    pub(crate) data: &'a [u8],
    pub(crate) data_offset: u64,
}

/// Reads just the name of an attribute message.
pub(crate) fn attribute_name(ctx: &Ctx, data: &[u8], offset: u64) -> Result<String> {
    let mut c = ctx.cursor(data, offset, "attribute message");
    let (name, _, _, _) = attribute_head(&mut c)?;
    Ok(name)
}

/// Parses the fixed part and name; returns (name, datatype size, dataspace size, version).
fn attribute_head(c: &mut Cursor<'_>) -> Result<(String, usize, usize, u8)> {
    let at = c.file_pos();
    let version = c.u8()?;
    let flags = c.u8()?;
    let name_size = usize::from(c.u16()?);
    let dt_size = usize::from(c.u16()?);
    let ds_size = usize::from(c.u16()?);
    match version {
        1 => {}
        2 | 3 => {
            if flags & 0x03 != 0 {
                return Err(unsupported(
                    Feature::SharedMessage,
                    at,
                    "attribute with a shared datatype or dataspace",
                ));
            }
            if version == 3 {
                c.skip(1)?; // name character set
            }
        }
        v => {
            return Err(unsupported(
                Feature::Version,
                at,
                format!("attribute message version {v}"),
            ))
        }
    }
    let raw = c.bytes(name_size)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let name = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| c.malformed("attribute name is not UTF-8"))?
        .to_owned();
    if version == 1 {
        c.align(8)?;
    }
    Ok((name, dt_size, ds_size, version))
}

/// Parses a whole attribute message.
pub(crate) fn attribute<'a>(ctx: &Ctx, data: &'a [u8], offset: u64) -> Result<RawAttr<'a>> {
    let mut c = ctx.cursor(data, offset, "attribute message");
    let (name, dt_size, ds_size, version) = attribute_head(&mut c)?;
    let dt_bytes = c.bytes(dt_size)?;
    let dt_at = c.file_pos().saturating_sub(dt_size as u64);
    if version == 1 {
        c.align(8)?;
    }
    let ds_bytes = c.bytes(ds_size)?;
    let ds_at = c.file_pos().saturating_sub(ds_size as u64);
    if version == 1 {
        c.align(8)?;
    }
    let data_offset = c.file_pos();
    let rest = c.bytes(c.remaining())?;
    let datatype = datatype(&mut ctx.cursor(dt_bytes, dt_at, "attribute datatype"))?;
    let dataspace = dataspace(&mut ctx.cursor(ds_bytes, ds_at, "attribute dataspace"))?;
    Ok(RawAttr {
        name,
        datatype,
        dataspace,
        data: rest,
        data_offset,
    })
}
