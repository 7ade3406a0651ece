//! The claims fast path: reading a claims object into its known members without building a
//! map, under the same limits and with the same refusals as the generic parser in
//! [`codec::json`](crate::codec::json); and the limits for claims and footers.

use crate::codec::json::{Limits, ValueSeed, describe, plain_len};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Limits for claims: generous for real tokens, tight enough to bound the work.
pub(crate) const CLAIMS: Limits = Limits {
    max_depth: 16,
    max_members: 64,
    max_elements: 256,
    max_string: 4096,
};

/// Limits for the footer, which only ever carries a key id.
pub(crate) const FOOTER: Limits = Limits {
    max_depth: 1,
    max_members: 4,
    max_elements: 0,
    max_string: 128,
};

/// The claim names this library defines, in the order [`ClaimsObject`] keeps them.
pub(crate) const KNOWN_CLAIMS: [&str; 12] = [
    "iss", "sub", "aud", "env", "exp", "nbf", "iat", "jti", "scope", "owner", "purpose", "fam",
];

/// The position of `name` in [`KNOWN_CLAIMS`], for constants: `const { known("iss") }`;
/// `KNOWN_CLAIMS.len()`, which holds no member, for any other name.
pub(crate) const fn known(name: &str) -> usize {
    let mut i = 0;
    while i < KNOWN_CLAIMS.len() {
        let (a, b) = (KNOWN_CLAIMS[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    KNOWN_CLAIMS.len()
}

/// A claims object parsed in one pass: the members in [`KNOWN_CLAIMS`] by position, the others
/// in a map. Holds exactly what [`parse_object`] would return, without building a map of the
/// known members only to take them out again, and without copying their strings when they
/// hold no escape.
#[derive(Debug, Default)]
pub(crate) struct ClaimsObject<'de> {
    known: [Option<Field<'de>>; KNOWN_CLAIMS.len()],
    /// The members this library does not define.
    pub(crate) other: Map<String, Value>,
}

/// The value of a known member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<'de> {
    /// A string without escapes, borrowed from the input.
    Str(&'de str),
    /// Any other value (including strings that held escapes).
    Value(Value),
}

impl Field<'_> {
    /// The value as a [`Value`].
    #[cfg(test)]
    fn into_value(self) -> Value {
        match self {
            Self::Str(s) => Value::String(s.to_owned()),
            Self::Value(v) => v,
        }
    }
}

impl<'de> ClaimsObject<'de> {
    fn index(name: &str) -> Option<usize> {
        // A `match` compiles to a switch on length and bytes; `KNOWN_CLAIMS` order.
        Some(match name {
            "iss" => 0,
            "sub" => 1,
            "aud" => 2,
            "env" => 3,
            "exp" => 4,
            "nbf" => 5,
            "iat" => 6,
            "jti" => 7,
            "scope" => 8,
            "owner" => 9,
            "purpose" => 10,
            "fam" => 11,
            _ => return None,
        })
    }

    /// Removes and returns the member `name`, which must be one of [`KNOWN_CLAIMS`].
    #[cfg(test)]
    pub(crate) fn take(&mut self, name: &str) -> Option<Field<'de>> {
        Self::index(name).and_then(|i| self.known[i].take())
    }

    /// Removes and returns the member at `position` in [`KNOWN_CLAIMS`] (see [`known`]).
    pub(crate) fn take_at(&mut self, position: usize) -> Option<Field<'de>> {
        self.known.get_mut(position).and_then(Option::take)
    }

    /// The member `name`, which must be one of [`KNOWN_CLAIMS`].
    #[cfg(feature = "jwt")]
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Field<'de>> {
        Self::index(name).and_then(|i| self.known[i].as_mut())
    }
}

/// Parses `bytes` as one JSON object of claims under `limits`: the same refusals, in the same
/// order, as [`parse_object`].
pub(crate) fn parse_claims(bytes: &[u8], limits: Limits) -> Result<ClaimsObject<'_>, String> {
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return Err("not a JSON object (or whitespace around it)".to_owned());
    }
    if let Some(claims) = parse_flat(bytes, limits) {
        return Ok(claims);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let claims =
        de::Deserializer::deserialize_map(&mut de, ClaimsVisitor(ValueSeed { depth: 0, limits }))
            .map_err(|e| describe(&e))?;
    de.end().map_err(|e| describe(&e))?;
    Ok(claims)
}

