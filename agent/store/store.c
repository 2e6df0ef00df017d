// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agent/store/store-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* Keys appear in messages cut to this many bytes so that the message keeps room
 * for what follows. */
#define KEY_IN_MSG 200

static const struct store_ops *const backends[] = {
	&store_sqlite_ops,
	&store_etcd_ops,
};

int store_prefix_end(const char *prefix, char **ret, size_t *ret_len)
{
	size_t n = strlen(prefix);

	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0) {
		*ret = NULL;
		*ret_len = 0;
		return 0;
	}
	char *end = strndup(prefix, n);
	if (!end)
		return -ENOMEM;
	end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
	*ret = end;
	*ret_len = n;
	return 0;
}

bool store_key_matches(const char *key, const char *watched, bool prefix)
{
	return prefix ? str_has_prefix(key, watched) : strcmp(key, watched) == 0;
}

bool store_ranges_overlap(const char *a, bool a_prefix, const char *b, bool b_prefix)
{
	if (a_prefix && b_prefix)
		return str_has_prefix(a, b) || str_has_prefix(b, a);
	if (a_prefix)
		return str_has_prefix(b, a);
	if (b_prefix)
		return str_has_prefix(a, b);
	return strcmp(a, b) == 0;
}

void store_kv_clear(struct store_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	*kv = (struct store_kv){};
}

void store_kvs_free(struct store_kvs *kvs)
{
	if (!kvs)
		return;
	for (size_t i = 0; i < kvs->n; i++)
		store_kv_clear(&kvs->kvs[i]);
	free(kvs->kvs);
	free(kvs);
}

void store_txn_result_clear(struct store_txn_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_gets; i++) {
		struct store_kvs *g = &r->gets[i];
		for (size_t j = 0; j < g->n; j++)
			store_kv_clear(&g->kvs[j]);
		free(g->kvs);
	}
	free(r->gets);
	*r = (struct store_txn_result){};
}

static int check_key(const char *key, bool prefix, struct shoal_err *err)
{
	if (!key)
		return shoal_err_set(err, EINVAL, "key is missing");
	size_t n = strlen(key);
	if (n == 0 && !prefix)
		return shoal_err_set(err, EINVAL, "key is empty");
	if (n > STORE_KEY_MAX)
		return shoal_err_set(err, ENAMETOOLONG,
				     "key %.*s... is %zu bytes; the limit is %d bytes", KEY_IN_MSG,
				     key, n, STORE_KEY_MAX);
	return 0;
}

static int check_value(const char *key, const char *value, size_t len, struct shoal_err *err)
{
	if (!value && len > 0)
		return shoal_err_set(err, EINVAL, "value for %.*s is missing", KEY_IN_MSG, key);
	if (len > STORE_VALUE_MAX)
		return shoal_err_set(err, E2BIG,
				     "value for %.*s is %zu bytes; the limit is %d bytes (1.5 MiB)",
				     KEY_IN_MSG, key, len, STORE_VALUE_MAX);
	return 0;
}

static int check_lease_id(int64_t lease, struct shoal_err *err)
{
	if (lease < 0)
		return shoal_err_set(err, EINVAL, "lease id %lld is negative", (long long)lease);
	return 0;
}

static int check_ops(const char *branch, const struct store_op *ops, size_t n,
		     struct shoal_err *err)
{
	int r;

	if (n > 0 && !ops)
		return shoal_err_set(err, EINVAL, "txn %s ops are missing", branch);
	if (n > STORE_TXN_OPS_MAX)
		return shoal_err_set(err, E2BIG, "txn has %zu %s ops; the limit is %d", n, branch,
				     STORE_TXN_OPS_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct store_op *op = &ops[i];
		switch (op->type) {
		case STORE_OP_PUT:
			r = check_key(op->key, false, err);
			if (r < 0)
				return r;
			r = check_value(op->key, op->value, op->value_len, err);
			if (r < 0)
				return r;
			r = check_lease_id(op->lease, err);
			if (r < 0)
				return r;
			break;
		case STORE_OP_DELETE:
		case STORE_OP_GET:
			r = check_key(op->key, false, err);
			if (r < 0)
				return r;
			break;
		case STORE_OP_DELETE_PREFIX:
			r = check_key(op->key, true, err);
			if (r < 0)
				return r;
			break;
		default:
			return shoal_err_set(err, EINVAL, "txn %s op %zu has unknown type %d",
					     branch, i, (int)op->type);
		}
	}

