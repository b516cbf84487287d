//! `--dry-run`: every shipped configuration and every command the
//! documentation shows is accepted by the checks the run itself makes, in
//! seconds, without building or writing anything; a run the program would
//! refuse is refused by its dry run with the same message.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn configs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "configs/ holds the shipped configurations");
    v
}

/// The command a configuration is meant for: `cluster` for a [cluster]
/// section, `train` for a [train] section, else `run`.
fn command_for(config: &Path) -> &'static str {
    let text = std::fs::read_to_string(config).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    if table.contains_key("cluster") {
        "cluster"
    } else if table.contains_key("train") {
        "train"
    } else {
        "run"
    }
}

/// Whether Fashion-MNIST is installed (CI installs it; elsewhere the
/// configurations on it are refused with the data set's own error, which
/// these tests then accept and say so).
fn fashion_installed() -> bool {
    redunet::data::builtin::fashion_mnist(false).is_ok()
}

/// A refusal only because Fashion-MNIST is not installed here.
fn fashion_missing(stderr: &str) -> bool {
    !fashion_installed() && stderr.contains("Fashion-MNIST not found")
}

/// Runs a dry run in `dir`'s output and checks it was accepted quickly,
/// printed its plan and wrote nothing.
fn accepted(args: &[&str], dir: &Path) {
    let out = dir.join("out");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--dry-run", "--out", out.to_str().unwrap()]);
    let start = Instant::now();
    let (ok, stdout, stderr) = common::run(&full);
    let took = start.elapsed();
    if !ok && fashion_missing(&stderr) {
        eprintln!("{full:?}: skipped, Fashion-MNIST is not installed");
        return;
    }
    assert!(ok, "{full:?} refused: {stderr}");
    assert!(stdout.starts_with("plan: "), "{full:?}: {stdout}");
    for section in [
        "data:",
        "memory:",
        "disk:",
        "dry run: the run would be accepted",
    ] {
        assert!(
            stdout.contains(section),
            "{full:?}: no {section} in {stdout}"
        );
    }
    assert!(!out.exists(), "{full:?} wrote {}", out.display());
    assert!(
        took < Duration::from_secs(20),
        "{full:?} took {took:?} for a dry run"
    );
}

#[test]
fn every_shipped_configuration_is_accepted_by_run_and_by_its_own_command() {
    let dir = tempfile::tempdir().unwrap();
    for c in configs() {
        let c = c.to_str().unwrap();
        accepted(&["run", c], dir.path());
        let own = command_for(Path::new(c));
        if own != "run" {
            accepted(&[own, c], dir.path());
        }
    }
}

/// The `redunet` commands the documentation shows on a line of its own or
/// in backquotes: `cargo run --release -- CMD …` and `redunet CMD …` with a
/// configuration of configs/ (synopses with placeholders are left out).
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let mut files = vec![root().join("README.md")];
    if let Ok(docs) = std::fs::read_dir(root().join("docs")) {
        files.extend(
            docs.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "md")),
        );
    }
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // Lines of fenced blocks, and inline code spans (which may wrap).
        let (mut pieces, mut prose, mut fenced) = (Vec::new(), String::new(), false);
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            } else if fenced {
                pieces.push(line.to_string());
            } else {
                prose.push_str(line);
                prose.push(' ');
            }
        }
        pieces.extend(prose.split('`').skip(1).step_by(2).map(str::to_string));
        for piece in pieces.iter().flat_map(|p| p.split(" && ")) {
            let words: Vec<&str> = piece.split_whitespace().collect();
            let start = match words.as_slice() {
                ["cargo", "run", "--release", "--", ..] => 4,
                ["redunet", ..] | ["$", "redunet", ..] => {
                    words.iter().position(|w| *w == "redunet").unwrap() + 1
                }
                _ => continue,
            };
            let cmd = &words[start..];
            let Some(&sub) = cmd.first() else { continue };
            if !["run", "train", "cluster"].contains(&sub)
                || !cmd.get(1).is_some_and(|c| c.starts_with("configs/"))
            {
                continue;
            }
            // Synopses, elided commands and templates (`model.layers=L`
            // "for L = 1 and 4").
            let placeholder = |w: &str| {
                w.rsplit_once('=').is_some_and(|(_, v)| {
                    !v.is_empty() && v.chars().all(|c| c.is_ascii_uppercase())
                })
            };
            if cmd
                .iter()
                .any(|w| w.contains('…') || w.contains('[') || w.contains('|') || placeholder(w))
            {
                continue;
            }
            let args: Vec<String> = cmd
                .iter()
                .take_while(|w| !w.starts_with('#') && !w.starts_with('('))
                .map(|w| w.trim_end_matches([',', ';', ')', '.']).to_string())
                .collect();
            found.push((format!("{name}: {piece}"), args));
        }
    }
    found
}

