/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/runtime-internal.h"

/* Limits on what clients of the control socket can make the monitor hold. */
#define MON_MAX_CLIENTS	   64
#define MON_CLIENT_BUF_MAX (4u << 20)	      /* queued output per client before it is dropped */
#define MON_STDIN_BUF_MAX  (1u << 20)	      /* stdin waiting for the container to read it */
#define MON_DRAIN_NS	   (2ll * 1000000000) /* output read after exit, at most */
#define MON_LINGER_NS	   (1ll * 1000000000) /* answering late clients after exit, at most */

enum mon_watch_kind {
	W_LISTEN,
	W_SIGNAL,
	W_CTR_OUT,
	W_CTR_ERR,
	W_CLIENT,
	W_EXEC_OUT,
	W_EXEC_ERR,
	W_EXEC_ERRPIPE,
};

struct mon_watch {
	int kind;
	int fd;
	void *ptr;
};

struct mon_buf {
	char *data;
	size_t len, cap;
};

enum mon_client_kind { C_REQ, C_WAIT, C_ATTACH, C_EXEC, C_REPLY };

struct mon_exec;

struct mon_client {
	struct mon_watch w;
	int fd;
	enum mon_client_kind kind;
	char *req;
	size_t req_len;
	/* Frame parser state for attach and exec. */
	uint8_t hdr[8];
	size_t hdr_len;
	uint32_t left;
	char ctl[256];
	size_t ctl_len;
	struct mon_buf out;
	bool want_out, want_err, want_in;
	bool done;    /* close once out is flushed */
	bool reading; /* EPOLLIN registered */
	struct mon_exec *exec;
	struct mon_client *next;
};

struct mon_exec {
	pid_t pid;
	int status;
	bool exited;
	int64_t exited_at;
	bool tty;
	int out, err, in, errpipe;
	struct mon_watch w_out, w_err, w_errpipe;
	struct mon_buf in_pending;
	char error[1024];
	char **argv, **env;
	struct mon_client *client;
	struct mon_exec *next;
};

struct monitor {
	struct rt_spec_owned owned;
	const struct rt_spec *spec;
	struct rt_cgroup *cg;
	uint64_t caps;
	const char *seccomp_path;

	pid_t ctr_pid;
	int ctr_ns_flags;	     /* the namespaces made for the container */
	int ctr_sync_fd, ctr_err_fd; /* to and from the container child until it execs */
	int ctr_cg_fd;		     /* to the child: its cgroups are all there */
	int overlay_fd;		     /* to the child: its overlay, mounted */
	int console_fd;		     /* tty: where the child sends its terminal's master */
	int net_fd;		     /* RT_NET_FD: the netns for the child, until it has it */
	int ns_fds[4];		     /* its namespaces, held until its exit is reported */
	int ctr_status;
	bool running;
	int64_t started_at;
	int64_t exited_at; /* monotonic */
	char *exit_json;   /* the exit record, once the exit has been reported */
	int64_t linger_until;

	int ctr_out, ctr_err, ctr_in;
	struct mon_buf stdin_pending;
	struct mon_client *stdin_owner;

	int listen_fd, status_fd, epfd, sig_fd;
	struct mon_watch w_listen, w_sig, w_out, w_err;
	struct rt_log log;

	struct mon_client *clients;
	size_t nclients;
	struct mon_exec *execs;
};

extern struct monitor M;

int mon_watch(int fd, uint32_t events, struct mon_watch *w, int kind, void *ptr);
void mon_unwatch(int fd);
int mon_stdio_create(bool tty, bool open_stdin, int child[3], int *ret_out, int *ret_err,
		     int *ret_in, struct shoal_err *err);
void mon_stdio_close_child(int child[3]);

/* A fork (the child runs on a copy of our memory; flags: CLONE_NEW* to add),
 * born in the container's v2 cgroup where there is one: a process created
 * there needs no migration, and a migration through cgroup.procs costs an RCU
 * grace period. *ret_in_v2 says whether that worked (clone3 and
 * CLONE_INTO_CGROUP exist); the child then joins the rest with
 * rt_cgroup_join_self(). */
pid_t mon_fork_in_cgroup(uint64_t flags, bool *ret_in_v2);
int mon_loop(void);
/* Takes a connected socket as an attached client (stdout, stderr, and stdin
 * when the container has it open). */
void mon_adopt_attach(int fd);
void mon_ctr_output(int *fdp, enum rt_log_stream stream);
void mon_fanout(enum rt_frame_type type, const char *data, size_t len);
/* Records the exit, tells the clients, and cleans up; the loop then answers the
 * clients still queued on the (already unlinked) control socket and exits. */
void mon_finish(void);
void mon_clients_finish(const char *exit_json);

int mon_buf_append(struct mon_buf *b, const void *data, size_t len, size_t max);
void mon_buf_consume(struct mon_buf *b, size_t n);
void mon_client_send(struct mon_client *c, enum rt_frame_type type, const char *data, size_t len);
void mon_client_send_raw(struct mon_client *c, const char *data, size_t len);
void mon_client_close(struct mon_client *c);
/* Writes to a stdin fd through its pending buffer; false when the buffer is full. */
bool mon_stdin_write(int fd, struct mon_buf *pending, const char *data, size_t len);

void mon_exec_start(struct mon_client *c, json_t *req);
void mon_exec_output(struct mon_exec *e, int *fdp, enum rt_frame_type type);
void mon_exec_errpipe(struct mon_exec *e);
void mon_exec_reaped(struct mon_exec *e, int status);
/* Sends the EXIT frame once the process is gone and its output drained (or
 * the drain time is up). */
void mon_exec_check_done(struct mon_exec *e, int64_t now);
void mon_exec_client_gone(struct mon_exec *e);
