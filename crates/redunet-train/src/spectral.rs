//! A translation-invariant (2D) or shift-invariant (1D) ReduNet as a
//! trainable Burn module: optional lifting kernels, then per layer the
//! complex operators α E(p), α_j C_j(p) of every kept frequency as
//! parameters. The forward pass is that of REDUNET.md §4 with soft
//! memberships — DFT, `v ← normalize(v + η(E v − Σ_j γ_j π̂_j C_j v))` per
//! layer, inverse DFT — written as tensor operations, so gradients flow
//! through the spectral transform, every layer and the lifting stage.
//!
//! The operators are kept complex (`re`, `im`), not as free real matrices on
//! (Re v, Im v): only complex-linear per-frequency maps commute with
//! translations, so training cannot break the invariance it is for.

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use redunet_core::{Error, LayerRecord, Memberships, Result, VectorLayerConfig};
use redunet_vision::lift::{circular_conv2d, normals};
use redunet_vision::spectral::{
    Dft, SpectralLayer, SpectralNet, Spectrum, embed_operators, normalize_signals,
};

/// One layer's parameters: real and imaginary parts of
/// `[α E(p), α_1 C_1(p), …]`, each `[P, k'+1, C, C]`.
#[derive(Module, Debug)]
pub struct SpectralLayerParams {
    /// Real parts.
    pub re: Param<Tensor<4>>,
    /// Imaginary parts.
    pub im: Param<Tensor<4>>,
}

/// What is fixed about a trainable spectral network (saved in `model.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectralShape {
    /// Images `height × width`; `height = 1` for 1D signals.
    pub height: usize,
    /// Image width (the signal length for 1D signals).
    pub width: usize,
    /// Channels of the input samples (before lifting).
    pub in_channels: usize,
    /// Channels the layers work on (after lifting).
    pub channels: usize,
    /// Size `k` of the `k × k` lifting kernels, when there is a lifting stage.
    pub lift_kernel: Option<usize>,
    /// Number of classes k the layers were built for.
    pub num_classes: usize,
    /// Per layer: the classes with operators and their weights γ_j.
    pub classes: Vec<Vec<usize>>,
    /// Per layer: γ_j of those classes.
    pub gammas: Vec<Vec<f64>>,
    /// η, λ, ε² and the membership mode of every layer.
    pub config: VectorLayerConfig,
}

/// How the lifting stage starts: `out_channels` random `kernel × kernel`
/// kernels drawn from `seed` (the same kernels as `redunet run`'s `[lift]`).
#[derive(Debug, Clone, Copy)]
pub struct LiftInit {
    /// Channels after lifting.
    pub out_channels: usize,
    /// Size k of the k × k kernels.
    pub kernel_size: usize,
    /// Seed of the kernels.
    pub seed: u64,
}

/// The trainable network.
#[derive(Module, Debug)]
pub struct SpectralReduNet {
    /// Lifting kernels `[C, C_in, k, k]` (2D only), followed by ReLU.
    pub lift: Option<Param<Tensor<4>>>,
    /// The layers' operators, first to last.
    pub layers: Vec<SpectralLayerParams>,
    /// The DFT tables of `height × width`, built once.
    pub dft: Dft,
    #[module(skip)]
    /// The shapes and settings (what `model.json` stores).
    pub shape: SpectralShape,
}

/// The seeded N(0, 1) kernels of `redunet run`, stored divided by
/// √(fan-in) = k·√C_in. ReLU and the normalisation that follows are
/// positively homogeneous, so the network computes the same features; what
/// changes is the optimiser's view: Adam moves every entry by about `lr`, and
/// at unit scale the kernels would learn k·√C_in times slower, relative to
/// their size, than the layers of an ordinary CNN.
fn lift_kernels(init: &LiftInit, in_channels: usize, device: &Device) -> Tensor<4> {
    let (c, k) = (init.out_channels, init.kernel_size);
    let scale = 1.0 / (k as f32 * (in_channels as f32).sqrt());
    let v: Vec<f32> = normals(c * in_channels * k * k, init.seed)
        .into_iter()
        .map(|x| x * scale)
        .collect();
    Tensor::from_data(TensorData::new(v, [c, in_channels, k, k]), device)
}

