// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/cgroup-internal.h"

static const char *const hier_v1_names[CG_H_MAX] = {
	[CG_H_MEMORY] = "memory",   [CG_H_CPU] = "cpu",		[CG_H_PIDS] = "pids",
	[CG_H_CPUACCT] = "cpuacct", [CG_H_FREEZER] = "freezer",
};

static struct cg_system cg_sys;
static int cg_sys_err;
static pthread_once_t cg_sys_once = PTHREAD_ONCE_INIT;

/* ---- knobs ---- */

int cg_write_knob(const char *dir, const char *knob, const char *value)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, knob) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return write_string_file(path, value);
}

int cg_write_knob_i64(const char *dir, const char *knob, int64_t value)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, value);
	return cg_write_knob(dir, knob, buf);
}

int cg_read_keyed(const char *dir, const char *file, const char *key, int64_t *ret)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *buf = NULL;
	int r = read_file(path, 64 * 1024, &buf, NULL);
	if (r < 0)
		return r;
	size_t klen = strlen(key);
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			char *end;
			errno = 0;
			long long v = strtoll(line + klen + 1, &end, 10);
			if (errno || end == line + klen + 1)
				return -EINVAL;
			*ret = v;
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int cg_read_flat(const char *dir, const char *file, json_t *ret)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *buf = NULL;
	int r = read_file(path, 64 * 1024, &buf, NULL);
	if (r < 0)
		return r;
	for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		char *end;
		errno = 0;
		unsigned long long v = strtoull(sp + 1, &end, 10);
		if (!errno && end != sp + 1)
			json_object_set_new(ret, line, json_integer((json_int_t)v));
	}
	return 0;
}

int cg_read_i64(const char *dir, const char *file, int64_t *ret)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	int r = read_int64_file(path, ret);
	if (r == 0 && *ret == INT64_MAX) /* "max": unlimited */
		*ret = -1;
	return r;
}

int cg_kill_procs(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *buf = NULL;
	int r = read_file(path, 4 * 1024 * 1024, &buf, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	int n = 0;
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0) {
			kill((pid_t)pid, SIGKILL);
			n++;
		}
		p = end;
		while (*p == '\n' || *p == ' ')
			p++;
	}
	return n;
}

static bool word_in_list(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += wl) {
		bool start = p == list || p[-1] == ' ';
		bool end = p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n';
		if (start && end)
			return true;
	}
	return false;
}

static int enable_at(const char *d, struct shoal_err *err)
{
	static const char *const want[] = {"cpu", "memory", "pids"};
	char path[PATH_MAX];
	_cleanup_free_ char *avail = NULL, *enabled = NULL;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", d);
	int r = read_file(path, 4096, &avail, NULL);
	if (r < 0)
		return shoal_err_errno(err, r, "reading %s", path);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", d);
	r = read_file(path, 4096, &enabled, NULL);
	if (r < 0)
		return shoal_err_errno(err, r, "reading %s", path);

	char add[64] = "";
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (word_in_list(avail, want[i]) && !word_in_list(enabled, want[i])) {
			size_t n = strlen(add);
			snprintf(add + n, sizeof(add) - n, "%s+%s", n ? " " : "", want[i]);
		}
	}
	if (!add[0])
		return 0;
	r = write_string_file(path, add);
	if (r < 0)
		return shoal_err_errno(
			err, r,
			"enabling \"%s\" in %s (a cgroup with processes in it cannot "
			"delegate controllers: run the agent in a leaf cgroup or use "
			"an absolute cgroup parent)",
			add, path);
	return 0;
}

