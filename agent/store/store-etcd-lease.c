// SPDX-License-Identifier: Apache-2.0
/*
 * Lease keep-alives of the etcd backend, on a thread of the store's own with
 * a connection of its own: the store's blocking calls hold the caller's loop
 * for a round trip each, and a burst of them (a leader writing a thousand
 * tasks) or any long turn of the loop would otherwise hold the renewals back
 * until the leases ran out. The thread batches: every lease due (or due
 * within a twelfth of its TTL) goes in one /v3/lease/keepalive request, whose
 * body is a stream of {"ID": ...} and whose answer a stream of one result
 * each, so that a process keeping a thousand leases sends one request per
 * round, not a thousand. A lease is renewed every third of its TTL, less up
 * to a tenth for jitter, so that agents started together spread out.
 *
 * etcd answering a lease with no TTL means it is gone: its owner hears it
 * once, on the loop (a pipe wakes it). A member that cannot be reached is
 * left for the next, retried after a short backoff; only etcd decides that
 * a lease ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/store/store-etcd-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define KEEPALIVE_RESPONSE_MAX (16u << 20)
/* Leases in one request at most; more go in the next, at once. */
#define KEEPALIVE_BATCH_MAX    4096
#define KEEPALIVE_RETRY_MIN_MS 100
#define KEEPALIVE_RETRY_MAX_MS 1000

struct etcd_keeper {
	struct store_lease_keeper pub;
	struct etcd_store *es;
	struct etcd_keeper *prev, *next; /* in the renewer's list, under its lock */
	int64_t id, ttl_s;
	store_lease_lost_cb cb;
	void *userdata;
	/* the renewer's, under its lock */
	int64_t due_ns; /* mono_ns() of the next renewal */
	bool in_flight, answered;
	bool lost, reported;
	struct shoal_err err;
};

struct etcd_renewer {
	struct etcd_store *es;
	pthread_t tid;
	bool started;
	pthread_mutex_t lock;
	/* under lock */
	struct etcd_keeper *keepers;
	bool quit;
	/* the thread's own */
	CURLM *multi;
	CURL *h;
	struct curl_slist *hd;
	char *body;
	struct etcd_buf in;
	bool auth, need_auth;
	char *token;
	size_t ep;
	int64_t retry_at, backoff_ms;
	unsigned seed;
	/* losses to the loop */
	int pipe[2];
	struct event *ev;
};

static void renewer_release(struct etcd_renewer *rn)
{
	if (rn->h) {
		curl_multi_remove_handle(rn->multi, rn->h);
		curl_easy_cleanup(rn->h);
		rn->h = NULL;
	}
	curl_slist_free_all(rn->hd);
	rn->hd = NULL;
	free(rn->body);
	rn->body = NULL;
	etcd_buf_free(&rn->in);
}

static size_t renewer_write_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct etcd_renewer *rn = userdata;
	size_t n = size * nmemb;
	return etcd_buf_append(&rn->in, p, n, KEEPALIVE_RESPONSE_MAX) < 0 ? 0 : n;
}

/* The next renewal of k, from now: a third of its TTL less up to a tenth. */
static int64_t next_due(struct etcd_renewer *rn, const struct etcd_keeper *k, int64_t now)
{
	int64_t period = k->ttl_s * 1000000000LL / 3;
	return now + period - (int64_t)(rand_r(&rn->seed) % 1000) * (period / 10) / 1000;
}

/* Under the lock: starts a request for what is due; returns how long the
 * thread may sleep (ms) before something is. */
