// SPDX-License-Identifier: Apache-2.0
/* `shoal bench policy --api-target`: create to enforcement through a running
 * shoald. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/bench-load.h"
#include "bench/bench-policy-internal.h"
#include "bench/bench-results.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"
/* ---- create to enforcement through a running shoald ----
 *
 * --api-target ADDR:PORT --api-service NAME: the path a user takes, from
 * POST /policies on the agent SHOAL_HOST names (parse, the fit check, the
 * store, the compile on the agent's compile thread, the map update) to the
 * data plane of a container of service NAME serving UDP at ADDR:PORT
 * (answering each datagram with text that ends in it, as the tests' UDP
 * echo does). Run where ADDR is reachable. Per round, from no policy: a
 * create isolating the service (the first datagram dropped), then one
 * allowing ADDR's port again (the first datagram answered); both removed.
 *
 * A change applies to established flows too (bpf/lib/policy.h): a datagram
 * let in before the isolating create whose answer leaves after it is
 * judged again and its answer dropped. So the isolating create waits until
 * the prober's own datagrams are answered, not for a fixed head start: on
 * a loaded machine the echo's answers can lag by tens of milliseconds. */

#define PB_API_DENY	 "bench-api-deny"
#define PB_API_ALLOW	 "bench-api-allow"
#define PB_API_QUIET_NS	 300000000LL /* no answer for this long: the drop holds */
#define PB_API_EVERY_NS	 1000000LL
#define PB_API_MAX_SENDS (PB_PROBE_GIVEUP_NS / PB_API_EVERY_NS + 16)
/* sockets kept open for their answer: a second's worth, since a container's
 * echo on a loaded machine can lag by far more than the local prober's */
#define PB_API_RING 4096

/* An answer's stamp: the decimal number its text ends with. */
static int64_t api_stamp(const char *buf, ssize_t n)
{
	char tmp[128];
	if (n <= 0)
		return 0;
	if (n >= (ssize_t)sizeof(tmp))
		n = sizeof(tmp) - 1;
	memcpy(tmp, buf, (size_t)n);
	tmp[n] = '\0';
	char *sp = strrchr(tmp, ' ');
	return strtoll(sp ? sp + 1 : tmp, NULL, 10);
}

/* The prober of one round, in a child: one datagram from a new socket
 * every PB_API_EVERY_NS, paced by a timer (it shares the machine with the
 * echo it measures: a prober spinning between sends slows the echo's
 * answers down, on a small machine by tens of milliseconds). It reports
 * ready on ready_fd once the round may start: for a deny round once an
 * answer came back (the echo answers the prober's own datagrams before the
 * create, whatever its lag); for an allow round at once. It closes ready_fd
 * without a word when a deny round's first answer does not come within
 * PB_PROBE_GIVEUP_NS (then no create is made).
 *
 * Results on wfd. deny: the send time of the first datagram after the last
 * one answered (-1: none was answered before the create, so nothing was
 * allowed to deny). allow: the send time of the first one answered, stamped
 * after the create started (-1: one was answered before, so the flow was not
 * denied). 0: gave up. */
