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

/// Makes this thread, and the threads it starts afterwards (POSIX threads
/// inherit the floating-point environment: rayon's pool included, if it is
/// created later), treat subnormal floats as zero (x86 MXCSR FTZ and DAZ).
///
/// Soft memberships `softmax(−λ‖C_j z‖)` with λ = 500 reach e^-200, and
/// their products and gradients fall below f32's normal range (1.2e-38);
/// x86 cores handle such operands about 100× slower, which made training
/// through the spectral layers several times slower. Values that small
/// cannot change an f32 result, so flushing them changes no output we
/// report. A no-op on other architectures.
pub fn flush_subnormals() {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control
        // register through a valid, aligned u32 on the stack; setting the
        // FTZ (bit 15) and DAZ (bit 6) modes cannot fault.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= (1 << 15) | (1 << 6);
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
    }
}
