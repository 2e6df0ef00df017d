// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "cli/http.h"

static struct cli_ctx test_ctx(void)
{
	struct cli_ctx ctx = {.host = "unix:///nonexistent.sock", .sock_path = "/nonexistent.sock"};
	snprintf(ctx.cmdpath, sizeof(ctx.cmdpath), "shoal run");
	return ctx;
}

static const struct cli_opt t_opts[] = {
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL, ""},
	{'i', "interactive", 'i', CLI_OPT_BOOL, NULL, ""},
	{'t', "tty", 't', CLI_OPT_BOOL, NULL, ""},
	{'e', "env", 'e', CLI_OPT_VALUE, "list", ""},
	{1000, "name", 0, CLI_OPT_VALUE, "string", ""},
	{1001, "rm", 0, CLI_OPT_BOOL, NULL, ""},
	{0},
};

static void test_opts_cluster_and_forms(void **state)
{
	char *argv[] = {"run", "-dit",	     "--name=web", "-eA=1", "-e",     "B=2", "--env",
			"C",   "--rm=false", "img",	   "-d",    "--name", "x",   NULL};
	struct cli_opts p;
	cli_opts_init(&p, t_opts, 13, argv, true);
	const char *seen[16];
	int ids[16], n = 0, id;
	while ((id = cli_opts_next(&p)) != 0) {
		assert_true(id > 0);
		ids[n] = id;
		seen[n++] = p.value;
	}
	assert_int_equal(n, 8);
	assert_int_equal(ids[0], 'd');
	assert_string_equal(seen[0], "true");
	assert_int_equal(ids[1], 'i');
	assert_int_equal(ids[2], 't');
	assert_int_equal(ids[3], 1000);
	assert_string_equal(seen[3], "web");
	assert_int_equal(ids[4], 'e');
	assert_string_equal(seen[4], "A=1");
	assert_string_equal(seen[5], "B=2");
	assert_string_equal(seen[6], "C");
	assert_int_equal(ids[7], 1001);
	assert_string_equal(seen[7], "false");
	/* Everything from IMAGE on is positional, flags included. */
	assert_int_equal(p.npos, 4);
	assert_string_equal(p.pos[0], "img");
	assert_string_equal(p.pos[1], "-d");
	assert_string_equal(p.pos[3], "x");
	cli_opts_done(&p);
}

static void test_opts_interspersed_and_errors(void **state)
{
	char *argv[] = {"stop", "a", "-d", "b", "--", "-c", NULL};
	struct cli_opts p;
	cli_opts_init(&p, t_opts, 6, argv, false);
	assert_int_equal(cli_opts_next(&p), 'd');
	assert_int_equal(cli_opts_next(&p), 0);
	assert_int_equal(p.npos, 3);
	assert_string_equal(p.pos[0], "a");
	assert_string_equal(p.pos[1], "b");
	assert_string_equal(p.pos[2], "-c");
	cli_opts_done(&p);

	char *bad1[] = {"run", "--bogus", NULL};
	cli_opts_init(&p, t_opts, 2, bad1, true);
	assert_int_equal(cli_opts_next(&p), CLI_OPT_ERROR);
	assert_string_equal(p.error, "unknown flag: --bogus");
	cli_opts_done(&p);

	char *bad2[] = {"run", "-dx", NULL};
	cli_opts_init(&p, t_opts, 2, bad2, true);
	assert_int_equal(cli_opts_next(&p), 'd');
	assert_int_equal(cli_opts_next(&p), CLI_OPT_ERROR);
	assert_string_equal(p.error, "unknown shorthand flag: 'x' in -dx");
	cli_opts_done(&p);

	char *bad3[] = {"run", "--name", NULL};
	cli_opts_init(&p, t_opts, 2, bad3, true);
	assert_int_equal(cli_opts_next(&p), CLI_OPT_ERROR);
	assert_string_equal(p.error, "flag needs an argument: --name");
	cli_opts_done(&p);

	char *help[] = {"run", "--help", NULL};
	cli_opts_init(&p, t_opts, 2, help, true);
	assert_int_equal(cli_opts_next(&p), CLI_OPT_HELP);
	cli_opts_done(&p);
}

