// SPDX-License-Identifier: Apache-2.0
/* Host routing to local endpoints, through BPF_PROG_TEST_RUN: the uplink's
 * ingress program redirects a flow to a registered local backend with the
 * endpoint's MACs and leaves other backends to the kernel; the veth program
 * reverse-NATs the replies of such flows and leaves everything else alone;
 * the flows survive a reload of both programs on the same pins. Needs root;
 * exits 77 when it cannot load BPF programs. Runs in a private network
 * namespace. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cmocka.h>

#include "lb/lb-internal.h"
#include "lb/lb.h"
#include "tests/bpf/bpf-test.h"
#include "lib/cleanup.h"
#include "lib/util.h"

static char pin_dir[128];
static struct lb *lb;
static struct lb_fwd *fwd;

static const uint8_t ctr_mac[6] = {0x02, 0x42, 0x0a, 0x01, 0x00, 0x01};
static const uint8_t host_mac[6] = {0x0e, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t wire_dst[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t wire_src[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
#define VETH_IFINDEX 4242

/* ---- packets ---- */

struct pkt_spec {
	uint8_t proto;
	const char *saddr, *daddr;
	uint16_t sport, dport;
	uint16_t payload;
	uint8_t ttl; /* 0: 64 */
};

static void build(const struct pkt_spec *s, struct pkt *p)
{
	struct ethhdr *eth = (struct ethhdr *)p->b;
	struct iphdr *ip = ip_of(p);
	uint8_t *l4 = (uint8_t *)ip + 20;
	uint16_t l4len = (s->proto == IPPROTO_TCP ? 20 : 8) + s->payload;

	memset(p, 0, sizeof(*p));
	memcpy(eth->h_dest, wire_dst, ETH_ALEN);
	memcpy(eth->h_source, wire_src, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = s->ttl ? s->ttl : 64;
	ip->id = htons(0x1234);
	ip->protocol = s->proto;
	ip->saddr = A(s->saddr);
	ip->daddr = A(s->daddr);
	ip->tot_len = htons(20 + l4len);
	ip->check = htons(csum_fold(csum_add(0, ip, 20)));
	for (uint16_t i = 0; i < s->payload; i++)
		l4[l4len - s->payload + i] = (uint8_t)(i * 7 + 1);
	if (s->proto == IPPROTO_TCP) {
		struct tcphdr *th = (struct tcphdr *)l4;

		th->source = htons(s->sport);
		th->dest = htons(s->dport);
		th->seq = htonl(1000);
		th->doff = 5;
		th->ack = 1;
		th->window = htons(65535);
		th->check = htons(csum_fold(csum_add(pseudo_sum(ip, l4len), l4, l4len)));
	} else {
		struct udphdr *uh = (struct udphdr *)l4;
		uint16_t c;

		uh->source = htons(s->sport);
		uh->dest = htons(s->dport);
		uh->len = htons(l4len);
		c = csum_fold(csum_add(pseudo_sum(ip, l4len), l4, l4len));
		uh->check = htons(c ? c : 0xffff);
	}
	p->len = ETH_HLEN + 20 + l4len;
}

static void assert_csums_valid(struct pkt *p)
{
	struct iphdr *ip = ip_of(p);
	uint16_t l4len = ntohs(ip->tot_len) - ip->ihl * 4;

	assert_int_equal(csum_fold(csum_add(0, ip, ip->ihl * 4)), 0);
	assert_int_equal(csum_fold(csum_add(pseudo_sum(ip, l4len), l4_of(p), l4len)), 0);
}

static uint16_t sport_of(struct pkt *p)
{
	return ntohs(((uint16_t *)l4_of(p))[0]);
}

static uint16_t dport_of(struct pkt *p)
{
	return ntohs(((uint16_t *)l4_of(p))[1]);
}

static int run_fd(int prog_fd, const struct pkt *in, struct pkt *out)
{
	int err;
	int r = bpf_test_run_pkt(prog_fd, in, out, &err);

	assert_int_equal(err, 0);
	return r;
}

static int run_ingress(const struct pkt *in, struct pkt *out)
{
	return run_fd(lb_prog_fd(lb, LB_HOOK_INGRESS), in, out);
}

static int run_veth(const struct pkt *in, struct pkt *out)
{
	return run_fd(lb_fwd_prog_fd(fwd), in, out);
}

static int run_egress(const struct pkt *in, struct pkt *out)
{
	return run_fd(lb_prog_fd(lb, LB_HOOK_EGRESS), in, out);
}

/* ---- fixture ---- */

/* A published port with one local backend, one with a backend elsewhere. */
static const struct lb_service_key svc_local = {.port = 80, .proto = IPPROTO_TCP};
static const struct lb_service_key svc_remote = {.port = 81, .proto = IPPROTO_TCP};
static const struct lb_service_key svc_udp = {.port = 53, .proto = IPPROTO_UDP};

static void register_local(void)
{
	struct shoal_err err = {};
	struct lb_endpoint ep = {.addr = A("10.1.0.1"), .ifindex = VETH_IFINDEX};

	memcpy(ep.mac, ctr_mac, 6);
	memcpy(ep.host_mac, host_mac, 6);
	assert_int_equal(lb_endpoint_set(fwd, &ep, &err), 0);
}

static int open_all(void)
{
	struct shoal_err err = {};
	struct lb_open_opts o = {.maglev_size = 1009, .ct_size = 4096, .pin_dir = pin_dir};
	struct lb_fwd_open_opts fo = {.pin_dir = pin_dir};

	if (lb_open(&o, &lb, &err) < 0) {
		fprintf(stderr, "lb_open: %s\n", err.msg);
		return -1;
	}
	if (lb_fwd_open(lb, &fo, &fwd, &err) < 0) {
		fprintf(stderr, "lb_fwd_open: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state);

/* Host routing unavailable (the kernel, or SHOAL_LB_DISABLE): the handle
 * is refused with the reason, and a backend whose endpoint slot is filled
 * (as pins of an earlier agent may hold) is still only DNATed, the kernel
 * routing it: the ingress program has no redirect left in it. */
static void test_fallback_routes(void **state)
{
	struct shoal_err err = {};
	struct lb_open_opts o = {.maglev_size = 1009, .ct_size = 4096, .pin_dir = pin_dir};
	struct lb_fwd_open_opts fo = {.pin_dir = pin_dir};
	struct lb_backend_spec local[1] = {{A("10.1.0.1"), 8080, LB_BACKEND_ACTIVE}};
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.7", "203.0.113.5",
			      .sport = 40000, .dport = 80,    .payload = 16};
	struct lb_local_ep ep = {.ifindex = VETH_IFINDEX};
	_cleanup_close_ int be_eps = -EBADF;
	struct pkt in, out;

	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/shoal-lbfwdtest-%d", getpid());
	assert_int_equal(lb_open(&o, &lb, &err), 0);
	print_message("    host routing unavailable: %s\n",
		      lb_feature(lb, LB_FEAT_HOST_ROUTING)->reason);
	assert_int_equal(lb_feature(lb, LB_FEAT_HOST_ROUTING)->state, LB_FEATURE_UNAVAILABLE);
	assert_int_equal(lb_fwd_open(lb, &fo, &fwd, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, lb_feature(lb, LB_FEAT_HOST_ROUTING)->reason));
	assert_null(fwd);

	assert_int_equal(lb_service_upsert(lb, &svc_local, local, 1, &err), 0);
	be_eps = lb_prog_map_fd(lb_prog_fd(lb, LB_HOOK_INGRESS), "lb_be_eps");
	assert_true(be_eps >= 0);
	memcpy(ep.mac, ctr_mac, 6);
	memcpy(ep.host_mac, host_mac, 6);
	for (uint32_t id = 1; id < LB_MAX_BACKENDS; id++)
		assert_int_equal(bpf_map_update_elem(be_eps, &id, &ep, 0), 0);
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, wire_dst, 6);
	assert_int_equal(ip_of(&out)->daddr, A("10.1.0.1"));
	assert_int_equal(dport_of(&out), 8080);
	assert_int_equal(ip_of(&out)->ttl, 64);
	assert_csums_valid(&out);
	teardown(state);
}

static int setup(void **state)
{
	struct shoal_err err = {};
	struct lb_backend_spec local[1] = {{A("10.1.0.1"), 8080, LB_BACKEND_ACTIVE}};
	struct lb_backend_spec remote[1] = {{A("10.9.0.1"), 8081, LB_BACKEND_ACTIVE}};
	struct lb_backend_spec udp[1] = {{A("10.1.0.1"), 5353, LB_BACKEND_ACTIVE}};

	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/shoal-lbfwdtest-%d", getpid());
	if (open_all() < 0)
		return -1;
	if (lb_service_upsert(lb, &svc_local, local, 1, &err) < 0 ||
	    lb_service_upsert(lb, &svc_remote, remote, 1, &err) < 0 ||
	    lb_service_upsert(lb, &svc_udp, udp, 1, &err) < 0) {
		fprintf(stderr, "lb_service_upsert: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	fwd = lb_fwd_close(fwd);
	lb = lb_close(lb);
	rm_rf(pin_dir);
	return 0;
}

/* ---- forward ---- */

static void test_forward_local_redirects(void **state)
{
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.7", "203.0.113.5",
			      .sport = 40000, .dport = 80,    .payload = 16};
	struct pkt in, out;

	register_local();
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_REDIRECT);
	/* Addressed to the container, from the host end of its veth. */
	assert_memory_equal(out.b, ctr_mac, 6);
	assert_memory_equal(out.b + 6, host_mac, 6);
	assert_int_equal(ip_of(&out)->daddr, A("10.1.0.1"));
	assert_int_equal(ip_of(&out)->saddr, A("198.51.100.7"));
	assert_int_equal(dport_of(&out), 8080);
	assert_int_equal(ip_of(&out)->ttl, 63);
	assert_csums_valid(&out);

	/* UDP to the same container: redirected as well. */
	fs = (struct pkt_spec){IPPROTO_UDP,    "198.51.100.7", "203.0.113.5",
			       .sport = 40001, .dport = 53,    .payload = 30};
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_REDIRECT);
	assert_memory_equal(out.b, ctr_mac, 6);
	assert_int_equal(dport_of(&out), 5353);
	assert_csums_valid(&out);
}

static void test_forward_remote_routed(void **state)
{
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.8", "203.0.113.5",
			      .sport = 40002, .dport = 81,    .payload = 16};
	struct pkt in, out;

	register_local();
	build(&fs, &in);
	/* Not a local endpoint: DNAT only, the kernel routes it. */
	assert_int_equal(run_ingress(&in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, wire_dst, 6);
	assert_memory_equal(out.b + 6, wire_src, 6);
	assert_int_equal(ip_of(&out)->daddr, A("10.9.0.1"));
	assert_int_equal(dport_of(&out), 8081);
	assert_int_equal(ip_of(&out)->ttl, 64);
	assert_csums_valid(&out);
}

static void test_forward_ttl_expiring_routed(void **state)
{
	struct pkt_spec fs = {IPPROTO_TCP, "198.51.100.9", "203.0.113.5", .sport = 40003,
			      .dport = 80, .payload = 4,   .ttl = 1};
	struct pkt in, out;

	register_local();
	build(&fs, &in);
	/* The kernel answers with time exceeded; the redirect would not. */
	assert_int_equal(run_ingress(&in, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->daddr, A("10.1.0.1"));
	assert_int_equal(ip_of(&out)->ttl, 1);
	assert_memory_equal(out.b, wire_dst, 6);
}

static void test_endpoint_registry(void **state)
{
	struct shoal_err err = {};
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.10", "203.0.113.5",
			      .sport = 40004, .dport = 80,     .payload = 4};
	struct lb_endpoint *v = NULL, bad = {.addr = A("10.1.0.2")};
	struct pkt in, out;
	size_t n = 0;

	register_local();
	register_local(); /* again: an update, not a second entry */
	assert_int_equal(lb_endpoint_list(fwd, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].addr, A("10.1.0.1"));
	assert_int_equal(v[0].ifindex, VETH_IFINDEX);
	assert_memory_equal(v[0].mac, ctr_mac, 6);
	assert_memory_equal(v[0].host_mac, host_mac, 6);
	free(v);
	assert_int_equal(lb_endpoint_set(fwd, &bad, &err), -EINVAL);

	/* Removed: the same backend is routed by the kernel again. */
	assert_int_equal(lb_endpoint_delete(fwd, A("10.1.0.1"), &err), 0);
	assert_int_equal(lb_endpoint_delete(fwd, A("10.1.0.1"), &err), -ENOENT);
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->daddr, A("10.1.0.1"));
	assert_memory_equal(out.b, wire_dst, 6);
	assert_int_equal(lb_endpoint_list(fwd, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
}

/* One new TCP flow to a published port; its verdict, out filled. */
static int send_new_flow(uint16_t sport, uint16_t dport, struct pkt *out)
{
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.11", "203.0.113.5",
			      .sport = sport, .dport = dport,  .payload = 4};
	struct pkt in;

	build(&fs, &in);
	return run_ingress(&in, out);
}

/* The packet path finds a backend's endpoint by backend id: that slot
 * follows endpoints set and deleted after the backend exists, and backends
 * created, moved and removed while their address is registered. */
static void test_endpoint_slots_follow_changes(void **state)
{
	static const uint8_t other_mac[6] = {0x02, 0x42, 0x0a, 0x09, 0x00, 0x01};
	struct shoal_err err = {};
	struct lb_endpoint ep = {.addr = A("10.9.0.1"), .ifindex = VETH_IFINDEX + 1};
	struct lb_backend_spec to_local[1] = {{A("10.1.0.1"), 8081, LB_BACKEND_ACTIVE}};
	struct lb_backend_spec to_remote[1] = {{A("10.9.0.1"), 8081, LB_BACKEND_ACTIVE}};
	struct pkt out;

	register_local();
	/* 10.9.0.1 is a backend already; registered now, it is redirected. */
	assert_int_equal(send_new_flow(42000, 81, &out), TC_ACT_OK);
	memcpy(ep.mac, other_mac, 6);
	memcpy(ep.host_mac, host_mac, 6);
	assert_int_equal(lb_endpoint_set(fwd, &ep, &err), 0);
	assert_int_equal(send_new_flow(42001, 81, &out), TC_ACT_REDIRECT);
	assert_memory_equal(out.b, other_mac, 6);
	assert_int_equal(ip_of(&out)->daddr, A("10.9.0.1"));

	/* A new backend on a registered address: redirected from its first
	 * packet, with that address's endpoint. */
	assert_int_equal(lb_service_upsert(lb, &svc_remote, to_local, 1, &err), 0);
	assert_int_equal(send_new_flow(42002, 81, &out), TC_ACT_REDIRECT);
	assert_memory_equal(out.b, ctr_mac, 6);
	assert_int_equal(ip_of(&out)->daddr, A("10.1.0.1"));
	assert_int_equal(dport_of(&out), 8081);
	assert_csums_valid(&out);

	/* Endpoint gone: both services' backends on it are routed. */
	assert_int_equal(lb_endpoint_delete(fwd, A("10.1.0.1"), &err), 0);
	assert_int_equal(send_new_flow(42003, 81, &out), TC_ACT_OK);
	assert_memory_equal(out.b, wire_dst, 6);
	assert_int_equal(send_new_flow(42004, 80, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->daddr, A("10.1.0.1"));

	/* Back to the other address, still registered. */
	assert_int_equal(lb_service_upsert(lb, &svc_remote, to_remote, 1, &err), 0);
	assert_int_equal(send_new_flow(42005, 81, &out), TC_ACT_REDIRECT);
	assert_memory_equal(out.b, other_mac, 6);
	assert_int_equal(lb_endpoint_delete(fwd, A("10.9.0.1"), &err), 0);
	assert_int_equal(send_new_flow(42006, 81, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->daddr, A("10.9.0.1"));
}

/* ---- reply ---- */

/* The reply of a redirected flow: source back to the published address,
 * redirected; the uplink's egress then leaves it alone. */
static void test_reply_redirected_once(void **state)
{
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.20", "203.0.113.5",
			      .sport = 41000, .dport = 80,     .payload = 8};
	struct pkt_spec rs = {IPPROTO_TCP,   "10.1.0.1",     "198.51.100.20",
			      .sport = 8080, .dport = 41000, .payload = 100};
	struct pkt in, out, again;

	register_local();
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_REDIRECT);

	build(&rs, &in);
	assert_int_equal(run_veth(&in, &out), TC_ACT_REDIRECT);
	assert_int_equal(ip_of(&out)->saddr, A("203.0.113.5"));
	assert_int_equal(ip_of(&out)->daddr, A("198.51.100.20"));
	assert_int_equal(sport_of(&out), 80);
	assert_int_equal(dport_of(&out), 41000);
	assert_int_equal(ip_of(&out)->ttl, 63);
	assert_csums_valid(&out);

	/* No second rewrite on the way out of the uplink. */
	assert_int_equal(run_egress(&out, &again), TC_ACT_OK);
	assert_int_equal(again.len, out.len);
	assert_memory_equal(again.b, out.b, out.len);
}

static void test_reply_others_untouched(void **state)
{
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.21", "203.0.113.5",
			      .sport = 41001, .dport = 81,     .payload = 8};
	struct pkt_spec cases[] = {
		/* reply of a flow the kernel forwarded (backend not local) */
		{IPPROTO_TCP, "10.9.0.1", "198.51.100.21", .sport = 8081, .dport = 41001,
		 .payload = 10},
		/* east-west: a container talking to another */
		{IPPROTO_TCP, "10.1.0.1", "10.1.0.7", .sport = 8080, .dport = 41002, .payload = 10},
		/* the container's DNS query */
		{IPPROTO_UDP, "10.1.0.1", "10.1.0.254", .sport = 33333, .dport = 53, .payload = 20},
		/* right addresses, a client port with no flow */
		{IPPROTO_TCP, "10.1.0.1", "198.51.100.20", .sport = 8080, .dport = 41999,
		 .payload = 10},
	};
	struct pkt in, out;

	register_local();
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(&cases[i], &in);
		assert_int_equal(run_veth(&in, &out), TC_ACT_OK);
		assert_int_equal(out.len, in.len);
		assert_memory_equal(out.b, in.b, in.len);
	}
	/* The kernel-forwarded reply is still reverse-NATed by the uplink. */
	build(&cases[0], &in);
	assert_int_equal(run_egress(&in, &out), TC_ACT_OK);
	assert_int_equal(ip_of(&out)->saddr, A("203.0.113.5"));
	assert_int_equal(sport_of(&out), 81);
}

