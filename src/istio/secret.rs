//! The CA secrets as Istio reads them: `cacerts` (plugged-in CA) and `istio-ca-secret`
//! (self-signed CA), from a directory, from `kubectl get secret -o yaml|json`, or from a Secret
//! manifest (`data` and `stringData`), in Istio's layout or the kubernetes.io/tls one.
//!
//! A [`CaSecret`] keeps every file's exact bytes. Parsing them into certificates and keys is
//! done on demand and may fail: a broken file is a finding of [`super::check`], not a read error.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::bundle::{Bundle, BundleError};
use crate::cert::Certificate;
use crate::key::{KeyError, PrivateKey};
use crate::pem::{self, Label};

use super::manifest::{DataKeyError, parse_manifest};

/// `ca-cert.pem`: the signing CA certificate (only its first block is used).
pub const CA_CERT: &str = "ca-cert.pem";
/// `ca-key.pem`: the signing CA's private key.
pub const CA_KEY: &str = "ca-key.pem";
/// `cert-chain.pem`: intermediates from ca-cert upward.
pub const CERT_CHAIN: &str = "cert-chain.pem";
/// `root-cert.pem`: the trust bundle.
pub const ROOT_CERT: &str = "root-cert.pem";
/// `ca-crl.pem`: optional CRL.
pub const CA_CRL: &str = "ca-crl.pem";
/// `key.pem`: empty in istio-ca-secret.
pub const KEY: &str = "key.pem";
/// kubernetes.io/tls: signing certificate.
pub const TLS_CRT: &str = "tls.crt";
/// kubernetes.io/tls: key.
pub const TLS_KEY: &str = "tls.key";
/// kubernetes.io/tls: roots.
pub const CA_CRT: &str = "ca.crt";
/// Marks a `cacerts` secret that is the self-signed CA's own storage
/// (USE_CACERTS_FOR_SELF_SIGNED_CA).
pub const ISTIO_GENERATED: &str = "istio-generated";

/// The Secret type istiod gives `istio-ca-secret`.
pub const ISTIO_CA_ROOT_TYPE: &str = "istio.io/ca-root";

/// Every key meshtrust reads from a CA secret.
pub const KNOWN_KEYS: [&str; 10] = [
    CA_CERT,
    CA_KEY,
    CERT_CHAIN,
    ROOT_CERT,
    CA_CRL,
    KEY,
    TLS_CRT,
    TLS_KEY,
    CA_CRT,
    ISTIO_GENERATED,
];

/// The four files of a plugged-in `cacerts`, in the order Istio's docs list them.
pub const CACERTS_FILES: [&str; 4] = [CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT];

fn is_secret_key(name: &str) -> bool {
    matches!(name, CA_KEY | TLS_KEY | KEY)
}

/// Which CA the secret belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    /// `cacerts`: a plugged-in CA (istiod signs with ca-cert/ca-key).
    PluggedIn,
    /// `istio-ca-secret` (or `cacerts` with `istio-generated`): istiod's self-signed CA.
    SelfSigned,
}

/// How the files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem.
    Istio,
    /// tls.crt, tls.key, ca.crt (Istio 1.15+): chain = tls.crt + ca.crt.
    KubernetesTls,
}

/// Where a secret was read from (so it can be written back in the same form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretForm {
    /// A directory of files (e.g. Istio's tools/certs output, or /etc/cacerts).
    Directory,
    /// A Secret as YAML.
    Yaml,
    /// A Secret as JSON.
    Json,
    /// Built in memory.
    Memory,
}

/// A CA secret: its name and namespace, and the exact bytes of every file it holds.
#[derive(Clone, PartialEq, Eq)]
pub struct CaSecret {
    /// Secret name (`cacerts` or `istio-ca-secret`).
    pub name: String,
    /// Namespace (`istio-system`).
    pub namespace: String,
    /// Plugged-in or self-signed.
    pub kind: SecretKind,
    /// File naming.
    pub layout: Layout,
    /// Where it came from.
    pub form: SecretForm,
    /// The Secret's `type` as read (`Opaque`, `istio.io/ca-root`, `kubernetes.io/tls`...), or
    /// None when it was not read from a manifest; [`CaSecret::secret_type`] gives the type to
    /// write.
    pub type_as_read: Option<String>,
    files: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for CaSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // File contents are not shown: ca-key.pem is secret, and the rest is noise.
        let files: BTreeMap<&str, String> = self
            .files
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret_key(k) {
                        format!("<{} bytes, redacted>", v.len())
                    } else {
                        format!("<{} bytes>", v.len())
                    },
                )
            })
            .collect();
        f.debug_struct("CaSecret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("kind", &self.kind)
            .field("layout", &self.layout)
            .field("form", &self.form)
            .field("type_as_read", &self.type_as_read)
            .field("files", &files)
            .finish()
    }
}

