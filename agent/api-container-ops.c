// SPDX-License-Identifier: Apache-2.0
/* Container operations beyond the life cycle: restart, rename, pause and
 * unpause, update (resources), top and stats. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container-config.h"
#include "agent/container.h"
#include "agent/events.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/cgroup.h"

static struct container *find_or_reply(struct api_req *r)
{
	struct shoal_err err = {0};
	struct container *c = container_find(r->agent, r->params[0], &err);
	if (!c)
		api_reply_err(r, &err);
	return c;
}

/* ---- restart: a stop, then a start, through the agent's own handlers ---- */

struct restart_job {
	struct agent *agent;
	char id[65];
	struct api_req *r; /* NULL once the client went away */
};

static void restart_cancel(struct api_req *r)
{
	struct restart_job *j = r->userdata;
	if (j)
		j->r = NULL;
	api_req_free(r);
}

static void restart_finish(struct restart_job *j, int status, const char *body)
{
	if (j->r) {
		j->r->on_cancel = NULL;
		j->r->userdata = NULL;
		if (status >= 400) {
			json_t *m = json_loads(body, 0, NULL);
			api_reply_error(j->r, status, "Cannot restart container %s: %s", j->id,
					json_string_value(json_object_get(m, "message"))
						?: "failed");
			json_decref(m);
		} else {
			api_reply_empty(j->r, 204);
		}
	}
	free(j);
}

static void restart_started(void *arg, int status, const char *body)
{
	struct restart_job *j = arg;
	struct container *c = container_get(j->agent, j->id);
	if (status < 400 && c)
		events_container(c, "restart", NULL, NULL);
	restart_finish(j, status, body);
}

static void restart_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct restart_job *j = arg;
	struct container *c = container_get(j->agent, j->id);
	if (!c) {
		restart_finish(j, 404, "{\"message\":\"it was removed while it stopped\"}");
		return;
	}
	struct api_req *ir = api_req_internal(j->agent, restart_started, j);
	if (!ir) {
		restart_finish(j, 500, "{\"message\":\"out of memory\"}");
		return;
	}
	container_start_by_user(c, ir);
}

static void restart_stopped(void *arg, int status, const char *body)
{
	struct restart_job *j = arg;
	if (status >= 400) {
		restart_finish(j, status, body);
		return;
	}
	/* The stop is answered from inside the exit's handling: the start goes
	 * on the loop's next turn, once that is done (an AutoRemove container is
	 * gone by then). */
	static const struct timeval now = {0, 0};
	if (event_base_once(j->agent->base, -1, EV_TIMEOUT, restart_start_cb, j, &now) < 0)
		restart_start_cb(-1, 0, j);
}

void api_container_restart(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	json_t *st = json_object_get(c->config, "StopTimeout");
	int64_t t, def = json_is_integer(st) && json_integer_value(st) >= 0 ? json_integer_value(st)
									    : 10;
	if (api_query_int(r, "t", def, &t) < 0)
		return;
	const char *sig = api_query(r, "signal");
	if (sig && *sig) {
		int s;
		if (parse_signal(sig, &s) < 0) {
			api_reply_error(r, 400, "invalid signal: %s", sig);
			return;
		}
		json_object_set_new(c->config, "StopSignal", json_string(sig));
	}
	if (c->state == CONTAINER_REMOVING) {
		api_reply_error(r, 409,
				"container %s is marked for removal and cannot be restarted",
				c->name);
		return;
	}
	struct restart_job *j = calloc(1, sizeof(*j));
	struct api_req *ir = j ? api_req_internal(r->agent, restart_stopped, j) : NULL;
	if (!ir) {
		free(j);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	j->agent = r->agent;
	snprintf(j->id, sizeof(j->id), "%s", c->id);
	j->r = r;
	r->userdata = j;
	r->on_cancel = restart_cancel;
	api_req_defer(r);
	container_stop(c, t, ir);
}

/* ---- rename, pause ---- */

void api_container_rename(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	struct shoal_err err = {0};
	if (container_rename(c, api_query(r, "name"), &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 204);
}

static void pause_or_unpause(struct api_req *r, bool pause)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	struct shoal_err err = {0};
	if (container_pause(c, pause, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 204);
}

void api_container_pause(struct api_req *r)
{
	pause_or_unpause(r, true);
}

void api_container_unpause(struct api_req *r)
{
	pause_or_unpause(r, false);
}

/* ---- update ---- */

static bool json_is_zero(json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return true;
	if (json_is_integer(v))
		return json_integer_value(v) == 0;
	if (json_is_real(v))
		return json_real_value(v) == 0;
	if (json_is_string(v))
		return !*json_string_value(v);
	if (json_is_array(v))
		return json_array_size(v) == 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e) if (!json_is_zero(e)) return false;
		return true;
	}
	return false;
}

