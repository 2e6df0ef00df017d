// SPDX-License-Identifier: Apache-2.0
/* One orchestrator pass over a service: slots built from the task records, then
 * reconciled per mode, updated, and trimmed to their history limit. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "sched/orchestrator-internal.h"

static const char *const action_names[] = {
	[ORCH_ACT_CREATE] = "create",	  [ORCH_ACT_START] = "start",
	[ORCH_ACT_SHUTDOWN] = "shutdown", [ORCH_ACT_ORPHAN] = "orphan",
	[ORCH_ACT_DELETE] = "delete",	  [ORCH_ACT_ROLLBACK] = "rollback",
};

const char *orch_action_type_name(enum orch_action_type t)
{
	if ((unsigned)t >= ARRAY_SIZE(action_names))
		return NULL;
	return action_names[t];
}

void orch_result_clear(struct orch_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_actions; i++)
		orch_task_clear(&r->actions[i].task);
	free(r->actions);
	memset(r, 0, sizeof(*r));
}

void orch_ctx_wake(struct orch_ctx *c, int64_t at)
{
	if (at > c->now && (c->res->wake_ns == 0 || at < c->res->wake_ns))
		c->res->wake_ns = at;
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp((*(const struct orch_node *const *)a)->id,
		      (*(const struct orch_node *const *)b)->id);
}

const struct orch_node *orch_ctx_node_find(struct orch_ctx *c, const char *id)
{
	struct orch_node key = {.id = id};
	const struct orch_node *k = &key, **f;

	if (!id || !id[0] || !c->n_nodes)
		return NULL;
	f = bsearch(&k, c->nodes, c->n_nodes, sizeof(*c->nodes), cmp_node);
	return f ? *f : NULL;
}

enum orch_nstate orch_ctx_node_state(struct orch_ctx *c, const struct orch_task *t)
{
	const struct orch_node *n;

	if (!t->node_id[0])
		return N_UNASSIGNED;
	n = orch_ctx_node_find(c, t->node_id);
	if (!n)
		return N_GONE;
	if (!n->ready)
		return N_DOWN;
	if (n->availability == NODE_DRAIN)
		return N_DRAIN;
	if (n->availability == NODE_PAUSE)
		return N_PAUSE;
	return N_OK;
}

/* ---- the pass ---- */

static int cmp_wtask(const void *a, const void *b)
{
	const struct orch_wtask *x = *(const struct orch_wtask *const *)a,
				*y = *(const struct orch_wtask *const *)b;
	if (x->t.created_ns != y->t.created_ns)
		return x->t.created_ns < y->t.created_ns ? -1 : 1;
	return strcmp(x->t.id, y->t.id);
}

static int cmp_slot_key(const struct orch_wtask *x, const struct orch_wtask *y, bool global)
{
	if (global)
		return strcmp(x->t.node_id, y->t.node_id);
	return x->t.slot < y->t.slot ? -1 : x->t.slot > y->t.slot;
}

static int cmp_wtask_slot(const void *a, const void *b, void *global)
{
	const struct orch_wtask *x = *(const struct orch_wtask *const *)a,
				*y = *(const struct orch_wtask *const *)b;
	int r = cmp_slot_key(x, y, *(bool *)global);
	return r ? r : cmp_wtask(a, b);
}

static int build_slots(struct orch_ctx *c, bool global)
{
	size_t n = c->in->n_tasks;
	_cleanup_free_ struct orch_wtask **order = calloc(n ? n : 1, sizeof(*order));
	int r;

	if (!order)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		order[i] = &c->work[i];
	qsort_r(order, n, sizeof(*order), cmp_wtask_slot, &global);

	/* Room for a slot per task, per node (global) or per replica (scale up). */
	size_t cap = n + (global ? c->n_nodes : c->svc->replicas) + 1;
	c->slots = calloc(cap, sizeof(*c->slots));
	if (!c->slots)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!c->n_slots || cmp_slot_key(order[i], order[i - 1], global) != 0) {
			struct orch_slot *s = &c->slots[c->n_slots++];
			s->num = global ? 0 : order[i]->t.slot;
			s->node_id = global ? order[i]->t.node_id : NULL;
		}
		if ((r = orch_slot_append(c, &c->slots[c->n_slots - 1], order[i])) < 0)
			return r;
	}
	return 0;
}

