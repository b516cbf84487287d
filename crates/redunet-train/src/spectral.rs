//! The invariant ReduNet in training: `redunet_vision::network::SpectralReduNet`
//! is itself the trainable module (the lifting kernels and every layer's
//! complex operators α E(p), α_j C_j(p) are its parameters), and its forward
//! pass is that of REDUNET.md §4 with soft memberships — front end, DFT,
//! `v ← normalize(v + η(E v − Σ_j γ_j π̂_j C_j v))` per layer, inverse DFT —
//! as tensor operations, so gradients flow through every stage. This module
//! describes its architecture for saving.

use crate::model::LayerRecords;
use crate::trainer::FeatureNet;
use burn::tensor::{Device, Tensor};
use redunet_core::{Error, Result, VectorLayerConfig};
use redunet_vision::front::{FrontEnd, FrontEndConfig};
use redunet_vision::network::{SpectralReduNet, transform_of};
use redunet_vision::spectral::{SpectralLayer, SpectralNet};
use serde::{Deserialize, Serialize};

/// What is fixed about a spectral network (saved in `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectralShape {
    /// The front end: sample shape, polar transform, images, lifting.
    pub front: FrontEndConfig,
    /// Number of classes k the layers were built for.
    pub num_classes: usize,
    /// Per layer: the classes with operators.
    pub classes: Vec<Vec<usize>>,
    /// Per layer: γ_j of those classes.
    pub gammas: Vec<Vec<f64>>,
    /// η, λ, ε² and the membership mode of every layer.
    pub config: VectorLayerConfig,
}

impl SpectralShape {
    /// The architecture of a network of no layers yet behind `front`
    /// (layers are added by [`Self::push`]).
    pub fn new(front: FrontEndConfig) -> Self {
        Self {
            front,
            num_classes: 0,
            classes: Vec::new(),
            gammas: Vec::new(),
            config: VectorLayerConfig::default(),
        }
    }

    /// Records the next layer; every layer must share the first one's
    /// settings and class count.
    pub fn push(&mut self, layer: &SpectralLayer) -> Result<()> {
        LayerRecords {
            num_classes: &mut self.num_classes,
            config: &mut self.config,
            classes: &mut self.classes,
            gammas: &mut self.gammas,
        }
        .push(layer)
    }

    /// The architecture of `net`.
    pub fn of(net: &SpectralReduNet) -> Result<Self> {
        if net.net.layers.is_empty() {
            return Err(Error::Empty("a network without layers".into()));
        }
        let mut shape = Self::new(net.front.config().clone());
        for layer in &net.net.layers {
            shape.push(layer)?;
        }
        Ok(shape)
    }

    /// Channels C and length T of the layers' signals.
    pub fn signal_shape(&self) -> (usize, usize) {
        self.front.signal_shape()
    }

    /// The front end of this architecture (kernels to be loaded).
    pub fn front_end(&self, device: &Device) -> Result<FrontEnd> {
        FrontEnd::new(&self.front, device)
    }

    /// Layer `l` of this architecture with zero operators (to be loaded).
    pub fn layer_skeleton(
        &self,
        l: usize,
        frequencies: usize,
        device: &Device,
    ) -> Result<SpectralLayer> {
        let (c, _) = self.signal_shape();
        let k1 = self.classes[l].len() + 1;
        SpectralLayer::new(
            Tensor::zeros([frequencies, k1, c, c], device),
            Tensor::zeros([frequencies, k1, c, c], device),
            self.gammas[l].clone(),
            self.classes[l].clone(),
            self.num_classes,
            self.config,
        )
    }

    /// The whole network with zero operators and freshly drawn kernels.
    pub fn skeleton(&self, device: &Device) -> Result<SpectralReduNet> {
        let front = self.front_end(device)?;
        let dft = transform_of(&front, device)?;
        let layers = (0..self.classes.len())
            .map(|l| self.layer_skeleton(l, dft.frequencies(), device))
            .collect::<Result<Vec<_>>>()?;
        Ok(SpectralReduNet {
            front,
            net: SpectralNet { dft, layers },
        })
    }
}

impl FeatureNet for SpectralReduNet {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x)
    }

    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        // The parameters are used where they are (the plain device, for a
        // module from `valid()` or loading): no host round trip, except the
        // host copy the fused CPU step works from.
        burn::module::Module::to_device(self.clone(), device).transform(x)
    }

    fn feature_dim(&self) -> usize {
        SpectralReduNet::feature_dim(self)
    }
}
