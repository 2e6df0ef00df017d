// SPDX-License-Identifier: Apache-2.0
/*
 * The etcd backend: the store's calls as requests to an etcd v3 cluster's JSON gateway
 * (/v3/kv/range, put, deleterange, txn, compaction; /v3/lease/grant, keepalive, revoke).
 * etcd keeps the revisions, history, compaction point and leases; this file maps the
 * store's types to and from etcd's JSON. Synchronous calls block on one request with short
 * timeouts (store-etcd-http.c); watches (store-etcd-watch.c) and keep-alives
 * (store-etcd-lease.c) run on the caller's loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/store/store-etcd-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define _cleanup_json_ _cleanup_(json_decrefp)

#define ENDPOINTS_MAX 16
#define KEY_IN_MSG    200

static int set_b64(json_t *obj, const char *name, const void *p, size_t n)
{
	char *b = etcd_b64(p, n);
	if (!b)
		return -ENOMEM;
	int r = json_object_set_new(obj, name, json_string(b));
	free(b);
	return r < 0 ? -ENOMEM : 0;
}

static int set_int(json_t *obj, const char *name, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return json_object_set_new(obj, name, json_string(buf)) < 0 ? -ENOMEM : 0;
}

int etcd_range_json(json_t *obj, const char *key, bool prefix)
{
	static const char zero = '\0';
	int r;

	if (!prefix)
		return set_b64(obj, "key", key, strlen(key));
	/* etcd: range_end "\0" means every key from key on; key "\0" is the first key. */
	if (!*key) {
		r = set_b64(obj, "key", &zero, 1);
		return r < 0 ? r : set_b64(obj, "range_end", &zero, 1);
	}
	_cleanup_free_ char *end = NULL;
	size_t end_len = 0;
	r = store_prefix_end(key, &end, &end_len);
	if (r < 0)
		return r;
	r = set_b64(obj, "key", key, strlen(key));
	if (r < 0)
		return r;
	return end ? set_b64(obj, "range_end", end, end_len) : set_b64(obj, "range_end", &zero, 1);
}

int etcd_kv_from_json(json_t *j, struct store_kv *kv)
{
	*kv = (struct store_kv){};
	int r = etcd_b64_member(j, "key", &kv->key, NULL);
	if (r < 0)
		return r;
	r = etcd_b64_member(j, "value", &kv->value, &kv->value_len);
	if (r < 0) {
		store_kv_clear(kv);
		return r;
	}
	kv->create_revision = etcd_int_member(j, "create_revision");
	kv->mod_revision = etcd_int_member(j, "mod_revision");
	kv->version = etcd_int_member(j, "version");
	kv->lease = etcd_int_member(j, "lease");
	return 0;
}

static int64_t header_revision(json_t *res)
{
	return etcd_int_member(json_object_get(res, "header"), "revision");
}

/* Fills out (empty) from a RangeResponse. */
static int kvs_from_json(json_t *res, struct store_kvs *out, struct shoal_err *err)
{
	json_t *arr = json_object_get(res, "kvs");
	size_t n = json_array_size(arr);

	if (n > 0) {
		out->kvs = calloc(n, sizeof(*out->kvs));
		if (!out->kvs)
			return shoal_err_set(err, ENOMEM, "out of memory reading keys");
	}
	for (size_t i = 0; i < n; i++) {
		int r = etcd_kv_from_json(json_array_get(arr, i), &out->kvs[i]);
		if (r < 0)
			return shoal_err_set(err, -r,
					     "etcd answered with a key that is not base64");
		out->n++;
	}
	out->more = json_is_true(json_object_get(res, "more"));
	return 0;
}

