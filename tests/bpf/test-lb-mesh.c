// SPDX-License-Identifier: Apache-2.0
/* The routing mesh's return path, through BPF_PROG_TEST_RUN: the VXLAN
 * device's program notes a flow whose source is outside the network's
 * subnet with the sender's MAC, and the veth program sends that flow's
 * replies back to it through the VXLAN device; flows from inside the
 * subnet, other interfaces and other packets are left alone; the notes
 * survive a reopen on the same pins. Needs root; exits 77 when it cannot
 * load BPF programs. Runs in a private network namespace; a test run's skb
 * is on its loopback device (ifindex 1). */
#include <errno.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include "tests/bpf/lb-pkt.h"

#define LO 1

static char pin_dir[128];
static struct lb_mesh *mesh;
/* short grace and idle times, so that the tests see entries end */
#define GRACE_MS 100
static const struct lb_mesh_open_opts opts = {.pin_dir = pin_dir,
					      .close_grace_ns = GRACE_MS * 1000000ULL,
					      .udp_idle_ns = GRACE_MS * 1000000ULL};

static void wait_grace(void)
{
	usleep(2 * GRACE_MS * 1000);
}

static const uint8_t entry_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02}; /* build()'s source */
static const uint8_t other_mac[6] = {0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

static int run_fd(int prog_fd, const struct pkt *in, struct pkt *out)
{
	int err;
	int r = bpf_test_run_pkt(prog_fd, in, out, &err);

	assert_int_equal(err, 0);
	return r;
}

static int run_in(const struct pkt *in)
{
	struct pkt out;
	int r = run_fd(lb_mesh_in_fd(mesh), in, &out);

	/* the noting program never changes a packet */
	assert_int_equal(out.len, in->len);
	assert_memory_equal(out.b, in->b, in->len);
	return r;
}

static int run_out(const struct pkt *in, struct pkt *out)
{
	return run_fd(lb_mesh_out_fd(mesh), in, out);
}

static struct lb_mesh_counters counters(void)
{
	struct lb_mesh_counters c = {};

	assert_int_equal(lb_mesh_counters(mesh, &c), 0);
	return c;
}

static int setup(void **state)
{
	struct shoal_err err = {};

	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/shoal-lbmeshtest-%d", getpid());
	if (lb_mesh_open(&opts, &mesh, &err) < 0) {
		fprintf(stderr, "lb_mesh_open: %s\n", err.msg);
		return -1;
	}
	if (lb_mesh_net_attach(mesh, LO, A("10.77.0.0"), 24, &err) < 0) {
		fprintf(stderr, "lb_mesh_net_attach: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct shoal_err err = {};

	if (mesh)
		lb_mesh_net_detach(mesh, LO, &err);
	mesh = lb_mesh_close(mesh);
	lb_mesh_unpin(pin_dir);
	rmdir(pin_dir);
	return 0;
}

/* client 192.168.50.7:40000 -> task 10.77.0.5:80, as the entry node sends it */
static const struct pkt_spec fwd_tcp = {.proto = IPPROTO_TCP,
					.saddr = "192.168.50.7",
					.daddr = "10.77.0.5",
					.sport = 40000,
					.dport = 80,
					.payload = 10};
static const struct pkt_spec reply_tcp = {.proto = IPPROTO_TCP,
					  .saddr = "10.77.0.5",
					  .daddr = "192.168.50.7",
					  .sport = 80,
					  .dport = 40000,
					  .payload = 10,
					  .tcp_flags = 0x12};

static void assert_returned(const struct pkt *in, const uint8_t *mac)
{
	struct pkt out;

	assert_int_equal(run_out(in, &out), TC_ACT_REDIRECT);
	assert_int_equal(out.len, in->len);
	/* addressed to the entry node; the rest as the task sent it */
	assert_memory_equal(out.b, mac, ETH_ALEN);
	assert_memory_equal(out.b + ETH_ALEN, in->b + ETH_ALEN, in->len - ETH_ALEN);
}

static void assert_passed(const struct pkt *in)
{
	struct pkt out;

	assert_int_equal(run_out(in, &out), TC_ACT_UNSPEC);
	assert_int_equal(out.len, in->len);
	assert_memory_equal(out.b, in->b, in->len);
}

static void test_reply_goes_back_to_entry_node(void **state)
{
	struct pkt f, r;

	build(&fwd_tcp, &f);
	build(&reply_tcp, &r);
	assert_passed(&r); /* not noted yet */
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_int_equal(counters().noted, 1);
	assert_returned(&r, entry_mac);
	assert_returned(&r, entry_mac);
	assert_int_equal(counters().returned, 2);
	/* the same flow again: nothing written */
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_int_equal(counters().noted, 1);
}

/* The same flow over UDP, to port 53: forward f and reply r. */
static void build_udp(struct pkt *f, struct pkt *r)
{
	struct pkt_spec fs = fwd_tcp, rs = reply_tcp;

	fs.proto = rs.proto = IPPROTO_UDP;
	fs.dport = rs.sport = 53;
	build(&fs, f);
	build(&rs, r);
}

static void test_udp(void **state)
{
	struct pkt f, r;

	build_udp(&f, &r);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_returned(&r, entry_mac);
}

static void test_entry_node_moves(void **state)
{
	struct pkt f, r;

	build(&fwd_tcp, &f);
	build(&reply_tcp, &r);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	memcpy(f.b + ETH_ALEN, other_mac, ETH_ALEN);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_int_equal(counters().noted, 2);
	assert_returned(&r, other_mac);
}

static void test_subnet_sources_not_noted(void **state)
{
	struct pkt_spec fs = fwd_tcp, rs = reply_tcp;
	struct pkt f, r;

	/* east-west on the overlay: both ends on the network */
	fs.saddr = rs.daddr = "10.77.0.9";
	build(&fs, &f);
	build(&rs, &r);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_int_equal(counters().noted, 0);
	assert_passed(&r);
}

static void test_other_replies_untouched(void **state)
{
	struct pkt_spec rs = reply_tcp;
	struct pkt f, r;

	build(&fwd_tcp, &f);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	/* another client port, another protocol, a non-IP frame */
	rs.dport = 40001;
	build(&rs, &r);
	assert_passed(&r);
	rs = reply_tcp;
	rs.proto = IPPROTO_UDP;
	build(&rs, &r);
	assert_passed(&r);
	rs = reply_tcp;
	rs.ethertype = ETH_P_ARP;
	build(&rs, &r);
	assert_passed(&r);
	assert_int_equal(counters().returned, 0);
}

static void test_unknown_interface_not_noted(void **state)
{
	struct shoal_err err = {};
	struct pkt f, r;

	assert_int_equal(lb_mesh_net_detach(mesh, LO, &err), 0);
	build(&fwd_tcp, &f);
	build(&reply_tcp, &r);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_int_equal(counters().noted, 0);
	assert_passed(&r);
}

static void test_flows_survive_reopen(void **state)
{
	struct shoal_err err = {};
	struct pkt f, r;

	build(&fwd_tcp, &f);
	build(&reply_tcp, &r);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	mesh = lb_mesh_close(mesh);
	assert_int_equal(lb_mesh_open(&opts, &mesh, &err), 0);
	assert_returned(&r, entry_mac);
}

/* The task closes (FIN): its last packets still go back through the entry
 * node for the grace; after it, a flow with the same addresses and ports
 * that entered at this node (no note) keeps its replies here, and the
 * entry is gone. */
static void test_closed_flow_ends(void **state)
{
	struct pkt_spec rs = reply_tcp;
	struct pkt f, r, fin;

	build(&fwd_tcp, &f);
	build(&reply_tcp, &r);
	rs.tcp_flags = 0x11; /* FIN, ACK */
	build(&rs, &fin);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_returned(&fin, entry_mac);
	assert_returned(&r, entry_mac); /* within the grace */
	wait_grace();
	assert_passed(&r);
	assert_passed(&r); /* deleted: not looked at again */
	/* a new connection (SYN) from the mesh notes the flow afresh */
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_returned(&r, entry_mac);
}

/* The client's RST ends the flow too; a closed flow's later packets from
 * the same entry node do not open it again, only a new SYN does. */
static void test_client_reset_ends(void **state)
{
	struct pkt_spec fs = fwd_tcp;
	struct pkt f, r, rst, ack;

	build(&fwd_tcp, &f);
	build(&reply_tcp, &r);
	fs.tcp_flags = 0x04; /* RST */
	build(&fs, &rst);
	fs.tcp_flags = 0x10; /* ACK */
	build(&fs, &ack);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_int_equal(run_in(&rst), TC_ACT_UNSPEC);
	assert_int_equal(run_in(&ack), TC_ACT_UNSPEC);
	wait_grace();
	assert_passed(&r);
	/* an RST alone notes nothing */
	assert_int_equal(run_in(&rst), TC_ACT_UNSPEC);
	assert_passed(&r);
}

/* A UDP flow's entry ends after its quiet period; traffic keeps it. */
static void test_udp_idle_ends(void **state)
{
	struct pkt f, r;

	build_udp(&f, &r);
	assert_int_equal(run_in(&f), TC_ACT_UNSPEC);
	assert_returned(&r, entry_mac);
	wait_grace();
	assert_passed(&r);
}

static uint32_t filter_prog(int ifindex, uint32_t prio)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = 0x534d, .priority = prio);

	if (bpf_tc_query(&hook, &q) < 0)
		return 0;
	return q.prog_id;
}

static uint32_t prog_id(int fd)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.id;
}

