// SPDX-License-Identifier: Apache-2.0
/* `shoal bench policy`: what network policy costs, in one run.
 *
 * Two network namespaces this bench makes, a client and a server joined by
 * a veth pair; shoal-bench-echo serves TCP and UDP in the server. The
 * client's end plays the host side of the server's veth: shoal's policy
 * programs (lb/lb-policy) are attached there, exactly as the agent attaches
 * them to a container's veth, and the server is registered as the endpoint
 * the rules select. The eBPF side is driven directly through lb/lb-policy
 * rather than through a running shoald: the same compiler and maps, but no
 * container image, service or store in the measured path, nothing of the
 * host's touched, and the iptables and nftables rules can sit on the same
 * two namespaces for a like-for-like comparison.
 *
 * For each rule count (10, 1,000, 10,000 by default) the same rules three
 * ways: shoal's eBPF programs, iptables (a chain of -s CIDR -p tcp --dport
 * rules in the server's INPUT, established flows accepted first, as a
 * firewall is written) and nftables (one rule over an interval set). The
 * client's address is allowed by the last rule, so a linear chain walks all
 * of it. Load: `shoal bench tcp` in the client namespace, a new connection
 * per request (the case where rules are consulted: established packets are
 * decided by conntrack in all three). Before each load a probe checks that
 * the rules are in force: an allowed source connects, another one does not.
 *
 * Also: the per-packet cost of the veth program (BPF_PROG_TEST_RUN) on a new
 * flow, its second packet and an established one; and the time from a
 * policy create (parse, compile, diff, map update) to enforcement, seen by
 * a prober in the client that sends a UDP datagram on a new socket every
 * 100 us: the send time of the first one answered, after the create
 * starts. With --nodes N, then the same through the API of a cluster the
 * bench makes, to enforcement on every node (bench-policy-cluster.c).
 * Everything is removed at the end, also on failure and Ctrl-C. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <linux/pkt_cls.h>

#include "bench/bench-cluster-internal.h"
#include "bench/bench-load.h"
#include "bench/bench-policy-internal.h"
#include "bench/bench-results.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lb/lb-policy.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "policy/policy.h"

static const char *const enforcer_names[PB_ENFORCERS] = {"none", "shoal", "iptables", "nftables"};

volatile sig_atomic_t pb_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	pb_interrupted = 1;
	/* the cluster phase's agents and etcd wait on this one */
	bcl_interrupted = 1;
}

/* Runs argv, stdout to /dev/null (quiet) and stdin from in (NULL: none);
 * 0 when it exits 0. */
