// SPDX-License-Identifier: Apache-2.0
/*
 * Runs real containers through rt_spawn and the monitor's control socket, in a
 * busybox rootfs built in a temporary directory. Needs root (skips otherwise).
 *
 *   runtime-container MONITOR            the tests
 *   runtime-container MONITOR --bench N  create+start+wait of /bin/true, N times
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "runtime/cgroup.h"
#include "runtime/runtime.h"

static const char *monitor_path;
static char tmpdir[64];
static char rootfs[128];
static char seccomp_file[128];
static char cg_parent[64];
static int failures;
static int counter;

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fprintf(stderr, "\n");                                          \
			failures++;                                                     \
		}                                                                       \
	} while (0)

struct ctr {
	char id[65];
	char bundle[256];
	char run[256];
	const char *layers[2];
	struct rt_spec spec;
	struct rt_started started;
	struct shoal_err err;
};

static void ctr_init(struct ctr *c, const char *const *argv)
{
	memset(c, 0, sizeof(*c));
	random_hex_id(c->id);
	snprintf(c->bundle, sizeof(c->bundle), "%s/containers/%s", tmpdir, c->id);
	snprintf(c->run, sizeof(c->run), "%s/run/%d", tmpdir, ++counter);
	mkdir_p(c->bundle, 0710);
	c->layers[0] = rootfs;
	c->spec = (struct rt_spec){
		.id = c->id,
		.name = "test",
		.layer_dirs = c->layers,
		.bundle_dir = c->bundle,
		.run_dir = c->run,
		.argv = argv,
		.hostname = "rt-test",
		.net_mode = RT_NET_NONE,
		.cgroup_parent = cg_parent,
		.seccomp_path = seccomp_file,
	};
}

static int ctr_start(struct ctr *c)
{
	int fd;
	int r = rt_spawn(&(struct rt_options){.monitor_path = monitor_path}, &c->spec, &fd,
			 &c->err);
	if (r < 0)
		return r;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	poll(&p, 1, 30000);
	return rt_spawn_finish(fd, &c->started, &c->err);
}

static int ctl(struct ctr *c, const char *req_text)
{
	json_t *req = json_loads(req_text, 0, NULL);
	struct shoal_err err = {0};
	int fd = rt_ctl_connect(c->run, req, &err);
	json_decref(req);
	if (fd < 0)
		fprintf(stderr, "ctl: %s\n", err.msg);
	return fd;
}

static json_t *read_line_json(int fd)
{
	char buf[4096];
	size_t len = 0;
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, 1);
		if (n <= 0 || buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	return json_loads(buf, 0, NULL);
}

/* Waits for the container and returns its exit code (-1000 on error). */
static int ctr_wait(struct ctr *c, bool *oom)
{
	int fd = ctl(c, "{\"op\":\"wait\"}");
	if (fd < 0)
		return -1000;
	json_t *j = read_line_json(fd);
	close(fd);
	if (!j)
		return -1000;
	int code = (int)json_integer_value(json_object_get(j, "exit_code"));
	if (oom)
		*oom = json_is_true(json_object_get(j, "oom_killed"));
	json_decref(j);
	return code;
}

static void ctr_done(struct ctr *c)
{
	rt_cleanup(c->run, cg_parent, c->id, NULL);
	rt_remove(c->bundle, NULL);
}

static char *ctr_log(struct ctr *c)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s-json.log", c->bundle, c->id);
	char *text = NULL;
	size_t len;
	if (read_file(p, 1 << 20, &text, &len) < 0)
		return strdup("");
	return text;
}

