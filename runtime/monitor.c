// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/caps.h"
#include "runtime/cgroup.h"
#include "runtime/monitor-internal.h"
#include "runtime/runtime-internal.h"

/*
 * shoal-monitor: one per container. Started by rt_spawn() with the spec on fd 3
 * and the status socket on fd 4; forks once so that the agent is not its parent,
 * starts the container and then serves its control socket until it exits.
 */

struct monitor M = {
	.ctr_out = -1,
	.ctr_err = -1,
	.ctr_in = -1,
	.listen_fd = -1,
	.status_fd = -1,
	.epfd = -1,
	.sig_fd = -1,
	.ctr_sync_fd = -1,
	.ctr_err_fd = -1,
	.ctr_cg_fd = -1,
	.overlay_fd = -1,
	.console_fd = -1,
	.net_fd = -1,
	.ns_fds = {-1, -1, -1, -1},
};

static char readbuf[32 * 1024];

int mon_watch(int fd, uint32_t events, struct mon_watch *w, int kind, void *ptr)
{
	w->kind = kind;
	w->ptr = ptr;
	w->fd = fd;
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void mon_unwatch(int fd)
{
	epoll_ctl(M.epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void write_status(json_t *j)
{
	if (M.status_fd < 0)
		return;
	char *s = json_dumps(j, JSON_COMPACT);
	if (s) {
		send(M.status_fd, s, strlen(s), MSG_NOSIGNAL);
		free(s);
	}
	close(M.status_fd);
	M.status_fd = -1;
}

static void remove_run_files(void)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/ctl.sock", M.spec->run_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/monitor.pid", M.spec->run_dir);
	unlink(p);
	rmdir(M.spec->run_dir);
}

static __attribute__((noreturn)) void fail_start(const struct shoal_err *err)
{
	/* Clean up first: the agent may look at the run dir as soon as it hears. */
	if (M.ctr_pid > 0) {
		kill(M.ctr_pid, SIGKILL);
		while (waitpid(M.ctr_pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (M.cg) {
		rt_cgroup_destroy(M.cg, NULL);
		rt_cgroup_free(M.cg);
	}
	if (M.spec)
		remove_run_files();
	json_t *j =
		json_pack("{s:s,s:i,s:i}", "error", err->msg, "code", err->code ? err->code : EIO,
			  "status", err->status ? err->status : 500);
	write_status(j);
	json_decref(j);
	_exit(1);
}

static int monitor_run(int attach_fd, int net_fd);

static int read_spec(struct shoal_err *err)
{
	struct stat st;
	if (fstat(3, &st) < 0)
		return shoal_err_errno(err, errno, "reading the container spec");
	if (st.st_size <= 0 || st.st_size > (off_t)RT_SPEC_MAX)
		return shoal_err_set(err, EINVAL, "bad container spec size");
	char *text = malloc((size_t)st.st_size);
	if (!text)
		return shoal_err_errno(err, ENOMEM, "reading the container spec");
	ssize_t n = pread(3, text, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		free(text);
		return shoal_err_errno(err, n < 0 ? errno : EIO, "reading the container spec");
	}
	json_error_t jerr;
	json_t *root = json_loadb(text, (size_t)n, 0, &jerr);
	free(text);
	close(3);
	if (!root)
		return shoal_err_set(err, EINVAL, "bad container spec: %s", jerr.text);
	int r = rt_spec_from_json(root, &M.owned, err);
	json_decref(root);
	if (r < 0)
		return r;
	M.spec = &M.owned.spec;
	return 0;
}

static int listen_ctl(struct shoal_err *err)
{
	const struct rt_spec *s = M.spec;
	int r = mkdir_p(s->run_dir, 0711);
	if (r < 0)
		return shoal_err_errno(err, -r, "creating %s", s->run_dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int dfd = -EBADF;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ctl.sock", s->run_dir);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		dfd = open(s->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return shoal_err_errno(err, errno, "opening %s", s->run_dir);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/ctl.sock", dfd);
	}
	unlink(sa.sun_path);
	M.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (M.listen_fd < 0)
		return shoal_err_errno(err, errno, "socket");
	if (bind(M.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return shoal_err_errno(err, errno, "binding %s/ctl.sock", s->run_dir);
	if (listen(M.listen_fd, 64) < 0)
		return shoal_err_errno(err, errno, "listen");
	char p[PATH_MAX], pid[32];
	snprintf(p, sizeof(p), "%s/monitor.pid", s->run_dir);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	r = write_file_atomic(p, pid, strlen(pid), 0644);
	if (r < 0)
		return shoal_err_errno(err, -r, "writing %s", p);
	return 0;
}

static int open_pty(int *ret_master, int *ret_slave, struct shoal_err *err)
{
	_cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return shoal_err_errno(err, errno, "opening a pseudo terminal");
	if (grantpt(m) < 0 || unlockpt(m) < 0)
		return shoal_err_errno(err, errno, "unlocking the pseudo terminal");
	int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (peer < 0)
		return shoal_err_errno(err, errno, "opening the terminal's slave side");
	/* A size until the client sends its own: programs that ask before the
	 * first resize see 24x80 rather than 0x0. */
	struct winsize ws = {.ws_row = 24, .ws_col = 80};
	ioctl(m, TIOCSWINSZ, &ws);
	*ret_master = TAKE_FD(m);
	*ret_slave = peer;
	return 0;
}

int mon_stdio_create(bool tty, bool open_stdin, int child[3], int *ret_out, int *ret_err,
		     int *ret_in, struct shoal_err *err)
{
	if (tty) {
		int m = -1, s = -1;
		int r = open_pty(&m, &s, err);
		if (r < 0)
			return r;
		child[0] = child[1] = child[2] = s;
		fd_set_nonblock(m, true);
		*ret_out = m;
		*ret_err = -1;
		*ret_in = open_stdin ? m : -1;
		return 0;
	}
	int po[2], pe[2], pi[2] = {-1, -1};
	if (pipe2(po, O_CLOEXEC) < 0)
		return shoal_err_errno(err, errno, "pipe");
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return shoal_err_errno(err, errno, "pipe");
	}
	if (open_stdin) {
		if (pipe2(pi, O_CLOEXEC) < 0) {
			close(po[0]);
			close(po[1]);
			close(pe[0]);
			close(pe[1]);
			return shoal_err_errno(err, errno, "pipe");
		}
		fd_set_nonblock(pi[1], true);
	} else {
		pi[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	fd_set_nonblock(po[0], true);
	fd_set_nonblock(pe[0], true);
	child[0] = pi[0];
	child[1] = po[1];
	child[2] = pe[1];
	*ret_out = po[0];
	*ret_err = pe[0];
	*ret_in = pi[1];
	return 0;
}

void mon_stdio_close_child(int child[3])
{
	close(child[0]);
	if (child[1] != child[0])
		close(child[1]);
	if (child[2] != child[0] && child[2] != child[1])
		close(child[2]);
}

/* Reads one record from the child's error pipe: 1 for the ready record (its
 * namespaces are made), 0 at EOF (the child exec'd or died), < 0 for an error
 * the child reported. */
static int child_report(int fd, struct shoal_err *err)
{
	struct rt_child_err ce;
	ssize_t n;
	do {
		n = read(fd, &ce, sizeof(ce));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return shoal_err_errno(err, errno, "reading from the container process");
	if (n == 0)
		return 0;
	if ((size_t)n != sizeof(ce))
		return shoal_err_set(err, EPROTO, "short report from the container process");
	if (ce.code == 0)
		return 1;
	ce.msg[sizeof(ce.msg) - 1] = '\0';
	return shoal_err_set_status(err, ce.status ? ce.status : 500, ce.code, "%s", ce.msg);
}

pid_t mon_fork_in_cgroup(uint64_t flags, bool *ret_in_v2)
{
	_cleanup_close_ int cgfd = M.cg ? rt_cgroup_v2_fd(M.cg) : -EBADF;
	if (cgfd >= 0) {
		struct clone_args ca = {
			.flags = flags | CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cgfd,
		};
		long pid = syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid >= 0) {
			*ret_in_v2 = true;
			return (pid_t)pid;
		}
		if (errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EOPNOTSUPP)
			return -1;
	}
	*ret_in_v2 = false;
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
}

/* Forks the container's first process into a new pid namespace. It makes its
 * other namespaces and the root file system while the monitor goes on with
 * start_finish(). */
static int start_begin(struct shoal_err *err)
{
	const struct rt_spec *s = M.spec;
	int r;

	r = rt_caps_compute(s->cap_add, s->cap_drop, s->privileged, &M.caps, err);
	if (r < 0) {
		if (err)
			err->status = 400;
		return r;
	}
	M.seccomp_path = !s->privileged && !s->seccomp_unconfined ? s->seccomp_path : NULL;

	/* With a tty the child opens the terminal in its own devpts and sends us
	 * the master side over console[0]. */
	int child_stdio[3] = {-1, -1, -1}, console[2] = {-1, -1};
	if (s->tty) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, console) < 0)
			return shoal_err_errno(err, errno, "socketpair");
		child_stdio[0] = child_stdio[1] = child_stdio[2] = console[1];
	} else {
		r = mon_stdio_create(false, s->open_stdin, child_stdio, &M.ctr_out, &M.ctr_err,
				     &M.ctr_in, err);
		if (r < 0)
			return r;
	}
	_cleanup_close_ int net_fd = -EBADF;
	if (s->net_mode == RT_NET_FD) {
		if (M.net_fd < 0) {
			mon_stdio_close_child(child_stdio);
			return shoal_err_set(err, EINVAL, "no network namespace to join");
		}
		net_fd = TAKE_FD(M.net_fd);
	} else if (s->net_mode == RT_NET_JOIN) {
		net_fd = open(s->net_path, O_RDONLY | O_CLOEXEC);
		if (net_fd < 0) {
			mon_stdio_close_child(child_stdio);
			return shoal_err_errno(err, errno, "opening network namespace %s",
					       s->net_path);
		}
	}
	int syncp[2], errp[2], cgp[2], ovl[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ovl) < 0) {
		mon_stdio_close_child(child_stdio);
		return shoal_err_errno(err, errno, "socketpair");
	}
	M.overlay_fd = ovl[0];
	if (pipe2(cgp, O_CLOEXEC) < 0) {
		mon_stdio_close_child(child_stdio);
		close(ovl[1]);
		return shoal_err_errno(err, errno, "pipe");
	}
	M.ctr_cg_fd = cgp[1];
	if (pipe2(syncp, O_CLOEXEC) < 0) {
		mon_stdio_close_child(child_stdio);
		close(cgp[0]);
		return shoal_err_errno(err, errno, "pipe");
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		mon_stdio_close_child(child_stdio);
		close(syncp[0]);
		close(syncp[1]);
		return shoal_err_errno(err, errno, "pipe");
	}

	int ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
	if (s->net_mode == RT_NET_NONE)
		ns_flags |= CLONE_NEWNET;
	bool in_v2 = false;
	pid_t pid = mon_fork_in_cgroup(CLONE_NEWPID, &in_v2);
	if (pid < 0) {
		r = shoal_err_errno(err, errno, "creating the container's pid namespace");
		mon_stdio_close_child(child_stdio);
		close(syncp[0]);
		close(syncp[1]);
		close(errp[0]);
		close(errp[1]);
		return r;
	}
	if (pid == 0) {
		rt_child_reset_signals();
		struct rt_child_args a = {
			.spec = s,
			.proc =
				{
					.argv = s->argv,
					.env = s->env,
					.cwd = s->cwd,
					.user = s->user,
					.tty = s->tty,
					.chown_tty = s->tty,
					.privileged = s->privileged,
					.caps = M.caps,
					.seccomp_path = M.seccomp_path,
				},
			.ns_flags = ns_flags,
			.sync_fd = syncp[0],
			.err_fd = errp[1],
			.stdio = {child_stdio[0], child_stdio[1], child_stdio[2]},
			.console_fd = console[1],
			.net_fd = net_fd,
			.cg = M.cg,
			.cg_fd = cgp[0],
			.overlay_fd = ovl[1],
			.in_v2 = in_v2,
		};
		rt_container_child(&a);
	}
	close(cgp[0]);
	close(ovl[1]);
	close(syncp[0]);
	close(errp[1]);
	mon_stdio_close_child(child_stdio);
	M.console_fd = console[0];
	M.ctr_pid = pid;
	M.ctr_ns_flags = ns_flags;
	M.ctr_sync_fd = syncp[1];
	M.ctr_err_fd = errp[0];
	return 0;
}

/* The container's namespaces, held until its exit has been reported: when the
 * last process of a namespace exits it tears the namespace down (unmounting
 * every mount, for one) before its parent hears of the exit. */
static void hold_namespaces(void)
{
	static const struct {
		int flag;
		const char *name;
	} ns[] = {
		{CLONE_NEWNS, "mnt"},
		{CLONE_NEWNET, "net"},
		{CLONE_NEWIPC, "ipc"},
		{CLONE_NEWUTS, "uts"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ns) && i < ARRAY_SIZE(M.ns_fds); i++) {
		if (!(M.ctr_ns_flags & ns[i].flag))
			continue;
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)M.ctr_pid, ns[i].name);
		M.ns_fds[i] = open(p, O_RDONLY | O_CLOEXEC);
	}
}

