/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

struct agent;
struct lb_service_key;
struct lb_backend_spec;

/*
 * Published ports: services' EndpointSpec.Ports and containers' PortBindings,
 * balanced by the eBPF data plane (lb/) on the node's uplinks: every interface
 * of the agent's network namespace but loopback and the agent's own devices,
 * rescanned on every resync so that interfaces that appear later get it too.
 * Backends follow tasks: running and healthy ones take new flows; stopping ones
 * are drained (existing flows only). Changes are map updates of the services
 * that changed, never a rebuild.
 *
 * Publish modes (EndpointSpec.Ports[].PublishMode): ingress ports are
 * published on the node whether or not a task runs there; host ports only
 * while a task of the service runs on the node, to that node's tasks, on
 * PublishedPort or, without one, on a port assigned per task and shown in
 * the task's Status.PortStatus.Ports.
 */
#define PUBLISH_PORT_MIN 30000 /* published ports assigned when none is given */
#define PUBLISH_PORT_MAX 32767

/* Opens (or re-opens, keeping flows) the pinned maps. Failure is not fatal:
 * publishing is then refused with the reason. */
int publish_init(struct agent *a, struct shoal_err *err);
void publish_free(struct agent *a);
/* Service VIPs are balanced at connect() (the socket hooks are on); when
 * not, service names resolve to task addresses. */
bool publish_vips_balanced(struct agent *a);
/* The data-plane features as this agent uses them, for /info:
 * [{"Name","State":"on|off|unavailable","Required","Description","Reason",
 *   "Provides","Fallback"}]. */
json_t *publish_features(struct agent *a);
struct lb_feature_status;
json_t *publish_features_json(const struct lb_feature_status *st);
/* True when the data plane is there; otherwise err says why not. */
bool publish_available(struct agent *a, struct shoal_err *err);
/* Programs the data plane from the store's services and tasks and the
 * node's containers. */
void publish_sync(struct agent *a, json_t *services, json_t *tasks);
/* Registers this node's running bridge containers as local endpoints of the
 * load balancer lb (published-port traffic to them skips the node's stack,
 * see lb_fwd_open()) and removes the ones gone. Without full, it trusts what
 * it programmed last and what it read of each container's veth since its
 * start (a sync costs what changed); full reads the map and the veths again
 * and puts back what someone else removed. */
struct lb;
void publish_fwd_sync(struct agent *a, struct lb *lb, bool full);
/* The same, now, on the load balancer of the last sync (policy coming or
 * going decides whether containers are direct endpoints at all). */
void publish_fwd_resync(struct agent *a);
void publish_fwd_free(struct agent *a);
/* Without the node hooks, published ports reached from the node itself
 * (localhost:PORT, the node's addresses, its containers) go through a
 * userland proxy instead: the agent listens on 0.0.0.0:PORT of every
 * "proto/port" key of programmed (publish_sync()'s form; VIP keys are left
 * out) and relays each TCP connection or UDP client to one of the port's
 * active backends, round-robin. Opens listeners for new ports (one that
 * cannot be bound is logged once and retried on later syncs), closes those of
 * ports gone with their connections, and updates the backends of the rest in
 * place: open connections keep theirs. */
void publish_proxy_sync(struct agent *a, json_t *programmed);
void publish_proxy_free(struct agent *a);
/* Attaches to uplinks that appeared since the last scan, and gives the node
 * hooks (published ports reached from the node itself: localhost:PORT and
 * the node's addresses) the node's current addresses. */
void publish_scan_uplinks(struct agent *a);
/* `shoal run -p`: a container's HostConfig.PortBindings need the data plane
 * and ports nobody publishes (409 naming the owner). */
int publish_bindings_check(struct agent *a, json_t *port_bindings, struct shoal_err *err);
/* Who publishes proto/port already ("service web", "container x"), or NULL.
 * except_id: a service or container id to leave out (its own update). */
const char *publish_port_owner(struct agent *a, int proto, int port, const char *except_id,
			       char *buf, size_t len);
/* Service virtual IPs come from this range; they are never routed: the socket
 * hooks translate them at connect(). */
#define PUBLISH_VIP_BASE  "10.214.0.0"
#define PUBLISH_VIP_COUNT 65534
/*
 * Allocations (agent/publish-alloc.c): each VIP and published port a service
 * holds is a key, created only while absent, whose value names the service:
 * {"ServiceID": id}. They are written in one transaction with the service
 * record, so that two managers never hand out the same one and a record never
 * disagrees with its keys.
 */
