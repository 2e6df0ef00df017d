// SPDX-License-Identifier: Apache-2.0
/* The parts of `shoal bench http`, `tcp` and `udp` that do not depend on the
 * protocol: flags, the open-loop schedule, the rounds, the loop, the variant
 * and its warnings, the probe, the output. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/bench-load.h"
#include "bench/hist.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* A free connection that sends later than this after its request was due
 * means the generator fell behind its own schedule. */
#define LAG_WARN_US 1000
/* CPU the generator may use before its figures measure itself. */
#define CPU_WARN 0.90

/* ---- flags ---- */

int bench_parse_seconds(const char *s, double *ret)
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
	if (v > BENCH_LOAD_MAX_SECONDS)
		return -ERANGE;
	*ret = v;
	return 0;
}

int bench_parse_rate(const char *s, double *ret)
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
	if (v > BENCH_LOAD_MAX_RATE)
		return -ERANGE;
	*ret = v;
	return 0;
}

const struct cli_opt bench_load_cli_opts[] = {
	{BENCH_O_RATE, "rate", 0, CLI_OPT_VALUE, "N/s",
	 "Open loop: N requests per second, latency from when each was due"},
	{BENCH_O_CONNS, "connections", 'c', CLI_OPT_VALUE, "int",
	 "Connections (default 10); alone: closed loop, as fast as answers come"},
	{BENCH_O_DURATION, "duration", 'd', CLI_OPT_VALUE, "duration",
	 "Measured time, split into the rounds (default 6s)"},
	{BENCH_O_WARMUP, "warmup", 0, CLI_OPT_VALUE, "duration",
	 "Load before measuring, not counted (default 1s)"},
	{BENCH_O_ROUNDS, "rounds", 0, CLI_OPT_VALUE, "int",
	 "Rounds, for the run-to-run noise (default 3)"},
	{BENCH_O_TIMEOUT, "timeout", 0, CLI_OPT_VALUE, "duration",
	 "A request not answered in this time is a timeout (default 5s; udp 1s)"},
	{BENCH_O_NEWCONN, "new-connections", 0, CLI_OPT_BOOL, NULL,
	 "A new connection per request (http, tcp)"},
	{BENCH_O_NAME, "name", 0, CLI_OPT_VALUE, "string",
	 "Name of this variant in the results (default: the protocol)"},
	{BENCH_O_CPU, "cpu", 0, CLI_OPT_VALUE, "int", "Pin the generator to this CPU"},
	{BENCH_O_NETNS_CLIENT, "netns-client", 0, CLI_OPT_BOOL, NULL,
	 "Load from a network namespace of its own: a veth pair to this host, a /30 of "
	 "169.254.64.0/18, removed after"},
	{BENCH_O_FROM_CONTAINER, "from-container", 0, CLI_OPT_VALUE, "name",
	 "Load from inside a running container's network namespace (east-west)"},
	{BENCH_O_OUT, "output", 'o', CLI_OPT_VALUE, "file", "Also write the JSON results here"},
	{BENCH_O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON, no progress"},
	{BENCH_O_QUIET, "quiet", 'q', CLI_OPT_BOOL, NULL, "No progress"},
	{0},
};

int bench_load_opts_join(const struct cli_opt *own, struct cli_opt *out, size_t cap)
{
	size_t n = 0;
	for (const struct cli_opt *o = own; o->id; o++) {
		if (n + 1 >= cap)
			return -E2BIG;
		out[n++] = *o;
	}
	for (const struct cli_opt *o = bench_load_cli_opts; o->id; o++) {
		if (n + 1 >= cap)
			return -E2BIG;
		out[n++] = *o;
	}
	out[n] = (struct cli_opt){0};
	return 0;
}

void bench_load_opts_init(struct bench_load_opts *o, double timeout, const char *name)
{
	*o = (struct bench_load_opts){.duration = 6,
				      .warmup = 1,
				      .timeout = timeout,
				      .rounds = 3,
				      .cpu = -1,
				      .name = name};
}

static int parse_int(const char *v, long min, long max, int *ret)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || end == v || x < min || x > max)
		return -EINVAL;
	*ret = (int)x;
	return 0;
}