static void test_parse_cpus(void **state)
{
	int64_t v;
	assert_int_equal(cli_parse_cpus("0.5", &v), 0);
	assert_int_equal(v, 500000000);
	assert_int_equal(cli_parse_cpus("2", &v), 0);
	assert_int_equal(v, 2000000000);
	assert_int_equal(cli_parse_cpus("1.25", &v), 0);
	assert_int_equal(v, 1250000000);
	assert_int_equal(cli_parse_cpus(".1", &v), 0);
	assert_int_equal(v, 100000000);
	assert_int_equal(cli_parse_cpus("0.000000001", &v), 0);
	assert_int_equal(v, 1);
	assert_true(cli_parse_cpus("0.0000000001", &v) < 0);
	assert_true(cli_parse_cpus("-1", &v) < 0);
	assert_true(cli_parse_cpus("abc", &v) < 0);
	assert_true(cli_parse_cpus("1.5x", &v) < 0);
	assert_true(cli_parse_cpus(".", &v) < 0);
}

static void test_parse_restart(void **state)
{
	char err[256] = "";
	json_t *p = NULL;
	assert_int_equal(cli_parse_restart("on-failure:3", &p, err, sizeof(err)), 0);
	char *s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"MaximumRetryCount\":3,\"Name\":\"on-failure\"}");
	free(s);
	json_decref(p);
	assert_int_equal(cli_parse_restart("always", &p, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(p, "Name")), "always");
	assert_int_equal(json_integer_value(json_object_get(p, "MaximumRetryCount")), 0);
	json_decref(p);
	/* names are the agent's to check; negative counts too */
	assert_int_equal(cli_parse_restart("on-failure:-1", &p, err, sizeof(err)), 0);
	assert_int_equal(json_integer_value(json_object_get(p, "MaximumRetryCount")), -1);
	json_decref(p);
	assert_int_equal(cli_parse_restart("", &p, err, sizeof(err)), 0);
	assert_null(p);
	assert_int_equal(cli_parse_restart(":3", &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid restart policy format: no policy provided before colon");
	assert_int_equal(cli_parse_restart("on-failure:x", &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(
		err, "invalid restart policy format: maximum retry count must be an integer");

	/* with --rm: refused, as docker refuses it */
	struct cli_ctx ctx = test_ctx();
	char *argv[] = {"run", "--rm", "--restart", "always", "busybox", NULL};
	struct cli_run_config cfg = {0};
	assert_int_not_equal(cli_run_parse(&ctx, 5, argv, false, &cfg), 0);
	cli_run_config_done(&cfg);
	char *argv2[] = {"run", "--rm", "--restart", "no", "busybox", NULL};
	assert_int_equal(cli_run_parse(&ctx, 5, argv2, false, &cfg), 0);
	cli_run_config_done(&cfg);
	char *argv3[] = {"run", "-d", "--restart", "unless-stopped", "busybox", NULL};
	assert_int_equal(cli_run_parse(&ctx, 5, argv3, false, &cfg), 0);
	json_t *rp = json_object_get(json_object_get(cfg.body, "HostConfig"), "RestartPolicy");
	assert_string_equal(json_string_value(json_object_get(rp, "Name")), "unless-stopped");
	cli_run_config_done(&cfg);
}

static void test_parse_publish(void **state)
{
	json_t *exp = json_object(), *bind = json_object();
	char err[256];
	assert_int_equal(cli_parse_publish("8080:80", exp, bind, err, sizeof(err)), 0);
	assert_int_equal(cli_parse_publish("127.0.0.1:5353:53/udp", exp, bind, err, sizeof(err)),
			 0);
	assert_int_equal(cli_parse_publish("9000", exp, bind, err, sizeof(err)), 0);
	assert_int_equal(cli_parse_publish("7000-7001:70-71", exp, bind, err, sizeof(err)), 0);
	assert_int_equal(cli_parse_publish("[::1]:8443:443", exp, bind, err, sizeof(err)), 0);
	char *s = json_dumps(bind, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"443/tcp\":[{\"HostIp\":\"::1\",\"HostPort\":\"8443\"}],"
			       "\"53/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"5353\"}],"
			       "\"70/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"7000\"}],"
			       "\"71/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"7001\"}],"
			       "\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"8080\"}],"
			       "\"9000/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"\"}]}");
	free(s);
	assert_non_null(json_object_get(exp, "53/udp"));
	assert_int_equal(json_object_size(exp), 6);
	assert_true(cli_parse_publish("80/bogus", exp, bind, err, sizeof(err)) < 0);
	assert_string_equal(err, "invalid proto: bogus");
	assert_true(cli_parse_publish("x:80", exp, bind, err, sizeof(err)) < 0);
	assert_string_equal(err, "invalid hostPort: x");
	assert_true(cli_parse_publish("8080:70000", exp, bind, err, sizeof(err)) < 0);
	assert_true(cli_parse_publish("1-3:1-2", exp, bind, err, sizeof(err)) < 0);
	json_decref(exp);
	json_decref(bind);
}

static void test_run_body(void **state)
{
	struct cli_ctx ctx = test_ctx();
	char envfile[] = "/tmp/test-cli-envXXXXXX";
	int fd = mkstemp(envfile);
	assert_true(fd >= 0);
	const char text[] = "# comment\n\n  FROMFILE=1\nTEST_CLI_FROM_HOST\nTEST_CLI_UNSET\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	setenv("TEST_CLI_FROM_HOST", "hv", 1);
	unsetenv("TEST_CLI_UNSET");
	char *argv[] = {"run",
			"-i",
			"--rm",
			"--name",
			"web",
			"-e",
			"A=1",
			"-e",
			"TEST_CLI_FROM_HOST",
			"-e",
			"TEST_CLI_UNSET",
			"--env-file",
			envfile,
			"-w",
			"/srv",
			"-u",
			"1000:1000",
			"--hostname",
			"h1",
			"--entrypoint",
			"/bin/sh",
			"--memory",
			"64m",
			"--memory-swap",
			"-1",
			"--cpus",
			"0.5",
			"--cpu-shares",
			"512",
			"--pids-limit",
			"100",
			"--read-only",
			"--cap-add",
			"NET_ADMIN",
			"--cap-drop",
			"ALL",
			"--security-opt",
			"seccomp=unconfined",
			"--network",
			"none",
			"--label",
			"a=b",
			"--label",
			"flag",
			"--log-opt",
			"max-size=1m",
			"--log-opt",
			"max-file=3",
			"-p",
			"8080:80",
			"busybox",
			"sh",
			"-c",
			"echo hi",
			NULL};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
	struct cli_run_config cfg = {0};
	assert_int_equal(cli_run_parse(&ctx, argc, argv, false, &cfg), 0);
	unlink(envfile);
	assert_string_equal(cfg.name, "web");
	assert_string_equal(cfg.image, "busybox");
	assert_false(cfg.detach);
	assert_true(cfg.interactive);
	assert_true(cfg.rm);
	assert_true(cfg.sig_proxy);
	json_t *b = cfg.body;
	assert_string_equal(json_string_value(json_object_get(b, "Image")), "busybox");
	char *s = json_dumps(json_object_get(b, "Env"), JSON_COMPACT);
	/* env-file entries first, then -e; unset bare names are dropped. */
	assert_string_equal(
		s, "[\"FROMFILE=1\",\"TEST_CLI_FROM_HOST=hv\",\"A=1\",\"TEST_CLI_FROM_HOST=hv\"]");
	free(s);
	s = json_dumps(json_object_get(b, "Cmd"), JSON_COMPACT);
	assert_string_equal(s, "[\"sh\",\"-c\",\"echo hi\"]");
	free(s);
	s = json_dumps(json_object_get(b, "Entrypoint"), JSON_COMPACT);
	assert_string_equal(s, "[\"/bin/sh\"]");
	free(s);
	assert_string_equal(json_string_value(json_object_get(b, "WorkingDir")), "/srv");
	assert_string_equal(json_string_value(json_object_get(b, "User")), "1000:1000");
	assert_string_equal(json_string_value(json_object_get(b, "Hostname")), "h1");
	assert_true(json_is_true(json_object_get(b, "AttachStdin")));
	assert_true(json_is_true(json_object_get(b, "AttachStdout")));
	assert_true(json_is_true(json_object_get(b, "OpenStdin")));
	assert_true(json_is_true(json_object_get(b, "StdinOnce")));
	assert_true(json_is_false(json_object_get(b, "Tty")));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(b, "Labels"), "flag")), "");
	assert_non_null(json_object_get(json_object_get(b, "ExposedPorts"), "80/tcp"));
	json_t *hc = json_object_get(b, "HostConfig");
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 64 * 1024 * 1024);
	assert_int_equal(json_integer_value(json_object_get(hc, "MemorySwap")), -1);
	assert_int_equal(json_integer_value(json_object_get(hc, "NanoCpus")), 500000000);
	assert_int_equal(json_integer_value(json_object_get(hc, "CpuShares")), 512);
	assert_int_equal(json_integer_value(json_object_get(hc, "PidsLimit")), 100);
	assert_true(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
	assert_true(json_is_true(json_object_get(hc, "AutoRemove")));
	assert_true(json_is_false(json_object_get(hc, "Privileged")));
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "none");
	s = json_dumps(json_object_get(hc, "LogConfig"), JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(
		s, "{\"Config\":{\"max-file\":\"3\",\"max-size\":\"1m\"},\"Type\":\"json-file\"}");
	free(s);
	s = json_dumps(json_object_get(hc, "CapAdd"), JSON_COMPACT);
	assert_string_equal(s, "[\"NET_ADMIN\"]");
	free(s);
	s = json_dumps(json_object_get(hc, "SecurityOpt"), JSON_COMPACT);
	assert_string_equal(s, "[\"seccomp=unconfined\"]");
	free(s);
	s = json_dumps(json_object_get(hc, "PortBindings"), JSON_COMPACT);
	assert_string_equal(s, "{\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"8080\"}]}");
	free(s);
	cli_run_config_done(&cfg);
}

