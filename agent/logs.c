// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/worker.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/runtime.h"

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
	int64_t since_ns, until_ns; /* Docker's since/until: records in [since, until) */
	int fd;
	struct evbuffer *partial;
	struct event *timer;
};

/* One log record to a streaming reply: a stdcopy frame (raw for a tty), with
 * the time and a "prefix | " when asked. */
static void log_send(struct api_req *r, bool tty, bool is_err, const char *time, const char *prefix,
		     const char *text, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return;
	size_t plen = len + (time ? strlen(time) + 1 : 0) + (prefix ? strlen(prefix) + 3 : 0);
	if (!tty) {
		uint8_t hdr[8] = {is_err ? 2 : 1,
				  0,
				  0,
				  0,
				  (uint8_t)(plen >> 24),
				  (uint8_t)(plen >> 16),
				  (uint8_t)(plen >> 8),
				  (uint8_t)plen};
		evbuffer_add(b, hdr, 8);
	}
	if (time)
		evbuffer_add_printf(b, "%s ", time);
	if (prefix)
		evbuffer_add_printf(b, "%s | ", prefix);
	evbuffer_add(b, text, len);
	size_t n = evbuffer_get_length(b);
	api_stream_chunk(r, evbuffer_pullup(b, (ev_ssize_t)n), n);
	evbuffer_free(b);
}

/* A record's "time", RFC 3339 in UTC with up to nanoseconds, as ns since the
 * epoch; 0 when it does not parse. */
static int64_t record_time_ns(const char *t)
{
	struct tm tm = {0};
	const char *p = t ? strptime(t, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!p)
		return 0;
	int64_t ns = (int64_t)timegm(&tm) * 1000000000LL;
	if (*p == '.') {
		int64_t frac = 0, scale = 100000000;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			if (scale > 0)
				frac += (*p - '0') * scale;
		ns += frac;
	}
	return ns;
}

/* Docker's since/until query values: Unix seconds with an optional fraction
 * (the docker CLI turns durations and dates into that). */
static int parse_unix_time(struct api_req *r, const char *key, int64_t *ret)
{
	const char *v = api_query(r, key);
	*ret = 0;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || *end || d < 0) {
		api_reply_error(r, 400, "%s=%s: expected Unix seconds, like 1700000000.5", key, v);
		return -EINVAL;
	}
	*ret = (int64_t)(d * 1e9);
	return 0;
}

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
	if (lr->since_ns || lr->until_ns) {
		int64_t at = record_time_ns(time);
		if ((lr->since_ns && at < lr->since_ns) || (lr->until_ns && at >= lr->until_ns)) {
			json_decref(j);
			return;
		}
	}
	log_send(lr->r, lr->tty, is_err, lr->timestamps ? time : NULL, NULL, text, tlen);
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
	struct timeval tv = {0, LOG_FOLLOW_INTERVAL_MS * 1000};
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
	struct shoal_err err = {0};
	struct container *c = container_find(r->agent, r->params[0], &err);
	if (!c) {
		api_reply_err(r, &err);
		return;
	}
	bool out = api_query_bool(r, "stdout", false), errs = api_query_bool(r, "stderr", false);
	if (!out && !errs) {
		api_reply_error(r, 400,
				"You must choose at least one stream (stdout=1 or stderr=1)");
		return;
	}
	int64_t tail = -1;
	const char *t = api_query(r, "tail");
	if (t && *t && strcmp(t, "all") != 0) {
		char *endp;
		tail = strtoll(t, &endp, 10);
		if (*endp || tail < 0) {
			api_reply_error(r, 400, "tail=%s: expected a number of lines or \"all\"",
					t);
			return;
		}
	}
	int64_t since_ns, until_ns;
	if (parse_unix_time(r, "since", &since_ns) < 0 ||
	    parse_unix_time(r, "until", &until_ns) < 0)
		return;
	struct log_req *lr = calloc(1, sizeof(*lr));
	if (!lr) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	lr->r = r;
	lr->agent = r->agent;
	lr->since_ns = since_ns;
	lr->until_ns = until_ns;
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
	struct timeval tv = {0, LOG_FOLLOW_INTERVAL_MS * 1000};
	evtimer_add(lr->timer, &tv);
}

/* ---- service logs: the task containers' logs, each line prefixed with its task ---- */

#define SVC_LOG_MAX_TASKS 256

struct svc_log_src {
	char container_id[65];
	char prefix[160];
	int fd;
	char *path;
	struct evbuffer *partial;
};

struct svc_log_req {
	struct api_req *r;
	struct agent *agent;
	char service_id[64];
	bool out, err, timestamps;
	struct svc_log_src src[SVC_LOG_MAX_TASKS];
	size_t n;
	struct event *timer;
};