int bench_load_opt(struct bench_load_opts *o, const struct cli_opts *p, int id, char *msg,
		   size_t msgsize)
{
	int r = 0;
	switch (id) {
	case BENCH_O_RATE:
		if ((r = bench_parse_rate(p->value, &o->rate)) < 0)
			snprintf(msg, msgsize,
				 "--rate %s: expected requests per second, N or N/s, above 0 and "
				 "at most %.0f",
				 p->value, BENCH_LOAD_MAX_RATE);
		break;
	case BENCH_O_CONNS:
		if ((r = parse_int(p->value, 1, BENCH_LOAD_MAX_CONNS, &o->conns)) < 0)
			snprintf(msg, msgsize, "--connections %s: expected 1 to %d", p->value,
				 BENCH_LOAD_MAX_CONNS);
		break;
	case BENCH_O_ROUNDS:
		if ((r = parse_int(p->value, 1, BENCH_LOAD_MAX_ROUNDS, &o->rounds)) < 0)
			snprintf(msg, msgsize, "--rounds %s: expected 1 to %d", p->value,
				 BENCH_LOAD_MAX_ROUNDS);
		break;
	case BENCH_O_CPU:
		if ((r = parse_int(p->value, 0, CPU_SETSIZE - 1, &o->cpu)) < 0)
			snprintf(msg, msgsize, "--cpu %s: expected a CPU number", p->value);
		break;
	case BENCH_O_DURATION:
	case BENCH_O_WARMUP:
	case BENCH_O_TIMEOUT: {
		double *dst = id == BENCH_O_DURATION ? &o->duration
			      : id == BENCH_O_WARMUP ? &o->warmup
						     : &o->timeout;
		const char *flag = id == BENCH_O_DURATION ? "duration"
				   : id == BENCH_O_WARMUP ? "warmup"
							  : "timeout";
		r = bench_parse_seconds(p->value, dst);
		if (r == 0 && id != BENCH_O_WARMUP && *dst < 0.001)
			r = -EINVAL;
		if (r < 0)
			snprintf(msg, msgsize,
				 "--%s %s: expected a duration such as 10s, 500ms or 2m, %sat "
				 "most %.0f s",
				 flag, p->value, id == BENCH_O_WARMUP ? "" : "above 0 and ",
				 BENCH_LOAD_MAX_SECONDS);
		break;
	}
	case BENCH_O_NEWCONN:
		o->new_conn = cli_opts_bool(p);
		break;
	case BENCH_O_NAME:
		o->name = p->value;
		if (!*o->name || strlen(o->name) > 64) {
			r = -EINVAL;
			snprintf(msg, msgsize, "--name: expected 1 to 64 characters");
		}
		break;
	case BENCH_O_NETNS_CLIENT:
		o->netns_client = cli_opts_bool(p);
		break;
	case BENCH_O_FROM_CONTAINER:
		o->from_container = p->value;
		if (!*o->from_container || strlen(o->from_container) > 128) {
			r = -EINVAL;
			snprintf(msg, msgsize, "--from-container: expected a container name or id");
		}
		break;
	case BENCH_O_OUT:
		o->outfile = p->value;
		break;
	case BENCH_O_JSON:
		o->json = cli_opts_bool(p);
		break;
	case BENCH_O_QUIET:
		o->quiet = cli_opts_bool(p);
		break;
	default:
		return 0;
	}
	return r < 0 ? r : 1;
}

/* ---- the schedule ---- */

int64_t bench_sched_due(const struct bench_sched *s, uint64_t k)
{
	return s->t0 + (int64_t)((double)k * 1e9 / s->rate);
}

void bench_sched_idle(struct bench_sched *s, struct bench_slot *slot, int64_t now)
{
	slot->t_idle = now;
	if (s->nidle < s->cap)
		s->idle[s->nidle++] = slot;
}

void bench_sched_forget(struct bench_sched *s, struct bench_slot *slot)
{
	for (int i = 0; i < s->nidle; i++)
		if (s->idle[i] == slot) {
			s->idle[i] = s->idle[--s->nidle];
			return;
		}
}

void bench_sched_dispatch(struct bench_sched *s, int64_t now, int64_t measure_from,
			  void (*start)(struct bench_slot *slot, int64_t now, void *arg), void *arg)
{
	while (s->nidle > 0) {
		int64_t d = bench_sched_due(s, s->next_k);
		if (d > now) {
			if (s->timer) {
				struct timeval tv = {.tv_sec = (d - now) / 1000000000,
						     .tv_usec = ((d - now) % 1000000000) / 1000};
				evtimer_add(s->timer, &tv);
			}
			return;
		}
		struct bench_slot *slot = s->idle[--s->nidle];
		if (d < slot->t_idle && d >= measure_from)
			s->waited++; /* due while every connection was busy */
		s->next_k++;
		slot->t_start = d;
		start(slot, now, arg);
	}
}

