/* SPDX-License-Identifier: Apache-2.0 */
/* ServiceSpec JSON -> struct service_spec: parsing with Docker's defaults, and validation
 * that names every problem with its JSON path. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"
#include "sched/spec-internal.h"

#define PATH_MAX_LEN	 256
#define MIN_MEMORY_LIMIT (6LL * 1024 * 1024) /* Docker's minimum memory limit */

/* Parse context: where in the document we are, and what went wrong so far. */
struct pctx {
	struct spec_errors *errs;
	bool oom;
	char path[PATH_MAX_LEN];
	size_t len;
};

void spec_errors_init(struct spec_errors *errs)
{
	errs->n = 0;
	errs->total = 0;
}

static size_t enter(struct pctx *c, const char *key)
{
	size_t mark = c->len;
	int r = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "",
			 key);
	if (r > 0)
		c->len = c->len + (size_t)r >= sizeof(c->path) ? sizeof(c->path) - 1
							       : c->len + (size_t)r;
	return mark;
}

static size_t enter_index(struct pctx *c, size_t i)
{
	size_t mark = c->len;
	int r = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);
	if (r > 0)
		c->len = c->len + (size_t)r >= sizeof(c->path) ? sizeof(c->path) - 1
							       : c->len + (size_t)r;
	return mark;
}

static void leave(struct pctx *c, size_t mark)
{
	c->len = mark;
	c->path[mark] = '\0';
}

__attribute__((format(printf, 2, 3))) static void perr(struct pctx *c, const char *fmt, ...)
{
	struct spec_errors *e = c->errs;
	e->total++;
	if (e->n >= SPEC_MAX_ERRORS)
		return;
	char *m = e->msg[e->n++];
	int n = 0;
	if (c->len)
		n = snprintf(m, SPEC_ERROR_MSG_LEN, "%s: ", c->path);
	if (n < 0 || n >= SPEC_ERROR_MSG_LEN)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m + n, SPEC_ERROR_MSG_LEN - (size_t)n, fmt, ap);
	va_end(ap);
}

/* A JSON value as the user wrote it, shortened for an error message. */
static void show(json_t *v, char buf[80])
{
	_cleanup_free_ char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!s) {
		snprintf(buf, 80, "(unprintable)");
		return;
	}
	if (strlen(s) > 64)
		snprintf(buf, 80, "%.60s...", s);
	else
		snprintf(buf, 80, "%s", s);
}

static void perr_type(struct pctx *c, const char *expected, json_t *got)
{
	char b[80];
	show(got, b);
	perr(c, "expected %s, got %s", expected, b);
}

/* A quoted string for an error message. */
static void quote(const char *s, char buf[80])
{
	json_t *j = json_string(s);
	if (!j) {
		snprintf(buf, 80, "\"%.60s\"", s);
		return;
	}
	show(j, buf);
	json_decref(j);
}

static char *xstrdup(struct pctx *c, const char *s)
{
	char *d = strdup(s);
	if (!d)
		c->oom = true;
	return d;
}

/* json null counts as absent, as with Go's decoder. */
static json_t *field(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_null(v) ? NULL : v;
}

/* The object at the current path, NULL when absent or of the wrong type (reported). */
static json_t *as_object(struct pctx *c, json_t *v)
{
	if (v && !json_is_object(v)) {
		perr_type(c, "an object", v);
		return NULL;
	}
	return v;
}

static json_t *as_array(struct pctx *c, json_t *v, size_t max)
{
	if (v && !json_is_array(v)) {
		perr_type(c, "an array", v);
		return NULL;
	}
	if (v && json_array_size(v) > max) {
		perr(c, "%zu entries exceed the limit of %zu", json_array_size(v), max);
		return NULL;
	}
	return v;
}

static bool string_ok(struct pctx *c, json_t *v, size_t max, const char *expected)
{
	if (!json_is_string(v)) {
		perr_type(c, expected, v);
		return false;
	}
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (strlen(s) != n) {
		perr(c, "contains a NUL character");
		return false;
	}
	if (n > max) {
		perr(c, "%zu characters exceed the limit of %zu", n, max);
		return false;
	}
	return true;
}

/* Leaves return 1 when the field was set, 0 when absent, -1 when invalid (reported). */

