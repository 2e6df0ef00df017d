// SPDX-License-Identifier: Apache-2.0
/* `shoal bench http`: HTTP/1.1 load against any address or published service.
 *
 * Two modes. Closed loop (--connections N alone): each connection sends its
 * next request when the previous answer is in, for the most throughput; a
 * stall of the target stalls the generator with it, so a closed loop hides
 * it from the percentiles (coordinated omission). Open loop (--rate R):
 * request k is due at start + k/R whatever happened before, and its latency
 * counts from that due time, as wrk2 does: when every connection is busy
 * (the target stalls), the requests due meanwhile wait for a free one and
 * their wait is part of their latency, so the stall shows at p99.
 *
 * The connections, the schedule and the rounds are the load engine's
 * (bench-load.h, shared with `bench tcp|udp`); this file is HTTP's part: a
 * prebuilt request, and a response parser that reads heads into a fixed
 * buffer and skips bodies (Content-Length, chunked, or to the close).
 * Latencies go to an HdrHistogram-style recorder (bench/hist.h), one per
 * round; the rounds give the run-to-run noise `shoal bench compare` weighs
 * changes against. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench-http-internal.h"
#include "bench/bench-load.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* Limits, each with its own error message (the shared ones in bench-load.h). */
#define HTTP_MAX_HEADERS   64		 /* --header */
#define HTTP_MAX_BODY	   (1024 * 1024) /* --body-file */
#define HTTP_HEAD_MAX	   8192		 /* a response head larger than this is an error */
#define HTTP_DEFAULT_CONNS 10

enum err_kind { E_CONNECT, E_RESET, E_CLOSED, E_TIMEOUT, E_PARSE, E_4XX, E_5XX, E_KINDS };
static const char *const err_names[E_KINDS] = {"connect", "reset",	"closed",    "timeout",
					       "parse",	  "status_4xx", "status_5xx"};

enum parse_state { P_HEAD, P_BODY, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER, P_EOF };

struct conn {
	struct bench_conn bc; /* first: the engine's part */
	size_t sent;
	/* response */
	enum parse_state ps;
	int status;
	bool close_after;
	uint64_t left; /* body or chunk bytes to skip */
	size_t len;
	char buf[HTTP_HEAD_MAX];
};

struct hb {
	struct bench_engine e;
	/* target */
	char host[256], port_s[16], path[2048];
	/* options */
	struct bench_load_opts o;
	bool vs_wrk;
	/* the request */
	char *req;
	size_t reqlen;
};

/* ---- flag values ---- */

/* "http://host[:port][/path]" into b; err says what is wrong. */
static int parse_url(struct hb *b, const char *url, char *err, size_t errsize)
{
	if (strncasecmp(url, "https://", 8) == 0) {
		snprintf(err, errsize, "--url %s: https is not supported; give an http:// URL",
			 url);
		return -EINVAL;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		snprintf(err, errsize, "--url %s: expected http://ADDR[:PORT][/PATH]", url);
		return -EINVAL;
	}
	const char *h = url + 7, *hend, *p;
	if (*h == '[') {
		hend = strchr(h, ']');
		if (!hend) {
			snprintf(err, errsize, "--url %s: unterminated [IPv6] address", url);
			return -EINVAL;
		}
		snprintf(b->host, sizeof(b->host), "%.*s", (int)(hend - h - 1), h + 1);
		p = hend + 1;
	} else {
		hend = h + strcspn(h, ":/?");
		if ((size_t)(hend - h) >= sizeof(b->host)) {
			snprintf(err, errsize, "--url: host name longer than %zu characters",
				 sizeof(b->host) - 1);
			return -EINVAL;
		}
		snprintf(b->host, sizeof(b->host), "%.*s", (int)(hend - h), h);
		p = hend;
	}
	if (!b->host[0]) {
		snprintf(err, errsize, "--url %s: no host", url);
		return -EINVAL;
	}
	snprintf(b->port_s, sizeof(b->port_s), "80");
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535 ||
		    (*end && *end != '/' && *end != '?')) {
			snprintf(err, errsize, "--url %s: the port must be 1 to 65535", url);
			return -EINVAL;
		}
		snprintf(b->port_s, sizeof(b->port_s), "%ld", port);
		p = end;
	}
	if (strlen(p) >= sizeof(b->path) - 1) {
		snprintf(err, errsize, "--url: path longer than %zu characters",
			 sizeof(b->path) - 2);
		return -EINVAL;
	}
	snprintf(b->path, sizeof(b->path), "%s%s", *p == '/' ? "" : "/", p);
	for (const char *q = b->path; *q; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f) {
			snprintf(err, errsize, "--url: the path has a space or control character");
			return -EINVAL;
		}
	return 0;
}