/// The shape every PASETO token of this library has, read without serde: one object, no
/// whitespace, every member a string without escapes or control characters, within `limits`
/// and without duplicate names. `None` for anything else, and then the general parser decides
/// (and names what is wrong); when this returns a value, it is the value the general parser
/// returns (a property test holds it to that).
fn parse_flat(bytes: &[u8], limits: Limits) -> Option<ClaimsObject<'_>> {
    if limits.max_depth == 0 {
        return None;
    }
    // Outside strings only ASCII punctuation is accepted below, so validating the whole input
    // is validating every string.
    let text = std::str::from_utf8(bytes).ok()?;
    parse_layout(text, limits).or_else(|| parse_members(text, limits))
}

/// [`parse_flat`] member by member, in any order, for valid UTF-8 `text`.
fn parse_members(text: &str, limits: Limits) -> Option<ClaimsObject<'_>> {
    let b = text.as_bytes();
    let mut out = ClaimsObject::default();
    if b == b"{}" {
        return Some(out);
    }
    let mut i = 1;
    let mut members = 0;
    loop {
        let name = flat_string(text, &mut i, limits)?;
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        let value = flat_string(text, &mut i, limits)?;
        members += 1;
        if members > limits.max_members {
            return None;
        }
        match ClaimsObject::index(name) {
            Some(k) => {
                if out.known[k].is_some() {
                    return None;
                }
                out.known[k] = Some(Field::Str(value));
            }
            None => {
                if out.other.contains_key(name) {
                    return None;
                }
                out.other
                    .insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') if i + 1 == b.len() => return Some(out),
            _ => return None,
        }
    }
}

