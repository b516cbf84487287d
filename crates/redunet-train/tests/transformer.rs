//! CRATE and the plain transformer: the layers compute the formulas of
//! REDUNET.md §7, the parameter counts the model format checks are exact,
//! patches are cut in image order, the per-layer measurements are the
//! coding rates they claim to be, and a saved transformer is the network
//! it was saved from.

#[allow(dead_code)]
mod common;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use common::{gaussian, values};
use redunet_core::Error;
use redunet_train::trainer::FeatureNet;
use redunet_train::transformer::{Mixer, TokenLayer, TransformerShape};
use redunet_train::{Network, SavedModel};

fn shape(mixer: Mixer) -> TransformerShape {
    TransformerShape {
        mixer,
        image: [2, 8, 12],
        patch: 4,
        dim: 12,
        depth: 3,
        heads: 3,
    }
}

const CRATE: Mixer = Mixer::Crate {
    step: 0.1,
    lambda: 0.1,
};
const SOFTMAX: Mixer = Mixer::Softmax { mlp_width: 20 };

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{i}: {x} vs {y}");
    }
}

#[test]
fn parameter_counts_are_exact() {
    let d = Device::default();
    for mixer in [CRATE, SOFTMAX] {
        let s = shape(mixer);
        let (front, layers) = s.validate().unwrap();
        let net = s.init(1, &d).unwrap();
        assert_eq!(front, net.embed.num_params(), "{mixer:?}");
        for (l, &n) in net.layers.iter().zip(&layers) {
            assert_eq!(n, l.num_params(), "{mixer:?}");
        }
        assert_eq!(net.shape().unwrap(), s);
    }
}

#[test]
fn bad_shapes_are_refused() {
    let d = Device::default();
    let bad = [
        TransformerShape {
            patch: 5,
            ..shape(CRATE)
        },
        TransformerShape {
            heads: 5,
            ..shape(CRATE)
        },
        TransformerShape {
            depth: 0,
            ..shape(CRATE)
        },
        TransformerShape {
            image: [0, 8, 12],
            ..shape(CRATE)
        },
        TransformerShape {
            mixer: Mixer::Crate {
                step: f64::NAN,
                lambda: 0.1,
            },
            ..shape(CRATE)
        },
        TransformerShape {
            mixer: Mixer::Crate {
                step: 0.1,
                lambda: -1.0,
            },
            ..shape(CRATE)
        },
        TransformerShape {
            mixer: Mixer::Softmax { mlp_width: 0 },
            ..shape(CRATE)
        },
        // Counts that would overflow (a forged model.json): refused.
        TransformerShape {
            image: [1 << 20, 1 << 20, 1 << 20],
            patch: 1 << 10,
            dim: 1 << 20,
            heads: 1,
            ..shape(CRATE)
        },
        TransformerShape {
            image: [1, 1 << 21, 8],
            ..shape(CRATE)
        },
    ];
    let huge = bad[7].validate().unwrap_err();
    assert!(huge.contains("parameters"), "{huge}");
    for s in bad {
        assert!(s.validate().is_err(), "{s:?}");
        assert!(matches!(s.init(0, &d), Err(Error::Parameter(_))), "{s:?}");
    }
}

#[test]
fn patches_are_cut_in_image_order() {
    // Each pixel holds (channel, patch row, patch column, row in patch,
    // column in patch) in its digits; the patch embedding's input must be
    // the patches in raster order, each (row, column, channel)-major.
    let d = Device::default();
    let s = shape(CRATE);
    let [c, h, w] = s.image;
    let p = s.patch;
    let mut img = vec![0f32; c * h * w];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                img[(ch * h + y) * w + x] =
                    (ch * 10000 + (y / p) * 1000 + (x / p) * 100 + (y % p) * 10 + x % p) as f32;
            }
        }
    }
    let x = Tensor::<2>::from_data(TensorData::new(img, [1, c * h * w]), &d);
    let patches = values(
        x.reshape([1, c, h / p, p, w / p, p])
            .permute([0, 2, 4, 3, 5, 1])
            .reshape([1, (h / p) * (w / p), p * p * c]),
    );
    let mut want = Vec::new();
    for gy in 0..h / p {
        for gx in 0..w / p {
            for y in 0..p {
                for x in 0..p {
                    for ch in 0..c {
                        want.push((ch * 10000 + gy * 1000 + gx * 100 + y * 10 + x) as f32);
                    }
                }
            }
        }
    }
    assert_eq!(patches, want);
    // The embedding itself gives N + 1 tokens of width d.
    let net = s.init(0, &d).unwrap();
    assert_eq!(
        net.embed.forward(gaussian(3, c * h * w, 1, &d)).dims(),
        [3, (h / p) * (w / p) + 1, s.dim]
    );
}

