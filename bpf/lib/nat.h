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

/* RFC 1624 incremental update of a ones-complement checksum for one 32-bit
 * field: HC' = ~(~HC + ~m + m'). Byte order does not matter as long as the
 * checksum and the field are both taken as they sit in the packet. */
static __always_inline __sum16 lb_csum_replace4(__sum16 check, __be32 from, __be32 to)
{
	__u64 s = (__u16)~check;

	s += (~from & 0xffff) + (~from >> 16) + (to & 0xffff) + (to >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__sum16) ~(__u16)s;
}

/* The helper-only path, for headers outside the skb's linear part. */
static __always_inline int lb_rewrite4_slow(struct __sk_buff *skb, const struct lb_pkt *p, bool dst,
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

/* Rewrites one address and one port of the packet (dst for DNAT, src for
 * reverse NAT) and fixes the IP checksum and the L4 checksum, pseudo-header
 * included. The header fields and the IP checksum are written in place; the
 * L4 checksum goes through bpf_l4_csum_replace(), which alone knows how the
 * skb carries it (CHECKSUM_PARTIAL holds only the pseudo-header sum, which a
 * port change must leave alone; CHECKSUM_COMPLETE has skb->csum to adjust).
 * A UDP checksum of 0 means "none" and stays 0 (BPF_F_MARK_MANGLED_0 also
 * turns a computed 0 into 0xffff). Returns 0 or LB_DROP_REWRITE. */
static __always_inline int lb_rewrite4(struct __sk_buff *skb, const struct lb_pkt *p, bool dst,
				       __be32 old_addr, __be32 new_addr, __be16 old_port,
				       __be16 new_port)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u64 l4_flags = p->udp ? BPF_F_MARK_MANGLED_0 : 0;
	struct iphdr *iph = data + ETH_HLEN;
	__be16 *ports = data + (p->l4_off & 0x7f); /* bound for the verifier */

	if ((void *)(iph + 1) > data_end || (void *)(ports + 2) > data_end)
		return lb_rewrite4_slow(skb, p, dst, old_addr, new_addr, old_port, new_port);
	if (old_addr != new_addr) {
		iph->check = lb_csum_replace4(iph->check, old_addr, new_addr);
		if (dst)
			iph->daddr = new_addr;
		else
			iph->saddr = new_addr;
	}
	if (old_port != new_port)
		ports[dst ? 1 : 0] = new_port;
	/* Last: the helpers invalidate the packet pointers above. */
	if (old_addr != new_addr &&
	    bpf_l4_csum_replace(skb, p->csum_off, old_addr, new_addr,
				l4_flags | BPF_F_PSEUDO_HDR | sizeof(new_addr)) < 0)
		return LB_DROP_REWRITE;
	if (old_port != new_port && bpf_l4_csum_replace(skb, p->csum_off, old_port, new_port,
							l4_flags | sizeof(new_port)) < 0)
		return LB_DROP_REWRITE;
	return 0;
}
