// SPDX-License-Identifier: Apache-2.0
/* `shoal bench overlay`: the VXLAN overlay between nodes, its data plane and
 * its control plane, on one machine. The bench makes an underlay bridge in a
 * network namespace of its own (where it runs, and etcd with it), two node
 * namespaces with a veth into it, one real agent in each (children of this
 * process, roots of their own: bench-cluster-proc.c), an attachable overlay
 * network, a container on each node, and the endpoints of a third node in
 * the store. Measured side by side in one run: TCP throughput and HTTP
 * request rate container to container across the nodes, against the same
 * between the node namespaces over the underlay and over a bare kernel
 * VXLAN pair; the time from an endpoint's record to its FDB and neighbour
 * entries on the other node; and a dead node's endpoints forgotten. Every
 * piece is removed at the end, whatever happened. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <linux/rtnetlink.h>

#include "agent/store/store.h"
#include "bench/bench-cluster-internal.h"
#include "bench/bench-lb-internal.h"
#include "bench/bench-load.h"
#include "bench/bench-overlay-internal.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* The targets the figures are held against. */
#define TARGET_VXLAN_RATIO   0.95  /* overlay throughput / bare VXLAN pair's */
#define TARGET_PROGRAMMED_MS 100.0 /* p99, with 1,000 endpoints present */

#define BOV_NODES      2
#define BOV_MAX_ROUNDS 20
#define BOV_MAX_EPS    20000
#define BOV_LABEL      "shoal-benchov"
#define BOV_IMAGE      "shoal-bench"
#define WAIT_NS	       (60LL * 1000000000)
#define SAMPLE_NS      (30LL * 1000000000)
#define EPS_PER_TXN    50 /* two operations each: etcd allows 128 a transaction */
#define SEEN_MAX       1024

/* Addresses: the underlay (the bench's bridge .1, the nodes .11 and .12, the
 * simulated third node's VTEP .13), the overlay network, the bare pair. */
#define UNDERLAY_NET "10.214.0"
#define OVERLAY_NET  "10.215.0.0/16"
#define SIM_IP_BASE  0x0ad78000u /* 10.215.128.0: the simulated endpoints */
#define BARE_NET     "10.216.0"
#define IPERF_PORT   5201
#define HTTPD_PORT   8080

static volatile sig_atomic_t interrupted;

struct ctr {
	char name[64];
	char id[80];
	char ip[INET_ADDRSTRLEN];
	char mac[18];
	char sandbox[512];
};

/* A message of the monitor socket, kept for a moment: the store's event
 * and the kernel's may be read in either order. */
struct seen {
	bool fdb, del;
	uint8_t mac[6];
	struct in_addr ip;
	int64_t t;
};

struct bov {
	/* options */
	size_t rounds, n_eps, starts;
	double duration;
	int ttl_s, conns;
	bool json, quiet;
	const char *out_path, *tool_opt;
	/* what it made */
	char ns[BOV_NODES + 1][64];	 /* underlay, node 1, node 2 */
	char ns_path[BOV_NODES + 1][96]; /* /run/netns/... */
	bool ns_made[BOV_NODES + 1];
	int host_fd; /* the namespace the bench started in */
	bool moved;
	struct bcl_procs procs;
	struct event_base *base;
	struct store *store;
	char self_dir[4096];
	/* the simulated third node */
	char sim_id[65];
	int64_t sim_lease;
	struct store_lease_keeper *sim_keeper;
	bool sim_lost;
	/* the network and its containers */
	char net_name[64], net_id[128];
	struct ctr cli, srv; /* on node 1, on node 2 */
	pid_t servers[8];
	size_t n_servers;
	char tool[16], tool_version[64];
	int vni;
	/* the programmed phase */
	struct seen seen[SEEN_MAX];
	size_t n_seen;
	bool overrun;
	char want_name[64];
	bool rec_seen;
	int64_t rec_t;
	uint8_t want_mac[6];
	struct in_addr want_ip;
	int watch_errors;
};

static void on_signal(int sig)
{
	interrupted = 1;
	bcl_interrupted = 1;
}

static void progress(struct bov *b, const char *fmt, ...)
{
	if (b->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "  ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static const char *node_addr(int i, char *buf)
{
	sprintf(buf, UNDERLAY_NET ".%d", 11 + i);
	return buf;
}

/* ---- the agents' API ---- */

static int api(struct cli_ctx *ctx, const char *method, const char *path, json_t *body, int want,
	       json_t **ret, struct shoal_err *err)
{
	int status = 0;
	json_t *j = NULL;
	int r = cli_call_json(ctx, method, path, body, &status, &j, err);
	if (r < 0)
		return r;
	if (status != want) {
		shoal_err_set(err, EIO, "%s %s: the agent answered %d: %s", method, path, status,
			      json_string_value(json_object_get(j, "message")) ?: "");
		json_decref(j);
		return -EIO;
	}
	if (ret)
		*ret = j;
	else
		json_decref(j);
	return 0;
}

static int image_load(struct bov *b, struct cli_ctx *ctx, struct shoal_err *err)
{
	int st = 0;
	json_t *j = NULL;
	struct shoal_err e = {0};
	if (cli_call_json(ctx, "GET", "/images/" BOV_IMAGE "/json", NULL, &st, &j, &e) >= 0 &&
	    st == 200) {
		json_decref(j);
		return 0;
	}
	json_decref(j);
	char tar[4200];
	snprintf(tar, sizeof(tar), "%s/../images/bench.tar", b->self_dir);
	if (access(tar, R_OK) < 0)
		return shoal_err_set(err, ENOENT,
				     "%s is missing: build target shoal_bench_image (the image "
				     "of the bench's HTTP server)",
				     tar);
	/* its "Loaded image" line would land in the JSON on stdout */
	fflush(stdout);
	int saved = dup(1), nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && nul >= 0)
		dup2(nul, 1);
	char *argv[] = {(char *)"load", (char *)"-q", (char *)"-i", tar, NULL};
	int rc = cli_cmd_image_load(ctx, 4, argv);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, 1);
		close(saved);
	}
	if (nul >= 0)
		close(nul);
	return rc ? shoal_err_set(err, EIO, "loading %s into an agent failed", tar) : 0;
}

/* Creates and starts a container of the bench image on the network. */
static int ctr_run(struct cli_ctx *ctx, const char *net, const char *name, char *ret_id,
		   size_t idsize, struct shoal_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/containers/create?name=%s", name);
	json_t *body =
		json_pack("{s:s, s:{s:s}}", "Image", BOV_IMAGE, "HostConfig", "NetworkMode", net);
	json_t *resp = NULL;
	int r = api(ctx, "POST", path, body, 201, &resp, err);
	json_decref(body);
	if (r < 0)
		return shoal_err_wrap(err, "container %s", name);
	snprintf(ret_id, idsize, "%s", json_string_value(json_object_get(resp, "Id")) ?: "");
	json_decref(resp);
	snprintf(path, sizeof(path), "/containers/%s/start", ret_id);
	if ((r = api(ctx, "POST", path, NULL, 204, NULL, err)) < 0)
		return shoal_err_wrap(err, "starting container %s", name);
	return 0;
}

static int ctr_inspect(struct cli_ctx *ctx, struct ctr *c, struct shoal_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/containers/%s/json", c->id);
	json_t *j = NULL;
	int r = api(ctx, "GET", path, NULL, 200, &j, err);
	if (r < 0)
		return r;
	snprintf(c->ip, sizeof(c->ip), "%s", cli_json_str(j, "NetworkSettings.IPAddress") ?: "");
	snprintf(c->mac, sizeof(c->mac), "%s", cli_json_str(j, "NetworkSettings.MacAddress") ?: "");
	snprintf(c->sandbox, sizeof(c->sandbox), "%s",
		 cli_json_str(j, "NetworkSettings.SandboxKey") ?: "");
	json_decref(j);
	struct in_addr a;
	if (inet_pton(AF_INET, c->ip, &a) != 1 || !c->sandbox[0])
		return shoal_err_set(err, EIO,
				     "container %s has no overlay address or network namespace "
				     "(IPAddress \"%s\", SandboxKey \"%s\")",
				     c->name, c->ip, c->sandbox);
	return 0;
}

static void ctr_remove(struct cli_ctx *ctx, const char *id)
{
	char path[256];
	snprintf(path, sizeof(path), "/containers/%s?force=1", id);
	int st = 0;
	json_t *j = NULL;
	cli_call_json(ctx, "DELETE", path, NULL, &st, &j, NULL);
	json_decref(j);
}

/* ---- the topology ---- */

