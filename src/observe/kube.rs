//! kubectl output: `kubectl get secret cacerts|istio-ca-secret -o yaml|json` (read by
//! [`crate::istio::parse_manifest`]) and `kubectl get configmap istio-ca-root-cert -A -o
//! yaml|json` (a `List`: which namespaces publish which roots).

use serde_json::Value;

use super::json::At;
use super::{Observation, ObserveError, RootConfigMap};

/// The ConfigMap istiod writes the root file to, in every namespace.
pub const ROOT_CONFIGMAP: &str = "istio-ca-root-cert";

const MAX_DEPTH: usize = 64;

pub(super) fn read_yaml(input: &str, text: &str) -> Result<Observation, ObserveError> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| {
        ObserveError::new(
            input,
            format!("line {} column {}", e.marker().line(), e.marker().col() + 1),
            format!(
                "not a recognized input (Envoy/ztunnel JSON, istioctl table, kubectl YAML/JSON): {}",
                e.info()
            ),
        )
    })?;
    let mut docs: Vec<Value> = docs
        .iter()
        .filter(|d| !d.is_null())
        .map(|d| to_json(d, 0))
        .collect();
    let value = match docs.len() {
        0 => return Err(ObserveError::new(input, "$", "empty input")),
        1 => docs.remove(0),
        _ => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs}),
    };
    classify(input, text.as_bytes(), &value)
}

pub(super) fn read_json(
    input: &str,
    bytes: &[u8],
    value: &Value,
) -> Result<Observation, ObserveError> {
    classify(input, bytes, value)
}

fn kind_of(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn classify(input: &str, bytes: &[u8], value: &Value) -> Result<Observation, ObserveError> {
    let at = At::root(value, input);
    let is_configmaps = match kind_of(value) {
        "ConfigMap" => true,
        "List" | "ConfigMapList" => {
            value
                .get("items")
                .and_then(Value::as_array)
                .is_some_and(|items| {
                    !items.is_empty() && items.iter().all(|i| kind_of(i) == "ConfigMap")
                })
        }
        "Secret" | "SecretList" => false,
        "" if value.is_object() => {
            return Err(at.error(
                "not a recognized input: no kind (expected a Secret, ConfigMap or List), no Envoy or ztunnel keys",
            ));
        }
        "" => return Err(at.error("not a recognized input")),
        other if other != "List" => {
            return Err(at.error(format!(
                "kind {other}: expected a Secret, ConfigMap or List"
            )));
        }
        _ => false,
    };
    if is_configmaps {
        return configmaps(at).map(Observation::ConfigMaps);
    }
    crate::istio::parse_manifest(bytes)
        .map(|s| Observation::CaSecret(Box::new(s)))
        .map_err(|e| ObserveError::new(input, "$", e.to_string()))
}

fn configmaps(at: At<'_>) -> Result<Vec<RootConfigMap>, ObserveError> {
    let mut out = Vec::new();
    let mut one = |cm: At<'_>| -> Result<(), ObserveError> {
        let (name, namespace) = cm
            .member(&["metadata"], |m| {
                Ok((m.opt_str(&["name"])?, m.opt_str(&["namespace"])?))
            })?
            .unwrap_or((None, None));
        if name.as_deref().is_some_and(|n| n != ROOT_CONFIGMAP) {
            return Ok(());
        }
        let namespace = namespace.ok_or_else(|| cm.error("metadata.namespace is missing"))?;
        let root = cm
            .member(&["data"], |d| d.opt_str(&["root-cert.pem"]))?
            .flatten()
            .ok_or_else(|| cm.error("data.root-cert.pem is missing"))?;
        out.push(RootConfigMap {
            namespace,
            root_cert: root.into_bytes(),
        });
        Ok(())
    };
    if kind_of(at.value) == "ConfigMap" {
        one(at)?;
    } else {
        at.member(&["items"], |items| items.each(&mut one))?;
    }
    Ok(out)
}

/// YAML -> JSON value (scalars as YAML wrote them; nesting bounded).
fn to_json(y: &yaml_rust2::Yaml, depth: usize) -> Value {
    use yaml_rust2::Yaml;
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match y {
        Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(|v| to_json(v, depth + 1)).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((key, to_json(v, depth + 1)))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}
