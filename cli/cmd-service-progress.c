// SPDX-License-Identifier: Apache-2.0
/* Following a service until it converges: the progress block `service create/update/scale`
 * show, and the API calls it polls. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/spec.h"

#define DEFAULT_WAIT_NS	   (120 * 1000000000LL)
#define DEFAULT_MONITOR_NS 5000000000LL
#define POLL_NS		   200000000LL

static int64_t wait_limit_ns = DEFAULT_WAIT_NS;

void cli_service_set_wait_limit(int64_t ns)
{
	wait_limit_ns = ns > 0 ? ns : DEFAULT_WAIT_NS;
}

/* API helpers */

json_t *cli_service_get(struct cli_ctx *ctx, const char *name, struct shoal_err *err)
{
	return cli_object_get(ctx, "/services", name, NULL, "service", err);
}

/* "/tasks?filters=..." for one service (NULL: all); NULL on ENOMEM. */
static char *tasks_path(const char *service_id, bool up_to_date, json_t *extra_filters)
{
	_cleanup_json_ json_t *filters =
		extra_filters ? json_deep_copy(extra_filters) : json_object();
	if (!filters)
		return NULL;
	if (service_id &&
	    json_object_set_new(cli_json_obj(filters, "service"), service_id, json_true()) < 0)
		return NULL;
	if (up_to_date &&
	    json_object_set_new(cli_json_obj(filters, "_up-to-date"), "true", json_true()))
		return NULL;
	if (json_object_size(filters) == 0)
		return strdup("/tasks");
	_cleanup_free_ char *fs = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *fe = fs ? cli_escape(fs) : NULL;
	char *path = NULL;
	if (!fe || asprintf(&path, "/tasks?filters=%s", fe) < 0)
		return NULL;
	return path;
}

/* GET /tasks, filtered to one service (NULL: all). */
json_t *cli_service_tasks_get(struct cli_ctx *ctx, const char *service_id, bool up_to_date,
			      json_t *extra_filters, struct shoal_err *err)
{
	_cleanup_free_ char *path = tasks_path(service_id, up_to_date, extra_filters);
	if (!path) {
		shoal_err_set(err, ENOMEM, "Error: out of memory");
		return NULL;
	}
	json_t *j = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &j, err) < 0)
		return NULL;
	if (!json_is_array(j)) {
		json_decref(j);
		shoal_err_set(err, EIO, "Error: malformed task list from daemon");
		return NULL;
	}
	return j;
}

/* Progress */

/* Swarm's task states in order, for the progress bar. */
static const char *const task_states[] = {"new",       "pending",  "assigned", "accepted",
					  "preparing", "starting", "running"};

static int state_rank(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(task_states); i++)
		if (strcmp(s, task_states[i]) == 0)
			return (int)i + 1;
	return 0;
}

bool cli_task_desired_running(json_t *task)
{
	const char *d = cli_json_str(task, "DesiredState");
	return !d || strcmp(d, "running") == 0 || strcmp(d, "ready") == 0 ||
	       strcmp(d, "accepted") == 0;
}

/* Newer of two tasks for one slot: higher Version.Index, then later CreatedAt. */
bool cli_task_newer(json_t *a, json_t *b)
{
	if (!b)
		return true;
	json_int_t va = cli_json_int(a, "Version.Index"), vb = cli_json_int(b, "Version.Index");
	const char *ca = cli_json_str(a, "CreatedAt"), *cb = cli_json_str(b, "CreatedAt");
	if (ca && cb && strcmp(ca, cb) != 0)
		return strcmp(ca, cb) > 0;
	return va > vb;
}

struct progress_row {
	char key[80]; /* "1/3" or a short node id */
	json_t *task; /* borrowed */
};

struct progress {
	struct progress_row *rows;
	size_t nrows;
	uint64_t desired, running;
	bool global;
};

static bool progress_converged(const struct progress *p)
{
	return p->running == p->desired && !(p->global && p->nrows == 0);
}

static void progress_done(struct progress *p)
{
	free(p->rows);
	*p = (struct progress){0};
}

/* A task made from the service's current TaskTemplate (docker's "_up-to-date"): tasks
 * carry the template they were made from as their Spec. */
static bool task_current(json_t *svc, json_t *task)
{
	json_t *want = cli_json_get(svc, "Spec.TaskTemplate"), *have = cli_json_get(task, "Spec");
	return !want || !have || json_equal(want, have);
}

/* The task that stands for each slot (replicated) or node (global): the newest whose
 * desired state is running, else the newest at all. Only tasks of the current spec
 * count, so that an update is followed by its new tasks. */
