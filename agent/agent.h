/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "lib/err.h"

struct store;
struct image_store;
struct bridge_net;
struct container;
struct exec_inst;
struct secrets_key;

/* Everything shoald creates lives under these roots and carries the prefix, so
 * several agents (one per test node) can share a machine. */
struct agent_config {
	char *data_dir;	       /* /var/lib/shoal */
	char *run_dir;	       /* /run/shoal */
	char *socket_path;     /* <run_dir>/shoal.sock */
	char *cgroup_parent;   /* "shoal": relative to the agent's own cgroup */
	char *bpffs_dir;       /* /sys/fs/bpf/shoal */
	char *device_prefix;   /* "shoal" */
	char *bridge_subnet;   /* 10.213.0.0/16 */
	char *store_backend;   /* sqlite */
	char *store_endpoints; /* etcd endpoints */
	/* etcd over https and with auth (--store-cacert, --store-cert, --store-key,
	 * --store-user; the password read from --store-password-file) */
	char *store_cacert, *store_cert, *store_key, *store_user, *store_password_file;
	char *store_password;
	char *advertise_addr; /* --advertise-addr: this node's address for the others */
	char *role;	      /* --role: manager (may lead) or worker */
	bool role_given;      /* --role was on the command line */
	char *join_token;     /* --join-token: admits the node, says its role */
	char **node_labels;   /* --node-label K=V */
	int node_ttl_s;	      /* --node-ttl: lease TTL of the node's liveness (5) */
	char *monitor_path;   /* shoal-monitor beside shoald */
	char *log_level;
	int64_t log_max_size;
	int log_max_files;
	int task_history_limit; /* --task-history-limit: finished tasks kept per slot (5) */
	int max_connections;	/* --max-connections: API connections at once; 0 = default */
	/* --log-max-total in bytes, 0 = no cap; as parsed, -N is N% of the data dir's
	 * file system and INT64_MAX no cap (resolved by logs_usage_start()) */
	int64_t log_max_total;
	char **uplinks;	      /* --uplink; NULL = every interface but lo and our own */
	bool teardown;	      /* --teardown: remove the node-level objects and exit */
	bool check;	      /* --check: print the data-plane features and exit */
	bool xdp;	      /* --xdp: the published-port ingress path as native XDP too */
	uint32_t maglev_size; /* --maglev-size; 0: the load balancer's default */
	uint32_t lb_flows;    /* --lb-flows; 0: the load balancer's default */
	/* --insecure-registry HOST[:PORT]: registries pulled from over plain HTTP */
	char **insecure_registries;
	/* --secrets-key-file: the key secrets are sealed with, the same file on
	 * every node; NULL = $data_dir/secrets.key, made on the first start */
	char *secrets_key_file;
};

struct agent {
	struct agent_config cfg;
	struct event_base *base;
	struct evhttp *http;
	struct event *sig_term, *sig_int, *sig_pipe;
	struct store *store;
	struct image_store *images;
	struct bridge_net *bridge; /* NULL until the first bridge container */
	struct shoal_err bridge_err;

	char seccomp_default[4096]; /* compiled default profile */
	char cgroup_v2[4096];	    /* the cgroup parent in the v2 tree ("" if none) */
	char node_id[65];
	char hostname[256];
	int64_t started_ns;

	/* containers by id; names in a second index */
	struct container *containers; /* list head */
	unsigned n_containers;
	struct container_index *container_index; /* agent/container-index.c */
	struct exec_inst *execs;

	struct worker *worker;
	struct manager *manager;
	struct publish *publish;
	struct publish_fwd *publish_fwd;
	struct publish_proxy *publish_proxy; /* NULL unless the node hooks are off */
	struct dns *dns;
	struct executor *executor;
	struct log_usage *log_usage;   /* agent/logs.c: node-wide container log bytes */
	struct membership *membership; /* agent/membership.c: liveness, leadership */
	/* agent/policy-agent.c: network policy */
	struct policy_agent *policy_agent;
	/* agent/overlay-agent.c: overlay networks on this node */
	struct overlay_agent *overlay_agent;
	/* agent/secrets-task.c: the key secrets are sealed with */
	struct secrets_key *secrets;
};

/* agent/policy-agent.c: network policy on this node. Init after publish_init()
 * (its socket programs go after the load balancer's); failure to enforce is
 * logged, not fatal. Stop leaves the programs and pinned maps enforcing. */
void policy_agent_init(struct agent *a);
void policy_agent_stop(struct agent *a);

/* agent/logs.c: the node-wide count of container log bytes that every monitor
 * shares ($run_dir/log-usage), recounted from the files now and then. Without it
 * (NULL path) containers log under the free-space floor only. */
int logs_usage_start(struct agent *a, struct shoal_err *err);
const char *logs_usage_path(const struct agent *a);
void logs_usage_stop(struct agent *a);
/* The data dir's reserve at path: released (1) when the disk is full, made again
 * when there is room; checked at start and with the log recount. */
int logs_ballast_check(struct agent *a, const char *path);

/* Limits. */
#define AGENT_MAX_JSON_BODY  (1u << 20)	    /* API JSON bodies */
#define AGENT_MAX_IMAGE_BODY (1024LL << 20) /* image tarballs through the API */
#define AGENT_MAX_CONTAINERS 10000
#define AGENT_MAX_EXECS	     4096
