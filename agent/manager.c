// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/events.h"
#include "agent/executor.h"
#include "agent/manager-internal.h"
#include "agent/manager.h"
#include "agent/membership.h"
#include "agent/publish.h"
#include "agent/store/store.h"
#include "agent/task-cache.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/orchestrator.h"
#include "sched/scheduler.h"
#include "sched/spec.h"
#include "sched/task-record.h"

/* Store events are coalesced for this long before a reconcile pass. */
#define MANAGER_DEBOUNCE_US 5000
/* A full pass at least this often, whatever happens. */
#define MANAGER_RESYNC_S 2
/* What one pass may write (task records created, placed, deleted) before it
 * yields to the loop; the next pass, on the next loop turn, goes on. A pass
 * reads nothing from the store: tasks and services come from the caches the
 * manager's watch keeps, nodes from the membership's. */
#define MANAGER_PASS_WRITES 256
/* The data plane's sync costs in proportion to tasks and containers: while
 * tasks keep moving it runs at most this often, and at once when a task of
 * this node is about to be stopped (it is drained first). */
#define MANAGER_PUBLISH_MIN_NS (250LL * 1000000)
/* A pass stops starting more work past this much time on the loop, once it
 * has written at least MANAGER_PASS_MIN_WRITES: the API's requests wait for
 * no longer than that (plus one service's orchestration). The minimum is one
 * full transaction (BATCH_MAX): a transaction costs one round trip to the
 * store whatever it holds, and under load a round trip alone outlasts the
 * time budget, so that a smaller minimum paid a round trip per few tasks. */
#define MANAGER_PASS_MIN_WRITES 128
#define MANAGER_PASS_NS		(10LL * 1000000)
/* A pass waits for the watch to deliver this agent's own writes, so that it
 * never decides on a view older than what it wrote; past this long it reads
 * the tasks again from the store instead. */
#define MANAGER_CATCHUP_NS (2LL * 1000000000)
/* Queued writes (see queue_push()): at most this many waiting, this many a
 * loop turn. */
#define MANAGER_QUEUE_MAX   (1u << 20)
#define MANAGER_DRAIN_CHUNK 32
/* A service whose last reconcile asked for nothing is reconciled again for
 * moves of its tasks alone at most this often. */
#define MANAGER_ORCH_QUIET_NS (100LL * 1000000)
/* Passes longer than this are logged (debug), with where the time went. */
#define MANAGER_PASS_LOG_NS (10LL * 1000000)

struct manager {
	struct event *kick;
	struct event *resync;
	struct store_watch *watch;
	bool pending;
	int64_t kick_due; /* mono_ns() of the pending pass */
	bool running;
	/* The task cache: /shoal/tasks/ as the watch delivers it, by task id and
	 * by service id (sid -> {id -> record}); records carry "Version". The
	 * same records parsed, with the manager's per-service state, in tc. */
	json_t *tasks, *by_service;
	struct task_cache *tc;
	/* This node's reports of its tasks (task_observe()): id -> the record
	 * as written, with its new "Version", until the watch delivers that
	 * version (or a later one) to the cache. A report starts from the
	 * newer of the two instead of reading the record back. */
	json_t *reports;
	/* /shoal/services/ as the same watch delivers it: id -> record with
	 * "Version"; and the records in key order for a pass (NULL: rebuilt at
	 * the next one) */
	json_t *services, *services_list;
	bool all_dirty;	    /* reconcile every service (nodes moved, a resync, a reload) */
	uint64_t nodes_gen; /* the node list's generation the last pass saw */
	int64_t seen_rev;   /* the last revision the watch (or a load) delivered */
	int64_t wrote_rev;  /* the last revision this agent wrote under /shoal/ */
	int64_t wait_since;
	bool reload;	      /* the watch failed: read the tasks again */
	bool changed;	      /* the watch delivered something since the data plane's sync */
	bool lost;	      /* ... and it took backends away: sync at once */
	int64_t last_took;    /* the last pass's time on the loop */
	int64_t last_publish; /* when the data plane was last synced */
	/* writes waiting for their turn (see queue_push()) */
	struct queued_write *wq;
	size_t wq_head, wq_n, wq_cap;
	struct event *drain;
	/* this pass */
	int64_t pass_start;
	unsigned writes;
	bool more; /* a budget ran out: another pass on the next loop turn */
};

static struct manager *mgr(struct agent *a)
{
	return a->manager;
}

struct task_cache *mgr_task_cache(struct agent *a)
{
	struct manager *m = mgr(a);
	return m ? m->tc : NULL;
}

/* ---- the task cache ---- */

static const char *sid_of(json_t *t)
{
	return json_string_value(json_object_get(t, "ServiceID")) ?: "";
}

int64_t mgr_task_rev(json_t *t)
{
	return json_integer_value(json_object_get(json_object_get(t, "Version"), "Index"));
}

static void cache_del(struct manager *m, const char *id)
{
	task_cache_del(m->tc, id);
	json_object_del(m->reports, id);
	json_t *old = json_object_get(m->tasks, id);
	if (!old)
		return;
	const char *osid = sid_of(old);
	json_t *set = json_object_get(m->by_service, osid);
	if (set) {
		json_object_del(set, id);
		if (json_object_size(set) == 0)
			json_object_del(m->by_service, osid);
	}
	json_object_del(m->tasks, id);
}

/* Steals rec. */
static void cache_put(struct manager *m, const char *id, json_t *rec)
{
	cache_del(m, id);
	const char *sid = sid_of(rec);
	json_t *set = json_object_get(m->by_service, sid);
	if (!set) {
		set = json_object();
		json_object_set_new(m->by_service, sid, set);
	}
	json_object_set(set, id, rec);
	json_object_set_new(m->tasks, id, rec);
	json_t *own = json_object_get(m->reports, id);
	if (own && mgr_task_rev(own) <= mgr_task_rev(rec))
		json_object_del(m->reports, id);
	if (task_cache_put(m->tc, id, rec, mgr_task_rev(rec)) < 0)
		log_warn("manager: task %s: out of memory for the task cache", id);
}

static json_t *kv_record(const struct store_kv *kv)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	if (!j || !json_is_object(j)) {
		log_warn("store: %s is not a JSON object; skipped", kv->key);
		json_decref(j);
		return NULL;
	}
	json_object_set_new(j, "Version",
			    json_pack("{s:I}", "Index", (json_int_t)kv->mod_revision));
	return j;
}

