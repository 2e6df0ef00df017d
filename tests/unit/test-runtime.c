// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util.h"
#include "runtime/runtime-internal.h"

static char dir[64];

static void write_text(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/shoal-rtunit-XXXXXX");
	assert_non_null(mkdtemp(dir));
	write_text("passwd", "root:x:0:0:root:/root:/bin/sh\n"
			     "# comment\n"
			     "broken line\n"
			     "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
			     "app:x:1000:1000:app:/home/app:/bin/sh\n"
			     "nohome:x:1001:1001:::/bin/sh\n");
	write_text("group",
		   "root:x:0:\napp:x:1000:\nwheel:x:10:root,app\nextra:x:2000:nobody, app\n"
		   "staff:x:50:\n");
	return 0;
}

static int teardown(void **state)
{
	rm_rf(dir);
	return 0;
}

static int resolve(const char *user, struct rt_user *u, struct shoal_err *err)
{
	char pw[256], gr[256];
	snprintf(pw, sizeof(pw), "%s/passwd", dir);
	snprintf(gr, sizeof(gr), "%s/group", dir);
	return rt_user_resolve(user, pw, gr, u, err);
}

static void test_user_names(void **state)
{
	struct rt_user u;
	struct shoal_err err = {0};
	assert_int_equal(resolve("", &u, &err), 0);
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 0);
	assert_string_equal(u.home, "/root");
	assert_int_equal(u.ngroups, 1);
	assert_int_equal(u.groups[0], 10);

	assert_int_equal(resolve("app", &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_string_equal(u.home, "/home/app");
	assert_int_equal(u.ngroups, 2);
	assert_int_equal(u.groups[0], 10);
	assert_int_equal(u.groups[1], 2000);

	assert_int_equal(resolve("1000", &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_string_equal(u.home, "/home/app");

	assert_int_equal(resolve("nohome", &u, &err), 0);
	assert_string_equal(u.home, "/");
}

static void test_user_groups_and_ids(void **state)
{
	struct rt_user u;
	struct shoal_err err = {0};
	assert_int_equal(resolve("app:staff", &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 50);
	assert_int_equal(resolve("4242:4343", &u, &err), 0);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 4343);
	assert_int_equal(u.ngroups, 0);
	assert_string_equal(u.home, "/");
	assert_int_equal(resolve("app:0", &u, &err), 0);
	assert_int_equal(u.gid, 0);
}

static void test_user_errors(void **state)
{
	struct rt_user u;
	struct shoal_err err = {0};
	assert_int_equal(resolve("nobody2", &u, &err), -ENOENT);
	assert_string_equal(err.msg,
			    "unable to find user nobody2: no matching entries in passwd file");
	assert_int_equal(shoal_err_http_status(&err), 400);
	assert_int_equal(resolve("app:nogroup", &u, &err), -ENOENT);
	assert_string_equal(err.msg,
			    "unable to find group nogroup: no matching entries in group file");
	/* No passwd file at all: numeric users still work, names do not. */
	assert_int_equal(
		rt_user_resolve("123", "/nonexistent/passwd", "/nonexistent/group", &u, &err), 0);
	assert_int_equal(u.uid, 123);
	assert_int_equal(
		rt_user_resolve("app", "/nonexistent/passwd", "/nonexistent/group", &u, &err),
		-ENOENT);
}

static void test_lookup_exec(void **state)
{
	char p[256], found[256];
	struct shoal_err err = {0};
	snprintf(p, sizeof(p), "%s/bin", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/bin/tool", dir);
	write_file_atomic(p, "#!/bin/sh\n", 10, 0755);
	snprintf(p, sizeof(p), "%s/bin/data", dir);
	write_file_atomic(p, "x", 1, 0644);

	char path[512];
	snprintf(path, sizeof(path), "/nonexistent:%s/bin", dir);
	assert_int_equal(rt_lookup_exec("tool", path, found, sizeof(found), &err), 0);
	snprintf(p, sizeof(p), "%s/bin/tool", dir);
	assert_string_equal(found, p);

	assert_int_equal(rt_lookup_exec("nope", path, found, sizeof(found), &err), -ENOENT);
	assert_string_equal(err.msg, "exec: \"nope\": executable file not found in $PATH");
	assert_int_equal(shoal_err_http_status(&err), 400);
	/* Not executable: skipped in PATH. */
	assert_int_equal(rt_lookup_exec("data", path, found, sizeof(found), &err), -ENOENT);

	assert_int_equal(rt_lookup_exec(p, NULL, found, sizeof(found), &err), 0);
	assert_int_equal(rt_lookup_exec("/no/such", NULL, found, sizeof(found), &err), -ENOENT);
	assert_string_equal(err.msg,
			    "exec: \"/no/such\": stat /no/such: no such file or directory");

	assert_int_equal(rt_lookup_exec("sh", NULL, found, sizeof(found), &err), 0);

	const char *env[] = {"PATH=/a", "X=1", "PATH=/b", NULL};
	assert_string_equal(rt_env_get(env, "PATH"), "/b");
	assert_null(rt_env_get(env, "PAT"));
}

static void test_log_encode(void **state)
{
	char buf[512];
	/* 2021-01-02T03:04:05.5Z */
	int64_t t = 1609556645LL * 1000000000 + 500000000;
	size_t n = rt_log_encode(buf, "a\"b\\<&>\t\x01\xff\n", 11, RT_LOG_STDERR, t);
	buf[n] = '\0';
	assert_string_equal(buf, "{\"log\":\"a\\\"b\\\\\\u003c\\u0026\\u003e\\t\\u0001\\ufffd\\n\","
				 "\"stream\":\"stderr\",\"time\":\"2021-01-02T03:04:05.5Z\"}\n");
	char ts[40];
	rt_format_time_nano(1609556645LL * 1000000000, ts);
	assert_string_equal(ts, "2021-01-02T03:04:05Z");
	rt_format_time_nano(1609556645LL * 1000000000 + 123, ts);
	assert_string_equal(ts, "2021-01-02T03:04:05.000000123Z");
	n = rt_log_encode(buf, "h\xc3\xa9", 3, RT_LOG_STDOUT, t);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"log\":\"h\xc3\xa9\""));
}

static size_t count_lines(const char *path)
{
	char *text = NULL;
	size_t len = 0, n = 0;
	if (read_file(path, 64 << 20, &text, &len) < 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

static void test_log_lines_and_split(void **state)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/split-json.log", dir);
	static struct rt_log log;
	assert_int_equal(rt_log_open(&log, p, 0, 0), 0);
	assert_int_equal(rt_log_write(&log, RT_LOG_STDOUT, "one\ntw", 6, 1), 0);
	assert_int_equal(count_lines(p), 1);
	assert_int_equal(rt_log_write(&log, RT_LOG_STDOUT, "o\nthree", 7, 1), 0);
	assert_int_equal(count_lines(p), 2);
	assert_int_equal(rt_log_flush(&log, RT_LOG_STDOUT, 1), 0);
	assert_int_equal(count_lines(p), 3);

	/* A line longer than 16 KiB becomes several records, all but the last partial. */
	size_t big = 40000;
	char *data = malloc(big + 1);
	memset(data, 'x', big);
	data[big] = '\n';
	assert_int_equal(rt_log_write(&log, RT_LOG_STDERR, data, big + 1, 1), 0);
	free(data);
	rt_log_close(&log);
	assert_int_equal(count_lines(p), 3 + 3);
	char *text = NULL;
	size_t len;
	assert_int_equal(read_file(p, 1 << 20, &text, &len), 0);
	assert_non_null(strstr(text, "{\"log\":\"two\\n\",\"stream\":\"stdout\""));
	assert_non_null(strstr(text, "{\"log\":\"three\",\"stream\":\"stdout\""));
	free(text);
}

static void test_log_rotation(void **state)
{
	char p[256], q[300];
	snprintf(p, sizeof(p), "%s/rot-json.log", dir);
	static struct rt_log log;
	assert_int_equal(rt_log_open(&log, p, 1000, 3), 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(rt_log_write(&log, RT_LOG_STDOUT, "0123456789012345678\n", 20, 1),
				 0);
	rt_log_close(&log);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size < 1000 + 200);
	snprintf(q, sizeof(q), "%s.1", p);
	assert_int_equal(stat(q, &st), 0);
	assert_true(st.st_size >= 1000);
	snprintf(q, sizeof(q), "%s.2", p);
	assert_int_equal(stat(q, &st), 0);
	snprintf(q, sizeof(q), "%s.3", p);
	assert_int_not_equal(stat(q, &st), 0);

	/* One file: truncated in place. */
	snprintf(p, sizeof(p), "%s/one-json.log", dir);
	assert_int_equal(rt_log_open(&log, p, 500, 1), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rt_log_write(&log, RT_LOG_STDOUT, "0123456789012345678\n", 20, 1),
				 0);
	rt_log_close(&log);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size < 500 + 200);
	snprintf(q, sizeof(q), "%s.1", p);
	assert_int_not_equal(stat(q, &st), 0);
}

/* Below the floor of free space records are dropped and counted, and the count
 * goes to the log as soon as writing works again. */
static void test_log_floor_and_total(void **state)
{
	char p[256], u[256], q[300];
	snprintf(p, sizeof(p), "%s/floor-json.log", dir);
	static struct rt_log log;
	assert_int_equal(rt_log_open(&log, p, 1000, 2), 0);
	assert_true(log.floor > 0 && log.floor <= RT_LOG_FLOOR_MAX);
	log.floor = INT64_MAX; /* as if the disk were nearly full */
	for (int i = 0; i < 3; i++)
		assert_int_equal(rt_log_write(&log, RT_LOG_STDOUT, "lost\n", 5, 1), -ENOSPC);
	assert_int_equal(count_lines(p), 0);
	log.floor = 0; /* room again */
	assert_int_equal(rt_log_write(&log, RT_LOG_STDOUT, "kept\n", 5, 1), 0);
	char *text = NULL;
	size_t len;
	assert_int_equal(read_file(p, 1 << 20, &text, &len), 0);
	assert_non_null(strstr(text, "{\"log\":\"[shoal: 3 log lines dropped: the disk is "
				     "nearly full]\\n\",\"stream\":\"stderr\""));
	assert_non_null(strstr(text, "\"kept\\n\""));
	assert_null(strstr(text, "lost"));
	free(text);

	/* The node's total: the shared count follows writes and rotation, and a
	 * record past the cap is dropped; the count goes out at close. */
	snprintf(u, sizeof(u), "%s/log-usage", dir);
	int64_t *count = NULL;
	assert_int_equal(rt_log_usage_open(u, true, &count), 0);
	*count = 0;
	assert_int_equal(rt_log_set_total(&log, u, 3000), 0);
	int dropped = 0;
	for (int i = 0; i < 200; i++)
		if (rt_log_write(&log, RT_LOG_STDOUT, "0123456789012345678\n", 20, 1) == -ENOSPC)
			dropped++;
	assert_true(dropped == 0); /* rotation keeps it under 2 x 1000 */
	struct stat st1, st2;
	assert_int_equal(stat(p, &st1), 0);
	snprintf(q, sizeof(q), "%s.1", p);
	assert_int_equal(stat(q, &st2), 0);
	assert_int_equal(*count, st1.st_size + st2.st_size - (int64_t)len);
	*count = 2990; /* other containers' logs */
	assert_int_equal(rt_log_write(&log, RT_LOG_STDOUT, "over\n", 5, 1), -ENOSPC);
	*count = 0;
	rt_log_close(&log);
	assert_int_equal(read_file(p, 1 << 20, &text, &len), 0);
	assert_non_null(strstr(text, "[shoal: 1 log lines dropped: the node's total for container "
				     "logs (--log-max-total) is reached]"));
	free(text);
	assert_int_equal(*count, (int64_t)len - (int64_t)st1.st_size);
	rt_log_usage_close(count);

	/* The recount: every <dir>/<id>/<id>-json.log[.N], nothing else. */
	snprintf(q, sizeof(q), "%s/scan/c1", dir);
	assert_int_equal(mkdir_p(q, 0755), 0);
	snprintf(q, sizeof(q), "%s/scan/c1/c1-json.log", dir);
	assert_int_equal(write_file_atomic(q, "0123456789", 10, 0644), 0);
	snprintf(q, sizeof(q), "%s/scan/c1/c1-json.log.1", dir);
	assert_int_equal(write_file_atomic(q, "01234", 5, 0644), 0);
	snprintf(q, sizeof(q), "%s/scan/c1/hosts", dir);
	assert_int_equal(write_file_atomic(q, "0123456789", 10, 0644), 0);
	snprintf(q, sizeof(q), "%s/scan", dir);
	assert_int_equal(rt_log_usage_scan(q), 15);
}

static void test_frame_header(void **state)
{
	uint8_t h[8];
	rt_frame_header(h, RT_FRAME_STDERR, 0x01020304);
	const uint8_t want[8] = {2, 0, 0, 0, 1, 2, 3, 4};
	assert_memory_equal(h, want, 8);
	rt_frame_header(h, RT_FRAME_EXIT, 0);
	assert_int_equal(h[0], 3);
	assert_int_equal(h[7], 0);
}

static void test_spec_round_trip(void **state)
{
	const char *layers[] = {"/l/1", "/l/2", NULL};
	const char *argv[] = {"sh", "-c", "echo hi", NULL};
	const char *env[] = {"A=1", NULL};
	const char *drop[] = {"NET_RAW", NULL};
	struct rt_spec s = {
		.id = "abc",
		.name = "web",
		.layer_dirs = layers,
		.bundle_dir = "/b",
		.run_dir = "/r",
		.argv = argv,
		.env = env,
		.cwd = "/w",
		.user = "app:staff",
		.hostname = "h",
		.tty = true,
		.open_stdin = true,
		.read_only = true,
		.memory = 1 << 30,
		.memory_swap = -1,
		.nano_cpus = 1500000000,
		.pids_limit = 100,
		.cap_drop = drop,
		.net_mode = RT_NET_JOIN,
		.net_path = "/run/netns/x",
		.hosts = "127.0.0.1 localhost\n",
		.cgroup_parent = "/p",
		.log_max_size = 1000,
		.log_max_files = 2,
		.seccomp_path = "/s.bpf",
	};
	json_t *j = rt_spec_to_json(&s);
	assert_non_null(j);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	json_t *back = json_loads(text, 0, NULL);
	free(text);
	struct rt_spec_owned o;
	struct shoal_err err = {0};
	assert_int_equal(rt_spec_from_json(back, &o, &err), 0);
	json_decref(back);
	const struct rt_spec *r = &o.spec;
	assert_string_equal(r->id, "abc");
	assert_string_equal(r->layer_dirs[1], "/l/2");
	assert_null(r->layer_dirs[2]);
	assert_string_equal(r->argv[2], "echo hi");
	assert_string_equal(r->env[0], "A=1");
	assert_string_equal(r->user, "app:staff");
	assert_true(r->tty && r->open_stdin && r->read_only && !r->privileged);
	assert_int_equal(r->memory, 1 << 30);
	assert_int_equal(r->memory_swap, -1);
	assert_int_equal(r->nano_cpus, 1500000000);
	assert_int_equal(r->pids_limit, 100);
	assert_string_equal(r->cap_drop[0], "NET_RAW");
	assert_null(r->cap_add);
	assert_int_equal(r->net_mode, RT_NET_JOIN);
	assert_string_equal(r->net_path, "/run/netns/x");
	assert_string_equal(r->hosts, "127.0.0.1 localhost\n");
	assert_null(r->resolv_conf);
	assert_int_equal(r->log_max_files, 2);
	assert_string_equal(r->seccomp_path, "/s.bpf");
	rt_spec_owned_done(&o);

	json_t *bad = json_pack("{s:s}", "id", "x");
	assert_int_equal(rt_spec_from_json(bad, &o, &err), -EINVAL);
	json_decref(bad);

	struct rt_exit e = {.exit_code = 137, .oom_killed = true, .finished_at_ns = 5}, e2;
	j = rt_exit_to_json(&e);
	assert_int_equal(rt_exit_from_json(j, &e2), 0);
	json_decref(j);
	assert_int_equal(e2.exit_code, 137);
	assert_true(e2.oom_killed);
	assert_int_equal(e2.finished_at_ns, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_names),
		cmocka_unit_test(test_user_groups_and_ids),
		cmocka_unit_test(test_user_errors),
		cmocka_unit_test(test_lookup_exec),
		cmocka_unit_test(test_log_encode),
		cmocka_unit_test(test_log_lines_and_split),
		cmocka_unit_test(test_log_rotation),
		cmocka_unit_test(test_frame_header),
		cmocka_unit_test(test_log_floor_and_total),
		cmocka_unit_test(test_spec_round_trip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
