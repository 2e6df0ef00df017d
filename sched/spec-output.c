/* SPDX-License-Identifier: Apache-2.0 */
/* A service spec as JSON: the full spec with defaults (service inspect) and the
 * Docker /containers/create body for one task's container. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/util.h"
#include "sched/spec-internal.h"

/* Serialising */

struct jb {
	bool fail;
};

static void put(struct jb *b, json_t *o, const char *key, json_t *v)
{
	if (json_object_set_new(o, key, v) < 0)
		b->fail = true;
}

static void put_str(struct jb *b, json_t *o, const char *key, const char *s)
{
	if (s)
		put(b, o, key, json_string(s));
}

static void put_int(struct jb *b, json_t *o, const char *key, int64_t v)
{
	put(b, o, key, json_integer(v));
}

static json_t *strv_json(struct jb *b, char *const *v)
{
	json_t *a = json_array();
	if (!a) {
		b->fail = true;
		return NULL;
	}
	for (size_t i = 0; v && v[i]; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0)
			b->fail = true;
	}
	return a;
}

static void put_strv(struct jb *b, json_t *o, const char *key, char *const *v)
{
	if (v && v[0])
		put(b, o, key, strv_json(b, v));
}

static json_t *labels_json(struct jb *b, const struct spec_labels *l)
{
	json_t *o = json_object();
	if (!o)
		b->fail = true;
	for (size_t i = 0; o && i < l->n; i++)
		put_str(b, o, l->v[i].key, l->v[i].value ? l->v[i].value : "");
	return o;
}

static json_t *healthcheck_json(struct jb *b, const struct healthcheck *h)
{
	json_t *o = json_object();
	put_strv(b, o, "Test", h->test);
	if (h->interval_ns)
		put_int(b, o, "Interval", h->interval_ns);
	if (h->timeout_ns)
		put_int(b, o, "Timeout", h->timeout_ns);
	if (h->start_period_ns)
		put_int(b, o, "StartPeriod", h->start_period_ns);
	if (h->retries)
		put_int(b, o, "Retries", h->retries);
	if (!o)
		b->fail = true;
	return o;
}

static json_t *container_json(struct jb *b, const struct container_spec *ct)
{
	json_t *o = json_object();
	put_str(b, o, "Image", ct->image);
	put_strv(b, o, "Command", ct->command);
	put_strv(b, o, "Args", ct->args);
	put_strv(b, o, "Env", ct->env);
	put_str(b, o, "Dir", ct->dir);
	put_str(b, o, "User", ct->user);
	put_str(b, o, "Hostname", ct->hostname);
	if (ct->labels.n)
		put(b, o, "Labels", labels_json(b, &ct->labels));
	if (ct->healthcheck)
		put(b, o, "Healthcheck", healthcheck_json(b, ct->healthcheck));
	put_int(b, o, "StopGracePeriod", ct->stop_grace_period_ns);
	put_str(b, o, "StopSignal", ct->stop_signal);
	put(b, o, "ReadOnly", json_boolean(ct->read_only));
	put_strv(b, o, "CapabilityAdd", ct->cap_add);
	put_strv(b, o, "CapabilityDrop", ct->cap_drop);
	if (ct->has_init)
		put(b, o, "Init", json_boolean(ct->init));
	if (ct->mounts)
		put(b, o, "Mounts", json_deep_copy(ct->mounts));
	if (ct->secrets)
		put(b, o, "Secrets", json_deep_copy(ct->secrets));
	if (ct->configs)
		put(b, o, "Configs", json_deep_copy(ct->configs));
	if (!o)
		b->fail = true;
	return o;
}

static json_t *update_json(struct jb *b, const struct update_config *u)
{
	json_t *o = json_object();
	put_int(b, o, "Parallelism", (int64_t)u->parallelism);
	put_int(b, o, "Delay", u->delay_ns);
	put_str(b, o, "FailureAction", spec_failure_action_str(u->failure_action));
	put_int(b, o, "Monitor", u->monitor_ns);
	put(b, o, "MaxFailureRatio", json_real(u->max_failure_ratio));
	put_str(b, o, "Order", spec_update_order_str(u->order));
	if (!o)
		b->fail = true;
	return o;
}

static json_t *task_json(struct jb *b, const struct task_template *t)
{
	json_t *o = json_object();
	put(b, o, "ContainerSpec", container_json(b, &t->container));

	json_t *lim = json_object(), *res = json_object(), *r = json_object();
	put_int(b, lim, "NanoCPUs", t->limits.nano_cpus);
	put_int(b, lim, "MemoryBytes", t->limits.memory_bytes);
	put_int(b, lim, "Pids", t->limits.pids);
	put_int(b, res, "NanoCPUs", t->reservations.nano_cpus);
	put_int(b, res, "MemoryBytes", t->reservations.memory_bytes);
	put(b, r, "Limits", lim);
	put(b, r, "Reservations", res);
	put(b, o, "Resources", r);

	json_t *rp = json_object();
	put_str(b, rp, "Condition", spec_restart_condition_str(t->restart.condition));
	put_int(b, rp, "Delay", t->restart.delay_ns);
	put_int(b, rp, "MaxAttempts", (int64_t)t->restart.max_attempts);
	put_int(b, rp, "Window", t->restart.window_ns);
	put(b, o, "RestartPolicy", rp);

	json_t *pl = json_object();
	if (t->n_constraints) {
		json_t *a = json_array();
		for (size_t i = 0; i < t->n_constraints; i++) {
			/* as given: the docker CLI removes one by its text */
			const struct constraint *c = &t->constraints[i];
			char *cs = c->text ? NULL : spec_format_constraint(c);
			const char *shown = c->text ? c->text : cs;
			if (!shown || json_array_append_new(a, json_string(shown)) < 0)
				b->fail = true;
			free(cs);
		}
		put(b, pl, "Constraints", a);
	}
	if (t->n_prefs) {
		json_t *a = json_array();
		for (size_t i = 0; i < t->n_prefs; i++) {
			json_t *sd = json_object(), *sp = json_object();
			put_str(b, sd, "SpreadDescriptor", t->prefs[i].spread_key);
			put(b, sp, "Spread", sd);
			if (json_array_append_new(a, sp) < 0)
				b->fail = true;
		}
		put(b, pl, "Preferences", a);
	}
	if (t->max_replicas)
		put_int(b, pl, "MaxReplicas", (int64_t)t->max_replicas);
	put(b, o, "Placement", pl);

	if (t->n_networks) {
		json_t *a = json_array();
		for (size_t i = 0; i < t->n_networks; i++) {
			json_t *n = json_object();
			put_str(b, n, "Target", t->networks[i].target);
			put_strv(b, n, "Aliases", t->networks[i].aliases);
			if (json_array_append_new(a, n) < 0)
				b->fail = true;
		}
		put(b, o, "Networks", a);
	}
	put_int(b, o, "ForceUpdate", (int64_t)t->force_update);
	if (!o)
		b->fail = true;
	return o;
}

