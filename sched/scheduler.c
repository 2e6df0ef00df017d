// SPDX-License-Identifier: Apache-2.0
/* Placement: candidates grouped by spread preferences into a tree, tasks spread
 * over it by water-filling, and per leaf a heap of nodes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "sched/scheduler-internal.h"

/* ---- placement ---- */

static int grow(void **p, uint32_t *cap, uint32_t want, size_t size)
{
	if (*cap >= want)
		return 0;
	uint32_t n = *cap ? *cap : 64;
	while (n < want)
		n *= 2;
	void *q = realloc(*p, (size_t)n * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static int scratch_reserve(struct sched_cluster *c, uint32_t nodes)
{
	struct sched_scratch *s = &c->s;
	if (s->cap < nodes || !s->vals) {
		uint32_t n = nodes < 64 ? 64 : nodes;
		struct sched_cand *cands = realloc(s->cands, n * sizeof(*cands));
		if (!cands)
			return -ENOMEM;
		s->cands = cands;
		struct sched_cand *tmp = realloc(s->tmp, n * sizeof(*tmp));
		if (!tmp)
			return -ENOMEM;
		s->tmp = tmp;
		uint64_t *keys = realloc(s->keys, n * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		s->keys = keys;
		uint32_t *cor = realloc(s->cand_of_rank, n * sizeof(*cor));
		if (!cor)
			return -ENOMEM;
		s->cand_of_rank = cor;
		uint32_t *vals = realloc(s->vals, (size_t)n * SCHED_MAX_PREFS * sizeof(*vals));
		if (!vals)
			return -ENOMEM;
		s->vals = vals;
		s->cap = n;
	}
	if (s->cap_local < c->strs.n) {
		uint32_t old = s->cap_local;
		if (grow((void **)&s->local, &s->cap_local, c->strs.n, sizeof(*s->local)) < 0)
			return -ENOMEM;
		memset(s->local + old, 0xff, (size_t)(s->cap_local - old) * sizeof(*s->local));
	}
	return 0;
}

struct plan {
	struct sched_cluster *c;
	struct sched_creq *q;
	struct sched_cand *cands;
	uint32_t n;
	int32_t *out;
	uint32_t n_out;
};

#define KEY_SVC_SHIFT	44
#define KEY_TOTAL_SHIFT 20
#define KEY_RANK_MASK	((1ull << KEY_TOTAL_SHIFT) - 1)

static void sift_down(uint64_t *h, uint32_t n, uint32_t i)
{
	uint64_t v = h[i];
	for (;;) {
		uint32_t l = 2 * i + 1;
		if (l >= n)
			break;
		uint32_t m = l + 1 < n && h[l + 1] < h[l] ? l + 1 : l;
		if (h[m] >= v)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = v;
}

static uint32_t place_leaf(struct plan *p, struct sched_tnode *t, uint32_t want)
{
	struct sched_cluster *c = p->c;
	uint64_t *h = c->s.keys + t->lo;
	if (!t->heap_built) {
		uint32_t n = 0;
		for (uint32_t i = t->lo; i < t->hi; i++) {
			const struct sched_cand *cd = &p->cands[i];
			if (cd->room == 0)
				continue;
			const struct sched_node *nd = &c->nodes[cd->node];
			h[n++] = (uint64_t)cd->cnt << KEY_SVC_SHIFT |
				 (uint64_t)nd->tasks << KEY_TOTAL_SHIFT | c->rank[cd->node];
		}
		for (uint32_t i = n / 2; i-- > 0;)
			sift_down(h, n, i);
		t->heap_n = n;
		t->heap_built = true;
	}
	uint32_t placed = 0;
	while (placed < want && t->heap_n) {
		uint32_t ci = c->s.cand_of_rank[h[0] & KEY_RANK_MASK];
		struct sched_cand *cd = &p->cands[ci];
		p->out[p->n_out++] = (int32_t)cd->node;
		cd->added++;
		placed++;
		if (cd->added == cd->room) {
			h[0] = h[--t->heap_n];
		} else {
			h[0] += (1ull << KEY_SVC_SHIFT) + (1ull << KEY_TOTAL_SHIFT);
		}
		sift_down(h, t->heap_n, 0);
	}
	t->tasks += placed;
	t->cap -= placed;
	return placed;
}

/* Tasks a child takes to reach level, within its capacity. */
static inline uint64_t fill_to(const struct sched_tnode *t, uint64_t level)
{
	if (level <= t->tasks)
		return 0;
	return level - t->tasks < t->cap ? level - t->tasks : t->cap;
}

static uint64_t filled(const struct sched_tnode *child, uint32_t n, uint64_t level)
{
	uint64_t f = 0;
	for (uint32_t i = 0; i < n; i++)
		f += fill_to(&child[i], level);
	return f;
}

/* Spreads want tasks over the subtree: capacity-aware water-filling over the
 * children's task counts (the highest level the tasks can raise every branch to,
 * branches that fill up before it keep what fits), the rest one each to the
 * first branches in value order at that level. This is what placing the tasks
 * one by one on the emptiest branch gives, computed once per level. */
static int place_subtree(struct plan *p, uint32_t ti, uint32_t want, uint32_t *ret)
{
	struct sched_scratch *s = &p->c->s;
	struct sched_tnode *t = &s->t[ti];
	if (!t->n_child) {
		*ret = place_leaf(p, t, want);
		return 0;
	}
	uint32_t first = t->first_child, nc = t->n_child, placed = 0;
	for (uint32_t round = UINT32_MAX; placed < want && t->cap > 0 && round != placed;) {
		const struct sched_tnode *ch = &s->t[first];
		round = placed;
		uint64_t m = want - placed;
		if (m >= t->cap) {
			for (uint32_t i = 0; i < nc; i++)
				s->quota[first + i] = ch[i].cap;
		} else {
			uint64_t lo = UINT64_MAX, hi = 0;
			for (uint32_t i = 0; i < nc; i++) {
				if (!ch[i].cap)
					continue;
				lo = ch[i].tasks < lo ? ch[i].tasks : lo;
				hi = ch[i].tasks + ch[i].cap > hi ? ch[i].tasks + ch[i].cap : hi;
			}
			/* filled(lo) = 0 <= m < filled(hi) = t->cap */
			while (hi - lo > 1) {
				uint64_t mid = lo + (hi - lo) / 2;
				if (filled(ch, nc, mid) <= m)
					lo = mid;
				else
					hi = mid;
			}
			uint64_t given = 0;
			for (uint32_t i = 0; i < nc; i++) {
				s->quota[first + i] = fill_to(&ch[i], lo);
				given += s->quota[first + i];
			}
			for (uint32_t i = 0; i < nc && given < m; i++) {
				uint64_t *q = &s->quota[first + i];
				if (ch[i].tasks + *q == lo && *q < ch[i].cap) {
					(*q)++;
					given++;
				}
			}
		}
		for (uint32_t i = 0; i < nc; i++) {
			uint32_t got = 0;
			if (!s->quota[first + i])
				continue;
			int r = place_subtree(p, first + i, (uint32_t)s->quota[first + i], &got);
			if (r < 0)
				return r;
			placed += got;
		}
		t = &s->t[ti];
		t->cap = 0;
		for (uint32_t i = 0; i < nc; i++)
			t->cap += s->t[first + i].cap;
	}
	t->tasks += placed;
	*ret = placed;
	return 0;
}

static int cmp_str_id_cb(const void *a, const void *b, void *arg)
{
	const struct sched_strtab *t = arg;
	return strcmp(t->str[*(const uint32_t *)a], t->str[*(const uint32_t *)b]);
}

/* Groups the candidates by preference values (a tree, first preference on top,
 * branches in value order) so that each leaf is a contiguous range. */
static int build_tree(struct plan *p)
{
	struct sched_cluster *c = p->c;
	struct sched_scratch *s = &c->s;
	const struct sched_creq *q = p->q;
	uint32_t n = p->n;
	s->n_t = 0;
	int r = grow((void **)&s->t, &s->cap_t, 1, sizeof(*s->t));
	if (r < 0)
		return r;
	s->t[s->n_t++] = (struct sched_tnode){.lo = 0, .hi = n};
	_cleanup_free_ uint32_t *distinct = NULL;
	_cleanup_free_ uint32_t *count = NULL;
	for (size_t l = 0; l < q->n_prefs; l++) {
		uint32_t *vals = s->vals + l * s->cap;
		uint32_t nd = 0;
		free(distinct);
		distinct = malloc((n ? n : 1) * sizeof(*distinct));
		if (!distinct)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t v = sched_node_value(c, &c->nodes[p->cands[i].node], &q->prefs[l]);
			vals[i] = v;
			if (s->local[v] == UINT32_MAX) {
				s->local[v] = 0;
				distinct[nd++] = v;
			}
		}
		qsort_r(distinct, nd, sizeof(*distinct), cmp_str_id_cb, &c->strs);
		for (uint32_t i = 0; i < nd; i++)
			s->local[distinct[i]] = i;
		for (uint32_t i = 0; i < n; i++)
			vals[i] = s->local[vals[i]];
		for (uint32_t i = 0; i < nd; i++)
			s->local[distinct[i]] = UINT32_MAX;
	}
	/* LSD radix sort of the candidates by their value tuple. */
	for (size_t l = q->n_prefs; l-- > 0;) {
		uint32_t *vals = s->vals + l * s->cap;
		uint32_t nv = 0;
		for (uint32_t i = 0; i < n; i++)
			if (vals[i] + 1 > nv)
				nv = vals[i] + 1;
		free(count);
		count = calloc((size_t)nv + 1, sizeof(*count));
		if (!count)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++)
			count[vals[i] + 1]++;
		for (uint32_t v = 1; v <= nv; v++)
			count[v] += count[v - 1];
		_cleanup_free_ uint32_t *perm = malloc((n ? n : 1) * sizeof(*perm));
		if (!perm)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++)
			perm[count[vals[i]]++] = i;
		for (uint32_t i = 0; i < n; i++)
			s->tmp[i] = p->cands[perm[i]];
		memcpy(p->cands, s->tmp, n * sizeof(*p->cands));
		for (size_t m = 0; m < q->n_prefs; m++) {
			uint32_t *vm = s->vals + m * s->cap;
			for (uint32_t i = 0; i < n; i++)
				((uint32_t *)s->keys)[i] = vm[perm[i]];
			memcpy(vm, s->keys, n * sizeof(*vm));
		}
	}
	/* Split each level's ranges by runs of equal value. */
	uint32_t level_lo = 0, level_hi = 1;
	for (size_t l = 0; l < q->n_prefs; l++) {
		const uint32_t *vals = s->vals + l * s->cap;
		for (uint32_t ti = level_lo; ti < level_hi; ti++) {
			uint32_t lo = s->t[ti].lo, hi = s->t[ti].hi;
			s->t[ti].first_child = s->n_t;
			for (uint32_t i = lo; i < hi;) {
				uint32_t j = i + 1;
				while (j < hi && vals[j] == vals[i])
					j++;
				if ((r = grow((void **)&s->t, &s->cap_t, s->n_t + 1,
					      sizeof(*s->t))) < 0)
					return r;
				s->t[s->n_t++] = (struct sched_tnode){.lo = i, .hi = j};
				s->t[ti].n_child++;
				i = j;
			}
		}
		level_lo = level_hi;
		level_hi = s->n_t;
	}
	if ((r = grow((void **)&s->quota, &s->cap_quota, s->n_t, sizeof(*s->quota))) < 0)
		return r;
	/* Task counts, leaves up. */
	for (uint32_t ti = s->n_t; ti-- > 0;) {
		struct sched_tnode *t = &s->t[ti];
		if (t->n_child) {
			for (uint32_t i = 0; i < t->n_child; i++) {
				t->tasks += s->t[t->first_child + i].tasks;
				t->cap += s->t[t->first_child + i].cap;
			}
		} else {
			for (uint32_t i = t->lo; i < t->hi; i++) {
				t->tasks += p->cands[i].cnt;
				t->cap += p->cands[i].room;
			}
		}
	}
	for (uint32_t i = 0; i < n; i++)
		s->cand_of_rank[c->rank[p->cands[i].node]] = i;
	return 0;
}

/* The static filters over every node: the candidates, and counts of the rest. */
static uint32_t collect(struct sched_cluster *c, struct sched_creq *q, struct sched_cand *cands)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		const struct sched_node *nd = &c->nodes[i];
		if (nd->removed)
			continue;
		size_t ci = 0;
		int f = sched_node_filter(c, nd, q, &ci);
		if (f >= 0) {
			q->rejected[f]++;
			if (f == SCHED_FILTER_CONSTRAINT)
				q->cons[ci].rejected++;
			continue;
		}
		struct sched_cand *cd = &cands[n++];
		cd->node = i;
		cd->cnt = q->svc_anywhere ? sched_u32map_get(&nd->svc, q->svc) : 0;
		cd->added = 0;
		sched_node_room(nd, q, cd);
	}
	return n;
}

