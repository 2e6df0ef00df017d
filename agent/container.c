// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/container.h"
#include "agent/cluster.h"
#include "agent/container-config.h"
#include "agent/container-internal.h"
#include "agent/events.h"
#include "agent/executor.h"
#include "agent/manager.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "agent/secrets.h"
#include "agent/stream.h"
#include "agent/volumes.h"
#include "agent/worker.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "overlay/bridge.h"
#include "runtime/cgroup.h"
#include "runtime/image.h"
#include "runtime/runtime.h"

static void container_exited(struct container *c, const struct rt_exit *ex, bool monitor_cleans);
static void container_free(struct container *c);
static void container_unlink_and_free(struct container *c);
void container_notify_waiters(struct container *c, bool removed);
bool container_publishes(struct container *c);

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- persistence ---- */

/* ---- table ---- */

struct container *container_find(struct agent *a, const char *ref, struct shoal_err *err)
{
	if (!ref || !*ref) {
		shoal_err_set_status(err, 404, ENOENT, "No such container: (empty name)");
		return NULL;
	}
	const char *name = ref[0] == '/' ? ref + 1 : ref;
	struct container *exact = container_index_by_id(a, ref) ?: container_index_by_name(a, name);
	if (exact)
		return exact;
	struct container *match = NULL;
	size_t len = strlen(ref);
	for (struct container *c = a->containers; c; c = c->next)
		if (strncmp(c->id, ref, len) == 0) {
			if (match) {
				shoal_err_set_status(
					err, 400, EINVAL,
					"multiple containers match the id prefix %s; use more characters",
					ref);
				return NULL;
			}
			match = c;
		}
	if (!match)
		shoal_err_set_status(err, 404, ENOENT, "No such container: %s", ref);
	return match;
}

bool container_uses_image(struct agent *a, const char *image_id, struct container **ret)
{
	for (struct container *c = a->containers; c; c = c->next)
		if (c->image_id && strcmp(c->image_id, image_id) == 0) {
			if (ret)
				*ret = c;
			return true;
		}
	return false;
}

static bool name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len < 1 || len > 127 || !isalnum((unsigned char)n[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("_.-", n[i]))
			return false;
	return true;
}

static void generate_name(struct agent *a, char *out, size_t len)
{
	static const char *const adj[] = {"brave",  "calm",   "eager", "fond",	"gentle",
					  "happy",  "jolly",  "keen",  "lucid", "merry",
					  "nimble", "proud",  "quiet", "rapid", "sharp",
					  "swift",  "tender", "vivid", "wise",	"zealous"};
	static const char *const noun[] = {"anchovy",  "barracuda", "carp",    "dory",	"eel",
					   "flounder", "grouper",   "herring", "ide",	"jack",
					   "koi",      "ling",	    "marlin",  "perch", "roach",
					   "salmon",   "tuna",	    "wrasse",  "pike",	"sprat"};
	for (unsigned tries = 0;; tries++) {
		unsigned r1 = (unsigned)random(), r2 = (unsigned)random();
		if (tries < 32)
			snprintf(out, len, "%s_%s", adj[r1 % ARRAY_SIZE(adj)],
				 noun[r2 % ARRAY_SIZE(noun)]);
		else
			snprintf(out, len, "%s_%s%u", adj[r1 % ARRAY_SIZE(adj)],
				 noun[r2 % ARRAY_SIZE(noun)], tries);
		bool taken = false;
		for (struct container *c = a->containers; c; c = c->next)
			if (strcmp(c->name, out) == 0)
				taken = true;
		if (!taken)
			return;
	}
}

static void container_paths(struct agent *a, struct container *c)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s/containers/%s", a->cfg.data_dir, c->id);
	c->bundle_dir = strdup(buf);
	snprintf(buf, sizeof(buf), "%s/containers/%s", a->cfg.run_dir, c->id);
	c->run_dir = strdup(buf);
	snprintf(buf, sizeof(buf), "%s/containers/%s/%s-json.log", a->cfg.data_dir, c->id, c->id);
	c->log_path = strdup(buf);
}

static struct container *container_new(struct agent *a)
{
	struct container *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->agent = a;
	c->spawn_fd = -1;
	c->prev_monitor_fd = -1;
	return c;
}

static int container_link(struct agent *a, struct container *c)
{
	if (container_index_add(a, c) < 0)
		return -ENOMEM;
	c->next = a->containers;
	a->containers = c;
	a->n_containers++;
	return 0;
}