int cg_v2_enable_controllers(const char *mnt, const char *dir, struct shoal_err *err)
{
	size_t mlen = strlen(mnt);
	if (strncmp(dir, mnt, mlen) != 0 || (dir[mlen] != '/' && dir[mlen] != '\0'))
		return shoal_err_set(err, EINVAL, "cgroup %s is not under %s", dir, mnt);

	char cur[PATH_MAX];
	if (strlen(dir) >= sizeof(cur))
		return shoal_err_set(err, ENAMETOOLONG, "cgroup path too long: %s", dir);
	strcpy(cur, dir);
	/* Walk from the mount root down to dir, one component at a time. */
	for (char *p = cur + mlen;;) {
		char saved = *p;
		*p = '\0';
		int r = enable_at(cur[0] ? cur : "/", err);
		*p = saved;
		if (r < 0)
			return r;
		if (!saved)
			break;
		p = strchr(p + 1, '/');
		if (!p)
			p = cur + strlen(cur);
	}
	return 0;
}

/* ---- detection ---- */

static void hier_set_own(struct cg_hierarchy *h, const char *mnt_root, const char *cgpath)
{
	const char *rel = cgpath;
	size_t rl = strlen(mnt_root);
	if (strcmp(mnt_root, "/") != 0 && strncmp(cgpath, mnt_root, rl) == 0 &&
	    (cgpath[rl] == '/' || cgpath[rl] == '\0'))
		rel = cgpath + rl;
	if (strcmp(rel, "/") == 0)
		rel = "";
	snprintf(h->own, sizeof(h->own), "%s%s", h->mnt, rel);
}

struct mnt_info {
	char mnt[PATH_MAX];
	char root[PATH_MAX];
	bool found;
};

int cg_system_parse(FILE *mountinfo, FILE *proc_cgroup, struct cg_system *ret)
{
	struct mnt_info mi[CG_H_MAX] = {};
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, mountinfo) > 0) {
		char root[PATH_MAX], mnt[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) < 2)
			continue;
		const char *sep = strstr(line, " - ");
		if (!sep)
			continue;
		char fstype[64], source[256], opts[1024];
		if (sscanf(sep + 3, "%63s %255s %1023s", fstype, source, opts) < 3)
			continue;
		if (strcmp(fstype, "cgroup2") == 0) {
			if (!mi[CG_H_UNIFIED].found) {
				mi[CG_H_UNIFIED].found = true;
				strcpy(mi[CG_H_UNIFIED].mnt, mnt);
				strcpy(mi[CG_H_UNIFIED].root, root);
			}
			continue;
		}
		if (strcmp(fstype, "cgroup") != 0)
			continue;
		for (int h = CG_H_MEMORY; h < CG_H_MAX; h++) {
			if (mi[h].found)
				continue;
			/* Controllers are among the comma-separated super options. */
			char o[1024];
			strcpy(o, opts);
			char *save = NULL;
			for (char *t = strtok_r(o, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (strcmp(t, hier_v1_names[h]) == 0) {
					mi[h].found = true;
					strcpy(mi[h].mnt, mnt);
					strcpy(mi[h].root, root);
					break;
				}
			}
		}
	}

	/* Own cgroup per hierarchy: "N:ctrl,ctrl:/path" for v1, "0::/path" for v2. */
	static char own[CG_H_MAX][PATH_MAX];
	memset(own, 0, sizeof(own));
	while (getline(&line, &cap, proc_cgroup) > 0) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1, *path = c2 + 1;
		if (!*ctrls && strcmp(line, "0:") == 0) {
			snprintf(own[CG_H_UNIFIED], PATH_MAX, "%s", path);
			continue;
		}
		for (int h = CG_H_MEMORY; h < CG_H_MAX; h++) {
			char o[1024];
			snprintf(o, sizeof(o), "%s", ctrls);
			char *save = NULL;
			for (char *t = strtok_r(o, ",", &save); t; t = strtok_r(NULL, ",", &save))
				if (strcmp(t, hier_v1_names[h]) == 0)
					snprintf(own[h], PATH_MAX, "%s", path);
		}
	}
	free(line);

	memset(ret, 0, sizeof(*ret));
	bool any_v1 = false;
	for (int h = 0; h < CG_H_MAX; h++) {
		if (!mi[h].found)
			continue;
		struct cg_hierarchy *hh = &ret->h[h];
		hh->present = true;
		snprintf(hh->mnt, sizeof(hh->mnt), "%s", mi[h].mnt);
		hier_set_own(hh, mi[h].root, own[h][0] ? own[h] : "/");
		if (h != CG_H_UNIFIED)
			any_v1 = true;
	}
	bool v2 = ret->h[CG_H_UNIFIED].present;
	if (any_v1 && v2) {
		ret->layout = RT_CGROUP_HYBRID;
		ret->ops = &cg_ops_hybrid;
	} else if (any_v1) {
		ret->layout = RT_CGROUP_V1;
		ret->ops = &cg_ops_v1;
	} else if (v2) {
		ret->layout = RT_CGROUP_V2;
		ret->ops = &cg_ops_v2;
	} else {
		return -ENOENT;
	}
	return 0;
}