fn signals_of(
    x: Tensor<2>,
    lift: Option<Tensor<4>>,
    height: usize,
    width: usize,
    in_channels: usize,
) -> Tensor<3> {
    let b = x.dims()[0];
    match lift {
        Some(kernels) => {
            let c = kernels.dims()[0];
            relu(circular_conv2d(
                x.reshape([b, in_channels, height, width]),
                kernels,
            ))
            .reshape([b, c, height * width])
        }
        None => x.reshape([b, in_channels, height * width]),
    }
}

impl SpectralReduNet {
    /// Forward construction from training samples `x: [m, C_in·H·W]`
    /// (images, or 1D signals with `height = 1`): lifting with the seeded
    /// kernels, then `layers` layers built as in `redunet run`. Returns the
    /// network and the rates of every stage.
    #[allow(clippy::too_many_arguments)]
    pub fn construct(
        x: &Tensor<2>,
        (height, width, in_channels): (usize, usize, usize),
        lift: Option<LiftInit>,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        on_layer: impl FnMut(&LayerRecord),
    ) -> Result<(Self, Vec<LayerRecord>)> {
        let device = x.device();
        check_input(x, height * width * in_channels)?;
        let kernels = lift.map(|l| lift_kernels(&l, in_channels, &device));
        let z = signals_of(x.clone(), kernels.clone(), height, width, in_channels);
        let dft = Dft::new_2d(height, width, &device)?;
        let built = SpectralNet::construct_with(&z, &dft, pi, layers, config, on_layer)?;
        let channels = z.dims()[1];
        let p = dft.frequencies();
        let mut params = Vec::with_capacity(layers);
        let mut classes = Vec::with_capacity(layers);
        let mut gammas = Vec::with_capacity(layers);
        for layer in &built.network.layers {
            let k1 = layer.classes().len() + 1;
            let ops = Tensor::<5>::from_data(
                TensorData::new(layer.operators()?, [2, p, k1, channels, channels]),
                &device,
            );
            let part = |i: usize| {
                ops.clone()
                    .slice([i..i + 1, 0..p, 0..k1, 0..channels, 0..channels])
                    .reshape([p, k1, channels, channels])
            };
            params.push(SpectralLayerParams {
                re: Param::from_tensor(part(0)),
                im: Param::from_tensor(part(1)),
            });
            classes.push(layer.classes().to_vec());
            gammas.push(layer.gamma().to_vec());
        }
        Ok((
            Self {
                lift: kernels.map(Param::from_tensor),
                layers: params,
                dft,
                shape: SpectralShape {
                    height,
                    width,
                    in_channels,
                    channels,
                    lift_kernel: lift.map(|l| l.kernel_size),
                    num_classes: pi.num_classes(),
                    classes,
                    gammas,
                    config: *config,
                },
            },
            built.records,
        ))
    }

    /// The same architecture with random operators: each complex entry of
    /// α E(p) and α_j C_j(p) drawn N(0, s²/C) with the scales s = α, α_j
    /// that forward construction would use (α = C/(mε²)), so both starts
    /// move features by comparable amounts; γ_j = m_j/m as in construction.
    #[allow(clippy::too_many_arguments)]
    pub fn random(
        (height, width, in_channels): (usize, usize, usize),
        lift: Option<LiftInit>,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let channels = lift.map_or(in_channels, |l| l.out_channels);
        let sc = pi.scales(channels, config.eps_sq);
        let mut scales = vec![sc.alpha];
        scales.extend(&sc.alphas);
        let (classes, gamma) = (sc.classes, sc.gammas);
        let p = height * (width / 2 + 1);
        let k1 = classes.len() + 1;
        let n = p * k1 * channels * channels;
        let draw = |s: u64| {
            let raw = normals(n, s);
            let v: Vec<f32> = raw
                .iter()
                .enumerate()
                .map(|(i, &r)| {
                    let j = (i / (channels * channels)) % k1;
                    // Re and Im each carry half of the entry's variance.
                    r * (scales[j] / (2.0 * channels as f64).sqrt()) as f32
                })
                .collect();
            Param::from_tensor(Tensor::<4>::from_data(
                TensorData::new(v, [p, k1, channels, channels]),
                device,
            ))
        };
        let params = (0..layers)
            .map(|l| SpectralLayerParams {
                re: draw(seed.wrapping_mul(1_000_003).wrapping_add(2 * l as u64 + 1)),
                im: draw(seed.wrapping_mul(1_000_003).wrapping_add(2 * l as u64 + 2)),
            })
            .collect();
        Ok(Self {
            lift: lift.map(|l| Param::from_tensor(lift_kernels(&l, in_channels, device))),
            layers: params,
            dft: Dft::new_2d(height, width, device)?,
            shape: SpectralShape {
                height,
                width,
                in_channels,
                channels,
                lift_kernel: lift.map(|l| l.kernel_size),
                num_classes: pi.num_classes(),
                classes: vec![classes; layers],
                gammas: vec![gamma; layers],
                config: *config,
            },
        })
    }

