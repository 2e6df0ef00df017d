// SPDX-License-Identifier: Apache-2.0
/* The load balancer's tc programs, run on packets built here through
 * BPF_PROG_TEST_RUN: tables of (input, expected verdict, expected output),
 * then the stateful cases (flows, draining, reverse NAT, pin reuse) and one
 * end-to-end connection over loopback in a private network namespace.
 * Needs root; exits 77 when it cannot load BPF programs. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cmocka.h>

#include "lb/lb.h"
#include "tests/bpf/bpf-test.h"
#include "tests/bpf/lb-pkt.h"
#include "lib/cleanup.h"
#include "lib/util.h"

static char pin_dir[128];
static struct lb *lb;

/* BPF_PROG_TEST_RUN flags of every run: BPF_F_TEST_SKB_CHECKSUM_COMPLETE
 * gives the skb a CHECKSUM_COMPLETE skb->csum, which the kernel checks
 * against the output packet after the run (-EBADMSG when stale). */
static uint32_t run_flags;

/* The XDP program's metadata of the last XDP run (magic 0: none). */
static struct lb_xdp_meta last_meta;

/* XDP runs return the frame with the metadata the program left in front of
 * it; out gets the frame, last_meta the metadata. */
static int run_raw(enum lb_hook hook, const struct pkt *in, struct pkt *out, int *ret_verdict)
{
	uint8_t buf[sizeof(out->b) + 64];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = in->len,
		    .data_out = buf, .data_size_out = sizeof(buf), .repeat = 1,
		    .flags = hook == LB_HOOK_XDP ? 0 : run_flags);
	uint32_t meta_len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&last_meta, 0, sizeof(last_meta));
	r = bpf_prog_test_run_opts(lb_prog_fd(lb, hook), &o);
	if (r < 0)
		return r;
	if (hook == LB_HOOK_XDP && o.data_size_out > in->len) {
		meta_len = o.data_size_out - in->len;
		assert_int_equal(meta_len, sizeof(last_meta));
		memcpy(&last_meta, buf, sizeof(last_meta));
	}
	assert_true(o.data_size_out - meta_len <= sizeof(out->b));
	out->len = o.data_size_out - meta_len;
	memcpy(out->b, buf + meta_len, out->len);
	*ret_verdict = (int)o.retval;
	return 0;
}

/* The hook the ingress table runs through, and its verdicts. */
static enum lb_hook table_hook = LB_HOOK_INGRESS;

static int verdict_pass(enum lb_hook hook)
{
	return hook == LB_HOOK_XDP ? XDP_PASS : TC_ACT_OK;
}

static int verdict_drop(enum lb_hook hook)
{
	return hook == LB_HOOK_XDP ? XDP_DROP : TC_ACT_SHOT;
}

static int run(enum lb_hook hook, const struct pkt *in, struct pkt *out)
{
	int verdict = -1;

	assert_int_equal(run_raw(hook, in, out, &verdict), 0);
	return verdict;
}

static uint64_t drops_total(uint64_t d[LB_DROP_MAX + 1])
{
	uint64_t t = 0;

	for (int i = 1; i <= LB_DROP_MAX; i++)
		t += d[i];
	return t;
}

/* ---- services under test ---- */

static const struct lb_service_key svc_web = {.addr = 0, .port = 80, .proto = IPPROTO_TCP};
static const struct lb_service_key svc_dns = {.port = 53, .proto = IPPROTO_UDP};
static const struct lb_service_key svc_idle = {.port = 81, .proto = IPPROTO_TCP};
static const struct lb_service_key svc_one = {.port = 82, .proto = IPPROTO_TCP};

static void program_services(void)
{
	struct shoal_err err = {};
	struct lb_backend_spec web[3] = {
		{A("10.1.0.1"), 8080, LB_BACKEND_ACTIVE},
		{A("10.1.0.2"), 8080, LB_BACKEND_ACTIVE},
		{A("10.1.0.3"), 8080, LB_BACKEND_ACTIVE},
	};
	struct lb_backend_spec dns[1] = {{A("10.2.0.1"), 5353, LB_BACKEND_ACTIVE}};
	struct lb_backend_spec idle[1] = {{A("10.3.0.1"), 8081, LB_BACKEND_DRAINING}};
	struct lb_backend_spec one[1] = {{A("10.4.0.1"), 8082, LB_BACKEND_ACTIVE}};
	struct lb_service_key dns_vip = svc_dns;

	dns_vip.addr = A("192.0.2.10");
	assert_int_equal(lb_service_upsert(lb, &svc_web, web, 3, &err), 0);
	assert_int_equal(lb_service_upsert(lb, &dns_vip, dns, 1, &err), 0);
	assert_int_equal(lb_service_upsert(lb, &svc_idle, idle, 1, &err), 0);
	assert_int_equal(lb_service_upsert(lb, &svc_one, one, 1, &err), 0);
}

static int setup(void **state)
{
	struct shoal_err err = {};
	struct lb_open_opts o = {.maglev_size = 1009, .ct_size = 4096, .xdp = true};

	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/shoal-lbtest-%d", getpid());
	o.pin_dir = pin_dir;
	if (lb_open(&o, &lb, &err) < 0) {
		fprintf(stderr, "lb_open: %s\n", err.msg);
		return -1;
	}
	program_services();
	return 0;
}

static int teardown(void **state)
{
	lb = lb_close(lb);
	rm_rf(pin_dir);
	return 0;
}

/* ---- table: one packet in, one verdict and packet out ---- */

enum expect {
	EXPECT_PASS, /* TC_ACT_OK, packet unchanged */
	EXPECT_DNAT, /* TC_ACT_OK, destination = one of the backends */
	EXPECT_DROP, /* TC_ACT_SHOT, counted under reason */
};

struct table_case {
	const char *name;
	struct pkt_spec in;
	enum expect expect;
	int reason;
	const char *backends[3]; /* EXPECT_DNAT: allowed backend addresses */
	uint16_t backend_port;
};

