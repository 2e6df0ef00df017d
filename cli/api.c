// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

void cli_print_err(const struct shoal_err *err)
{
	if (err->msg[0])
		fprintf(stderr, "%s\n", err->msg);
	else
		fprintf(stderr, "Error: %s\n", strerror(err->code ? err->code : EIO));
}

char *cli_obj_path(const char *prefix, const char *id, const char *suffix)
{
	_cleanup_free_ char *e = cli_escape(id);
	char *r = NULL;
	if (!e || asprintf(&r, "%s/%s%s", prefix, e, suffix ? suffix : "") < 0)
		return NULL;
	return r;
}

int cli_oom(void)
{
	fprintf(stderr, "Error: out of memory\n");
	return 1;
}

char *cli_escape(const char *s)
{
	size_t n = strlen(s);
	char *r = malloc(n * 3 + 1);
	if (!r)
		return NULL;
	char *o = r;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~:@", *p))
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = '\0';
	return r;
}

int cli_connect(const struct cli_ctx *ctx, struct cli_http **ret, struct shoal_err *err)
{
	int r = cli_http_connect(ctx->sock_path, ret);
	if (r < 0)
		return shoal_err_set(
			err, r, "Cannot connect to the shoal daemon at %s: %s. Is shoald running?",
			ctx->host, strerror(-r));
	return 0;
}

int cli_request(const struct cli_ctx *ctx, const struct cli_call *call, struct cli_http **ret_conn,
		struct cli_http_resp *ret_resp, struct shoal_err *err)
{
	_cleanup_(cli_http_freep) struct cli_http *c = NULL;
	int r = cli_connect(ctx, &c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *body = NULL;
	struct cli_http_req req = {
		.method = call->method,
		.path = call->path,
		.body_fd = call->body_fd,
		.body_fd_len = call->body_fd_len,
		.content_type = call->content_type,
		.upgrade = call->upgrade,
		.headers = call->headers,
	};
	if (call->body) {
		body = json_dumps(call->body, JSON_COMPACT);
		if (!body)
			return shoal_err_set(err, ENOMEM, "encoding request body");
		req.body = body;
		req.body_len = strlen(body);
		req.content_type = "application/json";
		req.body_fd = -1;
	}
	log_debug("%s %s", call->method, call->path);
	struct shoal_err send_err = {0};
	int sr = cli_http_send(c, &req, &send_err);
	/* The daemon may answer (with an error) before taking the whole body. */
	struct cli_http_resp resp;
	r = cli_http_read_head(c, &resp, err);
	if (r < 0) {
		if (sr < 0)
			*err = send_err;
		shoal_err_wrap(err, "Error");
		return r;
	}
	if (resp.status < 200 || resp.status >= 300) {
		if (resp.status == 304 || resp.status == 101) {
			/* Not modified (already stopped/started) and upgrades are successes. */
		} else {
			_cleanup_free_ char *ebody = NULL;
			char msg[sizeof(err->msg)];
			if (cli_http_read_body_all(c, 1024 * 1024, &ebody, NULL) < 0)
				ebody = NULL;
			cli_daemon_error(resp.status, ebody, msg, sizeof(msg));
			return shoal_err_set_status(err, resp.status,
						    resp.status == 404 ? ENOENT : EIO, "%s", msg);
		}
	}
	if (sr < 0) {
		*err = send_err;
		return shoal_err_wrap(err, "Error");
	}
	*ret_resp = resp;
	*ret_conn = TAKE_PTR(c);
	return 0;
}

int cli_call_json(const struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		  int *ret_status, json_t **ret_json, struct shoal_err *err)
{
	_cleanup_(cli_http_freep) struct cli_http *c = NULL;
	struct cli_http_resp resp;
	struct cli_call call = {.method = method, .path = path, .body = body, .body_fd = -1};
	int r = cli_request(ctx, &call, &c, &resp, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	r = cli_http_read_body_all(c, CLI_HTTP_MAX_BODY, &text, &len);
	if (r < 0)
		return shoal_err_errno(err, r, "Error reading response from daemon");
	json_t *j = NULL;
	if (len > 0) {
		json_error_t jerr;
		j = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
		if (!j)
			return shoal_err_set(err, EBADMSG,
					     "Error: malformed response from daemon: %s",
					     jerr.text);
	}
	if (ret_status)
		*ret_status = resp.status;
	if (ret_json)
		*ret_json = j;
	else
		json_decref(j);
	return 0;
}

/* Terminal handling. */

static struct termios tty_saved;
static int tty_saved_fd = -1;

void cli_tty_restore(void)
{
	if (tty_saved_fd >= 0) {
		tcsetattr(tty_saved_fd, TCSADRAIN, &tty_saved);
		tty_saved_fd = -1;
	}
}

int cli_tty_raw(int fd)
{
	static bool registered;
	if (!isatty(fd))
		return 0;
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return -errno;
	if (!registered) {
		atexit(cli_tty_restore);
		registered = true;
	}
	tty_saved = t;
	tty_saved_fd = fd;
	cfmakeraw(&t);
	/* Keep output post-processing so that local messages still start at column 0. */
	t.c_oflag |= OPOST;
	if (tcsetattr(fd, TCSADRAIN, &t) < 0) {
		tty_saved_fd = -1;
		return -errno;
	}
	return 0;
}

void cli_resize(const struct cli_ctx *ctx, const char *resize_path, int tty_fd)
{
	struct winsize ws;
	if (!resize_path || ioctl(tty_fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0)
		return;
	char path[512];
	snprintf(path, sizeof(path), "%s?h=%u&w=%u", resize_path, ws.ws_row, ws.ws_col);
	struct shoal_err err = {0};
	if (cli_call_json(ctx, "POST", path, NULL, NULL, NULL, &err) < 0)
		log_debug("resize: %s", err.msg);
}

/* Signals reach the pump through a pipe. */

static int sig_pipe[2] = {-1, -1};
static const int proxied_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
static struct sigaction saved_actions[ARRAY_SIZE(proxied_signals) + 1];
static bool sig_installed;

static void sig_handler(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], &c, 1);
	errno = saved;
}

int cli_signals_install(bool sig_proxy, bool tty)
{
	if (sig_installed)
		return 0;
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	struct sigaction sa = {.sa_handler = sig_handler, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(saved_actions); i++)
		saved_actions[i].sa_handler = SIG_ERR;
	if (sig_proxy)
		for (size_t i = 0; i < ARRAY_SIZE(proxied_signals); i++)
			sigaction(proxied_signals[i], &sa, &saved_actions[i]);
	if (tty)
		sigaction(SIGWINCH, &sa, &saved_actions[ARRAY_SIZE(proxied_signals)]);
	sig_installed = true;
	return 0;
}

void cli_signals_restore(void)
{
	if (!sig_installed)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(saved_actions); i++) {
		if (saved_actions[i].sa_handler == SIG_ERR)
			continue;
		int sig = i < ARRAY_SIZE(proxied_signals) ? proxied_signals[i] : SIGWINCH;
		sigaction(sig, &saved_actions[i], NULL);
	}
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	sig_installed = false;
}

