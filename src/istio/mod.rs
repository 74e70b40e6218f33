//! Istio's CA secrets: read them in every form operators have them, check them the way istiod
//! of a given version loads them, and write them back byte for byte.
//!
//! Facts modelled here are in `../shared/ISTIO.md` (read from istio/istio: keycertbundle.go,
//! istio_ca.go, secretcache.go) and summarised in the docs of each item.
//!
//! ```
//! use meshtrust::istio::{self, IstioProfile};
//! let s = istio::read_path(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples")))?;
//! assert_eq!(s.name, "cacerts");
//! let profile = IstioProfile { multiroot: true, ..IstioProfile::default() };
//! for f in istio::check(&s, &profile, time::OffsetDateTime::now_utc()) {
//!     println!("{f}");
//! }
//! # Ok::<(), istio::ReadError>(())
//! ```

mod assemble;
pub mod behaviour;
mod check;
mod layout;
mod manifest;
mod profile;
mod secret;
mod signer;
mod write;

pub use crate::finding::{Code, Finding, Severity, has_errors};
pub use assemble::{AssembleError, Assembled, Part, PkiMaterial, Unreadable, assemble};
pub use check::check;
pub(crate) use check::describe;
pub use layout::{
    CROSS_SIGNED_CERT, WORKLOAD_CERT, WORKLOAD_KEY, cross_signed_files, cross_signed_path,
    intermediate_files, intermediate_paths, leaf_files, leaf_paths, root_files, root_paths,
};
pub use manifest::{
    DataKeyError, MAX_DATA_KEY_LEN, MAX_MANIFEST_BYTES, check_data_key, parse_manifest,
};
pub use profile::{
    DataPlane, DurationError, IstioProfile, IstioVersion, ProfileError, VersionParseError,
    format_duration, parse_duration,
};
pub use secret::{
    CA_CERT, CA_CRL, CA_CRT, CA_KEY, CACERTS_FILES, CERT_CHAIN, CaSecret, FileError,
    ISTIO_CA_ROOT_TYPE, ISTIO_GENERATED, KEY, KNOWN_KEYS, Layout, ROOT_CERT, ReadError, SecretForm,
    SecretKind, TLS_CRT, TLS_KEY, from_dir_files, read_dir, read_path,
};
pub(crate) use signer::issuer_from;
pub use signer::{
    CaDirError, ChainUse, ROOT_KEY, SignerError, SigningDir, read_ca_dir, read_root_dir,
};
pub(crate) use write::shell_word;
pub use write::{write_dir, write_manifest};
