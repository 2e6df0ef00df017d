// SPDX-License-Identifier: Apache-2.0
/* The simulated nodes of `shoal bench cluster`: light peers in this process,
 * each with its own lease kept alive, its node record and liveness key as
 * agent/membership.c writes them, and an executor that moves the tasks placed
 * on it through accepted, preparing, starting and running with the reads and
 * compare-and-swap writes of the agent's (agent/executor.c, task_observe() in
 * agent/manager.c, both moving a record by sched/task-record.c's rule), with
 * no container behind them.
 *
 * The nodes are spread over a few threads, each with its own loop and store
 * handle: a real node waits on its own network round trips, and one thread
 * doing every node's blocking calls in turn would measure itself instead of
 * the leader. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/store/store.h"
#include "bench/bench-cluster-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/task-record.h"

/* Resources every simulated node offers: more than any test service asks. */
#define SIM_NANO_CPUS	 (64LL * 1000000000)
#define SIM_MEMORY_BYTES (256LL << 30)

struct work {
	struct bcl_node *node;
	json_t *rec;
	int64_t rev; /* rec's version, as the watch delivered it */
};

/* An executor: the blocking reads and writes of the nodes given to it, in
 * turn, on a store handle of its own. A node's tasks always go to the same
 * one, in order, as one agent's executor does them; the loops that keep the
 * leases and watch never wait on them. */
struct bcl_exec {
	struct bcl_sim *sim;
	pthread_t tid;
	bool joinable, quit;
	struct store *store;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct work *work;
	size_t work_head, work_n, work_cap;
	struct shoal_err err;
};

struct bcl_thread {
	struct bcl_sim *sim;
	pthread_t tid;
	bool joinable;
	struct event_base *base;
	struct store *store;
	/* shared: every task event of its nodes. The store's keep-alive thread
	 * renews all its nodes' leases, in one request a round. */
	struct store_watch *watch;
	size_t first, n; /* its nodes: sim->nodes[first .. first + n) */
	json_t *index;	 /* node id -> index in sim->nodes */
	int cmd[2];	 /* commands from the main thread */
	struct event *cmd_ev;
	struct event *tick_ev; /* the health of the thread: its lag, its leases' ages */
	int64_t tick_due;
	atomic_int state; /* 0 starting, 1 ready, -1 failed */
	atomic_int_fast64_t cmd_done;
	struct shoal_err err;
};

static void sim_fail(struct bcl_sim *s, const char *what, const char *msg)
{
	atomic_fetch_add(&s->stats.errors, 1);
	pthread_mutex_lock(&s->err_lock);
	if (!s->first_err[0])
		snprintf(s->first_err, sizeof(s->first_err), "%s: %s", what, msg);
	pthread_mutex_unlock(&s->err_lock);
}

/* ---- task records, as the agent writes them ---- */

/* The node's report of a task's state, as task_observe() of agent/manager.c
 * makes it: from what the node knows (*known at version *known_rev: the
 * record the watch delivered or the node's own last report), moved forward
 * by the agent's rule (task_record_observe()), written back if the record is
 * still at that version; a stale one is read again. On a write, *known and
 * *known_rev become what was written. 1 written, 0 nothing to do, -errno. */