static int container_load_one(struct agent *a, const char *id, struct shoal_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/containers/%s/container.json", a->cfg.data_dir, id);
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	if (!j)
		return shoal_err_set(err, EBADMSG, "reading %s: %s", path, jerr.text);
	struct container *c = container_new(a);
	if (!c) {
		json_decref(j);
		return -ENOMEM;
	}
	json_t *st = json_object_get(j, "State"), *net = json_object_get(j, "Network");
	snprintf(c->id, sizeof(c->id), "%s", json_string_value(json_object_get(j, "Id")) ?: id);
	snprintf(c->name, sizeof(c->name), "%s",
		 json_string_value(json_object_get(j, "Name")) ?: id);
	c->created_ns = json_integer_value(json_object_get(j, "Created"));
	c->config = json_incref(json_object_get(j, "Config"));
	c->host_config = json_incref(json_object_get(j, "HostConfig"));
	c->mounts = json_incref(json_object_get(j, "MountPoints"));
	if (!json_is_array(c->mounts)) {
		json_decref(c->mounts);
		c->mounts = json_array();
	}
	if (!c->config)
		c->config = json_object();
	if (!c->host_config)
		c->host_config = json_object();
	c->image_ref = strdup(json_string_value(json_object_get(j, "ImageRef")) ?: "");
	c->image_id = strdup(json_string_value(json_object_get(j, "Image")) ?: "");
	c->layer_dirs = json_to_strv(json_object_get(j, "LayerDirs"));
	c->state = container_state_from_name(json_string_value(json_object_get(st, "Status"))
						     ?: "created");
	c->pid = (pid_t)json_integer_value(json_object_get(st, "Pid"));
	c->monitor_pid = (pid_t)json_integer_value(json_object_get(st, "MonitorPid"));
	c->exit_code = (int)json_integer_value(json_object_get(st, "ExitCode"));
	c->oom_killed = json_is_true(json_object_get(st, "OOMKilled"));
	c->started_ns = json_integer_value(json_object_get(st, "StartedAt"));
	c->finished_ns = json_integer_value(json_object_get(st, "FinishedAt"));
	c->restart_count = (int)json_integer_value(json_object_get(st, "RestartCount"));
	c->restarting = json_is_true(json_object_get(st, "Restarting"));
	c->manual_stop = json_is_true(json_object_get(j, "HasBeenManuallyStopped"));
	c->paused = json_is_true(json_object_get(st, "Paused"));
	snprintf(c->error, sizeof(c->error), "%s",
		 json_string_value(json_object_get(st, "Error")) ?: "");
	snprintf(c->net_mode, sizeof(c->net_mode), "%s",
		 json_string_value(json_object_get(net, "Mode")) ?: "none");
	c->net_attached = json_is_true(json_object_get(net, "Attached"));
	inet_pton(AF_INET, json_string_value(json_object_get(net, "IPAddress")) ?: "0.0.0.0",
		  &c->ip);
	inet_pton(AF_INET, json_string_value(json_object_get(net, "Gateway")) ?: "0.0.0.0",
		  &c->gateway);
	c->prefixlen = (uint8_t)json_integer_value(json_object_get(net, "PrefixLen"));
	container_nets_load(c, json_object_get(net, "More"));
	snprintf(c->netns_path, sizeof(c->netns_path), "%s",
		 json_string_value(json_object_get(net, "SandboxKey")) ?: "");
	snprintf(c->host_ifname, sizeof(c->host_ifname), "%s",
		 json_string_value(json_object_get(net, "HostIfname")) ?: "");
	/* as the bridge derives it (02:42 and the address, as Docker) */
	c->mac[0] = 0x02;
	c->mac[1] = 0x42;
	memcpy(c->mac + 2, &c->ip.s_addr, 4);
	json_decref(j);
	container_paths(a, c);
	if (!c->bundle_dir || !c->run_dir || !c->log_path || !c->image_ref || !c->image_id ||
	    !c->layer_dirs) {
		container_free(c);
		return -ENOMEM;
	}
	if (container_link(a, c) < 0) {
		container_free(c);
		return -ENOMEM;
	}
	return 0;
}

static void persist_cb(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	int r = container_persist(c);
	if (r < 0)
		log_warn("container %.12s: writing its record: %s", c->id, strerror(-r));
}

/*
 * Writes the record on the loop's next turn, after the reply just queued has
 * gone out: the client does not wait for the disk. Only for changes a restart
 * recovers without the record: a start (the monitor answers on its control
 * socket, see readopt_unrecorded()) and an exit (exit.json is written before
 * anyone hears of it).
 */
void container_persist_soon(struct container *c)
{
	static const struct timeval now = {0, 0};
	if (!c->persist_ev)
		c->persist_ev = evtimer_new(c->agent->base, persist_cb, c);
	if (!c->persist_ev || evtimer_add(c->persist_ev, &now) < 0)
		persist_cb(-1, 0, c);
}

/* ---- the monitor's wait connection: how the agent learns of an exit ---- */

static void wait_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct container *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (!line)
		return;
	struct rt_exit ex = {.exit_code = 255};
	json_t *j = json_loads(line, 0, NULL);
	free(line);
	if (j) {
		ex.exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
		ex.oom_killed = json_is_true(json_object_get(j, "oom_killed"));
		ex.finished_at_ns = json_integer_value(json_object_get(j, "finished_at"));
		snprintf(ex.error, sizeof(ex.error), "%s",
			 json_string_value(json_object_get(j, "error")) ?: "");
		json_decref(j);
	}
	container_exited(c, &ex, true);
}

void container_exit_from_disk(struct container *c)
{
	struct rt_exit ex;
	if (rt_exit_read(c->bundle_dir, &ex) < 0) {
		memset(&ex, 0, sizeof(ex));
		ex.exit_code = 255;
		ex.finished_at_ns = now_ns();
		snprintf(ex.error, sizeof(ex.error),
			 "the container's monitor exited without recording an exit status");
	}
	container_exited(c, &ex, false);
}

static void wait_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct container *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		container_exit_from_disk(c);
}

int container_watch_exit(struct container *c, struct shoal_err *err)
{
	json_t *req = json_pack("{s:s}", "op", "wait");
	int fd = rt_ctl_connect(c->run_dir, req, err);
	json_decref(req);
	if (fd < 0)
		return fd;
	fd_set_nonblock(fd, true);
	c->wait_bev = bufferevent_socket_new(c->agent->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->wait_bev) {
		close(fd);
		return shoal_err_set(err, ENOMEM, "bufferevent_socket_new");
	}
	bufferevent_setcb(c->wait_bev, wait_conn_read_cb, NULL, wait_conn_event_cb, c);
	bufferevent_enable(c->wait_bev, EV_READ);
	return 0;
}

void container_network_release(struct container *c)
{
	struct agent *a = c->agent;
	if (!c->net_attached)
		return;
	struct shoal_err err = {0};
	/* the further networks' veths go with the namespace */
	container_nets_release(c);
	if (overlay_net_mode(c->net_mode))
		overlay_ep_release(a, c->net_mode, c->id);
	else if (a->bridge && bridge_net_detach(a->bridge, c->id, c->ip, &err) < 0)
		log_warn("container %.12s: releasing its network endpoint: %s", c->id, err.msg);
	c->net_attached = false;
}

/* ---- re-adoption after an agent restart ---- */

/* How long a restarted agent waits for the monitor of a start it was killed
 * in the middle of (recorded "starting", no monitor answering yet, no exit
 * recorded). A monitor reports within milliseconds, a few seconds when
 * hundreds start at once; past this the start is rolled back. */
