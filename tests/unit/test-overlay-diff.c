// SPDX-License-Identifier: Apache-2.0
/* The VXLAN network diff, offline: observed kernel state in, ordered
 * operations out. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <cmocka.h>
#include <libmnl/libmnl.h>

#include "overlay/vxlan-internal.h"
#include "overlay/vxlan.h"

#define N_REMOTES 3

static struct in_addr A(const char *s) {
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

struct fixture {
	struct vxlan_net net;
	struct vxlan_remote remotes[N_REMOTES];
	struct vxlan_observed have;
	struct vxlan_fdb_entry fdb[16];
	struct vxlan_neigh_entry neigh[16];
	struct vxlan_addr_entry addrs[8];
	struct vxlan_plan plan;
	struct shoal_err err;
};

static void remote(struct vxlan_remote *r, const char *ip, const char *vtep)
{
	r->ip = A(ip);
	r->vtep = A(vtep);
	vxlan_mac_from_addr(r->ip, r->mac);
}

/* A network and a kernel that already has exactly it. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vxlan_net *n = &f->net;

	assert_non_null(f);
	snprintf(n->id, sizeof(n->id), "net-blue");
	n->vni = 4242;
	assert_int_equal(vxlan_net_ifnames("shoal", n->id, n->bridge, n->vxlan, NULL), 0);
	snprintf(n->underlay, sizeof(n->underlay), "eth0");
	n->local = A("192.0.2.1");
	n->gateway = A("10.20.0.1");
	n->prefixlen = 24;
	remote(&f->remotes[0], "10.20.0.2", "192.0.2.2");
	remote(&f->remotes[1], "10.20.0.3", "192.0.2.3");
	remote(&f->remotes[2], "10.20.0.4", "192.0.2.2");
	n->remotes = f->remotes;
	n->n_remotes = N_REMOTES;
	assert_int_equal(vxlan_net_check(n, &f->err), 0);

	struct vxlan_observed *h = &f->have;
	h->underlay_ifindex = 2;
	h->underlay_mtu = 1500;
	h->bridge = (struct vxlan_link_state){
		.exists = true, .ifindex = 10, .kind = "bridge", .up = true, .mtu = 1450};
	vxlan_mac_from_addr(n->gateway, h->bridge.mac);
	h->vxlan = (struct vxlan_link_state){.exists = true,
					     .ifindex = 11,
					     .kind = "vxlan",
					     .up = true,
					     .mtu = 1450,
					     .master = 10,
					     .vni = 4242,
					     .local = n->local,
					     .port = 4789,
					     .link = 2,
					     .proxy = true};
	for (size_t i = 0; i < N_REMOTES; i++) {
		memcpy(f->fdb[i].mac, f->remotes[i].mac, 6);
		f->fdb[i].dst = f->remotes[i].vtep;
		f->fdb[i].state = NUD_PERMANENT;
		f->neigh[i].ip = f->remotes[i].ip;
		memcpy(f->neigh[i].mac, f->remotes[i].mac, 6);
		f->neigh[i].has_mac = true;
		f->neigh[i].state = NUD_PERMANENT;
	}
	h->fdb = f->fdb;
	h->n_fdb = N_REMOTES;
	h->neigh = f->neigh;
	h->n_neigh = N_REMOTES;
	f->addrs[0] = (struct vxlan_addr_entry){.addr = n->gateway, .prefixlen = 24};
	h->addrs = f->addrs;
	h->n_addrs = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vxlan_plan_clear(&f->plan);
	free(f);
	return 0;
}

static void diff(struct fixture *f)
{
	vxlan_plan_clear(&f->plan);
	int r = vxlan_diff(&f->net, &f->have, &f->plan, &f->err);
	if (r < 0)
		fail_msg("diff failed: %s", f->err.msg);
}

/* The plan as "kind kind kind". */
static const char *kinds(const struct vxlan_plan *p)
{
	static char buf[1024];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? " " : "",
					vxlan_op_name(p->ops[i].kind));
	return buf;
}

static void test_in_sync_no_ops(void **state)
{
	struct fixture *f = *state;

	diff(f);
	assert_int_equal(f->plan.n, 0);
	assert_int_equal(f->plan.mtu, 1450);
}

