// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench/bench-lb-internal.h"
#include "bench/bench-util.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/http.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* `shoal bench lb`: published-port load balancing, side by side in one run.
 *
 * Topology, built here and torn down on exit: a client network namespace
 * with a veth into the agent's network namespace (the node); a service of
 * the bench image publishing a port; the same backends behind iptables DNAT
 * (statistic random, as kube-proxy), nftables DNAT (numgen), and haproxy when
 * installed, each on its own port of the node. The client measures
 * keep-alive requests/s and new connections/s against each, and directly
 * against one backend (routed through the node) as the reference. Then the
 * data plane is filled with services through lb/ on the agent's pinned maps
 * (the agent's own services and ids are left alone), shoal is measured again
 * and so is the latency of one service's backend update; last, the tc
 * program's per-packet cost through BPF_PROG_TEST_RUN. */

#define LOAD_PORT_BASE 40000 /* the filler services: 40000 and up, never published */

struct lb_bench {
	struct cli_ctx *ctx;
	bool json;
	double duration;
	int backends;
	int conns;
	int rounds;
	int port; /* shoal; +1 iptables, +2 nftables, +3 haproxy */
	int services, total_backends;
	char image_tar[4096];
	char pin_dir[4096];

	pid_t agent;
	int node_ns, client_ns, host_ns;
	char cns[32], veth_node[16], veth_client[16], chain[32], nft_table[32];
	char node_ip[16], client_ip[16];
	struct in_addr node_addr;
	/* the direct figures' source: the data plane's flow table keeps closed
	 * flows, and a direct connection reusing a balanced flow's 4-tuple would
	 * have its replies rewritten to the published address */
	struct in_addr direct_addr;
	char direct_ip[16];
	char svc[48];
	char tmp[64];
	bool have_cns, have_veth, svc_created, ipt, ipt_nat_existed, nft;
	pid_t haproxy;
	/* CPU placement: the load generator on client_cpus, the backends and
	 * haproxy on server_cpus, so that every row gets the same CPU budget
	 * whatever number of server processes it has; off with --no-pin or on
	 * one CPU */
	bool pin;
	cpu_set_t client_cpus, server_cpus;
	int client_cpu;
	char server_cpus_str[48];
	struct lb *lb;
	struct lb_backend_spec *be;
	size_t nbe;
	struct lb_service_key *loaded;
	size_t nloaded;
	json_t *out;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

/* ---- commands ---- */

enum where { HOST, NODE, CLIENT };

static int ns_fd(struct lb_bench *b, enum where w)
{
	return w == NODE ? b->node_ns : w == CLIENT ? b->client_ns : b->host_ns;
}

/* Runs a command split on spaces, in a namespace; its exit status. */
static int runf(struct lb_bench *b, enum where w, const char *input, const char *fmt, ...)
{
	char line[1024], *argv[64];
	va_list ap;
	va_start(ap, fmt);
	bench_argv_vformat(line, sizeof(line), argv, 64, fmt, ap);
	va_end(ap);
	int in[2] = {-1, -1};
	if (input && pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(input ? in[0] : fd, 0);
		dup2(fd, 1);
		if (!getenv("SHOAL_BENCH_DEBUG"))
			dup2(fd, 2);
		if (setns(ns_fd(b, w), CLONE_NEWNET) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (input) {
		close(in[0]);
		write_all(in[1], input, strlen(input));
		close(in[1]);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool have_prog(const char *name)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	if (!copy)
		return false;
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", d, name);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

static int call(struct lb_bench *b, const char *method, const char *path, json_t *body, int *status,
		json_t **ret, struct shoal_err *err)
{
	int st = 0;
	json_t *j = NULL;
	int r = cli_call_json(b->ctx, method, path, body, &st, &j, err);
	if (r < 0)
		return r;
	if (status)
		*status = st;
	if (ret)
		*ret = j;
	else
		json_decref(j);
	return 0;
}

/* ---- CPU placement ---- */

/* Client on the first CPU this process may use, servers on the others. */
static void cpus_split(struct lb_bench *b)
{
	cpu_set_t all;
	int first = -1, last = -1;

	CPU_ZERO(&b->client_cpus);
	CPU_ZERO(&b->server_cpus);
	if (!b->pin || sched_getaffinity(0, sizeof(all), &all) < 0 || CPU_COUNT(&all) < 2) {
		b->pin = false;
		return;
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &all))
			continue;
		if (first < 0) {
			first = c;
			b->client_cpu = c;
			CPU_SET(c, &b->client_cpus);
			continue;
		}
		CPU_SET(c, &b->server_cpus);
		last = c;
	}
	int second = -1;
	for (int c = first + 1; c <= last && second < 0; c++)
		if (CPU_ISSET(c, &b->server_cpus))
			second = c;
	if (second == last)
		snprintf(b->server_cpus_str, sizeof(b->server_cpus_str), "%d", second);
	else
		snprintf(b->server_cpus_str, sizeof(b->server_cpus_str), "%d-%d (of those allowed)",
			 second, last);
}

/* Every thread of pid onto cpus. */
static int pin_pid(pid_t pid, const cpu_set_t *cpus)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d))) {
		int tid = atoi(de->d_name);
		if (tid > 0 && sched_setaffinity(tid, sizeof(*cpus), cpus) < 0 && errno != ESRCH)
			r = -errno;
	}
	return r;
}

