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
 * One libevent loop, non-blocking sockets, a prebuilt request, a response
 * parser that reads heads into a fixed buffer and skips bodies (Content-
 * Length, chunked, or to the close). Latencies go to an HdrHistogram-style
 * recorder (bench/hist.h), one per round; the rounds give the run-to-run
 * noise `shoal bench compare` weighs changes against. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/bench-http-internal.h"
#include "bench/bench.h"
#include "bench/hist.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* Limits, each with its own error message. */
#define HTTP_MAX_CONNS	   10000	     /* concurrent connections (fds, buffers) */
#define HTTP_MAX_RATE	   10000000.0	     /* requests per second, open loop */
#define HTTP_MAX_SECONDS   3600.0	     /* --duration, --warmup, --timeout */
#define HTTP_MAX_ROUNDS	   100		     /* --rounds */
#define HTTP_MAX_HEADERS   64		     /* --header */
#define HTTP_MAX_BODY	   (1024 * 1024)     /* --body-file */
#define HTTP_HEAD_MAX	   8192		     /* a response head larger than this is an error */
#define HTTP_TICK_NS	   (100 * 1000000LL) /* timeouts, reconnects, progress */
#define HTTP_RECONNECT_NS  (100 * 1000000LL) /* wait after a failed connect */
#define HTTP_DEFAULT_CONNS 10

/* A free connection that sends later than this after its request was due
 * means the generator fell behind its own schedule. */
#define HTTP_LAG_WARN_US 1000
/* CPU the generator may use before its figures measure itself. */
#define HTTP_CPU_WARN 0.90

enum err_kind { E_CONNECT, E_RESET, E_CLOSED, E_TIMEOUT, E_PARSE, E_4XX, E_5XX, E_KINDS };
static const char *const err_names[E_KINDS] = {"connect", "reset",	"closed",    "timeout",
					       "parse",	  "status_4xx", "status_5xx"};

enum conn_state {
	C_DOWN,	      /* no socket; reconnect at t_retry */
	C_CONNECTING, /* connect() in progress */
	C_IDLE,	      /* connected, on the idle stack */
	C_SENDING,    /* request partly written */
	C_WAITING,    /* reading the response */
};

enum parse_state { P_HEAD, P_BODY, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER, P_EOF };

struct hb;

struct conn {
	struct hb *b;
	int fd;
	enum conn_state state;
	struct event *rev, *wev;
	int64_t t_start; /* latency origin: the due time (open) or the send (closed) */
	int64_t t_idle;	 /* since when it could have sent */
	int64_t t_sent;	 /* when the request went out, for its timeout */
	int64_t t_retry;
	bool pending; /* a request is assigned (new-connection mode: before connect) */
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
	struct cli_ctx *ctx;
	/* target */
	char host[256], port_s[16], path[2048];
	struct sockaddr_storage to;
	socklen_t tolen;
	/* options */
	double rate; /* 0: closed loop */
	int conns;
	double duration, warmup, timeout;
	int rounds;
	bool new_conn, json, quiet, vs_wrk;
	int cpu;
	const char *name;
	/* the request */
	char *req;
	size_t reqlen;
	/* run */
	struct event_base *base;
	struct event *tick, *sched;
	struct conn *c;
	struct conn **idle;
	int nidle;
	int64_t t0, measure_from, end, last_progress;
	uint64_t next_k;   /* open loop: the next request to send */
	uint64_t waited;   /* open loop: requests due while every connection was busy */
	uint64_t sent;	   /* requests sent in the measured window */
	uint64_t done_run; /* answers over the whole run, for progress */
	struct bench_hist **round_hist;
	struct bench_hist *lag; /* generator lag: due (or free) to sent, with a free connection */
	uint64_t *round_req;
	uint64_t errors[E_KINDS];
	int first_errno;
	bool stopping;
};

static int64_t t_now(void)
{
	return mono_ns();
}

/* ---- flag values ---- */

/* "10s", "500ms", "2m", "1.5" (seconds) -> seconds. */
static int parse_seconds(const char *s, double *ret)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		v /= 1000;
	else if (strcmp(end, "m") == 0)
		v *= 60;
	else if (strcmp(end, "h") == 0)
		v *= 3600;
	else if (*end && strcmp(end, "s") != 0)
		return -EINVAL;
	if (v > HTTP_MAX_SECONDS)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* "1000", "1000/s", "60000/m" -> per second. */
