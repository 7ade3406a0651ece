//! The [`TokenService`]: the store, the issuer, the replica and the verifiers it answers
//! with, built once; and its axum [`Router`].

use crate::config::{ServerConfig, ServerError, ServerErrorKind};
use crate::form::{ClientCredentials, Form, Proof, client_credentials};
use crate::oauth_error::{OAuthError, OAuthErrorCode};
use crate::replay::ReplayCache;
use crate::throttle::{Source, Throttle};
use crate::{endpoints, metadata};
use axum::Router;
use axum::routing::{get, post};
use scopekey::{Issuer, SigningKey, Verifier, VerifierConfig};
use scopekey_store::{Replica, ReplicaOptions, SecretCheck, Store, StoreAuditSink};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// The token service: OAuth endpoints over a scopekey [`Store`].
///
/// Build it with [`TokenService::new`], mount [`TokenService::router`], and serve it with
/// peer addresses (`into_make_service_with_connect_info::<SocketAddr>()`), which the
/// failure throttle keys on.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use scopekey_server::{ServerConfig, TokenService};
/// use std::net::SocketAddr;
///
/// let store = scopekey_store::Store::open("sqlite://scopekey.db")?;
/// let key = scopekey::SigningKey::generate()?;
/// let config = ServerConfig::new("https://auth.example", "https://api.example", "production".parse()?)?;
/// let service = tokio::task::spawn_blocking(move || TokenService::new(store, key, config)).await??;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// axum::serve(listener, service.router().into_make_service_with_connect_info::<SocketAddr>()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TokenService {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.inner.config.issuer)
            .field("audiences", &self.inner.config.audiences)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) config: ServerConfig,
    pub(crate) issuer: Issuer,
    pub(crate) audit: Arc<StoreAuditSink>,
    pub(crate) replica: Arc<Replica>,
    /// The refresh and token-exchange grants.
    pub(crate) grants: crate::grants::Grants,
    /// One verifier per audience, in the configured order.
    pub(crate) verifiers: Vec<Verifier>,
    pub(crate) throttle: Throttle,
    pub(crate) admin: crate::admin::Admin,
    pub(crate) sessions: crate::console::Sessions,
    replay: ReplayCache,
    /// The proofs of DPoP token requests (RFC 9449 §5), replays remembered in the store.
    pub(crate) dpop: scopekey::dpop::DpopPolicy,
    hashing: Arc<Semaphore>,
    hash_waiting: AtomicUsize,
}

impl TokenService {
    /// Builds the service: registers `key`'s public half in the store if it is not there yet
    /// (so every verifier reading the store trusts it), and starts a replica of the store's
    /// keys and revocations for introspection and revocation.
    ///
    /// This blocks on the store: call it before starting a runtime or in `spawn_blocking`.
    ///
    /// # Errors
    /// [`ServerErrorKind::Store`] when the store cannot be read or written.
    pub fn new(store: Store, key: SigningKey, config: ServerConfig) -> Result<Self, ServerError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            ServerError::new(ServerErrorKind::Store, format!("{what}: {e}"))
        };
        let known = store
            .key_set()
            .map_err(|e| failed("reading the key set", &e))?;
        match known.get(key.key_id().as_str()) {
            None => store
                .add_key(key.public_key(), None)
                .map_err(|e| failed("registering the signing key", &e))?,
            // Tokens it signed would verify nowhere: refuse to start rather than mint them.
            Some(entry) if !entry.is_active_at(time::OffsetDateTime::now_utc()) => {
                return Err(ServerError::new(
                    ServerErrorKind::Config,
                    format!(
                        "the signing key {} is retired or not yet valid in the store: \
                         use an active key (see `scopekey keys list`)",
                        key.key_id()
                    ),
                ));
            }
            Some(_) => {}
        }
        let admin_aud = crate::admin::admin_audience(&config);
        if config.audiences.contains(&admin_aud) {
            return Err(ServerError::new(
                ServerErrorKind::Config,
                format!(
                    "{admin_aud} is the admin API's audience: it cannot be an API audience too"
                ),
            ));
        }
        let audit = Arc::new(
            store
                .audit_sink()
                .map_err(|e| failed("the audit sink", &e))?,
        );
        let inventory = Arc::new(store.inventory().map_err(|e| failed("the inventory", &e))?);
        let grants_key = SigningKey::from_paserk(&key.to_paserk())
            .map_err(|e| ServerError::new(ServerErrorKind::Config, format!("signing key: {e}")))?;
        let issuer = Issuer::new(key, config.issuer.clone(), config.environment.clone())
            .map_err(|e| ServerError::new(ServerErrorKind::Config, format!("issuer: {e}")))?
            .with_default_ttl(config.access_ttl)
            .with_max_ttl(config.access_ttl)
            .with_inventory(inventory.clone())
            .with_audit(audit.clone());
        let replica = Arc::new(
            Replica::start(&store, ReplicaOptions::default())
                .map_err(|e| failed("starting the replica", &e))?,
        );
        let grants =
            crate::grants::Grants::new(&store, &grants_key, &config, &replica, &audit, &inventory)?;
        let verifiers = config
            .audiences
            .iter()
            .map(|aud| {
                let c = VerifierConfig::new(
                    config.issuer.clone(),
                    aud.clone(),
                    config.environment.clone(),
                )
                // Introspection answers for every token of this issuer, including those the
                // CLI mints (up to 30 days) and JWTs.
                .max_lifetime(MAX_INTROSPECTED_LIFETIME)
                .accept_jwt(true);
                replica.verifier(c)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServerError::new(ServerErrorKind::Config, format!("verifier: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                throttle: Throttle::new(
                    config.failure_limit,
                    config.failure_window,
                    config.max_tracked_sources,
                ),
                admin: crate::admin::Admin::new(&replica, &config)?,
                sessions: crate::console::Sessions::default(),
                replay: ReplayCache::new(65_536),
                dpop: scopekey::dpop::DpopPolicy::new(Arc::new(store.replay_cache())),
                hashing: Arc::new(Semaphore::new(config.hash_concurrency)),
                hash_waiting: AtomicUsize::new(0),
                store,
                config,
                issuer,
                audit,
                replica,
                verifiers,
                grants,
            }),
        })
    }

    /// The routes: `GET /.well-known/oauth-authorization-server` (RFC 8414),
    /// `GET /.well-known/jwks.json`, `POST /oauth/token` (RFC 6749), `POST /oauth/introspect`
    /// (RFC 7662) and `POST /oauth/revoke` (RFC 7009).
    pub fn router(&self) -> Router {
        Router::new()
            .route(metadata::METADATA_PATH, get(metadata::metadata))
            .route(metadata::JWKS_PATH, get(metadata::jwks))
            .route(endpoints::TOKEN_PATH, post(endpoints::token))
            .route(endpoints::INTROSPECT_PATH, post(endpoints::introspect))
            .route(endpoints::REVOKE_PATH, post(endpoints::revoke))
            .with_state(self.clone())
            .merge(crate::admin::router(self))
            .merge(crate::console::router(self))
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }
}

