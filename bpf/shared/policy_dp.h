/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/types.h>

#include "bpf/shared/policy.h"

/*
 * Policy enforcement state of the data plane (bpf/lib/policy.h), shared with
 * lb/lb-policy.c: the local endpoint registry, the policy conntrack, the
 * counters and the flow log's events. The compiled entries themselves are
 * in bpf/shared/policy.h.
 */

/* Sizes; lb-policy may resize the maps before load. */
#ifndef POLICY_MAP_DEFAULT
#define POLICY_MAP_DEFAULT 262144 /* policy_map entries (LPM trie, not preallocated) */
#endif
#ifndef POLICY_IPCACHE_MAX
#define POLICY_IPCACHE_MAX 65536
#endif
#ifndef POLICY_EPS_MAX
#define POLICY_EPS_MAX 65536 /* struct policy_key.ep is 16 bits */
#endif
#ifndef POLICY_LOCAL_EPS_MAX
#define POLICY_LOCAL_EPS_MAX 4096
#endif
#ifndef POLICY_CT_DEFAULT
#define POLICY_CT_DEFAULT 131072
#endif
#ifndef POLICY_COUNTERS_MAX
#define POLICY_COUNTERS_MAX 16384
#endif
#define POLICY_FLOWLOG_RINGBUF_BYTES (1U << 20)
#define POLICY_FLOWLOG_QUEUE_LEN     16384 /* events, without a ring buffer */

/* policy_local_eps[address], policy_veth_eps[ifindex] and
 * policy_cgroup_eps[cgroup id]: an endpoint on this node. The veth program
 * finds the sender of a packet leaving a container by the host-side veth it
 * came in on (and drops one whose source address is not the endpoint's),
 * else by its source address; the receiver of a packet delivered to a
 * container by its destination address; the socket hooks find the
 * connecting endpoint by its cgroup. */
struct policy_local_ep {
	__u16 ep; /* slot: struct policy_key.ep */
	__u16 pad;
	__u32 identity; /* its own identity, for the flow log */
	__be32 addr;	/* its address */
	__u32 ifindex;	/* host side of its veth; 0: not bound to one */
};

/* policy_ct: one entry per flow and hook side. The key is the packet's
 * 5-tuple as seen at the hook, the side (POLICY_DIR_EGRESS: leaving the
 * endpoint, POLICY_DIR_INGRESS: delivered to it) and the endpoint. A new
 * flow's judgement writes its own entry and, when passed, the entry its
 * replies will find at the other side (POLICY_CT_F_REPLY): every packet
 * after the first costs one hash lookup. */
struct policy_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto; /* as on the wire (ICMP stays ICMP, ports 0) */
	__u8 dir;   /* POLICY_DIR_*: the hook side */
	__u16 ep;
};

#define POLICY_CT_F_REPLY     1U /* replies of a flow judged at the other side */
#define POLICY_CT_F_PUBLISHED 2U /* the flow came in on a published port */

struct policy_ct_entry {
	__u8 verdict; /* enum policy_verdict */
	__u8 flags;   /* POLICY_CT_F_* */
	__u16 rule;
	__u32 policy;
	/* the endpoint's policy_eps value the verdict was taken under: a flow
	 * whose endpoint got new entries since is judged again */
	__u64 ep_state;
};

/* policy_counters: new-flow judgements per (policy, rule, verdict, side).
 * A miss (no entry, or no policy selects the endpoint) is policy 0, rule
 * POLICY_RULE_NONE, allow. Per-CPU: user space sums. */
struct policy_counter_key {
	__u32 policy;
	__u16 rule;
	__u8 verdict;
	__u8 dir;
};

struct policy_counter {
	__u64 flows;   /* judgements (a new flow, or one judged again) */
	__u64 packets; /* packets of those flows, the first included */
};

/* policy_stats[]: per-CPU totals of the enforcement points. */
enum policy_stat {
	POLICY_STAT_LOOKUP = 0,	   /* judgements through the policy maps */
	POLICY_STAT_CT_HIT = 1,	   /* packets decided by their flow's entry */
	POLICY_STAT_CT_STALE = 2,  /* flow entries judged again after a policy change */
	POLICY_STAT_DROP = 3,	   /* packets dropped (denied) */
	POLICY_STAT_AUDIT = 4,	   /* packets passed that a policy would drop */
	POLICY_STAT_NO_EP = 5,	   /* packets with no registered endpoint at either end */
	POLICY_STAT_LOG_LOST = 6,  /* flow events the buffer had no room for */
	POLICY_STAT_SOCK_DENY = 7, /* connect()/sendmsg() refused (EPERM) */
	POLICY_STAT_SPOOF = 8,	   /* dropped: from a veth, not from its endpoint's address */
	POLICY_STAT_MAX = 9,
};

/* A flow log event: one per judgement of a new flow (and of one judged
 * again), whatever the verdict. Addresses and ports as on the wire. */
#define POLICY_EV_F_PUBLISHED 1U /* arrived on a published port */
#define POLICY_EV_F_SOCKET    2U /* judged at connect()/sendmsg(): sport is 0 */
#define POLICY_EV_F_REJUDGED  4U /* an established flow after a policy change */

struct policy_flow_event {
	__u64 ts_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;     /* POLICY_DIR_*: the judged endpoint's side */
	__u8 verdict; /* enum policy_verdict */
	__u8 flags;   /* POLICY_EV_F_* */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 policy;
	__u16 rule;
	__u16 ep;
};
