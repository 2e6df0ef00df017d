// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/caps.h"
#include "runtime/cgroup.h"
#include "runtime/runtime-internal.h"
#include "runtime/seccomp.h"

#define ENV_MAX 4096

void rt_child_fail(int fd, const struct shoal_err *err)
{
	struct rt_child_err m = {.code = err->code ? err->code : EIO, .status = err->status};
	snprintf(m.msg, sizeof(m.msg), "%s", err->msg);
	ssize_t n;
	do {
		n = write(fd, &m, sizeof(m));
	} while (n < 0 && errno == EINTR);
	/* As a shell reports them: 127 for a command not found, 126 otherwise. */
	_exit(m.code == ENOENT ? 127 : 126);
}

void rt_child_reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	}
	/* Everything the monitor holds is closed at execve. */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
}

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void raise_nofile(void)
{
	/* Docker's default; kept as is when the kernel's nr_open is lower. */
	struct rlimit rl = {1048576, 1048576};
	setrlimit(RLIMIT_NOFILE, &rl);
}

int rt_proc_exec(const struct rt_proc *p, struct shoal_err *err)
{
	struct rt_user u;
	int r = rt_user_resolve(p->user, "/etc/passwd", "/etc/group", &u, err);
	if (r < 0)
		return r;

	/* The environment, with HOME, PATH (and TERM for a tty) as Docker adds them. */
	static const char *envp[ENV_MAX];
	static char home[PATH_MAX + 8];
	size_t n = 0;
	for (const char *const *e = p->env; e && *e; e++) {
		if (n >= ENV_MAX - 4)
			return shoal_err_set_status(err, 400, E2BIG,
						    "too many environment variables");
		envp[n++] = *e;
	}
	if (!rt_env_get(p->env, "PATH"))
		envp[n++] = "PATH=" RT_DEFAULT_PATH;
	if (!rt_env_get(p->env, "HOME")) {
		snprintf(home, sizeof(home), "HOME=%s", u.home);
		envp[n++] = home;
	}
	if (p->tty && !rt_env_get(p->env, "TERM"))
		envp[n++] = "TERM=xterm";
	envp[n] = NULL;

	const char *cwd = p->cwd && *p->cwd ? p->cwd : "/";
	if (chdir(cwd) < 0) {
		if (errno != ENOENT || mkdir_parents(cwd) < 0 || chdir(cwd) < 0)
			return shoal_err_set_status(
				err, 400, errno,
				"chdir to cwd (\"%s\") set in config.json failed: %s", cwd,
				strerror(errno));
	}
	raise_nofile();

	/* As runc does: the user owns its terminal (the group stays tty). */
	if (p->chown_tty && fchown(0, u.uid, (gid_t)-1) < 0)
		return shoal_err_errno(err, errno, "giving the terminal to uid %u",
				       (unsigned)u.uid);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return shoal_err_errno(err, errno, "prctl(PR_SET_KEEPCAPS)");
	if (setgroups(u.ngroups, u.groups) < 0)
		return shoal_err_errno(err, errno, "setgroups");
	if (setresgid(u.gid, u.gid, u.gid) < 0)
		return shoal_err_errno(err, errno, "setting gid %u", (unsigned)u.gid);
	if (setresuid(u.uid, u.uid, u.uid) < 0)
		return shoal_err_errno(err, errno, "setting uid %u", (unsigned)u.uid);
	r = rt_caps_apply(p->caps, err);
	if (r < 0)
		return r;

	const char *path_env = rt_env_get(envp, "PATH");
	char exe[PATH_MAX];
	r = rt_lookup_exec(p->argv[0], path_env, exe, sizeof(exe), err);
	if (r < 0)
		return r;

	if (!p->privileged) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return shoal_err_errno(err, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
		if (p->seccomp_path) {
			r = rt_seccomp_load_file(p->seccomp_path, err);
			if (r < 0)
				return r;
		}
	}
	execve(exe, (char *const *)p->argv, (char *const *)envp);
	if (errno == ENOENT)
		return shoal_err_set_status(err, 400, ENOENT,
					    "exec: \"%s\": stat %s: no such file or directory",
					    p->argv[0], exe);
	if (errno == EACCES)
		return shoal_err_set_status(err, 400, EACCES, "exec: \"%s\": permission denied",
					    p->argv[0]);
	return shoal_err_errno(err, errno, "exec %s", exe);
}

