/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "sched/types.h"

/*
 * The service spec: Docker Engine API v1.43 ServiceSpec JSON <-> C, with Docker's
 * defaults filled in, and validation that reports every problem at once with its
 * JSON path ("TaskTemplate.Resources.Limits.MemoryBytes: expected ...").
 */

/* Limits on what a spec may hold; past them the spec is rejected with a clear error. */
#define SPEC_MAX_NAME_LEN	 63   /* a DNS label */
#define SPEC_MAX_STRING_LEN	 4096 /* any single string (env entry, label value, arg) */
#define SPEC_MAX_IMAGE_LEN	 1024
#define SPEC_MAX_LABEL_KEY_LEN	 256
#define SPEC_MAX_LABELS		 256 /* per label set */
#define SPEC_MAX_ENV		 1024
#define SPEC_MAX_ARGS		 1024 /* Command, Args, Healthcheck.Test entries */
#define SPEC_MAX_CAPS		 64
#define SPEC_MAX_CONSTRAINTS	 64
#define SPEC_MAX_PREFS		 16
#define SPEC_MAX_PORTS		 128
#define SPEC_MAX_NETWORKS	 32
#define SPEC_MAX_MOUNTS		 64
#define SPEC_MAX_ALIASES	 32
#define SPEC_MAX_REF_NAME_LEN	 64	   /* a secret's or config's name */
#define SPEC_MAX_REPLICAS	 10000	   /* AGENT_MAX_CONTAINERS; each one is a task record */
#define SPEC_MIN_HEALTH_DURATION 1000000LL /* 1 ms, Docker's minimum */

/* Defaults (Docker's). */
#define SPEC_DEFAULT_RESTART_DELAY     5000000000LL
#define SPEC_DEFAULT_MONITOR	       5000000000LL
#define SPEC_DEFAULT_STOP_GRACE_PERIOD 10000000000LL

/* Every problem found in a spec; messages past SPEC_MAX_ERRORS are counted, not kept. */
#define SPEC_MAX_ERRORS	   32
#define SPEC_ERROR_MSG_LEN 256

struct spec_errors {
	size_t n;     /* problems kept in msg[] */
	size_t total; /* problems found, >= n */
	char msg[SPEC_MAX_ERRORS][SPEC_ERROR_MSG_LEN];
};

enum service_mode { SERVICE_REPLICATED, SERVICE_GLOBAL };
enum endpoint_mode { ENDPOINT_VIP, ENDPOINT_DNSRR };

struct spec_label {
	char *key;
	char *value;
};

/* Sorted by key, keys unique. */
struct spec_labels {
	struct spec_label *v;
	size_t n;
};

/* ContainerSpec.Healthcheck. test is Docker's form: NULL (or empty) inherits the image's
 * test, {"NONE"} disables, {"CMD", argv...} or {"CMD-SHELL", command}. Zero durations and
 * zero retries inherit the image's value too. */
struct healthcheck {
	char **test;
	int64_t interval_ns;
	int64_t timeout_ns;
	int64_t start_period_ns;
	int64_t retries;
};

struct container_spec {
	char *image;
	char **command; /* NULL-terminated; NULL = the image's entrypoint */
	char **args;	/* NULL = the image's cmd */
	char **env;	/* "KEY=VALUE" */
	char *dir;	/* absolute, NULL = the image's */
	char *user;
	char *hostname;
	struct spec_labels labels;	 /* container labels */
	struct healthcheck *healthcheck; /* NULL = absent: the image's applies (caller merges) */
	int64_t stop_grace_period_ns;	 /* default 10 s */
	char *stop_signal;		 /* NULL = the image's, else "SIGTERM", "TERM" or "15" */
	bool read_only;
	char **cap_add; /* normalised "CAP_NET_ADMIN" or "ALL" */
	char **cap_drop;
	bool has_init; /* Init given */
	bool init;
	/* Docker Mount objects (Type, Source, Target, ReadOnly, BindOptions,
	 * VolumeOptions, TmpfsOptions) as given, NULL = none. Their shape is
	 * checked here; what a node mounts, by the agent with the rules of a
	 * container's HostConfig.Mounts (agent/container-mounts.c), at the API
	 * and again at each task's create. */
	json_t *mounts;
	/* Docker's SecretReference and ConfigReference objects, checked and with
	 * File's defaults filled in ({SecretID, SecretName, File: {Name, UID,
	 * GID, Mode}}); NULL = none. The agent resolves them against the store. */
	json_t *secrets;
	json_t *configs;
};

struct spec_network {
	char *target;
	char **aliases;
};

