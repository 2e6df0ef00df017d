// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/container-config.h"

#define MIB (INT64_C(1) << 20)
#define GIB (INT64_C(1) << 30)

/* A 4-CPU machine with 8 GiB of memory and 2 GiB of swap. */
static const struct container_host host = {
	.mem_bytes = 8 * GIB,
	.swap_bytes = 2 * GIB,
	.ncpus = 4,
};

/* Checks body (JSON text); returns the result, the message in err. */
static int check(const char *text, struct shoal_err *err)
{
	json_error_t jerr;
	json_t *body = json_loads(text, 0, &jerr);
	assert_non_null(body);
	memset(err, 0, sizeof(*err));
	int r = container_config_check_host(body, &host, err);
	json_decref(body);
	return r;
}

static void expect_ok(const char *text)
{
	struct shoal_err err;
	int r = check(text, &err);
	if (r != 0)
		fail_msg("%s: refused: %s", text, err.msg);
}

/* Refused with EINVAL and a message that names what: (the field). */
static void expect_bad(const char *text, const char *what)
{
	struct shoal_err err;
	int r = check(text, &err);
	if (r != -EINVAL)
		fail_msg("%s: accepted (r=%d)", text, r);
	if (!strstr(err.msg, what))
		fail_msg("%s: message \"%s\" does not name \"%s\"", text, err.msg, what);
}

static void test_memory(void **state)
{
	expect_ok("{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":16777216}}");
	expect_ok("{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":8589934592}}");
	/* The INT64_MAX, and one byte more than the machine has. */
	expect_bad("{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":9223372036854775807}}",
		   "HostConfig.Memory");
	expect_bad("{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":8589934593}}",
		   "more than this machine has");
	expect_bad("{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":-1}}", "HostConfig.Memory");
	expect_bad("{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":1048576}}", "6MB");
	expect_bad("{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":\"1g\"}}", "Memory");
}

static void test_memory_swap(void **state)
{
	/* -1 unlimited, 0 default, or at least Memory. */
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":16777216,\"MemorySwap\":-1}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":16777216,\"MemorySwap\":0}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":16777216,\"MemorySwap\":33554432}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"MemorySwap\":-1}}");
	/* The issue's -5. */
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":16777216,\"MemorySwap\":-5}}",
		   "HostConfig.MemorySwap");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"MemorySwap\":33554432}}",
		   "HostConfig.MemorySwap");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":33554432,\"MemorySwap\":16777216}}",
		   "larger than memory");
	/* 8 GiB of memory and 2 of swap: 11 GiB of both is more than there is. */
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":16777216,"
		   "\"MemorySwap\":11811160064}}",
		   "memory and swap");
}

static void test_cpu_pids(void **state)
{
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"NanoCpus\":4000000000,\"CpuShares\":512,"
		  "\"PidsLimit\":-1}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"PidsLimit\":0}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"PidsLimit\":100}}");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"NanoCpus\":4000000001}}",
		   "HostConfig.NanoCpus");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"NanoCpus\":-1}}", "NanoCpus");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"CpuShares\":-2}}", "HostConfig.CpuShares");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"CpuShares\":262145}}", "CpuShares");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"PidsLimit\":-2}}", "HostConfig.PidsLimit");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"PidsLimit\":9223372036854775807}}",
		   "HostConfig.PidsLimit");
}

