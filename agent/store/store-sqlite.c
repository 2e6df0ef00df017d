// SPDX-License-Identifier: Apache-2.0
/*
 * The SQLite backend: etcd v3 semantics in one database file.
 *
 * kv holds the current value of every key, history one row per event
 * (rev, sub) where sub orders the events of one revision, lease the live leases
 * with their deadlines as wall time (so that leases that ran out while the agent
 * was down expire when it comes back), meta the store revision, the compaction
 * point and the next lease id. Keys and values are BLOBs compared with memcmp,
 * which gives etcd's byte order and lets values carry NUL bytes.
 *
 * Every write runs in one BEGIN IMMEDIATE transaction: the revision is read,
 * bumped once if anything changed, and committed with the data or not at all.
 * This file holds the statements, reads, writes and transactions, compaction and
 * opening; watches are in store-sqlite-watch.c, leases in store-sqlite-lease.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/store/store-sqlite-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define SCHEMA_VERSION	1
#define BUSY_TIMEOUT_MS 5000

/* Space the store no longer uses goes back to the file system: the database is
 * in auto_vacuum=INCREMENTAL mode, and free pages are handed back a batch at a
 * time from a timer (never inside a write, so that no request waits on it),
 * and all of them at open. The WAL is kept to a size after each checkpoint. */
#define VACUUM_INTERVAL_S  30	     /* how often free pages are looked at */
#define VACUUM_BATCH_PAGES 2048	     /* pages freed per timer turn (8 MiB of 4k pages) */
#define VACUUM_MIN_FREE	   (1 << 20) /* bytes of free pages worth a vacuum */
#define WAL_SIZE_LIMIT	   "4194304" /* journal_size_limit: the WAL after a checkpoint */

/* A delete event, at revision ?1 and from sub ?2 on in key order, for every kv row
 * the WHERE clause that follows picks. */
#define HIST_DELETE_SELECT                                                             \
	"INSERT INTO history(rev, sub, type, key, value, create_rev, version, lease) " \
	"SELECT ?1, ?2 + row_number() OVER (ORDER BY key) - 1, 1, key, x'', 0, 0, 0 "  \
	"FROM kv WHERE "

