//! Where a request comes from: the address limits for anonymous callers are counted by (the
//! mutation rate limit, ticketing's cap on unpaid seats per buyer).
//!
//! The address is the TCP peer's, unless the peer is a configured trusted proxy (a load
//! balancer, the gateway): then it is read from the forwarding header the proxy appends to.
//! Only what trusted proxies wrote is believed. `X-Forwarded-For` is read right to left,
//! skipping trusted proxies, and the first address that is not one is the client: whatever a
//! client wrote further left is its own claim and is ignored. Without `X-Forwarded-For`, the
//! `for=` parameters of `Forwarded` (RFC 7239) are read the same way. A proxy that writes only
//! `Forwarded` must drop an `X-Forwarded-For` that a client sent, or the client could name
//! its own address.
//!
//! IPv6 addresses count by their /64: one subscriber is routinely given a whole /64, so
//! counting single addresses would give one client 2^64 buckets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// A trusted proxy: one address or a CIDR range, as given to `--trusted-proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRange(IpNet);

impl ProxyRange {
    /// `10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Self(net.trunc()));
        }
        text.parse::<IpAddr>()
            .map(|ip| Self(IpNet::from(ip.to_canonical())))
            .map_err(|_| {
                format!("{text:?} is neither an IP address nor a CIDR range (e.g. 10.0.0.0/8)")
            })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl std::fmt::Display for ProxyRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The proxies whose forwarding headers are believed; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[ProxyRange]>);

impl TrustedProxies {
    pub fn new(ranges: impl IntoIterator<Item = ProxyRange>) -> Self {
        Self(ranges.into_iter().collect())
    }

    /// Trusts nobody: the peer's address is the client's.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
    /// address in the forwarding header that is not a trusted proxy. When every forwarded
    /// address is a trusted proxy, the left-most is the client. When an entry cannot be read
    /// (`unknown`, an obfuscated name, garbage), nothing further left can be trusted: the last
    /// trusted hop that was read stands for the client. `None` without a peer address (a
    /// router served without connection info).
    pub fn client_address(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip().to_canonical();
        if self.0.is_empty() || !self.trusts(peer) {
            return Some(peer);
        }
        let hops = forwarded_hops(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = *ip;
                    if !self.trusts(*ip) {
                        return Some(client);
                    }
                }
                None => return Some(client),
            }
        }
        Some(client)
    }
}

/// The addresses a request passed through, oldest first, from `X-Forwarded-For` if present,
/// else from `Forwarded`'s `for=` parameters; `None` for an entry that is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|line| line.split(','))
            .map(|entry| parse_hop(entry.trim()))
            .collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_hop(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    let bracketed = text.strip_prefix('[')?.split(']').next()?;
    bracketed
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The address a request is counted by: an IPv4 address, or an IPv6 /64. Put into the
/// GraphQL request data next to the principal, so a resolver can record who bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    pub fn new(ip: IpAddr) -> Self {
        Self(match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & (u128::MAX << 64);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        })
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }
}

/// `203.0.113.7` or `2001:db8:1:2::/64`: how it is stored and logged.
impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| ProxyRange::parse(r).unwrap()))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let forged = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(
            TrustedProxies::none().client_address(peer("203.0.113.7"), &forged),
            ip("203.0.113.7")
        );
        // A peer that is not a trusted proxy cannot name another address either.
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client_address(peer("203.0.113.7"), &forged),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client put 1.1.1.1 in itself; the load balancer appended the real peer, then
        // the gateway appended the load balancer.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.5")]);
        assert_eq!(
            trusted.client_address(peer("127.0.0.1"), &chain),
            ip("203.0.113.7")
        );
        // Several header lines are one list.
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(
            trusted.client_address(peer("10.1.2.3"), &split),
            ip("203.0.113.8")
        );
        // No header: the proxy itself is all that is known.
        assert_eq!(
            trusted.client_address(peer("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Every hop trusted: the left-most is the client.
        let internal = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(
            trusted.client_address(peer("127.0.0.1"), &internal),
            ip("10.9.9.9")
        );
        // An unreadable entry: nothing left of it is believed.
        let garbage = headers(&[("x-forwarded-for", "1.1.1.1, unknown, 10.0.0.5")]);
        assert_eq!(
            trusted.client_address(peer("127.0.0.1"), &garbage),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = proxies(&["127.0.0.1"]);
        let forwarded = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https"#,
        )]);
        assert_eq!(
            trusted.client_address(peer("127.0.0.1"), &forwarded),
            ip("2001:db8:cafe::17")
        );
        let with_port = headers(&[("forwarded", "for=203.0.113.9:1234;by=10.0.0.1")]);
        assert_eq!(
            trusted.client_address(peer("127.0.0.1"), &with_port),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let trusted = proxies(&["127.0.0.1"]);
        let chain = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            trusted.client_address(peer("::ffff:127.0.0.1"), &chain),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = ClientAddress::new("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddress::new("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let v4 = ClientAddress::new("::ffff:203.0.113.7".parse().unwrap());
        assert_eq!(v4.to_string(), "203.0.113.7");
    }

    #[test]
    fn proxy_ranges_parse_addresses_and_cidrs() {
        assert!(ProxyRange::parse("10.0.0.0/8").is_ok());
        assert!(ProxyRange::parse(" 127.0.0.1 ").is_ok());
        assert!(ProxyRange::parse("::1").is_ok());
        assert!(ProxyRange::parse("fd00::/8").is_ok());
        assert!(ProxyRange::parse("localhost").is_err());
        assert!(ProxyRange::parse("10.0.0.0/33").is_err());
    }
}
