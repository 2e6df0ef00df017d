// SPDX-License-Identifier: Apache-2.0
/* `shoal bench overlay`'s data-plane rounds: TCP throughput and HTTP rate
 * container to container across the two nodes, against the same between the
 * node namespaces over the underlay and over a bare kernel VXLAN pair. */
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
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench-cluster-internal.h"
#include "bench/bench-lb-internal.h"
#include "bench/bench-load.h"
#include "bench/bench-overlay-internal.h"
#include "bench/bench-util.h"
#include "lib/cleanup.h"

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
