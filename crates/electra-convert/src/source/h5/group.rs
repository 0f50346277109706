//! Old-style (symbol-table) groups: v1 B-tree of type 0, symbol table nodes, local heap names.

use std::collections::HashSet;

use super::error::{limit, malformed, Error, Result};
use super::source::{Ctx, Cursor};
use super::MAX_BTREE_DEPTH;

/// A symbol table entry (one link in a group, or the root entry of the superblock).
#[derive(Debug, Clone)]
pub(crate) struct SymbolEntry {
    /// Offset of the link name in the parent's local heap.
    pub(crate) name_offset: u64,
    /// Relative address of the object header; `None` for soft links.
    pub(crate) header: Option<u64>,
    /// Heap offset of a soft link's target (cache type 2).
    pub(crate) soft_link_offset: Option<u32>,
}

impl SymbolEntry {
    pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<Self> {
        let name_offset = c.length()?;
        let header = c.addr()?;
        // 0 nothing cached, 1 group (B-tree + heap cached), 2 soft link
        let cache_type = c.u32()?;
        c.skip(4)?;
        let scratch = c.bytes(16)?;
        let soft_link_offset = if cache_type == 2 {
            let mut s = Cursor::raw(scratch, 0, "symbol table entry scratch pad");
            Some(s.u32()?)
        } else {
            None
        };
        Ok(SymbolEntry {
            name_offset,
            header,
            soft_link_offset,
        })
    }
}

/// A member of a group as stored in its symbol table.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) entry: SymbolEntry,
    /// Target path of a soft link.
    pub(crate) soft_target: Option<String>,
}

/// A group's local heap data segment.
struct LocalHeap {
    data: Vec<u8>,
    offset: u64,
}

impl LocalHeap {
    fn read(ctx: &Ctx, rel: u64) -> Result<Self> {
        let at = ctx.abs("local heap", rel)?;
        let head_len = 8 + 2 * u64::from(ctx.sizeof_len) + u64::from(ctx.sizeof_addr);
        let head = ctx.reader.read("local heap", at, head_len)?;
        let mut c = ctx.cursor(&head, at, "local heap");
        if c.bytes(4)? != b"HEAP" {
            return Err(malformed("local heap", at, "missing HEAP signature"));
        }
        let version = c.u8()?;
        if version != 0 {
            return Err(malformed(
                "local heap",
                at,
                format!("version {version}, expected 0"),
            ));
        }
        c.skip(3)?;
        let size = c.length()?;
        let _free = c.length()?;
        let data_rel = c
            .addr()?
            .ok_or_else(|| malformed("local heap", at, "undefined data segment address"))?;
        let offset = ctx.abs("local heap data segment", data_rel)?;
        let data = ctx
            .reader
            .read_meta("local heap data segment", offset, size)?;
        Ok(LocalHeap { data, offset })
    }

    /// The NUL-terminated string at `off`.
    fn string(&self, off: u64) -> Result<&str> {
        let at = self.offset.saturating_add(off);
        let bytes = usize::try_from(off)
            .ok()
            .and_then(|o| self.data.get(o..))
            .ok_or_else(|| {
                malformed(
                    "local heap name",
                    at,
                    format!(
                        "name offset {off} past the heap end ({} bytes)",
                        self.data.len()
                    ),
                )
            })?;
        let end = bytes.iter().position(|&b| b == 0).ok_or_else(|| {
            malformed(
                "local heap name",
                at,
                "name runs past the heap end (no NUL terminator)",
            )
        })?;
        std::str::from_utf8(bytes.get(..end).unwrap_or_default())
            .map_err(|_| malformed("local heap name", at, "name is not UTF-8"))
    }
}

