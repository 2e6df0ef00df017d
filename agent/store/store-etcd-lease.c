// SPDX-License-Identifier: Apache-2.0
/*
 * Lease keep-alives of the etcd backend, on the loop: a timer per kept lease sends one
 * /v3/lease/keepalive request through the multi handle every third of the TTL. etcd
 * answering with no TTL means the lease is gone, which the owner hears once; a member
 * that cannot be reached is tried again a second later at the next endpoint.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/store/store-etcd-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define KEEPALIVE_RESPONSE_MAX (64u << 10)
#define KEEPALIVE_RETRY_MS     1000

struct etcd_keeper {
	struct store_lease_keeper pub;
	struct etcd_xfer xfer;
	struct etcd_store *es;
	struct etcd_keeper *prev, *next;
	int64_t id, ttl_s;
	store_lease_lost_cb cb;
	void *userdata;
	CURL *h;
	struct curl_slist *hd;
	char *body;
	struct etcd_buf in;
	bool auth; /* the request in flight fetches a token */
	bool need_auth;
	size_t ep;
	struct event *timer;
	bool lost; /* the timer reports the loss, then stops */
	struct shoal_err err;
};

#define K_OF_XFER(x) ((struct etcd_keeper *)((char *)(x)-offsetof(struct etcd_keeper, xfer)))

static void keeper_release(struct etcd_keeper *k)
{
	if (k->h) {
		curl_multi_remove_handle(k->es->multi, k->h);
		curl_easy_cleanup(k->h);
		k->h = NULL;
	}
	curl_slist_free_all(k->hd);
	k->hd = NULL;
	free(k->body);
	k->body = NULL;
	etcd_buf_free(&k->in);
}

void etcd_keeper_free(struct etcd_keeper *k)
{
	struct etcd_store *es = k->es;

	if (k->prev)
		k->prev->next = k->next;
	else if (es->keepers == k)
		es->keepers = k->next;
	if (k->next)
		k->next->prev = k->prev;
	keeper_release(k);
	if (k->timer)
		event_free(k->timer);
	free(k);
}

static void keeper_arm(struct etcd_keeper *k, int64_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(k->timer, &tv);
}

static size_t keeper_write_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct etcd_keeper *k = userdata;
	size_t n = size * nmemb;
	return etcd_buf_append(&k->in, p, n, KEEPALIVE_RESPONSE_MAX) < 0 ? 0 : n;
}

static void keeper_done(struct etcd_xfer *x, CURLcode rc);

static int keeper_send(struct etcd_keeper *k)
{
	struct etcd_store *es = k->es;
	const char *ep = es->endpoints[k->ep];
	json_t *body;
	char id[32];

	k->h = curl_easy_init();
	if (!k->h)
		return -ENOMEM;
	k->auth = k->need_auth && es->username;
	if (k->auth) {
		body = json_pack("{s:s, s:s}", "name", es->username, "password", es->password);
	} else {
		snprintf(id, sizeof(id), "%lld", (long long)k->id);
		body = json_pack("{s:s}", "ID", id);
	}
	k->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!k->body ||
	    etcd_easy_setup(es, k->h, ep, k->auth ? "/v3/auth/authenticate" : "/v3/lease/keepalive",
			    &k->hd) < 0)
		goto fail;
	curl_easy_setopt(k->h, CURLOPT_POSTFIELDS, k->body);
	curl_easy_setopt(k->h, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(k->h, CURLOPT_TIMEOUT_MS, (long)ETCD_REQUEST_TIMEOUT_MS);
	curl_easy_setopt(k->h, CURLOPT_WRITEFUNCTION, keeper_write_cb);
	curl_easy_setopt(k->h, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(k->h, CURLOPT_PRIVATE, &k->xfer);
	k->xfer.done = keeper_done;
	if (curl_multi_add_handle(es->multi, k->h) != CURLM_OK)
		goto fail;
	return 0;
fail:
	keeper_release(k);
	return -ENOMEM;
}

static void keeper_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_keeper *k = arg;

	if (k->lost) {
		/* Once; the owner stops the keeper, maybe from here. */
		k->cb(k->id, &k->err, k->userdata);
		return;
	}
	if (!k->h && keeper_send(k) < 0)
		keeper_arm(k, KEEPALIVE_RETRY_MS);
}

static void keeper_done(struct etcd_xfer *x, CURLcode rc)
{
	struct etcd_keeper *k = K_OF_XFER(x);
	struct etcd_store *es = k->es;
	json_error_t jerr;
	json_t *j = NULL;
	int64_t next_ms = KEEPALIVE_RETRY_MS;

	if (rc != CURLE_OK || !k->in.data) {
		k->ep = (k->ep + 1) % es->n_endpoints;
		goto out;
	}
	/* The keep-alive answer is a stream of one: {"result": {...}}. */
	j = json_loadb(k->in.data, k->in.len, JSON_DISABLE_EOF_CHECK, &jerr);
	const char *m = json_string_value(json_object_get(j, "message"));
	if (!m)
		m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	if (k->auth) {
		const char *tok = json_string_value(json_object_get(j, "token"));
		char *t = tok && *tok ? strdup(tok) : NULL;
		if (t) {
			free(es->token);
			es->token = t;
			k->need_auth = false;
			next_ms = 0;
		}
		goto out;
	}
	if (etcd_token_invalid(m)) {
		k->need_auth = true;
		next_ms = 0;
		goto out;
	}
	json_t *res = json_object_get(j, "result");
	if (!res) {
		k->ep = (k->ep + 1) % es->n_endpoints;
		goto out;
	}
	if (etcd_int_member(res, "TTL") <= 0) {
		k->lost = true;
		shoal_err_set(&k->err, ENOENT, "lease %lld expired or was revoked (etcd at %s)",
			      (long long)k->id, es->endpoints[k->ep]);
		next_ms = 0;
		goto out;
	}
	k->pub.renewed_ns = now_ns();
	etcd_answered(es);
	next_ms = k->ttl_s * 1000 / 3;
out:
	json_decref(j);
	keeper_release(k);
	keeper_arm(k, next_ms);
}

int etcd_lease_keep(struct store *s, int64_t id, int64_t ttl_s, store_lease_lost_cb cb,
		    void *userdata, struct store_lease_keeper **ret, struct shoal_err *err)
{
	struct etcd_store *es = ETCD(s);
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
	k->ep = es->cur;
	k->next = es->keepers;
	if (es->keepers)
		es->keepers->prev = k;
	es->keepers = k;
	k->timer = evtimer_new(es->base, keeper_timer_cb, k);
	if (!k->timer) {
		etcd_keeper_free(k);
		return shoal_err_set(err, ENOMEM, "cannot create the keep-alive timer");
	}
	keeper_arm(k, ttl_s * 1000 / 3);
	*ret = &k->pub;
	return 0;
}

void etcd_lease_keeper_stop(struct store_lease_keeper *pk)
{
	etcd_keeper_free((struct etcd_keeper *)pk);
}