static void test_empty_kernel(void **state)
{
	struct fixture *f = *state;

	memset(&f->have.bridge, 0, sizeof(f->have.bridge));
	memset(&f->have.vxlan, 0, sizeof(f->have.vxlan));
	f->have.n_fdb = f->have.n_neigh = f->have.n_addrs = 0;
	diff(f);
	assert_string_equal(kinds(&f->plan),
			    "bridge-add addr-add vxlan-add fdb-set fdb-set fdb-set "
			    "neigh-set neigh-set neigh-set");
	const struct vxlan_op *br = &f->plan.ops[0];
	assert_int_equal(br->mtu, 1450);
	uint8_t mac[6] = {0x02, 0x42, 10, 20, 0, 1};
	assert_memory_equal(br->mac, mac, 6);
	assert_int_equal(f->plan.ops[1].ip.s_addr, A("10.20.0.1").s_addr);
	assert_int_equal(f->plan.ops[1].prefixlen, 24);
	assert_int_equal(f->plan.ops[2].mtu, 1450);
	/* FDB entries sorted by MAC, each to its endpoint's VTEP. */
	for (int i = 0; i < N_REMOTES; i++) {
		const struct vxlan_op *op = &f->plan.ops[3 + i];
		assert_memory_equal(op->mac, f->remotes[i].mac, 6);
		assert_int_equal(op->dst.s_addr, f->remotes[i].vtep.s_addr);
		const struct vxlan_op *ne = &f->plan.ops[6 + i];
		assert_int_equal(ne->ip.s_addr, f->remotes[i].ip.s_addr);
		assert_memory_equal(ne->mac, f->remotes[i].mac, 6);
	}
	struct vxlan_apply_stats s;
	vxlan_plan_stats(&f->plan, &s);
	assert_int_equal(s.ops, 9);
	assert_int_equal(s.links_created, 2);
	assert_int_equal(s.fdb_changed, 3);
	assert_int_equal(s.neigh_changed, 3);
	assert_int_equal(s.addrs_changed, 1);
	assert_int_equal(s.mtu, 1450);
}

static void test_vxlan_deleted(void **state)
{
	struct fixture *f = *state;

	/* The kernel takes the device's FDB and neighbour entries with it. */
	memset(&f->have.vxlan, 0, sizeof(f->have.vxlan));
	f->have.n_fdb = f->have.n_neigh = 0;
	diff(f);
	assert_string_equal(kinds(&f->plan), "vxlan-add fdb-set fdb-set fdb-set neigh-set "
					     "neigh-set neigh-set");
}

static void test_vxlan_wrong_mtu(void **state)
{
	struct fixture *f = *state;

	f->have.vxlan.mtu = 1400;
	diff(f);
	assert_string_equal(kinds(&f->plan), "vxlan-set");
	assert_int_equal(f->plan.ops[0].mtu, 1450);
	assert_false(f->plan.ops[0].set_master);
	assert_false(f->plan.ops[0].set_up);
}

static void test_bridge_wrong_mtu_and_down(void **state)
{
	struct fixture *f = *state;

	f->have.bridge.mtu = 1500;
	f->have.bridge.up = false;
	diff(f);
	assert_string_equal(kinds(&f->plan), "bridge-set");
	assert_int_equal(f->plan.ops[0].mtu, 1450);
	assert_true(f->plan.ops[0].set_up);
	assert_false(f->plan.ops[0].set_mac);
}

static void spoil(struct vxlan_link_state *v, int what)
{
	switch (what) {
	case 0:
		v->vni = 4243;
		break;
	case 1:
		v->port = 8472;
		break;
	case 2:
		v->local.s_addr = htonl(0xc0000209);
		break;
	case 3:
		v->link = 3;
		break;
	case 4:
		v->learning = true;
		break;
	case 5:
		v->proxy = false;
		break;
	case 6:
		v->l2miss = true;
		break;
	case 7:
		v->has_group = true;
		break;
	case 8:
		v->metadata = true;
		break;
	case 9:
		snprintf(v->kind, sizeof(v->kind), "dummy");
		break;
	}
}

static void test_vxlan_recreated_for_attrs(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 10; i++) {
		struct vxlan_link_state saved = f->have.vxlan;

		spoil(&f->have.vxlan, i);
		diff(f);
		/* The old device's entries die with it: all set again. */
		if (strcmp(kinds(&f->plan), "vxlan-del vxlan-add fdb-set fdb-set fdb-set neigh-set "
					    "neigh-set neigh-set") != 0)
			fail_msg("case %d: plan %s", i, kinds(&f->plan));
		assert_non_null(f->plan.ops[0].why);
		f->have.vxlan = saved;
	}
}

