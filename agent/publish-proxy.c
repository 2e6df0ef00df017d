// SPDX-License-Identifier: Apache-2.0
/* The userland proxy: published ports reached from the node itself when the
 * node hooks (cgroup socket hooks that translate localhost:PORT and the
 * node's addresses at connect()) are not there. The agent listens on
 * 0.0.0.0:PORT of its network namespace and relays each connection (TCP) or
 * client (UDP) to one of the port's active backends, as Docker's docker-proxy
 * does. Packets that arrive on an uplink are translated by tc before the
 * socket lookup, so only the node's own processes and its containers reach
 * these sockets.
 *
 * Everything runs on the agent's loop: non-blocking sockets, bufferevents
 * with watermarks (a slow side stops the other side's reads instead of
 * growing a buffer), bounded work per callback, and limits per port on
 * connections and UDP sessions. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/publish.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

/* Limits, per published port unless said otherwise. */
#define PROXY_TCP_MAX_CONNS    4096 /* concurrent TCP connections */
#define PROXY_UDP_MAX_SESSIONS 1024 /* UDP clients at a time */
#define PROXY_UDP_IDLE_S       30   /* a UDP client's session ends after this quiet */
/* SHOAL_PROXY_UDP_IDLE_S (1-3600) shortens or lengthens it: the tests wait it
 * out. */
#define PROXY_UDP_IDLE_ENV	"SHOAL_PROXY_UDP_IDLE_S"
#define PROXY_CONNECT_TIMEOUT_S 10 /* a backend that does not answer the SYN */
/* A side whose pending output reaches this stops the other side's reads until
 * half of it is written; reads take at most this much at a time. */
#define PROXY_TCP_HIGH_WM     (64 * 1024)
#define PROXY_TCP_READ_WM     (64 * 1024)
#define PROXY_BATCH	      64 /* accepts or datagrams per callback, then the loop */
#define PROXY_RESUME_S	      1	 /* a paused listener looks again */
#define PROXY_LOG_INTERVAL_NS (60LL * 1000000000) /* a port's trouble logged once a minute */
#define PROXY_FD_RESERVE      256		  /* descriptors left to the rest of the agent */
#define PROXY_PORT_BUCKETS    256
#define PROXY_SESSION_BUCKETS 256

struct proxy_port;

/* One TCP connection: side 0 is the client, side 1 the backend; data read on
 * one side is written to the other. */
struct proxy_conn {
	struct proxy_port *port;
	struct proxy_conn *prev, *next;
	struct bufferevent *bev[2];
	bool connected; /* the backend side */
	bool paused[2]; /* reads of side i stopped: side !i's output is full */
	bool eof[2];	/* side i sent FIN */
	bool shut[2];	/* writing to side i shut down (the other's FIN passed on) */
};

/* One UDP client, with its own connected socket to its backend. */
struct proxy_session {
	struct proxy_port *port;
	struct proxy_session *next; /* in its hash bucket */
	struct sockaddr_in client;
	struct in_addr local; /* the address the client sent to: replies come from it */
	struct sockaddr_in backend;
	int fd;
	struct event *ev, *idle;
	int64_t last_ns;
};

struct proxy_port {
	struct publish_proxy *pp;
	struct proxy_port *next; /* in its hash bucket */
	char key[16];		 /* "tcp/8080" */
	int proto;
	uint16_t port;
	bool seen; /* in the last sync */
	int fd;	   /* listening; -EBADF while the port cannot be bound */
	struct event *ev, *resume;
	bool bind_warned;
	bool paused;
	int64_t full_logged_ns;
	char *joined;		    /* the backends as last synced */
	struct sockaddr_in *active; /* the ones that take new connections */
	size_t n_active, rr;
	struct proxy_conn *conns; /* TCP */
	unsigned n_conns;
	struct proxy_session *sessions[PROXY_SESSION_BUCKETS]; /* UDP */
	unsigned n_sessions;
	uint64_t dropped; /* datagrams of new clients refused (limit, no backend) */
};

struct publish_proxy {
	struct event_base *base;
	struct proxy_port *ports[PROXY_PORT_BUCKETS];
	size_t fds_used, fd_budget;
	uint8_t dgram[65536];
};

static unsigned port_bucket(int proto, uint16_t port)
{
	return ((unsigned)port * 31u + (unsigned)proto) % PROXY_PORT_BUCKETS;
}

