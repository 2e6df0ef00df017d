// SPDX-License-Identifier: Apache-2.0
/* `shoal bench cluster`: the control plane of a cluster on one machine. One
 * etcd; N simulated nodes in this process (bench-cluster-sim.c); K real
 * agents, managers, as children in a network namespace this bench made; a
 * replicated service whose tasks the real leader orchestrates and places over
 * the simulated nodes, which run them. Measured: create to every task running,
 * leader failover (and a scale issued during it), a node's death to its tasks
 * running elsewhere, and etcd's load when nothing changes. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "agent/overlay-agent.h"
#include "agent/store/store.h"
#include "bench/bench-cluster-internal.h"
#include "bench/bench-util.h"
#include "bench/bench-load.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/task.h"

/* The targets. */
#define TARGET_CONVERGE_S 5.0  /* 1,000 tasks on 1,000 nodes */
#define TARGET_REPLACE_S  10.0 /* a dead node's tasks running elsewhere */
#define TARGET_NODES	  10000
/* How long a phase may take before the bench gives up on it. */
#define PHASE_TIMEOUT_NS (180LL * 1000000000)

volatile sig_atomic_t bcl_interrupted;

/* A task as the observer's watch last saw it. */
struct otask {
	char node[65];
	char svc[72];
	enum task_state state;
	bool desired_running;
	bool live;
};

struct bench {
	/* options */
	size_t n_nodes, n_tasks, n_agents, rounds, threads, execs;
	int ttl_s, idle_s;
	bool json, quiet, per_node_watch;
	const char *out_path, *endpoints;
	/* state */
	struct bcl_procs procs;
	struct bcl_sim sim;
	struct bench_netns ns;
	struct event_base *base;
	struct store *store;
	struct store_watch *tw, *lw;
	int64_t last_death; /* mono_ns() of the last node or agent killed */
	json_t *tindex;	    /* task id -> index in tasks */
	struct otask *tasks;
	size_t n_otasks, cap_otasks;
	json_t *sim_index; /* node id -> simulated node */
	char leader[128];
	int watch_errors;
	char svc_id[72], svc_name[64];
	const char *fail_phase; /* the phase in which the simulated nodes first failed */
	size_t replicas;
};

static void on_signal(int sig)
{
	bcl_interrupted = 1;
}

/* ---- the observer: every task and the leader, from watches of its own ---- */

static struct otask *otask_get(struct bench *b, const char *id, bool create)
{
	json_t *ix = json_object_get(b->tindex, id);
	if (ix)
		return &b->tasks[json_integer_value(ix)];
	if (!create)
		return NULL;
	if (b->n_otasks == b->cap_otasks) {
		size_t cap = b->cap_otasks ? b->cap_otasks * 2 : 1024;
		struct otask *t = realloc(b->tasks, cap * sizeof(*t));
		if (!t)
			return NULL;
		b->tasks = t;
		b->cap_otasks = cap;
	}
	struct otask *t = &b->tasks[b->n_otasks];
	memset(t, 0, sizeof(*t));
	json_object_set_new(b->tindex, id, json_integer((json_int_t)b->n_otasks++));
	return t;
}

static void tasks_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
		     void *userdata)
{
	struct bench *b = userdata;
	if (err) {
		b->watch_errors++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *id = ev[i].kv.key + strlen(BCL_TASKS);
		if (ev[i].type == STORE_EVENT_DELETE) {
			struct otask *t = otask_get(b, id, false);
			if (t)
				t->live = false;
			continue;
		}
		json_t *rec = json_loadb(ev[i].kv.value, ev[i].kv.value_len, 0, NULL);
		struct otask *t = rec ? otask_get(b, id, true) : NULL;
		if (t) {
			t->live = true;
			snprintf(t->node, sizeof(t->node), "%s",
				 json_string_value(json_object_get(rec, "NodeID")) ?: "");
			snprintf(t->svc, sizeof(t->svc), "%s",
				 json_string_value(json_object_get(rec, "ServiceID")) ?: "");
			t->desired_running =
				strcmp(json_string_value(json_object_get(rec, "DesiredState"))
					       ?: "",
				       "running") == 0;
			if (task_state_from_name(json_string_value(json_object_get(
							 json_object_get(rec, "Status"), "State"))
							 ?: "",
						 &t->state) < 0)
				t->state = TASK_NEW;
		}
		json_decref(rec);
	}
}

static void leader_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
		      void *userdata)
{
	struct bench *b = userdata;
	if (err) {
		b->watch_errors++;
		return;
	}
	const struct store_event *last = &ev[n - 1];
	snprintf(b->leader, sizeof(b->leader), "%s",
		 last->type == STORE_EVENT_PUT ? last->kv.value : "");
}

static int observer_start(struct bench *b, struct shoal_err *err)
{
	b->base = event_base_new();
	b->tindex = json_object();
	if (!b->base || !b->tindex)
		return shoal_err_set(err, ENOMEM, "out of memory");
	struct store_options o = {
		.backend = "etcd", .endpoints = b->procs.endpoints, .base = b->base};
	int r = store_open(&o, &b->store, err);
	if (r < 0)
		return shoal_err_wrap(err, "opening the store at %s", b->procs.endpoints);
	struct store_kvs *kvs = NULL;
	if ((r = store_get(b->store, "/shoal/", true, 1, &kvs, err)) < 0)
		return shoal_err_wrap(err, "reading the store at %s", b->procs.endpoints);
	size_t n = kvs->n;
	int64_t rev = kvs->revision;
	store_kvs_free(kvs);
	if (n)
		return shoal_err_set(err, EEXIST,
				     "the store at %s holds a cluster already (keys under "
				     "/shoal/): give an empty etcd",
				     b->procs.endpoints);
	if ((r = store_watch(b->store, BCL_TASKS, true, rev + 1, tasks_cb, b, &b->tw, err)) < 0 ||
	    (r = store_watch(b->store, BCL_LEADER, false, rev + 1, leader_cb, b, &b->lw, err)) < 0)
		return shoal_err_wrap(err, "watching the store");
	return 0;
}

/* Runs the observer's loop until pred holds (0), or the timeout (-ETIMEDOUT)
 * or an interrupt (-EINTR). */
