//! The spectral 1D layer against its spatial meaning.

use burn::tensor::{Device, Distribution, Tensor};
use redunet_core::linalg::spd_inverse_f64;
use redunet_core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet_vision::shift::cyclic_shift;
use redunet_vision::spectral::SpectralStep;

fn normalized(m: usize, c: usize, t: usize, device: &Device) -> Tensor<3> {
    let z = Tensor::<3>::random([m, c, t], Distribution::Normal(0.0, 1.0), device);
    let n = z.clone().powi_scalar(2).sum_dim(2).sum_dim(1).sqrt();
    z / n
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Rows: every cyclic shift of every sample, flattened channel-major.
fn augmented(z: &[f32], m: usize, c: usize, t: usize) -> Vec<Vec<f64>> {
    let mut rows = Vec::new();
    for i in 0..m {
        for s in 0..t {
            let mut row = vec![0f64; c * t];
            for ch in 0..c {
                for tt in 0..t {
                    row[ch * t + (tt + s) % t] = z[(i * c + ch) * t + tt] as f64;
                }
            }
            rows.push(row);
        }
    }
    rows
}

fn identity_plus_gram(rows: &[Vec<f64>], n: usize, a: f64) -> Vec<f64> {
    let mut g = vec![0f64; n * n];
    for r in rows {
        for p in 0..n {
            for q in 0..n {
                g[p * n + q] += a * r[p] * r[q];
            }
        }
    }
    for p in 0..n {
        g[p * n + p] += 1.0;
    }
    g
}

#[test]
fn spectral_expansion_equals_the_block_circulant_operator() {
    let device = Device::default();
    let (m, c, t) = (4, 2, 6);
    let eps = 0.1;
    let z = normalized(m, c, t, &device);
    let pi = Memberships::from_labels(&[0, 1, 0, 1], 2, &device).unwrap();
    let (layer, rates) = SpectralStep::construct(&z, &pi, &VectorLayerConfig::default()).unwrap();
    let zs = values(z);
    let rows = augmented(&zs, m, c, t);
    let n = c * t;
    let alpha = c as f64 / (m as f64 * eps);
    // Orthonormal DFT: Σ v vᴴ is the spectrum of (1/T) Σ circ(z) circ(z)ᵀ.
    let (inv, logdet) =
        spd_inverse_f64(&identity_plus_gram(&rows, n, alpha / t as f64), n).unwrap();
    let u = normalized(1, c, t, &device);
    let us = values(u.clone());
    let spectral = values(layer.apply_expansion(&u));
    for row in 0..n {
        let spatial: f64 = (0..n)
            .map(|col| alpha * inv[row * n + col] * us[col] as f64)
            .sum();
        assert!(
            (spectral[row] as f64 - spatial).abs() < 1e-4 * (1.0 + spatial.abs()),
            "entry {row}: spectral {} vs spatial {spatial}",
            spectral[row]
        );
    }
    // R = 1/(2T) Σ_p logdet(I + α Σ v vᴴ) = 1/(2T) logdet(I + α/T Σ circ circᵀ).
    let r_ref = logdet / (2.0 * t as f64);
    assert!(
        (rates.r - r_ref).abs() < 1e-4 * r_ref,
        "R {} vs {r_ref}",
        rates.r
    );
    assert!(rates.delta_r >= 0.0);
}

#[test]
fn shifting_the_input_shifts_the_output() {
    let device = Device::default();
    let (m, c, t) = (12, 3, 10);
    let z = normalized(m, c, t, &device);
    let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, &device).unwrap();
    for mode in [MembershipMode::Soft, MembershipMode::Labels] {
        let cfg = VectorLayerConfig {
            membership: mode,
            ..Default::default()
        };
        let (layer, _) = SpectralStep::construct(&z, &pi, &cfg).unwrap();
        let out = layer.forward(&z, Some(&pi)).unwrap();
        for s in [1, 4, 7] {
            let shifted = layer
                .forward(&cyclic_shift(z.clone(), s), Some(&pi))
                .unwrap();
            let d: f32 = (shifted - cyclic_shift(out.clone(), s))
                .abs()
                .max()
                .into_scalar();
            assert!(d < 1e-4, "{mode:?}, shift {s}: {d}");
        }
        // Outputs are normalised over channels and time.
        for n in values(out.powi_scalar(2).sum_dim(2).sum_dim(1)) {
            assert!((n - 1.0).abs() < 1e-4);
        }
    }
    // An odd length exercises the frequencies without a Nyquist term.
    let z = normalized(6, 2, 7, &device);
    let pi = Memberships::from_labels(&[0, 1, 0, 1, 0, 1], 2, &device).unwrap();
    let (layer, rates) = SpectralStep::construct(&z, &pi, &VectorLayerConfig::default()).unwrap();
    assert!(rates.delta_r.is_finite() && rates.delta_r >= 0.0);
    let out = layer.forward(&z, None).unwrap();
    let shifted = layer.forward(&cyclic_shift(z, 3), None).unwrap();
    let d: f32 = (shifted - cyclic_shift(out, 3)).abs().max().into_scalar();
    assert!(d < 1e-4);
}

