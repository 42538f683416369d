// SPDX-License-Identifier: GPL-2.0

//! Network devices of an rtnetlink link kind (`ip link add NAME type KIND`).
//!
//! A driver implements [`LinkOps`] for its per-device state `T` and declares
//! a `static` [`LinkKind<T>`]. `T` lives pinned in the `net_device`'s private
//! area, beside the kind's own bookkeeping ([`TunnelNet`] among it).
//!
//! Lifetime of the state: `newlink` initialises `T` before it calls
//! `register_netdevice`, and from `ndo_init` on, the device's destructor owns
//! it. The core runs the destructor exactly once: at once if registration
//! fails before the device is listed, and otherwise only after the device
//! has been unregistered and its last reference dropped. That includes a
//! registration that fails late (a `NETDEV_REGISTER` notifier refusing the
//! device after it was listed, as IPv4 and IPv6 do for the names "all" and
//! "default"), where lookups may already have found the device and hold it.
//! So every device of the kind that anyone can reach has live state, and a
//! [`DeviceRef<T>`] (a held device) derefs to `&T`. Whether the device is
//! still registered is a separate question, answered under RTNL by
//! [`DeviceRef::is_registered`].

use super::bindings;
use super::sync::Rtnl;
use super::skb::SkBuff;
use super::udp::TunnelNet;
use core::{ffi::CStr, fmt, marker::PhantomData, ops::Deref, ptr, ptr::NonNull};
use kernel::{
    error::from_result,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Completion,
    },
    types::Opaque,
};

/// The netdev alignment of `netdev_priv()`; our private area must not need more.
const NETDEV_ALIGN: usize = 32;

/// A network namespace.
#[repr(transparent)]
pub(crate) struct Net(Opaque<bindings::net>);

impl Net {
    /// # Safety
    ///
    /// `ptr` must point to a live `struct net` for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::net) -> &'a Net {
        // SAFETY: `Net` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::net {
        self.0.get()
    }

    /// Whether the current task has `cap` over the namespace's owning user
    /// namespace.
    pub(crate) fn ns_capable(&self, cap: Capability) -> bool {
        // SAFETY: `self` is a live namespace.
        unsafe { bindings::wgrs_net_ns_capable(self.as_ptr(), cap.0) }
    }
}

/// A POSIX capability number, as understood by `ns_capable`.
#[derive(Clone, Copy)]
pub(crate) struct Capability(i32);

impl Capability {
    pub(crate) const NET_ADMIN: Capability = Capability(bindings::CAP_NET_ADMIN as i32);
}

/// Network device features (`NETIF_F_*`).
#[derive(Clone, Copy)]
pub(crate) struct Features(bindings::netdev_features_t);

impl Features {
    pub(crate) const HW_CSUM: Features = Features(bindings::WGRS_NETIF_F_HW_CSUM);
    pub(crate) const RXCSUM: Features = Features(bindings::WGRS_NETIF_F_RXCSUM);
    pub(crate) const SG: Features = Features(bindings::WGRS_NETIF_F_SG);
    pub(crate) const GSO: Features = Features(bindings::WGRS_NETIF_F_GSO);
    pub(crate) const GSO_SOFTWARE: Features = Features(bindings::WGRS_NETIF_F_GSO_SOFTWARE);
    pub(crate) const HIGHDMA: Features = Features(bindings::WGRS_NETIF_F_HIGHDMA);

    pub(crate) const fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }
}

/// `NET_SKB_PAD`: headroom the stack reserves in front of packets,
/// `max(32, L1_CACHE_BYTES)` (a statement expression bindgen cannot evaluate).
pub(crate) const NET_SKB_PAD: usize = if bindings::WGRS_L1_CACHE_BYTES > 32 {
    bindings::WGRS_L1_CACHE_BYTES as usize
} else {
    32
};

/// An interface name, copied out of a device (names change under RTNL).
pub(crate) struct IfName([u8; bindings::IFNAMSIZ as usize]);

impl IfName {
    pub(crate) fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).unwrap_or(c"")
    }
}

impl kernel::fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Kernel interface names are ASCII by construction (dev_valid_name).
        f.write_str(self.as_cstr().to_str().unwrap_or("?"))
    }
}

