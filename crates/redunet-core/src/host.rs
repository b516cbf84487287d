//! Moving tensors between a device and the host, with device failures turned
//! into [`Error::Device`] instead of panics.

use crate::{Error, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};

/// Reads a float tensor back as `f32` values, row-major.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t
        .try_into_data()
        .map_err(|e| Error::Device(format!("{e:?}")))?;
    // Consuming the data lets an f32 buffer become the vector without a copy.
    data.try_into_vec_as::<f32>()
        .map_err(|e| Error::Device(format!("{e:?}")))
}

/// Builds a float tensor on `device` from row-major values.
pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// An index tensor on `device`.
pub fn indices(values: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = values.iter().map(|&i| i as i64).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// Errors out if any value of `t` is NaN or infinite.
pub fn check_finite<const D: usize>(t: &Tensor<D>, what: &str) -> Result<()> {
    let bad = t
        .clone()
        .is_finite()
        .bool_not()
        .any()
        .try_into_scalar::<bool>()
        .map_err(|e| Error::Device(format!("{e:?}")))?;
    if bad {
        Err(Error::NonFinite(what.to_string()))
    } else {
        Ok(())
    }
}

/// `n` standard normal draws from a seeded ChaCha8 stream (Box–Muller).
pub fn normals(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}
