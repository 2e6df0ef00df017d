/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SHOAL_AGENT_OVERLAY_AGENT_INTERNAL_H
#define SHOAL_AGENT_OVERLAY_AGENT_INTERNAL_H
/*
 * What the overlay agent's files share (agent/overlay-agent.c: the store's
 * view, the worker, the lifecycle, the container side; agent/overlay-records.c:
 * addresses and endpoint records in the store, and giving back what dead
 * nodes and killed starts left there). Not for other rooms.
 */
#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>
#include <netinet/in.h>

#include <jansson.h>

#include "agent/overlay-agent.h"
#include "agent/overlay-ipam.h"
#include "lib/util.h"
#include "overlay/vxlan-ep.h"
#include "overlay/vxlan.h"

/* Attempts at taking an address before giving up (each one that fails has
 * seen another node take the address it tried). */
#define OVL_ALLOC_ATTEMPTS 64
/* Networks one node materialises. */
#define OVL_NETS_MAX 1024
/* Endpoint records and addresses of dead nodes the leader gives back in one
 * resync (the rest at the next ones). */
#define OVL_RECLAIM_MAX 256

struct ovl_plumb {
	struct ovl_plumb *next;
	char net[OVL_ID_MAX + 1];
	char ep_id[OVL_ID_MAX + 1];
	struct vxlan_ep ep;
	bool unplumb; /* a further network's veth to delete, not to make */
	overlay_ep_done_cb cb;
	void *arg;
	int r;
	struct shoal_err err;
};

struct ovl_apply {
	char net[OVL_ID_MAX + 1];
	char name[OVL_ID_MAX + 1];
	struct vxlan_net vn;
	uint32_t subnet; /* network order, with prefixlen: for the mesh's return path */
	struct vxlan_remote *remotes;
	struct vxlan_apply_stats st;
	int r;
	struct shoal_err err;
};

struct ovl_remove {
	char net[OVL_ID_MAX + 1];
	char bridge[IFNAMSIZ], vxlan[IFNAMSIZ];
	int r;
	struct shoal_err err;
};

struct ovl_job {
	struct overlay_agent *oa;
	struct ovl_apply *apply;
	size_t n_apply;
	struct ovl_remove *remove;
	size_t n_remove;
	struct ovl_plumb *plumbs;
	bool sweep;
	int swept;
	struct shoal_err sweep_err;
	struct vxlan_masq *masq;
	size_t n_masq;
	char *masq_sig; /* what masq says, to skip an unchanged table */
	bool set_masq;
	int masq_r;
	struct shoal_err masq_err;
	struct in_addr *vteps;
	size_t n_vteps;
	bool set_vteps;
	int vteps_r;
	struct shoal_err vteps_err;
	bool stats_ok;
	struct vxlan_filter_stats stats;
	/* the routing mesh's return path: host ends of this node's overlay
	 * containers' veths to hook again (at the first job after a start) */
	char (*mesh_veths)[IFNAMSIZ];
	size_t n_mesh_veths;
	char mesh_err[256]; /* the first hook that failed, for the loop's log */
};

struct overlay_agent {
	struct agent *a;
	struct worker *worker;
	struct vxlan_ctx *ctx;	     /* the worker's */
	struct vxlan_filter *filter; /* the worker's once open */
	char filter_kind[8];
	char filter_reason[512];
	char filter_err[512];
	struct vxlan_filter_stats stats;
	struct lb_mesh *mesh;  /* the routing mesh's return path (lb.h), NULL: none */
	char mesh_reason[256]; /* why not */
	char mesh_logged[256]; /* the last hook error logged */
	char unavailable[512]; /* why overlay endpoints are refused here ("" if not) */
	struct in_addr vtep;
	char underlay[IFNAMSIZ];
	char netns_dir[4096];
	bool netns_dir_ready;
	json_t *nets;	    /* network id -> network object */
	json_t *eps;	    /* network id -> {endpoint id -> record text} */
	json_t *ep_index;   /* network id -> {endpoint id -> {"IP", "Node", "Name", "Container"}} */
	json_t *nodes;	    /* node id -> underlay address */
	json_t *alive;	    /* node id -> true while its liveness key is there */
	json_t *reclaimed;  /* dead node id -> true once its addresses were swept */
	json_t *active;	    /* network id -> {"Bridge", "Vxlan", "MTU", "Name"}: made here */
	json_t *programmed; /* network id -> {remote address (number) -> true}: in the kernel */
	json_t *errs;	    /* network id -> the last apply error logged */
	struct store_watch *w_nets, *w_eps, *w_nodes, *w_alive;
	bool watch_broken;
	struct event *kick_ev, *resync_ev;
	bool started, busy, again, swept;
	struct ovl_plumb *plumbs; /* for the next job */
	char *masq_applied;
	bool vteps_dirty;
	unsigned long applies, repairs;
};

struct store_kv;

/* ---- the view (agent/overlay-agent.c) ---- */

/* An endpoint record put or deleted, applied to the view as the store's
 * watch would (a write here is seen at once, not at its event). */
void oa_ep_event(struct overlay_agent *oa, const struct store_kv *kv, bool put);
/* Whether node's liveness key is there (or node is this one). */
bool oa_node_alive(struct overlay_agent *oa, const char *node);

/* ---- lookups in the view (agent/overlay-records.c) ---- */

/* Endpoint ep_id on net as the view has it, parsed into ret. */
bool oa_ep_lookup(struct overlay_agent *oa, const char *net, const char *ep_id,
		  struct ovl_endpoint *ret);
/* Network net as the view has it, parsed into ret; false (404) if unknown. */
bool oa_net_lookup(struct overlay_agent *oa, const char *net, struct ovl_network *ret,
		   struct shoal_err *err);
/* The endpoint id of this node's gateway address on a network. */
void oa_gateway_id(struct overlay_agent *oa, char *buf, size_t len);
/* Local container endpoints on net. */
size_t oa_local_containers(struct overlay_agent *oa, const char *net);
/* Local containers attached to net, whatever the store says: a network
 * whose records were taken back while this node looked dead stays in place
 * under its containers until they are recorded again. */
bool oa_local_attached(struct overlay_agent *oa, const char *net);

/* ---- addresses and records in the store (agent/overlay-records.c) ---- */

/* An endpoint (a container's, or this node's gateway) with a fresh address:
 * the address taken by compare-and-swap, then the record written. */
int oa_ep_new(struct overlay_agent *oa, const struct ovl_network *n, const char *ep_id,
	      const char *name, enum ovl_ep_kind kind, struct ovl_endpoint *ret,
	      struct shoal_err *err);
/* This node's address on n, taken when it has none. */
int oa_gateway_ensure(struct overlay_agent *oa, const struct ovl_network *n,
		      struct ovl_endpoint *ret, struct shoal_err *err);
/* The record deleted and its address given back. */
void oa_ep_delete(struct overlay_agent *oa, const struct ovl_endpoint *e);
/* What this node holds in the store that none of its containers uses any
 * more (a start or removal the agent was killed in): given back. */
void oa_give_back_unused(struct overlay_agent *oa);
/* After the node looked dead (its records taken back): its running
 * containers recorded again at the addresses they use. */
void oa_reregister(struct overlay_agent *oa);
/* On the leader: the records and addresses of nodes dead for longer than the
 * grace, given back. */
void oa_reclaim_dead(struct overlay_agent *oa);

#endif