/// A file of the secret could not be parsed as what it must hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file is absent.
    #[error("{file} is missing")]
    Missing {
        /// File name.
        file: String,
    },
    /// The file holds no certificate.
    #[error("{file} holds no certificate")]
    NoCertificate {
        /// File name.
        file: String,
    },
    /// PEM or certificate errors, with the line.
    #[error("{file}: {source}")]
    Bundle {
        /// File name.
        file: String,
        /// What is wrong.
        source: BundleError,
    },
    /// The key does not parse.
    #[error("{file}: {source}")]
    Key {
        /// File name.
        file: String,
        /// What is wrong (never key material).
        source: KeyError,
    },
}

impl CaSecret {
    /// A secret from (name, bytes) pairs; kind and layout are inferred: `tls.crt` means the
    /// kubernetes.io/tls layout; the name `istio-ca-secret`, an `istio-generated` key, or an
    /// empty `cert-chain.pem` with a `key.pem` mean the self-signed CA.
    pub fn from_files<N: Into<String>>(
        name: &str,
        namespace: &str,
        form: SecretForm,
        files: impl IntoIterator<Item = (N, Vec<u8>)>,
    ) -> CaSecret {
        let files: BTreeMap<String, Zeroizing<Vec<u8>>> = files
            .into_iter()
            .map(|(k, v)| (k.into(), Zeroizing::new(v)))
            .collect();
        let layout = if files.contains_key(TLS_CRT) {
            Layout::KubernetesTls
        } else {
            Layout::Istio
        };
        let empty = |k: &str| files.get(k).is_some_and(|v| v.is_empty());
        let self_signed = name == "istio-ca-secret"
            || files.contains_key(ISTIO_GENERATED)
            || (files.contains_key(KEY)
                && empty(KEY)
                && (empty(CERT_CHAIN) || !files.contains_key(CERT_CHAIN)));
        CaSecret {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            kind: if self_signed {
                SecretKind::SelfSigned
            } else {
                SecretKind::PluggedIn
            },
            layout,
            form,
            type_as_read: None,
            files,
        }
    }

    /// The Secret `type` to write: the type as read, else `istio.io/ca-root` for
    /// `istio-ca-secret` (the type istiod creates it with, so an update keeps it: Kubernetes
    /// refuses to change a Secret's type), else `Opaque`.
    ///
    /// ```
    /// use meshtrust::istio::CaSecret;
    /// assert_eq!(CaSecret::istio_ca_secret(b"r", b"k").secret_type(), "istio.io/ca-root");
    /// assert_eq!(CaSecret::cacerts(b"c", b"k", b"ch", b"r").secret_type(), "Opaque");
    /// ```
    pub fn secret_type(&self) -> &str {
        match &self.type_as_read {
            Some(t) => t,
            None if self.name == "istio-ca-secret" => ISTIO_CA_ROOT_TYPE,
            None => "Opaque",
        }
    }

    /// A plugged-in `cacerts` in namespace `istio-system` from the four files' bytes.
    pub fn cacerts(ca_cert: &[u8], ca_key: &[u8], cert_chain: &[u8], root_cert: &[u8]) -> CaSecret {
        Self::from_files(
            "cacerts",
            "istio-system",
            SecretForm::Memory,
            [
                (CA_CERT, ca_cert.to_vec()),
                (CA_KEY, ca_key.to_vec()),
                (CERT_CHAIN, cert_chain.to_vec()),
                (ROOT_CERT, root_cert.to_vec()),
            ],
        )
    }

