// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/executor.h"
#include "agent/manager.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "agent/secrets.h"
#include "agent/task-cache.h"
#include "agent/worker.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/image.h"
#include "runtime/runtime.h"
#include "sched/spec.h"
#include "sched/task.h"

/*
 * The task executor: runs the tasks the scheduler assigned to this node, one
 * container each, and writes their observed state back to the store:
 * assigned -> accepted -> preparing -> starting -> running -> complete | failed
 * | shutdown | rejected. A task with a health check stays starting until its
 * first healthy probe; one that turns unhealthy fails and is replaced by the
 * orchestrator.
 */

#define HEALTH_DEFAULT_INTERVAL (30LL * 1000000000)
#define HEALTH_DEFAULT_TIMEOUT	(30LL * 1000000000)
#define HEALTH_DEFAULT_RETRIES	3
#define HEALTH_OUTPUT_MAX	4096

/* A Linux bridge numbers its ports 1..1023 (BR_MAX_PORTS is 1024, port 0
 * unused): every container on the default bridge is one. */
#define EXEC_BRIDGE_PORTS 1023
/* Buckets of the task id index (runs chain past it). */
#define EXEC_RUN_BUCKETS 4096
/* One executor call starts at most this many tasks, and stops starting (or
 * stopping) past EXEC_TURN_NS: the rest on the next loop turn. A start is
 * about a millisecond on the loop on a quiet machine (the record's moves,
 * the container's files and network), tens of ms on a loaded one. */
#define EXEC_TURN_STARTS 32
#define EXEC_TURN_NS	 (10LL * 1000000)

struct probe;

struct task_run {
	struct task_run *next, *prev;
	struct task_run *hnext; /* in the task id index */
	struct agent *agent;
	char task_id[64];
	char container_id[65];
	bool start_inflight;
	bool pulling; /* preparing: its image is being pulled */
	bool stopping;
	bool ended;
	bool adopted; /* found at startup; not yet moved on from its task's state */
	/* health */
	char **health_test; /* argv to exec; NULL = no health check */
	int64_t interval_ns, timeout_ns, start_period_ns;
	int64_t retries;
	int failing;
	bool healthy;
	int64_t started_mono;
	struct event *health_timer;
	struct probe *probe;
};

struct probe {
	struct task_run *run;
	struct bufferevent *bev;
	struct event *timeout;
	struct evbuffer *output;
};

/* A task waiting for its image, with the container config it will get. */
struct pull_wait {
	struct pull_wait *next;
	char task_id[64];
	json_t *task, *body;
};

/* One image being pulled for the tasks waiting on it. */
struct exec_pull {
	struct exec_pull *next;
	struct agent *agent;
	char *ref;
	char *auth; /* the service's X-Registry-Auth, or NULL */
	atomic_int cancel;
	struct pull_wait *waiters;
	struct image_pull_result res;
	struct shoal_err err;
	int ret;
};

struct executor {
	struct task_run *runs;
	struct task_run *by_id[EXEC_RUN_BUCKETS];
	/* pulls run on a thread of their own: a slow registry holds no other
	 * task's start, nor the agent's other image work */
	struct worker *pull_worker;
	struct exec_pull *pulls;
};

static size_t id_bucket(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % EXEC_RUN_BUCKETS;
}

static struct executor *ex_of(struct agent *a)
{
	if (!a->executor)
		a->executor = calloc(1, sizeof(struct executor));
	return a->executor;
}

static struct task_run *run_find(struct agent *a, const char *task_id)
{
	struct executor *ex = ex_of(a);
	if (!ex)
		return NULL;
	for (struct task_run *r = ex->by_id[id_bucket(task_id)]; r; r = r->hnext)
		if (strcmp(r->task_id, task_id) == 0)
			return r;
	return NULL;
}

/* A new run (task_id set): into the list and the index. */
static struct task_run *run_new(struct agent *a, const char *task_id)
{
	struct executor *ex = ex_of(a);
	struct task_run *run = ex ? calloc(1, sizeof(*run)) : NULL;
	if (!run)
		return NULL;
	run->agent = a;
	snprintf(run->task_id, sizeof(run->task_id), "%s", task_id);
	run->next = ex->runs;
	if (ex->runs)
		ex->runs->prev = run;
	ex->runs = run;
	size_t b = id_bucket(run->task_id);
	run->hnext = ex->by_id[b];
	ex->by_id[b] = run;
	return run;
}

