//! `batch`: run a manifest of conversions for CI.
//!
//! The library half ([`electra_convert::batch`]) parses the manifest, shards it, schedules the jobs, runs
//! each through the library converter and renders reports; this file adds the progress display,
//! stdout/stderr and the exit-code policy.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::BatchArgs;
use crate::exit;
use electra_convert::batch::{
    self, describe_options, junit_xml, report_json, run_jobs, write_atomically, Job, JobRecord,
    JobStatus, RunInfo, Shard, Tally,
};

use super::progress::BarProgress;

pub fn run(args: &BatchArgs) -> anyhow::Result<()> {
    let manifest = batch::load_manifest(&args.manifest)?;
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let mut jobs = match shard {
        Some(shard) => shard.select(&manifest.jobs),
        None => manifest.jobs.clone(),
    };
    for job in &mut jobs {
        job.options.force |= args.force;
    }

    // A report that cannot be written is only found out after every job ran: catch the
    // obvious case (a directory given as the report file) before converting anything.
    for (flag, path) in [("--report", &args.report), ("--junit", &args.junit)] {
        if let Some(path) = path.as_ref().filter(|p| p.is_dir()) {
            anyhow::bail!(
                "{flag} {} is a directory; pass a file path (e.g. {}); no job was run",
                path.display(),
                path.join(if flag == "--report" {
                    "report.json"
                } else {
                    "junit.xml"
                })
                .display()
            );
        }
    }

    if args.dry_run {
        print_plan(&manifest.path, manifest.jobs.len(), shard, &jobs);
        return Ok(());
    }

    let workers = args
        .jobs
        .map_or_else(batch::default_workers, |n| n as usize)
        .max(1);
    let display = Display::new(args.quiet, jobs.len());
    if jobs.is_empty() {
        display.note(&format!(
            "shard {} has no jobs (the manifest lists {}); nothing to do",
            shard.map(|s| s.to_string()).unwrap_or_default(),
            manifest.jobs.len()
        ));
    }

    let started = Instant::now();
    let records = run_jobs(
        &jobs,
        workers,
        args.fail_fast,
        |job| {
            let mut bar = BarProgress::keeping_style(display.job_bar(job));
            let result = batch::run_job(job, &mut bar);
            display.finish_job_bar(bar.bar);
            result
        },
        |record| display.job_done(record),
    );
    display.finish();

    let info = RunInfo {
        manifest: manifest.path.clone(),
        shard,
        manifest_jobs: manifest.jobs.len(),
        workers: workers.min(jobs.len().max(1)),
        seconds: started.elapsed().as_secs_f64(),
    };
    print_summary(&records);
    if let Some(path) = &args.report {
        let mut text = serde_json::to_string_pretty(&report_json(&info, &records))?;
        text.push('\n');
        write_atomically(path, text.as_bytes())?;
    }
    if let Some(path) = &args.junit {
        write_atomically(path, junit_xml(&info, &records).as_bytes())?;
    }

    let tally = Tally::of(&records);
    if tally.failed > 0 {
        anyhow::bail!(
            "{} of {} jobs failed: {}{}",
            tally.failed,
            tally.total(),
            names_with(&records, JobStatus::Failed),
            if tally.skipped > 0 {
                format!(" ({} skipped after --fail-fast)", tally.skipped)
            } else {
                String::new()
            }
        );
    }
    if tally.parity_failed > 0 {
        return Err(exit::ParityFailed(format!(
            "{} of {} jobs converted but failed their parity check: {}",
            tally.parity_failed,
            tally.total(),
            names_with(&records, JobStatus::ParityFailed)
        ))
        .into());
    }
    Ok(())
}

