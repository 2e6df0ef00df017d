/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <jansson.h>

#include "agent/http.h"
#include "lib/err.h"

struct agent;
struct stream_sess;

enum container_state {
	CONTAINER_CREATED,
	CONTAINER_STARTING,
	CONTAINER_RUNNING,
	CONTAINER_EXITED,
	CONTAINER_REMOVING,
};

enum wait_condition { WAIT_NOT_RUNNING, WAIT_NEXT_EXIT, WAIT_REMOVED };

struct waiter {
	struct waiter *next;
	struct api_req *req;
	enum wait_condition cond;
	struct container *c;
};

/* The length of a network id as a container holds it (an overlay network's
 * id, or bridge, host, none). */
#define CONTAINER_NET_ID_MAX 32
/* Networks a container joins beyond its first (eth0): eth1 to eth7. */
#define CONTAINER_MORE_NETS 7

/* One of a container's further networks: an overlay network, eth<n> inside. */
struct container_net {
	char net[CONTAINER_NET_ID_MAX]; /* the network's id */
	char ifname[8];			/* eth1, ... */
	bool attached;			/* holds an address and a veth now */
	struct in_addr ip;
	uint8_t prefixlen;
	char host_ifname[16];
};

struct container {
	struct container *next;
	struct container *id_next, *name_next; /* index chains (container-index.c) */
	struct agent *agent;
	char id[65];
	char name[128];
	json_t *config;	     /* Docker's Config, as given and completed */
	json_t *host_config; /* Docker's HostConfig */
	json_t *mounts;	     /* its mounts, resolved (agent/volumes.h) */
	bool remove_volumes; /* the removal takes its anonymous volumes along */
	char *image_ref;     /* as the user named it */
	char *image_id;
	char **layer_dirs;
	char *bundle_dir;
	char *run_dir;
	char *log_path;

	enum container_state state;
	bool paused; /* running, its cgroup frozen (pause) */
	pid_t pid;
	pid_t monitor_pid;
	/* The monitor of the last run, which removes its run files and
	 * cgroups after it reported the exit: a new start waits for it to be
	 * gone (a pidfd), so that it cannot remove the new run's. -1: none. */
	int prev_monitor_fd;
	int exit_code;
	bool oom_killed;
	int64_t created_ns, started_ns, finished_ns;
	int64_t start_mono_ns; /* when the last start request came */
	char error[512];
	int restart_count;

	/* Restart policy (container-restart.c). manual_stop: stopped or killed
	 * through the API since its last start by the user, Docker's
	 * HasBeenManuallyStopped (recorded); stop_requested: its next exit is
	 * not restarted under any policy (Docker's ExitOnNext); restarting:
	 * exited, a restart waits on restart_timer, restart_delay_ms long. */
	bool manual_stop;
	bool stop_requested;
	bool restarting;
	bool stop_after_start; /* stopped while a start was under way */
	int64_t restart_delay_ms;
	struct event *restart_timer;

	/* network: recorded before a start makes any of it (see container_start()) */
	char net_mode[CONTAINER_NET_ID_MAX];
	bool net_attached;
	struct in_addr ip, gateway;
	uint8_t prefixlen;
	uint8_t mac[6];
	char netns_path[256]; /* the bind mount of its netns (Docker's SandboxKey) */
	char host_ifname[16]; /* its veth's end on the bridge */
	/* Its veth as the data plane last read it (agent/publish-fwd.c), for
	 * the run that started at fwd_started_ns: read again after a start. */
	int64_t fwd_started_ns;
	int fwd_ifindex;
	uint8_t fwd_host_mac[6];
	/* Further overlay networks (eth1, ...), in the order they were joined:
	 * kept while stopped, attached by each start and by a connect while
	 * running (container-nets.c). */
	struct container_net more_nets[CONTAINER_MORE_NETS];
	size_t n_more_nets;

