//! Strategies for [`crate::generate`]'s inputs: key types and instants.

use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

use crate::generate::KeyType;

/// Every key type [`crate::generate`] can make in this build (RSA only with the
/// `rsa-keygen` feature). Generating is slow for RSA 4096 (up to a second a key): these
/// strategies are for tests of generation itself; other tests use the key pool.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let k = meshtrust::testkit::generation::key_type().new_tree(&mut runner).unwrap().current();
/// assert!(k.available());
/// ```
pub fn key_type() -> impl Strategy<Value = KeyType> {
    let available: Vec<KeyType> = KeyType::ALL.into_iter().filter(|k| k.available()).collect();
    prop::sample::select(available)
}

/// Instants from 2001 to 2090, with sub-second noise (which certificate times truncate).
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let t = meshtrust::testkit::generation::instant().new_tree(&mut runner).unwrap().current();
/// assert!((2001..2091).contains(&t.year()));
/// ```
pub fn instant() -> impl Strategy<Value = OffsetDateTime> {
    (978_307_200i64..3_786_912_000, 0u32..1_000_000_000).prop_map(|(s, n)| {
        OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
            + Duration::nanoseconds(i64::from(n))
    })
}
