// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line wrappers for static inline kernel APIs and for net_device
 * fields whose layout (bitfields, struct groups) bindgen cannot express
 * safely. Each is a one-liner; the logic lives in Rust.
 */
#include "wireguard_rs.h"

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

void wgrs_netdev_tx_error(struct net_device *dev) { DEV_STATS_INC(dev, tx_errors); }

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
struct nlattr *wgrs_nla_nest_start(struct sk_buff *skb, int type) { return nla_nest_start(skb, type); }
void wgrs_nla_nest_end(struct sk_buff *skb, struct nlattr *nest) { nla_nest_end(skb, nest); }
void wgrs_nla_nest_cancel(struct sk_buff *skb, struct nlattr *nest) { nla_nest_cancel(skb, nest); }
unsigned int wgrs_skb_len(const struct sk_buff *skb) { return skb->len; }
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
 * sends from softirq), an unlimited send buffer, memalloc, v6only.
 */
int wgrs_udp_tunnel_sock_create(struct net *net, int family, u16 port,
				int (*encap_rcv)(struct sock *sk, struct sk_buff *skb),
				struct sock **out)
{
	struct udp_tunnel_sock_cfg tunnel = { .encap_type = 1, .encap_rcv = encap_rcv };
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

u16 wgrs_sock_local_port(const struct sock *sk) { return ntohs(inet_sk(sk)->inet_sport); }
bool wgrs_ipv6_mod_enabled(void) { return ipv6_mod_enabled(); }

bool wgrs_net_ns_capable(struct net *net, int cap) { return ns_capable(net->user_ns, cap); }
void wgrs_memzero_explicit(void *s, size_t count) { memzero_explicit(s, count); }
int wgrs_crypto_memneq(const void *a, const void *b, size_t size) { return crypto_memneq(a, b, size); }

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