struct svc_record {
	char *time;
	const struct svc_log_src *src;
	bool is_err;
	char *text;
	size_t len;
};

static void svc_emit(struct svc_log_req *sl, const struct svc_log_src *src, bool is_err,
		     const char *time, const char *text, size_t len)
{
	if ((is_err && !sl->err) || (!is_err && !sl->out))
		return;
	log_send(sl->r, false, is_err, sl->timestamps ? time : NULL, src->prefix, text, len);
}

static bool svc_parse(const char *line, size_t len, bool *is_err, char **time, char **text,
		      size_t *tlen)
{
	json_t *j = json_loadb(line, len, 0, NULL);
	if (!j)
		return false;
	const char *s = json_string_value(json_object_get(j, "stream"));
	const char *t = json_string_value(json_object_get(j, "log"));
	if (!t) {
		json_decref(j);
		return false;
	}
	*is_err = s && strcmp(s, "stderr") == 0;
	*time = strdup(json_string_value(json_object_get(j, "time")) ?: "");
	*tlen = json_string_length(json_object_get(j, "log"));
	*text = malloc(*tlen + 1);
	if (*text)
		memcpy(*text, t, *tlen + 1);
	json_decref(j);
	return *time && *text;
}

static int svc_record_cmp(const void *a, const void *b)
{
	return strcmp(((const struct svc_record *)a)->time, ((const struct svc_record *)b)->time);
}

static void svc_log_free(struct svc_log_req *sl)
{
	for (size_t i = 0; i < sl->n; i++) {
		if (sl->src[i].fd >= 0)
			close(sl->src[i].fd);
		if (sl->src[i].partial)
			evbuffer_free(sl->src[i].partial);
		free(sl->src[i].path);
	}
	if (sl->timer)
		event_free(sl->timer);
	free(sl);
}

static void svc_follow_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_log_req *sl = arg;
	for (size_t i = 0; i < sl->n; i++) {
		struct svc_log_src *src = &sl->src[i];
		if (src->fd < 0)
			continue;
		while (evbuffer_read(src->partial, src->fd, 65536) > 0)
			;
		size_t len;
		char *line;
		while ((line = evbuffer_readln(src->partial, &len, EVBUFFER_EOL_LF))) {
			bool is_err;
			char *time = NULL, *text = NULL;
			size_t tlen;
			if (svc_parse(line, len, &is_err, &time, &text, &tlen))
				svc_emit(sl, src, is_err, time, text, tlen);
			free(time);
			free(text);
			free(line);
		}
	}
	json_t *svc = NULL;
	char key[128];
	snprintf(key, sizeof(key), "%s%s", CLUSTER_SERVICES, sl->service_id);
	if (cluster_get(sl->agent, key, &svc, NULL, NULL) < 0 ||
	    json_is_true(json_object_get(svc, "Removed"))) {
		json_decref(svc);
		sl->r->on_cancel = NULL;
		sl->r->userdata = NULL;
		api_stream_end(sl->r);
		svc_log_free(sl);
		return;
	}
	json_decref(svc);
	struct timeval tv = {0, LOG_FOLLOW_INTERVAL_MS * 1000};
	evtimer_add(sl->timer, &tv);
}

static void svc_log_cancel(struct api_req *r)
{
	struct svc_log_req *sl = r->userdata;
	if (sl)
		svc_log_free(sl);
	api_req_free(r);
}

