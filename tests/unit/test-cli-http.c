// SPDX-License-Identifier: Apache-2.0
/* The shoal CLI against a fake agent: a thread per connection serving canned
 * Docker Engine API answers on a temporary unix socket. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "cli/http.h"

#define CID "c0ffee0123456789c0ffee0123456789c0ffee0123456789c0ffee0123456789"

struct req {
	char method[16];
	char path[1024];
	char *body;
	size_t body_len;
	bool chunked;
	bool upgrade;
};

struct fake {
	char path[108];
	int lfd;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t threads[64];
	int nthreads;
	char log[64][256];
	int nlog;
	bool started, attach_done;
	bool send_sigint, killed, tty;
	char *create_body;
	char *load_body;
	size_t load_len;
	bool load_chunked;
	char stdin_got[256];
	size_t nstdin;
	bool stdin_eof;
	/* Raw response for GET /raw (http client tests). */
	const char *raw;
	size_t raw_len;
	char *raw_owned; /* freed at teardown, after the server threads end */
};

static struct fake *fk;

static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static int read_request(int fd, struct req *r)
{
	char line[2048];
	memset(r, 0, sizeof(*r));
	if (read_line(fd, line, sizeof(line)) <= 0)
		return -1;
	if (sscanf(line, "%15s %1023s", r->method, r->path) != 2)
		return -1;
	long clen = 0;
	for (;;) {
		if (read_line(fd, line, sizeof(line)) < 0)
			return -1;
		if (!line[0])
			break;
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = atol(line + 15);
		if (strncasecmp(line, "Transfer-Encoding: chunked", 26) == 0)
			r->chunked = true;
		if (strncasecmp(line, "Upgrade: tcp", 12) == 0)
			r->upgrade = true;
	}
	if (r->chunked) {
		for (;;) {
			if (read_line(fd, line, sizeof(line)) < 0)
				return -1;
			size_t n = strtoul(line, NULL, 16);
			if (n == 0) {
				read_line(fd, line, sizeof(line));
				break;
			}
			r->body = realloc(r->body, r->body_len + n + 1);
			if (read(fd, r->body + r->body_len, n) != (ssize_t)n)
				return -1;
			r->body_len += n;
			read_line(fd, line, sizeof(line));
		}
	} else if (clen > 0) {
		r->body = malloc((size_t)clen + 1);
		size_t got = 0;
		while (got < (size_t)clen) {
			ssize_t n = read(fd, r->body + got, (size_t)clen - got);
			if (n <= 0)
				return -1;
			got += (size_t)n;
		}
		r->body_len = got;
	}
	if (r->body)
		r->body[r->body_len] = '\0';
	return 0;
}

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, int status, const char *body)
{
	char head[256];
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 status, body ? strlen(body) : 0);
	send_str(fd, head);
	if (body)
		send_str(fd, body);
}

static size_t frame(char *buf, int stream, const char *s)
{
	size_t n = strlen(s);
	buf[0] = (char)stream;
	buf[1] = buf[2] = buf[3] = 0;
	buf[4] = (char)(n >> 24);
	buf[5] = (char)(n >> 16);
	buf[6] = (char)(n >> 8);
	buf[7] = (char)n;
	memcpy(buf + 8, s, n);
	return n + 8;
}

static void send_frame(int fd, int stream, const char *s)
{
	char buf[512];
	size_t n = frame(buf, stream, s);
	/* Two writes, splitting the header, to exercise reassembly. */
	send(fd, buf, 3, MSG_NOSIGNAL);
	send(fd, buf + 3, n - 3, MSG_NOSIGNAL);
}

static void send_chunk(int fd, const char *data, size_t n)
{
	char line[32];
	snprintf(line, sizeof(line), "%zx\r\n", n);
	send_str(fd, line);
	send(fd, data, n, MSG_NOSIGNAL);
	send_str(fd, "\r\n");
}

static void wait_for(bool *flag)
{
	pthread_mutex_lock(&fk->mu);
	while (!*flag)
		pthread_cond_wait(&fk->cv, &fk->mu);
	pthread_mutex_unlock(&fk->mu);
}