static const char *const stmt_sql[ST__MAX] = {
	[ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
	[ST_META_SET] = "INSERT INTO meta(name, value) VALUES(?1, ?2) "
			"ON CONFLICT(name) DO UPDATE SET value = excluded.value",
	[ST_KV_RANGE] = "SELECT key, value, create_rev, mod_rev, version, lease FROM kv "
			"WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
	[ST_KV_PUT_META] = "SELECT create_rev, version FROM kv WHERE key = ?1",
	[ST_KV_UPSERT] = "INSERT INTO kv(key, value, create_rev, mod_rev, version, lease) "
			 "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(key) DO UPDATE SET "
			 "value = excluded.value, mod_rev = excluded.mod_rev, "
			 "version = excluded.version, lease = excluded.lease",
	[ST_KV_DELETE_RANGE] = "DELETE FROM kv WHERE key >= ?1 AND key < ?2",
	[ST_KV_DELETE_LEASE] = "DELETE FROM kv WHERE lease = ?1",
	[ST_HIST_PUT] =
		"INSERT INTO history(rev, sub, type, key, value, create_rev, version, lease) "
		"VALUES(?1, ?2, 0, ?3, ?4, ?5, ?6, ?7)",
	[ST_HIST_DELETE_RANGE] = HIST_DELETE_SELECT "key >= ?3 AND key < ?4",
	[ST_HIST_DELETE_LEASE] = HIST_DELETE_SELECT "lease = ?3",
	[ST_HIST_RANGE] = "SELECT rev, sub, type, key, value, create_rev, version, lease "
			  "FROM history WHERE (rev, sub) >= (?1, ?2) AND rev <= ?3 "
			  "AND key >= ?4 AND key < ?5 ORDER BY rev, sub LIMIT ?6",
	[ST_HIST_COMPACT] = "DELETE FROM history WHERE rev < ?1",
	[ST_LEASE_INSERT] = "INSERT INTO lease(id, ttl, deadline_ns) VALUES(?1, ?2, ?3)",
	[ST_LEASE_GET] = "SELECT deadline_ns FROM lease WHERE id = ?1",
	[ST_LEASE_DELETE] = "DELETE FROM lease WHERE id = ?1",
	[ST_LEASE_KEEPALIVE] = "UPDATE lease SET deadline_ns = ?2 + ttl * 1000000000 "
			       "WHERE id = ?1 AND deadline_ns > ?2",
	[ST_LEASE_EXPIRED] = "SELECT id FROM lease WHERE deadline_ns <= ?1 "
			     "ORDER BY deadline_ns LIMIT ?2",
	[ST_LEASE_NEXT] = "SELECT MIN(deadline_ns) FROM lease",
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL,"
	" lease INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease) WHERE lease != 0;"
	"CREATE TABLE IF NOT EXISTS history (rev INTEGER NOT NULL, sub INTEGER NOT NULL,"
	" type INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL,"
	" PRIMARY KEY (rev, sub)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL,"
	" deadline_ns INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS lease_deadline ON lease(deadline_ns);"
	/* etcd starts at revision 1: the first write gets revision 2. */
	"INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', 1), ('revision', 1),"
	" ('compact_revision', 0), ('next_lease', 1);";

struct sq_store;

int sq_fail(struct sq_store *sq, int rc, struct shoal_err *err, const char *what)
{
	int code;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = EBUSY;
		break;
	case SQLITE_NOMEM:
		code = ENOMEM;
		break;
	case SQLITE_FULL:
		/* 507 Insufficient Storage, and what to do: nothing was written. */
		return shoal_err_set_status(err, 507, ENOSPC,
					    "%s: the disk of %s is full; nothing was written (free "
					    "space there and retry)",
					    what, sq->path);
	case SQLITE_READONLY:
		code = EROFS;
		break;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		code = EACCES;
		break;
	case SQLITE_TOOBIG:
		code = E2BIG;
		break;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		code = sq->db ? sqlite3_system_errno(sq->db) : 0;
		if (code <= 0)
			code = EIO;
		break;
	default:
		code = EIO;
		break;
	}
	return shoal_err_set(err, code, "%s: %s (%s)", what,
			     sq->db ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc), sq->path);
}

int sq_stmt(struct sq_store *sq, enum stmt_id id, sqlite3_stmt **ret, struct shoal_err *err)
{
	if (!sq->stmts[id]) {
		int rc = sqlite3_prepare_v3(sq->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &sq->stmts[id], NULL);
		if (rc != SQLITE_OK)
			return sq_fail(sq, rc, err, "preparing a statement");
	}
	sqlite3_reset(sq->stmts[id]);
	sqlite3_clear_bindings(sq->stmts[id]);
	*ret = sq->stmts[id];
	return 0;
}

/* Binds bytes as a BLOB; zero bytes are an empty BLOB, never NULL. */
void sq_bind_bytes(sqlite3_stmt *st, int idx, const void *p, size_t n)
{
	if (n == 0)
		sqlite3_bind_zeroblob(st, idx, 0);
	else
		sqlite3_bind_blob64(st, idx, p, n, SQLITE_STATIC);
}

void sq_bind_key(sqlite3_stmt *st, int idx, const char *key)
{
	sq_bind_bytes(st, idx, key, strlen(key));
}

/* Steps st once; SQLITE_ROW and SQLITE_DONE are returned, errors become -errno. */
int sq_step(struct sq_store *sq, sqlite3_stmt *st, struct shoal_err *err, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	return sq_fail(sq, rc, err, what);
}

/* Runs a statement to completion, ignoring rows. */
int sq_run(struct sq_store *sq, sqlite3_stmt *st, struct shoal_err *err, const char *what)
{
	int r;
	do {
		r = sq_step(sq, st, err, what);
	} while (r == SQLITE_ROW);
	sqlite3_reset(st);
	return r < 0 ? r : 0;
}

int sq_exec_id(struct sq_store *sq, enum stmt_id id, struct shoal_err *err, const char *what)
{
	sqlite3_stmt *st;
	int r = sq_stmt(sq, id, &st, err);
	if (r < 0)
		return r;
	return sq_run(sq, st, err, what);
}

void sq_rollback(struct sq_store *sq)
{
	if (!sqlite3_get_autocommit(sq->db))
		sq_exec_id(sq, ST_ROLLBACK, NULL, "rolling back");
}

