//! [`AuthLayer`]: verifies the token on the way in.

use crate::context::{
    DescribeRequest, PeerAddress, client_address, context_for, describe_request, peer_address,
};
use crate::dpop::DpopConfig;
use crate::future::ResponseFuture;
use crate::rejection::{Realm, Rejection, bearer_token};
use crate::render::{RejectionRenderer, RenderRejection};
use crate::source::{self, TokenSource};
use http::{Request, Response};
use scopekey::cache::{GrantCache, GrantCacheConfig};
use scopekey::{Grant, Network, Verifier};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// What the middleware and extractors share: the verifier, the realm and a verified-grant
/// cache.
///
/// The cache is on by default ([`GrantCacheConfig::default`]: 4,096 tokens, 32 MiB): a token
/// seen again skips only its signature check; expiry, revocation, keys and environment are
/// checked on every request (see [`scopekey::cache`]).
#[derive(Debug, Clone)]
pub struct AuthState {
    verifier: Arc<Verifier>,
    realm: Realm,
    cache: Option<Arc<GrantCache>>,
    describe: DescribeRequest,
    peer: PeerAddress,
    trusted_proxy_networks: Arc<[Network]>,
    /// `None`: `Authorization: Bearer` only, the fast path.
    sources: Option<Arc<[TokenSource]>>,
    renderer: Option<RejectionRenderer>,
    /// `None`: the `DPoP` scheme is not accepted (a bound token is still refused as Bearer).
    dpop: Option<Arc<DpopConfig>>,
}

impl AuthState {
    /// Verifies with `verifier`, answering refusals for `realm`, through a default-sized
    /// grant cache (unless the verifier has its own).
    pub fn new(verifier: Arc<Verifier>, realm: Realm) -> Self {
        let cache = verifier
            .grant_cache()
            .is_none()
            .then(|| Arc::new(GrantCache::default()));
        Self {
            verifier,
            realm,
            cache,
            describe: describe_request,
            peer: peer_address,
            trusted_proxy_networks: Arc::from([]),
            sources: None,
            renderer: None,
            dpop: None,
        }
    }