static int get_str(struct pctx *c, json_t *obj, const char *key, size_t max, char **ret)
{
	json_t *v = field(obj, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r = -1;
	if (string_ok(c, v, max, "a string")) {
		free(*ret);
		*ret = xstrdup(c, json_string_value(v));
		r = 1;
	}
	leave(c, m);
	return r;
}

/* A non-negative integer; expected says what it stands for in an error. */
static int get_nonneg(struct pctx *c, json_t *obj, const char *key, const char *expected,
		      int64_t *ret)
{
	json_t *v = field(obj, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r = -1;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		perr_type(c, expected, v);
	} else {
		*ret = json_integer_value(v);
		r = 1;
	}
	leave(c, m);
	return r;
}

static int get_i64(struct pctx *c, json_t *obj, const char *key, int64_t *ret)
{
	return get_nonneg(c, obj, key, "a non-negative integer", ret);
}

static int get_u64(struct pctx *c, json_t *obj, const char *key, uint64_t *ret)
{
	int64_t v = 0;
	int r = get_i64(c, obj, key, &v);
	if (r > 0)
		*ret = (uint64_t)v;
	return r;
}

static int get_duration(struct pctx *c, json_t *obj, const char *key, int64_t *ret)
{
	return get_nonneg(c, obj, key, "a duration in nanoseconds (a non-negative integer)", ret);
}

static int get_bool(struct pctx *c, json_t *obj, const char *key, bool *ret)
{
	json_t *v = field(obj, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		size_t m = enter(c, key);
		perr_type(c, "true or false", v);
		leave(c, m);
		return -1;
	}
	*ret = json_is_true(v);
	return 1;
}

typedef int (*enum_parse_fn)(const char *s, int *ret, struct shoal_err *err);

static int get_enum(struct pctx *c, json_t *obj, const char *key, enum_parse_fn parse, int *ret)
{
	json_t *v = field(obj, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r = -1;
	if (string_ok(c, v, SPEC_MAX_STRING_LEN, "a string")) {
		struct shoal_err err = {0};
		if (parse(json_string_value(v), ret, &err) < 0)
			perr(c, "%s", err.msg);
		else
			r = 1;
	}
	leave(c, m);
	return r;
}

/* The enum parsers, adapted to get_enum(). */
#define ENUM_ADAPTER(name, fn, type)                                    \
	static int name(const char *s, int *ret, struct shoal_err *err) \
	{                                                               \
		type v;                                                 \
		int r = fn(s, &v, err);                                 \
		if (r == 0)                                             \
			*ret = (int)v;                                  \
		return r;                                               \
	}

ENUM_ADAPTER(parse_restart_condition, spec_parse_restart_condition, enum restart_condition)
ENUM_ADAPTER(parse_failure_action, spec_parse_failure_action, enum update_failure_action)
ENUM_ADAPTER(parse_update_order, spec_parse_update_order, enum update_order)
ENUM_ADAPTER(parse_endpoint_mode, spec_parse_endpoint_mode, enum endpoint_mode)
ENUM_ADAPTER(parse_protocol, spec_parse_protocol, enum port_protocol)
ENUM_ADAPTER(parse_publish_mode, spec_parse_publish_mode, enum publish_mode)

/* An array of strings; an empty array is stored as NULL and counts as absent. */
static int get_strv(struct pctx *c, json_t *obj, const char *key, size_t max_n, size_t max_len,
		    char ***ret)
{
	json_t *v = field(obj, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r = -1;
	json_t *a = as_array(c, v, max_n);
	if (a) {
		size_t n = json_array_size(a);
		char **sv = n ? calloc(n + 1, sizeof(char *)) : NULL;
		bool ok = true;
		if (n && !sv) {
			c->oom = true;
			ok = false;
		}
		for (size_t i = 0; sv && i < n; i++) {
			size_t mi = enter_index(c, i);
			json_t *e = json_array_get(a, i);
			if (string_ok(c, e, max_len, "a string"))
				sv[i] = xstrdup(c, json_string_value(e));
			else
				ok = false;
			if (!sv[i]) {
				/* Keep the vector dense so strv_free() reaches every entry. */
				sv[i] = xstrdup(c, "");
				ok = false;
			}
			leave(c, mi);
		}
		if (ok) {
			strv_free(*ret);
			*ret = sv;
			r = n ? 1 : 0;
		} else {
			strv_free(sv);
		}
	}
	leave(c, m);
	return r;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct spec_label *)a)->key, ((const struct spec_label *)b)->key);
}

static int get_labels(struct pctx *c, json_t *obj, const char *key, struct spec_labels *ret)
{
	json_t *v = field(obj, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r = -1;
	json_t *o = as_object(c, v);
	if (o && json_object_size(o) > SPEC_MAX_LABELS) {
		perr(c, "%zu labels exceed the limit of %d", json_object_size(o), SPEC_MAX_LABELS);
		o = NULL;
	}
	if (o) {
		struct spec_labels l = {.v = calloc(json_object_size(o) + 1, sizeof(*l.v))};
		bool ok = l.v != NULL;
		if (!l.v)
			c->oom = true;
		const char *k;
		json_t *val;
		json_object_foreach(o, k, val)
		{
			if (!ok)
				break;
			size_t mk = enter(c, k);
			if (!*k) {
				perr(c, "a label key cannot be empty");
				ok = false;
			} else if (strlen(k) > SPEC_MAX_LABEL_KEY_LEN) {
				perr(c, "label key longer than %d characters",
				     SPEC_MAX_LABEL_KEY_LEN);
				ok = false;
			} else if (string_ok(c, val, SPEC_MAX_STRING_LEN, "a string")) {
				char *kd = xstrdup(c, k), *vd = xstrdup(c, json_string_value(val));
				l.v[l.n++] = (struct spec_label){kd, vd};
				ok = kd && vd;
			} else {
				ok = false;
			}
			leave(c, mk);
		}
		if (ok) {
			qsort(l.v, l.n, sizeof(*l.v), label_cmp);
			spec_labels_free(ret);
			*ret = l;
			r = 1;
		} else {
			spec_labels_free(&l);
		}
	}
	leave(c, m);
	return r;
}

/* Capabilities: Docker accepts "NET_ADMIN", "cap_net_admin" and "ALL"; stored as
 * "CAP_NET_ADMIN" so that equal sets compare equal. */
static const char *const cap_names[] = {
	"CHOWN",
	"DAC_OVERRIDE",
	"DAC_READ_SEARCH",
	"FOWNER",
	"FSETID",
	"KILL",
	"SETGID",
	"SETUID",
	"SETPCAP",
	"LINUX_IMMUTABLE",
	"NET_BIND_SERVICE",
	"NET_BROADCAST",
	"NET_ADMIN",
	"NET_RAW",
	"IPC_LOCK",
	"IPC_OWNER",
	"SYS_MODULE",
	"SYS_RAWIO",
	"SYS_CHROOT",
	"SYS_PTRACE",
	"SYS_PACCT",
	"SYS_ADMIN",
	"SYS_BOOT",
	"SYS_NICE",
	"SYS_RESOURCE",
	"SYS_TIME",
	"SYS_TTY_CONFIG",
	"MKNOD",
	"LEASE",
	"AUDIT_WRITE",
	"AUDIT_CONTROL",
	"SETFCAP",
	"MAC_OVERRIDE",
	"MAC_ADMIN",
	"SYSLOG",
	"WAKE_ALARM",
	"BLOCK_SUSPEND",
	"AUDIT_READ",
	"PERFMON",
	"BPF",
	"CHECKPOINT_RESTORE",
};

static int get_caps(struct pctx *c, json_t *obj, const char *key, char ***ret)
{
	int r = get_strv(c, obj, key, SPEC_MAX_CAPS, 64, ret);
	if (r <= 0)
		return r;
	size_t m = enter(c, key);
	for (size_t i = 0; (*ret)[i]; i++) {
		char *s = (*ret)[i];
		for (char *p = s; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		if (strcmp(s, "ALL") == 0)
			continue;
		const char *base = str_has_prefix(s, "CAP_") ? s + 4 : s;
		bool known = false;
		for (size_t k = 0; k < ARRAY_SIZE(cap_names); k++)
			known = known || strcmp(base, cap_names[k]) == 0;
		size_t mi = enter_index(c, i);
		if (!known) {
			char q[80];
			quote(s, q);
			perr(c, "unknown capability %s", q);
			r = -1;
		} else if (base == s) {
			char *n = NULL;
			if (asprintf(&n, "CAP_%s", s) < 0) {
				c->oom = true;
			} else {
				free(s);
				(*ret)[i] = n;
			}
		}
		leave(c, mi);
	}
	leave(c, m);
	return r;
}

/* StopSignal, as Docker's signal.ParseSignal: a number or a name with or without SIG. */
static const char *const signal_names[] = {
	"HUP",	 "INT",	 "QUIT", "ILL",	 "TRAP", "ABRT", "BUS",	   "FPE",    "KILL",
	"USR1",	 "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD",   "CONT",
	"STOP",	 "TSTP", "TTIN", "TTOU", "URG",	 "XCPU", "XFSZ",   "VTALRM", "PROF",
	"WINCH", "IO",	 "POLL", "PWR",	 "SYS",	 "IOT",	 "CLD",
};

/* RFC 1123 labels of letters, digits and inner hyphens, at most 63 in all
 * (the kernel's limit for the UTS name): what the node's container create
 * accepts (agent/container-config.c), so a task is never refused for a
 * hostname its service was accepted with. */
static bool hostname_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 63)
		return false;
	const char *label = s;
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (p == label || label[0] == '-' || p[-1] == '-')
				return false;
			if (!*p)
				return true;
			label = p + 1;
		} else if (!isalnum((unsigned char)*p) && *p != '-') {
			return false;
		}
	}
}

