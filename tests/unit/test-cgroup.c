// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/cgroup.h"

#define MIB (1024 * 1024)

struct fixture {
	char parent[64]; /* absolute, unique per run */
	enum rt_cgroup_layout layout;
	struct rt_cgroup *cg;
	pid_t child;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->parent, sizeof(f->parent), "/shoal-test-sec-%d", (int)getpid());
	f->child = -1;
	*state = f;
	return 0;
}

static int setup_rel(void **state)
{
	setup(state);
	struct fixture *f = *state;
	snprintf(f->parent, sizeof(f->parent), "shoal-test-rel-%d", (int)getpid());
	return 0;
}

/* Cleans up whatever a failed test left: the child, the container cgroup, the parent. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	if (f->cg) {
		rt_cgroup_destroy(f->cg, NULL);
		rt_cgroup_free(f->cg);
	}
	struct rt_cgroup *cg = NULL;
	if (rt_cgroup_open(f->parent, "c1", &cg, NULL) == 0) {
		rt_cgroup_destroy(cg, NULL);
		rt_cgroup_free(cg);
	}
	rt_cgroup_parent_remove(f->parent, NULL);
	free(f);
	return 0;
}

static void need_root(void)
{
	if (geteuid() != 0 || access("/sys/fs/cgroup", W_OK) != 0)
		skip();
}

static bool is_dir(const char *p)
{
	struct stat st;
	return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int64_t knob(const char *dir, const char *name)
{
	char path[512];
	int64_t v = -12345;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_int64_file(path, &v) < 0)
		return -12345;
	return v;
}

static char *knob_str(const char *dir, const char *name)
{
	char path[512];
	char *s = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_file(path, 4096, &s, NULL) < 0)
		return NULL;
	s[strcspn(s, "\n")] = '\0';
	return s;
}

static bool pid_listed(const char *dir, pid_t pid)
{
	char path[512];
	_cleanup_free_ char *s = NULL;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (read_file(path, 1 << 20, &s, NULL) < 0)
		return false;
	for (char *p = s; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v == pid)
			return true;
		p = end + (*end == '\n');
	}
	return false;
}

static void test_conversions(void **state)
{
	assert_int_equal(rt_cgroup_cpu_quota(1000000000LL, 100000), 100000);
	assert_int_equal(rt_cgroup_cpu_quota(1500000000LL, 100000), 150000);
	assert_int_equal(rt_cgroup_cpu_quota(10000000LL, 100000), 1000); /* 0.01 CPU */
	assert_int_equal(rt_cgroup_cpu_quota(250000000LL, 100000), 25000);
	assert_int_equal(rt_cgroup_cpu_quota(0, 100000), 0);

	assert_int_equal(rt_cgroup_shares_to_weight(0), 0);
	assert_int_equal(rt_cgroup_shares_to_weight(2), 1);
	assert_int_equal(rt_cgroup_shares_to_weight(1024), 39); /* runc: 1 + 1022*9999/262142 */
	assert_int_equal(rt_cgroup_shares_to_weight(512), 20);
	assert_int_equal(rt_cgroup_shares_to_weight(262144), 10000);
	assert_int_equal(rt_cgroup_shares_to_weight(1), 1);
	assert_int_equal(rt_cgroup_shares_to_weight(1000000), 10000);
}

