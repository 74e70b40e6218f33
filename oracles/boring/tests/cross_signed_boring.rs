//! The cross-signed rotation checked by BoringSSL itself (Envoy's chain builder): every
//! phase's leaf chain, as a sidecar presents it, for peers trusting A only, A and B, and B only.

#[path = "../../../tests/support/cross_signed_cas.rs"]
mod cas;
use cas::*;

use meshtrust::generate::{self, KeyType};
use meshtrust::istio::DataPlane;

#[path = "common/boring.rs"]
mod boring_oracle;

/// BoringSSL itself, for peers trusting A only, A and B, and B only: a leaf of every phase,
/// presented as a sidecar presents it (cert-chain.pem, then root-cert.pem), gets the verdict
/// meshtrust's Envoy policy gives (what `plan check` and the Envoy-policy simulator use),
/// and every peer of the same or a neighbouring phase accepts it. With B before B' in the
/// chain, BoringSSL refuses it for a peer that trusts only A, as the Envoy policy does.
#[test]
fn boringssl_verifies_every_phase_as_the_envoy_policy_says() {
    use meshtrust::verify::{CertPool, Policy, VerifyOptions};
    let c = cas();
    let plan = plan_for(&c, &profile(DataPlane::Sidecar));
    let (a, b) = (&c.a.certificate, &c.b.certificate);
    let stores: [(&str, Vec<&meshtrust::Certificate>); 3] =
        [("A", vec![a]), ("A and B", vec![a, b]), ("B", vec![b])];
    let at = now().unix_timestamp();
    let envoy = |leaf: &meshtrust::Certificate,
                 presented: &[&meshtrust::Certificate],
                 store: &[&meshtrust::Certificate]| {
        meshtrust::verify::verify(
            leaf,
            &CertPool::from_certificates(presented.iter().copied()),
            &CertPool::from_certificates(store.iter().copied()),
            &VerifyOptions::at(now()).with_policy(Policy::Envoy),
        )
        .is_ok()
    };
    for (k, ph) in plan.phases.iter().enumerate() {
        let s = &ph.clusters[0].secret;
        let leaf = generate::leaf(
            &generate::LeafSpec {
                key_type: KeyType::EcP256,
                ..generate::LeafSpec::istio(
                    meshtrust::SpiffeId::istio("cluster.local", "a", "b").unwrap(),
                )
            },
            &generate::Issuer::new(s.ca_cert().unwrap(), s.ca_key().unwrap()).unwrap(),
            now(),
        )
        .unwrap()
        .certificate;
        let chain = s.cert_chain().unwrap();
        let roots = s.root_bundle().unwrap();
        let presented: Vec<&meshtrust::Certificate> =
            chain.certificates().chain(roots.certificates()).collect();
        for (name, store) in &stores {
            let boring = boring_oracle::envoy_boring_verify(&leaf, &presented, store, at);
            assert_eq!(
                boring.is_ok(),
                envoy(&leaf, &presented, store),
                "{} leaf, peer trusting {name}: {boring:?}",
                ph.name
            );
        }
        // Every peer of the same or a neighbouring phase (each trusts one root) accepts it.
        for j in k.saturating_sub(1)..=(k + 1).min(plan.phases.len() - 1) {
            let peer = plan.phases[j].clusters[0].roots().unwrap();
            let store: Vec<_> = peer.certificates().collect();
            let boring = boring_oracle::envoy_boring_verify(&leaf, &presented, &store, at);
            assert!(
                boring.is_ok(),
                "{} leaf, peer of {}: {boring:?}",
                ph.name,
                plan.phases[j].name
            );
        }
        if ph.name == "02-trust-new-root" {
            // Swapped: IB, B, B', then the root file B.
            let swapped = [&c.ib.certificate, b, &c.b_prime.certificate, b];
            let boring = boring_oracle::envoy_boring_verify(&leaf, &swapped, &[a], at);
            assert!(
                boring.is_err(),
                "BoringSSL must refuse B before B' for an A-only peer"
            );
            assert!(!envoy(&leaf, &swapped, &[a]));
            let good = [&c.ib.certificate, &c.b_prime.certificate, b];
            assert!(boring_oracle::envoy_boring_verify(&leaf, &good, &[a], at).is_ok());
        }
    }
}