#define PUBLISH_ALLOC_VIPS  "/shoal/ipam/vips/"
#define PUBLISH_ALLOC_PORTS "/shoal/ports/"
/* Writes the service record svc if its version is still expect_rev (0: only
 * if absent; -1: unconditionally), with the allocations it holds: a new
 * service that wants a VIP (not dnsrr) gets the lowest free one
 * ("10.214.0.1" first); an ingress port without PublishedPort gets the
 * lowest free port of the assignment range (svc is updated with both); every
 * other published port is reserved as given, 409 naming the service that
 * holds it otherwise. What prev (the record as read before an update; NULL
 * for a create) held and svc no longer does is freed; a record marked
 * Removed holds nothing. Another manager taking a VIP or port picked here
 * means picking again; the record having changed is a 409. */
int publish_service_commit(struct agent *a, json_t *svc, json_t *prev, int64_t expect_rev,
			   int64_t *ret_rev, struct shoal_err *err);
/* Frees the allocation keys no service holds (its record gone or removed, its
 * spec no longer publishing the port) and reserves those records name without
 * a key (a store written before reservations), where still free. */
int publish_alloc_reconcile(struct agent *a, struct shoal_err *err);
/* Counters of one published port, for inspect: {"Packets","Bytes","NewFlows",
 * "Backends":[{"Addr","Port","State","Packets","Bytes","NewFlows"}]} or NULL. */
json_t *publish_port_stats(struct agent *a, int proto, int port);
/* Every published port with its owner, backends and counters, and the drops by
 * reason: {"Ports":[{"Protocol","PublishedPort","Owner",...stats}],"Drops":{reason:n}}. */
json_t *publish_list(struct agent *a);

/* The pure part of publish_sync(), exposed for tests. */
/* A task -> the address of its container on this node, 0 if none here; with
 * net (an overlay network's id), its address on that network on any live
 * node, 0 if none. */
typedef struct in_addr (*publish_addr_fn)(void *ctx, json_t *task, const char *net);
/* The overlay network a service's tasks join: Spec.TaskTemplate.Networks[0]'s
 * id; without one, the ingress network (its id, NULL if there is none) for a
 * service publishing a port in ingress mode, as swarm attaches it; NULL for
 * the node's bridge. */
const char *publish_service_network(json_t *svc, const char *ingress);
/* Whether a service publishes a port in ingress mode (the routing mesh). */
bool publish_service_meshed(json_t *svc);
/* A service record's VIPs on its further networks (Networks[1..]):
 * {"<network id>": "<ip>"}; VirtualIP is its first network's. */
#define PUBLISH_MORE_VIPS "MoreVirtualIPs"
/* Its i-th overlay network's id (0: publish_service_network()'s) and the VIP
 * there (NULL for none); false past its last. */
bool publish_service_net_at(json_t *svc, size_t i, const char *ingress, const char **ret_net,
			    const char **ret_vip);
/* A task that takes new connections: observed and desired running, not
 * unhealthy (the VIP's active backends; the DNS's task answers). */
bool publish_task_active(json_t *t);
/* What the data plane should hold: {"tcp/8080": "10.213.0.5:80:1,...",
 * "udp/10.214.0.2/0": "..."}: per key ("proto/port" for a published port,
 * "proto/vip/0" for a service VIP), its backends "addr:port:state," sorted.
 * A VIP's backends are its tasks' addresses on the service's overlay network
 * (addr_of with the network) or, for a bridge service, this node's tasks; with
 * mesh (the routing mesh's return path is there), so are an ingress port's.
 * ingress: the ingress network's id, NULL if there is none.
 * services and tasks as the store has them; containers:
 * [{"Addr": "10.213.0.9" or "", "PortBindings": {"80/tcp": [{"HostPort": "8081"}]}}]. */
json_t *publish_desired(json_t *services, json_t *tasks, json_t *containers,
			publish_addr_fn addr_of, void *ctx, bool mesh, const char *ingress);
/* The writes that take the data plane from programmed (same form, as last
 * written) to desired: {"Upsert": {key: backends}, "Delete": [key]}. */
json_t *publish_plan(json_t *desired, json_t *programmed);
int publish_parse_key(const char *key, struct lb_service_key *ret);
/* "addr:port:state,..." -> specs; *ret is malloc'ed. */
int publish_parse_backends(const char *joined, struct lb_backend_spec **ret, size_t *ret_n);
/* The task's own host port for proto/target (Status.PortStatus), or 0. */
int publish_task_host_port(json_t *task, int proto, int target);