static void svc_put(struct manager *m, const char *id, json_t *rec)
{
	json_object_set_new(m->services, id, rec);
	json_decref(m->services_list);
	m->services_list = NULL;
}

static void svc_del(struct manager *m, const char *id)
{
	if (json_object_del(m->services, id) == 0) {
		json_decref(m->services_list);
		m->services_list = NULL;
	}
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The service records in key order, as a read of the prefix returns them; a
 * reference of the caller's. */
static json_t *services_list(struct manager *m)
{
	if (!m->services_list) {
		size_t n = json_object_size(m->services), i = 0;
		const char **ids = calloc(n ? n : 1, sizeof(*ids));
		json_t *arr = json_array();
		const char *id;
		json_t *v;
		if (!ids || !arr) {
			free(ids);
			json_decref(arr);
			return NULL;
		}
		json_object_foreach(m->services, id, v) ids[i++] = id;
		qsort(ids, n, sizeof(*ids), by_key);
		for (i = 0; i < n; i++)
			json_array_append(arr, json_object_get(m->services, ids[i]));
		free(ids);
		m->services_list = arr;
	}
	return json_incref(m->services_list);
}

/* The services, read once at the start and again only when the watch has to
 * start over; the watch resumes from the tasks' read, before this one, and
 * what it delivers again is skipped by version. */
static int services_load(struct agent *a, struct shoal_err *err)
{
	struct manager *m = mgr(a);
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, CLUSTER_SERVICES, true, 0, &kvs, err);
	if (r < 0)
		return r;
	json_object_clear(m->services);
	json_decref(m->services_list);
	m->services_list = NULL;
	for (size_t i = 0; i < kvs->n; i++) {
		json_t *j = kv_record(&kvs->kvs[i]);
		if (j)
			svc_put(m, kvs->kvs[i].key + strlen(CLUSTER_SERVICES), j);
	}
	store_kvs_free(kvs);
	return 0;
}

static int cache_load(struct agent *a, struct shoal_err *err)
{
	struct manager *m = mgr(a);
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, CLUSTER_TASKS, true, 0, &kvs, err);
	if (r < 0)
		return r;
	json_decref(m->tasks);
	json_decref(m->by_service);
	m->tasks = json_object();
	m->by_service = json_object();
	task_cache_clear(m->tc);
	json_object_clear(m->reports);
	m->all_dirty = true;
	for (size_t i = 0; i < kvs->n; i++) {
		json_t *j = kv_record(&kvs->kvs[i]);
		if (j)
			cache_put(m, kvs->kvs[i].key + strlen(CLUSTER_TASKS), j);
	}
	if (kvs->revision > m->seen_rev)
		m->seen_rev = kvs->revision;
	store_kvs_free(kvs);
	if ((r = services_load(a, err)) < 0)
		return r;
	m->reload = false;
	return 0;
}

void manager_note_write(struct agent *a, const char *key, int64_t rev)
{
	struct manager *m = mgr(a);
	if (m && rev > m->wrote_rev && strncmp(key, "/shoal/", 7) == 0)
		m->wrote_rev = rev;
}

json_t *manager_tasks(struct agent *a)
{
	struct manager *m = mgr(a);
	return m ? m->tasks : NULL;
}

json_t *manager_services(struct agent *a)
{
	struct manager *m = mgr(a);
	return m ? m->services : NULL;
}

json_t *manager_service_tasks(struct agent *a, const char *service_id)
{
	struct manager *m = mgr(a);
	return m ? json_object_get(m->by_service, service_id) : NULL;
}

/* ---- task records ---- */

void task_record_sync(json_t *rec)
{
	struct orch_task t = {0};
	if (orch_task_from_json(json_object_get(rec, "Orch"), &t, NULL) < 0)
		return;
	task_record_fill(rec, &t);
	orch_task_clear(&t);
}

json_t *task_record_new(const struct orch_task *t, const char *service_name, json_t *task_spec)
{
	json_t *rec = json_pack("{s:o, s:s, s:O}", "Orch", orch_task_to_json(t), "ServiceName",
				service_name, "Spec", task_spec ? task_spec : json_null());
	if (rec)
		task_record_fill(rec, t);
	return rec;
}

/* What a report of task id starts from: a copy of this node's last report or
 * of the cached record, whichever is newer, and its version. False when
 * neither is there. */
static bool task_known(struct manager *m, const char *id, json_t **ret, int64_t *ret_rev)
{
	struct task_entry *e = m ? task_cache_get(m->tc, id) : NULL;
	json_t *own = m ? json_object_get(m->reports, id) : NULL;
	json_t *src = own && (!e || mgr_task_rev(own) > e->rev) ? own : e ? e->rec : NULL;
	if (!src)
		return false;
	*ret = json_deep_copy(src);
	*ret_rev = src == own ? mgr_task_rev(own) : e->rev;
	return *ret != NULL;
}

int task_observe(struct agent *a, const char *task_id, enum task_state state, const char *message,
		 const char *error, const char *container_id, int exit_code, int health)
{
	struct manager *m = mgr(a);
	char key[128];
	snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS, task_id);
	struct task_report rep = {.state = state,
				  .message = message,
				  .error = error,
				  .container_id = container_id,
				  .exit_code = exit_code,
				  .health = health};
	/* the first try from what this node knows (a stale version fails
	 * the compare-and-swap: then from a fresh read) */
	for (int attempt = 0; attempt < 5; attempt++) {
		json_t *rec = NULL;
		int64_t rev = 0, wrote = 0;
		if ((attempt > 0 || !task_known(m, task_id, &rec, &rev)) &&
		    cluster_get(a, key, &rec, &rev, NULL) < 0)
			return -ENOENT;
		int r = task_record_observe(rec, &rep, now_ns());
		if (r <= 0) {
			json_decref(rec);
			return r;
		}
		r = cluster_put(a, key, rec, rev, &wrote, NULL);
		if (r >= 0 && m && m->reports) {
			json_object_set_new(rec, "Version",
					    json_pack("{s:I}", "Index", (json_int_t)wrote));
			json_object_set(m->reports, task_id, rec);
		}
		json_decref(rec);
		if (r != -EAGAIN)
			return r;
	}
	return -EAGAIN;
}

/* ---- reconcile ---- */

/* One orchestrator call's actions go to the store as one transaction (chunked
 * at the store's per-transaction limit), each write guarded by the revision
 * the orchestrator saw: if anything moved meanwhile nothing is written and
 * the next pass recomputes. */
#define BATCH_MAX 128

