// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "sched/orchestrator.h"
#include "sched/update-internal.h"

/* A node that stops reporting gets this long past its stop grace period
 * before a task waiting for one of its tasks to stop goes ahead anyway. */
#define ORCH_STOP_SLACK_NS (5LL * 1000000000LL)

/* A task as this pass sees it: the input record with this pass's actions
 * applied, or a record this pass creates. */
struct wtask {
	struct orch_task t;
	bool created; /* owned by this pass (deep) */
	bool deleted;
	bool touched; /* an action of this pass names it */
};

struct slot {
	uint64_t num;	     /* replicated */
	const char *node_id; /* global */
	struct wtask **w;    /* oldest first */
	size_t n, cap;
	bool victim;	/* scaled away in this pass */
	bool updatable; /* the updater may work on it */
};

struct ctx {
	const struct orch_input *in;
	const struct orch_service *svc;
	struct orch_update *u;
	struct orch_result *res;
	struct shoal_err *err;
	int64_t now;
	uint64_t target;
	uint64_t history_limit;
	int64_t orphan_after;
	const struct orch_node **nodes; /* sorted by id */
	size_t n_nodes;
	struct wtask *work;
	struct slot *slots;
	size_t n_slots;
	struct wtask **extra; /* created records, freed at the end */
	size_t n_extra, cap_extra;
};

enum nstate { N_UNASSIGNED, N_OK, N_PAUSE, N_DRAIN, N_DOWN, N_GONE };

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

static bool is_live(const struct orch_task *t)
{
	return t->desired_state <= TASK_RUNNING;
}

static bool is_ended(const struct orch_task *t)
{
	return task_state_is_terminal(t->state);
}

static bool is_up(const struct orch_task *t)
{
	return t->state == TASK_RUNNING &&
	       (t->health == TASK_HEALTH_NONE || t->health == TASK_HEALTH_HEALTHY);
}

static bool is_unhealthy(const struct orch_task *t)
{
	return t->state == TASK_RUNNING && t->health == TASK_HEALTH_UNHEALTHY;
}

static void wake(struct ctx *c, int64_t at)
{
	if (at > c->now && (c->res->wake_ns == 0 || at < c->res->wake_ns))
		c->res->wake_ns = at;
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp((*(const struct orch_node *const *)a)->id,
		      (*(const struct orch_node *const *)b)->id);
}

static const struct orch_node *node_find(struct ctx *c, const char *id)
{
	struct orch_node key = {.id = id};
	const struct orch_node *k = &key, **f;

	if (!id || !id[0] || !c->n_nodes)
		return NULL;
	f = bsearch(&k, c->nodes, c->n_nodes, sizeof(*c->nodes), cmp_node);
	return f ? *f : NULL;
}

static enum nstate node_state(struct ctx *c, const struct orch_task *t)
{
	const struct orch_node *n;

