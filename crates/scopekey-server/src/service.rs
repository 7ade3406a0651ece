//! The [`TokenService`]: the store, the issuer, the replica and the verifiers it answers
//! with, built once; and its axum [`Router`].

use crate::config::{ServerConfig, ServerError, ServerErrorKind};
use crate::form::{ClientCredentials, Form, client_credentials};
use crate::oauth_error::{OAuthError, OAuthErrorCode};
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
    pub(crate) replica: Replica,
    /// One verifier per audience, in the configured order.
    pub(crate) verifiers: Vec<Verifier>,
    pub(crate) throttle: Throttle,
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
        if known.get(key.key_id().as_str()).is_none() {
            store
                .add_key(key.public_key(), None)
                .map_err(|e| failed("registering the signing key", &e))?;
        }
        let audit = Arc::new(
            store
                .audit_sink()
                .map_err(|e| failed("the audit sink", &e))?,
        );
        let inventory = Arc::new(store.inventory().map_err(|e| failed("the inventory", &e))?);
        let issuer = Issuer::new(key, config.issuer.clone(), config.environment.clone())
            .map_err(|e| ServerError::new(ServerErrorKind::Config, format!("issuer: {e}")))?
            .with_default_ttl(config.access_ttl)
            .with_max_ttl(config.access_ttl)
            .with_inventory(inventory)
            .with_audit(audit.clone());
        let replica = Replica::start(&store, ReplicaOptions::default())
            .map_err(|e| failed("starting the replica", &e))?;
        let verifiers = config
            .audiences
            .iter()
            .map(|aud| {
                let c = VerifierConfig::new(
                    config.issuer.clone(),
                    aud.clone(),
                    config.environment.clone(),
                )
                .max_lifetime(config.access_ttl.max(Duration::from_secs(3600)));
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
                hashing: Arc::new(Semaphore::new(config.hash_concurrency)),
                hash_waiting: AtomicUsize::new(0),
                store,
                config,
                issuer,
                audit,
                replica,
                verifiers,
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
        if let Some(wait) = self.throttle.check(&credentials.client_id, source) {
            return Err(OAuthError::new(
                OAuthErrorCode::SlowDown,
                "too many failed authentications for this client from here: retry later",
            )
            .retry_after(wait));
        }
        let busy = || {
            OAuthError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the server is busy: retry shortly",
            )
            .retry_after(Duration::from_secs(1))
        };
        let Some(_waiting) = WaitSlot::take(
            &self.hash_waiting,
            self.config.hash_concurrency + self.config.hash_queue,
        ) else {
            return Err(busy());
        };
        let Ok(permit) = self.hashing.clone().acquire_owned().await else {
            return Err(busy());
        };
        let (store, id, secret) = (
            self.store.clone(),
            credentials.client_id.clone(),
            credentials.secret.clone(),
        );
        // The permit moves into the blocking task: a request dropped mid-check still holds
        // its place until the hash is done, so the bound holds against aborted requests too.
        let check = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            store.verify_client_secret(&id, &secret)
        })
        .await;
        match check {
            Ok(Ok(SecretCheck::Matches)) => {
                self.throttle.succeeded(&credentials.client_id, source);
                Ok(credentials)
            }
            Ok(Ok(_)) => {
                self.throttle.failed(&credentials.client_id, source);
                Err(OAuthError::new(
                    OAuthErrorCode::InvalidClient,
                    "client authentication failed",
                )
                .challenging(basic))
            }
            Ok(Err(_)) | Err(_) => Err(OAuthError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the credential store is unavailable: retry shortly",
            )
            .retry_after(Duration::from_secs(1))),
        }
    }
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