static const struct table_case ingress_table[] = {
	{"tcp published port hit",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40000, .dport = 80, .payload = 32},
	 .expect = EXPECT_DNAT,
	 .backends = {"10.1.0.1", "10.1.0.2", "10.1.0.3"},
	 .backend_port = 8080},
	{"udp VIP hit",
	 {IPPROTO_UDP, "198.51.100.1", "192.0.2.10", .sport = 40001, .dport = 53, .payload = 29},
	 .expect = EXPECT_DNAT,
	 .backends = {"10.2.0.1"},
	 .backend_port = 5353},
	{"udp VIP hit without checksum",
	 {IPPROTO_UDP, "198.51.100.1", "192.0.2.10", .sport = 40002, .dport = 53, .payload = 12,
	  .udp_no_csum = true},
	 .expect = EXPECT_DNAT,
	 .backends = {"10.2.0.1"},
	 .backend_port = 5353},
	{"ip options, service hit",
	 {IPPROTO_TCP, "198.51.100.2", "203.0.113.5", .sport = 40003, .dport = 80, .payload = 5,
	  .ihl = 7},
	 .expect = EXPECT_DNAT,
	 .backends = {"10.1.0.1", "10.1.0.2", "10.1.0.3"},
	 .backend_port = 8080},
	{"udp VIP port on another address: miss",
	 {IPPROTO_UDP, "198.51.100.1", "192.0.2.11", .sport = 40004, .dport = 53, .payload = 8},
	 .expect = EXPECT_PASS},
	{"tcp other port: miss",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40005, .dport = 443, .payload = 8},
	 .expect = EXPECT_PASS},
	{"udp to a tcp service port: miss",
	 {IPPROTO_UDP, "198.51.100.1", "203.0.113.5", .sport = 40006, .dport = 80, .payload = 8},
	 .expect = EXPECT_PASS},
	{"icmp: pass",
	 {IPPROTO_ICMP, "198.51.100.1", "203.0.113.5", .payload = 8},
	 .expect = EXPECT_PASS},
	{"arp: pass",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 1, .dport = 80,
	  .ethertype = ETH_P_ARP},
	 .expect = EXPECT_PASS},
	{"ipv6 ethertype: pass",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 1, .dport = 80,
	  .ethertype = ETH_P_IPV6},
	 .expect = EXPECT_PASS},
	{"non-first fragment: pass",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40007, .dport = 80, .payload = 16,
	  .frag_off = 100},
	 .expect = EXPECT_PASS},
	{"first fragment to a service: drop",
	 {IPPROTO_UDP, "198.51.100.1", "192.0.2.10", .sport = 40008, .dport = 53, .payload = 16,
	  .frag_off = 0x2000},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_FRAGMENT},
	{"first fragment elsewhere: pass",
	 {IPPROTO_UDP, "198.51.100.1", "192.0.2.10", .sport = 40009, .dport = 54, .payload = 16,
	  .frag_off = 0x2000},
	 .expect = EXPECT_PASS},
	{"ihl 4: malformed",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40010, .dport = 80, .ihl = 4},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_MALFORMED_L3},
	{"version 6 in an IPv4 frame: malformed",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40011, .dport = 80, .version = 6},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_MALFORMED_L3},
	{"total length beyond the frame: malformed",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40012, .dport = 80, .payload = 8,
	  .tot_len_delta = 40},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_MALFORMED_L3},
	{"truncated ip header: malformed",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40013, .dport = 80, .cut = 21,
	  .kernel_may_refuse = true},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_MALFORMED_L3},
	{"tcp header cut in the frame: malformed",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40014, .dport = 80, .cut = 18,
	  .tot_len_delta = -18},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_MALFORMED_L4},
	{"tcp header beyond the total length: malformed",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40015, .dport = 80,
	  .tot_len_delta = -4},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_MALFORMED_L4},
	{"service without active backends: drop",
	 {IPPROTO_TCP, "198.51.100.1", "203.0.113.5", .sport = 40016, .dport = 81, .payload = 8},
	 .expect = EXPECT_DROP,
	 .reason = LB_DROP_NO_BACKEND},
};

static void test_ingress_table(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(ingress_table); i++) {
		const struct table_case *c = &ingress_table[i];
		uint64_t before[LB_DROP_MAX + 1], after[LB_DROP_MAX + 1];
		struct pkt in, out, want;
		int verdict = -1, r;

		print_message("  case: %s\n", c->name);
		build(&c->in, &in);
		assert_int_equal(lb_drops_read(lb, before), 0);
		r = run_raw(table_hook, &in, &out, &verdict);
		/* BPF_PROG_TEST_RUN builds no skb for a frame shorter than
		 * an IP header: this case runs through the XDP program only,
		 * which must take it. */
		if (r == -EINVAL && c->in.kernel_may_refuse && table_hook != LB_HOOK_XDP) {
			print_message("    SKIPPED for tc: the kernel runs no skb this short\n");
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(lb_drops_read(lb, after), 0);

		if (c->expect == EXPECT_DROP) {
			assert_int_equal(verdict, verdict_drop(table_hook));
			assert_int_equal(after[-c->reason] - before[-c->reason], 1);
			assert_int_equal(drops_total(after) - drops_total(before), 1);
			continue;
		}
		assert_int_equal(verdict, verdict_pass(table_hook));
		assert_int_equal(drops_total(after), drops_total(before));
		assert_int_equal(out.len, in.len);
		if (c->expect == EXPECT_PASS) {
			assert_memory_equal(out.b, in.b, in.len);
			/* Not the load balancer's: tc ingress looks it up itself. */
			assert_int_equal(last_meta.magic, 0);
			continue;
		}
		if (table_hook == LB_HOOK_XDP) {
			/* tc ingress is told which backend: the hand off to a
			 * local endpoint happens there. */
			assert_int_equal(last_meta.magic, LB_XDP_META_MAGIC);
			assert_true(last_meta.backend_id != 0);
		}
		/* DNAT: the output is exactly the input built for the backend. */
		bool known = false;
		struct pkt_spec ws = c->in;

		for (int b = 0; b < 3 && c->backends[b]; b++)
			known |= ip_of(&out)->daddr == A(c->backends[b]);
		assert_true(known);
		ws.daddr = NULL;
		ws.daddr_n = ip_of(&out)->daddr;
		ws.dport = c->backend_port;
		build(&ws, &want);
		assert_int_equal(out.len, want.len);
		assert_memory_equal(out.b, want.b, want.len);
		assert_csums_valid(&out);
	}
}

/* The same table through the XDP program: same verdicts (XDP_PASS and
 * XDP_DROP for TC_ACT_OK and TC_ACT_SHOT), drop reasons and output packets,
 * checksums valid. */
static int xdp_table_teardown(void **state)
{
	table_hook = LB_HOOK_INGRESS;
	return 0;
}

/* Whether the XDP program is there; if not, the fallback is checked
 * instead: the feature says why, and there is no XDP program to run. */
