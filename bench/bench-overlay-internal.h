/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <jansson.h>

#include "bench/bench-cluster-internal.h"
#include "cli/cli.h"
#include "lib/err.h"

/* `shoal bench overlay`, in four files: the command, its topology, set-up
 * and report (bench-overlay.c); the data plane's rounds, TCP throughput,
 * HTTP and the routing mesh (bench-overlay-data.c); the control plane's, an
 * endpoint programmed on the other node and a dead node forgotten
 * (bench-overlay-ctl.c); and what it does inside the node namespaces:
 * commands run there, their output, and rtnetlink sockets that watch or dump
 * their FDB and neighbour tables (bench-overlay-net.c). A namespace is named
 * by a path: /run/netns/NAME, or a container's SandboxKey; "" is the
 * bench's own. */

/* Runs argv in the namespace at netns and waits for it. With ret_out, its
 * standard output (at most 4 MiB, NUL-terminated, free()). 0, or -errno with
 * err naming the command and how it ended (the end of what it printed on
 * stderr). */
int bov_run(const char *netns, char *const argv[], char **ret_out, struct shoal_err *err);
/* bov_run() of a command line split at spaces (no quoting). */
int bov_runf(const char *netns, struct shoal_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* argv in the background in the namespace at netns, killed with this process;
 * its output to log (or discarded). The pid, or -errno. */
pid_t bov_spawn(const char *netns, char *const argv[], const char *log);
/* SIGTERM, then SIGKILL after a moment; reaped. Accepts pid <= 0. */
void bov_stop(pid_t pid);
/* Creates an rtnetlink socket in the namespace at netns (non-blocking,
 * close-on-exec); with groups, subscribed to them (RTNLGRP_* bits) and given a
 * large receive buffer. The fd or -errno. */
int bov_nl_socket(const char *netns, uint32_t groups, struct shoal_err *err);

/* A neighbour message: an FDB entry (AF_BRIDGE) or an IPv4 neighbour. */
struct bov_neigh {
	bool del;     /* RTM_DELNEIGH */
	bool fdb;     /* AF_BRIDGE; else AF_INET */
	bool has_mac; /* NDA_LLADDR */
	bool has_dst; /* NDA_DST: the remote VTEP (FDB), the address (neighbour) */
	uint8_t mac[6];
	struct in_addr dst;
	int ifindex;
	uint16_t state;
};
typedef void (*bov_neigh_cb)(const struct bov_neigh *n, void *arg);
/* Reads every message waiting on a monitor socket. 0, -ENOBUFS when the
 * kernel dropped some (the socket overran), or -errno. */
int bov_nl_drain(int fd, bov_neigh_cb cb, void *arg);
/* Dumps the FDB and the IPv4 neighbour table of the namespace at netns. */
int bov_nl_dump(const char *netns, bov_neigh_cb cb, void *arg, struct shoal_err *err);

/* ---- the command's state and the pieces its files share ---- */

struct event_base;
struct store;

/* The targets the figures are held against. */
#define TARGET_VXLAN_RATIO   0.95  /* overlay throughput / bare VXLAN pair's */
#define TARGET_PROGRAMMED_MS 100.0 /* p99, with 1,000 endpoints present */

#define BOV_NODES      2
#define BOV_MAX_ROUNDS 20
#define BOV_MAX_EPS    20000
#define BOV_LABEL      "shoal-benchov"
#define BOV_IMAGE      "shoal-bench"
#define WAIT_NS	       (60LL * 1000000000)
#define SAMPLE_NS      (30LL * 1000000000)
#define EPS_PER_TXN    50 /* two operations each: etcd allows 128 a transaction */
#define SEEN_MAX       1024

/* Addresses: the underlay (the bench's bridge .1, the nodes .11 and .12, the
 * simulated third node's VTEP .13), the overlay network, the bare pair. */
#define UNDERLAY_NET "10.214.0"
#define OVERLAY_NET  "10.215.0.0/16"
#define SIM_IP_BASE  0x0ad78000u /* 10.215.128.0: the simulated endpoints */
#define BARE_NET     "10.216.0"
#define IPERF_PORT   5201
#define HTTPD_PORT   8080
#define MESH_PORT    8090 /* published by the routing mesh's service */

struct ctr {
	char name[64];
	char id[80];
	char ip[INET_ADDRSTRLEN];
	char mac[18];
	char sandbox[512];
};

/* A message of the monitor socket, kept for a moment: the store's event
 * and the kernel's may be read in either order. */
struct seen {
	bool fdb, del;
	uint8_t mac[6];
	struct in_addr ip;
	int64_t t;
};

struct bov {
	/* options */
	size_t rounds, n_eps, starts;
	double duration;
	int ttl_s, conns;
	bool json, quiet;
	const char *out_path, *tool_opt;
	/* what it made */
	char ns[BOV_NODES + 1][64];	 /* underlay, node 1, node 2 */
	char ns_path[BOV_NODES + 1][96]; /* /run/netns/... */
	bool ns_made[BOV_NODES + 1];
	int host_fd; /* the namespace the bench started in */
	bool moved;
	struct bcl_procs procs;
	struct event_base *base;
	struct store *store;
	char self_dir[4096];
	/* the simulated third node */
	char sim_id[65];
	int64_t sim_lease;
	struct store_lease_keeper *sim_keeper;
	bool sim_lost;
	/* the network and its containers */
	char net_name[64], net_id[128];
	struct ctr cli, srv; /* on node 1, on node 2 */
	pid_t servers[8];
	size_t n_servers;
	char tool[16], tool_version[64];
	int vni;
	/* the routing mesh's service, published on every node, its task on
	 * node 2 */
	char mesh_name[64], mesh_id[128];
	/* the programmed phase */
	struct seen seen[SEEN_MAX];
	size_t n_seen;
	bool overrun;
	char want_name[64];
	bool rec_seen;
	int64_t rec_t;
	uint8_t want_mac[6];
	struct in_addr want_ip;
	int watch_errors;
};

/* nanosleep() of ms milliseconds. */
void bov_msleep(int ms);
/* The underlay address of node i + 1 (i from 0), in buf (16 bytes). */
const char *bov_node_addr(int i, char *buf);
/* Creates and starts a container of the bench image on net (the agent at
 * ctx); its id in ret_id. */
int bov_ctr_run(struct cli_ctx *ctx, const char *net, const char *name, char *ret_id, size_t idsize,
		struct shoal_err *err);
/* Removes the container (forced); a failure is not reported. */
void bov_ctr_remove(struct cli_ctx *ctx, const char *id);
/* Every container of the first n agents removed through its agent. */
struct bcl_procs;
void bov_agents_clear(struct bcl_procs *procs, int n);
/* "aa:bb:cc:dd:ee:ff": 0, or -EINVAL. */
int bov_parse_mac(const char *s, uint8_t mac[6]);

/* bench-overlay-data.c: the TCP tool (iperf3 or bench-tcp, as asked and
 * installed), the servers it started stopped, and the three rounds. */
int bov_tool_pick(struct bov *b, struct shoal_err *err);
void bov_servers_stop(struct bov *b);
int bov_phase_throughput(struct bov *b, json_t *out, struct shoal_err *err);
int bov_phase_http(struct bov *b, json_t *out, struct shoal_err *err);
int bov_phase_mesh(struct bov *b, json_t *out, struct shoal_err *err);
/* Removes the routing mesh's service, if it is there; a failure is not
 * reported. */
void bov_mesh_remove(struct bov *b);

/* bench-overlay-ctl.c */
int bov_phase_programmed(struct bov *b, json_t *out, struct shoal_err *err);
int bov_phase_dead(struct bov *b, json_t *out, struct shoal_err *err);
