// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>
#include <jansson.h>

#include "agent/agent.h"
#include "agent/http-internal.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

#define GUARD_BUCKETS		      4096
#define GUARD_DEFAULT_MAX_CONNECTIONS 8192
#define GUARD_FD_RESERVE	      256 /* descriptors left for all but API connections */
#define GUARD_ACCEPT_RETRY_MS	      250 /* accept paused this long after EMFILE/ENFILE */
#define GUARD_LOG_INTERVAL_S	      60  /* at most one line per kind this often */
#define GUARD_MAX_HEAD		      (64 * 1024)
/* An upload stops while the data dir has less than min(5%, 64 MiB) free. */
#define UPLOAD_FLOOR_MAX     (64ll << 20)
#define UPLOAD_FLOOR_PERCENT 5
#define UPLOAD_CHECK_BYTES   (16ll << 20) /* free space looked at again this often */

enum guard_state {
	G_HEAD,	   /* a request head arriving: held back from evhttp until complete */
	G_PASS,	   /* evhttp has the head: the rest of the request goes through */
	G_UPLOAD,  /* an upload's body: to its file */
	G_DISCARD, /* after an upload: nothing more is read from this connection */
	G_RAW,	   /* a raw stream: everything through, nothing parsed */
	G_CLOSING, /* refused: answered, the connection closes */
};

struct upload {
	int fd;
	uint64_t next_check;
	bool done;
	struct shoal_err err; /* err.code != 0: failed */
	struct api_req *req;  /* the handler waiting for it */
	api_upload_cb cb;
	void *arg;
};

struct guard {
	struct guard *hnext;	  /* bucket chain, by bev */
	struct bufferevent *bev;  /* the connection's, evhttp's */
	struct api_req *deferred; /* a request a handler holds (api_req_defer) */
	http_parser parser;
	enum guard_state state;
	const struct api_route *route;
	bool classified;
	bool stream_after;	/* message done on a stream route: raw from there */
	bool close_after;	/* a stream route answered without a stream */
	bool expect;		/* Expect: 100-continue */
	bool upload_route;	/* the current head is an upload's: it is rewritten */
	bool in_value;		/* header parsing: a value is being read */
	bool skip_value;	/* the current header is not carried into the rewrite */
	bool injecting;		/* bytes going into evhttp's input are the guard's own */
	bool attached;		/* the close callback is on the connection */
	struct evbuffer *in;	/* bytes just read, being parsed */
	struct evbuffer *held;	/* head bytes not yet given to evhttp */
	struct evbuffer *url;	/* request target */
	struct evbuffer *field; /* header name being read */
	struct evbuffer *synth; /* an upload's head as evhttp gets it */
	size_t head_bytes;
	uint64_t body_bytes, body_limit;
	int64_t budget; /* body bytes counted in gs.body_inflight */
	struct event *timer;
	struct event *kick; /* deferred work: the close, an upload's end */
	bool kick_close, kick_notify;
	int outstanding;  /* requests given to evhttp, not yet answered */
	char reply[1024]; /* a refusal, sent before the close */
	size_t reply_len;
	struct upload up;
};

static struct {
	struct event_base *base;
	struct evconnlistener *listener;
	char upload_dir[PATH_MAX];
	int max_conns, n_conns;
	bool capped;	       /* listener paused at the cap */
	bool emfile;	       /* listener paused after EMFILE */
	struct event *retry;   /* EMFILE pause */
	int64_t body_inflight; /* JSON/small body bytes held, all connections */
	int64_t cap_log_ns, emfile_log_ns;
	unsigned long cap_suppressed, emfile_suppressed;
	int head_timeout_s, body_timeout_s;
	struct guard *buckets[GUARD_BUCKETS];
	http_parser_settings settings;
} gs;

static size_t bucket_of(const struct bufferevent *bev)
{
	return ((uintptr_t)bev >> 4) % GUARD_BUCKETS;
}

static struct guard *guard_find(const struct bufferevent *bev)
{
	if (!bev)
		return NULL;
	for (struct guard *g = gs.buckets[bucket_of(bev)]; g; g = g->hnext)
		if (g->bev == bev)
			return g;
	return NULL;
}