static struct task_run *run_by_container(struct agent *a, const char *cid)
{
	if (!ex_of(a))
		return NULL;
	for (struct task_run *r = ex_of(a)->runs; r; r = r->next)
		if (strcmp(r->container_id, cid) == 0)
			return r;
	return NULL;
}

static void probe_free(struct probe *p)
{
	if (!p)
		return;
	if (p->bev)
		bufferevent_free(p->bev);
	if (p->timeout)
		event_free(p->timeout);
	if (p->output)
		evbuffer_free(p->output);
	if (p->run && p->run->probe == p)
		p->run->probe = NULL;
	free(p);
}

static void run_free(struct task_run *r)
{
	if (r->health_timer)
		event_free(r->health_timer);
	probe_free(r->probe);
	strv_free(r->health_test);
	free(r);
}

static void run_unlink(struct agent *a, struct task_run *run)
{
	struct executor *ex = ex_of(a);
	if (run->prev)
		run->prev->next = run->next;
	else
		ex->runs = run->next;
	if (run->next)
		run->next->prev = run->prev;
	for (struct task_run **pp = &ex->by_id[id_bucket(run->task_id)]; *pp; pp = &(*pp)->hnext)
		if (*pp == run) {
			*pp = run->hnext;
			break;
		}
	run_free(run);
}

/* Reports the task's observed state (forward only; late reports are dropped). */
static int task_set_state(struct agent *a, const char *task_id, const char *state,
			  const char *message, const char *errmsg, const struct container *c)
{
	enum task_state st;
	if (task_state_from_name(state, &st) < 0)
		return -EINVAL;
	return task_observe(a, task_id, st, message, errmsg, c ? c->id : NULL, c ? c->exit_code : 0,
			    -1);
}

static void task_set_health(struct agent *a, const char *task_id, enum task_health h)
{
	json_t *t = NULL;
	char key[128];
	snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS, task_id);
	if (cluster_get(a, key, &t, NULL, NULL) < 0)
		return;
	enum task_state st = TASK_NEW;
	task_state_from_name(
		json_string_value(json_object_get(json_object_get(t, "Status"), "State")) ?: "new",
		&st);
	json_decref(t);
	task_observe(a, task_id, st, NULL, NULL, NULL, 0, (int)h);
}

/* ---- health checks: exec through the container's monitor ---- */

static void health_schedule(struct task_run *run, int64_t ns);

static void probe_done(struct probe *p, int exit_code, bool timed_out)
{
	struct task_run *run = p->run;
	struct agent *a = run->agent;
	probe_free(p);
	bool ok = !timed_out && exit_code == 0;
	int64_t since = mono_ns() - run->started_mono;
	if (ok) {
		run->failing = 0;
		if (!run->healthy) {
			run->healthy = true;
			struct container *c = container_get(a, run->container_id);
			task_set_health(a, run->task_id, TASK_HEALTH_HEALTHY);
			task_set_state(a, run->task_id, "running", "started (healthy)", NULL, c);
		}
	} else if (run->healthy || since > run->start_period_ns) {
		/* failures in the start period do not count until the first success */
		run->failing++;
		log_info("task %s: health check failed (%d/%lld)%s", run->task_id, run->failing,
			 (long long)run->retries, timed_out ? ": timed out" : "");
		if (run->failing >= run->retries) {
			struct container *c = container_get(a, run->container_id);
			task_set_health(a, run->task_id, TASK_HEALTH_UNHEALTHY);
			task_set_state(a, run->task_id, "failed", "unhealthy container",
				       "task: unhealthy container", c);
			run->ended = true;
			if (c && c->state == CONTAINER_RUNNING)
				container_signal(c, SIGKILL, NULL);
			return;
		}
	}
	health_schedule(run, run->interval_ns);
}

static void probe_read_cb(struct bufferevent *bev, void *arg)
{
	struct probe *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		uint8_t hdr[8];
		if (evbuffer_copyout(in, hdr, 8) < 8)
			return;
		uint32_t len = ((uint32_t)hdr[4] << 24) | ((uint32_t)hdr[5] << 16) |
			       ((uint32_t)hdr[6] << 8) | hdr[7];
		if (len > RT_FRAME_MAX) {
			probe_done(p, 1, false);
			return;
		}
		if (evbuffer_get_length(in) < 8 + (size_t)len)
			return;
		evbuffer_drain(in, 8);
		if (hdr[0] == RT_FRAME_EXIT) {
			char buf[256] = "";
			size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
			evbuffer_remove(in, buf, n);
			json_t *j = json_loads(buf, 0, NULL);
			int code = j ? (int)json_integer_value(json_object_get(j, "exit_code")) : 1;
			json_decref(j);
			probe_done(p, code, false);
			return;
		}
		if (evbuffer_get_length(p->output) < HEALTH_OUTPUT_MAX)
			evbuffer_remove_buffer(in, p->output, len);
		else
			evbuffer_drain(in, len);
	}
}

