// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
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

void api_image_create(struct api_req *r)
{
	const char *src = api_query(r, "fromSrc");
	const char *from_image = api_query(r, "fromImage");
	if (!src && from_image) {
		api_reply_error(
			r, 400,
			"shoald does not pull from registries: save the image to a tarball and use `shoal image load -i FILE`");
		return;
	}
	if (!src || strcmp(src, "-") != 0) {
		api_reply_error(
			r, 400,
			"fromSrc=- is required: send the root file system tarball as the body");
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

void api_image_list(struct api_req *r)
{
	json_t *list = NULL;
	struct shoal_err err = {0};
	if (image_store_list(r->agent->images, &list, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
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
	if (container_uses_image(r->agent, info->id, &c)) {
		api_reply_error(
			r, 409,
			"conflict: unable to remove image %s: container %.12s (%s) is using it; remove the container first",
			r->params[0], c->id, c->name);
		image_info_free(info);
		return;
	}
	image_info_free(info);
	json_t *out = NULL;
	if (image_store_remove(r->agent->images, r->params[0], &out, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, out);
}
