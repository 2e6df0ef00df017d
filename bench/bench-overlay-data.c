// SPDX-License-Identifier: Apache-2.0
/* `shoal bench overlay`'s data-plane rounds: TCP throughput and HTTP rate
 * container to container across the two nodes, against the same between the
 * node namespaces over the underlay and over a bare kernel VXLAN pair; and
 * HTTP through the routing mesh from the underlay, entering at the node
 * without the backend against the node with it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench-cluster-internal.h"
#include "bench/bench-lb-internal.h"
#include "bench/bench-load.h"
#include "bench/bench-overlay-internal.h"
#include "bench/bench-util.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* ---- TCP throughput ---- */

int bov_tool_pick(struct bov *b, struct shoal_err *err)
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
	for (int attempt = 0; attempt < 50 && !bcl_interrupted; attempt++) {
		_cleanup_free_ char *out = NULL;
		e = (struct shoal_err){0};
		if (bov_run(netns, iperf3 ? iperf : tcp, &out, &e) < 0) {
			/* the server may not listen yet */
			bov_msleep(100);
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
			bov_msleep(100);
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
	if (bcl_interrupted)
		return shoal_err_set(err, EINTR, "interrupted");
	return shoal_err_set(err, e.code ? e.code : EIO, "%s to %s: %s", b->tool, target, e.msg);
}

void bov_servers_stop(struct bov *b)
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
		bov_node_addr(i, local);
		bov_node_addr(1 - i, remote);
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

int bov_phase_throughput(struct bov *b, json_t *out, struct shoal_err *err)
{
	int r;
	if ((r = bare_vxlan_up(b, err)) < 0)
		return r;
	char n2[16];
	bov_node_addr(1, n2);
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
		bench_progress(
			b->quiet,
			"throughput %zu/%zu: overlay %.2f, bare VXLAN %.2f, underlay %.2f Gbit/s",
			i + 1, b->rounds, bps[V_OVERLAY][i] / 1e9, bps[V_BARE][i] / 1e9,
			bps[V_UNDERLAY][i] / 1e9);
	}
	bov_servers_stop(b);
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
	struct in_addr a;
	inet_pton(AF_INET, addr, &a);
	int fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct bench_lb_load l;
	int r = bench_lb_load_in(fd, NULL, 0, a.s_addr, (uint16_t)port, b->conns, b->duration,
				 false, &l);
	close(fd);
	if (r < 0)
		return r;
	if (l.requests == 0)
		return -ECONNREFUSED;
	*ret = l;
	return 0;
}

