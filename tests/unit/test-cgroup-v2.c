// SPDX-License-Identifier: Apache-2.0
/* The v2 backend driven directly on whatever cgroup2 tree is mounted (on a
 * hybrid machine: the controller-less one), so that its kill and removal paths
 * are exercised even where the detected layout is not v2; its freezer (pause)
 * likewise; layout detection on recorded mountinfo / cgroup files of other
 * machines; and the backends' stats and v1 freezer on files laid out as the
 * kernel lays them out. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/magic.h>

#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/cgroup-internal.h"

struct fixture {
	char mnt[64];
	char dir[128];
	struct rt_cgroup *cg;
	pid_t child[2];
};

static const char *find_v2_mount(void)
{
	static const char *const cands[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
		struct statfs sf;
		if (statfs(cands[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
			return cands[i];
	}
	return NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *mnt = find_v2_mount();
	if (mnt)
		snprintf(f->mnt, sizeof(f->mnt), "%s", mnt);
	snprintf(f->dir, sizeof(f->dir), "%s/shoal-test-v2-%d", f->mnt, (int)getpid());
	f->child[0] = f->child[1] = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 2; i++) {
		if (f->child[i] > 0) {
			kill(f->child[i], SIGKILL);
			waitpid(f->child[i], NULL, 0);
		}
	}
	if (f->cg) {
		rt_cgroup_destroy(f->cg, NULL);
		rt_cgroup_free(f->cg);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct rt_cgroup *v2_cgroup(const char *dir)
{
	struct rt_cgroup *cg = calloc(1, sizeof(*cg));
	cg->ops = &cg_ops_v2;
	cg->path[CG_H_UNIFIED] = strdup(dir);
	return cg;
}

static pid_t sleeper(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static void test_v2_kill_and_remove(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	if (geteuid() != 0 || !f->mnt[0])
		skip();

	/* Enabling walks the tree; where no controller is available nothing is written. */
	assert_int_equal(mkdir(f->dir, 0755), 0);
	f->cg = v2_cgroup(f->dir);
	assert_int_equal(cg_v2_enable_controllers(f->mnt, f->dir, &err), 0);
	assert_int_equal(cg_v2_enable_controllers(f->mnt, "/elsewhere", &err), -EINVAL);

	/* No limits: nothing to write. */
	struct rt_cgroup_limits none = {};
	assert_int_equal(cg_ops_v2.set_limits(f->cg, &none, &err), 0);
	/* On v2 every controller name maps to the one directory. */
	assert_string_equal(rt_cgroup_path(f->cg, "memory"), f->dir);
	assert_string_equal(rt_cgroup_path(f->cg, ""), f->dir);

	for (int i = 0; i < 2; i++) {
		f->child[i] = sleeper();
		assert_true(f->child[i] > 0);
		assert_int_equal(rt_cgroup_attach(f->cg, f->child[i], &err), 0);
	}
	assert_false(rt_cgroup_oom_killed(f->cg));

	assert_int_equal(rt_cgroup_destroy(f->cg, &err), 0);
	for (int i = 0; i < 2; i++) {
		int status;
		assert_int_equal(waitpid(f->child[i], &status, 0), f->child[i]);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		f->child[i] = -1;
	}
	struct stat st;
	assert_int_equal(stat(f->dir, &st), -1);
	assert_int_equal(errno, ENOENT);
	rt_cgroup_free(f->cg);
	f->cg = NULL;
}

static void test_v2_limits_need_controllers(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	if (geteuid() != 0 || !f->mnt[0])
		skip();
	char path[256];
	snprintf(path, sizeof(path), "%s/cgroup.controllers", f->mnt);
	_cleanup_free_ char *ctrls = NULL;
	assert_int_equal(read_file(path, 4096, &ctrls, NULL) >= 0, 1);
	if (strstr(ctrls, "memory"))
		skip(); /* a real v2 machine: the detected-layout tests cover it */

	assert_int_equal(mkdir(f->dir, 0755), 0);
	f->cg = v2_cgroup(f->dir);
	struct rt_cgroup_limits lim = {.memory = 64 * 1024 * 1024};
	assert_true(cg_ops_v2.set_limits(f->cg, &lim, &err) < 0);
	assert_non_null(strstr(err.msg, "memory.max"));
	assert_int_equal(rt_cgroup_destroy(f->cg, &err), 0);
	rt_cgroup_free(f->cg);
	f->cg = NULL;
}