static int topology_up(struct bov *b, struct shoal_err *err)
{
	static const char *const suffix[] = {"u", "n1", "n2"};
	for (int i = 0; i <= BOV_NODES; i++) {
		snprintf(b->ns[i], sizeof(b->ns[i]), "%s-%d-%s", BOV_LABEL, (int)getpid(),
			 suffix[i]);
		snprintf(b->ns_path[i], sizeof(b->ns_path[i]), "/run/netns/%s", b->ns[i]);
		int r = bov_runf(NULL, err, "ip netns add %s", b->ns[i]);
		if (r < 0)
			return shoal_err_wrap(err, "making network namespace %s", b->ns[i]);
		b->ns_made[i] = true;
		if ((r = bov_runf(NULL, err, "ip -n %s link set lo up", b->ns[i])) < 0)
			return r;
	}
	int r;
	const char *u = b->ns[0];
	if ((r = bov_runf(NULL, err, "ip -n %s link add br0 type bridge", u)) < 0 ||
	    (r = bov_runf(NULL, err, "ip -n %s addr add " UNDERLAY_NET ".1/24 dev br0", u)) < 0 ||
	    (r = bov_runf(NULL, err, "ip -n %s link set br0 up", u)) < 0)
		return shoal_err_wrap(err, "the underlay bridge");
	for (int i = 0; i < BOV_NODES; i++) {
		const char *n = b->ns[i + 1];
		char a[16];
		if ((r = bov_runf(NULL, err,
				  "ip -n %s link add eth0 type veth peer name n%d netns %s", n,
				  i + 1, u)) < 0 ||
		    (r = bov_runf(NULL, err, "ip -n %s addr add %s/24 dev eth0", n,
				  node_addr(i, a))) < 0 ||
		    (r = bov_runf(NULL, err, "ip -n %s link set eth0 up", n)) < 0 ||
		    (r = bov_runf(NULL, err, "ip -n %s link set n%d master br0 up", u, i + 1)) < 0)
			return shoal_err_wrap(err, "node %d on the underlay", i + 1);
	}
	/* the bench, etcd and the agents' sockets live on the underlay */
	b->host_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int ufd = open(b->ns_path[0], O_RDONLY | O_CLOEXEC);
	if (b->host_fd < 0 || ufd < 0 || setns(ufd, CLONE_NEWNET) < 0) {
		int e = errno;
		if (ufd >= 0)
			close(ufd);
		return shoal_err_errno(err, e, "entering %s", b->ns[0]);
	}
	close(ufd);
	b->moved = true;
	return 0;
}

static void topology_down(struct bov *b)
{
	if (b->moved && b->host_fd >= 0)
		setns(b->host_fd, CLONE_NEWNET);
	b->moved = false;
	if (b->host_fd > 0)
		close(b->host_fd);
	b->host_fd = -1;
	for (int i = BOV_NODES; i >= 0; i--) {
		struct shoal_err e = {0};
		if (b->ns_made[i])
			bov_runf(NULL, &e, "ip netns del %s", b->ns[i]);
		b->ns_made[i] = false;
	}
}

/* ---- the simulated third node: its record, its liveness, its endpoints ---- */

static void sim_lost_cb(int64_t id, const struct shoal_err *err, void *userdata)
{
	struct bov *b = userdata;
	b->sim_lost = true;
}

static int store_txn_all(struct store *s, const struct store_op *ops, size_t n,
			 struct shoal_err *err)
{
	struct store_txn_result res = {0};
	int r = store_txn(s, NULL, 0, ops, n, NULL, 0, &res, err);
	store_txn_result_clear(&res);
	return r;
}

static int sim_node_up(struct bov *b, struct shoal_err *err)
{
	FILE *f = fopen("/dev/urandom", "re");
	unsigned char raw[32];
	if (!f || fread(raw, 1, sizeof(raw), f) != sizeof(raw)) {
		if (f)
			fclose(f);
		return shoal_err_set(err, EIO, "reading /dev/urandom");
	}
	fclose(f);
	for (size_t i = 0; i < sizeof(raw); i++)
		sprintf(b->sim_id + 2 * i, "%02x", raw[i]);
	char key[160], now[40];
	struct utsname u;
	uname(&u);
	format_rfc3339(now_ns(), now);
	/* as agent/membership.c writes a worker's */
	json_t *rec = json_pack(
		"{s:s, s:s, s:{s:s, s:{}, s:s, s:s}, s:s, s:{s:s, s:{s:s, s:s}, s:{s:I, s:I}, "
		"s:{s:s, s:{}}}, s:{s:s, s:s}}",
		"ID", b->sim_id, "CreatedAt", now, "Spec", "Name", "", "Labels", "Availability",
		"active", "Role", "worker", "UpdatedAt", now, "Description", "Hostname",
		"bench-overlay-node3", "Platform", "Architecture", u.machine, "OS", "linux",
		"Resources", "NanoCPUs", (json_int_t)0, "MemoryBytes", (json_int_t)0, "Engine",
		"EngineVersion", SHOAL_VERSION, "Labels", "Status", "State", "ready", "Addr",
		UNDERLAY_NET ".13");
	_cleanup_free_ char *s = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (!s)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s%s", BCL_NODES, b->sim_id);
	int r = store_put(b->store, key, s, strlen(s), 0, NULL, err);
	if (r < 0)
		return shoal_err_wrap(err, "the third node's record");
	if ((r = store_lease_grant(b->store, b->ttl_s, &b->sim_lease, err)) < 0)
		return shoal_err_wrap(err, "the third node's lease");
	json_t *v = json_pack("{s:s, s:s, s:s}", "Addr", UNDERLAY_NET ".13", "Since", now, "Role",
			      "worker");
	_cleanup_free_ char *vs = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!vs)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s%s", BCL_ALIVE, b->sim_id);
	if ((r = store_put(b->store, key, vs, strlen(vs), b->sim_lease, NULL, err)) < 0)
		return shoal_err_wrap(err, "the third node's liveness");
	return store_lease_keep(b->store, b->sim_lease, b->ttl_s, sim_lost_cb, b, &b->sim_keeper,
				err);
}

static void sim_ip(size_t i, struct in_addr *ret)
{
	ret->s_addr = htonl(SIM_IP_BASE + (uint32_t)i);
}

/* Endpoint and address records as an agent writes them for its containers
 * (agent/overlay-ipam.h), EPS_PER_TXN to a transaction. */
static int sim_endpoints(struct bov *b, struct shoal_err *err)
{
	struct store_op ops[2 * EPS_PER_TXN];
	char *bufs[4 * EPS_PER_TXN];
	int r = 0;
	for (size_t i = 0; i < b->n_eps && r >= 0; i += EPS_PER_TXN) {
		size_t n = 0, nb = 0;
		for (size_t k = i; k < b->n_eps && k < i + EPS_PER_TXN; k++) {
			struct in_addr a;
			sim_ip(k, &a);
			char ip[INET_ADDRSTRLEN], mac[18], id[80], name[32];
			inet_ntop(AF_INET, &a, ip, sizeof(ip));
			const uint8_t *x = (const uint8_t *)&a.s_addr;
			snprintf(mac, sizeof(mac), "02:42:%02x:%02x:%02x:%02x", x[0], x[1], x[2],
				 x[3]);
			snprintf(id, sizeof(id), "%.48s%016zx", b->sim_id, k);
			snprintf(name, sizeof(name), "node3-ep%zu", k);
			json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID",
						id, "Network", b->net_id, "Kind", "container",
						"Name", name, "IP", ip, "MAC", mac, "Node",
						b->sim_id, "VTEP", UNDERLAY_NET ".13");
			json_t *own = json_pack("{s:s, s:s}", "Endpoint", id, "Node", b->sim_id);
			char *rs = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
			char *os = own ? json_dumps(own, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
			json_decref(rec);
			json_decref(own);
			char *k1 = NULL, *k2 = NULL;
			if (!rs || !os ||
			    asprintf(&k1, "/shoal/ipam/addr/%s/%s", b->net_id, ip) < 0 ||
			    asprintf(&k2, "/shoal/endpoints/%s/%s", b->net_id, id) < 0) {
				free(rs);
				free(os);
				r = shoal_err_set(err, ENOMEM, "out of memory");
				break;
			}
			bufs[nb++] = rs;
			bufs[nb++] = os;
			bufs[nb++] = k1;
			bufs[nb++] = k2;
			/* the address first, as an agent takes it before it records */
			ops[n++] = (struct store_op){.type = STORE_OP_PUT,
						     .key = k1,
						     .value = os,
						     .value_len = strlen(os)};
			ops[n++] = (struct store_op){.type = STORE_OP_PUT,
						     .key = k2,
						     .value = rs,
						     .value_len = strlen(rs)};
		}
		if (r >= 0 && n && (r = store_txn_all(b->store, ops, n, err)) < 0)
			shoal_err_wrap(err, "writing the third node's endpoints");
		for (size_t k = 0; k < nb; k++)
			free(bufs[k]);
		if (interrupted)
			r = shoal_err_set(err, EINTR, "interrupted");
	}
	return r;
}

/* ---- counting entries in a node's tables ---- */

struct count {
	size_t fdb, neigh; /* simulated endpoints' remote FDB and neighbour entries */
	const uint8_t *mac;
	struct in_addr ip;
	bool has_fdb, has_neigh; /* mac's FDB entry, ip's neighbour entry */
	size_t n_eps;
};

static bool is_sim(const struct count *c, struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);
	return h >= SIM_IP_BASE && h < SIM_IP_BASE + c->n_eps;
}

static void count_cb(const struct bov_neigh *n, void *arg)
{
	struct count *c = arg;
	if (n->del)
		return;
	if (n->fdb && n->has_mac && n->has_dst) {
		struct in_addr a;
		memcpy(&a.s_addr, n->mac + 2, 4);
		if (n->mac[0] == 0x02 && n->mac[1] == 0x42 && is_sim(c, a))
			c->fdb++;
		if (c->mac && memcmp(n->mac, c->mac, 6) == 0)
			c->has_fdb = true;
	} else if (!n->fdb && n->has_dst) {
		if (is_sim(c, n->dst))
			c->neigh++;
		if (c->ip.s_addr && n->dst.s_addr == c->ip.s_addr)
			c->has_neigh = true;
	}
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int x[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)x[i];
	return 0;
}