/// A `struct net_device`.
#[repr(transparent)]
pub(crate) struct NetDevice(Opaque<bindings::net_device>);

impl NetDevice {
    /// # Safety
    ///
    /// `ptr` must point to a live `net_device` for the lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::net_device) -> &'a NetDevice {
        // SAFETY: transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    pub(crate) fn name(&self) -> IfName {
        let mut name = IfName([0; bindings::IFNAMSIZ as usize]);
        // SAFETY: `dev->name` is a NUL-terminated array of `IFNAMSIZ` bytes.
        let src = unsafe { CStr::from_ptr(bindings::wgrs_netdev_name(self.as_ptr()).cast()) };
        let bytes = src.to_bytes();
        let len = bytes.len().min(name.0.len() - 1);
        name.0[..len].copy_from_slice(&bytes[..len]);
        name
    }

    pub(crate) fn ifindex(&self) -> u32 {
        // SAFETY: `self` is a live device.
        let index = unsafe { bindings::wgrs_netdev_ifindex(self.as_ptr()) };
        u32::try_from(index).unwrap_or(0)
    }

    pub(crate) fn is_running(&self) -> bool {
        // SAFETY: `self` is a live device.
        unsafe { bindings::wgrs_netif_running(self.as_ptr()) }
    }

    /// Makes the device's IPv4 and IPv6 configuration that of a
    /// point-to-point tunnel: no ICMP redirects, no link-local address.
    pub(crate) fn configure_tunnel_inet(&self, _rtnl: &Rtnl) {
        // SAFETY: `self` is live and RTNL, which guards inet configuration,
        // is held.
        unsafe { bindings::wgrs_netdev_tunnel_inet_conf(self.as_ptr()) };
    }

    /// A number that identifies the device's namespace for its lifetime
    /// (`net->net_cookie`), never reused.
    pub(crate) fn net_cookie(&self) -> u64 {
        // SAFETY: `self` is a live device, in a live namespace.
        unsafe { bindings::wgrs_netdev_net_cookie(self.as_ptr()) }
    }

    /// Tells the stack the link is down (`netif_carrier_off`).
    pub(crate) fn carrier_off(&self) {
        // SAFETY: `self` is a live device.
        unsafe { bindings::netif_carrier_off(self.as_ptr()) }
    }

    /// The device's MTU.
    pub(crate) fn mtu(&self) -> u32 {
        // SAFETY: `self` is a live device; a racy read, as in C.
        unsafe { bindings::wgrs_netdev_mtu(self.as_ptr()) }
    }

    /// Counts an error or a drop in the device's statistics.
    pub(crate) fn count(&self, stat: Stat, n: u64) {
        // SAFETY: `self` is a live device; the counters are atomic.
        unsafe { bindings::wgrs_netdev_count(self.as_ptr(), stat as u32, n) };
    }

    /// Counts a packet of `len` bytes received (the per-CPU counters; BH
    /// must be off, as in every receive path).
    pub(crate) fn count_rx(&self, len: usize) {
        // SAFETY: `self` is a live device with per-CPU statistics.
        unsafe { bindings::wgrs_netdev_rx_add(self.as_ptr(), len as u32) };
    }
}

/// Device statistics that are counted one by one (`DEV_STATS_ADD`).
#[derive(Clone, Copy)]
pub(crate) enum Stat {
    TxErrors = 0,
    TxDropped = 1,
    RxErrors = 2,
    RxFrameErrors = 3,
    RxLengthErrors = 4,
}

/// How many [`DeviceLink`]s a device has, and the destructor's wait for
/// the last one.
#[repr(C)]
struct LinkCount {
    /// Links, plus one held by the device itself until its destructor.
    count: Atomic<i64>,
    gone: Completion,
}

/// A counted reference to a device for the data plane: the device's
/// destructor waits until none is left before the device's memory can go.
/// Unlike the device reference count (`dev_hold`), links do not keep a
/// device registered: the device can be deleted, and its state torn down,
/// while links exist. A link gives access to the parts of the device that
/// outlive its state: the `net_device` and its [`TunnelNet`].
///
/// # Invariants
///
/// `count` belongs to the device `dev`, whose `TunnelNet` is `net`, and
/// counts this link; the device's destructor does not finish before the
/// count drops to zero.
pub(crate) struct DeviceLink {
    dev: NonNull<bindings::net_device>,
    net: NonNull<TunnelNet>,
    count: NonNull<LinkCount>,
}

