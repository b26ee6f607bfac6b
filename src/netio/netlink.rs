//! A blocking facade over rtnetlink: link state, addresses, IPv6 routes, macvlans and proxy
//! neighbour entries, served by one thread with its own event loop so that synchronous code
//! (the commit pipeline) can call it.

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, CacheInfo};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, MacVlanMode};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{AddressMessageBuilder, Handle, LinkMacVlan, LinkUnspec, LinkVeth};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use tokio::sync::mpsc as amsc;

/// A Linux link as netlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    /// Operationally up (IFF_RUNNING: up with carrier).
    pub running: bool,
    /// The Ethernet address, when the link has one.
    pub mac: Option<[u8; 6]>,
    /// The link's MTU (0 when the kernel did not say).
    pub mtu: u32,
}

/// An IPv6 unicast route as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv6Addr,
    pub prefix: u8,
    pub oif: u32,
    pub metric: u32,
}

/// An address on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    pub ip: IpAddr,
    pub prefix: u8,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("netlink: {0}")]
pub struct NetlinkError(pub String);

type Reply<T> = mpsc::Sender<Result<T, NetlinkError>>;

enum Request {
    Links(Reply<Vec<Link>>),
    SetUp(u32, bool, Reply<()>),
    Addrs(u32, Reply<Vec<Addr>>),
    AddAddr(u32, Addr, Reply<()>),
    DelAddr(u32, Addr, Reply<()>),
    Routes6(Reply<Vec<Route>>),
    AddVirtual(u32, Addr, Reply<()>),
    AddMacvlan(u32, String, [u8; 6], Reply<()>),
    AddVeth(String, String, Reply<()>),
    DelLink(u32, Reply<()>),
    Proxy(u32, Ipv6Addr, bool, Reply<()>),
}

/// A handle to the netlink thread; cheap to clone.
#[derive(Clone)]
pub struct Netlink {
    tx: amsc::UnboundedSender<Request>,
}

fn err<E: std::fmt::Display>(e: E) -> NetlinkError {
    NetlinkError(e.to_string())
}

impl Netlink {
    /// Opens a netlink socket in this thread's network namespace and starts serving requests.
    pub fn start() -> Result<Netlink, NetlinkError> {
        let (tx, mut rx) = amsc::unbounded_channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("netlink".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(err(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let (conn, handle, _) = match rtnetlink::new_connection() {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(err(e)));
                            return;
                        }
                    };
                    tokio::spawn(conn);
                    let _ = ready_tx.send(Ok(()));
                    while let Some(req) = rx.recv().await {
                        serve(&handle, req).await;
                    }
                });
            })
            .map_err(err)?;
        ready_rx.recv().map_err(err)??;
        Ok(Netlink { tx })
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, NetlinkError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(make(tx))
            .map_err(|_| NetlinkError("netlink thread stopped".into()))?;
        rx.recv()
            .map_err(|_| NetlinkError("netlink thread stopped".into()))?
    }

    pub fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        self.call(Request::Links)
    }

    pub fn set_up(&self, index: u32, up: bool) -> Result<(), NetlinkError> {
        self.call(|r| Request::SetUp(index, up, r))
    }

    pub fn addrs(&self, index: u32) -> Result<Vec<Addr>, NetlinkError> {
        self.call(|r| Request::Addrs(index, r))
    }

    pub fn add_addr(&self, index: u32, addr: Addr) -> Result<(), NetlinkError> {
        self.call(|r| Request::AddAddr(index, addr, r))
    }

    pub fn del_addr(&self, index: u32, addr: Addr) -> Result<(), NetlinkError> {
        self.call(|r| Request::DelAddr(index, addr, r))
    }

    /// Adds a virtual address: usable at once (no duplicate address detection, IFA_F_NODAD)
    /// and deprecated (preferred lifetime 0), so that the kernel never picks it as the source
    /// of its own packets while it still receives and answers for it.
    pub fn add_virtual_addr(&self, index: u32, addr: Addr) -> Result<(), NetlinkError> {
        self.call(|r| Request::AddVirtual(index, addr, r))
    }

    /// Creates a private-mode macvlan named `name` on `parent` with address `mac`, left down.
    pub fn add_macvlan(&self, parent: u32, name: &str, mac: [u8; 6]) -> Result<(), NetlinkError> {
        self.call(|r| Request::AddMacvlan(parent, name.to_string(), mac, r))
    }

    /// Adds a veth pair (both ends down).
    pub fn add_veth(&self, name: &str, peer: &str) -> Result<(), NetlinkError> {
        self.call(|r| Request::AddVeth(name.to_string(), peer.to_string(), r))
    }

    pub fn del_link(&self, index: u32) -> Result<(), NetlinkError> {
        self.call(|r| Request::DelLink(index, r))
    }

    /// Adds (or removes) a proxy neighbour entry: the kernel answers Neighbor Solicitations
    /// for `ip` on the link (with proxy_ndp and forwarding on) without owning the address.
    pub fn set_proxy(&self, index: u32, ip: Ipv6Addr, present: bool) -> Result<(), NetlinkError> {
        self.call(|r| Request::Proxy(index, ip, present, r))
    }

    /// IPv6 unicast routes of the main table, with their outgoing interface.
    pub fn routes6(&self) -> Result<Vec<Route>, NetlinkError> {
        self.call(Request::Routes6)
    }
}

