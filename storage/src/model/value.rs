//! OpenTelemetry attribute values, attribute lists and instrumentation scopes,
//! with their binary encoding (used in WAL records and binary part columns).

use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};

#[derive(Clone, Debug, PartialEq, Default)]
pub enum AnyValue {
    #[default]
    Empty,
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AnyValue>),
    Map(Vec<(String, AnyValue)>),
}

const MAX_DEPTH: u32 = 64;

impl AnyValue {
    /// The value as a plain string: strings as they are, scalars in their usual
    /// text form, bytes as base16, arrays and maps as JSON.
    pub fn to_text(&self) -> String {
        match self {
            AnyValue::Empty => String::new(),
            AnyValue::String(s) => s.clone(),
            AnyValue::Bool(b) => b.to_string(),
            AnyValue::Int(i) => i.to_string(),
            AnyValue::Double(d) => format_double(*d),
            AnyValue::Bytes(b) => hex_lower(b),
            AnyValue::Array(_) | AnyValue::Map(_) => self.to_json().to_string(),
        }
    }

    /// The value as JSON: doubles that JSON cannot carry (NaN, ±Inf) become strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            AnyValue::Empty => J::Null,
            AnyValue::String(s) => J::String(s.clone()),
            AnyValue::Bool(b) => J::Bool(*b),
            AnyValue::Int(i) => J::from(*i),
            AnyValue::Double(d) => serde_json::Number::from_f64(*d)
                .map(J::Number)
                .unwrap_or_else(|| J::String(format_double(*d))),
            AnyValue::Bytes(b) => J::String(hex_lower(b)),
            AnyValue::Array(a) => J::Array(a.iter().map(AnyValue::to_json).collect()),
            AnyValue::Map(m) => {
                J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        match self {
            AnyValue::Empty => e.u8(0),
            AnyValue::String(s) => {
                e.u8(1);
                e.str(s);
            }
            AnyValue::Bool(b) => {
                e.u8(2);
                e.u8(u8::from(*b));
            }
            AnyValue::Int(i) => {
                e.u8(3);
                e.ivarint(*i);
            }
            AnyValue::Double(d) => {
                e.u8(4);
                e.f64(*d);
            }
            AnyValue::Bytes(b) => {
                e.u8(5);
                e.bytes(b);
            }
            AnyValue::Array(a) => {
                e.u8(6);
                e.uvarint(a.len() as u64);
                for v in a {
                    v.encode(e);
                }
            }
            AnyValue::Map(m) => {
                e.u8(7);
                e.uvarint(m.len() as u64);
                for (k, v) in m {
                    e.str(k);
                    v.encode(e);
                }
            }
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<AnyValue> {
        Self::decode_depth(d, 0)
    }

    fn decode_depth(d: &mut Dec<'_>, depth: u32) -> Result<AnyValue> {
        if depth > MAX_DEPTH {
            return Err(StorageError::decode("attribute value", "nested too deeply"));
        }
        Ok(match d.u8()? {
            0 => AnyValue::Empty,
            1 => AnyValue::String(d.string()?),
            2 => AnyValue::Bool(d.u8()? != 0),
            3 => AnyValue::Int(d.ivarint()?),
            4 => AnyValue::Double(d.f64()?),
            5 => AnyValue::Bytes(d.bytes()?.to_vec()),
            6 => {
                let n = d.count(1)?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(Self::decode_depth(d, depth + 1)?);
                }
                AnyValue::Array(a)
            }
            7 => {
                let n = d.count(2)?;
                let mut m = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = d.string()?;
                    m.push((k, Self::decode_depth(d, depth + 1)?));
                }
                AnyValue::Map(m)
            }
            t => {
                return Err(StorageError::decode(
                    "attribute value",
                    format!("unknown tag {t}"),
                ));
            }
        })
    }

    /// Rough heap size, for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            AnyValue::String(s) => s.len(),
            AnyValue::Bytes(b) => b.len(),
            AnyValue::Array(a) => a.iter().map(|v| v.heap_bytes() + 32).sum(),
            AnyValue::Map(m) => m.iter().map(|(k, v)| k.len() + v.heap_bytes() + 56).sum(),
            _ => 0,
        }
    }
}

fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        d.to_string()
    }
}

/// Bytes as lower-case hexadecimal (how trace and span ids are written).
pub fn hex_lower(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// An ordered list of key/value attributes, as OTLP carries them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Attributes(pub Vec<(String, AnyValue)>);

impl Attributes {
    pub fn get(&self, key: &str) -> Option<&AnyValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, AnyValue)> {
        self.0.iter()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        e.uvarint(self.0.len() as u64);
        for (k, v) in &self.0 {
            e.str(k);
            v.encode(e);
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Attributes> {
        let n = d.count(2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = d.string()?;
            v.push((k, AnyValue::decode(d)?));
        }
        Ok(Attributes(v))
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut e = Enc::default();
        self.encode(&mut e);
        e.buf
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Result<Attributes> {
        Attributes::decode(&mut Dec::new(b, "attributes"))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|(k, v)| k.len() + v.heap_bytes() + 56)
            .sum()
    }
}

/// The instrumentation scope that produced a log record or span.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Attributes,
}

impl Scope {
    pub(crate) fn encode(&self, e: &mut Enc) {
        e.str(&self.name);
        e.str(&self.version);
        self.attributes.encode(e);
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Scope> {
        Ok(Scope {
            name: d.string()?,
            version: d.string()?,
            attributes: Attributes::decode(d)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn any_value() -> impl Strategy<Value = AnyValue> {
        let leaf = prop_oneof![
            Just(AnyValue::Empty),
            ".{0,10}".prop_map(AnyValue::String),
            any::<bool>().prop_map(AnyValue::Bool),
            any::<i64>().prop_map(AnyValue::Int),
            any::<f64>()
                .prop_filter("nan", |f| !f.is_nan())
                .prop_map(AnyValue::Double),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(AnyValue::Bytes),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AnyValue::Array),
                proptest::collection::vec(("[a-z]{1,4}", inner), 0..4).prop_map(AnyValue::Map),
            ]
        })
    }

    pub(crate) fn attributes() -> impl Strategy<Value = Attributes> {
        proptest::collection::vec(("[a-z.]{1,8}", any_value()), 0..5).prop_map(Attributes)
    }

    proptest! {
        #[test]
        fn attributes_roundtrip(a in attributes()) {
            prop_assert_eq!(Attributes::from_bytes(&a.to_bytes()).unwrap(), a);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Attributes::from_bytes(&b);
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut e = Enc::default();
        e.uvarint(1);
        e.str("k");
        for _ in 0..1000 {
            e.u8(6);
            e.uvarint(1);
        }
        e.u8(0);
        assert!(Attributes::from_bytes(&e.buf).is_err());
    }
}
