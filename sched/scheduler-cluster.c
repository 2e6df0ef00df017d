// SPDX-License-Identifier: Apache-2.0
/* The cluster the scheduler places on: interned strings, integer maps, nodes and
 * the tasks they hold. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "sched/scheduler-internal.h"

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

int sched_strtab_lookup(const struct sched_strtab *t, const char *s)
{
	if (!t->nslots)
		return -ENOENT;
	uint32_t mask = t->nslots - 1;
	for (uint32_t i = (uint32_t)hash_str(s) & mask;; i = (i + 1) & mask) {
		uint32_t v = t->slots[i];
		if (!v)
			return -ENOENT;
		if (strcmp(t->str[v - 1], s) == 0)
			return (int)(v - 1);
	}
}

static int sched_strtab_grow(struct sched_strtab *t)
{
	uint32_t nslots = t->nslots ? t->nslots * 2 : 1024;
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (uint32_t id = 0; id < t->n; id++) {
		uint32_t i = (uint32_t)hash_str(t->str[id]) & (nslots - 1);
		while (slots[i])
			i = (i + 1) & (nslots - 1);
		slots[i] = id + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

static int sched_strtab_add(struct sched_strtab *t, const char *s, uint32_t fold)
{
	if (t->n >= SCHED_MAX_STRINGS)
		return -E2BIG;
	if ((uint64_t)(t->n + 1) * 4 > (uint64_t)t->nslots * 3) {
		int r = sched_strtab_grow(t);
		if (r < 0)
			return r;
	}
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 256;
		char **str = realloc(t->str, cap * sizeof(*str));
		if (!str)
			return -ENOMEM;
		t->str = str;
		uint32_t *f = realloc(t->fold, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		t->fold = f;
		t->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	uint32_t id = t->n++;
	t->str[id] = copy;
	t->fold[id] = fold == UINT32_MAX ? id : fold;
	uint32_t mask = t->nslots - 1;
	uint32_t i = (uint32_t)hash_str(s) & mask;
	while (t->slots[i])
		i = (i + 1) & mask;
	t->slots[i] = id + 1;
	return (int)id;
}

static char *ascii_lower(const char *s)
{
	char *l = strdup(s);
	if (l)
		for (char *p = l; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return l;
}

int sched_strtab_intern(struct sched_strtab *t, const char *s)
{
	int id = sched_strtab_lookup(t, s ?: "");
	if (id >= 0)
		return id;
	s = s ?: "";
	_cleanup_free_ char *lower = ascii_lower(s);
	if (!lower)
		return -ENOMEM;
	uint32_t fold = UINT32_MAX;
	if (strcmp(lower, s) != 0) {
		int f = sched_strtab_intern(t, lower);
		if (f < 0)
			return f;
		fold = (uint32_t)f;
	}
	return sched_strtab_add(t, s, fold);
}

int64_t sched_strtab_fold_of(const struct sched_strtab *t, const char *s)
{
	_cleanup_free_ char *lower = ascii_lower(s);
	if (!lower)
		return -ENOMEM;
	int id = sched_strtab_lookup(t, lower);
	return id < 0 ? -1 : (int64_t)t->fold[id];
}

void sched_strtab_done(struct sched_strtab *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		free(t->str[i]);
	free(t->str);
	free(t->fold);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---- u32 -> u32 map, open addressing with backward-shift deletion ---- */

