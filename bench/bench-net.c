// SPDX-License-Identifier: Apache-2.0
/* `shoal bench tcp|udp`: echo load against any address or published service.
 *
 * Each request is --size bytes, a payload that carries its sequence number
 * (bench_payload_fill); the answer is the same bytes echoed back, checked
 * byte for byte: a reply that differs is a "mismatch". Open loop (--rate)
 * and closed loop (--connections) as `shoal bench http` runs them, with the
 * same schedule, rounds, recorder and result (bench-load.h).
 *
 * TCP: a connection carries one request at a time; --new-connections opens
 * one per request. UDP: a socket per connection, connected to the target
 * (an ICMP port unreachable comes back as "refused"), one datagram in
 * flight per socket; a datagram not answered within --timeout is "lost",
 * and an answer that comes later is counted apart ("late_replies"), never
 * taken for the answer to the next request. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/bench-load.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define NET_DEFAULT_CONNS   10
#define NET_DEFAULT_SIZE    64
#define NET_MAX_TCP_SIZE    (1024 * 1024)
#define NET_MAX_UDP_SIZE    65507 /* an IPv4 datagram's payload */
#define NET_UDP_PROBE_TRIES 3

enum kind { K_CONNECT, K_RESET, K_CLOSED, K_TIMEOUT, K_MISMATCH, K_KINDS };
static const char *const tcp_names[K_KINDS] = {"connect", "reset", "closed", "timeout", "mismatch"};
/* the same slots, as UDP has them: a send error, an ICMP refusal, no
 * connection to close, a lost datagram */
static const char *const udp_names[K_KINDS] = {"send", "refused", "closed", "lost", "mismatch"};

struct nconn {
	struct bench_conn bc; /* first: the engine's part */
	uint64_t seq;
	size_t sent, got;
};

struct nb {
	struct bench_engine e;
	bool udp;
	struct bench_load_opts o;
	size_t size;
	char target[300];
	uint64_t seq_next, late;
	uint8_t buf[NET_MAX_UDP_SIZE + 1];
};

static struct nb *nb_of(struct bench_conn *bc)
{
	return bc->e->arg;
}

static void tcp_write(struct bench_conn *bc)
{
	struct nconn *c = (struct nconn *)bc;
	struct nb *b = nb_of(bc);
	while (c->sent < b->size) {
		size_t n = b->size - c->sent;
		if (n > sizeof(b->buf))
			n = sizeof(b->buf);
		bench_payload_fill(b->buf, c->seq, c->sent, n);
		ssize_t k = bench_conn_send(bc, b->buf, n, K_RESET);
		if (k < 0)
			return;
		c->sent += (size_t)k;
		if ((size_t)k < n)
			return; /* full: the rest when it is writable */
	}
}

static void udp_write(struct bench_conn *bc)
{
	struct nconn *c = (struct nconn *)bc;
	struct nb *b = nb_of(bc);
	bench_payload_fill(b->buf, c->seq, 0, b->size);
	for (;;) {
		ssize_t k = send(bc->fd, b->buf, b->size, 0);
		if (k == (ssize_t)b->size) {
			c->sent = b->size;
			return;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			/* the socket's send buffer is full: wait for room */
			event_add(bc->wev, NULL);
			return;
		}
		/* ECONNREFUSED: an ICMP port unreachable for an earlier datagram */
		bench_conn_fail(bc, k < 0 && errno == ECONNREFUSED ? K_RESET : K_CONNECT,
				k < 0 ? errno : EMSGSIZE);
		return;
	}
}

static void net_send(struct bench_conn *bc)
{
	struct nconn *c = (struct nconn *)bc;
	struct nb *b = nb_of(bc);
	c->seq = b->seq_next++;
	c->sent = c->got = 0;
	if (b->udp)
		udp_write(bc);
	else
		tcp_write(bc);
}

static void net_writable(struct bench_conn *bc)
{
	struct nconn *c = (struct nconn *)bc;
	if (c->sent >= nb_of(bc)->size)
		return;
	if (nb_of(bc)->udp)
		udp_write(bc);
	else
		tcp_write(bc);
}

