// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line wrappers for static inline kernel APIs and for net_device
 * fields whose layout (bitfields, struct groups) bindgen cannot express
 * safely. Most are one-liners, and WireGuard's logic lives in Rust; the
 * longer ones are the stack's own plumbing: routing and sending on a UDP
 * tunnel socket (as upstream's socket.c), and the buffer preparation
 * around the AEAD.
 */
#include "wireguard_rs.h"
#include <net/gso.h>
#include <net/dst_metadata.h>
#include <net/icmp.h>
#include <linux/icmpv6.h>
#include <net/inet_ecn.h>
#include <crypto/chacha20poly1305.h>
#include <linux/sched/task_stack.h>

/*
 * With CONFIG_RUST_INLINE_HELPERS, Kbuild links this file into the Rust
 * object as LLVM bitcode, beside the kernel's own helpers, and LLVM inlines
 * the shims into their callers. As for those helpers (rust/helpers/helpers.c),
 * only always_inline gets past LLVM's attribute checks between C and Rust
 * functions. Elsewhere it changes little: the shims are called from Rust,
 * and each keeps its out-of-line copy.
 */
#pragma clang attribute push(__attribute__((always_inline)), apply_to = function)

void *wgrs_netdev_priv(const struct net_device *dev) { return netdev_priv(dev); }
void wgrs_dev_put(struct net_device *dev) { dev_put(dev); }
const char *wgrs_netdev_name(const struct net_device *dev) { return dev->name; }
int wgrs_netdev_ifindex(const struct net_device *dev) { return dev->ifindex; }

bool wgrs_netif_running(const struct net_device *dev) { return netif_running(dev); }

const struct rtnl_link_ops *wgrs_netdev_link_ops(const struct net_device *dev)
{
	return dev->rtnl_link_ops;
}

void wgrs_netdev_set_ops(struct net_device *dev, const struct net_device_ops *ops)
{
	dev->netdev_ops = ops;
}

/* A layer-3 tunnel: no link-layer header or address, no qdisc, no ARP. */
void wgrs_netdev_setup_l3_tunnel(struct net_device *dev, const struct device_type *type,
				 netdev_features_t features)
{
	dev->header_ops = &ip_tunnel_header_ops;
	dev->hard_header_len = 0;
	dev->addr_len = 0;
	dev->type = ARPHRD_NONE;
	dev->flags = IFF_POINTOPOINT | IFF_NOARP;
	dev->priv_flags |= IFF_NO_QUEUE;
	dev->lltx = true;
	dev->features |= features;
	dev->hw_features |= features;
	dev->hw_enc_features |= features;
	dev->pcpu_stat_type = NETDEV_PCPU_STAT_TSTATS;
	SET_NETDEV_DEVTYPE(dev, type);
	/* Keep the dst for ICMP replies. */
	netif_keep_dst(dev);
	netif_set_tso_max_size(dev, GSO_MAX_SIZE);
}

void wgrs_netdev_set_mtu(struct net_device *dev, unsigned int mtu, unsigned int max_mtu)
{
	dev->mtu = mtu;
	dev->max_mtu = max_mtu;
}

void wgrs_netdev_set_room(struct net_device *dev, unsigned short headroom,
			  unsigned short tailroom)
{
	dev->needed_headroom = headroom;
	dev->needed_tailroom = tailroom;
}

/* The destructor frees the private state; the core then frees the device. */
void wgrs_netdev_set_destructor(struct net_device *dev, void (*destructor)(struct net_device *))
{
	dev->priv_destructor = destructor;
	dev->needs_free_netdev = true;
}

bool wgrs_netdev_has_destructor(const struct net_device *dev) { return dev->priv_destructor; }
bool wgrs_netdev_registered(const struct net_device *dev)
{
	return READ_ONCE(dev->reg_state) == NETREG_REGISTERED;
}

u32 wgrs_netdev_mtu(const struct net_device *dev) { return READ_ONCE(dev->mtu); }

/* The counters of kapi::netdev::Stat, in its order. */
void wgrs_netdev_count(struct net_device *dev, u32 stat, u64 n)
{
	switch (stat) {
	case 0: DEV_STATS_ADD(dev, tx_errors, n); break;
	case 1: DEV_STATS_ADD(dev, tx_dropped, n); break;
	case 2: DEV_STATS_ADD(dev, rx_errors, n); break;
	case 3: DEV_STATS_ADD(dev, rx_frame_errors, n); break;
	case 4: DEV_STATS_ADD(dev, rx_length_errors, n); break;
	}
}

void wgrs_netdev_rx_add(struct net_device *dev, u32 len) { dev_sw_netstats_rx_add(dev, len); }

/* On open: a point-to-point tunnel sends no ICMP redirects and generates
 * no IPv6 link-local address. Called with RTNL held.
 */
void wgrs_netdev_tunnel_inet_conf(struct net_device *dev)
{
	struct in_device *dev_v4 = __in_dev_get_rtnl(dev);
	struct inet6_dev *dev_v6 = __in6_dev_get(dev);

	if (dev_v4) {
		IN_DEV_CONF_SET(dev_v4, SEND_REDIRECTS, false);
		IPV4_DEVCONF_ALL(dev_net(dev), SEND_REDIRECTS) = false;
	}
	if (dev_v6)
		dev_v6->cnf.addr_gen_mode = IN6_ADDR_GEN_MODE_NONE;
}

struct net *wgrs_rtnl_newlink_link_net(struct rtnl_newlink_params *params)
{
	return rtnl_newlink_link_net(params);
}

void wgrs_list_init(struct list_head *list) { INIT_LIST_HEAD(list); }
void wgrs_list_add(struct list_head *entry, struct list_head *head) { list_add(entry, head); }
void wgrs_list_del(struct list_head *entry) { list_del(entry); }

struct net *wgrs_skb_sock_net(const struct sk_buff *skb) { return sock_net(skb->sk); }

unsigned char *wgrs_skb_tail(struct sk_buff *skb, unsigned int *tailroom)
{
	*tailroom = skb_tailroom(skb);
	return skb_tail_pointer(skb);
}
void wgrs_genlmsg_end(struct sk_buff *skb, void *hdr) { genlmsg_end(skb, hdr); }
void wgrs_genlmsg_cancel(struct sk_buff *skb, void *hdr) { genlmsg_cancel(skb, hdr); }

void wgrs_genl_dump_check_consistent(struct netlink_callback *cb, void *hdr)
{
	genl_dump_check_consistent(cb, hdr);
}

const struct genl_info *wgrs_genl_info_dump(struct netlink_callback *cb)
{
	return genl_info_dump(cb);
}

u32 wgrs_netlink_cb_portid(const struct netlink_callback *cb)
{
	return NETLINK_CB(cb->skb).portid;
}

u32 wgrs_netlink_cb_nlmsg_seq(const struct netlink_callback *cb) { return cb->nlh->nlmsg_seq; }
struct net *wgrs_netlink_cb_net(const struct netlink_callback *cb) { return sock_net(cb->skb->sk); }
void wgrs_netlink_cb_set_seq(struct netlink_callback *cb, unsigned int seq) { cb->seq = seq; }

/* The dump's private state lives behind the first callback argument. */
void **wgrs_netlink_cb_state(struct netlink_callback *cb)
{
	BUILD_BUG_ON(sizeof(cb->args[0]) < sizeof(void *));
	return (void **)&cb->args[0];
}

struct nlattr **wgrs_genl_info_attrs(const struct genl_info *info) { return info->attrs; }
struct net *wgrs_genl_info_net(const struct genl_info *info) { return genl_info_net(info); }
const struct genl_family *wgrs_genl_info_family(const struct genl_info *info) { return info->family; }
u8 wgrs_genl_info_cmd(const struct genl_info *info) { return info->genlhdr->cmd; }

void wgrs_kfree_skb(struct sk_buff *skb) { kfree_skb(skb); }

/*
 * A UDP tunnel socket on the wildcard address of @family, bound to @port
 * (0: any free port), configured as WireGuard's: atomic allocations (it
 * sends from softirq), an unlimited send buffer, memalloc, v6only. Datagrams
 * go to @encap_rcv with @user_data as the socket's user data.
 */
int wgrs_udp_tunnel_sock_create(struct net *net, int family, u16 port,
				int (*encap_rcv)(struct sock *sk, struct sk_buff *skb),
				void *user_data, struct sock **out)
{
	struct udp_tunnel_sock_cfg tunnel = {
		.sk_user_data = user_data,
		.encap_type = 1,
		.encap_rcv = encap_rcv,
	};
	struct udp_port_cfg cfg = { .family = family, .local_udp_port = htons(port) };
	struct socket *sock;
	int ret;

	if (family == AF_INET) {
		cfg.local_ip.s_addr = htonl(INADDR_ANY);
		cfg.use_udp_checksums = true;
	} else {
		cfg.local_ip6 = in6addr_any;
		cfg.use_udp6_tx_checksums = true;
		cfg.use_udp6_rx_checksums = true;
		cfg.ipv6_v6only = true;
	}
	ret = udp_sock_create(net, &cfg, &sock);
	if (ret < 0)
		return ret;
	sock->sk->sk_allocation = GFP_ATOMIC;
	sock->sk->sk_sndbuf = INT_MAX;
	sk_set_memalloc(sock->sk);
	setup_udp_tunnel_sock(net, sock->sk, &tunnel);
	*out = sock->sk;
	return 0;
}

void *wgrs_sk_user_data(struct sock *sk) { return rcu_dereference_sk_user_data(sk); }
void wgrs_rcu_read_lock_bh(void) { rcu_read_lock_bh(); }
void wgrs_rcu_read_unlock_bh(void) { rcu_read_unlock_bh(); }

/*
 * Routes and sends @skb (consumed) through UDP socket @sk to @daddr:@dport,
 * from *@saddr, as upstream's send4(). A source that is no longer ours, or
 * that routes out another interface than *@src_if, is cleared there.
 */
int wgrs_udp_send4(struct sock *sk, struct sk_buff *skb, struct net_device *dev, u32 mark,
		   u8 *saddr, int *src_if, const u8 *daddr, __be16 dport, u8 ds,
		   struct dst_cache *cache)
{
	struct flowi4 fl = {
		.fl4_dport = dport,
		.flowi4_mark = mark,
		.flowi4_proto = IPPROTO_UDP,
	};
	struct rtable *rt = NULL;

	memcpy(&fl.saddr, saddr, 4);
	memcpy(&fl.daddr, daddr, 4);
	skb_mark_not_on_list(skb);
	skb->dev = dev;
	skb->mark = mark;
	fl.fl4_sport = inet_sk(sk)->inet_sport;
	if (cache)
		rt = dst_cache_get_ip4(cache, &fl.saddr);
	if (!rt) {
		security_sk_classify_flow(sk, flowi4_to_flowi_common(&fl));
		if (unlikely(!inet_confirm_addr(sock_net(sk), NULL, 0, fl.saddr, RT_SCOPE_HOST))) {
			memset(saddr, 0, 4);
			*src_if = 0;
			fl.saddr = 0;
			if (cache)
				dst_cache_reset(cache);
		}
		rt = ip_route_output_flow(sock_net(sk), &fl, sk);
		if (unlikely(*src_if && ((IS_ERR(rt) && PTR_ERR(rt) == -EINVAL) ||
					 (!IS_ERR(rt) && rt->dst.dev->ifindex != *src_if)))) {
			memset(saddr, 0, 4);
			*src_if = 0;
			fl.saddr = 0;
			if (cache)
				dst_cache_reset(cache);
			if (!IS_ERR(rt))
				ip_rt_put(rt);
			rt = ip_route_output_flow(sock_net(sk), &fl, sk);
		}
		if (IS_ERR(rt)) {
			kfree_skb(skb);
			return PTR_ERR(rt);
		}
		if (cache)
			dst_cache_set_ip4(cache, &rt->dst, fl.saddr);
	}
	skb->ignore_df = 1;
	udp_tunnel_xmit_skb(rt, sk, skb, fl.saddr, fl.daddr, ds, ip4_dst_hoplimit(&rt->dst), 0,
			    fl.fl4_sport, fl.fl4_dport, false, false, 0);
	return 0;
}

/* As wgrs_udp_send4(), over IPv6 (upstream's send6()). */
int wgrs_udp_send6(struct sock *sk, struct sk_buff *skb, struct net_device *dev, u32 mark,
		   u8 *saddr, const u8 *daddr, __be16 dport, u32 scope_id, u8 ds,
		   struct dst_cache *cache)
{
	struct flowi6 fl = {
		.fl6_dport = dport,
		.flowi6_mark = mark,
		.flowi6_oif = scope_id,
		.flowi6_proto = IPPROTO_UDP,
	};
	struct dst_entry *dst = NULL;

	memcpy(&fl.saddr, saddr, 16);
	memcpy(&fl.daddr, daddr, 16);
	skb_mark_not_on_list(skb);
	skb->dev = dev;
	skb->mark = mark;
	fl.fl6_sport = inet_sk(sk)->inet_sport;
	if (cache)
		dst = dst_cache_get_ip6(cache, &fl.saddr);
	if (!dst) {
		security_sk_classify_flow(sk, flowi6_to_flowi_common(&fl));
		if (unlikely(!ipv6_addr_any(&fl.saddr) &&
			     !ipv6_chk_addr(sock_net(sk), &fl.saddr, NULL, 0))) {
			memset(saddr, 0, 16);
			fl.saddr = in6addr_any;
			if (cache)
				dst_cache_reset(cache);
		}
		dst = ip6_dst_lookup_flow(sock_net(sk), sk, &fl, NULL);
		if (IS_ERR(dst)) {
			kfree_skb(skb);
			return PTR_ERR(dst);
		}
		if (cache)
			dst_cache_set_ip6(cache, dst, &fl.saddr);
	}
	skb->ignore_df = 1;
	udp_tunnel6_xmit_skb(dst, sk, skb, skb->dev, &fl.saddr, &fl.daddr, ds,
			     ip6_dst_hoplimit(dst), 0, fl.fl6_sport, fl.fl6_dport, false, 0);
	return 0;
}

u16 wgrs_sock_local_port(const struct sock *sk) { return ntohs(inet_sk(sk)->inet_sport); }
bool wgrs_ipv6_mod_enabled(void) { return ipv6_mod_enabled(); }

bool wgrs_net_ns_capable(struct net *net, int cap) { return ns_capable(net->user_ns, cap); }
void wgrs_memzero_explicit(void *s, size_t count) { memzero_explicit(s, count); }
int wgrs_crypto_memneq(const void *a, const void *b, size_t size) { return crypto_memneq(a, b, size); }

/*
 * Zeroes the stack just below the caller's frame, where the calls it made
 * left their locals: lib/crypto's BLAKE2s compression keeps the message
 * words of the last block in its frame, and in HKDF's expansion that block
 * holds the previous output, a session key. Not inlined (the pragma above
 * does not override noinline): the buffer must lie below the caller's frame.
 */
noinline void wgrs_stack_burn(void)
{
	u8 buf[1024];

	memzero_explicit(buf, sizeof(buf));
}

/*
 * Whether the @len bytes at @needle occur in the dead part of the current
 * task's stack: from its lowest address up to this function's frame, where
 * calls that have returned left their locals. For the self-tests, which look
 * there for secrets the handshake should have wiped. Uninstrumented: KASAN
 * may still hold a dead frame's red zones poisoned.
 */
__no_sanitize_address noinline bool wgrs_stack_residue(const u8 *needle, size_t len)
{
	const u8 *lo = task_stack_page(current);
	const u8 *hi = (const u8 *)__builtin_frame_address(0) - 64;
	const u8 *p;
	size_t i;

	for (p = lo; len && p + len <= hi; p++) {
		for (i = 0; i < len && p[i] == needle[i]; i++)
			;
		if (i == len)
			return true;
	}
	return false;
}

bool wgrs_refcount_inc_not_zero(refcount_t *r) { return refcount_inc_not_zero(r); }
u32 wgrs_get_random_u32_below(u32 ceil) { return get_random_u32_below(ceil); }

/*
 * Created, referenced, then woken: the reference for kthread_stop_put() is
 * taken before the thread can run, let alone exit and be reaped.
 */
struct task_struct *wgrs_kthread_run(int (*fn)(void *), void *data, const char *name)
{
	struct task_struct *task = kthread_create(fn, data, "%s", name);

	if (!IS_ERR(task)) {
		get_task_struct(task);
		wake_up_process(task);
	}
	return task;
}

/*
 * The reaper of kapi::rcu: drops RcuArc objects past their grace period in
 * process context. wgrs_rcu_reap() is Rust's.
 */
void wgrs_rcu_reap(void);
static void wgrs_rcu_reap_work(struct work_struct *work) { wgrs_rcu_reap(); }
static DECLARE_WORK(wgrs_rcu_reaper, wgrs_rcu_reap_work);
void wgrs_rcu_reap_schedule(void) { schedule_work(&wgrs_rcu_reaper); }
void wgrs_rcu_reap_flush(void) { flush_work(&wgrs_rcu_reaper); }

void wgrs_spin_lock_bh(spinlock_t *lock) { spin_lock_bh(lock); }
void wgrs_spin_unlock_bh(spinlock_t *lock) { spin_unlock_bh(lock); }
bool wgrs_spin_trylock_bh(spinlock_t *lock) { return spin_trylock_bh(lock); }

u64 wgrs_ktime_get_coarse_boottime_ns(void) { return ktime_get_coarse_boottime_ns(); }
u64 wgrs_jiffies(void) { return get_jiffies_64(); }

/* ---- socket buffers (kapi::skb) ---- */

struct sk_buff *wgrs_alloc_skb_with_data(size_t headroom, const u8 *data, size_t len)
{
	struct sk_buff *skb = alloc_skb(headroom + len, GFP_ATOMIC);

	if (!skb)
		return NULL;
	skb_reserve(skb, headroom);
	skb_set_inner_network_header(skb, 0);
	skb_put_data(skb, data, len);
	return skb;
}

bool wgrs_pskb_may_pull(struct sk_buff *skb, unsigned int len) { return pskb_may_pull(skb, len); }

int wgrs_pskb_trim(struct sk_buff *skb, unsigned int len) { return pskb_trim(skb, len); }

bool wgrs_skb_check_ip_protocol(struct sk_buff *skb)
{
	__be16 protocol = ip_tunnel_parse_protocol(skb);

	return protocol && skb->protocol == protocol;
}

/* The IPv4 or IPv6 source or destination of the packet's network header:
 * returns 4 or 6 (the bytes copied to @out), or 0 for another protocol.
 */
int wgrs_skb_ip_addr(const struct sk_buff *skb, bool source, u8 *out)
{
	if (skb->protocol == htons(ETH_P_IP)) {
		memcpy(out, source ? &ip_hdr(skb)->saddr : &ip_hdr(skb)->daddr, 4);
		return 4;
	}
	if (skb->protocol == htons(ETH_P_IPV6)) {
		memcpy(out, source ? &ipv6_hdr(skb)->saddr : &ipv6_hdr(skb)->daddr, 16);
		return 6;
	}
	return 0;
}

bool wgrs_skb_is_gso(const struct sk_buff *skb) { return skb_is_gso(skb); }
u32 wgrs_skb_get_hash(struct sk_buff *skb) { return skb_get_hash(skb); }
int wgrs_dev_recursion_level(void) { return dev_recursion_level(); }

/* Consumes @skb; returns its segments (or @skb itself when it needs none). */
struct sk_buff *wgrs_skb_gso_segment(struct sk_buff *skb, int *err)
{
	struct sk_buff *segs = skb_gso_segment(skb, 0);

	*err = 0;
	if (IS_ERR(segs)) {
		*err = PTR_ERR(segs);
		kfree_skb(skb);
		return NULL;
	}
	if (!segs)
		return skb;
	consume_skb(skb);
	return segs;
}

struct sk_buff *wgrs_skb_share_check(struct sk_buff *skb) { return skb_share_check(skb, GFP_ATOMIC); }

u32 wgrs_skb_route_mtu(const struct sk_buff *skb, u32 dev_mtu)
{
	return skb_valid_dst(skb) ? dst_mtu(skb_dst(skb)) : dev_mtu;
}

void wgrs_skb_dst_drop(struct sk_buff *skb) { skb_dst_drop(skb); }

void wgrs_skb_icmp_unreachable(struct sk_buff *skb)
{
	if (skb->protocol == htons(ETH_P_IP))
		icmp_ndo_send(skb, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0);
	else if (skb->protocol == htons(ETH_P_IPV6))
		icmpv6_ndo_send(skb, ICMPV6_DEST_UNREACH, ICMPV6_ADDR_UNREACH, 0);
}

u8 wgrs_skb_ecn_encap(struct sk_buff *skb) { return ip_tunnel_ecn_encap(0, ip_hdr(skb), skb); }
u8 wgrs_skb_outer_dsfield(struct sk_buff *skb) { return ip_tunnel_get_dsfield(ip_hdr(skb), skb); }
void wgrs_skb_orphan(struct sk_buff *skb) { skb_orphan(skb); }

/* Clears what the layer the packet leaves set (upstream wg_reset_packet). */
void wgrs_skb_reset(struct sk_buff *skb, bool encapsulating)
{
	u8 l4_hash = skb->l4_hash;
	u8 sw_hash = skb->sw_hash;
	u32 hash = skb->hash;
	u8 tstamp_type = skb->tstamp_type;

	skb_scrub_packet(skb, true);
	memset(&skb->headers, 0, sizeof(skb->headers));
	if (encapsulating) {
		skb->l4_hash = l4_hash;
		skb->sw_hash = sw_hash;
		skb->hash = hash;
		skb->tstamp_type = tstamp_type;
	}
	skb->queue_mapping = 0;
	skb->nohdr = 0;
	skb->peeked = 0;
	skb->mac_len = 0;
	skb->dev = NULL;
#ifdef CONFIG_NET_SCHED
	skb->tc_index = 0;
#endif
	skb_reset_redirect(skb);
	skb->hdr_len = skb_headroom(skb);
	skb_reset_mac_header(skb);
	skb_reset_network_header(skb);
	skb_reset_transport_header(skb);
	skb_probe_transport_header(skb);
	skb_reset_inner_headers(skb);
}

/*
 * Makes @skb ready for sealing its payload in place: @headroom in front,
 * the pending checksum done, @padding zeros and @taglen bytes behind, the
 * @hlen-byte @header pushed, and the payload with padding and tag mapped
 * into @sg. Returns the number of entries used, or -1.
 */
int wgrs_skb_prepare_seal(struct sk_buff *skb, u32 headroom, const u8 *header, u32 hlen,
			  u32 padding, u32 taglen, struct scatterlist *sg, u32 max_sg)
{
	struct sk_buff *trailer;
	int nfrags;

	/* Hash the inner flow before it is encrypted. */
	skb_get_hash(skb);
	if (skb_cow_head(skb, headroom) < 0)
		return -1;
	if (skb->ip_summed == CHECKSUM_PARTIAL && skb_checksum_help(skb))
		return -1;
	nfrags = skb_cow_data(skb, padding + taglen, &trailer);
	if (nfrags < 0 || nfrags > max_sg)
		return -1;
	memset(skb_tail_pointer(trailer), 0, padding);
	skb_set_inner_network_header(skb, 0);
	memcpy(skb_push(skb, hlen), header, hlen);
	pskb_put(skb, trailer, padding + taglen);
	sg_init_table(sg, nfrags);
	if (skb_to_sgvec(skb, sg, hlen, skb->len - hlen) <= 0)
		return -1;
	return nfrags;
}

/*
 * Makes the payload after the @hlen-byte header writable, keeping the
 * network header inside the buffer, pulls the header and maps the rest
 * into @sg. Returns the length to open (tag included), or -1.
 */
int wgrs_skb_prepare_open(struct sk_buff *skb, u32 hlen, u32 taglen, struct scatterlist *sg,
			  u32 max_sg)
{
	struct sk_buff *trailer;
	unsigned int offset;
	int nfrags;

	if (skb->len < hlen + taglen)
		return -1;
	offset = -skb_network_offset(skb);
	skb_push(skb, offset);
	nfrags = skb_cow_data(skb, 0, &trailer);
	offset += hlen;
	skb_pull(skb, offset);
	if (nfrags < 0 || nfrags > max_sg)
		return -1;
	sg_init_table(sg, nfrags);
	if (skb_to_sgvec(skb, sg, 0, skb->len) <= 0)
		return -1;
	return skb->len;
}

/* Drops @len bytes of tail, with the network header kept in the buffer. */
bool wgrs_skb_trim_tail_keep_network(struct sk_buff *skb, u32 len)
{
	unsigned int offset = -skb_network_offset(skb);
	bool ok;

	skb_push(skb, offset);
	ok = skb->len >= len && !pskb_trim(skb, skb->len - len);
	skb_pull(skb, offset);
	return ok;
}

/* The outer addresses of a received UDP packet; returns 4, 6 or 0. */
int wgrs_skb_outer_endpoint(const struct sk_buff *skb, u8 *src, u16 *port, u8 *dst, int *ifindex)
{
	*port = ntohs(udp_hdr(skb)->source);
	if (skb->protocol == htons(ETH_P_IP)) {
		memcpy(src, &ip_hdr(skb)->saddr, 4);
		memcpy(dst, &ip_hdr(skb)->daddr, 4);
		*ifindex = skb->skb_iif;
		return 4;
	}
	if (skb->protocol == htons(ETH_P_IPV6)) {
		memcpy(src, &ipv6_hdr(skb)->saddr, 16);
		memcpy(dst, &ipv6_hdr(skb)->daddr, 16);
		*ifindex = ipv6_iface_scope_id(&ipv6_hdr(skb)->saddr, skb->skb_iif);
		return 6;
	}
	return 0;
}

/* The inner IP header of a decrypted packet: returns its version (4 or 6)
 * with the total length it claims, 0 if it is not IP, -1 if its size is
 * dishonest.
 */
int wgrs_skb_inner_ip(struct sk_buff *skb, u32 *len)
{
	if (skb_network_header(skb) < skb->head)
		return -1;
	if (!pskb_network_may_pull(skb, sizeof(struct iphdr)))
		return 0;
	if (ip_hdr(skb)->version == 4) {
		*len = ntohs(ip_hdr(skb)->tot_len);
		return *len < sizeof(struct iphdr) ? -1 : 4;
	}
	if (ip_hdr(skb)->version == 6 && pskb_network_may_pull(skb, sizeof(struct ipv6hdr))) {
		*len = ntohs(ipv6_hdr(skb)->payload_len) + sizeof(struct ipv6hdr);
		return 6;
	}
	return 0;
}

void wgrs_skb_prepare_delivery(struct sk_buff *skb, struct net_device *dev, u8 ds)
{
	skb->dev = dev;
	/* The AEAD tag vouched for every byte: no checksum needs checking. */
	skb->ip_summed = CHECKSUM_UNNECESSARY;
	skb->csum_level = ~0;
	skb->protocol = ip_tunnel_parse_protocol(skb);
	if (skb->protocol == htons(ETH_P_IP))
		INET_ECN_decapsulate(skb, ds, ip_hdr(skb)->tos);
	else if (skb->protocol == htons(ETH_P_IPV6))
		INET_ECN_decapsulate(skb, ds, ipv6_get_dsfield(ipv6_hdr(skb)));
}

void wgrs_kfree_skb_list(struct sk_buff *skb) { kfree_skb_list(skb); }

/*
 * kapi::skb reads these in place at the offsets wireguard_rs.h publishes, as
 * the types it declares them; an OrderedQueue's stub stands in for a buffer
 * by its two links.
 */
static_assert(__same_type(((struct sk_buff *)NULL)->next, struct sk_buff *));
static_assert(__same_type(((struct sk_buff *)NULL)->prev, struct sk_buff *));
static_assert(__same_type(((struct sk_buff *)NULL)->len, unsigned int));
static_assert(__same_type(((struct sk_buff *)NULL)->data_len, unsigned int));
static_assert(__same_type(((struct sk_buff *)NULL)->data, unsigned char *));
static_assert(offsetof(struct sk_buff, next) == offsetof(struct wgrs_skb_links, next) &&
	      offsetof(struct sk_buff, prev) == offsetof(struct wgrs_skb_links, prev));

/* ---- ptr_ring (kapi::queue) ---- */

int wgrs_ptr_ring_init(struct ptr_ring *ring, u32 size) { return ptr_ring_init(ring, size, GFP_KERNEL); }
void wgrs_ptr_ring_cleanup(struct ptr_ring *ring) { ptr_ring_cleanup(ring, NULL); }
int wgrs_ptr_ring_produce_bh(struct ptr_ring *ring, void *ptr) { return ptr_ring_produce_bh(ring, ptr); }
void *wgrs_ptr_ring_consume_bh(struct ptr_ring *ring) { return ptr_ring_consume_bh(ring); }
bool wgrs_ptr_ring_empty_bh(struct ptr_ring *ring) { return ptr_ring_empty_bh(ring); }

/* ---- work, timers, NAPI, CPUs ---- */

struct workqueue_struct *wgrs_alloc_workqueue(const char *prefix, const char *name, u32 flags)
{
	return alloc_workqueue("%s-%s", flags, 0, prefix, name);
}

void wgrs_init_work(struct work_struct *work, work_func_t func) { INIT_WORK(work, func); }

void *wgrs_alloc_percpu_works(size_t size, size_t align) { return __alloc_percpu(size, align); }
void *wgrs_per_cpu_ptr(void *ptr, u32 cpu) { return per_cpu_ptr((void __percpu *)ptr, cpu); }

void wgrs_timer_setup(struct timer_list *timer, void (*func)(struct timer_list *))
{
	timer_setup(timer, func, 0);
}

bool wgrs_timer_pending(const struct timer_list *timer) { return timer_pending(timer); }

void wgrs_napi_add_enable(struct net_device *dev, struct napi_struct *napi,
			  int (*poll)(struct napi_struct *, int))
{
	memset(napi, 0, sizeof(*napi));
	/* As upstream: no busy polling of a tunnel's per-peer contexts. */
	set_bit(NAPI_STATE_NO_BUSY_POLL, &napi->state);
	netif_napi_add(dev, napi, poll);
	napi_enable(napi);
}

/* The caller frees @napi a grace period later (netif_napi_del would wait
 * for one here). */
void wgrs_napi_disable_del_unsynced(struct napi_struct *napi)
{
	napi_disable(napi);
	__netif_napi_del(napi);
}

void wgrs_napi_gro_receive(struct napi_struct *napi, struct sk_buff *skb) { napi_gro_receive(napi, skb); }

void wgrs_netdev_threaded_napi(struct net_device *dev) { netif_threaded_enable(dev); }

u32 wgrs_nr_cpu_ids(void) { return nr_cpu_ids; }
u32 wgrs_num_online_cpus(void) { return num_online_cpus(); }
bool wgrs_cpu_possible(u32 cpu) { return cpu < nr_cpu_ids && cpu_possible(cpu); }
bool wgrs_cpu_online(u32 cpu) { return cpu < nr_cpu_ids && cpu_online(cpu); }

u32 wgrs_cpumask_next_online(int prev)
{
	int cpu = cpumask_next(prev, cpu_online_mask);

	return cpu >= nr_cpu_ids ? cpumask_first(cpu_online_mask) : cpu;
}

u32 wgrs_cpumask_nth_online(u64 id)
{
	return cpumask_nth(id % num_online_cpus(), cpu_online_mask);
}

/*
 * Checks the outer IP and UDP headers of a datagram from our socket and
 * leaves @skb holding exactly the UDP payload, at least 4 bytes of it
 * linear (upstream prepare_skb_header(), less the message checks).
 */
bool wgrs_skb_pull_udp_header(struct sk_buff *skb)
{
	size_t data_offset, data_len;
	struct udphdr *udp;
	__be16 protocol = ip_tunnel_parse_protocol(skb);

	if (unlikely(!protocol || skb->protocol != protocol ||
		     skb_transport_header(skb) < skb->head ||
		     (skb_transport_header(skb) + sizeof(struct udphdr)) > skb_tail_pointer(skb)))
		return false;
	udp = udp_hdr(skb);
	data_offset = (u8 *)udp - skb->data;
	if (unlikely(data_offset > U16_MAX || data_offset + sizeof(struct udphdr) > skb->len))
		return false;
	data_len = udp_get_len_short(udp);
	if (unlikely(data_len < sizeof(struct udphdr) || data_len > skb->len - data_offset))
		return false;
	data_len -= sizeof(struct udphdr);
	data_offset = (u8 *)udp + sizeof(struct udphdr) - skb->data;
	if (unlikely(!pskb_may_pull(skb, data_offset + 4) ||
		     pskb_trim(skb, data_len + data_offset) < 0))
		return false;
	skb_pull(skb, data_offset);
	return skb->len == data_len;
}

/* Produces, but only if the producer lock is free when @contended says
 * the ring is busy (upstream's handshake queue under load).
 */
int wgrs_ptr_ring_produce_bh_try(struct ptr_ring *ring, void *ptr, bool contended)
{
	int ret = -EBUSY;

	if (!contended)
		return ptr_ring_produce_bh(ring, ptr);
	if (spin_trylock_bh(&ring->producer_lock)) {
		ret = __ptr_ring_produce(ring, ptr);
		spin_unlock_bh(&ring->producer_lock);
	}
	return ret;
}

static void wgrs_ptr_ring_free_skb(void *ptr) { kfree_skb(ptr); }
void wgrs_ptr_ring_cleanup_skbs(struct ptr_ring *ring) { ptr_ring_cleanup(ring, wgrs_ptr_ring_free_skb); }

void wgrs_cond_resched(void) { cond_resched(); }

u64 wgrs_netdev_net_cookie(const struct net_device *dev) { return dev_net(dev)->net_cookie; }
bool wgrs_rng_is_initialized(void) { return rng_is_initialized(); }
void wgrs_blake2s_init(struct blake2s_ctx *ctx, size_t outlen) { blake2s_init(ctx, outlen); }
void wgrs_blake2s_init_key(struct blake2s_ctx *ctx, size_t outlen, const void *key,
			   size_t keylen)
{
	blake2s_init_key(ctx, outlen, key, keylen);
}

/*
 * rhashtable with runtime parameters: the fast-path inlines take ht->p,
 * which rhashtable_init() completed (hash function), as they allow.
 */
int wgrs_rhashtable_init(struct rhashtable *ht, u16 key_len, u16 key_offset, u16 head_offset)
{
	const struct rhashtable_params params = {
		.key_len = key_len,
		.key_offset = key_offset,
		.head_offset = head_offset,
		.automatic_shrinking = true,
	};

	return rhashtable_init(ht, &params);
}

void *wgrs_rhashtable_lookup(struct rhashtable *ht, const void *key)
{
	return rhashtable_lookup(ht, key, ht->p);
}

int wgrs_rhashtable_insert(struct rhashtable *ht, struct rhash_head *obj)
{
	return rhashtable_lookup_insert_fast(ht, obj, ht->p);
}

int wgrs_rhashtable_remove(struct rhashtable *ht, struct rhash_head *obj)
{
	return rhashtable_remove_fast(ht, obj, ht->p);
}

int wgrs_rhashtable_replace(struct rhashtable *ht, struct rhash_head *old, struct rhash_head *new)
{
	return rhashtable_replace_fast(ht, old, new, ht->p);
}

unsigned int wgrs_rhashtable_nelems(struct rhashtable *ht) { return atomic_read(&ht->nelems); }

void wgrs_init_deferrable_work(struct delayed_work *dwork, work_func_t fn)
{
	INIT_DEFERRABLE_WORK(dwork, fn);
}

bool wgrs_queue_power_efficient_delayed_work(struct delayed_work *dwork, unsigned long delay)
{
	return queue_delayed_work(system_power_efficient_wq, dwork, delay);
}

struct delayed_work *wgrs_to_delayed_work(struct work_struct *work) { return to_delayed_work(work); }

/* Serialises creation and destruction of kapi::global instances. */
static DEFINE_MUTEX(wgrs_global_mutex);
void wgrs_global_lock(void) { mutex_lock(&wgrs_global_mutex); }
void wgrs_global_unlock(void) { mutex_unlock(&wgrs_global_mutex); }

unsigned long wgrs_totalram_pages(void) { return totalram_pages(); }

int wgrs_register_pm_notifier(struct notifier_block *nb) { return register_pm_notifier(nb); }
int wgrs_unregister_pm_notifier(struct notifier_block *nb) { return unregister_pm_notifier(nb); }
int wgrs_register_vmfork_notifier(struct notifier_block *nb) { return register_random_vmfork_notifier(nb); }
int wgrs_unregister_vmfork_notifier(struct notifier_block *nb) { return unregister_random_vmfork_notifier(nb); }
bool wgrs_pm_autosleep(void)
{
	return IS_ENABLED(CONFIG_PM_AUTOSLEEP) || IS_ENABLED(CONFIG_PM_USERSPACE_AUTOSLEEP);
}

/* printk's own IPv6 forms: %pI6 (full, as wg_xmit prints) or %pI6c. */
int wgrs_format_ip6(char *buf, size_t len, const u8 *addr, bool compressed)
{
	return compressed ? snprintf(buf, len, "%pI6c", addr) : snprintf(buf, len, "%pI6", addr);
}

#pragma clang attribute pop
