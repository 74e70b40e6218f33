//! Writing CA secrets: a `cacerts` directory (atomic, certificates 0644, keys 0600), a Secret
//! manifest equivalent to `kubectl create secret generic cacerts -n istio-system --from-file=...`,
//! and the kubectl command lines.

use std::path::Path;

use zeroize::Zeroizing;

use super::secret::{self, CaSecret};
use crate::fsio::{self, FsError, OutFile, Written};

/// Words YAML reads as something other than a string when unquoted.
const YAML_RESERVED: [&str; 11] = [
    "true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf",
];

/// True when `v` reads back, unquoted, as exactly this string in YAML: a letter first, then
/// only characters of base64 and Kubernetes keys, and not a word YAML gives a meaning.
fn is_plain_scalar(v: &str) -> bool {
    v.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._+/=".contains(&c))
        && !YAML_RESERVED.contains(&v.to_ascii_lowercase().as_str())
}

/// A YAML double-quoted scalar that reads back as `v` whatever it holds: every character
/// outside printable ASCII is escaped (`\uXXXX`, `\UXXXXXXXX`), so control characters,
/// line breaks, a BOM or a non-character cannot change the document's structure.
fn push_quoted(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
}

/// Appends a scalar (plain when that reads back the same, else double-quoted) in place, so
/// that key material is never copied into a temporary string.
fn push_scalar(out: &mut String, v: &str) {
    if is_plain_scalar(v) {
        out.push_str(v);
    } else {
        push_quoted(out, v);
    }
}

fn yaml_scalar(v: &str) -> String {
    let mut s = String::new();
    push_scalar(&mut s, v);
    s
}

/// Longest implicit ("simple") key a YAML parser accepts is 1024 characters; longer keys are
/// written as explicit `? key` entries.
const MAX_SIMPLE_KEY: usize = 1000;

/// One `  key: value` mapping entry at two spaces of indentation.
fn yaml_entry(out: &mut String, key: &str, value: &str) {
    let k = yaml_scalar(key);
    if k.len() > MAX_SIMPLE_KEY {
        out.push_str(&format!("  ? {k}\n  : "));
    } else {
        out.push_str(&format!("  {k}: "));
    }
    push_scalar(out, value);
    out.push('\n');
}

fn is_secret_file(name: &str) -> bool {
    matches!(name, secret::CA_KEY | secret::TLS_KEY | secret::KEY)
}

impl CaSecret {
    /// The Secret as YAML, as `kubectl create secret generic NAME -n NS --from-file=... -o yaml
    /// --dry-run=client` writes it: `apiVersion`, `kind`, `metadata`, `type` (the type as read,
    /// see [`CaSecret::secret_type`]), and `data` with every file base64-encoded, keys sorted.
    /// Whatever the name, namespace and keys hold, the text reads back with
    /// [`super::parse_manifest`] (scalars are quoted and escaped where needed; a key
    /// Kubernetes refuses reads back as a positioned [`super::ReadError::InvalidKey`]). The
    /// text holds the private key: write it with [`crate::fsio`] (0600) and treat it as a
    /// secret.
    ///
    /// ```
    /// let s = meshtrust::istio::CaSecret::cacerts(b"c", b"k", b"ch", b"r");
    /// let yaml = s.to_manifest_yaml();
    /// assert!(yaml.contains("kind: Secret\n") && yaml.contains("  root-cert.pem: cg==\n"));
    /// assert_eq!(meshtrust::istio::parse_manifest(yaml.as_bytes())?.file("ca-key.pem"), Some(&b"k"[..]));
    /// # Ok::<(), meshtrust::istio::ReadError>(())
    /// ```
    pub fn to_manifest_yaml(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::from("apiVersion: v1\nkind: Secret\nmetadata:\n"));
        s.push_str(&format!(
            "  name: {}\n  namespace: {}\ntype: {}\ndata:\n",
            yaml_scalar(&self.name),
            yaml_scalar(&self.namespace),
            yaml_scalar(self.secret_type()),
        ));
        for name in self.file_names() {
            let b64 = Zeroizing::new(crate::b64::encode(self.file(name).unwrap_or_default()));
            yaml_entry(&mut s, name, &b64);
        }
        s
    }

    /// The Secret as JSON (kubectl's `-o json` shape).
    pub fn to_manifest_json(&self) -> Zeroizing<String> {
        let data: serde_json::Map<String, serde_json::Value> = self
            .file_names()
            .map(|n| {
                (
                    n.to_owned(),
                    serde_json::Value::String(crate::b64::encode(self.file(n).unwrap_or_default())),
                )
            })
            .collect();
        let v = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": self.name, "namespace": self.namespace },
            "type": self.secret_type(),
            "data": data,
        });
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
        text.push('\n');
        Zeroizing::new(text)
    }

    /// The files of the secret as they would be written into `dir` (keys 0600).
    pub fn out_files(&self, dir: &Path) -> Vec<OutFile> {
        self.file_names()
            .map(|n| {
                let bytes = self.file(n).unwrap_or_default().to_vec();
                if is_secret_file(n) {
                    OutFile::secret(dir.join(n), bytes.into())
                } else {
                    OutFile::public(dir.join(n), bytes)
                }
            })
            .collect()
    }
}

/// Quotes a word for a POSIX shell when needed.
pub(crate) fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Writes the secret's files into `dir` atomically: all or nothing, certificates 0644, keys
/// 0600, no existing file replaced unless `force`. Returns the paths written.
pub fn write_dir(secret: &CaSecret, dir: &Path, force: bool) -> Result<Vec<Written>, FsError> {
    fsio::write_all(&secret.out_files(dir), force)
}

