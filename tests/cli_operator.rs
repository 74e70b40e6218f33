//! Issue 15 through the real binary: the applied secret.yaml is the checked artifact
//! (`plan check` / `simulate` refuse a mismatch, `plan seal`), `simulate` agrees with
//! `plan check`, and the one CLI contract (exit codes, `-` stdin, inspect, key refusal, help,
//! error wording).
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use meshtrust::istio::{self, CaSecret};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .expect("run meshtrust")
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/istio-samples")
        .join(name)
}

/// A demo directory (roots A and B, plan-sidecar, plan-ambient).
fn demo(tmp: &Path) -> PathBuf {
    let d = tmp.join("demo");
    let o = run(&["demo", "--out", s(&d), "--workloads", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    d
}

fn rewrite_secret_yaml(phase_dir: &Path, file: &str, bytes: &[u8]) {
    let path = phase_dir.join("secret.yaml");
    let mut secret = istio::parse_manifest(&std::fs::read(&path).unwrap()).unwrap();
    secret.set_file(file, bytes.to_vec());
    std::fs::write(&path, secret.to_manifest_yaml().as_bytes()).unwrap();
}

#[test]
fn plan_check_and_simulate_refuse_a_secret_yaml_that_dropped_the_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = demo(tmp.path()).join("plan-sidecar");
    let ok = run(&["plan", "check", s(&plan)]);
    assert_eq!(ok.status.code(), Some(0), "{}", out(&ok));
    // The applied file drops the deliberate duplicate (A+B instead of A+B+B); the PEM files
    // that plan check used to prove stay as planned.
    let ab = std::fs::read(plan.join("01-trust-both/root-cert.pem")).unwrap();
    rewrite_secret_yaml(&plan.join("02-switch-signer"), "root-cert.pem", &ab);
    let o = run(&["plan", "check", "--json", s(&plan)]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "secret-yaml-mismatch")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(f["phase"], "02-switch-signer");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("root-cert.pem: secret.yaml holds"), "{msg}");
    assert!(
        msg.contains("2 certificate block(s)") && msg.contains("3 certificate block(s)"),
        "{msg}"
    );
    // plan.json's recorded hash of secret.yaml disagrees too.
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "plan-json-mismatch"
                && f["message"].as_str().unwrap().contains("secret.yaml")),
        "{v}"
    );
    let sim = run(&["simulate", "--workloads", "10", s(&plan)]);
    assert_eq!(sim.status.code(), Some(1), "{}", out(&sim));
    assert!(out(&sim).contains("refusing to simulate"), "{}", out(&sim));
    assert!(!out(&sim).contains("Result: OK"), "{}", out(&sim));
}

