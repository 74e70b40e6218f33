//! A small JSON walker that remembers where it is, so every parse error names its JSON path
//! (`configs[2].dynamic_active_secrets[0].secret.tls_certificate.certificate_chain.inline_bytes`).

use serde_json::Value;

use super::ObserveError;

/// A JSON value and the path that reached it.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub(super) value: &'a Value,
    path: &'a Path<'a>,
    source: &'a str,
}

/// A path as a linked list of steps (no allocation while walking).
pub(super) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    pub(super) fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, k) => {
                let p = parent.render();
                if p.is_empty() {
                    (*k).to_owned()
                } else {
                    format!("{p}.{k}")
                }
            }
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

impl<'a> At<'a> {
    pub(super) fn root(value: &'a Value, source: &'a str) -> At<'a> {
        At {
            value,
            path: &Path::Root,
            source,
        }
    }

    /// An error located at this value.
    pub(super) fn error(&self, message: impl Into<String>) -> ObserveError {
        let loc = self.path.render();
        ObserveError::new(
            self.source,
            if loc.is_empty() { "$".to_owned() } else { loc },
            message,
        )
    }

    /// Calls `f` with the member `key` (camelCase or snake_case spelling), when present and
    /// not null.
    pub(super) fn member<R>(
        &self,
        keys: &[&'a str],
        f: impl FnOnce(At<'_>) -> Result<R, ObserveError>,
    ) -> Result<Option<R>, ObserveError> {
        let Some(obj) = self.value.as_object() else {
            return Err(self.error("expected an object"));
        };
        for key in keys {
            if let Some(v) = obj.get(*key).filter(|v| !v.is_null()) {
                let path = Path::Key(self.path, key);
                return f(At {
                    value: v,
                    path: &path,
                    source: self.source,
                })
                .map(Some);
            }
        }
        Ok(None)
    }

    /// Calls `f` with each element of this array.
    pub(super) fn each(
        &self,
        mut f: impl FnMut(At<'_>) -> Result<(), ObserveError>,
    ) -> Result<(), ObserveError> {
        let Some(items) = self.value.as_array() else {
            return Err(self.error("expected an array"));
        };
        for (i, v) in items.iter().enumerate() {
            let path = Path::Index(self.path, i);
            f(At {
                value: v,
                path: &path,
                source: self.source,
            })?;
        }
        Ok(())
    }

    /// This value as a string.
    pub(super) fn str(&self) -> Result<&'a str, ObserveError> {
        self.value
            .as_str()
            .ok_or_else(|| self.error("expected a string"))
    }

    /// The string member `keys`, if present.
    pub(super) fn opt_str(&self, keys: &[&'a str]) -> Result<Option<String>, ObserveError> {
        self.member(keys, |v| v.str().map(str::to_owned))
    }
}

/// Parses JSON text, with the line and column of a syntax error.
pub(super) fn parse(source: &str, bytes: &[u8]) -> Result<Value, ObserveError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ObserveError::new(
            source,
            format!("line {} column {}", e.line(), e.column()),
            format!(
                "not valid JSON: {}",
                e.to_string().split(" at line ").next().unwrap_or_default()
            ),
        )
    })
}