static void test_fdb_drift(void **state)
{
	struct fixture *f = *state;
	struct vxlan_fdb_entry *e = f->fdb;

	/* [0] missing, [1] pointing at the wrong VTEP, [2] not permanent, a
	 * stray entry, and an all-zero default entry. */
	e[0] = f->fdb[2];
	e[0].state = NUD_REACHABLE;
	e[2] = (struct vxlan_fdb_entry){
		.mac = {0x02, 0x42, 10, 20, 0, 99}, .dst = A("192.0.2.9"), .state = NUD_PERMANENT};
	e[1].dst = A("192.0.2.7");
	e[3] = (struct vxlan_fdb_entry){.dst = A("192.0.2.3"), .state = NUD_PERMANENT};
	f->have.n_fdb = 4;
	diff(f);
	assert_string_equal(kinds(&f->plan), "fdb-del fdb-del fdb-del fdb-set fdb-set fdb-set");
	/* Deletions come sorted by MAC: the zero MAC, the wrong remote, the stray. */
	const uint8_t zero[6] = {0};
	assert_memory_equal(f->plan.ops[0].mac, zero, 6);
	assert_memory_equal(f->plan.ops[1].mac, f->remotes[1].mac, 6);
	assert_int_equal(f->plan.ops[1].dst.s_addr, A("192.0.2.7").s_addr);
	assert_int_equal(f->plan.ops[2].mac[5], 99);
	assert_memory_equal(f->plan.ops[3].mac, f->remotes[0].mac, 6);
	assert_memory_equal(f->plan.ops[4].mac, f->remotes[1].mac, 6);
	assert_int_equal(f->plan.ops[4].dst.s_addr, f->remotes[1].vtep.s_addr);
	assert_memory_equal(f->plan.ops[5].mac, f->remotes[2].mac, 6);
}

static void test_fdb_two_remotes_for_one_mac(void **state)
{
	struct fixture *f = *state;

	/* An appended second remote for an endpoint's MAC: only it goes. */
	f->fdb[3] = f->fdb[0];
	f->fdb[3].dst = A("192.0.2.8");
	f->have.n_fdb = 4;
	diff(f);
	assert_string_equal(kinds(&f->plan), "fdb-del");
	assert_int_equal(f->plan.ops[0].dst.s_addr, A("192.0.2.8").s_addr);
}

static void test_neigh_drift(void **state)
{
	struct fixture *f = *state;

	f->neigh[0].mac[5] ^= 1;	  /* wrong MAC */
	f->neigh[1].state = NUD_STALE;	  /* not permanent */
	f->neigh[2].ip = A("10.20.0.77"); /* stray, and [2] missing */
	f->neigh[3] = f->neigh[1];	  /* a second entry for the same IP */
	f->neigh[3].state = NUD_PERMANENT;
	f->have.n_neigh = 4;
	diff(f);
	assert_string_equal(kinds(&f->plan), "neigh-del neigh-set neigh-set");
	assert_int_equal(f->plan.ops[0].ip.s_addr, A("10.20.0.77").s_addr);
	assert_int_equal(f->plan.ops[1].ip.s_addr, f->remotes[0].ip.s_addr);
	assert_memory_equal(f->plan.ops[1].mac, f->remotes[0].mac, 6);
	assert_int_equal(f->plan.ops[2].ip.s_addr, f->remotes[2].ip.s_addr);
}

static void test_addr_drift(void **state)
{
	struct fixture *f = *state;

	f->addrs[0].prefixlen = 16;
	f->addrs[1] = (struct vxlan_addr_entry){.addr = A("10.20.0.200"), .prefixlen = 24};
	f->have.n_addrs = 2;
	diff(f);
	assert_string_equal(kinds(&f->plan), "addr-del addr-del addr-add");
	assert_int_equal(f->plan.ops[0].prefixlen, 16);
	assert_int_equal(f->plan.ops[2].prefixlen, 24);
	assert_int_equal(f->plan.ops[2].ip.s_addr, A("10.20.0.1").s_addr);
}