static bool signal_ok(const char *s)
{
	if (*s && strspn(s, "0123456789") == strlen(s)) {
		long v = strlen(s) <= 3 ? strtol(s, NULL, 10) : 0;
		return v >= 1 && v <= 64;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++) {
		if (strcasecmp(s, signal_names[i]) == 0)
			return true;
	}
	if (strcasecmp(s, "RTMIN") == 0 || strcasecmp(s, "RTMAX") == 0)
		return true;
	if ((strncasecmp(s, "RTMIN+", 6) == 0 || strncasecmp(s, "RTMAX-", 6) == 0) && s[6] &&
	    strlen(s + 6) <= 2 && strspn(s + 6, "0123456789") == strlen(s + 6)) {
		long v = strtol(s + 6, NULL, 10);
		return v >= 1 && v <= 14;
	}
	return false;
}

/* Parsing */

static void check_health_duration(struct pctx *c, json_t *obj, const char *key, int64_t *ret)
{
	if (get_duration(c, obj, key, ret) <= 0 || *ret == 0 || *ret >= SPEC_MIN_HEALTH_DURATION)
		return;
	char d[40];
	spec_format_duration(*ret, d);
	size_t m = enter(c, key);
	perr(c, "%s is below the minimum of 1ms", d);
	leave(c, m);
}

static void parse_healthcheck(struct pctx *c, json_t *o, struct healthcheck *h)
{
	if (get_strv(c, o, "Test", SPEC_MAX_ARGS, SPEC_MAX_STRING_LEN, &h->test) > 0) {
		size_t n = strv_length(h->test);
		size_t m = enter(c, "Test");
		const char *kind = h->test[0];
		if (strcmp(kind, "NONE") == 0) {
			if (n != 1)
				perr(c, "NONE takes no arguments");
		} else if (strcmp(kind, "CMD") == 0) {
			if (n < 2)
				perr(c,
				     "CMD needs a command: [\"CMD\", \"executable\", \"arg\"...]");
		} else if (strcmp(kind, "CMD-SHELL") == 0) {
			if (n != 2)
				perr(c, "CMD-SHELL takes exactly one command string");
		} else {
			char q[80];
			quote(kind, q);
			size_t mi = enter_index(c, 0);
			perr(c, "expected NONE, CMD or CMD-SHELL, got %s", q);
			leave(c, mi);
		}
		leave(c, m);
	}
	check_health_duration(c, o, "Interval", &h->interval_ns);
	check_health_duration(c, o, "Timeout", &h->timeout_ns);
	check_health_duration(c, o, "StartPeriod", &h->start_period_ns);
	json_t *rv = field(o, "Retries");
	if (rv) {
		size_t m = enter(c, "Retries");
		if (!json_is_integer(rv) || json_integer_value(rv) < 0)
			perr_type(c, "a non-negative integer", rv);
		else
			h->retries = json_integer_value(rv);
		leave(c, m);
	}
}

/* Mounts: an array of objects, each with a string Type and Target; kept as
 * given for the agent's mount rules (see struct container_spec). */
