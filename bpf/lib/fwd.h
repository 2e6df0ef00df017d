/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/cfg.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/nat.h"
#include "bpf/lib/parse.h"

/* Host routing for backends that are containers on this node.
 *
 * Forward: after the DNAT, a backend found in lb_local_eps gets its frame
 * addressed to the container and is handed to the container's end of the
 * veth pair (bpf_redirect_peer): no routing, no netfilter, no bridge.
 *
 * Reply: the tc ingress program on the host end of the veth reverse-NATs a
 * packet of such a flow and sends it out of the uplink the client's packets
 * came in on, with the kernel resolving route and neighbour
 * (bpf_redirect_neigh). The uplink's tc egress then finds no lb_rnat entry
 * for the rewritten packet and leaves it alone.
 *
 * The two directions switch together: a flow's reply takes the fast path
 * only while lb_fwd_flows holds the uplink its forward packets last came in
 * on, which only the forward fast path writes. Netfilter then sees a flow
 * whole or not at all, never only its replies (which the bridge network's
 * masquerade rule would otherwise take for new outbound connections). The
 * kernel's route lookup is left to bpf_redirect_neigh() because
 * bpf_fib_lookup() is reserved to GPL programs. */

/* Backend address -> host-side veth and MACs of a container on this node.
 * Written by lb/ from the agent's containers; an address missing here is
 * routed by the kernel as before. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_LOCAL_EPS);
	__type(key, __be32);
	__type(value, struct lb_local_ep);
} lb_local_eps SEC(".maps");

/* Backend id -> the lb_local_eps entry of its address (ifindex 0: not a
 * local endpoint). lb/ keeps it in step with lb_local_eps, which stays the
 * registry: a backend's slot is written before the backend and cleared
 * after it, an endpoint's slots after the endpoint is set and before it is
 * deleted. The packet path, which has the backend id already, indexes an
 * array instead of hashing the address. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_local_ep);
} lb_be_eps SEC(".maps");

/* Reply flows (backend -> client) forwarded the fast way -> the uplink their
 * forward packets came in on. Sized like the conntrack; an evicted entry is
 * written again by the next forward packet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_fwd_flow);
} lb_fwd_flows SEC(".maps");

#define LB_IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))

#ifdef LB_XDP
/* XDP claims a packet before deciding on it (lb_ctx_claim()): the backend id
 * goes in the frame's metadata, and tc ingress on the same uplink, which
 * sees it, does the hand off to a local endpoint (lb_fwd4() below, with the
 * skb that XDP_PASS makes). Redirecting from XDP into the host-side veth
 * (bpf_redirect_map() on a DEVMAP) would need NAPI on the container's end of
 * the pair, which a veth only has with an XDP program or GRO enabled there:
 * without, ndo_xdp_xmit() drops the frame. */
static __always_inline int lb_fwd4(lb_ctx_t *ctx, __u32 be_id, const struct lb_flow_key *rk)
{
	struct lb_xdp_meta *meta = (void *)(long)ctx->data_meta;

	if ((void *)(meta + 1) > lb_ctx_data(ctx))
		return LB_DROP_REWRITE;
	meta->backend_id = be_id;
	return 0;
}

/* 0: the packet is ours, marked so in its metadata (the backend id follows
 * in lb_fwd4()); 1: the frame cannot carry metadata (a driver without
 * support for it): the packet is left to tc untouched. */
static __always_inline int lb_ctx_claim(lb_ctx_t *ctx)
{
	struct lb_xdp_meta *meta = (void *)(long)ctx->data_meta;

	/* A frame from the wire has no metadata. One that has ours already
	 * is the same buffer run again (BPF_PROG_TEST_RUN's repeats): the
	 * metadata area is at most 32 bytes and must not grow per run. */
	if ((void *)(meta + 1) <= lb_ctx_data(ctx) && meta->magic == LB_XDP_META_MAGIC)
		return 0;
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)) < 0)
		return 1;
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > lb_ctx_data(ctx))
		return 1;
	meta->magic = LB_XDP_META_MAGIC;
	meta->backend_id = 0;
	return 0;
}
#else
static __always_inline int lb_ctx_claim(lb_ctx_t *ctx)
{
	return 0;
}

/* From lb.h, which includes this file first: the reverse entry of a reply,
 * with the backend side's close tracking. Programs using lb_fwd_reply4()
 * include lb.h. */
static __always_inline struct lb_rnat_entry *lb_rnat_for_reply(const struct lb_pkt *p);

