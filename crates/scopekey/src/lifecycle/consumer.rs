//! Consumers and roles: least privilege at issuance.
//!
//! A [`Consumer`] (an integration, a service, a CI job) is registered once with its owner,
//! purpose, environment and a **ceiling**: the most it may ever be granted. Tokens are minted for
//! it from named [`Roles`] (bundles of scopes expanded at mint time, so verification stays a pure
//! scope check) and never beyond its ceiling ([`Issuer::issue_for`](crate::Issuer::issue_for)).
//!
//! ```
//! use scopekey::consumer::{Consumer, Roles};
//!
//! let roles = Roles::from_toml("roles.toml", r#"
//! [roles]
//! metrics-reader = "metrics:read"
//! publisher = "posts:write posts:read"
//! "#)?;
//! let analytics = Consumer::new(
//!     "analytics", "team-data", "dashboards", "production".parse()?, "metrics:read".parse()?,
//! )?;
//! let scopes = roles.expand(["metrics-reader"], false)?;
//! assert!(analytics.check_ceiling(&scopes).is_ok());
//! let too_much = roles.expand(["publisher"], false)?;
//! let refused = analytics.check_ceiling(&too_much).unwrap_err();
//! assert_eq!(refused.offending().len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::scope::{Scope, ScopeSet};
use crate::token::claims::{Environment, check_text};
use crate::token::error::BackendError;
use crate::token::issuer::{IssueError, IssueErrorKind, Issuer, Minted, TokenRequest};
use crate::token::network::Network;
use std::collections::BTreeMap;
use std::fmt;
use time::OffsetDateTime;

/// A registered consumer: the token's `sub`, who answers for it, what it is for, where it runs,
/// and the most it may ever be granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    name: String,
    owner: String,
    purpose: String,
    environment: Environment,
    ceiling: ScopeSet,
    created_at: OffsetDateTime,
    disabled_at: Option<OffsetDateTime>,
    /// The client networks every token of the consumer is limited to (none: not limited).
    networks: Vec<Network>,
}

/// Where consumers are looked up as they are now (a store, a registry), so that a refresh
/// exchange applies current policy: a disabled consumer gets nothing, a narrowed ceiling
/// narrows the next token. See [`Refresher::with_consumers`](crate::refresh::Refresher::with_consumers).
pub trait ConsumerDirectory: Send + Sync + fmt::Debug {
    /// The consumer named `name`, as it is now; `Ok(None)` when none is registered.
    ///
    /// # Errors
    /// [`BackendError`] when the directory cannot answer; callers fail closed.
    fn consumer(&self, name: &str) -> Result<Option<Consumer>, BackendError>;
}

/// What was wrong with a consumer definition, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefinitionErrorKind {
    /// The name, owner or purpose is empty, too long or has control characters.
    InvalidText,
    /// The ceiling grants nothing.
    EmptyCeiling,
    /// More than [`MAX_NETWORKS`](crate::MAX_NETWORKS) networks.
    TooManyNetworks,
}

/// An invalid consumer definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{1}")]
pub struct DefinitionError(DefinitionErrorKind, String);

impl DefinitionError {
    /// Why, for matching.
    pub fn kind(&self) -> DefinitionErrorKind {
        self.0
    }
}

impl Consumer {
    /// A new, enabled consumer created now.
    ///
    /// # Errors
    /// [`DefinitionError`] for an empty, over-long or control-character name, owner or purpose,
    /// or an empty ceiling.
    pub fn new(
        name: &str,
        owner: &str,
        purpose: &str,
        environment: Environment,
        ceiling: ScopeSet,
    ) -> Result<Self, DefinitionError> {
        Self::from_parts(
            name,
            owner,
            purpose,
            environment,
            ceiling,
            OffsetDateTime::now_utc(),
            None,
        )
    }

