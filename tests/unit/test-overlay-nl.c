// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <cmocka.h>
#include <libmnl/libmnl.h>

#include "overlay/bridge-internal.h"
#include "overlay/nl-internal.h"

struct tb {
	const struct nlattr *a[64];
};

static int tb_cb(const struct nlattr *attr, void *data)
{
	struct tb *t = data;
	int type = mnl_attr_get_type(attr);
	if (type < 64)
		t->a[type] = attr;
	return MNL_CB_OK;
}

static void parse(const struct nlmsghdr *nlh, size_t hdr, struct tb *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(mnl_attr_parse(nlh, (unsigned int)hdr, tb_cb, t), MNL_CB_OK);
}

static void parse_nested(const struct nlattr *nest, struct tb *t)
{
	memset(t, 0, sizeof(*t));
	assert_non_null(nest);
	assert_int_equal(mnl_attr_parse_nested(nest, tb_cb, t), MNL_CB_OK);
}

/* VETH_INFO_PEER holds an ifinfomsg, then the peer's attributes. */
static void parse_peer(const struct nlattr *p, struct tb *t)
{
	memset(t, 0, sizeof(*t));
	const char *start =
		(const char *)mnl_attr_get_payload(p) + NLMSG_ALIGN(sizeof(struct ifinfomsg));
	int left = (int)((const char *)p + p->nla_len - start);
	for (const struct nlattr *a = (const void *)start; mnl_attr_ok(a, left);
	     a = mnl_attr_next(a)) {
		left -= (int)MNL_ALIGN(a->nla_len);
		t->a[mnl_attr_get_type(a)] = a;
	}
	assert_true(left <= 0);
}

static struct in_addr A(const char *s) {
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void
test_veth(void **state)
{
	static char buf[NL_BUF_SIZE];
	const uint8_t mac[6] = {0x02, 0x42, 10, 213, 0, 7};
	struct nl_veth_spec spec = {
		.ifname = "shoalv0123abcd",
		.master = 42,
		.mtu = 1450,
		.peer_ifname = "eth0",
		.peer_netns_fd = 17,
		.peer_mac = mac,
	};
	struct nlmsghdr *nlh = nl_build_veth_new(buf, &spec);
	assert_int_equal(nlh->nlmsg_type, RTM_NEWLINK);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
	assert_true(nlh->nlmsg_len < NL_BUF_SIZE);
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifi->ifi_index, 0);
	assert_int_equal(ifi->ifi_flags & IFF_UP, IFF_UP);
	assert_int_equal(ifi->ifi_change & IFF_UP, IFF_UP);

	struct tb t, li, data, peer;
	parse(nlh, sizeof(*ifi), &t);
	assert_string_equal(mnl_attr_get_str(t.a[IFLA_IFNAME]), "shoalv0123abcd");
	assert_int_equal(mnl_attr_get_u32(t.a[IFLA_MASTER]), 42);
	assert_int_equal(mnl_attr_get_u32(t.a[IFLA_MTU]), 1450);
	assert_null(t.a[IFLA_NET_NS_FD]);

	parse_nested(t.a[IFLA_LINKINFO], &li);
	assert_string_equal(mnl_attr_get_str(li.a[IFLA_INFO_KIND]), "veth");
	parse_nested(li.a[IFLA_INFO_DATA], &data);
	const struct nlattr *p = data.a[VETH_INFO_PEER];
	assert_non_null(p);
	/* VETH_INFO_PEER is an ifinfomsg followed by attributes. */
	assert_true(mnl_attr_get_payload_len(p) > sizeof(struct ifinfomsg));
	const struct ifinfomsg *pifi = mnl_attr_get_payload(p);
	assert_int_equal(pifi->ifi_family, AF_UNSPEC);
	assert_int_equal(pifi->ifi_index, 0);
	parse_peer(p, &peer);
	assert_string_equal(mnl_attr_get_str(peer.a[IFLA_IFNAME]), "eth0");
	assert_int_equal(mnl_attr_get_u32(peer.a[IFLA_NET_NS_FD]), 17);
	assert_int_equal(mnl_attr_get_u32(peer.a[IFLA_MTU]), 1450);
	assert_int_equal(mnl_attr_get_payload_len(peer.a[IFLA_ADDRESS]), 6);
	assert_memory_equal(mnl_attr_get_payload(peer.a[IFLA_ADDRESS]), mac, 6);

