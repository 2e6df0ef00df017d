/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "lib/err.h"

/*
 * Container cgroups behind one interface, with backends in an ops table
 * (cgroup-internal.h): v2 (unified, what production runs), v1 (one hierarchy
 * per controller) and hybrid (v1 controllers cpu, memory, pids mounted under
 * /sys/fs/cgroup/<ctrl>, plus membership in the v2 tree at
 * /sys/fs/cgroup/unified so cgroup BPF hooks see the container). The layout is
 * detected once from /proc/self/mountinfo.
 *
 * A parent is given relative to the calling process's own cgroup in each
 * hierarchy ("shoal" -> <own>/shoal) or absolute from each hierarchy's root
 * ("/shoal-test"); NULL or "" is the process's own cgroup. A container's cgroup
 * is <parent>/<id> everywhere.
 *
 * rt_cgroup_create() is on the container start path: it costs one mkdir per
 * hierarchy plus one write per limit that is set, and no directory scans. A
 * missing parent is created on the way (as rt_cgroup_parent_prepare does).
 */

enum rt_cgroup_layout { RT_CGROUP_V2, RT_CGROUP_V1, RT_CGROUP_HYBRID };

struct rt_cgroup_limits {
	int64_t memory;	     /* bytes, 0 = unlimited */
	int64_t memory_swap; /* bytes incl. memory; 0 = 2x memory (Docker), -1 = unlimited */
	int64_t nano_cpus;   /* 0 = unlimited; quota = nano_cpus * period / 1e9, period 100ms */
	int64_t cpu_shares;  /* 0 = default; v2 weight converted as runc does */
	int64_t pids_limit;  /* <= 0 = unlimited */
};

struct rt_cgroup;

/* CFS period used for CPU limits, in microseconds (Docker's). */
#define RT_CGROUP_CPU_PERIOD_US 100000
/* CFS quota in microseconds per period for nano_cpus (1e9 = one CPU); 0 when
 * nano_cpus <= 0 (unlimited). The kernel refuses quotas below 1000 us. */
int64_t rt_cgroup_cpu_quota(int64_t nano_cpus, int64_t period_us);
/* v2 cpu.weight for v1 cpu.shares as runc converts: 1 + ((shares - 2) * 9999) / 262142,
 * shares clamped to [2, 262144]; 0 for 0 (default). */
uint64_t rt_cgroup_shares_to_weight(uint64_t shares);
/* Checks limits as Docker does (memory at least 6 MB, swap needs memory and is
 * at least memory, nano_cpus at least 0.01 CPU); -EINVAL with status 400. */
int rt_cgroup_limits_validate(const struct rt_cgroup_limits *lim, struct shoal_err *err);

int rt_cgroup_detect(enum rt_cgroup_layout *ret, struct shoal_err *err);
/* "v2", "v1" or "hybrid". */
const char *rt_cgroup_layout_name(enum rt_cgroup_layout layout);
/* Creates the parent in every hierarchy (idempotent), enabling v2 controllers
 * in subtree_control where needed. Returns the resolved v2 path of the parent
 * (for BPF attach), or "" when there is no v2 tree. */
int rt_cgroup_parent_prepare(const char *parent, char *ret_v2_path, size_t len,
			     struct shoal_err *err);
/* Removes the (empty) parent from every hierarchy. */
int rt_cgroup_parent_remove(const char *parent, struct shoal_err *err);

int rt_cgroup_create(const char *parent, const char *id, const struct rt_cgroup_limits *lim,
		     struct rt_cgroup **ret, struct shoal_err *err);
/* rt_cgroup_create() in two steps, for a start path that forks in between:
 * _first makes only the v2 directory (what clone3(CLONE_INTO_CGROUP) needs;
 * nothing on v1), _rest the other hierarchies and the limits (removing every
 * directory on failure). */