static void forward_signal(const struct cli_ctx *ctx, const char *id, int sig)
{
	const char *abbrev = sigabbrev_np(sig);
	if (!abbrev || !id)
		return;
	_cleanup_free_ char *eid = cli_escape(id);
	char path[512];
	snprintf(path, sizeof(path), "/containers/%s/kill?signal=SIG%s", eid ? eid : id, abbrev);
	struct shoal_err err = {0};
	if (cli_call_json(ctx, "POST", path, NULL, NULL, NULL, &err) < 0)
		log_debug("forwarding signal %s: %s", abbrev, err.msg);
}

struct pump_out {
	const struct cli_stream_opts *opts;
	struct shoal_err *err;
	int werr;
};

static int demux_cb(void *userdata, int stream, const void *data, size_t len)
{
	struct pump_out *o = userdata;
	int r;
	switch (stream) {
	case CLI_STREAM_STDERR:
		r = write_all(o->opts->err_fd, data, len);
		break;
	case CLI_STREAM_SYSERR:
		return shoal_err_set(o->err, EIO, "Error: %.*s", (int)(len > 900 ? 900 : len),
				     (const char *)data);
	default:
		r = write_all(o->opts->out_fd, data, len);
		break;
	}
	if (r < 0 && !o->werr)
		o->werr = r;
	return 0;
}

int cli_stream_pump(const struct cli_ctx *ctx, struct cli_http *conn,
		    const struct cli_stream_opts *opts, struct shoal_err *err)
{
	_cleanup_free_ char *buf = malloc(64 * 1024);
	if (!buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	struct cli_stdcopy sc = {0};
	struct pump_out out = {.opts = opts, .err = err};
	int sock = cli_http_fd(conn);
	bool stdin_open = opts->attach_stdin && opts->in_fd >= 0;
	int r = 0;

	for (;;) {
		if (cli_http_buffered(conn) == 0) {
			struct pollfd pfd[3] = {
				{.fd = sock, .events = POLLIN},
				{.fd = stdin_open ? opts->in_fd : -1, .events = POLLIN},
				{.fd = sig_pipe[0], .events = POLLIN},
			};
			if (poll(pfd, 3, -1) < 0) {
				if (errno == EINTR)
					continue;
				r = shoal_err_errno(err, errno, "Error: poll");
				break;
			}
			if (pfd[2].revents & POLLIN) {
				unsigned char sigs[16];
				ssize_t n = read(sig_pipe[0], sigs, sizeof(sigs));
				for (ssize_t i = 0; i < n; i++) {
					if (sigs[i] == SIGWINCH)
						cli_resize(ctx, opts->resize_path, opts->out_fd);
					else
						forward_signal(ctx, opts->container_id, sigs[i]);
				}
			}
			if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = read(opts->in_fd, buf, 64 * 1024);
				if (n < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (n <= 0) {
					stdin_open = false;
					shutdown(sock, SHUT_WR);
				} else {
					const char *p = buf;
					size_t left = (size_t)n;
					while (left > 0) {
						ssize_t w = send(sock, p, left, MSG_NOSIGNAL);
						if (w < 0 && errno == EINTR)
							continue;
						if (w < 0) {
							/* The container closed its stdin; keep
							 * reading output. */
							stdin_open = false;
							break;
						}
						p += w;
						left -= (size_t)w;
					}
				}
			}
			if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		ssize_t n = cli_http_read_raw(conn, buf, 64 * 1024);
		if (n < 0) {
			if (n == -ECONNRESET)
				break;
			r = shoal_err_errno(err, (int)n, "Error reading the container's output");
			break;
		}
		if (n == 0)
			break;
		if (opts->multiplexed) {
			r = cli_stdcopy_feed(&sc, buf, (size_t)n, demux_cb, &out);
			if (r < 0) {
				if (r == -EBADMSG)
					shoal_err_set(err, EBADMSG,
						      "Error: malformed output stream from daemon");
				break;
			}
		} else {
			int w = write_all(opts->out_fd, buf, (size_t)n);
			if (w < 0 && !out.werr)
				out.werr = w;
		}
	}
	if (r == 0 && out.werr && out.werr != -EPIPE)
		r = shoal_err_errno(err, out.werr, "Error writing output");
	return r;
}
