//! Replays every seed of the fuzz corpus (`fuzz/corpus/<target>/`) through the same entry
//! points the cargo-fuzz targets call, so a crash found once stays fixed in the normal suite.
//! `write_seed_corpora` (ignored) regenerates the seeds made from real material.
#![cfg(feature = "testkit")]

use std::path::{Path, PathBuf};

use meshtrust::istio::{self, CaSecret, SecretForm};
use meshtrust::plan::{self, RotationKind};
use meshtrust::testkit::fuzz;
use meshtrust::testkit::plans::{self, TestCa};
use meshtrust::testkit::{KeyType, TestKey};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = corpus(target);
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .collect();
    entries.sort_by_key(|e| e.as_ref().map(|e| e.path()).ok());
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            if let Err(e) = std::panic::catch_unwind(|| f(&data)) {
                panic!("{}: {:?}", path.display(), e.downcast_ref::<String>());
            }
            n += 1;
        }
    }
    n
}

#[test]
fn pem_corpus() {
    assert!(replay("pem", fuzz::pem) >= 20);
}

#[test]
fn cert_corpus() {
    assert!(replay("cert", fuzz::certificate) >= 5);
}

#[test]
fn bundle_corpus() {
    assert!(replay("bundle", fuzz::bundle) >= 20);
}

#[test]
fn cacerts_manifest_corpus() {
    assert!(replay("cacerts_manifest", fuzz::cacerts_manifest) >= 10);
}

#[test]
fn cacerts_dir_corpus() {
    assert!(replay("cacerts_dir", fuzz::cacerts_dir) >= 6);
}

#[test]
fn plan_check_corpus() {
    assert!(replay("plan_check", fuzz::plan_check) >= 4);
}

#[test]
fn plan_scenario_corpus() {
    assert!(replay("plan_scenario", fuzz::plan_scenario) >= 4);
}

/// The seeds made from real material parse as what they claim (so the fuzzers start from
/// inputs that reach deep code, not from rejected ones).
#[test]
fn seeds_reach_deep_code() {
    for name in [
        "sample-a.yaml",
        "sample-b.json",
        "self-signed.yaml",
        "tls.yaml",
    ] {
        let data = std::fs::read(corpus("cacerts_manifest").join(name)).unwrap();
        let s = istio::parse_manifest(&data).unwrap();
        assert!(s.ca_cert().is_ok() && s.ca_key().is_ok(), "{name}");
    }
    for name in ["sample-a", "self-signed", "tls"] {
        let data = std::fs::read(corpus("cacerts_dir").join(name)).unwrap();
        let files = fuzz::split_files(&data);
        let s = istio::from_dir_files(files.iter().map(|(n, b)| (n.as_str(), b.to_vec()))).unwrap();
        assert!(s.root_bundle().is_ok(), "{name}");
    }
    for name in [
        "samples-root-rotation",
        "multi-cluster",
        "intermediate-reissue",
    ] {
        let data = std::fs::read(corpus("plan_check").join(name)).unwrap();
        let (p, waits) = fuzz::plan_from_files(&data).unwrap();
        assert!(waits && p.phases.len() >= 3, "{name}");
        let opts = plan::CheckOptions {
            now: plans::test_now(),
            margin: std::time::Duration::from_secs(600),
            waits_known: true,
        };
        let f = plan::check_plan(&p, &opts);
        assert!(!plan::has_errors(&f), "{name}: {f:#?}");
    }
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/istio-samples")
            .join(name),
    )
    .unwrap()
}