    /// Length of a flattened input sample.
    pub fn input_dim(&self) -> usize {
        self.shape.in_channels * self.shape.height * self.shape.width
    }

    /// Length of a feature vector, `C·H·W`.
    pub fn feature_dim(&self) -> usize {
        self.shape.channels * self.shape.height * self.shape.width
    }

    /// Features `[b, C·H·W]` (unit norm) of inputs `x: [b, C_in·H·W]`, as
    /// differentiable tensor operations on the device of the parameters.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let sh = &self.shape;
        let b = x.dims()[0];
        let dft = &self.dft;
        let z = signals_of(
            x,
            self.lift.as_ref().map(|k| k.val()),
            sh.height,
            sh.width,
            sh.in_channels,
        );
        let mut s = dft.spectrum(&normalize_signals(z));
        for (l, params) in self.layers.iter().enumerate() {
            let layer = SpectralLayer::from_embedded(
                dft,
                embed_operators(params.re.val(), params.im.val()),
                sh.gammas[l].clone(),
                sh.classes[l].clone(),
                sh.num_classes,
                sh.config,
            );
            s = layer.step_tensor(&s, None);
        }
        dft.signals(Spectrum { x: s.x })
            .reshape([b, self.feature_dim()])
    }

    /// Features of a large set without gradients, by the fused CPU step
    /// where the device allows it: the parameters are read back into a
    /// [`SpectralNet`] on `device` (the inner, non-autodiff device).
    pub fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        check_input(x, self.input_dim())?;
        let sh = &self.shape;
        // The parameters stay where they are (the plain device, for a
        // module from `valid()` or loading): no host round trip, except the
        // host copy the fused CPU step works from.
        let dft = Module::to_device(self.dft.clone(), device);
        let mut layers = Vec::with_capacity(self.layers.len());
        for (l, params) in self.layers.iter().enumerate() {
            layers.push(SpectralLayer::from_complex(
                &dft,
                params.re.val().to_device(device),
                params.im.val().to_device(device),
                sh.gammas[l].clone(),
                sh.classes[l].clone(),
                sh.num_classes,
                sh.config,
            )?);
        }
        let net = SpectralNet { layers };
        let kernels = self.lift.as_ref().map(|k| k.val().to_device(device));
        let b = x.dims()[0];
        let z = signals_of(x.clone(), kernels, sh.height, sh.width, sh.in_channels);
        Ok(net.transform(&z)?.reshape([b, self.feature_dim()]))
    }
}

fn check_input(x: &Tensor<2>, dim: usize) -> Result<()> {
    let [m, d] = x.dims();
    if d != dim {
        return Err(Error::Shape(format!(
            "the network takes inputs of length {dim}, got [{m}, {d}]"
        )));
    }
    if m == 0 {
        return Err(Error::Empty("no input samples".into()));
    }
    redunet_core::host::check_finite(x, "network input")
}

impl crate::trainer::FeatureNet for SpectralReduNet {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        SpectralReduNet::features(self, x)
    }

    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        SpectralReduNet::features_eval(self, x, device)
    }

    fn feature_dim(&self) -> usize {
        SpectralReduNet::feature_dim(self)
    }
}
