//! The claims a token carries, typed.

use crate::codec::rfc3339;
use crate::scope::ScopeSet;
use crate::token::claims_json::{ClaimsObject, Field};
use crate::token::error::VerifyError;
pub(crate) use crate::token::ids::{
    Environment, FamilyId, InvalidId, TokenId, TokenType, check_text,
};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use time::OffsetDateTime;

/// The claims of a token.
///
/// Built by the [`Issuer`](crate::Issuer) when minting and by the [`Verifier`](crate::Verifier)
/// after the signature has been checked. Times are UTC with whole seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub(crate) issuer: Arc<str>,
    pub(crate) subject: Arc<str>,
    pub(crate) audience: Arc<str>,
    pub(crate) environment: Environment,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) not_before: Option<OffsetDateTime>,
    pub(crate) issued_at: OffsetDateTime,
    pub(crate) token_id: TokenId,
    pub(crate) scopes: ScopeSet,
    pub(crate) owner: Option<String>,
    pub(crate) purpose: Option<String>,
    pub(crate) family: Option<FamilyId>,
    pub(crate) other: Map<String, Value>,
}

impl Claims {
    /// `iss`: who issued the token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `sub`: the consumer the token was issued to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `aud`: the service the token is for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// `env`: the environment the token belongs to.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// `exp`: when the token stops verifying.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// `nbf`: when the token starts verifying, if it says.
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        self.not_before
    }

    /// `iat`: when the token was issued.
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// `jti`: the token's unique id.
    pub fn token_id(&self) -> &TokenId {
        &self.token_id
    }

    /// `scope`: what the token may touch.
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// `owner`: the person or team answerable for the consumer, if set.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// `purpose`: what the token is for, if set.
    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }

    /// `fam`: the refresh-token family the token belongs to, if any.
    pub fn family(&self) -> Option<&FamilyId> {
        self.family.as_ref()
    }

    /// `uses`: how many times the token may be used, if it is use-limited
    /// ([`TokenRequest::max_uses`](crate::TokenRequest::max_uses)). `None` without the claim,
    /// and for a claim that is not an integer in 1..=[`MAX_USES`](crate::usage::MAX_USES)
    /// (which no verifier accepts).
    pub fn max_uses(&self) -> Option<u32> {
        crate::token::usage::uses_of(&self.other).ok().flatten()
    }

    /// Claims this library does not define, preserved as signed (`net` and `uses` among them).
    ///
    /// # Security
    /// They are authenticated but never used for authorization; only [`Claims::scopes`] is.
    pub fn other(&self) -> &Map<String, Value> {
        &self.other
    }

    /// The claims as the JSON object that is signed.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json_len_hint());
        self.write_json_into(&mut out);
        out
    }

    /// Appends [`to_json`](Self::to_json)'s bytes to `out`.
    pub(crate) fn write_json_into(&self, out: &mut Vec<u8>) {
        self.write_json(out, |t, out| {
            out.push(b'"');
            rfc3339::write(t, out);
            out.push(b'"');
        });
    }

    /// How long the claims are as JSON when no text needs escaping and there are no other
    /// claims (every token an issuer mints), for sizing a buffer; at least that otherwise.
    pub(crate) fn json_len_hint(&self) -> usize {
        // `"name":"…"` is the name and value plus 5, then commas and braces; times are 20
        // characters (`YYYY-MM-DDTHH:MM:SSZ`) in quotes.
        let member = |name: &str, value: usize| name.len() + 5 + value;
        let text = member("aud", self.audience.len())
            + member("env", self.environment.as_str().len())
            + member("exp", 20)
            + member("iat", 20)
            + member("iss", self.issuer.len())
            + member("jti", self.token_id.as_str().len())
            + member("scope", self.scopes.as_str().len())
            + member("sub", self.subject.len());
        let optional = self
            .family
            .as_ref()
            .map_or(0, |f| member("fam", f.as_str().len()))
            + self.not_before.map_or(0, |_| member("nbf", 20))
            + self.owner.as_ref().map_or(0, |o| member("owner", o.len()))
            + self
                .purpose
                .as_ref()
                .map_or(0, |p| member("purpose", p.len()));
        let members = 8
            + usize::from(self.family.is_some())
            + usize::from(self.not_before.is_some())
            + usize::from(self.owner.is_some())
            + usize::from(self.purpose.is_some());
        text + optional + (members - 1) + 2
    }

    /// The claims as a JWT claims set: the same, with NumericDate times.
    #[cfg(feature = "jwt")]
    pub(crate) fn to_jwt_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json_len_hint());
        self.write_json(&mut out, |t, out| {
            out.extend_from_slice(t.unix_timestamp().to_string().as_bytes());
        });
        out
    }

    /// Writes the claims as one compact JSON object, members in byte order of their names:
    /// the bytes `serde_json` writes for the same map (a test holds it to that), without
    /// building the map.
    fn write_json(&self, out: &mut Vec<u8>, time: impl Fn(OffsetDateTime, &mut Vec<u8>)) {
        if self.other.is_empty() {
            self.write_known_json(out, time);
            return;
        }
        enum Member<'a> {
            Str(&'a str),
            Time(OffsetDateTime),
            Value(&'a Value),
        }
        let mut members: Vec<(&str, Member<'_>)> = Vec::with_capacity(12 + self.other.len());
        members.extend([
            ("aud", Member::Str(&self.audience)),
            ("env", Member::Str(self.environment.as_str())),
            ("exp", Member::Time(self.expires_at)),
            ("iat", Member::Time(self.issued_at)),
            ("iss", Member::Str(&self.issuer)),
            ("jti", Member::Str(self.token_id.as_str())),
            ("scope", Member::Str(self.scopes.as_str())),
            ("sub", Member::Str(&self.subject)),
        ]);
        let optional = [
            ("fam", self.family.as_ref().map(|f| Member::Str(f.as_str()))),
            ("nbf", self.not_before.map(Member::Time)),
            ("owner", self.owner.as_deref().map(Member::Str)),
            ("purpose", self.purpose.as_deref().map(Member::Str)),
        ];
        members.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        // Claims this library defines win over an `other` member of the same name.
        for (k, v) in &self.other {
            if !members.iter().any(|(name, _)| *name == k.as_str()) {
                members.push((k, Member::Value(v)));
            }
        }
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.push(b'{');
        for (i, (name, value)) in members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_string(name, out);
            out.push(b':');
            match value {
                Member::Str(s) => json_string(s, out),
                Member::Time(t) => time(*t, out),
                // Writing an already-parsed value into memory cannot fail.
                Member::Value(v) => serde_json::to_writer(&mut *out, v).unwrap_or_default(),
            }
        }
        out.push(b'}');
    }

    /// [`write_json`](Self::write_json) when the claims are only the ones this library
    /// defines (every token an issuer mints): written in their order, without sorting.
    fn write_known_json(&self, out: &mut Vec<u8>, time: impl Fn(OffsetDateTime, &mut Vec<u8>)) {
        // `{"name":` for the first member, `,"name":` for the others.
        let name = |out: &mut Vec<u8>, separator: u8, name: &str| {
            out.push(separator);
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        name(out, b'{', "aud");
        json_string(&self.audience, out);
        name(out, b',', "env");
        json_string(self.environment.as_str(), out);
        name(out, b',', "exp");
        time(self.expires_at, out);
        if let Some(family) = &self.family {
            name(out, b',', "fam");
            json_string(family.as_str(), out);
        }
        name(out, b',', "iat");
        let iat_at = out.len();
        time(self.issued_at, out);
        let iat = iat_at..out.len();
        name(out, b',', "iss");
        json_string(&self.issuer, out);
        name(out, b',', "jti");
        json_string(self.token_id.as_str(), out);
        if let Some(nbf) = self.not_before {
            name(out, b',', "nbf");
            if nbf == self.issued_at {
                // Issuers set `nbf` to `iat`: the same bytes again.
                out.extend_from_within(iat);
            } else {
                time(nbf, out);
            }
        }
        if let Some(owner) = &self.owner {
            name(out, b',', "owner");
            json_string(owner, out);
        }
        if let Some(purpose) = &self.purpose {
            name(out, b',', "purpose");
            json_string(purpose, out);
        }
        name(out, b',', "scope");
        json_string(self.scopes.as_str(), out);
        name(out, b',', "sub");
        json_string(&self.subject, out);
        out.push(b'}');
    }

    /// The former map-based encoding, kept to check [`Claims::write_json`] against.
    #[cfg(test)]
    fn to_json_with(&self, time: impl Fn(OffsetDateTime) -> Value) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("exp".into(), time(self.expires_at));
        if let Some(nbf) = self.not_before {
            m.insert("nbf".into(), time(nbf));
        }
        m.insert("iat".into(), time(self.issued_at));
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), Value::String(v));
        };
        put("iss", self.issuer.to_string());
        put("sub", self.subject.to_string());
        put("aud", self.audience.to_string());
        put("env", self.environment.as_str().to_owned());
        put("jti", self.token_id.as_str().to_owned());
        put("scope", self.scopes.to_string());
        if let Some(o) = &self.owner {
            put("owner", o.clone());
        }
        if let Some(p) = &self.purpose {
            put("purpose", p.clone());
        }
        if let Some(f) = &self.family {
            put("fam", f.as_str().to_owned());
        }
        for (k, v) in &self.other {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        // Serialising a map of strings and already-parsed values cannot fail.
        serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
    }

    /// Types the claims of a verified JWT payload: NumericDate times (JSON integers within
    /// 1970..=9999; strings and floats refused) and an `aud` that may be an array, in which
    /// case it must hold `expected_audience` (which then becomes the claims' audience).
    #[cfg(feature = "jwt")]
    pub(crate) fn from_jwt_object(
        mut object: ClaimsObject<'_>,
        expected_audiences: &[Arc<str>],
    ) -> Result<Self, VerifyError> {
        for name in ["exp", "nbf", "iat"] {
            let Some(v) = object.get_mut(name) else {
                continue;
            };
            let seconds = match v {
                Field::Value(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_i64(),
                _ => None,
            };
            let t = seconds
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .filter(|t| (1970..=9999).contains(&t.year()))
                .ok_or_else(|| {
                    VerifyError::claims(format!(
                        "claim `{name}` must be a NumericDate: an integer number of seconds \
                         between 1970 and 9999 (strings and fractions are refused)"
                    ))
                })?;
            *v = Field::Value(Value::String(rfc3339::format(t)));
        }
        if let Some(aud) = object.get_mut("aud")
            && let Field::Value(Value::Array(audiences)) = aud
        {
            if audiences.is_empty() || !audiences.iter().all(Value::is_string) {
                return Err(VerifyError::claims(
                    "claim `aud` must be a string or a non-empty array of strings",
                ));
            }
            // The first of the token's audiences the verifier accepts, else its first.
            let chosen = audiences
                .iter()
                .filter_map(Value::as_str)
                .find(|a| expected_audiences.iter().any(|e| &**e == *a))
                .or_else(|| audiences.first().and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned();
            *aud = Field::Value(Value::String(chosen));
        }
        Self::from_object(object, None)
    }

    /// Types the claims of a verified payload, already parsed strictly. With what the
    /// verifier `expected`, an issuer, audience or environment equal to it shares the
    /// verifier's value rather than checking and copying the text again.
    pub(crate) fn from_object(
        mut map: ClaimsObject<'_>,
        expected: Option<&Expected<'_>>,
    ) -> Result<Self, VerifyError> {
        use crate::token::claims_json::known;
        let issuer = take_shared(&mut map, const { known("iss") }, expected.map(|e| e.issuer))?;
        let subject = take_text(&mut map, const { known("sub") })?.into();
        let audience = take_shared_of(
            &mut map,
            const { known("aud") },
            expected.map_or(&[], |e| e.audiences),
        )?;
        let environment = match (map.take_at(const { known("env") }), expected) {
            (Some(Field::Str(text)), Some(ours)) if text == ours.environment.as_str() => {
                ours.environment.clone()
            }
            (field, _) => parsed_of::<Environment>(field, const { known("env") })?,
        };
        let expires_at = take_time(&mut map, const { known("exp") })?.ok_or_else(|| {
            VerifyError::claims("claim `exp` is missing: every token must expire")
        })?;
        // Issuers write `nbf` equal to `iat`: the same text is parsed once.
        let nbf = map.take_at(const { known("nbf") });
        let iat = map.take_at(const { known("iat") });
        let same = matches!((&nbf, &iat), (Some(Field::Str(n)), Some(Field::Str(i))) if n == i);
        let not_before = time_of(nbf, const { known("nbf") })?;
        let issued_at = if same {
            not_before
        } else {
            time_of(iat, const { known("iat") })?
        }
        .ok_or_else(|| VerifyError::claims("claim `iat` is missing"))?;
        let token_id = take_parsed::<TokenId>(&mut map, const { known("jti") })?;
        let scope_text = take_string(&mut map, const { known("scope") })?
            .ok_or_else(|| VerifyError::claims("claim `scope` is missing"))?;
        let scopes = match scope_text {
            Cow::Borrowed(text) => text.parse(),
            Cow::Owned(text) => ScopeSet::parse_owned(text),
        }
        .map_err(|e| VerifyError::claims(format!("claim `scope` is invalid: {e}")))?;
        if scopes.is_empty() {
            return Err(VerifyError::claims("claim `scope` grants nothing"));
        }
        let owner = take_optional_text(&mut map, const { known("owner") })?;
        let purpose = take_optional_text(&mut map, const { known("purpose") })?;
        let family = match take_string(&mut map, const { known("fam") })? {
            None => None,
            Some(f) => Some(f.parse().map_err(|e: InvalidId| {
                VerifyError::claims(format!("claim `fam` is invalid: {e}"))
            })?),
        };
        Ok(Self {
            issuer,
            subject,
            audience,
            environment,
            expires_at,
            not_before,
            issued_at,
            token_id,
            scopes,
            owner,
            purpose,
            family,
            other: map.other,
        })
    }
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it.
fn json_string(s: &str, out: &mut Vec<u8>) {
    // serde_json escapes only `"`, `\` and control characters below U+0020; a string without
    // them is written as it is.
    if crate::codec::json::plain_len(s.as_bytes()) == s.len() {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing into memory cannot fail.
    serde_json::to_writer(out, s).unwrap_or_default();
}

/// The claim at `at` in [`KNOWN_CLAIMS`](crate::token::claims_json::KNOWN_CLAIMS) as a string, if present.
fn take_string<'de>(
    map: &mut ClaimsObject<'de>,
    at: usize,
) -> Result<Option<Cow<'de, str>>, VerifyError> {
    string_of(map.take_at(at), at)
}

/// The claim at `at`, taken out as `field`, as a string, if present.
fn string_of(field: Option<Field<'_>>, at: usize) -> Result<Option<Cow<'_, str>>, VerifyError> {
    match field {
        None => Ok(None),
        Some(Field::Str(s)) => Ok(Some(Cow::Borrowed(s))),
        Some(Field::Value(Value::String(s))) => Ok(Some(Cow::Owned(s))),
        Some(Field::Value(_)) => Err(VerifyError::claims(format!(
            "claim `{}` must be a string",
            name_at(at)
        ))),
    }
}

fn name_at(at: usize) -> &'static str {
    crate::token::claims_json::KNOWN_CLAIMS
        .get(at)
        .copied()
        .unwrap_or("?")
}

/// What a verifier expects of every token, for [`Claims::from_object`] to share.
pub(crate) struct Expected<'a> {
    /// The issuer, checked by [`check_text`] when the verifier was built.
    pub(crate) issuer: &'a Arc<str>,
    /// The audiences, checked by [`check_text`] when the verifier was built.
    pub(crate) audiences: &'a [Arc<str>],
    /// The environment.
    pub(crate) environment: &'a Environment,
}

