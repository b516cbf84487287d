//! Data augmentation for small training sets: each training image is
//! rotated by a random angle and scaled by a random factor about its centre
//! before every pass, with bilinear interpolation and zeros outside the
//! frame.
//!
//! Supervised training shifts only when asked (`train.augment_shift`): the
//! spectral networks are translation-equivariant by construction, so
//! shifted copies teach them nothing, while a transformer's patches are
//! not. Self-supervised training shifts too: there the warps define what
//! the features must not see.

use rand::Rng;

/// Random rotations in `[-rotation, rotation]` degrees, scalings in
/// `[1 - scale, 1 + scale]` and translations in `[-shift, shift]` pixels
/// along each axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmentation {
    /// Largest rotation, in degrees.
    pub rotation: f64,
    /// Largest relative change of scale.
    pub scale: f64,
    /// Largest translation along each axis, in pixels.
    pub shift: f64,
}

impl Augmentation {
    /// Whether it changes nothing (no rotation, scaling or translation).
    pub fn is_identity(&self) -> bool {
        self.rotation == 0.0 && self.scale == 0.0 && self.shift == 0.0
    }

    /// Warps every image of `images` (`[b, C·H·W]`, row-major) in place,
    /// one random draw per image.
    pub fn apply(
        &self,
        images: &mut [f32],
        (height, width, channels): (usize, usize, usize),
        rng: &mut impl Rng,
    ) {
        let n = channels * height * width;
        for img in images.chunks_mut(n) {
            let angle = if self.rotation > 0.0 {
                rng.random_range(-self.rotation..=self.rotation)
                    .to_radians()
            } else {
                0.0
            };
            let s = if self.scale > 0.0 {
                rng.random_range(1.0 - self.scale..=1.0 + self.scale)
            } else {
                1.0
            };
            let mut offset = || {
                if self.shift > 0.0 {
                    rng.random_range(-self.shift..=self.shift)
                } else {
                    0.0
                }
            };
            let t = (offset(), offset());
            let out = affine(img, (height, width, channels), angle, s, t);
            img.copy_from_slice(&out);
        }
    }
}

/// One image `[C, H, W]` rotated by `angle` (radians, counter-clockwise in
/// (column, row) coordinates) and scaled by `scale` about its centre, then
/// moved by `(down, right)` pixels.
pub fn affine(
    img: &[f32],
    (height, width, channels): (usize, usize, usize),
    angle: f64,
    scale: f64,
    (down, right): (f64, f64),
) -> Vec<f32> {
    let (cy, cx) = ((height as f64 - 1.0) / 2.0, (width as f64 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let mut out = vec![0f32; img.len()];
    for r in 0..height {
        for c in 0..width {
            // Inverse map: where in the source does output pixel (r, c) come from.
            let (dy, dx) = (
                (r as f64 - down - cy) / scale,
                (c as f64 - right - cx) / scale,
            );
            let sx = cos * dx + sin * dy + cx;
            let sy = -sin * dx + cos * dy + cy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            for ch in 0..channels {
                let plane = &img[ch * height * width..(ch + 1) * height * width];
                let at = |y: f64, x: f64| -> f64 {
                    if y < 0.0 || x < 0.0 || y >= height as f64 || x >= width as f64 {
                        0.0
                    } else {
                        plane[y as usize * width + x as usize] as f64
                    }
                };
                let v = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1.0))
                    + fy * ((1.0 - fx) * at(y0 + 1.0, x0) + fx * at(y0 + 1.0, x0 + 1.0));
                out[ch * height * width + r * width + c] = v as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(h: usize, w: usize, c: usize) -> Vec<f32> {
        (0..c * h * w).map(|i| (i as f32 * 0.37).sin()).collect()
    }

    #[test]
    fn identity_leaves_images_alone() {
        let img = ramp(6, 5, 2);
        let out = affine(&img, (6, 5, 2), 0.0, 1.0, (0.0, 0.0));
        for (a, b) in img.iter().zip(&out) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn quarter_turn_is_a_transpose_and_flip() {
        let n = 6;
        let img = ramp(n, n, 1);
        let out = affine(
            &img,
            (n, n, 1),
            std::f64::consts::FRAC_PI_2,
            1.0,
            (0.0, 0.0),
        );
        // Output (r, c) reads source x = c' with dx = r - centre, i.e.
        // source (row n-1-c, column r).
        for r in 0..n {
            for c in 0..n {
                let want = img[(n - 1 - c) * n + r];
                assert!((out[r * n + c] - want).abs() < 1e-5, "({r}, {c})");
            }
        }
    }

    #[test]
    fn whole_pixel_shifts_move_the_image() {
        let img = ramp(6, 5, 1);
        let out = affine(&img, (6, 5, 1), 0.0, 1.0, (2.0, -1.0));
        for r in 0..6 {
            for c in 0..5 {
                let (sr, sc) = (r as i64 - 2, c as i64 + 1);
                let want = if (0..6).contains(&sr) && (0..5).contains(&sc) {
                    img[sr as usize * 5 + sc as usize]
                } else {
                    0.0
                };
                assert!((out[r * 5 + c] - want).abs() < 1e-6, "({r}, {c})");
            }
        }
    }

    #[test]
    fn draws_are_seeded_and_bounded() {
        let aug = Augmentation {
            rotation: 10.0,
            scale: 0.1,
            shift: 1.5,
        };
        let mut a = ramp(8, 8, 1).repeat(3);
        let mut b = a.clone();
        aug.apply(
            &mut a,
            (8, 8, 1),
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(4),
        );
        aug.apply(
            &mut b,
            (8, 8, 1),
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(4),
        );
        assert_eq!(a, b);
        assert!(a.iter().all(|v| v.is_finite() && v.abs() <= 1.0 + 1e-6));
        // The three copies got different draws.
        assert_ne!(a[..64], a[64..128]);
    }
}
