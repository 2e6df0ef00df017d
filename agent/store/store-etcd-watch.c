// SPDX-License-Identifier: Apache-2.0
/*
 * Watches of the etcd backend. Each watch is one /v3/watch request on the multi handle:
 * the gateway answers with a chunked stream of newline-separated JSON objects. Events are
 * parsed as they arrive into the watch's queue and handed to the callback from an event of
 * their own, never from inside libcurl, so that a callback may read, write and cancel any
 * watch. When the stream ends (a member restarted, went away or lost its leader) the watch
 * connects again, to the next endpoint, after a capped, jittered backoff, from the revision
 * after the last one it received; etcd says when that revision was compacted, and the
 * watch then ends with ECANCELED.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/store/store-etcd-internal.h"
#include "lib/cleanup.h"

/* Events per callback; a longer queue is delivered over several loop turns. */
#define WATCH_BATCH_MAX 1000
/* Events received and not yet delivered; past this the stream pauses until they are. */
#define WATCH_QUEUE_MAX	  100000
#define AUTH_RESPONSE_MAX (64u << 10)

enum watch_phase { PH_IDLE, PH_AUTH, PH_STREAM };

struct etcd_watch {
	struct store_watch pub;
	struct etcd_xfer xfer;
	struct etcd_store *es;
	struct etcd_watch *prev, *next;
	char *key;
	bool prefix;
	store_watch_cb cb;
	void *userdata;
	int64_t next_rev; /* the stream (re)starts here */
	/* The request in flight. */
	enum watch_phase phase;
	CURL *h;
	struct curl_slist *hd;
	char *body;
	struct etcd_buf in; /* an unfinished line of the stream, or the auth answer */
	size_t ep;
	int backoff_ms;
	bool created; /* etcd created the watch on this connection */
	bool need_auth;
	bool paused;
	/* Received, not yet delivered: q[q_head, q_len). */
	struct store_event *q;
	size_t q_head, q_len, q_cap;
	struct event *deliver_ev, *retry_ev;
	struct shoal_err end; /* delivered after the queue when ending */
	bool ending;
	bool queued, in_cb, cancelled, dead;
};

#define W_OF_XFER(x) ((struct etcd_watch *)((char *)(x)-offsetof(struct etcd_watch, xfer)))

static void watch_queue(struct etcd_watch *w)
{
	if (w->queued || w->dead || w->cancelled)
		return;
	w->queued = true;
	event_active(w->deliver_ev, EV_TIMEOUT, 0);
}

__attribute__((format(printf, 3, 4))) static void watch_end(struct etcd_watch *w, int code,
							    const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(w->end.msg)];

	if (w->ending)
		return;
	w->ending = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	shoal_err_set(&w->end, code, "%s", msg);
	watch_queue(w);
}

static void xfer_release(struct etcd_watch *w)
{
	if (w->h) {
		curl_multi_remove_handle(w->es->multi, w->h);
		curl_easy_cleanup(w->h);
		w->h = NULL;
	}
	curl_slist_free_all(w->hd);
	w->hd = NULL;
	free(w->body);
	w->body = NULL;
	etcd_buf_free(&w->in);
	w->phase = PH_IDLE;
	w->paused = false;
}

void etcd_watch_free(struct etcd_watch *w)
{
	struct etcd_store *es = w->es;

	if (w->prev)
		w->prev->next = w->next;
	else if (es->watches == w)
		es->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	xfer_release(w);
	if (w->deliver_ev)
		event_free(w->deliver_ev);
	if (w->retry_ev)
		event_free(w->retry_ev);
	for (size_t i = w->q_head; i < w->q_len; i++)
		store_kv_clear(&w->q[i].kv);
	free(w->q);
	free(w->key);
	free(w);
}

static int queue_push(struct etcd_watch *w, struct store_event *e)
{
	if (w->q_len == w->q_cap && w->q_head > 0) {
		memmove(w->q, w->q + w->q_head, (w->q_len - w->q_head) * sizeof(*w->q));
		w->q_len -= w->q_head;
		w->q_head = 0;
	}
	if (w->q_len == w->q_cap) {
		size_t cap = w->q_cap ? w->q_cap * 2 : 64;
		struct store_event *q = reallocarray(w->q, cap, sizeof(*q));
		if (!q)
			return -ENOMEM;
		w->q = q;
		w->q_cap = cap;
	}
	w->q[w->q_len++] = *e;
	return 0;
}

