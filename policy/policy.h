/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bpf/shared/policy.h"
#include "lib/err.h"

/*
 * Network policy, pure: the model and its JSON (and YAML) form, validation
 * that names the field, the evaluator (`shoal policy explain`), the compiler
 * to the data plane's map entries, and the ordered map operations that move
 * the maps from one compiled state to the next. No syscalls, no store.
 *
 * Semantics, per endpoint and direction:
 *   - cluster tier (Tier "cluster"), by Order ascending: each selecting
 *     policy's first matching rule is its answer; among the policies of one
 *     order the strictest answer wins (deny, then pass, then allow). The
 *     first order with an answer ends the tier: allow or deny decide, pass
 *     goes on to the service policies.
 *   - service policies (no Tier): if any selects the endpoint in this
 *     direction the endpoint is isolated: allowed when one of their rules
 *     matches, denied otherwise.
 *   - baseline tier (Tier "baseline"), as the cluster tier, allow or deny.
 *   - otherwise allowed.
 * A deny decided by an Audit policy is POLICY_VERDICT_AUDIT: passed and
 * logged. A service-tier deny is an audit only when every policy isolating
 * the endpoint is an Audit one. A flow needs both its sender's egress and
 * its receiver's ingress (for each end that is an endpoint).
 *
 * Peers: Service, Labels and Network name endpoints (Labels {} is every
 * endpoint, as Entity cluster). CIDR names addresses outside the cluster
 * (an endpoint or node address inside a CIDR is judged by what it is, as
 * Cilium does). Entity world is outside the cluster (published clients
 * too), node a node's own address, published a flow that arrived on a
 * published port (ingress only), cluster any endpoint. A rule without
 * Ports matches every protocol and port; a port entry without Port every
 * port of its protocol. Protocols are tcp and udp: the data plane judges no
 * other by port (sctp is refused; ICMP and the rest are reached by rules
 * without Ports only). Addresses are IPv4: the data plane has no IPv6 yet.
 */

#define POLICY_MAX_NAME_LEN  63	 /* as a service name */
#define POLICY_MAX_RULES     256 /* per direction */
#define POLICY_MAX_PEERS     64	 /* per rule */
#define POLICY_MAX_PORTS     64	 /* per rule */
#define POLICY_MAX_EXCEPT    32	 /* per CIDR */
#define POLICY_MAX_LABELS    64	 /* per selector */
#define POLICY_MAX_LABEL_KEY 253
#define POLICY_MAX_LABEL_VAL 256
#define POLICY_MAX_ORDER     1000000
#define POLICY_MAX_CHAIN     16		   /* steps kept by an explanation */
#define POLICY_MAX_ENTRIES   65536	   /* compiled entries per endpoint and direction */
#define POLICY_MAX_DOC	     (1024 * 1024) /* bytes of JSON or YAML */

enum policy_dir {
	POLICY_INGRESS = POLICY_DIR_INGRESS,
	POLICY_EGRESS = POLICY_DIR_EGRESS,
};

enum policy_tier {
	POLICY_TIER_SERVICE = 0, /* no Tier: Kubernetes NetworkPolicy semantics */
	POLICY_TIER_CLUSTER,
	POLICY_TIER_BASELINE,
};

enum policy_action {
	POLICY_ACTION_NONE = 0, /* a service policy's rule: it allows */
	POLICY_ACTION_ALLOW,
	POLICY_ACTION_DENY,
	POLICY_ACTION_PASS,
};

enum policy_entity {
	POLICY_ENTITY_WORLD,
	POLICY_ENTITY_NODE,
	POLICY_ENTITY_PUBLISHED,
	POLICY_ENTITY_CLUSTER,
};

struct policy_label {
	char *key;
	char *value;
};

/* Sorted by key, keys unique. */
struct policy_labels {
	struct policy_label *v;
	size_t n;
};

enum policy_sel_kind {
	POLICY_SEL_ALL,	    /* {} */
	POLICY_SEL_SERVICE, /* name */
	POLICY_SEL_LABELS,  /* labels; all must match */
	POLICY_SEL_NETWORK, /* name */
};

struct policy_selector {
	enum policy_sel_kind kind;
	char *name;
	struct policy_labels labels;
};

/* IPv4 prefix, address in host byte order, host bits zero. */
struct policy_cidr {
	uint32_t addr;
	uint8_t len;
};

enum policy_peer_kind {
	POLICY_PEER_SERVICE,
	POLICY_PEER_LABELS,
	POLICY_PEER_NETWORK,
	POLICY_PEER_CIDR,
	POLICY_PEER_ENTITY,
};

struct policy_peer {
	enum policy_peer_kind kind;
	char *name;		     /* SERVICE, NETWORK */
	struct policy_labels labels; /* LABELS */
	struct policy_cidr cidr;     /* CIDR */
	struct policy_cidr *except;
	size_t n_except;
	enum policy_entity entity; /* ENTITY */
};

struct policy_port {
	uint8_t proto;	   /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;	   /* 0: every port of proto */
	uint16_t end_port; /* 0: no EndPort given (the range is port alone) */
};

