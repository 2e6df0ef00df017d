// SPDX-License-Identifier: Apache-2.0
/* image_store_pull: an image from a registry, per the distribution spec.
 *
 * manifest (or list/index -> the platform's manifest) -> config -> the layers
 * the store lacks, downloaded a few at a time with curl multi into
 * tmp/pull/<hex> (kept across attempts, so a dropped connection or a pull
 * started again continues with a Range request), each checked against its
 * digest, then its diff_id, unpacked into a stage and committed with the
 * image record at once, as a load is. Runs on a worker thread: every call
 * here blocks. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image-internal.h"
#include "runtime/image-pull-internal.h"
#include "runtime/image.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all)
DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup)

/* Attempts at one blob before the pull gives up (each resumes where the last stopped). */
#define PULL_MAX_ATTEMPTS 5
/* Bodies kept from error answers and token servers. */
#define PULL_MAX_ERROR_BODY (64u << 10)
#define PULL_MAX_TOKEN_BODY (1u << 20)
#define PULL_MAX_HEADER	    4096

struct resp {
	long code;
	char *body;
	size_t len, cap, max;
	bool too_big;
	char ctype[128];
	char dcd[96]; /* Docker-Content-Digest */
	char range[96];
	char *www; /* WWW-Authenticate */
};

struct xfer;

struct pull {
	struct image_store *s;
	const struct image_pull_opts *o;
	struct shoal_err *err;
	struct image_ref ref;
	char *host; /* as the reference names it: "docker.io", "127.0.0.1:5000" */
	char *path; /* "library/busybox" */
	char *base; /* "https://registry-1.docker.io" */
	bool insecure;
	struct pull_creds creds;
	char *bearer;
	bool basic;
	char *stage;
	char partial_dir[PATH_MAX];
	struct xfer *xfers;
	size_t n_xfers;
	/* chain ids pinned against a concurrent remove */
	char (*pinned)[65];
	size_t n_pinned;
};

static void resp_reset(struct resp *r, size_t max)
{
	free(r->body);
	free(r->www);
	memset(r, 0, sizeof(*r));
	r->max = max;
}

static void resp_done(struct resp *r)
{
	resp_reset(r, 0);
}

static bool cancelled(const struct pull *p)
{
	return p->o->cancel && atomic_load(p->o->cancel);
}

static void emit(struct pull *p, const char *id, const char *status, uint64_t cur, uint64_t total)
{
	if (!p->o->progress)
		return;
	struct image_pull_event ev = {.id = id, .status = status, .current = cur, .total = total};
	p->o->progress(&ev, p->o->userdata);
}

static const char *host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__arm__)
	return "arm";
#elif defined(__i386__)
	return "386";
#elif defined(__powerpc64__)
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv)
	return "riscv64";
#else
	return "unknown";
#endif
}

/* ---- curl plumbing ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t len = size * n;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or a 100): its headers only */
		r->ctype[0] = r->dcd[0] = r->range[0] = '\0';
		free(r->www);
		r->www = NULL;
		return len;
	}
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	size_t nlen = (size_t)(colon - buf);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	char *dst = NULL;
	size_t dsize = 0;
	if (nlen == 12 && strncasecmp(buf, "Content-Type", 12) == 0) {
		dst = r->ctype;
		dsize = sizeof(r->ctype);
	} else if (nlen == 21 && strncasecmp(buf, "Docker-Content-Digest", 21) == 0) {
		dst = r->dcd;
		dsize = sizeof(r->dcd);
	} else if (nlen == 13 && strncasecmp(buf, "Content-Range", 13) == 0) {
		dst = r->range;
		dsize = sizeof(r->range);
	} else if (nlen == 16 && strncasecmp(buf, "WWW-Authenticate", 16) == 0 && !r->www &&
		   vlen < PULL_MAX_HEADER) {
		r->www = strndup(v, vlen);
	}
	if (dst) {
		size_t k = vlen < dsize - 1 ? vlen : dsize - 1;
		memcpy(dst, v, k);
		dst[k] = '\0';
	}
	return len;
}

static size_t body_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t len = size * n;
	if (r->len + len > r->max) {
		r->too_big = true;
		return 0;
	}
	if (r->len + len + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + len + 1)
			cap *= 2;
		char *nb = realloc(r->body, cap);
		if (!nb)
			return 0;
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, buf, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

static int xferinfo_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	return cancelled(arg) ? 1 : 0;
}

/* "http://host:port/path" -> whether host:port is insecure; -EINVAL if not http(s). */
static int url_scheme_ok(struct pull *p, const char *url, bool *ret_http)
{
	const char *h;
	if (str_has_prefix(url, "https://")) {
		*ret_http = false;
		return 0;
	}
	if (!str_has_prefix(url, "http://"))
		return -EINVAL;
	h = url + 7;
	_cleanup_free_ char *host = strndup(h, strcspn(h, "/?#"));
	if (!host)
		return -ENOMEM;
	*ret_http = true;
	return pull_host_insecure(host, p->o->insecure) ? 0 : -EPERM;
}

static void easy_setup(struct pull *p, CURL *h, const char *url, bool http_ok,
		       struct curl_slist *hdrs, char *errbuf)
{
	const char *protos = http_ok ? "http,https" : "https";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protos);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protos);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled transfer ends (and a layer download resumes) */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "shoal/" SHOAL_VERSION);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, p);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (hdrs)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
}