/* Node node's tables hold the simulated endpoints and those of the others
 * (want: up to two, by MAC and address), or not (gone). Checked by dumps:
 * this is set-up, not a measurement. */
static int wait_entries(struct bov *b, int node, const struct ctr *const *want, size_t n_want,
			bool gone, bool sims, struct shoal_err *err)
{
	int64_t end = mono_ns() + WAIT_NS;
	struct count c = {0};
	bool ok = false;
	while (!ok && mono_ns() < end && !interrupted) {
		ok = true;
		for (size_t i = 0; i <= n_want && ok; i++) {
			c = (struct count){.n_eps = b->n_eps};
			uint8_t mac[6];
			if (i < n_want) {
				parse_mac(want[i]->mac, mac);
				c.mac = mac;
				inet_pton(AF_INET, want[i]->ip, &c.ip);
			}
			int r = bov_nl_dump(b->ns_path[node], count_cb, &c, err);
			if (r < 0)
				return r;
			if (i < n_want)
				ok = gone ? !c.has_fdb && !c.has_neigh : c.has_fdb && c.has_neigh;
			else if (sims)
				ok = c.fdb >= b->n_eps && c.neigh >= b->n_eps;
		}
		if (!ok)
			msleep(100);
	}
	if (interrupted)
		return shoal_err_set(err, EINTR, "interrupted");
	if (!ok)
		return shoal_err_set(err, ETIMEDOUT,
				     "node %d's FDB and neighbour tables did not %s within %lld s "
				     "(%zu of %zu simulated endpoints' FDB entries, %zu neighbour "
				     "entries)",
				     node, gone ? "let go of the endpoints" : "take the endpoints",
				     WAIT_NS / 1000000000, c.fdb, b->n_eps, c.neigh);
	return 0;
}

/* ---- TCP throughput ---- */

static int tool_pick(struct bov *b, struct shoal_err *err)
{
	const char *t = b->tool_opt ? b->tool_opt : "auto";
	_cleanup_free_ char *out = NULL;
	char *const ver[] = {"iperf3", "--version", NULL};
	struct shoal_err e = {0};
	bool have = bov_run(NULL, ver, &out, &e) == 0;
	if (strcmp(t, "iperf3") == 0 && !have)
		return shoal_err_set(err, ENOENT,
				     "--tcp-tool iperf3: iperf3 is not installed (Debian: iperf3)");
	if (have && strcmp(t, "bench-tcp") != 0) {
		snprintf(b->tool, sizeof(b->tool), "iperf3");
		snprintf(b->tool_version, sizeof(b->tool_version), "%.*s", (int)strcspn(out, "\n("),
			 out);
		size_t l = strlen(b->tool_version);
		while (l && b->tool_version[l - 1] == ' ')
			b->tool_version[--l] = '\0';
		return 0;
	}
	snprintf(b->tool, sizeof(b->tool), "bench-tcp");
	snprintf(b->tool_version, sizeof(b->tool_version), "shoal bench tcp %s", SHOAL_VERSION);
	char echo[4200];
	snprintf(echo, sizeof(echo), "%s/shoal-bench-echo", b->self_dir);
	if (access(echo, X_OK) < 0)
		return shoal_err_set(err, ENOENT,
				     "%s is missing (the echo peer of shoal bench tcp, used when "
				     "iperf3 is not installed): build it, or install iperf3",
				     echo);
	return 0;
}

/* A server of the TCP tool on addr:port in netns, in the background. */
static int tcp_server(struct bov *b, const char *netns, const char *addr, int port,
		      struct shoal_err *err)
{
	char ps[16], echo[4200], log[600];
	snprintf(ps, sizeof(ps), "%d", port);
	snprintf(echo, sizeof(echo), "%s/shoal-bench-echo", b->self_dir);
	snprintf(log, sizeof(log), "%s/tcp-servers.log", b->procs.tmp);
	char *const iperf[] = {"iperf3", "-s", "-p", ps, "-B", (char *)addr, NULL};
	char *const ech[] = {echo, "-a", (char *)addr, ps, NULL};
	if (b->n_servers >= ARRAY_SIZE(b->servers))
		return shoal_err_set(err, E2BIG, "too many servers");
	pid_t pid = bov_spawn(netns, strcmp(b->tool, "iperf3") == 0 ? iperf : ech, log);
	if (pid < 0)
		return shoal_err_errno(err, (int)-pid, "starting a TCP server in %s", netns);
	b->servers[b->n_servers++] = pid;
	return 0;
}

/* One run of the TCP tool from netns to addr:port; bits per second in
 * *ret_bps (the receiver's count). */
static int tcp_client(struct bov *b, const char *netns, const char *addr, int port, double *ret_bps,
		      struct shoal_err *err)
{
	char ps[16], dur[32], target[64], self[4200];
	snprintf(ps, sizeof(ps), "%d", port);
	snprintf(dur, sizeof(dur), "%d", (int)(b->duration + 0.5) ? (int)(b->duration + 0.5) : 1);
	snprintf(target, sizeof(target), "%s:%d", addr, port);
	snprintf(self, sizeof(self), "%s/shoal-bench", b->self_dir);
	char dsec[32];
	snprintf(dsec, sizeof(dsec), "%.3f", b->duration);
	char *const iperf[] = {"iperf3", "-c", (char *)addr,	    "-p",   ps,	 "-t",
			       dur,	 "-J", "--connect-timeout", "3000", NULL};
	/* 64 KiB echoed back: a bulk transfer each way */
	char *const tcp[] = {self,    "bench",	       "tcp", "--target",   target, "--size",
			     "65536", "--connections", "4",   "--duration", dsec,   "--warmup",
			     "0.5",   "--rounds",      "1",   "--json",	    NULL};
	bool iperf3 = strcmp(b->tool, "iperf3") == 0;
	struct shoal_err e = {0};
	for (int attempt = 0; attempt < 50 && !interrupted; attempt++) {
		_cleanup_free_ char *out = NULL;
		e = (struct shoal_err){0};
		if (bov_run(netns, iperf3 ? iperf : tcp, &out, &e) < 0) {
			/* the server may not listen yet */
			msleep(100);
			continue;
		}
		json_t *j = json_loads(out, 0, NULL);
		double bps =
			iperf3 ? json_number_value(json_object_get(
					 json_object_get(json_object_get(j, "end"), "sum_received"),
					 "bits_per_second"))
			       : json_number_value(json_object_get(
					 json_array_get(json_object_get(j, "variants"), 0),
					 "per_sec")) *
					 65536 * 8;
		const char *why = json_string_value(json_object_get(j, "error"));
		if (bps <= 0 && why && strstr(why, "unable to connect")) {
			/* the server does not listen yet */
			e = (struct shoal_err){0};
			shoal_err_set(&e, ECONNREFUSED, "%s", why);
			json_decref(j);
			msleep(100);
			continue;
		}
		if (bps <= 0) {
			shoal_err_set(err, EIO, "%s to %s measured nothing%s%.200s", b->tool,
				      target, why ? ": " : " (it printed: ", why ? why : out);
			json_decref(j);
			return -EIO;
		}
		json_decref(j);
		*ret_bps = bps;
		return 0;
	}
	if (interrupted)
		return shoal_err_set(err, EINTR, "interrupted");
	return shoal_err_set(err, e.code ? e.code : EIO, "%s to %s: %s", b->tool, target, e.msg);
}

static void servers_stop(struct bov *b)
{
	for (size_t i = 0; i < b->n_servers; i++)
		bov_stop(b->servers[i]);
	b->n_servers = 0;
}

static int cmp_dbl(const void *a, const void *c)
{
	double x = *(const double *)a, y = *(const double *)c;
	return (x > y) - (x < y);
}

static double median(const double *v, size_t n, double *ret_min, double *ret_max)
{
	double s[BOV_MAX_ROUNDS];
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_dbl);
	if (ret_min)
		*ret_min = s[0];
	if (ret_max)
		*ret_max = s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int bare_vxlan_up(struct bov *b, struct shoal_err *err)
{
	/* a VNI no network of the agents' takes (theirs count up from low) */
	b->vni = 16000000 + (int)(getpid() % 700000);
	char mtu[16];
	snprintf(mtu, sizeof(mtu), "%d", 1500 - 50);
	for (int i = 0; i < BOV_NODES; i++) {
		char local[16], remote[16];
		node_addr(i, local);
		node_addr(1 - i, remote);
		const char *ns = b->ns_path[i + 1];
		int r;
		/* the overlay's own UDP port: the agents' source filter judges
		 * these packets as it judges theirs */
		if ((r = bov_runf(ns, err,
				  "ip link add bovx type vxlan id %d local %s remote %s dstport "
				  "4789 dev eth0 nolearning",
				  b->vni, local, remote)) < 0 ||
		    (r = bov_runf(ns, err, "ip link set bovx mtu %s", mtu)) < 0 ||
		    (r = bov_runf(ns, err, "ip addr add " BARE_NET ".%d/24 dev bovx", i + 1)) < 0 ||
		    (r = bov_runf(ns, err, "ip link set bovx up")) < 0)
			return shoal_err_wrap(err, "the bare VXLAN pair on node %d", i + 1);
	}
	return 0;
}

static void bare_vxlan_down(struct bov *b)
{
	for (int i = 0; i < BOV_NODES; i++) {
		struct shoal_err e = {0};
		if (b->ns_made[i + 1])
			bov_runf(b->ns_path[i + 1], &e, "ip link del bovx");
	}
}