static int observe(struct bcl_sim *sim, struct store *store, const char *task_id,
		   enum task_state state, const char *message, json_t **known, int64_t *known_rev)
{
	struct bcl_sim_stats *st = &sim->stats;
	struct task_report rep = {.state = state, .message = message, .health = -1};
	char key[128];
	snprintf(key, sizeof(key), "%s%s", BCL_TASKS, task_id);
	for (int attempt = 0; attempt < 5; attempt++) {
		struct shoal_err err = {0};
		int64_t rev = 0;
		json_t *rec = NULL;
		if (attempt == 0 && *known) {
			rec = json_deep_copy(*known);
			rev = *known_rev;
		} else {
			struct store_kvs *kvs = NULL;
			if (store_get(store, key, false, 0, &kvs, &err) < 0) {
				sim_fail(sim, "reading a task", err.msg);
				return -EIO;
			}
			if (kvs->n == 0) {
				store_kvs_free(kvs);
				return -ENOENT;
			}
			rev = kvs->kvs[0].mod_revision;
			rec = json_loadb(kvs->kvs[0].value, kvs->kvs[0].value_len, 0, NULL);
			store_kvs_free(kvs);
		}
		int r = rec ? task_record_observe(rec, &rep, now_ns()) : -EBADMSG;
		if (r <= 0) {
			json_decref(rec);
			return r;
		}
		_cleanup_free_ char *s = json_dumps(rec, JSON_COMPACT);
		if (!s) {
			json_decref(rec);
			return -ENOMEM;
		}
		struct store_cmp cmp = {
			.key = key, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = rev};
		struct store_op op = {
			.type = STORE_OP_PUT, .key = key, .value = s, .value_len = strlen(s)};
		struct store_txn_result res = {0};
		if (store_txn(store, &cmp, 1, &op, 1, NULL, 0, &res, &err) < 0) {
			json_decref(rec);
			sim_fail(sim, "writing a task's state", err.msg);
			return -EIO;
		}
		bool ok = res.succeeded;
		int64_t wrote = res.revision;
		store_txn_result_clear(&res);
		if (ok) {
			json_decref(*known);
			*known = rec;
			*known_rev = wrote;
			atomic_fetch_add(&st->writes, 1);
			return 1;
		}
		json_decref(rec);
		atomic_fetch_add(&st->conflicts, 1);
	}
	return -EAGAIN;
}

/* What the executor does with a task of this node (executor_reconcile()):
 * an assigned task meant to run is started, one meant to stop is stopped. */
static void task_event(struct bcl_sim *sim, struct store *store, struct bcl_node *n, json_t *rec,
		       int64_t rev)
{
	const char *tid = json_string_value(json_object_get(rec, "ID"));
	const char *desired = json_string_value(json_object_get(rec, "DesiredState")) ?: "";
	const char *state =
		json_string_value(json_object_get(json_object_get(rec, "Status"), "State")) ?: "";
	enum task_state st;
	if (!tid || task_state_from_name(state, &st) < 0 || atomic_load(&n->dead))
		return;
	if (strcmp(desired, "running") == 0) {
		if (st != TASK_ASSIGNED)
			return;
		/* task_start(): accepted and preparing at once, then starting
		 * and running when the container's start answers */
		static const struct {
			enum task_state s;
			const char *msg;
		} walk[] = {{TASK_ACCEPTED, "accepted"},
			    {TASK_PREPARING, "preparing"},
			    {TASK_STARTING, "starting"},
			    {TASK_RUNNING, "started"}};
		json_t *known = json_incref(rec);
		int64_t known_rev = rev;
		for (size_t i = 0; i < sizeof(walk) / sizeof(walk[0]); i++)
			if (observe(sim, store, tid, walk[i].s, walk[i].msg, &known, &known_rev) <
			    0) {
				json_decref(known);
				return;
			}
		json_decref(known);
		atomic_fetch_add(&sim->stats.started, 1);
	} else if (strcmp(desired, "ready") != 0 && st >= TASK_ASSIGNED &&
		   !task_state_is_terminal(st)) {
		json_t *known = json_incref(rec);
		int64_t known_rev = rev;
		if (observe(sim, store, tid, TASK_SHUTDOWN, "shutdown", &known, &known_rev) > 0)
			atomic_fetch_add(&sim->stats.stopped, 1);
		json_decref(known);
	}
}