static bool xdp_or_fallback(void)
{
	const struct lb_feature_status *st = lb_feature(lb, LB_FEAT_XDP);

	if (st->state == LB_FEATURE_ON) {
		assert_true(lb_prog_fd(lb, LB_HOOK_XDP) >= 0);
		return true;
	}
	print_message("    XDP unavailable (%s): tc alone, checked instead\n", st->reason);
	assert_int_equal(st->state, LB_FEATURE_UNAVAILABLE);
	assert_true(st->reason[0] != '\0');
	assert_int_equal(lb_prog_fd(lb, LB_HOOK_XDP), -ENOENT);
	return false;
}

static void test_xdp_ingress_table(void **state)
{
	if (!xdp_or_fallback())
		return;
	table_hook = LB_HOOK_XDP;
	test_ingress_table(state);
	table_hook = LB_HOOK_INGRESS;
}

/* XDP and tc share the flows: a flow XDP opened keeps its backend through
 * tc and the other way round, and tc's egress reverse-NATs its replies. */
static void test_xdp_tc_share_flows(void **state)
{
	if (!xdp_or_fallback())
		return;
	for (int i = 0; i < 50; i++) {
		struct pkt_spec s = {IPPROTO_TCP,	 "198.51.100.40", "203.0.113.5",
				     .sport = 23000 + i, .dport = 80,	  .payload = 10};
		enum lb_hook first = i % 2 ? LB_HOOK_XDP : LB_HOOK_INGRESS;
		enum lb_hook second = i % 2 ? LB_HOOK_INGRESS : LB_HOOK_XDP;
		struct pkt in, a, b;

		build(&s, &in);
		assert_int_equal(run(first, &in, &a), verdict_pass(first));
		assert_int_equal(run(second, &in, &b), verdict_pass(second));
		assert_int_equal(dport_of(&a), 8080);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.b, b.b, a.len);
		assert_csums_valid(&b);
	}
}

/* The same tables with a CHECKSUM_COMPLETE skb: the L4 checksum is fixed in
 * place and skb->csum follows (the kernel fails the run otherwise); without
 * the flag (above) the skb is CHECKSUM_NONE and the field is prepared for
 * bpf_l4_csum_replace(). */
static void test_reverse_nat(void **state);

static int checksum_complete_teardown(void **state)
{
	run_flags = 0;
	return 0;
}

static void test_checksum_complete(void **state)
{
	struct pkt_spec probe = {IPPROTO_TCP, "198.51.100.1", "203.0.113.5",
				 .sport = 1,  .dport = 9,     .payload = 4};
	struct pkt in, out;
	int verdict;

	build(&probe, &in);
	run_flags = BPF_F_TEST_SKB_CHECKSUM_COMPLETE;
	assert_int_equal(run_raw(LB_HOOK_INGRESS, &in, &out, &verdict), 0);
	test_ingress_table(state);
	test_reverse_nat(state);
	run_flags = 0;
}

/* Sends one TCP packet of a flow; returns the backend address it went to. */
static uint32_t send_flow(const char *client, uint16_t sport, uint16_t dport)
{
	struct pkt_spec s = {IPPROTO_TCP,    client,	     "203.0.113.5",
			     .sport = sport, .dport = dport, .payload = 10};
	struct pkt in, out;

	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_int_equal(dport_of(&out), 8080);
	assert_csums_valid(&out);
	return ip_of(&out)->daddr;
}

static int backend_index(uint32_t addr)
{
	for (int i = 1; i <= 5; i++) {
		char s[16];

		snprintf(s, sizeof(s), "10.1.0.%d", i);
		if (A(s) == addr)
			return i;
	}
	fail_msg("packet went to an unknown backend");
	return -1;
}

static void test_maglev_spread_and_stable(void **state)
{
	int hits[6] = {};
	uint32_t first[200];

	for (int i = 0; i < 200; i++) {
		first[i] = send_flow("198.51.100.20", 20000 + i, 80);
		hits[backend_index(first[i])]++;
	}
	for (int b = 1; b <= 3; b++)
		assert_true(hits[b] >= 40);
	/* Same flows again: same backends. */
	for (int i = 0; i < 200; i++)
		assert_int_equal(send_flow("198.51.100.20", 20000 + i, 80), first[i]);
}

static void test_counters(void **state)
{
	struct lb_counters s0, s1, b0, b1;
	uint32_t be;
	struct pkt_spec s = {IPPROTO_TCP,    "198.51.100.21", "203.0.113.5",
			     .sport = 33333, .dport = 80,     .payload = 10};
	struct pkt in;

	build(&s, &in);
	assert_int_equal(lb_service_counters(lb, &svc_web, &s0), 0);
	be = send_flow("198.51.100.21", 33333, 80);
	assert_int_equal(lb_backend_counters(lb, &svc_web, be, 8080, &b0), 0);
	send_flow("198.51.100.21", 33333, 80);
	send_flow("198.51.100.21", 33333, 80);
	assert_int_equal(lb_service_counters(lb, &svc_web, &s1), 0);
	assert_int_equal(lb_backend_counters(lb, &svc_web, be, 8080, &b1), 0);
	assert_int_equal(s1.packets - s0.packets, 3);
	assert_int_equal(s1.new_flows - s0.new_flows, 1);
	assert_int_equal(s1.bytes - s0.bytes, 3 * in.len);
	assert_int_equal(b1.packets - b0.packets, 2);
	assert_int_equal(b1.new_flows, b0.new_flows);
}

static void test_flows_keep_backends_across_changes(void **state)
{
	struct shoal_err err = {};
	struct lb_backend_spec five[5] = {
		{A("10.1.0.1"), 8080, LB_BACKEND_ACTIVE}, {A("10.1.0.2"), 8080, LB_BACKEND_ACTIVE},
		{A("10.1.0.3"), 8080, LB_BACKEND_ACTIVE}, {A("10.1.0.4"), 8080, LB_BACKEND_ACTIVE},
		{A("10.1.0.5"), 8080, LB_BACKEND_ACTIVE},
	};
	uint32_t old[100];
	int newcomers = 0;

	for (int i = 0; i < 100; i++)
		old[i] = send_flow("198.51.100.30", 21000 + i, 80);
	assert_int_equal(lb_service_upsert(lb, &svc_web, five, 5, &err), 0);
	/* Existing flows stay where they were, */
	for (int i = 0; i < 100; i++)
		assert_int_equal(send_flow("198.51.100.30", 21000 + i, 80), old[i]);
	/* while new ones also reach the new backends. */
	for (int i = 0; i < 200; i++)
		newcomers += backend_index(send_flow("198.51.100.31", 22000 + i, 80)) >= 4;
	assert_true(newcomers >= 40);

	/* Back to three: flows of the removed backends move, the rest stay. */
	assert_int_equal(lb_service_upsert(lb, &svc_web, five, 3, &err), 0);
	for (int i = 0; i < 200; i++)
		assert_true(backend_index(send_flow("198.51.100.31", 22000 + i, 80)) <= 3);
	for (int i = 0; i < 100; i++)
		assert_int_equal(send_flow("198.51.100.30", 21000 + i, 80), old[i]);
}

