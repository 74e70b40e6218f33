//! `meshtrust verify` on Istio's sample material, through the real binary: exit codes,
//! the JSON contract (`valid`, `path`, `error`) and the text output.
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const AT: &str = "2025-07-01T00:00:00Z";

fn sample(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/istio-samples")
        .join(name)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .expect("run meshtrust")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// SHA-256 fingerprints of a PEM file's certificates, computed by openssl (independent of
/// meshtrust), lowercase without colons.
fn openssl_fingerprints(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|block| {
            let mut child = Command::new("openssl")
                .args(["x509", "-noout", "-fingerprint", "-sha256"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(block.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let line = String::from_utf8(out.stdout).unwrap();
            line.trim()
                .rsplit('=')
                .next()
                .unwrap()
                .replace(':', "")
                .to_lowercase()
        })
        .collect()
}

#[test]
fn valid_leaf_with_its_chain_in_the_cert_file() {
    let out = run(&[
        "verify",
        "--roots",
        &sample("root-cert.pem"),
        "--at",
        AT,
        &sample("workload-foo-cert.pem"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("OK: <spiffe://trust-domain-foo/ns/foo/sa/foo>"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("anchor"), "{text}");

    let out = run(&[
        "verify",
        "--json",
        "--roots",
        &sample("root-cert.pem"),
        "--at",
        AT,
        &sample("workload-foo-cert.pem"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["valid"], true);
    assert!(v["error"].is_null());
    let mut want = openssl_fingerprints(&sample("workload-foo-cert.pem"));
    want.extend(openssl_fingerprints(&sample("root-cert.pem")));
    let path: Vec<&str> = v["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(path, want);
    assert_eq!(v["anchor"], want[2]);
}

#[test]
fn chain_files_and_the_named_cases() {
    // A bare leaf needs its intermediate from --chain.
    let leaf = sample("leaf-workload-bar-cert.pem");
    let roots = sample("root-cert-combined.pem");
    let out = run(&["verify", "--roots", &roots, "--at", AT, &leaf]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&[
        "verify",
        "--roots",
        &roots,
        "--chain",
        &sample("root-cert-alt.pem"),
        "--chain",
        &sample("ca-cert.pem"),
        "--at",
        AT,
        &leaf,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // ca-cert-alt.pem fails against root A, passes against A+B+B.
    let ca_alt = sample("ca-cert-alt.pem");
    let out = run(&[
        "verify",
        "--json",
        "--roots",
        &sample("root-cert.pem"),
        "--at",
        AT,
        &ca_alt,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["path"], serde_json::json!([]));
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("\"CN=Root CA,O=Istio\"") && !err.contains('\n'),
        "{err}"
    );
    assert_eq!(v["failures"][0]["kind"], "unknown-issuer");
    let out = run(&[
        "verify",
        "--roots",
        &sample("root-cert-combined-2.pem"),
        "--at",
        AT,
        &ca_alt,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // Text output of a failure: the one-line reason, then one line per failed path.
    let out = run(&[
        "verify",
        "--roots",
        &sample("root-cert-alt.pem"),
        "--at",
        "2023-01-01T00:00:00Z",
        &ca_alt,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("INVALID: "), "{text}");
    assert!(
        text.contains("is not valid before 2023-12-11T16:25:25Z"),
        "{text}"
    );
    assert!(text.contains("  1. "), "{text}");
}

#[test]
fn leaf_requirements() {
    fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["verify", "--json", "--at", AT];
        v.extend_from_slice(extra);
        v
    }
    let roots = sample("workload-foo-root-certs.pem");
    let cert = sample("workload-foo-cert.pem");
    let ok = run(&args(&[
        "--roots",
        &roots,
        "--eku",
        "client-auth",
        "--spiffe-id",
        "spiffe://trust-domain-foo/ns/foo/sa/foo",
        &cert,
    ]));
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let bad = run(&args(&[
        "--roots",
        &roots,
        "--spiffe-id",
        "spiffe://trust-domain-bar/ns/bar/sa/bar",
        &cert,
    ]));
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(json(&bad)["failures"][0]["kind"], "spiffe-id-mismatch");
    let usage = run(&args(&[
        "--roots",
        &roots,
        "--spiffe-id",
        "https://x",
        &cert,
    ]));
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn stdin_and_unreadable_inputs() {
    let pem = std::fs::read(sample("workload-bar-cert.pem")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args([
            "verify",
            "--roots",
            &sample("root-cert.pem"),
            "--at",
            AT,
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&pem).unwrap();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let out = run(&["verify", "--roots", &missing, &sample("ca-cert.pem")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pem"));

    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nMII!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = run(&[
        "verify",
        "--roots",
        &sample("root-cert.pem"),
        broken.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("broken.pem") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let out = run(&[
        "verify",
        "--roots",
        &sample("root-cert.pem"),
        empty.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no certificate"));

    let out = run(&[
        "verify",
        "--roots",
        &sample("root-cert.pem"),
        "--at",
        "yesterday",
        &sample("ca-cert.pem"),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