    /// istiod's self-signed `istio-ca-secret` in namespace `istio-system`, as istiod writes
    /// it: ca-cert.pem and root-cert.pem both the root's bytes, its key in ca-key.pem, and
    /// cert-chain.pem and key.pem empty.
    ///
    /// ```
    /// use meshtrust::istio::{CaSecret, SecretKind};
    /// let s = CaSecret::istio_ca_secret(b"ROOT PEM", b"KEY PEM");
    /// assert_eq!((s.name.as_str(), s.kind), ("istio-ca-secret", SecretKind::SelfSigned));
    /// assert_eq!(s.file("root-cert.pem"), Some(&b"ROOT PEM"[..]));
    /// assert_eq!(s.file("cert-chain.pem"), Some(&b""[..]));
    /// ```
    pub fn istio_ca_secret(root_cert: &[u8], root_key: &[u8]) -> CaSecret {
        Self::from_files(
            "istio-ca-secret",
            "istio-system",
            SecretForm::Memory,
            [
                (CA_CERT, root_cert.to_vec()),
                (CA_KEY, root_key.to_vec()),
                (CERT_CHAIN, Vec::new()),
                (KEY, Vec::new()),
                (ROOT_CERT, root_cert.to_vec()),
            ],
        )
    }

    /// The exact bytes of a file, when present.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|v| v.as_slice())
    }

    /// The names of the files present, sorted.
    pub fn file_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.files.keys().map(String::as_str)
    }

    /// Replaces (or adds) one file.
    pub fn set_file(&mut self, name: &str, bytes: Vec<u8>) {
        self.files.insert(name.to_owned(), Zeroizing::new(bytes));
    }

    /// Name of the file holding the signing certificate in this layout.
    pub fn signing_cert_file(&self) -> &'static str {
        match self.layout {
            Layout::Istio => CA_CERT,
            Layout::KubernetesTls => TLS_CRT,
        }
    }

    /// Name of the file holding the key in this layout.
    pub fn key_file(&self) -> &'static str {
        match self.layout {
            Layout::Istio => CA_KEY,
            Layout::KubernetesTls => TLS_KEY,
        }
    }

    /// Name of the file holding the roots in this layout.
    pub fn root_file(&self) -> &'static str {
        match self.layout {
            Layout::Istio => ROOT_CERT,
            Layout::KubernetesTls => CA_CRT,
        }
    }

    /// The bytes istiod uses as the certificate chain: `cert-chain.pem`, or for the
    /// kubernetes.io/tls layout `tls.crt` + `ca.crt`.
    pub fn chain_bytes(&self) -> Option<Vec<u8>> {
        match self.layout {
            Layout::Istio => self.file(CERT_CHAIN).map(<[u8]>::to_vec),
            Layout::KubernetesTls => {
                let mut v = self.file(TLS_CRT)?.to_vec();
                if !v.is_empty() && !v.ends_with(b"\n") {
                    v.push(b'\n');
                }
                v.extend_from_slice(self.file(CA_CRT).unwrap_or_default());
                Some(v)
            }
        }
    }

    fn bundle_of(&self, file: &str, bytes: Option<&[u8]>) -> Result<Bundle, FileError> {
        let bytes = bytes.ok_or_else(|| FileError::Missing {
            file: file.to_owned(),
        })?;
        Bundle::parse_strict(bytes).map_err(|source| FileError::Bundle {
            file: file.to_owned(),
            source,
        })
    }

    /// The signing certificate: the FIRST certificate of ca-cert.pem (istiod ignores the rest).
    pub fn ca_cert(&self) -> Result<Certificate, FileError> {
        let file = self.signing_cert_file();
        let b = self.bundle_of(file, self.file(file))?;
        b.certificates()
            .next()
            .cloned()
            .ok_or(FileError::NoCertificate {
                file: file.to_owned(),
            })
    }

    /// Every certificate block of ca-cert.pem.
    pub fn ca_cert_bundle(&self) -> Result<Bundle, FileError> {
        let file = self.signing_cert_file();
        self.bundle_of(file, self.file(file))
    }

    /// The signing key.
    pub fn ca_key(&self) -> Result<PrivateKey, FileError> {
        let file = self.key_file();
        let bytes = self.file(file).ok_or_else(|| FileError::Missing {
            file: file.to_owned(),
        })?;
        PrivateKey::from_pem(bytes).map_err(|source| FileError::Key {
            file: file.to_owned(),
            source,
        })
    }

    /// cert-chain.pem as a bundle (may be empty).
    pub fn cert_chain(&self) -> Result<Bundle, FileError> {
        let chain = self.chain_bytes();
        self.bundle_of(CERT_CHAIN, chain.as_deref())
    }

    /// root-cert.pem as a bundle.
    pub fn root_bundle(&self) -> Result<Bundle, FileError> {
        let file = self.root_file();
        self.bundle_of(file, self.file(file))
    }
}

