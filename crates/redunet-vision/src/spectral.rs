//! The shift-invariant ReduNet layer for multi-channel 1D signals, and with
//! the 2D transform the translation-invariant one for images, computed in
//! the spectral domain (REDUNET.md §4).
//!
//! With the orthonormal DFT `v_i(p) = DFT(z_i)(p) ∈ ℂ^C`,
//!
//! ```text
//! E(p)   = α   (I + α   Σ_i v_i(p) v_i(p)ᴴ)⁻¹,          α   = C / (m ε²)
//! C_j(p) = α_j (I + α_j Σ_i π_ij v_i(p) v_i(p)ᴴ)⁻¹,    α_j = C / (m_j ε²)
//! R      = 1/(2T) Σ_p logdet(I + α Σ_i v_i(p) v_i(p)ᴴ)
//! ```
//!
//! and a sample moves by `g(p) = E(p) v(p) − Σ_j γ_j π̂_j C_j(p) v(p)`, back
//! through the inverse DFT, real part, normalised. Real input has conjugate
//! symmetric spectra, so only the `T/2 + 1` non-redundant frequencies are
//! worked on, each counted with its multiplicity. A Hermitian matrix
//! `A + iB` is inverted through its real symmetric positive-definite
//! embedding `[[A, −B], [B, A]]` with the batched SPD routine of
//! `redunet-core`; the DFT is a matrix product, so the data never leave the
//! device.
//!
//! Conventions match the official code (`torch.fft` with `norm='ortho'`).
//! Note what that means spatially: `Σ_i v_i(p) v_i(p)ᴴ` is the spectrum of
//! `(1/T) Σ_i circ(z_i) circ(z_i)ᵀ`, the Gram matrix of all cyclic shifts
//! divided by T.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use redunet_core::linalg::spd_inverse_logdet;
use redunet_core::membership::Scales;
use redunet_core::{Error, MembershipMode, Memberships, Rates, Result, VectorLayerConfig};
use std::sync::Arc;

use crate::fused::{self, HostOps};
use redunet_core::cpu::on_host;

/// The orthonormal DFT of real signals of length T, or of real images
/// `H × W` stored as signals of length `H·W` (row-major), as matrix
/// products on the device. Only the half spectrum along the last axis is
/// kept (`W/2 + 1` columns, all `H` rows); `weights` gives each kept
/// frequency's multiplicity in the full spectrum.
///
/// A Burn module without parameters: its tables are constant tensors, so a
/// network that holds it builds them once and moves them with itself
/// (`to_device`, `valid`, `autodiff`).
#[derive(burn::module::Module, Debug)]
pub struct Dft {
    /// Rows of the transform (1 for 1D signals).
    pub height: usize,
    /// Columns (the signal length for 1D signals).
    pub width: usize,
    /// `[W, Pw]`: cos(2πwq/W)/√W and sin(2πwq/W)/√W (dense transforms).
    cos: Option<Tensor<2>>,
    sin: Option<Tensor<2>>,
    /// `[Pw, W]`: the inverse, each column frequency weighted by its multiplicity.
    icos: Option<Tensor<2>>,
    isin: Option<Tensor<2>>,
    /// `[H, H]`: cos(2πhp/H)/√H and sin(2πhp/H)/√H (2D only; symmetric).
    hcos: Option<Tensor<2>>,
    hsin: Option<Tensor<2>>,
    /// Multiplicity of each kept frequency (row-major over `[H, Pw]`).
    pub weights: Vec<f64>,
    /// The same multiplicities as a `[1, P]` row on the device: Parseval
    /// sums over frequencies become one matrix–vector product.
    weight_row: Tensor<2>,
    /// Long 1D signals: real FFTs on the host instead of the dense tables.
    #[module(skip)]
    fft: Option<RealFfts>,
    /// The dense tables' values, kept for the host path on CPU devices
    /// (the same values as the tensors above, made once).
    #[module(skip)]
    host: Option<Arc<crate::fourier::Tables>>,
}

/// 1D signals at least this long are transformed by FFT (O(T log T) per
/// signal, no tables) rather than by products with the dense `T × T/2`
/// tables (O(T²), and `16·T²/2` bytes of tables: 2.1 GB at T = 16,384).
/// Measured here (`cargo bench --bench spectral_layer -- dft`, 200 × 4
/// signals there and back): dense 1.38 / 4.69 / 19.5 / 71.0 ms against FFT
/// 0.72 / 1.41 / 2.61 / 7.66 ms at T = 256 / 512 / 1024 / 2048. The FFT is
/// faster from T = 256 on, but it runs on the host and is not
/// differentiable, and the dense path is what the invariance and
/// back-propagation tables were measured with (T = 200 polar signals): the
/// switch is where the dense tables stop being cheap (8 MB at T = 1024) and
/// the FFT is 7× faster.
pub const FFT_MIN_LEN: usize = 1024;

/// Forward and inverse real FFT plans of one length.
#[derive(Clone)]
struct RealFfts {
    forward: Arc<dyn realfft::RealToComplex<f32>>,
    inverse: Arc<dyn realfft::ComplexToReal<f32>>,
}

impl std::fmt::Debug for RealFfts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RealFfts({})", self.forward.len())
    }
}

fn trig_tables(n: usize, cols: usize, scale: f64) -> (Vec<f32>, Vec<f32>) {
    let mut c = vec![0f32; n * cols];
    let mut s = vec![0f32; n * cols];
    for t in 0..n {
        for p in 0..cols {
            // Reduce tp mod n first so the angle stays exact.
            let theta = std::f64::consts::TAU * ((t * p) % n) as f64 / n as f64;
            c[t * cols + p] = (theta.cos() * scale) as f32;
            s[t * cols + p] = (theta.sin() * scale) as f32;
        }
    }
    (c, s)
}

/// Multiplicity of each kept column frequency `0..W/2+1` in the full
/// spectrum: 1 for frequency 0 (and W/2 when W is even), 2 otherwise.
fn multiplicities(width: usize) -> Vec<f64> {
    (0..width / 2 + 1)
        .map(|q| if q == 0 || 2 * q == width { 1.0 } else { 2.0 })
        .collect()
}

/// Bytes of the dense tables of a `height × width` transform, host and
/// device copies.
fn dense_table_bytes(height: usize, width: usize) -> u64 {
    let pw = width / 2 + 1;
    redunet_data::memory::bytes(&[8, width, pw], 4)
        .saturating_add(redunet_data::memory::bytes(&[4, height, height], 4))
}

impl Dft {
    /// Whether a `height × width` transform is made by [`Self::new_2d`] as
    /// real FFTs: 1D signals of at least [`FFT_MIN_LEN`] samples.
    pub fn uses_fft_for(height: usize, width: usize) -> bool {
        height == 1 && width >= FFT_MIN_LEN
    }

    /// The DFT of 1D signals of length `len`.
    pub fn new(len: usize, device: &Device) -> Result<Self> {
        Self::new_2d(1, len, device)
    }

    /// Bytes of the tables of a `height × width` transform (checked, so a
    /// stored or requested size that cannot fit is refused, not allocated).
    pub fn table_bytes(height: usize, width: usize) -> u64 {
        if Self::uses_fft_for(height, width) {
            // The FFT plans and the multiplicities.
            return redunet_data::memory::bytes(&[8, width], 4);
        }
        dense_table_bytes(height, width)
    }

    /// The 2D DFT of `height × width` images (1D signals for `height = 1`):
    /// by FFT for 1D signals of at least [`FFT_MIN_LEN`] samples, by dense
    /// tables otherwise.
    pub fn new_2d(height: usize, width: usize, device: &Device) -> Result<Self> {
        if Self::uses_fft_for(height, width) {
            Self::fft(width, device)
        } else {
            Self::dense_2d(height, width, device)
        }
    }

