// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/overlay-agent.h"
#include "agent/policy-agent-internal.h"
#include "agent/policy-agent.h"
#include "agent/publish.h"
#include "agent/store/store.h"
#include "agent/worker.h"
#include "lb/lb-policy.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/policy.h"

struct policy_agent *pa_of(struct agent *a)
{
	return a->policy_agent;
}

bool policy_agent_active(struct agent *a)
{
	struct policy_agent *pa = pa_of(a);
	return pa && pa->lbp && pa->policies_loaded && pa->n_policies > 0;
}

/* --- policies --- */

static void pa_pols_unref(struct pa_pols *p)
{
	if (!p || --p->refs)
		return;
	for (size_t i = 0; i < p->n; i++)
		policy_free(p->v[i]);
	free(p->v);
	free(p->ids);
	free(p);
}

static void pa_policies_free(struct policy_agent *pa)
{
	pa_pols_unref(pa->pols);
	pa->pols = NULL;
	pa->policies = NULL;
	pa->ids = NULL;
	pa->n_policies = 0;
}

/* A policy's flow-log id: a hash of its name, so that it stays the same
 * across restarts and recompiles; collisions move to the next free one. */
static uint32_t pa_name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	h &= 0x7fffffff;
	return h ? h : 1;
}

static int pa_policy_cmp(const void *x, const void *y)
{
	const struct policy *a = *(struct policy *const *)x, *b = *(struct policy *const *)y;
	return strcmp(a->name, b->name);
}

/* Sorts policies by name and gives each its flow-log id. */
static void pa_policies_sort(struct policy **v, uint32_t *ids, size_t k)
{
	qsort(v, k, sizeof(*v), pa_policy_cmp);
	for (size_t i = 0; i < k; i++) {
		uint32_t id = pa_name_hash(v[i]->name);
		for (bool taken = true; taken;) {
			taken = false;
			for (size_t j = 0; j < i; j++)
				if (ids[j] == id) {
					taken = true;
					id = (id % 0x7ffffffe) + 1;
					break;
				}
		}
		ids[i] = id;
	}
}

/* The policies in the store, parsed (those that do not parse are left out
 * with a warning), as a new set with one reference. */
static int pa_pols_read(struct policy_agent *pa, struct pa_pols **ret, struct shoal_err *err)
{
	_cleanup_(json_decrefp) json_t *all = NULL;
	int r = cluster_list(pa->a, CLUSTER_POLICIES, &all, err);
	if (r < 0)
		return r;
	size_t n = json_array_size(all);
	if (n > PA_MAX_POLICIES)
		n = PA_MAX_POLICIES;
	struct policy **v = calloc(n + 1, sizeof(*v));
	uint32_t *ids = calloc(n + 1, sizeof(*ids));
	struct pa_pols *pols = calloc(1, sizeof(*pols));
	if (!v || !ids || !pols) {
		free(v);
		free(ids);
		free(pols);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(all, i);
		struct shoal_err perr = {0};
		struct policy *p = NULL;
		if (policy_from_json(json_object_get(o, "Spec"), &p, &perr) < 0) {
			log_warn("policy: stored policy %s is not valid, left out: %s",
				 json_string_value(json_object_get(o, "Name")) ?: "?", perr.msg);
			continue;
		}
		v[k++] = p;
	}
	pa_policies_sort(v, ids, k);
	*pols = (struct pa_pols){.v = v, .ids = ids, .n = k, .refs = 1};
	*ret = pols;
	return 0;
}

int pa_policies_load(struct policy_agent *pa, struct shoal_err *err)
{
	struct pa_pols *pols = NULL;
	int r = pa_pols_read(pa, &pols, err);
	if (r < 0)
		return r;
	pa_policies_free(pa);
	pa->pols = pols;
	pa->policies = pols->v;
	pa->ids = pols->ids;
	pa->n_policies = pols->n;
	return 0;
}

const char *pa_policy_name(const struct policy_agent *pa, uint32_t id)
{
	for (size_t i = 0; i < pa->n_policies; i++)
		if (pa->ids[i] == id)
			return pa->policies[i]->name;
	return NULL;
}

/* --- endpoints --- */

static void pa_ep_clear(struct pa_ep *e)
{
	json_decref(e->labels);
	for (size_t i = 0; i < e->plabels.n; i++) {
		free(e->plabels.v[i].key);
		free(e->plabels.v[i].value);
	}
	free(e->plabels.v);
	memset(e, 0, sizeof(*e));
}

void pa_eps_free(struct pa_ep *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pa_ep_clear(&v[i]);
	free(v);
}

static int pa_label_cmp(const void *x, const void *y)
{
	return strcmp(((const struct policy_label *)x)->key, ((const struct policy_label *)y)->key);
}

static int pa_ep_cmp(const void *x, const void *y)
{
	const struct pa_ep *a = x, *b = y;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	return (int)a->remote - (int)b->remote; /* a local one first */
}

/* A container's network i (eth0, eth1, ...) as a local endpoint: each of its
 * networks is one, with its address and its veth. */
static bool pa_container_ep(const struct container *c, size_t i, struct container_att *ret)
{
	return (c->state == CONTAINER_RUNNING || c->state == CONTAINER_STARTING) &&
	       container_att(c, i, ret) && ret->ip.s_addr != 0 && ret->host_ifname[0];
}

static size_t pa_container_eps(const struct container *c)
{
	size_t n = 0;
	struct container_att at;
	for (size_t i = 0; i < CONTAINER_ATT_MAX; i++)
		n += pa_container_ep(c, i, &at);
	return n;
}

/* What the endpoints depend on, to tell a change cheaply. */
uint64_t pa_containers_sig(struct agent *a)
{
	uint64_t h = 1469598103934665603ULL;
	if (pa_of(a))
		h = (h ^ pa_of(a)->peers_gen) * 1099511628211ULL;
	for (struct container *c = a->containers; c; c = c->next) {
		struct container_att at;
		for (size_t i = 0; i < CONTAINER_ATT_MAX; i++) {
			if (!pa_container_ep(c, i, &at))
				continue;
			for (const char *s = c->id; *s; s++)
				h = (h ^ (uint8_t)*s) * 1099511628211ULL;
			h = (h ^ at.ip.s_addr) * 1099511628211ULL;
			h = (h ^ (uint64_t)c->started_ns) * 1099511628211ULL;
			for (const char *s = at.host_ifname; *s; s++)
				h = (h ^ (uint8_t)*s) * 1099511628211ULL;
		}
	}
	return h;
}