enum { V_OVERLAY, V_BARE, V_UNDERLAY, V_N };
static const char *const variant_key[V_N] = {"overlay", "bare_vxlan", "underlay"};

static int phase_throughput(struct bov *b, json_t *out, struct shoal_err *err)
{
	int r;
	if ((r = bare_vxlan_up(b, err)) < 0)
		return r;
	char n2[16];
	node_addr(1, n2);
	struct {
		const char *client_ns, *server_ns, *addr;
		int port;
	} v[V_N] = {
		[V_OVERLAY] = {b->cli.sandbox, b->srv.sandbox, b->srv.ip, IPERF_PORT},
		[V_BARE] = {b->ns_path[1], b->ns_path[2], BARE_NET ".2", IPERF_PORT + 1},
		[V_UNDERLAY] = {b->ns_path[1], b->ns_path[2], n2, IPERF_PORT + 2},
	};
	for (int k = 0; k < V_N; k++)
		if ((r = tcp_server(b, v[k].server_ns, v[k].addr, v[k].port, err)) < 0)
			return r;
	double bps[V_N][BOV_MAX_ROUNDS];
	json_t *rounds = json_array();
	for (size_t i = 0; i < b->rounds && r >= 0; i++) {
		json_t *ro = json_object();
		/* the variants interleave, so that a slow moment of the machine
		 * does not land on one of them */
		for (int k = 0; k < V_N && r >= 0; k++) {
			if ((r = tcp_client(b, v[k].client_ns, v[k].addr, v[k].port, &bps[k][i],
					    err)) < 0) {
				shoal_err_wrap(err, "TCP throughput, %s", variant_key[k]);
				break;
			}
			json_object_set_new(ro, variant_key[k], json_real(bps[k][i] / 1e9));
		}
		if (r < 0) {
			json_decref(ro);
			break;
		}
		json_array_append_new(rounds, ro);
		progress(b,
			 "throughput %zu/%zu: overlay %.2f, bare VXLAN %.2f, underlay %.2f Gbit/s",
			 i + 1, b->rounds, bps[V_OVERLAY][i] / 1e9, bps[V_BARE][i] / 1e9,
			 bps[V_UNDERLAY][i] / 1e9);
	}
	servers_stop(b);
	bare_vxlan_down(b);
	if (r < 0) {
		json_decref(rounds);
		return r;
	}
	json_t *t = json_object();
	double med[V_N];
	for (int k = 0; k < V_N; k++) {
		double mn, mx;
		med[k] = median(bps[k], b->rounds, &mn, &mx) / 1e9;
		json_object_set_new(t, variant_key[k],
				    json_pack("{s:f, s:f, s:f}", "gbit_per_sec", med[k],
					      "min_gbit_per_sec", mn / 1e9, "max_gbit_per_sec",
					      mx / 1e9));
	}
	/* each round's variants ran back to back: their ratio is paired, and
	 * the median of the rounds' ratios carries less of the machine's other
	 * load than a ratio of medians would */
	double rb[BOV_MAX_ROUNDS], ru[BOV_MAX_ROUNDS];
	for (size_t i = 0; i < b->rounds; i++) {
		rb[i] = bps[V_OVERLAY][i] / bps[V_BARE][i];
		ru[i] = bps[V_OVERLAY][i] / bps[V_UNDERLAY][i];
	}
	double rbmin, rbmax, rumin, rumax;
	double rv = median(rb, b->rounds, &rbmin, &rbmax);
	double ruv = median(ru, b->rounds, &rumin, &rumax);
	json_object_set_new(t, "ratio_overlay_to_bare_vxlan", json_real(rv));
	json_object_set_new(t, "ratio_overlay_to_bare_vxlan_min", json_real(rbmin));
	json_object_set_new(t, "ratio_overlay_to_bare_vxlan_max", json_real(rbmax));
	json_object_set_new(t, "ratio_overlay_to_underlay", json_real(ruv));
	json_object_set_new(t, "ratio_overlay_to_underlay_min", json_real(rumin));
	json_object_set_new(t, "ratio_overlay_to_underlay_max", json_real(rumax));
	json_object_set_new(t, "ratios_are",
			    json_string("the median (min, max) of each round's ratio, its "
					"variants measured back to back"));
	json_object_set_new(t, "target", json_string(">= 0.95x the bare VXLAN pair"));
	json_object_set_new(t, "target_met", json_boolean(rv >= TARGET_VXLAN_RATIO));
	json_object_set_new(t, "tool", json_string(b->tool_version));
	json_object_set_new(
		t, "how",
		json_string(
			strcmp(b->tool, "iperf3") == 0
				? "iperf3, one stream, the receiver's count; overlay: container on "
				  "node 1 to container on node 2 (this host's iperf3 in each "
				  "container's network namespace); bare VXLAN: a kernel VXLAN "
				  "device in each node namespace, no bridge, no veth; underlay: "
				  "node namespace to node namespace"
				: "shoal bench tcp, 4 connections echoing 64 KiB requests (one "
				  "direction's bits counted) against shoal-bench-echo; the same "
				  "three paths"));
	json_object_set_new(t, "rounds", rounds);
	json_object_set_new(out, "throughput", t);
	return 0;
}

/* ---- HTTP ---- */

/* The load from netns, in a child so that this process stays where the
 * agents' sockets and etcd are. */
static int http_load(struct bov *b, const char *netns, const char *addr, int port,
		     struct bench_lb_load *ret)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	struct in_addr a;
	inet_pton(AF_INET, addr, &a);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		close(p[0]);
		int fd = open(netns, O_RDONLY | O_CLOEXEC);
		struct bench_lb_load l = {0};
		int r = fd < 0 || setns(fd, CLONE_NEWNET) < 0
				? -errno
				: bench_lb_load_run(0, a.s_addr, (uint16_t)port, b->conns,
						    b->duration, false, &l);
		if (r == 0)
			write_all(p[1], &l, sizeof(l));
		_exit(r == 0 ? 0 : 1);
	}
	close(p[1]);
	struct bench_lb_load l;
	ssize_t n = read(p[0], &l, sizeof(l));
	close(p[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(l) || l.requests == 0)
		return -ECONNREFUSED;
	*ret = l;
	return 0;
}

static int phase_http(struct bov *b, json_t *out, struct shoal_err *err)
{
	char httpd[4200], port[16], n2[16], log[600];
	snprintf(httpd, sizeof(httpd), "%s/shoal-bench-httpd", b->self_dir);
	snprintf(port, sizeof(port), "%d", HTTPD_PORT);
	snprintf(log, sizeof(log), "%s/httpd.log", b->procs.tmp);
	node_addr(1, n2);
	if (access(httpd, X_OK) < 0)
		return shoal_err_errno(err, errno, "%s (the bench's HTTP server)", httpd);
	/* the same server as in the container, in node 2's namespace */
	char *const argv[] = {httpd, port, NULL};
	pid_t pid = bov_spawn(b->ns_path[2], argv, log);
	if (pid < 0)
		return shoal_err_errno(err, (int)-pid, "starting %s in node 2's namespace", httpd);
	b->servers[b->n_servers++] = pid;
	struct {
		const char *ns, *addr;
		int port;
	} v[2] = {{b->cli.sandbox, b->srv.ip, 80}, {b->ns_path[1], n2, HTTPD_PORT}};
	static const char *const key[2] = {"overlay", "underlay"};
	double rate[2][BOV_MAX_ROUNDS], p50[2][BOV_MAX_ROUNDS], p99[2][BOV_MAX_ROUNDS];
	json_t *rounds = json_array();
	int r = 0;
	/* the server may take a moment to listen */
	for (int k = 0; k < 2; k++) {
		struct sockaddr_storage to = {0};
		struct sockaddr_in *sin = (struct sockaddr_in *)&to;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)v[k].port);
		inet_pton(AF_INET, v[k].addr, &sin->sin_addr);
		bool up = false;
		for (int i = 0; i < 100 && !up && !interrupted; i++) {
			pid_t c = fork();
			if (c == 0) {
				int fd = open(v[k].ns, O_RDONLY | O_CLOEXEC);
				struct shoal_err e = {0};
				_exit(fd >= 0 && setns(fd, CLONE_NEWNET) == 0 &&
						      bench_probe_tcp(&to, sizeof(*sin), 1.0, "",
								      &e) == 0
					      ? 0
					      : 1);
			}
			int st = 1;
			if (c > 0)
				while (waitpid(c, &st, 0) < 0 && errno == EINTR)
					;
			up = c > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
			if (!up)
				msleep(100);
		}
		if (!up) {
			servers_stop(b);
			json_decref(rounds);
			return shoal_err_set(err, ECONNREFUSED, "HTTP, %s: %s:%d does not answer",
					     key[k], v[k].addr, v[k].port);
		}
	}
	for (size_t i = 0; i < b->rounds && r >= 0; i++) {
		json_t *ro = json_object();
		for (int k = 0; k < 2; k++) {
			struct bench_lb_load l = {0};
			if (http_load(b, v[k].ns, v[k].addr, v[k].port, &l) < 0) {
				r = shoal_err_set(err, ECONNREFUSED,
						  "HTTP, %s: no answer from %s:%d", key[k],
						  v[k].addr, v[k].port);
				break;
			}
			rate[k][i] = l.per_sec;
			p50[k][i] = (double)l.p50_ns / 1e3;
			p99[k][i] = (double)l.p99_ns / 1e3;
			json_object_set_new(ro, key[k],
					    json_pack("{s:f, s:f, s:f, s:I}", "per_sec", l.per_sec,
						      "p50_us", p50[k][i], "p99_us", p99[k][i],
						      "errors", (json_int_t)l.errors));
		}
		if (r < 0 || interrupted) {
			json_decref(ro);
			if (r >= 0)
				r = shoal_err_set(err, EINTR, "interrupted");
			break;
		}
		json_array_append_new(rounds, ro);
		progress(
			b,
			"HTTP %zu/%zu: overlay %.0f/s (p99 %.0f us), underlay %.0f/s (p99 %.0f us)",
			i + 1, b->rounds, rate[0][i], p99[0][i], rate[1][i], p99[1][i]);
	}
	servers_stop(b);
	if (r < 0) {
		json_decref(rounds);
		return r;
	}
	json_t *h = json_object();
	double med_rate[2], med_p99[2];
	for (int k = 0; k < 2; k++) {
		double mn, mx;
		med_rate[k] = median(rate[k], b->rounds, &mn, &mx);
		med_p99[k] = median(p99[k], b->rounds, NULL, NULL);
		json_object_set_new(
			h, key[k],
			json_pack("{s:f, s:f, s:f, s:{s:f, s:f}}", "per_sec", med_rate[k],
				  "min_per_sec", mn, "max_per_sec", mx, "latency_us", "p50",
				  median(p50[k], b->rounds, NULL, NULL), "p99", med_p99[k]));
	}
	double rr[BOV_MAX_ROUNDS], rp[BOV_MAX_ROUNDS], rrmin, rrmax;
	for (size_t i = 0; i < b->rounds; i++) {
		rr[i] = rate[0][i] / rate[1][i];
		rp[i] = p99[0][i] / p99[1][i];
	}
	json_object_set_new(h, "ratio_overlay_to_underlay",
			    json_real(median(rr, b->rounds, &rrmin, &rrmax)));
	json_object_set_new(h, "ratio_overlay_to_underlay_min", json_real(rrmin));
	json_object_set_new(h, "ratio_overlay_to_underlay_max", json_real(rrmax));
	json_object_set_new(h, "p99_overlay_over_underlay",
			    json_real(median(rp, b->rounds, NULL, NULL)));
	json_object_set_new(h, "connections", json_integer(b->conns));
	json_object_set_new(
		h, "how",
		json_string("shoal-bench-httpd (the bench image) in the container on node 2, "
			    "the same binary in node 2's namespace for the underlay; keep-alive "
			    "GETs, closed loop, from the container on node 1 or node 1's "
			    "namespace (the load generator of shoal bench lb)"));
	json_object_set_new(h, "rounds", rounds);
	json_object_set_new(out, "http", h);
	return 0;
}

