// SPDX-License-Identifier: Apache-2.0
/* A container's start: its network end, seccomp profile and bundle made,
 * the runtime's spawn beside the loop, and what the agent does when it
 * answers (agent/container.h's container_start()). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "agent/container-internal.h"
#include "agent/container.h"
#include "agent/events.h"
#include "agent/manager.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "agent/stream.h"
#include "agent/volumes.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "overlay/bridge.h"
#include "runtime/caps.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

static int seccomp_for(struct agent *a, struct container *c, char *path, size_t len,
		       bool *ret_unconfined, struct shoal_err *err)
{
	_cleanup_strv_ char **add = NULL, **drop = NULL, **opts = NULL;
	bool privileged = false;
	json_get_strv(c->host_config, "CapAdd", false, &add, NULL);
	json_get_strv(c->host_config, "CapDrop", false, &drop, NULL);
	json_get_strv(c->host_config, "SecurityOpt", false, &opts, NULL);
	json_get_bool(c->host_config, "Privileged", &privileged, NULL);
	*ret_unconfined = privileged;
	for (size_t i = 0; opts && opts[i]; i++)
		if (strstr(opts[i], "seccomp") && strstr(opts[i], "unconfined"))
			*ret_unconfined = true;
	if (*ret_unconfined)
		return 0;
	uint64_t caps;
	int r = rt_caps_compute((const char *const *)add, (const char *const *)drop, privileged,
				&caps, err);
	if (r < 0)
		return r;
	if (caps == rt_caps_default()) {
		snprintf(path, len, "%s", a->seccomp_default);
		return 0;
	}
	/* Docker's profile opens syscalls per capability: compile once per set. */
	snprintf(path, len, "%s/seccomp/caps-%016llx.bpf", a->cfg.data_dir,
		 (unsigned long long)caps);
	if (access(path, R_OK) == 0)
		return 0;
	return rt_seccomp_compile_caps(path, caps, err);
}

static void start_fail(struct container *c, struct shoal_err *err)
{
	log_info("container %.12s (%s): start failed: %s", c->id, c->name, err->msg);
	container_network_release(c);
	c->state = CONTAINER_CREATED;
	snprintf(c->error, sizeof(c->error), "%s", err->msg);
	c->exit_code = err->status == 400 ? 127 : 128;
	container_persist(c);
	stream_sess_abort_pending(c);
	if (c->start_req) {
		api_reply_err(c->start_req, err);
		c->start_req = NULL;
	}
	char cg[4096];
	snprintf(cg, sizeof(cg), "%s", c->agent->cfg.cgroup_parent);
	rt_cleanup(c->run_dir, cg, c->id, NULL);
	container_notify_waiters(c, false);
	bool auto_remove = false;
	json_get_bool(c->host_config, "AutoRemove", &auto_remove, NULL);
	if (c->remove_on_exit || auto_remove) {
		struct api_req *rr = c->remove_req;
		c->remove_req = NULL;
		container_remove(c, true, rr);
	}
}

static void spawn_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	struct rt_started st = {0};
	struct shoal_err err = {0};
	event_free(c->spawn_ev);
	c->spawn_ev = NULL;
	c->spawn_fd = -1;
	int r = rt_spawn_finish(fd, &st, &err);
	if (r < 0) {
		start_fail(c, &err);
		return;
	}
	log_debug("container %.12s: running %lld us after the start request", c->id,
		  (long long)((mono_ns() - c->start_mono_ns) / 1000));
	c->state = CONTAINER_RUNNING;
	c->pid = st.pid;
	c->monitor_pid = st.monitor_pid;
	c->started_ns = st.started_at_ns ? st.started_at_ns : now_ns();
	c->error[0] = '\0';
	c->exit_code = 0;
	c->oom_killed = false;
	c->paused = false;
	container_persist_soon(c);
	events_container_run(c, true);
	events_container(c, "start", NULL, NULL);
	stream_sess_connect_pending(c);
	if (container_publishes(c))
		manager_kick(c->agent);
	if (container_watch_exit(c, &err) < 0) {
		/* It may have ended already, taking its socket with it. */
		log_debug("container %.12s: wait connection: %s", c->id, err.msg);
		if (c->start_req) {
			api_reply_empty(c->start_req, 204);
			c->start_req = NULL;
		}
		container_exit_from_disk(c);
		return;
	}
	if (c->start_req) {
		api_reply_empty(c->start_req, 204);
		c->start_req = NULL;
	}
	if (c->remove_on_exit || c->stop_after_start) /* rm -f or stop while it started */
		container_signal(c, SIGKILL, NULL);
	c->stop_after_start = false;
}

