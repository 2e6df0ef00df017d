// SPDX-License-Identifier: Apache-2.0
/* image_store_pull against a small registry served from this process on
 * 127.0.0.1: a pull and its progress, a second pull that downloads no layer,
 * manifest lists, refused credentials (Basic and Bearer), a corrupted blob that
 * leaves the store as it was, a dropped connection resumed with a Range
 * request, a pull that failed half way continued by the next one, limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image.h"
#include "tests/unit/test-image-util.h"

#define MAX_ROUTES 8

struct route {
	char path[256];
	const char *ctype;
	struct buf body;
};

enum srv_auth { SRV_OPEN, SRV_BASIC, SRV_BEARER };

struct srv {
	int lfd, port;
	pthread_t thread;
	atomic_bool stop;
	struct route routes[MAX_ROUTES];
	size_t n_routes;
	enum srv_auth auth;
	/* behaviours, set while no pull runs */
	char drop_path[256]; /* GETs of this path send half the body, then close */
	int drops;	     /* ... this many times */
	char corrupt_path[256];
	/* what it saw */
	atomic_int layer_gets, range_gets, token_gets;
	char token_query[512];
};

static const char *basic_ok = "Basic YWxpY2U6c2VjcmV0"; /* alice:secret */

static void send_all_fd(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		p = (const char *)p + k;
		n -= (size_t)k;
	}
}

static void reply(int fd, int code, const char *extra, const char *ctype, const char *body,
		  size_t len, size_t send_len)
{
	char head[1024];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: %s\r\n%s"
			 "Connection: close\r\n\r\n",
			 code, len, ctype ? ctype : "application/json", extra ? extra : "");
	send_all_fd(fd, head, (size_t)n);
	if (body)
		send_all_fd(fd, body, send_len);
}

static void header_value(const char *req, const char *name, char *out, size_t size)
{
	out[0] = '\0';
	const char *p = strcasestr(req, name);
	if (!p)
		return;
	p += strlen(name);
	size_t n = strcspn(p, "\r\n");
	snprintf(out, size, "%.*s", (int)n, p);
}