static unsigned session_bucket(const struct sockaddr_in *sin)
{
	uint32_t h = ntohl(sin->sin_addr.s_addr) * 2654435761u ^ ntohs(sin->sin_port);
	return (h ^ (h >> 16)) % PROXY_SESSION_BUCKETS;
}

/* Whether this cause of trouble was logged less than a minute ago; if not,
 * it counts as logged now. */
static bool log_quiet(int64_t *last)
{
	int64_t now = mono_ns();
	if (*last && now - *last < PROXY_LOG_INTERVAL_NS)
		return true;
	*last = now;
	return false;
}

/* The proxy keeps PROXY_FD_RESERVE descriptors of the agent's limit for the
 * API, the store and the containers' monitors: a flood of connections to a
 * published port must not starve those. */
static void fd_budget_update(struct publish_proxy *pp)
{
	struct rlimit rl;
	size_t lim = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		lim = rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
	pp->fd_budget = lim > 2 * PROXY_FD_RESERVE ? lim - PROXY_FD_RESERVE : lim / 2;
}

static const struct sockaddr_in *backend_pick(struct proxy_port *pt)
{
	if (pt->n_active == 0)
		return NULL;
	return &pt->active[pt->rr++ % pt->n_active];
}

/* --- TCP --- */

static void port_resume(struct proxy_port *pt);

static bool port_full(struct proxy_port *pt)
{
	struct publish_proxy *pp = pt->pp;
	return pt->n_conns >= PROXY_TCP_MAX_CONNS || pp->fds_used + 2 > pp->fd_budget;
}

static void conn_free(struct proxy_conn *c)
{
	struct proxy_port *pt = c->port;
	for (int i = 0; i < 2; i++)
		if (c->bev[i])
			bufferevent_free(c->bev[i]); /* closes the socket */
	if (c->prev)
		c->prev->next = c->next;
	else
		pt->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pt->n_conns--;
	pt->pp->fds_used -= 2;
	free(c);
	if (pt->paused && !port_full(pt))
		port_resume(pt);
}

/* Passes the other side's FIN on to side `to` once everything for `to` is
 * written; frees the connection when both directions are done. */
static void conn_flush(struct proxy_conn *c, int to)
{
	if (c->eof[!to] && !c->shut[to] && (to == 0 || c->connected) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev[to])) == 0) {
		shutdown(bufferevent_getfd(c->bev[to]), SHUT_WR);
		c->shut[to] = true;
	}
	if (c->shut[0] && c->shut[1])
		conn_free(c);
}

static void relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *c = arg;
	int i = bev == c->bev[1];
	struct evbuffer *out = bufferevent_get_output(c->bev[!i]);
	evbuffer_add_buffer(out, bufferevent_get_input(bev));
	if (evbuffer_get_length(out) >= PROXY_TCP_HIGH_WM) {
		/* backpressure: read on when the other side has taken half */
		bufferevent_disable(bev, EV_READ);
		c->paused[i] = true;
	}
}

/* Side i's output went down to the low watermark (half of the high one) or
 * to empty. */
static void relay_write_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *c = arg;
	int i = bev == c->bev[1];
	if (c->paused[!i] && !c->eof[!i]) {
		c->paused[!i] = false;
		bufferevent_enable(c->bev[!i], EV_READ);
	}
	conn_flush(c, i);
}

static void relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct proxy_conn *c = arg;
	int i = bev == c->bev[1];
	if (what & BEV_EVENT_CONNECTED) {
		c->connected = true;
		bufferevent_set_timeouts(bev, NULL, NULL);
		conn_flush(c, 1);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->eof[i] = true;
		bufferevent_disable(bev, EV_READ);
		evbuffer_add_buffer(bufferevent_get_output(c->bev[!i]), bufferevent_get_input(bev));
		conn_flush(c, !i);
		return;
	}
	/* an error or the connect timeout: both sides go */
	if (i == 1 && !c->connected)
		log_debug("publish: port %s: connecting to a backend: %s", c->port->key,
			  (what & BEV_EVENT_TIMEOUT) ? "timed out" : strerror(errno));
	conn_free(c);
}