static void test_run_detach_defaults(void **state)
{
	struct cli_ctx ctx = test_ctx();
	char *argv[] = {"run", "-d", "-t", "alpine", NULL};
	struct cli_run_config cfg = {0};
	assert_int_equal(cli_run_parse(&ctx, 4, argv, false, &cfg), 0);
	assert_true(cfg.detach);
	assert_false(cfg.sig_proxy); /* never with a tty */
	json_t *b = cfg.body;
	assert_null(json_object_get(b, "Cmd"));
	assert_null(json_object_get(b, "Env"));
	assert_true(json_is_false(json_object_get(b, "AttachStdout")));
	assert_true(json_is_false(json_object_get(b, "AttachStdin")));
	assert_true(json_is_true(json_object_get(b, "Tty")));
	json_t *hc = json_object_get(b, "HostConfig");
	assert_null(json_object_get(hc, "Memory"));
	assert_null(json_object_get(hc, "LogConfig"));
	assert_null(cfg.name);
	cli_run_config_done(&cfg);
}

static void test_run_bad_values(void **state)
{
	struct cli_ctx ctx = test_ctx();
	struct cli_run_config cfg = {0};
	/* Usage errors exit 125 like docker; a missing IMAGE is an argument error (1). */
	char *a1[] = {"run", "--memory", "lots", "img", NULL};
	assert_int_equal(cli_run_parse(&ctx, 4, a1, false, &cfg), 125);
	char *a2[] = {"run", "--cpus", "x", "img", NULL};
	assert_int_equal(cli_run_parse(&ctx, 4, a2, false, &cfg), 125);
	char *a3[] = {"run", "-d", NULL};
	assert_int_equal(cli_run_parse(&ctx, 2, a3, false, &cfg), 1);
	char *a4[] = {"run", "--log-opt", "nokey", "img", NULL};
	assert_int_equal(cli_run_parse(&ctx, 4, a4, false, &cfg), 125);
	char *a5[] = {"run", "-p", "1:2:3:4", "img", NULL};
	assert_int_equal(cli_run_parse(&ctx, 4, a5, false, &cfg), 125);
	assert_null(cfg.body);
}

