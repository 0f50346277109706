//! Superblock versions 0 and 1: signature search, address sizes, B-tree K values, root entry.

use super::error::{malformed, unsupported, Error, Feature, Result};
use super::group::SymbolEntry;
use super::source::{Ctx, Cursor, Reader};

/// The 8-byte HDF5 format signature.
pub(crate) const SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// What the superblock tells the rest of the reader.
pub(crate) struct Superblock {
    pub(crate) version: u8,
    pub(crate) root: SymbolEntry,
}

/// Finds the superblock (at 0, 512, 1024, ...), checks it is in the subset and returns the
/// file-wide parameters plus the root group's symbol table entry.
pub(crate) fn read(reader: Reader) -> Result<(Ctx, Superblock)> {
    let file_len = reader.len();
    let mut at = 0u64;
    let found = loop {
        if at.checked_add(8).is_none_or(|e| e > file_len) {
            return Err(Error::NotHdf5 { file_len });
        }
        if reader.read("superblock signature", at, 8)? == SIGNATURE {
            break at;
        }
        at = if at == 0 { 512 } else { at.saturating_mul(2) };
    };
    // 8 signature + 16 fixed + 4 (v1) + 4 addresses + root entry (2 addr + 24): at most 128 bytes.
    let buf = reader.read_upto("superblock", found, 128)?;
    let mut c = Cursor::raw(&buf, found, "superblock");
    c.skip(8)?;
    let version = c.u8()?;
    if version > 1 {
        return Err(unsupported(
            Feature::SuperblockVersion,
            found.saturating_add(8),
            format!(
                "superblock version {version} (written with libver='latest' or newer bounds; \
                 only versions 0 and 1, as h5py writes by default, are read)"
            ),
        ));
    }
    let freespace_version = c.u8()?;
    let root_entry_version = c.u8()?;
    c.skip(1)?;
    let shared_header_version = c.u8()?;
    if freespace_version != 0 || root_entry_version != 0 || shared_header_version != 0 {
        return Err(unsupported(
            Feature::Version,
            found.saturating_add(9),
            format!(
                "free-space version {freespace_version}, root entry version {root_entry_version}, \
                 shared header version {shared_header_version} (all must be 0)"
            ),
        ));
    }
    let size_pos = c.file_pos();
    let sizeof_addr = c.u8()?;
    let sizeof_len = c.u8()?;
    if !matches!(sizeof_addr, 4 | 8) || !matches!(sizeof_len, 4 | 8) {
        return Err(unsupported(
            Feature::AddressSize,
            size_pos,
            format!(
                "size of offsets {sizeof_addr}, size of lengths {sizeof_len} (4 or 8 supported)"
            ),
        ));
    }
    c.skip(1)?;
    let k_pos = c.file_pos();
    let leaf_k = c.u16()?;
    let internal_k = c.u16()?;
    if leaf_k == 0 || internal_k == 0 {
        return Err(malformed(
            "superblock",
            k_pos,
            format!("group leaf K {leaf_k} / internal K {internal_k} must be positive"),
        ));
    }
    let _consistency_flags = c.u32()?;
    if version == 1 {
        let _istore_k = c.u16()?;
        c.skip(2)?;
    }
    let ctx_probe = Ctx {
        reader,
        sizeof_addr,
        sizeof_len,
        base: 0,
        leaf_k,
        internal_k,
    };
    // Re-read the rest with the real address sizes.
    let rest_at = c.pos();
    let mut c = ctx_probe.cursor(&buf, found, "superblock");
    c.skip(rest_at)?;
    let base_pos = c.file_pos();
    let base = c.addr()?.unwrap_or(0);
    if base != found {
        return Err(unsupported(
            Feature::BaseAddress,
            base_pos,
            format!("base address {base} but the superblock is at {found}"),
        ));
    }
    let _freespace = c.addr()?;
    let _eof = c.addr()?;
    let driver_pos = c.file_pos();
    if let Some(driver) = c.addr()? {
        return Err(unsupported(
            Feature::DriverInfo,
            driver_pos,
            format!(
                "driver information block at relative address {driver} (family/multi/split driver)"
            ),
        ));
    }
    let root = SymbolEntry::parse(&mut c)?;
    let ctx = Ctx { base, ..ctx_probe };
    Ok((ctx, Superblock { version, root }))
}
