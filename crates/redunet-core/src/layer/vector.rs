//! The vector ReduNet layer (Algorithm 1 of the ReduNet paper).
//!
//! From the layer's input `Z: [m, d]` and memberships Π the layer builds the
//! expansion and compression operators
//!
//! ```text
//! E   = α   (I + α   ZᵀZ)⁻¹,              α   = d / (m ε²)
//! C_j = α_j (I + α_j Zᵀ diag(π_j) Z)⁻¹,   α_j = d / (m_j ε²),  γ_j = m_j / m
//! ```
//!
//! and moves every sample `z` (a row) along the gradient of ΔR:
//!
//! ```text
//! g(z) = E z − Σ_j γ_j π̂_j(z) C_j z,     z ← (z + η g(z)) / ‖z + η g(z)‖
//! ```
//!
//! where `π̂_j(z)` is either the true membership (mode [`MembershipMode::Labels`])
//! or the soft estimate `softmax_j(−λ ‖C_j z‖)` (mode [`MembershipMode::Soft`],
//! the only choice for unlabelled data, and what the official code also uses
//! on the training samples during construction). E and C_j are symmetric, so
//! `E z` for all rows is the product `Z E`.

pub use crate::config::{MembershipMode, VectorLayerConfig};
use crate::host::{indices, tensor, to_vec};
use crate::layer::moments::SecondMoments;
use crate::linalg::spd_inverse_logdet_trusted;
use crate::membership::Scales;
use crate::rates::{Rates, check_features};
use crate::{Error, Memberships, Result};
use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, IndexingUpdateOp, Tensor};

/// Rows per block of the soft forward pass.
const FORWARD_BLOCK: usize = 512;

/// One vector ReduNet layer: E, the C_j of the classes that had members,
/// and their γ_j — a Burn module whose parameters are the operators, so the
/// layer constructed forward is the layer fine-tuned by back-propagation.
#[derive(Module, Debug)]
pub struct VectorLayer {
    /// The expansion operator E `[d, d]`.
    e: Param<Tensor<2>>,
    /// `[d, k' d]`: the C_j side by side, so that one matrix product gives
    /// every `Z C_j` at once, already laid out as `[m, k', d]`.
    c_cat: Param<Tensor<2>>,
    #[module(skip)]
    gamma: Vec<f64>,
    /// Original class index of each stored C_j (classes with members).
    #[module(skip)]
    classes: Vec<usize>,
    #[module(skip)]
    num_classes: usize,
    #[module(skip)]
    config: VectorLayerConfig,
}

impl VectorLayer {
    /// Builds E, C_j and γ from the layer input `z: [m, d]` and memberships.
    /// Also returns R, R_c and ΔR of `z` under `pi`, which fall out of the
    /// same factorisations.
    pub fn construct(
        z: &Tensor<2>,
        pi: &Memberships,
        config: &VectorLayerConfig,
    ) -> Result<(Self, Rates)> {
        config.validate()?;
        check_features(z, config.eps_sq)?;
        Self::construct_trusted(z, pi, config)
    }

    /// [`Self::construct`] on features already known to be finite (the
    /// network checks its input once, and every layer's output is
    /// normalised).
    pub(crate) fn construct_trusted(
        z: &Tensor<2>,
        pi: &Memberships,
        config: &VectorLayerConfig,
    ) -> Result<(Self, Rates)> {
        // All samples at once are one batch of moments.
        let mut moments = SecondMoments::new(z.dims()[1], pi.num_classes());
        moments.add(z, pi)?;
        moments.layer(config)
    }

    /// The layer of second moments `gram = ZᵀZ` `[1, d, d]` and
    /// `class_grams = Zᵀ diag(π_j) Z` `[k', d, d]` (the classes of
    /// `scales`, in order): `I + a·M` for every moment, factored once as a
    /// batch, gives the operators and the rates of `Z`. Whether the moments
    /// came from all samples at once or were summed over batches, the layer
    /// is the same.
    pub fn from_moments(
        gram: Tensor<3>,
        class_grams: Tensor<3>,
        scales: Scales,
        num_classes: usize,
        config: &VectorLayerConfig,
    ) -> Result<(Self, Rates)> {
        let [_, d, _] = gram.dims();
        let device = gram.device();
        let Scales {
            alpha,
            classes,
            alphas,
            gammas: gamma,
        } = scales;
        let mut scales = vec![alpha];
        scales.extend_from_slice(&alphas);
        let scale_t = tensor(
            scales.iter().map(|&a| a as f32).collect(),
            [scales.len(), 1, 1],
            &device,
        );
        let eye = Tensor::<2>::eye(d, &device).unsqueeze_dim::<3>(0);
        let batch = eye + Tensor::cat(vec![gram, class_grams], 0) * scale_t.clone();
        let (inv, logdets) = spd_inverse_logdet_trusted(batch)?;
        let ops = inv * scale_t; // [k'+1, d, d]: E, C_1, …
        let k = classes.len();
        let e = ops.clone().slice([0..1, 0..d, 0..d]).reshape([d, d]);
        let c_cat = ops
            .slice([1..k + 1, 0..d, 0..d])
            .swap_dims(0, 1)
            .reshape([d, k * d]);

        let rates = rates_of(&logdets, &gamma);
        Ok((
            Self::from_operators(e, c_cat, gamma, classes, num_classes, *config),
            rates,
        ))
    }