static void test_validate(void **state)
{
	struct shoal_err err = {};
	struct rt_cgroup_limits ok = {.memory = 64 * MIB, .nano_cpus = 500000000};
	assert_int_equal(rt_cgroup_limits_validate(&ok, &err), 0);

	struct rt_cgroup_limits small = {.memory = 1 * MIB};
	assert_int_equal(rt_cgroup_limits_validate(&small, &err), -EINVAL);
	assert_int_equal(err.status, 400);
	struct rt_cgroup_limits swap_only = {.memory_swap = 64 * MIB};
	assert_int_equal(rt_cgroup_limits_validate(&swap_only, &err), -EINVAL);
	struct rt_cgroup_limits swap_small = {.memory = 64 * MIB, .memory_swap = 32 * MIB};
	assert_int_equal(rt_cgroup_limits_validate(&swap_small, &err), -EINVAL);
	struct rt_cgroup_limits cpu_tiny = {.nano_cpus = 1000000};
	assert_int_equal(rt_cgroup_limits_validate(&cpu_tiny, &err), -EINVAL);

	/* The MemorySwap = -5; -1 (unlimited) and 0 (default) stay valid. */
	struct rt_cgroup_limits swap_neg = {.memory = 64 * MIB, .memory_swap = -5};
	assert_int_equal(rt_cgroup_limits_validate(&swap_neg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-5"));
	struct rt_cgroup_limits swap_unl = {.memory = 64 * MIB, .memory_swap = -1};
	assert_int_equal(rt_cgroup_limits_validate(&swap_unl, &err), 0);
	struct rt_cgroup_limits mem_neg = {.memory = -1};
	assert_int_equal(rt_cgroup_limits_validate(&mem_neg, &err), -EINVAL);

	/* pids: -1 and 0 mean no limit; below, or above the kernel's
	 * PID_MAX_LIMIT (which pids.max refuses), is an error up front. */
	struct rt_cgroup_limits pids = {.pids_limit = -1};
	assert_int_equal(rt_cgroup_limits_validate(&pids, &err), 0);
	pids.pids_limit = 4 * 1024 * 1024;
	assert_int_equal(rt_cgroup_limits_validate(&pids, &err), 0);
	pids.pids_limit = -2;
	assert_int_equal(rt_cgroup_limits_validate(&pids, &err), -EINVAL);
	assert_int_equal(err.status, 400);
	assert_non_null(strstr(err.msg, "pids"));
	pids.pids_limit = 4 * 1024 * 1024 + 1;
	assert_int_equal(rt_cgroup_limits_validate(&pids, &err), -EINVAL);

	struct rt_cgroup_limits shares = {.cpu_shares = 262144};
	assert_int_equal(rt_cgroup_limits_validate(&shares, &err), 0);
	shares.cpu_shares = 262145;
	assert_int_equal(rt_cgroup_limits_validate(&shares, &err), -EINVAL);
	shares.cpu_shares = -1;
	assert_int_equal(rt_cgroup_limits_validate(&shares, &err), -EINVAL);
}

static void test_detect(void **state)
{
	struct shoal_err err = {};
	enum rt_cgroup_layout layout;
	assert_int_equal(rt_cgroup_detect(&layout, &err), 0);
	/* This machine runs v1 controllers with an empty v2 tree beside them. */
	bool v1_mem = is_dir("/sys/fs/cgroup/memory");
	bool unified = access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0;
	bool v2_root = access("/sys/fs/cgroup/cgroup.procs", F_OK) == 0;
	if (v1_mem && unified)
		assert_int_equal(layout, RT_CGROUP_HYBRID);
	else if (v2_root)
		assert_int_equal(layout, RT_CGROUP_V2);
	else if (v1_mem)
		assert_int_equal(layout, RT_CGROUP_V1);
	assert_non_null(rt_cgroup_layout_name(layout));
}

static void test_parent_prepare_remove(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	need_root();
	assert_int_equal(rt_cgroup_detect(&f->layout, &err), 0);

	char v2[4096];
	assert_int_equal(rt_cgroup_parent_prepare(f->parent, v2, sizeof(v2), &err), 0);
	/* Idempotent. */
	assert_int_equal(rt_cgroup_parent_prepare(f->parent, v2, sizeof(v2), &err), 0);
	if (f->layout != RT_CGROUP_V1) {
		assert_true(is_dir(v2));
		assert_non_null(strstr(v2, f->parent));
	} else {
		assert_string_equal(v2, "");
	}
	if (f->layout != RT_CGROUP_V2) {
		char p[256];
		snprintf(p, sizeof(p), "/sys/fs/cgroup/memory%s", f->parent);
		assert_true(is_dir(p));
		snprintf(p, sizeof(p), "/sys/fs/cgroup/pids%s", f->parent);
		assert_true(is_dir(p));
	}

	assert_int_equal(rt_cgroup_parent_remove(f->parent, &err), 0);
	assert_false(is_dir(v2[0] ? v2 : "/nonexistent"));
	if (f->layout != RT_CGROUP_V2) {
		char p[256];
		snprintf(p, sizeof(p), "/sys/fs/cgroup/memory%s", f->parent);
		assert_false(is_dir(p));
		snprintf(p, sizeof(p), "/sys/fs/cgroup/cpu%s", f->parent);
		assert_false(is_dir(p));
	}
	/* Removing what is gone is fine. */
	assert_int_equal(rt_cgroup_parent_remove(f->parent, &err), 0);
}

static void test_relative_parent(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	need_root();
	/* A relative parent lands under this process's own cgroup in each hierarchy;
	 * create makes the missing parent on the way. */
	const char *rel = f->parent;
	assert_int_equal(rt_cgroup_create(rel, "c1", NULL, &f->cg, &err), 0);
	struct rt_cgroup *cg = f->cg;

	FILE *fp = fopen("/proc/self/cgroup", "r");
	assert_non_null(fp);
	char line[1024], own_mem[1024] = "";
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		char *c = strchr(line, ':');
		if (c && strncmp(c + 1, "memory:", 7) == 0)
			snprintf(own_mem, sizeof(own_mem), "%s", c + 8);
	}
	fclose(fp);
	const char *mem = rt_cgroup_path(cg, "memory");
	if (own_mem[0] && is_dir("/sys/fs/cgroup/memory")) {
		char expect[2048];
		snprintf(expect, sizeof(expect), "/sys/fs/cgroup/memory%s/%s/c1",
			 strcmp(own_mem, "/") == 0 ? "" : own_mem, rel);
		assert_string_equal(mem, expect);
	}
	assert_true(is_dir(mem));
	char saved[1024];
	snprintf(saved, sizeof(saved), "%s", mem);
	assert_int_equal(rt_cgroup_destroy(cg, &err), 0);
	assert_false(is_dir(saved));
	rt_cgroup_free(cg);
	f->cg = NULL;
	assert_int_equal(rt_cgroup_parent_remove(rel, &err), 0);
}

static void test_create_limits_attach_destroy(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	need_root();
	assert_int_equal(rt_cgroup_detect(&f->layout, &err), 0);
	assert_int_equal(rt_cgroup_parent_prepare(f->parent, NULL, 0, &err), 0);

	struct rt_cgroup_limits lim = {
		.memory = 64 * MIB,
		.nano_cpus = 1500000000LL,
		.cpu_shares = 512,
		.pids_limit = 77,
	};
	assert_int_equal(rt_cgroup_create(f->parent, "c1", &lim, &f->cg, &err), 0);

	const char *mem = rt_cgroup_path(f->cg, "memory");
	const char *cpu = rt_cgroup_path(f->cg, "cpu");
	const char *pids = rt_cgroup_path(f->cg, "pids");
	const char *v2 = rt_cgroup_path(f->cg, "");
	assert_true(is_dir(mem) && is_dir(cpu) && is_dir(pids));
	assert_non_null(strstr(mem, f->parent));
	assert_null(rt_cgroup_path(f->cg, "blkio"));

	if (f->layout == RT_CGROUP_V2) {
		assert_int_equal(knob(v2, "memory.max"), 64 * MIB);
		assert_int_equal(knob(v2, "pids.max"), 77);
		assert_int_equal(knob(v2, "cpu.weight"), 20);
		_cleanup_free_ char *cm = knob_str(v2, "cpu.max");
		assert_string_equal(cm, "150000 100000");
	} else {
		assert_int_equal(knob(mem, "memory.limit_in_bytes"), 64 * MIB);
		if (access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0)
			assert_int_equal(knob(mem, "memory.memsw.limit_in_bytes"), 128 * MIB);
		assert_int_equal(knob(cpu, "cpu.cfs_period_us"), 100000);
		assert_int_equal(knob(cpu, "cpu.cfs_quota_us"), 150000);
		assert_int_equal(knob(cpu, "cpu.shares"), 512);
		assert_int_equal(knob(pids, "pids.max"), 77);
	}
	if (f->layout == RT_CGROUP_HYBRID) {
		assert_true(is_dir(v2));
		assert_non_null(strstr(v2, "/sys/fs/cgroup/unified"));
	}

	/* Re-open finds the same directories. */
	struct rt_cgroup *again = NULL;
	assert_int_equal(rt_cgroup_open(f->parent, "c1", &again, &err), 0);
	assert_string_equal(rt_cgroup_path(again, "memory"), mem);
	rt_cgroup_free(again);
	assert_int_equal(rt_cgroup_open(f->parent, "nope", &again, &err), -ENOENT);

	/* Attach a sleeping child; it shows in every hierarchy. */
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(rt_cgroup_attach(f->cg, f->child, &err), 0);
	assert_true(pid_listed(mem, f->child));
	assert_true(pid_listed(cpu, f->child));
	assert_true(pid_listed(pids, f->child));
	if (v2)
		assert_true(pid_listed(v2, f->child));
	assert_true(rt_cgroup_memory_usage(f->cg) >= 0);
	assert_false(rt_cgroup_oom_killed(f->cg));

	/* Destroy kills the child and removes every directory. */
	char saved[4][1024];
	const char *paths[4] = {mem, cpu, pids, v2};
	for (int i = 0; i < 4; i++)
		snprintf(saved[i], sizeof(saved[i]), "%s", paths[i] ? paths[i] : "/nonexistent");
	assert_int_equal(rt_cgroup_destroy(f->cg, &err), 0);
	int status;
	assert_int_equal(waitpid(f->child, &status, 0), f->child);
	f->child = -1;
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	for (int i = 0; i < 4; i++)
		assert_false(is_dir(saved[i]));
	rt_cgroup_free(f->cg);
	f->cg = NULL;

	assert_int_equal(rt_cgroup_parent_remove(f->parent, &err), 0);
}

static void test_bad_names(void **state)
{
	struct shoal_err err = {};
	struct rt_cgroup *cg = NULL;
	need_root();
	assert_int_equal(rt_cgroup_create("/shoal-test-x", "a/b", NULL, &cg, &err), -EINVAL);
	assert_int_equal(rt_cgroup_create("/shoal-test-x", "..", NULL, &cg, &err), -EINVAL);
	assert_int_equal(rt_cgroup_create("/shoal-test-x/../etc", "c", NULL, &cg, &err), -EINVAL);
	assert_null(cg);
	assert_int_equal(rt_cgroup_parent_remove("/", &err), -EINVAL);
}

static void test_oom(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	need_root();
	/* memory_swap = memory: no swap to escape into. */
	struct rt_cgroup_limits lim = {.memory = 32 * MIB, .memory_swap = 32 * MIB};
	assert_int_equal(rt_cgroup_create(f->parent, "c1", &lim, &f->cg, &err), 0);

	int go[2];
	assert_int_equal(pipe(go), 0);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		/* Touch 256 MiB, page by page, well past the limit. */
		size_t len = 256 * MIB;
		char *p =
			mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(3);
		for (size_t i = 0; i < len; i += 4096)
			p[i] = 1;
		_exit(0);
	}
	close(go[0]);
	assert_int_equal(rt_cgroup_attach(f->cg, f->child, &err), 0);
	assert_false(rt_cgroup_oom_killed(f->cg));
	assert_int_equal(write(go[1], "x", 1), 1);
	close(go[1]);

	int status;
	assert_int_equal(waitpid(f->child, &status, 0), f->child);
	f->child = -1;
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_true(rt_cgroup_oom_killed(f->cg));

	assert_int_equal(rt_cgroup_destroy(f->cg, &err), 0);
	rt_cgroup_free(f->cg);
	f->cg = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversions),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_detect),
		cmocka_unit_test_setup_teardown(test_parent_prepare_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_parent, setup_rel, teardown),
		cmocka_unit_test_setup_teardown(test_create_limits_attach_destroy, setup, teardown),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