/* What shoal enforces; the docker CLI sends every other resource field too,
 * empty, and those are refused when they ask for something. */
static const char *const update_fields[] = {"Memory", "MemorySwap", "NanoCpus", "CpuShares",
					    "PidsLimit"};

static int update_check(json_t *body, struct shoal_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(update_fields); i++)
			known |= strcmp(k, update_fields[i]) == 0;
		if (known) {
			if (!json_is_null(v) && !json_is_integer(v))
				return shoal_err_set_status(err, 400, EINVAL,
							    "%s: expected a whole number", k);
			continue;
		}
		if (strcmp(k, "RestartPolicy") == 0) {
			struct container_restart_policy rp;
			int r = container_restart_policy_parse(v, &rp, err);
			if (r < 0) {
				err->status = 400;
				return r;
			}
			continue;
		}
		if (strcmp(k, "MemorySwappiness") == 0 && json_is_integer(v) &&
		    json_integer_value(v) == -1)
			continue;
		if (json_is_zero(v))
			continue;
		return shoal_err_set_status(err, 400, EINVAL,
					    "%s: not supported by shoal's update (it enforces "
					    "Memory, MemorySwap, NanoCpus, CpuShares and "
					    "PidsLimit); leave it out (it would not be applied)",
					    k);
	}
	return 0;
}

