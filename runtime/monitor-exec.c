// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/caps.h"
#include "runtime/cgroup.h"
#include "runtime/monitor-internal.h"

/* Processes started in a running container ({"op":"exec"}). */

#define EXEC_MAX_ARGS 4096

static void exec_fail(struct mon_client *c, int code, const char *msg)
{
	mon_client_send(c, RT_FRAME_STDERR, msg, strlen(msg));
	mon_client_send(c, RT_FRAME_STDERR, "\n", 1);
	json_t *j = json_pack("{s:i,s:s}", "exit_code", code, "error", msg);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s) {
		mon_client_send(c, RT_FRAME_EXIT, s, strlen(s));
		free(s);
	}
	c->done = true;
}

static char **json_strv(json_t *a, bool *ok)
{
	*ok = true;
	if (!a || json_is_null(a))
		return NULL;
	if (!json_is_array(a) || json_array_size(a) > EXEC_MAX_ARGS) {
		*ok = false;
		return NULL;
	}
	char **v = NULL;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s || strv_push(&v, s) < 0) {
			strv_free(v);
			*ok = false;
			return NULL;
		}
	}
	return v;
}

static bool env_has_key(char *const *env, const char *kv)
{
	size_t kl = strcspn(kv, "=");
	for (; env && *env; env++)
		if (strncmp(*env, kv, kl) == 0 && (*env)[kl] == '=')
			return true;
	return false;
}

static void exec_free(struct mon_exec *e)
{
	for (struct mon_exec **p = &M.execs; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	int fds[] = {e->out, e->err, e->errpipe};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (fds[i] >= 0) {
			mon_unwatch(fds[i]);
			close(fds[i]);
		}
	}
	if (e->in >= 0 && e->in != e->out)
		close(e->in);
	if (e->client)
		e->client->exec = NULL;
	strv_free(e->argv);
	strv_free(e->env);
	free(e->in_pending.data);
	free(e);
}

static __attribute__((noreturn)) void exec_child(struct mon_exec *e, const char *user,
						 const char *cwd, bool privileged, bool in_v2,
						 int child[3], int errfd, int console)
{
	static const char *const ns[] = {"ipc", "uts", "net", "pid", "mnt"};
	static const int nstype[] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID,
				     CLONE_NEWNS};
	struct shoal_err err = {0};
	int nsfd[5];
	char filter[64];

	rt_child_reset_signals();
	uint64_t caps = M.caps;
	if (privileged && rt_caps_compute(NULL, NULL, true, &caps, &err) < 0)
		rt_child_fail(errfd, &err);
	struct rt_proc p = {
		.argv = (const char *const *)e->argv,
		.env = (const char *const *)e->env,
		.cwd = cwd,
		.user = user,
		.tty = e->tty,
		.chown_tty = e->tty,
		.privileged = privileged || M.spec->privileged,
		.caps = caps,
		.seccomp_path = privileged ? NULL : M.seccomp_path,
	};
	if (rt_proc_pin_seccomp(&p, filter, sizeof(filter), &err) < 0)
		rt_child_fail(errfd, &err);
	/* Cgroups first: their files are not visible from the container's mount namespace. */
	if (M.cg && rt_cgroup_join_self(M.cg, in_v2, &err) < 0)
		rt_child_fail(errfd, &err);
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		char nspath[64];
		snprintf(nspath, sizeof(nspath), "/proc/%d/ns/%s", (int)M.ctr_pid, ns[i]);
		nsfd[i] = open(nspath, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0) {
			shoal_err_errno(&err, errno, "opening %s", nspath);
			rt_child_fail(errfd, &err);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		if (setns(nsfd[i], nstype[i]) < 0) {
			shoal_err_errno(&err, errno, "joining the container's %s namespace", ns[i]);
			rt_child_fail(errfd, &err);
		}
		close(nsfd[i]);
	}
	/* A terminal from the container's devpts, its master for the monitor. */
	if (console >= 0) {
		int m, sl;
		if (rt_pty_open(&m, &sl, NULL, &err) < 0)
			rt_child_fail(errfd, &err);
		int sr = fd_send(console, 't', m);
		if (sr < 0) {
			shoal_err_errno(&err, -sr, "handing the terminal to the monitor");
			rt_child_fail(errfd, &err);
		}
		close(m);
		close(console);
		child[0] = child[1] = child[2] = sl;
	}
	/* Joining a pid namespace applies to children only. */
	pid_t pid = fork();
	if (pid < 0) {
		shoal_err_errno(&err, errno, "fork");
		rt_child_fail(errfd, &err);
	}
	if (pid == 0) {
		if (setsid() < 0) {
			shoal_err_errno(&err, errno, "setsid");
			rt_child_fail(errfd, &err);
		}
		for (int i = 0; i < 3; i++) {
			if (dup2(child[i], i) < 0) {
				shoal_err_errno(&err, errno, "dup2");
				rt_child_fail(errfd, &err);
			}
		}
		if (e->tty && ioctl(0, TIOCSCTTY, 0) < 0) {
			shoal_err_errno(&err, errno, "setting the controlling terminal");
			rt_child_fail(errfd, &err);
		}
		rt_proc_exec(&p, &err);
		rt_child_fail(errfd, &err);
	}
	/* Hold nothing of the monitor's: a copy of a stdin pipe here would keep the
	 * process from ever seeing EOF. */
	syscall(SYS_close_range, 0U, ~0U, 0);
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			_exit(126);
	}
	_exit(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
}

