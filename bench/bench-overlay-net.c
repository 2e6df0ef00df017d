// SPDX-License-Identifier: Apache-2.0
/* What `shoal bench overlay` does inside the node namespaces: commands run
 * there, and rtnetlink sockets made there that watch and dump their FDB and
 * neighbour tables. The process stays where it is: a command's child enters
 * the namespace before exec, and a socket made while the calling thread
 * stands in a namespace for a moment belongs to it for its life. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "bench/bench-overlay-internal.h"
#include "bench/bench-util.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define OUT_MAX	   (4u << 20)
#define ERR_TAIL   400
#define NL_RCVBUF  (16 << 20)
#define NL_BUFSIZE (64 * 1024)

static int enter(const char *netns)
{
	if (!netns || !*netns)
		return 0;
	int fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Reads fd to its end into a growing buffer (at most OUT_MAX). */
static char *slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	for (;;) {
		if (len + 1 == cap) {
			if (cap >= OUT_MAX)
				break;
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

int bov_run(const char *netns, char *const argv[], char **ret_out, struct shoal_err *err)
{
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, stp[2] = {-1, -1};
	if ((ret_out && pipe2(out, O_CLOEXEC) < 0) || pipe2(errp, O_CLOEXEC) < 0 ||
	    pipe2(stp, O_CLOEXEC) < 0) {
		int e = errno;
		int *fds[] = {out, errp, stp};
		for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
			if (fds[i][0] >= 0) {
				close(fds[i][0]);
				close(fds[i][1]);
			}
		return shoal_err_errno(err, e, "pipe");
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		if (out[0] >= 0) {
			close(out[0]);
			close(out[1]);
		}
		close(errp[0]);
		close(errp[1]);
		close(stp[0]);
		close(stp[1]);
		return shoal_err_errno(err, e, "fork");
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(nul, 0);
		dup2(ret_out ? out[1] : nul, 1);
		dup2(errp[1], 2);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		/* what failed before the exec, on a pipe the exec closes: an exit
		 * status could be the command's own */
		char what = 'n';
		if (enter(netns) == 0) {
			execvp(argv[0], argv);
			what = 'x';
		}
		int e = errno;
		if (write(stp[1], &what, 1) == 1)
			write_all(stp[1], &e, sizeof(e));
		_exit(127);
	}
	if (ret_out)
		close(out[1]);
	close(errp[1]);
	close(stp[1]);
	/* stdout first: a command that fills the stderr pipe meanwhile (64 KiB)
	 * is not one this bench runs */
	_cleanup_free_ char *o = ret_out ? slurp(out[0]) : NULL;
	_cleanup_free_ char *e = slurp(errp[0]);
	if (ret_out)
		close(out[0]);
	close(errp[0]);
	char what = 0;
	int cerr = 0;
	if (read(stp[0], &what, 1) == 1 && read(stp[0], &cerr, sizeof(cerr)) != sizeof(cerr))
		cerr = EIO;
	close(stp[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (what == 'n')
		return shoal_err_errno(err, cerr, "%s: entering the network namespace %s", argv[0],
				       netns);
	if (what == 'x')
		return shoal_err_errno(err, cerr, "running %s", argv[0]);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		if (ret_out) {
			if (!o)
				return shoal_err_set(err, ENOMEM, "out of memory");
			*ret_out = TAKE_PTR(o);
		}
		return 0;
	}
	char line[256] = "";
	for (int i = 0; argv[i]; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s", i ? " " : "",
			 argv[i]);
	size_t el = e ? strlen(e) : 0;
	while (el && (e[el - 1] == '\n' || e[el - 1] == ' '))
		e[--el] = '\0';
	return shoal_err_set(err, EIO, "%s failed (%s %d)%s%s", line,
			     WIFEXITED(st) ? "exit status" : "signal",
			     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), el ? ": " : "",
			     el > ERR_TAIL ? e + el - ERR_TAIL : (e ? e : ""));
}

int bov_runf(const char *netns, struct shoal_err *err, const char *fmt, ...)
{
	char line[1024], *argv[64];
	va_list ap;
	va_start(ap, fmt);
	int n = bench_argv_vformat(line, sizeof(line), argv, 64, fmt, ap);
	va_end(ap);
	if (!n)
		return shoal_err_set(err, EINVAL, "an empty command");
	return bov_run(netns, argv, NULL, err);
}

pid_t bov_spawn(const char *netns, char *const argv[], const char *log)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	bench_child_prepare(log, netns);
	execvp(argv[0], argv);
	_exit(127);
}

void bov_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		pid_t r = waitpid(pid, NULL, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int bov_nl_socket(const char *netns, uint32_t groups, struct shoal_err *err)
{
	_cleanup_close_ int back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (back < 0)
		return shoal_err_errno(err, errno, "opening this thread's network namespace");
	int r = enter(netns);
	if (r < 0)
		return shoal_err_errno(err, -r, "entering %s", netns);
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	int e = errno;
	if (setns(back, CLONE_NEWNET) < 0) {
		/* a thread left in another namespace would make every later
		 * socket there: nothing after this can be trusted */
		abort();
	}
	if (fd < 0)
		return shoal_err_errno(err, e, "an rtnetlink socket in %s", netns);
	if (groups) {
		int size = NL_RCVBUF;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = groups};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		return shoal_err_errno(err, e, "binding an rtnetlink socket in %s", netns);
	}
	return fd;
}

static void parse_neigh(const struct nlmsghdr *h, bov_neigh_cb cb, void *arg)
{
	if (h->nlmsg_type != RTM_NEWNEIGH && h->nlmsg_type != RTM_DELNEIGH)
		return;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ndmsg)))
		return;
	const struct ndmsg *nd = NLMSG_DATA(h);
	if (nd->ndm_family != AF_BRIDGE && nd->ndm_family != AF_INET)
		return;
	struct bov_neigh n = {.del = h->nlmsg_type == RTM_DELNEIGH,
			      .fdb = nd->ndm_family == AF_BRIDGE,
			      .ifindex = nd->ndm_ifindex,
			      .state = nd->ndm_state};
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*nd));
	for (const struct rtattr *a =
		     (const struct rtattr *)((const char *)nd + NLMSG_ALIGN(sizeof(*nd)));
	     RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
			memcpy(n.mac, RTA_DATA(a), 6);
			n.has_mac = true;
		} else if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) == 4) {
			memcpy(&n.dst, RTA_DATA(a), 4);
			n.has_dst = true;
		}
	}
	cb(&n, arg);
}

