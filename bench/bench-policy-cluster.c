// SPDX-License-Identifier: Apache-2.0
/* `shoal bench policy --nodes N`: policy create to enforcement on every node
 * of a cluster.
 *
 * As `shoal bench overlay` does it: an underlay bridge in a network namespace
 * of the bench's own (where it runs, and etcd with it), N node namespaces
 * with a veth into it, one real shoald in each (bench-cluster-proc.c), an
 * attachable overlay network. On it a service of N tasks, one on each node
 * (the receivers: the policies select them by service), with
 * shoal-bench-echo answering UDP in each task's network namespace, and a
 * plain container on every node (the probers' namespaces, which no policy
 * selects). Receiver i is probed from node i + 1's prober container, so
 * every datagram crosses the overlay.
 *
 * Per round, from no policy: POST /policies/create through node 1's API of
 * a policy isolating the receivers, timed to the first datagram dropped at
 * every node's receiver; then of one allowing the echo's port again, timed
 * to the first answered on every node; both removed. The probers are
 * bench-policy-api.c's: each isolating create waits until every prober's
 * own datagrams are answered (a change applies to established flows too,
 * so a late answer would be dropped and counted), and a drop is a drop
 * only once no answer came for 300 ms. "Every node" is the slowest node's
 * time of the round. Everything is removed at the end, also on failure and
 * Ctrl-C. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench/bench-cluster-internal.h"
#include "bench/bench-overlay-internal.h"
#include "bench/bench-policy-internal.h"
#include "bench/bench-util.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define PBC_LABEL    "shoal-benchpc"
#define PBC_UNDERLAY "10.217.0"
#define PBC_OVERLAY  "10.218.0.0/16"
#define PBC_PORT     5301
#define PBC_TTL_S    5
#define PBC_WAIT_NS  (60LL * 1000000000)
#define PBC_DENY     "bench-cluster-deny"
#define PBC_ALLOW    "bench-cluster-allow"

struct pbc_node {
	char ns[64], ns_path[96];
	bool ns_made;
	char node_id[80];
	/* the receiver on this node: its task's container, its echo */
	char rcv_id[128], rcv_ip[INET_ADDRSTRLEN], rcv_sandbox[512];
	pid_t echo_pid;
	struct pb_api dst;
	/* the prober container on this node (it probes the previous node's
	 * receiver) */
	char prb_name[64], prb_id[128], prb_sandbox[512];
	int prb_fd;
};

struct pbc {
	const struct pb *b;
	int n, rounds;
	bool quiet;
	char ns_u[64], ns_u_path[96];
	bool ns_u_made, moved;
	int host_fd;
	char self_dir[4096];
	struct bcl_procs procs;
	char net_name[64], svc_name[64], svc_id[128];
	struct pbc_node nodes[PB_CLUSTER_MAX_NODES];
};

/* The prober of node i's receiver: on the next node. */
static const struct pbc_node *prober_of(const struct pbc *c, int i)
{
	return &c->nodes[(i + 1) % c->n];
}

static void self_dir(const struct pb *b, char *buf, size_t size)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", b->self);
	snprintf(buf, size, "%s", dirname(tmp));
}

