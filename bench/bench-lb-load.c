// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench-lb-internal.h"
#include "bench/bench.h"
#include "lib/util.h"

#define MAX_CONNS 1024

struct client {
	int fd;
	bool connected;
	int64_t t0;
	size_t got;
	char buf[1024];
};

static const char req_keep[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char req_close[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";

struct load {
	int ep;
	struct sockaddr_in from, to;
	bool new_conn;
	struct client *c;
	int64_t measure_from;
	uint64_t requests, errors;
	struct bench_samples lat;
};

static void client_close(struct load *l, struct client *c)
{
	if (c->fd < 0)
		return;
	/* RST instead of FIN: no TIME_WAIT on the client, so a long run of new
	 * connections does not run out of source ports */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
}

static int client_open(struct load *l, struct client *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->from.sin_addr.s_addr &&
	    bind(c->fd, (struct sockaddr *)&l->from, sizeof(l->from)) < 0) {
		int r = -errno;
		close(c->fd);
		c->fd = -1;
		return r;
	}
	c->connected = false;
	c->got = 0;
	c->t0 = mono_ns();
	if (connect(c->fd, (struct sockaddr *)&l->to, sizeof(l->to)) < 0 && errno != EINPROGRESS) {
		int r = -errno;
		close(c->fd);
		c->fd = -1;
		return r;
	}
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		int r = -errno;
		close(c->fd);
		c->fd = -1;
		return r;
	}
	return 0;
}

static int client_send(struct load *l, struct client *c)
{
	const char *q = l->new_conn ? req_close : req_keep;
	size_t n = l->new_conn ? sizeof(req_close) - 1 : sizeof(req_keep) - 1;
	c->got = 0;
	if (!l->new_conn)
		c->t0 = mono_ns();
	return write(c->fd, q, n) == (ssize_t)n ? 0 : -EIO;
}

/* Length of a complete response in buf, 0 while incomplete. */
static size_t response_len(const char *buf, size_t n)
{
	const char *end = memmem(buf, n, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t hlen = (size_t)(end - buf) + 4;
	size_t cl = 0;
	const char *h = memmem(buf, hlen, "Content-Length:", 15);
	if (h)
		cl = strtoul(h + 15, NULL, 10);
	return n >= hlen + cl ? hlen + cl : 0;
}

static void client_fail(struct load *l, struct client *c)
{
	if (mono_ns() >= l->measure_from)
		l->errors++;
	client_close(l, c);
	client_open(l, c);
}

static void client_event(struct load *l, struct client *c, uint32_t events)
{
	if (!c->connected) {
		int e = 0;
		socklen_t len = sizeof(e);
		if ((events & (EPOLLERR | EPOLLHUP)) ||
		    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e) {
			client_fail(l, c);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		c->connected = true;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
		if (client_send(l, c) < 0)
			client_fail(l, c);
		return;
	}
	ssize_t n = read(c->fd, c->buf + c->got, sizeof(c->buf) - c->got);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		client_fail(l, c);
		return;
	}
	c->got += (size_t)n;
	size_t rl = response_len(c->buf, c->got);
	if (!rl) {
		if (c->got == sizeof(c->buf))
			client_fail(l, c);
		return;
	}
	int64_t now = mono_ns();
	if (now >= l->measure_from) {
		l->requests++;
		bench_samples_add(&l->lat, now - c->t0);
	}
	if (l->new_conn) {
		client_close(l, c);
		if (client_open(l, c) < 0)
			l->errors++;
	} else if (client_send(l, c) < 0) {
		client_fail(l, c);
	}
}

int bench_lb_load_run(uint32_t src, uint32_t addr, uint16_t port, int conns, double seconds,
		      bool new_conn, struct bench_lb_load *ret)
{
	if (conns < 1 || conns > MAX_CONNS || seconds <= 0)
		return -EINVAL;
	/* enough source ports for a long run of new connections */
	int pfd = open("/proc/sys/net/ipv4/ip_local_port_range", O_WRONLY | O_CLOEXEC);
	if (pfd >= 0) {
		write_all(pfd, "1024 65000\n", 11);
		close(pfd);
	}
	struct load l = {.new_conn = new_conn};
	l.to = (struct sockaddr_in){
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
	l.from = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = src};
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	if (l.ep < 0)
		return -errno;
	l.c = calloc((size_t)conns, sizeof(*l.c));
	if (!l.c) {
		close(l.ep);
		return -ENOMEM;
	}
	int64_t warm = (int64_t)(seconds * 1e9 / 5);
	if (warm > 1000000000)
		warm = 1000000000;
	int64_t start = mono_ns();
	l.measure_from = start + warm;
	int64_t end = l.measure_from + (int64_t)(seconds * 1e9);
	int r = 0;
	for (int i = 0; i < conns; i++) {
		l.c[i].fd = -1;
		if ((r = client_open(&l, &l.c[i])) < 0)
			goto out;
	}
	struct epoll_event evs[128];
	while (mono_ns() < end) {
		int n = epoll_wait(l.ep, evs, 128, 100);
		if (n < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		for (int i = 0; i < n; i++)
			client_event(&l, evs[i].data.ptr, evs[i].events);
	}
	double secs = (double)(mono_ns() - l.measure_from) / 1e9;
	*ret = (struct bench_lb_load){
		.requests = l.requests,
		.errors = l.errors,
		.per_sec = (double)l.requests / secs,
		.p50_ns = l.lat.n ? bench_quantile(&l.lat, 0.5) : 0,
		.p99_ns = l.lat.n ? bench_quantile(&l.lat, 0.99) : 0,
	};
	r = l.requests ? 0 : -ECONNREFUSED;
out:
	for (int i = 0; i < conns; i++)
		client_close(&l, &l.c[i]);
	free(l.c);
	bench_samples_free(&l.lat);
	close(l.ep);
	return r;
}

int bench_lb_load_in(int ns_fd, const cpu_set_t *cpus, uint32_t src, uint32_t addr, uint16_t port,
		     int conns, double seconds, bool new_conn, struct bench_lb_load *ret)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		struct bench_lb_load l = {0};
		if (cpus)
			sched_setaffinity(0, sizeof(*cpus), cpus);
		int r = setns(ns_fd, CLONE_NEWNET) < 0
				? -errno
				: bench_lb_load_run(src, addr, port, conns, seconds, new_conn, &l);
		if (r == 0)
			write_all(p[1], &l, sizeof(l));
		_exit(r == 0 ? 0 : 1);
	}
	close(p[1]);
	struct bench_lb_load l;
	ssize_t n = read(p[0], &l, sizeof(l));
	close(p[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(l))
		return -ECONNREFUSED;
	*ret = l;
	return 0;
}
