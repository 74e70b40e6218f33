//! Reading a Secret manifest (`kubectl get secret -o yaml|json` output, hand-written YAML,
//! a List): the document parsed with its nesting bounded, every data key checked as the API
//! server checks it, base64 decoded strictly, every error with its line.

use super::secret::{CaSecret, KNOWN_KEYS, ReadError, SecretForm};

/// Inputs larger than this are refused (a Kubernetes Secret holds at most 1 MiB).
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

const MAX_NESTING: usize = 64;

/// Parses a Secret manifest: `kubectl get secret NAME -o yaml|json` output, a `List` holding
/// CA secrets (the `cacerts` one is taken, else `istio-ca-secret`, else the only item), or a
/// hand-written manifest with `data` (base64) and/or `stringData` (text, which wins on a
/// shared key, as the API server does).
///
/// ```
/// let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cacerts\n  namespace: istio-system\n\
///             data:\n  root-cert.pem: aGVsbG8=\nstringData:\n  ca-cert.pem: |\n    text\n";
/// let s = meshtrust::istio::parse_manifest(yaml.as_bytes())?;
/// assert_eq!(s.file("root-cert.pem"), Some(&b"hello"[..]));
/// assert_eq!(s.file("ca-cert.pem"), Some(&b"text\n"[..]));
/// # Ok::<(), meshtrust::istio::ReadError>(())
/// ```
pub fn parse_manifest(bytes: &[u8]) -> Result<CaSecret, ReadError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ReadError::NotASecret {
            line: 1,
            message: format!("larger than {MAX_MANIFEST_BYTES} bytes"),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        ReadError::Syntax {
            line,
            column: 1,
            message: "not UTF-8 text".to_owned(),
        }
    })?;
    let first = text.trim_start_matches('\u{feff}').trim_start();
    let doc = if first.starts_with('{') || first.starts_with('[') {
        json_to_doc(text)?
    } else {
        yaml_to_doc(text)?
    };
    doc_to_secret(&doc, text, first.starts_with('{') || first.starts_with('['))
}

/// A format-neutral view of the parsed document.
#[derive(Debug, Clone)]
enum Doc {
    Map(Vec<(String, Doc)>),
    List(Vec<Doc>),
    Str(String),
    Other,
}

