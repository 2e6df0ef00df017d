// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP to etcd's v3 JSON gateway with libcurl: the blocking requests of the store's
 * synchronous calls (one easy handle, short timeouts, the next member when one cannot be
 * reached), the auth token, the proto3 JSON conventions (bytes as base64, int64 as
 * strings, zero fields left out), and the multi handle that runs watch streams and
 * keep-alives on the caller's libevent loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "agent/store/store-etcd-internal.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* gRPC status codes etcd's gateway puts in "code". */
enum {
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

int etcd_buf_append(struct etcd_buf *b, const void *p, size_t n, size_t max)
{
	if (b->len + n + 1 > max) {
		b->overflow = true;
		return -E2BIG;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void etcd_buf_free(struct etcd_buf *b)
{
	free(b->data);
	*b = (struct etcd_buf){};
}

char *etcd_b64(const void *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

int etcd_b64_member(json_t *obj, const char *name, char **ret, size_t *ret_len)
{
	const char *s = json_string_value(json_object_get(obj, name));
	size_t n = s ? strlen(s) : 0;

	if (n % 4 != 0)
		return -EPROTO;
	char *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	int len = 0;
	if (n > 0) {
		len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
		if (len < 0) {
			free(out);
			return -EPROTO;
		}
		/* EVP_DecodeBlock counts the padding as zero bytes. */
		if (s[n - 1] == '=')
			len--;
		if (s[n - 2] == '=')
			len--;
	}
	out[len] = '\0';
	*ret = out;
	if (ret_len)
		*ret_len = (size_t)len;
	return 0;
}

int64_t etcd_int_member(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

bool etcd_token_invalid(const char *message)
{
	return message && (strstr(message, "invalid auth token") ||
			   strstr(message, "auth: revision in header is old"));
}

int etcd_errno(int code, const char *message)
{
	const char *m = message ? message : "";

	if (strstr(m, "required revision has been compacted"))
		return ECANCELED;
	if (strstr(m, "request is too large") || strstr(m, "too many operations"))
		return E2BIG;
	if (strstr(m, "user name is empty"))
		return EACCES;
	switch (code) {
	case GRPC_INVALID_ARGUMENT:
	case GRPC_FAILED_PRECONDITION:
	case GRPC_OUT_OF_RANGE:
		return EINVAL;
	case GRPC_DEADLINE_EXCEEDED:
		return ETIMEDOUT;
	case GRPC_NOT_FOUND:
		return ENOENT;
	case GRPC_ALREADY_EXISTS:
		return EEXIST;
	case GRPC_PERMISSION_DENIED:
	case GRPC_UNAUTHENTICATED:
		return EACCES;
	case GRPC_RESOURCE_EXHAUSTED:
		return ENOSPC;
	case GRPC_ABORTED:
	case GRPC_UNAVAILABLE:
		return EAGAIN;
	default:
		return EIO;
	}
}

int etcd_easy_setup(struct etcd_store *es, CURL *h, const char *endpoint, const char *path,
		    struct curl_slist **ret_headers)
{
	return etcd_easy_setup_token(es, h, endpoint, path, es->token, ret_headers);
}

int etcd_easy_setup_token(struct etcd_store *es, CURL *h, const char *endpoint, const char *path,
			  const char *token, struct curl_slist **ret_headers)
{
	char url[1024], auth[1024];
	struct curl_slist *hd = NULL, *t;

	snprintf(url, sizeof(url), "%s%s", endpoint, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	if (es->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, es->cacert);
	if (es->cert) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, es->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, es->key);
	}
	t = curl_slist_append(hd, "Content-Type: application/json");
	if (!t)
		goto oom;
	hd = t;
	/* Big bodies would otherwise wait for a 100-continue the gateway never sends. */
	t = curl_slist_append(hd, "Expect:");
	if (!t)
		goto oom;
	hd = t;
	if (token && strcmp(path, "/v3/auth/authenticate") != 0) {
		snprintf(auth, sizeof(auth), "Authorization: %s", token);
		t = curl_slist_append(hd, auth);
		if (!t)
			goto oom;
		hd = t;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	*ret_headers = hd;
	return 0;
oom:
	curl_slist_free_all(hd);
	return -ENOMEM;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct etcd_buf *b = userdata;
	if (etcd_buf_append(b, p, size * nmemb, ETCD_RESPONSE_MAX) < 0)
		return 0;
	return size * nmemb;
}

enum call_outcome {
	CALL_OK,     /* *ret holds the response */
	CALL_NEXT,   /* this member could not serve it; another may */
	CALL_FAIL,   /* final */
	CALL_REAUTH, /* the token is no longer valid */
};

/* One request to one member. */
static enum call_outcome call_one(struct etcd_store *es, const char *ep, const char *path,
				  const char *body, bool retry_safe, json_t **ret, int *ret_code,
				  char *msg, size_t msg_size)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct etcd_buf buf = {};
	struct curl_slist *hd = NULL;
	CURL *h = es->easy;
	long status = 0;
	curl_off_t pretransfer = 0;
	enum call_outcome out;

	curl_easy_reset(h);
	if (etcd_easy_setup(es, h, ep, path, &hd) < 0) {
		*ret_code = ENOMEM;
		snprintf(msg, msg_size, "out of memory");
		return CALL_FAIL;
	}
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ETCD_REQUEST_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hd);

	if (rc != CURLE_OK) {
		if (buf.overflow) {
			*ret_code = E2BIG;
			snprintf(msg, msg_size, "etcd at %s: the response is over %u bytes", ep,
				 ETCD_RESPONSE_MAX);
			out = CALL_FAIL;
			goto done;
		}
		*ret_code = rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
			    : rc == CURLE_COULDNT_CONNECT  ? ECONNREFUSED
			    : rc == CURLE_OUT_OF_MEMORY	   ? ENOMEM
							   : EIO;
		snprintf(msg, msg_size, "etcd at %s: %s%s", ep,
			 *errbuf ? errbuf : curl_easy_strerror(rc),
			 str_has_prefix(ep, "https://") && pretransfer == 0
				 ? " (over TLS: check the CA, the client certificate and its key)"
				 : "");
		/* A request that never left may go to another member; one that did may have
		 * been applied, and only a read is safe to send twice. */
		out = retry_safe || pretransfer == 0 ? CALL_NEXT : CALL_FAIL;
		if (out == CALL_FAIL)
			snprintf(msg + strlen(msg), msg_size - strlen(msg),
				 " (the request was sent: it may or may not have been applied)");
		goto done;
	}

	json_error_t jerr;
	json_t *j = buf.data ? json_loadb(buf.data, buf.len, 0, &jerr) : NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		*ret_code = EPROTO;
		snprintf(msg, msg_size,
			 "etcd at %s: HTTP %ld with a body that is not a JSON object%s", ep, status,
			 status == 404 ? " (is this etcd's client URL, version 3.4 or later?)"
				       : "");
		out = status >= 500 ? CALL_NEXT : CALL_FAIL;
		goto done;
	}
	json_t *e = json_object_get(j, "error");
	if (e || status != 200) {
		const char *text = json_string_value(json_object_get(j, "message"));
		if (!text)
			text = json_string_value(e);
		int code = (int)json_integer_value(json_object_get(j, "code"));
		if (code == GRPC_UNAUTHENTICATED && etcd_token_invalid(text) && es->username) {
			json_decref(j);
			out = CALL_REAUTH;
			goto done;
		}
		*ret_code = etcd_errno(code, text);
		snprintf(msg, msg_size, "etcd at %s: %s%s", ep, text ? text : "unknown error",
			 *ret_code == E2BIG ? " (etcd's --max-request-bytes and --max-txn-ops)"
					    : "");
		json_decref(j);
		out = code == GRPC_UNAVAILABLE && retry_safe ? CALL_NEXT : CALL_FAIL;
		goto done;
	}
	*ret = j;
	out = CALL_OK;
done:
	etcd_buf_free(&buf);
	return out;
}

void etcd_answered(struct etcd_store *es)
{
	es->down_until = 0;
	es->down_ms = 0;
}

static int call(struct etcd_store *es, const char *path, const char *body, bool retry_safe,
		bool may_reauth, json_t **ret, struct shoal_err *err, const char *what)
{
	char all[768] = "", one[512];
	int code = EIO;
	bool reauthed = !may_reauth;
	int64_t now = now_ns();

	/* the keep-alive thread heard from a member since the wait began */
	if (es->down_until &&
	    __atomic_load_n(&es->renew_answered_ns, __ATOMIC_RELAXED) > es->down_since_mono)
		etcd_answered(es);
	if (es->down_until && now < es->down_until)
		return shoal_err_set(err, EHOSTUNREACH,
				     "%s: etcd is not answering (asked again in "
				     "%lld ms): %s",
				     what, (long long)((es->down_until - now) / 1000000),
				     es->down_msg);

	for (size_t i = 0; i < es->n_endpoints;) {
		size_t idx = (es->cur + i) % es->n_endpoints;
		const char *ep = es->endpoints[idx];
		one[0] = '\0';
		enum call_outcome o =
			call_one(es, ep, path, body, retry_safe, ret, &code, one, sizeof(one));
		switch (o) {
		case CALL_OK:
			es->cur = idx;
			etcd_answered(es);
			return 0;
		case CALL_REAUTH:
			if (reauthed)
				return shoal_err_set(
					err, EACCES,
					"%s: etcd at %s refuses a token it just issued", what, ep);
			reauthed = true;
			int r = etcd_authenticate(es, err);
			if (r < 0)
				return shoal_err_wrap(err, "%s", what);
			continue; /* the same member, with the new token */
		case CALL_FAIL:
			return shoal_err_set(err, code, "%s: %s", what, one);
		case CALL_NEXT:
			snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s",
				 *all ? "; " : "", one);
			i++;
			break;
		}
	}
	es->down_ms = es->down_ms ? es->down_ms * 2 : ETCD_DOWN_MIN_MS;
	if (es->down_ms > ETCD_DOWN_MAX_MS)
		es->down_ms = ETCD_DOWN_MAX_MS;
	es->down_until = now_ns() + es->down_ms * 1000000;
	es->down_since_mono = mono_ns();
	snprintf(es->down_msg, sizeof(es->down_msg), "%s", all);
	if (es->n_endpoints == 1)
		return shoal_err_set(err, code, "%s: %s", what, all);
	return shoal_err_set(err, code, "%s: no etcd endpoint answered: %s", what, all);
}

int etcd_call(struct etcd_store *es, const char *path, json_t *body, bool retry_safe, json_t **ret,
	      struct shoal_err *err, const char *what)
{
	_cleanup_free_ char *s = json_dumps(body, JSON_COMPACT);
	if (!s)
		return shoal_err_set(err, ENOMEM, "%s: out of memory", what);
	return call(es, path, s, retry_safe, true, ret, err, what);
}

int etcd_authenticate(struct etcd_store *es, struct shoal_err *err)
{
	char what[256];
	json_t *res = NULL;

	if (!es->username)
		return 0;
	json_t *body = json_pack("{s:s, s:s}", "name", es->username, "password", es->password);
	if (!body)
		return shoal_err_set(err, ENOMEM, "out of memory");
	_cleanup_free_ char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "authenticating to etcd as user %s", es->username);
	free(es->token);
	es->token = NULL;
	int r = call(es, "/v3/auth/authenticate", s, true, false, &res, err, what);
	if (r < 0) {
		if (strstr(err->msg, "authentication is not enabled"))
			return shoal_err_set(err, EINVAL,
					     "%s: etcd has authentication disabled; leave out the "
					     "user name and password",
					     what);
		if (-r == EINVAL && strstr(err->msg, "authentication failed")) {
			char msg[sizeof(err->msg)];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			return shoal_err_set(err, EACCES, "%s; check the user name and password",
					     msg);
		}
		return r;
	}
	const char *tok = json_string_value(json_object_get(res, "token"));
	if (!tok || !*tok) {
		json_decref(res);
		return shoal_err_set(err, EPROTO, "%s: etcd answered without a token", what);
	}
	es->token = strdup(tok);
	json_decref(res);
	if (!es->token)
		return shoal_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* The multi handle on the loop, as libcurl's multi socket interface wants it: libcurl says
 * which sockets to watch and when to time out, libevent says when they are ready. */

struct etcd_sock {
	struct etcd_store *es;
	struct event *ev;
	curl_socket_t fd;
	struct etcd_sock *prev, *next;
};

void etcd_multi_check(struct etcd_store *es)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(es->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct etcd_xfer *x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode rc = m->data.result;
		if (x)
			x->done(x, rc);
	}
}