/* The registry's own headers: Accept (may be NULL) and the credentials had. */
static struct curl_slist *reg_headers(struct pull *p, CURL *h, const char *accept,
				      const char *extra)
{
	struct curl_slist *l = NULL, *n;
	if (accept) {
		n = curl_slist_append(l, accept);
		if (!n)
			goto fail;
		l = n;
	}
	if (extra) {
		n = curl_slist_append(l, extra);
		if (!n)
			goto fail;
		l = n;
	}
	if (p->bearer) {
		_cleanup_free_ char *a = NULL;
		if (asprintf(&a, "Authorization: Bearer %s", p->bearer) < 0)
			goto fail;
		n = curl_slist_append(l, a);
		explicit_bzero(a, strlen(a));
		if (!n)
			goto fail;
		l = n;
	} else if (p->basic) {
		/* curl sends these to this host only, never after a redirect elsewhere */
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, p->creds.username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, p->creds.password);
	}
	/* never an empty list: NULL means out of memory to the caller */
	if (!l)
		l = curl_slist_append(NULL, "Accept: */*");
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

static int transport_error(struct pull *p, CURLcode c, char *errbuf, const char *what)
{
	size_t n = errbuf ? strlen(errbuf) : 0;
	while (n > 0 && (errbuf[n - 1] == ' ' || errbuf[n - 1] == '\n'))
		errbuf[--n] = '\0';
	if (c == CURLE_ABORTED_BY_CALLBACK && cancelled(p))
		return shoal_err_set(p->err, ECANCELED, "pull cancelled");
	const char *hint = "";
	if (c == CURLE_SSL_CONNECT_ERROR || c == CURLE_PEER_FAILED_VERIFICATION ||
	    c == CURLE_SSL_CACERT_BADFILE || c == CURLE_UNSUPPORTED_PROTOCOL)
		hint = " (a registry that speaks plain HTTP must be listed with shoald "
		       "--insecure-registry)";
	return shoal_err_set(p->err, c == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO,
			     "registry %s: %s: %s%s", p->host, what,
			     errbuf && *errbuf ? errbuf : curl_easy_strerror(c), hint);
}

/* A blocking GET into rs (its max set by the caller). to_token_server: the
 * credentials go as Basic (if any), never a token. */
static int http_get(struct pull *p, const char *url, bool http_ok, const char *accept,
		    struct resp *rs, const char *what, bool to_token_server)
{
	_cleanup_(curl_easy_cleanupp) CURL *h = curl_easy_init();
	if (!h)
		return shoal_err_set(p->err, ENOMEM, "curl handle");
	char errbuf[CURL_ERROR_SIZE] = "";
	_cleanup_(curl_slist_free_allp) struct curl_slist *hdrs = NULL;
	if (to_token_server) {
		hdrs = curl_slist_append(NULL, accept ? accept : "Accept: application/json");
		if (p->creds.username) {
			curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(h, CURLOPT_USERNAME, p->creds.username);
			curl_easy_setopt(h, CURLOPT_PASSWORD, p->creds.password);
		}
	} else {
		hdrs = reg_headers(p, h, accept, NULL);
	}
	if (!hdrs)
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	easy_setup(p, h, url, http_ok, hdrs, errbuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
	CURLcode c = curl_easy_perform(h);
	if (c == CURLE_WRITE_ERROR && rs->too_big)
		return shoal_err_set(p->err, E2BIG, "registry %s: %s: answer larger than %zu bytes",
				     p->host, what, rs->max);
	if (c != CURLE_OK)
		return transport_error(p, c, errbuf, what);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->code);
	return 0;
}

/* "errors": [{"code": "MANIFEST_UNKNOWN", "message": "..."}] -> "manifest unknown: ..." */
static void registry_message(const struct resp *rs, char *buf, size_t size)
{
	buf[0] = '\0';
	if (!rs->body || !rs->len)
		return;
	_cleanup_(json_decrefp) json_t *j = json_loadb(rs->body, rs->len, 0, NULL);
	json_t *e = json_array_get(json_object_get(j, "errors"), 0);
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (code || msg) {
		char lc[64] = "";
		for (size_t i = 0; code && code[i] && i < sizeof(lc) - 1; i++)
			lc[i] = code[i] == '_'
					? ' '
					: (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] + 32
										  : code[i]);
		snprintf(buf, size, "%s%s%s", lc, *lc && msg ? ": " : "", msg ? msg : "");
		return;
	}
	/* plain text (some proxies): its first line */
	size_t n = strcspn(rs->body, "\r\n");
	snprintf(buf, size, "%.*s", (int)(n > 200 ? 200 : n), rs->body);
}

static int no_auth_error(struct pull *p, const struct resp *rs)
{
	char msg[512];
	registry_message(rs, msg, sizeof(msg));
	if (p->creds.username)
		return shoal_err_set_status(p->err, 401, EACCES,
					    "registry %s refused the credentials of user %s "
					    "(unauthorized%s%s)",
					    p->host, p->creds.username, *msg ? ": " : "", msg);
	return shoal_err_set_status(p->err, 401, EACCES,
				    "registry %s requires authentication (unauthorized%s%s): pass "
				    "credentials (X-Registry-Auth; `shoal pull` reads "
				    "SHOAL_REGISTRY_AUTH=user:password)",
				    p->host, *msg ? ": " : "", msg);
}

