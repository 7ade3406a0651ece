//! Strict, bounded JSON for untrusted input.
//!
//! serde_json alone applies "last member wins" to duplicate names and allows 128 levels of
//! nesting. Here every object refuses duplicate member names at every depth (docs/threats.md A8, B8),
//! and depth, member count, array length and string length are capped while parsing, so cost
//! stays bounded (E2, E3). Trailing bytes, a byte-order mark and invalid UTF-8 are refused by
//! serde_json itself.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Caps applied while parsing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Deepest nesting of objects and arrays; the top-level object is depth 1.
    pub(crate) max_depth: usize,
    /// Most members in one object.
    pub(crate) max_members: usize,
    /// Most elements in one array.
    pub(crate) max_elements: usize,
    /// Longest string or member name, in bytes.
    pub(crate) max_string: usize,
}

/// Parses `bytes` as one JSON object under `limits`.
///
/// The error is a short lowercase message that never quotes the input beyond a truncated,
/// escaped member name.
pub(crate) fn parse_object(bytes: &[u8], limits: Limits) -> Result<Map<String, Value>, String> {
    // No whitespace before or after the object: a signed payload has one canonical edge.
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return Err("not a JSON object (or whitespace around it)".to_owned());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed { depth: 0, limits }
        .deserialize(&mut de)
        .map_err(|e| describe(&e))?;
    de.end().map_err(|e| describe(&e))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err("not a JSON object".to_owned()),
    }
}

/// How many bytes at the start of `b` a JSON string holds as they are: the position of the
/// first `"`, `\` or control character below U+0020, or `b.len()`.
///
/// Eight bytes at a time: a word without any of them is skipped whole (the usual case in
/// claims), and only the word that holds one is looked at byte by byte.
pub(crate) fn plain_len(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Sets the high bit of each byte of `w` that is zero (exact for the first such byte, which
    // is all the scan needs).
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let mut at = 0;
    for chunk in b.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Bytes below 0x20: `w - 0x20…` borrows into the high bit exactly for them, unless the
        // byte already had its high bit set (non-ASCII, which is plain).
        let special = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if special != 0 {
            break;
        }
        at += 8;
    }
    at + b[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(b.len() - at)
}

pub(crate) fn describe(e: &serde_json::Error) -> String {
    // serde_json's messages name the problem and a column, never the input bytes; the custom
    // messages below are ours.
    format!("invalid JSON: {e}")
}

#[derive(Clone, Copy)]
pub(crate) struct ValueSeed {
    pub(crate) depth: usize,
    pub(crate) limits: Limits,
}

impl ValueSeed {
    pub(crate) fn nested(&self) -> Self {
        Self {
            depth: self.depth + 1,
            limits: self.limits,
        }
    }

    pub(crate) fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth >= self.limits.max_depth {
            return Err(E::custom(format_args!(
                "nesting deeper than {} levels",
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    pub(crate) fn string<E: de::Error>(&self, v: &str) -> Result<(), E> {
        if v.len() > self.limits.max_string {
            return Err(E::custom(format_args!(
                "string longer than {} bytes",
                self.limits.max_string
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.string(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.string(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.nested())? {
            if out.len() >= self.limits.max_elements {
                return Err(de::Error::custom(format_args!(
                    "array longer than {} elements",
                    self.limits.max_elements
                )));
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.string::<A::Error>(&key)?;
            if out.len() >= self.limits.max_members {
                return Err(de::Error::custom(format_args!(
                    "object with more than {} members",
                    self.limits.max_members
                )));
            }
            if out.contains_key(&key) {
                let shown: String = key.chars().take(32).collect();
                return Err(de::Error::custom(format_args!(
                    "duplicate member {shown:?}"
                )));
            }
            let value = map.next_value_seed(self.nested())?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_depth: 16,
        max_members: 64,
        max_elements: 256,
        max_string: 4096,
    };

    fn parse(s: &str) -> Result<Map<String, Value>, String> {
        parse_object(s.as_bytes(), LIMITS)
    }

    #[test]
    fn accepts_plain_objects() {
        let m = parse(r#"{"a":1,"b":[true,null,"x"],"c":{"d":-2.5}}"#).unwrap();
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert!(
            parse(r#"{"aud":"evil","aud":"api"}"#)
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(
            parse(r#"{"x":{"k":1,"k":2}}"#)
                .unwrap_err()
                .contains("duplicate")
        );
        // An escaped name is the same name.
        assert!(
            parse(r#"{"aud":1,"\u0061ud":2}"#)
                .unwrap_err()
                .contains("duplicate")
        );
    }

    #[test]
    fn refuses_non_objects_and_trailing_bytes() {
        for bad in [
            "",
            "[]",
            "\"x\"",
            "1",
            "null",
            "{}x",
            "{} {}",
            "\u{feff}{}",
            "{\"a\":1,}",
            " {}",
            "{} ",
            "{}\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_object(b"{\"a\":\"\xff\"}", LIMITS).is_err(),
            "invalid UTF-8"
        );
    }

    #[test]
    fn caps_depth_members_and_sizes() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse(&deep).unwrap_err().contains("nesting"));
        let ok_depth = format!("{{\"a\":{}1{}}}", "[".repeat(15), "]".repeat(15));
        assert!(parse(&ok_depth).is_ok());
        let too_deep = format!("{{\"a\":{}1{}}}", "[".repeat(16), "]".repeat(16));
        assert!(parse(&too_deep).is_err());
        let members: Vec<String> = (0..65).map(|i| format!("\"k{i}\":0")).collect();
        assert!(
            parse(&format!("{{{}}}", members.join(",")))
                .unwrap_err()
                .contains("members")
        );
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(5000));
        assert!(parse(&long).unwrap_err().contains("string"));
        assert!(parse(r#"{"a":1e400}"#).is_err());
        let arr = format!("{{\"a\":[{}]}}", vec!["0"; 300].join(","));
        assert!(parse(&arr).unwrap_err().contains("array"));
    }
}
