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
//! - [`spd`]: inverse and log-determinant of SPD matrices (the block
//!   Cholesky of [`crate::linalg`]).
//! - [`step`]: the vector layer's soft-membership step, fused.

pub mod gemm;
pub mod spd;
pub mod step;

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
