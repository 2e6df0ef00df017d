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
 * VXLAN pair; HTTP from the underlay through the routing mesh (a published
 * port entered at node 1, its backend on node 2) against the same port at
 * node 2; the time from an endpoint's record to its FDB and neighbour
 * entries on the other node; and a dead node's endpoints forgotten. Every
 * piece is removed at the end, whatever happened. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "agent/store/store.h"
#include "bench/bench-cluster-internal.h"
#include "bench/bench-load.h"
#include "bench/bench-overlay-internal.h"
#include "bench/bench-util.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

static void on_signal(int sig)
{
	bcl_interrupted = 1;
}

void bov_msleep(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

const char *bov_node_addr(int i, char *buf)
{
	sprintf(buf, UNDERLAY_NET ".%d", 11 + i);
	return buf;
}

/* ---- the agents' API ---- */

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
	int rc = bench_image_load(ctx, tar);
	return rc ? shoal_err_set(err, EIO, "loading %s into an agent failed", tar) : 0;
}

/* Creates and starts a container of the bench image on the network. */
int bov_ctr_run(struct cli_ctx *ctx, const char *net, const char *name, char *ret_id, size_t idsize,
		struct shoal_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/containers/create?name=%s", name);
	json_t *body =
		json_pack("{s:s, s:{s:s}}", "Image", BOV_IMAGE, "HostConfig", "NetworkMode", net);
	json_t *resp = NULL;
	int r = bench_api(ctx, "POST", path, body, 201, &resp, err);
	json_decref(body);
	if (r < 0)
		return shoal_err_wrap(err, "container %s", name);
	snprintf(ret_id, idsize, "%s", json_string_value(json_object_get(resp, "Id")) ?: "");
	json_decref(resp);
	snprintf(path, sizeof(path), "/containers/%s/start", ret_id);
	if ((r = bench_api(ctx, "POST", path, NULL, 204, NULL, err)) < 0)
		return shoal_err_wrap(err, "starting container %s", name);
	return 0;
}

static int ctr_inspect(struct cli_ctx *ctx, struct ctr *c, struct shoal_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/containers/%s/json", c->id);
	json_t *j = NULL;
	int r = bench_api(ctx, "GET", path, NULL, 200, &j, err);
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

void bov_ctr_remove(struct cli_ctx *ctx, const char *id)
{
	char path[256];
	snprintf(path, sizeof(path), "/containers/%s?force=1", id);
	int st = 0;
	json_t *j = NULL;
	cli_call_json(ctx, "DELETE", path, NULL, &st, &j, NULL);
	json_decref(j);
}

void bov_agents_clear(struct bcl_procs *procs, int n)
{
	/* the agents take their containers down (mounts, veths, addresses);
	 * what one cannot is killed by bcl_procs_cleanup() */
	for (int i = 0; i < n; i++) {
		struct bcl_agent *a = &procs->agents[i];
		if (a->pid <= 0)
			continue;
		int st = 0;
		json_t *j = NULL;
		if (cli_call_json(&a->ctx, "GET", "/containers/json?all=1", NULL, &st, &j, NULL) >=
			    0 &&
		    st == 200) {
			size_t k;
			json_t *c;
			json_array_foreach(j, k, c) bov_ctr_remove(
				&a->ctx, json_string_value(json_object_get(c, "Id")) ?: "");
		}
		json_decref(j);
	}
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
				  bov_node_addr(i, a))) < 0 ||
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
		if (bcl_interrupted)
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