#[test]
fn plan_seal_reseals_a_safe_edit_and_refuses_an_unsafe_one() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = demo(tmp.path()).join("plan-sidecar");
    let json_before = std::fs::read_to_string(plan.join("plan.json")).unwrap();
    // A safe hand edit for Istio 1.30 (set containment): the last phase's root file re-encoded
    // with CRLF on its first line only (same certificate, other bytes).
    let p3 = plan.join("03-drop-old-root");
    let b = std::fs::read_to_string(p3.join("root-cert.pem")).unwrap();
    let edited = b.replacen('\n', "\r\n", 1);
    std::fs::write(p3.join("root-cert.pem"), &edited).unwrap();
    let before = run(&["plan", "check", s(&plan)]);
    assert_eq!(before.status.code(), Some(1), "{}", out(&before));
    let o = run(&["plan", "seal", s(&plan)]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("sealed"), "{}", out(&o));
    let applied = istio::parse_manifest(&std::fs::read(p3.join("secret.yaml")).unwrap()).unwrap();
    assert_eq!(applied.file("root-cert.pem"), Some(edited.as_bytes()));
    let after = run(&["plan", "check", s(&plan)]);
    assert_eq!(after.status.code(), Some(0), "{}", out(&after));
    // The CRLF/LF mix is a warning (istiod up to 1.29 compares bytes).
    assert!(
        out(&after).contains("mixed-line-endings"),
        "{}",
        out(&after)
    );
    // Profile and waits survive the seal.
    let (j0, j1): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&json_before).unwrap(),
        serde_json::from_str(&std::fs::read_to_string(plan.join("plan.json")).unwrap()).unwrap(),
    );
    assert_eq!(j0["profile"], j1["profile"]);
    for i in 0..4 {
        assert_eq!(j0["phases"][i]["gate"], j1["phases"][i]["gate"]);
    }

    // An unsafe edit: the switch phase loses its duplicate. Seal refuses and changes nothing.
    let p2 = plan.join("02-switch-signer");
    let ab = std::fs::read(plan.join("01-trust-both/root-cert.pem")).unwrap();
    std::fs::write(p2.join("root-cert.pem"), &ab).unwrap();
    let yaml_before = std::fs::read(p2.join("secret.yaml")).unwrap();
    let json_before = std::fs::read(plan.join("plan.json")).unwrap();
    let o = run(&["plan", "seal", s(&plan)]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("missing-trigger"), "{}", out(&o));
    assert!(out(&o).contains("nothing changed"), "{}", out(&o));
    assert_eq!(std::fs::read(p2.join("secret.yaml")).unwrap(), yaml_before);
    assert_eq!(std::fs::read(plan.join("plan.json")).unwrap(), json_before);
}

#[test]
fn simulate_never_says_ok_alone_for_a_plan_check_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = demo(tmp.path()).join("plan-sidecar");
    // Shorten the wait before the old root goes to one hour (leaves live 24 h).
    let path = plan.join("plan.json");
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    j["phases"][2]["gate"]["min_wait_seconds"] = serde_json::json!(3600);
    std::fs::write(&path, serde_json::to_string_pretty(&j).unwrap()).unwrap();
    let check = run(&["plan", "check", s(&plan)]);
    assert_eq!(check.status.code(), Some(1), "{}", out(&check));
    assert!(
        out(&check).contains("early-root-removal"),
        "{}",
        out(&check)
    );
    let sim = run(&["simulate", "--workloads", "10", s(&plan)]);
    assert_eq!(sim.status.code(), Some(1), "{}", out(&sim));
    let text = out(&sim);
    assert!(text.contains("plan check refuses this plan"), "{text}");
    assert!(text.contains("early-root-removal"), "{text}");
    if text.contains("Result: OK") {
        assert!(text.contains("survived only because"), "{text}");
    }
    let sim = run(&["simulate", "--json", "--workloads", "10", s(&plan)]);
    let v: serde_json::Value = serde_json::from_slice(&sim.stdout).unwrap();
    assert_eq!(v["plan_check_ok"], false, "{v}");
}