/* The service's containers (their process trees: the httpd is pid 1 of
 * its namespace) onto the server CPUs. */
static int pin_backends(struct lb_bench *b, struct shoal_err *err)
{
	if (!b->pin)
		return 0;
	json_t *list = NULL;
	int st = 0, r = call(b, "GET", "/containers/json", NULL, &st, &list, err);
	if (r < 0)
		return r;
	size_t i, pinned = 0, plen = strlen(b->svc);
	json_t *c;
	json_array_foreach(list, i, c)
	{
		const char *name =
			json_string_value(json_array_get(json_object_get(c, "Names"), 0));
		const char *id = json_string_value(json_object_get(c, "Id"));
		if (!name || !id)
			continue;
		if (name[0] == '/')
			name++;
		if (strncmp(name, b->svc, plen) != 0 || name[plen] != '.')
			continue;
		char path[128];
		json_t *info = NULL;
		snprintf(path, sizeof(path), "/containers/%s/json", id);
		if (call(b, "GET", path, NULL, &st, &info, err) < 0)
			continue;
		pid_t pid = (pid_t)json_integer_value(
			json_object_get(json_object_get(info, "State"), "Pid"));
		json_decref(info);
		if (pid > 0 && pin_pid(pid, &b->server_cpus) == 0)
			pinned++;
	}
	json_decref(list);
	if (pinned != (size_t)b->backends)
		return shoal_err_set(err, ESRCH, "placed %zu of %d backends on CPUs %s", pinned,
				     b->backends, b->server_cpus_str);
	return 0;
}

/* ---- setup ---- */

/* The agent's --bpffs-dir from its command line, else its default. */
static void find_pin_dir(struct lb_bench *b)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)b->agent);
	_cleanup_free_ char *cmd = NULL;
	size_t len = 0;
	const char *dir = "/sys/fs/bpf/shoal";
	if (read_file(path, 65536, &cmd, &len) >= 0) {
		for (size_t i = 0; i < len;) {
			const char *a = cmd + i;
			size_t al = strnlen(a, len - i);
			if (strcmp(a, "--bpffs-dir") == 0 && i + al + 1 < len)
				dir = a + al + 1;
			else if (strncmp(a, "--bpffs-dir=", 12) == 0)
				dir = a + 12;
			i += al + 1;
		}
	}
	snprintf(b->pin_dir, sizeof(b->pin_dir), "%s/lb", dir);
}

static int topology_up(struct lb_bench *b, struct shoal_err *err)
{
	int id = (int)(getpid() % 100000);
	int sub = (int)(getpid() % 250) + 1;
	snprintf(b->cns, sizeof(b->cns), "shoal-blb-%d", id);
	snprintf(b->veth_node, sizeof(b->veth_node), "blbn%d", id);
	snprintf(b->veth_client, sizeof(b->veth_client), "blbc%d", id);
	snprintf(b->node_ip, sizeof(b->node_ip), "10.252.%d.1", sub);
	snprintf(b->client_ip, sizeof(b->client_ip), "10.252.%d.2", sub);
	snprintf(b->direct_ip, sizeof(b->direct_ip), "10.252.%d.3", sub);
	inet_pton(AF_INET, b->node_ip, &b->node_addr);
	inet_pton(AF_INET, b->direct_ip, &b->direct_addr);
	if (runf(b, HOST, NULL, "ip netns add %s", b->cns) != 0)
		return shoal_err_set(err, EIO, "ip netns add %s failed", b->cns);
	b->have_cns = true;
	char path[64];
	snprintf(path, sizeof(path), "/run/netns/%s", b->cns);
	b->client_ns = open(path, O_RDONLY | O_CLOEXEC);
	if (b->client_ns < 0)
		return shoal_err_errno(err, errno, "open %s", path);
	if (runf(b, NODE, NULL, "ip link add %s type veth peer name %s netns %s", b->veth_node,
		 b->veth_client, b->cns) != 0)
		return shoal_err_set(err, EIO, "creating the veth %s in the agent's namespace",
				     b->veth_node);
	b->have_veth = true;
	if (runf(b, NODE, NULL, "ip addr add %s/24 dev %s", b->node_ip, b->veth_node) != 0 ||
	    runf(b, NODE, NULL, "ip link set %s up", b->veth_node) != 0 ||
	    runf(b, CLIENT, NULL, "ip addr add %s/24 dev %s", b->client_ip, b->veth_client) != 0 ||
	    runf(b, CLIENT, NULL, "ip addr add %s/24 dev %s", b->direct_ip, b->veth_client) != 0 ||
	    runf(b, CLIENT, NULL, "ip link set %s up", b->veth_client) != 0 ||
	    runf(b, CLIENT, NULL, "ip link set lo up") != 0)
		return shoal_err_set(err, EIO, "configuring the client veth");
	return 0;
}

static int image_ensure(struct lb_bench *b, struct shoal_err *err)
{
	int st = 0;
	struct shoal_err e = {0};
	/* a missing image is an error answer: then load it */
	if (call(b, "GET", "/images/shoal-bench/json", NULL, &st, NULL, &e) >= 0 && st == 200)
		return 0;
	if (!b->image_tar[0]) {
		/* next to the binary: BUILD/bin/shoal -> BUILD/images/bench.tar */
		char exe[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			char *s = strrchr(exe, '/');
			if (s)
				*s = '\0';
			snprintf(b->image_tar, sizeof(b->image_tar), "%s/../images/bench.tar", exe);
		}
	}
	if (access(b->image_tar, R_OK) < 0)
		return shoal_err_set(err, ENOENT,
				     "image shoal-bench is not loaded and %s is missing; "
				     "build target shoal_bench_image or pass --image-tar",
				     b->image_tar);
	if (bench_image_load(b->ctx, b->image_tar) != 0)
		return shoal_err_set(err, EIO, "loading %s", b->image_tar);
	return 0;
}