	/* As etcd: a put may not share its key with another put or a delete in the
	 * same branch, since the result would depend on op order within one revision. */
	for (size_t i = 0; i < n; i++) {
		if (ops[i].type != STORE_OP_PUT)
			continue;
		for (size_t j = 0; j < n; j++) {
			if (i == j || ops[j].type == STORE_OP_GET)
				continue;
			bool prefix = ops[j].type == STORE_OP_DELETE_PREFIX;
			if (store_key_matches(ops[i].key, ops[j].key, prefix))
				return shoal_err_set(err, EINVAL,
						     "txn %s ops write %.*s more than once", branch,
						     KEY_IN_MSG, ops[i].key);
		}
	}
	return 0;
}

static int check_cmps(const struct store_cmp *cmps, size_t n, struct shoal_err *err)
{
	if (n > 0 && !cmps)
		return shoal_err_set(err, EINVAL, "txn compares are missing");
	if (n > STORE_TXN_OPS_MAX)
		return shoal_err_set(err, E2BIG, "txn has %zu compares; the limit is %d", n,
				     STORE_TXN_OPS_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct store_cmp *c = &cmps[i];
		int r = check_key(c->key, false, err);
		if (r < 0)
			return r;
		if ((unsigned)c->target > STORE_CMP_VALUE)
			return shoal_err_set(err, EINVAL, "compare %zu has unknown target %d", i,
					     (int)c->target);
		if ((unsigned)c->op > STORE_CMP_GT)
			return shoal_err_set(err, EINVAL, "compare %zu has unknown operator %d", i,
					     (int)c->op);
		if (c->target == STORE_CMP_VALUE) {
			r = check_value(c->key, c->value, c->value_len, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int store_open(const struct store_options *opts, struct store **ret, struct shoal_err *err)
{
	if (!opts || !ret)
		return shoal_err_set(err, EINVAL, "store options are missing");
	const char *name = opts->backend && *opts->backend ? opts->backend : "sqlite";

	for (size_t i = 0; i < ARRAY_SIZE(backends); i++) {
		if (strcmp(backends[i]->name, name) != 0)
			continue;
		struct store *s = NULL;
		int r = backends[i]->open(opts, &s, err);
		if (r < 0)
			return r;
		s->ops = backends[i];
		s->base = opts->base;
		*ret = s;
		return 0;
	}
	return shoal_err_set(err, EOPNOTSUPP,
			     "unknown store backend %s; this build has: sqlite, etcd", name);
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

int store_get(struct store *s, const char *key, bool prefix, size_t limit, struct store_kvs **ret,
	      struct shoal_err *err)
{
	int r = check_key(key, prefix, err);
	if (r < 0)
		return r;
	if (!ret)
		return shoal_err_set(err, EINVAL, "no place for the result");
	return s->ops->get(s, key, prefix, limit, ret, err);
}

int store_put(struct store *s, const char *key, const char *value, size_t len, int64_t lease,
	      int64_t *ret_revision, struct shoal_err *err)
{
	int r = check_key(key, false, err);
	if (r < 0)
		return r;
	r = check_value(key, value, len, err);
	if (r < 0)
		return r;
	r = check_lease_id(lease, err);
	if (r < 0)
		return r;
	return s->ops->put(s, key, value, len, lease, ret_revision, err);
}

int store_delete(struct store *s, const char *key, bool prefix, int64_t *ret_deleted,
		 struct shoal_err *err)
{
	int r = check_key(key, prefix, err);
	if (r < 0)
		return r;
	return s->ops->delete (s, key, prefix, ret_deleted, err);
}

int store_txn(struct store *s, const struct store_cmp *cmps, size_t n_cmps,
	      const struct store_op *success, size_t n_success, const struct store_op *failure,
	      size_t n_failure, struct store_txn_result *ret, struct shoal_err *err)
{
	if (!ret)
		return shoal_err_set(err, EINVAL, "no place for the txn result");
	int r = check_cmps(cmps, n_cmps, err);
	if (r < 0)
		return r;
	r = check_ops("success", success, n_success, err);
	if (r < 0)
		return r;
	r = check_ops("failure", failure, n_failure, err);
	if (r < 0)
		return r;
	return s->ops->txn(s, cmps, n_cmps, success, n_success, failure, n_failure, ret, err);
}

int store_watch(struct store *s, const char *key, bool prefix, int64_t start_revision,
		store_watch_cb cb, void *userdata, struct store_watch **ret, struct shoal_err *err)
{
	int r = check_key(key, prefix, err);
	if (r < 0)
		return r;
	if (!cb || !ret)
		return shoal_err_set(err, EINVAL,
				     "watch needs a callback and a place for the handle");
	if (start_revision < 0)
		return shoal_err_set(err, EINVAL, "watch start revision %lld is negative",
				     (long long)start_revision);
	return s->ops->watch(s, key, prefix, start_revision, cb, userdata, ret, err);
}

void store_watch_cancel(struct store_watch *w)
{
	if (w)
		w->store->ops->watch_cancel(w);
}

int store_lease_grant(struct store *s, int64_t ttl_s, int64_t *ret_id, struct shoal_err *err)
{
	if (ttl_s <= 0 || ttl_s > STORE_LEASE_TTL_MAX)
		return shoal_err_set(err, EINVAL, "lease TTL %lld s is out of range 1..%lld",
				     (long long)ttl_s, STORE_LEASE_TTL_MAX);
	if (!ret_id)
		return shoal_err_set(err, EINVAL, "no place for the lease id");
	return s->ops->lease_grant(s, ttl_s, ret_id, err);
}

int store_lease_keepalive(struct store *s, int64_t id, struct shoal_err *err)
{
	if (id <= 0)
		return shoal_err_set(err, EINVAL, "lease id %lld is not valid", (long long)id);
	return s->ops->lease_keepalive(s, id, err);
}

int store_lease_revoke(struct store *s, int64_t id, struct shoal_err *err)
{
	if (id <= 0)
		return shoal_err_set(err, EINVAL, "lease id %lld is not valid", (long long)id);
	return s->ops->lease_revoke(s, id, err);
}

int store_compact(struct store *s, int64_t revision, struct shoal_err *err)
{
	if (revision <= 0)
		return shoal_err_set(err, EINVAL, "compaction revision %lld is not valid",
				     (long long)revision);
	return s->ops->compact(s, revision, err);
}

/* Keeping a lease alive from a timer, for backends whose keep-alive is a quick local call. */
struct timer_keeper {
	struct store_lease_keeper pub;
	struct event *ev;
	int64_t id;
	store_lease_lost_cb cb;
	void *userdata;
};

static void timer_keeper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timer_keeper *k = arg;
	struct shoal_err err = {};

	int r = k->pub.store->ops->lease_keepalive(k->pub.store, k->id, &err);
	if (r >= 0)
		k->pub.renewed_ns = now_ns();
	if (r == -ENOENT) {
		event_del(k->ev);
		k->cb(k->id, &err, k->userdata);
	}
}

int store_lease_keep(struct store *s, int64_t id, int64_t ttl_s, store_lease_lost_cb cb,
		     void *userdata, struct store_lease_keeper **ret, struct shoal_err *err)
{
	if (id <= 0)
		return shoal_err_set(err, EINVAL, "lease id %lld is not valid", (long long)id);
	if (ttl_s <= 0 || ttl_s > STORE_LEASE_TTL_MAX)
		return shoal_err_set(err, EINVAL, "lease TTL %lld s is out of range 1..%lld",
				     (long long)ttl_s, STORE_LEASE_TTL_MAX);
	if (!cb || !ret)
		return shoal_err_set(err, EINVAL,
				     "keeping a lease needs a callback and a place for the handle");
	if (!s->base)
		return shoal_err_set(err, EINVAL,
				     "keeping lease %lld alive needs an event loop; open the store "
				     "with one",
				     (long long)id);
	if (s->ops->lease_keep)
		return s->ops->lease_keep(s, id, ttl_s, cb, userdata, ret, err);

	struct timer_keeper *k = calloc(1, sizeof(*k));
	if (!k)
		return shoal_err_set(err, ENOMEM, "out of memory");
	k->pub.store = s;
	k->pub.renewed_ns = now_ns();
	k->id = id;
	k->cb = cb;
	k->userdata = userdata;
	k->ev = event_new(s->base, -1, EV_PERSIST, timer_keeper_cb, k);
	/* A third of the TTL leaves two more tries before the lease runs out. */
	int64_t ms = ttl_s * 1000 / 3;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if (!k->ev || event_add(k->ev, &tv) < 0) {
		if (k->ev)
			event_free(k->ev);
		free(k);
		return shoal_err_set(err, ENOMEM, "cannot create the keep-alive timer");
	}
	*ret = &k->pub;
	return 0;
}

int64_t store_lease_keeper_renewed_ns(const struct store_lease_keeper *k)
{
	/* an etcd store's keep-alive thread writes it */
	return k ? __atomic_load_n(&k->renewed_ns, __ATOMIC_RELAXED) : 0;
}

void store_lease_keeper_stop(struct store_lease_keeper *k)
{
	if (!k)
		return;
	if (k->store->ops->lease_keeper_stop) {
		k->store->ops->lease_keeper_stop(k);
		return;
	}
	struct timer_keeper *tk = (struct timer_keeper *)k;
	event_free(tk->ev);
	free(tk);
}
