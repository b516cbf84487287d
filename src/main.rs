//! The `redunet` command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use redunet::cli::{cluster, config, report, run, train};
use redunet::core::host::{tensor, to_vec};
use redunet::data::npy;
use redunet::data::output::OutputDir;
use redunet::experiment::apply::AnyModel;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "redunet",
    version,
    about = "ReduNet and MCR² (maximal coding rate reduction) on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the job a TOML configuration describes: forward construction of
    /// a ReduNet (evaluated; summary.json, rates.csv, the saved network and
    /// PNG plots), or, for a configuration with a [train] or [cluster]
    /// section, what `redunet train` or `redunet cluster` does with it.
    Run {
        /// The configuration file (see configs/).
        config: PathBuf,
        /// Output directory (default: runs/<config name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Backend: flex (default CPU), ndarray, wgpu.
        #[arg(long, default_value = "flex")]
        device: String,
        /// Override a configuration key, e.g. --set model.layers=10.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// No progress bar or data line.
        #[arg(long)]
        quiet: bool,
        /// Shard the training samples over these `redunet worker`s
        /// (ws://HOST:PORT,…); --device is then the coordinator's.
        #[arg(long, value_delimiter = ',')]
        workers: Vec<String>,
        /// The workers' token (default: $REDUNET_TOKEN, or none).
        #[arg(long, env = "REDUNET_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Check the configuration, the data and the resources the run
        /// needs (memory, disk), print the plan and exit; nothing is built
        /// or written. Exits non-zero with the run's own error where the
        /// run would be refused.
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve this machine's device to a coordinating `redunet run --workers`
    /// (Burn's remote backend over WebSocket; build with --features remote).
    Worker {
        /// Address to listen on, e.g. 127.0.0.1:3000 (port 0: any free port;
        /// the address is printed).
        #[arg(long)]
        listen: String,
        #[arg(long, default_value = "flex")]
        device: String,
        /// Accept only clients with this token (default: $REDUNET_TOKEN).
        #[arg(long, env = "REDUNET_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Train a network by back-propagation with the configuration's [train]
    /// section (forward-constructed or random ReduNet, or an MLP); writes
    /// summary.json and a checkpoint directory.
    Train {
        config: PathBuf,
        /// Output directory (default: runs/<config name>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "flex")]
        device: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long)]
        quiet: bool,
        /// Continue from a checkpoint directory of an earlier run of this
        /// configuration (parameters, optimiser state, epoch, history).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Check and print the plan without training (see `run --dry-run`).
        #[arg(long)]
        dry_run: bool,
    },
    /// Cluster the samples of a configuration without their labels
    /// ([cluster] method = "coding-length" or "mcr2"); labels, where the data
    /// have them, only score the result. Writes summary.json, clusters.npy,
    /// plots and, for mcr2, the trained feature extractor.
    Cluster {
        config: PathBuf,
        /// Output directory (default: runs/<config name>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "flex")]
        device: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long)]
        quiet: bool,
        /// Check and print the plan without clustering (see `run --dry-run`).
        #[arg(long)]
        dry_run: bool,
    },
    /// Evaluate a saved model (MODEL_DIR, e.g. runs/x/model of `redunet
    /// train` or `redunet run`) on the data of CONFIG; prints JSON.
    Eval {
        model: PathBuf,
        config: PathBuf,
        #[arg(long, default_value = "flex")]
        device: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Features of new data from a saved model (MODEL_DIR, e.g. runs/x/model):
    /// INPUT.npy [m, …] (raw images for invariant networks) to OUTPUT.npy [m, d].
    Transform {
        model: PathBuf,
        input: PathBuf,
        output: PathBuf,
        #[arg(long, default_value = "flex")]
        device: String,
    },
}

/// `runs/<config name>`, where a run writes without `--out`.
fn default_out(config: &std::path::Path) -> PathBuf {
    PathBuf::from("runs").join(config.file_stem().unwrap_or_default())
}

/// Prints what a dry run found: the plan, then where the run would write.
fn print_plan(plan: &redunet::experiment::plan::Plan, out: &std::path::Path) -> Result<()> {
    for line in plan.lines() {
        println!("{line}");
    }
    println!("output directory: {}", out.display());
    println!("dry run: the run would be accepted; nothing was built or written");
    Ok(())
}

/// `redunet train`, and `redunet run` of a configuration with a [train]
/// section.
fn train_command(
    cfg: &config::RunConfig,
    device: &str,
    out: &std::path::Path,
    quiet: bool,
    resume: Option<&std::path::Path>,
    dry_run: bool,
) -> Result<()> {
    let dev = redunet::devices::by_name(device).map_err(anyhow::Error::msg)?;
    if dry_run {
        return print_plan(&redunet::experiment::train::plan(cfg, resume, out)?, out);
    }
    let mut output = OutputDir::begin(out)?;
    let summary = train::train(cfg, &dev, device, &mut output, quiet, resume)?;
    train::print_summary(&summary, output.dir());
    Ok(())
}

