//! Hand-rolled decoding of the few protobuf messages a tensor bundle uses:
//! `BundleHeaderProto`, `VersionDef`, `BundleEntryProto`, `TensorShapeProto` and
//! `TensorSliceProto`. Unknown fields are skipped (forward compatibility, as protobuf does);
//! malformed wire data is an error. Nothing here allocates more than the input length.
//!
//! The `encode_*` functions beside the decoders serialize the same messages the way TensorFlow's
//! C++ protobuf does (proto3: ascending field numbers, zero scalars omitted, but a present
//! sub-message such as a scalar's empty shape kept as `12 00`), so the writer's bytes match TF's.

use super::varint::{fixed32, fixed64, read_varint64, write_varint64};

/// Decoding failure with the byte offset inside the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset} of the {context})")]
pub struct ProtoError {
    /// Which message was being decoded.
    pub context: &'static str,
    /// Byte offset inside that message.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

/// `BundleHeaderProto.Endianness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endianness {
    /// Little-endian tensor data (the default, and what TF writes on x86 and ARM).
    #[default]
    Little,
    /// Big-endian tensor data.
    Big,
}

/// `VersionDef`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionDef {
    /// Format version of the writer.
    pub producer: i32,
    /// Oldest reader version that can read the data.
    pub min_consumer: i32,
    /// Reader versions that must refuse the data.
    pub bad_consumers: Vec<i32>,
}

/// `BundleHeaderProto`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleHeader {
    /// Number of `.data-*` shards.
    pub num_shards: i32,
    /// Byte order of the tensor data.
    pub endianness: Endianness,
    /// Raw enum value (0 little, 1 big); anything else is rejected by validation.
    pub endianness_raw: i32,
    /// Versions of the bundle format.
    pub version: VersionDef,
}

/// `TensorSliceProto.Extent`: `length: None` means the whole dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extent {
    /// First index taken in this dimension.
    pub start: i64,
    /// Number of indices taken; `None` for the whole dimension.
    pub length: Option<i64>,
}

/// `TensorSliceProto`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TensorSlice {
    /// One extent per dimension.
    pub extents: Vec<Extent>,
}

/// `TensorShapeProto` (dim names are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TensorShape {
    /// Dimension sizes, outermost first (-1 for an unknown size).
    pub dims: Vec<i64>,
    /// Set when even the rank is unknown.
    pub unknown_rank: bool,
}

/// `BundleEntryProto`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleEntry {
    /// The raw `DataType` enum value (see [`crate::DType::from_proto`]).
    pub dtype: i32,
    /// A missing shape means a scalar.
    pub shape: TensorShape,
    /// Which `.data-*` shard holds the bytes.
    pub shard_id: i32,
    /// Byte offset of the tensor in its shard.
    pub offset: i64,
    /// Number of bytes stored.
    pub size: i64,
    /// Masked CRC32C as stored.
    pub crc32c: u32,
    /// For a partitioned variable, the slices stored under their own keys.
    pub slices: Vec<TensorSlice>,
}

