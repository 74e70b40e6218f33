//! Three CA levels made by `openssl` (an independent producer): root -> organisation
//! intermediate (pathlen 1) -> cluster intermediate (Istio's recipe, pathlen 0), run through
//! `meshtrust generate`, `plan`, `plan check` and `simulate`; `openssl verify` checks every
//! phase of every plan (the signing CA and a workload leaf against the phase's roots and its
//! neighbours'). Also the external-PKI flags: every order gives the same plan; a broken chain
//! is refused by name.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::recipe::openssl;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(common::versioned(args))
        .output()
        .expect("run meshtrust")
}

fn code(args: &[&str]) -> (i32, String) {
    let out = run(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn ok(args: &[&str]) -> String {
    let (c, text) = code(args);
    assert_eq!(c, 0, "{args:?}\n{text}");
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const REQ: &str = "[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
distinguished_name = req_dn
[ req_dn ]
";

/// The CA extensions of Istio's recipe with `pathlen` (none for a root), plus the AKI that
/// OpenSSL writes for an issued CA.
fn ext(pathlen: Option<u8>, issued: bool, san: bool) -> String {
    let mut e = String::from("[ ca_ext ]\nsubjectKeyIdentifier = hash\n");
    match pathlen {
        Some(p) => e.push_str(&format!(
            "basicConstraints = critical, CA:true, pathlen:{p}\n"
        )),
        None => e.push_str("basicConstraints = critical, CA:true\n"),
    }
    e.push_str(
        "keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign\n",
    );
    if san {
        e.push_str("subjectAltName = DNS:istiod.istio-system.svc\n");
    }
    if issued {
        e.push_str("authorityKeyIdentifier = keyid:always\n");
    }
    e
}

fn key(dir: &Path, path: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            path,
        ],
    );
}

/// A self-signed root `O=Istio, CN=Root CA` in `dir/name/` (root-cert.pem, root-key.pem).
fn root(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("ca.conf"),
        format!("{REQ}O = Istio\nCN = Root CA\n{}", ext(None, false, false)),
    )
    .unwrap();
    key(&d, "root-key.pem");
    openssl(
        &d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root-key.pem",
            "-config",
            "ca.conf",
            "-extensions",
            "ca_ext",
            "-days",
            "3650",
            "-out",
            "root-cert.pem",
        ],
    );
    d
}

/// An intermediate in cacerts layout in `out/`, issued by the CA of `parent` (a root
/// directory or a cacerts directory).
fn intermediate(parent: &Path, out: &Path, dn: &str, pathlen: u8, serial: u32) {
    std::fs::create_dir_all(out).unwrap();
    let (pcert, pkey, pchain) = if parent.join("ca-cert.pem").exists() {
        ("ca-cert.pem", "ca-key.pem", Some("cert-chain.pem"))
    } else {
        ("root-cert.pem", "root-key.pem", None)
    };
    std::fs::write(
        out.join("ca.conf"),
        format!("{REQ}{dn}{}", ext(Some(pathlen), true, pathlen == 0)),
    )
    .unwrap();
    key(out, "ca-key.pem");
    openssl(
        out,
        &[
            "req",
            "-new",
            "-key",
            "ca-key.pem",
            "-config",
            "ca.conf",
            "-out",
            "ca.csr",
        ],
    );
    let serial = serial.to_string();
    openssl(
        out,
        &[
            "x509",
            "-req",
            "-days",
            "730",
            "-in",
            "ca.csr",
            "-CA",
            s(&parent.join(pcert)),
            "-CAkey",
            s(&parent.join(pkey)),
            "-set_serial",
            &serial,
            "-extfile",
            "ca.conf",
            "-extensions",
            "ca_ext",
            "-out",
            "ca-cert.pem",
        ],
    );
    let mut chain = std::fs::read(out.join("ca-cert.pem")).unwrap();
    chain.extend(std::fs::read(parent.join(pchain.unwrap_or("root-cert.pem"))).unwrap());
    std::fs::write(out.join("cert-chain.pem"), chain).unwrap();
    std::fs::copy(parent.join("root-cert.pem"), out.join("root-cert.pem")).unwrap();
    for f in ["ca.conf", "ca.csr"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
}

/// root -> org (pathlen 1) -> cluster1, cluster2 (pathlen 0), all by openssl.
struct Pki {
    root: PathBuf,
    org: PathBuf,
    clusters: Vec<PathBuf>,
}

fn pki(dir: &Path, name: &str, serial: u32) -> Pki {
    let root = root(dir, name);
    let org = root.join("org");
    intermediate(
        &root,
        &org,
        "O = Istio\nCN = Org Intermediate CA\n",
        1,
        serial,
    );
    let clusters = ["cluster1", "cluster2"]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let d = org.join(c);
            intermediate(
                &org,
                &d,
                &format!("O = Istio\nCN = Intermediate CA\nL = {c}\n"),
                0,
                serial + 1 + i as u32,
            );
            d
        })
        .collect();
    Pki {
        root,
        org,
        clusters,
    }
}