struct collected {
	char out[256], err[256];
	size_t nout, nerr, calls;
};

static int collect_cb(void *userdata, int stream, const void *data, size_t len)
{
	struct collected *c = userdata;
	c->calls++;
	if (stream == CLI_STREAM_STDERR) {
		memcpy(c->err + c->nerr, data, len);
		c->nerr += len;
	} else {
		memcpy(c->out + c->nout, data, len);
		c->nout += len;
	}
	return 0;
}

static size_t frame(uint8_t *buf, int stream, const char *s)
{
	size_t n = strlen(s);
	buf[0] = (uint8_t)stream;
	buf[1] = buf[2] = buf[3] = 0;
	buf[4] = (uint8_t)(n >> 24);
	buf[5] = (uint8_t)(n >> 16);
	buf[6] = (uint8_t)(n >> 8);
	buf[7] = (uint8_t)n;
	memcpy(buf + 8, s, n);
	return n + 8;
}

static void test_stdcopy_split(void **state)
{
	uint8_t buf[256];
	size_t n = 0;
	n += frame(buf + n, 1, "hello ");
	n += frame(buf + n, 2, "oops\n");
	n += frame(buf + n, 1, "");
	n += frame(buf + n, 1, "world\n");
	/* Every way of splitting the stream in two, then one byte at a time. */
	for (size_t cut = 0; cut <= n; cut++) {
		struct cli_stdcopy sc = {0};
		struct collected c = {0};
		assert_int_equal(cli_stdcopy_feed(&sc, buf, cut, collect_cb, &c), 0);
		assert_int_equal(cli_stdcopy_feed(&sc, buf + cut, n - cut, collect_cb, &c), 0);
		assert_true(cli_stdcopy_idle(&sc));
		assert_int_equal(c.nout, 12);
		assert_memory_equal(c.out, "hello world\n", 12);
		assert_int_equal(c.nerr, 5);
		assert_memory_equal(c.err, "oops\n", 5);
	}
	struct cli_stdcopy sc = {0};
	struct collected c = {0};
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(cli_stdcopy_feed(&sc, buf + i, 1, collect_cb, &c), 0);
		if (i == 3)
			assert_false(cli_stdcopy_idle(&sc));
	}
	assert_int_equal(c.nout, 12);
	assert_memory_equal(c.out, "hello world\n", 12);

	uint8_t bad[8] = {7, 0, 0, 0, 0, 0, 0, 1};
	struct cli_stdcopy sc2 = {0};
	assert_int_equal(cli_stdcopy_feed(&sc2, bad, 8, collect_cb, &c), -EBADMSG);
}

