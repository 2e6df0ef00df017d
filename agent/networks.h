/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "lib/err.h"

struct agent;

/*
 * Networks, as Docker's objects. The node's own: bridge, host and none (scope
 * local, not stored). The cluster's: overlay networks (scope swarm) under
 * /shoal/networks/<id>, their names, subnets and VXLAN ids reserved together
 * in one record (/shoal/ipam/networks) that every change replaces by
 * compare-and-swap (agent/network-ipam.h), so that managers creating networks
 * at once never hand out a name, a subnet or a VNI twice.
 */
#define CLUSTER_NETWORKS   "/shoal/networks/"
#define CLUSTER_NET_RECORD "/shoal/ipam/networks"

/* POST /networks/create's body, checked (unsupported fields refused naming
 * them), then reserved and stored. *ret: {"Id", "Warning"}. */
int network_create(struct agent *a, json_t *body, json_t **ret, struct shoal_err *err);
/* Every network, the node's and the cluster's. */
int network_list(struct agent *a, json_t **ret, struct shoal_err *err);
/* By full id, name, or a unique id prefix; err->status 404 when none. */
int network_get(struct agent *a, const char *ref, json_t **ret, struct shoal_err *err);
/* The network a container's network mode names, as events show it: its id
 * in id, its name and driver ("bridge", "host", "null", "overlay"). False
 * for a mode that names no network (container:ID). */
bool network_of_mode(struct agent *a, const char *mode, char id[65], const char **ret_name,
		     const char **ret_driver);
/* Refused for the node's networks (403), and (409) while services use it or
 * containers have endpoints on it, naming them. */
int network_remove(struct agent *a, const char *ref, struct shoal_err *err);