/// Reads every link of the group whose symbol table message gives `btree` and `heap`.
pub(crate) fn read_links(ctx: &Ctx, btree: u64, heap: u64) -> Result<Vec<Link>> {
    let heap = LocalHeap::read(ctx, heap)?;
    let mut entries = Vec::new();
    let mut seen_nodes = HashSet::new();
    let mut seen_snods = HashSet::new();
    // (relative address, expected level) — levels strictly decrease, so depth is bounded.
    let mut stack: Vec<(u64, Option<u8>)> = vec![(btree, None)];
    while let Some((rel, expect)) = stack.pop() {
        let at = ctx.abs("group B-tree node", rel)?;
        if !seen_nodes.insert(at) {
            return Err(Error::Cycle {
                what: "group B-tree node",
                offset: at,
            });
        }
        let sa = u64::from(ctx.sizeof_addr);
        let sl = u64::from(ctx.sizeof_len);
        let head = ctx.reader.read("group B-tree node", at, 8 + 2 * sa)?;
        let mut c = ctx.cursor(&head, at, "group B-tree node");
        if c.bytes(4)? != b"TREE" {
            return Err(malformed("group B-tree node", at, "missing TREE signature"));
        }
        let node_type = c.u8()?;
        if node_type != 0 {
            return Err(malformed(
                "group B-tree node",
                at,
                format!("node type {node_type}, expected 0 (group)"),
            ));
        }
        let level = c.u8()?;
        let used = c.u16()?;
        if let Some(e) = expect {
            if e != level {
                return Err(malformed(
                    "group B-tree node",
                    at,
                    format!("level {level} where the parent implies {e}"),
                ));
            }
        } else if usize::from(level) > MAX_BTREE_DEPTH {
            return Err(limit(
                "group B-tree node",
                at,
                format!("root level {level} above {MAX_BTREE_DEPTH}"),
            ));
        }
        if u32::from(used) > 2 * u32::from(ctx.internal_k) {
            return Err(malformed(
                "group B-tree node",
                at,
                format!(
                    "{used} entries, more than 2K = {}",
                    2 * u32::from(ctx.internal_k)
                ),
            ));
        }
        // keys and children interleave: key0 child0 key1 child1 ... key_n
        let body_at = at.saturating_add(8 + 2 * sa);
        let body_len = u64::from(used) * (sl + sa) + sl;
        let body = ctx.reader.read("group B-tree node", body_at, body_len)?;
        let mut c = ctx.cursor(&body, body_at, "group B-tree node");
        let mut children = Vec::with_capacity(usize::from(used));
        for _ in 0..used {
            let _key = c.length()?;
            let child = c
                .addr()?
                .ok_or_else(|| c.malformed("child at the undefined address"))?;
            children.push(child);
        }
        if level > 0 {
            // push in reverse so that children are visited in key order
            for &child in children.iter().rev() {
                stack.push((child, Some(level - 1)));
            }
        } else {
            for child in children {
                let snod = ctx.abs("symbol table node", child)?;
                if !seen_snods.insert(snod) {
                    return Err(Error::Cycle {
                        what: "symbol table node",
                        offset: snod,
                    });
                }
                read_snod(ctx, snod, &mut entries)?;
            }
        }
    }
    let mut links = Vec::with_capacity(entries.len());
    let mut name_bytes = 0u64;
    for entry in entries {
        let name = heap.string(entry.name_offset)?.to_owned();
        // in a valid group every name is stored once, so names cannot outgrow the heap
        name_bytes = name_bytes.saturating_add(name.len() as u64 + 1);
        if name_bytes > heap.data.len() as u64 {
            return Err(malformed(
                "local heap",
                heap.offset,
                "link names overlap (more name bytes than the heap holds)",
            ));
        }
        let soft_target = match entry.soft_link_offset {
            Some(off) => Some(heap.string(u64::from(off))?.to_owned()),
            None => None,
        };
        links.push(Link {
            name,
            entry,
            soft_target,
        });
    }
    Ok(links)
}

fn read_snod(ctx: &Ctx, at: u64, out: &mut Vec<SymbolEntry>) -> Result<()> {
    let head = ctx.reader.read("symbol table node", at, 8)?;
    let mut c = ctx.cursor(&head, at, "symbol table node");
    if c.bytes(4)? != b"SNOD" {
        return Err(malformed("symbol table node", at, "missing SNOD signature"));
    }
    let version = c.u8()?;
    if version != 1 {
        return Err(malformed(
            "symbol table node",
            at,
            format!("version {version}, expected 1"),
        ));
    }
    c.skip(1)?;
    let count = c.u16()?;
    if u32::from(count) > 2 * u32::from(ctx.leaf_k) {
        return Err(malformed(
            "symbol table node",
            at,
            format!(
                "{count} entries, more than 2K = {}",
                2 * u32::from(ctx.leaf_k)
            ),
        ));
    }
    // name offset (L) + header address (O) + cache type + reserved + 16-byte scratch pad
    let entry_len = u64::from(ctx.sizeof_addr) + u64::from(ctx.sizeof_len) + 24;
    let body_at = at.saturating_add(8);
    let body = ctx
        .reader
        .read("symbol table node", body_at, u64::from(count) * entry_len)?;
    let mut c = ctx.cursor(&body, body_at, "symbol table entry");
    for _ in 0..count {
        out.push(SymbolEntry::parse(&mut c)?);
    }
    Ok(())
}
