//! The public file API: open, walk groups, read attributes, locate dataset bytes.

use std::path::Path;

use super::attr::{decode, Attribute};
use super::error::{malformed, unsupported, Error, Feature, Result};
use super::group::{read_links, Link, SymbolEntry};
use super::header::{self, msg, ObjectHeader, ObjectKind, FLAG_SHARED};
use super::message::{self, Dataspace, Datatype, Layout};
use super::source::{Ctx, Reader};
use super::{superblock, MAX_PATH_COMPONENTS};

/// An open HDF5 file (superblock v0/v1 subset).
pub struct H5File {
    ctx: Ctx,
    superblock_version: u8,
    root: SymbolEntry,
}

/// Element type of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE half, little-endian.
    F16,
    /// IEEE single, little-endian.
    F32,
    /// IEEE double, little-endian.
    F64,
    /// Signed integer, little-endian.
    I8,
    /// Signed integer, little-endian.
    I16,
    /// Signed integer, little-endian.
    I32,
    /// Signed integer, little-endian.
    I64,
    /// Unsigned integer, little-endian.
    U8,
    /// Unsigned integer, little-endian.
    U16,
    /// Unsigned integer, little-endian.
    U32,
    /// Unsigned integer, little-endian.
    U64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::F16 | Dtype::I16 | Dtype::U16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// numpy-style short name (`f4`, `i8`, ...).
    pub fn numpy(self) -> &'static str {
        match self {
            Dtype::F16 => "f2",
            Dtype::F32 => "f4",
            Dtype::F64 => "f8",
            Dtype::I8 => "i1",
            Dtype::I16 => "i2",
            Dtype::I32 => "i4",
            Dtype::I64 => "i8",
            Dtype::U8 => "u1",
            Dtype::U16 => "u2",
            Dtype::U32 => "u4",
            Dtype::U64 => "u8",
        }
    }
}

/// Where a dataset's little-endian raw bytes are, so the caller can stream them itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInfo {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions (empty for a scalar), row-major.
    pub shape: Vec<u64>,
    /// Absolute byte offset of the data in the file (0 when `data_len` is 0).
    pub data_offset: u64,
    /// Byte length = product(shape) × dtype size; checked to lie inside the file.
    pub data_len: u64,
    /// True when the data sits inside the object header (compact layout).
    pub compact: bool,
}

/// Kind of a group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// An old-style group.
    Group,
    /// A dataset (possibly one this reader refuses to read, e.g. chunked).
    Dataset,
    /// A soft link with its target path (not followed).
    SoftLink(String),
    /// Something else (named datatype, new-style group, ...).
    Other(&'static str),
    /// An object whose header is outside the subset (e.g. a version 2 header).
    Unsupported(Feature),
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Link name.
    pub name: String,
    /// What it points to.
    pub kind: MemberKind,
    /// Absolute offset of the object header (None for soft links); equal values mean a hard link to the same object.
    pub object_offset: Option<u64>,
}

/// An open old-style group.
pub struct Group<'f> {
    file: &'f H5File,
    path: String,
    header: ObjectHeader,
    links: Vec<Link>,
}

impl H5File {
    /// Opens a file for positioned reads; only metadata is read into memory.
    pub fn open(path: impl AsRef<Path>) -> Result<H5File> {
        let f = std::fs::File::open(path)?;
        Self::from_reader(Reader::from_file(f)?)
    }