int bov_phase_http(struct bov *b, json_t *out, struct shoal_err *err)
{
	char httpd[4200], port[16], n2[16], log[600];
	snprintf(httpd, sizeof(httpd), "%s/shoal-bench-httpd", b->self_dir);
	snprintf(port, sizeof(port), "%d", HTTPD_PORT);
	snprintf(log, sizeof(log), "%s/httpd.log", b->procs.tmp);
	bov_node_addr(1, n2);
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
		for (int i = 0; i < 100 && !up && !bcl_interrupted; i++) {
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
				bov_msleep(100);
		}
		if (!up) {
			bov_servers_stop(b);
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
		if (r < 0 || bcl_interrupted) {
			json_decref(ro);
			if (r >= 0)
				r = shoal_err_set(err, EINTR, "interrupted");
			break;
		}
		json_array_append_new(rounds, ro);
		bench_progress(
			b->quiet,
			"HTTP %zu/%zu: overlay %.0f/s (p99 %.0f us), underlay %.0f/s (p99 %.0f us)",
			i + 1, b->rounds, rate[0][i], p99[0][i], rate[1][i], p99[1][i]);
	}
	bov_servers_stop(b);
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

/* ---- the routing mesh ---- */

/* Node i + 1's routing-mesh counters (GET /info's ShoalOverlay.Mesh): flows
 * noted on their backend's node, replies sent back through their entry
 * node. A mesh that is not on is an error saying why. */
static int mesh_counters(struct bov *b, int i, json_int_t *ret_noted, json_int_t *ret_returned,
			 struct shoal_err *err)
{
	json_t *j = NULL;
	int r = bench_api(&b->procs.agents[i].ctx, "GET", "/info", NULL, 200, &j, err);
	if (r < 0)
		return shoal_err_wrap(err, "node %d's /info", i + 1);
	const char *state = cli_json_str(j, "ShoalOverlay.Mesh.State");
	json_t *noted = cli_json_get(j, "ShoalOverlay.Mesh.Noted");
	json_t *returned = cli_json_get(j, "ShoalOverlay.Mesh.Returned");
	if (!state || strcmp(state, "on") != 0 || !json_is_integer(noted) ||
	    !json_is_integer(returned)) {
		r = shoal_err_set(
			err, ENOTSUP,
			"node %d's routing mesh is not on (ShoalOverlay.Mesh.State \"%s\": "
			"%s)",
			i + 1, state ?: "",
			cli_json_str(j, "ShoalOverlay.Mesh.Reason") ?: "no counters");
		json_decref(j);
		return r;
	}
	*ret_noted = json_integer_value(noted);
	*ret_returned = json_integer_value(returned);
	json_decref(j);
	return 0;
}

/* One replica of the bench image on the network, placed on node 2, its port
 * 80 published in ingress mode (on every node) at MESH_PORT. Node 2's id in
 * ret_node. */
static int mesh_service_create(struct bov *b, char *ret_node, size_t size, struct shoal_err *err)
{
	json_t *info = NULL;
	int r = bench_api(&b->procs.agents[1].ctx, "GET", "/info", NULL, 200, &info, err);
	if (r < 0)
		return shoal_err_wrap(err, "node 2's /info");
	const char *id = cli_json_str(info, "Swarm.NodeID");
	if (!id || !*id) {
		json_decref(info);
		return shoal_err_set(err, EIO, "node 2's /info names no Swarm.NodeID");
	}
	char constraint[160];
	snprintf(constraint, sizeof(constraint), "node.id==%s", id);
	snprintf(ret_node, size, "%s", id);
	json_decref(info);
	snprintf(b->mesh_name, sizeof(b->mesh_name), "bov-%d-mesh", (int)getpid());
	json_t *spec =
		json_pack("{s:s, s:{s:{s:s, s:I}, s:{s:[s]}, s:[{s:s}]}, s:{s:{s:i}}, "
			  "s:{s:[{s:s, s:i, s:i, s:s}]}}",
			  "Name", b->mesh_name, "TaskTemplate", "ContainerSpec", "Image", BOV_IMAGE,
			  "StopGracePeriod", (json_int_t)1000000000, "Placement", "Constraints",
			  constraint, "Networks", "Target", b->net_name, "Mode", "Replicated",
			  "Replicas", 1, "EndpointSpec", "Ports", "Protocol", "tcp", "TargetPort",
			  80, "PublishedPort", MESH_PORT, "PublishMode", "ingress");
	json_t *resp = NULL;
	r = bench_api(&b->procs.agents[0].ctx, "POST", "/services/create", spec, 201, &resp, err);
	json_decref(spec);
	if (r < 0)
		return shoal_err_wrap(err, "creating service %s", b->mesh_name);
	snprintf(b->mesh_id, sizeof(b->mesh_id), "%s",
		 json_string_value(json_object_get(resp, "ID")) ?: b->mesh_name);
	json_decref(resp);
	return 0;
}

/* Waits for the service's task to run on node 2: its container's id and
 * network namespace. */
static int mesh_task_wait(struct bov *b, const char *node, char *ret_ctr, size_t ctr_size,
			  char *ret_sandbox, size_t sandbox_size, struct shoal_err *err)
{
	char q[256], path[1024];
	snprintf(q, sizeof(q), "{\"service\":{\"%s\":true}}", b->mesh_id);
	_cleanup_free_ char *eq = cli_escape(q);
	if (!eq)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "/tasks?filters=%s", eq);
	char cid[128] = "", last[512] = "no task";
	int64_t t0 = mono_ns();
	while (!cid[0] && mono_ns() - t0 < WAIT_NS && !bcl_interrupted) {
		json_t *tasks = NULL;
		struct shoal_err e = {0};
		if (bench_api(&b->procs.agents[0].ctx, "GET", path, NULL, 200, &tasks, &e) == 0) {
			size_t i;
			json_t *t;
			json_array_foreach(tasks, i, t)
			{
				const char *st = cli_json_str(t, "Status.State") ?: "";
				const char *on = cli_json_str(t, "NodeID") ?: "";
				const char *why = cli_json_str(t, "Status.Err");
				snprintf(last, sizeof(last), "a task %s on node %.12s%s%s", st, on,
					 why ? ": " : "", why ?: "");
				if (strcmp(st, "running") == 0 && strcmp(on, node) == 0)
					snprintf(cid, sizeof(cid), "%s",
						 cli_json_str(t, "Status.ContainerStatus."
								 "ContainerID")
							 ?: "");
			}
		}
		json_decref(tasks);
		if (!cid[0])
			bov_msleep(100);
	}
	if (bcl_interrupted)
		return shoal_err_set(err, EINTR, "interrupted");
	if (!cid[0])
		return shoal_err_set(err, ETIMEDOUT,
				     "service %s: no task running on node 2 (%.12s) after %lld s "
				     "(%s)",
				     b->mesh_name, node, WAIT_NS / 1000000000, last);
	snprintf(path, sizeof(path), "/containers/%s/json", cid);
	json_t *j = NULL;
	int r = bench_api(&b->procs.agents[1].ctx, "GET", path, NULL, 200, &j, err);
	if (r < 0)
		return shoal_err_wrap(err, "service %s's container on node 2", b->mesh_name);
	snprintf(ret_sandbox, sandbox_size, "%s",
		 cli_json_str(j, "NetworkSettings.SandboxKey") ?: "");
	json_decref(j);
	if (!ret_sandbox[0])
		return shoal_err_set(err, EIO,
				     "service %s's container %.12s on node 2 has no network "
				     "namespace (SandboxKey)",
				     b->mesh_name, cid);
	snprintf(ret_ctr, ctr_size, "%s", cid);
	return 0;
}

