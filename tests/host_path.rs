//! The host path (`redunet::core::cpu`, taken on flex) against the tensor
//! path it replaces on CPU devices. The tensor path still runs on every
//! other device; on flex's autodiff device (which the host path leaves
//! alone) it runs on the same CPU, so the two can be compared here.

use burn::tensor::{Device, Distribution, Tensor};
use redunet::core::host::to_vec;
use redunet::core::layer::vector::normalize_rows;
use redunet::core::linalg::spd_inverse_logdet;
use redunet::core::{
    Error, MembershipMode, Memberships, SecondMoments, VectorLayer, VectorLayerConfig,
    rate_reduction,
};

fn devices() -> (Device, Device) {
    let host = Device::default();
    (host.clone(), host.autodiff())
}

fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b
        .iter()
        .map(|v| v.abs() as f64)
        .fold(0.0, f64::max)
        .max(1e-12);
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
        / scale
}

/// `m` unit rows in `d` dimensions, three classes around separate means,
/// not grouped by class (so the host gathers each class's rows).
fn problem(m: usize, d: usize, device: &Device) -> (Tensor<2>, Vec<usize>) {
    let labels: Vec<usize> = (0..m).map(|i| (i * 7) % 3).collect();
    let noise = Tensor::<2>::random([m, d], Distribution::Normal(0.0, 1.0), &Device::default());
    let means = Tensor::<2>::random([3, d], Distribution::Normal(0.0, 3.0), &Device::default());
    let idx = redunet::core::host::indices(&labels, &Device::default());
    let z = normalize_rows(noise + means.select(0, idx));
    (Tensor::from_data(z.into_data(), device), labels)
}