static int fetch_token(struct pull *p, const struct pull_challenge *c)
{
	bool http = false;
	int r = url_scheme_ok(p, c->realm, &http);
	if (r == -EPERM)
		return shoal_err_set(
			p->err, EACCES,
			"registry %s: its token server %s is not HTTPS; list that host "
			"with --insecure-registry to allow it",
			p->host, c->realm);
	if (r < 0)
		return shoal_err_set(p->err, EACCES,
				     "registry %s: unsupported token server realm \"%.200s\"",
				     p->host, c->realm);
	_cleanup_(curl_easy_cleanupp) CURL *e = curl_easy_init();
	if (!e)
		return shoal_err_set(p->err, ENOMEM, "curl handle");
	_cleanup_free_ char *scope_raw = NULL, *url = NULL;
	if (asprintf(&scope_raw, "repository:%s:pull", p->path) < 0)
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	char *scope = curl_easy_escape(e, scope_raw, 0);
	char *service = c->service ? curl_easy_escape(e, c->service, 0) : NULL;
	int k = asprintf(&url, "%s%sscope=%s%s%s", c->realm, strchr(c->realm, '?') ? "&" : "?",
			 scope ? scope : "", service ? "&service=" : "", service ? service : "");
	curl_free(scope);
	curl_free(service);
	if (k < 0) {
		url = NULL;
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	}
	struct resp rs = {.max = PULL_MAX_TOKEN_BODY};
	r = http_get(p, url, http, NULL, &rs, "token", true);
	if (r < 0) {
		resp_done(&rs);
		return r;
	}
	if (rs.code == 401 || rs.code == 403) {
		long code = rs.code;
		resp_done(&rs);
		if (p->creds.username)
			return shoal_err_set_status(p->err, 401, EACCES,
						    "registry %s: the token server %s refused the "
						    "credentials of user %s (HTTP %ld)",
						    p->host, c->realm, p->creds.username, code);
		return shoal_err_set_status(p->err, 401, EACCES,
					    "registry %s: the token server %s refused an anonymous "
					    "token (HTTP %ld): pass credentials",
					    p->host, c->realm, code);
	}
	if (rs.code != 200) {
		long code = rs.code;
		resp_done(&rs);
		return shoal_err_set(p->err, EIO,
				     "registry %s: the token server %s answered HTTP %ld", p->host,
				     c->realm, code);
	}
	_cleanup_(json_decrefp) json_t *j = json_loadb(rs.body ? rs.body : "", rs.len, 0, NULL);
	resp_done(&rs);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok || strpbrk(tok, "\r\n"))
		return shoal_err_set(p->err, EACCES,
				     "registry %s: the token server %s answered without a token",
				     p->host, c->realm);
	free(p->bearer);
	p->bearer = strdup(tok);
	return p->bearer ? 0 : shoal_err_set(p->err, ENOMEM, "out of memory");
}

/* After a 401: the challenge's way in. */
static int authenticate(struct pull *p, const char *www, const struct resp *rs)
{
	struct pull_challenge c;
	if (!www || pull_challenge_parse(www, &c) < 0)
		return no_auth_error(p, rs);
	int r;
	if (c.scheme == PULL_AUTH_BASIC) {
		if (!p->creds.username || p->basic)
			r = no_auth_error(p, rs);
		else
			r = 0;
		p->basic = true;
	} else if (!c.realm) {
		r = shoal_err_set(p->err, EACCES, "registry %s: a Bearer challenge without a realm",
				  p->host);
	} else {
		r = fetch_token(p, &c);
	}
	pull_challenge_done(&c);
	return r;
}

/* GET on the registry, authenticating once on a 401. */
static int reg_get(struct pull *p, const char *url, const char *accept, size_t max, struct resp *rs,
		   const char *what)
{
	for (int attempt = 0;; attempt++) {
		resp_reset(rs, max);
		int r = http_get(p, url, p->insecure, accept, rs, what, false);
		if (r < 0)
			return r;
		if (rs->code != 401)
			return 0;
		if (attempt > 0)
			return no_auth_error(p, rs);
		_cleanup_free_ char *www = rs->www ? strdup(rs->www) : NULL;
		r = authenticate(p, www, rs);
		if (r < 0)
			return r;
	}
}

static int reg_status_error(struct pull *p, const struct resp *rs, const char *what)
{
	char msg[512];
	registry_message(rs, msg, sizeof(msg));
	if (rs->code == 401)
		return no_auth_error(p, rs);
	if (rs->code == 403)
		return shoal_err_set(p->err, EACCES, "registry %s: access to %s denied%s%s",
				     p->host, p->path, *msg ? ": " : "", msg);
	if (rs->code == 404)
		return shoal_err_set(p->err, ENOENT, "registry %s: %s not found%s%s", p->host, what,
				     *msg ? ": " : "", msg);
	if (rs->code == 429)
		return shoal_err_set(p->err, EBUSY,
				     "registry %s: too many requests; try again later%s%s", p->host,
				     *msg ? ": " : "", msg);
	return shoal_err_set(p->err, EIO, "registry %s: %s: HTTP %ld%s%s", p->host, what, rs->code,
			     *msg ? ": " : "", msg);
}

/* ---- manifest and config ---- */

static int fetch_manifest(struct pull *p, const char *reference, const char *expect_hex,
			  struct resp *rs, char ret_hex[65])
{
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s/v2/%s/manifests/%s", p->base, p->path, reference) < 0)
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	char what[256];
	snprintf(what, sizeof(what), "manifest %.200s", reference);
	int r = reg_get(p, url, PULL_ACCEPT_MANIFESTS, IMAGE_MAX_MANIFEST_BYTES, rs, what);
	if (r < 0)
		return r;
	if (rs->code == 404) {
		char msg[512];
		registry_message(rs, msg, sizeof(msg));
		_cleanup_free_ char *fam = NULL;
		char full[600];
		snprintf(full, sizeof(full), "%s%s%s", p->ref.repo,
			 str_has_prefix(reference, "sha256:") ? "@" : ":", reference);
		return shoal_err_set_status(p->err, 404, ENOENT,
					    "manifest for %s not found%s%s (registry %s)",
					    image_ref_familiar(full, &fam) == 0 ? fam : full,
					    *msg ? ": " : "", msg, p->host);
	}
	if (rs->code != 200)
		return reg_status_error(p, rs, what);
	sha256_hex(rs->body ? rs->body : "", rs->len, ret_hex);
	if (expect_hex && strcmp(ret_hex, expect_hex) != 0)
		return shoal_err_set(p->err, EBADMSG,
				     "registry %s: manifest sha256:%s: digest mismatch: got "
				     "sha256:%s",
				     p->host, expect_hex, ret_hex);
	char dh[65];
	if (*rs->dcd && pull_digest_hex(rs->dcd, dh) == 0 && strcmp(dh, ret_hex) != 0)
		return shoal_err_set(p->err, EBADMSG,
				     "registry %s: %s: the body hashes to sha256:%s but "
				     "Docker-Content-Digest says %s",
				     p->host, what, ret_hex, rs->dcd);
	return 0;
}