struct batch {
	struct agent *agent;
	struct store_cmp cmps[BATCH_MAX];
	struct store_op ops[BATCH_MAX];
	char *keys[BATCH_MAX];
	char *vals[BATCH_MAX];
	size_t n;
	bool failed;
	struct task_svc *defer; /* the writes go to the queue, for this service */
};

/* What a transaction of this agent's wrote, into the task and service caches
 * at once at the revision it got, rather than waited for through the watch:
 * under load the watch runs seconds behind, and a pass that waited for it
 * held up every placement behind the fan-out of the nodes' own writes. A
 * write of anything else is still waited for. */
static void batch_committed(struct batch *b, int64_t rev)
{
	struct manager *m = mgr(b->agent);
	size_t plen = strlen(CLUSTER_TASKS);
	bool others = false;
	for (size_t i = 0; i < b->n; i++) {
		const char *k = b->keys[i];
		size_t slen = strlen(CLUSTER_SERVICES);
		if (m && strncmp(k, CLUSTER_SERVICES, slen) == 0 && k[slen]) {
			json_t *old = json_object_get(m->services, k + slen);
			if (old && mgr_task_rev(old) > rev)
				continue;
			struct store_kv kv = {.key = b->keys[i],
					      .value = b->vals[i],
					      .value_len = b->vals[i] ? strlen(b->vals[i]) : 0,
					      .mod_revision = rev};
			json_t *j = b->vals[i] ? kv_record(&kv) : NULL;
			if (j)
				svc_put(m, k + slen, j);
			else if (!b->vals[i])
				svc_del(m, k + slen);
			else
				others = true;
			continue;
		}
		if (!m || strncmp(k, CLUSTER_TASKS, plen) != 0 || !k[plen]) {
			others = true;
			continue;
		}
		const char *id = k + plen;
		json_t *old = json_object_get(m->tasks, id);
		if (old && mgr_task_rev(old) > rev)
			continue;
		m->changed = true;
		if (!b->vals[i]) {
			cache_del(m, id);
			continue;
		}
		struct store_kv kv = {.key = b->keys[i],
				      .value = b->vals[i],
				      .value_len = strlen(b->vals[i]),
				      .mod_revision = rev};
		json_t *j = kv_record(&kv);
		if (j)
			cache_put(m, id, j);
		else
			others = true;
	}
	if (others)
		manager_note_write(b->agent, b->keys[0], rev);
}

static void batch_flush(struct batch *b)
{
	if (b->n > 0 && !b->failed) {
		struct store_txn_result res = {0};
		struct shoal_err err = {0};
		if (store_txn(b->agent->store, b->cmps, b->n, b->ops, b->n, NULL, 0, &res, &err) <
		    0) {
			log_warn("manager: writing %zu change(s): %s", b->n, err.msg);
			b->failed = true;
		} else if (!res.succeeded) {
			log_debug("manager: %zu change(s) raced with another write; recomputing",
				  b->n);
			b->failed = true;
		} else {
			batch_committed(b, res.revision);
		}
		store_txn_result_clear(&res);
		cluster_kick(b->agent);
	}
	for (size_t i = 0; i < b->n; i++) {
		free(b->keys[i]);
		free(b->vals[i]);
	}
	b->n = 0;
}

/* Writes past a pass's budget that nothing else depends on (tasks of a
 * service removed or scaled down: stopped, then deleted) wait here, already
 * encoded with their guards, and go out a chunk per loop turn: a service of
 * ten thousand tasks is not reconciled again for each chunk. */
struct queued_write {
	char *key, *val; /* val NULL: delete */
	int64_t rev;
	struct task_svc *svc; /* its ->queued counts this */
};

static int queue_push(struct manager *m, struct task_svc *ts, char *key, char *val, int64_t rev)
{
	if (m->wq_n - m->wq_head >= MANAGER_QUEUE_MAX)
		return -E2BIG;
	if (m->wq_n == m->wq_cap) {
		if (m->wq_head > 0) {
			memmove(m->wq, m->wq + m->wq_head, (m->wq_n - m->wq_head) * sizeof(*m->wq));
			m->wq_n -= m->wq_head;
			m->wq_head = 0;
		}
		if (m->wq_n == m->wq_cap) {
			size_t cap = m->wq_cap ? m->wq_cap * 2 : 256;
			struct queued_write *q = realloc(m->wq, cap * sizeof(*q));
			if (!q)
				return -ENOMEM;
			m->wq = q;
			m->wq_cap = cap;
		}
	}
	m->wq[m->wq_n++] = (struct queued_write){.key = key, .val = val, .rev = rev, .svc = ts};
	ts->queued++;
	if (!evtimer_pending(m->drain, NULL)) {
		struct timeval tv = {0, 0};
		evtimer_add(m->drain, &tv);
	}
	return 0;
}

/* Takes key and v (NULL: delete). expect_rev 0: the key must not exist yet. */
static void batch_put(struct batch *b, char *k, char *v, int64_t expect_rev)
{
	struct manager *m = mgr(b->agent);
	if (b->defer) {
		if (!m || queue_push(m, b->defer, k, v, expect_rev) < 0) {
			free(k);
			free(v);
			b->failed = true;
		}
		return;
	}
	/* a key written twice in one call: the later write wins, the first guard stays
	 * (a transaction may not touch a key twice) */
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->keys[i], k) == 0) {
			free(k);
			free(b->vals[i]);
			b->vals[i] = v;
			b->ops[i].type = v ? STORE_OP_PUT : STORE_OP_DELETE;
			b->ops[i].value = v;
			b->ops[i].value_len = v ? strlen(v) : 0;
			return;
		}
	if (b->n == BATCH_MAX)
		batch_flush(b);
	size_t i = b->n++;
	if (m)
		m->writes++;
	b->keys[i] = k;
	b->vals[i] = v;
	b->cmps[i] = (struct store_cmp){
		.key = k, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = expect_rev};
	b->ops[i] = (struct store_op){.type = v ? STORE_OP_PUT : STORE_OP_DELETE,
				      .key = k,
				      .value = v,
				      .value_len = v ? strlen(v) : 0};
}