/// One decoded field of the wire format.
pub(super) enum Value<'a> {
    Varint(u64),
    #[allow(dead_code)] // no bundle field uses it; decoded only to be skipped
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterate `(field number, value)` pairs of a serialized message.
pub(super) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    context: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(buf: &'a [u8], context: &'static str) -> Self {
        Fields {
            buf,
            pos: 0,
            context,
        }
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> ProtoError {
        ProtoError {
            context: self.context,
            offset,
            message: message.into(),
        }
    }

    pub(super) fn next_field(&mut self) -> Option<Result<(u32, Value<'a>), ProtoError>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.decode())
    }

    fn decode(&mut self) -> Result<(u32, Value<'a>), ProtoError> {
        let start = self.pos;
        let tag = read_varint64(self.buf, &mut self.pos)
            .map_err(|e| self.err(start, format!("field tag: {e}")))?;
        let field = tag >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(self.err(start, format!("invalid field number {field}")));
        }
        let value = match tag & 7 {
            0 => Value::Varint(
                read_varint64(self.buf, &mut self.pos)
                    .map_err(|e| self.err(start, format!("field {field}: {e}")))?,
            ),
            1 => {
                let v = fixed64(self.buf, self.pos)
                    .ok_or_else(|| self.err(start, format!("field {field}: truncated fixed64")))?;
                self.pos += 8;
                Value::Fixed64(v)
            }
            2 => {
                let len = read_varint64(self.buf, &mut self.pos)
                    .map_err(|e| self.err(start, format!("field {field} length: {e}")))?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|len| self.pos.checked_add(len))
                    .filter(|&end| end <= self.buf.len())
                    .ok_or_else(|| {
                        self.err(
                            start,
                            format!("field {field}: length {len} runs past the end of the message"),
                        )
                    })?;
                let bytes = &self.buf[self.pos..end];
                self.pos = end;
                Value::Bytes(bytes)
            }
            5 => {
                let v = fixed32(self.buf, self.pos)
                    .ok_or_else(|| self.err(start, format!("field {field}: truncated fixed32")))?;
                self.pos += 4;
                Value::Fixed32(v)
            }
            other => {
                return Err(self.err(
                    start,
                    format!("field {field}: unsupported wire type {other}"),
                ))
            }
        };
        Ok((field as u32, value))
    }
}

fn wrong_type(context: &'static str, field: u32) -> ProtoError {
    ProtoError {
        context,
        offset: 0,
        message: format!("field {field} has the wrong wire type"),
    }
}

/// Protobuf int32: a varint whose low 32 bits are the two's-complement value.
fn as_i32(v: u64) -> i32 {
    v as u32 as i32
}

fn decode_version(buf: &[u8]) -> Result<VersionDef, ProtoError> {
    const CTX: &str = "VersionDef";
    let mut out = VersionDef::default();
    let mut fields = Fields::new(buf, CTX);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Varint(v)) => out.producer = as_i32(v),
            (2, Value::Varint(v)) => out.min_consumer = as_i32(v),
            (3, Value::Varint(v)) => out.bad_consumers.push(as_i32(v)),
            (3, Value::Bytes(packed)) => {
                let mut pos = 0;
                while pos < packed.len() {
                    let v = read_varint64(packed, &mut pos).map_err(|e| ProtoError {
                        context: CTX,
                        offset: pos,
                        message: format!("packed bad_consumers: {e}"),
                    })?;
                    out.bad_consumers.push(as_i32(v));
                }
            }
            (f @ 1..=3, _) => return Err(wrong_type(CTX, f)),
            _ => {}
        }
    }
    Ok(out)
}

/// Decode a `BundleHeaderProto` (the value of the empty key).
pub fn decode_header(buf: &[u8]) -> Result<BundleHeader, ProtoError> {
    const CTX: &str = "BundleHeaderProto";
    let mut out = BundleHeader::default();
    let mut fields = Fields::new(buf, CTX);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Varint(v)) => out.num_shards = as_i32(v),
            (2, Value::Varint(v)) => {
                out.endianness_raw = as_i32(v);
                out.endianness = if v == 1 {
                    Endianness::Big
                } else {
                    Endianness::Little
                };
            }
            (3, Value::Bytes(b)) => out.version = decode_version(b)?,
            (f @ 1..=3, _) => return Err(wrong_type(CTX, f)),
            _ => {}
        }
    }
    Ok(out)
}

