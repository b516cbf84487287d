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

/// Bytes this process may still write on the file system that holds
/// `path` (or, for a path not yet created, its nearest existing ancestor):
/// the blocks free to unprivileged users. `None` where it cannot be read
/// (then nothing is refused).
pub fn disk_available(path: &std::path::Path) -> Option<u64> {
    let mut at = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    while !at.exists() {
        at = at.parent()?.to_path_buf();
    }
    free_bytes(&at)
}

#[cfg(target_os = "linux")]
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is a buffer of the
    // struct statvfs fills; it is read only when the call succeeds.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised the struct.
    let st = unsafe { st.assume_init() };
    // The field types are 32-bit on some targets.
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(target_os = "linux"))]
fn free_bytes(_path: &std::path::Path) -> Option<u64> {
    None
}

/// Refuses to write `bytes` for `what` under `dir` when its disk has less
/// free space; `hint` says which setting to change.
pub fn check_disk(bytes: u64, dir: &std::path::Path, what: &str, hint: &str) -> Result<()> {
    match disk_available(dir) {
        Some(avail) if bytes > avail => Err(DataError::OutOfDisk {
            what: what.to_string(),
            needed: bytes,
            available: avail,
            dir: dir.to_path_buf(),
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

    #[test]
    fn disk_space_of_a_path_not_yet_created() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        let free = disk_available(&deep);
        if cfg!(target_os = "linux") {
            assert!(free.is_some_and(|f| f > 0));
        }
        check_disk(1, &deep, "x", "y").unwrap();
        let err = check_disk(u64::MAX - 1, &deep, "the model", "lower model.layers");
        if free.is_some() {
            let msg = err.unwrap_err().to_string();
            assert!(
                msg.contains("the model") && msg.contains("disk space"),
                "{msg}"
            );
            assert!(msg.contains("lower model.layers"), "{msg}");
        }
    }
}
