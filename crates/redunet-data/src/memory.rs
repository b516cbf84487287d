//! The memory a request will need, checked against what the machine can
//! give before anything is allocated: a forged header or a mistyped size
//! becomes an error that names what to change, not an allocation abort.

use crate::{DataError, Result};

/// Bytes the process can still allocate: the kernel's `MemAvailable`, or the
/// room left under the cgroup's `memory.max` when that is smaller; `None`
/// where neither can be read (then nothing is refused).
pub fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Refuses a request of `bytes` for `what` that the machine cannot hold;
/// `hint` says which setting or input to change.
pub fn check(bytes: u64, what: &str, hint: &str) -> Result<()> {
    match available() {
        Some(avail) if bytes > avail => Err(DataError::OutOfMemory {
            what: what.to_string(),
            needed: bytes,
            available: avail,
            hint: hint.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Bytes of `count` values of `size` bytes each, or `u64::MAX` when that
/// overflows (so that [`check`] refuses it).
pub fn bytes(dims: &[usize], size: usize) -> u64 {
    dims.iter()
        .try_fold(size as u64, |a, &n| a.checked_mul(n as u64))
        .unwrap_or(u64::MAX)
}

/// `n` bytes for people: "1.5 GB".
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if n == u64::MAX {
        "more than any machine has".into()
    } else if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_cannot_fit_and_overflow() {
        assert_eq!(bytes(&[usize::MAX, 2], 4), u64::MAX);
        assert!(check(u64::MAX, "x", "y").is_err() || available().is_none());
        check(1024, "x", "y").unwrap();
        assert_eq!(human(1_500_000_000), "1.5 GB");
    }
}