impl Inner {
    /// Authenticates the client of a request: its credentials from the header or the form,
    /// the throttle, then the secret (off the async threads, at most `hash_concurrency` at
    /// once).
    pub(crate) async fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
        form: &Form,
        source: Source,
    ) -> Result<ClientCredentials, OAuthError> {
        let credentials = client_credentials(headers, form)?;
        let basic = credentials.method == crate::form::AuthMethod::Basic;
        let refused =
            |why: String| OAuthError::new(OAuthErrorCode::InvalidClient, why).challenging(basic);
        // A secret this instance verified before is confirmed cheaply, throttled or not: no
        // one else's failures can lock out a client that has authenticated here.
        let confirmed = match &credentials.proof {
            Proof::Secret(secret) => self.confirm_secret(&credentials.client_id, secret).await?,
            Proof::Assertion(_) => false,
        };
        if !confirmed {
            if let Some(wait) = self.throttle.check(&credentials.client_id, source) {
                return Err(OAuthError::new(
                    OAuthErrorCode::SlowDown,
                    "too many failed client authentications: retry later",
                )
                .retry_after(wait));
            }
            let failure = match &credentials.proof {
                Proof::Secret(secret) => self.check_secret(&credentials.client_id, secret).await?,
                Proof::Assertion(assertion) => {
                    self.check_assertion(&credentials.client_id, assertion)
                        .await?
                }
            };
            if let Some(why) = failure {
                self.throttle.failed(&credentials.client_id, source);
                return Err(refused(why));
            }
            self.throttle.succeeded(&credentials.client_id);
        }
        // Authenticated: a disabled (or since removed) consumer may do nothing.
        let (store, id) = (self.store.clone(), credentials.client_id.clone());
        let consumer = tokio::task::spawn_blocking(move || store.consumer(&id))
            .await
            .map_err(|_| store_unavailable())?
            .map_err(|_| store_unavailable())?;
        match consumer {
            Some(c) if c.is_enabled() => Ok(credentials),
            Some(_) => Err(refused("this client is disabled".into())),
            None => Err(refused("client authentication failed".into())),
        }
    }

    /// Whether `secret` is the client's, as this instance verified before (no argon2).
    async fn confirm_secret(
        &self,
        client_id: &str,
        secret: &Zeroizing<String>,
    ) -> Result<bool, OAuthError> {
        let (store, id, secret) = (self.store.clone(), client_id.to_owned(), secret.clone());
        tokio::task::spawn_blocking(move || store.confirm_client_secret(&id, &secret))
            .await
            .map_err(|_| store_unavailable())?
            .map_err(|_| store_unavailable())
    }

    /// `None` when `secret` is the client's; `Some(why)` when not.
    async fn check_secret(
        &self,
        client_id: &str,
        secret: &Zeroizing<String>,
    ) -> Result<Option<String>, OAuthError> {
        let Some(_waiting) = WaitSlot::take(
            &self.hash_waiting,
            self.config.hash_concurrency + self.config.hash_queue,
        ) else {
            return Err(busy());
        };
        let Ok(permit) = self.hashing.clone().acquire_owned().await else {
            return Err(busy());
        };
        let (store, id, secret) = (self.store.clone(), client_id.to_owned(), secret.clone());
        // The permit moves into the blocking task: a request dropped mid-check still holds
        // its place until the hash is done, so the bound holds against aborted requests too.
        let check = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            store.verify_client_secret(&id, &secret)
        })
        .await;
        match check {
            Ok(Ok(SecretCheck::Matches)) => Ok(None),
            Ok(Ok(_)) => Ok(Some("client authentication failed".into())),
            Ok(Err(_)) | Err(_) => Err(store_unavailable()),
        }
    }

    /// `None` when `assertion` is a valid, fresh, unused `private_key_jwt` assertion of the
    /// client, signed with its registered key; `Some(why)` when not.
    async fn check_assertion(
        &self,
        client_id: &str,
        assertion: &str,
    ) -> Result<Option<String>, OAuthError> {
        let (store, id) = (self.store.clone(), client_id.to_owned());
        let key = tokio::task::spawn_blocking(move || store.client_key(&id))
            .await
            .map_err(|_| store_unavailable())?
            .map_err(|_| store_unavailable())?;
        let Some(key) = key else {
            return Ok(Some("client authentication failed".into()));
        };
        let claims = match scopekey::jwt::verify_client_assertion(assertion, &key) {
            Ok(c) => c,
            Err(e) => return Ok(Some(format!("the client assertion is refused: {e}"))),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let audiences = [
            self.config.issuer.clone(),
            self.config.endpoint(crate::endpoints::TOKEN_PATH),
            self.config.endpoint(crate::endpoints::INTROSPECT_PATH),
            self.config.endpoint(crate::endpoints::REVOKE_PATH),
        ];
        let (jti, exp) = match assertion_claims(&claims, client_id, &audiences, now) {
            Ok(v) => v,
            Err(why) => return Ok(Some(format!("the client assertion is refused: {why}"))),
        };
        match self.replay.first_use(client_id, jti, exp, now) {
            Ok(true) => Ok(None),
            Ok(false) => Ok(Some(
                "the client assertion is refused: its jti was already used".into(),
            )),
            Err(()) => Err(busy()),
        }
    }
}

