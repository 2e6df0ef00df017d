// SPDX-License-Identifier: Apache-2.0
/* Docker's /secrets and /configs: objects kept in the store, a secret's data
 * sealed (agent/secrets.h) and never shown, a config's kept and shown. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/cluster.h"
#include "agent/secrets.h"
#include "agent/store/store.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

struct kind {
	const char *what;	/* "secret" */
	const char *prefix;	/* records */
	const char *names;	/* name holders */
	bool sealed;		/* the data is sealed, and never shown */
	const char *ref_key;	/* ContainerSpec member that refers to it */
	const char *ref_id_key; /* its id member */
};

static const struct kind SECRET = {"secret", SECRETS_PREFIX, SECRET_NAMES_PREFIX,
				   true,     "Secrets",	     "SecretID"};
static const struct kind CONFIG = {"config", CONFIGS_PREFIX, CONFIG_NAMES_PREFIX,
				   false,    "Configs",	     "ConfigID"};

static void id25(char out[26])
{
	char hex[65];
	random_hex_id(hex);
	memcpy(out, hex, 25);
	out[25] = '\0';
}

/* What a client sees of a record. */
static json_t *shown(json_t *o)
{
	json_object_del(o, "Sealed");
	return o;
}

/* By full id, name, or unique id prefix, as Docker's daemon looks them up;
 * NULL and a reply if none. */
static json_t *find(struct api_req *r, const struct kind *k, const char *ref)
{
	struct shoal_err err = {0};
	json_t *all = NULL;
	if (cluster_list(r->agent, k->prefix, &all, &err) < 0) {
		api_reply_err(r, &err);
		return NULL;
	}
	json_t *match = NULL;
	size_t i, n = 0;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		const char *id = json_string_value(json_object_get(o, "ID")) ?: "";
		if (strcmp(id, ref) == 0) {
			match = o;
			n = 1;
			goto out;
		}
	}
	json_array_foreach(all, i, o)
	{
		const char *name =
			json_string_value(json_object_get(json_object_get(o, "Spec"), "Name"))
				?: "";
		if (strcmp(name, ref) == 0) {
			match = o;
			n = 1;
			goto out;
		}
	}
	json_array_foreach(all, i, o)
	{
		const char *id = json_string_value(json_object_get(o, "ID")) ?: "";
		if (str_has_prefix(id, ref)) {
			match = o;
			n++;
		}
	}
out:
	if (n == 1)
		json_incref(match);
	json_decref(all);
	if (n == 0)
		api_reply_error(r, 404, "%s %s not found", k->what, ref);
	else if (n > 1)
		api_reply_error(r, 400, "%s %s is ambiguous (%zu matches); use more characters",
				k->what, ref, n);
	return n == 1 ? match : NULL;
}

/* The ops if the compares hold: 1 when they went through, 0 when a compare
 * failed, or -errno when the store failed (replied). */
static int txn(struct api_req *r, const struct store_cmp *cmps, size_t n_cmps,
	       const struct store_op *ops, size_t n_ops)
{
	struct store_txn_result res = {0};
	struct shoal_err err = {0};
	int ret = store_txn(r->agent->store, cmps, n_cmps, ops, n_ops, NULL, 0, &res, &err);
	bool ok = ret >= 0 && res.succeeded;
	store_txn_result_clear(&res);
	if (ret < 0) {
		api_reply_err(r, &err);
		return ret;
	}
	return ok;
}

static bool labels_ok(struct api_req *r, json_t *labels)
{
	if (!labels || json_is_null(labels))
		return true;
	const char *key;
	json_t *v;
	if (!json_is_object(labels)) {
		api_reply_error(r, 400, "Labels: expected an object of strings");
		return false;
	}
	json_object_foreach(labels, key, v)
	{
		if (!json_is_string(v)) {
			api_reply_error(r, 400, "Labels.%s: expected a string", key);
			return false;
		}
	}
	return true;
}

