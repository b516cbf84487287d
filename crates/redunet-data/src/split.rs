//! Deterministic per-class selection, the way the official ReduNet code picks
//! samples: for each class, the first `train_per_class` samples in file order
//! train and the next `test_per_class` test. Both sets come out grouped by
//! class, classes in the order asked for.

use crate::{DataError, Dataset, Result};

/// A train/test split with labels renumbered `0..classes.len()`.
#[derive(Debug, Clone)]
pub struct Split {
    /// The training samples, grouped by class.
    pub train: Dataset,
    /// The test samples, grouped by class.
    pub test: Dataset,
    /// `classes[j]` is the original label of class `j`.
    pub classes: Vec<usize>,
    /// Human-readable warnings (a class with no or too few samples).
    pub warnings: Vec<String>,
}

/// Selects per class from `data`. `classes = None` keeps every label present.
/// A requested class with no samples at all is skipped with a warning; one
/// with fewer samples than asked gives what it has, with a warning.
pub fn per_class_split(
    data: &Dataset,
    classes: Option<&[usize]>,
    train_per_class: usize,
    test_per_class: usize,
) -> Result<Split> {
    if train_per_class == 0 {
        return Err(DataError::Invalid(
            "train_per_class must be at least 1".into(),
        ));
    }
    let wanted: Vec<usize> = match classes {
        Some(c) => {
            let mut seen = std::collections::BTreeSet::new();
            for &l in c {
                if !seen.insert(l) {
                    return Err(DataError::Invalid(format!("class {l} is listed twice")));
                }
            }
            c.to_vec()
        }
        // The labels present, so that a stray large label value costs
        // nothing (and warns of nothing) for the ids nobody uses.
        None => {
            let present: std::collections::BTreeSet<usize> = data.labels.iter().copied().collect();
            present.into_iter().collect()
        }
    };
    // Members of every class in one pass, in file order.
    let mut by_label: std::collections::HashMap<usize, Vec<usize>> = Default::default();
    for (i, &l) in data.labels.iter().enumerate() {
        by_label.entry(l).or_default().push(i);
    }
    let mut warnings = Vec::new();
    let mut train_idx = Vec::new();
    let mut test_idx = Vec::new();
    let mut train_labels = Vec::new();
    let mut test_labels = Vec::new();
    let mut kept = Vec::new();
    for &label in &wanted {
        let members = by_label.remove(&label).unwrap_or_default();
        if members.is_empty() {
            warnings.push(format!("class {label} has no samples: skipped"));
            continue;
        }
        let j = kept.len();
        kept.push(label);
        let n_train = train_per_class.min(members.len());
        if n_train < train_per_class {
            warnings.push(format!(
                "class {label}: only {} samples, {n_train} used for training",
                members.len()
            ));
        }
        let n_test = test_per_class.min(members.len() - n_train);
        if n_test < test_per_class {
            warnings.push(format!(
                "class {label}: only {n_test} samples left for testing ({test_per_class} asked)"
            ));
        }
        train_idx.extend_from_slice(&members[..n_train]);
        train_labels.extend(std::iter::repeat_n(j, n_train));
        test_idx.extend_from_slice(&members[n_train..n_train + n_test]);
        test_labels.extend(std::iter::repeat_n(j, n_test));
    }
    if kept.is_empty() {
        return Err(DataError::Invalid(format!(
            "none of the classes {wanted:?} has any sample"
        )));
    }
    let mut train = data.subset(&train_idx);
    train.labels = train_labels;
    let mut test = data.subset(&test_idx);
    test.labels = test_labels;
    Ok(Split {
        train,
        test,
        classes: kept,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_first_then_next_in_file_order() {
        let labels = vec![1, 0, 1, 0, 1, 0, 1];
        let feats: Vec<f32> = (0..7).map(|i| i as f32).collect();
        let d = Dataset::new(feats, vec![1], labels).unwrap();
        let s = per_class_split(&d, Some(&[1, 0]), 2, 1).unwrap();
        assert_eq!(s.train.features, vec![0., 2., 1., 3.]);
        assert_eq!(s.train.labels, vec![0, 0, 1, 1]);
        assert_eq!(s.test.features, vec![4., 5.]);
        assert_eq!(s.classes, vec![1, 0]);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn empty_class_is_skipped_with_a_warning() {
        let d = Dataset::new(vec![0., 1., 2.], vec![1], vec![0, 0, 2]).unwrap();
        let s = per_class_split(&d, Some(&[0, 1, 2]), 1, 1).unwrap();
        assert_eq!(s.classes, vec![0, 2]);
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("class 1 has no samples"))
        );
        assert!(per_class_split(&d, Some(&[5]), 1, 0).is_err());
    }
}