static void decode_all(const char *in, size_t step, char *out, size_t outsize, size_t *ret_len,
		       bool *ret_done)
{
	struct cli_chunked d = {0};
	size_t len = strlen(in), off = 0, o = 0;
	while (off < len && !d.done) {
		size_t n = len - off < step ? len - off : step, used = 0;
		/* Small output windows exercise resuming in the middle of a chunk. */
		ssize_t r = cli_chunked_decode(&d, in + off, n, &used, out + o,
					       3 < outsize - o ? 3 : outsize - o);
		assert_true(r >= 0);
		o += (size_t)r;
		off += used;
	}
	*ret_len = o;
	*ret_done = d.done;
}

static void test_chunked(void **state)
{
	const char *in =
		"5\r\nhello\r\n1;ext=1\r\n \r\nB\r\nchunked way\r\n0\r\nX-Trailer: y\r\n\r\n";
	for (size_t step = 1; step <= strlen(in); step++) {
		char out[64];
		size_t n;
		bool done;
		decode_all(in, step, out, sizeof(out), &n, &done);
		assert_true(done);
		assert_int_equal(n, 17);
		assert_memory_equal(out, "hello chunked way", 17);
	}
	struct cli_chunked d = {0};
	size_t used;
	char out[16];
	assert_int_equal(cli_chunked_decode(&d, "zz\r\n", 4, &used, out, sizeof(out)), -EBADMSG);
	struct cli_chunked d2 = {0};
	assert_int_equal(cli_chunked_decode(&d2, "2\r\nabX", 6, &used, out, sizeof(out)), -EBADMSG);
	struct cli_chunked d3 = {0};
	assert_int_equal(
		cli_chunked_decode(&d3, "ffffffffffffffffff\r\n", 20, &used, out, sizeof(out)),
		-EBADMSG);
	/* The decoder stops exactly after the last chunk: bytes after it stay unread. */
	struct cli_chunked d4 = {0};
	ssize_t r = cli_chunked_decode(&d4, "1\r\na\r\n0\r\n\r\nNEXT", 15, &used, out, sizeof(out));
	assert_int_equal(r, 1);
	assert_true(d4.done);
	assert_int_equal(used, 11);
}