	if (!t->node_id[0])
		return N_UNASSIGNED;
	n = node_find(c, t->node_id);
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

/* ---- actions ---- */

static struct orch_action *push(struct ctx *c, enum orch_action_type type)
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

__attribute__((format(printf, 5, 6))) static int do_shutdown(struct ctx *c, struct wtask *w,
							     enum task_state desired,
							     enum orch_stop_cause cause,
							     const char *fmt, ...)
{
	struct orch_action *a;
	va_list ap;

	if (w->t.desired_state >= desired)
		return 0;
	a = push(c, ORCH_ACT_SHUTDOWN);
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

static int do_start(struct ctx *c, struct wtask *w)
{
	struct orch_action *a = push(c, ORCH_ACT_START);
	if (!a)
		return -errno;
	snprintf(a->task_id, sizeof(a->task_id), "%s", w->t.id);
	snprintf(a->message, sizeof(a->message), "starting");
	w->touched = true;
	return orch_action_apply(&w->t, a, c->now, c->err);
}

static int do_orphan(struct ctx *c, struct wtask *w, const char *why)
{
	struct orch_action *a = push(c, ORCH_ACT_ORPHAN);
	if (!a)
		return -errno;
	snprintf(a->task_id, sizeof(a->task_id), "%s", w->t.id);
	snprintf(a->message, sizeof(a->message), "%s", why);
	w->touched = true;
	return orch_action_apply(&w->t, a, c->now, c->err);
}

static int do_delete(struct ctx *c, struct wtask *w)
{
	struct orch_action *a = push(c, ORCH_ACT_DELETE);
	if (!a)
		return -errno;
	snprintf(a->task_id, sizeof(a->task_id), "%s", w->t.id);
	w->deleted = true;
	return 0;
}

static int slot_append(struct ctx *c, struct slot *s, struct wtask *w)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		struct wtask **n = reallocarray(s->w, cap, sizeof(*n));
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
static int history_next(struct ctx *c, const struct orch_task *prev, bool bump,
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
static bool held_ready(struct ctx *c, struct slot *s, const struct orch_task *h, int64_t *ret_wait)
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
	if (!pred || is_live(pred) || is_ended(pred))
		return true;
	switch (node_state(c, pred)) {
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

/* Creates a task in the slot. prev gives the restart history (bumped for a
 * restart); replaces names the task it takes over from; start_at > 0 holds
 * it (desired preparing) until then and until replaces has stopped. */
static int do_create(struct ctx *c, struct slot *s, const struct orch_task *prev, bool bump,
		     const char *replaces, int64_t start_at, const char *why)
{
	_cleanup_free_ struct wtask *w = calloc(1, sizeof(*w));
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
		wake(c, wait);
	r = history_next(c, prev, bump, t);
	if (r < 0)
		return r;

	if (c->n_extra == c->cap_extra) {
		size_t cap = c->cap_extra ? c->cap_extra * 2 : 16;
		struct wtask **n = reallocarray(c->extra, cap, sizeof(*n));
		if (!n) {
			orch_task_clear(t);
			return shoal_err_set(c->err, ENOMEM, "out of memory");
		}
		c->extra = n;
		c->cap_extra = cap;
	}
	a = push(c, ORCH_ACT_CREATE);
	if (!a || (r = orch_task_copy(&a->task, t)) < 0) {
		orch_task_clear(t);
		return a ? shoal_err_set(c->err, ENOMEM, "out of memory") : -errno;
	}
	snprintf(a->message, sizeof(a->message), "%s", why);
	w->created = true;
	c->extra[c->n_extra++] = w;
	return slot_append(c, s, TAKE_PTR(w));
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

static struct wtask *find_successor(struct slot *s, const struct orch_task *t, bool live_only)
{
	if (!t->id[0])
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct wtask *o = s->w[i];
		if (o->deleted || &o->t == t)
			continue;
		if (live_only && !is_live(&o->t))
			continue;
		if (strcmp(o->t.replaces, t->id) == 0)
			return o;
	}
	return NULL;
}

static struct wtask *find_id(struct slot *s, const char *id)
{
	if (!id || !id[0])
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (!s->w[i]->deleted && strcmp(s->w[i]->t.id, id) == 0)
			return s->w[i];
	return NULL;
}

/* A task that ended or went unhealthy while meant to run. */
static int handle_failure(struct ctx *c, struct slot *s, struct wtask *w, bool unhealthy,
			  bool may_create)
{
	struct orch_task *t = &w->t;
	const char *what = unhealthy ? "unhealthy" : task_state_name(t->state);
	struct wtask *pred;
	int64_t at = 0;
	int r;

	if (find_successor(s, t, false))
		return do_shutdown(c, w, TASK_SHUTDOWN,
				   unhealthy ? ORCH_STOP_UNHEALTHY : ORCH_STOP_ENDED,
				   "task %s; already replaced", what);
	if (!may_create)
		return unhealthy ? do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_UNHEALTHY,
					       "task unhealthy; node takes no new tasks")
				 : 0;
	enum orch_restart_decision d =
		orch_restart_decide(&c->svc->restart, t, c->target,
				    unhealthy || t->state != TASK_COMPLETE, c->now, &at);
	if (d == ORCH_RESTART_NEVER) {
		const struct restart_policy *p = &c->svc->restart;
		if (p->condition == RESTART_NONE)
			return do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NO_RESTART,
					   "task %s; restart policy: none", what);
		if (p->condition == RESTART_ON_FAILURE && !unhealthy && t->state == TASK_COMPLETE)
			return do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NO_RESTART,
					   "task complete; restart policy: on-failure");
		return do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NO_RESTART,
				   "task %s; restart policy: %" PRIu64 " restart attempts used",
				   what, p->max_attempts);
	}
	r = do_shutdown(c, w, TASK_SHUTDOWN, unhealthy ? ORCH_STOP_UNHEALTHY : ORCH_STOP_ENDED,
			"task %s; restarting", what);
	if (r < 0)
		return r;
	/* A start-first successor that failed passes the hand-over on: the task
	 * it was to take over from keeps running until the new one is up. */
	pred = find_id(s, t->replaces);
	if (pred && is_live(&pred->t) && !is_ended(&pred->t))
		return do_create(c, s, t, true, pred->t.id, at, "restart");
	return do_create(c, s, t, true, t->id, at, "restart");
}