#define CONTAINER_RESUME_WAIT_MS 10000
/* and how often it looks meanwhile */
#define CONTAINER_RESUME_POLL_MS 100

/* exit.json newer than the record: the run the record speaks of has ended
 * (an older one is from an earlier run). */
static bool exited_since_record(struct container *c)
{
	char p[4096];
	struct stat ex, rec;
	snprintf(p, sizeof(p), "%s/exit.json", c->bundle_dir);
	if (stat(p, &ex) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/container.json", c->bundle_dir);
	if (stat(p, &rec) < 0)
		return true;
	return ex.st_mtim.tv_sec > rec.st_mtim.tv_sec || (ex.st_mtim.tv_sec == rec.st_mtim.tv_sec &&
							  ex.st_mtim.tv_nsec > rec.st_mtim.tv_nsec);
}

static void resume_stop(struct container *c)
{
	if (c->resume_timer) {
		event_free(c->resume_timer);
		c->resume_timer = NULL;
	}
	if (c->resume_bev) {
		bufferevent_free(c->resume_bev);
		c->resume_bev = NULL;
	}
}

/* Its monitor runs it: from here on it is a running container like any other. */
static void resume_adopt(struct container *c, pid_t pid, int64_t started_ns)
{
	struct shoal_err e = {0};
	resume_stop(c);
	if (container_watch_exit(c, &e) < 0) {
		container_exit_from_disk(c);
		return;
	}
	char p[4096];
	int64_t mp = 0;
	snprintf(p, sizeof(p), "%s/monitor.pid", c->run_dir);
	if (read_int64_file(p, &mp) == 0)
		c->monitor_pid = (pid_t)mp;
	c->state = CONTAINER_RUNNING;
	c->pid = pid;
	c->started_ns = started_ns ? started_ns : now_ns();
	c->error[0] = '\0';
	c->exit_code = 0;
	log_info("container %.12s (%s): the start the agent was stopped in finished: re-adopted, "
		 "pid %d",
		 c->id, c->name, (int)pid);
	container_persist_soon(c);
	/* (a task's container: the executor moves its task on at the next pass) */
	manager_kick(c->agent);
	if (c->remove_on_exit)
		container_signal(c, SIGKILL, NULL);
}

/* Its monitor never came: undo what the start made, as a failed start would. */
static void resume_rollback(struct container *c)
{
	struct agent *a = c->agent;
	resume_stop(c);
	log_info("container %.12s (%s): the start the agent was stopped in never finished: "
		 "rolled back",
		 c->id, c->name);
	/* anything that did get into its cgroup goes too */
	rt_cleanup(c->run_dir, a->cfg.cgroup_parent, c->id, NULL);
	container_network_release(c);
	c->state = CONTAINER_CREATED;
	c->pid = 0;
	c->monitor_pid = 0;
	c->exit_code = 128;
	snprintf(c->error, sizeof(c->error),
		 "the agent was stopped while starting the container, which never ran; start it "
		 "again");
	int r = container_persist(c);
	if (r < 0)
		log_warn("container %.12s: writing its record: %s", c->id, strerror(-r));
	container_notify_waiters(c, false);
	executor_container_exited(a, c);
	manager_kick(a);
	bool auto_remove = false;
	json_get_bool(c->host_config, "AutoRemove", &auto_remove, NULL);
	if (c->remove_on_exit || auto_remove) {
		struct api_req *rr = c->remove_req;
		c->remove_req = NULL;
		container_remove(c, true, rr);
	}
}

static void resume_state_read_cb(struct bufferevent *bev, void *arg)
{
	struct container *c = arg;
	char *line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF);
	if (!line)
		return;
	json_t *j = json_loads(line, 0, NULL);
	free(line);
	bool running = json_is_true(json_object_get(j, "running"));
	pid_t pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	int64_t started = json_integer_value(json_object_get(j, "started_at"));
	json_decref(j);
	bufferevent_free(c->resume_bev);
	c->resume_bev = NULL;
	if (running && pid > 0)
		resume_adopt(c, pid, started);
	/* else it has just exited: exit.json says so at the next look */
}

static void resume_state_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct container *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(c->resume_bev);
		c->resume_bev = NULL;
	}
}

/* Asks the monitor, when there is one listening, whether it runs the
 * container; the answer comes back on the loop. */
static void resume_ask(struct container *c)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/ctl.sock", c->run_dir);
	if (c->resume_bev || access(p, F_OK) < 0)
		return;
	json_t *req = json_pack("{s:s}", "op", "state");
	int fd = rt_ctl_connect(c->run_dir, req, NULL);
	json_decref(req);
	if (fd < 0)
		return;
	fd_set_nonblock(fd, true);
	c->resume_bev = bufferevent_socket_new(c->agent->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->resume_bev) {
		close(fd);
		return;
	}
	bufferevent_setcb(c->resume_bev, resume_state_read_cb, NULL, resume_state_event_cb, c);
	bufferevent_enable(c->resume_bev, EV_READ);
}

/*
 * Whether the start certainly never reached a monitor, so that there is
 * nothing to wait for. Only said of a bridged container: its namespace is made
 * before the monitor is spawned, and a monitor's first step is the v2 cgroup,
 * before it opens that namespace. Without the namespace there was no monitor;
 * without the cgroup a monitor still on its way would fail to open the
 * namespace the rollback removes, and leave nothing behind.
 */
static bool never_spawned(struct container *c)
{
	if (!c->net_attached || !c->netns_path[0])
		return false;
	if (access(c->netns_path, F_OK) < 0 && errno == ENOENT)
		return true;
	if (!c->agent->cgroup_v2[0])
		return false;
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", c->agent->cgroup_v2, c->id);
	return access(p, F_OK) < 0 && errno == ENOENT;
}