    /// Reads the token from `sources`, in order, instead of `Authorization: Bearer` only (the
    /// default; an empty list restores it). See [`TokenSource`] for each source.
    ///
    /// A request may carry the token in several of them if it is the same token; two
    /// different tokens are refused with 400 `invalid_request`, as is a malformed value in
    /// any configured source (never skipped for another one). A request with no token in any
    /// source has no credentials (401, or anonymous under
    /// [`AuthLayer::allow_anonymous`]). Every header a source reads is marked sensitive.
    ///
    /// ```
    /// use scopekey_tower::{AuthState, TokenSource};
    /// # fn state(state: AuthState) -> Result<AuthState, Box<dyn std::error::Error>> {
    /// // API clients send Bearer; the browser front end sends the cookie.
    /// let state = state.token_sources([TokenSource::bearer(), TokenSource::cookie("scopekey_token")?]);
    /// # Ok(state) }
    /// ```
    ///
    /// # Security
    /// A cookie-borne token needs `SameSite` and a CSRF defence for unsafe methods
    /// ([`TokenSource::cookie`]); a query parameter belongs only on WebSocket upgrades
    /// ([`TokenSource::query`]).
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        let sources: Arc<[TokenSource]> = sources.into_iter().collect();
        let bearer_only = sources.is_empty() || *sources == [TokenSource::bearer()];
        self.sources = (!bearer_only).then_some(sources);
        self
    }

    /// Accepts DPoP-bound tokens (RFC 9449) with `Authorization: DPoP <token>` and one `DPoP`
    /// proof header, whose `htu` must be one of `config`'s origins and the request path. The
    /// verifier needs a [`DpopPolicy`](scopekey::dpop::DpopPolicy)
    /// ([`Verifier::with_dpop`]). Bearer requests take the same path as without this.
    ///
    /// | request | answer |
    /// |---|---|
    /// | a bound token as `Bearer`, or `DPoP` without a proof | 401, `WWW-Authenticate: DPoP … error="invalid_token"` |
    /// | a proof refused (invalid, other method or URI, stale `iat`, other token, other key, replayed) | 401 `error="invalid_dpop_proof"` |
    /// | nonces required and missing or stale | 401 `error="use_dpop_nonce"` with `DPoP-Nonce` |
    /// | an unbound token with the `DPoP` scheme | 401 `error="invalid_token"` |
    /// | the replay cache full or down | 503 (fail closed) |
    pub fn dpop(mut self, config: DpopConfig) -> Self {
        self.dpop = Some(Arc::new(config));
        self
    }

    /// Renders the bodies of refusals with `render` instead of RFC 9457 problem details
    /// ([`Rejection::body`]), for a service with its own error format. Status,
    /// `WWW-Authenticate` and `Cache-Control` stay as RFC 6750 has them. The layer passes the
    /// renderer on in the request's extensions ([`RejectionRenderer`]), so that
    /// [`RequireScopeLayer`](crate::RequireScopeLayer) and framework extractors use it too.
    pub fn render_rejections_with(mut self, render: impl RenderRejection) -> Self {
        self.renderer = Some(RejectionRenderer::new(render));
        self
    }

    /// The renderer set with [`render_rejections_with`](Self::render_rejections_with), if any.
    pub fn renderer(&self) -> Option<&RejectionRenderer> {
        self.renderer.as_ref()
    }

    /// Answers `rejection` with this state's realm and renderer.
    pub fn reject<B: From<String>>(&self, rejection: Rejection) -> Response<B> {
        rejection.into_response_with(&self.realm, self.renderer.as_ref())
    }

    /// Finds the connection's peer address with `peer` instead of [`peer_address`] (which
    /// reads a `SocketAddr` extension): for axum, read its `ConnectInfo<SocketAddr>`.
    pub fn client_address_with(mut self, peer: PeerAddress) -> Self {
        self.peer = peer;
        self
    }

    /// Trusts the reverse proxies in `networks` (CIDR blocks; none by default) to report the
    /// client address in the RFC 7239 `Forwarded` header's `for=` elements or in
    /// `X-Forwarded-For`. Replaces the networks set before; an empty list trusts no proxy.
    ///
    /// The client address, for network caveats and the audit trail, is then found this way
    /// (as nginx's `real_ip_recursive`):
    ///
    /// 1. A connection peer (see [`client_address_with`](Self::client_address_with)) outside
    ///    every trusted network is the client: its forwarded headers are never read, so a
    ///    client that reaches the service directly cannot claim an address.
    /// 2. For a peer inside one, the entries of the header are walked from the right; an entry
    ///    inside a trusted network is a proxy hop and is skipped, and the first one outside
    ///    them all is the client (the address the outermost trusted proxy received the
    ///    request from). What lies to its left came from the client (or from proxies you do
    ///    not trust) and is never read.
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:10.0.0.2`), as peer or entry, is matched against
    /// IPv4 networks as its IPv4 address. Both headers are read the same way: every line of
    /// the header, in order, as one list of comma-separated entries, at most 32 entries and
    /// 4 KiB per header. In `Forwarded`, parameters are separated by `;`, names are
    /// case-insensitive, values are tokens or quoted strings, and a node is an IPv4 address or
    /// a bracketed IPv6 address with an optional port (`for="[2001:db8::1]:4711"`).
    ///
    /// ```
    /// use scopekey_tower::{AuthState, Realm};
    /// use scopekey::{Network, Verifier};
    /// # type Error = Box<dyn std::error::Error>;
    /// # fn state(verifier: std::sync::Arc<Verifier>) -> Result<AuthState, Error> {
    /// // The load balancers in front of the service, and nothing else.
    /// let proxies: Vec<Network> = vec!["10.0.0.2/32".parse()?, "10.0.0.3/32".parse()?];
    /// let state = AuthState::new(verifier, Realm::new("api")?).trusted_proxy_networks(proxies);
    /// # Ok(state) }
    /// ```
    ///
    /// # Security
    /// List the proxies' own addresses, and no network a client can send from: every host in
    /// a trusted network can name any client address. A request whose walk finds only trusted
    /// proxies has no client (fail closed): it cannot be told from one through a proxy that
    /// did not append its peer. So a client inside the proxy networks cannot use a
    /// network-limited token through them either.
    ///
    /// For a peer inside the trusted networks, the request has no trustworthy client address,
    /// and a network-limited token is refused (tokens without networks are unaffected), when:
    ///
    /// - neither header is present, or every entry is a trusted proxy;
    /// - a header has more than 32 entries or more than 4 KiB;
    /// - the walk reaches an entry that is not an address before it finds the client:
    ///   `unknown`, an obfuscated identifier (`_hidden`), an element without `for=`, or
    ///   anything malformed (a `Forwarded` line that breaks the grammar makes the whole header
    ///   unreadable);
    /// - both `Forwarded` and `X-Forwarded-For` are present and do not name the same client.
    ///   Proxies that write both write the same address; when they write only one, the other
    ///   came from the client, and neither can be trusted over the other. So a client cannot
    ///   pick its address by sending the header your proxies do not write.
    ///
    /// Such a request is never an error of the service: it is a 401 for a network-limited
    /// token, and no client in the audit trail.
    pub fn trusted_proxy_networks(mut self, networks: impl IntoIterator<Item = Network>) -> Self {
        self.trusted_proxy_networks = networks.into_iter().collect();
        self
    }

    /// Describes requests for the audit trail with `describe` instead of
    /// [`describe_request`]: for example to record the route's path template that only the
    /// framework knows.
    ///
    /// The description's client is replaced by the layer's client address (see
    /// [`client_address_with`](Self::client_address_with) and
    /// [`trusted_proxy_networks`](Self::trusted_proxy_networks)), the one network caveats are checked
    /// against, or cleared when there is none: a header read by `describe` cannot choose
    /// the address a token is checked from.
    ///
    /// ```
    /// use scopekey_tower::{AuthState, describe_request};
    /// # fn state() -> Result<AuthState, Box<dyn std::error::Error>> {
    /// # let key = scopekey::SigningKey::generate()?;
    /// # let verifier = scopekey::Verifier::new(
    /// #     scopekey::KeySet::single(key.public_key().clone()),
    /// #     scopekey::VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
    /// # )?;
    /// let state = AuthState::new(std::sync::Arc::new(verifier), scopekey_tower::Realm::new("api")?)
    ///     .describe_requests_with(|parts| {
    ///         // Record `/projects/{id}` rather than every id.
    ///         let described = describe_request(parts);
    ///         match parts.uri.path().strip_prefix("/projects/") {
    ///             Some(_) => described.path_template("/projects/{id}"),
    ///             None => described,
    ///         }
    ///     });
    /// # Ok(state) }
    /// # state().map(|_| ()).unwrap();
    /// ```
    pub fn describe_requests_with(mut self, describe: DescribeRequest) -> Self {
        self.describe = describe;
        self
    }

    /// Sizes the layer's grant cache (a new, empty one).
    pub fn with_grant_cache(mut self, config: GrantCacheConfig) -> Self {
        self.cache = Some(Arc::new(GrantCache::new(config)));
        self
    }

    /// Verifies every request in full, signature included (the verifier's own cache, if any,
    /// still applies).
    pub fn without_grant_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// The layer's grant cache, if on.
    pub fn grant_cache(&self) -> Option<&GrantCache> {
        self.cache.as_deref()
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The realm.
    pub fn realm(&self) -> &Realm {
        &self.realm
    }

    /// Reads and verifies the token of a request from its headers (the configured
    /// [`token_sources`](Self::token_sources) but a query parameter, which needs the whole
    /// request), and marks the headers read sensitive so that no logging layer after this one
    /// prints them.
    ///
    /// # Errors
    /// The [`Rejection`] to answer with.
    pub fn authenticate(&self, headers: &mut http::HeaderMap) -> Result<Grant, Rejection> {
        let token = match &self.sources {
            None => {
                mark_sensitive(headers);
                bearer_token(headers)?
            }
            Some(sources) => {
                source::mark_sensitive(headers, sources);
                source::find_token(sources, headers, None)?
            }
        };
        match &self.cache {
            Some(cache) => self.verifier.verify_cached(token, cache),
            None => self.verifier.verify(token),
        }
        .map_err(|e| Rejection::from_verify_error(&e))
    }

    /// As [`authenticate`](Self::authenticate), for a whole request: when the verifier records
    /// an audit trail, the events of this request (and of the grant's
    /// [`authorize`](Grant::authorize) calls) carry its description (see
    /// [`describe_requests_with`](Self::describe_requests_with)), and a request without a
    /// usable `x-request-id` gets one. The client address (see
    /// [`client_address_with`](Self::client_address_with) and
    /// [`trusted_proxy_networks`](Self::trusted_proxy_networks)) is what a network-limited token is checked
    /// against; [`authenticate`](Self::authenticate), which has only headers, refuses such tokens.
    ///
    /// With a [`TokenSource::query`] source, the parameter is removed from `parts.uri` first,
    /// before the request is described and whatever the outcome.
    ///
    /// # Errors
    /// The [`Rejection`] to answer with.
    pub fn authenticate_request(
        &self,
        parts: &mut http::request::Parts,
    ) -> Result<Grant, Rejection> {
        if let Some(dpop) = &self.dpop
            && crate::dpop::uses_dpop_scheme(&parts.headers)
        {
            return self.authenticate_dpop(parts, dpop);
        }
        match &self.sources {
            None => self.authenticate_bearer(parts),
            Some(sources) => self.authenticate_from(parts, sources),
        }
    }

    /// `Authorization: DPoP` and its proof.
    fn authenticate_dpop(
        &self,
        parts: &mut http::request::Parts,
        dpop: &DpopConfig,
    ) -> Result<Grant, Rejection> {
        mark_sensitive(&mut parts.headers);
        crate::dpop::mark_sensitive(&mut parts.headers);
        let client = client_address(parts, self.peer, &self.trusted_proxy_networks);
        let context = self.verifier.records_audit().then(|| {
            let mut context = context_for(parts, self.describe);
            context.client = client;
            context
        });
        crate::dpop::authenticate(
            &self.verifier,
            dpop,
            self.cache.as_deref(),
            parts,
            client,
            context,
        )
    }

    /// The default path: `Authorization: Bearer` only, nothing allocated for the sources.
    fn authenticate_bearer(&self, parts: &mut http::request::Parts) -> Result<Grant, Rejection> {
        mark_sensitive(&mut parts.headers);
        let client = client_address(parts, self.peer, &self.trusted_proxy_networks);
        let result = if self.verifier.records_audit() {
            let mut context = context_for(parts, self.describe);
            // The checked address, never one `describe` found (a proxy's, or a header's).
            context.client = client;
            let token = bearer_token(&parts.headers)?;
            self.verifier
                .verify_for_request(token, self.cache.as_deref(), context)
        } else {
            let token = bearer_token(&parts.headers)?;
            self.verifier
                .verify_from(token, self.cache.as_deref(), client)
        };
        result.map_err(|e| Rejection::from_verify_error(&e))
    }

    /// The configured sources, in order.
    fn authenticate_from(
        &self,
        parts: &mut http::request::Parts,
        sources: &[TokenSource],
    ) -> Result<Grant, Rejection> {
        source::mark_sensitive(&mut parts.headers, sources);
        // Out of the URI before anything describes the request, and whatever the outcome.
        let query = if source::reads_query(sources) {
            source::take_query_token(&mut parts.uri, sources)?
        } else {
            None
        };
        let client = client_address(parts, self.peer, &self.trusted_proxy_networks);
        let result = if self.verifier.records_audit() {
            let mut context = context_for(parts, self.describe);
            context.client = client;
            let token = source::find_token(sources, &parts.headers, query.as_deref())?;
            self.verifier
                .verify_for_request(token, self.cache.as_deref(), context)
        } else {
            let token = source::find_token(sources, &parts.headers, query.as_deref())?;
            self.verifier
                .verify_from(token, self.cache.as_deref(), client)
        };
        result.map_err(|e| Rejection::from_verify_error(&e))
    }
}