struct policy_rule {
	enum policy_action action;
	struct policy_peer *peers; /* From or To; n_peers 0: every peer */
	size_t n_peers;
	struct policy_port *ports; /* n_ports 0: every protocol and port */
	size_t n_ports;
};

struct policy {
	uint32_t id; /* the caller's id, carried into the flow log; 0: its index + 1 */
	char *name;
	struct policy_selector selector;
	bool types[2]; /* by enum policy_dir */
	struct policy_rule *rules[2];
	size_t n_rules[2];
	enum policy_tier tier;
	uint32_t order; /* cluster and baseline only */
	bool audit;
};

/* --- model: JSON, YAML --- */

/* Parses and validates one policy. Unknown keys are refused anywhere. Returns 0
 * and *ret, or -EINVAL with the field path in err ("Ingress[0].Ports[1].EndPort:
 * 7000 is below Port 8000"), or -ENOMEM. */
int policy_from_json(json_t *j, struct policy **ret, struct shoal_err *err);
/* The canonical JSON: every field, defaults filled in (Types, Egress, Audit,
 * Protocol). Canonical input serialises to itself. NULL on ENOMEM. */
json_t *policy_to_json(const struct policy *p);
/* YAML of the same shape (one document). -ENOTSUP when built without libyaml. */
int policy_from_yaml(const char *buf, size_t len, struct policy **ret, struct shoal_err *err);
/* JSON when the first non-blank character is '{' or '[', YAML otherwise. */
int policy_from_text(const char *buf, size_t len, struct policy **ret, struct shoal_err *err);
/* True when policy_from_yaml() can work. */
bool policy_yaml_supported(void);
/* Accepts NULL; returns NULL. */
struct policy *policy_free(struct policy *p);
/* Policy names: the rules of service names. */
int policy_validate_name(const char *name, struct shoal_err *err);
/* "10.0.0.0/8" -> prefix; refuses host bits and IPv6 with a message. */
int policy_parse_cidr(const char *s, struct policy_cidr *ret, struct shoal_err *err);
/* "80/tcp", "8000-8100/udp", "53" (tcp); the CLI's form. */
int policy_parse_port(const char *s, struct policy_port *ret, struct shoal_err *err);
const char *policy_dir_str(enum policy_dir d);	     /* "Ingress", "Egress" */
const char *policy_action_str(enum policy_action a); /* "allow", "deny", "pass" */
const char *policy_verdict_str(enum policy_verdict v);
const char *policy_proto_str(uint8_t proto); /* "tcp", "udp", "other" */

/* --- the world policies are judged in --- */

struct policy_endpoint {
	uint16_t id;	     /* slot on its node (struct policy_key.ep) */
	const char *name;    /* task or container name, for explanations */
	const char *service; /* NULL: a plain container */
	struct policy_labels labels;
	const char *const *networks;
	size_t n_networks;
	uint32_t addr; /* host byte order */
	const char *node;
};

struct policy_node {
	const char *name;
	uint32_t addr;
};

struct policy_model {
	const struct policy_endpoint *endpoints;
	size_t n_endpoints;
	const struct policy_node *nodes;
	size_t n_nodes;
	/* Non-NULL: policy_compile() builds programs for the endpoints on this
	 * node only (identities and the ipcache still cover every endpoint). */
	const char *local_node;
	/* Optional, by endpoint: the identity of its label set, allocated
	 * cluster-wide by the caller (the same for every endpoint of one label
	 * set, never one of another set's); 0 or NULL: the compiler numbers the
	 * set itself, past the largest number given. */
	const uint32_t *identities;
};

struct policy_set {
	struct policy *const *v;
	size_t n;
	/* Optional: the flow-log id of each policy. NULL: policy->id, or its
	 * position + 1 when that is 0. */
	const uint32_t *ids;
	/* Every policy here is known to select the endpoint being evaluated
	 * (the compiler's per-endpoint sets): selectors are not matched again. */
	bool selected;
};

/* One end of a flow. */
enum policy_party_kind {
	POLICY_PARTY_ENDPOINT, /* ep */
	POLICY_PARTY_WORLD,    /* addr: outside the cluster */
	POLICY_PARTY_NODE,     /* addr: a node's own address */
	POLICY_PARTY_UNKNOWN,  /* an endpoint whose identity is not known here */
};

struct policy_party {
	enum policy_party_kind kind;
	const struct policy_endpoint *ep;
	uint32_t addr;
};

/* The unambiguous text of what selectors see of an endpoint (its service,
 * labels and networks): endpoints with the same text share an identity.
 * NULL on ENOMEM; the caller frees it. */
char *policy_label_set_key(const struct policy_endpoint *ep);

/* Resolves an address through the model: an endpoint, a node, or world. */
struct policy_party policy_model_party(const struct policy_model *m, uint32_t addr);

/* --- evaluator --- */