static void test_hostname(void **state)
{
	expect_ok("{\"Image\":\"b\",\"Hostname\":\"web-1\"}");
	expect_ok("{\"Image\":\"b\",\"Hostname\":\"\"}");
	expect_ok("{\"Image\":\"b\",\"Hostname\":\"a\",\"Domainname\":\"example.org\"}");
	/* The newline, which would add a line to /etc/hosts. */
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"box\\n10.0.0.1 evil\"}", "Hostname");
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"box\\n\"}", "0x0a");
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"a b\"}", "Hostname");
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"a_b\"}", "'_'");
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"-a\"}", "hyphen");
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"a-\"}", "hyphen");
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"a..b\"}", "empty label");
	expect_bad("{\"Image\":\"b\",\"Hostname\":\"h\\u00e9\"}", "0xc3");
	expect_bad("{\"Image\":\"b\",\"Domainname\":\"example..org\"}", "Domainname");

	/* 63 per label, 253 in all. */
	char name[300], body[400];
	memset(name, 'a', 63);
	name[63] = '\0';
	snprintf(body, sizeof(body), "{\"Image\":\"b\",\"Hostname\":\"%s\"}", name);
	expect_ok(body);
	memset(name, 'a', 64);
	name[64] = '\0';
	snprintf(body, sizeof(body), "{\"Image\":\"b\",\"Hostname\":\"%s\"}", name);
	expect_bad(body, "at most 63");

	struct shoal_err err = {};
	char fqdn[300] = "";
	for (int i = 0; i < 4; i++) {
		if (i)
			strcat(fqdn, ".");
		memset(fqdn + strlen(fqdn), 'a' + i, 62);
	}
	assert_int_equal(strlen(fqdn), 251);
	assert_int_equal(container_hostname_check("Domainname", fqdn, &err), 0);
	strcat(fqdn, ".ab");
	assert_int_equal(container_hostname_check("Domainname", fqdn, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "253"));
}

static void test_user(void **state)
{
	expect_ok("{\"Image\":\"b\",\"User\":\"1000\"}");
	expect_ok("{\"Image\":\"b\",\"User\":\"app:staff\"}");
	expect_ok("{\"Image\":\"b\",\"User\":\"\"}");
	expect_bad("{\"Image\":\"b\",\"User\":\"1000\\n\"}", "User");
	expect_bad("{\"Image\":\"b\",\"User\":\"a:b:c\"}", "User");
	expect_bad("{\"Image\":\"b\",\"User\":\":100\"}", "User");
	expect_bad("{\"Image\":\"b\",\"User\":\"100:\"}", "User");
}

/* Fields shoal does not do: refused unless they ask for nothing; what the
 * docker CLI sends by default passes. */
static void test_unsupported(void **state)
{
	/* the docker CLI's defaults for `docker create busybox true` */
	expect_ok("{\"Image\":\"busybox\",\"Volumes\":{},\"OnBuild\":null,\"MacAddress\":\"\","
		  "\"HostConfig\":{\"Binds\":null,\"NetworkMode\":\"default\",\"RestartPolicy\":"
		  "{\"Name\":\"no\",\"MaximumRetryCount\":0},\"ConsoleSize\":[0,0],\"Dns\":[],"
		  "\"MemorySwappiness\":-1,\"Ulimits\":[],\"BlkioWeightDevice\":[]},"
		  "\"NetworkingConfig\":{\"EndpointsConfig\":{\"default\":{\"IPAMConfig\":null,"
		  "\"Aliases\":null,\"MacAddress\":\"\",\"IPPrefixLen\":0}}}}");
	expect_bad("{\"Image\":\"busybox\",\"HostConfig\":{\"MemorySwappiness\":10}}",
		   "HostConfig.MemorySwappiness");
	/* keys ask for something even with empty values */
	expect_bad("{\"Image\":\"busybox\",\"Shell\":[\"/bin/sh\"]}", "Shell");
	expect_bad("{\"Image\":\"busybox\",\"NetworkingConfig\":{\"EndpointsConfig\":"
		   "{\"bridge\":{\"Aliases\":[\"a\"]}}}}",
		   "NetworkingConfig.EndpointsConfig.bridge");
	expect_bad("{\"Image\":\"busybox\",\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"]}}",
		   "Healthcheck");
	expect_bad("{\"Image\":\"busybox\",\"HostConfig\":{\"MemoryReservation\":1048576}}",
		   "HostConfig.MemoryReservation");
	expect_bad("{\"Image\":\"busybox\",\"StopTimeout\":-3}", "StopTimeout");
	expect_ok("{\"Image\":\"busybox\",\"StopTimeout\":3}");
	/* a service's task: its health check and reservation are the agent's */
	expect_ok("{\"Image\":\"busybox\",\"Labels\":{\"com.docker.swarm.task.id\":\"t\"},"
		  "\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"]},"
		  "\"HostConfig\":{\"MemoryReservation\":1048576,\"Init\":true}}");
}