static int backends_read(struct lb_bench *b, size_t *ret_active)
{
	struct lb_service_key k = {.addr = 0, .port = (uint16_t)b->port, .proto = IPPROTO_TCP};
	free(b->be);
	b->be = NULL;
	b->nbe = 0;
	int r = lb_service_backends(b->lb, &k, &b->be, &b->nbe);
	if (r < 0)
		return r;
	size_t a = 0;
	for (size_t i = 0; i < b->nbe; i++)
		if (b->be[i].state == LB_BACKEND_ACTIVE)
			b->be[a++] = b->be[i];
	b->nbe = a;
	*ret_active = a;
	return 0;
}

static int service_up(struct lb_bench *b, struct shoal_err *err)
{
	snprintf(b->svc, sizeof(b->svc), "shoal-bench-lb-%d", (int)getpid());
	json_t *body = json_pack("{s:s, s:{s:{s:s, s:I}}, s:{s:{s:i}}, s:{s:[{s:s, s:i, s:i}]}}",
				 "Name", b->svc, "TaskTemplate", "ContainerSpec", "Image",
				 "shoal-bench", "StopGracePeriod", (json_int_t)1000000000, "Mode",
				 "Replicated", "Replicas", b->backends, "EndpointSpec", "Ports",
				 "Protocol", "tcp", "TargetPort", 80, "PublishedPort", b->port);
	int st = 0;
	json_t *resp = NULL;
	int r = call(b, "POST", "/services/create", body, &st, &resp, err);
	json_decref(body);
	if (r < 0)
		return r;
	if (st != 201) {
		const char *m = json_string_value(json_object_get(resp, "message"));
		r = shoal_err_set(err, EIO, "creating service %s: %d %s", b->svc, st, m ?: "");
		json_decref(resp);
		return r;
	}
	json_decref(resp);
	b->svc_created = true;
	/* running tasks are the active backends of the published port */
	size_t active = 0;
	/* with the XDP program loaded (never attached) for its per-packet cost */
	struct lb_open_opts lo = {.pin_dir = b->pin_dir, .xdp = true};
	for (int i = 0; i < 300 && !interrupted; i++) {
		/* a handle sees the maps as they were when it opened them: reopen until
		 * the agent has programmed every backend */
		b->lb = lb_close(b->lb);
		if (lb_open(&lo, &b->lb, err) < 0)
			return shoal_err_wrap(err, "opening the agent's data plane at %s",
					      b->pin_dir);
		if (backends_read(b, &active) == 0 && active == (size_t)b->backends)
			break;
		usleep(200000);
	}
	if (active != (size_t)b->backends)
		return shoal_err_set(err, ETIMEDOUT, "%zu of %d backends running after 60 s",
				     active, b->backends);
	return 0;
}

/* The agent attaches to new uplinks on its next scan: wait for our veth. */
static int wait_published(struct lb_bench *b, struct shoal_err *err)
{
	for (int i = 0; i < 300 && !interrupted; i++) {
		struct bench_lb_load l;
		if (runf(b, NODE, NULL, "tc filter show dev %s ingress", b->veth_node) == 0) {
			pid_t pid = fork();
			if (pid == 0) {
				if (setns(b->client_ns, CLONE_NEWNET) < 0)
					_exit(2);
				_exit(bench_lb_load_run(0, b->node_addr.s_addr, (uint16_t)b->port,
							1, 0.05, false, &l) == 0
					      ? 0
					      : 1);
			}
			int st = 1;
			if (pid > 0)
				waitpid(pid, &st, 0);
			if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
				return 0;
		}
		usleep(100000);
	}
	return shoal_err_set(err, ETIMEDOUT, "the published port %d never answered on %s", b->port,
			     b->veth_node);
}

/* ---- measurements ---- */

/* Load from the client namespace, in a child so that this process stays in
 * the namespace the agent's socket and the other tools expect. */
static int measure(struct lb_bench *b, uint32_t addr, int port, bool new_conn,
		   struct bench_lb_load *ret)
{
	return bench_lb_load_in(b->client_ns, b->pin ? &b->client_cpus : NULL,
				addr == b->be[0].addr ? b->direct_addr.s_addr : 0, addr,
				(uint16_t)port, b->conns, b->duration, new_conn, ret);
}

static json_t *load_json(const struct bench_lb_load *l)
{
	return json_pack("{s:f, s:f, s:f, s:I, s:I}", "per_sec", l->per_sec, "p50_us",
			 (double)l->p50_ns / 1e3, "p99_us", (double)l->p99_ns / 1e3, "requests",
			 (json_int_t)l->requests, "errors", (json_int_t)l->errors);
}

