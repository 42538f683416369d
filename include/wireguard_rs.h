/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of our bindgen step (see Kbuild): the kernel APIs the Rust
 * abstractions in src/kapi/ use, plus the wgrs_* shims in shims.c for what
 * the kernel only offers as static inlines or macros.
 */
#ifndef WIREGUARD_RS_H
#define WIREGUARD_RS_H

#include <linux/netdevice.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/capability.h>
#include <net/rtnetlink.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/net_namespace.h>
#include <net/ip_tunnels.h>
#include <net/sock.h>
#include <net/udp_tunnel.h>
#include <net/ipv6.h>
#include <net/addrconf.h>
#include <linux/inetdevice.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/random.h>
#include <linux/kthread.h>
#include <linux/timekeeping.h>
#include <linux/jiffies.h>
#include <linux/rhashtable.h>
#include <linux/siphash.h>
#include <linux/workqueue.h>
#include <linux/mm.h>
#include <crypto/blake2s.h>
#include <crypto/chacha20poly1305.h>
#include <crypto/curve25519.h>
#include <crypto/utils.h>
#include <uapi/linux/wireguard.h>

/* Macro constants that bindgen cannot evaluate. */
const netdev_features_t WGRS_NETIF_F_HW_CSUM = NETIF_F_HW_CSUM;
const netdev_features_t WGRS_NETIF_F_RXCSUM = NETIF_F_RXCSUM;
const netdev_features_t WGRS_NETIF_F_SG = NETIF_F_SG;
const netdev_features_t WGRS_NETIF_F_GSO = NETIF_F_GSO;
const netdev_features_t WGRS_NETIF_F_GSO_SOFTWARE = NETIF_F_GSO_SOFTWARE;
const netdev_features_t WGRS_NETIF_F_HIGHDMA = NETIF_F_HIGHDMA;
const unsigned int WGRS_L1_CACHE_BYTES = L1_CACHE_BYTES;
const int WGRS_NLA_HDRLEN = NLA_HDRLEN;
const unsigned int WGRS_NLM_F_MULTI = NLM_F_MULTI;
const unsigned long WGRS_HZ = HZ;
const unsigned long WGRS_PAGE_SIZE = PAGE_SIZE;

/* net_device */
void *wgrs_netdev_priv(const struct net_device *dev);
void wgrs_dev_put(struct net_device *dev);
const char *wgrs_netdev_name(const struct net_device *dev);
int wgrs_netdev_ifindex(const struct net_device *dev);
const struct rtnl_link_ops *wgrs_netdev_link_ops(const struct net_device *dev);
bool wgrs_netif_running(const struct net_device *dev);
void wgrs_netdev_set_ops(struct net_device *dev, const struct net_device_ops *ops);
void wgrs_netdev_setup_l3_tunnel(struct net_device *dev, const struct device_type *type,
				 netdev_features_t features);
void wgrs_netdev_set_mtu(struct net_device *dev, unsigned int mtu, unsigned int max_mtu);
void wgrs_netdev_set_room(struct net_device *dev, unsigned short headroom,
			  unsigned short tailroom);
void wgrs_netdev_set_destructor(struct net_device *dev, void (*destructor)(struct net_device *));
bool wgrs_netdev_has_destructor(const struct net_device *dev);
bool wgrs_netdev_registered(const struct net_device *dev);
void wgrs_netdev_tx_error(struct net_device *dev);
void wgrs_netdev_tunnel_inet_conf(struct net_device *dev);
struct net *wgrs_rtnl_newlink_link_net(struct rtnl_newlink_params *params);

/* lists */
void wgrs_list_init(struct list_head *list);
void wgrs_list_add(struct list_head *entry, struct list_head *head);
void wgrs_list_del(struct list_head *entry);

