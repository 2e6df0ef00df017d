/* SPDX-License-Identifier: Apache-2.0 */
/* A service spec freed, deep-copied, and compared with another (does a task of one
 * run the other?). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/util.h"
#include "sched/spec-internal.h"

void spec_labels_free(struct spec_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Freeing */

static void healthcheck_free(struct healthcheck *h)
{
	if (!h)
		return;
	strv_free(h->test);
	free(h);
}

static void container_done(struct container_spec *ct)
{
	free(ct->image);
	strv_free(ct->command);
	strv_free(ct->args);
	strv_free(ct->env);
	free(ct->dir);
	free(ct->user);
	free(ct->hostname);
	spec_labels_free(&ct->labels);
	healthcheck_free(ct->healthcheck);
	free(ct->stop_signal);
	strv_free(ct->cap_add);
	strv_free(ct->cap_drop);
	json_decref(ct->mounts);
	json_decref(ct->secrets);
	json_decref(ct->configs);
}

static void task_done(struct task_template *t)
{
	container_done(&t->container);
	for (size_t i = 0; i < t->n_constraints; i++)
		spec_constraint_done(&t->constraints[i]);
	free(t->constraints);
	for (size_t i = 0; i < t->n_prefs; i++)
		free(t->prefs[i].spread_key);
	free(t->prefs);
	for (size_t i = 0; i < t->n_networks; i++) {
		free(t->networks[i].target);
		strv_free(t->networks[i].aliases);
	}
	free(t->networks);
}

void service_spec_free(struct service_spec *s)
{
	if (!s)
		return;
	free(s->name);
	spec_labels_free(&s->labels);
	task_done(&s->task);
	if (s->port_names) {
		for (size_t i = 0; i < s->n_ports; i++)
			free(s->port_names[i]);
	}
	free(s->port_names);
	free(s->ports);
	free(s);
}

/* Copying */

static char *sdup(bool *fail, const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

static char **vdup(bool *fail, char *const *v)
{
	if (!v)
		return NULL;
	char **d = strv_copy(v);
	if (!d)
		*fail = true;
	return d;
}

static void *adup(bool *fail, const void *p, size_t n, size_t size)
{
	if (!p || !n)
		return NULL;
	void *d = calloc(n, size);
	if (!d)
		*fail = true;
	return d;
}

static struct spec_labels labels_dup(bool *fail, const struct spec_labels *l)
{
	struct spec_labels d = {.v = adup(fail, l->v, l->n, sizeof(*l->v))};
	for (size_t i = 0; d.v && i < l->n; i++) {
		d.v[i].key = sdup(fail, l->v[i].key);
		d.v[i].value = sdup(fail, l->v[i].value);
		d.n++;
	}
	return d;
}

struct service_spec *service_spec_dup(const struct service_spec *s)
{
	bool fail = false;
	struct service_spec *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	*d = *s;
	d->name = sdup(&fail, s->name);
	d->labels = labels_dup(&fail, &s->labels);

	const struct container_spec *sc = &s->task.container;
	struct container_spec *dc = &d->task.container;
	dc->image = sdup(&fail, sc->image);
	dc->command = vdup(&fail, sc->command);
	dc->args = vdup(&fail, sc->args);
	dc->env = vdup(&fail, sc->env);
	dc->dir = sdup(&fail, sc->dir);
	dc->user = sdup(&fail, sc->user);
	dc->hostname = sdup(&fail, sc->hostname);
	dc->labels = labels_dup(&fail, &sc->labels);
	dc->healthcheck = adup(&fail, sc->healthcheck, 1, sizeof(*sc->healthcheck));
	if (dc->healthcheck) {
		*dc->healthcheck = *sc->healthcheck;
		dc->healthcheck->test = vdup(&fail, sc->healthcheck->test);
	}
	dc->stop_signal = sdup(&fail, sc->stop_signal);
	dc->cap_add = vdup(&fail, sc->cap_add);
	dc->cap_drop = vdup(&fail, sc->cap_drop);
	if (sc->mounts) {
		dc->mounts = json_deep_copy(sc->mounts);
		fail = fail || !dc->mounts;
	}
	if (sc->secrets) {
		dc->secrets = json_deep_copy(sc->secrets);
		fail = fail || !dc->secrets;
	}
	if (sc->configs) {
		dc->configs = json_deep_copy(sc->configs);
		fail = fail || !dc->configs;
	}

	const struct task_template *st = &s->task;
	struct task_template *dt = &d->task;
	dt->constraints = adup(&fail, st->constraints, st->n_constraints, sizeof(*st->constraints));
	dt->n_constraints = 0;
	for (size_t i = 0; dt->constraints && i < st->n_constraints; i++) {
		dt->constraints[i].key = sdup(&fail, st->constraints[i].key);
		dt->constraints[i].op = st->constraints[i].op;
		dt->constraints[i].value = sdup(&fail, st->constraints[i].value);
		dt->constraints[i].text = sdup(&fail, st->constraints[i].text);
		dt->n_constraints++;
	}
	dt->prefs = adup(&fail, st->prefs, st->n_prefs, sizeof(*st->prefs));
	dt->n_prefs = 0;
	for (size_t i = 0; dt->prefs && i < st->n_prefs; i++) {
		dt->prefs[i].spread_key = sdup(&fail, st->prefs[i].spread_key);
		dt->n_prefs++;
	}
	dt->networks = adup(&fail, st->networks, st->n_networks, sizeof(*st->networks));
	dt->n_networks = 0;
	for (size_t i = 0; dt->networks && i < st->n_networks; i++) {
		dt->networks[i].target = sdup(&fail, st->networks[i].target);
		dt->networks[i].aliases = vdup(&fail, st->networks[i].aliases);
		dt->n_networks++;
	}

	d->ports = adup(&fail, s->ports, s->n_ports, sizeof(*s->ports));
	d->port_names = adup(&fail, s->ports, s->n_ports, sizeof(*s->port_names));
	if (!d->ports || !d->port_names)
		d->n_ports = 0;
	if (d->n_ports)
		memcpy(d->ports, s->ports, s->n_ports * sizeof(*s->ports));
	for (size_t i = 0; s->port_names && i < d->n_ports; i++)
		d->port_names[i] = sdup(&fail, s->port_names[i]);

	if (fail) {
		service_spec_free(d);
		errno = ENOMEM;
		return NULL;
	}
	return d;
}

/* Comparing */

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* NULL and empty vectors are the same: both mean "the image's". */
static bool strv_eq(char *const *a, char *const *b)
{
	size_t n = strv_length(a);
	if (n != strv_length(b))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(a[i], b[i]) != 0)
			return false;
	}
	return true;
}

