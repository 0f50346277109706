//! Global heap collections ("GCOL"), where variable-length string values live.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::error::{malformed, Result};
use super::source::Ctx;

/// One parsed collection: object index → (start, length) inside `data`.
pub(crate) struct Collection {
    data: Vec<u8>,
    objects: HashMap<u16, (usize, usize)>,
}

/// Collections read while decoding one attribute, keyed by relative address.
#[derive(Default)]
pub(crate) struct HeapCache {
    collections: HashMap<u64, Collection>,
}

impl HeapCache {
    /// Bytes of object `index` in the collection at relative address `rel`.
    pub(crate) fn object(&mut self, ctx: &Ctx, rel: u64, index: u32) -> Result<&[u8]> {
        let col = match self.collections.entry(rel) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(read_collection(ctx, rel)?),
        };
        let at = ctx.base.saturating_add(rel);
        let idx = u16::try_from(index).map_err(|_| {
            malformed(
                "global heap reference",
                at,
                format!("object index {index} above 65535"),
            )
        })?;
        let &(start, len) = col.objects.get(&idx).ok_or_else(|| {
            malformed(
                "global heap reference",
                at,
                format!("collection has no object {index}"),
            )
        })?;
        start
            .checked_add(len)
            .and_then(|end| col.data.get(start..end))
            .ok_or_else(|| malformed("global heap object", at, "object outside its collection"))
    }
}

fn read_collection(ctx: &Ctx, rel: u64) -> Result<Collection> {
    let at = ctx.abs("global heap collection", rel)?;
    let head_len = 8 + u64::from(ctx.sizeof_len);
    let head = ctx.reader.read("global heap collection", at, head_len)?;
    let mut c = ctx.cursor(&head, at, "global heap collection");
    if c.bytes(4)? != b"GCOL" {
        return Err(malformed(
            "global heap collection",
            at,
            "missing GCOL signature",
        ));
    }
    let version = c.u8()?;
    if version != 1 {
        return Err(malformed(
            "global heap collection",
            at,
            format!("version {version}, expected 1"),
        ));
    }
    c.skip(3)?;
    let size = c.length()?;
    if size < head_len {
        return Err(malformed(
            "global heap collection",
            at,
            format!("collection size {size} smaller than its header"),
        ));
    }
    let data = ctx.reader.read_meta("global heap collection", at, size)?;
    let mut objects = HashMap::new();
    let mut c = ctx.cursor(&data, at, "global heap object");
    // the collection header is padded to a multiple of 8
    c.skip((head_len as usize).next_multiple_of(8))?;
    let obj_head = 8 + usize::from(ctx.sizeof_len);
    while c.remaining() >= obj_head {
        let index = c.u16()?;
        if index == 0 {
            break; // free space: the rest of the collection
        }
        let _refcount = c.u16()?;
        c.skip(4)?;
        let len = c.length()?;
        // the object header is padded to a multiple of 8 as well (matters for 4-byte lengths)
        c.skip(obj_head.next_multiple_of(8) - obj_head)?;
        let len = usize::try_from(len).map_err(|_| c.malformed("object size exceeds usize"))?;
        let start = c.pos();
        c.skip(len)?;
        // object data is padded to a multiple of 8 (the last one may end at the collection end)
        let pad = (8 - len % 8) % 8;
        c.skip(pad.min(c.remaining()))?;
        objects.entry(index).or_insert((start, len));
    }
    Ok(Collection { data, objects })
}