static void start_req_cancel(struct api_req *r)
{
	struct container *c = r->userdata;
	if (c && c->start_req == r)
		c->start_req = NULL;
	api_req_free(r);
}

struct plumb_job {
	struct container *c;
	struct bridge_net *bn;
	struct bridge_endpoint ep;
	struct shoal_err err;
	int r;
};

static void start_spawn(struct container *c);

static void nets_attached_cb(int r, struct shoal_err *err, void *arg)
{
	struct container *c = arg;
	if (r < 0)
		start_fail(c, err);
	else
		start_spawn(c);
}

/* The first network in place: the further ones, then the process. */
static void start_more_nets(struct container *c)
{
	container_nets_attach(c, nets_attached_cb, c);
}

static void plumb_work(void *arg)
{
	struct plumb_job *j = arg;
	j->r = bridge_net_endpoint_plumb(j->bn, j->c->id, &j->ep, &j->err);
}

static void plumb_done(void *arg)
{
	struct plumb_job *j = arg;
	struct container *c = j->c;
	if (j->r < 0) {
		shoal_err_wrap(&j->err, "connecting the container to the bridge network");
		start_fail(c, &j->err);
	} else if (c->remove_on_exit) {
		struct shoal_err err = {0};
		shoal_err_set_status(&err, 409, ECANCELED,
				     "container %s was removed while it started", c->name);
		start_fail(c, &err);
	} else {
		start_more_nets(c);
	}
	free(j);
}

/* The second half of a start, on the loop: the process, its bundle and its
 * monitor, once the network (if any) is in place. */