void api_container_update(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	_cleanup_(json_decrefp) json_t *body = api_body_json(r, true);
	if (!body)
		return;
	struct shoal_err err = {0};
	if (update_check(body, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	if (c->state == CONTAINER_REMOVING) {
		api_reply_error(r, 409, "container %s is marked for removal", c->name);
		return;
	}
	/* A restart policy with a name replaces the container's (Docker's
	 * update --restart); it applies from the next exit on. */
	json_t *rp = json_object_get(body, "RestartPolicy");
	const char *rp_name = json_string_value(json_object_get(rp, "Name"));
	if (rp_name && !*rp_name)
		rp_name = NULL;
	if (rp_name) {
		bool auto_remove = false;
		json_get_bool(c->host_config, "AutoRemove", &auto_remove, NULL);
		if (auto_remove && strcmp(rp_name, "no") != 0) {
			api_reply_error(r, 409,
					"Restart policy cannot be updated because AutoRemove is "
					"enabled for the container");
			return;
		}
		if (json_object_get(json_object_get(c->config, "Labels"),
				    "com.docker.swarm.task.id")) {
			api_reply_error(
				r, 400,
				"RestartPolicy: container %s is a service task, restarted by "
				"its service's restart policy; update the service instead",
				c->name);
			return;
		}
	}
	/* Docker's rule: a field left at zero keeps its value. */
	int64_t cur[ARRAY_SIZE(update_fields)];
	bool changed = false;
	for (size_t i = 0; i < ARRAY_SIZE(update_fields); i++) {
		cur[i] = 0;
		json_get_int(c->host_config, update_fields[i], &cur[i], NULL);
		json_t *v = json_object_get(body, update_fields[i]);
		if (json_is_integer(v) && json_integer_value(v) != 0) {
			cur[i] = json_integer_value(v);
			changed = true;
		}
	}
	struct rt_cgroup_limits lim = {.memory = cur[0],
				       .memory_swap = cur[1],
				       .nano_cpus = cur[2],
				       .cpu_shares = cur[3],
				       .pids_limit = cur[4]};
	if (rt_cgroup_limits_validate(&lim, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	if (changed && c->state == CONTAINER_RUNNING) {
		struct rt_cgroup *cg = NULL;
		int ret = rt_cgroup_open(r->agent->cfg.cgroup_parent, c->id, &cg, &err);
		if (ret >= 0) {
			ret = rt_cgroup_set_limits(cg, &lim, &err);
			rt_cgroup_free(cg);
		}
		if (ret < 0) {
			api_reply_error(r, err.status ? err.status : 500,
					"Cannot update container %s: %s", c->id, err.msg);
			return;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(update_fields); i++)
		if (cur[i])
			json_object_set_new(c->host_config, update_fields[i], json_integer(cur[i]));
	if (rp_name) {
		json_object_set_new(
			c->host_config, "RestartPolicy",
			json_pack("{s:s, s:I}", "Name", rp_name, "MaximumRetryCount",
				  json_integer_value(json_object_get(rp, "MaximumRetryCount"))));
		changed = true;
	}
	int ret = container_persist(c);
	if (ret < 0) {
		api_reply_error(r, 500, "recording the update in %s/container.json: %s",
				c->bundle_dir, strerror(-ret));
		return;
	}
	if (changed)
		events_container(c, "update", NULL, NULL);
	api_reply_json(r, 200, json_pack("{s:[]}", "Warnings"));
}

/* ---- top ---- */

#define TOP_MAX_PIDS 4096

struct proc_info {
	pid_t pid, ppid;
	char state;
	char comm[64];
	unsigned long long utime, stime, start_ticks, vsize;
	long long rss_pages;
	int tty_nr;
	unsigned uid;
	char *cmd; /* malloc'ed */
};

static int proc_read(pid_t pid, struct proc_info *p)
{
	char path[64];
	_cleanup_free_ char *stat = NULL, *status = NULL, *cmdline = NULL;
	size_t len = 0;
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, 4096, &stat, NULL) < 0)
		return -ENOENT;
	char *lp = strchr(stat, '('), *rp = strrchr(stat, ')');
	if (!lp || !rp)
		return -EINVAL;
	snprintf(p->comm, sizeof(p->comm), "%.*s", (int)(rp - lp - 1), lp + 1);
	/* fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt
	 * cminflt majflt cmajflt utime stime cutime cstime priority nice threads
	 * itrealvalue starttime vsize rss */
	if (sscanf(rp + 2,
		   "%c %d %*d %*d %d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
		   "%llu %llu %lld",
		   &p->state, &p->ppid, &p->tty_nr, &p->utime, &p->stime, &p->start_ticks,
		   &p->vsize, &p->rss_pages) != 8)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file(path, 16384, &status, NULL) == 0) {
		char *u = strstr(status, "\nUid:");
		if (u)
			p->uid = (unsigned)strtoul(u + 5, NULL, 10);
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file(path, 4096, &cmdline, &len) == 0 && len > 0) {
		for (size_t i = 0; i + 1 < len; i++)
			if (cmdline[i] == '\0')
				cmdline[i] = ' ';
		p->cmd = strndup(cmdline, len);
	} else {
		if (asprintf(&p->cmd, "[%s]", p->comm) < 0)
			p->cmd = NULL;
	}
	return p->cmd ? 0 : -ENOMEM;
}

static double uptime_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fmt_tty(int tty_nr, char *out, size_t len)
{
	unsigned major = ((unsigned)tty_nr >> 8) & 0xfff,
		 minor = ((unsigned)tty_nr & 0xff) | (((unsigned)tty_nr >> 12) & 0xfff00);
	if (tty_nr == 0)
		snprintf(out, len, "?");
	else if (major >= 136 && major <= 143)
		snprintf(out, len, "pts/%u", minor + (major - 136) * 256);
	else
		snprintf(out, len, "tty%u", minor);
}

static void fmt_cputime(unsigned long long ticks, long hz, bool hours, char *out, size_t len)
{
	unsigned long long s = ticks / (unsigned long long)hz;
	if (hours)
		snprintf(out, len, "%02llu:%02llu:%02llu", s / 3600, (s / 60) % 60, s % 60);
	else
		snprintf(out, len, "%llu:%02llu", s / 60, s % 60);
}

static void fmt_start(double start_s_ago, char *out, size_t len)
{
	time_t t = time(NULL) - (time_t)start_s_ago, now = time(NULL);
	struct tm tm, tn;
	localtime_r(&t, &tm);
	localtime_r(&now, &tn);
	if (tm.tm_yday == tn.tm_yday && tm.tm_year == tn.tm_year)
		strftime(out, len, "%H:%M", &tm);
	else
		strftime(out, len, "%b%d", &tm);
}

static void fmt_uid(unsigned uid, char *out, size_t len)
{
	if (uid == 0)
		snprintf(out, len, "root");
	else
		snprintf(out, len, "%u", uid);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return x < y ? -1 : x > y;
}

/* GET /containers/{id}/top: the processes of the container's cgroup, read
 * from /proc, as `ps -ef` (the default) or `ps aux` shows them. */
void api_container_top(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	const char *args = api_query(r, "ps_args");
	bool aux;
	if (!args || !*args || strcmp(args, "-ef") == 0 || strcmp(args, "ef") == 0)
		aux = false;
	else if (strcmp(args, "aux") == 0 || strcmp(args, "-aux") == 0)
		aux = true;
	else {
		api_reply_error(r, 400,
				"ps_args %s: not supported; shoal lists the processes itself, as "
				"-ef (the default) or aux",
				args);
		return;
	}
	if (c->state != CONTAINER_RUNNING) {
		api_reply_error(r, 409, "Container %s is not running", c->id);
		return;
	}
	struct shoal_err err = {0};
	struct rt_cgroup *cg = NULL;
	if (rt_cgroup_open(r->agent->cfg.cgroup_parent, c->id, &cg, &err) < 0) {
		api_reply_error(r, 500, "reading the processes of container %s: %s", c->id,
				err.msg);
		return;
	}
	_cleanup_free_ pid_t *pids = calloc(TOP_MAX_PIDS, sizeof(*pids));
	int n = pids ? rt_cgroup_pids(cg, pids, TOP_MAX_PIDS) : -ENOMEM;
	rt_cgroup_free(cg);
	if (n < 0) {
		api_reply_error(r, 500, "reading the processes of container %s: %s", c->id,
				strerror(-n));
		return;
	}
	qsort(pids, (size_t)n, sizeof(*pids), cmp_pid);
	long hz = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	if (hz <= 0)
		hz = 100;
	struct sysinfo si;
	double mem_total = sysinfo(&si) == 0 ? (double)si.totalram * si.mem_unit : 0;
	double up = uptime_s();
	json_t *titles = aux ? json_pack("[s,s,s,s,s,s,s,s,s,s,s]", "USER", "PID", "%CPU", "%MEM",
					 "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND")
			     : json_pack("[s,s,s,s,s,s,s,s]", "UID", "PID", "PPID", "C", "STIME",
					 "TTY", "TIME", "CMD");
	json_t *procs = json_array();
	for (int i = 0; i < n; i++) {
		struct proc_info p;
		if (proc_read(pids[i], &p) < 0) {
			free(p.cmd);
			continue; /* gone meanwhile */
		}
		char user[32], pid[16], ppid[16], tty[16], start[16], tm[16], cpu[16];
		fmt_uid(p.uid, user, sizeof(user));
		snprintf(pid, sizeof(pid), "%d", (int)p.pid);
		snprintf(ppid, sizeof(ppid), "%d", (int)p.ppid);
		fmt_tty(p.tty_nr, tty, sizeof(tty));
		double age = up - (double)p.start_ticks / (double)hz;
		fmt_start(age, start, sizeof(start));
		double used = (double)(p.utime + p.stime) / (double)hz;
		double pcpu = age > 0 ? used * 100.0 / age : 0;
		json_t *row;
		if (aux) {
			char pmem[16], vsz[24], rss[24], stat[4] = {p.state, 0};
			double rss_b = (double)p.rss_pages * (double)page;
			snprintf(cpu, sizeof(cpu), "%.1f", pcpu);
			snprintf(pmem, sizeof(pmem), "%.1f",
				 mem_total > 0 ? rss_b * 100.0 / mem_total : 0);
			snprintf(vsz, sizeof(vsz), "%llu", p.vsize / 1024);
			snprintf(rss, sizeof(rss), "%.0f", rss_b / 1024);
			fmt_cputime(p.utime + p.stime, hz, false, tm, sizeof(tm));
			row = json_pack("[s,s,s,s,s,s,s,s,s,s,s]", user, pid, cpu, pmem, vsz, rss,
					tty, stat, start, tm, p.cmd);
		} else {
			snprintf(cpu, sizeof(cpu), "%d", (int)pcpu);
			fmt_cputime(p.utime + p.stime, hz, true, tm, sizeof(tm));
			row = json_pack("[s,s,s,s,s,s,s,s]", user, pid, ppid, cpu, start, tty, tm,
					p.cmd);
		}
		free(p.cmd);
		json_array_append_new(procs, row);
	}
	api_reply_json(r, 200, json_pack("{s:o, s:o}", "Titles", titles, "Processes", procs));
}

/* ---- stats ---- */

struct stats_sample {
	int64_t read_ns; /* 0: none */
	struct rt_cgroup_stats cg;
	uint64_t system_ns;
	json_t *networks; /* NULL: no network namespace of its own */
};

static void sample_done(struct stats_sample *s)
{
	rt_cgroup_stats_done(&s->cg);
	json_decref(s->networks);
	memset(s, 0, sizeof(*s));
}

/* /proc/stat's first line: the host's CPU time, as Docker's system_cpu_usage. */
static uint64_t system_cpu_ns(void)
{
	_cleanup_free_ char *buf = NULL;
	if (read_file("/proc/stat", 1 << 20, &buf, NULL) < 0 || strncmp(buf, "cpu ", 4) != 0)
		return 0;
	unsigned long long v[8] = {0};
	sscanf(buf + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	       &v[4], &v[5], &v[6], &v[7]);
	unsigned long long ticks = 0;
	for (int i = 0; i < 8; i++)
		ticks += v[i];
	long hz = sysconf(_SC_CLK_TCK);
	return (uint64_t)ticks * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
}

/* The interfaces of the container's network namespace but lo, from the
 * init process's view of /proc/net/dev. */
static json_t *read_networks(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
	if (read_file(path, 1 << 20, &buf, NULL) < 0)
		return NULL;
	json_t *nets = json_object();
	char *save = NULL;
	int line = 0;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (line++ < 2)
			continue;
		char *colon = strchr(l, ':');
		if (!colon)
			continue;
		*colon = '\0';
		while (*l == ' ')
			l++;
		if (strcmp(l, "lo") == 0)
			continue;
		unsigned long long f[16] = {0};
		if (sscanf(colon + 1,
			   "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
			   "%llu %llu",
			   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9],
			   &f[10], &f[11], &f[12], &f[13], &f[14], &f[15]) < 12)
			continue;
		json_object_set_new(
			nets, l,
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rx_bytes",
				  (json_int_t)f[0], "rx_packets", (json_int_t)f[1], "rx_errors",
				  (json_int_t)f[2], "rx_dropped", (json_int_t)f[3], "tx_bytes",
				  (json_int_t)f[8], "tx_packets", (json_int_t)f[9], "tx_errors",
				  (json_int_t)f[10], "tx_dropped", (json_int_t)f[11]));
	}
	return nets;
}

