// SPDX-License-Identifier: Apache-2.0
/* `shoal bench http`'s output: the table of a result, and wrk run beside it on
 * the same core for comparison (--vs-wrk). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/bench-http-internal.h"
#include "bench/bench-load.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"

int bench_load_pin_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

static double wrk_value(const char *out, const char *key)
{
	const char *p = strstr(out, key);
	return p ? strtod(p + strlen(key), NULL) : 0;
}

/* Runs `wrk -t1 -cC -dD --latency URL` pinned to the generator's CPU. */
int bench_http_wrk(const struct bench_http_wrk_opts *b, const char *url, json_t *out,
		   struct shoal_err *err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return shoal_err_errno(err, errno, "pipe");
	char c_arg[32], d_arg[32];
	snprintf(c_arg, sizeof(c_arg), "-c%d", b->conns);
	snprintf(d_arg, sizeof(d_arg), "-d%ds", (int)ceil(b->duration + b->warmup));
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return shoal_err_errno(err, errno, "fork");
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		if (b->cpu >= 0)
			bench_load_pin_cpu(b->cpu);
		execlp("wrk", "wrk", "-t1", c_arg, d_arg, "--latency", url, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char buf[8192];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(buf) - 1 && (k = read(pfd[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	close(pfd[0]);
	int st = 0;
	struct rusage ru = {0};
	wait4(pid, &st, 0, &ru);
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 127)
		return shoal_err_set(err, ENOENT,
				     "--vs-wrk: wrk not found (Debian: apt-get install wrk)");
	double rps = wrk_value(buf, "Requests/sec:");
	if (WEXITSTATUS(st) != 0 || rps <= 0)
		return shoal_err_set(err, EIO, "--vs-wrk: wrk failed: %s", buf);
	/* requests per CPU second: what each would sustain were it the bottleneck */
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	double secs = ceil(b->duration + b->warmup);
	json_object_set_new(out, "wrk",
			    json_pack("{s:f, s:f, s:f, s:s}", "per_sec", rps, "cpu", cpu / secs,
				      "per_cpu_second", cpu > 0 ? rps * secs / cpu : 0, "output",
				      buf));
	return 0;
}

void bench_load_print(json_t *out)
{
	json_t *cfg = json_object_get(out, "config");
	size_t i;
	json_t *v;
	const char *target = json_string_value(json_object_get(cfg, "url"));
	if (!target)
		target = json_string_value(json_object_get(cfg, "target"));
	printf("\nshoal bench %s: %s, %s, %lld connections%s, %.1f s x %lld rounds after "
	       "%.1f s warm-up\n",
	       json_string_value(json_object_get(out, "suite")), target,
	       json_string_value(json_object_get(cfg, "mode")),
	       (long long)json_integer_value(json_object_get(cfg, "connections")),
	       json_is_true(json_object_get(cfg, "new_connections")) ? " (new per request)" : "",
	       json_real_value(json_object_get(cfg, "duration_s")),
	       (long long)json_integer_value(json_object_get(cfg, "rounds")),
	       json_real_value(json_object_get(cfg, "warmup_s")));
	json_t *client = json_object_get(cfg, "client");
	const char *kind = json_string_value(json_object_get(client, "kind"));
	if (kind && strcmp(kind, "netns") == 0)
		printf("  from a client namespace: %s, via %s on this host\n",
		       json_string_value(json_object_get(client, "address")),
		       json_string_value(json_object_get(client, "host_address")));
	else if (kind && strcmp(kind, "container") == 0)
		printf("  from container %s's network namespace (pid %lld)\n",
		       json_string_value(json_object_get(client, "container")),
		       (long long)json_integer_value(json_object_get(client, "pid")));
	json_array_foreach(json_object_get(out, "variants"), i, v)
	{
		json_t *l = json_object_get(v, "latency_us");
		printf("\n  %s: %.0f requests/s (%lld answered)\n",
		       json_string_value(json_object_get(v, "name")),
		       json_real_value(json_object_get(v, "per_sec")),
		       (long long)json_integer_value(json_object_get(v, "requests")));
		printf("  latency (us)  %9s %9s %9s %9s %9s %9s %9s\n", "p50", "p90", "p99",
		       "p99.9", "p99.99", "p99.999", "max");
		printf("                %9lld %9lld %9lld %9lld %9lld %9lld %9lld\n",
		       (long long)json_integer_value(json_object_get(l, "p50")),
		       (long long)json_integer_value(json_object_get(l, "p90")),
		       (long long)json_integer_value(json_object_get(l, "p99")),
		       (long long)json_integer_value(json_object_get(l, "p99_9")),
		       (long long)json_integer_value(json_object_get(l, "p99_99")),
		       (long long)json_integer_value(json_object_get(l, "p99_999")),
		       (long long)json_integer_value(json_object_get(l, "max")));
		size_t r;
		json_t *rd;
		printf("  rounds (req/s):");
		json_array_foreach(json_object_get(v, "rounds"), r, rd)
		{
			printf(" %.0f", json_real_value(json_object_get(rd, "per_sec")));
		}
		printf("\n  errors:");
		const char *k;
		json_t *n;
		bool any = false;
		json_object_foreach(json_object_get(v, "errors"), k, n)
		{
			if (json_integer_value(n)) {
				printf(" %s %lld", k, (long long)json_integer_value(n));
				any = true;
			}
		}
		printf("%s\n", any ? "" : " none");
		json_t *s = json_object_get(v, "schedule");
		if (s)
			printf("  schedule: %lld of %lld sent, %lld waited for a free connection; "
			       "send lag p99 %lld us\n",
			       (long long)json_integer_value(json_object_get(s, "sent")),
			       (long long)json_integer_value(json_object_get(s, "scheduled")),
			       (long long)json_integer_value(
				       json_object_get(s, "waited_for_connection")),
			       (long long)json_integer_value(
				       json_object_get(json_object_get(s, "send_lag_us"), "p99")));
		json_t *late = json_object_get(v, "late_replies");
		if (late)
			printf("  late replies (to datagrams already counted lost): %lld\n",
			       (long long)json_integer_value(late));
		printf("  generator CPU: %.0f%%\n",
		       json_real_value(json_object_get(v, "generator_cpu")) * 100);
	}
	json_t *w = json_object_get(out, "wrk");
	if (w) {
		json_t *v0 = json_array_get(json_object_get(out, "variants"), 0);
		double ours = json_real_value(json_object_get(v0, "per_sec"));
		double theirs = json_real_value(json_object_get(w, "per_sec"));
		double ocpu = json_real_value(json_object_get(v0, "generator_cpu"));
		double tcpu = json_real_value(json_object_get(w, "cpu"));
		printf("\n  wrk, same connections and CPU: %.0f requests/s; shoal bench http / wrk: "
		       "%.3f\n",
		       theirs, theirs > 0 ? ours / theirs : 0);
		printf("  CPU: shoal bench http %.0f%% (%.0f requests per CPU second), wrk %.0f%% "
		       "(%.0f)\n",
		       ocpu * 100, ocpu > 0 ? ours / ocpu : 0, tcpu * 100,
		       json_real_value(json_object_get(w, "per_cpu_second")));
	}
	json_array_foreach(json_object_get(out, "warnings"), i, v)
	{
		fprintf(stderr, "WARNING: %s\n", json_string_value(v));
	}
}