static void test_drain_and_maintenance(void **state)
{
	struct shoal_err err = {};
	uint32_t drained = send_flow("198.51.100.40", 23000, 80);
	struct lb_counters c;

	assert_int_equal(
		lb_backend_set_state(lb, &svc_web, drained, 8080, LB_BACKEND_DRAINING, &err), 0);
	/* The old flow keeps its backend; no new flow gets it. */
	assert_int_equal(send_flow("198.51.100.40", 23000, 80), drained);
	for (int i = 0; i < 300; i++)
		assert_int_not_equal(send_flow("198.51.100.41", 24000 + i, 80), drained);
	assert_int_equal(lb_backend_counters(lb, &svc_web, drained, 8080, &c), 0);

	/* Maintenance: even the old flow moves. */
	assert_int_equal(
		lb_backend_set_state(lb, &svc_web, drained, 8080, LB_BACKEND_MAINTENANCE, &err), 0);
	assert_int_not_equal(send_flow("198.51.100.40", 23000, 80), drained);

	assert_int_equal(lb_backend_set_state(lb, &svc_web, drained, 8080, LB_BACKEND_ACTIVE, &err),
			 0);
	assert_int_equal(
		lb_backend_set_state(lb, &svc_web, A("10.9.9.9"), 8080, LB_BACKEND_ACTIVE, &err),
		-ENOENT);
}

