// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/scheduler.h"

/* `shoal bench start`: create + start + wait of /bin/true through the API, with
 * --network none and with the default bridge; what a user types, `shoal run
 * --rm` and (with a docker client installed) `docker run --rm` against the same
 * agent, each a process of its own as from a shell; beside `runc run` of the
 * same root file system in the same run; then shoald's RSS idle and with many
 * containers running, and the per-container monitor's RSS. */

struct start_bench {
	struct cli_ctx *ctx;
	const char *image;
	int runs;
	int containers;
	bool json;
	bool quiet;
};

static int call(struct start_bench *b, const char *method, const char *path, json_t *body, int want,
		json_t **ret, struct shoal_err *err)
{
	int status = 0;
	json_t *j = NULL;
	int r = cli_call_json(b->ctx, method, path, body, &status, &j, err);
	if (r < 0)
		return r;
	if (want && status != want) {
		json_decref(j);
		return shoal_err_set(err, EIO, "%s %s: unexpected status %d", method, path, status);
	}
	if (ret)
		*ret = j;
	else
		json_decref(j);
	return 0;
}

static int create(struct start_bench *b, const char *net, const char *const *cmd, char *ret_id,
		  struct shoal_err *err)
{
	json_t *argv = json_array();
	for (size_t i = 0; cmd[i]; i++)
		json_array_append_new(argv, json_string(cmd[i]));
	json_t *body = json_pack("{s:s, s:o, s:{s:s}}", "Image", b->image, "Cmd", argv,
				 "HostConfig", "NetworkMode", net);
	json_t *resp = NULL;
	int r = call(b, "POST", "/containers/create", body, 201, &resp, err);
	json_decref(body);
	if (r < 0)
		return r;
	snprintf(ret_id, 65, "%s", json_string_value(json_object_get(resp, "Id")) ?: "");
	json_decref(resp);
	return 0;
}

static int one_start(struct start_bench *b, const char *net, int64_t *ret_ns, struct shoal_err *err)
{
	static const char *const cmd[] = {"/bin/true", NULL};
	char id[65], path[128];
	int64_t t0 = mono_ns();
	int r = create(b, net, cmd, id, err);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/containers/%s/start", id);
	if ((r = call(b, "POST", path, NULL, 204, NULL, err)) >= 0) {
		json_t *w = NULL;
		snprintf(path, sizeof(path), "/containers/%s/wait", id);
		if ((r = call(b, "POST", path, NULL, 200, &w, err)) >= 0) {
			*ret_ns = mono_ns() - t0;
			if (json_integer_value(json_object_get(w, "StatusCode")) != 0)
				r = shoal_err_set(err, EIO, "/bin/true exited with %lld",
						  (long long)json_integer_value(
							  json_object_get(w, "StatusCode")));
			json_decref(w);
		}
	}
	snprintf(path, sizeof(path), "/containers/%s?force=1", id);
	call(b, "DELETE", path, NULL, 0, NULL, NULL);
	return r;
}

static int bench_api(struct start_bench *b, const char *net, struct bench_samples *s,
		     struct shoal_err *err)
{
	int64_t ns;
	for (int i = 0; i < 3; i++) /* warm caches: page cache, seccomp file, bridge */
		if (one_start(b, net, &ns, err) < 0)
			return shoal_err_wrap(err, "network %s", net);
	for (int i = 0; i < b->runs; i++) {
		if (one_start(b, net, &ns, err) < 0)
			return shoal_err_wrap(err, "network %s", net);
		bench_samples_add(s, ns);
	}
	return 0;
}

/* ---- runc, for comparison ---- */

static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = NULL;
		if (asprintf(&p, "%s/%s", d, name) < 0)
			return NULL;
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

static int run_cmd(char *const argv[], bool quiet)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fd, 0);
		dup2(fd, 1);
		if (quiet)
			dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the command line: `shoal run --rm` and `docker run --rm` ---- */

/* argv run b->runs times after 3 warm-up runs, each timed from fork to exit. */
static int bench_cmd(struct start_bench *b, char *const argv[], struct bench_samples *s,
		     struct shoal_err *err)
{
	for (int i = 0; i < b->runs + 3; i++) {
		int64_t t0 = mono_ns();
		int rc = run_cmd(argv, false);
		int64_t dt = mono_ns() - t0;
		if (rc != 0)
			return shoal_err_set(err, EIO, "%s run --rm exited with %d", argv[0], rc);
		if (i >= 3)
			bench_samples_add(s, dt);
	}
	return 0;
}

