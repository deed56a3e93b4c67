//! The client address of an HTTP request that came through reverse proxies.
//!
//! Only a peer inside `trusted_proxy` is believed. nginx's `$proxy_add_x_forwarded_for`
//! appends the address it saw to whatever the client sent, so the header's left part is the
//! client's to forge: the client is the rightmost address that is not a trusted proxy,
//! walking from the peer leftwards. `X-Real-IP` (one address, set by the proxy) is used when
//! there is no `X-Forwarded-For`. STOMP over TCP carries no headers; behind a TCP proxy its
//! peer is the proxy (exempt it, or connect clients directly).

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::Cidr;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_REAL_IP: &str = "x-real-ip";

fn is_trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(ip))
}

/// The address to count a request from `peer` as.
pub(super) fn client_address(trusted: &[Cidr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let mut hops = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .peekable();
    if hops.peek().is_none() {
        return headers
            .get(X_REAL_IP)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(peer);
    }
    let hops: Vec<&str> = hops.collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An entry that is not an address ("unknown", garbage) was not written by a proxy we
        // trust, so the last trusted hop is as far as the chain can be followed.
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(trusted, ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    fn trusted() -> Vec<Cidr> {
        vec![
            "127.0.0.0/8".parse().expect("cidr"),
            "10.0.0.0/8".parse().expect("cidr"),
        ]
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_says() {
        let h = headers(&[(X_FORWARDED_FOR, "203.0.113.9"), (X_REAL_IP, "203.0.113.9")]);
        assert_eq!(
            client_address(&trusted(), ip("198.51.100.1"), &h),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn trusted_peer_names_the_rightmost_untrusted_hop() {
        // The client forged the first entry; nginx appended the real one; a second trusted
        // proxy (10.1.1.1) sits between.
        let h = headers(&[(X_FORWARDED_FOR, "1.2.3.4, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(
            client_address(&trusted(), ip("127.0.0.1"), &h),
            ip("203.0.113.9")
        );
        // Several header lines are one list.
        let h = headers(&[
            (X_FORWARDED_FOR, "1.2.3.4"),
            (X_FORWARDED_FOR, "203.0.113.9"),
        ]);
        assert_eq!(
            client_address(&trusted(), ip("127.0.0.1"), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn real_ip_without_forwarded_for_and_garbage_stops_the_walk() {
        let h = headers(&[(X_REAL_IP, "203.0.113.9")]);
        assert_eq!(
            client_address(&trusted(), ip("127.0.0.1"), &h),
            ip("203.0.113.9")
        );
        let h = headers(&[(X_FORWARDED_FOR, "203.0.113.9, unknown, 10.1.1.1")]);
        assert_eq!(
            client_address(&trusted(), ip("127.0.0.1"), &h),
            ip("10.1.1.1")
        );
        assert_eq!(
            client_address(&trusted(), ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }
}
