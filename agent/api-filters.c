// SPDX-License-Identifier: Apache-2.0
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "agent/api.h"
#include "lib/cleanup.h"

json_t *api_filters(struct api_req *r, const char *const *supported, size_t n_supported)
{
	const char *q = api_query(r, "filters");
	json_t *out = json_object();
	if (!q || !*q)
		return out;
	json_error_t jerr;
	json_t *in = json_loads(q, 0, &jerr);
	if (!json_is_object(in)) {
		json_decref(in);
		json_decref(out);
		api_reply_error(r, 400, "filters: not a JSON object (%s)", jerr.text);
		return NULL;
	}
	const char *key;
	json_t *v;
	json_object_foreach(in, key, v)
	{
		bool ok = false;
		for (size_t i = 0; i < n_supported; i++)
			ok |= strcmp(key, supported[i]) == 0;
		if (!ok) {
			char list[512] = "";
			for (size_t i = 0; i < n_supported; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 i ? ", " : "", supported[i]);
			json_decref(out);
			/* key is in's: the reply is made before in goes */
			api_reply_error(r, 400, "filters: %s is not supported here (only %s)", key,
					list);
			json_decref(in);
			return NULL;
		}
		/* {"name": {"web": true}} (Docker's) or {"name": ["web"]} (older clients) */
		json_t *vals = json_array();
		if (json_is_object(v)) {
			const char *k;
			json_t *b;
			json_object_foreach(v, k, b) if (json_is_true(b))
				json_array_append_new(vals, json_string(k));
		} else if (json_is_array(v)) {
			size_t i;
			json_t *s;
			json_array_foreach(v, i, s) if (json_is_string(s))
				json_array_append(vals, s);
		} else {
			json_decref(vals);
			json_decref(out);
			api_reply_error(r, 400,
					"filters: %s: expected {\"VALUE\": true} or [\"VALUE\"]",
					key);
			json_decref(in);
			return NULL;
		}
		json_object_set_new(out, key, vals);
	}
	json_decref(in);
	return out;
}

bool api_filter_match(json_t *filters, const char *key, bool (*match)(const char *v, void *ctx),
		      void *ctx)
{
	json_t *vals = json_object_get(filters, key);
	if (!vals)
		return true;
	size_t i;
	json_t *v;
	json_array_foreach(vals, i, v) if (match(json_string_value(v), ctx)) return true;
	return json_array_size(vals) == 0;
}

bool api_filter_regex(const char *pattern, const char *s)
{
	regex_t re;
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return strstr(s, pattern) != NULL;
	bool m = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

bool api_filter_label(json_t *labels, const char *want)
{
	const char *eq = strchr(want, '=');
	if (!eq)
		return json_object_get(labels, want) != NULL;
	char k[256];
	snprintf(k, sizeof(k), "%.*s", (int)(eq - want), want);
	const char *have = json_string_value(json_object_get(labels, k));
	return have && strcmp(have, eq + 1) == 0;
}
