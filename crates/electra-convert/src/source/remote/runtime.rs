//! The private async runtime: the public API is synchronous and blocks on this.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// Two worker threads: the work is network-bound, and the machine may be small.
const WORKERS: usize = 2;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("remote-io")
            .enable_all()
            .build()
            .expect("cannot start the object-store I/O threads")
    })
}

/// Runs `fut` to completion on the private runtime. Safe to call from any thread, including from
/// inside another tokio runtime (then it runs on a short-lived helper thread instead of panicking).
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime();
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(fut))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        rt.block_on(fut)
    }
}
