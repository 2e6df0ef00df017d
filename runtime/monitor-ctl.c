// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "runtime/monitor-internal.h"

/* The monitor's event loop and control socket. */

int mon_buf_append(struct mon_buf *b, const void *data, size_t len, size_t max)
{
	if (b->len + len > max)
		return -ENOBUFS;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void mon_buf_consume(struct mon_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (b->len == 0 && b->cap > 65536) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

static void client_update_events(struct mon_client *c)
{
	uint32_t ev = (c->reading ? EPOLLIN : 0) | (c->out.len ? EPOLLOUT : 0);
	struct epoll_event e = {.events = ev, .data.ptr = &c->w};
	epoll_ctl(M.epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static bool client_flush(struct mon_client *c)
{
	while (c->out.len) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return false;
		}
		mon_buf_consume(&c->out, (size_t)n);
	}
	return true;
}

void mon_client_close(struct mon_client *c)
{
	for (struct mon_client **p = &M.clients; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	M.nclients--;
	if (M.stdin_owner == c) {
		M.stdin_owner = NULL;
		if (M.spec->stdin_once && !M.spec->tty && M.ctr_in >= 0) {
			close(M.ctr_in);
			M.ctr_in = -1;
		}
	}
	if (c->exec)
		mon_exec_client_gone(c->exec);
	mon_unwatch(c->fd);
	close(c->fd);
	free(c->req);
	free(c->out.data);
	free(c);
}

static void client_queue(struct mon_client *c, const char *data, size_t len)
{
	size_t off = 0;
	if (c->out.len == 0) {
		while (off < len) {
			ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					c->done = true;
				break;
			}
			off += (size_t)n;
		}
	}
	if (off < len && mon_buf_append(&c->out, data + off, len - off, MON_CLIENT_BUF_MAX) < 0) {
		/* A client that does not read is dropped rather than allowed to grow us. */
		c->out.len = 0;
		c->done = true;
	}
	client_update_events(c);
}

void mon_client_send_raw(struct mon_client *c, const char *data, size_t len)
{
	client_queue(c, data, len);
}

void mon_client_send(struct mon_client *c, enum rt_frame_type type, const char *data, size_t len)
{
	uint8_t hdr[8];
	rt_frame_header(hdr, type, (uint32_t)len);
	if (c->out.len == 0) {
		struct iovec iov[2] = {{hdr, 8}, {(void *)data, len}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)(len + 8))
			return;
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				c->done = true;
				return;
			}
			n = 0;
		}
		if ((size_t)n < 8) {
			client_queue(c, (const char *)hdr + n, 8 - (size_t)n);
			client_queue(c, data, len);
		} else {
			client_queue(c, data + (n - 8), len - (size_t)(n - 8));
		}
		return;
	}
	client_queue(c, (const char *)hdr, 8);
	client_queue(c, data, len);
}

void mon_fanout(enum rt_frame_type type, const char *data, size_t len)
{
	for (struct mon_client *c = M.clients; c; c = c->next) {
		if (c->kind != C_ATTACH || c->done)
			continue;
		if ((type == RT_FRAME_STDOUT && c->want_out) ||
		    (type == RT_FRAME_STDERR && c->want_err))
			mon_client_send(c, type, data, len);
	}
}

bool mon_stdin_write(int fd, struct mon_buf *pending, const char *data, size_t len)
{
	if (fd < 0)
		return true;
	size_t off = 0;
	if (pending->len == 0) {
		while (off < len) {
			ssize_t n = write(fd, data + off, len - off);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					return true; /* the reader is gone: drop */
				break;
			}
			off += (size_t)n;
		}
	}
	if (off < len && mon_buf_append(pending, data + off, len - off, MON_STDIN_BUF_MAX) < 0)
		return false;
	return true;
}

static void stdin_retry(int fd, struct mon_buf *pending)
{
	while (fd >= 0 && pending->len) {
		ssize_t n = write(fd, pending->data, pending->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				pending->len = 0;
			return;
		}
		mon_buf_consume(pending, (size_t)n);
	}
	if (fd < 0)
		pending->len = 0;
}

static void reply_json(struct mon_client *c, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s) {
		size_t l = strlen(s);
		s[l] = '\0';
		client_queue(c, s, l);
		client_queue(c, "\n", 1);
		free(s);
	}
	c->kind = C_REPLY;
	c->done = true;
}

static void handle_resize(struct mon_client *c, int fd)
{
	json_t *j = json_loadb(c->ctl, c->ctl_len, 0, NULL);
	if (!j)
		return;
	struct winsize ws = {
		.ws_row = (unsigned short)json_integer_value(json_object_get(j, "h")),
		.ws_col = (unsigned short)json_integer_value(json_object_get(j, "w")),
	};
	json_decref(j);
	if (fd >= 0)
		ioctl(fd, TIOCSWINSZ, &ws);
}