static int commit(struct sched_cluster *c, const struct sched_creq *q, struct sched_cand *cd)
{
	struct sched_node *n = &c->nodes[cd->node];
	const struct sched_request *req = q->req;
	for (size_t i = 0; i < q->n_ports; i++) {
		int r = sched_node_ports_add(n, q->ports[i].code);
		if (r < 0)
			return r;
	}
	int r = sched_u32map_set(&n->svc, q->svc, cd->cnt + cd->added);
	if (r < 0)
		return r;
	n->tasks += cd->added;
	n->reserved.nano_cpus += (int64_t)cd->added * req->reservations.nano_cpus;
	n->reserved.memory_bytes += (int64_t)cd->added * req->reservations.memory_bytes;
	return sched_cluster_svc_total_add(c, q->svc, cd->added);
}

int sched_place(struct sched_cluster *c, const struct sched_request *req, struct sched_result *ret,
		struct shoal_err *err)
{
	memset(ret, 0, sizeof(*ret));
	_cleanup_free_ struct sched_creq *q = malloc(sizeof(*q));
	if (!q)
		return shoal_err_set(err, ENOMEM, "placing tasks");
	int r = sched_request_compile(c, req, true, q, err);
	if (r < 0)
		return r;
	if ((r = sched_cluster_rank_update(c)) < 0 || (r = scratch_reserve(c, c->n_nodes)) < 0)
		return shoal_err_set(err, -r, "placing tasks of %s", req->service_id);
	_cleanup_free_ int32_t *out = malloc((req->count ? req->count : 1) * sizeof(*out));
	if (!out)
		return shoal_err_set(err, ENOMEM, "placing %u tasks", req->count);
	struct plan p = {.c = c, .q = q, .cands = c->s.cands, .out = out};
	p.n = collect(c, q, p.cands);
	uint32_t eligible = 0;
	for (uint32_t i = 0; i < p.n; i++)
		eligible += p.cands[i].room > 0;
	uint32_t placed = 0;
	if (req->count && eligible) {
		if ((r = build_tree(&p)) < 0 || (r = place_subtree(&p, 0, req->count, &placed)) < 0)
			return shoal_err_set(err, -r, "placing tasks of %s", req->service_id);
	}
	for (uint32_t i = 0; i < p.n; i++) {
		struct sched_cand *cd = &p.cands[i];
		if (cd->added && !req->dry_run && (r = commit(c, q, cd)) < 0)
			return shoal_err_set(err, -r, "recording tasks of %s", req->service_id);
		if (cd->added < cd->room)
			continue;
		q->rejected[cd->reason]++;
		if (cd->reason == SCHED_FILTER_NODE_TASKS &&
		    c->nodes[cd->node].max_tasks > q->max_tasks_seen)
			q->max_tasks_seen = c->nodes[cd->node].max_tasks;
		if (cd->reason == SCHED_FILTER_HOST_PORT)
			q->ports[cd->detail].rejected++;
	}
	for (uint32_t i = placed; i < req->count; i++)
		out[i] = -1;
	if (placed < req->count && !(ret->explanation = sched_request_explain(q)))
		return shoal_err_set(err, ENOMEM, "explaining a placement");
	ret->count = req->count;
	ret->nodes = TAKE_PTR(out);
	ret->placed = placed;
	ret->eligible_nodes = eligible;
	memcpy(ret->rejected, q->rejected, sizeof(ret->rejected));
	return 0;
}