    /// Reads a file held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<H5File> {
        Self::from_reader(Reader::from_bytes(bytes))
    }

    fn from_reader(reader: Reader) -> Result<H5File> {
        let (ctx, sb) = superblock::read(reader)?;
        if sb.root.header.is_none() {
            return Err(malformed(
                "superblock",
                ctx.base,
                "root group header at the undefined address",
            ));
        }
        Ok(H5File {
            ctx,
            superblock_version: sb.version,
            root: sb.root,
        })
    }

    /// File length in bytes.
    pub fn len(&self) -> u64 {
        self.ctx.reader.len()
    }

    /// Always false for an opened file (it has at least a superblock).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Superblock version (0 or 1).
    pub fn superblock_version(&self) -> u8 {
        self.superblock_version
    }

    /// The root group.
    pub fn root(&self) -> Result<Group<'_>> {
        let rel = self.root.header.unwrap_or_default();
        Group::open(self, "/".to_owned(), rel).map_err(|e| e.context("/"))
    }

    /// The group at an absolute or root-relative path.
    pub fn group(&self, path: &str) -> Result<Group<'_>> {
        self.root()?.group(path)
    }

    /// The dataset at an absolute or root-relative path.
    pub fn dataset(&self, path: &str) -> Result<DatasetInfo> {
        self.root()?.dataset(path)
    }

    /// Reads `len` bytes at absolute file offset `offset` (checked against the file size).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.ctx
            .reader
            .read_data("dataset data", offset, len as u64)
    }

    /// Reads a dataset's raw little-endian bytes (`info.data_len` bytes).
    pub fn read_dataset_bytes(&self, info: &DatasetInfo) -> Result<Vec<u8>> {
        if info.data_len == 0 {
            return Ok(Vec::new());
        }
        self.ctx
            .reader
            .read_data("dataset data", info.data_offset, info.data_len)
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl<'f> Group<'f> {
    fn open(file: &'f H5File, path: String, rel: u64) -> Result<Group<'f>> {
        let header = header::read(&file.ctx, rel)?;
        let Some(st) = header.find(msg::SYMBOL_TABLE) else {
            return Err(match header.kind() {
                ObjectKind::NewStyleGroup => unsupported(
                    Feature::NewStyleGroup,
                    header.offset,
                    "group stored with link messages (track_order or libver='latest')",
                ),
                k => Error::WrongKind {
                    path,
                    expected: "group",
                    found: k.name(),
                },
            });
        };
        let mut c = file.ctx.cursor(&st.data, st.offset, "symbol table message");
        let btree = c
            .addr()?
            .ok_or_else(|| c.malformed("B-tree at the undefined address"))?;
        let heap = c
            .addr()?
            .ok_or_else(|| c.malformed("local heap at the undefined address"))?;
        let links = read_links(&file.ctx, btree, heap)?;
        Ok(Group {
            file,
            path,
            header,
            links,
        })
    }

    /// This group's absolute path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Member names in storage (name) order, without reading their headers.
    pub fn member_names(&self) -> Vec<&str> {
        self.links.iter().map(|l| l.name.as_str()).collect()
    }

    /// Members with their kinds (reads each member's object header).
    pub fn members(&self) -> Result<Vec<Member>> {
        let mut out = Vec::with_capacity(self.links.len());
        for link in &self.links {
            let (kind, object_offset) = match (&link.soft_target, link.entry.header) {
                (Some(t), _) => (MemberKind::SoftLink(t.clone()), None),
                (None, None) => (MemberKind::Other("link to the undefined address"), None),
                (None, Some(rel)) => match header::read(&self.file.ctx, rel) {
                    Ok(h) => {
                        let kind = match h.kind() {
                            ObjectKind::Group => MemberKind::Group,
                            ObjectKind::Dataset => MemberKind::Dataset,
                            k => MemberKind::Other(k.name()),
                        };
                        (kind, Some(h.offset))
                    }
                    Err(Error::Unsupported {
                        feature, offset, ..
                    }) => (MemberKind::Unsupported(feature), Some(offset)),
                    Err(e) => return Err(e.context(join(&self.path, &link.name))),
                },
            };
            out.push(Member {
                name: link.name.clone(),
                kind,
                object_offset,
            });
        }
        Ok(out)
    }

    fn link(&self, name: &str) -> Result<&Link> {
        self.links
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::NotFound {
                path: join(&self.path, name),
            })
    }

    /// Resolves `path` (components separated by `/`) to (parent path, object header address).
    fn resolve(&self, path: &str) -> Result<(String, u64)> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.len() > MAX_PATH_COMPONENTS {
            return Err(Error::NotFound {
                path: path.to_owned(),
            });
        }
        let Some((last, dirs)) = parts.split_last() else {
            let rel = self.header.offset.saturating_sub(self.file.ctx.base);
            return Ok((self.path.clone(), rel));
        };
        let mut owned: Option<Group<'f>> = None;
        for d in dirs {
            let g = owned.as_ref().unwrap_or(self);
            let next = g.child_group(d)?;
            owned = Some(next);
        }
        let g = owned.as_ref().unwrap_or(self);
        let link = g.link(last)?;
        let full = join(&g.path, last);
        match (&link.soft_target, link.entry.header) {
            (Some(t), _) => Err(unsupported(
                Feature::SoftLink,
                g.header.offset,
                format!("{full} is a soft link to {t}"),
            )),
            (None, None) => Err(malformed(
                "symbol table entry",
                g.header.offset,
                format!("{full} points to the undefined address"),
            )),
            (None, Some(rel)) => Ok((full, rel)),
        }
    }

    fn child_group(&self, name: &str) -> Result<Group<'f>> {
        let (full, rel) = self.resolve(name)?;
        Group::open(self.file, full.clone(), rel).map_err(|e| match e {
            e @ Error::WrongKind { .. } => e,
            e => e.context(full),
        })
    }

    /// The group at a path relative to this one.
    pub fn group(&self, path: &str) -> Result<Group<'f>> {
        let (full, rel) = self.resolve(path)?;
        Group::open(self.file, full.clone(), rel).map_err(|e| match e {
            e @ Error::WrongKind { .. } => e,
            e => e.context(full),
        })
    }

    /// The dataset at a path relative to this group.
    pub fn dataset(&self, path: &str) -> Result<DatasetInfo> {
        let (full, rel) = self.resolve(path)?;
        let h = header::read(&self.file.ctx, rel).map_err(|e| e.context(full.clone()))?;
        if h.kind() != ObjectKind::Dataset {
            return Err(Error::WrongKind {
                path: full,
                expected: "dataset",
                found: h.kind().name(),
            });
        }
        dataset_info(&self.file.ctx, &h).map_err(|e| e.context(full))
    }

    /// Names of this group's attributes.
    pub fn attr_names(&self) -> Result<Vec<String>> {
        self.check_dense_attrs()?;
        self.header
            .messages
            .iter()
            .filter(|m| m.mtype == msg::ATTRIBUTE)
            .map(|m| message::attribute_name(&self.file.ctx, &m.data, m.offset))
            .collect()
    }

    /// The attribute `name`, or `None` if there is none.
    pub fn attr(&self, name: &str) -> Result<Option<Attribute>> {
        self.check_dense_attrs()?;
        for m in self
            .header
            .messages
            .iter()
            .filter(|m| m.mtype == msg::ATTRIBUTE)
        {
            let ctx = &self.file.ctx;
            let ctxerr = |e: Error| e.context(format!("{}@{name}", self.path));
            if message::attribute_name(ctx, &m.data, m.offset).map_err(ctxerr)? == name {
                if m.flags & FLAG_SHARED != 0 {
                    return Err(ctxerr(unsupported(
                        Feature::SharedMessage,
                        m.offset,
                        "shared attribute message",
                    )));
                }
                let raw = message::attribute(ctx, &m.data, m.offset).map_err(ctxerr)?;
                return decode(ctx, raw).map(Some).map_err(ctxerr);
            }
        }
        Ok(None)
    }

    fn check_dense_attrs(&self) -> Result<()> {
        if let Some(m) = self.header.find(msg::ATTRIBUTE_INFO) {
            // version, flags, [max creation index], fractal heap address, ...
            let mut c = self
                .file
                .ctx
                .cursor(&m.data, m.offset, "attribute info message");
            let _version = c.u8()?;
            let flags = c.u8()?;
            if flags & 0x01 != 0 {
                c.skip(2)?;
            }
            if c.addr()?.is_some() {
                return Err(unsupported(
                    Feature::DenseAttributes,
                    m.offset,
                    "attributes in dense storage (fractal heap)",
                ));
            }
        }
        Ok(())
    }
}