// SAFETY: the referenced parts are `Sync` (atomic counters, `TunnelNet`)
// or used through thread-safe C APIs (`net_device`).
unsafe impl Send for DeviceLink {}
// SAFETY: as above.
unsafe impl Sync for DeviceLink {}

impl DeviceLink {
    pub(crate) fn netdev(&self) -> &NetDevice {
        // SAFETY: by the type invariant the device lives as long as we do.
        unsafe { NetDevice::from_raw(self.dev.as_ptr()) }
    }

    /// The device's creating namespace and its sockets there.
    pub(crate) fn tunnel_net(&self) -> &TunnelNet {
        // SAFETY: as above; the `TunnelNet` is dropped after the wait.
        unsafe { self.net.as_ref() }
    }
}

impl Clone for DeviceLink {
    fn clone(&self) -> Self {
        // SAFETY: by the type invariant the count is alive.
        unsafe { self.count.as_ref() }.count.fetch_add(1, Relaxed);
        // INVARIANT: counted just above.
        DeviceLink { dev: self.dev, net: self.net, count: self.count }
    }
}

impl Drop for DeviceLink {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the count is alive until it is zero;
        // after our decrement we only touch it if we made it zero, and the
        // destructor waits for `complete_all` to have been called.
        let count = unsafe { self.count.as_ref() };
        if count.count.fetch_sub(1, Release) == 1 {
            count.gone.complete_all();
        }
    }
}

/// A device during `setup`, before anyone else can see it.
pub(crate) struct SetupDevice<'a>(&'a NetDevice);

impl SetupDevice<'_> {
    /// Makes it a layer-3 tunnel: `ARPHRD_NONE`, point-to-point, no ARP, no
    /// qdisc, lockless transmit, with `features` offered and enabled.
    pub(crate) fn layer3_tunnel<T: LinkOps>(&mut self, features: Features) {
        // SAFETY: the device is being set up by its only user, and the
        // device type outlives every device of the kind (see `LinkKind`).
        unsafe {
            bindings::wgrs_netdev_setup_l3_tunnel(
                self.0.as_ptr(),
                T::kind().devtype.get(),
                features.0,
            )
        };
    }

    /// Polls the device's NAPI contexts in threads of their own
    /// (`netif_threaded_enable`), each created with its context.
    pub(crate) fn threaded_napi(&mut self) {
        // SAFETY: as above; the device is not registered yet.
        unsafe { bindings::wgrs_netdev_threaded_napi(self.0.as_ptr()) };
    }

    pub(crate) fn set_mtu(&mut self, mtu: u32, max_mtu: u32) {
        // SAFETY: as above, nobody else accesses the device yet.
        unsafe { bindings::wgrs_netdev_set_mtu(self.0.as_ptr(), mtu, max_mtu) };
    }

    pub(crate) fn set_needed_room(&mut self, headroom: u16, tailroom: u16) {
        // SAFETY: as above, nobody else accesses the device yet.
        unsafe { bindings::wgrs_netdev_set_room(self.0.as_ptr(), headroom, tailroom) };
    }
}

/// The behaviour of a link kind; implemented by its per-device state.
pub(crate) trait LinkOps: Send + Sync + Sized + 'static {
    /// The kind's name, as in `ip link add ... type KIND`.
    const KIND: &'static CStr;

    /// The kind's registration.
    fn kind() -> &'static LinkKind<Self>;

    /// Sets the constant properties of a new device.
    fn setup(dev: &mut SetupDevice<'_>);

    /// Initialises the state of a device about to be registered; `link` is
    /// the first link to it, for the data plane.
    fn new(dev: &NetDevice, link: DeviceLink) -> impl PinInit<Self, Error>;

    /// The device was registered.
    fn registered(&self, dev: &NetDevice);

    /// A device that was registered is being destroyed; its state is
    /// dropped next.
    fn destroyed(&self, dev: &NetDevice);

    /// The device is brought up.
    fn open(&self, dev: &NetDevice, net: &TunnelNet, rtnl: &Rtnl) -> Result;

    /// The device is brought down.
    fn stop(&self, dev: &NetDevice, net: &TunnelNet, rtnl: &Rtnl);

    /// Transmits (or consumes) a packet.
    fn xmit(&self, dev: &NetDevice, skb: SkBuff);

    /// Receives a datagram from one of the device's UDP sockets (softirq).
    fn receive(&self, dev: &NetDevice, skb: SkBuff);

    /// The namespace the device was created in has exited; its sockets there
    /// are already closed.
    fn creating_net_exit(&self, dev: &NetDevice, rtnl: &Rtnl);
}

