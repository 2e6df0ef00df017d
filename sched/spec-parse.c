/* SPDX-License-Identifier: Apache-2.0 */
/* CLI-style strings of the service spec: durations, constraints, placement preferences,
 * published ports, names and the enum values. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "sched/spec.h"

static const char *const restart_names[] = {"none", "on-failure", "any"};
static const char *const failure_names[] = {"pause", "continue", "rollback"};
static const char *const order_names[] = {"stop-first", "start-first"};
static const char *const endpoint_names[] = {"vip", "dnsrr"};
static const char *const protocol_names[] = {"tcp", "udp", "sctp"};
static const char *const publish_mode_names[] = {"ingress", "host"};

static const char *enum_str(const char *const *names, size_t n, int v)
{
	if (v < 0 || (size_t)v >= n)
		return "unknown";
	return names[v];
}

/* "a, b or c" */
static void join_names(const char *const *names, size_t n, char *buf, size_t sz)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && len < sz; i++) {
		const char *sep = i == 0 ? "" : (i + 1 == n ? " or " : ", ");
		int r = snprintf(buf + len, sz - len, "%s%s", sep, names[i]);
		if (r < 0)
			break;
		len += (size_t)r;
	}
}

static int parse_enum(const char *what, const char *s, const char *const *names, size_t n, int *ret,
		      struct shoal_err *err)
{
	for (size_t i = 0; s && i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = (int)i;
			return 0;
		}
	}
	char list[128];
	join_names(names, n, list, sizeof(list));
	return shoal_err_set_status(err, 400, EINVAL, "unknown %s \"%.64s\": expected %s", what,
				    s ? s : "", list);
}

#define DEFINE_ENUM(fn, str_fn, type, what, names)                              \
	int fn(const char *s, type *ret, struct shoal_err *err)                 \
	{                                                                       \
		int v;                                                          \
		int r = parse_enum(what, s, names, ARRAY_SIZE(names), &v, err); \
		if (r < 0)                                                      \
			return r;                                               \
		*ret = (type)v;                                                 \
		return 0;                                                       \
	}                                                                       \
	const char *str_fn(type v)                                              \
	{                                                                       \
		return enum_str(names, ARRAY_SIZE(names), (int)v);              \
	}

DEFINE_ENUM(spec_parse_restart_condition, spec_restart_condition_str, enum restart_condition,
	    "restart condition", restart_names)
DEFINE_ENUM(spec_parse_failure_action, spec_failure_action_str, enum update_failure_action,
	    "failure action", failure_names)
DEFINE_ENUM(spec_parse_update_order, spec_update_order_str, enum update_order, "update order",
	    order_names)
DEFINE_ENUM(spec_parse_endpoint_mode, spec_endpoint_mode_str, enum endpoint_mode, "endpoint mode",
	    endpoint_names)
DEFINE_ENUM(spec_parse_protocol, spec_protocol_str, enum port_protocol, "protocol", protocol_names)
DEFINE_ENUM(spec_parse_publish_mode, spec_publish_mode_str, enum publish_mode, "publish mode",
	    publish_mode_names)

/* Durations, as Go's time.ParseDuration. */

#define DURATION_HINT "expected a number with a unit (ns, us, ms, s, m, h), e.g. \"1m30s\""

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
	{"ns", 1ULL},		{"us", 1000ULL},
	{"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
	{"\xce\xbcs", 1000ULL}, /* U+03BC greek mu */
	{"ms", 1000000ULL},	{"s", 1000000000ULL},
	{"m", 60000000000ULL},	{"h", 3600000000000ULL},
};

