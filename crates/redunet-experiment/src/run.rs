//! A run: load the data, construct the network layer by layer, evaluate
//! it, save it, and summarise (REDUNET.md §3 for vector networks; the
//! invariant ones are in [`crate::invariant`]).

use crate::budget::{Estimate, Job};
use crate::config::{ModelKind, RunConfig, Source};
use crate::plan::Plan;
use crate::report::{AccuracyBlock, Classifiers, Features, Progress, Summary, write_summary};
use burn::tensor::{Device, Tensor};
use redunet_core::host::{tensor, to_vec};
use redunet_core::{Error, Memberships, Result, VectorReduNet};
use redunet_data::Dataset;
use redunet_data::memory::human;
use redunet_data::split::Split;
use redunet_vision::front::FrontEndConfig;
use std::path::Path;
use std::time::Instant;

fn as_matrix(ds: &Dataset, device: &Device) -> Tensor<2> {
    tensor(ds.features.clone(), [ds.len(), ds.dim()], device)
}

/// Runs a configuration end to end on `device`: writes `summary.json`,
/// `rates.csv` and the saved model (`model.save`) into `out`, and returns
/// the summary with the features the plots are drawn from.
///
/// ```
/// use redunet_experiment::{RunConfig, Silent};
/// let cfg: RunConfig = serde_json::from_value(serde_json::json!({
///     "data": { "source": "gaussian2d", "train_per_class": 20, "test_per_class": 5 },
///     "model": { "kind": "vector", "layers": 3 },
/// }))
/// .unwrap();
/// let device = burn::tensor::Device::default();
/// let out = std::env::temp_dir().join(format!("redunet-run-doc-{}", std::process::id()));
/// let (summary, _features) = redunet_experiment::run::run(&cfg, &device, "flex", &out, &mut Silent)?;
/// assert_eq!(summary.layers.len(), 3);
/// assert!(summary.accuracy.test.unwrap().nearest_subspace > 0.5);
/// # std::fs::remove_dir_all(&out).ok();
/// # Ok::<(), redunet_core::Error>(())
/// ```
pub fn run(
    cfg: &RunConfig,
    device: &Device,
    device_name: &str,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<(Summary, Features)> {
    run_sharded(cfg, device, &[], device_name, out, progress)
}

/// [`run`] with the training samples split into one contiguous shard per
/// device of `workers` (e.g. remote devices of Burn's remote backend, or
/// several local GPUs), each kept on its device for the whole construction
/// ([`VectorReduNet::construct_sharded`]): per layer only the shards'
/// second moments reach `device`, the coordinator, and only the operators
/// go back. No workers: the ordinary run. Vector and invariant networks
/// (for the vector baselines on signals, the shards are ignored), without
/// `model.batch_size` (a shard is one batch).
pub fn run_sharded(
    cfg: &RunConfig,
    device: &Device,
    workers: &[Device],
    device_name: &str,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<(Summary, Features)> {
    let Checked { split, front, .. } = checked(cfg, workers.len(), out)?;
    for w in &split.warnings {
        progress.warning(w);
    }
    if let Some(front) = front {
        return crate::invariant::run(
            cfg,
            (split, front),
            (device, workers),
            device_name,
            out,
            progress,
        );
    }
    let k = split.classes.len();
    let train = &split.train;
    let test = &split.test;
    let dim = train.dim();
    progress.started(&format!(
        "data: {:?}, {} classes {:?}, {} train / {} test samples of dimension {dim}, device {device_name}",
        cfg.data.source,
        k,
        split.classes,
        train.len(),
        test.len()
    ));
    let z = as_matrix(train, device);
    let pi = Memberships::from_labels(&train.labels, k, device)?;
    let layer_cfg = cfg.model.layer_config();
    let layers = cfg.model.layers;

    let start = Instant::now();
    let on_layer = |rec: &redunet_core::LayerRecord| progress.layer(rec);
    let built = match cfg.model.batch_size {
        None if !workers.is_empty() => {
            let (m, w) = (train.len(), workers.len());
            let shards = workers
                .iter()
                .enumerate()
                .map(|(i, dev)| {
                    let (s, e) = (i * m / w, (i + 1) * m / w);
                    Ok((
                        z.clone().slice([s..e, 0..dim]).to_device(dev),
                        Memberships::from_labels(&train.labels[s..e], k, dev)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let c = VectorReduNet::construct_sharded(shards, layers, &layer_cfg, device, on_layer)?;
            // The features come to the coordinator once, for evaluation.
            let features = c.features.into_iter().map(|f| f.to_device(device));
            redunet_core::network::Construction {
                network: c.network,
                records: c.records,
                features: Tensor::cat(features.collect(), 0),
            }
        }
        None => VectorReduNet::construct(&z, &pi, layers, &layer_cfg, on_layer)?,
        Some(b) => {
            let m = train.len();
            let batches = (0..m)
                .step_by(b)
                .map(|s| {
                    let e = (s + b).min(m);
                    Ok((
                        z.clone().slice([s..e, 0..dim]),
                        Memberships::from_labels(&train.labels[s..e], k, device)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let c =
                VectorReduNet::construct_batched(batches, layers, &layer_cfg, device, on_layer)?;
            redunet_core::network::Construction {
                network: c.network,
                records: c.records,
                features: Tensor::cat(c.features, 0),
            }
        }
    };
    // Make sure the construction has really finished on an asynchronous device.
    to_vec(built.features.clone().slice([0..1, 0..1]))?;
    let construct = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let transform = |x: &Tensor<2>| match cfg.model.batch_size {
        None => built.network.transform(x),
        Some(b) => built.network.transform_batched(x, b, device),
    };
    // Train features for evaluation come from the unlabelled forward pass:
    // with soft membership that is exactly the construction output.
    let train_features = match layer_cfg.membership {
        redunet_core::MembershipMode::Soft => built.features.clone(),
        redunet_core::MembershipMode::Labels => transform(&z)?,
    };
    let default_comp = match cfg.data.source {
        Source::Gaussian2d | Source::Gaussian3d => 1,
        _ => 10,
    };
    let eval = crate::report::eval_settings(cfg, default_comp);
    let fitted = Classifiers::fit(&train_features, &train.labels, eval)?;
    let train_acc = crate::report::train_accuracy(&fitted, &train_features, &train.labels, cfg)?;
    let (test_features, test_acc) = if test.is_empty() {
        (None, None)
    } else {
        let zt = as_matrix(test, device);
        let ft = transform(&zt)?;
        let acc = fitted.accuracies(&ft, &test.labels)?;
        (Some((zt, ft)), Some(acc))
    };
    let evaluate_s = start.elapsed().as_secs_f64();

    let summary = Summary::new(
        cfg,
        device_name,
        &split,
        &built.records,
        (construct, evaluate_s),
        AccuracyBlock {
            train: train_acc,
            test: test_acc,
            test_all_shifts: None,
        },
        dim,
    );

    write_summary(out, &summary, &built.records)?;
    if cfg.model.save {
        let mut model =
            redunet_train::SavedModel::new(redunet_train::Network::Vector(built.network));
        model.meta = serde_json::to_value(cfg).expect("configurations serialise");
        model.save(&out.join("model"))?;
    }

    let dim_2d_3d = dim == 2 || dim == 3;
    let features = Features {
        dim,
        input: if dim_2d_3d {
            Some(to_vec(redunet_core::layer::vector::normalize_rows(z))?)
        } else {
            None
        },
        train: to_vec(train_features)?,
        train_labels: train.labels.clone(),
        test: match test_features {
            Some((_, ft)) => Some(to_vec(ft)?),
            None => None,
        },
        test_labels: test.labels.clone(),
        shifts: None,
    };
    Ok((summary, features))
}

/// What a construction has checked before it allocates: the data, the front
/// end of a run on signals, and the resources.
pub(crate) struct Checked {
    pub split: Split,
    pub front: Option<FrontEndConfig>,
    pub estimate: Estimate,
}

/// Every check a construction makes before its first allocation (with
/// `workers` shard devices): the configuration and its combination with the
/// command, the data, the front end, and the memory and disk the run will
/// take against what the machine and the disk of `out` have.
pub(crate) fn checked(cfg: &RunConfig, workers: usize, out: &Path) -> Result<Checked> {
    cfg.validate()?;
    let bad = |m: &str| Err(Error::Parameter(m.into()));
    if cfg.model.kind == ModelKind::Mlp || cfg.model.kind.is_transformer() {
        return Err(Error::Parameter(format!(
            "model.kind = {:?} is trained (`redunet train`), not constructed",
            cfg.model.kind
        )));
    }
    if workers > 0 && cfg.model.batch_size.is_some() {
        return bad("--workers shards the samples (a shard is one batch): drop model.batch_size");
    }
    let signals = cfg.uses_signals();
    if signals && cfg.model.kind == ModelKind::Vector {
        if workers > 0 {
            return bad(
                "--workers shards the construction of conv1d/conv2d networks and of vector \
                 networks on vectors; the vector baselines on signals are not sharded",
            );
        }
        if cfg.model.batch_size.is_some() {
            return bad("model.batch_size: the vector baseline on signals is built all at once");
        }
    }
    let split = cfg.data.load(cfg.seed)?;
    let m = split.train.len();
    if workers > m {
        return Err(Error::Parameter(format!(
            "{workers} workers for {m} training samples: every shard needs samples"
        )));
    }
    let front = if signals {
        let f = crate::invariant::front_config(cfg, &split.train.sample_shape);
        f.validate()?;
        Some(f)
    } else {
        None
    };
    let estimate = crate::budget::check_run(cfg, &split, front.as_ref(), Job::Construct, out)?;
    Ok(Checked {
        split,
        front,
        estimate,
    })
}

/// The plan of [`run_sharded`] with `workers` shard devices, writing into
/// `out`: every check the run makes before it starts, nothing constructed.
/// The error the run would give where it would refuse.
pub fn plan(cfg: &RunConfig, workers: usize, out: &Path) -> Result<Plan> {
    let Checked {
        split,
        front,
        estimate,
    } = checked(cfg, workers, out)?;
    let dim = match &front {
        Some(f) => {
            let (c, t) = f.signal_shape();
            c * t
        }
        None => split.train.dim(),
    };
    let m = &cfg.model;
    let mut model = vec![format!(
        "{:?}, {} layers, η {}, ε² {}, λ {}, {:?} membership",
        m.kind, m.layers, m.eta, m.eps_sq, m.lambda, m.membership
    )];
    if let Some(f) = &front {
        model.push(crate::plan::front_line(f));
    }
    model.push(format!("features of dimension {dim}"));
    if let Some(b) = m.batch_size {
        model.push(format!("statistics streamed over batches of {b} samples"));
    }
    if workers > 0 {
        model.push(format!("training samples sharded over {workers} workers"));
    }
    let mut outputs =
        vec!["summary.json, rates.csv, rates.png and the cosine heat maps".to_string()];
    outputs.push(match estimate.disk.first() {
        Some(p) if m.save => format!("model/: {} layers, {}", m.layers, human(p.bytes)),
        _ => "no model (model.save = false)".to_string(),
    });
    Ok(Plan {
        job: "forward construction (`redunet run`)".into(),
        data: crate::plan::data_lines(cfg.data.source, &split),
        model,
        outputs,
        estimate,
        warnings: split.warnings,
    })
}
