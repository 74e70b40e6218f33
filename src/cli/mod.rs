//! Command-line parsing and dispatch. Each command lives in its own file and returns an
//! [`Outcome`] or a [`CliError`]; this module turns them into exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bundle;
mod check;
mod common;
mod demo;
mod generate;
mod inspect;
mod plan;
mod profile;
mod simulate;
mod status;
mod verify;

use common::Outcome;

/// Replace the root CA of an Istio mesh without downtime: inspect, verify, check, plan and
/// simulate CA rotations.
#[derive(Debug, Parser)]
#[command(name = "meshtrust", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One row per certificate of each file: role, names, serial, validity, fingerprint,
    /// SPIFFE IDs and duplicates.
    Inspect(inspect::Args),
    /// Build and compare trust bundles byte-exactly (cat, dedup, diff).
    #[command(subcommand)]
    Bundle(bundle::Command),
    /// Make CA material like Istio's tools/certs, without OpenSSL: roots, per-cluster
    /// intermediates (cacerts directories) and workload certificates.
    #[command(subcommand)]
    Generate(generate::Command),
    /// Check a CA secret (cacerts or istio-ca-secret; directory or kubectl YAML/JSON) the way
    /// istiod of a given version loads it, plus the warnings a rotation needs. Exit 1 on an
    /// error finding.
    Check(check::Args),
    /// Plan a zero-downtime CA rotation (phase directories, plan.json, RUNBOOK.md), or check
    /// a plan on disk with `plan check DIR`.
    Plan(Box<plan::Args>),
    /// Does a certificate (leaf or CA) chain to a root of a bundle at an instant, by which
    /// path, and if not, why not (one line per failed candidate path). Exit 0 valid, 1 not.
    Verify(verify::Args),
    /// Run a plan on a simulated mesh (istiod per cluster, sidecars, ztunnel, waypoints) and
    /// check every connection at every event. Exit 0 when no connection ever fails, 1 when
    /// one does.
    Simulate(simulate::Args),
    /// A whole root rotation on fresh CAs: generate, plan, check, simulate; the files stay in
    /// a directory (printed). Exit 0 when every plan is safe and simulates cleanly.
    Demo(demo::Args),
    /// Where the live mesh stands (per proxy: roots trusted, leaf, warnings; groups), from
    /// dumps and istioctl/kubectl output or `--collect`; with `--plan`, the phase reached and
    /// whether the next is safe. Exit 0 consistent (and safe), 1 blockers or breaking
    /// warnings, 2 unreadable input.
    Status(Box<status::Args>),
}

/// Parses the command line, runs the command and returns its exit code.
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Bundle(cmd) => bundle::run(cmd),
        Command::Generate(cmd) => generate::run(cmd),
        Command::Verify(args) => verify::run(args),
        Command::Check(args) => check::run(args),
        Command::Plan(args) => plan::run(*args),
        Command::Simulate(args) => simulate::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Status(args) => status::run(*args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("meshtrust: error: {e}");
            ExitCode::from(2)
        }
    }
}