/* ---- the rounds ---- */

int bench_rounds_init(struct bench_rounds *r, int n)
{
	*r = (struct bench_rounds){.n = n};
	r->hist = calloc((size_t)n, sizeof(*r->hist));
	r->req = calloc((size_t)n, sizeof(*r->req));
	r->lag = bench_hist_new();
	if (!r->hist || !r->req || !r->lag)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		if (!(r->hist[i] = bench_hist_new()))
			return -ENOMEM;
	return 0;
}

void bench_rounds_free(struct bench_rounds *r)
{
	if (r->hist)
		for (int i = 0; i < r->n; i++)
			bench_hist_free(r->hist[i]);
	free(r->hist);
	free(r->req);
	bench_hist_free(r->lag);
	*r = (struct bench_rounds){0};
}

void bench_rounds_window(struct bench_rounds *r, int64_t t0, double warmup, double duration)
{
	r->from = t0 + (int64_t)(warmup * 1e9);
	r->end = r->from + (int64_t)(duration * 1e9);
}

int bench_rounds_index(const struct bench_rounds *r, int64_t t)
{
	if (t <= r->from || r->end <= r->from)
		return 0;
	int i = (int)((t - r->from) * r->n / (r->end - r->from));
	return i >= r->n ? r->n - 1 : i;
}

int bench_rounds_answer(struct bench_rounds *r, int64_t origin, int64_t now)
{
	if (!bench_rounds_measuring(r, origin) || now >= r->end)
		return 0;
	int i = bench_rounds_index(r, now);
	bench_hist_record_ns(r->hist[i], now - origin);
	r->req[i]++;
	return 1;
}

void bench_rounds_sent(struct bench_rounds *r, const struct bench_slot *slot, double rate,
		       int64_t now)
{
	if (!bench_rounds_measuring(r, slot->t_start))
		return;
	r->sent++;
	if (rate > 0) {
		int64_t ready = slot->t_start > slot->t_idle ? slot->t_start : slot->t_idle;
		bench_hist_record_ns(r->lag, now - ready);
	}
}

/* ---- the run ---- */

struct event_base *bench_event_base(void)
{
	struct event_config *cfg = event_config_new();
	if (!cfg)
		return NULL;
	/* timerfd-backed timers: the schedule needs better than epoll's 1 ms */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

static int64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

int bench_loop_run(struct event_base *base, volatile bool *stopping, int64_t measure_from,
		   double *ret_cpu)
{
	/* Ctrl-C ends the run through the caller's teardown (a client
	 * namespace, a cgroup to leave), not in the middle of it */
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	interrupted = 0;
	int64_t cpu0 = 0, wall0 = 0;
	int rc = 0;
	/* the CPU is measured over the measured window only */
	while (!*stopping && !interrupted) {
		if (!wall0 && mono_ns() >= measure_from) {
			cpu0 = cpu_ns();
			wall0 = mono_ns();
		}
		struct timeval one = {.tv_sec = 0, .tv_usec = 200000};
		event_base_loopexit(base, &one);
		if (event_base_dispatch(base) < 0) {
			rc = -EIO;
			break;
		}
	}
	*ret_cpu = wall0 ? (double)(cpu_ns() - cpu0) / (double)(mono_ns() - wall0) : 0;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (rc == 0 && interrupted)
		rc = -EINTR;
	return rc;
}

int bench_raise_nofile(int conns, struct shoal_err *err)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conns + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return 0;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		return shoal_err_set(err, EMFILE,
				     "--connections %d: the open-file limit is %llu; raise it "
				     "(ulimit -n)",
				     conns, (unsigned long long)rl.rlim_cur);
	return 0;
}

static json_t *round_json(const struct bench_rounds *r, int i)
{
	double secs = (double)(r->end - r->from) / 1e9 / r->n;
	return json_pack("{s:I, s:f, s:I, s:I, s:I}", "requests", (json_int_t)r->req[i], "per_sec",
			 (double)r->req[i] / secs, "p50_us",
			 (json_int_t)bench_hist_percentile(r->hist[i], 50), "p99_us",
			 (json_int_t)bench_hist_percentile(r->hist[i], 99), "max_us",
			 (json_int_t)r->hist[i]->max_us);
}