static int work_push(struct bcl_exec *x, struct bcl_node *node, json_t *rec, int64_t rev)
{
	int r = 0;
	pthread_mutex_lock(&x->lock);
	if (x->work_n == x->work_cap) {
		if (x->work_head > 0) {
			memmove(x->work, x->work + x->work_head,
				(x->work_n - x->work_head) * sizeof(*x->work));
			x->work_n -= x->work_head;
			x->work_head = 0;
		}
		if (x->work_n == x->work_cap) {
			size_t cap = x->work_cap ? x->work_cap * 2 : 256;
			struct work *w = realloc(x->work, cap * sizeof(*w));
			if (!w)
				r = -ENOMEM;
			else {
				x->work = w;
				x->work_cap = cap;
			}
		}
	}
	if (r == 0) {
		x->work[x->work_n++] =
			(struct work){.node = node, .rec = json_incref(rec), .rev = rev};
		pthread_cond_signal(&x->cond);
	}
	pthread_mutex_unlock(&x->lock);
	return r;
}

static void *exec_main(void *arg)
{
	struct bcl_exec *x = arg;
	pthread_mutex_lock(&x->lock);
	for (;;) {
		while (!x->quit && x->work_head == x->work_n)
			pthread_cond_wait(&x->cond, &x->lock);
		if (x->quit)
			break;
		struct work w = x->work[x->work_head++];
		pthread_mutex_unlock(&x->lock);
		task_event(x->sim, x->store, w.node, w.rec, w.rev);
		json_decref(w.rec);
		pthread_mutex_lock(&x->lock);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

/* Events of /shoal/tasks/: each put of a task placed on one of node's
 * nodes (node NULL: any of the thread's) goes to it. */
static void dispatch(struct bcl_thread *th, struct bcl_node *only, const struct store_event *ev,
		     size_t n)
{
	struct bcl_sim *s = th->sim;
	atomic_fetch_add(&s->stats.events, n);
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type != STORE_EVENT_PUT)
			continue;
		json_t *rec = json_loadb(ev[i].kv.value, ev[i].kv.value_len, 0, NULL);
		const char *nid = json_string_value(json_object_get(rec, "NodeID"));
		struct bcl_node *node = NULL;
		if (nid && only) {
			node = strcmp(nid, only->id) == 0 ? only : NULL;
		} else if (nid) {
			json_t *ix = json_object_get(th->index, nid);
			node = ix ? &s->nodes[json_integer_value(ix)] : NULL;
		}
		if (node && work_push(&s->execs[(size_t)(node - s->nodes) % s->n_execs], node, rec,
				      ev[i].kv.mod_revision) < 0)
			sim_fail(s, node->hostname, "out of memory for its work");
		json_decref(rec);
	}
}

static void shared_watch_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
			    void *userdata)
{
	struct bcl_thread *th = userdata;
	if (err) {
		sim_fail(th->sim, "a thread's watch", err->msg);
		return;
	}
	dispatch(th, NULL, ev, n);
}

static void node_watch_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
			  void *userdata)
{
	struct bcl_node *node = userdata;
	if (err) {
		sim_fail(node->th->sim, "a node's watch", err->msg);
		return;
	}
	dispatch(node->th, node, ev, n);
}

static void lease_lost_cb(int64_t id, const struct shoal_err *err, void *userdata)
{
	struct bcl_node *n = userdata;
	/* only a node the bench killed loses its lease; any other is a failure
	 * of the bench's own, counted */
	if (!atomic_load(&n->dead))
		sim_fail(n->th->sim, n->hostname, err ? err->msg : "lease lost");
}

/* ---- a node's registration (node_register() and register_live() of
 * agent/membership.c) ---- */

