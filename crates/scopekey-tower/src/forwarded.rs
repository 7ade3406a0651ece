//! The client address behind trusted reverse proxies: RFC 7239 `Forwarded` and
//! `X-Forwarded-For`, read with bounds, walked from the right past the trusted proxies.
//!
//! Every proxy appends the address it received the request from, so an entry means something
//! only if a trusted proxy wrote it; everything else came from whoever sent the request. The
//! headers are read only when the connection's peer is in a trusted proxy network (the caller
//! checks that, [`is_trusted_proxy`]); then the entries are walked from the right, each one in
//! a trusted network is a proxy hop and is skipped, and the first one that is not is the
//! client (nginx `real_ip_recursive`). Whatever cannot be read as exactly one address (an
//! entry reached by the walk that is `unknown`, an obfuscated identifier, or a syntax error;
//! too many entries or bytes) is no address at all, and so is a walk that runs out of entries
//! with only trusted proxies seen: a caveat that needs the client then fails closed.

use http::HeaderMap;
use http::header::FORWARDED;
use scopekey::Network;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most entries read from one kind of header (all its lines together); a request with more
/// has no trustworthy client address.
pub(crate) const MAX_ENTRIES: usize = 32;

/// The most bytes read from one kind of header (all its lines together); a request with more
/// has no trustworthy client address.
pub(crate) const MAX_HEADER_BYTES: usize = 4096;

/// What one kind of forwarding header says.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    /// The header is absent.
    Nothing,
    /// The header is present and names this client: the rightmost entry outside the trusted
    /// proxy networks.
    Client(IpAddr),
    /// The header is present but gives no trustworthy client: unreadable, an unusable entry
    /// before the first untrusted one, or only trusted proxies.
    Untrustworthy,
}

/// Whether `addr` is in one of the `trusted` proxy networks (an IPv4-mapped IPv6 address
/// counts as its IPv4 address).
pub(crate) fn is_trusted_proxy(trusted: &[Network], addr: IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(addr))
}

/// The client address from `Forwarded` and `X-Forwarded-For`, for a request whose peer is in
/// one of the `trusted` proxy networks: `None` when neither header is present, when the one
/// present gives no trustworthy client, or when both are present and do not name the same
/// client.
pub(crate) fn forwarded_client(headers: &HeaderMap, trusted: &[Network]) -> Option<IpAddr> {
    let forwarded = said(forwarded_entries(headers), trusted);
    let xff = said(x_forwarded_for_entries(headers), trusted);
    match (forwarded, xff) {
        (Said::Client(a), Said::Nothing) | (Said::Nothing, Said::Client(a)) => Some(a),
        // Both written by the same trusted proxies: they agree. A client that adds the
        // header the proxies do not write makes its own request fail, nothing more.
        (Said::Client(a), Said::Client(b)) if a.to_canonical() == b.to_canonical() => Some(a),
        _ => None,
    }
}

/// The rightmost entry of `entries` outside the `trusted` networks, reached by skipping the
/// trusted ones from the right (`None` for a header that could not be read; an entry of
/// `None` is one without a usable address, and stops the walk without a client).
fn said(entries: Option<Option<Vec<Option<IpAddr>>>>, trusted: &[Network]) -> Said {
    let list = match entries {
        None => return Said::Nothing,
        Some(None) => return Said::Untrustworthy,
        Some(Some(list)) => list,
    };
    for entry in list.iter().rev() {
        match entry {
            // An unusable entry where the walk stands: who sent the request is unknown.
            None => return Said::Untrustworthy,
            Some(ip) if is_trusted_proxy(trusted, *ip) => {}
            Some(ip) => return Said::Client(*ip),
        }
    }
    // Only trusted proxies: where the request came from before them is unknown (a proxy that
    // did not append, or a request from inside the proxy networks). Fail closed.
    Said::Untrustworthy
}

/// The lines of header `name` as text: `None` when absent, `Some(None)` when a line is not
/// visible ASCII or all lines together exceed [`MAX_HEADER_BYTES`].
fn lines(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<Option<Vec<&str>>> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut total = 0usize;
    let mut out = Vec::new();
    for value in values {
        total = total.saturating_add(value.len());
        if total > MAX_HEADER_BYTES {
            return Some(None);
        }
        match value.to_str() {
            Ok(text) => out.push(text),
            Err(_) => return Some(None),
        }
    }
    Some(Some(out))
}

/// The entries of every `X-Forwarded-For` line, in order: one address each (surrounding
/// whitespace allowed, nothing else: no port, no brackets).
fn x_forwarded_for_entries(headers: &HeaderMap) -> Option<Option<Vec<Option<IpAddr>>>> {
    let lines = lines(headers, "x-forwarded-for")?;
    let Some(lines) = lines else {
        return Some(None);
    };
    let mut entries = Vec::new();
    for line in lines {
        for entry in line.split(',') {
            if entries.len() == MAX_ENTRIES {
                return Some(None);
            }
            entries.push(entry.trim_matches([' ', '\t']).parse::<IpAddr>().ok());
        }
    }
    Some(Some(entries))
}

