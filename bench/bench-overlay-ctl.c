// SPDX-License-Identifier: Apache-2.0
/* `shoal bench overlay`'s control-plane rounds: the time from an endpoint's
 * record to its FDB and neighbour entries on the other node (rtnetlink
 * monitor), and a killed node's endpoints forgotten. */
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
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <linux/rtnetlink.h>

#include "agent/store/store.h"
#include "bench/bench-cluster-internal.h"
#include "bench/bench-load.h"
#include "bench/bench-overlay-internal.h"
#include "bench/bench-util.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* ---- an endpoint programmed on the other node ---- */

/* Runs the loop until pred holds (0), or timeout (-ETIMEDOUT) or an
 * interrupt (-EINTR). */
static int loop_until(struct bov *b, bool (*pred)(void *b, void *arg), void *arg,
		      int64_t timeout_ns)
{
	return bench_loop_until(b->base, pred, b, arg, timeout_ns, 2000, &bcl_interrupted);
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
		    bov_parse_mac(json_string_value(json_object_get(j, "MAC")) ?: "",
				  b->want_mac) == 0 &&
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
	s->r = bov_ctr_run(s->ctx, s->net, s->name, s->id, sizeof(s->id), &s->err);
	s->t_done = mono_ns();
	atomic_store(&s->done, true);
	return NULL;
}

static bool programmed_cb(void *self, void *arg)
{
	struct bov *b = self;
	struct starter *st = arg;
	if (!atomic_load(&st->done))
		return false;
	if (st->r < 0)
		return true;
	return b->rec_seen && seen_at(b, true, false) && seen_at(b, false, false);
}

static bool forgotten_cb(void *self, void *arg)
{
	struct bov *b = self;
	return seen_at(b, true, true) && seen_at(b, false, true);
}

int bov_phase_programmed(struct bov *b, json_t *out, struct shoal_err *err)
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
			bench_progress(b->quiet,
				       "programmed %zu/%zu: last %.1f ms after its record", k + 1,
				       total, done / 1e6);
		/* gone again before the next, so that each starts from the same
		 * tables */
		b->n_seen = 0;
		bov_ctr_remove(ctx, st.id);
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
		    bov_parse_mac(json_string_value(json_object_get(j, "MAC")) ?: "",
				  d->mac[d->n]) == 0 &&
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

int bov_phase_dead(struct bov *b, json_t *out, struct shoal_err *err)
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
		while (mono_ns() < end && !bcl_interrupted) {
			l.n = 0;
			if ((r = bov_nl_dump(b->ns_path[1], left_cb, &l, err)) < 0)
				break;
			if (l.n >= 2 * d.n)
				break;
			bov_msleep(100);
		}
		if (r < 0)
			break;
		if (l.n < 2 * d.n) {
			r = bcl_interrupted ? shoal_err_set(err, EINTR, "interrupted")
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
		while (!gone && mono_ns() < end && !bcl_interrupted) {
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
			r = bcl_interrupted
				    ? shoal_err_set(err, EINTR, "interrupted")
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
		bench_progress(b->quiet,
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