int sq_meta_get(struct sq_store *sq, const char *name, int64_t *ret, struct shoal_err *err)
{
	_cleanup_reset_ sqlite3_stmt *st = NULL;
	int r = sq_stmt(sq, ST_META_GET, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = sq_step(sq, st, err, "reading the store revision");
	if (r < 0)
		return r;
	if (r != SQLITE_ROW)
		return shoal_err_set(err, EIO, "store metadata %s is missing (%s)", name, sq->path);
	*ret = sqlite3_column_int64(st, 0);
	return 0;
}

int sq_meta_set(struct sq_store *sq, const char *name, int64_t value, struct shoal_err *err)
{
	sqlite3_stmt *st;
	int r = sq_stmt(sq, ST_META_SET, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	return sq_run(sq, st, err, "writing the store revision");
}

int sq_revisions_get(struct sq_store *sq, int64_t *ret_revision, int64_t *ret_compacted,
		     struct shoal_err *err)
{
	int64_t cur, compacted;
	int r = sq_meta_get(sq, "revision", &cur, err);
	if (r < 0)
		return r;
	r = sq_meta_get(sq, "compact_revision", &compacted, err);
	if (r < 0)
		return r;
	*ret_revision = cur;
	*ret_compacted = compacted;
	return 0;
}

/* [key, end) for a key or a prefix. A key's end is key + NUL, the first blob after
 * it; a prefix with no end covers everything, and a run of 0xff one byte longer
 * than any allowed key stands for that. */
int sq_range_end(const char *key, bool prefix, char **ret, size_t *ret_len)
{
	size_t n = strlen(key);
	char *end;

	if (!prefix) {
		end = malloc(n + 1);
		if (!end)
			return -ENOMEM;
		memcpy(end, key, n);
		end[n] = '\0';
		*ret = end;
		*ret_len = n + 1;
		return 0;
	}
	int r = store_prefix_end(key, &end, ret_len);
	if (r < 0)
		return r;
	if (!end) {
		end = malloc(STORE_KEY_MAX + 1);
		if (!end)
			return -ENOMEM;
		memset(end, 0xff, STORE_KEY_MAX + 1);
		*ret_len = STORE_KEY_MAX + 1;
	}
	*ret = end;
	return 0;
}

char *sq_column_dup(sqlite3_stmt *st, int col, size_t *ret_len)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	if (!p && n > 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	if (n > 0)
		memcpy(s, p, (size_t)n);
	s[n] = '\0';
	if (ret_len)
		*ret_len = (size_t)n;
	return s;
}

/* Reads the keys in [key, end) into out (which starts empty). */
static int sq_range(struct sq_store *sq, const char *key, bool prefix, size_t limit,
		    struct store_kvs *out, struct shoal_err *err)
{
	_cleanup_free_ char *end = NULL;
	_cleanup_reset_ sqlite3_stmt *st = NULL;
	size_t end_len, cap = 0;
	int r;

	r = sq_range_end(key, prefix, &end, &end_len);
	if (r < 0)
		return shoal_err_set(err, -r, "out of memory");
	r = sq_stmt(sq, ST_KV_RANGE, &st, err);
	if (r < 0)
		return r;
	sq_bind_key(st, 1, key);
	sq_bind_bytes(st, 2, end, end_len);
	/* One row past the limit says whether the limit cut the result. */
	sqlite3_bind_int64(st, 3, limit > 0 ? (int64_t)limit + 1 : -1);

	for (;;) {
		r = sq_step(sq, st, err, "reading keys");
		if (r < 0)
			return r;
		if (r == SQLITE_DONE)
			return 0;
		if (limit > 0 && out->n == limit) {
			out->more = true;
			return 0;
		}
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct store_kv *n = reallocarray(out->kvs, ncap, sizeof(*n));
			if (!n)
				return shoal_err_set(err, ENOMEM, "out of memory reading keys");
			out->kvs = n;
			cap = ncap;
		}
		struct store_kv *kv = &out->kvs[out->n];
		*kv = (struct store_kv){};
		kv->key = sq_column_dup(st, 0, NULL);
		kv->value = sq_column_dup(st, 1, &kv->value_len);
		if (!kv->key || !kv->value) {
			store_kv_clear(kv);
			return shoal_err_set(err, ENOMEM, "out of memory reading keys");
		}
		kv->create_revision = sqlite3_column_int64(st, 2);
		kv->mod_revision = sqlite3_column_int64(st, 3);
		kv->version = sqlite3_column_int64(st, 4);
		kv->lease = sqlite3_column_int64(st, 5);
		out->n++;
	}
}

static void sq_kvs_clear(struct store_kvs *kvs)
{
	for (size_t i = 0; i < kvs->n; i++)
		store_kv_clear(&kvs->kvs[i]);
	free(kvs->kvs);
	*kvs = (struct store_kvs){};
}

/* Writes. */

int sq_write_begin(struct sq_store *sq, struct sq_write *wr, struct shoal_err *err)
{
	int64_t cur;

	wr->sub = 0;
	wr->n_touched = 0;
	wr->compacted_to = 0;
	int r = sq_exec_id(sq, ST_BEGIN_IMMEDIATE, err, "starting a write");
	if (r < 0)
		return r;
	r = sq_meta_get(sq, "revision", &cur, err);
	if (r < 0) {
		sq_rollback(sq);
		return r;
	}
	wr->rev = cur + 1;
	return 0;
}

static int sq_compact_locked(struct sq_store *sq, int64_t revision, struct shoal_err *err)
{
	sqlite3_stmt *st;
	int r = sq_stmt(sq, ST_HIST_COMPACT, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, revision);
	r = sq_run(sq, st, err, "compacting history");
	if (r < 0)
		return r;
	return sq_meta_set(sq, "compact_revision", revision, err);
}

/* Keeps history to about history_keep revisions. It runs once the excess reaches a tenth
 * of that, so that the delete is paid for by many writes, not each one. */
static int sq_auto_compact(struct sq_store *sq, struct sq_write *wr, struct shoal_err *err)
{
	int64_t compacted;

	if (sq->history_keep <= 0)
		return 0;
	int64_t target = wr->rev - sq->history_keep;
	int64_t slack = sq->history_keep / 10 > 0 ? sq->history_keep / 10 : 1;
	if (target <= 0)
		return 0;
	int r = sq_meta_get(sq, "compact_revision", &compacted, err);
	if (r < 0)
		return r;
	if (target - compacted < slack)
		return 0;
	r = sq_compact_locked(sq, target, err);
	if (r < 0)
		return r;
	wr->compacted_to = target;
	return 0;
}

int sq_write_commit(struct sq_store *sq, struct sq_write *wr, int64_t *ret_revision,
		    struct shoal_err *err)
{
	int r;

	if (wr->sub > 0) {
		r = sq_meta_set(sq, "revision", wr->rev, err);
		if (r < 0)
			goto fail;
		r = sq_auto_compact(sq, wr, err);
		if (r < 0)
			goto fail;
	}
	r = sq_exec_id(sq, ST_COMMIT, err, "committing");
	if (r < 0)
		goto fail;
	if (ret_revision)
		*ret_revision = wr->sub > 0 ? wr->rev : wr->rev - 1;
	if (wr->sub > 0)
		sq_notify(sq, wr);
	if (wr->compacted_to > 0)
		sq_watches_compacted(sq, wr->compacted_to);
	return 0;
fail:
	sq_rollback(sq);
	return r;
}

static int sq_apply_put(struct sq_store *sq, struct sq_write *wr, const char *key,
			const char *value, size_t len, int64_t lease, struct shoal_err *err)
{
	int64_t create_rev = wr->rev, version = 1;
	sqlite3_stmt *st;
	int r;

	if (lease != 0) {
		r = sq_lease_check(sq, lease, key, err);
		if (r < 0)
			return r;
	}
	{
		_cleanup_reset_ sqlite3_stmt *q = NULL;
		r = sq_stmt(sq, ST_KV_PUT_META, &q, err);
		if (r < 0)
			return r;
		sq_bind_key(q, 1, key);
		r = sq_step(sq, q, err, "reading a key");
		if (r < 0)
			return r;
		if (r == SQLITE_ROW) {
			create_rev = sqlite3_column_int64(q, 0);
			version = sqlite3_column_int64(q, 1) + 1;
		}
	}

	r = sq_stmt(sq, ST_KV_UPSERT, &st, err);
	if (r < 0)
		return r;
	sq_bind_key(st, 1, key);
	sq_bind_bytes(st, 2, value, len);
	sqlite3_bind_int64(st, 3, create_rev);
	sqlite3_bind_int64(st, 4, wr->rev);
	sqlite3_bind_int64(st, 5, version);
	sqlite3_bind_int64(st, 6, lease);
	r = sq_run(sq, st, err, "writing a key");
	if (r < 0)
		return r;

	r = sq_stmt(sq, ST_HIST_PUT, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, wr->rev);
	sqlite3_bind_int64(st, 2, wr->sub);
	sq_bind_key(st, 3, key);
	sq_bind_bytes(st, 4, value, len);
	sqlite3_bind_int64(st, 5, create_rev);
	sqlite3_bind_int64(st, 6, version);
	sqlite3_bind_int64(st, 7, lease);
	r = sq_run(sq, st, err, "recording history");
	if (r < 0)
		return r;
	wr->sub++;
	sq_touch(wr, key, false);
	return 0;
}

static int sq_apply_delete(struct sq_store *sq, struct sq_write *wr, const char *key, bool prefix,
			   int64_t *ret_deleted, struct shoal_err *err)
{
	_cleanup_free_ char *end = NULL;
	size_t end_len;
	sqlite3_stmt *st;
	int r;

	r = sq_range_end(key, prefix, &end, &end_len);
	if (r < 0)
		return shoal_err_set(err, -r, "out of memory");

	r = sq_stmt(sq, ST_HIST_DELETE_RANGE, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, wr->rev);
	sqlite3_bind_int64(st, 2, wr->sub);
	sq_bind_key(st, 3, key);
	sq_bind_bytes(st, 4, end, end_len);
	r = sq_run(sq, st, err, "recording history");
	if (r < 0)
		return r;
	int64_t recorded = sqlite3_changes64(sq->db);

	r = sq_stmt(sq, ST_KV_DELETE_RANGE, &st, err);
	if (r < 0)
		return r;
	sq_bind_key(st, 1, key);
	sq_bind_bytes(st, 2, end, end_len);
	r = sq_run(sq, st, err, "deleting keys");
	if (r < 0)
		return r;
	int64_t deleted = sqlite3_changes64(sq->db);
	if (deleted != recorded)
		return shoal_err_set(err, EIO, "deleted %lld keys but recorded %lld events (%s)",
				     (long long)deleted, (long long)recorded, sq->path);
	if (deleted > 0) {
		wr->sub += deleted;
		sq_touch(wr, key, prefix);
	}
	if (ret_deleted)
		*ret_deleted = deleted;
	return 0;
}

/* The ops. */

static int sq_get(struct store *s, const char *key, bool prefix, size_t limit,
		  struct store_kvs **ret, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	struct store_kvs *kvs = calloc(1, sizeof(*kvs));
	int r;

	if (!kvs)
		return shoal_err_set(err, ENOMEM, "out of memory");
	r = sq_exec_id(sq, ST_BEGIN, err, "starting a read");
	if (r < 0)
		goto fail;
	r = sq_meta_get(sq, "revision", &kvs->revision, err);
	if (r < 0)
		goto fail;
	r = sq_range(sq, key, prefix, limit, kvs, err);
	if (r < 0)
		goto fail;
	r = sq_exec_id(sq, ST_COMMIT, err, "ending a read");
	if (r < 0)
		goto fail;
	*ret = kvs;
	return 0;
fail:
	sq_rollback(sq);
	store_kvs_free(kvs);
	return r;
}

static int sq_put(struct store *s, const char *key, const char *value, size_t len, int64_t lease,
		  int64_t *ret_revision, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	struct sq_write wr;

	int r = sq_write_begin(sq, &wr, err);
	if (r < 0)
		return r;
	r = sq_apply_put(sq, &wr, key, value, len, lease, err);
	if (r < 0) {
		sq_rollback(sq);
		return r;
	}
	return sq_write_commit(sq, &wr, ret_revision, err);
}

static int sq_delete(struct store *s, const char *key, bool prefix, int64_t *ret_deleted,
		     struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	struct sq_write wr;
	int64_t deleted = 0;

	int r = sq_write_begin(sq, &wr, err);
	if (r < 0)
		return r;
	r = sq_apply_delete(sq, &wr, key, prefix, &deleted, err);
	if (r < 0) {
		sq_rollback(sq);
		return r;
	}
	r = sq_write_commit(sq, &wr, NULL, err);
	if (r < 0)
		return r;
	if (ret_deleted)
		*ret_deleted = deleted;
	return 0;
}

static int cmp_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
	size_t n = a_len < b_len ? a_len : b_len;
	int c = n ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c < 0 ? -1 : 1;
	return a_len < b_len ? -1 : a_len > b_len ? 1 : 0;
}

