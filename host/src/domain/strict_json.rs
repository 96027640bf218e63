//! JSON that refuses duplicate object keys.
//!
//! serde_json keeps the last of two equal keys, so `{"version":"1.0.0",
//! "version":"9.0.0"}` would publish 9.0.0 while the tarball's package.json
//! still shows both: what a reader of the file sees and what the registry
//! records would differ. Manifests are parsed through this instead.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parse `text` as JSON; a key repeated in any object is an error that names
/// it, with serde_json's line and column.
pub fn from_str(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // An integer past 64 bits arrives here as a float: stored back, it
        // came out as 1.2345678901234568e22, not what the author wrote.
        if v.fract() == 0.0 && v.abs() >= 2f64.powi(63) {
            return Err(E::custom(format!(
                "the number {v:e} is too large to keep exactly; write it as a string"
            )));
        }
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key \"{}\"; keep one",
                    key.escape_debug()
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"a":[1,-2,3.5,true,null,"x",{"b":{}}],"c":"\u00e9"}"#;
        assert_eq!(
            from_str(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn refuses_integers_it_cannot_keep_exactly() {
        let err = from_str(r#"{"build":123456789012345678901234}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("too large to keep exactly; write it as a string"),
            "{err}"
        );
        assert!(
            from_str(r#"{"n":18446744073709551615,"m":-9223372036854775808,"f":1.5e3}"#).is_ok()
        );
    }

    #[test]
    fn refuses_a_repeated_key_at_any_depth() {
        for text in [
            r#"{"version":"1.0.0","version":"9.0.0"}"#,
            r#"{"dependencies":{"base":"^1","base":"^2"}}"#,
            r#"[{"k":1,"k":1}]"#,
        ] {
            let err = from_str(text).unwrap_err().to_string();
            assert!(err.contains("duplicate key"), "{text}: {err}");
            assert!(err.contains("line 1"), "{text}: {err}");
        }
    }
}
