//! Verifying tokens and authorizing actions.

use crate::claims::{Claims, Environment, check_text};
use crate::clock::{Clock, SystemClock};
use crate::error::{ErrorKind, VerifyError};
use crate::issuer::DEFAULT_MAX_TTL;
use crate::json;
use crate::keys::{KeyId, KeySet};
use crate::paseto;
use crate::scope::{Action, Resource, Scope};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Clock skew tolerated by default: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway a verifier accepts: 120 seconds.
pub const MAX_LEEWAY: Duration = Duration::from_secs(120);
/// Longest accepted footer, in bytes once decoded.
pub const MAX_FOOTER_LEN: usize = 256;

/// Invalid verifier settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid verifier configuration: {0}")]
pub struct ConfigError(String);

/// What a verifier expects of every token. Issuer, audience and environment are required.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    issuer: String,
    audience: String,
    environment: Environment,
    leeway: Duration,
    max_lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl VerifierConfig {
    /// Tokens must come from `issuer`, be meant for `audience` and belong to `environment`.
    ///
    /// Defaults: leeway [`DEFAULT_LEEWAY`], maximum lifetime 1 hour, the system clock.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        environment: Environment,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            environment,
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_TTL,
            clock: Arc::new(SystemClock),
        }
    }

    /// Clock skew to tolerate on `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest `exp − iat` accepted (default 1 hour).
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The clock to check times against (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// Verifies tokens: signature, key id, environment binding, claims and times.
///
/// ```
/// use scopekey::{Action, Issuer, KeySet, Resource, SigningKey, TokenRequest, Verifier, VerifierConfig};
///
/// let key = SigningKey::generate()?;
/// let keys = KeySet::single(key.public_key().clone());
/// let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
/// let verifier = Verifier::new(
///     keys,
///     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
/// )?;
///
/// let minted = issuer.issue(&TokenRequest::new("ci", "https://api.example", "projects:read".parse()?))?;
/// let grant = verifier.verify(minted.token().as_str())?;
/// grant.authorize(&Resource::from_segments(["projects", "42"])?, &Action::read())?;
/// assert!(grant.authorize(&Resource::from_segments(["projects", "42"])?, &Action::write()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Verifier {
    keys: KeySet,
    config: VerifierConfig,
    assertion: Vec<u8>,
}

impl Verifier {
    /// A verifier trusting `keys` and expecting what `config` says.
    ///
    /// # Errors
    /// [`ConfigError`] for an empty or invalid issuer or audience, a leeway above
    /// [`MAX_LEEWAY`], or a zero maximum lifetime.
    pub fn new(keys: KeySet, config: VerifierConfig) -> Result<Self, ConfigError> {
        check_text("iss", &config.issuer).map_err(ConfigError)?;
        check_text("aud", &config.audience).map_err(ConfigError)?;
        if config.leeway > MAX_LEEWAY {
            return Err(ConfigError(format!(
                "leeway {} s is above the maximum of {} s",
                config.leeway.as_secs(),
                MAX_LEEWAY.as_secs()
            )));
        }
        if config.max_lifetime.as_secs() == 0 {
            return Err(ConfigError("maximum lifetime must be at least 1 s".into()));
        }
        Ok(Self {
            assertion: paseto::access_assertion(&config.environment),
            keys,
            config,
        })
    }

    /// The trusted keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The trusted keys, to rotate them in place.
    pub fn keys_mut(&mut self) -> &mut KeySet {
        &mut self.keys
    }

