//! LISTA against ISTA (Gregor and LeCun, 2010): sparse codes of signals
//! `y = A x + noise` with a random Gaussian dictionary `A` (64 × 128),
//! codes with about 6 nonzeros N(0, 1). LISTA with K layers, initialised
//! as K ISTA steps, is trained by Adam on the codes (mean squared error);
//! the table compares its NMSE on held-out signals with ISTA after as many
//! iterations, and the last line says how many ISTA iterations reach
//! LISTA's NMSE with K = 16.
//!
//! `cargo run --release --example lista`

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use redunet::train::lista::{Lista, ista};

const M: usize = 64;
const N: usize = 128;
const LAMBDA: f64 = 0.05;

/// `b` codes with about 6 nonzeros, and their noisy signals.
fn data(a: &Tensor<2>, b: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let support = Tensor::<2>::random([b, N], Distribution::Uniform(0.0, 1.0), device)
        .lower_elem(6.0 / N as f32)
        .float();
    let x = Tensor::<2>::random([b, N], Distribution::Normal(0.0, 1.0), device) * support;
    let noise = Tensor::<2>::random([b, M], Distribution::Normal(0.0, 0.01), device);
    let y = x.clone().matmul(a.clone().transpose()) + noise;
    (x, y)
}

/// `10·log10(‖x̂ − x‖² / ‖x‖²)`.
fn nmse_db(estimate: Tensor<2>, x: &Tensor<2>) -> f64 {
    let err = (estimate - x.clone())
        .powi_scalar(2)
        .sum()
        .into_scalar::<f32>() as f64;
    let energy = x.clone().powi_scalar(2).sum().into_scalar::<f32>() as f64;
    10.0 * (err / energy).log10()
}

fn main() {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let device = Device::default();
    device.seed(0);
    // Unit-norm Gaussian atoms.
    let a = Tensor::<2>::random([M, N], Distribution::Normal(0.0, 1.0), &device);
    let a = a.clone() / a.powi_scalar(2).sum_dim(0).sqrt();
    let (x_test, y_test) = data(&a, 1000, &device);
    let ad = device.clone().autodiff();
    let a_ad = a.clone().to_device(&ad);

    println!("| K | ISTA, K iterations (dB) | LISTA, K layers (dB) |");
    println!("| --- | --- | --- |");
    let mut last = f64::NAN;
    for k in [4, 8, 16] {
        let mut net = Lista::from_ista(&a, LAMBDA, k, &ad);
        let mut optim = AdamConfig::new().init();
        let steps = 3000;
        // A cosine schedule from 2e-3 (burn-optim's).
        let mut schedule = CosineAnnealingLrSchedulerConfig::new(2e-3, steps)
            .init()
            .expect("a valid schedule");
        for _ in 0..steps {
            let lr = schedule.step().base();
            let (x, y) = data(&a_ad, 256, &ad);
            let loss = (net.forward(y) - x).powi_scalar(2).sum_dim(1).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(lr, net, grads);
        }
        let lista = nmse_db(net.valid().forward(y_test.clone()), &x_test);
        let ista_k = nmse_db(ista(&a, &y_test, LAMBDA, k), &x_test);
        println!("| {k} | {ista_k:.2} | {lista:.2} |");
        last = lista;
    }
    // ISTA iterations until it reaches LISTA's NMSE with K = 16.
    let mut iterations = None;
    for t in (16..=4000).step_by(16) {
        if nmse_db(ista(&a, &y_test, LAMBDA, t), &x_test) <= last {
            iterations = Some(t);
            break;
        }
    }
    let best = nmse_db(ista(&a, &y_test, LAMBDA, 4000), &x_test);
    println!("ISTA after 4000 iterations: {best:.2} dB");
    println!(
        "{}",
        serde_json::json!({
            "lista_layers": 16,
            "lista_nmse_db": (last * 100.0).round() / 100.0,
            "ista_iterations_to_match": iterations,
        })
    );
}
