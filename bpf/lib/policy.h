/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Network policy enforcement: the lookup bpf/shared/policy.h describes
 * (ipcache -> identity, policy_eps -> live generation, policy_map, the
 * wildcard identity, miss = allow), behind a conntrack of its own so that a
 * flow is judged once per side and then decided by one hash lookup; the
 * verdict is kept with the flow until the endpoint's entries change (its
 * policy_eps value differs from the one the entry was taken under), when
 * the next packet judges it again. Counters and the flow log are written on
 * each judgement. */
#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/shared/lb_consts.h"
#include "bpf/shared/lb_structs.h"
#include "bpf/shared/policy.h"
#include "bpf/shared/policy_dp.h"

/* The flow log goes to a BPF ring buffer (Linux 5.8); off: a BPF queue
 * (Linux 4.20) that user space drains on a timer (lb-policy turns the ring
 * buffer map into a stub the kernel can create, so the program loads where
 * ring buffers are unknown). Not a perf event array: bpf_perf_event_output()
 * is reserved to GPL programs, and these are Apache-2.0. */
const volatile bool policy_cfg_ringbuf = true;
/* Flow events for allowed flows too (denied and audited ones always). */
const volatile bool policy_cfg_log_allowed = true;

/* Address/prefix -> identity (struct policy_ipcache_*). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_ipcache_key);
	__type(value, struct policy_ipcache_value);
} policy_ipcache SEC(".maps");

/* Endpoint slot -> its live generation (struct policy_ep_state). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, POLICY_EPS_MAX);
	__type(key, __u32);
	__type(value, struct policy_ep_state);
} policy_eps SEC(".maps");

/* The compiled entries, both generations (struct policy_key). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_MAP_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
} policy_map SEC(".maps");

/* Endpoint address -> slot, for the veth program. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_LOCAL_EPS_MAX);
	__type(key, __be32);
	__type(value, struct policy_local_ep);
} policy_local_eps SEC(".maps");

/* Host-side veth ifindex -> the endpoint behind it, for the veth program. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_LOCAL_EPS_MAX);
	__type(key, __u32);
	__type(value, struct policy_local_ep);
} policy_veth_eps SEC(".maps");

/* Endpoint cgroup (v2 id) -> slot, for the socket hooks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_LOCAL_EPS_MAX);
	__type(key, __u64);
	__type(value, struct policy_local_ep);
} policy_cgroup_eps SEC(".maps");

/* Flows -> verdict (struct policy_ct_*); per-CPU eviction lists, one table. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POLICY_CT_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct policy_ct_key);
	__type(value, struct policy_ct_entry);
} policy_ct SEC(".maps");

/* (policy, rule, verdict, side) -> judgements and packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, POLICY_COUNTERS_MAX);
	__type(key, struct policy_counter_key);
	__type(value, struct policy_counter);
} policy_counters SEC(".maps");

/* enum policy_stat -> count. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, POLICY_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} policy_stats SEC(".maps");

/* Flow log: a ring buffer ... */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, POLICY_FLOWLOG_RINGBUF_BYTES);
} policy_flowlog SEC(".maps");

/* ... or, without one, a queue of events (lb-policy shrinks it to one
 * entry when the ring buffer is used). */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, POLICY_FLOWLOG_QUEUE_LEN);
	__type(value, struct policy_flow_event);
} policy_flowlog_queue SEC(".maps");

/* The load balancer's reverse NAT map and service keys (lb-policy shares
 * them from its ingress program): a flow delivered to an endpoint whose
 * reply the load balancer would rewrite back to a published port came in
 * on that port. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_rnat_entry);
} lb_rnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct lb_svc_key);
} lb_svc_keys SEC(".maps");

/* A flow as one side judges it: the tuple of its first packet. */
struct policy_tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
};

static __always_inline void policy_stat_add(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&policy_stats, &idx);

	if (v)
		(*v)++;
}