static bool json_eq(json_t *a, json_t *b)
{
	return a == b || (a && b && json_equal(a, b));
}

static bool labels_eq(const struct spec_labels *a, const struct spec_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (!str_eq(a->v[i].key, b->v[i].key) || !str_eq(a->v[i].value, b->v[i].value))
			return false;
	}
	return true;
}

static bool healthcheck_eq(const struct healthcheck *a, const struct healthcheck *b)
{
	if (!a || !b)
		return a == b;
	return strv_eq(a->test, b->test) && a->interval_ns == b->interval_ns &&
	       a->timeout_ns == b->timeout_ns && a->start_period_ns == b->start_period_ns &&
	       a->retries == b->retries;
}

static bool container_eq(const struct container_spec *a, const struct container_spec *b)
{
	return str_eq(a->image, b->image) && strv_eq(a->command, b->command) &&
	       strv_eq(a->args, b->args) && strv_eq(a->env, b->env) && str_eq(a->dir, b->dir) &&
	       str_eq(a->user, b->user) && str_eq(a->hostname, b->hostname) &&
	       labels_eq(&a->labels, &b->labels) &&
	       healthcheck_eq(a->healthcheck, b->healthcheck) &&
	       a->stop_grace_period_ns == b->stop_grace_period_ns &&
	       str_eq(a->stop_signal, b->stop_signal) && a->read_only == b->read_only &&
	       strv_eq(a->cap_add, b->cap_add) && strv_eq(a->cap_drop, b->cap_drop) &&
	       a->has_init == b->has_init && (!a->has_init || a->init == b->init) &&
	       json_eq(a->mounts, b->mounts) && json_eq(a->secrets, b->secrets) &&
	       json_eq(a->configs, b->configs);
}

static bool resources_eq(const struct sched_resources *a, const struct sched_resources *b)
{
	return a->nano_cpus == b->nano_cpus && a->memory_bytes == b->memory_bytes &&
	       a->pids == b->pids;
}

bool service_spec_task_equal(const struct service_spec *a, const struct service_spec *b)
{
	const struct task_template *x = &a->task, *y = &b->task;
	if (!container_eq(&x->container, &y->container) || !resources_eq(&x->limits, &y->limits) ||
	    !resources_eq(&x->reservations, &y->reservations) ||
	    x->restart.condition != y->restart.condition ||
	    x->restart.delay_ns != y->restart.delay_ns ||
	    x->restart.max_attempts != y->restart.max_attempts ||
	    x->restart.window_ns != y->restart.window_ns || x->max_replicas != y->max_replicas ||
	    x->force_update != y->force_update || x->n_constraints != y->n_constraints ||
	    x->n_prefs != y->n_prefs || x->n_networks != y->n_networks)
		return false;
	for (size_t i = 0; i < x->n_constraints; i++) {
		const struct constraint *p = &x->constraints[i], *q = &y->constraints[i];
		if (p->op != q->op || !str_eq(p->key, q->key) || !str_eq(p->value, q->value))
			return false;
	}
	for (size_t i = 0; i < x->n_prefs; i++) {
		if (!str_eq(x->prefs[i].spread_key, y->prefs[i].spread_key))
			return false;
	}
	for (size_t i = 0; i < x->n_networks; i++) {
		if (!str_eq(x->networks[i].target, y->networks[i].target) ||
		    !strv_eq(x->networks[i].aliases, y->networks[i].aliases))
			return false;
	}
	return true;
}
