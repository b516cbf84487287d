//! `redunet run`: load data, construct the network layer by layer, evaluate,
//! and write the results.

use super::config::{RunConfig, Source};
use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use redunet_core::classify::{accuracy, knn_predict, nearest_subspace_predict};
use redunet_core::host::{tensor, to_vec};
use redunet_core::network::LayerRecord;
use redunet_core::{Memberships, VectorReduNet};
use redunet_data::npy::write_atomic;
use redunet_data::split::{Split, per_class_split};
use redunet_data::{Dataset, builtin, gaussian, npy};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Loads and splits the data a configuration asks for.
pub fn load_data(cfg: &RunConfig) -> Result<Split> {
    let d = &cfg.data;
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
            let data = gaussian::mixture(&centres, train + test, d.noise.unwrap_or(0.1), cfg.seed)?;
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
                let t =
                    per_class_split(&builtin::fashion_mnist(false)?, Some(&s.classes), test, 0)?;
                s.warnings.extend(t.warnings);
                s.test = t.train;
            }
            s
        }
        Source::Npy => load_npy(cfg)?,
    };
    Ok(split)
}

fn npy_dataset(x: &Path, y: &Path) -> Result<Dataset> {
    let xs = npy::read_npy_f32(x)?;
    let ys = npy::read_npy_i64(y)?;
    if xs.shape.is_empty() {
        bail!(
            "{}: features must have shape [m, …], got a scalar",
            x.display()
        );
    }
    if ys.shape.len() != 1 {
        bail!(
            "{}: labels must have shape [m], got {:?}",
            y.display(),
            ys.shape
        );
    }
    if xs.shape[0] != ys.shape[0] {
        bail!(
            "{} has {} samples but {} has {} labels",
            x.display(),
            xs.shape[0],
            y.display(),
            ys.shape[0]
        );
    }
    let mut labels = Vec::with_capacity(ys.data.len());
    for (i, &l) in ys.data.iter().enumerate() {
        if l < 0 || l > u32::MAX as i64 {
            bail!(
                "{}: label {l} at index {i} is out of range (labels are 0, 1, …)",
                y.display()
            );
        }
        labels.push(l as usize);
    }
    let mut shape = xs.shape[1..].to_vec();
    if shape.is_empty() {
        shape.push(1);
    }
    Dataset::new(xs.data, shape, labels).with_context(|| format!("{}", x.display()))
}

fn load_npy(cfg: &RunConfig) -> Result<Split> {
    let d = &cfg.data;
    let (tx, ty) = (d.train_x.as_ref().unwrap(), d.train_y.as_ref().unwrap());
    let train = npy_dataset(tx, ty)?;
    let classes = d.classes.clone();
    let per = d.train_per_class.unwrap_or(usize::MAX);
    let mut split = per_class_split(&train, classes.as_deref(), per, 0)?;
    split.warnings.retain(|w| !w.contains("used for training"));
    if let (Some(x), Some(y)) = (&d.test_x, &d.test_y) {
        let test = npy_dataset(x, y)?;
        if test.sample_shape != train.sample_shape {
            bail!(
                "test samples have shape {:?}, train samples {:?}",
                test.sample_shape,
                train.sample_shape
            );
        }
        let t = per_class_split(
            &test,
            Some(&split.classes),
            d.test_per_class.unwrap_or(usize::MAX),
            0,
        )
        .context("test set")?;
        split.test = t.train;
    }
    Ok(split)
}

#[derive(Serialize)]
pub struct Accuracies {
    pub knn: f64,
    pub nearest_subspace: f64,
}

#[derive(Serialize)]
pub struct Seconds {
    pub construct: f64,
    pub per_layer: f64,
    pub evaluate: f64,
}

#[derive(Serialize)]
pub struct AccuracyBlock {
    pub train: Accuracies,
    pub test: Option<Accuracies>,
    /// The test samples under every cyclic shift of the stride grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_all_shifts: Option<Accuracies>,
}

#[derive(Serialize)]
pub struct DataSummary {
    pub source: String,
    pub classes: Vec<usize>,
    pub train: usize,
    pub test: usize,
    pub dim: usize,
}

