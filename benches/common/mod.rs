//! What every benchmark reports beside its time: its effective GFLOP/s and
//! the fraction that is of this machine's sgemm peak, measured in the same
//! run, so the distance to the limit reads the same on any machine.

use burn::tensor::{Device, Distribution, Tensor};
use redunet::core::cpu::gemm::{Threads, View, matmul};
use redunet::core::host::to_vec;
use std::sync::OnceLock;
use std::time::Instant;

/// Median seconds of `runs` calls of `f` (after one warm-up call).
#[allow(dead_code)]
pub fn median_seconds(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

/// This machine's sgemm peak in GFLOP/s: the best large f32 product any
/// library here reaches (the gemm crate on all threads, as the host path
/// calls it, and flex's matmul), best of five, at a square size and at the
/// vector layer's forward shape. Measured once per run.
pub fn sgemm_peak() -> f64 {
    static PEAK: OnceLock<f64> = OnceLock::new();
    *PEAK.get_or_init(|| {
        let device = Device::default();
        let mut best: f64 = 0.0;
        for (m, k, n) in [(2048, 2048, 2048), (5000, 784, 7840)] {
            let flops = 2.0 * (m * k * n) as f64;
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1009) as f32 / 1009.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104729) % 997) as f32 / 997.0)
                .collect();
            let mut c = vec![0f32; m * n];
            let t = fastest(5, || {
                matmul(
                    &mut c,
                    n,
                    View::new(&a, m, k),
                    View::new(&b, k, n),
                    None,
                    Threads::All,
                )
            });
            best = best.max(flops / t / 1e9);
            let ta = Tensor::<2>::random([m, k], Distribution::Default, &device);
            let tb = Tensor::<2>::random([k, n], Distribution::Default, &device);
            let t = fastest(5, || {
                to_vec(ta.clone().matmul(tb.clone()).slice([0..1, 0..1])).unwrap();
            });
            best = best.max(flops / t / 1e9);
        }
        println!("sgemm peak of this machine, measured now: {best:.1} GFLOP/s");
        best
    })
}

fn fastest(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Times `f` (median of `runs`) and prints its effective rate for `flops`
/// of counted work beside the sgemm peak.
#[allow(dead_code)]
pub fn report(name: &str, flops: f64, runs: usize, mut f: impl FnMut()) {
    report_prepared(name, flops, runs, || (), |()| f());
}

/// [`report`] of `f` on an input that `prepare` makes afresh for each run,
/// outside the timing (e.g. a buffer the measured code consumes).
#[allow(dead_code)]
pub fn report_prepared<T>(
    name: &str,
    flops: f64,
    runs: usize,
    mut prepare: impl FnMut() -> T,
    mut f: impl FnMut(T),
) {
    let peak = sgemm_peak();
    f(prepare());
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let input = prepare();
            let s = Instant::now();
            f(input);
            s.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let t = times[runs / 2];
    let rate = flops / t / 1e9;
    println!(
        "{name}: {:.2} ms, {:.1} GFLOP counted, {rate:.1} GFLOP/s = {:.0}% of the sgemm peak ({peak:.1} GFLOP/s)",
        t * 1e3,
        flops / 1e9,
        100.0 * rate / peak
    );
}