#[test]
fn layers_built_and_applied_on_the_host_match_the_tensor_path() {
    let (host, tensor) = devices();
    // d above the base block, so the factorisation recurses twice.
    let (m, d) = (420, 150);
    let (z, labels) = problem(m, d, &host);
    for membership in [MembershipMode::Soft, MembershipMode::Labels] {
        let config = VectorLayerConfig {
            membership,
            ..Default::default()
        };
        let build = |device: &Device| {
            let z = Tensor::<2>::from_data(z.clone().into_data(), device);
            let pi = Memberships::from_labels(&labels, 3, device).unwrap();
            let (layer, rates) = VectorLayer::construct(&z, &pi, &config).unwrap();
            let out = layer.forward_train(&z, &pi).unwrap();
            let unlabelled = layer.forward(&z).unwrap();
            (
                to_vec(layer.e()).unwrap(),
                to_vec(layer.c()).unwrap(),
                rates,
                to_vec(out).unwrap(),
                to_vec(unlabelled).unwrap(),
            )
        };
        let (e1, c1, r1, o1, u1) = build(&host);
        let (e2, c2, r2, o2, u2) = build(&tensor);
        assert!(
            max_rel(&e1, &e2) < 1e-5,
            "E differs by {}",
            max_rel(&e1, &e2)
        );
        assert!(
            max_rel(&c1, &c2) < 1e-5,
            "C differs by {}",
            max_rel(&c1, &c2)
        );
        assert!((r1.delta_r - r2.delta_r).abs() < 1e-4 * r2.delta_r.abs());
        assert!((r1.r - r2.r).abs() < 1e-4 * r2.r.abs());
        assert!(
            max_rel(&o1, &o2) < 1e-5,
            "outputs differ by {}",
            max_rel(&o1, &o2)
        );
        assert!(
            max_rel(&u1, &u2) < 1e-5,
            "soft outputs differ by {}",
            max_rel(&u1, &u2)
        );
        // Unit rows out of the fused step.
        for row in u1.chunks(d) {
            let n: f64 = row.iter().map(|v| (*v as f64).powi(2)).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn networks_constructed_on_the_host_match_the_tensor_path() {
    // The host construction loop keeps features and operators in host
    // memory between layers; the tensor path (autodiff device) moves
    // through tensors. Labels and soft memberships, grouped or not.
    let (host, tensor) = devices();
    let (m, d, k, layers) = (360, 140, 3, 4);
    let (z, labels) = problem(m, d, &host);
    let logits = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 2.0), &host);
    let soft = to_vec(burn::tensor::activation::softmax(logits, 1)).unwrap();
    for use_soft in [false, true] {
        let build = |device: &Device| {
            let z = Tensor::<2>::from_data(z.clone().into_data(), device);
            let pi = if use_soft {
                Memberships::soft(Tensor::from_data(
                    burn::tensor::TensorData::new(soft.clone(), [m, k]),
                    device,
                ))
                .unwrap()
            } else {
                Memberships::from_labels(&labels, k, device).unwrap()
            };
            let built = redunet::core::VectorReduNet::construct(
                &z,
                &pi,
                layers,
                &VectorLayerConfig::default(),
                |_| {},
            )
            .unwrap();
            let last = built.network.layers().last().unwrap();
            (
                built.records,
                to_vec(built.features).unwrap(),
                to_vec(last.c()).unwrap(),
                built.network.layers().len(),
            )
        };
        let (r1, f1, c1, n1) = build(&host);
        let (r2, f2, c2, n2) = build(&tensor);
        assert_eq!((n1, r1.len()), (n2, r2.len()));
        assert_eq!(n1, layers);
        for (a, b) in r1.iter().zip(&r2) {
            assert_eq!(a.layer, b.layer);
            assert!(
                (a.delta_r - b.delta_r).abs() < 1e-4 * b.delta_r.abs().max(1.0),
                "soft {use_soft}, stage {}: ΔR {} vs {}",
                a.layer,
                a.delta_r,
                b.delta_r
            );
        }
        assert!(r1[layers].delta_r > r1[0].delta_r, "construction raises ΔR");
        assert!(
            max_rel(&f1, &f2) < 1e-4,
            "features differ by {}",
            max_rel(&f1, &f2)
        );
        assert!(
            max_rel(&c1, &c2) < 1e-4,
            "last C differs by {}",
            max_rel(&c1, &c2)
        );
    }
}

#[test]
fn the_last_record_is_the_one_the_next_layer_would_report() {
    // On the host (soft-membership layers) the last stage's rates come
    // from the log-determinants alone, of the same moments a next layer is
    // built from: the record after L layers is, bit for bit, the input
    // record of layer L + 1.
    let (host, _) = devices();
    let (m, d, k, layers) = (300, 140, 3, 2);
    let (z, labels) = problem(m, d, &host);
    let logits = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 2.0), &host);
    let soft = burn::tensor::activation::softmax(logits, 1);
    for use_soft in [false, true] {
        let pi = if use_soft {
            Memberships::soft(soft.clone()).unwrap()
        } else {
            Memberships::from_labels(&labels, k, &host).unwrap()
        };
        let records = |l: usize| {
            redunet::core::VectorReduNet::construct(
                &z,
                &pi,
                l,
                &VectorLayerConfig {
                    membership: MembershipMode::Soft,
                    ..Default::default()
                },
                |_| {},
            )
            .unwrap()
            .records
        };
        let (short, long) = (records(layers), records(layers + 1));
        let (a, b) = (&short[layers], &long[layers]);
        assert_eq!(
            (a.layer, a.r.to_bits(), a.r_c.to_bits()),
            (b.layer, b.r.to_bits(), b.r_c.to_bits()),
            "soft {use_soft}: {a:?} vs {b:?}"
        );
    }
}

#[test]
fn soft_memberships_give_the_same_moments_on_both_paths() {
    let (host, tensor) = devices();
    let (m, d, k) = (300, 70, 4);
    let (z, _) = problem(m, d, &host);
    let logits = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 2.0), &host);
    let pi = to_vec(burn::tensor::activation::softmax(logits, 1)).unwrap();
    let layer_on = |device: &Device| {
        let z = Tensor::<2>::from_data(z.clone().into_data(), device);
        let pi = Memberships::soft(Tensor::from_data(
            burn::tensor::TensorData::new(pi.clone(), [m, k]),
            device,
        ))
        .unwrap();
        let mut moments = SecondMoments::new(d, k);
        moments.add(&z, &pi).unwrap();
        let (layer, rates) = moments.layer(&VectorLayerConfig::default()).unwrap();
        (to_vec(layer.c()).unwrap(), rates)
    };
    let (c1, r1) = layer_on(&host);
    let (c2, r2) = layer_on(&tensor);
    assert!(
        max_rel(&c1, &c2) < 1e-5,
        "C differs by {}",
        max_rel(&c1, &c2)
    );
    assert!((r1.r_c - r2.r_c).abs() < 1e-4 * r2.r_c.abs());
}

