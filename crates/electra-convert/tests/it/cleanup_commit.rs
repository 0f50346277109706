//! The interrupt cleanup and the commit of a staging directory exclude each other. Before, a
//! SIGINT landing while `convert` renamed its finished staging directory into place could
//! delete files out of it mid-rename: the run then exited 0 with an incomplete output
//! (`hostile_cli`'s SIGINT test caught it once conversions got fast enough to finish within the
//! test's 100 ms). Now the cleanup waits for a running commit, and afterwards finds nothing of
//! the committed output to delete.

use std::sync::mpsc;
use std::time::Duration;

use electra_convert::write::cleanup;

#[test]
fn cleanup_waits_for_a_running_commit_and_runs_before_a_later_one() {
    let tmp = tempfile::tempdir().unwrap();

    // `remove_inside` is `remove_all` (what the signal handler runs) limited to this test's
    // directory, so conversions of other tests in this process keep their staging.
    // A commit under way: the cleanup (what the signal handler runs) must wait for it.
    let staging = tmp.path().join(".out.tmp-1");
    let fin = tmp.path().join("out");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("model.safetensors"), b"complete").unwrap();
    cleanup::register(&staging);
    let (inside, is_inside) = mpsc::channel();
    let committer = {
        let (staging, fin) = (staging.clone(), fin.clone());
        std::thread::spawn(move || {
            cleanup::commit(&[staging.as_path()], || {
                inside.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                std::fs::rename(&staging, &fin)
            })
        })
    };
    is_inside.recv().unwrap();
    drop(cleanup::remove_inside(tmp.path()));
    committer.join().unwrap().unwrap();
    assert_eq!(
        std::fs::read(fin.join("model.safetensors")).unwrap(),
        b"complete"
    );
    assert!(!staging.exists());

    // A cleanup first: the staging directory is gone and the later commit fails cleanly.
    let staging = tmp.path().join(".out2.tmp-2");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("model.safetensors"), b"partial").unwrap();
    cleanup::register(&staging);
    drop(cleanup::remove_inside(tmp.path()));
    assert!(!staging.exists());
    let fin2 = tmp.path().join("out2");
    let err =
        cleanup::commit(&[staging.as_path()], || std::fs::rename(&staging, &fin2)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(!fin2.exists());
}

/// Regression: an interrupt while the writer still creates files in the staging directory
/// removed it only partly ("directory not empty"; the SIGINT test failed on a loaded machine).
/// The cleanup now tries again until the directory is gone.
#[test]
fn cleanup_removes_a_staging_directory_that_is_still_being_written() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join(".busy.tmp-3");
    std::fs::create_dir(&staging).unwrap();
    cleanup::register(&staging);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (staging, stop) = (staging.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            // Keeps creating files until told to stop or the directory is gone.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 200_000 {
                if std::fs::write(staging.join(format!("f{n}")), b"x").is_err() {
                    break;
                }
                n += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    drop(cleanup::remove_inside(tmp.path()));
    let gone = !staging.exists();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(gone, "the staging directory survived the cleanup");
}