/* Both modes against one target, appended to rounds[name]. */
static int measure_target(struct lb_bench *b, const char *name, uint32_t addr, int port,
			  struct shoal_err *err)
{
	struct bench_lb_load ka, nc;
	if (!b->json)
		fprintf(stderr, "  measuring %s ...\n", name);
	if (measure(b, addr, port, false, &ka) < 0 || measure(b, addr, port, true, &nc) < 0)
		return shoal_err_set(err, ECONNREFUSED, "%s: no answer on port %d", name, port);
	json_t *rounds = json_object_get(b->out, "rounds");
	json_t *t = json_object_get(rounds, name);
	if (!t) {
		t = json_pack("{s:[], s:[]}", "keepalive", "newconn");
		json_object_set_new(rounds, name, t);
	}
	json_array_append_new(json_object_get(t, "keepalive"), load_json(&ka));
	json_array_append_new(json_object_get(t, "newconn"), load_json(&nc));
	return 0;
}

static int by_rate(const void *x, const void *y)
{
	double a = json_real_value(json_object_get(*(json_t *const *)x, "per_sec"));
	double c = json_real_value(json_object_get(*(json_t *const *)y, "per_sec"));
	return a < c ? -1 : a > c;
}

/* Each target's figure is its median round by rate: the rounds interleave
 * the targets, so that a slow moment of the machine does not land on one. */
static void rounds_finish(struct lb_bench *b)
{
	json_t *rounds = json_object_get(b->out, "rounds");
	const char *name;
	json_t *t;
	json_object_foreach(rounds, name, t)
	{
		json_t *res = json_object();
		const char *mode;
		json_t *arr;
		json_object_foreach(t, mode, arr)
		{
			size_t n = json_array_size(arr);
			json_t *v[64];
			if (n == 0 || n > 64)
				continue;
			for (size_t i = 0; i < n; i++)
				v[i] = json_array_get(arr, i);
			qsort(v, n, sizeof(v[0]), by_rate);
			json_object_set(res, mode, v[n / 2]);
		}
		json_object_set_new(
			res, "rounds",
			json_integer((json_int_t)json_array_size(json_object_get(t, "keepalive"))));
		json_object_set_new(b->out, name, res);
	}
}

