// SPDX-License-Identifier: Apache-2.0
/* Disk usage and prunes: GET /system/df, POST /containers/prune and
 * /images/prune. Sizes are directory walks and image removal deletes layer
 * trees: both run on the worker, the answer comes back on the loop. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
#include "agent/events.h"
#include "agent/worker.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/image.h"

enum disk_op { DISK_DF, DISK_PRUNE_CONTAINERS, DISK_PRUNE_IMAGES };

struct disk_job {
	enum disk_op op;
	struct api_req *r; /* NULL once the client went away */
	struct agent *agent;
	/* containers: ids and their upper directories, sizes filled by the worker */
	char (*ids)[65];
	char **uppers;
	int64_t *sizes;
	size_t n;
	/* images */
	json_t *images;	 /* image_store_list(), on the worker */
	char **used;	 /* image ids some container uses */
	json_t *filters; /* image prune */
	int64_t until_s; /* 0: none */
	bool dangling_only;
	json_t *deleted; /* image prune: Docker's ImagesDeleted */
	json_t *events;	 /* and the image events to publish, on the loop */
	int64_t reclaimed;
	struct shoal_err err;
	int ret;
};

static void disk_job_free(struct disk_job *j)
{
	free(j->ids);
	strv_free(j->uppers);
	free(j->sizes);
	json_decref(j->images);
	strv_free(j->used);
	json_decref(j->filters);
	json_decref(j->deleted);
	json_decref(j->events);
	free(j);
}

static void disk_cancel(struct api_req *r)
{
	struct disk_job *j = r->userdata;
	if (j)
		j->r = NULL;
	api_req_free(r);
}

static bool m_label(const char *v, void *labels)
{
	return api_filter_label(labels, v);
}

/* Docker's until: a duration before now (Go's "10m", "1h30m", "24h"), seconds
 * since the epoch, or an RFC 3339 time. Seconds since the epoch, or -1. */
static int64_t parse_until(const char *s)
{
	const char *p = s;
	double total = 0;
	bool dur = false;
	while (*p) {
		char *end;
		double v = strtod(p, &end);
		if (end == p)
			break;
		double unit;
		if (strncmp(end, "ns", 2) == 0)
			unit = 1e-9, end += 2;
		else if (strncmp(end, "us", 2) == 0)
			unit = 1e-6, end += 2;
		else if (strncmp(end, "ms", 2) == 0)
			unit = 1e-3, end += 2;
		else if (*end == 's')
			unit = 1, end++;
		else if (*end == 'm')
			unit = 60, end++;
		else if (*end == 'h')
			unit = 3600, end++;
		else
			break;
		total += v * unit;
		dur = true;
		p = end;
	}
	if (dur && !*p)
		return (int64_t)time(NULL) - (int64_t)total;
	char *end;
	long long secs = strtoll(s, &end, 10);
	if (end != s && (*end == '\0' || *end == '.'))
		return secs;
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest && (*rest == 'Z' || *rest == '.' || *rest == '+' || *rest == '-'))
		return (int64_t)timegm(&tm);
	if ((rest = strptime(s, "%Y-%m-%d", &tm)) && !*rest)
		return (int64_t)timegm(&tm);
	return -1;
}

/* The until filter (one value) as seconds; -1 with a 400 sent when bad. */
static int filter_until(struct api_req *r, json_t *f, int64_t *ret)
{
	json_t *u = json_object_get(f, "until");
	*ret = 0;
	if (!u)
		return 0;
	if (json_array_size(u) != 1) {
		api_reply_error(r, 400, "filters: until takes one value");
		return -1;
	}
	const char *v = json_string_value(json_array_get(u, 0));
	*ret = parse_until(v);
	if (*ret < 0) {
		api_reply_error(r, 400,
				"filters: until %s: expected a duration (10m, 24h), seconds since "
				"the epoch or an RFC 3339 time",
				v);
		return -1;
	}
	return 0;
}

static int submit(struct api_req *r, struct disk_job *j, void (*work)(void *), void (*done)(void *))
{
	j->r = r;
	j->agent = r->agent;
	r->userdata = j;
	r->on_cancel = disk_cancel;
	api_req_defer(r);
	if (worker_submit(r->agent->worker, work, done, j) < 0) {
		r->userdata = NULL;
		r->on_cancel = NULL;
		disk_job_free(j);
		api_reply_error(r, 503, "too much disk work queued; try again shortly");
		return -1;
	}
	return 0;
}

/* The containers (all, or the prune's candidates) into j, for sizing. */
static int add_container(struct disk_job *j, struct container *c)
{
	char up[4096];
	snprintf(up, sizeof(up), "%s/upper", c->bundle_dir);
	memcpy(j->ids[j->n], c->id, sizeof(j->ids[j->n]));
	if (strv_push(&j->uppers, up) < 0)
		return -ENOMEM;
	j->n++;
	return 0;
}