static void resume_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	if (c->state != CONTAINER_STARTING) {
		resume_stop(c);
		return;
	}
	if (exited_since_record(c)) {
		resume_stop(c);
		log_info("container %.12s (%s): started and exited while the agent was away", c->id,
			 c->name);
		container_exit_from_disk(c);
		return;
	}
	if (never_spawned(c) || mono_ns() >= c->resume_deadline_ns) {
		resume_rollback(c);
		return;
	}
	resume_ask(c);
	static const struct timeval tv = {0, CONTAINER_RESUME_POLL_MS * 1000};
	evtimer_add(c->resume_timer, &tv);
}

/* A start the agent was killed in: wait for its monitor, or roll it back. */
static void resume_begin(struct container *c)
{
	c->state = CONTAINER_STARTING;
	c->resume_deadline_ns = mono_ns() + (int64_t)CONTAINER_RESUME_WAIT_MS * 1000000;
	c->resume_timer = evtimer_new(c->agent->base, resume_poll_cb, c);
	if (!c->resume_timer) {
		resume_rollback(c);
		return;
	}
	resume_poll_cb(-1, 0, c);
}

/* A removal the agent was killed in: finish it. */
static void finish_removal(struct container *c)
{
	struct agent *a = c->agent;
	struct shoal_err err = {0};
	container_network_release(c);
	rt_cleanup(c->run_dir, a->cfg.cgroup_parent, c->id, NULL);
	if (rt_remove(c->bundle_dir, &err) < 0) {
		log_warn("container %.12s: removing %s: %s", c->id, c->bundle_dir, err.msg);
		c->state = CONTAINER_EXITED;
		container_persist(c);
		return;
	}
	log_info("container %.12s (%s): removed (the agent was stopped while removing it)", c->id,
		 c->name);
	container_unlink_and_free(c);
}

static bool is_container_id(const char *s)
{
	size_t n = strlen(s);
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

static bool id_known(char **ids, size_t n, const char *id)
{
	return bsearch(&id, ids, n, sizeof(*ids), cmp_strp) != NULL;
}

/*
 * What an agent killed at the wrong moment can leave with no container to
 * own it, found by this agent's prefix and under its own roots only: network
 * namespaces under <run-dir>/netns and <prefix>v* veths of no container that
 * holds an address (bridge_net_sweep(); keep_net),
 * run directories under <run-dir>/containers and container cgroups under the
 * cgroup parent (64-hex names; the v2 tree lists them, since a container's v2
 * cgroup is made first and removed last) of no id in ids (the directories
 * under <data-dir>/containers). Nothing of an id whose record did not load is
 * swept.
 */
static void sweep_orphans(struct agent *a, char **ids, size_t n, char **keep_net)
{
	struct shoal_err err = {0};
	if (a->bridge) {
		int r = bridge_net_sweep(a->bridge, (const char *const *)keep_net,
					 strv_length(keep_net), &err);
		if (r < 0)
			log_warn("sweeping network endpoints left by a crash: %s", err.msg);
		else if (r > 0)
			log_info("removed %d network namespaces and veths no container owns", r);
	}
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/containers", a->cfg.run_dir);
	const char *dirs[] = {dir, a->cgroup_v2};
	int swept = 0;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (!dirs[i][0])
			continue;
		_cleanup_closedir_ DIR *d = opendir(dirs[i]);
		for (struct dirent *de; d && (de = readdir(d));) {
			if (!is_container_id(de->d_name) || id_known(ids, n, de->d_name))
				continue;
			char run[4096];
			snprintf(run, sizeof(run), "%s/%s", dir, de->d_name);
			err = (struct shoal_err){0};
			if (rt_cleanup(run, a->cfg.cgroup_parent, de->d_name, &err) < 0)
				log_warn("removing what container %.12s left: %s", de->d_name,
					 err.msg);
			else
				swept++;
		}
	}
	if (swept)
		log_info("removed the cgroups and run files of %d containers no record owns",
			 swept);
}

int container_load_all(struct agent *a, struct shoal_err *err)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/containers", a->cfg.data_dir);
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d && errno != ENOENT)
		return shoal_err_errno(err, errno, "opening %s", dir);
	_cleanup_strv_ char **ids = calloc(1, sizeof(char *)),
			    **keep_net = calloc(1, sizeof(char *));
	if (!ids || !keep_net)
		return shoal_err_set(err, ENOMEM, "out of memory");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char rec[4096];
		snprintf(rec, sizeof(rec), "%s/%s/container.json", dir, de->d_name);
		if (access(rec, F_OK) < 0 && errno == ENOENT) {
			/* a create the agent was killed in, before its record */
			snprintf(rec, sizeof(rec), "%s/%s", dir, de->d_name);
			log_info("removing %s: a container directory without a record", rec);
			rm_rf(rec);
			continue;
		}
		if (strv_push(&ids, de->d_name) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		struct shoal_err e = {0};
		int r = container_load_one(a, de->d_name, &e);
		if (r < 0) {
			log_warn("skipping container %s: %s", de->d_name, e.msg);
			/* whatever it may use stays, as if it had loaded */
			if (strv_push(&keep_net, de->d_name) < 0)
				return shoal_err_set(err, ENOMEM, "out of memory");
		}
	}
	size_t n_ids = strv_length(ids);
	qsort(ids, n_ids, sizeof(*ids), cmp_strp);
	/* Addresses first, all of them, before any release or rollback. */
	for (struct container *c = a->containers; c; c = c->next) {
		struct shoal_err e = {0};
		if (c->net_attached && a->bridge && !overlay_net_mode(c->net_mode) &&
		    bridge_net_reserve(a->bridge, c->ip, &e) < 0)
			log_warn("container %.12s: its recorded address: %s", c->id, e.msg);
	}
	/* Re-adopt: a running container's monitor answers on its control socket;
	 * one that ended while we were away left exit.json behind; a start or a
	 * removal we were stopped in is finished or undone. */
	for (struct container *c = a->containers, *next; c; c = next) {
		next = c->next;
		if (c->state == CONTAINER_REMOVING) {
			finish_removal(c);
			continue;
		}
		if (c->state == CONTAINER_CREATED) {
			/* (a record written before starts were recorded) */
			char p[4096];
			snprintf(p, sizeof(p), "%s/ctl.sock", c->run_dir);
			if (access(p, F_OK) == 0 || exited_since_record(c))
				c->state = CONTAINER_STARTING;
		}
		if (c->state == CONTAINER_STARTING) {
			resume_begin(c);
			continue;
		}
		if (c->state == CONTAINER_RUNNING) {
			struct shoal_err e = {0};
			if (container_watch_exit(c, &e) == 0) {
				log_info("container %.12s (%s): re-adopted, pid %d", c->id, c->name,
					 (int)c->pid);
			} else {
				log_info("container %.12s (%s): exited while the agent was away",
					 c->id, c->name);
				container_exit_from_disk(c);
			}
			continue;
		}
		/* created or exited with an endpoint: the exit's release was not recorded */
		if (c->net_attached) {
			container_network_release(c);
			container_persist(c);
		}
	}
	/* restart policies: what the agent starts with it */
	for (struct container *c = a->containers; c; c = c->next)
		container_restart_at_load(c);
	for (struct container *c = a->containers; c; c = c->next) {
		if (c->net_attached && strv_push(&keep_net, c->id) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		/* a further network's veth is named from the id and the network */
		for (size_t i = 0; i < c->n_more_nets; i++) {
			char key[2 * CONTAINER_NET_ID_MAX + 66];
			snprintf(key, sizeof(key), "%s.%s", c->id, c->more_nets[i].net);
			if (c->more_nets[i].attached && strv_push(&keep_net, key) < 0)
				return shoal_err_set(err, ENOMEM, "out of memory");
		}
	}
	sweep_orphans(a, ids, n_ids, keep_net);
	return 0;
}

