/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <netinet/in.h>

#include "lib/err.h"

/*
 * VXLAN overlay networks on one node: the kernel side only, no store, no
 * agent. The caller says what one network should look like on this node
 * (struct vxlan_net) and vxlan_net_apply() makes the kernel match it:
 *
 *   bridge <prefix>n<hex>   MTU, MAC 02:42:<gateway address>, up, the node's
 *                           gateway address/prefix and no other IPv4 address
 *   vxlan  <prefix>x<hex>   VNI, local VTEP address and underlay device pinned,
 *                           UDP port, learning off, ARP proxy on, no group or
 *                           default remote, MTU, enslaved to the bridge, up
 *   per remote endpoint     a static FDB entry MAC -> remote VTEP (NTF_SELF,
 *                           permanent) and a permanent neighbour entry IP ->
 *                           MAC, both on the vxlan device; nothing else there
 *
 * Apply dumps what exists, diffs it against the desired state (pure code,
 * overlay/vxlan-diff.c) and runs the difference as ordered netlink requests:
 * a second apply with nothing changed sends none; one after a crash half way,
 * or after a restart with everything in place, finishes the job and never
 * fails with "File exists"; whatever drifted (a deleted device, another MTU,
 * VNI, port or local address, a missing or extra FDB or neighbour entry, an
 * extra address) is put back.
 *
 * Broadcast: no all-zero FDB entry, so no frame is ever flooded to other
 * nodes. ARP requests for remote endpoints are answered on this node by the
 * vxlan device's ARP proxy from the permanent neighbour entries; other
 * broadcast and unknown-unicast frames stay on the node. Every address on the
 * network that another node must reach (other nodes' gateway addresses too)
 * is therefore a remote endpoint here.
 *
 * Everything here is blocking netlink (a device deletion waits for RCU grace
 * periods, tens of ms): callers on an event loop run it on a worker. A
 * vxlan_ctx is used by one thread at a time.
 */

#define VXLAN_PORT_DEFAULT 4789
/* Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8) headers. */
#define VXLAN_OVERHEAD 50
#define VXLAN_VNI_MAX  0xffffff
/* Remote endpoints of one network on one node. */
#define VXLAN_REMOTES_MAX 65536
#define VXLAN_NET_ID_MAX  128

struct vxlan_remote {
	struct in_addr ip;   /* endpoint address on the overlay */
	uint8_t mac[6];	     /* endpoint MAC */
	struct in_addr vtep; /* the underlay address of the node it runs on */
};

/* One overlay network as this node should have it. */
struct vxlan_net {
	char id[VXLAN_NET_ID_MAX + 1];
	uint32_t vni;			    /* 1 .. VXLAN_VNI_MAX */
	char bridge[IFNAMSIZ];		    /* from vxlan_net_ifnames() */
	char vxlan[IFNAMSIZ];		    /* from vxlan_net_ifnames() */
	struct in_addr local;		    /* this node's VTEP (advertise) address */
	char underlay[IFNAMSIZ];	    /* device that carries local */
	uint16_t port;			    /* UDP port; 0 = VXLAN_PORT_DEFAULT */
	int mtu;			    /* 0 = underlay MTU - VXLAN_OVERHEAD */
	struct in_addr gateway;		    /* this node's address on the network */
	uint8_t prefixlen;		    /* of the network's subnet, 8 .. 30 */
	const struct vxlan_remote *remotes; /* not owned; any order */
	size_t n_remotes;
};

/*
 * Device names of network id under prefix (1 to 8 letters, digits or '_',
 * as the bridge network's): "<prefix>n<hex>" for the bridge and
 * "<prefix>x<hex>" for the vxlan device, hex being as many characters of the
 * id's sha256 as fit in IFNAMSIZ (6 with an 8-character prefix, 9 with
 * "shoal"). The same id gives the same names after a restart. Two networks of
 * one node whose names collide (one chance in 2^24 per pair with the longest
 * prefix) must be refused by the caller: vxlan_net_apply() cannot tell the
 * other network's devices from drift.
 */
int vxlan_net_ifnames(const char *prefix, const char *net_id, char ret_bridge[IFNAMSIZ],
		      char ret_vxlan[IFNAMSIZ], struct shoal_err *err);
/* Whether name has the shape of a device vxlan_net_ifnames() gives for prefix. */
bool vxlan_is_ifname(const char *prefix, const char *name);
/* 02:42 then the four bytes of addr: the bridge's MAC for a gateway address,
 * and what other nodes program for it. */
void vxlan_mac_from_addr(struct in_addr addr, uint8_t ret[6]);

/* Checks a desired state on its own (no kernel): names, VNI, prefix, gateway
 * inside its subnet, remote endpoints inside it, no remote on the local VTEP,
 * no IP or MAC given twice with different values. */
int vxlan_net_check(const struct vxlan_net *net, struct shoal_err *err);

