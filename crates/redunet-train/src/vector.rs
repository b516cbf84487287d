//! The vector ReduNet in training: `redunet_core::VectorReduNet` is itself
//! the trainable module (per layer, E and the C_j — already scaled by α,
//! α_j — are its parameters), and its forward pass is the layer's
//! soft-membership update `normalize(z + η(zE − Σ_j γ_j π̂_j zC_j))` of
//! REDUNET.md §3. This module describes its architecture for saving.

use crate::trainer::FeatureNet;
use burn::tensor::{Device, Tensor};
use redunet_core::{Error, Result, VectorLayer, VectorLayerConfig, VectorReduNet};
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
}

impl VectorShape {
    /// The architecture of `net` (whose layers share their settings, as
    /// construction and the random start make them).
    pub fn of(net: &VectorReduNet) -> Result<Self> {
        let first = net
            .layers()
            .first()
            .ok_or_else(|| Error::Empty("a network without layers".into()))?;
        if net
            .layers()
            .iter()
            .any(|l| l.config() != first.config() || l.num_classes() != first.num_classes())
        {
            return Err(Error::Parameter(
                "layers with different settings or class counts".into(),
            ));
        }
        Ok(Self {
            dim: first.dim(),
            num_classes: first.num_classes(),
            classes: net.layers().iter().map(|l| l.classes().to_vec()).collect(),
            gammas: net.layers().iter().map(|l| l.gamma().to_vec()).collect(),
            config: *first.config(),
        })
    }

    /// A network of this architecture with zero operators (to be loaded).
    pub fn skeleton(&self, device: &Device) -> Result<VectorReduNet> {
        let d = self.dim;
        let layers = self
            .classes
            .iter()
            .zip(&self.gammas)
            .map(|(c, g)| {
                VectorLayer::from_parts(
                    Tensor::zeros([d, d], device),
                    Tensor::zeros([c.len(), d, d], device),
                    g.clone(),
                    c.clone(),
                    self.num_classes,
                    self.config,
                )
            })
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