/// Builds a [`DatasetInfo`] from a dataset's header, refusing everything outside the subset.
fn dataset_info(ctx: &Ctx, h: &ObjectHeader) -> Result<DatasetInfo> {
    if let Some(m) = h.find(msg::FILTER_PIPELINE) {
        return Err(unsupported(
            Feature::FilterPipeline,
            m.offset,
            "filter pipeline (compression/shuffle/checksum) present",
        ));
    }
    if let Some(m) = h.find(msg::EXTERNAL_FILES) {
        return Err(unsupported(
            Feature::ExternalStorage,
            m.offset,
            "raw data in external files",
        ));
    }
    let get = |t: u16, what: &'static str| {
        let m = h.find(t).ok_or_else(|| {
            malformed(
                "dataset object header",
                h.offset,
                format!("no {what} message"),
            )
        })?;
        if m.flags & FLAG_SHARED != 0 {
            return Err(unsupported(
                Feature::SharedMessage,
                m.offset,
                format!("shared (committed) {what} message"),
            ));
        }
        Ok(m)
    };
    let lm = get(msg::LAYOUT, "data layout")?;
    let layout = message::layout(&mut ctx.cursor(&lm.data, lm.offset, "data layout message"))?;
    let tm = get(msg::DATATYPE, "datatype")?;
    let dt = message::datatype(&mut ctx.cursor(&tm.data, tm.offset, "datatype message"))?;
    let dtype = match dt {
        Datatype::Float {
            big_endian: true, ..
        }
        | Datatype::Int {
            big_endian: true, ..
        } => {
            return Err(unsupported(
                Feature::BigEndian,
                tm.offset,
                "big-endian dataset",
            ))
        }
        Datatype::Float { size: 2, .. } => Dtype::F16,
        Datatype::Float { size: 4, .. } => Dtype::F32,
        Datatype::Float { .. } => Dtype::F64,
        Datatype::Int { size, signed, .. } => match (size, signed) {
            (1, true) => Dtype::I8,
            (2, true) => Dtype::I16,
            (4, true) => Dtype::I32,
            (8, true) => Dtype::I64,
            (1, false) => Dtype::U8,
            (2, false) => Dtype::U16,
            (4, false) => Dtype::U32,
            _ => {
                if signed {
                    Dtype::I64
                } else {
                    Dtype::U64
                }
            }
        },
        Datatype::FixedString { .. } | Datatype::VlenString => {
            return Err(unsupported(
                Feature::Datatype,
                tm.offset,
                "string dataset (only numeric datasets are read)",
            ))
        }
    };
    let sm = get(msg::DATASPACE, "dataspace")?;
    let space = message::dataspace(&mut ctx.cursor(&sm.data, sm.offset, "dataspace message"))?;
    let shape = match space {
        Dataspace::Scalar => Vec::new(),
        Dataspace::Simple(d) => d,
        Dataspace::Null => {
            return Err(unsupported(
                Feature::Dataspace,
                sm.offset,
                "null dataspace (h5py.Empty) dataset",
            ))
        }
    };
    let count = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size()));
    let data_len = count.ok_or_else(|| {
        super::error::limit(
            "dataspace",
            sm.offset,
            format!("shape {shape:?} × {} bytes overflows", dtype.size()),
        )
    })?;
    let (data_offset, stored, compact) = match layout {
        Layout::Compact { offset, size } => (offset, size, true),
        Layout::Contiguous { addr: None, size } => {
            if data_len != 0 {
                return Err(unsupported(
                    Feature::Unallocated,
                    lm.offset,
                    format!("contiguous storage of {size} bytes never allocated (dataset never written)"),
                ));
            }
            (0, 0, false)
        }
        Layout::Contiguous {
            addr: Some(rel),
            size,
        } => {
            let abs = ctx.base.checked_add(rel).ok_or_else(|| {
                malformed("data layout message", lm.offset, "data address overflows")
            })?;
            (abs, size, false)
        }
    };
    if stored != data_len {
        return Err(malformed(
            "data layout message",
            lm.offset,
            format!(
                "storage holds {stored} bytes but shape {shape:?} of {} needs {data_len}",
                dtype.numpy()
            ),
        ));
    }
    let data_offset = if data_len == 0 { 0 } else { data_offset };
    ctx.reader.check("dataset data", data_offset, data_len)?;
    Ok(DatasetInfo {
        dtype,
        shape,
        data_offset,
        data_len,
        compact,
    })
}
