// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sched/orchestrator.h"

#define SEC   1000000000LL
#define MAX_T 512

/* A simulated cluster: the store (tasks), the nodes, the clock, and the agent
 * that applies the orchestrator's actions. */
struct sim {
	struct orch_service svc;
	struct orch_task tasks[MAX_T];
	size_t n;
	struct orch_node nodes[16];
	char node_ids[16][16];
	size_t n_nodes;
	struct orch_update u;
	int64_t now;
	unsigned next_id;
	struct orch_result last;
	size_t rr; /* round-robin placement */
	uint64_t history_limit;
	uint64_t max_new_slots;
	bool by_ptr; /* the tasks as pointers (orch_input.task_ptrs) */
};

static struct sim *sim_new(enum orch_mode mode, uint64_t replicas, size_t nodes)
{
	struct sim *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->svc.id = "svc1";
	s->svc.mode = mode;
	s->svc.replicas = replicas;
	s->svc.spec_version = 1;
	s->svc.restart = (struct restart_policy){RESTART_ANY, 5 * SEC, 0, 0};
	s->svc.update = (struct update_config){1, 0, FAILURE_PAUSE, 5 * SEC, 0, ORDER_STOP_FIRST};
	s->svc.rollback = s->svc.update;
	s->svc.stop_grace_ns = 10 * SEC;
	s->now = 1000 * SEC;
	for (size_t i = 0; i < nodes; i++) {
		snprintf(s->node_ids[i], sizeof(s->node_ids[i]), "n%zu", i + 1);
		s->nodes[i] = (struct orch_node){.id = s->node_ids[i],
						 .ready = true,
						 .availability = NODE_ACTIVE,
						 .eligible = true};
	}
	s->n_nodes = nodes;
	return s;
}

static void sim_free(struct sim *s)
{
	for (size_t i = 0; i < s->n; i++)
		orch_task_clear(&s->tasks[i]);
	orch_update_clear(&s->u);
	orch_result_clear(&s->last);
	free(s);
}

static struct orch_task *find(struct sim *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->tasks[i].id, id) == 0)
			return &s->tasks[i];
	return NULL;
}

static struct orch_node *node(struct sim *s, const char *id)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (strcmp(s->nodes[i].id, id) == 0)
			return &s->nodes[i];
	return NULL;
}

/* One orchestrator pass, actions applied; returns the number of actions. */
static size_t sim_pass(struct sim *s)
{
	struct orch_input in = {
		.service = &s->svc,
		.tasks = s->tasks,
		.n_tasks = s->n,
		.nodes = s->nodes,
		.n_nodes = s->n_nodes,
		.update = &s->u,
		.history_limit = s->history_limit,
	};
	struct shoal_err err = {};
	const struct orch_task *ptrs[MAX_T];

	in.max_new_slots = s->max_new_slots;
	if (s->by_ptr) {
		for (size_t i = 0; i < s->n; i++)
			ptrs[i] = &s->tasks[s->n - 1 - i]; /* another order, same result */
		in.tasks = NULL;
		in.task_ptrs = ptrs;
	}
	orch_result_clear(&s->last);
	assert_int_equal(orch_reconcile(&in, s->now, &s->last, &err), 0);
	for (size_t i = 0; i < s->last.n_actions; i++) {
		const struct orch_action *a = &s->last.actions[i];
		struct orch_task *t;
		char id[16];

		switch (a->type) {
		case ORCH_ACT_CREATE:
			assert_true(s->n < MAX_T);
			snprintf(id, sizeof(id), "t%u", ++s->next_id);
			assert_int_equal(orch_task_from_action(&s->tasks[s->n++], a, id, &err), 0);
			break;
		case ORCH_ACT_DELETE:
			t = find(s, a->task_id);
			assert_non_null(t);
			orch_task_clear(t);
			*t = s->tasks[--s->n];
			memset(&s->tasks[s->n], 0, sizeof(s->tasks[s->n]));
			break;
		case ORCH_ACT_ROLLBACK:
			assert_int_equal(a->spec_version, s->svc.prev_spec_version);
			s->svc.prev_spec_version = 0;
			s->svc.spec_version = a->spec_version;
			break;
		default:
			t = find(s, a->task_id);
			assert_non_null(t);
			assert_int_equal(orch_action_apply(t, a, s->now, &err), 0);
			break;
		}
	}
	return s->last.n_actions;
}

static size_t count_actions(struct sim *s, enum orch_action_type type)
{
	size_t n = 0;
	for (size_t i = 0; i < s->last.n_actions; i++)
		n += s->last.actions[i].type == type;
	return n;
}

static void advance(struct orch_task *t, enum task_state to, int64_t now)
{
	struct shoal_err err = {};
	assert_int_equal(orch_task_set_state(t, to, now, NULL, &err), 0);
}

/* The nodes: place and run every task meant to run, stop every task told to
 * stop. Returns how many tasks changed. */
static size_t sim_nodes(struct sim *s)
{
	size_t changed = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct orch_task *t = &s->tasks[i];
		if (t->desired_state == TASK_RUNNING && t->state < TASK_RUNNING) {
			if (!t->node_id[0]) {
				struct orch_node *n = NULL;
				for (size_t k = 0; k < s->n_nodes; k++) {
					struct orch_node *c = &s->nodes[s->rr++ % s->n_nodes];
					if (c->ready && c->availability == NODE_ACTIVE) {
						n = c;
						break;
					}
				}
				if (!n)
					continue;
				snprintf(t->node_id, sizeof(t->node_id), "%s", n->id);
				advance(t, TASK_ASSIGNED, s->now);
			}
			struct orch_node *n = node(s, t->node_id);
			if (!n || !n->ready)
				continue;
			advance(t, TASK_RUNNING, s->now);
			changed++;
		} else if (t->desired_state > TASK_RUNNING && t->state <= TASK_RUNNING) {
			struct orch_node *n = node(s, t->node_id);
			if (t->node_id[0] && (!n || !n->ready))
				continue;
			if (!t->node_id[0] && t->state < TASK_ASSIGNED)
				continue;
			advance(t, TASK_SHUTDOWN, s->now);
			changed++;
		}
	}
	return changed;
}

