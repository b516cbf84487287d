//! Classifiers on learned features, as the ReduNet papers evaluate them.
//!
//! - kNN: k nearest training samples by cosine similarity, majority vote
//!   (ties go to the smallest label, as `torch.mode` in the reference code).
//! - Nearest subspace: per class, the span U_j of the top `n_comp` right
//!   singular vectors of that class's training features; predict
//!   `argmin_j ‖(I − U_j U_jᵀ) z‖`.

use crate::cpu::neighbours::{TopK, nearest, nearest_among};
use crate::host::{tensor, to_vec};
use crate::layer::vector::normalize_input_rows;
use crate::{Error, Result};
use burn::tensor::Tensor;
use rayon::prelude::*;

fn check_train(train: &Tensor<2>, labels: &[usize]) -> Result<usize> {
    let [m, _] = train.dims();
    if m == 0 {
        return Err(Error::Empty("no training samples".into()));
    }
    if labels.len() != m {
        return Err(Error::LabelCount {
            expected: m,
            got: labels.len(),
        });
    }
    Ok(labels.iter().max().map_or(0, |&l| l + 1))
}

fn check_test(dim: usize, test: &Tensor<2>) -> Result<()> {
    let [_, dt] = test.dims();
    if dim != dt {
        return Err(Error::Shape(format!(
            "train features have dimension {dim}, test {dt}"
        )));
    }
    Ok(())
}

/// kNN fitted to labelled training features: cosine similarity (rows are
/// normalised once, here), majority vote of the `k` nearest. Among equally
/// similar training samples the one of lower index is nearer, so the `k`
/// are always the same ones ([`crate::cpu::neighbours`]).
#[derive(Debug, Clone)]
pub struct Knn {
    train: Rows,
    labels: Vec<usize>,
    classes: usize,
    k: usize,
}

/// The normalised training rows where the search reads them.
#[derive(Debug, Clone)]
enum Rows {
    /// On a CPU device: row-major `[m, d]` in host memory, searched a
    /// tile at a time by [`crate::cpu::neighbours::nearest`].
    Host { values: Vec<f32>, dim: usize },
    /// Elsewhere: transposed `[d, m]` on the device, for its own products.
    Device(Box<Tensor<2>>),
}

impl Knn {
    /// Fits to labelled training features (rows), voting among the `k`
    /// most cosine-similar.
    pub fn fit(train: &Tensor<2>, labels: &[usize], k: usize) -> Result<Self> {
        check_train(train, labels)?;
        Self::fit_normalized(normalized_rows(train)?, labels, k)
    }

    /// [`Self::fit`] on rows already scaled by [`normalized_rows`] (shared
    /// with a [`NearestSubspace`] fitted to the same features).
    pub fn fit_normalized(train: Tensor<2>, labels: &[usize], k: usize) -> Result<Self> {
        let classes = check_train(&train, labels)?;
        if k == 0 {
            return Err(Error::Parameter("k must be at least 1".into()));
        }
        crate::host::check_finite(&train, "kNN training features")?;
        let [_, dim] = train.dims();
        let train = if crate::cpu::on_host(&train.device()) {
            Rows::Host {
                values: to_vec(train)?,
                dim,
            }
        } else {
            Rows::Device(Box::new(train.transpose()))
        };
        Ok(Self {
            train,
            labels: labels.to_vec(),
            classes,
            k: k.min(labels.len()),
        })
    }

    /// The predicted class of each row of `test`.
    pub fn predict(&self, test: &Tensor<2>) -> Result<Vec<usize>> {
        let (m, d) = (self.labels.len(), self.dim());
        check_test(d, test)?;
        crate::host::check_finite(test, "kNN queries")?;
        let [n, _] = test.dims();
        let test = normalized_rows(test)?;
        let vote = |top: &TopK| {
            let mut votes = vec![0usize; self.classes];
            for i in top.indices() {
                votes[self.labels[i]] += 1;
            }
            let best = votes.iter().max().copied().unwrap_or(0);
            votes.iter().position(|&v| v == best).unwrap_or(0)
        };
        match &self.train {
            Rows::Host { values, .. } => {
                let q = to_vec(test)?;
                // The training rows themselves (as a training accuracy asks):
                // each pair's similarity once, for both, is half the work.
                let same = q.len() == values.len()
                    && q.iter()
                        .zip(values)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                let found = if same {
                    nearest_among(values, m, d, self.k)
                } else {
                    nearest(&q, values, n, m, d, self.k)
                };
                Ok(found.iter().map(vote).collect())
            }
            Rows::Device(train_t) => {
                let mut predictions = Vec::with_capacity(n);
                // Similarities in row blocks keep host memory bounded.
                let block = (1 << 22) / m.max(1) + 1;
                for start in (0..n).step_by(block) {
                    let end = (start + block).min(n);
                    let sims = to_vec(
                        test.clone()
                            .slice([start..end, 0..d])
                            .matmul((**train_t).clone()),
                    )?;
                    predictions.par_extend(sims.par_chunks(m).map(|row| {
                        let mut top = TopK::new(self.k);
                        top.scan(row, 0);
                        vote(&top)
                    }));
                }
                Ok(predictions)
            }
        }
    }

