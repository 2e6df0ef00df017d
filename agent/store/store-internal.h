/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "agent/store/store.h"

/* Limits shared by every backend, the same as etcd's defaults so that a
 * program that works against one backend works against the other. */
#define STORE_KEY_MAX	    1024
#define STORE_VALUE_MAX	    (3 * 512 * 1024) /* etcd's --max-request-bytes, 1.5 MiB */
#define STORE_TXN_OPS_MAX   128		     /* etcd's --max-txn-ops */
#define STORE_LEASE_TTL_MAX 9000000000LL     /* etcd's MaxLeaseTTL, seconds */

/* A backend. Arguments are validated by store.c (key and value sizes, txn op
 * counts, overlapping writes in one txn) before they reach these. */
struct store_ops {
	const char *name;
	int (*open)(const struct store_options *opts, struct store **ret, struct shoal_err *err);
	int (*get)(struct store *s, const char *key, bool prefix, size_t limit,
		   struct store_kvs **ret, struct shoal_err *err);
	int (*put)(struct store *s, const char *key, const char *value, size_t len, int64_t lease,
		   int64_t *ret_revision, struct shoal_err *err);
	int (*delete)(struct store *s, const char *key, bool prefix, int64_t *ret_deleted,
		      struct shoal_err *err);
	int (*txn)(struct store *s, const struct store_cmp *cmps, size_t n_cmps,
		   const struct store_op *success, size_t n_success, const struct store_op *failure,
		   size_t n_failure, struct store_txn_result *ret, struct shoal_err *err);
	int (*watch)(struct store *s, const char *key, bool prefix, int64_t start_revision,
		     store_watch_cb cb, void *userdata, struct store_watch **ret,
		     struct shoal_err *err);
	void (*watch_cancel)(struct store_watch *w);
	int (*lease_grant)(struct store *s, int64_t ttl_s, int64_t *ret_id, struct shoal_err *err);
	int (*lease_keepalive)(struct store *s, int64_t id, struct shoal_err *err);
	int (*lease_revoke)(struct store *s, int64_t id, struct shoal_err *err);
	/* Optional: without them store.c renews from a timer with lease_keepalive, which
	 * must then not block. */
	int (*lease_keep)(struct store *s, int64_t id, int64_t ttl_s, store_lease_lost_cb cb,
			  void *userdata, struct store_lease_keeper **ret, struct shoal_err *err);
	void (*lease_keeper_stop)(struct store_lease_keeper *k);
	int (*compact)(struct store *s, int64_t revision, struct shoal_err *err);
	void (*close)(struct store *s);
};

/* Every backend's store and watch begin with these. */
struct store {
	const struct store_ops *ops;
	struct event_base *base; /* opts->base, set by store_open */
};

struct store_watch {
	struct store *store;
};

struct store_lease_keeper {
	struct store *store;
	int64_t renewed_ns; /* monotonic time of the last renewal the store confirmed */
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_etcd_ops;

/* Helpers for backends. */

/* The first key after every key that starts with prefix (etcd's GetPrefixRangeEnd):
 * the prefix with its last byte below 0xff incremented and the rest dropped.
 * Returns 0 and *ret = NULL when there is no such key (every byte is 0xff), or
 * -ENOMEM. *ret_len gets the length of the result. */
int store_prefix_end(const char *prefix, char **ret, size_t *ret_len);
/* True when key lies in the watched key (or prefix). */
bool store_key_matches(const char *key, const char *watched, bool prefix);
/* True when a write to key (or under prefix) may touch what a watch covers. */
bool store_ranges_overlap(const char *a, bool a_prefix, const char *b, bool b_prefix);
/* Frees the members of one kv (not kv itself). */
void store_kv_clear(struct store_kv *kv);
