// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
#include "agent/events.h"
#include "agent/worker.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/image.h"

/* An image body arrives in a file in the data dir (the connection guard writes
 * it as it comes, agent/http-guard.c); it is unpacked on the worker thread. */
struct image_job {
	struct api_req *r;
	struct agent *agent;
	int fd;
	bool import;
	char *ref;
	json_t *loaded, *warnings;
	char *id;
	struct shoal_err err;
	int ret;
};

static void image_job_cancel(struct api_req *r)
{
	struct image_job *j = r->userdata;
	if (j)
		j->r = NULL;
	api_req_free(r);
}

static void image_work(void *arg)
{
	struct image_job *j = arg;
	if (j->import)
		j->ret = image_store_import(j->agent->images, j->fd, j->ref, NULL, &j->id, &j->err);
	else
		j->ret = image_store_load(j->agent->images, j->fd, &j->loaded, &j->warnings,
					  &j->err);
	close(j->fd);
	j->fd = -1;
}

static void image_done(void *arg)
{
	struct image_job *j = arg;
	if (j->r) {
		j->r->on_cancel = NULL;
		j->r->userdata = NULL;
		if (j->ret < 0) {
			if (!j->err.status && j->err.code != ENOMEM && j->err.code != ENOSPC &&
			    j->err.code != EIO)
				j->err.status = 400;
			api_reply_err(j->r, &j->err);
		} else if (j->import) {
			api_reply_json(j->r, 200, json_pack("{s:s}", "status", j->id));
		} else {
			/* Docker's load answer: a stream of JSON messages. */
			struct evbuffer *b = evbuffer_new();
			size_t i;
			json_t *v;
			json_array_foreach(j->warnings, i, v)
			{
				json_t *m = json_pack("{s:s+}", "stream",
						      "Warning: ", json_string_value(v));
				char *s = json_dumps(m, JSON_COMPACT);
				evbuffer_add_printf(b, "%s\n", s);
				free(s);
				json_decref(m);
			}
			json_array_foreach(j->loaded, i, v)
			{
				_cleanup_free_ char *fam = NULL;
				const char *name = json_string_value(v);
				bool is_id = str_has_prefix(name, "sha256:");
				if (!is_id && image_ref_familiar(name, &fam) == 0)
					name = fam;
				char line[1200];
				snprintf(line, sizeof(line), "Loaded image%s: %s\n",
					 is_id ? " ID" : "", name);
				json_t *m = json_pack("{s:s}", "stream", line);
				char *s = json_dumps(m, JSON_COMPACT);
				evbuffer_add_printf(b, "%s\n", s);
				free(s);
				json_decref(m);
			}
			log_info("images: loaded %zu image(s)", json_array_size(j->loaded));
			size_t n = evbuffer_get_length(b);
			api_reply_raw(j->r, 200, "application/json",
				      evbuffer_pullup(b, (ev_ssize_t)n), n);
			evbuffer_free(b);
		}
	}
	json_decref(j->loaded);
	json_decref(j->warnings);
	free(j->ref);
	free(j->id);
	free(j);
}

static void image_body_done(struct api_req *r, int fd, const struct shoal_err *err, void *arg)
{
	struct image_job *j = arg;
	if (!r) {
		free(j->ref);
		free(j);
		return;
	}
	if (fd < 0) {
		free(j->ref);
		free(j);
		api_reply_err(r, err);
		return;
	}
	if (lseek(fd, 0, SEEK_END) == 0) {
		close(fd);
		free(j->ref);
		free(j);
		api_reply_error(r, 400,
				"request body is empty: send the image tarball as the body");
		return;
	}
	lseek(fd, 0, SEEK_SET);
	j->fd = fd;
	j->r = r;
	r->userdata = j;
	r->on_cancel = image_job_cancel;
	int ret = worker_submit(r->agent->worker, image_work, image_done, j);
	if (ret < 0) {
		close(j->fd);
		free(j->ref);
		free(j);
		r->userdata = NULL;
		r->on_cancel = NULL;
		api_reply_error(r, 503, "too many image operations queued; try again shortly");
	}
}

