//! Table-driven tests: each rule walked across its version boundaries.

use super::*;
use crate::cert::Certificate;
use crate::istio::{self, CaSecret, IstioVersion};

fn v(s: &str) -> IstioVersion {
    s.parse().unwrap()
}

use crate::fixtures::{sample as fixture, sample_certs as certs};

fn samples() -> CaSecret {
    CaSecret::cacerts(
        &fixture("ca-cert.pem"),
        &fixture("ca-key.pem"),
        &fixture("cert-chain.pem"),
        &fixture("root-cert.pem"),
    )
}

fn without(s: &CaSecret, file: &str) -> CaSecret {
    CaSecret::from_files(
        "cacerts",
        "istio-system",
        s.form,
        s.file_names()
            .filter(|n| *n != file)
            .map(|n| (n.to_owned(), s.file(n).unwrap().to_vec()))
            .collect::<Vec<_>>(),
    )
}

fn at() -> time::OffsetDateTime {
    time::macros::datetime!(2026-01-01 0:00 UTC)
}

#[test]
fn completeness_boundary_is_1_26_1() {
    let no_key = without(&samples(), istio::CA_KEY);
    let no_chain = without(&samples(), istio::CERT_CHAIN);
    for (ver, key_case, chain_case) in [
        ("1.22.0", "fallback", "missing"),
        ("1.26.0", "fallback", "missing"),
        ("1.26.1", "incomplete", "incomplete"),
        ("1.27.0", "incomplete", "incomplete"),
        ("1.31.0", "incomplete", "incomplete"),
    ] {
        let kind = |c: Completeness| match c {
            Completeness::Complete => "complete",
            Completeness::Incomplete { .. } => "incomplete",
            Completeness::SelfSignedFallback { .. } => "fallback",
            Completeness::Missing { .. } => "missing",
        };
        assert_eq!(kind(completeness(&no_key, v(ver))), key_case, "{ver}");
        assert_eq!(kind(completeness(&no_chain, v(ver))), chain_case, "{ver}");
        assert_eq!(kind(completeness(&samples(), v(ver))), "complete", "{ver}");
        let e = load(&no_key, v(ver), at()).err().unwrap();
        let want = if key_case == "fallback" {
            "self-signed CA"
        } else {
            "incomplete signing CA bundle detected"
        };
        assert!(e.contains(want), "{ver}: {e}");
    }
}

#[test]
fn load_accepts_the_samples_and_refuses_a_foreign_key() {
    let l = load(&samples(), IstioVersion::NEWEST, at()).unwrap();
    assert_eq!((l.roots.len(), l.chain.len()), (1, 1));
    // Istio's own sample defect: ca-key-alt-2.pem is not ca-cert-alt-2.pem's key.
    let bad = CaSecret::cacerts(
        &fixture("ca-cert-alt-2.pem"),
        &fixture("ca-key-alt-2.pem"),
        &fixture("cert-chain-alt-2.pem"),
        &fixture("root-cert-alt.pem"),
    );
    assert!(
        load(&bad, IstioVersion::NEWEST, at())
            .err()
            .unwrap()
            .contains("does not match")
    );
}

#[test]
fn crl_rule_from_1_27_0() {
    let mut files: Vec<(String, Vec<u8>)> = samples()
        .file_names()
        .map(|n| (n.to_owned(), samples().file(n).unwrap().to_vec()))
        .collect();
    // A CRL block that no certificate of cert-chain.pem signed.
    files.push((
        istio::CA_CRL.to_owned(),
        b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n".to_vec(),
    ));
    let s = CaSecret::from_files("cacerts", "istio-system", samples().form, files);
    for (ver, ok) in [("1.26.9", true), ("1.27.0", false), ("1.31.0", false)] {
        assert_eq!(crl_required(v(ver)), !ok, "{ver}");
        let r = load(&s, v(ver), at());
        assert_eq!(r.is_ok(), ok, "{ver}: {:?}", r.err());
        if let Err(e) = r {
            assert!(e.contains("missing CRL signed by certificates"), "{e}");
        }
    }
}