static int sched_u32map_rehash(struct sched_u32map *m, uint32_t cap)
{
	uint32_t *keys = calloc(cap, sizeof(*keys)), *vals = calloc(cap, sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		uint32_t j = sched_u32map_slot(m->keys[i] - 1, cap - 1);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	return 0;
}

static void sched_u32map_del_at(struct sched_u32map *m, uint32_t i)
{
	uint32_t mask = m->cap - 1;
	m->keys[i] = 0;
	m->n--;
	for (uint32_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		uint32_t home = sched_u32map_slot(m->keys[j] - 1, mask);
		/* Move j back into the hole when its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->keys[j] = 0;
			i = j;
		}
	}
}

/* Sets key to val; val 0 deletes. */
int sched_u32map_set(struct sched_u32map *m, uint32_t key, uint32_t val)
{
	if (val && (m->n + 1) * 4 > m->cap * 3) {
		int r = sched_u32map_rehash(m, m->cap ? m->cap * 2 : 4);
		if (r < 0)
			return r;
	}
	if (!m->cap)
		return 0;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = sched_u32map_slot(key, mask);; i = (i + 1) & mask) {
		if (!m->keys[i]) {
			if (!val)
				return 0;
			m->keys[i] = key + 1;
			m->vals[i] = val;
			m->n++;
			return 0;
		}
		if (m->keys[i] == key + 1) {
			if (val)
				m->vals[i] = val;
			else
				sched_u32map_del_at(m, i);
			return 0;
		}
	}
}

void sched_u32map_done(struct sched_u32map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- the cluster ---- */

struct sched_cluster *sched_cluster_new(void)
{
	struct sched_cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	int e = sched_strtab_intern(&c->strs, "");
	int w = e < 0 ? e : sched_strtab_intern(&c->strs, "worker");
	int m = w < 0 ? w : sched_strtab_intern(&c->strs, "manager");
	if (m < 0) {
		sched_cluster_free(c);
		errno = -m;
		return NULL;
	}
	c->s_worker = (uint32_t)w;
	c->s_manager = (uint32_t)m;
	return c;
}

static void node_release(struct sched_node *n)
{
	free(n->labels);
	n->labels = NULL;
	sched_u32map_done(&n->svc);
	free(n->ports);
	n->ports = NULL;
	n->n_ports = n->cap_ports = 0;
}

struct sched_cluster *sched_cluster_free(struct sched_cluster *c)
{
	if (!c)
		return NULL;
	for (uint32_t i = 0; i < c->n_nodes; i++)
		node_release(&c->nodes[i]);
	free(c->nodes);
	sched_u32map_done(&c->by_id);
	sched_u32map_done(&c->svc_total);
	free(c->rank);
	free(c->by_rank);
	sched_strtab_done(&c->strs);
	free(c->s.cands);
	free(c->s.tmp);
	free(c->s.keys);
	free(c->s.cand_of_rank);
	free(c->s.vals);
	free(c->s.local);
	free(c->s.t);
	free(c->s.quota);
	free(c);
	return NULL;
}

struct sched_node *sched_cluster_live_node(const struct sched_cluster *c, uint32_t idx)
{
	if (idx >= c->n_nodes || c->nodes[idx].removed)
		return NULL;
	return &c->nodes[idx];
}

static int parse_labels(struct sched_cluster *c, const char *const *in, struct sched_label *out,
			uint16_t *ret_n, const char *what, struct shoal_err *err)
{
	uint16_t n = 0;
	for (size_t i = 0; in && in[i]; i++) {
		const char *eq = strchr(in[i], '=');
		size_t klen = eq ? (size_t)(eq - in[i]) : strlen(in[i]);
		if (klen == 0)
			return shoal_err_set(err, EINVAL, "%s \"%s\" has an empty key", what,
					     in[i]);
		_cleanup_free_ char *key = strndup(in[i], klen);
		if (!key)
			return -ENOMEM;
		int k = sched_strtab_intern(&c->strs, key);
		int v = k < 0 ? k : sched_strtab_intern(&c->strs, eq ? eq + 1 : "");
		if (v < 0)
			return shoal_err_set(err, -v, "interning %s \"%s\"", what, in[i]);
		uint16_t j;
		for (j = 0; j < n && out[j].key != (uint32_t)k; j++)
			;
		if (j == n) {
			if (n == SCHED_MAX_NODE_LABELS)
				return shoal_err_set(err, E2BIG, "more than %d %ss on a node",
						     SCHED_MAX_NODE_LABELS, what);
			n++;
		}
		out[j] = (struct sched_label){(uint32_t)k, (uint32_t)v};
	}
	*ret_n = n;
	return 0;
}

/* Fills n's description (not its usage) from d. */
static int node_describe(struct sched_cluster *c, struct sched_node *n,
			 const struct sched_node_desc *d, struct shoal_err *err)
{
	if (d->total.nano_cpus < 0 || d->total.memory_bytes < 0)
		return shoal_err_set(err, EINVAL, "node %s: negative resources", d->id);
	int id = sched_strtab_intern(&c->strs, d->id);
	int host = id < 0 ? id : sched_strtab_intern(&c->strs, d->hostname);
	int os = host < 0 ? host : sched_strtab_intern(&c->strs, d->os);
	int arch = os < 0 ? os : sched_strtab_intern(&c->strs, d->arch);
	if (arch < 0)
		return shoal_err_set(err, -arch, "node %s: interning its description", d->id);
	_cleanup_free_ struct sched_label *labels =
		malloc(2 * SCHED_MAX_NODE_LABELS * sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	uint16_t nl = 0, ne = 0;
	int r = parse_labels(c, d->labels, labels, &nl, "label", err);
	if (r >= 0)
		r = parse_labels(c, d->engine_labels, labels + nl, &ne, "engine label", err);
	if (r < 0)
		return shoal_err_wrap(err, "node %s", d->id);
	struct sched_label *fit = NULL;
	if (nl + ne) {
		fit = malloc((size_t)(nl + ne) * sizeof(*fit));
		if (!fit)
			return -ENOMEM;
		memcpy(fit, labels, (size_t)(nl + ne) * sizeof(*fit));
	}
	free(n->labels);
	n->labels = fit;
	n->n_labels = nl;
	n->n_elabels = ne;
	n->id = (uint32_t)id;
	n->hostname = (uint32_t)host;
	n->os = (uint32_t)os;
	n->arch = (uint32_t)arch;
	n->role = d->role;
	n->avail = d->availability;
	n->ready = d->ready;
	n->total = d->total;
	n->max_tasks = d->max_tasks;
	return 0;
}

int sched_cluster_add_node(struct sched_cluster *c, const struct sched_node_desc *d,
			   struct shoal_err *err)
{
	if (!d || !d->id || !*d->id)
		return shoal_err_set(err, EINVAL, "a node needs an id");
	if (sched_cluster_find_node(c, d->id) >= 0)
		return shoal_err_set(err, EEXIST, "node %s already exists", d->id);
	if (c->n_nodes >= SCHED_MAX_NODES)
		return shoal_err_set(err, E2BIG, "more than %u nodes", SCHED_MAX_NODES);
	if (c->n_nodes == c->cap_nodes) {
		uint32_t cap = c->cap_nodes ? c->cap_nodes * 2 : 64;
		if (cap > SCHED_MAX_NODES)
			cap = SCHED_MAX_NODES;
		struct sched_node *nodes = realloc(c->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return shoal_err_set(err, ENOMEM, "adding node %s", d->id);
		c->nodes = nodes;
		c->cap_nodes = cap;
	}
	struct sched_node *n = &c->nodes[c->n_nodes];
	memset(n, 0, sizeof(*n));
	int r = node_describe(c, n, d, err);
	if (r < 0) {
		node_release(n);
		return r;
	}
	r = sched_u32map_set(&c->by_id, n->id, c->n_nodes + 1);
	if (r < 0) {
		node_release(n);
		return shoal_err_set(err, -r, "adding node %s", d->id);
	}
	c->rank_dirty = true;
	c->live++;
	return (int)c->n_nodes++;
}

int sched_cluster_update_node(struct sched_cluster *c, uint32_t node,
			      const struct sched_node_desc *d, struct shoal_err *err)
{
	struct sched_node *n = sched_cluster_live_node(c, node);
	if (!n)
		return shoal_err_set(err, ENOENT, "no node at index %u", node);
	if (!d || !d->id || !*d->id)
		return shoal_err_set(err, EINVAL, "a node needs an id");
	int other = sched_cluster_find_node(c, d->id);
	if (other >= 0 && (uint32_t)other != node)
		return shoal_err_set(err, EEXIST, "node %s already exists", d->id);
	uint32_t old_id = n->id;
	int r = node_describe(c, n, d, err);
	if (r < 0)
		return r;
	if (old_id != n->id) {
		sched_u32map_set(&c->by_id, old_id, 0);
		r = sched_u32map_set(&c->by_id, n->id, node + 1);
		if (r < 0)
			return shoal_err_set(err, -r, "renaming node %s", d->id);
		c->rank_dirty = true;
	}
	return 0;
}

int sched_cluster_svc_total_add(struct sched_cluster *c, uint32_t svc, int64_t delta)
{
	int64_t v = (int64_t)sched_u32map_get(&c->svc_total, svc) + delta;
	return sched_u32map_set(&c->svc_total, svc, v > 0 ? (uint32_t)v : 0);
}

int sched_cluster_remove_node(struct sched_cluster *c, uint32_t node)
{
	struct sched_node *n = sched_cluster_live_node(c, node);
	if (!n)
		return -ENOENT;
	for (uint32_t i = 0; i < n->svc.cap; i++)
		if (n->svc.keys[i])
			sched_cluster_svc_total_add(c, n->svc.keys[i] - 1,
						    -(int64_t)n->svc.vals[i]);
	sched_u32map_set(&c->by_id, n->id, 0);
	node_release(n);
	n->removed = true;
	n->tasks = 0;
	c->live--;
	c->rank_dirty = true;
	return 0;
}

int sched_cluster_find_node(const struct sched_cluster *c, const char *id)
{
	int s = id ? sched_strtab_lookup(&c->strs, id) : -ENOENT;
	if (s < 0)
		return -ENOENT;
	uint32_t v = sched_u32map_get(&c->by_id, (uint32_t)s);
	return v ? (int)(v - 1) : -ENOENT;
}

uint32_t sched_cluster_node_slots(const struct sched_cluster *c)
{
	return c->n_nodes;
}

const char *sched_cluster_node_id(const struct sched_cluster *c, uint32_t node)
{
	const struct sched_node *n = sched_cluster_live_node(c, node);
	return n ? c->strs.str[n->id] : NULL;
}

int sched_cluster_node_usage(const struct sched_cluster *c, uint32_t node, const char *service_id,
			     struct sched_node_usage *ret)
{
	const struct sched_node *n = sched_cluster_live_node(c, node);
	if (!n)
		return -ENOENT;
	int s = service_id ? sched_strtab_lookup(&c->strs, service_id) : -ENOENT;
	*ret = (struct sched_node_usage){
		.reserved = n->reserved,
		.tasks = n->tasks,
		.service_tasks = s >= 0 ? sched_u32map_get(&n->svc, (uint32_t)s) : 0,
	};
	return 0;
}

static int cmp_rank_cb(const void *a, const void *b, void *arg)
{
	const struct sched_cluster *c = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return strcmp(c->strs.str[c->nodes[x].id], c->strs.str[c->nodes[y].id]);
}

int sched_cluster_rank_update(struct sched_cluster *c)
{
	if (!c->rank_dirty)
		return 0;
	if (c->cap_rank < c->n_nodes) {
		uint32_t *rank = realloc(c->rank, c->cap_nodes * sizeof(*rank));
		if (!rank)
			return -ENOMEM;
		c->rank = rank;
		uint32_t *by = realloc(c->by_rank, c->cap_nodes * sizeof(*by));
		if (!by)
			return -ENOMEM;
		c->by_rank = by;
		c->cap_rank = c->cap_nodes;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (!c->nodes[i].removed)
			c->by_rank[k++] = i;
	qsort_r(c->by_rank, k, sizeof(*c->by_rank), cmp_rank_cb, c);
	for (uint32_t r = 0; r < k; r++)
		c->rank[c->by_rank[r]] = r;
	c->rank_dirty = false;
	return 0;
}

/* ---- tasks on nodes ---- */

int sched_node_ports_add(struct sched_node *n, uint32_t code)
{
	if (n->n_ports == n->cap_ports) {
		uint32_t cap = n->cap_ports ? n->cap_ports * 2 : 4;
		uint32_t *p = realloc(n->ports, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		n->ports = p;
		n->cap_ports = cap;
	}
	n->ports[n->n_ports++] = code;
	return 0;
}

static void node_ports_del(struct sched_node *n, uint32_t code)
{
	for (uint32_t i = 0; i < n->n_ports; i++)
		if (n->ports[i] == code) {
			n->ports[i] = n->ports[--n->n_ports];
			return;
		}
}

/* The live node a task of t is added to or removed from, once t is well formed. */
static int task_node(struct sched_cluster *c, uint32_t node, const struct sched_task *t,
		     struct sched_node **ret, struct shoal_err *err)
{
	struct sched_node *n = sched_cluster_live_node(c, node);
	if (!n)
		return shoal_err_set(err, ENOENT, "no node at index %u", node);
	if (!t || !t->service_id || !*t->service_id)
		return shoal_err_set(err, EINVAL, "a task needs a service id");
	if (t->reservations.nano_cpus < 0 || t->reservations.memory_bytes < 0)
		return shoal_err_set(err, EINVAL, "negative reservations");
	if (t->n_ports > SCHED_MAX_PORTS)
		return shoal_err_set(err, E2BIG, "more than %d ports", SCHED_MAX_PORTS);
	*ret = n;
	return 0;
}

int sched_cluster_add_task(struct sched_cluster *c, uint32_t node, const struct sched_task *t,
			   struct shoal_err *err)
{
	struct sched_node *n;
	int r = task_node(c, node, t, &n, err);
	if (r < 0)
		return r;
	int svc = sched_strtab_intern(&c->strs, t->service_id);
	if (svc < 0)
		return shoal_err_set(err, -svc, "interning service %s", t->service_id);
	uint32_t cnt = sched_u32map_get(&n->svc, (uint32_t)svc);
	if (cnt >= SCHED_MAX_SVC_TASKS || n->tasks >= SCHED_MAX_NODE_TASKS)
		return shoal_err_set(err, E2BIG, "node %s holds the most tasks it can count",
				     c->strs.str[n->id]);
	uint32_t old_ports = n->n_ports;
	for (size_t i = 0; i < t->n_ports; i++)
		if (sched_port_occupies(&t->ports[i]) &&
		    (r = sched_node_ports_add(n, sched_port_code(&t->ports[i]))) < 0)
			goto fail;
	if ((r = sched_u32map_set(&n->svc, (uint32_t)svc, cnt + 1)) < 0)
		goto fail;
	if ((r = sched_cluster_svc_total_add(c, (uint32_t)svc, 1)) < 0) {
		sched_u32map_set(&n->svc, (uint32_t)svc, cnt);
		goto fail;
	}
	n->tasks++;
	n->reserved.nano_cpus += t->reservations.nano_cpus;
	n->reserved.memory_bytes += t->reservations.memory_bytes;
	return 0;
fail:
	n->n_ports = old_ports;
	return shoal_err_set(err, -r, "adding a task of %s", t->service_id);
}

int sched_cluster_remove_task(struct sched_cluster *c, uint32_t node, const struct sched_task *t,
			      struct shoal_err *err)
{
	struct sched_node *n;
	int r = task_node(c, node, t, &n, err);
	if (r < 0)
		return r;
	int svc = sched_strtab_lookup(&c->strs, t->service_id);
	uint32_t cnt = svc >= 0 ? sched_u32map_get(&n->svc, (uint32_t)svc) : 0;
	if (!cnt)
		return shoal_err_set(err, ENOENT, "node %s holds no task of service %s",
				     c->strs.str[n->id], t->service_id);
	sched_u32map_set(&n->svc, (uint32_t)svc, cnt - 1);
	sched_cluster_svc_total_add(c, (uint32_t)svc, -1);
	n->tasks--;
	n->reserved.nano_cpus -= t->reservations.nano_cpus;
	n->reserved.memory_bytes -= t->reservations.memory_bytes;
	if (n->reserved.nano_cpus < 0)
		n->reserved.nano_cpus = 0;
	if (n->reserved.memory_bytes < 0)
		n->reserved.memory_bytes = 0;
	for (size_t i = 0; i < t->n_ports; i++)
		if (sched_port_occupies(&t->ports[i]))
			node_ports_del(n, sched_port_code(&t->ports[i]));
	return 0;
}
