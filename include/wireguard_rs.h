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
#include <linux/ptr_ring.h>
#include <linux/workqueue.h>
#include <linux/percpu.h>
#include <linux/timer.h>
#include <linux/cpumask.h>
#include <linux/scatterlist.h>
#include <net/dst_cache.h>
#include <net/route.h>
#include <net/ip6_route.h>
#include <net/inet_common.h>
#include <linux/rhashtable.h>
#include <linux/siphash.h>
#include <linux/workqueue.h>
#include <linux/mm.h>
#include <linux/suspend.h>
#include <linux/notifier.h>
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
const unsigned int WGRS_MAX_SKB_FRAGS = MAX_SKB_FRAGS;
const unsigned int WGRS_SKB_CB_SIZE = sizeof_field(struct sk_buff, cb);
/* The sk_buff fields kapi::skb reads or links in place, several times per
 * packet (the struct is opaque to bindgen; shims.c checks their types). */
const unsigned int WGRS_SKB_NEXT_OFFSET = offsetof(struct sk_buff, next);
const unsigned int WGRS_SKB_PREV_OFFSET = offsetof(struct sk_buff, prev);
const unsigned int WGRS_SKB_CB_OFFSET = offsetof(struct sk_buff, cb);
const unsigned int WGRS_SKB_LEN_OFFSET = offsetof(struct sk_buff, len);
const unsigned int WGRS_SKB_DATA_LEN_OFFSET = offsetof(struct sk_buff, data_len);
const unsigned int WGRS_SKB_DATA_OFFSET = offsetof(struct sk_buff, data);
const int WGRS_WORK_CPU_UNBOUND = WORK_CPU_UNBOUND;
const gfp_t WGRS_GFP_KERNEL = GFP_KERNEL;
const unsigned int WGRS_WQ_CRYPT = WQ_CPU_INTENSIVE | WQ_MEM_RECLAIM | WQ_PERCPU;
const unsigned int WGRS_WQ_CPU_FREEZABLE = WQ_CPU_INTENSIVE | WQ_FREEZABLE | WQ_PERCPU;
const unsigned int WGRS_WQ_UNBOUND_FREEZABLE = WQ_UNBOUND | WQ_FREEZABLE;
const unsigned long WGRS_PAGE_SIZE = PAGE_SIZE;

/* What an OrderedQueue's stub has of an sk_buff: the two links. */
struct wgrs_skb_links {
	struct sk_buff *next, *prev;
};

