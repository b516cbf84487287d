//! The front end of the invariant networks: raw samples to the multi-channel
//! signals `[m, C, T]` the spectral layers work on.
//!
//! - images `[H, W]` through the polar transform to `[radii, angles]`
//!   signals (a rotation becomes a cyclic shift), or kept as images
//!   `[C, H·W]` for translation-invariant (2D) networks;
//! - signals `[C, T]` or `[T]` as they are;
//! - then, optionally, lifting by fixed random circular convolutions + ReLU
//!   (1D kernels on signals, `k × k` kernels on images), drawn from a seed.
//!
//! [`FrontEndConfig`] is what a saved model stores: the kernels are redrawn
//! from their seed, so the same configuration gives the same features.

use crate::lift::{Lift1d, Lift2d};
use crate::polar::Polar;
use crate::shift::{cyclic_shift, stride_grid, translate};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use redunet_core::{Error, Result};

pub use config::{FrontEndConfig, LiftConfig, PolarConfig};

mod config;

impl PolarConfig {
    /// At least one radius and one angle.
    pub fn validate(&self) -> Result<()> {
        if self.radii == 0 || self.angles == 0 {
            return Err(invalid(
                "polar.radii and polar.angles must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl LiftConfig {
    /// At least one output channel and a kernel of size at least 1.
    pub fn validate(&self) -> Result<()> {
        if self.out_channels == 0 || self.kernel_size == 0 {
            return Err(invalid(
                "lift.out_channels and lift.kernel_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The lifting stage of a [`FrontEnd`]: kernels over signals or images.
#[derive(Module, Debug)]
pub enum Lifting {
    /// 1D kernels over signals `[C, T]`.
    OneD(Lift1d),
    /// `k × k` kernels over images `[C, H, W]`.
    TwoD(Lift2d),
}

/// A front end ready to apply (see the module documentation): a Burn module
/// whose parameters are the lifting kernels (the polar tables are constants),
/// so the front end of a trained network is trained with it and saved with
/// it.
#[derive(Module, Debug)]
pub struct FrontEnd {
    #[module(skip)]
    config: FrontEndConfig,
    /// The polar transform, if any (constant tables).
    pub polar: Option<Polar>,
    /// `(H, W)` when images are kept as images.
    #[module(skip)]
    image: Option<(usize, usize)>,
    /// The lifting stage, if any (its kernels are the parameters).
    pub lift: Option<Lifting>,
}

fn invalid(reason: String) -> Error {
    Error::Parameter(reason)
}

impl FrontEndConfig {
    /// Images `[H, W]` kept as images: the front end of a
    /// translation-invariant (2D) network.
    pub fn images(height: usize, width: usize) -> Self {
        Self {
            sample_shape: vec![height, width],
            polar: None,
            images: true,
            lift: None,
        }
    }

    /// Signals `[C, T]` as they are: the front end of a shift-invariant (1D)
    /// network.
    pub fn signals(channels: usize, len: usize) -> Self {
        Self {
            sample_shape: vec![channels, len],
            polar: None,
            images: false,
            lift: None,
        }
    }

    /// Images `[H, W]` through the polar transform on `radii × angles`
    /// points: 1D signals on which a rotation is a cyclic shift.
    pub fn polar(height: usize, width: usize, radii: usize, angles: usize) -> Self {
        Self {
            sample_shape: vec![height, width],
            polar: Some(PolarConfig { radii, angles }),
            images: false,
            lift: None,
        }
    }

    /// The same front end followed by a lifting stage of `out_channels`
    /// random kernels of size `kernel_size` drawn from `seed`.
    pub fn lifted(self, out_channels: usize, kernel_size: usize, seed: u64) -> Self {
        self.with_lift(Some(
            LiftConfig::new(out_channels, kernel_size).with_seed(seed),
        ))
    }

    /// Checks the stages against the sample shape.
    pub fn validate(&self) -> Result<()> {
        let s = self.sample_shape.as_slice();
        if s.is_empty() || s.contains(&0) {
            return Err(invalid(format!("samples of shape {s:?}")));
        }
        // Sizes are multiplied below: refuse any that overflow.
        let values = s.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        let polar = self
            .polar
            .as_ref()
            .map_or(Some(1), |p| p.radii.checked_mul(p.angles));
        let lift = self.lift.as_ref().map_or(Some(1), |l| {
            l.kernel_size
                .checked_mul(l.kernel_size)?
                .checked_mul(l.out_channels)
        });
        if [values, polar, lift].iter().any(Option::is_none) {
            return Err(invalid(format!(
                "sizes overflow: samples {s:?}, polar {:?}, lift {:?}",
                self.polar, self.lift
            )));
        }
        if let Some(p) = &self.polar {
            p.validate()?;
            if s.len() != 2 {
                return Err(invalid(format!(
                    "[polar] needs images [H, W], got samples of shape {s:?}"
                )));
            }
            if self.images {
                return Err(invalid(
                    "the polar transform makes 1D signals; images cannot stay images".into(),
                ));
            }
        }
        if self.images && !matches!(s.len(), 2 | 3) {
            return Err(invalid(format!(
                "images need samples [H, W] or [C, H, W], got {s:?}"
            )));
        }
        if !self.images && self.polar.is_none() && s.len() > 2 {
            return Err(invalid(format!(
                "signals need samples [C, T] or [T], got {s:?} (add a [polar] section for images)"
            )));
        }
        if let Some(l) = &self.lift {
            l.validate()?;
        }
        Ok(())
    }

    /// Bytes of the front end's fixed tables (the polar interpolation
    /// matrix and the lifting kernels, host and device copies): checked, so
    /// a stored or requested size that cannot fit is refused.
    pub fn table_bytes(&self) -> u64 {
        use redunet_data::memory::bytes;
        let s = &self.sample_shape;
        let polar = match &self.polar {
            Some(p) => bytes(&[s.iter().product(), p.radii, p.angles, 2], 4),
            None => 0,
        };
        let lift = self.lift_params().map_or(u64::MAX, |n| bytes(&[n, 2], 4));
        polar.saturating_add(lift)
    }

    /// Bytes of one sample after the front end (f32 signals `[C, T]`).
    pub fn sample_bytes(&self) -> u64 {
        let (c, t) = self.signal_shape();
        redunet_data::memory::bytes(&[c, t], 4)
    }

    /// `(C, T)` of the signals after the front end (`T = H·W` for images).
    pub fn signal_shape(&self) -> (usize, usize) {
        let s = &self.sample_shape;
        let (c, t) = match (&self.polar, self.images, s.as_slice()) {
            (Some(p), _, _) => (p.radii, p.angles),
            (None, true, [h, w]) => (1, h * w),
            (None, true, [c, h, w]) => (*c, h * w),
            (None, false, [c, t]) => (*c, *t),
            (None, _, _) => (1, s.iter().product()),
        };
        (self.lift.as_ref().map_or(c, |l| l.out_channels), t)
    }

    /// `(H, W)` of the transform the layers work in: the image size for
    /// images kept as images, `(1, T)` for signals.
    pub fn transform_shape(&self) -> (usize, usize) {
        match (self.images, self.sample_shape.as_slice()) {
            (true, [h, w]) | (true, [_, h, w]) => (*h, *w),
            _ => (1, self.signal_shape().1),
        }
    }

    /// Channels entering the lifting stage: the polar radii, or the
    /// samples' own channels.
    pub fn lift_in_channels(&self) -> usize {
        match (&self.polar, self.images, self.sample_shape.as_slice()) {
            (Some(p), _, _) => p.radii,
            (None, true, [c, _, _]) | (None, false, [c, _]) => *c,
            _ => 1,
        }
    }

    /// Number of lifting parameters (kernel entries), None on overflow.
    pub fn lift_params(&self) -> Option<usize> {
        let Some(l) = &self.lift else { return Some(0) };
        let c_in = self.lift_in_channels();
        let taps = if self.images {
            l.kernel_size.checked_mul(l.kernel_size)?
        } else {
            l.kernel_size
        };
        l.out_channels.checked_mul(c_in)?.checked_mul(taps)
    }
}

impl FrontEnd {
    /// The front end `config` describes, on `device`.
    pub fn new(config: &FrontEndConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        redunet_data::memory::check(
            config.table_bytes(),
            "the front end's polar tables and lifting kernels",
            "lower polar.radii, polar.angles, lift.out_channels or lift.kernel_size",
        )?;
        let s = config.sample_shape.as_slice();
        let polar = match (&config.polar, s) {
            (Some(p), [h, w]) => Some(Polar::new(*h, *w, p.radii, p.angles, device)),
            _ => None,
        };
        let image = match (config.images, s) {
            (true, [h, w]) | (true, [_, h, w]) => Some((*h, *w)),
            _ => None,
        };
        let c_in = config.lift_in_channels();
        let lift = config.lift.as_ref().map(|l| match image {
            Some(_) => Lifting::TwoD(Lift2d::random(
                l.out_channels,
                c_in,
                l.kernel_size,
                l.seed,
                device,
            )),
            None => Lifting::OneD(Lift1d::random(
                l.out_channels,
                c_in,
                l.kernel_size,
                l.seed,
                device,
            )),
        });
        Ok(Self {
            config: config.clone(),
            polar,
            image,
            lift,
        })
    }

    /// What the front end was built from (what a saved model stores).
    pub fn config(&self) -> &FrontEndConfig {
        &self.config
    }

    /// `(H, W)` when images are kept as images (2D networks).
    pub fn image(&self) -> Option<(usize, usize)> {
        self.image
    }

    /// Flattened samples `[m, n]` to signals `[m, C, T]` before lifting.
    pub fn signals(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        let [m, n] = x.dims();
        let want: usize = self.config.sample_shape.iter().product();
        if n != want {
            return Err(Error::Shape(format!(
                "the front end takes samples of shape {:?} ({want} values), got [{m}, {n}]",
                self.config.sample_shape
            )));
        }
        if let Some(p) = &self.polar {
            return Ok(p.apply(x));
        }
        let s = self.config.sample_shape.as_slice();
        Ok(match (self.image, s) {
            (Some((h, w)), [c, _, _]) => x.reshape([m, *c, h * w]),
            (Some((h, w)), _) => x.reshape([m, 1, h * w]),
            (None, [c, t]) => x.reshape([m, *c, *t]),
            (None, _) => x.reshape([m, 1, n]),
        })
    }

    /// The lifting stage (the identity without one).
    pub fn lift(&self, x: Tensor<3>) -> Tensor<3> {
        match &self.lift {
            Some(Lifting::OneD(l)) => l.apply(x),
            Some(Lifting::TwoD(l)) => {
                let [m, c, _] = x.dims();
                let (h, w) = self.image.expect("2D lifting works on images");
                let y = l.apply(x.reshape([m, c, h, w]));
                let [_, c2, _, _] = y.dims();
                y.reshape([m, c2, h * w])
            }
            None => x,
        }
    }

    /// The same front end with its lifting kernels multiplied by `factor`
    /// (the identity without lifting). ReLU and the normalisation after the
    /// front end are positively homogeneous, so a network's features do not
    /// change; a trainer uses it to give the kernels the scale of an
    /// ordinary CNN's weights, at which Adam moves them at the same relative
    /// speed as the layers.
    pub fn with_lift_scale(mut self, factor: f32) -> Self {
        use burn::module::Param;
        // Rebuilt from data: a fresh leaf on autodiff devices too (the
        // product of a tracked parameter cannot become one).
        fn scaled<const D: usize>(p: Param<Tensor<D>>, factor: f32) -> Param<Tensor<D>> {
            let k = p.val();
            let device = k.device();
            Param::from_tensor(Tensor::from_data(k.mul_scalar(factor).into_data(), &device))
        }
        self.lift = self.lift.map(|l| match l {
            Lifting::OneD(l) => Lifting::OneD(Lift1d {
                kernels: scaled(l.kernels, factor),
            }),
            Lifting::TwoD(l) => Lifting::TwoD(Lift2d {
                kernels: scaled(l.kernels, factor),
            }),
        });
        self
    }

    /// `k·√C_in` of the lifting stage: the square root of a kernel's fan-in
    /// for 2D kernels, `√(k·C_in)·√k` for 1D ones (None without lifting).
    pub fn lift_fan(&self) -> Option<f32> {
        let l = self.config.lift.as_ref()?;
        let c_in = self.config.lift_in_channels();
        Some(l.kernel_size as f32 * (c_in as f32).sqrt())
    }

    /// `(C, T)` of the signals the front end makes.
    pub fn signal_shape(&self) -> (usize, usize) {
        self.config.signal_shape()
    }

    /// Values of one raw sample it takes (the product of its shape).
    pub fn sample_len(&self) -> usize {
        self.config.sample_shape.iter().product()
    }

    /// Values of one sample's signals, `C·T` (`C·H·W` for images).
    pub fn signal_len(&self) -> usize {
        let (c, t) = self.signal_shape();
        c * t
    }

    /// Both stages: flattened samples `[m, n]` to the network's input.
    pub fn apply(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        Ok(self.lift(self.signals(x)?))
    }

    /// The signals shifted by one element of the "all shifts" grid: a cyclic
    /// shift in 1D, a translation (dy, dx) of images in 2D.
    pub fn shifted(&self, x: &Tensor<3>, shift: (i64, i64)) -> Tensor<3> {
        match self.image {
            Some((h, w)) => {
                let [m, c, _] = x.dims();
                translate(x.clone().reshape([m, c, h, w]), shift.0, shift.1).reshape([m, c, h * w])
            }
            None => cyclic_shift(x.clone(), shift.1),
        }
    }

    /// The grid of shifts evaluated as "all shifts", for signals of length
    /// `len` (images: both axes).
    pub fn grid(&self, len: usize, stride: usize) -> Vec<(i64, i64)> {
        match self.image {
            Some((h, w)) => stride_grid(h, stride)
                .into_iter()
                .flat_map(|dy| stride_grid(w, stride).into_iter().map(move |dx| (dy, dx)))
                .collect(),
            None => stride_grid(len, stride)
                .into_iter()
                .map(|s| (0, s))
                .collect(),
        }
    }
}
