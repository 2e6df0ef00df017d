// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* Reads json-file logs (one {"log","stream","time"} object per line, rotated
 * as <log>.1 .. <log>.N, .N oldest) and serves them as Docker's log stream:
 * stdcopy frames, or raw bytes for a tty container. */

#define LOG_FOLLOW_INTERVAL_MS 100
#define LOG_MAX_FILES	       100

struct log_req {
	struct api_req *r;
	struct agent *agent;
	char id[65];
	char *path;
	bool tty, out, err, timestamps;
	int fd;
	struct evbuffer *partial;
	struct event *timer;
};

static void emit_record(struct log_req *lr, const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, 0, NULL);
	if (!j)
		return;
	const char *stream = json_string_value(json_object_get(j, "stream"));
	const char *text = json_string_value(json_object_get(j, "log"));
	const char *time = json_string_value(json_object_get(j, "time"));
	size_t tlen = json_string_length(json_object_get(j, "log"));
	bool is_err = stream && strcmp(stream, "stderr") == 0;
	if (!text || (is_err && !lr->err) || (!is_err && !lr->out)) {
		json_decref(j);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	size_t plen = tlen + (lr->timestamps && time ? strlen(time) + 1 : 0);
	if (!lr->tty) {
		uint8_t hdr[8] = { is_err ? 2 : 1, 0, 0, 0, (uint8_t)(plen >> 24),
				   (uint8_t)(plen >> 16), (uint8_t)(plen >> 8), (uint8_t)plen };
		evbuffer_add(b, hdr, 8);
	}
	if (lr->timestamps && time)
		evbuffer_add_printf(b, "%s ", time);
	evbuffer_add(b, text, tlen);
	size_t n = evbuffer_get_length(b);
	api_stream_chunk(lr->r, evbuffer_pullup(b, (ev_ssize_t)n), n);
	evbuffer_free(b);
	json_decref(j);
}

static void log_req_free(struct log_req *lr)
{
	if (lr->timer)
		event_free(lr->timer);
	if (lr->fd >= 0)
		close(lr->fd);
	if (lr->partial)
		evbuffer_free(lr->partial);
	free(lr->path);
	free(lr);
}

/* Reads what is new in lr->fd and emits the complete lines. */
static void drain_fd(struct log_req *lr)
{
	for (;;) {
		int n = evbuffer_read(lr->partial, lr->fd, 65536);
		if (n <= 0)
			break;
	}
	size_t len;
	char *line;
	while ((line = evbuffer_readln(lr->partial, &len, EVBUFFER_EOL_LF))) {
		emit_record(lr, line, len);
		free(line);
	}
}

static void follow_cb(evutil_socket_t fd, short what, void *arg)
{
	struct log_req *lr = arg;
	drain_fd(lr);
	struct container *c = container_find(lr->agent, lr->id, NULL);
	struct stat cur, now;
	bool rotated = fstat(lr->fd, &cur) == 0 && stat(lr->path, &now) == 0 &&
		       (cur.st_ino != now.st_ino || cur.st_dev != now.st_dev);
	if (rotated) {
		int nfd = open(lr->path, O_RDONLY | O_CLOEXEC);
		if (nfd >= 0) {
			close(lr->fd);
			lr->fd = nfd;
			drain_fd(lr);
		}
	}
	if (!c || (c->state != CONTAINER_RUNNING && c->state != CONTAINER_STARTING)) {
		drain_fd(lr);
		lr->r->on_cancel = NULL;
		lr->r->userdata = NULL;
		api_stream_end(lr->r);
		log_req_free(lr);
		return;
	}
	struct timeval tv = { 0, LOG_FOLLOW_INTERVAL_MS * 1000 };
	evtimer_add(lr->timer, &tv);
}

static void log_cancel(struct api_req *r)
{
	struct log_req *lr = r->userdata;
	if (lr)
		log_req_free(lr);
	api_req_free(r);
}

/* Record boundaries of a whole file, for --tail. */
static int emit_file(struct log_req *lr, const char *path, int64_t *skip)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = read_file(path, (size_t)1 << 31, &data, &len);
	if (r < 0)
		return r;
	char *p = data, *end = data + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		if (*skip > 0)
			(*skip)--;
		else
			emit_record(lr, p, (size_t)(nl - p));
		p = nl + 1;
	}
	return 0;
}