static int progress_compute(json_t *svc, json_t *tasks, struct progress *ret)
{
	struct progress p = {.global = cli_json_get(svc, "Spec.Mode.Global") != NULL};
	size_t i;
	json_t *t;
	if (!p.global) {
		p.desired = (uint64_t)cli_json_int(svc, "Spec.Mode.Replicated.Replicas");
		if (p.desired > SPEC_MAX_REPLICAS)
			p.desired = SPEC_MAX_REPLICAS;
		p.rows = calloc(p.desired ? p.desired : 1, sizeof(*p.rows));
		if (!p.rows)
			return -ENOMEM;
		p.nrows = p.desired;
		for (size_t s = 0; s < p.nrows; s++)
			snprintf(p.rows[s].key, sizeof(p.rows[s].key), "%zu/%" PRIu64, s + 1,
				 p.desired);
		json_array_foreach(tasks, i, t)
		{
			json_int_t slot = cli_json_int(t, "Slot");
			if (slot < 1 || (uint64_t)slot > p.desired || !task_current(svc, t))
				continue;
			struct progress_row *r = &p.rows[slot - 1];
			bool cur = r->task && cli_task_desired_running(r->task);
			if (cli_task_desired_running(t) ? !cur || cli_task_newer(t, r->task)
							: !cur && cli_task_newer(t, r->task))
				r->task = t;
		}
	} else {
		p.rows = calloc(json_array_size(tasks) + 1, sizeof(*p.rows));
		if (!p.rows)
			return -ENOMEM;
		json_array_foreach(tasks, i, t)
		{
			const char *node = cli_json_str(t, "NodeID");
			char key[80];
			cli_id_trunc(node, true, key, sizeof(key));
			if (!node || !cli_task_desired_running(t) || !task_current(svc, t))
				continue;
			struct progress_row *r = NULL;
			for (size_t k = 0; k < p.nrows && !r; k++)
				if (strcmp(p.rows[k].key, key) == 0)
					r = &p.rows[k];
			if (!r) {
				r = &p.rows[p.nrows++];
				snprintf(r->key, sizeof(r->key), "%s", key);
			}
			if (cli_task_newer(t, r->task))
				r->task = t;
		}
		json_int_t dt = cli_json_int(svc, "ServiceStatus.DesiredTasks");
		p.desired = dt > 0 ? (uint64_t)dt : p.nrows;
	}
	for (size_t k = 0; k < p.nrows; k++) {
		json_t *task = p.rows[k].task;
		if (task && cli_task_desired_running(task) &&
		    strcmp(cli_json_str(task, "Status.State") ?: "", "running") == 0)
			p.running++;
	}
	*ret = p;
	return 0;
}

/* "running", "pending: no suitable node (...)", "failed: task: non-zero exit (1)". */
static void row_status(json_t *task, char *buf, size_t size)
{
	const char *state = cli_json_str(task, "Status.State") ?: "new";
	const char *emsg = cli_json_str(task, "Status.Err");
	const char *msg = cli_json_str(task, "Status.Message");
	if (emsg && *emsg)
		snprintf(buf, size, "%s: %s", state, emsg);
	else if (strcmp(state, "pending") == 0 && msg && *msg)
		snprintf(buf, size, "%s: %s", state, msg);
	else
		snprintf(buf, size, "%s", state);
}

/* docker's progress bar: "[=====>      ]", 50 steps, full at running. */
static void bar(int rank, char *buf, size_t size)
{
	int max = (int)ARRAY_SIZE(task_states), width = 50;
	int fill = rank * width / max;
	char b[64];
	int n = 0;
	for (int k = 0; k < fill; k++)
		b[n++] = '=';
	b[n++] = '>';
	for (int k = fill; k < width; k++)
		b[n++] = ' ';
	b[n] = '\0';
	snprintf(buf, size, "[%s]", b);
}

