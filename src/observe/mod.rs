//! What the live mesh reports, and what it means for a rotation.
//!
//! Operators' tools print what every proxy holds: Envoy's secrets config dump (snake_case, as
//! the admin endpoint serves it) and `istioctl proxy-config secret POD -o json` (camelCase),
//! ztunnel's `/config_dump` and `istioctl ztunnel-config certificates -o json` (before and
//! from 1.26), the two istioctl tables (serials only), and `kubectl get secret|configmap`.
//! [`Reader::read`] turns any of them into an [`Observation`] (pure: bytes in, values out;
//! every error names the input and the JSON path or line). [`MeshState::evaluate`] turns the
//! observed proxies into per-proxy state ([`ProxyState`]: kind, identity, trusted roots, leaf,
//! warnings), groups, and, against a rotation [`Plan`](crate::plan::Plan), the phase each
//! proxy and the mesh have reached and whether the next phase is safe ([`Verdict`], with
//! [`Blocker`]s proxy by proxy).
//!
//! ```
//! use meshtrust::observe::{Reader, Observation};
//! let dump = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/tests/fixtures/istioctl/proxy-config-secret/config_dump.json"))?;
//! let mut reader = Reader::new();
//! let Observation::Proxies(proxies) = reader.read("productpage.json", &dump)? else { panic!() };
//! assert_eq!(proxies[0].name, "productpage");
//! assert_eq!(proxies[0].roots.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Scale: one [`Reader`] parses each distinct certificate once (10,000 proxies share a few
//! roots and signers), and the evaluation verifies each leaf's signature once and each
//! (signer, trust set) pair once.

mod envoy;
mod evaluate;
mod json;
mod kube;
mod model;
mod table;
mod verdict;
mod ztunnel;

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::cert::Certificate;
use crate::istio::CaSecret;

pub use evaluate::{Group, LeafState, MeshState, ProxyState, Warning};
pub use kube::ROOT_CONFIGMAP;
pub use verdict::{Blocker, ConfigMapState, Verdict, plan_certificates};

/// What kind of proxy reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// An Envoy sidecar.
    Sidecar,
    /// An Envoy gateway (ingress, egress, east-west).
    Gateway,
    /// An Envoy waypoint (ambient).
    Waypoint,
    /// One identity held by a ztunnel.
    Ztunnel,
}

impl ProxyKind {
    /// True for the Envoy-based proxies.
    pub fn is_envoy(self) -> bool {
        self != ProxyKind::Ztunnel
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyKind::Sidecar => "sidecar",
            ProxyKind::Gateway => "gateway",
            ProxyKind::Waypoint => "waypoint",
            ProxyKind::Ztunnel => "ztunnel",
        })
    }
}

/// Whether a proxy's certificate is in use, as its dump says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "detail")]
pub enum IdentityStatus {
    /// Serving (Envoy's active secret, ztunnel's `Available`).
    Active,
    /// Envoy holds the secret only as warming (not served yet).
    Warming,
    /// ztunnel is fetching this identity's first certificate.
    Initializing,
    /// ztunnel has no certificate for this identity; the detail is ztunnel's reason.
    Unavailable(String),
}

/// A certificate as a report shows it: the certificate itself, or only its serial (the
/// istioctl tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRef {
    /// The certificate.
    Cert(Certificate),
    /// Only the serial number: lowercase hex without leading zeros.
    Serial(String),
}

impl CertRef {
    /// The certificate, when the report carried it.
    pub fn cert(&self) -> Option<&Certificate> {
        match self {
            CertRef::Cert(c) => Some(c),
            CertRef::Serial(_) => None,
        }
    }

    /// The serial as lowercase hex without leading zeros.
    pub fn serial(&self) -> String {
        match self {
            CertRef::Cert(c) => normalize_serial(&c.serial_hex()),
            CertRef::Serial(s) => s.clone(),
        }
    }
}