static void test_reverse_nat(void **state)
{
	struct pkt_spec fwd = {IPPROTO_TCP,    "198.51.100.50", "203.0.113.5",
			       .sport = 25000, .dport = 80,	.payload = 20};
	struct pkt_spec rep = {IPPROTO_TCP,   NULL,	      "198.51.100.50",
			       .sport = 8080, .dport = 25000, .payload = 40};
	struct pkt in, out, want;
	uint32_t be;

	build(&fwd, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	be = ip_of(&out)->daddr;

	/* The backend's reply leaves with the address and port the client used. */
	rep.saddr_n = be;
	build(&rep, &in);
	assert_int_equal(run(LB_HOOK_EGRESS, &in, &out), TC_ACT_OK);
	rep.saddr = "203.0.113.5";
	rep.sport = 80;
	build(&rep, &want);
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.b, want.b, want.len);
	assert_csums_valid(&out);
	assert_int_equal(sport_of(&out), 80);

	/* A UDP reply from the VIP's backend gets the VIP back. */
	struct pkt_spec ufwd = {IPPROTO_UDP,	"198.51.100.51", "192.0.2.10",
				.sport = 25001, .dport = 53,	 .payload = 20};
	struct pkt_spec urep = {IPPROTO_UDP,   "10.2.0.1",     "198.51.100.51",
				.sport = 5353, .dport = 25001, .payload = 100};

	build(&ufwd, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	build(&urep, &in);
	assert_int_equal(run(LB_HOOK_EGRESS, &in, &out), TC_ACT_OK);
	urep.saddr = "192.0.2.10";
	urep.sport = 53;
	build(&urep, &want);
	assert_memory_equal(out.b, want.b, want.len);
	assert_csums_valid(&out);

	/* Traffic that is no reply of ours leaves untouched: another client
	 * port, and the backend talking on another port. */
	rep = (struct pkt_spec){IPPROTO_TCP,   NULL,	       "198.51.100.50",
				.sport = 8080, .dport = 25999, .payload = 4};
	rep.saddr_n = be;
	build(&rep, &in);
	assert_int_equal(run(LB_HOOK_EGRESS, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, in.b, in.len);
	rep.sport = 9999;
	rep.dport = 25000;
	build(&rep, &in);
	assert_int_equal(run(LB_HOOK_EGRESS, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, in.b, in.len);
}

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

static int pinned_fd(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return bpf_obj_get(path);
}

/* One TCP packet of client:sport -> 203.0.113.5:80 with these flags; the
 * backend it was sent to. */
static uint32_t client_pkt(const char *client, uint16_t sport, uint8_t flags)
{
	struct pkt_spec s = {IPPROTO_TCP, client,	"203.0.113.5",	   .sport = sport,
			     .dport = 80, .payload = 4, .tcp_flags = flags};
	struct pkt in, out;

	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_int_equal(dport_of(&out), 8080);
	return ip_of(&out)->daddr;
}

/* A reply from backend be:8080 to client:dport; true if it left rewritten
 * to the service's address and port, false if it left unchanged. */
static bool backend_reply(uint32_t be, const char *client, uint16_t dport, uint8_t flags)
{
	struct pkt_spec s = {IPPROTO_TCP,	NULL,		client,
			     .sport = 8080,	.dport = dport, .payload = 4,
			     .tcp_flags = flags};
	struct pkt in, out;

	s.saddr_n = be;
	build(&s, &in);
	assert_int_equal(run(LB_HOOK_EGRESS, &in, &out), TC_ACT_OK);
	if (memcmp(out.b, in.b, in.len) == 0)
		return false;
	assert_int_equal(ip_of(&out)->saddr, A("203.0.113.5"));
	assert_int_equal(sport_of(&out), 80);
	assert_csums_valid(&out);
	return true;
}

/* The flow entry of client:sport -> :80, read from the pinned lb_ct. */
static int ct_entry(const char *client, uint16_t sport, struct lb_ct_entry *ret)
{
	_cleanup_close_ int fd = pinned_fd("lb_ct");
	struct lb_flow_key k = {.saddr = A(client),
				.daddr = A("203.0.113.5"),
				.sport = htons(sport),
				.dport = htons(80),
				.proto = IPPROTO_TCP};

	assert_true(fd >= 0);
	return bpf_map_lookup_elem(fd, &k, ret);
}

/* Moves a closed flow's close time back past LB_CT_CLOSE_GRACE_NS. */
static void age_close(const char *client, uint16_t sport)
{
	_cleanup_close_ int fd = pinned_fd("lb_ct");
	struct lb_flow_key k = {.saddr = A(client),
				.daddr = A("203.0.113.5"),
				.sport = htons(sport),
				.dport = htons(80),
				.proto = IPPROTO_TCP};
	struct lb_ct_entry e;

	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &e), 0);
	assert_true(e.closed_ns > LB_CT_CLOSE_GRACE_NS);
	e.closed_ns -= LB_CT_CLOSE_GRACE_NS + 1000000000ULL;
	assert_int_equal(bpf_map_update_elem(fd, &k, &e, 0), 0);
}

/* A closed TCP flow: RST from the client, or FIN both ways. Its replies are
 * rewritten during the grace, then pass unchanged; a new SYN on its tuple
 * is a new flow and no longer goes to a draining backend. */
static void test_flow_close(void **state)
{
	struct shoal_err err = {};
	const char *c = "198.51.100.90";
	struct lb_ct_entry e;
	uint32_t be, be2;

	/* Open flow: a SYN again keeps its backend, even a draining one. */
	be = client_pkt(c, 28000, F_SYN);
	assert_true(backend_reply(be, c, 28000, F_SYN | F_ACK));
	assert_int_equal(client_pkt(c, 28000, F_ACK), be);
	assert_int_equal(lb_backend_set_state(lb, &svc_web, be, 8080, LB_BACKEND_DRAINING, &err),
			 0);
	assert_int_equal(client_pkt(c, 28000, F_SYN), be);
	assert_int_equal(ct_entry(c, 28000, &e), 0);
	assert_int_equal(e.closed_ns, 0);

	/* RST from the client closes it; replies still rewritten (grace). */
	assert_int_equal(client_pkt(c, 28000, F_RST | F_ACK), be);
	assert_int_equal(ct_entry(c, 28000, &e), 0);
	assert_true(e.closed_ns != 0);
	assert_true(backend_reply(be, c, 28000, F_ACK));
	/* A non-SYN packet of the closed flow still goes where it went. */
	assert_int_equal(client_pkt(c, 28000, F_ACK), be);
	/* After the grace, the reply passes unchanged, and keeps passing. */
	age_close(c, 28000);
	assert_false(backend_reply(be, c, 28000, F_ACK));
	assert_false(backend_reply(be, c, 28000, F_ACK));
	/* A new SYN on the tuple is a new flow: the draining backend gets none. */
	be2 = client_pkt(c, 28000, F_SYN);
	assert_int_not_equal(be2, be);
	assert_int_equal(ct_entry(c, 28000, &e), 0);
	assert_int_equal(e.closed_ns, 0);
	assert_true(backend_reply(be2, c, 28000, F_SYN | F_ACK));
	assert_int_equal(lb_backend_set_state(lb, &svc_web, be, 8080, LB_BACKEND_ACTIVE, &err), 0);

	/* FIN from the client alone leaves the flow open; the backend's FIN
	 * (seen on egress) closes it. */
	be = client_pkt(c, 28001, F_SYN);
	assert_true(backend_reply(be, c, 28001, F_SYN | F_ACK));
	assert_int_equal(client_pkt(c, 28001, F_FIN | F_ACK), be);
	assert_int_equal(ct_entry(c, 28001, &e), 0);
	assert_int_equal(e.fin_client, 1);
	assert_int_equal(e.closed_ns, 0);
	assert_true(backend_reply(be, c, 28001, F_FIN | F_ACK));
	assert_int_equal(ct_entry(c, 28001, &e), 0);
	assert_int_equal(e.fin_backend, 1);
	assert_true(e.closed_ns != 0);
	assert_int_equal(client_pkt(c, 28001, F_ACK), be); /* the last ACK */
	assert_true(backend_reply(be, c, 28001, F_ACK));
	age_close(c, 28001);
	assert_false(backend_reply(be, c, 28001, F_ACK));

	/* RST from the backend closes it too; an open flow's SYN|ACK or ACK
	 * does not. */
	be = client_pkt(c, 28002, F_SYN);
	assert_true(backend_reply(be, c, 28002, F_ACK));
	assert_int_equal(ct_entry(c, 28002, &e), 0);
	assert_int_equal(e.closed_ns, 0);
	assert_true(backend_reply(be, c, 28002, F_RST));
	assert_int_equal(ct_entry(c, 28002, &e), 0);
	assert_true(e.closed_ns != 0);
	age_close(c, 28002);
	assert_false(backend_reply(be, c, 28002, F_ACK));
}

/* A reverse entry evicted apart from its flow comes back on the flow's next
 * refresh of last_seen_ns (once per LB_CT_TOUCH_NS). */
static void test_rnat_restored_on_touch(void **state)
{
	_cleanup_close_ int ctfd = pinned_fd("lb_ct"), rfd = pinned_fd("lb_rnat");
	const char *c = "198.51.100.92";
	struct lb_flow_key fk = {.saddr = A(c),
				 .daddr = A("203.0.113.5"),
				 .sport = htons(28200),
				 .dport = htons(80),
				 .proto = IPPROTO_TCP};
	struct lb_flow_key rk = {
		.daddr = A(c), .sport = htons(8080), .dport = htons(28200), .proto = IPPROTO_TCP};
	struct lb_ct_entry e;
	uint32_t be;

	assert_true(ctfd >= 0 && rfd >= 0);
	be = client_pkt(c, 28200, F_SYN);
	rk.saddr = be;
	assert_true(backend_reply(be, c, 28200, F_SYN | F_ACK));
	assert_int_equal(bpf_map_delete_elem(rfd, &rk), 0);

	/* As if the last refresh was long ago. */
	assert_int_equal(bpf_map_lookup_elem(ctfd, &fk, &e), 0);
	e.last_seen_ns = 0;
	e.touch_jiffies -= LB_CT_TOUCH_JIFFIES;
	assert_int_equal(bpf_map_update_elem(ctfd, &fk, &e, 0), 0);
	assert_int_equal(client_pkt(c, 28200, F_ACK), be);
	assert_true(backend_reply(be, c, 28200, F_ACK));
	assert_int_equal(bpf_map_lookup_elem(ctfd, &fk, &e), 0);
	assert_true(e.last_seen_ns != 0);
}

/* An established flow is kept by its own service only: when the id in its
 * entry names another service key (lb_svc_keys), the packet is looked up
 * afresh and counted as a new flow. */
static void test_flow_checks_its_service(void **state)
{
	_cleanup_close_ int sfd = pinned_fd("lb_services"), kfd = pinned_fd("lb_svc_keys");
	struct lb_svc_key web = {.port = htons(80), .proto = IPPROTO_TCP}, saved,
			  other = {.port = htons(99), .proto = IPPROTO_TCP};
	const char *c = "198.51.100.91";
	struct lb_counters c0, c1;
	struct lb_svc sv;

	assert_true(sfd >= 0 && kfd >= 0);
	assert_int_equal(bpf_map_lookup_elem(sfd, &web, &sv), 0);
	assert_int_equal(bpf_map_lookup_elem(kfd, &sv.id, &saved), 0);
	assert_memory_equal(&saved, &web, sizeof(web));

	client_pkt(c, 28100, F_SYN);
	assert_int_equal(lb_service_counters(lb, &svc_web, &c0), 0);
	client_pkt(c, 28100, F_ACK);
	assert_int_equal(lb_service_counters(lb, &svc_web, &c1), 0);
	assert_int_equal(c1.new_flows, c0.new_flows);

	assert_int_equal(bpf_map_update_elem(kfd, &sv.id, &other, 0), 0);
	client_pkt(c, 28100, F_ACK);
	assert_int_equal(bpf_map_update_elem(kfd, &sv.id, &saved, 0), 0);
	assert_int_equal(lb_service_counters(lb, &svc_web, &c1), 0);
	assert_int_equal(c1.new_flows, c0.new_flows + 1);
}

/* A port with a published service and a VIP service: each address finds
 * its own, in both lookup orders lb_ports allows. */
static void test_published_and_vip_on_one_port(void **state)
{
	struct shoal_err err = {};
	struct lb_service_key vip = {.addr = A("192.0.2.20"), .port = 80, .proto = IPPROTO_TCP};
	struct lb_service_key vip_only = {
		.addr = A("192.0.2.21"), .port = 84, .proto = IPPROTO_TCP};
	struct lb_backend_spec vb = {A("10.7.0.1"), 9090, LB_BACKEND_ACTIVE};
	struct pkt_spec s = {IPPROTO_TCP, "198.51.100.95", "192.0.2.20", .sport = 29000,
			     .dport = 80};
	struct pkt in, out;

	assert_int_equal(lb_service_upsert(lb, &vip, &vb, 1, &err), 0);
	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->daddr, A("10.7.0.1"));
	assert_int_equal(dport_of(&out), 9090);
	/* another address on the same port: the published service */
	backend_index(client_pkt("198.51.100.95", 29001, F_SYN));

	/* A VIP-only port: its address hits, any other passes. */
	assert_int_equal(lb_service_upsert(lb, &vip_only, &vb, 1, &err), 0);
	s.daddr = "192.0.2.21";
	s.dport = 84;
	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->daddr, A("10.7.0.1"));
	s.daddr = "203.0.113.5";
	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, in.b, in.len);

	/* Deleted: the VIP's address on port 80 falls back to the published
	 * service; port 84 passes. */
	assert_int_equal(lb_service_delete(lb, &vip, &err), 0);
	assert_int_equal(lb_service_delete(lb, &vip_only, &err), 0);
	s.daddr = "192.0.2.20";
	s.dport = 80;
	s.sport = 29002;
	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	backend_index(ip_of(&out)->daddr);
	s.daddr = "192.0.2.21";
	s.dport = 84;
	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, in.b, in.len);
}

