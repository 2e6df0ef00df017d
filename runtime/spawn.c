// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/cgroup.h"
#include "runtime/runtime-internal.h"

extern char **environ;

/* The monitor finds its spec on fd 3 and reports on fd 4 (see monitor.c);
 * then come, each when present, the socket of the client attached before
 * start and the network namespace to join (fds 5 and 6, or 5). */

/*
 * The monitor zygote (see monitor.c): started on the first rt_spawn() and kept
 * for the life of this process, so that later starts fork it rather than exec
 * a new monitor. Any failure to reach it falls back to spawning the monitor.
 */
static struct {
	pthread_mutex_t lock;
	int fd;
	pid_t owner; /* the process that started it; a forked copy does not share it */
	char path[PATH_MAX];
} zygote = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static int spawn_detached(const char *path, char *const argv[], const int *fds, size_t nfds)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
	posix_spawn_file_actions_adddup2(&fa, 0, 1);
	posix_spawn_file_actions_adddup2(&fa, 0, 2);
	for (size_t i = 0; i < nfds; i++)
		posix_spawn_file_actions_adddup2(&fa, fds[i], 3 + (int)i);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETSID);
	pid_t pid;
	int r = posix_spawn(&pid, path, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0)
		return -r;
	/* It forks once more and this first process exits at once, so what
	 * stays is reparented away from us. */
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	return 0;
}

static void zygote_close(void)
{
	if (zygote.fd >= 0)
		close(zygote.fd);
	zygote.fd = -1;
}

static int zygote_start(const char *path)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	_cleanup_close_ int theirs_raw = sp[1];
	_cleanup_close_ int ours = sp[0];
	_cleanup_close_ int theirs = fcntl(theirs_raw, F_DUPFD_CLOEXEC, 10);
	if (theirs < 0)
		return -errno;
	char *argv[] = {(char *)"shoal-monitor", (char *)"--zygote", NULL};
	int r = spawn_detached(path, argv, &theirs, 1);
	if (r < 0)
		return r;
	zygote.fd = TAKE_FD(ours);
	zygote.owner = getpid();
	snprintf(zygote.path, sizeof(zygote.path), "%s", path);
	return 0;
}