/* expect_rev 0: the key must not exist yet. */
static void batch_add(struct batch *b, const char *key, json_t *obj, int64_t expect_rev)
{
	char *k = strdup(key), *v = NULL;
	if (obj) {
		json_t *copy = json_copy(obj);
		json_object_del(copy, "Version");
		v = json_dumps(copy, JSON_COMPACT);
		json_decref(copy);
	}
	if (!k || (obj && !v)) {
		free(k);
		free(v);
		b->failed = true;
		return;
	}
	batch_put(b, k, v, expect_rev);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct manager *m = mgr(a);
	struct batch b = {.agent = a};
	size_t n = 0;
	while (m->wq_head < m->wq_n && n < MANAGER_DRAIN_CHUNK) {
		struct queued_write *w = &m->wq[m->wq_head++];
		w->svc->queued--;
		w->svc->dirty = true;
		batch_put(&b, w->key, w->val, w->rev);
		n++;
	}
	batch_flush(&b);
	if (b.failed) {
		/* something moved under them: the orchestrator decides again */
		while (m->wq_head < m->wq_n) {
			struct queued_write *w = &m->wq[m->wq_head++];
			w->svc->queued--;
			w->svc->dirty = true;
			free(w->key);
			free(w->val);
		}
	}
	if (m->wq_head == m->wq_n) {
		m->wq_head = m->wq_n = 0;
	} else {
		struct timeval tv = {0, 0};
		evtimer_add(m->drain, &tv);
	}
	manager_kick(a);
}

/* Applies START, SHUTDOWN, ORPHAN to the stored task (one of ts's). */
static void apply_to_task(struct batch *b, struct task_cache *tc, struct task_svc *ts,
			  const struct orch_action *act, int64_t now)
{
	struct task_entry *e = task_cache_get(tc, act->task_id);
	if (!e || e->svc != ts || !e->orch_ok)
		return;
	json_t *t = e->rec;
	struct orch_task ot = {0};
	if (orch_task_copy(&ot, &e->orch) < 0)
		return;
	struct shoal_err err = {0};
	if (orch_action_apply(&ot, act, now, &err) == 0) {
		json_t *rec = json_deep_copy(t);
		json_object_set_new(rec, "Orch", orch_task_to_json(&ot));
		task_record_fill(rec, &ot);
		char key[128];
		snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS, act->task_id);
		batch_add(b, key, rec, mgr_task_rev(t));
		json_decref(rec);
	} else {
		log_debug("manager: %s on task %s: %s", orch_action_type_name(act->type),
			  act->task_id, err.msg);
	}
	orch_task_clear(&ot);
}

static json_t *spec_for_version(json_t *svc, uint64_t version)
{
	uint64_t cur = (uint64_t)json_integer_value(json_object_get(svc, "SpecVersion"));
	if (version != cur && json_object_get(svc, "PreviousSpec") &&
	    (uint64_t)json_integer_value(json_object_get(svc, "PreviousSpecVersion")) == version)
		return json_object_get(svc, "PreviousSpec");
	return json_object_get(svc, "Spec");
}

/* The orchestrator asked for the previous spec: swap it in (on s, a copy of the
 * service record that the transaction writes). */
static void service_rollback(json_t *s, uint64_t to_version)
{
	json_t *prev = json_object_get(s, "PreviousSpec");
	if (!prev)
		return;
	json_t *cur = json_incref(json_object_get(s, "Spec"));
	json_int_t curv = json_integer_value(json_object_get(s, "SpecVersion"));
	json_object_set(s, "Spec", prev);
	json_object_set_new(s, "PreviousSpec", cur);
	json_object_set_new(s, "SpecVersion", json_integer((json_int_t)to_version));
	json_object_set_new(s, "PreviousSpecVersion", json_integer(curv));
}

static bool budget_spent(struct manager *m)
{
	/* the time limit leaves room for some progress whatever the rest of the
	 * pass costs, else a pass slower than it would never write */
	return m->writes >= MANAGER_PASS_WRITES || (m->writes >= MANAGER_PASS_MIN_WRITES &&
						    mono_ns() - m->pass_start > MANAGER_PASS_NS);
}

/* The budget is spent: what is left waits for another pass. */
static bool over_budget(struct manager *m)
{
	if (budget_spent(m)) {
		m->more = true;
		return true;
	}
	return false;
}