/* A flow whose first packets the kernel forwarded keeps the kernel's path
 * for its replies until a forward packet takes the redirect. */
static void test_reply_follows_forward_path(void **state)
{
	struct shoal_err err = {};
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.22", "203.0.113.5",
			      .sport = 41003, .dport = 80,     .payload = 8};
	struct pkt_spec rs = {IPPROTO_TCP,   "10.1.0.1",     "198.51.100.22",
			      .sport = 8080, .dport = 41003, .payload = 10};
	struct pkt in, out;

	lb_endpoint_delete(fwd, A("10.1.0.1"), &err);
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_OK);
	build(&rs, &in);
	assert_int_equal(run_veth(&in, &out), TC_ACT_OK);
	assert_memory_equal(out.b, in.b, in.len);

	register_local();
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_REDIRECT);
	build(&rs, &in);
	assert_int_equal(run_veth(&in, &out), TC_ACT_REDIRECT);
	assert_int_equal(ip_of(&out)->saddr, A("203.0.113.5"));
}

/* An agent restart: new programs with new maps on the same pins. Replies of
 * a flow redirected before keep their path at once; the endpoint registry
 * is the caller's to fill again. */
static void test_reload_carries_flows(void **state)
{
	struct pkt_spec fs = {IPPROTO_TCP,    "198.51.100.23", "203.0.113.5",
			      .sport = 41004, .dport = 80,     .payload = 8};
	struct pkt_spec rs = {IPPROTO_TCP,   "10.1.0.1",     "198.51.100.23",
			      .sport = 8080, .dport = 41004, .payload = 10};
	struct lb_endpoint *v = NULL;
	struct pkt in, out;
	size_t n = 9;

	register_local();
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_REDIRECT);

	fwd = lb_fwd_close(fwd);
	lb = lb_close(lb);
	assert_int_equal(open_all(), 0);
	/* the endpoints are pinned with the rest: the new programs forward to
	 * them before anybody registers them again */
	assert_int_equal(lb_endpoint_list(fwd, &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);

	build(&rs, &in);
	assert_int_equal(run_veth(&in, &out), TC_ACT_REDIRECT);
	assert_int_equal(ip_of(&out)->saddr, A("203.0.113.5"));
	assert_int_equal(sport_of(&out), 80);
	assert_csums_valid(&out);

	fs.sport = 41005; /* a new flow, on the reloaded programs */
	build(&fs, &in);
	assert_int_equal(run_ingress(&in, &out), TC_ACT_REDIRECT);

	/* a second handle on the same pins (a tool, or the bench) does too */
	{
		struct lb_open_opts o = {.pin_dir = pin_dir};
		struct shoal_err err = {0};
		struct lb *second = NULL;

		assert_int_equal(lb_open(&o, &second, &err), 0);
		fs.sport = 41006;
		build(&fs, &in);
		assert_int_equal(run_fd(lb_prog_fd(second, LB_HOOK_INGRESS), &in, &out),
				 TC_ACT_REDIRECT);
		/* and the reply program finds the flow it forwarded */
		rs.dport = 41006;
		build(&rs, &in);
		assert_int_equal(run_veth(&in, &out), TC_ACT_REDIRECT);
		lb_close(second);
	}
}