/// A CERTIFICATE block whose DER is a SEQUENCE but no X.509 certificate.
fn unparseable_block() -> Vec<u8> {
    crate::pem::encode(
        &crate::pem::Label::Certificate,
        &[0x30, 0x03, 0x02, 0x01, 0x07],
    )
    .into_bytes()
}

#[test]
fn root_change_boundary_is_1_30_0() {
    let (a, b) = (fixture("root-cert.pem"), fixture("root-cert-alt.pem"));
    let ab = fixture("root-cert-combined.pem");
    let abb = fixture("root-cert-combined-2.pem");
    let ba = [b.as_slice(), a.as_slice()].concat();
    let bc = [b.as_slice(), &fixture("leaf-workload-foo-cert.pem")].concat();
    let odd = unparseable_block();
    let a_odd = [a.as_slice(), &odd].concat();
    let a_odd_b = [a.as_slice(), &odd, &b].concat();
    let refused_bytes = RootChange::Refused {
        rule: RootRule::ByteContainment,
    };
    let refused_sets = RootChange::Refused {
        rule: RootRule::CertificateSets,
    };
    for (ver, old, new, want) in [
        ("1.29.6", &a, &ab, RootChange::Accepted),
        ("1.29.6", &ab, &abb, RootChange::Accepted),
        ("1.29.6", &abb, &b, RootChange::Accepted),
        ("1.29.6", &ab, &ba, refused_bytes),
        ("1.29.6", &a, &b, refused_bytes),
        ("1.29.6", &ab, &ab, RootChange::Unchanged),
        ("1.30.0", &ab, &ba, RootChange::Accepted),
        ("1.30.0", &abb, &b, RootChange::Accepted),
        ("1.30.0", &ab, &bc, refused_sets),
        ("1.30.0", &a, &b, refused_sets),
        // A block istiod compares but meshtrust cannot parse does not make the rule fail.
        ("1.30.0", &a_odd, &a_odd_b, RootChange::Accepted),
        ("1.31.0", &ab, &ba, RootChange::Accepted),
    ] {
        assert_eq!(root_change(v(ver), true, old, new), want, "{ver}");
        let off = if old == new {
            RootChange::Unchanged
        } else {
            RootChange::IgnoredMultirootOff
        };
        assert_eq!(root_change(v(ver), false, old, new), off, "{ver}");
    }
    // An empty set is refused by the set rule (and "" is contained in anything, by bytes).
    let text = b"no certificate here\n".to_vec();
    assert_eq!(root_change(v("1.30.0"), true, &a, &text), refused_sets);
    assert_eq!(root_change(v("1.30.0"), true, &a, b""), refused_sets);
    assert_eq!(
        root_change(v("1.29.6"), true, &a, b""),
        RootChange::Accepted
    );
}

