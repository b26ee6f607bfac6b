//! The forwarding table on the simulated data plane: RPF in, listeners out, updates as
//! listeners come and go, domains flipped at once, routing switched off.

use super::sim::SimDataPlane;
use super::*;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const UP: u32 = 2; // upstream, towards 2001:db8:100::/64
const DOWN1: u32 = 3;
const DOWN2: u32 = 4;

fn routes() -> Vec<Route> {
    vec![
        Route {
            dst: a("2001:db8:100::"),
            prefix: 64,
            oif: UP,
            metric: 256,
        },
        Route {
            dst: a("2001:db8:3::"),
            prefix: 64,
            oif: DOWN1,
            metric: 256,
        },
    ]
}

/// Listeners: group → interfaces (all sources).
fn listeners(table: &[(&str, u32)]) -> impl Fn(&Ipv6Addr, &Ipv6Addr) -> BTreeMap<u32, Domain> {
    let t: Vec<(Ipv6Addr, u32)> = table.iter().map(|(g, i)| (a(g), *i)).collect();
    move |g: &Ipv6Addr, _s: &Ipv6Addr| {
        t.iter()
            .filter(|(x, _)| x == g)
            .map(|(_, i)| (*i, Domain::ALWAYS))
            .collect()
    }
}

fn setup() -> (Forwarding, SimDataPlane) {
    let mut f = Forwarding::default();
    let mut dp = SimDataPlane::default();
    dp.apply(&f.set_enabled(true, &[UP, DOWN1, DOWN2]));
    assert_eq!(dp.mifs.len(), 3);
    (f, dp)
}

#[test]
fn nocache_installs_rpf_entry_towards_listeners() {
    let (mut f, mut dp) = setup();
    let (s, g, other) = (a("2001:db8:100::10"), a("ff0e::1"), a("ff0e::2"));
    let l = listeners(&[("ff0e::1", DOWN1), ("ff0e::1", DOWN2)]);
    assert!(dp.forward(s, g, UP).is_none());
    let up_mif = f.mif_of(UP).unwrap();
    dp.apply(&f.on_nocache(Time::ZERO, s, g, up_mif, &routes(), &l));
    assert_eq!(dp.forward(s, g, UP).unwrap(), vec![DOWN1, DOWN2]);
    // Arriving on a downstream interface is never forwarded.
    assert_eq!(dp.forward(s, g, DOWN1).unwrap(), Vec::<u32>::new());
    // A group without listeners gets an entry with no outgoing interface.
    dp.apply(&f.on_nocache(Time::ZERO, s, other, up_mif, &routes(), &l));
    assert_eq!(dp.forward(s, other, UP).unwrap(), Vec::<u32>::new());
    let e = f.mfib.get(&(g, s)).unwrap();
    assert_eq!(e.iif, Some(UP));
    assert!(f.mfib.entry_active(e));
    assert!(!f.mfib.entry_active(f.mfib.get(&(other, s)).unwrap()));
}

#[test]
fn rpf_interface_is_never_an_outgoing_interface() {
    let (mut f, mut dp) = setup();
    let (s, g) = (a("2001:db8:3::10"), a("ff0e::1"));
    let l = listeners(&[("ff0e::1", DOWN1), ("ff0e::1", DOWN2)]);
    let m = f.mif_of(DOWN1).unwrap();
    dp.apply(&f.on_nocache(Time::ZERO, s, g, m, &routes(), &l));
    assert_eq!(dp.forward(s, g, DOWN1).unwrap(), vec![DOWN2]);
}

#[test]
fn no_route_to_the_source_forwards_nothing() {
    let (mut f, mut dp) = setup();
    let (s, g) = (a("3fff::1"), a("ff0e::1"));
    let l = listeners(&[("ff0e::1", DOWN1)]);
    let m = f.mif_of(UP).unwrap();
    dp.apply(&f.on_nocache(Time::ZERO, s, g, m, &routes(), &l));
    assert_eq!(dp.forward(s, g, UP).unwrap(), Vec::<u32>::new());
    assert_eq!(f.mfib.get(&(g, s)).unwrap().iif, None);
}