/* Reads frames until EXIT; collects STDOUT+STDERR text; returns the EXIT payload. */
static json_t *read_frames(int fd, char *out, size_t outlen)
{
	size_t o = 0;
	out[0] = '\0';
	for (;;) {
		uint8_t h[8];
		if (read_all(fd, h, 8) < 0)
			return NULL;
		uint32_t len = ((uint32_t)h[4] << 24) | ((uint32_t)h[5] << 16) |
			       ((uint32_t)h[6] << 8) | h[7];
		char *p = malloc(len + 1);
		if (read_all(fd, p, len) < 0) {
			free(p);
			return NULL;
		}
		p[len] = '\0';
		if (h[0] == 3) {
			json_t *j = json_loads(p, 0, NULL);
			free(p);
			return j;
		}
		size_t take = len < outlen - 1 - o ? len : outlen - 1 - o;
		memcpy(out + o, p, take);
		o += take;
		out[o] = '\0';
		free(p);
	}
}

static void send_frame(int fd, int type, const char *data, size_t len)
{
	uint8_t h[8];
	rt_frame_header(h, type, (uint32_t)len);
	write_all(fd, h, 8);
	if (len)
		write_all(fd, data, len);
}

static int run_simple(const char *const *argv, void (*tweak)(struct ctr *), char **ret_log)
{
	struct ctr c;
	ctr_init(&c, argv);
	if (tweak)
		tweak(&c);
	if (ctr_start(&c) < 0) {
		fprintf(stderr, "start failed: %s\n", c.err.msg);
		if (ret_log)
			*ret_log = strdup("");
		ctr_done(&c);
		return -1000;
	}
	int code = ctr_wait(&c, NULL);
	if (ret_log)
		*ret_log = ctr_log(&c);
	ctr_done(&c);
	return code;
}

static void test_exit_codes(void)
{
	CHECK(run_simple((const char *[]){"true", NULL}, NULL, NULL) == 0, "true");
	CHECK(run_simple((const char *[]){"false", NULL}, NULL, NULL) == 1, "false");
	CHECK(run_simple((const char *[]){"sh", "-c", "exit 42", NULL}, NULL, NULL) == 42, "42");
}

static void tweak_env(struct ctr *c)
{
	static const char *env[] = {"FOO=bar-value", "PATH=/bin", NULL};
	c->spec.env = env;
	c->spec.cwd = "/work/dir";
}

static void test_env_cwd_logs(void)
{
	char *log = NULL;
	int code = run_simple((const char *[]){"sh", "-c", "echo $FOO; pwd; echo oops >&2", NULL},
			      tweak_env, &log);
	CHECK(code == 0, "exit %d", code);
	CHECK(strstr(log, "{\"log\":\"bar-value\\n\",\"stream\":\"stdout\",\"time\":\""),
	      "env in log: %s", log);
	CHECK(strstr(log, "{\"log\":\"/work/dir\\n\",\"stream\":\"stdout\""), "cwd: %s", log);
	CHECK(strstr(log, "{\"log\":\"oops\\n\",\"stream\":\"stderr\""), "stderr: %s", log);
	free(log);
}

static void tweak_user(struct ctr *c)
{
	c->spec.user = "app";
}

static void test_user(void)
{
	char *log = NULL;
	int code = run_simple((const char *[]){"sh", "-c", "id -u; id -g; echo $HOME", NULL},
			      tweak_user, &log);
	CHECK(code == 0, "exit %d", code);
	CHECK(strstr(log, "\"1000\\n\""), "uid: %s", log);
	CHECK(strstr(log, "\"/home/app\\n\""), "home: %s", log);
	free(log);
}

static void tweak_bad_user(struct ctr *c)
{
	c->spec.user = "nobody2";
}

static void test_start_errors(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"nope", NULL});
	int r = ctr_start(&c);
	CHECK(r < 0, "nope started");
	CHECK(strcmp(c.err.msg, "exec: \"nope\": executable file not found in $PATH") == 0,
	      "message: %s", c.err.msg);
	CHECK(shoal_err_http_status(&c.err) == 400, "status %d", shoal_err_http_status(&c.err));
	struct stat st;
	CHECK(stat(c.run, &st) < 0, "run dir left behind");
	ctr_done(&c);

	ctr_init(&c, (const char *[]){"true", NULL});
	tweak_bad_user(&c);
	r = ctr_start(&c);
	CHECK(r < 0, "bad user started");
	CHECK(strstr(c.err.msg, "unable to find user nobody2: no matching entries in passwd file"),
	      "message: %s", c.err.msg);
	ctr_done(&c);
}

