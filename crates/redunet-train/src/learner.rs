//! The networks on burn-train's stack: a feature extractor with a linear
//! head, [`Classifier`], implements burn-train's `TrainStep` and
//! `InferenceStep`, so a Burn user trains a ReduNet, CRATE, the plain
//! transformer or the MLP with burn-train's `Learner` and
//! `SupervisedTraining` (metrics, checkpoints, early stopping), and
//! [`DeltaRMetric`] reports the coding rate reduction ΔR of a batch's
//! features as a burn-train metric. Images come in through
//! [`ImageBatcher`] from burn's data loaders.
//!
//! `redunet train` keeps its own loop around the same pieces (burn-optim's
//! optimisers and schedulers, the same step): it resumes bit for bit from
//! its checkpoints and evaluates kNN, nearest subspace and MICL on the whole
//! training and test sets every epoch, which burn-train's per-batch metrics
//! do not.

use crate::trainer::FeatureNet;
use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::TensorReadError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    AccuracyInput, Adaptor, ItemLazy, LossInput, Metric, MetricAttributes, MetricMetadata,
    MetricName, Numeric, NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use burn_std::ExecutionError;
use redunet_core::Memberships;
use redunet_core::rates::rate_reduction;

/// A feature extractor and a linear head on its unit-norm features:
/// `logits = scale · f W`, trained with burn-nn's cross-entropy.
#[derive(Module, Debug)]
pub struct Classifier<M: FeatureNet> {
    /// The feature extractor.
    pub net: M,
    /// The head, `d → classes`, without bias.
    pub head: Linear,
    /// The logit scale (features have unit norm).
    #[module(skip)]
    pub logit_scale: f64,
}

impl<M: FeatureNet> Classifier<M> {
    /// `net` with a zero head for `classes` classes and the logit scale
    /// `logit_scale`, on `device`.
    pub fn new(net: M, classes: usize, logit_scale: f64, device: &Device) -> Self {
        let head = crate::trainer::head(net.feature_dim(), classes, device);
        Self {
            net,
            head,
            logit_scale,
        }
    }

    /// The logits of flattened inputs `x: [b, n]`.
    ///
    /// # Shapes
    /// - x: `[b, n]`; output: `[b, classes]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.head
            .forward(self.net.features(x))
            .mul_scalar(self.logit_scale)
    }

    /// The features, logits, cross-entropy and targets of a batch.
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassifierOutput {
        let features = self.net.features(batch.images);
        let logits = self
            .head
            .forward(features.clone())
            .mul_scalar(self.logit_scale);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassifierOutput {
            loss,
            logits,
            features,
            targets: batch.targets,
        }
    }
}

