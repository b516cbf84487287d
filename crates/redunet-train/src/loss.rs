//! MCR² as a Burn loss: `−ΔR(Z, Π)` of a feature batch, shaped like
//! burn-nn's losses (`Mcr2LossConfig::new().init()`, then
//! `loss.forward(features, targets)`).
//!
//! ```text
//! −ΔR = R_c − R,  R = ½ logdet(I + α ZᵀZ),  R_c = Σ_j γ_j/2 · logdet(I + α_j Zᵀ diag(π_j) Z)
//! α = d/(m ε²),  α_j = d/(m_j ε²),  γ_j = m_j/m
//! ```
//!
//! The log-determinants are evaluated exactly, on detached tensors, by the
//! batched Cholesky routine of `redunet-core` (which works in f64 on small
//! blocks and has no autodiff rule). The gradient comes from a surrogate
//! with the same first derivative: with `M = (I + aG)⁻¹` held constant,
//! `½ tr(M (I + aG))` has derivative `a X M` in `X` for `G = XᵀX` (and
//! `a M X` for `G = XXᵀ`), which is exactly the derivative of
//! `½ logdet(I + aG)`. The loss is `value + (surrogate − detached surrogate)`:
//! its value is ΔR's and its gradient the closed form `Z E − Σ_j γ_j Π_j Z C_j`.
//! Each Gram matrix is formed on the smaller side, `min(m, d)`.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use redunet_core::linalg::spd_inverse_logdet_trusted;
use redunet_core::rates::{ClassGroup, class_groups, identity_plus_grams};
use redunet_core::{Error, Memberships, Rates};
// Not `Result`: Burn's `Config` derive expands to code that names it.
type Res<T> = redunet_core::Result<T>;

/// Configuration of [`Mcr2Loss`].
///
/// ```
/// use redunet_train::{Mcr2LossConfig, redunet_core::burn::tensor::{Device, Int, Tensor}};
/// let device = Device::default().autodiff();
/// let loss = Mcr2LossConfig::new().with_eps_sq(0.5).init();
/// let z = Tensor::<2>::from_floats([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], &device)
///     .require_grad();
/// let y = Tensor::<1, Int>::from_ints([0, 0, 1, 1], &device);
/// let l = loss.forward(z.clone(), y);
/// let g = z.grad(&l.backward()).unwrap();
/// assert_eq!(g.dims(), [4, 2]);
/// ```
#[derive(Config, Debug)]
pub struct Mcr2LossConfig {
    /// ε², the squared precision of the coding rates (the MCR² papers use
    /// 0.5 for learned features).
    #[config(default = 0.5)]
    pub eps_sq: f64,
    /// Number of classes k of the targets; `None`: one more than the largest
    /// target of each batch (a class absent from a batch contributes
    /// nothing either way).
    #[config(default = "None")]
    pub num_classes: Option<usize>,
}

impl Mcr2LossConfig {
    /// Checks the settings: ε² finite and positive, k ≥ 1.
    pub fn validate(&self) -> Res<()> {
        if !(self.eps_sq.is_finite() && self.eps_sq > 0.0) {
            return Err(Error::Parameter(format!(
                "eps_sq must be finite and positive, got {}",
                self.eps_sq
            )));
        }
        if self.num_classes == Some(0) {
            return Err(Error::Parameter("num_classes must be at least 1".into()));
        }
        Ok(())
    }

    /// The loss, or the reason the settings are invalid.
    pub fn try_init(&self) -> Res<Mcr2Loss> {
        self.validate()?;
        Ok(Mcr2Loss {
            eps_sq: self.eps_sq,
            num_classes: self.num_classes,
        })
    }

    /// The loss. Panics on invalid settings, as burn-nn's `init`s do; use
    /// [`Self::try_init`] for a typed error.
    pub fn init(&self) -> Mcr2Loss {
        self.try_init()
            .unwrap_or_else(|e| panic!("Mcr2LossConfig: {e}"))
    }
}

/// The MCR² loss `−ΔR`, built by [`Mcr2LossConfig`].
///
/// [`Self::forward`], [`Self::forward_soft`] and [`Self::forward_rates`]
/// follow burn-nn and panic on invalid input (a label out of range, NaN
/// features); [`Self::try_forward`] returns the same as a typed error.
#[derive(Module, Debug)]
pub struct Mcr2Loss {
    /// ε².
    pub eps_sq: f64,
    /// k, or `None` to take it from each batch's targets.
    pub num_classes: Option<usize>,
}

/// The loss with the rates it is made of, for logging.
#[derive(Debug, Clone)]
pub struct Mcr2Output {
    /// `−ΔR` as a one-element tensor on the features' device.
    pub loss: Tensor<1>,
    /// R, R_c and ΔR of the batch (nats).
    pub rates: Rates,
}

