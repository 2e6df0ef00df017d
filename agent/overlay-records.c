// SPDX-License-Identifier: Apache-2.0
/* The overlay agent's addresses and endpoint records in the store: taken,
 * written and given back, and what dead nodes and killed starts left there
 * swept (agent/overlay-agent-internal.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/membership.h"
#include "agent/network-ipam.h"
#include "agent/overlay-agent-internal.h"
#include "agent/store/store.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- lookups in the view ---- */

bool oa_ep_lookup(struct overlay_agent *oa, const char *net, const char *ep_id,
		  struct ovl_endpoint *ret)
{
	const char *text = json_string_value(json_object_get(json_object_get(oa->eps, net), ep_id));
	return text && ovl_endpoint_parse(text, strlen(text), ret, NULL) == 0;
}

bool oa_net_lookup(struct overlay_agent *oa, const char *net, struct ovl_network *ret,
		   struct shoal_err *err)
{
	json_t *j = json_object_get(oa->nets, net);
	if (!j) {
		shoal_err_set_status(err, 404, ENOENT, "network %s not found", net);
		return false;
	}
	return ovl_network_parse(j, ret, err) == 0;
}

void oa_gateway_id(struct overlay_agent *oa, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", OVL_GATEWAY_EP, oa->a->node_id);
}

/* Local container endpoints on net. */
size_t oa_local_containers(struct overlay_agent *oa, const char *net)
{
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(oa->eps, net), k, v)
	{
		const char *text = json_string_value(v);
		struct ovl_endpoint e;
		if (ovl_endpoint_parse(text, strlen(text), &e, NULL) == 0 &&
		    e.kind == OVL_EP_CONTAINER && strcmp(e.node, oa->a->node_id) == 0)
			n++;
	}
	return n;
}

/* Local containers attached to net, whatever the store says: a network
 * whose records were taken back while this node looked dead stays in place
 * under its containers until they are recorded again. */
bool oa_local_attached(struct overlay_agent *oa, const char *net)
{
	for (struct container *c = oa->a->containers; c; c = c->next)
		if (container_on_net(c, net, NULL))
			return true;
	return false;
}

/* ---- addresses and records in the store ---- */

static void addr_key(char *buf, size_t len, const char *net, struct in_addr ip)
{
	char s[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ip, s, sizeof(s));
	snprintf(buf, len, "%s%s/%s", OVL_ADDR_PREFIX, net, s);
}

static void ep_key(char *buf, size_t len, const char *net, const char *ep)
{
	snprintf(buf, len, "%s%s/%s", OVL_ENDPOINT_PREFIX, net, ep);
}

/* Takes a free address of net for owner (create-if-absent per address). */
static int addr_take(struct overlay_agent *oa, const struct ovl_network *n, const char *owner_ep,
		     struct in_addr *ret, struct shoal_err *err)
{
	struct store *s = oa->a->store;
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "%s%s/", OVL_ADDR_PREFIX, n->id);
	struct store_kvs *kvs = NULL;
	int r = store_get(s, prefix, true, 0, &kvs, err);
	if (r < 0)
		return shoal_err_wrap(err, "reading the addresses of network %s", n->name);
	size_t cap = kvs->n + OVL_ALLOC_ATTEMPTS, nt = 0;
	_cleanup_free_ uint32_t *taken = calloc(cap ? cap : 1, sizeof(*taken));
	if (!taken) {
		store_kvs_free(kvs);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < kvs->n; i++) {
		struct in_addr a;
		if (inet_pton(AF_INET, kvs->kvs[i].key + strlen(prefix), &a) == 1)
			taken[nt++] = ntohl(a.s_addr);
	}
	store_kvs_free(kvs);
	_cleanup_free_ char *owner = ovl_addr_owner(oa->a->node_id, owner_ep);
	if (!owner)
		return shoal_err_set(err, ENOMEM, "out of memory");
	uint32_t hint = ovl_ipam_hint(&n->subnet, owner_ep);
	for (int attempt = 0; attempt < OVL_ALLOC_ATTEMPTS; attempt++) {
		uint32_t cand;
		r = ovl_ipam_pick(&n->subnet, taken, nt, hint, &cand);
		if (r == -ENOSPC) {
			char sub[32];
			struct net_cidr c = {.addr = n->subnet.net, .prefix = n->subnet.prefix};
			net_cidr_format(&c, sub, sizeof(sub));
			return shoal_err_set_status(
				err, 409, ENOSPC,
				"network %s has no free address left: all %u addresses of %s are in "
				"use; remove containers from it or use a network with a larger "
				"subnet",
				n->name, ovl_subnet_capacity(&n->subnet), sub);
		}
		if (r < 0)
			return shoal_err_set(err, -r, "out of memory");
		struct in_addr ip = {htonl(cand)};
		char key[320];
		addr_key(key, sizeof(key), n->id, ip);
		struct store_cmp cmp = {
			.key = key, .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ, .num = 0};
		struct store_op put = {.type = STORE_OP_PUT,
				       .key = key,
				       .value = owner,
				       .value_len = strlen(owner)};
		struct store_txn_result res = {0};
		r = store_txn(s, &cmp, 1, &put, 1, NULL, 0, &res, err);
		bool ok = res.succeeded;
		store_txn_result_clear(&res);
		if (r < 0)
			return shoal_err_wrap(err, "taking an address on network %s", n->name);
		if (ok) {
			*ret = ip;
			return 0;
		}
		/* someone else took it meanwhile: the next one */
		taken[nt++] = cand;
		hint = cand + 1;
	}
	return shoal_err_set_status(err, 503, EAGAIN,
				    "network %s: no address taken after %d attempts (other nodes "
				    "took each one first); try again",
				    n->name, OVL_ALLOC_ATTEMPTS);
}