/// A new cluster CA (`cluster1`, P-256) made by `meshtrust generate intermediate --ca` under
/// openssl's organisation CA `org`, in `out`; returns its cacerts directory.
fn cluster_ca_under(org: &Path, out: &Path) -> PathBuf {
    ok(&[
        "generate",
        "intermediate",
        "--ca",
        s(org),
        "--name",
        "cluster1",
        "--out",
        s(out),
        "--key-type",
        "ec-p256",
    ]);
    out.join("cluster1")
}

fn verify_openssl(roots: &Path, chain: &Path, target: &Path) -> bool {
    let out = Command::new("openssl")
        .args([
            "verify",
            "-no-CApath",
            "-no-CAstore",
            "-CAfile",
            s(roots),
            "-untrusted",
            s(chain),
            s(target),
        ])
        .output()
        .expect("openssl");
    out.status.success()
}

/// The phase directories of a plan (single cluster: the phase itself; else one per cluster).
fn phase_dirs(plan: &Path) -> Vec<Vec<PathBuf>> {
    let mut phases: Vec<PathBuf> = std::fs::read_dir(plan)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    phases.sort();
    phases
        .into_iter()
        .map(|p| {
            if p.join("root-cert.pem").exists() {
                vec![p]
            } else {
                let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.is_dir())
                    .collect();
                v.sort();
                v
            }
        })
        .collect()
}

/// openssl verifies, in every phase and cluster: the signing CA against the phase's roots with
/// its chain, and a workload leaf it signs (made by `meshtrust generate leaf`) against the
/// roots of its own phase, the previous and the next (every cluster's).
fn openssl_checks_every_phase(plan: &Path, scratch: &Path) {
    let phases = phase_dirs(plan);
    assert!(phases.len() >= 2, "{phases:?}");
    let mut leaves = Vec::new();
    for (k, clusters) in phases.iter().enumerate() {
        let mut row = Vec::new();
        for (c, d) in clusters.iter().enumerate() {
            if !d.join("cert-chain.pem").exists()
                || std::fs::read(d.join("cert-chain.pem")).unwrap().is_empty()
            {
                row.push(None);
                continue;
            }
            assert!(
                verify_openssl(
                    &d.join("root-cert.pem"),
                    &d.join("cert-chain.pem"),
                    &d.join("ca-cert.pem")
                ),
                "openssl refuses the signing CA of {}",
                d.display()
            );
            let leaf = scratch.join(format!("leaf-{k}-{c}"));
            ok(&[
                "generate",
                "leaf",
                "--ca",
                s(d),
                "--spiffe",
                "spiffe://cluster.local/ns/default/sa/probe",
                "--out",
                s(&leaf),
                "--key-type",
                "ec-p256",
            ]);
            row.push(Some(leaf));
        }
        leaves.push(row);
    }
    for (k, row) in leaves.iter().enumerate() {
        for leaf in row.iter().flatten() {
            let near = k.saturating_sub(1)..=(k + 1).min(phases.len() - 1);
            for peers in &phases[near] {
                for peer in peers {
                    assert!(
                        verify_openssl(
                            &peer.join("root-cert.pem"),
                            &leaf.join("cert-chain.pem"),
                            &leaf.join("workload-cert.pem")
                        ),
                        "openssl: a leaf of phase {k} ({}) is refused by the roots of {}",
                        leaf.display(),
                        peer.display()
                    );
                }
            }
        }
    }
}

fn plan_check_simulate(plan: &Path, profile: &[&str]) {
    let mut args = vec!["plan", "check"];
    args.extend_from_slice(profile);
    args.push(s(plan));
    let text = ok(&args);
    assert!(text.contains("is safe"), "{text}");
    let text = ok(&["simulate", "--workloads", "24", "--seed", "7", s(plan)]);
    assert!(text.contains("Result: OK"), "{text}");
}

