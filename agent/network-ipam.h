/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

/*
 * Subnets and VXLAN ids of the cluster's networks, decided on one record that
 * every change replaces by compare-and-swap (agent/networks.c): two managers
 * creating networks at once never hand out overlapping subnets or one VNI
 * twice. Pure: the record in, the decision out.
 *
 * The record: {"Subnets": {"10.0.1.0/24": NETWORK_ID, ...},
 *              "VNIs": {"4097": NETWORK_ID, ...}}
 */

/* The default pool, as swarm's: /24s out of 10.0.0.0/8. */
#define NET_POOL_DEFAULT "10.0.0.0/8"
#define NET_POOL_SIZE	 24
#define NET_VNI_FIRST	 4097
#define NET_VNI_LAST	 16777215
#define NET_MAX_NETWORKS 4096

struct net_cidr {
	uint32_t addr; /* host order, host bits zero */
	uint8_t prefix;
};

/* "a.b.c.d/n" with no host bits set; field names it in the message. */
int net_cidr_parse(const char *field, const char *s, struct net_cidr *ret, struct shoal_err *err);
void net_cidr_format(const struct net_cidr *c, char *buf, size_t len);
bool net_cidr_overlap(const struct net_cidr *a, const struct net_cidr *b);

struct net_alloc_req {
	const char *network_id;
	const char *subnet;  /* NULL: the first free /NET_POOL_SIZE of the pool */
	const char *gateway; /* NULL: the subnet's first address */
	uint32_t vni;	     /* 0: the lowest free from NET_VNI_FIRST */
	/* subnets no network may overlap (the node's bridge), NULL-terminated */
	const char *const *avoid;
};

struct net_alloc {
	char subnet[32], gateway[20];
	uint32_t vni;
};

/* Adds the network to the record (a new object in *ret_record) or says why not:
 * an overlapping subnet (naming the network that has it), a gateway outside
 * the subnet or on its network/broadcast address, a VNI taken, the pool or the
 * VNI range exhausted. err->status 400 for bad input, 409 for conflicts. */
int net_ipam_alloc(json_t *record, const struct net_alloc_req *req, json_t **ret_record,
		   struct net_alloc *ret, struct shoal_err *err);
/* The record without the network (a new object). */
json_t *net_ipam_release(json_t *record, const char *network_id);
