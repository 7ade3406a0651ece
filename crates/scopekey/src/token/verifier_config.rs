//! What a verifier expects ([`VerifierConfig`]) and what can be wrong with it
//! ([`ConfigError`]).

use crate::clock::{Clock, SystemClock};
use crate::token::claims::{Environment, TokenType};
use crate::token::issuer::DEFAULT_MAX_TTL;
use crate::token::verifier::DEFAULT_LEEWAY;
use std::sync::Arc;
use std::time::Duration;

/// What was wrong with verifier settings, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// The issuer is empty, too long or has control characters.
    InvalidIssuer,
    /// The audience is empty, too long or has control characters.
    InvalidAudience,
    /// The leeway is above [`MAX_LEEWAY`](crate::MAX_LEEWAY).
    LeewayTooLarge,
    /// The maximum lifetime is under one second.
    LifetimeTooShort,
    /// An issuer is trusted twice ([`Verifier::trust_issuer`](crate::Verifier::trust_issuer)).
    DuplicateIssuer,
    /// More than [`MAX_TRUSTED_ISSUERS`](crate::trust::MAX_TRUSTED_ISSUERS) issuers or
    /// [`MAX_AUDIENCES`](crate::trust::MAX_AUDIENCES) audiences.
    TooMany,
}

/// Invalid verifier settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid verifier configuration: {message}")]
pub struct ConfigError {
    kind: ConfigErrorKind,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why, for matching.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

/// What a verifier expects of every token. Issuer, audience and environment are required.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub(crate) issuer: Arc<str>,
    pub(crate) audience: Arc<str>,
    /// Audiences accepted besides `audience`.
    pub(crate) more_audiences: Vec<Arc<str>>,
    pub(crate) environment: Environment,
    pub(crate) leeway: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) token_type: TokenType,
    #[cfg(feature = "jwt")]
    pub(crate) accept_jwt: bool,
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
            issuer: issuer.into().into(),
            audience: audience.into().into(),
            more_audiences: Vec::new(),
            environment,
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_TTL,
            clock: Arc::new(SystemClock),
            token_type: TokenType::Access,
            #[cfg(feature = "jwt")]
            accept_jwt: false,
        }
    }

    /// Whether JWT access tokens are accepted next to PASETO (default: no).
    ///
    /// # Security
    /// Off unless asked for here, per verifier: turning the `jwt` feature on anywhere in a
    /// dependency graph does not make every verifier accept a second format. A verifier that
    /// does not accept JWTs refuses one as [`VerifyErrorKind::UnsupportedFormat`](crate::VerifyErrorKind::UnsupportedFormat).
    #[cfg(feature = "jwt")]
    pub fn accept_jwt(mut self, accept: bool) -> Self {
        self.accept_jwt = accept;
        self
    }

    /// Accepts tokens meant for `audience` too, besides the one given to [`new`](Self::new):
    /// for a service known by several names. At most
    /// [`MAX_AUDIENCES`](crate::trust::MAX_AUDIENCES) in all; the same audience twice is
    /// accepted once.
    pub fn accept_audience(mut self, audience: impl Into<String>) -> Self {
        let audience: Arc<str> = audience.into().into();
        if audience != self.audience && !self.more_audiences.contains(&audience) {
            self.more_audiences.push(audience);
        }
        self
    }

    /// Clock skew to tolerate on `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY`](crate::MAX_LEEWAY).
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

    /// The clock, shared with an issuer.
    pub(crate) fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Which token type to accept; only the refresh exchange asks for refresh tokens.
    pub(crate) fn token_type(mut self, token_type: TokenType) -> Self {
        self.token_type = token_type;
        self
    }
}