/* One frame's payload bytes from a client (streamed: stdin is forwarded as it comes). */
static void frame_data(struct mon_client *c, const char *data, size_t len)
{
	uint8_t type = c->hdr[0];
	if (type == RT_FRAME_STDIN) {
		bool ok = true;
		if (c->exec)
			ok = mon_stdin_write(c->exec->in, &c->exec->in_pending, data, len);
		else if (M.stdin_owner == c)
			ok = mon_stdin_write(M.ctr_in, &M.stdin_pending, data, len);
		if (!ok)
			c->reading = false; /* resumes once the pending stdin is written */
	} else if (type == RT_FRAME_RESIZE) {
		size_t take = len;
		if (take > sizeof(c->ctl) - c->ctl_len)
			take = sizeof(c->ctl) - c->ctl_len;
		memcpy(c->ctl + c->ctl_len, data, take);
		c->ctl_len += take;
	}
}

static void frame_end(struct mon_client *c)
{
	uint8_t type = c->hdr[0];
	if (type == RT_FRAME_STDIN_CLOSE) {
		if (c->exec) {
			if (!c->exec->tty && c->exec->in >= 0) {
				stdin_retry(c->exec->in, &c->exec->in_pending);
				close(c->exec->in);
				c->exec->in = -1;
			}
		} else if (M.stdin_owner == c && !M.spec->tty && M.ctr_in >= 0) {
			stdin_retry(M.ctr_in, &M.stdin_pending);
			close(M.ctr_in);
			M.ctr_in = -1;
		}
	} else if (type == RT_FRAME_RESIZE) {
		if (c->exec)
			handle_resize(c, c->exec->tty ? c->exec->out : -1);
		else
			handle_resize(c, M.spec->tty ? M.ctr_out : -1);
		c->ctl_len = 0;
	}
}

static bool frames_feed(struct mon_client *c, const char *data, size_t len)
{
	while (len > 0) {
		if (c->hdr_len < 8) {
			size_t take = 8 - c->hdr_len < len ? 8 - c->hdr_len : len;
			memcpy(c->hdr + c->hdr_len, data, take);
			c->hdr_len += take;
			data += take;
			len -= take;
			if (c->hdr_len < 8)
				return true;
			c->left = ((uint32_t)c->hdr[4] << 24) | ((uint32_t)c->hdr[5] << 16) |
				  ((uint32_t)c->hdr[6] << 8) | c->hdr[7];
			if (c->left > RT_FRAME_MAX || c->hdr[0] > RT_FRAME_STDIN_CLOSE)
				return false;
			c->ctl_len = 0;
			if (c->left == 0) {
				frame_end(c);
				c->hdr_len = 0;
			}
			continue;
		}
		size_t take = c->left < len ? c->left : len;
		frame_data(c, data, take);
		data += take;
		len -= take;
		c->left -= (uint32_t)take;
		if (c->left == 0) {
			frame_end(c);
			c->hdr_len = 0;
		}
	}
	return true;
}

static json_t *state_json(void)
{
	return json_pack("{s:i,s:b,s:I}", "pid", (int)M.ctr_pid, "running", M.running, "started_at",
			 (json_int_t)M.started_at);
}

static void handle_request(struct mon_client *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr);
	const char *op = json_string_value(json_object_get(req, "op"));
	if (!op) {
		json_decref(req);
		reply_json(c, json_pack("{s:s}", "error", "bad request: expected {\"op\":...}"));
		return;
	}
	if (strcmp(op, "wait") == 0) {
		c->kind = C_WAIT;
		if (M.exit_json) {
			client_queue(c, M.exit_json, strlen(M.exit_json));
			client_queue(c, "\n", 1);
			c->done = true;
		}
	} else if (strcmp(op, "state") == 0) {
		reply_json(c, state_json());
	} else if (strcmp(op, "kill") == 0) {
		json_t *sig = json_object_get(req, "signal");
		int s = sig ? (int)json_integer_value(sig) : SIGKILL;
		if (s <= 0 || s >= NSIG)
			reply_json(c, json_pack("{s:s}", "error", "invalid signal"));
		else if (!M.running)
			reply_json(c, json_pack("{s:s}", "error", "container is not running"));
		else if (kill(M.ctr_pid, s) < 0)
			reply_json(c, json_pack("{s:s}", "error", strerror(errno)));
		else
			reply_json(c, json_pack("{s:b}", "ok", 1));
	} else if (strcmp(op, "attach") == 0) {
		c->kind = C_ATTACH;
		c->want_out = json_is_true(json_object_get(req, "stdout"));
		c->want_err = json_is_true(json_object_get(req, "stderr"));
		c->want_in = json_is_true(json_object_get(req, "stdin"));
		if (c->want_in && M.spec->open_stdin && !M.stdin_owner && M.ctr_in >= 0)
			M.stdin_owner = c;
		if (M.exit_json) {
			mon_client_send(c, RT_FRAME_EXIT, M.exit_json, strlen(M.exit_json));
			c->done = true;
		}
	} else if (strcmp(op, "exec") == 0) {
		c->kind = C_EXEC;
		mon_exec_start(c, req);
	} else {
		reply_json(c, json_pack("{s:s}", "error", "unknown op"));
	}
	json_decref(req);
}