/// Why a secret could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// File system error.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// YAML or JSON syntax error.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The document is not a Secret, or holds none of the keys of a CA secret.
    #[error("line {line}: {message}")]
    NotASecret {
        /// 1-based line (1 when the whole document is wrong).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `data` or `stringData` key Kubernetes refuses (see [`check_data_key`](super::check_data_key)).
    #[error("line {line}: {section}.{key} is not a valid Secret key: {reason}")]
    InvalidKey {
        /// 1-based line of the key (of its section when the key's text is not found).
        line: usize,
        /// `data` or `stringData`.
        section: &'static str,
        /// The key, escaped and shortened for display.
        key: String,
        /// What is wrong.
        reason: DataKeyError,
    },
    /// A `data` value is not strict base64.
    #[error("line {line}: data.{key} is not valid base64 ({reason})")]
    Base64 {
        /// 1-based line of the key.
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a directory of CA files (regular files or symlinks to them, as in a mounted
/// secret; dot entries such as `..data` are skipped). Only the keys Istio reads are loaded.
pub fn read_dir(dir: &std::path::Path) -> Result<CaSecret, ReadError> {
    let io = |p: &std::path::Path, e: std::io::Error| ReadError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let mut files = Vec::new();
    for name in KNOWN_KEYS {
        let p = dir.join(name);
        match std::fs::read(&p) {
            Ok(bytes) => files.push((name, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&p, e)),
        }
    }
    if files.is_empty() {
        std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    }
    from_dir_files(files).map_err(|e| match e {
        ReadError::NotASecret { line, message } => ReadError::NotASecret {
            line,
            message: format!("{}: {message}", dir.display()),
        },
        other => other,
    })
}

/// The secret a directory holding these files is ([`read_dir`] without the file system):
/// only the keys Istio reads ([`KNOWN_KEYS`]) count, others are ignored; a `key.pem` makes it
/// the self-signed `istio-ca-secret`, else it is `cacerts`.
///
/// ```
/// use meshtrust::istio::{from_dir_files, SecretKind};
/// let s = from_dir_files([("root-cert.pem", b"...".to_vec()), ("README", b"notes".to_vec())])?;
/// assert_eq!((s.name.as_str(), s.kind), ("cacerts", SecretKind::PluggedIn));
/// assert_eq!(s.file_names().collect::<Vec<_>>(), ["root-cert.pem"]);
/// assert!(from_dir_files([("README", Vec::new())]).is_err());
/// # Ok::<(), meshtrust::istio::ReadError>(())
/// ```
pub fn from_dir_files<N: AsRef<str>>(
    files: impl IntoIterator<Item = (N, Vec<u8>)>,
) -> Result<CaSecret, ReadError> {
    let files: Vec<(&'static str, Vec<u8>)> = files
        .into_iter()
        .filter_map(|(n, bytes)| {
            KNOWN_KEYS
                .iter()
                .find(|k| **k == n.as_ref())
                .map(|k| (*k, bytes))
        })
        .collect();
    if files.is_empty() {
        return Err(ReadError::NotASecret {
            line: 1,
            message:
                "no CA files (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem, tls.crt, ...)"
                    .to_owned(),
        });
    }
    let name = if files.iter().any(|(k, _)| *k == KEY) {
        "istio-ca-secret"
    } else {
        "cacerts"
    };
    let mut s = CaSecret::from_files(name, "istio-system", SecretForm::Directory, files);
    if s.kind == SecretKind::PluggedIn {
        s.name = "cacerts".to_owned();
    }
    Ok(s)
}

/// Reads a CA secret from a directory or a kubectl YAML/JSON file.
pub fn read_path(path: &std::path::Path) -> Result<CaSecret, ReadError> {
    if path.is_dir() {
        return read_dir(path);
    }
    let bytes = std::fs::read(path).map_err(|e| ReadError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_manifest(&bytes)
}

/// True when the bytes hold a PEM private-key block (a key in a trust bundle is a leak).
pub(crate) fn holds_private_key(bytes: &[u8]) -> bool {
    pem::blocks(bytes).any(|b| {
        b.is_ok_and(|b| {
            b.label.is_private_key() || b.label == Label::Other("ENCRYPTED PRIVATE KEY".into())
        })
    })
}

#[cfg(test)]
mod tests;