void sched_result_done(struct sched_result *r)
{
	if (!r)
		return;
	free(r->nodes);
	free(r->explanation);
	memset(r, 0, sizeof(*r));
}

int sched_global_missing(struct sched_cluster *c, const struct sched_request *req,
			 uint32_t **ret_nodes, size_t *ret_n, struct shoal_err *err)
{
	_cleanup_free_ struct sched_creq *q = malloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	int r = sched_request_compile(c, req, false, q, err);
	if (r < 0)
		return r;
	_cleanup_free_ uint32_t *nodes = malloc((c->n_nodes ? c->n_nodes : 1) * sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	size_t n = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		const struct sched_node *nd = &c->nodes[i];
		size_t ci;
		if (nd->removed || sched_node_filter(c, nd, q, &ci) >= 0)
			continue;
		if (q->svc_anywhere && sched_u32map_has(&nd->svc, q->svc))
			continue;
		nodes[n++] = i;
	}
	*ret_nodes = TAKE_PTR(nodes);
	*ret_n = n;
	return 0;
}

int sched_place_on_node(struct sched_cluster *c, const struct sched_request *req, uint32_t node,
			struct shoal_err *err)
{
	struct sched_node *nd = sched_cluster_live_node(c, node);
	if (!nd)
		return shoal_err_set(err, ENOENT, "no node at index %u", node);
	_cleanup_free_ struct sched_creq *q = malloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	int r = sched_request_compile(c, req, true, q, err);
	if (r < 0)
		return r;
	const char *id = c->strs.str[nd->id];
	size_t ci = 0;
	int f = sched_node_filter(c, nd, q, &ci);
	struct sched_cand cd = {.node = node, .cnt = sched_u32map_get(&nd->svc, q->svc)};
	if (f < 0) {
		sched_node_room(nd, q, &cd);
		if (cd.room > 0) {
			cd.added = 1;
			if (!req->dry_run && (r = commit(c, q, &cd)) < 0)
				return shoal_err_set(err, -r, "recording a task of %s",
						     req->service_id);
			return 0;
		}
		f = cd.reason;
	}
	switch (f) {
	case SCHED_FILTER_NOT_READY:
		return shoal_err_set(err, ENOSPC, "node %s: not ready", id);
	case SCHED_FILTER_PAUSED:
		return shoal_err_set(err, ENOSPC, "node %s: paused", id);
	case SCHED_FILTER_DRAINING:
		return shoal_err_set(err, ENOSPC, "node %s: draining", id);
	case SCHED_FILTER_CONSTRAINT: {
		const struct constraint *k = &req->constraints[ci];
		return shoal_err_set(err, ENOSPC, "node %s: constraint %s%s%s not met", id, k->key,
				     k->op == CONSTRAINT_EQ ? "==" : "!=", k->value);
	}
	case SCHED_FILTER_CPU:
		return shoal_err_set(err, ENOSPC, "node %s: insufficient CPU", id);
	case SCHED_FILTER_MEMORY:
		return shoal_err_set(err, ENOSPC, "node %s: insufficient memory", id);
	case SCHED_FILTER_MAX_REPLICAS:
		return shoal_err_set(err, ENOSPC, "node %s: max replicas per node (%llu) reached",
				     id, (unsigned long long)req->max_replicas);
	case SCHED_FILTER_HOST_PORT:
		return shoal_err_set(err, ENOSPC, "node %s: host port %u/%s in use", id,
				     q->ports[cd.detail].code & 0xffff,
				     sched_port_proto_name(q->ports[cd.detail].code >> 16));
	case SCHED_FILTER_NODE_TASKS:
		return shoal_err_set(
			err, ENOSPC,
			"node %s: its task limit (%u tasks at once: its containers and "
			"network addresses) reached",
			id, nd->max_tasks);
	default:
		return shoal_err_set(err, ENOSPC, "node %s: task count limit reached", id);
	}
}