	/* in flight */
	int spawn_fd;
	struct event *spawn_ev;
	struct api_req *start_req;
	struct bufferevent *wait_bev; /* monitor "wait" connection */
	struct waiter *waiters;
	struct api_req **stop_reqs;
	size_t n_stop_reqs;
	struct event *stop_timer;
	struct event *persist_ev; /* the record, written after the reply goes out */
	struct event *bundle_ev;  /* the bundle's files, written after the create reply */
	char *bundle_sig;	  /* what they hold when written so, until the next start */
	bool remove_on_exit;
	struct api_req *remove_req;
	struct stream_sess *pending_attach; /* attached before start */
	/* A start the agent was killed in the middle of: its monitor is
	 * waited for until resume_deadline_ns (monotonic), then the start is
	 * rolled back. */
	struct event *resume_timer;
	struct bufferevent *resume_bev; /* its "state" question to the monitor */
	int64_t resume_deadline_ns;
};

/* Table */
struct container *container_find(struct agent *a, const char *ref, struct shoal_err *err);
/* By full id only (no name, no prefix): what the agent's own records name. */
struct container *container_get(struct agent *a, const char *id);
int container_load_all(struct agent *a, struct shoal_err *err);
void container_free_all(struct agent *a);

/* Lifecycle */
int container_create(struct agent *a, const char *name, json_t *body, struct container **ret,
		     json_t **ret_warnings, struct shoal_err *err);
/* Starts; replies to r (204, 304 or an error) when the container runs or fails. */
void container_start(struct container *c, struct api_req *r);
/* Sends a signal through the monitor. */
int container_signal(struct container *c, int sig, struct shoal_err *err);
/* TERM (or the stop signal), then KILL after timeout_s; replies to r when stopped. */
void container_stop(struct container *c, int64_t timeout_s, struct api_req *r);
void container_wait(struct container *c, enum wait_condition cond, struct api_req *r);
/* Removes a container that is not running (force: kill first). Replies to r. */
void container_remove(struct container *c, bool force, struct api_req *r);
int container_persist(struct container *c);
/* Freezes (pause) or thaws a running container's processes. */
int container_pause(struct container *c, bool pause, struct shoal_err *err);
/* A start asked for by the user (API start, restart): the restart count,
 * the manual-stop mark and the backoff start over, as Docker's do. Replies
 * 304 to a container waiting to restart (it counts as running). */
void container_start_by_user(struct container *c, struct api_req *r);
/* The user stops or kills it with sig (0: a stop): marks it manually stopped
 * as Docker does, and cancels a restart it waits for. true when there is no
 * process to signal: it was waiting to restart (it is stopped now), or a
 * start is under way (killed as soon as it runs). */
bool container_restart_stop(struct container *c, int sig);
/* A new name (unique, Docker's rules); the old one is free at once. */
int container_rename(struct container *c, const char *name, struct shoal_err *err);

json_t *container_inspect_json(struct container *c);

/* A container's networks as the data plane sees them (container-nets.c):
 * i = 0 its first (eth0), 1.. its further ones; false when that one holds no
 * address now. */
struct container_att {
	const char *net; /* bridge, or an overlay network's id */
	const char *ifname;
	struct in_addr ip;
	uint8_t prefixlen;
	const char *host_ifname;
};
bool container_att(const struct container *c, size_t i, struct container_att *ret);
#define CONTAINER_ATT_MAX (1 + CONTAINER_MORE_NETS)
/* Whether c holds an address on network net now; *ret_ip: that address. */
bool container_on_net(const struct container *c, const char *net, struct in_addr *ret_ip);
/* Docker's POST /networks/{id}/connect and /disconnect for container c:
 * an attachable overlay network joined or left, now if it runs, else at its
 * next start. */
void container_net_connect(struct container *c, const char *ref, struct api_req *r);
void container_net_disconnect(struct container *c, const char *ref, struct api_req *r);
json_t *container_summary_json(struct container *c);
const char *container_state_name(enum container_state s);
/* Docker's State.Status: the state's name, "paused" for a paused one. */
const char *container_status(struct container *c);
bool container_uses_image(struct agent *a, const char *image_id, struct container **ret);
int parse_signal(const char *s, int *ret);