static void probe_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		probe_done(arg, 1, false);
}

static void probe_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	probe_done(arg, 1, true);
}

static void health_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct task_run *run = arg;
	struct agent *a = run->agent;
	struct container *c = container_get(a, run->container_id);
	if (!c || c->state != CONTAINER_RUNNING || run->probe || run->ended)
		return;
	json_t *argv = json_array();
	for (size_t i = 0; run->health_test[i]; i++)
		json_array_append_new(argv, json_string(run->health_test[i]));
	json_t *req = json_pack("{s:s, s:o, s:[], s:s, s:s, s:b, s:b}", "op", "exec", "argv", argv,
				"env", "user", "", "cwd", "", "tty", 0, "stdin", 0);
	struct shoal_err err = {0};
	int sock = rt_ctl_connect(c->run_dir, req, &err);
	json_decref(req);
	if (sock < 0) {
		health_schedule(run, run->interval_ns);
		return;
	}
	struct probe *p = calloc(1, sizeof(*p));
	if (!p) {
		close(sock);
		return;
	}
	p->run = run;
	run->probe = p;
	p->output = evbuffer_new();
	fd_set_nonblock(sock, true);
	p->bev = bufferevent_socket_new(a->base, sock, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(p->bev, probe_read_cb, NULL, probe_event_cb, p);
	bufferevent_enable(p->bev, EV_READ);
	p->timeout = evtimer_new(a->base, probe_timeout_cb, p);
	struct timeval tv = {.tv_sec = run->timeout_ns / 1000000000,
			     .tv_usec = (run->timeout_ns % 1000000000) / 1000};
	evtimer_add(p->timeout, &tv);
}

static void health_schedule(struct task_run *run, int64_t ns)
{
	if (!run->health_timer)
		run->health_timer = evtimer_new(run->agent->base, health_timer_cb, run);
	struct timeval tv = {.tv_sec = ns / 1000000000, .tv_usec = (ns % 1000000000) / 1000};
	evtimer_add(run->health_timer, &tv);
}

/* Docker's Healthcheck: {"Test":["CMD-SHELL","..."]|["CMD",...]|["NONE"], "Interval",
 * "Timeout", "Retries", "StartPeriod"}; the service's wins over the image's. */
static void health_setup(struct task_run *run, json_t *svc_hc, json_t *img_hc)
{
	json_t *hc = svc_hc && json_array_size(json_object_get(svc_hc, "Test")) ? svc_hc : img_hc;
	json_t *test = json_object_get(hc, "Test");
	const char *kind = json_string_value(json_array_get(test, 0));
	if (!kind || strcmp(kind, "NONE") == 0)
		return;
	char **argv = calloc(1, sizeof(char *));
	if (!argv)
		return;
	if (strcmp(kind, "CMD-SHELL") == 0) {
		strv_push(&argv, "/bin/sh");
		strv_push(&argv, "-c");
		strv_push(&argv, json_string_value(json_array_get(test, 1)) ?: "true");
	} else {
		for (size_t i = 1; i < json_array_size(test); i++)
			strv_push(&argv, json_string_value(json_array_get(test, i)) ?: "");
	}
	if (!argv[0]) {
		strv_free(argv);
		return;
	}
	run->health_test = argv;
	json_int_t v;
#define PICK(field, dflt)                                        \
	(v = json_integer_value(json_object_get(svc_hc, field)), \
	 v > 0 ? v : ((v = json_integer_value(json_object_get(img_hc, field))) > 0 ? v : (dflt)))
	run->interval_ns = PICK("Interval", HEALTH_DEFAULT_INTERVAL);
	run->timeout_ns = PICK("Timeout", HEALTH_DEFAULT_TIMEOUT);
	run->start_period_ns = PICK("StartPeriod", 0);
	run->retries = PICK("Retries", HEALTH_DEFAULT_RETRIES);
#undef PICK
}

/* ---- starting and stopping ---- */

