// SPDX-License-Identifier: Apache-2.0
/* Per-slot work: the actions on tasks, restarts per the restart policy, hand-overs,
 * duplicates, orphans and task history. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "sched/orchestrator-internal.h"

/* A node that stops reporting gets this long past its stop grace period
 * before a task waiting for one of its tasks to stop goes ahead anyway. */
#define ORCH_STOP_SLACK_NS (5LL * 1000000000LL)

/* ---- actions ---- */

struct orch_action *orch_ctx_push(struct orch_ctx *c, enum orch_action_type type)
{
	struct orch_result *r = c->res;

	if (r->n_actions == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct orch_action *a;
		if (r->cap >= ORCH_MAX_ACTIONS) {
			shoal_err_set(c->err, E2BIG, "more than %u actions for one service",
				      ORCH_MAX_ACTIONS);
			errno = E2BIG;
			return NULL;
		}
		a = reallocarray(r->actions, cap, sizeof(*a));
		if (!a) {
			shoal_err_set(c->err, ENOMEM, "out of memory");
			errno = ENOMEM;
			return NULL;
		}
		r->actions = a;
		r->cap = cap;
	}
	struct orch_action *a = &r->actions[r->n_actions++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

int orch_wtask_shutdown(struct orch_ctx *c, struct orch_wtask *w, enum task_state desired,
			enum orch_stop_cause cause, const char *fmt, ...)
{
	struct orch_action *a;
	va_list ap;

	if (w->t.desired_state >= desired)
		return 0;
	a = orch_ctx_push(c, ORCH_ACT_SHUTDOWN);
	if (!a)
		return -errno;
	snprintf(a->task_id, sizeof(a->task_id), "%s", w->t.id);
	a->desired = desired;
	a->cause = cause;
	a->stop_grace_ns = c->svc->stop_grace_ns;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	w->touched = true;
	return orch_action_apply(&w->t, a, c->now, c->err);
}

/* A START or ORPHAN action on w, with its message. */
static int do_act(struct orch_ctx *c, struct orch_wtask *w, enum orch_action_type type,
		  const char *msg)
{
	struct orch_action *a = orch_ctx_push(c, type);
	if (!a)
		return -errno;
	snprintf(a->task_id, sizeof(a->task_id), "%s", w->t.id);
	snprintf(a->message, sizeof(a->message), "%s", msg);
	w->touched = true;
	return orch_action_apply(&w->t, a, c->now, c->err);
}

static int do_start(struct orch_ctx *c, struct orch_wtask *w)
{
	return do_act(c, w, ORCH_ACT_START, "starting");
}

static int do_orphan(struct orch_ctx *c, struct orch_wtask *w, const char *why)
{
	return do_act(c, w, ORCH_ACT_ORPHAN, why);
}

static int do_delete(struct orch_ctx *c, struct orch_wtask *w)
{
	struct orch_action *a = orch_ctx_push(c, ORCH_ACT_DELETE);
	if (!a)
		return -errno;
	snprintf(a->task_id, sizeof(a->task_id), "%s", w->t.id);
	w->deleted = true;
	return 0;
}

int orch_slot_append(struct orch_ctx *c, struct orch_slot *s, struct orch_wtask *w)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		struct orch_wtask **n = reallocarray(s->w, cap, sizeof(*n));
		if (!n)
			return shoal_err_set(c->err, ENOMEM, "out of memory");
		s->w = n;
		s->cap = cap;
	}
	s->w[s->n++] = w;
	return 0;
}

/* The restart history a new task in the slot carries: its predecessor's,
 * windowed, plus this restart when bump. A new spec starts afresh. */
static int history_next(struct orch_ctx *c, const struct orch_task *prev, bool bump,
			struct orch_task *nt)
{
	const struct restart_policy *p = &c->svc->restart;
	size_t keep = p->max_attempts ? (p->max_attempts < ORCH_RESTART_HISTORY_MAX
						 ? (size_t)p->max_attempts
						 : ORCH_RESTART_HISTORY_MAX)
				      : 0;
	size_t n = 0, from = 0, total;
	int64_t *h;

