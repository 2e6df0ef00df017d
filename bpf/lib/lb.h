/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/fwd.h"
#include "bpf/lib/jhash.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/nat.h"
#include "bpf/lib/parse.h"

/* Maglev table entries per service; set by lb_open() before load. The
 * verifier reads it as a constant, which bounds the table index. */
const volatile __u32 lb_maglev_size = LB_MAGLEV_DEFAULT;

static __always_inline void lb_stats_add(void *map, __u32 id, __u32 len, bool new_flow)
{
	struct lb_stats *st = bpf_map_lookup_elem(map, &id);

	if (!st)
		return;
	st->packets++;
	st->bytes += len;
	if (new_flow)
		st->new_flows++;
}

/* The exact address first, then the published port (address 0); lb_ports
 * says which of the two lookups can hit, so most packets pay one (a port
 * without services, none). */
static __always_inline struct lb_svc *lb_svc_lookup(const struct lb_flow_key *k)
{
	struct lb_svc_key sk = {.addr = k->daddr, .port = k->dport, .proto = k->proto};
	__u32 idx = LB_PORT_INDEX(k->proto, k->dport), kinds;
	struct lb_svc *svc;
	__u32 *v;

	v = bpf_map_lookup_elem(&lb_ports, &idx);
	if (!v)
		return NULL;
	kinds = *v;
	if (kinds >> LB_PORT_VIPS_SHIFT) {
		svc = bpf_map_lookup_elem(&lb_services, &sk);
		if (svc)
			return svc;
	}
	if (!(kinds & LB_PORT_PUBLISHED))
		return NULL;
	sk.addr = 0;
	return bpf_map_lookup_elem(&lb_services, &sk);
}

/* The flow entry's service is still the one for this packet: an id handed
 * to another service since does not carry the flow along. */
static __always_inline bool lb_ct_svc_matches(const struct lb_ct_entry *ct,
					      const struct lb_flow_key *k)
{
	__u32 id = ct->svc_id;
	struct lb_svc_key *sk = bpf_map_lookup_elem(&lb_svc_keys, &id);

	return sk && sk->port == k->dport && sk->proto == k->proto &&
	       (sk->addr == 0 || sk->addr == k->daddr);
}

/* A backend an existing flow may keep: still this service's, and active or
 * draining. Maintenance, removal or reuse by another service re-picks. */
static __always_inline struct lb_backend *lb_backend_for_flow(__u32 id, __u32 svc_id)
{
	struct lb_backend *be = bpf_map_lookup_elem(&lb_backends, &id);

	if (!be || be->svc_id != svc_id)
		return NULL;
	if (be->state != LB_BACKEND_ACTIVE && be->state != LB_BACKEND_DRAINING)
		return NULL;
	return be;
}

/* New flow: hash the 5-tuple into the service's Maglev table. Only active
 * backends are in the table. */
static __always_inline int lb_maglev_pick(const struct lb_svc *svc, const struct lb_flow_key *k,
					  __u32 *ret_id)
{
	__u32 svc_id = svc->id, slot, id;
	struct lb_backend *be;
	__u32 *table;

	if (svc->active == 0)
		return LB_DROP_NO_BACKEND;
	table = bpf_map_lookup_elem(&lb_maglev, &svc_id);
	if (!table)
		return LB_DROP_NO_TABLE;

	slot = lb_jhash_3words(k->saddr, k->daddr,
			       ((__u32)k->sport << 16 | k->dport) ^ ((__u32)k->proto << 8), 0);
	slot %= lb_maglev_size;
	/* Redundant for the CPU; tells the verifier the index is in bounds. */
	if (slot >= lb_maglev_size)
		return LB_DROP_NO_TABLE;
	id = table[slot];
	be = bpf_map_lookup_elem(&lb_backends, &id);
	if (id == 0 || !be || be->svc_id != svc_id || be->state != LB_BACKEND_ACTIVE)
		return LB_DROP_BACKEND_INVALID;
	*ret_id = id;
	return 0;
}

/* TCP close tracking on a flow's entry, for a packet from the client
 * (ingress) or the backend (egress). Returns true when this packet closed
 * the flow. Two FINs crossing on two CPUs may each miss the other's mark:
 * the flow then stays open, as it would without this tracking. */
