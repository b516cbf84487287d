//! Which data an experiment runs on: the `[data]` section of a
//! configuration, validated, and the per-class train/test split it selects.

use crate::split::{Split, per_class_split};
use crate::{DataError, Dataset, Result, builtin, gaussian, npy};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The ReduNet paper's mixture of 2D Gaussians.
    Gaussian2d,
    /// The ReduNet paper's mixture of 3D Gaussians.
    Gaussian3d,
    /// The vendored 10,000-digit MNIST subset.
    Mnist,
    /// Fashion-MNIST from Debian's `dataset-fashion-mnist`.
    FashionMnist,
    /// Features and labels in `.npy` files.
    Npy,
    /// A union of random subspaces of different dimensions, with outliers
    /// (`data.subspace_dims`, `data.ambient_dim`, `data.outliers`).
    Subspaces,
}

/// The `[data]` section of a configuration: which samples train and test.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Where the samples come from.
    pub source: Source,
    /// Keep only these labels (renumbered 0..k in this order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<usize>>,
    /// Per class, the first `train_per_class` samples in file order train.
    /// Required except for npy (where it defaults to all samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_per_class: Option<usize>,
    /// Per class, the next `test_per_class` samples test (npy: a separate
    /// test file, all of it unless this is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_per_class: Option<usize>,
    /// Noise of the Gaussian mixtures (default 0.1) and of the points on
    /// subspaces (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f32>,
    /// Subspaces: their dimensions (default [1, 2, 3]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subspace_dims: Option<Vec<usize>>,
    /// Subspaces: the dimension of the space they lie in (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient_dim: Option<usize>,
    /// Subspaces: Gaussian outliers added to the training samples, labelled
    /// as one more class (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outliers: Option<usize>,
    /// npy: training features `[m, …]` (relative to the configuration file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_x: Option<PathBuf>,
    /// npy: training labels `[m]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_y: Option<PathBuf>,
    /// npy: test features (optional, with `test_y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_x: Option<PathBuf>,
    /// npy: test labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_y: Option<PathBuf>,
}

fn invalid(reason: String) -> Result<()> {
    Err(DataError::Invalid(reason))
}

impl DataConfig {
    /// Checks the combination of settings (before anything is read).
    pub fn validate(&self) -> Result<()> {
        self.validate_labels(true)
    }

    /// [`Self::validate`], where npy data may come without labels
    /// (`train_y` absent) unless `required`.
    pub fn validate_labels(&self, required: bool) -> Result<()> {
        let d = self;
        match d.source {
            Source::Npy => {
                if d.train_x.is_none() || (required && d.train_y.is_none()) {
                    return invalid(
                        "data.source = \"npy\" needs data.train_x and data.train_y".into(),
                    );
                }
                if d.test_x.is_some() != d.test_y.is_some() {
                    return invalid("data.test_x and data.test_y go together".into());
                }
            }
            _ => {
                if d.train_per_class.is_none() {
                    return invalid("data.train_per_class is required".into());
                }
                if d.train_x.is_some()
                    || d.train_y.is_some()
                    || d.test_x.is_some()
                    || d.test_y.is_some()
                {
                    return invalid(
                        "data.train_x/train_y/test_x/test_y are only for source = \"npy\"".into(),
                    );
                }
            }
        }
        if d.train_per_class == Some(0) {
            return invalid("data.train_per_class must be at least 1".into());
        }
        let subspace_keys =
            d.subspace_dims.is_some() || d.ambient_dim.is_some() || d.outliers.is_some();
        if subspace_keys && d.source != Source::Subspaces {
            return invalid(
                "data.subspace_dims/ambient_dim/outliers are only for source = \"subspaces\""
                    .into(),
            );
        }
        if d.source == Source::Subspaces {
            let ambient = d.ambient_dim.unwrap_or(crate::subspaces::DEFAULT_AMBIENT);
            let dims = d
                .subspace_dims
                .clone()
                .unwrap_or(crate::subspaces::DEFAULT_DIMS.to_vec());
            if ambient == 0 || dims.is_empty() || dims.iter().any(|&p| p == 0 || p > ambient) {
                return invalid(format!(
                    "data.subspace_dims = {dims:?} must be non-empty, each in 1..={ambient} \
                     (data.ambient_dim)"
                ));
            }
            if d.classes.is_some() {
                return invalid("data.classes is not for source = \"subspaces\"".into());
            }
        }
        if let Some(n) = d.noise
            && !(n.is_finite() && n >= 0.0)
        {
            return invalid(format!("data.noise = {n} must be finite and ≥ 0"));
        }
        Ok(())
    }