static void release_namespaces(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(M.ns_fds); i++) {
		if (M.ns_fds[i] >= 0)
			close(M.ns_fds[i]);
		M.ns_fds[i] = -1;
	}
}

/* The master side of the container's terminal, sent by the child before it
 * exec'd. */
static int console_receive(struct shoal_err *err)
{
	int m = fd_recv(M.console_fd, MSG_DONTWAIT);
	close(M.console_fd);
	M.console_fd = -1;
	if (m < 0)
		return shoal_err_set(err, EPROTO, "the container process sent no terminal");
	fd_set_nonblock(m, true);
	M.ctr_out = m;
	M.ctr_in = M.spec->open_stdin ? m : -1;
	return 0;
}

/* Waits until the child has made its namespaces, holds them, gives the go
 * (the child takes it once its setup is done) and waits for the exec (or its
 * error). */
static int start_finish(struct shoal_err *err)
{
	int r = child_report(M.ctr_err_fd, err);
	if (r == 0)
		r = shoal_err_set(err, EIO, "the container process exited during setup");
	if (r < 0)
		return r;
	hold_namespaces();
	char go = 'g';
	ssize_t n;
	do {
		n = write(M.ctr_sync_fd, &go, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1)
		return shoal_err_errno(err, errno, "starting the container process");
	close(M.ctr_sync_fd);
	M.ctr_sync_fd = -1;
	r = child_report(M.ctr_err_fd, err);
	close(M.ctr_err_fd);
	M.ctr_err_fd = -1;
	if (r < 0)
		return r;
	if (r > 0)
		return shoal_err_set(err, EPROTO, "unexpected report from the container process");
	if (M.console_fd >= 0 && (r = console_receive(err)) < 0)
		return r;
	M.started_at = now_ns();
	M.running = true;
	return 0;
}

static struct rt_cgroup_limits spec_limits(const struct rt_spec *s)
{
	return (struct rt_cgroup_limits){
		.memory = s->memory,
		.memory_swap = s->memory_swap,
		.nano_cpus = s->nano_cpus,
		.cpu_shares = s->cpu_shares,
		.pids_limit = s->pids_limit,
	};
}

static const char *cgroup_parent(void)
{
	return M.spec->cgroup_parent ? M.spec->cgroup_parent : "shoal";
}

/* The v2 cgroup, before the clone that puts the child in it. */
static int cgroup_create(struct shoal_err *err)
{
	struct rt_cgroup_limits lim = spec_limits(M.spec);
	return rt_cgroup_create_first(cgroup_parent(), M.spec->id, &lim, &M.cg, err);
}

/* The other hierarchies and the limits, while the child sets up; then the
 * child may join them. */
static int cgroup_finish(struct shoal_err *err)
{
	struct rt_cgroup_limits lim = spec_limits(M.spec);
	int r = rt_cgroup_create_rest(M.cg, cgroup_parent(), &lim, err);
	if (r < 0)
		return r;
	char c = 'c';
	ssize_t n;
	do {
		n = write(M.ctr_cg_fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1)
		return shoal_err_errno(err, errno, "starting the container process");
	close(M.ctr_cg_fd);
	M.ctr_cg_fd = -1;
	return 0;
}

/* The container's overlay, mounted here (detached) while the child sets up,
 * and sent to it; without one (an error: the child's own mount reports it)
 * the child mounts it itself. */
static void overlay_send(void)
{
	_cleanup_close_ int m = rt_overlay_fsmount(M.spec, NULL);
	char c = m >= 0 ? 'm' : 'n';
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (m >= 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &m, sizeof(int));
	}
	while (sendmsg(M.overlay_fd, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	close(M.overlay_fd);
	M.overlay_fd = -1;
}

/*
 * Zygote mode ("shoal-monitor --zygote", the socket on fd 3): a process the
 * agent starts once and keeps, so that a container start costs a fork of this
 * small process instead of an exec of the monitor. Each message carries the
 * spec memfd, the status socket and, when set, the attach socket and the
 * network namespace (msg[0] 'a' and msg[1] 'n' say which); the zygote forks,
 * and the child becomes that container's monitor exactly as an exec'd one
 * would after its own fork. The zygote goes when the agent closes its end.
 */
#define ZYGOTE_MSG_ATTACH 'a'
#define ZYGOTE_MSG_NET	  'n'

static int zygote_main(void)
{
	fcntl(3, F_SETFD, FD_CLOEXEC);
	close_range(4, ~0U, 0);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0)
		_exit(0);
	setsid();
	/* Work every monitor would repeat, done once here and inherited: the
	 * cgroup layout (parsing mountinfo costs about as much as the mkdirs),
	 * the last capability, jansson's hash seed (read from /dev/urandom). */
	enum rt_cgroup_layout layout;
	(void)rt_cgroup_detect(&layout, NULL);
	(void)rt_cap_last();
	json_object_seed(0);
	/* Monitors are reaped by the kernel while the zygote is their parent;
	 * they reset this before anything of theirs runs. */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		char msg[8];
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} u;
		memset(msg, 0, sizeof(msg));
		struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg)};
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = u.buf,
			.msg_controllen = sizeof(u.buf),
		};
		ssize_t n = recvmsg(3, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		int fds[4] = {-1, -1, -1, -1};
		size_t nfds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (nfds < ARRAY_SIZE(fds))
					fds[nfds++] = fd;
				else
					close(fd);
			}
		}
		bool attach = msg[0] == ZYGOTE_MSG_ATTACH, net = msg[1] == ZYGOTE_MSG_NET;
		if (nfds == 2u + attach + net && (mh.msg_flags & MSG_CTRUNC) == 0) {
			pid = fork();
			if (pid == 0) {
				signal(SIGCHLD, SIG_DFL);
				signal(SIGPIPE, SIG_DFL);
				/* dup3 onto 3..6 from fds above them; the pipe to the
				 * agent goes with close_range below. */
				int hi[4];
				for (size_t i = 0; i < nfds; i++)
					hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
				for (size_t i = 0; i < nfds; i++)
					if (hi[i] < 0 || dup3(hi[i], 3 + (int)i, O_CLOEXEC) < 0)
						_exit(1);
				close_range(3 + (unsigned)nfds, ~0U, 0);
				return monitor_run(attach ? 5 : -1, net ? 5 + attach : -1);
			}
		}
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--zygote") == 0)
		return zygote_main();

	int attach_fd = -1, net_fd = -1;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--attach-fd=5") == 0)
			attach_fd = 5;
		else if (strncmp(argv[i], "--net-fd=", 9) == 0)
			net_fd = atoi(argv[i] + 9);
	}
	if (net_fd >= 0 && net_fd != (attach_fd >= 0 ? 6 : 5))
		return 1;
	int last = net_fd >= 0 ? net_fd : attach_fd >= 0 ? attach_fd : 4;
	for (int fd = 3; fd <= last; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* Nothing else the agent's parent left open may stay with us for the
	 * container's lifetime (a test harness's output pipe, say). */
	close_range((unsigned)last + 1, ~0U, 0);

	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0)
		_exit(0);
	return monitor_run(attach_fd, net_fd);
}