static void parse_mounts(struct pctx *c, json_t *o, struct container_spec *ct)
{
	size_t m = enter(c, "Mounts");
	json_t *a = as_array(c, field(o, "Mounts"), SPEC_MAX_MOUNTS);
	bool ok = a != NULL;
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e)
	{
		size_t mi = enter_index(c, i);
		if (!json_is_object(e)) {
			perr_type(c, "an object", e);
			ok = false;
		} else {
			static const char *const keys[] = {"Type", "Target"};
			for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
				size_t mk = enter(c, keys[k]);
				json_t *v = field(e, keys[k]);
				if (!v) {
					perr(c, "required");
					ok = false;
				} else if (!string_ok(c, v, SPEC_MAX_STRING_LEN, "a string")) {
					ok = false;
				}
				leave(c, mk);
			}
		}
		leave(c, mi);
	}
	leave(c, m);
	if (ok && json_array_size(a)) {
		ct->mounts = json_deep_copy(a);
		if (!ct->mounts)
			c->oom = true;
	}
}

/* Docker's name rule for secrets and configs: 1 to 64 of [a-zA-Z0-9-_.],
 * beginning and ending with a letter or digit. */
static bool ref_name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > SPEC_MAX_REF_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool alnum = isalnum((unsigned char)n[i]);
		if (!alnum && (i == 0 || i == len - 1 || !strchr("-_.", n[i])))
			return false;
	}
	return true;
}

/* A relative path with no empty, "." or ".." part. */
static bool rel_path_clean(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (const char *s = p; *s;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s = *e ? e + 1 : e;
		if (*e && !*s)
			return false; /* trailing '/' */
	}
	return true;
}

/* A uid or gid: decimal, below (uid_t)-1 (which means "unchanged" to chown). */
static bool digits(const char *s)
{
	if (!*s || strlen(s) > 10)
		return false;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return strtoull(s, NULL, 10) < 4294967295ULL;
}

/* Secrets or Configs: references to objects the agent resolves (by ID, else
 * by name), each with the file it becomes, Docker's defaults filled in: a
 * secret at /run/secrets/<File.Name> (relative), a config at File.Name
 * (absolute, relative ones under /), owner 0:0, mode 0444. */
static void parse_refs(struct pctx *c, json_t *o, const char *key, bool secret, json_t **ret)
{
	const char *idk = secret ? "SecretID" : "ConfigID";
	const char *namek = secret ? "SecretName" : "ConfigName";
	size_t m = enter(c, key);
	json_t *a = as_array(c, field(o, key), SPEC_MAX_MOUNTS);
	json_t *out = json_array();
	bool ok = out != NULL;
	if (!out)
		c->oom = true;
	size_t i;
	json_t *e;
	char q[80];
	json_array_foreach(a, i, e)
	{
		size_t mi = enter_index(c, i);
		if (!json_is_object(e)) {
			perr_type(c, "an object", e);
			ok = false;
			leave(c, mi);
			continue;
		}
		_cleanup_free_ char *id = NULL, *name = NULL, *fname = NULL, *uid = NULL,
				    *gid = NULL;
		if (get_str(c, e, idk, 64, &id) < 0 || get_str(c, e, namek, 256, &name) < 0)
			ok = false;
		if ((!id || !*id) && (!name || !*name)) {
			perr(c, "%s or %s is required", namek, idk);
			ok = false;
		} else if (name && *name && !ref_name_ok(name)) {
			size_t mk = enter(c, namek);
			quote(name, q);
			perr(c,
			     "%s is not a valid name: 1 to %d of [a-zA-Z0-9-_.], starting and "
			     "ending with a letter or digit",
			     q, SPEC_MAX_REF_NAME_LEN);
			leave(c, mk);
			ok = false;
		}
		json_t *rt = field(e, "Runtime");
		if (rt && !(json_is_object(rt) && json_object_size(rt) == 0)) {
			size_t mk = enter(c, "Runtime");
			perr(c, "not supported by shoal; give File");
			leave(c, mk);
			ok = false;
		}
		size_t mf = enter(c, "File");
		json_t *f = as_object(c, field(e, "File"));
		int64_t mode = 0444;
		if (field(e, "File") && !f)
			ok = false;
		if (get_str(c, f, "Name", SPEC_MAX_STRING_LEN, &fname) < 0 ||
		    get_str(c, f, "UID", 16, &uid) < 0 || get_str(c, f, "GID", 16, &gid) < 0)
			ok = false;
		if (fname && !*fname) {
			free(fname);
			fname = NULL;
		}
		if (!fname && name && *name &&
		    asprintf(&fname, "%s%s", secret ? "" : "/", name) < 0) {
			fname = NULL;
			c->oom = true;
		}
		if (fname) {
			size_t mk = enter(c, "Name");
			const char *rel = fname[0] == '/' ? fname + 1 : fname;
			quote(fname, q);
			if (secret && fname[0] == '/') {
				perr(c,
				     "%s: a secret's file is a name under /run/secrets, not an "
				     "absolute path",
				     q);
				ok = false;
			} else if (!rel_path_clean(rel)) {
				perr(c, "%s is not a clean path (no empty, . or .. parts)", q);
				ok = false;
			}
			leave(c, mk);
		}
		static const char *const ids[] = {"UID", "GID"};
		for (size_t k = 0; k < 2; k++) {
			const char *v = k ? gid : uid;
			if (v && *v && !digits(v)) {
				size_t mk = enter(c, ids[k]);
				quote(v, q);
				perr(c, "%s is not a numeric id", q);
				leave(c, mk);
				ok = false;
			}
		}
		json_t *mv = field(f, "Mode");
		if (mv) {
			size_t mk = enter(c, "Mode");
			if (!json_is_integer(mv) || json_integer_value(mv) < 0 ||
			    json_integer_value(mv) > 07777) {
				perr_type(c, "file mode bits (0 to 07777)", mv);
				ok = false;
			} else {
				mode = json_integer_value(mv);
			}
			leave(c, mk);
		}
		leave(c, mf);
		/* two references may not make the same file */
		size_t k;
		json_t *prev;
		json_array_foreach(out, k, prev)
		{
			const char *pf = json_string_value(
				json_object_get(json_object_get(prev, "File"), "Name"));
			if (fname && pf && strcmp(pf, fname) == 0) {
				perr(c, "%s and %s have a conflicting target: %s",
				     json_string_value(json_object_get(prev, namek)) ?: "?",
				     name ? name
				     : id ? id
					  : "?",
				     fname);
				ok = false;
			}
		}
		if (ok && out) {
			json_t *r =
				json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:I}}", idk, id ? id : "",
					  namek, name ? name : "", "File", "Name",
					  fname ? fname : "", "UID", uid && *uid ? uid : "0", "GID",
					  gid && *gid ? gid : "0", "Mode", (json_int_t)mode);
			if (!r || json_array_append_new(out, r) < 0)
				c->oom = true;
		}
		leave(c, mi);
	}
	leave(c, m);
	if (ok && json_array_size(out))
		*ret = out;
	else
		json_decref(out);
}

