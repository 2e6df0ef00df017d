// SPDX-License-Identifier: Apache-2.0
/*
 * Watches of the SQLite backend. They are served from the history table: after a
 * commit, the watches the write may touch are made active on the event loop, and
 * their callback reads history from the watch's cursor, so a callback may write
 * without recursion and a watch from a past revision is the same code as a live one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/store/store-sqlite-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* Events per watch callback; a longer backlog is delivered over several loop turns. */
#define WATCH_BATCH_MAX 1000

static void sq_watch_queue(struct sq_watch *w)
{
	if (w->queued || w->dead || w->cancelled)
		return;
	w->queued = true;
	event_active(w->ev, EV_TIMEOUT, 0);
}

void sq_watch_free(struct sq_watch *w)
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

void sq_touch(struct sq_write *wr, const char *key, bool prefix)
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
void sq_notify(struct sq_store *sq, const struct sq_write *wr)
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
	r = sq_revisions_get(sq, &cur, &compacted, err);
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

int sq_watch(struct store *s, const char *key, bool prefix, int64_t start_revision,
	     store_watch_cb cb, void *userdata, struct store_watch **ret, struct shoal_err *err)
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

void sq_watch_cancel(struct store_watch *pw)
{
	struct sq_watch *w = SQW(pw);

	if (w->in_cb) {
		w->cancelled = true;
		return;
	}
	sq_watch_free(w);
}

/* Watches still behind the compaction point learn it now. */
void sq_watches_compacted(struct sq_store *sq, int64_t revision)
{
	for (struct sq_watch *w = sq->watches; w; w = w->next)
		if (w->next_rev < revision)
			sq_watch_queue(w);
}