/// What `netdev_priv()` holds for a device of kind `T`.
///
/// # Invariants
///
/// `data` is initialised from before the device is registered until the
/// destructor drops it (see the module documentation). `node` is in
/// `LinkKind::devices` from `ndo_init` to `ndo_uninit`.
#[repr(C)]
struct Private<T> {
    /// Entry in `LinkKind::devices`, under RTNL.
    node: Opaque<bindings::list_head>,
    dev: *mut bindings::net_device,
    /// The namespace the device was created in, held without a reference
    /// (a device must not keep it alive), and the sockets there.
    net: TunnelNet,
    /// Whether `LinkOps::registered` ran, so that `destroyed` pairs with it.
    announced: Atomic<bool>,
    links: LinkCount,
    data: T,
}

impl<T: LinkOps> Private<T> {
    /// # Safety
    ///
    /// `dev` must be a device of kind `T` that is alive and whose `data` is
    /// initialised for `'a`.
    unsafe fn of<'a>(dev: *mut bindings::net_device) -> &'a Private<T> {
        // SAFETY: the private area of a device of kind `T` is a `Private<T>`
        // (`priv_size` says so) and the caller guarantees initialisation.
        unsafe { &*bindings::wgrs_netdev_priv(dev).cast::<Private<T>>() }
    }

    fn netdev(&self) -> &NetDevice {
        // SAFETY: the device outlives its private area.
        unsafe { NetDevice::from_raw(self.dev) }
    }

    /// Drops the state, waits until no link is left, then drops the rest.
    ///
    /// # Safety
    ///
    /// `this` must be fully initialised and not used by anyone else, now or
    /// later, except through the links that are waited for.
    unsafe fn destroy(this: *mut Private<T>) {
        // SAFETY: per the function's contract; then as `drop_unlinked` needs.
        unsafe {
            ptr::drop_in_place(ptr::addr_of_mut!((*this).data));
            Self::drop_unlinked(this);
        }
    }

    /// Gives up the device's own link, waits until no other is left, then
    /// drops `net` and the count.
    ///
    /// # Safety
    ///
    /// `net` and `links` must be initialised, `data` dropped or never
    /// initialised, and nobody may use them afterwards but through the
    /// links that are waited for.
    unsafe fn drop_unlinked(this: *mut Private<T>) {
        // SAFETY: per the function's contract; links only reach the device
        // and `net`, which are dropped after the wait.
        unsafe {
            let links = &(*this).links;
            if links.count.fetch_sub(1, Acquire) != 1 {
                links.gone.wait_for_completion();
            }
            ptr::drop_in_place(ptr::addr_of_mut!((*this).net));
            ptr::drop_in_place(ptr::addr_of_mut!((*this).links));
        }
    }
}

/// How deeply the current transmission is nested in devices' transmit
/// functions (`dev_recursion_level`): 1 in a device's `ndo_start_xmit`
/// called by the stack, more when the packet is another device's (a
/// tunnel's outer packet) on its way out through this one.
pub(crate) fn xmit_nesting() -> i32 {
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_dev_recursion_level() }
}

/// A registered (or registrable) link kind with devices of state `T`.
pub(crate) struct LinkKind<T: LinkOps> {
    ops: Opaque<bindings::rtnl_link_ops>,
    pernet: Opaque<bindings::pernet_operations>,
    devtype: Opaque<bindings::device_type>,
    /// Every device of the kind, linked through `Private::node`; under RTNL.
    devices: Opaque<bindings::list_head>,
    registered: kernel::sync::atomic::Atomic<bool>,
    /// Set once `devices` is initialised; an empty list stays valid after
    /// the kind is unregistered.
    devices_ready: kernel::sync::atomic::Atomic<bool>,
    _state: PhantomData<T>,
}