/* ---- an endpoint programmed on the other node ---- */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until pred holds (0), or timeout (-ETIMEDOUT) or an
 * interrupt (-EINTR). */
static int loop_until(struct bov *b, bool (*pred)(struct bov *, void *), void *arg,
		      int64_t timeout_ns)
{
	int64_t end = mono_ns() + timeout_ns;
	struct event *tick = evtimer_new(b->base, tick_cb, NULL);
	if (!tick)
		return -ENOMEM;
	int r = -ETIMEDOUT;
	while (mono_ns() < end) {
		if (pred(b, arg)) {
			r = 0;
			break;
		}
		if (interrupted) {
			r = -EINTR;
			break;
		}
		struct timeval tv = {0, 2000};
		evtimer_add(tick, &tv);
		event_base_loop(b->base, EVLOOP_ONCE);
	}
	event_free(tick);
	return r;
}

static void seen_cb(const struct bov_neigh *n, void *arg)
{
	struct bov *b = arg;
	if (b->n_seen >= SEEN_MAX)
		return;
	if (n->fdb ? !(n->has_mac && n->has_dst) : !n->has_dst)
		return;
	struct seen *s = &b->seen[b->n_seen++];
	*s = (struct seen){.fdb = n->fdb, .del = n->del, .ip = n->dst, .t = mono_ns()};
	memcpy(s->mac, n->mac, 6);
}

static void nl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bov *b = arg;
	if (bov_nl_drain(fd, seen_cb, b) == -ENOBUFS)
		b->overrun = true;
}

static void eps_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
		   void *userdata)
{
	struct bov *b = userdata;
	if (err) {
		b->watch_errors++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type != STORE_EVENT_PUT || b->rec_seen)
			continue;
		json_t *j = json_loadb(ev[i].kv.value, ev[i].kv.value_len, 0, NULL);
		const char *name = json_string_value(json_object_get(j, "Name")) ?: "";
		if (*name == '/')
			name++;
		if (b->want_name[0] && strcmp(name, b->want_name) == 0 &&
		    parse_mac(json_string_value(json_object_get(j, "MAC")) ?: "", b->want_mac) ==
			    0 &&
		    inet_pton(AF_INET, json_string_value(json_object_get(j, "IP")) ?: "",
			      &b->want_ip) == 1) {
			b->rec_seen = true;
			b->rec_t = mono_ns();
		}
		json_decref(j);
	}
}

/* When the wanted endpoint's FDB (fdb) or neighbour entry came (del: went),
 * or 0. */
static int64_t seen_at(struct bov *b, bool fdb, bool del)
{
	for (size_t i = 0; i < b->n_seen; i++) {
		struct seen *s = &b->seen[i];
		if (s->fdb != fdb || s->del != del)
			continue;
		if (fdb ? memcmp(s->mac, b->want_mac, 6) == 0 : s->ip.s_addr == b->want_ip.s_addr)
			return s->t;
	}
	return 0;
}

struct starter {
	struct cli_ctx *ctx;
	const char *net;
	char name[64], id[80];
	int r;
	struct shoal_err err;
	int64_t t_done;
	atomic_bool done;
};

static void *starter_main(void *arg)
{
	struct starter *s = arg;
	s->r = ctr_run(s->ctx, s->net, s->name, s->id, sizeof(s->id), &s->err);
	s->t_done = mono_ns();
	atomic_store(&s->done, true);
	return NULL;
}

static bool programmed_cb(struct bov *b, void *arg)
{
	struct starter *st = arg;
	if (!atomic_load(&st->done))
		return false;
	if (st->r < 0)
		return true;
	return b->rec_seen && seen_at(b, true, false) && seen_at(b, false, false);
}

static bool forgotten_cb(struct bov *b, void *arg)
{
	return seen_at(b, true, true) && seen_at(b, false, true);
}

static int phase_programmed(struct bov *b, json_t *out, struct shoal_err *err)
{
	int fd = bov_nl_socket(b->ns_path[2], 1u << (RTNLGRP_NEIGH - 1), err);
	if (fd < 0)
		return shoal_err_wrap(err, "a monitor of node 2's neighbour tables");
	struct event *ev = event_new(b->base, fd, EV_READ | EV_PERSIST, nl_cb, b);
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "/shoal/endpoints/%s/", b->net_id);
	struct store_watch *w = NULL;
	int r = ev ? event_add(ev, NULL) : -ENOMEM;
	if (r < 0)
		r = shoal_err_set(err, ENOMEM, "out of memory");
	else if ((r = store_watch(b->store, prefix, true, 0, eps_cb, b, &w, err)) < 0)
		shoal_err_wrap(err, "watching the endpoint records");
	struct bench_samples prog = {0}, started = {0};
	json_t *rounds = json_array();
	size_t total = b->rounds * b->starts, overruns = 0;
	struct cli_ctx *ctx = &b->procs.agents[0].ctx;
	for (size_t k = 0; k < total && r >= 0; k++) {
		struct starter st = {.ctx = ctx, .net = b->net_name};
		snprintf(st.name, sizeof(st.name), "bov-%d-p%zu", (int)getpid(), k);
		snprintf(b->want_name, sizeof(b->want_name), "%s", st.name);
		b->rec_seen = false;
		b->n_seen = 0;
		b->overrun = false;
		/* the calls block; this loop reads the store and the kernel
		 * meanwhile, and stamps each as it comes */
		pthread_t tid;
		if ((r = pthread_create(&tid, NULL, starter_main, &st)) != 0) {
			r = shoal_err_errno(err, r, "a thread");
			break;
		}
		int w_r = loop_until(b, programmed_cb, &st, SAMPLE_NS);
		pthread_join(tid, NULL);
		if (st.r < 0) {
			*err = st.err;
			r = st.r;
			break;
		}
		if (w_r < 0) {
			r = w_r == -EINTR
				    ? shoal_err_set(err, EINTR, "interrupted")
				    : shoal_err_set(err, ETIMEDOUT,
						    "container %s: its endpoint %s on node "
						    "2 within %lld s (record %s, FDB %s, "
						    "neighbour %s)",
						    st.name, "not programmed",
						    SAMPLE_NS / 1000000000,
						    b->rec_seen ? "seen" : "not seen",
						    seen_at(b, true, false) ? "seen" : "not seen",
						    seen_at(b, false, false) ? "seen" : "not seen");
			break;
		}
		int64_t tf = seen_at(b, true, false), tn = seen_at(b, false, false);
		int64_t done = (tf > tn ? tf : tn) - b->rec_t;
		if (b->overrun) {
			/* a message may have been lost: this one is not counted */
			overruns++;
		} else {
			bench_samples_add(&prog, done > 0 ? done : 0);
			bench_samples_add(&started, st.t_done - b->rec_t);
			json_array_append_new(rounds, json_pack("{s:f, s:f}", "programmed_ms",
								(done > 0 ? done : 0) / 1e6,
								"start_returned_ms",
								(st.t_done - b->rec_t) / 1e6));
		}
		if (!b->quiet && (k + 1) % b->starts == 0)
			progress(b, "programmed %zu/%zu: last %.1f ms after its record", k + 1,
				 total, done / 1e6);
		/* gone again before the next, so that each starts from the same
		 * tables */
		b->n_seen = 0;
		ctr_remove(ctx, st.id);
		if ((w_r = loop_until(b, forgotten_cb, NULL, SAMPLE_NS)) < 0) {
			r = w_r == -EINTR ? shoal_err_set(err, EINTR, "interrupted")
					  : shoal_err_set(err, ETIMEDOUT,
							  "container %s removed: its entries "
							  "stayed on node 2",
							  st.name);
			break;
		}
	}
	if (w)
		store_watch_cancel(w);
	if (ev)
		event_free(ev);
	close(fd);
	if (r >= 0 && !prog.n)
		r = shoal_err_set(err, EIO,
				  "every sample was lost to the monitor socket's overruns");
	if (r < 0) {
		json_decref(rounds);
		bench_samples_free(&prog);
		bench_samples_free(&started);
		return r;
	}
	json_t *p = bench_summary(&prog);
	json_object_set_new(p, "start_returned", bench_summary(&started));
	json_object_set_new(p, "endpoints_present", json_integer((json_int_t)b->n_eps));
	json_object_set_new(p, "samples_lost_to_overruns", json_integer((json_int_t)overruns));
	json_object_set_new(p, "target", json_string("<= 100 ms p99 with 1,000 endpoints present"));
	if (b->n_eps >= 1000)
		json_object_set_new(
			p, "target_met",
			json_boolean(bench_quantile(&prog, 0.99) / 1e6 <= TARGET_PROGRAMMED_MS));
	json_object_set_new(
		p, "how",
		json_string("a container started on node 1, one at a time; from its endpoint "
			    "record seen by the bench's watch of the store to its FDB entry and "
			    "its neighbour entry both on node 2, each stamped as an rtnetlink "
			    "monitor socket in node 2's namespace delivered it; the endpoints "
			    "present are a third node's, written in the store by the bench as an "
			    "agent writes them (node record, a liveness key on a lease it keeps, "
			    "address and endpoint records), no containers behind them"));
	json_object_set_new(p, "rounds", rounds);
	json_object_set_new(out, "programmed", p);
	bench_samples_free(&prog);
	bench_samples_free(&started);
	return 0;
}

