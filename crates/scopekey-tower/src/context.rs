//! How the layer describes a request in the audit trail.

use http::request::Parts;
use scopekey::audit::RequestContext;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The header a request id is read from (and written to, when the layer makes one).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Finds the address of the peer that sent a request (the connection's remote address), for
/// network caveats and the audit trail. The default, [`peer_address`], reads a
/// [`std::net::SocketAddr`] in the request's extensions; replace it with
/// [`AuthState::client_address_with`](crate::AuthState::client_address_with) (axum's
/// `ConnectInfo`, for example).
pub type PeerAddress = fn(&Parts) -> Option<IpAddr>;

/// The default [`PeerAddress`]: a [`std::net::SocketAddr`] in the request's extensions.
pub fn peer_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<std::net::SocketAddr>()
        .map(std::net::SocketAddr::ip)
}

/// The client's address: the peer's when it is outside the `trusted` proxy networks (the
/// forwarded headers are then never read); for a peer inside them, the rightmost entry of
/// `Forwarded` (RFC 7239) or `X-Forwarded-For` that is not itself a trusted proxy (see the
/// `forwarded` module). `None` when the peer is unknown, or the headers give no trustworthy
/// address: a caveat that needs the client then fails closed.
pub(crate) fn client_address(
    parts: &Parts,
    peer: PeerAddress,
    trusted: &[scopekey::Network],
) -> Option<IpAddr> {
    let peer = peer(parts)?;
    if !crate::forwarded::is_trusted_proxy(trusted, peer) {
        return Some(peer);
    }
    crate::forwarded::forwarded_client(&parts.headers, trusted)
}

/// Describes a request for its audit events. The default is [`describe_request`]; replace it
/// with [`AuthState::describe_requests_with`](crate::AuthState::describe_requests_with) to add
/// what only the framework knows (the route's path template, the peer address).
pub type DescribeRequest = fn(&Parts) -> RequestContext;

/// The default description: the method, the path (never the query), the client address when
/// a [`std::net::SocketAddr`] is in the request's extensions, and the `x-request-id` header
/// when it is 1 to 128 visible ASCII characters.
///
/// ```
/// let (parts, ()) = http::Request::builder()
///     .method("DELETE")
///     .uri("/projects/42?secret=x")
///     .header("x-request-id", "req-7")
///     .body(())?
///     .into_parts();
/// let described = scopekey_tower::describe_request(&parts);
/// assert_eq!((described.method.as_str(), described.path.as_str()), ("DELETE", "/projects/42"));
/// assert_eq!(described.request_id.as_deref(), Some("req-7"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe_request(parts: &Parts) -> RequestContext {
    let mut context = RequestContext::new(parts.method.as_str(), parts.uri.path());
    if let Some(addr) = parts.extensions.get::<std::net::SocketAddr>() {
        context = context.client(addr.ip());
    }
    if let Some(id) = parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        context = context.request_id(id);
    }
    context
}

/// Describes the request with `describe` and makes sure it has a request id: when it came
/// without a usable one, the layer makes one (`sk-<process>-<n>`) and sets it as the request's
/// `x-request-id` header, so the handler and later logs see the id the trail records.
pub(crate) fn context_for(parts: &mut Parts, describe: DescribeRequest) -> RequestContext {
    let context = describe(parts);
    if context.request_id.is_some() {
        return context;
    }
    let id = next_request_id();
    if let Ok(value) = http::HeaderValue::from_str(&id) {
        parts.headers.insert(REQUEST_ID_HEADER, value);
    }
    context.request_id(&id)
}

fn next_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        // A per-process tag, so ids from two instances do not collide; not a secret.
        scopekey::TokenId::generate()
            .map(|t| t.as_str().chars().take(8).collect())
            .unwrap_or_else(|_| format!("{:x}", std::process::id()))
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("sk-{prefix}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_request_id_is_replaced_and_written_back() {
        for bad in ["", "has space", &"x".repeat(129)] {
            let (mut parts, ()) = http::Request::builder()
                .header(REQUEST_ID_HEADER, bad)
                .body(())
                .unwrap_or_default()
                .into_parts();
            let context = context_for(&mut parts, describe_request);
            let id = context.request_id.clone().unwrap_or_default();
            assert!(id.starts_with("sk-"), "{bad:?} gave {id:?}");
            assert_eq!(
                parts
                    .headers
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok()),
                Some(id.as_str())
            );
        }
    }

    #[test]
    fn made_ids_differ() {
        assert_ne!(next_request_id(), next_request_id());
    }
}