static void test_human(void **state)
{
	char b[64];
	struct {
		int64_t s;
		const char *want;
	} d[] = {
		{0, "Less than a second"}, {1, "1 second"},	    {5, "5 seconds"},
		{59, "59 seconds"},	   {60, "About a minute"},  {119, "About a minute"},
		{120, "2 minutes"},	   {3599, "59 minutes"},    {3600, "About an hour"},
		{5399, "About an hour"},   {5400, "2 hours"},	    {47 * 3600, "47 hours"},
		{48 * 3600, "2 days"},	   {14 * 86400, "2 weeks"}, {60 * 86400, "2 months"},
		{800 * 86400, "2 years"},
	};
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		cli_human_duration(d[i].s, b, sizeof(b));
		assert_string_equal(b, d[i].want);
	}
	cli_human_size(0, 3, b, sizeof(b));
	assert_string_equal(b, "0B");
	cli_human_size(999, 3, b, sizeof(b));
	assert_string_equal(b, "999B");
	cli_human_size(1000, 3, b, sizeof(b));
	assert_string_equal(b, "1kB");
	cli_human_size(4261234, 3, b, sizeof(b));
	assert_string_equal(b, "4.26MB");
	cli_human_size(1.5e9, 3, b, sizeof(b));
	assert_string_equal(b, "1.5GB");
	cli_bytes_size(25137229824.0, b, sizeof(b));
	assert_string_equal(b, "23.41GiB");
	cli_bytes_size(1024, b, sizeof(b));
	assert_string_equal(b, "1KiB");
}

static void test_strings(void **state)
{
	char *s = cli_ellipsis("sh -c 'while true; do sleep 1; done'", 20);
	assert_string_equal(s, "sh -c 'while true; …");
	assert_int_equal(cli_str_width(s), 20);
	free(s);
	s = cli_ellipsis("short", 20);
	assert_string_equal(s, "short");
	free(s);
	s = cli_quote("a \"b\"\\\n");
	assert_string_equal(s, "\"a \\\"b\\\"\\\\\\n\"");
	free(s);
	char id[32];
	cli_short_id("sha256:0123456789abcdef0123", id, sizeof(id));
	assert_string_equal(id, "0123456789ab");
	cli_short_id("fedcba9876543210fedcba", id, sizeof(id));
	assert_string_equal(id, "fedcba987654");
}

static void test_daemon_error(void **state)
{
	char b[256];
	cli_daemon_error(404, "{\"message\":\"No such image: nope:latest\"}", b, sizeof(b));
	assert_string_equal(b, "Error response from daemon: No such image: nope:latest");
	cli_daemon_error(500, "plain failure\n", b, sizeof(b));
	assert_string_equal(b, "Error response from daemon: plain failure");
	cli_daemon_error(502, "", b, sizeof(b));
	assert_string_equal(b, "Error response from daemon: unexpected status 502");
	cli_daemon_error(400, "{\"other\":1}", b, sizeof(b));
	assert_string_equal(b, "Error response from daemon: unexpected status 400");
}

