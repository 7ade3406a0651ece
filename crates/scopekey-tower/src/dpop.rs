//! DPoP (RFC 9449) on the resource server: `Authorization: DPoP <token>` with one `DPoP`
//! proof header, checked against the service's configured public origin.

use crate::rejection::{Rejection, is_b64token};
use http::HeaderName;
use http::request::Parts;
use scopekey::Verifier;
use scopekey::dpop::DpopRequest;
use std::fmt;

/// The `DPoP` request header that carries the proof.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header that carries a server nonce.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Where the service is reached, for checking the `htu` of DPoP proofs, for
/// [`AuthState::dpop`](crate::AuthState::dpop).
///
/// A proof's `htu` must be one of these origins followed by the request's path. With one
/// origin, the `Host` header is never read; with several, it only picks among them (a `Host`
/// that names none of them is refused), so a client cannot choose an origin of its own.
///
/// ```
/// use scopekey_tower::DpopConfig;
/// let config = DpopConfig::new(["https://api.example"])?;
/// assert!(DpopConfig::new(["https://api.example/path"]).is_err());
/// # let _ = config;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DpopConfig {
    /// `scheme://host[:port]`, lower case, without a default port: (origin, authority).
    origins: Vec<(String, String)>,
}

/// An origin that is not `http(s)://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrigin(String);

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an origin (https://host or https://host:port, without a path)",
            self.0
        )
    }
}

impl std::error::Error for InvalidOrigin {}

impl DpopConfig {
    /// The service's public origins (`https://api.example`, at least one, at most 16).
    ///
    /// # Errors
    /// [`InvalidOrigin`] for an empty list, more than 16, or a value with a path, query,
    /// user or another scheme than `http` or `https`.
    pub fn new(origins: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Self, InvalidOrigin> {
        let mut out = Vec::new();
        for origin in origins {
            let text = origin.as_ref();
            let bad = || InvalidOrigin(text.chars().take(100).collect());
            let url = scopekey::dpop::normalize_origin(text).ok_or_else(bad)?;
            if out.len() == 16 {
                return Err(bad());
            }
            out.push(url);
        }
        if out.is_empty() {
            return Err(InvalidOrigin(String::new()));
        }
        Ok(Self { origins: out })
    }

    /// The absolute URI the client addressed: the origin (picked by `Host` among several)
    /// and the request path.
    fn htu(&self, parts: &Parts) -> Option<String> {
        let origin = match self.origins.as_slice() {
            [(origin, _)] => origin,
            several => {
                let host = parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))?
                    .to_ascii_lowercase();
                &several.iter().find(|(_, authority)| *authority == host)?.0
            }
        };
        Some(format!("{origin}{}", parts.uri.path()))
    }
}

impl fmt::Debug for DpopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.origins.iter().map(|(o, _)| o))
            .finish()
    }
}

/// Whether the request's `Authorization` header uses the `DPoP` scheme.
pub(crate) fn uses_dpop_scheme(headers: &http::HeaderMap) -> bool {
    headers.get(http::header::AUTHORIZATION).is_some_and(|v| {
        v.as_bytes()
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"dpop "))
    })
}

/// The token of `Authorization: DPoP <token>` (one header).
fn dpop_token(headers: &http::HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Rejection::InvalidRequest(
            "more than one Authorization header",
        ));
    };
    let token = value.as_bytes().get(5..).unwrap_or_default();
    let start = token.iter().position(|&b| b != b' ').unwrap_or(token.len());
    let token = token.get(start..).unwrap_or_default();
    if !is_b64token(token) {
        return Err(Rejection::InvalidRequest(
            "the Authorization header must be DPoP followed by one token",
        ));
    }
    std::str::from_utf8(token).map_err(|_| Rejection::InvalidRequest("token is not ASCII"))
}

/// The one `DPoP` proof header, if any; two are refused (RFC 9449 §4.3).
fn dpop_proof(headers: &http::HeaderMap) -> Result<Option<&str>, Rejection> {
    let mut values = headers.get_all(DPOP).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::InvalidDpopProof(
            scopekey::VerifyErrorKind::DpopProofInvalid,
        ));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| Rejection::InvalidDpopProof(scopekey::VerifyErrorKind::DpopProofInvalid))
}

/// Marks the `DPoP` headers sensitive (a proof is not a secret, but it is a credential for one
/// request within its window).
pub(crate) fn mark_sensitive(headers: &mut http::HeaderMap) {
    if let http::header::Entry::Occupied(mut entry) = headers.entry(DPOP) {
        for value in entry.iter_mut() {
            value.set_sensitive(true);
        }
    }
}

/// Verifies a request that used the `DPoP` scheme.
pub(crate) fn authenticate(
    verifier: &Verifier,
    config: &DpopConfig,
    cache: Option<&scopekey::cache::GrantCache>,
    parts: &Parts,
    client: Option<std::net::IpAddr>,
    context: Option<scopekey::audit::RequestContext>,
) -> Result<scopekey::Grant, Rejection> {
    let token = dpop_token(&parts.headers)?;
    let proof = dpop_proof(&parts.headers)?;
    let htu = config.htu(parts).ok_or(Rejection::InvalidDpopProof(
        scopekey::VerifyErrorKind::DpopRequestMismatch,
    ))?;
    let mut presentation = scopekey::Presentation::new()
        .client(client)
        .dpop(DpopRequest::new(proof, parts.method.as_str(), &htu));
    if let Some(context) = context {
        presentation = presentation.request(context);
    }
    verifier
        .verify_presented(token, cache, presentation)
        .map_err(|e| with_nonce(verifier, Rejection::from_verify_error(&e)))
}

/// Fills in the nonce of a [`Rejection::UseDpopNonce`].
pub(crate) fn with_nonce(verifier: &Verifier, rejection: Rejection) -> Rejection {
    match rejection {
        Rejection::UseDpopNonce(_) => {
            Rejection::UseDpopNonce(verifier.dpop_nonce().unwrap_or_default())
        }
        other => other,
    }
}
