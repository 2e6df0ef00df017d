/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/parse.h"
#include "bpf/shared/lb_consts.h"
#include "bpf/shared/lb_structs.h"

/* The routing mesh's return path on the backend's node (see struct
 * lb_mesh_net). Two programs share these maps: one on the ingress of each
 * VXLAN device notes the mesh flows arriving from other nodes, one on the
 * host side of each overlay container's veth sends their replies back to
 * the node they came from, addressed to its gateway MAC and handed to the
 * VXLAN device, whose FDB knows that node's VTEP. Neither program drops
 * anything: a packet they cannot use goes on as it came. */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_MESH_NETS);
	__type(key, __u32);
	__type(value, struct lb_mesh_net);
} lb_mesh_nets SEC(".maps");

/* Sized like the conntrack; an evicted entry is written again by the flow's
 * next forward packet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_mesh_flow);
} lb_mesh_flows SEC(".maps");

/* How long an entry outlives its flow's close (the last ACKs), and a quiet
 * UDP flow; set by lb/ before the load. */
const volatile __u64 lb_mesh_close_grace_ns = 2000000000ULL;
const volatile __u64 lb_mesh_udp_idle_ns = 120000000000ULL;
#define LB_MESH_REFRESH_NS 1000000000ULL

/* Per reason, at index LB_MESH_STAT_*: flows noted, replies sent back. */
enum {
	LB_MESH_STAT_NOTED = 0,
	LB_MESH_STAT_RETURNED = 1,
	LB_MESH_STAT_MAX = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MESH_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lb_mesh_stats SEC(".maps");

static __always_inline void lb_mesh_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&lb_mesh_stats, &idx);

	if (c)
		(*c)++;
}

static __always_inline bool lb_mesh_mac_eq(const __u8 *a, const __u8 *b)
{
	__u8 d = 0;

#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/* tc ingress on a VXLAN device: a frame from another node whose IPv4 source
 * is outside the network's subnet is a mesh flow entering there; its reply
 * key is noted with the frame's source MAC (the entry node's gateway). The
 * entry is written only when it changes: the common packet does a lookup. */
static __always_inline int lb_mesh_note(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct lb_mesh_net *net = bpf_map_lookup_elem(&lb_mesh_nets, &ifindex);
	struct lb_mesh_flow *cur, nf = {};
	struct lb_flow_key rk = {};
	struct lb_pkt p = {};
	void *data, *data_end;
	__u64 now;
	bool syn;

	if (!net)
		return TC_ACT_UNSPEC;
	if (lb_parse4(skb, &p) != LB_PARSE_OK)
		return TC_ACT_UNSPEC;
	if ((p.key.saddr & net->mask) == net->addr)
		return TC_ACT_UNSPEC;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN > data_end)
		return TC_ACT_UNSPEC;
	rk.saddr = p.key.daddr;
	rk.daddr = p.key.saddr;
	rk.sport = p.key.dport;
	rk.dport = p.key.sport;
	rk.proto = p.key.proto;
	nf.ifindex = ifindex;
	__builtin_memcpy(nf.mac, ((struct ethhdr *)data)->h_source, ETH_ALEN);
	now = bpf_ktime_get_ns();
	nf.seen_ns = now;
	syn = p.tcp_flags & LB_TCP_SYN && !(p.tcp_flags & LB_TCP_ACK);
	cur = bpf_map_lookup_elem(&lb_mesh_flows, &rk);
	/* the same flow from the same entry node: only its end or its age
	 * changes (a closed one stays closed until a new SYN) */
	if (cur && cur->ifindex == nf.ifindex && lb_mesh_mac_eq(cur->mac, nf.mac) &&
	    !(syn && cur->closed_ns)) {
		if (cur->closed_ns)
			return TC_ACT_UNSPEC;
		if (p.tcp_flags & LB_TCP_RST)
			cur->closed_ns = now;
		else if (now - cur->seen_ns > LB_MESH_REFRESH_NS)
			cur->seen_ns = now;
		return TC_ACT_UNSPEC;
	}
	if (p.tcp_flags & LB_TCP_RST)
		return TC_ACT_UNSPEC; /* nothing to note for a flow that ends */
	if (bpf_map_update_elem(&lb_mesh_flows, &rk, &nf, BPF_ANY) == 0)
		lb_mesh_count(LB_MESH_STAT_NOTED);
	return TC_ACT_UNSPEC;
}

/* tc ingress on an overlay container's host-side veth: the reply of a mesh
 * flow is addressed to the entry node's gateway MAC and sent out of the
 * VXLAN device; the entry node routes it to its uplink, where the load
 * balancer's egress program reverse-NATs it. Everything else continues to
 * the next filter (TC_ACT_UNSPEC). */
static __always_inline int lb_mesh_reply(struct __sk_buff *skb)
{
	struct lb_mesh_flow *mf;
	struct lb_pkt p = {};
	__u64 now;

	if (lb_parse4(skb, &p) != LB_PARSE_OK)
		return TC_ACT_UNSPEC;
	mf = bpf_map_lookup_elem(&lb_mesh_flows, &p.key);
	if (!mf)
		return TC_ACT_UNSPEC;
	now = bpf_ktime_get_ns();
	if ((mf->closed_ns && now - mf->closed_ns > lb_mesh_close_grace_ns) ||
	    (p.udp && now - mf->seen_ns > lb_mesh_udp_idle_ns)) {
		/* over: whatever uses these addresses now is not that flow */
		bpf_map_delete_elem(&lb_mesh_flows, &p.key);
		return TC_ACT_UNSPEC;
	}
	if (!mf->closed_ns && p.tcp_flags & (LB_TCP_FIN | LB_TCP_RST))
		mf->closed_ns = now;
	if (bpf_skb_store_bytes(skb, 0, mf->mac, ETH_ALEN, 0) < 0)
		return TC_ACT_UNSPEC;
	lb_mesh_count(LB_MESH_STAT_RETURNED);
	return bpf_redirect(mf->ifindex, 0);
}