/* ---- create ---- */

/* A container with published ports: its start and exit change the data plane
 * (task containers reach the manager through their task records instead). */
bool container_publishes(struct container *c)
{
	return json_object_size(json_object_get(c->host_config, "PortBindings")) > 0;
}

int container_create(struct agent *a, const char *name, json_t *body, struct container **ret,
		     json_t **ret_warnings, struct shoal_err *err)
{
	const char *image = NULL, *s;
	int r;
	if (a->n_containers >= AGENT_MAX_CONTAINERS)
		return shoal_err_set_status(
			err, 409, ENOSPC,
			"this node already has %u containers, the limit; remove some first",
			AGENT_MAX_CONTAINERS);
	if ((r = container_config_check(body, err)) < 0)
		return r;
	if ((r = publish_bindings_check(
		     a, json_object_get(json_object_get(body, "HostConfig"), "PortBindings"),
		     err)) < 0)
		return r;
	json_get_string(body, "Image", &image, NULL);
	_cleanup_strv_ char **cmd = NULL, **entrypoint = NULL, **env = NULL;
	bool has_cmd = json_get_strv(body, "Cmd", true, &cmd, NULL) == 0;
	bool has_ep = json_get_strv(body, "Entrypoint", true, &entrypoint, NULL) == 0;
	json_get_strv(body, "Env", false, &env, NULL);
	json_t *hc = NULL;
	json_get_object(body, "HostConfig", &hc, NULL);

	char cname[128];
	if (name && *name) {
		const char *n = name[0] == '/' ? name + 1 : name;
		if (!name_valid(n))
			return shoal_err_set(
				err, EINVAL,
				"Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
				n);
		for (struct container *c = a->containers; c; c = c->next)
			if (strcmp(c->name, n) == 0)
				return shoal_err_set_status(
					err, 409, EEXIST,
					"Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.",
					n, c->id);
		snprintf(cname, sizeof(cname), "%s", n);
	} else {
		generate_name(a, cname, sizeof(cname));
	}

	struct image_info *info = NULL;
	if ((r = image_store_resolve(a->images, image, &info, err)) < 0) {
		if (r == -ENOENT)
			err->status = 404;
		return r;
	}
	struct container *c = container_new(a);
	if (!c) {
		image_info_free(info);
		return -ENOMEM;
	}
	if ((r = random_hex_id(c->id)) < 0) {
		image_info_free(info);
		container_free(c);
		return shoal_err_errno(err, -r, "generating a container id");
	}
	snprintf(c->name, sizeof(c->name), "%s", cname);
	c->created_ns = now_ns();
	c->image_ref = strdup(image);
	c->image_id = strdup(info->id);
	c->layer_dirs = strv_copy(info->layer_dirs);
	c->config = json_deep_copy(body);
	json_object_del(c->config, "HostConfig");
	json_object_del(c->config, "NetworkingConfig");
	c->host_config = hc ? json_deep_copy(hc) : json_object();
	/* Docker's inspect names the policy even when none was asked for */
	json_t *rp = json_object_get(c->host_config, "RestartPolicy");
	if (c->host_config &&
	    (!json_is_object(rp) || !json_string_length(json_object_get(rp, "Name"))))
		json_object_set_new(c->host_config, "RestartPolicy",
				    json_pack("{s:s, s:i}", "Name", "no", "MaximumRetryCount", 0));

	/* Resolve what runs now, as Docker does at create: an Entrypoint given here
	 * drops the image's Cmd. */
	json_t *icfg = info->config;
	_cleanup_strv_ char **img_ep = NULL, **img_cmd = NULL, **img_env = NULL, **merged = NULL;
	json_get_strv(icfg, "Entrypoint", true, &img_ep, NULL);
	json_get_strv(icfg, "Cmd", true, &img_cmd, NULL);
	json_get_strv(icfg, "Env", false, &img_env, NULL);
	char **use_ep = has_ep ? entrypoint : img_ep;
	char **use_cmd = has_cmd ? cmd : (has_ep ? NULL : img_cmd);
	json_object_set_new(c->config, "Entrypoint", strv_to_json(use_ep));
	json_object_set_new(c->config, "Cmd", strv_to_json(use_cmd));
	if (strv_length(use_ep) + strv_length(use_cmd) == 0) {
		image_info_free(info);
		container_free(c);
		return shoal_err_set(
			err, EINVAL,
			"no command specified: the image has no Cmd or Entrypoint; give one after the image name");
	}
	if (container_env_merge(img_env, env, &merged) < 0) {
		image_info_free(info);
		container_free(c);
		return -ENOMEM;
	}
	json_object_set_new(c->config, "Env", strv_to_json(merged));
	if (json_get_string(c->config, "WorkingDir", &s, NULL) < 0 || !*s) {
		const char *iw = NULL;
		json_get_string(icfg, "WorkingDir", &iw, NULL);
		json_object_set_new(c->config, "WorkingDir", json_string(iw ? iw : ""));
	}
	if (json_get_string(c->config, "User", &s, NULL) < 0 || !*s) {
		const char *iu = NULL;
		json_get_string(icfg, "User", &iu, NULL);
		json_object_set_new(c->config, "User", json_string(iu ? iu : ""));
	}
	if (json_get_string(c->config, "Hostname", &s, NULL) < 0 || !*s) {
		char hn[13];
		snprintf(hn, sizeof(hn), "%.12s", c->id);
		json_object_set_new(c->config, "Hostname", json_string(hn));
	}
	json_object_set_new(c->config, "Image", json_string(image));
	const char *nm = NULL;
	json_get_string(c->host_config, "NetworkMode", &nm, NULL);
	snprintf(c->net_mode, sizeof(c->net_mode), "%s",
		 (!nm || !*nm || strcmp(nm, "default") == 0) ? "bridge" : nm);
	image_info_free(info);
	/* a service's task joins any overlay network, a container only an
	 * attachable one (a task label of the user's own is not a task) */
	bool task = executor_task_creating(
		a, json_string_value(json_object_get(json_object_get(c->config, "Labels"),
						     "com.docker.swarm.task.id")));
	/* an overlay network is held by its id: a later network of the same
	 * name is another network */
	if (overlay_net_mode(c->net_mode) &&
	    (r = overlay_network_resolve(a, nm, task, c->net_mode, sizeof(c->net_mode), err)) < 0) {
		container_free(c);
		return r;
	}
	if ((r = container_nets_from_create(c, body, task, err)) < 0) {
		container_free(c);
		return r;
	}

	container_paths(a, c);
	if (!c->bundle_dir || !c->run_dir || !c->log_path || !c->image_ref || !c->image_id ||
	    !c->layer_dirs || !c->config) {
		container_free(c);
		return -ENOMEM;
	}
	/* its volumes made (or found), its bind sources checked */
	if ((r = volumes_resolve(a, body, &c->mounts, err)) < 0) {
		container_free(c);
		return r;
	}
	if ((r = mkdir_p(c->bundle_dir, 0700)) < 0 || (r = container_persist(c)) < 0) {
		rm_rf(c->bundle_dir);
		json_t *anon = volumes_anonymous(c->mounts);
		container_free(c);
		volumes_remove_names(a, anon);
		json_decref(anon);
		return shoal_err_errno(err, -r, "creating the container's directory");
	}
	if (container_link(a, c) < 0) {
		rm_rf(c->bundle_dir);
		container_free(c);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	container_bundle_soon(c);
	events_container(c, "create", NULL, NULL);
	if (ret_warnings)
		*ret_warnings = json_array();
	*ret = c;
	return 0;
}

/* ---- signals, stop, wait ---- */

int container_signal(struct container *c, int sig, struct shoal_err *err)
{
	if (c->state != CONTAINER_RUNNING)
		return shoal_err_set_status(err, 409, EINVAL, "Container %s is not running", c->id);
	/* a frozen process acts on no signal: thaw it first (stop, kill, rm -f) */
	int pr;
	if (c->paused && (pr = container_pause(c, false, err)) < 0)
		return pr;
	json_t *req = json_pack("{s:s, s:i}", "op", "kill", "signal", sig);
	_cleanup_close_ int fd = rt_ctl_connect(c->run_dir, req, err);
	json_decref(req);
	if (fd < 0)
		return fd;
	/* The monitor answers at once; bound the wait anyway. */
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char buf[512];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0) {
		char sn[16];
		snprintf(sn, sizeof(sn), "%d", sig);
		events_container(c, "kill", "signal", sn);
		return 0; /* it exited as we asked: the wait connection reports it */
	}
	buf[n] = '\0';
	json_t *j = json_loads(buf, 0, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));
	int r = 0;
	if (e)
		r = shoal_err_set(err, EIO, "sending signal %d: %s", sig, e);
	json_decref(j);
	if (r == 0) {
		char sn[16];
		snprintf(sn, sizeof(sn), "%d", sig);
		events_container(c, "kill", "signal", sn);
	}
	return r;
}