/// One proxy (or one ztunnel identity) as its tool reported it, before evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyReport {
    /// The pod (file name or the dump's metadata); for ztunnel, `POD/IDENTITY`.
    pub name: String,
    /// What kind of proxy.
    pub kind: ProxyKind,
    /// The SPIFFE ID (ztunnel's identity, or the leaf's URI SAN).
    pub identity: Option<String>,
    /// In use, warming, initializing or unavailable.
    pub status: IdentityStatus,
    /// The workload certificate.
    pub leaf: Option<CertRef>,
    /// What the proxy presents after the leaf (intermediates, and for sidecars the roots
    /// istiod sent), in order.
    pub chain: Vec<CertRef>,
    /// The roots the proxy trusts, in its trust store's order.
    pub roots: Vec<CertRef>,
    /// The cluster its dump's metadata names (Envoy's bootstrap node metadata `CLUSTER_ID`).
    pub cluster_id: Option<String>,
    /// The cluster the caller says it runs in (`status --cluster`, or the context `--collect`
    /// queried): the strongest evidence, see [`Observation::in_cluster`].
    pub cluster: Option<String>,
}

/// One namespace's `istio-ca-root-cert` ConfigMap: the roots istiod publishes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootConfigMap {
    /// Its namespace.
    pub namespace: String,
    /// The exact bytes of its `root-cert.pem` key.
    pub root_cert: Vec<u8>,
}

/// What one input holds.
#[derive(Debug, Clone)]
pub enum Observation {
    /// Proxies (an Envoy dump is one, a ztunnel dump one per identity, a table one).
    Proxies(Vec<ProxyReport>),
    /// `istio-ca-root-cert` ConfigMaps.
    ConfigMaps(Vec<RootConfigMap>),
    /// A CA secret (`cacerts` or `istio-ca-secret`).
    CaSecret(Box<CaSecret>),
}

impl Observation {
    /// Marks every proxy of this input as running in `cluster` (the caller knows: the input
    /// was given for that cluster, or collected from its context). Against a multi-cluster
    /// plan this wins over the dump's metadata and the leaf's signer.
    pub fn in_cluster(&mut self, cluster: &str) {
        if let Observation::Proxies(ps) = self {
            for p in ps {
                p.cluster = Some(cluster.to_owned());
            }
        }
    }
}

/// What a proxy's cluster was taken from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterEvidence {
    /// The caller said so ([`ProxyReport::cluster`]).
    Explicit,
    /// The dump's metadata named it ([`ProxyReport::cluster_id`]).
    Metadata,
    /// Only that cluster's CA (in some phase of the plan) signed the proxy's leaf.
    Signer,
    /// The plan has one cluster.
    OnlyCluster,
}

