//! Allocator settings for tensor workloads.

/// Keeps large freed buffers in the process instead of handing them back to
/// the kernel. Every layer allocates and frees tensors of tens of megabytes;
/// with glibc's defaults each is a fresh `mmap`, and touching it again costs
/// one page fault per 4 KiB. A no-op on other platforms.
pub fn keep_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator thresholds; called before any
    // threads allocate concurrently is not required by glibc.
    unsafe {
        // M_MMAP_THRESHOLD (-3): allocations below 1 GiB come from the heap;
        // M_TRIM_THRESHOLD (-1): do not trim the heap back below 1 GiB free.
        libc::mallopt(-3, 1 << 30);
        libc::mallopt(-1, 1 << 30);
    }
}
