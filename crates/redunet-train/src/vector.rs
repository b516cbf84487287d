//! The vector ReduNet in training: `redunet_core::VectorReduNet` is itself
//! the trainable module (per layer, E and the C_j — already scaled by α,
//! α_j — are its parameters), and its forward pass is the layer's
//! soft-membership update `normalize(z + η(zE − Σ_j γ_j π̂_j zC_j))` of
//! REDUNET.md §3. This module describes its architecture for saving, with
//! the front end of the vector baselines on signals where there is one.

use crate::model::LayerRecords;
use crate::trainer::FeatureNet;
use burn::tensor::{Device, Tensor};
use redunet_core::{Error, Result, VectorLayer, VectorLayerConfig, VectorReduNet};
use redunet_vision::front::FrontEndConfig;
use redunet_vision::network::SignalVectorReduNet;
use serde::{Deserialize, Serialize};

/// What is fixed about a vector network (saved in `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorShape {
    /// Feature dimension d.
    pub dim: usize,
    /// Number of classes k the layers were built for.
    pub num_classes: usize,
    /// Per layer: the classes with operators and their weights γ_j.
    pub classes: Vec<Vec<usize>>,
    /// Per layer: γ_j of those classes.
    pub gammas: Vec<Vec<f64>>,
    /// η, λ, ε² and the membership mode of every layer.
    pub config: VectorLayerConfig,
    /// The front end whose flattened signals the layers take (the vector
    /// baselines on signals); absent for a network on plain vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front: Option<FrontEndConfig>,
}

impl VectorShape {
    /// The architecture of a network of dimension `dim` with no layers yet
    /// (layers are added by [`Self::push`]), behind `front` if any.
    pub fn new(dim: usize, front: Option<FrontEndConfig>) -> Self {
        Self {
            dim,
            num_classes: 0,
            classes: Vec::new(),
            gammas: Vec::new(),
            config: VectorLayerConfig::default(),
            front,
        }
    }

    /// Records the next layer; every layer must share the first one's
    /// dimension, settings and class count.
    pub fn push(&mut self, layer: &VectorLayer) -> Result<()> {
        if layer.dim() != self.dim {
            return Err(Error::Shape(format!(
                "a layer of dimension {} in a network of dimension {}",
                layer.dim(),
                self.dim
            )));
        }
        LayerRecords {
            num_classes: &mut self.num_classes,
            config: &mut self.config,
            classes: &mut self.classes,
            gammas: &mut self.gammas,
        }
        .push(layer)
    }

    /// The architecture of `net` (whose layers share their settings, as
    /// construction and the random start make them), behind `front` if any.
    pub fn of(net: &VectorReduNet, front: Option<FrontEndConfig>) -> Result<Self> {
        let first = net
            .layers()
            .first()
            .ok_or_else(|| Error::Empty("a network without layers".into()))?;
        let mut shape = Self::new(first.dim(), front);
        for layer in net.layers() {
            shape.push(layer)?;
        }
        Ok(shape)
    }

    /// Layer `l` of this architecture with zero operators (to be loaded).
    pub fn layer_skeleton(&self, l: usize, device: &Device) -> Result<VectorLayer> {
        let (d, c) = (self.dim, &self.classes[l]);
        VectorLayer::from_parts(
            Tensor::zeros([d, d], device),
            Tensor::zeros([c.len(), d, d], device),
            self.gammas[l].clone(),
            c.clone(),
            self.num_classes,
            self.config,
        )
    }

    /// A network of this architecture with zero operators (to be loaded).
    pub fn skeleton(&self, device: &Device) -> Result<VectorReduNet> {
        let layers = (0..self.classes.len())
            .map(|l| self.layer_skeleton(l, device))
            .collect::<Result<Vec<_>>>()?;
        VectorReduNet::from_layers(layers)
    }
}

impl FeatureNet for VectorReduNet {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x)
    }

    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        // The parameters are used where they are (the plain device, for a
        // module from `valid()` or loading): no host round trip.
        burn::module::Module::to_device(self.clone(), device).transform(x)
    }

    fn feature_dim(&self) -> usize {
        self.dim().unwrap_or(0)
    }
}

impl FeatureNet for SignalVectorReduNet {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x)
    }

    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        burn::module::Module::to_device(self.clone(), device).transform(x)
    }

    fn feature_dim(&self) -> usize {
        SignalVectorReduNet::feature_dim(self)
    }
}