/* ---- a dead node forgotten ---- */

struct dead {
	struct bov *b;
	size_t n;
	uint8_t mac[8][6];
	struct in_addr ip[8];
	bool fdb_gone[8], neigh_gone[8];
	int64_t last;
};

static void dead_cb(const struct bov_neigh *n, void *arg)
{
	struct dead *d = arg;
	if (!n->del)
		return;
	for (size_t i = 0; i < d->n; i++) {
		if (n->fdb && n->has_mac && memcmp(n->mac, d->mac[i], 6) == 0 && !d->fdb_gone[i]) {
			d->fdb_gone[i] = true;
			d->last = mono_ns();
		} else if (!n->fdb && n->has_dst && n->dst.s_addr == d->ip[i].s_addr &&
			   !d->neigh_gone[i]) {
			d->neigh_gone[i] = true;
			d->last = mono_ns();
		}
	}
}

struct left {
	struct dead *d;
	size_t n;
};

static void left_cb(const struct bov_neigh *n, void *arg)
{
	struct left *l = arg;
	for (size_t i = 0; i < l->d->n; i++)
		if ((n->fdb && n->has_mac && n->has_dst && memcmp(n->mac, l->d->mac[i], 6) == 0) ||
		    (!n->fdb && n->has_dst && n->dst.s_addr == l->d->ip[i].s_addr))
			l->n++;
}

/* Node 2's endpoints (its containers' and its own address on the network),
 * from the store. */
static int node2_endpoints(struct bov *b, struct dead *d, struct shoal_err *err)
{
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "/shoal/endpoints/%s/", b->net_id);
	struct store_kvs *kvs = NULL;
	int r = store_get(b->store, prefix, true, 0, &kvs, err);
	if (r < 0)
		return r;
	d->n = 0;
	for (size_t i = 0; i < kvs->n && d->n < ARRAY_SIZE(d->ip); i++) {
		json_t *j = json_loadb(kvs->kvs[i].value, kvs->kvs[i].value_len, 0, NULL);
		if (strcmp(json_string_value(json_object_get(j, "Node")) ?: "",
			   b->procs.agents[1].node_id) == 0 &&
		    parse_mac(json_string_value(json_object_get(j, "MAC")) ?: "", d->mac[d->n]) ==
			    0 &&
		    inet_pton(AF_INET, json_string_value(json_object_get(j, "IP")) ?: "",
			      &d->ip[d->n]) == 1)
			d->n++;
		json_decref(j);
	}
	store_kvs_free(kvs);
	if (!d->n)
		return shoal_err_set(err, ENOENT, "node 2 has no endpoint records");
	return 0;
}

static int phase_dead(struct bov *b, json_t *out, struct shoal_err *err)
{
	struct bench_samples s = {0};
	json_t *rounds = json_array();
	int r = 0;
	for (size_t round = 0; round < b->rounds && r >= 0; round++) {
		struct dead d = {.b = b};
		if ((r = node2_endpoints(b, &d, err)) < 0)
			break;
		/* every one of them on node 1 first */
		int64_t end = mono_ns() + WAIT_NS;
		struct left l = {.d = &d};
		while (mono_ns() < end && !interrupted) {
			l.n = 0;
			if ((r = bov_nl_dump(b->ns_path[1], left_cb, &l, err)) < 0)
				break;
			if (l.n >= 2 * d.n)
				break;
			msleep(100);
		}
		if (r < 0)
			break;
		if (l.n < 2 * d.n) {
			r = interrupted ? shoal_err_set(err, EINTR, "interrupted")
					: shoal_err_set(err, ETIMEDOUT,
							"node 2's endpoints are not on node 1 "
							"(%zu of %zu entries)",
							l.n, 2 * d.n);
			break;
		}
		int fd = bov_nl_socket(b->ns_path[1], 1u << (RTNLGRP_NEIGH - 1), err);
		if (fd < 0) {
			r = fd;
			break;
		}
		int64_t t0 = mono_ns();
		bcl_agent_kill9(&b->procs, 1);
		end = t0 + (int64_t)(b->ttl_s + 30) * 1000000000;
		bool gone = false, overran = false;
		while (!gone && mono_ns() < end && !interrupted) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			poll(&pfd, 1, 50);
			if (bov_nl_drain(fd, dead_cb, &d) == -ENOBUFS)
				overran = true;
			bool all = true;
			for (size_t i = 0; i < d.n; i++)
				all = all && d.fdb_gone[i] && d.neigh_gone[i];
			if (all || overran) {
				/* confirmed by a dump: a message lost to an overrun
				 * must not end the wait early, nor make it endless */
				l.n = 0;
				if ((r = bov_nl_dump(b->ns_path[1], left_cb, &l, err)) < 0)
					break;
				gone = l.n == 0;
				if (gone && (overran || !d.last))
					d.last = mono_ns();
			}
		}
		close(fd);
		if (r < 0)
			break;
		if (!gone) {
			r = interrupted ? shoal_err_set(err, EINTR, "interrupted")
					: shoal_err_set(err, ETIMEDOUT,
							"node 2's endpoints still on node 1 %d s "
							"after its agent was killed",
							b->ttl_s + 30);
			break;
		}
		bench_samples_add(&s, d.last - t0);
		json_array_append_new(rounds, json_pack("{s:f, s:I, s:b}", "forgotten_s",
							(d.last - t0) / 1e9, "endpoints",
							(json_int_t)d.n, "timed_by_dump", overran));
		progress(b,
			 "dead node %zu/%zu: its %zu endpoints gone from node 1 %.3f s after "
			 "kill -9 of its agent",
			 round + 1, b->rounds, d.n, (d.last - t0) / 1e9);
		/* back, its container adopted and recorded again, for the next round */
		if ((r = bcl_agent_start(&b->procs, 1, err)) < 0)
			break;
	}
	json_t *o = json_object();
	if (s.n) {
		json_t *sum = bench_summary(&s);
		json_object_update(o, sum);
		json_decref(sum);
		char t[64];
		snprintf(t, sizeof(t), "<= node lease TTL + 1 s = %d s", b->ttl_s + 1);
		json_object_set_new(o, "target", json_string(t));
		json_object_set_new(o, "target_met",
				    json_boolean(bench_quantile(&s, 1.0) / 1e9 <= b->ttl_s + 1.0));
	}
	json_object_set_new(o, "how",
			    json_string("kill -9 of node 2's agent (its container runs on); "
					"timed until node 1 holds no FDB or neighbour entry of "
					"node 2's endpoints (its container's, its own address on "
					"the network), seen by an rtnetlink monitor socket in node "
					"1's namespace and confirmed by a dump"));
	json_object_set_new(o, "rounds", rounds);
	json_object_set_new(out, "dead_node", o);
	bench_samples_free(&s);
	return r;
}