/* Passes and node reactions until nothing moves. */
static void sim_settle(struct sim *s)
{
	for (int i = 0; i < 50; i++) {
		size_t a = sim_pass(s);
		size_t n = sim_nodes(s);
		if (!a && !n)
			return;
	}
	fail_msg("did not settle");
}

static size_t count_live(struct sim *s, uint64_t version)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].desired_state <= TASK_RUNNING &&
		    (!version || s->tasks[i].spec_version == version))
			n++;
	return n;
}

static size_t count_running(struct sim *s, uint64_t version)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].desired_state == TASK_RUNNING &&
		    s->tasks[i].state == TASK_RUNNING &&
		    (!version || s->tasks[i].spec_version == version))
			n++;
	return n;
}

static struct orch_task *live_in_slot(struct sim *s, uint64_t slot)
{
	struct orch_task *r = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].slot == slot && s->tasks[i].desired_state <= TASK_RUNNING) {
			assert_null(r);
			r = &s->tasks[i];
		}
	return r;
}

static struct orch_task *live_on_node(struct sim *s, const char *node_id)
{
	struct orch_task *r = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->tasks[i].node_id, node_id) == 0 &&
		    s->tasks[i].desired_state <= TASK_RUNNING) {
			assert_null(r);
			r = &s->tasks[i];
		}
	return r;
}

static void fail_task(struct orch_task *t, int64_t now)
{
	struct shoal_err err = {};
	assert_int_equal(orch_task_fail(t, now, "exit status 1", &err), 0);
	t->exit_code = 1;
}

/* ---- the task state machine ---- */

static void test_state_machine(void **state)
{
	struct orch_task t = {.id = "x"};
	struct shoal_err err = {};

	assert_true(task_transition_allowed(TASK_NEW, TASK_PENDING));
	assert_true(task_transition_allowed(TASK_NEW, TASK_RUNNING));
	assert_false(task_transition_allowed(TASK_RUNNING, TASK_STARTING));
	assert_false(task_transition_allowed(TASK_RUNNING, TASK_RUNNING));
	assert_false(task_transition_allowed(TASK_FAILED, TASK_ORPHANED));
	assert_false(task_transition_allowed(TASK_COMPLETE, TASK_SHUTDOWN));
	assert_false(task_transition_allowed(TASK_RUNNING, TASK_REMOVE));
	assert_false(task_transition_allowed(TASK_PREPARING, TASK_FAILED));
	assert_false(task_transition_allowed(TASK_STARTING, TASK_REJECTED));
	assert_false(task_transition_allowed(TASK_ASSIGNED, TASK_COMPLETE));
	assert_true(task_transition_allowed(TASK_PENDING, TASK_ORPHANED));
	assert_true(task_transition_allowed(TASK_PENDING, TASK_SHUTDOWN));
	assert_int_equal(task_error_state(TASK_PREPARING), TASK_REJECTED);
	assert_int_equal(task_error_state(TASK_STARTING), TASK_FAILED);
	assert_int_equal(task_error_state(TASK_RUNNING), TASK_FAILED);

	/* Every transition is timestamped; the failing error is kept. */
	assert_int_equal(orch_task_set_state(&t, TASK_PENDING, 10, "pending", &err), 0);
	assert_int_equal(orch_task_set_state(&t, TASK_PREPARING, 20, NULL, &err), 0);
	assert_int_equal(orch_task_set_state(&t, TASK_ASSIGNED, 30, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "preparing to assigned"));
	assert_int_equal(t.state, TASK_PREPARING);
	assert_int_equal(orch_task_fail(&t, 40, "image not found", &err), 0);
	assert_int_equal(t.state, TASK_REJECTED);
	assert_string_equal(t.err, "image not found");
	assert_int_equal(t.state_ns[TASK_PENDING], 10);
	assert_int_equal(t.state_ns[TASK_PREPARING], 20);
	assert_int_equal(t.state_ns[TASK_REJECTED], 40);
	assert_int_equal(orch_task_fail(&t, 50, "again", &err), -EINVAL);

	struct orch_task u = {.id = "y"};
	assert_int_equal(orch_task_set_state(&u, TASK_STARTING, 5, NULL, &err), 0);
	assert_int_equal(orch_task_fail(&u, 6, "exec format error", &err), 0);
	assert_int_equal(u.state, TASK_FAILED);

	/* Desired states move forward too. */
	u.desired_state = TASK_RUNNING;
	assert_int_equal(orch_task_set_desired(&u, TASK_SHUTDOWN, 7, ORCH_STOP_UPDATE, "x", &err),
			 0);
	assert_int_equal(orch_task_set_desired(&u, TASK_RUNNING, 8, ORCH_STOP_NONE, "x", &err),
			 -EINVAL);
	assert_int_equal(u.desired_ns, 7);

	enum task_state st;
	for (int i = 0; i < TASK_STATE_COUNT; i++) {
		assert_int_equal(task_state_from_name(task_state_name(i), &st), 0);
		assert_int_equal(st, i);
	}
	assert_int_equal(task_state_from_name("ready", &st), -EINVAL);
}