static int node_register(struct bcl_thread *th, struct bcl_node *n, struct shoal_err *err)
{
	char key[128], now[40];
	struct utsname u;
	uname(&u);
	format_rfc3339(now_ns(), now);
	snprintf(key, sizeof(key), "%s%s", BCL_NODES, n->id);
	json_t *rec = json_pack(
		"{s:s, s:s, s:{s:s, s:{}, s:s, s:s}, s:s, s:{s:s, s:{s:s, s:s}, s:{s:I, s:I}, "
		"s:{s:s, s:{}}}, s:{s:s, s:s}}",
		"ID", n->id, "CreatedAt", now, "Spec", "Name", "", "Labels", "Availability",
		"active", "Role", "worker", "UpdatedAt", now, "Description", "Hostname",
		n->hostname, "Platform", "Architecture", u.machine, "OS", "linux", "Resources",
		"NanoCPUs", (json_int_t)SIM_NANO_CPUS, "MemoryBytes", (json_int_t)SIM_MEMORY_BYTES,
		"Engine", "EngineVersion", SHOAL_VERSION, "Labels", "Status", "State", "ready",
		"Addr", n->addr);
	_cleanup_free_ char *s = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (!s)
		return shoal_err_set(err, ENOMEM, "out of memory");
	/* created only if absent, as the agent's first registration */
	struct store_cmp cmp = {.key = key, .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ};
	struct store_op op = {.type = STORE_OP_PUT, .key = key, .value = s, .value_len = strlen(s)};
	struct store_txn_result res = {0};
	int r = store_txn(th->store, &cmp, 1, &op, 1, NULL, 0, &res, err);
	bool ok = res.succeeded;
	store_txn_result_clear(&res);
	if (r < 0)
		return shoal_err_wrap(err, "registering simulated node %s", n->hostname);
	if (!ok)
		return shoal_err_set(err, EEXIST, "node %s is in the store already", n->id);
	struct store *ks = n->kstore;
	if ((r = store_lease_grant(ks, th->sim->ttl_s, &n->lease, err)) < 0)
		return shoal_err_wrap(err, "granting %s's lease", n->hostname);
	json_t *v = json_pack("{s:s, s:s, s:s}", "Addr", n->addr, "Since", now, "Role", "worker");
	_cleanup_free_ char *vs = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!vs)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s%s", BCL_ALIVE, n->id);
	if ((r = store_put(th->store, key, vs, strlen(vs), n->lease, NULL, err)) < 0)
		return shoal_err_wrap(err, "writing %s's liveness", n->hostname);
	return store_lease_keep(ks, n->lease, th->sim->ttl_s, lease_lost_cb, n, &n->keeper, err);
}

/* ---- the thread ---- */

#define SIM_TICK_NS (100LL * 1000000)

static void atomic_max(atomic_int_fast64_t *v, int64_t x)
{
	int64_t cur = atomic_load(v);
	while (x > cur && !atomic_compare_exchange_weak(v, &cur, x))
		;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bcl_thread *th = arg;
	struct bcl_sim *s = th->sim;
	int64_t now = mono_ns(), wall = now_ns();
	if (th->tick_due)
		atomic_max(&s->stats.max_loop_lag_ns, now - th->tick_due);
	for (size_t i = th->first; i < th->first + th->n; i++) {
		struct bcl_node *n = &s->nodes[i];
		if (!atomic_load(&n->dead) && n->keeper)
			atomic_max(&s->stats.max_renewal_age_ns,
				   wall - store_lease_keeper_renewed_ns(n->keeper));
	}
	th->tick_due = now + SIM_TICK_NS;
	struct timeval tv = {0, SIM_TICK_NS / 1000};
	evtimer_add(th->tick_ev, &tv);
}

enum { CMD_KILL = 'k', CMD_QUIT = 'q' };

struct cmd {
	char op;
	uint32_t node;
};

static void node_stop(struct bcl_thread *th, struct bcl_node *n, bool revoke)
{
	atomic_store(&n->dead, true);
	if (n->watch)
		store_watch_cancel(n->watch);
	n->watch = NULL;
	if (n->keeper)
		store_lease_keeper_stop(n->keeper);
	n->keeper = NULL;
	if (revoke && n->lease)
		store_lease_revoke(n->kstore, n->lease, NULL);
	n->lease = 0;
}