static struct guard *guard_of(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
	return evcon ? guard_find(evhttp_connection_get_bufferevent(evcon)) : NULL;
}

/* bufferevent_free() clears the callbacks at once (the memory goes later, and
 * the guard holds a reference until attached): a bufferevent without an event
 * callback is one evhttp has let go of. */
static bool guard_live(struct guard *g)
{
	bufferevent_event_cb ecb = NULL;
	bufferevent_getcb(g->bev, NULL, NULL, &ecb, NULL);
	return ecb != NULL;
}

static void listener_update(void)
{
	if (!gs.listener)
		return;
	if (gs.capped || gs.emfile)
		evconnlistener_disable(gs.listener);
	else
		evconnlistener_enable(gs.listener);
}

/* One line per interval for a repeated condition, with how often it recurred. */
static void log_limited(int64_t *last, unsigned long *suppressed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void log_limited(int64_t *last, unsigned long *suppressed, const char *fmt, ...)
{
	int64_t now = now_ns();
	if (*last && now - *last < GUARD_LOG_INTERVAL_S * 1000000000LL) {
		(*suppressed)++;
		return;
	}
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("api: %s (%lu more times since the last report)", msg, *suppressed);
	*last = now;
	*suppressed = 0;
}

static void budget_release(struct guard *g)
{
	gs.body_inflight -= g->budget;
	g->budget = 0;
}

static void timer_arm(struct guard *g, int seconds)
{
	struct timeval tv = {seconds, 0};
	evtimer_add(g->timer, &tv);
}

static void kick(struct guard *g)
{
	event_active(g->kick, EV_TIMEOUT, 0);
}

static const char *status_text(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 408:
		return "Request Timeout";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 507:
		return "Insufficient Storage";
	default:
		return "Error";
	}
}

/* Answers the request on the socket itself (evhttp has at most part of it, and
 * nothing of its own to send: it reads only once its last answer has left) and
 * closes the connection, both from the loop (kick_cb). */
static void refuse(struct guard *g, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct guard *g, int status, const char *fmt, ...)
{
	if (g->state == G_CLOSING)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_debug("api: refused with %d: %s", status, msg);
	if (g->outstanding > 0) {
		/* evhttp owes an answer on this connection: it closes after it */
		g->state = G_CLOSING;
		g->close_after = true;
		evbuffer_drain(g->held, evbuffer_get_length(g->held));
		budget_release(g);
		evtimer_del(g->timer);
		return;
	}
	g->state = G_CLOSING;
	evbuffer_drain(g->held, evbuffer_get_length(g->held));
	evbuffer_drain(g->synth, evbuffer_get_length(g->synth));
	budget_release(g);
	evtimer_del(g->timer);
	json_t *j = json_pack("{s:s}", "message", msg);
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	int n = snprintf(g->reply, sizeof(g->reply),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\nApi-Version: 1.43\r\n"
			 "Server: shoald/" SHOAL_VERSION "\r\n\r\n%s\n",
			 status, status_text(status), body ? strlen(body) + 1 : 1,
			 body ? body : "");
	free(body);
	g->reply_len = n > 0 && (size_t)n < sizeof(g->reply) ? (size_t)n : 0;
	g->kick_close = true;
	kick(g);
}

static void upload_fail(struct guard *g, int status, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void upload_fail(struct guard *g, int status, int code, const char *fmt, ...)
{
	if (g->up.err.code)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->up.err.msg, sizeof(g->up.err.msg), fmt, ap);
	va_end(ap);
	g->up.err.code = code;
	g->up.err.status = status;
	if (g->up.fd >= 0) {
		close(g->up.fd);
		g->up.fd = -1;
	}
	g->state = G_DISCARD;
	evtimer_del(g->timer);
	g->kick_notify = true;
	kick(g);
}

