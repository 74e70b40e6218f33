//! istiod's reading of a CA secret: its load check (keycertbundle.go `Verify`, completeness by
//! version) and its rule for a changed root-cert.pem (istio_ca.go `handleEvent`).

use time::OffsetDateTime;

use crate::bundle::{self, Bundle};
use crate::cert::Certificate;
use crate::generate::Issuer;
use crate::istio::{self, CaSecret, IstioVersion, Layout, SecretKind};
use crate::verify::{self, CertPool, VerifyOptions};

/// A CA istiod has loaded.
pub(crate) struct LoadedCa {
    /// ca-cert.pem's first certificate.
    pub ca_cert: Certificate,
    /// It, with its key, able to sign.
    pub issuer: Issuer,
    /// cert-chain.pem's certificates, in file order (what a peer receives after the leaf).
    pub chain: Vec<Certificate>,
    /// root-cert.pem's exact bytes.
    pub root_bytes: Vec<u8>,
    /// root-cert.pem's certificates in file order, duplicates included.
    pub roots: Vec<Certificate>,
}

/// istiod's load check of `secret` at `at`: what it would refuse to load, and why.
pub(crate) fn load(
    secret: &CaSecret,
    version: IstioVersion,
    at: OffsetDateTime,
) -> Result<LoadedCa, String> {
    let (cert_f, key_f, root_f) = (
        secret.signing_cert_file(),
        secret.key_file(),
        secret.root_file(),
    );
    let mut required = vec![cert_f, key_f, root_f];
    if secret.layout == Layout::Istio && secret.kind == SecretKind::PluggedIn {
        required.push(istio::CERT_CHAIN);
    }
    let missing: Vec<&str> = required
        .into_iter()
        .filter(|f| secret.file(f).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(if version.rejects_incomplete_cacerts() {
            format!(
                "incomplete signing CA bundle detected (missing {})",
                missing.join(", ")
            )
        } else if missing.contains(&key_f) {
            format!("no {key_f}: istiod {version} falls back to its self-signed CA")
        } else {
            format!("missing {}", missing.join(", "))
        });
    }
    let ca_cert = secret.ca_cert().map_err(|e| e.to_string())?;
    let key = secret.ca_key().map_err(|e| e.to_string())?;
    key.check_matches(&ca_cert)
        .map_err(|e| format!("{key_f} does not match {cert_f}: {e}"))?;
    if !ca_cert.is_ca() {
        return Err(format!(
            "{cert_f}: certificate is not authorized to sign other certificates"
        ));
    }
    let root_bundle = secret.root_bundle().map_err(|e| e.to_string())?;
    if root_bundle.is_empty() {
        return Err(format!("{root_f} holds no certificate"));
    }
    let chain_bundle = match secret.cert_chain() {
        Ok(b) => b,
        // istio-ca-secret's cert-chain.pem is empty or absent: no intermediates.
        Err(_) if secret.kind == SecretKind::SelfSigned => Bundle::empty(),
        Err(e) => return Err(e.to_string()),
    };
    let chain: Vec<Certificate> = chain_bundle.certificates().cloned().collect();
    let roots: Vec<Certificate> = root_bundle.certificates().cloned().collect();
    verify::verify(
        &ca_cert,
        &CertPool::from_certificates(chain.iter()),
        &CertPool::from_certificates(roots.iter()),
        &VerifyOptions::at(at),
    )
    .map_err(|e| format!("{cert_f} does not verify against {root_f}: {e}"))?;
    let above: Vec<Certificate> = chain
        .iter()
        .skip_while(|c| **c == ca_cert)
        .cloned()
        .collect();
    let plain = || {
        Issuer::new(ca_cert.clone(), key.clone()).map_err(|e| format!("{cert_f} cannot sign: {e}"))
    };
    // The chain above the signer caps leaf lifetimes; a cert-chain.pem that is not a clean
    // chain (hand-edited) still loads, and then only ca-cert caps them.
    let issuer = match plain()?.with_chain(above) {
        Ok(i) => i,
        Err(_) => plain()?,
    };
    Ok(LoadedCa {
        ca_cert: ca_cert.clone(),
        issuer,
        chain,
        root_bytes: secret.file(root_f).unwrap_or_default().to_vec(),
        roots,
    })
}