static struct bufferevent *relay_bev(struct proxy_conn *c, int fd)
{
	struct bufferevent *bev =
		bufferevent_socket_new(c->port->pp->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	bufferevent_setcb(bev, relay_read_cb, relay_write_cb, relay_event_cb, c);
	bufferevent_setwatermark(bev, EV_READ, 0, PROXY_TCP_READ_WM);
	bufferevent_setwatermark(bev, EV_WRITE, PROXY_TCP_HIGH_WM / 2, 0);
	return bev;
}

/* Takes cfd (an accepted client); 0, or -errno with cfd closed. */
static int conn_start(struct proxy_port *pt, int cfd)
{
	_cleanup_close_ int fd = cfd, bfd = -EBADF;
	const struct sockaddr_in *be = backend_pick(pt);
	if (!be)
		return -EHOSTUNREACH; /* no active backend: the client is closed */
	bfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (bfd < 0)
		return -errno;
	/* connect() here rather than in bufferevent_socket_connect(): a connect
	 * that fails at once is then reported here, not from inside that call */
	if (connect(bfd, (const struct sockaddr *)be, sizeof(*be)) < 0 && errno != EINPROGRESS)
		return -errno;
	struct proxy_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->port = pt;
	c->bev[0] = relay_bev(c, fd);
	if (c->bev[0])
		TAKE_FD(fd);
	c->bev[1] = c->bev[0] ? relay_bev(c, bfd) : NULL;
	if (c->bev[1])
		TAKE_FD(bfd);
	struct timeval tmo = {PROXY_CONNECT_TIMEOUT_S, 0};
	if (!c->bev[1] || bufferevent_set_timeouts(c->bev[1], NULL, &tmo) < 0 ||
	    bufferevent_socket_connect(c->bev[1], NULL, 0) < 0) {
		for (int i = 0; i < 2; i++)
			if (c->bev[i])
				bufferevent_free(c->bev[i]);
		free(c);
		return -ENOMEM;
	}
	bufferevent_enable(c->bev[0], EV_READ);
	bufferevent_enable(c->bev[1], EV_READ);
	c->next = pt->conns;
	if (pt->conns)
		pt->conns->prev = c;
	pt->conns = c;
	pt->n_conns++;
	pt->pp->fds_used += 2;
	return 0;
}

/* Stops accepting (the connections wait in the backlog) until a connection
 * of the port ends or, for a shortage of descriptors, a second has passed. */
static void port_pause(struct proxy_port *pt, int why)
{
	if (!pt->paused) {
		event_del(pt->ev);
		pt->paused = true;
	}
	struct timeval tv = {PROXY_RESUME_S, 0};
	evtimer_add(pt->resume, &tv);
	if (log_quiet(&pt->full_logged_ns))
		return;
	if (why)
		log_warn("publish: port %s: userland proxy out of descriptors (%s) with %u "
			 "connection(s); new connections wait",
			 pt->key, strerror(why), pt->n_conns);
	else
		log_warn("publish: port %s: userland proxy at its limit of %u connection(s) "
			 "(%zu descriptors of %zu for all ports); new connections wait",
			 pt->key, pt->n_conns, pt->pp->fds_used, pt->pp->fd_budget);
}

static void port_resume(struct proxy_port *pt)
{
	if (!pt->paused || pt->fd < 0)
		return;
	evtimer_del(pt->resume);
	event_add(pt->ev, NULL);
	pt->paused = false;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_port *pt = arg;
	if (pt->proto == IPPROTO_TCP && port_full(pt)) {
		struct timeval tv = {PROXY_RESUME_S, 0};
		evtimer_add(pt->resume, &tv);
		return;
	}
	port_resume(pt);
}

static void tcp_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct proxy_port *pt = arg;
	for (int n = 0; n < PROXY_BATCH; n++) {
		if (port_full(pt)) {
			port_pause(pt, 0);
			return;
		}
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				port_pause(pt, errno);
			return;
		}
		int r = conn_start(pt, cfd);
		if (r == -EMFILE || r == -ENFILE) {
			port_pause(pt, -r);
			return;
		}
		if (r < 0)
			log_debug("publish: port %s: connection closed: %s", pt->key, strerror(-r));
	}
}

/* --- UDP --- */

static void session_free(struct proxy_session *s)
{
	struct proxy_port *pt = s->port;
	struct proxy_session **pp = &pt->sessions[session_bucket(&s->client)];
	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	if (s->ev)
		event_free(s->ev);
	if (s->idle)
		event_free(s->idle);
	if (s->fd >= 0)
		close(s->fd);
	pt->n_sessions--;
	pt->pp->fds_used--;
	free(s);
}

