// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/cgroup-internal.h"

/* Total of memory plus swap as Docker means it: 0 = twice the memory, -1 = no limit. */
static int64_t memsw_total(const struct rt_cgroup_limits *lim)
{
	if (lim->memory_swap == -1)
		return -1;
	if (lim->memory_swap == 0)
		return lim->memory * 2;
	return lim->memory_swap;
}

static int v1_set_memory(const char *dir, const struct rt_cgroup_limits *lim, struct shoal_err *err)
{
	if (lim->memory <= 0)
		return 0;
	int64_t total = memsw_total(lim);
	int r = cg_write_knob_i64(dir, "memory.limit_in_bytes", lim->memory);
	if (r == -EINVAL) {
		/* A reused cgroup whose memsw limit is below the new memory limit:
		 * the kernel wants memsw raised first. */
		int q = cg_write_knob_i64(dir, "memory.memsw.limit_in_bytes", total);
		if (q < 0 && q != -ENOENT)
			return shoal_err_errno(err, q, "setting memory.memsw.limit_in_bytes in %s",
					       dir);
		r = cg_write_knob_i64(dir, "memory.limit_in_bytes", lim->memory);
	}
	if (r < 0)
		return shoal_err_errno(err, r, "setting memory.limit_in_bytes in %s", dir);
	/* No swap accounting on this kernel: the file is absent, memory alone limits. */
	r = cg_write_knob_i64(dir, "memory.memsw.limit_in_bytes", total);
	if (r < 0 && r != -ENOENT)
		return shoal_err_errno(err, r, "setting memory.memsw.limit_in_bytes in %s", dir);
	return 0;
}

static int v1_set_cpu(const char *dir, const struct rt_cgroup_limits *lim, struct shoal_err *err)
{
	int r;
	if (lim->nano_cpus > 0) {
		r = cg_write_knob_i64(dir, "cpu.cfs_period_us", RT_CGROUP_CPU_PERIOD_US);
		if (r < 0)
			return shoal_err_errno(err, r, "setting cpu.cfs_period_us in %s", dir);
		r = cg_write_knob_i64(dir, "cpu.cfs_quota_us",
				      rt_cgroup_cpu_quota(lim->nano_cpus, RT_CGROUP_CPU_PERIOD_US));
		if (r < 0)
			return shoal_err_errno(err, r, "setting cpu.cfs_quota_us in %s", dir);
	}
	if (lim->cpu_shares > 0) {
		r = cg_write_knob_i64(dir, "cpu.shares", lim->cpu_shares);
		if (r < 0)
			return shoal_err_errno(err, r, "setting cpu.shares in %s", dir);
	}
	return 0;
}

static int v1_set_pids(const char *dir, const struct rt_cgroup_limits *lim, struct shoal_err *err)
{
	if (lim->pids_limit <= 0)
		return 0;
	int r = cg_write_knob_i64(dir, "pids.max", lim->pids_limit);
	if (r < 0)
		return shoal_err_errno(err, r, "setting pids.max in %s", dir);
	return 0;
}

static int v1_set_limits(struct rt_cgroup *cg, const struct rt_cgroup_limits *lim,
			 struct shoal_err *err)
{
	int r;
	if (lim->memory > 0 && !cg->path[CG_H_MEMORY])
		return shoal_err_set(err, EOPNOTSUPP, "memory cgroup controller is not mounted");
	if ((lim->nano_cpus > 0 || lim->cpu_shares > 0) && !cg->path[CG_H_CPU])
		return shoal_err_set(err, EOPNOTSUPP, "cpu cgroup controller is not mounted");
	if (lim->pids_limit > 0 && !cg->path[CG_H_PIDS])
		return shoal_err_set(err, EOPNOTSUPP, "pids cgroup controller is not mounted");