int spec_parse_duration(const char *str, int64_t *ret_ns, struct shoal_err *err)
{
	const char *s = str;
	bool neg = false;
	uint64_t total = 0;

	if (!s)
		s = str = "";
	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*ret_ns = 0;
		return 0;
	}
	if (*s == '\0')
		goto invalid;
	while (*s) {
		uint64_t v = 0, f = 0, scale = 1;
		bool pre = false, post = false, overflow = false;

		if (!(*s == '.' || isdigit((unsigned char)*s)))
			goto invalid;
		for (; isdigit((unsigned char)*s); s++) {
			pre = true;
			if (v > (UINT64_MAX - 9) / 10)
				goto range;
			v = v * 10 + (uint64_t)(*s - '0');
		}
		if (*s == '.') {
			s++;
			for (; isdigit((unsigned char)*s); s++) {
				post = true;
				/* Digits past what 64 bits hold are dropped, as Go does. */
				if (overflow || f > (UINT64_MAX - 9) / 10 ||
				    scale > UINT64_MAX / 10) {
					overflow = true;
					continue;
				}
				f = f * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
		if (!pre && !post)
			goto invalid;
		size_t ulen = 0;
		while (s[ulen] && s[ulen] != '.' && !isdigit((unsigned char)s[ulen]))
			ulen++;
		if (ulen == 0)
			return shoal_err_set_status(
				err, 400, EINVAL,
				"missing unit in duration \"%.64s\": " DURATION_HINT, str);
		uint64_t unit = 0;
		for (size_t i = 0; i < ARRAY_SIZE(duration_units); i++) {
			if (strlen(duration_units[i].name) == ulen &&
			    memcmp(duration_units[i].name, s, ulen) == 0)
				unit = duration_units[i].ns;
		}
		if (!unit)
			return shoal_err_set_status(err, 400, EINVAL,
						    "unknown unit \"%.*s\" in duration \"%.64s\": "
						    "expected ns, us, ms, s, m or h",
						    (int)(ulen > 16 ? 16 : ulen), s, str);
		s += ulen;
		if (v > (1ULL << 63) / unit)
			goto range;
		v *= unit;
		if (f > 0) {
			/* f * unit / scale without overflow: unit <= 3.6e12 and f < scale. */
			long double frac = (long double)f * (long double)unit / (long double)scale;
			v += (uint64_t)frac;
			if (v > 1ULL << 63)
				goto range;
		}
		total += v;
		if (total > 1ULL << 63)
			goto range;
	}
	if (neg) {
		*ret_ns = total == 1ULL << 63 ? INT64_MIN : -(int64_t)total;
		return 0;
	}
	if (total > (uint64_t)INT64_MAX)
		goto range;
	*ret_ns = (int64_t)total;
	return 0;

invalid:
	return shoal_err_set_status(err, 400, EINVAL, "invalid duration \"%.64s\": " DURATION_HINT,
				    str);
range:
	return shoal_err_set_status(err, 400, EINVAL, "duration \"%.64s\" is out of range", str);
}

/* v / 10^prec with the fraction's trailing zeros dropped: fmt_frac(1500, 3) = "1.5". */
static int fmt_frac(char *buf, size_t sz, uint64_t v, int prec)
{
	uint64_t p = 1;
	for (int i = 0; i < prec; i++)
		p *= 10;
	uint64_t ip = v / p, fp = v % p;
	if (fp == 0)
		return snprintf(buf, sz, "%" PRIu64, ip);
	char digits[24];
	snprintf(digits, sizeof(digits), "%0*" PRIu64, prec, fp);
	size_t n = strlen(digits);
	while (n > 0 && digits[n - 1] == '0')
		n--;
	return snprintf(buf, sz, "%" PRIu64 ".%.*s", ip, (int)n, digits);
}

void spec_format_duration(int64_t ns, char ret[40])
{
	uint64_t u = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
	size_t len = 0;
	if (ns < 0)
		ret[len++] = '-';
	char *b = ret + len;
	size_t sz = 40 - len;

	if (u == 0) {
		snprintf(ret, 40, "0s");
	} else if (u < 1000ULL) {
		snprintf(b, sz, "%" PRIu64 "ns", u);
	} else if (u < 1000000ULL) {
		int n = fmt_frac(b, sz, u, 3);
		snprintf(b + n, sz - (size_t)n, "\xc2\xb5s");
	} else if (u < 1000000000ULL) {
		int n = fmt_frac(b, sz, u, 6);
		snprintf(b + n, sz - (size_t)n, "ms");
	} else {
		uint64_t h = u / 3600000000000ULL;
		u %= 3600000000000ULL;
		uint64_t m = u / 60000000000ULL;
		u %= 60000000000ULL;
		int n = 0;
		if (h)
			n = snprintf(b, sz, "%" PRIu64 "h%" PRIu64 "m", h, m);
		else if (m)
			n = snprintf(b, sz, "%" PRIu64 "m", m);
		n += fmt_frac(b + n, sz - (size_t)n, u, 9);
		snprintf(b + n, sz - (size_t)n, "s");
	}
}

/* Constraints, as swarmkit's constraint.Parse, with the key checked against what the
 * scheduler knows: a misspelt key would otherwise match no node, silently. */

#define CONSTRAINT_KEYS                                                             \
	"node.id, node.hostname, node.role, node.platform.os, node.platform.arch, " \
	"node.labels.<name> or engine.labels.<name>"

static const char *const constraint_fixed_keys[] = {
	"node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch",
};
static const char *const constraint_label_prefixes[] = {"node.labels.", "engine.labels."};

static char *strip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Checks a constraint or spread key and lowercases its fixed part in place. */
static bool constraint_key_ok(char *key)
{
	/* swarmkit: ^(?i)[a-z_][a-z0-9\-_.]+$ */
	if (strlen(key) < 2 || !(isalpha((unsigned char)key[0]) || key[0] == '_'))
		return false;
	for (const char *p = key; *p; p++) {
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
			return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(constraint_fixed_keys); i++) {
		if (strcasecmp(key, constraint_fixed_keys[i]) == 0) {
			strcpy(key, constraint_fixed_keys[i]);
			return true;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(constraint_label_prefixes); i++) {
		const char *pre = constraint_label_prefixes[i];
		size_t n = strlen(pre);
		if (strncasecmp(key, pre, n) == 0 && key[n] != '\0') {
			memcpy(key, pre, n);
			return true;
		}
	}
	return false;
}

static bool constraint_value_ok(const char *v)
{
	/* swarmkit: ^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$ */
	if (!*v)
		return false;
	for (const char *p = v; *p; p++) {
		if (!(isalnum((unsigned char)*p) || isspace((unsigned char)*p) ||
		      strchr(":-_.*()?+[]\\^$|/", *p)))
			return false;
	}
	return true;
}

int spec_parse_constraint(const char *s, struct constraint *ret, struct shoal_err *err)
{
	if (!s)
		s = "";
	enum constraint_op op = CONSTRAINT_EQ;
	const char *at = strstr(s, "==");
	if (!at) {
		at = strstr(s, "!=");
		op = CONSTRAINT_NE;
	}
	if (!at)
		return shoal_err_set_status(err, 400, EINVAL,
					    "\"%.128s\" is not KEY==VALUE or KEY!=VALUE", s);
	_cleanup_free_ char *key_buf = strndup(s, (size_t)(at - s));
	_cleanup_free_ char *value_buf = strdup(at + 2);
	if (!key_buf || !value_buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	char *key = strip(key_buf), *value = strip(value_buf);
	if (!constraint_key_ok(key))
		return shoal_err_set_status(
			err, 400, EINVAL,
			"\"%.128s\": unknown key \"%.64s\": expected " CONSTRAINT_KEYS, s, key);
	if (!constraint_value_ok(value))
		return shoal_err_set_status(
			err, 400, EINVAL,
			"\"%.128s\": invalid value \"%.64s\": expected letters, "
			"digits, spaces and :-_.*()?+[]\\^$|/",
			s, value);
	char *k = strdup(key), *v = strdup(value), *t = strdup(s);
	if (!k || !v || !t) {
		free(k);
		free(v);
		free(t);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	*ret = (struct constraint){.key = k, .op = op, .value = v, .text = t};
	return 0;
}

void spec_constraint_done(struct constraint *c)
{
	if (!c)
		return;
	free(c->key);
	free(c->value);
	free(c->text);
	c->key = c->value = c->text = NULL;
}

char *spec_format_constraint(const struct constraint *c)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s%s", c->key ? c->key : "",
		     c->op == CONSTRAINT_NE ? "!=" : "==", c->value ? c->value : "") < 0)
		return NULL;
	return s;
}

int spec_parse_placement_pref(const char *s, struct placement_pref *ret, struct shoal_err *err)
{
	if (!s)
		s = "";
	const char *eq = strchr(s, '=');
	if (!eq || (size_t)(eq - s) != strlen("spread") || strncmp(s, "spread", 6) != 0)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"\"%.128s\" is not spread=KEY (the only strategy is spread)", s);
	_cleanup_free_ char *buf = strdup(eq + 1);
	if (!buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	char *key = strip(buf);
	if (!constraint_key_ok(key))
		return shoal_err_set_status(
			err, 400, EINVAL,
			"\"%.128s\": unknown spread key \"%.64s\": expected " CONSTRAINT_KEYS, s,
			key);
	char *k = strdup(key);
	if (!k)
		return shoal_err_set(err, ENOMEM, "out of memory");
	*ret = (struct placement_pref){.spread_key = k};
	return 0;
}

/* A port number: digits only, within [min, 65535]. */
static int parse_port(const char *what, const char *s, unsigned min, uint16_t *ret,
		      struct shoal_err *err)
{
	unsigned long v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
		return shoal_err_set_status(
			err, 400, EINVAL, "invalid %s port \"%.32s\": expected a number", what, s);
	v = strtoul(s, NULL, 10);
	if (v < min || v > 65535)
		return shoal_err_set_status(err, 400, EINVAL,
					    "%s port %lu is out of range (%u-65535)", what, v, min);
	*ret = (uint16_t)v;
	return 0;
}

static int parse_publish_long(const char *s, struct port_config *ret, struct shoal_err *err)
{
	struct port_config p = {.protocol = PORT_TCP, .mode = PUBLISH_INGRESS};
	bool have_target = false;
	_cleanup_free_ char *buf = strdup(s);
	if (!buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	char *save = NULL;
	for (char *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq)
			return shoal_err_set_status(err, 400, EINVAL,
						    "\"%.128s\": field \"%.32s\" is not KEY=VALUE",
						    s, f);
		*eq = '\0';
		char *key = strip(f), *value = strip(eq + 1);
		int r;
		if (strcmp(key, "published") == 0) {
			r = parse_port("published", value, 0, &p.published_port, err);
		} else if (strcmp(key, "target") == 0) {
			r = parse_port("target", value, 1, &p.target_port, err);
			have_target = true;
		} else if (strcmp(key, "protocol") == 0) {
			r = spec_parse_protocol(value, &p.protocol, err);
		} else if (strcmp(key, "mode") == 0) {
			r = spec_parse_publish_mode(value, &p.mode, err);
		} else {
			return shoal_err_set_status(err, 400, EINVAL,
						    "\"%.128s\": unknown field \"%.32s\": expected "
						    "published, target, protocol or mode",
						    s, key);
		}
		if (r < 0)
			return shoal_err_wrap(err, "\"%.128s\"", s);
	}
	if (!have_target)
		return shoal_err_set_status(err, 400, EINVAL, "\"%.128s\": target is required", s);
	*ret = p;
	return 0;
}

int spec_parse_publish(const char *s, struct port_config *ret, struct shoal_err *err)
{
	if (!s || !*s)
		return shoal_err_set_status(err, 400, EINVAL,
					    "empty port: expected PUBLISHED:TARGET[/PROTOCOL] or "
					    "published=P,target=T[,protocol=udp][,mode=host]");
	if (strchr(s, '='))
		return parse_publish_long(s, ret, err);

	struct port_config p = {.protocol = PORT_TCP, .mode = PUBLISH_INGRESS};
	_cleanup_free_ char *buf = strdup(s);
	if (!buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (spec_parse_protocol(slash + 1, &p.protocol, err) < 0)
			return shoal_err_wrap(err, "\"%.128s\"", s);
	}
	if (strchr(buf, '-'))
		return shoal_err_set_status(err, 400, EINVAL,
					    "\"%.128s\": port ranges are not supported", s);
	char *colon = strchr(buf, ':');
	if (colon && strchr(colon + 1, ':'))
		return shoal_err_set_status(
			err, 400, EINVAL,
			"\"%.128s\": a host address cannot be given for a service "
			"port; expected PUBLISHED:TARGET[/PROTOCOL]",
			s);
	const char *target = buf;
	if (colon) {
		*colon = '\0';
		target = colon + 1;
		if (parse_port("published", buf, 0, &p.published_port, err) < 0)
			return shoal_err_wrap(err, "\"%.128s\"", s);
	}
	if (parse_port("target", target, 1, &p.target_port, err) < 0)
		return shoal_err_wrap(err, "\"%.128s\"", s);
	*ret = p;
	return 0;
}

int spec_validate_name(const char *name, struct shoal_err *err)
{
	if (!name || !*name)
		return shoal_err_set_status(err, 400, EINVAL, "a name is required");
	size_t n = strlen(name);
	if (n > SPEC_MAX_NAME_LEN)
		return shoal_err_set_status(err, 400, EINVAL,
					    "\"%.64s...\" is invalid: longer than %d characters",
					    name, SPEC_MAX_NAME_LEN);
	bool ok = isalnum((unsigned char)name[0]) && isalnum((unsigned char)name[n - 1]);
	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_';
	if (!ok)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"\"%.64s\" is invalid: a name is letters, digits, '-' and '_', "
			"starting and ending with a letter or digit",
			name);
	return 0;
}