#[test]
fn current_secret_keeps_its_name_and_type() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    let root = std::fs::read(d.join("rootA/root-cert.pem")).unwrap();
    let key = std::fs::read(d.join("rootA/root-key.pem")).unwrap();
    let live = CaSecret::istio_ca_secret(&root, &key).to_manifest_yaml();
    let live_path = tmp.path().join("live.yaml");
    std::fs::write(&live_path, live.as_bytes()).unwrap();
    let p = tmp.path().join("plan");
    let o = run(&[
        "plan",
        "--current",
        s(&live_path),
        "--new",
        s(&d.join("rootB/cluster1")),
        "--out",
        s(&p),
        "--multiroot",
        "--istio-version",
        "1.30.0",
        "--xds-agent",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let yaml = std::fs::read_to_string(p.join("00-current/secret.yaml")).unwrap();
    assert!(yaml.contains("\n  name: istio-ca-secret\n"), "{yaml}");
    assert!(yaml.contains("\ntype: istio.io/ca-root\n"), "{yaml}");
    let c = run(&["plan", "check", s(&p)]);
    assert_eq!(c.status.code(), Some(0), "{}", out(&c));
}

/// A cacerts directory of Istio's samples, with root-cert.pem cut in the middle of a block.
fn truncated_cacerts(tmp: &Path) -> PathBuf {
    let d = tmp.join("truncated");
    std::fs::create_dir_all(&d).unwrap();
    for f in [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ] {
        std::fs::copy(sample(f), d.join(f)).unwrap();
    }
    let root = std::fs::read(sample("root-cert.pem")).unwrap();
    std::fs::write(d.join("root-cert.pem"), &root[..root.len() / 2]).unwrap();
    d
}

#[test]
fn a_truncated_pem_is_invalid_input_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = truncated_cacerts(tmp.path());
    let o = run(&["inspect", s(&bad.join("root-cert.pem"))]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let o = run(&["check", "--multiroot", "--istio-version", "1.30.0", s(&bad)]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let good = tmp.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    for (f, from) in [
        ("ca-cert.pem", "ca-cert-alt.pem"),
        ("ca-key.pem", "ca-key-alt.pem"),
        ("cert-chain.pem", "cert-chain-alt.pem"),
        ("root-cert.pem", "root-cert-alt.pem"),
    ] {
        std::fs::copy(sample(from), good.join(f)).unwrap();
    }
    let p = tmp.path().join("p");
    let o = run(&[
        "plan",
        "--current",
        s(&bad),
        "--new",
        s(&good),
        "--out",
        s(&p),
        "--multiroot",
        "--istio-version",
        "1.30.0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(!p.exists());
}

#[test]
fn stdin_works_for_check_and_plan_current() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = CaSecret::cacerts(
        &std::fs::read(sample("ca-cert.pem")).unwrap(),
        &std::fs::read(sample("ca-key.pem")).unwrap(),
        &std::fs::read(sample("cert-chain.pem")).unwrap(),
        &std::fs::read(sample("root-cert.pem")).unwrap(),
    );
    let yaml = secret.to_manifest_yaml();
    let o = run_stdin(
        &["check", "--multiroot", "--istio-version", "1.30.0", "-"],
        yaml.as_bytes(),
    );
    assert_ne!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("checked as Istio"), "{}", out(&o));
    let d = demo(tmp.path());
    let p = tmp.path().join("p");
    let cur = std::fs::read_dir(d.join("rootA/cluster1")).unwrap().count();
    assert!(cur >= 4);
    let a = istio::read_dir(&d.join("rootA/cluster1")).unwrap();
    let o = run_stdin(
        &[
            "plan",
            "--current",
            "-",
            "--new",
            s(&d.join("rootB/cluster1")),
            "--out",
            s(&p),
            "--multiroot",
            "--istio-version",
            "1.30.0",
            "--xds-agent",
        ],
        a.to_manifest_yaml().as_bytes(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(p.join("03-drop-old-root/secret.yaml").is_file());
}

#[test]
fn inspect_contract() {
    let tmp = tempfile::tempdir().unwrap();
    // No certificate: exit 2.
    let o = run(&["inspect", s(&sample("ca-key.pem"))]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("no certificate found"), "{}", out(&o));
    // --short: one line per certificate.
    let o = run(&["inspect", "--short", s(&sample("root-cert-combined-2.pem"))]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| l.contains("sha256:")), "{text}");
    assert!(text.lines().last().unwrap().contains("dup of 1"), "{text}");
    // The table fits 120 columns even for a long path; --json keeps the full values.
    let long = tmp
        .path()
        .join("a-rather-long-directory-name-for-certificates")
        .join("x".repeat(60) + ".pem");
    std::fs::create_dir_all(long.parent().unwrap()).unwrap();
    std::fs::copy(sample("workload-foo-cert.pem"), &long).unwrap();
    let o = run(&["inspect", s(&long)]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for l in text.lines() {
        assert!(
            l.chars().count() <= 120,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    let o = run(&["inspect", "--json", s(&long)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["file"], s(&long));
}

#[test]
fn bundle_cat_and_trigger_refuse_a_private_key_and_diff_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let leaky = tmp.path().join("leaky.pem");
    let mut bytes = std::fs::read(sample("root-cert.pem")).unwrap();
    let cert_lines = bytes.iter().filter(|&&b| b == b'\n').count();
    bytes.extend(std::fs::read(sample("ca-key.pem")).unwrap());
    std::fs::write(&leaky, &bytes).unwrap();
    let where_ = format!("{}:{}:", leaky.display(), cert_lines + 1);
    for args in [
        vec!["bundle", "cat", s(&sample("root-cert-alt.pem")), s(&leaky)],
        vec!["bundle", "cat", "--trigger", s(&leaky)],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{}", out(&o));
        assert!(o.stdout.is_empty());
        assert!(out(&o).contains(&where_), "{where_} in {}", out(&o));
    }
    let o = run(&["bundle", "diff", s(&sample("root-cert.pem")), s(&leaky)]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("is a private key"), "{}", out(&o));
    let o = run(&[
        "bundle",
        "diff",
        "--json",
        s(&sample("root-cert.pem")),
        s(&leaky),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["private_keys"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn help_marks_required_options_and_lists_kinds() {
    let o = run(&["plan", "--help"]);
    let text = out(&o);
    assert!(
        text.contains("root-rotation") && text.contains("self-signed-to-plugged-in"),
        "{text}"
    );
    assert!(text.contains("[required]"), "{text}");
    let o = run(&[
        "plan",
        "--kind",
        "bogus",
        "--current",
        "x",
        "--new",
        "y",
        "--out",
        "z",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("intermediate-rotation"), "{}", out(&o));
}

#[test]
fn errors_name_the_path_once_and_its_option() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.yaml");
    let o = run(&[
        "plan",
        "--istio-version",
        "1.30.0",
        "--current",
        s(&missing),
        "--new",
        s(&missing),
        "--out",
        s(&tmp.path().join("p")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains(&format!("--current {}:", missing.display())),
        "{err}"
    );
    assert_eq!(err.matches(s(&missing)).count(), 1, "{err}");
    // An output directory that cannot be created names --out and the path given, never the
    // staging directory.
    let d = demo(tmp.path());
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = run(&[
        "plan",
        "--current",
        s(&d.join("rootA/cluster1")),
        "--new",
        s(&d.join("rootB/cluster1")),
        "--out",
        s(&file.join("plan")),
        "--multiroot",
        "--istio-version",
        "1.30.0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("--out"), "{err}");
    assert!(!err.contains(".meshtrust-"), "{err}");
}

/// The code blocks of a runbook, in order.
fn code_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        let t = line.trim();
        if t == "```sh" {
            cur = Some(String::new());
        } else if t == "```" {
            if let Some(c) = cur.take() {
                out.push(c);
            }
        } else if let Some(c) = cur.as_mut() {
            c.push_str(t);
            c.push('\n');
        }
    }
    out
}

#[test]
fn runbook_backs_up_checks_drift_applies_server_side_and_says_how_to_go_back() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    let p = tmp.path().join("ctx");
    let o = run(&[
        "plan",
        "--current",
        s(&d.join("rootA/cluster1")),
        "--new",
        s(&d.join("rootB/cluster1")),
        "--out",
        s(&p),
        "--multiroot",
        "--istio-version",
        "1.30.0",
        "--xds-agent",
        "--context",
        "prod-east",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let md = std::fs::read_to_string(p.join("RUNBOOK.md")).unwrap();
    let blocks = code_blocks(&md);
    // Every kubectl/istioctl line carries the context.
    for b in &blocks {
        for word in ["kubectl ", "istioctl "] {
            assert_eq!(
                b.matches(word).count(),
                b.matches(&format!("{word}--context prod-east ")).count(),
                "{b}"
            );
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("plan.json")).unwrap()).unwrap();
    assert_eq!(json["contexts"]["default"], "prod-east");
    for ph in json["phases"].as_array().unwrap() {
        for a in ph["actions"].as_array().unwrap() {
            assert!(
                a["command"]
                    .as_str()
                    .unwrap()
                    .contains("--context prod-east"),
                "{a}"
            );
        }
    }
    // The backup comes before the first apply; every apply is server-side and follows a
    // drift check; no client-side apply copies the key into an annotation.
    let backup = md
        .find("get secret cacerts -n istio-system -o yaml --ignore-not-found > backup/cacerts.yaml")
        .unwrap();
    let first_apply = md.find("apply --server-side").unwrap();
    assert!(backup < first_apply);
    assert!(!md.contains("apply -f"), "client-side apply in the runbook");
    for (i, b) in blocks.iter().enumerate() {
        if b.contains("apply --server-side") && !b.contains("plan drift") {
            assert!(
                blocks[i - 1].contains("meshtrust plan drift --expect ../"),
                "{}\n{b}",
                blocks[i - 1]
            );
        }
    }
    // The sidecar runbook confirms istiod took each secret.
    for phase in ["01-trust-both", "02-switch-signer", "03-drop-old-root"] {
        let sec = &md[md.find(&format!("## {phase}")).unwrap()..];
        let sec = &sec[..sec[3..].find("\n## ").map_or(sec.len(), |i| i + 3)];
        assert!(sec.contains("get configmap istio-ca-root-cert"), "{phase}");
        // How to go back, checked (istiod's verdict for the version).
        assert!(sec.contains("Going back from"), "{phase}");
        assert!(
            sec.contains("istiod 1.30.0 accepts this root-file change"),
            "{phase}"
        );
    }
    // Preconditions on what runs.
    assert!(md.contains("get deployment -A -l app=istiod"), "{md}");
    assert!(md.contains("ISTIO_MULTIROOT_MESH\")].value}"), "{md}");
    assert!(md.contains("$3 != \"true\""), "{md}");
    assert!(
        md.contains("env[?(@.name==\"PROXY_CONFIG_XDS_AGENT\")]"),
        "{md}"
    );
    // The drift command itself: equal -> 0, changed -> 1.
    let live = istio::read_dir(&p.join("02-switch-signer"))
        .unwrap()
        .to_manifest_yaml();
    let o = run_stdin(
        &[
            "plan",
            "drift",
            "--expect",
            s(&p.join("02-switch-signer")),
            "-",
        ],
        live.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = run_stdin(
        &[
            "plan",
            "drift",
            "--expect",
            s(&p.join("01-trust-both")),
            "-",
        ],
        live.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("DRIFT") && !out(&o).contains("PRIVATE"),
        "{}",
        out(&o)
    );
    // Sealing keeps the contexts.
    let o = run(&["plan", "seal", s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        std::fs::read_to_string(p.join("RUNBOOK.md"))
            .unwrap()
            .contains("kubectl --context prod-east apply --server-side")
    );
}

#[test]
fn restarts_cover_labelled_namespaces_workload_kinds_and_gateways_in_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    let p = tmp.path().join("noxds");
    let o = run(&[
        "plan",
        "--current",
        s(&d.join("rootA/cluster1")),
        "--new",
        s(&d.join("rootB/cluster1")),
        "--out",
        s(&p),
        "--multiroot",
        "--istio-version",
        "1.30.0",
        "--xds-agent=false",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let md = std::fs::read_to_string(p.join("RUNBOOK.md")).unwrap();
    let restart = code_blocks(&md)
        .into_iter()
        .find(|b| b.contains("istio-injection=enabled"))
        .unwrap_or_else(|| panic!("{md}"));
    for want in [
        "-l istio.io/rev",
        "deployment,statefulset,daemonset",
        "rollout status",
        "${BATCH:-5}",
        "ingressgateway,egressgateway,eastwestgateway",
    ] {
        assert!(restart.contains(want), "{want} in {restart}");
    }
}

#[test]
fn multi_cluster_contexts_and_self_signed_retirement() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    for root in ["rootA", "rootB"] {
        let o = run(&[
            "generate",
            "intermediate",
            "--root",
            s(&d.join(root)),
            "--name",
            "cluster2",
            "--out",
            s(&d.join(root)),
            "--key-type",
            "ec-p256",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    }
    let spec = |c: &str, ctx: &str| {
        format!(
            "{c}={},{},{ctx}",
            d.join("rootA").join(c).display(),
            d.join("rootB").join(c).display()
        )
    };
    let (c1, c2) = (spec("cluster1", "gke-east"), spec("cluster2", "gke-west"));
    let p = tmp.path().join("multi");
    let o = run(&[
        "plan",
        "--cluster",
        &c1,
        "--cluster",
        &c2,
        "--out",
        s(&p),
        "--multiroot",
        "--istio-version",
        "1.30.0",
        "--xds-agent",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let md = std::fs::read_to_string(p.join("RUNBOOK.md")).unwrap();
    assert!(
        md.contains("kubectl --context gke-east apply --server-side"),
        "{md}"
    );
    assert!(
        md.contains("kubectl --context gke-west apply --server-side"),
        "{md}"
    );
    assert!(!md.contains("--context cluster1"), "{md}");
    // The preconditions are checked in each cluster's context.
    for ctx in ["gke-east", "gke-west"] {
        assert!(
            md.contains(&format!(
                "kubectl --context {ctx} get deployment -A -l app=istiod"
            )),
            "{md}"
        );
    }

    // Self-signed -> plugged-in: retire istio-ca-secret after the last phase, and say why this
    // plan restarts istiod fewer times.
    let root = std::fs::read(d.join("rootA/root-cert.pem")).unwrap();
    let key = std::fs::read(d.join("rootA/root-key.pem")).unwrap();
    let live = tmp.path().join("live.yaml");
    std::fs::write(
        &live,
        CaSecret::istio_ca_secret(&root, &key)
            .to_manifest_yaml()
            .as_bytes(),
    )
    .unwrap();
    let p = tmp.path().join("ss");
    let o = run(&[
        "plan",
        "--current",
        s(&live),
        "--new",
        s(&d.join("rootB/cluster1")),
        "--out",
        s(&p),
        "--multiroot",
        "--istio-version",
        "1.30.0",
        "--xds-agent",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let md = std::fs::read_to_string(p.join("RUNBOOK.md")).unwrap();
    let retire = md
        .find("retire istio-ca-secret")
        .unwrap_or_else(|| panic!("{md}"));
    assert!(retire > md.rfind("## 03-").unwrap());
    assert!(md[retire..].contains("kubectl delete secret istio-ca-secret -n istio-system"));
    assert!(md[retire..].contains("> backup/istio-ca-secret-retired.yaml &&"));
    assert!(md[retire..].contains("watches /etc/cacerts"));
    // Going back from 01 deletes cacerts and restarts istiod (self-signed again).
    assert!(md.contains("kubectl delete secret cacerts -n istio-system && kubectl rollout restart deployment -n istio-system -l app=istiod"), "{md}");
    let c = run(&["plan", "check", s(&p)]);
    assert_eq!(c.status.code(), Some(0), "{}", out(&c));
}

#[test]
fn plan_check_checks_the_rollback_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = demo(tmp.path()).join("plan-sidecar");
    // Without 01-trust-both, going back from the switch drops root B while B signs.
    std::fs::remove_dir_all(plan.join("01-trust-both")).unwrap();
    std::fs::remove_file(plan.join("plan.json")).unwrap();
    let o = run(&[
        "plan",
        "check",
        "--json",
        "--multiroot",
        "--istio-version",
        "1.30.0",
        "--xds-agent",
        s(&plan),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "rollback-unsafe")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(f["phase"], "02-switch-signer");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("going back from 02-switch-signer to 00-current"),
        "{f}"
    );
}