static int parse_rate(const char *s, double *ret)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v > 0) || !isfinite(v))
		return -EINVAL;
	if (strcmp(end, "/m") == 0)
		v /= 60;
	else if (*end && strcmp(end, "/s") != 0)
		return -EINVAL;
	if (v > HTTP_MAX_RATE)
		return -ERANGE;
	*ret = v;
	return 0;
}

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
	memcpy(&b->to, ai->ai_addr, ai->ai_addrlen);
	b->tolen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* One blocking connect, bounded by the timeout, before any load: an
 * unreachable target is one clear error, not a run of counted failures. */
static int probe(struct hb *b, struct shoal_err *err)
{
	int fd = socket(b->to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return shoal_err_errno(err, errno, "socket");
	int r = connect(fd, (struct sockaddr *)&b->to, b->tolen) < 0 ? -errno : 0;
	if (r == -EINPROGRESS) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int t = (int)(b->timeout * 1000);
		int n = poll(&pfd, 1, t > 0 ? t : 1);
		if (n == 0)
			r = -ETIMEDOUT;
		else {
			int e = 0;
			socklen_t len = sizeof(e);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
			r = -e;
		}
	}
	close(fd);
	if (r < 0)
		return shoal_err_errno(err, -r, "cannot connect to %s:%s", b->host, b->port_s);
	return 0;
}

/* ---- the run ---- */

static bool measuring(struct hb *b, int64_t t)
{
	return t >= b->measure_from;
}

static void count_error(struct hb *b, enum err_kind k, int64_t t, int e)
{
	if (!measuring(b, t))
		return;
	b->errors[k]++;
	if (!b->first_errno && e)
		b->first_errno = e;
}

static void conn_dispatch_all(struct hb *b);
static void conn_open(struct conn *c);
static int conn_send(struct conn *c, int64_t now);

static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	event_del(c->rev);
	event_del(c->wev);
	event_free(c->rev);
	event_free(c->wev);
	c->rev = c->wev = NULL;
	/* RST instead of FIN: no TIME_WAIT, so a long run of new connections
	 * does not run out of source ports */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
}

static void idle_push(struct conn *c, int64_t now)
{
	c->state = C_IDLE;
	c->t_idle = now;
	c->b->idle[c->b->nidle++] = c;
}

/* The connection is free again: closed loop sends at once; open loop asks
 * the schedule. */
static void conn_ready(struct conn *c, int64_t now)
{
	struct hb *b = c->b;
	if (b->stopping)
		return;
	if (b->rate == 0) {
		c->t_start = now;
		c->t_idle = now;
		if (conn_send(c, now) < 0)
			return;
		return;
	}
	idle_push(c, now);
	conn_dispatch_all(b);
}

static void conn_fail(struct conn *c, enum err_kind k, int e)
{
	struct hb *b = c->b;
	int64_t now = t_now();
	/* a request in flight is lost: count it at its origin */
	count_error(b, k, c->pending ? c->t_start : now, e);
	conn_close(c);
	c->pending = false;
	c->state = C_DOWN;
	c->t_retry = now + (k == E_CONNECT ? HTTP_RECONNECT_NS : 0);
	if (c->t_retry <= now && !b->new_conn)
		conn_open(c);
}

