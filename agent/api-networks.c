// SPDX-License-Identifier: Apache-2.0
/* Docker's /networks endpoints over agent/networks.h. */
#include <errno.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
#include "agent/networks.h"
#include "lib/cleanup.h"

static bool match_str(const char *v, void *ctx)
{
	return strcmp(v, ctx) == 0;
}

static bool match_regex(const char *v, void *ctx)
{
	return api_filter_regex(v, ctx);
}

static bool match_prefix(const char *v, void *ctx)
{
	return strncmp(ctx, v, strlen(v)) == 0;
}

static bool match_label(const char *v, void *ctx)
{
	return api_filter_label(ctx, v);
}

static bool match_type(const char *v, void *ctx)
{
	bool builtin = strcmp(ctx, "local") == 0;
	return strcmp(v, builtin ? "builtin" : "custom") == 0;
}

void api_network_list(struct api_req *r)
{
	static const char *const supported[] = {"name", "id", "driver", "scope", "label", "type"};
	json_t *filters = api_filters(r, supported, ARRAY_SIZE(supported));
	if (!filters)
		return;
	json_t *type = json_object_get(filters, "type");
	size_t i;
	json_t *v;
	json_array_foreach(type, i, v)
	{
		const char *t = json_string_value(v);
		if (strcmp(t, "custom") != 0 && strcmp(t, "builtin") != 0) {
			json_decref(filters);
			api_reply_error(r, 400, "filters: type: \"%s\" is not custom or builtin",
					t);
			return;
		}
	}
	json_t *all = NULL;
	struct shoal_err err = {0};
	if (network_list(r->agent, &all, &err) < 0) {
		json_decref(filters);
		api_reply_err(r, &err);
		return;
	}
	json_t *out = json_array();
	json_array_foreach(all, i, v)
	{
		const char *scope = json_string_value(json_object_get(v, "Scope"));
		if (api_filter_match(filters, "name", match_regex,
				     (void *)json_string_value(json_object_get(v, "Name"))) &&
		    api_filter_match(filters, "id", match_prefix,
				     (void *)json_string_value(json_object_get(v, "Id"))) &&
		    api_filter_match(filters, "driver", match_str,
				     (void *)json_string_value(json_object_get(v, "Driver"))) &&
		    api_filter_match(filters, "scope", match_str, (void *)scope) &&
		    api_filter_match(filters, "label", match_label, json_object_get(v, "Labels")) &&
		    api_filter_match(filters, "type", match_type, (void *)scope))
			json_array_append(out, v);
	}
	json_decref(all);
	json_decref(filters);
	api_reply_json(r, 200, out);
}

void api_network_inspect(struct api_req *r)
{
	if (api_query_bool(r, "verbose", false)) {
		api_reply_error(r, 400, "verbose: not supported by shoal");
		return;
	}
	json_t *net = NULL;
	struct shoal_err err = {0};
	if (network_get(r->agent, r->params[0], &net, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, net);
}

void api_network_create(struct api_req *r)
{
	json_t *body = api_body_json(r, false);
	if (!body)
		return;
	json_t *res = NULL;
	struct shoal_err err = {0};
	int rc = network_create(r->agent, body, &res, &err);
	json_decref(body);
	if (rc < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 201, res);
}

void api_network_delete(struct api_req *r)
{
	struct shoal_err err = {0};
	if (network_remove(r->agent, r->params[0], &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 204);
}

void api_network_prune(struct api_req *r)
{
	static const char *const supported[] = {"label", "until"};
	json_t *filters = api_filters(r, supported, ARRAY_SIZE(supported));
	if (!filters)
		return;
	if (json_object_get(filters, "until")) {
		json_decref(filters);
		api_reply_error(r, 400, "filters: until is not supported here (only label)");
		return;
	}
	json_t *all = NULL;
	struct shoal_err err = {0};
	if (network_list(r->agent, &all, &err) < 0) {
		json_decref(filters);
		api_reply_err(r, &err);
		return;
	}
	json_t *deleted = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(all, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "Name"));
		/* the routing mesh's network goes only when asked by name, as
		 * with Docker */
		if (strcmp(json_string_value(json_object_get(v, "Scope")), "local") == 0 ||
		    json_is_true(json_object_get(v, "Ingress")) ||
		    !api_filter_match(filters, "label", match_label, json_object_get(v, "Labels")))
			continue;
		struct shoal_err e = {0};
		/* in use: kept (the removal says so, and prune goes on) */
		if (network_remove(r->agent, json_string_value(json_object_get(v, "Id")), &e) == 0)
			json_array_append_new(deleted, json_string(name));
	}
	json_decref(all);
	json_decref(filters);
	api_reply_json(r, 200, json_pack("{s:o}", "NetworksDeleted", deleted));
}

/* Endpoint settings shoal has no use for yet are refused, not ignored. */
static bool zero_settings(json_t *v)
{
	if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)) ||
	    (json_is_array(v) && !json_array_size(v)) || json_is_false(v) ||
	    (json_is_integer(v) && !json_integer_value(v)))
		return true;
	if (!json_is_object(v))
		return false;
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		if (!zero_settings(e))
			return false;
	}
	return true;
}

/* POST /networks/{id}/connect {"Container", "EndpointConfig"} and
 * /disconnect {"Container", "Force"}. */
static void connect_or_not(struct api_req *r, bool connect)
{
	json_t *body = api_body_json(r, false);
	if (!body)
		return;
	const char *ref = json_string_value(json_object_get(body, "Container"));
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		bool known = !strcmp(k, "Container") || (connect && !strcmp(k, "EndpointConfig")) ||
			     (!connect && !strcmp(k, "Force"));
		if (!known) {
			api_reply_error(r, 400, "%s: unknown field", k);
			json_decref(body);
			return;
		}
	}
	if (!ref || !*ref) {
		api_reply_error(r, 400, "Container: required, the container's name or id");
		json_decref(body);
		return;
	}
	if (connect && !zero_settings(json_object_get(body, "EndpointConfig"))) {
		api_reply_error(r, 400,
				"EndpointConfig: endpoint settings (aliases, addresses, links) "
				"are not supported by shoal");
		json_decref(body);
		return;
	}
	struct shoal_err err = {0};
	struct container *c = container_find(r->agent, ref, &err);
	if (!c) {
		api_reply_err(r, &err);
		json_decref(body);
		return;
	}
	if (connect)
		container_net_connect(c, r->params[0], r);
	else
		container_net_disconnect(c, r->params[0], r);
	json_decref(body);
}

void api_network_connect(struct api_req *r)
{
	connect_or_not(r, true);
}

void api_network_disconnect(struct api_req *r)
{
	connect_or_not(r, false);
}
