/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <jansson.h>

#include "cli/cli.h"
#include "lib/err.h"

/* What the load generators (`shoal bench http`, `tcp`, `udp`) share: the
 * common flags, the open-loop schedule, the rounds' latency recorders, the
 * loop that runs them, the variant they report, and the network namespace the
 * load comes from. Each protocol keeps only its own connection machine. */

struct cli_ctx;
struct cli_opts;

#define BENCH_LOAD_MAX_CONNS   10000		 /* concurrent connections (fds, buffers) */
#define BENCH_LOAD_MAX_RATE    10000000.0	 /* requests per second, open loop */
#define BENCH_LOAD_MAX_SECONDS 3600.0		 /* --duration, --warmup, --timeout */
#define BENCH_LOAD_MAX_ROUNDS  100		 /* --rounds */
#define BENCH_LOAD_TICK_NS     (100 * 1000000LL) /* timeouts, reconnects, progress */

/* "10s", "500ms", "2m", "1.5" (seconds) -> seconds, at most
 * BENCH_LOAD_MAX_SECONDS. -EINVAL, -ERANGE. */
int bench_parse_seconds(const char *s, double *ret);
/* "1000", "1000/s", "60000/m" -> per second, above 0, at most
 * BENCH_LOAD_MAX_RATE. -EINVAL, -ERANGE. */
int bench_parse_rate(const char *s, double *ret);

/* The flags every load generator takes, their ids above any command's own. */
enum {
	BENCH_O_RATE = 1000,
	BENCH_O_CONNS,
	BENCH_O_DURATION,
	BENCH_O_WARMUP,
	BENCH_O_ROUNDS,
	BENCH_O_TIMEOUT,
	BENCH_O_NEWCONN,
	BENCH_O_NAME,
	BENCH_O_CPU,
	BENCH_O_NETNS_CLIENT,
	BENCH_O_FROM_CONTAINER,
	BENCH_O_OUT,
	BENCH_O_JSON,
	BENCH_O_QUIET,
};
/* The entries of those flags, ended by an entry with id 0. */
extern const struct cli_opt bench_load_cli_opts[];
/* A command's own flags, then the shared ones, into out (cap entries with
 * the final 0). -E2BIG when they do not fit. */
int bench_load_opts_join(const struct cli_opt *own, struct cli_opt *out, size_t cap);

struct bench_load_opts {
	double rate; /* 0: closed loop */
	int conns;   /* 0: not given */
	double duration, warmup, timeout;
	int rounds;
	bool new_conn, json, quiet, netns_client;
	int cpu; /* -1: not pinned */
	const char *name, *from_container, *outfile;
};
/* The defaults: 6 s measured in 3 rounds after 1 s, timeout, name. */
void bench_load_opts_init(struct bench_load_opts *o, double timeout, const char *name);
/* Takes one of the BENCH_O_* flags; 1 when id is one of them, 0 when not,
 * -EINVAL with msg set on a bad value. */
int bench_load_opt(struct bench_load_opts *o, const struct cli_opts *p, int id, char *msg,
		   size_t msgsize);

/* ---- the open-loop schedule ---- */

/* A connection's place in the schedule; the first member of each protocol's
 * connection. */
struct bench_slot {
	int64_t t_start; /* latency origin: the due time (open) or the send (closed) */
	int64_t t_idle;	 /* since when it could have sent */
};

struct bench_sched {
	double rate;
	int64_t t0;
	uint64_t next_k; /* the next request due */
	uint64_t waited; /* due while every slot was busy, in the measured window */
	struct bench_slot **idle;
	int nidle, cap;
	struct event *timer;
};

/* When request k is due: t0 + k / rate. */
int64_t bench_sched_due(const struct bench_sched *s, uint64_t k);
/* A free slot joins the idle stack. */
void bench_sched_idle(struct bench_sched *s, struct bench_slot *slot, int64_t now);
/* Takes slot off the idle stack (it went away while idle). */
void bench_sched_forget(struct bench_sched *s, struct bench_slot *slot);
/* Hands every request due by now to an idle slot: sets its t_start to the due
 * time and calls start(slot, now, arg). Arms s->timer for the next one when
 * slots are left. measure_from: requests due earlier are warm-up. */