static int wait_for(struct bench *b, bool (*pred)(void *b, void *arg), void *arg,
		    int64_t timeout_ns)
{
	return bench_loop_until(b->base, pred, b, arg, timeout_ns, 5000, &bcl_interrupted);
}

static void idle(struct bench *b, int64_t ns)
{
	bench_loop_until(b->base, NULL, NULL, NULL, ns, 20000, &bcl_interrupted);
}

static bool node_dead(struct bench *b, const char *id)
{
	json_t *ix = json_object_get(b->sim_index, id);
	return ix && atomic_load(&b->sim.nodes[json_integer_value(ix)].dead);
}

/* Tasks of the service meant to run that run (or at least have a node) on a
 * node still alive. */
static size_t count_tasks(struct bench *b, bool placed_only)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n_otasks; i++) {
		struct otask *t = &b->tasks[i];
		if (!t->live || !t->desired_running || strcmp(t->svc, b->svc_id) != 0)
			continue;
		bool ok = placed_only
				  ? t->state >= TASK_ASSIGNED && !task_state_is_terminal(t->state)
				  : t->state == TASK_RUNNING;
		if (ok && !node_dead(b, t->node))
			n++;
	}
	return n;
}

struct want {
	size_t n;
	bool placed;
	int64_t first;	   /* mono_ns() of the first running task seen */
	int64_t placed_at; /* of every task placed (counting running ones) */
};

static bool enough_cb(void *self, void *arg)
{
	struct bench *b = self;
	struct want *w = arg;
	size_t n = count_tasks(b, w->placed);
	if (n && !w->first)
		w->first = mono_ns();
	if (!w->placed_at && count_tasks(b, true) >= w->n)
		w->placed_at = mono_ns();
	return n >= w->n;
}

static bool svc_gone_cb(void *self, void *arg)
{
	struct bench *b = self;
	const char *sid = arg;
	for (size_t i = 0; i < b->n_otasks; i++)
		if (b->tasks[i].live && strcmp(b->tasks[i].svc, sid) == 0)
			return false;
	return true;
}

static bool leader_is_cb(void *self, void *arg)
{
	struct bench *b = self;
	const char *id = arg;
	return id ? strcmp(b->leader, id) == 0 : b->leader[0] != '\0';
}

static bool leader_not_cb(void *self, void *arg)
{
	struct bench *b = self;
	return b->leader[0] && strcmp(b->leader, arg) != 0;
}

static int agent_of(struct bench *b, const char *node_id)
{
	for (size_t i = 0; i < b->n_agents; i++)
		if (strcmp(b->procs.agents[i].node_id, node_id) == 0)
			return (int)i;
	return -1;
}

/* An agent that is up (the leader if it is, else the first alive). */
static struct cli_ctx *some_agent(struct bench *b, int not )
{
	for (size_t i = 0; i < b->n_agents; i++)
		if ((int)i != not &&b->procs.agents[i].pid > 0)
			return &b->procs.agents[i].ctx;
	return NULL;
}

/* ---- the phases ---- */

static void phase_done(struct bench *b, const char *name)
{
	if (!b->fail_phase && atomic_load(&b->sim.stats.errors))
		b->fail_phase = name;
}

static int create_service(struct bench *b, size_t round, struct shoal_err *err)
{
	snprintf(b->svc_name, sizeof(b->svc_name), "bench-cluster-%d-%zu", (int)getpid(), round);
	/* the simulated nodes are the workers: the agents, managers, run nothing */
	json_t *spec = json_pack("{s:s, s:{s:{s:s, s:[s,s]}, s:{s:[s]}}, s:{s:{s:I}}}", "Name",
				 b->svc_name, "TaskTemplate", "ContainerSpec", "Image", "busybox",
				 "Command", "sleep", "3600", "Placement", "Constraints",
				 "node.role==worker", "Mode", "Replicated", "Replicas",
				 (json_int_t)b->n_tasks);
	json_t *resp = NULL;
	int r = bench_api(some_agent(b, -1), "POST", "/services/create", spec, 201, &resp, err);
	json_decref(spec);
	if (r < 0)
		return r;
	snprintf(b->svc_id, sizeof(b->svc_id), "%s",
		 json_string_value(json_object_get(resp, "ID")) ?: "");
	json_decref(resp);
	b->replicas = b->n_tasks;
	return 0;
}