#[test]
fn rates_and_spd_factorisations_agree_and_fail_alike() {
    let (host, tensor) = devices();
    let (z, labels) = problem(400, 130, &host);
    let rates = |device: &Device| {
        let z = Tensor::<2>::from_data(z.clone().into_data(), device);
        let pi = Memberships::from_labels(&labels, 3, device).unwrap();
        rate_reduction(&z, &pi, 0.5).unwrap()
    };
    let (a, b) = (rates(&host), rates(&tensor));
    assert!((a.r - b.r).abs() < 1e-5 * b.r, "{a:?} vs {b:?}");
    assert!((a.r_c - b.r_c).abs() < 1e-5 * b.r_c, "{a:?} vs {b:?}");

    // A batch whose second matrix is indefinite in its lower block: the
    // same typed error, naming the matrix, on both paths.
    // Large enough that the products with triangular factors split too.
    let n = 300;
    let x = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &host);
    let spd = x
        .clone()
        .transpose()
        .matmul(x)
        .add(Tensor::eye(n, &host).mul_scalar(n as f32));
    let mut bad = to_vec(spd.clone()).unwrap();
    bad[(n - 1) * n + n - 1] = -1e4;
    let mut batch = to_vec(spd).unwrap();
    batch.extend(bad);
    for device in [&host, &tensor] {
        let a = Tensor::<3>::from_data(
            burn::tensor::TensorData::new(batch.clone(), [2, n, n]),
            device,
        );
        match spd_inverse_logdet(a) {
            Err(Error::NotPositiveDefinite { index, .. }) => assert_eq!(index, 1),
            other => panic!(
                "expected NotPositiveDefinite, got {:?}",
                other.map(|(_, l)| l)
            ),
        }
    }
    let good = Tensor::<3>::from_data(
        burn::tensor::TensorData::new(batch[..n * n].to_vec(), [1, n, n]),
        &host,
    );
    let (inv_h, ld_h) = spd_inverse_logdet(good.clone()).unwrap();
    let (inv_t, ld_t) = spd_inverse_logdet(Tensor::from_data(good.into_data(), &tensor)).unwrap();
    assert!((ld_h[0] - ld_t[0]).abs() < 1e-6 * ld_t[0].abs());
    let (ih, it) = (to_vec(inv_h).unwrap(), to_vec(inv_t).unwrap());
    assert!(max_rel(&ih, &it) < 1e-5);
}

/// Spectral layers: moments summed on the host (two batches, one of them
/// handed over), the layer built from them and its fused step, against the
/// tensor path, for labels grouped by class or not and soft memberships;
/// and moments of both paths merged.
#[test]
fn spectral_layers_on_the_host_match_the_tensor_path() {
    use redunet::vision::spectral::{Dft, SpectralMoments, Spectrum};
    let (host, tensor) = devices();
    let (m, c, k) = (90, 3, 3);
    let z = Tensor::<3>::random([m, c, 16], Distribution::Normal(0.0, 1.0), &host);
    let z = to_vec(z).unwrap();
    let logits = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 2.0), &host);
    let soft = to_vec(burn::tensor::activation::softmax(logits, 1)).unwrap();
    let grouped: Vec<usize> = (0..m).map(|i| i * k / m).collect();
    let scattered: Vec<usize> = (0..m).map(|i| (i * 7) % k).collect();
    let memberships = |case: usize, device: &Device| match case {
        0 => Memberships::from_labels(&grouped, k, device).unwrap(),
        1 => Memberships::from_labels(&scattered, k, device).unwrap(),
        _ => Memberships::soft(Tensor::from_data(
            burn::tensor::TensorData::new(soft.clone(), [m, k]),
            device,
        ))
        .unwrap(),
    };
    for case in 0..3 {
        for membership in [MembershipMode::Soft, MembershipMode::Labels] {
            let config = VectorLayerConfig {
                membership,
                ..Default::default()
            };
            let on = |device: &Device| {
                let dft = Dft::new_2d(4, 4, device).unwrap();
                let signals = Tensor::<3>::from_data(
                    burn::tensor::TensorData::new(z.clone(), [m, c, 16]),
                    device,
                );
                let s = dft.normalize(dft.spectrum(&signals));
                let pi = memberships(case, device);
                let [p, c2, _] = s.x.dims();
                let mut moments = SpectralMoments::new(c, p, k);
                let first = Spectrum {
                    x: s.x.clone().slice([0..p, 0..c2, 0..40]),
                };
                moments.add(&first, &pi.rows(0, 40).unwrap()).unwrap();
                let rest = Spectrum {
                    x: s.x.clone().slice([0..p, 0..c2, 40..m]),
                };
                moments.add_owned(rest, &pi.rows(40, m).unwrap()).unwrap();
                let (layer, rates) = moments.layer(&config, &dft).unwrap();
                let out = to_vec(layer.step(s, Some(&pi)).x).unwrap();
                (moments, rates, out, to_vec(layer.layer().re.val()).unwrap())
            };
            let (mh, rh, oh, eh) = on(&host);
            let (mt, rt, ot, et) = on(&tensor);
            let what = format!("case {case}, {membership:?}");
            for (a, b) in [(rh.r, rt.r), (rh.r_c, rt.r_c)] {
                assert!((a - b).abs() < 1e-5 * b.abs(), "{what}: rates {a} vs {b}");
            }
            assert!(
                max_rel(&eh, &et) < 1e-5,
                "{what}: operators differ by {}",
                max_rel(&eh, &et)
            );
            assert!(
                max_rel(&oh, &ot) < 1e-5,
                "{what}: steps differ by {}",
                max_rel(&oh, &ot)
            );
            // Host sums and tensor sums merge into the sums of both.
            let dft = Dft::new_2d(4, 4, &host).unwrap();
            let mut merged = mh.clone();
            merged.merge(mt.to_device(&host)).unwrap();
            let mut twice = mh.clone();
            twice.merge(mh).unwrap();
            let (_, a) = merged.layer(&config, &dft).unwrap();
            let (_, b) = twice.layer(&config, &dft).unwrap();
            assert!(
                (a.r - b.r).abs() < 1e-5 * b.r.abs(),
                "{what}: merged {} vs {}",
                a.r,
                b.r
            );
        }
    }
}

