/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Packets for the load balancer's BPF table tests: built from a spec that
 * can also make them malformed on purpose, and checked for valid IP and L4
 * checksums. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>

#include <cmocka.h>

#include "tests/bpf/bpf-test.h"

struct pkt_spec {
	uint8_t proto;
	const char *saddr, *daddr;
	uint32_t saddr_n, daddr_n; /* used when the string is NULL */
	uint16_t sport, dport;
	uint16_t payload;
	uint8_t ihl;	   /* 0: 5 */
	uint16_t frag_off; /* host order, flags included */
	bool udp_no_csum;
	uint16_t ethertype; /* 0: IPv4 */
	int tot_len_delta;  /* added to the IP total length */
	uint8_t version;    /* 0: 4 */
	int cut;	    /* bytes removed from the end of the frame */
	/* Newer kernels refuse to BPF_PROG_TEST_RUN an IPv4 frame shorter than
	 * an IP header (-EINVAL): the case then only checks that refusal. */
	bool kernel_may_refuse;
	uint8_t tcp_flags; /* byte 13 of the TCP header; 0: SYN */
};

static inline void build(const struct pkt_spec *s, struct pkt *p)
{
	struct ethhdr *eth = (struct ethhdr *)p->b;
	struct iphdr *ip = (struct iphdr *)(p->b + ETH_HLEN);
	uint8_t ihl = s->ihl ? s->ihl : 5;
	uint8_t *l4 = (uint8_t *)ip + ihl * 4;
	uint16_t l4len = (s->proto == IPPROTO_TCP   ? 20
			  : s->proto == IPPROTO_UDP ? 8
						    : 8) +
			 s->payload;

	memset(p, 0, sizeof(*p));
	memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	eth->h_proto = htons(s->ethertype ? s->ethertype : ETH_P_IP);
	ip->version = s->version ? s->version : 4;
	ip->ihl = ihl;
	ip->ttl = 64;
	ip->id = htons(0x1234);
	ip->protocol = s->proto;
	ip->frag_off = htons(s->frag_off);
	ip->saddr = s->saddr ? A(s->saddr) : s->saddr_n;
	ip->daddr = s->daddr ? A(s->daddr) : s->daddr_n;
	ip->tot_len = htons(ihl * 4 + l4len + s->tot_len_delta);
	for (int i = 20; i < ihl * 4; i++)
		((uint8_t *)ip)[i] = 1; /* NOP options */
	ip->check = 0;
	ip->check = htons(csum_fold(csum_add(0, ip, ihl * 4)));

	for (uint16_t i = 0; i < s->payload; i++)
		l4[l4len - s->payload + i] = (uint8_t)(i * 7 + 1);
	if (s->proto == IPPROTO_TCP) {
		struct tcphdr *th = (struct tcphdr *)l4;

		th->source = htons(s->sport);
		th->dest = htons(s->dport);
		th->seq = htonl(1000);
		th->doff = 5;
		if (s->tcp_flags)
			((uint8_t *)th)[13] = s->tcp_flags;
		else
			th->syn = 1;
		th->window = htons(65535);
		th->check = htons(csum_fold(csum_add(pseudo_sum(ip, l4len), l4, l4len)));
	} else if (s->proto == IPPROTO_UDP) {
		struct udphdr *uh = (struct udphdr *)l4;

		uh->source = htons(s->sport);
		uh->dest = htons(s->dport);
		uh->len = htons(l4len);
		if (!s->udp_no_csum) {
			uint16_t c = csum_fold(csum_add(pseudo_sum(ip, l4len), l4, l4len));

			uh->check = htons(c ? c : 0xffff);
		}
	} else {
		l4[0] = 8; /* ICMP echo request, checksum left alone */
	}
	p->len = ETH_HLEN + ihl * 4 + l4len - s->cut;
}

static inline uint16_t dport_of(struct pkt *p)
{
	return ntohs(((uint16_t *)l4_of(p))[1]);
}

static inline uint16_t sport_of(struct pkt *p)
{
	return ntohs(((uint16_t *)l4_of(p))[0]);
}

/* Both checksums of an output packet verify from scratch. */
static inline void assert_csums_valid(struct pkt *p)
{
	struct iphdr *ip = ip_of(p);
	uint16_t l4len = ntohs(ip->tot_len) - ip->ihl * 4;

	assert_int_equal(csum_fold(csum_add(0, ip, ip->ihl * 4)), 0);
	if (ip->protocol == IPPROTO_UDP && ((struct udphdr *)l4_of(p))->check == 0)
		return;
	assert_int_equal(csum_fold(csum_add(pseudo_sum(ip, l4len), l4_of(p), l4len)), 0);
}