#[test]
fn roots_each_data_plane_trusts() {
    use RootsTaken::{All, FirstOnly, LastOnly};
    // (istiod, ztunnel, ztunnel's roots, sidecar without push, sidecar with push)
    for (i, z, zt, sc, scp) in [
        ("1.24.3", "1.24.3", FirstOnly, All, All),
        ("1.24.4", "1.24.4", LastOnly, LastOnly, All),
        ("1.24.4", "1.26.0", LastOnly, LastOnly, All),
        ("1.24.5", "1.24.5", FirstOnly, All, All),
        ("1.24.6", "1.24.6", All, All, All),
        ("1.25.0", "1.25.0", FirstOnly, All, All),
        ("1.25.1", "1.25.1", LastOnly, LastOnly, All),
        ("1.25.1", "1.25.3", LastOnly, LastOnly, All),
        ("1.25.2", "1.25.2", FirstOnly, All, All),
        ("1.25.3", "1.25.3", All, All, All),
        ("1.26.0", "1.25.1", FirstOnly, All, All),
        ("1.26.0", "1.26.0", All, All, All),
        ("1.30.0", "1.24.5", FirstOnly, All, All),
    ] {
        assert_eq!(
            roots_taken(v(i), v(z), Proxy::Ztunnel, false),
            zt,
            "{i}/{z}"
        );
        assert_eq!(
            roots_taken(v(i), v(z), Proxy::Sidecar, false),
            sc,
            "{i}/{z}"
        );
        assert_eq!(
            roots_taken(v(i), v(z), Proxy::Waypoint, true),
            scp,
            "{i}/{z}"
        );
    }
    let ab = certs("root-cert-combined-2.pem"); // A, B, B
    let (a, b) = (ab[0].clone(), ab[1].clone());
    assert_eq!(
        trusted_roots(v("1.25.2"), v("1.25.2"), Proxy::Ztunnel, false, &ab),
        vec![a.clone()]
    );
    assert_eq!(
        trusted_roots(v("1.25.1"), v("1.25.3"), Proxy::Ztunnel, false, &ab),
        vec![b.clone()]
    );
    assert_eq!(
        trusted_roots(v("1.26.0"), v("1.26.0"), Proxy::Ztunnel, false, &ab),
        vec![a.clone(), b.clone()]
    );
    // Envoy with the push: the agent's ROOTCA order, sorted by PEM text.
    let pushed = trusted_roots(v("1.26.0"), v("1.26.0"), Proxy::Sidecar, true, &ab);
    let mut sorted = vec![a, b];
    sorted.sort_by_key(Certificate::to_pem);
    assert_eq!(pushed, sorted);
}

#[test]
fn push_needs_both_flags_and_compares_with_the_previous_push() {
    for (multiroot, xds, want) in [
        (false, false, false),
        (false, true, false),
        (true, false, false),
        (true, true, true),
    ] {
        assert_eq!(push_reaches_agent(multiroot, xds), want);
    }
    assert!(agent_takes_push(None, b"A"));
    assert!(!agent_takes_push(Some(b"AB"), b"AB"));
    assert!(agent_takes_push(Some(b"AB"), b"ABB"));
    let a = certs("root-cert.pem");
    let b = certs("root-cert-alt.pem");
    let u = agent_rootca(&[a[0].clone(), b[0].clone(), b[0].clone()], &a);
    assert_eq!(u.len(), 2);
    assert!(u[0].to_pem() < u[1].to_pem());
}

#[test]
fn clamp_boundaries() {
    for (ver, clamps) in [
        ("1.22.0", false),
        ("1.27.9", false),
        ("1.28.6", false),
        ("1.28.7", true),
        ("1.29.2", false),
        ("1.29.3", true),
        ("1.30.0", true),
        ("1.31.0", true),
    ] {
        assert_eq!(clamps_leaf_to_signer(v(ver)), clamps, "{ver}");
        let (nb, na) = leaf_validity(v(ver), 1_000_000, 86_400, 1_000_100);
        assert_eq!(nb, 1_000_000 - 120);
        assert_eq!(na, if clamps { 1_000_100 } else { 1_086_400 }, "{ver}");
    }
    assert_eq!(clamp_fixed_in(), "1.28.7+, 1.29.3+ or 1.30.0+");
}

#[test]
fn csr_response_layouts() {
    for (ver, chain_split, roots_split) in [
        ("1.24.3", false, false),
        ("1.24.4", true, true),
        ("1.24.5", true, false),
        ("1.25.0", false, false),
        ("1.25.1", true, true),
        ("1.25.2", true, false),
        ("1.26.0", true, false),
    ] {
        assert_eq!(
            csr_response(v(ver)),
            CsrResponse {
                chain_split,
                roots_split
            },
            "{ver}"
        );
    }
}

#[test]
fn ztunnel_ca_channel_boundaries() {
    for (ver, watches) in [
        ("1.27.0", false),
        ("1.28.5", false),
        ("1.28.6", true),
        ("1.29.1", false),
        ("1.29.2", true),
        ("1.30.0", true),
    ] {
        assert_eq!(ztunnel_watches_ca_root(v(ver)), watches, "{ver}");
        let roots = *ztunnel_ca_client_roots(v(ver), &"A", &"A+B");
        assert_eq!(roots, if watches { "A+B" } else { "A" }, "{ver}");
    }
}