#[derive(Serialize)]
pub struct Summary {
    pub device: String,
    pub seconds: Seconds,
    pub input: LayerRecord,
    pub layers: Vec<LayerRecord>,
    pub accuracy: AccuracyBlock,
    pub data: DataSummary,
    pub warnings: Vec<String>,
    pub config: RunConfig,
}

fn as_matrix(ds: &Dataset, device: &Device) -> Tensor<2> {
    tensor(ds.features.clone(), [ds.len(), ds.dim()], device)
}

pub(crate) fn evaluate(
    train: &Tensor<2>,
    train_labels: &[usize],
    test: &Tensor<2>,
    test_labels: &[usize],
    k: usize,
    n_comp: usize,
) -> Result<Accuracies> {
    Ok(Accuracies {
        knn: accuracy(&knn_predict(train, train_labels, test, k)?, test_labels),
        nearest_subspace: accuracy(
            &nearest_subspace_predict(train, train_labels, test, n_comp)?,
            test_labels,
        ),
    })
}

/// A progress bar over the layers of a construction (hidden when quiet).
pub(crate) fn progress_bar(quiet: bool, layers: usize) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(layers as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} layer {pos}/{len} [{bar:30}] {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Shows a rate record on the progress bar.
pub(crate) fn show_record(bar: &ProgressBar, rec: &LayerRecord) {
    bar.set_position(rec.layer as u64);
    bar.set_message(format!(
        "ΔR {:.4}  R {:.4}  R_c {:.4}",
        rec.delta_r, rec.r, rec.r_c
    ));
}

/// Writes `summary.json` and `rates.csv` into `out` (created if needed).
pub(crate) fn write_summary(out: &Path, summary: &Summary, records: &[LayerRecord]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(summary)?,
    )?;
    let mut csv = String::from("layer,r,r_c,delta_r\n");
    for r in records {
        csv.push_str(&format!("{},{},{},{}\n", r.layer, r.r, r.r_c, r.delta_r));
    }
    write_atomic(&out.join("rates.csv"), csv.as_bytes())?;
    Ok(())
}

