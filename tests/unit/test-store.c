// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "agent/store/store.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"
#include "tests/unit/etcd-fixture.h"

/* Every case that is about the store's contract runs against both backends: this program
 * runs with "sqlite" (the default) or "etcd" as its argument; for etcd each case gets a
 * fresh member of its own (etcd-fixture.c), so revisions start at 1 as in a new file. */
static bool g_etcd;
/* Watch callbacks so far, to know when deliveries have stopped arriving. */
static int g_cb_calls;

struct fx {
	char dir[64];
	char path[128];
	struct event_base *base;
	struct store *s;
	struct etcd_fixture etcd;
	struct etcd_fixture extra; /* a second member some cases start */
};

static struct store *open_store(struct fx *f)
{
	struct store_options o = {.backend = "sqlite", .path = f->path, .base = f->base};
	if (g_etcd)
		o = (struct store_options){
			.backend = "etcd", .endpoints = f->etcd.url, .base = f->base};
	struct shoal_err err = {};
	struct store *s = NULL;
	int r = store_open(&o, &s, &err);
	if (r < 0)
		fail_msg("store_open: %s", err.msg);
	return s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	f->base = event_base_new();
	assert_non_null(f->base);
	*state = f;
	/* A failed setup gets no teardown: clean up here. */
	if (g_etcd && etcd_fixture_start(&f->etcd, false) < 0) {
		etcd_fixture_destroy(&f->etcd);
		event_base_free(f->base);
		rm_rf(f->dir);
		free(f);
		fail_msg("cannot start etcd for the test (etcd-server is installed by "
			 "scripts/deps.sh)");
	}
	f->s = open_store(f);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	event_base_free(f->base);
	etcd_fixture_destroy(&f->etcd);
	etcd_fixture_destroy(&f->extra);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* Runs what is ready on the loop, several turns so that re-queued work runs too. Events
 * from etcd come over a socket: the loop runs until none has arrived for a while. */
static void drain(struct event_base *base)
{
	if (!g_etcd) {
		for (int i = 0; i < 50; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
		return;
	}
	for (int i = 0; i < 100; i++) {
		int before = g_cb_calls;
		struct timeval tv = {.tv_usec = 300000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		if (g_cb_calls == before)
			return;
	}
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Runs the loop until cond holds or a generous guard runs out. */
static bool loop_until(struct event_base *base, bool (*cond)(void *), void *arg, int guard_s)
{
	bool expired = false;
	struct event *guard = evtimer_new(base, guard_cb, &expired);
	struct timeval tv = {.tv_sec = guard_s};
	evtimer_add(guard, &tv);
	while (!cond(arg) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	return cond(arg);
}

static int64_t put(struct store *s, const char *key, const char *value)
{
	struct shoal_err err = {};
	int64_t rev = 0;
	int r = store_put(s, key, value, strlen(value), 0, &rev, &err);
	if (r < 0)
		fail_msg("put %s: %s", key, err.msg);
	return rev;
}

static struct store_kvs *get(struct store *s, const char *key, bool prefix, size_t limit)
{
	struct shoal_err err = {};
	struct store_kvs *kvs = NULL;
	int r = store_get(s, key, prefix, limit, &kvs, &err);
	if (r < 0)
		fail_msg("get %s: %s", key, err.msg);
	return kvs;
}

static int64_t current_revision(struct store *s)
{
	struct store_kvs *kvs = get(s, "/", true, 1);
	int64_t rev = kvs->revision;
	store_kvs_free(kvs);
	return rev;
}

static bool key_exists(struct store *s, const char *key)
{
	struct store_kvs *kvs = get(s, key, false, 0);
	bool found = kvs->n == 1;
	store_kvs_free(kvs);
	return found;
}

/* Collects watch events. */
struct collect {
	struct {
		enum store_event_type type;
		char key[64];
		char value[64];
		int64_t mod, create, version, lease;
	} ev[4096];
	size_t n;
	int calls;
	int err_code;
	int err_calls;
};

static void collect_cb(const struct store_event *events, size_t n, const struct shoal_err *err,
		       void *userdata)
{
	struct collect *c = userdata;
	g_cb_calls++;
	c->calls++;
	if (err) {
		c->err_code = err->code;
		c->err_calls++;
		assert_int_equal(n, 0);
		return;
	}
	assert_true(n > 0);
	for (size_t i = 0; i < n && c->n < ARRAY_SIZE(c->ev); i++) {
		c->ev[c->n].type = events[i].type;
		snprintf(c->ev[c->n].key, sizeof(c->ev[c->n].key), "%s", events[i].kv.key);
		snprintf(c->ev[c->n].value, sizeof(c->ev[c->n].value), "%.*s",
			 (int)events[i].kv.value_len, events[i].kv.value);
		c->ev[c->n].mod = events[i].kv.mod_revision;
		c->ev[c->n].create = events[i].kv.create_revision;
		c->ev[c->n].version = events[i].kv.version;
		c->ev[c->n].lease = events[i].kv.lease;
		c->n++;
	}
}

static struct store_watch *watch(struct store *s, const char *key, bool prefix, int64_t from,
				 struct collect *c)
{
	struct shoal_err err = {};
	struct store_watch *w = NULL;
	int r = store_watch(s, key, prefix, from, collect_cb, c, &w, &err);
	if (r < 0)
		fail_msg("watch %s: %s", key, err.msg);
	return w;
}

static void test_put_get(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};

	/* A fresh store is at revision 1, as etcd: the first write is revision 2. */
	assert_int_equal(current_revision(f->s), 1);
	assert_int_equal(put(f->s, "/a", "one"), 2);

	struct store_kvs *kvs = get(f->s, "/a", false, 0);
	assert_int_equal(kvs->n, 1);
	assert_string_equal(kvs->kvs[0].key, "/a");
	assert_int_equal(kvs->kvs[0].value_len, 3);
	assert_string_equal(kvs->kvs[0].value, "one");
	assert_int_equal(kvs->kvs[0].create_revision, 2);
	assert_int_equal(kvs->kvs[0].mod_revision, 2);
	assert_int_equal(kvs->kvs[0].version, 1);
	assert_int_equal(kvs->kvs[0].lease, 0);
	assert_int_equal(kvs->revision, 2);
	store_kvs_free(kvs);

	assert_int_equal(put(f->s, "/b", "x"), 3);
	assert_int_equal(put(f->s, "/a", "two"), 4);
	kvs = get(f->s, "/a", false, 0);
	assert_int_equal(kvs->n, 1);
	assert_string_equal(kvs->kvs[0].value, "two");
	assert_int_equal(kvs->kvs[0].create_revision, 2);
	assert_int_equal(kvs->kvs[0].mod_revision, 4);
	assert_int_equal(kvs->kvs[0].version, 2);
	store_kvs_free(kvs);

	/* Missing key: nothing, at the current revision. */
	kvs = get(f->s, "/missing", false, 0);
	assert_int_equal(kvs->n, 0);
	assert_int_equal(kvs->revision, 4);
	store_kvs_free(kvs);

	/* Values are bytes: NULs survive, and an empty value is a value. */
	static const char bin[] = {'a', '\0', 'b', '\0'};
	assert_int_equal(store_put(f->s, "/bin", bin, sizeof(bin), 0, NULL, &err), 0);
	assert_int_equal(store_put(f->s, "/empty", NULL, 0, 0, NULL, &err), 0);
	kvs = get(f->s, "/bin", false, 0);
	assert_int_equal(kvs->kvs[0].value_len, sizeof(bin));
	assert_memory_equal(kvs->kvs[0].value, bin, sizeof(bin));
	store_kvs_free(kvs);
	kvs = get(f->s, "/empty", false, 0);
	assert_int_equal(kvs->n, 1);
	assert_int_equal(kvs->kvs[0].value_len, 0);
	assert_string_equal(kvs->kvs[0].value, "");
	store_kvs_free(kvs);
}

static void test_prefix_range(void **state)
{
	struct fx *f = *state;

	put(f->s, "/p/c", "3");
	put(f->s, "/p/a", "1");
	put(f->s, "/q", "q");
	put(f->s, "/p/b", "2");
	put(f->s, "/p", "not under /p/");
	put(f->s, "/p0", "not under /p/ either");

	struct store_kvs *kvs = get(f->s, "/p/", true, 0);
	assert_int_equal(kvs->n, 3);
	assert_string_equal(kvs->kvs[0].key, "/p/a");
	assert_string_equal(kvs->kvs[1].key, "/p/b");
	assert_string_equal(kvs->kvs[2].key, "/p/c");
	assert_string_equal(kvs->kvs[2].value, "3");
	assert_false(kvs->more);
	store_kvs_free(kvs);

	kvs = get(f->s, "/p/", true, 2);
	assert_int_equal(kvs->n, 2);
	assert_string_equal(kvs->kvs[1].key, "/p/b");
	assert_true(kvs->more);
	store_kvs_free(kvs);

	kvs = get(f->s, "/p/", true, 3);
	assert_int_equal(kvs->n, 3);
	assert_false(kvs->more);
	store_kvs_free(kvs);

	/* The empty prefix is every key. */
	kvs = get(f->s, "", true, 0);
	assert_int_equal(kvs->n, 6);
	assert_string_equal(kvs->kvs[0].key, "/p");
	assert_string_equal(kvs->kvs[5].key, "/q");
	store_kvs_free(kvs);

	/* A prefix ending in 0xff has no successor of its length. */
	put(f->s, "\xff\xff", "a");
	put(f->s, "\xff\xff\x01", "b");
	put(f->s, "\xfe", "c");
	kvs = get(f->s, "\xff", true, 0);
	assert_int_equal(kvs->n, 2);
	assert_string_equal(kvs->kvs[0].key, "\xff\xff");
	assert_string_equal(kvs->kvs[1].key, "\xff\xff\x01");
	store_kvs_free(kvs);
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	int64_t n = -1;

	put(f->s, "/d/a", "1");
	put(f->s, "/d/b", "2");
	put(f->s, "/d/c", "3");
	int64_t rev = put(f->s, "/e", "4");

	assert_int_equal(store_delete(f->s, "/d/a", false, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_false(key_exists(f->s, "/d/a"));
	assert_int_equal(current_revision(f->s), rev + 1);

	/* Deleting nothing changes nothing, the revision included. */
	assert_int_equal(store_delete(f->s, "/d/a", false, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(current_revision(f->s), rev + 1);

	/* A prefix delete is one revision. */
	assert_int_equal(store_delete(f->s, "/d/", true, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(current_revision(f->s), rev + 2);
	struct store_kvs *kvs = get(f->s, "/d/", true, 0);
	assert_int_equal(kvs->n, 0);
	store_kvs_free(kvs);
	assert_true(key_exists(f->s, "/e"));

	/* A key created again starts over: version 1, a new create revision. */
	int64_t again = put(f->s, "/d/a", "new");
	kvs = get(f->s, "/d/a", false, 0);
	assert_int_equal(kvs->kvs[0].version, 1);
	assert_int_equal(kvs->kvs[0].create_revision, again);
	store_kvs_free(kvs);
}

static void test_txn_cas(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store_txn_result res = {};

	int64_t rev = put(f->s, "/k", "v1");

	/* Two writers read rev; the first CAS wins, the second sees the conflict. */
	struct store_cmp cmp = {
		.key = "/k", .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = rev};
	struct store_op ok_put = {.type = STORE_OP_PUT, .key = "/k", .value = "v2", .value_len = 2};
	struct store_op lost_put = {
		.type = STORE_OP_PUT, .key = "/k", .value = "lost", .value_len = 4};
	struct store_op get_k = {.type = STORE_OP_GET, .key = "/k"};

	assert_int_equal(store_txn(f->s, &cmp, 1, &ok_put, 1, &get_k, 1, &res, &err), 0);
	assert_true(res.succeeded);
	assert_int_equal(res.revision, rev + 1);
	assert_int_equal(res.n_gets, 0);
	store_txn_result_clear(&res);

	assert_int_equal(store_txn(f->s, &cmp, 1, &lost_put, 1, &get_k, 1, &res, &err), 0);
	assert_false(res.succeeded);
	assert_int_equal(res.revision, rev + 1);
	assert_int_equal(res.n_gets, 1);
	assert_int_equal(res.gets[0].n, 1);
	assert_string_equal(res.gets[0].kvs[0].value, "v2");
	assert_int_equal(res.gets[0].kvs[0].mod_revision, rev + 1);
	assert_int_equal(res.gets[0].revision, rev + 1);
	store_txn_result_clear(&res);

	struct store_kvs *kvs = get(f->s, "/k", false, 0);
	assert_string_equal(kvs->kvs[0].value, "v2");
	store_kvs_free(kvs);

	/* Create-if-absent: CREATE == 0 holds for a missing key only. */
	struct store_cmp absent = {
		.key = "/new", .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ, .num = 0};
	struct store_op create = {
		.type = STORE_OP_PUT, .key = "/new", .value = "a", .value_len = 1};
	assert_int_equal(store_txn(f->s, &absent, 1, &create, 1, NULL, 0, &res, &err), 0);
	assert_true(res.succeeded);
	store_txn_result_clear(&res);
	assert_int_equal(store_txn(f->s, &absent, 1, &create, 1, NULL, 0, &res, &err), 0);
	assert_false(res.succeeded);
	store_txn_result_clear(&res);

	/* VERSION and VALUE, with every operator. */
	struct store_cmp cmps[] = {
		{.key = "/k", .target = STORE_CMP_VERSION, .op = STORE_CMP_EQ, .num = 2},
		{.key = "/k", .target = STORE_CMP_VERSION, .op = STORE_CMP_GT, .num = 1},
		{.key = "/k", .target = STORE_CMP_VERSION, .op = STORE_CMP_LT, .num = 3},
		{.key = "/k", .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ, .num = rev},
		{.key = "/k",
		 .target = STORE_CMP_VALUE,
		 .op = STORE_CMP_EQ,
		 .value = "v2",
		 .value_len = 2},
		{.key = "/k",
		 .target = STORE_CMP_VALUE,
		 .op = STORE_CMP_NE,
		 .value = "v1",
		 .value_len = 2},
		{.key = "/k",
		 .target = STORE_CMP_VALUE,
		 .op = STORE_CMP_GT,
		 .value = "v1",
		 .value_len = 2},
		{.key = "/k",
		 .target = STORE_CMP_VALUE,
		 .op = STORE_CMP_LT,
		 .value = "v2x",
		 .value_len = 3},
		{.key = "/nope", .target = STORE_CMP_VERSION, .op = STORE_CMP_EQ, .num = 0},
		{.key = "/nope", .target = STORE_CMP_MOD, .op = STORE_CMP_LT, .num = 1},
	};
	assert_int_equal(store_txn(f->s, cmps, ARRAY_SIZE(cmps), NULL, 0, NULL, 0, &res, &err), 0);
	assert_true(res.succeeded);
	/* Nothing written: no new revision. */
	assert_int_equal(res.revision, current_revision(f->s));
	store_txn_result_clear(&res);

	for (size_t i = 0; i < ARRAY_SIZE(cmps); i++) {
		struct store_cmp neg = cmps[i];
		neg.op = neg.op == STORE_CMP_EQ ? STORE_CMP_NE : STORE_CMP_EQ;
		if (cmps[i].op == STORE_CMP_LT || cmps[i].op == STORE_CMP_GT)
			continue;
		assert_int_equal(store_txn(f->s, &neg, 1, NULL, 0, NULL, 0, &res, &err), 0);
		assert_false(res.succeeded);
		store_txn_result_clear(&res);
	}

	/* As etcd, a value compare on a missing key is false whatever the operator. */
	struct store_cmp val_missing = {.key = "/nope",
					.target = STORE_CMP_VALUE,
					.op = STORE_CMP_NE,
					.value = "x",
					.value_len = 1};
	assert_int_equal(store_txn(f->s, &val_missing, 1, NULL, 0, NULL, 0, &res, &err), 0);
	assert_false(res.succeeded);
	store_txn_result_clear(&res);
}

static void test_txn_gets_and_atomicity(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store_txn_result res = {};

	put(f->s, "/t/a", "old");
	put(f->s, "/t/gone", "x");
	int64_t rev = current_revision(f->s);

	/* Reads in a txn see its own earlier writes; all writes share one revision. */
	struct store_op ops[] = {
		{.type = STORE_OP_GET, .key = "/t/a"},
		{.type = STORE_OP_PUT, .key = "/t/a", .value = "new", .value_len = 3},
		{.type = STORE_OP_PUT, .key = "/t/b", .value = "b", .value_len = 1},
		{.type = STORE_OP_DELETE, .key = "/t/gone"},
		{.type = STORE_OP_GET, .key = "/t/a"},
		{.type = STORE_OP_GET, .key = "/t/gone"},
	};
	assert_int_equal(store_txn(f->s, NULL, 0, ops, ARRAY_SIZE(ops), NULL, 0, &res, &err), 0);
	assert_true(res.succeeded);
	assert_int_equal(res.revision, rev + 1);
	assert_int_equal(res.n_gets, 3);
	assert_string_equal(res.gets[0].kvs[0].value, "old");
	assert_string_equal(res.gets[1].kvs[0].value, "new");
	assert_int_equal(res.gets[1].kvs[0].mod_revision, rev + 1);
	assert_int_equal(res.gets[2].n, 0);
	store_txn_result_clear(&res);
	struct store_kvs *kvs = get(f->s, "/t/b", false, 0);
	assert_int_equal(kvs->kvs[0].mod_revision, rev + 1);
	store_kvs_free(kvs);

	/* A failing op undoes the ops before it: no partial writes. */
	struct store_op bad[] = {
		{.type = STORE_OP_PUT, .key = "/t/a", .value = "partial", .value_len = 7},
		{.type = STORE_OP_DELETE_PREFIX, .key = "/t/b"},
		{.type = STORE_OP_PUT,
		 .key = "/t/c",
		 .value = "c",
		 .value_len = 1,
		 .lease = 424242},
	};
	assert_int_equal(store_txn(f->s, NULL, 0, bad, ARRAY_SIZE(bad), NULL, 0, &res, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "424242"));
	assert_int_equal(current_revision(f->s), rev + 1);
	kvs = get(f->s, "/t/", true, 0);
	assert_int_equal(kvs->n, 2);
	assert_string_equal(kvs->kvs[0].value, "new");
	assert_string_equal(kvs->kvs[1].key, "/t/b");
	store_kvs_free(kvs);

	/* Writing one key twice in a txn is refused, as etcd does. */
	struct store_op dup[] = {
		{.type = STORE_OP_PUT, .key = "/t/a", .value = "1", .value_len = 1},
		{.type = STORE_OP_DELETE_PREFIX, .key = "/t/"},
	};
	assert_int_equal(store_txn(f->s, NULL, 0, dup, 2, NULL, 0, &res, &err), -EINVAL);
	assert_int_equal(current_revision(f->s), rev + 1);
}

static void test_watch_from_now(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	static struct collect c;
	memset(&c, 0, sizeof(c));

	put(f->s, "/w/before", "x");
	struct store_watch *w = watch(f->s, "/w/", true, 0, &c);
	int64_t r1 = put(f->s, "/w/a", "1");
	put(f->s, "/x", "other");
	int64_t r2 = put(f->s, "/w/a", "2");
	assert_int_equal(store_delete(f->s, "/w/a", false, NULL, &err), 0);
	/* Delivered on the loop, never inside the write. */
	assert_int_equal(c.calls, 0);
	drain(f->base);

	assert_int_equal(c.n, 3);
	assert_int_equal(c.ev[0].type, STORE_EVENT_PUT);
	assert_string_equal(c.ev[0].key, "/w/a");
	assert_string_equal(c.ev[0].value, "1");
	assert_int_equal(c.ev[0].mod, r1);
	assert_int_equal(c.ev[0].create, r1);
	assert_int_equal(c.ev[0].version, 1);
	assert_string_equal(c.ev[1].value, "2");
	assert_int_equal(c.ev[1].mod, r2);
	assert_int_equal(c.ev[1].create, r1);
	assert_int_equal(c.ev[1].version, 2);
	assert_int_equal(c.ev[2].type, STORE_EVENT_DELETE);
	assert_string_equal(c.ev[2].key, "/w/a");
	assert_int_equal(c.ev[2].mod, r2 + 1);
	assert_int_equal(c.err_calls, 0);

	/* A single-key watch sees only that key. */
	static struct collect one;
	memset(&one, 0, sizeof(one));
	struct store_watch *w1 = watch(f->s, "/w/b", false, 0, &one);
	put(f->s, "/w/bb", "no");
	put(f->s, "/w/b", "yes");
	drain(f->base);
	assert_int_equal(one.n, 1);
	assert_string_equal(one.ev[0].value, "yes");

	/* After cancel, nothing more arrives. */
	store_watch_cancel(w);
	store_watch_cancel(w1);
	size_t before = c.n;
	put(f->s, "/w/c", "late");
	drain(f->base);
	assert_int_equal(c.n, before);
}

static void test_watch_from_past(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	static struct collect c;
	memset(&c, 0, sizeof(c));

	put(f->s, "/h/a", "1");
	int64_t from = put(f->s, "/h/b", "2");
	put(f->s, "/h/a", "3");
	put(f->s, "/h/c", "4");
	put(f->s, "/h/d", "5");
	assert_int_equal(store_delete(f->s, "/h/", true, NULL, &err), 0);

	struct store_watch *w = watch(f->s, "/h/", true, from, &c);
	drain(f->base);
	/* b, a, c, d, then the prefix delete of a, b, c, d in key order. */
	assert_int_equal(c.n, 8);
	assert_string_equal(c.ev[0].key, "/h/b");
	assert_int_equal(c.ev[0].mod, from);
	for (size_t i = 1; i < 4; i++)
		assert_int_equal(c.ev[i].mod, from + (int64_t)i);
	const char *deleted[] = {"/h/a", "/h/b", "/h/c", "/h/d"};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(c.ev[4 + i].type, STORE_EVENT_DELETE);
		assert_string_equal(c.ev[4 + i].key, deleted[i]);
		assert_int_equal(c.ev[4 + i].mod, from + 4);
	}

	/* The same watch then follows live writes. */
	put(f->s, "/h/e", "6");
	drain(f->base);
	assert_int_equal(c.n, 9);
	assert_string_equal(c.ev[8].key, "/h/e");
	store_watch_cancel(w);

	/* A watch from a future revision starts there. */
	static struct collect fut;
	memset(&fut, 0, sizeof(fut));
	int64_t next = current_revision(f->s) + 2;
	w = watch(f->s, "/h/", true, next, &fut);
	put(f->s, "/h/f", "skipped");
	put(f->s, "/h/g", "seen");
	drain(f->base);
	assert_int_equal(fut.n, 1);
	assert_string_equal(fut.ev[0].key, "/h/g");
	store_watch_cancel(w);
}

static void test_watch_large_backlog(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	static struct collect c;
	memset(&c, 0, sizeof(c));
	char key[32];

	for (int i = 0; i < 1500; i++) {
		snprintf(key, sizeof(key), "/big/%04d", i);
		put(f->s, key, "v");
	}
	struct store_watch *w = watch(f->s, "/big/", true, 0, &c);
	int64_t n = 0;
	assert_int_equal(store_delete(f->s, "/big/", true, &n, &err), 0);
	assert_int_equal(n, 1500);
	drain(f->base);
	/* One revision split over several callbacks, nothing lost, in key order. */
	assert_int_equal(c.n, 1500);
	assert_true(c.calls >= 2);
	for (int i = 0; i < 1500; i++) {
		snprintf(key, sizeof(key), "/big/%04d", i);
		assert_string_equal(c.ev[i].key, key);
		assert_int_equal(c.ev[i].type, STORE_EVENT_DELETE);
	}
	store_watch_cancel(w);
}

struct chain {
	struct store *s;
	struct store_watch *w;
	int seen;
};

/* Each event writes the next key until 5, then the watch cancels itself. */
static void chain_cb(const struct store_event *events, size_t n, const struct shoal_err *err,
		     void *userdata)
{
	struct chain *ch = userdata;
	struct shoal_err e = {};
	g_cb_calls++;
	assert_null(err);
	for (size_t i = 0; i < n; i++) {
		ch->seen++;
		int v = atoi(events[i].kv.value);
		if (v < 5) {
			char buf[16];
			snprintf(buf, sizeof(buf), "%d", v + 1);
			assert_int_equal(store_put(ch->s, "/chain", buf, strlen(buf), 0, NULL, &e),
					 0);
		} else {
			store_watch_cancel(ch->w);
		}
	}
}

static void test_watch_callback_writes(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct chain ch = {.s = f->s};

	assert_int_equal(store_watch(f->s, "/chain", false, 0, chain_cb, &ch, &ch.w, &err), 0);
	put(f->s, "/chain", "1");
	drain(f->base);
	assert_int_equal(ch.seen, 5);
	struct store_kvs *kvs = get(f->s, "/chain", false, 0);
	assert_string_equal(kvs->kvs[0].value, "5");
	assert_int_equal(kvs->kvs[0].version, 5);
	store_kvs_free(kvs);

	/* The watch cancelled itself: another write reaches nobody (ASan checks the rest). */
	put(f->s, "/chain", "9");
	drain(f->base);
	assert_int_equal(ch.seen, 5);
}

static void test_compaction(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	static struct collect old, ok;
	memset(&old, 0, sizeof(old));
	memset(&ok, 0, sizeof(ok));

	put(f->s, "/c/a", "1");
	int64_t r2 = put(f->s, "/c/a", "2");
	int64_t r3 = put(f->s, "/c/b", "3");
	assert_int_equal(store_compact(f->s, r3, &err), 0);

	/* Current values survive compaction. */
	struct store_kvs *kvs = get(f->s, "/c/", true, 0);
	assert_int_equal(kvs->n, 2);
	assert_string_equal(kvs->kvs[0].value, "2");
	assert_int_equal(kvs->kvs[0].mod_revision, r2);
	store_kvs_free(kvs);

	struct store_watch *w_old = watch(f->s, "/c/", true, r2, &old);
	struct store_watch *w_ok = watch(f->s, "/c/", true, r3, &ok);
	drain(f->base);
	assert_int_equal(old.err_calls, 1);
	assert_int_equal(old.err_code, ECANCELED);
	assert_int_equal(old.n, 0);
	assert_int_equal(ok.err_calls, 0);
	assert_int_equal(ok.n, 1);
	assert_string_equal(ok.ev[0].key, "/c/b");

	/* A cancelled watch stays quiet. */
	put(f->s, "/c/z", "later");
	drain(f->base);
	assert_int_equal(old.calls, 1);
	assert_int_equal(ok.n, 2);
	store_watch_cancel(w_old);
	store_watch_cancel(w_ok);

	assert_int_equal(store_compact(f->s, r3, &err), -ECANCELED);
	assert_int_equal(store_compact(f->s, current_revision(f->s) + 1, &err), -EINVAL);
}

static bool key_gone(void *arg)
{
	struct fx *f = arg;
	return !key_exists(f->s, "/l/a");
}

static void test_lease_expiry(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	static struct collect c;
	memset(&c, 0, sizeof(c));
	int64_t id = 0;

	assert_int_equal(store_lease_grant(f->s, 1, &id, &err), 0);
	assert_true(id > 0);
	assert_int_equal(store_put(f->s, "/l/a", "x", 1, id, NULL, &err), 0);
	assert_int_equal(store_put(f->s, "/l/b", "y", 1, id, NULL, &err), 0);
	put(f->s, "/l/keep", "z");
	struct store_kvs *kvs = get(f->s, "/l/a", false, 0);
	assert_int_equal(kvs->kvs[0].lease, id);
	store_kvs_free(kvs);
	int64_t rev = current_revision(f->s);

	struct store_watch *w = watch(f->s, "/l/", true, 0, &c);
	assert_true(loop_until(f->base, key_gone, f, 30));
	drain(f->base);

	assert_false(key_exists(f->s, "/l/b"));
	assert_true(key_exists(f->s, "/l/keep"));
	/* Expiry is one write of its own. */
	assert_int_equal(current_revision(f->s), rev + 1);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ev[0].type, STORE_EVENT_DELETE);
	assert_string_equal(c.ev[0].key, "/l/a");
	assert_string_equal(c.ev[1].key, "/l/b");
	assert_int_equal(c.ev[1].mod, rev + 1);

	assert_int_equal(store_lease_keepalive(f->s, id, &err), -ENOENT);
	assert_int_equal(store_put(f->s, "/l/c", "x", 1, id, NULL, &err), -ENOENT);
	store_watch_cancel(w);
}

static void test_lease_revoke(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	int64_t id = 0, other = 0;

	assert_int_equal(store_lease_grant(f->s, 60, &id, &err), 0);
	assert_int_equal(store_lease_grant(f->s, 60, &other, &err), 0);
	assert_int_not_equal(id, other);
	assert_int_equal(store_put(f->s, "/r/a", "1", 1, id, NULL, &err), 0);
	assert_int_equal(store_put(f->s, "/r/b", "2", 1, id, NULL, &err), 0);
	assert_int_equal(store_put(f->s, "/r/o", "3", 1, other, NULL, &err), 0);
	put(f->s, "/r/plain", "4");
	/* A put without the lease detaches the key from it. */
	assert_int_equal(store_put(f->s, "/r/detached", "5", 1, id, NULL, &err), 0);
	put(f->s, "/r/detached", "6");
	int64_t rev = current_revision(f->s);

	assert_int_equal(store_lease_revoke(f->s, id, &err), 0);
	assert_int_equal(current_revision(f->s), rev + 1);
	assert_false(key_exists(f->s, "/r/a"));
	assert_false(key_exists(f->s, "/r/b"));
	assert_true(key_exists(f->s, "/r/o"));
	assert_true(key_exists(f->s, "/r/plain"));
	assert_true(key_exists(f->s, "/r/detached"));
	assert_int_equal(store_lease_revoke(f->s, id, &err), -ENOENT);
	assert_int_equal(store_lease_keepalive(f->s, id, &err), -ENOENT);

	assert_int_equal(store_lease_revoke(f->s, other, &err), 0);
	assert_false(key_exists(f->s, "/r/o"));
	assert_int_equal(current_revision(f->s), rev + 2);

	/* Revoking a lease with no keys is no write. */
	assert_int_equal(store_lease_grant(f->s, 60, &id, &err), 0);
	assert_int_equal(store_lease_revoke(f->s, id, &err), 0);
	assert_int_equal(current_revision(f->s), rev + 2);
}

static int64_t lease_deadline(const char *path, int64_t id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT deadline_ns FROM lease WHERE id = ?", -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void set_lease_deadline(const char *path, int64_t id, int64_t deadline)
{
	sqlite3 *db = NULL;
	char sql[128];
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE lease SET deadline_ns = %lld WHERE id = %lld",
		 (long long)deadline, (long long)id);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

static void test_lease_keepalive(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	int64_t id = 0;

	assert_int_equal(store_lease_grant(f->s, 30, &id, &err), 0);
	assert_int_equal(store_put(f->s, "/ka", "x", 1, id, NULL, &err), 0);
	int64_t d0 = lease_deadline(f->path, id);
	assert_true(d0 > now_ns());

	/* Keep-alive sets the deadline to now + TTL, later than a deadline moved closer. */
	set_lease_deadline(f->path, id, now_ns() + 5 * 1000000000LL);
	assert_int_equal(store_lease_keepalive(f->s, id, &err), 0);
	int64_t d1 = lease_deadline(f->path, id);
	assert_true(d1 >= now_ns() + 20 * 1000000000LL);
	assert_true(key_exists(f->s, "/ka"));

	/* A lease past its deadline cannot be kept alive: it expires on the spot. */
	set_lease_deadline(f->path, id, now_ns() - 1);
	assert_int_equal(store_lease_keepalive(f->s, id, &err), -ENOENT);
	assert_false(key_exists(f->s, "/ka"));
	assert_int_equal(lease_deadline(f->path, id), -1);

	assert_int_equal(store_lease_keepalive(f->s, 987654, &err), -ENOENT);
}

static void test_reopen_persists(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	int64_t id = 0, dead = 0;
	static struct collect c, cc;
	memset(&c, 0, sizeof(c));
	memset(&cc, 0, sizeof(cc));

	int64_t first = put(f->s, "/p/a", "1");
	put(f->s, "/p/b", "2");
	int64_t compact_at = put(f->s, "/p/a", "3");
	assert_int_equal(store_delete(f->s, "/p/b", false, NULL, &err), 0);
	assert_int_equal(store_compact(f->s, compact_at, &err), 0);
	assert_int_equal(store_lease_grant(f->s, 600, &id, &err), 0);
	assert_int_equal(store_lease_grant(f->s, 600, &dead, &err), 0);
	assert_int_equal(store_put(f->s, "/p/leased", "l", 1, id, NULL, &err), 0);
	assert_int_equal(store_put(f->s, "/p/dead", "d", 1, dead, NULL, &err), 0);
	int64_t rev = current_revision(f->s);

	store_close(f->s);
	/* A lease that ran out while the store was closed. */
	set_lease_deadline(f->path, dead, now_ns() - 1000);
	f->s = open_store(f);

	/* Expired on open, before the loop runs: one write. */
	assert_false(key_exists(f->s, "/p/dead"));
	assert_int_equal(current_revision(f->s), rev + 1);

	struct store_kvs *kvs = get(f->s, "/p/", true, 0);
	assert_int_equal(kvs->n, 2);
	assert_string_equal(kvs->kvs[0].key, "/p/a");
	assert_string_equal(kvs->kvs[0].value, "3");
	assert_int_equal(kvs->kvs[0].create_revision, first);
	assert_int_equal(kvs->kvs[0].version, 2);
	assert_int_equal(kvs->kvs[1].lease, id);
	store_kvs_free(kvs);

	/* Revisions, history and the compaction point come back. */
	assert_int_equal(put(f->s, "/p/c", "4"), rev + 2);
	struct store_watch *w = watch(f->s, "/p/", true, compact_at, &c);
	struct store_watch *wc = watch(f->s, "/p/", true, compact_at - 1, &cc);
	drain(f->base);
	assert_int_equal(cc.err_code, ECANCELED);
	assert_int_equal(c.n, 6);
	assert_string_equal(c.ev[0].value, "3");
	assert_int_equal(c.ev[0].mod, compact_at);
	assert_int_equal(c.ev[1].type, STORE_EVENT_DELETE);
	assert_string_equal(c.ev[1].key, "/p/b");
	assert_string_equal(c.ev[2].key, "/p/leased");
	assert_int_equal(c.ev[2].lease, id);
	assert_string_equal(c.ev[3].key, "/p/dead");
	assert_int_equal(c.ev[4].type, STORE_EVENT_DELETE);
	assert_string_equal(c.ev[4].key, "/p/dead");
	assert_int_equal(c.ev[4].mod, rev + 1);
	assert_string_equal(c.ev[5].key, "/p/c");
	store_watch_cancel(w);
	store_watch_cancel(wc);

	/* Leases too: the live one still works, and lease ids are not reused. */
	assert_int_equal(store_lease_keepalive(f->s, id, &err), 0);
	int64_t id2 = 0;
	assert_int_equal(store_lease_grant(f->s, 60, &id2, &err), 0);
	assert_true(id2 > dead);
}

static void test_limits(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	char key[1100];

	memset(key, 'k', sizeof(key));
	key[0] = '/';
	key[1024] = '\0';
	assert_int_equal(store_put(f->s, key, "v", 1, 0, NULL, &err), 0);
	key[1024] = 'k';
	key[1025] = '\0';
	assert_int_equal(store_put(f->s, key, "v", 1, 0, NULL, &err), -ENAMETOOLONG);
	assert_non_null(strstr(err.msg, "1024"));
	assert_int_equal(store_put(f->s, "", "v", 1, 0, NULL, &err), -EINVAL);
	assert_int_equal(store_get(f->s, "", false, 0, &(struct store_kvs *){NULL}, &err), -EINVAL);

	size_t max = 3 * 512 * 1024;
	char *big = malloc(max + 1);
	assert_non_null(big);
	memset(big, 'v', max + 1);
	assert_int_equal(store_put(f->s, "/big", big, max, 0, NULL, &err), 0);
	struct store_kvs *kvs = get(f->s, "/big", false, 0);
	assert_int_equal(kvs->kvs[0].value_len, max);
	store_kvs_free(kvs);
	int64_t rev = current_revision(f->s);
	assert_int_equal(store_put(f->s, "/big", big, max + 1, 0, NULL, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "/big"));
	assert_non_null(strstr(err.msg, "1572865"));
	assert_non_null(strstr(err.msg, "limit"));
	free(big);
	assert_int_equal(current_revision(f->s), rev);

	struct store_op ops[129];
	char keys[129][16];
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		snprintf(keys[i], sizeof(keys[i]), "/ops/%zu", i);
		ops[i] = (struct store_op){
			.type = STORE_OP_PUT, .key = keys[i], .value = "x", .value_len = 1};
	}
	struct store_txn_result res = {};
	assert_int_equal(store_txn(f->s, NULL, 0, ops, 129, NULL, 0, &res, &err), -E2BIG);
	assert_int_equal(store_txn(f->s, NULL, 0, ops, 128, NULL, 0, &res, &err), 0);
	assert_true(res.succeeded);
	store_txn_result_clear(&res);
	kvs = get(f->s, "/ops/", true, 0);
	assert_int_equal(kvs->n, 128);
	store_kvs_free(kvs);

	assert_int_equal(store_lease_grant(f->s, 0, &(int64_t){0}, &err), -EINVAL);
	assert_int_equal(store_put(f->s, "/x", "v", 1, -3, NULL, &err), -EINVAL);
}

static void test_backends(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store *s = NULL;

	struct store_options o = {.backend = "nosuch"};
	assert_int_equal(store_open(&o, &s, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "unknown store backend nosuch"));
	assert_null(s);

	o = (struct store_options){.path = NULL};
	assert_int_equal(store_open(&o, &s, &err), -EINVAL);

	/* No loop: reads and writes work, watches and leases say what is missing. */
	char path[192];
	snprintf(path, sizeof(path), "%s/noloop.db", f->dir);
	o = (struct store_options){.path = path};
	assert_int_equal(store_open(&o, &s, &err), 0);
	assert_int_equal(put(s, "/n", "1"), 2);
	struct store_watch *w = NULL;
	assert_int_equal(store_watch(s, "/n", false, 0, collect_cb, NULL, &w, &err), -EINVAL);
	assert_int_equal(store_lease_grant(s, 5, &(int64_t){0}, &err), -EINVAL);
	store_close(s);
}

static void test_two_handles(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store *b = open_store(f);
	struct store_txn_result res = {};

	int64_t r1 = put(f->s, "/two", "a");
	int64_t r2 = put(b, "/two", "b");
	int64_t r3 = put(f->s, "/other", "c");
	assert_int_equal(r2, r1 + 1);
	assert_int_equal(r3, r2 + 1);

	/* A CAS on a revision read through one handle loses to a write through the other. */
	struct store_cmp cmp = {
		.key = "/two", .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = r1};
	struct store_op op = {.type = STORE_OP_PUT, .key = "/two", .value = "lost", .value_len = 4};
	assert_int_equal(store_txn(f->s, &cmp, 1, &op, 1, NULL, 0, &res, &err), 0);
	assert_false(res.succeeded);
	store_txn_result_clear(&res);
	cmp.num = r2;
	assert_int_equal(store_txn(b, &cmp, 1, &op, 1, NULL, 0, &res, &err), 0);
	assert_true(res.succeeded);
	assert_int_equal(res.revision, r3 + 1);
	store_txn_result_clear(&res);

	struct store_kvs *kvs = get(f->s, "/two", false, 0);
	assert_string_equal(kvs->kvs[0].value, "lost");
	assert_int_equal(kvs->kvs[0].version, 3);
	store_kvs_free(kvs);
	store_close(b);
}

static void test_history_limit(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	static struct collect old, recent;
	memset(&old, 0, sizeof(old));
	memset(&recent, 0, sizeof(recent));
	char path[192];
	struct store *s = NULL;

	snprintf(path, sizeof(path), "%s/short.db", f->dir);
	struct store_options o = {.path = path, .base = f->base, .history_revisions = 10};
	assert_int_equal(store_open(&o, &s, &err), 0);
	for (int i = 0; i < 40; i++)
		put(s, "/hist", "v");
	int64_t rev = current_revision(s);

	/* History older than about 10 revisions is gone; the recent part is there. */
	struct store_watch *w_old = watch(s, "/hist", false, 2, &old);
	struct store_watch *w_recent = watch(s, "/hist", false, rev - 9, &recent);
	drain(f->base);
	assert_int_equal(old.err_code, ECANCELED);
	assert_int_equal(recent.err_calls, 0);
	assert_int_equal(recent.n, 10);
	assert_int_equal(recent.ev[9].mod, rev);
	assert_int_equal(recent.ev[9].version, 40);
	store_watch_cancel(w_old);
	store_watch_cancel(w_recent);
	store_close(s);
}

static void test_file(void **state)
{
	struct fx *f = *state;
	struct stat st;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;

	put(f->s, "/f", "x");
	/* Cluster state is private to the agent, and the journal is a WAL. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static int64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

static int64_t db_pragma(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* Deleted records give their space back to the file system: the file shrinks. */
static void test_vacuum(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	char path[192], key[64];
	static char value[8192];
	struct store *s = NULL;

	memset(value, 'v', sizeof(value) - 1);
	snprintf(path, sizeof(path), "%s/vacuum.db", f->dir);
	struct store_options o = {.path = path, .base = f->base, .history_revisions = 10};
	assert_int_equal(store_open(&o, &s, &err), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "/big/%04d", i);
		assert_int_equal(store_put(s, key, value, sizeof(value) - 1, 0, NULL, &err), 0);
	}
	store_close(s);
	int64_t full = file_size(path);
	assert_true(full > 8000 * 1000);
	assert_int_equal(db_pragma(path, "PRAGMA auto_vacuum"), 2);

	assert_int_equal(store_open(&o, &s, &err), 0);
	assert_int_equal(store_delete(s, "/big/", true, NULL, &err), 0);
	for (int i = 0; i < 20; i++) /* history of the deleted values compacted away */
		put(s, "/small", "x");
	store_close(s);
	assert_int_equal(store_open(&o, &s, &err), 0);
	store_close(s);
	int64_t shrunk = file_size(path);
	print_message("state.db: %lld bytes with 1000 records of 8k, %lld after deleting them\n",
		      (long long)full, (long long)shrunk);
	assert_true(shrunk < full / 10);

	/* A database from before auto_vacuum is switched over once. */
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA auto_vacuum=NONE; VACUUM", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(db_pragma(path, "PRAGMA auto_vacuum"), 0);
	assert_int_equal(store_open(&o, &s, &err), 0);
	struct store_kvs *kvs = get(s, "/small", false, 0);
	assert_int_equal(kvs->n, 1);
	store_kvs_free(kvs);
	store_close(s);
	assert_int_equal(db_pragma(path, "PRAGMA auto_vacuum"), 2);
}

struct want {
	struct collect *c;
	size_t n;
};

static bool have_events(void *arg)
{
	struct want *w = arg;
	return w->c->n >= w->n || w->c->err_calls > 0;
}

/* Runs the loop until c has n events (a watch may be waiting to reconnect), then a while
 * longer so that anything delivered twice would show. */
static void wait_events(struct fx *f, struct collect *c, size_t n)
{
	struct want w = {.c = c, .n = n};
	loop_until(f->base, have_events, &w, 30);
	drain(f->base);
}

/* Runs the loop for ms, whatever happens on it. */
static void run_for(struct event_base *base, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

struct lost {
	int calls;
	int code;
	int64_t id;
};

static void lost_cb(int64_t id, const struct shoal_err *err, void *userdata)
{
	struct lost *l = userdata;
	l->calls++;
	l->code = err->code;
	l->id = id;
}

static bool lease_lost(void *arg)
{
	return ((struct lost *)arg)->calls > 0;
}

static void test_lease_keeper(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store_lease_keeper *k = NULL;
	struct lost l = {};
	int64_t id = 0;

	/* etcd's shortest TTL is about 2 s, whatever is asked for. */
	assert_int_equal(store_lease_grant(f->s, 2, &id, &err), 0);
	assert_int_equal(store_put(f->s, "/keep/a", "x", 1, id, NULL, &err), 0);
	assert_int_equal(store_lease_keep(f->s, id, 2, lost_cb, &l, &k, &err), 0);
	/* Past the TTL: only renewals kept the key. */
	run_for(f->base, 3000);
	assert_true(key_exists(f->s, "/keep/a"));
	assert_int_equal(l.calls, 0);

	/* Gone behind the keeper's back: it says so, once. */
	assert_int_equal(store_lease_revoke(f->s, id, &err), 0);
	assert_true(loop_until(f->base, lease_lost, &l, 10));
	assert_int_equal(l.code, ENOENT);
	assert_int_equal(l.id, id);
	run_for(f->base, 500);
	assert_int_equal(l.calls, 1);
	store_lease_keeper_stop(k);

	assert_int_equal(store_lease_keep(f->s, 0, 2, lost_cb, &l, &k, &err), -EINVAL);
	assert_int_equal(store_lease_keep(f->s, id, 0, lost_cb, &l, &k, &err), -EINVAL);
}

static void test_backends_etcd(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store *s = NULL;
	static const char *const bad[] = {
		"",
		"ftp://127.0.0.1:2379",
		"http://127.0.0.1",
		"http://127.0.0.1:2379/v3",
		"127.0.0.1:2379",
		"http://127.0.0.1:x",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct store_options o = {.backend = "etcd", .endpoints = bad[i]};
		assert_int_equal(store_open(&o, &s, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "endpoint"));
		assert_null(s);
	}
	/* TLS options that cannot work are refused, not ignored. */
	struct store_options o = {.backend = "etcd", .endpoints = f->etcd.url, .cert = "/x"};
	assert_int_equal(store_open(&o, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "key"));
	o = (struct store_options){
		.backend = "etcd", .endpoints = f->etcd.url, .cacert = "/nonexistent/ca.pem"};
	assert_int_equal(store_open(&o, &s, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));
	o = (struct store_options){.backend = "etcd", .endpoints = f->etcd.url, .username = "u"};
	assert_int_equal(store_open(&o, &s, &err), -EINVAL);

	/* No loop: reads and writes work, watches say what is missing. */
	o = (struct store_options){.backend = "etcd", .endpoints = f->etcd.url};
	assert_int_equal(store_open(&o, &s, &err), 0);
	assert_int_equal(put(s, "/n", "1"), 2);
	struct store_watch *w = NULL;
	assert_int_equal(store_watch(s, "/n", false, 0, collect_cb, NULL, &w, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "event loop"));
	store_close(s);
}

/* A watch carries on across etcd restarts, from where it was, with nothing lost or twice. */
static void test_etcd_watch_restart(void **state)
{
	struct fx *f = *state;
	static struct collect c;
	memset(&c, 0, sizeof(c));
	char key[32];
	int64_t first = 0;

	struct store_watch *w = watch(f->s, "/rs/", true, 0, &c);
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "/rs/a%d", i);
		int64_t rev = put(f->s, key, "a");
		if (i == 0)
			first = rev;
	}
	drain(f->base);
	assert_int_equal(c.n, 3);

	/* Killed and back: the loop has not run, so the writes after it reach the watch only
	 * through its reconnect, as history. Then once more before it had the chance. */
	etcd_fixture_kill(&f->etcd);
	drain(f->base);
	assert_int_equal(etcd_fixture_restart(&f->etcd), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "/rs/b%d", i);
		put(f->s, key, "b");
	}
	etcd_fixture_kill(&f->etcd);
	assert_int_equal(etcd_fixture_restart(&f->etcd), 0);
	put(f->s, "/other", "x");
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "/rs/c%d", i);
		put(f->s, key, "c");
	}
	wait_events(f, &c, 9);

	assert_int_equal(c.err_calls, 0);
	assert_int_equal(c.n, 9);
	for (size_t i = 0; i < 9; i++) {
		/* /other sits between the b and c keys. */
		int64_t want = first + (int64_t)i + (i >= 6 ? 1 : 0);
		assert_int_equal(c.ev[i].mod, want);
		snprintf(key, sizeof(key), "/rs/%c%zu", "abc"[i / 3], i % 3);
		assert_string_equal(c.ev[i].key, key);
	}
	store_watch_cancel(w);
}

static bool watch_ended(void *arg)
{
	return ((struct collect *)arg)->err_calls > 0;
}

/* A watch that comes back to find its next revision compacted ends with ECANCELED. */
static void test_etcd_watch_compacted_meanwhile(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	static struct collect c;
	memset(&c, 0, sizeof(c));

	struct store_watch *w = watch(f->s, "/cm/", true, 0, &c);
	put(f->s, "/cm/a", "1");
	drain(f->base);
	assert_int_equal(c.n, 1);

	etcd_fixture_kill(&f->etcd);
	assert_int_equal(etcd_fixture_restart(&f->etcd), 0);
	put(f->s, "/cm/b", "2");
	int64_t rev = put(f->s, "/cm/c", "3");
	assert_int_equal(store_compact(f->s, rev, &err), 0);
	assert_true(loop_until(f->base, watch_ended, &c, 30));
	assert_int_equal(c.err_code, ECANCELED);
	assert_int_equal(c.n, 1);
	store_watch_cancel(w);
}

/* The first endpoint is dead: calls and watches use the next, and a list of dead ones
 * says what each said. */
static void test_etcd_failover(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store *s = NULL;
	static struct collect c;
	memset(&c, 0, sizeof(c));
	char eps[256], dead[64], dead2[64];

	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", etcd_fixture_free_port());
	snprintf(dead2, sizeof(dead2), "http://127.0.0.1:%d", etcd_fixture_free_port());
	snprintf(eps, sizeof(eps), "%s,%s", dead, f->etcd.url);
	struct store_options o = {.backend = "etcd", .endpoints = eps, .base = f->base};
	assert_int_equal(store_open(&o, &s, &err), 0);
	struct store_watch *w = watch(s, "/fo/", true, 0, &c);
	int64_t rev = put(s, "/fo/a", "1");
	struct store_kvs *kvs = get(s, "/fo/a", false, 0);
	assert_int_equal(kvs->n, 1);
	store_kvs_free(kvs);
	drain(f->base);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ev[0].mod, rev);
	store_watch_cancel(w);
	store_close(s);

	/* A watch that starts on the dead endpoint moves on too. */
	snprintf(eps, sizeof(eps), "%s,%s", f->etcd.url, dead);
	o.endpoints = eps;
	assert_int_equal(store_open(&o, &s, &err), 0);
	memset(&c, 0, sizeof(c));
	w = watch(s, "/fo/", true, 0, &c);
	etcd_fixture_kill(&f->etcd);
	drain(f->base);
	assert_int_equal(etcd_fixture_restart(&f->etcd), 0);
	put(s, "/fo/b", "2");
	wait_events(f, &c, 1);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.ev[0].key, "/fo/b");
	store_watch_cancel(w);
	store_close(s);
	s = NULL;

	snprintf(eps, sizeof(eps), "%s,%s", dead, dead2);
	o.endpoints = eps;
	assert_int_equal(store_open(&o, &s, &err), -ECONNREFUSED);
	print_message("no member: %s\n", err.msg);
	assert_non_null(strstr(err.msg, dead));
	assert_non_null(strstr(err.msg, dead2));
	assert_null(s);
}

static void test_etcd_auth(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store *s = NULL;
	static struct collect c;
	memset(&c, 0, sizeof(c));

	static const char *const add[] = {"user", "add", "root:s3cret", NULL};
	static const char *const enable[] = {"auth", "enable", NULL};
	assert_int_equal(etcd_fixture_ctl(&f->etcd, add), 0);
	assert_int_equal(etcd_fixture_ctl(&f->etcd, enable), 0);

	struct store_options o = {.backend = "etcd",
				  .endpoints = f->etcd.url,
				  .base = f->base,
				  .username = "root",
				  .password = "wrong"};
	assert_int_equal(store_open(&o, &s, &err), -EACCES);
	print_message("wrong password: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "authentication failed"));
	assert_non_null(strstr(err.msg, "root"));
	assert_non_null(strstr(err.msg, f->etcd.url));
	assert_null(s);

	/* The store opened before auth was enabled now gets told it is not allowed. */
	assert_int_equal(store_put(f->s, "/x", "1", 1, 0, NULL, &err), -EACCES);

	o.password = "s3cret";
	assert_int_equal(store_open(&o, &s, &err), 0);
	struct store_watch *w = watch(s, "/au/", true, 0, &c);
	put(s, "/au/a", "1");
	drain(f->base);
	assert_int_equal(c.n, 1);

	/* etcd's simple tokens do not survive a restart: the store fetches a new one, for
	 * its calls and for its watch. */
	etcd_fixture_kill(&f->etcd);
	assert_int_equal(etcd_fixture_restart(&f->etcd), 0);
	put(s, "/au/b", "2");
	wait_events(f, &c, 2);
	assert_int_equal(c.err_calls, 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.ev[1].key, "/au/b");
	store_watch_cancel(w);
	store_close(s);
}

static void test_etcd_tls(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {};
	struct store *s = NULL;
	struct etcd_fixture *tls = &f->extra;
	static struct collect c;
	memset(&c, 0, sizeof(c));

	assert_int_equal(etcd_fixture_start(tls, true), 0);
	struct store_options o = {.backend = "etcd",
				  .endpoints = tls->url,
				  .base = f->base,
				  .cacert = tls->cacert,
				  .cert = tls->cert,
				  .key = tls->key};
	assert_int_equal(store_open(&o, &s, &err), 0);
	struct store_watch *w = watch(s, "/tls/", true, 0, &c);
	assert_int_equal(put(s, "/tls/a", "1"), 2);
	drain(f->base);
	assert_int_equal(c.n, 1);
	store_watch_cancel(w);
	store_close(s);
	s = NULL;

	/* The member wants a client certificate. */
	o.cert = o.key = NULL;
	assert_true(store_open(&o, &s, &err) < 0);
	print_message("no client certificate: %s\n", err.msg);
	assert_non_null(strstr(err.msg, tls->url));
	assert_null(s);
	/* A CA that did not sign the member's certificate. */
	o = (struct store_options){.backend = "etcd",
				   .endpoints = tls->url,
				   .cacert = tls->cert,
				   .cert = tls->cert,
				   .key = tls->key};
	assert_true(store_open(&o, &s, &err) < 0);
	assert_null(s);
	/* TLS files with a plain http endpoint would be ignored: refused. */
	o.endpoints = f->etcd.url;
	assert_int_equal(store_open(&o, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "https"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest common[] = {
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_cas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_gets_and_atomicity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_from_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_from_past, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_large_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_callback_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_keeper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
	};
	/* Facts of the SQLite file: its path, its deadlines, several handles on it. */
	const struct CMUnitTest sqlite_only[] = {
		cmocka_unit_test_setup_teardown(test_lease_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vacuum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file, setup, teardown),
	};
	const struct CMUnitTest etcd_only[] = {
		cmocka_unit_test_setup_teardown(test_backends_etcd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_watch_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_watch_compacted_meanwhile, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_etcd_failover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_tls, setup, teardown),
	};

	if (argc > 1 && strcmp(argv[1], "etcd") == 0)
		g_etcd = true;
	else if (argc > 1 && strcmp(argv[1], "sqlite") != 0) {
		fprintf(stderr, "usage: %s [sqlite|etcd]\n", argv[0]);
		return 2;
	}
	int failed = _cmocka_run_group_tests(g_etcd ? "store-etcd common" : "store-sqlite common",
					     common, ARRAY_SIZE(common), NULL, NULL);
	if (g_etcd)
		failed += cmocka_run_group_tests_name("store-etcd", etcd_only, NULL, NULL);
	else
		failed += cmocka_run_group_tests_name("store-sqlite", sqlite_only, NULL, NULL);
	return failed;
}