/// Whether istiod of `version` accepts `new` root-cert.pem bytes replacing `old` (ISTIO_MULTIROOT_MESH
/// on): raw byte containment up to 1.29, certificate-set containment (non-empty) from 1.30.
pub(crate) fn accepts_root_change(version: IstioVersion, old: &[u8], new: &[u8]) -> bool {
    if version.root_change_by_sets() {
        let set = |b: &[u8]| Bundle::parse(b).map(|b| b.trust_set()).ok();
        match (set(old), set(new)) {
            (Some(a), Some(b)) => !b.is_empty() && (a.is_subset(&b) || b.is_subset(&a)),
            _ => false,
        }
    } else {
        bundle::istiod_byte_containment(old, new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/istio-samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-01-01 0:00 UTC)
    }

    #[test]
    fn loads_the_samples_and_refuses_a_foreign_key() {
        let ok = CaSecret::cacerts(
            &fixture("ca-cert.pem"),
            &fixture("ca-key.pem"),
            &fixture("cert-chain.pem"),
            &fixture("root-cert.pem"),
        );
        let l = load(&ok, IstioVersion::NEWEST, at()).unwrap();
        assert_eq!(l.roots.len(), 1);
        assert_eq!(l.chain.len(), 1);
        // Istio's own sample defect: ca-key-alt-2.pem is not ca-cert-alt-2.pem's key.
        let bad = CaSecret::cacerts(
            &fixture("ca-cert-alt-2.pem"),
            &fixture("ca-key-alt-2.pem"),
            &fixture("cert-chain-alt-2.pem"),
            &fixture("root-cert-alt.pem"),
        );
        let e = load(&bad, IstioVersion::NEWEST, at()).err().unwrap();
        assert!(e.contains("does not match"), "{e}");
        // ca-cert under root B does not verify against root A.
        let wrong_root = CaSecret::cacerts(
            &fixture("ca-cert-alt.pem"),
            &fixture("ca-key-alt.pem"),
            &fixture("cert-chain-alt.pem"),
            &fixture("root-cert.pem"),
        );
        let e = load(&wrong_root, IstioVersion::NEWEST, at()).err().unwrap();
        assert!(e.contains("does not verify"), "{e}");
    }

    #[test]
    fn completeness_by_version() {
        let mut s = CaSecret::cacerts(
            &fixture("ca-cert.pem"),
            &fixture("ca-key.pem"),
            &fixture("cert-chain.pem"),
            &fixture("root-cert.pem"),
        );
        s = CaSecret::from_files(
            "cacerts",
            "istio-system",
            s.form,
            s.file_names()
                .filter(|n| *n != istio::CA_KEY)
                .map(|n| (n.to_owned(), s.file(n).unwrap().to_vec()))
                .collect::<Vec<_>>(),
        );
        let e = load(&s, "1.27".parse().unwrap(), at()).err().unwrap();
        assert!(e.contains("incomplete signing CA bundle"), "{e}");
        let e = load(&s, "1.26".parse().unwrap(), at()).err().unwrap();
        assert!(e.contains("falls back"), "{e}");
    }

    #[test]
    fn root_change_rules() {
        let a = fixture("root-cert.pem");
        let ab = fixture("root-cert-combined.pem");
        let abb = fixture("root-cert-combined-2.pem");
        let b = fixture("root-cert-alt.pem");
        let mut ba = b.clone();
        ba.extend_from_slice(&a);
        let v129: IstioVersion = "1.29".parse().unwrap();
        let v130: IstioVersion = "1.30".parse().unwrap();
        for v in [v129, v130] {
            assert!(accepts_root_change(v, &a, &ab));
            assert!(accepts_root_change(v, &ab, &abb));
            assert!(accepts_root_change(v, &abb, &b));
            assert!(!accepts_root_change(v, &a, &b));
        }
        // A+B -> B+A: refused by bytes, accepted by sets.
        assert!(!accepts_root_change(v129, &ab, &ba));
        assert!(accepts_root_change(v130, &ab, &ba));
        assert!(!accepts_root_change(v130, &ab, b"not a bundle"));
    }
}