/* Deletes the address key while node's endpoint owner_ep holds it. */
static void addr_release(struct overlay_agent *oa, const char *net, struct in_addr ip,
			 const char *node, const char *owner_ep)
{
	char key[320];
	addr_key(key, sizeof(key), net, ip);
	_cleanup_free_ char *owner = ovl_addr_owner(node, owner_ep);
	if (!owner)
		return;
	struct store_cmp cmp = {.key = key,
				.target = STORE_CMP_VALUE,
				.op = STORE_CMP_EQ,
				.value = owner,
				.value_len = strlen(owner)};
	struct store_op del = {.type = STORE_OP_DELETE, .key = key};
	struct store_txn_result res = {0};
	struct shoal_err err = {0};
	if (store_txn(oa->a->store, &cmp, 1, &del, 1, NULL, 0, &res, &err) < 0)
		log_warn("overlay: giving back %s: %s", key, err.msg);
	store_txn_result_clear(&res);
}

static void addr_give_back(struct overlay_agent *oa, const char *net, struct in_addr ip,
			   const char *owner_ep)
{
	addr_release(oa, net, ip, oa->a->node_id, owner_ep);
}

/* One address record (OVL_ADDR_PREFIX<network>/<ip> = {Node, Endpoint}). */
struct ovl_addr_rec {
	char net[OVL_ID_MAX + 1];
	struct in_addr ip;
	const char *node, *owner;
};

/* Calls fn for each address record in the store, up to max of them acted on
 * (fn returns true when it acted); how many it acted on, or -1 when the
 * store could not be read (logged). */
static int addr_records_each(struct overlay_agent *oa, unsigned max,
			     bool (*fn)(struct overlay_agent *, const struct ovl_addr_rec *,
					void *),
			     void *arg)
{
	struct store_kvs *kvs = NULL;
	struct shoal_err err = {0};
	if (store_get(oa->a->store, OVL_ADDR_PREFIX, true, 0, &kvs, &err) < 0) {
		log_warn("overlay: reading the overlay addresses: %s", err.msg);
		return -1;
	}
	unsigned n = 0;
	for (size_t i = 0; i < kvs->n && n < max; i++) {
		struct ovl_addr_rec r;
		char ip[64];
		if (ovl_key_split(kvs->kvs[i].key, OVL_ADDR_PREFIX, r.net, sizeof(r.net), ip,
				  sizeof(ip)) < 0 ||
		    inet_pton(AF_INET, ip, &r.ip) != 1)
			continue;
		json_t *o = json_loadb(kvs->kvs[i].value, kvs->kvs[i].value_len, 0, NULL);
		r.node = json_string_value(json_object_get(o, "Node"));
		r.owner = json_string_value(json_object_get(o, "Endpoint"));
		if (r.node && r.owner && fn(oa, &r, arg))
			n++;
		json_decref(o);
	}
	store_kvs_free(kvs);
	return (int)n;
}