static void tcp_readable(struct bench_conn *bc)
{
	struct nconn *c = (struct nconn *)bc;
	struct nb *b = nb_of(bc);
	for (;;) {
		/* never past this request's echo: what follows it is not asked for */
		size_t want = bc->state == BENCH_C_BUSY ? b->size - c->got : 1;
		if (want > sizeof(b->buf))
			want = sizeof(b->buf);
		ssize_t n = read(bc->fd, b->buf, want);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			bench_conn_fail(bc, K_RESET, errno);
			return;
		}
		if (n == 0) {
			/* the server closing an idle connection is not an error */
			if (bc->state == BENCH_C_IDLE)
				bench_conn_reopen(bc);
			else
				bench_conn_fail(bc, K_CLOSED, 0);
			return;
		}
		if (bc->state != BENCH_C_BUSY ||
		    bench_payload_check(b->buf, c->seq, c->got, (size_t)n) >= 0) {
			bench_conn_fail(bc, K_MISMATCH, 0);
			return;
		}
		c->got += (size_t)n;
		if (c->got == b->size) {
			bench_conn_done(bc, false);
			return;
		}
	}
}

static void udp_readable(struct bench_conn *bc)
{
	struct nconn *c = (struct nconn *)bc;
	struct nb *b = nb_of(bc);
	for (;;) {
		ssize_t n = recv(bc->fd, b->buf, sizeof(b->buf), 0);
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR)
				continue;
			/* ECONNREFUSED: an ICMP port unreachable for a datagram */
			if (bc->pending)
				bench_conn_fail(bc, errno == ECONNREFUSED ? K_RESET : K_CONNECT,
						errno);
			continue;
		}
		uint64_t seq = (size_t)n >= 8 ? bench_payload_seq(b->buf, (size_t)n) : UINT64_MAX;
		if (!bc->pending || seq != c->seq) {
			if (seq < b->seq_next)
				b->late++; /* the answer to a request already counted lost */
			else if (bc->pending)
				bench_conn_fail(bc, K_MISMATCH, 0);
			continue;
		}
		if ((size_t)n != b->size || bench_payload_check(b->buf, c->seq, 0, b->size) >= 0)
			bench_conn_fail(bc, K_MISMATCH, 0);
		else
			bench_conn_done(bc, false);
	}
}

static const struct bench_engine_ops tcp_ops = {
	.sock_type = SOCK_STREAM,
	.connect_kind = K_CONNECT,
	.timeout_kind = K_TIMEOUT,
	.send = net_send,
	.writable = net_writable,
	.readable = tcp_readable,
};

static const struct bench_engine_ops udp_ops = {
	.sock_type = SOCK_DGRAM,
	.keep_socket = true,
	.connect_kind = K_CONNECT,
	.timeout_kind = K_TIMEOUT,
	.send = net_send,
	.writable = net_writable,
	.readable = udp_readable,
};

/* One datagram, one echo, before any load: a target that does not echo is
 * one clear error, not a run of lost datagrams. */
static int udp_probe(struct nb *b, struct shoal_err *err)
{
	_cleanup_close_ int fd = socket(b->e.to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return shoal_err_errno(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&b->e.to, b->e.tolen) < 0)
		return shoal_err_errno(err, errno, "cannot reach %s", b->target);
	double per = b->o.timeout / NET_UDP_PROBE_TRIES;
	struct timeval tv = {.tv_sec = (time_t)per,
			     .tv_usec = (suseconds_t)((per - (double)(time_t)per) * 1e6)};
	if (tv.tv_sec == 0 && tv.tv_usec < 1000)
		tv.tv_usec = 1000;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint64_t seq = UINT64_MAX - 1;
	bench_payload_fill(b->buf, seq, 0, b->size);
	int e = 0;
	ssize_t got = 0;
	for (int i = 0; i < NET_UDP_PROBE_TRIES; i++) {
		if (send(fd, b->buf, b->size, 0) < 0) {
			e = errno;
			break;
		}
		ssize_t n = recv(fd, b->buf, sizeof(b->buf), 0);
		if (n < 0) {
			e = errno;
			if (e == EAGAIN || e == EINTR) {
				bench_payload_fill(b->buf, seq, 0, b->size);
				continue;
			}
			break;
		}
		if ((size_t)n == b->size && bench_payload_check(b->buf, seq, 0, b->size) < 0)
			return 0;
		/* one bad answer may be the path's; every one is the server's */
		got = n;
		e = EPROTO;
		bench_payload_fill(b->buf, seq, 0, b->size);
	}
	if (e == EPROTO)
		return shoal_err_set(err, EPROTO,
				     "%s answered %zd bytes that are not the %zu sent, %d times: "
				     "not an echo server",
				     b->target, got, b->size, NET_UDP_PROBE_TRIES);
	if (e == EAGAIN)
		return shoal_err_set(err, ETIMEDOUT,
				     "no echo from %s in %.1f s (%d datagrams): is a UDP echo "
				     "server listening there?",
				     b->target, b->o.timeout, NET_UDP_PROBE_TRIES);
	return shoal_err_errno(err, e, "no echo from %s", b->target);
}