/* Room for n more bytes in the upload dir, above the floor. */
static int upload_room(uint64_t n, int64_t *avail_ret)
{
	struct statvfs sv;
	if (statvfs(gs.upload_dir, &sv) < 0)
		return -errno;
	int64_t fs = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
	int64_t avail = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	int64_t floor = fs / 100 * UPLOAD_FLOOR_PERCENT;
	if (floor > UPLOAD_FLOOR_MAX)
		floor = UPLOAD_FLOOR_MAX;
	*avail_ret = avail - floor;
	return avail - floor >= (int64_t)n ? 0 : -ENOSPC;
}

static int upload_open(void)
{
	int fd = open(gs.upload_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd >= 0 ? fd : -errno;
	/* a file system without O_TMPFILE: a named file, unlinked at once */
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/.upload-XXXXXX", gs.upload_dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static enum evhttp_cmd_type evhttp_method(unsigned m)
{
	switch (m) {
	case HTTP_GET:
		return EVHTTP_REQ_GET;
	case HTTP_POST:
		return EVHTTP_REQ_POST;
	case HTTP_DELETE:
		return EVHTTP_REQ_DELETE;
	case HTTP_HEAD:
		return EVHTTP_REQ_HEAD;
	case HTTP_PUT:
		return EVHTTP_REQ_PUT;
	default:
		return 0;
	}
}

/* The route of the request whose target is in g->url. */
static void classify(struct guard *g)
{
	if (g->classified)
		return;
	g->classified = true;
	g->route = NULL;
	size_t len = evbuffer_get_length(g->url);
	const char *url = len ? (const char *)evbuffer_pullup(g->url, (ev_ssize_t)len) : "";
	struct http_parser_url u;
	http_parser_url_init(&u);
	enum evhttp_cmd_type m = evhttp_method(g->parser.method);
	if (m && len && http_parser_parse_url(url, len, 0, &u) == 0 &&
	    (u.field_set & (1 << UF_PATH))) {
		char path[2048];
		size_t pl = u.field_data[UF_PATH].len;
		if (pl < sizeof(path)) {
			memcpy(path, url + u.field_data[UF_PATH].off, pl);
			path[pl] = '\0';
			g->route = api_route_find(m, path);
		}
	}
	enum api_body body = g->route ? g->route->body : API_BODY_SMALL;
	g->upload_route = body == API_BODY_UPLOAD;
	g->body_limit = body == API_BODY_UPLOAD ? (uint64_t)AGENT_MAX_IMAGE_BODY
			: body == API_BODY_JSON ? AGENT_MAX_JSON_BODY
						: API_MAX_SMALL_BODY;
	if (g->upload_route) {
		/* the rewritten head starts with the request line */
		evbuffer_add_printf(g->synth, "%s %.*s HTTP/1.1\r\n",
				    http_method_str(g->parser.method), (int)len, url);
	}
}

static int on_message_begin(http_parser *p)
{
	struct guard *g = p->data;
	budget_release(g);
	evbuffer_drain(g->url, evbuffer_get_length(g->url));
	evbuffer_drain(g->field, evbuffer_get_length(g->field));
	evbuffer_drain(g->synth, evbuffer_get_length(g->synth));
	g->classified = g->upload_route = g->expect = false;
	g->in_value = g->skip_value = false;
	g->head_bytes = 0;
	g->body_bytes = 0;
	g->route = NULL;
	g->state = G_HEAD;
	timer_arm(g, gs.head_timeout_s);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct guard *g = p->data;
	evbuffer_add(g->url, at, len);
	return 0;
}

/* Headers evhttp must not see on an upload's rewritten head: its framing is
 * ours (Content-Length: 0), and the connection closes after it. */
static bool framing_header(struct evbuffer *name)
{
	static const char *const drop[] = {"content-length", "transfer-encoding", "expect",
					   "connection",     "keep-alive",	  "upgrade"};
	size_t n = evbuffer_get_length(name);
	const char *s = (const char *)evbuffer_pullup(name, (ev_ssize_t)n);
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
		if (n == strlen(drop[i]) && strncasecmp(s, drop[i], n) == 0)
			return true;
	return false;
}

static bool is_expect(struct evbuffer *name)
{
	size_t n = evbuffer_get_length(name);
	return n == 6 && strncasecmp((const char *)evbuffer_pullup(name, 6), "expect", 6) == 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct guard *g = p->data;
	classify(g);
	if (g->in_value) {
		if (g->upload_route && !g->skip_value)
			evbuffer_add(g->synth, "\r\n", 2);
		evbuffer_drain(g->field, evbuffer_get_length(g->field));
		g->in_value = false;
	}
	evbuffer_add(g->field, at, len);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct guard *g = p->data;
	if (!g->in_value) {
		g->in_value = true;
		g->skip_value = framing_header(g->field);
		if (is_expect(g->field))
			g->expect = true; /* the value is checked as it comes */
		if (g->upload_route && !g->skip_value) {
			evbuffer_add_buffer(g->synth, g->field);
			evbuffer_add(g->synth, ": ", 2);
		}
	}
	if (g->upload_route && !g->skip_value)
		evbuffer_add(g->synth, at, len);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct guard *g = p->data;
	classify(g);
	if (g->in_value && g->upload_route && !g->skip_value)
		evbuffer_add(g->synth, "\r\n", 2);
	evtimer_del(g->timer);
	bool chunked = p->flags & F_CHUNKED;
	uint64_t length = chunked ? 0 : p->content_length == ULLONG_MAX ? 0 : p->content_length;
	const char *what = g->route ? g->route->pattern : "this path";
	if (length > g->body_limit) {
		refuse(g, 413, "request body is %llu bytes; the limit for %s is %llu",
		       (unsigned long long)length, what, (unsigned long long)g->body_limit);
		return 0;
	}
	if (!g->upload_route) {
		g->state = G_PASS;
		if (length || chunked)
			timer_arm(g, gs.body_timeout_s);
		return 0;
	}
	int64_t avail = 0;
	int r = upload_room(length, &avail);
	if (r == -ENOSPC) {
		refuse(g, 507,
		       "no room for a %llu-byte body in %s (%lld bytes free above the reserve)",
		       (unsigned long long)length, gs.upload_dir, (long long)avail);
		return 0;
	}
	int fd = r < 0 ? r : upload_open();
	if (fd < 0) {
		refuse(g, 507, "cannot store the request body in %s: %s", gs.upload_dir,
		       strerror(-fd));
		return 0;
	}
	if (g->up.fd >= 0)
		close(g->up.fd);
	memset(&g->up, 0, sizeof(g->up));
	g->up.fd = fd;
	g->up.next_check = UPLOAD_CHECK_BYTES;
	evbuffer_add_printf(g->synth, "Content-Length: 0\r\nConnection: close\r\n\r\n");
	evbuffer_drain(g->held, evbuffer_get_length(g->held));
	g->state = G_UPLOAD;
	if (g->expect) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		(void)!send(bufferevent_getfd(g->bev), cont, sizeof(cont) - 1,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	timer_arm(g, gs.body_timeout_s);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct guard *g = p->data;
	g->body_bytes += len;
	const char *what = g->route ? g->route->pattern : "this path";
	if (g->state == G_UPLOAD) {
		if (g->body_bytes > g->body_limit) {
			upload_fail(g, 413, EFBIG,
				    "request body is over the limit for %s: %llu bytes", what,
				    (unsigned long long)g->body_limit);
			return 0;
		}
		if (g->body_bytes >= g->up.next_check) {
			int64_t avail = 0;
			g->up.next_check = g->body_bytes + UPLOAD_CHECK_BYTES;
			if (upload_room(UPLOAD_CHECK_BYTES, &avail) == -ENOSPC) {
				upload_fail(
					g, 507, ENOSPC,
					"the data dir %s is nearly full (%lld bytes free above the "
					"reserve) after %llu bytes of the body",
					gs.upload_dir, (long long)avail,
					(unsigned long long)g->body_bytes);
				return 0;
			}
		}
		while (len > 0) {
			ssize_t n = write(g->up.fd, at, len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				int e = errno;
				upload_fail(g, e == ENOSPC || e == EDQUOT ? 507 : 500, e,
					    "storing the request body in %s: %s", gs.upload_dir,
					    strerror(e));
				return 0;
			}
			at += n;
			len -= (size_t)n;
		}
		timer_arm(g, gs.body_timeout_s);
		return 0;
	}
	if (g->state != G_PASS)
		return 0;
	if (g->body_bytes > g->body_limit) {
		refuse(g, 413, "request body is over the limit for %s: %llu bytes", what,
		       (unsigned long long)g->body_limit);
		return 0;
	}
	g->budget += (int64_t)len;
	gs.body_inflight += (int64_t)len;
	if (gs.body_inflight > HTTP_BODY_BUDGET) {
		log_limited(&gs.cap_log_ns, &gs.cap_suppressed,
			    "request bodies in flight over %lld bytes: refusing more for a moment",
			    (long long)HTTP_BODY_BUDGET);
		refuse(g, 503, "the agent holds %lld bytes of request bodies; try again shortly",
		       (long long)gs.body_inflight);
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct guard *g = p->data;
	evtimer_del(g->timer);
	if (g->state == G_UPLOAD) {
		lseek(g->up.fd, 0, SEEK_SET);
		g->up.done = true;
		g->state = G_DISCARD;
		g->kick_notify = true;
		kick(g);
	} else if (g->state == G_PASS) {
		g->stream_after = g->route && g->route->hijack;
		g->outstanding++;
	}
	/* stop here: the bytes up to the end go to evhttp before the next head */
	http_parser_pause(p, 1);
	return 0;
}

/* Parses the bytes in src and moves each where the parse leaves it: held back
 * (a head), into dst (evhttp's input), to an upload's file, or dropped. */
static void guard_parse(struct guard *g, struct evbuffer *src, struct evbuffer *dst)
{
	while (evbuffer_get_length(src) > 0) {
		if (g->state == G_RAW) {
			evbuffer_add_buffer(dst, src);
			break;
		}
		if (g->state == G_CLOSING || g->state == G_DISCARD) {
			evbuffer_drain(src, evbuffer_get_length(src));
			break;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(src, -1, NULL, &v, 1) < 1)
			break;
		size_t n = http_parser_execute(&g->parser, &gs.settings, v.iov_base, v.iov_len);
		enum http_errno e = HTTP_PARSER_ERRNO(&g->parser);
		bool paused = e == HPE_PAUSED;
		if (paused) {
			http_parser_pause(&g->parser, 0);
		} else if (e == HPE_CLOSED_CONNECTION) {
			/* bytes after a request that closes the connection */
			evbuffer_drain(src, evbuffer_get_length(src));
			break;
		} else if (e != HPE_OK) {
			refuse(g, 400, "malformed request: %s", http_errno_description(e));
		}
		switch (g->state) {
		case G_HEAD:
			g->head_bytes += n;
			evbuffer_remove_buffer(src, g->held, n);
			if (g->head_bytes > GUARD_MAX_HEAD)
				refuse(g, 431, "request head over %d bytes", GUARD_MAX_HEAD);
			break;
		case G_PASS:
		case G_RAW:
			evbuffer_add_buffer(dst, g->held);
			evbuffer_remove_buffer(src, dst, n);
			break;
		case G_UPLOAD:
		case G_DISCARD:
			/* an upload's head and framing: its body went to the file */
			evbuffer_drain(src, n);
			break;
		case G_CLOSING:
			evbuffer_drain(src, evbuffer_get_length(src));
			break;
		}
		if (evbuffer_get_length(g->synth) && g->state != G_HEAD) {
			/* an upload's head as evhttp gets it, once */
			evbuffer_add_buffer(dst, g->synth);
			g->outstanding++;
		}
		if (paused && g->state == G_PASS) {
			if (g->stream_after) {
				/* raw from here; closed after the answer unless it
				 * becomes a stream (http_guard_hijacked) */
				g->state = G_RAW;
				g->close_after = true;
			} else if (g->parser.upgrade) {
				/* an upgrade this route does not do: answered, then closed */
				g->state = G_DISCARD;
				g->close_after = true;
			} else {
				g->state = G_HEAD;
			}
		}
	}
}

/*
 * Runs on every change of the connection's input buffer, before evhttp's read
 * callback sees what was read: the new bytes are taken out, parsed, and what
 * evhttp is to see is put back. evhttp's read callback runs only when its input
 * is not empty (read low-water mark 1): it must not run while it answers a
 * request whose body the guard is still reading (it aborts on a read then).
 */
static void guard_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct guard *g = arg;
	if (g->injecting || info->n_added == 0 || g->state == G_RAW)
		return;
	size_t len = evbuffer_get_length(buf);
	size_t old = len > info->n_added ? len - info->n_added : 0;
	g->injecting = true;
	evbuffer_remove_buffer(buf, g->in, len);
	if (old)
		evbuffer_remove_buffer(g->in, buf, old); /* evhttp's already */
	guard_parse(g, g->in, buf);
	evbuffer_drain(g->in, evbuffer_get_length(g->in));
	g->injecting = false;
}

static void upload_notify(struct guard *g)
{
	if (!g->up.req || (!g->up.done && !g->up.err.code))
		return;
	struct api_req *r = g->up.req;
	api_upload_cb cb = g->up.cb;
	g->up.req = NULL;
	g->up.cb = NULL;
	r->on_cancel = NULL;
	r->userdata = NULL;
	if (g->up.err.code) {
		cb(r, -1, &g->up.err, g->up.arg);
		return;
	}
	int fd = g->up.fd;
	g->up.fd = -1;
	cb(r, fd, NULL, g->up.arg);
}

static void guard_free(struct guard *g)
{
	struct guard **pp = &gs.buckets[bucket_of(g->bev)];
	while (*pp && *pp != g)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = g->hnext;
	budget_release(g);
	if (g->up.fd >= 0)
		close(g->up.fd);
	event_free(g->timer);
	event_free(g->kick);
	evbuffer_free(g->in);
	evbuffer_free(g->held);
	evbuffer_free(g->url);
	evbuffer_free(g->field);
	evbuffer_free(g->synth);
	free(g);
	gs.n_conns--;
	if (gs.capped && gs.n_conns < gs.max_conns) {
		gs.capped = false;
		listener_update();
	}
}

/* evhttp is freeing the connection (its bufferevent goes with it). */
static void guard_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct guard *g = arg;
	evbuffer_remove_cb(bufferevent_get_input(g->bev), guard_input_cb, g);
	struct api_req *r = g->deferred;
	g->deferred = NULL;
	if (r)
		api_req_conn_closed(r);
	guard_free(g);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct guard *g = arg;
	if (!g->attached) {
		/* evhttp has made the connection around the bufferevent by now,
		 * or failed to and freed it */
		struct bufferevent *bev = g->bev;
		void *evcon = NULL;
		bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
		if (!guard_live(g) || !evcon) {
			evbuffer_remove_cb(bufferevent_get_input(bev), guard_input_cb, g);
			guard_free(g);
			bufferevent_decref(bev);
			return;
		}
		g->attached = true;
		evhttp_connection_set_closecb(evcon, guard_conn_closed, g);
		bufferevent_decref(bev);
	}
	if (g->kick_notify) {
		g->kick_notify = false;
		upload_notify(g);
	}
	if (g->kick_close) {
		g->kick_close = false;
		int sfd = bufferevent_getfd(g->bev);
		/* small, and the socket's buffer empty: one send or nothing; not
		 * while an answer to a request before it is going out */
		if (g->reply_len && sfd >= 0 &&
		    evbuffer_get_length(bufferevent_get_output(g->bev)) == 0)
			(void)!send(sfd, g->reply, g->reply_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		g->reply_len = 0;
		/* evhttp frees the connection on a read EOF in any reading state */
		bufferevent_trigger_event(g->bev, BEV_EVENT_EOF | BEV_EVENT_READING, 0);
	}
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct guard *g = arg;
	switch (g->state) {
	case G_HEAD:
		refuse(g, 408, "request head not complete within %d s", gs.head_timeout_s);
		break;
	case G_PASS:
		refuse(g, 408, "request body not complete within %d s of its head",
		       gs.body_timeout_s);
		break;
	case G_UPLOAD:
		upload_fail(g, 408, ETIMEDOUT, "no request body for %d s (%llu bytes received)",
			    gs.body_timeout_s, (unsigned long long)g->body_bytes);
		break;
	default:
		break;
	}
}

static struct bufferevent *guard_bevcb(struct event_base *base, void *arg)
{
	struct guard *g = calloc(1, sizeof(*g));
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (g) {
		g->up.fd = -1;
		g->in = evbuffer_new();
		g->held = evbuffer_new();
		g->url = evbuffer_new();
		g->field = evbuffer_new();
		g->synth = evbuffer_new();
		g->timer = evtimer_new(base, timer_cb, g);
		g->kick = event_new(base, -1, 0, kick_cb, g);
	}
	if (!g || !bev || !g->in || !g->held || !g->url || !g->field || !g->synth || !g->timer ||
	    !g->kick || !evbuffer_add_cb(bufferevent_get_input(bev), guard_input_cb, g)) {
		/* evhttp makes an unguarded connection of its own: still limited by
		 * its header and body maximums and idle timeout */
		log_warn("api: out of memory guarding a connection");
		if (g) {
			struct evbuffer *bufs[] = {g->in, g->held, g->url, g->field, g->synth};
			for (size_t i = 0; i < ARRAY_SIZE(bufs); i++)
				if (bufs[i])
					evbuffer_free(bufs[i]);
			if (g->timer)
				event_free(g->timer);
			if (g->kick)
				event_free(g->kick);
			free(g);
		}
		if (bev)
			bufferevent_free(bev);
		return NULL;
	}
	g->bev = bev;
	/* evhttp reads only when the guard gave it something */
	bufferevent_setwatermark(bev, EV_READ, 1, 0);
	/* kept until the close callback is on the connection (kick_cb) */
	bufferevent_incref(bev);
	kick(g);
	http_parser_init(&g->parser, HTTP_REQUEST);
	g->parser.data = g;
	size_t b = bucket_of(bev);
	g->hnext = gs.buckets[b];
	gs.buckets[b] = g;
	gs.n_conns++;
	if (gs.n_conns > gs.max_conns) {
		refuse(g, 503, "the agent serves %d connections, its limit; try again shortly",
		       gs.max_conns);
	} else if (gs.n_conns == gs.max_conns && !gs.capped) {
		log_limited(&gs.cap_log_ns, &gs.cap_suppressed,
			    "%d connections, the limit (--max-connections): accepting no more "
			    "until some close",
			    gs.max_conns);
		gs.capped = true;
		listener_update();
	}
	return bev;
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	gs.emfile = false;
	listener_update();
}

/* Out of descriptors, accept() fails at once for every pending client: the
 * listener stays readable, and retrying at once is a busy loop. Accept pauses
 * instead; pending clients wait in the backlog while connections close. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	int e = errno;
	bool pause = e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
	log_limited(&gs.emfile_log_ns, &gs.emfile_suppressed, "accept: %s%s", strerror(e),
		    pause ? "; accepting no new connections for a moment" : "");
	if (!pause)
		return;
	gs.emfile = true;
	listener_update();
	struct timeval tv = {0, GUARD_ACCEPT_RETRY_MS * 1000};
	evtimer_add(gs.retry, &tv);
}

static int env_seconds(const char *name, int def)
{
	const char *v = getenv(name);
	char *end;
	long n = v ? strtol(v, &end, 10) : 0;
	if (!v || *end || n < 1 || n > 3600)
		return def;
	return (int)n;
}

int http_guard_start(struct event_base *base, struct evhttp *http, struct evconnlistener *listener,
		     const struct http_guard_opts *o, struct shoal_err *err)
{
	memset(&gs, 0, sizeof(gs));
	gs.base = base;
	gs.listener = listener;
	snprintf(gs.upload_dir, sizeof(gs.upload_dir), "%s", o->upload_dir);
	int max = o->max_connections > 0 ? o->max_connections : GUARD_DEFAULT_MAX_CONNECTIONS;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (int64_t)rl.rlim_cur - GUARD_FD_RESERVE < max) {
		int fit = (int)rl.rlim_cur - GUARD_FD_RESERVE;
		if (fit < 16)
			return shoal_err_set(err, EMFILE,
					     "the open-file limit (%llu) leaves no room for API "
					     "connections; raise it (ulimit -n)",
					     (unsigned long long)rl.rlim_cur);
		log_info("api: at most %d connections (the open-file limit is %llu)", fit,
			 (unsigned long long)rl.rlim_cur);
		max = fit;
	}
	gs.max_conns = max;
	/* test knobs: shorter deadlines */
	gs.head_timeout_s = env_seconds("SHOAL_HTTP_HEAD_TIMEOUT_S", HTTP_HEAD_TIMEOUT_S);
	gs.body_timeout_s = env_seconds("SHOAL_HTTP_BODY_TIMEOUT_S", HTTP_BODY_TIMEOUT_S);
	gs.retry = evtimer_new(base, accept_retry_cb, NULL);
	if (!gs.retry)
		return shoal_err_set(err, ENOMEM, "out of memory");
	gs.settings.on_message_begin = on_message_begin;
	gs.settings.on_url = on_url;
	gs.settings.on_header_field = on_header_field;
	gs.settings.on_header_value = on_header_value;
	gs.settings.on_headers_complete = on_headers_complete;
	gs.settings.on_body = on_body;
	gs.settings.on_message_complete = on_message_complete;
	evhttp_set_bevcb(http, guard_bevcb, NULL);
	evconnlistener_set_error_cb(listener, accept_error_cb);
	return 0;
}

void http_guard_stop(void)
{
	if (gs.retry)
		event_free(gs.retry);
	gs.retry = NULL;
	gs.listener = NULL;
}

int http_guard_max_connections(void)
{
	return gs.max_conns;
}

void http_guard_hijacked(struct evhttp_request *req)
{
	struct guard *g = guard_of(req);
	if (!g)
		return;
	g->state = G_RAW;
	g->close_after = false;
	g->outstanding = 0;
	evtimer_del(g->timer);
}

bool http_guard_replying(struct evhttp_request *req)
{
	struct guard *g = guard_of(req);
	if (!g)
		return false;
	if (g->outstanding > 0)
		g->outstanding--;
	return g->close_after;
}

bool http_guard_defer(struct evhttp_request *req, struct api_req *r)
{
	struct guard *g = guard_of(req);
	if (!g || !g->attached)
		return false;
	g->deferred = r;
	return true;
}

bool http_guard_undefer(struct evhttp_request *req)
{
	struct guard *g = guard_of(req);
	if (!g || !g->attached)
		return false;
	g->deferred = NULL;
	return true;
}

static void upload_cancel(struct api_req *r)
{
	struct guard *g = r->userdata;
	/* the connection is going (the guard with it, later): the waiter learns */
	if (g && g->up.req == r) {
		api_upload_cb cb = g->up.cb;
		g->up.req = NULL;
		g->up.cb = NULL;
		if (cb)
			cb(NULL, -1, NULL, g->up.arg);
	}
	api_req_free(r);
}

void api_body_upload(struct api_req *r, api_upload_cb done, void *arg)
{
	struct guard *g = r->req ? guard_of(r->req) : NULL;
	if (!g || (!g->up.done && !g->up.err.code && g->up.fd < 0)) {
		struct shoal_err err = {.code = EINVAL, .status = 400};
		snprintf(err.msg, sizeof(err.msg), "this request carries no upload body");
		done(r, -1, &err, arg);
		return;
	}
	api_req_defer(r);
	r->userdata = g;
	r->on_cancel = upload_cancel;
	g->up.req = r;
	g->up.cb = done;
	g->up.arg = arg;
	if (g->up.done || g->up.err.code) {
		g->kick_notify = true;
		kick(g);
		return;
	}
	/* evhttp stopped reading when it got the head; the body is read on */
	bufferevent_enable(g->bev, EV_READ);
	timer_arm(g, gs.body_timeout_s);
}