/* Takes that very address for owner_ep of this node: free, or already its. */
static int addr_claim(struct overlay_agent *oa, const struct ovl_network *n, struct in_addr ip,
		      const char *owner_ep, struct shoal_err *err)
{
	char key[320], s[INET_ADDRSTRLEN];
	addr_key(key, sizeof(key), n->id, ip);
	inet_ntop(AF_INET, &ip, s, sizeof(s));
	_cleanup_free_ char *owner = ovl_addr_owner(oa->a->node_id, owner_ep);
	if (!owner)
		return shoal_err_set(err, ENOMEM, "out of memory");
	struct store_cmp cmp = {.key = key, .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ};
	struct store_op put = {
		.type = STORE_OP_PUT, .key = key, .value = owner, .value_len = strlen(owner)};
	struct store_op get = {.type = STORE_OP_GET, .key = key};
	struct store_txn_result res = {0};
	int r = store_txn(oa->a->store, &cmp, 1, &put, 1, &get, 1, &res, err);
	if (r < 0)
		return shoal_err_wrap(err, "taking %s on network %s", s, n->name);
	bool ok = res.succeeded;
	if (!ok && res.n_gets && res.gets[0].n) {
		const struct store_kv *kv = &res.gets[0].kvs[0];
		ok = kv->value_len == strlen(owner) && memcmp(kv->value, owner, kv->value_len) == 0;
		if (!ok)
			r = shoal_err_set_status(err, 409, EADDRINUSE,
						 "%s on network %s is held by %.*s", s, n->name,
						 (int)kv->value_len, kv->value);
	} else if (!ok) {
		r = shoal_err_set_status(err, 503, EAGAIN,
					 "%s on network %s: taken and given back meanwhile; tried "
					 "again at the next resync",
					 s, n->name);
	}
	store_txn_result_clear(&res);
	return ok ? 0 : r;
}

/* A container's record also carries what network policy judges it by on
 * other nodes: its service and its labels. */
static char *ep_format_with_labels(struct overlay_agent *oa, const struct ovl_endpoint *e)
{
	char *text = ovl_endpoint_format(e);
	struct container *c = e->kind == OVL_EP_CONTAINER ? container_get(oa->a, e->id) : NULL;
	json_t *labels = c ? json_object_get(c->config, "Labels") : NULL;
	if (!text || !json_is_object(labels))
		return text;
	json_t *j = json_loads(text, 0, NULL);
	const char *svc =
		json_string_value(json_object_get(labels, "com.docker.swarm.service.name"));
	char *out = NULL;
	if (j && json_object_set(j, "Labels", labels) == 0 &&
	    (!svc || json_object_set_new(j, "Service", json_string(svc)) == 0))
		out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (!out)
		return text;
	free(text);
	return out;
}

/* Writes the record and puts it in the view at once (the watch repeats it). */
static int ep_write(struct overlay_agent *oa, const struct ovl_endpoint *e, struct shoal_err *err)
{
	_cleanup_free_ char *text = ep_format_with_labels(oa, e);
	if (!text)
		return shoal_err_set(err, ENOMEM, "out of memory");
	char key[320];
	ep_key(key, sizeof(key), e->net, e->id);
	int r = store_put(oa->a->store, key, text, strlen(text), 0, NULL, err);
	if (r < 0)
		return shoal_err_wrap(err, "writing endpoint %s", key);
	struct store_kv kv = {.key = key, .value = text, .value_len = strlen(text)};
	oa_ep_event(oa, &kv, true);
	return 0;
}

void oa_ep_delete(struct overlay_agent *oa, const struct ovl_endpoint *e)
{
	char key[320];
	ep_key(key, sizeof(key), e->net, e->id);
	struct shoal_err err = {0};
	if (store_delete(oa->a->store, key, false, NULL, &err) < 0)
		log_warn("overlay: removing endpoint record %s: %s", key, err.msg);
	struct store_kv kv = {.key = key};
	oa_ep_event(oa, &kv, false);
	addr_give_back(oa, e->net, e->ip, e->id);
}

