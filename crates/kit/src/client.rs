//! Who the client is: the address the access log, X-Forwarded-For and (planned) IP-bound tokens
//! use, derived from the TCP peer and, only behind a trusted proxy, from X-Forwarded-For.
//!
//! Without `server.trusted_proxies` (the default) the peer is the client, and any
//! X-Forwarded-For the client sent is discarded: the origin sees exactly one address, the peer's.
//! When the peer is a trusted proxy, the header is walked from the right past every trusted hop;
//! the first untrusted address is the client, and the peer is appended to the header sent on.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The networks whose X-Forwarded-For is believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.1`).
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<TrustedProxies, Vec<(usize, String)>> {
        let mut nets = Vec::new();
        let mut bad = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let parsed = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => nets.push(net.trunc()),
                Err(_) => bad.push((
                    i,
                    format!("\"{entry}\" is not an address or CIDR like 10.0.0.0/8"),
                )),
            }
        }
        if bad.is_empty() {
            Ok(TrustedProxies(nets))
        } else {
            Err(bad)
        }
    }

    /// Whether `ip` is inside a trusted network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// What the gateway knows about the client of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The TCP peer (`None` on a Unix socket).
    pub peer: Option<IpAddr>,
    /// The derived client address: the peer, or behind trusted proxies the first untrusted hop.
    pub addr: Option<IpAddr>,
    /// X-Forwarded-For as received, kept only when the peer is trusted.
    forwarded: Option<String>,
    /// The client connection is TLS.
    pub tls: bool,
}

impl ClientInfo {
    /// Derives the client from the peer address and the request headers.
    pub fn derive(
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
        tls: bool,
    ) -> ClientInfo {
        let peer = peer.map(canonical);
        let trusted_peer = peer.filter(|p| trusted.contains(*p));
        let forwarded = trusted_peer.and_then(|_| received_forwarded_for(headers));
        let addr = match (&forwarded, trusted_peer) {
            (Some(chain), Some(hop)) => Some(client_from_chain(chain, hop, trusted)),
            _ => peer,
        };
        ClientInfo {
            peer,
            addr,
            forwarded,
            tls,
        }
    }

    /// The X-Forwarded-For value to send upstream: the trusted chain plus the peer, or just the
    /// peer. `None` only when there is no IP peer at all.
    pub fn forwarded_for(&self) -> Option<String> {
        let peer = self.peer?;
        Some(match &self.forwarded {
            Some(chain) => format!("{chain}, {peer}"),
            None => peer.to_string(),
        })
    }
}

/// Every X-Forwarded-For line joined in order, or `None` when absent or not text.
fn received_forwarded_for(headers: &HeaderMap) -> Option<String> {
    let mut out = String::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().ok()?.trim();
        if text.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(text);
    }
    (!out.is_empty()).then_some(out)
}

/// Walks `chain` from the right past trusted hops; the first untrusted address is the client.
/// An entry that is not an address ends the walk: the hop that forwarded it is the client.
fn client_from_chain(chain: &str, peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    for entry in chain.rsplit(',') {
        let Some(ip) = parse_hop(entry.trim()) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// One X-Forwarded-For entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| canonical(a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_and_their_header_is_dropped() {
        let c = ClientInfo::derive(
            Some(ip("192.0.2.7")),
            &headers(&["203.0.113.9"]),
            &TrustedProxies::default(),
            false,
        );
        assert_eq!(c.addr, Some(ip("192.0.2.7")));
        assert_eq!(c.forwarded_for().as_deref(), Some("192.0.2.7"));
    }

    #[test]
    fn trusted_peers_append_and_the_first_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8", "127.0.0.1"]).unwrap();
        let c = ClientInfo::derive(
            Some(ip("127.0.0.1")),
            &headers(&["198.51.100.1, 203.0.113.9", "10.1.2.3"]),
            &trusted,
            true,
        );
        // 10.1.2.3 is trusted, 203.0.113.9 is not: it is the client (198.51.100.1 is its claim).
        assert_eq!(c.addr, Some(ip("203.0.113.9")));
        assert_eq!(
            c.forwarded_for().as_deref(),
            Some("198.51.100.1, 203.0.113.9, 10.1.2.3, 127.0.0.1")
        );
        // No header from a trusted peer: the peer is the client.
        let c = ClientInfo::derive(Some(ip("10.9.9.9")), &headers(&[]), &trusted, false);
        assert_eq!(c.addr, Some(ip("10.9.9.9")));
        assert_eq!(c.forwarded_for().as_deref(), Some("10.9.9.9"));
        // Garbage in the chain stops the walk at the hop that forwarded it.
        let c = ClientInfo::derive(
            Some(ip("127.0.0.1")),
            &headers(&["nonsense, 10.0.0.5"]),
            &trusted,
            false,
        );
        assert_eq!(c.addr, Some(ip("10.0.0.5")));
        // Ports and brackets in entries, IPv4-mapped peers.
        let c = ClientInfo::derive(
            Some(ip("::ffff:127.0.0.1")),
            &headers(&["[2001:db8::1]:443"]),
            &trusted,
            false,
        );
        assert_eq!(c.addr, Some(ip("2001:db8::1")));
    }

    #[test]
    fn bad_entries_are_reported_by_index() {
        let err = TrustedProxies::parse(["10.0.0.0/8", "ten", "1.2.3.4/33"]).unwrap_err();
        assert_eq!(err.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2]);
    }

    proptest! {
        #[test]
        fn any_forwarded_header_gives_an_address(
            value in proptest::collection::vec(
                prop_oneof![Just(",".to_string()), Just(" ".to_string()), Just("[".to_string()),
                    Just("10.0.0.1".to_string()), Just(":".to_string()), Just("::1".to_string()),
                    any::<char>().prop_map(String::from)],
                0..16,
            ).prop_map(|p| p.concat()),
        ) {
            let trusted = TrustedProxies::parse(["0.0.0.0/0", "::/0"]).unwrap();
            let mut h = HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                h.insert("x-forwarded-for", v);
            }
            let c = ClientInfo::derive(Some(ip("127.0.0.1")), &h, &trusted, false);
            prop_assert!(c.addr.is_some());
        }
    }
}