/// The text claim at `at`: `ours` itself when the text is the same (it was checked when the
/// verifier was built), otherwise the text, checked.
fn take_shared(
    map: &mut ClaimsObject<'_>,
    at: usize,
    ours: Option<&Arc<str>>,
) -> Result<Arc<str>, VerifyError> {
    match (map.take_at(at), ours) {
        (Some(Field::Str(text)), Some(ours)) if text == &**ours => Ok(ours.clone()),
        (field, _) => Ok(required(at, text_of(field, at)?)?.into()),
    }
}

/// As [`take_shared`], sharing whichever of `ours` the text is.
fn take_shared_of(
    map: &mut ClaimsObject<'_>,
    at: usize,
    ours: &[Arc<str>],
) -> Result<Arc<str>, VerifyError> {
    let field = map.take_at(at);
    if let Some(Field::Str(text)) = &field
        && let Some(ours) = ours.iter().find(|o| *text == &***o)
    {
        return Ok(ours.clone());
    }
    Ok(required(at, text_of(field, at)?)?.into())
}

fn required<T>(at: usize, value: Option<T>) -> Result<T, VerifyError> {
    value.ok_or_else(|| VerifyError::claims(format!("claim `{}` is missing", name_at(at))))
}

fn take_text(map: &mut ClaimsObject<'_>, at: usize) -> Result<String, VerifyError> {
    required(at, take_optional_text(map, at)?)
}

