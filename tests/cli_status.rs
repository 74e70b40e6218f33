//! `meshtrust status` through the real binary: the JSON contract, exit codes, inputs from
//! files, directories and stdin, and `--collect` against stand-in kubectl/istioctl
//! (`tests/standin/`) that replay recorded outputs: every pod found, one that times out and one
//! that prints garbage listed (not fatal), and `--save` reproducing the verdict offline.
#![cfg(feature = "cli")]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use meshtrust::generate::{self, KeyType};
use meshtrust::istio::{DataPlane, IstioProfile};
use meshtrust::plan::{self, ClusterInput, PlanOptions};
use meshtrust::testkit::dumps;
use serde_json::Value;
use time::OffsetDateTime;

const AT: &str = "2026-06-01T12:30:00Z";

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-06-01 12:00 UTC)
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(common::versioned(args))
        .output()
        .expect("run meshtrust")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// A root-rotation plan written to `dir/plan`; returns it.
fn plan_dir(dir: &Path) -> plan::Plan {
    let (_, a) = generate::istio_ca("cluster1", KeyType::EcP256, now()).unwrap();
    let (_, b) = generate::istio_ca("cluster1", KeyType::EcP256, now()).unwrap();
    let profile = IstioProfile {
        multiroot: true,
        xds_agent: true,
        data_plane: DataPlane::Both,
        ..IstioProfile::default()
    };
    let p = plan::plan(
        &[ClusterInput::single(a.cacerts(), b.cacerts())],
        &profile,
        &PlanOptions::default(),
        now(),
    )
    .unwrap();
    plan::write_plan_dir(&p, &dir.join("plan")).unwrap();
    p
}

fn write_files(dir: &Path, files: &[(String, String)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (n, b) in files {
        std::fs::write(dir.join(n), b).unwrap();
    }
}

#[test]
fn fixtures_json_contract_and_exit_codes() {
    let dump = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/istioctl/proxy-config-secret/config_dump.json"
    );
    // At the capture's time the leaf is valid: consistent, exit 0.
    let o = run(&["status", "--json", "--at", "2023-05-15T12:00:00Z", dump]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    let p = &v["proxies"][0];
    assert_eq!(p["name"], "config_dump");
    assert_eq!(p["kind"], "sidecar");
    assert_eq!(p["trusts"].as_array().unwrap().len(), 1);
    for key in ["sha256", "serial", "signer_sha256", "not_after"] {
        assert!(p["leaf"][key].is_string(), "{key}: {p}");
    }
    assert_eq!(p["leaf"]["serial"], "6fbee254c22900615cb1f74e3d2f1713");
    assert!(p["phase"].is_null());
    assert!(p["warnings"].as_array().unwrap().is_empty());
    for key in ["groups", "blockers"] {
        assert!(v[key].is_array(), "{key}");
    }
    assert!(v["phase_reached"].is_null() && v["next_phase"].is_null());
    assert_eq!(v["safe_to_advance"], false);
    // Today the leaf has expired: a warning that breaks traffic, exit 1.
    let o = run(&["status", "--json", dump]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["proxies"][0]["warnings"][0]["code"], "expired");
    // Unreadable input: exit 2, the error names the file.
    let o = run(&["status", "/nonexistent/pod.json"]);
    assert_eq!(o.status.code(), Some(2));
    let mut child = bin()
        .args(common::versioned(&["status", "-"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"configs\": [{\"dynamic_active_secrets\": 5}]}")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("-: configs[0].dynamic_active_secrets: expected an array"),
        "{err}"
    );
}

#[test]
fn plan_verdicts_from_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan_dir(tmp.path());
    let plan = tmp.path().join("plan");
    let dumps_dir = tmp.path().join("dumps");
    write_files(&dumps_dir, &dumps::phase_mesh(&p, 1, 3, 1, now()).unwrap());
    let args = [
        "status",
        "--json",
        "--at",
        AT,
        "--plan",
        plan.to_str().unwrap(),
        dumps_dir.to_str().unwrap(),
    ];
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let v = json(&o);
    assert_eq!(v["phase_reached"], "01-trust-both");
    assert_eq!(v["next_phase"], "02-switch-signer");
    assert_eq!(v["safe_to_advance"], true);
    assert_eq!(v["proxies"].as_array().unwrap().len(), 4);
    assert_eq!(v["groups"][0]["count"], 4);
    // The human form says the same.
    let o = run(&args[..1]
        .iter()
        .chain(&args[2..])
        .copied()
        .collect::<Vec<_>>());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("SAFE to apply 02-switch-signer"), "{text}");
}