const struct pa_ep *pa_ep_by_addr(const struct policy_agent *pa, uint32_t addr)
{
	size_t lo = 0, hi = pa->n_eps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pa->eps[mid].addr == addr)
			return &pa->eps[mid];
		if (pa->eps[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Labels that differ between the tasks of one service: left out of what
 * selectors see, so that a service's tasks share one identity on every node
 * (as Cilium leaves pod-specific labels out of identities). */
static bool pa_label_per_task(const char *k)
{
	return strcmp(k, "com.docker.swarm.task.id") == 0 ||
	       strcmp(k, "com.docker.swarm.task.name") == 0 ||
	       strcmp(k, "com.docker.swarm.task") == 0 ||
	       strcmp(k, "com.docker.swarm.node.id") == 0;
}

/* e->labels, e->service and e->plabels from a container's labels. */
static int pa_ep_labels(struct pa_ep *e, const json_t *labels, const char *svc)
{
	e->labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
	if (!e->labels)
		return -ENOMEM;
	if (!svc)
		svc = json_string_value(json_object_get(e->labels, PA_SERVICE_LABEL));
	snprintf(e->service, sizeof(e->service), "%s", svc ?: "");
	size_t n = json_object_size(e->labels);
	e->plabels.v = calloc(n + 1, sizeof(*e->plabels.v));
	if (!e->plabels.v)
		return -ENOMEM;
	const char *k;
	json_t *v;
	json_object_foreach(e->labels, k, v)
	{
		if (!json_is_string(v) || pa_label_per_task(k))
			continue;
		struct policy_label *l = &e->plabels.v[e->plabels.n];
		l->key = strdup(k);
		l->value = strdup(json_string_value(v));
		if (!l->key || !l->value) {
			free(l->key);
			free(l->value);
			return -ENOMEM;
		}
		e->plabels.n++;
	}
	qsort(e->plabels.v, e->plabels.n, sizeof(*e->plabels.v), pa_label_cmp);
	return 0;
}

static int pa_ep_fill(struct policy_agent *pa, struct container *c, const struct container_att *at,
		      bool first, struct pa_ep *e)
{
	snprintf(e->id, sizeof(e->id), "%s", c->id);
	snprintf(e->name, sizeof(e->name), "%s", c->name[0] == '/' ? c->name + 1 : c->name);
	e->addr = ntohl(at->ip.s_addr);
	snprintf(e->host_ifname, sizeof(e->host_ifname), "%s", at->host_ifname);
	const char *net = PA_NETWORK;
	if (overlay_net_mode(at->net)) {
		net = overlay_network_name(pa->a, at->net);
		if (!net)
			net = at->net;
	}
	snprintf(e->network, sizeof(e->network), "%s", net);
	if (pa_ep_labels(e, json_object_get(c->config, "Labels"), NULL) < 0)
		return -ENOMEM;
	/* connect()'s hook finds a socket's endpoint by its cgroup: the first
	 * network's, the one its default route takes */
	if (first && pa->a->cgroup_v2[0]) {
		char path[4200];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", pa->a->cgroup_v2, c->id);
		if (stat(path, &st) == 0)
			e->cgroup_id = st.st_ino; /* a cgroup v2 directory's inode is its id */
	}
	return 0;
}

/* Other nodes' endpoints, from the overlay's endpoint records. */
struct pa_remote {
	struct pa_ep *v;
	size_t n, cap;
	int r;
};

static void pa_remote_cb(const char *net_name, const json_t *rec, bool live, bool local,
			 void *userdata)
{
	struct pa_remote *rm = userdata;
	const char *kind = json_string_value(json_object_get(rec, "Kind"));
	const char *ip = json_string_value(json_object_get(rec, "IP"));
	const char *id = json_string_value(json_object_get(rec, "ID"));
	struct in_addr ia;
	if (rm->r < 0 || !live || local || !kind || strcmp(kind, "container") != 0 || !ip || !id ||
	    inet_pton(AF_INET, ip, &ia) != 1)
		return;
	if (rm->n == rm->cap) {
		size_t cap = rm->cap ? 2 * rm->cap : 64;
		struct pa_ep *v = reallocarray(rm->v, cap, sizeof(*v));
		if (!v) {
			rm->r = -ENOMEM;
			return;
		}
		memset(v + rm->cap, 0, (cap - rm->cap) * sizeof(*v));
		rm->v = v;
		rm->cap = cap;
	}
	struct pa_ep *e = &rm->v[rm->n++];
	const char *name = json_string_value(json_object_get(rec, "Name"));
	snprintf(e->id, sizeof(e->id), "%s", id);
	snprintf(e->name, sizeof(e->name), "%s", name && *name ? name : id);
	if (e->name[0] == '/')
		memmove(e->name, e->name + 1, strlen(e->name));
	snprintf(e->network, sizeof(e->network), "%s", net_name);
	e->addr = ntohl(ia.s_addr);
	e->remote = true;
	if (pa_ep_labels(e, json_object_get(rec, "Labels"),
			 json_string_value(json_object_get(rec, "Service"))) < 0)
		rm->r = -ENOMEM;
}

/* The node's endpoints now; slots kept for the containers seen before, new
 * ones from the address (stable across restarts, whose pinned maps are
 * keyed by slot). */
int pa_eps_build(struct policy_agent *pa, struct pa_ep **ret, size_t *ret_n)
{
	struct agent *a = pa->a;
	size_t n = 0;
	for (struct container *c = a->containers; c; c = c->next)
		n += pa_container_eps(c);
	if (n > POLICY_LOCAL_EPS_MAX)
		n = POLICY_LOCAL_EPS_MAX;
	struct pa_ep *v = calloc(n + 1, sizeof(*v));
	uint8_t *used = calloc(65536 / 8, 1);
	if (!v || !used) {
		free(v);
		free(used);
		return -ENOMEM;
	}
	struct pa_remote rm = {0};
	overlay_ep_records(a, pa_remote_cb, &rm);
	if (rm.r < 0 || n + rm.n + 1 >= 0xffff) {
		pa_eps_free(rm.v, rm.n);
		free(v);
		free(used);
		return rm.r < 0 ? rm.r : -E2BIG;
	}
	size_t k = 0;
	for (struct container *c = a->containers; c && k < n; c = c->next) {
		struct container_att at;
		bool first = true;
		for (size_t ai = 0; ai < CONTAINER_ATT_MAX && k < n; ai++) {
			if (!pa_container_ep(c, ai, &at))
				continue;
			if (pa_ep_fill(pa, c, &at, first, &v[k]) < 0) {
				pa_eps_free(v, k + 1);
				free(used);
				return -ENOMEM;
			}
			first = false;
			v[k].slot = 0xffff; /* not yet */
			for (size_t i = 0; i < pa->n_eps; i++)
				if (strcmp(pa->eps[i].id, v[k].id) == 0 &&
				    pa->eps[i].addr == v[k].addr) {
					v[k].slot = pa->eps[i].slot;
					used[v[k].slot / 8] |= 1u << (v[k].slot % 8);
					break;
				}
			k++;
		}
	}
	for (size_t i = 0; i < k; i++) {
		if (v[i].slot != 0xffff)
			continue;
		uint16_t s = (uint16_t)(v[i].addr & 0xffff);
		while (s == 0xffff || (used[s / 8] & (1u << (s % 8))))
			s++;
		v[i].slot = s;
		used[s / 8] |= 1u << (s % 8);
	}
	/* other nodes' endpoints: peers only, a slot no local one has (the
	 * model wants distinct ids; no map is keyed by theirs) */
	if (rm.n) {
		struct pa_ep *w = reallocarray(v, k + rm.n + 1, sizeof(*v));
		if (!w) {
			pa_eps_free(rm.v, rm.n);
			pa_eps_free(v, k);
			free(used);
			return -ENOMEM;
		}
		v = w;
		uint16_t s = 0;
		for (size_t i = 0; i < rm.n; i++) {
			while (s == 0xffff || (used[s / 8] & (1u << (s % 8))))
				s++;
			rm.v[i].slot = s;
			used[s / 8] |= 1u << (s % 8);
			v[k++] = rm.v[i];
		}
		free(rm.v);
	}
	free(used);
	qsort(v, k, sizeof(*v), pa_ep_cmp);
	/* two with one address (a record not yet gone): the local one, or the
	 * first, kept */
	size_t u = 0;
	for (size_t i = 0; i < k; i++) {
		if (u && v[u - 1].addr == v[i].addr) {
			pa_ep_clear(&v[i]);
			continue;
		}
		if (u != i)
			v[u] = v[i];
		u++;
	}
	*ret = v;
	*ret_n = u;
	return 0;
}

static uint32_t pa_node_addr(const struct agent *a)
{
	/* the bridge gateway: the node's address as its containers see it */
	char net[64];
	snprintf(net, sizeof(net), "%s", a->cfg.bridge_subnet);
	char *slash = strchr(net, '/');
	if (slash)
		*slash = '\0';
	struct in_addr ia;
	if (inet_pton(AF_INET, net, &ia) != 1)
		return 0;
	return ntohl(ia.s_addr) + 1;
}

/* --- identities, cluster-wide --- */

static void pa_set_error(struct policy_agent *pa, const char *msg);

static void pa_id_event(struct policy_agent *pa, const struct store_kv *kv, bool put)
{
	const char *h = kv->key + strlen(CLUSTER_IDENTITIES);
	if (!*h || strchr(h, '/'))
		return;
	if (!put) {
		json_object_del(pa->idents, h);
		return;
	}
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	json_int_t id = json_integer_value(json_object_get(j, "ID"));
	if (id >= POLICY_ID_FIRST_ENDPOINT && id < POLICY_ID_CIDR_BASE)
		json_object_set_new(pa->idents, h, json_integer(id));
	json_decref(j);
}

static void pa_soon(struct policy_agent *pa)
{
	if (pa->soon && !evtimer_pending(pa->soon, NULL)) {
		struct timeval tv = {0, PA_DEBOUNCE_MS * 1000};
		evtimer_add(pa->soon, &tv);
	}
}

static void pa_id_watch_cb(const struct store_event *events, size_t n, const struct shoal_err *err,
			   void *userdata);

/* Reads every identity and watches from the read on. */
static int pa_ids_load(struct policy_agent *pa, struct shoal_err *err)
{
	struct store_kvs *kvs = NULL;
	int r = store_get(pa->a->store, CLUSTER_IDENTITIES, true, 0, &kvs, err);
	if (r < 0)
		return shoal_err_wrap(err, "reading the identities");
	json_object_clear(pa->idents);
	for (size_t i = 0; i < kvs->n; i++)
		pa_id_event(pa, &kvs->kvs[i], true);
	int64_t rev = kvs->revision;
	store_kvs_free(kvs);
	if (pa->id_watch)
		store_watch_cancel(pa->id_watch);
	pa->id_watch = NULL;
	r = store_watch(pa->a->store, CLUSTER_IDENTITIES, true, rev + 1, pa_id_watch_cb, pa,
			&pa->id_watch, err);
	return r < 0 ? shoal_err_wrap(err, "watching the identities") : 0;
}

static void pa_id_watch_cb(const struct store_event *events, size_t n, const struct shoal_err *err,
			   void *userdata)
{
	struct policy_agent *pa = userdata;
	if (err) {
		log_warn("policy: the identities' watch ended: %s; reading them again", err->msg);
		store_watch_cancel(pa->id_watch);
		pa->id_watch = NULL;
		struct shoal_err e = {0};
		if (pa_ids_load(pa, &e) < 0)
			log_error("policy: %s", e.msg);
	}
	for (size_t i = 0; i < n; i++)
		pa_id_event(pa, &events[i].kv, events[i].type == STORE_EVENT_PUT);
	if (n || err) {
		pa->peers_gen++;
		pa_soon(pa);
	}
}

static json_t *pa_id_record(const struct policy_endpoint *ep, uint32_t id)
{
	json_t *labels = json_object(), *nets = json_array();
	for (size_t i = 0; labels && i < ep->labels.n; i++)
		json_object_set_new(labels, ep->labels.v[i].key,
				    json_string(ep->labels.v[i].value));
	for (size_t i = 0; nets && i < ep->n_networks; i++)
		json_array_append_new(nets, json_string(ep->networks[i]));
	return json_pack("{s:I, s:s?, s:o, s:o}", "ID", (json_int_t)id, "Service", ep->service,
			 "Labels", labels, "Networks", nets);
}

/* The cluster-wide number of ep's label set: the store's, or one taken
 * now by compare-and-swap (the first free number from a point hashed from
 * the label set, so nodes numbering new sets at once rarely meet). 0 when
 * the store cannot be reached: the compiler numbers the set on this node
 * until the next compile. */
static uint32_t pa_identity(struct policy_agent *pa, const struct policy_endpoint *ep)
{
	_cleanup_free_ char *key = policy_label_set_key(ep);
	if (!key || !pa->idents)
		return 0;
	char h[65];
	sha256_hex(key, strlen(key), h);
	json_t *v = json_object_get(pa->idents, h);
	if (v)
		return (uint32_t)json_integer_value(v);
	char hint[8];
	memcpy(hint, h, 7);
	hint[7] = '\0';
	uint32_t span = POLICY_ID_CIDR_BASE - POLICY_ID_FIRST_ENDPOINT;
	uint32_t n = POLICY_ID_FIRST_ENDPOINT + (uint32_t)(strtoul(hint, NULL, 16) % span);
	char ikey[128], nkey[128];
	snprintf(ikey, sizeof(ikey), "%s%s", CLUSTER_IDENTITIES, h);
	for (int attempt = 0; attempt < PA_ID_ATTEMPTS; attempt++) {
		snprintf(nkey, sizeof(nkey), "%s%u", CLUSTER_IDENTITY_IDS, n);
		json_t *rec = pa_id_record(ep, n);
		_cleanup_free_ char *text =
			rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(rec);
		if (!text)
			return 0;
		struct store_cmp cmps[2] = {
			{.key = ikey, .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ, .num = 0},
			{.key = nkey, .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ, .num = 0},
		};
		struct store_op puts[2] = {
			{.type = STORE_OP_PUT,
			 .key = ikey,
			 .value = text,
			 .value_len = strlen(text)},
			{.type = STORE_OP_PUT, .key = nkey, .value = h, .value_len = 64},
		};
		struct store_op get = {.type = STORE_OP_GET, .key = ikey};
		struct store_txn_result res = {0};
		struct shoal_err err = {0};
		if (store_txn(pa->a->store, cmps, 2, puts, 2, &get, 1, &res, &err) < 0) {
			pa_set_error(pa, err.msg);
			pa->force = true;
			return 0;
		}
		uint32_t got = 0;
		if (res.succeeded) {
			got = n;
		} else if (res.n_gets && res.gets[0].n) {
			/* another node numbered the set first */
			struct store_kv *kv = &res.gets[0].kvs[0];
			json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
			got = (uint32_t)json_integer_value(json_object_get(j, "ID"));
			json_decref(j);
		}
		store_txn_result_clear(&res);
		if (got >= POLICY_ID_FIRST_ENDPOINT && got < POLICY_ID_CIDR_BASE) {
			json_object_set_new(pa->idents, h, json_integer(got));
			return got;
		}
		/* the number is another set's: the next one */
		n = n + 1 >= POLICY_ID_CIDR_BASE ? POLICY_ID_FIRST_ENDPOINT : n + 1;
	}
	pa_set_error(pa, "no free identity number found for a label set");
	return 0;
}

/* Every node's own addresses the model knows: this node's bridge gateway
 * and each live node's address on each overlay network. */
struct pa_nodes {
	uint32_t *v;
	size_t n, cap;
};

static void pa_gw_cb(const char *net_name, const json_t *rec, bool live, bool local, void *userdata)
{
	struct pa_nodes *nd = userdata;
	const char *kind = json_string_value(json_object_get(rec, "Kind"));
	const char *ip = json_string_value(json_object_get(rec, "IP"));
	struct in_addr ia;
	(void)net_name;
	(void)local;
	if (!live || !kind || strcmp(kind, "gateway") != 0 || !ip ||
	    inet_pton(AF_INET, ip, &ia) != 1)
		return;
	if (nd->n == nd->cap) {
		size_t cap = nd->cap ? 2 * nd->cap : 16;
		uint32_t *v = reallocarray(nd->v, cap, sizeof(*v));
		if (!v)
			return;
		nd->v = v;
		nd->cap = cap;
	}
	nd->v[nd->n++] = ntohl(ia.s_addr);
}

static int pa_model_build_of(struct policy_agent *pa, const struct pa_ep *eps, size_t n_eps,
			     struct policy *const *pols, const uint32_t *ids, size_t n_pols,
			     struct pa_model *mm)
{
	struct pa_nodes nd = {0};
	memset(mm, 0, sizeof(*mm));
	uint32_t bridge_gw = pa_node_addr(pa->a);
	overlay_ep_records(pa->a, pa_gw_cb, &nd);
	size_t n_nodes = nd.n + (bridge_gw ? 1 : 0);
	size_t sz = (n_eps + 1) * sizeof(*mm->eps) + (n_nodes + 1) * sizeof(*mm->nodes) +
		    (n_eps + 1) * sizeof(const char *) + (n_eps + 1) * sizeof(uint32_t);
	mm->eps = calloc(1, sz);
	if (!mm->eps) {
		free(nd.v);
		return -ENOMEM;
	}
	mm->nodes = (struct policy_node *)(mm->eps + n_eps + 1);
	const char **nets = (const char **)(mm->nodes + n_nodes + 1);
	mm->identities = (uint32_t *)(nets + n_eps + 1);
	size_t k = 0;
	if (bridge_gw)
		mm->nodes[k++] = (struct policy_node){.name = pa->a->hostname, .addr = bridge_gw};
	for (size_t i = 0; i < nd.n; i++)
		mm->nodes[k++] = (struct policy_node){.name = "", .addr = nd.v[i]};
	free(nd.v);
	for (size_t i = 0; i < n_eps; i++) {
		const struct pa_ep *e = &eps[i];
		nets[i] = e->network[0] ? e->network : PA_NETWORK;
		mm->eps[i] = (struct policy_endpoint){
			.id = e->slot,
			.name = e->name,
			.service = e->service[0] ? e->service : NULL,
			.labels = e->plabels,
			.networks = &nets[i],
			.n_networks = 1,
			.addr = e->addr,
			.node = e->remote ? "" : pa->a->hostname,
		};
		mm->identities[i] = pa_identity(pa, &mm->eps[i]);
	}
	mm->m = (struct policy_model){.endpoints = mm->eps,
				      .n_endpoints = n_eps,
				      .nodes = mm->nodes,
				      .n_nodes = k,
				      .local_node = pa->a->hostname,
				      .identities = mm->identities};
	mm->set = (struct policy_set){.v = pols, .n = n_pols, .ids = ids};
	return 0;
}

int pa_model_build(struct policy_agent *pa, struct pa_model *mm)
{
	return pa_model_build_of(pa, pa->eps, pa->n_eps, (struct policy *const *)pa->policies,
				 pa->ids, pa->n_policies, mm);
}

/* --- reconcile --- */

static void pa_set_error(struct policy_agent *pa, const char *msg)
{
	if (strcmp(pa->last_error, msg) != 0)
		log_warn("policy: %s", msg);
	snprintf(pa->last_error, sizeof(pa->last_error), "%s", msg);
}

/* --- the policy map's fill --- */

static size_t pa_prog_entries(const struct policy_ep_program *p)
{
	return p ? p->n_entries[POLICY_INGRESS] + p->n_entries[POLICY_EGRESS] : 0;
}

static const struct policy_ep_program *pa_prog_of(const struct policy_compiled *c, uint16_t ep)
{
	for (size_t i = 0; c && i < c->n_eps; i++)
		if (c->eps[i].ep == ep)
			return &c->eps[i];
	return NULL;
}

static const char *pa_slot_name_of(const struct pa_ep *eps, size_t n_eps, uint16_t slot)
{
	for (size_t i = 0; i < n_eps; i++)
		if (eps[i].slot == slot)
			return eps[i].name;
	return NULL;
}

static const char *pa_slot_name(const struct policy_agent *pa, uint16_t slot)
{
	return pa_slot_name_of(pa->eps, pa->n_eps, slot);
}

/* The most entries the node's map holds while the maps go from pa->live to
 * c: policy_diff() writes an endpoint's new generation before it deletes the
 * old one, so each endpoint counts with the larger of the two, and the one
 * being switched with both. */
static size_t pa_fill_peak(const struct policy_compiled *live, const struct policy_compiled *c,
			   uint16_t *ret_fullest, size_t *ret_fullest_n)
{
	size_t sum = 0, both = 0, fullest_n = 0;
	uint16_t fullest = 0;
	for (size_t i = 0; i < c->n_eps; i++) {
		size_t nw = pa_prog_entries(&c->eps[i]);
		size_t old = pa_prog_entries(pa_prog_of(live, c->eps[i].ep));
		sum += nw > old ? nw : old;
		if ((nw < old ? nw : old) > both)
			both = nw < old ? nw : old;
		if (nw > fullest_n) {
			fullest_n = nw;
			fullest = c->eps[i].ep;
		}
	}
	/* endpoints c no longer has keep their old entries until their turn */
	for (size_t i = 0; live && i < live->n_eps; i++)
		if (!pa_prog_of(c, live->eps[i].ep))
			sum += pa_prog_entries(&live->eps[i]);
	*ret_fullest = fullest;
	*ret_fullest_n = fullest_n;
	return sum + both;
}

/* Refuses a compiled state the node's policy map cannot take, before any of
 * it is written: a half-written update would leave endpoints on the old
 * generation and others on the new. (One endpoint's direction past
 * POLICY_MAX_ENTRIES is refused by policy_compile(), naming it.) */
static int pa_fill_check(const struct policy_compiled *live, const struct pa_ep *eps, size_t n_eps,
			 const struct policy_compiled *c, struct shoal_err *err)
{
	uint16_t fullest;
	size_t fullest_n;
	size_t peak = pa_fill_peak(live, c, &fullest, &fullest_n);
	if (peak <= POLICY_MAP_DEFAULT)
		return 0;
	const char *name = pa_slot_name_of(eps, n_eps, fullest);
	return shoal_err_set(err, E2BIG,
			     "the policy map would overflow: %zu entries needed during the "
			     "update, %d fit; endpoint %s has the most (%zu): narrow the policies "
			     "that select it (fewer peers, CIDRs or port ranges); nothing was "
			     "applied",
			     peak, POLICY_MAP_DEFAULT, name ? name : "?", fullest_n);
}

static int pa_fill_cmp(const void *x, const void *y)
{
	json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "Used"));
	json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "Used"));
	return (a < b) - (a > b);
}

