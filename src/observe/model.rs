//! The Istio rules the observation needs, each taken from the one Istio model
//! ([`crate::istio::behaviour`]): which roots of a root file each data plane holds, which
//! verifier each uses, and when a leaf renews. Nothing here restates a rule.

use time::OffsetDateTime;

use crate::cert::Certificate;
use crate::istio::IstioProfile;
use crate::istio::behaviour::{self, Proxy};
use crate::verify::{Policy, VerifyOptions};

use super::ProxyKind;

/// The model's name for an observed proxy kind.
fn proxy(kind: ProxyKind) -> Proxy {
    match kind {
        ProxyKind::Sidecar => Proxy::Sidecar,
        ProxyKind::Gateway => Proxy::Gateway,
        ProxyKind::Waypoint => Proxy::Waypoint,
        ProxyKind::Ztunnel => Proxy::Ztunnel,
    }
}

/// The roots a proxy of `kind` holds from `root_file` on this profile
/// ([`behaviour::trusted_roots`], with the push as [`behaviour::push_reaches_agent`] says),
/// each once.
pub(super) fn roots_held(
    profile: &IstioProfile,
    kind: ProxyKind,
    root_file: &[Certificate],
) -> Vec<Certificate> {
    let pushed = behaviour::push_reaches_agent(profile.multiroot, profile.xds_agent);
    let mut roots = behaviour::trusted_roots(
        profile.istio_version,
        profile.ztunnel(),
        proxy(kind),
        pushed,
        root_file,
    );
    let mut seen = std::collections::HashSet::new();
    roots.retain(|c| seen.insert(c.fingerprint()));
    roots
}

/// The verifier a proxy of `kind` uses ([`behaviour::verifier_policy`]). webpki refuses a CA
/// as end entity, so whether a signing CA (not a leaf) chains to a ztunnel's roots is asked
/// with the strict verifier (the union of both rule sets).
pub(super) fn verify_options(
    kind: ProxyKind,
    at: OffsetDateTime,
    ca_target: bool,
) -> VerifyOptions {
    let policy = match behaviour::verifier_policy(proxy(kind)) {
        Policy::Ztunnel if ca_target => Policy::Strict,
        p => p,
    };
    VerifyOptions::at(at).with_policy(policy)
}

/// When a proxy of `kind` renews `leaf` ([`behaviour::renewal_after`], without the jitter a
/// single observation cannot know).
pub(super) fn renewal_at(
    profile: &IstioProfile,
    kind: ProxyKind,
    leaf: &Certificate,
) -> OffsetDateTime {
    let nb = leaf.not_before();
    let life = leaf.not_after() - nb;
    let Ok(ttl) = std::time::Duration::try_from(life) else {
        return leaf.not_after();
    };
    let after = behaviour::renewal_after(proxy(kind), ttl, profile.grace_ratio);
    nb.checked_add(time::Duration::try_from(after).unwrap_or(life))
        .unwrap_or(leaf.not_after())
}