#[test]
fn crate_layer_is_the_formula() {
    let d = Device::default();
    let s = shape(CRATE);
    let net = s.init(3, &d).unwrap();
    let TokenLayer::Crate(layer) = &net.layers[0] else {
        panic!("a CRATE layer")
    };
    let (b, n, dim, k) = (2, 5, s.dim, s.heads);
    let p = dim / k;
    let z = gaussian(b * n, dim, 4, &d).reshape([b, n, dim]);
    let got = values(layer.forward(z.clone()));
    // By hand, one sample and one head at a time on 2D tensors.
    let ln = |x: Tensor<2>| -> Tensor<2> {
        let mean = x.clone().mean_dim(1);
        let c = x - mean;
        let var = c.clone().powi_scalar(2).mean_dim(1);
        c / (var + 1e-5).sqrt()
    };
    let a = &layer.attention;
    let u = a.subspaces.weight.val();
    let (wo, bo) = (a.output.weight.val(), a.output.bias.as_ref().unwrap().val());
    let dict = layer.ista.dictionary.val();
    let (eta, lambda) = (0.1f32, 0.1f32);
    let mut want = Vec::new();
    for i in 0..b {
        let zi = z.clone().slice([i..i + 1, 0..n, 0..dim]).reshape([n, dim]);
        // Fresh LayerNorms have unit scale and zero shift.
        let proj = ln(zi.clone()).matmul(u.clone());
        let heads: Vec<Tensor<2>> = (0..k)
            .map(|h| {
                let ph = proj.clone().slice([0..n, h * p..(h + 1) * p]);
                let att = softmax(
                    ph.clone()
                        .matmul(ph.clone().transpose())
                        .div_scalar((p as f32).sqrt()),
                    1,
                );
                att.matmul(ph)
            })
            .collect();
        let half = zi + Tensor::cat(heads, 1).matmul(wo.clone()) + bo.clone().unsqueeze();
        let y = ln(half);
        let step = y.clone().matmul(dict.clone())
            - y.clone()
                .matmul(dict.clone().transpose())
                .matmul(dict.clone());
        let out = (y + step.mul_scalar(eta) - eta * lambda).clamp_min(0.0);
        want.extend(values(out));
    }
    close(&got, &want, 2e-4);
}

#[test]
fn layer_rates_measure_the_coding_rate_and_the_zeros() {
    let d = Device::default();
    let s = shape(CRATE);
    let [c, h, w] = s.image;
    let net = s.init(5, &d).unwrap();
    let x = gaussian(6, c * h * w, 6, &d);
    let eps_sq = 0.5;
    let rates = net.layer_rates(&x, eps_sq).unwrap();
    assert_eq!(rates.len(), s.depth);
    // Layer 1's input rate, by hand: Σ_k ½ logdet(I + p/(n ε²) PᵀP) of
    // each sample's projections, averaged.
    let TokenLayer::Crate(first) = &net.layers[0] else {
        panic!("a CRATE layer")
    };
    let tokens = net.embed.forward(x.clone());
    let proj = first.attention.projections(tokens.clone());
    let [b, k, n, p] = proj.dims();
    let mut total = 0.0;
    for i in 0..b {
        for hd in 0..k {
            let ph = proj
                .clone()
                .slice([i..i + 1, hd..hd + 1, 0..n, 0..p])
                .reshape([n, p]);
            total += redunet_core::rates::coding_rate(&ph, eps_sq).unwrap();
        }
    }
    let want = total / b as f64;
    assert!(
        (rates[0].compression_in - want).abs() < 1e-3 * want.abs(),
        "{} vs {want}",
        rates[0].compression_in
    );
    // The sparsity of layer 1 is the fraction of zeros of its output.
    let out = values(first.forward(tokens));
    let zeros = out.iter().filter(|v| **v == 0.0).count() as f64 / out.len() as f64;
    assert!((rates[0].sparsity - zeros).abs() < 1e-6);
    for r in &rates {
        assert!(
            r.compression.is_finite() && (0.0..=1.0).contains(&r.sparsity),
            "{r:?}"
        );
    }
    // A plain transformer has nothing of the kind to measure.
    let plain = shape(SOFTMAX).init(5, &d).unwrap();
    assert!(plain.layer_rates(&x, eps_sq).unwrap().is_empty());
    // Inputs of the wrong width or with NaN are typed errors.
    assert!(matches!(
        net.layer_rates(&gaussian(2, 7, 1, &d), eps_sq),
        Err(Error::Shape(_))
    ));
    let nan = Tensor::<2>::full([1, c * h * w], f32::NAN, &d);
    assert!(net.features_eval(&nan, &d).is_err());
}

#[test]
fn saved_transformers_round_trip() {
    let d = Device::default();
    for mixer in [CRATE, SOFTMAX] {
        let s = shape(mixer);
        let [c, h, w] = s.image;
        let net = s.init(7, &d).unwrap();
        let x = gaussian(4, c * h * w, 8, &d);
        let want = values(net.features_eval(&x, &d).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net");
        SavedModel::new(Network::Transformer(net))
            .save(&path)
            .unwrap();
        let loaded = SavedModel::load(&path, &d).unwrap();
        assert!(matches!(loaded.trainee.net, Network::Transformer(_)));
        close(&values(loaded.transform(&x).unwrap()), &want, 1e-6);
        // A layer file of another architecture is refused, not misread:
        // first by its checksum, then — with the checksums forged to match —
        // by its parameters' shapes.
        let other = TransformerShape {
            dim: 24,
            ..s.clone()
        }
        .init(1, &d)
        .unwrap();
        other.layers[0]
            .clone()
            .save_file(path.join("layer-0002.bpk"))
            .unwrap();
        assert!(SavedModel::load(&path, &d).is_err(), "{mixer:?}");
        redunet_data::output::seal(&path).unwrap();
        match SavedModel::load(&path, &d) {
            Err(Error::CorruptModel { path: p, .. }) => {
                assert!(p.ends_with("layer-0002.bpk"), "{p:?}")
            }
            other => panic!("{mixer:?}: {:?}", other.map(|_| ())),
        }
    }
}