    /// The layer of operators already laid out: E `[d, d]` and
    /// `[C_1 | … ]` `[d, k' d]`.
    pub(crate) fn from_operators(
        e: Tensor<2>,
        c_cat: Tensor<2>,
        gamma: Vec<f64>,
        classes: Vec<usize>,
        num_classes: usize,
        config: VectorLayerConfig,
    ) -> Self {
        // Construction is not differentiated through: on an autodiff device
        // the operators become fresh leaves (a layer built from a tracked
        // input, such as the previous layer's output, would otherwise hold
        // parameters Burn refuses to track).
        Self {
            e: Param::from_tensor(e.detach()),
            c_cat: Param::from_tensor(c_cat.detach()),
            gamma,
            classes,
            num_classes,
            config,
        }
    }

    /// Reassembles a layer from its parts (used when loading a saved model).
    pub fn from_parts(
        e: Tensor<2>,
        c: Tensor<3>,
        gamma: Vec<f64>,
        classes: Vec<usize>,
        num_classes: usize,
        config: VectorLayerConfig,
    ) -> Result<Self> {
        config.validate()?;
        let [d, d2] = e.dims();
        let [k, cd, cd2] = c.dims();
        if d != d2 || cd != d || cd2 != d || k != gamma.len() || k != classes.len() {
            return Err(Error::Shape(format!(
                "E {:?}, C {:?}, {} γ, {} classes do not fit together",
                e.dims(),
                c.dims(),
                gamma.len(),
                classes.len()
            )));
        }
        if classes.iter().any(|&j| j >= num_classes) {
            return Err(Error::Parameter(format!(
                "class list {classes:?} exceeds {num_classes} classes"
            )));
        }
        let c_cat = c.swap_dims(0, 1).reshape([d, k * d]);
        Ok(Self::from_operators(
            e,
            c_cat,
            gamma,
            classes,
            num_classes,
            config,
        ))
    }

    /// The layer's settings (η, ε², λ, membership mode).
    pub fn config(&self) -> &VectorLayerConfig {
        &self.config
    }

    /// Feature dimension d.
    pub fn dim(&self) -> usize {
        self.e.dims()[0]
    }

    /// Number of classes k the layer was built for (some may be empty).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The classes that had members, in the order of [`Self::c`].
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// γ_j of the classes in [`Self::classes`].
    pub fn gamma(&self) -> &[f64] {
        &self.gamma
    }

    /// The expansion operator E `[d, d]`.
    pub fn e(&self) -> Tensor<2> {
        self.e.val()
    }

    /// The compression operators C_j `[k', d, d]` of the classes with members.
    pub fn c(&self) -> Tensor<3> {
        let d = self.dim();
        let k = self.classes.len();
        self.c_cat.val().reshape([d, k, d]).swap_dims(0, 1)
    }

    fn check_input(&self, z: &Tensor<2>) -> Result<()> {
        let [m, d] = z.dims();
        if d != self.dim() {
            return Err(Error::Shape(format!(
                "layer expects features of dimension {}, got [{m}, {d}]",
                self.dim()
            )));
        }
        if m == 0 {
            return Err(Error::Empty("no samples".into()));
        }
        crate::host::check_finite(z, "layer input")
    }

    /// `Z E`: the expansion term for every row.
    pub fn expansion(&self, z: &Tensor<2>) -> Tensor<2> {
        z.clone().matmul(self.e())
    }