    /// The DFT of 1D signals of length `len` by real FFTs on the host,
    /// whatever the length (see [`Self::uses_fft`]).
    pub fn fft(len: usize, device: &Device) -> Result<Self> {
        if len == 0 {
            return Err(Error::Shape("a DFT of 0 samples".into()));
        }
        let (height, width) = (1, len);
        let mult = multiplicities(width);
        let row = mult.iter().map(|&x| x as f32).collect();
        let mut planner = realfft::RealFftPlanner::<f32>::new();
        Ok(Self {
            height,
            width,
            cos: None,
            sin: None,
            icos: None,
            isin: None,
            hcos: None,
            hsin: None,
            weight_row: Tensor::from_data(TensorData::new(row, [1, mult.len()]), device),
            weights: mult,
            host: None,
            fft: Some(RealFfts {
                forward: planner.plan_fft_forward(width),
                inverse: planner.plan_fft_inverse(width),
            }),
        })
    }

    /// The DFT of `height × width` images by products with dense tables,
    /// whatever the size (memory checked).
    pub fn dense_2d(height: usize, width: usize, device: &Device) -> Result<Self> {
        if height == 0 || width == 0 {
            return Err(Error::Shape(format!("a DFT of {height} × {width} samples")));
        }
        redunet_data::memory::check(
            dense_table_bytes(height, width),
            &format!("the DFT tables of {height} × {width} samples"),
            "use smaller signals or images",
        )?;
        let pw = width / 2 + 1;
        let mult = multiplicities(width);
        let t2 = |v, shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, shape), device);
        let scale = 1.0 / (width as f64).sqrt();
        let (c, s) = trig_tables(width, pw, scale);
        let mut ic = vec![0f32; pw * width];
        let mut is = vec![0f32; pw * width];
        for w in 0..width {
            for q in 0..pw {
                ic[q * width + w] = (mult[q] as f32) * c[w * pw + q];
                is[q * width + w] = (mult[q] as f32) * s[w * pw + q];
            }
        }
        let rows = (height > 1).then(|| trig_tables(height, height, 1.0 / (height as f64).sqrt()));
        let host = crate::fourier::Tables {
            height,
            width,
            cos: c,
            sin: s,
            icos: ic,
            isin: is,
            rows,
        };
        let square = |t: &Vec<f32>| t2(t.clone(), [height, height]);
        Ok(Self {
            height,
            width,
            cos: Some(t2(host.cos.clone(), [width, pw])),
            sin: Some(t2(host.sin.clone(), [width, pw])),
            icos: Some(t2(host.icos.clone(), [pw, width])),
            isin: Some(t2(host.isin.clone(), [pw, width])),
            hcos: host.rows.as_ref().map(|(hc, _)| square(hc)),
            hsin: host.rows.as_ref().map(|(_, hs)| square(hs)),
            weight_row: t2(
                (0..height)
                    .flat_map(|_| mult.iter().map(|&x| x as f32))
                    .collect(),
                [1, height * pw],
            ),
            weights: (0..height).flat_map(|_| mult.iter().copied()).collect(),
            host: Some(Arc::new(host)),
            fft: None,
        })
    }

    /// Whether the transform runs as real FFTs on the host (1D signals of
    /// at least [`FFT_MIN_LEN`] samples): fast and table-free, but not
    /// differentiable (its results are new tensors), so networks on such
    /// signals are constructed and applied, not fine-tuned.
    pub fn uses_fft(&self) -> bool {
        self.fft.is_some()
    }

    /// Number of samples per channel (T, or H·W).
    pub fn len(&self) -> usize {
        self.height * self.width
    }

    /// Whether the transform has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of kept frequencies P.
    pub fn frequencies(&self) -> usize {
        self.weights.len()
    }

    /// Signals `[m, C, H·W]` to spectra (real, imaginary) `[P, C, m]`.
    pub fn forward(&self, z: &Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        if let Some(fft) = &self.fft {
            return fft.forward(z);
        }
        let [m, c, _] = z.dims();
        let (h, w) = (self.height, self.width);
        let pw = w / 2 + 1;
        let table = |t: &Option<Tensor<2>>| t.clone().expect("dense transforms have tables");
        let flat = z.clone().reshape([m * c * h, w]);
        let ar = flat.clone().matmul(table(&self.cos));
        let ai = flat.matmul(table(&self.sin)).neg();
        let (re, im) = match (&self.hcos, &self.hsin) {
            (Some(hc), Some(hs)) => {
                // Along H: (a_r + i a_i)(cos − i sin), a full complex DFT.
                let cols = |x: Tensor<2>| {
                    x.reshape([m * c, h, pw])
                        .swap_dims(1, 2)
                        .reshape([m * c * pw, h])
                };
                let (ar, ai) = (cols(ar), cols(ai));
                let vr = ar.clone().matmul(hc.clone()) + ai.clone().matmul(hs.clone());
                let vi = ai.matmul(hc.clone()) - ar.matmul(hs.clone());
                let back = |x: Tensor<2>| {
                    x.reshape([m * c, pw, h])
                        .swap_dims(1, 2)
                        .reshape([m, c, h * pw])
                };
                (back(vr), back(vi))
            }
            _ => (ar.reshape([m, c, pw]), ai.reshape([m, c, pw])),
        };
        (re.permute([2, 1, 0]), im.permute([2, 1, 0]))
    }

    /// Spectra `[P, C, m]` of real signals back to signals `[m, C, H·W]`.
    pub fn inverse(&self, re: Tensor<3>, im: Tensor<3>) -> Tensor<3> {
        if let Some(fft) = &self.fft {
            return fft.inverse(re, im);
        }
        let table = |t: &Option<Tensor<2>>| t.clone().expect("dense transforms have tables");
        let [_, c, m] = re.dims();
        let (h, w) = (self.height, self.width);
        let pw = w / 2 + 1;
        let re = re.permute([2, 1, 0]);
        let im = im.permute([2, 1, 0]);
        let (br, bi) = match (&self.hcos, &self.hsin) {
            (Some(hc), Some(hs)) => {
                // Along H: (v_r + i v_i)(cos + i sin).
                let cols = |x: Tensor<3>| {
                    x.reshape([m * c, h, pw])
                        .swap_dims(1, 2)
                        .reshape([m * c * pw, h])
                };
                let (vr, vi) = (cols(re), cols(im));
                let br = vr.clone().matmul(hc.clone()) - vi.clone().matmul(hs.clone());
                let bi = vi.matmul(hc.clone()) + vr.matmul(hs.clone());
                let back = |x: Tensor<2>| {
                    x.reshape([m * c, pw, h])
                        .swap_dims(1, 2)
                        .reshape([m * c * h, pw])
                };
                (back(br), back(bi))
            }
            _ => (re.reshape([m * c, pw]), im.reshape([m * c, pw])),
        };
        (br.matmul(table(&self.icos)) - bi.matmul(table(&self.isin))).reshape([m, c, h * w])
    }
}

impl RealFfts {
    /// `[m, C, T]` to the half spectra `(re, im)`, each `[P, C, m]`,
    /// orthonormal: one real FFT per signal on the host, in parallel.
    fn forward(&self, z: &Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [m, c, t] = z.dims();
        let p = t / 2 + 1;
        let device = z.device();
        let x: Vec<f32> = z
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("converted to f32");
        let scale = 1.0 / (t as f32).sqrt();
        // Per signal (row i·C + ch): its P complex values.
        let mut spectra = vec![realfft::num_complex::Complex32::default(); m * c * p];
        spectra
            .par_chunks_mut(p)
            .zip(x.par_chunks(t))
            .for_each_init(
                || (vec![0f32; t], self.forward.make_scratch_vec()),
                |(buf, scratch), (out, row)| {
                    buf.copy_from_slice(row);
                    self.forward
                        .process_with_scratch(buf, out, scratch)
                        .expect("lengths match the plan");
                },
            );
        let (mut re, mut im) = (vec![0f32; p * c * m], vec![0f32; p * c * m]);
        for (r, s) in spectra.chunks(p).enumerate() {
            let (i, ch) = (r / c, r % c);
            for (q, v) in s.iter().enumerate() {
                let at = (q * c + ch) * m + i;
                re[at] = v.re * scale;
                im[at] = v.im * scale;
            }
        }
        let t3 = |v| Tensor::<3>::from_data(TensorData::new(v, [p, c, m]), &device);
        (t3(re), t3(im))
    }

