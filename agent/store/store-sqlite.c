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
 * Watches are served from the history table: after a commit, the watches the
 * write may touch are made active on the event loop, and their callback reads
 * history from the watch's cursor, so a callback may write without recursion and
 * a watch from a past revision is the same code as a live one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "agent/store/store-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define SCHEMA_VERSION	1
#define BUSY_TIMEOUT_MS 5000
/* Events per watch callback; a longer backlog is delivered over several loop turns. */
#define WATCH_BATCH_MAX	   1000
#define LEASE_EXPIRE_BATCH 64
/* After a failed expiry (disk full, database locked) the timer retries this late. */
#define LEASE_RETRY_NS 1000000000LL
#define NSEC_PER_SEC   1000000000LL

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
	[ST_HIST_DELETE_RANGE] =
		"INSERT INTO history(rev, sub, type, key, value, create_rev, version, lease) "
		"SELECT ?1, ?2 + row_number() OVER (ORDER BY key) - 1, 1, key, x'', 0, 0, 0 "
		"FROM kv WHERE key >= ?3 AND key < ?4",
	[ST_HIST_DELETE_LEASE] =
		"INSERT INTO history(rev, sub, type, key, value, create_rev, version, lease) "
		"SELECT ?1, ?2 + row_number() OVER (ORDER BY key) - 1, 1, key, x'', 0, 0, 0 "
		"FROM kv WHERE lease = ?3",
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

static void sq_stmt_resetp(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_reset(*st);
}
#define _cleanup_reset_ _cleanup_(sq_stmt_resetp)

static int sq_fail(struct sq_store *sq, int rc, struct shoal_err *err, const char *what)
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
		code = ENOSPC;
		break;
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

static int sq_stmt(struct sq_store *sq, enum stmt_id id, sqlite3_stmt **ret, struct shoal_err *err)
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
static void sq_bind_bytes(sqlite3_stmt *st, int idx, const void *p, size_t n)
{
	if (n == 0)
		sqlite3_bind_zeroblob(st, idx, 0);
	else
		sqlite3_bind_blob64(st, idx, p, n, SQLITE_STATIC);
}

static void sq_bind_key(sqlite3_stmt *st, int idx, const char *key)
{
	sq_bind_bytes(st, idx, key, strlen(key));
}

/* Steps st once; SQLITE_ROW and SQLITE_DONE are returned, errors become -errno. */
static int sq_step(struct sq_store *sq, sqlite3_stmt *st, struct shoal_err *err, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	return sq_fail(sq, rc, err, what);
}

/* Runs a statement to completion, ignoring rows. */
static int sq_run(struct sq_store *sq, sqlite3_stmt *st, struct shoal_err *err, const char *what)
{
	int r;
	do {
		r = sq_step(sq, st, err, what);
	} while (r == SQLITE_ROW);
	sqlite3_reset(st);
	return r < 0 ? r : 0;
}

static int sq_exec_id(struct sq_store *sq, enum stmt_id id, struct shoal_err *err, const char *what)
{
	sqlite3_stmt *st;
	int r = sq_stmt(sq, id, &st, err);
	if (r < 0)
		return r;
	return sq_run(sq, st, err, what);
}

static void sq_rollback(struct sq_store *sq)
{
	if (!sqlite3_get_autocommit(sq->db))
		sq_exec_id(sq, ST_ROLLBACK, NULL, "rolling back");
}

static int sq_meta_get(struct sq_store *sq, const char *name, int64_t *ret, struct shoal_err *err)
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

