/* SPDX-License-Identifier: Apache-2.0 */
/* Policy JSON <-> struct policy: parsing that refuses what it does not know,
 * validation naming the field path, and the canonical serialisation. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "policy/policy-internal.h"
#include "sched/spec.h"

#define PATH_LEN 256

/* Parse context: the JSON path of what is being read, and the one error. */
struct pctx {
	struct shoal_err *err;
	char path[PATH_LEN];
	size_t len;
};

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

/* "path: message", HTTP 400; returns -EINVAL. */
__attribute__((format(printf, 2, 3))) static int fail(struct pctx *c, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->len)
		return shoal_err_set_status(c->err, 400, EINVAL, "%s: %s", c->path, msg);
	return shoal_err_set_status(c->err, 400, EINVAL, "%s", msg);
}

static int oom(struct pctx *c)
{
	return shoal_err_set(c->err, ENOMEM, "out of memory reading the policy");
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* Refuses any key not in allowed (NULL-terminated). */
static int check_keys(struct pctx *c, json_t *o, const char *const *allowed, const char *what)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, k) == 0;
		if (ok)
			continue;
		char list[256] = "";
		size_t n = 0;
		for (const char *const *a = allowed; *a; a++)
			n += (size_t)snprintf(list + n, n < sizeof(list) ? sizeof(list) - n : 0,
					      "%s%s", n ? ", " : "", *a);
		size_t m = enter(c, k);
		int r = fail(c, "unknown field (%s has %s)", what, list);
		leave(c, m);
		return r;
	}
	return 0;
}

/* The value of key, NULL when absent or null. */
static json_t *field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_null(v) ? NULL : v;
}

static int get_string(struct pctx *c, json_t *o, const char *key, size_t max, char **ret)
{
	json_t *v = field(o, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r;
	if (!json_is_string(v)) {
		r = fail(c, "expected a string, got %s", json_kind(v));
	} else if (json_string_length(v) > max) {
		r = fail(c, "longer than %zu characters", max);
	} else if (strlen(json_string_value(v)) != json_string_length(v)) {
		r = fail(c, "contains a NUL character");
	} else {
		*ret = strdup(json_string_value(v));
		r = *ret ? 1 : oom(c);
	}
	leave(c, m);
	return r;
}

static int name_ok(struct pctx *c, const char *key, const char *name)
{
	struct shoal_err e = {0};
	if (spec_validate_name(name, &e) >= 0)
		return 0;
	size_t m = enter(c, key);
	int r = fail(c, "%s", e.msg);
	leave(c, m);
	return r;
}

/* Docker's network names: a letter or digit, then letters, digits, '_', '.', '-'. */
static int network_ok(struct pctx *c, const char *key, const char *name)
{
	bool ok = *name && isalnum((unsigned char)name[0]) && strlen(name) <= 255;
	for (const char *s = name; ok && *s; s++)
		ok = isalnum((unsigned char)*s) || *s == '_' || *s == '.' || *s == '-';
	if (ok)
		return 0;
	size_t m = enter(c, key);
	int r = fail(c,
		     "\"%.64s\" is not a network name: letters, digits, '_', '.' and '-', "
		     "starting with a letter or digit",
		     name);
	leave(c, m);
	return r;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy_label *)a)->key, ((const struct policy_label *)b)->key);
}