fn standin(dir: &Path, p: &plan::Plan) {
    let mut files = dumps::phase_mesh(p, 2, 3, 1, now()).unwrap();
    let mut items = Vec::new();
    for (name, _) in &files {
        if let Some(stem) = name.strip_suffix(".json").filter(|n| *n != "configmaps") {
            let (pod, ns) = stem.split_once('.').unwrap();
            let container = "istio-proxy";
            let app = if pod.starts_with("ztunnel") {
                "ztunnel"
            } else {
                "app"
            };
            items.push(serde_json::json!({"metadata": {"name": pod, "namespace": ns, "labels": {"app": app}},
                "spec": {"containers": [{"name": "app"}, {"name": container}]}}));
        }
    }
    // A pod that hangs and one that prints garbage; a pod without a proxy is not queried.
    for (pod, ns) in [("slow", "default"), ("broken", "default")] {
        items.push(
            serde_json::json!({"metadata": {"name": pod, "namespace": ns},
            "spec": {"containers": [{"name": "istio-proxy"}]}}),
        );
    }
    items.push(
        serde_json::json!({"metadata": {"name": "plain", "namespace": "default"},
        "spec": {"containers": [{"name": "app"}]}}),
    );
    files.push(("slow.default.json".into(), files[0].1.clone()));
    files.push(("slow.default.sleep".into(), String::new()));
    files.push((
        "broken.default.json".into(),
        "<html>502 Bad Gateway</html>".into(),
    ));
    files.push((
        "pods.json".into(),
        serde_json::json!({"kind": "List", "items": items}).to_string(),
    ));
    write_files(dir, &files);
}