    /// Loads and splits the data: the first `train_per_class` samples of
    /// each class train, the next `test_per_class` test (Fashion-MNIST and
    /// npy: from their separate test sets). `seed` seeds the Gaussian
    /// mixtures.
    pub fn load(&self, seed: u64) -> Result<Split> {
        self.validate()?;
        let d = self;
        let classes = d.classes.as_deref();
        let test = d.test_per_class.unwrap_or(0);
        let split = match d.source {
            Source::Gaussian2d | Source::Gaussian3d => {
                let centres = if d.source == Source::Gaussian2d {
                    gaussian::centres_2d()
                } else {
                    gaussian::centres_3d()
                };
                let train = d.train_per_class.unwrap_or(0);
                let n = train.checked_add(test).ok_or_else(|| {
                    DataError::Invalid(
                        "data.train_per_class + data.test_per_class overflows".into(),
                    )
                })?;
                let data = gaussian::mixture(&centres, n, d.noise.unwrap_or(0.1), seed)?;
                per_class_split(&data, classes, train, test)?
            }
            Source::Mnist => per_class_split(
                &builtin::mnist()?,
                classes,
                d.train_per_class.unwrap_or(0),
                test,
            )?,
            Source::FashionMnist => {
                // Train from the 60k set; test from the 10k test set.
                let train = builtin::fashion_mnist(true)?;
                let mut s = per_class_split(&train, classes, d.train_per_class.unwrap_or(0), 0)?;
                if test > 0 {
                    let t = per_class_split(
                        &builtin::fashion_mnist(false)?,
                        Some(&s.classes),
                        test,
                        0,
                    )?;
                    s.warnings.extend(t.warnings);
                    s.test = t.train;
                }
                s
            }
            Source::Npy => load_npy(self)?,
            Source::Subspaces => {
                let dims = d
                    .subspace_dims
                    .clone()
                    .unwrap_or(crate::subspaces::DEFAULT_DIMS.to_vec());
                let train = d.train_per_class.unwrap_or(0);
                let n = train.checked_add(test).ok_or_else(|| {
                    DataError::Invalid(
                        "data.train_per_class + data.test_per_class overflows".into(),
                    )
                })?;
                let data = crate::subspaces::union_of_subspaces(
                    &dims,
                    d.ambient_dim.unwrap_or(crate::subspaces::DEFAULT_AMBIENT),
                    n,
                    d.outliers.unwrap_or(0),
                    d.noise.unwrap_or(0.0),
                    seed,
                )?;
                // The outliers (the last class) all train: they are what a
                // clustering must keep out of the subspaces' groups.
                let k = dims.len();
                let inliers: Vec<usize> = (0..k).collect();
                let mut s = per_class_split(&data, Some(&inliers), train, test)?;
                let out: Vec<usize> = (0..data.len()).filter(|&i| data.labels[i] == k).collect();
                if !out.is_empty() {
                    let o = data.subset(&out);
                    s.train.features.extend(o.features);
                    s.train.labels.extend(o.labels);
                    s.classes.push(k);
                }
                s
            }
        };
        Ok(split)
    }
}