#[test]
fn generate_intermediate_under_an_openssl_organisation_ca() {
    let t = tempfile::tempdir().unwrap();
    let a = pki(t.path(), "A", 10);
    // Under the organisation intermediate (pathlen 1): a new cluster CA, chain up to the root.
    let out = t.path().join("gen");
    ok(&[
        "generate",
        "intermediate",
        "--ca",
        s(&a.org),
        "--name",
        "cluster3",
        "--out",
        s(&out),
        "--key-type",
        "ec-p256",
    ]);
    let d = out.join("cluster3");
    let chain = std::fs::read_to_string(d.join("cert-chain.pem")).unwrap();
    let expect = format!(
        "{}{}",
        std::fs::read_to_string(d.join("ca-cert.pem")).unwrap(),
        std::fs::read_to_string(a.org.join("cert-chain.pem")).unwrap()
    );
    assert_eq!(
        chain, expect,
        "new cert, then the parent's chain up to the root"
    );
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 3);
    assert_eq!(
        std::fs::read(d.join("root-cert.pem")).unwrap(),
        std::fs::read(a.root.join("root-cert.pem")).unwrap()
    );
    assert!(verify_openssl(
        &d.join("root-cert.pem"),
        &d.join("cert-chain.pem"),
        &d.join("ca-cert.pem")
    ));
    // openssl's own x509_strict verification of a leaf under it.
    let leaf = t.path().join("leaf");
    ok(&[
        "generate",
        "leaf",
        "--ca",
        s(&d),
        "--spiffe",
        "spiffe://cluster.local/ns/a/sa/b",
        "--out",
        s(&leaf),
        "--key-type",
        "ec-p256",
    ]);
    assert!(verify_openssl(
        &d.join("root-cert.pem"),
        &leaf.join("cert-chain.pem"),
        &leaf.join("workload-cert.pem")
    ));

    // Under a cluster intermediate (Istio's pathlen 0): refused, saying so; nothing written.
    let out2 = t.path().join("gen2");
    let (c, text) = code(&[
        "generate",
        "intermediate",
        "--ca",
        s(&a.clusters[0]),
        "--name",
        "sub",
        "--out",
        s(&out2),
        "--key-type",
        "ec-p256",
    ]);
    assert_eq!(c, 2, "{text}");
    assert!(
        text.contains("pathLenConstraint 0") && text.contains("may not sign intermediate CAs"),
        "{text}"
    );
    assert!(text.contains("L=cluster1"), "{text}");
    assert!(!out2.join("sub").exists());
}

#[test]
fn deep_root_rotation_single_and_multi_cluster() {
    let t = tempfile::tempdir().unwrap();
    let a = pki(t.path(), "A", 10);
    let b = pki(t.path(), "B", 20);
    let profile = ["--multiroot", "--xds-agent"];
    // Single cluster, three levels on each side.
    let plan = t.path().join("root-plan");
    let mut args = vec![
        "plan",
        "--current",
        s(&a.clusters[0]),
        "--new",
        s(&b.clusters[0]),
        "--out",
        s(&plan),
    ];
    args.extend_from_slice(&profile);
    let text = ok(&args);
    assert!(text.starts_with("root-rotation"), "{text}");
    plan_check_simulate(&plan, &[]);
    openssl_checks_every_phase(&plan, &t.path().join("s1"));

    // Two clusters sharing the organisation intermediate, moving to B's.
    let multi = t.path().join("multi-plan");
    let c1 = format!("cluster1={},{}", s(&a.clusters[0]), s(&b.clusters[0]));
    let c2 = format!("cluster2={},{}", s(&a.clusters[1]), s(&b.clusters[1]));
    let mut args = vec![
        "plan",
        "--cluster",
        &c1,
        "--cluster",
        &c2,
        "--out",
        s(&multi),
    ];
    args.extend_from_slice(&profile);
    let text = ok(&args);
    assert!(text.starts_with("multi-cluster"), "{text}");
    plan_check_simulate(&multi, &[]);
    openssl_checks_every_phase(&multi, &t.path().join("s2"));
}