/* netlink messages */
struct net *wgrs_skb_sock_net(const struct sk_buff *skb);
struct nlattr *wgrs_nla_nest_start(struct sk_buff *skb, int type);
void wgrs_nla_nest_end(struct sk_buff *skb, struct nlattr *nest);
void wgrs_nla_nest_cancel(struct sk_buff *skb, struct nlattr *nest);
unsigned int wgrs_skb_len(const struct sk_buff *skb);
void wgrs_genlmsg_end(struct sk_buff *skb, void *hdr);
void wgrs_genlmsg_cancel(struct sk_buff *skb, void *hdr);
void wgrs_genl_dump_check_consistent(struct netlink_callback *cb, void *hdr);
const struct genl_info *wgrs_genl_info_dump(struct netlink_callback *cb);
u32 wgrs_netlink_cb_portid(const struct netlink_callback *cb);
u32 wgrs_netlink_cb_nlmsg_seq(const struct netlink_callback *cb);
struct net *wgrs_netlink_cb_net(const struct netlink_callback *cb);
void wgrs_netlink_cb_set_seq(struct netlink_callback *cb, unsigned int seq);
void **wgrs_netlink_cb_state(struct netlink_callback *cb);
struct nlattr **wgrs_genl_info_attrs(const struct genl_info *info);
struct net *wgrs_genl_info_net(const struct genl_info *info);
const struct genl_family *wgrs_genl_info_family(const struct genl_info *info);
u8 wgrs_genl_info_cmd(const struct genl_info *info);
void wgrs_kfree_skb(struct sk_buff *skb);

/* UDP tunnel sockets */
int wgrs_udp_tunnel_sock_create(struct net *net, int family, u16 port,
				int (*encap_rcv)(struct sock *sk, struct sk_buff *skb),
				struct sock **out);
u16 wgrs_sock_local_port(const struct sock *sk);
bool wgrs_ipv6_mod_enabled(void);

/* capabilities and secrets */
bool wgrs_net_ns_capable(struct net *net, int cap);
void wgrs_memzero_explicit(void *s, size_t count);
int wgrs_crypto_memneq(const void *a, const void *b, size_t size);

/* RCU, reference counts, randomness */
bool wgrs_refcount_inc_not_zero(refcount_t *r);
u32 wgrs_get_random_u32_below(u32 ceil);

/* the RcuArc reaper (kapi::rcu) */
void wgrs_rcu_reap_schedule(void);
void wgrs_rcu_reap_flush(void);

/* locks */
void wgrs_spin_lock_bh(spinlock_t *lock);
void wgrs_spin_unlock_bh(spinlock_t *lock);
bool wgrs_spin_trylock_bh(spinlock_t *lock);

/* time */
u64 wgrs_ktime_get_coarse_boottime_ns(void);
u64 wgrs_jiffies(void);

/* crypto */
void wgrs_blake2s_init(struct blake2s_ctx *ctx, size_t outlen);
void wgrs_blake2s_init_key(struct blake2s_ctx *ctx, size_t outlen, const void *key,
			   size_t keylen);

/* rhashtable */
int wgrs_rhashtable_init(struct rhashtable *ht, u16 key_len, u16 key_offset, u16 head_offset);
void *wgrs_rhashtable_lookup(struct rhashtable *ht, const void *key);
int wgrs_rhashtable_insert(struct rhashtable *ht, struct rhash_head *obj);
int wgrs_rhashtable_remove(struct rhashtable *ht, struct rhash_head *obj);
int wgrs_rhashtable_replace(struct rhashtable *ht, struct rhash_head *old, struct rhash_head *new);
unsigned int wgrs_rhashtable_nelems(struct rhashtable *ht);

/* work items, global state, memory */
void wgrs_init_deferrable_work(struct delayed_work *dwork, work_func_t fn);
bool wgrs_queue_power_efficient_delayed_work(struct delayed_work *dwork, unsigned long delay);
struct delayed_work *wgrs_to_delayed_work(struct work_struct *work);
void wgrs_global_lock(void);
void wgrs_global_unlock(void);
unsigned long wgrs_totalram_pages(void);

/* kernel threads */
struct task_struct *wgrs_kthread_run(int (*fn)(void *), void *data, const char *name);

#endif
