//! What the command-line tests share: running the binary (a panic fails
//! the test whatever the exit status) and reading a summary.

use std::path::Path;
use std::process::Command;

/// Runs `redunet` with `args`: (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    run_in(Path::new("."), args)
}

/// [`run`] in the working directory `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redunet"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs the binary");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// The `summary.json` of an output directory.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}
