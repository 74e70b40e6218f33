//! Whose chain-building semantics a verification follows: meshtrust's strict union, Envoy's
//! (BoringSSL) or ztunnel's (rustls-webpki). See the module docs of [`crate::verify`],
//! "Policies", for the rules of each.

use std::fmt;

use crate::cert::Certificate;

use super::build::{self, Mode};
use super::error::PathError;
use super::{CertPool, VerifiedPath, VerifyError, VerifyOptions, envoy, ztunnel};

/// Which verifier's semantics [`verify`](super::verify) follows. The mesh runs two chain
/// builders that disagree on real rotation material (same-named roots, cross-signed roots,
/// expired anchors): a chain is safe only if the receiving proxy's own verifier accepts it.
///
/// ```
/// use meshtrust::{Bundle, verify::{self, CertPool, Policy, VerifyOptions}};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
/// let read = |f: &str| Bundle::parse(&std::fs::read(format!("{dir}{f}")).unwrap()).unwrap();
/// let at = time::macros::datetime!(2025-06-01 0:00 UTC);
/// let ca = read("ca-cert-alt.pem").certificates().next().unwrap().clone();
/// let ab = CertPool::from(&read("root-cert-combined-2.pem"));
/// for policy in [Policy::Strict, Policy::Envoy, Policy::Ztunnel] {
///     let opts = VerifyOptions::at(at).with_policy(policy);
///     let ok = verify::verify(&ca, &CertPool::new(), &ab, &opts).is_ok();
///     // ztunnel (webpki) refuses a CA as end entity; the others verify the intermediate.
///     assert_eq!(ok, policy != Policy::Ztunnel, "{policy}");
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Policy {
    /// Today's behaviour (default): backtracking over every candidate AND every certificate's
    /// validity checked, the anchor's included (the strictest union; existing tests keep it).
    #[default]
    Strict,
    /// Envoy / BoringSSL X509_verify_cert as Envoy configures it (sidecars, gateways,
    /// waypoints): trust store first, first matching issuer, no backtracking,
    /// X509_V_FLAG_PARTIAL_CHAIN. The ORDER of the roots pool (the trust store) and of the
    /// intermediates pool (the presented chain) matters.
    Envoy,
    /// ztunnel / rustls-webpki 0.103: backtracking over same-named anchors and
    /// intermediates; trust anchors carry only a name and a key.
    Ztunnel,
}

impl Policy {
    /// Every policy, in declaration order.
    pub const ALL: [Policy; 3] = [Policy::Strict, Policy::Envoy, Policy::Ztunnel];

    /// A short stable name: `strict`, `envoy`, `ztunnel`.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Strict => "strict",
            Policy::Envoy => "envoy",
            Policy::Ztunnel => "ztunnel",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one policy's search found: the valid paths (at most one unless `all`), the failed
/// candidates and the work spent.
pub(crate) struct Found {
    pub paths: Vec<VerifiedPath>,
    pub failures: Vec<super::PathFailure>,
    pub omitted: usize,
    pub signature_checks: usize,
    /// False when a budget ran out (the answer may be incomplete).
    pub complete: bool,
}

impl Found {
    /// The first path, or the failures as a [`VerifyError`].
    pub(super) fn into_result(mut self, target: &Certificate) -> Result<VerifiedPath, VerifyError> {
        if self.paths.is_empty() {
            return Err(VerifyError {
                target: target.clone(),
                failures: self.failures,
                omitted: self.omitted,
                signature_checks: self.signature_checks,
            });
        }
        Ok(self.paths.swap_remove(0))
    }
}

/// Runs `options.policy`'s search. `all`: every valid path the policy can find (only the
/// backtracking policies can find more than one).
pub(crate) fn run(
    target: &Certificate,
    intermediates: &CertPool,
    roots: &CertPool,
    options: &VerifyOptions,
    all: bool,
) -> Found {
    match options.policy {
        Policy::Strict => {
            let mode = if all { Mode::All } else { Mode::First };
            let out = build::search(target, intermediates, roots, options, mode);
            Found {
                paths: out.paths,
                failures: out.failures,
                omitted: out.omitted,
                signature_checks: out.signature_checks,
                complete: !out.exhausted,
            }
        }
        Policy::Envoy => envoy::search(target, intermediates, roots, options),
        Policy::Ztunnel => ztunnel::search(target, intermediates, roots, options, all),
    }
}

/// Extended key usage as `policy` reads it, for `c` and the purpose `required`.
/// Strict and Envoy: no extension means no restriction; the purpose or anyExtendedKeyUsage
/// allows. Ztunnel (rustls-webpki `KeyUsage::validate`): anyExtendedKeyUsage does not allow,
/// an empty extension never allows.
pub(crate) fn eku_error(
    policy: Policy,
    c: &Certificate,
    required: super::RequiredEku,
) -> Option<PathError> {
    let allows = match (policy, c.extended_key_usage()) {
        (_, None) => true,
        (Policy::Ztunnel, Some(list)) => list.iter().any(|e| {
            use super::RequiredEku as R;
            use crate::cert::ExtendedKeyUsage as E;
            matches!(
                (e, required),
                (E::ServerAuth, R::ServerAuth) | (E::ClientAuth, R::ClientAuth)
            )
        }),
        _ => build::eku_allows(c, required),
    };
    (!allows).then(|| PathError::EkuNotAllowed {
        cert: c.clone(),
        required,
    })
}
