//! The invariant network's settings as a Burn `Config`.

use crate::front::{FrontEnd, FrontEndConfig};
use crate::network::SpectralReduNet;
use burn::config::Config;
use burn::tensor::{Device, Tensor};
use redunet_core::{LayerRecord, Memberships, VectorLayerConfig};

/// A shift- or translation-invariant ReduNet: a front end and `layers`
/// spectral layers sharing one layer configuration. Forward construction
/// fills it from data.
///
/// ```
/// use redunet_core::{Device, Memberships, Tensor};
/// use redunet_vision::front::FrontEndConfig;
/// use redunet_vision::network::SpectralReduNetConfig;
/// let device = Device::default();
/// // Six 4×4 images of two classes, lifted to 2 channels by 3×3 kernels.
/// let x = Tensor::<2>::random([6, 16], burn::tensor::Distribution::Default, &device);
/// let pi = Memberships::from_labels(&[0, 0, 0, 1, 1, 1], 2, &device)?;
/// let config = SpectralReduNetConfig::new(FrontEndConfig::images(4, 4).lifted(2, 3, 0), 2);
/// let (net, records) = config.construct(&x, &pi, |_| {})?;
/// assert_eq!((records.len(), net.feature_dim()), (3, 2 * 16));
/// assert_eq!(net.transform(&x)?.dims(), [6, 32]);
/// # Ok::<(), redunet_core::Error>(())
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct SpectralReduNetConfig {
    /// Raw samples to signals: sample shape, polar transform, lifting.
    pub front: FrontEndConfig,
    /// Number of layers L.
    pub layers: usize,
    /// The settings every layer shares.
    #[config(default = "VectorLayerConfig::new()")]
    pub layer: VectorLayerConfig,
}

impl SpectralReduNetConfig {
    /// Checks the front end, the layer settings and the number of layers.
    pub fn validate(&self) -> redunet_core::Result<()> {
        if self.layers == 0 {
            return Err(redunet_core::Error::Parameter(
                "layers must be at least 1".into(),
            ));
        }
        self.front.validate()?;
        self.layer.validate()
    }

    /// Forward construction from raw samples `x: [m, n]` on their device
    /// ([`SpectralReduNet::construct`]).
    pub fn construct(
        &self,
        x: &Tensor<2>,
        pi: &Memberships,
        on_layer: impl FnMut(&LayerRecord),
    ) -> redunet_core::Result<(SpectralReduNet, Vec<LayerRecord>)> {
        self.validate()?;
        let front = FrontEnd::new(&self.front, &x.device())?;
        SpectralReduNet::construct(x, front, pi, self.layers, &self.layer, on_layer)
    }

    /// The same architecture with random operators
    /// ([`SpectralReduNet::random`]).
    pub fn init_random(
        &self,
        pi: &Memberships,
        seed: u64,
        device: &Device,
    ) -> redunet_core::Result<SpectralReduNet> {
        self.validate()?;
        let front = FrontEnd::new(&self.front, device)?;
        SpectralReduNet::random(front, pi, self.layers, &self.layer, seed, device)
    }
}
