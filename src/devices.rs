//! Choosing a Burn device by name, as the command line does.

use burn::tensor::Device;

/// Backends compiled into this build.
pub fn available() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push("flex");
    }
    if cfg!(feature = "ndarray") {
        v.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    v
}

/// The device named `name` (`flex`, `ndarray` or `wgpu`), if this build has
/// its backend. For wgpu this also checks that an adapter can be opened, so
/// that a missing GPU driver is an error here rather than a panic later.
pub fn by_name(name: &str) -> Result<Device, String> {
    let unavailable = || {
        format!(
            "device '{name}' is not available in this build (compiled: {}); \
             rebuild with `--features {name}`",
            available().join(", ")
        )
    };
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
            // Opening the adapter panics inside wgpu when none exists; turn
            // that into an error message.
            let probe = device.clone();
            let opened = std::panic::catch_unwind(move || {
                burn::tensor::Tensor::<1>::ones([2], &probe)
                    .try_into_data()
                    .is_ok()
            });
            match opened {
                Ok(true) => Ok(device),
                _ => Err("device 'wgpu' could not be opened: no usable GPU adapter \
                          (on Linux without a GPU, install mesa-vulkan-drivers and libvulkan1)"
                    .into()),
            }
        }
        #[allow(unreachable_patterns)]
        "flex" | "ndarray" | "wgpu" => Err(unavailable()),
        other => Err(format!(
            "unknown device '{other}' (expected flex, ndarray or wgpu)"
        )),
    }
}