/// The `for=` node of every element of every `Forwarded` line, in order (RFC 7239 §4):
/// `Some(None)` when any line does not follow the grammar.
fn forwarded_entries(headers: &HeaderMap) -> Option<Option<Vec<Option<IpAddr>>>> {
    let lines = lines(headers, FORWARDED)?;
    let Some(lines) = lines else {
        return Some(None);
    };
    let mut entries = Vec::new();
    for line in lines {
        if !parse_forwarded_line(line, &mut entries) {
            return Some(None);
        }
    }
    Some(Some(entries))
}

/// Appends the `for=` node of each element of `line` to `entries` (`None` for an element
/// without a usable one); `false` when the line is malformed or the entries exceed
/// [`MAX_ENTRIES`].
///
/// ```text
/// Forwarded         = 1#forwarded-element
/// forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
/// forwarded-pair    = token "=" value
/// value             = token / quoted-string
/// ```
///
/// Whitespace is allowed around `,` and `;`, not around `=`. Empty list elements are skipped
/// (RFC 9110 §5.6.1). A parameter given twice in one element is malformed.
fn parse_forwarded_line(line: &str, entries: &mut Vec<Option<IpAddr>>) -> bool {
    let mut rest = line.as_bytes();
    loop {
        // One element: pairs separated by `;`, until `,` or the end.
        rest = skip_ows(rest);
        let mut node: Option<Option<IpAddr>> = None;
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut empty = true;
        loop {
            rest = skip_ows(rest);
            if let Some((name, after)) = take_token(rest) {
                empty = false;
                let Some(after) = after.strip_prefix(b"=") else {
                    return false;
                };
                let Some((value, after)) = take_value(after) else {
                    return false;
                };
                if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                    return false;
                }
                seen.push(name);
                if name.eq_ignore_ascii_case(b"for") {
                    node = Some(parse_node(&value));
                }
                rest = skip_ows(after);
            }
            match rest.first() {
                Some(b';') => {
                    empty = false;
                    rest = &rest[1..];
                }
                Some(b',') | None => break,
                Some(_) => return false,
            }
        }
        if !empty {
            if entries.len() == MAX_ENTRIES {
                return false;
            }
            entries.push(node.flatten());
        }
        match rest.split_first() {
            Some((b',', after)) => rest = after,
            _ => return true,
        }
    }
}

fn skip_ows(mut s: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', after)) = s.split_first() {
        s = after;
    }
    s
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty token at the start of `s`, and what follows it.
fn take_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = s.iter().position(|&b| !is_tchar(b)).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// A token or a quoted string (with `\` escapes) at the start of `s`: its value and what
/// follows it; `None` for neither, or a string without its closing quote.
fn take_value(s: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let Some(mut rest) = s.strip_prefix(b"\"") else {
        return take_token(s).map(|(t, after)| (t.to_vec(), after));
    };
    let mut value = Vec::new();
    loop {
        let (&b, after) = rest.split_first()?;
        rest = after;
        match b {
            b'"' => return Some((value, rest)),
            b'\\' => {
                let (&escaped, after) = rest.split_first()?;
                value.push(escaped);
                rest = after;
            }
            _ => value.push(b),
        }
    }
}

/// A `for=` node (RFC 7239 §6): an IPv4 address or a bracketed IPv6 address, with an optional
/// port; `unknown` and obfuscated identifiers (`_hidden`) are no address.
fn parse_node(value: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(value).ok()?;
    let (ip, port) = if let Some(inner) = text.strip_prefix('[') {
        let (v6, after) = inner.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (IpAddr::V6(v6.parse::<Ipv6Addr>().ok()?), port)
    } else {
        let (v4, port) = match text.split_once(':') {
            Some((v4, port)) => (v4, Some(port)),
            None => (text, None),
        };
        // `unknown` and `_obfuscated` fail here, as does an unbracketed IPv6 address.
        (IpAddr::V4(v4.parse::<Ipv4Addr>().ok()?), port)
    };
    match port {
        None => Some(ip),
        Some(p) if is_port(p) => Some(ip),
        Some(_) => None,
    }
}