static void test_task_json(void **state)
{
	struct orch_task t = {.id = "abc",
			      .service_id = "svc",
			      .slot = 3,
			      .node_id = "n1",
			      .spec_version = 7,
			      .desired_state = TASK_SHUTDOWN,
			      .stop_cause = ORCH_STOP_UNHEALTHY,
			      .state = TASK_RUNNING,
			      .health = TASK_HEALTH_UNHEALTHY,
			      .exit_code = 137,
			      .err = "boom",
			      .replaces = "old",
			      .restart_count = 2};
	int64_t hist[] = {100, 200};
	struct orch_task back = {};
	struct shoal_err err = {};

	t.state_ns[TASK_NEW] = 1;
	t.state_ns[TASK_RUNNING] = 5;
	t.restarts = hist;
	t.n_restarts = 2;
	json_t *j = orch_task_to_json(&t);
	assert_non_null(j);
	assert_int_equal(orch_task_from_json(j, &back, &err), 0);
	json_t *j2 = orch_task_to_json(&back);
	assert_true(json_equal(j, j2));
	assert_string_equal(back.node_id, "n1");
	assert_int_equal(back.stop_cause, ORCH_STOP_UNHEALTHY);
	assert_int_equal(back.n_restarts, 2);
	assert_int_equal(back.restarts[1], 200);
	assert_int_equal(back.state_ns[TASK_RUNNING], 5);
	json_decref(j2);
	orch_task_clear(&back);

	json_object_set_new(j, "State", json_string("bogus"));
	assert_int_equal(orch_task_from_json(j, &back, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "bogus"));
	json_decref(j);
}

/* ---- reconcile: replicated ---- */

static void test_scale_up_down(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 3, 2);

	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 3);
	for (uint64_t slot = 1; slot <= 3; slot++)
		assert_int_equal(s->last.actions[slot - 1].task.slot, slot);
	/* Idempotent: nothing more until something changes. */
	assert_int_equal(sim_pass(s), 0);
	sim_settle(s);
	assert_int_equal(count_running(s, 1), 3);

	s->svc.replicas = 5;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 2);
	assert_int_equal(s->last.actions[0].task.slot, 4);
	assert_int_equal(s->last.actions[1].task.slot, 5);
	sim_settle(s);

	/* Slot 2's task is not running (it ended, restart none): it goes first,
	 * then the highest running slots. */
	s->svc.restart.condition = RESTART_NONE;
	fail_task(live_in_slot(s, 2), s->now);
	sim_settle(s);
	assert_int_equal(count_running(s, 0), 4);
	s->svc.replicas = 2;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 3);
	for (size_t i = 0; i < s->last.n_actions; i++)
		assert_int_equal(s->last.actions[i].desired, TASK_REMOVE);
	assert_non_null(live_in_slot(s, 1));
	assert_non_null(live_in_slot(s, 3));
	assert_null(live_in_slot(s, 2));
	assert_null(live_in_slot(s, 4));
	assert_null(live_in_slot(s, 5));
	sim_settle(s);
	/* Removed tasks are deleted once stopped. */
	for (size_t i = 0; i < s->n; i++)
		assert_true(s->tasks[i].slot == 1 || s->tasks[i].slot == 3);

	/* Scale up again: the lowest free slots. */
	s->svc.replicas = 4;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 2);
	assert_int_equal(s->last.actions[0].task.slot, 2);
	assert_int_equal(s->last.actions[1].task.slot, 4);
	sim_free(s);
}

/* A caller that writes only so many tasks at once asks for only so many new
 * slots per call: the lowest first, the rest on the following calls, and
 * nothing once every slot has its task. */
static void test_scale_up_bounded(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 10, 2);

	s->max_new_slots = 4;
	s->by_ptr = true;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 4);
	for (uint64_t slot = 1; slot <= 4; slot++)
		assert_int_equal(s->last.actions[slot - 1].task.slot, slot);
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 4);
	assert_int_equal(s->last.actions[0].task.slot, 5);
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 2);
	assert_int_equal(s->last.actions[1].task.slot, 10);
	assert_int_equal(sim_pass(s), 0);
	sim_settle(s);
	assert_int_equal(count_running(s, 1), 10);
	assert_int_equal(sim_pass(s), 0);
	sim_free(s);
}

/* Scale down takes a task that is not up (health check starting) before a
 * healthy one in a higher slot. */
static void test_scale_down_prefers_not_up(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 3, 2);

	sim_settle(s);
	live_in_slot(s, 1)->health = TASK_HEALTH_STARTING;
	s->svc.replicas = 2;
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_SCALE_DOWN);
	assert_null(live_in_slot(s, 1));
	assert_non_null(live_in_slot(s, 3));
	sim_free(s);
}

/* Rebuilding every record from the store (JSON) and reconciling yields no
 * action and no duplicate. */
static void test_agent_restart_no_duplicates(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 4, 2);
	struct shoal_err err = {};

	sim_settle(s);
	fail_task(live_in_slot(s, 3), s->now);
	sim_pass(s); /* restart pending: held replacement */
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	for (size_t i = 0; i < s->n; i++) {
		json_t *j = orch_task_to_json(&s->tasks[i]);
		orch_task_clear(&s->tasks[i]);
		assert_int_equal(orch_task_from_json(j, &s->tasks[i], &err), 0);
		json_decref(j);
	}
	json_t *uj = orch_update_to_json(&s->u);
	orch_update_clear(&s->u);
	assert_int_equal(orch_update_from_json(uj, &s->u, &err), 0);
	json_decref(uj);
	assert_int_equal(sim_pass(s), 0);
	assert_int_equal(count_live(s, 0), 4);
	assert_int_equal(s->last.wake_ns, s->now + 5 * SEC);
	sim_free(s);
}

/* A second live task in a slot (a write the agent made twice) is removed. */
static void test_duplicate_in_slot(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 2, 2);
	struct shoal_err err = {};

	sim_settle(s);
	struct orch_task *t = live_in_slot(s, 1);
	assert_int_equal(orch_task_copy(&s->tasks[s->n], t), 0);
	snprintf(s->tasks[s->n].id, ORCH_ID_MAX, "dup");
	s->tasks[s->n].created_ns = s->now;
	s->tasks[s->n].state = TASK_PENDING;
	s->n++;
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_SHUTDOWN);
	assert_string_equal(s->last.actions[0].task_id, "dup");
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_DUPLICATE);
	(void)err;
	sim_free(s);
}

