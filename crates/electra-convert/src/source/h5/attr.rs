//! Attribute values: strings (variable-length via the global heap, or fixed-length), ints, floats.

use super::error::{limit, unsupported, Feature, Result};
use super::gheap::HeapCache;
use super::message::{Dataspace, Datatype, RawAttr, StrPad};
use super::source::Ctx;

/// A decoded attribute value (elements in row-major order).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Strings, from variable-length (h5py 3) or fixed-length (numpy `S`, h5py 2) storage.
    Strings(Vec<String>),
    /// Signed integers.
    Ints(Vec<i64>),
    /// Unsigned integers.
    UInts(Vec<u64>),
    /// Floats (f16 and f32 widened to f64).
    Floats(Vec<f64>),
    /// Null dataspace (`h5py.Empty`): no value at all.
    Empty,
}

impl AttrValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            AttrValue::Strings(v) => v.len(),
            AttrValue::Ints(v) => v.len(),
            AttrValue::UInts(v) => v.len(),
            AttrValue::Floats(v) => v.len(),
            AttrValue::Empty => 0,
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The strings, if this is a string attribute.
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            AttrValue::Strings(v) => Some(v),
            _ => None,
        }
    }
}

/// A decoded attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Dimensions; `None` for a scalar (or null) dataspace.
    pub shape: Option<Vec<u64>>,
    /// Value.
    pub value: AttrValue,
}

/// Decodes an attribute's value. Output is bounded by the file size (no amplification).
pub(crate) fn decode(ctx: &Ctx, raw: RawAttr<'_>) -> Result<Attribute> {
    let at = raw.data_offset;
    let shape = raw.dataspace.shape();
    if raw.dataspace == Dataspace::Null {
        return Ok(Attribute {
            name: raw.name,
            shape,
            value: AttrValue::Empty,
        });
    }
    let count = raw
        .dataspace
        .count()
        .ok_or_else(|| limit("attribute", at, "element count overflows"))?;
    let esize = raw.datatype.size(ctx.sizeof_addr);
    let need = count
        .checked_mul(esize)
        .filter(|&n| n <= raw.data.len() as u64)
        .ok_or_else(|| {
            limit(
                "attribute",
                at,
                format!(
                    "{count} elements of {esize} bytes do not fit in the {} bytes of attribute data",
                    raw.data.len()
                ),
            )
        })?;
    // need ≤ data.len(), so both fit in usize
    let data = raw.data.get(..need as usize).unwrap_or_default();
    let esize = esize as usize;
    let elems = data.chunks_exact(esize.max(1));
    let value = match raw.datatype {
        Datatype::Int {
            size,
            signed,
            big_endian,
        } => {
            let raw_u = elems.map(|e| uint(e, big_endian));
            if signed {
                let shift = 64 - 8 * u32::from(size);
                AttrValue::Ints(raw_u.map(|v| ((v << shift) as i64) >> shift).collect())
            } else {
                AttrValue::UInts(raw_u.collect())
            }
        }
        Datatype::Float { size, big_endian } => AttrValue::Floats(
            elems
                .map(|e| {
                    let v = uint(e, big_endian);
                    match size {
                        2 => f16_to_f64(v as u16),
                        4 => f64::from(f32::from_bits(v as u32)),
                        _ => f64::from_bits(v),
                    }
                })
                .collect(),
        ),
        Datatype::FixedString { pad, .. } => {
            let mut out = Vec::with_capacity(count as usize);
            for (i, e) in elems.enumerate() {
                let end = match pad {
                    StrPad::NullTerm | StrPad::NullPad => {
                        e.iter().position(|&b| b == 0).unwrap_or(e.len())
                    }
                    StrPad::SpacePad => e.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1),
                };
                out.push(utf8(e.get(..end).unwrap_or_default(), at, i)?);
            }
            AttrValue::Strings(out)
        }
        Datatype::VlenString => {
            let mut heap = HeapCache::default();
            let mut total = 0u64;
            let mut out = Vec::with_capacity(count as usize);
            for (i, e) in elems.enumerate() {
                let mut c = ctx.cursor(e, at.saturating_add((i * esize) as u64), "vlen string");
                let len = c.u32()?;
                let addr = c.addr()?;
                let index = c.u32()?;
                let s = match addr {
                    _ if len == 0 => String::new(),
                    None => return Err(c.malformed("non-empty string at the undefined address")),
                    Some(rel) => {
                        let bytes = heap.object(ctx, rel, index)?;
                        let bytes = bytes.get(..len as usize).ok_or_else(|| {
                            c.malformed(format!(
                                "string length {len} exceeds its heap object ({} bytes)",
                                bytes.len()
                            ))
                        })?;
                        total = total.saturating_add(u64::from(len));
                        if total > ctx.reader.len() {
                            return Err(limit(
                                "attribute",
                                at,
                                "decoded strings exceed the file size (repeated heap references)",
                            ));
                        }
                        utf8(bytes, at, i)?
                    }
                };
                out.push(s);
            }
            AttrValue::Strings(out)
        }
    };
    Ok(Attribute {
        name: raw.name,
        shape,
        value,
    })
}

fn utf8(b: &[u8], at: u64, i: usize) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| {
        unsupported(
            Feature::Datatype,
            at,
            format!("string element {i} is not valid UTF-8"),
        )
    })
}

fn uint(b: &[u8], big_endian: bool) -> u64 {
    let f = |acc: u64, &x: &u8| (acc << 8) | u64::from(x);
    if big_endian {
        b.iter().fold(0, f)
    } else {
        b.iter().rev().fold(0, f)
    }
}

/// IEEE half → f64.
pub(crate) fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    let mag = match exp {
        0 => mant * (2f64).powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mant / 1024.0) * (2f64).powi(e - 15),
    };
    sign * mag
}