static void detect_once(void)
{
	_cleanup_fclose_ FILE *m = fopen("/proc/self/mountinfo", "re");
	if (!m) {
		cg_sys_err = -errno;
		return;
	}
	_cleanup_fclose_ FILE *c = fopen("/proc/self/cgroup", "re");
	if (!c) {
		cg_sys_err = -errno;
		return;
	}
	cg_sys_err = cg_system_parse(m, c, &cg_sys);
}

static int system_get(const struct cg_system **ret, struct shoal_err *err)
{
	pthread_once(&cg_sys_once, detect_once);
	if (cg_sys_err < 0)
		return shoal_err_errno(err, cg_sys_err, "detecting cgroup hierarchies");
	*ret = &cg_sys;
	return 0;
}

int rt_cgroup_detect(enum rt_cgroup_layout *ret, struct shoal_err *err)
{
	const struct cg_system *sys;
	int r = system_get(&sys, err);
	if (r < 0)
		return r;
	*ret = sys->layout;
	return 0;
}

const char *rt_cgroup_layout_name(enum rt_cgroup_layout layout)
{
	switch (layout) {
	case RT_CGROUP_V2:
		return "v2";
	case RT_CGROUP_V1:
		return "v1";
	case RT_CGROUP_HYBRID:
		return "hybrid";
	}
	return "unknown";
}

/* ---- conversions and validation ---- */

int64_t rt_cgroup_cpu_quota(int64_t nano_cpus, int64_t period_us)
{
	if (nano_cpus <= 0 || period_us <= 0)
		return 0;
	return nano_cpus * period_us / 1000000000LL;
}

uint64_t rt_cgroup_shares_to_weight(uint64_t shares)
{
	if (shares == 0)
		return 0;
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

/* cpu.shares above this the kernel clamps (MAX_SHARES); runc's weight
 * conversion assumes it. */
#define RT_CGROUP_SHARES_MAX 262144
/* The kernel's PID_MAX_LIMIT: pids.max refuses larger values. */
#define RT_CGROUP_PIDS_MAX (4 * 1024 * 1024)

int rt_cgroup_limits_validate(const struct rt_cgroup_limits *lim, struct shoal_err *err)
{
	if (lim->memory < 0)
		return shoal_err_set_status(err, 400, EINVAL, "invalid memory limit %" PRId64,
					    lim->memory);
	if (lim->memory > 0 && lim->memory < 6 * 1024 * 1024)
		return shoal_err_set_status(err, 400, EINVAL,
					    "Minimum memory limit allowed is 6MB");
	if (lim->memory_swap > 0 && lim->memory == 0)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"You should always set the Memory limit when using Memoryswap limit");
	if (lim->memory_swap > 0 && lim->memory_swap < lim->memory)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"Minimum memoryswap limit should be larger than memory limit");
	if (lim->memory_swap < -1)
		return shoal_err_set_status(err, 400, EINVAL, "invalid memory-swap limit %" PRId64,
					    lim->memory_swap);
	if (lim->nano_cpus < 0 ||
	    (lim->nano_cpus > 0 &&
	     rt_cgroup_cpu_quota(lim->nano_cpus, RT_CGROUP_CPU_PERIOD_US) < 1000))
		return shoal_err_set_status(err, 400, EINVAL,
					    "Range of CPUs is from 0.01 and up (got %.3f)",
					    (double)lim->nano_cpus / 1e9);
	if (lim->cpu_shares < 0 || lim->cpu_shares > RT_CGROUP_SHARES_MAX)
		return shoal_err_set_status(err, 400, EINVAL,
					    "invalid CPU shares %" PRId64 " (0 to %d)",
					    lim->cpu_shares, RT_CGROUP_SHARES_MAX);
	if (lim->pids_limit < -1 || lim->pids_limit > RT_CGROUP_PIDS_MAX)
		return shoal_err_set_status(err, 400, EINVAL,
					    "invalid pids limit %" PRId64
					    " (1 to %d, or 0 or -1 for no limit)",
					    lim->pids_limit, RT_CGROUP_PIDS_MAX);
	return 0;
}