static void test_node_down_and_orphan(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 2, 2);

	sim_settle(s);
	struct orch_task *t1 = live_in_slot(s, 1);
	char lost[ORCH_ID_MAX];
	snprintf(lost, sizeof(lost), "%s", t1->id);
	struct orch_node *n = node(s, t1->node_id);
	n->ready = false;
	n->down_since_ns = s->now;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 1);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	assert_int_equal(s->last.actions[1].task.desired_state, TASK_RUNNING);
	assert_int_equal(s->last.wake_ns, s->now + ORCH_DEFAULT_ORPHAN_AFTER);
	sim_settle(s);
	assert_int_equal(count_running(s, 1), 2);
	assert_int_equal(find(s, lost)->state, TASK_RUNNING); /* nobody reported it */

	s->now += ORCH_DEFAULT_ORPHAN_AFTER;
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_ORPHAN);
	assert_int_equal(find(s, lost)->state, TASK_ORPHANED);
	assert_int_equal(sim_pass(s), 0);
	sim_free(s);
}

static void test_drain_stop_first_and_start_first(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 2, 3);

	sim_settle(s);
	struct orch_task *t = live_in_slot(s, 1);
	char old[ORCH_ID_MAX], nid[ORCH_ID_MAX];
	snprintf(old, sizeof(old), "%s", t->id);
	snprintf(nid, sizeof(nid), "%s", t->node_id);
	node(s, nid)->availability = NODE_DRAIN;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 1);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_NODE_DRAIN);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	sim_settle(s);
	assert_null(live_on_node(s, nid));
	assert_int_equal(count_running(s, 1), 2);

	/* start-first: the old task keeps serving until its replacement runs. */
	struct sim *f = sim_new(ORCH_REPLICATED, 1, 2);
	f->svc.update.order = ORDER_START_FIRST;
	sim_settle(f);
	t = live_in_slot(f, 1);
	snprintf(old, sizeof(old), "%s", t->id);
	node(f, t->node_id)->availability = NODE_DRAIN;
	sim_pass(f);
	assert_int_equal(f->last.n_actions, 1);
	assert_int_equal(f->last.actions[0].type, ORCH_ACT_CREATE);
	assert_int_equal(find(f, old)->desired_state, TASK_RUNNING);
	assert_int_equal(sim_pass(f), 0);
	sim_nodes(f); /* the replacement runs */
	sim_pass(f);
	assert_int_equal(f->last.n_actions, 1);
	assert_int_equal(f->last.actions[0].type, ORCH_ACT_SHUTDOWN);
	assert_string_equal(f->last.actions[0].task_id, old);
	sim_settle(f);
	assert_int_equal(count_running(f, 1), 1);
	sim_free(f);
	sim_free(s);
}

/* ---- reconcile: global ---- */

static void test_global_nodes(void **state)
{
	struct sim *s = sim_new(ORCH_GLOBAL, 0, 2);

	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 2);
	assert_string_equal(s->last.actions[0].task.node_id, "n1");
	assert_string_equal(s->last.actions[1].task.node_id, "n2");
	sim_settle(s);
	assert_int_equal(sim_pass(s), 0);

	/* A node joins. */
	snprintf(s->node_ids[2], sizeof(s->node_ids[2]), "n3");
	s->nodes[2] = (struct orch_node){.id = s->node_ids[2], .ready = true, .eligible = true};
	s->n_nodes = 3;
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_string_equal(s->last.actions[0].task.node_id, "n3");
	sim_settle(s);

	/* Drain: the task goes and nothing replaces it. */
	node(s, "n2")->availability = NODE_DRAIN;
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_SHUTDOWN);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_NODE_DRAIN);
	sim_settle(s);
	assert_null(live_on_node(s, "n2"));
	/* Back to active: a task again. */
	node(s, "n2")->availability = NODE_ACTIVE;
	sim_settle(s);
	assert_non_null(live_on_node(s, "n2"));

	/* Pause keeps the task; constraints no longer met remove it. */
	node(s, "n2")->availability = NODE_PAUSE;
	assert_int_equal(sim_pass(s), 0);
	node(s, "n2")->eligible = false;
	sim_pass(s);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_NODE_INELIGIBLE);
	sim_settle(s);

	/* A node leaves: its task is orphaned and its records removed. */
	s->nodes[0] = s->nodes[2];
	s->n_nodes = 2;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_ORPHAN), 1);
	sim_settle(s);
	for (size_t i = 0; i < s->n; i++)
		assert_string_not_equal(s->tasks[i].node_id, "n1");

	/* A down node keeps its task until the orphan timeout; then it is
	 * replaced when the node returns. */
	struct orch_node *n3 = node(s, "n3");
	n3->ready = false;
	n3->down_since_ns = s->now;
	assert_int_equal(sim_pass(s), 0);
	s->now += ORCH_DEFAULT_ORPHAN_AFTER;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_ORPHAN), 1);
	n3->ready = true;
	sim_settle(s);
	assert_int_equal(live_on_node(s, "n3")->state, TASK_RUNNING);
	sim_free(s);
}

/* ---- restart policy ---- */

static void test_restart_delay(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 1, 1);

	sim_settle(s);
	struct orch_task *t = live_in_slot(s, 1);
	char old[ORCH_ID_MAX];
	snprintf(old, sizeof(old), "%s", t->id);
	fail_task(t, s->now);
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 1);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	const struct orch_task *nt = &s->last.actions[1].task;
	assert_int_equal(nt->desired_state, TASK_PREPARING);
	assert_int_equal(nt->start_at_ns, s->now + 5 * SEC);
	assert_int_equal(nt->slot, 1);
	assert_string_equal(nt->replaces, old);
	assert_int_equal(nt->restart_count, 1);
	assert_int_equal(s->last.wake_ns, s->now + 5 * SEC);

	s->now += 4 * SEC;
	assert_int_equal(sim_pass(s), 0);
	s->now += 1 * SEC;
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_START);
	sim_settle(s);
	assert_int_equal(count_running(s, 1), 1);

	/* on-failure: a clean exit stays down, and the slot is not refilled. */
	s->svc.restart.condition = RESTART_ON_FAILURE;
	t = live_in_slot(s, 1);
	advance(t, TASK_COMPLETE, s->now);
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_NO_RESTART);
	assert_int_equal(sim_pass(s), 0);
	sim_free(s);
}