/* The shims of include/shims.c, in its order. */
void *wgrs_netdev_priv(const struct net_device *dev);
void wgrs_dev_put(struct net_device *dev);
const char *wgrs_netdev_name(const struct net_device *dev);
int wgrs_netdev_ifindex(const struct net_device *dev);
bool wgrs_netif_running(const struct net_device *dev);
const struct rtnl_link_ops *wgrs_netdev_link_ops(const struct net_device *dev);
void wgrs_netdev_set_ops(struct net_device *dev, const struct net_device_ops *ops);
void wgrs_netdev_setup_l3_tunnel(struct net_device *dev, const struct device_type *type, netdev_features_t features);
void wgrs_netdev_set_mtu(struct net_device *dev, unsigned int mtu, unsigned int max_mtu);
void wgrs_netdev_set_room(struct net_device *dev, unsigned short headroom, unsigned short tailroom);
void wgrs_netdev_set_destructor(struct net_device *dev, void (*destructor)(struct net_device *));
bool wgrs_netdev_has_destructor(const struct net_device *dev);
bool wgrs_netdev_registered(const struct net_device *dev);
u32 wgrs_netdev_mtu(const struct net_device *dev);
void wgrs_netdev_count(struct net_device *dev, u32 stat, u64 n);
void wgrs_netdev_rx_add(struct net_device *dev, u32 len);
void wgrs_netdev_tunnel_inet_conf(struct net_device *dev);
struct net *wgrs_rtnl_newlink_link_net(struct rtnl_newlink_params *params);
void wgrs_list_init(struct list_head *list);
void wgrs_list_add(struct list_head *entry, struct list_head *head);
void wgrs_list_del(struct list_head *entry);
struct net *wgrs_skb_sock_net(const struct sk_buff *skb);
unsigned char *wgrs_skb_tail(struct sk_buff *skb, unsigned int *tailroom);
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
int wgrs_udp_tunnel_sock_create(struct net *net, int family, u16 port, int (*encap_rcv)(struct sock *sk, struct sk_buff *skb), void *user_data, struct sock **out);
void *wgrs_sk_user_data(struct sock *sk);
void wgrs_rcu_read_lock_bh(void);
void wgrs_rcu_read_unlock_bh(void);
int wgrs_udp_send4(struct sock *sk, struct sk_buff *skb, struct net_device *dev, u32 mark, u8 *saddr, int *src_if, const u8 *daddr, __be16 dport, u8 ds, struct dst_cache *cache);
int wgrs_udp_send6(struct sock *sk, struct sk_buff *skb, struct net_device *dev, u32 mark, u8 *saddr, const u8 *daddr, __be16 dport, u32 scope_id, u8 ds, struct dst_cache *cache);
u16 wgrs_sock_local_port(const struct sock *sk);
bool wgrs_ipv6_mod_enabled(void);
bool wgrs_net_ns_capable(struct net *net, int cap);
void wgrs_memzero_explicit(void *s, size_t count);
int wgrs_crypto_memneq(const void *a, const void *b, size_t size);
void wgrs_stack_burn(void);
bool wgrs_stack_residue(const u8 *needle, size_t len);
bool wgrs_refcount_inc_not_zero(refcount_t *r);
u32 wgrs_get_random_u32_below(u32 ceil);
struct task_struct *wgrs_kthread_run(int (*fn)(void *), void *data, const char *name);
void wgrs_rcu_reap_schedule(void);
void wgrs_rcu_reap_flush(void);
void wgrs_spin_lock_bh(spinlock_t *lock);
void wgrs_spin_unlock_bh(spinlock_t *lock);
bool wgrs_spin_trylock_bh(spinlock_t *lock);
u64 wgrs_ktime_get_coarse_boottime_ns(void);
u64 wgrs_jiffies(void);
struct sk_buff *wgrs_alloc_skb_with_data(size_t headroom, const u8 *data, size_t len);
bool wgrs_pskb_may_pull(struct sk_buff *skb, unsigned int len);
int wgrs_pskb_trim(struct sk_buff *skb, unsigned int len);
bool wgrs_skb_check_ip_protocol(struct sk_buff *skb);
int wgrs_skb_ip_addr(const struct sk_buff *skb, bool source, u8 *out);
bool wgrs_skb_is_gso(const struct sk_buff *skb);
u32 wgrs_skb_get_hash(struct sk_buff *skb);
int wgrs_dev_recursion_level(void);
struct sk_buff *wgrs_skb_gso_segment(struct sk_buff *skb, int *err);
struct sk_buff *wgrs_skb_share_check(struct sk_buff *skb);
u32 wgrs_skb_route_mtu(const struct sk_buff *skb, u32 dev_mtu);
void wgrs_skb_dst_drop(struct sk_buff *skb);
void wgrs_skb_icmp_unreachable(struct sk_buff *skb);
u8 wgrs_skb_ecn_encap(struct sk_buff *skb);
u8 wgrs_skb_outer_dsfield(struct sk_buff *skb);
void wgrs_skb_orphan(struct sk_buff *skb);
void wgrs_skb_reset(struct sk_buff *skb, bool encapsulating);
int wgrs_skb_prepare_seal(struct sk_buff *skb, u32 headroom, const u8 *header, u32 hlen, u32 padding, u32 taglen, struct scatterlist *sg, u32 max_sg);
int wgrs_skb_prepare_open(struct sk_buff *skb, u32 hlen, u32 taglen, struct scatterlist *sg, u32 max_sg);
bool wgrs_skb_trim_tail_keep_network(struct sk_buff *skb, u32 len);
int wgrs_skb_outer_endpoint(const struct sk_buff *skb, u8 *src, u16 *port, u8 *dst, int *ifindex);
int wgrs_skb_inner_ip(struct sk_buff *skb, u32 *len);
void wgrs_skb_prepare_delivery(struct sk_buff *skb, struct net_device *dev, u8 ds);
void wgrs_kfree_skb_list(struct sk_buff *skb);
int wgrs_ptr_ring_init(struct ptr_ring *ring, u32 size);
void wgrs_ptr_ring_cleanup(struct ptr_ring *ring);
int wgrs_ptr_ring_produce_bh(struct ptr_ring *ring, void *ptr);
void *wgrs_ptr_ring_consume_bh(struct ptr_ring *ring);
bool wgrs_ptr_ring_empty_bh(struct ptr_ring *ring);
struct workqueue_struct *wgrs_alloc_workqueue(const char *prefix, const char *name, u32 flags);
void wgrs_init_work(struct work_struct *work, work_func_t func);
void *wgrs_alloc_percpu_works(size_t size, size_t align);
void *wgrs_per_cpu_ptr(void *ptr, u32 cpu);
void wgrs_timer_setup(struct timer_list *timer, void (*func)(struct timer_list *));
bool wgrs_timer_pending(const struct timer_list *timer);
void wgrs_napi_add_enable(struct net_device *dev, struct napi_struct *napi, int (*poll)(struct napi_struct *, int));
void wgrs_napi_disable_del_unsynced(struct napi_struct *napi);
void wgrs_napi_gro_receive(struct napi_struct *napi, struct sk_buff *skb);
void wgrs_netdev_threaded_napi(struct net_device *dev);
u32 wgrs_nr_cpu_ids(void);
u32 wgrs_num_online_cpus(void);
bool wgrs_cpu_possible(u32 cpu);
bool wgrs_cpu_online(u32 cpu);
u32 wgrs_cpumask_next_online(int prev);
u32 wgrs_cpumask_nth_online(u64 id);
bool wgrs_skb_pull_udp_header(struct sk_buff *skb);
int wgrs_ptr_ring_produce_bh_try(struct ptr_ring *ring, void *ptr, bool contended);
void wgrs_ptr_ring_cleanup_skbs(struct ptr_ring *ring);
void wgrs_cond_resched(void);
u64 wgrs_netdev_net_cookie(const struct net_device *dev);
bool wgrs_rng_is_initialized(void);
void wgrs_blake2s_init(struct blake2s_ctx *ctx, size_t outlen);
void wgrs_blake2s_init_key(struct blake2s_ctx *ctx, size_t outlen, const void *key, size_t keylen);
int wgrs_rhashtable_init(struct rhashtable *ht, u16 key_len, u16 key_offset, u16 head_offset);
void *wgrs_rhashtable_lookup(struct rhashtable *ht, const void *key);
int wgrs_rhashtable_insert(struct rhashtable *ht, struct rhash_head *obj);
int wgrs_rhashtable_remove(struct rhashtable *ht, struct rhash_head *obj);
int wgrs_rhashtable_replace(struct rhashtable *ht, struct rhash_head *old, struct rhash_head *new);
unsigned int wgrs_rhashtable_nelems(struct rhashtable *ht);
void wgrs_init_deferrable_work(struct delayed_work *dwork, work_func_t fn);
bool wgrs_queue_power_efficient_delayed_work(struct delayed_work *dwork, unsigned long delay);
struct delayed_work *wgrs_to_delayed_work(struct work_struct *work);
void wgrs_global_lock(void);
void wgrs_global_unlock(void);
unsigned long wgrs_totalram_pages(void);
int wgrs_register_pm_notifier(struct notifier_block *nb);
int wgrs_unregister_pm_notifier(struct notifier_block *nb);
int wgrs_register_vmfork_notifier(struct notifier_block *nb);
int wgrs_unregister_vmfork_notifier(struct notifier_block *nb);
bool wgrs_pm_autosleep(void);
int wgrs_format_ip6(char *buf, size_t len, const u8 *addr, bool compressed);

#endif