static int alloc_containers(struct disk_job *j, size_t max)
{
	j->ids = calloc(max ? max : 1, sizeof(*j->ids));
	j->sizes = calloc(max ? max : 1, sizeof(*j->sizes));
	j->uppers = calloc(1, sizeof(char *));
	j->used = calloc(1, sizeof(char *));
	return j->ids && j->sizes && j->uppers && j->used ? 0 : -ENOMEM;
}

static void size_containers(struct disk_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		j->sizes[i] = (int64_t)image_dir_size(j->uppers[i]);
}

/* ---- GET /system/df ---- */

static void df_work(void *arg)
{
	struct disk_job *j = arg;
	size_containers(j);
	j->ret = image_store_list(j->agent->images, &j->images, &j->err);
}

static void df_done(void *arg)
{
	struct disk_job *j = arg;
	struct agent *a = j->agent;
	if (!j->r) {
		disk_job_free(j);
		return;
	}
	struct api_req *r = j->r;
	r->on_cancel = NULL;
	r->userdata = NULL;
	if (j->ret < 0) {
		api_reply_err(r, &j->err);
		disk_job_free(j);
		return;
	}
	int64_t layers = 0;
	size_t i;
	json_t *img;
	json_array_foreach(j->images, i, img)
	{
		const char *id = json_string_value(json_object_get(img, "Id"));
		int n = 0;
		for (struct container *c = a->containers; c; c = c->next)
			n += c->image_id && id && strcmp(c->image_id, id) == 0;
		json_object_set_new(img, "Containers", json_integer(n));
		json_object_set_new(img, "SharedSize", json_integer(0));
		layers += json_integer_value(json_object_get(img, "Size"));
	}
	json_t *cs = json_array();
	for (size_t k = 0; k < j->n; k++) {
		struct container *c = container_get(a, j->ids[k]);
		if (!c)
			continue;
		json_t *s = container_summary_json(c);
		int64_t img_size = 0;
		json_array_foreach(j->images, i, img)
		{
			const char *id = json_string_value(json_object_get(img, "Id"));
			if (id && c->image_id && strcmp(id, c->image_id) == 0)
				img_size = json_integer_value(json_object_get(img, "Size"));
		}
		json_object_set_new(s, "SizeRw", json_integer(j->sizes[k]));
		json_object_set_new(s, "SizeRootFs", json_integer(j->sizes[k] + img_size));
		json_array_append_new(cs, s);
	}
	api_reply_json(r, 200,
		       json_pack("{s:I, s:O, s:o, s:[], s:[]}", "LayersSize", (json_int_t)layers,
				 "Images", j->images, "Containers", cs, "Volumes", "BuildCache"));
	disk_job_free(j);
}