/// Why an input could not be read: which input, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input}: {location}: {message}")]
pub struct ObserveError {
    /// The input's name (file name, or `-`).
    pub input: String,
    /// Where: a JSON path (`configs[0].dynamic_active_secrets[1].name`), `line N`, or `$`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl ObserveError {
    pub(crate) fn new(
        input: &str,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> ObserveError {
        ObserveError {
            input: input.to_owned(),
            location: location.into(),
            message: message.into(),
        }
    }
}

/// Inputs larger than this are refused.
pub const MAX_INPUT_BYTES: usize = 64 << 20;

/// Reads operators' tool outputs; parses each distinct certificate once across every input it
/// reads.
///
/// 10,000 proxies repeat the same roots and signers: the reader keeps every CA certificate by
/// the exact text of its PEM block, and every text (PEM, or base64 of PEM) that holds only CA
/// certificates, so a repeated root file or chain costs one hash lookup. Only what the full
/// parse accepted is kept, and a text the shortcut does not fully resolve is parsed whole, so
/// results and errors are those of the full parse.
#[derive(Debug, Default)]
pub struct Reader {
    /// Certificates by DER.
    cache: HashMap<Vec<u8>, Certificate>,
    /// CA certificates by the exact text of a PEM block that parsed alone as that one
    /// certificate (its BEGIN line through its END line's newline).
    by_block: TextCache<Certificate>,
    /// PEM texts that hold only CA certificates.
    by_pem: TextCache<Vec<Certificate>>,
    /// Base64 texts (of PEM) that hold only CA certificates.
    by_b64: TextCache<Vec<Certificate>>,
}

/// Values by exact text. The hash samples the text (its length and a few dozen bytes spread
/// over it) instead of reading all of it: certificate texts differ everywhere, and a lookup
/// compares the whole text anyway.
#[derive(Debug)]
struct TextCache<V> {
    map: HashMap<u64, Bucket<V>>,
}

/// The texts (and values) that share one sampled hash.
type Bucket<V> = Vec<(Box<[u8]>, V)>;

impl<V> Default for TextCache<V> {
    fn default() -> Self {
        TextCache {
            map: HashMap::new(),
        }
    }
}

impl<V> TextCache<V> {
    fn key(text: &[u8]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.len().hash(&mut h);
        const WINDOW: usize = 16;
        if text.len() <= 8 * WINDOW {
            text.hash(&mut h);
        } else {
            // Eight windows, the last one ending at the end.
            let step = (text.len() - WINDOW) / 7;
            for i in 0..8 {
                let at = (i * step).min(text.len() - WINDOW);
                h.write(&text[at..at + WINDOW]);
            }
        }
        h.finish()
    }

    fn get(&self, text: &[u8]) -> Option<&V> {
        let bucket = self.map.get(&Self::key(text))?;
        bucket.iter().find(|(t, _)| **t == *text).map(|(_, v)| v)
    }

