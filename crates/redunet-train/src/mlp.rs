//! A multi-layer perceptron feature extractor: hidden layers of ReLU units,
//! then a linear map to `d` features normalised to the unit sphere (the
//! feature geometry MCR² is defined on).

use crate::trainer::FeatureNet;
use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use redunet_core::layer::vector::normalize_rows;
use redunet_core::{Error, Result};
use redunet_vision::lift::normals;

#[derive(Module, Debug)]
/// A fully connected layer `x W + b`.
pub struct Dense {
    /// `[in, out]`.
    pub weight: Param<Tensor<2>>,
    /// `[1, out]`.
    pub bias: Param<Tensor<2>>,
}

#[derive(Module, Debug)]
/// A multi-layer perceptron feature extractor: dense layers with ReLU between them, unit-norm features out.
pub struct Mlp {
    /// The dense layers, input to output.
    pub layers: Vec<Dense>,
}

impl Mlp {
    /// `input → width (×hidden) → out_dim`, He-normal weights from `seed`,
    /// zero biases.
    pub fn new(
        input: usize,
        hidden: usize,
        width: usize,
        out_dim: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut dims = vec![input];
        dims.extend(std::iter::repeat_n(width, hidden));
        dims.push(out_dim);
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let (a, b) = (w[0], w[1]);
                let sd = (2.0 / a as f64).sqrt() as f32;
                let v: Vec<f32> = normals(a * b, seed.wrapping_mul(7919).wrapping_add(i as u64))
                    .into_iter()
                    .map(|x| x * sd)
                    .collect();
                Dense {
                    weight: Param::from_tensor(Tensor::from_data(
                        TensorData::new(v, [a, b]),
                        device,
                    )),
                    bias: Param::from_tensor(Tensor::zeros([1, b], device)),
                }
            })
            .collect();
        Self { layers }
    }

    /// Layer widths, input first.
    pub fn dims(&self) -> Vec<usize> {
        let mut d: Vec<usize> = self.layers.iter().map(|l| l.weight.dims()[0]).collect();
        d.extend(self.layers.last().map(|l| l.weight.dims()[1]));
        d
    }

    fn input_dim(&self) -> usize {
        self.layers[0].weight.val().dims()[0]
    }
}

impl FeatureNet for Mlp {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, l) in self.layers.iter().enumerate() {
            h = h.matmul(l.weight.val()) + l.bias.val();
            if i < last {
                h = relu(h);
            }
        }
        normalize_rows(h)
    }

    fn features_eval(&self, x: &Tensor<2>, _device: &Device) -> Result<Tensor<2>> {
        let [m, d] = x.dims();
        if d != self.input_dim() {
            return Err(Error::Shape(format!(
                "the network takes inputs of length {}, got [{m}, {d}]",
                self.input_dim()
            )));
        }
        redunet_core::host::check_finite(x, "network input")?;
        let parts: Vec<Tensor<2>> = (0..m)
            .step_by(4096)
            .map(|a| self.features(x.clone().slice([a..(a + 4096).min(m), 0..d])))
            .collect();
        Ok(Tensor::cat(parts, 0))
    }

    fn feature_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.weight.val().dims()[1])
    }
}
