//! Buffers for tensors about to be read: zeroed, and backed by transparent huge pages when large.

/// Buffers at least this large are asked to be backed by transparent huge pages.
const HUGE_FROM: usize = 8 << 20;

/// `count` zeros, for a tensor about to be read into. A buffer of `HUGE_FROM` (8 MiB) or more is
/// marked for transparent huge pages on Linux. That matters for the ones the allocator maps fresh
/// from the kernel (all of them by default; with a heap threshold raised by the caller (glibc `mallopt`) those over 32 MiB, such
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