static void test_attach_detach(void **state)
{
	struct shoal_err err = {};
	int idx;

	assert_int_equal(system("ip link add lbmesht0 type veth peer name lbmesht1"), 0);
	idx = (int)if_nametoindex("lbmesht0");
	assert_true(idx > 0);
	assert_int_equal(lb_mesh_veth_attach(mesh, idx, &err), 0);
	assert_int_equal(lb_mesh_veth_attach(mesh, idx, &err), 0); /* replaced in place */
	assert_int_equal(filter_prog(idx, 0x5345), prog_id(lb_mesh_out_fd(mesh)));
	assert_int_equal(lb_mesh_net_attach(mesh, idx, A("10.78.0.0"), 16, &err), 0);
	assert_int_equal(filter_prog(idx, 0x534d), prog_id(lb_mesh_in_fd(mesh)));
	assert_int_equal(lb_mesh_veth_detach(mesh, idx, &err), 0);
	assert_int_equal(filter_prog(idx, 0x5345), 0);
	assert_int_equal(lb_mesh_net_detach(mesh, idx, &err), 0);
	assert_int_equal(filter_prog(idx, 0x534d), 0);
	assert_int_equal(lb_mesh_veth_detach(mesh, idx, &err), 0);
	/* gone with the interface: detaching is not an error */
	assert_int_equal(lb_mesh_veth_attach(mesh, idx, &err), 0);
	assert_int_equal(system("ip link del lbmesht0"), 0);
	assert_int_equal(lb_mesh_veth_detach(mesh, idx, &err), 0);
	assert_int_equal(lb_mesh_veth_attach(mesh, 0, &err), -EINVAL);
	assert_int_equal(lb_mesh_net_attach(mesh, LO, A("10.77.0.0"), 33, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reply_goes_back_to_entry_node, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_node_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subnet_sources_not_noted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_replies_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_interface_not_noted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows_survive_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_flow_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_reset_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_idle_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_detach, setup, teardown),
	};
	int r = bpf_test_prepare("shoal-lbmeshtest", true);

	if (r != 0)
		return r;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
