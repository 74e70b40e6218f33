//! BoringSSL itself (the `boring` crate), run as Envoy runs it: `X509_verify_cert` with
//! `X509_V_FLAG_PARTIAL_CHAIN`, the time set, the trust store filled in order, and the peer's
//! presented certificates (after the target) as the untrusted stack. A small copy of the
//! oracle of tests/verify_boring.rs for tests that check whole plans.

use boring::stack::Stack;
use boring::x509::store::X509StoreBuilder;
use boring::x509::verify::X509VerifyFlags;
use boring::x509::{X509, X509StoreContext};
use meshtrust::Certificate;

/// BoringSSL's verdict on `target` presented with `presented` to a peer trusting `store`:
/// `Ok(())`, or the error BoringSSL reports.
pub fn envoy_boring_verify(
    target: &Certificate,
    presented: &[&Certificate],
    store: &[&Certificate],
    at: i64,
) -> Result<(), String> {
    let x509 = |c: &Certificate| X509::from_der(c.der()).expect("BoringSSL parses the certificate");
    let mut b = X509StoreBuilder::new().unwrap();
    for c in store {
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
        Ok(match (ok, c.verify_result()) {
            (true, _) => Ok(()),
            (false, Ok(())) => Err("failed without an error code".to_owned()),
            (false, Err(e)) => Err(e.to_string()),
        })
    })
    .unwrap()
}
