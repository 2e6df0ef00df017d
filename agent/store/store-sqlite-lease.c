// SPDX-License-Identifier: Apache-2.0
/*
 * Leases of the SQLite backend. A lease's deadline is wall time in the lease table;
 * one timer on the event loop fires at the earliest deadline and removes the leases
 * that ran out, with their keys, each in a write of its own.
 */
#include <errno.h>
#include <stdlib.h>

#include "agent/store/store-sqlite-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define LEASE_EXPIRE_BATCH 64
/* After a failed expiry (disk full, database locked) the timer retries this late. */
#define LEASE_RETRY_NS 1000000000LL
#define NSEC_PER_SEC   1000000000LL

int sq_lease_check(struct sq_store *sq, int64_t lease, const char *key, struct shoal_err *err)
{
	_cleanup_reset_ sqlite3_stmt *st = NULL;
	int r = sq_stmt(sq, ST_LEASE_GET, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, lease);
	r = sq_step(sq, st, err, "reading a lease");
	if (r < 0)
		return r;
	if (r != SQLITE_ROW && key)
		return shoal_err_set(err, ENOENT, "lease %lld for %s not found; grant a new one",
				     (long long)lease, key);
	if (r != SQLITE_ROW)
		return shoal_err_set(err, ENOENT, "lease %lld not found", (long long)lease);
	return 0;
}

/* Deletes a lease and its keys in one write of its own. */
static int sq_lease_remove(struct sq_store *sq, int64_t id, struct shoal_err *err)
{
	struct sq_write wr;
	sqlite3_stmt *st;
	int r;

	r = sq_write_begin(sq, &wr, err);
	if (r < 0)
		return r;
	r = sq_lease_check(sq, id, NULL, err);
	if (r < 0)
		goto fail;

	r = sq_stmt(sq, ST_HIST_DELETE_LEASE, &st, err);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, wr.rev);
	sqlite3_bind_int64(st, 2, wr.sub);
	sqlite3_bind_int64(st, 3, id);
	r = sq_run(sq, st, err, "recording history");
	if (r < 0)
		goto fail;
	wr.sub += sqlite3_changes64(sq->db);

	r = sq_stmt(sq, ST_KV_DELETE_LEASE, &st, err);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	r = sq_run(sq, st, err, "deleting leased keys");
	if (r < 0)
		goto fail;

	r = sq_stmt(sq, ST_LEASE_DELETE, &st, err);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	r = sq_run(sq, st, err, "deleting a lease");
	if (r < 0)
		goto fail;

	/* The keys are not at hand; every watch looks. */
	sq_touch(&wr, "", true);
	return sq_write_commit(sq, &wr, NULL, err);
fail:
	sq_rollback(sq);
	return r;
}

/* Removes every lease whose deadline has passed. */
int sq_expire_leases(struct sq_store *sq, struct shoal_err *err)
{
	for (;;) {
		int64_t ids[LEASE_EXPIRE_BATCH];
		size_t n = 0;
		int r;
		{
			_cleanup_reset_ sqlite3_stmt *st = NULL;
			r = sq_stmt(sq, ST_LEASE_EXPIRED, &st, err);
			if (r < 0)
				return r;
			sqlite3_bind_int64(st, 1, now_ns());
			sqlite3_bind_int64(st, 2, LEASE_EXPIRE_BATCH);
			while ((r = sq_step(sq, st, err, "reading leases")) == SQLITE_ROW)
				ids[n++] = sqlite3_column_int64(st, 0);
			if (r < 0)
				return r;
		}
		for (size_t i = 0; i < n; i++) {
			r = sq_lease_remove(sq, ids[i], err);
			/* Another handle on the same file may have expired it first. */
			if (r < 0 && r != -ENOENT)
				return r;
		}
		if (n < LEASE_EXPIRE_BATCH)
			return 0;
	}
}

void sq_lease_timer_arm(struct sq_store *sq, bool retry)
{
	_cleanup_reset_ sqlite3_stmt *st = NULL;
	int64_t delay;

	if (!sq->lease_timer)
		return;
	if (sq_stmt(sq, ST_LEASE_NEXT, &st, NULL) < 0 ||
	    sq_step(sq, st, NULL, "reading leases") != SQLITE_ROW) {
		delay = LEASE_RETRY_NS;
	} else if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		event_del(sq->lease_timer);
		return;
	} else {
		delay = sqlite3_column_int64(st, 0) - now_ns();
		if (delay < 0)
			delay = 0;
		if (retry && delay < LEASE_RETRY_NS)
			delay = LEASE_RETRY_NS;
	}
	/* Rounded up to whole microseconds so the timer never fires before the deadline. */
	int64_t us = (delay + 999) / 1000;
	struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};
	event_add(sq->lease_timer, &tv);
}

void sq_lease_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sq_store *sq = arg;
	int r = sq_expire_leases(sq, NULL);
	sq_lease_timer_arm(sq, r < 0);
}

int sq_lease_grant(struct store *s, int64_t ttl_s, int64_t *ret_id, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	sqlite3_stmt *st;
	int64_t id;
	int r;

	if (!sq->base)
		return shoal_err_set(err, EINVAL,
				     "leases need an event loop; open the store with one");
	r = sq_exec_id(sq, ST_BEGIN_IMMEDIATE, err, "starting a write");
	if (r < 0)
		return r;
	r = sq_meta_get(sq, "next_lease", &id, err);
	if (r < 0)
		goto fail;
	r = sq_stmt(sq, ST_LEASE_INSERT, &st, err);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, ttl_s);
	sqlite3_bind_int64(st, 3, now_ns() + ttl_s * NSEC_PER_SEC);
	r = sq_run(sq, st, err, "granting a lease");
	if (r < 0)
		goto fail;
	r = sq_meta_set(sq, "next_lease", id + 1, err);
	if (r < 0)
		goto fail;
	r = sq_exec_id(sq, ST_COMMIT, err, "committing");
	if (r < 0)
		goto fail;
	sq_lease_timer_arm(sq, false);
	*ret_id = id;
	return 0;
fail:
	sq_rollback(sq);
	return r;
}

int sq_lease_keepalive(struct store *s, int64_t id, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	sqlite3_stmt *st;

	int r = sq_stmt(sq, ST_LEASE_KEEPALIVE, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ns());
	r = sq_run(sq, st, err, "renewing a lease");
	if (r < 0)
		return r;
	if (sqlite3_changes64(sq->db) == 1) {
		sq_lease_timer_arm(sq, false);
		return 0;
	}

	/* Unknown, or past its deadline with the timer not run yet: then it expires now. */
	r = sq_lease_remove(sq, id, err);
	sq_lease_timer_arm(sq, false);
	if (r < 0 && r != -ENOENT)
		return r;
	return shoal_err_set(err, ENOENT, "lease %lld not found or expired; grant a new one",
			     (long long)id);
}

int sq_lease_revoke(struct store *s, int64_t id, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	int r = sq_lease_remove(sq, id, err);
	sq_lease_timer_arm(sq, false);
	return r;
}