static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	log_info("container %.12s (%s): did not stop in time, killing it", c->id, c->name);
	container_signal(c, SIGKILL, NULL);
}

static void stop_req_cancel(struct api_req *r)
{
	struct container *c = r->userdata;
	for (size_t i = 0; c && i < c->n_stop_reqs; i++)
		if (c->stop_reqs[i] == r)
			c->stop_reqs[i] = NULL;
	api_req_free(r);
}

void container_stop(struct container *c, int64_t timeout_s, struct api_req *r)
{
	struct shoal_err err = {0};
	if (container_restart_stop(c, 0)) {
		events_container(c, "stop", NULL, NULL);
		api_reply_empty(r, 204);
		return;
	}
	if (c->state != CONTAINER_RUNNING) {
		api_reply_empty(r, 304);
		return;
	}
	struct api_req **n = realloc(c->stop_reqs, (c->n_stop_reqs + 1) * sizeof(*n));
	if (!n) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	c->stop_reqs = n;
	c->stop_reqs[c->n_stop_reqs++] = r;
	r->userdata = c;
	r->on_cancel = stop_req_cancel;
	api_req_defer(r);
	int sig = SIGTERM;
	const char *ss = NULL;
	if (json_get_string(c->config, "StopSignal", &ss, NULL) == 0 && *ss)
		parse_signal(ss, &sig);
	if (timeout_s < 0)
		sig = SIGKILL, timeout_s = 0;
	if (container_signal(c, timeout_s == 0 ? SIGKILL : sig, &err) < 0)
		log_warn("container %.12s: stop: %s", c->id, err.msg);
	if (timeout_s > 0 && !c->stop_timer) {
		struct timeval tv = {.tv_sec = timeout_s};
		c->stop_timer = evtimer_new(c->agent->base, stop_timer_cb, c);
		evtimer_add(c->stop_timer, &tv);
	}
}

