// SPDX-License-Identifier: GPL-2.0

//! Network devices of an rtnetlink link kind (`ip link add NAME type KIND`).
//!
//! A driver implements [`LinkOps`] for its per-device state `T` and declares
//! a `static` [`LinkKind<T>`]. `T` lives pinned in the `net_device`'s private
//! area: it is initialised in `newlink` before the device is registered and
//! dropped in the device's destructor, which the core runs once the device
//! is unregistered and its last reference is gone. A device of the kind is
//! therefore only ever reachable with its `T` initialised.

use super::bindings;
use super::sync::{Rtnl, RtnlCell, RtnlGuard};
use core::{ffi::CStr, fmt, marker::PhantomData, ops::Deref, ptr, ptr::NonNull};
use kernel::{error::from_result, prelude::*, types::Opaque};

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

    fn as_ptr(&self) -> *mut bindings::net_device {
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

    /// Counts a packet the device failed to transmit.
    pub(crate) fn count_tx_error(&self) {
        // SAFETY: `self` is a live device; the counter is atomic.
        unsafe { bindings::wgrs_netdev_tx_error(self.as_ptr()) };
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

    pub(crate) fn set_mtu(&mut self, mtu: u32, max_mtu: u32) {
        // SAFETY: as above, nobody else accesses the device yet.
        unsafe { bindings::wgrs_netdev_set_mtu(self.0.as_ptr(), mtu, max_mtu) };
    }

    pub(crate) fn set_needed_room(&mut self, headroom: u16, tailroom: u16) {
        // SAFETY: as above, nobody else accesses the device yet.
        unsafe { bindings::wgrs_netdev_set_room(self.0.as_ptr(), headroom, tailroom) };
    }
}

/// An owned socket buffer; freed when dropped.
pub(crate) struct SkBuff(NonNull<bindings::sk_buff>);

impl Drop for SkBuff {
    fn drop(&mut self) {
        // SAFETY: we own the buffer.
        unsafe { bindings::wgrs_kfree_skb(self.0.as_ptr()) };
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

    /// Initialises the state of a device about to be registered.
    fn new(dev: &NetDevice) -> impl PinInit<Self, Error>;

    /// The device was registered.
    fn registered(&self, dev: &NetDevice);

    /// The device is being destroyed; its state is dropped next.
    fn destroyed(&self, dev: &NetDevice);

    /// The device is brought up; `creating_net` is the namespace it was
    /// created in, unless that is gone.
    fn open(&self, dev: &NetDevice, rtnl: &Rtnl, creating_net: Option<&Net>) -> Result;

    /// The device is brought down.
    fn stop(&self, dev: &NetDevice) -> Result;

    /// Transmits (or consumes) a packet.
    fn xmit(&self, dev: &NetDevice, skb: SkBuff);

    /// The namespace the device was created in is going away.
    fn creating_net_exit(&self, dev: &NetDevice, rtnl: &Rtnl);
}

/// What `netdev_priv()` holds for a device of kind `T`.
#[repr(C)]
struct Private<T> {
    /// Entry in `LinkKind::devices`, under RTNL.
    node: Opaque<bindings::list_head>,
    dev: *mut bindings::net_device,
    /// The namespace the device was created in, held without a reference
    /// (a device must not keep it alive); cleared when it exits.
    creating_net: RtnlCell<*mut bindings::net>,
    data: T,
}

impl<T: LinkOps> Private<T> {
    /// # Safety
    ///
    /// `dev` must be a live device of kind `T` whose `data` is initialised.
    unsafe fn of<'a>(dev: *mut bindings::net_device) -> &'a Private<T> {
        // SAFETY: the private area of a device of kind `T` is a `Private<T>`
        // (`priv_size` says so) and the caller guarantees initialisation.
        unsafe { &*bindings::wgrs_netdev_priv(dev).cast::<Private<T>>() }
    }

    fn netdev(&self) -> &NetDevice {
        // SAFETY: the device outlives its private area.
        unsafe { NetDevice::from_raw(self.dev) }
    }

    fn creating_net<'r>(&self, rtnl: &'r Rtnl) -> Option<&'r Net> {
        let net = self.creating_net.get(rtnl);
        // SAFETY: a non-NULL `creating_net` is alive while RTNL is held: it
        // is cleared under RTNL before the namespace is freed.
        (!net.is_null()).then(|| unsafe { Net::from_raw(net) })
    }
}