static void parse_container(struct pctx *c, json_t *o, struct container_spec *ct)
{
	char q[80];
	int r = get_str(c, o, "Image", SPEC_MAX_IMAGE_LEN, &ct->image);
	if (r == 0 || (r > 0 && ct->image && !*ct->image)) {
		size_t m = enter(c, "Image");
		perr(c, "required");
		leave(c, m);
	} else if (r > 0 && ct->image) {
		for (const char *p = ct->image; *p; p++) {
			if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
				size_t m = enter(c, "Image");
				quote(ct->image, q);
				perr(c, "%s is not a valid image reference", q);
				leave(c, m);
				break;
			}
		}
	}
	get_strv(c, o, "Command", SPEC_MAX_ARGS, SPEC_MAX_STRING_LEN, &ct->command);
	get_strv(c, o, "Args", SPEC_MAX_ARGS, SPEC_MAX_STRING_LEN, &ct->args);
	if (get_strv(c, o, "Env", SPEC_MAX_ENV, SPEC_MAX_STRING_LEN, &ct->env) > 0) {
		for (size_t i = 0; ct->env[i]; i++) {
			if (ct->env[i][0] != '\0' && ct->env[i][0] != '=')
				continue;
			size_t m = enter(c, "Env");
			enter_index(c, i);
			quote(ct->env[i], q);
			perr(c, "%s is not KEY=VALUE or KEY", q);
			leave(c, m);
		}
	}
	if (get_str(c, o, "Dir", SPEC_MAX_STRING_LEN, &ct->dir) > 0 && ct->dir) {
		if (!*ct->dir) {
			free(ct->dir);
			ct->dir = NULL;
		} else if (ct->dir[0] != '/') {
			size_t m = enter(c, "Dir");
			quote(ct->dir, q);
			perr(c, "%s is not an absolute path", q);
			leave(c, m);
		}
	}
	get_str(c, o, "User", SPEC_MAX_STRING_LEN, &ct->user);
	if (get_str(c, o, "Hostname", 253, &ct->hostname) > 0 && ct->hostname && *ct->hostname &&
	    !hostname_ok(ct->hostname)) {
		size_t m = enter(c, "Hostname");
		quote(ct->hostname, q);
		perr(c,
		     "%s is not a hostname: at most 63 letters, digits, hyphens and dots, "
		     "no label empty or beginning or ending with a hyphen (RFC 1123)",
		     q);
		leave(c, m);
	}
	get_labels(c, o, "Labels", &ct->labels);

	json_t *hv = field(o, "Healthcheck");
	if (hv) {
		size_t m = enter(c, "Healthcheck");
		json_t *ho = as_object(c, hv);
		if (ho) {
			ct->healthcheck = calloc(1, sizeof(*ct->healthcheck));
			if (ct->healthcheck)
				parse_healthcheck(c, ho, ct->healthcheck);
			else
				c->oom = true;
		}
		leave(c, m);
	}
	get_duration(c, o, "StopGracePeriod", &ct->stop_grace_period_ns);
	if (get_str(c, o, "StopSignal", 32, &ct->stop_signal) > 0 && ct->stop_signal) {
		if (!*ct->stop_signal) {
			free(ct->stop_signal);
			ct->stop_signal = NULL;
		} else if (!signal_ok(ct->stop_signal)) {
			size_t m = enter(c, "StopSignal");
			quote(ct->stop_signal, q);
			perr(c, "unknown signal %s: expected a name such as SIGTERM or a number",
			     q);
			leave(c, m);
		}
	}
	get_bool(c, o, "ReadOnly", &ct->read_only);
	get_caps(c, o, "CapabilityAdd", &ct->cap_add);
	get_caps(c, o, "CapabilityDrop", &ct->cap_drop);
	if (get_bool(c, o, "Init", &ct->init) > 0)
		ct->has_init = true;
	parse_mounts(c, o, ct);
	parse_refs(c, o, "Secrets", true, &ct->secrets);
	parse_refs(c, o, "Configs", false, &ct->configs);
	size_t files = json_array_size(ct->mounts) + json_array_size(ct->secrets) +
		       json_array_size(ct->configs);
	if (files > SPEC_MAX_MOUNTS)
		perr(c, "%zu mounts, secrets and configs together exceed the limit of %d", files,
		     SPEC_MAX_MOUNTS);
}

static void check_reservation(struct pctx *c, const char *key, int64_t res, int64_t lim)
{
	if (lim <= 0 || res <= lim)
		return;
	size_t m = enter(c, "Reservations");
	enter(c, key);
	perr(c, "%" PRId64 " exceeds Limits.%s (%" PRId64 ")", res, key, lim);
	leave(c, m);
}