static void test_bridge_deleted(void **state)
{
	struct fixture *f = *state;

	/* The vxlan device survives its bridge, out of it. */
	memset(&f->have.bridge, 0, sizeof(f->have.bridge));
	f->have.vxlan.master = 0;
	f->have.n_addrs = 0;
	diff(f);
	assert_string_equal(kinds(&f->plan), "bridge-add addr-add vxlan-set");
	assert_true(f->plan.ops[2].set_master);
	assert_int_equal(f->plan.ops[2].mtu, 0);
}

static void test_bridge_name_taken(void **state)
{
	struct fixture *f = *state;

	snprintf(f->have.bridge.kind, sizeof(f->have.bridge.kind), "dummy");
	diff(f);
	assert_string_equal(kinds(&f->plan), "bridge-del bridge-add addr-add vxlan-set");
	assert_true(f->plan.ops[3].set_master);
}

static void test_mtu(void **state)
{
	struct fixture *f = *state;

	/* Default: the underlay's minus 50, also on a jumbo underlay. */
	f->have.underlay_mtu = 9000;
	diff(f);
	assert_int_equal(f->plan.mtu, 8950);
	assert_string_equal(kinds(&f->plan), "bridge-set vxlan-set");

	f->net.mtu = 1400;
	f->have.underlay_mtu = 1500;
	diff(f);
	assert_int_equal(f->plan.mtu, 1400);

	f->net.mtu = 1451;
	vxlan_plan_clear(&f->plan);
	assert_int_equal(vxlan_diff(&f->net, &f->have, &f->plan, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "at most 1450"));

	f->net.mtu = 0;
	f->have.underlay_ifindex = 0;
	assert_int_equal(vxlan_diff(&f->net, &f->have, &f->plan, &f->err), -ENODEV);
	assert_non_null(strstr(f->err.msg, "underlay device eth0 not found"));
}

static int cmp_rev(const void *a, const void *b)
{
	return -memcmp(a, b, 6);
}

static void test_dump_order_irrelevant(void **state)
{
	struct fixture *f = *state;
	char first[1024];

	f->fdb[3] = (struct vxlan_fdb_entry){.mac = {0x02, 0, 0, 0, 0, 1}, .dst = A("192.0.2.5")};
	f->fdb[4] = (struct vxlan_fdb_entry){.mac = {0x02, 0, 0, 0, 0, 2}, .dst = A("192.0.2.5")};
	f->have.n_fdb = 5;
	diff(f);
	snprintf(first, sizeof(first), "%s", kinds(&f->plan));
	uint8_t m1 = f->plan.ops[0].mac[5];
	qsort(f->fdb, 5, sizeof(f->fdb[0]), cmp_rev);
	diff(f);
	assert_string_equal(kinds(&f->plan), first);
	assert_int_equal(f->plan.ops[0].mac[5], m1);
}

static void test_duplicate_remotes(void **state)
{
	struct fixture *f = *state;
	struct vxlan_remote r[4];

	memcpy(r, f->remotes, sizeof(f->remotes));
	r[3] = r[1]; /* the same endpoint twice: allowed, programmed once */
	f->net.remotes = r;
	f->net.n_remotes = 4;
	assert_int_equal(vxlan_net_check(&f->net, &f->err), 0);
	diff(f);
	assert_int_equal(f->plan.n, 0);
	f->have.n_fdb = f->have.n_neigh = 0;
	diff(f);
	assert_string_equal(kinds(&f->plan), "fdb-set fdb-set fdb-set neigh-set neigh-set "
					     "neigh-set");

	r[3].mac[5] ^= 1; /* same IP, another MAC */
	assert_int_equal(vxlan_net_check(&f->net, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "10.20.0.3 is given twice"));

	r[3] = r[1];
	r[3].ip = A("10.20.0.50");
	r[3].vtep = A("192.0.2.9"); /* same MAC behind another VTEP */
	assert_int_equal(vxlan_net_check(&f->net, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "behind two VTEPs"));
}

static void expect_bad(struct fixture *f, const char *needle)
{
	int r = vxlan_net_check(&f->net, &f->err);

	if (r != -EINVAL)
		fail_msg("expected -EINVAL for \"%s\", got %d (%s)", needle, r, f->err.msg);
	if (!strstr(f->err.msg, needle))
		fail_msg("\"%s\" not in \"%s\"", needle, f->err.msg);
}

