/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "lib/err.h"
#include "runtime/runtime.h"

/* Shared between the library side (rt_spawn, run by the agent) and shoal-monitor. */

#define RT_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define RT_MAX_GROUPS	64
#define RT_REQUEST_MAX	(64u * 1024)
#define RT_SPEC_MAX	(4u << 20)

/* The spec as it travels to the monitor (JSON). A parsed spec owns its strings
 * through the JSON document it came from. */
struct rt_spec_owned {
	struct rt_spec spec;
	json_t *root;
	void *arrays[6];
	struct rt_mount *mounts;
};

json_t *rt_spec_to_json(const struct rt_spec *spec);
int rt_spec_from_json(json_t *root, struct rt_spec_owned *ret, struct shoal_err *err);
void rt_spec_owned_done(struct rt_spec_owned *o);

/* The user a process runs as, from the container's /etc/passwd and /etc/group. */
struct rt_user {
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t groups[RT_MAX_GROUPS];
	char home[PATH_MAX];
};

/* user as Docker takes it: "", "uid", "uid:gid", "name", "name:group". Files that
 * do not exist count as empty. Errors: -ENOENT with Docker's message, status 400. */
int rt_user_resolve(const char *user, const char *passwd_path, const char *group_path,
		    struct rt_user *ret, struct shoal_err *err);

/* Resolves file against the PATH value path_env (NULL: the default PATH) as execve
 * would find it. Messages as Docker: `exec: "x": executable file not found in $PATH`. */
int rt_lookup_exec(const char *file, const char *path_env, char *ret, size_t len,
		   struct shoal_err *err);
/* The value of name in a "K=V" vector, or NULL. */
const char *rt_env_get(const char *const *env, const char *name);

/* Docker's json-file log: one JSON object per record, split at 16 KiB, rotated. */
#define RT_LOG_LINE_MAX (16u * 1024)
enum rt_log_stream { RT_LOG_STDOUT, RT_LOG_STDERR };

/* The log never takes a file system's last free space (the store, exit records and
 * the agent need it): below a floor of free space, min(5% of the file system,
 * 64 MiB), records are dropped and counted, and when writing resumes (or at close)
 * one record says how many were lost. The free space is looked at again after
 * RT_LOG_CHECK_BYTES written, or RT_LOG_CHECK_NS after a drop. */
#define RT_LOG_FLOOR_MAX     (64ll << 20)
#define RT_LOG_FLOOR_PERCENT 5
#define RT_LOG_CHECK_BYTES   (1ll << 20)
#define RT_LOG_CHECK_NS	     1000000000ll

struct rt_log {
	int fd;
	char path[PATH_MAX];
	int64_t size;
	int64_t max_size;
	int max_files;
	size_t pending[2];
	char line[2][RT_LOG_LINE_MAX];

	int64_t floor;	      /* free bytes kept on the file system; 0 = no guard */
	int64_t budget;	      /* bytes that may be written before looking again */
	int64_t checked_ns;   /* when the free space was last looked at */
	bool blocked;	      /* dropping records */
	uint64_t dropped;     /* records dropped since the last marker */
	const char *drop_why; /* the reason for the last drop */
	int64_t *usage;	      /* node-wide bytes of all container logs (shared), or NULL */
	int64_t max_total;    /* cap on *usage; 0 = none */
};

/* Formats one record into buf (needs 6 * len + 96 bytes); returns its length. */
size_t rt_log_encode(char *buf, const char *text, size_t len, enum rt_log_stream stream,
		     int64_t time_ns);
int rt_log_open(struct rt_log *log, const char *path, int64_t max_size, int max_files);
/* Shares the node-wide log usage counter at usage_path (rt_log_usage_open()) with a
 * cap of max_total bytes: records that would take the node past it are dropped. */
int rt_log_set_total(struct rt_log *log, const char *usage_path, int64_t max_total);
/* Appends output; whole lines become records, a partial line waits for more (or
 * goes out on its own when it reaches 16 KiB). */
int rt_log_write(struct rt_log *log, enum rt_log_stream stream, const char *data, size_t len,
		 int64_t time_ns);
/* Writes what is pending on stream (at EOF). */
int rt_log_flush(struct rt_log *log, enum rt_log_stream stream, int64_t time_ns);
void rt_log_close(struct rt_log *log);

/* RFC 3339 with nanoseconds as Go prints RFC3339Nano (trailing zeros trimmed). */
void rt_format_time_nano(int64_t ns, char ret[40]);

