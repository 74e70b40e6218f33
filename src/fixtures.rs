//! Istio's sample CA files (`tests/fixtures/istio-samples`) for the unit tests: the one
//! fixture reader of the crate's `#[cfg(test)]` modules.

use crate::bundle::Bundle;
use crate::cert::Certificate;
use crate::key::PrivateKey;

/// The bytes of `tests/fixtures/istio-samples/NAME`.
pub(crate) fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/istio-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every certificate of the sample file, in file order.
pub(crate) fn sample_certs(name: &str) -> Vec<Certificate> {
    Bundle::parse(&sample(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .certificates()
        .cloned()
        .collect()
}

/// The first certificate of the sample file.
pub(crate) fn sample_cert(name: &str) -> Certificate {
    sample_certs(name).remove(0)
}

/// The private key of the sample file.
pub(crate) fn sample_key(name: &str) -> PrivateKey {
    PrivateKey::from_pem(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