/* An endpoint (a container's, or this node's gateway) with a fresh address. */
int oa_ep_new(struct overlay_agent *oa, const struct ovl_network *n, const char *ep_id,
	      const char *name, enum ovl_ep_kind kind, struct ovl_endpoint *ret,
	      struct shoal_err *err)
{
	struct ovl_endpoint e = {.kind = kind, .vtep = oa->vtep};
	snprintf(e.id, sizeof(e.id), "%s", ep_id);
	snprintf(e.net, sizeof(e.net), "%s", n->id);
	snprintf(e.node, sizeof(e.node), "%s", oa->a->node_id);
	snprintf(e.name, sizeof(e.name), "%s", name ? name : "");
	int r = addr_take(oa, n, ep_id, &e.ip, err);
	if (r < 0)
		return r;
	vxlan_mac_from_addr(e.ip, e.mac);
	if ((r = ep_write(oa, &e, err)) < 0) {
		addr_give_back(oa, n->id, e.ip, ep_id);
		return r;
	}
	*ret = e;
	return 0;
}

static int ep_reclaim_own(struct overlay_agent *oa, const struct ovl_network *n, const char *ep_id,
			  const char *name, enum ovl_ep_kind kind, struct in_addr ip,
			  const uint8_t mac[6], struct shoal_err *err);

/* This node's address on n, taken when it has none. */
int oa_gateway_ensure(struct overlay_agent *oa, const struct ovl_network *n,
		      struct ovl_endpoint *ret, struct shoal_err *err)
{
	char gid[OVL_ID_MAX + 1];
	oa_gateway_id(oa, gid, sizeof(gid));
	if (oa_ep_lookup(oa, n->id, gid, ret))
		return 0;
	/* taken back while this node looked dead, its containers still routing
	 * through it: that address again, if it is still free */
	for (struct container *c = oa->a->containers; c; c = c->next) {
		if (!c->net_attached || !c->gateway.s_addr || strcmp(c->net_mode, n->id) != 0)
			continue;
		if (ep_reclaim_own(oa, n, gid, oa->a->hostname, OVL_EP_GATEWAY, c->gateway, NULL,
				   NULL) == 0 &&
		    oa_ep_lookup(oa, n->id, gid, ret))
			return 0;
		break;
	}
	int r = oa_ep_new(oa, n, gid, oa->a->hostname, OVL_EP_GATEWAY, ret, err);
	if (r == 0) {
		char ip[INET_ADDRSTRLEN];
		log_info("overlay: network %s: this node's address %s", n->name,
			 inet_ntop(AF_INET, &ret->ip, ip, sizeof(ip)));
	}
	return r;
}

/* What this node holds in the store that none of its containers uses any
 * more (a start or removal the agent was killed in): given back. */
/* An address of this node's that no endpoint of its holds. */
static bool unused_addr(struct overlay_agent *oa, const struct ovl_addr_rec *r, void *arg)
{
	(void)arg;
	struct ovl_endpoint e;
	if (strcmp(r->node, oa->a->node_id) != 0 ||
	    (oa_ep_lookup(oa, r->net, r->owner, &e) && e.ip.s_addr == r->ip.s_addr))
		return false;
	addr_give_back(oa, r->net, r->ip, r->owner);
	return true;
}

void oa_give_back_unused(struct overlay_agent *oa)
{
	struct agent *a = oa->a;
	unsigned n = 0;
	const char *net;
	json_t *eps;
	void *tmp;
	json_t *copy = json_deep_copy(oa->eps);
	json_object_foreach_safe(copy, tmp, net, eps)
	{
		bool used = oa_local_containers(oa, net) > 0;
		const char *k;
		json_t *v;
		json_object_foreach(eps, k, v)
		{
			const char *text = json_string_value(v);
			struct ovl_endpoint e;
			if (ovl_endpoint_parse(text, strlen(text), &e, NULL) < 0 ||
			    strcmp(e.node, a->node_id) != 0)
				continue;
			bool keep;
			if (e.kind == OVL_EP_GATEWAY) {
				keep = used;
			} else {
				struct container *c = container_get(a, e.id);
				struct in_addr held = {0};
				keep = c && container_on_net(c, e.net, &held) &&
				       held.s_addr == e.ip.s_addr;
			}
			if (!keep) {
				oa_ep_delete(oa, &e);
				n++;
			}
		}
	}
	json_decref(copy);
	/* addresses whose endpoint record never got written */
	int q = addr_records_each(oa, UINT_MAX, unused_addr, NULL);
	if (q < 0)
		return;
	n += (unsigned)q;
	if (n)
		log_info("overlay: gave back %u addresses and endpoint records no container uses",
			 n);
}