static void labels_done(struct policy_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int get_labels(struct pctx *c, json_t *v, struct policy_labels *ret)
{
	if (!json_is_object(v))
		return fail(c, "expected an object of label keys and values, got %s", json_kind(v));
	if (json_object_size(v) > POLICY_MAX_LABELS)
		return fail(c, "%zu labels exceed the limit of %d", json_object_size(v),
			    POLICY_MAX_LABELS);
	struct policy_labels l = {.v = calloc(json_object_size(v) + 1, sizeof(*l.v))};
	if (!l.v)
		return oom(c);
	const char *k;
	json_t *val;
	int r = 0;
	json_object_foreach(v, k, val)
	{
		size_t m = enter(c, k);
		if (!*k)
			r = fail(c, "a label key cannot be empty");
		else if (strlen(k) > POLICY_MAX_LABEL_KEY)
			r = fail(c, "label key longer than %d characters", POLICY_MAX_LABEL_KEY);
		else if (!json_is_string(val))
			r = fail(c, "expected a string, got %s", json_kind(val));
		else if (json_string_length(val) > POLICY_MAX_LABEL_VAL)
			r = fail(c, "label value longer than %d characters", POLICY_MAX_LABEL_VAL);
		leave(c, m);
		if (r < 0)
			break;
		char *kd = strdup(k), *vd = strdup(json_string_value(val));
		if (!kd || !vd) {
			free(kd);
			free(vd);
			r = oom(c);
			break;
		}
		l.v[l.n++] = (struct policy_label){kd, vd};
	}
	if (r < 0) {
		labels_done(&l);
		return r;
	}
	qsort(l.v, l.n, sizeof(*l.v), label_cmp);
	*ret = l;
	return 0;
}

static void selector_done(struct policy_selector *s)
{
	free(s->name);
	s->name = NULL;
	labels_done(&s->labels);
}

static int parse_selector(struct pctx *c, json_t *v, struct policy_selector *s)
{
	static const char *const keys[] = {"Service", "Labels", "Network", NULL};
	if (!json_is_object(v))
		return fail(c, "expected an object ({} selects every endpoint), got %s",
			    json_kind(v));
	int r = check_keys(c, v, keys, "a selector");
	if (r < 0)
		return r;
	size_t given = 0;
	for (const char *const *k = keys; *k; k++)
		given += field(v, *k) != NULL;
	if (given > 1)
		return fail(c, "give one of Service, Labels or Network");
	s->kind = POLICY_SEL_ALL;
	if ((r = get_string(c, v, "Service", POLICY_MAX_NAME_LEN + 64, &s->name)) > 0) {
		s->kind = POLICY_SEL_SERVICE;
		return name_ok(c, "Service", s->name);
	}
	if (r < 0)
		return r;
	if ((r = get_string(c, v, "Network", 255 + 64, &s->name)) > 0) {
		s->kind = POLICY_SEL_NETWORK;
		return network_ok(c, "Network", s->name);
	}
	if (r < 0)
		return r;
	json_t *l = field(v, "Labels");
	if (l) {
		size_t m = enter(c, "Labels");
		r = get_labels(c, l, &s->labels);
		leave(c, m);
		if (r < 0)
			return r;
		if (s->labels.n == 0) {
			m = enter(c, "Labels");
			r = fail(c, "empty: use {} as the selector to select every endpoint");
			leave(c, m);
			return r;
		}
		s->kind = POLICY_SEL_LABELS;
	}
	return 0;
}

int policy_parse_cidr(const char *s, struct policy_cidr *ret, struct shoal_err *err)
{
	if (strchr(s, ':'))
		return shoal_err_set_status(err, 400, EINVAL,
					    "%.64s: IPv6 is not supported (the data plane is IPv4)",
					    s);
	unsigned a, b, cc, d, len;
	char tail;
	if (sscanf(s, "%3u.%3u.%3u.%3u/%2u%c", &a, &b, &cc, &d, &len, &tail) != 5 || a > 255 ||
	    b > 255 || cc > 255 || d > 255 || len > 32 || !isdigit((unsigned char)s[0]) ||
	    !isdigit((unsigned char)s[strlen(s) - 1]))
		return shoal_err_set_status(err, 400, EINVAL,
					    "\"%.64s\" is not an IPv4 CIDR such as 10.0.0.0/8", s);
	/* Every part is digits only: sscanf's %u takes signs and spaces. */
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.' && *p != '/')
			return shoal_err_set_status(
				err, 400, EINVAL,
				"\"%.64s\" is not an IPv4 CIDR such as 10.0.0.0/8", s);
	uint32_t addr = a << 24 | b << 16 | cc << 8 | d;
	uint32_t mask = len ? ~0U << (32 - len) : 0;
	if (addr & ~mask)
		return shoal_err_set_status(err, 400, EINVAL,
					    "%s has host bits set: the network is %u.%u.%u.%u/%u",
					    s, (addr & mask) >> 24, (addr & mask) >> 16 & 255,
					    (addr & mask) >> 8 & 255, addr & mask & 255, len);
	*ret = (struct policy_cidr){addr, (uint8_t)len};
	return 0;
}

static void cidr_str(struct policy_cidr p, char buf[20])
{
	snprintf(buf, 20, "%u.%u.%u.%u/%u", p.addr >> 24, p.addr >> 16 & 255, p.addr >> 8 & 255,
		 p.addr & 255, p.len);
}

static int get_cidr(struct pctx *c, json_t *v, struct policy_cidr *ret)
{
	if (!json_is_string(v))
		return fail(c, "expected a string such as \"10.0.0.0/8\", got %s", json_kind(v));
	struct shoal_err e = {0};
	if (policy_parse_cidr(json_string_value(v), ret, &e) < 0)
		return fail(c, "%s", e.msg);
	return 0;
}

static void peer_done(struct policy_peer *p)
{
	free(p->name);
	labels_done(&p->labels);
	free(p->except);
}

static const char *const entity_names[] = {
	[POLICY_ENTITY_WORLD] = "world",
	[POLICY_ENTITY_NODE] = "node",
	[POLICY_ENTITY_PUBLISHED] = "published",
	[POLICY_ENTITY_CLUSTER] = "cluster",
};

static int parse_peer(struct pctx *c, json_t *v, enum policy_dir dir, struct policy_peer *p)
{
	static const char *const keys[] = {"Service", "Labels", "Network", "CIDR",
					   "Except",  "Entity", NULL};
	if (!json_is_object(v))
		return fail(c, "expected an object, got %s", json_kind(v));
	int r = check_keys(c, v, keys, "a peer");
	if (r < 0)
		return r;
	size_t given = 0;
	for (size_t i = 0; i < 6; i++)
		given += i != 4 && field(v, keys[i]) != NULL;
	if (given != 1)
		return fail(c, "give exactly one of Service, Labels, Network, CIDR or Entity");
	json_t *x;
	if (field(v, "Except") && !field(v, "CIDR")) {
		size_t m = enter(c, "Except");
		r = fail(c, "only with CIDR");
		leave(c, m);
		return r;
	}
	if ((r = get_string(c, v, "Service", POLICY_MAX_NAME_LEN + 64, &p->name)) != 0) {
		p->kind = POLICY_PEER_SERVICE;
		return r < 0 ? r : name_ok(c, "Service", p->name);
	}
	if ((r = get_string(c, v, "Network", 255 + 64, &p->name)) != 0) {
		p->kind = POLICY_PEER_NETWORK;
		return r < 0 ? r : network_ok(c, "Network", p->name);
	}
	if ((x = field(v, "Labels"))) {
		p->kind = POLICY_PEER_LABELS;
		size_t m = enter(c, "Labels");
		r = get_labels(c, x, &p->labels);
		leave(c, m);
		return r;
	}
	if ((x = field(v, "Entity"))) {
		p->kind = POLICY_PEER_ENTITY;
		size_t m = enter(c, "Entity");
		r = -1;
		for (size_t i = 0; json_is_string(x) && i < ARRAY_SIZE(entity_names); i++)
			if (strcmp(json_string_value(x), entity_names[i]) == 0) {
				p->entity = (enum policy_entity)i;
				r = 0;
			}
		if (r < 0)
			r = fail(c, "%s%.64s%s is not an entity: world, node, published or cluster",
				 json_is_string(x) ? "\"" : "",
				 json_is_string(x) ? json_string_value(x) : json_kind(x),
				 json_is_string(x) ? "\"" : "");
		else if (p->entity == POLICY_ENTITY_PUBLISHED && dir == POLICY_EGRESS)
			r = fail(c, "published is for ingress: traffic arriving on a published "
				    "port");
		leave(c, m);
		return r;
	}
	p->kind = POLICY_PEER_CIDR;
	size_t m = enter(c, "CIDR");
	r = get_cidr(c, field(v, "CIDR"), &p->cidr);
	leave(c, m);
	if (r < 0)
		return r;
	if (!(x = field(v, "Except")))
		return 0;
	m = enter(c, "Except");
	if (!json_is_array(x))
		r = fail(c, "expected an array of CIDRs, got %s", json_kind(x));
	else if (json_array_size(x) > POLICY_MAX_EXCEPT)
		r = fail(c, "%zu entries exceed the limit of %d", json_array_size(x),
			 POLICY_MAX_EXCEPT);
	else if (json_array_size(x) == 0)
		r = fail(c, "empty: leave Except out to except nothing");
	else if (!(p->except = calloc(json_array_size(x), sizeof(*p->except))))
		r = oom(c);
	for (size_t i = 0; r >= 0 && i < json_array_size(x); i++) {
		size_t mi = enter_index(c, i);
		struct policy_cidr e;
		r = get_cidr(c, json_array_get(x, i), &e);
		char es[20], cs[20];
		cidr_str(e, es);
		cidr_str(p->cidr, cs);
		if (r >= 0 && (!policy_cidr_within(e, p->cidr) || e.len == p->cidr.len))
			r = fail(c, "%s is not inside CIDR %s", es, cs);
		for (size_t j = 0; r >= 0 && j < p->n_except; j++)
			if (policy_cidr_within(e, p->except[j]) ||
			    policy_cidr_within(p->except[j], e))
				r = fail(c, "%s overlaps Except[%zu]", es, j);
		if (r >= 0)
			p->except[p->n_except++] = e;
		leave(c, mi);
	}
	leave(c, m);
	return r;
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "other";
}

static void port_str(const struct policy_port *p, char buf[32])
{
	if (!p->port)
		snprintf(buf, 32, "all/%s", proto_name(p->proto));
	else if (p->end_port && p->end_port != p->port)
		snprintf(buf, 32, "%u-%u/%s", p->port, p->end_port, proto_name(p->proto));
	else
		snprintf(buf, 32, "%u/%s", p->port, proto_name(p->proto));
}

static int parse_proto(const char *s, uint8_t *ret)
{
	if (strcmp(s, "tcp") == 0)
		*ret = IPPROTO_TCP;
	else if (strcmp(s, "udp") == 0)
		*ret = IPPROTO_UDP;
	else
		return -EINVAL;
	return 0;
}

static int get_port_number(struct pctx *c, json_t *o, const char *key, uint16_t *ret)
{
	json_t *v = field(o, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r = 1;
	if (!json_is_integer(v))
		r = fail(c, "expected a port number, got %s", json_kind(v));
	else if (json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		r = fail(c, "%" JSON_INTEGER_FORMAT " is not a port: 1 to 65535",
			 json_integer_value(v));
	else
		*ret = (uint16_t)json_integer_value(v);
	leave(c, m);
	return r;
}

static int parse_port(struct pctx *c, json_t *v, struct policy_port *p)
{
	static const char *const keys[] = {"Port", "EndPort", "Protocol", NULL};
	if (!json_is_object(v))
		return fail(c, "expected an object, got %s", json_kind(v));
	int r = check_keys(c, v, keys, "a port");
	if (r < 0)
		return r;
	p->proto = IPPROTO_TCP;
	json_t *pr = field(v, "Protocol");
	if (pr) {
		size_t m = enter(c, "Protocol");
		if (!json_is_string(pr))
			r = fail(c, "expected \"tcp\" or \"udp\", got %s", json_kind(pr));
		else if (strcasecmp(json_string_value(pr), "sctp") == 0)
			r = fail(c, "sctp is not supported: the data plane judges tcp and udp");
		else if (parse_proto(json_string_value(pr), &p->proto) < 0)
			r = fail(c, "\"%.32s\" is not a protocol: tcp or udp",
				 json_string_value(pr));
		leave(c, m);
		if (r < 0)
			return r;
	}
	if ((r = get_port_number(c, v, "Port", &p->port)) < 0 ||
	    (r = get_port_number(c, v, "EndPort", &p->end_port)) < 0)
		return r;
	if (p->end_port) {
		size_t m = enter(c, "EndPort");
		if (!p->port)
			r = fail(c, "needs Port (the start of the range)");
		else if (p->end_port < p->port)
			r = fail(c, "%u is below Port %u", p->end_port, p->port);
		leave(c, m);
	}
	return r;
}

static void port_range(const struct policy_port *p, uint32_t *lo, uint32_t *hi)
{
	*lo = p->port ? p->port : 0;
	*hi = !p->port ? 65535 : p->end_port ? p->end_port : p->port;
}

static void rule_done(struct policy_rule *r)
{
	for (size_t i = 0; i < r->n_peers; i++)
		peer_done(&r->peers[i]);
	free(r->peers);
	free(r->ports);
}

static const char *const action_names[] = {
	[POLICY_ACTION_NONE] = "",
	[POLICY_ACTION_ALLOW] = "allow",
	[POLICY_ACTION_DENY] = "deny",
	[POLICY_ACTION_PASS] = "pass",
};

static int parse_rule(struct pctx *c, json_t *v, enum policy_dir dir, enum policy_tier tier,
		      struct policy_rule *rule)
{
	const char *peers_key = dir == POLICY_INGRESS ? "From" : "To";
	const char *const keys[] = {peers_key, "Ports", "Action", NULL};
	if (!json_is_object(v))
		return fail(c, "expected an object, got %s", json_kind(v));
	int r = check_keys(c, v, keys,
			   dir == POLICY_INGRESS ? "an ingress rule" : "an egress rule");
	if (r < 0)
		return r;
	json_t *a = field(v, "Action");
	size_t m = enter(c, "Action");
	if (a && tier == POLICY_TIER_SERVICE) {
		r = fail(c, "only for a cluster or baseline policy (set Tier); a service "
			    "policy's rules allow");
	} else if (!a && tier != POLICY_TIER_SERVICE) {
		r = fail(c, "required in a %s policy: allow, deny%s",
			 tier == POLICY_TIER_CLUSTER ? "cluster" : "baseline",
			 tier == POLICY_TIER_CLUSTER ? " or pass" : "");
	} else if (a) {
		r = -1;
		for (size_t i = 1; json_is_string(a) && i < ARRAY_SIZE(action_names); i++)
			if (strcmp(json_string_value(a), action_names[i]) == 0) {
				rule->action = (enum policy_action)i;
				r = 0;
			}
		if (r < 0)
			r = fail(c, "expected allow, deny or pass");
		else if (rule->action == POLICY_ACTION_PASS && tier == POLICY_TIER_BASELINE)
			r = fail(c, "pass is for cluster policies: a baseline rule allows or "
				    "denies");
	}
	leave(c, m);
	if (r < 0)
		return r;

	json_t *pe = field(v, peers_key);
	if (pe) {
		m = enter(c, peers_key);
		if (!json_is_array(pe))
			r = fail(c, "expected an array of peers, got %s", json_kind(pe));
		else if (json_array_size(pe) == 0)
			r = fail(c, "empty: leave %s out to match every peer", peers_key);
		else if (json_array_size(pe) > POLICY_MAX_PEERS)
			r = fail(c, "%zu peers exceed the limit of %d", json_array_size(pe),
				 POLICY_MAX_PEERS);
		else if (!(rule->peers = calloc(json_array_size(pe), sizeof(*rule->peers))))
			r = oom(c);
		for (size_t i = 0; r >= 0 && i < json_array_size(pe); i++) {
			size_t mi = enter_index(c, i);
			rule->n_peers++;
			r = parse_peer(c, json_array_get(pe, i), dir, &rule->peers[i]);
			leave(c, mi);
		}
		leave(c, m);
		if (r < 0)
			return r;
	}

	json_t *po = field(v, "Ports");
	if (po) {
		m = enter(c, "Ports");
		if (!json_is_array(po))
			r = fail(c, "expected an array of ports, got %s", json_kind(po));
		else if (json_array_size(po) == 0)
			r = fail(c, "empty: leave Ports out to match every port");
		else if (json_array_size(po) > POLICY_MAX_PORTS)
			r = fail(c, "%zu ports exceed the limit of %d", json_array_size(po),
				 POLICY_MAX_PORTS);
		else if (!(rule->ports = calloc(json_array_size(po), sizeof(*rule->ports))))
			r = oom(c);
		for (size_t i = 0; r >= 0 && i < json_array_size(po); i++) {
			size_t mi = enter_index(c, i);
			struct policy_port *p = &rule->ports[i];
			r = parse_port(c, json_array_get(po, i), p);
			uint32_t lo, hi;
			port_range(p, &lo, &hi);
			for (size_t j = 0; r >= 0 && j < i; j++) {
				uint32_t l2, h2;
				port_range(&rule->ports[j], &l2, &h2);
				if (rule->ports[j].proto == p->proto && lo <= h2 && l2 <= hi) {
					char a1[32], a2[32];
					port_str(p, a1);
					port_str(&rule->ports[j], a2);
					r = fail(c, "%s overlaps Ports[%zu] %s", a1, j, a2);
				}
			}
			if (r >= 0)
				rule->n_ports++;
			leave(c, mi);
		}
		leave(c, m);
	}
	return r;
}

struct policy *policy_free(struct policy *p)
{
	if (!p)
		return NULL;
	free(p->name);
	selector_done(&p->selector);
	for (int d = 0; d < 2; d++) {
		for (size_t i = 0; i < p->n_rules[d]; i++)
			rule_done(&p->rules[d][i]);
		free(p->rules[d]);
	}
	free(p);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free);

static int parse_rules(struct pctx *c, json_t *j, enum policy_dir dir, struct policy *p)
{
	const char *key = policy_dir_str(dir);
	json_t *v = field(j, key);
	if (!v)
		return 0;
	size_t m = enter(c, key);
	int r = 0;
	if (!json_is_array(v))
		r = fail(c, "expected an array of rules, got %s", json_kind(v));
	else if (json_array_size(v) > POLICY_MAX_RULES)
		r = fail(c, "%zu rules exceed the limit of %d", json_array_size(v),
			 POLICY_MAX_RULES);
	else if (json_array_size(v) &&
		 !(p->rules[dir] = calloc(json_array_size(v), sizeof(*p->rules[dir]))))
		r = oom(c);
	for (size_t i = 0; r >= 0 && i < json_array_size(v); i++) {
		size_t mi = enter_index(c, i);
		p->n_rules[dir]++;
		r = parse_rule(c, json_array_get(v, i), dir, p->tier, &p->rules[dir][i]);
		leave(c, mi);
	}
	leave(c, m);
	return r;
}

static int parse_types(struct pctx *c, json_t *j, struct policy *p)
{
	json_t *v = field(j, "Types");
	if (!v) {
		p->types[POLICY_INGRESS] = true;
		p->types[POLICY_EGRESS] = p->n_rules[POLICY_EGRESS] > 0;
		return 0;
	}
	size_t m = enter(c, "Types");
	int r = 0;
	if (!json_is_array(v))
		r = fail(c, "expected an array such as [\"Ingress\", \"Egress\"], got %s",
			 json_kind(v));
	else if (json_array_size(v) == 0)
		r = fail(c, "empty: list Ingress, Egress or both (or leave Types out)");
	for (size_t i = 0; r >= 0 && i < json_array_size(v); i++) {
		size_t mi = enter_index(c, i);
		json_t *t = json_array_get(v, i);
		int d = -1;
		if (json_is_string(t) && strcmp(json_string_value(t), "Ingress") == 0)
			d = POLICY_INGRESS;
		else if (json_is_string(t) && strcmp(json_string_value(t), "Egress") == 0)
			d = POLICY_EGRESS;
		if (d < 0)
			r = fail(c, "expected \"Ingress\" or \"Egress\"");
		else if (p->types[d])
			r = fail(c, "%s is listed twice", policy_dir_str(d));
		else
			p->types[d] = true;
		leave(c, mi);
	}
	leave(c, m);
	for (int d = 0; r >= 0 && d < 2; d++)
		if (p->n_rules[d] && !p->types[d]) {
			m = enter(c, policy_dir_str(d));
			r = fail(c, "%zu rule%s given but Types does not list %s", p->n_rules[d],
				 p->n_rules[d] == 1 ? "" : "s", policy_dir_str(d));
			leave(c, m);
		}
	return r;
}

int policy_from_json(json_t *j, struct policy **ret, struct shoal_err *err)
{
	static const char *const keys[] = {"Name",  "Selector", "Types", "Ingress", "Egress",
					   "Audit", "Tier",	"Order", NULL};
	struct pctx c = {.err = err};
	if (!json_is_object(j))
		return fail(&c, "a policy is a JSON object, got %s", json_kind(j));
	int r = check_keys(&c, j, keys, "a policy");
	if (r < 0)
		return r;
	_cleanup_(policy_freep) struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return oom(&c);

	if ((r = get_string(&c, j, "Name", POLICY_MAX_NAME_LEN + 64, &p->name)) < 0)
		return r;
	if (!p->name)
		return fail(&c, "Name: required");
	if ((r = name_ok(&c, "Name", p->name)) < 0)
		return r;

	json_t *t = field(j, "Tier");
	if (t) {
		size_t m = enter(&c, "Tier");
		if (json_is_string(t) && strcmp(json_string_value(t), "cluster") == 0)
			p->tier = POLICY_TIER_CLUSTER;
		else if (json_is_string(t) && strcmp(json_string_value(t), "baseline") == 0)
			p->tier = POLICY_TIER_BASELINE;
		else
			r = fail(&c, "expected \"cluster\" or \"baseline\" (leave Tier out for a "
				     "service policy)");
		leave(&c, m);
		if (r < 0)
			return r;
	}
	json_t *o = field(j, "Order");
	size_t m = enter(&c, "Order");
	if (o && !t)
		r = fail(&c, "only for a cluster or baseline policy (set Tier)");
	else if (!o && t)
		r = fail(&c, "required in a %s policy (lower first)",
			 p->tier == POLICY_TIER_CLUSTER ? "cluster" : "baseline");
	else if (o && !json_is_integer(o))
		r = fail(&c, "expected a number, got %s", json_kind(o));
	else if (o && (json_integer_value(o) < 0 || json_integer_value(o) > POLICY_MAX_ORDER))
		r = fail(&c, "%" JSON_INTEGER_FORMAT " is out of range: 0 to %d",
			 json_integer_value(o), POLICY_MAX_ORDER);
	else if (o)
		p->order = (uint32_t)json_integer_value(o);
	leave(&c, m);
	if (r < 0)
		return r;

	json_t *s = field(j, "Selector");
	m = enter(&c, "Selector");
	r = s ? parse_selector(&c, s, &p->selector)
	      : fail(&c, "required ({} selects every endpoint)");
	leave(&c, m);
	if (r < 0)
		return r;

	json_t *a = field(j, "Audit");
	if (a && !json_is_boolean(a))
		return fail(&c, "Audit: expected true or false, got %s", json_kind(a));
	p->audit = a && json_is_true(a);

	if ((r = parse_rules(&c, j, POLICY_INGRESS, p)) < 0 ||
	    (r = parse_rules(&c, j, POLICY_EGRESS, p)) < 0 || (r = parse_types(&c, j, p)) < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}

int policy_validate_name(const char *name, struct shoal_err *err)
{
	return spec_validate_name(name, err);
}

int policy_parse_port(const char *s, struct policy_port *ret, struct shoal_err *err)
{
	struct policy_port p = {.proto = IPPROTO_TCP};
	char num[32];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (slash && parse_proto(slash + 1, &p.proto) < 0)
		return shoal_err_set_status(err, 400, EINVAL,
					    "\"%.64s\": the protocol is tcp or udp", s);
	if (n == 0 || n >= sizeof(num))
		goto bad;
	memcpy(num, s, n);
	num[n] = '\0';
	for (char *q = num; *q; q++)
		if (!isdigit((unsigned char)*q) && *q != '-')
			goto bad;
	unsigned lo, hi;
	int k = sscanf(num, "%u-%u", &lo, &hi);
	if (k < 1 || (k == 1 && strchr(num, '-')) || lo < 1 || lo > 65535 ||
	    (k == 2 && (hi < 1 || hi > 65535)))
		goto bad;
	if (k == 2 && hi < lo)
		return shoal_err_set_status(err, 400, EINVAL,
					    "\"%.64s\": the range ends at %u, below its start %u",
					    s, hi, lo);
	p.port = (uint16_t)lo;
	p.end_port = k == 2 ? (uint16_t)hi : 0;
	*ret = p;
	return 0;
bad:
	return shoal_err_set_status(err, 400, EINVAL,
				    "\"%.64s\" is not a port: PORT[-END][/tcp|/udp], e.g. "
				    "8000-8100/udp",
				    s);
}

const char *policy_dir_str(enum policy_dir d)
{
	return d == POLICY_INGRESS ? "Ingress" : "Egress";
}

const char *policy_action_str(enum policy_action a)
{
	return a == POLICY_ACTION_NONE ? "allow" : action_names[a];
}

const char *policy_verdict_str(enum policy_verdict v)
{
	switch (v) {
	case POLICY_VERDICT_ALLOW:
		return "allowed";
	case POLICY_VERDICT_DENY:
		return "dropped";
	case POLICY_VERDICT_AUDIT:
		return "audit";
	default:
		return "none";
	}
}

const char *policy_proto_str(uint8_t proto)
{
	return proto_name(proto);
}

/* --- serialisation --- */

static json_t *labels_to_json(const struct policy_labels *l)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < l->n; i++)
		if (json_object_set_new(o, l->v[i].key, json_string(l->v[i].value)) < 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

/* json_object_set_new() that remembers a failure. */
static void set(json_t *o, const char *k, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, k, v) < 0)
		*ok = false;
}

static void push(json_t *a, json_t *v, bool *ok)
{
	if (!v || json_array_append_new(a, v) < 0)
		*ok = false;
}

static json_t *cidr_json(struct policy_cidr p)
{
	char b[20];
	cidr_str(p, b);
	return json_string(b);
}

static json_t *peer_to_json(const struct policy_peer *p, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	switch (p->kind) {
	case POLICY_PEER_SERVICE:
		set(o, "Service", json_string(p->name), ok);
		break;
	case POLICY_PEER_NETWORK:
		set(o, "Network", json_string(p->name), ok);
		break;
	case POLICY_PEER_LABELS:
		set(o, "Labels", labels_to_json(&p->labels), ok);
		break;
	case POLICY_PEER_ENTITY:
		set(o, "Entity", json_string(entity_names[p->entity]), ok);
		break;
	case POLICY_PEER_CIDR:
		set(o, "CIDR", cidr_json(p->cidr), ok);
		if (p->n_except) {
			json_t *e = json_array();
			for (size_t i = 0; e && i < p->n_except; i++)
				push(e, cidr_json(p->except[i]), ok);
			set(o, "Except", e, ok);
		}
		break;
	}
	return o;
}

static json_t *rule_to_json(const struct policy_rule *r, enum policy_dir dir, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	if (r->action != POLICY_ACTION_NONE)
		set(o, "Action", json_string(action_names[r->action]), ok);
	if (r->n_peers) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < r->n_peers; i++)
			push(a, peer_to_json(&r->peers[i], ok), ok);
		set(o, dir == POLICY_INGRESS ? "From" : "To", a, ok);
	}
	if (r->n_ports) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < r->n_ports; i++) {
			const struct policy_port *p = &r->ports[i];
			json_t *po = json_object();
			if (po && p->port)
				set(po, "Port", json_integer(p->port), ok);
			if (po && p->end_port)
				set(po, "EndPort", json_integer(p->end_port), ok);
			if (po)
				set(po, "Protocol", json_string(proto_name(p->proto)), ok);
			push(a, po, ok);
		}
		set(o, "Ports", a, ok);
	}
	return o;
}