	/* Without a netns fd, master or MAC those attributes are absent. */
	spec.peer_netns_fd = -1;
	spec.master = 0;
	spec.peer_mac = NULL;
	spec.mtu = 0;
	nlh = nl_build_veth_new(buf, &spec);
	parse(nlh, sizeof(*ifi), &t);
	assert_null(t.a[IFLA_MASTER]);
	assert_null(t.a[IFLA_MTU]);
	parse_nested(t.a[IFLA_LINKINFO], &li);
	parse_nested(li.a[IFLA_INFO_DATA], &data);
	p = data.a[VETH_INFO_PEER];
	parse_peer(p, &peer);
	assert_non_null(peer.a[IFLA_IFNAME]);
	assert_null(peer.a[IFLA_NET_NS_FD]);
	assert_null(peer.a[IFLA_ADDRESS]);
}

static void test_bridge_parse_back(void **state)
{
	static char buf[NL_BUF_SIZE];
	const uint8_t mac[6] = {0x02, 0x42, 10, 213, 0, 1};
	struct nlmsghdr *nlh = nl_build_bridge_new(buf, "shoal0", 1500, mac);
	assert_int_equal(nlh->nlmsg_type, RTM_NEWLINK);
	assert_true(nlh->nlmsg_flags & NLM_F_CREATE);

	/* The request has the shape of the kernel's answer: parse it as one. */
	struct nl_link l;
	assert_int_equal(nl_parse_link(nlh, &l), 0);
	assert_string_equal(l.ifname, "shoal0");
	assert_string_equal(l.kind, "bridge");
	assert_int_equal(l.mtu, 1500);
	assert_true(l.has_mac);
	assert_memory_equal(l.mac, mac, 6);
	assert_int_equal(l.flags & IFF_UP, IFF_UP);
	assert_int_equal(l.master, 0);

	nlh = nl_build_bridge_new(buf, "x0", 0, NULL);
	assert_int_equal(nl_parse_link(nlh, &l), 0);
	assert_int_equal(l.mtu, 0);
	assert_false(l.has_mac);

	/* Not a link message. */
	nlh = nl_build_addr_dump(buf);
	assert_int_equal(nl_parse_link(nlh, &l), -EBADMSG);
}

static void test_link_set_del_get(void **state)
{
	static char buf[NL_BUF_SIZE];
	struct tb t;
	struct nlmsghdr *nlh = nl_build_link_set(buf, 7, "ignored", 1, 9000);
	assert_int_equal(nlh->nlmsg_type, RTM_SETLINK);
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifi->ifi_index, 7);
	assert_int_equal(ifi->ifi_flags, IFF_UP);
	assert_int_equal(ifi->ifi_change, IFF_UP);
	parse(nlh, sizeof(*ifi), &t);
	assert_null(t.a[IFLA_IFNAME]); /* the index selects */
	assert_int_equal(mnl_attr_get_u32(t.a[IFLA_MTU]), 9000);

	nlh = nl_build_link_set(buf, 0, "eth0", 0, 0);
	ifi = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifi->ifi_flags, 0);
	assert_int_equal(ifi->ifi_change, IFF_UP);
	parse(nlh, sizeof(*ifi), &t);
	assert_string_equal(mnl_attr_get_str(t.a[IFLA_IFNAME]), "eth0");
	assert_null(t.a[IFLA_MTU]);

	nlh = nl_build_link_set(buf, 3, NULL, -1, 0);
	ifi = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifi->ifi_change, 0);

	nlh = nl_build_link_del(buf, 0, "shoalvdeadbeef");
	assert_int_equal(nlh->nlmsg_type, RTM_DELLINK);
	parse(nlh, sizeof(*ifi), &t);
	assert_string_equal(mnl_attr_get_str(t.a[IFLA_IFNAME]), "shoalvdeadbeef");

	nlh = nl_build_link_get(buf, "lo");
	assert_int_equal(nlh->nlmsg_type, RTM_GETLINK);
	assert_false(nlh->nlmsg_flags & NLM_F_DUMP);
	parse(nlh, sizeof(*ifi), &t);
	assert_string_equal(mnl_attr_get_str(t.a[IFLA_IFNAME]), "lo");
	assert_int_equal(mnl_attr_get_u32(t.a[IFLA_EXT_MASK]), RTEXT_FILTER_SKIP_STATS);

	nlh = nl_build_link_dump(buf);
	assert_int_equal(nlh->nlmsg_flags & NLM_F_DUMP, NLM_F_DUMP);
}

