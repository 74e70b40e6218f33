//! The Istio rules the observation needs, each in ONE private function marked `// MODEL:` so
//! that they move to the one Istio model (`istio::behaviour`) when it lands: which roots of a
//! root file each data plane holds, which verifier each uses, and when a leaf renews.

use time::OffsetDateTime;

use crate::cert::Certificate;
use crate::istio::{IstioProfile, ZtunnelRoots};
use crate::verify::{Policy, VerifyOptions};

use super::ProxyKind;

// MODEL: roots each data plane holds from a root file. Sidecars (with the agent's merge,
// security/pkg/nodeagent/cache/secretcache.go `mergeConfigTrustBundle`) hold every root,
// deduplicated and sorted by PEM text; ztunnel holds the first, the last or every root by
// release (ztunnel src/tls/certificate.rs, `parse_cert_multi` from 1.24.6/1.25.3/1.26.0;
// istio security/pkg/server/ca/server.go `CreateCertificate` for 1.24.4/1.25.1), as
// `IstioVersion::ztunnel_multi_root` says.
pub(super) fn roots_held(
    profile: &IstioProfile,
    kind: ProxyKind,
    root_file: &[Certificate],
) -> Vec<Certificate> {
    let mut roots: Vec<Certificate> = if kind == ProxyKind::Ztunnel {
        match profile.ztunnel().ztunnel_multi_root() {
            ZtunnelRoots::All => root_file.to_vec(),
            ZtunnelRoots::FirstOnly => root_file.iter().take(1).cloned().collect(),
            ZtunnelRoots::LastOnly => root_file.iter().last().cloned().into_iter().collect(),
        }
    } else {
        let mut r = root_file.to_vec();
        r.sort_by_cached_key(Certificate::to_pem);
        r
    };
    let mut seen = std::collections::HashSet::new();
    roots.retain(|c| seen.insert(c.fingerprint()));
    roots
}

// MODEL: the verifier each data plane uses: Envoy/BoringSSL for sidecars, gateways and
// waypoints, rustls-webpki for ztunnel (ISTIO.md "How each data plane verifies a peer's
// chain"). webpki refuses a CA as end entity, so whether a signing CA (not a leaf) chains
// to a ztunnel's roots is asked with the strict verifier (the union of both rule sets).
pub(super) fn verify_options(
    kind: ProxyKind,
    at: OffsetDateTime,
    ca_target: bool,
) -> VerifyOptions {
    let policy = match kind {
        ProxyKind::Ztunnel if ca_target => Policy::Strict,
        ProxyKind::Ztunnel => Policy::Ztunnel,
        _ => Policy::Envoy,
    };
    VerifyOptions::at(at).with_policy(policy)
}

// MODEL: when a proxy renews its leaf. Sidecar agents at SECRET_GRACE_PERIOD_RATIO of the
// lifetime before expiry (security/pkg/nodeagent/cache/secretcache.go `rotateTime`); ztunnel
// at NotBefore + lifetime/2 (ztunnel src/tls/certificate.rs `refresh_at`).
pub(super) fn renewal_at(
    profile: &IstioProfile,
    kind: ProxyKind,
    leaf: &Certificate,
) -> OffsetDateTime {
    let nb = leaf.not_before();
    let life = leaf.not_after() - nb;
    let ratio = if kind == ProxyKind::Ztunnel {
        0.5
    } else {
        1.0 - profile.grace_ratio.clamp(0.0, 1.0)
    };
    nb.checked_add(life * ratio).unwrap_or(leaf.not_after())
}