static int bench_shoal_cli(struct start_bench *b, struct bench_samples *s, struct shoal_err *err)
{
	char self[4096], shoal[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return shoal_err_errno(err, errno, "reading /proc/self/exe");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(shoal, sizeof(shoal), "%s/shoal", self);
	char *argv[] = {shoal,
			(char *)"-H",
			(char *)b->ctx->host,
			(char *)"run",
			(char *)"--rm",
			(char *)"--network",
			(char *)"none",
			(char *)b->image,
			(char *)"true",
			NULL};
	return bench_cmd(b, argv, s, err);
}

static int bench_docker_cli(struct start_bench *b, const char *docker, struct bench_samples *s,
			    struct shoal_err *err)
{
	char *argv[] = {(char *)docker,	      (char *)"-H",
			(char *)b->ctx->host, (char *)"run",
			(char *)"--rm",	      (char *)"--network",
			(char *)"none",	      (char *)b->image,
			(char *)"true",	      NULL};
	return bench_cmd(b, argv, s, err);
}

/* A runc bundle whose rootfs is the image's layers copied in order. */
static int runc_bundle(struct start_bench *b, const char *dir, struct shoal_err *err)
{
	char path[256];
	json_t *img = NULL;
	_cleanup_free_ char *esc = cli_escape(b->image);
	snprintf(path, sizeof(path), "/images/%s/json", esc);
	int r = call(b, "GET", path, NULL, 200, &img, err);
	if (r < 0)
		return r;
	json_t *layers = json_object_get(json_object_get(img, "RootFS"), "Layers");
	char rootfs[4096];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	mkdir_p(rootfs, 0755);
	size_t i;
	json_t *l;
	json_array_foreach(layers, i, l)
	{
		char src[4096];
		snprintf(src, sizeof(src), "%s/.", json_string_value(l));
		char *argv[] = {(char *)"/bin/cp", (char *)"-a", src, rootfs, NULL};
		if (run_cmd(argv, true) != 0) {
			json_decref(img);
			return shoal_err_set(err, EIO, "copying layer %s for runc", src);
		}
	}
	json_decref(img);
	/* The same confinement shoal gives /bin/true: Docker's default capabilities,
	 * new pid, net, ipc, uts and mount namespaces, proc, dev and a read-only sys. */
	static const char caps[] =
		"[\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FSETID\",\"CAP_FOWNER\",\"CAP_MKNOD\","
		"\"CAP_NET_RAW\",\"CAP_SETGID\",\"CAP_SETUID\",\"CAP_SETFCAP\",\"CAP_SETPCAP\","
		"\"CAP_NET_BIND_SERVICE\",\"CAP_SYS_CHROOT\",\"CAP_KILL\",\"CAP_AUDIT_WRITE\"]";
	char text[4096];
	snprintf(text, sizeof(text),
		 "{\"ociVersion\":\"1.0.2\","
		 "\"process\":{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0},"
		 "\"args\":[\"/bin/true\"],\"env\":[\"PATH=/bin\"],\"cwd\":\"/\","
		 "\"capabilities\":{\"bounding\":%s,\"effective\":%s,\"permitted\":%s},"
		 "\"noNewPrivileges\":true},"
		 "\"root\":{\"path\":\"rootfs\",\"readonly\":false},\"hostname\":\"bench\","
		 "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
		 "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
		 "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
		 "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\","
		 "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]}],"
		 "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},"
		 "{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"}],"
		 "\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"]}}",
		 caps, caps, caps);
	json_t *cfg = json_loads(text, 0, NULL);
	if (!cfg)
		return shoal_err_set(err, EINVAL, "building the runc config");
	char cfgpath[4096];
	snprintf(cfgpath, sizeof(cfgpath), "%s/config.json", dir);
	r = json_dump_file(cfg, cfgpath, JSON_INDENT(1));
	json_decref(cfg);
	return r < 0 ? shoal_err_set(err, EIO, "writing %s", cfgpath) : 0;
}

