/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/parse.h"

#define LB_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define LB_IP_SRC_OFF  (ETH_HLEN + offsetof(struct iphdr, saddr))
#define LB_IP_DST_OFF  (ETH_HLEN + offsetof(struct iphdr, daddr))

/* Rewrites one address and one port of the packet (dst for DNAT, src for
 * reverse NAT) and fixes the IP checksum and the L4 checksum, pseudo-header
 * included. A UDP checksum of 0 means "none" and stays 0 (BPF_F_MARK_MANGLED_0
 * also turns a computed 0 into 0xffff). Returns 0 or LB_DROP_REWRITE. */
static __always_inline int lb_rewrite4(struct __sk_buff *skb, const struct lb_pkt *p, bool dst,
				       __be32 old_addr, __be32 new_addr, __be16 old_port,
				       __be16 new_port)
{
	__u64 l4_flags = p->udp ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 addr_off = dst ? LB_IP_DST_OFF : LB_IP_SRC_OFF;
	__u32 port_off = p->l4_off + (dst ? sizeof(__be16) : 0);

	if (old_addr != new_addr) {
		if (bpf_l4_csum_replace(skb, p->csum_off, old_addr, new_addr,
					l4_flags | BPF_F_PSEUDO_HDR | sizeof(new_addr)) < 0)
			return LB_DROP_REWRITE;
		if (bpf_l3_csum_replace(skb, LB_IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)) <
		    0)
			return LB_DROP_REWRITE;
		if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) < 0)
			return LB_DROP_REWRITE;
	}
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, p->csum_off, old_port, new_port,
					l4_flags | sizeof(new_port)) < 0)
			return LB_DROP_REWRITE;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) < 0)
			return LB_DROP_REWRITE;
	}
	return 0;
}