/* An endpoint of this node with the address it already uses: claimed back
 * (free, or still its own) and recorded. */
static int ep_reclaim_own(struct overlay_agent *oa, const struct ovl_network *n, const char *ep_id,
			  const char *name, enum ovl_ep_kind kind, struct in_addr ip,
			  const uint8_t mac[6], struct shoal_err *err)
{
	struct ovl_endpoint e = {.kind = kind, .vtep = oa->vtep, .ip = ip};
	snprintf(e.id, sizeof(e.id), "%s", ep_id);
	snprintf(e.net, sizeof(e.net), "%s", n->id);
	snprintf(e.node, sizeof(e.node), "%s", oa->a->node_id);
	snprintf(e.name, sizeof(e.name), "%s", name ? name : "");
	if (mac)
		memcpy(e.mac, mac, 6);
	else
		vxlan_mac_from_addr(ip, e.mac);
	int r = addr_claim(oa, n, ip, ep_id, err);
	return r < 0 ? r : ep_write(oa, &e, err);
}

/* The running containers of this node with no endpoint record (taken back
 * by the leader while this node was down longer than the grace, or lost):
 * recorded again at the addresses they use, the node's own address on the
 * network first (their default route). An address someone else took
 * meanwhile is logged once: that container is reached by no other node until
 * it is restarted. */
void oa_reregister(struct overlay_agent *oa)
{
	struct agent *a = oa->a;
	if (oa->unavailable[0])
		return;
	for (struct container *c = a->containers; c; c = c->next) {
		struct container_att at;
		for (size_t i = 0; c->state == CONTAINER_RUNNING && i < CONTAINER_ATT_MAX; i++) {
			struct ovl_endpoint e;
			struct ovl_network n;
			if (!container_att(c, i, &at) || !overlay_net_mode(at.net) ||
			    oa_ep_lookup(oa, at.net, c->id, &e) ||
			    !oa_net_lookup(oa, at.net, &n, NULL))
				continue;
			char gid[OVL_ID_MAX + 1];
			struct shoal_err err = {0};
			oa_gateway_id(oa, gid, sizeof(gid));
			/* the first network routes through this node's address:
			 * that one again; a further one any */
			int r = 0;
			if (oa_ep_lookup(oa, n.id, gid, &e))
				r = 0;
			else if (i == 0)
				r = ep_reclaim_own(oa, &n, gid, a->hostname, OVL_EP_GATEWAY,
						   c->gateway, NULL, &err);
			else
				r = oa_gateway_ensure(oa, &n, &e, &err);
			if (r < 0) {
				log_warn("overlay: network %s: this node's address again: %s",
					 n.name, err.msg);
				continue;
			}
			err = (struct shoal_err){0};
			char ekey[2 * OVL_ID_MAX + 2];
			snprintf(ekey, sizeof(ekey), "%s/%s", c->id, n.id);
			r = ep_reclaim_own(oa, &n, c->id, c->name, OVL_EP_CONTAINER, at.ip,
					   i == 0 ? c->mac : NULL, &err);
			const char *last = json_string_value(json_object_get(oa->errs, ekey));
			if (r < 0 && (!last || strcmp(last, err.msg) != 0)) {
				log_warn(
					"overlay: container %.12s (%s) on network %s: not recorded "
					"again: %s; no other node reaches it there until it is "
					"restarted",
					c->id, c->name, n.name, err.msg);
				json_object_set_new(oa->errs, ekey, json_string(err.msg));
			} else if (r == 0) {
				char ip[INET_ADDRSTRLEN];
				log_info(
					"overlay: container %.12s (%s) on network %s recorded again "
					"at %s",
					c->id, c->name, n.name,
					inet_ntop(AF_INET, &at.ip, ip, sizeof(ip)));
				json_object_del(oa->errs, ekey);
			}
		}
	}
}

