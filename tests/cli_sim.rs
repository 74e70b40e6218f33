//! `meshtrust demo` and `meshtrust simulate` through the real binary: the files the demo
//! leaves, the exit codes, the JSON contract (`ok`, `events`, `connections`, `failures` with
//! `time`, `phase`, `from`, `to`, `reason`, at most 100) and profile overrides.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .expect("run meshtrust")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Runs the demo into a new directory and returns it.
fn demo(dir: &Path, extra: &[&str]) -> Output {
    let out = dir.join("demo");
    let mut args = vec!["demo", "--out", out.to_str().unwrap(), "--workloads", "20"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn demo_generates_plans_and_simulates_them() {
    let tmp = tempfile::tempdir().unwrap();
    let o = demo(tmp.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let d = tmp.path().join("demo");
    for f in [
        "rootA/root-cert.pem",
        "rootA/root-key.pem",
        "rootA/cluster1/ca-cert.pem",
        "rootA/cluster1/cert-chain.pem",
        "rootB/cluster1/root-cert.pem",
        "plan-sidecar/plan.json",
        "plan-sidecar/RUNBOOK.md",
        "plan-sidecar/02-switch-signer/root-cert.pem",
        "plan-ambient/plan.json",
    ] {
        assert!(d.join(f).is_file(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["rootA/root-key.pem", "rootB/cluster1/ca-key.pem"] {
            let mode = std::fs::metadata(d.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
    let text = stdout(&o);
    assert!(text.contains(&d.display().to_string()), "{text}");
    assert!(text.contains("\n01-trust-both ["), "{text}");
    assert!(
        text.contains("sidecar plan on a sidecar mesh: plan check safe"),
        "{text}"
    );
    assert!(
        text.contains("ambient plan on an ambient mesh: plan check safe"),
        "{text}"
    );
    // The plan made for sidecars breaks an ambient mesh: the reason ztunnel is restarted.
    assert!(
        text.contains("the sidecar plan on an ambient mesh"),
        "{text}"
    );
    assert!(
        text.contains("FAILED: ztunnel learns roots only from CSR responses"),
        "{text}"
    );
    // The phase directories are a plan that `plan check` accepts.
    let c = run(&["plan", "check", d.join("plan-ambient").to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(0), "{}", stdout(&c));

    // --ambient tells the ambient story.
    let tmp2 = tempfile::tempdir().unwrap();
    let a = demo(tmp2.path(), &["--ambient"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert!(
        stdout(&a).contains("ztunnel workloads trust {A, B}"),
        "{}",
        stdout(&a)
    );

    // A non-empty --out is refused, with nothing written.
    let again = demo(tmp.path(), &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("exists and is not empty"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn simulate_json_contract_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(demo(tmp.path(), &[]).status.code(), Some(0));
    let plan = tmp.path().join("demo/plan-sidecar");
    let plan = plan.to_str().unwrap();

    let ok = run(&[
        "simulate",
        "--json",
        "--workloads",
        "12",
        "--seed",
        "3",
        plan,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let v = json(&ok);
    assert_eq!(v["ok"], true);
    assert!(v["events"].as_u64().unwrap() > 0);
    assert!(v["connections"].as_u64().unwrap() >= v["events"].as_u64().unwrap() * 12 * 11);
    assert_eq!(v["failures"].as_array().unwrap().len(), 0);
    assert_eq!(v["workloads"], 12);
    assert_eq!(v["seed"], 3);

    // The plan's profile with one flag overridden: ISTIO_MULTIROOT_MESH off.
    let off = run(&[
        "simulate",
        "--json",
        "--workloads",
        "40",
        "--multiroot=false",
        plan,
    ]);
    assert_eq!(off.status.code(), Some(1), "{}", stderr(&off));
    let v = json(&off);
    assert_eq!(v["ok"], false);
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 100, "at most 100");
    assert!(v["failures_recorded"].as_u64().unwrap() > 100);
    for f in failures {
        for key in ["time", "phase", "from", "to", "reason"] {
            assert!(f[key].is_string(), "{key}: {f}");
        }
        assert!(f["time"].as_str().unwrap().ends_with('Z'));
    }
    assert!(v["deviations"].as_array().unwrap().iter().any(|d| {
        d["message"]
            .as_str()
            .unwrap()
            .contains("updating new ROOT-CA not supported")
    }));

    // Human output.
    let text = run(&["simulate", "--workloads", "8", plan]);
    assert_eq!(text.status.code(), Some(0));
    assert!(stdout(&text).contains("Result: OK"), "{}", stdout(&text));
}

#[test]
fn simulate_overrides_the_ztunnel_version() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(demo(tmp.path(), &[]).status.code(), Some(0));
    let plan = tmp.path().join("demo/plan-ambient");
    let plan = plan.to_str().unwrap();
    let good = run(&["simulate", "--json", "--workloads", "16", plan]);
    assert_eq!(good.status.code(), Some(0), "{}", stdout(&good));
    for z in ["1.24.3", "1.25.1"] {
        let bad = run(&[
            "simulate",
            "--json",
            "--workloads",
            "16",
            "--ztunnel-version",
            z,
            plan,
        ]);
        assert_eq!(bad.status.code(), Some(1), "{z}: {}", stdout(&bad));
        assert_eq!(json(&bad)["ok"], false);
    }
}

#[test]
fn simulate_without_plan_json_takes_the_profile_from_the_flags() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(demo(tmp.path(), &[]).status.code(), Some(0));
    let plan = tmp.path().join("demo/plan-sidecar");
    std::fs::remove_file(plan.join("plan.json")).unwrap();
    let plan = plan.to_str().unwrap();
    // Without plan.json no version is recorded: it must be a flag (exit 2 otherwise).
    let none = run(&[
        "simulate",
        "--workloads",
        "10",
        "--multiroot",
        "--xds-agent",
        plan,
    ]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(
        stderr(&none).contains("1.22.0 to 1.31.x"),
        "{}",
        stderr(&none)
    );
    let ok = run(&[
        "simulate",
        "--workloads",
        "10",
        "--istio-version",
        "1.31.0",
        "--multiroot",
        "--xds-agent",
        plan,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stderr(&ok).contains("no plan.json"), "{}", stderr(&ok));
    // Istio's defaults: ISTIO_MULTIROOT_MESH off, so every root change is ignored.
    let off = run(&[
        "simulate",
        "--json",
        "--workloads",
        "10",
        "--istio-version",
        "1.31.0",
        plan,
    ]);
    assert_eq!(off.status.code(), Some(1), "{}", stdout(&off));
}

#[test]
fn simulate_bad_usage_exits_2() {
    let missing = run(&["simulate", "/nonexistent/plan"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = stderr(&missing);
    assert!(err.contains("/nonexistent/plan"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(demo(tmp.path(), &[]).status.code(), Some(0));
    let plan = tmp.path().join("demo/plan-sidecar");
    let one = run(&["simulate", "--workloads", "1", plan.to_str().unwrap()]);
    assert_eq!(one.status.code(), Some(2));
    assert!(
        stderr(&one).contains("workloads must be at least 2"),
        "{}",
        stderr(&one)
    );
    let empty = tempfile::tempdir().unwrap();
    let none = run(&["simulate", empty.path().to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("no phase directories"),
        "{}",
        stderr(&none)
    );
}
