//! BoringSSL itself (the `boring` crate), run as Envoy runs it: `X509_verify_cert` with
//! `X509_V_FLAG_PARTIAL_CHAIN`, the time set, the trust store filled in order, and the peer's
//! presented certificates (after the target) as the untrusted stack. The one BoringSSL call of
//! the oracle tests.
#![allow(dead_code)]

use boring::stack::Stack;
use boring::x509::store::X509StoreBuilder;
use boring::x509::verify::X509VerifyFlags;
use boring::x509::{X509, X509StoreContext, X509VerifyError};
use meshtrust::Certificate;

/// BoringSSL's verdict: the chain it built, or its error code mapped to a `PathError::kind`
/// (`Err(raw code text)` for a code that maps to none).
pub fn boring_verify(
    target: &Certificate,
    presented: &[&Certificate],
    store: &[&Certificate],
    at: i64,
) -> Result<Vec<Vec<u8>>, String> {
    let x509 = |c: &Certificate| X509::from_der(c.der()).expect("BoringSSL parses the certificate");
    let mut b = X509StoreBuilder::new().unwrap();
    for c in store {
        // A duplicate is not added twice (X509_STORE_add_cert); its status is irrelevant.
        let _ = b.add_cert(x509(c));
    }
    b.set_flags(X509VerifyFlags::PARTIAL_CHAIN);
    b.verify_param_mut().set_time(at as _);
    let store = b.build();
    let mut untrusted = Stack::new().unwrap();
    untrusted.push(x509(target)).unwrap();
    for c in presented {
        untrusted.push(x509(c)).unwrap();
    }
    let mut ctx = X509StoreContext::new().unwrap();
    let leaf = x509(target);
    ctx.init(&store, &leaf, &untrusted, |c| {
        let ok = c.verify_cert()?;
        let chain: Vec<Vec<u8>> = c
            .chain()
            .map(|s| s.iter().map(|x| x.to_der().unwrap()).collect())
            .unwrap_or_default();
        Ok(match (ok, c.verify_result()) {
            (true, _) => Ok(chain),
            (false, Ok(())) => Err("failed without an error code".to_owned()),
            (false, Err(e)) => Err(kind(e)),
        })
    })
    .unwrap()
}

/// The `PathError::kind` a BoringSSL verification error code corresponds to.
fn kind(e: X509VerifyError) -> String {
    let k = match e {
        X509VerifyError::CERT_SIGNATURE_FAILURE => "bad-signature",
        X509VerifyError::CERT_HAS_EXPIRED => "expired",
        X509VerifyError::CERT_NOT_YET_VALID => "not-yet-valid",
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | X509VerifyError::UNABLE_TO_GET_ISSUER_CERT => "unknown-issuer",
        X509VerifyError::SELF_SIGNED_CERT_IN_CHAIN => "self-signed-in-chain",
        X509VerifyError::DEPTH_ZERO_SELF_SIGNED_CERT => "self-signed-not-trusted",
        X509VerifyError::INVALID_CA => "issuer-not-ca",
        X509VerifyError::PATH_LENGTH_EXCEEDED => "path-length-exceeded",
        X509VerifyError::UNHANDLED_CRITICAL_EXTENSION => "unknown-critical-extension",
        other => return format!("unmapped {} ({other})", other.as_raw()),
    };
    k.to_owned()
}

/// BoringSSL's verdict on `target` presented with `presented` to a peer trusting `store`:
/// `Ok(())`, or the error kind.
pub fn envoy_boring_verify(
    target: &Certificate,
    presented: &[&Certificate],
    store: &[&Certificate],
    at: i64,
) -> Result<(), String> {
    boring_verify(target, presented, store, at).map(|_| ())
}