#[test]
fn collect_with_standin_tools_and_save_reproduces_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan_dir(tmp.path());
    let plan = tmp.path().join("plan");
    let replay = tmp.path().join("replay");
    standin(&replay, &p);
    let save = tmp.path().join("saved");
    let standin_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin");
    let path = format!(
        "{}:{}",
        standin_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start = std::time::Instant::now();
    let o = bin()
        .args([
            "status",
            "--istio-version",
            "1.30.0",
            "--collect",
            "--json",
            "-j",
            "3",
            "--pod-timeout",
            "2",
            "--at",
            AT,
        ])
        .args([
            "--context",
            "prod",
            "--plan",
            plan.to_str().unwrap(),
            "--save",
            save.to_str().unwrap(),
        ])
        .env("PATH", &path)
        .env("STANDIN_DIR", &replay)
        .output()
        .unwrap();
    assert!(
        start.elapsed().as_secs() < 20,
        "the hanging pod was not cut at its timeout"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Two pods did not answer: exit 1, both listed, the rest evaluated.
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let v = json(&o);
    let failed: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pod"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["slow.default", "broken.default"], "{stderr}");
    assert!(
        v["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    assert!(
        v["failed"][1]["error"]
            .as_str()
            .unwrap()
            .contains("unreadable output")
    );
    assert!(stderr.contains("slow.default: did not answer"));
    let names: Vec<&str> = v["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(v["phase_reached"], "02-switch-signer");
    assert_eq!(v["next_phase"], "03-drop-old-root");
    assert_eq!(v["safe_to_advance"], true);
    let calls = std::fs::read_to_string(replay.join("calls.log")).unwrap();
    assert!(
        calls.lines().all(|l| l.contains("--context prod")),
        "{calls}"
    );
    assert!(!calls.contains("plain.default"));
    // Saved per context, so that several clusters' collections share one directory.
    assert!(save.join("prod").join("configmaps.json").is_file());
    // Offline from the saved outputs: the same verdict, exit 0 (every saved pod answered).
    let o = run(&[
        "status",
        "--json",
        "--at",
        AT,
        "--plan",
        plan.to_str().unwrap(),
        save.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let w = json(&o);
    for key in [
        "proxies",
        "groups",
        "phase_reached",
        "next_phase",
        "safe_to_advance",
        "blockers",
    ] {
        assert_eq!(w[key], v[key], "{key}");
    }
    // Explicit tool paths instead of PATH.
    let o = bin()
        .args([
            "status",
            "--istio-version",
            "1.30.0",
            "--collect",
            "--json",
            "--pod-timeout",
            "2",
            "--at",
            AT,
            "-n",
            "default",
        ])
        .arg("--kubectl")
        .arg(standin_bin.join("kubectl"))
        .arg("--istioctl")
        .arg(standin_bin.join("istioctl"))
        .env("STANDIN_DIR", &replay)
        .output()
        .unwrap();
    assert_eq!(json(&o)["failed"].as_array().unwrap().len(), 2);
}

#[test]
fn runbook_gates_name_the_status_verdict_the_command_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan_dir(tmp.path());
    let plan = tmp.path().join("plan");
    let runbook = std::fs::read_to_string(plan.join("RUNBOOK.md")).unwrap();
    assert_eq!(
        runbook
            .matches("meshtrust status --collect --plan .")
            .count(),
        p.phases.len()
    );
    assert!(runbook.contains("the verdict, not the clock, is the signal to go on"));
    // Ambient: ztunnel identities are checked by their certificates, not the table.
    assert!(!runbook.contains("ztunnel-config certificates ZTUNNEL_POD -n istio-system\n"));
    assert!(runbook.contains(
        "ztunnel-config certificates ZTUNNEL_POD.istio-system -o json | meshtrust status --json -"
    ));
    for k in 0..p.phases.len() {
        let dir = tmp.path().join(format!("mesh-{k}"));
        write_files(&dir, &dumps::phase_mesh(&p, k, 2, 1, now()).unwrap());
        let o = run(&[
            "status",
            "--at",
            AT,
            "--plan",
            plan.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        let want = match p.phases.get(k + 1) {
            Some(next) => format!("SAFE to apply {}", next.name),
            None => "rotation complete: no phase left to apply".to_owned(),
        };
        // The gate of phase k names exactly the line the command prints for a mesh in phase k.
        let section = runbook
            .split(&format!("## {}:", p.phases[k].name))
            .nth(1)
            .unwrap();
        let section = section.split("\n## ").next().unwrap();
        assert!(
            section.contains(&format!("`{want}`")),
            "{}: {section}",
            p.phases[k].name
        );
        assert!(out.contains(&want), "{}: {out}", p.phases[k].name);
        assert_eq!(o.status.code(), Some(0));
    }
}

/// A two-cluster plan (shared roots, one intermediate per cluster) written to `dir/plan`.
fn two_cluster_plan_dir(dir: &Path) -> plan::Plan {
    let p = common::two_cluster_plan(now());
    plan::write_plan_dir(&p, &dir.join("plan")).unwrap();
    p
}

#[test]
fn multi_cluster_inputs_by_flag_and_by_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let p = two_cluster_plan_dir(tmp.path());
    let plan = tmp.path().join("plan");
    // cluster1's dumps where `--collect --save` files them (DIR/cluster1/), cluster2's given
    // with --cluster; a cluster2 laggard on its old signer among them.
    let saved = tmp.path().join("saved");
    write_files(
        &saved.join("cluster1"),
        &dumps::phase_mesh_in(&p, 2, "cluster1", 2, 0, now()).unwrap(),
    );
    let c2 = tmp.path().join("c2");
    let mut files = dumps::phase_mesh_in(&p, 2, "cluster2", 1, 0, now()).unwrap();
    let old = dumps::phase_mesh_in(&p, 1, "cluster2", 1, 0, now()).unwrap();
    files.push(("laggard.default.json".to_owned(), old[0].1.clone()));
    write_files(&c2, &files);
    let c2_flag = format!("cluster2={}", c2.display());
    let o = run(&[
        "status",
        "--json",
        "--at",
        AT,
        "--plan",
        plan.to_str().unwrap(),
        "--cluster",
        &c2_flag,
        saved.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    let clusters: Vec<(String, String, String)> = v["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("-").to_owned();
            (s("name"), s("cluster"), s("cluster_from"))
        })
        .collect();
    let want = |n: &str, c: &str| (n.to_owned(), c.to_owned(), "explicit".to_owned());
    assert_eq!(
        clusters,
        [
            want("cluster1-app-0.default", "cluster1"),
            want("cluster1-app-1.default", "cluster1"),
            want("cluster2-app-0.default", "cluster2"),
            want("laggard.default", "cluster2"),
        ]
    );
    assert_eq!(v["next_phase"], "03-drop-old-root");
    let blockers = v["blockers"].as_array().unwrap();
    assert!(!blockers.is_empty());
    for b in blockers {
        assert_eq!(b["proxy"], "laggard.default", "{b}");
        assert_eq!(b["cluster"], "cluster2", "{b}");
    }
    // The human form names the cluster too.
    let o = run(&[
        "status",
        "--at",
        AT,
        "--plan",
        plan.to_str().unwrap(),
        "--cluster",
        &c2_flag,
        saved.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("blocker: laggard.default (cluster cluster2):"),
        "{text}"
    );
    // A cluster the plan does not have is refused (exit 2), naming the plan's clusters.
    let o = run(&[
        "status",
        "--plan",
        plan.to_str().unwrap(),
        "--cluster",
        "cluster3",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cluster1, cluster2"), "{err}");
}