static void test_restart_max_attempts(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 1, 1);
	s->svc.restart = (struct restart_policy){RESTART_ON_FAILURE, 0, 2, 0};

	sim_settle(s);
	for (int i = 0; i < 2; i++) {
		fail_task(live_in_slot(s, 1), s->now);
		sim_pass(s);
		assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
		sim_settle(s);
		s->now += 100 * SEC;
	}
	assert_int_equal(live_in_slot(s, 1)->restart_count, 2);
	fail_task(live_in_slot(s, 1), s->now);
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 0);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_NO_RESTART);
	assert_non_null(strstr(s->last.actions[0].message, "2 restart attempts"));
	/* Stays down, even much later. */
	s->now += 1000 * SEC;
	sim_settle(s);
	assert_int_equal(count_live(s, 0), 0);
	sim_free(s);
}

static void test_restart_window(void **state)
{
	struct restart_policy p = {RESTART_ANY, 1 * SEC, 2, 60 * SEC};
	int64_t hist[] = {100 * SEC, 130 * SEC};
	struct orch_task t = {
		.spec_version = 1, .restart_count = 2, .restarts = hist, .n_restarts = 2};
	int64_t at = 0;

	/* Two restarts in the last 60 s: the next waits for the first to age out. */
	assert_int_equal(orch_restart_decide(&p, &t, 1, true, 140 * SEC, &at), ORCH_RESTART_AT);
	assert_int_equal(at, 160 * SEC);
	/* Later than that, only the delay. */
	assert_int_equal(orch_restart_decide(&p, &t, 1, true, 165 * SEC, &at), ORCH_RESTART_AT);
	assert_int_equal(at, 166 * SEC);
	/* A new spec starts a fresh count. */
	assert_int_equal(orch_restart_decide(&p, &t, 2, true, 140 * SEC, &at), ORCH_RESTART_AT);
	assert_int_equal(at, 141 * SEC);
	/* No window: max attempts is final. */
	p.window_ns = 0;
	assert_int_equal(orch_restart_decide(&p, &t, 1, true, 140 * SEC, &at), ORCH_RESTART_NEVER);
	p.condition = RESTART_NONE;
	p.max_attempts = 0;
	assert_int_equal(orch_restart_decide(&p, &t, 1, true, 140 * SEC, &at), ORCH_RESTART_NEVER);
	p.condition = RESTART_ON_FAILURE;
	assert_int_equal(orch_restart_decide(&p, &t, 1, false, 140 * SEC, &at), ORCH_RESTART_NEVER);

	/* Through reconcile: the history is windowed in the records. */
	struct sim *s = sim_new(ORCH_REPLICATED, 1, 1);
	s->svc.restart = (struct restart_policy){RESTART_ANY, 0, 2, 60 * SEC};
	sim_settle(s);
	int64_t t0 = s->now;
	for (int i = 0; i < 2; i++) {
		fail_task(live_in_slot(s, 1), s->now);
		sim_settle(s);
		assert_int_equal(count_running(s, 1), 1);
		s->now += 10 * SEC;
	}
	fail_task(live_in_slot(s, 1), s->now);
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	const struct orch_task *held = &s->last.actions[1].task;
	assert_int_equal(held->desired_state, TASK_PREPARING);
	assert_int_equal(held->start_at_ns, t0 + 60 * SEC);
	assert_int_equal(held->n_restarts, 2); /* the window keeps only what counts */
	sim_settle(s);
	assert_int_equal(count_running(s, 1), 0);
	s->now = t0 + 60 * SEC;
	sim_settle(s);
	assert_int_equal(count_running(s, 1), 1);
	sim_free(s);
}

static void test_unhealthy_replaced(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 1, 1);
	s->svc.restart.delay_ns = 0;

	sim_settle(s);
	struct orch_task *t = live_in_slot(s, 1);
	char old[ORCH_ID_MAX];
	snprintf(old, sizeof(old), "%s", t->id);
	t->health = TASK_HEALTH_UNHEALTHY;
	sim_pass(s);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_SHUTDOWN);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_UNHEALTHY);
	/* The replacement waits for the unhealthy one to stop. */
	assert_int_equal(s->last.actions[1].task.desired_state, TASK_PREPARING);
	assert_int_equal(sim_pass(s), 0);
	advance(find(s, old), TASK_SHUTDOWN, s->now);
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_START);
	sim_free(s);
}

static void test_history_retention(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 1, 1);
	s->svc.restart.delay_ns = 0;

	sim_settle(s);
	for (int i = 0; i < 8; i++) {
		fail_task(live_in_slot(s, 1), s->now);
		sim_settle(s);
		s->now += SEC;
	}
	assert_int_equal(s->n, ORCH_DEFAULT_HISTORY_LIMIT);
	assert_int_equal(live_in_slot(s, 1)->restart_count, 8);
	sim_free(s);
}

/* A task rejected before it started (its node could not start it, or the
 * agent restarted mid-start) is replaced after the restart delay, never at
 * once, and the slot keeps only history_limit records however often it
 * happens: no storm of tasks. */