/* A GET to addr:MESH_PORT from the bench's namespace (the underlay, not a
 * node), answered 200: the connection, still open, in *ret_fd and its own
 * address in *ret_self. -errno. */
static int mesh_get(const char *addr, struct sockaddr_in *ret_self, int *ret_fd)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(MESH_PORT)};
	if (inet_pton(AF_INET, addr, &to.sin_addr) != 1)
		return -EINVAL;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* connect() and recv() bounded by a second each */
	struct timeval tv = {1, 0};
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	static const char req[] = "GET / HTTP/1.1\r\nHost: shoal-bench\r\n\r\n";
	ssize_t n = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(req) - 1)
		return n < 0 ? -errno : -EIO;
	char buf[256];
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return n < 0 ? -errno : -ECONNRESET;
	buf[n] = '\0';
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
		return -EPROTO;
	socklen_t len = sizeof(*ret_self);
	if (getsockname(fd, (struct sockaddr *)ret_self, &len) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int mesh_wait_answer(const char *addr, struct shoal_err *err)
{
	int r = -ETIMEDOUT;
	/* the agents attach to the port and program its backend in their
	 * own time */
	for (int64_t t0 = mono_ns(); mono_ns() - t0 < WAIT_NS && !bcl_interrupted;) {
		struct sockaddr_in self;
		int fd = -EBADF;
		if ((r = mesh_get(addr, &self, &fd)) == 0) {
			close(fd);
			return 0;
		}
		bov_msleep(100);
	}
	if (bcl_interrupted)
		return shoal_err_set(err, EINTR, "interrupted");
	return shoal_err_errno(err, -r, "the routing mesh: %s:%d does not answer within %lld s",
			       addr, MESH_PORT, WAIT_NS / 1000000000);
}

/* A request to addr, its connection held open while the backend's
 * namespace lists its connections: the backend must see the client's own
 * address and port (in ret_client), not a node's. */
static int mesh_peer_check(const char *sandbox, const char *addr, char *ret_client, size_t size,
			   struct shoal_err *err)
{
	struct sockaddr_in self;
	_cleanup_close_ int fd = -EBADF;
	int r = mesh_get(addr, &self, &fd);
	if (r < 0)
		return shoal_err_errno(err, -r, "a request to %s:%d", addr, MESH_PORT);
	char ip[INET_ADDRSTRLEN], want[INET_ADDRSTRLEN + 8];
	inet_ntop(AF_INET, &self.sin_addr, ip, sizeof(ip));
	snprintf(want, sizeof(want), "%s:%u", ip, ntohs(self.sin_port));
	char *const argv[] = {"ss", "-Htn", "state", "established", NULL};
	_cleanup_free_ char *out = NULL;
	if ((r = bov_run(sandbox, argv, &out, err)) < 0)
		return shoal_err_wrap(err, "listing the connections of the backend on node 2");
	bool seen = false;
	for (const char *line = out; line && *line && !seen;) {
		char local[64], peer[64];
		/* Recv-Q Send-Q Local:Port Peer:Port */
		seen = sscanf(line, "%*s %*s %63s %63s", local, peer) == 2 &&
		       strcmp(peer, want) == 0 && strstr(local, ":80") &&
		       strcmp(strstr(local, ":80"), ":80") == 0;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!seen)
		return shoal_err_set(err, EIO,
				     "a request to %s:%d from %s: the backend on node 2 has no "
				     "connection from that address and port (its connections: "
				     "%.400s)",
				     addr, MESH_PORT, want, out[0] ? out : "none");
	snprintf(ret_client, size, "%s", ip);
	return 0;
}

void bov_mesh_remove(struct bov *b)
{
	if (!b->mesh_id[0])
		return;
	char path[200];
	snprintf(path, sizeof(path), "/services/%s", b->mesh_id);
	for (int i = 0; i < BOV_NODES; i++) {
		struct shoal_err e = {0};
		if (b->procs.agents[i].pid > 0 &&
		    bench_api(&b->procs.agents[i].ctx, "DELETE", path, NULL, 200, NULL, &e) == 0)
			break;
	}
	b->mesh_id[0] = '\0';
}

/* The service removed, its container gone from node 2: the phases after
 * this one count node 2's endpoints. */
static int mesh_service_remove(struct bov *b, const char *ctr, struct shoal_err *err)
{
	bov_mesh_remove(b);
	for (int64_t t0 = mono_ns(); mono_ns() - t0 < WAIT_NS && !bcl_interrupted;) {
		json_t *j = NULL;
		struct shoal_err e = {0};
		bool there = true;
		if (bench_api(&b->procs.agents[1].ctx, "GET", "/containers/json?all=1", NULL, 200,
			      &j, &e) == 0) {
			there = false;
			size_t k;
			json_t *c;
			json_array_foreach(j, k, c) there =
				there ||
				strcmp(json_string_value(json_object_get(c, "Id")) ?: "", ctr) == 0;
		}
		json_decref(j);
		if (!there)
			return 0;
		bov_msleep(100);
	}
	if (bcl_interrupted)
		return shoal_err_set(err, EINTR, "interrupted");
	return shoal_err_set(err, ETIMEDOUT,
			     "service %s removed, its container %.12s still on node 2 after %lld s",
			     b->mesh_name, ctr, WAIT_NS / 1000000000);
}

enum { M_MESH, M_LOCAL, M_N };
static const char *const mesh_key[M_N] = {"mesh", "local"};

int bov_phase_mesh(struct bov *b, json_t *out, struct shoal_err *err)
{
	json_int_t noted = 0, returned = 0;
	int r;
	for (int i = 0; i < BOV_NODES; i++)
		if ((r = mesh_counters(b, i, &noted, &returned, err)) < 0)
			return r;
	char node2[80], ctr[128], sandbox[512];
	if ((r = mesh_service_create(b, node2, sizeof(node2), err)) < 0 ||
	    (r = mesh_task_wait(b, node2, ctr, sizeof(ctr), sandbox, sizeof(sandbox), err)) < 0)
		return r;
	/* entering at node 1, whose agent runs no task of it; at node 2, where
	 * the backend is */
	char addr[M_N][16], client[M_N][INET_ADDRSTRLEN];
	bov_node_addr(0, addr[M_MESH]);
	bov_node_addr(1, addr[M_LOCAL]);
	for (int k = 0; k < M_N; k++)
		if ((r = mesh_wait_answer(addr[k], err)) < 0 ||
		    (r = mesh_peer_check(sandbox, addr[k], client[k], sizeof(client[k]), err)) < 0)
			return shoal_err_wrap(err, "the routing mesh, %s", mesh_key[k]);
	bench_progress(b->quiet,
		       "routing mesh: service %s's task on node 2 answers at port %d of both "
		       "nodes and sees the client's own address (%s)",
		       b->mesh_name, MESH_PORT, client[M_MESH]);
	double rate[M_N][BOV_MAX_ROUNDS], p50[M_N][BOV_MAX_ROUNDS], p99[M_N][BOV_MAX_ROUNDS];
	json_int_t d_noted[M_N] = {0}, d_returned[M_N] = {0}, errors[M_N] = {0};
	json_t *rounds = json_array();
	for (size_t i = 0; i < b->rounds && r >= 0; i++) {
		json_t *ro = json_object();
		for (int k = 0; k < M_N && r >= 0; k++) {
			json_int_t n0, r0, n1, r1;
			struct bench_lb_load l = {0};
			if ((r = mesh_counters(b, 1, &n0, &r0, err)) < 0)
				break;
			if ((r = http_load(b, b->ns_path[0], addr[k], MESH_PORT, &l)) < 0) {
				r = shoal_err_errno(err, -r, "the routing mesh, %s: %s:%d",
						    mesh_key[k], addr[k], MESH_PORT);
				break;
			}
			if ((r = mesh_counters(b, 1, &n1, &r1, err)) < 0)
				break;
			rate[k][i] = l.per_sec;
			p50[k][i] = (double)l.p50_ns / 1e3;
			p99[k][i] = (double)l.p99_ns / 1e3;
			d_noted[k] += n1 - n0;
			d_returned[k] += r1 - r0;
			errors[k] += (json_int_t)l.errors;
			json_object_set_new(ro, mesh_key[k],
					    json_pack("{s:f, s:f, s:f, s:I, s:I, s:I}", "per_sec",
						      l.per_sec, "p50_us", p50[k][i], "p99_us",
						      p99[k][i], "errors", (json_int_t)l.errors,
						      "noted_flows", n1 - n0, "returned_packets",
						      r1 - r0));
		}
		if (r >= 0 && bcl_interrupted)
			r = shoal_err_set(err, EINTR, "interrupted");
		if (r < 0) {
			json_decref(ro);
			break;
		}
		json_array_append_new(rounds, ro);
		bench_progress(b->quiet,
			       "routing mesh %zu/%zu: via node 1 %.0f/s (p99 %.0f us), at node 2 "
			       "%.0f/s (p99 %.0f us)",
			       i + 1, b->rounds, rate[M_MESH][i], p99[M_MESH][i], rate[M_LOCAL][i],
			       p99[M_LOCAL][i]);
	}
	if (r < 0) {
		json_decref(rounds);
		return r;
	}
	if ((r = mesh_service_remove(b, ctr, err)) < 0) {
		json_decref(rounds);
		return r;
	}
	/* a node-local path (a proxy, a NAT on node 1 to node 2's address)
	 * would have answered too: only the backend's node sending the replies
	 * back through node 1 shows the mesh carried them */
	if (d_returned[M_MESH] <= 0) {
		json_decref(rounds);
		return shoal_err_set(err, EIO,
				     "the routing mesh: node 2 sent no reply back through node 1 "
				     "during the requests entering there "
				     "(ShoalOverlay.Mesh.Returned did not move)");
	}
	json_t *m = json_object();
	double med_rate[M_N], med_p99[M_N];
	for (int k = 0; k < M_N; k++) {
		double mn, mx;
		char at[32];
		snprintf(at, sizeof(at), "%s:%d", addr[k], MESH_PORT);
		med_rate[k] = median(rate[k], b->rounds, &mn, &mx);
		med_p99[k] = median(p99[k], b->rounds, NULL, NULL);
		json_object_set_new(m, mesh_key[k],
				    json_pack("{s:s, s:f, s:f, s:f, s:{s:f, s:f}, s:I, s:I, s:I}",
					      "address", at, "per_sec", med_rate[k], "min_per_sec",
					      mn, "max_per_sec", mx, "latency_us", "p50",
					      median(p50[k], b->rounds, NULL, NULL), "p99",
					      med_p99[k], "errors", errors[k], "noted_flows",
					      d_noted[k], "returned_packets", d_returned[k]));
	}
	double rr[BOV_MAX_ROUNDS], rp[BOV_MAX_ROUNDS], rrmin, rrmax;
	for (size_t i = 0; i < b->rounds; i++) {
		rr[i] = rate[M_MESH][i] / rate[M_LOCAL][i];
		rp[i] = p99[M_MESH][i] / p99[M_LOCAL][i];
	}
	json_object_set_new(m, "ratio_mesh_to_local",
			    json_real(median(rr, b->rounds, &rrmin, &rrmax)));
	json_object_set_new(m, "ratio_mesh_to_local_min", json_real(rrmin));
	json_object_set_new(m, "ratio_mesh_to_local_max", json_real(rrmax));
	json_object_set_new(m, "p99_mesh_over_local", json_real(median(rp, b->rounds, NULL, NULL)));
	json_object_set_new(m, "connections", json_integer(b->conns));
	json_object_set_new(m, "published_port", json_integer(MESH_PORT));
	json_object_set_new(m, "client_address", json_string(client[M_MESH]));
	json_object_set_new(m, "backend_saw_client_address", json_true());
	json_object_set_new(
		m, "how",
		json_string("a service of one task of shoal-bench-httpd (the bench image) on the "
			    "overlay network, placed on node 2, its port 80 published in ingress "
			    "mode; keep-alive GETs, closed loop, from the bench's namespace on the "
			    "underlay (not a node) to node 1's address (mesh: entering at node 1, "
			    "the backend on node 2, the replies back through node 1) and to node "
			    "2's (local: the backend on the entry node); before the rounds, one "
			    "request each way with its connection listed in the task's namespace "
			    "(ss), its peer the client's own address and port; noted_flows and "
			    "returned_packets: node 2's ShoalOverlay.Mesh counters over each "
			    "path's runs"));
	json_object_set_new(m, "rounds", rounds);
	json_object_set_new(out, "routing_mesh", m);
	return 0;
}