static int scale_rank(struct orch_slot *s)
{
	struct orch_wtask *rep = orch_slot_rep(s);
	if (!rep || !orch_task_live(&rep->t) || rep->t.state != TASK_RUNNING)
		return 0;
	return orch_task_up(&rep->t) ? 2 : 1;
}

static int cmp_victim(const void *a, const void *b)
{
	struct orch_slot *x = *(struct orch_slot *const *)a, *y = *(struct orch_slot *const *)b;
	int rx = scale_rank(x), ry = scale_rank(y);
	if (rx != ry)
		return rx - ry;
	return x->num > y->num ? -1 : x->num < y->num;
}

static int remove_slot(struct orch_ctx *c, struct orch_slot *s, enum orch_stop_cause cause,
		       const char *why)
{
	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *w = s->w[i];
		if (w->deleted)
			continue;
		int r = orch_wtask_shutdown(c, w, TASK_REMOVE, cause, "%s", why);
		if (r < 0)
			return r;
	}
	return 0;
}

static int reconcile_replicated(struct orch_ctx *c)
{
	_cleanup_free_ struct orch_slot **occ = calloc(c->n_slots + 1, sizeof(*occ));
	size_t n_occ = 0, made = 0;
	int r;

	if (!occ)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_slots; i++) {
		struct orch_slot *s = &c->slots[i];
		if (s->num == 0) {
			/* Not a replicated slot (left from another mode): retire it. */
			if ((r = remove_slot(c, s, ORCH_STOP_DUPLICATE, "task has no slot")) < 0)
				return r;
			continue;
		}
		if (orch_slot_occupied(s))
			occ[n_occ++] = s;
	}
	if (n_occ > c->svc->replicas) {
		qsort(occ, n_occ, sizeof(*occ), cmp_victim);
		for (size_t i = 0; i < n_occ - c->svc->replicas; i++) {
			occ[i]->victim = true;
			if ((r = remove_slot(c, occ[i], ORCH_STOP_SCALE_DOWN, "scaled down")) < 0)
				return r;
		}
	}
	for (size_t i = 0; i < c->n_slots; i++) {
		struct orch_slot *s = &c->slots[i];
		if (!s->num || s->victim || !orch_slot_occupied(s))
			continue;
		if ((r = orch_slot_fix(c, s, false, true)) < 0)
			return r;
		s->updatable = true;
		made++;
	}
	/* Scale up into the lowest free slots (slots left with only history
	 * count as free and pass that history on). */
	uint64_t want = c->svc->replicas > made ? c->svc->replicas - made : 0;
	if (c->in->max_new_slots && want > c->in->max_new_slots)
		want = c->in->max_new_slots;
	size_t idx = 0, n0 = c->n_slots;
	for (uint64_t num = 1; want; num++) {
		struct orch_slot *s = NULL;
		while (idx < n0 && c->slots[idx].num < num)
			idx++;
		if (idx < n0 && c->slots[idx].num == num)
			s = &c->slots[idx];
		if (s && (s->updatable || s->victim))
			continue;
		if (!s) {
			s = &c->slots[c->n_slots++];
			s->num = num;
		}
		struct orch_wtask *prev = orch_slot_newest(s);
		if ((r = orch_slot_create(c, s, prev ? &prev->t : NULL, false, NULL, 0,
					  "created")) < 0)
			return r;
		want--;
	}
	return 0;
}