static __always_inline void policy_count(__u32 policy, __u16 rule, __u8 verdict, __u8 dir,
					 bool judged)
{
	struct policy_counter_key k = {
		.policy = policy, .rule = rule, .verdict = verdict, .dir = dir};
	struct policy_counter *c = bpf_map_lookup_elem(&policy_counters, &k);
	struct policy_counter n = {.flows = judged ? 1 : 0, .packets = 1};

	if (c) {
		c->packets++;
		if (judged)
			c->flows++;
		return;
	}
	bpf_map_update_elem(&policy_counters, &k, &n, BPF_NOEXIST);
}

/* Identities the compiler gives published-port variants: clients from
 * outside the cluster. */
static __always_inline bool policy_id_external(__u32 id)
{
	return id == POLICY_ID_WORLD || id == POLICY_ID_NODE || id >= POLICY_ID_CIDR_BASE;
}

static __always_inline __u32 policy_identity(__be32 addr)
{
	struct policy_ipcache_key k = {.prefixlen = 32, .addr = addr};
	struct policy_ipcache_value *v = bpf_map_lookup_elem(&policy_ipcache, &k);

	return v ? v->identity : POLICY_ID_WORLD;
}

/* Steps 2-5 of bpf/shared/policy.h for one side; st is the endpoint's
 * policy_eps value (NULL: none). */
static __always_inline struct policy_value policy_lookup(const struct policy_ep_state *st, __u16 ep,
							 __u8 dir, __u32 identity, __u8 proto,
							 __be16 port)
{
	struct policy_value miss = {.verdict = POLICY_VERDICT_ALLOW, .rule = POLICY_RULE_NONE};
	struct policy_key k = {};
	struct policy_value *v;

	if (!st || !(st->flags & POLICY_EP_F_ACTIVE))
		return miss;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		proto = POLICY_PROTO_OTHER;
		port = 0;
	}
	k.prefixlen = POLICY_KEY_FULL_BITS;
	k.ep = ep;
	k.gen = st->gen;
	k.dir = dir;
	k.identity = identity;
	k.proto = proto;
	k.port = port;
	v = bpf_map_lookup_elem(&policy_map, &k);
	if (v)
		return *v;
	k.identity = POLICY_ID_ANY;
	v = bpf_map_lookup_elem(&policy_map, &k);
	return v ? *v : miss;
}

/* The load balancer will rewrite this flow's replies back to a published
 * port: it came in on one. */
static __always_inline bool policy_published(const struct policy_tuple *t)
{
	struct lb_flow_key rk = {
		.saddr = t->daddr,
		.daddr = t->saddr,
		.sport = t->dport,
		.dport = t->sport,
		.proto = t->proto,
	};
	struct lb_rnat_entry *rn = bpf_map_lookup_elem(&lb_rnat, &rk);
	struct lb_svc_key *sk;
	__u32 id;

	if (!rn)
		return false;
	id = rn->svc_id;
	sk = bpf_map_lookup_elem(&lb_svc_keys, &id);
	return sk && sk->addr == 0;
}

static __always_inline void policy_log(const struct policy_tuple *t, __u8 dir,
				       const struct policy_value *v, __u32 src_id, __u32 dst_id,
				       __u16 ep, __u8 flags)
{
	struct policy_flow_event e = {};
	long r;

	if (!policy_cfg_log_allowed && v->verdict == POLICY_VERDICT_ALLOW)
		return;
	e.ts_ns = bpf_ktime_get_ns();
	e.saddr = t->saddr;
	e.daddr = t->daddr;
	e.sport = t->sport;
	e.dport = t->dport;
	e.proto = t->proto;
	e.dir = dir;
	e.verdict = v->verdict;
	e.flags = flags;
	e.src_identity = src_id;
	e.dst_identity = dst_id;
	e.policy = v->policy;
	e.rule = v->rule;
	e.ep = ep;
	if (policy_cfg_ringbuf)
		r = bpf_ringbuf_output(&policy_flowlog, &e, sizeof(e), 0);
	else
		r = bpf_map_push_elem(&policy_flowlog_queue, &e, 0);
	if (r < 0)
		policy_stat_add(POLICY_STAT_LOG_LOST);
}

