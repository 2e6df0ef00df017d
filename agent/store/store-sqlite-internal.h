/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the SQLite backend: its handle, its statements and the helpers its
 * files (store-sqlite.c, store-sqlite-watch.c, store-sqlite-lease.c) share. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "agent/store/store-internal.h"
#include "lib/cleanup.h"

enum event_kind { EV_KIND_PUT = 0, EV_KIND_DELETE = 1 };

enum stmt_id {
	ST_BEGIN_IMMEDIATE,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_META_GET,
	ST_META_SET,
	ST_KV_RANGE,
	ST_KV_PUT_META,
	ST_KV_UPSERT,
	ST_KV_DELETE_RANGE,
	ST_KV_DELETE_LEASE,
	ST_HIST_PUT,
	ST_HIST_DELETE_RANGE,
	ST_HIST_DELETE_LEASE,
	ST_HIST_RANGE,
	ST_HIST_COMPACT,
	ST_LEASE_INSERT,
	ST_LEASE_GET,
	ST_LEASE_DELETE,
	ST_LEASE_KEEPALIVE,
	ST_LEASE_EXPIRED,
	ST_LEASE_NEXT,
	ST__MAX
};

struct sq_watch {
	struct store_watch pub;
	struct sq_store *sq;
	struct sq_watch *prev, *next;
	char *key;
	bool prefix;
	/* The watched keys are [key, end). */
	char *end;
	size_t end_len;
	/* Next event to deliver. */
	int64_t next_rev, next_sub;
	store_watch_cb cb;
	void *userdata;
	struct event *ev;
	bool queued; /* made active, callback not run yet */
	bool in_cb;
	bool cancelled; /* cancelled from its own callback; freed when it returns */
	bool dead;	/* ended with an error; waits for store_watch_cancel */
};

struct sq_store {
	struct store pub;
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmts[ST__MAX];
	struct event_base *base;
	struct event *lease_timer;
	struct event *vacuum_timer;
	struct sq_watch *watches;
	int64_t history_keep; /* revisions of history to keep; 0 = all */
};

/* One write transaction in progress. */
struct sq_write {
	int64_t rev; /* the revision this write creates if it changes anything */
	int64_t sub; /* events recorded at rev so far */
	/* What the write touched, to wake only the watches it concerns. */
	struct {
		const char *key;
		bool prefix;
	} touched[STORE_TXN_OPS_MAX];
	size_t n_touched;
	int64_t compacted_to; /* > 0: this write also compacted history below it */
};

#define SQ(s)  ((struct sq_store *)(s))
#define SQW(w) ((struct sq_watch *)(w))

static inline void sq_stmt_resetp(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_reset(*st);
}
#define _cleanup_reset_ _cleanup_(sq_stmt_resetp)

/* Statements and transactions (store-sqlite.c). */

/* Turns a SQLite result code into -errno with a message naming what and the file. */
int sq_fail(struct sq_store *sq, int rc, struct shoal_err *err, const char *what);
/* The prepared statement id, reset and unbound. */
int sq_stmt(struct sq_store *sq, enum stmt_id id, sqlite3_stmt **ret, struct shoal_err *err);
/* Binds bytes as a BLOB; zero bytes are an empty BLOB, never NULL. */
void sq_bind_bytes(sqlite3_stmt *st, int idx, const void *p, size_t n);
void sq_bind_key(sqlite3_stmt *st, int idx, const char *key);
/* Steps st once; SQLITE_ROW and SQLITE_DONE are returned, errors become -errno. */
int sq_step(struct sq_store *sq, sqlite3_stmt *st, struct shoal_err *err, const char *what);
/* Runs a statement to completion, ignoring rows. */
int sq_run(struct sq_store *sq, sqlite3_stmt *st, struct shoal_err *err, const char *what);
int sq_exec_id(struct sq_store *sq, enum stmt_id id, struct shoal_err *err, const char *what);
/* Rolls back the open transaction, if there is one. */
void sq_rollback(struct sq_store *sq);
int sq_meta_get(struct sq_store *sq, const char *name, int64_t *ret, struct shoal_err *err);
int sq_meta_set(struct sq_store *sq, const char *name, int64_t value, struct shoal_err *err);
/* The store revision and the compaction point, in the caller's transaction. */
int sq_revisions_get(struct sq_store *sq, int64_t *ret_revision, int64_t *ret_compacted,
		     struct shoal_err *err);
/* [key, end) for a key or a prefix; *ret is malloc'ed. */
int sq_range_end(const char *key, bool prefix, char **ret, size_t *ret_len);
/* A NUL-terminated copy of a BLOB column, or NULL when out of memory. */
char *sq_column_dup(sqlite3_stmt *st, int col, size_t *ret_len);
/* Opens a write transaction; wr->rev is the revision it creates if it changes anything. */
int sq_write_begin(struct sq_store *sq, struct sq_write *wr, struct shoal_err *err);
/* Commits wr (rolling back on failure) and wakes the watches it concerns. */
int sq_write_commit(struct sq_store *sq, struct sq_write *wr, int64_t *ret_revision,
		    struct shoal_err *err);
/* Records that wr wrote key (or every key under prefix). */
void sq_touch(struct sq_write *wr, const char *key, bool prefix);

/* Watches (store-sqlite-watch.c). */

/* After a commit of revision wr->rev: queues the watches it concerns. */
void sq_notify(struct sq_store *sq, const struct sq_write *wr);
/* Watches still behind the compaction point learn it now. */
void sq_watches_compacted(struct sq_store *sq, int64_t revision);
void sq_watch_free(struct sq_watch *w);
int sq_watch(struct store *s, const char *key, bool prefix, int64_t start_revision,
	     store_watch_cb cb, void *userdata, struct store_watch **ret, struct shoal_err *err);
void sq_watch_cancel(struct store_watch *pw);

/* Leases (store-sqlite-lease.c). */

/* 0 when lease exists; -ENOENT naming key (when not NULL) otherwise. */
int sq_lease_check(struct sq_store *sq, int64_t lease, const char *key, struct shoal_err *err);
/* Removes every lease whose deadline has passed. */
int sq_expire_leases(struct sq_store *sq, struct shoal_err *err);
/* Sets the lease timer to the earliest deadline; retry: not sooner than a retry delay. */
void sq_lease_timer_arm(struct sq_store *sq, bool retry);
void sq_lease_timer_cb(evutil_socket_t fd, short what, void *arg);
int sq_lease_grant(struct store *s, int64_t ttl_s, int64_t *ret_id, struct shoal_err *err);
int sq_lease_keepalive(struct store *s, int64_t id, struct shoal_err *err);
int sq_lease_revoke(struct store *s, int64_t id, struct shoal_err *err);