static int udp_idle_s(void)
{
	static int v;
	if (!v) {
		const char *e = getenv(PROXY_UDP_IDLE_ENV);
		char *end = NULL;
		long n = e && *e ? strtol(e, &end, 10) : 0;
		v = end && *end == '\0' && n >= 1 && n <= 3600 ? (int)n : PROXY_UDP_IDLE_S;
		if (e && *e && v != n)
			log_warn("%s=%s: expected 1-3600 seconds; %d s used", PROXY_UDP_IDLE_ENV, e,
				 v);
	}
	return v;
}

static void session_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_session *s = arg;
	int64_t idle = mono_ns() - s->last_ns, max = (int64_t)udp_idle_s() * 1000000000;
	if (idle >= max) {
		session_free(s);
		return;
	}
	/* traffic since the timer was set: wait for the rest of the period */
	int64_t left = max - idle;
	struct timeval tv = {.tv_sec = left / 1000000000, .tv_usec = (left % 1000000000) / 1000};
	evtimer_add(s->idle, &tv);
}

/* Sends a datagram to the client from the address it sent to and the
 * published port. */
static void udp_reply(struct proxy_session *s, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl = {0};
	struct msghdr mh = {.msg_name = &s->client,
			    .msg_namelen = sizeof(s->client),
			    .msg_iov = &iov,
			    .msg_iovlen = 1};
	if (s->local.s_addr) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
		struct in_pktinfo pi = {.ipi_spec_dst = s->local};
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	}
	/* a full socket buffer drops the datagram, as the network would */
	sendmsg(s->port->fd, &mh, MSG_DONTWAIT);
}

static void session_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_session *s = arg;
	uint8_t *buf = s->port->pp->dgram;
	for (int n = 0; n < PROXY_BATCH; n++) {
		ssize_t len = recv(fd, buf, sizeof(s->port->pp->dgram), MSG_DONTWAIT);
		if (len < 0) {
			/* ECONNREFUSED: an ICMP error for an earlier datagram */
			if (errno == EINTR || errno == ECONNREFUSED)
				continue;
			return;
		}
		s->last_ns = mono_ns();
		udp_reply(s, buf, (size_t)len);
	}
}

static struct proxy_session *session_find(struct proxy_port *pt, const struct sockaddr_in *from)
{
	for (struct proxy_session *s = pt->sessions[session_bucket(from)]; s; s = s->next)
		if (s->client.sin_addr.s_addr == from->sin_addr.s_addr &&
		    s->client.sin_port == from->sin_port)
			return s;
	return NULL;
}

/* A session for a new client; NULL with errno set. */
static struct proxy_session *session_new(struct proxy_port *pt, const struct sockaddr_in *from)
{
	struct publish_proxy *pp = pt->pp;
	if (pt->n_sessions >= PROXY_UDP_MAX_SESSIONS || pp->fds_used + 1 > pp->fd_budget) {
		errno = ENOSPC;
		return NULL;
	}
	const struct sockaddr_in *be = backend_pick(pt);
	if (!be) {
		errno = EHOSTUNREACH;
		return NULL;
	}
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)be, sizeof(*be)) < 0)
		return NULL;
	struct proxy_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->port = pt;
	s->client = *from;
	s->backend = *be;
	s->fd = fd;
	s->ev = event_new(pp->base, fd, EV_READ | EV_PERSIST, session_read_cb, s);
	s->idle = evtimer_new(pp->base, session_idle_cb, s);
	struct timeval tv = {udp_idle_s(), 0};
	if (!s->ev || !s->idle || event_add(s->ev, NULL) < 0 || evtimer_add(s->idle, &tv) < 0) {
		if (s->ev)
			event_free(s->ev);
		if (s->idle)
			event_free(s->idle);
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	TAKE_FD(fd);
	unsigned b = session_bucket(from);
	s->next = pt->sessions[b];
	pt->sessions[b] = s;
	pt->n_sessions++;
	pp->fds_used++;
	return s;
}