/* One message of the stream. < 0: stop this connection (the watch ended, or it must
 * connect again). */
static int watch_message(struct etcd_watch *w, const char *line, size_t len)
{
	const char *ep = w->es->endpoints[w->ep];
	json_error_t jerr;
	json_t *j = json_loadb(line, len, 0, &jerr);
	int r = 0;

	if (!json_is_object(j)) {
		watch_end(w, EPROTO, "watch on %s: etcd at %s sent a message that is not JSON",
			  w->key, ep);
		r = -EPROTO;
		goto out;
	}
	json_t *res = json_object_get(j, "result");
	if (!res) {
		/* The stream failed: {"error": {"grpc_code", "message", ...}}. */
		json_t *e = json_object_get(j, "error");
		const char *m = json_string_value(json_object_get(e, "message"));
		if (etcd_token_invalid(m))
			w->need_auth = true;
		r = -EAGAIN;
		goto out;
	}
	if (json_is_true(json_object_get(res, "canceled"))) {
		int64_t compacted = etcd_int_member(res, "compact_revision");
		const char *reason = json_string_value(json_object_get(res, "cancel_reason"));
		if (compacted > 0) {
			watch_end(w, ECANCELED,
				  "watch on %s needs revision %lld, but history before revision "
				  "%lld was compacted; read the current state and watch again "
				  "from there",
				  w->key, (long long)w->next_rev, (long long)compacted);
		} else if (etcd_token_invalid(reason)) {
			w->need_auth = true;
		} else if (reason && (strstr(reason, "permission denied") ||
				      strstr(reason, "user name is empty"))) {
			watch_end(w, EACCES, "watch on %s: etcd at %s: %s", w->key, ep, reason);
		}
		r = -ECANCELED;
		goto out;
	}
	if (json_is_true(json_object_get(res, "created"))) {
		w->created = true;
		w->backoff_ms = ETCD_BACKOFF_MIN_MS;
		etcd_answered(w->es);
	}
	json_t *evs = json_object_get(res, "events");
	int64_t last = 0;
	for (size_t i = 0; i < json_array_size(evs); i++) {
		json_t *je = json_array_get(evs, i);
		struct store_event e = {};
		const char *type = json_string_value(json_object_get(je, "type"));
		e.type = type && strcmp(type, "DELETE") == 0 ? STORE_EVENT_DELETE : STORE_EVENT_PUT;
		if (etcd_kv_from_json(json_object_get(je, "kv"), &e.kv) < 0) {
			watch_end(w, EPROTO,
				  "watch on %s: etcd at %s sent a key that is not base64", w->key,
				  ep);
			r = -EPROTO;
			goto out;
		}
		/* After a reconnect nothing before next_rev may come again. */
		if (e.kv.mod_revision < w->next_rev) {
			store_kv_clear(&e.kv);
			continue;
		}
		if (e.kv.mod_revision > last)
			last = e.kv.mod_revision;
		if (queue_push(w, &e) < 0) {
			store_kv_clear(&e.kv);
			watch_end(w, ENOMEM, "watch on %s: out of memory (etcd at %s)", w->key, ep);
			r = -ENOMEM;
			goto out;
		}
	}
	if (last > 0)
		w->next_rev = last + 1;
out:
	json_decref(j);
	return r;
}

static size_t stream_write_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct etcd_watch *w = userdata;
	size_t n = size * nmemb;

	if (w->ending)
		return 0;
	if (w->phase == PH_AUTH)
		return etcd_buf_append(&w->in, p, n, AUTH_RESPONSE_MAX) < 0 ? 0 : n;
	if (w->q_len - w->q_head >= WATCH_QUEUE_MAX) {
		w->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (etcd_buf_append(&w->in, p, n, ETCD_RESPONSE_MAX) < 0) {
		watch_end(w, E2BIG, "watch on %s: a message from etcd at %s is too big", w->key,
			  w->es->endpoints[w->ep]);
		return 0;
	}
	size_t start = 0;
	int r = 0;
	for (;;) {
		char *nl = memchr(w->in.data + start, '\n', w->in.len - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (w->in.data + start));
		if (len > 0)
			r = watch_message(w, w->in.data + start, len);
		start += len + 1;
		if (r < 0)
			break;
	}
	memmove(w->in.data, w->in.data + start, w->in.len - start);
	w->in.len -= start;
	if (w->q_len > w->q_head)
		watch_queue(w);
	return r < 0 ? 0 : n;
}

