/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "policy/policy.h"

/* True when prefix a lies inside prefix b (a equal to b included). */
static inline bool policy_cidr_within(struct policy_cidr a, struct policy_cidr b)
{
	if (a.len < b.len)
		return false;
	uint32_t mask = b.len ? ~0U << (32 - b.len) : 0;
	return (a.addr & mask) == b.addr;
}

/* What a peer is, as the matching code sees it: an endpoint (by its label
 * set), an unknown endpoint, a node, or outside the cluster. Outside, cidr is
 * the most specific prefix known for it (a /32 for an address; has_cidr false
 * when no policy CIDR covers it). */
struct policy_peer_desc {
	enum policy_party_kind kind;
	const struct policy_endpoint *ep;
	bool has_cidr;
	struct policy_cidr cidr;
};

/* The evaluator on a peer description: what the compiler calls for each
 * identity, and policy_eval_side() for a concrete peer. */
void policy_eval_desc(const struct policy_set *set, const struct policy_endpoint *ep,
		      enum policy_dir dir, const struct policy_peer_desc *peer, bool published,
		      uint8_t proto, uint16_t port, struct policy_decision *ret);

/* The id a flow log shows for set->v[i]. */
static inline uint32_t policy_set_id(const struct policy_set *set, size_t i)
{
	if (set->ids)
		return set->ids[i];
	return set->v[i]->id ? set->v[i]->id : (uint32_t)(i + 1);
}

/* Whether p's Selector selects ep (Types aside). */
bool policy_selects(const struct policy *p, const struct policy_endpoint *ep);
bool policy_labels_match(const struct policy_labels *want, const struct policy_labels *have);

/* YAML -> jansson, plain scalars typed as YAML 1.2's core schema does for
 * what a policy holds (integers, true/false, null); quoted ones stay strings. */
int policy_yaml_to_json(const char *buf, size_t len, json_t **ret, struct shoal_err *err);