/* Judges flow t at endpoint me's side dir through the maps; counts and
 * logs the judgement. */
static __always_inline struct policy_value
policy_judge(const struct policy_tuple *t, __u8 dir, const struct policy_local_ep *me,
	     const struct policy_ep_state *st, bool published, __u8 ev_flags, bool log_allowed)
{
	__be32 peer = dir == POLICY_DIR_EGRESS ? t->daddr : t->saddr;
	__u32 id = policy_identity(peer);
	struct policy_value v;

	if (published && dir == POLICY_DIR_INGRESS && policy_id_external(id)) {
		id |= POLICY_ID_F_PUBLISHED;
		ev_flags |= POLICY_EV_F_PUBLISHED;
	}
	v = policy_lookup(st, me->ep, dir, id, t->proto, t->dport);
	policy_stat_add(POLICY_STAT_LOOKUP);
	policy_count(v.policy, v.rule, v.verdict, dir, true);
	if (!log_allowed && v.verdict == POLICY_VERDICT_ALLOW)
		return v;
	if (dir == POLICY_DIR_EGRESS)
		policy_log(t, dir, &v, me->identity, id, me->ep, ev_flags);
	else
		policy_log(t, dir, &v, id, me->identity, me->ep, ev_flags);
	return v;
}

static __always_inline void policy_ct_key_of(struct policy_ct_key *k, const struct policy_tuple *t,
					     __u8 dir, __u16 ep, bool reverse)
{
	k->saddr = reverse ? t->daddr : t->saddr;
	k->daddr = reverse ? t->saddr : t->daddr;
	k->sport = reverse ? t->dport : t->sport;
	k->dport = reverse ? t->sport : t->dport;
	k->proto = t->proto;
	k->dir = dir;
	k->ep = ep;
}

/* One packet p (as seen at the hook) on endpoint me's side dir: the
 * verdict, from the flow's entry or from a judgement. */
static __always_inline __u8 policy_enforce(const struct policy_tuple *p, __u8 dir,
					   const struct policy_local_ep *me)
{
	struct policy_ct_key ck = {}, rk = {};
	struct policy_ct_entry *ct, ne = {};
	struct policy_ep_state *st, snap = {};
	struct policy_tuple t;
	struct policy_value v;
	__u32 ep = me->ep;
	__u64 cur = 0;
	__u8 side = dir, flags = 0, ev = 0;
	bool published = false;

	/* One read of the endpoint's state: the judgement below uses the
	 * generation and flags of the value the entry is stamped with, not
	 * the live value again (a flip in between would stamp a verdict of
	 * the new entries with the old state). */
	st = bpf_map_lookup_elem(&policy_eps, &ep);
	if (st) {
		__builtin_memcpy(&snap, st, sizeof(snap));
		__builtin_memcpy(&cur, &snap, sizeof(cur));
		st = &snap;
	}
	policy_ct_key_of(&ck, p, dir, me->ep, false);
	ct = bpf_map_lookup_elem(&policy_ct, &ck);
	if (ct && ct->ep_state == cur) {
		policy_stat_add(POLICY_STAT_CT_HIT);
		side = ct->flags & POLICY_CT_F_REPLY ? dir ^ 1 : dir;
		policy_count(ct->policy, ct->rule, ct->verdict, side, false);
		return ct->verdict;
	}
	t = *p;
	if (ct) {
		/* The endpoint's entries changed: judge the flow again, as
		 * the side that first saw it. */
		policy_stat_add(POLICY_STAT_CT_STALE);
		ev = POLICY_EV_F_REJUDGED;
		if (ct->flags & POLICY_CT_F_REPLY) {
			side = dir ^ 1;
			t.saddr = p->daddr;
			t.daddr = p->saddr;
			t.sport = p->dport;
			t.dport = p->sport;
		}
	}
	if (side == POLICY_DIR_INGRESS)
		published = policy_published(&t);
	v = policy_judge(&t, side, me, st, published, ev, true);
	if (published)
		flags |= POLICY_CT_F_PUBLISHED;
	ne.verdict = v.verdict;
	ne.rule = v.rule;
	ne.policy = v.policy;
	ne.ep_state = cur;
	ne.flags = flags;
	policy_ct_key_of(&ck, &t, side, me->ep, false);
	bpf_map_update_elem(&policy_ct, &ck, &ne, BPF_ANY);
	if (v.verdict != POLICY_VERDICT_DENY) {
		ne.flags = flags | POLICY_CT_F_REPLY;
		policy_ct_key_of(&rk, &t, side ^ 1, me->ep, true);
		bpf_map_update_elem(&policy_ct, &rk, &ne, BPF_ANY);
	}
	return v.verdict;
}