static int64_t reconcile_service(struct agent *a, json_t *svc, struct task_svc *ts, json_t *nodes,
				 struct sched_cluster *cl, int64_t now)
{
	struct manager *m = mgr(a);
	const char *sid = json_string_value(json_object_get(svc, "ID"));
	json_t *spec_json = json_object_get(svc, "Spec");
	struct service_spec *spec = mgr_parse_spec(spec_json);
	if (!sid || !spec) {
		log_warn("manager: service %s has an unreadable spec; skipped", sid ? sid : "?");
		service_spec_free(spec);
		return 0;
	}
	/* the tasks as the cache parsed them; the orchestrator only reads them */
	size_t nt = ts ? ts->n : 0;
	const struct orch_task **ots = calloc(nt ? nt : 1, sizeof(*ots));
	size_t n_ok = 0;
	for (struct task_entry *e = ts ? ts->tasks : NULL; ots && e && n_ok < nt; e = e->snext)
		if (e->orch_ok)
			ots[n_ok++] = &e->orch;
	size_t nn = json_array_size(nodes);
	struct orch_node *ons = calloc(nn ? nn : 1, sizeof(*ons));
	struct sched_request greq;
	mgr_request_from_spec(sid, spec, 1, &greq);
	greq.dry_run = true;
	for (size_t i = 0; ons && i < nn; i++) {
		json_t *n = json_array_get(nodes, i);
		ons[i].id = json_string_value(json_object_get(n, "ID"));
		ons[i].ready = strcmp(json_string_value(json_object_get(
					      json_object_get(n, "Status"), "State"))
					      ?: "",
				      "ready") == 0;
		ons[i].down_since_ns = membership_down_since(a, ons[i].id);
		ons[i].availability = mgr_node_avail(n);
		int idx = sched_cluster_find_node(cl, ons[i].id);
		/* eligibility for global mode: constraints only, not free resources */
		struct sched_request creq = greq;
		creq.reservations = (struct sched_resources){0};
		creq.ports = NULL;
		creq.n_ports = 0;
		creq.max_replicas = 0;
		ons[i].eligible =
			idx >= 0 && sched_place_on_node(cl, &creq, (uint32_t)idx, NULL) == 0;
	}
	struct orch_update upd = {0};
	if (json_object_get(svc, "Updater"))
		orch_update_from_json(json_object_get(svc, "Updater"), &upd, NULL);
	struct orch_service os = {
		.id = sid,
		.mode = spec->mode == SERVICE_GLOBAL ? ORCH_GLOBAL : ORCH_REPLICATED,
		.replicas = spec->replicas,
		.spec_version = (uint64_t)json_integer_value(json_object_get(svc, "SpecVersion")),
		.prev_spec_version =
			(uint64_t)json_integer_value(json_object_get(svc, "PreviousSpecVersion")),
		.restart = spec->task.restart,
		.update = spec->update,
		.rollback = spec->rollback,
		.stop_grace_ns = spec->task.container.stop_grace_period_ns,
		.removed = json_is_true(json_object_get(svc, "Removed")),
	};
	if (os.spec_version == 0)
		os.spec_version = 1;
	struct orch_input in = {.service = &os,
				.task_ptrs = ots,
				.n_tasks = n_ok,
				.nodes = ons,
				.n_nodes = nn,
				.update = &upd,
				.history_limit = (uint64_t)a->cfg.task_history_limit,
				/* no more than a pass may write */
				.max_new_slots = MANAGER_PASS_WRITES};
	struct orch_result res = {0};
	struct shoal_err err = {0};
	int64_t wake = 0;
	if (ts)
		ts->quiet = false;
	if (ots && ons && orch_reconcile(&in, now, &res, &err) == 0) {
		wake = res.wake_ns;
		if (ts)
			ts->quiet = res.n_actions == 0 && !res.update_changed && !res.service_gone;
		struct batch b = {.agent = a};
		json_t *svc_new = json_deep_copy(svc);
		bool svc_changed = res.update_changed;
		bool deferred = false; /* a deletion queued */
		struct batch q = {.agent = a, .defer = ts};
		for (size_t i = 0; i < res.n_actions; i++) {
			const struct orch_action *act = &res.actions[i];
			char key[128];
			switch (act->type) {
			case ORCH_ACT_CREATE: {
				/* New slots (a scale up) are independent of each other
				 * and of the rest: past the budget they wait for the
				 * next pass, which makes them again. A replacement
				 * goes with the shutdown of what it replaces. */
				if (!act->task.replaces[0] && over_budget(m))
					break;
				char id[26], hex[65];
				random_hex_id(hex);
				memcpy(id, hex, 25);
				id[25] = '\0';
				struct orch_task nt_ = {0};
				if (orch_task_from_action(&nt_, act, id, NULL) < 0)
					break;
				json_t *tspec = json_object_get(
					spec_for_version(svc, nt_.spec_version), "TaskTemplate");
				json_t *rec = task_record_new(
					&nt_,
					json_string_value(json_object_get(spec_json, "Name"))
						?: sid,
					tspec);
				snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS, id);
				batch_add(&b, key, rec, 0);
				json_decref(rec);
				orch_task_clear(&nt_);
				break;
			}
			case ORCH_ACT_SHUTDOWN:
				/* What nothing replaces (a slot scaled away, a service
				 * removed) is queued past the budget. */
				if ((act->cause == ORCH_STOP_SCALE_DOWN ||
				     act->cause == ORCH_STOP_SERVICE_REMOVED) &&
				    ts && budget_spent(m)) {
					apply_to_task(&q, m->tc, ts, act, now);
					break;
				}
				apply_to_task(&b, m->tc, ts, act, now);
				break;
			case ORCH_ACT_START:
			case ORCH_ACT_ORPHAN:
				apply_to_task(&b, m->tc, ts, act, now);
				break;
			case ORCH_ACT_DELETE: {
				struct task_entry *t = task_cache_get(m->tc, act->task_id);
				if (t && t->svc == ts) {
					bool later = budget_spent(m);
					deferred = deferred || later;
					snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS,
						 act->task_id);
					batch_add(later ? &q : &b, key, NULL, t->rev);
				}
				break;
			}
			case ORCH_ACT_ROLLBACK:
				service_rollback(svc_new, act->spec_version);
				svc_changed = true;
				break;
			}
		}
		char key[128];
		snprintf(key, sizeof(key), "%s%s", CLUSTER_SERVICES, sid);
		if (res.service_gone && !deferred) {
			batch_add(&b, key, NULL, mgr_task_rev(svc));
		} else if (svc_changed) {
			json_object_set_new(svc_new, "Updater", orch_update_to_json(&upd));
			batch_add(&b, key, svc_new, mgr_task_rev(svc));
		}
		batch_flush(&b);
		/* a write that did not go through comes back with no event to
		 * say so: recompute next time */
		if (b.failed && ts)
			ts->dirty = true;
		json_decref(svc_new);
	} else if (err.msg[0]) {
		log_warn("manager: service %s: %s", sid, err.msg);
	}
	orch_result_clear(&res);
	orch_update_clear(&upd);
	free(ots);
	free(ons);
	service_spec_free(spec);
	return wake;
}

/* A pending task already says this: nothing to write (most of a service the
 * node cannot hold stays so, pass after pass). */
static bool pending_says(struct task_entry *e, const char *why)
{
	if (e->orch_ok) /* Status.Err is the orchestrator's err (task_record_sync()) */
		return e->state == TASK_PENDING && strcmp(e->orch.err, why) == 0;
	json_t *st = json_object_get(e->rec, "Status");
	return strcmp(json_string_value(json_object_get(st, "State")) ?: "", "pending") == 0 &&
	       strcmp(json_string_value(json_object_get(st, "Err")) ?: "", why) == 0;
}

/* Moves a task to assigned on node_id, or to pending with why. */
static void assign_task(struct batch *b, struct task_entry *e, const char *node_id, const char *why,
			int64_t now)
{
	json_t *t = e->rec;
	struct orch_task ot = {0};
	if (!e->orch_ok || orch_task_copy(&ot, &e->orch) < 0)
		return;
	if (ot.state < TASK_PENDING)
		orch_task_set_state(&ot, TASK_PENDING, now, "pending", NULL);
	if (node_id) {
		snprintf(ot.node_id, sizeof(ot.node_id), "%s", node_id);
		orch_task_set_state(&ot, TASK_ASSIGNED, now, "scheduled on node", NULL);
		ot.err[0] = '\0';
	} else {
		snprintf(ot.err, sizeof(ot.err), "%s", why);
		snprintf(ot.message, sizeof(ot.message), "pending task scheduling");
	}
	json_t *rec = json_deep_copy(t);
	json_object_set_new(rec, "Orch", orch_task_to_json(&ot));
	task_record_fill(rec, &ot);
	orch_task_clear(&ot);
	if (!json_equal(rec, t)) {
		char key[128];
		snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS,
			 json_string_value(json_object_get(rec, "ID")) ?: "");
		batch_add(b, key, rec, mgr_task_rev(t));
	}
	json_decref(rec);
}

