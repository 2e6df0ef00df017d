/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include <jansson.h>

#include "lib/err.h"

struct agent;

/*
 * Overlay networks on this node (agent/overlay-agent.c): from the store's
 * networks, endpoints and nodes, the VXLAN networks this node must have
 * (overlay/vxlan.h), made and kept so on a worker thread of its own.
 *
 * A network is materialised here only while a container on this node is on
 * it: then this node holds an address on it (its gateway endpoint) and
 * programs every endpoint of other nodes, gateways included, as a static FDB
 * and neighbour entry. Changes from the store's watches are coalesced into
 * one apply at a time; a resync every OVERLAY_RESYNC_S seconds repairs
 * whatever drifted in the kernel. The VXLAN source filter on the underlay
 * accepts the VTEP addresses of every node in the store.
 *
 * A node whose liveness (/shoal/alive/<id>) goes is forgotten at once: no
 * node programs its endpoints any more. Its records and addresses stay for
 * OVERLAY_RECLAIM_TTLS lease TTLs, then the leader gives them back; a node
 * back within that time finds them as it left them, one back later records
 * its running containers again at the addresses they use (when still free).
 */
#define OVERLAY_RESYNC_S     5
#define OVERLAY_RECLAIM_TTLS 3

/* Before the containers are loaded: the store's state read, so that a start
 * rolled back at load time can release its endpoint. Not fatal: without an
 * advertise address (or its device) overlay containers are refused. */
int overlay_agent_init(struct agent *a, struct shoal_err *err);
/* After the containers are loaded: what this node holds in the store and no
 * container of it uses is given back, devices of networks no longer wanted
 * are swept, the filter opened, the watches and the resync started. */
void overlay_agent_start(struct agent *a);
void overlay_agent_stop(struct agent *a);
/* --teardown: every overlay device of the prefix, the egress table and the
 * VXLAN source filter removed. */
int overlay_agent_teardown(struct agent *a, struct shoal_err *err);
/* /info's "ShoalOverlay": the filter (kind, fallback reason, drops) and the
 * networks materialised here. */
json_t *overlay_agent_info(struct agent *a);

/* Whether the routing mesh's return path is on here (lb.h's lb_mesh): then a
 * published port of a service on an overlay network is balanced over its
 * tasks on every node. */
bool overlay_mesh_on(struct agent *a);
/* Whether a container's network mode names an overlay network (not the
 * node's bridge, host or none). */
bool overlay_net_mode(const char *mode);
/* An overlay network by id, name or unique id prefix: its id in ret_id. 404
 * when there is none, 403 (Docker's words) when it is not attachable and the
 * container is not a service's task (tasks join any overlay network). */
int overlay_network_resolve(struct agent *a, const char *ref, bool for_task, char *ret_id,
			    size_t len, struct shoal_err *err);

/* What a container's endpoint on an overlay network uses, decided (and held
 * in the store) before any of it is made. */
struct overlay_ep_info {
	struct in_addr ip, gateway;
	uint8_t prefixlen;
	uint8_t mac[6];
	char netns_path[256];
	char host_ifname[16];
};

/* Takes an address on the network for endpoint ep_id (and this node's own
 * address on it if it has none yet), writes the endpoint's record. A clear
 * error naming the network when it is full. ifname: the name inside, NULL
 * for eth0 (the container's first network, in a namespace of its own), or
 * eth1... for a further network joined to that namespace (its host veth
 * named from the endpoint and the network). */
int overlay_ep_alloc(struct agent *a, const char *net_id, const char *ep_id, const char *name,
		     const char *ifname, struct overlay_ep_info *ret, struct shoal_err *err);
/* Materialises the network if needed and makes the endpoint's namespace and
 * veth (for a further network, the veth into the namespace that exists), on
 * the worker; cb(r, err, arg) on the loop when done. */
typedef void (*overlay_ep_done_cb)(int r, struct shoal_err *err, void *arg);
void overlay_ep_plumb(struct agent *a, const char *net_id, const char *ep_id, const char *ifname,
		      overlay_ep_done_cb cb, void *arg);
/* A further network's endpoint off a running container: its veth deleted on
 * the worker, then its address and record given back; cb when done. */
void overlay_ep_detach(struct agent *a, const char *net_id, const char *ep_id,
		       overlay_ep_done_cb cb, void *arg);
/* A further network's address and record given back, nothing else: its veth
 * goes with the container's namespace. */
void overlay_ep_forget(struct agent *a, const char *net_id, const char *ep_id);
/* The host end of a further network's veth. */
void overlay_ep_more_ifname(struct agent *a, const char *net_id, const char *ep_id, char ret[16]);
/* The name of overlay network net_id as this node knows it, NULL when it
 * does not (valid until the next store event). */
const char *overlay_network_name(struct agent *a, const char *net_id);
/* The ingress network's id (the one overlay network made with Ingress: the
 * routing mesh of services without a network of their own), NULL if none. */
const char *overlay_ingress_network(struct agent *a);
/* Docker's NetworksAttachments of a task whose container is ep_id, from the
 * endpoint records: [{"Network": {"ID", "Spec": {...}}, "Addresses": [CIDR]}];
 * an empty array when it has none (a new reference). */
json_t *overlay_ep_attachments(struct agent *a, const char *ep_id);
/* Gives the endpoint's address and record back and removes its namespace and
 * veth; the network goes from this node with its last endpoint. */
void overlay_ep_release(struct agent *a, const char *net_id, const char *ep_id);
/* The address of endpoint ep_id (a container's id) on network net_id while
 * its node is live as this node's overlay follows liveness (a dead node's
 * endpoints leave with its FDB entries) and, for another node's endpoint,
 * once its FDB and neighbour entries are in this node's kernel (the data
 * plane is told when that set changes); 0.0.0.0 otherwise. */
struct in_addr overlay_ep_addr(struct agent *a, const char *net_id, const char *ep_id);
/* The overlay network whose subnet holds addr: its id in ret_id. */
bool overlay_net_of_addr(struct agent *a, struct in_addr addr, char *ret_id, size_t len);
/* The address of a container named name (case-insensitive) on network net_id,
 * on any live node. */
bool overlay_ep_find_name(struct agent *a, const char *net_id, const char *name,
			  struct in_addr *ret);
/* Every endpoint record this node knows, as stored ({"ID", "Kind", "IP",
 * "Node", "Name", and for containers "Service" and "Labels"}), with the name
 * of its network, whether its node is live and whether it is this node. */
typedef void (*overlay_ep_record_cb)(const char *net_name, const json_t *rec, bool live, bool local,
				     void *userdata);
void overlay_ep_records(struct agent *a, overlay_ep_record_cb cb, void *userdata);