static int phase_create(struct bench *b, json_t *out, struct shoal_err *err)
{
	struct bench_samples conv = {0}, first = {0}, removed = {0}, placed = {0};
	json_t *rounds = json_array();
	int r = 0;
	for (size_t i = 0; i < b->rounds && r >= 0; i++) {
		struct want w = {.n = b->n_tasks};
		int64_t t0 = mono_ns();
		if ((r = create_service(b, i, err)) < 0)
			break;
		r = wait_for(b, enough_cb, &w, PHASE_TIMEOUT_NS);
		int64_t t1 = mono_ns();
		if (r < 0) {
			shoal_err_set(err, -r, "create: %zu of %zu tasks running after %.0f s",
				      count_tasks(b, false), b->n_tasks, (t1 - t0) / 1e9);
			break;
		}
		bench_samples_add(&conv, t1 - t0);
		bench_samples_add(&first, w.first - t0);
		bench_samples_add(&placed, (w.placed_at ? w.placed_at : t1) - t0);
		json_t *ro = json_pack("{s:f, s:f, s:f}", "converged_s", (t1 - t0) / 1e9,
				       "first_running_s", (w.first - t0) / 1e9, "all_placed_s",
				       ((w.placed_at ? w.placed_at : t1) - t0) / 1e9);
		bench_progress(
			b->quiet,
			"create %zu/%zu: %zu tasks running on %zu nodes in %.3f s (first running "
			"%.3f s, all placed %.3f s)",
			i + 1, b->rounds, b->n_tasks, b->n_nodes, (t1 - t0) / 1e9,
			(w.first - t0) / 1e9, ((w.placed_at ? w.placed_at : t1) - t0) / 1e9);
		if (i + 1 < b->rounds) {
			/* removal, timed too, so that every round starts empty */
			char path[128];
			snprintf(path, sizeof(path), "/services/%s", b->svc_id);
			int64_t t2 = mono_ns();
			if ((r = bench_api(some_agent(b, -1), "DELETE", path, NULL, 200, NULL,
					   err)) < 0 &&
			    (r = bench_api(some_agent(b, -1), "DELETE", path, NULL, 204, NULL,
					   err)) < 0) {
				json_decref(ro);
				break;
			}
			if ((r = wait_for(b, svc_gone_cb, b->svc_id, PHASE_TIMEOUT_NS)) < 0) {
				shoal_err_set(err, -r, "remove: the service's tasks stayed");
				json_decref(ro);
				break;
			}
			bench_samples_add(&removed, mono_ns() - t2);
			json_object_set_new(ro, "removed_s", json_real((mono_ns() - t2) / 1e9));
		}
		json_array_append_new(rounds, ro);
	}
	json_t *c = json_object();
	json_object_set_new(c, "tasks", json_integer((json_int_t)b->n_tasks));
	json_object_set_new(c, "nodes", json_integer((json_int_t)b->n_nodes));
	if (conv.n) {
		json_object_set_new(c, "converged", bench_summary(&conv));
		json_object_set_new(c, "first_running", bench_summary(&first));
		json_object_set_new(c, "all_placed", bench_summary(&placed));
		double med = bench_quantile(&conv, 0.5) / 1e9;
		json_object_set_new(c, "tasks_per_s", json_real(b->n_tasks / med));
		json_object_set_new(c, "target", json_string("1,000 tasks on 1,000 nodes <= 5 s"));
		if (b->n_nodes >= 1000 && b->n_tasks >= 1000)
			json_object_set_new(c, "target_met",
					    json_boolean(med <= TARGET_CONVERGE_S));
	}
	if (removed.n)
		json_object_set_new(c, "removed", bench_summary(&removed));
	json_object_set_new(c, "rounds", rounds);
	json_object_set_new(out, "create", c);
	bench_samples_free(&conv);
	bench_samples_free(&first);
	bench_samples_free(&removed);
	bench_samples_free(&placed);
	return r;
}

/* How the running tasks of the service sit on the simulated nodes. */
static void spread(struct bench *b, json_t *out)
{
	size_t *per = calloc(b->n_nodes, sizeof(*per)), on_agents = 0;
	if (!per)
		return;
	for (size_t i = 0; i < b->n_otasks; i++) {
		struct otask *t = &b->tasks[i];
		if (!t->live || !t->desired_running || t->state != TASK_RUNNING ||
		    strcmp(t->svc, b->svc_id) != 0)
			continue;
		json_t *ix = json_object_get(b->sim_index, t->node);
		if (ix)
			per[json_integer_value(ix)]++;
		else
			on_agents++;
	}
	size_t used = 0, mn = SIZE_MAX, mx = 0, total = 0;
	for (size_t i = 0; i < b->n_nodes; i++) {
		if (atomic_load(&b->sim.nodes[i].dead))
			continue;
		used += per[i] > 0;
		mn = per[i] < mn ? per[i] : mn;
		mx = per[i] > mx ? per[i] : mx;
		total += per[i];
	}
	json_object_set_new(out, "spread",
			    json_pack("{s:I, s:I, s:I, s:I, s:I}", "running_on_simulated_nodes",
				      (json_int_t)total, "running_on_agents", (json_int_t)on_agents,
				      "nodes_used", (json_int_t)used, "min_per_node",
				      (json_int_t)(mn == SIZE_MAX ? 0 : mn), "max_per_node",
				      (json_int_t)mx));
	free(per);
}

static int phase_node_death(struct bench *b, json_t *out, struct shoal_err *err)
{
	struct bench_samples s = {0};
	json_t *rounds = json_array();
	int r = 0;
	for (size_t round = 0; round < b->rounds && r >= 0; round++) {
		/* the live node running most of the service */
		size_t best = SIZE_MAX, most = 0;
		size_t *per = calloc(b->n_nodes, sizeof(*per));
		if (!per)
			return shoal_err_set(err, ENOMEM, "out of memory");
		for (size_t i = 0; i < b->n_otasks; i++) {
			struct otask *t = &b->tasks[i];
			json_t *ix = json_object_get(b->sim_index, t->node);
			if (t->live && t->desired_running && t->state == TASK_RUNNING && ix &&
			    strcmp(t->svc, b->svc_id) == 0)
				per[json_integer_value(ix)]++;
		}
		for (size_t i = 0; i < b->n_nodes; i++)
			if (!atomic_load(&b->sim.nodes[i].dead) && per[i] > most) {
				most = per[i];
				best = i;
			}
		free(per);
		if (best == SIZE_MAX) {
			r = shoal_err_set(err, ENOENT, "node death: no node runs a task");
			break;
		}
		int64_t t0 = 0;
		if ((r = bcl_sim_kill(&b->sim, best, &t0, err)) < 0)
			break;
		b->last_death = t0;
		struct want w = {.n = b->replicas};
		if ((r = wait_for(b, enough_cb, &w, PHASE_TIMEOUT_NS)) < 0) {
			shoal_err_set(err, -r,
				      "node death: %zu of %zu tasks running %.0f s after %s died",
				      count_tasks(b, false), b->replicas, (mono_ns() - t0) / 1e9,
				      b->sim.nodes[best].hostname);
			break;
		}
		int64_t t1 = mono_ns();
		bench_samples_add(&s, t1 - t0);
		json_array_append_new(rounds, json_pack("{s:s, s:I, s:f}", "node",
							b->sim.nodes[best].hostname, "tasks_moved",
							(json_int_t)most, "replaced_running_s",
							(t1 - t0) / 1e9));
		bench_progress(
			b->quiet, "node death %zu/%zu: %zu tasks of %s running elsewhere in %.3f s",
			round + 1, b->rounds, most, b->sim.nodes[best].hostname, (t1 - t0) / 1e9);
	}
	json_t *d = json_object();
	if (s.n) {
		json_object_set_new(d, "replaced_running", bench_summary(&s));
		json_object_set_new(d, "target", json_string("<= 10 s"));
		json_object_set_new(
			d, "target_met",
			json_boolean(bench_quantile(&s, 1.0) / 1e9 <= TARGET_REPLACE_S));
	}
	json_object_set_new(d, "how",
			    json_string("the node's lease revoked (its liveness key "
					"goes with it); timed until every task of the "
					"service runs on a live node"));
	json_object_set_new(d, "rounds", rounds);
	json_object_set_new(out, "node_death", d);
	bench_samples_free(&s);
	return r;
}

