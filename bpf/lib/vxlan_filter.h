/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* VXLAN accepted only from known VTEPs: the decision, for the tc entry. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/shared/vxlan_filter.h"

/* The VXLAN UDP port, host order; set by user space before load. */
const volatile __u16 vxf_port = 4789;

/* Allowed VTEP source address (network order) -> unused. Pinned: the set
 * survives an agent restart, so no VXLAN packet from a known node is lost
 * while the agent is away. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VXF_ALLOWED_MAX);
	__type(key, __u32);
	__type(value, __u8);
} vxf_allowed SEC(".maps");

/* Packets per outcome: [0] accepted, [-reason] dropped. Pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VXF_STATS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} vxf_stats SEC(".maps");

static __always_inline void vxf_count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&vxf_stats, &slot);

	if (c)
		*c += 1;
}

/* 1 = VXLAN from a known VTEP, 0 = not VXLAN (or nothing this filter can
 * judge), or a drop reason. Loads go through bpf_skb_load_bytes(): it copes
 * with headers outside the linear part. */
static __always_inline int vxf_judge(struct __sk_buff *skb)
{
	struct iphdr iph;
	struct udphdr udp;
	__u32 l4;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)) < 0)
		return 0;
	if (iph.version != 4 || iph.ihl < 5 || iph.protocol != IPPROTO_UDP)
		return 0;
	/* A later fragment carries no UDP header; without its first one,
	 * which is judged here, it is never reassembled. */
	if (iph.frag_off & bpf_htons(0x1fff))
		return 0;
	l4 = ETH_HLEN + iph.ihl * 4;
	if (bpf_skb_load_bytes(skb, l4, &udp, sizeof(udp)) < 0)
		return 0;
	if (udp.dest != bpf_htons(vxf_port))
		return 0;
	if (!bpf_map_lookup_elem(&vxf_allowed, &iph.saddr))
		return VXF_DROP_UNKNOWN_SOURCE;
	return 1;
}

/* TC_ACT_UNSPEC rather than TC_ACT_OK for what passes: the next filter on
 * the hook (the load balancer's) still runs. */
static __always_inline int vxf_verdict(int r)
{
	if (r < 0) {
		vxf_count((__u32)-r);
		return TC_ACT_SHOT;
	}
	if (r > 0)
		vxf_count(VXF_STAT_ACCEPTED);
	return TC_ACT_UNSPEC;
}