static void submit_image_job(struct api_req *r, bool import, const char *ref)
{
	struct image_job *j = calloc(1, sizeof(*j));
	if (!j) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	j->fd = -1;
	j->agent = r->agent;
	j->import = import;
	j->ref = ref ? strdup(ref) : NULL;
	api_body_upload(r, image_body_done, j);
}

void api_image_load(struct api_req *r)
{
	submit_image_job(r, false, NULL);
}

/* ---- pulls ----
 *
 * The pull runs on the worker (image_store_pull blocks); its progress lines
 * are queued under a lock and handed to the loop through an event, which
 * streams them to the client as Docker's JSON messages. The answer's head goes
 * out with the first line, so a pull that fails before it (unknown image,
 * refused credentials) is an HTTP error like any other. */

/* Progress bytes queued for a slow client; past it "Downloading" lines are dropped. */
#define PULL_MAX_PENDING (1u << 20)

struct pull_job {
	struct api_req *r;
	struct agent *agent;
	char *ref;
	char *auth;
	struct event *notify;
	pthread_mutex_t lock;
	char *pending; /* JSON lines not yet sent */
	size_t len, cap;
	atomic_int cancel;
	struct image_pull_result res;
	struct shoal_err err;
	int ret;
};

static void pull_job_free(struct pull_job *j)
{
	if (j->notify)
		event_free(j->notify);
	pthread_mutex_destroy(&j->lock);
	free(j->pending);
	free(j->ref);
	if (j->auth)
		explicit_bzero(j->auth, strlen(j->auth));
	free(j->auth);
	image_pull_result_done(&j->res);
	free(j);
}

/* Docker's progress bar: "[=====>      ]  1.2MB/3.4MB". */
static void progress_bar(uint64_t cur, uint64_t total, char *buf, size_t size)
{
	char bar[53];
	int width = 50, done = total ? (int)(cur * (uint64_t)width / total) : 0;
	if (done > width)
		done = width;
	bar[0] = '[';
	for (int i = 0; i < width; i++)
		bar[1 + i] = i < done ? '=' : i == done ? '>' : ' ';
	bar[width + 1] = ']';
	bar[width + 2] = '\0';
	snprintf(buf, size, "%s %7.3gMB/%.3gMB", bar, cur / 1e6, total / 1e6);
}

static void pull_queue_line(struct pull_job *j, json_t *m, bool droppable)
{
	char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (!s)
		return;
	size_t n = strlen(s);
	pthread_mutex_lock(&j->lock);
	if (!(droppable && j->len + n + 1 > PULL_MAX_PENDING)) {
		if (j->len + n + 1 > j->cap) {
			size_t cap = j->cap ? j->cap : 4096;
			while (cap < j->len + n + 1)
				cap *= 2;
			char *nb = realloc(j->pending, cap);
			if (nb) {
				j->pending = nb;
				j->cap = cap;
			}
		}
		if (j->len + n + 1 <= j->cap) {
			memcpy(j->pending + j->len, s, n);
			j->pending[j->len + n] = '\n';
			j->len += n + 1;
		}
	}
	pthread_mutex_unlock(&j->lock);
	free(s);
}

/* On the worker. */
static void pull_progress_cb(const struct image_pull_event *ev, void *userdata)
{
	struct pull_job *j = userdata;
	json_t *m;
	bool downloading = strcmp(ev->status, "Downloading") == 0;
	if (downloading) {
		char bar[96];
		progress_bar(ev->current, ev->total, bar, sizeof(bar));
		m = json_pack("{s:s, s:{s:I, s:I}, s:s, s:s}", "status", ev->status,
			      "progressDetail", "current", (json_int_t)ev->current, "total",
			      (json_int_t)ev->total, "progress", bar, "id", ev->id ? ev->id : "");
	} else if (str_has_prefix(ev->status, "Pulling from")) {
		m = json_pack("{s:s, s:s}", "status", ev->status, "id", ev->id ? ev->id : "");
	} else {
		m = json_pack("{s:s, s:{}, s:s}", "status", ev->status, "progressDetail", "id",
			      ev->id ? ev->id : "");
	}
	pull_queue_line(j, m, downloading);
	event_active(j->notify, EV_READ, 0);
}