static int sq_meta_set(struct sq_store *sq, const char *name, int64_t value, struct shoal_err *err)
{
	sqlite3_stmt *st;
	int r = sq_stmt(sq, ST_META_SET, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	return sq_run(sq, st, err, "writing the store revision");
}

/* [key, end) for a key or a prefix. A key's end is key + NUL, the first blob after
 * it; a prefix with no end covers everything, and a run of 0xff one byte longer
 * than any allowed key stands for that. */
static int sq_range_end(const char *key, bool prefix, char **ret, size_t *ret_len)
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

static char *sq_column_dup(sqlite3_stmt *st, int col, size_t *ret_len)
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

/* Watches. */

static void sq_watch_queue(struct sq_watch *w)
{
	if (w->queued || w->dead || w->cancelled)
		return;
	w->queued = true;
	event_active(w->ev, EV_TIMEOUT, 0);
}

static void sq_watch_free(struct sq_watch *w)
{
	struct sq_store *sq = w->sq;

	if (w->prev)
		w->prev->next = w->next;
	else if (sq->watches == w)
		sq->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	if (w->ev)
		event_free(w->ev);
	free(w->key);
	free(w->end);
	free(w);
}

static void sq_touch(struct sq_write *wr, const char *key, bool prefix)
{
	if (wr->n_touched == ARRAY_SIZE(wr->touched)) {
		/* More ranges than one txn can carry: wake everything. */
		wr->touched[0].key = "";
		wr->touched[0].prefix = true;
		wr->n_touched = 1;
		return;
	}
	wr->touched[wr->n_touched].key = key;
	wr->touched[wr->n_touched].prefix = prefix;
	wr->n_touched++;
}

/* After a commit of revision wr->rev: queue the watches it concerns; watches it
 * does not concern and that were caught up skip the revision. */
static void sq_notify(struct sq_store *sq, const struct sq_write *wr)
{
	for (struct sq_watch *w = sq->watches; w; w = w->next) {
		if (w->dead || w->cancelled)
			continue;
		bool hit = false;
		for (size_t i = 0; i < wr->n_touched && !hit; i++)
			hit = store_ranges_overlap(wr->touched[i].key, wr->touched[i].prefix,
						   w->key, w->prefix);
		if (hit)
			sq_watch_queue(w);
		else if (!w->queued && w->next_rev == wr->rev && w->next_sub == 0)
			w->next_rev = wr->rev + 1;
	}
}

static void sq_events_free(struct store_event *evs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_kv_clear(&evs[i].kv);
	free(evs);
}

/* Reads the next batch for w. *ret_more says the batch limit cut it. */
static int sq_watch_fetch(struct sq_watch *w, struct store_event **ret, size_t *ret_n,
			  bool *ret_more, struct shoal_err *err)
{
	struct sq_store *sq = w->sq;
	struct store_event *evs = NULL;
	size_t n = 0;
	int64_t cur, compacted;
	int r;

	r = sq_exec_id(sq, ST_BEGIN, err, "starting a read");
	if (r < 0)
		return r;
	r = sq_meta_get(sq, "revision", &cur, err);
	if (r < 0)
		goto fail;
	r = sq_meta_get(sq, "compact_revision", &compacted, err);
	if (r < 0)
		goto fail;
	if (w->next_rev < compacted) {
		r = shoal_err_set(
			err, ECANCELED,
			"watch on %s needs revision %lld, but history before revision %lld was compacted; read the current state and watch again from there",
			w->key, (long long)w->next_rev, (long long)compacted);
		goto fail;
	}

	{
		_cleanup_reset_ sqlite3_stmt *st = NULL;
		r = sq_stmt(sq, ST_HIST_RANGE, &st, err);
		if (r < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, w->next_rev);
		sqlite3_bind_int64(st, 2, w->next_sub);
		sqlite3_bind_int64(st, 3, cur);
		sq_bind_key(st, 4, w->key);
		sq_bind_bytes(st, 5, w->end, w->end_len);
		sqlite3_bind_int64(st, 6, WATCH_BATCH_MAX);

		evs = calloc(WATCH_BATCH_MAX, sizeof(*evs));
		if (!evs) {
			r = shoal_err_set(err, ENOMEM, "out of memory reading watch events");
			goto fail;
		}
		int64_t last_rev = 0, last_sub = 0;
		for (;;) {
			r = sq_step(sq, st, err, "reading watch events");
			if (r < 0)
				goto fail;
			if (r == SQLITE_DONE)
				break;
			struct store_event *e = &evs[n];
			last_rev = sqlite3_column_int64(st, 0);
			last_sub = sqlite3_column_int64(st, 1);
			e->type = sqlite3_column_int(st, 2) == EV_KIND_DELETE ? STORE_EVENT_DELETE
									      : STORE_EVENT_PUT;
			e->kv.key = sq_column_dup(st, 3, NULL);
			e->kv.value = sq_column_dup(st, 4, &e->kv.value_len);
			if (!e->kv.key || !e->kv.value) {
				store_kv_clear(&e->kv);
				r = shoal_err_set(err, ENOMEM,
						  "out of memory reading watch events");
				goto fail;
			}
			e->kv.mod_revision = last_rev;
			e->kv.create_revision = sqlite3_column_int64(st, 5);
			e->kv.version = sqlite3_column_int64(st, 6);
			e->kv.lease = sqlite3_column_int64(st, 7);
			n++;
		}
		if (n == WATCH_BATCH_MAX) {
			w->next_rev = last_rev;
			w->next_sub = last_sub + 1;
			*ret_more = true;
		} else {
			if (w->next_rev <= cur) {
				w->next_rev = cur + 1;
				w->next_sub = 0;
			}
			*ret_more = false;
		}
	}
	r = sq_exec_id(sq, ST_COMMIT, err, "ending a read");
	if (r < 0)
		goto fail;
	*ret = evs;
	*ret_n = n;
	return 0;
fail:
	sq_rollback(sq);
	sq_events_free(evs, n);
	return r;
}

static void sq_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sq_watch *w = arg;
	struct shoal_err err = {};
	struct store_event *evs = NULL;
	size_t n = 0;
	bool more = false;

	w->queued = false;
	if (w->dead || w->cancelled)
		return;
	int r = sq_watch_fetch(w, &evs, &n, &more, &err);

	w->in_cb = true;
	if (r < 0) {
		/* Locked by another process: try again on the next turn. */
		if (r == -EBUSY) {
			w->in_cb = false;
			sq_watch_queue(w);
			return;
		}
		w->dead = true;
		w->cb(NULL, 0, &err, w->userdata);
	} else if (n > 0) {
		w->cb(evs, n, NULL, w->userdata);
	}
	w->in_cb = false;
	sq_events_free(evs, n);

	if (w->cancelled)
		sq_watch_free(w);
	else if (more)
		sq_watch_queue(w);
}

