//! The invariant ReduNet as one Burn module: a [`FrontEnd`] (polar
//! transform, images kept as images, lifting) followed by a [`SpectralNet`].
//! Raw samples go in, features come out; forward construction fills it,
//! back-propagation fine-tunes it (the lifting kernels and every layer's
//! complex operators are its parameters), and a saved model is this module
//! with its configuration.

use crate::front::FrontEnd;
use crate::lift::normals;
use crate::spectral::{Dft, SpectralLayer, SpectralNet};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use redunet_core::{Error, LayerRecord, Memberships, Result, VectorLayerConfig};

mod signal_vector;
pub use signal_vector::{SignalVectorReduNet, flatten};

/// Front end + spectral layers (see the module documentation).
#[derive(Module, Debug)]
pub struct SpectralReduNet {
    /// Raw samples to signals `[m, C, T]`.
    pub front: FrontEnd,
    /// The layers and their transform.
    pub net: SpectralNet,
}

/// The transform a front end's signals are worked in: the 2D DFT of images
/// kept as images, the 1D DFT of signals otherwise.
pub fn transform_of(front: &FrontEnd, device: &Device) -> Result<Dft> {
    match front.image() {
        Some((h, w)) => Dft::new_2d(h, w, device),
        None => Dft::new(front.signal_shape().1, device),
    }
}

impl SpectralReduNet {
    /// Forward construction from raw training samples `x: [m, n]` (flattened
    /// as the front end's sample shape): the front end, then `layers` layers
    /// built as `redunet run` builds them. Returns the network and the rates
    /// of every stage.
    pub fn construct(
        x: &Tensor<2>,
        front: FrontEnd,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        on_layer: impl FnMut(&LayerRecord),
    ) -> Result<(Self, Vec<LayerRecord>)> {
        check_input(x, front.config().sample_shape.iter().product())?;
        let z = front.apply(x.clone())?;
        let dft = transform_of(&front, &x.device())?;
        let built = SpectralNet::construct_with(&z, &dft, pi, layers, config, on_layer)?;
        Ok((
            Self {
                front,
                net: built.network,
            },
            built.records,
        ))
    }

    /// The same architecture with random operators: each complex entry of
    /// α E(p) and α_j C_j(p) drawn N(0, s²/C) with the scales s = α, α_j
    /// that forward construction would use (α = C/(mε²)), so both starts
    /// move features by comparable amounts; γ_j = m_j/m as in construction.
    pub fn random(
        front: FrontEnd,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let (channels, _) = front.signal_shape();
        let dft = transform_of(&front, device)?;
        let sc = pi.scales(channels, config.eps_sq);
        let mut scales = vec![sc.alpha];
        scales.extend(&sc.alphas);
        let (classes, gamma) = (sc.classes, sc.gammas);
        let p = dft.frequencies();
        let k1 = classes.len() + 1;
        let n = p * k1 * channels * channels;
        let draw = |s: u64| {
            let v: Vec<f32> = normals(n, s)
                .iter()
                .enumerate()
                .map(|(i, &r)| {
                    let j = (i / (channels * channels)) % k1;
                    // Re and Im each carry half of the entry's variance.
                    r * (scales[j] / (2.0 * channels as f64).sqrt()) as f32
                })
                .collect();
            Tensor::<4>::from_data(TensorData::new(v, [p, k1, channels, channels]), device)
        };
        let layers = (0..layers)
            .map(|l| {
                let base = seed.wrapping_mul(1_000_003);
                SpectralLayer::new(
                    draw(base.wrapping_add(2 * l as u64 + 1)),
                    draw(base.wrapping_add(2 * l as u64 + 2)),
                    gamma.clone(),
                    classes.clone(),
                    pi.num_classes(),
                    *config,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            front,
            net: SpectralNet { dft, layers },
        })
    }

    /// Length of a flattened input sample.
    pub fn input_dim(&self) -> usize {
        self.front.sample_len()
    }

    /// Length of a feature vector, `C·T` (`C·H·W` for images).
    pub fn feature_dim(&self) -> usize {
        self.front.signal_len()
    }

    /// Features `[b, C·T]` (unit norm) of inputs `x: [b, n]`, as
    /// differentiable tensor operations on the device of the parameters
    /// (except on 1D signals long enough for the FFT path, see
    /// [`crate::spectral::Dft::uses_fft`]: there gradients stop at the
    /// transform, and the trainer refuses such networks).
    ///
    /// # Shapes
    /// - `x`: `[b, n]`, n the product of the front end's sample shape
    /// - output: `[b, C·T]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let b = x.dims()[0];
        let z = self
            .front
            .apply(x)
            .expect("inputs of the front end's sample shape");
        self.net.forward(z).reshape([b, self.feature_dim()])
    }

    /// Features of a set of samples without gradients, checked (width,
    /// emptiness, finiteness), by the fused CPU step where the device allows
    /// it.
    pub fn transform(&self, x: &Tensor<2>) -> Result<Tensor<2>> {
        check_input(x, self.input_dim())?;
        let b = x.dims()[0];
        let z = self.front.apply(x.clone())?;
        Ok(self.net.transform(&z)?.reshape([b, self.feature_dim()]))
    }
}

/// Checks a network's input `x: [m, n]`: rows of length `dim`, at least
/// one of them, finite values.
pub fn check_input(x: &Tensor<2>, dim: usize) -> Result<()> {
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