#[test]
fn every_documented_command_is_accepted() {
    let commands = documented_commands();
    assert!(
        commands.len() >= 10,
        "the README shows the commands of its results: {commands:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (place, args) in &commands {
        // Workers are counted by a dry run, not connected to.
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = dir.path().join("out");
        let mut full: Vec<&str> = args
            .iter()
            .filter(|a| **a != "--dry-run")
            .copied()
            .collect();
        full.extend(["--dry-run", "--out", out.to_str().unwrap()]);
        let (ok, stdout, stderr) = common::run_in(&root(), &full);
        if !ok && fashion_missing(&stderr) {
            eprintln!("{place}: skipped, Fashion-MNIST is not installed");
            continue;
        }
        assert!(ok, "{place}: {stderr}");
        assert!(
            stdout.contains("the run would be accepted"),
            "{place}: {stdout}"
        );
        assert!(!out.exists(), "{place}: wrote its output");
    }
}

/// An error message with the machine's free memory or disk left out.
fn without_availability(message: &str) -> String {
    match message.split_once("but only ") {
        Some((head, tail)) => {
            let rest = tail.split_once(" are ").map_or(tail, |(_, r)| r);
            format!("{head}but only … are {rest}")
        }
        None => message.to_string(),
    }
}

#[test]
fn a_run_the_guards_refuse_is_refused_by_its_dry_run_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = out.to_str().unwrap();
    let cfg = |name: &str| {
        root()
            .join("configs")
            .join(name)
            .to_str()
            .unwrap()
            .to_string()
    };
    let (mnist, mlp, rot, cluster, crate_) = (
        cfg("mnist-vector.toml"),
        cfg("mcr2-mnist-mlp.toml"),
        cfg("rotation-10.toml"),
        cfg("cluster-subspaces.toml"),
        cfg("crate-mnist.toml"),
    );
    // The resource guards' own refusals are checked beside their fail-fast
    // test (tests/crash_consistency.rs); these are the dry run's own cases.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", &mnist, "--set=model.layers=20000"],
            "model.layers",
        ),
        (
            vec![
                "run",
                &rot,
                "--set=model.kind=vector",
                "--set=model.batch_size=10",
            ],
            "batch_size",
        ),
        // Settings a command would not use are refused, not ignored.
        (vec!["train", &mlp, "--set=model.save=false"], "model.save"),
        (
            vec![
                "train",
                &mlp,
                "--set=polar.radii=5",
                "--set=polar.angles=20",
            ],
            "[polar]",
        ),
        (
            vec!["train", &crate_, "--set=eval.shift_stride=7"],
            "shift_stride",
        ),
        (
            vec!["cluster", &cluster, "--set=cluster.k=100000"],
            "cluster.k",
        ),
    ];
    for (args, says) in cases {
        let (ok, _, run_err) = common::run(&[&args[..], &["--quiet", "--out", o]].concat());
        assert!(!ok && run_err.contains(says), "{args:?}: {run_err}");
        assert!(!out.exists(), "{args:?}: output left behind");
        let (ok, stdout, dry_err) = common::run(&[&args[..], &["--dry-run", "--out", o]].concat());
        assert!(
            !ok,
            "{args:?}: the dry run accepted what the run refuses: {stdout}"
        );
        // The memory available moves between the two calls.
        assert_eq!(
            without_availability(&dry_err),
            without_availability(&run_err),
            "{args:?}"
        );
    }
}

#[test]
fn the_plan_counts_what_the_run_holds_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let plan = |args: &[&str]| {
        let (ok, stdout, stderr) =
            common::run(&[args, &["--dry-run", "--out", out.to_str().unwrap()]].concat());
        assert!(ok, "{args:?}: {stderr}");
        stdout
    };
    let bytes_of = |stdout: &str, section: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(section))
            .unwrap_or_else(|| panic!("no {section} in {stdout}"));
        let v: Vec<&str> = line[section.len()..].split_whitespace().collect();
        let x: f64 = v[0].parse().unwrap();
        x * match v[1] {
            "B" => 1.0,
            "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            u => panic!("unit {u}"),
        }
    };
    let rot = root().join("configs/rotation-01-vector.toml");
    let rot = rot.to_str().unwrap();
    // 3,500 vector layers on 1000-d polar signals: one layer in memory at a
    // time, 42 GB on disk when saved.
    let saved = plan(&["run", rot, "--set=model.save=true"]);
    assert!(bytes_of(&saved, "memory: ") < 1e9, "{saved}");
    let disk = bytes_of(&saved, "disk: ");
    assert!((disk - 42.0e9).abs() < 0.1e9, "{saved}");
    let unsaved = plan(&["run", rot]);
    assert_eq!(bytes_of(&unsaved, "disk: "), 0.0, "{unsaved}");
    assert!(
        unsaved.contains("no model (model.save = false)"),
        "{unsaved}"
    );
    // On plain vectors the network is applied whole to the test set: every
    // layer is held (20 layers of 11 operators of 784 × 784, 541 MB).
    let mnist = root().join("configs/mnist-vector.toml");
    let held = plan(&["run", mnist.to_str().unwrap(), "--set=model.save=false"]);
    assert!(bytes_of(&held, "memory: ") > 0.54e9, "{held}");
}
