// SPDX-License-Identifier: Apache-2.0
/* Docker's /volumes endpoints over agent/volumes.h. */
#include <errno.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/volumes.h"
#include "lib/cleanup.h"
#include "lib/util.h"

static bool match_name(const char *v, void *ctx)
{
	return api_filter_regex(v, ctx);
}

static bool match_label(const char *v, void *ctx)
{
	return api_filter_label(ctx, v);
}

static bool match_driver(const char *v, void *ctx)
{
	(void)ctx;
	return strcmp(v, "local") == 0;
}

struct dangling {
	bool unused;
};

static bool match_dangling(const char *v, void *ctx)
{
	struct dangling *d = ctx;
	bool want = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
	return want == d->unused;
}

/* The volumes that pass the filters (already checked). */
static json_t *filtered(struct api_req *r, json_t *filters, struct shoal_err *err)
{
	json_t *all = NULL, *out = json_array();
	if (volume_list(r->agent, &all, err) < 0) {
		json_decref(out);
		return NULL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(all, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "Name"));
		json_t *users = volume_users(r->agent, name);
		struct dangling d = {.unused = json_array_size(users) == 0};
		json_decref(users);
		if (api_filter_match(filters, "name", match_name, (void *)name) &&
		    api_filter_match(filters, "label", match_label, json_object_get(v, "Labels")) &&
		    api_filter_match(filters, "driver", match_driver, NULL) &&
		    api_filter_match(filters, "dangling", match_dangling, &d))
			json_array_append(out, v);
	}
	json_decref(all);
	return out;
}

void api_volume_list(struct api_req *r)
{
	static const char *const supported[] = {"name", "label", "driver", "dangling"};
	json_t *filters = api_filters(r, supported, ARRAY_SIZE(supported));
	if (!filters)
		return;
	struct shoal_err err = {0};
	json_t *vols = filtered(r, filters, &err);
	json_decref(filters);
	if (!vols) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, json_pack("{s:o, s:[]}", "Volumes", vols, "Warnings"));
}

void api_volume_create(struct api_req *r)
{
	json_t *body = api_body_json(r, true);
	if (!body)
		return;
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		if (strcmp(k, "Name") == 0 || strcmp(k, "Labels") == 0)
			continue;
		if (strcmp(k, "Driver") == 0 && json_is_string(v) &&
		    (!json_string_length(v) || strcmp(json_string_value(v), "local") == 0))
			continue;
		if ((strcmp(k, "DriverOpts") == 0 && (json_is_null(v) || !json_object_size(v))) ||
		    (strcmp(k, "ClusterVolumeSpec") == 0 && json_is_null(v)))
			continue;
		json_decref(body);
		api_reply_error(r, 400,
				"%s: not supported by shoal (the local driver without options)", k);
		return;
	}
	json_t *labels = json_object_get(body, "Labels");
	if (labels && !json_is_null(labels)) {
		json_t *lv;
		if (!json_is_object(labels)) {
			json_decref(body);
			api_reply_error(r, 400, "Labels: expected an object of strings");
			return;
		}
		json_object_foreach(labels, k, lv) if (!json_is_string(lv))
		{
			json_decref(body);
			api_reply_error(r, 400, "Labels.%s: expected a string", k);
			return;
		}
	}
	const char *name = json_string_value(json_object_get(body, "Name"));
	char anon[65];
	bool anonymous = !name || !*name;
	if (anonymous) {
		if (random_hex_id(anon) < 0) {
			json_decref(body);
			api_reply_error(r, 500, "naming the volume: out of randomness");
			return;
		}
		name = anon;
	}
	struct shoal_err err = {0};
	json_t *vol = NULL;
	/* one made by name here is not anonymous: it stays until removed */
	int rc = volume_create(r->agent, name, labels, false, &vol, &err);
	json_decref(body);
	if (rc < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 201, vol);
}

void api_volume_inspect(struct api_req *r)
{
	json_t *vol = NULL;
	struct shoal_err err = {0};
	if (volume_get(r->agent, r->params[0], &vol, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, vol);
}

void api_volume_delete(struct api_req *r)
{
	struct shoal_err err = {0};
	bool force = api_query_bool(r, "force", false);
	if (volume_remove(r->agent, r->params[0], &err) < 0) {
		/* force: a volume that is not there is no error (Docker) */
		if (force && err.status == 404) {
			api_reply_empty(r, 204);
			return;
		}
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 204);
}

void api_volume_prune(struct api_req *r)
{
	static const char *const supported[] = {"label", "all"};
	json_t *filters = api_filters(r, supported, ARRAY_SIZE(supported));
	if (!filters)
		return;
	/* Docker 23+: only anonymous volumes unless all=true */
	json_t *all_f = json_object_get(filters, "all");
	bool all = json_array_size(all_f) &&
		   (strcmp(json_string_value(json_array_get(all_f, 0)), "true") == 0 ||
		    strcmp(json_string_value(json_array_get(all_f, 0)), "1") == 0);
	json_object_del(filters, "all");
	json_object_set_new(filters, "dangling", json_pack("[s]", "true"));
	struct shoal_err err = {0};
	json_t *vols = filtered(r, filters, &err);
	json_decref(filters);
	if (!vols) {
		api_reply_err(r, &err);
		return;
	}
	json_t *deleted = json_array();
	int64_t reclaimed = 0;
	size_t i;
	json_t *v;
	json_array_foreach(vols, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "Name"));
		if (!all && !volume_is_anonymous(r->agent, name))
			continue;
		struct shoal_err e = {0};
		int64_t size = volume_size(r->agent, name);
		if (volume_remove(r->agent, name, &e) == 0) {
			json_array_append_new(deleted, json_string(name));
			reclaimed += size;
		}
	}
	json_decref(vols);
	api_reply_json(r, 200,
		       json_pack("{s:o, s:I}", "VolumesDeleted", deleted, "SpaceReclaimed",
				 (json_int_t)reclaimed));
}