/* The progress block as lines (a JSON array of strings); with_bars for terminals. */
static json_t *progress_lines(const struct progress *p, bool with_bars)
{
	json_t *lines = json_array();
	char line[1024];
	if (!lines)
		return NULL;
	if (p->global && p->nrows == 0)
		/* The orchestrator has not made the tasks yet, or no node is eligible. */
		snprintf(line, sizeof(line), "overall progress: waiting for new tasks");
	else
		snprintf(line, sizeof(line),
			 "overall progress: %" PRIu64 " out of %" PRIu64 " tasks", p->running,
			 p->desired);
	json_array_append_new(lines, json_string(line));
	for (size_t k = 0; k < p->nrows; k++) {
		json_t *task = p->rows[k].task;
		if (!task)
			continue;
		char st[768];
		row_status(task, st, sizeof(st));
		int rank = state_rank(cli_json_str(task, "Status.State"));
		if (with_bars && rank > 0 && !cli_json_str(task, "Status.Err")) {
			char b[64];
			bar(rank, b, sizeof(b));
			snprintf(line, sizeof(line), "%s: %-9s %s", p->rows[k].key, st, b);
		} else {
			snprintf(line, sizeof(line), "%s: %s", p->rows[k].key, st);
		}
		json_array_append_new(lines, json_string(line));
	}
	return lines;
}

char *cli_service_progress_text(json_t *service, json_t *tasks, bool *ret_converged)
{
	struct progress p;
	if (progress_compute(service, tasks, &p) < 0)
		return NULL;
	_cleanup_json_ json_t *lines = progress_lines(&p, false);
	if (ret_converged)
		*ret_converged = progress_converged(&p);
	progress_done(&p);
	if (!lines)
		return NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) fprintf(f, "%s\n", json_string_value(l));
	fclose(f);
	return out;
}

/* Prints progress: redrawn in place on a terminal, changed lines only otherwise. */
struct display {
	bool tty, quiet;
	size_t drawn;  /* lines of the block on screen (tty) */
	json_t *shown; /* key -> last text printed (non-tty) */
};

static void display_lines(struct display *d, json_t *lines)
{
	if (d->quiet)
		return;
	size_t i;
	json_t *l;
	if (d->tty) {
		if (d->drawn)
			printf("\033[%zuA", d->drawn);
		json_array_foreach(lines, i, l) printf("\033[2K%s\n", json_string_value(l));
		/* A shorter block clears what the longer one left below it. */
		size_t n = json_array_size(lines);
		for (size_t k = n; k < d->drawn; k++)
			printf("\033[2K\n");
		if (d->drawn > n)
			printf("\033[%zuA", d->drawn - n);
		d->drawn = n;
		fflush(stdout);
		return;
	}
	json_array_foreach(lines, i, l)
	{
		const char *s = json_string_value(l);
		const char *colon = strchr(s, ':');
		char key[128];
		snprintf(key, sizeof(key), "%.*s", colon ? (int)(colon - s) : 0, s);
		const char *prev = json_string_value(json_object_get(d->shown, key));
		if (prev && strcmp(prev, s) == 0)
			continue;
		json_object_set_new(d->shown, key, json_string(s));
		printf("%s\n", s);
	}
	fflush(stdout);
}

static void explain_not_converged(const char *name, const struct progress *p, int64_t waited_s)
{
	fprintf(stderr,
		"service %s did not converge within %" PRId64 " seconds: %" PRIu64
		" out of %" PRIu64 " tasks running\n",
		name, waited_s, p->running, p->desired);
	for (size_t k = 0; k < p->nrows; k++) {
		json_t *t = p->rows[k].task;
		if (!t) {
			fprintf(stderr, "  %s: no task yet\n", p->rows[k].key);
			continue;
		}
		if (cli_task_desired_running(t) &&
		    strcmp(cli_json_str(t, "Status.State") ?: "", "running") == 0)
			continue;
		char st[768];
		row_status(t, st, sizeof(st));
		fprintf(stderr, "  %s: %s\n", p->rows[k].key, st);
	}
}

/* After a paused or rolled back update: the task failures since the update started,
 * which say why. */
static void explain_update_failure(struct cli_ctx *ctx, json_t *svc)
{
	struct shoal_err err = {0};
	_cleanup_json_ json_t *tasks =
		cli_service_tasks_get(ctx, cli_json_str(svc, "ID"), false, NULL, &err);
	int64_t started = cli_time_parse(cli_json_str(svc, "UpdateStatus.StartedAt"));
	size_t i, shown = 0;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		const char *state = cli_json_str(t, "Status.State") ?: "";
		const char *e = cli_json_str(t, "Status.Err");
		if (!e || !*e || (strcmp(state, "failed") && strcmp(state, "rejected")))
			continue;
		if (started && cli_time_parse(cli_json_str(t, "CreatedAt")) + 1 < started)
			continue;
		if (shown++ == 5)
			break;
		char idb[16];
		cli_id_trunc(cli_json_str(t, "ID"), true, idb, sizeof(idb));
		fprintf(stderr, "  task %s (slot %" JSON_INTEGER_FORMAT "): %s: %s\n", idb,
			cli_json_int(t, "Slot"), state, e);
	}
}