// SAFETY: the C structures are written once, before registration, and then
// only by the core under its own locking; the device list is under RTNL.
unsafe impl<T: LinkOps> Sync for LinkKind<T> {}

/// Why a device lookup failed.
pub(crate) enum LookupError {
    /// No such device in the namespace.
    NotFound,
    /// The device is of another kind.
    OtherKind,
}

/// How to find a device.
pub(crate) enum DeviceKey<'a> {
    Index(u32),
    Name(&'a CStr),
}

impl<T: LinkOps> LinkKind<T> {
    pub(crate) const fn new() -> Self {
        const { assert!(align_of::<Private<T>>() <= NETDEV_ALIGN) };
        LinkKind {
            ops: Opaque::zeroed(),
            pernet: Opaque::zeroed(),
            devtype: Opaque::zeroed(),
            devices: Opaque::zeroed(),
            registered: kernel::sync::atomic::Atomic::new(false),
            devices_ready: kernel::sync::atomic::Atomic::new(false),
            _state: PhantomData,
        }
    }

    /// Registers the kind; unregistered (destroying every device) when the
    /// returned value is dropped.
    pub(crate) fn register(&'static self) -> Result<LinkRegistration<T>> {
        use kernel::sync::atomic::{Acquire, Relaxed};
        if self.registered.cmpxchg(false, true, Acquire).is_err() {
            return Err(EBUSY);
        }
        // SAFETY: the structures are not yet known to the kernel and the
        // flag above makes us their only writer.
        unsafe {
            let ops = &mut *self.ops.get();
            ops.kind = T::KIND.as_ptr().cast();
            ops.priv_size = size_of::<Private<T>>() as _;
            ops.setup = Some(setup_callback::<T>);
            ops.newlink = Some(newlink_callback::<T>);
            (*self.devtype.get()).name = T::KIND.as_ptr().cast();
            (*self.pernet.get()).exit_rtnl = Some(exit_rtnl_callback::<T>);
            if !self.devices_ready.load(Relaxed) {
                bindings::wgrs_list_init(self.devices.get());
            }
        }
        self.devices_ready.store(true, kernel::sync::atomic::Release);
        // SAFETY: `pernet` is fully set up and static.
        let ret = unsafe { bindings::register_pernet_device(self.pernet.get()) };
        if ret < 0 {
            self.registered.store(false, Relaxed);
            return Err(Error::from_errno(ret));
        }
        // SAFETY: `ops` is fully set up and static.
        let ret = unsafe { bindings::rtnl_link_register(self.ops.get()) };
        if ret < 0 {
            // SAFETY: registered just above.
            unsafe { bindings::unregister_pernet_device(self.pernet.get()) };
            self.registered.store(false, Relaxed);
            return Err(Error::from_errno(ret));
        }
        Ok(LinkRegistration(self))
    }

    /// Finds a device of this kind in `net` and takes a reference to it.
    pub(crate) fn lookup(
        &'static self,
        net: &Net,
        key: DeviceKey<'_>,
    ) -> core::result::Result<DeviceRef<T>, LookupError> {
        // SAFETY: `net` is live; both functions return a held device or NULL.
        let dev = unsafe {
            match key {
                DeviceKey::Index(index) => {
                    bindings::dev_get_by_index(net.as_ptr(), index as kernel::ffi::c_int)
                }
                DeviceKey::Name(name) => bindings::dev_get_by_name(net.as_ptr(), name.as_ptr().cast())
            }
        };
        let dev = NonNull::new(dev).ok_or(LookupError::NotFound)?;
        // INVARIANT: we own the reference taken above.
        let found = DeviceRef::<T> { dev, _state: PhantomData };
        // SAFETY: `dev` is held.
        if unsafe { bindings::wgrs_netdev_link_ops(dev.as_ptr()) } != self.ops.get().cast_const() {
            return Err(LookupError::OtherKind);
        }
        Ok(found)
    }
}

impl<T: LinkOps> LinkKind<T> {
    /// Calls `f` on every device of the kind, in every namespace, that is
    /// between `ndo_init` and `ndo_uninit`.
    pub(crate) fn for_each(&'static self, rtnl: &Rtnl, mut f: impl FnMut(&T, &NetDevice)) {
        self.for_each_private(rtnl, |private| f(&private.data, private.netdev()));
    }

