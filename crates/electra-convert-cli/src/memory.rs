//! Process-wide allocator policy for streaming work: keep freed buffers for reuse.
//!
//! The parity check streams a model stage by stage: every encoder layer's weights are read into
//! fresh buffers, used once and dropped, on both sides. With glibc's default policy each buffer
//! larger than a few hundred KiB is its own `mmap`, given back with `munmap` when dropped, so the
//! next layer's buffers are new pages again and every 4 KiB page costs a page fault and a
//! clearing: on the ELECTRA-base check that was ~117,000 faults and about a third of the time.
//! [`reuse_freed_memory`] makes such buffers come from the heap and keeps freed heap memory in the
//! process, so a layer's buffers land on the pages the previous layer used. Peak memory hardly
//! changes (the pages kept are mostly the ones the largest stage touched anyway: the same peak
//! RSS on the ELECTRA-base check, 3 MiB more on a plain conversion, which reuses its own buffers
//! and so gains nothing), but freed pages are not returned to the system until the process ends.
//! That suits a command-line run, not necessarily a long-running service: the libraries never
//! call this, and the command layer calls it only for commands that run a forward pass.

/// The largest buffer glibc's `mallopt` lets come from the heap (`DEFAULT_MMAP_THRESHOLD_MAX`
/// on 64-bit targets). An ELECTRA-large FFN kernel is 16 MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_UP_TO: libc::c_int = 32 << 20;

/// Free memory at the top of the heap that glibc keeps instead of trimming it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEEP_UP_TO: libc::c_int = 1 << 30;

/// Make large allocations come from the heap and keep freed heap memory for reuse (glibc on
/// Linux; elsewhere nothing changes). Returns whether the policy is in effect. Calling it again
/// changes nothing.
pub fn reuse_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static APPLIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *APPLIED.get_or_init(|| {
            // SAFETY: mallopt only changes allocator parameters; both values are within the
            // ranges glibc accepts (it returns 0 for values it refuses, changing nothing).
            let heap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_UP_TO) };
            let keep = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_UP_TO) };
            heap == 1 && keep == 1
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    /// glibc accepts both parameters (it refuses a heap threshold above 32 MiB).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_policy() {
        assert!(super::reuse_freed_memory());
        assert!(super::reuse_freed_memory(), "a second call keeps it");
    }
}