static void test_attach_stdin(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"cat", NULL});
	c.spec.open_stdin = true;
	if (ctr_start(&c) < 0) {
		CHECK(0, "start: %s", c.err.msg);
		ctr_done(&c);
		return;
	}
	int fd = ctl(&c, "{\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"stderr\":true}");
	CHECK(fd >= 0, "attach");
	send_frame(fd, 0, "hello through stdin\n", 20);
	send_frame(fd, 5, NULL, 0);
	char out[4096];
	json_t *exit = read_frames(fd, out, sizeof(out));
	close(fd);
	CHECK(exit && json_integer_value(json_object_get(exit, "exit_code")) == 0, "exit frame");
	CHECK(strcmp(out, "hello through stdin\n") == 0, "attach output: '%s'", out);
	json_decref(exit);
	char *log = ctr_log(&c);
	CHECK(strstr(log, "hello through stdin\\n"), "log: %s", log);
	free(log);
	ctr_done(&c);
}

static void tweak_tty(struct ctr *c)
{
	c->spec.tty = true;
}

static void tweak_tty_app(struct ctr *c)
{
	c->spec.tty = true;
	c->spec.user = "app";
}

static void test_tty(void)
{
	char *log = NULL;
	int code = run_simple(
		(const char *[]){"sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; tty", NULL},
		tweak_tty, &log);
	CHECK(code == 0, "exit %d", code);
	CHECK(strstr(log, "is-a-tty\\r\\n\",\"stream\":\"stdout\""), "tty log: %s", log);
	CHECK(strstr(log, "/dev/pts/0\\r\\n"), "tty name: %s", log);
	free(log);
	/* The terminal comes from the container's own devpts, is its console, and
	 * belongs to the container's user. */
	code = run_simple((const char *[]){"sh", "-c",
					   "ls -1 /dev/pts; test /dev/console -ef /dev/pts/0 && "
					   "echo console-is-pts0; stat -c owner=%u /dev/pts/0",
					   NULL},
			  tweak_tty_app, &log);
	CHECK(code == 0, "exit %d", code);
	CHECK(strstr(log, "\"0\\r\\n") && strstr(log, "ptmx") && strstr(log, "console-is-pts0") &&
		      strstr(log, "owner=1000"),
	      "own devpts: %s", log);
	free(log);
}

static int exec_in(struct ctr *c, const char *req, char *out, size_t outlen);

/* A resize frame reaches the terminal (of the container and of an exec) before
 * the stdin sent after it. */
static void test_tty_resize(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"sh", "-c", "read l; stty size; read l", NULL});
	c.spec.tty = true;
	c.spec.open_stdin = true;
	if (ctr_start(&c) < 0) {
		CHECK(0, "start: %s", c.err.msg);
		ctr_done(&c);
		return;
	}
	int fd = ctl(&c, "{\"op\":\"exec\",\"argv\":[\"sh\",\"-c\",\"read l; stty size\"],"
			 "\"tty\":true,\"stdin\":true}");
	send_frame(fd, RT_FRAME_RESIZE, "{\"h\":33,\"w\":111}", 16);
	send_frame(fd, RT_FRAME_STDIN, "go\n", 3);
	char out[4096];
	json_t *exit = read_frames(fd, out, sizeof(out));
	close(fd);
	CHECK(exit && json_integer_value(json_object_get(exit, "exit_code")) == 0 &&
		      strstr(out, "33 111"),
	      "exec resize: '%s'", out);
	json_decref(exit);

	/* An exec's terminal comes from the container's devpts too: the next one. */
	int code =
		exec_in(&c, "{\"op\":\"exec\",\"argv\":[\"tty\"],\"tty\":true}", out, sizeof(out));
	CHECK(code == 0 && strcmp(out, "/dev/pts/1\r\n") == 0, "exec tty: %d '%s'", code, out);

	fd = ctl(&c, "{\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"stderr\":true}");
	send_frame(fd, RT_FRAME_RESIZE, "{\"h\":44,\"w\":122}", 16);
	send_frame(fd, RT_FRAME_STDIN, "go\ngo\n", 6);
	exit = read_frames(fd, out, sizeof(out));
	close(fd);
	CHECK(exit && json_integer_value(json_object_get(exit, "exit_code")) == 0 &&
		      strstr(out, "44 122"),
	      "run resize: '%s'", out);
	json_decref(exit);
	ctr_done(&c);
}

