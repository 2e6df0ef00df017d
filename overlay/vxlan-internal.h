/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "overlay/vxlan.h"

/*
 * The pure half of vxlan_net_apply(): what the kernel has (filled in by a
 * dump in vxlan.c, or by hand in tests/unit/test-overlay-diff.c) and the
 * ordered operations that turn it into what is wanted. No syscalls here.
 */

struct vxlan_link_state {
	bool exists;
	int ifindex;
	char kind[16]; /* "bridge", "vxlan", or whatever else holds the name */
	bool up;
	int mtu;
	int master;
	uint8_t mac[6];
	/* vxlan devices only */
	uint32_t vni;
	struct in_addr local;
	uint16_t port;
	int link; /* underlay ifindex it is pinned to, 0 = none */
	bool learning;
	bool proxy;
	bool l2miss;
	bool l3miss;
	bool has_group; /* a multicast group or default remote is set */
	bool metadata;	/* collect_metadata (external) mode */
};

struct vxlan_fdb_entry {
	uint8_t mac[6];
	struct in_addr dst;
	uint16_t state; /* NUD_* */
};

struct vxlan_neigh_entry {
	struct in_addr ip;
	uint8_t mac[6];
	bool has_mac;
	uint16_t state;
};

struct vxlan_addr_entry {
	struct in_addr addr;
	uint8_t prefixlen;
};

struct vxlan_observed {
	int underlay_ifindex; /* 0 = no such device */
	int underlay_mtu;
	struct vxlan_link_state bridge;
	struct vxlan_link_state vxlan;
	/* the vxlan device's own (NTF_SELF) FDB entries, one per remote */
	const struct vxlan_fdb_entry *fdb;
	size_t n_fdb;
	/* IPv4 neighbour entries on the vxlan device */
	const struct vxlan_neigh_entry *neigh;
	size_t n_neigh;
	/* IPv4 addresses on the bridge */
	const struct vxlan_addr_entry *addrs;
	size_t n_addrs;
};

/* In the order they must run. */
enum vxlan_op_kind {
	VXLAN_OP_VXLAN_DEL,  /* wrong kind or attributes: recreated below */
	VXLAN_OP_BRIDGE_DEL, /* the name is held by something that is not a bridge */
	VXLAN_OP_BRIDGE_ADD,
	VXLAN_OP_BRIDGE_SET, /* mtu, mac, up */
	VXLAN_OP_ADDR_DEL,
	VXLAN_OP_ADDR_ADD,
	VXLAN_OP_VXLAN_ADD,
	VXLAN_OP_VXLAN_SET, /* mtu, master, up */
	VXLAN_OP_FDB_DEL,
	VXLAN_OP_FDB_SET, /* add or replace */
	VXLAN_OP_NEIGH_DEL,
	VXLAN_OP_NEIGH_SET, /* add or replace */
	VXLAN_OP_KIND_MAX,
};

struct vxlan_op {
	enum vxlan_op_kind kind;
	int mtu;	    /* link add/set: 0 = unchanged (set) */
	bool set_mac;	    /* BRIDGE_SET */
	bool set_master;    /* VXLAN_SET */
	bool set_up;	    /* *_SET */
	struct in_addr ip;  /* ADDR_*, NEIGH_* */
	uint8_t prefixlen;  /* ADDR_* */
	uint8_t mac[6];	    /* FDB_*, NEIGH_SET, BRIDGE_ADD/SET */
	struct in_addr dst; /* FDB_* */
	const char *why;    /* static text, for plans and errors */
};

struct vxlan_plan {
	struct vxlan_op *ops;
	size_t n;
	size_t cap;
	int mtu; /* the MTU the network's devices get */
};

/* The MTU net gets on an underlay of underlay_mtu; -EINVAL with a message
 * when an explicit one does not fit. */
int vxlan_net_mtu(const struct vxlan_net *net, int underlay_mtu, int *ret, struct shoal_err *err);
/* The UDP port net uses. */
uint16_t vxlan_net_port(const struct vxlan_net *net);

/* Fills plan (empty on entry) with the operations that turn have into net.
 * net must have passed vxlan_net_check(). */
int vxlan_diff(const struct vxlan_net *net, const struct vxlan_observed *have,
	       struct vxlan_plan *plan, struct shoal_err *err);
void vxlan_plan_clear(struct vxlan_plan *plan);
void vxlan_plan_stats(const struct vxlan_plan *plan, struct vxlan_apply_stats *ret);
const char *vxlan_op_name(enum vxlan_op_kind k);
/* One line describing op, e.g. "fdb-set 02:42:0a:00:00:05 -> 192.0.2.3 (missing)". */
void vxlan_op_describe(const struct vxlan_op *op, char *buf, size_t len);

/* FDB requests for a vxlan device, on libmnl (libnl drops NDA_DST from
 * AF_BRIDGE requests). Add is create-or-replace, permanent, NTF_SELF;
 * delete removes the one remote dst of mac. */
struct nlmsghdr;
struct nlmsghdr *vxlan_fdb_build(void *buf, bool add, int ifindex, const uint8_t mac[6],
				 struct in_addr dst);
struct vxlan_fdb_sock;
int vxlan_fdb_sock_open(struct vxlan_fdb_sock **ret);
void vxlan_fdb_sock_free(struct vxlan_fdb_sock *s);
/* 0 or -errno, with the kernel's extended ACK text in ext ("" if none). */
int vxlan_fdb_send(struct vxlan_fdb_sock *s, bool add, int ifindex, const uint8_t mac[6],
		   struct in_addr dst, char *ext, size_t extlen);
