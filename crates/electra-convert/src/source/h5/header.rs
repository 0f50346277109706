//! Version-1 object headers: prefix, message list, continuation blocks (loop-checked).

use std::collections::HashSet;

use super::error::{limit, unsupported, Error, Feature, Result};
use super::source::Ctx;
use super::{MAX_HEADER_BYTES, MAX_HEADER_CHUNKS};

/// Header message type numbers used here.
pub(crate) mod msg {
    pub const NIL: u16 = 0x0000;
    pub const DATASPACE: u16 = 0x0001;
    pub const LINK_INFO: u16 = 0x0002;
    pub const DATATYPE: u16 = 0x0003;
    pub const LINK: u16 = 0x0006;
    pub const EXTERNAL_FILES: u16 = 0x0007;
    pub const LAYOUT: u16 = 0x0008;
    pub const FILTER_PIPELINE: u16 = 0x000B;
    pub const ATTRIBUTE: u16 = 0x000C;
    pub const CONTINUATION: u16 = 0x0010;
    pub const SYMBOL_TABLE: u16 = 0x0011;
    pub const ATTRIBUTE_INFO: u16 = 0x0015;
}

/// Message flag bit: the message is shared (stored elsewhere).
pub(crate) const FLAG_SHARED: u8 = 0x02;

/// One header message with its data copied out.
pub(crate) struct Message {
    pub(crate) mtype: u16,
    pub(crate) flags: u8,
    /// Absolute file offset of the message data.
    pub(crate) offset: u64,
    pub(crate) data: Vec<u8>,
}

/// All messages of one object header, continuation blocks included.
pub(crate) struct ObjectHeader {
    /// Absolute file offset of the header.
    pub(crate) offset: u64,
    pub(crate) messages: Vec<Message>,
}

/// What an object is, judged from its header messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Old-style group (symbol table message).
    Group,
    /// Dataset (has a data layout message).
    Dataset,
    /// Named (committed) datatype.
    NamedDatatype,
    /// New-style group (link messages); not readable here.
    NewStyleGroup,
    /// Anything else.
    Unknown,
}

impl ObjectKind {
    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Group => "group",
            ObjectKind::Dataset => "dataset",
            ObjectKind::NamedDatatype => "named datatype",
            ObjectKind::NewStyleGroup => "new-style group",
            ObjectKind::Unknown => "unknown object",
        }
    }
}

impl ObjectHeader {
    /// First message of the given type.
    pub(crate) fn find(&self, mtype: u16) -> Option<&Message> {
        self.messages.iter().find(|m| m.mtype == mtype)
    }

    pub(crate) fn has(&self, mtype: u16) -> bool {
        self.find(mtype).is_some()
    }

    pub(crate) fn kind(&self) -> ObjectKind {
        if self.has(msg::SYMBOL_TABLE) {
            ObjectKind::Group
        } else if self.has(msg::LINK_INFO) || self.has(msg::LINK) {
            ObjectKind::NewStyleGroup
        } else if self.has(msg::LAYOUT) {
            ObjectKind::Dataset
        } else if self.has(msg::DATATYPE) {
            ObjectKind::NamedDatatype
        } else {
            ObjectKind::Unknown
        }
    }
}

/// Reads the version-1 object header at relative address `rel`.
pub(crate) fn read(ctx: &Ctx, rel: u64) -> Result<ObjectHeader> {
    let at = ctx.abs("object header", rel)?;
    let prefix = ctx.reader.read_upto("object header", at, 16)?;
    if prefix.get(..4) == Some(b"OHDR".as_slice()) {
        return Err(unsupported(
            Feature::ObjectHeaderVersion,
            at,
            "version 2 object header (signature OHDR; written with libver='latest' or track_order)",
        ));
    }
    let mut c = ctx.cursor(&prefix, at, "object header");
    let version = c.u8()?;
    if version != 1 {
        return Err(unsupported(
            Feature::ObjectHeaderVersion,
            at,
            format!("object header version {version} (only version 1 is read)"),
        ));
    }
    c.skip(1)?;
    let _nmsgs = c.u16()?;
    let _refcount = c.u32()?;
    let size = u64::from(c.u32()?);
    c.skip(4)?; // the prefix is padded to 16 bytes
    let first = at
        .checked_add(16)
        .ok_or_else(|| c.malformed("header address overflows"))?;

    let mut chunks: Vec<(u64, u64)> = vec![(first, size)];
    let mut seen: HashSet<u64> = HashSet::new();
    let mut total = 0u64;
    let mut messages = Vec::new();
    let mut next = 0usize;
    while let Some(&(chunk_at, chunk_len)) = chunks.get(next) {
        next += 1;
        if !seen.insert(chunk_at) {
            return Err(Error::Cycle {
                what: "object header continuation block",
                offset: chunk_at,
            });
        }
        if seen.len() > MAX_HEADER_CHUNKS {
            return Err(limit(
                "object header",
                at,
                format!("more than {MAX_HEADER_CHUNKS} continuation blocks"),
            ));
        }
        total = total.saturating_add(chunk_len);
        if total > MAX_HEADER_BYTES {
            return Err(limit(
                "object header",
                at,
                format!("more than {MAX_HEADER_BYTES} bytes of header messages"),
            ));
        }
        let buf = ctx
            .reader
            .read_meta("object header block", chunk_at, chunk_len)?;
        let mut c = ctx.cursor(&buf, chunk_at, "object header message");
        while c.remaining() >= 8 {
            let mtype = c.u16()?;
            let msize = usize::from(c.u16()?);
            let flags = c.u8()?;
            c.skip(3)?;
            let offset = c.file_pos();
            let data = c.bytes(msize)?;
            if mtype == msg::CONTINUATION {
                let mut d = ctx.cursor(data, offset, "continuation message");
                let target = d
                    .addr()?
                    .ok_or_else(|| d.malformed("continuation to the undefined address"))?;
                let len = d.length()?;
                let target = ctx.abs("object header continuation block", target)?;
                ctx.reader
                    .check("object header continuation block", target, len)?;
                chunks.push((target, len));
            } else if mtype != msg::NIL {
                messages.push(Message {
                    mtype,
                    flags,
                    offset,
                    data: data.to_vec(),
                });
            }
        }
    }
    Ok(ObjectHeader {
        offset: at,
        messages,
    })
}