static int exec_in(struct ctr *c, const char *req, char *out, size_t outlen)
{
	int fd = ctl(c, req);
	if (fd < 0)
		return -1000;
	json_t *exit = read_frames(fd, out, outlen);
	close(fd);
	int code = exit ? (int)json_integer_value(json_object_get(exit, "exit_code")) : -1000;
	json_decref(exit);
	return code;
}

static void test_exec_kill_state(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"sh", "-c", "trap '' TERM; echo ready; sleep 1000", NULL});
	if (ctr_start(&c) < 0) {
		CHECK(0, "start: %s", c.err.msg);
		ctr_done(&c);
		return;
	}
	char out[4096];
	int code = exec_in(&c, "{\"op\":\"exec\",\"argv\":[\"hostname\"]}", out, sizeof(out));
	CHECK(code == 0 && strcmp(out, "rt-test\n") == 0, "exec hostname: %d '%s'", code, out);
	code = exec_in(&c, "{\"op\":\"exec\",\"argv\":[\"cat\",\"/proc/1/cmdline\"]}", out,
		       sizeof(out));
	CHECK(code == 0 && strcmp(out, "sleep") == 0, "pid 1 seen from exec: %d '%s'", code, out);
	code = exec_in(&c, "{\"op\":\"exec\",\"argv\":[\"sh\",\"-c\",\"exit 7\"]}", out,
		       sizeof(out));
	CHECK(code == 7, "exec exit %d", code);
	code = exec_in(&c, "{\"op\":\"exec\",\"argv\":[\"id\",\"-u\"],\"user\":\"app\"}", out,
		       sizeof(out));
	CHECK(code == 0 && strcmp(out, "1000\n") == 0, "exec user: %d '%s'", code, out);
	code = exec_in(&c, "{\"op\":\"exec\",\"argv\":[\"nope\"]}", out, sizeof(out));
	CHECK(code == 127 && strstr(out, "executable file not found"), "exec nope: %d '%s'", code,
	      out);

	/* The monitor ignores SIGTERM; the container keeps running. */
	kill(c.started.monitor_pid, SIGTERM);
	int fd = ctl(&c, "{\"op\":\"kill\",\"signal\":15}");
	json_t *j = read_line_json(fd);
	close(fd);
	CHECK(j && json_is_true(json_object_get(j, "ok")), "kill TERM reply");
	json_decref(j);
	fd = ctl(&c, "{\"op\":\"state\"}");
	j = read_line_json(fd);
	close(fd);
	CHECK(j && json_is_true(json_object_get(j, "running")) &&
		      json_integer_value(json_object_get(j, "pid")) == c.started.pid,
	      "state after TERM");
	json_decref(j);

	fd = ctl(&c, "{\"op\":\"kill\",\"signal\":9}");
	j = read_line_json(fd);
	close(fd);
	json_decref(j);
	code = ctr_wait(&c, NULL);
	CHECK(code == 137, "killed: %d", code);

	struct rt_exit e;
	CHECK(rt_exit_read(c.bundle, &e) == 0 && e.exit_code == 137, "exit.json");
	char p[512];
	snprintf(p, sizeof(p), "%s/ctl.sock", c.run);
	for (int i = 0; i < 100 && access(p, F_OK) == 0; i++)
		usleep(10000);
	CHECK(access(p, F_OK) < 0, "ctl.sock removed");
	snprintf(p, sizeof(p), "/sys/fs/cgroup/pids%s/%s", cg_parent, c.id);
	CHECK(access(p, F_OK) < 0, "cgroup removed: %s", p);
	ctr_done(&c);
}