/* msg: [0] 'a' with an attach socket, else 's'; [1] 'n' with a netns fd, else '-'. */
static int zygote_send(const char msg[2], const int *fds, size_t nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = 2};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(nfds * sizeof(int)),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	for (;;) {
		ssize_t n = sendmsg(zygote.fd, &mh, MSG_NOSIGNAL);
		if (n == 2)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

/* Hands the monitor's fds to the zygote, starting it (again) when needed. */
static int zygote_spawn(const char *path, const char msg[2], const int *fds, size_t nfds)
{
	pthread_mutex_lock(&zygote.lock);
	int r = -ENOTCONN;
	for (int attempt = 0; attempt < 2 && r < 0; attempt++) {
		if (zygote.fd >= 0 && (zygote.owner != getpid() || strcmp(zygote.path, path) != 0))
			zygote_close();
		if (zygote.fd < 0 && (r = zygote_start(path)) < 0)
			break;
		r = zygote_send(msg, fds, nfds);
		if (r < 0)
			zygote_close();
	}
	pthread_mutex_unlock(&zygote.lock);
	return r;
}

int rt_spawn(const struct rt_options *opts, const struct rt_spec *spec, int *ret_status_fd,
	     struct shoal_err *err)
{
	if (!opts || !opts->monitor_path)
		return shoal_err_set(err, EINVAL, "no path to shoal-monitor");
	if (!spec->id || !spec->bundle_dir || !spec->run_dir || !spec->argv || !spec->argv[0])
		return shoal_err_set_status(
			err, 400, EINVAL, "container spec needs an id, directories and a command");

	_cleanup_(json_decrefp) json_t *j = rt_spec_to_json(spec);
	if (!j)
		return shoal_err_errno(err, ENOMEM, "encoding container spec");
	_cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return shoal_err_errno(err, ENOMEM, "encoding container spec");
	size_t len = strlen(text);
	if (len > RT_SPEC_MAX)
		return shoal_err_set_status(err, 400, E2BIG, "container spec too large");

	/* The spec goes in a memfd so that no write can block on a monitor that
	 * has not started reading yet; fds above 10 so that the dup2 to 3 and 4
	 * in the child cannot clobber each other. */
	_cleanup_close_ int mfd_raw = memfd_create("shoal-spec", MFD_CLOEXEC);
	if (mfd_raw < 0)
		return shoal_err_errno(err, errno, "memfd_create");
	int r = write_all(mfd_raw, text, len);
	if (r < 0)
		return shoal_err_errno(err, -r, "writing container spec");
	_cleanup_close_ int mfd = fcntl(mfd_raw, F_DUPFD_CLOEXEC, 10);
	if (mfd < 0)
		return shoal_err_errno(err, errno, "fcntl");

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return shoal_err_errno(err, errno, "socketpair");
	_cleanup_close_ int ours = sp[0];
	_cleanup_close_ int theirs_raw = sp[1];
	_cleanup_close_ int theirs = fcntl(theirs_raw, F_DUPFD_CLOEXEC, 10);
	if (theirs < 0)
		return shoal_err_errno(err, errno, "fcntl");

	_cleanup_close_ int attach = -EBADF;
	if (spec->attach_fd >= 0) {
		attach = fcntl(spec->attach_fd, F_DUPFD_CLOEXEC, 10);
		if (attach < 0)
			return shoal_err_errno(err, errno, "fcntl");
	}

	_cleanup_close_ int net = -EBADF;
	if (spec->net_mode == RT_NET_FD) {
		if (spec->net_fd < 0)
			return shoal_err_set(err, EINVAL, "no network namespace to join");
		net = fcntl(spec->net_fd, F_DUPFD_CLOEXEC, 10);
		if (net < 0)
			return shoal_err_errno(err, errno, "fcntl");
	}

	int fds[4] = {mfd, theirs};
	size_t nfds = 2;
	char msg[2] = {'s', '-'};
	char attach_arg[32] = "", net_arg[32] = "";
	if (attach >= 0) {
		snprintf(attach_arg, sizeof(attach_arg), "--attach-fd=%zu", 3 + nfds);
		fds[nfds++] = attach;
		msg[0] = 'a';
	}
	if (net >= 0) {
		snprintf(net_arg, sizeof(net_arg), "--net-fd=%zu", 3 + nfds);
		fds[nfds++] = net;
		msg[1] = 'n';
	}
	r = zygote_spawn(opts->monitor_path, msg, fds, nfds);
	if (r < 0) {
		char *argv[5] = {(char *)"shoal-monitor", (char *)spec->id};
		size_t argc = 2;
		if (attach_arg[0])
			argv[argc++] = attach_arg;
		if (net_arg[0])
			argv[argc++] = net_arg;
		argv[argc] = NULL;
		r = spawn_detached(opts->monitor_path, argv, fds, nfds);
		if (r == -EIO)
			return shoal_err_set(err, EIO, "shoal-monitor failed to start");
		if (r < 0)
			return shoal_err_errno(err, -r, "starting %s", opts->monitor_path);
	}

	/* The container's v2 cgroup, made here while the monitor starts and reads
	 * its spec: the monitor needs it before it can clone the container into
	 * it, and takes an existing one as its own (the directory's lock orders
	 * the two mkdirs, so the loser sees a complete cgroup). Anything left
	 * after a failed start goes with rt_cleanup(). */
	struct rt_cgroup *cg = NULL;
	if (rt_cgroup_create_first(spec->cgroup_parent ? spec->cgroup_parent : "shoal", spec->id,
				   NULL, &cg, NULL) == 0)
		rt_cgroup_free(cg);

	r = fd_set_nonblock(ours, true);
	if (r < 0)
		return shoal_err_errno(err, -r, "fcntl");
	*ret_status_fd = TAKE_FD(ours);
	return 0;
}

int rt_spawn_finish(int status_fd, struct rt_started *ret, struct shoal_err *err)
{
	_cleanup_close_ int fd = status_fd;
	char buf[8192];
	size_t len = 0;
	fd_set_nonblock(fd, false);
	for (;;) {
		if (len == sizeof(buf) - 1)
			return shoal_err_set(err, EPROTO, "status from shoal-monitor too long");
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return shoal_err_errno(err, errno, "reading status from shoal-monitor");
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len == 0)
		return shoal_err_set(err, EIO, "shoal-monitor exited before the container started");

	json_error_t jerr;
	_cleanup_(json_decrefp) json_t *j = json_loadb(buf, len, 0, &jerr);
	if (!j)
		return shoal_err_set(err, EPROTO, "bad status from shoal-monitor: %s", jerr.text);
	const char *msg = json_string_value(json_object_get(j, "error"));
	if (msg) {
		int code = (int)json_integer_value(json_object_get(j, "code"));
		int status = (int)json_integer_value(json_object_get(j, "status"));
		return shoal_err_set_status(err, status ? status : 500, code > 0 ? code : EIO, "%s",
					    msg);
	}
	struct rt_started s = {
		.monitor_pid = (pid_t)json_integer_value(json_object_get(j, "monitor_pid")),
		.pid = (pid_t)json_integer_value(json_object_get(j, "pid")),
		.started_at_ns = json_integer_value(json_object_get(j, "started_at")),
	};
	if (s.pid <= 0 || s.monitor_pid <= 0)
		return shoal_err_set(err, EPROTO, "bad status from shoal-monitor");
	*ret = s;
	return 0;
}

int rt_exit_read(const char *bundle_dir, struct rt_exit *ret)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/exit.json", bundle_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file(path, 64 * 1024, &text, &len);
	if (r < 0)
		return r;
	_cleanup_(json_decrefp) json_t *j = json_loadb(text, len, 0, NULL);
	if (!j)
		return -EINVAL;
	return rt_exit_from_json(j, ret);
}

