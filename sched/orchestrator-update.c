// SPDX-License-Identifier: Apache-2.0
/* The rolling updater: batches of slots moved to the target spec, failures
 * watched for the monitor period, pause or rollback on too many. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "sched/orchestrator-internal.h"

/* ---- rolling update ---- */

enum slot_update { SU_DONE, SU_DIRTY, SU_IN_FLIGHT };

static enum slot_update slot_update_state(struct orch_ctx *c, struct orch_slot *s)
{
	bool any_live = false, any_old = false, any_new = false, all_new_up = true;

	for (size_t i = 0; i < s->n; i++) {
		struct orch_task *t = &s->w[i]->t;
		if (s->w[i]->deleted || !orch_task_live(t))
			continue;
		any_live = true;
		if (t->spec_version == c->target) {
			any_new = true;
			if (t->desired_state != TASK_RUNNING || !orch_task_up(t))
				all_new_up = false;
		} else {
			any_old = true;
		}
	}
	if (!any_live) {
		struct orch_wtask *n = orch_slot_newest(s);
		return n && n->t.spec_version != c->target ? SU_DIRTY : SU_DONE;
	}
	if (!any_new)
		return SU_DIRTY;
	return any_old || !all_new_up ? SU_IN_FLIGHT : SU_DONE;
}

static int update_slot(struct orch_ctx *c, struct orch_slot *s, enum update_order order)
{
	struct orch_wtask *old = NULL;
	int r;

	for (size_t i = 0; i < s->n; i++)
		if (!s->w[i]->deleted && orch_task_live(&s->w[i]->t))
			old = s->w[i];
	if (!old) {
		struct orch_wtask *n = orch_slot_newest(s);
		return orch_slot_create(c, s, n ? &n->t : NULL, false, n ? n->t.id : NULL, 0,
					"updated");
	}
	if (order == ORDER_START_FIRST && old->t.state == TASK_RUNNING)
		return orch_slot_create(c, s, &old->t, false, old->t.id, 0, "updated");
	for (size_t i = 0; i < s->n; i++) {
		struct orch_wtask *w = s->w[i];
		if (w->deleted || !orch_task_live(&w->t))
			continue;
		r = orch_wtask_shutdown(c, w, TASK_SHUTDOWN, ORCH_STOP_UPDATE,
					"replaced by updated task");
		if (r < 0)
			return r;
	}
	/* Held until the old task has stopped (stop-first). */
	return orch_slot_create(c, s, &old->t, false, old->t.id, c->now, "updated");
}

static bool updating(const struct orch_update *u)
{
	return u->state == UPDATE_UPDATING || u->state == UPDATE_ROLLBACK_STARTED;
}

static int record_failure(struct orch_ctx *c, const char *id)
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
static bool monitor_failed(struct orch_ctx *c, const struct orch_task *t, int64_t monitor,
			   int64_t *ret_watch)
{
	bool ended_itself =
		(orch_task_live(t) && orch_task_ended(t)) || t->stop_cause == ORCH_STOP_ENDED ||
		t->stop_cause == ORCH_STOP_UNHEALTHY || t->stop_cause == ORCH_STOP_NO_RESTART;
	int64_t run = t->state_ns[TASK_RUNNING], end;

	*ret_watch = 0;
	if (!ended_itself) {
		if (orch_task_live(t) && t->state == TASK_RUNNING && run && c->now < run + monitor)
			*ret_watch = run + monitor;
		return false;
	}
	if (!run)
		return true;
	end = orch_task_ended(t) && t->state_ns[t->state] ? t->state_ns[t->state] : t->desired_ns;
	if (t->health == TASK_HEALTH_UNHEALTHY && t->desired_ns && t->desired_ns < end)
		end = t->desired_ns;
	return end - run <= monitor;
}

static int cmp_dirty(const void *a, const void *b)
{
	const struct orch_slot *x = *(const struct orch_slot *const *)a,
			       *y = *(const struct orch_slot *const *)b;
	struct orch_wtask *rx = orch_slot_rep((struct orch_slot *)x),
			  *ry = orch_slot_rep((struct orch_slot *)y);
	bool ux = rx && orch_task_up(&rx->t) && orch_task_live(&rx->t);
	bool uy = ry && orch_task_up(&ry->t) && orch_task_live(&ry->t);

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

int orch_ctx_update_step(struct orch_ctx *c)
{
	struct orch_update *u = c->u;
	bool rollback = u->state == UPDATE_ROLLBACK_STARTED;
	const struct update_config *cfg = rollback ? &c->svc->rollback : &c->svc->update;
	_cleanup_free_ struct orch_slot **dirty = NULL;
	size_t n_dirty = 0, in_flight = 0;
	const char *failed_id = NULL;
	bool watching = false;
	int r;

	if (!updating(u))
		return 0;

	/* Failures among the tasks this phase created. */
	for (size_t si = 0; si < c->n_slots; si++) {
		struct orch_slot *s = &c->slots[si];
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
				orch_ctx_wake(c, watch);
			}
		}
	}

	dirty = calloc(c->n_slots ? c->n_slots : 1, sizeof(*dirty));
	if (!dirty)
		return shoal_err_set(c->err, ENOMEM, "out of memory");
	for (size_t si = 0; si < c->n_slots; si++) {
		struct orch_slot *s = &c->slots[si];
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
			struct orch_action *a = orch_ctx_push(c, ORCH_ACT_ROLLBACK);
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
			orch_ctx_wake(c, u->next_batch_ns);
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

int orch_ctx_update_begin(struct orch_ctx *c, bool *ret_go)
{
	struct orch_update *u = c->u;
	bool dirty = false;

	*ret_go = true;
	if (u->spec_version == c->target)
		return 0;
	if (u->state == UPDATE_ROLLBACK_STARTED && u->spec_version &&
	    c->target == u->from_spec_version) {
		struct orch_action *a = orch_ctx_push(c, ORCH_ACT_ROLLBACK);
		if (!a)
			return -errno;
		a->spec_version = u->spec_version;
		snprintf(a->message, sizeof(a->message), "%s", u->message);
		*ret_go = false;
		return 0;
	}
	for (size_t i = 0; i < c->in->n_tasks; i++)
		if (orch_task_live(&c->work[i].t) && c->work[i].t.spec_version != c->target)
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
