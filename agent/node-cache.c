// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/node-cache.h"

struct node_entry {
	struct node_entry *hnext;
	char *id;
	json_t *rec; /* NULL: known from its liveness only */
	int64_t rev;
	bool alive;
	int64_t down_ns;
	/* reload marks: set at a reload's begin, cleared by what it reads */
	bool mark_rec, mark_alive;
};

struct node_cache {
	struct node_entry **buckets;
	size_t n_buckets, n_entries, n_records;
	char leader[128];
	uint64_t gen;
	json_t *list; /* NULL: rebuilt at the next node_cache_list() */
};

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void changed(struct node_cache *nc)
{
	nc->gen++;
	json_decref(nc->list);
	nc->list = NULL;
}

struct node_cache *node_cache_new(void)
{
	struct node_cache *nc = calloc(1, sizeof(*nc));
	if (!nc)
		return NULL;
	nc->n_buckets = 64;
	nc->buckets = calloc(nc->n_buckets, sizeof(*nc->buckets));
	if (!nc->buckets) {
		free(nc);
		return NULL;
	}
	return nc;
}

static void entry_free(struct node_entry *e)
{
	json_decref(e->rec);
	free(e->id);
	free(e);
}

void node_cache_free(struct node_cache *nc)
{
	if (!nc)
		return;
	for (size_t b = 0; b < nc->n_buckets; b++)
		for (struct node_entry *e = nc->buckets[b], *next; e; e = next) {
			next = e->hnext;
			entry_free(e);
		}
	free(nc->buckets);
	json_decref(nc->list);
	free(nc);
}

