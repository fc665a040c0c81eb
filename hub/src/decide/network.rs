//! Networks as `[http] v0_networks` names them (`192.168.1.0/24`, `fd00::/8`, a bare address), and whether an address is inside.

use std::net::IpAddr;

/// One network: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an address or address/prefix (e.g. 192.168.1.0/24, fd00::/8)")]
    Syntax(String),
    #[error("{text:?}: the prefix must be at most {max}")]
    Prefix { text: String, max: u8 },
}

impl std::str::FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || CidrError::Syntax(text.to_owned());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| syntax())?,
            None => max,
        };
        if prefix > max {
            return Err(CidrError::Prefix {
                text: text.to_owned(),
                max,
            });
        }
        Ok(Self { addr, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in this network. An IPv4 address reaching an IPv6
    /// socket (`::ffff:192.168.1.5`) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (bits, net, width) = match (ip, self.addr) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(n)), 32u32)
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
            _ => return false,
        };
        if self.prefix == 0 {
            return true;
        }
        let shift = width - u32::from(self.prefix);
        bits >> shift == net >> shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let lan: Cidr = "192.168.1.0/24".parse().unwrap();
        assert!(lan.contains(ip("192.168.1.77")));
        assert!(lan.contains(ip("::ffff:192.168.1.77")));
        assert!(!lan.contains(ip("192.168.2.1")));
        assert!(!lan.contains(ip("fd00::1")));
        let one: Cidr = "10.0.0.5".parse().unwrap();
        assert!(one.contains(ip("10.0.0.5")) && !one.contains(ip("10.0.0.6")));
        let ula: Cidr = "fd00::/8".parse().unwrap();
        assert!(ula.contains(ip("fd12::1")) && !ula.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
    }

    #[test]
    fn bad_networks_are_named() {
        for bad in ["192.168.1/24", "lan", "10.0.0.0/x"] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert!(matches!(err, CidrError::Syntax(_)), "{bad}: {err:?}");
        }
        let err = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
        assert!(err.to_string().contains("at most 32"), "{err}");
    }
}
