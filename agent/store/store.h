/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/*
 * The cluster store: a revisioned key-value store with the semantics of etcd v3,
 * so that the SQLite backend (one node, nothing else to run) and the etcd
 * backend (several nodes) are interchangeable behind one ops table.
 *
 * - Every write bumps a store-wide revision; each key keeps create_revision,
 *   mod_revision and version, exactly as etcd's mvccpb.KeyValue.
 * - Txn: all compares true -> the success ops, else the failure ops; atomic.
 * - Watch: events (put/delete) for a key or prefix from a start revision,
 *   delivered in revision order; history is kept back to the compaction point.
 * - Leases: a TTL; keys attached to a lease are deleted when it expires or is
 *   revoked. Keep-alive renews it.
 *
 * Values are opaque bytes (shoal stores JSON). Keys are '/'-separated strings.
 * All functions return >= 0 on success or -errno, and fill err with a message.
 */

struct store;

struct store_kv {
	char *key;
	char *value; /* NUL-terminated for convenience; value_len excludes it */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease; /* 0 = none */
};

struct store_kvs {
	struct store_kv *kvs;
	size_t n;
	int64_t revision; /* store revision at which the read was served */
	bool more;	  /* limit cut the result */
};

enum store_cmp_target { STORE_CMP_MOD, STORE_CMP_CREATE, STORE_CMP_VERSION, STORE_CMP_VALUE };
enum store_cmp_op { STORE_CMP_EQ, STORE_CMP_NE, STORE_CMP_LT, STORE_CMP_GT };

struct store_cmp {
	const char *key;
	enum store_cmp_target target;
	enum store_cmp_op op;
	int64_t num;	   /* for MOD, CREATE, VERSION (0 = key absent) */
	const char *value; /* for VALUE */
	size_t value_len;
};

enum store_op_type { STORE_OP_PUT, STORE_OP_DELETE, STORE_OP_DELETE_PREFIX, STORE_OP_GET };

struct store_op {
	enum store_op_type type;
	const char *key;
	const char *value;
	size_t value_len;
	int64_t lease;
};

struct store_txn_result {
	bool succeeded;
	int64_t revision;	/* revision after the txn */
	struct store_kvs *gets; /* one entry per STORE_OP_GET in the branch taken, in order */
	size_t n_gets;
};

enum store_event_type { STORE_EVENT_PUT, STORE_EVENT_DELETE };

struct store_event {
	enum store_event_type type;
	struct store_kv kv; /* for delete: key and mod_revision set, value empty */
};

/* Called on the agent's event loop thread with a batch of events in revision order.
 * A watch whose start revision was compacted gets err->code == ECANCELED and no events.
 * err is NULL for a batch of events; a non-NULL err ends the watch (no more calls), and the
 * watch must still be released with store_watch_cancel(). A callback may read and write the
 * store and cancel any watch, its own included; it must not close the store. */
typedef void (*store_watch_cb)(const struct store_event *events, size_t n,
			       const struct shoal_err *err, void *userdata);

struct store_watch;
struct event_base;

struct store_options {
	const char *backend; /* "sqlite" (default) or "etcd" */
	const char *path;    /* sqlite: database file */
	/* etcd: comma-separated http(s)://host:port of members of one cluster; requests go to
	 * one of them and move to the next when it cannot be reached. */
	const char *endpoints;
	struct event_base *base; /* loop for watches, lease expiry, keep-alives */
	/* sqlite: history kept for watches from a past revision, in revisions; older history is
	 * compacted as writes go on (a watch that falls further behind gets ECANCELED).
	 * 0 = STORE_HISTORY_DEFAULT, < 0 = keep everything until store_compact(). */
	int64_t history_revisions;
	/* etcd over https: PEM files. cacert verifies the members (NULL = the system's CAs);
	 * cert and key, given together, are this client's certificate for
	 * --client-cert-auth. */
	const char *cacert;
	const char *cert;
	const char *key;
	/* etcd with auth enabled: a user and its password; the token etcd hands out is
	 * fetched again whenever etcd says it is no longer valid. */
	const char *username;
	const char *password;
};

#define STORE_HISTORY_DEFAULT 100000

/* A store is used from one thread (the loop's). Several stores may open the same sqlite file,
 * in one process or several: writes serialise and revisions stay consistent, but a watch
 * sees another handle's writes only when its own handle next wakes it. Without opts->base,
 * reads and writes work; watches and lease grants fail with -EINVAL. */
int store_open(const struct store_options *opts, struct store **ret, struct shoal_err *err);
/* Closes the store and frees every watch still open on it. */
void store_close(struct store *s);

/* Get one key (ret->n is 0 or 1) or, with prefix=true, every key under it in key order.
 * limit 0 = no limit. */
int store_get(struct store *s, const char *key, bool prefix, size_t limit, struct store_kvs **ret,
	      struct shoal_err *err);
int store_put(struct store *s, const char *key, const char *value, size_t len, int64_t lease,
	      int64_t *ret_revision, struct shoal_err *err);
/* Deletes a key, or with prefix=true all under it; ret_deleted may be NULL. */
int store_delete(struct store *s, const char *key, bool prefix, int64_t *ret_deleted,
		 struct shoal_err *err);
int store_txn(struct store *s, const struct store_cmp *cmps, size_t n_cmps,
	      const struct store_op *success, size_t n_success, const struct store_op *failure,
	      size_t n_failure, struct store_txn_result *ret, struct shoal_err *err);

/* Watch key (or prefix) from start_revision (0 = from now). */
int store_watch(struct store *s, const char *key, bool prefix, int64_t start_revision,
		store_watch_cb cb, void *userdata, struct store_watch **ret, struct shoal_err *err);
void store_watch_cancel(struct store_watch *w);

int store_lease_grant(struct store *s, int64_t ttl_s, int64_t *ret_id, struct shoal_err *err);
int store_lease_keepalive(struct store *s, int64_t id, struct shoal_err *err);
int store_lease_revoke(struct store *s, int64_t id, struct shoal_err *err);

/* Keeps a lease alive: renews it every third of ttl_s until stopped (etcd: from a thread of
 * the store's own, every lease of the handle in one request, so that a busy loop delays
 * none). When the store says the lease is gone (expired or revoked), cb gets err->code ==
 * ENOENT once (on the loop) and renewing stops; the keeper must still be released with
 * store_lease_keeper_stop(). A store that cannot be reached is retried, not reported: only
 * the store decides that a lease ended. Needs the store's event loop; stop every keeper
 * before closing the store. */
struct store_lease_keeper;
typedef void (*store_lease_lost_cb)(int64_t id, const struct shoal_err *err, void *userdata);
int store_lease_keep(struct store *s, int64_t id, int64_t ttl_s, store_lease_lost_cb cb,
		     void *userdata, struct store_lease_keeper **ret, struct shoal_err *err);
void store_lease_keeper_stop(struct store_lease_keeper *k);
/* When the store last confirmed a renewal (now_ns() clock; the keep's start at first): a
 * holder that has not heard from the store for its TTL must act as if the lease were gone
 * (a leader steps down) even while the store cannot be reached to say so. */
int64_t store_lease_keeper_renewed_ns(const struct store_lease_keeper *k);
/* Drop history older than revision. */
int store_compact(struct store *s, int64_t revision, struct shoal_err *err);

void store_kvs_free(struct store_kvs *kvs);
void store_txn_result_clear(struct store_txn_result *r);
