/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "cli/cli.h"
#include "lib/err.h"

/* `shoal bench cluster`, split over three files: the command and its phases
 * (bench-cluster.c), the simulated nodes (bench-cluster-sim.c), and the
 * processes it runs, etcd and the real agents, with their cleanup
 * (bench-cluster-proc.c). */

/* The store's keys, as agent/cluster.h and agent/membership.h spell them. */
#define BCL_NODES  "/shoal/nodes/"
#define BCL_ALIVE  "/shoal/alive/"
#define BCL_TASKS  "/shoal/tasks/"
#define BCL_LEADER "/shoal/leader"

#define BCL_MAX_AGENTS	 8
#define BCL_MAX_NODES	 20000
#define BCL_MAX_THREADS	 16
#define BCL_MAX_EXECS	 256
#define BCL_AGENT_PREFIX "shoal-benchcl"
/* In the environment of every process a run starts: its temp dir. */
#define BCL_RUN_ENV "SHOAL_BENCH_RUN"

struct store;
struct store_watch;
struct store_lease_keeper;
struct event_base;
struct event;
struct bcl_thread;
struct bcl_exec;

/* One simulated node: a lease kept alive, its record and liveness key as a
 * real agent writes them, and an executor that walks its tasks through the
 * states a container start would. */
struct bcl_node {
	char id[65];
	char hostname[32];
	char addr[16];
	int64_t lease;
	struct store_lease_keeper *keeper;
	struct store *kstore;	   /* the store handle its keeper is on */
	struct store_watch *watch; /* --watch per-node */
	struct bcl_thread *th;
	atomic_bool dead;
};

struct bcl_sim_stats {
	atomic_uint_fast64_t events;		/* task events delivered to the simulated nodes */
	atomic_uint_fast64_t started;		/* tasks walked to running */
	atomic_uint_fast64_t stopped;		/* tasks reported shut down */
	atomic_uint_fast64_t writes;		/* status writes that went through */
	atomic_uint_fast64_t conflicts;		/* compare-and-swap retries */
	atomic_uint_fast64_t errors;		/* store calls that failed */
	atomic_int_fast64_t max_renewal_age_ns; /* the longest a live lease went unrenewed */
	atomic_int_fast64_t max_loop_lag_ns;	/* the latest a thread's 100 ms tick ran */
};

struct bcl_sim {
	const char *endpoints;
	int ttl_s;
	bool per_node_watch;
	struct bcl_node *nodes;
	size_t n_nodes;
	struct bcl_thread *threads;
	size_t n_threads;
	struct bcl_exec *execs; /* the executors: blocking store calls */
	size_t n_execs;
	struct bcl_sim_stats stats;
	pthread_mutex_t err_lock;
	char first_err[512]; /* the first failure's message */
};

/* Registers every node (records, leases, liveness) from n_threads threads,
 * each with its store and its watch (or a watch per node), and returns once
 * they all watch. 0 or -errno with err set. */
int bcl_sim_start(struct bcl_sim *s, size_t n_nodes, size_t n_threads, struct shoal_err *err);
/* Node i dies: its keeper stops, its lease is revoked (its liveness key goes
 * with it) and it handles nothing more. *ret_ns: mono_ns() just before the
 * revoke. */
int bcl_sim_kill(struct bcl_sim *s, size_t i, int64_t *ret_ns, struct shoal_err *err);
/* Stops the threads; revokes the leases of the nodes still alive. */
void bcl_sim_stop(struct bcl_sim *s);

/* ---- processes ---- */

struct bcl_agent {
	pid_t pid;
	char dir[256];
	char sock[300];
	char addr[16];
	char node_id[65];
	char cgroup_parent[96];
	char bpffs_dir[128];
	char prefix[9];
	char netns[128]; /* a network namespace to start it in ("": the bench's own) */
	struct cli_ctx ctx;
	int restarts;
};

struct bcl_procs {
	const char *label; /* names the temp dir, cgroups, bpffs dirs (NULL: BCL_AGENT_PREFIX) */
	char tmp[256];	   /* everything the bench writes */
	char etcd_dir[300];
	pid_t etcd_pid;
	char etcd_addr[16]; /* where etcd listens ("": 127.0.0.1) */
	char endpoints[512];
	char etcd_version[64];
	char etcd_fs[32];
	char shoald[4096];
	int ttl_s;
	struct bcl_agent agents[BCL_MAX_AGENTS];
	size_t n_agents;
};

/* A temp dir and the namespace's addresses (an agent whose addr is set
 * already keeps it); etcd on etcd_addr inside it (unless endpoints is
 * given). */
int bcl_procs_init(struct bcl_procs *p, const char *endpoints, struct shoal_err *err);
int bcl_etcd_start(struct bcl_procs *p, struct shoal_err *err);
/* Starts (or restarts) agent i and waits until it answers; its node id is
 * read from its data dir. */
int bcl_agent_start(struct bcl_procs *p, size_t i, struct shoal_err *err);
/* kill -9 and reap. */
void bcl_agent_kill9(struct bcl_procs *p, size_t i);
/* SIGTERM, then SIGKILL after a grace period; reaped. */
void bcl_agent_stop(struct bcl_procs *p, size_t i);
/* Every child stopped, what the agents left running (their cgroups'
 * processes, container monitors) killed, cgroups, bpffs dirs, mounts and the
 * temp dir removed. */
void bcl_procs_cleanup(struct bcl_procs *p);

/* etcd's own counters (/metrics) summed: request messages received, and
 * gRPC message bytes received and sent; by_method (may be NULL) gets the
 * request messages per method. */
struct bcl_metrics {
	double requests, bytes_in, bytes_out;
	json_t *by_method;
};
int bcl_metrics_read(const char *endpoints, struct bcl_metrics *ret, struct shoal_err *err);

/* Set by SIGINT/SIGTERM: every wait ends and the bench cleans up. */
extern volatile sig_atomic_t bcl_interrupted;