static int fetch_config(struct pull *p, const struct pull_desc *d, struct resp *rs)
{
	if (d->size > IMAGE_MAX_CONFIG_BYTES)
		return shoal_err_set(p->err, E2BIG, "image config is %llu bytes, more than %u",
				     (unsigned long long)d->size, IMAGE_MAX_CONFIG_BYTES);
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s/v2/%s/blobs/sha256:%s", p->base, p->path, d->hex) < 0)
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	char what[96];
	snprintf(what, sizeof(what), "config blob sha256:%.12s", d->hex);
	int r = reg_get(p, url, NULL, IMAGE_MAX_CONFIG_BYTES, rs, what);
	if (r < 0)
		return r;
	if (rs->code != 200)
		return reg_status_error(p, rs, what);
	if (rs->len != d->size)
		return shoal_err_set(p->err, EBADMSG,
				     "registry %s: config sha256:%s: %zu bytes, the manifest says "
				     "%llu",
				     p->host, d->hex, rs->len, (unsigned long long)d->size);
	snprintf(what, sizeof(what), "registry %s: config", p->host);
	return pull_digest_check(what, d->hex, rs->body ? rs->body : "", rs->len, p->err);
}

/* ---- layer downloads ---- */

enum xfer_state { X_WAIT, X_RUN, X_DONE };

struct xfer {
	struct pull *p;
	const struct pull_desc *d;
	char id[13];
	char path[PATH_MAX];
	int fd;
	EVP_MD_CTX *md;
	uint64_t have, reported;
	enum xfer_state state;
	int attempts;
	bool reauthed;
	/* one attempt */
	CURL *h;
	struct curl_slist *hdrs;
	struct resp rs;
	bool checked;
	int werr;
	char wmsg[256];
	char errbuf[CURL_ERROR_SIZE];
};

static void xfer_close(struct xfer *x)
{
	if (x->h)
		curl_easy_cleanup(x->h);
	x->h = NULL;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	resp_done(&x->rs);
	EVP_MD_CTX_free(x->md);
	x->md = NULL;
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
}

static int xfer_restart_hash(struct xfer *x)
{
	x->have = 0;
	x->reported = 0;
	if (ftruncate(x->fd, 0) < 0)
		return -errno;
	return EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
}

static void xfer_progress(struct xfer *x, bool force)
{
	uint64_t step = x->d->size / 50;
	if (step < (256u << 10))
		step = 256u << 10;
	if (!force && x->have - x->reported < step && x->have != x->d->size)
		return;
	x->reported = x->have;
	emit(x->p, x->id, "Downloading", x->have, x->d->size);
}

static size_t xfer_write_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (!x->checked) {
		x->checked = true;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->rs.code);
		if (x->rs.code == 206) {
			unsigned long long start = 0;
			if (sscanf(x->rs.range, "bytes %llu-", &start) != 1 || start != x->have) {
				x->werr = EBADMSG;
				snprintf(x->wmsg, sizeof(x->wmsg),
					 "resumed at byte %llu but asked for %llu", start,
					 (unsigned long long)x->have);
				return 0;
			}
		} else if (x->rs.code == 200 && x->have > 0) {
			/* the server ignored the Range: start over */
			int r = xfer_restart_hash(x);
			if (r < 0) {
				x->werr = -r;
				snprintf(x->wmsg, sizeof(x->wmsg), "truncating %s", x->path);
				return 0;
			}
		}
	}
	if (x->rs.code != 200 && x->rs.code != 206) {
		body_cb(buf, size, n, &x->rs); /* an error body, kept short */
		return len;
	}
	if (x->have + len > x->d->size) {
		x->werr = EBADMSG;
		snprintf(x->wmsg, sizeof(x->wmsg),
			 "the blob is larger than the %llu bytes its "
			 "descriptor says",
			 (unsigned long long)x->d->size);
		return 0;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = pwrite(x->fd, buf + off, len - off, (off_t)(x->have + off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			x->werr = errno;
			snprintf(x->wmsg, sizeof(x->wmsg), "writing %s: %s", x->path,
				 strerror(errno));
			return 0;
		}
		off += (size_t)w;
	}
	EVP_DigestUpdate(x->md, buf, len);
	x->have += len;
	xfer_progress(x, false);
	return len;
}

/* Opens (and locks) the partial file and hashes what it holds; 1 when another
 * pull holds it. */
