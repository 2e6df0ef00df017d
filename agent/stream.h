/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "agent/http.h"

struct agent;
struct container;

/* Exec instances (POST /containers/{id}/exec, /exec/{id}/start). */
struct exec_inst {
	struct exec_inst *next;
	char id[65];
	char container_id[65];
	json_t *config; /* Cmd, Env, User, WorkingDir, Tty, Attach*, Privileged */
	bool running;
	bool started;
	int exit_code;
	int64_t created_ns;
	int64_t ended_ns;	  /* when it finished (started and not running) */
	struct stream_sess *sess; /* while its stream is open */
};

/* One container's share of the node's exec table (AGENT_MAX_EXECS), so that
 * one container cannot fill it. */
#define EXEC_MAX_PER_CONTAINER 1024

/*
 * A hijacked client connection pumped to a monitor connection: attach and exec
 * streams. Monitor frames (runtime.h) become Docker's stdcopy frames (same
 * header layout) or raw bytes with a tty; client bytes become STDIN frames.
 */
struct stream_sess;

/* Attach: running -> connects to the monitor now; created -> waits for start
 * (the monitor adopts our socket before the process runs); exited -> ends at once. */
void stream_attach(struct container *c, struct api_req *r);
void stream_exec_start(struct agent *a, struct exec_inst *ex, struct container *c, bool detach,
		       struct api_req *r);
/* Resize through the monitor's control socket. */
int stream_resize(struct container *c, int h, int w, struct shoal_err *err);
int stream_exec_resize(struct agent *a, struct exec_inst *ex, int h, int w, struct shoal_err *err);

/* Called by the container code around start. */
void stream_sess_set_monitor_fd(struct stream_sess *s, int fd);
void stream_sess_connect_pending(struct container *c);
void stream_sess_abort_pending(struct container *c);

struct exec_inst *exec_find(struct agent *a, const char *id);
void exec_free_all(struct agent *a);
/* Drops exec instances of containers that are gone, and those never started
 * or finished for longer than the expiry (5 minutes). */
void exec_gc(struct agent *a);
/* Exec instances in the table: of one container, or all (NULL). */
unsigned exec_count(struct agent *a, const char *container_id);
