//! The ids and small types claims are made of: environments, token and family ids, token
//! types, and the rule for free-text claims.

use std::fmt;
use std::str::FromStr;

/// Longest accepted issuer, audience, subject, owner or purpose, in bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// Checks a free-text claim: non-empty, at most [`MAX_TEXT_LEN`] bytes, no control characters.
pub(crate) fn check_text(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("`{name}` must not be empty"));
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(format!("`{name}` is longer than {MAX_TEXT_LEN} bytes"));
    }
    // Printable ASCII (the usual case) in one byte pass; otherwise decode the characters.
    let printable = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable && value.chars().any(char::is_control) {
        return Err(format!("`{name}` contains a control character"));
    }
    Ok(())
}

/// Which kind of id was invalid, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidIdKind {
    /// An [`Environment`].
    Environment,
    /// A [`TokenId`].
    TokenId,
    /// A [`FamilyId`].
    FamilyId,
}

/// An invalid environment, token id or family id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {rule}")]
pub struct InvalidId {
    what: &'static str,
    value: String,
    rule: &'static str,
}

impl InvalidId {
    /// Which id, for matching.
    pub fn kind(&self) -> InvalidIdKind {
        match self.what {
            "environment" => InvalidIdKind::Environment,
            "family id" => InvalidIdKind::FamilyId,
            _ => InvalidIdKind::TokenId,
        }
    }

    fn new(what: &'static str, value: &str, rule: &'static str) -> Self {
        Self {
            what,
            value: value.chars().take(64).collect(),
            rule,
        }
    }
}

/// What a token is for. Bound through the implicit assertion, so one type never verifies as the
/// other (docs/threats.md G5).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// An access token: presented to services, short-lived.
    Access,
    /// A refresh token: presented only to exchange it for a new pair, single use.
    Refresh,
}

impl TokenType {
    /// `access` or `refresh`, as written in the implicit assertion.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A deployment environment (`production`, `staging`, `dev-eu1`, …).
///
/// Lowercase ASCII letters and digits, then also `.`, `_` and `-`, at most 64 bytes. Every
/// token is bound to one environment both by its `env` claim and cryptographically, through
/// the PASETO implicit assertion, so a staging token never verifies in production.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Environment(pub(crate) std::sync::Arc<str>);

impl Environment {
    /// The environment as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Environment {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const RULE: &str = "use 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit";
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
        if !(first_ok && rest_ok && b.len() <= 64) {
            return Err(InvalidId::new("environment", s, RULE));
        }
        Ok(Self(s.into()))
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Environment({:?})", &*self.0)
    }
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) Box<str>);

        impl $name {
            /// A fresh id: 128 bits from the operating system's generator, as 22 base64url
            /// characters. The bits are drawn for several ids at once per thread, and drawn
            /// again in a forked child and after a second, so no two ids share them.
            ///
            /// # Errors
            /// When the system generator fails.
            pub fn generate() -> Result<Self, getrandom::Error> {
                let bytes = crate::codec::ids::random_id_bytes()?;
                Ok(Self(crate::codec::b64::encode(&bytes).into_boxed_str()))
            }

            /// The id as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            /// Accepts 1 to 128 of `A-Z a-z 0-9 . _ : -` (UUIDs, ULIDs and base64url ids fit).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let ok = !s.is_empty()
                    && s.len() <= 128
                    && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'));
                if !ok {
                    return Err(InvalidId::new($what, s, "use 1 to 128 of A-Z a-z 0-9 . _ : -"));
                }
                Ok(Self(s.into()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

random_id!(
    /// A token id (`jti`): unique per token, the key for revocation and replay detection.
    TokenId,
    "token id"
);
random_id!(
    /// A token family id (`fam`): shared by a refresh token and every token rotated from it.
    FamilyId,
    "family id"
);

macro_rules! serde_via_str {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_via_str!(Environment, TokenId, FamilyId);
