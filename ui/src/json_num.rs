//! Numbers that keep NaN and ±Inf through JSON. serde_json writes a non-finite `f64` as
//! `null` and cannot read that back as a number, so data that resources carry from the
//! server to the browser writes them as Prometheus does: `"NaN"`, `"+Inf"`, `"-Inf"`.

use crate::api::Labels;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` written as a JSON number, or as a string when it is not finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("+Inf")
        } else {
            s.serialize_str("-Inf")
        }
    }
}

struct NumVisitor;

impl Visitor<'_> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, \"NaN\", \"+Inf\" or \"-Inf\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
        match v {
            "NaN" => Ok(Num(f64::NAN)),
            "+Inf" | "Inf" => Ok(Num(f64::INFINITY)),
            "-Inf" => Ok(Num(f64::NEG_INFINITY)),
            other => other
                .parse()
                .map(Num)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        d.deserialize_any(NumVisitor)
    }
}

/// `#[serde(with = "…")]` for `(time, value)` points.
pub mod points {
    use super::*;

    pub fn serialize<S: Serializer>(p: &[(f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(p.iter().map(|&(t, v)| (Num(t), Num(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        let p: Vec<(Num, Num)> = Vec::deserialize(d)?;
        Ok(p.into_iter().map(|(t, v)| (t.0, v.0)).collect())
    }
}

/// `#[serde(with = "…")]` for named instant values `(name, labels, value)`.
pub mod named_values {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[(String, Labels, f64)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(n, l, x)| (n, l, Num(*x))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, Labels, f64)>, D::Error> {
        let v: Vec<(String, Labels, Num)> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|(n, l, x)| (n, l, x.0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Both {
        #[serde(with = "points")]
        points: Vec<(f64, f64)>,
        #[serde(with = "named_values")]
        values: Vec<(String, Labels, f64)>,
    }

    #[test]
    fn non_finite_numbers_survive_a_json_round_trip() {
        let b = Both {
            points: vec![(1.0, f64::NAN), (2.5, f64::INFINITY), (3.0, -0.5)],
            values: vec![("a".into(), Labels::new(), f64::NEG_INFINITY)],
        };
        let text = serde_json::to_string(&b).expect("serialises");
        assert_eq!(
            text,
            r#"{"points":[[1.0,"NaN"],[2.5,"+Inf"],[3.0,-0.5]],"values":[["a",{},"-Inf"]]}"#
        );
        let back: Both = serde_json::from_str(&text).expect("reads back");
        assert!(back.points[0].1.is_nan());
        assert_eq!(back.points[1].1, f64::INFINITY);
        assert_eq!(back.points[2], (3.0, -0.5));
        assert_eq!(back.values[0].2, f64::NEG_INFINITY);
        assert!(serde_json::from_str::<Both>(r#"{"points":[[1,"x"]],"values":[]}"#).is_err());
    }
}