int bov_parse_mac(const char *s, uint8_t mac[6])
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
	while (!ok && mono_ns() < end && !bcl_interrupted) {
		ok = true;
		for (size_t i = 0; i <= n_want && ok; i++) {
			c = (struct count){.n_eps = b->n_eps};
			uint8_t mac[6];
			if (i < n_want) {
				bov_parse_mac(want[i]->mac, mac);
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
			bov_msleep(100);
	}
	if (bcl_interrupted)
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

/* ---- set-up ---- */

static int network_create(struct bov *b, struct shoal_err *err)
{
	snprintf(b->net_name, sizeof(b->net_name), "bov-%d", (int)getpid());
	json_t *body = json_pack("{s:s, s:s, s:b, s:{s:s, s:[{s:s}]}}", "Name", b->net_name,
				 "Driver", "overlay", "Attachable", 1, "IPAM", "Driver", "default",
				 "Config", "Subnet", OVERLAY_NET);
	int r = -EIO;
	/* the agents may not have chosen their leader yet */
	for (int i = 0; i < 150 && !bcl_interrupted; i++) {
		json_t *resp = NULL;
		struct shoal_err e = {0};
		r = bench_api(&b->procs.agents[0].ctx, "POST", "/networks/create", body, 201, &resp,
			      &e);
		if (r == 0) {
			snprintf(b->net_id, sizeof(b->net_id), "%s",
				 json_string_value(json_object_get(resp, "Id")) ?: "");
			json_decref(resp);
			break;
		}
		*err = e;
		bov_msleep(200);
	}
	json_decref(body);
	if (r < 0)
		return shoal_err_wrap(err, "creating the overlay network");
	return 0;
}

static int setup(struct bov *b, json_t *out, struct shoal_err *err)
{
	int r;
	if ((r = bov_tool_pick(b, err)) < 0)
		return r;
	if ((r = topology_up(b, err)) < 0)
		return r;
	bench_progress(b->quiet, "underlay bridge and 2 node namespaces up (%s, %s)", b->ns[1],
		       b->ns[2]);
	b->procs.label = BOV_LABEL;
	snprintf(b->procs.etcd_addr, sizeof(b->procs.etcd_addr), UNDERLAY_NET ".1");
	for (int i = 0; i < BOV_NODES; i++) {
		bov_node_addr(i, b->procs.agents[i].addr);
		snprintf(b->procs.agents[i].netns, sizeof(b->procs.agents[i].netns), "%s",
			 b->ns_path[i + 1]);
	}
	if ((r = bcl_procs_init(&b->procs, NULL, err)) < 0 ||
	    (r = bcl_etcd_start(&b->procs, err)) < 0)
		return r;
	bench_progress(b->quiet, "etcd %s at %s", b->procs.etcd_version, b->procs.endpoints);
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
	bench_progress(b->quiet, "2 agents up, the bench image loaded");
	if ((r = network_create(b, err)) < 0)
		return r;
	int64_t t0 = mono_ns();
	if ((r = sim_node_up(b, err)) < 0 || (r = sim_endpoints(b, err)) < 0)
		return r;
	bench_progress(b->quiet, "a third node's %zu endpoints in the store in %.2f s", b->n_eps,
		       (mono_ns() - t0) / 1e9);
	snprintf(b->srv.name, sizeof(b->srv.name), "bov-%d-server", (int)getpid());
	snprintf(b->cli.name, sizeof(b->cli.name), "bov-%d-client", (int)getpid());
	if ((r = bov_ctr_run(&b->procs.agents[1].ctx, b->net_name, b->srv.name, b->srv.id,
			     sizeof(b->srv.id), err)) < 0 ||
	    (r = bov_ctr_run(&b->procs.agents[0].ctx, b->net_name, b->cli.name, b->cli.id,
			     sizeof(b->cli.id), err)) < 0 ||
	    (r = ctr_inspect(&b->procs.agents[1].ctx, &b->srv, err)) < 0 ||
	    (r = ctr_inspect(&b->procs.agents[0].ctx, &b->cli, err)) < 0)
		return r;
	const struct ctr *on1[] = {&b->srv}, *on2[] = {&b->cli};
	t0 = mono_ns();
	if ((r = wait_entries(b, 1, on1, 1, false, true, err)) < 0 ||
	    (r = wait_entries(b, 2, on2, 1, false, true, err)) < 0)
		return r;
	bench_progress(b->quiet,
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
	bov_servers_stop(b);
	/* before the containers go: its task would be started again */
	bov_mesh_remove(b);
	if (b->sim_keeper)
		store_lease_keeper_stop(b->sim_keeper);
	b->sim_keeper = NULL;
	if (b->store)
		store_close(b->store);
	b->store = NULL;
	if (b->base)
		event_base_free(b->base);
	b->base = NULL;
	bov_agents_clear(&b->procs, BOV_NODES);
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

static void print_report(void *self, json_t *out)
{
	struct bov *b = self;
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
	if (cli_json_get(out, "routing_mesh")) {
		printf("  routing mesh, HTTP keep-alive from the underlay (not a node), %lld "
		       "connections, port %lld\n"
		       "                                       req/s median (min, max)     p50 us   "
		       "p99 us\n",
		       (long long)cli_json_int(out, "routing_mesh.connections"),
		       (long long)cli_json_int(out, "routing_mesh.published_port"));
		static const char *const rows[][2] = {{"mesh", "node 1 (entry), backend on node 2"},
						      {"local", "node 2, backend local"}};
		for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
			char p[96];
			snprintf(p, sizeof(p), "routing_mesh.%s", rows[i][0]);
			json_t *v = cli_json_get(out, p);
			printf("    %-34s %8.0f (%.0f, %.0f) %8.0f %8.0f\n", rows[i][1],
			       json_number_value(json_object_get(v, "per_sec")),
			       json_number_value(json_object_get(v, "min_per_sec")),
			       json_number_value(json_object_get(v, "max_per_sec")),
			       json_number_value(cli_json_get(v, "latency_us.p50")),
			       json_number_value(cli_json_get(v, "latency_us.p99")));
		}
		printf("    mesh / local            %.3fx the rate (rounds %.3fx to %.3fx), %.2fx "
		       "the p99\n"
		       "    the backend saw the client's own address (%s) both ways; node 2 sent "
		       "%lld reply\n    packets back through node 1 for the mesh's requests (%lld "
		       "flows noted), %lld for the local ones\n\n",
		       num(out, "routing_mesh.ratio_mesh_to_local"),
		       num(out, "routing_mesh.ratio_mesh_to_local_min"),
		       num(out, "routing_mesh.ratio_mesh_to_local_max"),
		       num(out, "routing_mesh.p99_mesh_over_local"),
		       cli_json_str(out, "routing_mesh.client_address") ?: "",
		       (long long)cli_json_int(out, "routing_mesh.mesh.returned_packets"),
		       (long long)cli_json_int(out, "routing_mesh.mesh.noted_flows"),
		       (long long)cli_json_int(out, "routing_mesh.local.returned_packets"));
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

static int run(struct bov *b, json_t *out, struct shoal_err *err)
{
	int r;
	if ((r = setup(b, out, err)) < 0)
		return r;
	if ((r = bov_phase_throughput(b, out, err)) < 0 || (r = bov_phase_http(b, out, err)) < 0 ||
	    (r = bov_phase_mesh(b, out, err)) < 0 || (r = bov_phase_programmed(b, out, err)) < 0 ||
	    (r = bov_phase_dead(b, out, err)) < 0)
		return r;
	if (b->sim_lost)
		return shoal_err_set(err, EIO, "the third node's lease was lost during the run");
	if (b->watch_errors)
		return shoal_err_set(err, EIO, "the bench's watch of the store failed");
	return 0;
}

int bench_overlay(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_ROUNDS = 1, O_EPS, O_DURATION, O_STARTS, O_TTL, O_CONNS, O_TOOL };
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
		BENCH_OPTS_RESULTS,
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
	const struct bench_num_opt nums[] = {
		{O_ROUNDS, 1, BOV_MAX_ROUNDS, "--rounds: expected 1 to 20", &b.rounds, NULL},
		{O_EPS, 0, BOV_MAX_EPS, "--endpoints: expected 0 to 20000", &b.n_eps, NULL},
		{O_STARTS, 1, 100, "--starts: expected 1 to 100", &b.starts, NULL},
		{O_TTL, 2, 60, "--node-ttl: expected 2 to 60 (seconds, as shoald's)", NULL,
		 &b.ttl_s},
		{O_CONNS, 1, 1024, "--connections: expected 1 to 1024", NULL, &b.conns},
	};
	int o;
	const char *bad = NULL;
	while (!bad && (o = cli_opts_next(&p)) > 0) {
		if (bench_num_opt(nums, ARRAY_SIZE(nums), o, p.value, &bad) ||
		    bench_results_opt(&p, o, b.procs.shoald, sizeof(b.procs.shoald), &b.json,
				      &b.out_path))
			continue;
		switch (o) {
		case O_DURATION:
			if (bench_parse_seconds(p.value, &b.duration) < 0 || b.duration < 1 ||
			    b.duration > 600)
				bad = "--duration: expected 1s to 600s (\"5\", \"5s\", \"2m\")";
			break;
		case O_TOOL:
			if (strcmp(p.value, "iperf3") != 0 && strcmp(p.value, "bench-tcp") != 0)
				bad = "--tcp-tool: expected iperf3 or bench-tcp";
			b.tool_opt = p.value;
			break;
		}
	}
	int rc = bench_opts_end(
		ctx, &p, o, bad,
		"Measure the VXLAN overlay across two nodes on one machine (root): TCP and "
		"HTTP container to container against a bare VXLAN pair and the underlay, "
		"HTTP through the routing mesh (a published port entered at the node "
		"without the backend) against the same port at the backend's node, an "
		"endpoint programmed on the other node, a dead node forgotten");
	if (rc >= 0)
		return rc;
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
	/* agents of its own, in namespaces of its own: no agent's data plane to
	 * record */
	rc = bench_run_status(r, &err, &bcl_interrupted, out, "overlay", b.out_path, b.json,
			      print_report, &b);
	json_decref(out);
	return rc;
}