    /// Π restricted to the classes this layer stores, `[m, k']`.
    pub fn restrict(&self, pi: &Memberships) -> Result<Tensor<2>> {
        if pi.num_classes() != self.num_classes {
            return Err(Error::Shape(format!(
                "memberships have {} classes, the layer {}",
                pi.num_classes(),
                self.num_classes
            )));
        }
        Ok(pi
            .pi()
            .clone()
            .select(1, indices(&self.classes, &pi.pi().device())))
    }

    fn gamma_row(&self, device: &Device) -> Tensor<2> {
        let k = self.gamma.len();
        tensor(
            self.gamma.iter().map(|&g| g as f32).collect(),
            [1, k],
            device,
        )
    }

    /// `Σ_j γ_j w_ij C_j z_i` for every row, with weights `w: [m, k']`.
    /// With hard `labels` only each row's own class is multiplied.
    pub fn compression(&self, z: &Tensor<2>, w: &Tensor<2>, labels: Option<&[usize]>) -> Tensor<2> {
        let [m, d] = z.dims();
        let device = z.device();
        if let Some(labels) = labels {
            let c = self.c();
            let mut out = Tensor::<2>::zeros([m, d], &device);
            for (slot, (&j, &g)) in self.classes.iter().zip(&self.gamma).enumerate() {
                let rows: Vec<usize> = (0..m).filter(|&i| labels[i] == j).collect();
                if rows.is_empty() {
                    continue;
                }
                let idx = indices(&rows, &device);
                let cj = c
                    .clone()
                    .slice([slot..slot + 1, 0..d, 0..d])
                    .reshape([d, d]);
                let part = z.clone().select(0, idx.clone()).matmul(cj).mul_scalar(g);
                out = out.select_assign(0, idx, part, IndexingUpdateOp::Add);
            }
            return out;
        }
        let k = self.classes.len();
        let comp = z.clone().matmul(self.c_cat.val()).reshape([m, k, d]);
        let weights = w.clone() * self.gamma_row(&device);
        (comp * weights.unsqueeze_dim(2)).sum_dim(1).reshape([m, d])
    }

    /// The soft membership estimate `softmax_j(−λ ‖C_j z‖)` over all k
    /// classes (`[m, k]`; a class without members gets 0).
    pub fn soft_membership(&self, z: &Tensor<2>) -> Result<Tensor<2>> {
        self.check_input(z)?;
        let [m, _] = z.dims();
        let (_, comp) = self.project(z);
        let pihat = self.estimate(&comp);
        if self.classes.len() == self.num_classes {
            return Ok(pihat);
        }
        let idx = indices(&self.classes, &z.device());
        Ok(
            Tensor::<2>::zeros([m, self.num_classes], &z.device()).select_assign(
                1,
                idx,
                pihat,
                IndexingUpdateOp::Assign,
            ),
        )
    }

    /// `Z E` and `Z C_j` for all j from one matrix product: `([m, d], [m, k', d])`.
    fn project(&self, z: &Tensor<2>) -> (Tensor<2>, Tensor<3>) {
        let [m, d] = z.dims();
        let k = self.classes.len();
        let expd = z.clone().matmul(self.e.val());
        let comp = z.clone().matmul(self.c_cat.val()).reshape([m, k, d]);
        (expd, comp)
    }

    /// softmax(−λ ‖C_j z‖) over the stored classes, norms clamped at 1e-8 as
    /// in the reference code.
    fn estimate(&self, comp: &Tensor<3>) -> Tensor<2> {
        let [m, k, _] = comp.dims();
        let norms = comp
            .clone()
            .powi_scalar(2)
            .sum_dim(2)
            .sqrt()
            .clamp_min(1e-8)
            .reshape([m, k]);
        softmax(norms.mul_scalar(-self.config.lambda), 1)
    }

    /// Applies the layer to unlabelled data (soft membership), normalising
    /// each output row.
    pub fn forward(&self, z: &Tensor<2>) -> Result<Tensor<2>> {
        self.check_input(z)?;
        Ok(self.forward_trusted(z))
    }

    /// [`Self::forward`] on input already checked for shape and finiteness
    /// (plain tensor operations, so gradients flow through it on autodiff
    /// devices: the forward pass of trainable networks).
    pub fn forward_trusted(&self, z: &Tensor<2>) -> Tensor<2> {
        if crate::cpu::on_host(&z.device())
            && crate::cpu::on_host(&self.e.val().device())
            && let Ok(out) = self.forward_host(z)
        {
            return out;
        }
        let [m, d] = z.dims();
        // Row blocks keep the [rows, k+1, d] intermediate small enough to
        // stay in cache between the product and the element-wise passes.
        let parts: Vec<Tensor<2>> = (0..m)
            .step_by(FORWARD_BLOCK)
            .map(|start| {
                let rows = z
                    .clone()
                    .slice([start..(start + FORWARD_BLOCK).min(m), 0..d]);
                self.forward_block(rows)
            })
            .collect();
        if parts.len() == 1 {
            parts.into_iter().next().expect("one block")
        } else {
            Tensor::cat(parts, 0)
        }
    }

