//! Output directories written as one unit, the way a database commits a
//! transaction: everything a run produces (summary, rates, plots, model,
//! checkpoint) is written into a private staging directory beside the
//! output, then swapped into place with one atomic exchange of the two
//! directory entries. After a crash at any moment the output directory holds
//! the whole previous result or the whole new one, never a mixture.
//!
//! - While an [`OutputDir`] is alive it holds an exclusive lock
//!   (`.NAME.lock` beside the directory, removed when it is dropped): a
//!   second process writing into the same directory gets
//!   [`DataError::InUse`], not an interleaving.
//! - Staging and superseded directories (`.NAME.staging-PID`) of a crashed
//!   run are removed by the next run that takes the lock; nothing is left
//!   behind after success.
//! - An existing directory is replaced only when it is empty or looks like a
//!   redunet output (it holds `summary.json`, `model/` or `checkpoint/`), so
//!   a mistyped `--out $HOME` cannot wipe unrelated files.
//!
//! Directories that hold stored state (models, checkpoints) are also
//! *sealed*: [`seal`] writes `checksums.json` with the size and CRC-32 of
//! every file, and [`verify`] checks them before a reader trusts a byte of
//! it, so a damaged file is reported by name instead of being loaded.

use crate::{DataError, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The sealed-directory manifest.
pub const CHECKSUMS: &str = "checksums.json";

/// Files that mark a directory as a redunet output (safe to replace).
const MARKERS: [&str; 3] = ["summary.json", "model", "checkpoint"];

use crate::io_error as io;

/// An output directory being written: write into [`Self::stage`], then
/// [`Self::commit`] (as often as there is a whole result to publish, e.g.
/// once per checkpoint).
#[derive(Debug)]
pub struct OutputDir {
    dir: PathBuf,
    stage: PathBuf,
    lock: Option<Lock>,
}

impl OutputDir {
    /// Locks `dir`, removes the leftovers of crashed runs and creates an
    /// empty staging directory. Fails if another process holds the lock, or
    /// if `dir` exists and is neither empty nor a redunet output.
    pub fn begin(dir: &Path) -> Result<Self> {
        let dir = absolute(dir)?;
        let parent = dir
            .parent()
            .expect("absolute paths with a name have a parent");
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        let lock = Lock::take(&sibling(&dir, "lock"), &dir)?;
        if dir.exists() {
            check_replaceable(&dir)?;
        }
        clean_leftovers(&dir)?;
        let stage = sibling(&dir, &format!("staging-{}", std::process::id()));
        std::fs::create_dir(&stage).map_err(io("create", &stage))?;
        Ok(Self {
            dir,
            stage,
            lock: Some(lock),
        })
    }

    /// The directory to write the next result into.
    pub fn stage(&self) -> &Path {
        &self.stage
    }

    /// The output directory readers see.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Publishes the staging directory as the output, atomically, and
    /// starts a new, empty one for the next commit.
    pub fn commit(&mut self) -> Result<()> {
        replace_dir(&self.stage, &self.dir)?;
        std::fs::create_dir(&self.stage).map_err(io("create", &self.stage))?;
        Ok(())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        // Whatever was staged and not committed is abandoned.
        let _ = std::fs::remove_dir_all(&self.stage);
        drop(self.lock.take());
    }
}

/// Replaces directory `dir` (if any) by the finished directory `stage` in
/// one atomic step, then removes the superseded one: a reader sees the old
/// directory or the new one, whole.
pub fn replace_dir(stage: &Path, dir: &Path) -> Result<()> {
    sync_dir(stage)?;
    if dir.exists() {
        exchange(stage, dir)?;
        // The stage now holds the superseded directory.
        std::fs::remove_dir_all(stage).map_err(io("remove", stage))?;
    } else {
        std::fs::rename(stage, dir).map_err(io("write", dir))?;
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// `dir` made absolute and free of `.`/`..`, so that its name and siblings
/// are well defined (`--out .` names the current directory).
fn absolute(dir: &Path) -> Result<PathBuf> {
    let abs = if dir.exists() {
        std::fs::canonicalize(dir).map_err(io("resolve", dir))?
    } else {
        let a = std::path::absolute(dir).map_err(io("resolve", dir))?;
        let mut out = PathBuf::new();
        for c in a.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                c => out.push(c),
            }
        }
        out
    };
    if abs.file_name().is_none() {
        return Err(DataError::Invalid(format!(
            "{} cannot be an output directory",
            dir.display()
        )));
    }
    Ok(abs)
}

fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let name = dir.file_name().expect("checked").to_string_lossy();
    dir.with_file_name(format!(".{name}.{tag}"))
}

