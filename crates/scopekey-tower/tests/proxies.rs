//! Network-limited tokens behind reverse proxies, over the layer: forwarded headers read only
//! from a peer in a trusted proxy network, the client the rightmost RFC 7239 `Forwarded` or
//! `X-Forwarded-For` entry outside those networks, failing closed on anything that is not one
//! trustworthy address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use scopekey::audit::{AuditSink, MemorySink};
use scopekey::{
    Issuer, KeySet, ManualClock, Network, SigningKey, TokenRequest, Verifier, VerifierConfig,
};
use scopekey_tower::{AuthLayer, AuthState, Realm};
use std::convert::Infallible;
use std::sync::Arc;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const OK: StatusCode = StatusCode::OK;
const NO: StatusCode = StatusCode::UNAUTHORIZED;
/// The proxy next to the service.
const PROXY: &str = "10.0.0.2:4000";

struct Fixture {
    state: AuthState,
    sink: Arc<MemorySink>,
    /// Limited to 203.0.113.0/24 and 2001:db8::/32.
    limited: String,
    /// No networks.
    plain: String,
    /// Limited to 10.0.0.0/8, the network the proxies are in.
    internal: String,
}

fn net(s: &str) -> Network {
    s.parse().unwrap()
}

fn fixture(audit: bool) -> Fixture {
    let clock = ManualClock::at_unix(1_900_000_000);
    let key = SigningKey::generate().unwrap();
    let sink = Arc::new(MemorySink::new());
    let mut verifier = Verifier::new(
        KeySet::single(key.public_key().clone()),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone()),
    )
    .unwrap();
    if audit {
        verifier = verifier.with_audit(sink.clone() as Arc<dyn AuditSink>);
    }
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock);
    let request = TokenRequest::new("svc", AUD, "billing:read".parse().unwrap());
    let limited = issuer
        .issue(&request.clone().allow_networks([
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]))
        .unwrap();
    let plain = issuer.issue(&request).unwrap();
    let internal = issuer
        .issue(&request.clone().allow_networks([net("10.0.0.0/8")]))
        .unwrap();
    Fixture {
        state: AuthState::new(Arc::new(verifier), Realm::new("test-api").unwrap()),
        sink,
        limited: limited.token().as_str().to_owned(),
        plain: plain.token().as_str().to_owned(),
        internal: internal.token().as_str().to_owned(),
    }
}

/// One request through the layer from `peer`, with these header lines: its status and challenge.
async fn call(
    state: &AuthState,
    token: &str,
    peer: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(state.clone()))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let mut req = Request::builder().header(AUTHORIZATION, format!("Bearer {token}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut req = req.body(String::new()).unwrap();
    req.extensions_mut()
        .insert(peer.parse::<std::net::SocketAddr>().unwrap());
    let r = service.oneshot(req).await.unwrap();
    let challenge = r
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status(), challenge)
}

fn fwd(value: &str) -> (&'static str, &str) {
    ("forwarded", value)
}

fn xff(value: &str) -> (&'static str, &str) {
    ("x-forwarded-for", value)
}

/// Asserts the limited token's status for each case from [`PROXY`], and that the plain token
/// passes each.
async fn expect(f: &Fixture, state: &AuthState, cases: &[(StatusCode, &[(&str, &str)])]) {
    expect_from(f, state, PROXY, cases).await;
}