/* ---- set-up ---- */

static int network_create(struct bov *b, struct shoal_err *err)
{
	snprintf(b->net_name, sizeof(b->net_name), "bov-%d", (int)getpid());
	json_t *body = json_pack("{s:s, s:s, s:b, s:{s:s, s:[{s:s}]}}", "Name", b->net_name,
				 "Driver", "overlay", "Attachable", 1, "IPAM", "Driver", "default",
				 "Config", "Subnet", OVERLAY_NET);
	int r = -EIO;
	/* the agents may not have chosen their leader yet */
	for (int i = 0; i < 150 && !interrupted; i++) {
		json_t *resp = NULL;
		struct shoal_err e = {0};
		r = api(&b->procs.agents[0].ctx, "POST", "/networks/create", body, 201, &resp, &e);
		if (r == 0) {
			snprintf(b->net_id, sizeof(b->net_id), "%s",
				 json_string_value(json_object_get(resp, "Id")) ?: "");
			json_decref(resp);
			break;
		}
		*err = e;
		msleep(200);
	}
	json_decref(body);
	if (r < 0)
		return shoal_err_wrap(err, "creating the overlay network");
	return 0;
}

static int setup(struct bov *b, json_t *out, struct shoal_err *err)
{
	int r;
	if ((r = tool_pick(b, err)) < 0)
		return r;
	if ((r = topology_up(b, err)) < 0)
		return r;
	progress(b, "underlay bridge and 2 node namespaces up (%s, %s)", b->ns[1], b->ns[2]);
	b->procs.label = BOV_LABEL;
	snprintf(b->procs.etcd_addr, sizeof(b->procs.etcd_addr), UNDERLAY_NET ".1");
	for (int i = 0; i < BOV_NODES; i++) {
		node_addr(i, b->procs.agents[i].addr);
		snprintf(b->procs.agents[i].netns, sizeof(b->procs.agents[i].netns), "%s",
			 b->ns_path[i + 1]);
	}
	if ((r = bcl_procs_init(&b->procs, NULL, err)) < 0 ||
	    (r = bcl_etcd_start(&b->procs, err)) < 0)
		return r;
	progress(b, "etcd %s at %s", b->procs.etcd_version, b->procs.endpoints);
	b->base = event_base_new();
	if (!b->base)
		return shoal_err_set(err, ENOMEM, "out of memory");
	struct store_options o = {
		.backend = "etcd", .endpoints = b->procs.endpoints, .base = b->base};
	if ((r = store_open(&o, &b->store, err)) < 0)
		return shoal_err_wrap(err, "opening the store at %s", b->procs.endpoints);
	for (int i = 0; i < BOV_NODES; i++) {
		if ((r = bcl_agent_start(&b->procs, (size_t)i, err)) < 0)
			return r;
		snprintf(b->procs.agents[i].ctx.cmdpath, sizeof(b->procs.agents[i].ctx.cmdpath),
			 "shoal bench overlay");
		if ((r = image_load(b, &b->procs.agents[i].ctx, err)) < 0)
			return r;
	}
	progress(b, "2 agents up, the bench image loaded");
	if ((r = network_create(b, err)) < 0)
		return r;
	int64_t t0 = mono_ns();
	if ((r = sim_node_up(b, err)) < 0 || (r = sim_endpoints(b, err)) < 0)
		return r;
	progress(b, "a third node's %zu endpoints in the store in %.2f s", b->n_eps,
		 (mono_ns() - t0) / 1e9);
	snprintf(b->srv.name, sizeof(b->srv.name), "bov-%d-server", (int)getpid());
	snprintf(b->cli.name, sizeof(b->cli.name), "bov-%d-client", (int)getpid());
	if ((r = ctr_run(&b->procs.agents[1].ctx, b->net_name, b->srv.name, b->srv.id,
			 sizeof(b->srv.id), err)) < 0 ||
	    (r = ctr_run(&b->procs.agents[0].ctx, b->net_name, b->cli.name, b->cli.id,
			 sizeof(b->cli.id), err)) < 0 ||
	    (r = ctr_inspect(&b->procs.agents[1].ctx, &b->srv, err)) < 0 ||
	    (r = ctr_inspect(&b->procs.agents[0].ctx, &b->cli, err)) < 0)
		return r;
	const struct ctr *on1[] = {&b->srv}, *on2[] = {&b->cli};
	t0 = mono_ns();
	if ((r = wait_entries(b, 1, on1, 1, false, true, err)) < 0 ||
	    (r = wait_entries(b, 2, on2, 1, false, true, err)) < 0)
		return r;
	progress(b,
		 "containers %s (%s) on node 2 and %s (%s) on node 1; every endpoint on both "
		 "nodes %.2f s later",
		 b->srv.name, b->srv.ip, b->cli.name, b->cli.ip, (mono_ns() - t0) / 1e9);
	json_t *cfg = json_object_get(out, "config");
	json_object_set_new(cfg, "etcd", json_string(b->procs.etcd_version));
	json_object_set_new(cfg, "tcp_tool", json_string(b->tool_version));
	json_object_set_new(cfg, "underlay_mtu", json_integer(1500));
	json_object_set_new(cfg, "overlay_mtu", json_integer(1450));
	return 0;
}

static void teardown(struct bov *b)
{
	servers_stop(b);
	if (b->sim_keeper)
		store_lease_keeper_stop(b->sim_keeper);
	b->sim_keeper = NULL;
	if (b->store)
		store_close(b->store);
	b->store = NULL;
	if (b->base)
		event_base_free(b->base);
	b->base = NULL;
	/* the agents take their containers down (mounts, veths, addresses);
	 * what one cannot is killed by bcl_procs_cleanup() */
	for (int i = 0; i < BOV_NODES; i++) {
		struct bcl_agent *a = &b->procs.agents[i];
		if (a->pid <= 0)
			continue;
		int st = 0;
		json_t *j = NULL;
		if (cli_call_json(&a->ctx, "GET", "/containers/json?all=1", NULL, &st, &j, NULL) >=
			    0 &&
		    st == 200) {
			size_t k;
			json_t *c;
			json_array_foreach(j, k, c) ctr_remove(
				&a->ctx, json_string_value(json_object_get(c, "Id")) ?: "");
		}
		json_decref(j);
	}
	bcl_procs_cleanup(&b->procs);
	topology_down(b);
}

/* ---- output ---- */

static double num(json_t *out, const char *path)
{
	return json_number_value(cli_json_get(out, path));
}

static const char *met(json_t *out, const char *path)
{
	json_t *v = cli_json_get(out, path);
	return !v ? " (not this size)" : json_is_true(v) ? " (met)" : " (MISSED)";
}

static void print_report(struct bov *b, json_t *out)
{
	printf("shoal bench overlay: 2 nodes, %zu endpoints of a third in the store, %zu round(s) "
	       "of %.1f s, node TTL %d s\n",
	       b->n_eps, b->rounds, b->duration, b->ttl_s);
	printf("  (one machine, every node a network namespace: figures are ratios here, not a "
	       "network's)\n\n");
	if (cli_json_get(out, "throughput")) {
		printf("  TCP throughput (%s)          median      min      max  Gbit/s\n",
		       cli_json_str(out, "throughput.tool") ?: "");
		static const char *const rows[][2] = {
			{"overlay", "overlay, container to container"},
			{"bare_vxlan", "bare kernel VXLAN pair"},
			{"underlay", "underlay, node to node"}};
		for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
			char p[96];
			snprintf(p, sizeof(p), "throughput.%s", rows[i][0]);
			json_t *v = cli_json_get(out, p);
			printf("    %-34s %8.2f %8.2f %8.2f\n", rows[i][1],
			       json_number_value(json_object_get(v, "gbit_per_sec")),
			       json_number_value(json_object_get(v, "min_gbit_per_sec")),
			       json_number_value(json_object_get(v, "max_gbit_per_sec")));
		}
		printf("    overlay / bare VXLAN    %.3fx (rounds %.3fx to %.3fx)   target: >= "
		       "0.95x%s\n",
		       num(out, "throughput.ratio_overlay_to_bare_vxlan"),
		       num(out, "throughput.ratio_overlay_to_bare_vxlan_min"),
		       num(out, "throughput.ratio_overlay_to_bare_vxlan_max"),
		       met(out, "throughput.target_met"));
		printf("    overlay / underlay      %.3fx (rounds %.3fx to %.3fx)\n"
		       "    (ratios: the median of each round's, its paths measured back to "
		       "back)\n\n",
		       num(out, "throughput.ratio_overlay_to_underlay"),
		       num(out, "throughput.ratio_overlay_to_underlay_min"),
		       num(out, "throughput.ratio_overlay_to_underlay_max"));
	}
	if (cli_json_get(out, "http")) {
		printf("  HTTP keep-alive, %lld connections      req/s median (min, max)     p50 "
		       "us   p99 us\n",
		       (long long)cli_json_int(out, "http.connections"));
		static const char *const rows[][2] = {
			{"overlay", "overlay, container to container"},
			{"underlay", "underlay, node to node"}};
		for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
			char p[96];
			snprintf(p, sizeof(p), "http.%s", rows[i][0]);
			json_t *v = cli_json_get(out, p);
			printf("    %-34s %8.0f (%.0f, %.0f) %8.0f %8.0f\n", rows[i][1],
			       json_number_value(json_object_get(v, "per_sec")),
			       json_number_value(json_object_get(v, "min_per_sec")),
			       json_number_value(json_object_get(v, "max_per_sec")),
			       json_number_value(cli_json_get(v, "latency_us.p50")),
			       json_number_value(cli_json_get(v, "latency_us.p99")));
		}
		printf("    overlay / underlay      %.3fx the rate (rounds %.3fx to %.3fx), %.2fx "
		       "the p99\n\n",
		       num(out, "http.ratio_overlay_to_underlay"),
		       num(out, "http.ratio_overlay_to_underlay_min"),
		       num(out, "http.ratio_overlay_to_underlay_max"),
		       num(out, "http.p99_overlay_over_underlay"));
	}
	if (cli_json_get(out, "programmed.median_ms"))
		printf("  endpoint programmed on the other node, %zu present (a third node's, "
		       "written to the store by the bench\n    as an agent writes them, no "
		       "containers behind them): record seen -> FDB + neighbour entry on node 2\n"
		       "    %lld samples: p50 %.1f ms, p99 %.1f ms (min %.1f, max %.1f)   target: "
		       "p99 <= 100 ms%s\n"
		       "    (the container's start call returned %.1f ms after its record, "
		       "median)\n\n",
		       b->n_eps, (long long)cli_json_int(out, "programmed.runs"),
		       num(out, "programmed.median_ms"), num(out, "programmed.p99_ms"),
		       num(out, "programmed.min_ms"), num(out, "programmed.max_ms"),
		       met(out, "programmed.target_met"),
		       num(out, "programmed.start_returned.median_ms"));
	if (cli_json_get(out, "dead_node.median_ms"))
		printf("  dead node forgotten (kill -9 of its agent)\n"
		       "    %8.3f s median (%.3f min, %.3f max, %lld run(s))   target: <= TTL + 1 "
		       "s = %d s%s\n",
		       num(out, "dead_node.median_ms") / 1e3, num(out, "dead_node.min_ms") / 1e3,
		       num(out, "dead_node.max_ms") / 1e3,
		       (long long)cli_json_int(out, "dead_node.runs"), b->ttl_s + 1,
		       met(out, "dead_node.target_met"));
}

