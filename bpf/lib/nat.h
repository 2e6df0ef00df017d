/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/csum.h"
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

/* The header writes of a rewrite, on headers already bounds-checked: the
 * address (dst or src) with the IP checksum by its delta da, and the port. */
static __always_inline void lb_rewrite4_fields(struct iphdr *iph, __be16 *ports, bool dst,
					       bool addr_moves, __be32 new_addr, __u16 da,
					       bool port_moves, __be16 new_port)
{
	if (addr_moves) {
		iph->check = lb_csum_field_update(iph->check, da);
		if (dst)
			iph->daddr = new_addr;
		else
			iph->saddr = new_addr;
	}
	if (port_moves)
		ports[dst ? 1 : 0] = new_port;
}

#ifndef LB_XDP
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
 * included, writing the headers in place.
 *
 * How the L4 checksum is fixed depends on how the skb carries it, which the
 * program cannot read (skb->ip_summed is reachable only through a kfunc, and
 * the verifier refuses kfuncs to programs that are not GPL):
 * - CHECKSUM_COMPLETE: skb->csum, the sum of the packet the device saw, must
 *   follow the rewrite. bpf_csum_update() adjusts it and fails on any other
 *   kind of skb, so it is the probe too: then the field is updated in place.
 * - otherwise (CHECKSUM_NONE and _UNNECESSARY: the field is the complete
 *   checksum; CHECKSUM_PARTIAL: it holds only the pseudo-header sum, which a
 *   port change must leave alone) one bpf_l4_csum_replace() call, which
 *   alone knows, after the field was prepared for both readings
 *   (lb_csum_split()).
 * A UDP checksum of 0 means "none" and stays 0; a computed 0 is written as
 * 0xffff (BPF_F_MARK_MANGLED_0 in the helper). Returns 0 or LB_DROP_REWRITE. */
static __always_inline int lb_rewrite4(struct __sk_buff *skb, const struct lb_pkt *p, bool dst,
				       __be32 old_addr, __be32 new_addr, __be16 old_port,
				       __be16 new_port)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u64 l4_flags = p->udp ? BPF_F_MARK_MANGLED_0 : 0;
	struct iphdr *iph = data + ETH_HLEN;
	/* The masks only show the verifier bounds it has: l4_off <= ETH_HLEN + 60. */
	__be16 *ports = data + (p->l4_off & 0x7f);
	__sum16 *l4_check = data + (p->csum_off & 0xff);
	__u16 da, dp, diff, check;

	if ((void *)(iph + 1) > data_end || (void *)(ports + 2) > data_end ||
	    (void *)(l4_check + 1) > data_end)
		return lb_rewrite4_slow(skb, p, dst, old_addr, new_addr, old_port, new_port);
	da = lb_csum_delta4(old_addr, new_addr);
	dp = lb_csum_delta2(old_port, new_port);
	check = *l4_check;
	lb_rewrite4_fields(iph, ports, dst, old_addr != new_addr, new_addr, da,
			   old_port != new_port, new_port);
	if (p->udp && check == 0) {
		/* No L4 checksum: of the packet's sum, only the port moved (the
		 * address and the IP checksum cancel out). */
		if (old_port != new_port)
			bpf_csum_update(skb, dp);
		return 0;
	}
	/* The packet's sum loses da: the L4 field drops da + dp, the port
	 * gains dp, the address and the IP checksum cancel out. */
	if (bpf_csum_update(skb, (__u16)~da) >= 0) {
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		l4_check = data + (p->csum_off & 0xff);
		if ((void *)(l4_check + 1) > data_end)
			return LB_DROP_REWRITE;
		check = lb_csum_field_update(check, lb_csum_add(da, dp));
		*l4_check = p->udp && check == 0 ? 0xffff : check;
		return 0;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	l4_check = data + (p->csum_off & 0xff);
	if ((void *)(l4_check + 1) > data_end)
		return LB_DROP_REWRITE;
	*l4_check = lb_csum_split(check, da, dp, &diff);
	if (bpf_l4_csum_replace(skb, p->csum_off, 0, diff, l4_flags | BPF_F_PSEUDO_HDR) < 0)
		return LB_DROP_REWRITE;
	return 0;
}
#else
/* XDP: the same rewrite, in place, the L4 checksum updated as a complete
 * one: HC' = ~(~HC + da + dp).
 *
 * Why the field is complete here: XDP runs on the frame as it came off the
 * wire, before any skb exists, and a frame on the wire carries the full
 * checksum its sender computed. Drivers that would report CHECKSUM_COMPLETE
 * (a sum of the frame as received, which the rewrite makes stale) stop doing
 * so while an XDP program is loaded (mlx5: MLX5E_RQ_STATE_NO_CSUM_COMPLETE)
 * or build the skb with CHECKSUM_NONE/UNNECESSARY, both of which a complete
 * field satisfies.
 * Where it does not hold: a frame a local sender hands to a veth (or tap)
 * with checksum offload on is an skb in CHECKSUM_PARTIAL, whose field holds
 * only the pseudo-header sum; native XDP on the receiving veth sees that
 * field and cannot tell (no ip_summed in xdp_md). The result stays correct
 * as long as the packet is delivered locally (a PARTIAL skb is taken as
 * verified by every receiver) and would be wrong only if the kernel then
 * sent it out of a device that fills the checksum in. The uplinks XDP is
 * meant for receive from the wire. */
static __always_inline int lb_rewrite4(lb_ctx_t *ctx, const struct lb_pkt *p, bool dst,
				       __be32 old_addr, __be32 new_addr, __be16 old_port,
				       __be16 new_port)
{
	void *data = lb_ctx_data(ctx);
	void *data_end = lb_ctx_data_end(ctx);
	struct iphdr *iph = data + ETH_HLEN;
	/* The masks only show the verifier bounds it has: l4_off <= ETH_HLEN + 60. */
	__be16 *ports = data + (p->l4_off & 0x7f);
	__sum16 *l4_check = data + (p->csum_off & 0xff);
	__u16 da, dp, check;

	/* lb_parse4() saw the whole L4 header inside the frame, which in XDP is
	 * linear: this only convinces the verifier. */
	if ((void *)(iph + 1) > data_end || (void *)(ports + 2) > data_end ||
	    (void *)(l4_check + 1) > data_end)
		return LB_DROP_REWRITE;
	da = lb_csum_delta4(old_addr, new_addr);
	dp = lb_csum_delta2(old_port, new_port);
	check = *l4_check;
	lb_rewrite4_fields(iph, ports, dst, old_addr != new_addr, new_addr, da,
			   old_port != new_port, new_port);
	if (p->udp && check == 0)
		return 0; /* no UDP checksum: stays none */
	check = lb_csum_field_update(check, lb_csum_add(da, dp));
	*l4_check = p->udp && check == 0 ? 0xffff : check;
	return 0;
}
#endif