impl<M: FeatureNet> TrainStep for Classifier<M> {
    type Input = ImageBatch;
    type Output = ClassifierOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassifierOutput> {
        let item = self.forward_classification(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<M: FeatureNet> InferenceStep for Classifier<M> {
    type Input = ImageBatch;
    type Output = ClassifierOutput;

    fn step(&self, batch: ImageBatch) -> ClassifierOutput {
        self.forward_classification(batch)
    }
}

/// What a [`Classifier`] step gives burn-train's metrics: the loss and the
/// logits (loss, accuracy) and the features ([`DeltaRMetric`]).
#[derive(Debug, Clone)]
pub struct ClassifierOutput {
    /// Cross-entropy of the batch, `[1]`.
    pub loss: Tensor<1>,
    /// `[b, classes]`.
    pub logits: Tensor<2>,
    /// The unit-norm features, `[b, d]`.
    pub features: Tensor<2>,
    /// `[b]`.
    pub targets: Tensor<1, Int>,
}

impl ItemLazy for ClassifierOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        // As burn-train's own outputs: no read-back here, the metrics read
        // their scalars; off the autodiff graph for the metric thread.
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            logits: self.logits.without_autodiff(),
            features: self.features.without_autodiff(),
            targets: self.targets.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for ClassifierOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl Adaptor<AccuracyInput> for ClassifierOutput {
    fn adapt(&self) -> AccuracyInput {
        AccuracyInput::new(self.logits.clone(), self.targets.clone())
    }
}

impl Adaptor<DeltaRInput> for ClassifierOutput {
    fn adapt(&self) -> DeltaRInput {
        DeltaRInput {
            features: self.features.clone(),
            targets: self.targets.clone(),
        }
    }
}

/// The features and classes a [`DeltaRMetric`] measures.
#[derive(Debug, Clone)]
pub struct DeltaRInput {
    /// `[b, d]`, unit rows.
    pub features: Tensor<2>,
    /// `[b]`.
    pub targets: Tensor<1, Int>,
}

/// The coding rate reduction ΔR = R − R_c of each batch's features under
/// its classes (REDUNET.md §2, the MCR² objective; exact, in nats), as a
/// burn-train metric: its running value is the mean over the epoch's
/// batches, weighted by their sizes.
#[derive(Clone)]
pub struct DeltaRMetric {
    eps_sq: f64,
    classes: usize,
    name: MetricName,
    state: NumericMetricState,
}

impl DeltaRMetric {
    /// ΔR with precision ε² `eps_sq` for `classes` classes.
    pub fn new(eps_sq: f64, classes: usize) -> Self {
        Self {
            eps_sq,
            classes,
            name: std::sync::Arc::new(format!("ΔR (ε² = {eps_sq})")),
            state: NumericMetricState::default(),
        }
    }
}

impl Metric for DeltaRMetric {
    type Input = DeltaRInput;

    fn update(
        &mut self,
        input: &DeltaRInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let [b, _] = input.features.dims();
        let labels: Vec<usize> = input
            .targets
            .clone()
            .into_data()
            .iter::<i64>()
            .map(|l| l as usize)
            .collect();
        let device = input.features.device();
        // A batch whose ΔR cannot be computed (a label out of range, a
        // non-finite feature) counts as NaN: visible, never a panic.
        let delta_r = Memberships::from_labels(&labels, self.classes, &device)
            .and_then(|pi| rate_reduction(&input.features, &pi, self.eps_sq))
            .map_or(f64::NAN, |r| r.delta_r);
        self.state.update(delta_r, b);
        Ok(self
            .state
            .compute_update(FormatOptions::new(self.name()).precision(3)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self
            .state
            .compute_final(FormatOptions::new(self.name()).precision(3)))
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("nats".into()),
            higher_is_better: true,
        }
        .into()
    }
}

impl Numeric for DeltaRMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

/// A batch of flattened images and their classes.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[b, n]`.
    pub images: Tensor<2>,
    /// `[b]`.
    pub targets: Tensor<1, Int>,
}

/// One sample: its flattened values and its class.
pub type ImageItem = (Vec<f32>, usize);

/// Stacks samples into an [`ImageBatch`] on the loader's device.
#[derive(Debug, Clone, Default)]
pub struct ImageBatcher;

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let b = items.len();
        let n = items.first().map_or(0, |(x, _)| x.len());
        let mut values = Vec::with_capacity(b * n);
        let mut targets = Vec::with_capacity(b);
        for (x, y) in items {
            values.extend(x);
            targets.push(y as i64);
        }
        ImageBatch {
            images: Tensor::from_data(TensorData::new(values, [b, n]), device),
            targets: Tensor::from_data(TensorData::new(targets, [b]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp::Mlp;

    trait ParamTensors {
        fn num_params_tensors(&self) -> usize;
    }

    impl<M: Module> ParamTensors for M {
        /// Parameter tensors of a module (what a gradient set covers).
        fn num_params_tensors(&self) -> usize {
            struct Count(usize);
            impl burn::module::ModuleVisitor for Count {
                fn visit_float<const D: usize>(&mut self, _: &burn::module::Param<Tensor<D>>) {
                    self.0 += 1;
                }
            }
            let mut c = Count(0);
            self.visit(&mut c);
            c.0
        }
    }

    /// A step gives the loss, logits and features of its batch and the
    /// gradients of every parameter; ΔR as a metric is the library's ΔR.
    #[test]
    fn a_step_trains_every_parameter_and_the_metric_is_delta_r() {
        let device = Device::default();
        let net = Mlp::new(12, 1, 8, 4, 0, &device);
        let model = Classifier::new(net, 3, 10.0, &device).train();
        let batch = ImageBatcher.batch(
            (0..9)
                .map(|i| ((0..12).map(|j| ((i * 7 + j) % 5) as f32).collect(), i % 3))
                .collect(),
            &device.clone().autodiff(),
        );
        let out = TrainStep::step(&model, batch);
        let loss = out.item.loss.clone().into_scalar::<f32>();
        assert!(loss.is_finite() && loss > 0.0, "{loss}");
        // Every parameter of the network and the head has its gradient.
        assert_eq!(out.grads.len(), model.num_params_tensors());
        let first = out.grads.get::<2>(model.net.layers[0].weight.id).unwrap();
        assert_eq!(first.dims(), [12, 8]);
        let item = ItemLazy::sync(out.item).unwrap();
        assert_eq!(item.features.dims(), [9, 4]);
        let mut metric = DeltaRMetric::new(0.5, 3);
        metric
            .update(
                &Adaptor::<DeltaRInput>::adapt(&item),
                &MetricMetadata {
                    progress: burn::data::dataloader::Progress {
                        items_processed: 1,
                        items_total: 1,
                        unit: None,
                    },
                    iteration: Some(0),
                    lr: None,
                },
            )
            .unwrap();
        let labels: Vec<usize> = (0..9).map(|i| i % 3).collect();
        let pi = Memberships::from_labels(&labels, 3, &item.features.device()).unwrap();
        let want = rate_reduction(&item.features, &pi, 0.5).unwrap().delta_r;
        let got = metric.value().unwrap().current();
        assert!((got - want).abs() < 1e-9, "{got} {want}");
    }
}