static struct service_spec *task_service_spec(json_t *svc, struct task_entry *e)
{
	json_t *sj = json_pack("{s:s, s:O, s:O}", "Name", "x", "TaskTemplate",
			       json_object_get(e->rec, "Spec"), "EndpointSpec",
			       json_object_get(json_object_get(svc, "Spec"), "EndpointSpec"));
	struct service_spec *spec = mgr_parse_spec(sj);
	json_decref(sj);
	return spec;
}

/* Pending tasks of a service (desired running or held) go to nodes: global
 * ones come with their node (checked), the others are placed as a batch. At
 * most the pass's write budget is written; the rest waits for the next pass. */
static void schedule_service(struct agent *a, json_t *svc, struct task_svc *ts,
			     struct sched_cluster *cl, uint64_t cl_sig)
{
	struct manager *m = mgr(a);
	const char *sid = json_string_value(json_object_get(svc, "ID"));
	struct task_entry **pending = calloc(ts->n ? ts->n : 1, sizeof(*pending));
	size_t n = 0;
	struct batch b = {.agent = a};
	int64_t now = now_ns();
	if (!pending)
		return;
	/* The same tasks waiting (each write is a new revision), on the same
	 * cluster, for the same service record: the scheduler would say what
	 * it said last time, which changed nothing (thousands of tasks a node
	 * cannot take wait so, pass after pass). */
	uint64_t sig = (cl_sig ^ (uint64_t)mgr_task_rev(svc)) * 1099511628211ull;
	for (struct task_entry *t = ts->tasks; t; t = t->snext)
		if ((t->desired == TASK_RUNNING || t->desired == TASK_PREPARING) &&
		    (t->state == TASK_NEW || t->state == TASK_PENDING))
			sig = (sig ^ (uint64_t)t->rev) * 1099511628211ull;
	if (ts->sched_idle && ts->sched_sig == sig) {
		free(pending);
		return;
	}
	unsigned writes0 = m->writes;
	bool more0 = m->more;
	m->more = false;
	for (struct task_entry *t = ts->tasks; t; t = t->snext) {
		if ((t->desired != TASK_RUNNING && t->desired != TASK_PREPARING) ||
		    (t->state != TASK_NEW && t->state != TASK_PENDING))
			continue;
		if (!*t->node_id) {
			pending[n++] = t;
			continue;
		}
		if (over_budget(m))
			continue;
		struct service_spec *spec = task_service_spec(svc, t);
		if (!spec)
			continue;
		struct sched_request req;
		mgr_request_from_spec(sid, spec, 1, &req);
		int idx = sched_cluster_find_node(cl, t->node_id);
		struct shoal_err err = {0};
		if (idx >= 0 && sched_place_on_node(cl, &req, (uint32_t)idx, &err) == 0)
			assign_task(&b, t, t->node_id, NULL, now);
		else if (!pending_says(t, err.msg[0] ? err.msg : "the node is not in the cluster"))
			assign_task(&b, t, NULL,
				    err.msg[0] ? err.msg : "the node is not in the cluster", now);
		service_spec_free(spec);
	}
	if (n == 0)
		goto out;
	/* the spec the pending tasks run; tasks of one service share reservations
	 * and placement rules across versions closely enough to place as a batch */
	struct service_spec *spec = task_service_spec(svc, pending[0]);
	if (!spec)
		goto out;
	struct sched_request req;
	mgr_request_from_spec(sid, spec, (uint32_t)n, &req);
	struct sched_result res = {0};
	struct shoal_err err = {0};
	if (sched_place(cl, &req, &res, &err) < 0) {
		log_warn("manager: scheduling %s: %s", sid, err.msg);
	} else {
		const char *why = res.explanation ? res.explanation : "no suitable node";
		for (size_t k = 0; k < n; k++) {
			struct task_entry *pt = pending[k];
			bool placed = k < res.count && res.nodes[k] >= 0;
			if (!placed && pending_says(pt, why))
				continue;
			if (over_budget(m))
				break;
			assign_task(&b, pt,
				    placed ? sched_cluster_node_id(cl, (uint32_t)res.nodes[k])
					   : NULL,
				    why, now);
		}
	}
	sched_result_done(&res);
	service_spec_free(spec);
out:
	batch_flush(&b);
	free(pending);
	ts->sched_sig = sig;
	ts->sched_idle = m->writes == writes0 && !m->more && !b.failed;
	m->more = m->more || more0;
}

/* The tasks observed running, as an array (references): the data plane's
 * backends, and the only tasks that hold host ports (a task gets its port
 * status once running, and every state after running has ended it). */
static json_t *running_array(struct manager *m)
{
	json_t *arr = json_array();
	for (struct task_entry *e = task_cache_running(m->tc); e; e = e->rnext)
		json_array_append(arr, e->rec);
	return arr;
}

/* Whether a service needs the orchestrator this pass: a task of it or its
 * record moved since its last reconcile, its wake-up time came, or everything
 * is looked at again (nodes moved, the periodic resync). The orchestrator
 * yields nothing new otherwise (its contract, see sched/orchestrator.h). */
static bool service_due(struct manager *m, struct task_svc *ts, json_t *svc, int64_t now,
			int64_t *ret_wake)
{
	/* its writes still queued: decided on once they are out */
	if (ts->queued)
		return false;
	if (m->all_dirty || ts->rev != mgr_task_rev(svc) || (ts->wake_ns && now >= ts->wake_ns))
		return true;
	if (!ts->dirty)
		return false;
	/* Only its tasks moved, and the last reconcile asked for nothing: a
	 * thousand tasks starting move on every pass, and what they need of
	 * the orchestrator (a failure replaced) can wait this long. */
	if (ts->quiet && now - ts->orch_ns < MANAGER_ORCH_QUIET_NS) {
		*ret_wake = ts->orch_ns + MANAGER_ORCH_QUIET_NS;
		return false;
	}
	return true;
}

/* The leader's part of a pass: every service orchestrated, its tasks placed
 * over the live nodes, the tasks of removed services deleted. */