void bench_sched_dispatch(struct bench_sched *s, int64_t now, int64_t measure_from,
			  void (*start)(struct bench_slot *slot, int64_t now, void *arg),
			  void *arg);

/* ---- the rounds' recorders ---- */

struct bench_hist;

struct bench_rounds {
	int n;
	int64_t from, end; /* the measured window */
	struct bench_hist **hist;
	uint64_t *req;
	struct bench_hist *lag; /* open loop: due (or free) to sent */
	uint64_t sent;		/* requests sent in the window */
};
int bench_rounds_init(struct bench_rounds *r, int n);
void bench_rounds_free(struct bench_rounds *r);
void bench_rounds_window(struct bench_rounds *r, int64_t t0, double warmup, double duration);
static inline bool bench_rounds_measuring(const struct bench_rounds *r, int64_t t)
{
	return t >= r->from;
}
/* The round of time t (clamped into the window). */
int bench_rounds_index(const struct bench_rounds *r, int64_t t);
/* An answer at now to a request whose latency counts from origin; 1 when it
 * was recorded (in the window), 0 when not. */
int bench_rounds_answer(struct bench_rounds *r, int64_t origin, int64_t now);
/* A request went out at now; slot says when it was due and free. */
void bench_rounds_sent(struct bench_rounds *r, const struct bench_slot *slot, double rate,
		       int64_t now);

/* ---- the run ---- */

/* An event base with precise timers (the schedule needs better than 1 ms).
 * NULL on ENOMEM. */
struct event_base *bench_event_base(void);
/* Runs base in short slices until *stopping or SIGINT/SIGTERM; the CPU the
 * process used over the measured window, as a fraction of one CPU, in
 * *ret_cpu. -EINTR when interrupted, -EIO when the loop failed. */
int bench_loop_run(struct event_base *base, volatile bool *stopping, int64_t measure_from,
		   double *ret_cpu);
/* Raises the open-file limit for conns sockets. */
int bench_raise_nofile(int conns, struct shoal_err *err);

/* What a run reports beside its rounds. */
struct bench_load_report {
	const char *name, *target;
	double rate; /* 0: closed loop */
	int conns;
	const struct bench_sched *sched; /* open loop */
	double cpu;			 /* generator CPU over the window */
	const char *const *err_names;
	const uint64_t *errors;
	int nkinds;
	uint64_t not_errors; /* bit k: kind k is counted but is not a failure (an HTTP status) */
	int first_errno;
};
/* Fills variant ("name", "requests", "per_sec", "latency_us", "curve",
 * "errors", "rounds", "generator_cpu", "per_cpu_second", "schedule") and
 * appends the warnings (generator behind, CPU-bound, failures). Returns the
 * requests answered. */
uint64_t bench_load_variant(struct bench_rounds *r, const struct bench_load_report *rep,
			    json_t *variant, json_t *warnings);
/* Progress on stderr, at most once a second. */
void bench_load_progress(const struct bench_rounds *r, const char *name, int64_t now,
			 int64_t *last);

/* One blocking connect bounded by timeout seconds, before any load: an
 * unreachable target is one clear error, not a run of counted failures. */
int bench_probe_tcp(const struct sockaddr_storage *to, socklen_t tolen, double timeout,
		    const char *what, struct shoal_err *err);
/* --service NAME: the service's first published port of proto ("tcp",
 * "udp"). */
int bench_service_port(struct cli_ctx *ctx, const char *name, const char *proto, int *ret_port,
		       struct shoal_err *err);
/* A load command's result as it fills in: "warnings", "variants" (one),
 * "config", stamped with suite and the environment. */