    /// Half spectra `[P, C, m]` of real signals back to `[m, C, T]`.
    fn inverse(&self, re: Tensor<3>, im: Tensor<3>) -> Tensor<3> {
        let [p, c, m] = re.dims();
        let t = self.inverse.len();
        let device = re.device();
        let host = |x: Tensor<3>| -> Vec<f32> {
            x.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("converted to f32")
        };
        let (re, im) = (host(re), host(im));
        let scale = 1.0 / (t as f32).sqrt();
        let mut out = vec![0f32; m * c * t];
        out.par_chunks_mut(t).enumerate().for_each_init(
            || {
                (
                    vec![realfft::num_complex::Complex32::default(); p],
                    self.inverse.make_scratch_vec(),
                )
            },
            |(spec, scratch), (r, row)| {
                let (i, ch) = (r / c, r % c);
                for (q, v) in spec.iter_mut().enumerate() {
                    let at = (q * c + ch) * m + i;
                    *v = realfft::num_complex::Complex32::new(re[at], im[at]);
                }
                // The imaginary parts at frequency 0 (and T/2) multiply
                // sin = 0 in the inverse: they carry nothing.
                spec[0].im = 0.0;
                if t % 2 == 0 {
                    spec[p - 1].im = 0.0;
                }
                self.inverse
                    .process_with_scratch(spec, row, scratch)
                    .expect("lengths match the plan");
                for v in row.iter_mut() {
                    *v *= scale;
                }
            },
        );
        Tensor::from_data(TensorData::new(out, [m, c, t]), &device)
    }
}

/// The half spectrum of a batch of real signals, `[P, 2C, m]`: the real
/// parts of the C channels in rows `0..C`, the imaginary parts in rows
/// `C..2C`. Frequency-major, so per-frequency products batch; real and
/// imaginary parts stacked, so a complex product is one real product with
/// the embedding `[[A, −B], [B, A]]`.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Real and imaginary parts stacked along the channel axis: `[P, 2C, m]`.
    pub x: Tensor<3>,
}

impl Spectrum {
    /// From real and imaginary parts, each `[P, C, m]`.
    pub fn from_parts(re: Tensor<3>, im: Tensor<3>) -> Self {
        Self {
            x: Tensor::cat(vec![re, im], 1),
        }
    }

    /// Number of channels C.
    pub fn channels(&self) -> usize {
        self.x.dims()[1] / 2
    }

    /// The real parts `[P, C, m]`.
    pub fn re(&self) -> Tensor<3> {
        let [p, c2, m] = self.x.dims();
        self.x.clone().slice([0..p, 0..c2 / 2, 0..m])
    }

    /// The imaginary parts `[P, C, m]`.
    pub fn im(&self) -> Tensor<3> {
        let [p, c2, m] = self.x.dims();
        self.x.clone().slice([0..p, c2 / 2..c2, 0..m])
    }
}

impl Dft {
    /// Signals `[m, C, T]` to their half spectrum.
    pub fn spectrum(&self, z: &Tensor<3>) -> Spectrum {
        self.into_spectrum(z.clone())
    }

    /// [`Self::spectrum`] of signals handed over: on a CPU device an
    /// unshared buffer is read in place.
    pub fn into_spectrum(&self, z: Tensor<3>) -> Spectrum {
        let [m, c, t] = z.dims();
        if let Some(tables) = self.host_tables(&z.device(), t) {
            let device = z.device();
            let x = redunet_core::host::to_vec(z).expect("host tensors read back");
            let p = self.frequencies();
            return Spectrum {
                x: Tensor::from_data(
                    TensorData::new(tables.forward(&x, m, c), [p, 2 * c, m]),
                    &device,
                ),
            };
        }
        let (re, im) = self.forward(&z);
        Spectrum::from_parts(re, im)
    }

    /// Back to signals `[m, C, T]`.
    pub fn signals(&self, s: Spectrum) -> Tensor<3> {
        let [_, c2, m] = s.x.dims();
        if let Some(tables) = self.host_tables(&s.x.device(), self.len()) {
            let device = s.x.device();
            let x = redunet_core::host::to_vec(s.x).expect("host tensors read back");
            let (c, t) = (c2 / 2, self.len());
            return Tensor::from_data(
                TensorData::new(tables.inverse(&x, m, c), [m, c, t]),
                &device,
            );
        }
        self.inverse(s.re(), s.im())
    }

    /// The dense tables in host memory, when the transform runs on the
    /// host (a CPU device, not an autodiff one: the host path records no
    /// gradients) and its signals have the transform's length.
    fn host_tables(&self, device: &Device, len: usize) -> Option<&crate::fourier::Tables> {
        if !on_host(device) || len != self.len() {
            return None;
        }
        self.host.as_deref()
    }

    /// `Σ_p w_p Σ_r x[p, r, i]²` for `x: [P, R, m]`: squared norms of the
    /// samples by Parseval, as `[1, m]`.
    fn parseval_sq(&self, x: Tensor<3>) -> Tensor<2> {
        let [p, r, m] = x.dims();
        self.weight_row
            .clone()
            .matmul(x.powi_scalar(2).reshape([p, r * m]))
            .reshape([r, m])
            .sum_dim(0)
    }

    /// Scales each sample to unit norm over channels and time (by Parseval,
    /// the multiplicity-weighted norm of its half spectrum).
    pub fn normalize(&self, s: Spectrum) -> Spectrum {
        let [_, _, m] = s.x.dims();
        let norms = self
            .parseval_sq(s.x.clone())
            .sqrt()
            .clamp_min(1e-8)
            .reshape([1, 1, m]);
        Spectrum { x: s.x / norms }
    }
}

/// Complex operators `re + i·im`, each `[P, k'+1, C, C]`, in the stacked
/// real embedding `[P, (k'+1)·2C, 2C]` that [`SpectralStep`] applies
/// (a plain tensor function, so gradients reach `re` and `im`).
pub fn embed_operators(re: Tensor<4>, im: Tensor<4>) -> Tensor<3> {
    let [p, k1, ch, _] = re.dims();
    let top = Tensor::cat(vec![re.clone(), im.clone().neg()], 3);
    let bottom = Tensor::cat(vec![im, re], 3);
    Tensor::cat(vec![top, bottom], 2).reshape([p, k1 * 2 * ch, 2 * ch])
}

/// A shift-invariant (1D) or translation-invariant (2D) ReduNet layer as a
/// Burn module: its parameters are the complex operators α E(p), α_j C_j(p)
/// of every kept frequency (real and imaginary parts, each
/// `[P, k'+1, C, C]`, E first), and it keeps everything else needed to apply
/// it (γ_j, the classes, η, λ, ε²) in what a saved model stores. Which
/// transform it works in (1D or 2D) is the network's [`Dft`].
///
/// The operators stay complex, not free real matrices on (Re v, Im v):
/// only complex-linear per-frequency maps commute with translations, so
/// training cannot break the invariance the layer is for.
#[derive(Module, Debug)]
pub struct SpectralLayer {
    /// Real parts of `[α E(p), α_1 C_1(p), …]`, `[P, k'+1, C, C]`.
    pub re: Param<Tensor<4>>,
    /// Imaginary parts, as `re`.
    pub im: Param<Tensor<4>>,
    #[module(skip)]
    gamma: Vec<f64>,
    /// Original class index of each stored C_j (classes with members).
    #[module(skip)]
    classes: Vec<usize>,
    #[module(skip)]
    num_classes: usize,
    #[module(skip)]
    config: VectorLayerConfig,
}