static void serve_one(struct srv *s, int fd)
{
	char req[8192];
	size_t len = 0;
	while (len < sizeof(req) - 1) {
		ssize_t k = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (k <= 0)
			return;
		len += (size_t)k;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	char method[8], path[1024];
	if (sscanf(req, "%7s %1023s", method, path) != 2)
		return;
	char authz[512], range[128];
	header_value(req, "\r\nAuthorization: ", authz, sizeof(authz));
	header_value(req, "\r\nRange: ", range, sizeof(range));
	char extra[512];

	if (str_has_prefix(path, "/token")) {
		s->token_gets++;
		snprintf(s->token_query, sizeof(s->token_query), "%s", path);
		if (strcmp(authz, basic_ok) != 0) {
			reply(fd, 401, NULL, NULL, "{}", 2, 2);
			return;
		}
		const char *tok = "{\"token\": \"T0KEN\"}";
		reply(fd, 200, NULL, NULL, tok, strlen(tok), strlen(tok));
		return;
	}
	if (s->auth == SRV_BASIC && strcmp(authz, basic_ok) != 0) {
		const char *e =
			"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication "
			"required\"}]}";
		reply(fd, 401, "WWW-Authenticate: Basic realm=\"test\"\r\n", NULL, e, strlen(e),
		      strlen(e));
		return;
	}
	if (s->auth == SRV_BEARER && strcmp(authz, "Bearer T0KEN") != 0) {
		snprintf(extra, sizeof(extra),
			 "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\","
			 "service=\"test-registry\",scope=\"repository:test/img:pull\"\r\n",
			 s->port);
		reply(fd, 401, extra, NULL, "{}", 2, 2);
		return;
	}
	struct route *rt = NULL;
	for (size_t i = 0; i < s->n_routes; i++)
		if (strcmp(s->routes[i].path, path) == 0)
			rt = &s->routes[i];
	if (!rt) {
		const char *e =
			"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest "
			"unknown\"}]}";
		reply(fd, 404, NULL, NULL, e, strlen(e), strlen(e));
		return;
	}
	bool layer = strstr(path, "/blobs/") && strcmp(rt->ctype, "application/octet-stream") == 0;
	if (layer)
		s->layer_gets++;
	char *body = malloc(rt->body.len + 1);
	memcpy(body, rt->body.data, rt->body.len);
	if (strcmp(path, s->corrupt_path) == 0)
		body[rt->body.len / 2] ^= 0x5a;
	size_t start = 0;
	unsigned long long from;
	if (*range && sscanf(range, "bytes=%llu-", &from) == 1 && from < rt->body.len) {
		s->range_gets++;
		start = (size_t)from;
	}
	size_t n = rt->body.len - start;
	size_t send_n = n;
	if (strcmp(path, s->drop_path) == 0 && s->drops > 0) {
		s->drops--;
		send_n = n / 2;
	}
	extra[0] = '\0';
	if (start)
		snprintf(extra, sizeof(extra), "Content-Range: bytes %zu-%zu/%zu\r\n", start,
			 rt->body.len - 1, rt->body.len);
	reply(fd, start ? 206 : 200, extra, rt->ctype, body + start, n, send_n);
	free(body);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	while (!s->stop) {
		struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		/* a client that sends no HTTP (a TLS hello) is not waited for */
		struct timeval tv = {.tv_sec = 1};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		serve_one(s, fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

static void srv_start(struct srv *s)
{
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	socklen_t alen = sizeof(a);
	getsockname(s->lfd, (struct sockaddr *)&a, &alen);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	close(s->lfd);
	for (size_t i = 0; i < s->n_routes; i++)
		buf_free(&s->routes[i].body);
}

static void srv_route(struct srv *s, const char *path, const char *ctype, const void *data,
		      size_t len)
{
	assert_true(s->n_routes < MAX_ROUTES);
	struct route *r = &s->routes[s->n_routes++];
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->ctype = ctype;
	buf_append(&r->body, data, len);
}

/* The image of a test: two gzip layers, its manifest under /v2/test/img,
 * tagged v1 (the manifest) and multi (a list whose linux/amd64 entry it is). */
struct pimg {
	struct img im;
	struct buf gz[2];
	char gz_hex[2][65];
	char manifest_hex[65];
	char list_hex[65];
};

#define MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_LIST	    "application/vnd.docker.distribution.manifest.list.v2+json"

static void pimg_serve(struct pimg *p, struct srv *s, const char *seed)
{
	img_two_layers(&p->im, seed, "second");
	char path[256];
	json_t *layers = json_array();
	for (int i = 0; i < 2; i++) {
		buf_compress(&p->im.layers[i], "gzip", &p->gz[i]);
		hex_of(&p->gz[i], p->gz_hex[i]);
		json_array_append_new(layers,
				      json_pack("{s:s, s:I, s:s+}", "mediaType",
						"application/vnd.docker.image.rootfs.diff.tar.gzip",
						"size", (json_int_t)p->gz[i].len, "digest",
						"sha256:", p->gz_hex[i]));
		snprintf(path, sizeof(path), "/v2/test/img/blobs/sha256:%s", p->gz_hex[i]);
		srv_route(s, path, "application/octet-stream", p->gz[i].data, p->gz[i].len);
	}
	snprintf(path, sizeof(path), "/v2/test/img/blobs/sha256:%s", p->im.config_hex);
	srv_route(s, path, "application/vnd.docker.container.image.v1+json", p->im.config,
		  strlen(p->im.config));
	json_t *m = json_pack("{s:i, s:s, s:{s:s, s:I, s:s+}, s:o}", "schemaVersion", 2,
			      "mediaType", MT_MANIFEST, "config", "mediaType",
			      "application/vnd.docker.container.image.v1+json", "size",
			      (json_int_t)strlen(p->im.config), "digest",
			      "sha256:", p->im.config_hex, "layers", layers);
	char *text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	sha256_hex(text, strlen(text), p->manifest_hex);
	srv_route(s, "/v2/test/img/manifests/v1", MT_MANIFEST, text, strlen(text));
	snprintf(path, sizeof(path), "/v2/test/img/manifests/sha256:%s", p->manifest_hex);
	srv_route(s, path, MT_MANIFEST, text, strlen(text));
	json_t *list = json_pack(
		"{s:i, s:s, s:[{s:s, s:I, s:s+, s:{s:s, s:s}}, {s:s, s:I, s:s+, s:{s:s, s:s}}]}",
		"schemaVersion", 2, "mediaType", MT_LIST, "manifests", "mediaType", MT_MANIFEST,
		"size", (json_int_t)1234, "digest", "sha256:", p->gz_hex[0], "platform",
		"architecture", "arm64", "os", "linux", "mediaType", MT_MANIFEST, "size",
		(json_int_t)strlen(text), "digest", "sha256:", p->manifest_hex, "platform",
		"architecture", "amd64", "os", "linux");
	free(text);
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	sha256_hex(text, strlen(text), p->list_hex);
	srv_route(s, "/v2/test/img/manifests/multi", MT_LIST, text, strlen(text));
	free(text);
}

static void pimg_free(struct pimg *p)
{
	img_free(&p->im);
	buf_free(&p->gz[0]);
	buf_free(&p->gz[1]);
}

/* Progress lines as "ID STATUS" joined by "\n". */
struct events {
	struct buf text;
	pthread_mutex_t lock;
};

static void events_cb(const struct image_pull_event *ev, void *userdata)
{
	struct events *e = userdata;
	char line[256];
	int n = snprintf(line, sizeof(line), "%s %s\n", ev->id ? ev->id : "-", ev->status);
	pthread_mutex_lock(&e->lock);
	buf_append(&e->text, line, (size_t)n);
	pthread_mutex_unlock(&e->lock);
}

static size_t count_lines(struct events *e, const char *status)
{
	size_t n = 0;
	buf_append(&e->text, "", 1);
	e->text.len--;
	for (const char *p = e->text.data; p && (p = strstr(p, status)); p++)
		n++;
	return n;
}

struct t {
	struct fx *f;
	struct srv s;
	struct pimg p;
	char ref[128];
	char *insecure[2];
	char host[32];
};

static int t_setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	fx_setup((void **)&t->f);
	srv_start(&t->s);
	pimg_serve(&t->p, &t->s, "first");
	snprintf(t->host, sizeof(t->host), "127.0.0.1:%d", t->s.port);
	snprintf(t->ref, sizeof(t->ref), "%s/test/img:v1", t->host);
	t->insecure[0] = t->host;
	*state = t;
	return 0;
}

static int t_teardown(void **state)
{
	struct t *t = *state;
	srv_stop(&t->s);
	pimg_free(&t->p);
	fx_teardown((void **)&t->f);
	free(t);
	return 0;
}

static int do_pull(struct t *t, const char *ref, const char *auth, struct events *ev,
		   struct image_pull_result *res, struct shoal_err *err)
{
	struct image_pull_opts o = {
		.auth = auth,
		.insecure = t->insecure,
		.progress = ev ? events_cb : NULL,
		.userdata = ev,
	};
	shoal_err_clear(err);
	memset(res, 0, sizeof(*res));
	return image_store_pull(t->f->s, ref, &o, res, err);
}

/* The store's files but its staging area. */
static char *snapshot_no_tmp(struct fx *f)
{
	char *s = snapshot(f);
	char *out = calloc(1, strlen(s) + 1);
	for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
		if (!str_has_prefix(line, "/tmp")) {
			strcat(out, line);
			strcat(out, "\n");
		}
	free(s);
	return out;
}

static void test_pull_and_again(void **state)
{
	struct t *t = *state;
	struct events ev = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct image_pull_result res;
	struct shoal_err err = {};
	int r = do_pull(t, t->ref, NULL, &ev, &res, &err);
	if (r < 0)
		print_error("pull: %s\n", err.msg);
	assert_int_equal(r, 0);
	char want[128];
	snprintf(want, sizeof(want), "sha256:%s", t->p.im.config_hex);
	assert_string_equal(res.id, want);
	snprintf(want, sizeof(want), "sha256:%s", t->p.manifest_hex);
	assert_string_equal(res.digest, want);
	snprintf(want, sizeof(want), "%s/test/img:v1", t->host);
	assert_string_equal(res.ref, want);
	assert_true(res.updated);
	image_pull_result_done(&res);
	assert_int_equal(t->s.layer_gets, 2);
	assert_int_equal(count_lines(&ev, "Pulling from test/img"), 1);
	assert_int_equal(count_lines(&ev, "Pulling fs layer"), 2);
	assert_int_equal(count_lines(&ev, "Verifying Checksum"), 2);
	assert_int_equal(count_lines(&ev, "Download complete"), 2);
	assert_int_equal(count_lines(&ev, "Pull complete"), 2);
	char line[128];
	snprintf(line, sizeof(line), "%.12s Pull complete", t->p.gz_hex[0]);
	assert_int_equal(count_lines(&ev, line), 1);

	/* it runs: resolvable, with both layers unpacked, tagged and with its digest */
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(t->f->s, t->ref, &info, &err), 0);
	assert_int_equal(info->n_layers, 2);
	struct stat st;
	assert_int_equal(stat(info->layer_dirs[0], &st), 0);
	char seed[PATH_MAX];
	snprintf(seed, sizeof(seed), "%s/etc/seed", info->layer_dirs[0]);
	assert_int_equal(stat(seed, &st), 0);
	image_info_free(info);
	char by_digest[256];
	snprintf(by_digest, sizeof(by_digest), "%s/test/img@sha256:%s", t->host, t->p.manifest_hex);
	assert_int_equal(image_store_resolve(t->f->s, by_digest, &info, &err), 0);
	image_info_free(info);
	/* the downloads are gone once committed */
	char partial[PATH_MAX];
	snprintf(partial, sizeof(partial), "%s/tmp/pull/%s", store_root(t->f), t->p.gz_hex[0]);
	assert_int_equal(stat(partial, &st), -1);

	/* again: nothing downloaded, every layer already there, up to date */
	buf_free(&ev.text);
	assert_int_equal(do_pull(t, t->ref, NULL, &ev, &res, &err), 0);
	assert_false(res.updated);
	image_pull_result_done(&res);
	assert_int_equal(t->s.layer_gets, 2);
	assert_int_equal(count_lines(&ev, "Already exists"), 2);
	assert_int_equal(count_lines(&ev, "Downloading"), 0);
	buf_free(&ev.text);

	/* by the list: the linux/amd64 entry, the same image, named by the list's digest */
	snprintf(want, sizeof(want), "%s/test/img:multi", t->host);
	assert_int_equal(do_pull(t, want, NULL, NULL, &res, &err), 0);
	snprintf(want, sizeof(want), "sha256:%s", t->p.list_hex);
	assert_string_equal(res.digest, want);
	snprintf(want, sizeof(want), "sha256:%s", t->p.im.config_hex);
	assert_string_equal(res.id, want);
	assert_true(res.updated); /* a new name for it */
	image_pull_result_done(&res);
	assert_int_equal(t->s.layer_gets, 2);

	/* by digest */
	assert_int_equal(do_pull(t, by_digest, NULL, NULL, &res, &err), 0);
	assert_false(res.updated);
	image_pull_result_done(&res);
}

static void test_not_found_and_https(void **state)
{
	struct t *t = *state;
	struct image_pull_result res;
	struct shoal_err err = {};
	char ref[128];
	snprintf(ref, sizeof(ref), "%s/test/img:nope", t->host);
	assert_int_equal(do_pull(t, ref, NULL, NULL, &res, &err), -ENOENT);
	char want[256];
	snprintf(want, sizeof(want), "manifest for %s/test/img:nope not found: manifest unknown",
		 t->host);
	assert_non_null(strstr(err.msg, want));

	assert_int_equal(do_pull(t, "Not/Valid::x", NULL, NULL, &res, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "invalid reference format"));

	/* not in the insecure list: HTTPS, which this server does not speak */
	struct image_pull_opts o = {};
	assert_true(image_store_pull(t->f->s, t->ref, &o, &res, &err) < 0);
	print_message("over https: %s\n", err.msg);
	assert_non_null(strstr(err.msg, t->host));
	assert_non_null(strstr(err.msg, "--insecure-registry"));
	assert_int_equal(t->s.layer_gets, 0);
}

static void test_basic_auth(void **state)
{
	struct t *t = *state;
	t->s.auth = SRV_BASIC;
	struct image_pull_result res;
	struct shoal_err err = {};
	assert_int_equal(do_pull(t, t->ref, NULL, NULL, &res, &err), -EACCES);
	assert_non_null(strstr(err.msg, "requires authentication"));
	assert_non_null(strstr(err.msg, t->host));
	/* {"username":"alice","password":"wrong"} */
	assert_int_equal(do_pull(t, t->ref, "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJ3cm9uZyJ9",
				 NULL, &res, &err),
			 -EACCES);
	char want[128];
	snprintf(want, sizeof(want), "registry %s refused the credentials of user alice", t->host);
	assert_non_null(strstr(err.msg, want));
	/* {"username":"alice","password":"secret"} */
	const char *good = "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzZWNyZXQifQ";
	int r = do_pull(t, t->ref, good, NULL, &res, &err);
	if (r < 0)
		print_error("pull: %s\n", err.msg);
	assert_int_equal(r, 0);
	image_pull_result_done(&res);
	assert_int_equal(t->s.layer_gets, 2);
	/* credentials for another registry are refused, not sent */
	/* {"username":"alice","password":"secret","serveraddress":"other.example"} */
	assert_int_equal(do_pull(t, t->ref,
				 "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzZWNyZXQiLCJzZXJ2ZXJh"
				 "ZGRyZXNzIjoib3RoZXIuZXhhbXBsZSJ9",
				 NULL, &res, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "are for registry other.example"));
}

static void test_bearer(void **state)
{
	struct t *t = *state;
	t->s.auth = SRV_BEARER;
	struct image_pull_result res;
	struct shoal_err err = {};
	assert_int_equal(do_pull(t, t->ref, NULL, NULL, &res, &err), -EACCES);
	assert_non_null(strstr(err.msg, "refused an anonymous token"));
	assert_non_null(strstr(err.msg, t->host));
	assert_int_equal(t->s.token_gets, 1);
	const char *good = "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzZWNyZXQifQ";
	int r = do_pull(t, t->ref, good, NULL, &res, &err);
	if (r < 0)
		print_error("pull: %s\n", err.msg);
	assert_int_equal(r, 0);
	image_pull_result_done(&res);
	assert_int_equal(t->s.layer_gets, 2);
	assert_non_null(strstr(t->s.token_query, "scope=repository%3Atest%2Fimg%3Apull"));
	assert_non_null(strstr(t->s.token_query, "service=test-registry"));
}

static void test_corrupt_blob(void **state)
{
	struct t *t = *state;
	char *before = snapshot_no_tmp(t->f);
	snprintf(t->s.corrupt_path, sizeof(t->s.corrupt_path), "/v2/test/img/blobs/sha256:%s",
		 t->p.gz_hex[1]);
	struct image_pull_result res;
	struct shoal_err err = {};
	assert_int_equal(do_pull(t, t->ref, NULL, NULL, &res, &err), -EBADMSG);
	char want[160];
	snprintf(want, sizeof(want), "layer sha256:%s: digest mismatch", t->p.gz_hex[1]);
	assert_non_null(strstr(err.msg, want));
	char *after = snapshot_no_tmp(t->f);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* the bad download is not kept for a resume */
	char partial[PATH_MAX];
	struct stat st;
	snprintf(partial, sizeof(partial), "%s/tmp/pull/%s", store_root(t->f), t->p.gz_hex[1]);
	assert_int_equal(stat(partial, &st), -1);
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(t->f->s, t->ref, &info, &err), -ENOENT);
	/* the registry fixed: the pull works */
	t->s.corrupt_path[0] = '\0';
	assert_int_equal(do_pull(t, t->ref, NULL, NULL, &res, &err), 0);
	image_pull_result_done(&res);
}

static void test_dropped_and_resumed(void **state)
{
	struct t *t = *state;
	snprintf(t->s.drop_path, sizeof(t->s.drop_path), "/v2/test/img/blobs/sha256:%s",
		 t->p.gz_hex[0]);
	t->s.drops = 1;
	struct image_pull_result res;
	struct shoal_err err = {};
	int r = do_pull(t, t->ref, NULL, NULL, &res, &err);
	if (r < 0)
		print_error("pull: %s\n", err.msg);
	assert_int_equal(r, 0);
	image_pull_result_done(&res);
	assert_int_equal(t->s.range_gets, 1); /* the rest, from where it broke */
	assert_int_equal(t->s.layer_gets, 3);
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(t->f->s, t->ref, &info, &err), 0);
	image_info_free(info);
}