static json_t *wait_body(struct container *c)
{
	if (c->error[0] && c->state != CONTAINER_RUNNING)
		return json_pack("{s:i, s:{s:s}}", "StatusCode", c->exit_code, "Error", "Message",
				 c->error);
	return json_pack("{s:i, s:n}", "StatusCode", c->exit_code, "Error");
}

static void waiter_cancel(struct api_req *r)
{
	struct waiter *w = r->userdata;
	if (w)
		w->req = NULL;
	api_req_free(r);
}

void container_wait(struct container *c, enum wait_condition cond, struct api_req *r)
{
	/* (one waiting to restart counts as running, as in Docker) */
	if (cond == WAIT_NOT_RUNNING && c->state != CONTAINER_RUNNING &&
	    c->state != CONTAINER_STARTING && !c->restarting) {
		api_reply_json(r, 200, wait_body(c));
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	w->req = r;
	w->cond = cond;
	w->c = c;
	w->next = c->waiters;
	c->waiters = w;
	r->userdata = w;
	r->on_cancel = waiter_cancel;
	api_req_defer(r);
}

void container_waiters_notify(struct container *c)
{
	container_notify_waiters(c, false);
}

void container_notify_waiters(struct container *c, bool removed)
{
	struct waiter **pp = &c->waiters;
	while (*pp) {
		struct waiter *w = *pp;
		if (w->cond == WAIT_REMOVED && !removed) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (w->req) {
			w->req->userdata = NULL;
			w->req->on_cancel = NULL;
			api_reply_json(w->req, 200, wait_body(c));
		}
		free(w);
	}
}

static void container_exited(struct container *c, const struct rt_exit *ex, bool monitor_cleans)
{
	struct agent *a = c->agent;
	if (c->wait_bev) {
		bufferevent_free(c->wait_bev);
		c->wait_bev = NULL;
	}
	if (c->stop_timer) {
		event_free(c->stop_timer);
		c->stop_timer = NULL;
	}
	c->state = CONTAINER_EXITED;
	c->paused = false;
	c->exit_code = ex->exit_code;
	c->oom_killed = ex->oom_killed;
	c->finished_ns = ex->finished_at_ns ? ex->finished_at_ns : now_ns();
	snprintf(c->error, sizeof(c->error), "%s", ex->error);
	if (c->prev_monitor_fd >= 0)
		close(c->prev_monitor_fd);
	c->prev_monitor_fd = monitor_cleans && c->monitor_pid > 0
				     ? (int)syscall(SYS_pidfd_open, c->monitor_pid, 0)
				     : -1;
	c->pid = 0;
	c->monitor_pid = 0;
	log_info("container %.12s (%s): exited with %d%s", c->id, c->name, c->exit_code,
		 c->oom_killed ? " (OOM killed)" : "");
	log_debug("container %.12s: exit seen %lld us after the start request", c->id,
		  (long long)((mono_ns() - c->start_mono_ns) / 1000));
	container_network_release(c);
	/* A monitor that reported the exit removes the cgroups and run files
	 * itself, after telling us; one that vanished left them to us. */
	if (!monitor_cleans)
		rt_cleanup(c->run_dir, a->cfg.cgroup_parent, c->id, NULL);
	container_persist_soon(c);
	char code[16];
	snprintf(code, sizeof(code), "%d", c->exit_code);
	if (c->oom_killed)
		events_container(c, "oom", NULL, NULL);
	events_container(c, "die", "exitCode", code);
	events_container_run(c, false);
	if (c->n_stop_reqs)
		events_container(c, "stop", NULL, NULL);
	for (size_t i = 0; i < c->n_stop_reqs; i++)
		if (c->stop_reqs[i]) {
			c->stop_reqs[i]->on_cancel = NULL;
			api_reply_empty(c->stop_reqs[i], 204);
		}
	free(c->stop_reqs);
	c->stop_reqs = NULL;
	c->n_stop_reqs = 0;
	container_notify_waiters(c, false);
	executor_container_exited(a, c);
	if (container_publishes(c))
		manager_kick(a);
	container_restart_after_exit(c);
	bool auto_remove = false;
	json_get_bool(c->host_config, "AutoRemove", &auto_remove, NULL);
	if (c->remove_on_exit || auto_remove) {
		struct api_req *rr = c->remove_req;
		c->remove_req = NULL;
		container_remove(c, true, rr);
	}
}

/* ---- pause, rename ---- */

int container_pause(struct container *c, bool pause, struct shoal_err *err)
{
	if (c->state != CONTAINER_RUNNING)
		return shoal_err_set_status(err, 409, EINVAL, "Container %s is not running", c->id);
	if (c->paused == pause)
		return shoal_err_set_status(err, 409, EALREADY,
					    pause ? "Container %s is already paused"
						  : "Container %s is not paused",
					    c->id);
	struct rt_cgroup *cg = NULL;
	int r = rt_cgroup_open(c->agent->cfg.cgroup_parent, c->id, &cg, err);
	if (r < 0)
		return r;
	r = rt_cgroup_freeze(cg, pause, err);
	rt_cgroup_free(cg);
	if (r < 0)
		return r;
	c->paused = pause;
	r = container_persist(c);
	if (r < 0)
		log_warn("container %.12s: writing its record: %s", c->id, strerror(-r));
	events_container(c, pause ? "pause" : "unpause", NULL, NULL);
	return 0;
}

int container_rename(struct container *c, const char *name, struct shoal_err *err)
{
	struct agent *a = c->agent;
	const char *n = name && name[0] == '/' ? name + 1 : name;
	if (!n || !*n)
		return shoal_err_set_status(err, 400, EINVAL,
					    "Neither old nor new names may be empty");
	if (!name_valid(n))
		return shoal_err_set_status(
			err, 400, EINVAL,
			"Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
			n);
	if (strcmp(n, c->name) == 0)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"Renaming a container with the same name as its current "
			"name");
	struct container *o = container_index_by_name(a, n);
	if (o)
		return shoal_err_set_status(
			err, 409, EEXIST,
			"Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.",
			n, o->id);
	char old[sizeof(c->name) + 1]; /* Docker's oldName has the leading slash */
	snprintf(old, sizeof(old), "/%s", c->name);
	container_index_del(a, c);
	snprintf(c->name, sizeof(c->name), "%s", n);
	if (container_index_add(a, c) < 0) {
		snprintf(c->name, sizeof(c->name), "%s", old + 1);
		container_index_add(a, c);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	int r = container_persist(c);
	if (r < 0) {
		container_index_del(a, c);
		snprintf(c->name, sizeof(c->name), "%s", old + 1);
		container_index_add(a, c);
		return shoal_err_errno(err, -r, "recording the new name in %s/container.json",
				       c->bundle_dir);
	}
	events_container(c, "rename", "oldName", old);
	return 0;
}

/* ---- remove ---- */

static void remove_req_cancel(struct api_req *r)
{
	struct container *c = r->userdata;
	if (c && c->remove_req == r)
		c->remove_req = NULL;
	api_req_free(r);
}

void container_remove(struct container *c, bool force, struct api_req *r)
{
	struct agent *a = c->agent;
	if (c->restarting) {
		if (!force) {
			if (r)
				api_reply_error(
					r, 409,
					"You cannot remove a restarting container %s. Stop the container before attempting removal or force remove",
					c->id);
			return;
		}
		container_restart_cancel(c);
	}
	if (c->state == CONTAINER_RUNNING || c->state == CONTAINER_STARTING) {
		if (!force) {
			if (r)
				api_reply_error(
					r, 409,
					"You cannot remove a running container %s. Stop the container before attempting removal or force remove",
					c->id);
			return;
		}
		c->remove_on_exit = true;
		if (r) {
			if (c->remove_req) {
				api_reply_error(r, 409,
						"removal of container %s is already in progress",
						c->name);
				return;
			}
			c->remove_req = r;
			r->userdata = c;
			r->on_cancel = remove_req_cancel;
			api_req_defer(r);
		}
		if (c->state == CONTAINER_RUNNING)
			container_signal(c, SIGKILL, NULL);
		return;
	}
	if (c->state == CONTAINER_REMOVING) {
		if (r)
			api_reply_error(r, 409, "removal of container %s is already in progress",
					c->name);
		return;
	}
	c->state = CONTAINER_REMOVING;
	if (c->persist_ev)
		event_del(c->persist_ev);
	container_persist(c);
	stream_sess_abort_pending(c);
	container_network_release(c);
	struct shoal_err err = {0};
	rt_cleanup(c->run_dir, a->cfg.cgroup_parent, c->id, NULL);
	if (rt_remove(c->bundle_dir, &err) < 0) {
		log_warn("container %.12s: removing %s: %s", c->id, c->bundle_dir, err.msg);
		c->state = CONTAINER_EXITED;
		container_persist(c);
		if (r)
			api_reply_err(r, &err);
		return;
	}
	container_notify_waiters(c, true);
	secrets_container_removed(a, json_object_get(c->config, "Labels"));
	events_container(c, "destroy", NULL, NULL);
	if (r) {
		r->on_cancel = NULL;
		api_reply_empty(r, 204);
	}
	/* rm -v and --rm take the anonymous volumes along, once no container
	 * refers to them */
	bool auto_remove = false;
	json_get_bool(c->host_config, "AutoRemove", &auto_remove, NULL);
	json_t *anon = c->remove_volumes || auto_remove ? volumes_anonymous(c->mounts) : NULL;
	container_unlink_and_free(c);
	volumes_remove_names(a, anon);
	json_decref(anon);
}

static void container_free(struct container *c)
{
	if (!c)
		return;
	if (c->prev_monitor_fd >= 0)
		close(c->prev_monitor_fd);
	if (c->persist_ev)
		event_free(c->persist_ev);
	if (c->bundle_ev)
		event_free(c->bundle_ev);
	free(c->bundle_sig);
	if (c->spawn_ev)
		event_free(c->spawn_ev);
	resume_stop(c);
	if (c->wait_bev)
		bufferevent_free(c->wait_bev);
	if (c->stop_timer)
		event_free(c->stop_timer);
	if (c->restart_timer)
		event_free(c->restart_timer);
	for (struct waiter *w = c->waiters, *n; w; w = n) {
		n = w->next;
		if (w->req) {
			w->req->userdata = NULL;
			w->req->on_cancel = NULL;
			api_reply_error(w->req, 500, "the agent is shutting down");
		}
		free(w);
	}
	free(c->stop_reqs);
	json_decref(c->config);
	json_decref(c->host_config);
	json_decref(c->mounts);
	free(c->image_ref);
	free(c->image_id);
	strv_free(c->layer_dirs);
	free(c->bundle_dir);
	free(c->run_dir);
	free(c->log_path);
	free(c);
}

static void container_unlink_and_free(struct container *c)
{
	struct agent *a = c->agent;
	for (struct container **pp = &a->containers; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			a->n_containers--;
			container_index_del(a, c);
			break;
		}
	container_free(c);
}

void container_free_all(struct agent *a)
{
	while (a->containers) {
		struct container *c = a->containers;
		a->containers = c->next;
		container_free(c);
	}
	a->n_containers = 0;
	container_index_free(a);
}