/// Runs a configuration end to end and writes its outputs into `out`.
pub fn run(
    cfg: &RunConfig,
    device: &Device,
    device_name: &str,
    out: &Path,
    quiet: bool,
) -> Result<Summary> {
    if cfg.model.kind == super::config::ModelKind::Mlp {
        bail!("model.kind = mlp is trained by `redunet train`, not constructed by `redunet run`");
    }
    if cfg.uses_signals() {
        return super::signals::run(cfg, device, device_name, out, quiet);
    }
    let split = load_data(cfg)?;
    for w in &split.warnings {
        eprintln!("warning: {w}");
    }
    let k = split.classes.len();
    let train = &split.train;
    let test = &split.test;
    let dim = train.dim();
    if !quiet {
        eprintln!(
            "data: {:?}, {} classes {:?}, {} train / {} test samples of dimension {dim}, device {device_name}",
            cfg.data.source,
            k,
            split.classes,
            train.len(),
            test.len()
        );
    }
    let z = as_matrix(train, device);
    let pi = Memberships::from_labels(&train.labels, k, device)?;
    let layer_cfg = cfg.model.layer_config();
    let layers = cfg.model.layers;

    let bar = progress_bar(quiet, layers);
    let start = Instant::now();
    let built =
        VectorReduNet::construct(&z, &pi, layers, &layer_cfg, |rec| show_record(&bar, rec))?;
    // Make sure the construction has really finished on an asynchronous device.
    to_vec(built.features.clone().slice([0..1, 0..1]))?;
    let construct = start.elapsed().as_secs_f64();
    bar.finish();

    let start = Instant::now();
    // Train features for evaluation come from the unlabelled forward pass:
    // with soft membership that is exactly the construction output.
    let train_features = match layer_cfg.membership {
        redunet_core::MembershipMode::Soft => built.features.clone(),
        redunet_core::MembershipMode::Labels => built.network.transform(&z)?,
    };
    let default_comp = match cfg.data.source {
        Source::Gaussian2d | Source::Gaussian3d => 1,
        _ => 10,
    };
    let n_comp = cfg.eval.n_comp.unwrap_or(default_comp);
    let knn_k = cfg.eval.knn_k;
    let train_acc = evaluate(
        &train_features,
        &train.labels,
        &train_features,
        &train.labels,
        knn_k,
        n_comp,
    )?;
    let (test_features, test_acc) = if test.is_empty() {
        (None, None)
    } else {
        let zt = as_matrix(test, device);
        let ft = built.network.transform(&zt)?;
        let acc = evaluate(
            &train_features,
            &train.labels,
            &ft,
            &test.labels,
            knn_k,
            n_comp,
        )?;
        (Some((zt, ft)), Some(acc))
    };
    let evaluate_s = start.elapsed().as_secs_f64();

    let summary = Summary {
        device: device_name.to_string(),
        seconds: Seconds {
            construct,
            per_layer: construct / layers as f64,
            evaluate: evaluate_s,
        },
        input: built.records[0],
        layers: built.records[1..].to_vec(),
        accuracy: AccuracyBlock {
            train: train_acc,
            test: test_acc,
            test_all_shifts: None,
        },
        data: DataSummary {
            source: format!("{:?}", cfg.data.source),
            classes: split.classes.clone(),
            train: train.len(),
            test: test.len(),
            dim,
        },
        warnings: split.warnings.clone(),
        config: cfg.clone(),
    };

    write_summary(out, &summary, &built.records)?;
    if cfg.model.save {
        let net = redunet_train::vector::VectorReduNetModule::from_network(&built.network)?;
        redunet_train::SavedModel {
            trainee: redunet_train::trainer::Trainee {
                net: redunet_train::Network::Vector(net),
                head: None,
            },
            logit_scale: None,
            meta: serde_json::to_value(cfg)?,
        }
        .save(&out.join("model"))?;
    }

    super::plots::rates(&out.join("rates.png"), &built.records)?;
    let per = cfg.eval.heatmap_per_class;
    super::plots::cosine_heatmap(
        &out.join("heatmap-train.png"),
        &to_vec(train_features.clone())?,
        &train.labels,
        dim,
        per,
        "|cos| between train features (sorted by class)",
    )?;
    if let Some((zt, ft)) = &test_features {
        super::plots::cosine_heatmap(
            &out.join("heatmap-test.png"),
            &to_vec(ft.clone())?,
            &test.labels,
            dim,
            per,
            "|cos| between test features (sorted by class)",
        )?;
        let _ = zt;
    }
    if dim == 2 || dim == 3 {
        let input = to_vec(redunet_core::layer::vector::normalize_rows(z.clone()))?;
        super::plots::scatter(
            &out.join("scatter-input.png"),
            &input,
            &train.labels,
            dim,
            "input features",
        )?;
        super::plots::scatter(
            &out.join("scatter-output.png"),
            &to_vec(train_features)?,
            &train.labels,
            dim,
            "output features",
        )?;
    }
    Ok(summary)
}

/// Prints a readable summary.
pub fn print_summary(s: &Summary, out: &Path) {
    println!(
        "ReduNet ({} layers) on {} — device {}",
        s.layers.len(),
        s.data.source,
        s.device
    );
    println!(
        "  rates: input ΔR {:.4} → layer {} ΔR {:.4} (R {:.4}, R_c {:.4})",
        s.input.delta_r,
        s.layers.len(),
        s.layers.last().map_or(f64::NAN, |l| l.delta_r),
        s.layers.last().map_or(f64::NAN, |l| l.r),
        s.layers.last().map_or(f64::NAN, |l| l.r_c),
    );
    println!(
        "  time: construct {:.2} s ({:.2} ms/layer), evaluate {:.2} s",
        s.seconds.construct,
        1e3 * s.seconds.per_layer,
        s.seconds.evaluate
    );
    println!(
        "  train accuracy: kNN {:.4}, nearest subspace {:.4}",
        s.accuracy.train.knn, s.accuracy.train.nearest_subspace
    );
    if let Some(t) = &s.accuracy.test {
        println!(
            "  test accuracy:  kNN {:.4}, nearest subspace {:.4}",
            t.knn, t.nearest_subspace
        );
    }
    if let Some(t) = &s.accuracy.test_all_shifts {
        println!(
            "  all shifts:     kNN {:.4}, nearest subspace {:.4}",
            t.knn, t.nearest_subspace
        );
    }
    println!("  results in {}", out.display());
}