static void parse_resources(struct pctx *c, json_t *o, struct task_template *t)
{
	size_t m = enter(c, "Limits");
	json_t *l = as_object(c, field(o, "Limits"));
	get_i64(c, l, "NanoCPUs", &t->limits.nano_cpus);
	if (get_i64(c, l, "MemoryBytes", &t->limits.memory_bytes) > 0 &&
	    t->limits.memory_bytes > 0 && t->limits.memory_bytes < MIN_MEMORY_LIMIT) {
		size_t mm = enter(c, "MemoryBytes");
		perr(c, "%" PRId64 " is below the minimum memory limit of 6MiB (%lld)",
		     t->limits.memory_bytes, MIN_MEMORY_LIMIT);
		leave(c, mm);
	}
	get_i64(c, l, "Pids", &t->limits.pids);
	leave(c, m);

	m = enter(c, "Reservations");
	json_t *rs = as_object(c, field(o, "Reservations"));
	get_i64(c, rs, "NanoCPUs", &t->reservations.nano_cpus);
	get_i64(c, rs, "MemoryBytes", &t->reservations.memory_bytes);
	leave(c, m);

	check_reservation(c, "NanoCPUs", t->reservations.nano_cpus, t->limits.nano_cpus);
	check_reservation(c, "MemoryBytes", t->reservations.memory_bytes, t->limits.memory_bytes);
}

static void parse_restart(struct pctx *c, json_t *o, struct restart_policy *rp)
{
	int v;
	if (get_enum(c, o, "Condition", parse_restart_condition, &v) > 0)
		rp->condition = (enum restart_condition)v;
	get_duration(c, o, "Delay", &rp->delay_ns);
	get_u64(c, o, "MaxAttempts", &rp->max_attempts);
	get_duration(c, o, "Window", &rp->window_ns);
}

static void parse_placement(struct pctx *c, json_t *o, struct task_template *t)
{
	size_t m = enter(c, "Constraints");
	json_t *a = as_array(c, field(o, "Constraints"), SPEC_MAX_CONSTRAINTS);
	if (a && json_array_size(a)) {
		t->constraints = calloc(json_array_size(a), sizeof(*t->constraints));
		if (!t->constraints)
			c->oom = true;
	}
	for (size_t i = 0; t->constraints && i < json_array_size(a); i++) {
		size_t mi = enter_index(c, i);
		json_t *e = json_array_get(a, i);
		if (string_ok(c, e, SPEC_MAX_STRING_LEN,
			      "a string such as \"node.role==worker\"")) {
			struct shoal_err err = {0};
			if (spec_parse_constraint(json_string_value(e),
						  &t->constraints[t->n_constraints], &err) < 0) {
				if (err.code == ENOMEM)
					c->oom = true;
				else
					perr(c, "%s", err.msg);
			} else {
				t->n_constraints++;
			}
		}
		leave(c, mi);
	}
	leave(c, m);

	m = enter(c, "Preferences");
	a = as_array(c, field(o, "Preferences"), SPEC_MAX_PREFS);
	if (a && json_array_size(a)) {
		t->prefs = calloc(json_array_size(a), sizeof(*t->prefs));
		if (!t->prefs)
			c->oom = true;
	}
	for (size_t i = 0; t->prefs && i < json_array_size(a); i++) {
		size_t mi = enter_index(c, i);
		json_t *p = as_object(c, json_array_get(a, i));
		size_t ms = enter(c, "Spread");
		json_t *sp = as_object(c, field(p, "Spread"));
		if (p && !sp && !field(p, "Spread"))
			perr(c, "required (the only placement preference is Spread)");
		char *key = NULL;
		if (sp) {
			int r = get_str(c, sp, "SpreadDescriptor", SPEC_MAX_STRING_LEN, &key);
			size_t md = enter(c, "SpreadDescriptor");
			if (r == 0) {
				perr(c, "required, e.g. \"node.labels.zone\"");
			} else if (r > 0 && key) {
				_cleanup_free_ char *pref = NULL;
				struct shoal_err err = {0};
				if (asprintf(&pref, "spread=%s", key) < 0)
					c->oom = true;
				else if (spec_parse_placement_pref(pref, &t->prefs[t->n_prefs],
								   &err) < 0)
					perr(c, "%s", err.msg);
				else
					t->n_prefs++;
			}
			leave(c, md);
			free(key);
		}
		leave(c, ms);
		leave(c, mi);
	}
	leave(c, m);
	get_u64(c, o, "MaxReplicas", &t->max_replicas);
}

static void parse_networks(struct pctx *c, json_t *v, struct task_template *t)
{
	size_t m = enter(c, "Networks");
	json_t *a = as_array(c, v, SPEC_MAX_NETWORKS);
	if (a && json_array_size(a)) {
		t->networks = calloc(json_array_size(a), sizeof(*t->networks));
		if (!t->networks)
			c->oom = true;
	}
	for (size_t i = 0; t->networks && i < json_array_size(a); i++) {
		size_t mi = enter_index(c, i);
		json_t *o = as_object(c, json_array_get(a, i));
		if (o) {
			struct spec_network *n = &t->networks[t->n_networks++];
			int r = get_str(c, o, "Target", SPEC_MAX_STRING_LEN, &n->target);
			get_strv(c, o, "Aliases", SPEC_MAX_ALIASES, 253, &n->aliases);
			size_t mt = enter(c, "Target");
			if (r == 0 || (r > 0 && n->target && !*n->target)) {
				perr(c, "required (a network name or id)");
			} else if (r > 0 && n->target) {
				for (size_t k = 0; k + 1 < t->n_networks; k++) {
					if (t->networks[k].target &&
					    strcmp(t->networks[k].target, n->target) == 0) {
						char q[80];
						quote(n->target, q);
						perr(c,
						     "network %s is already attached by Networks[%zu]",
						     q, k);
						break;
					}
				}
			}
			leave(c, mt);
		}
		leave(c, mi);
	}
	leave(c, m);
}