/// As [`expect`], from `peer`.
async fn expect_from(
    f: &Fixture,
    state: &AuthState,
    peer: &str,
    cases: &[(StatusCode, &[(&str, &str)])],
) {
    for (want, headers) in cases {
        let (got, challenge) = call(state, &f.limited, peer, headers).await;
        assert_eq!(got, *want, "limited token with {headers:?}: {challenge}");
        if got == NO {
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
        assert_eq!(
            call(state, &f.plain, peer, headers).await.0,
            OK,
            "plain token with {headers:?}"
        );
    }
}

#[tokio::test]
async fn without_trusted_proxy_networks_forwarded_headers_are_never_read() {
    let f = fixture(false);
    let outside = "198.51.100.1:4000";
    for headers in [
        &[fwd("for=203.0.113.9")][..],
        &[xff("203.0.113.9")],
        &[fwd("for=203.0.113.9"), xff("203.0.113.9")],
    ] {
        assert_eq!(call(&f.state, &f.limited, outside, headers).await.0, NO);
        assert_eq!(
            call(&f.state, &f.limited, "203.0.113.9:1", headers).await.0,
            OK
        );
        // Even a malformed header does not matter: it is not read.
        assert_eq!(
            call(&f.state, &f.limited, "203.0.113.9:1", &[fwd("for=\"")])
                .await
                .0,
            OK
        );
    }
}

/// The events recorded so far, as JSON.
fn recorded(f: &Fixture) -> Vec<serde_json::Value> {
    f.sink
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

#[tokio::test]
async fn one_trusted_proxy_gives_the_rightmost_entry() {
    let f = fixture(false);
    let one = f.state.clone().trusted_proxy_networks([net("10.0.0.2")]);
    expect(
        &f,
        &one,
        &[
            // IPv4, IPv6 (quoted, bracketed, with a port), IPv4-mapped IPv6.
            (OK, &[fwd("for=203.0.113.9")]),
            (
                OK,
                &[fwd("For=\"203.0.113.9:4711\";proto=https;by=10.0.0.2")],
            ),
            (OK, &[fwd("for=\"[2001:db8:cafe::17]:4711\"")]),
            (OK, &[fwd("for=\"[2001:db8::1]\"")]),
            (OK, &[fwd("for=\"[::ffff:203.0.113.9]\"")]),
            (OK, &[xff("203.0.113.9")]),
            (OK, &[xff("2001:db8::1")]),
            (OK, &[xff("::ffff:203.0.113.9")]),
            (NO, &[fwd("for=198.51.100.1")]),
            (NO, &[fwd("for=\"[2001:db9::1]\"")]),
            (NO, &[fwd("for=\"[::ffff:198.51.100.1]\"")]),
            (NO, &[xff("198.51.100.1")]),
            // A spoofed leftmost entry is ignored: the proxy appended the real one.
            (NO, &[fwd("for=203.0.113.9, for=198.51.100.1")]),
            (NO, &[fwd("for=203.0.113.9"), fwd("for=198.51.100.1")]),
            (OK, &[fwd("for=198.51.100.1, for=203.0.113.9")]),
            (NO, &[xff("203.0.113.9, 198.51.100.1")]),
            (OK, &[xff("198.51.100.1"), xff("203.0.113.9")]),
            // No header at all: no client (the proxy's own address is not the client's).
            (NO, &[]),
            // Only the proxy itself: no client either.
            (NO, &[xff("10.0.0.2")]),
        ],
    )
    .await;
    // The proxy seen as an IPv4-mapped IPv6 peer (a dual-stack socket) is the same proxy.
    expect_from(
        &f,
        &one,
        "[::ffff:10.0.0.2]:4000",
        &[
            (OK, &[xff("198.51.100.1, 203.0.113.9")]),
            (NO, &[xff("203.0.113.9, 198.51.100.1")]),
            (NO, &[]),
        ],
    )
    .await;
}

/// Two (or more) proxy hops, each recognised by its network, not by counting: the client is
/// the rightmost entry outside the trusted networks, however many trusted hops follow it.
#[tokio::test]
async fn two_trusted_proxy_hops_are_recognised_by_network() {
    let f = fixture(false);
    let two = f
        .state
        .clone()
        .trusted_proxy_networks([net("10.0.0.0/24"), net("fd00::/8")]);
    expect(
        &f,
        &two,
        &[
            (
                OK,
                &[
                    fwd("for=198.51.100.1, for=203.0.113.9"),
                    fwd("for=10.0.0.1"),
                ],
            ),
            (
                OK,
                &[fwd("for=\"[2001:db8::5]:1\";proto=https, for=10.0.0.1")],
            ),
            (OK, &[xff("198.51.100.1, 203.0.113.9"), xff("10.0.0.1")]),
            (OK, &[xff("203.0.113.9, 10.0.0.3, 10.0.0.1")]),
            (OK, &[xff("203.0.113.9, fd00::1")]),
            (OK, &[fwd("for=203.0.113.9, for=\"[::ffff:10.0.0.1]:80\"")]),
            (OK, &[xff("203.0.113.9, ::ffff:10.0.0.1")]),
            // Only the nearest proxy appended: its peer is the client.
            (OK, &[fwd("for=203.0.113.9")]),
            (OK, &[xff("203.0.113.9")]),
            (
                NO,
                &[fwd("for=203.0.113.9, for=198.51.100.1, for=10.0.0.1")],
            ),
            (NO, &[xff("203.0.113.9, 198.51.100.1, 10.0.0.1")]),
            // Only trusted proxies: where the request came from is unknown.
            (NO, &[xff("10.0.0.1")]),
            (NO, &[fwd("for=10.0.0.3, for=10.0.0.1")]),
            (NO, &[xff("fd00::7, 10.0.0.1")]),
        ],
    )
    .await;
    // The far proxy's address is trusted as a peer too, over IPv6 as well.
    expect_from(
        &f,
        &two,
        "[fd00::2]:443",
        &[
            (OK, &[xff("198.51.100.1, 203.0.113.9, 10.0.0.1")]),
            (NO, &[xff("203.0.113.9, 198.51.100.1")]),
        ],
    )
    .await;
    // A token limited to the proxies' own network is not usable through them: the client is
    // never a trusted proxy.
    let (status, _) = call(&two, &f.internal, PROXY, &[xff("10.0.0.9")]).await;
    assert_eq!(status, NO);
}

/// A hop outside the trusted networks ends the walk: it is the client, whatever it forwarded
/// (it could have written anything), and an unusable entry before it leaves no client.
#[tokio::test]
async fn an_untrusted_hop_in_the_middle_stops_the_walk() {
    let f = fixture(true);
    let trusted = f.state.clone().trusted_proxy_networks([net("10.0.0.0/24")]);
    for (want, headers) in [
        // An untrusted proxy 198.51.100.1 forwarded for 203.0.113.9: not believed.
        (NO, &[xff("203.0.113.9, 198.51.100.1, 10.0.0.1")][..]),
        (
            NO,
            &[fwd(
                "for=203.0.113.9, for=198.51.100.1;proto=https, for=10.0.0.1",
            )],
        ),
        // Nor a trusted-looking address it wrote.
        (NO, &[xff("10.0.0.7, 198.51.100.1, 10.0.0.1")]),
        // The other way round, the untrusted hop is the client.
        (OK, &[xff("198.51.100.1, 203.0.113.9, 10.0.0.1")]),
        // An unusable entry where the walk stands: no client, never the entry to its left.
        (NO, &[xff("203.0.113.9, garbage, 10.0.0.1")]),
        (NO, &[fwd("for=203.0.113.9, for=_hidden, for=10.0.0.1")]),
        (NO, &[fwd("for=203.0.113.9, for=unknown")]),
    ] {
        assert_eq!(
            call(&trusted, &f.limited, PROXY, headers).await.0,
            want,
            "{headers:?}"
        );
    }
    let clients: Vec<serde_json::Value> = recorded(&f)
        .iter()
        .map(|e| e["request"]["client"].clone())
        .collect();
    let none = serde_json::Value::Null;
    assert_eq!(
        clients,
        [
            "198.51.100.1".into(),
            "198.51.100.1".into(),
            "198.51.100.1".into(),
            "203.0.113.9".into(),
            none.clone(),
            none.clone(),
            none,
        ]
    );
}

/// The finding this guards against: a client that reaches the service directly (not through
/// a trusted proxy) sends forwarded headers naming an address inside a token's networks. They
/// are ignored: the peer is the client, for the caveat and in the audit trail.
#[tokio::test]
async fn a_direct_peer_outside_the_trusted_set_is_the_client() {
    let f = fixture(true);
    let trusted = f.state.clone().trusted_proxy_networks([net("10.0.0.2")]);
    let attacker = "192.0.2.66:5000";
    let forged: [&[(&str, &str)]; 5] = [
        &[xff("10.1.2.3")],
        &[fwd("for=10.1.2.3")],
        &[fwd("for=10.1.2.3"), xff("10.1.2.3")],
        &[xff("10.1.2.3, 10.0.0.2")],
        &[fwd("for=\"")],
    ];
    for headers in forged {
        for peer in [attacker, "[::ffff:192.0.2.66]:5000"] {
            let (status, challenge) = call(&trusted, &f.internal, peer, headers).await;
            assert_eq!(status, NO, "{peer} {headers:?}");
            assert!(challenge.contains("invalid_token"), "{challenge}");
            assert_eq!(call(&trusted, &f.plain, peer, headers).await.0, OK);
        }
    }
    let events = recorded(&f);
    assert!(!events.is_empty());
    for e in &events {
        let client = e["request"]["client"].as_str().unwrap();
        assert!(
            client == "192.0.2.66" || client == "::ffff:192.0.2.66",
            "{e}"
        );
    }
    let refused = events
        .iter()
        .filter(|e| e["reason"] == "network_not_allowed")
        .count();
    assert_eq!(refused, forged.len() * 2);
    // The same header through the proxy is believed.
    let (status, _) = call(&trusted, &f.internal, PROXY, &[xff("10.1.2.3")]).await;
    assert_eq!(status, OK);
    let last = serde_json::to_value(f.sink.events().last().unwrap()).unwrap();
    assert_eq!(last["request"]["client"], "10.1.2.3");
    // A direct peer inside the token's networks is the client whatever it sends.
    expect_from(
        &f,
        &trusted,
        "203.0.113.50:1",
        &[
            (OK, &[xff("198.51.100.1")]),
            (OK, &[fwd("for=198.51.100.1"), xff("garbage")]),
            (OK, &[]),
        ],
    )
    .await;
    let last = serde_json::to_value(f.sink.events().last().unwrap()).unwrap();
    assert_eq!(last["request"]["client"], "203.0.113.50");
}

#[tokio::test]
async fn malformed_unknown_and_obfuscated_clients_fail_closed() {
    let f = fixture(false);
    let one = f.state.clone().trusted_proxy_networks([net("10.0.0.2")]);
    let many = vec!["203.0.113.9"; 33].join(", ");
    let long = format!("for=203.0.113.9;x=\"{}\"", "a".repeat(5000));
    expect(
        &f,
        &one,
        &[
            (NO, &[fwd("for=unknown")]),
            (NO, &[fwd("for=_hidden")]),
            (NO, &[fwd("for=\"_gazonk\"")]),
            (NO, &[fwd("proto=https;by=10.0.0.2")]),
            (NO, &[fwd("for=203.0.113.9;for=203.0.113.9")]),
            (NO, &[fwd("for=[2001:db8::1]")]),
            (NO, &[fwd("for=\"2001:db8::1\"")]),
            (NO, &[fwd("for=203.0.113.9:80")]),
            (NO, &[fwd("for=\"203.0.113.9")]),
            (NO, &[fwd("for=\"203.0.113.9"), fwd("for=203.0.113.9\"")]),
            (NO, &[fwd("for=203.0.113.9 garbage")]),
            (NO, &[fwd("")]),
            (NO, &[fwd(&long)]),
            (NO, &[xff("")]),
            (NO, &[xff("unknown")]),
            (NO, &[xff("203.0.113.9:80")]),
            (NO, &[xff(&many)]),
            // A malformed entry to the left of the trusted one breaks Forwarded (one grammar for
            // the line), not X-Forwarded-For (entries are read one by one).
            (NO, &[fwd("for=\", for=203.0.113.9")]),
            (OK, &[xff("garbage, 203.0.113.9")]),
        ],
    )
    .await;
}

#[tokio::test]
async fn both_headers_must_name_the_same_client() {
    let f = fixture(false);
    let one = f.state.clone().trusted_proxy_networks([net("10.0.0.2")]);
    expect(
        &f,
        &one,
        &[
            (OK, &[fwd("for=203.0.113.9"), xff("203.0.113.9")]),
            (
                OK,
                &[fwd("for=\"[::ffff:203.0.113.9]\""), xff("203.0.113.9")],
            ),
            (
                OK,
                &[fwd("for=\"[2001:db8::1]:443\""), xff("2001:0db8:0:0::1")],
            ),
            // A client adding the header the proxies do not write cannot choose its address.
            (NO, &[fwd("for=203.0.113.9"), xff("198.51.100.1")]),
            (NO, &[fwd("for=198.51.100.1"), xff("203.0.113.9")]),
            (NO, &[fwd("for=203.0.113.9"), xff("garbage")]),
            (NO, &[fwd("for=_hidden"), xff("203.0.113.9")]),
            (NO, &[fwd("for=\""), xff("203.0.113.9")]),
        ],
    )
    .await;
}

/// With an audit trail, the address checked and recorded is the layer's: neither the proxy's
/// (a malformed header does not fall back to the peer, even a peer inside the token's
/// networks) nor one a custom description read from a header.
#[tokio::test]
async fn with_audit_the_checked_client_is_the_layers_and_is_recorded() {
    let f = fixture(true);
    let one = f
        .state
        .clone()
        .trusted_proxy_networks([net("203.0.113.1")])
        .describe_requests_with(|parts| {
            let leftmost = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next()?.trim().parse().ok());
            let described = scopekey_tower::describe_request(parts);
            match leftmost {
                Some(ip) => described.client(ip),
                None => described,
            }
        });
    let inside_proxy = "203.0.113.1:4000";
    for headers in [
        &[xff("203.0.113.9, 198.51.100.1")][..],
        &[xff("203.0.113.9, garbage")],
        &[fwd("for=_hidden")],
        &[],
    ] {
        let (status, _) = call(&one, &f.limited, inside_proxy, headers).await;
        assert_eq!(status, NO, "{headers:?}");
    }
    let recorded = recorded(&f);
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0]["request"]["client"], "198.51.100.1");
    for e in &recorded[1..] {
        assert!(e["request"].get("client").is_none(), "{e}");
        assert_eq!(e["reason"], "network_not_allowed", "{e}");
    }
    let (status, _) = call(
        &one,
        &f.limited,
        inside_proxy,
        &[xff("198.51.100.1, 203.0.113.9")],
    )
    .await;
    assert_eq!(status, OK);
    let last = serde_json::to_value(f.sink.events().last().unwrap()).unwrap();
    assert_eq!(last["request"]["client"], "203.0.113.9");
}