/* ---- veth hooks ---- */

static uint32_t ingress_prog_id(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = 0x5346, .priority = 0x5346);

	if (bpf_tc_query(&hook, &q) < 0)
		return 0;
	return q.prog_id;
}

static void test_veth_attach_detach(void **state)
{
	struct shoal_err err = {};
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	int idx;

	assert_int_equal(system("ip link add lbfwdt0 type veth peer name lbfwdt1"), 0);
	idx = (int)if_nametoindex("lbfwdt0");
	assert_true(idx > 0);

	assert_int_equal(lb_veth_attach(fwd, idx, &err), 0);
	assert_int_equal(lb_veth_attach(fwd, idx, &err), 0); /* replaced in place */
	assert_int_equal(bpf_obj_get_info_by_fd(lb_fwd_prog_fd(fwd), &info, &len), 0);
	assert_int_equal(ingress_prog_id(idx), info.id);

	assert_int_equal(lb_veth_detach(fwd, idx, &err), 0);
	assert_int_equal(ingress_prog_id(idx), 0);
	assert_int_equal(lb_veth_detach(fwd, idx, &err), 0);

	/* Gone with the interface: detaching is not an error. */
	assert_int_equal(lb_veth_attach(fwd, idx, &err), 0);
	assert_int_equal(system("ip link del lbfwdt0"), 0);
	assert_int_equal(lb_veth_detach(fwd, idx, &err), 0);
	assert_int_equal(lb_veth_attach(fwd, 0, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forward_local_redirects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_remote_routed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_ttl_expiring_routed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_slots_follow_changes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reply_redirected_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_others_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_follows_forward_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_carries_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_veth_attach_detach, setup, teardown),
	};
	const struct CMUnitTest fallback_tests[] = {
		cmocka_unit_test(test_fallback_routes),
	};
	struct lb_feature_status features[LB_FEAT_MAX];
	uint32_t disable = 0;
	int r = bpf_test_prepare("shoal-lbfwdtest", false);

	if (r != 0)
		return r;
	if (lb_features_parse(getenv(LB_DISABLE_ENV), &disable, NULL) < 0)
		return 1;
	lb_features_probe(disable, features);
	if (features[LB_FEAT_HOST_ROUTING].state != LB_FEATURE_ON)
		return cmocka_run_group_tests(fallback_tests, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