struct start_ctx {
	struct agent *agent;
	char task_id[64];
};

static void start_reply(void *arg, int status, const char *body)
{
	struct start_ctx *sc = arg;
	struct agent *a = sc->agent;
	struct task_run *run = run_find(a, sc->task_id);
	free(sc);
	if (!run)
		return;
	run->start_inflight = false;
	struct container *c = container_get(a, run->container_id);
	if (status >= 300) {
		json_t *j = json_loads(body, 0, NULL);
		const char *msg =
			json_string_value(json_object_get(j, "message")) ?: "start failed";
		task_set_state(a, run->task_id, "rejected", "starting container failed", msg, c);
		json_decref(j);
		run->ended = true;
		return;
	}
	run->started_mono = mono_ns();
	if (c && c->state != CONTAINER_RUNNING) {
		/* it ran and ended before we heard it started */
		executor_container_exited(a, c);
		return;
	}
	if (run->health_test) {
		task_set_health(a, run->task_id, TASK_HEALTH_STARTING);
		task_set_state(a, run->task_id, "starting", "starting (health check pending)", NULL,
			       c);
		/* the first probe after one interval, as Docker; a short start period probes sooner
		 */
		health_schedule(run,
				run->start_period_ns > 0 && run->start_period_ns < run->interval_ns
					? run->start_period_ns
					: run->interval_ns);
	} else {
		task_set_state(a, run->task_id, "starting", "starting", NULL, c);
		task_set_state(a, run->task_id, "running", "started", NULL, c);
	}
}

/* The container of a task whose image is here: created, then started. */
static void task_create_start(struct agent *a, struct task_run *run, json_t *task, json_t *body)
{
	const char *tid = run->task_id;
	struct shoal_err err = {0};
	struct container *c = NULL;
	const char *name = json_string_value(json_object_get(body, "Name")) ?: tid;
	json_t *config = json_deep_copy(body);
	if (!config) {
		task_set_state(a, tid, "rejected", "out of memory", "out of memory", NULL);
		run->ended = true;
		return;
	}
	json_object_del(config, "Name");
	/* its secrets and configs: files on a tmpfs of the task's, bound in */
	if (secrets_task_prepare(a, tid, task, config, &err) < 0) {
		json_decref(config);
		task_set_state(a, tid, "rejected", "preparing secrets failed", err.msg, NULL);
		run->ended = true;
		return;
	}
	int r = container_create(a, name, config, &c, NULL, &err);
	json_decref(config);
	if (r < 0) {
		secrets_task_release(a, tid);
		task_set_state(a, tid, "rejected", "creating container failed", err.msg, NULL);
		run->ended = true;
		return;
	}
	snprintf(run->container_id, sizeof(run->container_id), "%s", c->id);
	/* health check: the service's, else the image's */
	struct image_info *info = NULL;
	json_t *img_hc = NULL;
	if (image_store_resolve(a->images, c->image_id, &info, NULL) == 0)
		img_hc = json_incref(json_object_get(info->config, "Healthcheck"));
	image_info_free(info);
	health_setup(
		run,
		json_object_get(json_object_get(json_object_get(task, "Spec"), "ContainerSpec"),
				"Healthcheck"),
		img_hc);
	json_decref(img_hc);
	struct start_ctx *sc = calloc(1, sizeof(*sc));
	struct api_req *req = sc ? api_req_internal(a, start_reply, sc) : NULL;
	if (!req) {
		free(sc);
		return;
	}
	sc->agent = a;
	snprintf(sc->task_id, sizeof(sc->task_id), "%s", tid);
	run->start_inflight = true;
	container_start(c, req);
}

/* ---- pulling a task's image ---- */

static void exec_pull_free(struct exec_pull *p)
{
	if (!p)
		return;
	for (struct pull_wait *w = p->waiters, *n; w; w = n) {
		n = w->next;
		json_decref(w->task);
		json_decref(w->body);
		free(w);
	}
	free(p->ref);
	if (p->auth)
		explicit_bzero(p->auth, strlen(p->auth));
	free(p->auth);
	image_pull_result_done(&p->res);
	free(p);
}

/* On the pull worker. */
static void exec_pull_work(void *arg)
{
	struct exec_pull *p = arg;
	struct image_pull_opts o = {
		.auth = p->auth,
		.insecure = p->agent->cfg.insecure_registries,
		.cancel = &p->cancel,
	};
	p->ret = image_store_pull(p->agent->images, p->ref, &o, &p->res, &p->err);
}

