//! OTLP/JSON decoding: the generated serde code handles hex ids and string-encoded
//! 64-bit integers; enum fields are accepted by number or by name (`SPAN_KIND_SERVER`).

use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::Value;

const MAX_DEPTH: usize = 128;

pub(crate) fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    normalize(&mut v, 0)?;
    serde_json::from_value(v).map_err(|e| e.to_string())
}

fn enum_number(field: &str, name: &str) -> Option<Result<i32, String>> {
    let n = match field {
        "kind" => SpanKind::from_str_name(name).map(|k| k as i32),
        "code" => StatusCode::from_str_name(name).map(|k| k as i32),
        "severityNumber" => SeverityNumber::from_str_name(name).map(|k| k as i32),
        "aggregationTemporality" => AggregationTemporality::from_str_name(name).map(|k| k as i32),
        _ => return None,
    };
    Some(n.ok_or_else(|| format!("unknown {field} {name:?}")))
}

fn normalize(v: &mut Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("JSON nested too deeply".into());
    }
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if let Value::String(s) = val
                    && let Some(n) = enum_number(k, s)
                {
                    *val = Value::from(n?);
                    continue;
                }
                normalize(val, depth + 1)?;
            }
        }
        Value::Array(a) => {
            for x in a {
                normalize(x, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}