static int reconcile_global(struct orch_ctx *c)
{
	int r;

	/* Slots for nodes that have no task yet (both lists are sorted by id). */
	size_t k = 0, n0 = c->n_slots;
	for (size_t i = 0; i < c->n_nodes; i++) {
		while (k < n0 && strcmp(c->slots[k].node_id, c->nodes[i]->id) < 0)
			k++;
		if (k < n0 && strcmp(c->slots[k].node_id, c->nodes[i]->id) == 0)
			continue;
		c->slots[c->n_slots++].node_id = c->nodes[i]->id;
	}
	for (size_t i = 0; i < c->n_slots; i++) {
		struct orch_slot *s = &c->slots[i];
		const struct orch_node *n = orch_ctx_node_find(c, s->node_id);

		if (!s->node_id[0]) {
			r = remove_slot(c, s, ORCH_STOP_DUPLICATE, "task has no node");
		} else if (!n) {
			r = remove_slot(c, s, ORCH_STOP_NODE_REMOVED, "node left the cluster");
		} else if (!n->eligible || n->availability == NODE_DRAIN) {
			bool drain = n->availability == NODE_DRAIN;
			r = 0;
			for (size_t j = 0; j < s->n && r >= 0; j++)
				if (orch_task_live(&s->w[j]->t))
					r = orch_wtask_shutdown(
						c, s->w[j], TASK_SHUTDOWN,
						drain ? ORCH_STOP_NODE_DRAIN
						      : ORCH_STOP_NODE_INELIGIBLE,
						drain ? "node %s is draining"
						      : "node %s does not meet the constraints",
						n->id);
		} else {
			bool active = n->ready && n->availability == NODE_ACTIVE;
			r = orch_slot_fix(c, s, true, active);
			if (r >= 0 && active) {
				s->updatable = orch_slot_occupied(s);
				if (!s->updatable) {
					struct orch_wtask *prev = orch_slot_newest(s);
					r = orch_slot_create(c, s, prev ? &prev->t : NULL, false,
							     NULL, 0, "created");
				}
			}
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int reconcile_removed(struct orch_ctx *c)
{
	size_t left = 0;
	int r;

	for (size_t i = 0; i < c->n_slots; i++) {
		struct orch_slot *s = &c->slots[i];
		if ((r = remove_slot(c, s, ORCH_STOP_SERVICE_REMOVED, "service removed")) < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_slots; i++) {
		struct orch_slot *s = &c->slots[i];
		if ((r = orch_slot_retain(c, s)) < 0)
			return r;
		for (size_t k = 0; k < s->n; k++)
			left += !s->w[k]->deleted;
	}
	c->res->service_gone = left == 0;
	return 0;
}

static const struct orch_task *orch_input_task(const struct orch_input *in, size_t i)
{
	return in->task_ptrs ? in->task_ptrs[i] : &in->tasks[i];
}

static int check_input(const struct orch_input *in, struct shoal_err *err)
{
	const struct orch_service *s = in->service;

	if (!s || !s->id || !s->id[0])
		return shoal_err_set(err, EINVAL, "orchestrator: no service");
	if (!in->update)
		return shoal_err_set(err, EINVAL, "service %s: no update state", s->id);
	if (!s->spec_version)
		return shoal_err_set(err, EINVAL, "service %s: spec version 0", s->id);
	if (s->mode != ORCH_REPLICATED && s->mode != ORCH_GLOBAL)
		return shoal_err_set(err, EINVAL, "service %s: unknown mode", s->id);
	if (s->replicas > ORCH_MAX_REPLICAS)
		return shoal_err_set(err, E2BIG, "service %s: more than %d replicas", s->id,
				     ORCH_MAX_REPLICAS);
	if (in->n_tasks > ORCH_MAX_TASKS || in->n_nodes > ORCH_MAX_NODES)
		return shoal_err_set(err, E2BIG, "service %s: too many tasks or nodes", s->id);
	if ((in->n_tasks && !in->tasks && !in->task_ptrs) || (in->n_nodes && !in->nodes))
		return shoal_err_set(err, EINVAL, "service %s: missing task or node array", s->id);
	for (size_t i = 0; i < in->n_tasks; i++)
		if (!orch_input_task(in, i)->id[0])
			return shoal_err_set(err, EINVAL, "service %s: task %zu has no id", s->id,
					     i);
	for (size_t i = 0; i < in->n_nodes; i++)
		if (!in->nodes[i].id || !in->nodes[i].id[0])
			return shoal_err_set(err, EINVAL, "service %s: node %zu has no id", s->id,
					     i);
	return 0;
}

int orch_reconcile(const struct orch_input *in, int64_t now_ns, struct orch_result *ret,
		   struct shoal_err *err)
{
	struct orch_ctx c = {
		.in = in,
		.res = ret,
		.err = err,
		.now = now_ns,
	};
	bool go = true;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = check_input(in, err)) < 0)
		return r;
	c.svc = in->service;
	c.u = in->update;
	c.target = c.svc->spec_version;
	c.history_limit = in->history_limit ? in->history_limit : ORCH_DEFAULT_HISTORY_LIMIT;
	c.orphan_after = in->orphan_after_ns > 0 ? in->orphan_after_ns : ORCH_DEFAULT_ORPHAN_AFTER;

	c.nodes = calloc(in->n_nodes + 1, sizeof(*c.nodes));
	c.work = calloc(in->n_tasks + 1, sizeof(*c.work));
	if (!c.nodes || !c.work) {
		r = shoal_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < in->n_nodes; i++)
		c.nodes[i] = &in->nodes[i];
	c.n_nodes = in->n_nodes;
	qsort(c.nodes, c.n_nodes, sizeof(*c.nodes), cmp_node);
	for (size_t i = 1; i < c.n_nodes; i++)
		if (strcmp(c.nodes[i - 1]->id, c.nodes[i]->id) == 0) {
			r = shoal_err_set(err, EINVAL, "node %s listed twice", c.nodes[i]->id);
			goto out;
		}
	/* Shallow copies: the restart arrays stay the caller's and are only read. */
	for (size_t i = 0; i < in->n_tasks; i++)
		c.work[i].t = *orch_input_task(in, i);

	if (!c.svc->removed && (r = orch_ctx_update_begin(&c, &go)) < 0)
		goto out;
	if (!go)
		goto out;
	if ((r = build_slots(&c, c.svc->mode == ORCH_GLOBAL)) < 0)
		goto out;
	if ((r = orch_ctx_orphan_pass(&c, c.svc->removed)) < 0)
		goto out;
	if (c.svc->removed) {
		r = reconcile_removed(&c);
		goto out;
	}
	r = c.svc->mode == ORCH_GLOBAL ? reconcile_global(&c) : reconcile_replicated(&c);
	if (r < 0)
		goto out;
	if ((r = orch_ctx_update_step(&c)) < 0)
		goto out;
	for (size_t i = 0; i < c.n_slots; i++)
		if ((r = orch_slot_retain(&c, &c.slots[i])) < 0)
			goto out;
	r = 0;
out:
	for (size_t i = 0; i < c.n_slots; i++)
		free(c.slots[i].w);
	free(c.slots);
	for (size_t i = 0; i < c.n_extra; i++) {
		orch_task_clear(&c.extra[i]->t);
		free(c.extra[i]);
	}
	free(c.extra);
	free(c.work);
	free(c.nodes);
	if (r < 0)
		orch_result_clear(ret);
	return r;
}

int orch_action_apply(struct orch_task *t, const struct orch_action *a, int64_t now_ns,
		      struct shoal_err *err)
{
	int r;

	switch (a->type) {
	case ORCH_ACT_START:
		if (t->desired_state != TASK_PREPARING)
			return shoal_err_set(err, EINVAL, "task %s is not held", t->id);
		return orch_task_set_desired(t, TASK_RUNNING, now_ns, ORCH_STOP_NONE, a->message,
					     err);
	case ORCH_ACT_SHUTDOWN:
		r = orch_task_set_desired(t, a->desired, now_ns, a->cause, a->message, err);
		if (r < 0)
			return r;
		t->stop_grace_ns = a->stop_grace_ns;
		return 0;
	case ORCH_ACT_ORPHAN:
		return orch_task_set_state(t, TASK_ORPHANED, now_ns, a->message, err);
	default:
		return shoal_err_set(err, EINVAL, "%s is not an action on an existing task",
				     orch_action_type_name(a->type) ?: "?");
	}
}

int orch_task_from_action(struct orch_task *ret, const struct orch_action *a, const char *id,
			  struct shoal_err *err)
{
	if (a->type != ORCH_ACT_CREATE)
		return shoal_err_set(err, EINVAL, "not a create action");
	if (!id || !id[0] || strlen(id) >= ORCH_ID_MAX)
		return shoal_err_set(err, EINVAL, "invalid task id");
	if (orch_task_copy(ret, &a->task) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(ret->id, sizeof(ret->id), "%s", id);
	return 0;
}
