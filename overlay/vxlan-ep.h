/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <netinet/in.h>

#include "lib/err.h"

/*
 * A container's endpoint on an overlay network: a network namespace
 * bind-mounted at netns_path, a veth pair whose host end is a port of the
 * network's bridge (vxlan_net_apply() made it) and whose other end is eth0
 * inside, with the endpoint's MAC, address and the network's MTU, and a
 * default route via this node's address on the network. The same shape as
 * the bridge network's endpoints (overlay/bridge.h), so the agent's sweep of
 * namespaces and veths after a crash covers both.
 *
 * Blocking netlink (a veth deletion waits for RCU grace periods): callers on
 * an event loop run these on a worker. Each call opens its own sockets.
 */
struct vxlan_ep {
	char netns_path[256];	    /* must not exist; its directory a shared mount */
	char host_ifname[IFNAMSIZ]; /* bridge_host_ifname() of the endpoint id */
	char bridge[IFNAMSIZ];	    /* the network's bridge */
	struct in_addr addr;
	struct in_addr gateway; /* this node's address on the network */
	uint8_t prefixlen;
	uint8_t mac[6];
	int mtu; /* the network's, from vxlan_net_apply() */
	/* The name inside: "" (eth0) makes the namespace; another (eth1, ...)
	 * joins a further network to the namespace that exists, with no
	 * default route (the first network keeps it). */
	char ifname[IFNAMSIZ];
};

/* Makes the namespace and the veth, or for a further network the veth only;
 * on error nothing it made is left behind. A namespace already at
 * netns_path for eth0 (a start that was cut short) is replaced. */
int vxlan_ep_plumb(const struct vxlan_ep *ep, struct shoal_err *err);
/* Removes the namespace (its veth goes with it) or, with no namespace, the
 * host end of the veth. Missing pieces are not errors. */
int vxlan_ep_unplumb(const char *netns_path, const char *host_ifname, struct shoal_err *err);
/* Prepares the directory the namespaces are bind-mounted in (a shared
 * mount, as `ip netns` does). */
int vxlan_ep_dir_prepare(const char *dir, struct shoal_err *err);

/* Egress of the overlay networks' endpoints to anything not on their own
 * bridge, masqueraded to the node's address, or for an internal network
 * dropped: one nftables table "ip <prefix>_ovl" holding a rule per network,
 * replaced atomically; with n = 0 the table goes. */
struct vxlan_masq {
	char bridge[IFNAMSIZ];
	struct in_addr net;
	uint8_t prefixlen;
	bool internal; /* no way out: forwarding off the bridge dropped */
};
int vxlan_masq_set(const char *prefix, const struct vxlan_masq *nets, size_t n,
		   struct shoal_err *err);
/* The nft commands vxlan_masq_set() runs (free()); NULL on bad input. */
char *vxlan_masq_ruleset(const char *prefix, const struct vxlan_masq *nets, size_t n,
			 struct shoal_err *err);