static void test_check_refuses(void **state)
{
	struct fixture *f = *state;
	struct vxlan_net good = f->net;
	struct vxlan_remote r[N_REMOTES];

	f->net.vni = 0;
	expect_bad(f, "VNI 0 is outside");
	f->net = good;
	f->net.vni = 1u << 24;
	expect_bad(f, "is outside 1..16777215");
	f->net = good;
	f->net.prefixlen = 31;
	expect_bad(f, "prefix length /31");
	f->net = good;
	f->net.gateway = A("10.20.0.0");
	expect_bad(f, "network or broadcast");
	f->net = good;
	f->net.local = A("239.1.1.1");
	expect_bad(f, "not a unicast address");
	f->net = good;
	snprintf(f->net.vxlan, sizeof(f->net.vxlan), "%s", f->net.bridge);
	expect_bad(f, "three different names");
	f->net = good;
	f->net.bridge[0] = '\0';
	expect_bad(f, "bridge device name");
	f->net = good;
	f->net.mtu = 40;
	expect_bad(f, "MTU 40 is outside");

	memcpy(r, f->remotes, sizeof(r));
	f->net = good;
	f->net.remotes = r;
	r[0].ip = A("10.21.0.2");
	expect_bad(f, "not a host address of the network's subnet");
	r[0] = f->remotes[0];
	r[0].ip = A("10.20.0.255");
	expect_bad(f, "not a host address");
	r[0] = f->remotes[0];
	r[0].ip = good.gateway;
	expect_bad(f, "this node's gateway address");
	r[0] = f->remotes[0];
	r[0].vtep = good.local;
	expect_bad(f, "this node's own VTEP");
	r[0] = f->remotes[0];
	r[0].mac[0] = 0x01;
	expect_bad(f, "not a unicast address");
	r[0] = f->remotes[0];
	memset(r[0].mac, 0, 6);
	expect_bad(f, "not a unicast address");
	r[0] = f->remotes[0];
	r[0].vtep.s_addr = 0;
	expect_bad(f, "VTEP 0.0.0.0");

	f->net = good;
	f->net.n_remotes = VXLAN_REMOTES_MAX + 1;
	assert_int_equal(vxlan_net_check(&f->net, &f->err), -E2BIG);
	f->net = good;
}

static void test_ifnames(void **state)
{
	char b[IFNAMSIZ], x[IFNAMSIZ], b2[IFNAMSIZ], x2[IFNAMSIZ];
	struct shoal_err err = {0};

	assert_int_equal(vxlan_net_ifnames("shoal", "net-blue", b, x, &err), 0);
	assert_int_equal(strlen(b), IFNAMSIZ - 1);
	assert_int_equal(strlen(x), IFNAMSIZ - 1);
	assert_int_equal(strncmp(b, "shoaln", 6), 0);
	assert_int_equal(strncmp(x, "shoalx", 6), 0);
	assert_string_equal(b + 6, x + 6);
	/* Stable: the same id gives the same names on every run. */
	assert_int_equal(vxlan_net_ifnames("shoal", "net-blue", b2, x2, &err), 0);
	assert_string_equal(b, b2);
	assert_string_equal(x, x2);
	assert_int_equal(vxlan_net_ifnames("shoal", "net-red", b2, x2, &err), 0);
	assert_string_not_equal(b, b2);

	/* The longest prefix still fits, with 6 hex characters. */
	assert_int_equal(vxlan_net_ifnames("abcdefgh", "a/very long id, with spaces", b, x, &err),
			 0);
	assert_int_equal(strlen(b), IFNAMSIZ - 1);
	assert_true(vxlan_is_ifname("abcdefgh", b));
	assert_true(vxlan_is_ifname("abcdefgh", x));
	assert_false(vxlan_is_ifname("abcdefgh", "abcdefghv0123ab")); /* a bridge veth */
	assert_false(vxlan_is_ifname("abcdefgh", "abcdefgh0"));
	assert_false(vxlan_is_ifname("abcdefg", b));

	assert_int_equal(vxlan_net_ifnames("abcdefghi", "n", b, x, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "1 to 8 characters"));
	assert_int_equal(vxlan_net_ifnames("a-b", "n", b, x, &err), -EINVAL);
	assert_int_equal(vxlan_net_ifnames("shoal", "", b, x, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "network id"));
}