/* Scales the service by step through agent via's API. */
static int scale(struct bench *b, struct cli_ctx *via, size_t replicas, struct shoal_err *err)
{
	char path[160];
	snprintf(path, sizeof(path), "/services/%s", b->svc_id);
	json_t *svc = NULL;
	int r = bench_api(via, "GET", path, NULL, 200, &svc, err);
	if (r < 0)
		return r;
	json_int_t ver =
		json_integer_value(json_object_get(json_object_get(svc, "Version"), "Index"));
	json_t *spec = json_object_get(svc, "Spec");
	json_t *rep = json_object_get(json_object_get(spec, "Mode"), "Replicated");
	json_object_set_new(rep, "Replicas", json_integer((json_int_t)replicas));
	snprintf(path, sizeof(path), "/services/%s/update?version=%lld", b->svc_id, (long long)ver);
	r = bench_api(via, "POST", path, spec, 200, NULL, err);
	json_decref(svc);
	if (r >= 0)
		b->replicas = replicas;
	return r;
}

static int phase_failover(struct bench *b, json_t *out, struct shoal_err *err)
{
	struct bench_samples lead = {0}, placed = {0}, running = {0};
	json_t *rounds = json_array();
	size_t step = b->n_tasks / 10 ? b->n_tasks / 10 : 1;
	int r = 0;
	for (size_t round = 0; round < b->rounds && r >= 0; round++) {
		if ((r = wait_for(b, leader_is_cb, NULL, PHASE_TIMEOUT_NS)) < 0) {
			shoal_err_set(err, -r, "failover: no leader");
			break;
		}
		char old[128];
		snprintf(old, sizeof(old), "%s", b->leader);
		int ai = agent_of(b, old);
		if (ai < 0) {
			r = shoal_err_set(err, ESRCH, "failover: the leader %.12s is no agent",
					  old);
			break;
		}
		int64_t t0 = mono_ns();
		bcl_agent_kill9(&b->procs, (size_t)ai);
		b->last_death = t0;
		/* a scale issued while the cluster has no leader */
		if ((r = scale(b, some_agent(b, ai), b->replicas + step, err)) < 0)
			break;
		if ((r = wait_for(b, leader_not_cb, old, PHASE_TIMEOUT_NS)) < 0) {
			shoal_err_set(err, -r, "failover: no other agent took the lead");
			break;
		}
		int64_t t1 = mono_ns();
		struct want wp = {.n = b->replicas, .placed = true};
		if ((r = wait_for(b, enough_cb, &wp, PHASE_TIMEOUT_NS)) < 0) {
			shoal_err_set(err, -r, "failover: the scale to %zu was not placed",
				      b->replicas);
			break;
		}
		int64_t t2 = mono_ns();
		struct want wr = {.n = b->replicas};
		if ((r = wait_for(b, enough_cb, &wr, PHASE_TIMEOUT_NS)) < 0) {
			shoal_err_set(err, -r, "failover: the scale to %zu did not run",
				      b->replicas);
			break;
		}
		int64_t t3 = mono_ns();
		int ni = agent_of(b, b->leader);
		bench_samples_add(&lead, t1 - t0);
		bench_samples_add(&placed, t2 - t0);
		bench_samples_add(&running, t3 - t0);
		json_array_append_new(
			rounds, json_pack("{s:i, s:i, s:f, s:f, s:f, s:I}", "old_leader", ai,
					  "new_leader", ni, "leader_s", (t1 - t0) / 1e9,
					  "scale_placed_s", (t2 - t0) / 1e9, "scale_running_s",
					  (t3 - t0) / 1e9, "replicas", (json_int_t)b->replicas));
		bench_progress(
			b->quiet,
			"failover %zu/%zu: agent %d killed, agent %d leads after %.3f s; the "
			"scale to %zu placed after %.3f s, running after %.3f s",
			round + 1, b->rounds, ai, ni, (t1 - t0) / 1e9, b->replicas, (t2 - t0) / 1e9,
			(t3 - t0) / 1e9);
		/* back as a follower, for the next round to kill the other */
		if ((r = bcl_agent_start(&b->procs, (size_t)ai, err)) < 0)
			break;
	}
	json_t *f = json_object();
	json_object_set_new(f, "node_ttl_s", json_integer(b->ttl_s));
	if (lead.n) {
		json_object_set_new(f, "leader", bench_summary(&lead));
		json_object_set_new(f, "scale_placed", bench_summary(&placed));
		json_object_set_new(f, "scale_running", bench_summary(&running));
		char t[64];
		snprintf(t, sizeof(t), "<= TTL + 1 s = %d s", b->ttl_s + 1);
		json_object_set_new(f, "target", json_string(t));
		json_object_set_new(
			f, "target_met",
			json_boolean(bench_quantile(&lead, 1.0) / 1e9 <= b->ttl_s + 1.0));
	}
	json_object_set_new(f, "how",
			    json_string("kill -9 of the leading agent; a scale by "
					"a tenth issued at once through another agent"));
	json_object_set_new(f, "rounds", rounds);
	json_object_set_new(out, "failover", f);
	bench_samples_free(&lead);
	bench_samples_free(&placed);
	bench_samples_free(&running);
	return r;
}

static int metrics_window(struct bench *b, struct bcl_metrics *ret, struct shoal_err *err)
{
	struct bcl_metrics m0 = {0}, m1 = {0};
	int r = bcl_metrics_read(b->procs.endpoints, &m0, err);
	if (r < 0)
		return r;
	int64_t t0 = mono_ns();
	idle(b, (int64_t)b->idle_s * 1000000000);
	double secs = (mono_ns() - t0) / 1e9;
	if ((r = bcl_metrics_read(b->procs.endpoints, &m1, err)) < 0) {
		json_decref(m0.by_method);
		return r;
	}
	ret->requests = (m1.requests - m0.requests) / secs;
	ret->bytes_in = (m1.bytes_in - m0.bytes_in) / secs;
	ret->bytes_out = (m1.bytes_out - m0.bytes_out) / secs;
	ret->by_method = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(m1.by_method, k, v)
	{
		double d = json_number_value(v) -
			   json_number_value(json_object_get(m0.by_method, k) ?: json_real(0));
		if (d > 0)
			json_object_set_new(ret->by_method, k, json_real(d / secs));
	}
	json_decref(m0.by_method);
	json_decref(m1.by_method);
	return 0;
}