int pb_cluster_check(const struct pb *b, struct shoal_err *err)
{
	static const char *const etcd[] = {"/usr/bin/etcd", "/usr/local/bin/etcd",
					   "/usr/sbin/etcd"};
	bool have = false;
	for (size_t i = 0; i < ARRAY_SIZE(etcd); i++)
		have = have || access(etcd[i], X_OK) == 0;
	if (!have)
		return shoal_err_set(err, -ENOENT,
				     "--nodes: etcd is not installed (Debian: etcd-server); the "
				     "cluster phase runs one of its own");
	char dir[4096], path[4200];
	self_dir(b, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/shoald", dir);
	if (access(path, X_OK) < 0)
		return shoal_err_set(err, -ENOENT,
				     "--nodes: %s is missing (the agent the cluster phase runs on "
				     "every node)",
				     path);
	snprintf(path, sizeof(path), "%s/../images/bench.tar", dir);
	if (access(path, R_OK) < 0)
		return shoal_err_set(err, -ENOENT,
				     "--nodes: %s is missing: build target shoal_bench_image (the "
				     "receivers' image)",
				     path);
	return 0;
}

/* ---- the topology ---- */

static const char *node_addr(int i, char *buf)
{
	snprintf(buf, 16, PBC_UNDERLAY ".%d", 11 + i);
	return buf;
}

static int topology_up(struct pbc *c, struct shoal_err *err)
{
	int r;
	snprintf(c->ns_u, sizeof(c->ns_u), "%s-%d-u", PBC_LABEL, (int)getpid());
	snprintf(c->ns_u_path, sizeof(c->ns_u_path), "/run/netns/%s", c->ns_u);
	if ((r = bov_runf(NULL, err, "ip netns add %s", c->ns_u)) < 0)
		return shoal_err_wrap(err, "making network namespace %s", c->ns_u);
	c->ns_u_made = true;
	const char *u = c->ns_u;
	if ((r = bov_runf(NULL, err, "ip -n %s link set lo up", u)) < 0 ||
	    (r = bov_runf(NULL, err, "ip -n %s link add br0 type bridge", u)) < 0 ||
	    (r = bov_runf(NULL, err, "ip -n %s addr add " PBC_UNDERLAY ".1/24 dev br0", u)) < 0 ||
	    (r = bov_runf(NULL, err, "ip -n %s link set br0 up", u)) < 0)
		return shoal_err_wrap(err, "the underlay bridge");
	for (int i = 0; i < c->n; i++) {
		struct pbc_node *nd = &c->nodes[i];
		char a[16];
		snprintf(nd->ns, sizeof(nd->ns), "%s-%d-n%d", PBC_LABEL, (int)getpid(), i + 1);
		snprintf(nd->ns_path, sizeof(nd->ns_path), "/run/netns/%s", nd->ns);
		if ((r = bov_runf(NULL, err, "ip netns add %s", nd->ns)) < 0)
			return shoal_err_wrap(err, "making network namespace %s", nd->ns);
		nd->ns_made = true;
		if ((r = bov_runf(NULL, err, "ip -n %s link set lo up", nd->ns)) < 0 ||
		    (r = bov_runf(NULL, err,
				  "ip -n %s link add eth0 type veth peer name n%d netns %s", nd->ns,
				  i + 1, u)) < 0 ||
		    (r = bov_runf(NULL, err, "ip -n %s addr add %s/24 dev eth0", nd->ns,
				  node_addr(i, a))) < 0 ||
		    (r = bov_runf(NULL, err, "ip -n %s link set eth0 up", nd->ns)) < 0 ||
		    (r = bov_runf(NULL, err, "ip -n %s link set n%d master br0 up", u, i + 1)) < 0)
			return shoal_err_wrap(err, "node %d on the underlay", i + 1);
	}
	/* the bench and etcd live on the underlay */
	c->host_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int ufd = open(c->ns_u_path, O_RDONLY | O_CLOEXEC);
	if (c->host_fd < 0 || ufd < 0 || setns(ufd, CLONE_NEWNET) < 0) {
		int e = errno;
		if (ufd >= 0)
			close(ufd);
		return shoal_err_errno(err, e, "entering %s", c->ns_u);
	}
	close(ufd);
	c->moved = true;
	return 0;
}

static void topology_down(struct pbc *c)
{
	if (c->moved && c->host_fd >= 0)
		(void)setns(c->host_fd, CLONE_NEWNET);
	c->moved = false;
	if (c->host_fd >= 0)
		close(c->host_fd);
	c->host_fd = -1;
	/* a veth goes with either of its namespaces */
	for (int i = c->n - 1; i >= 0; i--) {
		struct shoal_err e = {0};
		if (c->nodes[i].ns_made)
			bov_runf(NULL, &e, "ip netns del %s", c->nodes[i].ns);
		c->nodes[i].ns_made = false;
	}
	struct shoal_err e = {0};
	if (c->ns_u_made)
		bov_runf(NULL, &e, "ip netns del %s", c->ns_u);
	c->ns_u_made = false;
}

/* ---- the agents' API ---- */

static int image_load(struct pbc *c, struct cli_ctx *ctx, struct shoal_err *err)
{
	char tar[4200];
	snprintf(tar, sizeof(tar), "%s/../images/bench.tar", c->self_dir);
	if (bench_image_load(ctx, tar) != 0)
		return shoal_err_set(err, -EIO, "loading %s into an agent failed", tar);
	return 0;
}

static int network_create(struct pbc *c, struct shoal_err *err)
{
	snprintf(c->net_name, sizeof(c->net_name), "pbc-%d", (int)getpid());
	json_t *body = json_pack("{s:s, s:s, s:b, s:{s:s, s:[{s:s}]}}", "Name", c->net_name,
				 "Driver", "overlay", "Attachable", 1, "IPAM", "Driver", "default",
				 "Config", "Subnet", PBC_OVERLAY);
	if (!body)
		return shoal_err_set(err, -ENOMEM, "out of memory");
	int r = -EIO;
	/* the agents may not have chosen their leader yet */
	for (int i = 0; i < 150 && !pb_interrupted; i++) {
		struct shoal_err e = {0};
		r = bench_api(&c->procs.agents[0].ctx, "POST", "/networks/create", body, 201, NULL,
			      &e);
		if (r == 0)
			break;
		*err = e;
		bov_msleep(200);
	}
	json_decref(body);
	if (pb_interrupted)
		return shoal_err_set(err, -EINTR, "interrupted");
	return r < 0 ? shoal_err_wrap(err, "creating the overlay network") : 0;
}

/* The receivers: one task on every node, serving HTTP (the image's own
 * command) while the bench's echo answers UDP in its namespace. */
static int service_create(struct pbc *c, struct shoal_err *err)
{
	snprintf(c->svc_name, sizeof(c->svc_name), "pbc-%d-rcv", (int)getpid());
	json_t *spec = json_pack("{s:s, s:{s:{s:s, s:I}, s:{s:i}, s:[{s:s}]}, s:{s:{s:i}}}", "Name",
				 c->svc_name, "TaskTemplate", "ContainerSpec", "Image", BOV_IMAGE,
				 "StopGracePeriod", (json_int_t)1000000000, "Placement",
				 "MaxReplicas", 1, "Networks", "Target", c->net_name, "Mode",
				 "Replicated", "Replicas", c->n);
	if (!spec)
		return shoal_err_set(err, -ENOMEM, "out of memory");
	json_t *resp = NULL;
	int r = bench_api(&c->procs.agents[0].ctx, "POST", "/services/create", spec, 201, &resp,
			  err);
	json_decref(spec);
	if (r < 0)
		return shoal_err_wrap(err, "creating service %s", c->svc_name);
	snprintf(c->svc_id, sizeof(c->svc_id), "%s",
		 json_string_value(json_object_get(resp, "ID")) ?: c->svc_name);
	json_decref(resp);
	return 0;
}

static int node_of(const struct pbc *c, const char *id)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->nodes[i].node_id, id) == 0)
			return i;
	return -1;
}