struct vxlan_ctx;
int vxlan_ctx_new(struct vxlan_ctx **ret, struct shoal_err *err);
void vxlan_ctx_free(struct vxlan_ctx *ctx);

/* What an apply did (or, from vxlan_net_plan(), would do). */
struct vxlan_apply_stats {
	unsigned int ops;	    /* netlink changes in all */
	unsigned int links_created; /* bridge or vxlan device added */
	unsigned int links_deleted; /* one in the way, or to recreate */
	unsigned int links_changed; /* MTU, MAC, master, up */
	unsigned int addrs_changed;
	unsigned int fdb_changed; /* entries added, replaced or deleted */
	unsigned int neigh_changed;
	int mtu; /* the network's MTU: containers' veths get the same */
};

/* Makes the kernel match net (see the top of this file). The underlay device
 * must exist; an explicit MTU above its MTU - VXLAN_OVERHEAD is refused. */
int vxlan_net_apply(struct vxlan_ctx *ctx, const struct vxlan_net *net,
		    struct vxlan_apply_stats *ret, struct shoal_err *err);
/* Dumps and diffs without changing anything; ret counts what apply would do.
 * With a description buffer (may be NULL), one line per operation. */
int vxlan_net_plan(struct vxlan_ctx *ctx, const struct vxlan_net *net,
		   struct vxlan_apply_stats *ret, char *desc, size_t desclen,
		   struct shoal_err *err);
/* Removes the network's two devices (its FDB, neighbour entries and address
 * go with them). Missing devices are not an error. */
int vxlan_net_remove(struct vxlan_ctx *ctx, const char *bridge, const char *vxlan,
		     struct shoal_err *err);
/* After a restart: removes every device with a vxlan_net_ifnames() name under
 * prefix that is not in keep (n names, bridges and vxlan devices alike), that
 * is the networks deleted while nobody was looking. Returns how many devices
 * it removed. */
int vxlan_sweep(struct vxlan_ctx *ctx, const char *prefix, const char *const *keep, size_t n,
		struct shoal_err *err);

/*
 * The VXLAN source filter: UDP to the VXLAN port is accepted only from the
 * VTEP addresses of known cluster nodes; from anyone else it is dropped and
 * counted. Everything else passes untouched (and on to the next tc filter on
 * the device, e.g. the load balancer's).
 *
 * Two implementations, one interface:
 *   bpf  a tc ingress program on the underlay device (bpf/vxlan_filter.bpf.c)
 *        with a hash map of allowed sources and per-CPU counters, both pinned
 *        under pin_dir so that a restart keeps the set and the counts;
 *   nft  where the program does not load or attach: an nftables table
 *        "netdev <prefix>_vxlan" on the same device's ingress hook, a set of
 *        allowed sources and a named counter, replaced atomically.
 * vxlan_filter_open() loads the real program (the probe is the load itself)
 * and falls back to nft with the reason kept for `shoal info`.
 */
enum vxlan_filter_kind {
	VXLAN_FILTER_BPF,
	VXLAN_FILTER_NFT,
};

struct vxlan_filter_opts {
	const char *underlay; /* device to filter on */
	const char *pin_dir;  /* bpffs directory for the maps (required for bpf) */
	const char *prefix;   /* names the nft table: "<prefix>_vxlan" */
	uint16_t port;	      /* 0 = VXLAN_PORT_DEFAULT */
	bool force_nft;	      /* skip the eBPF program, as if it did not load */
};

struct vxlan_filter_stats {
	uint64_t dropped_unknown_source; /* packets */
	uint64_t accepted;		 /* from allowed VTEPs (bpf only; 0 with nft) */
};

struct vxlan_filter;
int vxlan_filter_open(const struct vxlan_filter_opts *opts, struct vxlan_filter **ret,
		      struct shoal_err *err);
/* Frees memory; the filter stays attached and keeps filtering. */
void vxlan_filter_free(struct vxlan_filter *f);
enum vxlan_filter_kind vxlan_filter_kind(const struct vxlan_filter *f);
const char *vxlan_filter_kind_name(enum vxlan_filter_kind k);
/* Why the eBPF program is not in use ("" when it is). */
const char *vxlan_filter_fallback_reason(const struct vxlan_filter *f);
/* Makes the allowed set exactly vteps (n addresses, duplicates allowed). */
int vxlan_filter_set_allowed(struct vxlan_filter *f, const struct in_addr *vteps, size_t n,
			     struct shoal_err *err);
int vxlan_filter_stats(struct vxlan_filter *f, struct vxlan_filter_stats *ret,
		       struct shoal_err *err);
/* Detaches and removes both implementations' objects for opts (pins, tc
 * filter, nft table). Missing pieces are not an error. */
int vxlan_filter_remove(const struct vxlan_filter_opts *opts, struct shoal_err *err);
