/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>
#include <netinet/in.h>

#include "lib/err.h"

/* Makes dir a shared mount point (bind-mounting it on itself first if it is
 * not one), as `ip netns add` does for /run/netns: netns bind mounts made
 * under it then propagate to mount namespaces created later, and unmounting
 * one here unmounts it there too, so a namespace is not kept alive by a copy
 * of its mount in some container's mount table. */
int netns_dir_prepare(const char *dir, struct shoal_err *err);
/* Undoes it: every namespace mounted in dir unmounted and its file removed,
 * then dir's own bind mount, then dir. A missing dir is not an error. */
int netns_dir_remove(const char *dir, struct shoal_err *err);

/* Creates a network namespace bind-mounted at path (the file must not exist;
 * its directory must have been prepared) and returns an fd to it and a
 * NETLINK_ROUTE socket opened inside it. lo is left down. */
int netns_create_open(const char *path, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err);

/* Brings lo up through a netlink socket opened in the namespace. */
int netns_lo_up(int nlfd, struct shoal_err *err);

/* A fresh namespace from the pool (see netns_pool_take() in bridge.h),
 * bind-mounted at path (which must not exist), with a netlink socket in it. */
int netns_take_at(const char *path, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err);

struct nl_sock;
/* A container's end of a network: a namespace from the pool at netns_path,
 * a veth host_ifname enslaved to master (mtu, peer MAC mac) whose peer is
 * eth0 inside, configured by nl_eth0_configure(). On failure nothing of it
 * is left (the veth deleted, the namespace removed). Used by the bridge and
 * by overlay endpoints alike. */
struct netns_ep {
	const char *netns_path, *host_ifname;
	int master, mtu;
	const uint8_t *mac;
	struct in_addr addr, broadcast, gateway;
	uint8_t prefixlen;
};
int netns_ep_plumb(struct nl_sock *nl, char *buf, const struct netns_ep *ep, struct shoal_err *err);
/* Opens the namespace bound at path, and a NETLINK_ROUTE socket inside it. */
int netns_open_at(const char *path, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err);
/* A further network for a namespace that exists (netns_path): the veth's
 * peer is ifname inside, with its address and only its subnet's route
 * (ep->gateway unused). On failure the veth is deleted; the namespace stays. */
int netns_ep_join(struct nl_sock *nl, char *buf, const struct netns_ep *ep, const char *ifname,
		  struct shoal_err *err);