    /// The soft step fused on the host ([`crate::cpu::step`]).
    fn forward_host(&self, z: &Tensor<2>) -> Result<Tensor<2>> {
        let [m, d] = z.dims();
        let (e, c_cat) = (to_vec(self.e.val())?, to_vec(self.c_cat.val())?);
        let step = crate::cpu::step::SoftStep {
            e: &e,
            c_cat: &c_cat,
            gamma: &self.gamma,
            eta: self.config.eta,
            lambda: self.config.lambda,
        };
        let mut values = to_vec(z.clone())?;
        step.apply_in_place(&mut values, m, d, &mut Vec::new());
        Ok(tensor(values, [m, d], &z.device()))
    }

    fn forward_block(&self, z: Tensor<2>) -> Tensor<2> {
        let [m, d] = z.dims();
        let k = self.classes.len();
        let (expd, comp) = self.project(&z);
        let weights = self.estimate(&comp) * self.gamma_row(&z.device());
        // Σ_j w_ij C_j z_i as a batch of [1, k] @ [k, d] products: one read of
        // the C_j z_i, no second [m, k, d] temporary.
        let clus = weights.reshape([m, 1, k]).matmul(comp).reshape([m, d]);
        self.step(&z, expd - clus)
    }

    /// Applies the layer to its labelled training samples with the layer's
    /// [`MembershipMode`]: the true memberships, or the soft estimate.
    pub fn forward_train(&self, z: &Tensor<2>, pi: &Memberships) -> Result<Tensor<2>> {
        self.check_input(z)?;
        self.forward_train_trusted(z, pi)
    }

    pub(crate) fn forward_train_trusted(
        &self,
        z: &Tensor<2>,
        pi: &Memberships,
    ) -> Result<Tensor<2>> {
        match self.config.membership {
            MembershipMode::Soft => Ok(self.forward_trusted(z)),
            MembershipMode::Labels => {
                pi.check_samples(z.dims()[0])?;
                let w = self.restrict(pi)?;
                let g = self.expansion(z) - self.compression(z, &w, pi.labels());
                Ok(self.step(z, g))
            }
        }
    }

    /// `normalize(z + η g)`, per row.
    fn step(&self, z: &Tensor<2>, g: Tensor<2>) -> Tensor<2> {
        normalize_rows(z.clone() + g.mul_scalar(self.config.eta))
    }
}

/// R = ½ logdet(I + α ZᵀZ) and R_c = Σ_j γ_j/2 · logdet(I + α_j …) from
/// the log-determinants `[E's, C_1's, …]` of a layer's factorisation.
pub(crate) fn rates_of(logdets: &[f64], gamma: &[f64]) -> Rates {
    let r_c = gamma
        .iter()
        .zip(&logdets[1..])
        .map(|(g, l)| 0.5 * g * l)
        .sum();
    Rates::new(0.5 * logdets[0], r_c)
}

/// Scales every row to unit ℓ2 norm (norms clamped at 1e-8).
pub fn normalize_rows(z: Tensor<2>) -> Tensor<2> {
    let norms = z.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-8);
    z / norms
}

/// Divides each row of `z` whose squared norm f32 cannot hold — it
/// overflows past |x| ≈ 1e19, or is lost to flushed subnormals below
/// ≈ 1e-15 — by its largest magnitude, so that the normalisation that
/// follows gives the direction 1e20·x and 1e-20·x share with x. Every other
/// row is divided by exactly 1: unchanged, bit for bit.
pub fn rescale_extreme_rows(z: Tensor<2>) -> Tensor<2> {
    let [m, _] = z.dims();
    let sq = z.clone().powi_scalar(2).sum_dim(1);
    let extreme = sq
        .clone()
        .is_finite()
        .bool_not()
        .bool_or(sq.lower_elem(1e-30));
    let largest = z.clone().max_abs_dim(1).clamp_min(f32::MIN_POSITIVE);
    let divisor = Tensor::<2>::ones([m, 1], &z.device()).mask_where(extreme, largest);
    z / divisor
}

