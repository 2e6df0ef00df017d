// SPDX-License-Identifier: Apache-2.0
/* /policies: network policies in the store, one key per name
 * (/shoal/policies/<name>): {"ID","Name","CreatedAt","UpdatedAt","Spec"},
 * Spec being the policy in its canonical form. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/cluster.h"
#include "agent/policy-agent.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "policy/policy.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)

/* The policy in body, validated, as its canonical JSON; NULL after a reply.
 * name: the policy being updated (the body may leave Name out). */
static json_t *policy_spec_from_body(struct api_req *r, json_t *body, const char *name)
{
	struct shoal_err err = {0};
	_cleanup_(policy_freep) struct policy *p = NULL;
	if (name) {
		json_t *bn = json_object_get(body, "Name");
		if (!bn)
			json_object_set_new(body, "Name", json_string(name));
		else if (!json_is_string(bn) || strcmp(json_string_value(bn), name) != 0) {
			api_reply_error(r, 400,
					"Name: %s does not match the policy being updated (%s); "
					"a policy cannot be renamed: create the new one and remove "
					"the old",
					json_is_string(bn) ? json_string_value(bn)
							   : "(not a string)",
					name);
			return NULL;
		}
	}
	if (policy_from_json(body, &p, &err) < 0) {
		if (err.code == ENOMEM)
			api_reply_error(r, 500, "out of memory");
		else
			api_reply_error(r, 400, "invalid policy: %s", err.msg);
		return NULL;
	}
	json_t *spec = policy_to_json(p);
	if (!spec)
		api_reply_error(r, 500, "out of memory");
	return spec;
}

static int policy_key(struct api_req *r, const char *name, char *buf, size_t len)
{
	struct shoal_err err = {0};
	if (policy_validate_name(name, &err) < 0) {
		api_reply_error(r, 400, "policy name %s: %s", name, err.msg);
		return -EINVAL;
	}
	snprintf(buf, len, "%s%s", CLUSTER_POLICIES, name);
	return 0;
}

/* The stored policy with its Version; NULL after a reply (404 when absent). */
static json_t *policy_find(struct api_req *r, const char *name, int64_t *ret_rev)
{
	char key[256];
	if (policy_key(r, name, key, sizeof(key)) < 0)
		return NULL;
	struct shoal_err err = {0};
	json_t *o = NULL;
	int64_t rev = 0;
	int ret = cluster_get(r->agent, key, &o, &rev, &err);
	if (ret == -ENOENT) {
		api_reply_error(r, 404, "no such policy: %s", name);
		return NULL;
	}
	if (ret < 0) {
		api_reply_err(r, &err);
		return NULL;
	}
	json_object_set_new(o, "Version", json_pack("{s:I}", "Index", (json_int_t)rev));
	if (ret_rev)
		*ret_rev = rev;
	return o;
}

/* A write waiting for its check (policy_agent_check): what to store once
 * the policy is known to fit. */
struct policy_write {
	char key[256];
	char name[POLICY_MAX_NAME_LEN + 1];
	char id[65];
	json_t *obj;
	int64_t version; /* 0: create */
};

static void policy_write_free(struct policy_write *w)
{
	if (w)
		json_decref(w->obj);
	free(w);
}

static void policy_write_cb(struct api_req *r, const struct shoal_err *cerr, void *userdata)
{
	struct policy_write *w = userdata;
	struct shoal_err err = {0};
	int ret;

	if (!r) {
		policy_write_free(w);
		return;
	}
	if (cerr) {
		api_reply_err(r, cerr);
		policy_write_free(w);
		return;
	}
	ret = cluster_put(r->agent, w->key, w->obj, w->version, NULL, &err);
	if (ret == -EAGAIN && !w->version)
		api_reply_error(r, 409,
				"a policy named %s exists already: update it (shoal policy update) "
				"or remove it first",
				w->name);
	else if (ret == -EAGAIN)
		api_reply_error(r, 409,
				"policy %s was updated by someone else meanwhile: read it again",
				w->name);
	else if (ret < 0)
		api_reply_err(r, &err);
	else {
		policy_agent_kick(r->agent);
		if (w->version)
			api_reply_empty(r, 200);
		else
			api_reply_json(r, 201,
				       json_pack("{s:s,s:s}", "ID", w->id, "Name", w->name));
	}
	policy_write_free(w);
}

/* Stores obj under key once its Spec is known to fit the policy map. */
static void policy_write(struct api_req *r, const char *key, const char *name, const char *id,
			 json_t *obj, int64_t version)
{
	struct policy_write *w = calloc(1, sizeof(*w));
	if (!w) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	snprintf(w->key, sizeof(w->key), "%s", key);
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->id, sizeof(w->id), "%s", id ? id : "");
	w->obj = json_incref(obj);
	w->version = version;
	policy_agent_check(r->agent, r, json_object_get(obj, "Spec"), policy_write_cb, w);
}