static void udp_read_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct proxy_port *pt = arg;
	uint8_t *buf = pt->pp->dgram;
	for (int n = 0; n < PROXY_BATCH; n++) {
		struct sockaddr_in from;
		union {
			char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(pt->pp->dgram)};
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		ssize_t len = recvmsg(lfd, &mh, MSG_DONTWAIT);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if ((mh.msg_flags & MSG_TRUNC) || from.sin_family != AF_INET)
			continue;
		struct in_addr local = {0};
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				local = pi.ipi_spec_dst;
			}
		struct proxy_session *s = session_find(pt, &from);
		if (!s) {
			s = session_new(pt, &from);
			if (!s) {
				pt->dropped++;
				if (errno == ENOSPC && !log_quiet(&pt->full_logged_ns))
					log_warn(
						"publish: port %s: userland proxy at its limit of "
						"%u UDP client(s); %llu datagram(s) of new clients "
						"dropped so far",
						pt->key, pt->n_sessions,
						(unsigned long long)pt->dropped);
				continue;
			}
		}
		s->local = local;
		s->last_ns = mono_ns();
		/* ECONNREFUSED reports an ICMP error for an earlier datagram:
		 * this one is sent anyway, once more */
		if (send(s->fd, buf, (size_t)len, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED)
			send(s->fd, buf, (size_t)len, MSG_DONTWAIT);
	}
}

/* --- ports --- */

static void port_free(struct proxy_port *pt)
{
	if (!pt)
		return;
	pt->paused = false; /* no resuming while its connections go */
	while (pt->conns)
		conn_free(pt->conns);
	for (size_t b = 0; b < PROXY_SESSION_BUCKETS; b++)
		while (pt->sessions[b])
			session_free(pt->sessions[b]);
	if (pt->ev)
		event_free(pt->ev);
	if (pt->resume)
		event_free(pt->resume);
	if (pt->fd >= 0)
		close(pt->fd);
	free(pt->joined);
	free(pt->active);
	free(pt);
}