#[test]
fn the_dft_on_the_host_is_the_tensor_path_bit_for_bit() {
    use redunet::vision::spectral::{Dft, Spectrum};
    let (host, tensor) = devices();
    // Images (odd and even sides) and 1D signals, several channels.
    for (h, w, c, m) in [(6, 5, 3, 21), (4, 8, 2, 17), (1, 30, 4, 19), (1, 7, 1, 3)] {
        let z = Tensor::<3>::random([m, c, h * w], Distribution::Normal(0.0, 1.0), &host);
        let z = to_vec(z).unwrap();
        let on = |device: &Device| {
            let dft = Dft::new_2d(h, w, device).unwrap();
            let signals = Tensor::<3>::from_data(
                burn::tensor::TensorData::new(z.clone(), [m, c, h * w]),
                device,
            );
            let s = dft.spectrum(&signals);
            let x = to_vec(s.x.clone()).unwrap();
            // Back from a spectrum that is not one of the transform's own.
            let y = Spectrum {
                x: s.x.clone() * 0.5 + s.x.clone().powi_scalar(2),
            };
            let back = to_vec(dft.signals(s)).unwrap();
            (x, back, to_vec(dft.signals(y)).unwrap())
        };
        let (a, b) = (on(&host), on(&tensor));
        assert!(a.0 == b.0, "spectra of {h}×{w}, C {c}, m {m}");
        assert!(a.1 == b.1, "signals back, {h}×{w}");
        assert!(a.2 == b.2, "signals of another spectrum, {h}×{w}");
        assert!(max_rel(&a.1, &z) < 1e-5, "round trip of {h}×{w}");
    }
}

#[test]
fn lifting_on_the_host_is_the_tensor_path_bit_for_bit() {
    use redunet::vision::lift::Lift2d;
    let (host, tensor) = devices();
    // Widths below, at and across the 16-column vectors; kernels larger
    // than the image; channel blocks full and partial.
    for (m, c_in, c_out, h, w, k) in [
        (3, 1, 16, 28, 28, 9),
        (2, 3, 5, 7, 17, 3),
        (2, 4, 9, 5, 4, 7),
        (1, 2, 1, 16, 33, 1),
    ] {
        let x = Tensor::<4>::random([m, c_in, h, w], Distribution::Normal(0.0, 1.0), &host);
        let x = to_vec(x).unwrap();
        let on = |device: &Device| {
            let lift = Lift2d::random(c_out, c_in, k, 5, device);
            let x = Tensor::<4>::from_data(
                burn::tensor::TensorData::new(x.clone(), [m, c_in, h, w]),
                device,
            );
            to_vec(lift.apply(x)).unwrap()
        };
        let (a, b) = (on(&host), on(&tensor));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&a),
            bits(&b),
            "[{m}, {c_in}, {h}, {w}] → {c_out} channels, k {k}"
        );
        assert!(a.iter().any(|&v| v > 0.0) && a.contains(&0.0));
    }
}

