//! Network caveats: the client networks a token may be used from (claim `net`), as IPv4 and
//! IPv6 CIDR blocks.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The most networks one token may be limited to.
pub const MAX_NETWORKS: usize = 32;

/// The claim that carries a token's networks.
pub(crate) const NETWORK_CLAIM: &str = "net";

/// The networks of a verified token's `net` claim: `None` without one; an error for a claim
/// that is not 1 to [`MAX_NETWORKS`] canonical CIDR strings (a token that says it is limited but
/// not how must not be taken as unlimited).
pub(crate) fn networks_of(
    other: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Box<[Network]>>, String> {
    let Some(value) = other.get(NETWORK_CLAIM) else {
        return Ok(None);
    };
    let serde_json::Value::Array(items) = value else {
        return Err("`net` must be an array of CIDR blocks".into());
    };
    if items.is_empty() || items.len() > MAX_NETWORKS {
        return Err(format!("`net` must hold 1 to {MAX_NETWORKS} CIDR blocks"));
    }
    items
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s.parse::<Network>().map_err(|e| format!("`net`: {e}")),
            _ => Err("`net` must be an array of CIDR strings".into()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| Some(v.into_boxed_slice()))
}

/// A client network: an IPv4 or IPv6 address block in CIDR notation (`203.0.113.0/24`,
/// `2001:db8::/32`; a bare address is a block of one).
///
/// Parsed strictly: the address bits below the prefix must be zero (`10.1.2.3/8` is refused,
/// so a written block always means what it shows), and there is no normalisation of
/// look-alike input. An IPv4-mapped IPv6 client address (`::ffff:192.0.2.7`) is matched as
/// the IPv4 address it carries.
///
/// ```
/// use scopekey::Network;
/// let office: Network = "203.0.113.0/24".parse()?;
/// assert!(office.contains("203.0.113.77".parse()?));
/// assert!(office.contains("::ffff:203.0.113.77".parse()?));
/// assert!(!office.contains("198.51.100.1".parse()?));
/// assert!("10.1.2.3/8".parse::<Network>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// A network that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network {shown:?} is invalid: {why}")]
pub struct InvalidNetwork {
    shown: String,
    why: &'static str,
}

impl InvalidNetwork {
    fn new(text: &str, why: &'static str) -> Self {
        Self {
            shown: text.chars().take(64).collect(),
            why,
        }
    }

    /// Why, for matching (one reason: the text is not a canonical CIDR block).
    pub fn kind(&self) -> InvalidNetworkKind {
        InvalidNetworkKind::NotCidr
    }
}

/// Why a network was refused, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidNetworkKind {
    /// Not an address, or an address with a prefix that is out of range or leaves host bits set.
    NotCidr,
}

impl Network {
    /// The block's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether every address of `other` is in this block: the same address family, a prefix
    /// at least as long, inside this one.
    pub fn covers(&self, other: &Network) -> bool {
        let same_family = matches!(
            (self.addr, other.addr),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        );
        same_family && other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether `client` is in this block (an IPv4-mapped IPv6 address counts as its IPv4
    /// address).
    pub fn contains(&self, client: IpAddr) -> bool {
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, client) {
            (IpAddr::V4(net), IpAddr::V4(c)) => {
                masked(u128::from(u32::from(c)), self.prefix, 32) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(c)) => {
                masked(u128::from(c), self.prefix, 128) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `bits` with everything below the top `prefix` of `width` bits cleared.
fn masked(bits: u128, prefix: u8, width: u32) -> u128 {
    let host = width.saturating_sub(u32::from(prefix));
    if host >= 128 {
        0
    } else {
        (bits >> host) << host
    }
}

impl FromStr for Network {
    type Err = InvalidNetwork;

    fn from_str(s: &str) -> Result<Self, InvalidNetwork> {
        if s.len() > 64 {
            return Err(InvalidNetwork::new(s, "longer than any CIDR block"));
        }
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| InvalidNetwork::new(s, "not an IPv4 or IPv6 address"))?;
        let width: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => {
                // Digits only, no sign or leading zero: one spelling per block.
                let canonical = !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p == "0" || !p.starts_with('0'));
                let n: u8 = p
                    .parse()
                    .ok()
                    .filter(|n| canonical && *n <= width)
                    .ok_or_else(|| {
                        InvalidNetwork::new(s, "the prefix is not 0 to 32 (IPv4) or 128 (IPv6)")
                    })?;
                n
            }
        };
        let bits = match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        if masked(bits, prefix, u32::from(width)) != bits {
            return Err(InvalidNetwork::new(
                s,
                "host bits are set below the prefix: write the block's first address",
            ));
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_blocks_match_their_addresses_only() {
        let n = net("192.0.2.0/24");
        assert!(n.contains(ip("192.0.2.0")) && n.contains(ip("192.0.2.255")));
        assert!(!n.contains(ip("192.0.3.0")) && !n.contains(ip("192.0.1.255")));
        assert!(net("0.0.0.0/0").contains(ip("198.51.100.9")));
        assert!(net("198.51.100.9").contains(ip("198.51.100.9")));
        assert!(!net("198.51.100.9").contains(ip("198.51.100.8")));
        // An IPv4 block never matches an IPv6 client that is not a mapped IPv4 address.
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_blocks_and_mapped_addresses() {
        let n = net("2001:db8::/32");
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.7")));
        assert!(!net("192.0.2.0/24").contains(ip("::ffff:192.0.3.7")));
        // A mapped client is matched as IPv4, not against an IPv6 block.
        assert!(!net("::ffff:0:0/96").contains(ip("::ffff:192.0.2.7")));
    }

    #[test]
    fn only_canonical_blocks_parse() {
        for bad in [
            "",
            "/",
            "192.0.2.0/",
            "192.0.2.0/33",
            "192.0.2.0/-1",
            "192.0.2.0/+8",
            "192.0.2.0/08",
            "192.0.2.1/24",
            "10.1.2.3/8",
            "2001:db8::1/32",
            "2001:db8::/129",
            "300.0.0.0/8",
            "192.0.2.0/24/1",
            " 192.0.2.0/24",
            "192.0.2.0 /24",
            "example.com/24",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(net("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("192.0.2.7").to_string(), "192.0.2.7/32");
        let long = "1".repeat(200);
        let e = long.parse::<Network>().unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
    }
}