static void test_rejected_backs_off(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 1, 1);
	s->history_limit = 2;

	sim_settle(s);
	for (int i = 0; i < 10; i++) {
		struct orch_task *t = live_in_slot(s, 1);
		t->state = TASK_PREPARING;
		fail_task(t, s->now);
		assert_int_equal(t->state, TASK_REJECTED);
		sim_pass(s);
		assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
		const struct orch_action *c = NULL;
		for (size_t k = 0; k < s->last.n_actions; k++)
			if (s->last.actions[k].type == ORCH_ACT_CREATE)
				c = &s->last.actions[k];
		assert_int_equal(c->task.desired_state, TASK_PREPARING);
		assert_int_equal(c->task.start_at_ns, s->now + 5 * SEC);
		s->now += 4 * SEC;
		assert_int_equal(sim_pass(s), 0);
		s->now += 1 * SEC;
		sim_settle(s);
		assert_true(s->n <= 3);
	}
	assert_int_equal(s->n, 2);
	sim_free(s);
}

/* ---- rolling update ---- */

static struct sim *update_sim(uint64_t replicas, uint64_t parallelism, enum update_order order)
{
	struct sim *s = sim_new(ORCH_REPLICATED, replicas, 3);
	s->svc.update.parallelism = parallelism;
	s->svc.update.order = order;
	s->svc.update.delay_ns = 10 * SEC;
	s->svc.update.monitor_ns = 5 * SEC;
	sim_settle(s);
	assert_int_equal(s->u.state, UPDATE_NONE);
	s->svc.prev_spec_version = 1;
	s->svc.spec_version = 2;
	return s;
}

static void test_update_stop_first_parallelism_1(void **state)
{
	struct sim *s = update_sim(3, 1, ORDER_STOP_FIRST);

	sim_pass(s);
	assert_int_equal(s->u.state, UPDATE_UPDATING);
	assert_int_equal(s->u.started_ns, s->now);
	assert_true(s->last.update_changed);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 1);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	assert_int_equal(s->last.actions[0].stop_grace_ns, 10 * SEC);
	assert_int_equal(s->last.actions[1].task.desired_state, TASK_PREPARING);
	assert_int_equal(s->last.actions[1].task.spec_version, 2);
	/* Stop first: nothing starts until the old task has stopped. */
	assert_int_equal(sim_pass(s), 0);
	sim_nodes(s); /* old stops */
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_START);
	sim_nodes(s); /* new runs */
	sim_pass(s);
	/* Batch done: the delay runs before the next one. */
	assert_int_equal(s->last.n_actions, 0);
	/* Woken when the new task's monitor window ends, then when the delay does. */
	assert_int_equal(s->last.wake_ns, s->now + 5 * SEC);
	s->now += 5 * SEC;
	assert_int_equal(sim_pass(s), 0);
	assert_int_equal(s->last.wake_ns, s->now + 5 * SEC);
	s->now += 4 * SEC;
	assert_int_equal(sim_pass(s), 0);
	s->now += 1 * SEC;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 1);
	assert_int_equal(count_live(s, 1), 1);
	assert_int_equal(count_live(s, 2), 2);
	for (int i = 0; i < 5; i++) {
		sim_settle(s);
		s->now += 10 * SEC;
	}
	assert_int_equal(s->u.state, UPDATE_COMPLETED);
	assert_string_equal(s->u.message, "update completed");
	assert_int_equal(count_running(s, 2), 3);
	assert_int_equal(count_live(s, 1), 0);
	sim_free(s);
}

static void test_update_parallelism_2(void **state)
{
	struct sim *s = update_sim(5, 2, ORDER_STOP_FIRST);

	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 2);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 2);
	sim_settle(s);
	assert_int_equal(count_running(s, 2), 2);
	assert_int_equal(count_running(s, 1), 3);
	s->now += 10 * SEC;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 2);
	sim_settle(s);
	s->now += 10 * SEC;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	sim_settle(s);
	assert_int_equal(s->u.state, UPDATE_UPDATING); /* still monitoring */
	s->now += 5 * SEC;
	sim_settle(s);
	assert_int_equal(s->u.state, UPDATE_COMPLETED);
	assert_int_equal(count_running(s, 2), 5);
	sim_free(s);
}

static void test_update_start_first(void **state)
{
	struct sim *s = update_sim(2, 1, ORDER_START_FIRST);
	char old[ORCH_ID_MAX];

	snprintf(old, sizeof(old), "%s", live_in_slot(s, 1)->id);
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_CREATE);
	assert_int_equal(s->last.actions[0].task.desired_state, TASK_RUNNING);
	assert_string_equal(s->last.actions[0].task.replaces, old);
	assert_int_equal(sim_pass(s), 0);
	/* The new task runs but its health check has not passed: keep the old. */
	sim_nodes(s);
	struct orch_task *nt = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].spec_version == 2)
			nt = &s->tasks[i];
	nt->health = TASK_HEALTH_STARTING;
	assert_int_equal(sim_pass(s), 0);
	assert_int_equal(count_running(s, 0), 3);
	nt->health = TASK_HEALTH_HEALTHY;
	sim_pass(s);
	assert_int_equal(s->last.n_actions, 1);
	assert_int_equal(s->last.actions[0].type, ORCH_ACT_SHUTDOWN);
	assert_string_equal(s->last.actions[0].task_id, old);
	assert_int_equal(s->last.actions[0].cause, ORCH_STOP_UPDATE);
	sim_free(s);
}