/* The terminal's master from the exec'd side: it comes within the time of a
 * fork and a few setns, so the monitor waits for it here (bounded); without
 * it (the exec failed) the error pipe tells the client why. */
static void console_receive(struct mon_exec *e, int sock, bool want_in)
{
	struct pollfd p = {.fd = sock, .events = POLLIN};
	if (poll(&p, 1, 5000) <= 0)
		return;
	int m = fd_recv(sock, MSG_DONTWAIT);
	if (m < 0)
		return;
	fd_set_nonblock(m, true);
	e->out = m;
	e->err = -1;
	e->in = want_in ? m : -1;
}

void mon_exec_start(struct mon_client *c, json_t *req)
{
	struct shoal_err err = {0};
	if (!M.running) {
		exec_fail(c, 126, "container is not running");
		return;
	}
	bool ok1, ok2;
	char **argv = json_strv(json_object_get(req, "argv"), &ok1);
	char **xenv = json_strv(json_object_get(req, "env"), &ok2);
	if (!ok1 || !ok2 || !argv || !argv[0]) {
		strv_free(argv);
		strv_free(xenv);
		exec_fail(c, 126, "exec needs a command (argv: a non-empty list of strings)");
		return;
	}
	/* The exec's own variables win over the container's. */
	char **env = xenv;
	for (const char *const *s = M.spec->env; s && *s; s++) {
		if (!env_has_key(xenv, *s) && strv_push(&env, *s) < 0)
			break;
	}
	const char *user = json_string_value(json_object_get(req, "user"));
	const char *cwd = json_string_value(json_object_get(req, "cwd"));
	if (!user || !*user)
		user = M.spec->user;
	if (!cwd || !*cwd)
		cwd = M.spec->cwd;
	bool tty = json_is_true(json_object_get(req, "tty"));
	bool want_in = json_is_true(json_object_get(req, "stdin"));
	bool privileged = json_is_true(json_object_get(req, "privileged"));

	struct mon_exec *e = calloc(1, sizeof(*e));
	if (!e) {
		strv_free(argv);
		strv_free(env);
		exec_fail(c, 126, "out of memory");
		return;
	}
	e->argv = argv;
	e->env = env;
	e->tty = tty;
	e->out = e->err = e->in = e->errpipe = -1;
	e->client = c;
	c->exec = e;
	e->next = M.execs;
	M.execs = e;

	/* With a tty the exec'd side opens the terminal in the container's
	 * devpts and sends us the master over console[0]. */
	int child[3] = {-1, -1, -1}, errp[2], console[2] = {-1, -1};
	if (tty) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, console) < 0) {
			exec_fail(c, 126, "socketpair failed");
			e->exited = true;
			return;
		}
	} else if (mon_stdio_create(false, want_in, child, &e->out, &e->err, &e->in, &err) < 0) {
		exec_fail(c, 126, err.msg);
		e->exited = true;
		return;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		if (tty) {
			close(console[0]);
			close(console[1]);
		}
		mon_stdio_close_child(child);
		exec_fail(c, 126, "pipe failed");
		e->exited = true;
		return;
	}
	bool in_v2 = false;
	pid_t pid = mon_fork_in_cgroup(0, &in_v2);
	if (pid < 0) {
		close(errp[0]);
		close(errp[1]);
		if (tty) {
			close(console[0]);
			close(console[1]);
		}
		mon_stdio_close_child(child);
		exec_fail(c, 126, "fork failed");
		e->exited = true;
		return;
	}
	if (pid == 0) {
		close(errp[0]);
		exec_child(e, user, cwd, privileged, in_v2, child, errp[1], console[1]);
	}
	close(errp[1]);
	if (tty) {
		close(console[1]);
		console_receive(e, console[0], want_in);
		close(console[0]);
	} else {
		mon_stdio_close_child(child);
	}
	e->pid = pid;
	e->errpipe = errp[0];
	fd_set_nonblock(e->errpipe, true);
	mon_watch(e->errpipe, EPOLLIN, &e->w_errpipe, W_EXEC_ERRPIPE, e);
	if (e->out >= 0)
		mon_watch(e->out, EPOLLIN, &e->w_out, W_EXEC_OUT, e);
	if (e->err >= 0)
		mon_watch(e->err, EPOLLIN, &e->w_err, W_EXEC_ERR, e);
}