/// A spectral layer ready to apply to a batch: its operators in their real
/// embeddings `[[A, −B], [B, A]]` stacked for one batched product, and on
/// CPU devices a host copy for the fused step. Construction produces one
/// (the exact inverses the rates came from); [`SpectralLayer::prepare`]
/// makes one from a module.
#[derive(Debug, Clone)]
pub struct SpectralStep {
    dft: Dft,
    /// E(p) then each C_j(p) in their real embeddings `[[A, −B], [B, A]]`,
    /// scaled by α and α_j, stacked along rows: `[P, (k'+1)·2C, 2C]`, so
    /// that one batched product applies them all to a [`Spectrum`].
    ops: Tensor<3>,
    /// The same operators on the host, when the layer lives on a CPU device.
    host: Option<Arc<HostOps>>,
    gamma: Vec<f64>,
    classes: Vec<usize>,
    num_classes: usize,
    channels: usize,
    config: VectorLayerConfig,
}

/// Checks operators `[P, k'+1, C, C]` against their bookkeeping.
fn check_operators(
    re: &[usize; 4],
    im: &[usize; 4],
    gamma: &[f64],
    classes: &[usize],
    num_classes: usize,
) -> Result<()> {
    let [_, k1, ch, ch2] = *re;
    if ch != ch2
        || ch == 0
        || im != re
        || k1 != classes.len() + 1
        || gamma.len() != classes.len()
        || classes.iter().any(|&j| j >= num_classes)
    {
        return Err(Error::Shape(format!(
            "operators {re:?} / {im:?} for classes {classes:?} of {num_classes}, {} weights",
            gamma.len()
        )));
    }
    Ok(())
}

impl SpectralLayer {
    /// A layer around complex operators `re + i·im`, each `[P, k'+1, C, C]`
    /// (E first), with the γ_j of `classes` (of `num_classes`).
    pub fn new(
        re: Tensor<4>,
        im: Tensor<4>,
        gamma: Vec<f64>,
        classes: Vec<usize>,
        num_classes: usize,
        config: VectorLayerConfig,
    ) -> Result<Self> {
        config.validate()?;
        check_operators(&re.dims(), &im.dims(), &gamma, &classes, num_classes)?;
        // Operators are leaves, never differentiated through their
        // construction (see `VectorLayer::from_operators`).
        Ok(Self {
            re: Param::from_tensor(re.detach()),
            im: Param::from_tensor(im.detach()),
            gamma,
            classes,
            num_classes,
            config,
        })
    }

    /// The layer ready to apply in transform `dft`, on the device of its
    /// parameters: no host copy except the one the fused CPU step works
    /// from on CPU devices.
    pub fn prepare(&self, dft: &Dft) -> Result<SpectralStep> {
        if dft.frequencies() != self.frequencies() {
            return Err(Error::Shape(format!(
                "a layer of {} frequencies in a transform of {}",
                self.frequencies(),
                dft.frequencies()
            )));
        }
        let mut step = SpectralStep::embedded(self, dft);
        step.host = host_ops(&step.ops)?;
        Ok(step)
    }

    /// The soft-membership step `normalize(v + η(E v − Σ_j γ_j π̂_j C_j v))`
    /// on a half spectrum, as differentiable tensor operations: the forward
    /// pass of fine-tuning.
    pub fn forward(&self, dft: &Dft, s: &Spectrum) -> Spectrum {
        SpectralStep::embedded(self, dft).step_tensor(s, None)
    }

    /// The classes that had members, in the order of the stored operators.
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// γ_j of the classes in [`Self::classes`].
    pub fn gamma(&self) -> &[f64] {
        &self.gamma
    }

    /// Number of classes k the layer was built for.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Number of channels C.
    pub fn channels(&self) -> usize {
        self.re.dims()[2]
    }

    /// Number of kept frequencies P.
    pub fn frequencies(&self) -> usize {
        self.re.dims()[0]
    }

    /// The layer's settings.
    pub fn config(&self) -> &VectorLayerConfig {
        &self.config
    }
}

/// The host copy of embedded operators `[P, (k'+1)·2C, 2C]` for the fused
/// CPU step, when they live on a CPU device.
fn host_ops(ops: &Tensor<3>) -> Result<Option<Arc<HostOps>>> {
    if !on_host(&ops.device()) {
        return Ok(None);
    }
    let [p, rows, c2] = ops.dims();
    let vertical = redunet_core::host::to_vec(ops.clone())?;
    Ok(Some(Arc::new(HostOps {
        vertical,
        p,
        c2,
        k1: rows / c2,
    })))
}

/// [`rescale_extreme_rows`](redunet_core::layer::vector::rescale_extreme_rows)
/// for signals `[m, C, T]`: samples whose energy f32 cannot hold are divided
/// by their largest magnitude, the others are unchanged.
pub fn rescale_extreme_signals(z: Tensor<3>) -> Tensor<3> {
    let [m, c, t] = z.dims();
    redunet_core::layer::vector::rescale_extreme_rows(z.reshape([m, c * t])).reshape([m, c, t])
}

/// Scales each signal `[C, T]` of `z: [m, C, T]` to unit norm, safely for
/// any finite scale.
pub fn normalize_signals(z: Tensor<3>) -> Tensor<3> {
    let z = rescale_extreme_signals(z);
    let norms = z
        .clone()
        .powi_scalar(2)
        .sum_dim(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-8);
    z / norms
}

/// `rows` as one range when they are consecutive.
fn contiguous(rows: &[usize]) -> Option<std::ops::Range<usize>> {
    let (&first, &last) = (rows.first()?, rows.last()?);
    (last + 1 - first == rows.len()).then_some(first..last + 1)
}

/// The samples of class `j` along the last axis, scaled by `sqrt(π_ij)`;
/// hard labels grouped by class (as our splits are) need only a slice.
fn class_columns(x: &Tensor<3>, pi: &Memberships, j: usize) -> Tensor<3> {
    let [p, c, m] = x.dims();
    match pi.members(j) {
        Some(rows) if let Some(run) = contiguous(&rows) => x.clone().slice([0..p, 0..c, run]),
        Some(rows) => x
            .clone()
            .select(2, redunet_core::host::indices(&rows, &x.device())),
        None => {
            let w = pi
                .pi()
                .clone()
                .slice([0..m, j..j + 1])
                .reshape([1, 1, m])
                .sqrt();
            x.clone() * w
        }
    }
}

impl SpectralStep {
    /// Builds E(p), C_j(p), γ from signals `z: [m, C, T]` and memberships;
    /// also returns R, R_c, ΔR of `z` in the spectral form.
    pub fn construct(
        z: &Tensor<3>,
        pi: &Memberships,
        config: &VectorLayerConfig,
    ) -> Result<(Self, Rates)> {
        let [m, ch, t] = z.dims();
        if m == 0 || ch == 0 || t == 0 {
            return Err(Error::Empty(format!("signals of shape [{m}, {ch}, {t}]")));
        }
        redunet_core::host::check_finite(z, "input signals")?;
        let dft = Dft::new(t, &z.device())?;
        let s = dft.spectrum(z);
        Self::construct_spectral(&s, pi, config, &dft)
    }

    /// [`Self::construct`] from the half spectrum of the layer input.
    pub fn construct_spectral(
        s: &Spectrum,
        pi: &Memberships,
        config: &VectorLayerConfig,
        dft: &Dft,
    ) -> Result<(Self, Rates)> {
        let [p, ch2, _] = s.x.dims();
        let mut moments = SpectralMoments::new(ch2 / 2, p, pi.num_classes());
        moments.add(s, pi)?;
        moments.layer(config, dft)
    }

    /// `IDFT(E(p) DFT(u))`: the expansion operator applied to signals.
    pub fn apply_expansion(&self, u: &Tensor<3>) -> Tensor<3> {
        let p = self.dft.frequencies();
        let c2 = 2 * self.channels;
        let e = self.ops.clone().slice([0..p, 0..c2, 0..c2]);
        let x = e.matmul(self.dft.spectrum(u).x);
        self.dft.signals(Spectrum { x })
    }