json_t *policy_agent_map_fill(struct agent *a, json_t *warnings)
{
	struct policy_agent *pa = pa_of(a);
	if (!pa || !pa->lbp)
		return json_null();
	const struct policy_compiled *c = pa->live;
	size_t n = c ? c->n_eps : 0, total = 0;
	json_t **rows = calloc(n + 1, sizeof(*rows));
	json_t *eps = json_array();
	if (!rows || !eps) {
		free(rows);
		json_decref(eps);
		return json_null();
	}
	for (size_t i = 0; i < n; i++) {
		const struct policy_ep_program *p = &c->eps[i];
		size_t in = p->n_entries[POLICY_INGRESS], out = p->n_entries[POLICY_EGRESS];
		size_t used = in > out ? in : out;
		const char *name = pa_slot_name(pa, p->ep);
		total += in + out;
		rows[i] = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "Name", name ? name : "",
				    "Slot", (json_int_t)p->ep, "Ingress", (json_int_t)in, "Egress",
				    (json_int_t)out, "Used", (json_int_t)used, "Capacity",
				    (json_int_t)POLICY_MAX_ENTRIES);
		if (rows[i])
			json_object_set_new(rows[i], "Percent",
					    json_real(100.0 * (double)used / POLICY_MAX_ENTRIES));
		if (rows[i] && used * 100 > (size_t)POLICY_MAX_ENTRIES * PA_FILL_WARN_PCT &&
		    warnings) {
			char w[512];
			snprintf(
				w, sizeof(w),
				"WARNING: policy map: endpoint %s at %.0f%% (%zu of %d entries, %s); "
				"past %d a compile is refused",
				name ? name : "?", 100.0 * (double)used / POLICY_MAX_ENTRIES, used,
				POLICY_MAX_ENTRIES, in >= out ? "ingress" : "egress",
				POLICY_MAX_ENTRIES);
			json_array_append_new(warnings, json_string(w));
		}
	}
	qsort(rows, n, sizeof(*rows), pa_fill_cmp);
	for (size_t i = 0; i < n; i++) {
		if (rows[i] && i < PA_FILL_TOP)
			json_array_append(eps, rows[i]);
		json_decref(rows[i]);
	}
	free(rows);
	if (total * 100 > (size_t)POLICY_MAP_DEFAULT * PA_FILL_WARN_PCT && warnings) {
		char w[256];
		snprintf(w, sizeof(w),
			 "WARNING: policy map: %zu of %d entries used on this node (%.0f%%)", total,
			 POLICY_MAP_DEFAULT, 100.0 * (double)total / POLICY_MAP_DEFAULT);
		json_array_append_new(warnings, json_string(w));
	}
	return json_pack("{s:I, s:I, s:f, s:I, s:I, s:I, s:o, s:s*}", "NodeEntries",
			 (json_int_t)total, "NodeCapacity", (json_int_t)POLICY_MAP_DEFAULT,
			 "NodePercent", 100.0 * (double)total / POLICY_MAP_DEFAULT,
			 "EndpointCapacity", (json_int_t)POLICY_MAX_ENTRIES, "Endpoints",
			 (json_int_t)n, "WarnPercent", (json_int_t)PA_FILL_WARN_PCT, "Fullest", eps,
			 "Error", pa->last_error[0] ? pa->last_error : NULL);
}