/// Marks every `Authorization` header sensitive, so no logging layer after this one prints it.
fn mark_sensitive(headers: &mut http::HeaderMap) {
    if let http::header::Entry::Occupied(mut entry) = headers.entry(http::header::AUTHORIZATION) {
        for value in entry.iter_mut() {
            value.set_sensitive(true);
        }
    }
}

/// Verifies `Authorization: Bearer` tokens (or those of the state's
/// [`token_sources`](AuthState::token_sources)) and inserts the [`Grant`] (and the [`Realm`])
/// into the request's extensions; refuses the request per RFC 6750 otherwise, with an RFC 9457
/// problem-details body ([`Rejection::body`], or the state's
/// [renderer](AuthState::render_rejections_with)).
///
/// | request | answer |
/// |---|---|
/// | no `Authorization`, or another scheme | 401, `WWW-Authenticate: Bearer realm="…"` (or anonymous, see [`allow_anonymous`](Self::allow_anonymous)) |
/// | two `Authorization` headers, or not `Bearer <token>`; two different tokens in two sources | 400 `invalid_request` |
/// | a token that does not verify (malformed, expired, revoked, other environment, …) | 401 `invalid_token` |
/// | revocation state stale, audit sink down | 503 (fail closed) |
///
/// By default only the `Authorization` header is read: tokens in cookies, query strings or
/// bodies are never looked at unless configured.
///
/// ```
/// use scopekey::{KeySet, SigningKey, Verifier, VerifierConfig};
/// use scopekey_tower::{AuthLayer, AuthState, Realm};
/// use std::sync::Arc;
///
/// let key = SigningKey::generate()?;
/// let verifier = Verifier::new(
///     KeySet::single(key.public_key().clone()),
///     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
/// )?;
/// let layer = AuthLayer::new(AuthState::new(Arc::new(verifier), Realm::new("api")?));
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AuthLayer {
    state: AuthState,
    anonymous: bool,
}