/// [`normalize_rows`] of samples as they come from outside (scale-safe).
pub fn normalize_input_rows(z: Tensor<2>) -> Tensor<2> {
    normalize_rows(rescale_extreme_rows(z))
}

/// [`normalize_input_rows`] of `z` read back to the host, bit for bit, for
/// the common case of rows with nothing extreme: their squared norms come
/// from the same tensor reduction both steps use, their clamped square
/// roots are taken on the host, and one division pass over the samples
/// replaces the tensor path's seven (IEEE division and square root are
/// correctly rounded, so the bits are the same). Finite squared norms imply finite
/// values, so this also stands for [`crate::host::check_finite`]. `None`
/// where any row is extreme or not finite: the caller checks and
/// normalises on the tensor path, which tells those cases apart.
pub(crate) fn unit_input_rows(z: &Tensor<2>) -> Result<Option<Vec<f32>>> {
    let [m, _] = z.dims();
    let sq = to_vec(z.clone().powi_scalar(2).sum_dim(1))?;
    if sq.iter().any(|&s| !s.is_finite() || s < 1e-30) {
        return Ok(None);
    }
    // The division by the clamped norms (made on the host, as the tensor
    // path makes them) is one device pass on every core into a buffer of
    // its own. Reading the shared `z` back to divide it on the host would
    // first copy it on one core into fresh memory: 11–15 ms instead of
    // about 1.3 at 5000 × 784.
    let norms: Vec<f32> = sq.iter().map(|s| s.sqrt().max(1e-8)).collect();
    to_vec(z.clone() / crate::host::tensor(norms, [m, 1], &z.device())).map(Some)
}

/// The checks of [`check_features`] and [`normalize_input_rows`] with the
/// rows read back to the host: [`unit_input_rows`] where it applies, else
/// the tensor path, which tells extreme rows from non-finite values.
pub(crate) fn checked_unit_input_rows(z: &Tensor<2>, eps_sq: f64) -> Result<Vec<f32>> {
    crate::rates::check_shape_and_eps(z, eps_sq)?;
    if let Some(values) = unit_input_rows(z)? {
        return Ok(values);
    }
    check_features(z, eps_sq)?;
    to_vec(normalize_input_rows(z.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rows_on_the_host_are_the_tensor_normalisation_bit_for_bit() {
        let device = Device::default();
        let (m, d) = (37, 29);
        let mut values = crate::host::normals(m * d, 5);
        // Rows across the norm clamp's and the 1e-30 bar's neighbourhoods.
        values[..d].iter_mut().for_each(|v| *v *= 1e-9);
        values[d..2 * d].iter_mut().for_each(|v| *v *= 1e-14);
        values[2 * d..3 * d].iter_mut().for_each(|v| *v *= 3e8);
        let z = tensor(values.clone(), [m, d], &device);
        let host = unit_input_rows(&z).unwrap().expect("no extreme row");
        let want = to_vec(normalize_input_rows(z)).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&host), bits(&want));
        // Extreme or non-finite rows are left to the tensor path.
        for (row, bad) in [(4, 1e20f32), (5, 1e-20), (6, f32::NAN), (7, 0.0)] {
            let mut v = values.clone();
            v[row * d..(row + 1) * d].iter_mut().for_each(|x| *x *= bad);
            let z = tensor(v, [m, d], &device);
            assert!(unit_input_rows(&z).unwrap().is_none(), "row × {bad}");
        }
    }

    #[test]
    fn checked_unit_rows_fall_back_to_the_tensor_path_and_its_errors() {
        let device = Device::default();
        let (m, d) = (6, 5);
        let values = crate::host::normals(m * d, 7);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // An extreme row: the tensor path's rescaled normalisation.
        let mut v = values.clone();
        v[..d].iter_mut().for_each(|x| *x *= 1e25);
        let z = tensor(v, [m, d], &device);
        let got = checked_unit_input_rows(&z, 0.5).unwrap();
        assert_eq!(bits(&got), bits(&to_vec(normalize_input_rows(z)).unwrap()));
        let mut v = values.clone();
        v[7] = f32::NAN;
        assert!(matches!(
            checked_unit_input_rows(&tensor(v, [m, d], &device), 0.5),
            Err(Error::NonFinite(_))
        ));
        let z = tensor(values, [m, d], &device);
        assert!(matches!(
            checked_unit_input_rows(&z, 0.0),
            Err(Error::Parameter(_))
        ));
        assert!(matches!(
            checked_unit_input_rows(&Tensor::<2>::zeros([0, d], &device), 0.5),
            Err(Error::Empty(_))
        ));
    }
}