/* Polls the service and its tasks until they converge, as docker's progress does.
 * before: UpdateStatus.StartedAt read before the update was posted; an outcome from that
 * earlier update (paused, rolled back) is not this one's, until the orchestrator starts
 * this one. */
int cli_service_wait(struct cli_ctx *ctx, const char *id, enum cli_service_wait_kind kind,
		     bool quiet, const char *before)
{
	struct display d = {.tty = isatty(STDOUT_FILENO), .quiet = quiet, .shown = json_object()};
	_cleanup_json_ json_t *shown = d.shown;
	if (!shown)
		return cli_oom();
	int64_t start = mono_ns(), converged_at = 0;
	bool rollback_seen = false;
	struct shoal_err err = {0};
	for (;;) {
		_cleanup_json_ json_t *svc = cli_service_get(ctx, id, &err);
		if (!svc) {
			cli_print_err(&err);
			return 1;
		}
		const char *name = cli_json_str(svc, "Spec.Name") ?: id;
		const char *ustate = cli_json_str(svc, "UpdateStatus.State") ?: "";
		const char *umsg = cli_json_str(svc, "UpdateStatus.Message") ?: "";
		const char *started = cli_json_str(svc, "UpdateStatus.StartedAt");
		bool stale = before && started && strcmp(before, started) == 0;
		bool in_progress = false;
		_cleanup_json_ json_t *extra = json_array();
		if (!extra)
			return cli_oom();
		if (kind != CLI_WAIT_CREATE) {
			const char *failed = NULL;
			if (stale)
				failed = NULL; /* the earlier update's outcome */
			else if (strcmp(ustate, "paused") == 0)
				failed = "service update paused";
			else if (strcmp(ustate, "rollback_paused") == 0)
				failed = "service rollback paused";
			else if (strcmp(ustate, "rollback_completed") == 0 &&
				 kind == CLI_WAIT_UPDATE)
				failed = "service rolled back";
			if (failed) {
				fprintf(stderr, "%s: %s\n", failed, umsg);
				explain_update_failure(ctx, svc);
				return 1;
			}
			if (strcmp(ustate, "rollback_started") == 0) {
				if (*umsg || rollback_seen) {
					char l[1100];
					snprintf(l, sizeof(l), "rollback: %s", umsg);
					json_array_append_new(extra, json_string(l));
				}
				rollback_seen = true;
				in_progress = true;
			}
			if (strcmp(ustate, "updating") == 0)
				in_progress = true;
		}
		/* As docker: only tasks of the current spec count ("_up-to-date"). */
		_cleanup_json_ json_t *tasks =
			cli_service_tasks_get(ctx, cli_json_str(svc, "ID"), true, NULL, &err);
		if (!tasks) {
			cli_print_err(&err);
			return 1;
		}
		struct progress p;
		if (progress_compute(svc, tasks, &p) < 0)
			return cli_oom();
		bool converged = progress_converged(&p) && !in_progress;
		int64_t now = mono_ns();
		int64_t monitor =
			cli_json_int(svc, kind == CLI_WAIT_ROLLBACK ? "Spec.RollbackConfig.Monitor"
								    : "Spec.UpdateConfig.Monitor");
		if (monitor <= 0)
			monitor = DEFAULT_MONITOR_NS;
		bool done = false;
		if (converged) {
			if (!converged_at)
				converged_at = now;
			int64_t left = monitor - (now - converged_at);
			char l[128];
			if (left <= 0) {
				snprintf(l, sizeof(l), "verify: Service converged");
				done = true;
			} else {
				snprintf(l, sizeof(l),
					 "verify: Waiting %" PRId64
					 " seconds to verify that tasks are stable...",
					 (left + 999999999) / 1000000000);
			}
			json_array_append_new(extra, json_string(l));
		} else if (converged_at) {
			json_array_append_new(extra, json_string("verify: Detected task failure"));
			converged_at = 0;
		}
		_cleanup_json_ json_t *lines = progress_lines(&p, d.tty);
		if (!lines || json_array_extend(lines, extra) < 0) {
			progress_done(&p);
			return cli_oom();
		}
		display_lines(&d, lines);
		if (done) {
			progress_done(&p);
			return 0;
		}
		if (now - start >= wait_limit_ns) {
			explain_not_converged(name, &p, (now - start) / 1000000000);
			progress_done(&p);
			return 1;
		}
		progress_done(&p);
		struct timespec ts = {0, POLL_NS};
		nanosleep(&ts, NULL);
	}
}