#[test]
fn deep_intermediate_rotation_under_the_same_organisation_ca() {
    let t = tempfile::tempdir().unwrap();
    let a = pki(t.path(), "A", 10);
    let new_ca = cluster_ca_under(&a.org, &t.path().join("gen"));
    for reissue in [false, true] {
        let plan = t.path().join(format!("int-plan-{reissue}"));
        let mut args = vec![
            "plan",
            "--current",
            s(&a.clusters[0]),
            "--new",
            s(&new_ca),
            "--out",
            s(&plan),
        ];
        if reissue {
            args.extend_from_slice(&["--reissue-now", "--multiroot", "--xds-agent"]);
        }
        let text = ok(&args);
        assert!(text.starts_with("intermediate-rotation"), "{text}");
        plan_check_simulate(&plan, &[]);
        openssl_checks_every_phase(&plan, &t.path().join(format!("s-{reissue}")));
    }
}

#[test]
fn external_pki_inputs_in_every_order_give_the_same_plan() {
    let t = tempfile::tempdir().unwrap();
    let a = pki(t.path(), "A", 10);
    let b = pki(t.path(), "B", 20);
    let nb = &b.clusters[0];
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (cert, org, root) = (
        nb.join("ca-cert.pem"),
        read(&b.org.join("ca-cert.pem")),
        read(&b.root.join("root-cert.pem")),
    );
    let write = |name: &str, parts: &[&[u8]]| {
        let p = t.path().join(name);
        std::fs::write(&p, parts.concat()).unwrap();
        p
    };
    let issuer_first = write("aws-chain.pem", &[&org, &root]); // AWS PCA CertificateChain
    let root_first = write("root-first.pem", &[&root, &org]);
    let no_root = write("vault-ca-chain.pem", &[&org]); // Vault ca_chain without the root
    let root_file = write("root.pem", &[&root]);
    let with_cert = write("full.pem", &[&read(&cert), &org, &root]);
    let key = nb.join("ca-key.pem");
    let variants: Vec<Vec<&str>> = vec![
        vec!["--new", s(nb)],
        vec![
            "--new-cert",
            s(&cert),
            "--new-key",
            s(&key),
            "--new-chain",
            s(&issuer_first),
        ],
        vec![
            "--new-cert",
            s(&cert),
            "--new-key",
            s(&key),
            "--new-chain",
            s(&root_first),
        ],
        vec![
            "--new-cert",
            s(&cert),
            "--new-key",
            s(&key),
            "--new-chain",
            s(&no_root),
            "--new-root",
            s(&root_file),
        ],
        vec!["--new-cert", s(&with_cert), "--new-key", s(&key)],
    ];
    let mut plans = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let out = t.path().join(format!("plan{i}"));
        let mut args = vec![
            "plan",
            "--current",
            s(&a.clusters[0]),
            "--out",
            s(&out),
            "--multiroot",
            "--xds-agent",
        ];
        args.extend_from_slice(v);
        let text = ok(&args);
        if i == 2 {
            assert!(
                text.contains("root-first"),
                "the reordering is reported: {text}"
            );
        }
        if i == 3 {
            assert!(
                text.contains("completed"),
                "the completion is reported: {text}"
            );
        }
        plans.push(out);
    }
    for p in &plans[1..] {
        for (x, y) in phase_dirs(&plans[0])
            .iter()
            .flatten()
            .zip(phase_dirs(p).iter().flatten())
        {
            for f in [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem",
            ] {
                assert_eq!(
                    read(&x.join(f)),
                    read(&y.join(f)),
                    "{} vs {}",
                    x.join(f).display(),
                    y.join(f).display()
                );
            }
        }
    }
    plan_check_simulate(&plans[2], &[]);

    // A chain missing the organisation CA: refused, naming the certificate whose issuer is missing.
    let out = t.path().join("broken");
    let (c, text) = code(&[
        "plan",
        "--current",
        s(&a.clusters[0]),
        "--out",
        s(&out),
        "--multiroot",
        "--new-cert",
        s(&cert),
        "--new-key",
        s(&key),
        "--new-chain",
        s(&root_file),
    ]);
    assert_eq!(c, 2, "{text}");
    assert!(
        text.contains("does not link up")
            && text.contains("L=cluster1")
            && text.contains("Org Intermediate CA"),
        "{text}"
    );
    assert!(!out.exists());
}