static void test_mounts(void **state)
{
	(void)state;
	expect_ok("{\"Image\":\"b\",\"Volumes\":{\"/data\":{}},\"HostConfig\":{\"Binds\":"
		  "[\"/tmp:/x\",\"/tmp:/y:ro\",\"vol-1:/v:nocopy\"],\"Tmpfs\":{\"/run\":"
		  "\"rw,noexec,size=64m,mode=1777\"},\"Mounts\":[{\"Type\":\"bind\",\"Source\":"
		  "\"/tmp\",\"Target\":\"/m\",\"ReadOnly\":true},{\"Type\":\"volume\",\"Target\":"
		  "\"/anon\"},{\"Type\":\"tmpfs\",\"Target\":\"/t\",\"TmpfsOptions\":"
		  "{\"SizeBytes\":1048576,\"Mode\":448}}]}}");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/tmp\"]}}",
		   "HostConfig.Binds[0]");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/tmp:/x:Z\"]}}",
		   "mode option \"Z\"");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/tmp:/x/../y\"]}}",
		   "not a clean path");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/tmp:/\"]}}", "cannot be /");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"-bad:/x\"]}}",
		   "not a valid volume name");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/a:/x\"],\"Tmpfs\":"
		   "{\"/x\":\"\"}}}",
		   "Duplicate mount point: /x");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Tmpfs\":{\"/t\":\"size=big\"}}}",
		   "bad tmpfs option");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Tmpfs\":{\"/t\":\"suid\"}}}",
		   "tmpfs option \"suid\"");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\","
		   "\"Source\":\"rel\",\"Target\":\"/x\"}]}}",
		   "HostConfig.Mounts[0].Source");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\","
		   "\"Source\":\"/a\",\"Target\":\"/x\",\"BindOptions\":{\"Propagation\":"
		   "\"shared\"}}]}}",
		   "Propagation");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\","
		   "\"Target\":\"/x\",\"VolumeOptions\":{\"Subpath\":\"a\"}}]}}",
		   "HostConfig.Mounts[0].VolumeOptions.Subpath");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"tmpfs\","
		   "\"Source\":\"x\",\"Target\":\"/x\"}]}}",
		   "a tmpfs has no source");
}

static void test_log_opts(void **state)
{
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\","
		  "\"Config\":{\"max-file\":\"3\",\"max-size\":\"10m\"}}}}");
	expect_bad(
		"{\"Image\":\"b\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-file\":\"3x\"}}}}",
		"max-file");
	expect_bad(
		"{\"Image\":\"b\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-file\":\"0\"}}}}",
		"max-file");
}