static void start_spawn(struct container *c)
{
	struct agent *a = c->agent;
	struct shoal_err err = {0};
	_cleanup_strv_ char **argv = NULL, **ep = NULL, **cmd = NULL, **env = NULL;
	_cleanup_strv_ char **cap_add = NULL, **cap_drop = NULL;
	json_get_strv(c->config, "Entrypoint", true, &ep, NULL);
	json_get_strv(c->config, "Cmd", true, &cmd, NULL);
	json_get_strv(c->config, "Env", false, &env, NULL);
	json_get_strv(c->host_config, "CapAdd", false, &cap_add, NULL);
	json_get_strv(c->host_config, "CapDrop", false, &cap_drop, NULL);
	argv = calloc(1, sizeof(char *));
	for (size_t i = 0; ep && ep[i]; i++)
		strv_push(&argv, ep[i]);
	for (size_t i = 0; cmd && cmd[i]; i++)
		strv_push(&argv, cmd[i]);
	const char *hostname = "", *cwd = "", *user = "";
	json_get_string(c->config, "Hostname", &hostname, NULL);
	json_get_string(c->config, "WorkingDir", &cwd, NULL);
	json_get_string(c->config, "User", &user, NULL);
	bool has_hostname_env = false;
	for (size_t i = 0; env && env[i]; i++)
		if (str_has_prefix(env[i], "HOSTNAME="))
			has_hostname_env = true;
	if (!has_hostname_env) {
		char hn[300];
		snprintf(hn, sizeof(hn), "HOSTNAME=%s", hostname);
		strv_push(&env, hn);
	}

	struct rt_spec spec = {
		.id = c->id,
		.name = c->name,
		.layer_dirs = (const char *const *)c->layer_dirs,
		.bundle_dir = c->bundle_dir,
		.run_dir = c->run_dir,
		.argv = (const char *const *)argv,
		.env = (const char *const *)env,
		.cwd = cwd,
		.user = user,
		.hostname = hostname,
		.cap_add = (const char *const *)cap_add,
		.cap_drop = (const char *const *)cap_drop,
		.cgroup_parent = a->cfg.cgroup_parent,
		.log_max_size = a->cfg.log_max_size,
		.log_max_files = a->cfg.log_max_files,
		.log_usage_path = logs_usage_path(a),
		.log_max_total = a->cfg.log_max_total > 0 ? a->cfg.log_max_total : 0,
		.attach_fd = -1,
	};
	bool b = false;
	json_get_bool(c->config, "Tty", &b, NULL);
	spec.tty = b;
	b = false;
	json_get_bool(c->config, "OpenStdin", &b, NULL);
	spec.open_stdin = b;
	b = false;
	json_get_bool(c->config, "StdinOnce", &b, NULL);
	spec.stdin_once = b;
	b = false;
	json_get_bool(c->host_config, "ReadonlyRootfs", &b, NULL);
	spec.read_only = b;
	b = false;
	json_get_bool(c->host_config, "Privileged", &b, NULL);
	spec.privileged = b;
	json_get_int(c->host_config, "Memory", &spec.memory, NULL);
	json_get_int(c->host_config, "MemorySwap", &spec.memory_swap, NULL);
	json_get_int(c->host_config, "NanoCpus", &spec.nano_cpus, NULL);
	json_get_int(c->host_config, "CpuShares", &spec.cpu_shares, NULL);
	json_get_int(c->host_config, "PidsLimit", &spec.pids_limit, NULL);
	json_t *lc = json_object_get(json_object_get(c->host_config, "LogConfig"), "Config");
	const char *s;
	if (json_get_string(lc, "max-size", &s, NULL) == 0)
		parse_size(s, &spec.log_max_size);
	if (json_get_string(lc, "max-file", &s, NULL) == 0)
		spec.log_max_files = atoi(s);

	char seccomp_path[4096] = "";
	bool unconfined = false;
	if (seccomp_for(a, c, seccomp_path, sizeof(seccomp_path), &unconfined, &err) < 0) {
		shoal_err_wrap(&err, "preparing the seccomp profile");
		start_fail(c, &err);
		return;
	}
	spec.seccomp_path = unconfined ? NULL : seccomp_path;
	spec.seccomp_unconfined = unconfined;

	_cleanup_free_ struct rt_mount *mounts = NULL;
	_cleanup_strv_ char **mount_paths = NULL;
	if (volumes_spec(a, c->mounts, &mounts, &spec.n_mounts, &mount_paths, &err) < 0) {
		start_fail(c, &err);
		return;
	}
	spec.mounts = mounts;

	_cleanup_close_ int pool_netns = -EBADF;
	if (strcmp(c->net_mode, "host") == 0) {
		spec.net_mode = RT_NET_HOST;
	} else if (strcmp(c->net_mode, "none") == 0) {
		spec.net_mode = RT_NET_NONE;
		/* One made ahead of time, off the start path; without one the
		 * container makes its own. */
		struct shoal_err e = {0};
		if (netns_pool_take(false, &pool_netns, NULL, &e) == 0) {
			spec.net_mode = RT_NET_FD;
			spec.net_fd = pool_netns;
		} else {
			log_debug("container %.12s: no pooled network namespace: %s", c->id, e.msg);
		}
	} else {
		spec.net_mode = RT_NET_JOIN;
		spec.net_path = c->netns_path;
	}
	_cleanup_free_ char *hosts = container_make_hosts(c, hostname);
	_cleanup_free_ char *resolv = container_make_resolv_conf(c);
	spec.hosts = hosts ? hosts : "";
	spec.resolv_conf = resolv ? resolv : "";
	spec.bundle_ready = container_bundle_take(c, spec.hostname, spec.hosts, spec.resolv_conf);

	_cleanup_close_ int attach_peer = -EBADF;
	if (c->pending_attach) {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0) {
			spec.attach_fd = sp[1];
			attach_peer = sp[1];
			stream_sess_set_monitor_fd(c->pending_attach, sp[0]);
		}
	}
	struct rt_options ro = {.monitor_path = a->cfg.monitor_path};
	int status_fd = -1;
	int r = rt_spawn(&ro, &spec, &status_fd, &err);
	if (r < 0) {
		start_fail(c, &err);
		return;
	}
	log_debug("container %.12s: monitor spawned %lld us after the start request", c->id,
		  (long long)((mono_ns() - c->start_mono_ns) / 1000));
	c->state = CONTAINER_STARTING;
	c->spawn_fd = status_fd;
	c->spawn_ev = event_new(a->base, status_fd, EV_READ, spawn_done_cb, c);
	event_add(c->spawn_ev, NULL);
}

static void overlay_plumbed_cb(int r, struct shoal_err *err, void *arg)
{
	struct container *c = arg;
	if (r < 0) {
		shoal_err_wrap(err, "connecting the container to its overlay network");
		start_fail(c, err);
	} else if (c->remove_on_exit) {
		struct shoal_err e = {0};
		shoal_err_set_status(&e, 409, ECANCELED,
				     "container %s was removed while it started", c->name);
		start_fail(c, &e);
	} else {
		start_more_nets(c);
	}
}

/* As the bridge's, on an overlay network: the address and the endpoint's
 * record taken and recorded first, the devices made on the overlay's worker. */
static void start_overlay(struct container *c)
{
	struct shoal_err err = {0};
	struct overlay_ep_info ep;
	if (overlay_ep_alloc(c->agent, c->net_mode, c->id, c->name, NULL, &ep, &err) < 0) {
		shoal_err_wrap(&err, "connecting the container to its overlay network");
		start_fail(c, &err);
		return;
	}
	c->net_attached = true;
	c->ip = ep.ip;
	c->gateway = ep.gateway;
	c->prefixlen = ep.prefixlen;
	memcpy(c->mac, ep.mac, 6);
	snprintf(c->netns_path, sizeof(c->netns_path), "%s", ep.netns_path);
	snprintf(c->host_ifname, sizeof(c->host_ifname), "%s", ep.host_ifname);
	c->state = CONTAINER_STARTING;
	int r = container_persist(c);
	if (r < 0) {
		shoal_err_errno(&err, -r, "recording the start in %s/container.json",
				c->bundle_dir);
		start_fail(c, &err);
		return;
	}
	overlay_ep_plumb(c->agent, c->net_mode, c->id, NULL, overlay_plumbed_cb, c);
}