static void parse_task(struct pctx *c, json_t *o, struct task_template *t)
{
	size_t m = enter(c, "ContainerSpec");
	json_t *cs = field(o, "ContainerSpec");
	/* Of the wrong type it is reported once, not again as a missing Image. */
	if (!cs || as_object(c, cs))
		parse_container(c, cs, &t->container);
	leave(c, m);

	m = enter(c, "Resources");
	json_t *r = as_object(c, field(o, "Resources"));
	if (r)
		parse_resources(c, r, t);
	leave(c, m);

	m = enter(c, "RestartPolicy");
	json_t *rp = as_object(c, field(o, "RestartPolicy"));
	if (rp)
		parse_restart(c, rp, &t->restart);
	leave(c, m);

	m = enter(c, "Placement");
	json_t *p = as_object(c, field(o, "Placement"));
	if (p)
		parse_placement(c, p, t);
	leave(c, m);

	parse_networks(c, field(o, "Networks"), t);
	get_u64(c, o, "ForceUpdate", &t->force_update);
}

static void parse_mode(struct pctx *c, json_t *o, struct service_spec *s)
{
	json_t *rep = field(o, "Replicated"), *glob = field(o, "Global");
	static const char *const jobs[] = {"ReplicatedJob", "GlobalJob"};
	for (size_t i = 0; i < ARRAY_SIZE(jobs); i++) {
		if (field(o, jobs[i])) {
			size_t m = enter(c, jobs[i]);
			perr(c, "jobs are not supported: expected Replicated or Global");
			leave(c, m);
		}
	}
	if (rep && glob) {
		perr(c, "Replicated and Global are exclusive");
		return;
	}
	if (glob) {
		size_t m = enter(c, "Global");
		as_object(c, glob);
		leave(c, m);
		s->mode = SERVICE_GLOBAL;
		return;
	}
	size_t m = enter(c, "Replicated");
	json_t *ro = as_object(c, rep);
	int64_t n = 1;
	if (get_i64(c, ro, "Replicas", &n) > 0 && n > SPEC_MAX_REPLICAS) {
		size_t mr = enter(c, "Replicas");
		perr(c, "%" PRId64 " exceeds the limit of %d", n, SPEC_MAX_REPLICAS);
		leave(c, mr);
	}
	s->replicas = (uint64_t)n;
	leave(c, m);
}

static void update_defaults(struct update_config *u)
{
	*u = (struct update_config){
		.parallelism = 1,
		.delay_ns = 0,
		.failure_action = FAILURE_PAUSE,
		.monitor_ns = SPEC_DEFAULT_MONITOR,
		.max_failure_ratio = 0,
		.order = ORDER_STOP_FIRST,
	};
}

/* An empty string is the default, as Docker's daemon reads FailureAction and
 * Order (the docker CLI sends Order "" for a compose update_config without one). */
static bool empty_string(json_t *o, const char *key)
{
	json_t *v = field(o, key);
	return json_is_string(v) && json_string_length(v) == 0;
}

static void parse_update(struct pctx *c, json_t *o, struct update_config *u, bool rollback)
{
	int v;
	get_u64(c, o, "Parallelism", &u->parallelism);
	get_duration(c, o, "Delay", &u->delay_ns);
	if (!empty_string(o, "FailureAction") &&
	    get_enum(c, o, "FailureAction", parse_failure_action, &v) > 0) {
		if (rollback && v == FAILURE_ROLLBACK) {
			size_t m = enter(c, "FailureAction");
			perr(c,
			     "\"rollback\" is not valid for a rollback: expected pause or continue");
			leave(c, m);
		} else {
			u->failure_action = (enum update_failure_action)v;
		}
	}
	get_duration(c, o, "Monitor", &u->monitor_ns);
	json_t *r = field(o, "MaxFailureRatio");
	if (r) {
		size_t m = enter(c, "MaxFailureRatio");
		if (!json_is_number(r)) {
			perr_type(c, "a number between 0 and 1", r);
		} else if (json_number_value(r) < 0 || json_number_value(r) > 1) {
			char b[80];
			show(r, b);
			perr(c, "%s is outside [0, 1]", b);
		} else {
			u->max_failure_ratio = json_number_value(r);
		}
		leave(c, m);
	}
	if (!empty_string(o, "Order") && get_enum(c, o, "Order", parse_update_order, &v) > 0)
		u->order = (enum update_order)v;
}

static void parse_port(struct pctx *c, json_t *o, struct port_config *p, char **name)
{
	int v;
	get_str(c, o, "Name", SPEC_MAX_STRING_LEN, name);
	if (*name && !**name) {
		free(*name);
		*name = NULL;
	}
	if (get_enum(c, o, "Protocol", parse_protocol, &v) > 0)
		p->protocol = (enum port_protocol)v;
	if (get_enum(c, o, "PublishMode", parse_publish_mode, &v) > 0)
		p->mode = (enum publish_mode)v;

	int64_t target = 0, published = 0;
	int r = get_i64(c, o, "TargetPort", &target);
	size_t m = enter(c, "TargetPort");
	if (r == 0 || (r > 0 && target == 0))
		perr(c, "required: the port the task listens on (1-65535)");
	else if (r > 0 && target > 65535)
		perr(c, "%" PRId64 " is out of range (1-65535)", target);
	else if (r > 0)
		p->target_port = (uint16_t)target;
	leave(c, m);

	r = get_i64(c, o, "PublishedPort", &published);
	m = enter(c, "PublishedPort");
	if (r > 0 && published > 65535)
		perr(c, "%" PRId64 " is out of range (0-65535)", published);
	else if (r > 0)
		p->published_port = (uint16_t)published;
	leave(c, m);
}