/* On the loop: what the worker queued goes to the client. */
static void pull_flush(struct pull_job *j)
{
	pthread_mutex_lock(&j->lock);
	char *buf = j->pending;
	size_t len = j->len;
	j->pending = NULL;
	j->len = j->cap = 0;
	pthread_mutex_unlock(&j->lock);
	if (len && j->r) {
		if (!j->r->streaming)
			api_stream_start(j->r, 200, "application/json");
		api_stream_chunk(j->r, buf, len);
	}
	free(buf);
}

static void pull_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	pull_flush(arg);
}

static void pull_cancel(struct api_req *r)
{
	struct pull_job *j = r->userdata;
	if (j) {
		j->r = NULL;
		atomic_store(&j->cancel, 1);
	}
	api_req_free(r);
}

static void pull_work(void *arg)
{
	struct pull_job *j = arg;
	struct image_pull_opts o = {
		.auth = j->auth,
		.insecure = j->agent->cfg.insecure_registries,
		.progress = pull_progress_cb,
		.userdata = j,
		.cancel = &j->cancel,
	};
	j->ret = image_store_pull(j->agent->images, j->ref, &o, &j->res, &j->err);
}

static void pull_done(void *arg)
{
	struct pull_job *j = arg;
	pull_flush(j);
	struct api_req *r = j->r;
	if (j->ret < 0)
		log_warn("images: pulling %s: %s", j->ref, j->err.msg);
	else
		log_info("images: pulled %s (%s)", j->res.ref, j->res.id);
	if (!r) {
		pull_job_free(j);
		return;
	}
	r->on_cancel = NULL;
	r->userdata = NULL;
	if (j->ret < 0 && !r->streaming) {
		api_reply_err(r, &j->err);
		pull_job_free(j);
		return;
	}
	if (!r->streaming)
		api_stream_start(r, 200, "application/json");
	if (j->ret < 0) {
		pull_queue_line(j,
				json_pack("{s:{s:s}, s:s}", "errorDetail", "message", j->err.msg,
					  "error", j->err.msg),
				false);
	} else {
		_cleanup_free_ char *fam = NULL;
		const char *name = image_ref_familiar(j->res.ref, &fam) == 0 ? fam : j->res.ref;
		pull_queue_line(j, json_pack("{s:s+}", "status", "Digest: ", j->res.digest), false);
		pull_queue_line(j,
				json_pack("{s:s+}", "status",
					  j->res.updated ? "Status: Downloaded newer image for "
							 : "Status: Image is up to date for ",
					  name),
				false);
	}
	pull_flush(j);
	api_stream_end(r);
	pull_job_free(j);
}

static void pull_body_done(struct api_req *r, int fd, const struct shoal_err *err, void *arg)
{
	struct pull_job *j = arg;
	if (fd >= 0)
		close(fd); /* a pull takes no body */
	if (!r) {
		pull_job_free(j);
		return;
	}
	if (fd < 0) {
		pull_job_free(j);
		api_reply_err(r, err);
		return;
	}
	j->r = r;
	r->userdata = j;
	r->on_cancel = pull_cancel;
	if (worker_submit(r->agent->worker, pull_work, pull_done, j) < 0) {
		r->userdata = NULL;
		r->on_cancel = NULL;
		pull_job_free(j);
		api_reply_error(r, 503, "too many image operations queued; try again shortly");
	}
}

