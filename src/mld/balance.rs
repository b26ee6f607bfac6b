//! The active-active load-balance function: which of the two devices forwards an (S,G). Both
//! devices compute it alike from the addresses alone, so every (S,G) has exactly one owner.

use std::net::Ipv6Addr;

/// Forwarder selection of a profile (`load-balance` in mldhb-rbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalance {
    /// The role master forwards everything: every (S,G) is in bucket 0.
    #[default]
    MasterOnly,
    /// The bucket follows the group address.
    GroupHash,
    /// The bucket follows the source and the group address.
    SourceGroupHash,
}

/// The splitmix64 finaliser: every input bit moves about half the output bits, so
/// neighbouring group addresses land in either bucket alike.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn fold(a: &Ipv6Addr) -> u64 {
    let v = u128::from(*a);
    mix((v >> 64) as u64 ^ mix(v as u64))
}

/// The bucket (0 or 1) of (source, group); the source is ignored unless the policy uses it
/// (the unspecified source stands for (*,G)).
pub fn bucket(lb: LoadBalance, group: &Ipv6Addr, source: &Ipv6Addr) -> usize {
    let h = match lb {
        LoadBalance::MasterOnly => return 0,
        LoadBalance::GroupHash => fold(group),
        LoadBalance::SourceGroupHash => mix(fold(group) ^ fold(source).rotate_left(17)),
    };
    (h >> 63) as usize
}

/// The bucket this device owns: 0 for the device with the lower RBS source address.
pub fn own_bucket(local: &Ipv6Addr, peer: &Ipv6Addr) -> usize {
    usize::from(local > peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(n: u32) -> Vec<Ipv6Addr> {
        (0..n)
            .map(|i| Ipv6Addr::from(0xff0e_u128 << 112 | u128::from(i)))
            .collect()
    }

    #[test]
    fn exactly_one_owner_per_flow_and_a_fair_split() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:10::1".parse().unwrap(),
            "2001:db8:10::2".parse().unwrap(),
        );
        assert_eq!((own_bucket(&a, &b), own_bucket(&b, &a)), (0, 1));
        let s: Ipv6Addr = "2001:db8:100::10".parse().unwrap();
        for lb in [LoadBalance::GroupHash, LoadBalance::SourceGroupHash] {
            let mut per = [0usize; 2];
            for g in groups(10_000) {
                // Device A and device B evaluate the same function: one owner each time.
                let on_a = bucket(lb, &g, &s) == own_bucket(&a, &b);
                let on_b = bucket(lb, &g, &s) == own_bucket(&b, &a);
                assert!(on_a ^ on_b, "{g}");
                per[bucket(lb, &g, &s)] += 1;
            }
            assert!(per[0] > 4_700 && per[1] > 4_700, "{lb:?}: {per:?}");
        }
    }

    #[test]
    fn master_only_is_bucket_zero_and_group_hash_ignores_the_source() {
        let g: Ipv6Addr = "ff0e::1".parse().unwrap();
        let s1: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(bucket(LoadBalance::MasterOnly, &g, &s1), 0);
        assert_eq!(
            bucket(LoadBalance::GroupHash, &g, &s1),
            bucket(LoadBalance::GroupHash, &g, &Ipv6Addr::UNSPECIFIED)
        );
        // Over many sources the source-group hash uses both buckets for one group.
        let used: std::collections::BTreeSet<usize> = (0..64u128)
            .map(|i| bucket(LoadBalance::SourceGroupHash, &g, &Ipv6Addr::from(i)))
            .collect();
        assert_eq!(used.len(), 2);
    }
}