#[test]
fn dft_round_trips_and_keeps_norms_in_1d_and_2d() {
    use redunet_vision::spectral::Dft;
    let device = Device::default();
    for (h, w) in [(1, 7), (1, 10), (5, 6), (6, 7)] {
        let dft = Dft::new_2d(h, w, &device).unwrap();
        let z = normalized(3, 2, h * w, &device);
        let s = dft.spectrum(&z);
        let back = dft.signals(s.clone());
        let d: f32 = (back - z.clone()).abs().max().into_scalar();
        assert!(d < 1e-5, "{h}x{w}: round trip {d}");
        // Normalising the spectrum of unit signals changes nothing (Parseval).
        let n = dft.normalize(s.clone());
        let d: f32 = (n.x - s.x).abs().max().into_scalar();
        assert!(d < 1e-5, "{h}x{w}: Parseval {d}");
    }
}

#[test]
fn translating_an_image_translates_the_2d_network_output() {
    use redunet_vision::shift::translate;
    use redunet_vision::spectral::{Dft, SpectralNet};
    let device = Device::default();
    let (m, c, h, w) = (10, 2, 6, 7);
    let z = normalized(m, c, h * w, &device);
    let labels: Vec<usize> = (0..m).map(|i| i % 2).collect();
    let pi = Memberships::from_labels(&labels, 2, &device).unwrap();
    let dft = Dft::new_2d(h, w, &device).unwrap();
    let built =
        SpectralNet::construct_with(&z, &dft, &pi, 3, &VectorLayerConfig::default(), |_| {})
            .unwrap();
    assert!(built.records.last().unwrap().delta_r > built.records[0].delta_r);
    let as_img = |x: Tensor<3>| x.reshape([m, c, h, w]);
    let out = as_img(built.network.transform(&z).unwrap());
    for (dy, dx) in [(1, 0), (0, 3), (4, 5)] {
        let moved = translate(as_img(z.clone()), dy, dx).reshape([m, c, h * w]);
        let got = as_img(built.network.transform(&moved).unwrap());
        let d: f32 = (got - translate(out.clone(), dy, dx))
            .abs()
            .max()
            .into_scalar();
        assert!(d < 1e-4, "translation ({dy}, {dx}): {d}");
    }
}

/// The fused CPU step and the tensor-operation step (wgpu's path) agree,
/// for both membership modes, on a 2D case with several classes.
#[test]
fn fused_cpu_step_equals_the_tensor_step() {
    use redunet_vision::spectral::Dft;
    let device = Device::default();
    let (h, w, c, m) = (6, 5, 3, 12);
    let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, &device).unwrap();
    let dft = Dft::new_2d(h, w, &device).unwrap();
    let s = dft.normalize(dft.spectrum(&normalized(m, c, h * w, &device)));
    for membership in [MembershipMode::Soft, MembershipMode::Labels] {
        let config = VectorLayerConfig {
            membership,
            lambda: 50.0,
            ..Default::default()
        };
        let (layer, _) = SpectralStep::construct_spectral(&s, &pi, &config, &dft).unwrap();
        let fused = values(layer.step(s.clone(), Some(&pi)).x);
        let hard = (membership == MembershipMode::Labels).then(|| pi.pi().clone().transpose());
        let tensor = values(layer.step_tensor(&s, hard).x);
        let diff = fused
            .iter()
            .zip(&tensor)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{membership:?}: max difference {diff}");
        // The update moved the features: the comparison is not vacuous.
        let moved = fused
            .iter()
            .zip(values(s.x.clone()))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(moved > 1e-3, "{membership:?}: step did not move ({moved})");
    }
}

