/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "lib/err.h"

struct agent;
struct api_req;

/*
 * Network policy on this node: the policies under /shoal/policies/ (a store
 * watch) and the node's containers (bridge and overlay) as endpoints, other
 * live nodes' overlay endpoints as peers, each label set numbered
 * cluster-wide under /shoal/identities/, compiled by policy/ and written to
 * the eBPF maps by lb/lb-policy. A change of any is
 * recompiled (debounced) and written to the maps as the difference from the
 * last state on a thread of its own, one job at a time (changes made while
 * one runs are taken together by the next, so none lands after a newer);
 * the endpoints are registered on the loop once their entries are in; endpoints are bound to their
 * veth when they appear and unbound when they go. The flow log is read on the loop into a bounded
 * ring of fixed-size records in $data_dir/policy-flows (kept across
 * restarts) that GET /policies/log reads and follows.
 *
 * policy_agent_init() and policy_agent_stop() are declared in agent.h.
 */

#define CLUSTER_POLICIES "/shoal/policies/"

/* True while any policy is in force on this node. */
bool policy_agent_active(struct agent *a);
/* Recompile soon (coalesced) with the endpoints of other nodes read again:
 * the overlay agent calls it when endpoint records or liveness change. */
void policy_agent_peers_changed(struct agent *a);
/* Recompile soon (coalesced): the API calls it after a write. */
void policy_agent_kick(struct agent *a);
/* Before a policy is stored (create or update): compiles the policies in
 * force with spec in place of the one of its name, for this node's
 * endpoints, on the compile thread, and calls cb on the loop with NULL
 * (it fits) or why not: status 400 naming the endpoint, the entries it
 * would need and the limit, when the policy map could not take it. r NULL
 * in cb: the client went away meanwhile (free userdata only). */
typedef void (*policy_agent_check_cb)(struct api_req *r, const struct shoal_err *err,
				      void *userdata);
void policy_agent_check(struct agent *a, struct api_req *r, const json_t *spec,
			policy_agent_check_cb cb, void *userdata);
/* `policy explain`: from and to are a container (name or id), a service
 * (one of its tasks on this node) or an IPv4 address. *ret: {"Verdict",
 * "From", "To", "Egress", "Ingress"}. err->status 404 for an unknown name,
 * 400 for bad input. */
int policy_agent_explain(struct agent *a, const char *from, const char *to, uint8_t proto,
			 uint16_t port, json_t **ret, struct shoal_err *err);
/* GET /policies/log: answers r (a JSON-lines stream; follow keeps it). */
void policy_agent_log(struct api_req *r);
/* The policy map's fill for /info: {"NodeEntries", "NodeCapacity",
 * "NodePercent", "EndpointCapacity" (entries per endpoint and direction),
 * "Endpoints" (how many have entries), "WarnPercent", "Fullest": the fullest
 * endpoints [{"Name", "Slot", "Ingress", "Egress", "Used" (the larger
 * direction), "Capacity", "Percent"}], "Error": why the last compile was
 * refused}; null without enforcement. A warning per endpoint (and for the
 * node) above WarnPercent is appended to warnings. */
json_t *policy_agent_map_fill(struct agent *a, json_t *warnings);
/* Prometheus lines: per policy and rule counters, data-path totals. */
void policy_agent_metrics(struct agent *a, FILE *f);