int rt_ctl_connect(const char *run_dir, json_t *request, struct shoal_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int dfd = -EBADF;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ctl.sock", run_dir);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		/* Too long for sun_path: go through the directory's fd. */
		dfd = open(run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return shoal_err_errno(err, errno, "opening %s", run_dir);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/ctl.sock", dfd);
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return shoal_err_errno(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return shoal_err_errno(err, errno, "connecting to the container monitor in %s",
				       run_dir);
	_cleanup_free_ char *text = json_dumps(request, JSON_COMPACT);
	if (!text)
		return shoal_err_errno(err, ENOMEM, "encoding request");
	size_t len = strlen(text);
	if (len + 1 > RT_REQUEST_MAX)
		return shoal_err_set(err, E2BIG, "request to the container monitor too large");
	text[len] = '\n';
	const char *p = text;
	size_t left = len + 1;
	while (left > 0) {
		ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return shoal_err_errno(err, errno,
					       "sending request to the container monitor");
		}
		p += w;
		left -= (size_t)w;
	}
	return TAKE_FD(fd);
}

int rt_cleanup(const char *run_dir, const char *cgroup_parent, const char *id,
	       struct shoal_err *err)
{
	int ret = 0;
	if (cgroup_parent && id) {
		struct rt_cgroup *cg = NULL;
		struct shoal_err e = {0};
		int r = rt_cgroup_open(cgroup_parent, id, &cg, &e);
		if (r >= 0) {
			r = rt_cgroup_destroy(cg, &e);
			rt_cgroup_free(cg);
			if (r < 0 && r != -ENOENT) {
				if (err)
					*err = e;
				ret = r;
			}
		}
	}
	int r = rm_rf(run_dir);
	if (r < 0 && r != -ENOENT && ret == 0)
		ret = shoal_err_errno(err, -r, "removing %s", run_dir);
	return ret;
}

int rt_remove(const char *bundle_dir, struct shoal_err *err)
{
	int r = rm_rf(bundle_dir);
	if (r < 0 && r != -ENOENT)
		return shoal_err_errno(err, -r, "removing %s", bundle_dir);
	return 0;
}
