/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/types.h>

/*
 * Network policy: map keys and values shared by the enforcement programs and
 * policy/ (which compiles them). Plain fixed-width types only.
 *
 * A new flow is judged at each end that is a local endpoint, once per
 * direction (the sender's egress, the receiver's ingress):
 *   1. policy_ipcache (LPM trie, address/prefix -> identity): the peer's
 *      identity. Endpoints and node addresses are /32 entries; the CIDRs that
 *      policies name are shorter prefixes with node-local CIDR identities;
 *      an address no entry covers is POLICY_ID_WORLD. A flow that arrived on a
 *      published port (the load balancer's conntrack says so) from outside
 *      the cluster (a world, CIDR or node identity) has POLICY_ID_F_PUBLISHED
 *      or-ed into the client's identity; the client's real address is kept
 *      by the load balancer, so CIDR rules apply to it.
 *   2. policy_eps[ep] (array): the endpoint's live generation. Without
 *      POLICY_EP_F_ACTIVE nothing selects the endpoint: the flow is allowed.
 *   3. policy_map (LPM trie): the key {ep, gen, dir, identity, proto, port}
 *      with the full prefix; the longest match wins.
 *   4. On a miss, the same key with identity POLICY_ID_ANY.
 *   5. On a second miss, allowed.
 * Every tier, order, deny-over-allow and pass was resolved when the entries
 * were compiled: a hit is the final verdict, never a partial one.
 *
 * Port ranges: the port is the last field of the key and in network byte
 * order, so a range is stored as its prefix-aligned blocks (8000-8100 is
 * 8000-8063, 8064-8095, 8096-8099 and 8100: four entries); at most 30 for
 * one range, usually a handful. Entries of one
 * endpoint, direction and identity never overlap, so the longest match is
 * the only match. Cost per new flow and direction: one ipcache lookup, one
 * array lookup and at most two trie lookups; no per-range loop in BPF.
 *
 * Protocols other than TCP and UDP are looked up with proto
 * POLICY_PROTO_OTHER and port 0.
 */

/* Reserved identities. Endpoint identities (one per distinct set of service
 * name, labels and networks) are allocated cluster-wide from
 * POLICY_ID_FIRST_ENDPOINT; CIDR identities are node-local, from
 * POLICY_ID_CIDR_BASE. */
#define POLICY_ID_ANY		  0U /* key wildcard: any identity; never an address's */
#define POLICY_ID_WORLD		  1U /* outside the cluster, no policy CIDR covers it */
#define POLICY_ID_NODE		  2U /* a node's own address (its processes) */
#define POLICY_ID_CLUSTER_UNKNOWN 3U /* an endpoint whose identity is not known here yet */
#define POLICY_ID_FIRST_ENDPOINT  256U
#define POLICY_ID_CIDR_BASE	  0x01000000U
#define POLICY_ID_F_PUBLISHED	  0x80000000U /* or-ed in: arrived on a published port */
#define POLICY_ID_PUBLISHED	  (POLICY_ID_F_PUBLISHED | POLICY_ID_WORLD)

#define POLICY_DIR_INGRESS 0
#define POLICY_DIR_EGRESS  1

#define POLICY_PROTO_OTHER 0 /* any protocol but TCP (6) and UDP (17) */

/* Bits of struct policy_key after prefixlen that every entry matches in
 * full (ep, gen, dir, identity, proto, pad); the port adds up to 16. */
#define POLICY_KEY_FIXED_BITS 80
#define POLICY_KEY_FULL_BITS  96

struct policy_key {
	__u32 prefixlen; /* LPM: POLICY_KEY_FIXED_BITS + the port's prefix length */
	__u16 ep;	 /* endpoint slot on this node, index into policy_eps */
	__u8 gen;	 /* generation: entries are written under a new one, then flipped */
	__u8 dir;	 /* POLICY_DIR_* */
	__u32 identity;	 /* peer identity, or POLICY_ID_ANY */
	__u8 proto;	 /* IPPROTO_TCP, IPPROTO_UDP or POLICY_PROTO_OTHER */
	__u8 pad;	 /* zero */
	__be16 port;	 /* destination port (of the flow's first packet), network order */
};

enum policy_verdict {
	POLICY_VERDICT_NONE = 0,  /* not a verdict: an unused value */
	POLICY_VERDICT_ALLOW = 1, /* passed */
	POLICY_VERDICT_DENY = 2,  /* dropped, logged, counted */
	POLICY_VERDICT_AUDIT = 3, /* would be dropped by an audit policy: passed, logged, counted */
};

#define POLICY_RULE_NONE 0xffffU /* the verdict came from no one rule (isolation) */

struct policy_value {
	__u8 verdict; /* enum policy_verdict */
	__u8 pad;
	__u16 rule;   /* index of the deciding rule in its policy's list for the key's
		       * direction, or POLICY_RULE_NONE */
	__u32 policy; /* the deciding policy's id (for the flow log); 0: none */
};

/* policy_eps[ep]: the live generation of an endpoint's entries. */
#define POLICY_EP_F_ACTIVE 1U

struct policy_ep_state {
	__u8 gen;
	__u8 flags; /* POLICY_EP_F_* */
	__u16 pad;
	__u32 pad2;
};

/* policy_ipcache: prefixlen counts the bits of addr. */
struct policy_ipcache_key {
	__u32 prefixlen;
	__be32 addr;
};

struct policy_ipcache_value {
	__u32 identity;
	__u32 pad;
};