/* --- compiles, on the worker --- */

/* One compile: the policies and endpoints as they were when it was
 * submitted, owned by it, so the loop may move on meanwhile. */
struct pa_job {
	struct policy_agent *pa;
	uint64_t seq;
	uint64_t sig; /* the containers' signature the endpoints were built from */
	struct pa_pols *pols;
	struct pa_ep *eps;
	size_t n_eps;
	struct pa_model mm;
	/* read by the worker: nothing changes them while a job runs */
	struct lb_policy *lbp;
	const struct policy_compiled *live; /* what the maps hold */
	/* results */
	struct policy_compiled *c;
	struct shoal_err err;
	int r;
	bool written; /* the maps were written to (in full unless r < 0) */
	double ms, apply_ms;
};

static void pa_job_free(struct pa_job *j)
{
	if (!j)
		return;
	pa_pols_unref(j->pols);
	pa_eps_free(j->eps, j->n_eps);
	free(j->mm.eps);
	policy_compiled_free(j->c);
	free(j);
}

static double pa_ms_since(int64_t t0)
{
	return (double)(now_ns() - t0) / 1e6;
}

/* On the worker: the compile, then the maps written from the state they
 * hold to it (new generations, then each endpoint's flip, then the old
 * entries removed: no packet sees half a policy). The loop keeps serving
 * meanwhile; only the endpoints' registration is left to it. */