static void submit_pull(struct api_req *r, const char *from_image, const char *tag)
{
	/* fromImage=busybox&tag=1.36, or the tag (or digest) in fromImage */
	char ref[1024];
	if (tag && *tag) {
		bool digest = str_has_prefix(tag, "sha256:");
		snprintf(ref, sizeof(ref), "%s%s%s", from_image, digest ? "@" : ":", tag);
	} else {
		snprintf(ref, sizeof(ref), "%s", from_image);
	}
	_cleanup_free_ char *norm = NULL;
	if (image_ref_normalize(ref, &norm) < 0) {
		api_reply_error(r, 400,
				"invalid reference format: \"%s\" (expected NAME[:TAG] or "
				"NAME@sha256:DIGEST, lowercase)",
				ref);
		return;
	}
	struct pull_job *j = calloc(1, sizeof(*j));
	if (!j) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	pthread_mutex_init(&j->lock, NULL);
	j->agent = r->agent;
	j->ref = TAKE_PTR(norm);
	const char *auth = r->req ? evhttp_find_header(evhttp_request_get_input_headers(r->req),
						       "X-Registry-Auth")
				  : NULL;
	j->auth = auth ? strdup(auth) : NULL;
	j->notify = event_new(r->agent->base, -1, 0, pull_notify_cb, j);
	if (!j->notify || (auth && !j->auth)) {
		pull_job_free(j);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	api_body_upload(r, pull_body_done, j);
}

void api_image_create(struct api_req *r)
{
	const char *src = api_query(r, "fromSrc");
	const char *from_image = api_query(r, "fromImage");
	if (src && from_image) {
		api_reply_error(r, 400, "fromSrc and fromImage exclude each other: give one");
		return;
	}
	if (from_image) {
		if (!*from_image) {
			api_reply_error(r, 400, "fromImage is empty: name the image to pull");
			return;
		}
		const char *platform = api_query(r, "platform");
		if (platform && *platform && strcmp(platform, "linux/amd64") != 0 &&
		    strcmp(platform, "linux") != 0) {
			api_reply_error(r, 400,
					"platform %s is not supported: shoald pulls linux/amd64 "
					"images",
					platform);
			return;
		}
		submit_pull(r, from_image, api_query(r, "tag"));
		return;
	}
	if (!src || strcmp(src, "-") != 0) {
		api_reply_error(
			r, 400,
			"fromSrc=- or fromImage=NAME is required: send the root file system tarball as the body, or name the image to pull");
		return;
	}
	const char *repo = api_query(r, "repo"), *tag = api_query(r, "tag");
	if (!repo || !*repo) {
		api_reply_error(r, 400, "repo is required: the name to give the imported image");
		return;
	}
	char ref[1024];
	if (tag && *tag)
		snprintf(ref, sizeof(ref), "%s:%s", repo, tag);
	else
		snprintf(ref, sizeof(ref), "%s", repo);
	_cleanup_free_ char *norm = NULL;
	if (image_ref_normalize(ref, &norm) < 0) {
		api_reply_error(r, 400, "invalid reference format: %s", ref);
		return;
	}
	submit_image_job(r, true, norm);
}

static bool m_reference(const char *v, void *img)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(img, "RepoTags"), i, t)
	{
		const char *tag = json_string_value(t);
		/* Docker matches the familiar name, with and without its tag */
		_cleanup_free_ char *fam = NULL;
		if (tag && image_ref_familiar(tag, &fam) == 0)
			tag = fam;
		if (!tag)
			continue;
		char repo[512];
		snprintf(repo, sizeof(repo), "%s", tag);
		char *colon = strrchr(repo, ':');
		if (colon && !strchr(colon, '/'))
			*colon = '\0';
		if (fnmatch(v, tag, 0) == 0 || fnmatch(v, repo, 0) == 0)
			return true;
	}
	return false;
}

static bool m_dangling(const char *v, void *img)
{
	bool dangling = json_array_size(json_object_get(img, "RepoTags")) == 0;
	return strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ? dangling : !dangling;
}