static int xfer_open(struct xfer *x)
{
	struct pull *p = x->p;
	int fd = open(x->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return shoal_err_errno(p->err, errno, "opening %s", x->path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return 1;
		return shoal_err_errno(p->err, e, "locking %s", x->path);
	}
	x->fd = fd;
	x->md = EVP_MD_CTX_new();
	if (!x->md || EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1)
		return shoal_err_set(p->err, ENOMEM, "sha256 context");
	struct stat st;
	if (fstat(fd, &st) < 0)
		return shoal_err_errno(p->err, errno, "stat %s", x->path);
	if ((uint64_t)st.st_size > x->d->size) {
		if (ftruncate(fd, 0) < 0)
			return shoal_err_errno(p->err, errno, "truncating %s", x->path);
		return 0;
	}
	/* the bytes a dropped or earlier pull left: hashed again, so that the
	 * digest at the end covers them too */
	static __thread char buf[65536];
	uint64_t off = 0;
	while (off < (uint64_t)st.st_size) {
		ssize_t k = pread(fd, buf, sizeof(buf), (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return shoal_err_errno(p->err, errno, "reading %s", x->path);
		if (k == 0)
			break;
		EVP_DigestUpdate(x->md, buf, (size_t)k);
		off += (uint64_t)k;
	}
	x->have = off;
	return 0;
}

/* The whole blob is here: its digest decides. */
static int xfer_verify(struct xfer *x)
{
	struct pull *p = x->p;
	emit(p, x->id, "Verifying Checksum", 0, 0);
	unsigned char d[32];
	unsigned int dlen = 0;
	char got[65];
	EVP_DigestFinal_ex(x->md, d, &dlen);
	for (int i = 0; i < 32; i++)
		sprintf(got + 2 * i, "%02x", d[i]);
	if (strcmp(got, x->d->hex) != 0) {
		unlink(x->path);
		return shoal_err_set(p->err, EBADMSG,
				     "registry %s: layer sha256:%s: digest mismatch: got sha256:%s "
				     "(the download was discarded)",
				     p->host, x->d->hex, got);
	}
	x->state = X_DONE;
	emit(p, x->id, "Download complete", 0, 0);
	return 0;
}

/* 0: started (or finished at once), 1: busy elsewhere, < 0: failed. */
static int xfer_start(struct xfer *x, CURLM *multi)
{
	struct pull *p = x->p;
	if (x->fd < 0) {
		int r = xfer_open(x);
		if (r != 0)
			return r;
	}
	if (x->have == x->d->size)
		return xfer_verify(x);
	x->h = curl_easy_init();
	if (!x->h)
		return shoal_err_set(p->err, ENOMEM, "curl handle");
	char range[64] = "";
	if (x->have > 0)
		snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)x->have);
	x->hdrs = reg_headers(p, x->h, NULL, *range ? range : NULL);
	_cleanup_free_ char *url = NULL;
	if (!x->hdrs || asprintf(&url, "%s/v2/%s/blobs/sha256:%s", p->base, p->path, x->d->hex) < 0)
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	resp_reset(&x->rs, PULL_MAX_ERROR_BODY);
	x->checked = false;
	x->werr = 0;
	x->errbuf[0] = '\0';
	easy_setup(p, x->h, url, p->insecure, x->hdrs, x->errbuf);
	curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(x->h, CURLOPT_HEADERDATA, &x->rs);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, xfer_write_cb);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(multi, x->h) != CURLM_OK)
		return shoal_err_set(p->err, ENOMEM, "curl multi");
	x->state = X_RUN;
	xfer_progress(x, true);
	return 0;
}

static bool retryable(CURLcode c)
{
	switch (c) {
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* One attempt ended: done, queued again (resume, re-auth), or the pull fails. */
static int xfer_finish(struct xfer *x, CURLM *multi, CURLcode c)
{
	struct pull *p = x->p;
	long code = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(multi, x->h);
	curl_easy_cleanup(x->h);
	x->h = NULL;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	x->state = X_WAIT;
	char what[96];
	snprintf(what, sizeof(what), "layer sha256:%.12s", x->d->hex);
	if (x->werr)
		return shoal_err_set(p->err, x->werr, "registry %s: %s: %s", p->host, what,
				     x->wmsg);
	if (c != CURLE_OK) {
		if (!retryable(c) || ++x->attempts >= PULL_MAX_ATTEMPTS)
			return transport_error(p, c, x->errbuf, what);
		return 0; /* resumes from x->have */
	}
	x->rs.code = code;
	if (code == 401 && !x->reauthed) {
		/* a token may expire during a long pull */
		x->reauthed = true;
		_cleanup_free_ char *www = x->rs.www ? strdup(x->rs.www) : NULL;
		return authenticate(p, www, &x->rs);
	}
	if (code == 416 && x->have > 0 && ++x->attempts < PULL_MAX_ATTEMPTS) {
		int r = xfer_restart_hash(x);
		return r < 0 ? shoal_err_errno(p->err, r, "truncating %s", x->path) : 0;
	}
	if (code != 200 && code != 206)
		return reg_status_error(p, &x->rs, what);
	if (x->have == x->d->size)
		return xfer_verify(x);
	/* the answer ended early without a transport error */
	if (++x->attempts >= PULL_MAX_ATTEMPTS)
		return shoal_err_set(p->err, EIO,
				     "registry %s: %s: the download keeps ending early (%llu of "
				     "%llu bytes)",
				     p->host, what, (unsigned long long)x->have,
				     (unsigned long long)x->d->size);
	return 0;
}

static int download_all(struct pull *p)
{
	if (p->n_xfers == 0)
		return 0;
	CURLM *multi = curl_multi_init();
	if (!multi)
		return shoal_err_set(p->err, ENOMEM, "curl multi");
	int r = 0;
	size_t done = 0;
	while (done < p->n_xfers) {
		if (cancelled(p)) {
			r = shoal_err_set(p->err, ECANCELED, "pull cancelled");
			break;
		}
		size_t running = 0;
		for (size_t i = 0; i < p->n_xfers; i++)
			running += p->xfers[i].state == X_RUN;
		for (size_t i = 0; i < p->n_xfers && running < IMAGE_PULL_PARALLEL && r >= 0; i++) {
			struct xfer *x = &p->xfers[i];
			if (x->state != X_WAIT)
				continue;
			r = xfer_start(x, multi);
			if (r == 0 && x->state == X_RUN)
				running++;
			if (r > 0)
				r = 0; /* another pull has it: later */
		}
		if (r < 0)
			break;
		int still = 0;
		curl_multi_perform(multi, &still);
		CURLMsg *m;
		int q;
		while (r >= 0 && (m = curl_multi_info_read(multi, &q))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct xfer *x = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			r = xfer_finish(x, multi, m->data.result);
		}
		if (r < 0)
			break;
		done = 0;
		for (size_t i = 0; i < p->n_xfers; i++)
			done += p->xfers[i].state == X_DONE;
		if (done < p->n_xfers)
			curl_multi_poll(multi, NULL, 0, 200, NULL);
	}
	for (size_t i = 0; i < p->n_xfers; i++) {
		struct xfer *x = &p->xfers[i];
		if (x->h) {
			curl_multi_remove_handle(multi, x->h);
			curl_easy_cleanup(x->h);
			x->h = NULL;
		}
	}
	curl_multi_cleanup(multi);
	return r;
}

/* ---- sizes of layers the store has ---- */

static __thread uint64_t du_total;

static int du_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_F)
		du_total += (uint64_t)st->st_size;
	return 0;
}