	if (cg->path[CG_H_MEMORY] && (r = v1_set_memory(cg->path[CG_H_MEMORY], lim, err)) < 0)
		return r;
	if (cg->path[CG_H_CPU] && (r = v1_set_cpu(cg->path[CG_H_CPU], lim, err)) < 0)
		return r;
	if (cg->path[CG_H_PIDS] && (r = v1_set_pids(cg->path[CG_H_PIDS], lim, err)) < 0)
		return r;
	return 0;
}

static bool v1_oom_killed(struct rt_cgroup *cg)
{
	int64_t n;
	if (!cg->path[CG_H_MEMORY])
		return false;
	return cg_read_keyed(cg->path[CG_H_MEMORY], "memory.oom_control", "oom_kill", &n) == 0 &&
	       n > 0;
}

static int64_t v1_memory_usage(struct rt_cgroup *cg)
{
	int64_t v;
	char path[PATH_MAX];
	if (!cg->path[CG_H_MEMORY])
		return 0;
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg->path[CG_H_MEMORY]);
	return read_int64_file(path, &v) == 0 ? v : 0;
}

/* A frozen task does not act on SIGKILL until it is thawed. */
static void v1_thaw(struct rt_cgroup *cg)
{
	if (cg->path[CG_H_FREEZER])
		cg_write_knob(cg->path[CG_H_FREEZER], "freezer.state", "THAWED");
}