struct policy_step {
	const struct policy *policy;
	uint32_t policy_id; /* its id in the flow log (struct policy_value.policy) */
	enum policy_dir dir;
	int rule; /* index in policy->rules[dir]; -1: the policy isolates, no rule matched */
	enum policy_action action;
};

struct policy_decision {
	enum policy_verdict verdict;
	struct policy_step chain[POLICY_MAX_CHAIN]; /* in evaluation order; empty: default */
	size_t n;
	size_t omitted; /* steps past POLICY_MAX_CHAIN */
};

/* One side: may this endpoint, in this direction, talk to peer? published: the
 * flow arrived on a published port (ingress). Port is ignored for protocols
 * other than tcp and udp. */
void policy_eval_side(const struct policy_set *set, const struct policy_endpoint *ep,
		      enum policy_dir dir, const struct policy_party *peer, bool published,
		      uint8_t proto, uint16_t port, struct policy_decision *ret);

struct policy_flow {
	struct policy_party src, dst;
	uint8_t proto;
	uint16_t port; /* destination port */
	bool published;
};

struct policy_flow_result {
	enum policy_verdict verdict; /* deny if a side denies, else audit if one audits */
	bool has_egress, has_ingress;
	struct policy_decision egress;	/* src's egress, when src is an endpoint */
	struct policy_decision ingress; /* dst's ingress, when dst is an endpoint */
};

void policy_eval_flow(const struct policy_set *set, const struct policy_flow *flow,
		      struct policy_flow_result *ret);
/* The explanation `shoal policy explain` prints, one line a step. NULL on ENOMEM. */
char *policy_decision_format(const struct policy_decision *d);

/* --- compiler --- */

/* One entry of an endpoint's list for one direction: identity (or
 * POLICY_ID_ANY), proto, and the port block port .. port + 2^port_bits - 1. */
struct policy_entry {
	uint32_t identity;
	uint8_t proto;
	uint8_t port_bits; /* 0..16 low bits of port that are wildcards */
	uint16_t port;
	struct policy_value value;
};

struct policy_identity {
	uint32_t id;
	/* endpoint identities: the first endpoint with this label set; CIDR
	 * identities: the prefix */
	const struct policy_endpoint *ep;
	struct policy_cidr cidr;
};

struct policy_ipcache_entry {
	struct policy_cidr prefix;
	uint32_t identity;
};

struct policy_ep_program {
	uint16_t ep;
	uint8_t gen;			 /* set by policy_diff() */
	struct policy_entry *entries[2]; /* by enum policy_dir, sorted */
	size_t n_entries[2];
};

struct policy_compiled {
	struct policy_identity *ids;
	size_t n_ids;
	struct policy_ipcache_entry *ipcache;
	size_t n_ipcache;
	struct policy_ep_program *eps; /* by ep id ascending; endpoints without entries omitted */
	size_t n_eps;
};

/* Compiles the policies for every endpoint of the model. -E2BIG past
 * POLICY_MAX_ENTRIES for one endpoint and direction, -EINVAL for duplicate
 * endpoint ids, -ENOMEM. */
int policy_compile(const struct policy_set *set, const struct policy_model *m,
		   struct policy_compiled **ret, struct shoal_err *err);
struct policy_compiled *policy_compiled_free(struct policy_compiled *c);
/* The identity an address resolves to through the compiled ipcache. */
uint32_t policy_compiled_identity(const struct policy_compiled *c, uint32_t addr);
/* The data plane's lookup, in its order, over one endpoint's entries: the
 * verdict for (identity, proto, port); allow with policy 0 on a miss. */
struct policy_value policy_lookup(const struct policy_ep_program *p, enum policy_dir dir,
				  uint32_t identity, uint8_t proto, uint16_t port);

/* --- map operations --- */

enum policy_op_kind {
	POLICY_OP_UPDATE,   /* policy_map[key] = value */
	POLICY_OP_DELETE,   /* delete policy_map[key] */
	POLICY_OP_EP_SET,   /* policy_eps[key.ep] = ep_state: flips the live generation */
	POLICY_OP_EP_CLEAR, /* policy_eps[key.ep] = {0}: nothing selects the endpoint */
};

struct policy_op {
	enum policy_op_kind kind;
	struct policy_key key; /* EP_*: only ep is used */
	struct policy_value value;
	struct policy_ep_state ep_state;
};

struct policy_ops {
	struct policy_op *v;
	size_t n;
};

/* The map key of an entry of endpoint ep, generation gen. */
struct policy_key policy_entry_key(uint16_t ep, uint8_t gen, enum policy_dir dir,
				   const struct policy_entry *e);
/* The operations from old (NULL: empty maps) to new, in order: for each
 * endpoint whose entries change, every new entry under the other generation,
 * then the flip of the endpoint's generation, then the deletion of the old
 * generation's entries. A flow is judged by the old entries or the new ones,
 * never a mix. Sets new->eps[].gen. Returns 0 or -ENOMEM. */
int policy_diff(const struct policy_compiled *old, struct policy_compiled *new,
		struct policy_ops *ret);
void policy_ops_done(struct policy_ops *ops);