static int sq_compare(struct sq_store *sq, const struct store_cmp *c, bool *ret,
		      struct shoal_err *err)
{
	struct store_kvs kvs = {};
	int r = sq_range(sq, c->key, false, 1, &kvs, err);
	if (r < 0)
		return r;

	const struct store_kv *kv = kvs.n ? &kvs.kvs[0] : NULL;
	int res;
	if (c->target == STORE_CMP_VALUE) {
		/* As etcd: a value compare on a missing key is false whatever the operator. */
		if (!kv) {
			*ret = false;
			return 0;
		}
		res = cmp_bytes(kv->value, kv->value_len, c->value ? c->value : "", c->value_len);
	} else {
		int64_t v = 0;
		if (kv)
			v = c->target == STORE_CMP_MOD	    ? kv->mod_revision
			    : c->target == STORE_CMP_CREATE ? kv->create_revision
							    : kv->version;
		res = v < c->num ? -1 : v > c->num ? 1 : 0;
	}
	sq_kvs_clear(&kvs);

	switch (c->op) {
	case STORE_CMP_EQ:
		*ret = res == 0;
		break;
	case STORE_CMP_NE:
		*ret = res != 0;
		break;
	case STORE_CMP_LT:
		*ret = res < 0;
		break;
	case STORE_CMP_GT:
		*ret = res > 0;
		break;
	default:
		*ret = false;
		break;
	}
	return 0;
}