int etcd_revision(struct etcd_store *es, int64_t *ret, struct shoal_err *err)
{
	static const char zero = '\0';
	_cleanup_json_ json_t *body = json_object(), *res = NULL;

	/* One key, absent or not: the answer's header carries the revision. */
	if (!body || set_b64(body, "key", &zero, 1) < 0 ||
	    json_object_set_new(body, "count_only", json_true()) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	int r = etcd_call(es, "/v3/kv/range", body, true, &res, err, "reading the revision");
	if (r < 0)
		return r;
	*ret = header_revision(res);
	return 0;
}

static int etcd_get(struct store *s, const char *key, bool prefix, size_t limit,
		    struct store_kvs **ret, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = json_object(), *res = NULL;
	char what[KEY_IN_MSG + 32];

	if (!body || etcd_range_json(body, key, prefix) < 0 ||
	    (limit > 0 && set_int(body, "limit", (int64_t)limit) < 0))
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "reading %.*s", KEY_IN_MSG, key);
	int r = etcd_call(es, "/v3/kv/range", body, true, &res, err, what);
	if (r < 0)
		return r;
	struct store_kvs *kvs = calloc(1, sizeof(*kvs));
	if (!kvs)
		return shoal_err_set(err, ENOMEM, "out of memory");
	r = kvs_from_json(res, kvs, err);
	if (r < 0) {
		store_kvs_free(kvs);
		return r;
	}
	kvs->revision = header_revision(res);
	*ret = kvs;
	return 0;
}