static int run(char *const argv[], const char *in, bool quiet)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(in ? in : "/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 0);
		if (quiet) {
			fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
			if (fd >= 0)
				dup2(fd, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	bool told = false;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
		/* Ctrl-C sent to the bench alone: stop its child too */
		if (pb_interrupted && !told) {
			kill(pid, SIGTERM);
			told = true;
		}
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

#define RUN(...) run((char *const[]){__VA_ARGS__, NULL}, NULL, true)

static int ns_enter(const char *name)
{
	char path[96];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

static void ns_leave(struct pb *b)
{
	if (b->host_fd >= 0)
		(void)setns(b->host_fd, CLONE_NEWNET);
}

static void pb_down(struct pb *b)
{
	ns_leave(b);
	if (b->echo_pid > 0) {
		kill(b->echo_pid, SIGTERM);
		waitpid(b->echo_pid, NULL, 0);
		b->echo_pid = 0;
	}
	b->pol = lb_policy_close(b->pol);
	b->live = policy_compiled_free(b->live);
	/* the veth pair and every rule and program on it go with the namespaces */
	if (b->ns_c_made)
		RUN("ip", "netns", "delete", b->ns_c);
	if (b->ns_s_made)
		RUN("ip", "netns", "delete", b->ns_s);
	b->ns_c_made = b->ns_s_made = false;
	if (b->tmp[0]) {
		char p[128];
		static const char *const files[] = {"rules", "load.json"};
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(p, sizeof(p), "%s/%s", b->tmp, files[i]);
			unlink(p);
		}
		rmdir(b->tmp);
		b->tmp[0] = 0;
	}
	if (b->host_fd >= 0)
		close(b->host_fd);
	b->host_fd = -1;
}

static void ip4(uint32_t a, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static int pb_up(struct pb *b, struct shoal_err *err)
{
	int pid = (int)getpid();
	snprintf(b->ns_c, sizeof(b->ns_c), "shoal-pb%d-c", pid);
	snprintf(b->ns_s, sizeof(b->ns_s), "shoal-pb%d-s", pid);
	snprintf(b->if_c, sizeof(b->if_c), "pbc%d", pid);
	snprintf(b->if_s, sizeof(b->if_s), "pbs%d", pid);
	snprintf(b->tmp, sizeof(b->tmp), "/tmp/shoal-bench-policy.XXXXXX");
	if (!mkdtemp(b->tmp)) {
		b->tmp[0] = 0;
		return shoal_err_errno(err, -errno, "making a temporary directory");
	}
	b->host_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (b->host_fd < 0)
		return shoal_err_errno(err, -errno, "opening this network namespace");
	if (RUN("ip", "netns", "add", b->ns_c) < 0)
		return shoal_err_set(err, -EIO, "ip netns add %s failed (needs root)", b->ns_c);
	b->ns_c_made = true;
	if (RUN("ip", "netns", "add", b->ns_s) < 0)
		return shoal_err_set(err, -EIO, "ip netns add %s failed", b->ns_s);
	b->ns_s_made = true;
	char c[16], s[16], cs[24], ss[24];
	ip4(PB_CLIENT, c);
	ip4(PB_SERVER, s);
	snprintf(cs, sizeof(cs), "%s/24", c);
	snprintf(ss, sizeof(ss), "%s/24", s);
	char st[24];
	ip4(PB_STRANGER, st);
	strcat(st, "/24");
	if (RUN("ip", "-n", b->ns_c, "link", "add", b->if_c, "type", "veth", "peer", "name",
		b->if_s, "netns", b->ns_s) < 0 ||
	    RUN("ip", "-n", b->ns_c, "addr", "add", cs, "dev", b->if_c) < 0 ||
	    RUN("ip", "-n", b->ns_c, "addr", "add", st, "dev", b->if_c) < 0 ||
	    RUN("ip", "-n", b->ns_s, "addr", "add", ss, "dev", b->if_s) < 0 ||
	    RUN("ip", "-n", b->ns_c, "link", "set", b->if_c, "up") < 0 ||
	    RUN("ip", "-n", b->ns_s, "link", "set", b->if_s, "up") < 0 ||
	    RUN("ip", "-n", b->ns_c, "link", "set", "lo", "up") < 0 ||
	    RUN("ip", "-n", b->ns_s, "link", "set", "lo", "up") < 0)
		return shoal_err_set(err, -EIO, "setting up the veth pair %s/%s failed", b->if_c,
				     b->if_s);
	char port[8];
	snprintf(port, sizeof(port), "%d", PB_PORT);
	b->echo_pid = fork();
	if (b->echo_pid < 0)
		return shoal_err_errno(err, -errno, "fork");
	if (b->echo_pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (ns_enter(b->ns_s) < 0)
			_exit(127);
		if (null >= 0)
			dup2(null, 1);
		execl(b->echo, b->echo, "-a", s, port, (char *)NULL);
		_exit(127);
	}
	/* the server's echo up: a TCP connect from the client succeeds */
	if (ns_enter(b->ns_c) < 0)
		return shoal_err_set(err, -EIO, "entering %s", b->ns_c);
	b->ifindex_c = (int)if_nametoindex(b->if_c);
	ns_leave(b);
	return 0;
}

/* In the client namespace: may from connect to the server's port within
 * timeout_ms? 1 yes, 0 no, -errno. */
static int probe_tcp(struct pb *b, uint32_t from, int timeout_ms)
{
	int r = ns_enter(b->ns_c);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(from)};
	struct sockaddr_in dst = {.sin_family = AF_INET,
				  .sin_port = htons(PB_PORT),
				  .sin_addr.s_addr = htonl(PB_SERVER)};
	ns_leave(b);
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0)
		return 1;
	if (errno != EINPROGRESS)
		return 0;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	int e = 0;
	socklen_t el = sizeof(e);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
	return e == 0;
}

/* ---- the rules ---- */

/* Rule r's source: its own /24 in 10.100.0.0/14 for all but the last, the
 * client's address for the last. */
static void rule_cidr(size_t r, size_t n, char *buf, size_t size)
{
	if (r == n - 1)
		snprintf(buf, size, "10.99.0.2/32");
	else
		snprintf(buf, size, "10.%zu.%zu.0/24", 100 + r / 256, r % 256);
}

static int parse_policy(const char *text, struct policy **ret, struct shoal_err *err)
{
	return policy_from_text(text, strlen(text), ret, err);
}

/* n rules selecting the server (Service "bench-server"), tcp PB_PORT, in
 * policies of PB_PER_POLICY; plus extra (a JSON policy) when given. */
static int build_set(size_t n, const char *extra, struct policy ***ret, size_t *ret_n,
		     struct shoal_err *err)
{
	size_t np = (n + PB_PER_POLICY - 1) / PB_PER_POLICY + 1;
	struct policy **v = calloc(np, sizeof(*v));
	_cleanup_free_ char *buf = malloc(256 + PB_PER_POLICY * 96);
	size_t k = 0;
	int r = 0;
	if (!v || !buf) {
		free(v);
		return shoal_err_set(err, -ENOMEM, "out of memory");
	}
	for (size_t base = 0; base < n; base += PB_PER_POLICY) {
		size_t m = n - base < PB_PER_POLICY ? n - base : PB_PER_POLICY;
		int len = sprintf(
			buf,
			"{\"Name\":\"bench-%zu\",\"Selector\":{\"Service\":\"bench-server\"},"
			"\"Types\":[\"Ingress\"],\"Ingress\":[",
			base / PB_PER_POLICY);
		for (size_t i = 0; i < m; i++) {
			char cidr[32];
			rule_cidr(base + i, n, cidr, sizeof(cidr));
			len += sprintf(buf + len,
				       "%s{\"From\":[{\"CIDR\":\"%s\"}],\"Ports\":[{\"Port\":%d,"
				       "\"Protocol\":\"tcp\"}]}",
				       i ? "," : "", cidr, PB_PORT);
		}
		strcpy(buf + len, "]}");
		r = parse_policy(buf, &v[k], err);
		if (r < 0)
			goto fail;
		k++;
	}
	if (extra) {
		r = parse_policy(extra, &v[k], err);
		if (r < 0)
			goto fail;
		k++;
	}
	*ret = v;
	*ret_n = k;
	return 0;
fail:
	for (size_t i = 0; i < k; i++)
		policy_free(v[i]);
	free(v);
	return r;
}

static void free_set(struct policy **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		policy_free(v[i]);
	free(v);
}

/* Compiles v for the server endpoint and writes the difference to the maps. */
static int shoal_apply(struct pb *b, struct policy **v, size_t n, size_t *ret_entries,
		       struct shoal_err *err)
{
	static const char *const nets[] = {"bench"};
	struct policy_endpoint ep = {.id = PB_EP,
				     .name = "bench-server.1",
				     .service = "bench-server",
				     .networks = nets,
				     .n_networks = 1,
				     .addr = PB_SERVER,
				     .node = "bench"};
	struct policy_node node = {.name = "bench", .addr = 0x0a6300feu};
	struct policy_model m = {.endpoints = &ep,
				 .n_endpoints = 1,
				 .nodes = &node,
				 .n_nodes = 1,
				 .local_node = "bench"};
	struct policy_set set = {.v = (struct policy *const *)v, .n = n};
	struct policy_compiled *c = NULL;
	struct policy_ops ops = {0};
	int64_t t0 = mono_ns();
	int r = policy_compile(&set, &m, &c, err);
	if (r < 0)
		return r;
	int64_t t1 = mono_ns();
	r = policy_diff(b->live, c, &ops);
	if (r < 0) {
		policy_compiled_free(c);
		return shoal_err_set(err, r, "out of memory");
	}
	r = lb_policy_apply(b->pol, c, &ops, err);
	policy_ops_done(&ops);
	b->compile_ms = (double)(t1 - t0) / 1e6;
	b->apply_ms = (double)(mono_ns() - t1) / 1e6;
	if (r < 0) {
		policy_compiled_free(c);
		return r;
	}
	struct lb_policy_endpoint le = {.addr = htonl(PB_SERVER),
					.ep = PB_EP,
					.identity = policy_compiled_identity(c, PB_SERVER),
					.ifindex = b->ifindex_c};
	r = lb_policy_endpoint_set(b->pol, &le, err);
	if (r < 0) {
		policy_compiled_free(c);
		return r;
	}
	if (ret_entries) {
		*ret_entries = 0;
		for (size_t i = 0; i < c->n_eps; i++)
			if (c->eps[i].ep == PB_EP)
				*ret_entries = c->eps[i].n_entries[POLICY_INGRESS];
	}
	policy_compiled_free(b->live);
	b->live = c;
	return 0;
}

static int shoal_attach(struct pb *b, bool on, struct shoal_err *err)
{
	int r = ns_enter(b->ns_c);
	if (r < 0)
		return shoal_err_errno(err, r, "entering %s", b->ns_c);
	/* libbpf reports the clsact qdisc that is already there; expected */
	libbpf_print_fn_t prev = libbpf_set_print(NULL);
	r = on ? lb_policy_veth_attach(b->pol, b->ifindex_c, err)
	       : lb_policy_veth_detach(b->pol, b->ifindex_c, err);
	libbpf_set_print(prev);
	ns_leave(b);
	if (r >= 0)
		b->attached = on;
	return r;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* The n rules as iptables-restore or nft -f input. */
static char *rules_text(enum pb_enforcer e, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	if (e == PB_IPTABLES) {
		fprintf(f, "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
			   ":OUTPUT ACCEPT [0:0]\n");
		fprintf(f, "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n");
		for (size_t r = 0; r < n; r++) {
			char cidr[32];
			rule_cidr(r, n, cidr, sizeof(cidr));
			fprintf(f, "-A INPUT -s %s -p tcp --dport %d -j ACCEPT\n", cidr, PB_PORT);
		}
		fprintf(f, "-A INPUT -d 10.99.0.1 -j DROP\nCOMMIT\n");
	} else {
		fprintf(f, "table inet shoal_bench {\n\tset allow {\n\t\ttype ipv4_addr\n"
			   "\t\tflags interval\n\t\telements = { ");
		for (size_t r = 0; r < n; r++) {
			char cidr[32];
			rule_cidr(r, n, cidr, sizeof(cidr));
			fprintf(f, "%s%s", r ? ", " : "", cidr);
		}
		fprintf(f,
			" }\n\t}\n\tchain input {\n\t\ttype filter hook input priority 0; "
			"policy accept;\n\t\tct state established,related accept\n"
			"\t\tip saddr @allow tcp dport %d accept\n\t\tip daddr 10.99.0.1 drop\n"
			"\t}\n}\n",
			PB_PORT);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Puts the rules of e in force (n 0: takes them away). */
static int enforcer_set(struct pb *b, enum pb_enforcer e, size_t n, size_t *ret_entries,
			struct shoal_err *err)
{
	char path[128];
	int r;
	snprintf(path, sizeof(path), "%s/rules", b->tmp);
	if (e == PB_SHOAL) {
		/* off: the programs come off the veth; the maps stay for the next
		 * pair (compiling 10,000 rules is not what a pair measures) */
		if (n == 0)
			return shoal_attach(b, false, err);
		if (b->shoal_n == n) {
			if (ret_entries)
				*ret_entries = b->shoal_entries;
			return shoal_attach(b, true, err);
		}
		struct policy **v = NULL;
		size_t nv = 0;
		r = build_set(n, NULL, &v, &nv, err);
		if (r < 0)
			return r;
		r = shoal_apply(b, v, nv, &b->shoal_entries, err);
		free_set(v, nv);
		if (r < 0)
			return r;
		b->shoal_n = n;
		if (ret_entries)
			*ret_entries = b->shoal_entries;
		return shoal_attach(b, true, err);
	}
	if (e == PB_IPTABLES) {
		if (n == 0)
			return RUN("ip", "netns", "exec", b->ns_s, "iptables", "-F", "INPUT") < 0
				       ? shoal_err_set(err, -EIO, "iptables -F INPUT failed")
				       : 0;
		_cleanup_free_ char *t = rules_text(e, n);
		if (!t || write_file(path, t) < 0)
			return shoal_err_set(err, -EIO, "writing %s", path);
		r = run((char *const[]){"ip", "netns", "exec", b->ns_s, "iptables-restore", path,
					NULL},
			NULL, true);
		return r < 0 ? shoal_err_set(err, -EIO, "iptables-restore of %zu rules failed", n)
			     : 0;
	}
	if (e == PB_NFTABLES) {
		if (n == 0)
			return RUN("ip", "netns", "exec", b->ns_s, "nft", "delete", "table", "inet",
				   "shoal_bench") < 0
				       ? shoal_err_set(err, -EIO, "nft delete table failed")
				       : 0;
		_cleanup_free_ char *t = rules_text(e, n);
		if (!t || write_file(path, t) < 0)
			return shoal_err_set(err, -EIO, "writing %s", path);
		r = RUN("ip", "netns", "exec", b->ns_s, "nft", "-f", path);
		return r < 0 ? shoal_err_set(err, -EIO, "nft -f of a %zu-element set failed", n)
			     : 0;
	}
	return 0;
}

/* ---- the load ---- */

static json_t *load_run(struct pb *b, struct shoal_err *err)
{
	char out[128], target[32], conns[16], dur[32], warm[32], rounds[16];
	snprintf(out, sizeof(out), "%s/load.json", b->tmp);
	unlink(out);
	snprintf(target, sizeof(target), "10.99.0.1:%d", PB_PORT);
	snprintf(conns, sizeof(conns), "%d", b->o.conns);
	snprintf(dur, sizeof(dur), "%g", b->o.duration);
	snprintf(warm, sizeof(warm), "%g", b->o.warmup);
	snprintf(rounds, sizeof(rounds), "%d", 1);
	int r = run((char *const[]){"ip",     "netns",
				    "exec",   b->ns_c,
				    b->self,  "bench",
				    "tcp",    "--target",
				    target,   "--connections",
				    conns,    "--duration",
				    dur,      "--warmup",
				    warm,     "--rounds",
				    rounds,   "--new-connections",
				    "--json", "-o",
				    out,      NULL},
		    NULL, true);
	if (pb_interrupted) {
		shoal_err_set(err, -EINTR, "pb_interrupted");
		return NULL;
	}
	if (r < 0) {
		shoal_err_set(err, -EIO, "the load (shoal bench tcp %s) failed", target);
		return NULL;
	}
	char msg[256];
	json_t *res = bench_results_load(out, msg, sizeof(msg));
	if (!res) {
		shoal_err_set(err, -EIO, "reading the load's result: %s", msg);
		return NULL;
	}
	json_t *v = json_incref(json_array_get(json_object_get(res, "variants"), 0));
	json_decref(res);
	if (!v || json_number_value(json_object_get(v, "per_sec")) <= 0) {
		json_decref(v);
		shoal_err_set(err, -EIO, "the load answered no request");
		return NULL;
	}
	return v;
}

/* ---- per packet: BPF_PROG_TEST_RUN ---- */

struct pkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;
} __attribute__((packed));

static void pkt_build(struct pkt *p, uint16_t sport, bool syn)
{
	memset(p, 0, sizeof(*p));
	p->eth.h_proto = htons(ETH_P_IP);
	p->ip.version = 4;
	p->ip.ihl = 5;
	p->ip.ttl = 64;
	p->ip.protocol = IPPROTO_TCP;
	p->ip.tot_len = htons(sizeof(p->ip) + sizeof(p->tcp));
	p->ip.saddr = htonl(PB_CLIENT);
	p->ip.daddr = htonl(PB_SERVER);
	uint16_t w[sizeof(struct iphdr) / 2];
	uint32_t sum = 0;
	memcpy(w, &p->ip, sizeof(w));
	for (size_t i = 0; i < sizeof(w) / 2; i++)
		sum += w[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	p->ip.check = (uint16_t)~sum;
	p->tcp.source = htons(sport);
	p->tcp.dest = htons(PB_PORT);
	p->tcp.doff = 5;
	p->tcp.syn = syn;
	p->tcp.ack = !syn;
}

static int test_run(int fd, uint16_t sport, bool syn, uint32_t repeat, uint64_t *ret_ns,
		    uint32_t *ret_verdict)
{
	struct pkt p;
	pkt_build(&p, sport, syn);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = &p, .data_size_in = sizeof(p),
		    .repeat = repeat);
	int r = bpf_prog_test_run_opts(fd, &o);
	if (r < 0)
		return -errno;
	*ret_ns = o.duration;
	*ret_verdict = o.retval;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Medians over PB_PACKET_FLOWS flows of a first (SYN) and a second packet,
 * and the mean of PB_PACKET_REPEAT runs of an established one. The rules in
 * force must pass the client's packets. */
static int packet_cost(struct pb *b, uint16_t *sport, json_t *out, size_t n, struct shoal_err *err)
{
	int fd = lb_policy_prog_fd(b->pol, LB_POLICY_TO_EP);
	_cleanup_free_ uint64_t *a = calloc(PB_PACKET_FLOWS, sizeof(*a));
	_cleanup_free_ uint64_t *s = calloc(PB_PACKET_FLOWS, sizeof(*s));
	uint32_t verdict;
	uint64_t est;
	if (!a || !s)
		return shoal_err_set(err, -ENOMEM, "out of memory");
	for (int i = 0; i < PB_PACKET_FLOWS; i++) {
		uint16_t port = (*sport)++;
		if (*sport < 1024)
			*sport = 1024;
		if (test_run(fd, port, true, 1, &a[i], &verdict) < 0 ||
		    test_run(fd, port, false, 1, &s[i], &verdict) < 0)
			return shoal_err_errno(err, -errno,
					       "BPF_PROG_TEST_RUN of the veth program");
		if (verdict == TC_ACT_SHOT)
			return shoal_err_set(
				err, -EPROTO,
				"the veth program dropped an allowed flow with %zu rules", n);
	}
	if (test_run(fd, (uint16_t)(*sport - 1), false, PB_PACKET_REPEAT, &est, &verdict) < 0)
		return shoal_err_errno(err, -errno, "BPF_PROG_TEST_RUN of the veth program");
	qsort(a, PB_PACKET_FLOWS, sizeof(*a), cmp_u64);
	qsort(s, PB_PACKET_FLOWS, sizeof(*s), cmp_u64);
	char k[48];
	snprintf(k, sizeof(k), "new_%zu", n);
	json_object_set_new(out, k, json_integer((json_int_t)a[PB_PACKET_FLOWS / 2]));
	snprintf(k, sizeof(k), "second_%zu", n);
	json_object_set_new(out, k, json_integer((json_int_t)s[PB_PACKET_FLOWS / 2]));
	snprintf(k, sizeof(k), "established_%zu", n);
	json_object_set_new(out, k, json_integer((json_int_t)est));
	return 0;
}

/* ---- create to enforcement ---- */

/* The prober, in the client: a datagram on a new socket every
 * PB_PROBE_EVERY_NS, its send time in it. The create's start time arrives on
 * t0_fd. The send time of the first answer stamped after it goes to wfd; -1
 * when a probe is answered before the create started (the flow was not
 * denied); 0 after PB_PROBE_GIVEUP_NS without an answer. An answer stamped
 * before the start but arriving after it says nothing: the stamp is read
 * before sendto(), and a loaded machine can hold the sender between the two. */
static void prober(struct pb *b, int wfd, int ready_fd, int t0_fd)
{
	int ring[PB_PROBE_RING];
	for (int i = 0; i < PB_PROBE_RING; i++)
		ring[i] = -1;
	if (ns_enter(b->ns_c) < 0)
		_exit(2);
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(PB_CLIENT)};
	struct sockaddr_in dst = {.sin_family = AF_INET,
				  .sin_port = htons(PB_PORT),
				  .sin_addr.s_addr = htonl(PB_SERVER)};
	fcntl(t0_fd, F_SETFL, O_NONBLOCK);
	(void)write(ready_fd, "r", 1);
	close(ready_fd);
	int64_t next = mono_ns(), t0 = 0, got = 0;
	for (unsigned k = 0; !got && (!t0 || mono_ns() - t0 < PB_PROBE_GIVEUP_NS); k++) {
		int i = (int)(k % PB_PROBE_RING);
		if (ring[i] >= 0)
			close(ring[i]);
		ring[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (ring[i] >= 0) {
			int64_t now = mono_ns();
			(void)bind(ring[i], (struct sockaddr *)&src, sizeof(src));
			(void)sendto(ring[i], &now, sizeof(now), 0, (struct sockaddr *)&dst,
				     sizeof(dst));
		}
		next += PB_PROBE_EVERY_NS;
		do {
			if (!t0 && read(t0_fd, &t0, sizeof(t0)) != sizeof(t0))
				t0 = 0;
			for (int j = 0; j < PB_PROBE_RING && !got; j++) {
				int64_t t;
				if (ring[j] < 0 || recv(ring[j], &t, sizeof(t), 0) != sizeof(t))
					continue;
				if (!t0 && read(t0_fd, &t0, sizeof(t0)) != sizeof(t0))
					got = -1;
				else if (t >= t0)
					got = t;
			}
		} while (!got && mono_ns() < next);
	}
	(void)write(wfd, &got, sizeof(got));
	_exit(0);
}

static int enforce_rounds(struct pb *b, struct bench_samples *out, struct shoal_err *err)
{
	static const char *const create =
		"{\"Name\":\"bench-enforce\",\"Selector\":{\"Service\":\"bench-server\"},"
		"\"Ingress\":[{\"From\":[{\"CIDR\":\"10.99.0.2/32\"}],"
		"\"Ports\":[{\"Port\":5201,\"Protocol\":\"udp\"}]}]}";
	struct policy **base = NULL;
	size_t nbase = 0;
	int r = build_set(10, NULL, &base, &nbase, err);
	if (r < 0)
		return r;
	b->shoal_n = 0;
	for (int round = 0; round < b->o.enforce_rounds && !pb_interrupted; round++) {
		/* the client's UDP denied: the server is isolated, no rule allows it */
		r = shoal_apply(b, base, nbase, NULL, err);
		if (r < 0)
			break;
		if (!b->attached && (r = shoal_attach(b, true, err)) < 0)
			break;
		int pfd[2], rfd[2], tfd[2];
		if (pipe2(pfd, O_CLOEXEC) < 0 || pipe2(rfd, O_CLOEXEC) < 0 ||
		    pipe2(tfd, O_CLOEXEC) < 0) {
			r = shoal_err_errno(err, -errno, "pipe");
			break;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			close(rfd[0]);
			close(tfd[1]);
			prober(b, pfd[1], rfd[1], tfd[0]);
		}
		close(pfd[1]);
		close(rfd[1]);
		close(tfd[0]);
		char c;
		(void)read(rfd[0], &c, 1);
		close(rfd[0]);
		/* the prober sends into the deny for a while first */
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
		int64_t t0 = mono_ns();
		(void)write(tfd[1], &t0, sizeof(t0));
		close(tfd[1]);
		struct policy **v = calloc(nbase + 1, sizeof(*v));
		r = v ? 0 : shoal_err_set(err, -ENOMEM, "out of memory");
		if (r == 0) {
			memcpy(v, base, nbase * sizeof(*v));
			r = parse_policy(create, &v[nbase], err);
		}
		if (r == 0) {
			r = shoal_apply(b, v, nbase + 1, NULL, err);
			policy_free(v[nbase]);
		}
		free(v);
		int64_t got = 0;
		if (read(pfd[0], &got, sizeof(got)) != sizeof(got))
			got = 0;
		close(pfd[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		if (r < 0)
			break;
		if (got == 0) {
			r = shoal_err_set(err, -ETIMEDOUT,
					  "the probe was not answered within %lld ms of a policy "
					  "allowing it",
					  PB_PROBE_GIVEUP_NS / 1000000);
			break;
		}
		if (got < 0) {
			r = shoal_err_set(
				err, -EPROTO,
				"round %d: a probe was answered before the policy allowing "
				"it was created: the flow was not denied before",
				round + 1);
			break;
		}
		bench_samples_add(out, got - t0);
	}
	free_set(base, nbase);
	if (pb_interrupted && r >= 0)
		r = shoal_err_set(err, -EINTR, "pb_interrupted");
	return r;
}

/* ---- output ---- */

static double variant_rate(json_t *v)
{
	return json_number_value(json_object_get(v, "per_sec"));
}

static void print_result(json_t *out)
{
	json_t *cfg = json_object_get(out, "config");
	printf("Network policy: a new TCP connection per request, %d connections; per rule count "
	       "and enforcer %d pairs of %gs slices, without and with the rules; medians\n"
	       "(client and server namespaces joined by a veth pair; the client's address is "
	       "allowed by the last rule)\n\n",
	       (int)json_integer_value(json_object_get(cfg, "connections")),
	       (int)json_integer_value(json_object_get(cfg, "rounds")),
	       json_number_value(json_object_get(cfg, "duration_s")));
	printf("%-8s %-9s %10s %9s %8s %8s %11s %12s\n", "RULES", "ENFORCER", "REQ/S", "VS NONE",
	       "P50 US", "P99 US", "INSTALL MS", "TARGET");
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(out, "variants"), i, v)
	{
		json_t *lat = json_object_get(v, "latency_us");
		json_t *ratio = json_object_get(v, "ratio_to_none");
		const char *enf = json_string_value(json_object_get(v, "enforcer"));
		char target[32] = "";
		if (strcmp(enf, "shoal") == 0 &&
		    json_integer_value(json_object_get(v, "rules")) >= 10000)
			snprintf(target, sizeof(target), ">= %.2f %s", PB_TARGET_RATIO,
				 json_number_value(ratio) >= PB_TARGET_RATIO ? "ok" : "MISSED");
		json_t *inst = json_object_get(v, "install_ms");
		char ims[16] = "";
		if (inst)
			snprintf(ims, sizeof(ims), "%.1f", json_number_value(inst));
		printf("%-8" JSON_INTEGER_FORMAT " %-9s %10.0f %9.3f %8.0f %8.0f %11s %12s\n",
		       json_integer_value(json_object_get(v, "rules")), enf, variant_rate(v),
		       ratio ? json_number_value(ratio) : 1.0,
		       json_number_value(json_object_get(lat, "p50")),
		       json_number_value(json_object_get(lat, "p99")), ims, target);
	}
	json_t *pk = json_object_get(out, "packet_ns");
	printf("\nPer packet, shoal's veth program (BPF_PROG_TEST_RUN; new, second: median of %d "
	       "flows; established: mean of %d runs)\n",
	       PB_PACKET_FLOWS, PB_PACKET_REPEAT);
	printf("%-8s %9s %9s %9s %12s\n", "RULES", "ENTRIES", "NEW NS", "2ND NS", "ESTABLISHED");
	json_t *ent = json_object_get(out, "map_entries");
	const char *key;
	json_t *x;
	json_object_foreach(ent, key, x)
	{
		char k[64];
		json_int_t nw, sc, es;
		snprintf(k, sizeof(k), "new_%s", key);
		nw = json_integer_value(json_object_get(pk, k));
		snprintf(k, sizeof(k), "second_%s", key);
		sc = json_integer_value(json_object_get(pk, k));
		snprintf(k, sizeof(k), "established_%s", key);
		es = json_integer_value(json_object_get(pk, k));
		printf("%-8s %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
		       " %9" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n",
		       key, json_integer_value(x), nw, sc, es);
	}
	json_t *en = json_object_get(out, "enforce_ms");
	if (en) {
		double p99 = json_number_value(json_object_get(en, "p99"));
		printf("\nPolicy create to enforcement (parse, compile, map update, a probe flow "
		       "answered), %d rounds:\n  p50 %.3f ms  p99 %.3f ms  max %.3f ms   target p99 "
		       "<= %.0f ms: %s\n",
		       (int)json_integer_value(json_object_get(en, "rounds")),
		       json_number_value(json_object_get(en, "p50")), p99,
		       json_number_value(json_object_get(en, "max")), PB_TARGET_ENFORCE_MS,
		       p99 <= PB_TARGET_ENFORCE_MS ? "ok" : "MISSED");
	}
	pb_cluster_print(out);
	json_t *w;
	json_array_foreach(json_object_get(out, "warnings"), i, w)
		fprintf(stderr, "warning: %s\n", json_string_value(w));
}

/* ---- the command ---- */

static int parse_counts(const char *s, struct pb_opts *o, char *msg, size_t msgsize)
{
	o->ncounts = 0;
	_cleanup_free_ char *dup = strdup(s);
	if (!dup)
		return -ENOMEM;
	char *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(t, &end, 10);
		if (errno || *end || end == t || v < 1 || v > PB_MAX_RULES) {
			snprintf(msg, msgsize, "--rules: %s is not a rule count from 1 to %d", t,
				 PB_MAX_RULES);
			return -EINVAL;
		}
		if (o->ncounts == PB_MAX_COUNTS) {
			snprintf(msg, msgsize, "--rules: at most %d counts", PB_MAX_COUNTS);
			return -EINVAL;
		}
		o->counts[o->ncounts++] = (size_t)v;
	}
	if (o->ncounts == 0) {
		snprintf(msg, msgsize, "--rules: expected a list such as 10,1000,10000");
		return -EINVAL;
	}
	return 0;
}

static int parse_int(const char *s, int lo, int hi, int *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static int echo_path(struct pb *b, struct shoal_err *err)
{
	ssize_t n = readlink("/proc/self/exe", b->self, sizeof(b->self) - 1);
	if (n < 0)
		return shoal_err_errno(err, -errno, "finding the shoal binary");
	b->self[n] = 0;
	if (b->o.echo) {
		snprintf(b->echo, sizeof(b->echo), "%s", b->o.echo);
	} else {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", b->self);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = 0;
		snprintf(b->echo, sizeof(b->echo), "%s/shoal-bench-echo", dir);
	}
	if (access(b->echo, X_OK) < 0)
		return shoal_err_set(err, -ENOENT,
				     "the echo server %s is missing: build shoal-bench-echo or "
				     "pass --echo PATH",
				     b->echo);
	return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of key over the rounds. */
static double median_of(json_t *rounds, const char *key)
{
	double v[PB_MAX_ROUNDS];
	size_t n = 0, i;
	json_t *x;
	json_array_foreach(rounds, i, x) if (n < PB_MAX_ROUNDS) v[n++] =
		json_number_value(json_object_get(x, key));
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(v[0]), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A variant of its rounds (taken): the medians of their figures. */
static json_t *pb_variant(const char *enforcer, size_t n, json_t *rounds)
{
	char name[48];
	snprintf(name, sizeof(name), "%s-%zu", enforcer, n);
	return json_pack("{s:s, s:s, s:I, s:f, s:{s:f, s:f}, s:o}", "name", name, "enforcer",
			 enforcer, "rules", (json_int_t)n, "per_sec", median_of(rounds, "per_sec"),
			 "latency_us", "p50", median_of(rounds, "p50_us"), "p99",
			 median_of(rounds, "p99_us"), "rounds", rounds);
}

static int run_all(struct cli_ctx *ctx, struct pb *b, json_t *out, struct shoal_err *err)
{
	json_t *variants = json_array(), *packet = json_object(), *entries = json_object();
	json_object_set_new(out, "variants", variants);
	json_object_set_new(out, "packet_ns", packet);
	json_object_set_new(out, "map_entries", entries);
	json_t *warnings = json_object_get(out, "warnings");
	(void)ctx;
	int r = pb_up(b, err);
	if (r < 0)
		return r;
	struct lb_policy_open_opts po = {.log_denied_only = true};
	r = lb_policy_open(&po, &b->pol, err);
	if (r < 0)
		return r;
	/* the echo server answers before anything is measured */
	int64_t until = mono_ns() + 3000000000LL;
	while ((r = probe_tcp(b, PB_CLIENT, 100)) != 1 && mono_ns() < until && !pb_interrupted) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (r != 1)
		return shoal_err_set(err, -EIO, "the echo server in %s did not answer", b->ns_s);

	/* Each slice with rules is paired with one without just before it, and
	 * a figure's ratio is the median of its pairs': on a shared machine
	 * whose load drifts, slices minutes apart are not comparable. */
	uint16_t sport = 20000;
	for (int ci = 0; ci < b->o.ncounts; ci++) {
		size_t n = b->o.counts[ci];
		json_t *none_rounds = json_array();
		json_t *none_v = NULL;
		for (int e = PB_SHOAL; e < PB_ENFORCERS; e++) {
			json_t *rounds = json_array(), *last = NULL;
			double install_ms = 0;
			for (int k = 0; k < b->o.rounds; k++) {
				if (pb_interrupted) {
					json_decref(rounds);
					json_decref(none_rounds);
					json_decref(none_v);
					return shoal_err_set(err, -EINTR, "pb_interrupted");
				}
				if (!b->o.quiet && !b->o.json)
					fprintf(stderr, "%zu rules, %s, pair %d of %d...\n", n,
						enforcer_names[e], k + 1, b->o.rounds);
				json_t *nv = load_run(b, err);
				if (!nv)
					r = -EIO;
				size_t nent = 0;
				int64_t t_set = mono_ns();
				if (r >= 0)
					r = enforcer_set(b, (enum pb_enforcer)e, n, &nent, err);
				if (k == 0)
					install_ms = (double)(mono_ns() - t_set) / 1e6;
				if (r >= 0 && k == 0) {
					if (probe_tcp(b, PB_CLIENT, 1000) != 1)
						r = shoal_err_set(err, -EPROTO,
								  "%s with %zu rules refused the "
								  "client it allows",
								  enforcer_names[e], n);
					else if (probe_tcp(b, PB_STRANGER, 300) != 0)
						r = shoal_err_set(err, -EPROTO,
								  "%s with %zu rules let through a "
								  "source no rule allows",
								  enforcer_names[e], n);
				}
				if (r >= 0 && k == 0 && e == PB_SHOAL) {
					char key[32];
					snprintf(key, sizeof(key), "%zu", n);
					json_object_set_new(entries, key,
							    json_integer((json_int_t)nent));
					r = packet_cost(b, &sport, packet, n, err);
				}
				json_t *v = r >= 0 ? load_run(b, err) : NULL;
				if (!v && r >= 0)
					r = -EIO;
				if (r >= 0)
					r = enforcer_set(b, (enum pb_enforcer)e, 0, NULL, err);
				if (r < 0) {
					json_decref(nv);
					json_decref(v);
					json_decref(rounds);
					json_decref(none_rounds);
					json_decref(none_v);
					json_decref(last);
					return r;
				}
				json_t *lat = json_object_get(v, "latency_us");
				json_t *nlat = json_object_get(nv, "latency_us");
				json_array_append_new(
					rounds, json_pack("{s:f, s:O, s:O, s:f, s:f}", "per_sec",
							  variant_rate(v), "p50_us",
							  json_object_get(lat, "p50"), "p99_us",
							  json_object_get(lat, "p99"),
							  "none_per_sec", variant_rate(nv), "ratio",
							  variant_rate(v) / variant_rate(nv)));
				json_array_append_new(
					none_rounds,
					json_pack("{s:f, s:O, s:O}", "per_sec", variant_rate(nv),
						  "p50_us", json_object_get(nlat, "p50"), "p99_us",
						  json_object_get(nlat, "p99")));
				json_decref(last);
				last = v;
				json_decref(none_v);
				none_v = nv;
			}
			json_t *v = pb_variant(enforcer_names[e], n, rounds);
			json_object_set_new(v, "install_ms", json_real(install_ms));
			json_object_set_new(v, "ratio_to_none",
					    json_real(median_of(rounds, "ratio")));
			json_decref(last);
			if (e == PB_SHOAL && n >= 10000 &&
			    median_of(rounds, "ratio") < PB_TARGET_RATIO)
				json_array_append_new(
					warnings,
					json_sprintf(
						"shoal with %zu rules: %.3f of no policy's rate, "
						"below the %.2f target",
						n, median_of(rounds, "ratio"), PB_TARGET_RATIO));
			if (e == PB_SHOAL) {
				json_object_set_new(v, "compile_ms", json_real(b->compile_ms));
				json_object_set_new(v, "apply_ms", json_real(b->apply_ms));
			}
			json_array_append_new(variants, v);
		}
		json_decref(none_v);
		json_t *nvar = pb_variant("none", 0, none_rounds);
		char name[48];
		snprintf(name, sizeof(name), "none-%zu", n);
		json_object_set_new(nvar, "name", json_string(name));
		/* before the rule counts' variants, as the table reads */
		json_array_insert_new(variants, json_array_size(variants) - (PB_ENFORCERS - 1),
				      nvar);
	}

	struct bench_samples s = {0};
	r = enforce_rounds(b, &s, err);
	if (r >= 0) {
		json_t *en = json_pack("{s:f, s:f, s:f, s:f, s:i}", "p50",
				       (double)bench_quantile(&s, 0.5) / 1e6, "p99",
				       (double)bench_quantile(&s, 0.99) / 1e6, "min",
				       (double)bench_quantile(&s, 0) / 1e6, "max",
				       (double)bench_quantile(&s, 1) / 1e6, "rounds", (int)s.n);
		json_object_set_new(out, "enforce_ms", en);
		if (json_number_value(json_object_get(en, "p99")) > PB_TARGET_ENFORCE_MS)
			json_array_append_new(
				warnings, json_sprintf("enforcement p99 above the %.0f ms target",
						       PB_TARGET_ENFORCE_MS));
	}
	bench_samples_free(&s);
	return r;
}

/* --api-target: the API rows alone; p is done here. */
static int bench_policy_api(struct cli_ctx *ctx, struct pb *b, struct pb_api *api,
			    struct cli_opts *p)
{
	cli_opts_done(p);
	struct shoal_err err = {0};
	json_t *out = json_pack("{s:[], s:{s:i, s:s, s:s, s:{s:f}}}", "warnings", "config",
				"enforce_rounds", b->o.enforce_rounds, "api_target",
				inet_ntoa(api->dst.sin_addr), "api_service", api->service,
				"targets", "enforce_p99_ms", PB_TARGET_ENFORCE_MS);
	if (!out)
		return 1;
	bench_result_stamp(out, "policy", ctx);
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	int r = pb_api_run(ctx, b, api, out, &err);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (r < 0) {
		cli_print_err(&err);
		json_decref(out);
		return 1;
	}
	int rc = 0;
	if (b->o.outfile && json_dump_file(out, b->o.outfile, JSON_INDENT(2)) < 0) {
		fprintf(stderr, "shoal bench policy: writing %s failed\n", b->o.outfile);
		rc = 1;
	}
	if (b->o.json) {
		json_dumpf(out, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		pb_api_print(out);
	}
	json_decref(out);
	return rc;
}

int bench_policy(struct cli_ctx *ctx, int argc, char **argv)
{
	enum {
		O_RULES = 1,
		O_DURATION,
		O_WARMUP,
		O_ROUNDS,
		O_CONNS,
		O_ENFORCE,
		O_ECHO,
		O_OUT,
		O_JSON,
		O_QUIET,
		O_API_TARGET,
		O_API_SERVICE,
		O_NODES,
		O_CLUSTER_ROUNDS
	};
	static const struct cli_opt opts[] = {
		{O_RULES, "rules", 0, CLI_OPT_VALUE, "list",
		 "Rule counts selecting the receiver (default 10,1000,10000)"},
		{O_DURATION, "duration", 'd', CLI_OPT_VALUE, "duration",
		 "Measured time of each slice (default 2s)"},
		{O_WARMUP, "warmup", 0, CLI_OPT_VALUE, "duration",
		 "Unmeasured time before each slice (default 0.5s)"},
		{O_ROUNDS, "rounds", 0, CLI_OPT_VALUE, "int",
		 "Pairs of slices per rule count and enforcer (default 3)"},
		{O_CONNS, "connections", 'c', CLI_OPT_VALUE, "int",
		 "Concurrent connections (default 4)"},
		{O_ENFORCE, "enforce-rounds", 0, CLI_OPT_VALUE, "int",
		 "Policy creates timed to enforcement (default 50)"},
		{O_ECHO, "echo", 0, CLI_OPT_VALUE, "path",
		 "The echo server (default: shoal-bench-echo beside shoal)"},
		{O_OUT, "output", 'o', CLI_OPT_VALUE, "file", "Also write the JSON results here"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON"},
		{O_QUIET, "quiet", 'q', CLI_OPT_BOOL, NULL, "No progress"},
		{O_API_TARGET, "api-target", 0, CLI_OPT_VALUE, "addr:port",
		 "Instead: time policy creates through the running agent's API to enforcement "
		 "at this UDP echo of a container"},
		{O_API_SERVICE, "api-service", 0, CLI_OPT_VALUE, "name",
		 "The service of the --api-target container"},
		{O_NODES, "nodes", 0, CLI_OPT_VALUE, "int",
		 "Also: policy create through node 1's API to enforcement on every node of a "
		 "cluster of this many (2 to 5; each a network namespace with its own shoald, "
		 "etcd; default: no cluster phase)"},
		{O_CLUSTER_ROUNDS, "cluster-rounds", 0, CLI_OPT_VALUE, "int",
		 "Policy creates timed on every node with --nodes (default 20)"},
		{0},
	};
	struct pb b = {.host_fd = -1,
		       .o = {.counts = {10, 1000, 10000},
			     .ncounts = 3,
			     .duration = 2,
			     .warmup = 0.5,
			     .rounds = 3,
			     .conns = 4,
			     .enforce_rounds = 50,
			     .cluster_rounds = PB_CLUSTER_ROUNDS}};
	struct cli_opts p;
	struct pb_api api = {.dst = {.sin_family = AF_INET}};
	const char *api_target = NULL;
	bool cluster_rounds_given = false;
	char msg[256];
	int o;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((o = cli_opts_next(&p)) > 0) {
		int bad = 0;
		if (o == O_RULES) {
			if (parse_counts(p.value, &b.o, msg, sizeof(msg)) < 0)
				bad = 1;
		} else if (o == O_DURATION || o == O_WARMUP) {
			double *d = o == O_DURATION ? &b.o.duration : &b.o.warmup;
			if (bench_parse_seconds(p.value, d) < 0 || (o == O_DURATION && *d <= 0)) {
				snprintf(msg, sizeof(msg), "--%s: %s is not a duration",
					 o == O_DURATION ? "duration" : "warmup", p.value);
				bad = 1;
			}
		} else if (o == O_ROUNDS || o == O_CONNS || o == O_ENFORCE) {
			int *d = o == O_ROUNDS	? &b.o.rounds
				 : o == O_CONNS ? &b.o.conns
						: &b.o.enforce_rounds;
			int hi = o == O_ROUNDS ? 100 : o == O_CONNS ? 1000 : 10000;
			if (parse_int(p.value, 1, hi, d) < 0) {
				snprintf(msg, sizeof(msg), "--%s: expected an integer from 1 to %d",
					 o == O_ROUNDS	? "rounds"
					 : o == O_CONNS ? "connections"
							: "enforce-rounds",
					 hi);
				bad = 1;
			}
		} else if (o == O_ECHO) {
			b.o.echo = p.value;
		} else if (o == O_OUT) {
			b.o.outfile = p.value;
		} else if (o == O_JSON) {
			b.o.json = cli_opts_bool(&p);
		} else if (o == O_QUIET) {
			b.o.quiet = cli_opts_bool(&p);
		} else if (o == O_API_TARGET) {
			char host[64];
			const char *colon = strrchr(p.value, ':');
			api_target = p.value;
			if (!colon || (size_t)(colon - p.value) >= sizeof(host) ||
			    parse_int(colon + 1, 1, 65535, &api.port) < 0) {
				snprintf(msg, sizeof(msg),
					 "--api-target: %s is not ADDR:PORT (an IPv4 address)",
					 p.value);
				bad = 1;
			} else {
				snprintf(host, sizeof(host), "%.*s", (int)(colon - p.value),
					 p.value);
				api.dst.sin_port = htons((uint16_t)api.port);
				if (inet_pton(AF_INET, host, &api.dst.sin_addr) != 1) {
					snprintf(msg, sizeof(msg),
						 "--api-target: %s is not an IPv4 address", host);
					bad = 1;
				}
			}
		} else if (o == O_API_SERVICE) {
			api.service = p.value;
		} else if (o == O_NODES) {
			if (parse_int(p.value, PB_CLUSTER_MIN_NODES, PB_CLUSTER_MAX_NODES,
				      &b.o.nodes) < 0) {
				snprintf(msg, sizeof(msg),
					 "--nodes: expected %d to %d (each node is a network "
					 "namespace running its own shoald), not %s",
					 PB_CLUSTER_MIN_NODES, PB_CLUSTER_MAX_NODES, p.value);
				bad = 1;
			}
		} else if (o == O_CLUSTER_ROUNDS) {
			cluster_rounds_given = true;
			if (parse_int(p.value, 1, PB_CLUSTER_MAX_ROUNDS, &b.o.cluster_rounds) < 0) {
				snprintf(msg, sizeof(msg),
					 "--cluster-rounds: expected an integer from 1 to %d",
					 PB_CLUSTER_MAX_ROUNDS);
				bad = 1;
			}
		}
		if (bad) {
			cli_opts_done(&p);
			return cli_usage_error(ctx, msg);
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(
			ctx, &p, o, "[OPTIONS]",
			"What network policy costs: request rate and latency with 0 "
			"to 10,000 rules as shoal's eBPF, iptables and nftables; the "
			"policy program's per-packet cost; policy create to enforcement "
			"(with --nodes N, also on every node of a cluster the bench makes)");
	if (p.npos > 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "shoal bench policy takes no arguments");
	}
	if (!api_target != !api.service) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, api_target
						    ? "--api-target needs --api-service NAME"
						    : "--api-service needs --api-target ADDR:PORT");
	}
	if (cluster_rounds_given && !b.o.nodes) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "--cluster-rounds needs --nodes N (the cluster phase)");
	}
	if (api_target && b.o.nodes) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "--nodes runs a cluster of its own, --api-target "
					    "measures a running agent: give one of them");
	}
	if (api_target)
		return bench_policy_api(ctx, &b, &api, &p);
	cli_opts_done(&p);
	if (geteuid() != 0) {
		fprintf(stderr, "shoal bench policy: needs root (network namespaces, eBPF, "
				"iptables)\n");
		return 1;
	}
	struct shoal_err err = {0};
	if (echo_path(&b, &err) < 0 || (b.o.nodes && pb_cluster_check(&b, &err) < 0)) {
		cli_print_err(&err);
		return 1;
	}
	json_t *out = json_object();
	if (!out)
		return 1;
	json_object_set_new(out, "warnings", json_array());
	json_object_set_new(
		out, "config",
		json_pack("{s:i, s:f, s:f, s:i, s:i, s:s, s:s, s:{s:f, s:f}}", "connections",
			  b.o.conns, "duration_s", b.o.duration, "warmup_s", b.o.warmup, "rounds",
			  b.o.rounds, "enforce_rounds", b.o.enforce_rounds, "load",
			  "a new TCP connection per request (shoal bench tcp --new-connections)",
			  "ebpf_driven", "directly through lb/lb-policy on a veth the bench made",
			  "targets", "ratio_to_none_at_10000", PB_TARGET_RATIO, "enforce_p99_ms",
			  PB_TARGET_ENFORCE_MS));
	if (b.o.nodes) {
		json_object_set_new(json_object_get(out, "config"), "nodes",
				    json_integer(b.o.nodes));
		json_object_set_new(json_object_get(out, "config"), "cluster_rounds",
				    json_integer(b.o.cluster_rounds));
	}
	json_t *counts = json_array();
	for (int i = 0; i < b.o.ncounts; i++)
		json_array_append_new(counts, json_integer((json_int_t)b.o.counts[i]));
	json_object_set_new(json_object_get(out, "config"), "rules", counts);
	bench_result_stamp(out, "policy", ctx);

	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	int r = run_all(ctx, &b, out, &err);
	pb_down(&b);
	if (r >= 0 && b.o.nodes && !pb_interrupted)
		r = pb_cluster_run(&b, out, &err);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (r < 0) {
		if (!err.msg[0])
			shoal_err_set(&err, r, "the benchmark failed");
		cli_print_err(&err);
		json_decref(out);
		return 1;
	}
	int rc = 0;
	if (b.o.outfile && json_dump_file(out, b.o.outfile, JSON_INDENT(2)) < 0) {
		fprintf(stderr, "shoal bench policy: writing %s failed\n", b.o.outfile);
		rc = 1;
	}
	if (b.o.json) {
		json_dumpf(out, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_result(out);
	}
	json_decref(out);
	return rc;
}