int rt_cgroup_create_first(const char *parent, const char *id, const struct rt_cgroup_limits *lim,
			   struct rt_cgroup **ret, struct shoal_err *err);
int rt_cgroup_create_rest(struct rt_cgroup *cg, const char *parent,
			  const struct rt_cgroup_limits *lim, struct shoal_err *err);
/* Opens an existing container cgroup (after an agent or monitor restart). */
int rt_cgroup_open(const char *parent, const char *id, struct rt_cgroup **ret,
		   struct shoal_err *err);
int rt_cgroup_attach(struct rt_cgroup *cg, pid_t pid, struct shoal_err *err);
/* Moves the calling process, which must be single-threaded, into the cgroup.
 * On v1 hierarchies it writes "0" to tasks: moving only the caller spares the
 * kernel's global threadgroup lock, whose write side waits for an RCU grace
 * period (milliseconds) on every cgroup.procs write. skip_v2: the caller is
 * already in the v2 cgroup (it was cloned into it with rt_cgroup_v2_fd()). */
int rt_cgroup_join_self(struct rt_cgroup *cg, bool skip_v2, struct shoal_err *err);
/* A directory fd of the v2 cgroup for clone3(CLONE_INTO_CGROUP),
 * close-on-exec; -ENOENT when the cgroup has no v2 part. */
int rt_cgroup_v2_fd(struct rt_cgroup *cg);
/* True when the kernel OOM-killed a process in the cgroup (memory.events oom_kill
 * on v2; memory.oom_control oom_kill on v1). */
bool rt_cgroup_oom_killed(struct rt_cgroup *cg);
/* Current memory usage in bytes (0 if unknown). */
int64_t rt_cgroup_memory_usage(struct rt_cgroup *cg);
/* Pause: freezes (frozen) or thaws every process of the cgroup; v1's freezer
 * controller, else v2's cgroup.freeze. -EOPNOTSUPP when neither is there. */
int rt_cgroup_freeze(struct rt_cgroup *cg, bool frozen, struct shoal_err *err);
bool rt_cgroup_frozen(struct rt_cgroup *cg);
/* Writes the limits that are set (non-zero) into an existing cgroup. */
int rt_cgroup_set_limits(struct rt_cgroup *cg, const struct rt_cgroup_limits *lim,
			 struct shoal_err *err);

/* What Docker's stats report, read from the controllers (cpuacct, memory, pids
 * on v1; cpu.stat, memory.*, pids.* on v2). Unknown values stay 0. */
#define RT_CGROUP_MAX_CPUS 1024
struct rt_cgroup_stats {
	uint64_t cpu_total_ns, cpu_user_ns, cpu_system_ns;
	uint64_t *percpu_ns; /* n_percpu entries (v1 only), malloc'ed */
	unsigned n_percpu;
	uint64_t nr_periods, nr_throttled, throttled_ns;
	int64_t mem_usage, mem_max_usage;
	int64_t mem_limit; /* 0: none */
	json_t *mem_stat;  /* memory.stat as {"key": N} */
	int64_t pids_current;
	int64_t pids_limit; /* 0: none */
	bool v2;
};
int rt_cgroup_stats(struct rt_cgroup *cg, struct rt_cgroup_stats *ret);
void rt_cgroup_stats_done(struct rt_cgroup_stats *st);
/* The pids in the cgroup (cgroup.procs of one of its hierarchies), at most max. */
int rt_cgroup_pids(struct rt_cgroup *cg, pid_t *ret, size_t max);

/* Kills every process left, then removes the cgroup from every hierarchy. */
int rt_cgroup_destroy(struct rt_cgroup *cg, struct shoal_err *err);
/* Frees memory only. */
void rt_cgroup_free(struct rt_cgroup *cg);
/* Absolute directory of the container cgroup in the hierarchy of controller
 * ("memory", "cpu", "pids", or "" for v2). NULL if not present. */
const char *rt_cgroup_path(struct rt_cgroup *cg, const char *controller);