static void test_addr(void **state)
{
	static char buf[NL_BUF_SIZE];
	struct nlmsghdr *nlh = nl_build_addr_new(buf, 9, A("10.213.0.7"), 16, A("10.213.255.255"));
	assert_int_equal(nlh->nlmsg_type, RTM_NEWADDR);
	assert_true(nlh->nlmsg_flags & NLM_F_EXCL);
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifa->ifa_family, AF_INET);
	assert_int_equal(ifa->ifa_index, 9);
	assert_int_equal(ifa->ifa_prefixlen, 16);
	struct tb t;
	parse(nlh, sizeof(*ifa), &t);
	struct in_addr brd;
	memcpy(&brd, mnl_attr_get_payload(t.a[IFA_BROADCAST]), 4);
	assert_int_equal(brd.s_addr, A("10.213.255.255").s_addr);

	struct nl_addr a;
	assert_int_equal(nl_parse_addr(nlh, &a), 0);
	assert_int_equal(a.ifindex, 9);
	assert_int_equal(a.prefixlen, 16);
	assert_int_equal(a.addr.s_addr, A("10.213.0.7").s_addr);

	nlh = nl_build_addr_new(buf, 9, A("10.0.0.2"), 30, (struct in_addr){0});
	parse(nlh, sizeof(*ifa), &t);
	assert_null(t.a[IFA_BROADCAST]);
}

static void test_route(void **state)
{
	static char buf[NL_BUF_SIZE];
	struct nlmsghdr *nlh = nl_build_route_default(buf, A("10.213.0.1"), 5);
	assert_int_equal(nlh->nlmsg_type, RTM_NEWROUTE);
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(rtm->rtm_family, AF_INET);
	assert_int_equal(rtm->rtm_dst_len, 0);
	assert_int_equal(rtm->rtm_table, RT_TABLE_MAIN);
	assert_int_equal(rtm->rtm_type, RTN_UNICAST);
	struct tb t;
	parse(nlh, sizeof(*rtm), &t);
	assert_null(t.a[RTA_DST]);

	struct nl_route rt;
	assert_int_equal(nl_parse_route(nlh, &rt), 0);
	assert_int_equal(rt.dst_len, 0);
	assert_int_equal(rt.oif, 5);
	assert_int_equal(rt.table, RT_TABLE_MAIN);
	assert_int_equal(rt.gateway.s_addr, A("10.213.0.1").s_addr);
}

/* Several requests laid end to end form one batch, as nl_sock_transact sends them. */
static void test_batch_layout(void **state)
{
	static char buf[NL_BUF_SIZE];
	size_t off = nl_build_link_set(buf, 1, NULL, 1, 0)->nlmsg_len;
	off += nl_build_link_set(buf + off, 2, NULL, 1, 0)->nlmsg_len;
	off += nl_build_addr_new(buf + off, 2, A("10.0.0.2"), 24, A("10.0.0.255"))->nlmsg_len;
	off += nl_build_route_default(buf + off, A("10.0.0.1"), 2)->nlmsg_len;
	int types[4], n = 0, left = (int)off;
	for (const struct nlmsghdr *nlh = (void *)buf; mnl_nlmsg_ok(nlh, left);
	     nlh = mnl_nlmsg_next(nlh, &left))
		types[n++] = nlh->nlmsg_type;
	assert_int_equal(n, 4);
	assert_int_equal(left, 0);
	assert_int_equal(types[0], RTM_SETLINK);
	assert_int_equal(types[2], RTM_NEWADDR);
	assert_int_equal(types[3], RTM_NEWROUTE);
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	return nl_parse_link(nlh, data);
}

/* Read-only requests to the kernel, allowed without privileges: a reply is
 * matched and parsed, a missing link is an error, a batch is answered in full. */
static void test_transact_kernel(void **state)
{
	static char buf[NL_BUF_SIZE];
	struct nl_sock s;
	if (nl_sock_open(&s) < 0)
		skip();
	struct nl_link l = {0};
	struct nlmsghdr *nlh = nl_build_link_get(buf, "lo");
	int r = nl_sock_transact(&s, buf, nlh->nlmsg_len, link_cb, &l, NULL, 0);
	assert_int_equal(r, 0);
	assert_int_equal(l.ifindex, 1);
	assert_string_equal(l.ifname, "lo");

	char ext[256];
	nlh = nl_build_link_get(buf, "nonexistent-x9");
	r = nl_sock_transact(&s, buf, nlh->nlmsg_len, NULL, NULL, ext, sizeof(ext));
	assert_int_equal(r, -ENODEV);

	size_t off = nl_build_link_get(buf, "nonexistent-x9")->nlmsg_len;
	off += nl_build_link_get(buf + off, "lo")->nlmsg_len;
	memset(&l, 0, sizeof(l));
	r = nl_sock_transact(&s, buf, off, link_cb, &l, NULL, 0);
	assert_int_equal(r, -ENODEV);
	/* the socket is still in step: the next request gets its own answer */
	nlh = nl_build_link_get(buf, "lo");
	memset(&l, 0, sizeof(l));
	assert_int_equal(nl_sock_transact(&s, buf, nlh->nlmsg_len, link_cb, &l, NULL, 0), 0);
	assert_int_equal(l.ifindex, 1);
	nl_sock_close(&s);
}

