//! The host path: the same formulas as the tensor code, on host memory,
//! for tensors that live on a CPU device (flex or ndarray).
//!
//! The CPU backends run each tensor operation as its own pass over memory,
//! with a thread hand-off at each; the operations around the big products
//! (norms, softmax, weighted sums, the factorisation's small host blocks)
//! then leave a core idle for a large share of a layer. Here those
//! operations are fused around direct calls to the gemm kernels that flex
//! itself uses, so a layer spends its time in the products, with both cores
//! busy. The arithmetic is the tensor path's, in the same order where it
//! matters (the same recursion, the same f64 base blocks), so results agree
//! with it to f32 round-off.
//!
//! - [`gemm`]: strided matrix views, products and symmetric rank-k Grams.
//! - [`cholesky`]: the f64 base blocks, several matrices per SIMD lane.
//! - [`spd`]: inverse and log-determinant of SPD matrices (the block
//!   Cholesky of [`crate::linalg`]).
//! - [`step`]: the vector layer's soft-membership step, fused.
//! - [`neighbours`]: kNN's search, similarities a tile at a time.

pub mod cholesky;
pub mod gemm;
pub mod neighbours;
pub mod spd;
pub mod step;

/// Runs `f` compiled for the widest vector instructions this CPU has
/// (AVX-512, else AVX2, chosen at run time), for the element-wise loops
/// around the products: the crates are built for baseline x86-64, whose
/// SSE2 does 2 f64 or 4 f32 per instruction where AVX-512 does 8 or 16.
/// The loops are element-wise and Rust never fuses a multiply and an add
/// on its own, so every value is computed exactly as without it.
///
/// `f` is inlined into the variant with the features (a closure called
/// once always is); its loops then vectorise with the wide registers.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { simd::avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { simd::avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
mod simd {
    #[target_feature(enable = "avx512f")]
    pub(super) fn avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// A destination that tasks running side by side write at disjoint
/// positions (tiles of one matrix, samples of one batch).
#[derive(Clone, Copy, Debug)]
pub struct Scatter(*mut f32);

// SAFETY: a `Scatter` is only written through its unsafe methods, whose
// callers guarantee that no two tasks write the same position and that
// every position lies in the one live allocation it was made from.
unsafe impl Send for Scatter {}
unsafe impl Sync for Scatter {}

impl Scatter {
    /// The positions of `dst`, to be written by several tasks.
    pub fn new(dst: &mut [f32]) -> Self {
        Self(dst.as_mut_ptr())
    }

    /// The spare room of a vector, to be written by several tasks before
    /// its length is set.
    pub fn spare(dst: &mut [std::mem::MaybeUninit<f32>]) -> Self {
        Self(dst.as_mut_ptr().cast())
    }

    /// # Safety
    /// `at` must lie in the slice this was made from, which must still be
    /// alive and otherwise untouched, and be written by this task alone.
    pub unsafe fn write(self, at: usize, v: f32) {
        unsafe { *self.0.add(at) = v }
    }

    /// # Safety
    /// As [`Self::write`], and position `at` must have been written.
    pub unsafe fn read(self, at: usize) -> f32 {
        unsafe { *self.0.add(at) }
    }

    /// A pointer to position `at`.
    ///
    /// # Safety
    /// As [`Self::write`], for every position written through it.
    pub unsafe fn at(self, at: usize) -> *mut f32 {
        unsafe { self.0.add(at) }
    }
}

use burn::tensor::Device;

/// Whether tensors on `device` live in host memory, where the host path
/// applies: flex or ndarray, not their autodiff wrappers (the host path
/// records no gradients), not a GPU or a remote device.
pub fn on_host(device: &Device) -> bool {
    use burn::backend::DispatchDevice;
    if device.is_autodiff() {
        return false;
    }
    #[allow(unreachable_patterns)]
    match device.as_dispatch() {
        #[cfg(feature = "flex")]
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "ndarray")]
        DispatchDevice::NdArray(_) => true,
        _ => false,
    }
}