static int resolve(struct nb *b, const char *host, int port, struct shoal_err *err)
{
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	struct addrinfo hints = {.ai_socktype = b->udp ? SOCK_DGRAM : SOCK_STREAM}, *ai = NULL;
	int r = getaddrinfo(host, ps, &hints, &ai);
	if (r != 0)
		return shoal_err_set(err, EHOSTUNREACH, "cannot resolve %s: %s", host,
				     gai_strerror(r));
	memcpy(&b->e.to, ai->ai_addr, ai->ai_addrlen);
	b->e.tolen = ai->ai_addrlen;
	freeaddrinfo(ai);
	snprintf(b->target, sizeof(b->target), "%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", port);
	return 0;
}

static int bench_net(struct cli_ctx *ctx, int argc, char **argv, bool udp)
{
	enum { O_TARGET = 1, O_SERVICE, O_SIZE };
	static const struct cli_opt own[] = {
		{O_TARGET, "target", 0, CLI_OPT_VALUE, "addr:port",
		 "Target: an echo server, ADDR:PORT or [IPv6]:PORT"},
		{O_SERVICE, "service", 0, CLI_OPT_VALUE, "name",
		 "Target: a service's published port on this node"},
		{O_SIZE, "size", 's', CLI_OPT_VALUE, "bytes",
		 "Bytes per request, echoed back and checked (default 64)"},
		{0},
	};
	struct cli_opt opts[40];
	if (bench_load_opts_join(own, opts, ARRAY_SIZE(opts)) < 0)
		return cli_oom();
	const char *proto = udp ? "udp" : "tcp";
	snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "shoal bench %s", proto);
	_cleanup_free_ struct nb *b = calloc(1, sizeof(*b));
	if (!b)
		return cli_oom();
	b->udp = udp;
	b->size = NET_DEFAULT_SIZE;
	bench_load_opts_init(&b->o, udp ? 1 : 5, proto);
	const char *target = NULL, *service = NULL;
	size_t maxsize = udp ? NET_MAX_UDP_SIZE : NET_MAX_TCP_SIZE;
	char msg[512] = "";
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		int r = bench_load_opt(&b->o, &p, o, msg, sizeof(msg));
		if (r == 0) {
			if (o == O_TARGET) {
				target = p.value;
			} else if (o == O_SERVICE) {
				service = p.value;
			} else if (o == O_SIZE) {
				char *end;
				errno = 0;
				unsigned long v = strtoul(p.value, &end, 10);
				if (errno || *end || end == p.value || v < (udp ? 8 : 1) ||
				    v > maxsize) {
					r = -EINVAL;
					snprintf(msg, sizeof(msg),
						 "--size %s: expected %d to %zu bytes%s", p.value,
						 udp ? 8 : 1, maxsize,
						 udp ? " (a datagram carries its 8-byte sequence "
						       "number)"
						     : "");
				}
				b->size = v;
			}
		}
		if (r < 0) {
			cli_opts_done(&p);
			return cli_usage_error(ctx, msg);
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(ctx, &p, o, "--target ADDR:PORT | --service NAME [OPTIONS]",
				     udp ? "UDP echo load: each datagram echoed back and checked; "
					   "lost ones counted"
					 : "TCP echo load: each request echoed back and checked");
	if (p.npos > 0) {
		snprintf(msg, sizeof(msg), "unexpected argument %s", p.pos[0]);
		cli_opts_done(&p);
		return cli_usage_error(ctx, msg);
	}
	cli_opts_done(&p);
	if (!target == !service)
		return cli_usage_error(ctx, "give the target: --target ADDR:PORT or --service NAME "
					    "(one of them)");
	if (udp && b->o.new_conn)
		return cli_usage_error(ctx, "--new-connections: UDP has no connections to open; "
					    "drop it");
	if (b->o.netns_client && b->o.from_container)
		return cli_usage_error(ctx,
				       "--netns-client and --from-container: give one of them");
	if (service && b->o.from_container)
		return cli_usage_error(ctx, "--service with --from-container: a published port is "
					    "on the node's addresses; give --target with the "
					    "address the container should reach");
	char host[256];
	int port = 0;
	if (target &&
	    bench_parse_hostport(target, host, sizeof(host), &port, msg, sizeof(msg)) < 0) {
		char m2[600];
		snprintf(m2, sizeof(m2), "--target %s", msg);
		return cli_usage_error(ctx, m2);
	}
	b->e.conns = b->o.conns ? b->o.conns : NET_DEFAULT_CONNS;
	b->o.quiet = b->o.quiet || b->o.json || !isatty(2);
	struct shoal_err err = {0};
	if (service && bench_service_port(ctx, service, proto, &port, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	struct bench_load_result res;
	struct bench_netns ns;
	int rc = bench_load_begin(ctx, &b->o, b->e.conns, proto, &res, &ns);
	if (rc)
		return rc;
	_cleanup_json_ json_t *out = res.out;
	rc = 1;
	if (service)
		bench_load_service_host(&b->o, &ns, host, sizeof(host));
	if (resolve(b, host, port, &err) < 0)
		goto fail;
	if (bench_load_check_target(&b->o, &ns, &b->e.to, b->target, &err) < 0)
		goto fail;
	if ((udp ? udp_probe(b, &err)
		 : bench_probe_tcp(&b->e.to, b->e.tolen, b->o.timeout, b->target, &err)) < 0)
		goto fail;
	json_t *cfg = json_pack(
		"{s:s, s:s, s:s, s:I, s:f, s:i, s:f, s:f, s:f, s:i, s:b}", "target", b->target,
		"protocol", proto, "mode", b->o.rate > 0 ? "open-loop" : "closed-loop", "size",
		(json_int_t)b->size, "rate", b->o.rate, "connections", b->e.conns, "duration_s",
		b->o.duration, "warmup_s", b->o.warmup, "timeout_s", b->o.timeout, "rounds",
		b->o.rounds, "new_connections", b->o.new_conn);
	json_object_update(res.config, cfg);
	json_decref(cfg);
	if (!b->o.quiet)
		fprintf(stderr, "shoal bench %s: %s, %s\n", proto, b->target,
			b->o.rate > 0 ? "open loop" : "closed loop");
	b->e.ops = udp ? &udp_ops : &tcp_ops;
	b->e.o = &b->o;
	b->e.arg = b;
	b->e.conn_size = sizeof(struct nconn);
	struct bench_load_report rep = {.name = b->o.name,
					.target = b->target,
					.err_names = udp ? udp_names : tcp_names,
					.nkinds = K_KINDS};
	uint64_t total = 0;
	if (bench_engine_run(&b->e, &rep, res.variant, res.warnings, &total, &err) < 0)
		goto fail;
	if (udp) {
		/* "closed" has no meaning without a connection */
		json_object_del(json_object_get(res.variant, "errors"), "closed");
		json_object_set_new(res.variant, "late_replies", json_integer((json_int_t)b->late));
	}
	if (total == 0) {
		shoal_err_set(&err, EIO, "no echo from %s in %.1f s", b->target, b->o.duration);
		goto fail;
	}
	bench_netns_down(&ns);
	return bench_load_output(out, &b->o, bench_load_print);
fail:
	bench_netns_down(&ns);
	cli_print_err(&err);
	return rc;
}

int bench_tcp(struct cli_ctx *ctx, int argc, char **argv)
{
	return bench_net(ctx, argc, argv, false);
}

int bench_udp(struct cli_ctx *ctx, int argc, char **argv)
{
	return bench_net(ctx, argc, argv, true);
}
