//! The settings of ReduNet layers (vector and spectral) and of the vector
//! network, as Burn `Config`s: defaults in one place (`…Config::new()`),
//! builders (`with_eta`, …), JSON through `save`/`load`.

use burn::config::Config;
use serde::{Deserialize, Serialize};

/// Which memberships the update step uses on labelled training samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipMode {
    /// The true memberships Π (Algorithm 1 of the paper).
    #[default]
    Labels,
    /// The soft estimate `softmax(−λ ‖C_j z‖)`, as the official code does.
    Soft,
}

/// Hyper-parameters of a ReduNet layer: the paper's settings by default
/// (η = 0.5, ε² = 0.1, λ = 500, true labels).
///
/// ```
/// use redunet_core::{MembershipMode, VectorLayerConfig};
/// let config = VectorLayerConfig::new().with_membership(MembershipMode::Soft);
/// assert_eq!((config.eta, config.eps_sq, config.lambda), (0.5, 0.1, 500.0));
/// assert!(config.with_eta(-1.0).validate().is_err());
/// ```
#[derive(Config, Debug, Copy, PartialEq)]
pub struct VectorLayerConfig {
    /// Step size η of the gradient step.
    #[config(default = 0.5)]
    pub eta: f64,
    /// ε², the squared coding precision.
    #[config(default = 0.1)]
    pub eps_sq: f64,
    /// λ, the inverse temperature of the soft membership estimate.
    #[config(default = 500.0)]
    pub lambda: f64,
    /// Memberships used when the layer updates its own training samples.
    #[config(default = "MembershipMode::Labels")]
    pub membership: MembershipMode,
}

impl Default for VectorLayerConfig {
    /// [`VectorLayerConfig::new`]: the paper's settings.
    fn default() -> Self {
        Self::new()
    }
}

impl VectorLayerConfig {
    /// Checks that every parameter is finite and in range.
    pub fn validate(&self) -> crate::Result<()> {
        let bad =
            |name: &str, v: f64| crate::Error::Parameter(format!("{name} = {v} is out of range"));
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(bad("eta (must be > 0)", self.eta));
        }
        if !(self.eps_sq.is_finite() && self.eps_sq > 0.0) {
            return Err(bad("eps_sq (must be > 0)", self.eps_sq));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(bad("lambda (must be ≥ 0)", self.lambda));
        }
        Ok(())
    }
}

/// A vector ReduNet: `layers` layers sharing one layer configuration.
/// Forward construction fills it from data (the ReduNet's "init").
///
/// ```
/// use redunet_core::{Device, Memberships, Tensor, VectorReduNetConfig};
/// let device = Device::default();
/// let z = Tensor::<2>::from_floats([[1.0, 0.1], [0.9, 0.2], [0.1, 1.0], [0.2, 0.9]], &device);
/// let pi = Memberships::from_labels(&[0, 0, 1, 1], 2, &device)?;
/// let built = VectorReduNetConfig::new(3).construct(&z, &pi)?;
/// assert_eq!(built.network.layers().len(), 3);
/// # Ok::<(), redunet_core::Error>(())
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct VectorReduNetConfig {
    /// Number of layers L.
    pub layers: usize,
    /// The settings every layer shares.
    #[config(default = "VectorLayerConfig::new()")]
    pub layer: VectorLayerConfig,
}

impl VectorReduNetConfig {
    /// Checks the layer settings and the number of layers (at least one).
    pub fn validate(&self) -> crate::Result<()> {
        if self.layers == 0 {
            return Err(crate::Error::Parameter("layers must be at least 1".into()));
        }
        self.layer.validate()
    }

    /// Forward construction from features `z: [m, d]` and memberships
    /// ([`crate::VectorReduNet::construct`]).
    pub fn construct(
        &self,
        z: &burn::tensor::Tensor<2>,
        pi: &crate::Memberships,
    ) -> crate::Result<crate::network::Construction> {
        self.validate()?;
        crate::VectorReduNet::construct(z, pi, self.layers, &self.layer, |_| {})
    }

    /// The same architecture with random operators
    /// ([`crate::VectorReduNet::random`]).
    pub fn init_random(
        &self,
        dim: usize,
        pi: &crate::Memberships,
        seed: u64,
        device: &burn::tensor::Device,
    ) -> crate::Result<crate::VectorReduNet> {
        self.validate()?;
        crate::VectorReduNet::random(dim, pi, self.layers, &self.layer, seed, device)
    }
}