void api_service_logs(struct api_req *r)
{
	struct agent *a = r->agent;
	json_t *services = NULL, *tasks = NULL;
	struct shoal_err err = {0};
	if (cluster_list(a, CLUSTER_SERVICES, &services, &err) < 0 ||
	    cluster_list(a, CLUSTER_TASKS, &tasks, &err) < 0) {
		json_decref(services);
		api_reply_err(r, &err);
		return;
	}
	json_t *svc = NULL;
	size_t i;
	json_t *o;
	json_array_foreach(services, i, o)
	{
		const char *id = json_string_value(json_object_get(o, "ID")) ?: "";
		const char *name =
			json_string_value(json_object_get(json_object_get(o, "Spec"), "Name"))
				?: "";
		if (!json_is_true(json_object_get(o, "Removed")) &&
		    (strcmp(id, r->params[0]) == 0 || strcmp(name, r->params[0]) == 0 ||
		     (strlen(r->params[0]) >= 4 && str_has_prefix(id, r->params[0]))))
			svc = o;
	}
	if (!svc) {
		json_decref(services);
		json_decref(tasks);
		api_reply_error(r, 404, "service %s not found", r->params[0]);
		return;
	}
	struct svc_log_req *sl = calloc(1, sizeof(*sl));
	if (!sl) {
		json_decref(services);
		json_decref(tasks);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	sl->r = r;
	sl->agent = a;
	sl->out = api_query_bool(r, "stdout", true);
	sl->err = api_query_bool(r, "stderr", true);
	sl->timestamps = api_query_bool(r, "timestamps", false);
	snprintf(sl->service_id, sizeof(sl->service_id), "%s",
		 json_string_value(json_object_get(svc, "ID")));
	const char *sname =
		json_string_value(json_object_get(json_object_get(svc, "Spec"), "Name"));
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		if (strcmp(json_string_value(json_object_get(t, "ServiceID")) ?: "",
			   sl->service_id))
			continue;
		const char *cid = json_string_value(json_object_get(
			json_object_get(json_object_get(t, "Status"), "ContainerStatus"),
			"ContainerID"));
		struct container *c = cid ? container_find(a, cid, NULL) : NULL;
		if (!c || sl->n >= SVC_LOG_MAX_TASKS)
			continue;
		struct svc_log_src *src = &sl->src[sl->n++];
		snprintf(src->container_id, sizeof(src->container_id), "%s", c->id);
		snprintf(src->prefix, sizeof(src->prefix), "%s.%lld.%.12s@%s", sname,
			 (long long)json_integer_value(json_object_get(t, "Slot")),
			 json_string_value(json_object_get(t, "ID")) ?: "", a->hostname);
		src->path = strdup(c->log_path);
		src->fd = open(c->log_path, O_RDONLY | O_CLOEXEC);
		src->partial = evbuffer_new();
	}
	json_decref(services);
	json_decref(tasks);
	/* What is there now, merged in time order. */
	struct svc_record *recs = NULL;
	size_t nrec = 0, cap = 0;
	for (size_t k = 0; k < sl->n; k++) {
		struct svc_log_src *src = &sl->src[k];
		if (src->fd < 0)
			continue;
		while (evbuffer_read(src->partial, src->fd, 65536) > 0)
			;
		size_t len;
		char *line;
		while ((line = evbuffer_readln(src->partial, &len, EVBUFFER_EOL_LF))) {
			struct svc_record rec = {.src = src};
			if (svc_parse(line, len, &rec.is_err, &rec.time, &rec.text, &rec.len)) {
				if (nrec == cap) {
					cap = cap ? cap * 2 : 256;
					struct svc_record *nr = realloc(recs, cap * sizeof(*nr));
					if (!nr)
						break;
					recs = nr;
				}
				recs[nrec++] = rec;
			} else {
				free(rec.time);
				free(rec.text);
			}
			free(line);
		}
	}
	if (nrec)
		qsort(recs, nrec, sizeof(*recs), svc_record_cmp);
	int64_t tail = -1;
	const char *tq = api_query(r, "tail");
	if (tq && *tq && strcmp(tq, "all") != 0)
		tail = strtoll(tq, NULL, 10);
	api_stream_start(r, 200, "application/vnd.docker.multiplexed-stream");
	for (size_t k = 0; k < nrec; k++) {
		if (tail < 0 || (int64_t)(nrec - k) <= tail)
			svc_emit(sl, recs[k].src, recs[k].is_err, recs[k].time, recs[k].text,
				 recs[k].len);
		free(recs[k].time);
		free(recs[k].text);
	}
	free(recs);
	if (!api_query_bool(r, "follow", false)) {
		api_stream_end(r);
		svc_log_free(sl);
		return;
	}
	r->userdata = sl;
	r->on_cancel = svc_log_cancel;
	api_req_defer(r);
	sl->timer = evtimer_new(a->base, svc_follow_cb, sl);
	struct timeval tv = {0, LOG_FOLLOW_INTERVAL_MS * 1000};
	evtimer_add(sl->timer, &tv);
}

/* The node-wide log usage counter. Monitors add what they write and subtract
 * what rotation removes; a removed container's files, or a monitor killed
 * between a write and its count, are caught by the recount. */

#define LOG_USAGE_RECOUNT_S 10 /* how often the files are counted again */
#define BALLAST_CHECK_S	    1  /* how often the reserve is looked at */

/* A file of spare space in the data dir, given back when the disk is full so that
 * the agent can start and record stops and removals (CockroachDB's emergency
 * ballast): min(2% of the file system, 32 MiB), at least 1 MiB. It is released
 * when less than a tenth of it is free and made again when four times it is. */
#define BALLAST_PERCENT 2
#define BALLAST_MIN	(1ll << 20)
#define BALLAST_MAX	(32ll << 20)