static int resolve(struct hb *b, struct shoal_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int r = getaddrinfo(b->host, b->port_s, &hints, &ai);
	if (r != 0)
		return shoal_err_set(err, EHOSTUNREACH, "cannot resolve %s: %s", b->host,
				     gai_strerror(r));
	memcpy(&b->e.to, ai->ai_addr, ai->ai_addrlen);
	b->e.tolen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* ---- the run ---- */

static void response_done(struct conn *c)
{
	/* the next request may reuse c as soon as the engine has it back */
	int status = c->status;
	if (bench_conn_done(&c->bc, c->close_after)) {
		if (status >= 500)
			c->bc.e->errors[E_5XX]++;
		else if (status >= 400)
			c->bc.e->errors[E_4XX]++;
	}
}

/* Parses the head in c->buf[0..hlen): status, Content-Length, chunked,
 * Connection: close. */
static int parse_head(struct conn *c, size_t hlen)
{
	const char *s = c->buf;
	if (hlen < 12 || strncmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ')
		return -EPROTO;
	char *end;
	long st = strtol(s + 9, &end, 10);
	if (end != s + 12 || st < 100 || st > 999)
		return -EPROTO;
	c->status = (int)st;
	c->close_after = s[7] == '0';
	bool chunked = false, have_len = false;
	uint64_t len = 0;
	for (const char *l = memchr(s, '\n', hlen); l && l + 1 < s + hlen;
	     l = memchr(l + 1, '\n', (size_t)(s + hlen - l - 1))) {
		const char *h = l + 1;
		size_t rest = (size_t)(s + hlen - h);
		if (rest > 15 && strncasecmp(h, "content-length:", 15) == 0) {
			const char *v = h + 15;
			while (*v == ' ' || *v == '\t')
				v++;
			errno = 0;
			unsigned long long n = strtoull(v, &end, 10);
			if (end == v || errno)
				return -EPROTO;
			len = n;
			have_len = true;
		} else if (rest > 18 && strncasecmp(h, "transfer-encoding:", 18) == 0) {
			const char *eol = memchr(h, '\r', rest);
			if (eol && memmem(h, (size_t)(eol - h), "chunked", 7))
				chunked = true;
		} else if (rest > 11 && strncasecmp(h, "connection:", 11) == 0) {
			const char *v = h + 11;
			while (*v == ' ' || *v == '\t')
				v++;
			if (strncasecmp(v, "close", 5) == 0)
				c->close_after = true;
			else if (strncasecmp(v, "keep-alive", 10) == 0)
				c->close_after = false;
		}
	}
	if (c->status < 200 || c->status == 204 || c->status == 304) {
		c->ps = P_BODY;
		c->left = 0;
	} else if (chunked) {
		c->ps = P_CHUNK_SIZE;
	} else if (have_len) {
		c->ps = P_BODY;
		c->left = len;
	} else {
		c->ps = P_EOF; /* the body ends with the connection */
		c->close_after = true;
	}
	return 0;
}

/* Consumes c->buf[0..len); 1 when the response is complete, 0 for more, <0
 * on a malformed response. */
static int parse(struct conn *c)
{
	size_t off = 0;
	int done = 0;
	while (!done) {
		char *base = c->buf + off;
		size_t n = c->len - off;
		switch (c->ps) {
		case P_HEAD: {
			char *e = memmem(base, n, "\r\n\r\n", 4);
			if (!e) {
				if (n >= HTTP_HEAD_MAX)
					return -E2BIG;
				goto more;
			}
			size_t hlen = (size_t)(e - base) + 4;
			if (off) {
				memmove(c->buf, base, n);
				c->len = n;
				off = 0;
			}
			if (parse_head(c, hlen) < 0)
				return -EPROTO;
			off = hlen;
			if (c->ps == P_BODY && c->left == 0)
				done = 1;
			break;
		}
		case P_BODY:
		case P_CHUNK_DATA: {
			size_t k = n < c->left ? n : (size_t)c->left;
			c->left -= k;
			off += k;
			if (c->left)
				goto more;
			if (c->ps == P_BODY)
				done = 1;
			else
				c->ps = P_CHUNK_CRLF, c->left = 2;
			break;
		}
		case P_CHUNK_CRLF: {
			size_t k = n < c->left ? n : (size_t)c->left;
			c->left -= k;
			off += k;
			if (c->left)
				goto more;
			c->ps = P_CHUNK_SIZE;
			break;
		}
		case P_CHUNK_SIZE: {
			char *e = memmem(base, n, "\r\n", 2);
			if (!e) {
				if (n >= 256)
					return -EPROTO;
				goto more;
			}
			char *end;
			errno = 0;
			unsigned long long sz = strtoull(base, &end, 16);
			if (end == base || errno)
				return -EPROTO;
			off += (size_t)(e - base) + 2;
			if (sz == 0)
				c->ps = P_TRAILER;
			else
				c->ps = P_CHUNK_DATA, c->left = sz;
			break;
		}
		case P_TRAILER: {
			char *e = memmem(base, n, "\r\n", 2);
			if (!e) {
				if (n >= HTTP_HEAD_MAX)
					return -E2BIG;
				goto more;
			}
			off += (size_t)(e - base) + 2;
			if (e == base)
				done = 1;
			break;
		}
		case P_EOF:
			off = c->len; /* skipped until the close */
			goto more;
		}
	}
	if (off < c->len) /* bytes after the answer to our only request */
		return -EPROTO;
	c->len = 0;
	return 1;
more:
	if (off) {
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
	}
	return 0;
}

static void http_readable(struct bench_conn *bc)
{
	struct conn *c = (struct conn *)bc;
	for (;;) {
		ssize_t n = read(bc->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			bench_conn_fail(bc, E_RESET, errno);
			return;
		}
		if (n == 0) {
			if (bc->state == BENCH_C_BUSY && c->ps == P_EOF)
				response_done(c);
			else if (bc->state == BENCH_C_IDLE)
				bench_conn_reopen(bc); /* a keep-alive the server ended */
			else
				bench_conn_fail(bc, E_CLOSED, 0);
			return;
		}
		if (bc->state != BENCH_C_BUSY) {
			bench_conn_fail(bc, E_PARSE, 0); /* bytes nobody asked for */
			return;
		}
		c->len += (size_t)n;
		int r = parse(c);
		if (r < 0) {
			bench_conn_fail(bc, E_PARSE, 0);
			return;
		}
		if (r > 0) {
			response_done(c);
			return;
		}
		if ((size_t)n < sizeof(c->buf))
			return;
	}
}

static void http_write(struct bench_conn *bc)
{
	struct conn *c = (struct conn *)bc;
	struct hb *b = bc->e->arg;
	ssize_t k = bench_conn_send(bc, b->req + c->sent, b->reqlen - c->sent, E_RESET);
	if (k > 0)
		c->sent += (size_t)k;
}

static void http_send(struct bench_conn *bc)
{
	struct conn *c = (struct conn *)bc;
	c->sent = 0;
	c->len = 0;
	c->ps = P_HEAD;
	c->status = 0;
	http_write(bc);
}

static const struct bench_engine_ops http_ops = {
	.sock_type = SOCK_STREAM,
	.connect_kind = E_CONNECT,
	.timeout_kind = E_TIMEOUT,
	.send = http_send,
	.writable = http_write,
	.readable = http_readable,
};

/* ---- the command ---- */

static int build_request(struct hb *b, const char *method, const char *const *headers, int nheaders,
			 const char *body_file, char *err, size_t errsize)
{
	_cleanup_free_ char *body = NULL;
	size_t blen = 0;
	if (body_file) {
		int r = read_file(body_file, HTTP_MAX_BODY, &body, &blen);
		if (r == -EFBIG) {
			snprintf(err, errsize, "--body-file %s: larger than %d bytes", body_file,
				 HTTP_MAX_BODY);
			return r;
		}
		if (r < 0) {
			snprintf(err, errsize, "--body-file %s: %s", body_file, strerror(-r));
			return r;
		}
	}
	char *h = NULL;
	size_t hl = 0;
	FILE *f = open_memstream(&h, &hl);
	if (!f)
		return -ENOMEM;
	bool has_host = false;
	for (int i = 0; i < nheaders; i++)
		if (strncasecmp(headers[i], "host:", 5) == 0)
			has_host = true;
	fprintf(f, "%s %s HTTP/1.1\r\n", method, b->path);
	if (!has_host)
		fprintf(f, "Host: %s%s%s:%s\r\n", strchr(b->host, ':') ? "[" : "", b->host,
			strchr(b->host, ':') ? "]" : "", b->port_s);
	fprintf(f, "User-Agent: shoal-bench/%s\r\n", SHOAL_VERSION);
	for (int i = 0; i < nheaders; i++)
		fprintf(f, "%s\r\n", headers[i]);
	if (body_file)
		fprintf(f, "Content-Length: %zu\r\n", blen);
	if (b->o.new_conn)
		fprintf(f, "Connection: close\r\n");
	fprintf(f, "\r\n");
	if (blen)
		fwrite(body, 1, blen, f);
	if (fclose(f) != 0) {
		free(h);
		return -ENOMEM;
	}
	b->req = h;
	b->reqlen = hl;
	return 0;
}

/* A --header value: "Name: value", a token before the colon, no CR or LF. */
static bool header_ok(const char *h)
{
	const char *colon = strchr(h, ':');
	if (!colon || colon == h)
		return false;
	for (const char *p = h; p < colon; p++)
		if ((unsigned char)*p <= ' ' || strchr("()<>@,;\\\"/[]?={}", *p) || *p == 0x7f)
			return false;
	return !strpbrk(h, "\r\n");
}

int bench_http(struct cli_ctx *ctx, int argc, char **argv)
{
	enum {
		O_URL = 1,
		O_SERVICE,
		O_METHOD,
		O_HEADER,
		O_BODY,
		O_VSWRK,
	};
	static const struct cli_opt own[] = {
		{O_URL, "url", 0, CLI_OPT_VALUE, "url", "Target: http://ADDR[:PORT][/PATH]"},
		{O_SERVICE, "service", 0, CLI_OPT_VALUE, "name",
		 "Target: a service's published port on this node"},
		{O_METHOD, "method", 'X', CLI_OPT_VALUE, "string", "Request method (default GET)"},
		{O_HEADER, "header", 'H', CLI_OPT_VALUE, "K:V", "Request header (repeatable)"},
		{O_BODY, "body-file", 0, CLI_OPT_VALUE, "file", "Request body"},
		{O_VSWRK, "vs-wrk", 0, CLI_OPT_BOOL, NULL,
		 "Then run wrk with the same connections on the same CPU, for comparison"},
		{0},
	};
	struct cli_opt opts[40];
	if (bench_load_opts_join(own, opts, ARRAY_SIZE(opts)) < 0)
		return cli_oom();
	static const char usage[] = "--url URL | --service NAME [OPTIONS]";
	static const char desc[] = "HTTP/1.1 load against any address or published service";
	snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "shoal bench http");
	struct hb b = {0};
	bench_load_opts_init(&b.o, 5, "http");
	const char *url = NULL, *service = NULL, *method = "GET", *body_file = NULL;
	const char *headers[HTTP_MAX_HEADERS];
	int nheaders = 0;
	char msg[512] = "";
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		int r = bench_load_opt(&b.o, &p, o, msg, sizeof(msg));
		switch (r ? 0 : o) {
		case O_URL:
			url = p.value;
			break;
		case O_SERVICE:
			service = p.value;
			break;
		case O_METHOD:
			method = p.value;
			if (!*method ||
			    strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method) ||
			    strlen(method) > 32) {
				r = -EINVAL;
				snprintf(
					msg, sizeof(msg),
					"--method %s: expected an upper-case method such as GET or "
					"POST",
					method);
			}
			break;
		case O_HEADER:
			if (nheaders == HTTP_MAX_HEADERS) {
				r = -E2BIG;
				snprintf(msg, sizeof(msg), "--header: at most %d headers",
					 HTTP_MAX_HEADERS);
			} else if (!header_ok(p.value)) {
				r = -EINVAL;
				snprintf(msg, sizeof(msg),
					 "--header %s: expected NAME:VALUE, a name without spaces "
					 "or separators, no line breaks",
					 p.value);
			} else {
				headers[nheaders++] = p.value;
			}
			break;
		case O_BODY:
			body_file = p.value;
			break;
		case O_VSWRK:
			b.vs_wrk = cli_opts_bool(&p);
			break;
		}
		if (r < 0) {
			cli_opts_done(&p);
			return cli_usage_error(ctx, msg);
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(ctx, &p, o, usage, desc);
	if (p.npos > 0) {
		snprintf(msg, sizeof(msg), "unexpected argument %s", p.pos[0]);
		cli_opts_done(&p);
		return cli_usage_error(ctx, msg);
	}
	/* the header pointers point into argv, which outlives p */
	cli_opts_done(&p);
	if (!url == !service)
		return cli_usage_error(ctx, "give the target: --url http://ADDR:PORT/PATH or "
					    "--service NAME (one of them)");
	if (b.vs_wrk &&
	    (b.o.rate > 0 || b.o.new_conn || body_file || nheaders || strcmp(method, "GET") != 0))
		return cli_usage_error(ctx, "--vs-wrk compares the closed loop of plain GETs on "
					    "keep-alive connections: drop --rate, "
					    "--new-connections, --method, --header, --body-file");
	if (b.vs_wrk && (b.o.netns_client || b.o.from_container))
		return cli_usage_error(ctx, "--vs-wrk runs wrk from this host's namespace: drop "
					    "--netns-client and --from-container");
	if (b.o.netns_client && b.o.from_container)
		return cli_usage_error(ctx,
				       "--netns-client and --from-container: give one of them");
	if (service && b.o.from_container)
		return cli_usage_error(ctx, "--service with --from-container: a published port is "
					    "on the node's addresses; give --url with the address "
					    "the container should reach");
	if (url && parse_url(&b, url, msg, sizeof(msg)) < 0)
		return cli_usage_error(ctx, msg);
	b.e.conns = b.o.conns ? b.o.conns : HTTP_DEFAULT_CONNS;
	b.o.quiet = b.o.quiet || b.o.json || !isatty(2);
	struct shoal_err err = {0};
	int port = 0;
	if (service && bench_service_port(ctx, service, "tcp", &port, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	struct bench_load_result res;
	struct bench_netns ns;
	int rc = bench_load_begin(ctx, &b.o, b.e.conns, "http", &res, &ns);
	if (rc)
		return rc;
	_cleanup_json_ json_t *out = res.out;
	_cleanup_free_ char *req = NULL;
	char svc_url[96];
	if (service) {
		char h[INET_ADDRSTRLEN];
		bench_load_service_host(&b.o, &ns, h, sizeof(h));
		snprintf(svc_url, sizeof(svc_url), "http://%s:%d/", h, port);
		url = svc_url;
		if (parse_url(&b, url, msg, sizeof(msg)) < 0) {
			shoal_err_set(&err, EINVAL, "%s", msg);
			goto fail;
		}
	}
	if (build_request(&b, method, headers, nheaders, body_file, msg, sizeof(msg)) < 0) {
		shoal_err_set(&err, EINVAL, "%s", msg[0] ? msg : "out of memory");
		goto fail;
	}
	req = b.req;
	if (resolve(&b, &err) < 0)
		goto fail;
	char what[300];
	snprintf(what, sizeof(what), "%s:%s", b.host, b.port_s);
	if (bench_load_check_target(&b.o, &ns, &b.e.to, what, &err) < 0)
		goto fail;
	if (bench_probe_tcp(&b.e.to, b.e.tolen, b.o.timeout, what, &err) < 0)
		goto fail;
	json_t *cfg = json_pack("{s:s, s:s, s:s, s:f, s:i, s:f, s:f, s:f, s:i, s:b, s:i, s:i}",
				"url", url, "mode", b.o.rate > 0 ? "open-loop" : "closed-loop",
				"method", method, "rate", b.o.rate, "connections", b.e.conns,
				"duration_s", b.o.duration, "warmup_s", b.o.warmup, "timeout_s",
				b.o.timeout, "rounds", b.o.rounds, "new_connections", b.o.new_conn,
				"headers", nheaders, "body_bytes", (int)(body_file ? b.reqlen : 0));
	json_object_update(res.config, cfg);
	json_decref(cfg);
	if (!b.o.quiet)
		fprintf(stderr, "shoal bench http: %s, %s\n", url,
			b.o.rate > 0 ? "open loop" : "closed loop");
	b.e.ops = &http_ops;
	b.e.o = &b.o;
	b.e.arg = &b;
	b.e.conn_size = sizeof(struct conn);
	struct bench_load_report rep = {.name = b.o.name,
					.target = url,
					.err_names = err_names,
					.nkinds = E_KINDS,
					.not_errors = (1u << E_4XX) | (1u << E_5XX)};
	uint64_t total = 0;
	if (bench_engine_run(&b.e, &rep, res.variant, res.warnings, &total, &err) < 0)
		goto fail;
	if (total == 0) {
		uint64_t nerr = 0;
		for (int k = 0; k < E_KINDS; k++)
			if (k != E_4XX && k != E_5XX)
				nerr += b.e.errors[k];
		shoal_err_set(&err, EIO, "no answer from %s:%s in %.1f s (%llu errors)", b.host,
			      b.port_s, b.o.duration, (unsigned long long)nerr);
		goto fail;
	}
	bench_netns_down(&ns);
	rc = 0;
	struct bench_http_wrk_opts wo = {
		.conns = b.e.conns, .duration = b.o.duration, .warmup = b.o.warmup, .cpu = b.o.cpu};
	if (b.vs_wrk && bench_http_wrk(&wo, url, out, &err) < 0) {
		cli_print_err(&err);
		rc = 1;
	}
	if (bench_load_output(out, &b.o, bench_load_print) != 0)
		return 1;
	return rc;
fail:
	bench_netns_down(&ns);
	cli_print_err(&err);
	return 1;
}
