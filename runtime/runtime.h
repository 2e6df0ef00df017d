/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "lib/err.h"

/*
 * The container runtime. Each container is run by its own small monitor process
 * (`shoal-monitor`, exec'd and double-forked so it is not the agent's child):
 * the monitor sets up the container (overlayfs rootfs, namespaces, cgroups,
 * pivot_root, seccomp, capabilities, rlimits), execs the user's process as pid 1
 * of a new pid namespace, holds its stdio, writes its logs, reaps it, records
 * its exit, and serves a control socket. Containers keep running while the
 * agent is down; a restarted agent re-adopts them through that socket.
 *
 * Paths, per container id:
 *   $datadir/containers/<id>/            bundle: upper/, work/ (overlay), hosts,
 *                                         hostname, resolv.conf, <id>-json.log[.N]
 *   $datadir/containers/<id>/exit.json   written by the monitor when the container ends
 *   $rundir/containers/<id>/ctl.sock     the monitor's control socket
 *   $rundir/containers/<id>/monitor.pid  the monitor's pid
 */

enum rt_net_mode {
	RT_NET_NONE, /* new netns with only loopback, brought up */
	RT_NET_HOST, /* the agent's netns */
	RT_NET_JOIN, /* join the netns bind-mounted at net_path (bridge/overlay: the agent
		      * created it and configured its interfaces before start) */
	RT_NET_FD,   /* as RT_NET_NONE, but join the netns open at net_fd: a fresh one
		      * with only lo up (netns_pool_take()), made before it was needed */
};

/* Capability names as Docker spells them ("CAP_NET_RAW" or "NET_RAW"; "ALL"). */
/* A mount the container asks for, made after the image's root is in place,
 * in the order given. */
enum rt_mount_type { RT_MOUNT_BIND, RT_MOUNT_TMPFS };

#define RT_MAX_MOUNTS 64

struct rt_mount {
	enum rt_mount_type type;
	const char *source; /* bind: an absolute host path (a directory or a file) */
	const char *target; /* absolute, in the container; made if missing */
	bool readonly;
	bool noexec;	  /* tmpfs */
	const char *data; /* tmpfs: mount data ("size=65536k,mode=1777"), or NULL */
};

struct rt_spec {
	const char *id; /* 64 hex */
	const char *name;
	const char *const *layer_dirs; /* image layers, lowest first, NULL-terminated */
	const char *bundle_dir;	       /* $datadir/containers/<id> */
	const char *run_dir;	       /* $rundir/containers/<id> */

	const char *const *argv; /* entrypoint + cmd, resolved by the agent; NULL-terminated */
	const char *const *env;	 /* "K=V", NULL-terminated */
	const char *cwd;	 /* "" or NULL = "/" */
	const char *user;	 /* "", "uid", "uid:gid", "name", "name:group" (looked up in
				  * the container's /etc/passwd and /etc/group) */
	const char *hostname;
	const char *domainname;

	bool tty;
	bool open_stdin;
	bool stdin_once;
	bool read_only; /* read-only rootfs */
	bool privileged;

	int64_t memory;	     /* bytes, 0 = unlimited */
	int64_t memory_swap; /* bytes, 0 = default (2x memory as Docker), -1 = unlimited */
	int64_t nano_cpus;   /* 1e9 = one CPU; 0 = unlimited */
	int64_t cpu_shares;  /* Docker's relative weight (1024 default); 0 = default */
	int64_t pids_limit;  /* 0 or -1 = unlimited */

	const char *const *cap_add; /* NULL-terminated or NULL */
	const char *const *cap_drop;

	const struct rt_mount *mounts; /* at most RT_MAX_MOUNTS */
	size_t n_mounts;

	enum rt_net_mode net_mode;
	const char *net_path; /* RT_NET_JOIN */
	int net_fd;	      /* RT_NET_FD; rt_spawn passes it on, the caller closes its copy */
	/* Contents for the generated files bind-mounted into the container. */
	const char *hosts;	 /* /etc/hosts */
	const char *resolv_conf; /* /etc/resolv.conf */

	/* Cgroup placement: the container's cgroup is <cgroup_parent>/<id> in every
	 * hierarchy the cgroup backend uses (see cgroup.h). */
	const char *cgroup_parent;

	/* Logs: rotate the json log at this size, keep this many files (>= 1). */
	int64_t log_max_size; /* 0 = 10 MiB */
	int log_max_files;    /* 0 = 3 */
	/* The node-wide log usage counter (rt_log_usage_open()) and the cap on it:
	 * records that would take all container logs of the node past log_max_total
	 * bytes are dropped (and counted). NULL / 0 = no cap. Whatever the cap, records
	 * are dropped while the log's file system is nearly full. */
	const char *log_usage_path;
	int64_t log_max_total;

	/* Precompiled seccomp filter (struct sock_filter array) from rt_seccomp_compile();
	 * NULL with seccomp_unconfined = true for --security-opt seccomp=unconfined. */
	const char *seccomp_path; /* file holding the BPF program */
	bool seccomp_unconfined;

	/* The bundle's directories and its hosts, hostname and resolv.conf are
	 * already written as this spec says (rt_bundle_prepare()): the start skips
	 * writing them. */
	bool bundle_ready;