    /// One layer step on a half spectrum: `normalize(v + η g)`, with the
    /// true memberships for [`MembershipMode::Labels`] when `pi` is given,
    /// the soft estimate otherwise.
    ///
    /// On CPU devices the step runs fused on the host (see `fused.rs`),
    /// reading the spectrum it consumes without a copy when nothing else
    /// holds it; on other devices as tensor operations, in sample blocks
    /// that bound the size of the intermediate `[E; C_1; …]·v`.
    pub fn step(&self, s: Spectrum, pi: Option<&Memberships>) -> Spectrum {
        let hard = self.hard_weights(pi);
        match self.host.as_deref() {
            Some(ops) if on_host(&s.x.device()) => self.step_host(ops, s, hard),
            _ => self.step_tensor(&s, hard),
        }
    }

    fn step_host(&self, ops: &HostOps, s: Spectrum, hard: Option<Tensor<2>>) -> Spectrum {
        let [p, c2, m] = s.x.dims();
        let device = s.x.device();
        // A CPU backend hands its buffer over (flex without a copy when it
        // is not shared); reading host memory cannot fail.
        let host = |t: burn::tensor::TensorData| {
            t.try_into_vec_as::<f32>()
                .expect("a float tensor on a CPU device reads back as f32")
        };
        let x = host(s.x.into_data());
        let hard = hard.map(|h| host(h.into_data()));
        let out = fused::step(
            ops,
            &x,
            m,
            &fused::StepLaw {
                weights: &self.dft.weights,
                gamma: &self.gamma,
                eta: self.config.eta,
                lambda: self.config.lambda,
            },
            hard.as_deref(),
        );
        Spectrum {
            x: Tensor::from_data(TensorData::new(out, [p, c2, m]), &device),
        }
    }

    /// [`Self::step`] as tensor operations on any device (the path of wgpu
    /// and of autodiff devices).
    pub fn step_tensor(&self, s: &Spectrum, hard: Option<Tensor<2>>) -> Spectrum {
        let [p, c2, m] = s.x.dims();
        let k1 = self.classes.len() + 1;
        // Keep `[E; C_1; …]·v` under 256 MiB per block.
        let cols = ((256usize << 20) / (4 * p * k1 * c2)).max(1);
        if m <= cols {
            return self.step_block(s, hard);
        }
        let parts = (0..m)
            .step_by(cols)
            .map(|a| {
                let b = (a + cols).min(m);
                let sub = Spectrum {
                    x: s.x.clone().slice([0..p, 0..c2, a..b]),
                };
                let h = hard.clone().map(|w| {
                    let k = w.dims()[0];
                    w.slice([0..k, a..b])
                });
                self.step_block(&sub, h).x
            })
            .collect();
        Spectrum {
            x: Tensor::cat(parts, 2),
        }
    }

    /// `[k', m]`: the true memberships of the layer's classes, when the
    /// layer uses them.
    fn hard_weights(&self, pi: Option<&Memberships>) -> Option<Tensor<2>> {
        match (self.config.membership, pi) {
            (MembershipMode::Labels, Some(pi)) => Some(
                pi.pi()
                    .clone()
                    .select(
                        1,
                        redunet_core::host::indices(&self.classes, &pi.pi().device()),
                    )
                    .transpose(),
            ),
            _ => None,
        }
    }

    /// `Y = [E; C_1; …]·v` is formed by one batched product, read once for
    /// the Parseval norms `‖C_j v‖` (squares and a product with the
    /// multiplicity row) and once for the weighted sum.
    fn step_block(&self, s: &Spectrum, hard: Option<Tensor<2>>) -> Spectrum {
        let [p, c2, m] = s.x.dims();
        let device = s.x.device();
        let k = self.classes.len();
        let k1 = k + 1;
        let y = self.ops.clone().matmul(s.x.clone());
        let weights = match hard {
            Some(w) => w,
            None => {
                let norms = self
                    .dft
                    .weight_row
                    .clone()
                    .matmul(y.clone().powi_scalar(2).reshape([p, k1 * c2 * m]))
                    .reshape([k1, c2, m])
                    .sum_dim(1)
                    .slice([1..k1, 0..1, 0..m])
                    .reshape([k, m])
                    .sqrt()
                    .clamp_min(1e-8);
                let w = softmax(norms.mul_scalar(-self.config.lambda), 0);
                // A sharp softmax leaves memberships like e^-200, subnormal
                // in f32, which CPUs multiply ~100x slower; such terms
                // cannot move an f32 output, so they are dropped.
                w.clone().mask_fill(w.lower_elem(1e-20), 0.0)
            }
        };
        let eta = self.config.eta;
        // Coefficients of [E v, C_1 v, …]: η, then −η γ_j π̂_j per sample.
        let gamma = Tensor::<1>::from_data(
            TensorData::new(self.gamma.iter().map(|&g| (-eta * g) as f32).collect(), [k]),
            &device,
        )
        .reshape([k, 1]);
        let coef = Tensor::cat(
            vec![
                Tensor::<2>::full([1, m], eta as f32, &device),
                weights * gamma,
            ],
            0,
        );
        let update = (y.reshape([p, k1, c2, m]) * coef.reshape([1, k1, 1, m]))
            .sum_dim(1)
            .reshape([p, c2, m]);
        self.dft.normalize(Spectrum {
            x: s.x.clone() + update,
        })
    }

    /// Applies the layer to signals `[m, C, T]` (see [`Self::step`]),
    /// normalising each output signal over channels and time.
    pub fn forward(&self, z: &Tensor<3>, pi: Option<&Memberships>) -> Result<Tensor<3>> {
        let [_, ch, t] = z.dims();
        if ch != self.channels || t != self.dft.len() {
            return Err(Error::Shape(format!(
                "layer expects signals [m, {}, {}], got {:?}",
                self.channels,
                self.dft.len(),
                z.dims()
            )));
        }
        redunet_core::host::check_finite(z, "input signals")?;
        Ok(self.dft.signals(self.step(self.dft.spectrum(z), pi)))
    }

    /// The classes that had members, in the order of the stored operators.
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// γ_j of the classes in [`Self::classes`].
    pub fn gamma(&self) -> &[f64] {
        &self.gamma
    }

    /// Number of channels C.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The layer's settings.
    pub fn config(&self) -> &VectorLayerConfig {
        &self.config
    }

    /// The transform the layer works in.
    pub fn dft(&self) -> &Dft {
        &self.dft
    }

    /// The same step on `device` (its operators and transform moved, the
    /// host copy for the fused CPU step made there if it is a CPU device):
    /// exactly the same map, e.g. for a shard on a worker's device.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        if self.ops.device() == *device {
            return Ok(self.clone());
        }
        let ops = self.ops.clone().to_device(device);
        Ok(Self {
            dft: Module::to_device(self.dft.clone(), device),
            host: host_ops(&ops)?,
            ops,
            ..self.clone()
        })
    }

    /// The layer as a module: the complex operators read off the top-left
    /// (real) and bottom-left (imaginary) blocks of the embeddings, on
    /// their device.
    pub fn layer(&self) -> SpectralLayer {
        let [p, rows, c2] = self.ops.dims();
        let (ch, k1) = (c2 / 2, rows / c2);
        let blocks = self.ops.clone().reshape([p, k1, c2, c2]);
        SpectralLayer {
            re: Param::from_tensor(blocks.clone().slice([0..p, 0..k1, 0..ch, 0..ch]).detach()),
            im: Param::from_tensor(blocks.slice([0..p, 0..k1, ch..c2, 0..ch]).detach()),
            gamma: self.gamma.clone(),
            classes: self.classes.clone(),
            num_classes: self.num_classes,
            config: self.config,
        }
    }

    /// `layer`'s operators embedded for one batched product in `dft`, on
    /// their device, without the host copy (the layer's fields were
    /// checked when it was made).
    fn embedded(layer: &SpectralLayer, dft: &Dft) -> Self {
        Self {
            dft: dft.clone(),
            ops: embed_operators(layer.re.val(), layer.im.val()),
            host: None,
            gamma: layer.gamma.clone(),
            classes: layer.classes.clone(),
            num_classes: layer.num_classes,
            channels: layer.channels(),
            config: layer.config,
        }
    }

    /// Number of classes k the layer was built for.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }
}

