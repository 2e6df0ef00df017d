// SPDX-License-Identifier: Apache-2.0
/*
 * Bridge network end to end, run by overlay-bridge.sh inside a network
 * namespace (and mount namespace) of its own: everything made here dies with
 * them. Checks go through iproute2 and nft, not through the code under test.
 *
 * usage: overlay-bridge <scratch dir>
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "overlay/bridge.h"

#define PREFIX	 "snt"
#define SUBNET	 "10.251.0.0/24"
#define OUT_ADDR "192.0.2.2"
#define BENCH_N	 100

static int failures;

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fputc('\n', stderr);                                            \
			failures++;                                                     \
		}                                                                       \
	} while (0)

#define REQUIRE(cond, ...)                                                              \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fputc('\n', stderr);                                            \
			exit(1);                                                        \
		}                                                                       \
	} while (0)

/* Runs a shell command, returns its exit status and (if out) its stdout. */
static int sh(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	size_t n = 0;
	char tmp[4096];
	size_t k;
	while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		if (out && n + 1 < outlen) {
			size_t c = k < outlen - 1 - n ? k : outlen - 1 - n;
			memcpy(out + n, tmp, c);
			n += c;
		}
	}
	if (out)
		out[n] = '\0';
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Runs argv with its network namespace switched to nspath. */
static int run_in_netns(const char *nspath, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(nspath, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(126);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int ping_from(const char *nspath, const char *addr)
{
	char *argv[] = {"/bin/busybox", "ping", "-c", "1", "-W", "3", (char *)addr, NULL};
	return run_in_netns(nspath, argv);
}

static const char *S(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static bool link_exists(const char *ifname)
{
	return sh(NULL, 0, "ip link show dev %s >/dev/null 2>&1", ifname) == 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <scratch dir>\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	char netns_dir[512], out_ns[512], buf[16384];
	snprintf(netns_dir, sizeof(netns_dir), "%s/netns", argv[1]);
	snprintf(out_ns, sizeof(out_ns), "%s/outside", argv[1]);
	struct shoal_err err = {0};

	/* A forward chain with a drop policy, as a firewall would have. */
	REQUIRE(sh(NULL, 0,
		   "nft 'add table inet sntfilt; add chain inet sntfilt forward "
		   "{ type filter hook forward priority 0; policy drop; }'") == 0,
		"creating a drop-policy forward chain");

	/* "Outside": a namespace reached through a veth with no route back to
	 * the bridge subnet, so replies come back only when masqueraded. */
	REQUIRE(netns_create(out_ns, &err) == 0, "netns_create outside: %s", err.msg);
	CHECK(access(out_ns, F_OK) == 0, "netns file missing");
	CHECK(sh(buf, sizeof(buf), "nsenter --net=%s ip link show lo", out_ns) == 0 &&
		      strstr(buf, "UP") != NULL,
	      "lo not up in a netns_create()d namespace: %s", buf);
	REQUIRE(netns_create(out_ns, &err) == -EEXIST, "second netns_create must fail");
	REQUIRE(sh(NULL, 0,
		   "ip link add sntup type veth peer name eth0 netns %1$s && "
		   "ip addr add 192.0.2.1/24 dev sntup && ip link set sntup up && "
		   "nsenter --net=%1$s ip addr add " OUT_ADDR
		   "/24 dev eth0 && nsenter --net=%1$s ip link set eth0 up",
		   out_ns) == 0,
		"wiring the outside namespace");

	struct bridge_net_options opts = {
		.prefix = PREFIX,
		.subnet = SUBNET,
		.netns_dir = netns_dir,
		.mtu = 0,
	};
	struct bridge_net *bn = NULL;
	REQUIRE(bridge_net_setup(&opts, &bn, &err) == 0, "setup: %s", err.msg);

	CHECK(sh(buf, sizeof(buf), "ip -o -4 addr show dev " PREFIX "0") == 0 &&
		      strstr(buf, "10.251.0.1/24"),
	      "gateway address missing on the bridge: %s", buf);
	CHECK(sh(buf, sizeof(buf), "ip -d link show dev " PREFIX "0") == 0 &&
		      strstr(buf, "bridge") && strstr(buf, "02:42:0a:fb:00:01"),
	      "bridge kind/MAC: %s", buf);
	CHECK(sh(buf, sizeof(buf), "cat /proc/sys/net/ipv4/ip_forward") == 0 && buf[0] == '1',
	      "ip_forward not enabled");
	CHECK(sh(buf, sizeof(buf), "nft list table ip " PREFIX "_nat") == 0 &&
		      strstr(buf, "masquerade") && strstr(buf, "ip saddr 10.251.0.0/24") &&
		      strstr(buf, "oifname != \"" PREFIX "0\"") && strstr(buf, "hook postrouting"),
	      "NAT table: %s", buf);
	CHECK(sh(buf, sizeof(buf), "nft list chain inet sntfilt forward") == 0 &&
		      strstr(buf, "ip saddr 10.251.0.0/24 accept") &&
		      strstr(buf, "ip daddr 10.251.0.0/24 accept"),
	      "forward accept rules: %s", buf);

	/* Agent restart with the same config adopts; rules are not doubled. */
	bridge_net_free(bn);
	bn = NULL;
	REQUIRE(bridge_net_setup(&opts, &bn, &err) == 0, "second setup: %s", err.msg);
	CHECK(sh(buf, sizeof(buf),
		 "nft list chain inet sntfilt forward | grep -c " PREFIX "_fwd") == 0 &&
		      atoi(buf) == 2,
	      "forward rules after re-setup: %s", buf);
	CHECK(sh(buf, sizeof(buf), "nft list table ip " PREFIX "_nat | grep -c masquerade") == 0 &&
		      atoi(buf) == 1,
	      "masquerade rules after re-setup: %s", buf);

	/* Another subnet on the existing bridge is refused, naming both. */
	struct bridge_net_options other = opts;
	other.subnet = "10.252.0.0/24";
	struct bridge_net *bn2 = NULL;
	CHECK(bridge_net_setup(&other, &bn2, &err) == -EEXIST, "different subnet accepted");
	CHECK(strstr(err.msg, "10.251.0.1/24") && strstr(err.msg, "10.252.0.0/24"),
	      "message should name both subnets: %s", err.msg);
	CHECK(bn2 == NULL, "no object on error");
	other.subnet = "10.0.0.0/31";
	CHECK(bridge_net_setup(&other, &bn2, &err) == -EINVAL, "bad subnet accepted");
	other = opts;
	other.prefix = "too-long-prefix";
	CHECK(bridge_net_setup(&other, &bn2, &err) == -EINVAL, "bad prefix accepted");

	/* Two endpoints. */
	const char *ida = "aaaa1111bbbb2222", *idb = "cccc3333dddd4444";
	struct bridge_endpoint a, b;
	char sa[INET_ADDRSTRLEN], sb[INET_ADDRSTRLEN], sg[INET_ADDRSTRLEN];
	REQUIRE(bridge_net_attach(bn, ida, &a, &err) == 0, "attach a: %s", err.msg);
	REQUIRE(bridge_net_attach(bn, idb, &b, &err) == 0, "attach b: %s", err.msg);
	printf("a: %s %s %s/%u gw %s\n", a.netns_path, a.host_ifname, S(a.addr, sa), a.prefixlen,
	       S(a.gateway, sg));
	printf("b: %s %s %s\n", b.netns_path, b.host_ifname, S(b.addr, sb));
	CHECK(!strcmp(a.host_ifname, PREFIX "vaaaa1111"), "host name %s", a.host_ifname);
	CHECK(!strcmp(S(a.gateway, sg), "10.251.0.1"), "gateway %s", sg);
	CHECK(a.prefixlen == 24, "prefixlen %u", a.prefixlen);
	CHECK(a.addr.s_addr != b.addr.s_addr, "same address twice");
	CHECK(a.mac[0] == 0x02 && a.mac[1] == 0x42 && !memcmp(a.mac + 2, &a.addr, 4), "mac");
	CHECK(bridge_net_attach(bn, ida, &b, &err) == -EEXIST, "attaching an id twice: %s",
	      err.msg);

	CHECK(sh(buf, sizeof(buf), "ip -d link show dev %s", a.host_ifname) == 0 &&
		      strstr(buf, "master " PREFIX "0") && strstr(buf, "veth") &&
		      strstr(buf, "state UP"),
	      "host side: %s", buf);
	CHECK(sh(buf, sizeof(buf), "nsenter --net=%s ip -o -4 addr show dev eth0", a.netns_path) ==
			      0 &&
		      strstr(buf, sa),
	      "address inside: %s", buf);
	CHECK(sh(buf, sizeof(buf), "nsenter --net=%s ip link show dev eth0", a.netns_path) == 0 &&
		      strstr(buf, "02:42:0a:fb:00:") && strstr(buf, "UP"),
	      "eth0 inside: %s", buf);
	CHECK(sh(buf, sizeof(buf), "nsenter --net=%s ip route show default", a.netns_path) == 0 &&
		      strstr(buf, "default via 10.251.0.1 dev eth0"),
	      "default route inside: %s", buf);
	CHECK(sh(buf, sizeof(buf), "nsenter --net=%s ip link show dev lo", a.netns_path) == 0 &&
		      strstr(buf, "UP"),
	      "lo inside: %s", buf);

	CHECK(ping_from(a.netns_path, sb) == 0, "a cannot ping b (%s)", sb);
	CHECK(ping_from(a.netns_path, "10.251.0.1") == 0, "a cannot ping the gateway");
	CHECK(ping_from(b.netns_path, sa) == 0, "b cannot ping a (%s)", sa);
	CHECK(ping_from(a.netns_path, OUT_ADDR) == 0,
	      "a cannot reach the outside namespace (masquerade or forward accept broken)");

	/* Restart: a fresh object, addresses in use re-reserved, new ones differ. */
	bridge_net_free(bn);
	bn = NULL;
	REQUIRE(bridge_net_setup(&opts, &bn, &err) == 0, "setup after restart: %s", err.msg);
	CHECK(bridge_net_reserve(bn, a.addr, &err) == 0, "reserve a: %s", err.msg);
	CHECK(bridge_net_reserve(bn, b.addr, &err) == 0, "reserve b: %s", err.msg);
	CHECK(bridge_net_reserve(bn, b.addr, &err) == -EEXIST, "double reserve");
	CHECK(ping_from(a.netns_path, sb) == 0, "endpoints broken by agent restart");

	/* attach + detach of BENCH_N endpoints, timed. */
	static struct bridge_endpoint eps[BENCH_N];
	char ids[BENCH_N][32];
	int64_t t0 = mono_ns();
	int attached = 0;
	for (int i = 0; i < BENCH_N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%08x%08x", 0xbe000000u + (unsigned)i,
			 (unsigned)i);
		if (bridge_net_attach(bn, ids[i], &eps[i], &err) != 0) {
			CHECK(0, "bench attach %d: %s", i, err.msg);
			break;
		}
		CHECK(eps[i].addr.s_addr != a.addr.s_addr && eps[i].addr.s_addr != b.addr.s_addr,
		      "bench endpoint %d got a reserved address", i);
		attached++;
	}
	int64_t t1 = mono_ns();
	CHECK(attached == BENCH_N, "attached %d", attached);
	CHECK(sh(buf, sizeof(buf), "ip -o link show master " PREFIX "0 | wc -l") == 0 &&
		      atoi(buf) == BENCH_N + 2,
	      "ports on the bridge: %s", buf);
	CHECK(ping_from(eps[BENCH_N - 1].netns_path, sa) == 0, "last bench endpoint cannot ping a");
	int64_t t2 = mono_ns();
	for (int i = 0; i < attached; i++)
		CHECK(bridge_net_detach(bn, ids[i], eps[i].addr, &err) == 0, "bench detach %d: %s",
		      i, err.msg);
	int64_t t3 = mono_ns();
	if (attached > 0)
		printf("BENCH attach: %.3f ms/endpoint, detach: %.3f ms/endpoint (%d endpoints)\n",
		       (double)(t1 - t0) / 1e6 / attached, (double)(t3 - t2) / 1e6 / attached,
		       attached);
	/* The kernel frees the pairs with their netns, asynchronously. */
	for (int i = 0; i < 100; i++) {
		if (sh(buf, sizeof(buf), "ip -o link show master " PREFIX "0 | wc -l") == 0 &&
		    atoi(buf) == 2)
			break;
		usleep(50000);
	}
	CHECK(atoi(buf) == 2, "ports after bench detach: %s", buf);

	/* Detach: veth and netns file go; again is fine. */
	CHECK(bridge_net_detach(bn, ida, a.addr, &err) == 0, "detach a: %s", err.msg);
	for (int i = 0; i < 100 && link_exists(a.host_ifname); i++)
		usleep(50000);
	CHECK(!link_exists(a.host_ifname), "veth %s still there", a.host_ifname);
	CHECK(access(a.netns_path, F_OK) < 0 && errno == ENOENT, "netns file still there");
	CHECK(bridge_net_detach(bn, ida, a.addr, &err) == 0, "second detach: %s", err.msg);
	CHECK(ping_from(b.netns_path, "10.251.0.1") == 0, "b lost the gateway after a left");

	/* A failed attach leaves nothing behind: the host name is taken by a
	 * device that is not ours. */
	REQUIRE(sh(NULL, 0, "ip link add " PREFIX "vfeedface type bridge") == 0, "foreign link");
	struct bridge_endpoint x;
	char xpath[600];
	snprintf(xpath, sizeof(xpath), "%s/feedface0000", netns_dir);
	CHECK(bridge_net_attach(bn, "feedface0000", &x, &err) == -EEXIST,
	      "attach over a taken name");
	CHECK(strstr(err.msg, "creating veth " PREFIX "vfeedface") != NULL, "message: %s", err.msg);
	CHECK(access(xpath, F_OK) < 0 && errno == ENOENT, "netns file left behind");
	CHECK(sh(buf, sizeof(buf), "ip -o link show master " PREFIX "0 | wc -l") == 0 &&
		      atoi(buf) == 1,
	      "ports after a failed attach: %s", buf);

	/* The address of a is free again (reserve succeeds). */
	CHECK(bridge_net_reserve(bn, a.addr, &err) == 0, "a's address not released: %s", err.msg);
	bridge_net_free(bn);

	/* Teardown removes bridge, veths, NAT table and forward rules; b's veth included. */
	CHECK(bridge_net_teardown(&opts, &err) == 0, "teardown: %s", err.msg);
	CHECK(!link_exists(PREFIX "0"), "bridge still there");
	CHECK(!link_exists(b.host_ifname), "veth %s still there", b.host_ifname);
	CHECK(access(b.netns_path, F_OK) < 0 && errno == ENOENT, "netns %s still there",
	      b.netns_path);
	CHECK(sh(NULL, 0, "nft list table ip " PREFIX "_nat >/dev/null 2>&1") != 0,
	      "NAT table still there");
	CHECK(sh(buf, sizeof(buf), "nft list chain inet sntfilt forward") == 0 &&
		      !strstr(buf, PREFIX "_fwd") && strstr(buf, "policy drop"),
	      "forward rules after teardown: %s", buf);
	CHECK(sh(NULL, 0, "ip link show sntup >/dev/null") == 0, "teardown removed a foreign link");
	CHECK(link_exists(PREFIX "vfeedface"),
	      "teardown removed a non-veth link that matched the name");
	sh(NULL, 0, "ip link del " PREFIX "vfeedface");
	CHECK(bridge_net_teardown(&opts, &err) == 0, "second teardown: %s", err.msg);

	netns_remove(b.netns_path);
	CHECK(netns_remove(out_ns) == 0, "netns_remove");
	CHECK(access(out_ns, F_OK) < 0, "outside netns file still there");
	CHECK(netns_remove(out_ns) == 0, "netns_remove twice");

	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