/* Back on the loop: the tasks that waited start, or are rejected with the
 * registry's answer (the orchestrator replaces them as for any rejection). */
static void exec_pull_done(void *arg)
{
	struct exec_pull *p = arg;
	struct agent *a = p->agent;
	struct executor *ex = a->executor;
	for (struct exec_pull **pp = &ex->pulls; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->ret < 0)
		log_warn("executor: pulling %s: %s", p->ref, p->err.msg);
	else
		log_info("executor: pulled %s (%s)", p->res.ref, p->res.id);
	for (struct pull_wait *w = p->waiters; w; w = w->next) {
		struct task_run *run = run_find(a, w->task_id);
		/* stopped or gone while it waited */
		if (!run || !run->pulling || run->ended || run->stopping)
			continue;
		run->pulling = false;
		if (p->ret < 0) {
			char msg[1200];
			snprintf(msg, sizeof(msg), "pulling image %s: %s", p->ref, p->err.msg);
			task_set_state(a, run->task_id, "rejected", "pulling the image failed", msg,
				       NULL);
			run->ended = true;
			continue;
		}
		task_set_state(a, run->task_id, "preparing", "image pulled", NULL, NULL);
		task_create_start(a, run, w->task, w->body);
	}
	exec_pull_free(p);
}

/* The credentials the task's service was created with, or NULL. */
static char *service_registry_auth(struct agent *a, json_t *task)
{
	char key[160];
	json_t *svc = NULL;
	snprintf(key, sizeof(key), "%s%s", CLUSTER_SERVICES,
		 json_string_value(json_object_get(task, "ServiceID")) ?: "");
	if (cluster_get(a, key, &svc, NULL, NULL) < 0)
		return NULL;
	const char *auth = json_string_value(json_object_get(svc, "RegistryAuth"));
	char *out = auth && *auth ? strdup(auth) : NULL;
	json_decref(svc);
	return out;
}

/* Queues the task behind a pull of image (one pull per image at a time). */
static int task_pull(struct agent *a, struct task_run *run, json_t *task, json_t *body,
		     const char *image, struct shoal_err *err)
{
	struct executor *ex = ex_of(a);
	if (!ex->pull_worker && worker_new(a->base, &ex->pull_worker) < 0)
		return shoal_err_set(err, ENOMEM, "no thread to pull images on");
	struct pull_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(w->task_id, sizeof(w->task_id), "%s", run->task_id);
	w->task = json_incref(task);
	w->body = json_incref(body);
	_cleanup_free_ char *auth = service_registry_auth(a, task);
	struct exec_pull *p = ex->pulls;
	while (p && (strcmp(p->ref, image) != 0 || (p->auth == NULL) != (auth == NULL) ||
		     (auth && strcmp(p->auth, auth) != 0)))
		p = p->next;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p || !(p->ref = strdup(image))) {
			free(p);
			json_decref(w->task);
			json_decref(w->body);
			free(w);
			return shoal_err_set(err, ENOMEM, "out of memory");
		}
		p->agent = a;
		p->auth = TAKE_PTR(auth);
		if (worker_submit(ex->pull_worker, exec_pull_work, exec_pull_done, p) < 0) {
			exec_pull_free(p);
			json_decref(w->task);
			json_decref(w->body);
			free(w);
			return shoal_err_set(err, EAGAIN,
					     "too many image pulls queued on this node; it will "
					     "be tried again");
		}
		p->next = ex->pulls;
		ex->pulls = p;
		log_info("executor: pulling %s for task %s", image, run->task_id);
	}
	w->next = p->waiters;
	p->waiters = w;
	run->pulling = true;
	return 0;
}