/// What an issuer of this library writes: the claims it defines in byte order of their names,
/// each as `"name":"` and the separator before it, and whether every token has it.
const LAYOUT: [(usize, &[u8], bool); 12] = [
    (known("aud"), br#"{"aud":""#, true),
    (known("env"), br#"","env":""#, true),
    (known("exp"), br#"","exp":""#, true),
    (known("fam"), br#"","fam":""#, false),
    (known("iat"), br#"","iat":""#, true),
    (known("iss"), br#"","iss":""#, true),
    (known("jti"), br#"","jti":""#, true),
    (known("nbf"), br#"","nbf":""#, false),
    (known("owner"), br#"","owner":""#, false),
    (known("purpose"), br#"","purpose":""#, false),
    (known("scope"), br#"","scope":""#, true),
    (known("sub"), br#"","sub":""#, true),
];

/// [`parse_flat`] for the claims in the order and form an issuer writes them ([`LAYOUT`], plain
/// strings, nothing else): each name is matched as a constant instead of being read and looked
/// up. `None` for anything else (and then `parse_flat` reads it); when this returns a value,
/// it is the value `parse_flat` returns (a property test holds it to that). `text` is the
/// whole object, past the checks `parse_flat` makes first.
pub(crate) fn parse_layout(text: &str, limits: Limits) -> Option<ClaimsObject<'_>> {
    let b = text.as_bytes();
    let mut out = ClaimsObject::default();
    // At the closing quote of the previous value (at 0 for the first member, whose literal
    // starts with the `{`).
    let mut i = 0;
    let mut members = 0;
    for (position, literal, required) in LAYOUT {
        if !b.get(i..).is_some_and(|rest| rest.starts_with(literal)) {
            if required {
                return None;
            }
            continue;
        }
        members += 1;
        if members > limits.max_members {
            return None;
        }
        let start = i + literal.len();
        let len = plain_len(b.get(start..)?);
        if b.get(start + len) != Some(&b'"') || len > limits.max_string {
            return None;
        }
        // Both ends are next to an ASCII `"`, so they are character boundaries.
        *out.known.get_mut(position)? = Some(Field::Str(text.get(start..start + len)?));
        i = start + len;
    }
    (b.get(i..) == Some(br#""}"#.as_slice())).then_some(out)
}

/// The string starting at `text[*i]` if it is a plain one (no escape, no control character,
/// within `limits`); moves `*i` past it.
fn flat_string<'a>(text: &'a str, i: &mut usize, limits: Limits) -> Option<&'a str> {
    let b = text.as_bytes();
    if b.get(*i) != Some(&b'"') {
        return None;
    }
    let start = *i + 1;
    let len = plain_len(b.get(start..)?);
    if b.get(start + len) != Some(&b'"') || len > limits.max_string {
        return None;
    }
    *i = start + len + 1;
    // Both ends are next to an ASCII `"`, so they are character boundaries.
    text.get(start..start + len)
}

struct ClaimsVisitor(ValueSeed);

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = ClaimsObject<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClaimsObject<'de>, A::Error> {
        let seed = self.0;
        seed.enter()?;
        let mut out = ClaimsObject::default();
        let mut members = 0;
        while let Some(key) = map.next_key_seed(KeySeed(seed.limits))? {
            if members >= seed.limits.max_members {
                return Err(de::Error::custom(format_args!(
                    "object with more than {} members",
                    seed.limits.max_members
                )));
            }
            let duplicate = match &key {
                Key::Known(i) => out.known[*i].is_some(),
                Key::Other(name) => out.other.contains_key(name),
            };
            if duplicate {
                let name = match &key {
                    Key::Known(i) => KNOWN_CLAIMS[*i],
                    Key::Other(name) => name.as_str(),
                };
                let shown: String = name.chars().take(32).collect();
                return Err(de::Error::custom(format_args!(
                    "duplicate member {shown:?}"
                )));
            }
            match key {
                Key::Known(i) => {
                    out.known[i] = Some(map.next_value_seed(FieldSeed(seed.nested()))?)
                }
                Key::Other(name) => {
                    out.other.insert(name, map.next_value_seed(seed.nested())?);
                }
            }
            members += 1;
        }
        Ok(out)
    }
}

/// The value of a known member: [`ValueSeed`], but borrowing strings without escapes.
struct FieldSeed(ValueSeed);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
        self.0.string(v)?;
        Ok(Field::Str(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field<'de>, E> {
        self.0.visit_bool(v).map(Field::Value)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field<'de>, E> {
        self.0.visit_i64(v).map(Field::Value)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<'de>, E> {
        self.0.visit_u64(v).map(Field::Value)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field<'de>, E> {
        self.0.visit_f64(v).map(Field::Value)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<'de>, E> {
        self.0.visit_str(v).map(Field::Value)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field<'de>, E> {
        self.0.visit_string(v).map(Field::Value)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field<'de>, E> {
        self.0.visit_unit().map(Field::Value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field<'de>, A::Error> {
        self.0.visit_seq(seq).map(Field::Value)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<'de>, A::Error> {
        self.0.visit_map(map).map(Field::Value)
    }
}

/// A member name: one of [`KNOWN_CLAIMS`] (not allocated) or another.
enum Key {
    Known(usize),
    Other(String),
}

struct KeySeed(Limits);

impl KeySeed {
    fn key<E: de::Error>(&self, v: &str) -> Result<Option<Key>, E> {
        if v.len() > self.0.max_string {
            return Err(E::custom(format_args!(
                "string longer than {} bytes",
                self.0.max_string
            )));
        }
        Ok(ClaimsObject::index(v).map(Key::Known))
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(self.key(v)?.unwrap_or_else(|| Key::Other(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(self.key(&v)?.unwrap_or(Key::Other(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::parse_object;

    fn parse(s: &str) -> Result<Map<String, Value>, String> {
        parse_object(s.as_bytes(), CLAIMS)
    }

    /// `parse_claims` is `parse_object` split in two: same refusals, same messages, same
    /// members.
    #[test]
    fn claims_parser_agrees_with_the_generic_parser() {
        let members: Vec<String> = (0..65).map(|i| format!("\"k{i}\":0")).collect();
        let many = format!("{{{}}}", members.join(","));
        let known_many = format!(
            "{{{},{}}}",
            KNOWN_CLAIMS.map(|k| format!("\"{k}\":1")).join(","),
            members[..52].join(",")
        );
        let long_name = format!("{{\"{}\":1}}", "x".repeat(5000));
        let deep = format!("{{\"scope\":{}1{}}}", "[".repeat(16), "]".repeat(16));
        let inputs: Vec<&str> = vec![
            r#"{"iss":"a","sub":"b","x":{"y":[1,2.5,null,true]},"scope":"p:read"}"#,
            r#"{"iss":"a","iss":"b"}"#,
            r#"{"iss":"a","\u0069ss":"b"}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"x":1,"\u0078":2}"#,
            r#"{"exp":{"a":1,"a":2}}"#,
            r#"{"aud":["a","b"],"exp":1700000000}"#,
            r#"{"iss":"a",}"#,
            r#"{"iss":"a"} "#,
            r#"{"iss":"a"}{}"#,
            r#"{"scope":1e400}"#,
            "{}",
            "[]",
            "",
            &many,
            &known_many,
            &long_name,
            &deep,
        ];
        for input in inputs {
            let generic = parse(input);
            let claims = parse_claims(input.as_bytes(), CLAIMS);
            match (generic, claims) {
                (Ok(mut map), Ok(mut object)) => {
                    for name in KNOWN_CLAIMS {
                        let field = object.take(name).map(Field::into_value);
                        assert_eq!(map.remove(name), field, "{input}: {name}");
                    }
                    assert_eq!(map, object.other, "{input}");
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{input}"),
                (a, b) => panic!("{input}: generic {a:?}, claims {b:?}"),
            }
        }
    }

    fn agree(input: &[u8]) -> Result<(), String> {
        let generic = parse_object(input, CLAIMS);
        let claims = parse_claims(input, CLAIMS);
        let shown = String::from_utf8_lossy(input);
        match (generic, claims) {
            (Ok(mut map), Ok(mut object)) => {
                for name in KNOWN_CLAIMS {
                    let field = object.take(name).map(Field::into_value);
                    if map.remove(name) != field {
                        return Err(format!("{shown}: {name} differs"));
                    }
                }
                if map != object.other {
                    return Err(format!("{shown}: other members differ"));
                }
            }
            (Err(a), Err(b)) if a == b => {}
            (a, b) => return Err(format!("{shown}: generic {a:?}, claims {b:?}")),
        }
        Ok(())
    }

    proptest::proptest! {
        /// Objects of strings built from a hostile alphabet (quotes, escapes, controls,
        /// separators, non-ASCII): the flat reader and the general parser agree on every one.
        #[test]
        fn flat_reader_agrees_with_the_general_parser(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "iss", "sub", "aud", "scope", "jti", "x", "y", "iss",
                    ]),
                    proptest::prop_oneof![
                        3 => "[a-zé ]{0,6}",
                        1 => "[a-z\"\\\\:,{}\u{1}\u{7f}é ]{0,6}",
                    ],
                ),
                0..6,
            ),
            separator in proptest::sample::select(vec![",", ", ", ",,", ":"]),
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..24),
        ) {
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":\"{v}\""))
                .collect();
            let object = format!("{{{}}}", body.join(separator));
            proptest::prop_assert_eq!(agree(object.as_bytes()), Ok(()));
            let mut bytes = b"{\"iss\":\"".to_vec();
            bytes.extend_from_slice(&raw);
            bytes.extend_from_slice(b"\"}");
            proptest::prop_assert_eq!(agree(&bytes), Ok(()));
        }
    }

    #[test]
    fn flat_reader_edges_agree() {
        let long = format!(r#"{{"iss":"{}"}}"#, "x".repeat(4097));
        let edge = format!(r#"{{"iss":"{}"}}"#, "x".repeat(4096));
        let members: Vec<String> = (0..65).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let many = format!("{{{}}}", members.join(","));
        let enough = format!("{{{}}}", members[..64].join(","));
        for input in [
            "{}",
            r#"{"iss":"a"}"#,
            r#"{"iss":"a","iss":"b"}"#,
            r#"{"x":"a","x":"b"}"#,
            r#"{"iss":"a\"b"}"#,
            r#"{"iss":"a\u0041"}"#,
            "{\"iss\":\"a\u{1}\"}",
            "{\"iss\":\"a\u{7f}é漢\"}",
            r#"{"iss":"a",}"#,
            r#"{"iss":"a"}}"#,
            r#"{"iss":"a"x}"#,
            r#"{"iss" :"a"}"#,
            r#"{"iss":1}"#,
            r#"{"iss":"a","exp":1}"#,
            r#"{"":""}"#,
            &long,
            &edge,
            &many,
            &enough,
        ] {
            assert_eq!(agree(input.as_bytes()), Ok(()));
        }
        assert_eq!(agree(b"{\"iss\":\"\xff\"}"), Ok(()));
        assert!(parse_flat(br#"{"iss":"a","x":"b"}"#, CLAIMS).is_some());
    }

    type Members<'a> = (Vec<Option<Field<'a>>>, Map<String, Value>);

    /// Both readers' results, member by member, for comparing.
    fn fields(object: Option<ClaimsObject<'_>>) -> Option<Members<'_>> {
        object.map(|o| (o.known.to_vec(), o.other))
    }

    proptest::proptest! {
        /// Claims in the issuer's layout, with any subset of the optional members, sometimes
        /// out of order, with a member of another name, or with a hostile value: the layout
        /// reader returns nothing or exactly what the member-by-member reader returns, and it
        /// always takes plain values in the layout.
        #[test]
        fn layout_reader_agrees_with_the_member_reader(
            present in proptest::collection::vec(proptest::bool::ANY, LAYOUT.len()),
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    6 => "[a-zA-Z0-9:/. _-]{0,12}",
                    1 => "[a-z\"\\:,{}\u{1}é ]{0,6}",
                ],
                LAYOUT.len(),
            ),
            swap in proptest::option::of((0usize..12, 0usize..12)),
            extra in proptest::option::of((0usize..13, "[a-z]{1,8}")),
        ) {
            let mut members: Vec<(String, String)> = LAYOUT
                .iter()
                .zip(&present)
                .zip(&values)
                .filter(|(((_, _, required), present), _)| *required || **present)
                .map(|(((at, _, _), _), v)| (KNOWN_CLAIMS[*at].to_owned(), v.clone()))
                .collect();
            let plain = members.iter().all(|(_, v)| plain_len(v.as_bytes()) == v.len());
            let mut altered = false;
            if let Some((a, b)) = swap {
                let (a, b) = (a % members.len(), b % members.len());
                altered |= a != b;
                members.swap(a, b);
            }
            if let Some((at, name)) = extra {
                members.insert(at.min(members.len()), (name, "v".to_owned()));
                altered = true;
            }
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":\"{v}\""))
                .collect();
            let text = format!("{{{}}}", body.join(","));
            let layout = parse_layout(&text, CLAIMS);
            if plain && !altered {
                proptest::prop_assert!(layout.is_some(), "{}", text);
            }
            if layout.is_some() {
                proptest::prop_assert_eq!(fields(layout), fields(parse_members(&text, CLAIMS)), "{}", text);
            }
            proptest::prop_assert_eq!(agree(text.as_bytes()), Ok(()));
        }

        /// The word-at-a-time scan finds what a byte loop finds.
        #[test]
        fn plain_len_is_the_first_special_byte(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 0x20u8..0x7f,
                    1 => proptest::num::u8::ANY,
                    1 => proptest::sample::select(vec![b'"', b'\\', 0, 0x1f, 0x20, 0x7f, 0x80, 0xff, 0xa2, 0xdc]),
                ],
                0..40,
            ),
        ) {
            let naive = bytes
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(bytes.len());
            proptest::prop_assert_eq!(plain_len(&bytes), naive);
        }
    }

    #[test]
    fn known_claims_are_found_at_their_position() {
        for (i, name) in KNOWN_CLAIMS.iter().enumerate() {
            assert_eq!(ClaimsObject::index(name), Some(i));
            assert_eq!(known(name), i);
        }
        for (at, literal, _) in LAYOUT {
            let name = KNOWN_CLAIMS[at];
            assert!(
                literal.ends_with(format!("\"{name}\":\"").as_bytes()),
                "{name}"
            );
        }
        for other in ["", "is", "isss", "ISS", "scopes", "Scope", "fam ", "kid"] {
            assert_eq!(ClaimsObject::index(other), None);
            assert_eq!(known(other), KNOWN_CLAIMS.len());
        }
    }

    #[test]
    fn footer_limits_allow_only_a_flat_small_object() {
        assert!(parse_object(br#"{"kid":"k4.pid.x"}"#, FOOTER).is_ok());
        assert!(parse_object(br#"{"kid":{"a":1}}"#, FOOTER).is_err());
        assert!(parse_object(br#"{"a":1,"b":2,"c":3,"d":4,"e":5}"#, FOOTER).is_err());
    }
}
