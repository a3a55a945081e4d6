//! OTLP → storage model. Shared pieces here: attribute values, Prometheus-compatible
//! label names, and the per-signal converters in the sub-modules.

pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod traces;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue as PAnyValue, InstrumentationScope, KeyValue, any_value,
};
use signalbox_storage::{AnyValue, Attributes, Scope};

pub(crate) fn any_value(v: Option<&PAnyValue>) -> AnyValue {
    let Some(v) = v.and_then(|v| v.value.as_ref()) else {
        return AnyValue::Empty;
    };
    match v {
        any_value::Value::StringValue(s) => AnyValue::String(s.clone()),
        any_value::Value::BoolValue(b) => AnyValue::Bool(*b),
        any_value::Value::IntValue(i) => AnyValue::Int(*i),
        any_value::Value::DoubleValue(d) => AnyValue::Double(*d),
        any_value::Value::BytesValue(b) => AnyValue::Bytes(b.clone()),
        any_value::Value::ArrayValue(a) => {
            AnyValue::Array(a.values.iter().map(|x| any_value(Some(x))).collect())
        }
        // An index into a profile's string table; logs, metrics and spans have no such table.
        any_value::Value::StringValueStrindex(i) => AnyValue::Int(i64::from(*i)),
        any_value::Value::KvlistValue(kv) => AnyValue::Map(
            kv.values
                .iter()
                .map(|k| (k.key.clone(), any_value(k.value.as_ref())))
                .collect(),
        ),
    }
}

pub(crate) fn attributes(kvs: &[KeyValue]) -> Attributes {
    Attributes(
        kvs.iter()
            .map(|k| (k.key.clone(), any_value(k.value.as_ref())))
            .collect(),
    )
}

pub(crate) fn scope(s: Option<&InstrumentationScope>) -> Scope {
    match s {
        None => Scope::default(),
        Some(s) => Scope {
            name: s.name.clone(),
            version: s.version.clone(),
            attributes: attributes(&s.attributes),
        },
    }
}

/// A Prometheus label name for an attribute key: characters outside `[a-zA-Z0-9_]` become
/// `_`; a leading digit gets the prefix `key_`, a single leading underscore the prefix `key`.
pub(crate) fn label_name(key: &str) -> std::borrow::Cow<'_, str> {
    let valid = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && (!key.starts_with('_') || key.starts_with("__"));
    if valid {
        return std::borrow::Cow::Borrowed(key);
    }
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "key_");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s.insert_str(0, "key");
    }
    if s.is_empty() {
        s.push_str("key_");
    }
    std::borrow::Cow::Owned(s)
}

/// The text of an attribute value, as a label value.
pub(crate) fn value_text(v: Option<&PAnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => any_value(v).to_text(),
    }
}

/// Label pairs from attributes. Keys that collide once sanitized have their values
/// joined with `;` in the order of their original keys.
pub(crate) fn labels_from_attributes(attrs: &Attributes) -> Vec<(String, String)> {
    labels_from_pairs(attrs.iter().map(|(k, v)| (k.as_str(), v.to_text())))
}

/// Label pairs from OTLP key/values (see `labels_from_attributes`).
pub(crate) fn labels_from_kvs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    labels_from_pairs(
        kvs.iter()
            .map(|kv| (kv.key.as_str(), value_text(kv.value.as_ref()))),
    )
}

fn labels_from_pairs<'a>(it: impl Iterator<Item = (&'a str, String)>) -> Vec<(String, String)> {
    let mut pairs: Vec<(std::borrow::Cow<'a, str>, &'a str, String)> =
        it.map(|(k, v)| (label_name(k), k, v)).collect();
    if pairs.len() > 1 {
        pairs.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (name, _, value) in pairs {
        match out.last_mut() {
            Some((n, v)) if *n == *name => {
                v.push(';');
                v.push_str(&value);
            }
            _ => out.push((name.into_owned(), value)),
        }
    }
    out
}

pub(crate) fn trace_id(b: &[u8]) -> Result<[u8; 16], String> {
    match b.len() {
        0 => Ok([0; 16]),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Ok(a)
        }
        n => Err(format!("trace id must be 16 bytes, got {n}")),
    }
}

pub(crate) fn span_id(b: &[u8]) -> Result<[u8; 8], String> {
    match b.len() {
        0 => Ok([0; 8]),
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(a)
        }
        n => Err(format!("span id must be 8 bytes, got {n}")),
    }
}

/// Nanoseconds as i64, saturating for times past year 2262.
pub(crate) fn ns(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_follow_the_prometheus_rules() {
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("2xx"), "key_2xx");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
        assert_eq!(label_name("k8s.pod-name"), "k8s_pod_name");
    }

    #[test]
    fn colliding_keys_join_values() {
        let a = Attributes(vec![
            ("a.b".into(), AnyValue::String("1".into())),
            ("a_b".into(), AnyValue::Int(2)),
        ]);
        assert_eq!(
            labels_from_attributes(&a),
            vec![("a_b".into(), "1;2".into())]
        );
    }
}