static json_t *per(const struct bcl_metrics *m, double div)
{
	json_t *bm = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(m->by_method, k, v)
		json_object_set_new(bm, k, json_real(json_number_value(v) / div));
	/* a difference of two windows below their noise is none */
	double bytes = m->bytes_in + m->bytes_out;
	return json_pack("{s:f, s:f, s:o}", "requests_per_s", m->requests / div, "bytes_per_s",
			 (bytes > 0 ? bytes : 0) / div, "requests_by_method_per_s", bm);
}

/* Idle load: a window with everything up, then one with the agents stopped;
 * the difference is the agents'. Counted by etcd itself. */
static int phase_idle(struct bench *b, json_t *out, struct shoal_err *err)
{
	size_t live = 0;
	for (size_t i = 0; i < b->n_nodes; i++)
		live += !atomic_load(&b->sim.nodes[i].dead);
	/* settled: a lease TTL for what is in flight, and past the leader's
	 * sweep of the last dead node's records (its lease running out, the
	 * reclaim grace, the resync that sweeps): that read answers a death,
	 * it is not idle load */
	int64_t settle = (int64_t)(b->ttl_s + 1) * 1000000000;
	if (b->last_death) {
		int64_t swept = b->last_death +
				((int64_t)(OVERLAY_RECLAIM_TTLS + 1) * b->ttl_s + OVERLAY_RESYNC_S +
				 1) * 1000000000LL;
		if (swept - mono_ns() > settle)
			settle = swept - mono_ns();
	}
	bench_progress(b->quiet, "idle: %d s with everything up (after %.0f s settling)", b->idle_s,
		       settle / 1e9);
	idle(b, settle);
	struct bcl_metrics all = {0}, sims = {0};
	int r = metrics_window(b, &all, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < b->n_agents; i++)
		bcl_agent_stop(&b->procs, i);
	bench_progress(b->quiet, "idle: %d s with the agents stopped", b->idle_s);
	/* their leases run out first: the deletions are not idle load */
	idle(b, (int64_t)(b->ttl_s + 1) * 1000000000);
	if ((r = metrics_window(b, &sims, err)) < 0) {
		json_decref(all.by_method);
		return r;
	}
	/* by method, a negative difference (noise of the leases' renewals,
	 * which do not fall evenly into windows) counted as none. An agent
	 * keeps one lease, as a simulated node does: its renewals are counted
	 * at the rate the simulated nodes' were measured at alone, and its bytes
	 * at least at theirs; a difference of two windows would carry the noise
	 * of every node's renewals, which come in batches. */
	double per_node_renewals =
		live ? json_number_value(json_object_get(sims.by_method, "LeaseKeepAlive")) / live
		     : 0;
	double per_node_bytes = live ? (sims.bytes_in + sims.bytes_out) / live : 0;
	struct bcl_metrics agents = {
		.requests = 0,
		.bytes_in = all.bytes_in - sims.bytes_in,
		.bytes_out = all.bytes_out - sims.bytes_out,
		.by_method = json_object(),
	};
	if (agents.bytes_in + agents.bytes_out < per_node_bytes * b->n_agents) {
		agents.bytes_in = per_node_bytes * b->n_agents;
		agents.bytes_out = 0;
	}
	const char *k;
	json_t *v;
	json_object_foreach(all.by_method, k, v)
	{
		double d = json_number_value(v) -
			   json_number_value(json_object_get(sims.by_method, k) ?: json_real(0));
		if (strcmp(k, "LeaseKeepAlive") == 0)
			d = per_node_renewals * b->n_agents;
		if (d > 0) {
			json_object_set_new(agents.by_method, k, json_real(d));
			agents.requests += d;
		}
	}
	json_t *ps = per(&sims, live ? (double)live : 1);
	json_t *pa = per(&agents, (double)b->n_agents);
	double sim_req = sims.requests / (live ? live : 1),
	       sim_bytes = (sims.bytes_in + sims.bytes_out) / (live ? live : 1);
	double ag_req = agents.requests / b->n_agents,
	       ag_bytes = (agents.bytes_in + agents.bytes_out) / b->n_agents;
	/* the difference of two windows: below their noise (the leases'
	 * renewals, which do not fall evenly into windows) it can come out
	 * negative, which is none */
	if (ag_bytes < 0)
		ag_bytes = 0;
	/* An idle agent reads nothing from the store: its passes work from the
	 * caches its watches keep (tasks, services, node records, liveness),
	 * so what it costs does not grow with the node count; only its lease's
	 * renewals go to etcd. */
	double ag_bytes_10k = ag_bytes;
	char text[1024];
	snprintf(text, sizeof(text),
		 "10,000 nodes keeping their leases (as the simulated nodes do): 10,000 x %.3f "
		 "= %.0f requests/s and 10,000 x %.0f B/s = %.2f MB/s on etcd; with every node "
		 "running shoald idle (%.3f requests/s and %.0f B/s each with %zu nodes, reading "
		 "nothing, so the same at 10,000 nodes): 10,000 x %.3f = %.0f requests/s and "
		 "10,000 x %.0f B/s = %.1f MB/s",
		 sim_req, sim_req * TARGET_NODES, sim_bytes, sim_bytes * TARGET_NODES / 1e6, ag_req,
		 ag_bytes, live + b->n_agents, ag_req, ag_req * TARGET_NODES, ag_bytes_10k,
		 ag_bytes_10k * TARGET_NODES / 1e6);
	json_t *o = json_pack(
		"{s:s, s:i, s:I, s:I, s:o, s:o, s:{s:f, s:f, s:f, s:f, s:s}}", "counted_by",
		"etcd's /metrics before and after each window: requests = "
		"grpc_server_msg_received_total, bytes = etcd_network_client_grpc_received_bytes_total "
		"+ _sent_bytes_total (gRPC message bytes; the JSON gateway's HTTP bytes on the wire "
		"are more); the agents' share is the window with them less the window without, "
		"but for their leases' renewals, one lease each at the rate measured for a "
		"simulated node's",
		"window_s", b->idle_s, "simulated_nodes", (json_int_t)live, "agents",
		(json_int_t)b->n_agents, "per_simulated_node", ps, "per_agent", pa,
		"projection_10000_nodes", "leases_requests_per_s", sim_req * TARGET_NODES,
		"leases_bytes_per_s", sim_bytes * TARGET_NODES, "agents_requests_per_s",
		ag_req * TARGET_NODES, "agents_bytes_per_s", ag_bytes_10k * TARGET_NODES,
		"arithmetic", text);
	json_object_set_new(out, "idle", o);
	json_decref(all.by_method);
	json_decref(sims.by_method);
	json_decref(agents.by_method);
	return 0;
}