    fn dim(&self) -> usize {
        match &self.train {
            Rows::Host { dim, .. } => *dim,
            Rows::Device(t) => t.dims()[0],
        }
    }
}

/// The rows of `x` scaled to unit norm (scale-safe, as
/// [`normalize_input_rows`]), computed in blocks of rows gathered on the
/// host when `x` is large, so that no full-size temporary is formed: each
/// row's result depends on that row only, so the values are the same.
pub fn normalized_rows(x: &Tensor<2>) -> Result<Tensor<2>> {
    const BLOCK_VALUES: usize = 1 << 22;
    let [m, d] = x.dims();
    let block = (BLOCK_VALUES / d.max(1)).max(1);
    if block >= m {
        return Ok(normalize_input_rows(x.clone()));
    }
    let mut out = Vec::with_capacity(m * d);
    for start in (0..m).step_by(block) {
        let end = (start + block).min(m);
        out.extend(to_vec(normalize_input_rows(
            x.clone().slice([start..end, 0..d]),
        ))?);
    }
    Ok(tensor(out, [m, d], &x.device()))
}

/// kNN predictions for `test` rows against labelled `train` rows (fits a
/// [`Knn`] and predicts once).
pub fn knn_predict(
    train: &Tensor<2>,
    labels: &[usize],
    test: &Tensor<2>,
    k: usize,
) -> Result<Vec<usize>> {
    Knn::fit(train, labels, k)?.predict(test)
}

/// The orthonormal bases U_j `[d, n_comp]` of each class's principal
/// subspace (classes without samples get none).
pub fn class_subspaces(
    train: &Tensor<2>,
    labels: &[usize],
    n_comp: usize,
) -> Result<Vec<Option<Tensor<2>>>> {
    let classes = check_train(train, labels)?;
    let [_, d] = train.dims();
    let device = train.device();
    // As the reference: a subspace as large as the space is no test at all.
    let n_comp = n_comp.clamp(1, d.saturating_sub(1).max(1));
    // The classes side by side: each is many small products and host
    // steps, which leave most of the machine idle one class at a time.
    (0..classes)
        .into_par_iter()
        .map(|j| {
            let rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == j).collect();
            if rows.is_empty() {
                return Ok(None);
            }
            let x = train
                .clone()
                .select(0, crate::host::indices(&rows, &device));
            class_basis(x, d, n_comp).map(Some)
        })
        .collect()
}