static void test_exec_stdin(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"sleep", "1000", NULL});
	if (ctr_start(&c) < 0) {
		CHECK(0, "start: %s", c.err.msg);
		ctr_done(&c);
		return;
	}
	int fd = ctl(&c, "{\"op\":\"exec\",\"argv\":[\"tr\",\"a-z\",\"A-Z\"],\"stdin\":true}");
	send_frame(fd, 0, "shout\n", 6);
	send_frame(fd, 5, NULL, 0);
	char out[256];
	json_t *ex = read_frames(fd, out, sizeof(out));
	close(fd);
	CHECK(ex && json_integer_value(json_object_get(ex, "exit_code")) == 0 &&
		      strcmp(out, "SHOUT\n") == 0,
	      "exec stdin: '%s'", out);
	json_decref(ex);
	close(ctl(&c, "{\"op\":\"kill\",\"signal\":9}"));
	ctr_wait(&c, NULL);
	ctr_done(&c);
}

static void tweak_ro(struct ctr *c)
{
	c->spec.read_only = true;
}

static void tweak_nochown(struct ctr *c)
{
	static const char *drop[] = {"CHOWN", NULL};
	c->spec.cap_drop = drop;
}

static void tweak_sysadmin(struct ctr *c)
{
	static const char *add[] = {"SYS_ADMIN", NULL};
	c->spec.cap_add = add;
}

static void tweak_sysadmin_unconfined(struct ctr *c)
{
	tweak_sysadmin(c);
	c->spec.seccomp_path = NULL;
	c->spec.seccomp_unconfined = true;
}

static void test_confinement(void)
{
	CHECK(run_simple((const char *[]){"touch", "/x", NULL}, tweak_ro, NULL) == 1, "ro rootfs");
	CHECK(run_simple((const char *[]){"touch", "/x", NULL}, NULL, NULL) == 0, "rw rootfs");
	CHECK(run_simple((const char *[]){"touch", "/dev/shm/x", NULL}, tweak_ro, NULL) == 0,
	      "ro rootfs keeps /dev/shm writable");
	char *clog = NULL;
	int ccode = run_simple((const char *[]){"chown", "1000", "/tmp", NULL}, NULL, &clog);
	CHECK(ccode == 0, "chown with CAP_CHOWN: %d %s", ccode, clog);
	free(clog);
	CHECK(run_simple((const char *[]){"chown", "1000", "/tmp", NULL}, tweak_nochown, NULL) == 1,
	      "chown without CAP_CHOWN");
	char *log = NULL;
	run_simple((const char *[]){"sh", "-c", "wc -c < /proc/keys; cat /proc/mounts", NULL}, NULL,
		   &log);
	CHECK(strstr(log, "\"0\\n\""), "/proc/keys masked: %s", log);
	CHECK(strstr(log, "proc /proc/sys proc ro,"), "/proc/sys read-only: %s", log);
	free(log);
	/* unshare is allowed by Docker's profile only with CAP_SYS_ADMIN in the
	 * compiled mask; the agent's default filter was compiled without it. */
	int code =
		run_simple((const char *[]){"unshare", "-m", "true", NULL}, tweak_sysadmin, &log);
	CHECK(code != 0, "seccomp blocks unshare: %d", code);
	free(log);
	code = run_simple((const char *[]){"unshare", "-m", "true", NULL},
			  tweak_sysadmin_unconfined, NULL);
	CHECK(code == 0, "unconfined unshare: %d", code);
}

static int exec_in(struct ctr *c, const char *req, char *out, size_t outlen);

