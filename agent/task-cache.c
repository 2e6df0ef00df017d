// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/task-cache.h"

/* Tasks the cache holds at most: far past what the orchestrator makes
 * (ORCH_MAX_REPLICAS per service, history included), a bound on what a
 * store full of junk could make it allocate. */
#define TASK_CACHE_MAX	       (1u << 22)
#define TASK_CACHE_MIN_BUCKETS 1024u
#define TASK_SVC_BUCKETS       1024u

struct task_cache {
	char node_id[ORCH_ID_MAX];
	struct task_entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t n;
	struct task_svc *svcs[TASK_SVC_BUCKETS];
	struct task_entry *local, *local_tail, *running, *holding;
	size_t n_running;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

struct task_cache *task_cache_new(const char *node_id)
{
	struct task_cache *tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	tc->n_buckets = TASK_CACHE_MIN_BUCKETS;
	tc->buckets = calloc(tc->n_buckets, sizeof(*tc->buckets));
	if (!tc->buckets) {
		free(tc);
		return NULL;
	}
	snprintf(tc->node_id, sizeof(tc->node_id), "%s", node_id ? node_id : "");
	return tc;
}

static void entry_free(struct task_entry *e)
{
	if (!e)
		return;
	orch_task_clear(&e->orch);
	json_decref(e->rec);
	free(e);
}

void task_cache_clear(struct task_cache *tc)
{
	if (!tc)
		return;
	for (size_t b = 0; b < tc->n_buckets; b++) {
		for (struct task_entry *e = tc->buckets[b], *next; e; e = next) {
			next = e->hnext;
			entry_free(e);
		}
		tc->buckets[b] = NULL;
	}
	/* service entries keep what the manager knows of the service */
	for (size_t b = 0; b < TASK_SVC_BUCKETS; b++)
		for (struct task_svc *s = tc->svcs[b]; s; s = s->hnext) {
			s->tasks = s->tail = NULL;
			s->n = 0;
			s->dirty = true;
		}
	tc->n = 0;
	tc->local = tc->local_tail = tc->running = tc->holding = NULL;
	tc->n_running = 0;
}

void task_cache_free(struct task_cache *tc)
{
	if (!tc)
		return;
	task_cache_clear(tc);
	for (size_t b = 0; b < TASK_SVC_BUCKETS; b++)
		for (struct task_svc *s = tc->svcs[b], *next; s; s = next) {
			next = s->hnext;
			free(s);
		}
	free(tc->buckets);
	free(tc);
}

size_t task_cache_size(const struct task_cache *tc)
{
	return tc ? tc->n : 0;
}

struct task_entry *task_cache_get(const struct task_cache *tc, const char *id)
{
	if (!tc || !id)
		return NULL;
	for (struct task_entry *e = tc->buckets[hash_str(id) & (tc->n_buckets - 1)]; e;
	     e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

struct task_svc *task_cache_svc(struct task_cache *tc, const char *sid, bool create)
{
	size_t b = hash_str(sid) % TASK_SVC_BUCKETS;
	for (struct task_svc *s = tc->svcs[b]; s; s = s->hnext)
		if (strcmp(s->id, sid) == 0)
			return s;
	if (!create || strlen(sid) >= ORCH_ID_MAX)
		return NULL;
	struct task_svc *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	memcpy(s->id, sid, strlen(sid) + 1);
	s->dirty = true;
	s->hnext = tc->svcs[b];
	tc->svcs[b] = s;
	return s;
}

struct task_svc *task_cache_svc_next(struct task_cache *tc, size_t *bucket, struct task_svc *it)
{
	if (it && it->hnext)
		return it->hnext;
	for (size_t b = it ? *bucket + 1 : 0; b < TASK_SVC_BUCKETS; b++)
		if (tc->svcs[b]) {
			*bucket = b;
			return tc->svcs[b];
		}
	return NULL;
}

void task_cache_svc_drop(struct task_cache *tc, struct task_svc *s)
{
	if (!s || s->n)
		return;
	for (struct task_svc **pp = &tc->svcs[hash_str(s->id) % TASK_SVC_BUCKETS]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			free(s);
			return;
		}
}

struct task_entry *task_cache_next(const struct task_cache *tc, size_t *bucket,
				   struct task_entry *it)
{
	if (it && it->hnext)
		return it->hnext;
	for (size_t b = it ? *bucket + 1 : 0; b < tc->n_buckets; b++)
		if (tc->buckets[b]) {
			*bucket = b;
			return tc->buckets[b];
		}
	return NULL;
}

struct task_entry *task_cache_local(const struct task_cache *tc)
{
	return tc ? tc->local : NULL;
}

struct task_entry *task_cache_running(const struct task_cache *tc)
{
	return tc ? tc->running : NULL;
}

struct task_entry *task_cache_holding(const struct task_cache *tc)
{
	return tc ? tc->holding : NULL;
}

size_t task_cache_running_count(const struct task_cache *tc)
{
	return tc ? tc->n_running : 0;
}

static int grow(struct task_cache *tc)
{
	size_t nb = tc->n_buckets * 2;
	struct task_entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < tc->n_buckets; i++)
		for (struct task_entry *e = tc->buckets[i], *next; e; e = next) {
			next = e->hnext;
			size_t k = hash_str(e->id) & (nb - 1);
			e->hnext = b[k];
			b[k] = e;
		}
	free(tc->buckets);
	tc->buckets = b;
	tc->n_buckets = nb;
	return 0;
}

static void unlink_entry(struct task_cache *tc, struct task_entry *e)
{
	for (struct task_entry **pp = &tc->buckets[hash_str(e->id) & (tc->n_buckets - 1)]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	if (e->sprev)
		e->sprev->snext = e->snext;
	else if (e->svc)
		e->svc->tasks = e->snext;
	if (e->snext)
		e->snext->sprev = e->sprev;
	else if (e->svc)
		e->svc->tail = e->sprev;
	if (e->svc) {
		e->svc->n--;
		e->svc->dirty = true;
	}
	if (e->local) {
		if (e->lprev)
			e->lprev->lnext = e->lnext;
		else
			tc->local = e->lnext;
		if (e->lnext)
			e->lnext->lprev = e->lprev;
		else
			tc->local_tail = e->lprev;
	}
	if (e->running) {
		if (e->rprev)
			e->rprev->rnext = e->rnext;
		else
			tc->running = e->rnext;
		if (e->rnext)
			e->rnext->rprev = e->rprev;
		tc->n_running--;
	}
	if (e->holds) {
		if (e->oprev)
			e->oprev->onext = e->onext;
		else
			tc->holding = e->onext;
		if (e->onext)
			e->onext->oprev = e->oprev;
	}
	tc->n--;
}

void task_cache_del(struct task_cache *tc, const char *id)
{
	struct task_entry *e = task_cache_get(tc, id);
	if (!e)
		return;
	unlink_entry(tc, e);
	entry_free(e);
}

static const char *str_at(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The Docker fields, read as the scheduler, the executor and the data plane
 * read them from the record. */
static void entry_fields(struct task_cache *tc, struct task_entry *e)
{
	json_t *rec = e->rec;
	e->node_id = str_at(rec, "NodeID") ?: "";
	e->local = *e->node_id && strcmp(e->node_id, tc->node_id) == 0;
	e->state = TASK_NEW;
	task_state_from_name(str_at(json_object_get(rec, "Status"), "State") ?: "", &e->state);
	e->running = e->state == TASK_RUNNING;
	const char *ds = str_at(rec, "DesiredState") ?: "";
	enum task_state d;
	if (strcmp(ds, "ready") == 0)
		e->desired = TASK_PREPARING;
	else if (task_state_from_name(ds, &d) == 0 && d != TASK_PREPARING)
		e->desired = (int)d;
	else
		e->desired = -1;
	json_t *res = json_object_get(json_object_get(json_object_get(rec, "Spec"), "Resources"),
				      "Reservations");
	e->reservations = (struct sched_resources){
		.nano_cpus = json_integer_value(json_object_get(res, "NanoCPUs")),
		.memory_bytes = json_integer_value(json_object_get(res, "MemoryBytes")),
	};
	e->orch_ok = orch_task_from_json(json_object_get(rec, "Orch"), &e->orch, NULL) == 0;
}

int task_cache_put(struct task_cache *tc, const char *id, json_t *rec, int64_t rev)
{
	task_cache_del(tc, id);
	if (tc->n >= TASK_CACHE_MAX)
		return -E2BIG;
	if (tc->n >= tc->n_buckets && grow(tc) < 0)
		return -ENOMEM;
	size_t len = strlen(id);
	struct task_entry *e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	char *idc = (char *)(e + 1);
	memcpy(idc, id, len + 1);
	e->id = idc;
	e->rec = json_incref(rec);
	e->rev = rev;
	entry_fields(tc, e);
	const char *sid = str_at(rec, "ServiceID");
	e->has_sid = sid != NULL;
	if (!sid)
		sid = "";
	e->svc = task_cache_svc(tc, sid, true);
	if (!e->svc) {
		entry_free(e);
		return -ENOMEM;
	}
	size_t b = hash_str(e->id) & (tc->n_buckets - 1);
	e->hnext = tc->buckets[b];
	tc->buckets[b] = e;
	/* at the tail: the order the records were last written in */
	e->sprev = e->svc->tail;
	if (e->sprev)
		e->sprev->snext = e;
	else
		e->svc->tasks = e;
	e->svc->tail = e;
	e->svc->n++;
	e->svc->dirty = true;
	if (e->local) {
		e->lprev = tc->local_tail;
		if (e->lprev)
			e->lprev->lnext = e;
		else
			tc->local = e;
		tc->local_tail = e;
	}
	if (e->running) {
		e->rnext = tc->running;
		if (e->rnext)
			e->rnext->rprev = e;
		tc->running = e;
		tc->n_running++;
	}
	e->holds = *e->node_id && e->has_sid && !task_state_is_terminal(e->state);
	if (e->holds) {
		e->onext = tc->holding;
		if (e->onext)
			e->onext->oprev = e;
		tc->holding = e;
	}
	tc->n++;
	return 0;
}