struct log_usage {
	struct agent *agent;
	char ballast[4096];
	int64_t *count; /* mapped $run_dir/log-usage */
	char path[4096];
	char containers_dir[4096];
	struct event *timer;
	unsigned ticks;
	bool busy;	 /* a recount is on the worker */
	int64_t before;	 /* the count when the recount began */
	int64_t scanned; /* what the files held */
};

static void usage_recount_work(void *arg)
{
	struct log_usage *u = arg;
	u->before = __atomic_load_n(u->count, __ATOMIC_RELAXED);
	u->scanned = rt_log_usage_scan(u->containers_dir);
}

static void usage_recount_done(void *arg)
{
	struct log_usage *u = arg;
	/* What monitors added during the scan stays added: the error is at most
	 * what was written while the files were counted, and goes with the next. */
	__atomic_add_fetch(u->count, u->scanned - u->before, __ATOMIC_RELAXED);
	u->busy = false;
}

int logs_ballast_check(struct agent *a, const char *path)
{
	struct statvfs sv;
	struct stat st;
	if (statvfs(a->cfg.data_dir, &sv) < 0)
		return -errno;
	int64_t fs = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
	int64_t avail = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	int64_t size = fs / 100 * BALLAST_PERCENT;
	size = size < BALLAST_MIN ? BALLAST_MIN : size > BALLAST_MAX ? BALLAST_MAX : size;
	bool have = stat(path, &st) == 0;
	if (have && avail < size / 10) {
		if (unlink(path) < 0)
			return -errno;
		log_warn(
			"the data dir %s is full: released %lld bytes of reserve so that the agent "
			"can serve; free space there",
			a->cfg.data_dir, (long long)st.st_size);
		return 1;
	}
	if (!have && avail > 4 * size) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		int r = posix_fallocate(fd, 0, size);
		close(fd);
		if (r != 0) {
			unlink(path);
			return -r;
		}
	}
	return 0;
}

static void usage_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct log_usage *u = arg;
	(void)fd;
	(void)what;
	logs_ballast_check(u->agent, u->ballast);
	if (u->ticks++ % (LOG_USAGE_RECOUNT_S / BALLAST_CHECK_S) != 0)
		return;
	if (!u->busy &&
	    worker_submit(u->agent->worker, usage_recount_work, usage_recount_done, u) == 0)
		u->busy = true;
}

int logs_usage_start(struct agent *a, struct shoal_err *err)
{
	if (a->cfg.log_max_total == INT64_MAX)
		a->cfg.log_max_total = 0;
	if (a->cfg.log_max_total < 0) {
		struct statvfs sv;
		int64_t pct = -a->cfg.log_max_total;
		if (statvfs(a->cfg.data_dir, &sv) < 0)
			return shoal_err_errno(err, errno, "looking at the file system of %s",
					       a->cfg.data_dir);
		a->cfg.log_max_total = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize / 100 * pct;
		if (a->cfg.log_max_total <= 0)
			a->cfg.log_max_total = 1;
	}
	struct log_usage *u = calloc(1, sizeof(*u));
	if (!u)
		return shoal_err_set(err, ENOMEM, "out of memory");
	u->agent = a;
	snprintf(u->path, sizeof(u->path), "%s/log-usage", a->cfg.run_dir);
	snprintf(u->containers_dir, sizeof(u->containers_dir), "%s/containers", a->cfg.data_dir);
	snprintf(u->ballast, sizeof(u->ballast), "%s/ballast", a->cfg.data_dir);
	int r = rt_log_usage_open(u->path, true, &u->count);
	if (r < 0) {
		free(u);
		return shoal_err_errno(err, -r, "opening %s", u->path);
	}
	struct timeval iv = {.tv_sec = BALLAST_CHECK_S};
	u->timer = event_new(a->base, -1, EV_PERSIST, usage_timer_cb, u);
	if (!u->timer || event_add(u->timer, &iv) < 0) {
		if (u->timer)
			event_free(u->timer);
		rt_log_usage_close(u->count);
		free(u);
		return shoal_err_set(err, ENOMEM, "cannot create the log usage timer");
	}
	a->log_usage = u;
	/* The first count now: the file on the run dir may be from before a reboot,
	 * or missing counts of a previous agent's containers. */
	usage_timer_cb(-1, 0, u);
	return 0;
}

const char *logs_usage_path(const struct agent *a)
{
	return a->log_usage ? a->log_usage->path : NULL;
}

void logs_usage_stop(struct agent *a)
{
	struct log_usage *u = a->log_usage;
	if (!u)
		return;
	/* The worker (freed before this) dropped a queued recount or finished a
	 * running one; either way nothing of u is used any more. */
	event_free(u->timer);
	rt_log_usage_close(u->count);
	free(u);
	a->log_usage = NULL;
}