	nt->restart_count = 0;
	nt->restarts = NULL;
	nt->n_restarts = 0;
	if (prev && prev->spec_version == c->target) {
		nt->restart_count = prev->restart_count;
		n = prev->n_restarts;
		if (p->window_ns > 0)
			while (from < n && prev->restarts[from] <= c->now - p->window_ns)
				from++;
	}
	if (bump)
		nt->restart_count++;
	total = (n - from) + (bump ? 1 : 0);
	if (total > keep) {
		size_t drop = total - keep;
		from += drop;
		total = keep;
	}
	if (!total)
		return 0;
	h = calloc(total, sizeof(*h));
	if (!h)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = from; prev && i < n; i++)
		h[k++] = prev->restarts[i];
	if (bump && k < total)
		h[k++] = c->now;
	nt->restarts = h;
	nt->n_restarts = k;
	return 0;
}

/* Whether a held task may start now: its start time has come and the task
 * it takes over from has stopped, will never report (node down, gone, never
 * placed), or had its grace period and more. */
static bool held_ready(struct orch_ctx *c, struct orch_slot *s, const struct orch_task *h,
		       int64_t *ret_wait)
{
	const struct orch_task *pred = NULL;
	int64_t until;

	*ret_wait = 0;
	if (h->start_at_ns > c->now) {
		*ret_wait = h->start_at_ns;
		return false;
	}
	if (!h->replaces[0])
		return true;
	for (size_t i = 0; i < s->n; i++)
		if (!s->w[i]->deleted && strcmp(s->w[i]->t.id, h->replaces) == 0)
			pred = &s->w[i]->t;
	if (!pred || orch_task_live(pred) || orch_task_ended(pred))
		return true;
	switch (orch_ctx_node_state(c, pred)) {
	case N_DOWN:
	case N_GONE:
		return true;
	case N_UNASSIGNED:
		if (pred->state < TASK_ASSIGNED)
			return true;
		break;
	default:
		break;
	}
	until = pred->desired_ns + pred->stop_grace_ns + ORCH_STOP_SLACK_NS;
	if (c->now >= until)
		return true;
	*ret_wait = until;
	return false;
}

int orch_slot_create(struct orch_ctx *c, struct orch_slot *s, const struct orch_task *prev,
		     bool bump, const char *replaces, int64_t start_at, const char *why)
{
	_cleanup_free_ struct orch_wtask *w = calloc(1, sizeof(*w));
	struct orch_task *t;
	struct orch_action *a;
	int64_t wait;
	int r;

	if (!w)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	t = &w->t;
	snprintf(t->service_id, sizeof(t->service_id), "%s", c->svc->id);
	t->slot = s->num;
	if (s->node_id)
		snprintf(t->node_id, sizeof(t->node_id), "%s", s->node_id);
	t->spec_version = c->target;
	t->state = TASK_NEW;
	t->state_ns[TASK_NEW] = c->now;
	t->created_ns = c->now;
	t->desired_ns = c->now;
	t->stop_grace_ns = c->svc->stop_grace_ns;
	t->health = TASK_HEALTH_NONE;
	snprintf(t->replaces, sizeof(t->replaces), "%s", replaces ? replaces : "");
	snprintf(t->message, sizeof(t->message), "%s", why);
	t->start_at_ns = start_at > c->now ? start_at : 0;
	t->desired_state = TASK_PREPARING;
	if (held_ready(c, s, t, &wait))
		t->desired_state = TASK_RUNNING;
	else
		orch_ctx_wake(c, wait);
	r = history_next(c, prev, bump, t);
	if (r < 0)
		return r;

	if (c->n_extra == c->cap_extra) {
		size_t cap = c->cap_extra ? c->cap_extra * 2 : 16;
		struct orch_wtask **n = reallocarray(c->extra, cap, sizeof(*n));
		if (!n) {
			orch_task_clear(t);
			return shoal_err_set(c->err, ENOMEM, "out of memory");
		}
		c->extra = n;
		c->cap_extra = cap;
	}
	a = orch_ctx_push(c, ORCH_ACT_CREATE);
	if (!a || (r = orch_task_copy(&a->task, t)) < 0) {
		orch_task_clear(t);
		return a ? shoal_err_set(c->err, ENOMEM, "out of memory") : -errno;
	}
	snprintf(a->message, sizeof(a->message), "%s", why);
	w->created = true;
	c->extra[c->n_extra++] = w;
	return orch_slot_append(c, s, TAKE_PTR(w));
}