    /// Keeps `value` for `text`; a full bucket (texts made to share the sampled bytes) keeps
    /// nothing more, so a lookup never compares more than a few texts.
    fn insert(&mut self, text: &[u8], value: V) {
        const BUCKET: usize = 4;
        let bucket = self.map.entry(Self::key(text)).or_default();
        if bucket.len() < BUCKET && !bucket.iter().any(|(t, _)| **t == *text) {
            bucket.push((text.into(), value));
        }
    }
}

impl Reader {
    /// A reader with an empty certificate cache.
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Recognizes and parses one input. `name` is its file name (the proxy's name comes from
    /// it when the dump has no metadata): `productpage-v1-abc.json` names proxy
    /// `productpage-v1-abc`; a name containing `gateway` or `waypoint` marks that kind.
    pub fn read(&mut self, name: &str, bytes: &[u8]) -> Result<Observation, ObserveError> {
        if bytes.len() > MAX_INPUT_BYTES {
            return Err(ObserveError::new(
                name,
                "$",
                format!("larger than {MAX_INPUT_BYTES} bytes"),
            ));
        }
        let not_utf8 = |e: std::str::Utf8Error| {
            ObserveError::new(name, format!("byte {}", e.valid_up_to()), "not UTF-8 text")
        };
        // JSON first: the JSON parser checks UTF-8 itself, so the whole input is checked
        // again only when it does not parse (and is then refused as not UTF-8 first, as
        // before).
        let is_json = match looks_like_json(bytes) {
            Some(j) => j,
            None => {
                let text = std::str::from_utf8(bytes).map_err(not_utf8)?;
                let t = text.trim_start_matches('\u{feff}').trim_start();
                t.starts_with('{') || t.starts_with('[')
            }
        };
        if is_json {
            let value = json::parse(name, bytes).map_err(|e| match std::str::from_utf8(bytes) {
                Err(u) => not_utf8(u),
                Ok(_) => e,
            })?;
            return self.read_json(name, bytes, &value);
        }
        let text = std::str::from_utf8(bytes).map_err(not_utf8)?;
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if trimmed.starts_with("RESOURCE NAME") {
            return table::proxy_secret(name, text).map(|p| Observation::Proxies(vec![p]));
        }
        if trimmed.starts_with("CERTIFICATE NAME") {
            return table::ztunnel_certificates(name, text).map(Observation::Proxies);
        }
        kube::read_yaml(name, text)
    }

    /// Reads parsed JSON: an Envoy or istioctl secrets dump, a ztunnel dump or certificate
    /// array, or a kubectl Secret / ConfigMap / List.
    fn read_json(
        &mut self,
        name: &str,
        bytes: &[u8],
        value: &serde_json::Value,
    ) -> Result<Observation, ObserveError> {
        let at = json::At::root(value, name);
        if value.is_array() {
            return ztunnel::read(self, name, at).map(Observation::Proxies);
        }
        let obj = value
            .as_object()
            .ok_or_else(|| at.error("expected an object or an array"))?;
        if obj.contains_key("kind") && obj.contains_key("apiVersion") {
            return kube::read_json(name, bytes, value);
        }
        if obj.contains_key("certificates") {
            return ztunnel::read(self, name, at).map(Observation::Proxies);
        }
        envoy::read(self, name, at).map(|p| Observation::Proxies(vec![p]))
    }

    /// The certificates of a PEM text, each parsed once per reader.
    fn certs(
        &mut self,
        pem_text: &[u8],
        at: &json::At<'_>,
    ) -> Result<Vec<Certificate>, ObserveError> {
        if let Some(v) = self.by_pem.get(pem_text) {
            return Ok(v.clone());
        }
        let out = match self.certs_by_block(pem_text) {
            Some(out) => out,
            None => self.certs_whole(pem_text, at)?,
        };
        if out.iter().all(Certificate::is_ca) {
            self.by_pem.insert(pem_text, out.clone());
        }
        Ok(out)
    }

    /// The shortcut: the text cut after each END line, each piece a known CA block or parsed
    /// alone. PEM framing is line by line and a piece starts on a line, so the pieces parse as
    /// the whole does; anything unusual (an error, a piece of several blocks, no certificate)
    /// returns `None` and the whole text is parsed instead, for its exact error.
    fn certs_by_block(&mut self, text: &[u8]) -> Option<Vec<Certificate>> {
        static END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"-----END"));
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(end) = END.find(rest) else {
                // Trailing blank lines only.
                if rest.iter().all(u8::is_ascii_whitespace) {
                    break;
                }
                return None;
            };
            let cut = memchr::memchr(b'\n', &rest[end..]).map_or(rest.len(), |i| end + i + 1);
            let piece = &rest[..cut];
            rest = &rest[cut..];
            if let Some(c) = self.by_block.get(piece) {
                out.push(c.clone());
                continue;
            }
            let blocks = crate::pem::parse(piece).ok()?;
            let [b] = blocks.as_slice() else { return None };
            if b.label.as_str() != "CERTIFICATE" {
                return None;
            }
            // Parsed directly: a new piece is mostly a leaf, which no other proxy repeats.
            let cert = Certificate::from_der_vec(b.der.clone()).ok()?;
            if cert.is_ca() && b.text == piece {
                self.by_block.insert(piece, cert.clone());
            }
            out.push(cert);
        }
        (!out.is_empty()).then_some(out)
    }

    /// The full parse of a PEM text, with positioned errors.
    fn certs_whole(
        &mut self,
        pem_text: &[u8],
        at: &json::At<'_>,
    ) -> Result<Vec<Certificate>, ObserveError> {
        let blocks = crate::pem::parse(pem_text).map_err(|e| at.error(format!("PEM: {e}")))?;
        let mut out = Vec::with_capacity(blocks.len());
        for b in blocks {
            if b.label.as_str() != "CERTIFICATE" {
                continue;
            }
            if let Some(c) = self.cache.get(&b.der) {
                out.push(c.clone());
                continue;
            }
            let line = b.begin_line;
            let cert = Certificate::from_der(&b.der).map_err(|e| {
                at.error(format!(
                    "line {line} of the decoded PEM: not a certificate: {e}"
                ))
            })?;
            self.cache.insert(b.der, cert.clone());
            out.push(cert);
        }
        if out.is_empty() {
            return Err(at.error("holds no certificate"));
        }
        Ok(out)
    }

    /// Certificates from base64 of PEM text (Envoy's `inline_bytes`, ztunnel 1.26+ `pem`).
    fn certs_b64(
        &mut self,
        b64_text: &str,
        at: &json::At<'_>,
    ) -> Result<Vec<Certificate>, ObserveError> {
        if let Some(v) = self.by_b64.get(b64_text.as_bytes()) {
            return Ok(v.clone());
        }
        let pem = crate::b64::decode(b64_text.as_bytes())
            .map_err(|e| at.error(format!("not valid base64 ({e:?})")))?;
        let out = self.certs(&pem, at)?;
        if out.iter().all(Certificate::is_ca) {
            self.by_b64.insert(b64_text.as_bytes(), out.clone());
        }
        Ok(out)
    }
}