void api_policy_create(struct api_req *r)
{
	_cleanup_(json_decrefp) json_t *body = api_body_json(r, false);
	if (!body)
		return;
	_cleanup_(json_decrefp) json_t *spec = policy_spec_from_body(r, body, NULL);
	if (!spec)
		return;
	const char *name = json_string_value(json_object_get(spec, "Name"));
	char key[256], id[65], now[40];
	if (policy_key(r, name, key, sizeof(key)) < 0)
		return;
	if (random_hex_id(id) < 0) {
		api_reply_error(r, 500, "no random id");
		return;
	}
	format_rfc3339(now_ns(), now);
	_cleanup_(json_decrefp) json_t *obj =
		json_pack("{s:s,s:s,s:s,s:s,s:O}", "ID", id, "Name", name, "CreatedAt", now,
			  "UpdatedAt", now, "Spec", spec);
	if (!obj) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	/* a name taken is refused before the policy is compiled */
	struct shoal_err err = {0};
	json_t *old = NULL;
	int ret = cluster_get(r->agent, key, &old, NULL, &err);
	json_decref(old);
	if (ret == 0) {
		api_reply_error(r, 409,
				"a policy named %s exists already: update it (shoal policy update) "
				"or remove it first",
				name);
		return;
	}
	if (ret < 0 && ret != -ENOENT) {
		api_reply_err(r, &err);
		return;
	}
	policy_write(r, key, name, id, obj, 0);
}

void api_policy_list(struct api_req *r)
{
	struct shoal_err err = {0};
	json_t *all = NULL;
	if (cluster_list(r->agent, CLUSTER_POLICIES, &all, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, all);
}

void api_policy_inspect(struct api_req *r)
{
	json_t *o = policy_find(r, r->params[0], NULL);
	if (o)
		api_reply_json(r, 200, o);
}

void api_policy_update(struct api_req *r)
{
	int64_t version;
	if (api_query_int(r, "version", -1, &version) < 0)
		return;
	if (version < 0) {
		api_reply_error(r, 400, "version is required: the policy's Version.Index you read");
		return;
	}
	int64_t rev = 0;
	_cleanup_(json_decrefp) json_t *cur = policy_find(r, r->params[0], &rev);
	if (!cur)
		return;
	_cleanup_(json_decrefp) json_t *body = api_body_json(r, false);
	if (!body)
		return;
	_cleanup_(json_decrefp) json_t *spec = policy_spec_from_body(r, body, r->params[0]);
	if (!spec)
		return;
	if (version != rev) {
		api_reply_error(r, 409,
				"policy %s is at version %lld, not %lld: someone updated it since "
				"it was read; read it again",
				r->params[0], (long long)rev, (long long)version);
		return;
	}
	char key[256], now[40];
	if (policy_key(r, r->params[0], key, sizeof(key)) < 0)
		return;
	format_rfc3339(now_ns(), now);
	json_object_del(cur, "Version");
	json_object_set(cur, "Spec", spec);
	json_object_set_new(cur, "UpdatedAt", json_string(now));
	policy_write(r, key, r->params[0], NULL, cur, version);
}

void api_policy_delete(struct api_req *r)
{
	int64_t version;
	if (api_query_int(r, "version", -1, &version) < 0)
		return;
	int64_t rev = 0;
	_cleanup_(json_decrefp) json_t *cur = policy_find(r, r->params[0], &rev);
	if (!cur)
		return;
	char key[256];
	if (policy_key(r, r->params[0], key, sizeof(key)) < 0)
		return;
	struct shoal_err err = {0};
	int ret = cluster_delete(r->agent, key, version >= 0 ? version : rev, &err);
	if (ret == -EAGAIN) {
		api_reply_error(r, 409,
				"policy %s was updated by someone else meanwhile: read it again",
				r->params[0]);
		return;
	}
	if (ret < 0 && ret != -ENOENT) {
		api_reply_err(r, &err);
		return;
	}
	policy_agent_kick(r->agent);
	api_reply_empty(r, 200);
}

void api_policy_explain(struct api_req *r)
{
	const char *from = api_query(r, "from"), *to = api_query(r, "to");
	const char *proto_s = api_query(r, "proto");
	int64_t port;
	if (!from || !*from || !to || !*to) {
		api_reply_error(r, 400,
				"from and to are required: a container, a service or an IPv4 "
				"address each");
		return;
	}
	if (api_query_int(r, "port", -1, &port) < 0)
		return;
	if (port < 0 || port > 65535) {
		api_reply_error(r, 400, "port: expected 0 to 65535, as in port=80");
		return;
	}
	uint8_t proto;
	if (!proto_s || strcmp(proto_s, "tcp") == 0)
		proto = IPPROTO_TCP;
	else if (strcmp(proto_s, "udp") == 0)
		proto = IPPROTO_UDP;
	else {
		api_reply_error(r, 400, "proto %s: expected tcp or udp", proto_s);
		return;
	}
	struct shoal_err err = {0};
	json_t *out = NULL;
	if (policy_agent_explain(r->agent, from, to, proto, (uint16_t)port, &out, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, out);
}

void api_policy_log(struct api_req *r)
{
	policy_agent_log(r);
}