void container_start(struct container *c, struct api_req *req)
{
	struct agent *a = c->agent;
	struct shoal_err err = {0};
	if (c->state == CONTAINER_RUNNING || c->state == CONTAINER_STARTING) {
		api_reply_empty(req, 304);
		return;
	}
	if (c->state == CONTAINER_REMOVING) {
		api_reply_error(req, 409,
				"container %s is marked for removal and cannot be started",
				c->name);
		return;
	}
	if (c->prev_monitor_fd >= 0) {
		/* a restart right after the exit: the last run's monitor is
		 * still removing its files (well under a millisecond; bounded) */
		struct pollfd pf = {.fd = c->prev_monitor_fd, .events = POLLIN};
		if (poll(&pf, 1, 2000) == 0)
			log_warn("container %.12s: the last run's monitor is still there after "
				 "2 s; starting anyway",
				 c->id);
		close(c->prev_monitor_fd);
		c->prev_monitor_fd = -1;
	}
	c->start_mono_ns = mono_ns();
	/* the profile is checked before anything is made for the start */
	char seccomp_path[4096] = "";
	bool unconfined = false;
	if (seccomp_for(a, c, seccomp_path, sizeof(seccomp_path), &unconfined, &err) < 0) {
		shoal_err_wrap(&err, "preparing the seccomp profile");
		api_reply_err(req, &err);
		return;
	}

	c->start_req = req;
	req->userdata = c;
	req->on_cancel = start_req_cancel;
	api_req_defer(req);

	/* Network. What the start uses is recorded before any of it is made:
	 * the record says "starting" and holds the address, the netns path and
	 * the veth's name, so that an agent killed from here on finds them
	 * after a restart and re-adopts the container or rolls the start back
	 * (container_load_all()). */
	struct plumb_job *j = NULL;
	if (overlay_net_mode(c->net_mode)) {
		start_overlay(c);
		return;
	}
	if (strcmp(c->net_mode, "host") != 0 && strcmp(c->net_mode, "none") != 0) {
		if (!a->bridge) {
			struct bridge_net_options bo = {
				.prefix = a->cfg.device_prefix,
				.subnet = a->cfg.bridge_subnet,
			};
			char nsdir[4096];
			snprintf(nsdir, sizeof(nsdir), "%s/netns", a->cfg.run_dir);
			bo.netns_dir = nsdir;
			if (bridge_net_setup(&bo, &a->bridge, &err) < 0) {
				shoal_err_wrap(&err, "setting up the bridge network");
				start_fail(c, &err);
				return;
			}
			for (struct container *o = a->containers; o; o = o->next)
				if (o->net_attached)
					bridge_net_reserve(a->bridge, o->ip, NULL);
		}
		j = calloc(1, sizeof(*j));
		if (!j) {
			shoal_err_set(&err, ENOMEM, "out of memory");
			start_fail(c, &err);
			return;
		}
		if (bridge_net_endpoint_alloc(a->bridge, c->id, &j->ep, &err) < 0) {
			free(j);
			shoal_err_wrap(&err, "connecting the container to the bridge network");
			start_fail(c, &err);
			return;
		}
		c->net_attached = true;
		c->ip = j->ep.addr;
		c->gateway = j->ep.gateway;
		c->prefixlen = j->ep.prefixlen;
		memcpy(c->mac, j->ep.mac, 6);
		snprintf(c->netns_path, sizeof(c->netns_path), "%s", j->ep.netns_path);
		snprintf(c->host_ifname, sizeof(c->host_ifname), "%s", j->ep.host_ifname);
	}
	c->state = CONTAINER_STARTING;
	int r = container_persist(c);
	if (r < 0) {
		free(j);
		shoal_err_errno(&err, -r, "recording the start in %s/container.json",
				c->bundle_dir);
		start_fail(c, &err);
		return;
	}
	if (!j) {
		start_spawn(c);
		return;
	}
	/* The veth and the namespace's addresses, on the loop: made beside it
	 * (a thread of their own), a burst of starts ran its completions
	 * back to back and the loop answered later, not sooner (_ping p99 at
	 * 10,000 replicas 185 -> 395 ms on 2 cores). */
	j->c = c;
	j->bn = a->bridge;
	plumb_work(j);
	plumb_done(j);
}