    fn for_each_private(&'static self, _rtnl: &Rtnl, mut f: impl FnMut(&Private<T>)) {
        if !self.devices_ready.load(kernel::sync::atomic::Acquire) {
            return;
        }
        let head = self.devices.get();
        // SAFETY: the list is initialised (checked above) and changes only
        // under RTNL, which we hold.
        let mut node = unsafe { (*head).next };
        while node != head {
            // SAFETY: every entry is the first field of a `Private<T>`
            // (`repr(C)`) between `ndo_init` and `ndo_uninit`, hence with live
            // state; entries leave the list only under RTNL.
            let private = unsafe { &*node.cast::<Private<T>>() };
            f(private);
            // SAFETY: as above.
            node = unsafe { (*node).next };
        }
    }
}

/// Keeps a [`LinkKind`] registered.
pub(crate) struct LinkRegistration<T: LinkOps>(&'static LinkKind<T>);

impl<T: LinkOps> Drop for LinkRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `LinkKind::register`. This deletes every
        // device of the kind and runs their destructors before returning.
        unsafe {
            bindings::rtnl_link_unregister(self.0.ops.get());
            bindings::unregister_pernet_device(self.0.pernet.get());
            // Wait for RCU callbacks that may still reference device state.
            bindings::rcu_barrier();
        }
        self.0.registered.store(false, kernel::sync::atomic::Release);
    }
}

/// A counted reference to a device of kind `T`, giving access to its state.
///
/// # Invariants
///
/// `dev` is a device of kind `T` on which we hold a reference (`dev_hold`).
pub(crate) struct DeviceRef<T: LinkOps> {
    dev: NonNull<bindings::net_device>,
    _state: PhantomData<T>,
}

// SAFETY: a device reference may be used and dropped on any thread; the
// state is `Sync`.
unsafe impl<T: LinkOps> Send for DeviceRef<T> {}
// SAFETY: as above.
unsafe impl<T: LinkOps> Sync for DeviceRef<T> {}

impl<T: LinkOps> DeviceRef<T> {
    fn private(&self) -> &Private<T> {
        // SAFETY: by the type invariant the device is held and of kind `T`,
        // so its destructor has not run and its state is live (see the
        // module documentation).
        unsafe { Private::of(self.dev.as_ptr()) }
    }

    pub(crate) fn netdev(&self) -> &NetDevice {
        self.private().netdev()
    }

    /// Whether the device is registered: not one whose registration failed
    /// late, nor one being unregistered.
    pub(crate) fn is_registered(&self, _rtnl: &Rtnl) -> bool {
        // SAFETY: the device is held; RTNL serialises registration changes.
        unsafe { bindings::wgrs_netdev_registered(self.dev.as_ptr()) }
    }

    /// The namespace the device was created in, and its sockets there.
    pub(crate) fn tunnel_net(&self) -> &TunnelNet {
        &self.private().net
    }
}

impl<T: LinkOps> Deref for DeviceRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.private().data
    }
}

impl<T: LinkOps> Drop for DeviceRef<T> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own a reference.
        unsafe { bindings::wgrs_dev_put(self.dev.as_ptr()) };
    }
}

unsafe extern "C" fn setup_callback<T: LinkOps>(dev: *mut bindings::net_device) {
    // SAFETY: the core passes a device it has just allocated; the ops
    // table is static.
    let mut setup = unsafe {
        bindings::wgrs_netdev_set_ops(dev, NetDeviceOps::<T>::build());
        SetupDevice(NetDevice::from_raw(dev))
    };
    T::setup(&mut setup);
}