struct task_template {
	struct container_spec container;
	struct sched_resources limits;
	struct sched_resources reservations; /* pids unused */
	struct restart_policy restart;
	struct constraint *constraints;
	size_t n_constraints;
	struct placement_pref *prefs;
	size_t n_prefs;
	uint64_t max_replicas; /* per node, 0 = unlimited */
	struct spec_network *networks;
	size_t n_networks;
	uint64_t force_update;
};

struct service_spec {
	char *name;
	struct spec_labels labels;
	struct task_template task;
	enum service_mode mode;
	uint64_t replicas; /* replicated mode only */
	struct update_config update;
	struct update_config rollback;
	enum endpoint_mode endpoint_mode;
	struct port_config *ports;
	char **port_names; /* n_ports entries, each NULL when the port has no Name */
	size_t n_ports;
};

/* Parses and validates a ServiceSpec. Returns 0 and *ret, or -EINVAL with every problem
 * in errs (errs may be NULL), or -ENOMEM. Unknown fields are ignored; null = absent. */
int service_spec_from_json(json_t *j, struct service_spec **ret, struct spec_errors *errs);
/* The full spec with defaults filled in, as `service inspect` shows it. NULL on ENOMEM. */
json_t *service_spec_to_json(const struct service_spec *s);
/* Accepts NULL. */
void service_spec_free(struct service_spec *s);
/* Deep copy; NULL with errno = ENOMEM. */
struct service_spec *service_spec_dup(const struct service_spec *s);
/* True when both TaskTemplates are the same: a task made from one runs the other.
 * A ForceUpdate change makes them differ. */
bool service_spec_task_equal(const struct service_spec *a, const struct service_spec *b);

/* The Docker /containers/create body for one task's container. NULL on ENOMEM. */
json_t *service_task_container_config(const struct service_spec *s, const char *task_name);

void spec_errors_init(struct spec_errors *errs);
/* Joins the problems into err: "invalid service spec: 3 problems: a; b; c" (EINVAL,
 * HTTP 400). Returns -EINVAL. */
int spec_errors_format(const struct spec_errors *errs, struct shoal_err *err);

/* CLI-style strings. Each returns 0 and writes ret_*, or -EINVAL with a message in err
 * (err may be NULL). */

/* Go duration syntax: "300ms", "1m30s", "1.5h", "0"; units ns, us (µs), ms, s, m, h. */
int spec_parse_duration(const char *s, int64_t *ret_ns, struct shoal_err *err);
/* Go-style duration text ("1m30s", "500ms", "0s"). */
void spec_format_duration(int64_t ns, char ret[40]);
/* "node.labels.zone==a", "node.role!=manager". Allocates ret->key and ret->value; free with
 * spec_constraint_done(). */
int spec_parse_constraint(const char *s, struct constraint *ret, struct shoal_err *err);
void spec_constraint_done(struct constraint *c);
/* "node.labels.zone==a", allocated; NULL on ENOMEM. */
char *spec_format_constraint(const struct constraint *c);
/* "spread=node.labels.zone" (the --placement-pref form). Allocates ret->spread_key. */
int spec_parse_placement_pref(const char *s, struct placement_pref *ret, struct shoal_err *err);
/* Long form "published=8080,target=80,protocol=udp,mode=host" or short form
 * "8080:80[/udp]" or "80[/udp]" (target only, published assigned). */
int spec_parse_publish(const char *s, struct port_config *ret, struct shoal_err *err);
/* Service name: at most SPEC_MAX_NAME_LEN letters, digits, '-' and '_',
 * starting and ending with a letter or digit, as swarm's (a stack's services
 * are STACK_NAME). */
int spec_validate_name(const char *name, struct shoal_err *err);

int spec_parse_restart_condition(const char *s, enum restart_condition *ret, struct shoal_err *err);
int spec_parse_failure_action(const char *s, enum update_failure_action *ret,
			      struct shoal_err *err);
int spec_parse_update_order(const char *s, enum update_order *ret, struct shoal_err *err);
int spec_parse_endpoint_mode(const char *s, enum endpoint_mode *ret, struct shoal_err *err);
int spec_parse_protocol(const char *s, enum port_protocol *ret, struct shoal_err *err);
int spec_parse_publish_mode(const char *s, enum publish_mode *ret, struct shoal_err *err);

/* Docker's names for the enums ("on-failure", "stop-first", "dnsrr", ...). */
const char *spec_restart_condition_str(enum restart_condition c);
const char *spec_failure_action_str(enum update_failure_action a);
const char *spec_update_order_str(enum update_order o);
const char *spec_endpoint_mode_str(enum endpoint_mode m);
const char *spec_protocol_str(enum port_protocol p);
const char *spec_publish_mode_str(enum publish_mode m);