struct bench_load_result {
	json_t *out, *warnings, *variant, *config;
};
struct bench_netns;
/* Between a load command's flags and its run: pins the CPU, raises the
 * open-file limit for conns, makes the result (the environment taken while
 * the agent is still reachable) and moves into the client's namespace.
 * Prints what goes wrong; 0 or the exit status. */
int bench_load_begin(struct cli_ctx *ctx, const struct bench_load_opts *o, int conns,
		     const char *suite, struct bench_load_result *ret, struct bench_netns *ns);
/* Where --service's published port is: this host's loopback, or from a
 * client namespace the host side of its veth. */
void bench_load_service_host(const struct bench_load_opts *o, const struct bench_netns *ns,
			     char *buf, size_t size);
/* Refuses a loopback target from a client namespace (it would be the
 * namespace's own), saying which address reaches the host. */
int bench_load_check_target(const struct bench_load_opts *o, const struct bench_netns *ns,
			    const struct sockaddr_storage *to, const char *what,
			    struct shoal_err *err);
/* Writes out to outfile (if any), then prints it as JSON or with print. */
int bench_load_output(json_t *out, const struct bench_load_opts *o, void (*print)(json_t *));

/* ---- where the load comes from ---- */

/* The client namespace of --netns-client: a veth pair from this host's
 * namespace into a new one, a /30 of 169.254.64.0/18 (link-local, never
 * routed off the host) on it, the host side the client's default route. The
 * new namespace has no name and no process but this one: when the bench
 * ends, however it ends, the kernel removes it and the veth pair with it. */
#define BENCH_NETNS_BASE    0xa9fe4000u /* 169.254.64.0 */
#define BENCH_NETNS_SUBNETS 4096	/* /30s in 169.254.64.0/18 */

struct bench_netns {
	int host_fd;   /* the namespace the bench started in, -1 when not moved */
	int client_fd; /* the one the load runs in */
	char host_if[16], client_if[16];
	uint32_t host_addr, client_addr; /* host order */
	char cgroup_back[4096];		 /* --from-container: the cgroup v2 to return to */
	char cgroup_root[64];
	bool created, cgroup_moved;
	int container_pid;
};
/* The two addresses of /30 number i (0 <= i < BENCH_NETNS_SUBNETS): .1 the
 * host side, .2 the client. Pure. */
void bench_netns_subnet(unsigned i, uint32_t *ret_host, uint32_t *ret_client);
/* Makes the client namespace and moves this process into it. */
int bench_netns_client_up(struct bench_netns *ns, struct shoal_err *err);
/* Moves this process into the network namespace (and the cgroup v2, where the
 * socket load balancer's hooks see it) of container name's process. */
int bench_netns_container_enter(struct cli_ctx *ctx, const char *name, struct bench_netns *ns,
				struct shoal_err *err);
/* Back to where the bench started; removes what up made. Safe to call twice. */
void bench_netns_down(struct bench_netns *ns);
/* Sets up the namespace o asks for (none, --netns-client, --from-container)
 * and records it in out["config"]["client"]. */
int bench_load_client(struct cli_ctx *ctx, const struct bench_load_opts *o, struct bench_netns *ns,
		      json_t *config, struct shoal_err *err);
/* A loopback address is this namespace's own: from a client namespace it is
 * not the host's. */
bool bench_addr_is_loopback(const struct sockaddr_storage *a);

/* ---- echo payloads (tcp, udp) ---- */

/* Request seq's payload is a pure function of (seq, byte offset): the first 8
 * bytes the sequence number (little-endian), then a pattern that moves with
 * it, so a reply to another request, a shifted or a corrupted one is told
 * apart. Fills buf with bytes [off, off + n). */
void bench_payload_fill(uint8_t *buf, uint64_t seq, size_t off, size_t n);
/* -1 when buf holds bytes [off, off + n) of seq's payload, else the index in
 * buf of the first that differs. */
