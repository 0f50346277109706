//! Running a batch: CI shards, the worker pool with per-job panic isolation and fail-fast, and
//! one job's conversion through the library entry point.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::{BatchError, Job};
use crate::convert::{ConvertError, FetchTotals, Progress, Uploaded};
use crate::verify::ParityReport;

/// `--shard I/N`: job k (0-based, manifest order) belongs to shard (k mod N) + 1.
///
/// Round-robin rather than contiguous blocks, because sweeps list checkpoints in training
/// order and neighbouring jobs tend to have similar cost; dealing them out spreads the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    /// Number of shards (N).
    pub total: usize,
}

impl Shard {
    /// Parse `I/N` as given to `--shard`.
    pub fn parse(spec: &str) -> Result<Shard, BatchError> {
        let bad = |reason: &str| BatchError::BadShard {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (i, n) = spec.trim().split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("I is not a whole number"))?;
        let total: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        if total == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index == 0 || index > total {
            return Err(bad("I must be between 1 and N"));
        }
        Ok(Shard { index, total })
    }

    /// The 1-based shard that job `k` (0-based manifest position) belongs to with `total` shards.
    pub fn of(k: usize, total: usize) -> usize {
        k % total + 1
    }

    /// Whether `job` belongs to this shard.
    pub fn contains(&self, job: &Job) -> bool {
        Shard::of(job.index, self.total) == self.index
    }

    /// This shard's jobs, in manifest order.
    pub fn select(&self, jobs: &[Job]) -> Vec<Job> {
        jobs.iter().filter(|j| self.contains(j)).cloned().collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// What a successful conversion produced, as the batch layer needs it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Converted {
    /// The written model directories (two for `model = "both"`).
    pub directories: Vec<PathBuf>,
    /// Non-fatal notes from the converter.
    pub warnings: Vec<String>,
    /// Parity results, present when the job asked for `verify` and/or `reference`.
    pub verify: Option<VerifySummary>,
    /// From a bucket: bytes fetched and needed, requests, the checkpoint's size.
    pub fetched: Option<FetchTotals>,
    /// To a bucket: what was uploaded.
    pub uploaded: Option<Uploaded>,
}

/// Parity results of one job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifySummary {
    /// Every check passed.
    pub passed: bool,
    /// One line per failed check, e.g. "discriminator (reference): logits max_abs_diff 0.3 > ...".
    pub failures: Vec<String>,
    /// The full parity reports, as the `verify --json` command prints them.
    pub reports: Vec<ParityReport>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Converted (and checked, if asked).
    Ok,
    /// Stopped with an error.
    Failed,
    /// Converted, but a parity check failed.
    ParityFailed,
    /// Not run (an earlier failure stopped the batch).
    Skipped,
}

impl JobStatus {
    /// The status as spelled in reports (`ok`, `failed`, `parity_failed`, `skipped`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ok => "ok",
            JobStatus::Failed => "failed",
            JobStatus::ParityFailed => "parity_failed",
            JobStatus::Skipped => "skipped",
        }
    }
}

/// The result of one job.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Position in the manifest (0-based).
    pub index: usize,
    /// The job's name.
    pub name: String,
    /// The job's output directory.
    pub output: PathBuf,
    /// How it ended.
    pub status: JobStatus,
    /// Wall time of the job.
    pub seconds: f64,
    /// The error chain (failed), the failed checks (parity_failed) or why it did not run (skipped).
    pub error: Option<String>,
    /// What was written, when the conversion got that far.
    pub converted: Option<Converted>,
}

impl JobRecord {
    fn from_result(job: &Job, seconds: f64, result: Result<Converted, String>) -> JobRecord {
        let (status, error, converted) = match result {
            Err(error) => (JobStatus::Failed, Some(error), None),
            Ok(converted) => match &converted.verify {
                Some(v) if !v.passed => (
                    JobStatus::ParityFailed,
                    Some(if v.failures.is_empty() {
                        "parity check failed".to_string()
                    } else {
                        format!("parity check failed: {}", v.failures.join("; "))
                    }),
                    Some(converted),
                ),
                _ => (JobStatus::Ok, None, Some(converted)),
            },
        };
        JobRecord {
            index: job.index,
            name: job.name.clone(),
            output: job.options.output.clone(),
            status,
            seconds,
            error,
            converted,
        }
    }

    pub(super) fn skipped(job: &Job) -> JobRecord {
        JobRecord {
            index: job.index,
            name: job.name.clone(),
            output: job.options.output.clone(),
            status: JobStatus::Skipped,
            seconds: 0.0,
            error: Some("not started: an earlier job failed and --fail-fast is set".into()),
            converted: None,
        }
    }
}

