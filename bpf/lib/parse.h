/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/ctx.h"
#include "bpf/shared/lb_drop.h"
#include "bpf/shared/lb_structs.h"

#define LB_IP_MF     0x2000
#define LB_IP_OFFSET 0x1fff

/* What the programs need to know about an IPv4 TCP/UDP packet. */
struct lb_pkt {
	struct lb_flow_key key; /* as on the wire */
	__u32 l4_off;		/* from the start of the Ethernet header */
	__u32 csum_off;		/* L4 checksum, from the start of the packet */
	__u32 len;		/* frame length, for the byte counters */
	bool first_frag;	/* MF set, offset 0: ports present, rest elsewhere */
	bool udp;
	__u8 tcp_flags; /* byte 13 of the TCP header (LB_TCP_*); 0 for UDP */
};

#define LB_TCP_FIN 0x01
#define LB_TCP_SYN 0x02
#define LB_TCP_RST 0x04
#define LB_TCP_ACK 0x10

enum {
	LB_PARSE_PASS = 0, /* not IPv4 TCP/UDP, or a fragment without ports */
	LB_PARSE_OK = 1,
};

/* Reads the headers straight from the packet when the linear part of the
 * skb holds them (the common case: one load per field, no helper call), and
 * with bpf_skb_load_bytes() otherwise: it copes with non-linear skbs (GRO)
 * and with headers split across fragments. (XDP frames are linear: there the
 * fallback only tells a frame too short for the field.)
 *
 * Verdicts for what cannot be load balanced:
 * - shorter than an Ethernet header, or not IPv4 (IPv6, ARP, VLAN-tagged
 *   frames the NIC did not untag): pass, unchanged;
 * - IPv4 with version != 4, ihl < 5, a total length below the header length
 *   or above what the frame carries: LB_DROP_MALFORMED_L3 (ip_rcv() would
 *   drop it too). A total length of 0 is accepted on frames over 64 KiB
 *   (BIG TCP super-packets);
 * - IP options (ihl > 5) are fine: the L4 header is found after them;
 * - protocols other than TCP and UDP: pass;
 * - non-first fragments carry no ports: pass, unchanged (a datagram to a
 *   service that was fragmented has its first fragment dropped, below);
 * - a TCP header shorter than 20 bytes or a UDP header shorter than 8, within
 *   the frame or within the IP total length: LB_DROP_MALFORMED_L4. */
static __always_inline int lb_parse4(lb_ctx_t *ctx, struct lb_pkt *p)
{
	void *data = lb_ctx_data(ctx);
	void *data_end = lb_ctx_data_end(ctx);
	__u32 len = lb_ctx_len(ctx);
	struct iphdr iph;
	__u32 ihl_len, tot_len, avail, l4_need;
	__be16 ports[2];
	__u8 tcp_flags = 0, *l4;

	if (lb_ctx_protocol(ctx) != bpf_htons(ETH_P_IP))
		return LB_PARSE_PASS;
	if (len < ETH_HLEN)
		return LB_PARSE_PASS;
	if (data + ETH_HLEN + sizeof(iph) <= data_end)
		__builtin_memcpy(&iph, data + ETH_HLEN, sizeof(iph));
	else if (lb_ctx_load_bytes(ctx, ETH_HLEN, &iph, sizeof(iph)) < 0)
		return LB_DROP_MALFORMED_L3;
	if (iph.version != 4 || iph.ihl < 5)
		return LB_DROP_MALFORMED_L3;

	ihl_len = iph.ihl * 4;
	tot_len = bpf_ntohs(iph.tot_len);
	avail = len - ETH_HLEN;
	if (tot_len == 0 && avail > 0xffff)
		tot_len = avail;
	if (tot_len < ihl_len || tot_len > avail)
		return LB_DROP_MALFORMED_L3;

	if (iph.protocol != IPPROTO_TCP && iph.protocol != IPPROTO_UDP)
		return LB_PARSE_PASS;
	if (bpf_ntohs(iph.frag_off) & LB_IP_OFFSET)
		return LB_PARSE_PASS;

	p->udp = iph.protocol == IPPROTO_UDP;
	l4_need = p->udp ? sizeof(struct udphdr) : sizeof(struct tcphdr);
	p->l4_off = ETH_HLEN + ihl_len;
	if (tot_len < ihl_len + l4_need)
		return LB_DROP_MALFORMED_L4;
	/* The ports, and for TCP the flags byte (offset 13) that tells a
	 * flow's close. The mask only shows the verifier the bound it has:
	 * l4_off is at most ETH_HLEN + 60. */
	l4 = data + (p->l4_off & 0x7f);
	if ((void *)(l4 + 14) <= data_end) {
		__builtin_memcpy(ports, l4, sizeof(ports));
		tcp_flags = l4[13];
	} else {
		if (lb_ctx_load_bytes(ctx, p->l4_off, ports, sizeof(ports)) < 0)
			return LB_DROP_MALFORMED_L4;
		if (!p->udp && lb_ctx_load_bytes(ctx, p->l4_off + 13, &tcp_flags, 1) < 0)
			return LB_DROP_MALFORMED_L4;
	}

	p->first_frag = bpf_ntohs(iph.frag_off) & LB_IP_MF;
	p->csum_off = p->l4_off +
		      (p->udp ? offsetof(struct udphdr, check) : offsetof(struct tcphdr, check));
	p->len = len;
	p->tcp_flags = p->udp ? 0 : tcp_flags;
	p->key.saddr = iph.saddr;
	p->key.daddr = iph.daddr;
	p->key.sport = ports[0];
	p->key.dport = ports[1];
	p->key.proto = iph.protocol;
	return LB_PARSE_OK;
}
