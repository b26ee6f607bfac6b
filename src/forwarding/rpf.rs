//! Reverse-path choice without PIM: the incoming interface of (S,G) is the interface of the
//! kernel's best unicast route towards S (longest prefix, then lowest metric).

use std::net::Ipv6Addr;

/// A unicast route as netlink reads it from the kernel: what the choice is made over.
pub use crate::netio::netlink::Route;

fn covers(r: &Route, a: &Ipv6Addr) -> bool {
    if r.prefix == 0 {
        return true;
    }
    let p = r.prefix.min(128) as u32;
    let mask = u128::MAX << (128 - p);
    (u128::from(*a) & mask) == (u128::from(r.dst) & mask)
}

/// The interface index towards `source`, if a route covers it.
pub fn rpf_interface(routes: &[Route], source: &Ipv6Addr) -> Option<u32> {
    routes
        .iter()
        .filter(|r| r.oif != 0 && covers(r, source))
        .min_by(|a, b| b.prefix.cmp(&a.prefix).then(a.metric.cmp(&b.metric)))
        .map(|r| r.oif)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, prefix: u8, oif: u32, metric: u32) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            prefix,
            oif,
            metric,
        }
    }

    #[test]
    fn longest_prefix_then_lowest_metric() {
        let routes = [
            r("::", 0, 1, 1024),
            r("2001:db8::", 32, 2, 256),
            r("2001:db8:1::", 48, 3, 512),
            r("2001:db8:1::", 48, 4, 256),
            r("2001:db8:2::", 48, 0, 1),
        ];
        let s = |x: &str| x.parse::<Ipv6Addr>().unwrap();
        assert_eq!(rpf_interface(&routes, &s("2001:db8:1::9")), Some(4));
        assert_eq!(rpf_interface(&routes, &s("2001:db8:5::9")), Some(2));
        // A route without an interface (unreachable) is no RPF interface.
        assert_eq!(rpf_interface(&routes, &s("2001:db8:2::1")), Some(2));
        assert_eq!(rpf_interface(&routes, &s("3fff::1")), Some(1));
        assert_eq!(rpf_interface(&routes[1..], &s("3fff::1")), None);
        assert_eq!(
            rpf_interface(&[r("2001:db8::1", 128, 7, 0)], &s("2001:db8::1")),
            Some(7)
        );
    }
}