static void manager_lead(struct agent *a, json_t *nodes, json_t *services, int64_t now,
			 int64_t start, int64_t *wake, unsigned *n_orch, int64_t *t_cluster,
			 int64_t *t_reconcile)
{
	struct manager *m = mgr(a);
	uint64_t cl_sig = 0;
	struct sched_cluster *cl = mgr_build_cluster(a, nodes, m->tc, NULL, &cl_sig);
	*t_cluster = mono_ns() - start;
	json_t *known = json_object();
	size_t i;
	json_t *svc;
	json_array_foreach(services, i, svc)
	{
		const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
		json_object_set(known, sid, json_true());
		struct task_svc *ts = task_cache_svc(m->tc, sid, true);
		int64_t w = 0;
		if (!ts) {
			w = reconcile_service(a, svc, NULL, nodes, cl, now);
		} else if (service_due(m, ts, svc, now, &w)) {
			ts->dirty = false;
			ts->orch_ns = now;
			ts->rev = mgr_task_rev(svc);
			bool more = m->more;
			m->more = false;
			w = reconcile_service(a, svc, ts, nodes, cl, now);
			ts->wake_ns = w;
			/* creates left for the next pass */
			if (m->more)
				ts->dirty = true;
			m->more = m->more || more;
			(*n_orch)++;
		} else if (!w || (ts->wake_ns && ts->wake_ns < w)) {
			w = ts->wake_ns;
		}
		if (w > 0 && (*wake == 0 || w < *wake))
			*wake = w;
	}
	m->all_dirty = false;
	/* the manager's state of services that are gone, with no task left */
	size_t sb = 0;
	for (struct task_svc *ts = task_cache_svc_next(m->tc, &sb, NULL), *next; ts; ts = next) {
		next = task_cache_svc_next(m->tc, &sb, ts);
		if (!ts->n && !ts->queued && !json_object_get(known, ts->id))
			task_cache_svc_drop(m->tc, ts);
	}
	/* Tasks whose service record is gone entirely are removed. */
	struct batch b = {.agent = a};
	const char *sid;
	json_t *set;
	json_object_foreach(m->by_service, sid, set)
	{
		if (json_object_get(known, sid))
			continue;
		const char *tid;
		json_t *t;
		json_object_foreach(set, tid, t)
		{
			if (over_budget(m))
				break;
			char key[128];
			snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS, tid);
			batch_add(&b, key, NULL, mgr_task_rev(t));
		}
	}
	batch_flush(&b);
	json_decref(known);
	*t_reconcile = mono_ns() - start;
	/* Place what needs a node; the orchestrator's new tasks come in the
	 * next pass, once the watch has delivered them. Placement has a budget
	 * of its own, so that tasks run while more are made. */
	m->writes = 0;
	m->pass_start = mono_ns();
	json_array_foreach(services, i, svc)
	{
		struct task_svc *ts = task_cache_svc(
			m->tc, json_string_value(json_object_get(svc, "ID")) ?: "", false);
		if (ts && ts->n)
			schedule_service(a, svc, ts, cl, cl_sig);
	}
	sched_cluster_free(cl);
}

/* The next pass in delay_ns (the pending one, if it comes later). */
static void kick_in(struct manager *m, int64_t delay_ns)
{
	struct timeval tv = {.tv_sec = delay_ns / 1000000000,
			     .tv_usec = (delay_ns % 1000000000) / 1000};
	event_add(m->kick, &tv);
	m->kick_due = mono_ns() + delay_ns;
	m->pending = true;
}

static void manager_pass(struct agent *a)
{
	struct manager *m = mgr(a);
	m->pending = false;
	m->more = false;
	m->writes = 0;
	m->pass_start = mono_ns();
	int64_t start = m->pass_start;
	json_t *nodes = NULL, *services = NULL;
	struct shoal_err err = {0};
	if (m->reload && cache_load(a, &err) < 0) {
		log_warn("manager: reading the tasks: %s", err.msg);
		return;
	}
	/* a node's state or availability concerns every service */
	uint64_t gen = membership_nodes_generation(a);
	if (gen != m->nodes_gen) {
		m->nodes_gen = gen;
		m->all_dirty = true;
	}
	if (mgr_nodes_load(a, &nodes, &err) < 0 || !(services = services_list(m))) {
		log_warn("manager: the cluster's state: %s",
			 err.msg[0] ? err.msg : "out of memory");
		json_decref(nodes);
		return;
	}
	int64_t now = now_ns(), wake = 0, t_cluster = 0, t_reconcile = 0;
	unsigned n_orch = 0;
	/* one leader orchestrates and places for the cluster; every node runs
	 * its own tasks and its data plane */
	if (membership_is_leader(a))
		manager_lead(a, nodes, services, now, start, &wake, &n_orch, &t_cluster,
			     &t_reconcile);
	else
		t_cluster = t_reconcile = mono_ns() - start;
	int64_t t_orch = mono_ns() - start;
	/* the data plane first: a task about to be stopped is drained before its
	 * container gets the signal */
	if (m->changed && (m->lost || mono_ns() - m->last_publish >= MANAGER_PUBLISH_MIN_NS ||
			   executor_stopping_soon(a, m->tasks))) {
		/* its cost grows with tasks and containers: only when they moved */
		m->changed = false;
		m->lost = false;
		m->last_publish = mono_ns();
		json_t *running = running_array(m);
		publish_sync(a, services, running);
		json_decref(running);
	}
	int64_t t_pub = mono_ns() - start;
	if (executor_reconcile(a, m->tc))
		m->more = true;
	json_decref(nodes);
	json_decref(services);
	int64_t took = mono_ns() - start;
	m->last_took = took;
	if (took > MANAGER_PASS_LOG_NS)
		log_debug("manager: a pass took %.1f ms (%zu tasks, %zu running; cluster %.1f ms, "
			  "orchestration of %u service(s) %.1f ms, placement %.1f ms, data plane "
			  "%.1f ms, executor %.1f ms; %u writes%s)",
			  (double)took / 1e6, task_cache_size(m->tc),
			  task_cache_running_count(m->tc), (double)t_cluster / 1e6, n_orch,
			  (double)(t_reconcile - t_cluster) / 1e6,
			  (double)(t_orch - t_reconcile) / 1e6, (double)(t_pub - t_orch) / 1e6,
			  (double)(took - t_pub) / 1e6, m->writes, m->more ? ", more to do" : "");
	if (m->changed && !m->more && wake == 0) {
		/* the data plane's sync was put off: come back for it */
		wake = now_ns() + MANAGER_PUBLISH_MIN_NS;
	}
	if (m->more) {
		/* the rest after the loop has served what waits, and has been
		 * free at least as long as the pass held it */
		kick_in(m, took);
	} else if (wake > 0) {
		int64_t d = wake - now_ns();
		kick_in(m, d < 1000000 ? 1000000 : d);
	}
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct manager *m = mgr(a);
	if (m->running) {
		/* a pass is writing: the writes kick us; run once more afterwards */
		m->pending = false;
		manager_kick(a);
		return;
	}
	/* Decide on a view at least as new as what this agent wrote. */
	if (!m->reload && m->seen_rev < m->wrote_rev) {
		if (!m->wait_since)
			m->wait_since = mono_ns();
		if (mono_ns() - m->wait_since < MANAGER_CATCHUP_NS) {
			kick_in(m, 1000000);
			return;
		}
		log_warn(
			"manager: the store's watch is %lld revision(s) behind; reading the tasks again",
			(long long)(m->wrote_rev - m->seen_rev));
		m->reload = true;
	}
	m->wait_since = 0;
	m->running = true;
	manager_pass(a);
	m->running = false;
}

