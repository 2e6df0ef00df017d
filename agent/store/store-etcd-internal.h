/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the etcd backend: its handle and the helpers its files share
 * (store-etcd-http.c: requests, endpoints, auth, the loop; store-etcd.c: the ops;
 * store-etcd-watch.c: watch streams; store-etcd-lease.c: keep-alives). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "agent/store/store-internal.h"

/* Timeouts of one blocking request, per endpoint tried. */
#define ETCD_CONNECT_TIMEOUT_MS 1000
#define ETCD_REQUEST_TIMEOUT_MS 3000
/* A response bigger than this is refused rather than buffered. */
#define ETCD_RESPONSE_MAX (256u << 20)
/* Reconnect delays of a watch stream: doubling from the first to the cap, with jitter. */
#define ETCD_BACKOFF_MIN_MS 100
#define ETCD_BACKOFF_MAX_MS 5000

struct etcd_watch;
struct etcd_renewer;
struct etcd_sock;

/* A growing byte buffer with a limit. */
struct etcd_buf {
	char *data;
	size_t len, cap;
	bool overflow;
};

struct etcd_store {
	struct store pub;
	char **endpoints; /* NULL-terminated, without a trailing '/' */
	size_t n_endpoints;
	size_t cur; /* the endpoint that answered last */
	char *cacert, *cert, *key;
	char *username, *password;
	char *token; /* NULL until authenticated */
	struct event_base *base;
	CURL *easy;   /* blocking requests, one at a time */
	CURLM *multi; /* watch streams and keep-alives on the loop */
	struct event *multi_timer;
	struct etcd_sock *socks; /* sockets libcurl asked the loop to watch */
	struct etcd_watch *watches;
	/* the keep-alive thread (store-etcd-lease.c), started by the first
	 * lease kept; it sets renew_answered_ns (mono_ns(), atomically) on every
	 * answer, which ends a wait of the blocking calls as any answer does */
	struct etcd_renewer *renewer;
	int64_t renew_answered_ns;
	/* No member answered: blocking calls fail at once until down_until (now_ns()
	 * clock), so that a caller on an event loop is not held for the connect timeout
	 * on every call while etcd is away; the wait doubles up to ETCD_DOWN_MAX_MS, and
	 * any answer (a keep-alive's, a watch's too) ends it. */
	int64_t down_until, down_ms;
	int64_t down_since_mono; /* mono_ns() when the wait began */
	char down_msg[512];
};

#define ETCD_DOWN_MIN_MS 250
#define ETCD_DOWN_MAX_MS 4000

/* An answer from a member: blocking calls go through again. */
void etcd_answered(struct etcd_store *es);

#define ETCD(s) ((struct etcd_store *)(s))

/* store-etcd-http.c */

int etcd_buf_append(struct etcd_buf *b, const void *p, size_t n, size_t max);
void etcd_buf_free(struct etcd_buf *b);

/* Base64 of n bytes (standard alphabet, padded), malloc'ed; NULL when out of memory. */
char *etcd_b64(const void *p, size_t n);
/* Decodes a base64 JSON string member into a NUL-terminated buffer; a missing member is
 * an empty one. -EPROTO when it is not base64. */
int etcd_b64_member(json_t *obj, const char *name, char **ret, size_t *ret_len);
/* An int64 member that proto3 JSON writes as a string (or omits when zero). */
int64_t etcd_int_member(json_t *obj, const char *name);

/* Sets up an easy handle for endpoint + path: TLS files, the auth token, JSON. */
int etcd_easy_setup(struct etcd_store *es, CURL *h, const char *endpoint, const char *path,
		    struct curl_slist **ret_headers);
/* The same with the given token (NULL: none): for another thread, which keeps its own. */
int etcd_easy_setup_token(struct etcd_store *es, CURL *h, const char *endpoint, const char *path,
			  const char *token, struct curl_slist **ret_headers);

/* POSTs body to path with failover, re-authenticating once when etcd says the token is no
 * longer valid. retry_safe: the request may be sent again to another member after it may have
 * reached one (reads); otherwise only a member that was never reached is left for the next.
 * On success *ret is the decoded response. what names the operation in messages. */
int etcd_call(struct etcd_store *es, const char *path, json_t *body, bool retry_safe, json_t **ret,
	      struct shoal_err *err, const char *what);
/* Fetches a new token; 0 when the store has no user. */
int etcd_authenticate(struct etcd_store *es, struct shoal_err *err);
/* The -errno for an error etcd answered with (gRPC code and message). */
int etcd_errno(int grpc_code, const char *message);
/* True when message is etcd saying the token is no longer valid. */
bool etcd_token_invalid(const char *message);

/* The multi handle on the loop (watch streams). */
int etcd_multi_setup(struct etcd_store *es, struct shoal_err *err);
void etcd_multi_free(struct etcd_store *es);
/* Reads finished transfers and hands each to its owner. */
void etcd_multi_check(struct etcd_store *es);

/* What a transfer on the multi handle belongs to (CURLOPT_PRIVATE). */
struct etcd_xfer {
	void (*done)(struct etcd_xfer *x, CURLcode rc);
};

/* store-etcd.c */
int etcd_kv_from_json(json_t *j, struct store_kv *kv);
/* The current store revision. */
int etcd_revision(struct etcd_store *es, int64_t *ret, struct shoal_err *err);

/* store-etcd-watch.c */
int etcd_watch(struct store *s, const char *key, bool prefix, int64_t start_revision,
	       store_watch_cb cb, void *userdata, struct store_watch **ret, struct shoal_err *err);
void etcd_watch_cancel(struct store_watch *pw);
void etcd_watch_free(struct etcd_watch *w);
/* [key, range_end) of a key or prefix as etcd wants them, base64. */
int etcd_range_json(json_t *obj, const char *key, bool prefix);

/* store-etcd-lease.c */
int etcd_lease_keep(struct store *s, int64_t id, int64_t ttl_s, store_lease_lost_cb cb,
		    void *userdata, struct store_lease_keeper **ret, struct shoal_err *err);
void etcd_lease_keeper_stop(struct store_lease_keeper *pk);
/* Stops the keep-alive thread and frees the keepers left. */
void etcd_renewer_free(struct etcd_store *es);