/// Decode a `TensorShapeProto`.
pub fn decode_shape(buf: &[u8]) -> Result<TensorShape, ProtoError> {
    const CTX: &str = "TensorShapeProto";
    let mut out = TensorShape::default();
    let mut fields = Fields::new(buf, CTX);
    while let Some(field) = fields.next_field() {
        match field? {
            (2, Value::Bytes(dim)) => {
                let mut size = 0i64;
                let mut dim_fields = Fields::new(dim, "TensorShapeProto.Dim");
                while let Some(f) = dim_fields.next_field() {
                    match f? {
                        (1, Value::Varint(v)) => size = v as i64,
                        (1, _) => return Err(wrong_type("TensorShapeProto.Dim", 1)),
                        _ => {}
                    }
                }
                out.dims.push(size);
            }
            (3, Value::Varint(v)) => out.unknown_rank = v != 0,
            (f @ 2..=3, _) => return Err(wrong_type(CTX, f)),
            _ => {}
        }
    }
    Ok(out)
}

/// Decode a `TensorSliceProto`.
pub fn decode_slice(buf: &[u8]) -> Result<TensorSlice, ProtoError> {
    const CTX: &str = "TensorSliceProto";
    let mut out = TensorSlice::default();
    let mut fields = Fields::new(buf, CTX);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Bytes(ext)) => {
                let mut extent = Extent::default();
                let mut ext_fields = Fields::new(ext, "TensorSliceProto.Extent");
                while let Some(f) = ext_fields.next_field() {
                    match f? {
                        (1, Value::Varint(v)) => extent.start = v as i64,
                        (2, Value::Varint(v)) => extent.length = Some(v as i64),
                        (f @ 1..=2, _) => return Err(wrong_type("TensorSliceProto.Extent", f)),
                        _ => {}
                    }
                }
                out.extents.push(extent);
            }
            (1, _) => return Err(wrong_type(CTX, 1)),
            _ => {}
        }
    }
    Ok(out)
}

/// Decode a `BundleEntryProto`.
pub fn decode_entry(buf: &[u8]) -> Result<BundleEntry, ProtoError> {
    const CTX: &str = "BundleEntryProto";
    let mut out = BundleEntry::default();
    let mut fields = Fields::new(buf, CTX);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Varint(v)) => out.dtype = as_i32(v),
            (2, Value::Bytes(b)) => out.shape = decode_shape(b)?,
            (3, Value::Varint(v)) => out.shard_id = as_i32(v),
            (4, Value::Varint(v)) => out.offset = v as i64,
            (5, Value::Varint(v)) => out.size = v as i64,
            (6, Value::Fixed32(v)) => out.crc32c = v,
            (7, Value::Bytes(b)) => out.slices.push(decode_slice(b)?),
            (f @ 1..=7, _) => return Err(wrong_type(CTX, f)),
            _ => {}
        }
    }
    Ok(out)
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    write_varint64(out, u64::from(field) << 3);
    write_varint64(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    write_varint64(out, (u64::from(field) << 3) | 2);
    write_varint64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Protobuf int32/int64/enum on the wire: negative values are sign-extended to 64 bits.
fn i64_wire(v: i64) -> u64 {
    v as u64
}

/// Serialize a `VersionDef` (bad_consumers packed, as proto3 does).
pub(crate) fn encode_version(v: &VersionDef) -> Vec<u8> {
    let mut out = Vec::new();
    if v.producer != 0 {
        put_varint_field(&mut out, 1, i64_wire(v.producer.into()));
    }
    if v.min_consumer != 0 {
        put_varint_field(&mut out, 2, i64_wire(v.min_consumer.into()));
    }
    if !v.bad_consumers.is_empty() {
        let mut packed = Vec::new();
        for &c in &v.bad_consumers {
            write_varint64(&mut packed, i64_wire(c.into()));
        }
        put_bytes_field(&mut out, 3, &packed);
    }
    out
}

/// Serialize a `BundleHeaderProto`; the version sub-message is always present (TF sets it).
pub fn encode_header(h: &BundleHeader) -> Vec<u8> {
    let mut out = Vec::new();
    if h.num_shards != 0 {
        put_varint_field(&mut out, 1, i64_wire(h.num_shards.into()));
    }
    let endianness = match h.endianness {
        Endianness::Little => 0,
        Endianness::Big => 1,
    };
    if endianness != 0 {
        put_varint_field(&mut out, 2, endianness);
    }
    put_bytes_field(&mut out, 3, &encode_version(&h.version));
    out
}

/// The header TensorFlow's `BundleWriter` writes on a little-endian host: one shard,
/// producer 1, min_consumer 0 (`08 01 1a 02 08 01`).
pub fn tf_header() -> BundleHeader {
    BundleHeader {
        num_shards: 1,
        endianness: Endianness::Little,
        endianness_raw: 0,
        version: VersionDef {
            producer: 1,
            min_consumer: 0,
            bad_consumers: Vec::new(),
        },
    }
}

/// Serialize a `TensorShapeProto` (a zero-size dim is an empty `Dim`, as TF writes it).
pub(crate) fn encode_shape(dims: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &d in dims {
        let mut dim = Vec::new();
        if d != 0 {
            put_varint_field(&mut dim, 1, i64_wire(d));
        }
        put_bytes_field(&mut out, 2, &dim);
    }
    out
}

/// Serialize a `TensorSliceProto`: a full extent is an empty `Extent`, start 0 is omitted.
pub(crate) fn encode_slice(slice: &TensorSlice) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &slice.extents {
        let mut ext = Vec::new();
        if let Some(length) = e.length {
            if e.start != 0 {
                put_varint_field(&mut ext, 1, i64_wire(e.start));
            }
            put_varint_field(&mut ext, 2, i64_wire(length));
        }
        put_bytes_field(&mut out, 1, &ext);
    }
    out
}