static void resync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	publish_scan_uplinks(a);
	if (mgr(a)) {
		mgr(a)->changed = true; /* containers move too (health, exits) */
		mgr(a)->all_dirty = true;
	}
	manager_kick(a);
}

void manager_data_plane_changed(struct agent *a)
{
	struct manager *m = mgr(a);
	if (!m)
		return;
	m->changed = true;
	manager_kick(a);
}

void manager_data_plane_lost(struct agent *a)
{
	struct manager *m = mgr(a);
	if (!m)
		return;
	m->lost = true;
	manager_data_plane_changed(a);
}

void manager_kick(struct agent *a)
{
	struct manager *m = mgr(a);
	if (!m)
		return;
	/* coalesce; and a pass that held the loop for long leaves it free as
	 * long before the next, so that requests are served in between */
	int64_t d = m->last_took > MANAGER_DEBOUNCE_US * 1000LL ? m->last_took
								: MANAGER_DEBOUNCE_US * 1000LL;
	/* a pass due sooner stays; one put off until a timer (a restart
	 * delay, an update's next batch) comes forward */
	if (m->pending && m->kick_due <= mono_ns() + d)
		return;
	kick_in(m, d);
}

static void watch_cb(const struct store_event *events, size_t n, const struct shoal_err *err,
		     void *userdata)
{
	struct agent *a = userdata;
	struct manager *m = mgr(a);
	if (err) {
		/* the watch ended (its history was compacted): read everything
		 * again and watch from there */
		log_warn("manager: the store's watch ended: %s; reading the tasks again", err->msg);
		store_watch_cancel(m->watch);
		m->watch = NULL;
		struct shoal_err e = {0};
		if (cache_load(a, &e) < 0 || store_watch(a->store, "/shoal/", true, m->seen_rev + 1,
							 watch_cb, a, &m->watch, &e) < 0) {
			log_error("manager: watching the store again: %s", e.msg);
			m->reload = true;
		}
		manager_kick(a);
		return;
	}
	events_from_store(a, events, n);
	size_t plen = strlen(CLUSTER_TASKS), slen = strlen(CLUSTER_SERVICES);
	if (n)
		m->changed = true;
	for (size_t i = 0; i < n; i++) {
		const struct store_kv *kv = &events[i].kv;
		if (strncmp(kv->key, CLUSTER_SERVICES, slen) == 0 && kv->key[slen]) {
			const char *sid = kv->key + slen;
			json_t *old = json_object_get(m->services, sid);
			if (kv->mod_revision > m->seen_rev)
				m->seen_rev = kv->mod_revision;
			if (old && mgr_task_rev(old) >= kv->mod_revision)
				continue;
			if (events[i].type == STORE_EVENT_DELETE) {
				svc_del(m, sid);
			} else {
				json_t *j = kv_record(kv);
				if (j)
					svc_put(m, sid, j);
			}
			continue;
		}
		if (kv->mod_revision > m->seen_rev)
			m->seen_rev = kv->mod_revision;
		/* nodes moving concern every service: the pass sees them in the
		 * node list's generation, once the membership's watches have
		 * delivered them; the leadership changing, at once */
		if (strcmp(kv->key, CLUSTER_LEADER) == 0)
			m->all_dirty = true;
		if (strncmp(kv->key, CLUSTER_TASKS, plen) != 0 || !kv->key[plen])
			continue;
		const char *id = kv->key + plen;
		json_t *old = json_object_get(m->tasks, id);
		/* an event older than what the cache holds (a reload read past
		 * it), or the one this agent's own write put there already */
		if (old && mgr_task_rev(old) >= kv->mod_revision)
			continue;
		if (events[i].type == STORE_EVENT_DELETE) {
			cache_del(m, id);
		} else {
			json_t *j = kv_record(kv);
			if (j)
				cache_put(m, id, j);
		}
	}
	manager_kick(a);
}

int manager_start(struct agent *a, struct shoal_err *err)
{
	struct manager *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	a->manager = m;
	m->tc = task_cache_new(a->node_id);
	m->services = json_object();
	m->reports = json_object();
	if (!m->tc || !m->services || !m->reports)
		return -ENOMEM;
	m->all_dirty = true;
	m->kick = evtimer_new(a->base, kick_cb, a);
	m->drain = evtimer_new(a->base, drain_cb, a);
	m->resync = event_new(a->base, -1, EV_PERSIST, resync_cb, a);
	struct timeval tv = {MANAGER_RESYNC_S, 0};
	event_add(m->resync, &tv);
	int r = cache_load(a, err);
	if (r < 0)
		return r;
	m->changed = true;
	r = store_watch(a->store, "/shoal/", true, m->seen_rev + 1, watch_cb, a, &m->watch, err);
	if (r < 0)
		return r;
	manager_kick(a);
	return 0;
}

void manager_stop(struct agent *a)
{
	struct manager *m = mgr(a);
	if (!m)
		return;
	if (m->watch)
		store_watch_cancel(m->watch);
	if (m->kick)
		event_free(m->kick);
	if (m->resync)
		event_free(m->resync);
	if (m->drain)
		event_free(m->drain);
	for (size_t i = m->wq_head; i < m->wq_n; i++) {
		free(m->wq[i].key);
		free(m->wq[i].val);
	}
	free(m->wq);
	json_decref(m->tasks);
	json_decref(m->by_service);
	json_decref(m->services);
	json_decref(m->services_list);
	json_decref(m->reports);
	task_cache_free(m->tc);
	free(m);
	a->manager = NULL;
	executor_free(a);
}