long bench_payload_check(const uint8_t *buf, uint64_t seq, size_t off, size_t n);
/* The sequence number a payload of n >= 8 bytes carries. */
uint64_t bench_payload_seq(const uint8_t *buf, size_t n);
/* "ADDR:PORT" or "[IPv6]:PORT" into host and port; msg says what is wrong. */
int bench_parse_hostport(const char *s, char *host, size_t hostsize, int *ret_port, char *msg,
			 size_t msgsize);
/* Pins the calling thread to cpu. */
int bench_load_pin_cpu(int cpu);
/* The table of a result, its warnings on stderr. */
void bench_load_print(json_t *out);

/* ---- the connection engine ---- */

/* The connections of a load generator on one libevent loop: connect,
 * reconnect, new connection per request, the schedule (open loop) or send
 * on answer (closed loop), timeouts, errors by kind counted at the request's
 * origin, the rounds. A protocol gives its request writer and answer reader
 * (ops) and calls back bench_conn_done() or bench_conn_fail(). */
enum bench_conn_state {
	BENCH_C_DOWN,	    /* no socket; reconnect at t_retry */
	BENCH_C_CONNECTING, /* connect() in progress */
	BENCH_C_IDLE,	    /* connected, free */
	BENCH_C_BUSY,	    /* a request written or being written, its answer awaited */
};

struct bench_engine;

struct bench_conn {
	struct bench_slot slot; /* first: the schedule hands out slots */
	struct bench_engine *e;
	int fd;
	enum bench_conn_state state;
	struct event *rev, *wev;
	int64_t t_sent;	 /* when the request went out, for its timeout */
	int64_t t_retry; /* down: when to reconnect; connecting: since when */
	bool pending;	 /* a request is assigned (new-connection mode: before connect) */
};

#define BENCH_MAX_KINDS 16

struct bench_engine_ops {
	int sock_type;			/* SOCK_STREAM or SOCK_DGRAM */
	bool keep_socket;		/* a failed request leaves the socket open (UDP) */
	int connect_kind, timeout_kind; /* the error kinds the engine counts itself */
	/* A request goes out on c (busy, t_sent set): start writing it. */
	void (*send)(struct bench_conn *c);
	/* c can take more of its request after EAGAIN. */
	void (*writable)(struct bench_conn *c);
	/* c's socket has something to read. */
	void (*readable)(struct bench_conn *c);
};

struct bench_engine {
	const struct bench_engine_ops *ops;
	const struct bench_load_opts *o;
	void *arg;	  /* the protocol's state */
	size_t conn_size; /* the protocol's connection, a struct bench_conn first */
	int conns;
	struct sockaddr_storage to;
	socklen_t tolen;
	/* the run */
	struct event_base *base;
	struct event *tick;
	char *c;
	struct bench_sched sched;
	struct bench_rounds rounds;
	uint64_t errors[BENCH_MAX_KINDS];
	int first_errno;
	volatile bool stopping;
	int64_t last_progress;
};

/* Request kind failed on c: counted at the request's origin; the connection
 * closes and reconnects (or, keep_socket, is free again). */
void bench_conn_fail(struct bench_conn *c, int kind, int err);
/* The answer to c's request is complete. close: the server ends the
 * connection after it. 1 when it was recorded (in the measured window); c
 * may carry the next request when this returns. */
int bench_conn_done(struct bench_conn *c, bool close);
/* Sends what of buf[0..n) the socket takes: the bytes sent (fewer than n
 * when it is full, c then waits to be writable), or -errno after failing c's
 * request as kind. */
ssize_t bench_conn_send(struct bench_conn *c, const void *buf, size_t n, int kind);
/* The server closed c while it was idle: not an error; another opens. */
void bench_conn_reopen(struct bench_conn *c);
/* Runs the load as e->o says; fills variant and warnings from rep (name,
 * target, error names; the rest the engine's). The answers in *ret_total. */
int bench_engine_run(struct bench_engine *e, struct bench_load_report *rep, json_t *variant,
		     json_t *warnings, uint64_t *ret_total, struct shoal_err *err);