/// The top `n_comp` right singular vectors of the rows `x: [m_j, d]`, as
/// `[d, n_comp]` (zero columns past the rank of a class of fewer samples).
fn class_basis(x: Tensor<2>, d: usize, n_comp: usize) -> Result<Tensor<2>> {
    let device = x.device();
    let [mj, _] = x.dims();
    Ok(if mj < d {
        // The class spans at most m_j dimensions: work with the small
        // m_j × m_j Gram XXᵀ = U Σ² Uᵀ and map back, V = Xᵀ U Σ⁻¹.
        let r = n_comp.min(mj);
        let (u, sigma) = top_eigenpairs(&x.clone().matmul(x.clone().transpose()), r)?;
        let scaled: Vec<f32> = (0..mj * r)
            .map(|i| {
                let s = sigma[i % r];
                if s > 1e-12 {
                    (u[i] as f64 / s) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let v = x.transpose().matmul(tensor(scaled, [mj, r], &device));
        if r < n_comp {
            // Fewer samples than components: pad with zero columns.
            Tensor::cat(vec![v, Tensor::zeros([d, n_comp - r], &device)], 1)
        } else {
            v
        }
    } else {
        let gram = x.clone().transpose().matmul(x);
        tensor(top_eigenpairs(&gram, n_comp)?.0, [d, n_comp], &device)
    })
}

/// Top `r` eigenvectors of a symmetric PSD matrix `g: [d, d]` (as `[d, r]`
/// row-major) and the square roots of their eigenvalues: exactly by Jacobi
/// rotations up to 64×64, otherwise by block subspace iteration (products on
/// the device, orthonormalisation on the host) and a Rayleigh–Ritz step.
fn top_eigenpairs(g: &Tensor<2>, r: usize) -> Result<(Vec<f32>, Vec<f64>)> {
    let [d, _] = g.dims();
    if d <= 64 {
        let a: Vec<f64> = to_vec(g.clone())?.iter().map(|&x| x as f64).collect();
        let (vals, vecs) = jacobi_eigen(&a, d);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&x, &y| vals[y].total_cmp(&vals[x]));
        let mut basis = vec![0f32; d * r];
        for (c, &o) in order.iter().take(r).enumerate() {
            for i in 0..d {
                basis[i * r + c] = vecs[i * d + o] as f32;
            }
        }
        let sigma = order
            .iter()
            .take(r)
            .map(|&o| vals[o].max(0.0).sqrt())
            .collect();
        return Ok((basis, sigma));
    }
    let device = g.device();
    let q = (2 * r + 4).min(d);
    // A fixed, well-spread start: deterministic results run to run.
    let mut v: Vec<f64> = (0..d * q)
        .map(|i| ((i as f64 + 1.0) * 0.618_033_988_75).fract() - 0.5)
        .collect();
    orthonormalise(&mut v, d, q);
    for _ in 0..60 {
        let vt = tensor(v.iter().map(|&x| x as f32).collect(), [d, q], &device);
        let gv = to_vec(g.clone().matmul(vt))?;
        v = gv.iter().map(|&x| x as f64).collect();
        orthonormalise(&mut v, d, q);
    }
    // Rayleigh–Ritz: H = Vᵀ G V, eigenvectors Y of H, basis V Y.
    let vt = tensor(v.iter().map(|&x| x as f32).collect(), [d, q], &device);
    let h = to_vec(vt.clone().transpose().matmul(g.clone().matmul(vt)))?;
    let h: Vec<f64> = h.iter().map(|&x| x as f64).collect();
    let (vals, vecs) = jacobi_eigen(&h, q);
    let mut order: Vec<usize> = (0..q).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    let mut basis = vec![0f32; d * r];
    for (c, &o) in order.iter().take(r).enumerate() {
        for i in 0..d {
            let s: f64 = (0..q).map(|t| v[i * q + t] * vecs[t * q + o]).sum();
            basis[i * r + c] = s as f32;
        }
    }
    let sigma = order
        .iter()
        .take(r)
        .map(|&o| vals[o].max(0.0).sqrt())
        .collect();
    Ok((basis, sigma))
}

/// Modified Gram–Schmidt on the columns of a row-major `[d, q]` matrix; a
/// column that vanishes is replaced by a unit vector.
fn orthonormalise(v: &mut [f64], d: usize, q: usize) {
    for c in 0..q {
        for p in 0..c {
            let dot: f64 = (0..d).map(|i| v[i * q + c] * v[i * q + p]).sum();
            for i in 0..d {
                v[i * q + c] -= dot * v[i * q + p];
            }
        }
        let norm = (0..d).map(|i| v[i * q + c].powi(2)).sum::<f64>().sqrt();
        if norm > 1e-12 {
            for i in 0..d {
                v[i * q + c] /= norm;
            }
        } else {
            for i in 0..d {
                v[i * q + c] = if i == c % d { 1.0 } else { 0.0 };
            }
        }
    }
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi
/// rotations: eigenvalues and eigenvectors (columns, row-major `[n, n]`).
pub fn jacobi_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        let scale: f64 = (0..n)
            .map(|i| a[i * n + i].powi(2))
            .sum::<f64>()
            .max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// Nearest subspace fitted to labelled training features: per class the
/// span of its top `n_comp` principal directions (of normalised rows).
#[derive(Debug, Clone)]
pub struct NearestSubspace {
    dim: usize,
    subspaces: Vec<Option<Tensor<2>>>,
}

impl NearestSubspace {
    /// Fits each class's top `n_comp` principal directions.
    pub fn fit(train: &Tensor<2>, labels: &[usize], n_comp: usize) -> Result<Self> {
        check_train(train, labels)?;
        Self::fit_normalized(&normalized_rows(train)?, labels, n_comp)
    }

    /// [`Self::fit`] on rows already scaled by [`normalized_rows`].
    pub fn fit_normalized(train: &Tensor<2>, labels: &[usize], n_comp: usize) -> Result<Self> {
        check_train(train, labels)?;
        Ok(Self {
            dim: train.dims()[1],
            subspaces: class_subspaces(train, labels, n_comp)?,
        })
    }

    /// The class of the nearest subspace to each (normalised) row of `test`.
    pub fn predict(&self, test: &Tensor<2>) -> Result<Vec<usize>> {
        check_test(self.dim, test)?;
        let test = normalized_rows(test)?;
        let [n, _] = test.dims();
        let norms = to_vec(test.clone().powi_scalar(2).sum_dim(1))?;
        let mut best = vec![(f64::INFINITY, 0usize); n];
        for (j, u) in self.subspaces.iter().enumerate() {
            let Some(u) = u else { continue };
            // ‖(I − UUᵀ)z‖² = ‖z‖² − ‖Uᵀz‖² for orthonormal U.
            let inside = to_vec(test.clone().matmul(u.clone()).powi_scalar(2).sum_dim(1))?;
            for i in 0..n {
                let resid = (norms[i] as f64 - inside[i] as f64).max(0.0);
                if resid < best[i].0 {
                    best[i] = (resid, j);
                }
            }
        }
        Ok(best.into_iter().map(|(_, j)| j).collect())
    }
}

/// Nearest-subspace predictions (fits a [`NearestSubspace`] and predicts
/// once).
pub fn nearest_subspace_predict(
    train: &Tensor<2>,
    labels: &[usize],
    test: &Tensor<2>,
    n_comp: usize,
) -> Result<Vec<usize>> {
    NearestSubspace::fit(train, labels, n_comp)?.predict(test)
}

/// Fraction of predictions equal to the labels.
pub fn accuracy(predictions: &[usize], labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    hits as f64 / labels.len() as f64
}

/// Minimum incremental coding length (MICL; Wright, Tao, Lin, Shum, Ma,
/// NIPS 2007): a query joins the class whose coding length grows least,
///
/// ```text
/// δL(x, j) = L(X_j ∪ {x}) − L(X_j) + log2(m / m_j),   ŷ(x) = argmin_j δL(x, j)
/// ```
///
/// with L the lossy coding length of [`crate::coding`] at distortion ε².
/// Fitting stores each class's rows and L(X_j); a prediction factors each
/// class once (for the α of m_j + 1 samples) and takes every query from a
/// one-number Schur complement, so queries cost a product, not a
/// factorisation each. Rows are used as given.
#[derive(Debug, Clone)]
pub struct Micl {
    dim: usize,
    /// Per class (`None`: no training samples): the class prepared to grow
    /// by one sample, its size m_j and `L(X_j) − log2(m / m_j)`, the part
    /// of δL that does not depend on the query.
    classes: Vec<Option<(crate::coding::Grown, usize, f64)>>,
}

impl Micl {
    /// Fits to labelled training rows at distortion `eps_sq` (ε²).
    pub fn fit(train: &Tensor<2>, labels: &[usize], eps_sq: f64) -> Result<Self> {
        let k = check_train(train, labels)?;
        crate::rates::check_features(train, eps_sq)?;
        let [m, d] = train.dims();
        let device = train.device();
        let mut members = vec![Vec::new(); k];
        for (i, &l) in labels.iter().enumerate() {
            members[l].push(i);
        }
        // The classes side by side: each is a Gram and two factorisations.
        // Each class's rows are gathered and widened to f64 on their own: a
        // host copy of all rows (f32 or f64) would add the features' memory
        // again at once, gigabytes on large feature sets.
        let classes = members
            .par_iter()
            .map(|idx| {
                if idx.is_empty() {
                    return Ok(None);
                }
                let n = idx.len();
                let gathered = to_vec(train.clone().select(0, crate::host::indices(idx, &device)))?;
                let x: Vec<f64> = gathered.into_iter().map(f64::from).collect();
                let gram = crate::coding::Gram::of(&x, n, d);
                let alpha = d as f64 / (n as f64 * eps_sq);
                let own = crate::coding::length_bits(gram.logdet(alpha)?, n, d);
                let grown = crate::coding::Grown::with_gram(&x, &gram, d, 1, eps_sq)?;
                Ok(Some((grown, n, own - (m as f64 / n as f64).log2())))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { dim: d, classes })
    }

    /// δL of every query row (`[n, d]`) for every class: `[n][k]`, bits
    /// (infinite for a class without training samples).
    pub fn increments(&self, test: &Tensor<2>) -> Result<Vec<Vec<f64>>> {
        check_test(self.dim, test)?;
        crate::host::check_finite(test, "MICL queries")?;
        let [n, d] = test.dims();
        let q: Vec<f64> = to_vec(test.clone())?.iter().map(|&v| v as f64).collect();
        let mut out = vec![vec![f64::INFINITY; self.classes.len()]; n];
        for (j, class) in self.classes.iter().enumerate() {
            let Some((grown, m_j, fixed)) = class else {
                continue;
            };
            for (row, ld) in out.iter_mut().zip(grown.logdets(&q)?) {
                row[j] = crate::coding::length_bits(ld, m_j + 1, d) - fixed;
            }
        }
        Ok(out)
    }

    /// The class of least incremental coding length for each row of `test`.
    pub fn predict(&self, test: &Tensor<2>) -> Result<Vec<usize>> {
        Ok(self
            .increments(test)?
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold(
                        (0, f64::INFINITY),
                        |best, (j, &v)| if v < best.1 { (j, v) } else { best },
                    )
                    .0
            })
            .collect())
    }
}
