//! Shared by the gradient tests: seeded data and a directional
//! finite-difference check.
//!
//! Every input comes from a seeded host generator, so a test sees the same
//! numbers on every run; `Tensor::random` is not seeded per test.

use burn::tensor::{Device, Tensor, TensorData};
use redunet_vision::lift::normals;

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// A seeded `[rows, cols]` tensor of N(0, 1) entries.
pub fn gaussian(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(normals(rows * cols, seed), [rows, cols]),
        device,
    )
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt()
}

/// Checks a claimed gradient `grad` of `f` at `x0` by central differences
/// along unit directions: the gradient's own direction, then `random`
/// seeded ones, each with the step `step(v)`. Each must satisfy
/// `|fd − ⟨grad, v⟩| ≤ tol·‖grad‖`.
///
/// The error is measured against ‖grad‖, not against the directional
/// derivative itself: along a random direction that derivative can be close
/// to zero, and f32 round-off then dominates any relative test. Along the
/// gradient's direction a sign-flipped or halved gradient is off by 2‖g‖ or
/// ½‖g‖, far outside any tolerance used here.
pub fn check_directional(
    f: impl Fn(&[f32]) -> f64,
    x0: &[f32],
    grad: &[f32],
    step: impl Fn(&[f32]) -> Result<f32, String>,
    tol: f64,
    random: usize,
    seed: u64,
) -> Result<(), String> {
    let g_norm = norm(grad);
    if g_norm == 0.0 {
        return Err("the claimed gradient is zero".into());
    }
    let mut directions = vec![grad.to_vec()];
    for r in 0..random {
        directions.push(normals(x0.len(), seed + r as u64));
    }
    for (i, v) in directions.iter().enumerate() {
        let len = norm(v) as f32;
        let v: Vec<f32> = v.iter().map(|a| a / len).collect();
        let h = step(&v).map_err(|e| format!("direction {i}: {e}"))?;
        let at = |t: f32| {
            let x: Vec<f32> = x0.iter().zip(&v).map(|(a, b)| a + t * b).collect();
            f(&x)
        };
        let fd = (at(h) - at(-h)) / (2.0 * h as f64);
        let along: f64 = v.iter().zip(grad).map(|(a, b)| *a as f64 * *b as f64).sum();
        if (fd - along).abs() > tol * g_norm {
            return Err(format!(
                "direction {i}: finite difference {fd}, gradient {along} (‖g‖ {g_norm})"
            ));
        }
    }
    Ok(())
}