static int sq_txn(struct store *s, const struct store_cmp *cmps, size_t n_cmps,
		  const struct store_op *success, size_t n_success, const struct store_op *failure,
		  size_t n_failure, struct store_txn_result *ret, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	struct store_txn_result res = {};
	struct sq_write wr;
	bool ok = true;
	int r;

	r = sq_write_begin(sq, &wr, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_cmps && ok; i++) {
		r = sq_compare(sq, &cmps[i], &ok, err);
		if (r < 0)
			goto fail;
	}
	res.succeeded = ok;
	const struct store_op *ops = ok ? success : failure;
	size_t n_ops = ok ? n_success : n_failure;

	for (size_t i = 0; i < n_ops; i++)
		if (ops[i].type == STORE_OP_GET)
			res.n_gets++;
	if (res.n_gets > 0) {
		res.gets = calloc(res.n_gets, sizeof(*res.gets));
		if (!res.gets) {
			res.n_gets = 0;
			r = shoal_err_set(err, ENOMEM, "out of memory");
			goto fail;
		}
	}

	for (size_t i = 0, g = 0; i < n_ops; i++) {
		const struct store_op *op = &ops[i];
		switch (op->type) {
		case STORE_OP_PUT:
			r = sq_apply_put(sq, &wr, op->key, op->value, op->value_len, op->lease,
					 err);
			break;
		case STORE_OP_DELETE:
		case STORE_OP_DELETE_PREFIX:
			r = sq_apply_delete(sq, &wr, op->key, op->type == STORE_OP_DELETE_PREFIX,
					    NULL, err);
			break;
		case STORE_OP_GET:
			r = sq_range(sq, op->key, false, 0, &res.gets[g++], err);
			break;
		}
		if (r < 0)
			goto fail;
	}

	r = sq_write_commit(sq, &wr, &res.revision, err);
	if (r < 0)
		goto fail_clear;
	for (size_t i = 0; i < res.n_gets; i++)
		res.gets[i].revision = res.revision;
	*ret = res;
	return 0;
fail:
	sq_rollback(sq);
fail_clear:
	store_txn_result_clear(&res);
	return r;
}