/* ---- restart policy ---- */

enum orch_restart_decision orch_restart_decide(const struct restart_policy *p,
					       const struct orch_task *t, uint64_t target_version,
					       bool failed, int64_t now_ns, int64_t *ret_at_ns)
{
	int64_t at = now_ns + (p->delay_ns > 0 ? p->delay_ns : 0);
	size_t first = 0, recent;

	if (p->condition == RESTART_NONE)
		return ORCH_RESTART_NEVER;
	if (p->condition == RESTART_ON_FAILURE && !failed)
		return ORCH_RESTART_NEVER;
	if (p->max_attempts && t->spec_version == target_version) {
		if (p->window_ns <= 0) {
			if (t->restart_count >= p->max_attempts)
				return ORCH_RESTART_NEVER;
		} else {
			while (first < t->n_restarts && t->restarts[first] <= now_ns - p->window_ns)
				first++;
			recent = t->n_restarts - first;
			if (recent >= p->max_attempts) {
				/* Rate-limited: the next restart comes when the oldest
				 * restart that still counts leaves the window. */
				int64_t e = t->restarts[first + (recent - p->max_attempts)];
				if (e + p->window_ns > at)
					at = e + p->window_ns;
			}
		}
	}
	*ret_at_ns = at;
	return ORCH_RESTART_AT;
}

/* ---- per slot ---- */

static struct orch_wtask *find_successor(struct orch_slot *s, const struct orch_task *t,
					 bool live_only)
{
	if (!t->id[0])
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *o = s->w[i];
		if (o->deleted || &o->t == t)
			continue;
		if (live_only && !orch_task_live(&o->t))
			continue;
		if (strcmp(o->t.replaces, t->id) == 0)
			return o;
	}
	return NULL;
}

static struct orch_wtask *find_id(struct orch_slot *s, const char *id)
{
	if (!id || !id[0])
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (!s->w[i]->deleted && strcmp(s->w[i]->t.id, id) == 0)
			return s->w[i];
	return NULL;
}

/* A task that ended or went unhealthy while meant to run. */
static int handle_failure(struct orch_ctx *c, struct orch_slot *s, struct orch_wtask *w,
			  bool unhealthy, bool may_create)
{
	struct orch_task *t = &w->t;
	const char *what = unhealthy ? "unhealthy" : task_state_name(t->state);
	struct orch_wtask *pred;
	int64_t at = 0;
	int r;

	if (find_successor(s, t, false))
		return orch_wtask_shutdown(c, w, TASK_SHUTDOWN,
					   unhealthy ? ORCH_STOP_UNHEALTHY : ORCH_STOP_ENDED,
					   "task %s; already replaced", what);
	if (!may_create)
		return unhealthy ? orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_UNHEALTHY,
						       "task unhealthy; node takes no new tasks")
				 : 0;
	enum orch_restart_decision d =
		orch_restart_decide(&c->svc->restart, t, c->target,
				    unhealthy || t->state != TASK_COMPLETE, c->now, &at);
	if (d == ORCH_RESTART_NEVER) {
		const struct restart_policy *p = &c->svc->restart;
		if (p->condition == RESTART_NONE)
			return orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NO_RESTART,
						   "task %s; restart policy: none", what);
		if (p->condition == RESTART_ON_FAILURE && !unhealthy && t->state == TASK_COMPLETE)
			return orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NO_RESTART,
						   "task complete; restart policy: on-failure");
		return orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NO_RESTART,
					   "task %s; restart policy: %" PRIu64
					   " restart attempts used",
					   what, p->max_attempts);
	}
	r = orch_wtask_shutdown(c, w, TASK_SHUTDOWN,
				unhealthy ? ORCH_STOP_UNHEALTHY : ORCH_STOP_ENDED,
				"task %s; restarting", what);
	if (r < 0)
		return r;
	/* A start-first successor that failed passes the hand-over on: the task
	 * it was to take over from keeps running until the new one is up. */
	pred = find_id(s, t->replaces);
	if (pred && orch_task_live(&pred->t) && !orch_task_ended(&pred->t))
		return orch_slot_create(c, s, t, true, pred->t.id, at, "restart");
	return orch_slot_create(c, s, t, true, t->id, at, "restart");
}