/* A new task failing inside the monitor window pauses the update. */
static void test_update_monitor_pause(void **state)
{
	struct sim *s = update_sim(3, 1, ORDER_STOP_FIRST);

	sim_settle(s);
	struct orch_task *nt = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].spec_version == 2 && s->tasks[i].desired_state == TASK_RUNNING)
			nt = &s->tasks[i];
	assert_non_null(nt);
	char failed[ORCH_ID_MAX];
	snprintf(failed, sizeof(failed), "%s", nt->id);
	s->now += 2 * SEC;
	fail_task(nt, s->now);
	sim_pass(s);
	assert_int_equal(s->u.state, UPDATE_PAUSED);
	assert_int_equal(s->u.failures, 1);
	assert_non_null(strstr(s->u.message, "update paused due to failure"));
	assert_non_null(strstr(s->u.message, failed));
	/* Paused: no further slots, however long we wait (restarts go on). */
	s->now += 100 * SEC;
	sim_settle(s);
	assert_int_equal(count_live(s, 1), 2);
	assert_int_equal(s->u.state, UPDATE_PAUSED);

	/* Resume: the rest goes through. */
	struct shoal_err err = {};
	assert_int_equal(orch_update_resume(&s->u, s->now, &err), 0);
	for (int i = 0; i < 5; i++) {
		sim_settle(s);
		s->now += 10 * SEC;
	}
	assert_int_equal(s->u.state, UPDATE_COMPLETED);
	assert_int_equal(count_running(s, 2), 3);
	sim_free(s);
}

/* Failing after the monitor window is not an update failure. */
static void test_update_failure_after_monitor(void **state)
{
	struct sim *s = update_sim(2, 1, ORDER_STOP_FIRST);

	sim_settle(s);
	s->now += 6 * SEC;
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].spec_version == 2 && s->tasks[i].state == TASK_RUNNING)
			fail_task(&s->tasks[i], s->now);
	sim_pass(s);
	assert_int_equal(s->u.failures, 0);
	assert_int_equal(s->u.state, UPDATE_UPDATING);
	sim_free(s);
}

static void test_update_failure_ratio(void **state)
{
	struct sim *s = update_sim(4, 0, ORDER_STOP_FIRST);
	s->svc.update.max_failure_ratio = 0.5;
	s->svc.restart.condition = RESTART_NONE;

	sim_settle(s); /* all four at once */
	assert_int_equal(count_running(s, 2), 4);
	int failed = 0;
	for (size_t i = 0; i < s->n && failed < 2; i++)
		if (s->tasks[i].spec_version == 2 && s->tasks[i].state == TASK_RUNNING) {
			fail_task(&s->tasks[i], s->now);
			failed++;
		}
	sim_pass(s);
	/* 2/4 is not above 0.5. */
	assert_int_equal(s->u.failures, 2);
	assert_int_equal(s->u.state, UPDATE_UPDATING);
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].spec_version == 2 && s->tasks[i].state == TASK_RUNNING) {
			fail_task(&s->tasks[i], s->now);
			break;
		}
	sim_pass(s);
	assert_int_equal(s->u.failures, 3);
	assert_int_equal(s->u.state, UPDATE_PAUSED);
	sim_free(s);
}

static void test_update_failure_continue(void **state)
{
	struct sim *s = update_sim(2, 1, ORDER_STOP_FIRST);
	s->svc.update.failure_action = FAILURE_CONTINUE;
	s->svc.restart.delay_ns = 0;

	sim_settle(s);
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].spec_version == 2 && s->tasks[i].state == TASK_RUNNING)
			fail_task(&s->tasks[i], s->now);
	for (int i = 0; i < 5; i++) {
		sim_settle(s);
		s->now += 10 * SEC;
	}
	assert_int_equal(s->u.failures, 1);
	assert_int_equal(s->u.state, UPDATE_COMPLETED);
	assert_int_equal(count_running(s, 2), 2);
	sim_free(s);
}

static void test_update_failure_rollback(void **state)
{
	struct sim *s = update_sim(4, 2, ORDER_STOP_FIRST);
	s->svc.update.failure_action = FAILURE_ROLLBACK;
	s->svc.rollback.parallelism = 0;
	s->svc.rollback.monitor_ns = 5 * SEC;

	sim_settle(s); /* first batch: slots 1 and 2 on v2 */
	s->now += 10 * SEC;
	sim_settle(s); /* second batch: slots 3 and 4 */
	assert_int_equal(count_running(s, 2), 4);
	/* Remember what runs v2 in slots 1 and 2, then fail slot 3's new task. */
	struct orch_task *t3 = live_in_slot(s, 3);
	fail_task(t3, s->now);
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_ROLLBACK), 1);
	assert_int_equal(s->u.state, UPDATE_ROLLBACK_STARTED);
	assert_non_null(strstr(s->u.message, "update rolled back due to failure"));
	assert_int_equal(s->svc.spec_version, 1);
	for (int i = 0; i < 5; i++) {
		sim_settle(s);
		s->now += 10 * SEC;
	}
	assert_int_equal(s->u.state, UPDATE_ROLLBACK_COMPLETED);
	assert_string_equal(s->u.message, "rollback completed");
	assert_int_equal(count_running(s, 1), 4);
	assert_int_equal(count_live(s, 2), 0);
	sim_free(s);
}

/* A rollback leaves tasks that already run the target (previous) spec. */
static void test_rollback_keeps_target_tasks(void **state)
{
	struct sim *s = update_sim(3, 1, ORDER_STOP_FIRST);
	struct shoal_err err = {};

	sim_settle(s); /* slot 1 (or the first picked) on v2; 2 slots on v1 */
	assert_int_equal(count_running(s, 2), 1);
	assert_int_equal(count_running(s, 1), 2);
	char keep[2][ORCH_ID_MAX];
	int k = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].spec_version == 1 && s->tasks[i].desired_state == TASK_RUNNING)
			snprintf(keep[k++], ORCH_ID_MAX, "%s", s->tasks[i].id);
	/* Manual rollback: the agent makes v1 current again. */
	s->svc.spec_version = 1;
	s->svc.prev_spec_version = 0;
	assert_int_equal(orch_update_rollback(&s->u, 2, 1, s->now, &err), 0);
	assert_string_equal(s->u.message, "manually requested rollback");
	sim_pass(s);
	assert_int_equal(s->u.state, UPDATE_ROLLBACK_STARTED);
	for (size_t i = 0; i < s->last.n_actions; i++)
		if (s->last.actions[i].type == ORCH_ACT_SHUTDOWN) {
			assert_string_not_equal(s->last.actions[i].task_id, keep[0]);
			assert_string_not_equal(s->last.actions[i].task_id, keep[1]);
		}
	for (int i = 0; i < 4; i++) {
		sim_settle(s);
		s->now += 10 * SEC;
	}
	assert_int_equal(s->u.state, UPDATE_ROLLBACK_COMPLETED);
	assert_int_equal(find(s, keep[0])->desired_state, TASK_RUNNING);
	assert_int_equal(find(s, keep[1])->desired_state, TASK_RUNNING);
	assert_int_equal(count_running(s, 1), 3);
	assert_int_equal(orch_update_rollback(&s->u, 1, 0, s->now, &err), -EINVAL);
	sim_free(s);
}