static void task_start(struct agent *a, json_t *task)
{
	const char *tid = json_string_value(json_object_get(task, "ID"));
	const char *sname = json_string_value(json_object_get(task, "ServiceName")) ?: "task";
	json_int_t slot = json_integer_value(json_object_get(task, "Slot"));
	struct task_run *run = run_new(a, tid);
	if (!run)
		return;

	task_set_state(a, tid, "accepted", "accepted", NULL, NULL);
	/* The task carries its service's spec as it was when the task was made. */
	json_t *sj = json_pack("{s:s, s:O}", "Name", sname, "TaskTemplate",
			       json_object_get(task, "Spec"));
	struct service_spec *spec = NULL;
	struct spec_errors errs;
	spec_errors_init(&errs);
	struct shoal_err err = {0};
	if (service_spec_from_json(sj, &spec, &errs) < 0) {
		json_decref(sj);
		spec_errors_format(&errs, &err);
		task_set_state(a, tid, "rejected", "invalid task spec", err.msg, NULL);
		run->ended = true;
		return;
	}
	json_decref(sj);
	char name[256];
	if (slot > 0)
		snprintf(name, sizeof(name), "%s.%lld.%s", sname, (long long)slot, tid);
	else
		snprintf(name, sizeof(name), "%s.%.12s.%s", sname,
			 json_string_value(json_object_get(task, "NodeID")) ?: "", tid);
	json_t *body = service_task_container_config(spec, name);
	/* its network: the container's start takes the address, makes the
	 * endpoint and records it, as for any container on an overlay network */
	size_t n_nets = spec->task.n_networks;
	json_t *net = n_nets ? json_string(spec->task.networks[0].target) : NULL;
	/* the further networks: eth1, ... (container-nets.c) */
	json_t *more = n_nets > 1 ? json_object() : NULL;
	for (size_t i = 1; more && i < n_nets; i++)
		json_object_set_new(more, spec->task.networks[i].target, json_object());
	if (body && more)
		json_object_set_new(body, "NetworkingConfig",
				    json_pack("{s:O}", "EndpointsConfig", more));
	json_decref(more);
	service_spec_free(spec);
	/* none of its own: the ingress network when the service publishes a
	 * port in ingress mode (the routing mesh reaches it from every node) */
	const char *ingress =
		n_nets ? NULL
		       : publish_service_network(json_object_get(manager_services(a),
								 json_string_value(json_object_get(
									 task, "ServiceID"))
									 ?: ""),
						 overlay_ingress_network(a));
	if (ingress)
		net = json_string(ingress);
	if (body && net)
		json_object_set_new(json_object_get(body, "HostConfig"), "NetworkMode", net);
	else
		json_decref(net);
	if (!body) {
		task_set_state(a, tid, "rejected", "out of memory", "out of memory", NULL);
		run->ended = true;
		return;
	}
	json_t *labels = json_object_get(body, "Labels");
	if (!labels) {
		labels = json_object();
		json_object_set_new(body, "Labels", labels);
	}
	json_object_set_new(labels, "com.docker.swarm.task.id", json_string(tid));
	json_object_set(labels, "com.docker.swarm.service.id", json_object_get(task, "ServiceID"));
	json_object_set_new(labels, "com.docker.swarm.service.name", json_string(sname));
	json_object_set_new(body, "Name", json_string(name));
	/* an image this node does not have is pulled first, beside the loop */
	const char *image = json_string_value(json_object_get(body, "Image")) ?: "";
	struct image_info *info = NULL;
	int r = image_store_resolve(a->images, image, &info, NULL);
	image_info_free(info);
	if (r == -ENOENT && *image) {
		_cleanup_free_ char *msg = NULL;
		if (asprintf(&msg, "pulling image %s", image) < 0)
			msg = NULL;
		task_set_state(a, tid, "preparing", msg ? msg : "pulling the image", NULL, NULL);
		if (task_pull(a, run, task, body, image, &err) < 0) {
			task_set_state(a, tid, "rejected", "pulling the image failed", err.msg,
				       NULL);
			run->ended = true;
		}
		json_decref(body);
		return;
	}
	task_set_state(a, tid, "preparing", "preparing", NULL, NULL);
	task_create_start(a, run, task, body);
	json_decref(body);
}

static void task_stop(struct agent *a, struct task_run *run, json_t *task)
{
	struct container *c = container_get(a, run->container_id);
	run->stopping = true;
	if (run->health_timer)
		event_del(run->health_timer);
	if (!c || c->state != CONTAINER_RUNNING) {
		task_set_state(a, run->task_id, "shutdown", "shutdown", NULL, c);
		run->ended = true;
		return;
	}
	json_int_t grace = json_integer_value(
		json_object_get(json_object_get(json_object_get(task, "Spec"), "ContainerSpec"),
				"StopGracePeriod"));
	int64_t secs = grace > 0 ? (grace + 999999999) / 1000000000 : 10;
	struct api_req *req = api_req_internal(a, NULL, NULL);
	if (req) {
		req->on_reply = NULL;
		container_stop(c, secs, req);
	}
}

