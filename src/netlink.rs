// SPDX-License-Identifier: GPL-2.0

//! The "wireguard" generic netlink family (upstream `netlink.c`, with the
//! policies of `Documentation/netlink/specs/wireguard.yaml`).

use crate::device::{Device, LINK_KIND};
use crate::kapi::crypto::KEY_LEN;
use crate::kapi::genl::{
    DoHandler, DumpHandler, DumpWriter, Family, OpFlags, Policy, PolicyEntry,
    Request, SplitOp,
};
use crate::kapi::netdev::{Capability, DeviceKey, DeviceRef, LookupError};
use crate::kapi::sync::RtnlGuard;
use crate::kapi::uapi::*;
use kernel::prelude::*;

const KEY: u16 = KEY_LEN as u16;
/// `IFNAMSIZ - 1`.
const IFNAME_MAX: u16 = 15;

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
    let key = match (attrs.get(WGDEVICE_A_IFINDEX), attrs.get(WGDEVICE_A_IFNAME)) {
        (Some(index), None) => DeviceKey::Index(index.u32()?),
        (None, Some(name)) => DeviceKey::Name(name.cstr()?),
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

struct DumpCursor {
    device: DeviceRef<Device>,
}

impl DumpHandler for GetDevice {
    type State = DumpCursor;

    fn start(request: &mut Request<'_>) -> Result<DumpCursor> {
        Ok(DumpCursor { device: lookup_interface(request)? })
    }

    fn dump(cursor: &mut DumpCursor, writer: &mut DumpWriter<'_>) -> Result {
        let _rtnl = RtnlGuard::lock();
        let config = cursor.device.config.lock();
        let dev = cursor.device.netdev();
        let mut msg = writer.begin(config.generation)?;
        msg.put_u16(WGDEVICE_A_LISTEN_PORT, config.listen_port)?;
        msg.put_u32(WGDEVICE_A_FWMARK, config.fwmark)?;
        msg.put_u32(WGDEVICE_A_IFINDEX, dev.ifindex())?;
        msg.put_cstr(WGDEVICE_A_IFNAME, dev.name().as_cstr())?;
        if let Some((private, public)) = config.identity.keys() {
            msg.put_bytes(WGDEVICE_A_PRIVATE_KEY, private)?;
            msg.put_bytes(WGDEVICE_A_PUBLIC_KEY, public)?;
        }
        Ok(())
    }
}

/// `WG_CMD_SET_DEVICE`: applies the attributes present, in upstream's order.
struct SetDevice;

impl DoHandler for SetDevice {
    fn doit(request: &mut Request<'_>) -> Result {
        // Taken first, so that the key is wiped from the request whatever
        // happens next.
        let private_key = request
            .attrs_mut()
            .take_secret::<KEY_LEN>(WGDEVICE_A_PRIVATE_KEY)
            .transpose()?;
        let device = lookup_interface(request)?;
        let attrs = request.attrs();
        let fwmark = attrs.get(WGDEVICE_A_FWMARK).map(|a| a.u32()).transpose()?;
        let listen_port = attrs.get(WGDEVICE_A_LISTEN_PORT).map(|a| a.u16()).transpose()?;
        // Peers arrive with the control-plane work; refuse them before
        // changing anything rather than drop them silently.
        if attrs.get(WGDEVICE_A_PEERS).is_some_and(|peers| peers.nested().next().is_some()) {
            return Err(EOPNOTSUPP);
        }

        let rtnl = RtnlGuard::lock();
        let mut config = device.config.lock();
        // The socket settings belong to the namespace the device was
        // created in, so the caller needs rights there too.
        if (fwmark.is_some() || listen_port.is_some())
            && !device.creating_net_capable(&rtnl, Capability::NET_ADMIN)
        {
            return Err(EPERM);
        }
        config.generation = config.generation.wrapping_add(1);
        if let Some(fwmark) = fwmark {
            config.fwmark = fwmark;
        }
        if let Some(port) = listen_port {
            config.listen_port = port;
        }
        // WGDEVICE_F_REPLACE_PEERS: there are no peers yet to replace.
        if let Some(key) = private_key {
            if !config.identity.is_private_key(&key) {
                config.identity.set_private_key(&key);
            }
        }
        Ok(())
    }
}
