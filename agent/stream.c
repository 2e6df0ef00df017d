// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/container.h"
#include "agent/stream.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/runtime.h"

/* Output buffered toward a slow client before we stop reading the monitor. */
#define STREAM_HIGH_WATER (4u << 20)
/* A finished session waits this long for a client to read its last output. */
#define STREAM_DRAIN_TIMEOUT_S 30
/* Exec instances never started, or finished, are forgotten this long after
 * (Docker keeps them until the container goes; shoal's table is bounded). */
#define EXEC_EXPIRE_S 300

struct stream_sess {
	struct stream_sess *next; /* in the container's pending list */
	struct agent *agent;
	struct container *c;  /* attach sessions */
	struct exec_inst *ex; /* exec sessions */
	struct evhttp_connection *evcon;
	struct bufferevent *client;
	struct bufferevent *mon;
	bool tty;
	bool want_stdin;
	bool stdin_eof; /* the client closed its side before the monitor was there */
	bool finishing;
};

static void sess_unlink_pending(struct stream_sess *s)
{
	if (!s->c)
		return;
	for (struct stream_sess **pp = &s->c->pending_attach; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	s->c = NULL;
}

static void sess_free(struct stream_sess *s)
{
	sess_unlink_pending(s);
	if (s->ex && s->ex->sess == s)
		s->ex->sess = NULL;
	if (s->ex && s->ex->running) {
		/* The stream went before the exit status came (the client left):
		 * the monitor closes the process's stdin and nothing here can
		 * learn its end, so the instance is over as far as the table goes. */
		s->ex->running = false;
		s->ex->exit_code = -1;
		s->ex->ended_ns = now_ns();
	}
	if (s->mon)
		bufferevent_free(s->mon);
	if (s->evcon)
		api_hijack_close(s->evcon);
	free(s);
}

static void client_drained_cb(struct bufferevent *bev, void *arg)
{
	struct stream_sess *s = arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		sess_free(s);
}

/* While the last output drains, a client that goes away ends the session:
 * nothing else would ever free its connection. */
static void client_drain_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))
		sess_free(arg);
}

/* Ends the session once whatever is queued for the client has been written. */
static void sess_finish(struct stream_sess *s)
{
	if (s->finishing)
		return;
	s->finishing = true;
	if (s->mon) {
		bufferevent_free(s->mon);
		s->mon = NULL;
	}
	if (!s->client || evbuffer_get_length(bufferevent_get_output(s->client)) == 0) {
		sess_free(s);
		return;
	}
	bufferevent_disable(s->client, EV_READ);
	/* a client that stopped reading does not hold the session for ever */
	struct timeval tv = {STREAM_DRAIN_TIMEOUT_S, 0};
	bufferevent_set_timeouts(s->client, NULL, &tv);
	bufferevent_setcb(s->client, NULL, client_drained_cb, client_drain_event_cb, s);
}

/* After EOF from the client: did it only shut its sending side (stdin is over,
 * output still wanted) or close the connection altogether? The API socket is a
 * unix socket, where only the latter raises POLLHUP. */
static bool client_gone(struct bufferevent *bev)
{
	struct bufferevent *under = bufferevent_get_underlying(bev);
	int fd = bufferevent_getfd(under ? under : bev);
	if (fd < 0)
		return true;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, 0) < 0)
		return false;
	return p.revents & (POLLHUP | POLLERR | POLLNVAL);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stream_sess *s = arg;
	if ((what & BEV_EVENT_ERROR) || ((what & BEV_EVENT_EOF) && client_gone(bev))) {
		/* Gone for good: its connection, the monitor connection (the
		 * monitor then closes the process's stdin) and the session go. */
		s->client = NULL;
		if (s->evcon) {
			/* the connection is dead: free it now, nothing more to flush */
			api_hijack_close(s->evcon);
			s->evcon = NULL;
		}
		if (s->mon) {
			bufferevent_free(s->mon);
			s->mon = NULL;
		}
		sess_free(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* The client closed its side: stdin is over, output may still flow. */
		bufferevent_disable(bev, EV_READ);
		if (s->mon && s->want_stdin) {
			uint8_t hdr[8];
			rt_frame_header(hdr, RT_FRAME_STDIN_CLOSE, 0);
			bufferevent_write(s->mon, hdr, sizeof(hdr));
		} else if (!s->mon) {
			/* the docker CLI sends stdin and closes it before the start */
			s->stdin_eof = true;
		}
		if (!s->want_stdin && !s->mon && !s->c)
			sess_finish(s);
	}
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct stream_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (!s->mon) /* not started yet: keep it buffered until the monitor is there */
		return;
	if (!s->want_stdin) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	size_t len;
	while ((len = evbuffer_get_length(in)) > 0) {
		if (len > 64 * 1024)
			len = 64 * 1024;
		uint8_t hdr[8];
		rt_frame_header(hdr, RT_FRAME_STDIN, (uint32_t)len);
		bufferevent_write(s->mon, hdr, sizeof(hdr));
		evbuffer_remove_buffer(in, bufferevent_get_output(s->mon), len);
	}
}