static void test_table(void **state)
{
	struct cli_table *t = cli_table_new(3);
	const char *h[] = {"CONTAINER ID", "IMAGE", "NAMES"};
	const char *r1[] = {"0123456789ab", "busybox", "web"};
	const char *r2[] = {"abc", "a-very-long-image-name", "x"};
	assert_int_equal(cli_table_add(t, h), 0);
	assert_int_equal(cli_table_add(t, r1), 0);
	assert_int_equal(cli_table_add(t, r2), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cli_table_print(t, f);
	fclose(f);
	assert_string_equal(buf, "CONTAINER ID   IMAGE                    NAMES\n"
				 "0123456789ab   busybox                  web\n"
				 "abc            a-very-long-image-name   x\n");
	free(buf);
	cli_table_free(t);
}

static void test_template(void **state)
{
	json_t *v = json_loads(
		"{\"Id\":\"abc\",\"State\":{\"ExitCode\":3,\"Running\":false,\"Pid\":null},"
		"\"Config\":{\"Cmd\":[\"sh\",\"-c\"],\"Labels\":{\"b\":\"2\",\"a\":\"1\"}},"
		"\"Ratio\":0.5}",
		0, NULL);
	assert_non_null(v);
	char err[256];
	struct {
		const char *t, *want;
	} cases[] = {
		{"{{.State.ExitCode}}", "3"},
		{"id={{.Id}} running={{ .State.Running }}", "id=abc running=false"},
		{"{{.Config.Cmd}}", "[sh -c]"},
		{"{{.Config.Labels}}", "map[a:1 b:2]"},
		{"{{json .Config.Cmd}}", "[\"sh\",\"-c\"]"},
		{"{{index .Config.Labels \"b\"}}", "2"},
		{"{{index .Config.Cmd 1}}", "-c"},
		{"{{join .Config.Cmd \",\"}}", "sh,-c"},
		{"{{len .Config.Cmd}}", "2"},
		{"{{upper .Id}}", "ABC"},
		{"{{.Missing}}", "<no value>"},
		{"{{.State.Pid}}", "<nil>"},
		{"{{.Ratio}}", "0.5"},
		{"no actions", "no actions"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = cli_template_render(cases[i].t, v, err, sizeof(err));
		assert_non_null(s);
		assert_string_equal(s, cases[i].want);
		free(s);
	}
	assert_null(cli_template_render("{{.Id", v, err, sizeof(err)));
	assert_string_equal(err, "unclosed action");
	assert_null(cli_template_render("{{bogus .Id}}", v, err, sizeof(err)));
	assert_null(cli_template_render("{{.Id.Sub}}", v, err, sizeof(err)));
	assert_null(cli_template_render("{{index .Config.Cmd 5}}", v, err, sizeof(err)));
	json_decref(v);
}

static void test_parse_timestamp(void **state)
{
	char b[40];
	assert_int_equal(cli_parse_timestamp("1700000000", 2000, b, sizeof(b)), 0);
	assert_string_equal(b, "1700000000");
	assert_int_equal(cli_parse_timestamp("42m", 10000, b, sizeof(b)), 0);
	assert_string_equal(b, "7480");
	assert_int_equal(cli_parse_timestamp("1h30m", 10000, b, sizeof(b)), 0);
	assert_string_equal(b, "4600");
	assert_int_equal(cli_parse_timestamp("2013-01-02T13:23:37Z", 0, b, sizeof(b)), 0);
	assert_string_equal(b, "1357133017.000000000");
	assert_int_equal(cli_parse_timestamp("2013-01-02T13:23:37.5+01:00", 0, b, sizeof(b)), 0);
	assert_string_equal(b, "1357129417.500000000");
	assert_true(cli_parse_timestamp("yesterday", 0, b, sizeof(b)) < 0);
	assert_true(cli_parse_timestamp("5x", 0, b, sizeof(b)) < 0);
}

static void test_parse_host(void **state)
{
	char p[108];
	assert_int_equal(cli_http_parse_host("unix:///run/x.sock", p, sizeof(p)), 0);
	assert_string_equal(p, "/run/x.sock");
	assert_int_equal(cli_http_parse_host("/tmp/y", p, sizeof(p)), 0);
	assert_string_equal(p, "/tmp/y");
	assert_true(cli_http_parse_host("tcp://1.2.3.4:2375", p, sizeof(p)) < 0);
	assert_true(cli_http_parse_host("unix://relative", p, sizeof(p)) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_cluster_and_forms),
		cmocka_unit_test(test_opts_interspersed_and_errors),
		cmocka_unit_test(test_parse_cpus),
		cmocka_unit_test(test_parse_restart),
		cmocka_unit_test(test_parse_publish),
		cmocka_unit_test(test_run_body),
		cmocka_unit_test(test_run_detach_defaults),
		cmocka_unit_test(test_run_bad_values),
		cmocka_unit_test(test_stdcopy_split),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_human),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_daemon_error),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_template),
		cmocka_unit_test(test_parse_timestamp),
		cmocka_unit_test(test_parse_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