/// The statistics a spectral layer is built from, summed over batches: per
/// kept frequency the Hermitian second moments `Σ v vᴴ = A + iB` of all
/// samples and of each class (π-weighted), in their real embeddings
/// `[[A, −B], [B, A]]`, and the class sizes. Batch by batch they give the
/// layer all samples at once would (f32 round-off in the order of the sums).
#[derive(Debug, Clone)]
pub struct SpectralMoments {
    channels: usize,
    frequencies: usize,
    /// Slot 0: all samples; slot 1 + j: class j.
    sums: Vec<Option<Sum>>,
    /// Where the sums belong (set by the first batch).
    device: Option<Device>,
    counts: Vec<f64>,
    samples: usize,
}

/// One moment `[P, 2C, 2C]`: in host memory for CPU devices (summed there,
/// with direct gemm calls), as a tensor on any other device.
#[derive(Debug, Clone)]
enum Sum {
    Host(Vec<f32>),
    Tensor(Box<Tensor<3>>),
}

impl Sum {
    fn into_host(self) -> Result<Vec<f32>> {
        match self {
            Sum::Host(v) => Ok(v),
            Sum::Tensor(t) => redunet_core::host::to_vec(*t),
        }
    }

    fn into_tensor(self, shape: [usize; 3], device: &Device) -> Tensor<3> {
        match self {
            Sum::Host(v) => Tensor::from_data(TensorData::new(v, shape), device),
            Sum::Tensor(t) => t.to_device(device),
        }
    }

    fn plus(self, other: Sum) -> Result<Sum> {
        Ok(match (self, other) {
            (Sum::Tensor(a), Sum::Tensor(b)) => Sum::Tensor(Box::new(*a + *b)),
            (a, b) => {
                let mut a = a.into_host()?;
                a.iter_mut().zip(b.into_host()?).for_each(|(x, y)| *x += y);
                Sum::Host(a)
            }
        })
    }
}

/// `[[A, −B], [B, A]]` of `Σ v vᴴ = A + iB` over the columns of `(xr, xi)`.
fn hermitian_moment(xr: Tensor<3>, xi: Tensor<3>) -> Tensor<3> {
    let a = xr.clone().matmul(xr.clone().swap_dims(1, 2))
        + xi.clone().matmul(xi.clone().swap_dims(1, 2));
    let b = xi.clone().matmul(xr.clone().swap_dims(1, 2)) - xr.matmul(xi.swap_dims(1, 2));
    let top = Tensor::cat(vec![a.clone(), b.clone().neg()], 2);
    let bottom = Tensor::cat(vec![b, a], 2);
    Tensor::cat(vec![top, bottom], 1)
}

/// Which samples (columns of a spectrum) a moment sums over.
enum Columns {
    /// A contiguous run, as hard labels grouped by class give.
    Range(std::ops::Range<usize>),
    /// Listed samples, each scaled (by sqrt(π_ij) for soft memberships).
    Listed(Vec<(usize, f32)>),
}

/// [`hermitian_moment`] on the host for every frequency of `x: [P, 2C, m]`
/// (row-major) over the samples `cols`: per frequency the Gram matrix
/// `X Xᵀ = [[R Rᵀ, R Iᵀ], [I Rᵀ, I Iᵀ]]` of the real and imaginary rows,
/// one product instead of four, folded into `A = R Rᵀ + I Iᵀ`,
/// `B = I Rᵀ − R Iᵀ`.
fn host_moment(x: &[f32], p: usize, c2: usize, m: usize, cols: &Columns) -> Vec<f32> {
    use redunet_core::cpu::gemm::{Threads, View, matmul};
    let ch = c2 / 2;
    let mut out = vec![0f32; p * c2 * c2];
    out.par_chunks_mut(c2 * c2).enumerate().for_each_init(
        || (vec![0f32; c2 * c2], Vec::new()),
        |(g, gathered), (q, emb)| {
            let xq = &x[q * c2 * m..(q + 1) * c2 * m];
            let v = match cols {
                Columns::Range(r) => View::strided(xq, r.start, c2, r.len(), m, 1),
                Columns::Listed(list) => {
                    gathered.clear();
                    for row in xq.chunks(m) {
                        gathered.extend(list.iter().map(|&(i, w)| row[i] * w));
                    }
                    View::new(gathered, c2, list.len())
                }
            };
            matmul(g, c2, v, v.t(), None, Threads::One);
            for r in 0..ch {
                for c in 0..ch {
                    let a = g[r * c2 + c] + g[(ch + r) * c2 + ch + c];
                    let b = g[(ch + r) * c2 + c] - g[r * c2 + ch + c];
                    emb[r * c2 + c] = a;
                    emb[(ch + r) * c2 + ch + c] = a;
                    emb[(ch + r) * c2 + c] = b;
                    emb[r * c2 + ch + c] = -b;
                }
            }
        },
    );
    out
}

impl SpectralMoments {
    /// No samples yet: spectra of `channels` channels at `frequencies` kept
    /// frequencies, in `num_classes` classes.
    pub fn new(channels: usize, frequencies: usize, num_classes: usize) -> Self {
        Self {
            channels,
            frequencies,
            sums: vec![None; num_classes + 1],
            device: None,
            counts: vec![0.0; num_classes],
            samples: 0,
        }
    }

    /// Adds the half spectrum `s` (`[P, 2C, b]`) of a batch with its memberships.
    pub fn add(&mut self, s: &Spectrum, pi: &Memberships) -> Result<()> {
        self.check(s, pi)?;
        if on_host(&s.x.device()) {
            let x = redunet_core::host::to_vec(s.x.clone())?;
            self.add_host(&x, s.x.dims(), &s.x.device(), pi)
        } else {
            self.add_tensor(s, pi)
        }
    }

    /// [`Self::add`] for a spectrum the caller hands over and gets back: on
    /// CPU devices it is read in place rather than copied.
    pub fn add_owned(&mut self, s: Spectrum, pi: &Memberships) -> Result<Spectrum> {
        self.check(&s, pi)?;
        let (dims, device) = (s.x.dims(), s.x.device());
        if !on_host(&device) {
            self.add_tensor(&s, pi)?;
            return Ok(s);
        }
        let x = redunet_core::host::to_vec(s.x)?;
        self.add_host(&x, dims, &device, pi)?;
        Ok(Spectrum {
            x: Tensor::from_data(TensorData::new(x, dims), &device),
        })
    }

    fn check(&self, s: &Spectrum, pi: &Memberships) -> Result<()> {
        let [p, ch2, m] = s.x.dims();
        if p != self.frequencies
            || ch2 != 2 * self.channels
            || pi.num_classes() != self.counts.len()
        {
            return Err(Error::Shape(format!(
                "a spectrum {:?} in {} classes added to moments of {} channels, {} frequencies, {} classes",
                s.x.dims(),
                pi.num_classes(),
                self.channels,
                self.frequencies,
                self.counts.len()
            )));
        }
        if pi.num_samples() != m {
            return Err(Error::LabelCount {
                expected: m,
                got: pi.num_samples(),
            });
        }
        Ok(())
    }

    fn accumulate(&mut self, slot: usize, g: Sum) -> Result<()> {
        self.sums[slot] = Some(match self.sums[slot].take() {
            Some(acc) => acc.plus(g)?,
            None => g,
        });
        Ok(())
    }