/* ---- the command ---- */

static int parse_range(const char *v, long lo, long hi, long *ret)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return -EINVAL;
	*ret = x;
	return 0;
}

static int run(struct bov *b, json_t *out, struct shoal_err *err)
{
	int r;
	if ((r = setup(b, out, err)) < 0)
		return r;
	if ((r = phase_throughput(b, out, err)) < 0 || (r = phase_http(b, out, err)) < 0 ||
	    (r = phase_programmed(b, out, err)) < 0 || (r = phase_dead(b, out, err)) < 0)
		return r;
	if (b->sim_lost)
		return shoal_err_set(err, EIO, "the third node's lease was lost during the run");
	if (b->watch_errors)
		return shoal_err_set(err, EIO, "the bench's watch of the store failed");
	return 0;
}

int bench_overlay(struct cli_ctx *ctx, int argc, char **argv)
{
	enum {
		O_ROUNDS = 1,
		O_EPS,
		O_DURATION,
		O_STARTS,
		O_TTL,
		O_CONNS,
		O_TOOL,
		O_SHOALD,
		O_JSON,
		O_OUT
	};
	static const struct cli_opt opts[] = {
		{O_ROUNDS, "rounds", 0, CLI_OPT_VALUE, "int", "Rounds of each measure (default 3)"},
		{O_EPS, "endpoints", 0, CLI_OPT_VALUE, "int",
		 "Endpoints of a third node present in the store (default 1000)"},
		{O_DURATION, "duration", 0, CLI_OPT_VALUE, "seconds",
		 "Length of each throughput and HTTP run (default 5s)"},
		{O_STARTS, "starts", 0, CLI_OPT_VALUE, "int",
		 "Containers started per round to time their endpoint's programming (default 10)"},
		{O_TTL, "node-ttl", 0, CLI_OPT_VALUE, "int",
		 "The agents' node lease TTL in seconds (default 5)"},
		{O_CONNS, "connections", 'c', CLI_OPT_VALUE, "int",
		 "HTTP connections (default 16)"},
		{O_TOOL, "tcp-tool", 0, CLI_OPT_VALUE, "string",
		 "TCP throughput by iperf3 or bench-tcp (default: iperf3 when installed)"},
		{O_SHOALD, "shoald", 0, CLI_OPT_VALUE, "path", "The agent (default: beside shoal)"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON"},
		{O_OUT, "output", 'o', CLI_OPT_VALUE, "file", "Also write the JSON results here"},
		{0},
	};
	struct bov b = {.rounds = 3,
			.n_eps = 1000,
			.starts = 10,
			.duration = 5,
			.ttl_s = 5,
			.conns = 16,
			.host_fd = -1};
	snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "shoal bench overlay");
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	long v;
	const char *bad = NULL;
	while (!bad && (o = cli_opts_next(&p)) > 0) {
		switch (o) {
		case O_ROUNDS:
			if (parse_range(p.value, 1, BOV_MAX_ROUNDS, &v) < 0)
				bad = "--rounds: expected 1 to 20";
			b.rounds = (size_t)v;
			break;
		case O_EPS:
			if (parse_range(p.value, 0, BOV_MAX_EPS, &v) < 0)
				bad = "--endpoints: expected 0 to 20000";
			b.n_eps = (size_t)v;
			break;
		case O_DURATION:
			if (bench_parse_seconds(p.value, &b.duration) < 0 || b.duration < 1 ||
			    b.duration > 600)
				bad = "--duration: expected 1s to 600s (\"5\", \"5s\", \"2m\")";
			break;
		case O_STARTS:
			if (parse_range(p.value, 1, 100, &v) < 0)
				bad = "--starts: expected 1 to 100";
			b.starts = (size_t)v;
			break;
		case O_TTL:
			if (parse_range(p.value, 2, 60, &v) < 0)
				bad = "--node-ttl: expected 2 to 60 (seconds, as shoald's)";
			b.ttl_s = (int)v;
			break;
		case O_CONNS:
			if (parse_range(p.value, 1, 1024, &v) < 0)
				bad = "--connections: expected 1 to 1024";
			b.conns = (int)v;
			break;
		case O_TOOL:
			if (strcmp(p.value, "iperf3") != 0 && strcmp(p.value, "bench-tcp") != 0)
				bad = "--tcp-tool: expected iperf3 or bench-tcp";
			b.tool_opt = p.value;
			break;
		case O_SHOALD:
			snprintf(b.procs.shoald, sizeof(b.procs.shoald), "%s", p.value);
			break;
		case O_JSON:
			b.json = cli_opts_bool(&p);
			break;
		case O_OUT:
			b.out_path = p.value;
			break;
		}
	}
	if (bad) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, bad);
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(
			ctx, &p, o, "[OPTIONS]",
			"Measure the VXLAN overlay across two nodes on one machine (root): TCP and "
			"HTTP container to container against a bare VXLAN pair and the underlay, "
			"an endpoint programmed on the other node, a dead node forgotten. Traffic "
			"entering through another node (the routing mesh) is not measured: it does "
			"not cross the overlay yet");
	if (p.npos > 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "unexpected argument");
	}
	cli_opts_done(&p);
	if (geteuid() != 0) {
		fprintf(stderr, "shoal bench overlay: needs root: it makes network namespaces and "
				"runs agents (shoald) in them\n");
		return 1;
	}
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		perror("shoal bench overlay: /proc/self/exe");
		return 1;
	}
	self[n] = '\0';
	snprintf(b.self_dir, sizeof(b.self_dir), "%s", dirname(self));
	b.quiet = b.json;
	b.procs.n_agents = BOV_NODES;
	b.procs.ttl_s = b.ttl_s;
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_t *out = json_object();
	json_object_set_new(out, "config",
			    json_pack("{s:I, s:I, s:f, s:I, s:i, s:i, s:s}", "rounds",
				      (json_int_t)b.rounds, "endpoints", (json_int_t)b.n_eps,
				      "duration_s", b.duration, "starts_per_round",
				      (json_int_t)b.starts, "node_ttl_s", b.ttl_s, "connections",
				      b.conns, "nodes",
				      "2 agents, each in a network namespace on "
				      "one underlay bridge; a third node's "
				      "endpoints in the store"));
	if (!b.quiet)
		fprintf(stderr,
			"shoal bench overlay: 2 nodes, %zu endpoints of a third, %zu "
			"round(s)\n",
			b.n_eps, b.rounds);
	struct shoal_err err = {0};
	int r = run(&b, out, &err);
	teardown(&b);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	int rc = 0;
	if (r < 0) {
		if (interrupted)
			shoal_err_set(&err, EINTR, "interrupted; everything it started is gone");
		cli_print_err(&err);
		rc = 1;
	} else {
		/* agents of its own, in namespaces of its own: no agent's data
		 * plane to record */
		bench_result_stamp(out, "overlay", NULL);
		if (b.out_path && json_dump_file(out, b.out_path, JSON_INDENT(2)) < 0) {
			fprintf(stderr, "shoal bench overlay: writing %s failed\n", b.out_path);
			rc = 1;
		}
		if (b.json) {
			json_dumpf(out, stdout, JSON_INDENT(2));
			putchar('\n');
		} else {
			print_report(&b, out);
		}
	}
	json_decref(out);
	return rc;
}