impl Mcr2Loss {
    /// `−ΔR` of `features` under hard labels `targets`.
    ///
    /// # Shapes
    /// - features: `[m, d]` (rows are samples; normalise them first as the
    ///   papers do)
    /// - targets: `[m]`, labels in `0..k`
    /// - output: `[1]`
    pub fn forward(&self, features: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        self.forward_rates(features, targets).loss
    }

    /// `−ΔR` under soft memberships (rows on the simplex; no gradient flows
    /// into them).
    ///
    /// # Shapes
    /// - features: `[m, d]`
    /// - memberships: `[m, k]`
    /// - output: `[1]`
    pub fn forward_soft(&self, features: Tensor<2>, memberships: Tensor<2>) -> Tensor<1> {
        let pi = Memberships::soft(memberships.detach())
            .unwrap_or_else(|e| panic!("Mcr2Loss memberships: {e}"));
        self.try_forward(&features, &pi)
            .unwrap_or_else(|e| panic!("Mcr2Loss: {e}"))
            .loss
    }

    /// [`Self::forward`], also returning R, R_c and ΔR.
    pub fn forward_rates(&self, features: Tensor<2>, targets: Tensor<1, Int>) -> Mcr2Output {
        let pi = Memberships::from_targets(targets, self.num_classes)
            .unwrap_or_else(|e| panic!("Mcr2Loss targets: {e}"));
        self.try_forward(&features, &pi)
            .unwrap_or_else(|e| panic!("Mcr2Loss: {e}"))
    }

    /// The loss and rates of `features` under validated memberships (hard or
    /// soft; see [`Memberships::from_targets`] and [`Memberships::soft`]),
    /// or a typed error: shapes that do not match, NaN/Inf features.
    pub fn try_forward(&self, features: &Tensor<2>, pi: &Memberships) -> Res<Mcr2Output> {
        let z = features;
        let [m, d] = z.dims();
        if m == 0 || d == 0 {
            return Err(Error::Empty(format!("features of shape [{m}, {d}]")));
        }
        if pi.num_samples() != m {
            return Err(Error::LabelCount {
                expected: m,
                got: pi.num_samples(),
            });
        }
        if let Some(k) = self.num_classes
            && pi.num_classes() != k
        {
            return Err(Error::Shape(format!(
                "memberships of {} classes for a loss of {k}",
                pi.num_classes()
            )));
        }
        let eps_sq = self.eps_sq;
        let alpha = d as f64 / (m as f64 * eps_sq);
        // Finite features make every I + aG positive definite, so a failed
        // pivot can only mean NaN or Inf in the features: no separate scan
        // (a device read) is needed.
        let non_finite = |e: Error| match e {
            Error::NotPositiveDefinite { .. } => Error::NonFinite("features".into()),
            e => e,
        };
        let (mut terms, r) = half_logdets(vec![z.clone()], &[alpha]).map_err(non_finite)?;
        let mut loss = terms.remove(0).neg();
        let mut r_c = 0.0;
        for ClassGroup {
            rows,
            alphas,
            gammas,
        } in class_groups(z, pi, eps_sq)
        {
            let (terms, values) = half_logdets(rows, &alphas).map_err(non_finite)?;
            for ((term, v), g) in terms.into_iter().zip(values).zip(gammas) {
                loss = loss + term.mul_scalar(g);
                r_c += g * v;
            }
        }
        Ok(Mcr2Output {
            loss,
            rates: Rates::new(r[0], r_c),
        })
    }
}

/// `½ logdet(I + a XᵀX)` of each `X` as a loss term (exact value, gradient
/// by the surrogate) and as a number. All `X` must have the same shape.
fn half_logdets(xs: Vec<Tensor<2>>, scales: &[f64]) -> Res<(Vec<Tensor<1>>, Vec<f64>)> {
    let device = xs[0].device();
    let mats = identity_plus_grams(xs, scales);
    let [b, n, _] = mats.dims();
    let (inv, logdets) = spd_inverse_logdet_trusted(mats.clone().detach())?;
    let halves: Vec<f64> = logdets.iter().map(|l| 0.5 * l).collect();
    let terms = (0..b)
        .map(|i| {
            let a = mats.clone().slice([i..i + 1, 0..n, 0..n]).reshape([n, n]);
            let m_inv = inv
                .clone()
                .slice([i..i + 1, 0..n, 0..n])
                .reshape([n, n])
                .detach();
            // tr(M A) as Σ M ⊙ A (both symmetric).
            let surrogate = (m_inv * a).sum().mul_scalar(0.5);
            let value =
                Tensor::<1>::from_data(TensorData::new(vec![halves[i] as f32], [1]), &device);
            value + surrogate.clone() - surrogate.detach()
        })
        .collect();
    Ok((terms, halves))
}