/// Training hands the lifting a plain batch (a tensor moved to the
/// autodiff device keeps its own association) and tracked kernels: the
/// kernels must get their gradient, equal to the one of a tracked batch.
#[test]
fn lifting_kernels_get_gradients_from_a_plain_batch() {
    use burn::module::Param;
    use redunet::vision::lift::Lift2d;
    let (host, tensor) = devices();
    let x = Tensor::<4>::random([2, 1, 9, 9], Distribution::Normal(0.0, 1.0), &host);
    let grad = |x: Tensor<4>| {
        let lift = Lift2d::random(4, 1, 3, 7, &tensor);
        let kernels = lift.kernels.val().require_grad();
        let lift = Lift2d {
            kernels: Param::from_tensor(kernels.clone()),
        };
        let grads = lift.apply(x).powi_scalar(2).sum().backward();
        kernels.grad(&grads).map(|g| to_vec(g).unwrap())
    };
    let plain = grad(x.clone().to_device(&tensor));
    let tracked = grad(x.autodiff());
    let plain = plain.expect("the kernels of a plain batch have a gradient");
    assert!(plain.iter().any(|&g| g != 0.0));
    assert_eq!(Some(plain), tracked);
}

#[test]
fn empty_batches_pass_through_the_host_transform_and_lifting() {
    use redunet::vision::lift::Lift2d;
    use redunet::vision::spectral::Dft;
    let (host, _) = devices();
    for (m, c) in [(0, 3), (4, 0)] {
        let dft = Dft::new_2d(4, 6, &host).unwrap();
        let s = dft.spectrum(&Tensor::<3>::zeros([m, c, 24], &host));
        assert_eq!(s.x.dims(), [dft.frequencies(), 2 * c, m]);
        assert_eq!(dft.signals(s).dims(), [m, c, 24]);
    }
    let y = Lift2d::random(3, 1, 3, 0, &host).apply(Tensor::<4>::zeros([0, 1, 5, 5], &host));
    assert_eq!(y.dims(), [0, 3, 5, 5]);
}

#[test]
fn knn_agrees_on_every_path_ties_and_bad_queries_included() {
    use rand::{Rng, SeedableRng};
    use redunet::core::classify::Knn;
    use redunet::core::host::tensor;
    let (host_device, autodiff) = devices();
    // Few distinct small-integer rows: many exactly equal similarities, so
    // which of equally near samples count decides the votes.
    let (m, dim) = (1200, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut pick = |n: usize| -> Vec<f32> {
        (0..n * dim)
            .map(|_| rng.random_range(0..3) as f32 - 1.0)
            .collect()
    };
    let (train, test) = (pick(m), pick(300));
    let labels: Vec<usize> = (0..m).map(|i| (i * 7) % 5).collect();
    let on = |device: &Device| {
        let knn = Knn::fit(&tensor(train.clone(), [m, dim], device), &labels, 7).unwrap();
        (
            knn.predict(&tensor(test.clone(), [300, dim], device))
                .unwrap(),
            // The training rows themselves (each pair's similarity once).
            knn.predict(&tensor(train.clone(), [m, dim], device))
                .unwrap(),
        )
    };
    let host = on(&host_device);
    // On an autodiff device the similarities are the device's products,
    // searched row by row.
    assert_eq!(host, on(&autodiff));
    // The same training rows, one value nudged: the general search.
    let mut nudged = train.clone();
    nudged[0] = f32::from_bits(nudged[0].to_bits() ^ 1);
    let knn = Knn::fit(&tensor(train.clone(), [m, dim], &host_device), &labels, 7).unwrap();
    let general = knn
        .predict(&tensor(nudged, [m, dim], &host_device))
        .unwrap();
    assert_eq!(general[1..], host.1[1..]);
    let mut bad = test.clone();
    bad[5] = f32::NAN;
    assert!(matches!(
        knn.predict(&tensor(bad, [300, dim], &host_device)),
        Err(Error::NonFinite(_))
    ));
}