static bool m_image_label(const char *v, void *img)
{
	return api_filter_label(json_object_get(img, "Labels"), v);
}

/* GET /images/json with filters reference (a glob), dangling and label. */
void api_image_list(struct api_req *r)
{
	static const char *const keys[] = {"reference", "dangling", "label"};
	json_t *f = api_filters(r, keys, ARRAY_SIZE(keys));
	if (!f)
		return;
	json_t *all = NULL;
	struct shoal_err err = {0};
	if (image_store_list(r->agent->images, &all, &err) < 0) {
		json_decref(f);
		api_reply_err(r, &err);
		return;
	}
	json_t *list = json_array();
	size_t k;
	json_t *one;
	json_array_foreach(all, k, one)
	{
		if (api_filter_match(f, "reference", m_reference, one) &&
		    api_filter_match(f, "dangling", m_dangling, one) &&
		    api_filter_match(f, "label", m_image_label, one))
			json_array_append(list, one);
	}
	json_decref(all);
	json_decref(f);
	/* Containers counts, as Docker reports with the list. */
	size_t i;
	json_t *img;
	json_array_foreach(list, i, img)
	{
		const char *id = json_string_value(json_object_get(img, "Id"));
		int n = 0;
		for (struct container *c = r->agent->containers; c; c = c->next)
			if (id && c->image_id && strcmp(c->image_id, id) == 0)
				n++;
		json_object_set_new(img, "Containers", json_integer(n));
	}
	api_reply_json(r, 200, list);
}

void api_image_inspect(struct api_req *r)
{
	struct image_info *info = NULL;
	struct shoal_err err = {0};
	if (image_store_resolve(r->agent->images, r->params[0], &info, &err) < 0) {
		if (err.code == ENOENT)
			err.status = 404;
		api_reply_err(r, &err);
		return;
	}
	json_t *list = NULL, *entry = NULL;
	if (image_store_list(r->agent->images, &list, NULL) == 0) {
		size_t i;
		json_t *img;
		json_array_foreach(list, i, img)
		{
			if (strcmp(json_string_value(json_object_get(img, "Id")) ?: "", info->id) ==
			    0)
				entry = img;
		}
	}
	json_t *layers = json_array();
	for (size_t i = 0; i < info->n_layers; i++)
		json_array_append_new(layers, json_string(info->layer_dirs[i]));
	json_t *out = json_pack(
		"{s:s, s:O, s:O, s:I, s:s, s:s, s:O, s:{s:s, s:o}}", "Id", info->id, "RepoTags",
		entry ? json_object_get(entry, "RepoTags") : json_array(), "RepoDigests",
		entry ? json_object_get(entry, "RepoDigests") : json_array(), "Size",
		entry ? json_integer_value(json_object_get(entry, "Size")) : 0, "Os", "linux",
		"Architecture", "amd64", "Config", info->config, "RootFS", "Type", "layers",
		"Layers", layers);
	json_decref(list);
	image_info_free(info);
	api_reply_json(r, 200, out);
}

/* Tags and digests the image has. */
static size_t image_name_count(struct agent *a, const char *id)
{
	json_t *list = NULL;
	size_t n = 0, i;
	json_t *img;
	if (image_store_list(a->images, &list, NULL) < 0)
		return 0;
	json_array_foreach(list, i, img)
	{
		const char *iid = json_string_value(json_object_get(img, "Id"));
		if (iid && strcmp(iid, id) == 0)
			n = json_array_size(json_object_get(img, "RepoTags")) +
			    json_array_size(json_object_get(img, "RepoDigests"));
	}
	json_decref(list);
	return n;
}