static int bench_runc(struct start_bench *b, const char *runc, struct bench_samples *s,
		      struct shoal_err *err)
{
	char dir[] = "/tmp/shoal-bench-runc.XXXXXX";
	if (!mkdtemp(dir))
		return shoal_err_errno(err, errno, "mkdtemp");
	int r = runc_bundle(b, dir, err);
	for (int i = 0; r >= 0 && i < b->runs + 3; i++) {
		char id[64];
		snprintf(id, sizeof(id), "shoal-bench-%d-%d", (int)getpid(), i);
		char *argv[] = {(char *)runc, (char *)"run", (char *)"--bundle", dir, id, NULL};
		int64_t t0 = mono_ns();
		int rc = run_cmd(argv, false);
		int64_t dt = mono_ns() - t0;
		if (rc != 0) {
			char *del[] = {(char *)runc, (char *)"delete", (char *)"-f", id, NULL};
			run_cmd(del, true);
			r = shoal_err_set(err, EIO, "runc run exited with %d", rc);
			break;
		}
		if (i >= 3)
			bench_samples_add(s, dt);
	}
	rm_rf(dir);
	return r;
}

/* ---- memory ---- */

static pid_t parent_of(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	pid_t pp = -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "PPid:", 5) == 0)
			pp = (pid_t)atoi(line + 5);
	fclose(f);
	return pp;
}