/* Every node runs a task of the receivers' service: its container's id. */
static int tasks_wait(struct pbc *c, struct shoal_err *err)
{
	char q[256], path[1024], last[512] = "no task";
	snprintf(q, sizeof(q), "{\"service\":{\"%s\":true}}", c->svc_id);
	_cleanup_free_ char *eq = cli_escape(q);
	if (!eq)
		return shoal_err_set(err, -ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "/tasks?filters=%s", eq);
	int found = 0;
	for (int64_t t0 = mono_ns(); found < c->n && mono_ns() - t0 < PBC_WAIT_NS;) {
		if (pb_interrupted)
			return shoal_err_set(err, -EINTR, "interrupted");
		json_t *tasks = NULL;
		struct shoal_err e = {0};
		found = 0;
		for (int i = 0; i < c->n; i++)
			c->nodes[i].rcv_id[0] = '\0';
		if (bench_api(&c->procs.agents[0].ctx, "GET", path, NULL, 200, &tasks, &e) == 0) {
			size_t k;
			json_t *t;
			json_array_foreach(tasks, k, t)
			{
				const char *st = cli_json_str(t, "Status.State") ?: "";
				const char *on = cli_json_str(t, "NodeID") ?: "";
				const char *cid =
					cli_json_str(t, "Status.ContainerStatus.ContainerID");
				const char *why = cli_json_str(t, "Status.Err");
				int i = node_of(c, on);
				snprintf(last, sizeof(last), "a task %s on node %.12s%s%s", st, on,
					 why ? ": " : "", why ?: "");
				if (strcmp(st, "running") != 0 || i < 0 || !cid || !*cid ||
				    c->nodes[i].rcv_id[0])
					continue;
				snprintf(c->nodes[i].rcv_id, sizeof(c->nodes[i].rcv_id), "%s", cid);
				found++;
			}
		} else {
			snprintf(last, sizeof(last), "%s", e.msg);
		}
		json_decref(tasks);
		if (found < c->n)
			bov_msleep(200);
	}
	if (found < c->n)
		return shoal_err_set(err, -ETIMEDOUT,
				     "service %s: %d of %d nodes run a task after %lld s (%s)",
				     c->svc_name, found, c->n, PBC_WAIT_NS / 1000000000, last);
	return 0;
}