/* The exit record as JSON. */
json_t *rt_exit_to_json(const struct rt_exit *e);
int rt_exit_from_json(json_t *j, struct rt_exit *ret);

/* The message the monitor writes on the status fd, one JSON object:
 * {"monitor_pid":N,"pid":N,"started_at":ns} or {"error":"...","code":errno,"status":N}. */

/* An error from a forked child, written in one piece to a close-on-exec pipe. */
struct rt_child_err {
	int code;
	int status;
	char msg[1024];
};

/* In the container child: mounts the overlay rootfs, pivots into it, and mounts
 * /proc, /dev, /sys, the generated /etc files, masked and read-only paths.
 * With ret_pty_master (a tty), it opens the container's terminal from its own
 * devpts instance (/dev/pts/0 inside, bound on /dev/console as well) and
 * returns both sides, close-on-exec. */
int rt_rootfs_setup(const struct rt_spec *spec, int overlay_fd, int *ret_pty_master,
		    int *ret_pty_slave, struct shoal_err *err);
/* In a process inside the container's mount namespace: a new terminal from
 * its devpts (24x80), both sides close-on-exec, and its number (/dev/pts/N). */
int rt_pty_open(int *ret_master, int *ret_slave, int *ret_index, struct shoal_err *err);
/* The container's overlay (with the image's mount points layer when it has
 * been built) as a detached mount, made by the monitor while the child sets
 * up; the child attaches it (rt_rootfs_setup's overlay_fd) instead of mounting
 * one itself. Returns the mount fd, close-on-exec. */
int rt_overlay_fsmount(const struct rt_spec *spec, struct shoal_err *err);

/* What a process of the container (init or exec) runs, and as whom. */
struct rt_proc {
	const char *const *argv;
	const char *const *env;
	const char *cwd;
	const char *user;
	bool tty;
	bool chown_tty; /* fd 0 is the container's own terminal: give it to the user */
	bool privileged;
	uint64_t caps;
	const char *seccomp_path; /* NULL: no filter */
};

/* In a child that is already inside the container's namespaces and root:
 * resolves the user, enters cwd, drops to the user and the capability set,
 * sets no_new_privs and loads the seccomp filter unless privileged, and
 * execs. Returns only on failure. */
int rt_proc_exec(const struct rt_proc *p, struct shoal_err *err);
/* Opens p's seccomp filter file while the host's file system is still in view
 * and points p at it through /proc/self/fd (buf holds that path). */
int rt_proc_pin_seccomp(struct rt_proc *p, char *buf, size_t len, struct shoal_err *err);

struct rt_cgroup;

/* The container's first process, run in the child that clone() made with a
 * new pid namespace. It makes its other namespaces itself (unshare) and
 * reports them ready on err_fd (a record with code 0), then prepares the
 * bundle and the root file system while the monitor makes the cgroups and its
 * control socket in parallel, holds the namespaces and sends the go on
 * sync_fd, which the child takes before it drops privileges and execs. Never
 * returns: execs (err_fd closes) or reports an error record on err_fd and
 * exits. */
struct rt_child_args {
	const struct rt_spec *spec;
	struct rt_proc proc;
	int ns_flags;	/* CLONE_NEW* to unshare */
	int sync_fd;	/* read end; the monitor's go: one byte */
	int err_fd;	/* write end, close-on-exec */
	int stdio[3];	/* unused with a tty: the child makes its terminal (console_fd) */
	int console_fd; /* tty: SOCK_SEQPACKET to the monitor, which gets the pty master */
	int net_fd;	/* RT_NET_JOIN, RT_NET_FD: the netns to enter */
	/* The container's cgroups: the child joins them itself once the monitor
	 * has made them all (one byte on cg_fd), before its root file system is
	 * set up (in_v2: clone3 already put it in the v2 one). */
	struct rt_cgroup *cg;
	int cg_fd;
	bool in_v2;
	int overlay_fd; /* SOCK_SEQPACKET: the monitor sends the mounted overlay, or no fd */
};
__attribute__((noreturn)) void rt_container_child(const struct rt_child_args *a);
/* The record a container child writes on err_fd once its namespaces are made. */
void rt_child_ready(int fd);

/* Reports err on fd (one write) and exits. */
__attribute__((noreturn)) void rt_child_fail(int fd, const struct shoal_err *err);
/* In a fresh child of the monitor: default signal dispositions, nothing
 * blocked, every fd from 3 up close-on-exec. */
void rt_child_reset_signals(void);