/* The table names a backend the backends map no longer calls active (a
 * state written behind the library's back): a defined drop, not a DNAT to
 * a backend that should not get new flows. */
static void test_backend_invalid_and_no_table(void **state)
{
	_cleanup_free_ char *bpath = NULL, *spath = NULL;
	_cleanup_close_ int bfd = -EBADF, sfd = -EBADF;
	uint64_t before[LB_DROP_MAX + 1], after[LB_DROP_MAX + 1];
	struct lb_svc_key k = {.port = htons(82), .proto = IPPROTO_TCP};
	struct lb_svc_key ghost = {.port = htons(83), .proto = IPPROTO_TCP};
	struct lb_svc sv, gsv = {.id = LB_MAX_SERVICES - 1, .active = 1};
	struct lb_backend be;
	struct pkt_spec s = {IPPROTO_TCP, "198.51.100.60", "203.0.113.5", .sport = 26000,
			     .dport = 82};
	struct pkt in, out;
	uint32_t id = 0;

	assert_true(asprintf(&bpath, "%s/lb_backends", pin_dir) > 0);
	assert_true(asprintf(&spath, "%s/lb_services", pin_dir) > 0);
	bfd = bpf_obj_get(bpath);
	sfd = bpf_obj_get(spath);
	assert_true(bfd >= 0 && sfd >= 0);
	assert_int_equal(bpf_map_lookup_elem(sfd, &k, &sv), 0);
	for (uint32_t i = 1; i < LB_MAX_BACKENDS && !id; i++)
		if (bpf_map_lookup_elem(bfd, &i, &be) == 0 && be.svc_id == sv.id)
			id = i;
	assert_int_not_equal(id, 0);

	be.state = LB_BACKEND_DRAINING;
	assert_int_equal(bpf_map_update_elem(bfd, &id, &be, 0), 0);
	build(&s, &in);
	assert_int_equal(lb_drops_read(lb, before), 0);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_SHOT);
	assert_int_equal(lb_drops_read(lb, after), 0);
	assert_int_equal(after[-LB_DROP_BACKEND_INVALID] - before[-LB_DROP_BACKEND_INVALID], 1);
	be.state = LB_BACKEND_ACTIVE;
	assert_int_equal(bpf_map_update_elem(bfd, &id, &be, 0), 0);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->daddr, A("10.4.0.1"));

	/* A service entry without a table (its port announced in lb_ports as
	 * the library would). */
	{
		_cleanup_free_ char *ppath = NULL;
		_cleanup_close_ int pfd = -EBADF;
		uint32_t idx = LB_PORT_INDEX(IPPROTO_TCP, htons(83)), kinds = LB_PORT_PUBLISHED;

		assert_true(asprintf(&ppath, "%s/lb_ports", pin_dir) > 0);
		pfd = bpf_obj_get(ppath);
		assert_true(pfd >= 0);
		assert_int_equal(bpf_map_update_elem(pfd, &idx, &kinds, 0), 0);
	}
	assert_int_equal(bpf_map_update_elem(sfd, &ghost, &gsv, 0), 0);
	s.dport = 83;
	build(&s, &in);
	assert_int_equal(lb_drops_read(lb, before), 0);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_SHOT);
	assert_int_equal(lb_drops_read(lb, after), 0);
	assert_int_equal(after[-LB_DROP_NO_TABLE] - before[-LB_DROP_NO_TABLE], 1);
	assert_int_equal(bpf_map_delete_elem(sfd, &ghost), 0);
}