static int v1_freeze(struct rt_cgroup *cg, bool frozen, struct shoal_err *err)
{
	const char *dir = cg->path[CG_H_FREEZER];
	if (!dir) {
		/* hybrid without a v1 freezer: the v2 tree's core freezer */
		if (cg->path[CG_H_UNIFIED]) {
			int r = cg_write_knob(cg->path[CG_H_UNIFIED], "cgroup.freeze",
					      frozen ? "1" : "0");
			if (r < 0)
				return shoal_err_errno(err, r, "writing cgroup.freeze in %s",
						       cg->path[CG_H_UNIFIED]);
			return 0;
		}
		return shoal_err_set(err, EOPNOTSUPP,
				     "the freezer cgroup controller is not mounted");
	}
	int r = cg_write_knob(dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
	if (r < 0)
		return shoal_err_errno(err, r, "writing freezer.state in %s", dir);
	return 0;
}

static bool v1_frozen(struct rt_cgroup *cg)
{
	char path[PATH_MAX];
	_cleanup_free_ char *buf = NULL;
	if (!cg->path[CG_H_FREEZER]) {
		int64_t v;
		return cg->path[CG_H_UNIFIED] &&
		       cg_read_i64(cg->path[CG_H_UNIFIED], "cgroup.freeze", &v) == 0 && v == 1;
	}
	snprintf(path, sizeof(path), "%s/freezer.state", cg->path[CG_H_FREEZER]);
	if (read_file(path, 64, &buf, NULL) < 0)
		return false;
	return strncmp(buf, "FROZEN", 6) == 0 || strncmp(buf, "FREEZING", 8) == 0;
}

/* "cpu0 cpu1 ..." nanoseconds */
static void v1_percpu(const char *dir, struct rt_cgroup_stats *st)
{
	char path[PATH_MAX];
	_cleanup_free_ char *buf = NULL;
	snprintf(path, sizeof(path), "%s/cpuacct.usage_percpu", dir);
	if (read_file(path, 64 * 1024, &buf, NULL) < 0)
		return;
	uint64_t *v = calloc(RT_CGROUP_MAX_CPUS, sizeof(*v));
	if (!v)
		return;
	unsigned n = 0;
	for (char *p = buf, *end; n < RT_CGROUP_MAX_CPUS; p = end) {
		unsigned long long x = strtoull(p, &end, 10);
		if (end == p)
			break;
		v[n++] = x;
	}
	st->percpu_ns = v;
	st->n_percpu = n;
}

static int v1_stats(struct rt_cgroup *cg, struct rt_cgroup_stats *st)
{
	const char *acct = cg->path[CG_H_CPUACCT] ? cg->path[CG_H_CPUACCT] : cg->path[CG_H_CPU];
	int64_t v;
	if (acct) {
		if (cg_read_i64(acct, "cpuacct.usage", &v) == 0)
			st->cpu_total_ns = (uint64_t)v;
		/* cpuacct.stat counts USER_HZ ticks */
		long hz = sysconf(_SC_CLK_TCK);
		int64_t user = 0, sys = 0;
		if (hz > 0 && cg_read_keyed(acct, "cpuacct.stat", "user", &user) == 0 &&
		    cg_read_keyed(acct, "cpuacct.stat", "system", &sys) == 0) {
			st->cpu_user_ns = (uint64_t)user * (1000000000ull / (uint64_t)hz);
			st->cpu_system_ns = (uint64_t)sys * (1000000000ull / (uint64_t)hz);
		}
		v1_percpu(acct, st);
	}
	if (cg->path[CG_H_CPU]) {
		int64_t x;
		if (cg_read_keyed(cg->path[CG_H_CPU], "cpu.stat", "nr_periods", &x) == 0)
			st->nr_periods = (uint64_t)x;
		if (cg_read_keyed(cg->path[CG_H_CPU], "cpu.stat", "nr_throttled", &x) == 0)
			st->nr_throttled = (uint64_t)x;
		if (cg_read_keyed(cg->path[CG_H_CPU], "cpu.stat", "throttled_time", &x) == 0)
			st->throttled_ns = (uint64_t)x;
	}
	const char *mem = cg->path[CG_H_MEMORY];
	if (mem) {
		if (cg_read_i64(mem, "memory.usage_in_bytes", &v) == 0)
			st->mem_usage = v;
		if (cg_read_i64(mem, "memory.max_usage_in_bytes", &v) == 0)
			st->mem_max_usage = v;
		/* unlimited reads as the page-rounded maximum */
		if (cg_read_i64(mem, "memory.limit_in_bytes", &v) == 0 && v > 0 &&
		    v < (INT64_MAX / 2))
			st->mem_limit = v;
		cg_read_flat(mem, "memory.stat", st->mem_stat);
	}
	if (cg->path[CG_H_PIDS]) {
		if (cg_read_i64(cg->path[CG_H_PIDS], "pids.current", &v) == 0)
			st->pids_current = v;
		if (cg_read_i64(cg->path[CG_H_PIDS], "pids.max", &v) == 0 && v > 0)
			st->pids_limit = v;
	}
	return 0;
}

static int v1_kill_all(struct rt_cgroup *cg)
{
	int total = 0;
	v1_thaw(cg);
	for (int h = CG_H_MEMORY; h < CG_H_MAX; h++) {
		if (!cg->path[h])
			continue;
		int r = cg_kill_procs(cg->path[h]);
		if (r < 0)
			return r;
		total += r;
	}
	return total;
}

const struct cg_ops cg_ops_v1 = {
	.name = "v1",
	.hiers = CG_H_V1_MASK,
	.set_limits = v1_set_limits,
	.oom_killed = v1_oom_killed,
	.memory_usage = v1_memory_usage,
	.kill_all = v1_kill_all,
	.freeze = v1_freeze,
	.frozen = v1_frozen,
	.stats = v1_stats,
};

/* Hybrid: limits and accounting on the v1 controllers; the container is also a
 * member of the (controller-less) v2 tree so cgroup BPF hooks see it. */
static int hybrid_kill_all(struct rt_cgroup *cg)
{
	int r = v1_kill_all(cg);
	if (r < 0 || !cg->path[CG_H_UNIFIED])
		return r;
	int q = cg_kill_procs(cg->path[CG_H_UNIFIED]);
	return q < 0 ? q : r + q;
}

const struct cg_ops cg_ops_hybrid = {
	.name = "hybrid",
	.hiers = CG_H_V1_MASK | CG_H_BIT(CG_H_UNIFIED),
	.set_limits = v1_set_limits,
	.oom_killed = v1_oom_killed,
	.memory_usage = v1_memory_usage,
	.kill_all = hybrid_kill_all,
	.freeze = v1_freeze,
	.frozen = v1_frozen,
	.stats = v1_stats,
};