static void cmd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bcl_thread *th = arg;
	struct cmd c;
	if (read_all(fd, &c, sizeof(c)) < 0) {
		event_base_loopbreak(th->base);
		return;
	}
	if (c.op == CMD_KILL) {
		struct bcl_node *n = &th->sim->nodes[c.node];
		int64_t t = mono_ns();
		node_stop(th, n, true);
		atomic_store(&th->cmd_done, t);
	} else {
		event_base_loopbreak(th->base);
	}
}

static void *thread_main(void *arg)
{
	struct bcl_thread *th = arg;
	struct bcl_sim *s = th->sim;
	struct store_options o = {.backend = "etcd", .endpoints = s->endpoints, .base = th->base};
	if (store_open(&o, &th->store, &th->err) < 0)
		goto fail;
	for (size_t i = th->first; i < th->first + th->n; i++) {
		struct bcl_node *n = &s->nodes[i];
		n->kstore = th->store;
		if (node_register(th, n, &th->err) < 0)
			goto fail;
		if (s->per_node_watch && store_watch(th->store, BCL_TASKS, true, 0, node_watch_cb,
						     n, &n->watch, &th->err) < 0)
			goto fail;
	}
	if (!s->per_node_watch && store_watch(th->store, BCL_TASKS, true, 0, shared_watch_cb, th,
					      &th->watch, &th->err) < 0)
		goto fail;
	atomic_store(&th->state, 1);
	tick_cb(-1, 0, th);
	event_base_dispatch(th->base);
	goto out;
fail:
	atomic_store(&th->state, -1);
out:
	if (th->watch)
		store_watch_cancel(th->watch);
	th->watch = NULL;
	for (size_t i = th->first; i < th->first + th->n; i++)
		if (!atomic_load(&s->nodes[i].dead) || s->nodes[i].keeper)
			node_stop(th, &s->nodes[i], s->nodes[i].kstore != NULL);
	if (th->store)
		store_close(th->store);
	th->store = NULL;
	return NULL;
}

int bcl_sim_start(struct bcl_sim *s, size_t n_nodes, size_t n_threads, struct shoal_err *err)
{
	pthread_mutex_init(&s->err_lock, NULL);
	s->nodes = calloc(n_nodes, sizeof(*s->nodes));
	s->threads = calloc(n_threads, sizeof(*s->threads));
	if (!s->nodes || !s->threads)
		return shoal_err_set(err, ENOMEM, "out of memory for %zu nodes", n_nodes);
	s->n_nodes = n_nodes;
	s->n_threads = n_threads;
	for (size_t i = 0; i < n_nodes; i++) {
		struct bcl_node *n = &s->nodes[i];
		random_hex_id(n->id);
		snprintf(n->hostname, sizeof(n->hostname), "sim-%05zu", i);
		/* 10.64.0.0/10: records only, nothing is sent there */
		snprintf(n->addr, sizeof(n->addr), "10.%zu.%zu.%zu", 64 + (i >> 16) % 64,
			 (i >> 8) & 255, i & 255);
	}
	s->execs = calloc(s->n_execs, sizeof(*s->execs));
	if (!s->execs)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t k = 0; k < s->n_execs; k++) {
		struct bcl_exec *x = &s->execs[k];
		x->sim = s;
		pthread_mutex_init(&x->lock, NULL);
		pthread_cond_init(&x->cond, NULL);
		struct store_options o = {.backend = "etcd", .endpoints = s->endpoints};
		if (store_open(&o, &x->store, err) < 0)
			return shoal_err_wrap(err, "an executor's store");
		int r = pthread_create(&x->tid, NULL, exec_main, x);
		if (r)
			return shoal_err_errno(err, r, "starting an executor thread");
		x->joinable = true;
	}
	size_t per = n_nodes / n_threads, extra = n_nodes % n_threads, next = 0;
	for (size_t t = 0; t < n_threads; t++) {
		struct bcl_thread *th = &s->threads[t];
		th->sim = s;
		th->cmd[0] = th->cmd[1] = -1;
		th->first = next;
		th->n = per + (t < extra);
		next += th->n;
		th->index = json_object();
		for (size_t i = th->first; i < th->first + th->n; i++) {
			s->nodes[i].th = th;
			json_object_set_new(th->index, s->nodes[i].id, json_integer((json_int_t)i));
		}
		th->base = event_base_new();
		if (!th->index || !th->base || pipe2(th->cmd, O_CLOEXEC) < 0)
			return shoal_err_errno(err, errno ? errno : ENOMEM,
					       "setting up simulated node thread %zu", t);
		th->cmd_ev = event_new(th->base, th->cmd[0], EV_READ | EV_PERSIST, cmd_cb, th);
		th->tick_ev = evtimer_new(th->base, tick_cb, th);
		if (!th->cmd_ev || !th->tick_ev || event_add(th->cmd_ev, NULL) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		int r = pthread_create(&th->tid, NULL, thread_main, th);
		if (r)
			return shoal_err_errno(err, r, "starting a simulated node thread");
		th->joinable = true;
	}
	for (;;) {
		size_t ready = 0;
		for (size_t t = 0; t < n_threads; t++) {
			int st = atomic_load(&s->threads[t].state);
			if (st < 0) {
				*err = s->threads[t].err;
				return -(err->code ? err->code : EIO);
			}
			ready += st == 1;
		}
		if (ready == n_threads)
			return 0;
		if (bcl_interrupted)
			return shoal_err_set(err, EINTR, "interrupted");
		struct timespec ts = {0, 5 * 1000000};
		nanosleep(&ts, NULL);
	}
}