#[test]
fn listeners_coming_and_going_update_entries() {
    let (mut f, mut dp) = setup();
    let (s, g) = (a("2001:db8:100::10"), a("ff0e::1"));
    let m = f.mif_of(UP).unwrap();
    dp.apply(&f.on_nocache(Time::ZERO, s, g, m, &routes(), &listeners(&[])));
    assert_eq!(dp.forward(s, g, UP).unwrap(), Vec::<u32>::new());
    let joined = listeners(&[("ff0e::1", DOWN2)]);
    dp.apply(&f.refresh_group(Time::from_millis(10), g, &joined));
    assert_eq!(dp.forward(s, g, UP).unwrap(), vec![DOWN2]);
    assert_eq!(
        f.mfib
            .get(&(g, Ipv6Addr::UNSPECIFIED))
            .unwrap()
            .oifs
            .keys()
            .collect::<Vec<_>>(),
        vec![&DOWN2]
    );
    // Unchanged listeners: nothing to do.
    assert!(f
        .refresh_group(Time::from_millis(20), g, &joined)
        .is_empty());
    dp.apply(&f.refresh_group(Time::from_millis(30), g, &listeners(&[])));
    assert_eq!(dp.forward(s, g, UP).unwrap(), Vec::<u32>::new());
    assert!(f.mfib.get(&(g, Ipv6Addr::UNSPECIFIED)).is_none());
    assert_eq!(f.mfib.get(&(g, s)).unwrap().since, Time::ZERO);
}

#[test]
fn domains_flip_at_once() {
    let (mut f, mut dp) = setup();
    let d = Domain(7);
    let l =
        move |_g: &Ipv6Addr, _s: &Ipv6Addr| BTreeMap::from([(DOWN1, d), (DOWN2, Domain::ALWAYS)]);
    let m = f.mif_of(UP).unwrap();
    let s = a("2001:db8:100::10");
    for i in 1..=100u16 {
        let g = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, i);
        dp.apply(&f.on_nocache(Time::ZERO, s, g, m, &routes(), &l));
    }
    dp.apply(&f.set_domain_active(d, false));
    let g1 = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 1);
    assert_eq!(dp.forward(s, g1, UP).unwrap(), vec![DOWN2]);
    assert!(!f.mfib.domain_active(d));
    // The table flip itself is one write; the entries keep both interfaces prepared.
    assert_eq!(f.mfib.get(&(g1, s)).unwrap().oifs.len(), 2);
    dp.apply(&f.set_domain_active(d, true));
    assert_eq!(dp.forward(s, g1, UP).unwrap(), vec![DOWN1, DOWN2]);
}

#[test]
fn link_scope_groups_are_never_routed_and_disable_clears_everything() {
    let (mut f, mut dp) = setup();
    let m = f.mif_of(UP).unwrap();
    let l = listeners(&[("ff02::1:2", DOWN1), ("ff0e::1", DOWN1)]);
    let s = a("2001:db8:100::10");
    assert!(f
        .on_nocache(Time::ZERO, s, a("ff02::1:2"), m, &routes(), &l)
        .is_empty());
    dp.apply(&f.on_nocache(Time::ZERO, s, a("ff0e::1"), m, &routes(), &l));
    dp.apply(&f.set_enabled(false, &[]));
    assert_eq!(dp, SimDataPlane::default());
    assert!(f.mfib.is_empty());
}