/// How many workers to use by default: the number of cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run `jobs` on `workers` threads that take jobs from one shared queue in manifest order.
///
/// Each job is `runner(job)` (the command layer passes [`run_job`] with a progress bar), whose
/// error is the message to report; an `Err` or a panic fails that job only (a panic is caught and
/// reported with its message). With `fail_fast`, no job is started after the first failure
/// (jobs already running finish) and the rest are recorded as skipped. A parity failure is not
/// a failure for `fail_fast`: the model was written. `on_done` sees every record as it
/// completes (from the worker thread). Records come back in `jobs` order.
pub fn run_jobs<R, D>(
    jobs: &[Job],
    workers: usize,
    fail_fast: bool,
    runner: R,
    on_done: D,
) -> Vec<JobRecord>
where
    R: Fn(&Job) -> Result<Converted, String> + Sync,
    D: Fn(&JobRecord) + Sync,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<JobRecord>>> = Mutex::new(vec![None; jobs.len()]);
    let workers = workers.clamp(1, jobs.len().max(1));

    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(k) else {
                    break;
                };
                let started = Instant::now();
                let result = match catch_unwind(AssertUnwindSafe(|| runner(job))) {
                    Ok(Ok(converted)) => Ok(converted),
                    Ok(Err(err)) => Err(err),
                    Err(panic) => Err(format!(
                        "the converter panicked (a bug in electra-convert; please report it): {}",
                        panic_message(panic.as_ref())
                    )),
                };
                let record = JobRecord::from_result(job, started.elapsed().as_secs_f64(), result);
                if fail_fast && record.status == JobStatus::Failed {
                    stop.store(true, Ordering::SeqCst);
                }
                on_done(&record);
                lock(&slots)[k] = Some(record);
            });
        }
    });

    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    slots
        .into_iter()
        .zip(jobs)
        .map(|(slot, job)| {
            slot.unwrap_or_else(|| {
                let record = JobRecord::skipped(job);
                on_done(&record);
                record
            })
        })
        .collect()
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Jobs that succeeded.
    pub ok: usize,
    /// Jobs that failed.
    pub failed: usize,
    /// Jobs whose parity check failed.
    pub parity_failed: usize,
    /// Jobs not run.
    pub skipped: usize,
}

impl Tally {
    /// Count the records by status.
    pub fn of(records: &[JobRecord]) -> Tally {
        let mut t = Tally::default();
        for r in records {
            match r.status {
                JobStatus::Ok => t.ok += 1,
                JobStatus::Failed => t.failed += 1,
                JobStatus::ParityFailed => t.parity_failed += 1,
                JobStatus::Skipped => t.skipped += 1,
            }
        }
        t
    }

    /// All jobs counted.
    pub fn total(&self) -> usize {
        self.ok + self.failed + self.parity_failed + self.skipped
    }
}

/// One job, exactly as `electra-convert convert` would run it, reduced to what batch reports.
/// The error is the whole chain, one cause after the other (`what: why: ...`).
pub fn run_job(job: &Job, progress: &mut dyn Progress) -> Result<Converted, String> {
    let options = &job.options;
    let outcome = crate::convert(options, progress).map_err(|e| error_chain(&e))?;
    let verify = if options.verify || options.reference.is_some() {
        let mut failures = Vec::new();
        let mut reports = Vec::new();
        for m in &outcome.outputs {
            for report in &m.verify {
                for (name, c) in report.outputs.iter().filter(|(_, c)| !c.passed) {
                    failures.push(format!(
                        "{} ({}): {name} max_abs_diff {:.3e} > atol {:e} + rtol {:e}·|expected|",
                        m.kind.as_str(),
                        report.mode,
                        c.max_abs_diff,
                        report.tolerance.atol,
                        report.tolerance.rtol
                    ));
                }
                if !report.passed && report.outputs.values().all(|c| c.passed) {
                    failures.push(format!(
                        "{} ({}): {}",
                        m.kind.as_str(),
                        report.mode,
                        report.notes.join("; ")
                    ));
                }
                reports.push(report.clone());
            }
        }
        Some(VerifySummary {
            passed: outcome.parity_passed(),
            failures,
            reports,
        })
    } else {
        None
    };
    Ok(Converted {
        directories: outcome
            .outputs
            .iter()
            .map(|m| m.directory.clone())
            .collect(),
        warnings: outcome.warnings,
        verify,
        fetched: outcome.fetched,
        uploaded: outcome.uploaded,
    })
}

/// `error: cause: cause of the cause`, as the command line prints an error.
pub(crate) fn error_chain(error: &ConvertError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