static void pa_compile_work(void *arg)
{
	struct pa_job *j = arg;
	struct policy_ops ops = {0};
	int64_t t0 = now_ns();
	j->r = policy_compile(&j->mm.set, &j->mm.m, &j->c, &j->err);
	if (j->r < 0)
		shoal_err_wrap(&j->err, "compiling the policies");
	j->ms = pa_ms_since(t0);
	if (j->r < 0)
		return;
	t0 = now_ns();
	j->r = pa_fill_check(j->live, j->eps, j->n_eps, j->c, &j->err);
	if (j->r >= 0 && (j->r = policy_diff(j->live, j->c, &ops)) < 0)
		shoal_err_set(&j->err, -j->r, "diffing the policy maps");
	if (j->r >= 0) {
		j->written = true;
		if ((j->r = lb_policy_apply(j->lbp, j->c, &ops, &j->err)) < 0)
			shoal_err_wrap(&j->err, "writing the policy maps");
	}
	policy_ops_done(&ops);
	j->apply_ms = pa_ms_since(t0);
}

/* After the job wrote the maps: adopts its state and registers and binds
 * the endpoints; on the loop. The job's endpoints become the agent's. */
static void pa_apply(struct policy_agent *pa, struct pa_job *j)
{
	struct pa_ep *eps = TAKE_PTR(j->eps);
	size_t n_eps = j->n_eps;
	struct pa_ep *old = pa->eps;
	size_t n_old = pa->n_eps;
	struct policy_compiled *c = TAKE_PTR(j->c);
	int64_t t0 = now_ns();

	j->n_eps = 0;
	pa->eps = eps;
	pa->n_eps = n_eps;
	/* endpoints bound before stay bound when nothing about them moved */
	for (size_t i = 0; i < n_eps; i++)
		for (size_t k = 0; k < n_old; k++)
			if (!eps[i].remote && !old[k].remote && strcmp(old[k].id, eps[i].id) == 0 &&
			    old[k].addr == eps[i].addr && old[k].slot == eps[i].slot) {
				eps[i].ifindex = old[k].ifindex;
				eps[i].bound = old[k].bound;
				eps[i].identity = old[k].identity;
				break;
			}
	policy_compiled_free(pa->live);
	pa->live = c;
	pa->last_error[0] = '\0';
	pa->applies++;

	/* register and bind the endpoints, after their entries are in */
	for (size_t i = 0; i < n_eps; i++) {
		struct pa_ep *e = &eps[i];
		uint32_t id = policy_compiled_identity(c, e->addr);
		if (e->remote) {
			e->identity = id;
			continue;
		}
		if (!e->ifindex)
			e->ifindex = e->host_ifname[0] ? (int)if_nametoindex(e->host_ifname) : 0;
		if (e->bound && e->identity == id)
			continue;
		struct lb_policy_endpoint le = {.addr = htonl(e->addr),
						.ep = e->slot,
						.identity = id,
						.cgroup_id = e->cgroup_id,
						.ifindex = e->ifindex};
		struct shoal_err berr = {0};
		if (lb_policy_endpoint_set(pa->lbp, &le, &berr) < 0 ||
		    (!e->bound && e->ifindex &&
		     lb_policy_veth_attach(pa->lbp, e->ifindex, &berr) < 0)) {
			log_warn("policy: binding %s: %s", e->name, berr.msg);
			pa->force = true;
			continue;
		}
		e->identity = id;
		e->bound = true;
	}
	/* unbind the endpoints gone */
	for (size_t k = 0; k < n_old; k++) {
		bool kept = false;
		if (old[k].remote)
			continue;
		for (size_t i = 0; i < n_eps && !kept; i++)
			kept = !eps[i].remote && strcmp(old[k].id, eps[i].id) == 0 &&
			       old[k].addr == eps[i].addr;
		if (kept || !old[k].bound)
			continue;
		struct shoal_err uerr = {0};
		const struct pa_ep *now = pa_ep_by_addr(pa, old[k].addr);
		bool readdressed = now && !now->remote;
		if (!readdressed &&
		    lb_policy_endpoint_delete(pa->lbp, htonl(old[k].addr), &uerr) < 0 &&
		    uerr.code != ENOENT)
			log_debug("policy: unbinding %s: %s", old[k].name, uerr.msg);
		if (old[k].ifindex)
			lb_policy_veth_detach(pa->lbp, old[k].ifindex, NULL);
	}
	pa_eps_free(old, n_old);
	pa->sig = j->sig;
	pa->force = false;
	for (size_t i = 0; i < n_eps; i++)
		if (!eps[i].bound && !eps[i].remote)
			pa->force = true;
	pa->apply_ms = j->apply_ms;
	log_debug("policy: %zu policies, %zu endpoints: compiled in %.1f ms, written in %.1f ms, "
		  "bound in %.1f ms",
		  j->pols ? j->pols->n : 0, n_eps, j->ms, j->apply_ms, pa_ms_since(t0));
}