/// A registered (or registrable) link kind with devices of state `T`.
pub(crate) struct LinkKind<T: LinkOps> {
    ops: Opaque<bindings::rtnl_link_ops>,
    pernet: Opaque<bindings::pernet_operations>,
    devtype: Opaque<bindings::device_type>,
    /// Every device of the kind, linked through `Private::node`; under RTNL.
    devices: Opaque<bindings::list_head>,
    registered: kernel::sync::atomic::Atomic<bool>,
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
            bindings::wgrs_list_init(self.devices.get());
        }
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
        // SAFETY: by the type invariant the device is held and of kind `T`;
        // registered devices have initialised state (see the module docs).
        unsafe { Private::of(self.dev.as_ptr()) }
    }

    pub(crate) fn netdev(&self) -> &NetDevice {
        self.private().netdev()
    }

    /// Whether the current task has `cap` over the user namespace owning the
    /// namespace the device was created in (false once that namespace exited).
    pub(crate) fn creating_net_capable(&self, rtnl: &Rtnl, cap: Capability) -> bool {
        self.creating_net(rtnl).is_some_and(|net| net.ns_capable(cap))
    }

    /// The namespace the device was created in, unless that is gone.
    pub(crate) fn creating_net<'r>(&self, rtnl: &'r Rtnl) -> Option<&'r Net> {
        self.private().creating_net(rtnl)
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
    // SAFETY: the core calls newlink with RTNL held.
    let rtnl = unsafe { Rtnl::assume_held() };
    from_result(|| {
        // SAFETY: the private area of a device allocated with our ops has
        // room for a `Private<T>` and is not yet initialised.
        let private = unsafe { bindings::wgrs_netdev_priv(dev) }.cast::<Private<T>>();
        // SAFETY: `dev` is live; `params` is valid for this call.
        let (netdev, link_net) =
            unsafe { (NetDevice::from_raw(dev), bindings::wgrs_rtnl_newlink_link_net(params)) };
        // SAFETY: `private` is valid for writes and pinned in the device.
        unsafe {
            ptr::addr_of_mut!((*private).dev).write(dev);
            ptr::addr_of_mut!((*private).creating_net).write(RtnlCell::new(link_net));
            bindings::wgrs_list_init((*private).node.get());
            T::new(netdev).__init(ptr::addr_of_mut!((*private).data))?;
        }
        // SAFETY: the device is set up and its state initialised.
        let ret = unsafe { bindings::register_netdevice(dev) };
        if ret < 0 {
            // SAFETY: initialised above and never shared: registration failed.
            unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*private).data)) };
            return Err(Error::from_errno(ret));
        }
        // SAFETY: initialised above; RTNL protects the list. The destructor
        // is set only now so that a failed registration does not run it.
        let private = unsafe {
            bindings::wgrs_list_add((*private).node.get(), T::kind().devices.get());
            bindings::wgrs_netdev_set_destructor(dev, Some(destructor_callback::<T>));
            &*private
        };
        let _ = &rtnl;
        private.data.registered(netdev);
        Ok(0)
    })
}

unsafe extern "C" fn destructor_callback<T: LinkOps>(dev: *mut bindings::net_device) {
    // SAFETY: the core calls the destructor once, after the last reference
    // is gone, on a device registered by `newlink_callback`.
    let private = unsafe { Private::<T>::of(dev) };
    {
        let _rtnl = RtnlGuard::lock();
        // SAFETY: linked in `newlink_callback`; RTNL protects the list.
        unsafe { bindings::wgrs_list_del(private.node.get()) };
    }
    private.data.destroyed(private.netdev());
    // SAFETY: nothing references the state any more; the device is freed
    // right after, which the core leaves to us when a destructor is set.
    unsafe {
        ptr::drop_in_place(ptr::addr_of!(private.data).cast_mut());
        bindings::free_netdev(dev);
    }
}

unsafe extern "C" fn exit_rtnl_callback<T: LinkOps>(
    net: *mut bindings::net,
    _dev_kill_list: *mut bindings::list_head,
) {
    // SAFETY: pernet exit_rtnl callbacks run with RTNL held.
    let rtnl = unsafe { Rtnl::assume_held() };
    let head = T::kind().devices.get();
    // SAFETY: the list is initialised at registration and under RTNL.
    let mut node = unsafe { (*head).next };
    while node != head {
        // SAFETY: every entry is the first field of a live `Private<T>`
        // (`repr(C)`); entries leave the list only under RTNL.
        let private = unsafe { &*node.cast::<Private<T>>() };
        if private.creating_net.get(&rtnl) == net {
            private.creating_net.set(&rtnl, ptr::null_mut());
            private.data.creating_net_exit(private.netdev(), &rtnl);
        }
        // SAFETY: as above.
        node = unsafe { (*node).next };
    }
}

/// Adapts the kernel's `net_device_ops` to [`LinkOps`].
struct NetDeviceOps<T: LinkOps>(PhantomData<T>);

impl<T: LinkOps> NetDeviceOps<T> {
    const OPS: bindings::net_device_ops = {
        let mut ops: bindings::net_device_ops = pin_init::zeroed();
        ops.ndo_open = Some(Self::open);
        ops.ndo_stop = Some(Self::stop);
        ops.ndo_start_xmit = Some(Self::start_xmit);
        ops
    };

    const fn build() -> &'static bindings::net_device_ops {
        &Self::OPS
    }

    unsafe extern "C" fn open(dev: *mut bindings::net_device) -> kernel::ffi::c_int {
        // SAFETY: the core calls ndo_open on a registered device of kind
        // `T`, with RTNL held.
        let (private, rtnl) = unsafe { (Private::<T>::of(dev), Rtnl::assume_held()) };
        from_result(|| {
            let creating_net = private.creating_net(&rtnl);
            private.data.open(private.netdev(), &rtnl, creating_net).map(|()| 0)
        })
    }

    unsafe extern "C" fn stop(dev: *mut bindings::net_device) -> kernel::ffi::c_int {
        // SAFETY: as for `open`.
        let private = unsafe { Private::<T>::of(dev) };
        from_result(|| private.data.stop(private.netdev()).map(|()| 0))
    }

    unsafe extern "C" fn start_xmit(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
    ) -> bindings::netdev_tx_t {
        // SAFETY: as for `open`.
        let private = unsafe { Private::<T>::of(dev) };
        // The core hands us a non-NULL buffer we now own.
        if let Some(skb) = NonNull::new(skb) {
            private.data.xmit(private.netdev(), SkBuff(skb));
        }
        bindings::NETDEV_TX_OK as bindings::netdev_tx_t
    }
}