static void test_host_ifname(void **state)
{
	char n[16];
	bridge_host_ifname("shoal", "0123abcdef999", n);
	assert_string_equal(n, "shoalv0123abcd");
	assert_true(bridge_is_host_ifname("shoal", n));
	assert_false(bridge_is_host_ifname("shoa", n));
	assert_false(bridge_is_host_ifname("shoal", "shoal0"));
	assert_false(bridge_is_host_ifname("shoal", "shoalv"));
	assert_false(bridge_is_host_ifname("shoal", "shoalvvabc"));

	/* a long prefix gets a shorter hash that still fits and still matches */
	bridge_host_ifname("abcdefgh", "0123abcdef999", n);
	assert_int_equal(strlen(n), 15);
	assert_true(bridge_is_host_ifname("abcdefgh", n));
	char n2[16];
	bridge_host_ifname("abcdefgh", "0123abcdef998", n2);
	assert_string_not_equal(n, n2);

	/* ids that are not hex are hashed */
	bridge_host_ifname("s", "web-1", n);
	assert_int_equal(strlen(n), 10);
	assert_true(bridge_is_host_ifname("s", n));
	bridge_host_ifname("s", "web-2", n2);
	assert_string_not_equal(n, n2);
	/* upper-case hex is not ours either */
	bridge_host_ifname("s", "ABCDEF0123", n);
	assert_true(bridge_is_host_ifname("s", n));
}

static void test_nft_scan(void **state)
{
	char text[] = "table inet filter { # handle 3\n"
		      "\tchain input { # handle 1\n"
		      "\t\ttype filter hook input priority filter; policy drop;\n"
		      "\t}\n"
		      "\tchain forward { # handle 2\n"
		      "\t\ttype filter hook forward priority filter; policy drop;\n"
		      "\t\tip saddr 10.9.0.0/16 accept comment \"tst_fwd\" # handle 7\n"
		      "\t\tip daddr 10.9.0.0/16 accept comment \"tst_fwd\" # handle 8\n"
		      "\t\tip daddr 10.9.0.0/16 accept comment \"other_fwd\" # handle 9\n"
		      "\t}\n"
		      "}\n"
		      "table ip filter { # handle 4\n"
		      "\tchain FORWARD { # handle 1\n"
		      "\t\ttype filter hook forward priority filter; policy drop;\n"
		      "\t}\n"
		      "}\n"
		      "table bridge b { # handle 5\n"
		      "\tchain forward { # handle 1\n"
		      "\t\ttype filter hook forward priority filter; policy drop;\n"
		      "\t}\n"
		      "}\n"
		      "table ip t2 { # handle 6\n"
		      "\tchain fw { # handle 1\n"
		      "\t\ttype filter hook forward priority 10; policy accept;\n"
		      "\t}\n"
		      "\tchain fw2 { # handle 2\n"
		      "\t\ttype filter hook forward priority 20; policy drop;\n"
		      "\t}\n"
		      "}\n";
	struct bridge_nft_scan sc;
	memset(&sc, 0, sizeof(sc));
	bridge_nft_scan_ruleset(text, "tst_fwd", &sc);
	assert_int_equal(sc.n_drop_fwd, 2);
	assert_string_equal(sc.drop_fwd[0].family, "inet");
	assert_string_equal(sc.drop_fwd[0].table, "filter");
	assert_string_equal(sc.drop_fwd[0].chain, "forward");
	assert_string_equal(sc.drop_fwd[1].family, "ip");
	assert_string_equal(sc.drop_fwd[1].table, "t2");
	assert_string_equal(sc.drop_fwd[1].chain, "fw2");
	assert_int_equal(sc.n_ours, 2);
	assert_int_equal(sc.ours[0].handle, 7);
	assert_int_equal(sc.ours[1].handle, 8);
	assert_string_equal(sc.ours[1].c.chain, "forward");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_veth),
		cmocka_unit_test(test_bridge_parse_back),
		cmocka_unit_test(test_link_set_del_get),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_batch_layout),
		cmocka_unit_test(test_transact_kernel),
		cmocka_unit_test(test_host_ifname),
		cmocka_unit_test(test_nft_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
