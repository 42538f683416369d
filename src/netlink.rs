// SPDX-License-Identifier: GPL-2.0

//! The "wireguard" generic netlink family (upstream `netlink.c`, with the
//! policies of `Documentation/netlink/specs/wireguard.yaml`).

use core::ops::ControlFlow;
use crate::device::{Config, Device, Tunnel, LINK_KIND};
use crate::kapi::crypto::{Secret, KEY_LEN};
use crate::kapi::genl::{
    attr_size, Attr, AttrBuf, AttrTable, DoHandler, DumpHandler, DumpProgress, DumpWriter, Family, OpFlags,
    Policy, PolicyEntry, Request, SplitOp, U64_ATTR_SIZE,
};
use crate::kapi::netdev::{Capability, DeviceKey, DeviceRef, IfName, LookupError};
use crate::kapi::sync::RtnlGuard;
use crate::kapi::time::NSEC_PER_SEC;
use crate::kapi::uapi::*;
use crate::allowedips::{AllowedIp, AllowedIps, Cursor, IpAddr, PeerIps};
use crate::kapi::rcu::RcuArc;
use crate::noise::StaticIdentity;
use crate::peer::{Peer, Sockaddr, AF_INET, AF_INET6};
use crate::{send, socket};
use kernel::{prelude::*, sync::atomic::Relaxed, transmute::AsBytes};

const KEY: u16 = KEY_LEN as u16;
/// `IFNAMSIZ - 1`.
const IFNAME_MAX: u16 = 15;
const IFNAMSIZ: usize = IFNAME_MAX as usize + 1;

static ALLOWEDIP_POLICY: Policy<{ WGALLOWEDIP_A_FLAGS as usize + 1 }> = Policy::new()
    .with(WGALLOWEDIP_A_FAMILY, PolicyEntry::u16())
    .with(WGALLOWEDIP_A_IPADDR, PolicyEntry::min_len(4))
    .with(WGALLOWEDIP_A_CIDR_MASK, PolicyEntry::u8())
    .with(WGALLOWEDIP_A_FLAGS, PolicyEntry::u32_mask(WGALLOWEDIP_F_REMOVE_ME));

static PEER_POLICY: Policy<{ WGPEER_A_PROTOCOL_VERSION as usize + 1 }> = Policy::new()
    .with(WGPEER_A_PUBLIC_KEY, PolicyEntry::exact_len(KEY))
    .with(WGPEER_A_PRESHARED_KEY, PolicyEntry::exact_len(KEY))
    .with(WGPEER_A_FLAGS, PolicyEntry::u32_mask(
        WGPEER_F_REMOVE_ME | WGPEER_F_REPLACE_ALLOWEDIPS | WGPEER_F_UPDATE_ONLY,
    ))
    .with(WGPEER_A_ENDPOINT, PolicyEntry::min_len(16))
    .with(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, PolicyEntry::u16())
    .with(WGPEER_A_LAST_HANDSHAKE_TIME, PolicyEntry::exact_len(16))
    .with(WGPEER_A_RX_BYTES, PolicyEntry::u64())
    .with(WGPEER_A_TX_BYTES, PolicyEntry::u64())
    .with(WGPEER_A_ALLOWEDIPS, PolicyEntry::nested_array(&ALLOWEDIP_POLICY))
    .with(WGPEER_A_PROTOCOL_VERSION, PolicyEntry::u32());

const GET_DEVICE_ATTRS: usize = WGDEVICE_A_IFNAME as usize + 1;
static GET_DEVICE_POLICY: Policy<GET_DEVICE_ATTRS> = Policy::new()
    .with(WGDEVICE_A_IFINDEX, PolicyEntry::u32())
    .with(WGDEVICE_A_IFNAME, PolicyEntry::nul_string(IFNAME_MAX));

const SET_DEVICE_ATTRS: usize = WGDEVICE_A_PEERS as usize + 1;
static SET_DEVICE_POLICY: Policy<SET_DEVICE_ATTRS> = Policy::new()
    .with(WGDEVICE_A_IFINDEX, PolicyEntry::u32())
    .with(WGDEVICE_A_IFNAME, PolicyEntry::nul_string(IFNAME_MAX))
    .with(WGDEVICE_A_PRIVATE_KEY, PolicyEntry::exact_len(KEY))
    .with(WGDEVICE_A_PUBLIC_KEY, PolicyEntry::exact_len(KEY))
    .with(WGDEVICE_A_FLAGS, PolicyEntry::u32_mask(WGDEVICE_F_REPLACE_PEERS))
    .with(WGDEVICE_A_LISTEN_PORT, PolicyEntry::u16())
    .with(WGDEVICE_A_FWMARK, PolicyEntry::u32())
    .with(WGDEVICE_A_PEERS, PolicyEntry::nested_array(&PEER_POLICY));