/// Whether the input's first significant character (after BOMs and whitespace, as the text
/// path trims them) opens a JSON object or array, from a valid UTF-8 prefix; `None` when that
/// prefix holds no significant character (the caller then checks the whole text).
fn looks_like_json(bytes: &[u8]) -> Option<bool> {
    let head = &bytes[..bytes.len().min(4096)];
    let head = match std::str::from_utf8(head) {
        Ok(h) => h,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let trimmed = head.trim_start_matches('\u{feff}').trim_start();
    (!trimmed.is_empty()).then(|| trimmed.starts_with('{') || trimmed.starts_with('['))
}

/// Reads one input with a fresh [`Reader`].
///
/// ```
/// let err = meshtrust::observe::read("pod.json", b"{\"configs\": 3}").unwrap_err();
/// assert_eq!(err.location, "configs");
/// ```
pub fn read(name: &str, bytes: &[u8]) -> Result<Observation, ObserveError> {
    Reader::new().read(name, bytes)
}

/// A serial as lowercase hex without leading zeros (`"0"` for zero).
pub fn normalize_serial(hex: &str) -> String {
    let t = hex.trim().trim_start_matches("0x").to_ascii_lowercase();
    let t = t.trim_start_matches('0');
    if t.is_empty() {
        "0".to_owned()
    } else {
        t.to_owned()
    }
}

/// The proxy name a file name gives: the base name without its extension.
pub fn name_from_file(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => base.to_owned(),
    }
}

/// The kind a pod name suggests (`*gateway*`, `*waypoint*`, `ztunnel*`), else a sidecar.
pub(crate) fn kind_from_name(name: &str) -> ProxyKind {
    let n = name.to_ascii_lowercase();
    if n.contains("waypoint") {
        ProxyKind::Waypoint
    } else if n.contains("gateway") {
        ProxyKind::Gateway
    } else {
        ProxyKind::Sidecar
    }
}

/// An instant as RFC 3339 UTC (`2026-12-02T11:46:55Z`), as the JSON output writes it.
pub fn format_instant(t: time::OffsetDateTime) -> String {
    ser::format(t)
}

/// RFC 3339 serialization of instants (`2026-12-02T11:46:55Z`).
pub(crate) mod ser {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub(crate) use crate::text::rfc3339 as format;

    /// Serializes an instant.
    pub(crate) mod instant {
        use super::*;
        /// Serializes an instant.
        pub(crate) fn serialize<S: Serializer>(
            t: &OffsetDateTime,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_str(&format(*t))
        }
    }

    /// Serializes an optional instant.
    pub(crate) mod opt_instant {
        use super::*;
        /// Serializes an optional instant (null when absent).
        pub(crate) fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format(*t)),
                None => s.serialize_none(),
            }
        }
    }
}