/// Serialize a `BundleEntryProto`. The shape is always written (a scalar's is `12 00`); the
/// masked CRC is a fixed32 and, like every proto3 scalar, omitted when zero (a full-tensor
/// entry of a partitioned variable has none).
pub fn encode_entry(e: &BundleEntry) -> Vec<u8> {
    let mut out = Vec::new();
    if e.dtype != 0 {
        put_varint_field(&mut out, 1, i64_wire(e.dtype.into()));
    }
    put_bytes_field(&mut out, 2, &encode_shape(&e.shape.dims));
    if e.shard_id != 0 {
        put_varint_field(&mut out, 3, i64_wire(e.shard_id.into()));
    }
    if e.offset != 0 {
        put_varint_field(&mut out, 4, i64_wire(e.offset));
    }
    if e.size != 0 {
        put_varint_field(&mut out, 5, i64_wire(e.size));
    }
    if e.crc32c != 0 {
        out.push(0x35);
        out.extend_from_slice(&e.crc32c.to_le_bytes());
    }
    for s in &e.slices {
        put_bytes_field(&mut out, 7, &encode_slice(s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_reproduce_tf_bytes() {
        assert_eq!(
            encode_header(&tf_header()),
            [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]
        );
        let mut two = tf_header();
        two.num_shards = 2;
        assert_eq!(encode_header(&two), [0x08, 0x02, 0x1a, 0x02, 0x08, 0x01]);
        // The tiny fixture's entry: float32 [1] at offset 0, size 4.
        let entry = BundleEntry {
            dtype: 1,
            shape: TensorShape {
                dims: vec![1],
                unknown_rank: false,
            },
            size: 4,
            crc32c: 0x2bda_a581,
            ..BundleEntry::default()
        };
        let bytes = encode_entry(&entry);
        assert_eq!(
            bytes,
            [
                0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x01, 0x28, 0x04, 0x35, 0x81, 0xa5, 0xda,
                0x2b
            ]
        );
        assert_eq!(decode_entry(&bytes).unwrap(), entry);
        // Scalars keep an empty shape; zero dims are empty Dims.
        assert_eq!(encode_shape(&[]), Vec::<u8>::new());
        assert_eq!(encode_shape(&[0, 3]), [0x12, 0x00, 0x12, 0x02, 0x08, 0x03]);
        let scalar = BundleEntry {
            dtype: 9,
            size: 8,
            crc32c: 7,
            ..BundleEntry::default()
        };
        assert_eq!(&encode_entry(&scalar)[..4], [0x08, 0x09, 0x12, 0x00]);
        // `-:1,9` (spec §5).
        let slice = TensorSlice {
            extents: vec![
                Extent {
                    start: 0,
                    length: None,
                },
                Extent {
                    start: 1,
                    length: Some(9),
                },
            ],
        };
        assert_eq!(
            encode_slice(&slice),
            [0x0a, 0x00, 0x0a, 0x04, 0x08, 0x01, 0x10, 0x09]
        );
        let v = VersionDef {
            producer: 3,
            min_consumer: 1,
            bad_consumers: vec![1, 5],
        };
        assert_eq!(decode_version(&encode_version(&v)).unwrap(), v);
    }

    #[test]
    fn header_bytes_from_tf() {
        let h = decode_header(&[0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]).unwrap();
        assert_eq!(h.num_shards, 1);
        assert_eq!(h.endianness, Endianness::Little);
        assert_eq!(h.version.producer, 1);
        assert_eq!(h.version.min_consumer, 0);
        let h =
            decode_header(&[0x08, 0x02, 0x10, 0x01, 0x1a, 0x04, 0x08, 0x01, 0x1a, 0x00]).unwrap();
        assert_eq!(h.num_shards, 2);
        assert_eq!(h.endianness, Endianness::Big);
        assert!(h.version.bad_consumers.is_empty());
        let h = decode_header(&[0x1a, 0x04, 0x18, 0x01, 0x18, 0x05]).unwrap();
        assert_eq!(h.version.bad_consumers, [1, 5]);
    }

    #[test]
    fn entry_bytes_from_tf() {
        // float32 [1] at offset 0, size 4, crc 0x2bdaa581 (the tiny fixture's entry).
        let e = decode_entry(&[
            0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x01, 0x28, 0x04, 0x35, 0x81, 0xa5, 0xda,
            0x2b,
        ])
        .unwrap();
        assert_eq!(e.dtype, 1);
        assert_eq!(e.shape.dims, [1]);
        assert_eq!((e.shard_id, e.offset, e.size), (0, 0, 4));
        assert_eq!(e.crc32c, 0x2bda_a581);
        // Shape [0,3]: the zero dim is an empty Dim.
        let s = decode_shape(&[0x12, 0x00, 0x12, 0x02, 0x08, 0x03]).unwrap();
        assert_eq!(s.dims, [0, 3]);
        // Scalar: empty shape.
        assert_eq!(decode_shape(&[]).unwrap().dims, Vec::<i64>::new());
    }

    #[test]
    fn slice_extents_keep_presence() {
        // `-:1,9` -> full extent, then start 1 length 9.
        let e =
            decode_entry(&[0x3a, 0x08, 0x0a, 0x00, 0x0a, 0x04, 0x08, 0x01, 0x10, 0x09]).unwrap();
        assert_eq!(
            e.slices[0].extents,
            [
                Extent {
                    start: 0,
                    length: None
                },
                Extent {
                    start: 1,
                    length: Some(9)
                }
            ]
        );
    }

    #[test]
    fn malformed_messages() {
        assert!(decode_entry(&[0x12, 0x05, 0x00]).is_err()); // length past end
        assert!(decode_entry(&[0x08]).is_err()); // truncated varint
        assert!(decode_entry(&[0x0b]).is_err()); // group wire type
        assert!(decode_entry(&[0x35, 0x00]).is_err()); // truncated fixed32
        assert!(decode_entry(&[0x0a, 0x00]).is_err()); // dtype with bytes wire type
        assert!(decode_entry(&[0x00]).is_err()); // field 0
                                                 // Unknown fields are skipped.
        assert_eq!(decode_entry(&[0x48, 0x05, 0x08, 0x01]).unwrap().dtype, 1);
    }
}