static void response_done(struct conn *c)
{
	struct hb *b = c->b;
	int64_t now = t_now();
	if (measuring(b, c->t_start) && now < b->end) {
		int r = (int)((now - b->measure_from) * b->rounds / (b->end - b->measure_from));
		if (r >= b->rounds)
			r = b->rounds - 1;
		bench_hist_record_ns(b->round_hist[r], now - c->t_start);
		b->round_req[r]++;
		if (c->status >= 500)
			b->errors[E_5XX]++;
		else if (c->status >= 400)
			b->errors[E_4XX]++;
	}
	b->done_run++;
	c->pending = false;
	if (c->close_after || b->new_conn) {
		conn_close(c);
		c->state = C_DOWN;
		c->t_retry = now;
		if (b->new_conn) {
			/* the slot is free; the next request opens its own connection */
			if (b->rate == 0) {
				c->t_start = now;
				c->pending = true;
				conn_open(c);
			} else {
				idle_push(c, now);
				conn_dispatch_all(b);
			}
		} else {
			conn_open(c);
		}
		return;
	}
	conn_ready(c, now);
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

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_fail(c, E_RESET, errno);
			return;
		}
		if (n == 0) {
			if (c->state == C_WAITING && c->ps == P_EOF) {
				response_done(c);
				return;
			}
			/* an idle keep-alive connection the server closed is not an error */
			if (c->state == C_IDLE) {
				c->b->nidle = 0;
				conn_close(c);
				c->state = C_DOWN;
				c->t_retry = t_now();
				/* rebuild the idle stack without c */
				for (int i = 0; i < c->b->conns; i++)
					if (c->b->c[i].state == C_IDLE)
						c->b->idle[c->b->nidle++] = &c->b->c[i];
				conn_open(c);
				return;
			}
			conn_fail(c, E_CLOSED, 0);
			return;
		}
		if (c->state != C_WAITING && c->state != C_SENDING) {
			conn_fail(c, E_PARSE, 0); /* bytes nobody asked for */
			return;
		}
		c->len += (size_t)n;
		int r = parse(c);
		if (r < 0) {
			conn_fail(c, E_PARSE, 0);
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

static int conn_write(struct conn *c)
{
	struct hb *b = c->b;
	while (c->sent < b->reqlen) {
		ssize_t n = send(c->fd, b->req + c->sent, b->reqlen - c->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN) {
				c->state = C_SENDING;
				event_add(c->wev, NULL);
				return 0;
			}
			if (errno == EINTR)
				continue;
			int e = errno;
			conn_fail(c, E_RESET, e);
			return -e;
		}
		c->sent += (size_t)n;
	}
	c->state = C_WAITING;
	return 0;
}

static int conn_send(struct conn *c, int64_t now)
{
	struct hb *b = c->b;
	c->pending = true;
	c->sent = 0;
	c->len = 0;
	c->ps = P_HEAD;
	c->status = 0;
	c->t_sent = now;
	if (measuring(b, c->t_start))
		b->sent++;
	if (b->rate > 0 && measuring(b, c->t_start)) {
		int64_t ready = c->t_start > c->t_idle ? c->t_start : c->t_idle;
		bench_hist_record_ns(b->lag, now - ready);
	}
	return conn_write(c);
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	if (c->state == C_CONNECTING) {
		int e = 0;
		socklen_t len = sizeof(e);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e) {
			conn_fail(c, E_CONNECT, e);
			return;
		}
		event_add(c->rev, NULL);
		if (c->pending) /* new-connection mode: its request is waiting */
			conn_send(c, t_now());
		else
			conn_ready(c, t_now());
		return;
	}
	if (c->state == C_SENDING)
		conn_write(c);
}

static void conn_open(struct conn *c)
{
	struct hb *b = c->b;
	c->fd = socket(b->to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, E_CONNECT, errno);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->rev = event_new(b->base, c->fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev = event_new(b->base, c->fd, EV_WRITE, conn_write_cb, c);
	if (!c->rev || !c->wev) {
		conn_fail(c, E_CONNECT, ENOMEM);
		return;
	}
	c->state = C_CONNECTING;
	if (connect(c->fd, (struct sockaddr *)&b->to, b->tolen) < 0 && errno != EINPROGRESS) {
		conn_fail(c, E_CONNECT, errno);
		return;
	}
	c->t_retry = t_now(); /* the connect's start, for its timeout */
	event_add(c->wev, NULL);
}

static int64_t due(struct hb *b, uint64_t k)
{
	return b->t0 + (int64_t)((double)k * 1e9 / b->rate);
}

/* Open loop: hands every request that is due to a free connection; arms the
 * schedule timer for the next one. */
static void conn_dispatch_all(struct hb *b)
{
	if (b->stopping)
		return;
	int64_t now = t_now();
	while (b->nidle > 0) {
		int64_t d = due(b, b->next_k);
		if (d > now) {
			struct timeval tv = {.tv_sec = (d - now) / 1000000000,
					     .tv_usec = ((d - now) % 1000000000) / 1000};
			evtimer_add(b->sched, &tv);
			return;
		}
		struct conn *c = b->idle[--b->nidle];
		if (d < c->t_idle && measuring(b, d))
			b->waited++; /* due while every connection was busy */
		b->next_k++;
		c->t_start = d;
		if (b->new_conn) {
			c->pending = true;
			c->t_idle = now;
			conn_open(c);
		} else {
			conn_send(c, now);
		}
	}
}

static void sched_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_dispatch_all(arg);
}