/* Score for keeping one of several tasks in a slot: up beats starting beats
 * the rest, the target spec beats others, newer beats older. */
static int64_t keep_rank(struct ctx *c, const struct orch_task *t)
{
	int64_t r = 0;
	if (is_up(t))
		r += 4;
	else if (t->state == TASK_RUNNING)
		r += 2;
	if (t->spec_version == c->target)
		r += 1;
	return r;
}

/* Several live tasks in one slot that are not a hand-over pair: keep one. */
static int resolve_duplicates(struct ctx *c, struct slot *s)
{
	struct wtask *best = NULL;
	size_t units = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct wtask *w = s->w[i];
		if (w->deleted || !is_live(&w->t))
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
		struct wtask *w = s->w[i], *succ;
		int r;
		if (w == best || w->deleted || !is_live(&w->t))
			continue;
		succ = find_successor(s, &w->t, true);
		if (succ == best)
			continue;
		r = do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_DUPLICATE, "duplicate task in slot");
		if (r < 0)
			return r;
	}
	return 0;
}

static int slot_fix(struct ctx *c, struct slot *s, bool global, bool may_create)
{
	size_t n0 = s->n;
	int r;

	for (size_t i = 0; i < n0; i++) {
		struct wtask *w = s->w[i];
		struct orch_task *t = &w->t;
		enum nstate ns;

		if (w->deleted || !is_live(t))
			continue;
		ns = node_state(c, t);
		if (!global && (ns == N_DOWN || ns == N_GONE)) {
			r = do_shutdown(c, w, TASK_SHUTDOWN,
					ns == N_DOWN ? ORCH_STOP_NODE_DOWN : ORCH_STOP_NODE_REMOVED,
					"node %s is %s", t->node_id,
					ns == N_DOWN ? "down" : "gone");
			if (r >= 0 && !find_successor(s, t, false))
				r = do_create(c, s, t, false, t->id, 0,
					      "task rescheduled: node lost");
		} else if (global && ns == N_DOWN) {
			/* Nothing else can run it: wait for the node, unless it was
			 * given up on (orphaned). */
			r = t->state == TASK_ORPHANED
				    ? do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NODE_DOWN,
						  "node %s is down", t->node_id)
				    : 0;
		} else if (is_ended(t)) {
			r = handle_failure(c, s, w, false, may_create);
		} else if (is_unhealthy(t)) {
			r = handle_failure(c, s, w, true, may_create);
		} else if (!global && ns == N_DRAIN) {
			if (find_successor(s, t, true))
				continue;
			if (c->svc->update.order == ORDER_START_FIRST) {
				r = do_create(c, s, t, false, t->id, 0,
					      "task rescheduled: node draining");
			} else {
				r = do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_NODE_DRAIN,
						"node %s is draining", t->node_id);
				if (r >= 0)
					r = do_create(c, s, t, false, t->id, 0,
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
		struct wtask *w = s->w[i];
		int64_t wait;
		if (w->deleted || w->created || w->t.desired_state != TASK_PREPARING)
			continue;
		if (held_ready(c, s, &w->t, &wait)) {
			if ((r = do_start(c, w)) < 0)
				return r;
		} else {
			wake(c, wait);
		}
	}

	/* Hand-over: the old task goes once its successor is up (and healthy). */
	for (size_t i = 0; i < s->n; i++) {
		struct wtask *w = s->w[i], *succ;
		if (w->deleted || !is_live(&w->t))
			continue;
		succ = find_successor(s, &w->t, true);
		if (!succ || succ->t.desired_state != TASK_RUNNING || !is_up(&succ->t))
			continue;
		bool drain = node_state(c, &w->t) == N_DRAIN;
		r = do_shutdown(c, w, TASK_SHUTDOWN,
				drain ? ORCH_STOP_NODE_DRAIN : ORCH_STOP_UPDATE,
				drain ? "node %s is draining" : "replaced by task in slot%s",
				drain ? w->t.node_id : "");
		if (r < 0)
			return r;
	}
	return resolve_duplicates(c, s);
}

static struct wtask *slot_newest(struct slot *s)
{
	for (size_t i = s->n; i > 0; i--)
		if (!s->w[i - 1]->deleted)
			return s->w[i - 1];
	return NULL;
}

/* A slot holds a replica while it has a task meant to run, or its last task
 * ended and the restart policy keeps it down (swarm keeps such a slot). */
static bool slot_occupied(struct slot *s)
{
	struct wtask *newest;

	for (size_t i = 0; i < s->n; i++)
		if (!s->w[i]->deleted && is_live(&s->w[i]->t))
			return true;
	newest = slot_newest(s);
	return newest && newest->t.desired_state == TASK_SHUTDOWN &&
	       newest->t.stop_cause == ORCH_STOP_NO_RESTART;
}

/* The task that speaks for the slot: its newest live task, else its newest. */
static struct wtask *slot_rep(struct slot *s)
{
	for (size_t i = s->n; i > 0; i--)
		if (!s->w[i - 1]->deleted && is_live(&s->w[i - 1]->t))
			return s->w[i - 1];
	return slot_newest(s);
}

/* ---- task history and orphans ---- */

static int orphan_pass(struct ctx *c, bool removing)
{
	for (size_t i = 0; i < c->in->n_tasks; i++) {
		struct wtask *w = &c->work[i];
		const struct orch_node *n;
		int r;

		if (w->t.state > TASK_RUNNING || !w->t.node_id[0])
			continue;
		n = node_find(c, w->t.node_id);
		if (!n) {
			r = do_orphan(c, w, "node left the cluster");
		} else if (!n->ready) {
			int64_t at = n->down_since_ns + c->orphan_after;
			if (!removing && c->now < at) {
				wake(c, at);
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
static int retention(struct ctx *c, struct slot *s)
{
	struct wtask *newest = slot_newest(s);
	size_t count = 0;
	int r;

	for (size_t i = 0; i < s->n; i++) {
		struct wtask *w = s->w[i];
		if (w->deleted)
			continue;
		bool unplaced = !w->t.node_id[0] && w->t.state < TASK_ASSIGNED;
		if (!w->created && !w->touched && !is_live(&w->t) &&
		    ((w->t.desired_state == TASK_REMOVE && (is_ended(&w->t) || unplaced)) ||
		     (unplaced && w != newest))) {
			if ((r = do_delete(c, w)) < 0)
				return r;
			continue;
		}
		count++;
	}
	for (size_t i = 0; i < s->n && count > c->history_limit; i++) {
		struct wtask *w = s->w[i];
		if (w->deleted || w->created || w->touched || w == newest || is_live(&w->t) ||
		    !is_ended(&w->t))
			continue;
		if ((r = do_delete(c, w)) < 0)
			return r;
		count--;
	}
	return 0;
}

/* ---- rolling update ---- */

enum slot_update { SU_DONE, SU_DIRTY, SU_IN_FLIGHT };

static enum slot_update slot_update_state(struct ctx *c, struct slot *s)
{
	bool any_live = false, any_old = false, any_new = false, all_new_up = true;

	for (size_t i = 0; i < s->n; i++) {
		struct orch_task *t = &s->w[i]->t;
		if (s->w[i]->deleted || !is_live(t))
			continue;
		any_live = true;
		if (t->spec_version == c->target) {
			any_new = true;
			if (t->desired_state != TASK_RUNNING || !is_up(t))
				all_new_up = false;
		} else {
			any_old = true;
		}
	}
	if (!any_live) {
		struct wtask *n = slot_newest(s);
		return n && n->t.spec_version != c->target ? SU_DIRTY : SU_DONE;
	}
	if (!any_new)
		return SU_DIRTY;
	return any_old || !all_new_up ? SU_IN_FLIGHT : SU_DONE;
}

static int update_slot(struct ctx *c, struct slot *s, enum update_order order)
{
	struct wtask *old = NULL;
	int r;

	for (size_t i = 0; i < s->n; i++)
		if (!s->w[i]->deleted && is_live(&s->w[i]->t))
			old = s->w[i];
	if (!old) {
		struct wtask *n = slot_newest(s);
		return do_create(c, s, n ? &n->t : NULL, false, n ? n->t.id : NULL, 0, "updated");
	}
	if (order == ORDER_START_FIRST && old->t.state == TASK_RUNNING)
		return do_create(c, s, &old->t, false, old->t.id, 0, "updated");
	for (size_t i = 0; i < s->n; i++) {
		struct wtask *w = s->w[i];
		if (w->deleted || !is_live(&w->t))
			continue;
		r = do_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_UPDATE, "replaced by updated task");
		if (r < 0)
			return r;
	}
	/* Held until the old task has stopped (stop-first). */
	return do_create(c, s, &old->t, false, old->t.id, c->now, "updated");
}

static bool updating(const struct orch_update *u)
{
	return u->state == UPDATE_UPDATING || u->state == UPDATE_ROLLBACK_STARTED;
}

static int record_failure(struct ctx *c, const char *id)
{
	struct orch_update *u = c->u;

	for (size_t i = 0; i < u->n_failed; i++)
		if (strcmp(u->failed[i], id) == 0)
			return 0;
	u->failures++;
	if (u->n_failed < ORCH_UPDATE_MAX_FAILED) {
		char(*f)[ORCH_ID_MAX] = reallocarray(u->failed, u->n_failed + 1, sizeof(*f));
		if (!f)
			return shoal_err_set(c->err, ENOMEM, "out of memory");
		u->failed = f;
		snprintf(u->failed[u->n_failed++], ORCH_ID_MAX, "%s", id);
	}
	c->res->update_changed = true;
	return 1;
}

/* An updated task failed if it ended on its own (or went unhealthy) before
 * running for the monitor period. *ret_watch: still inside its period. */
static bool monitor_failed(struct ctx *c, const struct orch_task *t, int64_t monitor,
			   int64_t *ret_watch)
{
	bool ended_itself = (is_live(t) && is_ended(t)) || t->stop_cause == ORCH_STOP_ENDED ||
			    t->stop_cause == ORCH_STOP_UNHEALTHY ||
			    t->stop_cause == ORCH_STOP_NO_RESTART;
	int64_t run = t->state_ns[TASK_RUNNING], end;

	*ret_watch = 0;
	if (!ended_itself) {
		if (is_live(t) && t->state == TASK_RUNNING && run && c->now < run + monitor)
			*ret_watch = run + monitor;
		return false;
	}
	if (!run)
		return true;
	end = is_ended(t) && t->state_ns[t->state] ? t->state_ns[t->state] : t->desired_ns;
	if (t->health == TASK_HEALTH_UNHEALTHY && t->desired_ns && t->desired_ns < end)
		end = t->desired_ns;
	return end - run <= monitor;
}

static int cmp_dirty(const void *a, const void *b)
{
	const struct slot *x = *(const struct slot *const *)a, *y = *(const struct slot *const *)b;
	struct wtask *rx = slot_rep((struct slot *)x), *ry = slot_rep((struct slot *)y);
	bool ux = rx && is_up(&rx->t) && is_live(&rx->t);
	bool uy = ry && is_up(&ry->t) && is_live(&ry->t);

	if (ux != uy)
		return ux ? 1 : -1;
	if (x->node_id)
		return strcmp(x->node_id, y->node_id);
	return x->num < y->num ? -1 : x->num > y->num;
}

static void set_message(struct orch_update *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_message(struct orch_update *u, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->message, sizeof(u->message), fmt, ap);
	va_end(ap);
}

static int update_step(struct ctx *c)
{
	struct orch_update *u = c->u;
	bool rollback = u->state == UPDATE_ROLLBACK_STARTED;
	const struct update_config *cfg = rollback ? &c->svc->rollback : &c->svc->update;
	_cleanup_free_ struct slot **dirty = NULL;
	size_t n_dirty = 0, in_flight = 0;
	const char *failed_id = NULL;
	bool watching = false;
	int r;

	if (!updating(u))
		return 0;

	/* Failures among the tasks this phase created. */
	for (size_t si = 0; si < c->n_slots; si++) {
		struct slot *s = &c->slots[si];
		for (size_t i = 0; i < s->n; i++) {
			struct orch_task *t = &s->w[i]->t;
			int64_t watch;
			if (s->w[i]->created || !t->id[0] || t->spec_version != c->target ||
			    t->created_ns < u->phase_started_ns)
				continue;
			if (monitor_failed(c, t, cfg->monitor_ns, &watch)) {
				if ((r = record_failure(c, t->id)) < 0)
					return r;
				if (r > 0)
					failed_id = t->id;
			} else if (watch) {
				watching = true;
				wake(c, watch);
			}
		}
	}

	dirty = calloc(c->n_slots ? c->n_slots : 1, sizeof(*dirty));
	if (!dirty)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	for (size_t si = 0; si < c->n_slots; si++) {
		struct slot *s = &c->slots[si];
		if (!s->updatable)
			continue;
		switch (slot_update_state(c, s)) {
		case SU_DIRTY:
			dirty[n_dirty++] = s;
			break;
		case SU_IN_FLIGHT:
			in_flight++;
			break;
		case SU_DONE:
			break;
		}
	}
	if (!u->total) {
		u->total = n_dirty + in_flight;
		c->res->update_changed = true;
	}

	if (failed_id && !u->failure_action_taken && cfg->failure_action != FAILURE_CONTINUE &&
	    (double)u->failures > cfg->max_failure_ratio * (double)(u->total ? u->total : 1)) {
		u->failure_action_taken = true;
		c->res->update_changed = true;
		if (!rollback && cfg->failure_action == FAILURE_ROLLBACK &&
		    c->svc->prev_spec_version && c->svc->prev_spec_version != c->target) {
			struct orch_action *a = push(c, ORCH_ACT_ROLLBACK);
			if (!a)
				return -errno;
			a->spec_version = c->svc->prev_spec_version;
			set_message(
				u,
				"update rolled back due to failure or early termination of task %s",
				failed_id);
			snprintf(a->message, sizeof(a->message), "%s", u->message);
			u->from_spec_version = c->target;
			u->spec_version = c->svc->prev_spec_version;
			u->state = UPDATE_ROLLBACK_STARTED;
			orch_update_new_phase(u, c->now);
			return 0;
		}
		u->state = rollback ? UPDATE_ROLLBACK_PAUSED : UPDATE_PAUSED;
		set_message(u, "%s paused due to failure or early termination of task %s%s",
			    rollback ? "rollback" : "update", failed_id,
			    !rollback && cfg->failure_action == FAILURE_ROLLBACK
				    ? " (no previous spec to roll back to)"
				    : "");
		return 0;
	}

	if (u->batch_open && in_flight == 0) {
		u->batch_open = false;
		u->next_batch_ns = c->now + (cfg->delay_ns > 0 ? cfg->delay_ns : 0);
		c->res->update_changed = true;
	}
	if (!u->batch_open && n_dirty) {
		if (c->now < u->next_batch_ns) {
			wake(c, u->next_batch_ns);
			return 0;
		}
		size_t k =
			cfg->parallelism && cfg->parallelism < n_dirty ? cfg->parallelism : n_dirty;
		qsort(dirty, n_dirty, sizeof(*dirty), cmp_dirty);
		for (size_t i = 0; i < k; i++)
			if ((r = update_slot(c, dirty[i], cfg->order)) < 0)
				return r;
		u->batch_open = true;
		c->res->update_changed = true;
		return 0;
	}
	if (n_dirty || in_flight || u->batch_open || watching)
		return 0;
	u->state = rollback ? UPDATE_ROLLBACK_COMPLETED : UPDATE_COMPLETED;
	u->completed_ns = c->now;
	set_message(u, "%s completed", rollback ? "rollback" : "update");
	c->res->update_changed = true;
	return 0;
}

/* Notices a new target spec; false when nothing else may happen this pass
 * (a rollback the agent has not applied yet). */
static int update_begin(struct ctx *c, bool *ret_go)
{
	struct orch_update *u = c->u;
	bool dirty = false;

	*ret_go = true;
	if (u->spec_version == c->target)
		return 0;
	if (u->state == UPDATE_ROLLBACK_STARTED && u->spec_version &&
	    c->target == u->from_spec_version) {
		struct orch_action *a = push(c, ORCH_ACT_ROLLBACK);
		if (!a)
			return -errno;
		a->spec_version = u->spec_version;
		snprintf(a->message, sizeof(a->message), "%s", u->message);
		*ret_go = false;
		return 0;
	}
	for (size_t i = 0; i < c->in->n_tasks; i++)
		if (is_live(&c->in->tasks[i]) && c->in->tasks[i].spec_version != c->target)
			dirty = true;
	c->res->update_changed = true;
	if (!u->spec_version && !dirty) {
		/* A new service: its tasks start on this spec, nothing to roll. */
		u->spec_version = c->target;
		return 0;
	}
	u->from_spec_version = u->spec_version;
	u->spec_version = c->target;
	u->state = UPDATE_UPDATING;
	u->started_ns = c->now;
	orch_update_new_phase(u, c->now);
	set_message(u, "update in progress");
	return 0;
}

/* ---- the pass ---- */

static int cmp_wtask(const void *a, const void *b)
{
	const struct wtask *x = *(const struct wtask *const *)a,
			   *y = *(const struct wtask *const *)b;
	if (x->t.created_ns != y->t.created_ns)
		return x->t.created_ns < y->t.created_ns ? -1 : 1;
	return strcmp(x->t.id, y->t.id);
}

static int cmp_slot_key(const struct wtask *x, const struct wtask *y, bool global)
{
	if (global)
		return strcmp(x->t.node_id, y->t.node_id);
	return x->t.slot < y->t.slot ? -1 : x->t.slot > y->t.slot;
}

static int cmp_wtask_slot(const void *a, const void *b, void *global)
{
	const struct wtask *x = *(const struct wtask *const *)a,
			   *y = *(const struct wtask *const *)b;
	int r = cmp_slot_key(x, y, *(bool *)global);
	return r ? r : cmp_wtask(a, b);
}

static int build_slots(struct ctx *c, bool global)
{
	size_t n = c->in->n_tasks;
	_cleanup_free_ struct wtask **order = calloc(n ? n : 1, sizeof(*order));
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
			struct slot *s = &c->slots[c->n_slots++];
			s->num = global ? 0 : order[i]->t.slot;
			s->node_id = global ? order[i]->t.node_id : NULL;
		}
		if ((r = slot_append(c, &c->slots[c->n_slots - 1], order[i])) < 0)
			return r;
	}
	return 0;
}

static int scale_rank(struct slot *s)
{
	struct wtask *rep = slot_rep(s);
	if (!rep || !is_live(&rep->t) || rep->t.state != TASK_RUNNING)
		return 0;
	return is_up(&rep->t) ? 2 : 1;
}

static int cmp_victim(const void *a, const void *b)
{
	struct slot *x = *(struct slot *const *)a, *y = *(struct slot *const *)b;
	int rx = scale_rank(x), ry = scale_rank(y);
	if (rx != ry)
		return rx - ry;
	return x->num > y->num ? -1 : x->num < y->num;
}

static int remove_slot(struct ctx *c, struct slot *s, enum orch_stop_cause cause, const char *why)
{
	for (size_t i = 0; i < s->n; i++) {
		struct wtask *w = s->w[i];
		if (w->deleted)
			continue;
		int r = do_shutdown(c, w, TASK_REMOVE, cause, "%s", why);
		if (r < 0)
			return r;
	}
	return 0;
}

static int reconcile_replicated(struct ctx *c)
{
	_cleanup_free_ struct slot **occ = calloc(c->n_slots + 1, sizeof(*occ));
	size_t n_occ = 0, made = 0;
	int r;

	if (!occ)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_slots; i++) {
		struct slot *s = &c->slots[i];
		if (s->num == 0) {
			/* Not a replicated slot (left from another mode): retire it. */
			if ((r = remove_slot(c, s, ORCH_STOP_DUPLICATE, "task has no slot")) < 0)
				return r;
			continue;
		}
		if (slot_occupied(s))
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
		struct slot *s = &c->slots[i];
		if (!s->num || s->victim || !slot_occupied(s))
			continue;
		if ((r = slot_fix(c, s, false, true)) < 0)
			return r;
		s->updatable = true;
		made++;
	}
	/* Scale up into the lowest free slots (slots left with only history
	 * count as free and pass that history on). */
	uint64_t want = c->svc->replicas > made ? c->svc->replicas - made : 0;
	size_t idx = 0, n0 = c->n_slots;
	for (uint64_t num = 1; want; num++) {
		struct slot *s = NULL;
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
		struct wtask *prev = slot_newest(s);
		if ((r = do_create(c, s, prev ? &prev->t : NULL, false, NULL, 0, "created")) < 0)
			return r;
		want--;
	}
	return 0;
}

static int reconcile_global(struct ctx *c)
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
		struct slot *s = &c->slots[i];
		const struct orch_node *n = node_find(c, s->node_id);

		if (!s->node_id[0]) {
			r = remove_slot(c, s, ORCH_STOP_DUPLICATE, "task has no node");
		} else if (!n) {
			r = remove_slot(c, s, ORCH_STOP_NODE_REMOVED, "node left the cluster");
		} else if (!n->eligible || n->availability == NODE_DRAIN) {
			bool drain = n->availability == NODE_DRAIN;
			r = 0;
			for (size_t j = 0; j < s->n && r >= 0; j++)
				if (is_live(&s->w[j]->t))
					r = do_shutdown(
						c, s->w[j], TASK_SHUTDOWN,
						drain ? ORCH_STOP_NODE_DRAIN
						      : ORCH_STOP_NODE_INELIGIBLE,
						drain ? "node %s is draining"
						      : "node %s does not meet the constraints",
						n->id);
		} else {
			bool active = n->ready && n->availability == NODE_ACTIVE;
			r = slot_fix(c, s, true, active);
			if (r >= 0 && active) {
				s->updatable = slot_occupied(s);
				if (!s->updatable) {
					struct wtask *prev = slot_newest(s);
					r = do_create(c, s, prev ? &prev->t : NULL, false, NULL, 0,
						      "created");
				}
			}
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int reconcile_removed(struct ctx *c)
{
	size_t left = 0;
	int r;

	for (size_t i = 0; i < c->n_slots; i++) {
		struct slot *s = &c->slots[i];
		if ((r = remove_slot(c, s, ORCH_STOP_SERVICE_REMOVED, "service removed")) < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_slots; i++) {
		struct slot *s = &c->slots[i];
		if ((r = retention(c, s)) < 0)
			return r;
		for (size_t k = 0; k < s->n; k++)
			left += !s->w[k]->deleted;
	}
	c->res->service_gone = left == 0;
	return 0;
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
	if ((in->n_tasks && !in->tasks) || (in->n_nodes && !in->nodes))
		return shoal_err_set(err, EINVAL, "service %s: missing task or node array", s->id);
	for (size_t i = 0; i < in->n_tasks; i++)
		if (!in->tasks[i].id[0])
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
	struct ctx c = {
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
		c.work[i].t = in->tasks[i];

	if (!c.svc->removed && (r = update_begin(&c, &go)) < 0)
		goto out;
	if (!go)
		goto out;
	if ((r = build_slots(&c, c.svc->mode == ORCH_GLOBAL)) < 0)
		goto out;
	if ((r = orphan_pass(&c, c.svc->removed)) < 0)
		goto out;
	if (c.svc->removed) {
		r = reconcile_removed(&c);
		goto out;
	}
	r = c.svc->mode == ORCH_GLOBAL ? reconcile_global(&c) : reconcile_replicated(&c);
	if (r < 0)
		goto out;
	if ((r = update_step(&c)) < 0)
		goto out;
	for (size_t i = 0; i < c.n_slots; i++)
		if ((r = retention(&c, &c.slots[i])) < 0)
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