#[test]
fn renewal_instants() {
    let ms = 1000;
    let (created, nb, exp) = (0, -120 * ms, 86_400 * ms);
    // ztunnel: notBefore + lifetime / 2, whatever the ratio or the draw.
    let z = renewal_at(
        Proxy::Ztunnel,
        v("1.30.0"),
        created,
        nb,
        exp,
        0.2,
        0.01,
        Jitter {
            fraction: 0.9,
            positive: true,
        },
    );
    assert_eq!(z, nb + (exp - nb) / 2);
    // Sidecars: the sign is always + or -, never 0; no jitter before 1.24.
    let draw = |positive| Jitter {
        fraction: 0.5,
        positive,
    };
    let plus = renewal_at(
        Proxy::Sidecar,
        v("1.24.0"),
        created,
        nb,
        exp,
        0.5,
        0.01,
        draw(true),
    );
    let minus = renewal_at(
        Proxy::Sidecar,
        v("1.24.0"),
        created,
        nb,
        exp,
        0.5,
        0.01,
        draw(false),
    );
    let none = renewal_at(
        Proxy::Sidecar,
        v("1.23.9"),
        created,
        nb,
        exp,
        0.5,
        0.01,
        draw(true),
    );
    assert_eq!(none, exp / 2);
    assert_eq!(plus, exp - (0.505 * exp as f64) as i64);
    assert_eq!(minus, exp - (0.495 * exp as f64) as i64);
}

#[test]
fn presented_deep_chain_by_version() {
    // A deep chain: ca-cert, then two more CA levels (certificates only need to be distinct).
    let chain: Vec<Certificate> = [
        certs("ca-cert.pem"),
        certs("ca-cert-alt.pem"),
        certs("root-cert-alt.pem"),
    ]
    .concat();
    let roots = [certs("root-cert.pem"), certs("root-cert-alt.pem")].concat();
    let leaf = certs("leaf-workload-foo-cert.pem").remove(0);
    let n =
        |p: Proxy, i: &str, z: &str| presented_chain(p, v(i), v(z), &leaf, &chain, &roots).len();
    // Sidecars: leaf + chain + every root.
    assert_eq!(n(Proxy::Sidecar, "1.24.3", "1.24.3"), 1 + 3 + 2);
    for (i, z, want) in [
        ("1.24.3", "1.24.3", 1 + 1), // one chain element, first block only
        ("1.24.3", "1.24.6", 1 + 3),
        ("1.25.0", "1.25.2", 1 + 1),
        ("1.25.0", "1.25.3", 1 + 3),
        ("1.24.4", "1.24.4", 1 + 3 + 1), // roots split: the first root is a middle element
        ("1.24.5", "1.24.5", 1 + 3),
        ("1.26.0", "1.24.3", 1 + 3),
    ] {
        assert_eq!(n(Proxy::Ztunnel, i, z), want, "{i}/{z}");
    }
}

#[test]
fn ztunnel_presents_whole_chain_across_the_boundaries() {
    // (istiod, ztunnel, whole chain): istiod splits the chain from 1.24.4, 1.25.1, 1.26.0;
    // ztunnel parses every block from 1.24.6, 1.25.3, 1.26.0; either suffices.
    for (i, z, whole) in [
        ("1.24.3", "1.24.3", false),
        ("1.24.3", "1.24.5", false),
        ("1.24.3", "1.24.6", true),
        ("1.24.4", "1.24.3", true),
        ("1.25.0", "1.25.2", false),
        ("1.25.0", "1.25.3", true),
        ("1.25.1", "1.25.0", true),
        ("1.23.9", "1.25.2", false),
        ("1.26.0", "1.24.0", true),
        ("1.30.0", "1.30.0", true),
    ] {
        assert_eq!(ztunnel_presents_whole_chain(v(i), v(z)), whole, "{i}/{z}");
    }
    let msg = ztunnel_whole_chain_fixed_in();
    assert!(msg.contains("1.24.4") && msg.contains("1.25.3"), "{msg}");
}
