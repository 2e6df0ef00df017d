// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "lib/util.h"
#include "runtime/cgroup-internal.h"

static int v2_set_limits(struct rt_cgroup *cg, const struct rt_cgroup_limits *lim,
			 struct shoal_err *err)
{
	const char *dir = cg->path[CG_H_UNIFIED];
	char buf[64];
	int r;

	if (lim->memory > 0) {
		r = cg_write_knob_i64(dir, "memory.max", lim->memory);
		if (r < 0)
			return shoal_err_errno(err, r, "setting memory.max in %s", dir);
		/* v2 limits swap alone, not memory plus swap as Docker's flag does. */
		if (lim->memory_swap == -1)
			snprintf(buf, sizeof(buf), "max");
		else if (lim->memory_swap == 0)
			snprintf(buf, sizeof(buf), "%" PRId64, lim->memory);
		else
			snprintf(buf, sizeof(buf), "%" PRId64, lim->memory_swap - lim->memory);
		r = cg_write_knob(dir, "memory.swap.max", buf);
		if (r < 0 && r != -ENOENT)
			return shoal_err_errno(err, r, "setting memory.swap.max in %s", dir);
	}
	if (lim->nano_cpus > 0) {
		snprintf(buf, sizeof(buf), "%" PRId64 " %d",
			 rt_cgroup_cpu_quota(lim->nano_cpus, RT_CGROUP_CPU_PERIOD_US),
			 RT_CGROUP_CPU_PERIOD_US);
		r = cg_write_knob(dir, "cpu.max", buf);
		if (r < 0)
			return shoal_err_errno(err, r, "setting cpu.max in %s", dir);
	}
	if (lim->cpu_shares > 0) {
		r = cg_write_knob_i64(
			dir, "cpu.weight",
			(int64_t)rt_cgroup_shares_to_weight((uint64_t)lim->cpu_shares));
		if (r < 0)
			return shoal_err_errno(err, r, "setting cpu.weight in %s", dir);
	}
	if (lim->pids_limit > 0) {
		r = cg_write_knob_i64(dir, "pids.max", lim->pids_limit);
		if (r < 0)
			return shoal_err_errno(err, r, "setting pids.max in %s", dir);
	}
	return 0;
}

static bool v2_oom_killed(struct rt_cgroup *cg)
{
	int64_t n;
	return cg_read_keyed(cg->path[CG_H_UNIFIED], "memory.events", "oom_kill", &n) == 0 && n > 0;
}

static int64_t v2_memory_usage(struct rt_cgroup *cg)
{
	int64_t v;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/memory.current", cg->path[CG_H_UNIFIED]);
	return read_int64_file(path, &v) == 0 ? v : 0;
}

static int v2_kill_all(struct rt_cgroup *cg)
{
	/* cgroup.kill (5.14+) kills the whole subtree atomically, forks included. */
	int r = cg_write_knob(cg->path[CG_H_UNIFIED], "cgroup.kill", "1");
	if (r == 0)
		return 1;
	return cg_kill_procs(cg->path[CG_H_UNIFIED]);
}

static int v2_freeze(struct rt_cgroup *cg, bool frozen, struct shoal_err *err)
{
	int r = cg_write_knob(cg->path[CG_H_UNIFIED], "cgroup.freeze", frozen ? "1" : "0");
	if (r < 0)
		return shoal_err_errno(err, r, "writing cgroup.freeze in %s",
				       cg->path[CG_H_UNIFIED]);
	return 0;
}

static bool v2_frozen(struct rt_cgroup *cg)
{
	int64_t v;
	return cg_read_i64(cg->path[CG_H_UNIFIED], "cgroup.freeze", &v) == 0 && v == 1;
}

static int v2_stats(struct rt_cgroup *cg, struct rt_cgroup_stats *st)
{
	const char *dir = cg->path[CG_H_UNIFIED];
	int64_t v;
	st->v2 = true;
	if (cg_read_keyed(dir, "cpu.stat", "usage_usec", &v) == 0)
		st->cpu_total_ns = (uint64_t)v * 1000;
	if (cg_read_keyed(dir, "cpu.stat", "user_usec", &v) == 0)
		st->cpu_user_ns = (uint64_t)v * 1000;
	if (cg_read_keyed(dir, "cpu.stat", "system_usec", &v) == 0)
		st->cpu_system_ns = (uint64_t)v * 1000;
	if (cg_read_keyed(dir, "cpu.stat", "nr_periods", &v) == 0)
		st->nr_periods = (uint64_t)v;
	if (cg_read_keyed(dir, "cpu.stat", "nr_throttled", &v) == 0)
		st->nr_throttled = (uint64_t)v;
	if (cg_read_keyed(dir, "cpu.stat", "throttled_usec", &v) == 0)
		st->throttled_ns = (uint64_t)v * 1000;
	if (cg_read_i64(dir, "memory.current", &v) == 0)
		st->mem_usage = v;
	if (cg_read_i64(dir, "memory.peak", &v) == 0)
		st->mem_max_usage = v;
	if (cg_read_i64(dir, "memory.max", &v) == 0 && v > 0)
		st->mem_limit = v;
	cg_read_flat(dir, "memory.stat", st->mem_stat);
	if (cg_read_i64(dir, "pids.current", &v) == 0)
		st->pids_current = v;
	if (cg_read_i64(dir, "pids.max", &v) == 0 && v > 0)
		st->pids_limit = v;
	return 0;
}

const struct cg_ops cg_ops_v2 = {
	.name = "v2",
	.hiers = CG_H_BIT(CG_H_UNIFIED),
	.set_limits = v2_set_limits,
	.oom_killed = v2_oom_killed,
	.memory_usage = v2_memory_usage,
	.kill_all = v2_kill_all,
	.freeze = v2_freeze,
	.frozen = v2_frozen,
	.stats = v2_stats,
};