    /// A consumer with every field given, for stores that load rows.
    ///
    /// # Errors
    /// As [`Consumer::new`].
    pub fn from_parts(
        name: &str,
        owner: &str,
        purpose: &str,
        environment: Environment,
        ceiling: ScopeSet,
        created_at: OffsetDateTime,
        disabled_at: Option<OffsetDateTime>,
    ) -> Result<Self, DefinitionError> {
        for (field, value) in [("name", name), ("owner", owner), ("purpose", purpose)] {
            check_text(field, value).map_err(|e| {
                DefinitionError(DefinitionErrorKind::InvalidText, format!("consumer {e}"))
            })?;
        }
        if ceiling.is_empty() {
            return Err(DefinitionError(
                DefinitionErrorKind::EmptyCeiling,
                format!("consumer {name:?}: the ceiling must grant at least one scope"),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            owner: owner.to_owned(),
            purpose: purpose.to_owned(),
            environment,
            ceiling,
            created_at,
            disabled_at,
            networks: Vec::new(),
        })
    }

    /// Limits every token of this consumer to clients in `networks` (the signed claim `net`, as
    /// [`TokenRequest::allow_networks`] writes it): [`Issuer::issue_for`] gives a request without
    /// networks these, and refuses one asking for a network outside them. An empty list lifts
    /// the limit. Kept sorted, without duplicates.
    ///
    /// # Errors
    /// [`DefinitionErrorKind::TooManyNetworks`] beyond [`MAX_NETWORKS`](crate::MAX_NETWORKS).
    pub fn with_networks(
        mut self,
        networks: impl IntoIterator<Item = Network>,
    ) -> Result<Self, DefinitionError> {
        let mut networks: Vec<Network> =
            networks.into_iter().take(crate::MAX_NETWORKS + 1).collect();
        networks.sort_by_key(ToString::to_string);
        networks.dedup();
        if networks.len() > crate::MAX_NETWORKS {
            return Err(DefinitionError(
                DefinitionErrorKind::TooManyNetworks,
                format!(
                    "consumer {:?}: at most {} networks",
                    self.name,
                    crate::MAX_NETWORKS
                ),
            ));
        }
        self.networks = networks;
        Ok(self)
    }

    /// The client networks its tokens are limited to; empty when they are not.
    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// `request` within this consumer's network limit: without networks of its own, it gets
    /// the consumer's; with some, each must lie inside one of the consumer's. A consumer
    /// without networks leaves the request as it is. [`Issuer::issue_for`] applies this; a
    /// caller building tokens for a consumer another way (a refresh family) must too.
    ///
    /// # Errors
    /// [`IssueErrorKind::BeyondCeiling`] naming a requested network outside the consumer's.
    pub fn limit_networks(&self, mut request: TokenRequest) -> Result<TokenRequest, IssueError> {
        if self.networks.is_empty() {
            return Ok(request);
        }
        if request.networks.is_empty() {
            request.networks = self.networks.clone();
            return Ok(request);
        }
        if let Some(outside) = request
            .networks
            .iter()
            .find(|n| !self.networks.iter().any(|ours| ours.covers(n)))
        {
            return Err(IssueError::new(
                IssueErrorKind::BeyondCeiling,
                format!(
                    "network {outside} is outside consumer {:?}'s networks",
                    self.name
                ),
            ));
        }
        Ok(request)
    }

    /// The name: every token of this consumer has it as `sub`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Who answers for it.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// What it is for.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }
    /// Where it runs.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }
    /// The most it may ever be granted.
    pub fn ceiling(&self) -> &ScopeSet {
        &self.ceiling
    }
    /// When it was registered.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
    /// When it was disabled, if it was.
    pub fn disabled_at(&self) -> Option<OffsetDateTime> {
        self.disabled_at
    }
    /// Whether tokens may be minted for it.
    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Checks that the ceiling covers every scope of `scopes`.
    ///
    /// # Errors
    /// [`BeyondCeiling`], naming every offending scope.
    pub fn check_ceiling(&self, scopes: &ScopeSet) -> Result<(), BeyondCeiling> {
        let offending: Vec<Scope> = scopes
            .iter()
            .filter(|s| !self.ceiling.allows_scope(s))
            .cloned()
            .collect();
        if offending.is_empty() {
            Ok(())
        } else {
            Err(BeyondCeiling {
                consumer: self.name.clone(),
                offending,
            })
        }
    }
}

/// Scopes a consumer's ceiling does not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeyondCeiling {
    consumer: String,
    offending: Vec<Scope>,
}

