//! Istio as it really is: ONE model of what istiod, istio-agent, Envoy and ztunnel do with CA
//! material, as a function of the versions and flags each rule depends on.
//!
//! Every other part of meshtrust (`istio::check`, the planner, the plan checks, the simulator,
//! the testkit and the CLI) asks this module; none re-implements a rule. Each function's doc
//! comment cites the Istio source it models (repository, path, function, tags), as
//! `../shared/ISTIO.md` gives it (read from istio/istio and istio/ztunnel 1.22.0 to
//! 1.31.0-rc.0).
//!
//! | rule | function | from |
//! |---|---|---|
//! | which files istiod needs | [`completeness`] | 1.26.1: "incomplete signing CA bundle detected" |
//! | the self-signed CA's root and root file | [`self_signed_root_spec`], [`self_signed_root_file`] | all |
//! | istiod's load check | [`load`] (with [`go_server_auth_ok`], [`crl_required`]) | `ca-crl.pem` from 1.27.0 |
//! | a changed root-cert.pem | [`root_change`] | sets over CERTIFICATE blocks from 1.30.0 |
//! | leaf notAfter | [`leaf_validity`] | clamped to the signer from 1.28.7, 1.29.3, 1.30.0 |
//! | CSR response layout | [`csr_response`] | roots split in 1.24.4 and 1.25.1 only |
//! | the trust-bundle push | [`push_reaches_agent`], [`agent_takes_push`], [`agent_rootca`] | needs both flags |
//! | roots each data plane trusts | [`trusted_roots`] | istiod x ztunnel table |
//! | renewal instants | [`renewal_at`] | jitter sign ±1 from 1.24 |
//! | ztunnel's CA channel | [`ztunnel_watches_ca_root`] | 1.28.6, 1.29.2, 1.30.0 |
//! | what a proxy presents | [`presented_chain`] | deep chains by version |
//! | how a proxy verifies | [`verifier_policy`] | Envoy / ztunnel |
//!
//! ```
//! use meshtrust::istio::{IstioVersion, behaviour::{self, RootChange}};
//! let v = |s: &str| s.parse::<IstioVersion>().unwrap();
//! // A+B -> B+A: refused by bytes up to 1.29, accepted by certificate sets from 1.30.
//! let (a, b) = (pem("A"), pem("B"));
//! let ab = [a.as_slice(), b.as_slice()].concat();
//! let ba = [b.as_slice(), a.as_slice()].concat();
//! assert!(matches!(behaviour::root_change(v("1.29.6"), true, &ab, &ba), RootChange::Refused { .. }));
//! assert_eq!(behaviour::root_change(v("1.30.0"), true, &ab, &ba), RootChange::Accepted);
//! assert_eq!(behaviour::root_change(v("1.30.0"), false, &ab, &ba), RootChange::IgnoredMultirootOff);
//! # fn pem(body: &str) -> Vec<u8> {
//! #     let der = [0x30, 0x03, 0x02, 0x01, body.as_bytes()[0]];
//! #     meshtrust::pem::encode(&meshtrust::pem::Label::Certificate, &der).into_bytes()
//! # }
//! ```

mod dataplane;
mod istiod;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

use super::IstioVersion;

pub use dataplane::{
    DEFAULT_RATIO_JITTER, Jitter, RootsTaken, agent_rootca, agent_takes_push, presented_chain,
    push_reaches_agent, renewal_after, renewal_at, roots_taken, trusted_roots,
    ztunnel_ca_client_roots, ztunnel_multi_root_fixed_in, ztunnel_presents_whole_chain,
    ztunnel_watch_fixed_in, ztunnel_watches_ca_root, ztunnel_whole_chain_fixed_in,
};
pub use istiod::{
    BACKDATE_SECS, Completeness, CrlProblem, CsrResponse, LoadedCa, RootChange, RootRule,
    chain_split_fixed_in, clamp_fixed_in, clamps_leaf_to_signer, completeness,
    completeness_checked_from, crl_problem, crl_required, csr_response, go_server_auth_ok,
    leaf_validity, load, root_change, root_rule, self_signed_root_file, self_signed_root_spec,
};

/// Which proxy a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Proxy {
    /// An Envoy sidecar with istio-agent.
    Sidecar,
    /// A waypoint (Envoy with istio-agent, ambient mode).
    Waypoint,
    /// An ingress, egress or east-west gateway (Envoy with istio-agent).
    Gateway,
    /// ztunnel, holding the certificates of its node's ambient workloads.
    Ztunnel,
}

impl Proxy {
    /// True for the Envoy-based proxies (sidecars, waypoints, gateways), which run istio-agent.
    pub fn is_envoy(self) -> bool {
        !matches!(self, Proxy::Ztunnel)
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proxy::Sidecar => "sidecar",
            Proxy::Waypoint => "waypoint",
            Proxy::Gateway => "gateway",
            Proxy::Ztunnel => "ztunnel",
        })
    }
}

/// True when `v` is at or after the first fixed patch of its minor line in `fixed` (sorted, one
/// per minor line), or at or after the last entry: how a fix backported to several patch lines
/// reads ("1.28.7, 1.29.3, 1.30.0").
pub(crate) fn fixed_in(v: IstioVersion, fixed: &[IstioVersion]) -> bool {
    if let Some(last) = fixed.last() {
        if v >= *last {
            return true;
        }
    }
    fixed
        .iter()
        .any(|f| f.major == v.major && f.minor == v.minor && v.patch >= f.patch)
}

/// Formats a list of fixed patches for messages: `1.28.7, 1.29.3 or 1.30.0+`.
pub(crate) fn fixed_list(fixed: &[IstioVersion]) -> String {
    let all: Vec<String> = fixed.iter().map(|v| format!("{v}+")).collect();
    match all.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// How each data plane verifies a peer's chain ([`crate::verify::Policy`]): Envoy's policy for
/// sidecars, waypoints and gateways, ztunnel's for ztunnel.
///
/// Models Envoy's BoringSSL `X509_verify_cert` as Envoy configures it (envoyproxy/envoy
/// source/common/tls/cert_validator/default_validator.cc, `X509_V_FLAG_PARTIAL_CHAIN`) and
/// ztunnel's rustls-webpki 0.103 (istio/ztunnel src/tls, webpki `build_chain_inner`),
/// ISTIO.md "How each data plane verifies a peer's chain". The ORDER of Envoy's trust store is
/// the agent's ROOTCA order ([`agent_rootca`], sorted by PEM text, built by
/// [`trusted_roots`]), not the root file's.
///
/// ```
/// use meshtrust::istio::behaviour::{Proxy, verifier_policy};
/// use meshtrust::verify::Policy;
/// assert_eq!(verifier_policy(Proxy::Sidecar), Policy::Envoy);
/// assert_eq!(verifier_policy(Proxy::Ztunnel), Policy::Ztunnel);
/// ```
pub fn verifier_policy(proxy: Proxy) -> crate::verify::Policy {
    if proxy.is_envoy() {
        crate::verify::Policy::Envoy
    } else {
        crate::verify::Policy::Ztunnel
    }
}