/* Score for keeping one of several tasks in a slot: up beats starting beats
 * the rest, the target spec beats others, newer beats older. */
static int64_t keep_rank(struct orch_ctx *c, const struct orch_task *t)
{
	int64_t r = 0;
	if (orch_task_up(t))
		r += 4;
	else if (t->state == TASK_RUNNING)
		r += 2;
	if (t->spec_version == c->target)
		r += 1;
	return r;
}

/* Several live tasks in one slot that are not a hand-over pair: keep one. */
static int resolve_duplicates(struct orch_ctx *c, struct orch_slot *s)
{
	struct orch_wtask *best = NULL;
	size_t units = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *w = s->w[i];
		if (w->deleted || !orch_task_live(&w->t))
			continue;
		/* The older half of a pair is represented by its successor. */
		if (find_successor(s, &w->t, true))
			continue;
		units++;
		if (!best || keep_rank(c, &w->t) >= keep_rank(c, &best->t))
			best = w;
	}
	if (units <= 1)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *w = s->w[i], *succ;
		int r;
		if (w == best || w->deleted || !orch_task_live(&w->t))
			continue;
		succ = find_successor(s, &w->t, true);
		if (succ == best)
			continue;
		r = orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_DUPLICATE,
					"duplicate task in slot");
		if (r < 0)
			return r;
	}
	return 0;
}

int orch_slot_fix(struct orch_ctx *c, struct orch_slot *s, bool global, bool may_create)
{
	size_t n0 = s->n;
	int r;

	for (size_t i = 0; i < n0; i++) {
		struct orch_wtask *w = s->w[i];
		struct orch_task *t = &w->t;
		enum orch_nstate ns;

		if (w->deleted || !orch_task_live(t))
			continue;
		ns = orch_ctx_node_state(c, t);
		if (!global && (ns == N_DOWN || ns == N_GONE)) {
			r = orch_wtask_shutdown(
				c, w, TASK_SHUTDOWN,
				ns == N_DOWN ? ORCH_STOP_NODE_DOWN : ORCH_STOP_NODE_REMOVED,
				"node %s is %s", t->node_id, ns == N_DOWN ? "down" : "gone");
			if (r >= 0 && !find_successor(s, t, false))
				r = orch_slot_create(c, s, t, false, t->id, 0,
						     "task rescheduled: node lost");
		} else if (global && ns == N_DOWN) {
			/* Nothing else can run it: wait for the node, unless it was
			 * given up on (orphaned). */
			r = t->state == TASK_ORPHANED
				    ? orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NODE_DOWN,
							  "node %s is down", t->node_id)
				    : 0;
		} else if (orch_task_ended(t)) {
			r = handle_failure(c, s, w, false, may_create);
		} else if (orch_task_unhealthy(t)) {
			r = handle_failure(c, s, w, true, may_create);
		} else if (!global && ns == N_DRAIN) {
			if (find_successor(s, t, true))
				continue;
			if (c->svc->update.order == ORDER_START_FIRST) {
				r = orch_slot_create(c, s, t, false, t->id, 0,
						     "task rescheduled: node draining");
			} else {
				r = orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NODE_DRAIN,
							"node %s is draining", t->node_id);
				if (r >= 0)
					r = orch_slot_create(c, s, t, false, t->id, 0,
							     "task rescheduled: node draining");
			}
		} else {
			r = 0;
		}
		if (r < 0)
			return r;
	}

	/* Held tasks start when their time has come and their predecessor stopped. */
	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *w = s->w[i];
		int64_t wait;
		if (w->deleted || w->created || w->t.desired_state != TASK_PREPARING)
			continue;
		if (held_ready(c, s, &w->t, &wait)) {
			if ((r = do_start(c, w)) < 0)
				return r;
		} else {
			orch_ctx_wake(c, wait);
		}
	}

	/* Hand-over: the old task goes once its successor is up (and healthy). */
	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *w = s->w[i], *succ;
		if (w->deleted || !orch_task_live(&w->t))
			continue;
		succ = find_successor(s, &w->t, true);
		if (!succ || succ->t.desired_state != TASK_RUNNING || !orch_task_up(&succ->t))
			continue;
		bool drain = orch_ctx_node_state(c, &w->t) == N_DRAIN;
		r = orch_wtask_shutdown(
			c, w, TASK_SHUTDOWN, drain ? ORCH_STOP_NODE_DRAIN : ORCH_STOP_UPDATE,
			drain ? "node %s is draining" : "replaced by task in slot%s",
			drain ? w->t.node_id : "");
		if (r < 0)
			return r;
	}
	return resolve_duplicates(c, s);
}