/// A constructed network is a Burn module whose parameters are the layers'
/// complex operators: applied from the module (fused transform, and the
/// differentiable forward pass) it reproduces the construction's features.
#[test]
fn constructed_network_is_a_module_that_reproduces_its_features() {
    use burn::module::Module;
    use redunet_vision::spectral::{Dft, SpectralNet};
    let device = Device::default();
    let (h, w, c, m) = (4, 6, 2, 9);
    let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, &device).unwrap();
    let dft = Dft::new_2d(h, w, &device).unwrap();
    let z = normalized(m, c, h * w, &device);
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let built = SpectralNet::construct_with(&z, &dft, &pi, 3, &config, |_| {}).unwrap();
    // 3 layers of E and 3 C_j, complex, at 4·(6/2 + 1) frequencies, 2×2.
    assert_eq!(built.network.num_params(), 3 * 2 * 16 * 4 * 2 * 2);
    let want = values(built.features.clone());
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let fused = values(built.network.transform(&z).unwrap());
    let forward = values(built.network.forward(z.clone()));
    assert!(
        max_diff(&want, &fused) < 1e-5,
        "{}",
        max_diff(&want, &fused)
    );
    assert!(
        max_diff(&fused, &forward) < 1e-5,
        "{}",
        max_diff(&fused, &forward)
    );
    let wrong = normalized(2, c + 1, h * w, &device);
    assert!(built.network.transform(&wrong).is_err());
}

/// Moments summed over batches (that cut across the classes) give the layer
/// all samples at once give: the same rates and the same step.
#[test]
fn streamed_moments_equal_all_at_once() {
    use redunet_vision::spectral::{Dft, SpectralMoments};
    let device = Device::default();
    let (m, c, h, w) = (24, 2, 4, 5);
    let z = normalized(m, c, h * w, &device);
    let labels: Vec<usize> = (0..m).map(|i| (i * 7) % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, &device).unwrap();
    let dft = Dft::new_2d(h, w, &device).unwrap();
    let s = dft.spectrum(&z);
    let cfg = VectorLayerConfig::default();
    let (whole, r1) = SpectralStep::construct_spectral(&s, &pi, &cfg, &dft).unwrap();
    let mut moments = SpectralMoments::new(c, dft.frequencies(), 3);
    for start in (0..m).step_by(5) {
        let end = (start + 5).min(m);
        let part = dft.spectrum(&z.clone().slice([start..end, 0..c, 0..h * w]));
        moments.add(&part, &pi.rows(start, end).unwrap()).unwrap();
    }
    let (streamed, r2) = moments.layer(&cfg, &dft).unwrap();
    assert!(
        (r1.delta_r - r2.delta_r).abs() < 1e-5 * r1.delta_r.abs(),
        "{r1:?} {r2:?}"
    );
    let a = values(dft.signals(whole.step(s.clone(), Some(&pi))));
    let b = values(dft.signals(streamed.step(s.clone(), Some(&pi))));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "{worst}");
}

/// The FFT path (long 1D signals) is the dense transform: the same half
/// spectra and inverse, even and odd lengths, and the same layer.
#[test]
fn fft_transform_equals_the_dense_one() {
    use redunet_vision::spectral::{Dft, SpectralNet};
    let device = Device::default();
    for t in [64, 63] {
        let (dense, fft) = (
            Dft::dense_2d(1, t, &device).unwrap(),
            Dft::fft(t, &device).unwrap(),
        );
        assert!(fft.uses_fft() && !dense.uses_fft());
        assert_eq!(fft.weights, dense.weights);
        let z = normalized(5, 3, t, &device);
        let (ar, ai) = dense.forward(&z);
        let (br, bi) = fft.forward(&z);
        let max_diff = |a: Vec<f32>, b: Vec<f32>| {
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        assert!(max_diff(values(ar.clone()), values(br.clone())) < 1e-5);
        assert!(max_diff(values(ai.clone()), values(bi.clone())) < 1e-5);
        // Any half spectrum (imaginary parts at 0 and T/2 included) comes
        // back the same way.
        let noise = normalized(3, 1, 5 * (t / 2 + 1), &device).reshape([t / 2 + 1, 3, 5]);
        let a = values(dense.inverse(ar + noise.clone(), ai.clone() + noise.clone()));
        let b = values(fft.inverse(br + noise.clone(), bi + noise));
        assert!(max_diff(a, b) < 1e-5);
        let labels: Vec<usize> = (0..5).map(|i| i % 2).collect();
        let pi = Memberships::from_labels(&labels, 2, &device).unwrap();
        let cfg = VectorLayerConfig::default();
        let x = SpectralNet::construct_with(&z, &dense, &pi, 3, &cfg, |_| {}).unwrap();
        let y = SpectralNet::construct_with(&z, &fft, &pi, 3, &cfg, |_| {}).unwrap();
        for (p, q) in x.records.iter().zip(&y.records) {
            assert!((p.delta_r - q.delta_r).abs() <= 1e-5 * q.delta_r.abs());
        }
    }
    // Long signals take the FFT by themselves, and need no tables.
    assert!(Dft::new(1 << 14, &device).unwrap().uses_fft());
    assert!(Dft::table_bytes(1, 1 << 14) < 1 << 20);
}
