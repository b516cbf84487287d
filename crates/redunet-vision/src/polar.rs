//! The polar transform: an image `[H, W]` becomes a signal `[C, T]` whose
//! channel c is the circle of radius r_c around the image centre and whose
//! time t is the angle 2πt/T, sampled bilinearly (zero outside the image).
//!
//! Angles are `2πt/T` for `t = 0..T` — `[0, 2π)`, not a linspace that repeats
//! 0 and 2π — so rotating the image by 2π/T shifts the signal cyclically by
//! exactly one step.
//!
//! The sampling is linear in the pixels, so it is stored once as a dense
//! `[H·W, C·T]` interpolation matrix and applied to a batch by one matrix
//! product on the device.

use burn::tensor::{Device, Tensor, TensorData};

/// Polar sampling of `height × width` images on `radii × angles` points.
/// A Burn module without parameters: the interpolation matrix is a constant
/// built once, moved with the network that holds it.
#[derive(burn::module::Module, Debug)]
pub struct Polar {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Radius of each circle, in pixels.
    pub radii: Vec<f64>,
    /// Samples per circle.
    pub angles: usize,
    weights: Tensor<2>,
}

impl Polar {
    /// `radii` circles at radius `r_max·(c+1)/radii`, c = 0..radii, with
    /// `r_max` half the smaller image side (14 for 28×28 digits).
    pub fn new(height: usize, width: usize, radii: usize, angles: usize, device: &Device) -> Self {
        let r_max = height.min(width) as f64 / 2.0;
        let rs = (0..radii)
            .map(|c| r_max * (c + 1) as f64 / radii as f64)
            .collect();
        Self::with_radii(height, width, rs, angles, device)
    }

    /// Polar sampling on explicit radii (in pixels).
    pub fn with_radii(
        height: usize,
        width: usize,
        radii: Vec<f64>,
        angles: usize,
        device: &Device,
    ) -> Self {
        let (cy, cx) = ((height as f64 - 1.0) / 2.0, (width as f64 - 1.0) / 2.0);
        let cols = radii.len() * angles;
        let mut w = vec![0f32; height * width * cols];
        for (c, &r) in radii.iter().enumerate() {
            for t in 0..angles {
                let theta = std::f64::consts::TAU * t as f64 / angles as f64;
                // Row index grows downwards; angle measured anticlockwise on
                // screen, which only fixes the direction of the shift.
                let y = cy - r * theta.sin();
                let x = cx + r * theta.cos();
                let (y0, x0) = (y.floor(), x.floor());
                let (fy, fx) = (y - y0, x - x0);
                let col = c * angles + t;
                for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
                    for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
                        let (py, px) = (y0 + dy, x0 + dx);
                        if py < 0.0 || px < 0.0 || py >= height as f64 || px >= width as f64 {
                            continue;
                        }
                        let pix = py as usize * width + px as usize;
                        w[pix * cols + col] += (wy * wx) as f32;
                    }
                }
            }
        }
        let weights = Tensor::from_data(TensorData::new(w, [height * width, cols]), device);
        Self {
            height,
            width,
            radii,
            angles,
            weights,
        }
    }

    /// Images `[m, H·W]` (row-major pixels) to signals `[m, C, T]`.
    pub fn apply(&self, images: Tensor<2>) -> Tensor<3> {
        let m = images.dims()[0];
        images
            .matmul(self.weights.clone())
            .reshape([m, self.radii.len(), self.angles])
    }
}
