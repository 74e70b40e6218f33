//! Plans made from Istio's samples (kinds 1, 3 and 4; kind 2 from a self-signed secret made
//! here), their files against Istio's own combined root files, `openssl verify` on every
//! phase, writing and reading plan directories, and the `plan` / `plan check` commands.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust::bundle::Bundle;
use meshtrust::generate::{self, KeyType, RootSpec};
use meshtrust::istio::{self, CaSecret, IstioProfile};
use meshtrust::plan::{self, CheckOptions, ClusterInput, PlanError, PlanOptions, RotationKind};
use meshtrust::{Certificate, Fingerprint};
use time::OffsetDateTime;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/istio-samples")
            .join(name),
    )
    .unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap()
}

fn a() -> CaSecret {
    CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert.pem"),
    )
}
fn b() -> CaSecret {
    CaSecret::cacerts(
        &sample("ca-cert-alt.pem"),
        &sample("ca-key-alt.pem"),
        &sample("cert-chain-alt.pem"),
        &sample("root-cert-alt.pem"),
    )
}
fn b2() -> CaSecret {
    CaSecret::cacerts(
        &sample("ca-cert-alt-2.pem"),
        &sample("ca-key-alt-2.pem"),
        &sample("cert-chain-alt-2.pem"),
        &sample("root-cert-alt.pem"),
    )
}

fn profile() -> IstioProfile {
    IstioProfile {
        multiroot: true,
        xds_agent: true,
        ..IstioProfile::default()
    }
}

fn fps(bytes: &[u8]) -> Vec<Fingerprint> {
    Bundle::parse(bytes)
        .unwrap()
        .certificates()
        .map(Certificate::fingerprint)
        .collect()
}

