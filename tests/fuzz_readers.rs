//! Mutation fuzzing of every reader of stored or given files, as an
//! ordinary test on the stable toolchain: seeded mutations of valid files
//! (bit flips, byte overwrites, numbers replaced by extreme ones, spans cut,
//! repeated or truncated) fed to the `.npy`, IDX (raw and gzip), TOML
//! configuration, saved-model (both formats) and checkpoint readers. Every
//! case must end in `Ok` or a typed error: no panic, no abort, bounded memory;
//! a damaged stored file must never load (its checksum names it), and a
//! forged one (damaged, then resealed) must still be validated.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redunet::core::{Memberships, VectorLayerConfig, VectorReduNet};
use redunet::data::{idx, npy, output};
use redunet::experiment::apply::AnyModel;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

const EXTREMES: [&str; 10] = [
    "0",
    "-1",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "1e308",
    "NaN",
    "100000",
    "2147483648",
    "16777216",
];

/// One seeded mutation of `bytes`.
fn mutate(bytes: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.is_empty() {
        return vec![rng.random()];
    }
    let rounds = rng.random_range(1..=3);
    for _ in 0..rounds {
        let n = b.len().max(1);
        let at = rng.random_range(0..n).min(b.len().saturating_sub(1));
        match rng.random_range(0..7) {
            0 => b[at] ^= 1 << rng.random_range(0..8),
            1 => b[at] = rng.random(),
            2 => {
                // A run of digits replaced by an extreme number.
                let start = (0..b.len()).skip(at).find(|&i| b[i].is_ascii_digit());
                if let Some(s) = start {
                    let end = (s..b.len())
                        .find(|&i| !b[i].is_ascii_digit())
                        .unwrap_or(b.len());
                    let e = EXTREMES[rng.random_range(0..EXTREMES.len())];
                    b.splice(s..end, e.bytes());
                } else {
                    b[at] = b'9';
                }
            }
            3 => {
                let len = rng.random_range(1..=16).min(b.len() - at);
                b.drain(at..at + len);
            }
            4 => {
                let len = rng.random_range(1..=16).min(b.len() - at);
                let span = b[at..at + len].to_vec();
                b.splice(at..at, span);
            }
            5 => b.truncate(at),
            _ => {
                // A little-endian u32/u64 field set to an extreme value.
                let v: u64 = [0, 1, u32::MAX as u64, u64::MAX, 1 << 40][rng.random_range(0..5)];
                let width = if rng.random() { 4 } else { 8 };
                for (i, byte) in v.to_le_bytes()[..width].iter().enumerate() {
                    if let Some(x) = b.get_mut(at + i) {
                        *x = *byte;
                    }
                }
            }
        }
        if b.is_empty() {
            break;
        }
    }
    b
}

/// Runs `cases` seeded mutations of `valid` through `read`, which returns
/// whether the case loaded; a panic fails the test with the case number.
fn fuzz(name: &str, valid: &[u8], cases: usize, mut read: impl FnMut(&[u8]) -> bool) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(name.len() as u64 * 7919);
    let mut loaded = 0;
    for case in 0..cases {
        let bytes = mutate(valid, &mut rng);
        match catch_unwind(AssertUnwindSafe(|| read(&bytes))) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(_) => panic!("{name}: case {case} panicked ({} bytes)", bytes.len()),
        }
    }
    loaded
}

fn max_rss_bytes() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss as u64 * 1024
}