fn take_optional_text(
    map: &mut ClaimsObject<'_>,
    at: usize,
) -> Result<Option<String>, VerifyError> {
    text_of(map.take_at(at), at)
}

/// The claim at `at`, taken out as `field`, as checked text, if present.
fn text_of(field: Option<Field<'_>>, at: usize) -> Result<Option<String>, VerifyError> {
    let Some(s) = string_of(field, at)? else {
        return Ok(None);
    };
    check_text(name_at(at), &s).map_err(|e| VerifyError::claims(format!("claim {e}")))?;
    Ok(Some(s.into_owned()))
}

fn take_parsed<T: FromStr<Err = InvalidId>>(
    map: &mut ClaimsObject<'_>,
    at: usize,
) -> Result<T, VerifyError> {
    parsed_of(map.take_at(at), at)
}

/// The claim at `at`, taken out as `field`, parsed.
fn parsed_of<T: FromStr<Err = InvalidId>>(
    field: Option<Field<'_>>,
    at: usize,
) -> Result<T, VerifyError> {
    let name = name_at(at);
    let s = string_of(field, at)?
        .ok_or_else(|| VerifyError::claims(format!("claim `{name}` is missing")))?;
    s.parse()
        .map_err(|e| VerifyError::claims(format!("claim `{name}` is invalid: {e}")))
}

