//! Writing CA secrets: a `cacerts` directory (atomic, certificates 0644, keys 0600), a Secret
//! manifest equivalent to `kubectl create secret generic cacerts -n istio-system --from-file=...`,
//! and the kubectl command lines.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::secret::{self, CaSecret};
use crate::fsio::{self, FsError, OutFile};

fn is_plain_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}

fn yaml_key(k: &str) -> String {
    if is_plain_key(k) { k.to_owned() } else { serde_json::Value::String(k.to_owned()).to_string() }
}

fn is_secret_file(name: &str) -> bool {
    matches!(name, secret::CA_KEY | secret::TLS_KEY | secret::KEY)
}

impl CaSecret {
    /// The Secret as YAML, as `kubectl create secret generic NAME -n NS --from-file=... -o yaml
    /// --dry-run=client` writes it: `apiVersion`, `kind`, `metadata`, `type: Opaque`, and `data`
    /// with every file base64-encoded, keys sorted. The text holds the private key: write it
    /// with [`crate::fsio`] (0600) and treat it as a secret.
    ///
    /// ```
    /// let s = meshtrust::istio::CaSecret::cacerts(b"c", b"k", b"ch", b"r");
    /// let yaml = s.to_manifest_yaml();
    /// assert!(yaml.contains("kind: Secret\n") && yaml.contains("  root-cert.pem: cg==\n"));
    /// assert_eq!(meshtrust::istio::parse_manifest(yaml.as_bytes())?.file("ca-key.pem"), Some(&b"k"[..]));
    /// # Ok::<(), meshtrust::istio::ReadError>(())
    /// ```
    pub fn to_manifest_yaml(&self) -> Zeroizing<String> {
        let mut s = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n");
        s.push_str(&format!("  name: {}\n  namespace: {}\ntype: Opaque\ndata:\n", yaml_key(&self.name), yaml_key(&self.namespace)));
        for name in self.file_names() {
            let value = self.file(name).unwrap_or_default();
            let b64 = crate::b64::encode(value);
            if b64.is_empty() {
                s.push_str(&format!("  {}: \"\"\n", yaml_key(name)));
            } else {
                s.push_str(&format!("  {}: {b64}\n", yaml_key(name)));
            }
        }
        Zeroizing::new(s)
    }

    /// The Secret as JSON (kubectl's `-o json` shape).
    pub fn to_manifest_json(&self) -> Zeroizing<String> {
        let data: serde_json::Map<String, serde_json::Value> = self
            .file_names()
            .map(|n| (n.to_owned(), serde_json::Value::String(crate::b64::encode(self.file(n).unwrap_or_default()))))
            .collect();
        let v = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": self.name, "namespace": self.namespace },
            "type": "Opaque",
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
                if is_secret_file(n) { OutFile::secret(dir.join(n), bytes.into()) } else { OutFile::public(dir.join(n), bytes) }
            })
            .collect()
    }

    /// The commands that apply this secret from the files in `dir` without a window where it
    /// does not exist (`create --dry-run=client -o yaml | kubectl apply -f -` replaces it in
    /// place; `delete` then `create`, as many guides do, leaves istiod a moment without files).
    pub fn kubectl_commands(&self, dir: &Path) -> String {
        let mut from = String::new();
        for n in self.file_names() {
            from.push_str(&format!(" \\\n    --from-file={n}={}", shell_quote(&dir.join(n))));
        }
        format!(
            "kubectl create secret generic {} -n {}{from} \\\n    --dry-run=client -o yaml | kubectl apply -f -\n",
            self.name, self.namespace
        )
    }
}

/// Quotes a path for a POSIX shell when needed.
pub(crate) fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Writes the secret's files into `dir` atomically: all or nothing, certificates 0644, keys
/// 0600, no existing file replaced unless `force`. Returns the paths written.
pub fn write_dir(secret: &CaSecret, dir: &Path, force: bool) -> Result<Vec<PathBuf>, FsError> {
    fsio::write_all(&secret.out_files(dir), force)
}

/// Writes the Secret manifest (YAML) to `path`, 0600 (it holds the key).
pub fn write_manifest(secret: &CaSecret, path: &Path, force: bool) -> Result<Vec<PathBuf>, FsError> {
    let text = secret.to_manifest_yaml();
    fsio::write_all(&[OutFile::secret(path, Zeroizing::new(text.as_bytes().to_vec()))], force)
}
