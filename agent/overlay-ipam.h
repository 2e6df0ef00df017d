/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include <jansson.h>

#include "lib/err.h"

/*
 * Endpoint addresses on overlay networks, and the records that say where an
 * endpoint is: the pure half (no store, no kernel) of agent/overlay-agent.c.
 *
 * One key per address, created only while absent (a transaction comparing
 * its create revision with 0):
 *     /shoal/ipam/addr/<network id>/<a.b.c.d> = {"Node": ID, "Endpoint": ID}
 * Two nodes allocating at once collide only when they try the very same
 * address, and each starts its search at an offset hashed from the endpoint's
 * id, so that they rarely do; a single record for the whole network would
 * make every allocation on every node contend on one revision. Freeing is
 * one delete, compared against the owner it was written with.
 *
 * Where an endpoint is, for the other nodes' FDB and neighbour entries:
 *     /shoal/endpoints/<network id>/<endpoint id> =
 *         {"ID", "Network", "Kind": "container"|"gateway", "Name", "IP", "MAC",
 *          "Node", "VTEP"}
 * A node's own address on a network (its "gateway": the containers' default
 * route, the node's source address towards them) is an endpoint of kind
 * gateway with the id "node-<node id>", allocated the same way.
 */
#define OVL_ADDR_PREFIX	    "/shoal/ipam/addr/"
#define OVL_ENDPOINT_PREFIX "/shoal/endpoints/"
#define OVL_GATEWAY_EP	    "node-"
#define OVL_ID_MAX	    128

/* The address space of one network, host byte order. */
struct ovl_subnet {
	uint32_t net;
	uint8_t prefix;	  /* 8 .. 30 */
	uint32_t gateway; /* the network's configured gateway: never handed out */
};

/* The parts of a stored network (Docker's JSON) the overlay needs. */
struct ovl_network {
	char id[OVL_ID_MAX + 1];
	char name[OVL_ID_MAX + 1];
	uint32_t vni;
	struct ovl_subnet subnet;
	int mtu; /* the network's mtu option; 0: underlay - 50 */
	bool attachable;
	bool internal;
};

/* From a network object; a message naming what is wrong otherwise. */
int ovl_network_parse(json_t *net, struct ovl_network *ret, struct shoal_err *err);

/* Addresses that can be handed out: all but network, broadcast, gateway. */
uint32_t ovl_subnet_capacity(const struct ovl_subnet *s);
bool ovl_subnet_contains(const struct ovl_subnet *s, uint32_t addr);
/* A start offset for owner's search (a hash of it), inside the subnet. */
uint32_t ovl_ipam_hint(const struct ovl_subnet *s, const char *owner);
/* The first address at or after hint (wrapping round the subnet) that is
 * neither network, broadcast nor gateway, nor in taken (n addresses, host
 * order, any order, duplicates allowed). -ENOSPC when there is none. */
int ovl_ipam_pick(const struct ovl_subnet *s, const uint32_t *taken, size_t n, uint32_t hint,
		  uint32_t *ret);

/* "<prefix><network>/<rest>": the two parts, or -EINVAL for another shape. */
int ovl_key_split(const char *key, const char *prefix, char *ret_net, size_t netlen, char *ret_rest,
		  size_t restlen);

enum ovl_ep_kind { OVL_EP_CONTAINER, OVL_EP_GATEWAY };

struct ovl_endpoint {
	char id[OVL_ID_MAX + 1];
	char net[OVL_ID_MAX + 1];
	char node[65];
	char name[OVL_ID_MAX + 1];
	enum ovl_ep_kind kind;
	struct in_addr ip, vtep;
	uint8_t mac[6];
};

/* An endpoint record (JSON text) checked and read. */
int ovl_endpoint_parse(const char *text, size_t len, struct ovl_endpoint *ret,
		       struct shoal_err *err);
/* The record of ep, as compact JSON text (free()); NULL on ENOMEM. */
char *ovl_endpoint_format(const struct ovl_endpoint *ep);
/* The owner value of an address key (free()); NULL on ENOMEM. */
char *ovl_addr_owner(const char *node, const char *endpoint);

/* The names (ids when unnamed) of the container endpoints among n records
 * (texts[i], lens[i] long), ", "-separated in buf, ending in "..." when they
 * do not all fit; gateways and unreadable records left out. Returns how many
 * container endpoints there are, listed or not. */
size_t ovl_endpoint_names(const char *const *texts, const size_t *lens, size_t n, char *buf,
			  size_t len);
/* One of Docker's NetworksAttachments: {"Network": {"ID", "Spec": {"Name",
 * "Labels", "DriverConfiguration", "Scope", "Attachable", "Internal"}},
 * "Addresses": ["a.b.c.d/prefix"]}; labels borrowed (NULL: none). NULL on
 * ENOMEM. */
json_t *ovl_attachment(const struct ovl_network *n, json_t *labels, struct in_addr ip);