static void set_flag(bool *flag)
{
	pthread_mutex_lock(&fk->mu);
	*flag = true;
	pthread_cond_broadcast(&fk->cv);
	pthread_mutex_unlock(&fk->mu);
}

static void serve_raw(int fd)
{
	send_str(fd, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
		     "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
	wait_for(&fk->started);
	/* Bytes that would parse as a stdcopy header must pass through untouched. */
	send(fd, "\x01\x00\x00\x00raw\r\n", 9, MSG_NOSIGNAL);
}

static void serve_hijack(int fd, bool with_stdin)
{
	char buf[600];
	const char head[] =
		"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
		"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
	/* The first frame travels with the head: the client must not lose it. */
	memcpy(buf, head, sizeof(head) - 1);
	size_t n = sizeof(head) - 1 + frame(buf + sizeof(head) - 1, 1, "first\n");
	send(fd, buf, n, MSG_NOSIGNAL);
	wait_for(&fk->started);
	if (fk->send_sigint) {
		kill(getpid(), SIGINT);
		wait_for(&fk->killed);
	}
	if (with_stdin) {
		for (;;) {
			ssize_t r = read(fd, fk->stdin_got + fk->nstdin,
					 sizeof(fk->stdin_got) - 1 - fk->nstdin);
			if (r <= 0)
				break;
			fk->nstdin += (size_t)r;
		}
		fk->stdin_eof = true;
		fk->stdin_got[fk->nstdin] = '\0';
		send_frame(fd, 1, fk->stdin_got);
	}
	send_frame(fd, 1, "out\n");
	send_frame(fd, 2, "err\n");
}

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct req r;
	if (read_request(fd, &r) < 0) {
		close(fd);
		return NULL;
	}
	pthread_mutex_lock(&fk->mu);
	if (fk->nlog < 64)
		snprintf(fk->log[fk->nlog++], sizeof(fk->log[0]), "%s %s", r.method, r.path);
	pthread_mutex_unlock(&fk->mu);

	const char *p = r.path;
	if (!strcmp(r.method, "GET") && !strcmp(p, "/raw")) {
		send(fd, fk->raw, fk->raw_len, MSG_NOSIGNAL);
	} else if (!strcmp(r.method, "POST") && !strncmp(p, "/containers/create", 18)) {
		free(fk->create_body);
		fk->create_body = r.body ? strdup(r.body) : NULL;
		fk->tty = r.body && strstr(r.body, "\"Tty\":true");
		if (r.body && strstr(r.body, "\"Image\":\"nope\""))
			reply(fd, 404, "{\"message\":\"No such image: nope:latest\"}");
		else
			reply(fd, 201, "{\"Id\":\"" CID "\",\"Warnings\":[\"be careful\"]}");
	} else if (!strncmp(p, "/containers/" CID "/attach", 12 + 64 + 7)) {
		if (fk->tty)
			serve_raw(fd);
		else
			serve_hijack(fd, strstr(p, "stdin=1") != NULL);
		set_flag(&fk->attach_done);
	} else if (!strncmp(p, "/containers/" CID "/wait", 12 + 64 + 5)) {
		wait_for(&fk->attach_done);
		reply(fd, 200, "{\"StatusCode\":3,\"Error\":null}");
	} else if (!strcmp(p, "/containers/" CID "/kill?signal=SIGINT")) {
		set_flag(&fk->killed);
		reply(fd, 204, NULL);
	} else if (!strcmp(p, "/containers/" CID "/start")) {
		set_flag(&fk->started);
		reply(fd, 204, NULL);
	} else if (!strcmp(p, "/containers/broken/start")) {
		reply(fd, 500,
		      "{\"message\":\"exec: \\\"nosuch\\\": executable file not found in $PATH\"}");
	} else if (!strcmp(r.method, "GET") && !strncmp(p, "/containers/json", 16)) {
		char body[1024];
		snprintf(
			body, sizeof(body),
			"[{\"Id\":\"%s\",\"Names\":[\"/web\"],\"Image\":\"busybox\",\"Command\":\"sh -c 'while true; do sleep 1; done'\","
			"\"Created\":%ld,\"State\":\"running\",\"Status\":\"Up 3 seconds\","
			"\"Ports\":[{\"IP\":\"0.0.0.0\",\"PrivatePort\":80,\"PublicPort\":8080,\"Type\":\"tcp\"}]}]",
			CID, (long)time(NULL) - 5 * 3600);
		reply(fd, 200, body);
	} else if (!strcmp(r.method, "GET") && !strcmp(p, "/containers/web/json")) {
		reply(fd, 200,
		      "{\"Id\":\"" CID
		      "\",\"Config\":{\"Tty\":false},\"State\":{\"ExitCode\":3,\"Running\":false}}");
	} else if (!strcmp(r.method, "GET") && !strncmp(p, "/containers/", 12) &&
		   strstr(p, "/json")) {
		reply(fd, 404, "{\"message\":\"No such container\"}");
	} else if (!strcmp(p, "/images/json")) {
		char body[512];
		snprintf(
			body, sizeof(body),
			"[{\"Id\":\"sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824\","
			"\"RepoTags\":[\"busybox:latest\",\"localhost:5000/bb:1\"],\"Created\":%ld,\"Size\":4261234}]",
			(long)time(NULL) - 3 * 7 * 86400);
		reply(fd, 200, body);
	} else if (!strcmp(r.method, "GET") && !strcmp(p, "/images/busybox/json")) {
		reply(fd, 200, "{\"Id\":\"sha256:abc\",\"RepoTags\":[\"busybox:latest\"]}");
	} else if (!strcmp(r.method, "GET") && !strncmp(p, "/images/", 8) && strstr(p, "/json")) {
		reply(fd, 404, "{\"message\":\"No such image\"}");
	} else if (!strcmp(r.method, "GET") && !strncmp(p, "/containers/web/logs", 20)) {
		send_str(
			fd,
			"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
			"Transfer-Encoding: chunked\r\n\r\n");
		char buf[256];
		size_t n = frame(buf, 1, "line1\n");
		n += frame(buf + n, 2, "warn\n");
		n += frame(buf + n, 1, "line2\n");
		/* Chunk boundaries that cut through frame headers. */
		send_chunk(fd, buf, 5);
		send_chunk(fd, buf + 5, 13);
		send_chunk(fd, buf + 18, n - 18);
		send_str(fd, "0\r\n\r\n");
	} else if (!strcmp(r.method, "POST") && !strncmp(p, "/images/load", 12)) {
		fk->load_body = r.body;
		fk->load_len = r.body_len;
		fk->load_chunked = r.chunked;
		r.body = NULL;
		send_str(
			fd,
			"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
		if (fk->load_body && strstr(fk->load_body, "bad")) {
			const char *m =
				"{\"errorDetail\":{\"message\":\"archive/tar: invalid tar header\"},\"error\":\"archive/tar: invalid tar header\"}\n";
			send_chunk(fd, m, strlen(m));
		} else {
			const char *m = "{\"stream\":\"Loaded image: demo:latest\\n\"}\n";
			send_chunk(fd, m, 10);
			send_chunk(fd, m + 10, strlen(m) - 10);
		}
		send_str(fd, "0\r\n\r\n");
	} else if (!strcmp(p, "/containers/web/exec")) {
		free(fk->create_body);
		fk->create_body = r.body ? strdup(r.body) : NULL;
		reply(fd, 201, "{\"Id\":\"e1\"}");
	} else if (!strcmp(p, "/exec/e1/start")) {
		set_flag(&fk->started);
		serve_hijack(fd, false);
	} else if (!strcmp(p, "/exec/e1/json")) {
		reply(fd, 200, "{\"ExitCode\":7,\"Running\":false}");
	} else if (!strcmp(p, "/containers/web/stop?t=5")) {
		reply(fd, 204, NULL);
	} else if (!strncmp(p, "/containers/gone/", 17)) {
		reply(fd, 404, "{\"message\":\"No such container: gone\"}");
	} else if (!strcmp(r.method, "DELETE") && !strcmp(p, "/images/demo?force=1")) {
		reply(fd, 200, "[{\"Untagged\":\"demo:latest\"},{\"Deleted\":\"sha256:abc\"}]");
	} else {
		reply(fd, 404, "{\"message\":\"page not found\"}");
	}
	free(r.body);
	close(fd);
	return NULL;
}

static void *acceptor(void *arg)
{
	for (;;) {
		int fd = accept4(fk->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&fk->mu);
		int i = fk->nthreads < 64 ? fk->nthreads++ : -1;
		pthread_mutex_unlock(&fk->mu);
		if (i < 0 ||
		    pthread_create(&fk->threads[i], NULL, conn_thread, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
}

static int setup(void **state)
{
	fk = calloc(1, sizeof(*fk));
	pthread_mutex_init(&fk->mu, NULL);
	pthread_cond_init(&fk->cv, NULL);
	snprintf(fk->path, sizeof(fk->path), "/tmp/test-cli-%d-%ld.sock", getpid(), random());
	unlink(fk->path);
	fk->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, fk->path);
	if (bind(fk->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fk->lfd, 64) < 0)
		return -1;
	pthread_create(&fk->acceptor, NULL, acceptor, NULL);
	return 0;
}

static int teardown(void **state)
{
	shutdown(fk->lfd, SHUT_RDWR);
	pthread_join(fk->acceptor, NULL);
	for (int i = 0; i < fk->nthreads; i++)
		pthread_join(fk->threads[i], NULL);
	close(fk->lfd);
	unlink(fk->path);
	free(fk->create_body);
	free(fk->load_body);
	free(fk->raw_owned);
	pthread_mutex_destroy(&fk->mu);
	pthread_cond_destroy(&fk->cv);
	free(fk);
	fk = NULL;
	return 0;
}

static char *slurp(int fd)
{
	lseek(fd, 0, SEEK_SET);
	char *buf = calloc(1, 65536);
	ssize_t n = read(fd, buf, 65535);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* Runs `shoal -H unix://<fake> args...` with stdin from `input` (NULL: /dev/null),
 * capturing stdout and stderr. */
static int run_cli(const char *input, char **ret_out, char **ret_err, ...)
{
	char host[200];
	snprintf(host, sizeof(host), "unix://%s", fk->path);
	char *argv[32] = {"shoal", "-H", host};
	int argc = 3;
	va_list ap;
	va_start(ap, ret_err);
	for (const char *a; (a = va_arg(ap, const char *));)
		argv[argc++] = (char *)a;
	va_end(ap);

	char outp[] = "/tmp/test-cli-outXXXXXX", errp[] = "/tmp/test-cli-errXXXXXX";
	int ofd = mkstemp(outp), efd = mkstemp(errp);
	unlink(outp);
	unlink(errp);
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (input) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		assert_int_equal(write(p[1], input, strlen(input)), (ssize_t)strlen(input));
		close(p[1]);
		close(in);
		in = p[0];
	}
	fflush(stdout);
	fflush(stderr);
	int s0 = dup(0), s1 = dup(1), s2 = dup(2);
	dup2(in, 0);
	dup2(ofd, 1);
	dup2(efd, 2);
	int rc = cli_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(s0, 0);
	dup2(s1, 1);
	dup2(s2, 2);
	close(s0);
	close(s1);
	close(s2);
	close(in);
	*ret_out = slurp(ofd);
	*ret_err = slurp(efd);
	return rc;
}

static int log_index(const char *prefix)
{
	for (int i = 0; i < fk->nlog; i++)
		if (!strncmp(fk->log[i], prefix, strlen(prefix)))
			return i;
	return -1;
}

static void test_run_foreground(void **state)
{
	char *out, *err;
	int rc =
		run_cli(NULL, &out, &err, "run", "--name", "web", "busybox", "sh", "-c", "x", NULL);
	/* Exit status from wait; stdout and stderr frames demultiplexed. */
	assert_int_equal(rc, 3);
	assert_string_equal(out, "first\nout\n");
	assert_string_equal(err, "WARNING: be careful\nerr\n");
	/* Docker's order: create, attach (before start), wait, start. */
	int c = log_index("POST /containers/create?name=web");
	int a = log_index("POST /containers/" CID "/attach?stream=1&stdout=1&stderr=1");
	int w = log_index("POST /containers/" CID "/wait?condition=next-exit");
	int s = log_index("POST /containers/" CID "/start");
	assert_true(c >= 0 && a > c && s > a && w >= 0);
	assert_non_null(strstr(fk->create_body, "\"Cmd\":[\"sh\",\"-c\",\"x\"]"));
	assert_null(strstr(fk->log[a], "stdin=1"));
	free(out);
	free(err);
}

static void test_run_interactive_stdin(void **state)
{
	char *out, *err;
	int rc = run_cli("hello from stdin\n", &out, &err, "run", "-i", "busybox", "cat", NULL);
	assert_int_equal(rc, 3);
	/* The server saw all of stdin and then EOF (shutdown(SHUT_WR)), and echoed it. */
	assert_true(fk->stdin_eof);
	assert_string_equal(fk->stdin_got, "hello from stdin\n");
	assert_string_equal(out, "first\nhello from stdin\nout\n");
	assert_non_null(strstr(fk->create_body, "\"OpenStdin\":true"));
	assert_non_null(strstr(fk->create_body, "\"StdinOnce\":true"));
	assert_true(log_index("POST /containers/" CID
			      "/attach?stream=1&stdout=1&stderr=1&stdin=1") >= 0);
	free(out);
	free(err);
}

static void test_run_sig_proxy(void **state)
{
	char *out, *err;
	fk->send_sigint = true;
	int rc = run_cli(NULL, &out, &err, "run", "busybox", NULL);
	assert_int_equal(rc, 3);
	assert_true(fk->killed);
	assert_true(log_index("POST /containers/" CID "/kill?signal=SIGINT") >= 0);
	assert_string_equal(out, "first\nout\n");
	/* The CLI's own SIGINT disposition is back to what it was. */
	struct sigaction sa;
	sigaction(SIGINT, NULL, &sa);
	assert_true(sa.sa_handler == SIG_DFL);
	free(out);
	free(err);
}

static void test_run_tty_raw_stream(void **state)
{
	char *out, *err;
	int rc = run_cli(NULL, &out, &err, "run", "-t", "--sig-proxy=false", "busybox", NULL);
	assert_int_equal(rc, 3);
	assert_int_equal(out[0], 1);
	assert_memory_equal(out, "\x01\x00\x00\x00raw\r\n", 9);
	assert_non_null(strstr(fk->create_body, "\"Tty\":true"));
	free(out);
	free(err);
}

static void test_run_detached_and_errors(void **state)
{
	char *out, *err;
	int rc = run_cli(NULL, &out, &err, "run", "-d", "--memory", "64m", "--cpus", "0.5",
			 "busybox", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, CID "\n");
	assert_non_null(strstr(fk->create_body, "\"NanoCpus\":500000000"));
	assert_non_null(strstr(fk->create_body, "\"Memory\":67108864"));
	assert_true(log_index("POST /containers/" CID "/attach") < 0);
	free(out);
	free(err);

	rc = run_cli(NULL, &out, &err, "run", "nope", NULL);
	assert_int_equal(rc, 125);
	assert_string_equal(err, "Error response from daemon: No such image: nope:latest\n");
	free(out);
	free(err);

	rc = run_cli(NULL, &out, &err, "start", "broken", "gone", NULL);
	assert_int_equal(rc, 1);
	assert_string_equal(
		err,
		"Error response from daemon: exec: \"nosuch\": executable file not found in $PATH\n"
		"Error response from daemon: No such container: gone\n");
	free(out);
	free(err);
}

static void test_ps_table(void **state)
{
	char *out, *err;
	int rc = run_cli(NULL, &out, &err, "ps", "-a", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
	assert_string_equal(
		out,
		"CONTAINER ID   IMAGE     COMMAND                  CREATED       STATUS         PORTS                  NAMES\n"
		"c0ffee012345   busybox   \"sh -c 'while true; …\"   5 hours ago   Up 3 seconds   0.0.0.0:8080->80/tcp   web\n");
	assert_true(log_index("GET /containers/json?all=1") >= 0);
	free(out);
	free(err);

	rc = run_cli(NULL, &out, &err, "ps", "-q", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "c0ffee012345\n");
	free(out);
	free(err);

	rc = run_cli(NULL, &out, &err, "ps", "--format", "{{.Names}} {{.State}}", NULL);
	assert_string_equal(out, "web running\n");
	free(out);
	free(err);
}

static void test_logs_chunked_mux(void **state)
{
	char *out, *err;
	int rc = run_cli(NULL, &out, &err, "logs", "--tail", "10", "-t", "web", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "line1\nline2\n");
	assert_string_equal(err, "warn\n");
	assert_true(log_index("GET /containers/web/json") >= 0);
	assert_true(log_index("GET /containers/web/logs?stdout=1&stderr=1&tail=10&timestamps=1") >=
		    0);
	free(out);
	free(err);
}

static void test_exec(void **state)
{
	char *out, *err;
	int rc = run_cli(NULL, &out, &err, "exec", "-e", "A=1", "-u", "nobody", "web", "ls", "-l",
			 NULL);
	assert_int_equal(rc, 7);
	assert_string_equal(out, "first\nout\n");
	assert_string_equal(err, "err\n");
	assert_non_null(strstr(fk->create_body, "\"Cmd\":[\"ls\",\"-l\"]"));
	assert_non_null(strstr(fk->create_body, "\"Env\":[\"A=1\"]"));
	assert_non_null(strstr(fk->create_body, "\"User\":\"nobody\""));
	assert_non_null(strstr(fk->create_body, "\"AttachStdin\":false"));
	int s = log_index("POST /exec/e1/start"), j = log_index("GET /exec/e1/json");
	assert_true(s >= 0 && j > s);
	free(out);
	free(err);
}

static void test_image_load_streams(void **state)
{
	char *out, *err;
	/* From stdin (a pipe): a chunked upload. */
	int rc = run_cli("tar-bytes-from-stdin", &out, &err, "load", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "Loaded image: demo:latest\n");
	assert_true(fk->load_chunked);
	assert_int_equal(fk->load_len, strlen("tar-bytes-from-stdin"));
	assert_memory_equal(fk->load_body, "tar-bytes-from-stdin", fk->load_len);
	free(fk->load_body);
	fk->load_body = NULL;
	free(out);
	free(err);

	/* From a file: Content-Length; the daemon's error is printed, exit 1. */
	char path[] = "/tmp/test-cli-tarXXXXXX";
	int fd = mkstemp(path);
	assert_int_equal(write(fd, "bad tar", 7), 7);
	close(fd);
	rc = run_cli(NULL, &out, &err, "image", "load", "-q", "-i", path, NULL);
	unlink(path);
	assert_int_equal(rc, 1);
	assert_false(fk->load_chunked);
	assert_int_equal(fk->load_len, 7);
	assert_string_equal(err, "archive/tar: invalid tar header\n");
	assert_true(log_index("POST /images/load?quiet=1") >= 0);
	free(out);
	free(err);
}

static void test_images_ls(void **state)
{
	char *out, *err;
	int rc = run_cli(NULL, &out, &err, "images", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out,
			    "REPOSITORY          TAG       IMAGE ID       CREATED       SIZE\n"
			    "busybox             latest    a416a98b71e2   3 weeks ago   4.26MB\n"
			    "localhost:5000/bb   1         a416a98b71e2   3 weeks ago   4.26MB\n");
	free(out);
	free(err);
	rc = run_cli(NULL, &out, &err, "image", "ls", "-q", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "a416a98b71e2\n");
	free(out);
	free(err);
}

static void test_rmi_stop_inspect(void **state)
{
	char *out, *err;
	int rc = run_cli(NULL, &out, &err, "rmi", "-f", "demo", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "Untagged: demo:latest\nDeleted: sha256:abc\n");
	free(out);
	free(err);

	rc = run_cli(NULL, &out, &err, "stop", "-t", "5", "web", "gone", NULL);
	assert_int_equal(rc, 1);
	assert_string_equal(out, "web\n");
	assert_string_equal(err, "Error response from daemon: No such container: gone\n");
	free(out);
	free(err);

	rc = run_cli(NULL, &out, &err, "inspect", "-f", "{{.State.ExitCode}}", "web", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "3\n");
	free(out);
	free(err);

	/* Not a container: falls back to the image; neither: "No such object". */
	rc = run_cli(NULL, &out, &err, "inspect", "busybox", "missing", NULL);
	assert_int_equal(rc, 1);
	assert_string_equal(out,
			    "[\n    {\n        \"Id\": \"sha256:abc\",\n        \"RepoTags\": [\n"
			    "            \"busybox:latest\"\n        ]\n    }\n]\n");
	assert_string_equal(err, "Error: No such object: missing\n");
	free(out);
	free(err);
}

static void test_cannot_connect(void **state)
{
	char *argv[] = {"shoal", "-H", "unix:///tmp/test-cli-nonexistent.sock", "ps", NULL};
	char errp[] = "/tmp/test-cli-errXXXXXX";
	int efd = mkstemp(errp);
	unlink(errp);
	fflush(stderr);
	int s2 = dup(2);
	dup2(efd, 2);
	int rc = cli_main(4, argv);
	dup2(s2, 2);
	close(s2);
	char *err = slurp(efd);
	assert_int_equal(rc, 1);
	assert_string_equal(
		err, "Cannot connect to the shoal daemon at unix:///tmp/test-cli-nonexistent.sock: "
		     "No such file or directory. Is shoald running?\n");
	free(err);
}

static int raw_get(const char *raw, struct cli_http_resp *resp, char **body, struct shoal_err *err)
{
	fk->raw = raw;
	fk->raw_len = strlen(raw);
	struct cli_http *c = NULL;
	assert_int_equal(cli_http_connect(fk->path, &c), 0);
	struct cli_http_req req = {.method = "GET", .path = "/raw", .body_fd = -1};
	assert_int_equal(cli_http_send(c, &req, err), 0);
	int r = cli_http_read_head(c, resp, err);
	if (r >= 0)
		r = cli_http_read_body_all(c, 1024, body, NULL);
	cli_http_free(c);
	return r;
}

static void test_http_client_bodies(void **state)
{
	struct cli_http_resp resp;
	struct shoal_err err = {0};
	char *body = NULL;
	/* Body to EOF, bare LF line ends. */
	assert_int_equal(raw_get("HTTP/1.0 200 OK\nContent-Type: text/plain\n\nuntil eof", &resp,
				 &body, &err),
			 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, "text/plain");
	assert_string_equal(body, "until eof");
	free(body);
	/* Content-Length stops reading even when more bytes follow. */
	assert_int_equal(raw_get("HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabcdef", &resp,
				 &body, &err),
			 0);
	assert_int_equal(resp.status, 201);
	assert_string_equal(body, "abc");
	free(body);
	/* Chunked. */
	assert_int_equal(
		raw_get("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			&resp, &body, &err),
		0);
	assert_true(resp.chunked);
	assert_string_equal(body, "abcde");
	free(body);
	/* Truncated bodies and bad status lines are errors. */
	body = NULL;
	assert_true(raw_get("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &resp, &body,
			    &err) < 0);
	assert_true(raw_get("SPDY/9 200\r\n\r\n", &resp, &body, &err) < 0);
	assert_non_null(strstr(err.msg, "malformed response status line"));
	/* Past the header limit. */
	size_t big = CLI_HTTP_MAX_HEAD + 100;
	char *raw = malloc(big + 64);
	strcpy(raw, "HTTP/1.1 200 OK\r\nX-Big: ");
	memset(raw + strlen(raw), 'x', big);
	raw[big + 20] = '\0';
	assert_int_equal(raw_get(raw, &resp, &body, &err), -EMSGSIZE);
	fk->raw_owned = raw;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_foreground, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_interactive_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_sig_proxy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_tty_raw_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_detached_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ps_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logs_chunked_mux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_load_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_images_ls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rmi_stop_inspect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cannot_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_client_bodies, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