static void sample_take(struct container *c, struct stats_sample *s)
{
	memset(s, 0, sizeof(*s));
	s->read_ns = now_ns();
	if (c->state != CONTAINER_RUNNING)
		return;
	struct rt_cgroup *cg = NULL;
	if (rt_cgroup_open(c->agent->cfg.cgroup_parent, c->id, &cg, NULL) == 0) {
		rt_cgroup_stats(cg, &s->cg);
		rt_cgroup_free(cg);
	}
	s->system_ns = system_cpu_ns();
	if (strcmp(c->net_mode, "host") != 0 && c->pid > 0)
		s->networks = read_networks(c->pid);
}

static json_t *cpu_json(const struct stats_sample *s)
{
	json_t *percpu = json_array();
	for (unsigned i = 0; i < s->cg.n_percpu; i++)
		json_array_append_new(percpu, json_integer((json_int_t)s->cg.percpu_ns[i]));
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	return json_pack("{s:{s:I, s:o, s:I, s:I}, s:I, s:i, s:{s:I, s:I, s:I}}", "cpu_usage",
			 "total_usage", (json_int_t)s->cg.cpu_total_ns, "percpu_usage",
			 s->cg.n_percpu ? percpu : (json_decref(percpu), json_null()),
			 "usage_in_kernelmode", (json_int_t)s->cg.cpu_system_ns,
			 "usage_in_usermode", (json_int_t)s->cg.cpu_user_ns, "system_cpu_usage",
			 (json_int_t)s->system_ns, "online_cpus", s->read_ns ? (int)online : 0,
			 "throttling_data", "periods", (json_int_t)s->cg.nr_periods,
			 "throttled_periods", (json_int_t)s->cg.nr_throttled, "throttled_time",
			 (json_int_t)s->cg.throttled_ns);
}