static OPS: [SplitOp; 2] = [
    SplitOp::dump::<GetDevice, GET_DEVICE_ATTRS>(
        WG_CMD_GET_DEVICE,
        &GET_DEVICE_POLICY,
        OpFlags::UNS_ADMIN_PERM,
    ),
    SplitOp::doit::<SetDevice, SET_DEVICE_ATTRS>(
        WG_CMD_SET_DEVICE,
        &SET_DEVICE_POLICY,
        OpFlags::UNS_ADMIN_PERM,
    ),
];

/// The family, version 1.
pub(crate) static FAMILY: Family = Family::new(c"wireguard", WG_GENL_VERSION as u8, &OPS);

/// Finds the device a request names by exactly one of ifindex and ifname.
fn lookup_interface(request: &Request<'_>) -> Result<DeviceRef<Device>> {
    let attrs = request.attrs();
    let name;
    let key = match (attrs.get(WGDEVICE_A_IFINDEX), attrs.get(WGDEVICE_A_IFNAME)) {
        (Some(index), None) => DeviceKey::Index(index.u32()?),
        (None, Some(attr)) => {
            name = attr.string::<IFNAMSIZ>()?;
            DeviceKey::Name(name.as_cstr())
        }
        _ => return Err(EBADR),
    };
    LINK_KIND.lookup(request.net(), key).map_err(|err| match err {
        LookupError::NotFound => ENODEV,
        LookupError::OtherKind => EOPNOTSUPP,
    })
}

/// `WG_CMD_GET_DEVICE`: the device's configuration, over as many messages
/// as it takes.
struct GetDevice;

/// Where a dump resumes. It names the device rather than holding it, so
/// that a dump nobody reads does not keep the device from going away (the
/// C driver holds it, and `ip link del` then waits for the reader).
struct DumpCursor {
    /// The device, found again by index in the dumping socket's namespace
    /// each round, and recognised by its instance (indices can be reused).
    ifindex: u32,
    instance: u64,
    /// Position of the next peer to dump.
    next_peer: u64,
    /// Whether a peer was complete in an earlier message.
    peer_done: bool,
    /// Where that peer's allowed IPs resume, if it was cut short, with the
    /// allowed-IPs generation seen when it started.
    allowedips: Option<(Cursor, u64)>,
}

/// How much of a peer made it into a message.
enum PeerFit {
    All,
    /// Its allowed IPs continue from the cursor in the next message.
    Partial(Cursor, u64),
    Nothing,
}

impl DumpHandler for GetDevice {
    type State = DumpCursor;

    fn start(request: &Request<'_>) -> Result<DumpCursor> {
        let device = lookup_interface(request)?;
        Ok(DumpCursor {
            ifindex: device.netdev().ifindex(),
            instance: device.instance,
            next_peer: 0,
            peer_done: false,
            allowedips: None,
        })
    }

