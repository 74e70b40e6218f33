//! `meshtrust demo [--out DIR] [--ambient] [--key-type TYPE]`: a whole root rotation on fresh
//! CAs, end to end: generate root A (the cluster's current CA) and root B (the new one), each
//! with an intermediate, plan the rotation, check the plan as written on disk, and simulate it.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use meshtrust::fsio;
use meshtrust::generate::{self, KeyType};
use meshtrust::istio::{self, DataPlane, IstioProfile, IstioVersion, format_duration};
use meshtrust::plan::{self, ClusterInput, Plan, PlanOptions};
use meshtrust::sim::{self, Outcome, SimConfig};

use super::common::{self, CliError, Outcome as Exit};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to leave the CAs and plans (must not exist, or be empty); default: a new
    /// temporary directory, whose path is printed.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Tell the story of the ambient mesh (ztunnel + waypoints) instead of the sidecar one.
    #[arg(long)]
    ambient: bool,
    /// Key type of the CAs: ec-p256 (default, fast), rsa4096 (Istio's tools/certs), rsa2048,
    /// rsa3072, ec-p384, ed25519.
    #[arg(long, value_name = "TYPE", default_value = "ec-p256")]
    key_type: KeyType,
    /// Proxies in each simulated mesh.
    #[arg(long, value_name = "N", default_value_t = 100)]
    workloads: usize,
    /// Seed of the simulations.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
}

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

/// The output directory: the one given (absent or empty), or a new temporary one.
fn output_dir(out: Option<PathBuf>, now: OffsetDateTime) -> Result<PathBuf, CliError> {
    if let Some(dir) = out {
        if dir.exists() {
            let mut entries = std::fs::read_dir(&dir).map_err(|e| CliError::in_file(&dir, e))?;
            if entries.next().is_some() {
                return Err(CliError::in_file(&dir, "exists and is not empty"));
            }
        } else {
            std::fs::create_dir_all(&dir).map_err(|e| CliError::in_file(&dir, e))?;
        }
        return Ok(dir);
    }
    let dir = std::env::temp_dir().join(format!(
        "meshtrust-demo-{}-{}",
        std::process::id(),
        now.unix_timestamp_nanos()
    ));
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir).map_err(|e| CliError::in_file(&dir, e))?;
    Ok(dir)
}

/// A root and its intermediate `L=cluster1`, written as Istio's tools/certs lay them out:
/// DIR/root-cert.pem, root-key.pem and DIR/cluster1/ (a cacerts directory).
fn make_ca(dir: &Path, key_type: KeyType, at: OffsetDateTime) -> Result<PathBuf, CliError> {
    let (root, int) = generate::istio_ca("cluster1", key_type, at).map_err(fail)?;
    let mut files = istio::root_files(dir, &root);
    files.extend(istio::intermediate_files(dir, "cluster1", &int).map_err(fail)?);
    fsio::write_all(&files, false).map_err(fail)?;
    Ok(dir.join("cluster1"))
}

fn describe(p: &IstioProfile) -> String {
    match p.data_plane {
        DataPlane::Ambient => format!(
            "ambient mesh (ztunnel {} and waypoints), ISTIO_MULTIROOT_MESH and PROXY_CONFIG_XDS_AGENT on",
            p.ztunnel()
        ),
        _ => "sidecar mesh, ISTIO_MULTIROOT_MESH and PROXY_CONFIG_XDS_AGENT on".to_owned(),
    }
}

fn result_line(o: &Outcome) -> String {
    let verdict = if o.ran_as_planned() {
        "every connection held, and the mesh ended trusting only the new root".to_owned()
    } else if o.ok() {
        format!(
            "no connection failed, but the plan did not run as written ({} deviation(s))",
            o.deviations.len()
        )
    } else {
        format!(
            "{} connection checks FAILED",
            common::thousands(o.failed_connections)
        )
    };
    format!(
        "{} proxies, {} events, {} connections checked: {verdict}",
        o.proxies,
        common::thousands(o.events),
        common::thousands(o.connections)
    )
}