static void be_ip(const struct lb_backend_spec *be, char *buf)
{
	struct in_addr a = {.s_addr = be->addr};
	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static int iptables_up(struct lb_bench *b, struct shoal_err *err)
{
	b->ipt_nat_existed = runf(b, NODE, NULL, "nft list table ip nat") == 0;
	snprintf(b->chain, sizeof(b->chain), "SHOAL-BLB-%d", (int)(getpid() % 100000));
	if (runf(b, NODE, NULL, "iptables -w -t nat -N %s", b->chain) != 0)
		return shoal_err_set(err, EIO, "iptables -t nat -N %s failed", b->chain);
	b->ipt = true;
	for (size_t i = 0; i < b->nbe; i++) {
		char ip[INET_ADDRSTRLEN];
		be_ip(&b->be[i], ip);
		int r;
		if (i + 1 < b->nbe)
			r = runf(b, NODE, NULL,
				 "iptables -w -t nat -A %s -p tcp -m statistic --mode random "
				 "--probability %.5f -j DNAT --to-destination %s:%u",
				 b->chain, 1.0 / (double)(b->nbe - i), ip, b->be[i].port);
		else
			r = runf(b, NODE, NULL,
				 "iptables -w -t nat -A %s -p tcp -j DNAT --to-destination %s:%u",
				 b->chain, ip, b->be[i].port);
		if (r != 0)
			return shoal_err_set(err, EIO, "adding the iptables DNAT rules");
	}
	if (runf(b, NODE, NULL, "iptables -w -t nat -I PREROUTING -d %s -p tcp --dport %d -j %s",
		 b->node_ip, b->port + 1, b->chain) != 0)
		return shoal_err_set(err, EIO, "adding the iptables PREROUTING rule");
	return 0;
}

static void iptables_down(struct lb_bench *b)
{
	if (!b->ipt)
		return;
	runf(b, NODE, NULL, "iptables -w -t nat -D PREROUTING -d %s -p tcp --dport %d -j %s",
	     b->node_ip, b->port + 1, b->chain);
	runf(b, NODE, NULL, "iptables -w -t nat -F %s", b->chain);
	runf(b, NODE, NULL, "iptables -w -t nat -X %s", b->chain);
	/* the nat table with its base chains keeps conntrack on: drop it if we made it */
	if (!b->ipt_nat_existed)
		runf(b, NODE, NULL, "iptables -w -t nat -F");
	if (!b->ipt_nat_existed)
		runf(b, NODE, NULL, "nft delete table ip nat");
	b->ipt = false;
}

static int nft_up(struct lb_bench *b, struct shoal_err *err)
{
	snprintf(b->nft_table, sizeof(b->nft_table), "shoal_blb_%d", (int)(getpid() % 100000));
	char script[8192];
	size_t o = 0;
	o += (size_t)snprintf(script + o, sizeof(script) - o, "table ip %s {\n", b->nft_table);
	for (size_t i = 0; i < b->nbe && o < sizeof(script) - 256; i++) {
		char ip[INET_ADDRSTRLEN];
		be_ip(&b->be[i], ip);
		o += (size_t)snprintf(script + o, sizeof(script) - o,
				      "chain be%zu {\n  meta l4proto tcp dnat to %s:%u\n}\n", i, ip,
				      b->be[i].port);
	}
	o += (size_t)snprintf(script + o, sizeof(script) - o,
			      "chain pre {\n  type nat hook prerouting priority dstnat;\n  "
			      "ip daddr %s tcp dport %d numgen random mod %zu vmap {",
			      b->node_ip, b->port + 2, b->nbe);
	for (size_t i = 0; i < b->nbe && o < sizeof(script) - 64; i++)
		o += (size_t)snprintf(script + o, sizeof(script) - o, "%s %zu : goto be%zu",
				      i ? "," : "", i, i);
	snprintf(script + o, sizeof(script) - o, " }\n}\n}\n");
	if (runf(b, NODE, script, "nft -f -") != 0)
		return shoal_err_set(err, EIO, "loading the nftables DNAT table");
	b->nft = true;
	return 0;
}

static void nft_down(struct lb_bench *b)
{
	if (b->nft)
		runf(b, NODE, NULL, "nft delete table ip %s", b->nft_table);
	b->nft = false;
}

static int haproxy_up(struct lb_bench *b, struct shoal_err *err)
{
	char cfg[4096], text[8192];
	snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", b->tmp);
	size_t o = (size_t)snprintf(text, sizeof(text),
				    "global\n  maxconn 4096\n  nbthread 1\n"
				    "defaults\n  mode http\n  timeout connect 5s\n"
				    "  timeout client 30s\n  timeout server 30s\n"
				    "  option http-keep-alive\n"
				    "frontend fe\n  bind %s:%d\n  default_backend be\n"
				    "backend be\n  balance random\n",
				    b->node_ip, b->port + 3);
	for (size_t i = 0; i < b->nbe && o < sizeof(text) - 128; i++) {
		char ip[INET_ADDRSTRLEN];
		be_ip(&b->be[i], ip);
		o += (size_t)snprintf(text + o, sizeof(text) - o, "  server s%zu %s:%u\n", i, ip,
				      b->be[i].port);
	}
	if (write_file_atomic(cfg, text, o, 0600) < 0)
		return shoal_err_errno(err, errno, "writing %s", cfg);
	pid_t pid = fork();
	if (pid < 0)
		return shoal_err_errno(err, errno, "fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fd, 0);
		dup2(fd, 1);
		if (!getenv("SHOAL_BENCH_DEBUG"))
			dup2(fd, 2);
		if (setns(b->node_ns, CLONE_NEWNET) < 0)
			_exit(126);
		if (b->pin)
			sched_setaffinity(0, sizeof(b->server_cpus), &b->server_cpus);
		execlp("haproxy", "haproxy", "-db", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	b->haproxy = pid;
	/* up when it answers */
	for (int i = 0; i < 100; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			b->haproxy = 0;
			return shoal_err_set(err, EIO, "haproxy exited at start");
		}
		pid_t c = fork();
		if (c == 0) {
			struct bench_lb_load l;
			if (setns(b->client_ns, CLONE_NEWNET) < 0)
				_exit(2);
			_exit(bench_lb_load_run(0, b->node_addr.s_addr, (uint16_t)(b->port + 3), 1,
						0.05, false, &l) == 0
				      ? 0
				      : 1);
		}
		if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			return 0;
		usleep(50000);
	}
	return shoal_err_set(err, ETIMEDOUT, "haproxy never answered");
}

static void haproxy_down(struct lb_bench *b)
{
	if (b->haproxy <= 0)
		return;
	kill(b->haproxy, SIGTERM);
	int st;
	while (waitpid(b->haproxy, &st, 0) < 0 && errno == EINTR)
		;
	b->haproxy = 0;
}

/* ---- the data plane loaded ---- */

static int load_services(struct lb_bench *b, struct shoal_err *err)
{
	_cleanup_free_ struct lb_service_key *have = NULL;
	size_t nhave = 0;
	if (lb_service_list(b->lb, &have, &nhave) < 0)
		return shoal_err_set(err, EIO, "listing the programmed services");
	size_t used_be = 0;
	for (size_t i = 0; i < nhave; i++) {
		_cleanup_free_ struct lb_backend_spec *bs = NULL;
		size_t nb = 0;
		if (lb_service_backends(b->lb, &have[i], &bs, &nb) == 0)
			used_be += nb;
	}
	/* what the maps hold (LB_MAX_*), minus what the agent uses, kept in reserve
	 * for its own changes during the run */
	size_t svc_room = LB_MAX_SERVICES - 1 - nhave - 16;
	size_t be_room = LB_MAX_BACKENDS - 1 - used_be - 256;
	size_t ns = (size_t)b->services < svc_room ? (size_t)b->services : svc_room;
	size_t total = (size_t)b->total_backends < be_room ? (size_t)b->total_backends : be_room;
	size_t per = ns ? total / ns : 0;
	if (per > LB_MAX_BACKENDS_PER_SERVICE)
		per = LB_MAX_BACKENDS_PER_SERVICE;
	if (per > lb_maglev_size(b->lb) / LB_MAGLEV_BACKENDS_FACTOR)
		per = lb_maglev_size(b->lb) / LB_MAGLEV_BACKENDS_FACTOR;
	if (per < 1)
		per = 1;
	b->loaded = calloc(ns ? ns : 1, sizeof(*b->loaded));
	_cleanup_free_ struct lb_backend_spec *bs = calloc(per, sizeof(*bs));
	if (!b->loaded || !bs)
		return -ENOMEM;
	int64_t t0 = mono_ns();
	for (size_t i = 0; i < ns && !interrupted; i++) {
		struct lb_service_key k = {.port = (uint16_t)(LOAD_PORT_BASE + i),
					   .proto = IPPROTO_TCP};
		/* unrouted backends in 10.253/16: the filler never carries traffic */
		for (size_t j = 0; j < per; j++)
			bs[j] = (struct lb_backend_spec){
				.addr = htonl(0x0afd0000u | (uint32_t)((i * per + j) & 0xffff)),
				.port = (uint16_t)(1024 + (i * per + j) / 0x10000),
				.state = LB_BACKEND_ACTIVE};
		if (lb_service_upsert(b->lb, &k, bs, per, err) < 0)
			return shoal_err_wrap(err, "filler service %zu of %zu", i + 1, ns);
		b->loaded[b->nloaded++] = k;
	}
	json_object_set_new(b->out, "loaded",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "services",
				      (json_int_t)b->nloaded, "backends",
				      (json_int_t)(b->nloaded * per), "requested_services",
				      (json_int_t)b->services, "requested_backends",
				      (json_int_t)b->total_backends, "max_services",
				      (json_int_t)LB_MAX_SERVICES, "load_seconds",
				      (double)(mono_ns() - t0) / 1e9));
	return 0;
}

/* Changes one loaded service's backend set back and forth, timing each. */
static int update_latency(struct lb_bench *b, struct shoal_err *err)
{
	if (!b->nloaded)
		return 0;
	struct lb_service_key k = b->loaded[b->nloaded / 2];
	_cleanup_free_ struct lb_backend_spec *cur = NULL;
	size_t n = 0;
	if (lb_service_backends(b->lb, &k, &cur, &n) < 0 || n == 0)
		return shoal_err_set(err, EIO, "reading a filler service's backends");
	struct bench_samples s = {0};
	int r = 0;
	for (int i = 0; i < 1000 && !interrupted; i++) {
		/* one backend leaves, then comes back */
		size_t m = (i & 1) ? n : n - 1;
		if (m == 0)
			m = n;
		int64_t t0 = mono_ns();
		if ((r = lb_service_upsert(b->lb, &k, cur, m, err)) < 0)
			break;
		bench_samples_add(&s, mono_ns() - t0);
	}
	if (r >= 0)
		json_object_set_new(b->out, "update",
				    json_pack("{s:I, s:f, s:f, s:f}", "runs", (json_int_t)s.n,
					      "p50_us", (double)bench_quantile(&s, 0.5) / 1e3,
					      "p99_us", (double)bench_quantile(&s, 0.99) / 1e3,
					      "max_us", (double)bench_quantile(&s, 1.0) / 1e3));
	bench_samples_free(&s);
	return r;
}

static void unload_services(struct lb_bench *b)
{
	for (size_t i = 0; i < b->nloaded; i++)
		lb_service_delete(b->lb, &b->loaded[i], NULL);
	b->nloaded = 0;
	free(b->loaded);
	b->loaded = NULL;
}

/* ---- teardown ---- */

static void teardown(struct lb_bench *b)
{
	haproxy_down(b);
	nft_down(b);
	iptables_down(b);
	if (b->lb) {
		unload_services(b);
		b->lb = lb_close(b->lb);
	}
	if (b->svc_created) {
		char path[128];
		snprintf(path, sizeof(path), "/services/%s", b->svc);
		call(b, "DELETE", path, NULL, NULL, NULL, NULL);
		b->svc_created = false;
	}
	if (b->have_veth)
		runf(b, NODE, NULL, "ip link del %s", b->veth_node);
	if (b->have_cns)
		runf(b, HOST, NULL, "ip netns del %s", b->cns);
	if (b->tmp[0])
		rm_rf(b->tmp);
	free(b->be);
	free(b->loaded); /* when lb was never opened */
	if (b->client_ns >= 0)
		close(b->client_ns);
	if (b->node_ns >= 0)
		close(b->node_ns);
	if (b->host_ns >= 0)
		close(b->host_ns);
}

/* Every target once, each netfilter table present only while it is measured:
 * one NAT rule turns conntrack on for every flow of the node. */
static int measure_xdp_on(struct lb_bench *b, struct lb *x, struct shoal_err *err)
{
	int r;
	if (setns(b->node_ns, CLONE_NEWNET) < 0)
		return shoal_err_errno(err, errno, "entering the node's network namespace");
	int ifindex = (int)if_nametoindex(b->veth_node);
	bool was_on = ifindex > 0 && lb_xdp_attached(ifindex) == 1; /* shoald --xdp */
	r = ifindex > 0 ? lb_attach(x, ifindex, err) : -ENODEV;
	if (setns(b->host_ns, CLONE_NEWNET) < 0)
		return shoal_err_errno(err, errno, "returning to the host network namespace");
	if (r <= 0)
		return r < 0 ? shoal_err_wrap(err, "attaching XDP to %s", b->veth_node) : 0;
	r = measure_target(b, "shoal_xdp", b->node_addr.s_addr, b->port, err);
	/* back to tc alone, as the agent left it */
	if (!was_on && setns(b->node_ns, CLONE_NEWNET) == 0) {
		bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
		setns(b->host_ns, CLONE_NEWNET);
	}
	return r < 0 ? r : 1;
}

/* shoal again with the XDP ingress program on the node's end of the client
 * veth (native mode), tc staying: a second handle on the agent's pinned maps
 * attaches it, and it is removed after the figure. 1 measured, 0 when the
 * interface has no native XDP, 2 when the kernel has no XDP program for it
 * (said in "skipped"). */
static int measure_xdp(struct lb_bench *b, struct shoal_err *err)
{
	struct lb_open_opts o = {.pin_dir = b->pin_dir, .xdp = true};
	struct lb *x = NULL;
	int r = lb_open(&o, &x, err);
	if (r < 0)
		return r;
	if (lb_feature(x, LB_FEAT_XDP)->state != LB_FEATURE_ON) {
		char why[300];
		snprintf(why, sizeof(why), "XDP unavailable: %s",
			 lb_feature(x, LB_FEAT_XDP)->reason);
		json_object_set_new(json_object_get(b->out, "skipped"), "shoal_xdp",
				    json_string(why));
		lb_close(x);
		return 2;
	}
	r = measure_xdp_on(b, x, err);
	lb_close(x);
	return r;
}

/* One round: direct first, the other paths, then shoal last, so that the
 * loaded figure measured next (run()) stands right beside it. */
static int one_round(struct lb_bench *b, struct shoal_err *err)
{
	json_t *skipped = json_object_get(b->out, "skipped");
	int r;
	if ((r = measure_target(b, "direct", b->be[0].addr, b->be[0].port, err)) < 0)
		return r;
	if (interrupted)
		return -EINTR;
	if (!have_prog("iptables")) {
		json_object_set_new(skipped, "iptables", json_string("iptables is not installed"));
	} else {
		if ((r = iptables_up(b, err)) < 0 ||
		    (r = measure_target(b, "iptables", b->node_addr.s_addr, b->port + 1, err)) < 0)
			return r;
		iptables_down(b);
	}
	if (interrupted)
		return -EINTR;
	if ((r = nft_up(b, err)) < 0 ||
	    (r = measure_target(b, "nftables", b->node_addr.s_addr, b->port + 2, err)) < 0)
		return r;
	nft_down(b);
	if (interrupted)
		return -EINTR;
	if (!have_prog("haproxy")) {
		json_object_set_new(skipped, "haproxy", json_string("haproxy is not installed"));
	} else {
		if ((r = haproxy_up(b, err)) < 0 ||
		    (r = measure_target(b, "haproxy", b->node_addr.s_addr, b->port + 3, err)) < 0)
			return r;
		haproxy_down(b);
	}
	if (interrupted)
		return -EINTR;
	if ((r = measure_xdp(b, err)) < 0)
		return r;
	if (r == 0)
		json_object_set_new(skipped, "shoal_xdp",
				    json_string("no native XDP on the client's uplink"));
	if (interrupted)
		return -EINTR;
	if ((r = measure_target(b, "shoal", b->node_addr.s_addr, b->port, err)) < 0)
		return r;
	return interrupted ? -EINTR : 0;
}

static int run(struct lb_bench *b, struct shoal_err *err)
{
	json_object_set_new(b->out, "config",
			    json_pack("{s:i, s:i, s:f, s:i}", "backends", b->backends,
				      "connections", b->conns, "seconds_per_figure", b->duration,
				      "rounds", b->rounds));
	json_object_set_new(b->out, "skipped", json_object());
	json_object_set_new(b->out, "rounds", json_object());
	b->agent = bench_agent_pid(b->ctx);
	if (b->agent <= 0)
		return shoal_err_set(err, ESRCH, "cannot find shoald's pid through its socket");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)b->agent);
	b->node_ns = open(path, O_RDONLY | O_CLOEXEC);
	b->host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (b->node_ns < 0 || b->host_ns < 0)
		return shoal_err_errno(err, errno, "opening %s (root needed)", path);
	find_pin_dir(b);
	if (access(b->pin_dir, F_OK) < 0)
		return shoal_err_set(err, ENOENT, "the agent's pinned maps are not at %s",
				     b->pin_dir);
	snprintf(b->tmp, sizeof(b->tmp), "/tmp/shoal-bench-lb.XXXXXX");
	if (!mkdtemp(b->tmp)) {
		b->tmp[0] = '\0';
		return shoal_err_errno(err, errno, "mkdtemp");
	}
	int r;
	if ((r = image_ensure(b, err)) < 0 || (r = topology_up(b, err)) < 0 ||
	    (r = service_up(b, err)) < 0 || (r = wait_published(b, err)) < 0)
		return r;
	cpus_split(b);
	if ((r = pin_backends(b, err)) < 0)
		return r;
	if (b->pin)
		json_object_set_new(b->out, "cpus",
				    json_pack("{s:i, s:s}", "client", b->client_cpu, "servers",
					      b->server_cpus_str));
	/* direct: the client reaches the first backend through the node */
	char ip[INET_ADDRSTRLEN];
	be_ip(&b->be[0], ip);
	if (runf(b, CLIENT, NULL, "ip route add %s/32 via %s", ip, b->node_ip) != 0)
		return shoal_err_set(err, EIO, "routing the client to %s", ip);
	/* each round measures the loaded data plane right after the others, so
	 * that drift over the run does not pass for the cost of the load; the
	 * last round's load stays for the update latency */
	for (int i = 0; i < b->rounds; i++) {
		if ((r = one_round(b, err)) < 0)
			return r;
		if (!b->json)
			fprintf(stderr, "  loading %d services, %d backends ...\n", b->services,
				b->total_backends);
		if ((r = load_services(b, err)) < 0)
			return r;
		/* the kernel's deferred work for the load (freeing, RCU) settles */
		usleep(1000000);
		if ((r = measure_target(b, "shoal_loaded", b->node_addr.s_addr, b->port, err)) < 0)
			return r;
		if (i + 1 < b->rounds)
			unload_services(b);
	}
	if ((r = update_latency(b, err)) < 0 ||
	    (r = bench_lb_packet_cost(b->lb, b->node_addr.s_addr,
				      (uint16_t)(LOAD_PORT_BASE + b->nloaded), b->out, err)) < 0)
		return r;
	rounds_finish(b);
	bench_lb_ratios(b->out);
	return 0;
}

