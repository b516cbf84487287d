//! The vector baseline of the invariance experiments as one Burn module: a
//! [`FrontEnd`] (polar transform, images, lifting) whose signals `[m, C, T]`
//! are flattened to vectors of `C·T` and fed to a plain vector ReduNet. It
//! is what `redunet run` builds for `model.kind = "vector"` on signals, and
//! what its saved model applies to raw samples.

use crate::front::FrontEnd;
use burn::module::Module;
use burn::tensor::Tensor;
use redunet_core::{Result, VectorReduNet};

/// Front end + vector layers on the flattened signals.
#[derive(Module, Debug)]
pub struct SignalVectorReduNet {
    /// Raw samples to signals `[m, C, T]`.
    pub front: FrontEnd,
    /// The vector layers, of dimension `C·T`.
    pub net: VectorReduNet,
}

/// Signals `[m, C, T]` as vectors `[m, C·T]`.
pub fn flatten(x: Tensor<3>) -> Tensor<2> {
    let [m, c, t] = x.dims();
    x.reshape([m, c * t])
}

impl SignalVectorReduNet {
    /// Length of a flattened input sample.
    pub fn input_dim(&self) -> usize {
        self.front.sample_len()
    }

    /// Length of a feature vector, `C·T`.
    pub fn feature_dim(&self) -> usize {
        self.front.signal_len()
    }

    /// Features as differentiable tensor operations (unchecked).
    ///
    /// # Shapes
    /// - `x`: `[b, n]`, n the product of the front end's sample shape
    /// - output: `[b, C·T]`, unit rows
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let z = self
            .front
            .apply(x)
            .expect("inputs of the front end's sample shape");
        self.net.forward(flatten(z))
    }

    /// Features of raw samples `x: [b, n]`, checked (width, emptiness,
    /// finiteness): the front end, then the vector layers as construction
    /// applied them to the evaluation sets.
    pub fn transform(&self, x: &Tensor<2>) -> Result<Tensor<2>> {
        super::check_input(x, self.input_dim())?;
        let z = self.front.apply(x.clone())?;
        self.net.transform(&flatten(z))
    }
}
