//! Where the built-in data sets live.

use crate::{DataError, Dataset, Result};
use std::path::{Path, PathBuf};

/// The vendored MNIST subset (the first 10,000 training digits, grouped by
/// digit; see `data/mnist-10k/PROVENANCE.md`), compiled into the library so
/// that the built-in default runs from any working directory.
const MNIST_IMAGES: &[u8] = include_bytes!("../../../data/mnist-10k/train-images-idx3-ubyte.gz");
const MNIST_LABELS: &[u8] = include_bytes!("../../../data/mnist-10k/train-labels-idx1-ubyte.gz");

/// Loads the built-in MNIST subset, pixels in `[0, 1]`, shape `[28, 28]`.
pub fn mnist() -> Result<Dataset> {
    crate::idx::idx_dataset_from_bytes(
        MNIST_IMAGES,
        MNIST_LABELS,
        Path::new("<built-in mnist-10k>"),
    )
}

/// Folders where Debian's `dataset-fashion-mnist` package may put its files.
const FASHION_DIRS: &[&str] = &[
    "/usr/share/dataset-fashion-mnist",
    "/usr/share/datasets/fashion-mnist",
    "/usr/share/fashion-mnist",
];

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Loads Fashion-MNIST (`train` = the 60k set, otherwise the 10k test set)
/// from `REDUNET_FASHION_DIR` or the Debian package's folder.
pub fn fashion_mnist(train: bool) -> Result<Dataset> {
    let prefix = if train { "train" } else { "t10k" };
    let mut dirs: Vec<PathBuf> = std::env::var("REDUNET_FASHION_DIR")
        .map(|d| vec![PathBuf::from(d)])
        .unwrap_or_default();
    dirs.extend(FASHION_DIRS.iter().map(PathBuf::from));
    for dir in &dirs {
        let img = find(dir, &format!("{prefix}-images-idx3-ubyte"));
        let lab = find(dir, &format!("{prefix}-labels-idx1-ubyte"));
        if let (Some(img), Some(lab)) = (img, lab) {
            return crate::idx::read_idx_dataset(&img, &lab);
        }
    }
    Err(DataError::Unavailable(format!(
        "Fashion-MNIST not found in {dirs:?}: install it with `apt-get install dataset-fashion-mnist` \
         or point REDUNET_FASHION_DIR at a folder with the IDX files"
    )))
}