void pb_api_prober(const struct pb_api *a, bool deny, int wfd, int ready_fd, int t0_fd)
{
	int *ring = calloc(PB_API_RING, sizeof(*ring));
	int64_t *sends = calloc(PB_API_MAX_SENDS, sizeof(*sends));
	struct itimerspec its = {.it_interval = {0, PB_API_EVERY_NS},
				 .it_value = {0, PB_API_EVERY_NS}};
	struct epoll_event tev = {.events = EPOLLIN, .data.u32 = PB_API_RING};
	struct epoll_event zev = {.events = EPOLLIN, .data.u32 = PB_API_RING + 1};
	struct rlimit rl;
	size_t n_sends = 0;
	if (!ring || !sends)
		_exit(2);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < PB_API_RING + 64) {
		rl.rlim_cur = rl.rlim_max < PB_API_RING + 64 ? rl.rlim_max : PB_API_RING + 64;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 0; i < PB_API_RING; i++)
		ring[i] = -1;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) < 0)
		_exit(2);
	fcntl(t0_fd, F_SETFL, O_NONBLOCK);
	/* the create's start, as soon as the parent has it (EOF: it never
	 * came; the round ends by its give-up) */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, t0_fd, &zev) < 0)
		_exit(2);
	if (!deny) {
		(void)write(ready_fd, "r", 1);
		close(ready_fd);
		ready_fd = -1;
	}
	int64_t start = mono_ns(), t0 = 0, got = 0, last = 0, last_seen = 0;
	int64_t stats[3] = {0}; /* answers before the create, after it; datagrams sent */
	bool before = false;
	for (unsigned k = 0; !got; k++) {
		int64_t now = mono_ns();
		if (now - (t0 ? t0 : start) > PB_PROBE_GIVEUP_NS) {
			/* a deny round with no answer to start from: -1 */
			if (ready_fd >= 0)
				got = -1;
			break;
		}
		if (deny && t0 && now - (last_seen > t0 ? last_seen : t0) > PB_API_QUIET_NS) {
			/* answers stopped: the first datagram sent after the
			 * last answered one was the first dropped */
			got = -1;
			if (before || last >= t0)
				for (size_t i = 0; i < n_sends; i++)
					if (sends[i] > last && sends[i] >= t0) {
						got = sends[i];
						break;
					}
			break;
		}
		int i = (int)(k % PB_API_RING);
		if (ring[i] >= 0)
			close(ring[i]);
		ring[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (ring[i] >= 0) {
			char msg[32];
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
			int len = snprintf(msg, sizeof(msg), "%lld", (long long)now);
			(void)epoll_ctl(ep, EPOLL_CTL_ADD, ring[i], &ev);
			stats[2]++;
			(void)sendto(ring[i], msg, (size_t)len, 0, (const struct sockaddr *)&a->dst,
				     sizeof(a->dst));
			if (t0 && now >= t0 && n_sends < PB_API_MAX_SENDS)
				sends[n_sends++] = now;
		}
		/* answers until the timer's next tick */
		for (bool tick = false; !tick && !got;) {
			struct epoll_event evs[64];
			int ne = epoll_wait(ep, evs, 64, 100);
			if (ne < 0 && errno != EINTR)
				_exit(2);
			if (ne == 0)
				break; /* the give-up is looked at above */
			for (int e = 0; e < ne && !got; e++) {
				int j = (int)evs[e].data.u32;
				char buf[128];
				ssize_t n;
				if (j == PB_API_RING) {
					uint64_t ticks;
					(void)read(tfd, &ticks, sizeof(ticks));
					tick = true;
					continue;
				}
				if (j == PB_API_RING + 1) {
					if (read(t0_fd, &t0, sizeof(t0)) != sizeof(t0))
						t0 = 0;
					(void)epoll_ctl(ep, EPOLL_CTL_DEL, t0_fd, NULL);
					continue;
				}
				if (ring[j] < 0 || (n = recv(ring[j], buf, sizeof(buf), 0)) <= 0)
					continue;
				int64_t t = api_stamp(buf, n);
				close(ring[j]);
				ring[j] = -1;
				last_seen = mono_ns();
				stats[!t0 || t < t0 ? 0 : 1]++;
				if (ready_fd >= 0) {
					/* answered: the create may come */
					(void)write(ready_fd, "r", 1);
					close(ready_fd);
					ready_fd = -1;
				}
				if (!t0 || t < t0) {
					before = true;
					if (!deny && t0)
						got = -1;
					continue;
				}
				if (t > last)
					last = t;
				if (!deny)
					got = t;
			}
		}
	}
	(void)write(wfd, &got, sizeof(got));
	(void)write(wfd, stats, sizeof(stats));
	_exit(0);
}

static int api_call(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		    int *ret_status, struct shoal_err *err)
{
	json_t *resp = NULL;
	int status = 0;
	int r = cli_call_json(ctx, method, path, body, &status, &resp, err);
	json_decref(resp);
	if (ret_status)
		*ret_status = status;
	return r;
}

static void api_remove(struct cli_ctx *ctx)
{
	struct shoal_err e = {0};
	int st;
	/* the isolation first: every state on the way answers */
	(void)api_call(ctx, "DELETE", "/policies/" PB_API_DENY, NULL, &st, &e);
	(void)api_call(ctx, "DELETE", "/policies/" PB_API_ALLOW, NULL, &st, &e);
}