static int sq_compact(struct store *s, int64_t revision, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	int64_t cur, compacted;
	int r;

	r = sq_exec_id(sq, ST_BEGIN_IMMEDIATE, err, "starting a write");
	if (r < 0)
		return r;
	r = sq_revisions_get(sq, &cur, &compacted, err);
	if (r < 0)
		goto fail;
	if (revision > cur) {
		r = shoal_err_set(err, EINVAL,
				  "cannot compact at revision %lld: the store is at revision %lld",
				  (long long)revision, (long long)cur);
		goto fail;
	}
	if (revision <= compacted) {
		r = shoal_err_set(err, ECANCELED, "revision %lld is already compacted (up to %lld)",
				  (long long)revision, (long long)compacted);
		goto fail;
	}
	r = sq_compact_locked(sq, revision, err);
	if (r < 0)
		goto fail;
	r = sq_exec_id(sq, ST_COMMIT, err, "committing");
	if (r < 0)
		goto fail;
	sq_watches_compacted(sq, revision);
	return 0;
fail:
	sq_rollback(sq);
	return r;
}

static void sq_close(struct store *s)
{
	struct sq_store *sq = SQ(s);

	while (sq->watches)
		sq_watch_free(sq->watches);
	if (sq->lease_timer)
		event_free(sq->lease_timer);
	if (sq->vacuum_timer)
		event_free(sq->vacuum_timer);
	for (size_t i = 0; i < ST__MAX; i++)
		sqlite3_finalize(sq->stmts[i]);
	sqlite3_close_v2(sq->db);
	free(sq->path);
	free(sq);
}