void api_system_df(struct api_req *r)
{
	const char *type = api_query(r, "type");
	if (type && *type && strcmp(type, "container") != 0 && strcmp(type, "image") != 0 &&
	    strcmp(type, "volume") != 0 && strcmp(type, "build-cache") != 0) {
		api_reply_error(r, 400, "type %s: expected container, image, volume or build-cache",
				type);
		return;
	}
	struct agent *a = r->agent;
	struct disk_job *j = calloc(1, sizeof(*j));
	if (!j || alloc_containers(j, a->n_containers) < 0) {
		if (j)
			disk_job_free(j);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	j->op = DISK_DF;
	for (struct container *c = a->containers; c; c = c->next)
		if (add_container(j, c) < 0) {
			disk_job_free(j);
			api_reply_error(r, 500, "out of memory");
			return;
		}
	submit(r, j, df_work, df_done);
}

/* ---- POST /containers/prune ---- */

static void prune_containers_done(void *arg)
{
	struct disk_job *j = arg;
	struct agent *a = j->agent;
	json_t *deleted = json_array();
	int64_t reclaimed = 0;
	for (size_t k = 0; k < j->n; k++) {
		struct container *c = container_get(a, j->ids[k]);
		/* started or removed meanwhile: not ours to remove */
		if (!c || (c->state != CONTAINER_EXITED && c->state != CONTAINER_CREATED))
			continue;
		container_remove(c, false, NULL);
		if (container_get(a, j->ids[k]))
			continue;
		json_array_append_new(deleted, json_string(j->ids[k]));
		reclaimed += j->sizes[k];
	}
	if (j->r) {
		j->r->on_cancel = NULL;
		j->r->userdata = NULL;
		if (json_array_size(deleted) == 0) {
			json_decref(deleted);
			deleted = json_null();
		}
		api_reply_json(j->r, 200,
			       json_pack("{s:o, s:I}", "ContainersDeleted", deleted,
					 "SpaceReclaimed", (json_int_t)reclaimed));
	} else {
		json_decref(deleted);
	}
	disk_job_free(j);
}

static void prune_containers_work(void *arg)
{
	size_containers(arg);
}

void api_container_prune(struct api_req *r)
{
	static const char *const keys[] = {"until", "label", "label!"};
	_cleanup_(json_decrefp) json_t *f = api_filters(r, keys, ARRAY_SIZE(keys));
	if (!f)
		return;
	int64_t until;
	if (filter_until(r, f, &until) < 0)
		return;
	struct agent *a = r->agent;
	struct disk_job *j = calloc(1, sizeof(*j));
	if (!j || alloc_containers(j, a->n_containers) < 0) {
		if (j)
			disk_job_free(j);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	j->op = DISK_PRUNE_CONTAINERS;
	for (struct container *c = a->containers; c; c = c->next) {
		if (c->state != CONTAINER_EXITED && c->state != CONTAINER_CREATED)
			continue;
		if (until && c->created_ns / 1000000000 >= until)
			continue;
		json_t *labels = json_object_get(c->config, "Labels");
		if (!api_filter_match(f, "label", m_label, labels))
			continue;
		json_t *nl;
		bool excluded = false;
		size_t i;
		json_array_foreach(json_object_get(f, "label!"), i, nl) excluded |=
			api_filter_label(labels, json_string_value(nl));
		if (excluded)
			continue;
		if (add_container(j, c) < 0) {
			disk_job_free(j);
			api_reply_error(r, 500, "out of memory");
			return;
		}
	}
	submit(r, j, prune_containers_work, prune_containers_done);
}

/* ---- POST /images/prune ---- */

static bool strv_has(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

static void prune_images_work(void *arg)
{
	struct disk_job *j = arg;
	j->deleted = json_array();
	j->events = json_array();
	j->ret = image_store_list(j->agent->images, &j->images, &j->err);
	if (j->ret < 0)
		return;
	size_t i;
	json_t *img;
	json_array_foreach(j->images, i, img)
	{
		const char *id = json_string_value(json_object_get(img, "Id"));
		json_t *labels = json_object_get(img, "Labels");
		if (!id || strv_has(j->used, id))
			continue;
		if (j->dangling_only && json_array_size(json_object_get(img, "RepoTags")) > 0)
			continue;
		if (j->until_s && json_integer_value(json_object_get(img, "Created")) >= j->until_s)
			continue;
		if (!api_filter_match(j->filters, "label", m_label, labels))
			continue;
		json_t *nl;
		bool excluded = false;
		size_t k;
		json_array_foreach(json_object_get(j->filters, "label!"), k, nl) excluded |=
			api_filter_label(labels, json_string_value(nl));
		if (excluded)
			continue;
		json_t *out = NULL;
		struct shoal_err e = {0};
		if (image_store_remove(j->agent->images, id, &out, &e) < 0) {
			log_warn("image prune: removing %s: %s", id, e.msg);
			continue;
		}
		json_array_extend(j->deleted, out);
		/* the events name the image by its id, the untag by the name */
		size_t k2;
		json_t *d;
		json_array_foreach(out, k2, d)
		{
			const char *untag = json_string_value(json_object_get(d, "Untagged"));
			json_array_append_new(j->events, json_pack("{s:s, s:s, s:s?}", "action",
								   untag ? "untag" : "delete", "id",
								   id, "name", untag));
		}
		json_decref(out);
		j->reclaimed += json_integer_value(json_object_get(img, "Size"));
	}
}

static void prune_images_done(void *arg)
{
	struct disk_job *j = arg;
	size_t i;
	json_t *d;
	json_array_foreach(j->events, i, d)
		events_image(j->agent, json_string_value(json_object_get(d, "action")),
			     json_string_value(json_object_get(d, "id")),
			     json_string_value(json_object_get(d, "name")));
	if (j->r) {
		struct api_req *r = j->r;
		r->on_cancel = NULL;
		r->userdata = NULL;
		if (j->ret < 0)
			api_reply_err(r, &j->err);
		else
			api_reply_json(
				r, 200,
				json_pack("{s:O, s:I}", "ImagesDeleted",
					  json_array_size(j->deleted) ? j->deleted : json_null(),
					  "SpaceReclaimed", (json_int_t)j->reclaimed));
	}
	disk_job_free(j);
}

void api_image_prune(struct api_req *r)
{
	static const char *const keys[] = {"dangling", "until", "label", "label!"};
	_cleanup_(json_decrefp) json_t *f = api_filters(r, keys, ARRAY_SIZE(keys));
	if (!f)
		return;
	int64_t until;
	if (filter_until(r, f, &until) < 0)
		return;
	bool dangling = true;
	json_t *dv = json_object_get(f, "dangling");
	if (dv) {
		const char *v = json_string_value(json_array_get(dv, 0));
		if (json_array_size(dv) != 1 || !v)
			v = "";
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			dangling = true;
		else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			dangling = false;
		else {
			api_reply_error(r, 400, "filters: dangling %s: expected true or false", v);
			return;
		}
	}
	struct agent *a = r->agent;
	struct disk_job *j = calloc(1, sizeof(*j));
	if (!j || alloc_containers(j, 0) < 0) {
		if (j)
			disk_job_free(j);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	j->op = DISK_PRUNE_IMAGES;
	j->dangling_only = dangling;
	j->until_s = until;
	j->filters = json_incref(f);
	for (struct container *c = a->containers; c; c = c->next)
		if (c->image_id && *c->image_id && strv_push(&j->used, c->image_id) < 0) {
			disk_job_free(j);
			api_reply_error(r, 500, "out of memory");
			return;
		}
	submit(r, j, prune_images_work, prune_images_done);
}