static __always_inline bool lb_ct_close_track(struct lb_ct_entry *ct, __u8 tcp_flags,
					      bool from_client, __u64 now)
{
	if (ct->closed_ns)
		return false;
	if (!(tcp_flags & LB_TCP_RST)) {
		if (!(tcp_flags & LB_TCP_FIN))
			return false;
		if (from_client)
			ct->fin_client = 1;
		else
			ct->fin_backend = 1;
		if (!ct->fin_client || !ct->fin_backend)
			return false;
	}
	ct->closed_ns = now;
	return true;
}

/* A closed flow's reverse entry says so, for tc egress. */
static __always_inline void lb_rnat_mark_closed(const struct lb_flow_key *rk)
{
	struct lb_rnat_entry *rn = bpf_map_lookup_elem(&lb_rnat, rk);

	if (rn)
		rn->flags |= LB_RNAT_CLOSED;
}

/* tc ingress on the uplink: service lookup, conntrack, Maglev, DNAT. The
 * kernel then routes the rewritten packet to the backend; its replies are
 * reverse-NATed by lb_egress4() when they leave through the same uplink.
 *
 * An established flow is found by its conntrack entry alone (the service
 * it belongs to is checked by id, in an array): one hash lookup. Its
 * service keeps it even if a service with the exact address appears later
 * on a published port's flow. The reverse entry, which lives in its own LRU and may be evicted
 * apart from the forward one, is checked (and restored) only when last_seen_ns is refreshed, at
 * most once per LB_CT_TOUCH_NS. The clock is the coarse one (a tick's resolution is plenty for
 * those intervals), and an established flow's packet reads it only once per
 * LB_CT_TOUCH_JIFFIES: jiffies is one load, the clock a helper call. */
static __always_inline int lb_ingress4(lb_ctx_t *skb)
{
	struct lb_pkt p = {};
	struct lb_svc *svc = NULL;
	struct lb_ct_entry *ct, nct = {};
	struct lb_backend *be = NULL;
	struct lb_flow_key rk = {};
	struct lb_rnat_entry rn = {};
	__u32 be_id = 0, svc_id = 0, closed = 0, idx, *kinds, jiffies;
	bool new_flow = false, touch = false;
	__u64 now;
	int ret;

	ret = lb_parse4(skb, &p);
	if (ret != LB_PARSE_OK)
		return ret;
	idx = LB_PORT_INDEX(p.key.proto, p.key.dport);
	kinds = bpf_map_lookup_elem(&lb_ports, &idx);
	if (!kinds || !*kinds)
		return 0;

	ct = bpf_map_lookup_elem(&lb_ct, &p.key);
	/* A SYN that finds a closed flow opens a new one: picked afresh, so a
	 * draining backend gets no new connection on a reused tuple. */
	if (ct && !(ct->closed_ns && (p.tcp_flags & (LB_TCP_SYN | LB_TCP_ACK)) == LB_TCP_SYN) &&
	    lb_ct_svc_matches(ct, &p.key)) {
		svc_id = ct->svc_id;
		be_id = ct->backend_id;
		be = lb_backend_for_flow(be_id, svc_id);
	}
	if (!be) {
		svc = lb_svc_lookup(&p.key);
		if (!svc)
			return 0;
		svc_id = svc->id;
	}
	/* From here on the packet is the load balancer's: DNATed or dropped. */
	if (lb_ctx_claim(skb))
		return 0;
	/* The rest of the datagram would reach the node unrewritten; dropping
	 * the first fragment fails it fast instead of half-delivering it. */
	if (p.first_frag)
		return LB_DROP_FRAGMENT;
	jiffies = (__u32)bpf_jiffies64();
	if (!be) {
		ret = lb_maglev_pick(svc, &p.key, &be_id);
		if (ret < 0)
			return ret;
		be = bpf_map_lookup_elem(&lb_backends, &be_id);
		if (!be)
			return LB_DROP_BACKEND_INVALID;
		nct.backend_id = be_id;
		nct.svc_id = svc_id;
		now = lb_now_ns();
		nct.created_ns = now;
		nct.last_seen_ns = now;
		nct.touch_jiffies = jiffies;
		if (bpf_map_update_elem(&lb_ct, &p.key, &nct, BPF_ANY) < 0)
			return LB_DROP_CT_UPDATE;
		new_flow = true;
	} else if (jiffies - ct->touch_jiffies >= LB_CT_TOUCH_JIFFIES) {
		ct->touch_jiffies = jiffies;
		now = lb_now_ns();
		if (now - ct->last_seen_ns > LB_CT_TOUCH_NS) {
			ct->last_seen_ns = now;
			closed = ct->closed_ns ? LB_RNAT_CLOSED : 0;
			touch = true;
		}
	}

	rk.saddr = be->addr;
	rk.daddr = p.key.saddr;
	rk.sport = be->port;
	rk.dport = p.key.sport;
	rk.proto = p.key.proto;
	if (new_flow || (touch && !bpf_map_lookup_elem(&lb_rnat, &rk))) {
		rn.addr = p.key.daddr;
		rn.port = p.key.dport;
		rn.flags = closed;
		rn.svc_id = svc_id;
		if (bpf_map_update_elem(&lb_rnat, &rk, &rn, BPF_ANY) < 0)
			return LB_DROP_CT_UPDATE;
	}
	if (p.tcp_flags & (LB_TCP_FIN | LB_TCP_RST)) {
		ct = bpf_map_lookup_elem(&lb_ct, &p.key);
		if (ct && lb_ct_close_track(ct, p.tcp_flags, true, lb_now_ns()))
			lb_rnat_mark_closed(&rk);
	}

	ret = lb_rewrite4(skb, &p, true, p.key.daddr, be->addr, p.key.dport, be->port);
	if (ret < 0)
		return ret;
	lb_stats_add(&lb_svc_stats, svc_id, p.len, new_flow);
	lb_stats_add(&lb_be_stats, be_id, p.len, new_flow);
	return lb_fwd4(skb, be_id, &rk);
}

