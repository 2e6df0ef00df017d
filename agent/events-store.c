// SPDX-License-Identifier: Apache-2.0
/*
 * Docker's swarm-scoped events (service, node, network) from the store's
 * watch rather than from the API handlers, so that every node's /events shows
 * what any manager changed: a record's first put is "create", a later one
 * "update", its deletion "remove" ("destroy" for a network, as Docker names
 * it); a node's liveness coming and going is an "update" with state.old and
 * state.new. Deletions carry no value: the names seen are kept to name them.
 */
#include <string.h>

#include <jansson.h>

#include "agent/cluster.h"
#include "agent/events.h"
#include "agent/membership.h"
#include "agent/networks.h"
#include "agent/store/store.h"
#include "lib/cleanup.h"

/* key -> the name its record had */
static json_t *names;

static const char *record_name(const char *type, json_t *rec)
{
	if (strcmp(type, "service") == 0)
		return json_string_value(json_object_get(json_object_get(rec, "Spec"), "Name"));
	if (strcmp(type, "node") == 0)
		return json_string_value(
			json_object_get(json_object_get(rec, "Description"), "Hostname"));
	return json_string_value(json_object_get(rec, "Name"));
}

static void one(struct agent *a, const struct store_event *ev, const char *type, size_t plen)
{
	const struct store_kv *kv = &ev->kv;
	const char *id = kv->key + plen;
	if (!*id || strchr(id, '/'))
		return;
	if (!names && !(names = json_object()))
		return;
	const char *action;
	if (ev->type == STORE_EVENT_DELETE) {
		action = strcmp(type, "network") == 0 ? "destroy" : "remove";
	} else {
		_cleanup_(json_decrefp) json_t *rec = json_loadb(kv->value, kv->value_len, 0, NULL);
		const char *name = record_name(type, rec);
		if (name)
			json_object_set_new(names, kv->key, json_string(name));
		action = kv->create_revision == kv->mod_revision ? "create" : "update";
	}
	json_t *n = json_object_get(names, kv->key);
	json_t *attrs = json_object();
	if (n && attrs)
		json_object_set(attrs, "name", n);
	if (attrs && strcmp(type, "network") == 0)
		json_object_set_new(attrs, "type", json_string("overlay"));
	events_publish(a, type, action, id, NULL, attrs);
	if (ev->type == STORE_EVENT_DELETE)
		json_object_del(names, kv->key);
}

/* /shoal/alive/<id>: a node up or down, named by its record's last name. */
static void liveness(struct agent *a, const struct store_event *ev, size_t plen)
{
	const char *id = ev->kv.key + plen;
	if (!*id || strchr(id, '/'))
		return;
	char key[512];
	snprintf(key, sizeof(key), "%s%s", CLUSTER_NODES, id);
	bool up = ev->type == STORE_EVENT_PUT;
	/* a renewal of the lease is no news: only the first put of a key */
	if (up && ev->kv.create_revision != ev->kv.mod_revision)
		return;
	json_t *attrs = json_pack("{s:s, s:s}", "state.old", up ? "down" : "ready", "state.new",
				  up ? "ready" : "down");
	json_t *n = names ? json_object_get(names, key) : NULL;
	if (attrs && n)
		json_object_set(attrs, "name", n);
	events_publish(a, "node", "update", id, NULL, attrs);
}

void events_from_store(struct agent *a, const struct store_event *events, size_t n)
{
	static const struct {
		const char *prefix, *type;
	} kinds[] = {
		{CLUSTER_SERVICES, "service"},
		{CLUSTER_NODES, "node"},
		{CLUSTER_NETWORKS, "network"},
	};
	size_t alen = strlen(CLUSTER_ALIVE);
	for (size_t i = 0; i < n; i++) {
		const char *key = events[i].kv.key;
		if (strncmp(key, CLUSTER_ALIVE, alen) == 0) {
			liveness(a, &events[i], alen);
			continue;
		}
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			size_t plen = strlen(kinds[k].prefix);
			if (strncmp(key, kinds[k].prefix, plen) == 0) {
				one(a, &events[i], kinds[k].type, plen);
				break;
			}
		}
	}
}

void events_store_forget(void)
{
	json_decref(names);
	names = NULL;
}