pub(crate) fn run(a: Args) -> Result<Exit, CliError> {
    if !a.key_type.available() {
        return Err(CliError(format!(
            "--key-type {}: RSA key generation needs the rsa-keygen feature",
            a.key_type.name()
        )));
    }
    let now = OffsetDateTime::now_utc();
    let dir = output_dir(a.out, now)?;
    // Root A has been in use for a month; root B is made today.
    let current = make_ca(
        &dir.join("rootA"),
        a.key_type,
        now - time::Duration::days(30),
    )?;
    let new = make_ca(&dir.join("rootB"), a.key_type, now)?;
    let read = |p: &Path| istio::read_dir(p).map_err(|e| CliError::in_file(p, e));
    let inputs = [ClusterInput::single(read(&current)?, read(&new)?)];

    // The demo makes its own mesh, of the newest modelled version, said explicitly.
    let base = IstioProfile {
        istio_version: IstioVersion::NEWEST,
        multiroot: true,
        xds_agent: true,
        ..IstioProfile::default()
    };
    let ambient = IstioProfile {
        data_plane: DataPlane::Ambient,
        ztunnel_version: Some(IstioVersion::NEWEST),
        ..base.clone()
    };
    let mut out = format!(
        "meshtrust demo: root A -> root B ({} CAs), planned, checked and simulated.\nFiles in {}:\n  rootA/             root A (the cluster's current CA), rootA/cluster1/ its intermediate (cacerts layout)\n  rootB/             root B (the new CA), rootB/cluster1/\n  plan-sidecar/      the plan for a sidecar mesh: RUNBOOK.md, plan.json, one directory per phase\n  plan-ambient/      the plan for an ambient mesh\n",
        a.key_type.name(),
        dir.display()
    );
    let mut ok = true;
    let mut stories = Vec::new();
    let mut results = Vec::new();
    let mut plans: Vec<(&str, Plan)> = Vec::new();
    for (name, profile) in [("sidecar", &base), ("ambient", &ambient)] {
        let made = plan::plan(&inputs, profile, &PlanOptions::default(), now).map_err(fail)?;
        let pdir = dir.join(format!("plan-{name}"));
        plan::write_plan_dir(&made, &pdir).map_err(fail)?;
        // Check and simulate the plan as written on disk.
        let checked = plan::check_dir(
            &pdir,
            |_| Ok::<_, std::convert::Infallible>(profile.clone()),
            now,
        )
        .map_err(fail)?;
        let (p, findings) = (checked.plan, checked.findings);
        let safe = !plan::has_errors(&findings);
        ok &= safe;
        let o = sim::simulate(&p, &SimConfig::new(now, a.seed, a.workloads)).map_err(fail)?;
        ok &= o.ran_as_planned();
        results.push(format!(
            "  {name} plan on {} {name} mesh: plan check {}; simulation: {}",
            if name == "ambient" { "an" } else { "a" },
            if safe { "safe" } else { "NOT safe" },
            result_line(&o)
        ));
        if (name == "ambient") == a.ambient {
            stories.push(format!(
                "\nThe {name} plan ({}): {} phases, at least {}.\n{}",
                describe(&p.profile),
                p.phases.len(),
                format_duration(p.min_duration()),
                o.story()
            ));
        }
        plans.push((name, p));
    }
    // What the ambient plan's ztunnel restarts are for: the sidecar plan on an ambient mesh.
    if let Some((_, sidecar_plan)) = plans.iter().find(|(n, _)| *n == "sidecar") {
        let mut on_ambient = sidecar_plan.clone();
        on_ambient.profile = ambient.clone();
        let o =
            sim::simulate(&on_ambient, &SimConfig::new(now, a.seed, a.workloads)).map_err(fail)?;
        results.push(format!(
            "  (for comparison, the sidecar plan on an ambient mesh: {}{})",
            result_line(&o),
            if o.ok() {
                String::new()
            } else {
                ": ztunnel learns roots only from CSR responses, which is why the ambient plan restarts the ztunnel daemonset".to_owned()
            }
        ));
    }
    for s in &stories {
        out.push_str(s);
    }
    out.push_str("\nResults:\n");
    for r in &results {
        out.push_str(r);
        out.push('\n');
    }
    let shown = if a.ambient { "ambient" } else { "sidecar" };
    out.push_str(&format!(
        "\nNext: read {d}/plan-{shown}/RUNBOOK.md; `meshtrust plan check {d}/plan-{shown}`; `meshtrust simulate --workloads 1000 {d}/plan-{shown}`; try a broken profile, e.g. `meshtrust simulate --multiroot=false {d}/plan-{shown}`.\n",
        d = dir.display()
    ));
    common::write_stdout(out.as_bytes())?;
    Ok(Exit::from_ok(ok))
}