struct orch_wtask *orch_slot_newest(struct orch_slot *s)
{
	for (size_t i = s->n; i > 0; i--)
		if (!s->w[i - 1]->deleted)
			return s->w[i - 1];
	return NULL;
}

bool orch_slot_occupied(struct orch_slot *s)
{
	struct orch_wtask *newest;

	for (size_t i = 0; i < s->n; i++)
		if (!s->w[i]->deleted && orch_task_live(&s->w[i]->t))
			return true;
	newest = orch_slot_newest(s);
	return newest && newest->t.desired_state == TASK_SHUTDOWN &&
	       newest->t.stop_cause == ORCH_STOP_NO_RESTART;
}

struct orch_wtask *orch_slot_rep(struct orch_slot *s)
{
	for (size_t i = s->n; i > 0; i--)
		if (!s->w[i - 1]->deleted && orch_task_live(&s->w[i - 1]->t))
			return s->w[i - 1];
	return orch_slot_newest(s);
}

/* ---- task history and orphans ---- */

int orch_ctx_orphan_pass(struct orch_ctx *c, bool removing)
{
	for (size_t i = 0; i < c->in->n_tasks; i++) {
		struct orch_wtask *w = &c->work[i];
		const struct orch_node *n;
		int r;

		if (w->t.state > TASK_RUNNING || !w->t.node_id[0])
			continue;
		n = orch_ctx_node_find(c, w->t.node_id);
		if (!n) {
			r = do_orphan(c, w, "node left the cluster");
		} else if (!n->ready) {
			int64_t at = n->down_since_ns + c->orphan_after;
			if (!removing && c->now < at) {
				orch_ctx_wake(c, at);
				continue;
			}
			r = do_orphan(c, w, "node down");
		} else {
			continue;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Deletes what no one needs: finished tasks whose record was to be removed,
 * tasks never placed once shut down, and per slot the oldest finished ones
 * beyond history_limit. The newest task of a slot stays: it carries the
 * slot's restart history. */
int orch_slot_retain(struct orch_ctx *c, struct orch_slot *s)
{
	struct orch_wtask *newest = orch_slot_newest(s);
	size_t count = 0;
	int r;

	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *w = s->w[i];
		if (w->deleted)
			continue;
		bool unplaced = !w->t.node_id[0] && w->t.state < TASK_ASSIGNED;
		if (!w->created && !w->touched && !orch_task_live(&w->t) &&
		    ((w->t.desired_state == TASK_REMOVE && (orch_task_ended(&w->t) || unplaced)) ||
		     (unplaced && w != newest))) {
			if ((r = do_delete(c, w)) < 0)
				return r;
			continue;
		}
		count++;
	}
	for (size_t i = 0; i < s->n && count > c->history_limit; i++) {
		struct orch_wtask *w = s->w[i];
		if (w->deleted || w->created || w->touched || w == newest ||
		    orch_task_live(&w->t) || !orch_task_ended(&w->t))
			continue;
		if ((r = do_delete(c, w)) < 0)
			return r;
		count--;
	}
	return 0;
}