/* The reverse entry a reply of a load-balanced flow is rewritten with, or
 * NULL. Close tracking for the backend's side happens here: a FIN or RST
 * from the backend is recorded on the flow's lb_ct entry; a closed flow's
 * replies are rewritten for LB_CT_CLOSE_GRACE_NS more, then its reverse
 * entry is deleted and the tuple's packets pass unchanged (a later
 * connection reusing it straight to the backend is not ours). */
static __always_inline struct lb_rnat_entry *lb_rnat_for_reply(const struct lb_pkt *p)
{
	struct lb_flow_key fk = {};
	struct lb_rnat_entry *rn;
	struct lb_ct_entry *ct;
	__u64 now;

	rn = bpf_map_lookup_elem(&lb_rnat, &p->key);
	if (!rn)
		return NULL;
	if (!(rn->flags & LB_RNAT_CLOSED) && !(p->tcp_flags & (LB_TCP_FIN | LB_TCP_RST)))
		return rn;
	fk.saddr = p->key.daddr;
	fk.daddr = rn->addr;
	fk.sport = p->key.dport;
	fk.dport = rn->port;
	fk.proto = p->key.proto;
	now = lb_now_ns();
	ct = bpf_map_lookup_elem(&lb_ct, &fk);
	if (ct && lb_ct_close_track(ct, p->tcp_flags, false, now))
		rn->flags |= LB_RNAT_CLOSED;
	if (!(rn->flags & LB_RNAT_CLOSED))
		return rn;
	/* Closed: without a flow entry there is no close time to go by. */
	if (ct && ct->closed_ns && now - ct->closed_ns <= LB_CT_CLOSE_GRACE_NS)
		return rn;
	bpf_map_delete_elem(&lb_rnat, &p->key);
	return NULL;
}

/* tc egress on the uplink: replies of load-balanced flows get the service
 * address and port back as their source. Fragments pass unchanged: a reply
 * that the node fragments cannot be rewritten consistently, which is why
 * services must not send datagrams over the path MTU. */
static __always_inline int lb_egress4(lb_ctx_t *skb)
{
	struct lb_pkt p = {};
	struct lb_rnat_entry *rn;
	int ret;

	ret = lb_parse4(skb, &p);
	if (ret != LB_PARSE_OK)
		return ret;
	if (p.first_frag)
		return 0;
	rn = lb_rnat_for_reply(&p);
	if (!rn)
		return 0;
	return lb_rewrite4(skb, &p, false, p.key.saddr, rn->addr, p.key.sport, rn->port);
}

/* Entry points end here: a negative code is a drop, counted once by reason. */
static __always_inline int lb_verdict(int ret)
{
	__u32 idx;
	__u64 *cnt;

	if (ret > 0)
		return ret; /* an action chosen already: lb_fwd4()'s redirect */
	if (ret == 0)
		return LB_ACT_PASS;
	idx = -ret;
	cnt = bpf_map_lookup_elem(&lb_drops, &idx);
	if (cnt)
		(*cnt)++;
	return LB_ACT_DROP;
}