json_t *service_spec_to_json(const struct service_spec *s)
{
	struct jb b = {0};
	json_t *o = json_object();
	put_str(&b, o, "Name", s->name);
	put(&b, o, "Labels", labels_json(&b, &s->labels));
	put(&b, o, "TaskTemplate", task_json(&b, &s->task));

	json_t *mode = json_object();
	if (s->mode == SERVICE_GLOBAL) {
		put(&b, mode, "Global", json_object());
	} else {
		json_t *rep = json_object();
		put_int(&b, rep, "Replicas", (int64_t)s->replicas);
		put(&b, mode, "Replicated", rep);
	}
	put(&b, o, "Mode", mode);
	put(&b, o, "UpdateConfig", update_json(&b, &s->update));
	put(&b, o, "RollbackConfig", update_json(&b, &s->rollback));

	json_t *ep = json_object();
	put_str(&b, ep, "Mode", spec_endpoint_mode_str(s->endpoint_mode));
	if (s->n_ports) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->n_ports; i++) {
			const struct port_config *p = &s->ports[i];
			json_t *po = json_object();
			if (s->port_names)
				put_str(&b, po, "Name", s->port_names[i]);
			put_str(&b, po, "Protocol", spec_protocol_str(p->protocol));
			put_int(&b, po, "TargetPort", p->target_port);
			put_int(&b, po, "PublishedPort", p->published_port);
			put_str(&b, po, "PublishMode", spec_publish_mode_str(p->mode));
			if (json_array_append_new(a, po) < 0)
				b.fail = true;
		}
		put(&b, ep, "Ports", a);
	}
	put(&b, o, "EndpointSpec", ep);

	if (b.fail || !o) {
		json_decref(o);
		errno = ENOMEM;
		return NULL;
	}
	return o;
}

/* The container a task runs, as Docker's swarm executor builds it: Command replaces the
 * entrypoint (and then the image's cmd is not used), Args replaces the cmd. */
json_t *service_task_container_config(const struct service_spec *s, const char *task_name)
{
	struct jb b = {0};
	const struct container_spec *ct = &s->task.container;
	json_t *o = json_object();
	put_str(&b, o, "Image", ct->image);
	if (ct->command && ct->command[0]) {
		put(&b, o, "Entrypoint", strv_json(&b, ct->command));
		put(&b, o, "Cmd", strv_json(&b, ct->args));
	} else if (ct->args && ct->args[0]) {
		put(&b, o, "Cmd", strv_json(&b, ct->args));
	}
	put_strv(&b, o, "Env", ct->env);
	put_str(&b, o, "WorkingDir", ct->dir);
	put_str(&b, o, "User", ct->user);
	put_str(&b, o, "Hostname", ct->hostname);

	json_t *labels = labels_json(&b, &ct->labels);
	put_str(&b, labels, "com.docker.swarm.service.name", s->name);
	put_str(&b, labels, "com.docker.swarm.task.name", task_name);
	put(&b, o, "Labels", labels);

	put_str(&b, o, "StopSignal", ct->stop_signal);
	/* Whole seconds, rounded up so a grace period is never cut short. */
	put_int(&b, o, "StopTimeout", (ct->stop_grace_period_ns + 999999999) / 1000000000);
	if (ct->healthcheck)
		put(&b, o, "Healthcheck", healthcheck_json(&b, ct->healthcheck));

	json_t *hc = json_object();
	put_int(&b, hc, "Memory", s->task.limits.memory_bytes);
	put_int(&b, hc, "MemoryReservation", s->task.reservations.memory_bytes);
	put_int(&b, hc, "NanoCpus", s->task.limits.nano_cpus);
	if (s->task.limits.pids > 0)
		put_int(&b, hc, "PidsLimit", s->task.limits.pids);
	put(&b, hc, "ReadonlyRootfs", json_boolean(ct->read_only));
	put_strv(&b, hc, "CapAdd", ct->cap_add);
	put_strv(&b, hc, "CapDrop", ct->cap_drop);
	if (ct->has_init)
		put(&b, hc, "Init", json_boolean(ct->init));
	if (ct->mounts)
		put(&b, hc, "Mounts", json_deep_copy(ct->mounts));
	put(&b, o, "HostConfig", hc);

	if (b.fail || !o) {
		json_decref(o);
		errno = ENOMEM;
		return NULL;
	}
	return o;
}