static void progress(struct hb *b, int64_t now)
{
	if (b->quiet || now - b->last_progress < 1000000000)
		return;
	b->last_progress = now;
	if (now < b->measure_from) {
		fprintf(stderr, "\r\033[Kwarming up, %.0f s left",
			(double)(b->measure_from - now) / 1e9);
		return;
	}
	int r = (int)((now - b->measure_from) * b->rounds / (b->end - b->measure_from));
	if (r >= b->rounds)
		r = b->rounds - 1;
	double el = (double)(now - b->measure_from) / 1e9;
	uint64_t req = 0;
	for (int i = 0; i <= r; i++)
		req += b->round_req[i];
	fprintf(stderr, "\r\033[K%s: round %d/%d, %.0f s left, %.0f requests/s", b->name, r + 1,
		b->rounds, (double)(b->end - now) / 1e9, el > 0 ? (double)req / el : 0);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hb *b = arg;
	int64_t now = t_now();
	if (now >= b->end) {
		b->stopping = true;
		event_base_loopbreak(b->base);
		return;
	}
	int64_t tmo = (int64_t)(b->timeout * 1e9);
	for (int i = 0; i < b->conns; i++) {
		struct conn *c = &b->c[i];
		if ((c->state == C_WAITING || c->state == C_SENDING) && now - c->t_sent > tmo)
			conn_fail(c, E_TIMEOUT, ETIMEDOUT);
		else if (c->state == C_CONNECTING && now - c->t_retry > tmo)
			conn_fail(c, E_CONNECT, ETIMEDOUT);
		else if (c->state == C_DOWN && !b->new_conn && now >= c->t_retry)
			conn_open(c);
		else if (c->state == C_DOWN && b->new_conn && now >= c->t_retry && b->rate == 0) {
			c->pending = true;
			c->t_start = now;
			conn_open(c);
		} else if (c->state == C_DOWN && b->new_conn && now >= c->t_retry) {
			idle_push(c, now);
		}
	}
	if (b->rate > 0)
		conn_dispatch_all(b);
	progress(b, now);
}

static int64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static json_t *round_json(struct hb *b, int r)
{
	double secs = (double)(b->end - b->measure_from) / 1e9 / b->rounds;
	return json_pack("{s:I, s:f, s:I, s:I, s:I}", "requests", (json_int_t)b->round_req[r],
			 "per_sec", (double)b->round_req[r] / secs, "p50_us",
			 (json_int_t)bench_hist_percentile(b->round_hist[r], 50), "p99_us",
			 (json_int_t)bench_hist_percentile(b->round_hist[r], 99), "max_us",
			 (json_int_t)b->round_hist[r]->max_us);
}