static void mon_read_cb(struct bufferevent *bev, void *arg)
{
	struct stream_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		uint8_t hdr[8];
		if (evbuffer_copyout(in, hdr, 8) < 8)
			return;
		uint32_t len = ((uint32_t)hdr[4] << 24) | ((uint32_t)hdr[5] << 16) |
			       ((uint32_t)hdr[6] << 8) | hdr[7];
		if (len > RT_FRAME_MAX) {
			log_warn("stream: oversized frame (%u bytes) from a monitor", len);
			sess_finish(s);
			return;
		}
		if (evbuffer_get_length(in) < 8 + (size_t)len)
			return;
		evbuffer_drain(in, 8);
		switch (hdr[0]) {
		case RT_FRAME_STDOUT:
		case RT_FRAME_STDERR:
			if (s->client) {
				struct evbuffer *out = bufferevent_get_output(s->client);
				if (!s->tty)
					evbuffer_add(out, hdr, 8);
				evbuffer_remove_buffer(in, out, len);
				if (evbuffer_get_length(out) > STREAM_HIGH_WATER)
					bufferevent_disable(bev, EV_READ);
			} else {
				evbuffer_drain(in, len);
			}
			break;
		case RT_FRAME_EXIT: {
			char *buf = malloc((size_t)len + 1);
			if (buf) {
				evbuffer_remove(in, buf, len);
				buf[len] = '\0';
				json_t *j = json_loads(buf, 0, NULL);
				if (s->ex) {
					s->ex->exit_code = (int)json_integer_value(
						json_object_get(j, "exit_code"));
					s->ex->running = false;
					s->ex->ended_ns = now_ns();
				}
				json_decref(j);
				free(buf);
			}
			sess_finish(s);
			return;
		}
		default:
			evbuffer_drain(in, len);
		}
	}
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct stream_sess *s = arg;
	/* below the high-water mark again: resume reading the monitor */
	if (s->mon)
		bufferevent_enable(s->mon, EV_READ);
}

static void mon_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stream_sess *s = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->ex && s->ex->running) {
			s->ex->running = false;
			s->ex->ended_ns = now_ns();
		}
		sess_finish(s);
	}
}

static void sess_attach_monitor(struct stream_sess *s, int fd)
{
	fd_set_nonblock(fd, true);
	s->mon = bufferevent_socket_new(s->agent->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!s->mon) {
		close(fd);
		sess_finish(s);
		return;
	}
	bufferevent_setcb(s->mon, mon_read_cb, NULL, mon_event_cb, s);
	bufferevent_enable(s->mon, EV_READ | EV_WRITE);
	/* stdin the client sent before the monitor was there */
	if (s->client && evbuffer_get_length(bufferevent_get_input(s->client)))
		client_read_cb(s->client, s);
	if (s->stdin_eof && s->want_stdin) {
		uint8_t hdr[8];
		rt_frame_header(hdr, RT_FRAME_STDIN_CLOSE, 0);
		bufferevent_write(s->mon, hdr, sizeof(hdr));
	}
}

static struct stream_sess *sess_new(struct api_req *r, bool tty, bool want_stdin)
{
	struct stream_sess *s = calloc(1, sizeof(*s));
	if (!s) {
		api_reply_error(r, 500, "out of memory");
		return NULL;
	}
	s->agent = r->agent;
	s->tty = tty;
	s->want_stdin = want_stdin;
	s->evcon = evhttp_request_get_connection(r->req);
	s->client = api_hijack(r, tty ? "application/vnd.docker.raw-stream"
				      : "application/vnd.docker.multiplexed-stream");
	bufferevent_setcb(s->client, client_read_cb, client_write_cb, client_event_cb, s);
	/* The request object now belongs to the connection we took over. */
	r->req = NULL;
	api_req_free(r);
	return s;
}