static void parse_endpoint(struct pctx *c, json_t *o, struct service_spec *s)
{
	int v;
	if (get_enum(c, o, "Mode", parse_endpoint_mode, &v) > 0)
		s->endpoint_mode = (enum endpoint_mode)v;

	size_t m = enter(c, "Ports");
	json_t *a = as_array(c, field(o, "Ports"), SPEC_MAX_PORTS);
	size_t n = a ? json_array_size(a) : 0;
	if (n) {
		s->ports = calloc(n, sizeof(*s->ports));
		s->port_names = calloc(n, sizeof(*s->port_names));
		if (!s->ports || !s->port_names) {
			c->oom = true;
			n = 0;
		}
	}
	/* Index in the JSON array of each parsed port, for messages about duplicates. */
	size_t idx[SPEC_MAX_PORTS];
	for (size_t i = 0; i < n; i++) {
		size_t mi = enter_index(c, i);
		json_t *po = as_object(c, json_array_get(a, i));
		if (po) {
			size_t k = s->n_ports++;
			s->ports[k] =
				(struct port_config){.protocol = PORT_TCP, .mode = PUBLISH_INGRESS};
			idx[k] = i;
			parse_port(c, po, &s->ports[k], &s->port_names[k]);
			struct port_config *p = &s->ports[k];
			if (s->endpoint_mode == ENDPOINT_DNSRR && p->mode == PUBLISH_INGRESS &&
			    p->published_port) {
				perr(c, "a port published in ingress mode cannot be used with "
					"EndpointSpec.Mode dnsrr: use PublishMode host");
			}
			for (size_t j = 0; p->published_port && j < k; j++) {
				if (s->ports[j].published_port == p->published_port &&
				    s->ports[j].protocol == p->protocol) {
					size_t mp = enter(c, "PublishedPort");
					perr(c, "%u/%s is already published by Ports[%zu]",
					     p->published_port, spec_protocol_str(p->protocol),
					     idx[j]);
					leave(c, mp);
					break;
				}
			}
		}
		leave(c, mi);
	}
	leave(c, m);
}

static void spec_defaults(struct service_spec *s)
{
	s->mode = SERVICE_REPLICATED;
	s->replicas = 1;
	s->task.restart = (struct restart_policy){
		.condition = RESTART_ANY,
		.delay_ns = SPEC_DEFAULT_RESTART_DELAY,
		.max_attempts = 0,
		.window_ns = 0,
	};
	s->task.container.stop_grace_period_ns = SPEC_DEFAULT_STOP_GRACE_PERIOD;
	update_defaults(&s->update);
	update_defaults(&s->rollback);
	s->endpoint_mode = ENDPOINT_VIP;
}

int service_spec_from_json(json_t *j, struct service_spec **ret, struct spec_errors *errs)
{
	struct spec_errors local;
	struct pctx c = {.errs = errs ? errs : &local};
	spec_errors_init(c.errs);

	struct service_spec *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	spec_defaults(s);

	if (!json_is_object(j)) {
		perr_type(&c, "a ServiceSpec object", j);
		service_spec_free(s);
		return -EINVAL;
	}

	int r = get_str(&c, j, "Name", 256, &s->name);
	size_t m = enter(&c, "Name");
	if (r == 0) {
		perr(&c, "required");
	} else if (r > 0 && s->name) {
		struct shoal_err err = {0};
		if (spec_validate_name(s->name, &err) < 0)
			perr(&c, "%s", err.msg);
	}
	leave(&c, m);
	get_labels(&c, j, "Labels", &s->labels);

	m = enter(&c, "TaskTemplate");
	json_t *tt = field(j, "TaskTemplate");
	if (!tt || as_object(&c, tt))
		parse_task(&c, tt, &s->task);
	leave(&c, m);

	m = enter(&c, "Mode");
	json_t *mode = as_object(&c, field(j, "Mode"));
	parse_mode(&c, mode, s);
	leave(&c, m);

	m = enter(&c, "UpdateConfig");
	json_t *u = as_object(&c, field(j, "UpdateConfig"));
	if (u)
		parse_update(&c, u, &s->update, false);
	leave(&c, m);

	m = enter(&c, "RollbackConfig");
	u = as_object(&c, field(j, "RollbackConfig"));
	if (u)
		parse_update(&c, u, &s->rollback, true);
	leave(&c, m);

	m = enter(&c, "EndpointSpec");
	json_t *ep = as_object(&c, field(j, "EndpointSpec"));
	if (ep)
		parse_endpoint(&c, ep, s);
	leave(&c, m);

	if (s->mode == SERVICE_GLOBAL && s->task.max_replicas) {
		m = enter(&c, "TaskTemplate.Placement.MaxReplicas");
		perr(&c, "only valid in Replicated mode");
		leave(&c, m);
	}

	if (c.oom) {
		service_spec_free(s);
		return -ENOMEM;
	}
	if (c.errs->total) {
		service_spec_free(s);
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

int spec_errors_format(const struct spec_errors *errs, struct shoal_err *err)
{
	char buf[sizeof(err->msg)];
	size_t len = 0;
	int r;
	if (errs->total == 1)
		r = snprintf(buf, sizeof(buf), "invalid service spec: ");
	else
		r = snprintf(buf, sizeof(buf), "invalid service spec: %zu problems: ", errs->total);
	len = r > 0 ? (size_t)r : 0;
	size_t shown = 0;
	for (size_t i = 0; i < errs->n; i++) {
		const char *sep = i ? "; " : "";
		size_t need = strlen(sep) + strlen(errs->msg[i]);
		/* Keep room for the "; and N more" tail. */
		if (len + need + 24 >= sizeof(buf))
			break;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", sep, errs->msg[i]);
		shown++;
	}
	if (shown < errs->total)
		snprintf(buf + len, sizeof(buf) - len, "; and %zu more", errs->total - shown);
	return shoal_err_set_status(err, 400, EINVAL, "%s", buf);
}