/* ---- output ---- */

static double sec(json_t *out, const char *path)
{
	json_t *v = cli_json_get(out, path);
	return v ? json_number_value(v) / 1000.0 : -1;
}

static void print_report(void *self, json_t *out)
{
	struct bench *b = self;
	printf("shoal bench cluster: %zu simulated nodes (%s), %zu task(s), %zu agent(s), "
	       "etcd %s\n",
	       b->n_nodes, b->per_node_watch ? "a watch each" : "one watch per thread", b->n_tasks,
	       b->n_agents, cli_json_str(out, "config.etcd") ?: "");
	printf("  (one machine, shared and loaded: figures are this machine's, not a cluster's)\n");
	if (cli_json_get(out, "create.converged"))
		printf("  create -> all running  %8.3f s median (%.3f min, %.3f max, %lld "
		       "run(s))   target: 1,000 tasks on 1,000 nodes <= 5 s%s\n",
		       sec(out, "create.converged.median_ms"), sec(out, "create.converged.min_ms"),
		       sec(out, "create.converged.max_ms"),
		       (long long)cli_json_int(out, "create.converged.runs"),
		       cli_json_get(out, "create.target_met")
			       ? (json_is_true(cli_json_get(out, "create.target_met"))
					  ? " (met)"
					  : " (MISSED)")
			       : " (not this size)");
	if (cli_json_get(out, "create.all_placed"))
		printf("  create -> all placed   %8.3f s median; first running %.3f s\n",
		       sec(out, "create.all_placed.median_ms"),
		       sec(out, "create.first_running.median_ms"));
	if (cli_json_get(out, "create.spread"))
		printf("  spread                 %lld running on %lld nodes, %lld to %lld a node, "
		       "%lld on the agents\n",
		       (long long)cli_json_int(out, "create.spread.running_on_simulated_nodes"),
		       (long long)cli_json_int(out, "create.spread.nodes_used"),
		       (long long)cli_json_int(out, "create.spread.min_per_node"),
		       (long long)cli_json_int(out, "create.spread.max_per_node"),
		       (long long)cli_json_int(out, "create.spread.running_on_agents"));
	if (cli_json_get(out, "node_death.replaced_running"))
		printf("  node death -> running  %8.3f s median (%.3f max)   target: <= 10 s%s\n",
		       sec(out, "node_death.replaced_running.median_ms"),
		       sec(out, "node_death.replaced_running.max_ms"),
		       json_is_true(cli_json_get(out, "node_death.target_met")) ? " (met)"
										: " (MISSED)");
	if (cli_json_get(out, "failover.leader"))
		printf("  failover: new leader   %8.3f s median (%.3f max)   target: <= TTL + 1 s = "
		       "%d s%s\n"
		       "  scale during failover  %8.3f s placed, %.3f s running (medians)\n",
		       sec(out, "failover.leader.median_ms"), sec(out, "failover.leader.max_ms"),
		       b->ttl_s + 1,
		       json_is_true(cli_json_get(out, "failover.target_met")) ? " (met)"
									      : " (MISSED)",
		       sec(out, "failover.scale_placed.median_ms"),
		       sec(out, "failover.scale_running.median_ms"));
	else if (b->n_agents < 2)
		printf("  failover               not measured (--agents 2 or more)\n");
	if (cli_json_get(out, "idle"))
		printf("  idle, per simulated node  %.3f requests/s, %.0f B/s\n"
		       "  idle, per agent           %.3f requests/s, %.0f B/s\n"
		       "  (counted by etcd's /metrics; gRPC message bytes)\n"
		       "  10,000 nodes: %s\n",
		       json_number_value(
			       cli_json_get(out, "idle.per_simulated_node.requests_per_s")),
		       json_number_value(cli_json_get(out, "idle.per_simulated_node.bytes_per_s")),
		       json_number_value(cli_json_get(out, "idle.per_agent.requests_per_s")),
		       json_number_value(cli_json_get(out, "idle.per_agent.bytes_per_s")),
		       cli_json_str(out, "idle.projection_10000_nodes.arithmetic") ?: "");
	printf("  watches: %s\n", cli_json_str(out, "config.watch_note") ?: "");
}

/* ---- the command ---- */

