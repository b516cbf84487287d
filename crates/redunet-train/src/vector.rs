//! The vector ReduNet as a trainable Burn module: per layer, E and the C_j
//! (already scaled by α, α_j) are parameters, and the forward pass is the
//! layer's soft-membership update `normalize(z + η(zE − Σ_j γ_j π̂_j zC_j))`
//! of REDUNET.md §3, as tensor operations.

use crate::trainer::FeatureNet;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use redunet_core::layer::vector::normalize_rows;
use redunet_core::{
    Error, LayerRecord, Memberships, Result, VectorLayer, VectorLayerConfig, VectorReduNet,
};
use redunet_vision::lift::normals;

/// One layer's parameters: `E [d, d]` and `C [k', d, d]`.
#[derive(Module, Debug)]
pub struct VectorLayerParams {
    pub e: Param<Tensor<2>>,
    pub c: Param<Tensor<3>>,
}

/// What is fixed about a trainable vector network (saved in `model.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorShape {
    pub dim: usize,
    pub num_classes: usize,
    pub classes: Vec<Vec<usize>>,
    pub gammas: Vec<Vec<f64>>,
    pub config: VectorLayerConfig,
}

#[derive(Module, Debug)]
pub struct VectorReduNetModule {
    pub layers: Vec<VectorLayerParams>,
    #[module(skip)]
    pub shape: VectorShape,
}

impl VectorReduNetModule {
    /// Forward construction on `x: [m, d]` (rows normalised first).
    pub fn construct(
        x: &Tensor<2>,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        on_layer: impl FnMut(&LayerRecord),
    ) -> Result<(Self, Vec<LayerRecord>)> {
        let built = VectorReduNet::construct(x, pi, layers, config, on_layer)?;
        Ok((Self::from_network(&built.network)?, built.records))
    }

    /// The module holding the operators of a constructed network (the
    /// layers' settings must agree, as construction makes them).
    pub fn from_network(net: &VectorReduNet) -> Result<Self> {
        let first = net
            .layers()
            .first()
            .ok_or_else(|| Error::Empty("a network without layers".into()))?;
        let (d, config, num_classes) = (first.dim(), *first.config(), first.num_classes());
        let mut params = Vec::new();
        let (mut classes, mut gammas) = (Vec::new(), Vec::new());
        for layer in net.layers() {
            if *layer.config() != config || layer.num_classes() != num_classes {
                return Err(Error::Parameter(
                    "layers with different settings or class counts".into(),
                ));
            }
            params.push(VectorLayerParams {
                e: Param::from_tensor(layer.e()),
                c: Param::from_tensor(layer.c()),
            });
            classes.push(layer.classes().to_vec());
            gammas.push(layer.gamma().to_vec());
        }
        Ok(Self {
            layers: params,
            shape: VectorShape {
                dim: d,
                num_classes,
                classes,
                gammas,
                config,
            },
        })
    }

    /// Random start: E and C_j with N(0, s²/d) entries at the scales
    /// s = α = d/(mε²), α_j = d/(m_jε²) of forward construction, symmetrised
    /// (constructed operators are symmetric); γ_j = m_j/m.
    pub fn random(
        dim: usize,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let classes = pi.present();
        let counts = pi.counts();
        let m = pi.num_samples() as f64;
        let eps = config.eps_sq;
        let sym = |scale: f64, s: u64| -> Vec<f32> {
            let raw = normals(dim * dim, s);
            let mut v = vec![0f32; dim * dim];
            let sd = scale / (dim as f64).sqrt();
            for a in 0..dim {
                for b in 0..dim {
                    let x = (raw[a * dim + b] + raw[b * dim + a]) as f64 / 2f64.sqrt();
                    v[a * dim + b] = (x * sd) as f32;
                }
            }
            v
        };
        let mut params = Vec::with_capacity(layers);
        for l in 0..layers {
            let base = seed.wrapping_mul(1_000_003).wrapping_add(100 * l as u64);
            let e = sym(dim as f64 / (m * eps), base);
            let mut c = Vec::with_capacity(classes.len() * dim * dim);
            for (i, &j) in classes.iter().enumerate() {
                c.extend(sym(dim as f64 / (counts[j] * eps), base + 1 + i as u64));
            }
            params.push(VectorLayerParams {
                e: Param::from_tensor(Tensor::from_data(TensorData::new(e, [dim, dim]), device)),
                c: Param::from_tensor(Tensor::from_data(
                    TensorData::new(c, [classes.len(), dim, dim]),
                    device,
                )),
            });
        }
        let gamma: Vec<f64> = classes.iter().map(|&j| counts[j] / m).collect();
        Ok(Self {
            layers: params,
            shape: VectorShape {
                dim,
                num_classes: pi.num_classes(),
                classes: vec![classes; layers],
                gammas: vec![gamma; layers],
                config: *config,
            },
        })
    }

    fn layer(&self, l: usize, e: Tensor<2>, c: Tensor<3>) -> Result<VectorLayer> {
        VectorLayer::from_parts(
            e,
            c,
            self.shape.gammas[l].clone(),
            self.shape.classes[l].clone(),
            self.shape.num_classes,
            self.shape.config,
        )
    }
}

impl FeatureNet for VectorReduNetModule {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let mut z = normalize_rows(x);
        for (l, p) in self.layers.iter().enumerate() {
            let layer = self
                .layer(l, p.e.val(), p.c.val())
                .expect("parameters keep the shapes they were built with");
            z = layer.forward_trusted(&z);
        }
        z
    }

    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        let [m, d] = x.dims();
        if d != self.shape.dim {
            return Err(Error::Shape(format!(
                "the network takes inputs of length {}, got [{m}, {d}]",
                self.shape.dim
            )));
        }
        // The parameters are used where they are (the plain device, for a
        // module from `valid()` or loading): no host round trip.
        let mut layers = Vec::with_capacity(self.layers.len());
        for (l, p) in self.layers.iter().enumerate() {
            let (e, c) = (p.e.val().to_device(device), p.c.val().to_device(device));
            layers.push(self.layer(l, e, c)?);
        }
        VectorReduNet::from_layers(layers)?.transform(x)
    }

    fn feature_dim(&self) -> usize {
        self.shape.dim
    }
}
