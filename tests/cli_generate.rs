//! `meshtrust generate` through the real binary: Istio's layout, modes, refusal to overwrite,
//! all-or-nothing writes, clamps, bad input, and OpenSSL accepting what it wrote.
#![cfg(feature = "cli")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .expect("run meshtrust")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    err
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every entry under `dir` with bytes and mode (directories as `<dir>`).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.is_dir() {
                out.insert(p.clone(), (b"<dir>".to_vec(), mode));
                stack.push(p);
            } else {
                out.insert(p.clone(), (std::fs::read(&p).unwrap(), mode));
            }
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn openssl_verify(root: &Path, untrusted: &Path, cert: &Path) {
    openssl_verify_with(&["-x509_strict"], root, untrusted, cert)
}

fn openssl_verify_with(flags: &[&str], root: &Path, untrusted: &Path, cert: &Path) {
    let out = Command::new("openssl")
        .arg("verify")
        .args(flags)
        .args(["-CAfile", s(root), "-untrusted", s(untrusted), s(cert)])
        .output()
        .expect("openssl (test oracle) must be installed");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn root_intermediate_leaf_in_istio_layout() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let root_dir = d.join("root");
    let text = ok(&["generate", "root", "--out", s(&root_dir)]);
    assert!(text.contains("root-cert.pem (0644)"), "{text}");
    assert!(text.contains("root-key.pem (0600)"), "{text}");
    assert!(text.contains("subject     CN=Root CA,O=Istio"), "{text}");
    assert!(text.contains("RSA 4096"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert_eq!(mode(&root_dir.join("root-key.pem")), 0o600);
    assert_eq!(mode(&root_dir.join("root-cert.pem")), 0o644);

    let json = ok(&[
        "generate",
        "intermediate",
        "--root",
        s(&root_dir),
        "--name",
        "cluster1",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["certificate", "clamped", "files", "warnings"]);
    let cert = &v["certificate"];
    let mut ckeys: Vec<&str> = cert
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    ckeys.sort();
    assert_eq!(
        ckeys,
        [
            "issuer",
            "key",
            "not_after",
            "not_before",
            "role",
            "serial",
            "sha256",
            "spiffe_ids",
            "subject"
        ]
    );
    assert_eq!(cert["role"], "intermediate");
    assert_eq!(cert["subject"], "L=cluster1,CN=Intermediate CA,O=Istio");
    assert_eq!(v["clamped"], serde_json::Value::Null);
    let files: Vec<(String, String)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["mode"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let c1 = d.join("cluster1");
    assert_eq!(
        files,
        [
            (c1.join("ca-cert.pem"), "0644"),
            (c1.join("ca-key.pem"), "0600"),
            (c1.join("cert-chain.pem"), "0644"),
            (c1.join("root-cert.pem"), "0644"),
        ]
        .map(|(p, m)| (p.display().to_string(), m.to_owned()))
    );
    for (p, m) in &files {
        assert_eq!(format!("{:04o}", mode(Path::new(p))), *m, "{p}");
    }
    let read = |p: PathBuf| std::fs::read(p).unwrap();
    // The Makefile's `cat ca-cert.pem root-cert.pem` and `cp root-cert.pem`.
    assert_eq!(
        read(c1.join("cert-chain.pem")),
        [
            read(c1.join("ca-cert.pem")),
            read(root_dir.join("root-cert.pem"))
        ]
        .concat()
    );
    assert_eq!(
        read(c1.join("root-cert.pem")),
        read(root_dir.join("root-cert.pem"))
    );
    openssl_verify(
        &c1.join("root-cert.pem"),
        &c1.join("cert-chain.pem"),
        &c1.join("ca-cert.pem"),
    );
    // istiod's load checks pass on the directory (the root repeated in cert-chain.pem, as
    // Istio's own recipe does, is the only finding, for information).
    let check = ok(&["check", "--json", "--istio-version", "1.30.0", s(&c1)]);
    let v: serde_json::Value = serde_json::from_str(&check).unwrap();
    let codes: Vec<(&str, &str)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(codes, [("cert-chain-root-repeated", "info")], "{check}");

    let leaf_dir = d.join("wl");
    let text = ok(&[
        "generate",
        "leaf",
        "--ca",
        s(&c1),
        "--spiffe",
        "spiffe://cluster.local/ns/foo/sa/bar",
        "--out",
        s(&leaf_dir),
        "--ttl",
        "1h30m",
    ]);
    assert!(text.contains("subject     (empty)"), "{text}");
    assert!(
        text.contains("spiffe id   spiffe://cluster.local/ns/foo/sa/bar"),
        "{text}"
    );
    assert!(text.contains("RSA 2048"), "{text}");
    assert_eq!(mode(&leaf_dir.join("key.pem")), 0o600);
    assert_eq!(
        read(leaf_dir.join("cert-chain.pem")),
        [
            read(leaf_dir.join("workload-cert.pem")),
            read(c1.join("cert-chain.pem"))
        ]
        .concat()
    );
    openssl_verify(
        &leaf_dir.join("root-cert.pem"),
        &leaf_dir.join("cert-chain.pem"),
        &leaf_dir.join("workload-cert.pem"),
    );
    // 1h30m: notAfter - notBefore = 90 min + the 2 min back-dating.
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-startdate", "-enddate", "-in"])
        .arg(leaf_dir.join("workload-cert.pem"))
        .output()
        .unwrap();
    let dates = String::from_utf8_lossy(&out.stdout).into_owned();
    let parse = |prefix: &str| {
        let line = dates.lines().find(|l| l.starts_with(prefix)).unwrap();
        let fmt = time::format_description::parse(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT",
        )
        .unwrap();
        time::PrimitiveDateTime::parse(&line[prefix.len()..], &fmt).unwrap()
    };
    assert_eq!(
        parse("notAfter=") - parse("notBefore="),
        time::Duration::minutes(92)
    );

    // A leaf straight from the root directory works too.
    ok(&[
        "generate",
        "leaf",
        "--ca",
        s(&root_dir),
        "--spiffe",
        "spiffe://td/ns/a/sa/b",
        "--out",
        s(&d.join("wl2")),
        "--key-type",
        "ec-p256",
    ]);
    openssl_verify(
        &d.join("wl2/root-cert.pem"),
        &d.join("wl2/cert-chain.pem"),
        &d.join("wl2/workload-cert.pem"),
    );
}

#[test]
fn existing_files_are_never_overwritten_without_force() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let root = ["generate", "root", "--out", s(d), "--key-type", "ec-p256"];
    ok(&root);
    let before = snapshot(d);
    let err = fails(&root);
    assert!(
        err.contains("root-cert.pem") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(snapshot(d), before);

    // Only the key exists: still refused, still nothing changed.
    std::fs::remove_file(d.join("root-cert.pem")).unwrap();
    let before = snapshot(d);
    let err = fails(&root);
    assert!(err.contains("root-key.pem"), "{err}");
    assert_eq!(snapshot(d), before);

    // --force replaces both, keeps the modes, and says so.
    let text = ok(&[&root[..], &["--force"]].concat());
    assert!(
        text.contains("replaced") && text.contains("wrote"),
        "{text}"
    );
    assert_ne!(snapshot(d), before);
    assert_eq!(mode(&d.join("root-key.pem")), 0o600);
    assert_eq!(snapshot(d).len(), 2, "no temp or backup files left");
}

#[test]
fn a_failed_write_leaves_everything_as_it_was() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(&["generate", "root", "--out", s(d), "--key-type", "ec-p256"]);
    let inter = |extra: &[&'static str]| -> Vec<String> {
        [
            &[
                "generate",
                "intermediate",
                "--root",
                s(d),
                "--name",
                "c1",
                "--out",
                s(d),
                "--key-type",
                "ec-p256",
            ][..],
            extra,
        ]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect()
    };
    ok(&strs(&inter(&[])));
    // A name collision in the middle of the set: cert-chain.pem (third of four files) is now
    // a directory. With --force, temps for all four files and backups of the first two are
    // made before the third cannot be replaced; all of them must go and nothing may change.
    // (Failures after some files were already moved into place are injected step by step in
    // fsio's unit tests.)
    std::fs::remove_file(d.join("c1/cert-chain.pem")).unwrap();
    std::fs::create_dir(d.join("c1/cert-chain.pem")).unwrap();
    let before = snapshot(d);
    let err = fails(&strs(&inter(&["--force"])));
    assert!(err.contains("cert-chain.pem"), "{err}");
    assert_eq!(snapshot(d), before);

    // The output directory cannot be created (a file is in the way): nothing is left.
    std::fs::write(d.join("c2"), b"not a directory").unwrap();
    let before = snapshot(d);
    let out = run(&[
        "generate",
        "intermediate",
        "--root",
        s(d),
        "--name",
        "c2",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(snapshot(d), before);
}

#[test]
fn clamp_is_reported() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(&[
        "generate",
        "root",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
        "--days",
        "100",
    ]);
    let text = ok(&[
        "generate",
        "intermediate",
        "--root",
        s(d),
        "--name",
        "c",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
    ]);
    assert!(text.contains("clamped     notAfter clamped from"), "{text}");
    let json = ok(&[
        "generate",
        "intermediate",
        "--root",
        s(d),
        "--name",
        "c2",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
        "--days",
        "30",
        "--org",
        "Acme",
        "--cn",
        "Issuing CA",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["clamped"], serde_json::Value::Null);
    assert_eq!(v["certificate"]["subject"], "L=c2,CN=Issuing CA,O=Acme");
    let json = ok(&[
        "generate",
        "intermediate",
        "--root",
        s(d),
        "--name",
        "c3",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["clamped"]["limited_by"], "CN=Root CA,O=Istio");
    assert_eq!(v["clamped"]["not_after"], v["certificate"]["not_after"]);
}

#[test]
fn multi_root_bundle_is_kept_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (a, b) = (d.join("a"), d.join("b"));
    ok(&["generate", "root", "--out", s(&a), "--key-type", "ec-p256"]);
    ok(&["generate", "root", "--out", s(&b), "--key-type", "ec-p384"]);
    // Root dir B with the combined file A+B (the middle phase of a rotation).
    let b_root = std::fs::read_to_string(b.join("root-cert.pem")).unwrap();
    let combined = [
        std::fs::read(a.join("root-cert.pem")).unwrap(),
        b_root.as_bytes().to_vec(),
    ]
    .concat();
    std::fs::write(b.join("root-cert.pem"), &combined).unwrap();
    let text = ok(&[
        "generate",
        "intermediate",
        "--root",
        s(&b),
        "--name",
        "cb",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
    ]);
    assert!(text.contains("holds 2 certificates"), "{text}");
    assert_eq!(std::fs::read(d.join("cb/root-cert.pem")).unwrap(), combined);
    // cert-chain.pem carries the signing root only.
    let chain = std::fs::read_to_string(d.join("cb/cert-chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(chain.ends_with(&b_root), "{chain}");
    openssl_verify(
        &d.join("cb/root-cert.pem"),
        &d.join("cb/cert-chain.pem"),
        &d.join("cb/ca-cert.pem"),
    );
    // A key that belongs to no certificate of the file.
    let c = d.join("c");
    std::fs::create_dir(&c).unwrap();
    std::fs::copy(b.join("root-key.pem"), c.join("root-key.pem")).unwrap();
    std::fs::copy(a.join("root-cert.pem"), c.join("root-cert.pem")).unwrap();
    let err = fails(&[
        "generate",
        "intermediate",
        "--root",
        s(&c),
        "--name",
        "x",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
    ]);
    assert!(
        err.contains("root-key.pem") && err.contains("does not belong"),
        "{err}"
    );
}

#[test]
fn leaf_from_istio_samples_cacerts() {
    let t = tempfile::tempdir().unwrap();
    let ca = t.path().join("cacerts");
    std::fs::create_dir(&ca).unwrap();
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/istio-samples");
    // samples/certs: PKCS#1 key, cert-chain.pem without the root, no SKI on ca-cert.
    for f in [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ] {
        std::fs::copy(samples.join(f), ca.join(f)).unwrap();
    }
    let out = t.path().join("wl");
    let text = ok(&[
        "generate",
        "leaf",
        "--ca",
        s(&ca),
        "--spiffe",
        "spiffe://cluster.local/ns/foo/sa/foo",
        "--out",
        s(&out),
        "--key-type",
        "ec-p256",
    ]);
    assert!(text.contains("no subjectKeyIdentifier"), "{text}");
    // Istio's sample root and CA themselves fail -x509_strict (non-critical basicConstraints,
    // no keyUsage or SKI on the root), and without the CA's SKI the leaf can have no AKI:
    // check the chain without the strict flag here.
    openssl_verify_with(
        &[],
        &out.join("root-cert.pem"),
        &out.join("cert-chain.pem"),
        &out.join("workload-cert.pem"),
    );
    // ca-cert-alt-2 with its (mismatching) sample key: refused, naming the file.
    for (from, to) in [
        ("ca-cert-alt-2.pem", "ca-cert.pem"),
        ("ca-key-alt-2.pem", "ca-key.pem"),
    ] {
        std::fs::copy(samples.join(from), ca.join(to)).unwrap();
    }
    std::fs::copy(
        samples.join("cert-chain-alt-2.pem"),
        ca.join("cert-chain.pem"),
    )
    .unwrap();
    let err = fails(&[
        "generate",
        "leaf",
        "--ca",
        s(&ca),
        "--spiffe",
        "spiffe://cluster.local/ns/foo/sa/foo",
        "--out",
        s(&t.path().join("wl2")),
        "--key-type",
        "ec-p256",
    ]);
    assert!(
        err.contains("ca-cert.pem") && err.contains("does not match"),
        "{err}"
    );
}

#[test]
fn bad_input_is_exit_2_with_one_line() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let out = run(&["generate", "root", "--out", s(d), "--key-type", "rsa1024"]);
    assert_eq!(out.status.code(), Some(2));
    let err = fails(&[
        "generate",
        "root",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
        "--days",
        "0",
    ]);
    assert!(err.contains("days"), "{err}");
    let err = fails(&[
        "generate",
        "intermediate",
        "--root",
        s(&d.join("missing")),
        "--name",
        "c",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
    ]);
    assert!(err.contains("root-cert.pem"), "{err}");
    ok(&["generate", "root", "--out", s(d), "--key-type", "ec-p256"]);
    for bad_name in ["..", "a/b", ""] {
        let err = fails(&[
            "generate",
            "intermediate",
            "--root",
            s(d),
            "--name",
            bad_name,
            "--out",
            s(d),
            "--key-type",
            "ec-p256",
        ]);
        assert!(err.contains("cluster name"), "{err}");
    }
    for (spiffe, ttl) in [
        ("http://x/ns/a/sa/b", "24h"),
        ("spiffe://td/ns/a/sa/b", "soon"),
    ] {
        let err = fails(&[
            "generate",
            "leaf",
            "--ca",
            s(d),
            "--spiffe",
            spiffe,
            "--out",
            s(&d.join("wl")),
            "--ttl",
            ttl,
            "--key-type",
            "ec-p256",
        ]);
        assert!(err.contains("--spiffe") || err.contains("--ttl"), "{err}");
    }
    // A corrupted key names its file and line.
    std::fs::write(
        d.join("root-key.pem"),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = fails(&[
        "generate",
        "intermediate",
        "--root",
        s(d),
        "--name",
        "c",
        "--out",
        s(d),
        "--key-type",
        "ec-p256",
    ]);
    assert!(
        err.contains("root-key.pem") && err.contains("line"),
        "{err}"
    );
    assert!(!d.join("c").exists());
}