static json_t *stats_json(struct container *c, const struct stats_sample *cur,
			  const struct stats_sample *pre)
{
	char read[40], preread[40], name[130];
	format_rfc3339(cur->read_ns, read);
	if (pre->read_ns)
		format_rfc3339(pre->read_ns, preread);
	else
		snprintf(preread, sizeof(preread), "0001-01-01T00:00:00Z");
	snprintf(name, sizeof(name), "/%s", c->name);
	int64_t limit = cur->cg.mem_limit;
	struct sysinfo si;
	/* no limit: the host's memory, as Docker reports it */
	if (limit <= 0 && c->state == CONTAINER_RUNNING && sysinfo(&si) == 0)
		limit = (int64_t)si.totalram * si.mem_unit;
	json_t *mem =
		c->state == CONTAINER_RUNNING
			? json_pack("{s:I, s:I, s:o, s:I}", "usage", (json_int_t)cur->cg.mem_usage,
				    "max_usage", (json_int_t)cur->cg.mem_max_usage, "stats",
				    cur->cg.mem_stat ? json_incref(cur->cg.mem_stat)
						     : json_object(),
				    "limit", (json_int_t)limit)
			: json_object();
	if (cur->cg.v2)
		json_object_del(mem, "max_usage");
	json_t *j = json_pack(
		"{s:s, s:s, s:{s:I, s:I}, s:{s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}, s:i, s:{},"
		" s:o, s:o, s:o, s:s, s:s}",
		"read", read, "preread", preread, "pids_stats", "current",
		(json_int_t)cur->cg.pids_current, "limit", (json_int_t)cur->cg.pids_limit,
		"blkio_stats", "io_service_bytes_recursive", "io_serviced_recursive",
		"io_queue_recursive", "io_service_time_recursive", "io_wait_time_recursive",
		"io_merged_recursive", "io_time_recursive", "sectors_recursive", "num_procs", 0,
		"storage_stats", "cpu_stats", cpu_json(cur), "precpu_stats", cpu_json(pre),
		"memory_stats", mem, "name", name, "id", c->id);
	if (j && cur->networks)
		json_object_set(j, "networks", cur->networks);
	return j;
}