#[test]
fn idle_entries_age_out_and_busy_ones_stay() {
    let (mut f, mut dp) = setup();
    let m = f.mif_of(UP).unwrap();
    let l = listeners(&[("ff0e::1", DOWN1)]);
    let s = a("2001:db8:100::10");
    let (busy, idle) = (a("ff0e::1"), a("ff0e::2"));
    dp.apply(&f.on_nocache(Time::ZERO, s, busy, m, &routes(), &l));
    dp.apply(&f.on_nocache(Time::ZERO, s, idle, m, &routes(), &l));
    let counts = |t: u64| move |k: &Key| Some(if k.0 == busy { t } else { 0 });
    assert!(f
        .age(Time::from_millis(100_000), counts(5), IDLE_TIMEOUT)
        .is_empty());
    dp.apply(&f.age(Time::ZERO + IDLE_TIMEOUT, counts(9), IDLE_TIMEOUT));
    assert!(dp.forward(s, idle, UP).is_none());
    assert!(f.mfib.get(&(idle, s)).is_none());
    assert_eq!(dp.forward(s, busy, UP).unwrap(), vec![DOWN1]);
    // The busy one goes only after a full idle period without packets.
    assert!(f
        .age(
            Time::ZERO + IDLE_TIMEOUT + Duration::from_millis(100_000),
            counts(9),
            IDLE_TIMEOUT,
        )
        .is_empty());
    dp.apply(&f.age(Time::ZERO + 2 * IDLE_TIMEOUT, counts(9), IDLE_TIMEOUT));
    assert!(dp.forward(s, busy, UP).is_none());
    assert!(f.mfib.is_empty());
}

#[test]
fn with_slots_a_domain_flips_with_one_binding_per_slot() {
    let (mut f, mut dp) = setup();
    f.use_slots(true);
    let d = Domain(7);
    let l =
        move |_g: &Ipv6Addr, _s: &Ipv6Addr| BTreeMap::from([(DOWN1, d), (DOWN2, Domain::ALWAYS)]);
    let m = f.mif_of(UP).unwrap();
    let s = a("2001:db8:100::10");
    let g = |i: u16| Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, i);
    // Entries prepared while the domain is standby forward only on the always-active one.
    dp.apply(&f.set_domain_active(d, false));
    for i in 1..=100 {
        dp.apply(&f.on_nocache(Time::ZERO, s, g(i), m, &routes(), &l));
    }
    assert_eq!(dp.forward(s, g(1), UP).unwrap(), vec![DOWN2]);
    let before = dp.mfc.clone();
    let acts = f.set_domain_active(d, true);
    assert_eq!(
        acts.len(),
        1,
        "one slot re-bound, no entry touched: {acts:?}"
    );
    dp.apply(&acts);
    assert_eq!(dp.mfc, before);
    for i in 1..=100 {
        assert_eq!(dp.forward(s, g(i), UP).unwrap(), vec![DOWN1, DOWN2]);
    }
    dp.apply(&f.set_domain_active(d, false));
    assert_eq!(dp.forward(s, g(50), UP).unwrap(), vec![DOWN2]);
    // The table still shows both interfaces, DOWN1 in the standby domain.
    let e = f.mfib.get(&(g(50), s)).unwrap();
    assert_eq!(e.oifs.len(), 2);
    assert_eq!(f.mfib.active_oifs(e), vec![DOWN2]);
    dp.apply(&f.set_enabled(false, &[]));
    assert_eq!(dp, SimDataPlane::default());
}

#[test]
fn link_scope_groups_and_link_local_or_unspecified_sources_get_no_entry() {
    let (mut f, _dp) = setup();
    let l = listeners(&[("ff0e::1", DOWN1), ("ff02::1:3", DOWN1), ("ff01::5", DOWN1)]);
    let m = f.mif_of(UP).unwrap();
    for (s, g) in [
        ("fe80::10", "ff0e::1"),
        ("::", "ff0e::1"),
        ("2001:db8:100::10", "ff02::1:3"),
        ("2001:db8:100::10", "ff01::5"),
    ] {
        assert!(
            f.on_nocache(Time::ZERO, a(s), a(g), m, &routes(), &l)
                .is_empty(),
            "{s} {g}"
        );
    }
    assert!(f.mfib.is_empty());
    assert!(!f
        .on_nocache(
            Time::ZERO,
            a("2001:db8:100::10"),
            a("ff0e::1"),
            m,
            &routes(),
            &l
        )
        .is_empty());
}
