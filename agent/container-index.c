// SPDX-License-Identifier: Apache-2.0
/* The node's containers by id and by name: container_find() and the data
 * plane's task -> container lookups are a hash probe, not a walk of every
 * container. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/container-internal.h"

/* AGENT_MAX_CONTAINERS bounds the entries: chains stay short. */
#define CONTAINER_INDEX_BUCKETS 4096u

struct container_index {
	struct container *by_id[CONTAINER_INDEX_BUCKETS];
	struct container *by_name[CONTAINER_INDEX_BUCKETS];
};

static size_t bucket(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % CONTAINER_INDEX_BUCKETS;
}

int container_index_add(struct agent *a, struct container *c)
{
	if (!a->container_index) {
		a->container_index = calloc(1, sizeof(*a->container_index));
		if (!a->container_index)
			return -1;
	}
	struct container_index *ix = a->container_index;
	size_t b = bucket(c->id);
	c->id_next = ix->by_id[b];
	ix->by_id[b] = c;
	b = bucket(c->name);
	c->name_next = ix->by_name[b];
	ix->by_name[b] = c;
	return 0;
}

void container_index_del(struct agent *a, struct container *c)
{
	struct container_index *ix = a->container_index;
	if (!ix)
		return;
	for (struct container **pp = &ix->by_id[bucket(c->id)]; *pp; pp = &(*pp)->id_next)
		if (*pp == c) {
			*pp = c->id_next;
			break;
		}
	for (struct container **pp = &ix->by_name[bucket(c->name)]; *pp; pp = &(*pp)->name_next)
		if (*pp == c) {
			*pp = c->name_next;
			break;
		}
	c->id_next = c->name_next = NULL;
}

void container_index_free(struct agent *a)
{
	free(a->container_index);
	a->container_index = NULL;
}

struct container *container_index_by_id(struct agent *a, const char *id)
{
	if (!a->container_index)
		return NULL;
	for (struct container *c = a->container_index->by_id[bucket(id)]; c; c = c->id_next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

struct container *container_get(struct agent *a, const char *id)
{
	return id ? container_index_by_id(a, id) : NULL;
}

struct container *container_index_by_name(struct agent *a, const char *name)
{
	if (!a->container_index)
		return NULL;
	for (struct container *c = a->container_index->by_name[bucket(name)]; c; c = c->name_next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}
