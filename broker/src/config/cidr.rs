//! An address range as settings spell it: `10.0.0.0/8`, `2001:db8::/32`, or a bare address
//! for one host. The admission settings (exempt addresses, trusted proxies) are lists of them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// A network in CIDR notation; a bare address is that host alone (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether `ip` is inside the range. An IPv4 address that arrives as IPv4-mapped IPv6
    /// (`::ffff:10.1.2.3`, what a dual-stack socket reports) matches IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// `127.0.0.0/8` and `::1`: the host itself, and a reverse proxy running on it.
    pub fn loopback() -> Vec<Cidr> {
        ["127.0.0.0/8", "::1/128"]
            .iter()
            .map(|text| text.parse().expect("a valid literal"))
            .collect()
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Cidr(net.trunc()));
        }
        text.parse::<IpAddr>()
            .map(|ip| Cidr(IpNet::from(ip)))
            .map_err(|_| format!("{text:?} is not an address or a CIDR range like 10.0.0.0/8"))
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_bare_addresses_parse() {
        let net: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(net.contains("10.200.1.1".parse().expect("ip")));
        assert!(!net.contains("11.0.0.1".parse().expect("ip")));
        let host: Cidr = "192.0.2.7".parse().expect("bare address");
        assert_eq!(host.to_string(), "192.0.2.7/32");
        assert!(host.contains("::ffff:192.0.2.7".parse().expect("mapped")));
        assert!("not-an-address".parse::<Cidr>().is_err());
        // Host bits are dropped, so what is shown is what matches.
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().expect("cidr").to_string(),
            "10.0.0.0/8"
        );
    }
}