    /// Verifies a token and returns the grant it carries.
    ///
    /// Order: length (before any decoding), header, structure and base64url, footer and key id
    /// (looked up in memory only), signature with the environment bound in, then the claims
    /// (parsed only once authenticated), issuer, audience, environment and times.
    ///
    /// # Errors
    /// A [`VerifyError`] whose [`kind`](VerifyError::kind) names the reason; see [`ErrorKind`].
    ///
    /// # Security
    /// Nothing in the token is trusted before its signature verifies except the key id, which
    /// only selects a key from the configured set.
    pub fn verify(&self, token: &str) -> Result<Grant, VerifyError> {
        let decoded = paseto::decode(token)?;
        let kid = key_id_from_footer(decoded.footer())?;
        let entry = self.keys.get(&kid).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::UnknownKey,
                "token's key id is not in the key set: it was signed by a key this service does \
                 not trust (add the issuer's current public key if keys were rotated)",
            )
        })?;
        let now = self.config.clock.now();
        if !entry.is_active_at(now) {
            return Err(VerifyError::new(
                ErrorKind::UnknownKey,
                format!(
                    "token's key {} is retired or not yet valid",
                    entry.key().key_id()
                ),
            ));
        }
        let payload = decoded.verify(entry.key(), &self.assertion)?;
        let map = json::parse_object(payload, json::CLAIMS)
            .map_err(|e| VerifyError::claims(format!("claims are not valid: {e}")))?;
        let claims = Claims::from_map(map)?;
        self.check_claims(&claims, now.unix_timestamp())?;
        Ok(Grant {
            claims,
            key_id: entry.key().key_id().clone(),
        })
    }

    fn check_claims(&self, c: &Claims, now: i64) -> Result<(), VerifyError> {
        let cfg = &self.config;
        if c.issuer != cfg.issuer {
            return Err(VerifyError::new(
                ErrorKind::WrongIssuer,
                format!("token was not issued by {:?}", cfg.issuer),
            ));
        }
        if c.audience != cfg.audience {
            return Err(VerifyError::new(
                ErrorKind::WrongAudience,
                format!("token is not meant for audience {:?}", cfg.audience),
            ));
        }
        if c.environment != cfg.environment {
            return Err(VerifyError::new(
                ErrorKind::WrongEnvironment,
                format!(
                    "token does not belong to environment {:?}",
                    cfg.environment.as_str()
                ),
            ));
        }
        // Leeway is capped at 120 s, so these conversions and sums cannot overflow for the
        // years 1970..=9999 that claims are limited to.
        let leeway = i64::try_from(cfg.leeway.as_secs()).unwrap_or(0);
        let exp = c.expires_at.unix_timestamp();
        let iat = c.issued_at.unix_timestamp();
        if exp <= iat {
            return Err(VerifyError::claims("token expires before it was issued"));
        }
        if let Some(nbf) = c.not_before {
            if nbf.unix_timestamp() > exp {
                return Err(VerifyError::claims("token becomes valid after it expires"));
            }
            if nbf.unix_timestamp() > now + leeway {
                return Err(VerifyError::new(
                    ErrorKind::NotYetValid,
                    format!(
                        "token is not valid for another {} s (leeway {leeway} s); check the clocks",
                        nbf.unix_timestamp() - now
                    ),
                ));
            }
        }
        if iat > now + leeway {
            return Err(VerifyError::new(
                ErrorKind::NotYetValid,
                format!(
                    "token was issued {} s in the future (leeway {leeway} s); check the clocks",
                    iat - now
                ),
            ));
        }
        if now >= exp + leeway {
            return Err(VerifyError::new(
                ErrorKind::Expired,
                format!(
                    "token expired {} s ago (leeway {leeway} s); ask the issuer for a new token",
                    now - exp
                ),
            ));
        }
        let max = i64::try_from(cfg.max_lifetime.as_secs()).unwrap_or(i64::MAX);
        if exp - iat > max {
            return Err(VerifyError::new(
                ErrorKind::LifetimeTooLong,
                format!(
                    "token lifetime {} s is longer than the {max} s this service accepts",
                    exp - iat
                ),
            ));
        }
        Ok(())
    }
}

/// Reads the key id from a footer, which must be `{"kid":"…"}` and nothing else.
fn key_id_from_footer(footer: &[u8]) -> Result<String, VerifyError> {
    let invalid = |why: String| VerifyError::new(ErrorKind::InvalidFooter, why);
    if footer.is_empty() {
        return Err(invalid(
            "token has no footer: scopekey tokens name their signing key in a `kid` footer".into(),
        ));
    }
    if footer.len() > MAX_FOOTER_LEN {
        return Err(invalid(format!(
            "token footer is longer than {MAX_FOOTER_LEN} bytes"
        )));
    }
    if carries_key_material(footer) {
        return Err(invalid(
            "token footer carries secret or symmetric key material; treat that key as leaked"
                .into(),
        ));
    }
    let mut map = json::parse_object(footer, json::FOOTER)
        .map_err(|e| invalid(format!("token footer is not valid: {e}")))?;
    if map.len() != 1 {
        return Err(invalid(
            "token footer must hold exactly one member, `kid`".into(),
        ));
    }
    match map.remove("kid") {
        Some(Value::String(kid)) => Ok(kid),
        _ => Err(invalid(
            "token footer must hold exactly one member, `kid`, a string".into(),
        )),
    }
}

/// Whether the bytes contain a PASERK of secret or symmetric key material (THREATS.md B6).
fn carries_key_material(footer: &[u8]) -> bool {
    const TYPES: [&[u8]; 3] = [b".secret", b".local", b".seal"];
    footer.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'k'
            && w[1].is_ascii_digit()
            && TYPES.iter().any(|t| footer[i + 2..].starts_with(t))
    })
}

/// A verified token: proof that its signature, key, environment, issuer, audience and times
/// were checked. Only [`Verifier::verify`] creates one.
#[derive(Debug, Clone)]
pub struct Grant {
    claims: Claims,
    key_id: KeyId,
}

impl Grant {
    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The consumer the token was issued to (`sub`).
    pub fn subject(&self) -> &str {
        self.claims.subject()
    }

    /// The key that signed the token.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Authorizes `action` on `resource`, at the point of action.
    ///
    /// # Errors
    /// [`Denied`], naming the scope that would have been needed.
    pub fn authorize(&self, resource: &Resource, action: &Action) -> Result<(), Denied> {
        if self.claims.scopes.allows(resource, action) {
            Ok(())
        } else {
            Err(Denied {
                scope: Scope::new(resource.clone(), action.clone()),
            })
        }
    }
}

/// An action the token's scopes do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token does not grant `{scope}`")]
pub struct Denied {
    scope: Scope,
}

impl Denied {
    /// The scope that would have allowed the action, for an RFC 6750 `scope=` answer.
    pub fn required_scope(&self) -> &Scope {
        &self.scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_key_material_is_detected() {
        assert!(carries_key_material(br#"{"kid":"k4.secret.AAAA"}"#));
        assert!(carries_key_material(br#"{"kid":"k3.local.AAAA"}"#));
        assert!(carries_key_material(br#"{"x":"k4.seal.AAAA"}"#));
        assert!(carries_key_material(
            br#"{"kid":"k4.secret-wrap.pie.AAAA"}"#
        ));
        assert!(!carries_key_material(br#"{"kid":"k4.pid.AAAA"}"#));
        assert!(!carries_key_material(b"k4"));
    }
}
