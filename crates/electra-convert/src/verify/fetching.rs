//! A checkpoint check's view of a [`Source`]: the variables by their TF names, fetched from a
//! bucket only as the check needs them. Every variable whose shape the check looks up is
//! remembered; the first read then fetches all of them at once (the towers check every
//! parameter's shape before the first stage runs, so that is exactly the tower being checked,
//! never the other one or the optimizer slots), and a read of anything else fetches that one
//! variable. For local files fetching is a no-op.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::tf::TfVariables;
use super::VerifyError;
use crate::source::Source;

/// [`TfVariables`] over a source, fetching lazily (see the module docs).
pub(crate) struct FetchingVariables<'a> {
    source: &'a Source,
    /// The checkpoint as the user named it, for messages.
    named: PathBuf,
    /// Names whose shape was looked up, and names already fetched.
    seen: Mutex<(BTreeSet<String>, BTreeSet<String>)>,
}

impl<'a> FetchingVariables<'a> {
    pub(crate) fn new(source: &'a Source) -> Self {
        FetchingVariables {
            source,
            named: PathBuf::from(source.location()),
            seen: Mutex::new((BTreeSet::new(), BTreeSet::new())),
        }
    }

    /// Make `name` readable: fetch it together with every variable looked up so far and not
    /// fetched yet.
    fn ensure(&self, name: &str) -> Result<(), VerifyError> {
        if self.source.fetched().is_none() {
            return Ok(()); // local files: nothing to fetch
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (looked_up, fetched) = &mut *seen;
        if fetched.contains(name) {
            return Ok(());
        }
        let mut batch: Vec<String> = looked_up.difference(fetched).cloned().collect();
        if !looked_up.contains(name) {
            batch.push(name.to_string());
        }
        self.source
            .prefetch(batch.iter().map(String::as_str))
            .map_err(|e| VerifyError::Checkpoint {
                path: self.named.clone(),
                message: e.to_string(),
            })?;
        fetched.extend(batch);
        Ok(())
    }
}

impl TfVariables for FetchingVariables<'_> {
    fn path(&self) -> &Path {
        &self.named
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let shape = TfVariables::shape(self.source.checkpoint(), name)?;
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .insert(name.to_string());
        Some(shape)
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>, VerifyError> {
        self.ensure(name)?;
        TfVariables::read_f32(self.source.checkpoint(), name)
    }

    fn read_f32_rows(
        &self,
        name: &str,
        width: usize,
        ids: &[u32],
    ) -> Result<Vec<f32>, VerifyError> {
        self.ensure(name)?;
        TfVariables::read_f32_rows(self.source.checkpoint(), name, width, ids)
    }
}
