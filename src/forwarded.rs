//! The real client address of a connection behind reverse proxies.
//!
//! A proxy's address is what the TCP peer shows; the client's is in a
//! header the proxy adds (`X-Forwarded-For`, or `Forwarded` of RFC 7239).
//! Anyone can send such a header, so it is believed only when the TCP peer
//! is one of the configured trusted proxies (`--trusted-proxies`), and
//! then read from the right: each proxy appends the address it saw, so the
//! rightmost address that is not itself a trusted proxy is the client.
//! Everything that keys on an address (login throttling, registration and
//! unauthenticated-socket limits, logs) uses the result. Pure: no I/O.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::http::RequestHead;

/// An address block such as `10.0.0.0/8` or `::1/128`; a bare address is
/// a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

/// Why a `--trusted-proxies` entry was refused.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an address or CIDR block (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

impl Cidr {
    /// True when `ip` is inside the block (an IPv4-mapped IPv6 address
    /// counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) & (0xffu8 << (8 - rest)) == 0
}

/// The header trusted proxies put the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx's `$proxy_add_x_forwarded_for`).
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239).
    Forwarded,
}

impl FromStr for AddressHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(AddressHeader::XForwardedFor),
            "forwarded" => Ok(AddressHeader::Forwarded),
            _ => Err(format!("`{s}`: expected x-forwarded-for or forwarded")),
        }
    }
}

/// The client's address for a connection from `peer` with request `head`:
/// `peer` itself unless `peer` is a trusted proxy; then the rightmost
/// address of `header` that is not a trusted proxy. An entry that cannot
/// be read (`unknown`, an obfuscated name, garbage) stops the walk: the
/// hop that reported it is the best address known.
pub fn client_addr(trusted: &[Cidr], header: AddressHeader, peer: SocketAddr, head: &RequestHead) -> SocketAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer.ip()) {
        return peer;
    }
    let (name, hops): (&str, Hops) = match header {
        AddressHeader::XForwardedFor => ("x-forwarded-for", xff_hops),
        AddressHeader::Forwarded => ("forwarded", forwarded_hops),
    };
    let mut client = peer.ip();
    for hop in head.header_values(name).flat_map(hops).rev() {
        let Some(ip) = hop else { break };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    SocketAddr::new(client, 0)
}

/// Reads the addresses of one header value, left to right (`None`: unreadable).
type Hops = fn(&str) -> Vec<Option<IpAddr>>;

/// The hops of one `X-Forwarded-For` value, left to right.
fn xff_hops(value: &str) -> Vec<Option<IpAddr>> {
    value.split(',').map(|h| node_ip(h.trim())).collect()
}

/// The `for=` hops of one `Forwarded` value, left to right (an element
/// without `for=` counts as unreadable).
fn forwarded_hops(value: &str) -> Vec<Option<IpAddr>> {
    value
        .split(',')
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| node_ip(v.trim().trim_matches('"'))).flatten()
            })
        })
        .collect()
}

/// An address from `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or
/// `[2001:db8::1]:4711`; `None` for anything else.
fn node_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        let mut raw = String::from("GET /ws HTTP/1.1\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        crate::http::parse_head(raw.as_bytes()).ok().flatten().map(|(h, _)| h).unwrap_or_else(|| panic!("{raw}"))
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap_or_else(|e| panic!("{e}"))).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn cidr_blocks() {
        let c = cidrs(&["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"]);
        assert!(c[0].contains(ip("10.200.1.1")) && !c[0].contains(ip("11.0.0.1")));
        assert!(c[1].contains(ip("192.168.1.7")) && !c[1].contains(ip("192.168.1.8")));
        assert!(c[2].contains(ip("2001:db8:ffff::1")) && !c[2].contains(ip("2001:db9::1")));
        assert!(c[0].contains(ip("::ffff:10.1.2.3")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err() && "nope".parse::<Cidr>().is_err());
        assert!("0.0.0.0/0".parse::<Cidr>().is_ok_and(|c| c.contains(ip("8.8.8.8"))));
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let trusted = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let h = head(&[("X-Forwarded-For", "203.0.113.9, 10.1.1.1")]);
        let xff = AddressHeader::XForwardedFor;
        let from = |peer: &str| client_addr(&trusted, xff, SocketAddr::new(ip(peer), 1234), &h).ip();
        assert_eq!(from("127.0.0.1"), ip("203.0.113.9"));
        assert_eq!(from("198.51.100.1"), ip("198.51.100.1"));
        // A forged left part is not the rightmost untrusted address.
        let forged = head(&[("X-Forwarded-For", "1.1.1.1, 203.0.113.9")]);
        assert_eq!(client_addr(&trusted, xff, SocketAddr::new(ip("127.0.0.1"), 1), &forged).ip(), ip("203.0.113.9"));
        // No header: the proxy itself.
        assert_eq!(client_addr(&trusted, xff, SocketAddr::new(ip("127.0.0.1"), 1), &head(&[])).ip(), ip("127.0.0.1"));
    }

    #[test]
    fn forwarded_header() {
        let trusted = cidrs(&["127.0.0.1"]);
        let peer = SocketAddr::new(ip("127.0.0.1"), 1);
        let h = head(&[
            ("Forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\""),
            ("X-Forwarded-For", "6.6.6.6"),
        ]);
        assert_eq!(client_addr(&trusted, AddressHeader::Forwarded, peer, &h).ip(), ip("2001:db8:cafe::17"));
        assert_eq!(client_addr(&trusted, AddressHeader::XForwardedFor, peer, &h).ip(), ip("6.6.6.6"));
        let unknown = head(&[("Forwarded", "for=unknown")]);
        assert_eq!(client_addr(&trusted, AddressHeader::Forwarded, peer, &unknown).ip(), ip("127.0.0.1"));
    }

    #[test]
    fn several_header_lines_read_as_one_list() {
        let trusted = cidrs(&["127.0.0.0/8"]);
        let h = head(&[("X-Forwarded-For", "203.0.113.1"), ("X-Forwarded-For", "127.0.0.5:80")]);
        let got = client_addr(&trusted, AddressHeader::XForwardedFor, SocketAddr::new(ip("127.0.0.1"), 1), &h);
        assert_eq!(got.ip(), ip("203.0.113.1"));
    }
}
