/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/shared/policy.h"
#include "bpf/shared/policy_dp.h"
#include "lb/lb.h"
#include "lib/err.h"
#include "policy/policy.h"

/* Network policy enforcement on this node: the maps policy/ compiles for
 * (bpf/shared/policy.h) and the programs that read them.
 *
 * Enforcement points:
 *   - the host side of each local container's veth (lb_policy_veth_attach):
 *     tc ingress judges what the container sends (its egress), tc egress
 *     what is delivered to it (its ingress); a flow between two local
 *     endpoints is judged at both. Endpoints are registered with
 *     lb_policy_endpoint_set(): a packet leaving a registered veth with
 *     another source address than its endpoint's is dropped; packets
 *     delivered to a container are found by their destination address.
 *   - connect4/sendmsg4 on the containers' cgroup (lb_policy_sock_attach),
 *     after the socket load balancer: the connecting endpoint's egress
 *     towards the backend it chose; a refusal is EPERM at once rather than
 *     a drop of the first packet. The veth judges the same flow with the
 *     same maps, so both agree.
 * Published-port traffic is recognised at the receiving veth by the load
 * balancer's reverse NAT entry for the flow (a service with address 0):
 * external clients then carry POLICY_ID_F_PUBLISHED. Pass the load balancer
 * in the options so its maps are shared.
 *
 * Host routing and policy: the uplink program hands a published-port packet
 * to a container registered with lb_endpoint_set() by bpf_redirect_peer(),
 * which skips the host veth's tc egress, so its ingress would go unjudged
 * (and its replies, seen at tc ingress, be judged as new egress flows). An
 * endpoint that policy selects must therefore not be registered for host
 * routing: its published-port traffic then takes the node's stack and
 * crosses the veth's hooks. (Judging in the uplink program before the
 * redirect, with these maps shared into it, lifts that restriction.)
 *
 * Each flow is judged once per side and its verdict kept in a conntrack
 * (its replies pass on the same entry); a flow whose endpoint's entries
 * changed is judged again on its next packet.
 *
 * All maps but the flow log are pinned under opts.pin_dir and reused by the
 * next lb_policy_open() on it: programs left on veths and cgroups by an
 * agent that stopped keep enforcing the last state, and the next agent's
 * programs replace them in place (no allow-all window). After a restart,
 * lb_policy_state_load() rebuilds the compiled state from the maps, to diff
 * the next compile against.
 *
 * Not thread-safe: one caller (the agent's loop) at a time. */

struct lb_policy;

struct lb_policy_open_opts {
	/* bpffs directory for the pins (created if missing); NULL: none. */
	const char *pin_dir;
	/* The load balancer whose reverse NAT map tells published-port flows;
	 * NULL: maps of our own (nothing is published). */
	struct lb *lb;
	/* Without lb: the directory the load balancer pins its maps in (its
	 * lb_open_opts.pin_dir); its reverse NAT maps are shared from there.
	 * Maps not pinned there yet are our own, empty ones. */
	const char *lb_pin_dir;
	/* (1u << enum lb_feature) bits turned off, as lb_open_opts.disable;
	 * SHOAL_LB_DISABLE adds to them. LB_FEAT_RINGBUF and LB_FEAT_SOCKET_LB
	 * matter here. */
	uint32_t disable;
	/* policy_map and policy_ct entries; 0: POLICY_MAP_DEFAULT,
	 * POLICY_CT_DEFAULT, or the pinned maps' sizes. */
	uint32_t map_size;
	uint32_t ct_size;
	/* Flow events only for denied and audited flows, not allowed ones. */
	bool log_denied_only;
};

int lb_policy_open(const struct lb_policy_open_opts *opts, struct lb_policy **ret,
		   struct shoal_err *err);
/* Frees the handle; programs attached and pinned maps stay. */
struct lb_policy *lb_policy_close(struct lb_policy *p);
/* The flow log's transport: LB_FEAT_RINGBUF on, or unavailable (with the
 * reason) when a BPF queue drained on a timer is used instead (not a perf
 * event array: its helper is reserved to GPL programs). */
const struct lb_feature_status *lb_policy_ringbuf(const struct lb_policy *p);