int bov_nl_drain(int fd, bov_neigh_cb cb, void *arg)
{
	_cleanup_free_ char *buf = malloc(NL_BUFSIZE);
	if (!buf)
		return -ENOMEM;
	int ret = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, NL_BUFSIZE, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return ret;
			if (errno == ENOBUFS) {
				ret = -ENOBUFS;
				continue;
			}
			return -errno;
		}
		if (n == 0)
			return ret;
		int len = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len))
			parse_neigh(h, cb, arg);
	}
}

static int dump_family(int fd, uint8_t family, bov_neigh_cb cb, void *arg)
{
	static uint32_t seq;
	struct {
		struct nlmsghdr h;
		struct ndmsg nd;
	} req = {
		.h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
		      .nlmsg_type = RTM_GETNEIGH,
		      .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		      .nlmsg_seq = ++seq},
		.nd = {.ndm_family = family},
	};
	if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
		return -errno;
	_cleanup_free_ char *buf = malloc(NL_BUFSIZE);
	if (!buf)
		return -ENOMEM;
	for (int idle = 0; idle < 500;) {
		ssize_t n = recv(fd, buf, NL_BUFSIZE, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* a dump answers at once; the socket is non-blocking */
			struct timespec ts = {0, 2 * 1000000L};
			nanosleep(&ts, NULL);
			idle++;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		int len = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != req.h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error ? e->error : -EIO;
			}
			parse_neigh(h, cb, arg);
		}
	}
	return -ETIMEDOUT;
}

int bov_nl_dump(const char *netns, bov_neigh_cb cb, void *arg, struct shoal_err *err)
{
	_cleanup_close_ int fd = bov_nl_socket(netns, 0, err);
	if (fd < 0)
		return fd;
	int r = dump_family(fd, AF_BRIDGE, cb, arg);
	if (r == 0)
		r = dump_family(fd, AF_INET, cb, arg);
	if (r < 0)
		return shoal_err_errno(err, -r, "dumping the neighbour tables of %s", netns);
	return 0;
}