/// Writes the Secret manifest (YAML) to `path`, 0600 (it holds the key).
pub fn write_manifest(
    secret: &CaSecret,
    path: &Path,
    force: bool,
) -> Result<Vec<Written>, FsError> {
    let text = secret.to_manifest_yaml();
    fsio::write_all(
        &[OutFile::secret(
            path,
            Zeroizing::new(text.as_bytes().to_vec()),
        )],
        force,
    )
}

#[cfg(test)]
mod tests {
    use super::super::manifest::{check_data_key, parse_manifest};
    use super::super::secret::{ReadError, SecretForm};
    use super::*;
    use proptest::prelude::*;

    fn crash_input() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/corpus/cacerts_manifest/cacerts_manifest-a743bde2"
        ))
        .unwrap()
    }

    /// The fuzz crash: a data key with a control character parsed, and the YAML written for
    /// it did not read back. Such a key is now refused when reading, with its line.
    #[test]
    fn control_character_key_is_refused_with_its_line() {
        let e = parse_manifest(&crash_input()).unwrap_err();
        match &e {
            ReadError::InvalidKey {
                line, section, key, ..
            } => {
                assert_eq!(*section, "data");
                assert!(*line > 1, "{e}");
                assert!(key.starts_with("root-cert.") && key.len() < 80, "{e}");
            }
            other => panic!("{other:?}"),
        }
        let e = parse_manifest(b"kind: Secret\ndata:\n  root-cert.pem: aGk=\n  \"a b\": aGk=\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("line 4: data.a b is not a valid Secret key"),
            "{e}"
        );
        let e =
            parse_manifest(b"kind: Secret\nstringData:\n  ..x: y\n  ca-cert.pem: c\n").unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::InvalidKey {
                    line: 3,
                    section: "stringData",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn reserved_words_and_numbers_stay_strings() {
        let mut s = CaSecret::from_files(
            "null",
            "0x10",
            SecretForm::Memory,
            [
                ("true", b"\x9e\xe9\x65".to_vec()),
                ("root-cert.pem", b"".to_vec()),
            ],
        );
        s.set_file("ca-cert.pem", b"\xd3\x4d\x76".to_vec()); // base64 "001 2" -> "001..."
        let back = parse_manifest(s.to_manifest_yaml().as_bytes()).unwrap();
        assert_eq!(
            (back.name.as_str(), back.namespace.as_str()),
            ("null", "0x10")
        );
        for n in ["true", "root-cert.pem", "ca-cert.pem"] {
            assert_eq!(back.file(n), s.file(n), "{n}");
        }
    }

    #[test]
    fn secret_type_is_kept() {
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: istio-ca-secret\n  namespace: istio-system\ntype: istio.io/ca-root\ndata:\n  ca-cert.pem: aGk=\n";
        let s = parse_manifest(yaml.as_bytes()).unwrap();
        assert_eq!(s.secret_type(), "istio.io/ca-root");
        assert!(s.to_manifest_yaml().contains("\ntype: istio.io/ca-root\n"));
        assert!(
            s.to_manifest_json()
                .contains("\"type\": \"istio.io/ca-root\"")
        );
        let mut odd = s.clone();
        odd.type_as_read = Some("kubernetes.io/tls".to_owned());
        assert_eq!(
            parse_manifest(odd.to_manifest_yaml().as_bytes())
                .unwrap()
                .type_as_read
                .as_deref(),
            Some("kubernetes.io/tls")
        );
    }

    proptest! {
        /// Every manifest meshtrust writes reads back, whatever the secret holds: the same
        /// secret when Kubernetes would accept its keys, else a positioned InvalidKey error.
        #[test]
        fn written_manifests_read_back(
            name in any::<String>(),
            namespace in any::<String>(),
            keys in proptest::collection::vec(
                prop_oneof![
                    "[-._a-zA-Z0-9]{1,12}",
                    any::<String>(),
                    "[a-z\\x00-\\x1f]{1,1200}",
                ],
                0..4,
            ),
            value in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut files: Vec<(String, Vec<u8>)> = vec![("ca-cert.pem".to_owned(), value.clone())];
            files.extend(keys.iter().map(|k| (k.clone(), value.clone())));
            let s = CaSecret::from_files(&name, &namespace, SecretForm::Memory, files);
            let valid = s.file_names().all(|k| check_data_key(k).is_ok());
            for text in [s.to_manifest_yaml(), s.to_manifest_json()] {
                match parse_manifest(text.as_bytes()) {
                    Ok(back) => {
                        prop_assert!(valid);
                        prop_assert_eq!(&back.name, &s.name);
                        prop_assert_eq!(&back.namespace, &s.namespace);
                        prop_assert_eq!(back.secret_type(), s.secret_type());
                        let names: Vec<&str> = back.file_names().collect();
                        prop_assert_eq!(names, s.file_names().collect::<Vec<_>>());
                        for k in s.file_names() {
                            prop_assert_eq!(back.file(k), s.file(k));
                        }
                    }
                    Err(ReadError::InvalidKey { line, .. }) => {
                        prop_assert!(!valid);
                        prop_assert!(line >= 1);
                    }
                    Err(e) => prop_assert!(false, "does not read back: {e}\n{}", &text[..text.len().min(400)]),
                }
            }
        }
    }
}
