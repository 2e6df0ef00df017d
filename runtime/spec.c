// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runtime/runtime-internal.h"

static json_t *strv_to_json(const char *const *v)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	for (; v && *v; v++) {
		if (json_array_append_new(a, json_string(*v)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int set_str(json_t *o, const char *key, const char *v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, key, json_string(v));
}

static int set_strv(json_t *o, const char *key, const char *const *v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, key, strv_to_json(v));
}

json_t *rt_spec_to_json(const struct rt_spec *s)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int r = 0;
	r |= set_str(o, "id", s->id);
	r |= set_str(o, "name", s->name);
	r |= set_strv(o, "layer_dirs", s->layer_dirs);
	r |= set_str(o, "bundle_dir", s->bundle_dir);
	r |= set_str(o, "run_dir", s->run_dir);
	r |= set_strv(o, "argv", s->argv);
	r |= set_strv(o, "env", s->env);
	r |= set_str(o, "cwd", s->cwd);
	r |= set_str(o, "user", s->user);
	r |= set_str(o, "hostname", s->hostname);
	r |= set_str(o, "domainname", s->domainname);
	r |= json_object_set_new(o, "tty", json_boolean(s->tty));
	r |= json_object_set_new(o, "open_stdin", json_boolean(s->open_stdin));
	r |= json_object_set_new(o, "stdin_once", json_boolean(s->stdin_once));
	r |= json_object_set_new(o, "read_only", json_boolean(s->read_only));
	r |= json_object_set_new(o, "privileged", json_boolean(s->privileged));
	r |= json_object_set_new(o, "memory", json_integer(s->memory));
	r |= json_object_set_new(o, "memory_swap", json_integer(s->memory_swap));
	r |= json_object_set_new(o, "nano_cpus", json_integer(s->nano_cpus));
	r |= json_object_set_new(o, "cpu_shares", json_integer(s->cpu_shares));
	r |= json_object_set_new(o, "pids_limit", json_integer(s->pids_limit));
	r |= set_strv(o, "cap_add", s->cap_add);
	r |= set_strv(o, "cap_drop", s->cap_drop);
	if (s->n_mounts) {
		json_t *ms = json_array();
		r |= json_object_set_new(o, "mounts", ms);
		for (size_t i = 0; ms && i < s->n_mounts; i++) {
			const struct rt_mount *m = &s->mounts[i];
			json_t *mo =
				json_pack("{s:i, s:s, s:b, s:b}", "type", m->type, "target",
					  m->target, "readonly", m->readonly, "noexec", m->noexec);
			r |= set_str(mo, "source", m->source);
			r |= set_str(mo, "data", m->data);
			r |= json_array_append_new(ms, mo);
		}
	}
	r |= json_object_set_new(o, "net_mode", json_integer(s->net_mode));
	r |= set_str(o, "net_path", s->net_path);
	r |= set_str(o, "hosts", s->hosts);
	r |= set_str(o, "resolv_conf", s->resolv_conf);
	r |= set_str(o, "cgroup_parent", s->cgroup_parent);
	r |= json_object_set_new(o, "log_max_size", json_integer(s->log_max_size));
	r |= json_object_set_new(o, "log_max_files", json_integer(s->log_max_files));
	r |= json_object_set_new(o, "log_max_total", json_integer(s->log_max_total));
	r |= set_str(o, "log_usage_path", s->log_usage_path);
	r |= set_str(o, "seccomp_path", s->seccomp_path);
	r |= json_object_set_new(o, "seccomp_unconfined", json_boolean(s->seccomp_unconfined));
	r |= json_object_set_new(o, "bundle_ready", json_boolean(s->bundle_ready));
	if (r) {
		json_decref(o);
		errno = ENOMEM;
		return NULL;
	}
	return o;
}

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int get_strv(json_t *o, const char *key, const char *const **ret, void **slot)
{
	json_t *a = json_object_get(o, key);
	*ret = NULL;
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return -EINVAL;
	size_t n = json_array_size(a);
	const char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = json_string_value(json_array_get(a, i));
		if (!v[i]) {
			free(v);
			return -EINVAL;
		}
	}
	*slot = v;
	*ret = v;
	return 0;
}