impl BeyondCeiling {
    /// The scopes beyond the ceiling.
    pub fn offending(&self) -> &[Scope] {
        &self.offending
    }
}

impl fmt::Display for BeyondCeiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.offending.iter().map(ToString::to_string).collect();
        write!(
            f,
            "consumer {:?} may not be granted {}: beyond its ceiling",
            self.consumer,
            list.join(" ")
        )
    }
}

impl std::error::Error for BeyondCeiling {}

/// Named bundles of scopes, e.g. `publisher = "posts:write posts:read"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    roles: BTreeMap<String, ScopeSet>,
}

/// A role definition or expansion that failed, naming the file, line and scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RoleError {
    kind: RoleErrorKind,
    message: String,
    line: Option<usize>,
}

/// What was wrong with a role definition or use, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleErrorKind {
    /// A role file that is not TOML, or a value of the wrong type.
    Syntax,
    /// A role name outside lowercase letters, digits, `-` and `_`.
    InvalidName,
    /// A role whose scopes do not parse, or that grants nothing.
    InvalidScopes,
    /// A role that is not defined.
    UnknownRole,
    /// A role holding a broad scope, used without the opt-in.
    Broad,
}

impl RoleError {
    /// Why, for matching.
    pub fn kind(&self) -> RoleErrorKind {
        self.kind
    }

    /// The 1-based line in the role file, when the problem has one.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    roles: BTreeMap<toml::Spanned<String>, toml::Spanned<RoleScopes>>,
}

/// A role's scopes as written in a role file: one space-separated scope string
/// (`"posts:write posts:read"`) or a TOML array of scopes (`["posts:write", "posts:read"]`).
enum RoleScopes {
    Text(String),
    List(Vec<String>),
}

