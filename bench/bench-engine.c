// SPDX-License-Identifier: Apache-2.0
/* The connection engine of `shoal bench http|tcp|udp` (bench-load.h): one
 * libevent loop, non-blocking sockets, the open-loop schedule or the closed
 * loop, reconnects and timeouts. What a request and its answer are is the
 * protocol's (ops). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/bench-load.h"
#include "lib/util.h"

#define RECONNECT_NS (100 * 1000000LL) /* wait after a failed connect */

static struct bench_conn *conn_at(struct bench_engine *e, int i)
{
	return (struct bench_conn *)(e->c + (size_t)i * e->conn_size);
}

static void conn_open(struct bench_conn *c);

static void count(struct bench_engine *e, int kind, int64_t origin, int err)
{
	if (!bench_rounds_measuring(&e->rounds, origin) || kind < 0 || kind >= BENCH_MAX_KINDS)
		return;
	e->errors[kind]++;
	if (!e->first_errno && err)
		e->first_errno = err;
}

static void conn_close(struct bench_conn *c)
{
	if (c->fd < 0)
		return;
	event_free(c->rev);
	event_free(c->wev);
	c->rev = c->wev = NULL;
	if (c->e->ops->sock_type == SOCK_STREAM) {
		/* RST, not FIN: no TIME_WAIT, so a long run of new connections
		 * does not run out of source ports */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
}

static void conn_send(struct bench_conn *c, int64_t now)
{
	struct bench_engine *e = c->e;
	c->pending = true;
	c->state = BENCH_C_BUSY;
	c->t_sent = now;
	bench_rounds_sent(&e->rounds, &c->slot, e->o->rate, now);
	e->ops->send(c);
}

static void start_cb(struct bench_slot *slot, int64_t now, void *arg)
{
	struct bench_conn *c = (struct bench_conn *)slot;
	if (c->e->o->new_conn) {
		c->pending = true;
		c->slot.t_idle = now;
		conn_open(c);
	} else {
		conn_send(c, now);
	}
}

/* Open loop: hands every request that is due to a free connection. */
static void dispatch(struct bench_engine *e)
{
	if (!e->stopping)
		bench_sched_dispatch(&e->sched, mono_ns(), e->rounds.from, start_cb, e);
}

static void idle_push(struct bench_conn *c, int64_t now)
{
	c->state = BENCH_C_IDLE;
	bench_sched_idle(&c->e->sched, &c->slot, now);
}

/* The connection is free: the closed loop sends at once, the open loop asks
 * the schedule. */
static void conn_ready(struct bench_conn *c, int64_t now)
{
	struct bench_engine *e = c->e;
	c->state = BENCH_C_IDLE;
	c->pending = false;
	if (e->stopping)
		return;
	if (e->o->rate == 0) {
		c->slot.t_start = now;
		c->slot.t_idle = now;
		conn_send(c, now);
		return;
	}
	idle_push(c, now);
	dispatch(e);
}

void bench_conn_fail(struct bench_conn *c, int kind, int err)
{
	struct bench_engine *e = c->e;
	int64_t now = mono_ns();
	/* a request in flight is lost: count it at its origin */
	count(e, kind, c->pending ? c->slot.t_start : now, err);
	if (e->ops->keep_socket && c->state != BENCH_C_CONNECTING && c->fd >= 0) {
		conn_ready(c, now);
		return;
	}
	if (c->state == BENCH_C_IDLE)
		bench_sched_forget(&e->sched, &c->slot);
	conn_close(c);
	c->pending = false;
	c->state = BENCH_C_DOWN;
	c->t_retry = now + (kind == e->ops->connect_kind ? RECONNECT_NS : 0);
	if (c->t_retry <= now && !e->o->new_conn)
		conn_open(c);
}

int bench_conn_done(struct bench_conn *c, bool close)
{
	struct bench_engine *e = c->e;
	int64_t now = mono_ns();
	int recorded = bench_rounds_answer(&e->rounds, c->slot.t_start, now);
	c->pending = false;
	if (!close && !e->o->new_conn) {
		conn_ready(c, now);
		return recorded;
	}
	conn_close(c);
	c->state = BENCH_C_DOWN;
	c->t_retry = now;
	if (e->stopping)
		return recorded;
	if (!e->o->new_conn) {
		conn_open(c);
	} else if (e->o->rate == 0) {
		/* the slot is free; the next request opens its own connection */
		c->slot.t_start = now;
		c->pending = true;
		conn_open(c);
	} else {
		idle_push(c, now);
		dispatch(e);
	}
	return recorded;
}

ssize_t bench_conn_send(struct bench_conn *c, const void *buf, size_t n, int kind)
{
	size_t off = 0;
	while (off < n) {
		ssize_t k = send(c->fd, (const char *)buf + off, n - off, MSG_NOSIGNAL);
		if (k >= 0) {
			off += (size_t)k;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			event_add(c->wev, NULL);
			break;
		}
		int err = errno;
		bench_conn_fail(c, kind, err);
		return -err;
	}
	return (ssize_t)off;
}

void bench_conn_reopen(struct bench_conn *c)
{
	bench_sched_forget(&c->e->sched, &c->slot);
	conn_close(c);
	c->state = BENCH_C_DOWN;
	c->t_retry = mono_ns();
	conn_open(c);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_conn *c = arg;
	c->e->ops->readable(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_conn *c = arg;
	if (c->state == BENCH_C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			bench_conn_fail(c, c->e->ops->connect_kind, err);
			return;
		}
		event_add(c->rev, NULL);
		if (c->pending) /* new-connection mode: its request is waiting */
			conn_send(c, mono_ns());
		else
			conn_ready(c, mono_ns());
		return;
	}
	if (c->state == BENCH_C_BUSY)
		c->e->ops->writable(c);
}

static void conn_open(struct bench_conn *c)
{
	struct bench_engine *e = c->e;
	c->fd = socket(e->to.ss_family, e->ops->sock_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		bench_conn_fail(c, e->ops->connect_kind, errno);
		return;
	}
	if (e->ops->sock_type == SOCK_STREAM) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->rev = event_new(e->base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
	c->wev = event_new(e->base, c->fd, EV_WRITE, write_cb, c);
	if (!c->rev || !c->wev) {
		bench_conn_fail(c, e->ops->connect_kind, ENOMEM);
		return;
	}
	c->state = BENCH_C_CONNECTING;
	c->t_retry = mono_ns(); /* the connect's start, for its timeout */
	if (connect(c->fd, (struct sockaddr *)&e->to, e->tolen) < 0 && errno != EINPROGRESS) {
		bench_conn_fail(c, e->ops->connect_kind, errno);
		return;
	}
	event_add(c->wev, NULL);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_engine *e = arg;
	int64_t now = mono_ns();
	if (now >= e->rounds.end) {
		e->stopping = true;
		event_base_loopbreak(e->base);
		return;
	}
	int64_t tmo = (int64_t)(e->o->timeout * 1e9);
	for (int i = 0; i < e->conns; i++) {
		struct bench_conn *c = conn_at(e, i);
		if (c->state == BENCH_C_BUSY && now - c->t_sent > tmo) {
			bench_conn_fail(c, e->ops->timeout_kind, ETIMEDOUT);
		} else if (c->state == BENCH_C_CONNECTING && now - c->t_retry > tmo) {
			bench_conn_fail(c, e->ops->connect_kind, ETIMEDOUT);
		} else if (c->state != BENCH_C_DOWN || now < c->t_retry) {
			continue;
		} else if (!e->o->new_conn) {
			conn_open(c);
		} else if (e->o->rate == 0) {
			c->pending = true;
			c->slot.t_start = now;
			conn_open(c);
		} else {
			idle_push(c, now);
		}
	}
	if (e->o->rate > 0)
		dispatch(e);
	if (!e->o->quiet)
		bench_load_progress(&e->rounds, e->o->name, now, &e->last_progress);
}

static void sched_cb(evutil_socket_t fd, short what, void *arg)
{
	dispatch(arg);
}

int bench_engine_run(struct bench_engine *e, struct bench_load_report *rep, json_t *variant,
		     json_t *warnings, uint64_t *ret_total, struct shoal_err *err)
{
	int rc = 0;
	e->base = bench_event_base();
	e->c = calloc((size_t)e->conns, e->conn_size);
	e->sched.idle = calloc((size_t)e->conns, sizeof(*e->sched.idle));
	e->sched.cap = e->conns;
	e->sched.rate = e->o->rate;
	if (!e->base || !e->c || !e->sched.idle ||
	    bench_rounds_init(&e->rounds, e->o->rounds) < 0) {
		rc = shoal_err_set(err, ENOMEM, "out of memory for %d connections", e->conns);
		goto out;
	}
	e->tick = event_new(e->base, -1, EV_PERSIST, tick_cb, e);
	e->sched.timer = evtimer_new(e->base, sched_cb, e);
	struct timeval tv = {.tv_sec = 0, .tv_usec = BENCH_LOAD_TICK_NS / 1000};
	if (!e->tick || !e->sched.timer || event_add(e->tick, &tv) < 0) {
		rc = shoal_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	int64_t t0 = mono_ns();
	e->sched.t0 = t0;
	e->last_progress = t0;
	bench_rounds_window(&e->rounds, t0, e->o->warmup, e->o->duration);
	for (int i = 0; i < e->conns; i++) {
		struct bench_conn *c = conn_at(e, i);
		c->e = e;
		c->fd = -1;
		c->slot.t_idle = t0;
	}
	for (int i = 0; i < e->conns; i++) {
		struct bench_conn *c = conn_at(e, i);
		if (e->o->new_conn && e->o->rate > 0) {
			idle_push(c, t0);
		} else {
			c->pending = e->o->new_conn;
			c->slot.t_start = t0;
			conn_open(c);
		}
	}
	if (e->o->rate > 0)
		dispatch(e);
	double cpu = 0;
	int r = bench_loop_run(e->base, &e->stopping, e->rounds.from, &cpu);
	if (!e->o->quiet)
		fprintf(stderr, "\r\033[K");
	if (r < 0) {
		rc = r == -EINTR ? shoal_err_set(err, EINTR, "interrupted")
				 : shoal_err_set(err, EIO, "the event loop failed");
		goto out;
	}
	rep->rate = e->o->rate;
	rep->conns = e->conns;
	rep->sched = &e->sched;
	rep->cpu = cpu;
	rep->errors = e->errors;
	rep->first_errno = e->first_errno;
	*ret_total = bench_load_variant(&e->rounds, rep, variant, warnings);
out:
	if (e->c)
		for (int i = 0; i < e->conns; i++)
			conn_close(conn_at(e, i));
	if (e->tick)
		event_free(e->tick);
	if (e->sched.timer)
		event_free(e->sched.timer);
	if (e->base)
		event_base_free(e->base);
	bench_rounds_free(&e->rounds);
	free(e->c);
	free(e->sched.idle);
	e->c = NULL;
	e->sched.idle = NULL;
	e->base = NULL;
	e->tick = NULL;
	return rc;
}