#[test]
fn npy_and_idx_readers_survive_mutations() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    let valid = npy::npy_f32_bytes(&[3, 4], &(0..12).map(|i| i as f32).collect::<Vec<_>>());
    fuzz("npy", &valid, 3000, |b| {
        std::fs::write(&p, b).unwrap();
        let f = npy::read_npy_f32(&p).is_ok();
        let i = npy::read_npy_i64(&p).is_ok();
        f || i
    });

    let mut raw = vec![0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    raw.extend((0..18).map(|i| i as u8));
    fuzz("idx", &raw, 2000, |b| {
        idx::idx_from_bytes(b, Path::new("fuzz.idx")).is_ok()
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    fuzz("idx.gz", &gz, 2000, |b| {
        idx::idx_from_bytes(b, Path::new("fuzz.idx.gz")).is_ok()
    });
    // A forged gzip header cannot make a small file expand without bound.
    let mut bomb = vec![0u8, 0, 8, 1, 0x7f, 0xff, 0xff, 0xff];
    bomb.extend(std::iter::repeat_n(0u8, 1 << 20));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bomb).unwrap();
    assert!(idx::idx_from_bytes(&gz.finish().unwrap(), Path::new("bomb.gz")).is_err());
    assert!(max_rss_bytes() < 2 << 30, "{} bytes", max_rss_bytes());
}

#[test]
fn configuration_parser_survives_mutations() {
    let text = std::fs::read(format!(
        "{}/configs/rotation-10.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let ok = fuzz("toml", &text, 3000, |b| {
        let Ok(t) = std::str::from_utf8(b) else {
            return false;
        };
        redunet::cli::config::parse(t, &[], &base).is_ok()
    });
    assert!(ok > 0, "some mutations (e.g. of comments) stay valid");
}

/// A small constructed vector model and a spectral one, saved.
fn models(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let d = redunet::core::Device::default();
    let x: Vec<f32> = (0..40 * 6).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
    let z = redunet::core::host::tensor(x.clone(), [40, 6], &d);
    let labels: Vec<usize> = (0..40).map(|i| i % 2).collect();
    let pi = Memberships::from_labels(&labels, 2, &d).unwrap();
    let built =
        VectorReduNet::construct(&z, &pi, 2, &VectorLayerConfig::default(), |_| {}).unwrap();
    let vector = root.join("vector");
    redunet::train::SavedModel::new(redunet::train::Network::Vector(built.network))
        .save(&vector)
        .unwrap();
    use redunet::vision::front::{FrontEnd, FrontEndConfig};
    let front = FrontEnd::new(&FrontEndConfig::signals(2, 3).lifted(3, 2, 0), &d).unwrap();
    let (spectral, _) = redunet::vision::network::SpectralReduNet::construct(
        &z,
        front,
        &pi,
        2,
        &VectorLayerConfig::default(),
        |_| {},
    )
    .unwrap();
    let sdir = root.join("spectral");
    redunet::train::SavedModel::new(redunet::train::Network::Spectral(spectral))
        .save(&sdir)
        .unwrap();
    (vector, sdir)
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn saved_models_refuse_damage_and_validate_forgeries() {
    let root = tempfile::tempdir().unwrap();
    let (vector, spectral) = models(root.path());
    let d = redunet::core::Device::default();
    let work = root.path().join("work");
    // One format: `model.json`, a burnpack per part, the checksums.
    for (model, files) in [
        (
            &vector,
            vec!["model.json", "layer-0002.bpk", "checksums.json"],
        ),
        (
            &spectral,
            vec![
                "model.json",
                "front.bpk",
                "layer-0001.bpk",
                "checksums.json",
            ],
        ),
    ] {
        AnyModel::load(model, &d).unwrap();
        for file in files {
            let valid = std::fs::read(model.join(file)).unwrap();
            for reseal in [false, true] {
                let name = format!("{}/{file}/{reseal}", model.display());
                fuzz(&name, &valid, 400, |b| {
                    copy_dir(model, &work);
                    std::fs::write(work.join(file), b).unwrap();
                    if reseal && file != "checksums.json" {
                        output::seal(&work).unwrap();
                    }
                    let loaded = AnyModel::load(&work, &d).is_ok();
                    // Without a reseal, any change to a sealed file is caught.
                    assert!(
                        !loaded || reseal || b == valid.as_slice() || file == "checksums.json",
                        "{name}: a damaged file loaded"
                    );
                    loaded
                });
            }
        }
    }
    assert!(max_rss_bytes() < 2 << 30, "{} bytes", max_rss_bytes());
}

#[test]
fn checkpoints_refuse_damage_and_survive_forgeries() {
    use redunet::experiment::{Silent, train};
    let root = tempfile::tempdir().unwrap();
    let d = redunet::core::Device::default();
    let sets: Vec<String> = [
        "data.train_per_class=6",
        "data.test_per_class=2",
        "model.width=8",
        "model.out_dim=4",
        "train.batch_size=20",
        "train.epochs=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mcr2-mnist-mlp.toml");
    let cfg = redunet::cli::config::load(&path, &sets).unwrap();
    let first = root.path().join("first");
    let mut out = output::OutputDir::begin(&first).unwrap();
    train::train(&cfg, &d, "flex", &mut out, None, &mut Silent).unwrap();
    drop(out);
    let ckpt = first.join("checkpoint");
    let mut more = cfg.clone();
    more.train.as_mut().unwrap().epochs = 2;
    let work = root.path().join("work");
    let resumed = root.path().join("resumed");
    for file in [
        "state.json",
        "trainee.bpk",
        "optimizer.bpk",
        "checksums.json",
    ] {
        let valid = std::fs::read(ckpt.join(file)).unwrap();
        for reseal in [false, true] {
            let name = format!("checkpoint/{file}/{reseal}");
            // Resuming trains a whole epoch: fewer cases than the readers.
            let cases = if reseal { 40 } else { 200 };
            fuzz(&name, &valid, cases, |b| {
                copy_dir(&ckpt, &work);
                std::fs::write(work.join(file), b).unwrap();
                if reseal && file != "checksums.json" {
                    output::seal(&work).unwrap();
                }
                let read = redunet::train::trainer::read_checkpoint_state(&work);
                assert!(
                    read.is_err() || reseal || b == valid.as_slice() || file == "checksums.json",
                    "{name}: a damaged checkpoint was read"
                );
                if read.is_err() || !reseal {
                    return false;
                }
                let mut out = output::OutputDir::begin(&resumed).unwrap();
                train::train(&more, &d, "flex", &mut out, Some(&work), &mut Silent).is_ok()
            });
        }
    }
    assert!(max_rss_bytes() < 2 << 30, "{} bytes", max_rss_bytes());
}

/// Applying a saved model in blocks of rows (what bounds `transform`'s
/// working set on large inputs) gives the whole-input features.
#[test]
fn blocked_transform_equals_the_whole_input() {
    let root = tempfile::tempdir().unwrap();
    let (vector, spectral) = models(root.path());
    let d = redunet::core::Device::default();
    let x: Vec<f32> = (0..13 * 6).map(|i| ((i * 29 % 17) as f32) - 8.0).collect();
    for (dir, shape) in [(&vector, vec![6]), (&spectral, vec![2, 3])] {
        let model = AnyModel::load(dir, &d).unwrap();
        let x = redunet::core::host::tensor(x.clone(), [13, 6], &d);
        let whole =
            redunet::core::host::to_vec(model.transform(x.clone(), &shape).unwrap()).unwrap();
        let rows =
            redunet::core::host::to_vec(model.transform_blocked(x, &shape, 1).unwrap()).unwrap();
        let worst = whole
            .iter()
            .zip(&rows)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "{}: blocks differ by {worst}", dir.display());
    }
}