    fn dump(cursor: &mut DumpCursor, writer: &mut DumpWriter<'_>) -> Result<DumpProgress> {
        // A device that went away (or moved) between rounds ends the dump.
        let device = LINK_KIND
            .lookup(writer.net(), DeviceKey::Index(cursor.ifindex))
            .ok()
            .filter(|device| device.instance == cursor.instance)
            .ok_or(ENODEV)?;
        let rtnl = RtnlGuard::lock();
        if !device.is_registered(&rtnl) {
            return Err(ENODEV);
        }
        let mut config = device.config.lock();
        let dev = device.netdev();
        let fwmark = device.tunnel().map_or(0, |tunnel| tunnel.fwmark());
        let mut msg = writer.begin(config.generation)?;
        msg.append(|buf| {
            // As upstream: the device's attributes lead every message until
            // a peer is complete; later messages carry only peers. (The
            // spec's prose says they carry the name too; upstream does not
            // send it.)
            if !cursor.peer_done {
                buf.put_u16(WGDEVICE_A_LISTEN_PORT, config.listen_port)?;
                buf.put_u32(WGDEVICE_A_FWMARK, fwmark)?;
                buf.put_u32(WGDEVICE_A_IFINDEX, dev.ifindex())?;
                buf.put_cstr(WGDEVICE_A_IFNAME, dev.name().as_cstr())?;
                if let Some((private, public)) = config.identity.keys() {
                    buf.put_bytes(WGDEVICE_A_PRIVATE_KEY, private)?;
                    buf.put_bytes(WGDEVICE_A_PUBLIC_KEY, public)?;
                }
            }
            if config.peers.is_empty() {
                return Ok(DumpProgress::Done);
            }
            let peers = buf.nest(WGDEVICE_A_PEERS)?;
            let mut next = cursor.next_peer;
            let mut resume = cursor.allowedips.take();
            let mut progress = DumpProgress::Done;
            let mut wrote_any = false;
            config.peers.walk_from(next, |order, peer, allowedips| {
                // A peer cut short and since removed: carry on with the next.
                let from = resume.take().filter(|_| order == next);
                match put_peer(buf, peer, allowedips, from) {
                    PeerFit::All => {
                        wrote_any = true;
                        cursor.peer_done = true;
                        next = order + 1;
                        ControlFlow::Continue(())
                    }
                    PeerFit::Partial(from, seq) => {
                        wrote_any = true;
                        next = order;
                        cursor.allowedips = Some((from, seq));
                        progress = DumpProgress::More;
                        ControlFlow::Break(())
                    }
                    PeerFit::Nothing => {
                        cursor.allowedips = from;
                        next = order;
                        progress = DumpProgress::More;
                        ControlFlow::Break(())
                    }
                }
            });
            // A message with room for no peer at all would repeat forever.
            if !wrote_any && matches!(progress, DumpProgress::More) {
                return Err(EMSGSIZE);
            }
            buf.end(peers);
            cursor.next_peer = next;
            Ok(progress)
        })
    }
}

/// Writes one peer (upstream `get_peer`) into the `PEERS` nest; a peer
/// resumed from `resume` gets only its public key and remaining allowed IPs.
fn put_peer(
    buf: &mut AttrBuf<'_>,
    peer: &RcuArc<Peer>,
    allowedips: PeerIps<'_>,
    resume: Option<(Cursor, u64)>,
) -> PeerFit {
    let start = buf.mark();
    let fit = write_peer(buf, peer, allowedips, resume);
    if matches!(fit, PeerFit::Nothing) {
        buf.truncate(start);
    }
    fit
}

fn write_peer(
    buf: &mut AttrBuf<'_>,
    peer: &RcuArc<Peer>,
    allowedips: PeerIps<'_>,
    resume: Option<(Cursor, u64)>,
) -> PeerFit {
    let Ok(nest) = buf.nest(0) else {
        return PeerFit::Nothing;
    };
    let head = buf.with_room::<PEER_HEAD_ROOM, _>(#[inline(always)] |buf| {
        buf.put_bytes(WGPEER_A_PUBLIC_KEY, &peer.public_key)?;
        match resume {
            None => put_peer_state(buf, peer),
            Some(_) => Ok(()),
        }
    });
    if head.is_err() {
        return PeerFit::Nothing;
    }
    let (from, seq) = resume.unwrap_or((Cursor::START, allowedips.seq()));
    let mut ips = allowedips.from(from).peekable();
    // Upstream skips the rest of a peer whose allowed IPs changed between
    // messages; the dump is flagged inconsistent anyway.
    if ips.peek().is_none() || seq != allowedips.seq() {
        buf.end(nest);
        return PeerFit::All;
    }
    let Ok(list) = buf.nest(WGPEER_A_ALLOWEDIPS) else {
        return PeerFit::Nothing;
    };
    let mut written = 0;
    for (at, ip) in ips {
        let before = buf.mark();
        if buf.with_room::<ALLOWEDIP_ROOM, _>(#[inline(always)] |buf| put_allowedip(buf, ip)).is_err() {
            // A resumed peer that gets no further would resume here forever.
            if resume.is_some() && written == 0 {
                return PeerFit::Nothing;
            }
            buf.truncate(before);
            buf.end(list);
            buf.end(nest);
            return PeerFit::Partial(at, seq);
        }
        written += 1;
    }
    buf.end(list);
    buf.end(nest);
    PeerFit::All
}

/// The most a peer's public key and [`put_peer_state`] take.
const PEER_HEAD_ROOM: usize = 2 * attr_size(KEY_LEN)
    + attr_size(16)
    + attr_size(2)
    + 2 * U64_ATTR_SIZE
    + attr_size(4)
    + attr_size(Sockaddr::MAX_LEN);