/* The IPv4 header fields and ports enforcement needs. Not IPv4, cut
 * short, or a non-first fragment (no ports): 0, and the packet is left to
 * the kernel. Other protocols than TCP and UDP have ports 0. */
static __always_inline int policy_parse4(struct __sk_buff *skb, struct policy_tuple *t)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr iph;
	__be16 ports[2] = {};
	__u32 l4;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (data + ETH_HLEN + sizeof(iph) <= data_end)
		__builtin_memcpy(&iph, data + ETH_HLEN, sizeof(iph));
	else if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)) < 0)
		return 0;
	if (iph.version != 4 || iph.ihl < 5)
		return 0;
	if (iph.protocol == IPPROTO_TCP || iph.protocol == IPPROTO_UDP) {
		if (bpf_ntohs(iph.frag_off) & 0x1fff)
			return 0;
		l4 = ETH_HLEN + ((__u32)iph.ihl & 0xf) * 4;
		if (data + l4 + sizeof(ports) <= data_end)
			__builtin_memcpy(ports, data + l4, sizeof(ports));
		else if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
			return 0;
	}
	t->saddr = iph.saddr;
	t->daddr = iph.daddr;
	t->sport = ports[0];
	t->dport = ports[1];
	t->proto = iph.protocol;
	return 1;
}

/* tc verdicts: a passed packet goes on to the next filter on the hook (the
 * load balancer's reply program), or on its way when there is none. */
static __always_inline int policy_tc_verdict(__u8 verdict)
{
	if (verdict == POLICY_VERDICT_DENY) {
		policy_stat_add(POLICY_STAT_DROP);
		return TC_ACT_SHOT;
	}
	if (verdict == POLICY_VERDICT_AUDIT)
		policy_stat_add(POLICY_STAT_AUDIT);
	return TC_ACT_UNSPEC;
}

/* Host side of a container's veth, tc ingress: packets leaving the
 * container, judged as its egress. */
static __always_inline int policy_from_ep4(struct __sk_buff *skb)
{
	struct policy_local_ep *me;
	struct policy_tuple t = {};

	__u32 ifindex = skb->ifindex;

	if (!policy_parse4(skb, &t))
		return TC_ACT_UNSPEC;
	me = bpf_map_lookup_elem(&policy_veth_eps, &ifindex);
	if (me && me->addr != t.saddr) {
		/* Another address from this container: it would be judged as
		 * someone else, or as no one. */
		policy_stat_add(POLICY_STAT_SPOOF);
		return TC_ACT_SHOT;
	}
	if (!me)
		me = bpf_map_lookup_elem(&policy_local_eps, &t.saddr);
	if (!me) {
		policy_stat_add(POLICY_STAT_NO_EP);
		return TC_ACT_UNSPEC;
	}
	return policy_tc_verdict(policy_enforce(&t, POLICY_DIR_EGRESS, me));
}