static uint64_t dir_size(const char *path)
{
	du_total = 0;
	nftw(path, du_cb, 16, FTW_PHYS | FTW_MOUNT);
	return du_total;
}

/* ---- the pull ---- */

static void pull_done(struct pull *p)
{
	if (p->n_pinned)
		image_store_unpin_layers(p->s, p->pinned, p->n_pinned);
	free(p->pinned);
	for (size_t i = 0; i < p->n_xfers; i++)
		xfer_close(&p->xfers[i]);
	free(p->xfers);
	if (p->stage)
		rm_rf(p->stage);
	free(p->stage);
	image_ref_done(&p->ref);
	free(p->host);
	free(p->path);
	free(p->base);
	pull_creds_done(&p->creds);
	if (p->bearer)
		explicit_bzero(p->bearer, strlen(p->bearer));
	free(p->bearer);
}

static int pull_setup(struct pull *p, const char *ref)
{
	int r = image_ref_parse(ref, &p->ref);
	if (r < 0)
		return shoal_err_set(p->err, r == -ENOMEM ? ENOMEM : EINVAL,
				     "invalid reference format: \"%.200s\" (expected NAME[:TAG] or "
				     "NAME@sha256:DIGEST, lowercase)",
				     ref);
	const char *slash = strchr(p->ref.repo, '/');
	p->host = strndup(p->ref.repo, (size_t)(slash - p->ref.repo));
	p->path = strdup(slash + 1);
	if (!p->host || !p->path)
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	p->insecure = pull_host_insecure(p->host, p->o->insecure);
	const char *endpoint = strcmp(p->host, "docker.io") == 0 ? "registry-1.docker.io" : p->host;
	if (asprintf(&p->base, "%s://%s", p->insecure ? "http" : "https", endpoint) < 0) {
		p->base = NULL;
		return shoal_err_set(p->err, ENOMEM, "out of memory");
	}
	r = pull_creds_parse(p->o->auth, &p->creds, p->err);
	if (r < 0)
		return r;
	if (p->creds.server && strcmp(p->creds.server, p->host) != 0)
		return shoal_err_set(p->err, EINVAL,
				     "X-Registry-Auth: the credentials are for registry %s, not %s",
				     p->creds.server, p->host);
	snprintf(p->partial_dir, sizeof(p->partial_dir), "%s/tmp/pull", image_store_root(p->s));
	if (mkdir(p->partial_dir, 0700) < 0 && errno != EEXIST)
		return shoal_err_errno(p->err, errno, "creating %s", p->partial_dir);
	return 0;
}

static int config_check(struct pull *p, json_t *cfg, size_t n_layers, char (*diff)[65])
{
	const char *os = json_string_value(json_object_get(cfg, "os"));
	const char *arch = json_string_value(json_object_get(cfg, "architecture"));
	if (os && strcmp(os, "linux") != 0)
		return shoal_err_set(p->err, EINVAL, "image %s is for %s, not linux", p->ref.repo,
				     os);
	if (arch && *arch && strcmp(arch, host_arch()) != 0)
		return shoal_err_set(p->err, EINVAL,
				     "image %s is for linux/%s; this node is linux/%s", p->ref.repo,
				     arch, host_arch());
	json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_array(diffs))
		return shoal_err_set(p->err, EBADMSG, "image config: no rootfs.diff_ids");
	if (json_array_size(diffs) != n_layers)
		return shoal_err_set(p->err, EBADMSG,
				     "image config: rootfs.diff_ids lists %zu layers but the "
				     "manifest has %zu",
				     json_array_size(diffs), n_layers);
	for (size_t i = 0; i < n_layers; i++)
		if (pull_digest_hex(json_string_value(json_array_get(diffs, i)), diff[i]) < 0)
			return shoal_err_set(p->err, EBADMSG, "image config: bad diff_id #%zu", i);
	return 0;
}

/* The image manifest m describes (its config body in rs): config, layers, commit. */
static int pull_image(struct pull *p, struct pull_manifest *m, struct resp *rs, const char *top_hex,
		      struct image_pull_result *res)
{
	struct image_plan plan = {};
	_cleanup_free_ bool *exists = NULL;
	_cleanup_free_ size_t *which = NULL; /* layer -> xfer */
	_cleanup_(json_decrefp) json_t *cfg = NULL;
	_cleanup_free_ char *name = NULL, *dref = NULL;
	int r;