int rt_spec_from_json(json_t *root, struct rt_spec_owned *ret, struct shoal_err *err)
{
	struct rt_spec_owned o = {0};
	struct rt_spec *s = &o.spec;
	if (!json_is_object(root))
		return shoal_err_set(err, EINVAL, "container spec is not a JSON object");
	o.root = json_incref(root);
	s->id = get_str(root, "id");
	s->name = get_str(root, "name");
	s->bundle_dir = get_str(root, "bundle_dir");
	s->run_dir = get_str(root, "run_dir");
	s->cwd = get_str(root, "cwd");
	s->user = get_str(root, "user");
	s->hostname = get_str(root, "hostname");
	s->domainname = get_str(root, "domainname");
	s->tty = json_is_true(json_object_get(root, "tty"));
	s->open_stdin = json_is_true(json_object_get(root, "open_stdin"));
	s->stdin_once = json_is_true(json_object_get(root, "stdin_once"));
	s->read_only = json_is_true(json_object_get(root, "read_only"));
	s->privileged = json_is_true(json_object_get(root, "privileged"));
	s->memory = json_integer_value(json_object_get(root, "memory"));
	s->memory_swap = json_integer_value(json_object_get(root, "memory_swap"));
	s->nano_cpus = json_integer_value(json_object_get(root, "nano_cpus"));
	s->cpu_shares = json_integer_value(json_object_get(root, "cpu_shares"));
	s->pids_limit = json_integer_value(json_object_get(root, "pids_limit"));
	s->net_mode = (enum rt_net_mode)json_integer_value(json_object_get(root, "net_mode"));
	s->net_path = get_str(root, "net_path");
	s->hosts = get_str(root, "hosts");
	s->resolv_conf = get_str(root, "resolv_conf");
	s->cgroup_parent = get_str(root, "cgroup_parent");
	s->log_max_size = json_integer_value(json_object_get(root, "log_max_size"));
	s->log_max_files = (int)json_integer_value(json_object_get(root, "log_max_files"));
	s->log_max_total = json_integer_value(json_object_get(root, "log_max_total"));
	s->log_usage_path = get_str(root, "log_usage_path");
	s->seccomp_path = get_str(root, "seccomp_path");
	s->seccomp_unconfined = json_is_true(json_object_get(root, "seccomp_unconfined"));
	s->bundle_ready = json_is_true(json_object_get(root, "bundle_ready"));

	int r = 0;
	if (get_strv(root, "layer_dirs", &s->layer_dirs, &o.arrays[0]) < 0 ||
	    get_strv(root, "argv", &s->argv, &o.arrays[1]) < 0 ||
	    get_strv(root, "env", &s->env, &o.arrays[2]) < 0 ||
	    get_strv(root, "cap_add", &s->cap_add, &o.arrays[3]) < 0 ||
	    get_strv(root, "cap_drop", &s->cap_drop, &o.arrays[4]) < 0) {
		r = shoal_err_set(err, EINVAL, "container spec: bad string list");
		goto fail;
	}
	json_t *ms = json_object_get(root, "mounts");
	if (ms && (!json_is_array(ms) || json_array_size(ms) > RT_MAX_MOUNTS)) {
		r = shoal_err_set(err, EINVAL, "container spec: bad mounts");
		goto fail;
	}
	if (json_array_size(ms)) {
		o.mounts = calloc(json_array_size(ms), sizeof(*o.mounts));
		if (!o.mounts) {
			r = shoal_err_set(err, ENOMEM, "out of memory");
			goto fail;
		}
		size_t i;
		json_t *mo;
		json_array_foreach(ms, i, mo)
		{
			struct rt_mount *m = &o.mounts[i];
			m->type =
				(enum rt_mount_type)json_integer_value(json_object_get(mo, "type"));
			m->source = get_str(mo, "source");
			m->target = get_str(mo, "target");
			m->readonly = json_is_true(json_object_get(mo, "readonly"));
			m->noexec = json_is_true(json_object_get(mo, "noexec"));
			m->data = get_str(mo, "data");
			if (!m->target || m->target[0] != '/' ||
			    (m->type == RT_MOUNT_BIND && (!m->source || m->source[0] != '/')) ||
			    (m->type != RT_MOUNT_BIND && m->type != RT_MOUNT_TMPFS)) {
				r = shoal_err_set(err, EINVAL, "container spec: bad mount %zu", i);
				goto fail;
			}
		}
		s->mounts = o.mounts;
		s->n_mounts = json_array_size(ms);
	}
	if (!s->id || !s->bundle_dir || !s->run_dir || !s->argv || !s->argv[0]) {
		r = shoal_err_set(err, EINVAL,
				  "container spec needs id, bundle_dir, run_dir and a command");
		goto fail;
	}
	if (s->net_mode > RT_NET_FD || (s->net_mode == RT_NET_JOIN && !s->net_path)) {
		r = shoal_err_set(err, EINVAL, "container spec: bad network mode");
		goto fail;
	}
	*ret = o;
	return 0;
fail:
	rt_spec_owned_done(&o);
	return r;
}

void rt_spec_owned_done(struct rt_spec_owned *o)
{
	for (size_t i = 0; i < sizeof(o->arrays) / sizeof(o->arrays[0]); i++) {
		free(o->arrays[i]);
		o->arrays[i] = NULL;
	}
	free(o->mounts);
	o->mounts = NULL;
	json_decref(o->root);
	o->root = NULL;
}

json_t *rt_exit_to_json(const struct rt_exit *e)
{
	json_t *o = json_pack("{s:i,s:b,s:I}", "exit_code", e->exit_code, "oom_killed",
			      e->oom_killed, "finished_at", (json_int_t)e->finished_at_ns);
	if (o && e->error[0])
		json_object_set_new(o, "error", json_string(e->error));
	return o;
}

int rt_exit_from_json(json_t *j, struct rt_exit *ret)
{
	json_t *code = json_object_get(j, "exit_code");
	if (!json_is_integer(code))
		return -EINVAL;
	struct rt_exit e = {0};
	e.exit_code = (int)json_integer_value(code);
	e.oom_killed = json_is_true(json_object_get(j, "oom_killed"));
	e.finished_at_ns = json_integer_value(json_object_get(j, "finished_at"));
	const char *msg = json_string_value(json_object_get(j, "error"));
	if (msg)
		snprintf(e.error, sizeof(e.error), "%s", msg);
	*ret = e;
	return 0;
}

void rt_frame_header(uint8_t hdr[8], enum rt_frame_type type, uint32_t len)
{
	hdr[0] = (uint8_t)type;
	hdr[1] = hdr[2] = hdr[3] = 0;
	hdr[4] = (uint8_t)(len >> 24);
	hdr[5] = (uint8_t)(len >> 16);
	hdr[6] = (uint8_t)(len >> 8);
	hdr[7] = (uint8_t)len;
}