unsafe extern "C" fn newlink_callback<T: LinkOps>(
    dev: *mut bindings::net_device,
    params: *mut bindings::rtnl_newlink_params,
    _extack: *mut bindings::netlink_ext_ack,
) -> kernel::ffi::c_int {
    from_result(|| {
        // SAFETY: the private area of a device allocated with our ops has
        // room for a `Private<T>` and is not yet initialised.
        let private = unsafe { bindings::wgrs_netdev_priv(dev) }.cast::<Private<T>>();
        // SAFETY: `dev` is live; `params` is valid for this call.
        let (netdev, link_net) =
            unsafe { (NetDevice::from_raw(dev), bindings::wgrs_rtnl_newlink_link_net(params)) };
        // SAFETY: `private` is valid for writes and pinned in the device.
        // `link_net` is alive (RTNL is held), and `ndo_uninit` or the pernet
        // exit detaches the `TunnelNet` before it goes, under RTNL.
        let link = unsafe {
            ptr::addr_of_mut!((*private).dev).write(dev);
            ptr::addr_of_mut!((*private).net).write(TunnelNet::new(link_net, receive_hook::<T>));
            ptr::addr_of_mut!((*private).announced).write(Atomic::new(false));
            ptr::addr_of_mut!((*private).links.count).write(Atomic::new(2));
            let Ok(()) = Completion::new().__init(ptr::addr_of_mut!((*private).links.gone));
            bindings::wgrs_list_init((*private).node.get());
            // INVARIANT: counted (the 2 above: the device's own and this),
            // and every path that frees the device waits (`destroy`).
            DeviceLink {
                dev: NonNull::new_unchecked(dev),
                net: NonNull::new_unchecked(ptr::addr_of_mut!((*private).net)),
                count: NonNull::new_unchecked(ptr::addr_of_mut!((*private).links)),
            }
        };
        // SAFETY: `data` is valid for writes and pinned. Should this fail,
        // nothing is armed, and the core frees the device after we drop the
        // rest.
        if let Err(err) = unsafe { T::new(netdev, link).__init(ptr::addr_of_mut!((*private).data)) } {
            // SAFETY: all but `data` is initialised. `link` went with the
            // failed initialiser, but copies of it may live on in what it
            // made, until freed after a grace period: hence the wait.
            unsafe { Private::drop_unlinked(private) };
            return Err(err);
        }
        // SAFETY: the device is set up and its state initialised.
        let ret = unsafe { bindings::register_netdevice(dev) };
        if ret < 0 {
            // Once `ndo_init` has run, the destructor owns the state: it ran
            // already, or runs when the last holder of the half-registered
            // device lets go. Before that, the state is still ours to drop.
            // SAFETY: `dev` is live; then, as the comment says.
            unsafe {
                if !bindings::wgrs_netdev_has_destructor(dev) {
                    Private::destroy(private);
                }
            }
            return Err(Error::from_errno(ret));
        }
        // SAFETY: registered, so the state is live until the destructor.
        let private = unsafe { &*private };
        private.announced.store(true, Relaxed);
        private.data.registered(netdev);
        Ok(0)
    })
}

/// The destructor (`priv_destructor`), armed by `ndo_init`. The core calls it
/// once: from `register_netdevice` if that fails after `ndo_init`, or after
/// unregistering the device and waiting for its last reference. It frees the
/// device afterwards itself (`needs_free_netdev`), or leaves that to the
/// caller of a failed `register_netdevice`.
unsafe extern "C" fn destructor_callback<T: LinkOps>(dev: *mut bindings::net_device) {
    // SAFETY: the destructor runs once, on a device whose state `newlink`
    // initialised (it is armed only after that), when nothing else uses it.
    let private = unsafe { Private::<T>::of(dev) };
    if private.announced.load(Relaxed) {
        private.data.destroyed(private.netdev());
    }
    // SAFETY: as above; nothing references the state any more, and the
    // core frees the device only after we return.
    unsafe { Private::destroy(ptr::from_ref(private).cast_mut()) };
}

/// The receive hook of `T`'s sockets: finds the device from its `TunnelNet`.
///
/// # Safety
///
/// `net` must be the `net` of a `Private<T>` whose state is live; the
/// sockets that call this are closed before the state goes.
unsafe fn receive_hook<T: LinkOps>(net: &TunnelNet, skb: SkBuff) {
    // SAFETY: per the function's contract, `net` sits at `offset_of!(net)`
    // in a `Private<T>` (`repr(C)`), whose state is initialised.
    let private = unsafe {
        &*ptr::from_ref(net).cast::<u8>().sub(core::mem::offset_of!(Private<T>, net)).cast::<Private<T>>()
    };
    private.data.receive(private.netdev(), skb);
}