void executor_container_exited(struct agent *a, struct container *c)
{
	struct task_run *run = run_by_container(a, c->id);
	if (!run || run->start_inflight)
		return;
	if (run->health_timer)
		event_del(run->health_timer);
	probe_free(run->probe);
	if (run->stopping) {
		task_set_state(a, run->task_id, "shutdown", "shutdown", NULL, c);
	} else if (!run->ended) {
		char msg[128];
		if (c->exit_code == 0) {
			task_set_state(a, run->task_id, "complete", "finished", NULL, c);
		} else {
			snprintf(msg, sizeof(msg), "task: non-zero exit (%d)%s", c->exit_code,
				 c->oom_killed ? ": OOM killed" : "");
			task_set_state(a, run->task_id, "failed", "failed", msg, c);
		}
	}
	run->ended = true;
}

static const char *task_label(struct container *c)
{
	return json_string_value(
		json_object_get(json_object_get(c->config, "Labels"), "com.docker.swarm.task.id"));
}

/* Re-adopts the task containers that survived an agent restart, whatever
 * point of its start the agent was at: what happens to each is decided by
 * executor_reconcile() from the task's state. */
static void executor_adopt(struct agent *a)
{
	for (struct container *c = a->containers; c; c = c->next) {
		const char *tid = task_label(c);
		if (!tid || run_find(a, tid))
			continue;
		struct task_run *run = run_new(a, tid);
		if (!run)
			return;
		snprintf(run->container_id, sizeof(run->container_id), "%s", c->id);
		run->ended = c->state != CONTAINER_RUNNING;
		run->healthy = true;
		run->adopted = true;
		run->started_mono = mono_ns();
	}
}

bool executor_task_creating(struct agent *a, const char *task_id)
{
	struct task_run *run = task_id ? run_find(a, task_id) : NULL;
	return run && !run->container_id[0];
}

uint32_t executor_task_capacity(struct agent *a)
{
	uint32_t others = 0, others_bridged = 0, held = 0;
	for (struct container *c = a->containers; c; c = c->next) {
		const char *tid = task_label(c);
		struct task_run *run = tid ? run_find(a, tid) : NULL;
		if (!tid) {
			others++;
			others_bridged += c->net_attached;
		} else if (run && run->ended) {
			/* a finished task kept as history holds its container */
			held++;
		}
	}
	int64_t by_count = (int64_t)AGENT_MAX_CONTAINERS - others - held;
	int64_t by_bridge = (int64_t)EXEC_BRIDGE_PORTS - others_bridged;
	int64_t cap = by_count < by_bridge ? by_count : by_bridge;
	/* 0 is "no limit" to the scheduler; a full node takes one more, which
	 * container create refuses with its reason */
	return cap > 0 ? (uint32_t)cap : 1;
}

/* A task this node was running when the agent restarted: move it on from
 * whatever state it was left in. */
static void adopted_move_on(struct agent *a, struct task_run *run, enum task_state st)
{
	struct container *c = container_get(a, run->container_id);
	/* a start the restarted agent is still settling (re-adopted from its
	 * monitor, or rolled back): decided when it is, which kicks the manager */
	if (c && c->state == CONTAINER_STARTING)
		return;
	run->adopted = false;
	if (!c) {
		task_observe(a, run->task_id, TASK_FAILED, NULL, "task: container vanished", NULL,
			     0, -1);
		run->ended = true;
		return;
	}
	if (c->state == CONTAINER_RUNNING) {
		if (st < TASK_RUNNING) {
			/* it started; the agent died before it said so */
			task_set_state(a, run->task_id, "starting", "starting", NULL, c);
			task_set_state(a, run->task_id, "running", "started (adopted)", NULL, c);
		}
		return;
	}
	if (c->state == CONTAINER_EXITED && c->started_ns) {
		run->ended = false;
		executor_container_exited(a, c);
		return;
	}
	/* created, never started (or its start was cut off): rejected; the
	 * orchestrator replaces it as the restart policy says */
	task_observe(a, run->task_id, TASK_REJECTED, NULL,
		     "task: the agent restarted before its container started", c->id, 0, -1);
	run->ended = true;
	container_remove(c, true, NULL);
}

bool executor_stopping_soon(struct agent *a, json_t *tasks)
{
	if (!ex_of(a))
		return false;
	for (struct task_run *run = ex_of(a)->runs; run; run = run->next) {
		if (run->ended || run->stopping || run->start_inflight)
			continue;
		json_t *t = json_object_get(tasks, run->task_id);
		const char *desired = json_string_value(json_object_get(t, "DesiredState")) ?: "";
		if (!t || (strcmp(desired, "running") != 0 && strcmp(desired, "ready") != 0))
			return true;
	}
	return false;
}