uint64_t bench_load_variant(struct bench_rounds *r, const struct bench_load_report *rep,
			    json_t *variant, json_t *warnings)
{
	struct bench_hist *all = bench_hist_new();
	json_t *rounds = json_array();
	uint64_t total = 0;
	for (int i = 0; i < r->n; i++) {
		if (all)
			bench_hist_merge(all, r->hist[i]);
		total += r->req[i];
		json_array_append_new(rounds, round_json(r, i));
	}
	double secs = (double)(r->end - r->from) / 1e9;
	json_t *errors = json_object();
	uint64_t nerr = 0;
	for (int k = 0; k < rep->nkinds; k++) {
		json_object_set_new(errors, rep->err_names[k],
				    json_integer((json_int_t)rep->errors[k]));
		if (!(rep->not_errors & (UINT64_C(1) << k)))
			nerr += rep->errors[k];
	}
	json_object_set_new(variant, "name", json_string(rep->name));
	json_object_set_new(variant, "requests", json_integer((json_int_t)total));
	json_object_set_new(variant, "per_sec", json_real(secs > 0 ? (double)total / secs : 0));
	if (all) {
		json_object_set_new(variant, "latency_us", bench_hist_summary(all));
		json_object_set_new(variant, "curve", bench_hist_curve(all));
	}
	json_object_set_new(variant, "errors", errors);
	json_object_set_new(variant, "rounds", rounds);
	json_object_set_new(variant, "generator_cpu", json_real(rep->cpu));
	json_object_set_new(
		variant, "per_cpu_second",
		json_real(rep->cpu > 0 && secs > 0 ? (double)total / secs / rep->cpu : 0));
	bench_hist_free(all);
	if (rep->rate > 0) {
		uint64_t scheduled =
			r->end > r->from ? (uint64_t)((double)(r->end - r->from) * rep->rate / 1e9)
					 : 0;
		uint64_t waited = rep->sched ? rep->sched->waited : 0;
		json_object_set_new(variant, "schedule",
				    json_pack("{s:f, s:I, s:I, s:I, s:o}", "rate", rep->rate,
					      "scheduled", (json_int_t)scheduled, "sent",
					      (json_int_t)r->sent, "waited_for_connection",
					      (json_int_t)waited, "send_lag_us",
					      bench_hist_summary(r->lag)));
		if (r->sent + r->sent / 100 + 1 < scheduled)
			json_array_append_new(
				warnings,
				json_sprintf("%s: sent %llu of the %llu requests scheduled at "
					     "%.0f/s: the target (or %d connections) could not "
					     "keep up; latency counts the wait",
					     rep->name, (unsigned long long)r->sent,
					     (unsigned long long)scheduled, rep->rate, rep->conns));
		uint64_t lag99 = bench_hist_percentile(r->lag, 99);
		if (lag99 > LAG_WARN_US)
			json_array_append_new(
				warnings,
				json_sprintf("%s: the generator fell behind its send schedule: 1%% "
					     "of requests left %.1f ms or more after they were due "
					     "with a connection free (the figures include it)",
					     rep->name, (double)lag99 / 1000));
		if (waited)
			json_object_set_new(variant, "waited_note",
					    json_string("requests due while every connection was "
							"busy; their latency counts from when they "
							"were due"));
	}
	if (rep->cpu > CPU_WARN)
		json_array_append_new(
			warnings,
			json_sprintf("%s: the load generator used %.0f%% of a CPU: it may be the "
				     "bottleneck, and the figures measure it as much as the target",
				     rep->name, rep->cpu * 100));
	if (nerr)
		json_array_append_new(
			warnings,
			json_sprintf("%s: %llu requests failed%s%s", rep->name,
				     (unsigned long long)nerr, rep->first_errno ? ", first: " : "",
				     rep->first_errno ? strerror(rep->first_errno) : ""));
	return total;
}

void bench_load_progress(const struct bench_rounds *r, const char *name, int64_t now, int64_t *last)
{
	if (now - *last < 1000000000)
		return;
	*last = now;
	if (now < r->from) {
		fprintf(stderr, "\r\033[Kwarming up, %.0f s left", (double)(r->from - now) / 1e9);
		return;
	}
	int i = bench_rounds_index(r, now);
	double el = (double)(now - r->from) / 1e9;
	uint64_t req = 0;
	for (int k = 0; k <= i; k++)
		req += r->req[k];
	fprintf(stderr, "\r\033[K%s: round %d/%d, %.0f s left, %.0f requests/s", name, i + 1, r->n,
		(double)(r->end - now) / 1e9, el > 0 ? (double)req / el : 0);
}