static int run(struct bench *b, json_t *out, struct shoal_err *err)
{
	int r;
	if (b->endpoints) {
		const char *h = strstr(b->endpoints, "://");
		h = h ? h + 3 : b->endpoints;
		if (str_has_prefix(h, "127.") || str_has_prefix(h, "localhost") ||
		    str_has_prefix(h, "[::1]"))
			return shoal_err_set(
				err, EINVAL,
				"--store-endpoints %s: the bench and its agents run in "
				"a network namespace of their own, where a loopback "
				"address is not the host's; give an address they can "
				"route to",
				b->endpoints);
	}
	if ((r = bench_netns_client_up(&b->ns, err)) < 0)
		return shoal_err_wrap(err, "making the bench's network namespace");
	bench_progress(b->quiet, "network namespace up; agents on 10.213.0.10+");
	if ((r = bcl_procs_init(&b->procs, b->endpoints, err)) < 0)
		return r;
	if (!b->endpoints) {
		if ((r = bcl_etcd_start(&b->procs, err)) < 0)
			return r;
		bench_progress(b->quiet, "etcd %s at %s, data on %s", b->procs.etcd_version,
			       b->procs.endpoints, b->procs.etcd_fs);
	}
	if ((r = observer_start(b, err)) < 0)
		return r;
	/* agent 0 first, so that it leads */
	if ((r = bcl_agent_start(&b->procs, 0, err)) < 0)
		return r;
	if ((r = wait_for(b, leader_is_cb, b->procs.agents[0].node_id, 30LL * 1000000000)) < 0)
		return shoal_err_set(err, ETIMEDOUT, "agent 0 did not take the lead");
	for (size_t i = 1; i < b->n_agents; i++)
		if ((r = bcl_agent_start(&b->procs, i, err)) < 0)
			return r;
	bench_progress(b->quiet, "%zu agent(s) up, agent 0 leads", b->n_agents);
	b->sim.endpoints = b->procs.endpoints;
	b->sim.ttl_s = b->ttl_s;
	b->sim.per_node_watch = b->per_node_watch;
	b->sim.n_execs = b->execs;
	int64_t t0 = mono_ns();
	if ((r = bcl_sim_start(&b->sim, b->n_nodes, b->threads, err)) < 0)
		return shoal_err_wrap(err, "simulated nodes");
	b->sim_index = json_object();
	for (size_t i = 0; i < b->n_nodes; i++)
		json_object_set_new(b->sim_index, b->sim.nodes[i].id, json_integer((json_int_t)i));
	bench_progress(b->quiet,
		       "%zu simulated nodes registered in %.3f s (%zu loop threads, %zu executors)",
		       b->n_nodes, (mono_ns() - t0) / 1e9, b->threads, b->execs);
	json_t *cfg = json_object_get(out, "config");
	json_object_set_new(cfg, "registered_s", json_real((mono_ns() - t0) / 1e9));
	json_object_set_new(cfg, "executors", json_integer((json_int_t)b->execs));
	if ((r = phase_create(b, out, err)) < 0)
		return r;
	phase_done(b, "create");
	spread(b, json_object_get(out, "create"));
	if ((r = phase_node_death(b, out, err)) < 0)
		return r;
	phase_done(b, "node death");
	if (b->n_agents >= 2 && (r = phase_failover(b, out, err)) < 0)
		return r;
	phase_done(b, "failover");
	if ((r = phase_idle(b, out, err)) < 0)
		return r;
	phase_done(b, "idle");
	json_object_set_new(
		out, "simulated",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "task_events_delivered",
			  (json_int_t)atomic_load(&b->sim.stats.events), "tasks_started",
			  (json_int_t)atomic_load(&b->sim.stats.started), "tasks_stopped",
			  (json_int_t)atomic_load(&b->sim.stats.stopped), "status_writes",
			  (json_int_t)atomic_load(&b->sim.stats.writes), "cas_conflicts",
			  (json_int_t)atomic_load(&b->sim.stats.conflicts), "errors",
			  (json_int_t)atomic_load(&b->sim.stats.errors), "max_lease_unrenewed_ms",
			  atomic_load(&b->sim.stats.max_renewal_age_ns) / 1e6, "max_loop_lag_ms",
			  atomic_load(&b->sim.stats.max_loop_lag_ns) / 1e6));
	if (atomic_load(&b->sim.stats.errors) || b->watch_errors)
		return shoal_err_set(err, EIO,
				     "%llu store call(s) of the simulated nodes and %d watch(es) "
				     "of the bench failed%s%s",
				     (unsigned long long)atomic_load(&b->sim.stats.errors),
				     b->watch_errors, b->sim.first_err[0] ? "; the first: " : "",
				     b->sim.first_err);
	return 0;
}

static void teardown(struct bench *b)
{
	if (b->sim.threads)
		bcl_sim_stop(&b->sim);
	if (b->tw)
		store_watch_cancel(b->tw);
	if (b->lw)
		store_watch_cancel(b->lw);
	if (b->store && b->endpoints) {
		/* an etcd of the user's: leave it as it was */
		store_delete(b->store, "/shoal/", true, NULL, NULL);
	}
	if (b->store)
		store_close(b->store);
	if (b->base)
		event_base_free(b->base);
	bcl_procs_cleanup(&b->procs);
	bench_netns_down(&b->ns);
	json_decref(b->tindex);
	json_decref(b->sim_index);
	free(b->tasks);
}