/* The monitor proper, detached from the agent: spec on fd 3, status on fd 4,
 * the attached client's socket on attach_fd and the network namespace to
 * join on net_fd (or -1). */
static int monitor_run(int attach_fd, int net_fd)
{
	struct shoal_err err = {0};
	int r;

	M.status_fd = 4;
	M.net_fd = net_fd;
	setsid();

	/* The agent stops a container through the control socket; a signal sent
	 * to the monitor (SIGTERM at shutdown) must not take the container down. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	umask(022);

	if (read_spec(&err) < 0)
		fail_start(&err);
	/* The v2 cgroup first, so that the child is born in it; it then sets up
	 * the container's namespaces and root file system while the monitor makes
	 * the rest of its cgroups, the control socket and the log. */
	if (cgroup_create(&err) < 0)
		fail_start(&err);
	if (start_begin(&err) < 0 || cgroup_finish(&err) < 0)
		fail_start(&err);
	overlay_send();
	if (listen_ctl(&err) < 0)
		fail_start(&err);
	char logpath[PATH_MAX];
	snprintf(logpath, sizeof(logpath), "%s/%s-json.log", M.spec->bundle_dir, M.spec->id);
	r = rt_log_open(&M.log, logpath, M.spec->log_max_size, M.spec->log_max_files);
	if (r < 0) {
		shoal_err_errno(&err, -r, "opening %s", logpath);
		fail_start(&err);
	}
	/* Without the node's counter the container still logs, under the floor
	 * of free space only: a missing run file must not stop a start. */
	if (M.spec->log_usage_path && *M.spec->log_usage_path)
		rt_log_set_total(&M.log, M.spec->log_usage_path, M.spec->log_max_total);
	M.epfd = epoll_create1(EPOLL_CLOEXEC);
	M.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (M.epfd < 0 || M.sig_fd < 0) {
		shoal_err_errno(&err, errno, "setting up the monitor's event loop");
		fail_start(&err);
	}
	if (start_finish(&err) < 0)
		fail_start(&err);
	/* The client attached before start is registered before the loop first
	 * reads the container's output, so it sees every byte. */
	if (attach_fd >= 0)
		mon_adopt_attach(attach_fd);

	json_t *j = json_pack("{s:i,s:i,s:I}", "monitor_pid", (int)getpid(), "pid", (int)M.ctr_pid,
			      "started_at", (json_int_t)M.started_at);
	write_status(j);
	json_decref(j);

	return mon_loop();
}