/// The attributes of a peer other than its key and allowed IPs. Written
/// in sizes known when compiling (see [`AttrBuf::with_room`]).
#[inline(always)]
fn put_peer_state(buf: &mut AttrBuf<'_>, peer: &Peer) -> Result {
    let ns = peer.last_handshake.load(Relaxed);
    let second = NSEC_PER_SEC as i64;
    // A `struct __kernel_timespec`.
    let last_handshake = [ns.div_euclid(second), ns.rem_euclid(second)];
    peer.noise.with_preshared_key(|key| buf.put_bytes(WGPEER_A_PRESHARED_KEY, key.expose()))?;
    buf.put_bytes(WGPEER_A_LAST_HANDSHAKE_TIME, AsBytes::as_bytes(&last_handshake))?;
    buf.put_u16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, peer.persistent_keepalive_interval())?;
    buf.put_u64(WGPEER_A_TX_BYTES, peer.tx_bytes.load(Relaxed), WGPEER_A_UNSPEC)?;
    buf.put_u64(WGPEER_A_RX_BYTES, peer.rx_bytes.load(Relaxed), WGPEER_A_UNSPEC)?;
    buf.put_u32(WGPEER_A_PROTOCOL_VERSION, 1)?;
    let sockaddr = peer.endpoint.lock().sockaddr;
    match sockaddr {
        Some(sockaddr) => buf.put_bytes(WGPEER_A_ENDPOINT, sockaddr.as_bytes()),
        None => Ok(()),
    }
}

/// The most [`put_allowedip`] takes.
const ALLOWEDIP_ROOM: usize = attr_size(0) + attr_size(1) + attr_size(2) + attr_size(16);

#[inline(always)]
fn put_allowedip(buf: &mut AttrBuf<'_>, ip: AllowedIp) -> Result {
    let nest = buf.nest(0)?;
    match &ip {
        AllowedIp::V4(addr, cidr) => put_prefix(buf, AF_INET, addr, *cidr)?,
        AllowedIp::V6(addr, cidr) => put_prefix(buf, AF_INET6, addr, *cidr)?,
    }
    buf.end(nest);
    Ok(())
}

#[inline(always)]
fn put_prefix<const N: usize>(buf: &mut AttrBuf<'_>, family: u16, addr: &[u8; N], cidr: u8) -> Result {
    buf.put_u8(WGALLOWEDIP_A_CIDR_MASK, cidr)?;
    buf.put_u16(WGALLOWEDIP_A_FAMILY, family)?;
    buf.put_bytes(WGALLOWEDIP_A_IPADDR, addr)
}

const PEER_ATTRS: usize = WGPEER_A_PROTOCOL_VERSION as usize + 1;

/// `WG_CMD_SET_DEVICE`: applies the attributes present, in upstream's order.
struct SetDevice;