/// RFC 7239 `node-port`: 1 to 5 digits, or an obfuscated port (`_` and more).
fn is_port(p: &str) -> bool {
    let digits = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = p.len() > 1
        && p.starts_with('_')
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    digits || obfuscated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(lines: &[&str]) -> Option<Vec<Option<IpAddr>>> {
        let mut headers = HeaderMap::new();
        for l in lines {
            headers.append(FORWARDED, l.parse().unwrap());
        }
        forwarded_entries(&headers).unwrap()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for l in lines {
            headers.append("x-forwarded-for", l.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_walk_skips_trusted_hops_from_the_right() {
        let trusted = [net("10.0.0.0/24"), net("fd00::/8")];
        let client = |lines: &[&str]| forwarded_client(&xff(lines), &trusted);
        assert_eq!(client(&["203.0.113.9"]), ip("203.0.113.9"));
        assert_eq!(
            client(&["198.51.100.1, 203.0.113.9, 10.0.0.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(&["203.0.113.9", "10.0.0.3", "fd00::1"]),
            ip("203.0.113.9")
        );
        // An IPv4-mapped hop is in the IPv4 network.
        assert_eq!(client(&["203.0.113.9, ::ffff:10.0.0.1"]), ip("203.0.113.9"));
        // An untrusted hop stops the walk, whatever is to its left.
        assert_eq!(
            client(&["203.0.113.9, 198.51.100.1, 10.0.0.1"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client(&["10.0.0.7, 198.51.100.1, 10.0.0.1"]),
            ip("198.51.100.1")
        );
        // An unusable entry where the walk stands, or only trusted hops: no client.
        assert_eq!(client(&["203.0.113.9, garbage, 10.0.0.1"]), None);
        assert_eq!(
            client(&["garbage, 203.0.113.9, 10.0.0.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(client(&["10.0.0.1"]), None);
        assert_eq!(client(&["10.0.0.5, fd00::1"]), None);
        assert_eq!(client(&[""]), None);
        assert!(is_trusted_proxy(
            &trusted,
            "::ffff:10.0.0.9".parse().unwrap()
        ));
        assert!(!is_trusted_proxy(&trusted, "10.0.1.0".parse().unwrap()));
        assert!(!is_trusted_proxy(&[], "10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn the_grammar_of_rfc_7239() {
        assert_eq!(
            entries(&["for=192.0.2.60;proto=http;by=203.0.113.43"]),
            Some(vec![ip("192.0.2.60")])
        );
        assert_eq!(
            entries(&["For=\"[2001:db8:cafe::17]:4711\""]),
            Some(vec![ip("2001:db8:cafe::17")])
        );
        assert_eq!(
            entries(&["for=192.0.2.43, for=198.51.100.17", "for=\"192.0.2.1:80\""]),
            Some(vec![ip("192.0.2.43"), ip("198.51.100.17"), ip("192.0.2.1")])
        );
        assert_eq!(
            entries(&["for=unknown, for=_hidden, for=\"_gazonk\", proto=https"]),
            Some(vec![None, None, None, None])
        );
        assert_eq!(
            entries(&["for=\"[::ffff:10.0.0.1]:_p\" ; by=x,,  , for=\"1.2.3.4\""]),
            Some(vec![ip("::ffff:10.0.0.1"), ip("1.2.3.4")])
        );
        assert_eq!(entries(&["for=\"\\1.2.3.4\""]), Some(vec![ip("1.2.3.4")]));
        // Values that are not nodes: no address, but the line is fine.
        for bad in [
            "for=\"2001:db8::1\"",
            "for=\"[2001:db8::1\"",
            "for=\"1.2.3.4:\"",
            "for=\"1.2.3.4:123456\"",
            "for=\"[1.2.3.4]\"",
            "for=01.2.3.4",
            "for=\"1.2.3.4 \"",
        ] {
            assert_eq!(entries(&[bad]), Some(vec![None]), "{bad}");
        }
    }

    #[test]
    fn malformed_lines_are_refused_whole() {
        for bad in [
            "for",
            "for =1.2.3.4",
            "for= 1.2.3.4",
            "for=[2001:db8::1]",
            "for=1.2.3.4:80",
            "for=\"1.2.3.4",
            "for=1.2.3.4;for=5.6.7.8",
            "for=1.2.3.4 proto=http",
            "for=\"1.2.3.4\"x",
            "=1.2.3.4",
            "for=1.2.3.4;FOR=1.2.3.4",
        ] {
            assert_eq!(entries(&[bad]), None, "{bad}");
        }
        // An unterminated quote cannot swallow a later line.
        assert_eq!(entries(&["for=\"1.2.3.4", "for=5.6.7.8\""]), None);
    }

    #[test]
    fn bounds() {
        let many = vec!["for=1.2.3.4"; MAX_ENTRIES];
        assert_eq!(entries(&many).map(|e| e.len()), Some(MAX_ENTRIES));
        let too_many = vec!["for=1.2.3.4"; MAX_ENTRIES + 1];
        assert_eq!(entries(&too_many), None);
        let long = format!("for=1.2.3.4;x=\"{}\"", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(entries(&[&long]), None);
        let mut headers = HeaderMap::new();
        headers.append(
            FORWARDED,
            http::HeaderValue::from_bytes(b"for=\xff").unwrap(),
        );
        assert_eq!(forwarded_entries(&headers), Some(None));
        assert_eq!(forwarded_entries(&HeaderMap::new()), None);
    }

    /// Odd input never panics, and only a line with a `for` parameter names a client.
    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "for", "=", "\"", "\\", ",", ";", " ", "[", "]", ":", "_", "1.2.3.4", "::1", "unknown",
            "\t", "by", "x",
        ];
        let mut seed = 7u64;
        for _ in 0..5_000 {
            let mut line = String::new();
            for _ in 0..(seed % 12) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                line.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            if let Ok(value) = http::HeaderValue::from_str(&line) {
                let mut headers = HeaderMap::new();
                headers.append(FORWARDED, value);
                if forwarded_client(&headers, &[net("10.0.0.0/8")]).is_some() {
                    assert!(line.contains("for"), "{line:?}");
                }
            }
        }
    }
}