static void test_pinned_name(void **state)
{
	char b[IFNAMSIZ], x[IFNAMSIZ];

	/* sha256("net-blue") = 0bdb679f00e0c936...: names must not change
	 * between releases, or an upgrade would orphan every network's
	 * devices. */
	assert_int_equal(vxlan_net_ifnames("s", "net-blue", b, x, NULL), 0);
	assert_string_equal(b, "sn0bdb679f00e0c");
	assert_string_equal(x, "sx0bdb679f00e0c");
	assert_int_equal(vxlan_net_ifnames("shoal", "net-blue", b, x, NULL), 0);
	assert_string_equal(b, "shoaln0bdb679f0");
	(void)state;
}

static void test_describe(void **state)
{
	struct fixture *f = *state;
	char line[256];

	f->fdb[0].dst = A("192.0.2.7");
	diff(f);
	assert_string_equal(kinds(&f->plan), "fdb-del fdb-set");
	vxlan_op_describe(&f->plan.ops[1], line, sizeof(line));
	assert_string_equal(line, "fdb-set 02:42:0a:14:00:02 -> 192.0.2.2 (missing)");
	vxlan_op_describe(&f->plan.ops[0], line, sizeof(line));
	assert_string_equal(line, "fdb-del 02:42:0a:14:00:02 -> 192.0.2.7 (remote VTEP differs)");
}

struct fdb_attrs {
	const struct nlattr *a[NDA_MAX + 1];
};

static int fdb_attr_cb(const struct nlattr *attr, void *data)
{
	struct fdb_attrs *t = data;
	int type = mnl_attr_get_type(attr);

	if (type <= NDA_MAX)
		t->a[type] = attr;
	return MNL_CB_OK;
}

/* The FDB request, built without a kernel and parsed back: libnl leaves
 * NDA_DST out of AF_BRIDGE requests, which is why this one is hand-built. */
static void test_fdb_message(void **state)
{
	static char buf[8192];
	const uint8_t mac[6] = {0x02, 0x42, 10, 20, 0, 2};
	struct in_addr dst = A("192.0.2.2");

	for (int add = 1; add >= 0; add--) {
		struct nlmsghdr *nlh = vxlan_fdb_build(buf, add, 17, mac, dst);
		struct fdb_attrs t = {0};
		const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);

		assert_int_equal(nlh->nlmsg_type, add ? RTM_NEWNEIGH : RTM_DELNEIGH);
		assert_true(nlh->nlmsg_flags & NLM_F_REQUEST);
		/* create-or-replace: never "File exists" on a second run */
		assert_int_equal(!!(nlh->nlmsg_flags & NLM_F_REPLACE), add);
		assert_int_equal(!!(nlh->nlmsg_flags & NLM_F_CREATE), add);
		assert_false(nlh->nlmsg_flags & NLM_F_EXCL);
		assert_false(nlh->nlmsg_flags & NLM_F_APPEND);
		assert_int_equal(ndm->ndm_family, AF_BRIDGE);
		assert_int_equal(ndm->ndm_ifindex, 17);
		assert_int_equal(ndm->ndm_flags, NTF_SELF);
		if (add)
			assert_int_equal(ndm->ndm_state, NUD_PERMANENT);
		assert_int_equal(mnl_attr_parse(nlh, sizeof(*ndm), fdb_attr_cb, &t), MNL_CB_OK);
		assert_non_null(t.a[NDA_LLADDR]);
		assert_int_equal(mnl_attr_get_payload_len(t.a[NDA_LLADDR]), 6);
		assert_memory_equal(mnl_attr_get_payload(t.a[NDA_LLADDR]), mac, 6);
		assert_non_null(t.a[NDA_DST]);
		assert_int_equal(mnl_attr_get_payload_len(t.a[NDA_DST]), 4);
		assert_memory_equal(mnl_attr_get_payload(t.a[NDA_DST]), &dst, 4);
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_in_sync_no_ops),
		T(test_empty_kernel),
		T(test_vxlan_deleted),
		T(test_vxlan_wrong_mtu),
		T(test_bridge_wrong_mtu_and_down),
		T(test_vxlan_recreated_for_attrs),
		T(test_fdb_drift),
		T(test_fdb_two_remotes_for_one_mac),
		T(test_neigh_drift),
		T(test_addr_drift),
		T(test_bridge_deleted),
		T(test_bridge_name_taken),
		T(test_mtu),
		T(test_dump_order_irrelevant),
		T(test_duplicate_remotes),
		T(test_check_refuses),
		T(test_describe),
#undef T
		cmocka_unit_test(test_ifnames),
		cmocka_unit_test(test_pinned_name),
		cmocka_unit_test(test_fdb_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