static int64_t sq_pragma_int(struct sq_store *sq, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(sq->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Hands back up to max_pages free pages (0 = all) when they are worth it. A full
 * disk makes this fail like any write: harmless, the pages stay free inside. */
static int sq_vacuum(struct sq_store *sq, int64_t max_pages, bool *ret_more)
{
	int64_t free_pages = sq_pragma_int(sq, "PRAGMA freelist_count");
	int64_t pages = sq_pragma_int(sq, "PRAGMA page_count");
	int64_t page_size = sq_pragma_int(sq, "PRAGMA page_size");
	char sql[64];
	*ret_more = false;
	if (free_pages <= 0 || pages <= 0 || page_size <= 0 ||
	    free_pages * page_size < VACUUM_MIN_FREE || free_pages * 10 < pages)
		return 0;
	if (max_pages > 0)
		snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", (long long)max_pages);
	else
		snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum");
	if (sqlite3_exec(sq->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	/* The file shrinks when the WAL is checkpointed into it. */
	sqlite3_wal_checkpoint_v2(sq->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	*ret_more = max_pages > 0 && free_pages > max_pages;
	return 0;
}

static void sq_vacuum_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sq_store *sq = arg;
	bool more = false;
	(void)fd;
	(void)what;
	if (sqlite3_get_autocommit(sq->db))
		sq_vacuum(sq, VACUUM_BATCH_PAGES, &more);
	/* The next batch on the next turn, soon, if pages are left. */
	struct timeval tv = {.tv_sec = more ? 0 : VACUUM_INTERVAL_S, .tv_usec = more ? 100000 : 0};
	evtimer_add(sq->vacuum_timer, &tv);
}

/* auto_vacuum=INCREMENTAL for a new database (it must be set before the first
 * table); an old one made without it is rebuilt once with VACUUM to switch.
 * Then the free pages of an earlier run go back. None of this is needed to
 * serve: on a full disk it fails and the store opens as it is. */
static void sq_setup_vacuum(struct sq_store *sq)
{
	bool more;
	int64_t mode = sq_pragma_int(sq, "PRAGMA auto_vacuum");
	if (mode != 2) {
		if (sq_pragma_int(sq, "PRAGMA page_count") <= 0)
			sqlite3_exec(sq->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
		else if (sqlite3_exec(sq->db, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM", NULL, NULL,
				      NULL) != SQLITE_OK)
			sqlite3_exec(sq->db, "PRAGMA auto_vacuum=NONE", NULL, NULL, NULL);
		return;
	}
	sq_vacuum(sq, 0, &more);
}

static int sq_open(const struct store_options *opts, struct store **ret, struct shoal_err *err)
{
	struct sq_store *sq;
	char *errmsg = NULL;
	int64_t schema;
	int rc, r;

	if (!opts->path || !*opts->path)
		return shoal_err_set(err, EINVAL, "the sqlite store needs a database path");
	sq = calloc(1, sizeof(*sq));
	if (!sq)
		return shoal_err_set(err, ENOMEM, "out of memory");
	sq->base = opts->base;
	sq->history_keep = opts->history_revisions == 0	 ? STORE_HISTORY_DEFAULT
			   : opts->history_revisions < 0 ? 0
							 : opts->history_revisions;
	sq->path = strdup(opts->path);
	if (!sq->path) {
		r = shoal_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}

	/* Cluster state is the agent's alone: create the file 0600 before SQLite does
	 * (it gives the -wal and -shm files the same mode). */
	if (strcmp(opts->path, ":memory:") != 0) {
		int fd = open(opts->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			r = shoal_err_errno(err, errno, "opening the store %s", opts->path);
			goto fail;
		}
		close(fd);
	}

	rc = sqlite3_open_v2(opts->path, &sq->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		r = sq_fail(sq, rc, err, "opening the store");
		goto fail;
	}
	sqlite3_busy_timeout(sq->db, BUSY_TIMEOUT_MS);
	if (sq_pragma_int(sq, "PRAGMA page_count") <= 0)
		sq_setup_vacuum(sq);
	rc = sqlite3_exec(sq->db,
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			  " PRAGMA journal_size_limit=" WAL_SIZE_LIMIT ";",
			  NULL, NULL, &errmsg);
	if (rc != SQLITE_OK) {
		r = shoal_err_set(err, EIO, "setting up the store %s: %s", opts->path,
				  errmsg ? errmsg : sqlite3_errstr(rc));
		goto fail;
	}
	r = sq_exec_id(sq, ST_BEGIN_IMMEDIATE, err, "opening the store");
	if (r < 0)
		goto fail;
	rc = sqlite3_exec(sq->db, schema_sql, NULL, NULL, &errmsg);
	if (rc != SQLITE_OK) {
		r = shoal_err_set(err, EIO, "creating the store schema in %s: %s", opts->path,
				  errmsg ? errmsg : sqlite3_errstr(rc));
		goto fail;
	}
	r = sq_meta_get(sq, "schema", &schema, err);
	if (r < 0)
		goto fail;
	if (schema != SCHEMA_VERSION) {
		r = shoal_err_set(err, EPROTO,
				  "store %s has schema version %lld; this build reads version %d",
				  opts->path, (long long)schema, SCHEMA_VERSION);
		goto fail;
	}
	r = sq_exec_id(sq, ST_COMMIT, err, "opening the store");
	if (r < 0)
		goto fail;
	if (strcmp(opts->path, ":memory:") != 0)
		sq_setup_vacuum(sq);

	if (sq->base) {
		struct timeval tv = {.tv_sec = VACUUM_INTERVAL_S};
		sq->vacuum_timer = evtimer_new(sq->base, sq_vacuum_timer_cb, sq);
		if (!sq->vacuum_timer || evtimer_add(sq->vacuum_timer, &tv) < 0) {
			r = shoal_err_set(err, ENOMEM, "cannot create the vacuum timer");
			goto fail;
		}
		sq->lease_timer = evtimer_new(sq->base, sq_lease_timer_cb, sq);
		if (!sq->lease_timer) {
			r = shoal_err_set(err, ENOMEM, "cannot create the lease timer");
			goto fail;
		}
	}
	/* Leases that ran out while nobody had the store open. */
	r = sq_expire_leases(sq, err);
	if (r < 0) {
		shoal_err_wrap(err, "expiring leases in %s", opts->path);
		goto fail;
	}
	sq_lease_timer_arm(sq, false);

	*ret = &sq->pub;
	return 0;
fail:
	sqlite3_free(errmsg);
	if (sq->db)
		sq_rollback(sq);
	sq_close(&sq->pub);
	return r;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.get = sq_get,
	.put = sq_put,
	.delete = sq_delete,
	.txn = sq_txn,
	.watch = sq_watch,
	.watch_cancel = sq_watch_cancel,
	.lease_grant = sq_lease_grant,
	.lease_keepalive = sq_lease_keepalive,
	.lease_revoke = sq_lease_revoke,
	.compact = sq_compact,
	.close = sq_close,
};
