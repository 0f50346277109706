//! Putting a TF V2 checkpoint on disk atomically: `-o OUT/PREFIX` stages a whole new directory
//! `OUT` (through `Staging`, so an error or SIGINT/SIGTERM leaves nothing behind), streams the
//! tensors into `PREFIX.data-00000-of-00001`, then writes `PREFIX.index` and the `checkpoint`
//! state file naming `PREFIX` relatively (as TF's Saver does), fsyncs and renames `OUT` into place.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use tf_checkpoint::{state_file_text, with_suffix, BundleWriteError, BundleWriter, STATE_FILE};

use super::{io_err, EarlyWriteback, Staging, WriteError};

/// The data-shard sink: buffered, with early writeback like model.safetensors.
pub(crate) type DataSink = BufWriter<EarlyWriteback>;

/// A checkpoint being written into a staging directory.
pub(crate) struct BundleOutput {
    staging: Staging,
    /// `OUT/PREFIX` as the user gave it.
    prefix: PathBuf,
    name: String,
    writer: BundleWriter<DataSink>,
}

impl std::fmt::Debug for BundleOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleOutput")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Split `OUT/PREFIX` into the directory to create and the prefix file name.
pub(crate) fn split_prefix(prefix: &Path) -> Result<(PathBuf, String), WriteError> {
    let bad = || WriteError::PrefixName {
        path: prefix.to_path_buf(),
    };
    let text = prefix.to_str().ok_or_else(bad)?;
    if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(bad());
    }
    let name = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(bad)?;
    let dir = prefix
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && p.file_name().is_some())
        .ok_or_else(bad)?;
    Ok((dir.to_path_buf(), name.to_string()))
}

impl BundleOutput {
    /// Stage `OUT` for `-o OUT/PREFIX` (refused when `OUT` exists and is not empty, unless
    /// `force`) and open the data shard.
    pub(crate) fn begin(prefix: &Path, force: bool) -> Result<BundleOutput, WriteError> {
        let (dir, name) = split_prefix(prefix)?;
        let staging = Staging::begin(&dir, force)?;
        let data_path = with_suffix(&staging.path().join(&name), ".data-00000-of-00001");
        let file = File::create(&data_path)
            .map_err(io_err(&data_path))
            .map_err(|e| staging.attribute(e))?;
        let sink = BufWriter::with_capacity(1 << 20, EarlyWriteback::new(file));
        Ok(BundleOutput {
            staging,
            prefix: prefix.to_path_buf(),
            name,
            writer: BundleWriter::new(sink),
        })
    }

    /// The writer tensors are added to.
    pub(crate) fn writer(&mut self) -> &mut BundleWriter<DataSink> {
        &mut self.writer
    }

    /// Turn a writer error into a [`WriteError`] about the file the user asked for.
    pub(crate) fn error(&self, error: BundleWriteError) -> WriteError {
        let data = with_suffix(
            &self.staging.path().join(&self.name),
            ".data-00000-of-00001",
        );
        let e = match error {
            BundleWriteError::Io(e) => io_err(&data)(e),
            other => WriteError::Bundle {
                prefix: self.prefix.clone(),
                error: other.to_string(),
            },
        };
        self.staging.attribute(e)
    }

    /// Write the index and state file, fsync, and rename the directory into place.
    pub(crate) fn commit(self) -> Result<PathBuf, WriteError> {
        let BundleOutput {
            staging,
            prefix,
            name,
            writer,
        } = self;
        let staged = staging.path().join(&name);
        let data_path = with_suffix(&staged, ".data-00000-of-00001");
        let index_path = with_suffix(&staged, ".index");
        let index = File::create(&index_path)
            .map_err(io_err(&index_path))
            .map_err(|e| staging.attribute(e))?;
        let (data, index) = writer
            .finish(BufWriter::new(index))
            .map_err(|e| match e {
                BundleWriteError::Io(e) => io_err(&index_path)(e),
                other => WriteError::Bundle {
                    prefix: prefix.clone(),
                    error: other.to_string(),
                },
            })
            .map_err(|e| staging.attribute(e))?;
        let data = data
            .into_inner()
            .map_err(|e| io_err(&data_path)(e.into_error()))
            .map_err(|e| staging.attribute(e))?
            .file;
        data.sync_all()
            .map_err(io_err(&data_path))
            .map_err(|e| staging.attribute(e))?;
        let index = index
            .into_inner()
            .map_err(|e| io_err(&index_path)(e.into_error()))
            .map_err(|e| staging.attribute(e))?;
        index
            .sync_all()
            .map_err(io_err(&index_path))
            .map_err(|e| staging.attribute(e))?;
        let state = staging.path().join(STATE_FILE);
        std::fs::write(&state, state_file_text(&name))
            .map_err(io_err(&state))
            .map_err(|e| staging.attribute(e))?;
        staging.commit()?;
        Ok(prefix)
    }
}