/* How long a dead node's endpoint records and addresses are kept: a few
 * lease TTLs, so that a node cut off for a moment (a partition, its agent
 * restarted late) comes back with its containers' addresses, while a node
 * that is gone frees its part of the subnets soon after its tasks have been
 * placed elsewhere. */
static int64_t reclaim_grace_ns(struct agent *a)
{
	return (int64_t)OVERLAY_RECLAIM_TTLS * (a->cfg.node_ttl_s > 0 ? a->cfg.node_ttl_s : 5) *
	       1000000000LL;
}

static bool dead_past_grace(struct overlay_agent *oa, const char *node, int64_t now)
{
	if (strcmp(node, oa->a->node_id) == 0 || oa_node_alive(oa, node))
		return false;
	int64_t since = membership_down_since(oa->a, node);
	return since > 0 && now - since >= reclaim_grace_ns(oa->a);
}

/* An address of a node dead past the grace that no endpoint record holds. */
static bool dead_addr(struct overlay_agent *oa, const struct ovl_addr_rec *r, void *arg)
{
	struct ovl_endpoint e;
	if (!dead_past_grace(oa, r->node, *(const int64_t *)arg) ||
	    oa_ep_lookup(oa, r->net, r->owner, &e))
		return false;
	addr_release(oa, r->net, r->ip, r->node, r->owner);
	return true;
}

/* On the leader: the records and addresses of nodes dead for longer than the
 * grace, given back (compare-and-swap on what was read: a node that came back
 * and wrote them again keeps them). */
void oa_reclaim_dead(struct overlay_agent *oa)
{
	struct agent *a = oa->a;
	if (!membership_is_leader(a))
		return;
	int64_t now = now_ns();
	unsigned n = 0;
	json_t *copy = json_deep_copy(oa->eps);
	const char *net;
	json_t *eps;
	json_object_foreach(copy, net, eps)
	{
		const char *k;
		json_t *v;
		json_object_foreach(eps, k, v)
		{
			const char *text = json_string_value(v);
			struct ovl_endpoint e;
			if (n >= OVL_RECLAIM_MAX ||
			    ovl_endpoint_parse(text, strlen(text), &e, NULL) < 0 ||
			    !dead_past_grace(oa, e.node, now))
				continue;
			char key[320];
			ep_key(key, sizeof(key), e.net, e.id);
			struct store_cmp cmp = {.key = key,
						.target = STORE_CMP_VALUE,
						.op = STORE_CMP_EQ,
						.value = text,
						.value_len = strlen(text)};
			struct store_op del = {.type = STORE_OP_DELETE, .key = key};
			struct store_txn_result res = {0};
			struct shoal_err err = {0};
			if (store_txn(a->store, &cmp, 1, &del, 1, NULL, 0, &res, &err) < 0) {
				log_warn("overlay: removing %s of a dead node: %s", key, err.msg);
			} else if (res.succeeded) {
				addr_release(oa, e.net, e.ip, e.node, e.id);
				struct store_kv kv = {.key = key};
				oa_ep_event(oa, &kv, false);
				log_info(
					"overlay: endpoint %.12s (%s) of node %.12s, down for more "
					"than %lld s, given back",
					e.id, e.name, e.node,
					(long long)(reclaim_grace_ns(a) / 1000000000LL));
				n++;
			}
			store_txn_result_clear(&res);
		}
	}
	json_decref(copy);
	/* addresses of dead nodes whose record never got written: one sweep
	 * per death */
	bool sweep = false;
	const char *nid;
	json_t *addr;
	json_object_foreach(oa->nodes, nid, addr)
	{
		if (dead_past_grace(oa, nid, now) && !json_object_get(oa->reclaimed, nid))
			sweep = true;
	}
	/* with no overlay network there is no address to give back (a network's
	 * go with it) */
	if (!sweep || n >= OVL_RECLAIM_MAX || !json_object_size(oa->nets))
		return;
	int64_t at = now;
	int q = addr_records_each(oa, OVL_RECLAIM_MAX - n, dead_addr, &at);
	if (q < 0)
		return;
	n += (unsigned)q;
	if (n < OVL_RECLAIM_MAX)
		json_object_foreach(oa->nodes, nid, addr)
		{
			if (dead_past_grace(oa, nid, now))
				json_object_set_new(oa->reclaimed, nid, json_true());
		}
}