impl DoHandler for SetDevice {
    fn doit(request: &Request<'_>) -> Result {
        let attrs = request.attrs();
        // Taken first, so that keys are wiped from the request whatever
        // happens next.
        let mut private_key_slot = Secret::zeroed();
        let private_key = take_secret(attrs.get(WGDEVICE_A_PRIVATE_KEY), &mut private_key_slot)?;
        let device = lookup_interface(request)?;
        let flags = attrs.get(WGDEVICE_A_FLAGS).map(|a| a.u32()).transpose()?.unwrap_or(0);
        let fwmark = attrs.get(WGDEVICE_A_FWMARK).map(|a| a.u32()).transpose()?;
        let listen_port = attrs.get(WGDEVICE_A_LISTEN_PORT).map(|a| a.u16()).transpose()?;

        let rtnl = RtnlGuard::lock();
        // Found, but since unregistered, or never registered at all (a
        // registration that failed late).
        if !device.is_registered(&rtnl) {
            return Err(ENODEV);
        }
        let mut config = device.config.lock();
        let dev = device.netdev().name();
        // The socket settings belong to the namespace the device was
        // created in, so the caller needs rights there too.
        if (fwmark.is_some() || listen_port.is_some())
            && !device.tunnel_net().capable(&rtnl, Capability::NET_ADMIN)
        {
            return Err(EPERM);
        }
        let tunnel = device.tunnel().ok_or(ENODEV)?;
        let netdev = device.netdev();
        config.generation = config.generation.wrapping_add(1);
        if let Some(fwmark) = fwmark {
            tunnel.fwmark.store(fwmark, Relaxed);
            config.peers.for_each(|peer| socket::clear_peer_endpoint_src(peer));
        }
        if let Some(port) = listen_port.filter(|port| *port != config.listen_port) {
            config.peers.for_each(|peer| socket::clear_peer_endpoint_src(peer));
            if netdev.is_running() {
                config.bind(netdev, device.tunnel_net(), &rtnl, port)?;
            } else {
                config.listen_port = port;
            }
        }
        if flags & WGDEVICE_F_REPLACE_PEERS != 0 {
            config.peers.remove_all();
        }
        if let Some(key) = private_key {
            if !config.identity.is_private_key(key) {
                // Published first: it allocates, and on failure nothing has
                // changed (the configured key and the one handshakes use
                // would disagree otherwise, and setting the same key again
                // would be skipped as a no-op).
                let mut identity = StaticIdentity::new();
                identity.set_private_key(key);
                tunnel.noise.set_identity(&identity)?;
                // A peer with our new public key would be ourselves.
                if let Some(order) = identity.keys().and_then(|(_, public)| config.peers.find(public)) {
                    config.peers.remove(order);
                }
                let had_identity = config.identity.keys().is_some();
                config.identity.assign(&identity);
                let send_staged = !had_identity && config.identity.keys().is_some() && netdev.is_running();
                config.peers.for_each(|peer| {
                    peer.expire_current_keypairs();
                    if send_staged {
                        send::send_staged(peer);
                    }
                });
            }
        }
        if let Some(peers) = attrs.get(WGDEVICE_A_PEERS) {
            for peer in peers.nested() {
                set_peer(&mut config, &tunnel, &dev, &parse_element::<PEER_ATTRS>(peer)?)?;
            }
        }
        Ok(())
    }
}