/* Serialise mid-update, restore, and carry on: the same outcome, no extra
 * tasks, the delay still honoured. */
static void test_update_resume_after_restart(void **state)
{
	struct sim *s = update_sim(3, 1, ORDER_STOP_FIRST);
	struct shoal_err err = {};

	sim_settle(s);	   /* first batch done, delay running */
	s->now += 6 * SEC; /* past the monitor window */
	int64_t next = s->u.next_batch_ns;
	assert_true(next > s->now);
	json_t *uj = orch_update_to_json(&s->u);
	char *text = json_dumps(uj, 0);
	json_decref(uj);
	orch_update_clear(&s->u);
	json_error_t jerr;
	uj = json_loads(text, 0, &jerr);
	free(text);
	assert_int_equal(orch_update_from_json(uj, &s->u, &err), 0);
	json_decref(uj);
	assert_int_equal(s->u.state, UPDATE_UPDATING);
	assert_int_equal(s->u.next_batch_ns, next);
	assert_int_equal(sim_pass(s), 0);
	assert_int_equal(s->last.wake_ns, next);
	s->now = next;
	for (int i = 0; i < 4; i++) {
		sim_settle(s);
		s->now += 10 * SEC;
	}
	assert_int_equal(s->u.state, UPDATE_COMPLETED);
	assert_int_equal(count_live(s, 0), 3);

	json_t *st = orch_update_status_json(&s->u);
	assert_string_equal(json_string_value(json_object_get(st, "State")), "completed");
	assert_non_null(json_object_get(st, "CompletedAt"));
	json_decref(st);
	sim_free(s);
}

static void test_update_global(void **state)
{
	struct sim *s = sim_new(ORCH_GLOBAL, 0, 3);
	s->svc.update.delay_ns = 10 * SEC;

	sim_settle(s);
	s->svc.prev_spec_version = 1;
	s->svc.spec_version = 2;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 1);
	assert_int_equal(count_actions(s, ORCH_ACT_CREATE), 1);
	/* The new task goes to the node the old one ran on. */
	const char *nid = s->last.actions[1].task.node_id;
	assert_string_equal(nid, "n1");
	for (int i = 0; i < 6; i++) {
		sim_settle(s);
		s->now += 10 * SEC;
	}
	assert_int_equal(s->u.state, UPDATE_COMPLETED);
	for (int i = 1; i <= 3; i++) {
		char id[8];
		snprintf(id, sizeof(id), "n%d", i);
		assert_int_equal(live_on_node(s, id)->spec_version, 2);
	}
	sim_free(s);
}

static void test_service_removed(void **state)
{
	struct sim *s = sim_new(ORCH_REPLICATED, 3, 2);

	sim_settle(s);
	s->svc.removed = true;
	sim_pass(s);
	assert_int_equal(count_actions(s, ORCH_ACT_SHUTDOWN), 3);
	assert_false(s->last.service_gone);
	sim_settle(s);
	assert_int_equal(s->n, 0);
	assert_true(s->last.service_gone);
	sim_free(s);
}

static void test_bad_input(void **state)
{
	struct orch_service svc = {.id = "x", .spec_version = 0};
	struct orch_update u = {};
	struct orch_input in = {.service = &svc, .update = &u};
	struct orch_result r = {};
	struct shoal_err err = {};

	assert_int_equal(orch_reconcile(&in, 1, &r, &err), -EINVAL);
	svc.spec_version = 1;
	svc.replicas = ORCH_MAX_REPLICAS + 1;
	assert_int_equal(orch_reconcile(&in, 1, &r, &err), -E2BIG);
	in.update = NULL;
	svc.replicas = 1;
	assert_int_equal(orch_reconcile(&in, 1, &r, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_task_json),
		cmocka_unit_test(test_scale_up_down),
		cmocka_unit_test(test_scale_up_bounded),
		cmocka_unit_test(test_scale_down_prefers_not_up),
		cmocka_unit_test(test_agent_restart_no_duplicates),
		cmocka_unit_test(test_duplicate_in_slot),
		cmocka_unit_test(test_node_down_and_orphan),
		cmocka_unit_test(test_drain_stop_first_and_start_first),
		cmocka_unit_test(test_global_nodes),
		cmocka_unit_test(test_restart_delay),
		cmocka_unit_test(test_restart_max_attempts),
		cmocka_unit_test(test_restart_window),
		cmocka_unit_test(test_unhealthy_replaced),
		cmocka_unit_test(test_history_retention),
		cmocka_unit_test(test_rejected_backs_off),
		cmocka_unit_test(test_update_stop_first_parallelism_1),
		cmocka_unit_test(test_update_parallelism_2),
		cmocka_unit_test(test_update_start_first),
		cmocka_unit_test(test_update_monitor_pause),
		cmocka_unit_test(test_update_failure_after_monitor),
		cmocka_unit_test(test_update_failure_ratio),
		cmocka_unit_test(test_update_failure_continue),
		cmocka_unit_test(test_update_failure_rollback),
		cmocka_unit_test(test_rollback_keeps_target_tasks),
		cmocka_unit_test(test_update_resume_after_restart),
		cmocka_unit_test(test_update_global),
		cmocka_unit_test(test_service_removed),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