int rt_proc_pin_seccomp(struct rt_proc *p, char *buf, size_t len, struct shoal_err *err)
{
	if (!p->seccomp_path || p->privileged)
		return 0;
	int fd = open(p->seccomp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shoal_err_errno(err, errno, "opening seccomp filter %s", p->seccomp_path);
	snprintf(buf, len, "/proc/self/fd/%d", fd);
	p->seccomp_path = buf;
	return 0;
}

static int loopback_up(struct shoal_err *err)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return shoal_err_errno(err, errno, "socket");
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return shoal_err_errno(err, errno, "reading flags of lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return shoal_err_errno(err, errno, "bringing lo up");
	return 0;
}

static int setup_stdio(const int stdio[3], bool tty, struct shoal_err *err)
{
	if (setsid() < 0)
		return shoal_err_errno(err, errno, "setsid");
	for (int i = 0; i < 3; i++) {
		if (dup2(stdio[i], i) < 0)
			return shoal_err_errno(err, errno, "dup2");
	}
	if (tty && ioctl(0, TIOCSCTTY, 0) < 0)
		return shoal_err_errno(err, errno, "setting the controlling terminal");
	return 0;
}

/* Sends fd over a SOCK_SEQPACKET socket (one byte and the fd). */
static int send_fd(int sock, int fd, struct shoal_err *err)
{
	int r = fd_send(sock, 'f', fd);
	return r < 0 ? shoal_err_errno(err, -r, "passing a descriptor") : 0;
}

/* The descriptor sent over sock (the overlay the monitor mounted for us, the
 * terminal the setup helper opened), or -1 when none came. Closes sock. */
static int recv_fd(int sock)
{
	int fd = fd_recv(sock, 0);
	close(sock);
	return fd < 0 ? -1 : fd;
}

void rt_child_ready(int fd)
{
	struct rt_child_err m = {0};
	ssize_t n;
	do {
		n = write(fd, &m, sizeof(m));
	} while (n < 0 && errno == EINTR);
}

static void wait_byte(int fd, char want)
{
	char c;
	ssize_t n;
	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1 || c != want)
		_exit(127);
	close(fd);
}

/*
 * The root file system is set up by a helper (pid 2 of the container, in all
 * of its namespaces, gone before anything of the image runs) while pid 1
 * joins the cgroups and loads its seccomp filter, which costs the kernel a
 * few hundred microseconds to check and compile: the two overlap instead of
 * adding up. The helper's pivot_root moves pid 1's root along with its own.
 * joined: pid 1 is in its cgroups (their files go with the pivot); slave: the
 * terminal's slave side for pid 1. Reports errors on err_fd, exits 0 when done.
 */
static __attribute__((noreturn)) void setup_helper(const struct rt_child_args *a, int joined,
						   int slave)
{
	struct shoal_err err = {0};
	const struct rt_spec *s = a->spec;
	bool tty = a->console_fd >= 0;
	if (!s->bundle_ready && rt_bundle_prepare(s, &err) < 0)
		rt_child_fail(a->err_fd, &err);
	int overlay = recv_fd(a->overlay_fd);
	wait_byte(joined, 'j');
	int pty_master = -1, pty_slave = -1;
	if (rt_rootfs_setup(s, overlay, tty ? &pty_master : NULL, &pty_slave, &err) < 0)
		rt_child_fail(a->err_fd, &err);
	if (tty &&
	    (send_fd(a->console_fd, pty_master, &err) < 0 || send_fd(slave, pty_slave, &err) < 0))
		rt_child_fail(a->err_fd, &err);
	const char *hn = s->hostname && *s->hostname ? s->hostname : NULL;
	if (hn && sethostname(hn, strlen(hn)) < 0) {
		shoal_err_errno(&err, errno, "sethostname %s", hn);
		rt_child_fail(a->err_fd, &err);
	}
	if (s->domainname && *s->domainname &&
	    setdomainname(s->domainname, strlen(s->domainname)) < 0) {
		shoal_err_errno(&err, errno, "setdomainname %s", s->domainname);
		rt_child_fail(a->err_fd, &err);
	}
	if (s->net_mode == RT_NET_NONE && loopback_up(&err) < 0)
		rt_child_fail(a->err_fd, &err);
	_exit(0);
}