static long renewer_start(struct etcd_renewer *rn, int64_t now)
{
	struct etcd_store *es = rn->es;
	int64_t soonest = INT64_MAX;
	if (rn->h)
		return 100;
	if (now < rn->retry_at)
		return (long)((rn->retry_at - now) / 1000000) + 1;
	bool due = false;
	for (struct etcd_keeper *k = rn->keepers; k && !due; k = k->next)
		due = !k->lost && k->due_ns <= now;
	if (!due) {
		for (struct etcd_keeper *k = rn->keepers; k; k = k->next)
			if (!k->lost && k->due_ns < soonest)
				soonest = k->due_ns;
		if (soonest == INT64_MAX)
			return 1000;
		return (long)((soonest - now) / 1000000) + 1;
	}
	struct etcd_buf b = {0};
	rn->auth = rn->need_auth && es->username;
	if (rn->auth) {
		json_t *j = json_pack("{s:s, s:s}", "name", es->username, "password", es->password);
		char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (s && etcd_buf_append(&b, s, strlen(s), SIZE_MAX) < 0) {
			free(s);
			s = NULL;
		}
		free(s);
	} else {
		/* everything due, and what would be within a twelfth of its TTL:
		 * renewed a little early, in the same request */
		size_t n = 0;
		for (struct etcd_keeper *k = rn->keepers; k && n < KEEPALIVE_BATCH_MAX;
		     k = k->next) {
			if (k->lost || k->due_ns - k->ttl_s * 1000000000LL / 12 > now)
				continue;
			char one[48];
			int len = snprintf(one, sizeof(one), "{\"ID\":\"%lld\"}", (long long)k->id);
			if (etcd_buf_append(&b, one, (size_t)len, SIZE_MAX) < 0)
				break;
			k->in_flight = true;
			k->answered = false;
			n++;
		}
	}
	if (!b.data)
		goto fail;
	rn->body = b.data;
	rn->h = curl_easy_init();
	if (!rn->h ||
	    etcd_easy_setup_token(es, rn->h, es->endpoints[rn->ep],
				  rn->auth ? "/v3/auth/authenticate" : "/v3/lease/keepalive",
				  rn->token, &rn->hd) < 0)
		goto fail;
	/* an answer later than a third of the TTL comes too late to count on:
	 * another member (or the same, anew) is asked instead */
	long timeout = ETCD_REQUEST_TIMEOUT_MS;
	for (struct etcd_keeper *k = rn->keepers; k; k = k->next)
		if (k->in_flight && k->ttl_s * 1000 / 3 < timeout)
			timeout = (long)(k->ttl_s * 1000 / 3);
	if (timeout < 1000)
		timeout = 1000;
	curl_easy_setopt(rn->h, CURLOPT_POSTFIELDS, rn->body);
	curl_easy_setopt(rn->h, CURLOPT_POSTFIELDSIZE, (long)b.len);
	curl_easy_setopt(rn->h, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(rn->h, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(rn->h, CURLOPT_WRITEFUNCTION, renewer_write_cb);
	curl_easy_setopt(rn->h, CURLOPT_WRITEDATA, rn);
	if (curl_multi_add_handle(rn->multi, rn->h) != CURLM_OK)
		goto fail;
	return 100;
fail:
	renewer_release(rn);
	for (struct etcd_keeper *k = rn->keepers; k; k = k->next)
		k->in_flight = false;
	rn->retry_at = now + KEEPALIVE_RETRY_MAX_MS * 1000000LL;
	return KEEPALIVE_RETRY_MAX_MS;
}

static struct etcd_keeper *find_in_flight(struct etcd_renewer *rn, int64_t id)
{
	for (struct etcd_keeper *k = rn->keepers; k; k = k->next)
		if (k->in_flight && k->id == id)
			return k;
	return NULL;
}

/* Under the lock: one result of the stream. */
static void renewer_result(struct etcd_renewer *rn, json_t *res, int64_t mono, int64_t wall,
			   bool *ret_lost)
{
	struct etcd_keeper *k = find_in_flight(rn, etcd_int_member(res, "ID"));
	if (!k)
		return; /* stopped meanwhile */
	k->answered = true;
	k->in_flight = false;
	if (etcd_int_member(res, "TTL") <= 0) {
		k->lost = true;
		shoal_err_set(&k->err, ENOENT, "lease %lld expired or was revoked (etcd at %s)",
			      (long long)k->id, rn->es->endpoints[rn->ep]);
		*ret_lost = true;
		return;
	}
	__atomic_store_n(&k->pub.renewed_ns, wall, __ATOMIC_RELAXED);
	k->due_ns = next_due(rn, k, mono);
}

/* A request ended: what it renewed, what it found gone, and what is tried
 * again (another member, after a backoff). */
static void renewer_done(struct etcd_renewer *rn, CURLcode rc)
{
	struct etcd_store *es = rn->es;
	int64_t mono = mono_ns(), wall = now_ns();
	bool lost = false, ok = false, reauth = false;

	pthread_mutex_lock(&rn->lock);
	if (rc != CURLE_OK || !rn->in.data)
		goto out;
	if (rn->auth) {
		json_t *j = json_loadb(rn->in.data, rn->in.len, 0, NULL);
		const char *tok = json_string_value(json_object_get(j, "token"));
		char *t = tok && *tok ? strdup(tok) : NULL;
		if (t) {
			free(rn->token);
			rn->token = t;
			rn->need_auth = false;
			ok = true;
		}
		json_decref(j);
		goto out;
	}
	/* {"result": {...}} once per lease asked about, one after another */
	size_t off = 0;
	while (off < rn->in.len) {
		json_error_t jerr;
		json_t *j = json_loadb(rn->in.data + off, rn->in.len - off, JSON_DISABLE_EOF_CHECK,
				       &jerr);
		if (!j)
			break;
		off += jerr.position;
		const char *m = json_string_value(json_object_get(j, "message"));
		if (!m)
			m = json_string_value(
				json_object_get(json_object_get(j, "error"), "message"));
		json_t *res = json_object_get(j, "result");
		if (etcd_token_invalid(m))
			reauth = true;
		else if (json_is_object(res)) {
			renewer_result(rn, res, mono, wall, &lost);
			ok = true;
		}
		json_decref(j);
	}
	if (reauth && es->username) {
		rn->need_auth = true;
		rn->retry_at = 0;
	}
out:
	/* what got no answer is asked again */
	bool missing = false;
	for (struct etcd_keeper *k = rn->keepers; k; k = k->next) {
		missing = missing || (k->in_flight && !k->answered);
		k->in_flight = false;
	}
	if (ok) {
		__atomic_store_n(&es->renew_answered_ns, mono, __ATOMIC_RELAXED);
		rn->backoff_ms = 0;
	}
	if (!ok || (missing && !reauth)) {
		if (!ok)
			rn->ep = (rn->ep + 1) % es->n_endpoints;
		rn->backoff_ms = rn->backoff_ms ? rn->backoff_ms * 2 : KEEPALIVE_RETRY_MIN_MS;
		if (rn->backoff_ms > KEEPALIVE_RETRY_MAX_MS)
			rn->backoff_ms = KEEPALIVE_RETRY_MAX_MS;
		rn->retry_at = mono + rn->backoff_ms * 1000000LL;
	}
	pthread_mutex_unlock(&rn->lock);
	renewer_release(rn);
	if (lost) {
		char c = 1;
		/* the loop may already have a wake-up pending: one is enough */
		if (write(rn->pipe[1], &c, 1) < 0 && errno != EAGAIN)
			return;
	}
}

static void *renewer_main(void *arg)
{
	struct etcd_renewer *rn = arg;
	for (;;) {
		pthread_mutex_lock(&rn->lock);
		if (rn->quit) {
			pthread_mutex_unlock(&rn->lock);
			break;
		}
		long wait_ms = renewer_start(rn, mono_ns());
		pthread_mutex_unlock(&rn->lock);
		int running = 0;
		curl_multi_perform(rn->multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(rn->multi, &left)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == rn->h)
				renewer_done(rn, m->data.result);
		if (!rn->h) {
			/* something may be due already (a batch cut short, a retry) */
			pthread_mutex_lock(&rn->lock);
			long w = renewer_start(rn, mono_ns());
			pthread_mutex_unlock(&rn->lock);
			if (rn->h) {
				curl_multi_perform(rn->multi, &running);
				continue;
			}
			wait_ms = w;
		}
		if (wait_ms > 1000)
			wait_ms = 1000;
		if (wait_ms < 1)
			wait_ms = 1;
		curl_multi_poll(rn->multi, NULL, 0, (int)wait_ms, NULL);
	}
	return NULL;
}

/* On the loop: the owners of leases found gone hear it, once each. */
static void lost_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_renewer *rn = arg;
	char buf[64];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	for (;;) {
		/* one at a time: a callback may stop any keeper, its own too */
		pthread_mutex_lock(&rn->lock);
		struct etcd_keeper *k = rn->keepers;
		while (k && !(k->lost && !k->reported))
			k = k->next;
		if (k)
			k->reported = true;
		pthread_mutex_unlock(&rn->lock);
		if (!k)
			break;
		k->cb(k->id, &k->err, k->userdata);
	}
}

void etcd_renewer_free(struct etcd_store *es)
{
	struct etcd_renewer *rn = es->renewer;
	if (!rn)
		return;
	if (rn->started) {
		pthread_mutex_lock(&rn->lock);
		rn->quit = true;
		pthread_mutex_unlock(&rn->lock);
		curl_multi_wakeup(rn->multi);
		pthread_join(rn->tid, NULL);
	}
	renewer_release(rn);
	while (rn->keepers) {
		struct etcd_keeper *k = rn->keepers;
		rn->keepers = k->next;
		free(k);
	}
	if (rn->multi)
		curl_multi_cleanup(rn->multi);
	if (rn->ev)
		event_free(rn->ev);
	for (int i = 0; i < 2; i++)
		if (rn->pipe[i] >= 0)
			close(rn->pipe[i]);
	free(rn->token);
	pthread_mutex_destroy(&rn->lock);
	free(rn);
	es->renewer = NULL;
}

static int renewer_new(struct etcd_store *es, struct shoal_err *err)
{
	struct etcd_renewer *rn = calloc(1, sizeof(*rn));
	if (!rn)
		return shoal_err_set(err, ENOMEM, "out of memory");
	es->renewer = rn;
	rn->es = es;
	rn->pipe[0] = rn->pipe[1] = -1;
	rn->ep = es->cur;
	rn->seed = (unsigned)mono_ns() ^ (unsigned)getpid();
	pthread_mutex_init(&rn->lock, NULL);
	if (es->token && !(rn->token = strdup(es->token)))
		goto oom;
	rn->need_auth = es->username && !rn->token;
	if (pipe2(rn->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		int e = errno;
		etcd_renewer_free(es);
		return shoal_err_errno(err, e, "the keep-alive thread's pipe");
	}
	rn->multi = curl_multi_init();
	rn->ev = event_new(es->base, rn->pipe[0], EV_READ | EV_PERSIST, lost_cb, rn);
	if (!rn->multi || !rn->ev || event_add(rn->ev, NULL) < 0)
		goto oom;
	int r = pthread_create(&rn->tid, NULL, renewer_main, rn);
	if (r) {
		etcd_renewer_free(es);
		return shoal_err_errno(err, r, "starting the keep-alive thread");
	}
	rn->started = true;
	return 0;
oom:
	etcd_renewer_free(es);
	return shoal_err_set(err, ENOMEM, "out of memory for the keep-alive thread");
}

int etcd_lease_keep(struct store *s, int64_t id, int64_t ttl_s, store_lease_lost_cb cb,
		    void *userdata, struct store_lease_keeper **ret, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	if (!es->renewer) {
		int r = renewer_new(es, err);
		if (r < 0)
			return r;
	}
	struct etcd_renewer *rn = es->renewer;
	struct etcd_keeper *k = calloc(1, sizeof(*k));
	if (!k)
		return shoal_err_set(err, ENOMEM, "out of memory");
	k->pub.store = s;
	k->pub.renewed_ns = now_ns();
	k->es = es;
	k->id = id;
	k->ttl_s = ttl_s;
	k->cb = cb;
	k->userdata = userdata;
	pthread_mutex_lock(&rn->lock);
	k->due_ns = next_due(rn, k, mono_ns());
	k->next = rn->keepers;
	if (rn->keepers)
		rn->keepers->prev = k;
	rn->keepers = k;
	pthread_mutex_unlock(&rn->lock);
	curl_multi_wakeup(rn->multi);
	*ret = &k->pub;
	return 0;
}

void etcd_lease_keeper_stop(struct store_lease_keeper *pk)
{
	struct etcd_keeper *k = (struct etcd_keeper *)pk;
	if (!k)
		return;
	struct etcd_renewer *rn = k->es->renewer;
	pthread_mutex_lock(&rn->lock);
	if (k->prev)
		k->prev->next = k->next;
	else if (rn->keepers == k)
		rn->keepers = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&rn->lock);
	free(k);
}