/* A listening socket on 0.0.0.0:port; the socket or -errno. */
static int port_listen(int proto, uint16_t port)
{
	int type = proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	_cleanup_close_ int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -errno;
	/* TCP: connections of an earlier agent in TIME_WAIT do not hold the
	 * port. Not for UDP, where it would share a port another socket has. */
	if (proto == IPPROTO_TCP && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	/* UDP: the address each client sent to, to answer from it */
	if (proto == IPPROTO_UDP && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0)
		return -errno;
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -errno;
	if (proto == IPPROTO_TCP && listen(fd, SOMAXCONN) < 0)
		return -errno;
	return TAKE_FD(fd);
}

/* Opens the port's socket if it has none yet; 0 or -errno. */
static int port_open(struct proxy_port *pt)
{
	if (pt->fd >= 0)
		return 0;
	int fd = port_listen(pt->proto, pt->port);
	if (fd < 0)
		return fd;
	event_callback_fn cb = pt->proto == IPPROTO_UDP ? udp_read_cb : tcp_accept_cb;
	pt->ev = event_new(pt->pp->base, fd, EV_READ | EV_PERSIST, cb, pt);
	if (!pt->ev || event_add(pt->ev, NULL) < 0) {
		if (pt->ev)
			event_free(pt->ev);
		pt->ev = NULL;
		close(fd);
		return -ENOMEM;
	}
	pt->fd = fd;
	pt->paused = false;
	return 0;
}

static struct proxy_port *port_find(struct publish_proxy *pp, int proto, uint16_t port)
{
	for (struct proxy_port *pt = pp->ports[port_bucket(proto, port)]; pt; pt = pt->next)
		if (pt->proto == proto && pt->port == port)
			return pt;
	return NULL;
}

static struct proxy_port *port_new(struct publish_proxy *pp, int proto, uint16_t port)
{
	struct proxy_port *pt = calloc(1, sizeof(*pt));
	if (!pt)
		return NULL;
	pt->pp = pp;
	pt->proto = proto;
	pt->port = port;
	pt->fd = -EBADF;
	snprintf(pt->key, sizeof(pt->key), "%s/%u", proto == IPPROTO_UDP ? "udp" : "tcp",
		 (unsigned)port);
	pt->resume = evtimer_new(pp->base, resume_cb, pt);
	if (!pt->resume) {
		free(pt);
		return NULL;
	}
	unsigned b = port_bucket(proto, port);
	pt->next = pp->ports[b];
	pp->ports[b] = pt;
	return pt;
}

static bool backend_in(const struct lb_backend_spec *bs, size_t n, const struct sockaddr_in *sin)
{
	for (size_t i = 0; i < n; i++)
		if (bs[i].addr == sin->sin_addr.s_addr && bs[i].port == ntohs(sin->sin_port))
			return true;
	return false;
}

/* New connections go to the active backends of joined; open connections
 * keep theirs; UDP sessions whose backend left the list end (the client's
 * next datagram picks another). 0 or -errno (the old list kept). */
static int port_set_backends(struct proxy_port *pt, const char *joined)
{
	if (pt->joined && strcmp(pt->joined, joined) == 0)
		return 0;
	_cleanup_free_ struct lb_backend_spec *bs = NULL;
	size_t n = 0;
	int r = publish_parse_backends(joined, &bs, &n);
	if (r < 0)
		return r;
	_cleanup_free_ char *copy = strdup(joined);
	_cleanup_free_ struct sockaddr_in *active = calloc(n ? n : 1, sizeof(*active));
	if (!copy || !active)
		return -ENOMEM;
	size_t na = 0;
	for (size_t i = 0; i < n; i++)
		if (bs[i].state == LB_BACKEND_ACTIVE)
			active[na++] = (struct sockaddr_in){.sin_family = AF_INET,
							    .sin_port = htons(bs[i].port),
							    .sin_addr.s_addr = bs[i].addr};
	free(pt->joined);
	pt->joined = TAKE_PTR(copy);
	free(pt->active);
	pt->active = TAKE_PTR(active);
	pt->n_active = na;
	for (size_t b = 0; b < PROXY_SESSION_BUCKETS; b++)
		for (struct proxy_session *s = pt->sessions[b], *next; s; s = next) {
			next = s->next;
			if (!backend_in(bs, n, &s->backend))
				session_free(s);
		}
	return 0;
}

void publish_proxy_sync(struct agent *a, json_t *programmed)
{
	struct publish_proxy *pp = a->publish_proxy;
	if (!pp) {
		pp = calloc(1, sizeof(*pp));
		if (!pp) {
			log_warn("publish: userland proxy: %s", strerror(ENOMEM));
			return;
		}
		pp->base = a->base;
		a->publish_proxy = pp;
	}
	fd_budget_update(pp);
	for (size_t b = 0; b < PROXY_PORT_BUCKETS; b++)
		for (struct proxy_port *pt = pp->ports[b]; pt; pt = pt->next)
			pt->seen = false;
	const char *key;
	json_t *v;
	json_object_foreach(programmed, key, v)
	{
		struct lb_service_key sk;
		/* service virtual IPs are never reached through a listener */
		if (publish_parse_key(key, &sk) < 0 || sk.addr != 0 || sk.port == 0)
			continue;
		struct proxy_port *pt = port_find(pp, sk.proto, sk.port);
		if (!pt)
			pt = port_new(pp, sk.proto, sk.port);
		if (!pt) {
			log_warn("publish: port %s: userland proxy: %s", key, strerror(ENOMEM));
			continue;
		}
		pt->seen = true;
		int r = port_set_backends(pt, json_string_value(v) ?: "");
		if (r < 0)
			log_warn("publish: port %s: userland proxy backends: %s", key,
				 strerror(-r));
		if (pt->fd >= 0)
			continue;
		r = port_open(pt);
		if (r < 0) {
			/* once, and again on every later sync, quietly */
			if (!pt->bind_warned)
				log_warn("publish: port %s does not answer on the node: the "
					 "userland proxy cannot listen on it: %s; retrying",
					 pt->key, strerror(-r));
			pt->bind_warned = true;
			continue;
		}
		log_info("publish: port %s answers on the node through the userland proxy "
			 "(socket hooks unavailable)",
			 pt->key);
	}
	for (size_t b = 0; b < PROXY_PORT_BUCKETS; b++)
		for (struct proxy_port **pt = &pp->ports[b]; *pt;) {
			if ((*pt)->seen) {
				pt = &(*pt)->next;
				continue;
			}
			struct proxy_port *gone = *pt;
			*pt = gone->next;
			if (gone->fd >= 0)
				log_debug(
					"publish: port %s: userland proxy closed (%u connection(s), "
					"%u UDP client(s))",
					gone->key, gone->n_conns, gone->n_sessions);
			port_free(gone);
		}
}

void publish_proxy_free(struct agent *a)
{
	struct publish_proxy *pp = a->publish_proxy;
	if (!pp)
		return;
	for (size_t b = 0; b < PROXY_PORT_BUCKETS; b++)
		while (pp->ports[b]) {
			struct proxy_port *pt = pp->ports[b];
			pp->ports[b] = pt->next;
			port_free(pt);
		}
	free(pp);
	a->publish_proxy = NULL;
}