impl DataConfig {
    /// Loads the training samples to cluster: as [`Self::load`], except
    /// that npy data without labels (`train_y` absent) are read too, every
    /// sample then labelled 0. Returns the split and whether it has labels.
    pub fn load_unlabelled(&self, seed: u64) -> Result<(Split, bool)> {
        self.validate_labels(false)?;
        let (Source::Npy, Some(tx), None) = (self.source, &self.train_x, &self.train_y) else {
            return Ok((self.load(seed)?, true));
        };
        let xs = npy::read_npy_f32(tx)?;
        if xs.shape.is_empty() {
            return Err(DataError::Invalid(format!(
                "{}: features must have shape [m, …], got a scalar",
                tx.display()
            )));
        }
        let mut shape = xs.shape[1..].to_vec();
        if shape.is_empty() {
            shape.push(1);
        }
        let m = xs.shape[0];
        let data = Dataset::new(xs.data, shape, vec![0; m]).map_err(|e| match e {
            DataError::Shape(r) => DataError::Shape(format!("{}: {r}", tx.display())),
            e => e,
        })?;
        let per = self.train_per_class.unwrap_or(usize::MAX);
        let mut split = per_class_split(&data, None, per, 0)?;
        split.warnings.clear();
        Ok((split, false))
    }
}

fn npy_dataset(x: &Path, y: &Path) -> Result<Dataset> {
    let xs = npy::read_npy_f32(x)?;
    let ys = npy::read_npy_i64(y)?;
    if xs.shape.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: features must have shape [m, …], got a scalar",
            x.display()
        )));
    }
    if ys.shape.len() != 1 {
        return Err(DataError::Invalid(format!(
            "{}: labels must have shape [m], got {:?}",
            y.display(),
            ys.shape
        )));
    }
    if xs.shape[0] != ys.shape[0] {
        return Err(DataError::Invalid(format!(
            "{} has {} samples but {} has {} labels",
            x.display(),
            xs.shape[0],
            y.display(),
            ys.shape[0]
        )));
    }
    let mut labels = Vec::with_capacity(ys.data.len());
    for (i, &l) in ys.data.iter().enumerate() {
        if l < 0 || l > u32::MAX as i64 {
            return Err(DataError::Invalid(format!(
                "{}: label {l} at index {i} is out of range (labels are 0, 1, …)",
                y.display()
            )));
        }
        labels.push(l as usize);
    }
    let mut shape = xs.shape[1..].to_vec();
    if shape.is_empty() {
        shape.push(1);
    }
    Dataset::new(xs.data, shape, labels).map_err(|e| match e {
        DataError::Shape(r) => DataError::Shape(format!("{}: {r}", x.display())),
        e => e,
    })
}

fn load_npy(d: &DataConfig) -> Result<Split> {
    let (Some(tx), Some(ty)) = (&d.train_x, &d.train_y) else {
        return Err(DataError::Invalid(
            "data.source = \"npy\" needs data.train_x and data.train_y".into(),
        ));
    };
    let train = npy_dataset(tx, ty)?;
    let classes = d.classes.clone();
    let per = d.train_per_class.unwrap_or(usize::MAX);
    let mut split = per_class_split(&train, classes.as_deref(), per, 0)?;
    split.warnings.retain(|w| !w.contains("used for training"));
    if let (Some(x), Some(y)) = (&d.test_x, &d.test_y) {
        let test = npy_dataset(x, y)?;
        if test.sample_shape != train.sample_shape {
            return Err(DataError::Invalid(format!(
                "test samples have shape {:?}, train samples {:?}",
                test.sample_shape, train.sample_shape
            )));
        }
        let t = per_class_split(
            &test,
            Some(&split.classes),
            d.test_per_class.unwrap_or(usize::MAX),
            0,
        )
        .map_err(|e| DataError::Invalid(format!("test set: {e}")))?;
        split.test = t.train;
    }
    Ok(split)
}