impl<'de> serde::Deserialize<'de> for RoleScopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RoleScopes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string of space-separated scopes or an array of scope strings")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RoleScopes, E> {
                Ok(RoleScopes::Text(v.to_owned()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RoleScopes, A::Error> {
                let mut list = Vec::new();
                while let Some(scope) = seq.next_element::<String>()? {
                    list.push(scope);
                }
                Ok(RoleScopes::List(list))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl RoleScopes {
    /// The scope set, checked as a scope string is: valid scopes, no duplicates.
    fn parse(&self) -> Result<ScopeSet, crate::scope::ScopeError> {
        match self {
            Self::Text(text) => text.parse(),
            Self::List(list) => ScopeSet::from_scopes(
                list.iter()
                    .map(|s| s.parse::<Scope>())
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        }
    }
}

/// Role names: lowercase letters, digits, `-` and `_`, starting with a letter, at most 64 bytes.
fn valid_role_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

impl Roles {
    /// No roles.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines (or replaces) a role.
    ///
    /// # Errors
    /// [`RoleError`] for an invalid name or an empty scope set.
    pub fn insert(&mut self, name: &str, scopes: ScopeSet) -> Result<(), RoleError> {
        if !valid_role_name(name) {
            return Err(RoleError {
                kind: RoleErrorKind::InvalidName,
                message: format!("role {name:?}: names are lowercase letters, digits, - and _"),
                line: None,
            });
        }
        if scopes.is_empty() {
            return Err(RoleError {
                kind: RoleErrorKind::InvalidScopes,
                message: format!("role {name:?} grants nothing"),
                line: None,
            });
        }
        self.roles.insert(name.to_owned(), scopes);
        Ok(())
    }

    /// Loads roles from TOML text: a `[roles]` table of `name = "scope scope …"` or
    /// `name = ["scope", "scope", …]` (one scope an element; both shapes may be mixed in one
    /// file). `file` names the source in messages.
    ///
    /// # Errors
    /// [`RoleError`] naming the file, line and offending role or scope: invalid TOML, an unknown
    /// table, a value neither a string nor an array of strings, an invalid role name, an invalid
    /// or duplicate scope, or an empty role.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, RoleError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let parsed: RoleFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(s.start));
            RoleError {
                kind: RoleErrorKind::Syntax,
                message: format!(
                    "{file}{}: {}",
                    line.map(|l| format!(":{l}")).unwrap_or_default(),
                    // One line, whatever the parser says ("invalid array\nexpected `]`").
                    e.message()
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(": ")
                ),
                line,
            }
        })?;
        let mut roles = Self::new();
        for (name, scopes) in parsed.roles {
            let line = line_of(name.span().start);
            let name = name.into_inner();
            let at = |message: String| RoleError {
                kind: RoleErrorKind::InvalidScopes,
                message: format!("{file}:{line}: role {name:?}: {message}"),
                line: Some(line),
            };
            let set = scopes.get_ref().parse().map_err(|e| at(format!("{e}")))?;
            roles.insert(&name, set).map_err(|e| RoleError {
                kind: e.kind,
                ..at(e.message)
            })?;
        }
        Ok(roles)
    }

    /// The scopes of a role.
    pub fn get(&self, name: &str) -> Option<&ScopeSet> {
        self.roles.get(name)
    }

    /// Every role, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ScopeSet)> {
        self.roles.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The union of the scopes of `names`, as a token will carry them.
    ///
    /// # Errors
    /// [`RoleError`] for an unknown role, or a role holding a broad scope without
    /// `allow_broad` (the same opt-in as a broad scope).
    pub fn expand<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        allow_broad: bool,
    ) -> Result<ScopeSet, RoleError> {
        let mut all = std::collections::BTreeSet::new();
        for name in names {
            let set = self.roles.get(name).ok_or_else(|| RoleError {
                kind: RoleErrorKind::UnknownRole,
                message: format!("unknown role {name:?}"),
                line: None,
            })?;
            if let Some(b) = set.broad().next().filter(|_| !allow_broad) {
                return Err(RoleError {
                    kind: RoleErrorKind::Broad,
                    message: format!(
                        "role {name:?} holds the broad scope {b}, which needs an explicit opt-in"
                    ),
                    line: None,
                });
            }
            all.extend(set.iter().cloned());
        }
        ScopeSet::from_scopes(all).map_err(|e| RoleError {
            kind: RoleErrorKind::InvalidScopes,
            message: e.to_string(),
            line: None,
        })
    }
}

