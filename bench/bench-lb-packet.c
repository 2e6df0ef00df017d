// SPDX-License-Identifier: Apache-2.0
/* The last phase of `shoal bench lb`: the per-packet cost of the ingress
 * programs (tc, and XDP) through BPF_PROG_TEST_RUN, next to empty programs. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench/bench-lb-internal.h"
#include "lb/lb.h"
#include "lib/cleanup.h"

static uint16_t csum16(const void *p, size_t n)
{
	const uint16_t *w = p;
	uint32_t s = 0;
	for (; n > 1; n -= 2)
		s += *w++;
	if (n)
		s += *(const uint8_t *)w;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static size_t tcp_packet(uint8_t *buf, uint32_t saddr, uint32_t daddr, uint16_t sport,
			 uint16_t dport)
{
	memset(buf, 0, 128);
	struct ethhdr *eth = (struct ethhdr *)buf;
	memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x02", 6);
	eth->h_proto = htons(ETH_P_IP);
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(struct tcphdr) + 32);
	ip->saddr = saddr;
	ip->daddr = daddr;
	ip->check = csum16(ip, sizeof(*ip));
	struct tcphdr *th = (struct tcphdr *)(ip + 1);
	th->source = htons(sport);
	th->dest = htons(dport);
	th->seq = htonl(1);
	th->ack_seq = htonl(1);
	th->doff = 5;
	th->ack = 1;
	th->psh = 1;
	th->window = htons(65535);
	return sizeof(*eth) + sizeof(*ip) + sizeof(*th) + 32;
}

static int test_run(int fd, const uint8_t *pkt, size_t len, uint32_t flags, double *ret_ns)
{
	uint8_t out[256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1000000,
		    .flags = flags);
	if (bpf_prog_test_run_opts(fd, &o) < 0)
		return -errno;
	*ret_ns = (double)o.duration;
	return 0;
}

int bench_lb_packet_cost(struct lb *lb, uint32_t node_addr, uint16_t free_port, json_t *out,
			 struct shoal_err *err)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_OK},
		{.code = BPF_JMP | BPF_EXIT},
	};
	struct bpf_insn xdp_insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
		{.code = BPF_JMP | BPF_EXIT},
	};
	_cleanup_close_ int empty =
		bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "shoal_empty", "GPL", insns, 2, NULL);
	if (empty < 0)
		return shoal_err_errno(err, -empty, "loading an empty tc program");
	_cleanup_close_ int xdp_empty =
		bpf_prog_load(BPF_PROG_TYPE_XDP, "shoal_xdp_empty", "GPL", xdp_insns, 2, NULL);
	if (xdp_empty < 0)
		return shoal_err_errno(err, -xdp_empty, "loading an empty XDP program");
	int xdp_fd = lb_prog_fd(lb, LB_HOOK_XDP);
	double xdp_hit = 0, xdp_miss = 0, xdp_none = 0;
	uint8_t pkt[128];
	uint32_t client = htonl(0xc0a86401); /* never sent: BPF_PROG_TEST_RUN only */
	/* A hit on every run: the repeats run on one buffer, which the first
	 * run rewrites, so the packet must still be a hit once rewritten. Two
	 * published ports send to each other: node:pa -> far:pb, then
	 * far:pb -> node:pa, ... Each run is an established flow of a published
	 * port, DNATed in address and port, with the filler loaded. */
	uint16_t pa = free_port, pb = (uint16_t)(pa + 1);
	struct lb_service_key ka = {.port = pa, .proto = IPPROTO_TCP};
	struct lb_service_key kb = {.port = pb, .proto = IPPROTO_TCP};
	struct lb_backend_spec ba = {htonl(0x0afeffff), pb, LB_BACKEND_ACTIVE}; /* 10.254.255.255 */
	struct lb_backend_spec bb = {node_addr, pa, LB_BACKEND_ACTIVE};
	double hit = 0, hit_complete = -1, miss = 0, none = 0;
	int fd = lb_prog_fd(lb, LB_HOOK_INGRESS);
	if (lb_service_upsert(lb, &ka, &ba, 1, err) < 0 ||
	    lb_service_upsert(lb, &kb, &bb, 1, err) < 0) {
		lb_service_delete(lb, &ka, NULL);
		return shoal_err_wrap(err, "programming the per-packet services");
	}
	size_t len = tcp_packet(pkt, client, node_addr, 43210, pa);
	int r = test_run(fd, pkt, len, 0, &hit);
	/* The same hit on a CHECKSUM_COMPLETE skb, as from a NIC that sums
	 * what it receives (test runs are CHECKSUM_NONE otherwise): the L4
	 * checksum is then fixed in place. Kernels before 6.11 lack the flag. */
	if (r >= 0 && test_run(fd, pkt, len, BPF_F_TEST_SKB_CHECKSUM_COMPLETE, &hit_complete) < 0)
		hit_complete = -1;
	/* The same flows through the XDP program: its metadata is written by
	 * the first run and found again by the others. */
	if (r >= 0 && xdp_fd >= 0) {
		len = tcp_packet(pkt, client, node_addr, 43210, pa);
		r = test_run(xdp_fd, pkt, len, 0, &xdp_hit);
	}
	lb_service_delete(lb, &ka, NULL);
	lb_service_delete(lb, &kb, NULL);
	if (r >= 0) {
		len = tcp_packet(pkt, client, node_addr, 43210, 9);
		r = test_run(fd, pkt, len, 0, &miss);
	}
	if (r >= 0)
		r = test_run(empty, pkt, len, 0, &none);
	if (r >= 0 && xdp_fd >= 0)
		r = test_run(xdp_fd, pkt, len, 0, &xdp_miss);
	if (r >= 0 && xdp_fd >= 0)
		r = test_run(xdp_empty, pkt, len, 0, &xdp_none);
	if (r < 0)
		return shoal_err_errno(err, -r, "BPF_PROG_TEST_RUN");
	json_t *pn = json_pack("{s:f, s:f, s:f, s:I}", "hit", hit, "miss", miss, "empty_program",
			       none, "repeat", (json_int_t)1000000);
	if (hit_complete >= 0)
		json_object_set_new(pn, "hit_checksum_complete", json_real(hit_complete));
	if (xdp_fd >= 0)
		json_object_set_new(pn, "xdp",
				    json_pack("{s:f, s:f, s:f}", "hit", xdp_hit, "miss", xdp_miss,
					      "empty_program", xdp_none));
	else
		json_object_set_new(
			pn, "xdp",
			json_pack("{s:s}", "unavailable", lb_feature(lb, LB_FEAT_XDP)->reason));
	json_object_set_new(out, "packet_ns", pn);
	return 0;
}