static void tweak_oom(struct ctr *c)
{
	c->spec.memory = 32 << 20;
	c->spec.memory_swap = 32 << 20;
}

static void tweak_pids(struct ctr *c)
{
	c->spec.pids_limit = 10;
}

static void test_limits(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1",
				      NULL});
	tweak_oom(&c);
	if (ctr_start(&c) == 0) {
		bool oom = false;
		int code = ctr_wait(&c, &oom);
		CHECK(code == 137 && oom, "oom: %d %d", code, oom);
	} else {
		CHECK(0, "start: %s", c.err.msg);
	}
	ctr_done(&c);

	ctr_init(&c, (const char *[]){"sleep", "1000", NULL});
	tweak_pids(&c);
	if (ctr_start(&c) == 0) {
		/* The shell dies at the first fork the limit refuses; what it started stays. */
		char log[4096];
		int code =
			exec_in(&c,
				"{\"op\":\"exec\",\"argv\":[\"sh\",\"-c\","
				"\"for i in $(seq 1 30); do sleep 100 & done; echo all-forked\"]}",
				log, sizeof(log));
		char p[512];
		snprintf(p, sizeof(p), "/sys/fs/cgroup/pids%s/%s/pids.current", cg_parent, c.id);
		int64_t cur = -1;
		read_int64_file(p, &cur);
		snprintf(p, sizeof(p), "/sys/fs/cgroup/pids%s/%s/pids.events", cg_parent, c.id);
		char *ev = NULL;
		size_t len;
		read_file(p, 4096, &ev, &len);
		CHECK(code != 0 && !strstr(log, "all-forked") && cur > 0 && cur <= 10 && ev &&
			      !strstr(ev, "max 0"),
		      "pids capped: exit %d, current %lld, events %s, out %s", code, (long long)cur,
		      ev, log);
		free(ev);
		close(ctl(&c, "{\"op\":\"kill\",\"signal\":9}"));
		ctr_wait(&c, NULL);
	} else {
		CHECK(0, "start: %s", c.err.msg);
	}
	ctr_done(&c);

	ctr_init(&c, (const char *[]){"sleep", "1000", NULL});
	c.spec.nano_cpus = 500000000;
	if (ctr_start(&c) == 0) {
		char p[512];
		snprintf(p, sizeof(p), "/sys/fs/cgroup/cpu%s/%s/cpu.cfs_quota_us", cg_parent, c.id);
		int64_t q = 0;
		CHECK(read_int64_file(p, &q) == 0 && q == 50000, "cfs quota %lld", (long long)q);
		char st[256];
		snprintf(st, sizeof(st), "/proc/%d/status", c.started.monitor_pid);
		char *text = NULL;
		size_t len;
		if (read_file(st, 1 << 16, &text, &len) == 0) {
			char *rss = strstr(text, "VmRSS:");
			if (rss)
				printf("monitor %.*s\n", (int)strcspn(rss, "\n"), rss);
		}
		free(text);
		close(ctl(&c, "{\"op\":\"kill\",\"signal\":9}"));
		ctr_wait(&c, NULL);
	} else {
		CHECK(0, "start: %s", c.err.msg);
	}
	ctr_done(&c);
}

static void test_agent_gone(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"sh", "-c", "sleep 0.3; echo done-late", NULL});
	int pfd[2];
	pipe(pfd);
	pid_t agent = fork();
	if (agent == 0) {
		close(pfd[0]);
		int r = ctr_start(&c);
		int mp = r < 0 ? -1 : c.started.monitor_pid;
		write(pfd[1], &mp, sizeof(mp));
		_exit(r < 0 ? 1 : 0);
	}
	close(pfd[1]);
	int mp = -1;
	read(pfd[0], &mp, sizeof(mp));
	close(pfd[0]);
	int st;
	waitpid(agent, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && mp > 0, "fake agent started it");
	struct rt_exit e;
	int r = -1;
	for (int i = 0; i < 1000 && (r = rt_exit_read(c.bundle, &e)) < 0; i++)
		usleep(10000);
	CHECK(r == 0 && e.exit_code == 0, "exit.json written with the agent gone");
	char *log = ctr_log(&c);
	CHECK(strstr(log, "done-late"), "log: %s", log);
	free(log);
	ctr_done(&c);
}