fn take_time(map: &mut ClaimsObject<'_>, at: usize) -> Result<Option<OffsetDateTime>, VerifyError> {
    time_of(map.take_at(at), at)
}

/// The claim at `at`, taken out as `field`, as a time.
fn time_of(field: Option<Field<'_>>, at: usize) -> Result<Option<OffsetDateTime>, VerifyError> {
    let name = name_at(at);
    let s = match field {
        None => return Ok(None),
        Some(Field::Str(s)) => Cow::Borrowed(s),
        Some(Field::Value(Value::String(s))) => Cow::Owned(s),
        Some(Field::Value(_)) => {
            return Err(VerifyError::claims(format!(
                "claim `{name}` must be an RFC 3339 string, not a number or other JSON type"
            )));
        }
    };
    rfc3339::parse(&s).map(Some).ok_or_else(|| {
        VerifyError::claims(format!(
            "claim `{name}` is not a strict RFC 3339 date-time like 2030-01-01T00:00:00Z"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(other: &str, optional: bool, text: &str) -> Claims {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        Claims {
            issuer: format!("https://auth.example/{text}").into(),
            subject: text.into(),
            audience: "api".into(),
            environment: "production".parse().unwrap(),
            expires_at: at(1_900_000_900),
            not_before: optional.then(|| at(1_900_000_000)),
            issued_at: at(1_900_000_000),
            token_id: TokenId::generate().unwrap(),
            scopes: "projects:read billing/invoices:write z:*".parse().unwrap(),
            owner: optional.then(|| format!("team {text}")),
            purpose: optional.then(|| "deploys".to_owned()),
            family: optional.then(|| FamilyId::generate().unwrap()),
            other: serde_json::from_str(other).unwrap(),
        }
    }

    /// The buffer size hint is the exact length of what issuers write, and never more than
    /// the length of claims with escaped text or other members.
    #[test]
    fn the_length_hint_is_exact_for_issued_claims() {
        for optional in [false, true] {
            let c = claims("{}", optional, "plain");
            assert_eq!(c.json_len_hint(), c.to_json().len(), "optional {optional}");
            for (other, text) in [("{}", "quote \" back \\ slash"), (r#"{"x":1}"#, "plain")] {
                let c = claims(other, optional, text);
                assert!(c.json_len_hint() <= c.to_json().len(), "{other} {text}");
            }
        }
    }

    /// What the issuer writes is read by the layout reader, with or without the optional
    /// claims, and reads back as the same claims; text that needs escaping, or a claim of
    /// another name, goes to the general readers and reads back the same too.
    #[test]
    fn issued_claims_take_the_layout_reader() {
        for optional in [false, true] {
            for (other, text, layout) in [
                ("{}", "plain", true),
                ("{}", "quote \" back \\ slash", false),
                (r#"{"x":1}"#, "plain", false),
            ] {
                let c = claims(other, optional, text);
                let json = c.to_json();
                let json = std::str::from_utf8(&json).unwrap();
                assert_eq!(
                    crate::token::claims_json::parse_layout(
                        json,
                        crate::token::claims_json::CLAIMS
                    )
                    .is_some(),
                    layout,
                    "{json}"
                );
                let back = Claims::from_object(
                    crate::token::claims_json::parse_claims(
                        json.as_bytes(),
                        crate::token::claims_json::CLAIMS,
                    )
                    .unwrap(),
                    None,
                )
                .unwrap();
                assert_eq!(back, c, "{json}");
            }
        }
    }

    /// A verifier's own issuer, audience and environment are shared, not copied; any other
    /// is read and checked as always (and refused later by the verifier).
    #[test]
    fn the_verifiers_expectations_are_shared() {
        let environment: Environment = "production".parse().unwrap();
        let (issuer, audience): (Arc<str>, Arc<str>) = ("i".into(), "a".into());
        let audiences = [audience.clone()];
        let ours = Expected {
            issuer: &issuer,
            audiences: &audiences,
            environment: &environment,
        };
        let read = |iss: &str, aud: &str, env: &str| {
            let json = format!(
                r#"{{"aud":"{aud}","env":"{env}","exp":"2030-01-01T00:10:00Z","iat":"2030-01-01T00:00:00Z","iss":"{iss}","jti":"j","scope":"x:read","sub":"s"}}"#
            );
            let object = crate::token::claims_json::parse_claims(
                json.as_bytes(),
                crate::token::claims_json::CLAIMS,
            )
            .unwrap();
            Claims::from_object(object, Some(&ours))
        };
        let same = read("i", "a", "production").unwrap();
        assert!(Arc::ptr_eq(&same.environment.0, &environment.0));
        assert!(Arc::ptr_eq(&same.issuer, &issuer));
        assert!(Arc::ptr_eq(&same.audience, &audience));
        let other = read("j", "b", "staging").unwrap();
        assert_eq!(other.environment.as_str(), "staging");
        assert_eq!((&*other.issuer, &*other.audience), ("j", "b"));
        for bad in ["Production", "", "prod uction"] {
            let e = read("i", "a", bad).unwrap_err();
            assert!(
                e.to_string().contains("claim `env` is invalid"),
                "{bad}: {e}"
            );
        }
        // Text that differs from the verifier's is checked as any other.
        for (iss, aud, fault) in [
            ("", "a", "`iss`"),
            ("i", "", "`aud`"),
            (r"i\u0007", "a", "`iss`"),
        ] {
            let e = read(iss, aud, "production").unwrap_err();
            assert!(e.to_string().contains(fault), "{iss:?} {aud:?}: {e}");
        }
    }

    /// `nbf` and `iat` are each their own value when they differ, one value when the text is
    /// the same, and the first fault found is `nbf`'s either way.
    #[test]
    fn not_before_and_issued_at_are_read_apart() {
        let read = |nbf: &str, iat: &str| {
            let json = format!(
                r#"{{"aud":"a","env":"production","exp":"2030-01-01T00:10:00Z","iat":"{iat}","iss":"i","jti":"j","nbf":"{nbf}","scope":"x:read","sub":"s"}}"#
            );
            Claims::from_object(
                crate::token::claims_json::parse_claims(
                    json.as_bytes(),
                    crate::token::claims_json::CLAIMS,
                )
                .unwrap(),
                None,
            )
        };
        let at = |s: &str| rfc3339::parse(s).unwrap();
        let c = read("2030-01-01T00:05:00Z", "2030-01-01T00:00:00Z").unwrap();
        assert_eq!(c.not_before, Some(at("2030-01-01T00:05:00Z")));
        assert_eq!(c.issued_at, at("2030-01-01T00:00:00Z"));
        let c = read("2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z").unwrap();
        assert_eq!(c.not_before, Some(c.issued_at));
        assert_eq!(c.issued_at, at("2030-01-01T00:00:00Z"));
        for (nbf, iat, fault) in [
            ("2030-01-01T00:00:60Z", "2030-01-01T00:00:00Z", "`nbf`"),
            ("2030-01-01T00:00:00Z", "2030-01-01T00:00:60Z", "`iat`"),
            ("2030-01-01T00:00:60Z", "2030-01-01T00:00:60Z", "`nbf`"),
        ] {
            let e = read(nbf, iat).unwrap_err();
            assert!(e.to_string().contains(fault), "{e}");
        }
    }

    /// The direct writer produces the bytes the map-based encoding produced, member order
    /// included, for both time encodings.
    #[test]
    fn writer_matches_the_map_encoding() {
        for other in [
            "{}",
            r#"{"a":1,"zz":[true,null,{"k":"v"}],"m":-2.5}"#,
            r#"{"aud":"shadowed","owner":"from other","nbf":5,"fam":"x","purpose":"p"}"#,
            r#"{"scopes":"not ours","\u00e9":"\u0000\n\"\\"}"#,
        ] {
            for optional in [false, true] {
                for text in [
                    "plain",
                    "quote \" back \\ slash",
                    "é ü 漢字 \u{7f}",
                    "</script>",
                ] {
                    let mut c = claims(other, optional, text);
                    if text == "plain" && optional {
                        // `nbf` after `iat`, and a time held at another offset.
                        c.not_before = Some(
                            (c.issued_at + time::Duration::minutes(1))
                                .to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap()),
                        );
                    }
                    let rfc = c.to_json_with(|t| Value::String(rfc3339::format(t)));
                    assert_eq!(
                        String::from_utf8(c.to_json()).unwrap(),
                        String::from_utf8(rfc).unwrap()
                    );
                    #[cfg(feature = "jwt")]
                    {
                        let jwt = c.to_json_with(|t| Value::from(t.unix_timestamp()));
                        assert_eq!(
                            String::from_utf8(c.to_jwt_json()).unwrap(),
                            String::from_utf8(jwt).unwrap()
                        );
                    }
                }
            }
        }
    }
}
