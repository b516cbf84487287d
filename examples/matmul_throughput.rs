//! f32 matrix-product throughput of each compiled CPU backend at the shapes a
//! vector ReduNet layer uses (m = 5000, d = 784, k = 10). This is how the
//! default backend was chosen.
//!
//! `cargo run --release --features ndarray --example matmul_throughput`

use burn::tensor::{Device, Distribution, Tensor};
use std::time::Instant;

fn bench(device: &Device, name: &str, a: [usize; 3], b: [usize; 3]) {
    let x = Tensor::<3>::random(a, Distribution::Normal(0.0, 1.0), device);
    let y = Tensor::<3>::random(b, Distribution::Normal(0.0, 1.0), device);
    let _ = x.clone().matmul(y.clone()).into_data();
    let reps = 3;
    let start = Instant::now();
    for _ in 0..reps {
        let _ = x.clone().matmul(y.clone()).into_data();
    }
    let s = start.elapsed().as_secs_f64() / reps as f64;
    let flops = 2.0 * (a[0] * a[1] * a[2] * b[2]) as f64;
    println!(
        "{name:8} {a:?} @ {b:?}: {:.1} ms, {:.0} GFLOP/s",
        1e3 * s,
        flops / s / 1e9
    );
}

fn main() {
    for name in redunet::devices::available() {
        if name == "wgpu" {
            continue;
        }
        let device = redunet::devices::by_name(name).expect("compiled backend");
        bench(&device, name, [1, 5000, 784], [1, 784, 7840]);
        bench(&device, name, [1, 784, 5000], [1, 5000, 784]);
        bench(&device, name, [10, 784, 500], [10, 500, 784]);
    }
}
