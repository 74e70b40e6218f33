//! Shared helpers for the integration tests: running `openssl verify` as an oracle and
//! OpenSSL recipes (the strategies live in `meshtrust::testkit`).
// Helpers shared by several test crates: `pub` so each can use them, not every one does.
#![allow(dead_code, unreachable_pub)]

pub mod recipe;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// What `openssl verify` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpensslVerdict {
    /// True for "target.pem: OK".
    pub ok: bool,
    /// Every `error N at D depth lookup` code reported (the verify app continues after some).
    pub errors: BTreeSet<u32>,
    /// The raw output, for failure messages.
    pub output: String,
}

/// Runs `openssl verify [-x509_strict] -no-CApath -no-CAstore -CAfile ROOTS [-untrusted
/// CHAIN] -attime AT TARGET` with the PEM texts written into `dir`.
pub fn openssl_verify(
    dir: &Path,
    strict: bool,
    roots_pem: &str,
    chain_pem: &str,
    target_pem: &str,
    at: i64,
) -> OpensslVerdict {
    let roots = dir.join("roots.pem");
    let chain = dir.join("chain.pem");
    let target = dir.join("target.pem");
    std::fs::write(&roots, roots_pem).unwrap();
    std::fs::write(&target, target_pem).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.arg("verify");
    if strict {
        cmd.arg("-x509_strict");
    }
    cmd.args(["-no-CApath", "-no-CAstore", "-CAfile"])
        .arg(&roots);
    if !chain_pem.is_empty() {
        std::fs::write(&chain, chain_pem).unwrap();
        cmd.arg("-untrusted").arg(&chain);
    }
    cmd.arg("-attime").arg(at.to_string()).arg(&target);
    let out = cmd
        .output()
        .expect("the openssl binary (test oracle) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = text
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("error ")?;
            let (code, tail) = rest.split_once(' ')?;
            tail.starts_with("at ").then(|| code.parse().ok())?
        })
        .collect();
    OpensslVerdict {
        ok: out.status.success() && text.contains(": OK"),
        errors,
        output: text,
    }
}

/// Concatenated PEM of these certificates.
pub fn pem_of<'a>(certs: impl IntoIterator<Item = &'a meshtrust::Certificate>) -> String {
    certs.into_iter().map(|c| c.to_pem()).collect()
}

/// meshtrust assumes no Istio version: the commands that need one and read no plan.json get
/// the version these tests are written for.
pub fn versioned<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    let needs = match args {
        ["status", ..] => !args.contains(&"--plan"),
        ["plan", sub, ..] => !matches!(*sub, "check" | "seal" | "drift"),
        ["check", ..] => true,
        _ => false,
    };
    if needs && !args.contains(&"--istio-version") {
        v.splice(1..1, ["--istio-version", "1.30.0"]);
    }
    v
}

/// Roots A (now) and B (new), each with one intermediate per cluster: cluster1 and cluster2
/// move from A to B together, each with its own signer (ECDSA P-256, made at `now`).
pub fn two_cluster_plan(now: time::OffsetDateTime) -> meshtrust::plan::Plan {
    use meshtrust::generate::{self, IntermediateSpec, KeyType, RootSpec};
    use meshtrust::istio::{DataPlane, IstioProfile};
    use meshtrust::plan::{self, ClusterInput, PlanOptions};
    let root = || {
        let spec = RootSpec {
            key_type: KeyType::EcP256,
            ..RootSpec::istio()
        };
        generate::root(&spec, now).unwrap()
    };
    let int = |root: &generate::Generated, cluster: &str| {
        let spec = IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio(cluster)
        };
        generate::intermediate(&spec, &root.issuer().unwrap(), now)
            .unwrap()
            .cacerts()
    };
    let (a, b) = (root(), root());
    let inputs = ["cluster1", "cluster2"].map(|c| ClusterInput {
        name: c.to_owned(),
        current: int(&a, c),
        new: int(&b, c),
    });
    let profile = IstioProfile {
        multiroot: true,
        xds_agent: true,
        data_plane: DataPlane::Both,
        ..IstioProfile::default()
    };
    let p = plan::plan(&inputs, &profile, &PlanOptions::default(), now).unwrap();
    assert!(p.is_multi_cluster());
    assert_eq!(p.clusters, ["cluster1", "cluster2"]);
    p
}