	uint64_t max = p->o->max_bytes ? p->o->max_bytes : IMAGE_PULL_MAX_BYTES;
	uint64_t total = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		total += m->layers[i].size;
	if (total > max) {
		r = shoal_err_set(
			p->err, EFBIG,
			"image %s has %llu bytes of layers, more than the %llu a pull may "
			"download",
			p->ref.repo, (unsigned long long)total, (unsigned long long)max);
		goto out;
	}

	/* the config: verified, then it names the layers' chain ids */
	r = fetch_config(p, &m->config, rs);
	if (r < 0)
		goto out;
	json_error_t je;
	cfg = json_loadb(rs->body ? rs->body : "", rs->len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(cfg)) {
		r = shoal_err_set(p->err, EBADMSG, "image config: malformed JSON: line %d: %s",
				  je.line, je.text);
		goto out;
	}
	plan.n_layers = m->n_layers;
	plan.chain = calloc(m->n_layers, sizeof(*plan.chain));
	plan.diff = calloc(m->n_layers, sizeof(*plan.diff));
	plan.tags = calloc(1, sizeof(char *));
	plan.repo_digests = calloc(1, sizeof(char *));
	exists = calloc(m->n_layers, sizeof(bool));
	which = calloc(m->n_layers, sizeof(size_t));
	p->xfers = calloc(m->n_layers, sizeof(*p->xfers));
	p->pinned = calloc(m->n_layers, sizeof(*p->pinned));
	if (!plan.chain || !plan.diff || !plan.tags || !plan.repo_digests || !exists || !which ||
	    !p->xfers || !p->pinned) {
		r = shoal_err_set(p->err, ENOMEM, "out of memory");
		goto out;
	}
	r = config_check(p, cfg, m->n_layers, plan.diff);
	if (r < 0)
		goto out;
	memcpy(plan.config_hex, m->config.hex, 65);
	plan.created = image_parse_time(json_string_value(json_object_get(cfg, "created")));
	for (size_t i = 0; i < m->n_layers; i++) {
		if (i == 0) {
			memcpy(plan.chain[0], plan.diff[0], 65);
		} else {
			char buf[160];
			int n = snprintf(buf, sizeof(buf), "sha256:%s sha256:%s", plan.chain[i - 1],
					 plan.diff[i]);
			sha256_hex(buf, (size_t)n, plan.chain[i]);
		}
		memcpy(p->pinned[i], plan.chain[i], 65);
	}
	if (image_store_pin_layers(p->s, p->pinned, m->n_layers, exists) < 0) {
		r = shoal_err_set(p->err, ENOMEM, "out of memory");
		goto out;
	}
	p->n_pinned = m->n_layers;

	/* what to download: each blob once, and none the store has unpacked */
	for (size_t i = 0; i < m->n_layers; i++) {
		char id[13];
		snprintf(id, sizeof(id), "%.12s", m->layers[i].hex);
		if (exists[i]) {
			emit(p, id, "Already exists", 0, 0);
			continue;
		}
		size_t k;
		for (k = 0; k < p->n_xfers; k++)
			if (strcmp(p->xfers[k].d->hex, m->layers[i].hex) == 0)
				break;
		which[i] = k;
		if (k < p->n_xfers)
			continue;
		struct xfer *x = &p->xfers[p->n_xfers++];
		x->p = p;
		x->d = &m->layers[i];
		x->fd = -1;
		memcpy(x->id, id, 13);
		snprintf(x->path, sizeof(x->path), "%s/%s", p->partial_dir, m->layers[i].hex);
		emit(p, id, "Pulling fs layer", 0, 0);
	}
	r = download_all(p);
	if (r < 0)
		goto out;

	/* unpacked in order into the stage, each checked against its diff_id */
	r = image_store_stage_new(p->s, &p->stage, p->err);
	if (r < 0)
		goto out;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/layers", p->stage);
	if (mkdir(dir, 0755) < 0) {
		r = shoal_err_errno(p->err, errno, "creating %s", dir);
		goto out;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		char lpath[PATH_MAX];
		snprintf(lpath, sizeof(lpath), "%s/layers/%s", image_store_root(p->s),
			 plan.chain[i]);
		if (exists[i]) {
			plan.size += dir_size(lpath);
			continue;
		}
		struct xfer *x = &p->xfers[which[i]];
		if (cancelled(p)) {
			r = shoal_err_set(p->err, ECANCELED, "pull cancelled");
			goto out;
		}
		emit(p, x->id, "Extracting", 0, 0);
		char diff_hex[65];
		uint64_t diff_size = x->d->size;
		if (m->layers[i].compression == PULL_LAYER_PLAIN) {
			memcpy(diff_hex, x->d->hex, 65);
		} else {
			r = image_stream_digest(x->path, diff_hex, &diff_size, p->err);
			if (r < 0) {
				shoal_err_wrap(p->err, "registry %s: layer sha256:%s", p->host,
					       x->d->hex);
				goto out;
			}
		}
		if (strcmp(diff_hex, plan.diff[i]) != 0) {
			r = shoal_err_set(p->err, EBADMSG,
					  "registry %s: layer sha256:%s: its content hashes to "
					  "sha256:%s, the config's diff_id is sha256:%s",
					  p->host, x->d->hex, diff_hex, plan.diff[i]);
			goto out;
		}
		plan.size += diff_size;
		char dest[PATH_MAX];
		snprintf(dest, sizeof(dest), "%s/layers/%s", p->stage, plan.chain[i]);
		struct stat st;
		if (lstat(dest, &st) < 0) {
			r = image_layer_unpack(x->path, dest, NULL, p->err);
			if (r < 0) {
				shoal_err_wrap(p->err, "layer sha256:%s", x->d->hex);
				goto out;
			}
		}
		emit(p, x->id, "Pull complete", 0, 0);
	}

