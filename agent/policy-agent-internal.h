/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Between the policy agent's parts: policy-agent.c (policies, endpoints,
 * compiles, metrics, life) and policy-flows.c (the flow log and explain). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>
#include <jansson.h>

#include "lib/err.h"
#include "policy/policy.h"

struct agent;
struct api_req;
struct container;
struct event;
struct lb_policy;
struct policy_flow_event;
struct store_watch;
struct worker;

#define PA_RECONCILE_MS	  250 /* containers are looked at this often */
#define PA_DEBOUNCE_MS	  10  /* a burst of store events is one recompile */
#define PA_FILL_WARN_PCT  80  /* an endpoint's or the node's policy map this full: a warning */
#define PA_FILL_TOP	  5   /* the fullest endpoints /info lists */
#define PA_FLOW_RECORDS	  16384
#define PA_FLOW_DRAIN_MS  100		      /* the flow log is read at least this often */
#define PA_FLOW_MAGIC	  0x31666c616f6873ULL /* "shoalf1" */
#define PA_FLOW_HEAD	  4096
#define PA_MAX_FOLLOWERS  64
#define PA_FOLLOW_MAX_BUF (4u << 20) /* a follower that reads slower is cut off */
#define PA_SERVICE_LABEL  "com.docker.swarm.service.name"
#define PA_NETWORK	  "bridge"
#define PA_MAX_POLICIES	  4096
#define PA_ID_ATTEMPTS	  64 /* numbers tried for one label set before giving up */
/* /shoal/identities/<sha256 of the label set> = {"ID", "Service", "Labels",
 * "Networks"}, created only while absent; /shoal/identity-ids/<ID> = the
 * hash, created in the same transaction, so no number is handed out twice.
 * Kept once made: a label set's number never changes while any node may
 * hold it in its maps. */
#define CLUSTER_IDENTITIES   "/shoal/identities/"
#define CLUSTER_IDENTITY_IDS "/shoal/identity-ids/"

/* One flow log record, as kept in the file: fixed size, names resolved when
 * the event was read (the endpoints may be gone when it is read back). */
struct pa_flow_rec {
	uint64_t seq; /* 1-based; written last; 0: empty */
	int64_t time_ns;
	uint32_t saddr, daddr; /* network order */
	uint16_t sport, dport; /* host order */
	uint8_t proto, dir, verdict, flags;
	uint16_t rule;
	uint16_t pad;
	uint32_t policy_id;
	char src[48], src_svc[40];
	char dst[48], dst_svc[40];
	char policy[64];
	char pad2[40];
};

_Static_assert(sizeof(struct pa_flow_rec) == 320, "flow record size is part of the file format");

struct pa_flow_head {
	uint64_t magic;
	uint32_t rec_size;
	uint32_t capacity;
	uint64_t next_seq; /* the next record's seq */
};

struct pa_ep {
	char id[65];
	char name[128];
	char service[64];
	json_t *labels; /* owned */
	uint32_t addr;	/* host order */
	uint16_t slot;
	int ifindex;
	uint64_t cgroup_id;
	uint32_t identity;
	bool bound;
	bool remote;		      /* another node's endpoint: a peer in the model only */
	char network[64];	      /* "bridge" or the overlay network's name */
	char host_ifname[16];	      /* a local one's veth on the node's side */
	struct policy_labels plabels; /* for the model */
};

struct pa_follower {
	struct pa_follower *next;
	struct api_req *r;
	struct policy_agent *pa;
	int verdict; /* 0: any */
	char *from, *to;
};

/* A set of parsed policies, shared by the agent and the compile running on
 * its worker (which only reads it); references are taken and dropped on
 * the loop. */
struct pa_pols {
	struct policy **v;
	uint32_t *ids;
	size_t n;
	unsigned refs;
};

struct pa_job;

struct policy_agent {
	struct agent *a;
	struct lb_policy *lbp;
	struct shoal_err err; /* why enforcement is unavailable */
	struct store_watch *watch;
	struct store_watch *id_watch;
	json_t *idents;	    /* label set hash -> cluster-wide identity */
	uint64_t peers_gen; /* bumped by other nodes' endpoints and identities */
	struct event *tick, *soon, *flow_ev;
	bool policies_dirty, force;
	bool eps_stale; /* eps not rebuilt while there was nothing to enforce */
	bool policies_loaded;
	uint64_t sig;

	struct pa_pols *pols; /* the policies below belong to it */
	struct policy **policies;
	uint32_t *ids;
	size_t n_policies;

	/* compiles run on a worker of their own, one at a time */
	struct worker *worker;
	struct pa_job *job; /* the compile running, NULL: none */
	uint64_t job_seq;
	double compile_ms; /* the last compile's time, on the worker */
	double apply_ms;   /* the last map update's time, on the worker */

	struct pa_ep *eps; /* sorted by addr */
	size_t n_eps;
	struct policy_compiled *live;
	char last_error[512];
	uint64_t applies; /* compiles written to the maps */

	/* flow log */
	struct pa_flow_head *flow_head;
	struct pa_flow_rec *flow_recs;
	size_t flow_map_len;
	int64_t mono_to_real;
	struct pa_follower *followers;
	size_t n_followers;
};

struct pa_model {
	/* one block: the endpoints, then the nodes, then each endpoint's
	 * network name pointer, then each endpoint's identity */
	struct policy_endpoint *eps;
	struct policy_node *nodes;
	uint32_t *identities;
	struct policy_model m;
	struct policy_set set;
};

struct policy_agent *pa_of(struct agent *a);
uint64_t pa_containers_sig(struct agent *a);
const struct pa_ep *pa_ep_by_addr(const struct policy_agent *pa, uint32_t addr);
int pa_eps_build(struct policy_agent *pa, struct pa_ep **ret, size_t *ret_n);
void pa_eps_free(struct pa_ep *v, size_t n);
int pa_model_build(struct policy_agent *pa, struct pa_model *mm);
int pa_policies_load(struct policy_agent *pa, struct shoal_err *err);
const char *pa_policy_name(const struct policy_agent *pa, uint32_t id);
void pa_reconcile(struct policy_agent *pa);
void pa_flow_cb(const struct policy_flow_event *ev, void *userdata);
void pa_flow_ev_cb(evutil_socket_t fd, short what, void *arg);
int pa_flow_open(struct policy_agent *pa);
void pa_follower_free(struct pa_follower *f);