static void pa_compile_done(void *arg)
{
	struct pa_job *j = arg;
	struct policy_agent *pa = j->pa;

	pa->job = NULL;
	pa->compile_ms = j->ms;
	if (j->r < 0) {
		pa_set_error(pa, j->err.msg[0] ? j->err.msg : strerror(-j->r));
		pa->force = true;
		if (j->written) {
			/* the maps hold a prefix of the operations: diff from
			 * them next */
			struct policy_compiled *now = NULL;
			struct shoal_err lerr = {0};
			if (lb_policy_state_load(pa->lbp, &now, &lerr) == 0) {
				policy_compiled_free(pa->live);
				pa->live = now;
			}
		}
	} else {
		pa_apply(pa, j);
	}
	pa_job_free(j);
	/* What changed while it ran: one compile of the newest state (writes
	 * meanwhile are coalesced; one job at a time, so no older result can
	 * land after a newer one). */
	if (pa->policies_dirty || pa_containers_sig(pa->a) != pa->sig)
		pa_reconcile(pa);
}

void pa_reconcile(struct policy_agent *pa)
{
	struct agent *a = pa->a;
	struct shoal_err err = {0};
	if (!pa->lbp)
		return;
	/* one compile at a time: its end looks at what changed meanwhile */
	if (pa->job)
		return;
	if (pa->policies_dirty || !pa->policies_loaded) {
		bool was_active = policy_agent_active(a);
		if (pa_policies_load(pa, &err) < 0) {
			/* without the policies nothing is applied: the maps keep
			 * enforcing what they hold */
			pa_set_error(pa, err.msg);
			return;
		}
		pa->policies_dirty = false;
		pa->policies_loaded = true;
		pa->force = true;
		/* published-port traffic judged from now on: no more redirects
		 * past the veth's hooks (agent/publish-fwd.c) */
		if (policy_agent_active(a) != was_active)
			publish_fwd_resync(a);
	}
	uint64_t sig = pa_containers_sig(a);
	if (sig == pa->sig && !pa->force)
		return;
	/* Nothing to enforce and nothing in the maps: containers come and go
	 * without a compile or programs on their veths until a policy comes
	 * (then every endpoint is compiled and bound at once). */
	if (pa->n_policies == 0 && (!pa->live || pa->live->n_eps == 0)) {
		pa->sig = sig;
		pa->force = false;
		pa->eps_stale = true;
		return;
	}
	pa->eps_stale = false;

	struct pa_job *j = calloc(1, sizeof(*j));
	if (!j || pa_eps_build(pa, &j->eps, &j->n_eps) < 0) {
		free(j);
		pa_set_error(pa, "out of memory");
		return;
	}
	j->pa = pa;
	j->lbp = pa->lbp;
	j->live = pa->live;
	j->seq = ++pa->job_seq;
	j->sig = sig;
	j->pols = pa->pols;
	if (j->pols)
		j->pols->refs++;
	int r = pa_model_build_of(pa, j->eps, j->n_eps,
				  j->pols ? (struct policy *const *)j->pols->v : NULL,
				  j->pols ? j->pols->ids : NULL, j->pols ? j->pols->n : 0, &j->mm);
	if (r < 0) {
		pa_job_free(j);
		pa_set_error(pa, "out of memory");
		pa->force = true;
		return;
	}
	if (!pa->worker && (r = worker_new(a->base, &pa->worker)) < 0)
		log_warn("policy: no compile thread: %s; compiling on the loop", strerror(-r));
	pa->job = j;
	pa->force = false;
	if (pa->worker && worker_submit(pa->worker, pa_compile_work, pa_compile_done, j) == 0)
		return;
	/* no thread to be had: the compile runs here */
	pa_compile_work(j);
	pa_compile_done(j);
}

/* --- a policy checked before it is stored --- */

struct pa_check {
	struct policy_agent *pa;
	struct api_req *r; /* NULL once the client is gone */
	policy_agent_check_cb cb;
	void *userdata;
	struct pa_pols *pols; /* the policies in force, less the one replaced */
	struct policy *p;     /* the candidate */
	struct policy **v;    /* the set with it */
	uint32_t *ids;
	size_t n;
	struct pa_ep *eps;
	size_t n_eps;
	struct pa_model mm;
	struct policy_compiled *c;
	struct shoal_err err;
	int ret;
};

static void pa_check_free(struct pa_check *k)
{
	if (!k)
		return;
	pa_pols_unref(k->pols);
	policy_free(k->p);
	free(k->v);
	free(k->ids);
	pa_eps_free(k->eps, k->n_eps);
	free(k->mm.eps);
	policy_compiled_free(k->c);
	free(k);
}

static void pa_check_cancel(struct api_req *r)
{
	struct pa_check *k = r->userdata;
	if (k)
		k->r = NULL;
	api_req_free(r);
}

static void pa_check_work(void *arg)
{
	struct pa_check *k = arg;
	k->ret = policy_compile(&k->mm.set, &k->mm.m, &k->c, &k->err);
}