int bcl_sim_kill(struct bcl_sim *s, size_t i, int64_t *ret_ns, struct shoal_err *err)
{
	struct bcl_thread *th = s->nodes[i].th;
	atomic_store(&th->cmd_done, 0);
	struct cmd c = {.op = CMD_KILL, .node = (uint32_t)i};
	if (write_all(th->cmd[1], &c, sizeof(c)) < 0)
		return shoal_err_errno(err, errno, "telling a simulated node to die");
	for (int k = 0; k < 10000 && !atomic_load(&th->cmd_done); k++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	int64_t t = atomic_load(&th->cmd_done);
	if (!t)
		return shoal_err_set(err, ETIMEDOUT, "simulated node %zu did not die in 10 s", i);
	*ret_ns = t;
	return 0;
}

void bcl_sim_stop(struct bcl_sim *s)
{
	for (size_t t = 0; s->threads && t < s->n_threads; t++) {
		struct bcl_thread *th = &s->threads[t];
		if (th->joinable) {
			struct cmd c = {.op = CMD_QUIT};
			if (write_all(th->cmd[1], &c, sizeof(c)) < 0)
				pthread_cancel(th->tid);
			pthread_join(th->tid, NULL);
		}
		if (th->cmd_ev)
			event_free(th->cmd_ev);
		if (th->tick_ev)
			event_free(th->tick_ev);
		if (th->base)
			event_base_free(th->base);
		for (int k = 0; k < 2; k++)
			if (th->cmd[k] >= 0)
				close(th->cmd[k]);
		json_decref(th->index);
	}
	/* the executors after the loops: nothing feeds them any more */
	for (size_t k = 0; s->execs && k < s->n_execs; k++) {
		struct bcl_exec *x = &s->execs[k];
		if (x->joinable) {
			pthread_mutex_lock(&x->lock);
			x->quit = true;
			pthread_cond_signal(&x->cond);
			pthread_mutex_unlock(&x->lock);
			pthread_join(x->tid, NULL);
		}
		for (size_t i = x->work_head; i < x->work_n; i++)
			json_decref(x->work[i].rec);
		free(x->work);
		if (x->store)
			store_close(x->store);
		pthread_mutex_destroy(&x->lock);
		pthread_cond_destroy(&x->cond);
	}
	free(s->execs);
	s->execs = NULL;
	free(s->threads);
	free(s->nodes);
	s->threads = NULL;
	s->nodes = NULL;
}