    fn add_tensor(&mut self, s: &Spectrum, pi: &Memberships) -> Result<()> {
        let (re, im) = (s.re(), s.im());
        let g = hermitian_moment(re.clone(), im.clone());
        self.accumulate(0, Sum::Tensor(Box::new(g)))?;
        for j in pi.present() {
            let g = hermitian_moment(class_columns(&re, pi, j), class_columns(&im, pi, j));
            self.accumulate(j + 1, Sum::Tensor(Box::new(g)))?;
        }
        self.counted(s.x.dims()[2], &s.x.device(), pi);
        Ok(())
    }

    fn add_host(
        &mut self,
        x: &[f32],
        [p, c2, m]: [usize; 3],
        device: &Device,
        pi: &Memberships,
    ) -> Result<()> {
        // Soft memberships weight each sample's columns by sqrt(π_ij).
        let soft = match pi.labels() {
            Some(_) => None,
            None => Some(redunet_core::host::to_vec(pi.pi().clone())?),
        };
        let k = pi.num_classes();
        self.accumulate(
            0,
            Sum::Host(host_moment(x, p, c2, m, &Columns::Range(0..m))),
        )?;
        for j in pi.present() {
            let cols = match &soft {
                Some(w) => Columns::Listed(
                    (0..m)
                        .filter(|&i| w[i * k + j] > 0.0)
                        .map(|i| (i, w[i * k + j].sqrt()))
                        .collect(),
                ),
                None => {
                    let rows = pi.members(j).unwrap_or_default();
                    match contiguous(&rows) {
                        Some(run) => Columns::Range(run),
                        None => Columns::Listed(rows.into_iter().map(|i| (i, 1.0)).collect()),
                    }
                }
            };
            self.accumulate(j + 1, Sum::Host(host_moment(x, p, c2, m, &cols)))?;
        }
        self.counted(m, device, pi);
        Ok(())
    }

    fn counted(&mut self, m: usize, device: &Device, pi: &Memberships) {
        for (c, n) in self.counts.iter_mut().zip(pi.counts()) {
            *c += n;
        }
        self.samples += m;
        self.device.get_or_insert_with(|| device.clone());
    }

    /// The sums moved to `device`: per frequency `(k+1)` Hermitian 2C×2C
    /// embeddings and the counts, whatever the number of samples behind
    /// them (what a shard's worker sends its coordinator).
    pub fn to_device(self, device: &Device) -> Self {
        let shape = [self.frequencies, 2 * self.channels, 2 * self.channels];
        Self {
            sums: self
                .sums
                .into_iter()
                .map(|t| t.map(|t| Sum::Tensor(Box::new(t.into_tensor(shape, device)))))
                .collect(),
            device: self.device.as_ref().map(|_| device.clone()),
            ..self
        }
    }

    /// Adds the sums of `other` (another shard's, on the same device).
    pub fn merge(&mut self, other: Self) -> Result<()> {
        if (other.channels, other.frequencies, other.counts.len())
            != (self.channels, self.frequencies, self.counts.len())
        {
            return Err(Error::Shape(
                "moments of different channels, frequencies or classes merged".into(),
            ));
        }
        for (slot, g) in other.sums.into_iter().enumerate() {
            if let Some(g) = g {
                self.accumulate(slot, g)?;
            }
        }
        for (c, n) in self.counts.iter_mut().zip(other.counts) {
            *c += n;
        }
        self.samples += other.samples;
        if self.device.is_none() {
            self.device = other.device;
        }
        Ok(())
    }

    /// α, the α_j of the present classes, those classes and their γ_j,
    /// after checking the moments against the configuration and transform.
    fn scales(
        &self,
        config: &VectorLayerConfig,
        dft: &Dft,
    ) -> Result<(Vec<f64>, Vec<usize>, Vec<f64>)> {
        config.validate()?;
        let p = self.frequencies;
        if self.samples == 0 {
            return Err(Error::Empty("no samples in the moments".into()));
        }
        if dft.frequencies() != p {
            return Err(Error::Shape(format!(
                "moments of {p} frequencies, a transform of {}",
                dft.frequencies()
            )));
        }
        let sc = Scales::from_counts(
            &self.counts,
            self.samples as f64,
            self.channels,
            config.eps_sq,
        );
        let mut scales = vec![sc.alpha];
        scales.extend(&sc.alphas);
        Ok((scales, sc.classes, sc.gammas))
    }

    /// The sums of the whole set and of each present class, in that order.
    fn present_sums<'a>(&'a self, classes: &'a [usize]) -> impl Iterator<Item = &'a Sum> + 'a {
        std::iter::once(0)
            .chain(classes.iter().map(|&j| j + 1))
            .map(|slot| {
                self.sums[slot]
                    .as_ref()
                    .expect("a present class has moments")
            })
    }

    /// On the host: `I + a·Σ` of each present sum and frequency, in order
    /// `[k'+1, P, 2C, 2C]`, each moment times its α in f32 plus I, as the
    /// tensor path computes them, in one parallel pass (finiteness checked).
    fn host_batch(&self, classes: &[usize], factors: &[f32]) -> Result<Vec<f32>> {
        let (p, c2) = (self.frequencies, 2 * self.channels);
        let sums = self
            .present_sums(classes)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|sum| match sum {
                Sum::Host(v) => Ok(std::borrow::Cow::Borrowed(v.as_slice())),
                Sum::Tensor(t) => Ok(std::borrow::Cow::Owned(redunet_core::host::to_vec(
                    (**t).clone(),
                )?)),
            })
            .collect::<Result<Vec<_>>>()?;
        let block = c2 * c2;
        let mut batch = vec![0f32; factors.len() * p * block];
        let finite = batch
            .par_chunks_mut(block)
            .enumerate()
            .map(|(b, out)| {
                let (slot, q) = (b / p, b % p);
                let (a, sum) = (factors[slot], &sums[slot][q * block..(q + 1) * block]);
                redunet_core::cpu::vectorized(|| {
                    out.iter_mut().zip(sum).for_each(|(o, &v)| *o = v * a);
                });
                (0..c2).for_each(|i| out[i * (c2 + 1)] += 1.0);
                out.iter().all(|v| v.is_finite())
            })
            .reduce(|| true, |x, y| x && y);
        if !finite {
            return Err(Error::NonFinite("SPD input matrix".into()));
        }
        Ok(batch)
    }

    /// On any device: the same batch as a tensor `[(k'+1)·P, 2C, 2C]`.
    fn tensor_batch(&self, classes: &[usize], scales: &[f64], device: &Device) -> Tensor<3> {
        let (p, c2) = (self.frequencies, 2 * self.channels);
        let embeds = self
            .present_sums(classes)
            .zip(scales)
            .map(|(sum, &a)| sum.clone().into_tensor([p, c2, c2], device).mul_scalar(a))
            .collect();
        let eye = Tensor::<2>::eye(c2, device).unsqueeze_dim::<3>(0);
        Tensor::cat(embeds, 0) + eye
    }

    /// R and R_c from the log-determinants of the embeddings, `[k'+1, P]`:
    /// a complex logdet is ½ that of its embedding, and each kept frequency
    /// counts with its multiplicity.
    fn rates_of(logdets: &[f64], gamma: &[f64], dft: &Dft) -> Rates {
        let p = dft.frequencies();
        let rate = |slot: usize| -> f64 {
            (0..p)
                .map(|q| dft.weights[q] * 0.5 * logdets[slot * p + q])
                .sum::<f64>()
                / (2.0 * dft.len() as f64)
        };
        let r_c: f64 = gamma.iter().enumerate().map(|(i, g)| g * rate(i + 1)).sum();
        Rates::new(rate(0), r_c)
    }

    /// The rates of the features these moments sum, without building a
    /// layer: the log-determinants alone (on a CPU device by the Cholesky
    /// factorisation, without the inverses), exactly those of
    /// [`Self::layer`]. What the last stage of a construction needs.
    pub fn rates(&self, config: &VectorLayerConfig, dft: &Dft) -> Result<Rates> {
        let (scales, classes, gamma) = self.scales(config, dft)?;
        let device = self.device.clone().expect("samples were added");
        let (n, c2) = (scales.len() * self.frequencies, 2 * self.channels);
        let logdets = if on_host(&device) {
            let factors: Vec<f32> = scales.iter().map(|&a| a as f32).collect();
            redunet_core::cpu::spd::logdets(&self.host_batch(&classes, &factors)?, n, c2)?
        } else {
            redunet_core::linalg::spd_logdet(self.tensor_batch(&classes, &scales, &device))?
        };
        Ok(Self::rates_of(&logdets, &gamma, dft))
    }

    /// The layer (and the rates of its input) these moments define.
    pub fn layer(&self, config: &VectorLayerConfig, dft: &Dft) -> Result<(SpectralStep, Rates)> {
        let (scales, classes, gamma) = self.scales(config, dft)?;
        let (p, ch) = (self.frequencies, self.channels);
        let device = self.device.clone().expect("samples were added");
        let k1 = classes.len() + 1;
        let c2 = 2 * ch;
        let (ops, host, logdets) = if on_host(&device) {
            // One pass per step on host memory instead of a chain of
            // tensor copies.
            let factors: Vec<f32> = scales.iter().map(|&a| a as f32).collect();
            let batch = self.host_batch(&classes, &factors)?;
            let (inv, logdets) = redunet_core::cpu::spd::inverse_logdet(&batch, k1 * p, c2)?;
            let host = HostOps::from_inverses(&inv, p, c2, &factors);
            let mut copy = vec![0f32; host.vertical.len()];
            copy.par_chunks_mut(1 << 16)
                .zip(host.vertical.par_chunks(1 << 16))
                .for_each(|(d, s)| d.copy_from_slice(s));
            let ops = Tensor::from_data(TensorData::new(copy, [p, k1 * c2, c2]), &device);
            (ops, Some(Arc::new(host)), logdets)
        } else {
            let (inv, logdets) = spd_inverse_logdet(self.tensor_batch(&classes, &scales, &device))?;
            let scale_t = Tensor::<1>::from_data(
                TensorData::new(scales.iter().map(|&x| x as f32).collect(), [k1]),
                &device,
            )
            .reshape([k1, 1, 1, 1]);
            // The inverse of an embedding is the embedding of the inverse.
            let ops = (inv.reshape([k1, p, c2, c2]) * scale_t)
                .swap_dims(0, 1)
                .reshape([p, k1 * c2, c2]);
            (ops, None, logdets)
        };
        let rates = Self::rates_of(&logdets, &gamma, dft);
        Ok((
            SpectralStep {
                dft: dft.clone(),
                ops,
                host,
                gamma,
                classes,
                num_classes: self.counts.len(),
                channels: ch,
                config: *config,
            },
            rates,
        ))
    }
}