/* Every line of a /proc/<pid>/cgroup text for the hierarchies shoal uses
 * (memory, cpu, pids, and the v2 "0::" line where v2 is mounted) names the
 * container's own cgroup. */
static bool in_own_cgroups(const char *text, const char *id, const char **ret_bad)
{
	static const char *const want[] = {"memory", "cpu", "pids", ""};
	char suffix[80];
	snprintf(suffix, sizeof(suffix), "/%s", id);
	size_t slen = strlen(suffix);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char copy[4096];
		snprintf(copy, sizeof(copy), "%s", text);
		bool seen = false;
		char *save = NULL;
		for (char *line = strtok_r(copy, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			/* "N:ctrl,ctrl:/path" (v1) or "0::/path" (v2) */
			char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (!c2)
				continue;
			*c2 = '\0';
			bool match = false;
			if (!*want[i]) {
				match = strcmp(line, "0:") == 0;
			} else {
				char *s2 = NULL;
				for (char *t = strtok_r(c1 + 1, ",", &s2); t;
				     t = strtok_r(NULL, ",", &s2))
					match = match || strcmp(t, want[i]) == 0;
			}
			if (!match)
				continue;
			seen = true;
			const char *path = c2 + 1;
			size_t n = strlen(path);
			if (n < slen || strcmp(path + n - slen, suffix) != 0) {
				*ret_bad = want[i];
				return false;
			}
		}
		if (!seen && *want[i]) {
			*ret_bad = want[i];
			return false;
		}
	}
	return true;
}

static void test_cgroup_membership(void)
{
	struct ctr c;
	ctr_init(&c, (const char *[]){"sleep", "1000", NULL});
	if (ctr_start(&c) < 0) {
		CHECK(0, "start: %s", c.err.msg);
		ctr_done(&c);
		return;
	}
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)c.started.pid);
	char *text = NULL;
	size_t len;
	const char *bad = "";
	CHECK(read_file(p, 1 << 16, &text, &len) == 0 && in_own_cgroups(text, c.id, &bad),
	      "container init in its own cgroups (%s): %s", bad, text ? text : "");
	free(text);
	char out[4096];
	int code = exec_in(&c, "{\"op\":\"exec\",\"argv\":[\"cat\",\"/proc/self/cgroup\"]}", out,
			   sizeof(out));
	bad = "";
	CHECK(code == 0 && in_own_cgroups(out, c.id, &bad),
	      "exec'd process in the container's cgroups (%s): %d %s", bad, code, out);
	close(ctl(&c, "{\"op\":\"kill\",\"signal\":9}"));
	ctr_wait(&c, NULL);
	ctr_done(&c);
}

static int build_rootfs(void)
{
	static const char *const applets[] = {
		"sh", "true", "false",	 "cat",	 "echo",     "sleep", "id",   "ls",  "touch",
		"ip", "pwd",  "tty",	 "test", "hostname", "chown", "dd",   "seq", "grep",
		"wc", "kill", "unshare", "tr",	 "env",	     "stty",  "stat", NULL};
	char p[512];
	snprintf(p, sizeof(p), "%s/bin", rootfs);
	mkdir_p(p, 0755);
	snprintf(p, sizeof(p), "%s/tmp", rootfs);
	mkdir_p(p, 01777);
	snprintf(p, sizeof(p), "%s/etc", rootfs);
	mkdir_p(p, 0755);
	snprintf(p, sizeof(p), "cp /bin/busybox %s/bin/busybox", rootfs);
	if (system(p) != 0)
		return -1;
	for (size_t i = 0; applets[i]; i++) {
		snprintf(p, sizeof(p), "%s/bin/%s", rootfs, applets[i]);
		symlink("busybox", p);
	}
	snprintf(p, sizeof(p), "%s/etc/passwd", rootfs);
	const char *pw = "root:x:0:0:root:/root:/bin/sh\n"
			 "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
			 "app:x:1000:1000:app:/home/app:/bin/sh\n";
	write_file_atomic(p, pw, strlen(pw), 0644);
	snprintf(p, sizeof(p), "%s/etc/group", rootfs);
	const char *gr = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n";
	write_file_atomic(p, gr, strlen(gr), 0644);
	return 0;
}