static void pa_check_done(void *arg)
{
	struct pa_check *k = arg;
	struct policy_agent *pa = k->pa;
	struct api_req *r = k->r;
	struct shoal_err err = {0};
	int ret = k->ret;

	if (r) {
		r->userdata = NULL;
		r->on_cancel = NULL;
	}
	if (ret == -E2BIG)
		shoal_err_set_status(
			&err, 400, E2BIG,
			"policy %s does not fit this node's policy map: %s; narrow it "
			"(fewer peers, CIDRs or port ranges) or the policies selecting "
			"the same endpoints; nothing was stored",
			k->p->name, k->err.msg);
	else if (ret < 0)
		shoal_err_set_status(&err, 500, -ret, "checking policy %s: %s", k->p->name,
				     k->err.msg);
	else if ((ret = pa_fill_check(pa->live, k->eps, k->n_eps, k->c, &k->err)) < 0)
		shoal_err_set_status(&err, 400, E2BIG, "policy %s was not stored: %s", k->p->name,
				     k->err.msg);
	k->cb(r, ret < 0 ? &err : NULL, k->userdata);
	pa_check_free(k);
}

void policy_agent_check(struct agent *a, struct api_req *r, const json_t *spec,
			policy_agent_check_cb cb, void *userdata)
{
	struct policy_agent *pa = pa_of(a);
	struct shoal_err err = {0};
	struct pa_check *k = NULL;

	/* without enforcement nothing can overflow */
	if (!pa || !pa->lbp) {
		cb(r, NULL, userdata);
		return;
	}
	k = calloc(1, sizeof(*k));
	if (!k || policy_from_json((json_t *)spec, &k->p, &err) < 0) {
		if (!err.msg[0])
			shoal_err_set(&err, ENOMEM, "out of memory");
		err.status = err.code == ENOMEM ? 500 : 400;
		free(k);
		cb(r, &err, userdata);
		return;
	}
	k->pa = pa;
	k->r = r;
	k->cb = cb;
	k->userdata = userdata;
	/* the store's policies as they are now, which the agent may not have
	 * read yet (its own set changes only with its reconcile) */
	if (pa->policies_dirty || !pa->policies_loaded) {
		if (pa_pols_read(pa, &k->pols, &err) < 0) {
			policy_free(k->p);
			free(k);
			cb(r, &err, userdata);
			return;
		}
	} else if ((k->pols = pa->pols)) {
		k->pols->refs++;
	}
	size_t n_in = k->pols ? k->pols->n : 0;
	k->v = calloc(n_in + 2, sizeof(*k->v));
	k->ids = calloc(n_in + 2, sizeof(*k->ids));
	if (!k->v || !k->ids || pa_eps_build(pa, &k->eps, &k->n_eps) < 0)
		goto oom;
	for (size_t i = 0; i < n_in; i++)
		if (strcmp(k->pols->v[i]->name, k->p->name) != 0)
			k->v[k->n++] = k->pols->v[i];
	k->v[k->n++] = k->p;
	pa_policies_sort(k->v, k->ids, k->n);
	if (pa_model_build_of(pa, k->eps, k->n_eps, (struct policy *const *)k->v, k->ids, k->n,
			      &k->mm) < 0)
		goto oom;
	if (!pa->worker && worker_new(a->base, &pa->worker) < 0)
		pa->worker = NULL;
	if (r) {
		r->userdata = k;
		r->on_cancel = pa_check_cancel;
	}
	if (pa->worker && worker_submit(pa->worker, pa_check_work, pa_check_done, k) == 0)
		return;
	if (pa->worker) {
		if (r) {
			r->userdata = NULL;
			r->on_cancel = NULL;
		}
		pa_check_free(k);
		shoal_err_set_status(&err, 503, EAGAIN,
				     "too many policy compiles queued; try again shortly");
		cb(r, &err, userdata);
		return;
	}
	/* no thread to be had: checked here */
	pa_check_work(k);
	pa_check_done(k);
	return;
oom:
	pa_check_free(k);
	shoal_err_set_status(&err, 500, ENOMEM, "out of memory");
	cb(r, &err, userdata);
}

static void pa_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pa_reconcile(arg);
}

void policy_agent_kick(struct agent *a)
{
	struct policy_agent *pa = pa_of(a);
	if (!pa || !pa->soon)
		return;
	pa->policies_dirty = true;
	pa_soon(pa);
}

void policy_agent_peers_changed(struct agent *a)
{
	struct policy_agent *pa = pa_of(a);
	if (!pa)
		return;
	pa->peers_gen++;
	pa_soon(pa);
}

static void pa_watch_cb(const struct store_event *events, size_t n, const struct shoal_err *err,
			void *userdata)
{
	struct policy_agent *pa = userdata;
	(void)events;
	if (err) {
		/* read everything again and watch from now */
		log_warn("policy: the store's watch ended: %s; reading the policies again",
			 err->msg);
		store_watch_cancel(pa->watch);
		pa->watch = NULL;
		struct shoal_err e = {0};
		if (store_watch(pa->a->store, CLUSTER_POLICIES, true, 0, pa_watch_cb, pa,
				&pa->watch, &e) < 0)
			log_error("policy: watching the store again: %s", e.msg);
	}
	if (n || err)
		policy_agent_kick(pa->a);
}

/* --- metrics --- */

static const char *const pa_stat_names[POLICY_STAT_MAX] = {
	"lookup",      "ct_hit",   "ct_stale",	"drop",	 "audit",
	"no_endpoint", "log_lost", "sock_deny", "spoof",
};