/* Driver and Templating ask for plugins shoal does not have. */
static bool driver_refused(struct api_req *r, json_t *body, const struct kind *k)
{
	static const char *const keys[] = {"Driver", "Templating"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(body, keys[i]);
		const char *name = json_string_value(json_object_get(v, "Name"));
		if (!v || json_is_null(v) ||
		    (json_is_object(v) && (!name || !*name) &&
		     !json_object_size(json_object_get(v, "Options"))))
			continue;
		api_reply_error(r, 400,
				"%s: %s %ss are not supported by shoal; leave it out (the data "
				"is given in Data)",
				keys[i], strcmp(keys[i], "Driver") == 0 ? "external" : "templated",
				k->what);
		return true;
	}
	return false;
}

static bool unknown_refused(struct api_req *r, json_t *body)
{
	static const char *const known[] = {"Name", "Labels", "Data", "Driver", "Templating"};
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v)
	{
		bool ok = json_is_null(v);
		for (size_t i = 0; i < ARRAY_SIZE(known) && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (!ok) {
			api_reply_error(r, 400,
					"%s: not a member of a spec shoal knows; leave it out",
					key);
			return true;
		}
	}
	return false;
}

static void create(struct api_req *r, const struct kind *k)
{
	_cleanup_(json_decrefp) json_t *body = api_body_json(r, false);
	if (!body)
		return;
	if (unknown_refused(r, body) || driver_refused(r, body, k))
		return;
	const char *name = json_string_value(json_object_get(body, "Name"));
	if (!name || !*name) {
		api_reply_error(r, 400, "name must be provided");
		return;
	}
	if (!secrets_name_valid(name)) {
		api_reply_error(r, 400,
				"invalid name, only %d [a-zA-Z0-9-_.] characters allowed, and the "
				"start and end character must be [a-zA-Z0-9]",
				SECRETS_MAX_NAME);
		return;
	}
	json_t *labels = json_object_get(body, "Labels");
	if (!labels_ok(r, labels))
		return;
	json_t *dj = json_object_get(body, "Data");
	if (dj && !json_is_null(dj) && !json_is_string(dj)) {
		api_reply_error(r, 400, "Data: expected a base64 string");
		return;
	}
	uint8_t *data = NULL;
	size_t len = 0;
	if (dj && json_is_string(dj) &&
	    secrets_b64_decode(json_string_value(dj), json_string_length(dj), &data, &len) < 0) {
		api_reply_error(r, 400,
				"Data: not valid base64 (the standard alphabet, with = padding)");
		return;
	}
	if (len == 0 || len >= SECRETS_MAX_DATA) {
		if (data)
			explicit_bzero(data, len);
		free(data);
		api_reply_error(r, 400,
				"%s data must be larger than 0 and less than %d bytes (500 KB); "
				"it is %zu bytes",
				k->what, SECRETS_MAX_DATA, len);
		return;
	}
	char id[26], now[40], key[256], nkey[256];
	id25(id);
	format_rfc3339(now_ns(), now);
	json_t *spec = json_pack("{s:s, s:o}", "Name", name, "Labels",
				 json_is_object(labels) ? json_deep_copy(labels) : json_object());
	_cleanup_(json_decrefp) json_t *rec = json_pack(
		"{s:s, s:s, s:s, s:o}", "ID", id, "CreatedAt", now, "UpdatedAt", now, "Spec", spec);
	if (k->sealed) {
		json_t *sealed = secrets_seal(r->agent->secrets, id, data, len);
		explicit_bzero(data, len);
		free(data);
		/* the request's copy too, before the body goes */
		explicit_bzero((char *)json_string_value(dj), json_string_length(dj));
		if (!sealed) {
			api_reply_error(r, 500, "encrypting the secret: %s", strerror(errno));
			return;
		}
		json_object_set_new(rec, "Sealed", sealed);
	} else {
		json_object_set(spec, "Data", dj);
		free(data);
	}
	_cleanup_free_ char *s = json_dumps(rec, JSON_COMPACT);
	if (!s) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	snprintf(key, sizeof(key), "%s%s", k->prefix, id);
	snprintf(nkey, sizeof(nkey), "%s%s", k->names, name);
	/* the name is taken in the same write: of two creates of one name, one wins */
	struct store_cmp cmps[] = {
		{.key = nkey, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = 0},
		{.key = key, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = 0},
	};
	struct store_op ops[] = {
		{.type = STORE_OP_PUT, .key = nkey, .value = id, .value_len = strlen(id)},
		{.type = STORE_OP_PUT, .key = key, .value = s, .value_len = strlen(s)},
	};
	int ok = txn(r, cmps, 2, ops, 2);
	if (ok < 0)
		return;
	if (!ok) {
		api_reply_error(r, 409, "%s %s already exists", k->what, name);
		return;
	}
	log_info("%s %s (%s) created", k->what, name, id);
	api_reply_json(r, 201, json_pack("{s:s}", "ID", id));
}