void stream_attach(struct container *c, struct api_req *r)
{
	bool tty = false, stdin_open = false;
	json_get_bool(c->config, "Tty", &tty, NULL);
	json_get_bool(c->config, "OpenStdin", &stdin_open, NULL);
	bool want_stdin = api_query_bool(r, "stdin", false) && stdin_open;
	bool want_out = api_query_bool(r, "stdout", false),
	     want_err = api_query_bool(r, "stderr", false);
	if (!api_query_bool(r, "stream", false) && !api_query_bool(r, "logs", false)) {
		api_reply_error(r, 400, "attach needs stream=1 (live output) or logs=1");
		return;
	}
	int fd = -1;
	struct shoal_err err = {0};
	if (c->state == CONTAINER_RUNNING) {
		json_t *req = json_pack("{s:s, s:b, s:b, s:b}", "op", "attach", "stdin", want_stdin,
					"stdout", want_out, "stderr", want_err);
		fd = rt_ctl_connect(c->run_dir, req, &err);
		json_decref(req);
		if (fd < 0) {
			api_reply_err(r, &err);
			return;
		}
	}
	struct stream_sess *s = sess_new(r, tty, want_stdin);
	if (!s) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd >= 0) {
		sess_attach_monitor(s, fd);
	} else if (c->state == CONTAINER_CREATED) {
		s->c = c;
		s->next = c->pending_attach;
		c->pending_attach = s;
	} else {
		sess_finish(s);
	}
}

void stream_sess_set_monitor_fd(struct stream_sess *s, int fd)
{
	s->c->pending_attach = s->next;
	s->next = NULL;
	s->c = NULL;
	sess_attach_monitor(s, fd);
}

void stream_sess_connect_pending(struct container *c)
{
	/* Sessions beyond the one the monitor adopted connect normally. */
	while (c->pending_attach) {
		struct stream_sess *s = c->pending_attach;
		c->pending_attach = s->next;
		s->next = NULL;
		s->c = NULL;
		json_t *req = json_pack("{s:s, s:b, s:b, s:b}", "op", "attach", "stdin",
					s->want_stdin, "stdout", 1, "stderr", 1);
		int fd = rt_ctl_connect(c->run_dir, req, NULL);
		json_decref(req);
		if (fd < 0)
			sess_finish(s);
		else
			sess_attach_monitor(s, fd);
	}
}

void stream_sess_abort_pending(struct container *c)
{
	while (c->pending_attach) {
		struct stream_sess *s = c->pending_attach;
		c->pending_attach = s->next;
		s->c = NULL;
		sess_finish(s);
	}
}

static int send_resize(int fd, int h, int w)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "{\"h\":%d,\"w\":%d}", h, w);
	uint8_t hdr[8];
	rt_frame_header(hdr, RT_FRAME_RESIZE, (uint32_t)n);
	int r = write_all(fd, hdr, sizeof(hdr));
	if (r >= 0)
		r = write_all(fd, body, (size_t)n);
	return r;
}

int stream_resize(struct container *c, int h, int w, struct shoal_err *err)
{
	if (c->state != CONTAINER_RUNNING)
		return shoal_err_set_status(err, 409, EINVAL, "Container %s is not running", c->id);
	json_t *req = json_pack("{s:s, s:b, s:b, s:b}", "op", "attach", "stdin", 0, "stdout", 0,
				"stderr", 0);
	_cleanup_close_ int fd = rt_ctl_connect(c->run_dir, req, err);
	json_decref(req);
	if (fd < 0)
		return fd;
	int r = send_resize(fd, h, w);
	return r < 0 ? shoal_err_errno(err, -r, "sending the new size to the container") : 0;
}

/* ---- exec ---- */