/* One datagram answered within 100 ms. */
static bool api_answered(const struct pb_api *a)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	char buf[128];
	if (fd < 0 || sendto(fd, "1", 1, 0, (const struct sockaddr *)&a->dst, sizeof(a->dst)) < 0)
		return false;
	return poll(&pf, 1, 100) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

/* One create timed: the prober started, then POST /policies/create. */
static int api_round(struct cli_ctx *ctx, const struct pb_api *a, bool deny, int64_t *ret_ns,
		     struct shoal_err *err)
{
	int pfd[2], rfd[2], tfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return shoal_err_errno(err, -errno, "pipe");
	if (pipe2(rfd, O_CLOEXEC) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return shoal_err_errno(err, -errno, "pipe");
	}
	if (pipe2(tfd, O_CLOEXEC) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		close(rfd[0]);
		close(rfd[1]);
		return shoal_err_errno(err, -errno, "pipe");
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		close(rfd[0]);
		close(tfd[1]);
		pb_api_prober(a, deny, pfd[1], rfd[1], tfd[0]);
	}
	close(pfd[1]);
	close(rfd[1]);
	close(tfd[0]);
	if (pid < 0) {
		int e = -errno;
		close(pfd[0]);
		close(rfd[0]);
		close(tfd[1]);
		return shoal_err_errno(err, e, "fork");
	}
	/* a deny round starts once the prober's own datagrams are answered;
	 * nothing from it: no create (its report says what it saw) */
	char c;
	bool started = read(rfd[0], &c, 1) == 1;
	close(rfd[0]);
	if (!deny) {
		/* datagrams sent while the isolation holds, none answered */
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	json_t *body =
		deny ? json_pack("{s:s, s:{s:s}, s:[s], s:[]}", "Name", PB_API_DENY, "Selector",
				 "Service", a->service, "Types", "Ingress", "Ingress")
		     : json_pack("{s:s, s:{s:s}, s:[{s:[{s:i, s:s}]}]}", "Name", PB_API_ALLOW,
				 "Selector", "Service", a->service, "Ingress", "Ports", "Port",
				 a->port, "Protocol", "udp");
	int64_t t0 = mono_ns();
	if (started)
		(void)write(tfd[1], &t0, sizeof(t0));
	close(tfd[1]);
	int status = 0;
	int r = !body	  ? shoal_err_set(err, -ENOMEM, "out of memory")
		: started ? api_call(ctx, "POST", "/policies/create", body, &status, err)
			  : 0;
	json_decref(body);
	int64_t got = 0, stats[3] = {0};
	if (read(pfd[0], &got, sizeof(got)) != sizeof(got) ||
	    read(pfd[0], stats, sizeof(stats)) != sizeof(stats))
		got = 0;
	close(pfd[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if (r < 0)
		return shoal_err_wrap(err, "POST /policies/create (%s)", deny ? "deny" : "allow");
	char seen[128];
	snprintf(seen, sizeof(seen),
		 " (%lld datagrams sent, %lld answered before the create, "
		 "%lld after)",
		 (long long)stats[2], (long long)stats[0], (long long)stats[1]);
	if (!started)
		return shoal_err_set(
			err, -EHOSTUNREACH,
			"deny: none of the prober's datagrams was answered within %lld "
			"ms, so no policy was created: %s:%d must answer while no "
			"policy selects %s%s",
			PB_PROBE_GIVEUP_NS / 1000000, inet_ntoa(a->dst.sin_addr), a->port,
			a->service, seen);
	if (got == 0)
		return shoal_err_set(err, -ETIMEDOUT, "%s: no %s within %lld ms of the create%s",
				     deny ? "deny" : "allow",
				     deny ? "datagram dropped" : "datagram answered",
				     PB_PROBE_GIVEUP_NS / 1000000, seen);
	if (got < 0)
		return shoal_err_set(err, -EPROTO,
				     deny ? "deny: no datagram was answered before the create: "
					    "%s:%d must answer while no policy selects %s%s"
					  : "allow: a datagram was answered before the create: the "
					    "flow to %s:%d was not denied by %s%s",
				     inet_ntoa(a->dst.sin_addr), a->port,
				     deny ? a->service : PB_API_DENY, seen);
	*ret_ns = got - t0;
	return 0;
}

json_t *pb_api_summary(struct bench_samples *s)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:i}", "p50", (double)bench_quantile(s, 0.5) / 1e6,
			 "p99", (double)bench_quantile(s, 0.99) / 1e6, "min",
			 (double)bench_quantile(s, 0) / 1e6, "max",
			 (double)bench_quantile(s, 1) / 1e6, "rounds", (int)s->n);
}