static void client_readable(struct mon_client *c)
{
	char buf[16384];
	for (int i = 0; i < 8 && c->reading && !c->done; i++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			mon_client_close(c);
			return;
		}
		if (c->kind == C_REQ) {
			const char *nl = memchr(buf, '\n', (size_t)n);
			size_t take = nl ? (size_t)(nl - buf) : (size_t)n;
			if (c->req_len + take > RT_REQUEST_MAX) {
				reply_json(c, json_pack("{s:s}", "error", "request too long"));
				break;
			}
			char *r = realloc(c->req, c->req_len + take + 1);
			if (!r) {
				mon_client_close(c);
				return;
			}
			c->req = r;
			memcpy(c->req + c->req_len, buf, take);
			c->req_len += take;
			if (!nl)
				continue;
			handle_request(c, c->req, c->req_len);
			free(c->req);
			c->req = NULL;
			size_t rest = (size_t)n - take - 1;
			if (rest && (c->kind == C_ATTACH || c->kind == C_EXEC) &&
			    !frames_feed(c, nl + 1, rest)) {
				c->done = true;
				break;
			}
		} else if (c->kind == C_ATTACH || c->kind == C_EXEC) {
			if (!frames_feed(c, buf, (size_t)n)) {
				c->done = true; /* protocol error */
				break;
			}
		}
	}
	if (c->done && c->out.len == 0)
		mon_client_close(c);
	else
		client_update_events(c);
}