	/* name and commit */
	if (p->ref.tag || !p->ref.digest) {
		if (asprintf(&name, "%s:%s", p->ref.repo, p->ref.tag ? p->ref.tag : "latest") < 0 ||
		    strv_push(&plan.tags, name) < 0) {
			r = shoal_err_set(p->err, ENOMEM, "out of memory");
			goto out;
		}
	}
	if (asprintf(&dref, "%s@sha256:%s", p->ref.repo, top_hex) < 0 ||
	    strv_push(&plan.repo_digests, dref) < 0) {
		r = shoal_err_set(p->err, ENOMEM, "out of memory");
		goto out;
	}
	if (asprintf(&plan.config_path, "%s/config.json", p->stage) < 0) {
		plan.config_path = NULL;
		r = shoal_err_set(p->err, ENOMEM, "out of memory");
		goto out;
	}
	r = write_file_atomic(plan.config_path, rs->body, rs->len, 0644);
	if (r < 0) {
		shoal_err_errno(p->err, r, "writing %s", plan.config_path);
		goto out;
	}
	bool updated = true;
	struct image_info *info = NULL;
	if (image_store_resolve(p->s, name ? name : dref, &info, NULL) == 0) {
		updated = !(strlen(info->id) == 71 && strcmp(info->id + 7, plan.config_hex) == 0);
		image_info_free(info);
	}
	json_t *loaded = NULL;
	r = image_store_commit(p->s, &plan, 1, p->stage, NULL, &loaded, p->err);
	json_decref(loaded);
	if (r < 0)
		goto out;
	/* committed: the downloads are no longer needed for a resume */
	for (size_t i = 0; i < p->n_xfers; i++)
		unlink(p->xfers[i].path);
	if (asprintf(&res->id, "sha256:%s", plan.config_hex) < 0 ||
	    asprintf(&res->digest, "sha256:%s", top_hex) < 0 ||
	    !(res->ref = strdup(name ? name : dref))) {
		image_pull_result_done(res);
		r = shoal_err_set(p->err, ENOMEM, "out of memory");
		goto out;
	}
	res->updated = updated;
	r = 0;
out:
	image_plan_done(&plan);
	return r;
}

/* The manifest the reference names, and the platform's if that is a list. */
static int pull_run(struct pull *p, struct image_pull_result *res)
{
	const char *reference = p->ref.digest ? p->ref.digest : p->ref.tag ? p->ref.tag : "latest";
	char top_hex[65], status[600], ref2[80], chosen_type[128];
	struct resp rs = {};
	struct pull_manifest m = {};
	int r = fetch_manifest(p, reference, p->ref.digest ? p->ref.digest + 7 : NULL, &rs,
			       top_hex);
	if (r < 0)
		goto out;
	snprintf(status, sizeof(status), "Pulling from %s", p->path);
	emit(p, reference, status, 0, 0);
	r = pull_manifest_parse(rs.body ? rs.body : "", rs.len, rs.ctype, "linux", host_arch(),
				IMAGE_MAX_LAYERS, &m, p->err);
	if (r < 0) {
		shoal_err_wrap(p->err, "registry %s: %s", p->host, reference);
		goto out;
	}
	if (m.kind == PULL_MANIFEST_INDEX) {
		char hex[65];
		struct pull_desc chosen = m.chosen;
		snprintf(chosen_type, sizeof(chosen_type), "%s", m.chosen_type);
		pull_manifest_done(&m);
		snprintf(ref2, sizeof(ref2), "sha256:%s", chosen.hex);
		r = fetch_manifest(p, ref2, chosen.hex, &rs, hex);
		if (r < 0)
			goto out;
		if (rs.len != chosen.size) {
			r = shoal_err_set(p->err, EBADMSG,
					  "registry %s: manifest %s: %zu bytes, the list says %llu",
					  p->host, ref2, rs.len, (unsigned long long)chosen.size);
			goto out;
		}
		r = pull_manifest_parse(rs.body ? rs.body : "", rs.len, chosen_type, "linux",
					host_arch(), IMAGE_MAX_LAYERS, &m, p->err);
		if (r >= 0 && m.kind != PULL_MANIFEST_IMAGE) {
			pull_manifest_done(&m);
			r = shoal_err_set(p->err, EBADMSG,
					  "a manifest list inside a manifest list");
		}
		if (r < 0) {
			shoal_err_wrap(p->err, "registry %s: manifest %s", p->host, ref2);
			goto out;
		}
	}
	r = pull_image(p, &m, &rs, top_hex, res);
out:
	pull_manifest_done(&m);
	resp_done(&rs);
	return r;
}

void image_pull_result_done(struct image_pull_result *r)
{
	free(r->id);
	free(r->ref);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

int image_pull_auth_check(const char *auth, struct shoal_err *err)
{
	struct pull_creds c;
	int r = pull_creds_parse(auth, &c, err);
	if (r >= 0)
		pull_creds_done(&c);
	return r;
}

int image_store_pull(struct image_store *s, const char *ref, const struct image_pull_opts *opts,
		     struct image_pull_result *ret, struct shoal_err *err)
{
	static const struct image_pull_opts none = {};
	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return shoal_err_set(err, EIO, "libcurl: %s", curl_easy_strerror(curl_init_result));
	struct pull p = {
		.s = s,
		.o = opts ? opts : &none,
		.err = err,
	};
	struct image_pull_result res = {};
	int r = pull_setup(&p, ref);
	if (r >= 0)
		r = pull_run(&p, &res);
	pull_done(&p);
	if (r < 0)
		return r;
	*ret = res;
	return 0;
}