void policy_agent_metrics(struct agent *a, FILE *f)
{
	struct policy_agent *pa = pa_of(a);
	if (!pa || !pa->lbp)
		return;
	fprintf(f, "# HELP shoal_policy_policies Network policies in force on this node.\n"
		   "# TYPE shoal_policy_policies gauge\n");
	fprintf(f, "shoal_policy_policies %zu\n", pa->n_policies);
	fprintf(f, "# HELP shoal_policy_endpoints Endpoints policy is enforced at.\n"
		   "# TYPE shoal_policy_endpoints gauge\n");
	fprintf(f, "shoal_policy_endpoints %zu\n", pa->n_eps);
	fprintf(f, "# HELP shoal_policy_applies_total Policy states compiled and written to the "
		   "maps.\n# TYPE shoal_policy_applies_total counter\n");
	fprintf(f, "shoal_policy_applies_total %llu\n", (unsigned long long)pa->applies);
	fprintf(f, "# HELP shoal_policy_compile_seconds The last compile's time (on its own "
		   "thread).\n# TYPE shoal_policy_compile_seconds gauge\n");
	fprintf(f, "shoal_policy_compile_seconds %.6f\n", pa->compile_ms / 1000.0);
	fprintf(f, "# HELP shoal_policy_apply_seconds The last map update's time (on the "
		   "same thread).\n# TYPE shoal_policy_apply_seconds gauge\n");
	fprintf(f, "shoal_policy_apply_seconds %.6f\n", pa->apply_ms / 1000.0);
	struct lb_policy_counter *v = NULL;
	size_t n = 0;
	if (lb_policy_counters(pa->lbp, &v, &n) == 0) {
		fprintf(f, "# HELP shoal_policy_flows_total New flows judged, by deciding policy "
			   "and rule.\n# TYPE shoal_policy_flows_total counter\n");
		for (int pass = 0; pass < 2; pass++) {
			if (pass == 1)
				fprintf(f, "# HELP shoal_policy_packets_total Packets of the "
					   "flows judged, by deciding policy and rule.\n"
					   "# TYPE shoal_policy_packets_total counter\n");
			for (size_t i = 0; i < n; i++) {
				const struct lb_policy_counter *k = &v[i];
				const char *pn =
					k->key.policy ? pa_policy_name(pa, k->key.policy) : "";
				char rule[16], idb[16];
				if (k->key.rule == POLICY_RULE_NONE)
					snprintf(rule, sizeof(rule), "none");
				else
					snprintf(rule, sizeof(rule), "%u", k->key.rule);
				if (!pn) {
					snprintf(idb, sizeof(idb), "#%u", k->key.policy);
					pn = idb;
				}
				fprintf(f,
					"%s{policy=\"%s\",rule=\"%s\",verdict=\"%s\",direction=\"%s\"} "
					"%llu\n",
					pass ? "shoal_policy_packets_total"
					     : "shoal_policy_flows_total",
					pn, rule, policy_verdict_str(k->key.verdict),
					k->key.dir == POLICY_DIR_INGRESS ? "ingress" : "egress",
					(unsigned long long)(pass ? k->val.packets : k->val.flows));
			}
		}
		free(v);
	}
	uint64_t st[POLICY_STAT_MAX];
	if (lb_policy_stats(pa->lbp, st) == 0) {
		fprintf(f, "# HELP shoal_policy_datapath_total Policy enforcement totals.\n"
			   "# TYPE shoal_policy_datapath_total counter\n");
		for (int i = 0; i < POLICY_STAT_MAX; i++)
			fprintf(f, "shoal_policy_datapath_total{what=\"%s\"} %llu\n",
				pa_stat_names[i], (unsigned long long)st[i]);
	}
	fprintf(f, "# HELP shoal_policy_flowlog_lost_total Flow events the kernel buffer had "
		   "no room for.\n# TYPE shoal_policy_flowlog_lost_total counter\n");
	fprintf(f, "shoal_policy_flowlog_lost_total %llu\n",
		(unsigned long long)lb_policy_flowlog_lost(pa->lbp));
}

/* --- life --- */

void policy_agent_init(struct agent *a)
{
	struct policy_agent *pa = calloc(1, sizeof(*pa));
	if (!pa) {
		log_error("policy: out of memory");
		return;
	}
	pa->a = a;
	a->policy_agent = pa;
	pa->idents = json_object();
	pa->tick = event_new(a->base, -1, EV_PERSIST, pa_tick_cb, pa);
	pa->soon = evtimer_new(a->base, pa_tick_cb, pa);
	if (!pa->tick || !pa->soon) {
		log_error("policy: out of memory");
		return;
	}
	char pins[4200], lbpins[4200];
	snprintf(pins, sizeof(pins), "%s/policy", a->cfg.bpffs_dir);
	snprintf(lbpins, sizeof(lbpins), "%s/lb", a->cfg.bpffs_dir);
	struct lb_policy_open_opts o = {.pin_dir = pins, .lb_pin_dir = lbpins};
	if (lb_policy_open(&o, &pa->lbp, &pa->err) < 0) {
		shoal_err_wrap(&pa->err, "network policy is not enforced");
		log_warn("policy: %s", pa->err.msg);
		return;
	}
	/* what the maps enforce now (an earlier agent's state): the first
	 * compile is diffed against it, so nothing is allowed in between */
	struct shoal_err err = {0};
	if (lb_policy_state_load(pa->lbp, &pa->live, &err) < 0)
		log_warn("policy: reading the pinned policy state: %s", err.msg);
	int r = pa_flow_open(pa);
	if (r < 0)
		log_warn("policy: the flow log file in %s: %s; flows are not kept", a->cfg.data_dir,
			 strerror(-r));
	if (lb_policy_flowlog_open(pa->lbp, pa_flow_cb, pa, &err) < 0) {
		log_warn("policy: the flow log is unavailable: %s", err.msg);
	} else {
		/* A ring buffer record committed while the reader drains can
		 * miss its wakeup (libbpf's reader publishes its position
		 * with a release store only, the producer wakes it only when
		 * that position equals the record's) and then waits for the
		 * next one; seen in the cluster tests as a drop absent from
		 * the log for seconds. Draining on a timeout as well bounds
		 * that wait. */
		struct timeval drain = {.tv_sec = 0, .tv_usec = PA_FLOW_DRAIN_MS * 1000};
		pa->flow_ev = event_new(a->base, lb_policy_flowlog_fd(pa->lbp),
					EV_READ | EV_PERSIST, pa_flow_ev_cb, pa);
		if (pa->flow_ev)
			event_add(pa->flow_ev, &drain);
	}
	if (a->cgroup_v2[0]) {
		/* after the load balancer's own (publish_init), which must run first */
		if (lb_policy_sock_attach(pa->lbp, a->cgroup_v2, &err) < 0)
			log_warn("policy: connect()-time enforcement unavailable (the veths still "
				 "judge every flow): %s",
				 err.msg);
	}
	if (store_watch(a->store, CLUSTER_POLICIES, true, 0, pa_watch_cb, pa, &pa->watch, &err) < 0)
		log_warn("policy: watching the store: %s; policies are read again every %d ms",
			 err.msg, PA_RECONCILE_MS);
	if (pa_ids_load(pa, &err) < 0)
		log_warn("policy: %s; identities are numbered as label sets are met", err.msg);
	shoal_err_clear(&err);
	if (pa_policies_load(pa, &err) == 0)
		pa->policies_loaded = true;
	else
		log_warn("policy: reading the policies: %s", err.msg);
	pa->force = true;
	struct timeval tv = {0, PA_RECONCILE_MS * 1000};
	event_add(pa->tick, &tv);
	/* the first pass once the containers are loaded, at the loop's start */
	struct timeval now = {0, 0};
	evtimer_add(pa->soon, &now);
}

void policy_agent_stop(struct agent *a)
{
	struct policy_agent *pa = pa_of(a);
	if (!pa)
		return;
	/* the programs and pinned maps stay: enforcement goes on while the
	 * agent is away */
	while (pa->followers) {
		struct pa_follower *f = pa->followers;
		pa->followers = f->next;
		f->r->on_cancel = NULL;
		f->r->userdata = NULL;
		api_stream_end(f->r);
		pa_follower_free(f);
	}
	if (pa->watch)
		store_watch_cancel(pa->watch);
	if (pa->id_watch)
		store_watch_cancel(pa->id_watch);
	json_decref(pa->idents);
	/* a compile running is waited for; its result is not applied */
	worker_free(pa->worker);
	pa_job_free(pa->job);
	pa->job = NULL;
	if (pa->tick)
		event_free(pa->tick);
	if (pa->soon)
		event_free(pa->soon);
	if (pa->flow_ev)
		event_free(pa->flow_ev);
	lb_policy_close(pa->lbp);
	if (pa->flow_head)
		munmap(pa->flow_head, pa->flow_map_len);
	pa_policies_free(pa);
	pa_eps_free(pa->eps, pa->n_eps);
	policy_compiled_free(pa->live);
	free(pa);
	a->policy_agent = NULL;
}
