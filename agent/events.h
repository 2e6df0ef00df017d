/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "agent/http.h"

struct agent;
struct container;

/*
 * The node's event bus: what happened to its objects, in Docker's event form
 * (Type, Action, Actor{ID, Attributes}, time, timeNano). The last
 * EVENTS_RING_SIZE events are kept in memory for GET /events?since=; followers
 * (an /events stream without an until in the past) get each new one as it is
 * published. Publishing is a few allocations and one write per follower: it is
 * safe on any path of the loop.
 */
#define EVENTS_RING_SIZE     1000
#define EVENTS_MAX_FOLLOWERS 256
/* A follower whose unsent output grows past this is cut off. */
#define EVENTS_MAX_BACKLOG (4u << 20)

/* One event of type ("container", "image", ...) about id. attrs (stolen, may
 * be NULL) become Actor.Attributes; from is the image, for containers. */
void events_publish(struct agent *a, const char *type, const char *action, const char *id,
		    const char *from, json_t *attrs);
/* A container event: Attributes are its labels, image and name, and key=value
 * when key is not NULL (exitCode for die, signal for kill, oldName for rename). */
void events_container(struct container *c, const char *action, const char *key, const char *value);
/* An image event (tag, untag, delete, load, pull) about image id, named name. */
void events_image(struct agent *a, const char *action, const char *id, const char *name);

/* A volume event (create, destroy) about volume name. */
void events_volume(struct agent *a, const char *action, const char *name);
/* Around a container's run, as Docker has them: at its start, network
 * connect (its network) and volume mount (each named volume); at its end,
 * network disconnect and volume unmount. */
/* A network's connect or disconnect event for container c (net: its id or
 * bridge, host, none). */
void events_container_network(struct container *c, const char *net, bool connect);
void events_container_run(struct container *c, bool start);
struct store_event;
/* The service, node and network events in a batch of the store's watch
 * (agent/events-store.c): every node sees every manager's changes. */
void events_from_store(struct agent *a, const struct store_event *events, size_t n);
void events_store_forget(void);

/* Ends every follower's stream and drops the ring (at agent shutdown). */
void events_shutdown(void);
