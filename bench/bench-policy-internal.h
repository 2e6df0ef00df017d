/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Between `shoal bench policy`'s parts: bench-policy.c (the namespaces, the
 * enforcers, the load, per packet, create to enforcement, output),
 * bench-policy-api.c (create to enforcement through a running shoald) and
 * bench-policy-cluster.c (create to enforcement on every node of a cluster
 * the bench makes). */
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "lib/err.h"

struct cli_ctx;
struct lb_policy;
struct policy_compiled;

#define PB_PORT		     5201
#define PB_SERVER	     0x0a630001u /* 10.99.0.1 */
#define PB_CLIENT	     0x0a630002u /* 10.99.0.2: allowed by the last rule */
#define PB_STRANGER	     0x0a630003u /* 10.99.0.3: allowed by none */
#define PB_EP		     1
#define PB_PER_POLICY	     250 /* rules per policy (POLICY_MAX_RULES is 256) */
#define PB_MAX_RULES	     50000
#define PB_MAX_COUNTS	     8
#define PB_MAX_ROUNDS	     100
#define PB_PROBE_EVERY_NS    100000LL
#define PB_PROBE_GIVEUP_NS   2000000000LL
#define PB_PROBE_SLACK_NS    2000000LL
#define PB_PROBE_RING	     256
#define PB_PACKET_FLOWS	     2000
#define PB_PACKET_REPEAT     100000
#define PB_TARGET_RATIO	     0.98
#define PB_TARGET_ENFORCE_MS 100.0

/* --nodes: the cluster phase's size and rounds */
#define PB_CLUSTER_MIN_NODES  2
#define PB_CLUSTER_MAX_NODES  5
#define PB_CLUSTER_ROUNDS     20
#define PB_CLUSTER_MAX_ROUNDS 1000

enum pb_enforcer { PB_NONE, PB_SHOAL, PB_IPTABLES, PB_NFTABLES, PB_ENFORCERS };

struct pb_opts {
	size_t counts[PB_MAX_COUNTS];
	int ncounts;
	double duration, warmup;
	int rounds, conns, enforce_rounds;
	int nodes, cluster_rounds; /* --nodes (0: no cluster phase) */
	bool json, quiet;
	const char *outfile, *echo;
};

struct pb {
	struct pb_opts o;
	char ns_c[32], ns_s[32], if_c[16], if_s[16];
	char self[4096], echo[4096], tmp[64];
	bool ns_c_made, ns_s_made, link_made;
	pid_t echo_pid;
	int host_fd;
	int ifindex_c;
	struct lb_policy *pol;
	struct policy_compiled *live;
	bool attached;
	size_t shoal_n, shoal_entries; /* the rule count the maps hold, its entries */
	double compile_ms, apply_ms;
};

struct bench_samples;

struct pb_api {
	struct sockaddr_in dst;
	const char *service;
	int port;
};

/* Set by SIGINT/SIGTERM: the rounds stop, everything is taken down. */
extern volatile sig_atomic_t pb_interrupted;

/* --api-target: the rounds through the agent SHOAL_HOST names, into out. */
int pb_api_run(struct cli_ctx *ctx, const struct pb *b, const struct pb_api *a, json_t *out,
	       struct shoal_err *err);
void pb_api_print(json_t *out);
/* The prober of one round, in a child (it ends it): datagrams to a->dst
 * from a new socket each, every millisecond. It writes "r" on ready_fd
 * once the create may come (deny: once one of its own was answered; allow:
 * at once), or closes it without a word when a deny round's first answer
 * does not come in time. It reads the create's start (mono_ns()) from
 * t0_fd, and writes on wfd what it saw, an int64_t: deny, the send time of
 * the first datagram after the last one answered (-1: none was answered
 * before the create); allow, the send time of the first one answered,
 * stamped after the create started (-1: one was answered before); 0: gave
 * up. Then three int64_t: answers before the create, after it, datagrams
 * sent. */
void pb_api_prober(const struct pb_api *a, bool deny, int wfd, int ready_fd, int t0_fd);
/* p50, p99, min, max in ms and the count of s, as the API rows give them. */
json_t *pb_api_summary(struct bench_samples *s);

/* --nodes N: what the cluster phase needs is there (etcd, shoald, the bench
 * image), before anything starts. */
int pb_cluster_check(const struct pb *b, struct shoal_err *err);
/* --nodes N: N node namespaces on an underlay bridge, etcd, a shoald on
 * each, an overlay network, a receiver (UDP echo) on every node and a
 * prober for each on the next node; policy creates through node 1's API
 * timed to enforcement on every node, into out ("cluster_enforce_ms").
 * Everything it made is removed before it returns. */
int pb_cluster_run(const struct pb *b, json_t *out, struct shoal_err *err);
void pb_cluster_print(json_t *out);