bool executor_reconcile(struct agent *a, struct task_cache *tc)
{
	static bool adopted;
	if (!ex_of(a))
		return false;
	if (!adopted) {
		executor_adopt(a);
		adopted = true;
	}
	int64_t spent = 0; /* in starts: the scan itself is O(tasks), no more */
	int64_t t_begin = mono_ns();
	unsigned starts = 0;
	bool more = false;
	/* this node's tasks only; a task_observe() below changes the store,
	 * not the cache, which the watch updates later */
	for (struct task_entry *e = task_cache_local(tc); e; e = e->lnext) {
		const char *tid = e->id;
		json_t *t = e->rec;
		enum task_state st = e->state;
		struct task_run *run = run_find(a, tid);
		if (run && run->adopted && !task_state_is_terminal(st)) {
			adopted_move_on(a, run, st);
			continue;
		}
		if (e->desired == TASK_RUNNING) {
			if (!run && st == TASK_ASSIGNED) {
				if (starts >= EXEC_TURN_STARTS || spent > EXEC_TURN_NS) {
					more = true;
					continue;
				}
				/* its service's record comes on another watch, and
				 * what the task joins follows the service (the
				 * ingress network): a task seen first waits for it */
				json_t *svcs = manager_services(a);
				if (svcs &&
				    !json_object_get(
					    svcs, json_string_value(json_object_get(t, "ServiceID"))
							  ?: "")) {
					more = true;
					continue;
				}
				int64_t t0 = mono_ns();
				task_start(a, t);
				spent += mono_ns() - t0;
				starts++;
			} else if (!run && st > TASK_ASSIGNED && !task_state_is_terminal(st)) {
				/* this node took it, and no container of it survived
				 * the agent's restart */
				task_observe(a, tid, TASK_REJECTED, NULL,
					     "task: the agent restarted before its container was "
					     "created",
					     NULL, 0, -1);
			}
			/* a run's container reports its exit (executor_container_exited);
			 * one that ended while the agent was away was moved on above */
		} else if (e->desired == TASK_PREPARING) {
			/* held by the orchestrator (a restart delay, or the task it
			 * replaces still stopping): not started yet */
		} else {
			bool stop = run && !run->ended && !run->stopping && !run->start_inflight;
			/* stops (a whole service at once) take turns as starts do */
			if ((stop || (!run && !task_state_is_terminal(st))) &&
			    mono_ns() - t_begin > EXEC_TURN_NS) {
				more = true;
				continue;
			}
			if (stop)
				task_stop(a, run, t);
			else if (!run && !task_state_is_terminal(st))
				task_set_state(a, tid, "shutdown", "shut down before it started",
					       NULL, NULL);
		}
	}
	/* Tasks gone from the store take their containers with them, as many
	 * as fit in a turn (a service of a thousand tasks goes at once). */
	for (struct task_run *run = ex_of(a)->runs, *next; run; run = next) {
		next = run->next;
		if (task_cache_get(tc, run->task_id) || run->start_inflight)
			continue;
		if (mono_ns() - t_begin > EXEC_TURN_NS) {
			more = true;
			break;
		}
		struct container *c = container_get(a, run->container_id);
		if (c)
			container_remove(c, true, NULL);
		run_unlink(a, run);
	}
	int64_t took = mono_ns() - t_begin;
	if (took > 10000000)
		log_debug("executor: a reconcile took %.1f ms (%u start(s) %.1f ms)",
			  (double)took / 1e6, starts, (double)spent / 1e6);
	return more;
}

void executor_free(struct agent *a)
{
	struct executor *ex = a->executor;
	if (!ex)
		return;
	/* a pull in progress stops at its next read; queued ones never start */
	for (struct exec_pull *p = ex->pulls; p; p = p->next)
		atomic_store(&p->cancel, 1);
	worker_free(ex->pull_worker);
	while (ex->pulls) {
		struct exec_pull *p = ex->pulls;
		ex->pulls = p->next;
		exec_pull_free(p);
	}
	while (ex->runs) {
		struct task_run *r = ex->runs;
		ex->runs = r->next;
		run_free(r);
	}
	free(ex);
	a->executor = NULL;
}