static int bench_memory(struct start_bench *b, json_t *out, struct shoal_err *err)
{
	pid_t apid = bench_agent_pid(b->ctx);
	if (apid <= 0)
		return shoal_err_set(err, ESRCH, "cannot find shoald's pid through its socket");
	int64_t idle = bench_rss_kib(apid);
	char(*ids)[65] = calloc((size_t)b->containers, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	static const char *const cmd[] = {"sleep", "3600", NULL};
	int started = 0, r = 0;
	for (int i = 0; i < b->containers; i++) {
		char path[128];
		if ((r = create(b, "none", cmd, ids[i], err)) < 0)
			break;
		started++;
		snprintf(path, sizeof(path), "/containers/%s/start", ids[i]);
		if ((r = call(b, "POST", path, NULL, 204, NULL, err)) < 0)
			break;
	}
	int64_t loaded = bench_rss_kib(apid);
	struct bench_samples mon = {0};
	for (int i = 0; r >= 0 && i < started; i++) {
		char path[128];
		json_t *j = NULL;
		snprintf(path, sizeof(path), "/containers/%s/json", ids[i]);
		if (call(b, "GET", path, NULL, 200, &j, NULL) < 0)
			continue;
		pid_t cpid = (pid_t)json_integer_value(
			json_object_get(json_object_get(j, "State"), "Pid"));
		json_decref(j);
		pid_t mpid = cpid > 0 ? parent_of(cpid) : -1;
		int64_t kib = mpid > 0 ? bench_rss_kib(mpid) : -1;
		if (kib > 0)
			bench_samples_add(&mon, kib);
	}
	for (int i = 0; i < started; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/containers/%s?force=1", ids[i]);
		call(b, "DELETE", path, NULL, 0, NULL, NULL);
	}
	free(ids);
	if (r < 0) {
		bench_samples_free(&mon);
		return shoal_err_wrap(err, "starting %d containers", b->containers);
	}
	json_object_set_new(out, "shoald_rss_idle_kib", json_integer(idle));
	json_object_set_new(out, "shoald_rss_loaded_kib", json_integer(loaded));
	json_object_set_new(out, "loaded_containers", json_integer(started));
	json_object_set_new(out, "monitor_rss_median_kib", json_integer(bench_quantile(&mon, 0.5)));
	json_object_set_new(out, "monitor_rss_max_kib", json_integer(bench_quantile(&mon, 1.0)));
	bench_samples_free(&mon);
	return 0;
}

static void print_row(const char *name, json_t *s)
{
	printf("  %-28s %8.2f %8.2f %8.2f   (%lld runs)\n", name,
	       json_real_value(json_object_get(s, "median_ms")),
	       json_real_value(json_object_get(s, "p90_ms")),
	       json_real_value(json_object_get(s, "p99_ms")),
	       (long long)json_integer_value(json_object_get(s, "runs")));
}

int bench_start(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_RUNS = 1, O_JSON, O_CONT, O_IMAGE, O_NORUNC };
	static const struct cli_opt opts[] = {
		{O_RUNS, "runs", 0, CLI_OPT_VALUE, "int", "Timed runs per variant (default 50)"},
		{O_CONT, "containers", 0, CLI_OPT_VALUE, "int",
		 "Containers kept running for the memory figures (default 500, 0 skips)"},
		{O_IMAGE, "image", 0, CLI_OPT_VALUE, "string", "Image to run (default busybox)"},
		{O_NORUNC, "no-runc", 0, CLI_OPT_BOOL, NULL, "Do not run runc for comparison"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON"},
		{0},
	};
	struct start_bench b = {.ctx = ctx, .image = "busybox", .runs = 50, .containers = 500};
	bool no_runc = false;
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		switch (o) {
		case O_RUNS:
		case O_CONT: {
			char *end;
			long v = strtol(p.value, &end, 10);
			if (*end || v < (o == O_RUNS ? 1 : 0) || v > 100000) {
				cli_opts_done(&p);
				return cli_usage_error(
					ctx, o == O_RUNS ? "--runs: expected 1 to 100000"
							 : "--containers: expected 0 to 100000");
			}
			if (o == O_RUNS)
				b.runs = (int)v;
			else
				b.containers = (int)v;
			break;
		}
		case O_IMAGE:
			b.image = p.value;
			break;
		case O_NORUNC:
			no_runc = cli_opts_bool(&p);
			break;
		case O_JSON:
			b.json = cli_opts_bool(&p);
			break;
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(
			ctx, &p, o, "[OPTIONS]",
			"Measure container create+start+wait latency through the API, beside runc");
	if (p.npos > 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "unexpected argument");
	}
	struct shoal_err err = {0};
	json_t *out = json_object();
	struct bench_samples none = {0}, bridge = {0}, runc = {0}, cli = {0}, docker = {0};
	_cleanup_free_ char *runc_path = NULL, *docker_path = NULL;
	int rc = 0;
	if (!b.json)
		printf("shoal bench start: create + start + wait of /bin/true in %s, %d runs each\n",
		       b.image, b.runs);
	if (bench_api(&b, "none", &none, &err) < 0 || bench_api(&b, "bridge", &bridge, &err) < 0) {
		cli_print_err(&err);
		rc = 1;
		goto out;
	}
	json_object_set_new(out, "network_none", bench_summary(&none));
	json_object_set_new(out, "network_bridge", bench_summary(&bridge));
	if (bench_shoal_cli(&b, &cli, &err) < 0) {
		cli_print_err(&err);
		rc = 1;
		goto out;
	}
	json_object_set_new(out, "shoal_cli", bench_summary(&cli));
	docker_path = find_in_path("docker");
	if (docker_path) {
		if (bench_docker_cli(&b, docker_path, &docker, &err) < 0) {
			fprintf(stderr, "docker client row skipped: %s\n", err.msg);
			json_object_set_new(out, "docker_cli_error", json_string(err.msg));
		} else {
			json_object_set_new(out, "docker_cli", bench_summary(&docker));
		}
	}
	runc_path = no_runc ? NULL : find_in_path("runc");
	if (runc_path) {
		if (bench_runc(&b, runc_path, &runc, &err) < 0) {
			fprintf(stderr, "runc comparison skipped: %s\n", err.msg);
			json_object_set_new(out, "runc_error", json_string(err.msg));
		} else {
			json_object_set_new(out, "runc", bench_summary(&runc));
			double runc_ms = (double)bench_quantile(&runc, 0.5);
			json_object_set_new(
				out, "runc_over_shoal_none",
				json_real(runc_ms / (double)bench_quantile(&none, 0.5)));
			json_object_set_new(out, "runc_over_shoal_cli",
					    json_real(runc_ms / (double)bench_quantile(&cli, 0.5)));
			if (docker.n)
				json_object_set_new(
					out, "runc_over_docker_cli",
					json_real(runc_ms / (double)bench_quantile(&docker, 0.5)));
		}
	}
	if (b.containers > 0 && bench_memory(&b, out, &err) < 0) {
		cli_print_err(&err);
		rc = 1;
		goto out;
	}
	if (b.json) {
		bench_result_stamp(out, "start", ctx);
		char *s = json_dumps(out, JSON_INDENT(2));
		printf("%s\n", s);
		free(s);
		goto out;
	}
	printf("\n  %-28s %8s %8s %8s\n", "latency (ms)", "median", "p90", "p99");
	print_row("shoal --network none", json_object_get(out, "network_none"));
	print_row("shoal --network bridge", json_object_get(out, "network_bridge"));
	print_row("`shoal run --rm` (CLI)", json_object_get(out, "shoal_cli"));
	if (json_object_get(out, "docker_cli"))
		print_row("`docker run --rm` (CLI)", json_object_get(out, "docker_cli"));
	if (json_object_get(out, "runc")) {
		print_row("runc run (same rootfs)", json_object_get(out, "runc"));
		printf("\n  runc / shoal (none), median:       %.1fx\n",
		       json_real_value(json_object_get(out, "runc_over_shoal_none")));
		printf("  runc / `shoal run --rm`, median:   %.1fx\n",
		       json_real_value(json_object_get(out, "runc_over_shoal_cli")));
		if (json_object_get(out, "runc_over_docker_cli"))
			printf("  runc / `docker run --rm`, median:  %.1fx\n",
			       json_real_value(json_object_get(out, "runc_over_docker_cli")));
	}
	if (json_object_get(out, "shoald_rss_idle_kib")) {
		printf("\n  shoald RSS idle:                 %6lld KiB\n",
		       (long long)json_integer_value(json_object_get(out, "shoald_rss_idle_kib")));
		printf("  shoald RSS, %4lld containers:    %6lld KiB\n",
		       (long long)json_integer_value(json_object_get(out, "loaded_containers")),
		       (long long)json_integer_value(
			       json_object_get(out, "shoald_rss_loaded_kib")));
		printf("  monitor RSS per container:       %6lld KiB median, %lld KiB max\n",
		       (long long)json_integer_value(
			       json_object_get(out, "monitor_rss_median_kib")),
		       (long long)json_integer_value(json_object_get(out, "monitor_rss_max_kib")));
	}
out:
	bench_samples_free(&none);
	bench_samples_free(&bridge);
	bench_samples_free(&runc);
	bench_samples_free(&cli);
	bench_samples_free(&docker);
	json_decref(out);
	cli_opts_done(&p);
	return rc;
}

int bench_main(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("Usage:  shoal bench COMMAND\n\nBenchmarks, compared side by side in one run\n\n"
		       "Commands:\n  start       Container start latency (shoal vs runc) and memory\n"
		       "  sched       The scheduler on a simulated cluster (placements/s, spread)\n"
		       "  converge    A replicated service from create to all tasks running\n"
		       "  cluster     A cluster's control plane: etcd, simulated nodes, agents\n"
		       "  overlay     The VXLAN overlay across nodes: throughput, HTTP, programming\n"
		       "  lb          Published-port load balancing vs direct, iptables, nftables\n"
		       "  policy      Network policy: eBPF vs iptables vs nftables, enforcement\n"
		       "  http        HTTP load against any address or published service\n"
		       "  tcp         TCP echo load (payloads checked), open or closed loop\n"
		       "  udp         UDP echo load (payloads checked, losses counted)\n"
		       "  compare     Two results side by side, regressions flagged\n"
		       "  report      An HTML page of charts from results\n");
		return argc < 2 ? 1 : 0;
	}
	static const struct {
		const char *name;
		int (*run)(struct cli_ctx *ctx, int argc, char **argv);
	} benches[] = {
		{"start", bench_start},	    {"converge", bench_converge},
		{"cluster", bench_cluster}, {"overlay", bench_overlay},
		{"sched", bench_sched},	    {"policy", bench_policy},
		{"lb", bench_lb},	    {"http", bench_http},
		{"tcp", bench_tcp},	    {"udp", bench_udp},
		{"compare", bench_compare}, {"report", bench_report},
	};
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		if (strcmp(argv[1], benches[i].name) != 0)
			continue;
		/* what its --help and usage errors name */
		snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "shoal bench %s", benches[i].name);
		return benches[i].run(ctx, argc - 1, argv + 1);
	}
	fprintf(stderr, "shoal bench: unknown benchmark %s; see 'shoal bench --help'\n", argv[1]);
	return 1;
}