fn openssl_verify_phase(dir: &Path, s: &CaSecret) {
    istio::write_dir(s, dir, false).unwrap();
    let out = Command::new("openssl")
        .args([
            "verify",
            "-no-CApath",
            "-no-CAstore",
            "-CAfile",
            "root-cert.pem",
            "-untrusted",
            "cert-chain.pem",
            "ca-cert.pem",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl (test oracle)");
    assert!(
        out.status.success(),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn root_rotation_from_istio_samples_reproduces_istios_combined_files() {
    let p = plan::plan(
        &[ClusterInput::single(a(), b())],
        &profile(),
        &PlanOptions::default(),
        now(),
    )
    .unwrap();
    assert_eq!(p.kind, RotationKind::RootRotation);
    let names: Vec<&str> = p.phases.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "00-current",
            "01-trust-both",
            "02-switch-signer",
            "03-drop-old-root"
        ]
    );
    let root = |k: usize| {
        p.phases[k].clusters[0]
            .secret
            .file("root-cert.pem")
            .unwrap()
            .to_vec()
    };
    // 00 as read; 01 = A + B; 02 = A + B + B: the certificate sequences of Istio's own
    // root-cert-combined.pem and root-cert-combined-2.pem; 03 = B, byte for byte.
    assert_eq!(root(0), sample("root-cert.pem"));
    assert_eq!(fps(&root(1)), fps(&sample("root-cert-combined.pem")));
    assert_eq!(fps(&root(2)), fps(&sample("root-cert-combined-2.pem")));
    assert_eq!(
        root(1),
        [sample("root-cert.pem"), sample("root-cert-alt.pem")].concat()
    );
    assert!(root(2).starts_with(&root(1)));
    assert_eq!(root(3), sample("root-cert-alt.pem"));
    assert!(p.phases[2].trigger && !p.phases[1].trigger);
    // Signers: A's intermediate, then B's.
    assert_eq!(
        p.phases[1].clusters[0].secret.file("ca-cert.pem").unwrap(),
        &sample("ca-cert.pem")[..]
    );
    assert_eq!(
        p.phases[2].clusters[0].secret.file("ca-key.pem").unwrap(),
        &sample("ca-key-alt.pem")[..]
    );
    // The wait before dropping A covers a leaf lifetime.
    assert!(p.phases[2].gate.as_ref().unwrap().min_wait >= profile().leaf_ttl);
    // openssl agrees that every phase's ca-cert verifies against its root-cert.pem.
    let tmp = tempfile::tempdir().unwrap();
    for ph in &p.phases {
        openssl_verify_phase(&tmp.path().join(&ph.name), &ph.clusters[0].secret);
    }
}

#[test]
fn self_signed_to_plugged_in() {
    // istiod's self-signed root: O=cluster.local, no CN, RSA 2048, keyUsage certSign.
    let mut spec = RootSpec::istio();
    spec.subject = generate::Name::new().with(generate::Attribute::Organization, "cluster.local");
    spec.key_type = KeyType::EcP256;
    let s = generate::root(&spec, now() - time::Duration::days(300)).unwrap();
    let cert = s.cert_pem.clone().into_bytes();
    let secret = s.istio_ca_secret();
    let p = plan::plan(
        &[ClusterInput::single(secret, b())],
        &profile(),
        &PlanOptions::default(),
        now(),
    )
    .unwrap();
    assert_eq!(p.kind, RotationKind::SelfSignedToPluggedIn);
    // Phase 1 is a new cacerts where S keeps signing, with cert-chain.pem = S, roots S + B,
    // and istiod restarts to leave self-signed mode.
    let p1 = &p.phases[1].clusters[0].secret;
    assert_eq!(p1.name, "cacerts");
    assert_eq!(p1.file("cert-chain.pem").unwrap(), &cert[..]);
    assert_eq!(
        fps(p1.file("root-cert.pem").unwrap()),
        [fps(&cert), fps(&sample("root-cert-alt.pem"))].concat()
    );
    assert!(
        p.phases[1]
            .actions
            .iter()
            .any(|a| matches!(a, plan::Action::RestartIstiod { .. }))
    );
    // S + B + B, then B.
    assert_eq!(
        fps(p.phases[2].clusters[0]
            .secret
            .file("root-cert.pem")
            .unwrap())
        .len(),
        3
    );
    assert_eq!(
        p.phases[3].clusters[0]
            .secret
            .file("root-cert.pem")
            .unwrap(),
        &sample("root-cert-alt.pem")[..]
    );
    let tmp = tempfile::tempdir().unwrap();
    for ph in &p.phases[1..] {
        openssl_verify_phase(&tmp.path().join(&ph.name), &ph.clusters[0].secret);
    }
}

#[test]
fn intermediate_and_multi_cluster_from_samples_are_refused_for_the_mismatched_alt_2_key() {
    // Kind 3 (cluster1 -> cluster2 intermediate under root B) and kind 4 (two clusters) both
    // need ca-key-alt-2.pem, which does not belong to ca-cert-alt-2.pem in Istio's samples.
    for (inputs, kind) in [
        (
            vec![ClusterInput::single(b(), b2())],
            RotationKind::IntermediateRotation,
        ),
        (
            vec![
                ClusterInput {
                    name: "cluster1".into(),
                    current: a(),
                    new: b(),
                },
                ClusterInput {
                    name: "cluster2".into(),
                    current: a(),
                    new: b2(),
                },
            ],
            RotationKind::MultiCluster,
        ),
    ] {
        match plan::plan(&inputs, &profile(), &PlanOptions::default(), now()) {
            Err(PlanError::Refused(f)) => {
                assert!(
                    f.iter().any(|x| x.code.as_str() == "ca-key-mismatch"),
                    "{kind}: {f:#?}"
                );
            }
            other => panic!("{kind}: expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn intermediate_and_multi_cluster_with_istio_shaped_material() {
    // The samples' shapes (cluster1/cluster2 intermediates under one root), made with
    // meshtrust's Istio-shaped generator so that the keys match.
    let t = now() - time::Duration::days(10);
    let mk_root = |org: &str| {
        let mut s = RootSpec::istio();
        s.key_type = KeyType::EcP256;
        s.subject = generate::Name::new()
            .with(generate::Attribute::Organization, org)
            .with(generate::Attribute::CommonName, "Root CA");
        generate::root(&s, t).unwrap()
    };
    let inter = |root: &generate::Generated, cluster: &str| {
        let mut s = generate::IntermediateSpec::istio(cluster);
        s.key_type = KeyType::EcP256;
        generate::intermediate(&s, &root.issuer().unwrap(), t)
            .unwrap()
            .cacerts()
    };
    let (ra, rb) = (mk_root("Istio"), mk_root("Istio"));
    // Kind 3, with and without immediate re-issue.
    for reissue in [false, true] {
        let opts = PlanOptions {
            reissue_now: reissue,
            ..PlanOptions::default()
        };
        let p = plan::plan(
            &[ClusterInput::single(
                inter(&ra, "cluster1"),
                inter(&ra, "cluster2"),
            )],
            &profile(),
            &opts,
            now(),
        )
        .unwrap();
        assert_eq!(p.kind, RotationKind::IntermediateRotation);
        assert_eq!(p.phases.len(), if reissue { 3 } else { 2 });
        let r0 = p.phases[0].clusters[0]
            .secret
            .file("root-cert.pem")
            .unwrap()
            .to_vec();
        let r1 = p.phases[1].clusters[0]
            .secret
            .file("root-cert.pem")
            .unwrap()
            .to_vec();
        assert_eq!(
            r1 == r0,
            !reissue,
            "root bytes change only for the immediate re-issue (A -> A+A)"
        );
        assert_eq!(
            p.phases.last().unwrap().clusters[0]
                .secret
                .file("root-cert.pem")
                .unwrap(),
            &r0[..]
        );
    }
    // Kind 4: two clusters share root A, move to root B with new per-cluster intermediates.
    let inputs = vec![
        ClusterInput {
            name: "cluster1".into(),
            current: inter(&ra, "cluster1"),
            new: inter(&rb, "cluster1"),
        },
        ClusterInput {
            name: "cluster2".into(),
            current: inter(&ra, "cluster2"),
            new: inter(&rb, "cluster2"),
        },
    ];
    let p = plan::plan(&inputs, &profile(), &PlanOptions::default(), now()).unwrap();
    assert_eq!(p.kind, RotationKind::MultiCluster);
    assert!(
        p.phases[1].gate.as_ref().unwrap().barrier && p.phases[2].gate.as_ref().unwrap().barrier
    );
    for ph in &p.phases {
        assert_eq!(ph.clusters.len(), 2);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plan");
    plan::write_plan_dir(&p, &dir).unwrap();
    assert!(dir.join("02-switch-signer/cluster2/ca-cert.pem").is_file());
    let plan::PlanDir {
        plan: back,
        has_json,
        findings: f,
        ..
    } = plan::read_plan_dir(&dir).unwrap();
    assert!(has_json && f.is_empty(), "{f:?}");
    assert_eq!(back.clusters, ["cluster1", "cluster2"]);
    let f = plan::check_plan(
        &back,
        &CheckOptions {
            now: now(),
            margin: PlanOptions::default().margin,
            waits_known: true,
        },
    );
    assert!(!plan::has_errors(&f), "{f:#?}");
}

#[test]
fn refusals_name_their_reason() {
    let refused = |inputs: &[ClusterInput],
                   profile: &IstioProfile,
                   kind: Option<RotationKind>|
     -> Vec<&'static str> {
        match plan::plan(
            inputs,
            profile,
            &PlanOptions {
                kind,
                ..PlanOptions::default()
            },
            now(),
        ) {
            Err(PlanError::Refused(f)) => f.iter().map(|x| x.code.as_str()).collect(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    let one = [ClusterInput::single(a(), b())];
    assert!(refused(&one, &IstioProfile::default(), None).contains(&"multiroot-off"));
    let amb = IstioProfile {
        data_plane: istio::DataPlane::Ambient,
        ztunnel_version: Some("1.25.1".parse().unwrap()),
        ..profile()
    };
    assert!(refused(&one, &amb, None).contains(&"ztunnel-multiroot-unsupported"));
    // The same root: not a root rotation.
    assert!(
        refused(
            &[ClusterInput::single(a(), a())],
            &profile(),
            Some(RotationKind::RootRotation)
        )
        .contains(&"nothing-to-rotate")
    );
    // A new intermediate that does not chain to the new root.
    let unchained = CaSecret::cacerts(
        &sample("ca-cert-alt.pem"),
        &sample("ca-key-alt.pem"),
        &sample("ca-cert-alt.pem"),
        &sample("root-cert.pem"),
    );
    assert!(
        refused(&[ClusterInput::single(a(), unchained)], &profile(), None)
            .contains(&"new-intermediate-unchained")
    );
    // A key that does not match.
    let mismatched = CaSecret::cacerts(
        &sample("ca-cert-alt.pem"),
        &sample("ca-key.pem"),
        &sample("cert-chain-alt.pem"),
        &sample("root-cert-alt.pem"),
    );
    assert!(
        refused(&[ClusterInput::single(a(), mismatched)], &profile(), None)
            .contains(&"ca-key-mismatch")
    );
    // A new CA that expires before the leaves it must cover: plan just before B expires.
    let late = b().ca_cert().unwrap().not_after() - time::Duration::hours(12);
    match plan::plan(&one, &profile(), &PlanOptions::default(), late) {
        Err(PlanError::Refused(f)) => {
            assert!(
                f.iter().any(|x| x.code.as_str() == "new-ca-expires-early"),
                "{f:#?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn plan_and_plan_check_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cb) = (tmp.path().join("a"), tmp.path().join("b"));
    istio::write_dir(&a(), &ca, false).unwrap();
    istio::write_dir(&b(), &cb, false).unwrap();
    let out: PathBuf = tmp.path().join("plan");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    // No version: a usage error (exit 2) naming the known versions, nothing written.
    let r = run(&[
        "plan",
        "--current",
        &s(&ca),
        "--new",
        &s(&cb),
        "--out",
        &s(&out),
        "--multiroot",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("1.22.0 to 1.31.x"));
    assert!(!out.exists());
    // Refused without --multiroot: exit 1, nothing written.
    let r = run(&[
        "plan",
        "--istio-version",
        "1.31.0",
        "--current",
        &s(&ca),
        "--new",
        &s(&cb),
        "--out",
        &s(&out),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stdout).contains("multiroot-off"));
    assert!(!out.exists());
    let r = run(&[
        "plan",
        "--istio-version",
        "1.31.0",
        "--current",
        &s(&ca),
        "--new",
        &s(&cb),
        "--out",
        &s(&out),
        "--multiroot",
        "--xds-agent",
        "--json",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(j["kind"], "root-rotation");
    let phases = j["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 4);
    for ph in phases {
        for key in ["name", "files", "trust_set", "signer", "actions", "gate"] {
            assert!(ph.get(key).is_some(), "{key}");
        }
    }
    assert!(phases[2]["gate"]["min_wait_seconds"].as_u64().unwrap() >= 24 * 3600);
    assert_eq!(phases[1]["trust_set"].as_array().unwrap().len(), 2);
    for dir in [
        "00-current",
        "01-trust-both",
        "02-switch-signer",
        "03-drop-old-root",
    ] {
        for f in [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem",
            "secret.yaml",
        ] {
            assert!(out.join(dir).join(f).is_file(), "{dir}/{f}");
        }
    }
    assert!(out.join("plan.json").is_file() && out.join("RUNBOOK.md").is_file());
    let runbook = std::fs::read_to_string(out.join("RUNBOOK.md")).unwrap();
    assert!(runbook.contains("kubectl apply") && runbook.contains("istioctl proxy-config secret"));
    // Writing again into a non-empty directory is refused.
    let r = run(&[
        "plan",
        "--istio-version",
        "1.31.0",
        "--current",
        &s(&ca),
        "--new",
        &s(&cb),
        "--out",
        &s(&out),
        "--multiroot",
    ]);
    assert_eq!(r.status.code(), Some(2));

    let r = run(&["plan", "check", &s(&out)]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    // The same plan checked as if ISTIO_MULTIROOT_MESH were off: not safe.
    let r = run(&["plan", "check", "--json", "--multiroot=false", &s(&out)]);
    assert_eq!(r.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(j["ok"], false);
    // Hand-edit: reorder the roots of phase 2 (B+B+A): plan.json no longer matches, and istiod
    // (1.29) would refuse the file.
    let p2 = out.join("02-switch-signer/root-cert.pem");
    let reordered = [
        sample("root-cert-alt.pem"),
        sample("root-cert-alt.pem"),
        sample("root-cert.pem"),
    ]
    .concat();
    std::fs::write(&p2, reordered).unwrap();
    let r = run(&[
        "plan",
        "check",
        "--json",
        "--istio-version",
        "1.29",
        &s(&out),
    ]);
    assert_eq!(r.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let codes: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"plan-json-mismatch") && codes.contains(&"root-containment"),
        "{codes:?}"
    );
    // Without plan.json the phase directories alone are checked, and the version is a flag.
    std::fs::remove_file(out.join("plan.json")).unwrap();
    let r = run(&["plan", "check", "--multiroot", &s(&out)]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--istio-version"));
    let r = run(&[
        "plan",
        "check",
        "--multiroot",
        "--istio-version",
        "1.29",
        &s(&out),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stdout).contains("root-containment"));
}

#[test]
fn multi_cluster_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cb) = (tmp.path().join("a"), tmp.path().join("b"));
    istio::write_dir(&a(), &ca, false).unwrap();
    istio::write_dir(&b2(), &cb, false).unwrap();
    let out = tmp.path().join("plan");
    let spec1 = format!("cluster1={},{}", ca.display(), cb.display());
    let r = run(&[
        "plan",
        "--istio-version",
        "1.31.0",
        "--cluster",
        &spec1,
        "--cluster",
        &spec1.replace("cluster1=", "cluster2="),
        "--out",
        out.to_str().unwrap(),
        "--multiroot",
    ]);
    // The alt-2 key mismatch refuses the plan, naming the code.
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stdout).contains("ca-key-mismatch"));
    assert!(!out.exists());
}

#[test]
fn plan_json_cannot_make_the_checker_read_outside_the_plan() {
    let p = plan::plan(
        &[ClusterInput::single(a(), b())],
        &profile(),
        &PlanOptions::default(),
        now(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plan");
    plan::write_plan_dir(&p, &dir).unwrap();
    let path = dir.join("plan.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"ca-cert.pem\"", "\"../../../../etc/hostname\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let findings = plan::read_plan_dir(&dir).unwrap().findings;
    assert!(
        findings
            .iter()
            .any(|f| f.code.as_str() == "plan-json-mismatch"
                && f.message.contains("outside the phase directory")),
        "{findings:#?}"
    );
}
