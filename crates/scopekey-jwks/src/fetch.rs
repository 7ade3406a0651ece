//! One fetch of the JWKS: a bounded read of the body, its import, and what `Cache-Control`
//! says about the next one.

use crate::config::RemoteKeySetConfig;
use crate::error::{RemoteKeySetError, RemoteKeySetErrorKind};
use http::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_LENGTH, HeaderMap, USER_AGENT};
use http_body_util::BodyExt as _;
use scopekey::KeySet;
use scopekey::jwks::MAX_JWKS_LEN;
use std::sync::Arc;
use std::time::Duration;

/// A fetched, imported key set, and the freshness its response declared.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) keys: KeySet,
    /// `None`: no `max-age`; zero for `no-cache` or `no-store`.
    pub(crate) max_age: Option<Duration>,
}

/// The HTTP client: HTTP/1.1, TLS through rustls with ring and Mozilla's roots; no redirects
/// and no proxy (hyper follows neither).
pub(crate) type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

/// Builds the [`Client`].
pub(crate) fn client(config: &RemoteKeySetConfig) -> Result<Client, RemoteKeySetError> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| {
        RemoteKeySetError::new(
            RemoteKeySetErrorKind::Client,
            format!("the TLS client could not be set up: {e}"),
        )
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(config.timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https),
    )
}

/// Fetches and imports the JWKS, within the configured timeout (from connecting to the last
/// byte of the body).
pub(crate) async fn fetch(
    client: &Client,
    config: &RemoteKeySetConfig,
) -> Result<Fetched, RemoteKeySetError> {
    tokio::time::timeout(config.timeout, fetch_once(client, config))
        .await
        .unwrap_or_else(|_| {
            Err(RemoteKeySetError::new(
                RemoteKeySetErrorKind::Unreachable,
                format!(
                    "the JWKS URL did not answer within {} ms",
                    config.timeout.as_millis()
                ),
            ))
        })
}

async fn fetch_once(
    client: &Client,
    config: &RemoteKeySetConfig,
) -> Result<Fetched, RemoteKeySetError> {
    let request = http::Request::get(config.url.as_str())
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .header(
            USER_AGENT,
            concat!("scopekey-jwks/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Empty::new())
        .map_err(|e| {
            RemoteKeySetError::new(
                RemoteKeySetErrorKind::InvalidConfig,
                format!("the JWKS request could not be built: {e}"),
            )
        })?;
    let response = client.request(request).await.map_err(|e| unreachable(&e))?;
    let status = response.status();
    if status != http::StatusCode::OK {
        return Err(RemoteKeySetError::new(
            RemoteKeySetErrorKind::Status(status.as_u16()),
            format!("the JWKS URL answered {status}, not 200"),
        ));
    }
    let max_age = max_age(response.headers());
    let too_large = || {
        RemoteKeySetError::new(
            RemoteKeySetErrorKind::TooLarge,
            format!("the JWKS is longer than {MAX_JWKS_LEN} bytes"),
        )
    };
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if declared > MAX_JWKS_LEN as u64 {
        return Err(too_large());
    }
    // Never more than the cap in memory, whatever the server sends or declares.
    let mut body = response.into_body();
    let mut text = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(MAX_JWKS_LEN));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unreachable(&e))?;
        if let Ok(chunk) = frame.into_data() {
            if text.len() + chunk.len() > MAX_JWKS_LEN {
                return Err(too_large());
            }
            text.extend_from_slice(&chunk);
        }
    }
    let text = std::str::from_utf8(&text).map_err(|_| {
        RemoteKeySetError::new(
            RemoteKeySetErrorKind::InvalidJwks(scopekey::jwks::JwksErrorKind::Malformed),
            "the JWKS is not UTF-8 text".into(),
        )
    })?;
    let keys = KeySet::from_jwks(text).map_err(|e| {
        RemoteKeySetError::new(
            RemoteKeySetErrorKind::InvalidJwks(e.kind()),
            format!("the JWKS was refused: {e}"),
        )
    })?;
    Ok(Fetched { keys, max_age })
}

/// A transport error, with its causes (the client's own message is terse).
fn unreachable(e: &(dyn std::error::Error + 'static)) -> RemoteKeySetError {
    let mut message = format!("the JWKS URL could not be reached: {e}");
    let mut source = e.source();
    // A few levels are enough to reach the I/O or TLS error; bounded all the same.
    for _ in 0..4 {
        let Some(cause) = source else { break };
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    RemoteKeySetError::new(RemoteKeySetErrorKind::Unreachable, message)
}

/// How long the response says it stays fresh: `max-age` less `Age`, zero for `no-cache` or
/// `no-store` (fetch again as soon as the rate limit allows), `None` when it says nothing.
/// Directive names are case-insensitive; every `Cache-Control` line is read; a `max-age` that
/// is not a number of seconds is ignored.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    let mut no_cache = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                no_cache = true;
            } else if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(seconds)
            {
                max_age = Some(max_age.map_or(secs, |m: u64| m.min(secs)));
            }
        }
    }
    if no_cache {
        return Some(Duration::ZERO);
    }
    let age = headers
        .get(AGE)
        .and_then(|a| a.to_str().ok())
        .and_then(seconds)
        .unwrap_or(0);
    max_age.map(|m| Duration::from_secs(m.saturating_sub(age)))
}

/// Delta-seconds (RFC 9111 §1.2.2): digits only, saturating.
fn seconds(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in lines {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cache_control_is_read_as_rfc_9111_has_it() {
        let secs = |s: u64| Some(Duration::from_secs(s));
        for (lines, expected) in [
            (vec![], None),
            (vec![("cache-control", "public, max-age=300")], secs(300)),
            (vec![("cache-control", "Max-Age=\"60\"")], secs(60)),
            (
                vec![("cache-control", "max-age=300"), ("age", "100")],
                secs(200),
            ),
            (
                vec![("cache-control", "max-age=300"), ("age", "900")],
                secs(0),
            ),
            (vec![("cache-control", "max-age=300, no-cache")], secs(0)),
            (vec![("cache-control", "no-store")], secs(0)),
            (
                vec![
                    ("cache-control", "max-age=300"),
                    ("cache-control", "max-age=30"),
                ],
                secs(30),
            ),
            (vec![("cache-control", "max-age=-1")], None),
            (vec![("cache-control", "max-age=1e3")], None),
            (vec![("cache-control", "s-maxage=60")], None),
            (
                vec![("cache-control", "max-age=99999999999999999999")],
                secs(u64::MAX),
            ),
        ] {
            assert_eq!(max_age(&headers(&lines)), expected, "{lines:?}");
        }
    }
}