/// `redunet cluster`, and `redunet run` of a configuration with a
/// [cluster] section.
fn cluster_command(
    cfg: &config::ClusterRunConfig,
    device: &str,
    out: &std::path::Path,
    quiet: bool,
    dry_run: bool,
) -> Result<()> {
    let dev = redunet::devices::by_name(device).map_err(anyhow::Error::msg)?;
    if dry_run {
        return print_plan(&redunet::experiment::cluster::plan(cfg, out)?, out);
    }
    let mut output = OutputDir::begin(out)?;
    let summary = cluster::cluster(cfg, &dev, device, output.stage(), quiet)?;
    output.commit()?;
    cluster::print_summary(&summary, output.dir());
    Ok(())
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    // Output piped into `head` and closed early ends the process quietly, as
    // for any Unix tool, instead of a panic in `println!`.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal at start-up,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match Cli::parse().command {
        Command::Run {
            config,
            out,
            device,
            sets,
            quiet,
            workers,
            token,
            dry_run,
        } => {
            let out = out.unwrap_or_else(|| default_out(&config));
            let job = config::load_job(&config, &sets)?;
            if !matches!(job, config::Job::Construct(_)) {
                if !workers.is_empty() {
                    bail!(
                        "--workers shards a construction; {} describes {}",
                        config.display(),
                        job.what()
                    );
                }
                if !quiet && !dry_run {
                    eprintln!("{} describes {}", config.display(), job.what());
                }
            }
            match job {
                config::Job::Construct(cfg) => {
                    let dev = redunet::devices::by_name(&device).map_err(anyhow::Error::msg)?;
                    if dry_run {
                        let plan = redunet::experiment::run::plan(&cfg, workers.len(), &out)?;
                        return print_plan(&plan, &out);
                    }
                    let workers = redunet::cli::remote::connect(&workers, token.as_deref())?;
                    let mut output = OutputDir::begin(&out)?;
                    let summary = run::run(&cfg, (&dev, &workers), &device, output.stage(), quiet)?;
                    output.commit()?;
                    report::print_summary(&summary, output.dir());
                }
                config::Job::Train(cfg) => {
                    train_command(&cfg, &device, &out, quiet, None, dry_run)?;
                }
                config::Job::Cluster(cfg) => {
                    cluster_command(&cfg, &device, &out, quiet, dry_run)?;
                }
            }
        }
        Command::Worker {
            listen,
            device,
            token,
        } => {
            let dev = redunet::devices::by_name(&device).map_err(anyhow::Error::msg)?;
            redunet::cli::remote::serve(&listen, dev, token.as_deref())?;
        }
        Command::Train {
            config,
            out,
            device,
            sets,
            quiet,
            resume,
            dry_run,
        } => {
            let cfg = config::load(&config, &sets)?;
            let out = out.unwrap_or_else(|| default_out(&config));
            train_command(&cfg, &device, &out, quiet, resume.as_deref(), dry_run)?;
        }
        Command::Cluster {
            config,
            out,
            device,
            sets,
            quiet,
            dry_run,
        } => {
            let cfg = config::load_cluster(&config, &sets)?;
            let out = out.unwrap_or_else(|| default_out(&config));
            cluster_command(&cfg, &device, &out, quiet, dry_run)?;
        }
        Command::Eval {
            model,
            config,
            device,
            sets,
        } => {
            let cfg = config::load(&config, &sets)?;
            let dev = redunet::devices::by_name(&device).map_err(anyhow::Error::msg)?;
            let v = train::eval(&cfg, &model, &dev)
                .with_context(|| format!("evaluating {}", model.display()))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Transform {
            model,
            input,
            output,
            device,
        } => {
            let dev = redunet::devices::by_name(&device).map_err(anyhow::Error::msg)?;
            // The features must not replace the input or a file of the model.
            let resolved = |p: &std::path::Path| {
                let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                std::fs::canonicalize(dir.unwrap_or(std::path::Path::new(".")))
                    .map(|d| d.join(name))
                    .ok()
            };
            if let (Some(out), Some(inp)) = (resolved(&output), resolved(&input)) {
                if out == inp {
                    bail!("the output {} is the input", output.display());
                }
                if std::fs::canonicalize(&model).is_ok_and(|m| out.starts_with(&m)) {
                    bail!(
                        "the output {} is inside the model directory {}",
                        output.display(),
                        model.display()
                    );
                }
            }
            let read_input = || -> Result<npy::NpyArray<f32>> {
                let x = npy::read_npy_f32(&input)?;
                if x.shape.is_empty() {
                    bail!(
                        "{}: expected an array [m, …], got a scalar",
                        input.display()
                    );
                }
                Ok(x)
            };
            // The model first: a wrong model path is reported as such.
            let net = AnyModel::load(&model, &dev)
                .with_context(|| format!("loading model {}", model.display()))?;
            let x = read_input()?;
            let m = x.shape[0];
            let d: usize = x.shape[1..].iter().product();
            let f = net
                .transform(tensor(x.data, [m, d], &dev), &x.shape[1..])
                .with_context(|| format!("transforming {}", input.display()))?;
            let [m, d] = f.dims();
            npy::write_npy_f32(&output, &[m, d], &to_vec(f)?)?;
            eprintln!(
                "wrote {} features of dimension {d} to {}",
                m,
                output.display()
            );
        }
    }
    Ok(())
}
