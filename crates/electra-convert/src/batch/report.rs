//! Batch reports: the `--report` JSON document, the `--junit` XML, and writing either atomically.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{BatchError, JobRecord, JobStatus, Shard, Tally};

/// What a report describes besides the records.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The manifest the jobs came from.
    pub manifest: PathBuf,
    /// The shard run (`--shard I/N`), if any.
    pub shard: Option<Shard>,
    /// Jobs in the whole manifest (this shard may hold fewer).
    pub manifest_jobs: usize,
    /// Number of jobs run at once.
    pub workers: usize,
    /// Wall time of the whole run.
    pub seconds: f64,
}

/// The `--report` document.
pub fn report_json(info: &RunInfo, records: &[JobRecord]) -> Value {
    let tally = Tally::of(records);
    let jobs: Vec<Value> = records
        .iter()
        .map(|r| {
            let converted = r.converted.as_ref();
            serde_json::json!({
                "name": r.name,
                "index": r.index,
                "status": r.status,
                "output": r.output,
                "seconds": round_ms(r.seconds),
                "error": r.error,
                "directories": converted.map(|c| &c.directories),
                "warnings": converted.map(|c| &c.warnings),
                "verify": converted.and_then(|c| c.verify.as_ref()),
                "fetched": converted.and_then(|c| c.fetched),
                "uploaded": converted.and_then(|c| c.uploaded.as_ref()),
            })
        })
        .collect();
    // Jobs reading from buckets: what they fetched in all (absent when none did).
    let fetched: Vec<_> = records
        .iter()
        .filter_map(|r| r.converted.as_ref()?.fetched)
        .collect();
    let fetched_total = (!fetched.is_empty()).then(|| {
        serde_json::json!({
            "jobs": fetched.len(),
            "bytes_fetched": fetched.iter().map(|f| f.bytes_fetched).sum::<u64>(),
            "bytes_needed": fetched.iter().map(|f| f.bytes_needed).sum::<u64>(),
            "requests": fetched.iter().map(|f| f.requests).sum::<u64>(),
        })
    });
    serde_json::json!({
        "manifest": info.manifest,
        "shard": info.shard.map(|s| s.to_string()),
        "manifest_jobs": info.manifest_jobs,
        "workers": info.workers,
        "seconds": round_ms(info.seconds),
        "total": tally.total(),
        "ok": tally.ok,
        "failed": tally.failed,
        "parity_failed": tally.parity_failed,
        "skipped": tally.skipped,
        "fetched": fetched_total,
        "jobs": jobs,
    })
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The `--junit` document: one `<testsuite>`, one `<testcase>` per job. Failed and
/// parity-failed jobs carry `<failure>`, skipped ones `<skipped/>`.
pub fn junit_xml(info: &RunInfo, records: &[JobRecord]) -> String {
    let tally = Tally::of(records);
    let suite = match info.shard {
        Some(shard) => format!("electra-convert batch (shard {shard})"),
        None => "electra-convert batch".to_string(),
    };
    // <testsuites> and its single <testsuite> carry the same totals.
    let totals = format!(
        "name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\"",
        xml_escape(&suite),
        tally.total(),
        tally.failed + tally.parity_failed,
        tally.skipped,
        info.seconds
    );
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(xml, "<testsuites {totals}>");
    let _ = writeln!(xml, "  <testsuite {totals}>");
    let _ = writeln!(
        xml,
        "    <properties>\n      <property name=\"manifest\" value=\"{}\"/>\n    </properties>",
        xml_escape(&info.manifest.display().to_string())
    );
    for r in records {
        let _ = write!(
            xml,
            "    <testcase classname=\"electra-convert.batch\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(&r.name),
            r.seconds
        );
        let error = r.error.as_deref().unwrap_or("");
        match r.status {
            JobStatus::Ok => xml.push_str("/>\n"),
            JobStatus::Skipped => {
                let _ = write!(
                    xml,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml_escape(error)
                );
            }
            JobStatus::Failed | JobStatus::ParityFailed => {
                let kind = if r.status == JobStatus::Failed {
                    "error"
                } else {
                    "parity"
                };
                let _ = write!(
                    xml,
                    ">\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>\n",
                    xml_escape(error),
                    xml_escape_text(&format!(
                        "{error}\noutput: {}",
                        r.output.display()
                    ))
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Escape text for an XML attribute or element. Characters XML 1.0 cannot carry at all
/// (most C0 controls) become U+FFFD; newlines and tabs become character references so they
/// survive attribute-value normalization.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escape element text: like [`xml_escape`], but newlines and tabs stay literal.
fn xml_escape_text(text: &str) -> String {
    xml_escape(text)
        .replace("&#10;", "\n")
        .replace("&#13;", "\r")
        .replace("&#9;", "\t")
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written report. Creates missing parent directories.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    let err = |error| BatchError::WriteReport {
        path: path.to_path_buf(),
        error,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}
