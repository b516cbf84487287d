//! The front end's settings as Burn `Config`s: what a saved model stores
//! and what the `[polar]` and `[lift]` sections of a run configuration
//! hold.

use burn::config::Config;

/// Images to `[radii, angles]` signals (rotation becomes a cyclic shift).
#[derive(Config, Debug, PartialEq)]
pub struct PolarConfig {
    /// Circles around the image centre: the channels of the signal.
    pub radii: usize,
    /// Samples per circle: the length of the signal.
    pub angles: usize,
}

/// Lifting by fixed random circular convolutions + ReLU.
#[derive(Config, Debug, PartialEq)]
pub struct LiftConfig {
    /// Channels after lifting.
    pub out_channels: usize,
    /// Size of the kernels (k, or k × k for images).
    pub kernel_size: usize,
    /// Seed of the random kernels.
    #[config(default = 0)]
    pub seed: u64,
}

/// The stages of a front end, for samples of one shape.
///
/// ```
/// use redunet_vision::front::FrontEndConfig;
/// // 28×28 digits kept as images, lifted to 16 channels by 9×9 kernels.
/// let config = FrontEndConfig::images(28, 28).lifted(16, 9, 0);
/// assert_eq!(config.signal_shape(), (16, 784));
/// config.validate()?;
/// # Ok::<(), redunet_core::Error>(())
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct FrontEndConfig {
    /// Shape of one raw sample: `[H, W]`, `[C, H, W]`, `[C, T]` or `[T]`.
    pub sample_shape: Vec<usize>,
    /// The polar transform of images, if any.
    pub polar: Option<PolarConfig>,
    /// Keep images as images (`[C, H·W]` with a 2D lifting), for
    /// translation-invariant networks and their vector baselines.
    #[config(default = false)]
    pub images: bool,
    /// The lifting stage, if any.
    pub lift: Option<LiftConfig>,
}