json_t *policy_to_json(const struct policy *p)
{
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	set(o, "Name", json_string(p->name), &ok);
	if (p->tier != POLICY_TIER_SERVICE) {
		set(o, "Tier", json_string(p->tier == POLICY_TIER_CLUSTER ? "cluster" : "baseline"),
		    &ok);
		set(o, "Order", json_integer(p->order), &ok);
	}
	json_t *s = json_object();
	if (s && p->selector.kind == POLICY_SEL_SERVICE)
		set(s, "Service", json_string(p->selector.name), &ok);
	else if (s && p->selector.kind == POLICY_SEL_NETWORK)
		set(s, "Network", json_string(p->selector.name), &ok);
	else if (s && p->selector.kind == POLICY_SEL_LABELS)
		set(s, "Labels", labels_to_json(&p->selector.labels), &ok);
	set(o, "Selector", s, &ok);
	json_t *types = json_array();
	for (int d = 0; types && d < 2; d++)
		if (p->types[d])
			push(types, json_string(policy_dir_str(d)), &ok);
	set(o, "Types", types, &ok);
	for (int d = 0; d < 2; d++) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < p->n_rules[d]; i++)
			push(a, rule_to_json(&p->rules[d][i], d, &ok), &ok);
		set(o, policy_dir_str(d), a, &ok);
	}
	set(o, "Audit", json_boolean(p->audit), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int policy_from_text(const char *buf, size_t len, struct policy **ret, struct shoal_err *err)
{
	if (len > POLICY_MAX_DOC)
		return shoal_err_set_status(
			err, 400, E2BIG, "the policy document is %zu bytes, over the limit of %d",
			len, POLICY_MAX_DOC);
	size_t i = 0;
	while (i < len && isspace((unsigned char)buf[i]))
		i++;
	if (i < len && (buf[i] == '{' || buf[i] == '[')) {
		json_error_t je;
		json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
		if (!j)
			return shoal_err_set_status(err, 400, EINVAL,
						    "not valid JSON: line %d column %d: %s",
						    je.line, je.column, je.text);
		int r = policy_from_json(j, ret, err);
		json_decref(j);
		return r;
	}
	return policy_from_yaml(buf, len, ret, err);
}