/* Host side of a container's veth, tc egress: packets delivered to the
 * container, judged as its ingress. */
static __always_inline int policy_to_ep4(struct __sk_buff *skb)
{
	struct policy_local_ep *me;
	struct policy_tuple t = {};

	if (!policy_parse4(skb, &t))
		return TC_ACT_UNSPEC;
	me = bpf_map_lookup_elem(&policy_local_eps, &t.daddr);
	if (!me) {
		policy_stat_add(POLICY_STAT_NO_EP);
		return TC_ACT_UNSPEC;
	}
	return policy_tc_verdict(policy_enforce(&t, POLICY_DIR_INGRESS, me));
}

/* connect4/sendmsg4 after the socket load balancer chose the backend (its
 * programs run first on the cgroup): the connecting endpoint's egress
 * towards the address and port the socket now has. The same maps and the
 * same lookup as the veth program, so the two agree on every flow; no
 * conntrack entry is written here, the veth judges the flow's first packet
 * on its own.
 *
 * A socket with a local port may be answering a flow the conntrack already
 * knows: a UDP server's sendto() to the client whose datagram its ingress
 * allowed, or a connect() back to that client. The veth passes those
 * packets on the flow's reply entry, and so does this hook; judging them
 * as new egress would refuse every answer of an endpoint whose egress is
 * isolated. 1: go on; 0: EPERM. */
static __always_inline int policy_sock4(struct bpf_sock_addr *ctx, bool datagram)
{
	struct policy_local_ep *me;
	struct policy_ep_state *st, snap = {};
	struct policy_ct_entry *ct;
	struct policy_ct_key ck = {};
	struct policy_tuple t = {};
	struct policy_value v;
	struct bpf_sock *sk;
	__u64 cg, cur = 0;
	__u32 ep;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	cg = bpf_get_current_cgroup_id();
	me = bpf_map_lookup_elem(&policy_cgroup_eps, &cg);
	if (!me)
		return 1;
	ep = me->ep;
	/* one read, as in policy_enforce() */
	st = bpf_map_lookup_elem(&policy_eps, &ep);
	if (st) {
		__builtin_memcpy(&snap, st, sizeof(snap));
		__builtin_memcpy(&cur, &snap, sizeof(cur));
		st = &snap;
	}
	t.saddr = me->addr;
	t.daddr = ctx->user_ip4;
	t.dport = (__be16)ctx->user_port;
	t.proto = (__u8)ctx->protocol;
	sk = ctx->sk;
	if (sk && sk->src_port) {
		/* bpf_sock's src_port is in host order */
		t.sport = bpf_htons((__u16)sk->src_port);
		policy_ct_key_of(&ck, &t, POLICY_DIR_EGRESS, me->ep, false);
		ct = bpf_map_lookup_elem(&policy_ct, &ck);
		if (ct && ct->ep_state == cur) {
			if (ct->verdict != POLICY_VERDICT_DENY)
				return 1;
			policy_stat_add(POLICY_STAT_SOCK_DENY);
			return 0;
		}
		/* Judged under older entries, as the other side's flow: the
		 * veth judges it again as that side, on its next packet. */
		if (ct && (ct->flags & POLICY_CT_F_REPLY))
			return 1;
		t.sport = 0;
	}
	/* An unconnected socket's datagrams are judged one by one: only
	 * refusals and audits are logged, not every allowed datagram. */
	v = policy_judge(&t, POLICY_DIR_EGRESS, me, st, false, POLICY_EV_F_SOCKET, !datagram);
	if (v.verdict == POLICY_VERDICT_DENY) {
		policy_stat_add(POLICY_STAT_SOCK_DENY);
		return 0;
	}
	if (v.verdict == POLICY_VERDICT_AUDIT)
		policy_stat_add(POLICY_STAT_AUDIT);
	return 1;
}