mod assemble_props {
    use meshtrust::generate::{self, IntermediateSpec, KeyType};
    use meshtrust::istio::{self, PkiMaterial};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// root -> org (pathlen 1) -> cluster, made once.
    fn levels() -> &'static [generate::Generated; 3] {
        static L: OnceLock<[generate::Generated; 3]> = OnceLock::new();
        L.get_or_init(|| {
            let now = time::macros::datetime!(2026-01-01 0:00 UTC);
            let (root, _) = generate::istio_ca("x", KeyType::EcP256, now).unwrap();
            let spec = |name: &str, path_len| IntermediateSpec {
                key_type: KeyType::EcP256,
                path_len,
                ..IntermediateSpec::istio(name)
            };
            let org = generate::intermediate(&spec("org", Some(1)), &root.issuer().unwrap(), now)
                .unwrap();
            let cl =
                generate::intermediate(&spec("cluster1", Some(0)), &org.issuer().unwrap(), now)
                    .unwrap();
            [root, org, cl]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Invariant: whatever the order of the chain input, whether it holds the root, the
        /// signing CA itself, or the root comes separately, the assembled secret is the same
        /// bytes: Istio's layout, ca-cert first, each issuer next.
        #[test]
        fn any_order_same_secret(
            order in Just(vec![0usize, 1, 2]).prop_shuffle(),
            root_apart in any::<bool>(),
            cert_in_chain in any::<bool>(),
        ) {
            let [root, org, cl] = levels();
            let key = cl.key_pem();
            let mut chain = String::new();
            for i in order {
                match i {
                    0 if !root_apart => chain.push_str(&root.cert_pem),
                    1 => chain.push_str(&org.cert_pem),
                    2 if cert_in_chain => chain.push_str(&cl.cert_pem),
                    _ => {}
                }
            }
            let a = istio::assemble(&PkiMaterial {
                cert: cl.cert_pem.as_bytes(),
                key: key.as_bytes(),
                chain: Some(chain.as_bytes()),
                root: root_apart.then_some(root.cert_pem.as_bytes()),
            }).unwrap();
            let want = cl.cert_chain_pem();
            prop_assert_eq!(a.secret.file("cert-chain.pem"), Some(want.as_bytes()));
            prop_assert_eq!(a.secret.file("root-cert.pem"), Some(root.cert_pem.as_bytes()));
            prop_assert_eq!(a.secret.file("ca-cert.pem"), Some(cl.cert_pem.as_bytes()));
            // Drop the organisation CA: refused, naming the cluster CA whose issuer is missing.
            let without_org = chain.replace(&org.cert_pem, "");
            let e = istio::assemble(&PkiMaterial {
                cert: cl.cert_pem.as_bytes(),
                key: key.as_bytes(),
                chain: Some(without_org.as_bytes()),
                root: root_apart.then_some(root.cert_pem.as_bytes()),
            }).unwrap_err();
            let is_missing_link = matches!(&e, istio::AssembleError::MissingLink { subject, .. } if subject == cl.certificate.subject());
            prop_assert!(is_missing_link, "{}", e);
        }
    }
}

/// An ambient mesh on istiod 1.24.3 (cert-chain.pem sent as one CSR-response element) with a
/// ztunnel before 1.24.6 presents only cert-chain.pem's first certificate: the organisation
/// intermediate is missing and peers refuse its leaves. The planner refuses by name and
/// says which releases fix it; a ztunnel that parses every block (1.24.6) is planned.
#[test]
fn deep_chain_on_an_old_ztunnel_is_refused_by_version() {
    let t = tempfile::tempdir().unwrap();
    let a = pki(t.path(), "A", 10);
    let new_ca = cluster_ca_under(&a.org, &t.path().join("gen"));
    let plan_with = |z: &str, out: &str| {
        let out = t.path().join(out);
        let args = [
            "plan",
            "--istio-version",
            "1.24.3",
            "--data-plane",
            "ambient",
            "--ztunnel-version",
            z,
            "--current",
            s(&a.clusters[0]),
            "--new",
            s(&new_ca),
            "--out",
            s(&out),
        ];
        let (c, text) = code(&args);
        (c, text, out)
    };
    let (c, text, _) = plan_with("1.24.5", "old");
    assert_ne!(c, 0, "{text}");
    assert!(text.contains("ztunnel-chain-truncated"), "{text}");
    assert!(
        text.contains("1.24.5") && text.contains("1.24.6"),
        "names the version and the fix: {text}"
    );
    let (c, text, plan) = plan_with("1.24.6", "fixed");
    assert_eq!(c, 0, "{text}");
    let text = ok(&["plan", "check", s(&plan)]);
    assert!(text.contains("is safe"), "{text}");
}