static void test_failed_pull_continued(void **state)
{
	struct t *t = *state;
	/* every answer breaks half way: each attempt gets half of what is left,
	 * and the pull gives up */
	snprintf(t->s.drop_path, sizeof(t->s.drop_path), "/v2/test/img/blobs/sha256:%s",
		 t->p.gz_hex[0]);
	t->s.drops = 1000;
	struct image_pull_result res;
	struct shoal_err err = {};
	assert_true(do_pull(t, t->ref, NULL, NULL, &res, &err) < 0);
	assert_non_null(strstr(err.msg, t->p.gz_hex[0] /* names the layer */) ||
			strstr(err.msg, "layer sha256:"));
	assert_int_equal(t->s.range_gets, 4);
	char partial[PATH_MAX];
	struct stat st;
	snprintf(partial, sizeof(partial), "%s/tmp/pull/%s", store_root(t->f), t->p.gz_hex[0]);
	assert_int_equal(stat(partial, &st), 0);
	assert_true(st.st_size > 0 && (size_t)st.st_size < t->p.gz[0].len);
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(t->f->s, t->ref, &info, &err), -ENOENT);
	/* the next pull starts where that one stopped */
	t->s.drops = 0;
	int ranges = t->s.range_gets;
	assert_int_equal(do_pull(t, t->ref, NULL, NULL, &res, &err), 0);
	image_pull_result_done(&res);
	assert_int_equal(t->s.range_gets, ranges + 1);
	assert_int_equal(image_store_resolve(t->f->s, t->ref, &info, &err), 0);
	image_info_free(info);
}

static void test_limits(void **state)
{
	struct t *t = *state;
	struct image_pull_opts o = {.insecure = t->insecure, .max_bytes = 16};
	struct image_pull_result res;
	struct shoal_err err = {};
	assert_int_equal(image_store_pull(t->f->s, t->ref, &o, &res, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "more than the 16 a pull may download"));
	assert_int_equal(t->s.layer_gets, 0);
	/* cancelled before it starts */
	atomic_int cancel = 1;
	struct image_pull_opts oc = {.insecure = t->insecure, .cancel = &cancel};
	assert_int_equal(image_store_pull(t->f->s, t->ref, &oc, &res, &err), -ECANCELED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pull_and_again, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_not_found_and_https, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_basic_auth, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_bearer, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_blob, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_dropped_and_resumed, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_failed_pull_continued, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_limits, t_setup, t_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
