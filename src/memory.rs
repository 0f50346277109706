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
//! That suits a command-line run, not necessarily a long-running service: the library never
//! calls this itself, and the command layer calls it only for commands that run a forward pass.

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

/// Buffers at least this large are asked to be backed by transparent huge pages.
const HUGE_FROM: usize = 8 << 20;

/// `count` zeros, for a tensor about to be read into. A buffer of `HUGE_FROM` (8 MiB) or more is
/// marked for transparent huge pages on Linux. That matters for the ones the allocator maps fresh
/// from the kernel (all of them by default; with [`reuse_freed_memory`] those over 32 MiB, such
/// as a 94 MB ELECTRA-base vocabulary table): the kernel clears each page on first touch, and
/// with the advice the read faults in 2 MiB pages instead of 4 KiB ones (about 500 times fewer
/// faults). On reused heap memory, or where huge pages are off, the advice changes nothing.
pub fn zeroed_f32(count: usize) -> Vec<f32> {
    // calloc: fresh pages from the kernel are known to be zero, so nothing is written here.
    let buffer = vec![0f32; count];
    #[cfg(target_os = "linux")]
    if count * 4 >= HUGE_FROM {
        advise_huge_pages(bytemuck::cast_slice(&buffer));
    }
    buffer
}

/// Ask for huge pages over the whole 2 MiB-aligned pages inside `bytes` (advice only: the
/// contents do not change, a refusal is ignored).
#[cfg(target_os = "linux")]
fn advise_huge_pages(bytes: &[u8]) {
    const HUGE: usize = 2 << 20;
    let start = (bytes.as_ptr() as usize).next_multiple_of(HUGE);
    let end = (bytes.as_ptr() as usize + bytes.len()) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside `bytes`, memory this process owns; MADV_HUGEPAGE only
        // changes how the kernel backs it, never its contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
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

    /// Large and small buffers alike are zeros of the asked length.
    #[test]
    fn zeroed_buffers_are_zero() {
        for count in [0, 1, 1000, (super::HUGE_FROM / 4) + 12345] {
            let buffer = super::zeroed_f32(count);
            assert_eq!(buffer.len(), count);
            assert!(buffer.iter().all(|&x| x.to_bits() == 0));
        }
    }
}