/* Forwarding is a router hop: the TTL goes down by one, the IP checksum with
 * it. A packet whose TTL runs out is left to the kernel (1), which answers
 * with ICMP time exceeded. Returns 0, 1 or LB_DROP_REWRITE. */
static __always_inline int lb_fwd_ttl_dec(struct __sk_buff *skb)
{
	union {
		__u8 b[2]; /* ttl, protocol */
		__be16 w;
	} old, new;

	if (bpf_skb_load_bytes(skb, LB_IP_TTL_OFF, &old, sizeof(old)) < 0)
		return LB_DROP_REWRITE;
	if (old.b[0] <= 1)
		return 1;
	new = old;
	new.b[0]--;
	if (bpf_l3_csum_replace(skb, LB_IP_CSUM_OFF, old.w, new.w, sizeof(new.w)) < 0)
		return LB_DROP_REWRITE;
	if (bpf_skb_store_bytes(skb, LB_IP_TTL_OFF, &new, sizeof(new), 0) < 0)
		return LB_DROP_REWRITE;
	return 0;
}

/* End of lb_ingress4(), after the DNAT to backend be_id. rk is the flow's
 * reply key. Returns 0 (the kernel routes the packet), TC_ACT_REDIRECT or a
 * drop. */
static __always_inline int lb_fwd4(struct __sk_buff *skb, __u32 be_id, const struct lb_flow_key *rk)
{
	struct lb_local_ep *ep = bpf_map_lookup_elem(&lb_be_eps, &be_id);
	struct lb_fwd_flow *ff, nff = {};
	__u8 macs[2 * ETH_ALEN];
	int ret;

	if (!lb_cfg_host_routing)
		return 0;
	if (!ep || !ep->ifindex)
		return 0;
	ret = lb_fwd_ttl_dec(skb);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	ff = bpf_map_lookup_elem(&lb_fwd_flows, rk);
	if (!ff || ff->ifindex != skb->ifindex) {
		nff.ifindex = skb->ifindex;
		if (bpf_map_update_elem(&lb_fwd_flows, rk, &nff, BPF_ANY) < 0)
			return LB_DROP_CT_UPDATE;
	}
	__builtin_memcpy(macs, ep->mac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, ep->host_mac, ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return LB_DROP_REWRITE;
	return bpf_redirect_peer(ep->ifindex, 0);
}

/* tc ingress on a local container's host-side veth: replies of flows whose
 * forward packets took lb_fwd4()'s redirect. Anything else passes untouched:
 * the container's own traffic, east-west, DNS, replies of flows the kernel
 * forwarded (the uplink's egress reverse-NATs those). */
static __always_inline int lb_fwd_reply4(struct __sk_buff *skb)
{
	struct lb_pkt p = {};
	struct lb_rnat_entry *rn;
	struct lb_fwd_flow *ff;
	__u32 ifindex;
	int ret;

	if (!lb_cfg_host_routing)
		return 0;
	if (lb_parse4(skb, &p) != LB_PARSE_OK || p.first_frag)
		return 0;
	ff = bpf_map_lookup_elem(&lb_fwd_flows, &p.key);
	if (!ff)
		return 0;
	rn = lb_rnat_for_reply(&p);
	if (!rn)
		return 0;
	ifindex = ff->ifindex;
	ret = lb_fwd_ttl_dec(skb);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	ret = lb_rewrite4(skb, &p, false, p.key.saddr, rn->addr, p.key.sport, rn->port);
	if (ret < 0)
		return ret;
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

/* tc ingress after the XDP program: the backend id of a packet it DNATed,
 * from the frame's metadata; 0 when XDP did not take the packet. */
static __always_inline __u32 lb_xdp_claimed(const struct __sk_buff *skb)
{
	struct lb_xdp_meta *meta = (void *)(long)skb->data_meta;

	if ((void *)(meta + 1) > (void *)(long)skb->data || meta->magic != LB_XDP_META_MAGIC)
		return 0;
	return meta->backend_id;
}

/* The rest of lb_ingress4() for a packet the XDP program DNATed to be_id:
 * the local endpoint hand off, with the flow's reply key read back from the
 * rewritten packet. */
static __always_inline int lb_fwd4_after_xdp(struct __sk_buff *skb, __u32 be_id)
{
	struct lb_flow_key rk = {};
	struct lb_pkt p = {};

	if (lb_parse4(skb, &p) != LB_PARSE_OK)
		return 0;
	rk.saddr = p.key.daddr;
	rk.daddr = p.key.saddr;
	rk.sport = p.key.dport;
	rk.dport = p.key.sport;
	rk.proto = p.key.proto;
	return lb_fwd4(skb, be_id, &rk);
}
#endif