/// One element of a nested array (a peer, an allowed IP). The policy's
/// `NLA_NESTED_ARRAY` check looks inside the elements but not at their
/// flags; upstream then parses each one with `nla_parse_nested`, which
/// refuses an element without `NLA_F_NESTED` with `EINVAL`, after the
/// elements before it were applied (netlink.c wg_set_device_doit and
/// set_peer; include/net/netlink.h nla_parse_nested).
fn parse_element<const N: usize>(element: Attr<'_>) -> Result<AttrTable<'_, N>> {
    if !element.has_nested_flag() {
        return Err(EINVAL);
    }
    Ok(element.parse_nested::<N>())
}

/// Takes the key `attr` carries, if any, into `slot`, where it stays put to
/// be wiped when dropped (see [`Secret`]).
fn take_secret<'s>(attr: Option<Attr<'_>>, slot: &'s mut Secret<KEY_LEN>) -> Result<Option<&'s Secret<KEY_LEN>>> {
    match attr {
        Some(attr) => {
            attr.take_secret(slot)?;
            Ok(Some(slot))
        }
        None => Ok(None),
    }
}

/// Applies one peer's attributes (upstream `set_peer`).
fn set_peer(
    config: &mut Config,
    tunnel: &RcuArc<Tunnel>,
    dev: &IfName,
    attrs: &AttrTable<'_, PEER_ATTRS>,
) -> Result {
    let mut preshared_key_slot = Secret::zeroed();
    let preshared_key = take_secret(attrs.get(WGPEER_A_PRESHARED_KEY), &mut preshared_key_slot)?;
    let public_key: [u8; KEY_LEN] = attrs.get(WGPEER_A_PUBLIC_KEY).ok_or(EINVAL)?.array()?;
    let mut flags = attrs.get(WGPEER_A_FLAGS).map(|a| a.u32()).transpose()?.unwrap_or(0);
    if let Some(version) = attrs.get(WGPEER_A_PROTOCOL_VERSION) {
        if version.u32()? != 1 {
            return Err(EPFNOSUPPORT);
        }
    }

    let (order, preshared_key, created) = match config.peers.find(&public_key) {
        Some(order) => {
            if flags & WGPEER_F_REMOVE_ME != 0 {
                config.peers.remove(order);
                return Ok(());
            }
            (order, preshared_key, false)
        }
        None => {
            if flags & (WGPEER_F_REMOVE_ME | WGPEER_F_UPDATE_ONLY) != 0 {
                return Ok(());
            }
            // A new peer has no allowed IPs to replace.
            flags &= !WGPEER_F_REPLACE_ALLOWEDIPS;
            // Our own public key is silently ignored, so that one set of
            // calls can configure every member of a mesh.
            if config.identity.keys().is_some_and(|(_, public)| *public == public_key) {
                return Ok(());
            }
            (config.peers.create(tunnel, dev, public_key, preshared_key)?, None, true)
        }
    };
    let result = update_peer(config, order, flags, attrs, preshared_key);
    // A new peer that could not be given all of its allowed IPs for want of
    // memory is removed again rather than left half-built (upstream keeps
    // it, with the allowed IPs added before the failure). Other errors keep
    // upstream's partial application, which the differential fuzzer checks.
    if created && result == Err(ENOMEM) {
        config.peers.remove(order);
    }
    result
}

/// The part of `set_peer` that new and existing peers share.
fn update_peer(
    config: &mut Config,
    order: u64,
    flags: u32,
    attrs: &AttrTable<'_, PEER_ATTRS>,
    preshared_key: Option<&Secret<KEY_LEN>>,
) -> Result {
    let peers = &mut config.peers;
    let peer = peers.get(order).ok_or(ENOENT)?.clone();
    if let Some(key) = preshared_key {
        peer.noise.set_preshared_key(key);
    }
    if let Some(endpoint) = attrs.get(WGPEER_A_ENDPOINT) {
        let mut sockaddr = [0u8; 28];
        let len = endpoint.copy_to(&mut sockaddr);
        if let Some(sockaddr) = sockaddr.get(..len).and_then(Sockaddr::from_bytes) {
            let mut current = peer.endpoint.lock();
            // As upstream's wg_socket_set_peer_endpoint: an equal endpoint
            // (and no source address learned) leaves the stored one, with
            // its sin_zero or flowinfo, alone.
            let unchanged = current.sockaddr.as_ref().is_some_and(|old| old.same_as(&sockaddr))
                && current.route.is_some_and(|route| !route.has_source());
            if !unchanged {
                current.route = Some(sockaddr.to_endpoint());
                current.sockaddr = Some(sockaddr);
                drop(current);
                peer.dst_cache.reset();
            }
        }
    }
    if flags & WGPEER_F_REPLACE_ALLOWEDIPS != 0 {
        peers.allowedips.remove_by_peer(&peer);
    }
    if let Some(list) = attrs.get(WGPEER_A_ALLOWEDIPS) {
        for ip in list.nested() {
            set_allowedip(&mut peers.allowedips, &peer, &parse_element::<ALLOWEDIP_ATTRS>(ip)?)?;
        }
    }
    let running = peer.tunnel.netdev().is_running();
    if let Some(interval) = attrs.get(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL) {
        let interval = interval.u16()?;
        let send_keepalive = peer.persistent_keepalive_interval() == 0 && interval != 0 && running;
        peer.set_persistent_keepalive_interval(interval);
        if send_keepalive {
            send::send_keepalive(&peer);
        }
    }
    if running {
        send::send_staged(&peer);
    }
    Ok(())
}

const ALLOWEDIP_ATTRS: usize = WGALLOWEDIP_A_FLAGS as usize + 1;

/// Adds or (with `WGALLOWEDIP_F_REMOVE_ME`) removes one allowed IP.
fn set_allowedip(
    allowedips: &mut AllowedIps<Peer>,
    peer: &RcuArc<Peer>,
    attrs: &AttrTable<'_, ALLOWEDIP_ATTRS>,
) -> Result {
    let (Some(family), Some(addr), Some(cidr)) = (
        attrs.get(WGALLOWEDIP_A_FAMILY),
        attrs.get(WGALLOWEDIP_A_IPADDR),
        attrs.get(WGALLOWEDIP_A_CIDR_MASK),
    ) else {
        return Err(EINVAL);
    };
    let (family, cidr) = (family.u16()?, cidr.u8()?);
    let remove = attrs.get(WGALLOWEDIP_A_FLAGS).map(|a| a.u32()).transpose()?.unwrap_or(0)
        & WGALLOWEDIP_F_REMOVE_ME
        != 0;
    let addr = match family {
        AF_INET if cidr <= 32 => IpAddr::V4(addr.array()?),
        AF_INET6 if cidr <= 128 => IpAddr::V6(addr.array()?),
        _ => return Err(EINVAL),
    };
    if remove {
        allowedips.remove(addr, cidr, peer)
    } else {
        allowedips.insert(addr, cidr, peer)
    }
}