int pb_api_run(struct cli_ctx *ctx, const struct pb *b, const struct pb_api *a, json_t *out,
	       struct shoal_err *err)
{
	struct bench_samples deny = {0}, allow = {0};
	int r = 0;
	api_remove(ctx);
	for (int round = 0; round < b->o.enforce_rounds && !pb_interrupted && r >= 0; round++) {
		int64_t ns = 0;
		/* no policy: answered again, three times in a row */
		int up = 0;
		for (int i = 0; i < 100 && up < 3 && !pb_interrupted; i++)
			up = api_answered(a) ? up + 1 : 0;
		if (up < 3) {
			r = shoal_err_set(err, -EHOSTUNREACH,
					  "%s:%d does not answer with no bench policy in force",
					  inet_ntoa(a->dst.sin_addr), a->port);
			break;
		}
		if ((r = api_round(ctx, a, true, &ns, err)) < 0) {
			shoal_err_wrap(err, "round %d", round + 1);
			break;
		}
		bench_samples_add(&deny, ns);
		if ((r = api_round(ctx, a, false, &ns, err)) < 0) {
			shoal_err_wrap(err, "round %d", round + 1);
			break;
		}
		bench_samples_add(&allow, ns);
		api_remove(ctx);
		if (!b->o.quiet)
			fprintf(stderr, "\rapi round %d of %d", round + 1, b->o.enforce_rounds);
	}
	if (!b->o.quiet)
		fprintf(stderr, "\n");
	api_remove(ctx);
	if (pb_interrupted && r >= 0)
		r = shoal_err_set(err, -EINTR, "pb_interrupted");
	if (r >= 0) {
		json_t *en = json_pack("{s:o, s:o}", "deny", pb_api_summary(&deny), "allow",
				       pb_api_summary(&allow));
		json_object_set_new(out, "api_enforce_ms", en);
		for (int i = 0; i < 2; i++) {
			json_t *x = json_object_get(en, i ? "allow" : "deny");
			if (json_number_value(json_object_get(x, "p99")) > PB_TARGET_ENFORCE_MS)
				json_array_append_new(
					json_object_get(out, "warnings"),
					json_sprintf("%s through the API: p99 above the %.0f ms "
						     "target",
						     i ? "allow" : "deny", PB_TARGET_ENFORCE_MS));
		}
	}
	bench_samples_free(&deny);
	bench_samples_free(&allow);
	return r;
}

void pb_api_print(json_t *out)
{
	json_t *en = json_object_get(out, "api_enforce_ms");
	printf("Policy create through the API (POST /policies/create on a running shoald) to "
	       "enforcement at a container\n");
	printf("%-28s %7s %9s %9s %9s %12s\n", "CREATE", "ROUNDS", "P50 MS", "P99 MS", "MAX MS",
	       "TARGET P99");
	for (int i = 0; i < 2; i++) {
		json_t *x = json_object_get(en, i ? "allow" : "deny");
		double p99 = json_number_value(json_object_get(x, "p99"));
		printf("%-28s %7d %9.3f %9.3f %9.3f %12s\n",
		       i ? "allow: first answered" : "isolate: first dropped",
		       (int)json_integer_value(json_object_get(x, "rounds")),
		       json_number_value(json_object_get(x, "p50")), p99,
		       json_number_value(json_object_get(x, "max")),
		       p99 <= PB_TARGET_ENFORCE_MS ? "<= 100 ok" : "<= 100 MISSED");
	}
	json_t *w;
	size_t i;
	json_array_foreach(json_object_get(out, "warnings"), i, w)
		fprintf(stderr, "warning: %s\n", json_string_value(w));
}