static json_t *put_json(const char *key, const char *value, size_t len, int64_t lease)
{
	json_t *o = json_object();
	if (!o || set_b64(o, "key", key, strlen(key)) < 0 ||
	    set_b64(o, "value", value ? value : "", len) < 0 ||
	    (lease != 0 && set_int(o, "lease", lease) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* etcd's "requested lease not found" names no lease: name the ones the request used. */
static int lease_not_found(struct shoal_err *err, const struct store_op *ops, size_t n)
{
	char leases[256] = "";
	const char *key = NULL;
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		if (ops[i].type != STORE_OP_PUT || ops[i].lease == 0)
			continue;
		if (!key)
			key = ops[i].key;
		if (strlen(leases) < sizeof(leases) - 32)
			snprintf(leases + strlen(leases), sizeof(leases) - strlen(leases), "%s%lld",
				 count ? ", " : "", (long long)ops[i].lease);
		count++;
	}
	if (count == 1)
		return shoal_err_set(err, ENOENT, "lease %s for %.*s not found; grant a new one",
				     leases, KEY_IN_MSG, key);
	return shoal_err_set(err, ENOENT, "one of the leases %s not found; grant a new one",
			     leases);
}

static int etcd_put(struct store *s, const char *key, const char *value, size_t len, int64_t lease,
		    int64_t *ret_revision, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = put_json(key, value, len, lease), *res = NULL;
	char what[KEY_IN_MSG + 32];

	if (!body)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "writing %.*s", KEY_IN_MSG, key);
	int r = etcd_call(es, "/v3/kv/put", body, false, &res, err, what);
	if (r == -ENOENT && strstr(err->msg, "lease not found")) {
		struct store_op op = {.type = STORE_OP_PUT, .key = key, .lease = lease};
		return lease_not_found(err, &op, 1);
	}
	if (r < 0)
		return r;
	if (ret_revision)
		*ret_revision = header_revision(res);
	return 0;
}

static int etcd_delete(struct store *s, const char *key, bool prefix, int64_t *ret_deleted,
		       struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = json_object(), *res = NULL;
	char what[KEY_IN_MSG + 32];

	if (!body || etcd_range_json(body, key, prefix) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "deleting %.*s", KEY_IN_MSG, key);
	int r = etcd_call(es, "/v3/kv/deleterange", body, false, &res, err, what);
	if (r < 0)
		return r;
	if (ret_deleted)
		*ret_deleted = etcd_int_member(res, "deleted");
	return 0;
}

static json_t *cmp_json(const struct store_cmp *c)
{
	static const char *const targets[] = {
		[STORE_CMP_MOD] = "MOD",
		[STORE_CMP_CREATE] = "CREATE",
		[STORE_CMP_VERSION] = "VERSION",
		[STORE_CMP_VALUE] = "VALUE",
	};
	static const char *const fields[] = {
		[STORE_CMP_MOD] = "mod_revision",
		[STORE_CMP_CREATE] = "create_revision",
		[STORE_CMP_VERSION] = "version",
	};
	static const char *const results[] = {
		[STORE_CMP_EQ] = "EQUAL",
		[STORE_CMP_NE] = "NOT_EQUAL",
		[STORE_CMP_LT] = "LESS",
		[STORE_CMP_GT] = "GREATER",
	};
	json_t *o = json_object();
	if (!o || set_b64(o, "key", c->key, strlen(c->key)) < 0 ||
	    json_object_set_new(o, "target", json_string(targets[c->target])) < 0 ||
	    json_object_set_new(o, "result", json_string(results[c->op])) < 0)
		goto oom;
	if (c->target == STORE_CMP_VALUE) {
		if (set_b64(o, "value", c->value ? c->value : "", c->value_len) < 0)
			goto oom;
	} else if (set_int(o, fields[c->target], c->num) < 0) {
		goto oom;
	}
	return o;
oom:
	json_decref(o);
	return NULL;
}

static json_t *op_json(const struct store_op *op)
{
	json_t *inner = NULL;
	const char *name = NULL;

	switch (op->type) {
	case STORE_OP_PUT:
		name = "request_put";
		inner = put_json(op->key, op->value, op->value_len, op->lease);
		break;
	case STORE_OP_DELETE:
	case STORE_OP_DELETE_PREFIX:
		name = "request_delete_range";
		inner = json_object();
		if (inner &&
		    etcd_range_json(inner, op->key, op->type == STORE_OP_DELETE_PREFIX) < 0) {
			json_decref(inner);
			inner = NULL;
		}
		break;
	case STORE_OP_GET:
		name = "request_range";
		inner = json_object();
		if (inner && etcd_range_json(inner, op->key, false) < 0) {
			json_decref(inner);
			inner = NULL;
		}
		break;
	}
	if (!inner)
		return NULL;
	json_t *o = json_object();
	if (!o || json_object_set_new(o, name, inner) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *ops_json(const struct store_op *ops, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		json_t *o = op_json(&ops[i]);
		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static int etcd_txn(struct store *s, const struct store_cmp *cmps, size_t n_cmps,
		    const struct store_op *success, size_t n_success,
		    const struct store_op *failure, size_t n_failure, struct store_txn_result *ret,
		    struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = json_object(), *res = NULL;
	struct store_txn_result out = {};
	json_t *arr = json_array();
	int r;

	if (!body || !arr || json_object_set_new(body, "compare", arr) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n_cmps; i++) {
		json_t *c = cmp_json(&cmps[i]);
		if (!c || json_array_append_new(arr, c) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
	}
	json_t *sj = ops_json(success, n_success), *fj = ops_json(failure, n_failure);
	if (json_object_set_new(body, "success", sj) < 0 ||
	    json_object_set_new(body, "failure", fj) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");

	r = etcd_call(es, "/v3/kv/txn", body, false, &res, err, "running a transaction");
	if (r == -ENOENT && strstr(err->msg, "lease not found")) {
		/* Which branch etcd took is unknown here: name the leases of both. */
		struct store_op all[2 * STORE_TXN_OPS_MAX];
		size_t n = 0;
		for (size_t i = 0; i < n_success; i++)
			all[n++] = success[i];
		for (size_t i = 0; i < n_failure; i++)
			all[n++] = failure[i];
		return lease_not_found(err, all, n);
	}
	if (r < 0)
		return r;

	out.succeeded = json_is_true(json_object_get(res, "succeeded"));
	out.revision = header_revision(res);
	const struct store_op *ops = out.succeeded ? success : failure;
	size_t n_ops = out.succeeded ? n_success : n_failure;
	for (size_t i = 0; i < n_ops; i++)
		if (ops[i].type == STORE_OP_GET)
			out.n_gets++;
	if (out.n_gets > 0) {
		out.gets = calloc(out.n_gets, sizeof(*out.gets));
		if (!out.gets)
			return shoal_err_set(err, ENOMEM, "out of memory");
	}
	json_t *resps = json_object_get(res, "responses");
	for (size_t i = 0, g = 0; i < n_ops; i++) {
		if (ops[i].type != STORE_OP_GET)
			continue;
		json_t *rr = json_object_get(json_array_get(resps, i), "response_range");
		if (!rr) {
			store_txn_result_clear(&out);
			return shoal_err_set(err, EPROTO,
					     "etcd answered a transaction without response %zu", i);
		}
		r = kvs_from_json(rr, &out.gets[g], err);
		out.gets[g].revision = out.revision;
		g++;
		if (r < 0) {
			store_txn_result_clear(&out);
			return r;
		}
	}
	*ret = out;
	return 0;
}

static int etcd_lease_grant(struct store *s, int64_t ttl_s, int64_t *ret_id, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = json_object(), *res = NULL;

	if (!body || set_int(body, "TTL", ttl_s) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	int r = etcd_call(es, "/v3/lease/grant", body, false, &res, err, "granting a lease");
	if (r < 0)
		return r;
	int64_t id = etcd_int_member(res, "ID");
	if (id <= 0)
		return shoal_err_set(err, EPROTO, "granting a lease: etcd answered without an id");
	*ret_id = id;
	return 0;
}

static int etcd_lease_keepalive(struct store *s, int64_t id, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = json_object(), *res = NULL;
	char what[64];

	if (!body || set_int(body, "ID", id) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "renewing lease %lld", (long long)id);
	int r = etcd_call(es, "/v3/lease/keepalive", body, true, &res, err, what);
	if (r < 0)
		return r;
	/* A stream of answers, here one: {"result": {"ID", "TTL"}}; no TTL = no such lease. */
	if (etcd_int_member(json_object_get(res, "result"), "TTL") <= 0)
		return shoal_err_set(err, ENOENT,
				     "lease %lld not found or expired; grant a new one",
				     (long long)id);
	return 0;
}

static int etcd_lease_revoke(struct store *s, int64_t id, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = json_object(), *res = NULL;
	char what[64];

	if (!body || set_int(body, "ID", id) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "revoking lease %lld", (long long)id);
	int r = etcd_call(es, "/v3/lease/revoke", body, false, &res, err, what);
	if (r == -ENOENT)
		return shoal_err_set(err, ENOENT, "lease %lld not found", (long long)id);
	return r;
}

static int etcd_compact(struct store *s, int64_t revision, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	_cleanup_json_ json_t *body = json_object(), *res = NULL;
	char what[64];

	if (!body || set_int(body, "revision", revision) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "compacting at revision %lld", (long long)revision);
	int r = etcd_call(es, "/v3/kv/compaction", body, false, &res, err, what);
	if (r == -EINVAL && strstr(err->msg, "future revision"))
		return shoal_err_set(err, EINVAL,
				     "cannot compact at revision %lld: the store is not there yet",
				     (long long)revision);
	return r;
}

static void etcd_close(struct store *s)
{
	struct etcd_store *es = ETCD(s);

	while (es->watches)
		etcd_watch_free(es->watches);
	etcd_renewer_free(es);
	etcd_multi_free(es);
	if (es->easy)
		curl_easy_cleanup(es->easy);
	strv_free(es->endpoints);
	free(es->cacert);
	free(es->cert);
	free(es->key);
	free(es->username);
	if (es->password)
		explicit_bzero(es->password, strlen(es->password));
	free(es->password);
	free(es->token);
	free(es);
	curl_global_cleanup();
}

/* Splits and checks opts->endpoints: http(s)://host:port, nothing after. */
static int parse_endpoints(struct etcd_store *es, const char *list, struct shoal_err *err)
{
	_cleanup_free_ char *copy = strdup(list);
	char *save = NULL;

	if (!copy)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		size_t n = strlen(tok);
		while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '/'))
			tok[--n] = '\0';
		const char *rest = str_has_prefix(tok, "http://")    ? tok + 7
				   : str_has_prefix(tok, "https://") ? tok + 8
								     : NULL;
		if (!rest)
			return shoal_err_set(err, EINVAL,
					     "etcd endpoint '%s' is not http://host:port or "
					     "https://host:port",
					     tok);
		const char *colon = strrchr(rest, ':');
		if (!*rest || strchr(rest, '/') || strchr(rest, '?') || !colon || !colon[1] ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return shoal_err_set(err, EINVAL,
					     "etcd endpoint '%s' needs a host and a port, and "
					     "nothing after them (e.g. http://10.0.0.1:2379)",
					     tok);
		if (es->n_endpoints == ENDPOINTS_MAX)
			return shoal_err_set(err, E2BIG, "more than %d etcd endpoints",
					     ENDPOINTS_MAX);
		if (strv_push(&es->endpoints, tok) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		es->n_endpoints++;
	}
	if (es->n_endpoints == 0)
		return shoal_err_set(err, EINVAL,
				     "the etcd store needs endpoints (e.g. http://127.0.0.1:2379)");
	return 0;
}

static int dup_opt(const char *v, char **ret, struct shoal_err *err)
{
	if (!v || !*v)
		return 0;
	*ret = strdup(v);
	return *ret ? 0 : shoal_err_set(err, ENOMEM, "out of memory");
}

static int check_file(const char *what, const char *path, struct shoal_err *err)
{
	if (path && access(path, R_OK) < 0)
		return shoal_err_errno(err, errno, "etcd %s %s", what, path);
	return 0;
}

static int etcd_open(const struct store_options *opts, struct store **ret, struct shoal_err *err)
{
	int64_t rev;
	int r;

	if (!opts->endpoints || !*opts->endpoints)
		return shoal_err_set(err, EINVAL,
				     "the etcd store needs endpoints (e.g. http://127.0.0.1:2379)");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return shoal_err_set(err, ENOMEM, "cannot initialise libcurl");
	struct etcd_store *es = calloc(1, sizeof(*es));
	if (!es) {
		curl_global_cleanup();
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	es->base = opts->base;
	r = parse_endpoints(es, opts->endpoints, err);
	if (r < 0)
		goto fail;
	if (!!(opts->cert && *opts->cert) != !!(opts->key && *opts->key)) {
		r = shoal_err_set(
			err, EINVAL,
			"an etcd client certificate needs both the certificate and its key");
		goto fail;
	}
	if (!!(opts->username && *opts->username) != !!opts->password) {
		r = shoal_err_set(err, EINVAL,
				  "etcd authentication needs a user name and a password");
		goto fail;
	}
	if ((r = dup_opt(opts->cacert, &es->cacert, err)) < 0 ||
	    (r = dup_opt(opts->cert, &es->cert, err)) < 0 ||
	    (r = dup_opt(opts->key, &es->key, err)) < 0 ||
	    (r = dup_opt(opts->username, &es->username, err)) < 0)
		goto fail;
	if (es->username && !(es->password = strdup(opts->password))) {
		r = shoal_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = check_file("CA certificate", es->cacert, err)) < 0 ||
	    (r = check_file("client certificate", es->cert, err)) < 0 ||
	    (r = check_file("client key", es->key, err)) < 0)
		goto fail;
	if (es->cacert || es->cert) {
		for (size_t i = 0; i < es->n_endpoints; i++)
			if (!str_has_prefix(es->endpoints[i], "https://")) {
				r = shoal_err_set(
					err, EINVAL,
					"TLS files are given but etcd endpoint %s is plain "
					"http; use https://",
					es->endpoints[i]);
				goto fail;
			}
	}
	es->easy = curl_easy_init();
	if (!es->easy) {
		r = shoal_err_set(err, ENOMEM, "cannot initialise libcurl");
		goto fail;
	}
	if (es->base) {
		r = etcd_multi_setup(es, err);
		if (r < 0)
			goto fail;
	}
	/* A wrong address, certificate or password shows now, not at the first write. */
	r = etcd_authenticate(es, err);
	if (r < 0)
		goto fail;
	r = etcd_revision(es, &rev, err);
	if (r < 0)
		goto fail;
	*ret = &es->pub;
	return 0;
fail:
	etcd_close(&es->pub);
	return r;
}

const struct store_ops store_etcd_ops = {
	.name = "etcd",
	.open = etcd_open,
	.get = etcd_get,
	.put = etcd_put,
	.delete = etcd_delete,
	.txn = etcd_txn,
	.watch = etcd_watch,
	.watch_cancel = etcd_watch_cancel,
	.lease_grant = etcd_lease_grant,
	.lease_keepalive = etcd_lease_keepalive,
	.lease_revoke = etcd_lease_revoke,
	.lease_keep = etcd_lease_keep,
	.lease_keeper_stop = etcd_lease_keeper_stop,
	.compact = etcd_compact,
	.close = etcd_close,
};