impl Doc {
    fn get(&self, key: &str) -> Option<&Doc> {
        match self {
            Doc::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Doc::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn json_to_doc(text: &str) -> Result<Doc, ReadError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| ReadError::Syntax {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    fn conv(v: &serde_json::Value) -> Doc {
        match v {
            serde_json::Value::Object(m) => {
                Doc::Map(m.iter().map(|(k, v)| (k.clone(), conv(v))).collect())
            }
            serde_json::Value::Array(a) => Doc::List(a.iter().map(conv).collect()),
            serde_json::Value::String(s) => Doc::Str(s.clone()),
            _ => Doc::Other,
        }
    }
    Ok(conv(&v))
}

fn yaml_to_doc(text: &str) -> Result<Doc, ReadError> {
    check_flow_nesting(text)?;
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| ReadError::Syntax {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    })?;
    let mut docs: Vec<_> = docs
        .into_iter()
        .filter(|d| !matches!(d, yaml_rust2::Yaml::Null))
        .collect();
    match docs.len() {
        0 => Err(ReadError::NotASecret {
            line: 1,
            message: "empty document".to_owned(),
        }),
        1 => Ok(yaml_conv(&docs.remove(0), 0)),
        // Several `---` documents: treat them as a List.
        _ => Ok(Doc::Map(vec![
            ("kind".to_owned(), Doc::Str("List".to_owned())),
            (
                "items".to_owned(),
                Doc::List(docs.iter().map(|d| yaml_conv(d, 0)).collect()),
            ),
        ])),
    }
}

fn yaml_conv(y: &yaml_rust2::Yaml, depth: usize) -> Doc {
    use yaml_rust2::Yaml;
    if depth > MAX_NESTING {
        return Doc::Other;
    }
    match y {
        Yaml::Hash(h) => Doc::Map(
            h.iter()
                .filter_map(|(k, v)| scalar_string(k).map(|k| (k, yaml_conv(v, depth + 1))))
                .collect(),
        ),
        Yaml::Array(a) => Doc::List(a.iter().map(|v| yaml_conv(v, depth + 1)).collect()),
        other => scalar_string(other).map_or(Doc::Other, Doc::Str),
    }
}

fn scalar_string(y: &yaml_rust2::Yaml) -> Option<String> {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// Refuses deeply nested flow collections before the YAML parser sees them (its recursive
/// data structures would exhaust the stack on `[[[[...`).
fn check_flow_nesting(text: &str) -> Result<(), ReadError> {
    let mut depth = 0usize;
    let mut line = 1;
    for c in text.bytes() {
        match c {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ReadError::Syntax {
                        line,
                        column: 1,
                        message: "collections nested too deeply".to_owned(),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// 1-based line of the first line mentioning `key` as a key (for error messages).
fn line_of(text: &str, key: &str) -> usize {
    line_of_opt(text, key).unwrap_or(1)
}

fn line_of_opt(text: &str, key: &str) -> Option<usize> {
    let yaml = format!("{key}:");
    let json = format!("\"{key}\"");
    text.lines()
        .position(|l| l.trim_start().starts_with(&yaml) || l.contains(&json))
        .map(|i| i + 1)
}

/// The longest key Kubernetes accepts in a Secret's data (a DNS subdomain's length).
pub const MAX_DATA_KEY_LEN: usize = 253;

/// Whether Kubernetes accepts `key` as a Secret data key, as the API server validates it
/// (k8s.io/apimachinery pkg/util/validation, `IsConfigMapKey`): 1 to 253 characters of
/// `[-._a-zA-Z0-9]`, not `.` or `..`, not starting with `..`. Returns what is wrong.
///
/// ```
/// use meshtrust::istio::check_data_key;
/// assert!(check_data_key("root-cert.pem").is_ok());
/// assert!(check_data_key("root\u{14}cert").is_err());
/// assert!(check_data_key("..data").is_err());
/// ```
pub fn check_data_key(key: &str) -> Result<(), DataKeyError> {
    if key.is_empty() {
        return Err(DataKeyError::Empty);
    }
    if key.len() > MAX_DATA_KEY_LEN {
        return Err(DataKeyError::TooLong {
            chars: key.chars().count(),
        });
    }
    if let Some((i, c)) = key
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(DataKeyError::Character {
            character: c,
            position: i + 1,
        });
    }
    if key == "." || key == ".." || key.starts_with("..") {
        return Err(DataKeyError::Dots);
    }
    Ok(())
}

/// Why Kubernetes refuses a Secret's data key ([`check_data_key`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataKeyError {
    /// The key is empty.
    #[error("empty")]
    Empty,
    /// Longer than [`MAX_DATA_KEY_LEN`] bytes.
    #[error("{chars} characters, at most {MAX_DATA_KEY_LEN}")]
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// A character outside `[-._a-zA-Z0-9]`.
    #[error("character {character:?} at position {position}; only [-._a-zA-Z0-9] is allowed")]
    Character {
        /// The character.
        character: char,
        /// Its 1-based position, in characters.
        position: usize,
    },
    /// `.`, `..`, or starting with `..`.
    #[error("must not be '.' or '..' or start with '..'")]
    Dots,
}

/// A key for an error message: escaped, at most 64 characters.
fn shown_key(key: &str) -> String {
    let escaped: String = key.escape_debug().collect();
    if escaped.chars().count() > 64 {
        format!("{}...", escaped.chars().take(64).collect::<String>())
    } else {
        escaped
    }
}

fn invalid_key(text: &str, section: &'static str, key: &str) -> Option<ReadError> {
    let reason = check_data_key(key).err()?;
    // A key with a control character appears escaped in JSON text: try its JSON form, then
    // fall back to the section's line.
    let json_form = serde_json::Value::String(key.to_owned()).to_string();
    let line = line_of_opt(text, key)
        .or_else(|| {
            text.lines()
                .position(|l| l.contains(&json_form))
                .map(|i| i + 1)
        })
        .unwrap_or_else(|| line_of(text, section));
    Some(ReadError::InvalidKey {
        line,
        section,
        key: shown_key(key),
        reason,
    })
}

fn doc_to_secret(doc: &Doc, text: &str, json: bool) -> Result<CaSecret, ReadError> {
    let not_secret = |message: String| ReadError::NotASecret { line: 1, message };
    let kind = doc.get("kind").and_then(Doc::str).unwrap_or("Secret");
    let secret = match kind {
        "Secret" => doc,
        "List" | "SecretList" => {
            let items = match doc.get("items") {
                Some(Doc::List(items)) => items,
                _ => return Err(not_secret("a List without items".to_owned())),
            };
            let name_of = |d: &Doc| {
                d.get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Doc::str)
                    .map(str::to_owned)
            };
            items
                .iter()
                .find(|d| name_of(d).as_deref() == Some("cacerts"))
                .or_else(|| {
                    items
                        .iter()
                        .find(|d| name_of(d).as_deref() == Some("istio-ca-secret"))
                })
                .or(if items.len() == 1 {
                    items.first()
                } else {
                    None
                })
                .ok_or_else(|| {
                    not_secret(format!(
                        "a List of {} items, none named cacerts or istio-ca-secret",
                        items.len()
                    ))
                })?
        }
        other => return Err(not_secret(format!("kind {other}, expected Secret"))),
    };
    if !matches!(secret, Doc::Map(_)) {
        return Err(not_secret("not a mapping".to_owned()));
    }
    let meta = secret.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Doc::str)
        .unwrap_or("cacerts")
        .to_owned();
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Doc::str)
        .unwrap_or("istio-system")
        .to_owned();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (section, map) in [
        ("data", secret.get("data")),
        ("stringData", secret.get("stringData")),
    ] {
        if let Some(Doc::Map(m)) = map {
            if let Some(e) = m.iter().find_map(|(k, _)| invalid_key(text, section, k)) {
                return Err(e);
            }
        }
    }
    if let Some(Doc::Map(data)) = secret.get("data") {
        for (k, v) in data {
            let value = v.str().unwrap_or_default();
            let decoded = crate::b64::decode(value.as_bytes()).map_err(|e| ReadError::Base64 {
                line: line_of(text, k),
                key: k.clone(),
                reason: match e {
                    crate::b64::B64Error::BadChar { offset, byte } => {
                        format!("character {:?} at offset {offset}", char::from(byte))
                    }
                    crate::b64::B64Error::BadLength => "length is not a multiple of 4".to_owned(),
                    crate::b64::B64Error::NonCanonical { .. } => "non-canonical ending".to_owned(),
                },
            })?;
            files.push((k.clone(), decoded));
        }
    }
    if let Some(Doc::Map(sdata)) = secret.get("stringData") {
        for (k, v) in sdata {
            files.retain(|(name, _)| name != k);
            files.push((k.clone(), v.str().unwrap_or_default().as_bytes().to_vec()));
        }
    }
    if !files.iter().any(|(k, _)| KNOWN_KEYS.contains(&k.as_str())) {
        let found: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
        return Err(ReadError::NotASecret {
            line: 1,
            message: format!(
                "no CA secret keys (ca-cert.pem, root-cert.pem, tls.crt, ...) in data/stringData; found {found:?}"
            ),
        });
    }
    let mut s = CaSecret::from_files(
        &name,
        &namespace,
        if json {
            SecretForm::Json
        } else {
            SecretForm::Yaml
        },
        files,
    );
    s.type_as_read = secret.get("type").and_then(Doc::str).map(str::to_owned);
    Ok(s)
}