int bench_cluster(struct cli_ctx *ctx, int argc, char **argv)
{
	enum {
		O_NODES = 1,
		O_TASKS,
		O_AGENTS,
		O_ROUNDS,
		O_TTL,
		O_IDLE,
		O_WATCH,
		O_THREADS,
		O_EXECS,
		O_EPS
	};
	static const struct cli_opt opts[] = {
		{O_NODES, "nodes", 0, CLI_OPT_VALUE, "int", "Simulated nodes (default 100)"},
		{O_TASKS, "tasks", 0, CLI_OPT_VALUE, "int", "Tasks of the service (default 1000)"},
		{O_AGENTS, "agents", 0, CLI_OPT_VALUE, "int",
		 "Real agents, managers (default 1; 2 or more to measure failover)"},
		{O_ROUNDS, "rounds", 0, CLI_OPT_VALUE, "int", "Rounds of each measure (default 3)"},
		{O_TTL, "node-ttl", 0, CLI_OPT_VALUE, "int",
		 "Node lease TTL in seconds (default 5)"},
		{O_IDLE, "idle", 0, CLI_OPT_VALUE, "int",
		 "Seconds of each idle-load window (default 10)"},
		{O_WATCH, "watch", 0, CLI_OPT_VALUE, "string",
		 "shared (one watch per thread, default) or per-node (one each)"},
		{O_THREADS, "threads", 0, CLI_OPT_VALUE, "int",
		 "Loop threads keeping the simulated nodes' leases and watches (default 2)"},
		{O_EXECS, "executors", 0, CLI_OPT_VALUE, "int",
		 "Threads doing the simulated nodes' store calls (default 64)"},
		{O_EPS, "store-endpoints", 0, CLI_OPT_VALUE, "urls",
		 "An empty etcd to use instead of starting one"},
		BENCH_OPTS_RESULTS,
		{0},
	};
	struct bench b = {.n_nodes = 100,
			  .n_tasks = 1000,
			  .n_agents = 1,
			  .rounds = 3,
			  .threads = 2,
			  .execs = 64,
			  .ttl_s = 5,
			  .idle_s = 10};
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	const struct bench_num_opt nums[] = {
		{O_NODES, 1, BCL_MAX_NODES, "--nodes: expected 1 to 20000", &b.n_nodes, NULL},
		{O_TASKS, 1, 100000, "--tasks: expected 1 to 100000", &b.n_tasks, NULL},
		{O_AGENTS, 1, BCL_MAX_AGENTS, "--agents: expected 1 to 8", &b.n_agents, NULL},
		{O_ROUNDS, 1, 20, "--rounds: expected 1 to 20", &b.rounds, NULL},
		{O_TTL, 2, 60, "--node-ttl: expected 2 to 60 (seconds, as shoald's)", NULL,
		 &b.ttl_s},
		{O_IDLE, 1, 600, "--idle: expected 1 to 600 (seconds)", NULL, &b.idle_s},
		{O_THREADS, 1, BCL_MAX_THREADS, "--threads: expected 1 to 16", &b.threads, NULL},
		{O_EXECS, 1, BCL_MAX_EXECS, "--executors: expected 1 to 256", &b.execs, NULL},
	};
	int o;
	const char *bad = NULL;
	while (!bad && (o = cli_opts_next(&p)) > 0) {
		if (bench_num_opt(nums, ARRAY_SIZE(nums), o, p.value, &bad) ||
		    bench_results_opt(&p, o, b.procs.shoald, sizeof(b.procs.shoald), &b.json,
				      &b.out_path))
			continue;
		switch (o) {
		case O_WATCH:
			if (strcmp(p.value, "per-node") == 0)
				b.per_node_watch = true;
			else if (strcmp(p.value, "shared") != 0)
				bad = "--watch: expected shared or per-node";
			break;
		case O_EPS:
			b.endpoints = p.value;
			break;
		}
	}
	int rc = bench_opts_end(ctx, &p, o, bad,
				"Time a cluster's control plane on one machine: etcd, simulated "
				"nodes and real agents (root)");
	if (rc >= 0)
		return rc;
	if (geteuid() != 0) {
		cli_opts_done(&p);
		fprintf(stderr, "shoal bench cluster: needs root: it makes a network namespace and "
				"runs agents (shoald) in it\n");
		return 1;
	}
	if (b.threads > b.n_nodes)
		b.threads = b.n_nodes;
	if (b.execs > b.n_nodes)
		b.execs = b.n_nodes;
	b.quiet = b.json;
	b.procs.n_agents = b.n_agents;
	b.procs.ttl_s = b.ttl_s;
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_t *out = json_object();
	const char *watch_note =
		b.per_node_watch
			? "one watch of /shoal/tasks/ per simulated node: each node receives every "
			  "task write (the store has no index by node), so deliveries grow as nodes x "
			  "writes"
			: "one watch of /shoal/tasks/ per thread, shared by its nodes: a watch per "
			  "node receives every task write (the store has no index by node), nodes x "
			  "writes deliveries, which one machine cannot carry at 1,000 nodes (see "
			  "--watch per-node)";
	json_object_set_new(out, "config",
			    json_pack("{s:I, s:I, s:I, s:I, s:i, s:i, s:s, s:s, s:I}", "nodes",
				      (json_int_t)b.n_nodes, "tasks", (json_int_t)b.n_tasks,
				      "agents", (json_int_t)b.n_agents, "rounds",
				      (json_int_t)b.rounds, "node_ttl_s", b.ttl_s, "idle_window_s",
				      b.idle_s, "watch", b.per_node_watch ? "per-node" : "shared",
				      "watch_note", watch_note, "threads", (json_int_t)b.threads));
	if (!b.quiet)
		fprintf(stderr,
			"shoal bench cluster: %zu simulated nodes, %zu tasks, %zu agent(s), %zu "
			"round(s)\n",
			b.n_nodes, b.n_tasks, b.n_agents, b.rounds);
	struct shoal_err err = {0};
	int r = run(&b, out, &err);
	if (r < 0 && b.sim.first_err[0])
		shoal_err_wrap(&err,
			       "(the simulated nodes: %llu failure(s), the first: %s; a lease went "
			       "%.0f ms unrenewed, a thread's loop ran up to %.0f ms late; first "
			       "seen after the %s phase)",
			       (unsigned long long)atomic_load(&b.sim.stats.errors),
			       b.sim.first_err, atomic_load(&b.sim.stats.max_renewal_age_ns) / 1e6,
			       atomic_load(&b.sim.stats.max_loop_lag_ns) / 1e6,
			       b.fail_phase ? b.fail_phase : "last");
	json_t *cfg = json_object_get(out, "config");
	char etcd[160];
	if (b.endpoints)
		snprintf(etcd, sizeof(etcd), "at %s (given)", b.endpoints);
	else
		snprintf(etcd, sizeof(etcd), "%s started by the bench, data on %s",
			 b.procs.etcd_version[0] ? b.procs.etcd_version : "?", b.procs.etcd_fs);
	json_object_set_new(cfg, "etcd", json_string(etcd));
	teardown(&b);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	/* every figure measured, but the simulated nodes failed somewhere: the
	 * results go out marked, and the bench fails */
	bool partial = r < 0 && !bcl_interrupted && json_object_get(out, "simulated");
	if (partial) {
		json_object_set_new(out, "valid", json_false());
		json_object_set_new(out, "invalid_because", json_string(err.msg));
		bench_results_out(out, "cluster", b.out_path, b.json, print_report, &b);
	}
	/* in a namespace of its own, with agents of its own: no agent's data
	 * plane to record */
	rc = bench_run_status(r, &err, &bcl_interrupted, out, "cluster", b.out_path, b.json,
			      print_report, &b);
	json_decref(out);
	cli_opts_done(&p);
	return rc;
}