/* A container's overlay address and network namespace, from its node. */
static int ctr_inspect(struct cli_ctx *ctx, const char *id, char *ret_ip, size_t ip_size,
		       char *ret_sandbox, size_t sb_size, struct shoal_err *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	json_t *j = NULL;
	int r = bench_api(ctx, "GET", path, NULL, 200, &j, err);
	if (r < 0)
		return shoal_err_wrap(err, "container %.12s", id);
	const char *ip = cli_json_str(j, "NetworkSettings.IPAddress") ?: "";
	const char *sb = cli_json_str(j, "NetworkSettings.SandboxKey") ?: "";
	struct in_addr a;
	if ((ret_ip && inet_pton(AF_INET, ip, &a) != 1) || !*sb) {
		r = shoal_err_set(err, -EIO,
				  "container %.12s has no overlay address or network namespace "
				  "(IPAddress \"%s\", SandboxKey \"%s\")",
				  id, ip, sb);
		json_decref(j);
		return r;
	}
	if (ret_ip)
		snprintf(ret_ip, ip_size, "%s", ip);
	snprintf(ret_sandbox, sb_size, "%s", sb);
	json_decref(j);
	return 0;
}

/* A UDP socket in the network namespace nsfd (this thread goes back). */
static int ns_socket(int nsfd)
{
	_cleanup_close_ int back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (back < 0)
		return -errno;
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return -errno;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int e = errno;
	if (setns(back, CLONE_NEWNET) < 0) {
		/* stranded in a container's namespace: nothing after is sound */
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	return fd < 0 ? -e : fd;
}

/* Node i's receiver answers a datagram from its prober within 100 ms. */
static bool answered(const struct pbc *c, int i)
{
	_cleanup_close_ int fd = ns_socket(prober_of(c, i)->prb_fd);
	const struct pb_api *a = &c->nodes[i].dst;
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	char buf[128];
	if (fd < 0 || sendto(fd, "1", 1, 0, (const struct sockaddr *)&a->dst, sizeof(a->dst)) < 0)
		return false;
	return poll(&pf, 1, 100) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

/* Every receiver answers its prober three times in a row (within timeout_ns). */
static int all_answer(struct pbc *c, int64_t timeout_ns, struct shoal_err *err)
{
	int64_t t0 = mono_ns();
	for (int i = 0; i < c->n; i++) {
		int up = 0;
		while (up < 3 && mono_ns() - t0 < timeout_ns && !pb_interrupted) {
			up = answered(c, i) ? up + 1 : 0;
			if (!up)
				bov_msleep(50);
		}
		if (pb_interrupted)
			return shoal_err_set(err, -EINTR, "interrupted");
		if (up < 3)
			return shoal_err_set(err, -EHOSTUNREACH,
					     "node %d's receiver %s:%d does not answer its prober "
					     "on node %d with no bench policy in force",
					     i + 1, c->nodes[i].rcv_ip, PBC_PORT,
					     (i + 1) % c->n + 1);
	}
	return 0;
}

static int setup(struct pbc *c, json_t *out, struct shoal_err *err)
{
	int r;
	if ((r = topology_up(c, err)) < 0)
		return r;
	bench_progress(c->quiet, "cluster: underlay bridge and %d node namespaces up", c->n);
	c->procs.label = PBC_LABEL;
	c->procs.n_agents = (size_t)c->n;
	c->procs.ttl_s = PBC_TTL_S;
	snprintf(c->procs.etcd_addr, sizeof(c->procs.etcd_addr), PBC_UNDERLAY ".1");
	for (int i = 0; i < c->n; i++) {
		node_addr(i, c->procs.agents[i].addr);
		snprintf(c->procs.agents[i].netns, sizeof(c->procs.agents[i].netns), "%s",
			 c->nodes[i].ns_path);
	}
	if ((r = bcl_procs_init(&c->procs, NULL, err)) < 0 ||
	    (r = bcl_etcd_start(&c->procs, err)) < 0)
		return r;
	bench_progress(c->quiet, "cluster: etcd %s at %s", c->procs.etcd_version,
		       c->procs.endpoints);
	for (int i = 0; i < c->n; i++) {
		struct bcl_agent *a = &c->procs.agents[i];
		if ((r = bcl_agent_start(&c->procs, (size_t)i, err)) < 0)
			return r;
		snprintf(a->ctx.cmdpath, sizeof(a->ctx.cmdpath), "shoal bench policy");
		if ((r = image_load(c, &a->ctx, err)) < 0)
			return r;
		json_t *info = NULL;
		if ((r = bench_api(&a->ctx, "GET", "/info", NULL, 200, &info, err)) < 0)
			return shoal_err_wrap(err, "node %d's /info", i + 1);
		snprintf(c->nodes[i].node_id, sizeof(c->nodes[i].node_id), "%s",
			 cli_json_str(info, "Swarm.NodeID") ?: "");
		json_decref(info);
		if (!c->nodes[i].node_id[0])
			return shoal_err_set(err, -EIO, "node %d's /info names no Swarm.NodeID",
					     i + 1);
	}
	bench_progress(c->quiet, "cluster: %d agents up, the bench image loaded", c->n);
	if ((r = network_create(c, err)) < 0 || (r = service_create(c, err)) < 0)
		return r;
	for (int i = 0; i < c->n; i++) {
		struct pbc_node *nd = &c->nodes[i];
		snprintf(nd->prb_name, sizeof(nd->prb_name), "pbc-%d-prober%d", (int)getpid(),
			 i + 1);
		if ((r = bov_ctr_run(&c->procs.agents[i].ctx, c->net_name, nd->prb_name, nd->prb_id,
				     sizeof(nd->prb_id), err)) < 0 ||
		    (r = ctr_inspect(&c->procs.agents[i].ctx, nd->prb_id, NULL, 0, nd->prb_sandbox,
				     sizeof(nd->prb_sandbox), err)) < 0)
			return shoal_err_wrap(err, "node %d's prober", i + 1);
		nd->prb_fd = open(nd->prb_sandbox, O_RDONLY | O_CLOEXEC);
		if (nd->prb_fd < 0)
			return shoal_err_errno(err, -errno, "opening %s", nd->prb_sandbox);
	}
	if ((r = tasks_wait(c, err)) < 0)
		return r;
	char log[400], port[8], echo[4200];
	snprintf(log, sizeof(log), "%s/echo.log", c->procs.tmp);
	snprintf(port, sizeof(port), "%d", PBC_PORT);
	snprintf(echo, sizeof(echo), "%s", c->b->echo);
	for (int i = 0; i < c->n; i++) {
		struct pbc_node *nd = &c->nodes[i];
		if ((r = ctr_inspect(&c->procs.agents[i].ctx, nd->rcv_id, nd->rcv_ip,
				     sizeof(nd->rcv_ip), nd->rcv_sandbox, sizeof(nd->rcv_sandbox),
				     err)) < 0)
			return shoal_err_wrap(err, "node %d's receiver", i + 1);
		char *const argv[] = {echo, "-a", nd->rcv_ip, port, NULL};
		nd->echo_pid = bov_spawn(nd->rcv_sandbox, argv, log);
		if (nd->echo_pid < 0) {
			r = (int)nd->echo_pid;
			nd->echo_pid = 0;
			return shoal_err_errno(err, r, "starting the echo in %s", nd->rcv_sandbox);
		}
		nd->dst.dst =
			(struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(PBC_PORT)};
		inet_pton(AF_INET, nd->rcv_ip, &nd->dst.dst.sin_addr);
		nd->dst.service = c->svc_name;
		nd->dst.port = PBC_PORT;
	}
	/* the overlay programmed everywhere: every prober's datagrams answered */
	int64_t t0 = mono_ns();
	if ((r = all_answer(c, PBC_WAIT_NS, err)) < 0)
		return r;
	bench_progress(c->quiet,
		       "cluster: service %s's receivers on %d nodes answer their probers on the "
		       "next node (%.2f s after their start)",
		       c->svc_name, c->n, (mono_ns() - t0) / 1e9);
	json_t *cfg = json_object_get(out, "config");
	json_object_set_new(cfg, "etcd", json_string(c->procs.etcd_version));
	return 0;
}

static void teardown(struct pbc *c)
{
	for (int i = 0; i < c->n; i++) {
		bov_stop(c->nodes[i].echo_pid);
		c->nodes[i].echo_pid = 0;
		if (c->nodes[i].prb_fd >= 0)
			close(c->nodes[i].prb_fd);
		c->nodes[i].prb_fd = -1;
	}
	/* the service first: its tasks would be started again */
	struct bcl_agent *a0 = &c->procs.agents[0];
	if (c->svc_id[0] && a0->pid > 0) {
		char path[200];
		struct shoal_err e = {0};
		snprintf(path, sizeof(path), "/services/%s", c->svc_id);
		(void)bench_api(&a0->ctx, "DELETE", path, NULL, 200, NULL, &e);
	}
	bov_agents_clear(&c->procs, c->n);
	bcl_procs_cleanup(&c->procs);
	topology_down(c);
}

/* ---- the rounds ---- */

static void policies_remove(struct pbc *c)
{
	struct cli_ctx *ctx = &c->procs.agents[0].ctx;
	int st = 0;
	json_t *j = NULL;
	/* the isolation first: every state on the way answers */
	(void)cli_call_json(ctx, "DELETE", "/policies/" PBC_DENY, NULL, &st, &j, NULL);
	json_decref(j);
	j = NULL;
	(void)cli_call_json(ctx, "DELETE", "/policies/" PBC_ALLOW, NULL, &st, &j, NULL);
	json_decref(j);
}

struct pbc_probe {
	pid_t pid;
	int res, ready, t0; /* our ends: results, ready, the create's start */
};

static void probe_close(struct pbc_probe *p)
{
	int *fds[] = {&p->res, &p->ready, &p->t0};
	for (size_t k = 0; k < ARRAY_SIZE(fds); k++) {
		if (*fds[k] >= 0)
			close(*fds[k]);
		*fds[k] = -1;
	}
}

/* Node i's prober (pr[i]) started in its namespace, the next node's prober
 * container; pr[0] to pr[i - 1] are the ones started before it. */
static int probe_start(struct pbc *c, struct pbc_probe *pr, int i, bool deny, struct shoal_err *err)
{
	int pfd[2], rfd[2], tfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return shoal_err_errno(err, -errno, "pipe");
	if (pipe2(rfd, O_CLOEXEC) < 0) {
		int e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return shoal_err_errno(err, e, "pipe");
	}
	if (pipe2(tfd, O_CLOEXEC) < 0) {
		int e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		close(rfd[0]);
		close(rfd[1]);
		return shoal_err_errno(err, e, "pipe");
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* the other probers' ends: a create's start must reach each
		 * prober alone, and its EOF too */
		for (int k = 0; k < i; k++)
			probe_close(&pr[k]);
		close(pfd[0]);
		close(rfd[0]);
		close(tfd[1]);
		if (setns(prober_of(c, i)->prb_fd, CLONE_NEWNET) < 0)
			_exit(2);
		pb_api_prober(&c->nodes[i].dst, deny, pfd[1], rfd[1], tfd[0]);
		_exit(2);
	}
	int e = -errno;
	close(pfd[1]);
	close(rfd[1]);
	close(tfd[0]);
	if (pid < 0) {
		close(pfd[0]);
		close(rfd[0]);
		close(tfd[1]);
		return shoal_err_errno(err, e, "fork");
	}
	pr[i] = (struct pbc_probe){.pid = pid, .res = pfd[0], .ready = rfd[0], .t0 = tfd[1]};
	return 0;
}

/* One create timed on every node: a prober for each receiver, then POST
 * /policies/create through node 1. ret_ns[i]: node i's time. */
static int pbc_round(struct pbc *c, bool deny, int64_t *ret_ns, struct shoal_err *err)
{
	struct pbc_probe pr[PB_CLUSTER_MAX_NODES];
	bool ready[PB_CLUSTER_MAX_NODES] = {false};
	int r = 0, started = 0;
	for (int i = 0; i < c->n; i++)
		pr[i] = (struct pbc_probe){.res = -1, .ready = -1, .t0 = -1};
	for (int i = 0; i < c->n && r >= 0; i++)
		r = probe_start(c, pr, i, deny, err);
	/* a deny round starts once every prober's own datagrams are answered;
	 * one without an answer: no create (its report says what it saw) */
	for (int i = 0; i < c->n && r >= 0; i++) {
		char ch;
		ready[i] = read_all(pr[i].ready, &ch, 1) == 0;
		started += ready[i];
		close(pr[i].ready);
		pr[i].ready = -1;
	}
	bool go = r >= 0 && started == c->n && !pb_interrupted;
	if (go && !deny)
		bov_msleep(20); /* datagrams sent while the isolation holds, none answered */
	json_t *body = deny ? json_pack("{s:s, s:{s:s}, s:[s], s:[]}", "Name", PBC_DENY, "Selector",
					"Service", c->svc_name, "Types", "Ingress", "Ingress")
			    : json_pack("{s:s, s:{s:s}, s:[{s:[{s:i, s:s}]}]}", "Name", PBC_ALLOW,
					"Selector", "Service", c->svc_name, "Ingress", "Ports",
					"Port", PBC_PORT, "Protocol", "udp");
	int64_t t0 = mono_ns();
	for (int i = 0; i < c->n; i++) {
		if (go && pr[i].t0 >= 0)
			(void)write(pr[i].t0, &t0, sizeof(t0));
		if (pr[i].t0 >= 0)
			close(pr[i].t0);
		pr[i].t0 = -1;
	}
	if (r >= 0 && !body)
		r = shoal_err_set(err, -ENOMEM, "out of memory");
	if (r >= 0 && go &&
	    (r = bench_api(&c->procs.agents[0].ctx, "POST", "/policies/create", body, 201, NULL,
			   err)) < 0)
		shoal_err_wrap(err, "POST /policies/create (%s) on node 1",
			       deny ? "deny" : "allow");
	json_decref(body);
	int64_t got[PB_CLUSTER_MAX_NODES] = {0}, stats[PB_CLUSTER_MAX_NODES][3] = {{0}};
	for (int i = 0; i < c->n; i++) {
		/* a Ctrl-C: what the probers saw no longer matters */
		if (pb_interrupted && pr[i].pid > 0)
			kill(pr[i].pid, SIGKILL);
		if (pr[i].res >= 0 && (read_all(pr[i].res, &got[i], sizeof(got[i])) < 0 ||
				       read_all(pr[i].res, stats[i], sizeof(stats[i])) < 0))
			got[i] = 0;
		probe_close(&pr[i]);
		while (pr[i].pid > 0 && waitpid(pr[i].pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (r < 0)
		return r;
	if (pb_interrupted)
		return shoal_err_set(err, -EINTR, "interrupted");
	char seen[PB_CLUSTER_MAX_NODES][160];
	for (int i = 0; i < c->n; i++)
		snprintf(seen[i], sizeof(seen[i]),
			 " (its prober on node %d: %lld datagrams sent, %lld answered before the "
			 "create, %lld after)",
			 (i + 1) % c->n + 1, (long long)stats[i][2], (long long)stats[i][0],
			 (long long)stats[i][1]);
	/* no create: the receiver that did not answer */
	for (int i = 0; i < c->n && !go; i++)
		if (!ready[i])
			return shoal_err_set(
				err, -EHOSTUNREACH,
				"deny: node %d's receiver %s:%d did not answer its prober "
				"within %lld ms (%d of %d did), so no policy was "
				"created%s",
				i + 1, c->nodes[i].rcv_ip, PBC_PORT, PB_PROBE_GIVEUP_NS / 1000000,
				started, c->n, seen[i]);
	for (int i = 0; i < c->n; i++) {
		if (got[i] == 0)
			return shoal_err_set(
				err, -ETIMEDOUT,
				"%s: node %d's receiver %s:%d: no %s within %lld ms of "
				"the create%s",
				deny ? "deny" : "allow", i + 1, c->nodes[i].rcv_ip, PBC_PORT,
				deny ? "datagram dropped" : "datagram answered",
				PB_PROBE_GIVEUP_NS / 1000000, seen[i]);
		if (got[i] < 0)
			return shoal_err_set(
				err, -EPROTO,
				deny ? "deny: node %d's receiver %s:%d answered no datagram before "
				       "the create: it must answer while no policy selects %s%s"
				     : "allow: node %d's receiver %s:%d answered a datagram before "
				       "the create: %s did not isolate it%s",
				i + 1, c->nodes[i].rcv_ip, PBC_PORT, deny ? c->svc_name : PBC_DENY,
				seen[i]);
		ret_ns[i] = got[i] - t0;
	}
	return 0;
}

struct pbc_samples {
	struct bench_samples every, node[PB_CLUSTER_MAX_NODES];
};

static void samples_free(struct pbc_samples *s)
{
	bench_samples_free(&s->every);
	for (int i = 0; i < PB_CLUSTER_MAX_NODES; i++)
		bench_samples_free(&s->node[i]);
}

static int samples_add(struct pbc_samples *s, const int64_t *ns, int n)
{
	int64_t max = 0;
	for (int i = 0; i < n; i++) {
		if (ns[i] > max)
			max = ns[i];
		if (bench_samples_add(&s->node[i], ns[i]) < 0)
			return -ENOMEM;
	}
	return bench_samples_add(&s->every, max);
}

static json_t *samples_json(struct pbc_samples *s, int n)
{
	json_t *per = json_array();
	for (int i = 0; i < n; i++) {
		json_t *x = pb_api_summary(&s->node[i]);
		json_object_set_new(x, "node", json_integer(i + 1));
		json_array_append_new(per, x);
	}
	return json_pack("{s:o, s:o}", "every_node", pb_api_summary(&s->every), "per_node", per);
}

static int rounds_run(struct pbc *c, json_t *out, struct shoal_err *err)
{
	struct pbc_samples deny = {0}, allow = {0};
	int r = 0;
	policies_remove(c);
	for (int round = 0; round < c->rounds && !pb_interrupted && r >= 0; round++) {
		int64_t ns[PB_CLUSTER_MAX_NODES] = {0};
		/* no policy: every receiver answered again */
		if ((r = all_answer(c, 10LL * 1000000000, err)) < 0 ||
		    (r = pbc_round(c, true, ns, err)) < 0 ||
		    (r = samples_add(&deny, ns, c->n)) < 0 ||
		    (r = pbc_round(c, false, ns, err)) < 0 ||
		    (r = samples_add(&allow, ns, c->n)) < 0) {
			if (r == -ENOMEM)
				shoal_err_set(err, r, "out of memory");
			shoal_err_wrap(err, "cluster round %d", round + 1);
			break;
		}
		policies_remove(c);
		if (!c->quiet)
			fprintf(stderr, "\rcluster round %d of %d", round + 1, c->rounds);
	}
	if (!c->quiet)
		fprintf(stderr, "\n");
	policies_remove(c);
	if (pb_interrupted && r >= 0)
		r = shoal_err_set(err, -EINTR, "interrupted");
	if (r >= 0) {
		json_t *en = json_pack(
			"{s:i, s:i, s:s, s:s, s:o, s:o, s:s}", "nodes", c->n, "rounds", c->rounds,
			"created_through", "node 1's API (POST /policies/create)", "probed",
			"each node's receiver (a task of one service, UDP echo) from a container on "
			"the next node, across the overlay",
			"deny", samples_json(&deny, c->n), "allow", samples_json(&allow, c->n),
			"target", "<= 100 ms p99, enforced on every node");
		double worst = 0;
		for (int i = 0; i < 2; i++) {
			json_t *x = cli_json_get(en, i ? "allow.every_node" : "deny.every_node");
			double p99 = json_number_value(json_object_get(x, "p99"));
			worst = p99 > worst ? p99 : worst;
			if (p99 > PB_TARGET_ENFORCE_MS)
				json_array_append_new(
					json_object_get(out, "warnings"),
					json_sprintf(
						"%s on every node of %d: p99 %.1f ms, above the "
						"%.0f ms target",
						i ? "allow" : "deny", c->n, p99,
						PB_TARGET_ENFORCE_MS));
		}
		json_object_set_new(en, "target_met", json_boolean(worst <= PB_TARGET_ENFORCE_MS));
		json_object_set_new(out, "cluster_enforce_ms", en);
	}
	samples_free(&deny);
	samples_free(&allow);
	return r;
}

int pb_cluster_run(const struct pb *b, json_t *out, struct shoal_err *err)
{
	struct pbc *c = calloc(1, sizeof(*c));
	if (!c)
		return shoal_err_set(err, -ENOMEM, "out of memory");
	c->b = b;
	c->n = b->o.nodes;
	c->rounds = b->o.cluster_rounds;
	c->quiet = b->o.quiet || b->o.json;
	c->host_fd = -1;
	for (int i = 0; i < PB_CLUSTER_MAX_NODES; i++)
		c->nodes[i].prb_fd = -1;
	self_dir(b, c->self_dir, sizeof(c->self_dir));
	snprintf(c->procs.shoald, sizeof(c->procs.shoald), "%s/shoald", c->self_dir);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	bench_progress(c->quiet, "cluster: %d nodes, %d rounds", c->n, c->rounds);
	int r = setup(c, out, err);
	if (r >= 0)
		r = rounds_run(c, out, err);
	teardown(c);
	free(c);
	return r;
}

void pb_cluster_print(json_t *out)
{
	json_t *en = json_object_get(out, "cluster_enforce_ms");
	if (!en)
		return;
	int n = (int)json_integer_value(json_object_get(en, "nodes"));
	printf("\nPolicy create through node 1's API to enforcement on every node: %d nodes (a "
	       "shoald each, etcd, an overlay network),\neach node's receiver probed from the next "
	       "node\n",
	       n);
	printf("%-24s %-7s %7s %9s %9s %9s %12s\n", "CREATE", "NODE", "ROUNDS", "P50 MS", "P99 MS",
	       "MAX MS", "TARGET P99");
	for (int k = 0; k < 2; k++) {
		json_t *d = json_object_get(en, k ? "allow" : "deny");
		json_t *every = json_object_get(d, "every_node");
		double p99 = json_number_value(json_object_get(every, "p99"));
		printf("%-24s %-7s %7d %9.3f %9.3f %9.3f %12s\n",
		       k ? "allow: first answered" : "isolate: first dropped", "every",
		       (int)json_integer_value(json_object_get(every, "rounds")),
		       json_number_value(json_object_get(every, "p50")), p99,
		       json_number_value(json_object_get(every, "max")),
		       p99 <= PB_TARGET_ENFORCE_MS ? "<= 100 ok" : "<= 100 MISSED");
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(d, "per_node"), i, x)
		{
			char node[16];
			snprintf(node, sizeof(node), "node %d",
				 (int)json_integer_value(json_object_get(x, "node")));
			printf("%-24s %-7s %7d %9.3f %9.3f %9.3f\n", "", node,
			       (int)json_integer_value(json_object_get(x, "rounds")),
			       json_number_value(json_object_get(x, "p50")),
			       json_number_value(json_object_get(x, "p99")),
			       json_number_value(json_object_get(x, "max")));
		}
	}
}