static void watch_done(struct etcd_xfer *x, CURLcode rc);

static int watch_connect(struct etcd_watch *w)
{
	struct etcd_store *es = w->es;
	const char *ep = es->endpoints[w->ep];
	json_t *body = NULL;
	int r = -ENOMEM;

	w->created = false;
	w->h = curl_easy_init();
	if (!w->h)
		goto fail;
	if (w->need_auth && es->username) {
		w->phase = PH_AUTH;
		body = json_pack("{s:s, s:s}", "name", es->username, "password", es->password);
		if (!body || etcd_easy_setup(es, w->h, ep, "/v3/auth/authenticate", &w->hd) < 0)
			goto fail;
		curl_easy_setopt(w->h, CURLOPT_TIMEOUT_MS, (long)ETCD_REQUEST_TIMEOUT_MS);
	} else {
		w->phase = PH_STREAM;
		char rev[32];
		snprintf(rev, sizeof(rev), "%lld", (long long)w->next_rev);
		json_t *cr = json_object();
		body = json_pack("{s:o}", "create_request", cr);
		if (!body || !cr || etcd_range_json(cr, w->key, w->prefix) < 0 ||
		    json_object_set_new(cr, "start_revision", json_string(rev)) < 0 ||
		    etcd_easy_setup(es, w->h, ep, "/v3/watch", &w->hd) < 0)
			goto fail;
		/* A member that loses its leader ends the stream instead of going quiet. */
		struct curl_slist *t = curl_slist_append(w->hd, "Grpc-Metadata-hasleader: true");
		if (!t)
			goto fail;
		w->hd = t;
		curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, w->hd);
		/* A peer that vanished without a reset shows through keep-alive probes. */
		curl_easy_setopt(w->h, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(w->h, CURLOPT_TCP_KEEPIDLE, 5L);
		curl_easy_setopt(w->h, CURLOPT_TCP_KEEPINTVL, 2L);
	}
	w->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	body = NULL;
	if (!w->body)
		goto fail;
	curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, w->body);
	curl_easy_setopt(w->h, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, stream_write_cb);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->h, CURLOPT_PRIVATE, &w->xfer);
	w->xfer.done = watch_done;
	if (curl_multi_add_handle(es->multi, w->h) != CURLM_OK)
		goto fail;
	return 0;
fail:
	json_decref(body);
	xfer_release(w);
	return r;
}

static void watch_retry_later(struct etcd_watch *w)
{
	int ms = w->backoff_ms / 2 + (int)(random() % (w->backoff_ms / 2 + 1));
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	w->backoff_ms =
		w->backoff_ms * 2 > ETCD_BACKOFF_MAX_MS ? ETCD_BACKOFF_MAX_MS : w->backoff_ms * 2;
	evtimer_add(w->retry_ev, &tv);
}

static void watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_watch *w = arg;

	if (w->ending || w->cancelled || w->dead)
		return;
	if (watch_connect(w) < 0)
		watch_retry_later(w);
}

/* The auth answer of a watch that needed a new token. 0: have it. */
static int watch_auth_done(struct etcd_watch *w, CURLcode rc)
{
	struct etcd_store *es = w->es;
	json_error_t jerr;

	if (rc != CURLE_OK || !w->in.data)
		return -EAGAIN;
	json_t *j = json_loadb(w->in.data, w->in.len, 0, &jerr);
	const char *tok = json_string_value(json_object_get(j, "token"));
	const char *m = json_string_value(json_object_get(j, "message"));
	int r = -EAGAIN;
	if (tok && *tok) {
		char *t = strdup(tok);
		if (t) {
			free(es->token);
			es->token = t;
			w->need_auth = false;
			r = 0;
		}
	} else if (m && strstr(m, "authentication failed")) {
		watch_end(w, EACCES, "watch on %s: authenticating to etcd at %s as %s: %s", w->key,
			  es->endpoints[w->ep], es->username, m);
		r = -EACCES;
	}
	json_decref(j);
	return r;
}