	/* A connected stream socket (or -1) that the monitor adopts as an attached
	 * client (as after an "attach" request with stdin = open_stdin, stdout and
	 * stderr true) BEFORE the container's process is let go, so that a client
	 * attached before start (`shoal run` in the foreground) sees all output from
	 * the first byte. rt_spawn passes it to the monitor; the caller closes its
	 * copy after rt_spawn returns. */
	int attach_fd;
};

struct rt_started {
	pid_t monitor_pid;
	pid_t pid; /* container init, in the agent's pid namespace */
	int64_t started_at_ns;
};

/* Where the runtime finds its helper binary. */
struct rt_options {
	const char *monitor_path; /* path to shoal-monitor */
};

/* Writes the bundle's upper, work and merged directories and its hosts,
 * hostname and resolv.conf files from spec (bundle_dir, hostname, hosts,
 * resolv_conf): what a start does unless spec->bundle_ready, done ahead of it
 * (the agent does it right after a create). */
int rt_bundle_prepare(const struct rt_spec *spec, struct shoal_err *err);

/* Starts the monitor for spec and returns at once with a non-blocking fd that
 * becomes readable when the container has started (or failed to). The caller
 * polls it (event loop) and then calls rt_spawn_finish() exactly once, which
 * closes it. Errors from setup inside the monitor or the child (bad rootfs,
 * executable not found, ...) come back through rt_spawn_finish with a message
 * as Docker gives it, e.g. `exec: "nope": executable file not found in $PATH`
 * (err->status 400 for errors of the user's spec, 500 otherwise). */
int rt_spawn(const struct rt_options *opts, const struct rt_spec *spec, int *ret_status_fd,
	     struct shoal_err *err);
int rt_spawn_finish(int status_fd, struct rt_started *ret, struct shoal_err *err);

/* The exit record the monitor writes to exit.json (and sends to waiters). */
struct rt_exit {
	int exit_code; /* 128+signal when killed by a signal */
	bool oom_killed;
	int64_t finished_at_ns;
	char error[256]; /* set when the monitor itself failed */
};
int rt_exit_read(const char *bundle_dir, struct rt_exit *ret);

/*
 * The monitor's control socket, $rundir/containers/<id>/ctl.sock (SOCK_STREAM).
 * A connection starts with one request: a JSON object on one line ending in '\n'.
 *
 *   {"op":"wait"}                       -> the exit record as JSON + '\n' when the
 *                                          container ends (at once if it has)
 *   {"op":"kill","signal":15}           -> {"ok":true} or {"error":"..."} + '\n'
 *   {"op":"attach","stdin":true,"stdout":true,"stderr":true}
 *                                        -> framed stream (below) until exit
 *   {"op":"exec","argv":[..],"env":[..],"user":"..","cwd":"..","tty":false,
 *    "stdin":false,"privileged":false} -> framed stream; the process runs in all of the
 *                                          container's namespaces and cgroups with its
 *                                          seccomp filter and capabilities
 *   {"op":"state"}                      -> {"pid":N,"running":true,"started_at":ns} + '\n'
 *
 * After "attach" and "exec" both directions carry frames: an 8-byte header
 * [type u8][0][0][0][length u32 big-endian] then length bytes. Types below.
 * The monitor sends STDOUT/STDERR (with a tty everything is STDOUT), then one
 * EXIT frame whose payload is the exit record JSON (for exec: {"exit_code":N}),
 * then closes. The client sends STDIN data, STDIN_CLOSE for EOF, RESIZE with
 * {"h":rows,"w":cols}. Frames larger than RT_FRAME_MAX are a protocol error.
 */
enum rt_frame_type {
	RT_FRAME_STDIN = 0,
	RT_FRAME_STDOUT = 1,
	RT_FRAME_STDERR = 2,
	RT_FRAME_EXIT = 3,
	RT_FRAME_RESIZE = 4,
	RT_FRAME_STDIN_CLOSE = 5,
};
#define RT_FRAME_MAX (1u << 20)

/* Connects to a container's control socket and sends the request (a JSON object).
 * Returns the connected fd (blocking, close-on-exec). */
int rt_ctl_connect(const char *run_dir, json_t *request, struct shoal_err *err);
/* Encodes a frame header. */
void rt_frame_header(uint8_t hdr[8], enum rt_frame_type type, uint32_t len);

/* The node-wide count of bytes in container logs: one int64 in a file on the run
 * dir, mapped MAP_SHARED by the agent and every monitor, which add what they write
 * and subtract what rotation removes. rt_log_usage_scan() gives the true figure
 * (the sizes of every <containers_dir>/<id>/<id>-json.log[.N]) for the agent to
 * store, at start and from time to time, so that removed containers and crashes
 * never leave it wrong for long. open returns -errno; create makes the file. */
int rt_log_usage_open(const char *path, bool create, int64_t **ret);
void rt_log_usage_close(int64_t *usage);
int64_t rt_log_usage_scan(const char *containers_dir);

/* Compiles Docker's default seccomp profile for this architecture (plus any
 * capability-dependent rules for caps) into a BPF program file at path, loaded
 * by the monitor with seccomp(2). Done once at agent start. */
int rt_seccomp_compile(const char *path, struct shoal_err *err);

/* Cleans up what a container left behind after it exited: its cgroups, run dir.
 * The bundle (logs, upper layer) stays until rt_remove(). */
int rt_cleanup(const char *run_dir, const char *cgroup_parent, const char *id,
	       struct shoal_err *err);
/* Removes the bundle directory. */
int rt_remove(const char *bundle_dir, struct shoal_err *err);
