// SPDX-License-Identifier: Apache-2.0
/*
 * Restart policies of plain containers (HostConfig.RestartPolicy), applied as
 * Docker applies them: at an exit the policy decides (container-config.c,
 * pure), a restart waits out the backoff on a timer of the loop, and a stop,
 * a kill or a removal through the API cancels it. Service tasks are restarted
 * by their service (manager.c), never here.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "agent/container-config.h"
#include "agent/container-internal.h"
#include "agent/container.h"
#include "agent/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

static bool policy_of(struct container *c, struct container_restart_policy *ret)
{
	if (json_object_get(json_object_get(c->config, "Labels"), "com.docker.swarm.task.id"))
		return false;
	struct shoal_err err = {0};
	if (container_restart_policy_parse(json_object_get(c->host_config, "RestartPolicy"), ret,
					   &err) < 0) {
		log_warn("container %.12s: its recorded restart policy: %s", c->id, err.msg);
		return false;
	}
	return ret->mode != CONTAINER_RESTART_NO;
}

static void persist(struct container *c)
{
	int r = container_persist(c);
	if (r < 0)
		log_warn("container %.12s: writing its record: %s", c->id, strerror(-r));
}

bool container_restart_cancel(struct container *c)
{
	if (!c->restarting)
		return false;
	if (c->restart_timer)
		evtimer_del(c->restart_timer);
	c->restarting = false;
	return true;
}

/* The policy's start, answered here rather than to a client. */
struct restart_start {
	struct agent *agent;
	char id[65];
};

static void restart_started(void *arg, int status, const char *body)
{
	struct restart_start *rs = arg;
	struct container *c = container_get(rs->agent, rs->id);
	if (status >= 400) {
		json_t *m = body ? json_loads(body, 0, NULL) : NULL;
		log_warn("container %.12s: restarting it under its restart policy: %s", rs->id,
			 json_string_value(json_object_get(m, "message")) ?: "failed");
		json_decref(m);
		/* it ran before: a failed restart leaves it stopped, as Docker's,
		 * and the policy does not try again */
		if (c && c->state == CONTAINER_CREATED && c->started_ns) {
			c->state = CONTAINER_EXITED;
			persist(c);
		}
	}
	free(rs);
}

static void restart_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	if (!c->restarting)
		return;
	c->restarting = false;
	if (c->state != CONTAINER_EXITED)
		return;
	struct restart_start *rs = calloc(1, sizeof(*rs));
	struct api_req *r = rs ? api_req_internal(c->agent, restart_started, rs) : NULL;
	if (!r) {
		free(rs);
		log_warn("container %.12s: restarting it: out of memory", c->id);
		persist(c);
		return;
	}
	rs->agent = c->agent;
	snprintf(rs->id, sizeof(rs->id), "%s", c->id);
	log_info("container %.12s (%s): restarting (restart count %d)", c->id, c->name,
		 c->restart_count);
	container_start(c, r);
}

static int restart_schedule(struct container *c, int64_t ms)
{
	if (!c->restart_timer &&
	    !(c->restart_timer = evtimer_new(c->agent->base, restart_timer_cb, c)))
		return -ENOMEM;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if (evtimer_add(c->restart_timer, &tv) < 0)
		return -EIO;
	c->restarting = true;
	return 0;
}

void container_restart_after_exit(struct container *c)
{
	struct container_restart_policy p;
	bool auto_remove = false;
	json_get_bool(c->host_config, "AutoRemove", &auto_remove, NULL);
	if (c->remove_on_exit || auto_remove || c->state != CONTAINER_EXITED || !policy_of(c, &p))
		return;
	/* the backoff moves at every exit, restarted or not, as Docker's */
	int64_t ran = c->finished_ns - c->started_ns;
	c->restart_delay_ms = container_restart_backoff_ms(c->restart_delay_ms, ran > 0 ? ran : 0);
	if (c->stop_requested ||
	    !container_restart_on_exit(&p, c->exit_code, c->manual_stop, c->restart_count))
		return;
	int r = restart_schedule(c, c->restart_delay_ms);
	if (r < 0) {
		log_warn("container %.12s: scheduling its restart: %s", c->id, strerror(-r));
		return;
	}
	c->restart_count++;
	log_info("container %.12s (%s): restart %d in %lld ms (restart policy %s)", c->id, c->name,
		 c->restart_count, (long long)c->restart_delay_ms,
		 container_restart_mode_name(p.mode));
}

void container_restart_at_load(struct container *c)
{
	struct container_restart_policy p;
	if (c->state != CONTAINER_EXITED || (c->restarting && c->restart_timer))
		return; /* (an exit seen at load has scheduled its own) */
	bool resume = c->restarting;
	c->restarting = false;
	if (!policy_of(c, &p))
		return;
	if (!resume) {
		/* Docker's rule at daemon start, for containers that ran before */
		if (!c->started_ns || !container_restart_at_agent_start(&p, c->manual_stop))
			return;
		c->restart_count = 0;
		c->manual_stop = false;
		c->stop_requested = false;
	}
	int r = restart_schedule(c, 0);
	if (r < 0) {
		log_warn("container %.12s: scheduling its restart: %s", c->id, strerror(-r));
		persist(c);
		return;
	}
	log_info("container %.12s (%s): %s (restart policy %s)", c->id, c->name,
		 resume ? "the restart the agent was stopped in goes on" : "started with the agent",
		 container_restart_mode_name(p.mode));
}

void container_start_by_user(struct container *c, struct api_req *r)
{
	if (c->restarting) {
		api_reply_empty(r, 304);
		return;
	}
	if (c->state == CONTAINER_CREATED || c->state == CONTAINER_EXITED) {
		c->restart_count = 0;
		c->manual_stop = false;
		c->stop_requested = false;
		c->stop_after_start = false;
		c->restart_delay_ms = 0;
	}
	container_start(c, r);
}

bool container_restart_stop(struct container *c, int sig)
{
	if (container_restart_cancel(c)) {
		c->manual_stop = true;
		persist(c);
		log_info("container %.12s (%s): stopped while waiting to restart", c->id, c->name);
		container_waiters_notify(c);
		return true;
	}
	if (c->state == CONTAINER_STARTING && !c->resume_timer) {
		/* (the policy's own start, or the user's, racing the stop) */
		c->manual_stop = true;
		c->stop_requested = true;
		c->stop_after_start = true;
		return true;
	}
	if (c->state != CONTAINER_RUNNING)
		return false;
	/* Docker marks any stop or kill; only a kill with the stop signal (any
	 * signal when none is set) or KILL cancels the policy's next restart */
	c->manual_stop = true;
	int stop_sig = 0;
	const char *ss = NULL;
	if (json_get_string(c->config, "StopSignal", &ss, NULL) == 0 && *ss)
		parse_signal(ss, &stop_sig);
	if (sig == 0 || sig == SIGKILL || !stop_sig || sig == stop_sig)
		c->stop_requested = true;
	/* recorded now only where a policy reads it: an agent killed before the
	 * exit would otherwise restart what the user stopped (the exit's record
	 * carries it for the others, service tasks among them) */
	struct container_restart_policy p;
	if (policy_of(c, &p))
		persist(c);
	return false;
}