void rt_container_child(const struct rt_child_args *a)
{
	struct shoal_err err = {0};
	const struct rt_spec *s = a->spec;

	bool tty = a->console_fd >= 0;
	if (!tty && setup_stdio(a->stdio, false, &err) < 0)
		rt_child_fail(a->err_fd, &err);
	/* The namespaces are made here rather than by clone(): building them
	 * (a network namespace above all) then overlaps with the monitor's own
	 * setup instead of delaying it. */
	if (unshare(a->ns_flags) < 0) {
		shoal_err_errno(&err, errno, "creating the container's namespaces");
		rt_child_fail(a->err_fd, &err);
	}
	if ((s->net_mode == RT_NET_JOIN || s->net_mode == RT_NET_FD) &&
	    setns(a->net_fd, CLONE_NEWNET) < 0) {
		shoal_err_errno(&err, errno, "joining network namespace %s",
				s->net_mode == RT_NET_JOIN ? s->net_path : "(pool)");
		rt_child_fail(a->err_fd, &err);
	}
	/* The namespaces are final: the monitor can hold them and send the go,
	 * which will be waiting for us once the rest is set up. */
	rt_child_ready(a->err_fd);

	/* The filter program, read while the file is in view. */
	static struct sock_filter prog[RT_SECCOMP_FILE_MAX / sizeof(struct sock_filter)];
	size_t prog_len = 0;
	struct rt_proc proc = a->proc;
	if (proc.seccomp_path && !proc.privileged &&
	    rt_seccomp_read_file(proc.seccomp_path, prog, sizeof(prog), &prog_len, &err) < 0)
		rt_child_fail(a->err_fd, &err);
	proc.seccomp_path = NULL;

	/* pivot_root moves a root or cwd that is the old root: be there. */
	if (chdir("/") < 0) {
		shoal_err_errno(&err, errno, "chdir /");
		rt_child_fail(a->err_fd, &err);
	}
	int jp[2], sp[2] = {-1, -1};
	if (pipe2(jp, O_CLOEXEC) < 0 ||
	    (tty && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)) {
		shoal_err_errno(&err, errno, "pipe");
		rt_child_fail(a->err_fd, &err);
	}
	pid_t helper = fork();
	if (helper < 0) {
		shoal_err_errno(&err, errno, "fork");
		rt_child_fail(a->err_fd, &err);
	}
	if (helper == 0) {
		close(jp[1]);
		if (sp[0] >= 0)
			close(sp[0]);
		setup_helper(a, jp[0], sp[1]);
	}
	close(jp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	close(a->overlay_fd);
	if (tty)
		close(a->console_fd);

	/* Into the cgroups while their files are still in view (the helper waits
	 * with its pivot), once the monitor has made them all. */
	wait_byte(a->cg_fd, 'c');
	if (a->cg && rt_cgroup_join_self(a->cg, a->in_v2, &err) < 0)
		rt_child_fail(a->err_fd, &err);
	char j = 'j';
	if (write(jp[1], &j, 1) != 1)
		_exit(127);
	close(jp[1]);

	/* The syscalls left before the exec (credentials, capabilities, the
	 * terminal, execve) are all ones the filter allows. */
	if (prog_len > 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
			shoal_err_errno(&err, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
			rt_child_fail(a->err_fd, &err);
		}
		if (rt_seccomp_install(prog, prog_len, &err) < 0)
			rt_child_fail(a->err_fd, &err);
	}

	int st;
	while (waitpid(helper, &st, 0) < 0) {
		if (errno != EINTR)
			_exit(127);
	}
	/* A helper that failed has reported why. */
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		_exit(127);
	if (tty) {
		int slave = recv_fd(sp[0]);
		if (slave < 0 || setup_stdio((const int[3]){slave, slave, slave}, true, &err) < 0)
			rt_child_fail(a->err_fd, &err);
		if (slave > 2)
			close(slave);
	}

	/* Nothing of the image runs before the monitor holds our namespaces and
	 * serves the control socket and the log. */
	wait_byte(a->sync_fd, 'g');
	rt_proc_exec(&proc, &err);
	rt_child_fail(a->err_fd, &err);
}
