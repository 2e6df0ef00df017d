/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "runtime/cgroup.h"

/* The hierarchies a container can be placed in. */
enum cg_hier {
	CG_H_UNIFIED, /* the v2 tree (all of it on v2, membership only on hybrid) */
	CG_H_MEMORY,  /* v1 controllers */
	CG_H_CPU,
	CG_H_PIDS,
	CG_H_CPUACCT, /* accounting for stats; often co-mounted with cpu */
	CG_H_FREEZER, /* pause and unpause */
	CG_H_MAX,
};

#define CG_H_BIT(h) (1u << (h))
#define CG_H_V1_MASK                                                        \
	(CG_H_BIT(CG_H_MEMORY) | CG_H_BIT(CG_H_CPU) | CG_H_BIT(CG_H_PIDS) | \
	 CG_H_BIT(CG_H_CPUACCT) | CG_H_BIT(CG_H_FREEZER))

/* One mounted hierarchy, as detected from mountinfo and /proc/self/cgroup. */
struct cg_hierarchy {
	bool present;
	char mnt[PATH_MAX]; /* mount point, e.g. /sys/fs/cgroup/memory */
	char own[PATH_MAX]; /* directory of this process's cgroup in it */
};

struct cg_system {
	enum rt_cgroup_layout layout;
	const struct cg_ops *ops;
	struct cg_hierarchy h[CG_H_MAX];
};

struct rt_cgroup {
	const struct cg_ops *ops;
	char *path[CG_H_MAX]; /* container directory per hierarchy, NULL if unused */
};

/* A backend: which hierarchies it uses and how it writes limits and reads state.
 * Directory creation, attach and removal are common to all. */
struct cg_ops {
	const char *name;
	unsigned int hiers; /* CG_H_BIT mask */
	int (*set_limits)(struct rt_cgroup *cg, const struct rt_cgroup_limits *lim,
			  struct shoal_err *err);
	bool (*oom_killed)(struct rt_cgroup *cg);
	int64_t (*memory_usage)(struct rt_cgroup *cg);
	/* Sends SIGKILL to everything left; returns the number of processes seen
	 * (0 = empty), or -errno. */
	int (*kill_all)(struct rt_cgroup *cg);
	/* Freezes (or thaws) every process in the cgroup. */
	int (*freeze)(struct rt_cgroup *cg, bool frozen, struct shoal_err *err);
	/* True while the cgroup is frozen or freezing. */
	bool (*frozen)(struct rt_cgroup *cg);
	int (*stats)(struct rt_cgroup *cg, struct rt_cgroup_stats *ret);
};

extern const struct cg_ops cg_ops_v1;
extern const struct cg_ops cg_ops_v2;
extern const struct cg_ops cg_ops_hybrid;

/* Fills ret from the text of /proc/self/mountinfo and /proc/self/cgroup;
 * -ENOENT when no cgroup hierarchy is mounted. Not thread-safe (detection runs
 * once, under pthread_once). */
int cg_system_parse(FILE *mountinfo, FILE *proc_cgroup, struct cg_system *ret);

/* Shared by the backends (cgroup.c). */
int cg_write_knob(const char *dir, const char *knob, const char *value);
int cg_write_knob_i64(const char *dir, const char *knob, int64_t value);
/* Value of "key N" from a flat keyed file (memory.events, memory.oom_control). */
int cg_read_keyed(const char *dir, const char *file, const char *key, int64_t *ret);
/* Fills ret (a JSON object) with every "key N" line of dir/file. */
int cg_read_flat(const char *dir, const char *file, json_t *ret);
/* A number from dir/file; "max" reads as -1. */
int cg_read_i64(const char *dir, const char *file, int64_t *ret);
/* SIGKILLs every pid listed in dir/cgroup.procs; returns how many were listed. */
int cg_kill_procs(const char *dir);
/* The v2 controllers shoal uses, enabled down the tree to dir (inclusive). */
int cg_v2_enable_controllers(const char *mnt, const char *dir, struct shoal_err *err);