/* An agent restart: a new handle on the same pins sees the same services
 * and keeps every flow on its backend; a mismatched geometry is refused. */
static void test_reopen_keeps_state(void **state)
{
	struct shoal_err err = {};
	struct lb_open_opts o = {.pin_dir = pin_dir};
	struct lb_service_key *keys = NULL;
	struct lb_backend_spec *bes = NULL;
	struct lb *other = NULL;
	uint32_t flows[50];
	size_t n;

	for (int i = 0; i < 50; i++)
		flows[i] = send_flow("198.51.100.70", 27000 + i, 80);
	lb = lb_close(lb);

	o.maglev_size = 16381;
	assert_int_equal(lb_open(&o, &other, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "1009"));
	o.maglev_size = 0;
	assert_int_equal(lb_open(&o, &lb, &err), 0);
	assert_int_equal(lb_maglev_size(lb), 1009);

	assert_int_equal(lb_service_list(lb, &keys, &n), 0);
	assert_int_equal(n, 4);
	free(keys);
	assert_int_equal(lb_service_backends(lb, &svc_web, &bes, &n), 0);
	assert_int_equal(n, 3);
	free(bes);
	for (int i = 0; i < 50; i++)
		assert_int_equal(send_flow("198.51.100.70", 27000 + i, 80), flows[i]);
}

/* Writes version into the lb_meta pinned under dir. */
static void set_pinned_version(const char *dir, uint32_t version)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct lb_meta meta;
	uint32_t zero = 0;

	assert_true(asprintf(&path, "%s/lb_meta", dir) > 0);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &zero, &meta), 0);
	assert_int_equal(meta.version, LB_META_VERSION);
	meta.version = version;
	assert_int_equal(bpf_map_update_elem(fd, &zero, &meta, 0), 0);
}

/* Pins of an older layout: refused while they hold services (the message
 * names the way out), replaced when they hold none. */
static void test_old_layout_pins(void **state)
{
	struct shoal_err err = {};
	char dir[160];
	struct lb_open_opts o = {.pin_dir = dir, .maglev_size = 1009, .ct_size = 1024};
	struct lb_backend_spec be = {A("10.6.0.1"), 80, LB_BACKEND_ACTIVE};
	struct lb_service_key k = {.port = 91, .proto = IPPROTO_TCP};
	struct lb_service_key *keys = NULL;
	struct lb *old = NULL;
	size_t n;

	snprintf(dir, sizeof(dir), "%s-old", pin_dir);
	assert_int_equal(lb_open(&o, &old, &err), 0);
	assert_int_equal(lb_service_upsert(old, &k, &be, 1, &err), 0);
	old = lb_close(old);
	set_pinned_version(dir, LB_META_VERSION - 1);
	assert_int_equal(lb_open(&o, &old, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "shoald --teardown"));
	assert_null(old);

	/* Emptied of services (as by an agent that removed them): recreated. */
	{
		_cleanup_free_ char *path = NULL;
		_cleanup_close_ int fd = -EBADF;
		struct lb_svc_key mk = {.port = htons(91), .proto = IPPROTO_TCP};

		assert_true(asprintf(&path, "%s/lb_services", dir) > 0);
		fd = bpf_obj_get(path);
		assert_true(fd >= 0);
		assert_int_equal(bpf_map_delete_elem(fd, &mk), 0);
	}
	assert_int_equal(lb_open(&o, &old, &err), 0);
	assert_int_equal(lb_service_list(old, &keys, &n), 0);
	assert_int_equal(n, 0);
	free(keys);
	old = lb_close(old);
	set_pinned_version(dir, LB_META_VERSION); /* the new pins carry this version */
	rm_rf(dir);
}

static void test_upsert_errors(void **state)
{
	struct shoal_err err = {};
	struct lb_service_key k = {.port = 90, .proto = IPPROTO_TCP};
	struct lb_backend_spec many[20], dup[2] = {{A("10.5.0.1"), 1, LB_BACKEND_ACTIVE},
						   {A("10.5.0.1"), 1, LB_BACKEND_DRAINING}};

	for (int i = 0; i < 20; i++)
		many[i] = (struct lb_backend_spec){A("10.5.0.1") + htonl(i), 80, LB_BACKEND_ACTIVE};
	/* 1009 entries hold 10 backends at 100 slots each. */
	assert_int_equal(lb_service_upsert(lb, &k, many, 11, &err), -E2BIG);
	assert_int_equal(lb_service_upsert(lb, &k, dup, 2, &err), -EINVAL);
	k.proto = IPPROTO_ICMP;
	assert_int_equal(lb_service_upsert(lb, &k, many, 1, &err), -EINVAL);
	k.proto = IPPROTO_TCP;
	assert_int_equal(lb_service_upsert(lb, &k, many, 10, &err), 0);
	assert_int_equal(lb_service_delete(lb, &k, &err), 0);
	assert_int_equal(lb_service_delete(lb, &k, &err), -ENOENT);

	/* Deleted: its port passes again. */
	struct pkt_spec s = {IPPROTO_TCP, "198.51.100.80", "203.0.113.5", .sport = 1, .dport = 90};
	struct pkt in, out;

	build(&s, &in);
	assert_int_equal(run(LB_HOOK_INGRESS, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, in.b, in.len);
}

/* ---- attach, and a real connection over loopback ---- */

static void test_attach_detach(void **state)
{
	struct shoal_err err = {};
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = 1, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = 0x5348, .priority = 0x5348);

	assert_int_equal(lb_attach_ifname(lb, "lo", &err), 0);
	assert_int_equal(lb_attach(lb, 1, &err), 0); /* again: replaces */
	assert_int_equal(bpf_tc_query(&hook, &q), 0);
	assert_int_equal(lb_detach(lb, 1, &err), 0);
	memset(&q, 0, sizeof(q));
	q.sz = sizeof(q);
	q.handle = 0x5348;
	q.priority = 0x5348;
	assert_true(bpf_tc_query(&hook, &q) < 0);
	assert_int_equal(lb_detach(lb, 1, &err), 0);
	assert_int_equal(lb_attach_ifname(lb, "no-such-if0", &err), -ENODEV);
}

/* Native XDP on a veth (the test's own namespace, which dies with it): on
 * with opts.xdp, replaced in place, removed by a handle without it and by
 * lb_detach(); lo has no native XDP: tc alone. */