/* Reads container output from fd and hands it to the log and the attached clients. */
void mon_ctr_output(int *fdp, enum rt_log_stream stream)
{
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(*fdp, readbuf, sizeof(readbuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* EOF, or EIO from a pty master whose slave is gone. */
			rt_log_flush(&M.log, stream, now_ns());
			mon_unwatch(*fdp);
			if (M.ctr_in == *fdp)
				M.ctr_in = -1;
			close(*fdp);
			*fdp = -1;
			return;
		}
		rt_log_write(&M.log, stream, readbuf, (size_t)n, now_ns());
		mon_fanout(stream == RT_LOG_STDERR ? RT_FRAME_STDERR : RT_FRAME_STDOUT, readbuf,
			   (size_t)n);
	}
}

void mon_finish(void)
{
	int64_t t = now_ns();
	rt_log_flush(&M.log, RT_LOG_STDOUT, t);
	rt_log_flush(&M.log, RT_LOG_STDERR, t);
	rt_log_close(&M.log);

	struct rt_exit e = {0};
	if (WIFSIGNALED(M.ctr_status))
		e.exit_code = 128 + WTERMSIG(M.ctr_status);
	else
		e.exit_code = WEXITSTATUS(M.ctr_status);
	e.oom_killed = M.cg && rt_cgroup_oom_killed(M.cg);
	e.finished_at_ns = t;

	json_t *j = rt_exit_to_json(&e);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	M.exit_json = text ? text : strdup("{}");
	if (!M.exit_json)
		_exit(1);
	/* On disk before anyone hears: a waiter, or a client that can no longer
	 * connect, finds it there. */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/exit.json", M.spec->bundle_dir);
	write_file_atomic(p, M.exit_json, strlen(M.exit_json), 0644);
	/* Waiters hear of the exit next: the namespaces, the cgroup and the run
	 * files are the monitor's to clean up, and nobody needs to wait for that. */
	mon_clients_finish(M.exit_json);
	release_namespaces();
	if (M.cg) {
		rt_cgroup_destroy(M.cg, NULL);
		rt_cgroup_free(M.cg);
		M.cg = NULL;
	}
	/* A client that connected before the unlink is in the listen queue: the
	 * loop answers it with the exit record before the monitor goes. */
	remove_run_files();
	M.linger_until = mono_ns() + MON_LINGER_NS;
}