static void sock_event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct etcd_store *es = arg;
	int running = 0;
	int action =
		(kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(es->multi, fd, action, &running);
	etcd_multi_check(es);
}

static void sock_ctx_free(struct etcd_sock *c)
{
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else if (c->es->socks == c)
		c->es->socks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->ev)
		event_free(c->ev);
	free(c);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct etcd_store *es = userp;
	struct etcd_sock *c = socketp;

	if (what == CURL_POLL_REMOVE) {
		sock_ctx_free(c);
		curl_multi_assign(es->multi, s, NULL);
		return 0;
	}
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		c->es = es;
		c->fd = s;
		c->next = es->socks;
		if (es->socks)
			es->socks->prev = c;
		es->socks = c;
		curl_multi_assign(es->multi, s, c);
	} else if (c->ev) {
		event_free(c->ev);
		c->ev = NULL;
	}
	short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
			     (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
	c->ev = event_new(es->base, s, kind, sock_event_cb, es);
	if (!c->ev || event_add(c->ev, NULL) < 0)
		return -1;
	return 0;
}

static void multi_timer_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct etcd_store *es = arg;
	int running = 0;

	curl_multi_socket_action(es->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	etcd_multi_check(es);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct etcd_store *es = userp;

	if (timeout_ms < 0) {
		evtimer_del(es->multi_timer);
		return 0;
	}
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	return evtimer_add(es->multi_timer, &tv) < 0 ? -1 : 0;
}

int etcd_multi_setup(struct etcd_store *es, struct shoal_err *err)
{
	es->multi = curl_multi_init();
	es->multi_timer = evtimer_new(es->base, multi_timer_cb, es);
	if (!es->multi || !es->multi_timer)
		return shoal_err_set(err, ENOMEM, "cannot set up the etcd client on the loop");
	curl_multi_setopt(es->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(es->multi, CURLMOPT_SOCKETDATA, es);
	curl_multi_setopt(es->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(es->multi, CURLMOPT_TIMERDATA, es);
	return 0;
}

void etcd_multi_free(struct etcd_store *es)
{
	if (es->multi)
		curl_multi_cleanup(es->multi);
	es->multi = NULL;
	while (es->socks)
		sock_ctx_free(es->socks);
	if (es->multi_timer)
		event_free(es->multi_timer);
	es->multi_timer = NULL;
}