static void accept_clients(void)
{
	for (;;) {
		int fd = accept4(M.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (M.nclients >= MON_MAX_CLIENTS) {
			static const char msg[] = "{\"error\":\"too many clients\"}\n";
			send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		struct mon_client *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->kind = C_REQ;
		c->reading = true;
		if (mon_watch(fd, EPOLLIN, &c->w, W_CLIENT, c) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = M.clients;
		M.clients = c;
		M.nclients++;
	}
}

void mon_adopt_attach(int fd)
{
	struct mon_client *c = calloc(1, sizeof(*c));
	if (!c || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->kind = C_ATTACH;
	c->reading = true;
	c->want_out = c->want_err = true;
	c->want_in = M.spec->open_stdin;
	if (mon_watch(fd, EPOLLIN, &c->w, W_CLIENT, c) < 0) {
		close(fd);
		free(c);
		return;
	}
	if (c->want_in && !M.stdin_owner && M.ctr_in >= 0)
		M.stdin_owner = c;
	c->next = M.clients;
	M.clients = c;
	M.nclients++;
}

static void reap(void)
{
	struct signalfd_siginfo si;
	while (read(M.sig_fd, &si, sizeof(si)) > 0)
		;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return;
		if (pid == M.ctr_pid && M.running) {
			M.running = false;
			M.ctr_status = st;
			M.exited_at = mono_ns();
			if (M.ctr_in >= 0 && M.ctr_in != M.ctr_out)
				close(M.ctr_in);
			M.ctr_in = -1;
			continue;
		}
		for (struct mon_exec *e = M.execs; e; e = e->next) {
			if (e->pid == pid && !e->exited) {
				mon_exec_reaped(e, st);
				break;
			}
		}
	}
}

static void dispatch(struct mon_watch *w, uint32_t events)
{
	switch (w->kind) {
	case W_LISTEN:
		accept_clients();
		break;
	case W_SIGNAL:
		reap();
		break;
	case W_CTR_OUT:
		mon_ctr_output(&M.ctr_out, RT_LOG_STDOUT);
		break;
	case W_CTR_ERR:
		mon_ctr_output(&M.ctr_err, RT_LOG_STDERR);
		break;
	case W_CLIENT: {
		struct mon_client *c = w->ptr;
		if (events & EPOLLOUT) {
			if (!client_flush(c)) {
				mon_client_close(c);
				break;
			}
			if (c->done && c->out.len == 0) {
				mon_client_close(c);
				break;
			}
			client_update_events(c);
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			client_readable(c);
		break;
	}
	case W_EXEC_OUT: {
		struct mon_exec *e = w->ptr;
		mon_exec_output(e, &e->out, RT_FRAME_STDOUT);
		break;
	}
	case W_EXEC_ERR: {
		struct mon_exec *e = w->ptr;
		mon_exec_output(e, &e->err, RT_FRAME_STDERR);
		break;
	}
	case W_EXEC_ERRPIPE:
		mon_exec_errpipe(w->ptr);
		break;
	}
}

/* Work that is not driven by an fd: stdin retries, drain deadlines. */
static int housekeeping(void)
{
	int64_t now = mono_ns();
	int timeout = -1;
	stdin_retry(M.ctr_in, &M.stdin_pending);
	if (M.stdin_pending.len)
		timeout = 20;
	for (struct mon_exec *e = M.execs, *next; e; e = next) {
		next = e->next;
		stdin_retry(e->in, &e->in_pending);
		if (e->in_pending.len)
			timeout = 20;
		if (e->exited) {
			mon_exec_check_done(e, now);
			timeout = timeout < 0 || timeout > 50 ? 50 : timeout;
		}
	}
	for (struct mon_client *c = M.clients, *next; c; c = next) {
		next = c->next;
		if (c->done && c->out.len == 0) {
			mon_client_close(c);
			continue;
		}
		if (!c->reading && !c->done) {
			struct mon_buf *p = c->exec ? &c->exec->in_pending : &M.stdin_pending;
			if (p->len == 0) {
				c->reading = true;
				client_update_events(c);
			}
		}
	}
	if (M.exit_json) {
		/* Finished: answer what is queued, then go. */
		accept_clients();
		if (!M.clients || now > M.linger_until)
			_exit(0);
		int left = (int)((M.linger_until - now) / 1000000) + 1;
		return timeout < 0 || left < timeout ? left : timeout;
	}
	if (!M.running) {
		bool execs_running = false;
		for (struct mon_exec *e = M.execs; e; e = e->next)
			execs_running |= !e->exited;
		bool drained = M.ctr_out < 0 && M.ctr_err < 0 && !execs_running;
		if (drained || now - M.exited_at > MON_DRAIN_NS) {
			mon_finish();
			return 0;
		}
		int left = (int)((M.exited_at + MON_DRAIN_NS - now) / 1000000) + 1;
		if (timeout < 0 || left < timeout)
			timeout = left;
	}
	return timeout;
}

int mon_loop(void)
{
	mon_watch(M.listen_fd, EPOLLIN, &M.w_listen, W_LISTEN, NULL);
	mon_watch(M.sig_fd, EPOLLIN, &M.w_sig, W_SIGNAL, NULL);
	if (M.ctr_out >= 0)
		mon_watch(M.ctr_out, EPOLLIN, &M.w_out, W_CTR_OUT, NULL);
	if (M.ctr_err >= 0)
		mon_watch(M.ctr_err, EPOLLIN, &M.w_err, W_CTR_ERR, NULL);
	/* The container may have exited before the signalfd was watched. */
	reap();
	for (;;) {
		int timeout = housekeeping();
		struct epoll_event ev[16];
		int n = epoll_wait(M.epfd, ev, 16, timeout);
		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++)
			dispatch(ev[i].data.ptr, ev[i].events);
	}
}

void mon_clients_finish(const char *exit_json)
{
	size_t len = strlen(exit_json);
	for (struct mon_client *c = M.clients; c; c = c->next) {
		if (c->done)
			continue;
		if (c->kind == C_WAIT) {
			client_queue(c, exit_json, len);
			client_queue(c, "\n", 1);
		} else if (c->kind == C_ATTACH) {
			mon_client_send(c, RT_FRAME_EXIT, exit_json, len);
		} else if (c->kind == C_EXEC && c->exec) {
			static const char killed[] = "{\"exit_code\":137}";
			mon_client_send(c, RT_FRAME_EXIT, killed, sizeof(killed) - 1);
		} else {
			continue;
		}
		c->done = true;
	}
	/* The last words go out with a bounded wait; then the monitor is gone. */
	for (struct mon_client *c = M.clients; c; c = c->next) {
		if (!c->out.len)
			continue;
		struct timeval tv = {.tv_sec = 1};
		fd_set_nonblock(c->fd, false);
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		write_all(c->fd, c->out.data, c->out.len);
	}
}