static bool match_prefix(const char *v, void *ctx)
{
	return str_has_prefix(ctx, v);
}

static bool match_exact(const char *v, void *ctx)
{
	return strcmp(ctx, v) == 0;
}

static void list(struct api_req *r, const struct kind *k)
{
	static const char *const supported[] = {"id", "name", "names", "label"};
	_cleanup_(json_decrefp) json_t *filters = api_filters(r, supported, ARRAY_SIZE(supported));
	if (!filters)
		return;
	struct shoal_err err = {0};
	json_t *all = NULL;
	if (cluster_list(r->agent, k->prefix, &all, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	json_t *out = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		json_t *spec = json_object_get(o, "Spec");
		char *id = (char *)(json_string_value(json_object_get(o, "ID")) ?: "");
		char *name = (char *)(json_string_value(json_object_get(spec, "Name")) ?: "");
		/* every label asked for must be there (swarm's), each of the
		 * other keys' values is one way to match */
		bool labels = true;
		size_t li;
		json_t *lv;
		json_array_foreach(json_object_get(filters, "label"), li, lv) labels =
			labels &&
			api_filter_label(json_object_get(spec, "Labels"), json_string_value(lv));
		if (labels && api_filter_match(filters, "id", match_prefix, id) &&
		    api_filter_match(filters, "name", match_prefix, name) &&
		    api_filter_match(filters, "names", match_exact, name))
			json_array_append(out, shown(o));
	}
	json_decref(all);
	api_reply_json(r, 200, out);
}

static void inspect(struct api_req *r, const struct kind *k)
{
	json_t *o = find(r, k, r->params[0]);
	if (o)
		api_reply_json(r, 200, shown(o));
}

/* Whether an update's Data differs from what the secret o holds: 1 or 0, or
 * -1 with a reply. The docker CLI's stack deploy sends a stack's existing
 * secrets back whole, their data included; as swarmkit's UpdateSecret, the
 * same data is no change. A value that cannot be opened here differs. */
static int sealed_differs(struct api_req *r, json_t *o, json_t *dj)
{
	uint8_t *given = NULL, *held = NULL;
	size_t given_len = 0, held_len = 0;
	if (!json_is_string(dj) || secrets_b64_decode(json_string_value(dj), json_string_length(dj),
						      &given, &given_len) < 0) {
		api_reply_error(r, 400,
				"Data: not valid base64 (the standard alphabet, with = padding)");
		return -1;
	}
	struct shoal_err err = {0};
	const char *id = json_string_value(json_object_get(o, "ID")) ?: "";
	int differs = 1;
	if (secrets_unseal(r->agent->secrets, id, json_object_get(o, "Sealed"), &held, &held_len,
			   &err) >= 0)
		differs = given_len != held_len || CRYPTO_memcmp(given, held, given_len) != 0;
	explicit_bzero(given, given_len);
	free(given);
	if (held)
		explicit_bzero(held, held_len);
	free(held);
	explicit_bzero((char *)json_string_value(dj), json_string_length(dj));
	return differs;
}

static void update(struct api_req *r, const struct kind *k)
{
	int64_t version;
	if (api_query_int(r, "version", -1, &version) < 0)
		return;
	if (version < 0) {
		api_reply_error(r, 400, "version is required: the %s's Version.Index you read",
				k->what);
		return;
	}
	_cleanup_(json_decrefp) json_t *o = find(r, k, r->params[0]);
	if (!o)
		return;
	_cleanup_(json_decrefp) json_t *body = api_body_json(r, false);
	if (!body)
		return;
	if (unknown_refused(r, body))
		return;
	json_t *spec = json_object_get(o, "Spec");
	const char *name = json_string_value(json_object_get(body, "Name"));
	json_t *dj = json_object_get(body, "Data");
	bool data_changed = false;
	if (dj && !json_is_null(dj)) {
		int d = k->sealed ? sealed_differs(r, o, dj)
				  : !json_equal(dj, json_object_get(spec, "Data"));
		if (d < 0)
			return;
		data_changed = d;
	}
	if (driver_refused(r, body, k))
		return;
	if (!name || strcmp(name, json_string_value(json_object_get(spec, "Name")) ?: "") != 0 ||
	    data_changed) {
		api_reply_error(r, 400, "only updates to Labels are allowed");
		return;
	}
	json_t *labels = json_object_get(body, "Labels");
	if (!labels_ok(r, labels))
		return;
	json_object_set_new(spec, "Labels",
			    json_is_object(labels) ? json_incref(labels) : json_object());
	char now[40], key[256];
	format_rfc3339(now_ns(), now);
	json_object_set_new(o, "UpdatedAt", json_string(now));
	snprintf(key, sizeof(key), "%s%s", k->prefix, json_string_value(json_object_get(o, "ID")));
	struct shoal_err err = {0};
	if (cluster_put(r->agent, key, o, version, NULL, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 200);
}

static void delete (struct api_req *r, const struct kind *k)
{
	_cleanup_(json_decrefp) json_t *o = find(r, k, r->params[0]);
	if (!o)
		return;
	const char *id = json_string_value(json_object_get(o, "ID")) ?: "";
	const char *name =
		json_string_value(json_object_get(json_object_get(o, "Spec"), "Name")) ?: "";
	/* swarm refuses while a service refers to it */
	struct shoal_err err = {0};
	_cleanup_(json_decrefp) json_t *services = NULL;
	if (cluster_list(r->agent, CLUSTER_SERVICES, &services, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	char users[512] = "";
	size_t n_users = 0, i;
	json_t *svc;
	json_array_foreach(services, i, svc)
	{
		if (json_is_true(json_object_get(svc, "Removed")))
			continue;
		json_t *refs = json_object_get(
			json_object_get(
				json_object_get(json_object_get(svc, "Spec"), "TaskTemplate"),
				"ContainerSpec"),
			k->ref_key);
		size_t j;
		json_t *ref;
		bool uses = false;
		json_array_foreach(refs, j, ref) uses =
			uses || strcmp(json_string_value(json_object_get(ref, k->ref_id_key)) ?: "",
				       id) == 0;
		if (!uses)
			continue;
		size_t l = strlen(users);
		snprintf(users + l, sizeof(users) - l, "%s%s", n_users ? ", " : "",
			 json_string_value(json_object_get(json_object_get(svc, "Spec"), "Name"))
				 ?: "?");
		n_users++;
	}
	if (n_users) {
		api_reply_error(r, 409, "%s '%s' is in use by the following service%s: %s", k->what,
				name, n_users > 1 ? "s" : "", users);
		return;
	}
	char key[256], nkey[256];
	snprintf(key, sizeof(key), "%s%s", k->prefix, id);
	snprintf(nkey, sizeof(nkey), "%s%s", k->names, name);
	int64_t rev = json_integer_value(json_object_get(json_object_get(o, "Version"), "Index"));
	struct store_cmp cmp = {
		.key = key, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = rev};
	struct store_op ops[] = {
		{.type = STORE_OP_DELETE, .key = key},
		{.type = STORE_OP_DELETE, .key = nkey},
	};
	int ok = txn(r, &cmp, 1, ops, 2);
	if (ok < 0)
		return;
	if (!ok) {
		api_reply_error(r, 409, "%s %s changed while it was being removed; try again",
				k->what, name);
		return;
	}
	log_info("%s %s (%s) removed", k->what, name, id);
	api_reply_empty(r, 204);
}

/* The routes' handlers, one set per kind. */
#define KIND_HANDLER(name, op, kind)              \
	void api_##name##_##op(struct api_req *r) \
	{                                         \
		op(r, &kind);                     \
	}
/* clang-format off */
#define KIND_HANDLERS(name, kind) \
	KIND_HANDLER(name, create, kind) \
	KIND_HANDLER(name, list, kind) \
	KIND_HANDLER(name, inspect, kind) \
	KIND_HANDLER(name, update, kind) \
	KIND_HANDLER(name, delete, kind)
/* clang-format on */

KIND_HANDLERS(secret, SECRET)
KIND_HANDLERS(config, CONFIG)