static void cleanup(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	struct shoal_err err;
	rt_cgroup_parent_remove(cg_parent, &err);
	rm_rf(tmpdir);
}

static int bench(int n)
{
	int64_t *t = calloc((size_t)n, sizeof(*t));
	for (int i = 0; i < n; i++) {
		struct ctr c;
		ctr_init(&c, (const char *[]){"/bin/true", NULL});
		int64_t t0 = mono_ns();
		if (ctr_start(&c) < 0) {
			fprintf(stderr, "start: %s\n", c.err.msg);
			return 1;
		}
		int code = ctr_wait(&c, NULL);
		t[i] = mono_ns() - t0;
		if (code != 0)
			fprintf(stderr, "exit %d\n", code);
		ctr_done(&c);
	}
	for (int i = 0; i < n; i++)
		for (int k = i + 1; k < n; k++)
			if (t[k] < t[i]) {
				int64_t x = t[i];
				t[i] = t[k];
				t[k] = x;
			}
	printf("create+start+wait /bin/true x%d: median %.2f ms, min %.2f ms, max %.2f ms\n", n,
	       t[n / 2] / 1e6, t[0] / 1e6, t[n - 1] / 1e6);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: %s MONITOR [--bench N]\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		printf("SKIP: needs root\n");
		return 77;
	}
	monitor_path = argv[1];
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/shoal-rt-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmpdir);
	snprintf(cg_parent, sizeof(cg_parent), "/shoal-rt-test-%d", (int)getpid());
	atexit(cleanup);
	/* Monitors leave their parent at once; adopt them so they are reaped here. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (build_rootfs() < 0) {
		fprintf(stderr, "cannot build the rootfs\n");
		return 1;
	}
	struct shoal_err err = {0};
	char v2[256];
	if (rt_cgroup_parent_prepare(cg_parent, v2, sizeof(v2), &err) < 0) {
		fprintf(stderr, "cgroup parent: %s\n", err.msg);
		return 1;
	}
	snprintf(seccomp_file, sizeof(seccomp_file), "%s/seccomp.bpf", tmpdir);
	if (rt_seccomp_compile(seccomp_file, &err) < 0) {
		fprintf(stderr, "seccomp: %s\n", err.msg);
		return 1;
	}
	if (argc >= 4 && strcmp(argv[2], "--bench") == 0)
		return bench(atoi(argv[3]));

	const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{"exit codes", test_exit_codes},
		{"cgroup membership", test_cgroup_membership},
		{"env, cwd, logs", test_env_cwd_logs},
		{"user", test_user},
		{"start errors", test_start_errors},
		{"attach + stdin", test_attach_stdin},
		{"tty", test_tty},
		{"tty resize", test_tty_resize},
		{"exec, kill, state, cleanup", test_exec_kill_state},
		{"exec stdin", test_exec_stdin},
		{"read-only, caps, seccomp, masks", test_confinement},
		{"memory, pids, cpu limits", test_limits},
		{"agent gone", test_agent_gone},
	};
	const char *only = getenv("RT_TEST_ONLY");
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (only && !strstr(tests[i].name, only))
			continue;
		int before = failures;
		tests[i].fn();
		printf("%s %s\n", failures == before ? "ok  " : "FAIL", tests[i].name);
	}
	return failures ? 1 : 0;
}