fn busy() -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        "the server is busy: retry shortly",
    )
    .retry_after(Duration::from_secs(1))
}

fn store_unavailable() -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        "the credential store is unavailable: retry shortly",
    )
    .retry_after(Duration::from_secs(1))
}

/// The longest-lived token introspection answers for: the CLI's minting ceiling.
const MAX_INTROSPECTED_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// Clock skew tolerated on an assertion's times.
const ASSERTION_LEEWAY: i64 = 30;
/// The longest an assertion may live (`exp` at most this far ahead): an hour, what authlib
/// signs by default.
const MAX_ASSERTION_LIFETIME: i64 = 3600;

/// Checks an assertion's authenticated claims (RFC 7523 §3): `iss` and `sub` the client,
/// `aud` this server, `exp` ahead but at most an hour, `nbf`/`iat` not in the future,
/// and a `jti`. Returns `(jti, exp)`.
fn assertion_claims<'c>(
    claims: &'c serde_json::Map<String, serde_json::Value>,
    client_id: &str,
    audiences: &[String],
    now: i64,
) -> Result<(&'c str, i64), String> {
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    let int = |name: &str| claims.get(name).and_then(serde_json::Value::as_i64);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err("iss and sub must both be the client_id".into());
    }
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => audiences.contains(a),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(serde_json::Value::as_str)
            .any(|a| audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err("aud must name this server (its issuer or token endpoint URL)".into());
    }
    let exp = int("exp").ok_or("exp (a NumericDate integer) is required")?;
    if exp + ASSERTION_LEEWAY <= now {
        return Err("it has expired".into());
    }
    if exp > now + MAX_ASSERTION_LIFETIME + ASSERTION_LEEWAY {
        return Err(format!(
            "exp is more than {MAX_ASSERTION_LIFETIME} s ahead: assertions are short-lived"
        ));
    }
    for name in ["nbf", "iat"] {
        match claims.get(name) {
            None => {}
            Some(v) => match v.as_i64() {
                Some(t) if t <= now + ASSERTION_LEEWAY => {}
                Some(_) => return Err(format!("{name} is in the future")),
                None => return Err(format!("{name} is not a NumericDate integer")),
            },
        }
    }
    let jti = text("jti").ok_or("jti (a string) is required, against replay")?;
    if jti.is_empty() || jti.len() > 256 {
        return Err("jti is 1 to 256 characters".into());
    }
    Ok((jti, exp))
}

/// A place among the requests waiting for (or running) a secret check, given back on drop,
/// also when the request is dropped while it waits.
struct WaitSlot<'a>(&'a AtomicUsize);

impl<'a> WaitSlot<'a> {
    fn take(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