fn names_with(records: &[JobRecord], status: JobStatus) -> String {
    records
        .iter()
        .filter(|r| r.status == status)
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--dry-run`: what would run, and where.
fn print_plan(manifest: &Path, total: usize, shard: Option<Shard>, jobs: &[Job]) {
    match shard {
        Some(shard) => println!(
            "{}: {total} job(s); shard {shard} runs {} of them (job k, counted from 0, belongs to shard k mod {} + 1)",
            manifest.display(),
            jobs.len(),
            shard.total
        ),
        None => println!("{}: {total} job(s)", manifest.display()),
    }
    for job in jobs {
        let a = &job.options;
        match shard {
            Some(shard) => println!("{} (shard {shard})", job.label()),
            None => println!("{}", job.label()),
        }
        println!("  checkpoint: {}", a.checkpoint.display());
        println!("  model:      {}", a.model.as_str());
        let exists = std::fs::read_dir(&a.output).is_ok_and(|mut d| d.next().is_some());
        let note = match (exists, a.force) {
            (true, true) => "  (exists; will be replaced)",
            (true, false) => "  (exists and is not empty; this job will fail without --force)",
            _ => "",
        };
        println!("  output:     {}{note}", a.output.display());
        println!("  options:    {}", describe_options(a));
    }
    println!("dry run: nothing was converted");
}

/// Final table on stdout: one line per job, then the totals.
fn print_summary(records: &[JobRecord]) {
    let width = records.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for r in records {
        println!(
            "{:<13} {:<width$}  {:>7.1}s  {}",
            r.status.as_str(),
            r.name,
            r.seconds,
            r.output.display()
        );
    }
    let t = Tally::of(records);
    println!(
        "{} job(s): {} ok, {} failed, {} parity failed, {} skipped",
        t.total(),
        t.ok,
        t.failed,
        t.parity_failed,
        t.skipped
    );
    let fetched: Vec<_> = records
        .iter()
        .filter_map(|r| r.converted.as_ref()?.fetched)
        .collect();
    if !fetched.is_empty() {
        println!(
            "fetched from buckets: {} bytes in {} requests ({} job(s))",
            fetched.iter().map(|f| f.bytes_fetched).sum::<u64>(),
            fetched.iter().map(|f| f.requests).sum::<u64>(),
            fetched.len()
        );
    }
}

/// Progress bars (TTY only, not with --quiet) and per-job lines on stderr.
struct Display {
    quiet: bool,
    multi: Option<MultiProgress>,
    overall: ProgressBar,
}

impl Display {
    fn new(quiet: bool, jobs: usize) -> Display {
        if quiet || !std::io::stderr().is_terminal() {
            return Display {
                quiet,
                multi: None,
                overall: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(jobs as u64));
        overall.set_style(
            ProgressStyle::with_template("batch [{bar:30}] {pos}/{len} jobs  {elapsed_precise}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.enable_steady_tick(Duration::from_millis(200));
        Display {
            quiet,
            multi: Some(multi),
            overall,
        }
    }

    fn job_bar(&self, job: &Job) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = multi.insert_before(&self.overall, ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "  {prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(job.name.clone());
        bar
    }

    fn finish_job_bar(&self, bar: ProgressBar) {
        bar.finish_and_clear();
        if let Some(multi) = &self.multi {
            multi.remove(&bar);
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn note(&self, text: &str) {
        if !self.quiet {
            self.line(&format!("electra-convert: {text}"));
        }
    }

    fn job_done(&self, record: &JobRecord) {
        self.overall.inc(1);
        let error = record.error.as_deref().unwrap_or("");
        match record.status {
            JobStatus::Ok => {
                if !self.quiet {
                    self.line(&format!(
                        "ok       {} ({:.1}s)",
                        record.name, record.seconds
                    ));
                }
            }
            // Failures are printed even with --quiet, as `convert` prints its errors.
            JobStatus::Failed => self.line(&format!("FAILED   {}: {error}", record.name)),
            JobStatus::ParityFailed => self.line(&format!("PARITY   {}: {error}", record.name)),
            JobStatus::Skipped => {
                if !self.quiet {
                    self.line(&format!("skipped  {}", record.name));
                }
            }
        }
        if !self.quiet {
            for warning in record.converted.iter().flat_map(|c| &c.warnings) {
                self.line(&format!("  note ({}): {warning}", record.name));
            }
        }
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
    }
}