enum lb_policy_prog {
	LB_POLICY_FROM_EP, /* tc ingress of the host-side veth */
	LB_POLICY_TO_EP,   /* tc egress of the host-side veth */
	LB_POLICY_CONNECT4,
	LB_POLICY_SENDMSG4,
};

int lb_policy_prog_fd(const struct lb_policy *p, enum lb_policy_prog prog);

/* Writes the operations of policy_diff(), in order, after writing the
 * ipcache entries of c that are new or changed; ipcache entries c no longer
 * has are deleted last. c may be NULL (the ipcache is left as it is). Stops
 * at the first failure (the maps then hold a prefix of the operations: apply
 * a fresh diff from lb_policy_state_load()). */
int lb_policy_apply(struct lb_policy *p, const struct policy_compiled *c,
		    const struct policy_ops *ops, struct shoal_err *err);

/* The compiled state the maps hold: each active endpoint's entries of its
 * live generation (gen set), and the ipcache; identities are not kept
 * (n_ids 0). Entries of other generations, left by an update that did not
 * finish, are deleted on the way. For policy_diff(old = this). */
int lb_policy_state_load(struct lb_policy *p, struct policy_compiled **ret, struct shoal_err *err);

struct lb_policy_endpoint {
	uint32_t addr;	    /* network byte order */
	uint16_t ep;	    /* slot: policy_endpoint.id */
	uint32_t identity;  /* its identity, for the flow log */
	uint64_t cgroup_id; /* cgroup v2 id of the leaf its processes are in; 0: none */
	int ifindex;	    /* host side of its veth; 0: found by address alone */
};

/* Registers (or updates) a local endpoint for the veth program and, with a
 * cgroup id, the socket hooks. Register before traffic flows: until then
 * the endpoint's packets are not judged. With an ifindex, its veth carries
 * its address alone. */
int lb_policy_endpoint_set(struct lb_policy *p, const struct lb_policy_endpoint *ep,
			   struct shoal_err *err);
/* -ENOENT if addr is not registered. Its flows' entries age out. */
int lb_policy_endpoint_delete(struct lb_policy *p, uint32_t addr, struct shoal_err *err);

/* Attaches both programs to a host-side veth (clsact created when
 * missing), before the load balancer's reply program there; replaces our
 * earlier ones. */
int lb_policy_veth_attach(struct lb_policy *p, int ifindex, struct shoal_err *err);
/* Removes ours; a missing interface or filter is not an error. */
int lb_policy_veth_detach(struct lb_policy *p, int ifindex, struct shoal_err *err);
/* Attaches connect4 and sendmsg4 to a cgroup v2 directory, after what is
 * there (call it after lb_sock_attach(): the balancer must run first);
 * ours from before are moved to the end. */
int lb_policy_sock_attach(struct lb_policy *p, const char *cgroup_path, struct shoal_err *err);
int lb_policy_sock_detach(struct lb_policy *p, const char *cgroup_path, struct shoal_err *err);

struct lb_policy_counter {
	struct policy_counter_key key;
	struct policy_counter val; /* summed over CPUs */
};

/* Every counter; *ret is malloc'ed. */
int lb_policy_counters(struct lb_policy *p, struct lb_policy_counter **ret, size_t *ret_n);
/* ret[enum policy_stat], summed over CPUs. */
int lb_policy_stats(struct lb_policy *p, uint64_t ret[POLICY_STAT_MAX]);

/* Flow log. The callback runs from lb_policy_flowlog_consume(), once per
 * event, in the order of each CPU's buffer. */
typedef void (*lb_policy_flow_cb)(const struct policy_flow_event *ev, void *userdata);

int lb_policy_flowlog_open(struct lb_policy *p, lb_policy_flow_cb cb, void *userdata,
			   struct shoal_err *err);
/* A descriptor that polls readable when events wait (the ring buffer's
 * epoll fd) or may wait (the queue's timerfd, every 100 ms): put it on the
 * loop with EV_READ | EV_PERSIST and call lb_policy_flowlog_consume() when
 * it fires. */
int lb_policy_flowlog_fd(const struct lb_policy *p);
/* Hands every waiting event to the callback without blocking (one turn's
 * work is bounded by the buffers' size). The number handed, or -errno. */
int lb_policy_flowlog_consume(struct lb_policy *p);
/* Events the ring buffer or queue had no room for. */
uint64_t lb_policy_flowlog_lost(struct lb_policy *p);