/* HostConfig.RestartPolicy: Docker's names, its count rules and messages. */
static void test_restart_policy(void **state)
{
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\"}}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"unless-stopped\","
		  "\"MaximumRetryCount\":0}}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"on-failure\","
		  "\"MaximumRetryCount\":5}}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"no\"}}}");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":null}}");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"sometimes\"}}}",
		   "invalid restart policy: unknown policy 'sometimes'; use one of 'no', "
		   "'always', 'on-failure', or 'unless-stopped'");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\","
		   "\"MaximumRetryCount\":2}}}",
		   "maximum retry count can only be used with 'on-failure'");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"no\","
		   "\"MaximumRetryCount\":-1}}}",
		   "can only be used with 'on-failure' and cannot be negative");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"on-failure\","
		   "\"MaximumRetryCount\":-2}}}",
		   "maximum retry count cannot be negative");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"on-failure\","
		   "\"MaximumRetryCount\":\"3\"}}}",
		   "HostConfig.RestartPolicy.MaximumRetryCount");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\","
		   "\"Delay\":5}}}",
		   "HostConfig.RestartPolicy.Delay");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":\"always\"}}",
		   "HostConfig.RestartPolicy");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"AutoRemove\":true,\"RestartPolicy\":"
		   "{\"Name\":\"always\"}}}",
		   "can't create 'AutoRemove' container with restart policy");
	expect_ok("{\"Image\":\"b\",\"HostConfig\":{\"AutoRemove\":true,\"RestartPolicy\":"
		  "{\"Name\":\"no\"}}}");
	/* a service's task restarts by its service's policy */
	expect_bad("{\"Image\":\"b\",\"Labels\":{\"com.docker.swarm.task.id\":\"t1\"},"
		   "\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\"}}}",
		   "HostConfig.RestartPolicy");

	struct container_restart_policy p;
	json_t *v = json_pack("{s:s, s:i}", "Name", "on-failure", "MaximumRetryCount", 2);
	assert_int_equal(container_restart_policy_parse(v, &p, NULL), 0);
	json_decref(v);
	assert_int_equal(p.mode, CONTAINER_RESTART_ON_FAILURE);
	assert_int_equal(p.max_retries, 2);
	assert_int_equal(container_restart_policy_parse(NULL, &p, NULL), 0);
	assert_int_equal(p.mode, CONTAINER_RESTART_NO);
	/* a count without a name: no policy, as Docker accepts it */
	v = json_pack("{s:s, s:i}", "Name", "", "MaximumRetryCount", 3);
	assert_int_equal(container_restart_policy_parse(v, &p, NULL), 0);
	json_decref(v);
	assert_int_equal(p.mode, CONTAINER_RESTART_NO);
}

/* Which exits restart, under which policy, and which at agent start. */
static void test_restart_decide(void **state)
{
	const struct container_restart_policy no = {CONTAINER_RESTART_NO, 0},
					      always = {CONTAINER_RESTART_ALWAYS, 0},
					      unless = {CONTAINER_RESTART_UNLESS_STOPPED, 0},
					      onf = {CONTAINER_RESTART_ON_FAILURE, 0},
					      onf2 = {CONTAINER_RESTART_ON_FAILURE, 2};
	assert_false(container_restart_on_exit(&no, 1, false, 0));
	assert_true(container_restart_on_exit(&always, 0, false, 0));
	assert_true(container_restart_on_exit(&always, 0, true, 100));
	assert_true(container_restart_on_exit(&unless, 0, false, 7));
	assert_false(container_restart_on_exit(&unless, 0, true, 0));
	assert_false(container_restart_on_exit(&onf, 0, false, 0));
	assert_true(container_restart_on_exit(&onf, 3, false, 1000));
	assert_true(container_restart_on_exit(&onf2, 3, false, 0));
	assert_true(container_restart_on_exit(&onf2, 3, false, 1));
	assert_false(container_restart_on_exit(&onf2, 3, false, 2));
	assert_false(container_restart_on_exit(&onf2, 0, false, 0));

	assert_true(container_restart_at_agent_start(&always, false));
	assert_true(container_restart_at_agent_start(&always, true));
	assert_true(container_restart_at_agent_start(&unless, false));
	assert_false(container_restart_at_agent_start(&unless, true));
	assert_false(container_restart_at_agent_start(&onf, false));
	assert_false(container_restart_at_agent_start(&no, false));
}

static void test_restart_backoff(void **state)
{
	const int64_t s = 1000000000;
	int64_t d = container_restart_backoff_ms(0, 0);
	assert_int_equal(d, 100);
	int64_t want[] = {200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = container_restart_backoff_ms(d, s);
		assert_int_equal(d, want[i]);
	}
	/* a run of 10 s or more starts the backoff over */
	assert_int_equal(container_restart_backoff_ms(60000, 10 * s), 100);
	assert_int_equal(container_restart_backoff_ms(800, 10 * s - 1), 1600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_memory_swap),
		cmocka_unit_test(test_cpu_pids),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_log_opts),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_restart_policy),
		cmocka_unit_test(test_restart_decide),
		cmocka_unit_test(test_restart_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