async fn serve(handle: &Handle, req: Request) {
    match req {
        Request::Links(r) => {
            let res = async {
                let mut out = Vec::new();
                let mut s = handle.link().get().execute();
                while let Some(m) = s.try_next().await.map_err(err)? {
                    let name = m.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    });
                    let mac = m.attributes.iter().find_map(|a| match a {
                        LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
                        _ => None,
                    });
                    let mtu = m.attributes.iter().find_map(|a| match a {
                        LinkAttribute::Mtu(m) => Some(*m),
                        _ => None,
                    });
                    if let Some(name) = name {
                        out.push(Link {
                            mtu: mtu.unwrap_or(0),
                            index: m.header.index,
                            name,
                            up: m.header.flags.contains(LinkFlags::Up),
                            running: m.header.flags.contains(LinkFlags::Running),
                            mac,
                        });
                    }
                }
                Ok(out)
            }
            .await;
            let _ = r.send(res);
        }
        Request::SetUp(index, up, r) => {
            let b = LinkUnspec::new_with_index(index);
            let msg = if up { b.up() } else { b.down() }.build();
            let _ = r.send(handle.link().set(msg).execute().await.map_err(err));
        }
        Request::Addrs(index, r) => {
            let res = async {
                let mut out = Vec::new();
                let mut s = handle
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .execute();
                while let Some(m) = s.try_next().await.map_err(err)? {
                    if let Some(a) = addr_of(&m) {
                        out.push(a);
                    }
                }
                Ok(out)
            }
            .await;
            let _ = r.send(res);
        }
        Request::AddAddr(index, a, r) => {
            let res = handle
                .address()
                .add(index, a.ip, a.prefix)
                .execute()
                .await
                .map_err(err);
            let _ = r.send(res);
        }
        Request::AddVirtual(index, a, r) => {
            let mut req = handle.address().add(index, a.ip, a.prefix).replace();
            let attrs = &mut req.message_mut().attributes;
            attrs.push(AddressAttribute::Flags(AddressFlags::Nodad));
            let mut lifetimes = CacheInfo::default();
            lifetimes.ifa_preferred = 0;
            lifetimes.ifa_valid = u32::MAX;
            attrs.push(AddressAttribute::CacheInfo(lifetimes));
            let _ = r.send(req.execute().await.map_err(err));
        }
        Request::AddMacvlan(parent, name, mac, r) => {
            let msg = LinkMacVlan::new(&name, parent, MacVlanMode::Private)
                .address(mac.to_vec())
                .build();
            let _ = r.send(handle.link().add(msg).execute().await.map_err(err));
        }
        Request::AddVeth(name, peer, r) => {
            let msg = LinkVeth::new(&name, &peer).build();
            let _ = r.send(handle.link().add(msg).execute().await.map_err(err));
        }
        Request::DelLink(index, r) => {
            let _ = r.send(handle.link().del(index).execute().await.map_err(err));
        }
        Request::Proxy(index, ip, present, r) => {
            let res = if present {
                handle
                    .neighbours()
                    .add(index, IpAddr::V6(ip))
                    .flags(NeighbourFlags::Proxy)
                    .replace()
                    .execute()
                    .await
            } else {
                let mut msg = NeighbourMessage::default();
                msg.header.family = AddressFamily::Inet6;
                msg.header.ifindex = index;
                msg.header.flags = NeighbourFlags::Proxy;
                msg.attributes
                    .push(NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)));
                handle.neighbours().del(msg).execute().await
            };
            let _ = r.send(res.map_err(err));
        }
        Request::Routes6(r) => {
            let res = async {
                let mut out = Vec::new();
                let req = rtnetlink::RouteMessageBuilder::<Ipv6Addr>::new().build();
                let mut s = handle.route().get(req).execute();
                while let Some(m) = s.try_next().await.map_err(err)? {
                    if let Some(route) = route_of(&m) {
                        out.push(route);
                    }
                }
                Ok(out)
            }
            .await;
            let _ = r.send(res);
        }
        Request::DelAddr(index, a, r) => {
            let msg = match a.ip {
                IpAddr::V4(ip) => AddressMessageBuilder::<Ipv4Addr>::new()
                    .index(index)
                    .address(ip, a.prefix)
                    .build(),
                IpAddr::V6(ip) => AddressMessageBuilder::<Ipv6Addr>::new()
                    .index(index)
                    .address(ip, a.prefix)
                    .build(),
            };
            let _ = r.send(handle.address().del(msg).execute().await.map_err(err));
        }
    }
}

fn addr_of(m: &AddressMessage) -> Option<Addr> {
    // IPv4 reports the interface address as Local; IPv6 as Address.
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    local.or(address).map(|ip| Addr {
        ip,
        prefix: m.header.prefix_len,
    })
}

fn route_of(m: &RouteMessage) -> Option<Route> {
    let mut table = m.header.table as u32;
    let (mut dst, mut oif, mut metric) = (Ipv6Addr::UNSPECIFIED, 0, 0);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = *d,
            RouteAttribute::Oif(i) => oif = *i,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::MultiPath(hops) if oif == 0 => {
                oif = hops.first().map_or(0, |h| h.interface_index);
            }
            _ => {}
        }
    }
    (table == 254 && m.header.kind == RouteType::Unicast).then_some(Route {
        dst,
        prefix: m.header.destination_prefix_length,
        oif,
        metric,
    })
}
