/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "agent/container.h"

/* Shared by container.c (lifecycle), container-json.c (records and views)
 * and container-bundle.c (generated /etc files). */
json_t *strv_to_json(char **v);
char **json_to_strv(json_t *arr);
enum container_state container_state_from_name(const char *s);

/* The containers by id and by name (container-index.c): every linked
 * container is in it. -1 when out of memory. */
int container_index_add(struct agent *a, struct container *c);
void container_index_del(struct agent *a, struct container *c);
void container_index_free(struct agent *a);
struct container *container_index_by_id(struct agent *a, const char *id);
struct container *container_index_by_name(struct agent *a, const char *name);

/* The container's /etc/hosts and /etc/resolv.conf as a start writes them
 * (malloc'ed; NULL when out of memory). */
char *container_make_hosts(struct container *c, const char *hostname);
char *container_make_resolv_conf(struct container *c);
/* After a create: writes the bundle's files soon, off the reply's path. */
void container_bundle_soon(struct container *c);
/* At a start: true when the bundle already holds exactly these files (the
 * first start after a create); from then on every start writes them. */
bool container_bundle_take(struct container *c, const char *hostname, const char *hosts,
			   const char *resolv);

/* Restart policies (container-restart.c). After an exit has been handled:
 * schedules a restart on a timer when the policy asks for one. */
void container_restart_after_exit(struct container *c);
/* At agent start, once every container is loaded and re-adopted: starts the
 * stopped ones the policy restarts at boot, and resumes restarts the agent
 * was stopped in the middle of. */
void container_restart_at_load(struct container *c);
/* Answers the waiters of its exit (a restart cancelled: it stays stopped). */
void container_waiters_notify(struct container *c);
/* Cancels a pending restart (rm -f, stop); false when none was pending. */
bool container_restart_cancel(struct container *c);

/* Between container.c and container-start.c. */
/* Writes the container's record after the reply goes out. */
void container_persist_soon(struct container *c);
/* Whether it has HostConfig.PortBindings (the data plane follows it). */
bool container_publishes(struct container *c);
/* Opens the monitor's "wait" connection, through which its exit arrives. */
int container_watch_exit(struct container *c, struct shoal_err *err);
/* Its exit as the monitor left it on disk (a monitor that vanished). */
void container_exit_from_disk(struct container *c);
/* Gives its network end back (address, veth, namespace, endpoint). */
void container_network_release(struct container *c);
/* Its further networks (container-nets.c): taken from a create's
 * NetworkingConfig.EndpointsConfig (task: a service's, which joins any
 * overlay network); as its record holds them; attached at a start once the
 * first network is in place (done(r, err, arg) on the loop); given back with
 * the first. */
int container_nets_from_create(struct container *c, json_t *body, bool task, struct shoal_err *err);
json_t *container_nets_record(struct container *c);
void container_nets_load(struct container *c, json_t *arr);
typedef void (*container_nets_done_cb)(int r, struct shoal_err *err, void *arg);
void container_nets_attach(struct container *c, container_nets_done_cb done, void *arg);
void container_nets_release(struct container *c);
/* Answers its waiters; removed: the container is going. */
void container_notify_waiters(struct container *c, bool removed);