unsafe extern "C" fn exit_rtnl_callback<T: LinkOps>(
    net: *mut bindings::net,
    _dev_kill_list: *mut bindings::list_head,
) {
    // SAFETY: pernet exit_rtnl callbacks run with RTNL held.
    let rtnl = unsafe { Rtnl::assume_held() };
    T::kind().for_each_private(&rtnl, |private| {
        if private.net.is(&rtnl, net) {
            private.net.detach(&rtnl);
            private.data.creating_net_exit(private.netdev(), &rtnl);
        }
    });
}

/// Adapts the kernel's `net_device_ops` to [`LinkOps`].
struct NetDeviceOps<T: LinkOps>(PhantomData<T>);

impl<T: LinkOps> NetDeviceOps<T> {
    const OPS: bindings::net_device_ops = {
        let mut ops: bindings::net_device_ops = pin_init::zeroed();
        ops.ndo_init = Some(Self::init);
        ops.ndo_uninit = Some(Self::uninit);
        ops.ndo_open = Some(Self::open);
        ops.ndo_stop = Some(Self::stop);
        ops.ndo_start_xmit = Some(Self::start_xmit);
        ops
    };

    const fn build() -> &'static bindings::net_device_ops {
        &Self::OPS
    }

    /// Called by `register_netdevice` (so only from `newlink`, with the
    /// state initialised and RTNL held): lists the device and hands its
    /// state over to the destructor.
    unsafe extern "C" fn init(dev: *mut bindings::net_device) -> kernel::ffi::c_int {
        // SAFETY: as the function's documentation says.
        let private = unsafe { Private::<T>::of(dev) };
        // SAFETY: RTNL protects the list; `dev` is ours to configure.
        unsafe {
            bindings::wgrs_list_add(private.node.get(), T::kind().devices.get());
            bindings::wgrs_netdev_set_destructor(dev, Some(destructor_callback::<T>));
        }
        0
    }

    /// Called with RTNL held when the device is unregistered, or when its
    /// registration fails after `ndo_init`: unlists it and closes its
    /// sockets. The state lives on until the destructor.
    unsafe extern "C" fn uninit(dev: *mut bindings::net_device) {
        // SAFETY: `init` ran, so the state is live until the destructor,
        // which the core runs after this; RTNL is held.
        let (private, rtnl) = unsafe { (Private::<T>::of(dev), Rtnl::assume_held()) };
        // SAFETY: linked in `init`; RTNL protects the list.
        unsafe { bindings::wgrs_list_del(private.node.get()) };
        private.net.detach(&rtnl);
    }

    unsafe extern "C" fn open(dev: *mut bindings::net_device) -> kernel::ffi::c_int {
        // SAFETY: the core calls ndo_open on a registered device of kind
        // `T`, with RTNL held.
        let (private, rtnl) = unsafe { (Private::<T>::of(dev), Rtnl::assume_held()) };
        from_result(|| private.data.open(private.netdev(), &private.net, &rtnl).map(|()| 0))
    }

    unsafe extern "C" fn stop(dev: *mut bindings::net_device) -> kernel::ffi::c_int {
        // SAFETY: as for `open`.
        let (private, rtnl) = unsafe { (Private::<T>::of(dev), Rtnl::assume_held()) };
        private.data.stop(private.netdev(), &private.net, &rtnl);
        0
    }

    unsafe extern "C" fn start_xmit(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
    ) -> bindings::netdev_tx_t {
        // SAFETY: the core transmits only on a registered device that is up,
        // hence of kind `T` with live state.
        let private = unsafe { Private::<T>::of(dev) };
        // The core hands us a non-NULL buffer we now own.
        if let Some(skb) = NonNull::new(skb) {
            // SAFETY: as the comment says.
            private.data.xmit(private.netdev(), unsafe { SkBuff::from_raw(skb) });
        }
        bindings::NETDEV_TX_OK as bindings::netdev_tx_t
    }
}

/// Whether a rate-limited network message may be printed now
/// (`net_ratelimit`, shared by the whole networking stack).
pub(crate) fn net_ratelimit() -> bool {
    // SAFETY: no preconditions.
    unsafe { bindings::net_ratelimit() != 0 }
}