int bench_probe_tcp(const struct sockaddr_storage *to, socklen_t tolen, double timeout,
		    const char *what, struct shoal_err *err)
{
	_cleanup_close_ int fd =
		socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return shoal_err_errno(err, errno, "socket");
	int r = connect(fd, (const struct sockaddr *)to, tolen) < 0 ? -errno : 0;
	if (r == -EINPROGRESS) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int t = (int)(timeout * 1000);
		int n = poll(&pfd, 1, t > 0 ? t : 1);
		if (n == 0) {
			r = -ETIMEDOUT;
		} else {
			int e = 0;
			socklen_t len = sizeof(e);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
			r = -e;
		}
	}
	if (r < 0)
		return shoal_err_errno(err, -r, "cannot connect to %s", what);
	return 0;
}

int bench_service_port(struct cli_ctx *ctx, const char *name, const char *proto, int *ret_port,
		       struct shoal_err *err)
{
	_cleanup_json_ json_t *svc = cli_service_get(ctx, name, err);
	if (!svc)
		return -err->code;
	size_t i;
	json_t *pt;
	json_array_foreach(cli_json_get(svc, "Endpoint.Ports"), i, pt)
	{
		const char *pr = cli_json_str(pt, "Protocol");
		json_int_t port = cli_json_int(pt, "PublishedPort");
		if (port > 0 && port < 65536 && strcmp(pr ? pr : "tcp", proto) == 0) {
			*ret_port = (int)port;
			return 0;
		}
	}
	return shoal_err_set(err, ENOENT,
			     "service %s publishes no %s port; publish one (--publish) or give "
			     "the target",
			     name, proto);
}

int bench_load_output(json_t *out, const struct bench_load_opts *o, void (*print)(json_t *))
{
	if (o->outfile) {
		_cleanup_free_ char *s = json_dumps(out, JSON_INDENT(2));
		int r = s ? write_file_atomic(o->outfile, s, strlen(s), 0644) : -ENOMEM;
		if (r < 0) {
			fprintf(stderr, "Error: writing %s: %s\n", o->outfile, strerror(-r));
			return 1;
		}
	}
	if (o->json) {
		_cleanup_free_ char *s = json_dumps(out, JSON_INDENT(2));
		printf("%s\n", s ? s : "{}");
	} else {
		print(out);
	}
	return 0;
}

/* ---- echo payloads ---- */

static inline uint8_t payload_byte(uint64_t seq, size_t i)
{
	if (i < 8)
		return (uint8_t)(seq >> (8 * i));
	/* a byte that differs between neighbours and between requests, and
	 * wraps at no power of two a shift could hide behind */
	return (uint8_t)((i * 131 + (i >> 8) * 7 + seq * 29 + 17) % 251);
}

void bench_payload_fill(uint8_t *buf, uint64_t seq, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = payload_byte(seq, off + i);
}

long bench_payload_check(const uint8_t *buf, uint64_t seq, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != payload_byte(seq, off + i))
			return (long)i;
	return -1;
}

uint64_t bench_payload_seq(const uint8_t *buf, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < 8 && i < n; i++)
		s |= (uint64_t)buf[i] << (8 * i);
	return s;
}

int bench_parse_hostport(const char *s, char *host, size_t hostsize, int *ret_port, char *msg,
			 size_t msgsize)
{
	const char *colon;
	size_t hl;
	if (*s == '[') {
		const char *e = strchr(s, ']');
		if (!e || e[1] != ':') {
			snprintf(msg, msgsize, "%s: expected [IPv6]:PORT", s);
			return -EINVAL;
		}
		hl = (size_t)(e - s - 1);
		s++;
		colon = e + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon) {
			snprintf(msg, msgsize, "%s: expected ADDR:PORT (an IPv6 address in [])", s);
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostsize) {
		snprintf(msg, msgsize, "%s: %s", s, hl ? "address too long" : "no address");
		return -EINVAL;
	}
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535) {
		snprintf(msg, msgsize, "%s: the port must be 1 to 65535", colon + 1);
		return -EINVAL;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	*ret_port = (int)port;
	return 0;
}