struct exec_inst *exec_find(struct agent *a, const char *id)
{
	for (struct exec_inst *e = a->execs; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

void stream_exec_start(struct agent *a, struct exec_inst *ex, struct container *c, bool detach,
		       struct api_req *r)
{
	struct shoal_err err = {0};
	bool tty = false, in = false, priv = false;
	json_get_bool(ex->config, "Tty", &tty, NULL);
	json_get_bool(ex->config, "AttachStdin", &in, NULL);
	json_get_bool(ex->config, "Privileged", &priv, NULL);
	const char *user = "", *cwd = "";
	json_get_string(ex->config, "User", &user, NULL);
	json_get_string(ex->config, "WorkingDir", &cwd, NULL);
	if (!*user)
		json_get_string(c->config, "User", &user, NULL);
	if (!*cwd)
		json_get_string(c->config, "WorkingDir", &cwd, NULL);
	/* The exec environment is the container's, overridden by the exec's. */
	json_t *env = json_deep_copy(json_object_get(c->config, "Env"));
	if (!env)
		env = json_array();
	json_t *xenv = json_object_get(ex->config, "Env");
	size_t i;
	json_t *e;
	json_array_foreach(xenv, i, e) json_array_append(env, e);
	json_t *req = json_pack("{s:s, s:O, s:o, s:s, s:s, s:b, s:b, s:b}", "op", "exec", "argv",
				json_object_get(ex->config, "Cmd"), "env", env, "user", user, "cwd",
				cwd, "tty", tty, "stdin", in && !detach, "privileged", priv);
	int fd = rt_ctl_connect(c->run_dir, req, &err);
	json_decref(req);
	if (fd < 0) {
		api_reply_err(r, &err);
		return;
	}
	ex->started = true;
	ex->running = true;
	if (detach) {
		/* Nobody reads the output: a session with no client drains it. */
		struct stream_sess *s = calloc(1, sizeof(*s));
		if (!s) {
			close(fd);
			api_reply_error(r, 500, "out of memory");
			return;
		}
		s->agent = a;
		s->ex = ex;
		ex->sess = s;
		sess_attach_monitor(s, fd);
		api_reply_json(r, 200, json_object());
		return;
	}
	struct stream_sess *s = sess_new(r, tty, in);
	if (!s) {
		close(fd);
		return;
	}
	s->ex = ex;
	ex->sess = s;
	sess_attach_monitor(s, fd);
}

int stream_exec_resize(struct agent *a, struct exec_inst *ex, int h, int w, struct shoal_err *err)
{
	struct container *c = container_find(a, ex->container_id, err);
	if (!c)
		return -ENOENT;
	if (!ex->running || !ex->sess || !ex->sess->mon)
		return shoal_err_set_status(err, 409, EINVAL, "exec %s is not running", ex->id);
	char body[64];
	int n = snprintf(body, sizeof(body), "{\"h\":%d,\"w\":%d}", h, w);
	uint8_t hdr[8];
	rt_frame_header(hdr, RT_FRAME_RESIZE, (uint32_t)n);
	bufferevent_write(ex->sess->mon, hdr, sizeof(hdr));
	bufferevent_write(ex->sess->mon, body, (size_t)n);
	return 0;
}

static int64_t exec_expire_ns(void)
{
	static int64_t v;
	if (!v) {
		/* SHOAL_EXEC_EXPIRE_S shortens the wait, for tests */
		const char *e = getenv("SHOAL_EXEC_EXPIRE_S");
		long n = e ? strtol(e, NULL, 10) : 0;
		v = (n > 0 && n <= EXEC_EXPIRE_S ? n : EXEC_EXPIRE_S) * 1000000000LL;
	}
	return v;
}

static void exec_free(struct exec_inst *e)
{
	if (e->sess)
		e->sess->ex = NULL;
	json_decref(e->config);
	free(e);
}

void exec_gc(struct agent *a)
{
	int64_t now = now_ns(), ttl = exec_expire_ns();
	for (struct exec_inst **pp = &a->execs; *pp;) {
		struct exec_inst *e = *pp;
		bool expired =
			!e->running && now - (e->started ? e->ended_ns : e->created_ns) >= ttl;
		if (expired || !container_find(a, e->container_id, NULL)) {
			*pp = e->next;
			exec_free(e);
		} else {
			pp = &e->next;
		}
	}
}

unsigned exec_count(struct agent *a, const char *container_id)
{
	unsigned n = 0;
	for (struct exec_inst *e = a->execs; e; e = e->next)
		if (!container_id || strcmp(e->container_id, container_id) == 0)
			n++;
	return n;
}

void exec_free_all(struct agent *a)
{
	while (a->execs) {
		struct exec_inst *e = a->execs;
		a->execs = e->next;
		exec_free(e);
	}
}