impl AuthLayer {
    /// A layer verifying with `state`; every request needs a valid token.
    pub fn new(state: AuthState) -> Self {
        Self {
            state,
            anonymous: false,
        }
    }

    /// Lets requests without any credentials through, as anonymous: they reach the inner
    /// service without a [`Grant`], with an [`Anonymous`] marker in their extensions instead
    /// (axum: `Option<Authorized>` is `None`). A request that carries a token, in any
    /// configured source, is still verified and refused if the token is bad, malformed or
    /// given twice differently: a bad credential is never downgraded to anonymous.
    ///
    /// "No credentials" is what answers 401 with a bare challenge without this: no token in
    /// any source (an `Authorization` header with another scheme, such as `Basic`, counts as
    /// none). Apply it to the routes that have a public view, e.g. with axum's
    /// `Router::route_layer` or on a sub-router of its own, and keep the strict layer
    /// everywhere else.
    pub fn allow_anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }
}

/// Put in a request's extensions by an [`AuthLayer`] that
/// [allows anonymous requests](AuthLayer::allow_anonymous), when the request carried no
/// credentials: the request was looked at, and is anonymous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anonymous(());

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            state: self.state.clone(),
            anonymous: self.anonymous,
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    state: AuthState,
    anonymous: bool,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let result = self.state.authenticate_request(&mut parts);
        match admit(&self.state, self.anonymous, &mut parts, result) {
            Ok(()) => ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body))),
            Err(rejection) => ResponseFuture::rejected(self.state.reject(rejection)),
        }
    }
}

/// What every auth layer (HTTP, refreshing, gRPC) does with an authentication `result`: puts
/// the grant (or, when `anonymous` allows a request without credentials, the [`Anonymous`]
/// marker), the realm and the renderer in the request's extensions, or hands back the
/// rejection to answer with.
pub(crate) fn admit(
    state: &AuthState,
    anonymous: bool,
    parts: &mut http::request::Parts,
    result: Result<Grant, Rejection>,
) -> Result<(), Rejection> {
    match result {
        Ok(grant) => {
            parts.extensions.insert(grant);
        }
        Err(Rejection::MissingCredentials) if anonymous => {
            parts.extensions.insert(Anonymous(()));
        }
        Err(rejection) => return Err(rejection),
    }
    parts.extensions.insert(state.realm.clone());
    if let Some(renderer) = &state.renderer {
        parts.extensions.insert(renderer.clone());
    }
    Ok(())
}