static struct node_entry *find(const struct node_cache *nc, const char *id)
{
	for (struct node_entry *e = nc->buckets[hash_id(id) % nc->n_buckets]; e; e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void grow(struct node_cache *nc)
{
	size_t n = nc->n_buckets * 2;
	struct node_entry **b = calloc(n, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < nc->n_buckets; i++)
		for (struct node_entry *e = nc->buckets[i], *next; e; e = next) {
			next = e->hnext;
			size_t k = hash_id(e->id) % n;
			e->hnext = b[k];
			b[k] = e;
		}
	free(nc->buckets);
	nc->buckets = b;
	nc->n_buckets = n;
}

static struct node_entry *find_or_add(struct node_cache *nc, const char *id, int *ret_err)
{
	struct node_entry *e = find(nc, id);
	if (e)
		return e;
	if (nc->n_entries >= NODE_CACHE_MAX) {
		*ret_err = -ENOSPC;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->id = strdup(id))) {
		free(e);
		*ret_err = -ENOMEM;
		return NULL;
	}
	if (nc->n_entries >= nc->n_buckets)
		grow(nc);
	size_t k = hash_id(id) % nc->n_buckets;
	e->hnext = nc->buckets[k];
	nc->buckets[k] = e;
	nc->n_entries++;
	return e;
}

/* An entry that holds nothing any more goes. */
static void drop_if_empty(struct node_cache *nc, struct node_entry *e)
{
	if (e->rec || e->alive || e->down_ns)
		return;
	struct node_entry **p = &nc->buckets[hash_id(e->id) % nc->n_buckets];
	while (*p && *p != e)
		p = &(*p)->hnext;
	if (*p)
		*p = e->hnext;
	nc->n_entries--;
	entry_free(e);
}

int node_cache_record_put(struct node_cache *nc, const char *id, const char *value, size_t len,
			  int64_t rev)
{
	struct node_entry *e = find(nc, id);
	if (e && e->rec && e->rev > rev) {
		e->mark_rec = false;
		return 0;
	}
	json_t *j = json_loadb(value, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	json_t *ver = json_pack("{s:I}", "Index", (json_int_t)rev);
	if (!ver || json_object_set_new(j, "Version", ver) < 0) {
		json_decref(j);
		return -ENOMEM;
	}
	int r = 0;
	if (!e && !(e = find_or_add(nc, id, &r))) {
		json_decref(j);
		return r;
	}
	e->mark_rec = false;
	if (e->rec && e->rev == rev) {
		json_decref(j); /* the same version again (a reload) */
		return 0;
	}
	if (!e->rec)
		nc->n_records++;
	json_decref(e->rec);
	e->rec = j;
	e->rev = rev;
	changed(nc);
	return 0;
}

void node_cache_record_del(struct node_cache *nc, const char *id)
{
	struct node_entry *e = find(nc, id);
	if (!e || !e->rec)
		return;
	json_decref(e->rec);
	e->rec = NULL;
	e->rev = 0;
	nc->n_records--;
	changed(nc);
	drop_if_empty(nc, e);
}

int node_cache_alive_put(struct node_cache *nc, const char *id)
{
	int r = 0;
	struct node_entry *e = find_or_add(nc, id, &r);
	if (!e)
		return r;
	e->mark_alive = false;
	if (e->alive)
		return 0;
	e->alive = true;
	e->down_ns = 0;
	changed(nc);
	return 1;
}

int node_cache_alive_del(struct node_cache *nc, const char *id, int64_t now_ns)
{
	int r = 0;
	struct node_entry *e = find_or_add(nc, id, &r);
	if (!e)
		return r;
	bool was = e->alive;
	if (was || !e->down_ns)
		e->down_ns = now_ns;
	e->alive = false;
	if (was)
		changed(nc);
	return was ? 1 : 0;
}

void node_cache_reload_begin(struct node_cache *nc, enum node_cache_part part)
{
	for (size_t b = 0; b < nc->n_buckets; b++)
		for (struct node_entry *e = nc->buckets[b]; e; e = e->hnext) {
			if (part == NODE_CACHE_RECORDS)
				e->mark_rec = e->rec != NULL;
			else
				e->mark_alive = e->alive;
		}
}

void node_cache_reload_end(struct node_cache *nc, enum node_cache_part part, int64_t now_ns)
{
	for (size_t b = 0; b < nc->n_buckets; b++)
		for (struct node_entry *e = nc->buckets[b], *next; e; e = next) {
			next = e->hnext;
			if (part == NODE_CACHE_RECORDS && e->mark_rec) {
				e->mark_rec = false;
				node_cache_record_del(nc, e->id);
			} else if (part == NODE_CACHE_ALIVE && e->mark_alive) {
				e->mark_alive = false;
				node_cache_alive_del(nc, e->id, now_ns);
			}
		}
}

void node_cache_set_leader(struct node_cache *nc, const char *id)
{
	if (strcmp(nc->leader, id ? id : "") == 0)
		return;
	snprintf(nc->leader, sizeof(nc->leader), "%s", id ? id : "");
	changed(nc);
}

bool node_cache_alive(const struct node_cache *nc, const char *id)
{
	const struct node_entry *e = id ? find(nc, id) : NULL;
	return e && e->alive;
}

int64_t node_cache_down_since(const struct node_cache *nc, const char *id)
{
	const struct node_entry *e = id ? find(nc, id) : NULL;
	return e && !e->alive ? e->down_ns : 0;
}

void node_cache_decorate(const struct node_cache *nc, json_t *node)
{
	const char *id = json_string_value(json_object_get(node, "ID"));
	if (!id)
		return;
	bool alive = node_cache_alive(nc, id);
	json_t *st = json_object_get(node, "Status");
	if (json_is_object(st)) {
		json_object_set_new(st, "State", json_string(alive ? "ready" : "down"));
		if (!alive)
			json_object_set_new(st, "Message", json_string("heartbeat failure"));
		else
			json_object_del(st, "Message");
	}
	json_t *mst = json_object_get(node, "ManagerStatus");
	if (json_is_object(mst)) {
		if (strcmp(nc->leader, id) == 0)
			json_object_set_new(mst, "Leader", json_true());
		else
			json_object_del(mst, "Leader");
		json_object_set_new(mst, "Reachability",
				    json_string(alive ? "reachable" : "unreachable"));
	}
}

static int by_id(const void *a, const void *b)
{
	const struct node_entry *x = *(const struct node_entry *const *)a;
	const struct node_entry *y = *(const struct node_entry *const *)b;
	return strcmp(x->id, y->id);
}

json_t *node_cache_list(struct node_cache *nc)
{
	if (nc->list)
		return nc->list;
	struct node_entry **v = calloc(nc->n_records ? nc->n_records : 1, sizeof(*v));
	json_t *arr = json_array();
	if (!v || !arr) {
		free(v);
		json_decref(arr);
		return NULL;
	}
	size_t n = 0;
	for (size_t b = 0; b < nc->n_buckets; b++)
		for (struct node_entry *e = nc->buckets[b]; e; e = e->hnext)
			if (e->rec && n < nc->n_records)
				v[n++] = e;
	qsort(v, n, sizeof(*v), by_id);
	for (size_t i = 0; i < n; i++) {
		/* in place: a record is decorated again only when the cache
		 * changed, and a list handed out earlier keeps what it showed
		 * but for the decoration */
		node_cache_decorate(nc, v[i]->rec);
		if (json_array_append(arr, v[i]->rec) < 0) {
			free(v);
			json_decref(arr);
			return NULL;
		}
	}
	free(v);
	nc->list = arr;
	return arr;
}

uint64_t node_cache_generation(const struct node_cache *nc)
{
	return nc->gen;
}

size_t node_cache_size(const struct node_cache *nc)
{
	return nc->n_records;
}