static int sq_watch(struct store *s, const char *key, bool prefix, int64_t start_revision,
		    store_watch_cb cb, void *userdata, struct store_watch **ret,
		    struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	int r;

	if (!sq->base)
		return shoal_err_set(err, EINVAL,
				     "watching %s needs an event loop; open the store with one",
				     key);
	struct sq_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return shoal_err_set(err, ENOMEM, "out of memory");
	w->pub.store = s;
	w->sq = sq;
	w->prefix = prefix;
	w->cb = cb;
	w->userdata = userdata;
	w->key = strdup(key);
	if (!w->key || sq_range_end(key, prefix, &w->end, &w->end_len) < 0) {
		r = shoal_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	w->ev = event_new(sq->base, -1, 0, sq_watch_cb, w);
	if (!w->ev) {
		r = shoal_err_set(err, ENOMEM, "cannot create the watch event");
		goto fail;
	}
	if (start_revision == 0) {
		int64_t cur;
		r = sq_meta_get(sq, "revision", &cur, err);
		if (r < 0)
			goto fail;
		w->next_rev = cur + 1;
	} else {
		w->next_rev = start_revision;
	}

	w->next = sq->watches;
	if (sq->watches)
		sq->watches->prev = w;
	sq->watches = w;
	if (start_revision != 0)
		sq_watch_queue(w);
	*ret = &w->pub;
	return 0;
fail:
	sq_watch_free(w);
	return r;
}

static void sq_watch_cancel(struct store_watch *pw)
{
	struct sq_watch *w = SQW(pw);

	if (w->in_cb) {
		w->cancelled = true;
		return;
	}
	sq_watch_free(w);
}

/* Writes. */

static int sq_write_begin(struct sq_store *sq, struct sq_write *wr, struct shoal_err *err)
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

/* Watches still behind the compaction point learn it now. */
static void sq_watches_compacted(struct sq_store *sq, int64_t revision)
{
	for (struct sq_watch *w = sq->watches; w; w = w->next)
		if (w->next_rev < revision)
			sq_watch_queue(w);
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

static int sq_write_commit(struct sq_store *sq, struct sq_write *wr, int64_t *ret_revision,
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

static int sq_lease_check(struct sq_store *sq, int64_t lease, const char *key,
			  struct shoal_err *err)
{
	_cleanup_reset_ sqlite3_stmt *st = NULL;
	int r = sq_stmt(sq, ST_LEASE_GET, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, lease);
	r = sq_step(sq, st, err, "reading a lease");
	if (r < 0)
		return r;
	if (r != SQLITE_ROW)
		return shoal_err_set(err, ENOENT, "lease %lld for %s not found; grant a new one",
				     (long long)lease, key);
	return 0;
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

/* Deletes a lease and its keys in one write of its own. */
static int sq_lease_remove(struct sq_store *sq, int64_t id, struct shoal_err *err)
{
	struct sq_write wr;
	sqlite3_stmt *st;
	int r;

	r = sq_write_begin(sq, &wr, err);
	if (r < 0)
		return r;
	{
		_cleanup_reset_ sqlite3_stmt *q = NULL;
		r = sq_stmt(sq, ST_LEASE_GET, &q, err);
		if (r < 0)
			goto fail;
		sqlite3_bind_int64(q, 1, id);
		r = sq_step(sq, q, err, "reading a lease");
		if (r < 0)
			goto fail;
		if (r != SQLITE_ROW) {
			r = shoal_err_set(err, ENOENT, "lease %lld not found", (long long)id);
			goto fail;
		}
	}

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
static int sq_expire_leases(struct sq_store *sq, struct shoal_err *err)
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

static void sq_lease_timer_arm(struct sq_store *sq, bool retry)
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

static void sq_lease_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sq_store *sq = arg;
	int r = sq_expire_leases(sq, NULL);
	sq_lease_timer_arm(sq, r < 0);
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

static int sq_lease_grant(struct store *s, int64_t ttl_s, int64_t *ret_id, struct shoal_err *err)
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

static int sq_lease_keepalive(struct store *s, int64_t id, struct shoal_err *err)
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

static int sq_lease_revoke(struct store *s, int64_t id, struct shoal_err *err)
{
	struct sq_store *sq = SQ(s);
	int r = sq_lease_remove(sq, id, err);
	sq_lease_timer_arm(sq, false);
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
	r = sq_meta_get(sq, "revision", &cur, err);
	if (r < 0)
		goto fail;
	r = sq_meta_get(sq, "compact_revision", &compacted, err);
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
	for (size_t i = 0; i < ST__MAX; i++)
		sqlite3_finalize(sq->stmts[i]);
	sqlite3_close_v2(sq->db);
	free(sq->path);
	free(sq);
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
	rc = sqlite3_exec(sq->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
			  &errmsg);
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

	if (sq->base) {
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