static int64_t count_lines(const char *path)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	if (read_file(path, (size_t)1 << 31, &data, &len) < 0)
		return 0;
	int64_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += data[i] == '\n';
	return n;
}

void api_container_logs(struct api_req *r)
{
	struct shoal_err err = { 0 };
	struct container *c = container_find(r->agent, r->params[0], &err);
	if (!c) {
		api_reply_err(r, &err);
		return;
	}
	bool out = api_query_bool(r, "stdout", false), errs = api_query_bool(r, "stderr", false);
	if (!out && !errs) {
		api_reply_error(r, 400, "You must choose at least one stream (stdout=1 or stderr=1)");
		return;
	}
	int64_t tail = -1;
	const char *t = api_query(r, "tail");
	if (t && *t && strcmp(t, "all") != 0) {
		char *endp;
		tail = strtoll(t, &endp, 10);
		if (*endp || tail < 0) {
			api_reply_error(r, 400, "tail=%s: expected a number of lines or \"all\"", t);
			return;
		}
	}
	struct log_req *lr = calloc(1, sizeof(*lr));
	if (!lr) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	lr->r = r;
	lr->agent = r->agent;
	lr->fd = -1;
	lr->out = out;
	lr->err = errs;
	lr->timestamps = api_query_bool(r, "timestamps", false);
	json_get_bool(c->config, "Tty", &lr->tty, NULL);
	snprintf(lr->id, sizeof(lr->id), "%s", c->id);
	lr->path = strdup(c->log_path);
	lr->partial = evbuffer_new();
	if (!lr->path || !lr->partial) {
		log_req_free(lr);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	/* Oldest first: <log>.N .. <log>.1, then <log>. */
	char *files[LOG_MAX_FILES + 1];
	size_t nf = 0;
	for (int i = LOG_MAX_FILES; i >= 1; i--) {
		char p[4200];
		snprintf(p, sizeof(p), "%s.%d", c->log_path, i);
		if (access(p, F_OK) == 0)
			files[nf++] = strdup(p);
	}
	bool follow = api_query_bool(r, "follow", false) &&
		      (c->state == CONTAINER_RUNNING || c->state == CONTAINER_STARTING);
	/* The current file is read through an fd that following keeps open, so a
	 * rotation between reading and following loses nothing. */
	lr->fd = open(c->log_path, O_RDONLY | O_CLOEXEC);
	int64_t total = 0;
	for (size_t i = 0; i < nf; i++)
		total += count_lines(files[i]);
	int64_t skip = 0;
	if (tail >= 0) {
		int64_t cur = lr->fd >= 0 ? count_lines(c->log_path) : 0;
		skip = total + cur - tail;
		if (skip < 0)
			skip = 0;
	}
	api_stream_start(r, 200,
			 lr->tty ? "application/vnd.docker.raw-stream"
				 : "application/vnd.docker.multiplexed-stream");
	for (size_t i = 0; i < nf; i++) {
		emit_file(lr, files[i], &skip);
		free(files[i]);
	}
	if (lr->fd >= 0) {
		/* skip whole records of the current file, then stream the rest */
		for (;;) {
			int n = evbuffer_read(lr->partial, lr->fd, 65536);
			if (n <= 0)
				break;
		}
		size_t len;
		char *line;
		while ((line = evbuffer_readln(lr->partial, &len, EVBUFFER_EOL_LF))) {
			if (skip > 0)
				skip--;
			else
				emit_record(lr, line, len);
			free(line);
		}
	}
	if (!follow || lr->fd < 0) {
		api_stream_end(r);
		log_req_free(lr);
		return;
	}
	r->userdata = lr;
	r->on_cancel = log_cancel;
	api_req_defer(r);
	lr->timer = evtimer_new(r->agent->base, follow_cb, lr);
	struct timeval tv = { 0, LOG_FOLLOW_INTERVAL_MS * 1000 };
	evtimer_add(lr->timer, &tv);
}