struct stats_req {
	struct api_req *r;
	struct agent *agent;
	char id[65];
	bool stream;
	struct event *timer;
	struct stats_sample prev;
};

static void stats_req_free(struct stats_req *s)
{
	if (s->timer)
		event_free(s->timer);
	sample_done(&s->prev);
	free(s);
}

static void stats_cancel(struct api_req *r)
{
	struct stats_req *s = r->userdata;
	if (s)
		stats_req_free(s);
	api_req_free(r);
}

static void stats_tick(evutil_socket_t fd, short what, void *arg)
{
	struct stats_req *s = arg;
	struct api_req *r = s->r;
	struct container *c = container_get(s->agent, s->id);
	if (!c) {
		r->on_cancel = NULL;
		r->userdata = NULL;
		if (s->stream)
			api_stream_end(r);
		else
			api_reply_error(r, 404, "No such container: %s", s->id);
		stats_req_free(s);
		return;
	}
	struct stats_sample cur;
	sample_take(c, &cur);
	json_t *j = stats_json(c, &cur, &s->prev);
	if (!s->stream) {
		r->on_cancel = NULL;
		r->userdata = NULL;
		api_reply_json(r, 200, j);
		sample_done(&cur);
		stats_req_free(s);
		return;
	}
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (txt) {
		api_stream_chunk(r, txt, strlen(txt));
		api_stream_chunk(r, "\n", 1);
		free(txt);
	}
	sample_done(&s->prev);
	s->prev = cur;
	static const struct timeval sec = {1, 0};
	evtimer_add(s->timer, &sec);
}

/* GET /containers/{id}/stats: stream (default) sends one sample a second,
 * each with the one before as precpu_stats; stream=false answers one sample
 * with the one a second earlier (one-shot=true: at once, without it). */
void api_container_stats(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	bool stream = api_query_bool(r, "stream", true);
	bool one_shot = api_query_bool(r, "one-shot", false);
	if (one_shot && stream) {
		api_reply_error(r, 400, "cannot have stream=true and one-shot=true");
		return;
	}
	if (one_shot) {
		struct stats_sample cur, none = {0};
		sample_take(c, &cur);
		api_reply_json(r, 200, stats_json(c, &cur, &none));
		sample_done(&cur);
		return;
	}
	if (stream && !r->req) {
		api_reply_error(r, 400, "stats streams are for HTTP clients");
		return;
	}
	struct stats_req *s = calloc(1, sizeof(*s));
	if (!s || !(s->timer = evtimer_new(r->agent->base, stats_tick, s))) {
		free(s);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	s->r = r;
	s->agent = r->agent;
	s->stream = stream;
	snprintf(s->id, sizeof(s->id), "%s", c->id);
	r->userdata = s;
	r->on_cancel = stats_cancel;
	api_req_defer(r);
	if (stream) {
		api_stream_start(r, 200, "application/json");
		stats_tick(-1, 0, s);
		return;
	}
	sample_take(c, &s->prev);
	static const struct timeval sec = {1, 0};
	evtimer_add(s->timer, &sec);
}