/* Runs the load; fills variant (one entry of "variants") and warnings. */
static int run(struct hb *b, json_t *variant, json_t *warnings, struct shoal_err *err)
{
	int rc = 0;
	struct event_config *cfg = event_config_new();
	if (!cfg)
		return shoal_err_set(err, ENOMEM, "out of memory");
	/* timerfd-backed timers: the schedule needs better than epoll's 1 ms */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	b->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	b->c = calloc((size_t)b->conns, sizeof(*b->c));
	b->idle = calloc((size_t)b->conns, sizeof(*b->idle));
	b->round_hist = calloc((size_t)b->rounds, sizeof(*b->round_hist));
	b->round_req = calloc((size_t)b->rounds, sizeof(*b->round_req));
	b->lag = bench_hist_new();
	struct bench_hist *all = bench_hist_new();
	if (!b->base || !b->c || !b->idle || !b->round_hist || !b->round_req || !b->lag || !all) {
		rc = shoal_err_set(err, ENOMEM, "out of memory for %d connections", b->conns);
		goto out;
	}
	for (int r = 0; r < b->rounds; r++)
		if (!(b->round_hist[r] = bench_hist_new())) {
			rc = shoal_err_set(err, ENOMEM, "out of memory");
			goto out;
		}
	b->tick = event_new(b->base, -1, EV_PERSIST, tick_cb, b);
	b->sched = evtimer_new(b->base, sched_cb, b);
	struct timeval tv = {.tv_sec = 0, .tv_usec = HTTP_TICK_NS / 1000};
	if (!b->tick || !b->sched || event_add(b->tick, &tv) < 0) {
		rc = shoal_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	b->t0 = t_now();
	b->last_progress = b->t0;
	b->measure_from = b->t0 + (int64_t)(b->warmup * 1e9);
	b->end = b->measure_from + (int64_t)(b->duration * 1e9);
	for (int i = 0; i < b->conns; i++) {
		struct conn *c = &b->c[i];
		c->b = b;
		c->fd = -1;
		c->t_idle = b->t0;
		if (b->new_conn) {
			if (b->rate > 0) {
				idle_push(c, b->t0);
			} else {
				c->pending = true;
				c->t_start = b->t0;
				conn_open(c);
			}
		} else {
			conn_open(c);
		}
	}
	if (b->rate > 0)
		conn_dispatch_all(b);
	int64_t cpu0 = 0, wall0 = 0;
	/* the CPU is measured over the measured window only */
	while (!b->stopping) {
		if (!wall0 && t_now() >= b->measure_from) {
			cpu0 = cpu_ns();
			wall0 = t_now();
		}
		struct timeval one = {.tv_sec = 0, .tv_usec = 200000};
		event_base_loopexit(b->base, &one);
		if (event_base_dispatch(b->base) < 0) {
			rc = shoal_err_set(err, EIO, "the event loop failed");
			goto out;
		}
	}
	double cpu_frac = wall0 ? (double)(cpu_ns() - cpu0) / (double)(t_now() - wall0) : 0;
	if (!b->quiet)
		fprintf(stderr, "\r\033[K");

	json_t *rounds = json_array();
	uint64_t total = 0;
	for (int r = 0; r < b->rounds; r++) {
		bench_hist_merge(all, b->round_hist[r]);
		total += b->round_req[r];
		json_array_append_new(rounds, round_json(b, r));
	}
	double secs = (double)(b->end - b->measure_from) / 1e9;
	json_t *errors = json_object();
	uint64_t nerr = 0;
	for (int k = 0; k < E_KINDS; k++) {
		json_object_set_new(errors, err_names[k], json_integer((json_int_t)b->errors[k]));
		if (k != E_4XX && k != E_5XX)
			nerr += b->errors[k];
	}
	json_object_set_new(variant, "name", json_string(b->name));
	json_object_set_new(variant, "requests", json_integer((json_int_t)total));
	json_object_set_new(variant, "per_sec", json_real((double)total / secs));
	json_object_set_new(variant, "latency_us", bench_hist_summary(all));
	json_object_set_new(variant, "curve", bench_hist_curve(all));
	json_object_set_new(variant, "errors", errors);
	json_object_set_new(variant, "rounds", rounds);
	json_object_set_new(variant, "generator_cpu", json_real(cpu_frac));
	json_object_set_new(variant, "per_cpu_second",
			    json_real(cpu_frac > 0 ? (double)total / secs / cpu_frac : 0));
	if (b->rate > 0) {
		uint64_t scheduled =
			b->end > b->measure_from
				? (uint64_t)((double)(b->end - b->measure_from) * b->rate / 1e9)
				: 0;
		json_object_set_new(variant, "schedule",
				    json_pack("{s:f, s:I, s:I, s:I, s:o}", "rate", b->rate,
					      "scheduled", (json_int_t)scheduled, "sent",
					      (json_int_t)b->sent, "waited_for_connection",
					      (json_int_t)b->waited, "send_lag_us",
					      bench_hist_summary(b->lag)));
		if (b->sent + b->sent / 100 + 1 < scheduled)
			json_array_append_new(
				warnings,
				json_sprintf("%s: sent %llu of the %llu requests scheduled at "
					     "%.0f/s: the target (or %d connections) could not "
					     "keep up; latency counts the wait",
					     b->name, (unsigned long long)b->sent,
					     (unsigned long long)scheduled, b->rate, b->conns));
		uint64_t lag99 = bench_hist_percentile(b->lag, 99);
		if (lag99 > HTTP_LAG_WARN_US)
			json_array_append_new(
				warnings,
				json_sprintf("%s: the generator fell behind its send schedule: 1%% "
					     "of requests left %.1f ms or more after they were due "
					     "with a connection free (the figures include it)",
					     b->name, (double)lag99 / 1000));
		if (b->waited)
			json_object_set_new(variant, "waited_note",
					    json_string("requests due while every connection was "
							"busy; their latency counts from when they "
							"were due"));
	}
	if (cpu_frac > HTTP_CPU_WARN)
		json_array_append_new(
			warnings,
			json_sprintf("%s: the load generator used %.0f%% of a CPU: it may be the "
				     "bottleneck, and the figures measure it as much as the target",
				     b->name, cpu_frac * 100));
	if (nerr)
		json_array_append_new(warnings,
				      json_sprintf("%s: %llu requests failed%s%s", b->name,
						   (unsigned long long)nerr,
						   b->first_errno ? ", first: " : "",
						   b->first_errno ? strerror(b->first_errno) : ""));
	if (total == 0)
		rc = shoal_err_set(err, EIO, "no answer from %s:%s in %.1f s (%llu errors)",
				   b->host, b->port_s, b->duration, (unsigned long long)nerr);
out:
	if (b->c)
		for (int i = 0; i < b->conns; i++)
			conn_close(&b->c[i]);
	if (b->tick)
		event_free(b->tick);
	if (b->sched)
		event_free(b->sched);
	if (b->base)
		event_base_free(b->base);
	if (b->round_hist)
		for (int r = 0; r < b->rounds; r++)
			bench_hist_free(b->round_hist[r]);
	free(b->round_hist);
	free(b->round_req);
	free(b->c);
	free(b->idle);
	bench_hist_free(b->lag);
	bench_hist_free(all);
	return rc;
}

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
	if (b->new_conn)
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

/* --service NAME: the service's first published TCP port, on this host's loopback. */
static int service_url(struct cli_ctx *ctx, const char *name, char *buf, size_t size,
		       struct shoal_err *err)
{
	_cleanup_json_ json_t *svc = cli_service_get(ctx, name, err);
	if (!svc)
		return -err->code;
	size_t i;
	json_t *pt;
	json_array_foreach(cli_json_get(svc, "Endpoint.Ports"), i, pt)
	{
		const char *proto = cli_json_str(pt, "Protocol");
		json_int_t port = cli_json_int(pt, "PublishedPort");
		if (port > 0 && (!proto || strcmp(proto, "tcp") == 0)) {
			snprintf(buf, size, "http://127.0.0.1:%lld/", (long long)port);
			return 0;
		}
	}
	return shoal_err_set(err, ENOENT,
			     "service %s publishes no TCP port; publish one (--publish) or give "
			     "--url",
			     name);
}

int bench_http(struct cli_ctx *ctx, int argc, char **argv)
{
	enum {
		O_URL = 1,
		O_SERVICE,
		O_RATE,
		O_CONNS,
		O_DURATION,
		O_WARMUP,
		O_ROUNDS,
		O_TIMEOUT,
		O_NEWCONN,
		O_METHOD,
		O_HEADER,
		O_BODY,
		O_NAME,
		O_CPU,
		O_VSWRK,
		O_OUT,
		O_JSON,
		O_QUIET,
	};
	static const struct cli_opt opts[] = {
		{O_URL, "url", 0, CLI_OPT_VALUE, "url", "Target: http://ADDR[:PORT][/PATH]"},
		{O_SERVICE, "service", 0, CLI_OPT_VALUE, "name",
		 "Target: a service's published port on this node"},
		{O_RATE, "rate", 0, CLI_OPT_VALUE, "N/s",
		 "Open loop: N requests per second, latency from when each was due"},
		{O_CONNS, "connections", 'c', CLI_OPT_VALUE, "int",
		 "Connections (default 10); alone: closed loop, as fast as answers come"},
		{O_DURATION, "duration", 'd', CLI_OPT_VALUE, "duration",
		 "Measured time, split into the rounds (default 6s)"},
		{O_WARMUP, "warmup", 0, CLI_OPT_VALUE, "duration",
		 "Load before measuring, not counted (default 1s)"},
		{O_ROUNDS, "rounds", 0, CLI_OPT_VALUE, "int",
		 "Rounds, for the run-to-run noise (default 3)"},
		{O_TIMEOUT, "timeout", 0, CLI_OPT_VALUE, "duration",
		 "A request not answered in this time is a timeout (default 5s)"},
		{O_NEWCONN, "new-connections", 0, CLI_OPT_BOOL, NULL,
		 "A new connection per request (Connection: close)"},
		{O_METHOD, "method", 'X', CLI_OPT_VALUE, "string", "Request method (default GET)"},
		{O_HEADER, "header", 'H', CLI_OPT_VALUE, "K:V", "Request header (repeatable)"},
		{O_BODY, "body-file", 0, CLI_OPT_VALUE, "file", "Request body"},
		{O_NAME, "name", 0, CLI_OPT_VALUE, "string",
		 "Name of this variant in the results (default http)"},
		{O_CPU, "cpu", 0, CLI_OPT_VALUE, "int", "Pin the generator to this CPU"},
		{O_VSWRK, "vs-wrk", 0, CLI_OPT_BOOL, NULL,
		 "Then run wrk with the same connections on the same CPU, for comparison"},
		{O_OUT, "output", 'o', CLI_OPT_VALUE, "file", "Also write the JSON results here"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON, no progress"},
		{O_QUIET, "quiet", 'q', CLI_OPT_BOOL, NULL, "No progress"},
		{0},
	};
	static const char usage[] = "--url URL | --service NAME [OPTIONS]";
	static const char desc[] = "HTTP/1.1 load against any address or published service";
	snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "shoal bench http");
	struct hb b = {.ctx = ctx,
		       .duration = 6,
		       .warmup = 1,
		       .timeout = 5,
		       .rounds = 3,
		       .cpu = -1,
		       .name = "http"};
	const char *url = NULL, *service = NULL, *method = "GET", *body_file = NULL,
		   *outfile = NULL;
	const char *headers[HTTP_MAX_HEADERS];
	int nheaders = 0, conns = 0;
	char msg[512] = "";
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		int r = 0;
		char *end;
		long v;
		switch (o) {
		case O_URL:
			url = p.value;
			break;
		case O_SERVICE:
			service = p.value;
			break;
		case O_RATE:
			r = parse_rate(p.value, &b.rate);
			if (r < 0)
				snprintf(msg, sizeof(msg),
					 "--rate %s: expected requests per second, N or N/s, "
					 "above 0 and at most %.0f",
					 p.value, HTTP_MAX_RATE);
			break;
		case O_CONNS:
			v = strtol(p.value, &end, 10);
			if (*end || end == p.value || v < 1 || v > HTTP_MAX_CONNS) {
				r = -EINVAL;
				snprintf(msg, sizeof(msg), "--connections %s: expected 1 to %d",
					 p.value, HTTP_MAX_CONNS);
			}
			conns = (int)v;
			break;
		case O_ROUNDS:
			v = strtol(p.value, &end, 10);
			if (*end || end == p.value || v < 1 || v > HTTP_MAX_ROUNDS) {
				r = -EINVAL;
				snprintf(msg, sizeof(msg), "--rounds %s: expected 1 to %d", p.value,
					 HTTP_MAX_ROUNDS);
			}
			b.rounds = (int)v;
			break;
		case O_CPU:
			v = strtol(p.value, &end, 10);
			if (*end || end == p.value || v < 0 || v >= CPU_SETSIZE) {
				r = -EINVAL;
				snprintf(msg, sizeof(msg), "--cpu %s: expected a CPU number",
					 p.value);
			}
			b.cpu = (int)v;
			break;
		case O_DURATION:
		case O_WARMUP:
		case O_TIMEOUT: {
			double *dst = o == O_DURATION ? &b.duration
				      : o == O_WARMUP ? &b.warmup
						      : &b.timeout;
			r = parse_seconds(p.value, dst);
			if (r == 0 && o != O_WARMUP && *dst < 0.001)
				r = -EINVAL;
			if (r < 0)
				snprintf(msg, sizeof(msg),
					 "--%s %s: expected a duration such as 10s, 500ms or 2m, "
					 "%sat most %.0f s",
					 opts[o - 1].name, p.value,
					 o == O_WARMUP ? "" : "above 0 and ", HTTP_MAX_SECONDS);
			break;
		}
		case O_NEWCONN:
			b.new_conn = cli_opts_bool(&p);
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
		case O_NAME:
			b.name = p.value;
			if (!*b.name || strlen(b.name) > 64) {
				r = -EINVAL;
				snprintf(msg, sizeof(msg), "--name: expected 1 to 64 characters");
			}
			break;
		case O_VSWRK:
			b.vs_wrk = cli_opts_bool(&p);
			break;
		case O_OUT:
			outfile = p.value;
			break;
		case O_JSON:
			b.json = cli_opts_bool(&p);
			break;
		case O_QUIET:
			b.quiet = cli_opts_bool(&p);
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
	    (b.rate > 0 || b.new_conn || body_file || nheaders || strcmp(method, "GET") != 0))
		return cli_usage_error(ctx, "--vs-wrk compares the closed loop of plain GETs on "
					    "keep-alive connections: drop --rate, "
					    "--new-connections, --method, --header, --body-file");
	b.conns = conns ? conns : HTTP_DEFAULT_CONNS;
	b.quiet = b.quiet || b.json || !isatty(2);
	struct shoal_err err = {0};
	char svc_url[64];
	if (service) {
		if (service_url(ctx, service, svc_url, sizeof(svc_url), &err) < 0) {
			cli_print_err(&err);
			return 1;
		}
		url = svc_url;
	}
	if (parse_url(&b, url, msg, sizeof(msg)) < 0)
		return cli_usage_error(ctx, msg);
	if (build_request(&b, method, headers, nheaders, body_file, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "Error: %s\n", msg[0] ? msg : "out of memory");
		return 1;
	}
	_cleanup_free_ char *req = b.req;
	_cleanup_json_ json_t *out = json_object();
	json_t *warnings = json_array(), *variants = json_array(), *variant = json_object();
	json_object_set_new(out, "warnings", warnings);
	json_object_set_new(out, "variants", variants);
	json_array_append_new(variants, variant);
	int rc = 0;
	signal(SIGPIPE, SIG_IGN);
	if (resolve(&b, &err) < 0 || probe(&b, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	if (b.cpu >= 0 && bench_http_pin_cpu(b.cpu) < 0) {
		fprintf(stderr, "Error: --cpu %d: %s\n", b.cpu, strerror(errno));
		return 1;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)b.conns + 64) {
		rl.rlim_cur =
			rl.rlim_max < (rlim_t)b.conns + 64 ? rl.rlim_max : (rlim_t)b.conns + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)b.conns + 64) {
			fprintf(stderr,
				"Error: --connections %d: the open-file limit is %llu; raise it "
				"(ulimit -n)\n",
				b.conns, (unsigned long long)rl.rlim_cur);
			return 1;
		}
	}
	if (bench_result_stamp(out, "http", ctx) < 0)
		return cli_oom();
	json_object_set_new(
		out, "config",
		json_pack("{s:s, s:s, s:s, s:f, s:i, s:f, s:f, s:f, s:i, s:b, s:i, s:i}", "url",
			  url, "mode", b.rate > 0 ? "open-loop" : "closed-loop", "method", method,
			  "rate", b.rate, "connections", b.conns, "duration_s", b.duration,
			  "warmup_s", b.warmup, "timeout_s", b.timeout, "rounds", b.rounds,
			  "new_connections", b.new_conn, "headers", nheaders, "body_bytes",
			  (int)(body_file ? b.reqlen : 0)));
	if (!b.quiet)
		fprintf(stderr, "shoal bench http: %s, %s\n", url,
			b.rate > 0 ? "open loop" : "closed loop");
	if (run(&b, variant, warnings, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	struct bench_http_wrk_opts wo = {
		.conns = b.conns, .duration = b.duration, .warmup = b.warmup, .cpu = b.cpu};
	if (b.vs_wrk && bench_http_wrk(&wo, url, out, &err) < 0) {
		cli_print_err(&err);
		rc = 1;
	}
	if (outfile) {
		_cleanup_free_ char *s = json_dumps(out, JSON_INDENT(2));
		if (!s || write_file_atomic(outfile, s, strlen(s), 0644) < 0) {
			fprintf(stderr, "Error: writing %s: %s\n", outfile, strerror(errno));
			return 1;
		}
	}
	if (b.json) {
		_cleanup_free_ char *s = json_dumps(out, JSON_INDENT(2));
		printf("%s\n", s ? s : "{}");
	} else {
		bench_http_print(out);
	}
	return rc;
}