fn check_replaceable(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(DataError::Invalid(format!(
            "{} exists and is not a directory",
            dir.display()
        )));
    }
    let mut entries = std::fs::read_dir(dir).map_err(io("read", dir))?;
    let empty = entries.next().is_none();
    if empty || MARKERS.iter().any(|m| dir.join(m).exists()) {
        return Ok(());
    }
    Err(DataError::Invalid(format!(
        "{} exists and is not a redunet output (no summary.json, model/ or checkpoint/); \
         it would be replaced as a whole: choose another output directory",
        dir.display()
    )))
}

/// Removes `.NAME.staging-*` (this module's) and `.NAME.partial-*` /
/// `.NAME.old-*` (earlier versions') beside `dir`; only called under the lock,
/// so they belong to dead processes. An `.old-*` directory is the only copy
/// of a result when its run died between the two renames of an old
/// version's commit: it is restored rather than removed.
fn clean_leftovers(dir: &Path) -> Result<()> {
    let parent = dir.parent().expect("absolute");
    let name = dir.file_name().expect("checked").to_string_lossy();
    let prefix = format!(".{name}.");
    let entries = std::fs::read_dir(parent).map_err(io("read", parent))?;
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(tag) = file.strip_prefix(&prefix) else {
            continue;
        };
        let path = e.path();
        if tag.starts_with("old-") && !dir.exists() {
            std::fs::rename(&path, dir).map_err(io("restore", &path))?;
        } else if tag.starts_with("staging-")
            || tag.starts_with("partial-")
            || tag.starts_with("old-")
        {
            std::fs::remove_dir_all(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}

/// Swaps two directory entries in one step (Linux `renameat2` with
/// `RENAME_EXCHANGE`); where the file system cannot, falls back to moving
/// the old one aside first (a crash between the two renames leaves it as
/// `.NAME.old-PID`, which the next run restores).
fn exchange(stage: &Path, dir: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
        if let (Ok(a), Ok(b)) = (c(stage), c(dir)) {
            // SAFETY: two NUL-terminated paths, resolved against the
            // current directory (both are absolute).
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if rc == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if !matches!(err.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
                return Err(io("write", dir)(err));
            }
        }
    }
    let old = dir.with_file_name(format!(
        ".{}.old-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::rename(dir, &old).map_err(io("write", dir))?;
    std::fs::rename(stage, dir).map_err(io("write", dir))?;
    std::fs::rename(&old, stage).map_err(io("write", stage))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("write", dir))?;
    Ok(())
}

/// An exclusive lock on an output directory: the file `path`, locked with
/// the OS's advisory lock and removed on drop.
#[derive(Debug)]
struct Lock {
    path: PathBuf,
    file: File,
}

impl Lock {
    fn take(path: &Path, dir: &Path) -> Result<Self> {
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(io("create", path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(DataError::InUse {
                        path: dir.to_path_buf(),
                        lock: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", path)(e)),
            }
            // The holder before us may have removed the file after we
            // opened it: then our lock is on a deleted file, and we retry.
            if same_file(&file, path) {
                return Ok(Self {
                    path: path.to_path_buf(),
                    file,
                });
            }
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held, so that nobody locks a file about to go.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// One file of a sealed directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    bytes: u64,
    crc32: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    files: Vec<Entry>,
}

fn crc_of(path: &Path) -> Result<(u64, u32)> {
    regular(path)?;
    let mut f = File::open(path).map_err(io("read", path))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io("read", path))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, h.finalize()))
}

/// The metadata of `path`, which must be a regular file: a device or a pipe
/// standing in for a stored file has no size and no end.
fn regular(path: &Path) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(io("read", path))?;
    if !meta.is_file() {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    Ok(meta)
}

/// Writes `checksums.json` into `dir`, covering every regular file in it
/// (sub-directories are sealed on their own).
pub fn seal(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io("read", dir))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == CHECKSUMS || name.starts_with('.') || !e.path().is_file() {
            continue;
        }
        let (bytes, crc32) = crc_of(&e.path())?;
        files.push(Entry { name, bytes, crc32 });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let json = serde_json::to_vec_pretty(&Manifest { files }).expect("manifests serialise");
    crate::npy::write_atomic(&dir.join(CHECKSUMS), &json)
}

/// Checks a sealed directory: `checksums.json` is present and well formed,
/// lists every file in `required`, and every listed file has its recorded
/// size and checksum. The error names the damaged file.
pub fn verify(dir: &Path, required: &[&str]) -> Result<()> {
    verify_listed(dir, required, |_| true)
}

/// Checks that `checksums.json` lists `name` and that this one file is
/// intact: enough to trust it before reading it (e.g. to learn a model's
/// format), leaving the other files to the reader's full [`verify`].
pub fn verify_file(dir: &Path, name: &str) -> Result<()> {
    verify_listed(dir, &[name], |f| f == name)
}

fn verify_listed(dir: &Path, required: &[&str], check: impl Fn(&str) -> bool) -> Result<()> {
    let path = dir.join(CHECKSUMS);
    let corrupt = |path: &Path, reason: String| DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let meta = regular(&path)?;
    if meta.len() > 1 << 20 {
        return Err(corrupt(&path, format!("{} bytes", meta.len())));
    }
    let mut text = Vec::new();
    File::open(&path)
        .and_then(|f| f.take((1 << 20) + 1).read_to_end(&mut text))
        .map_err(io("read", &path))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| corrupt(&path, e.to_string()))?;
    for r in required {
        if !manifest.files.iter().any(|f| f.name == *r) {
            return Err(corrupt(&path, format!("does not list {r}")));
        }
    }
    for f in manifest.files.iter().filter(|f| check(&f.name)) {
        if f.name.contains(['/', '\\']) || f.name.starts_with('.') {
            return Err(corrupt(&path, format!("lists file {:?}", f.name)));
        }
        let p = dir.join(&f.name);
        let (bytes, crc) = crc_of(&p)?;
        if bytes != f.bytes || crc != f.crc32 {
            return Err(corrupt(
                &p,
                format!(
                    "damaged: {bytes} bytes with checksum {crc:08x}, written as {} bytes with checksum {:08x}",
                    f.bytes, f.crc32
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_replace_the_whole_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let mut out = OutputDir::begin(&dir).unwrap();
        std::fs::write(out.stage().join("summary.json"), b"1").unwrap();
        std::fs::write(out.stage().join("a"), b"first").unwrap();
        out.commit().unwrap();
        std::fs::write(out.stage().join("summary.json"), b"2").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(dir.join("summary.json")).unwrap(), b"2");
        assert!(!dir.join("a").exists(), "the old result is gone as a whole");
        drop(out);
        let names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out")]);
    }

    #[test]
    fn a_second_writer_is_refused_and_foreign_directories_are_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let first = OutputDir::begin(&dir).unwrap();
        assert!(matches!(
            OutputDir::begin(&dir),
            Err(DataError::InUse { .. })
        ));
        drop(first);
        OutputDir::begin(&dir).unwrap();
        let foreign = root.path().join("home");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), b"x").unwrap();
        assert!(matches!(
            OutputDir::begin(&foreign),
            Err(DataError::Invalid(_))
        ));
    }

    #[test]
    fn leftovers_of_a_crash_are_removed_or_restored() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        std::fs::create_dir(root.path().join(".out.staging-1")).unwrap();
        std::fs::create_dir(root.path().join(".out.old-2")).unwrap();
        std::fs::write(root.path().join(".out.old-2/summary.json"), b"kept").unwrap();
        let out = OutputDir::begin(&dir).unwrap();
        assert_eq!(std::fs::read(dir.join("summary.json")).unwrap(), b"kept");
        assert!(!root.path().join(".out.staging-1").exists());
        drop(out);
    }

    #[test]
    fn sealed_directories_name_the_damaged_file() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.bin"), [1u8, 2, 3]).unwrap();
        seal(root.path()).unwrap();
        verify(root.path(), &["a.bin"]).unwrap();
        assert!(verify(root.path(), &["b.bin"]).is_err());
        std::fs::write(root.path().join("a.bin"), [1u8, 2, 4]).unwrap();
        let e = verify(root.path(), &["a.bin"]).unwrap_err();
        assert!(e.to_string().contains("a.bin"), "{e}");
    }
}
