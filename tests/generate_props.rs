//! Property tests of `meshtrust::generate`: for every key type at every level, random
//! lifetimes, names and instants, root -> intermediate -> leaf verifies at that instant with
//! meshtrust's `verify` engine (client and server use, SPIFFE ID), rustls-webpki (ztunnel's
//! verifier) and `openssl verify -x509_strict`; the intermediate's directory passes istiod's
//! load checks (`istio::check`); validity is exactly what was asked or clamped to the issuer
//! chain; serials are positive, 128-bit and distinct.
//!
//! `PROPTEST_CASES` sets the number of cases (default 24; RSA-4096 keys take up to a second).

use std::path::Path;
use std::process::Command;

use meshtrust::generate::{self, IntermediateSpec, LeafSpec, RootSpec};
use meshtrust::istio::{self, IstioProfile, Severity};
use meshtrust::testkit::generation::{instant, key_type};
use meshtrust::verify::{self, CertPool, RequiredEku, VerifyOptions};
use meshtrust::{Certificate, SpiffeId};
use proptest::prelude::*;
use rustls_pki_types::{CertificateDer, UnixTime};
use time::{Duration, OffsetDateTime};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

fn openssl_verify(dir: &Path, at: OffsetDateTime, root: &str, untrusted: &str, cert: &str) {
    let at = at.unix_timestamp().to_string();
    let out = Command::new("openssl")
        .args([
            "verify",
            "-x509_strict",
            "-attime",
            &at,
            "-CAfile",
            root,
            "-untrusted",
            untrusted,
            cert,
        ])
        .current_dir(dir)
        .output()
        .expect("openssl (test oracle) must be installed");
    assert!(
        out.status.success(),
        "openssl verify {cert}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// rustls-webpki 0.103, as ztunnel verifies a peer: leaf + intermediates against the roots.
fn webpki_verify(
    root: &Certificate,
    chain: &[&Certificate],
    leaf: &Certificate,
    at: OffsetDateTime,
    server: bool,
) {
    let root_der = CertificateDer::from(root.der().to_vec());
    let anchors = vec![
        webpki::anchor_from_trusted_cert(&root_der)
            .unwrap()
            .to_owned(),
    ];
    let chain: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let leaf_der = CertificateDer::from(leaf.der().to_vec());
    let ee = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
    let usage = if server {
        webpki::KeyUsage::server_auth()
    } else {
        webpki::KeyUsage::client_auth()
    };
    let secs = u64::try_from(at.unix_timestamp()).unwrap();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
        usage,
        None,
        None,
    )
    .unwrap_or_else(|e| panic!("webpki rejects the leaf (server={server}): {e:?}"));
}

fn positive_128(c: &Certificate) -> Vec<u8> {
    let s = c.serial();
    assert!(s[0] & 0x80 == 0, "negative serial");
    assert!(
        !s.is_empty() && s.len() <= 17,
        "serial of {} bytes",
        s.len()
    );
    if s.len() == 17 {
        assert_eq!(s[0], 0);
    }
    s.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn root_intermediate_leaf_verifies_and_validity_is_exact(
        root_type in key_type(),
        ca_type in key_type(),
        leaf_type in key_type(),
        now in instant(),
        root_days in 1u32..7300,
        ca_days in 1u32..3650,
        ttl_secs in 60i64..(90 * 86_400),
        cluster in "[a-z][a-z0-9-]{0,20}",
        ns in "[a-z0-9][a-z0-9-]{0,15}",
        sa in "[a-z0-9][a-z0-9-]{0,15}",
    ) {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let whole = OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap();

        let root = generate::root(&RootSpec { key_type: root_type, days: root_days, ..RootSpec::istio() }, now).unwrap();
        let r = &root.certificate;
        prop_assert_eq!(r.not_before(), whole);
        prop_assert_eq!(r.not_after(), whole + Duration::days(root_days.into()));
        r.verify_signed_by(r).unwrap();

        let ca = generate::intermediate(
            &IntermediateSpec { key_type: ca_type, days: ca_days, ..IntermediateSpec::istio(&cluster) },
            &root.issuer().unwrap(),
            now,
        ).unwrap();
        let c = &ca.certificate;
        let requested = whole + Duration::days(ca_days.into());
        prop_assert_eq!(c.not_before(), whole);
        prop_assert_eq!(c.not_after(), requested.min(r.not_after()));
        prop_assert_eq!(ca.clamped.is_some(), requested > r.not_after());
        if let Some(cl) = &ca.clamped {
            prop_assert_eq!(cl.requested_not_after, requested);
            prop_assert_eq!(cl.not_after, r.not_after());
        }
        prop_assert_eq!(c.issuer_der(), r.subject_der());
        prop_assert!(c.subject().starts_with(&format!("L={cluster},")), "{}", c.subject());
        c.verify_signed_by(r).unwrap();

        let id = SpiffeId::istio("cluster.local", &ns, &sa).unwrap();
        let leaf = generate::leaf(
            &LeafSpec { key_type: leaf_type, ttl: Duration::seconds(ttl_secs), ..LeafSpec::istio(id.clone()) },
            &ca.issuer().unwrap(),
            now,
        ).unwrap();
        let l = &leaf.certificate;
        let requested = whole + Duration::seconds(ttl_secs);
        prop_assert_eq!(l.not_before(), whole - Duration::minutes(2));
        prop_assert_eq!(l.not_after(), requested.min(c.not_after()));
        prop_assert_eq!(leaf.clamped.is_some(), requested > c.not_after());
        prop_assert_eq!(l.issuer_der(), c.subject_der());
        prop_assert_eq!(l.spiffe_ids(), vec![id.clone()]);
        l.verify_signed_by(c).unwrap();
        prop_assert!(leaf.key.matches(l) && ca.key.matches(c) && root.key.matches(r));

        let serials = [positive_128(r), positive_128(c), positive_128(l)];
        prop_assert!(serials[0] != serials[1] && serials[1] != serials[2] && serials[0] != serials[2]);

        // meshtrust's verification engine, at the generation instant.
        let roots = CertPool::from_certificates([r]);
        let inter = CertPool::from_certificates([c]);
        let path = verify::verify(c, &CertPool::new(), &roots, &VerifyOptions::at(whole)).unwrap();
        prop_assert_eq!(path.certificates().len(), 2);
        for eku in [RequiredEku::ClientAuth, RequiredEku::ServerAuth] {
            let opts = VerifyOptions::at(whole).with_eku(eku).with_spiffe_id(id.clone());
            let path = verify::verify(l, &inter, &roots, &opts)
                .unwrap_or_else(|e| panic!("{}", e.report()));
            prop_assert_eq!(path.anchor(), r);
            prop_assert_eq!(path.certificates().len(), 3);
        }
        // ztunnel's verifier.
        webpki_verify(r, &[c], l, whole, false);
        webpki_verify(r, &[c], l, whole, true);

        // istiod's load checks on the intermediate's cacerts directory as written.
        let files = istio::intermediate_files(d, &cluster, &ca).unwrap();
        meshtrust::fsio::write_all(&files, false).unwrap();
        let secret = istio::read_path(&d.join(&cluster)).unwrap();
        let findings = istio::check(&secret, &IstioProfile::default(), whole);
        for f in &findings {
            let expected = match f.code.as_str() {
                // Istio's recipe puts the root in cert-chain.pem.
                "cert-chain-root-repeated" => f.severity == Severity::Info,
                // Short random lifetimes.
                "ca-expiring" | "ca-shorter-than-leaf-ttl" => f.severity == Severity::Warning,
                _ => false,
            };
            prop_assert!(expected, "unexpected finding {f}");
        }
        prop_assert!(findings.iter().any(|f| f.code.as_str() == "cert-chain-root-repeated"));

        // The independent oracle, at the generation instant.
        std::fs::write(d.join("root.pem"), &root.cert_pem).unwrap();
        std::fs::write(d.join("chain.pem"), ca.cert_chain_pem()).unwrap();
        std::fs::write(d.join("ca.pem"), &ca.cert_pem).unwrap();
        std::fs::write(d.join("leaf.pem"), &leaf.cert_pem).unwrap();
        openssl_verify(d, whole, "root.pem", "chain.pem", "ca.pem");
        openssl_verify(d, whole, "root.pem", "chain.pem", "leaf.pem");
    }
}
