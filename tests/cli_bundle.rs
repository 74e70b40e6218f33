//! The `inspect` and `bundle` commands on Istio's sample material, through the real binary.
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
}

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/istio-samples")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run meshtrust")
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn inspect_every_fixture_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["istio-samples", "seeds"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "pem") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut args = vec!["inspect".to_owned(), "--json".to_owned()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let out = bin().args(&args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    // Every certificate of every file, keys as the contract says (the first eleven since
    // the first release; dns_names, emails, ips and sha256_openssl added).
    let expected_certs: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .matches("BEGIN CERTIFICATE")
                .count()
        })
        .sum();
    assert_eq!(rows.len(), expected_certs);
    for (i, r) in rows.iter().enumerate() {
        let obj = r.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "dns_names",
                "duplicate_of",
                "emails",
                "file",
                "index",
                "ips",
                "issuer",
                "not_after",
                "not_before",
                "role",
                "serial",
                "sha256",
                "sha256_openssl",
                "spiffe_ids",
                "subject"
            ]
        );
        assert_eq!(obj["index"], i);
        let sha = obj["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64
                && sha
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(["root", "intermediate", "leaf"].contains(&obj["role"].as_str().unwrap()));
        assert!(obj["not_before"].as_str().unwrap().ends_with('Z'));
        if let Some(d) = obj["duplicate_of"].as_u64() {
            assert!((d as usize) < i);
            assert_eq!(rows[d as usize]["sha256"], obj["sha256"]);
        }
    }
    // Key files are noted on stderr, never printed.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("private key (ignored, not shown)"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PRIVATE"));
}

#[test]
fn inspect_roles_spiffe_and_duplicates() {
    let out = run(&[
        "inspect",
        "--json",
        s(&sample("root-cert-combined-2.pem")),
        s(&sample("workload-foo-cert.pem")),
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["role"], "root");
    assert_eq!(rows[1]["role"], "root");
    assert_eq!(rows[2]["duplicate_of"], 1);
    assert_eq!(rows[1]["duplicate_of"], serde_json::Value::Null);
    assert_eq!(rows[3]["role"], "leaf");
    assert_eq!(rows[3]["subject"], "");
    assert_eq!(
        rows[3]["spiffe_ids"][0],
        "spiffe://trust-domain-foo/ns/foo/sa/foo"
    );
    assert_eq!(rows[4]["role"], "intermediate");
    // The human table shows the same rows.
    let out = run(&["inspect", s(&sample("root-cert-combined-2.pem"))]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.contains("dup of 1"));
}

#[test]
fn bundle_cat_trigger_reproduces_istio_combined_files() {
    let a = sample("root-cert.pem");
    let b = sample("root-cert-alt.pem");
    let combined = std::fs::read(sample("root-cert-combined.pem")).unwrap();
    let combined2 = std::fs::read(sample("root-cert-combined-2.pem")).unwrap();
    // cat A B keeps A as a prefix and B's full text.
    let out = run(&["bundle", "cat", s(&a), s(&b)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        out.stdout,
        [std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap()].concat()
    );
    // cat --trigger on Istio's A+B gives exactly Istio's A+B+B.
    let out = run(&[
        "bundle",
        "cat",
        "--trigger",
        s(&sample("root-cert-combined.pem")),
    ]);
    assert_eq!(out.stdout, combined2);
    // dedup of A+B+B gives back A+B exactly.
    let out = run(&["bundle", "dedup", s(&sample("root-cert-combined-2.pem"))]);
    assert_eq!(out.stdout, combined);
}

#[test]
fn bundle_diff_json_and_exit_codes() {
    let out = run(&[
        "bundle",
        "diff",
        "--json",
        s(&sample("root-cert-combined.pem")),
        s(&sample("root-cert-combined-2.pem")),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "added",
        "removed",
        "duplicates",
        "reordered",
        "bytes_changed",
        "istiod_accepts",
    ] {
        assert!(d.get(key).is_some(), "missing {key}");
    }
    assert_eq!(d["istiod_accepts"], true);
    assert_eq!(d["bytes_changed"], true);
    assert_eq!(d["added"].as_array().unwrap().len(), 0);
    assert_eq!(d["duplicates"][0]["count"], 2);

    // B+A after A+B: refused by the byte rule, exit 1.
    let dir = tempfile::tempdir().unwrap();
    let ba = dir.path().join("ba.pem");
    let out = run(&[
        "bundle",
        "cat",
        s(&sample("root-cert-alt.pem")),
        s(&sample("root-cert.pem")),
    ]);
    std::fs::write(&ba, out.stdout).unwrap();
    let out = run(&[
        "bundle",
        "diff",
        "--json",
        s(&sample("root-cert-combined.pem")),
        ba.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["istiod_accepts"], false);
    assert_eq!(d["reordered"], true);
    // A -> A+B adds B.
    let out = run(&[
        "bundle",
        "diff",
        s(&sample("root-cert.pem")),
        s(&sample("root-cert-combined.pem")),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("+ "));
}

#[test]
fn bad_input_is_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "# roots\n-----BEGIN CERTIFICATE-----\nMIIB*AAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = run(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.pem") && err.contains("line 3"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = run(&["inspect", dir.path().join("missing.pem").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["bundle", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `inspect --json` gives every SAN kind and the fingerprint as `openssl x509 -fingerprint
/// -sha256` prints it, on a certificate made by openssl.
#[test]
fn inspect_json_has_every_san_and_openssl_fingerprint() {
    let t = tempfile::tempdir().unwrap();
    let (key, cert) = (t.path().join("k.pem"), t.path().join("c.pem"));
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .args(["-nodes", "-days", "30", "-subj", "/CN=svc"])
        .args(["-addext", "subjectAltName=DNS:svc.example,email:ops@example.com,IP:10.0.0.7,IP:2001:db8::1,URI:spiffe://cluster.local/ns/a/sa/b"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = run(&["inspect", "--json", cert.to_str().unwrap()]);
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["dns_names"], serde_json::json!(["svc.example"]));
    assert_eq!(row["emails"], serde_json::json!(["ops@example.com"]));
    assert_eq!(row["ips"], serde_json::json!(["10.0.0.7", "2001:db8::1"]));
    assert_eq!(
        row["spiffe_ids"],
        serde_json::json!(["spiffe://cluster.local/ns/a/sa/b"])
    );
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout).unwrap();
    let fp = fp.trim().split('=').nth(1).unwrap();
    assert_eq!(row["sha256_openssl"], serde_json::json!(fp));
    assert_eq!(
        row["sha256"],
        serde_json::json!(fp.replace(':', "").to_lowercase())
    );
}