/* ---- paths ---- */

static int check_parent(const char *parent, struct shoal_err *err)
{
	if (!parent)
		return 0;
	for (const char *p = parent; *p;) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return shoal_err_set_status(err, 400, EINVAL,
						    "invalid cgroup parent \"%s\": no . or ..",
						    parent);
		p = *e ? e + 1 : e;
	}
	return 0;
}

static int check_id(const char *id, struct shoal_err *err)
{
	if (!id || !*id || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return shoal_err_set(err, EINVAL, "invalid cgroup name \"%s\"", id ? id : "");
	return 0;
}

/* <own or mount root>/<parent> in hierarchy h, without a trailing slash. */
static int parent_dir(const struct cg_hierarchy *h, const char *parent, char *buf, size_t len)
{
	int n;
	if (!parent || !*parent)
		n = snprintf(buf, len, "%s", h->own);
	else if (parent[0] == '/')
		n = snprintf(buf, len, "%s%s", h->mnt, parent);
	else
		n = snprintf(buf, len, "%s/%s", h->own, parent);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return 0;
}

/* A v1 controller mounted together with an earlier one (cpu,cpuacct): the
 * container's directory there is the earlier one's. */
static bool cg_hier_shared(const struct cg_system *sys, int h)
{
	for (int k = CG_H_MEMORY; k < h; k++)
		if (sys->h[k].present && strcmp(sys->h[k].mnt, sys->h[h].mnt) == 0)
			return true;
	return false;
}

static struct rt_cgroup *cg_new(const struct cg_system *sys, const char *parent, const char *id,
				struct shoal_err *err)
{
	struct rt_cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg) {
		shoal_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	cg->ops = sys->ops;
	for (int h = 0; h < CG_H_MAX; h++) {
		if (!(sys->ops->hiers & CG_H_BIT(h)) || !sys->h[h].present ||
		    cg_hier_shared(sys, h))
			continue;
		char dir[PATH_MAX];
		if (parent_dir(&sys->h[h], parent, dir, sizeof(dir)) < 0 ||
		    asprintf(&cg->path[h], "%s/%s", dir, id) < 0) {
			cg->path[h] = NULL;
			rt_cgroup_free(cg);
			shoal_err_set(err, ENAMETOOLONG, "cgroup path too long for %s", id);
			return NULL;
		}
	}
	return cg;
}

/* ---- public API ---- */

static int prepare_hier(const struct cg_system *sys, int h, const char *dir, struct shoal_err *err)
{
	int r = mkdir_p(dir, 0755);
	if (r < 0)
		return shoal_err_errno(err, r, "creating cgroup %s", dir);
	if (h == CG_H_UNIFIED)
		return cg_v2_enable_controllers(sys->h[h].mnt, dir, err);
	return 0;
}

int rt_cgroup_parent_prepare(const char *parent, char *ret_v2_path, size_t len,
			     struct shoal_err *err)
{
	const struct cg_system *sys;
	int r = system_get(&sys, err);
	if (r < 0)
		return r;
	r = check_parent(parent, err);
	if (r < 0)
		return r;

	char v2[PATH_MAX] = "";
	for (int h = 0; h < CG_H_MAX; h++) {
		if (!(sys->ops->hiers & CG_H_BIT(h)) || !sys->h[h].present ||
		    cg_hier_shared(sys, h))
			continue;
		char dir[PATH_MAX];
		if (parent_dir(&sys->h[h], parent, dir, sizeof(dir)) < 0)
			return shoal_err_set(err, ENAMETOOLONG, "cgroup parent too long: %s",
					     parent);
		r = prepare_hier(sys, h, dir, err);
		if (r < 0)
			return r;
		if (h == CG_H_UNIFIED)
			snprintf(v2, sizeof(v2), "%s", dir);
	}
	if (ret_v2_path && len) {
		if (strlen(v2) >= len)
			return shoal_err_set(err, ENAMETOOLONG, "cgroup path too long: %s", v2);
		strcpy(ret_v2_path, v2);
	}
	return 0;
}

int rt_cgroup_parent_remove(const char *parent, struct shoal_err *err)
{
	const struct cg_system *sys;
	int r = system_get(&sys, err);
	if (r < 0)
		return r;
	r = check_parent(parent, err);
	if (r < 0)
		return r;
	if (!parent || !*parent || strcmp(parent, "/") == 0)
		return shoal_err_set(err, EINVAL, "refusing to remove the cgroup root");

	int ret = 0;
	for (int h = 0; h < CG_H_MAX; h++) {
		if (!(sys->ops->hiers & CG_H_BIT(h)) || !sys->h[h].present ||
		    cg_hier_shared(sys, h))
			continue;
		char dir[PATH_MAX];
		if (parent_dir(&sys->h[h], parent, dir, sizeof(dir)) < 0)
			return shoal_err_set(err, ENAMETOOLONG, "cgroup parent too long: %s",
					     parent);
		if (rmdir(dir) < 0 && errno != ENOENT && ret == 0)
			ret = shoal_err_errno(err, errno, "removing cgroup %s", dir);
	}
	return ret;
}

static void remove_dirs(struct rt_cgroup *cg)
{
	for (int h = CG_H_MAX - 1; h >= 0; h--)
		if (cg->path[h])
			rmdir(cg->path[h]);
}

/* Creates the container's directory in the hierarchies of mask that it uses. */
static int make_dirs(struct rt_cgroup *cg, const struct cg_system *sys, const char *parent,
		     unsigned int mask, struct shoal_err *err)
{
	for (int h = 0; h < CG_H_MAX; h++) {
		if (!cg->path[h] || !(mask & CG_H_BIT(h)))
			continue;
		if (mkdir(cg->path[h], 0755) == 0 || errno == EEXIST)
			continue;
		if (errno != ENOENT)
			return shoal_err_errno(err, errno, "creating cgroup %s", cg->path[h]);
		/* The parent is missing: create (and delegate) it, then retry. */
		char dir[PATH_MAX];
		parent_dir(&sys->h[h], parent, dir, sizeof(dir));
		int r = prepare_hier(sys, h, dir, err);
		if (r < 0)
			return r;
		if (mkdir(cg->path[h], 0755) < 0 && errno != EEXIST)
			return shoal_err_errno(err, errno, "creating cgroup %s", cg->path[h]);
	}
	return 0;
}

static int create_begin(const char *parent, const char *id, const struct rt_cgroup_limits *lim,
			unsigned int mask, struct rt_cgroup **ret, struct shoal_err *err)
{
	const struct cg_system *sys;
	int r = system_get(&sys, err);
	if (r < 0)
		return r;
	if ((r = check_parent(parent, err)) < 0 || (r = check_id(id, err)) < 0)
		return r;
	r = rt_cgroup_limits_validate(lim, err);
	if (r < 0)
		return r;
	struct rt_cgroup *cg = cg_new(sys, parent, id, err);
	if (!cg)
		return -(err ? err->code : ENOMEM);
	r = make_dirs(cg, sys, parent, mask, err);
	if (r < 0) {
		remove_dirs(cg);
		rt_cgroup_free(cg);
		return r;
	}
	*ret = cg;
	return 0;
}

int rt_cgroup_create_first(const char *parent, const char *id, const struct rt_cgroup_limits *lim,
			   struct rt_cgroup **ret, struct shoal_err *err)
{
	static const struct rt_cgroup_limits none;
	return create_begin(parent, id, lim ? lim : &none, CG_H_BIT(CG_H_UNIFIED), ret, err);
}

int rt_cgroup_create_rest(struct rt_cgroup *cg, const char *parent,
			  const struct rt_cgroup_limits *lim, struct shoal_err *err)
{
	static const struct rt_cgroup_limits none;
	const struct cg_system *sys;
	int r = system_get(&sys, err);
	if (r < 0)
		return r;
	if ((r = make_dirs(cg, sys, parent, ~CG_H_BIT(CG_H_UNIFIED), err)) < 0 ||
	    (r = cg->ops->set_limits(cg, lim ? lim : &none, err)) < 0) {
		remove_dirs(cg);
		return r;
	}
	return 0;
}

int rt_cgroup_create(const char *parent, const char *id, const struct rt_cgroup_limits *lim,
		     struct rt_cgroup **ret, struct shoal_err *err)
{
	struct rt_cgroup *cg = NULL;
	int r = rt_cgroup_create_first(parent, id, lim, &cg, err);
	if (r < 0)
		return r;
	r = rt_cgroup_create_rest(cg, parent, lim, err);
	if (r < 0) {
		rt_cgroup_free(cg);
		return r;
	}
	*ret = cg;
	return 0;
}

int rt_cgroup_open(const char *parent, const char *id, struct rt_cgroup **ret,
		   struct shoal_err *err)
{
	const struct cg_system *sys;
	int r = system_get(&sys, err);
	if (r < 0)
		return r;
	if ((r = check_parent(parent, err)) < 0 || (r = check_id(id, err)) < 0)
		return r;
	struct rt_cgroup *cg = cg_new(sys, parent, id, err);
	if (!cg)
		return -(err ? err->code : ENOMEM);
	bool any = false;
	for (int h = 0; h < CG_H_MAX && !any; h++)
		if (cg->path[h] && access(cg->path[h], F_OK) == 0)
			any = true;
	if (!any) {
		rt_cgroup_free(cg);
		return shoal_err_set(err, ENOENT, "no cgroup %s under %s", id,
				     parent && *parent ? parent : "own cgroup");
	}
	*ret = cg;
	return 0;
}

int rt_cgroup_attach(struct rt_cgroup *cg, pid_t pid, struct shoal_err *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (int h = 0; h < CG_H_MAX; h++) {
		if (!cg->path[h])
			continue;
		int r = cg_write_knob(cg->path[h], "cgroup.procs", buf);
		if (r < 0)
			return shoal_err_errno(err, r, "moving pid %d into %s", (int)pid,
					       cg->path[h]);
	}
	return 0;
}

int rt_cgroup_join_self(struct rt_cgroup *cg, bool skip_v2, struct shoal_err *err)
{
	for (int h = 0; h < CG_H_MAX; h++) {
		if (!cg->path[h] || (h == CG_H_UNIFIED && skip_v2))
			continue;
		/* v2 has no per-thread move across domains: cgroup.procs it is. */
		int r = cg_write_knob(cg->path[h], h == CG_H_UNIFIED ? "cgroup.procs" : "tasks",
				      "0");
		if (r < 0)
			return shoal_err_errno(err, r, "joining cgroup %s", cg->path[h]);
	}
	return 0;
}

int rt_cgroup_v2_fd(struct rt_cgroup *cg)
{
	if (!cg->path[CG_H_UNIFIED])
		return -ENOENT;
	int fd = open(cg->path[CG_H_UNIFIED], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

bool rt_cgroup_oom_killed(struct rt_cgroup *cg)
{
	return cg && cg->ops->oom_killed(cg);
}

int64_t rt_cgroup_memory_usage(struct rt_cgroup *cg)
{
	return cg ? cg->ops->memory_usage(cg) : 0;
}

int rt_cgroup_freeze(struct rt_cgroup *cg, bool frozen, struct shoal_err *err)
{
	return cg->ops->freeze(cg, frozen, err);
}

bool rt_cgroup_frozen(struct rt_cgroup *cg)
{
	return cg && cg->ops->frozen(cg);
}

int rt_cgroup_set_limits(struct rt_cgroup *cg, const struct rt_cgroup_limits *lim,
			 struct shoal_err *err)
{
	int r = rt_cgroup_limits_validate(lim, err);
	return r < 0 ? r : cg->ops->set_limits(cg, lim, err);
}

int rt_cgroup_stats(struct rt_cgroup *cg, struct rt_cgroup_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->mem_stat = json_object();
	if (!ret->mem_stat)
		return -ENOMEM;
	return cg->ops->stats(cg, ret);
}

void rt_cgroup_stats_done(struct rt_cgroup_stats *st)
{
	free(st->percpu_ns);
	st->percpu_ns = NULL;
	json_decref(st->mem_stat);
	st->mem_stat = NULL;
}

int rt_cgroup_pids(struct rt_cgroup *cg, pid_t *ret, size_t max)
{
	/* the v2 tree holds every process, on hybrid too; else any v1 hierarchy */
	const char *dir = cg->path[CG_H_UNIFIED];
	for (int h = CG_H_MEMORY; !dir && h < CG_H_MAX; h++)
		dir = cg->path[h];
	if (!dir)
		return -ENOENT;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	_cleanup_free_ char *buf = NULL;
	int r = read_file(path, 4 * 1024 * 1024, &buf, NULL);
	if (r < 0)
		return r;
	size_t n = 0;
	for (char *p = buf; *p && n < max;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0)
			ret[n++] = (pid_t)pid;
		p = end;
		while (*p == '\n' || *p == ' ')
			p++;
	}
	return (int)n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Tries every remaining directory once; true when all are gone. */
static bool rmdir_all(struct rt_cgroup *cg, int *last_errno, const char **last_path)
{
	bool done = true;
	for (int h = CG_H_MAX - 1; h >= 0; h--) {
		if (!cg->path[h])
			continue;
		if (rmdir(cg->path[h]) == 0 || errno == ENOENT)
			continue;
		*last_errno = errno;
		*last_path = cg->path[h];
		done = false;
	}
	return done;
}

int rt_cgroup_destroy(struct rt_cgroup *cg, struct shoal_err *err)
{
	if (!cg)
		return 0;
	int last_errno = 0;
	const char *last_path = NULL;
	/* The common case is an empty cgroup: one rmdir per hierarchy, nothing read. */
	if (rmdir_all(cg, &last_errno, &last_path))
		return 0;

	/* Killed processes take a moment to leave; bounded at about 5 seconds. */
	long wait_ms = 1;
	for (int attempt = 0; attempt < 120; attempt++) {
		if (last_errno != EBUSY)
			break;
		int r = cg->ops->kill_all(cg);
		if (r < 0)
			return shoal_err_errno(err, r, "killing processes in cgroup %s", last_path);
		sleep_ms(wait_ms);
		if (wait_ms < 50)
			wait_ms *= 2;
		if (rmdir_all(cg, &last_errno, &last_path))
			return 0;
	}
	return shoal_err_errno(err, last_errno, "removing cgroup %s", last_path);
}

void rt_cgroup_free(struct rt_cgroup *cg)
{
	if (!cg)
		return;
	for (int h = 0; h < CG_H_MAX; h++)
		free(cg->path[h]);
	free(cg);
}

const char *rt_cgroup_path(struct rt_cgroup *cg, const char *controller)
{
	if (!cg || !controller)
		return NULL;
	if (!*controller)
		return cg->path[CG_H_UNIFIED];
	for (int h = CG_H_MEMORY; h < CG_H_MAX; h++)
		if (strcmp(controller, hier_v1_names[h]) == 0) {
			/* On v2 every controller lives in the one tree. */
			if (cg->ops == &cg_ops_v2)
				return cg->path[CG_H_UNIFIED];
			/* co-mounted with cpu */
			if (h == CG_H_CPUACCT && !cg->path[h])
				return cg->path[CG_H_CPU];
			return cg->path[h];
		}
	return NULL;
}