/// Issuing for a registered consumer lives with the consumer: the issuer knows nothing of
/// registrations.
impl Issuer {
    /// Mints a token for a registered `consumer`: the subject is the consumer's name, owner and
    /// purpose default to the consumer's, and every scope must be within its ceiling.
    ///
    /// # Errors
    /// [`IssueErrorKind::ConsumerDisabled`], [`IssueErrorKind::ConsumerEnvironment`] when the
    /// consumer runs in another environment, [`IssueErrorKind::BeyondCeiling`] naming the
    /// offending scopes (or a network outside the consumer's, see
    /// [`Consumer::limit_networks`]), then as [`Issuer::issue`].
    pub fn issue_for(
        &self,
        consumer: &Consumer,
        request: &TokenRequest,
    ) -> Result<Minted, IssueError> {
        if !consumer.is_enabled() {
            return Err(IssueError::new(
                IssueErrorKind::ConsumerDisabled,
                format!(
                    "consumer {:?} is disabled; no token may be minted for it",
                    consumer.name()
                ),
            ));
        }
        if consumer.environment() != self.environment() {
            return Err(IssueError::new(
                IssueErrorKind::ConsumerEnvironment,
                format!(
                    "consumer {:?} belongs to {}, this issuer to {}",
                    consumer.name(),
                    consumer.environment(),
                    self.environment()
                ),
            ));
        }
        consumer
            .check_ceiling(&request.scopes)
            .map_err(|e| IssueError::new(IssueErrorKind::BeyondCeiling, e.to_string()))?;
        let mut request = consumer.limit_networks(request.clone())?;
        // The ceiling was the deliberate escalation: what it allows needs no second opt-in.
        request.escalate = true;
        request.subject = consumer.name().into();
        request
            .owner
            .get_or_insert_with(|| consumer.owner().to_owned());
        request
            .purpose
            .get_or_insert_with(|| consumer.purpose().to_owned());
        self.issue(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_files_are_validated_with_file_and_line() {
        let ok = Roles::from_toml(
            "roles.toml",
            "# roles\n[roles]\nreader = \"projects:read\"\npublisher = \"posts:write posts:read\"\n",
        )
        .unwrap();
        assert_eq!(ok.get("publisher").unwrap().len(), 2);
        let cases = [
            (
                "[roles]\nreader = \"projects:read\"\nbad = \"projects/:read\"\n",
                3,
                "empty segment",
            ),
            ("[roles]\n\nReader = \"a:read\"\n", 3, "names are lowercase"),
            ("[roles]\nx = \"a:read a:read\"\n", 2, "duplicate"),
            ("[roles]\nx = \"\"\n", 2, "grants nothing"),
            ("[roles]\nx = \"a:read\"\nx = \"b:read\"\n", 3, "duplicate"),
            ("[roles]\nx = \"a:read\"\n[other]\n", 3, "unknown field"),
            ("[roles]\nx = 3\n", 2, "string"),
        ];
        for (text, line, what) in cases {
            let e = Roles::from_toml("r.toml", text).unwrap_err();
            assert_eq!(e.line(), Some(line), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("r.toml:{line}")), "{e}");
            assert!(e.to_string().contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn role_files_take_toml_arrays_too() {
        let roles = Roles::from_toml(
            "roles.toml",
            "[roles]\nreader = [\"projects:read\", \"issues:read\"]\nwriter = \"posts:write posts:read\"\n\
             multi = [\n  \"b:read\",\n  \"a:read\",\n]\n",
        )
        .unwrap();
        assert_eq!(
            roles.get("reader").unwrap().to_string(),
            "issues:read projects:read"
        );
        assert_eq!(roles.get("writer").unwrap().len(), 2);
        assert_eq!(roles.get("multi").unwrap().to_string(), "a:read b:read");
        let cases = [
            (
                "[roles]\nx = [\"a:read\", \"a/:read\"]\n",
                2,
                "empty segment",
            ),
            ("[roles]\nx = [\"a:read\", \"a:read\"]\n", 2, "duplicate"),
            ("[roles]\nx = []\n", 2, "grants nothing"),
            (
                "[roles]\nok = \"a:read\"\nx = [\"a:read\", 3]\n",
                3,
                "string",
            ),
            ("[roles]\nx = [\"a:read b:read\"]\n", 2, "x"),
            ("[roles]\nx = [\"a:read\"\n", 3, "expected"),
            ("[roles]\nx = { a = \"b\" }\n", 2, "array of scope strings"),
        ];
        for (text, line, what) in cases {
            let e = Roles::from_toml("r.toml", text).unwrap_err();
            assert_eq!(e.line(), Some(line), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("r.toml:{line}")), "{e}");
            assert!(e.to_string().contains(what), "{text:?}: {e}");
            assert!(!e.to_string().contains('\n'), "{text:?}: {e}");
        }
    }

    #[test]
    fn broad_roles_need_the_opt_in() {
        let roles =
            Roles::from_toml("r", "[roles]\nadmin = \"projects:*\"\nr = \"a:read\"\n").unwrap();
        assert!(roles.expand(["admin"], false).is_err());
        assert!(roles.expand(["admin"], true).is_ok());
        assert!(roles.expand(["r", "missing"], false).is_err());
        assert_eq!(
            roles.expand(["r", "r"], false).unwrap().to_string(),
            "a:read"
        );
    }
}
