//! The front ends keep the symmetries the invariant networks rely on.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use redunet_vision::lift::{Lift1d, Lift2d};
use redunet_vision::polar::Polar;
use redunet_vision::shift::{cyclic_shift, stride_grid, translate};

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

/// A smooth image given as a function of position relative to the centre,
/// rasterised after rotating the function by `phi`.
fn image(h: usize, w: usize, phi: f64) -> Vec<f32> {
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let (dy, dx) = (-(y as f64 - cy), x as f64 - cx);
            let r = (dx * dx + dy * dy).sqrt();
            let a = dy.atan2(dx) - phi;
            // Smooth, and rotating the function is exactly rotating the image.
            out[y * w + x] = ((0.3 * r).sin() * (2.0 * a).cos() + 0.1 * r) as f32;
        }
    }
    out
}

#[test]
fn rotation_by_one_angle_step_is_a_cyclic_shift() {
    // Sample the function directly on the polar grid of the rotated and the
    // unrotated image: the polar grid points of angle t+1 are the rotation by
    // 2π/T of those of angle t, so the signals differ by one cyclic step.
    let device = Device::default();
    let (h, w, t) = (28, 28, 200);
    let polar = Polar::new(h, w, 5, t, &device);
    // An image that is linear in x and y is reproduced exactly by bilinear
    // sampling, so rotation commutes with sampling up to rounding.
    let lin = |phi: f64| {
        let (cy, cx) = (13.5, 13.5);
        let mut v = vec![0f32; h * w];
        for y in 0..h {
            for x in 0..w {
                let (dy, dx) = (-(y as f64 - cy), x as f64 - cx);
                // Rotate the coordinates by −phi: the image rotated by phi.
                let (rx, ry) = (
                    dx * phi.cos() + dy * phi.sin(),
                    -dx * phi.sin() + dy * phi.cos(),
                );
                v[y * w + x] = (0.7 * rx - 0.4 * ry + 20.0) as f32;
            }
        }
        Tensor::<2>::from_data(TensorData::new(v, [1, h * w]), &device)
    };
    let step = std::f64::consts::TAU / t as f64;
    // Radii up to 11.2 stay inside the image for every angle.
    let polar = Polar::with_radii(h, w, polar.radii[..4].to_vec(), t, &device);
    let a = polar.apply(lin(0.0));
    let b = polar.apply(lin(step));
    let diff = max_abs_diff(cyclic_shift(a, 1), b);
    assert!(
        diff < 1e-3,
        "rotation by 2π/T is not a shift by one: {diff}"
    );
    // A smooth non-linear image: still a shift up to interpolation error.
    let img = |phi| Tensor::<2>::from_data(TensorData::new(image(h, w, phi), [1, h * w]), &device);
    let a = polar.apply(img(0.0));
    let b = polar.apply(img(3.0 * step));
    let shifted = max_abs_diff(cyclic_shift(a.clone(), 3), b.clone());
    let unshifted = max_abs_diff(a, b);
    assert!(
        shifted < 0.2 * unshifted,
        "shifted {shifted} vs unshifted {unshifted}"
    );
}

#[test]
fn lifting_commutes_with_shifts_and_is_seeded() {
    let device = Device::default();
    let x = Tensor::<3>::random([3, 2, 12], Distribution::Normal(0.0, 1.0), &device);
    let lift = Lift1d::random(5, 2, 9, 0, &device);
    assert_eq!(lift.apply(x.clone()).dims(), [3, 5, 12]);
    for s in [1, 5, 11] {
        let d = max_abs_diff(
            lift.apply(cyclic_shift(x.clone(), s)),
            cyclic_shift(lift.apply(x.clone()), s),
        );
        assert!(d < 1e-4, "shift {s}: {d}");
    }
    let again = Lift1d::random(5, 2, 9, 0, &device);
    assert_eq!(max_abs_diff(lift.kernels.val(), again.kernels.val()), 0.0);
    assert!(
        max_abs_diff(
            lift.kernels.val(),
            Lift1d::random(5, 2, 9, 1, &device).kernels.val()
        ) > 0.0
    );
    // ReLU output.
    assert!(lift.apply(x).min().into_scalar::<f32>() >= 0.0);

    let img = Tensor::<4>::random([2, 1, 10, 10], Distribution::Normal(0.0, 1.0), &device);
    let lift2 = Lift2d::random(4, 1, 9, 0, &device);
    assert_eq!(lift2.apply(img.clone()).dims(), [2, 4, 10, 10]);
    for (dy, dx) in [(0, 3), (7, 0), (4, 9)] {
        let d = max_abs_diff(
            lift2.apply(translate(img.clone(), dy, dx)),
            translate(lift2.apply(img.clone()), dy, dx),
        );
        assert!(d < 1e-4, "translation ({dy}, {dx}): {d}");
    }
}

#[test]
fn lifting_is_a_cross_correlation_with_trailing_circular_padding() {
    let device = Device::default();
    let x: Vec<f32> = vec![1.0, 2.0, -1.0, 0.5];
    let k: Vec<f32> = vec![0.5, -1.0, 2.0];
    let lift = Lift1d {
        kernels: burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(k.clone(), [1, 1, 3]),
            &device,
        )),
    };
    let out: Vec<f32> = lift
        .apply(Tensor::from_data(
            TensorData::new(x.clone(), [1, 1, 4]),
            &device,
        ))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for t in 0..4 {
        let v: f32 = (0..3).map(|j| k[j] * x[(t + j) % 4]).sum();
        assert!(
            (out[t] - v.max(0.0)).abs() < 1e-6,
            "t {t}: {} vs {}",
            out[t],
            v.max(0.0)
        );
    }
}

#[test]
fn shifts_wrap_and_grids_stride() {
    let device = Device::default();
    let x = Tensor::<3>::from_data(TensorData::new(vec![0f32, 1., 2., 3.], [1, 1, 4]), &device);
    let v: Vec<f32> = cyclic_shift(x.clone(), 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(v, vec![3., 0., 1., 2.]);
    let v: Vec<f32> = cyclic_shift(x, -1).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(v, vec![1., 2., 3., 0.]);
    assert_eq!(stride_grid(28, 7), vec![0, 7, 14, 21]);
    assert_eq!(stride_grid(200, 8).len(), 25);
}