static void watch_done(struct etcd_xfer *x, CURLcode rc)
{
	struct etcd_watch *w = W_OF_XFER(x);
	enum watch_phase phase = w->phase;
	bool created = w->created;
	int r = -EAGAIN;

	if (phase == PH_AUTH)
		r = watch_auth_done(w, rc);
	xfer_release(w);
	if (w->ending)
		return;
	if (phase == PH_AUTH && r == 0) {
		if (watch_connect(w) == 0)
			return;
	}
	/* The next member; a stream that had worked starts its backoff over. */
	if (!created || w->es->n_endpoints > 1)
		w->ep = (w->ep + 1) % w->es->n_endpoints;
	if (created)
		w->backoff_ms = ETCD_BACKOFF_MIN_MS;
	watch_retry_later(w);
}

static void watch_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_watch *w = arg;

	w->queued = false;
	if (w->dead || w->cancelled)
		return;
	size_t avail = w->q_len - w->q_head;
	if (avail > 0) {
		size_t n = avail < WATCH_BATCH_MAX ? avail : WATCH_BATCH_MAX;
		struct store_event *evs = w->q + w->q_head;
		w->in_cb = true;
		w->cb(evs, n, NULL, w->userdata);
		w->in_cb = false;
		for (size_t i = 0; i < n; i++)
			store_kv_clear(&evs[i].kv);
		w->q_head += n;
		if (w->q_head == w->q_len)
			w->q_head = w->q_len = 0;
		if (w->cancelled) {
			etcd_watch_free(w);
			return;
		}
		if (avail > n) {
			watch_queue(w);
			return;
		}
	}
	if (w->paused && w->h) {
		w->paused = false;
		curl_easy_pause(w->h, CURLPAUSE_CONT);
	}
	if (w->ending && w->q_len == w->q_head) {
		w->dead = true;
		w->in_cb = true;
		w->cb(NULL, 0, &w->end, w->userdata);
		w->in_cb = false;
		if (w->cancelled)
			etcd_watch_free(w);
	}
}

int etcd_watch(struct store *s, const char *key, bool prefix, int64_t start_revision,
	       store_watch_cb cb, void *userdata, struct store_watch **ret, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
	int64_t rev = start_revision;
	int r;

	if (!es->base)
		return shoal_err_set(err, EINVAL,
				     "watching %s needs an event loop; open the store with one",
				     key);
	/* "From now" is the revision of this call, not of whenever the stream reaches etcd:
	 * a write made right after store_watch() returns is seen. */
	if (rev == 0) {
		r = etcd_revision(es, &rev, err);
		if (r < 0)
			return shoal_err_wrap(err, "watching %s", key);
		rev++;
	}
	struct etcd_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return shoal_err_set(err, ENOMEM, "out of memory");
	w->pub.store = s;
	w->es = es;
	w->prefix = prefix;
	w->cb = cb;
	w->userdata = userdata;
	w->next_rev = rev;
	w->ep = es->cur;
	w->backoff_ms = ETCD_BACKOFF_MIN_MS;
	w->key = strdup(key);
	w->deliver_ev = event_new(es->base, -1, 0, watch_deliver_cb, w);
	w->retry_ev = evtimer_new(es->base, watch_retry_cb, w);
	w->next = es->watches;
	if (es->watches)
		es->watches->prev = w;
	es->watches = w;
	if (!w->key || !w->deliver_ev || !w->retry_ev || watch_connect(w) < 0) {
		etcd_watch_free(w);
		return shoal_err_set(err, ENOMEM, "cannot set up the watch on %s", key);
	}
	*ret = &w->pub;
	return 0;
}

void etcd_watch_cancel(struct store_watch *pw)
{
	struct etcd_watch *w = (struct etcd_watch *)pw;

	if (w->in_cb) {
		w->cancelled = true;
		return;
	}
	etcd_watch_free(w);
}