void mon_exec_output(struct mon_exec *e, int *fdp, enum rt_frame_type type)
{
	char buf[16384];
	for (int i = 0; i < 8; i++) {
		ssize_t n = read(*fdp, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			mon_unwatch(*fdp);
			if (e->in == *fdp)
				e->in = -1;
			close(*fdp);
			*fdp = -1;
			return;
		}
		if (e->client && !e->client->done)
			mon_client_send(e->client, type, buf, (size_t)n);
	}
}

void mon_exec_errpipe(struct mon_exec *e)
{
	struct rt_child_err ce;
	ssize_t n = read(e->errpipe, &ce, sizeof(ce));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)sizeof(ce)) {
		ce.msg[sizeof(ce.msg) - 1] = '\0';
		snprintf(e->error, sizeof(e->error), "%s", ce.msg);
		if (e->client && !e->client->done) {
			mon_client_send(e->client, RT_FRAME_STDERR, e->error, strlen(e->error));
			mon_client_send(e->client, RT_FRAME_STDERR, "\n", 1);
		}
	}
	mon_unwatch(e->errpipe);
	close(e->errpipe);
	e->errpipe = -1;
}

void mon_exec_reaped(struct mon_exec *e, int status)
{
	e->exited = true;
	e->status = status;
	e->exited_at = mono_ns();
	if (e->in >= 0 && e->in != e->out)
		close(e->in);
	e->in = -1;
}

void mon_exec_check_done(struct mon_exec *e, int64_t now)
{
	if (e->errpipe >= 0)
		mon_exec_errpipe(e);
	bool drained = e->out < 0 && e->err < 0;
	if (!drained && now - e->exited_at < MON_DRAIN_NS && e->pid > 0)
		return;
	struct mon_client *c = e->client;
	if (c && !c->done && e->pid > 0) {
		int code =
			WIFSIGNALED(e->status) ? 128 + WTERMSIG(e->status) : WEXITSTATUS(e->status);
		json_t *j = json_pack("{s:i}", "exit_code", code);
		if (e->error[0])
			json_object_set_new(j, "error", json_string(e->error));
		char *s = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (s) {
			mon_client_send(c, RT_FRAME_EXIT, s, strlen(s));
			free(s);
		}
		c->done = true;
	}
	exec_free(e);
}

void mon_exec_client_gone(struct mon_exec *e)
{
	e->client = NULL;
	if (e->in >= 0 && e->in != e->out) {
		close(e->in);
		e->in = -1;
	}
}