static void test_xdp_attach_detach(void **state)
{
	struct shoal_err err = {};
	struct lb_open_opts o = {.pin_dir = pin_dir, .xdp = true};
	struct lb *x = NULL;
	int idx;

	assert_int_equal(system("ip link add shxdp0 type veth peer name shxdp1 && "
				"ip link set shxdp0 up && ip link set shxdp1 up"),
			 0);
	idx = (int)if_nametoindex("shxdp0");
	assert_true(idx > 0);
	assert_int_equal(lb_open(&o, &x, &err), 0);
	if (lb_feature(x, LB_FEAT_XDP)->state != LB_FEATURE_ON) {
		/* asked for, unavailable: tc alone, nothing on the XDP hook */
		print_message("    XDP unavailable: %s\n", lb_feature(x, LB_FEAT_XDP)->reason);
		assert_int_equal(lb_attach(x, idx, &err), 0);
		assert_int_equal(lb_xdp_attached(idx), 0);
		assert_int_equal(lb_detach(x, idx, &err), 0);
		x = lb_close(x);
		assert_int_equal(system("ip link del shxdp0"), 0);
		return;
	}
	assert_int_equal(lb_attach(x, idx, &err), 1);
	assert_int_equal(lb_xdp_attached(idx), 1);
	assert_int_equal(lb_attach(x, idx, &err), 1); /* again: replaces */
	assert_int_equal(lb_xdp_attached(idx), 1);
	assert_int_equal(lb_attach(lb, idx, &err), 0); /* a handle without xdp */
	assert_int_equal(lb_xdp_attached(idx), 0);
	assert_int_equal(lb_attach(x, idx, &err), 1);
	assert_int_equal(lb_detach(x, idx, &err), 0);
	assert_int_equal(lb_xdp_attached(idx), 0);
	assert_int_equal(lb_attach(x, 1, &err), 0); /* lo: generic only, never used */
	assert_int_equal(lb_xdp_attached(1), 0);
	assert_int_equal(lb_detach(x, 1, &err), 0);
	x = lb_close(x);
	assert_int_equal(system("ip link del shxdp0"), 0);
}

/* Client -> 127.0.0.1:80 (a published port), DNATed on lo's ingress to the
 * backend 127.0.0.2:8080; the backend's replies leave through lo's egress
 * and reach the client as 127.0.0.1:80, or the connection would not open. */
static void test_loopback_connection(void **state)
{
	struct shoal_err err = {};
	struct lb_service_key k = {.addr = 0, .port = 80, .proto = IPPROTO_TCP};
	struct lb_backend_spec be = {A("127.0.0.2"), 8080, LB_BACKEND_ACTIVE};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	_cleanup_close_ int ls = -EBADF, cs = -EBADF, as = -EBADF;
	struct lb_counters c0, c;
	char buf[8] = {};
	int one = 1;

	ls = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(ls >= 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = A("127.0.0.2");
	sa.sin_port = htons(8080);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 4), 0);

	assert_int_equal(lb_service_upsert(lb, &k, &be, 1, &err), 0);
	assert_int_equal(lb_service_counters(lb, &k, &c0), 0);
	assert_int_equal(lb_attach_ifname(lb, "lo", &err), 0);

	cs = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(cs >= 0);
	sa.sin_addr.s_addr = A("127.0.0.1");
	sa.sin_port = htons(80);
	assert_int_equal(connect(cs, (struct sockaddr *)&sa, sizeof(sa)), 0);
	as = accept(ls, (struct sockaddr *)&peer, &plen);
	assert_true(as >= 0);
	assert_int_equal(write(cs, "ping", 4), 4);
	assert_int_equal(read(as, buf, 4), 4);
	assert_string_equal(buf, "ping");
	assert_int_equal(write(as, "pong", 4), 4);
	assert_int_equal(read(cs, buf, 4), 4);
	assert_string_equal(buf, "pong");
	plen = sizeof(peer);
	assert_int_equal(getpeername(cs, (struct sockaddr *)&peer, &plen), 0);
	assert_int_equal(peer.sin_port, htons(80));

	assert_int_equal(lb_service_counters(lb, &k, &c), 0);
	assert_int_equal(c.new_flows - c0.new_flows, 1);
	assert_true(c.packets - c0.packets >= 4);
	assert_int_equal(lb_detach(lb, 1, &err), 0);
	/* web (port 80) had other backends before; put it back. */
	program_services();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingress_table),
		cmocka_unit_test_teardown(test_xdp_ingress_table, xdp_table_teardown),
		cmocka_unit_test(test_xdp_tc_share_flows),
		cmocka_unit_test(test_maglev_spread_and_stable),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_flows_keep_backends_across_changes),
		cmocka_unit_test(test_drain_and_maintenance),
		cmocka_unit_test(test_reverse_nat),
		cmocka_unit_test(test_flow_close),
		cmocka_unit_test(test_flow_checks_its_service),
		cmocka_unit_test(test_rnat_restored_on_touch),
		cmocka_unit_test(test_published_and_vip_on_one_port),
		cmocka_unit_test(test_backend_invalid_and_no_table),
		cmocka_unit_test(test_upsert_errors),
		cmocka_unit_test(test_reopen_keeps_state),
		cmocka_unit_test(test_old_layout_pins),
		cmocka_unit_test(test_attach_detach),
		cmocka_unit_test(test_xdp_attach_detach),
		cmocka_unit_test(test_loopback_connection),
	};
	const struct CMUnitTest csum_tests[] = {
		cmocka_unit_test_teardown(test_checksum_complete, checksum_complete_teardown),
	};
	int r = bpf_test_prepare("shoal-lbtest", true);

	if (r != 0)
		return r;
	if (argc > 1 && strcmp(argv[1], "checksum-complete") == 0) {
		/* its own ctest entry, so that a kernel without the flag is a
		 * skip ctest reports, not a pass */
		r = bpf_test_run_flag_supported(BPF_F_TEST_SKB_CHECKSUM_COMPLETE);
		if (r <= 0) {
			printf("SKIP: this kernel's BPF_PROG_TEST_RUN has no "
			       "BPF_F_TEST_SKB_CHECKSUM_COMPLETE (Linux 6.11+)\n");
			return 77;
		}
		return cmocka_run_group_tests(csum_tests, setup, teardown);
	}
	if (argc > 1 && strcmp(argv[1], "knobs") == 0)
		return bpf_test_check_knobs();
	return cmocka_run_group_tests(tests, setup, teardown);
}