int bench_lb(struct cli_ctx *ctx, int argc, char **argv)
{
	enum {
		O_JSON = 1,
		O_ROUNDS,
		O_DUR,
		O_BE,
		O_CONNS,
		O_PORT,
		O_SVCS,
		O_TOTAL,
		O_TAR,
		O_NOPIN
	};
	static const struct cli_opt opts[] = {
		{O_DUR, "duration", 0, CLI_OPT_VALUE, "int", "Seconds per figure (default 3)"},
		{O_ROUNDS, "rounds", 0, CLI_OPT_VALUE, "int",
		 "Interleaved rounds over the targets; each figure is the median (default 3)"},
		{O_BE, "backends", 0, CLI_OPT_VALUE, "int", "Backend tasks (default 2)"},
		{O_CONNS, "connections", 0, CLI_OPT_VALUE, "int",
		 "Concurrent client connections (default 32)"},
		{O_PORT, "port", 0, CLI_OPT_VALUE, "int",
		 "Published port; the next three serve iptables, nftables and haproxy "
		 "(default 28080)"},
		{O_SVCS, "services", 0, CLI_OPT_VALUE, "int",
		 "Services loaded into the data plane (default 10000, capped by its maps)"},
		{O_TOTAL, "loaded-backends", 0, CLI_OPT_VALUE, "int",
		 "Backends over the loaded services (default 100000, capped by its maps)"},
		{O_TAR, "image-tar", 0, CLI_OPT_VALUE, "path",
		 "Bench image to load when shoal-bench is missing (default BUILD/images/bench.tar)"},
		{O_NOPIN, "no-pin", 0, CLI_OPT_BOOL, NULL,
		 "Leave CPU placement to the scheduler (default: the load generator on the first "
		 "CPU, backends and haproxy on the others)"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON"},
		{0},
	};
	struct lb_bench b = {.ctx = ctx,
			     .duration = 3,
			     .backends = 2,
			     .conns = 32,
			     .rounds = 3,
			     .port = 28080,
			     .services = 10000,
			     .total_backends = 100000,
			     .pin = true,
			     .node_ns = -1,
			     .client_ns = -1,
			     .host_ns = -1};
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		long v = 0;
		int bad = 0;
		switch (o) {
		case O_DUR:
			bad = bench_parse_long(p.value, 1, 3600, &v);
			b.duration = (double)v;
			break;
		case O_ROUNDS:
			bad = bench_parse_long(p.value, 1, 64, &v);
			b.rounds = (int)v;
			break;
		case O_BE:
			bad = bench_parse_long(p.value, 1, 64, &v);
			b.backends = (int)v;
			break;
		case O_CONNS:
			bad = bench_parse_long(p.value, 1, 1024, &v);
			b.conns = (int)v;
			break;
		case O_PORT:
			bad = bench_parse_long(p.value, 1, 65532, &v);
			b.port = (int)v;
			break;
		case O_SVCS:
			bad = bench_parse_long(p.value, 0, 1000000, &v);
			b.services = (int)v;
			break;
		case O_TOTAL:
			bad = bench_parse_long(p.value, 1, 10000000, &v);
			b.total_backends = (int)v;
			break;
		case O_TAR:
			snprintf(b.image_tar, sizeof(b.image_tar), "%s", p.value);
			break;
		case O_JSON:
			b.json = cli_opts_bool(&p);
			break;
		case O_NOPIN:
			b.pin = !cli_opts_bool(&p);
			break;
		}
		if (bad) {
			cli_opts_done(&p);
			return cli_usage_error(ctx, "a numeric option is out of range; see --help");
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(
			ctx, &p, o, "[OPTIONS]",
			"Compare published-port load balancing (shoal's eBPF data plane, "
			"iptables, nftables, haproxy) against direct access, as ratios");
	if (p.npos > 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "unexpected argument");
	}
	cli_opts_done(&p);
	if (b.port >= LOAD_PORT_BASE && b.port < LOAD_PORT_BASE + b.services + 4)
		return cli_usage_error(ctx, "--port: the loaded services use 40000 and up");
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	libbpf_set_print(NULL);
	b.out = json_object();
	struct shoal_err err = {0};
	int r = run(&b, &err);
	teardown(&b);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	int rc = 0;
	if (r < 0) {
		if (r == -EINTR && !err.msg[0])
			shoal_err_set(&err, EINTR, "interrupted");
		cli_print_err(&err);
		rc = 1;
	} else if (b.json) {
		bench_result_stamp(b.out, "lb", ctx);
		char *s = json_dumps(b.out, JSON_INDENT(2));
		printf("%s\n", s);
		free(s);
	} else {
		bench_lb_print(b.out);
	}
	json_decref(b.out);
	return rc;
}