void api_image_delete(struct api_req *r)
{
	struct image_info *info = NULL;
	struct shoal_err err = {0};
	if (image_store_resolve(r->agent->images, r->params[0], &info, &err) < 0) {
		if (err.code == ENOENT)
			err.status = 404;
		api_reply_err(r, &err);
		return;
	}
	struct container *c = NULL;
	/* a name of an image that keeps other names is only untagged, as Docker
	 * does, whoever uses the image */
	bool untag_only =
		strcmp(info->ref, info->id) != 0 && image_name_count(r->agent, info->id) > 1;
	if (!untag_only && container_uses_image(r->agent, info->id, &c)) {
		api_reply_error(
			r, 409,
			"conflict: unable to remove image %s: container %.12s (%s) is using it; remove the container first",
			r->params[0], c->id, c->name);
		image_info_free(info);
		return;
	}
	_cleanup_free_ char *id = strdup(info->id);
	image_info_free(info);
	json_t *out = NULL;
	if (image_store_remove(r->agent->images, r->params[0], &out, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	size_t i;
	json_t *d;
	json_array_foreach(out, i, d)
	{
		const char *del = json_string_value(json_object_get(d, "Deleted"));
		const char *untag = json_string_value(json_object_get(d, "Untagged"));
		if (del)
			events_image(r->agent, "delete", del, NULL);
		else if (untag && id)
			events_image(r->agent, "untag", id, untag);
	}
	api_reply_json(r, 200, out);
}

/* POST /images/{name}/tag?repo=&tag= */
void api_image_tag(struct api_req *r)
{
	const char *repo = api_query(r, "repo"), *tag = api_query(r, "tag");
	if (!repo || !*repo) {
		api_reply_error(r, 400, "repo: required, the name to tag the image as");
		return;
	}
	_cleanup_free_ char *target = NULL;
	if (asprintf(&target, "%s%s%s", repo, tag && *tag ? ":" : "", tag && *tag ? tag : "") < 0) {
		target = NULL;
		api_reply_error(r, 500, "out of memory");
		return;
	}
	struct shoal_err err = {0};
	_cleanup_free_ char *id = NULL;
	if (image_store_tag(r->agent->images, r->params[0], target, &id, &err) < 0) {
		if (err.code == ENOENT)
			err.status = 404;
		if (!err.status)
			err.status = err.code == EINVAL ? 400 : 500;
		api_reply_err(r, &err);
		return;
	}
	_cleanup_free_ char *norm = NULL, *fam = NULL;
	if (image_ref_normalize(target, &norm) == 0 && image_ref_familiar(norm, &fam) == 0)
		events_image(r->agent, "tag", id, fam);
	api_reply_empty(r, 201);
}

/* The history's layer sizes are directory walks: on the worker. */
struct history_job {
	struct api_req *r;
	struct agent *agent;
	char *ref;
	json_t *out;
	struct shoal_err err;
	int ret;
};

static void history_cancel(struct api_req *r)
{
	struct history_job *j = r->userdata;
	if (j)
		j->r = NULL;
	api_req_free(r);
}

static void history_work(void *arg)
{
	struct history_job *j = arg;
	j->ret = image_store_history(j->agent->images, j->ref, &j->out, &j->err);
}

static void history_done(void *arg)
{
	struct history_job *j = arg;
	if (j->r) {
		j->r->on_cancel = NULL;
		j->r->userdata = NULL;
		if (j->ret < 0) {
			if (j->err.code == ENOENT)
				j->err.status = 404;
			api_reply_err(j->r, &j->err);
		} else {
			api_reply_json(j->r, 200, TAKE_PTR(j->out));
		}
	}
	json_decref(j->out);
	free(j->ref);
	free(j);
}

void api_image_history(struct api_req *r)
{
	struct history_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->ref = strdup(r->params[0]))) {
		free(j);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	j->r = r;
	j->agent = r->agent;
	r->userdata = j;
	r->on_cancel = history_cancel;
	api_req_defer(r);
	if (worker_submit(r->agent->worker, history_work, history_done, j) < 0) {
		r->userdata = NULL;
		r->on_cancel = NULL;
		free(j->ref);
		free(j);
		api_reply_error(r, 503, "too many image operations queued; try again shortly");
	}
}