fn secret_files(s: &CaSecret) -> Vec<(String, Vec<u8>)> {
    s.file_names()
        .map(|n| (n.to_owned(), s.file(n).unwrap().to_vec()))
        .collect()
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = corpus(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn plan_seed(p: &plan::Plan) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = vec![(
        "profile.json".to_owned(),
        serde_json::to_vec_pretty(&p.profile).unwrap(),
    )];
    let multi = p.clusters.len() > 1;
    for ph in &p.phases {
        for c in &ph.clusters {
            let dir = if multi {
                format!("{}/{}", ph.name, c.cluster)
            } else {
                ph.name.clone()
            };
            for (n, b) in secret_files(&c.secret) {
                files.push((format!("{dir}/{n}"), b));
            }
        }
        if ph.trigger {
            files.push((format!("{}/trigger", ph.name), Vec::new()));
        }
        if let Some(g) = &ph.gate {
            files.push((
                format!("{}/min-wait", ph.name),
                g.min_wait.as_secs().to_string().into_bytes(),
            ));
        }
    }
    fuzz::join_files(&files)
}

/// Regenerates the seeds made from real material: Istio's samples, a self-signed
/// `istio-ca-secret` and material of the testkit's committed RSA keys (deterministic: RSA
/// PKCS#1 signatures are), in every form the targets read.
#[test]
#[ignore = "writes fuzz/corpus/*: run by hand after changing an input format"]
fn write_seed_corpora() {
    let a = CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert.pem"),
    );
    let b = CaSecret::cacerts(
        &sample("ca-cert-alt.pem"),
        &sample("ca-key-alt.pem"),
        &sample("cert-chain-alt.pem"),
        &sample("root-cert-alt.pem"),
    );
    let b2 = CaSecret::cacerts(
        &sample("ca-cert-alt-2.pem"),
        &sample("ca-key-alt-2.pem"), // does not match: Istio's own defect
        &sample("cert-chain-alt-2.pem"),
        &sample("root-cert-combined.pem"),
    );
    let rsa = |i| TestKey::pooled(KeyType::Rsa2048, i);
    let ca = TestCa::new("Istio", "cluster1", &rsa(0), &[rsa(1)]).unwrap();
    let self_signed = ca.istio_ca_secret();
    let cacerts = ca.cacerts();
    let tls = CaSecret::from_files(
        "cacerts",
        "istio-system",
        SecretForm::Memory,
        [
            (
                istio::TLS_CRT,
                cacerts.file(istio::CA_CERT).unwrap().to_vec(),
            ),
            (
                istio::TLS_KEY,
                cacerts.file(istio::CA_KEY).unwrap().to_vec(),
            ),
            (
                istio::CA_CRT,
                cacerts.file(istio::ROOT_CERT).unwrap().to_vec(),
            ),
        ],
    );

    // cacerts_manifest: kubectl YAML and JSON, a List, stringData, CRLF.
    write(
        "cacerts_manifest",
        "sample-a.yaml",
        a.to_manifest_yaml().as_bytes(),
    );
    write(
        "cacerts_manifest",
        "sample-a.json",
        a.to_manifest_json().as_bytes(),
    );
    write(
        "cacerts_manifest",
        "sample-b.json",
        b.to_manifest_json().as_bytes(),
    );
    write(
        "cacerts_manifest",
        "sample-b2-mismatched-key.yaml",
        b2.to_manifest_yaml().as_bytes(),
    );
    write(
        "cacerts_manifest",
        "self-signed.yaml",
        self_signed.to_manifest_yaml().as_bytes(),
    );
    write(
        "cacerts_manifest",
        "tls.yaml",
        tls.to_manifest_yaml().as_bytes(),
    );
    write(
        "cacerts_manifest",
        "crlf.yaml",
        cacerts.to_manifest_yaml().replace('\n', "\r\n").as_bytes(),
    );
    let item = |s: &CaSecret| {
        let text = s.to_manifest_yaml();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            out.push_str(if i == 0 { "- " } else { "  " });
            out.push_str(line);
            out.push('\n');
        }
        out
    };
    write(
        "cacerts_manifest",
        "list.yaml",
        format!(
            "apiVersion: v1\nkind: List\nitems:\n{}{}",
            item(&self_signed),
            item(&cacerts)
        )
        .as_bytes(),
    );
    let mut string_data = String::from(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cacerts\n  namespace: istio-system\ntype: Opaque\nstringData:\n",
    );
    for (n, bytes) in secret_files(&cacerts) {
        string_data.push_str(&format!("  {n}: |\n"));
        for line in String::from_utf8(bytes).unwrap().lines() {
            string_data.push_str(&format!("    {line}\n"));
        }
    }
    write(
        "cacerts_manifest",
        "string-data.yaml",
        string_data.as_bytes(),
    );
    write(
        "cacerts_manifest",
        "minimal.yaml",
        b"kind: Secret\nmetadata:\n  name: cacerts\ndata:\n  root-cert.pem: \"\"\n",
    );

    // cacerts_dir: directories as `tail -n +1 DIR/*` prints them.
    let dir_seed = |s: &CaSecret| fuzz::join_files(&secret_files(s));
    write("cacerts_dir", "sample-a", &dir_seed(&a));
    write("cacerts_dir", "sample-b", &dir_seed(&b));
    write("cacerts_dir", "sample-b2-mismatched-key", &dir_seed(&b2));
    write("cacerts_dir", "self-signed", &dir_seed(&self_signed));
    write("cacerts_dir", "tls", &dir_seed(&tls));
    let mut extra = secret_files(&cacerts);
    extra.insert(
        0,
        (
            "README".to_owned(),
            b"notes that are not a CA file\n".to_vec(),
        ),
    );
    extra.push((istio::CA_CRL.to_owned(), Vec::new()));
    write("cacerts_dir", "with-extra-files", &fuzz::join_files(&extra));

    // plan_check: plans the planner makes, with their profiles, triggers and waits.
    let samples = plans::istio_samples_case();
    let p = plan::plan(
        &samples.inputs,
        &samples.profile,
        &samples.options,
        samples.now,
    )
    .unwrap();
    write("plan_check", "samples-root-rotation", &plan_seed(&p));
    let rsa4 = [KeyType::Rsa2048; 4];
    for (name, kind, reissue) in [
        ("multi-cluster", RotationKind::MultiCluster, false),
        (
            "intermediate-reissue",
            RotationKind::IntermediateRotation,
            true,
        ),
        (
            "self-signed-to-plugged-in",
            RotationKind::SelfSignedToPluggedIn,
            false,
        ),
    ] {
        let case = plans::build_case(kind, rsa4, 1, 2, reissue, samples.profile.clone()).unwrap();
        let p = plan::plan(&case.inputs, &case.profile, &case.options, case.now).unwrap();
        write("plan_check", name, &plan_seed(&p));
    }

    // plan_scenario: a few shapes of raw bytes (the target reads them structurally).
    for (name, bytes) in [
        ("zeros", vec![0u8; 32]),
        ("ramp", (0u8..96).collect::<Vec<_>>()),
        ("ones", vec![0xffu8; 48]),
        (
            "alternating",
            (0..64)
                .map(|i| if i % 2 == 0 { 0x55 } else { 0x03 })
                .collect(),
        ),
    ] {
        write("plan_scenario", name, &bytes);
    }
}