static void test_keyed_file(void **state)
{
	char dir[] = "/tmp/shoal-test-keyed-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/memory.events", dir);
	const char *body = "low 0\nhigh 3\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
	assert_int_equal(write_file_atomic(path, body, strlen(body), 0644), 0);
	int64_t v = -1;
	assert_int_equal(cg_read_keyed(dir, "memory.events", "oom_kill", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(cg_read_keyed(dir, "memory.events", "oom", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(cg_read_keyed(dir, "memory.events", "oom_group", &v), -ENOENT);
	assert_int_equal(cg_read_keyed(dir, "nope", "oom", &v), -ENOENT);
	rm_rf(dir);
}

static int parse(const char *mountinfo, const char *proc_cgroup, struct cg_system *sys)
{
	FILE *m = fmemopen((void *)mountinfo, strlen(mountinfo), "r");
	FILE *c = fmemopen((void *)proc_cgroup, strlen(proc_cgroup), "r");
	assert_non_null(m);
	assert_non_null(c);
	int r = cg_system_parse(m, c, sys);
	fclose(m);
	fclose(c);
	return r;
}

static void test_parse_hybrid(void **state)
{
	static struct cg_system sys;
	const char *mi =
		"22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
		"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
		"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
		"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
		"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
		"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
		"40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
	const char *cg = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n"
			 "2:cpuacct:/\n1:cpu:/\n0::/\n";
	assert_int_equal(parse(mi, cg, &sys), 0);
	assert_int_equal(sys.layout, RT_CGROUP_HYBRID);
	assert_ptr_equal(sys.ops, &cg_ops_hybrid);
	assert_string_equal(sys.h[CG_H_MEMORY].own, "/sys/fs/cgroup/memory/process_api/abc");
	assert_string_equal(sys.h[CG_H_CPU].own, "/sys/fs/cgroup/cpu");
	assert_string_equal(sys.h[CG_H_PIDS].mnt, "/sys/fs/cgroup/pids");
	assert_string_equal(sys.h[CG_H_UNIFIED].own, "/sys/fs/cgroup/unified");
	/* accounting and the freezer are hierarchies of their own here */
	assert_string_equal(sys.h[CG_H_CPUACCT].mnt, "/sys/fs/cgroup/cpuacct");
	assert_false(sys.h[CG_H_FREEZER].present);
}

static void test_parse_v2(void **state)
{
	static struct cg_system sys;
	const char *mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - "
			 "cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
	const char *cg = "0::/system.slice/shoald.service\n";
	assert_int_equal(parse(mi, cg, &sys), 0);
	assert_int_equal(sys.layout, RT_CGROUP_V2);
	assert_ptr_equal(sys.ops, &cg_ops_v2);
	assert_string_equal(sys.h[CG_H_UNIFIED].own, "/sys/fs/cgroup/system.slice/shoald.service");
	assert_false(sys.h[CG_H_MEMORY].present);
}

static void test_parse_v1_container_view(void **state)
{
	static struct cg_system sys;
	/* Inside a container: each hierarchy's mount root is the container's own
	 * cgroup, and cpu is co-mounted with cpuacct. */
	const char *mi = "700 690 0:40 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup "
			 "rw,cpu,cpuacct\n"
			 "701 690 0:41 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup "
			 "rw,memory\n";
	const char *cg = "5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc/inner\n";
	assert_int_equal(parse(mi, cg, &sys), 0);
	assert_int_equal(sys.layout, RT_CGROUP_V1);
	assert_string_equal(sys.h[CG_H_CPU].mnt, "/sys/fs/cgroup/cpu,cpuacct");
	assert_string_equal(sys.h[CG_H_CPU].own, "/sys/fs/cgroup/cpu,cpuacct/inner");
	assert_string_equal(sys.h[CG_H_MEMORY].own, "/sys/fs/cgroup/memory");
	/* co-mounted: the same hierarchy as cpu */
	assert_string_equal(sys.h[CG_H_CPUACCT].mnt, sys.h[CG_H_CPU].mnt);
	assert_false(sys.h[CG_H_PIDS].present);
	assert_false(sys.h[CG_H_UNIFIED].present);
}

static void test_parse_none(void **state)
{
	static struct cg_system sys;
	assert_int_equal(parse("22 1 0:21 / /sys rw - sysfs sysfs rw\n", "0::/\n", &sys), -ENOENT);
}

static void test_v2_freeze_then_remove(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	if (geteuid() != 0 || !f->mnt[0])
		skip();
	assert_int_equal(mkdir(f->dir, 0755), 0);
	f->cg = v2_cgroup(f->dir);
	f->child[0] = sleeper();
	assert_true(f->child[0] > 0);
	assert_int_equal(rt_cgroup_attach(f->cg, f->child[0], &err), 0);
	assert_false(rt_cgroup_frozen(f->cg));

	assert_int_equal(rt_cgroup_freeze(f->cg, true, &err), 0);
	assert_true(rt_cgroup_frozen(f->cg));
	/* the kernel reports the whole cgroup frozen once every task stopped */
	int64_t frozen = 0;
	for (int i = 0; i < 500 && frozen != 1; i++) {
		cg_read_keyed(f->dir, "cgroup.events", "frozen", &frozen);
		usleep(1000);
	}
	assert_int_equal(frozen, 1);
	assert_int_equal(rt_cgroup_freeze(f->cg, false, &err), 0);
	assert_false(rt_cgroup_frozen(f->cg));

	/* a frozen cgroup is still removed: its tasks die */
	assert_int_equal(rt_cgroup_freeze(f->cg, true, &err), 0);
	assert_int_equal(rt_cgroup_destroy(f->cg, &err), 0);
	int status;
	assert_int_equal(waitpid(f->child[0], &status, 0), f->child[0]);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	f->child[0] = -1;
	rt_cgroup_free(f->cg);
	f->cg = NULL;
}

static void put(const char *dir, const char *file, const char *body)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	assert_int_equal(write_file_atomic(path, body, strlen(body), 0644), 0);
}

static void test_v2_stats_files(void **state)
{
	char dir[] = "/tmp/shoal-test-v2stats-XXXXXX";
	assert_non_null(mkdtemp(dir));
	put(dir, "cpu.stat",
	    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n"
	    "nr_throttled 2\nthrottled_usec 30\n");
	put(dir, "memory.current", "1048576\n");
	put(dir, "memory.peak", "2097152\n");
	put(dir, "memory.max", "max\n");
	put(dir, "memory.stat", "anon 4096\nfile 8192\ninactive_file 512\n");
	put(dir, "pids.current", "3\n");
	put(dir, "pids.max", "100\n");
	struct rt_cgroup *cg = v2_cgroup(dir);
	struct rt_cgroup_stats st;
	assert_int_equal(rt_cgroup_stats(cg, &st), 0);
	assert_true(st.v2);
	assert_int_equal(st.cpu_total_ns, 1500000);
	assert_int_equal(st.cpu_user_ns, 1000000);
	assert_int_equal(st.cpu_system_ns, 500000);
	assert_int_equal(st.nr_periods, 7);
	assert_int_equal(st.nr_throttled, 2);
	assert_int_equal(st.throttled_ns, 30000);
	assert_int_equal(st.mem_usage, 1048576);
	assert_int_equal(st.mem_max_usage, 2097152);
	assert_int_equal(st.mem_limit, 0); /* "max": no limit */
	assert_int_equal(json_integer_value(json_object_get(st.mem_stat, "inactive_file")), 512);
	assert_int_equal(json_object_size(st.mem_stat), 3);
	assert_int_equal(st.pids_current, 3);
	assert_int_equal(st.pids_limit, 100);
	rt_cgroup_stats_done(&st);
	/* the freezer is cgroup.freeze */
	put(dir, "cgroup.freeze", "0\n");
	assert_false(rt_cgroup_frozen(cg));
	assert_int_equal(rt_cgroup_freeze(cg, true, NULL), 0);
	assert_true(rt_cgroup_frozen(cg));
	rt_cgroup_free(cg);
	rm_rf(dir);
}

/* v1 with cpu and cpuacct mounted together: the accounting files are in the
 * cpu directory; the freezer writes FROZEN and THAWED. */
static void test_v1_stats_files(void **state)
{
	char dir[] = "/tmp/shoal-test-v1stats-XXXXXX";
	assert_non_null(mkdtemp(dir));
	long hz = sysconf(_SC_CLK_TCK);
	put(dir, "cpuacct.usage", "123456789\n");
	put(dir, "cpuacct.usage_percpu", "100000000 23456789 \n");
	put(dir, "cpuacct.stat", "user 3\nsystem 2\n");
	put(dir, "cpu.stat", "nr_periods 5\nnr_throttled 1\nthrottled_time 999\n");
	put(dir, "memory.usage_in_bytes", "4096000\n");
	put(dir, "memory.max_usage_in_bytes", "5000000\n");
	put(dir, "memory.limit_in_bytes", "9223372036854771712\n");
	put(dir, "memory.stat", "cache 100\ntotal_inactive_file 200\n");
	put(dir, "pids.current", "2\n");
	put(dir, "pids.max", "max\n");
	put(dir, "freezer.state", "THAWED\n");
	struct rt_cgroup *cg = calloc(1, sizeof(*cg));
	cg->ops = &cg_ops_v1;
	cg->path[CG_H_CPU] = strdup(dir);
	cg->path[CG_H_MEMORY] = strdup(dir);
	cg->path[CG_H_PIDS] = strdup(dir);
	cg->path[CG_H_FREEZER] = strdup(dir);
	assert_string_equal(rt_cgroup_path(cg, "cpuacct"), dir);
	struct rt_cgroup_stats st;
	assert_int_equal(rt_cgroup_stats(cg, &st), 0);
	assert_false(st.v2);
	assert_int_equal(st.cpu_total_ns, 123456789);
	assert_int_equal(st.n_percpu, 2);
	assert_int_equal(st.percpu_ns[1], 23456789);
	assert_int_equal(st.cpu_user_ns, 3 * (1000000000 / hz));
	assert_int_equal(st.cpu_system_ns, 2 * (1000000000 / hz));
	assert_int_equal(st.nr_throttled, 1);
	assert_int_equal(st.throttled_ns, 999);
	assert_int_equal(st.mem_usage, 4096000);
	assert_int_equal(st.mem_max_usage, 5000000);
	assert_int_equal(st.mem_limit, 0); /* the page-rounded maximum: no limit */
	assert_int_equal(json_integer_value(json_object_get(st.mem_stat, "total_inactive_file")),
			 200);
	assert_int_equal(st.pids_current, 2);
	assert_int_equal(st.pids_limit, 0);
	rt_cgroup_stats_done(&st);

	assert_false(rt_cgroup_frozen(cg));
	assert_int_equal(rt_cgroup_freeze(cg, true, NULL), 0);
	assert_true(rt_cgroup_frozen(cg));
	char path[256];
	_cleanup_free_ char *state_txt = NULL;
	snprintf(path, sizeof(path), "%s/freezer.state", dir);
	assert_int_equal(read_file(path, 64, &state_txt, NULL) >= 0, 1);
	assert_int_equal(strncmp(state_txt, "FROZEN", 6), 0);
	assert_int_equal(rt_cgroup_freeze(cg, false, NULL), 0);
	assert_false(rt_cgroup_frozen(cg));
	rt_cgroup_free(cg);
	rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v2_kill_and_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_limits_need_controllers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_freeze_then_remove, setup, teardown),
		cmocka_unit_test(test_v2_stats_files),
		cmocka_unit_test(test_v1_stats_files),
		cmocka_unit_test(test_keyed_file),
		cmocka_unit_test(test_parse_hybrid),
		cmocka_unit_test(test_parse_v2),
		cmocka_unit_test(test_parse_v1_container_view),
		cmocka_unit_test(test_parse_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
