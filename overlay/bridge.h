/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "lib/err.h"

/*
 * The default local "bridge" network: one Linux bridge on the node
 * (<prefix>0, e.g. "shoal0"), a /16 (default 10.213.0.0/16, configurable)
 * with the gateway (.1) on the bridge, a veth pair per container (host side
 * "<prefix>v<8 hex>", container side moved into the container's netns and
 * renamed eth0), an IP per container from a bitmap IPAM, a default route via
 * the gateway, and outbound masquerading of the subnet to anything not on the
 * bridge (nftables table "ip <prefix>_nat", via libnftables).
 *
 * All links made through netlink (libnl-route-3). Everything carries the
 * prefix, so several agents with different prefixes and netns never collide,
 * and bridge_net_teardown() removes all of it.
 */

/* A bridge_net is used by one thread at a time (it keeps one netlink socket
 * and one request buffer). */
struct bridge_net;

struct bridge_net_options {
	const char *prefix;    /* device/table name prefix, e.g. "shoal" (<= 8 chars) */
	const char *subnet;    /* CIDR, default "10.213.0.0/16" */
	const char *netns_dir; /* where container netns are bind-mounted: $rundir/netns */
	int mtu;	       /* 0 = the default route's device MTU, else 1500 */
};

/* Creates (or adopts, if it exists with the same config) the bridge, its
 * address, the NAT table, enables ip_forward. */
int bridge_net_setup(const struct bridge_net_options *opts, struct bridge_net **ret,
		     struct shoal_err *err);
/* Frees memory only; kernel objects stay (containers keep working). */
void bridge_net_free(struct bridge_net *bn);
/* Removes the bridge, every <prefix>v* veth, the NAT table and the forward
 * accept rules setup added, and with netns_dir set, every namespace mounted
 * there and the directory's own mount: run it with no container left. */
int bridge_net_teardown(const struct bridge_net_options *opts, struct shoal_err *err);

/* Marks an address in use (re-adoption after an agent restart). */
int bridge_net_reserve(struct bridge_net *bn, struct in_addr addr, struct shoal_err *err);

struct bridge_endpoint {
	char netns_path[256]; /* bind mount of the container's netns */
	char host_ifname[16];
	struct in_addr addr;
	struct in_addr gateway;
	uint8_t prefixlen;
	uint8_t mac[6];
};

/* Creates a new netns bind-mounted at <netns_dir>/<id>, brings lo up, makes the
 * veth pair, moves the peer in as eth0 with a free address, MAC derived from
 * the address (02:42:a.b.c.d as Docker), default route via the gateway.
 * This is on the container start path: keep it to a handful of netlink
 * round trips (target well under 5 ms). -EEXIST if <netns_dir>/<id> exists,
 * -ENOSPC when the subnet is full; on error nothing is left behind. */
int bridge_net_attach(struct bridge_net *bn, const char *id, struct bridge_endpoint *ret,
		      struct shoal_err *err);
/*
 * bridge_net_attach() in two steps, for a caller that must record what an
 * endpoint uses before it is made (so that an agent killed in between finds
 * it and can finish or undo it):
 * _alloc takes a free address and fills in everything the endpoint will have
 * (netns path, host veth name, address, gateway, MAC) without touching the
 * kernel; _plumb makes the netns and the veth for it. On a failed _plumb
 * nothing is left in the kernel and the address stays taken: release it with
 * bridge_net_detach(). bridge_net_endpoint_fill() fills in the same for an
 * address the caller already holds (recorded, then bridge_net_reserve()d).
 * _plumb (alone of these functions) may run on another thread than the one
 * using bn, beside it: it only reads what bridge_net_setup() fixed, with a
 * netlink socket of its own.
 */
int bridge_net_endpoint_alloc(struct bridge_net *bn, const char *id, struct bridge_endpoint *ret,
			      struct shoal_err *err);
int bridge_net_endpoint_fill(struct bridge_net *bn, const char *id, struct in_addr addr,
			     struct bridge_endpoint *ret, struct shoal_err *err);
int bridge_net_endpoint_plumb(struct bridge_net *bn, const char *id,
			      const struct bridge_endpoint *ep, struct shoal_err *err);

/* Deletes the veth, unmounts and removes the netns file, releases the address
 * (addr 0.0.0.0: none to release). Idempotent: missing pieces are not errors.
 * The veth deletion waits for the kernel's RCU grace periods: tens of ms, so
 * callers on an event loop run it on a worker. */
int bridge_net_detach(struct bridge_net *bn, const char *id, struct in_addr addr,
		      struct shoal_err *err);

/*
 * After a crash: removes what no endpoint in keep (n ids) owns, that is every
 * namespace mounted under netns_dir and every <prefix>v* veth that belongs to
 * none of them. Another agent's objects (another prefix, another netns_dir)
 * are never looked at. Namespaces go first (the kernel's asynchronous cleanup
 * takes their veths); each veth still listed after that is deleted here, tens
 * of ms each: a cost only orphans pay. Returns how many objects it removed.
 * Addresses need no sweep: the IPAM holds only what was reserved since setup.
 */
int bridge_net_sweep(struct bridge_net *bn, const char *const *keep, size_t n,
		     struct shoal_err *err);

/* A netns for --network none that the agent can hold the same way: created,
 * lo up, bind-mounted at <netns_dir>/<id>. (The runtime can also make its own;
 * this exists for callers that need the path before start.) */
int netns_create(const char *path, struct shoal_err *err);
int netns_remove(const char *path);
/* A fresh network namespace with lo up, nothing else, never used before: from
 * a small pool that a background thread of this process keeps filled (started
 * on the first call, refilling at a lower priority), or, when the pool is
 * empty, made on the spot (make) or not at all (-EAGAIN: the caller lets the
 * container make its own, which costs the start less than waiting here).
 * Returns an fd to it and, with ret_nlfd, a NETLINK_ROUTE socket inside it
 * (both close-on-exec). Thread-safe. */
int netns_pool_take(bool make, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err);

/* IPAM over one IPv4 subnet; pure logic, unit-tested without root. The network
 * address, the gateway (.1) and broadcast are never handed out. Allocation is
 * next-fit so that a just-released address is not reused at once. */
struct ipam;
int ipam_new(const char *cidr, struct ipam **ret, struct shoal_err *err);
void ipam_free(struct ipam *ip);
int ipam_alloc(struct ipam *ip, struct in_addr *ret);
int ipam_reserve(struct ipam *ip, struct in_addr addr); /* -EEXIST if taken, -ERANGE if outside */
/* -ENOENT if not in use, -EINVAL for network/gateway/broadcast, -ERANGE if outside. */
int ipam_release(struct ipam *ip, struct in_addr addr);
struct in_addr ipam_gateway(const struct ipam *ip);
uint8_t ipam_prefixlen(const struct ipam *ip);
uint32_t ipam_free_count(const struct ipam *ip);
/* Parses "a.b.c.d/n" (n in 8..30, host bits clear) with a message on error. */
int ipam_parse_cidr(const char *cidr, struct in_addr *ret_net, uint8_t *ret_prefixlen,
		    struct shoal_err *err);
bool ipam_contains(const struct ipam *ip, struct in_addr addr);
struct in_addr ipam_network(const struct ipam *ip);
struct in_addr ipam_broadcast(const struct ipam *ip);

/* Host-side veth name of endpoint id: "<prefix>v" and hex only, <= 15 chars. */
void bridge_host_ifname(const char *prefix, const char *id, char ret[16]);