/// A stack of spectral layers (1D or 2D, as its [`Dft`]) on signals
/// `[m, C, T]`: a Burn module whose parameters are the layers' operators.
/// The DFT tables are constants built once and moved with the network.
#[derive(Module, Debug)]
pub struct SpectralNet {
    /// The transform every layer works in.
    pub dft: Dft,
    /// The layers, first to last.
    pub layers: Vec<SpectralLayer>,
}

/// Network, rate record and the training features after the last layer.
pub struct SpectralConstruction {
    /// The constructed network.
    pub network: SpectralNet,
    /// The rates of the input and of every layer's output.
    pub records: Vec<redunet_core::LayerRecord>,
    /// The training signals after the last layer.
    pub features: Tensor<3>,
}

impl SpectralNet {
    /// Builds `layers` layers from signals `z: [m, C, T]` (normalised
    /// first). Between layers the features stay in the spectral domain: the
    /// update, the normalisation (Parseval) and the next construction all
    /// work on the half spectrum, so the DFT is taken once.
    pub fn construct(
        z: &Tensor<3>,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        on_layer: impl FnMut(&redunet_core::LayerRecord),
    ) -> Result<SpectralConstruction> {
        let dft = Dft::new(z.dims()[2], &z.device())?;
        Self::construct_with(z, &dft, pi, layers, config, on_layer)
    }

    /// [`Self::construct`] with an explicit transform, e.g. the 2D DFT of
    /// images stored as `[m, C, H·W]` signals (`Dft::new_2d`): the same
    /// layers are then translation-invariant networks on images.
    pub fn construct_with(
        z: &Tensor<3>,
        dft: &Dft,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        mut on_layer: impl FnMut(&redunet_core::LayerRecord),
    ) -> Result<SpectralConstruction> {
        redunet_core::host::check_finite(z, "input signals")?;
        if z.dims()[2] != dft.len() {
            return Err(Error::Shape(format!(
                "signals {:?} do not fit a transform of length {}",
                z.dims(),
                dft.len()
            )));
        }
        let mut s = dft.spectrum(&normalize_signals(z.clone()));
        let mut built = Vec::with_capacity(layers);
        let mut records = Vec::with_capacity(layers + 1);
        for l in 0..=layers {
            let [p, c2, _] = s.x.dims();
            let mut moments = SpectralMoments::new(c2 / 2, p, pi.num_classes());
            let at = |e: Error| e.at(format!("layer {}, construction", l + 1));
            s = moments.add_owned(s, pi).map_err(at)?;
            // The last stage needs the rates of the features, not a layer.
            let (step, rates) = if l == layers {
                (None, moments.rates(config, dft).map_err(at)?)
            } else {
                let (step, rates) = moments.layer(config, dft).map_err(at)?;
                (Some(step), rates)
            };
            if !rates.delta_r.is_finite() {
                return Err(Error::NonFinite(format!("ΔR after layer {l}")));
            }
            let rec = redunet_core::LayerRecord::new(l, rates);
            on_layer(&rec);
            records.push(rec);
            let Some(step) = step else {
                break;
            };
            s = step.step(s, Some(pi));
            built.push(step.layer());
        }
        Ok(SpectralConstruction {
            network: Self {
                dft: dft.clone(),
                layers: built,
            },
            records,
            features: dft.signals(s),
        })
    }

    /// Channels C and length T of the signals the network takes.
    pub fn signal_shape(&self) -> (usize, usize) {
        let c = self.layers.first().map_or(0, |l| l.channels());
        (c, self.dft.len())
    }

    fn check_signals(&self, z: &Tensor<3>) -> Result<()> {
        let [_, ch, t] = z.dims();
        let (c, len) = self.signal_shape();
        if (ch != c && !self.layers.is_empty()) || t != len {
            return Err(Error::Shape(format!(
                "network expects signals [m, {c}, {len}], got {:?}",
                z.dims()
            )));
        }
        Ok(())
    }

    /// Features of new signals (soft membership in every layer), by the
    /// fused CPU step where the device allows it.
    pub fn transform(&self, z: &Tensor<3>) -> Result<Tensor<3>> {
        redunet_core::host::check_finite(z, "input signals")?;
        self.check_signals(z)?;
        let mut s = self.dft.spectrum(&normalize_signals(z.clone()));
        for layer in &self.layers {
            s = layer.prepare(&self.dft)?.step(s, None);
        }
        Ok(self.dft.signals(s))
    }

    /// [`Self::transform`] as differentiable tensor operations (the forward
    /// pass of fine-tuning), on inputs of the right shape.
    ///
    /// # Shapes
    /// - `z`: `[m, C, T]`
    /// - output: `[m, C, T]`, each signal of unit norm
    pub fn forward(&self, z: Tensor<3>) -> Tensor<3> {
        let mut s = self.dft.spectrum(&normalize_signals(z));
        for layer in &self.layers {
            s = layer.forward(&self.dft, &s);
        }
        self.dft.signals(s)
    }
}
