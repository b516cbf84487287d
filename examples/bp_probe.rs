use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use redunet::core::burn;
use redunet::core::classify::{accuracy, knn_predict, nearest_subspace_predict};
use redunet::core::host::tensor;
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use redunet::train::spectral::{LiftInit, SpectralReduNet};
use std::time::Instant;

#[derive(Module, Debug)]
struct Model {
    net: SpectralReduNet,
    head: Param<Tensor<2>>,
}

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let per: usize = env("PER", 50);
    let layers: usize = env("L", 30);
    let ch: usize = env("C", 16);
    let epochs: usize = env("EPOCHS", 3);
    let bs: usize = env("BS", 50);
    let lr: f64 = env("LR", 1e-3);
    let random = std::env::var("RAND_INIT").is_ok();
    let data = builtin::mnist().unwrap();
    let split = per_class_split(&data, None, per, env("TEST", 200)).unwrap();
    let base = Device::default();
    let ad = base.clone().autodiff();
    let m = split.train.len();
    let xtr = tensor(split.train.features.clone(), [m, 784], &base);
    let nt = split.test.len();
    let xte = tensor(split.test.features.clone(), [nt, 784], &base);
    let pi = Memberships::from_labels(&split.train.labels, 10, &base).unwrap();
    let cfg = VectorLayerConfig {
        membership: if std::env::var("LABELS").is_ok() {
            MembershipMode::Labels
        } else {
            MembershipMode::Soft
        },
        eta: env("ETA", 0.5),
        eps_sq: env("EPS", 0.1),
        lambda: env("LAMBDA", 500.0),
    };
    let lift = Some(LiftInit {
        out_channels: ch,
        kernel_size: 9,
        seed: 0,
    });
    let t = Instant::now();
    let net = if random {
        SpectralReduNet::random((28, 28, 1), lift, &pi, layers, &cfg, 0, &base).unwrap()
    } else {
        SpectralReduNet::construct(&xtr, (28, 28, 1), lift, &pi, layers, &cfg, |_| {})
            .unwrap()
            .0
    };
    println!("init {:.1} s", t.elapsed().as_secs_f64());
    let eval = |net: &SpectralReduNet| {
        let t = Instant::now();
        let ftr = net.features_eval(&xtr, &base).unwrap();
        let fte = net.features_eval(&xte, &base).unwrap();
        let ns = accuracy(
            &nearest_subspace_predict(&ftr, &split.train.labels, &fte, 10).unwrap(),
            &split.test.labels,
        );
        let knn = accuracy(
            &knn_predict(&ftr, &split.train.labels, &fte, 5).unwrap(),
            &split.test.labels,
        );
        println!(
            "  eval: test NS {ns:.4} kNN {knn:.4} ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    };
    eval(&net);
    let d = net.feature_dim();
    let mut model = Model {
        net,
        head: Param::from_tensor(Tensor::<2>::zeros([d, 10], &base)),
    }
    .train();
    let mut opt = AdamConfig::new().init();
    let labels = &split.train.labels;
    for ep in 0..epochs {
        let t = Instant::now();
        let mut order: Vec<usize> = (0..m).collect();
        // deterministic shuffle
        let mut s = 12345u64 + ep as u64;
        for i in (1..m).rev() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let j = (s >> 33) as usize % (i + 1);
            order.swap(i, j);
        }
        let mut tot = 0.0;
        for b in order.chunks(bs) {
            let idx = Tensor::<1, Int>::from_data(
                TensorData::new(b.iter().map(|&i| i as i64).collect::<Vec<_>>(), [b.len()]),
                &ad,
            );
            let x = xtr.clone().to_device(&ad).select(0, idx);
            let f = model.net.features(x);
            let logits = f.matmul(model.head.val()).mul_scalar(env("TEMP", 10.0f32));
            let y: Vec<f32> = b
                .iter()
                .flat_map(|&i| (0..10).map(move |c| if labels[i] == c { 1.0 } else { 0.0 }))
                .collect();
            let y = Tensor::<2>::from_data(TensorData::new(y, [b.len(), 10]), &ad);
            let loss = (log_softmax(logits, 1) * y)
                .sum()
                .neg()
                .div_scalar(b.len() as f32);
            tot += loss.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = opt.step(lr, model, grads);
        }
        println!(
            "epoch {ep}: loss {:.4} ({:.1} s)",
            tot / (m / bs) as f64,
            t.elapsed().as_secs_f64()
        );
        if ep + 1 == epochs || (ep + 1) % env("EVERY", 5) == 0 {
            eval(&model.net);
        }
    }
}
