// SPDX-License-Identifier: Apache-2.0
/*
 * Service VIPs and published ports as reservations in the store: a key per
 * allocation, /shoal/ipam/vips/<ip> and /shoal/ports/<proto>/<port>, whose
 * value names the service holding it. A key is created only while absent
 * (compare create revision == 0), in the same transaction that writes the
 * service record, so that two managers racing for one VIP or port cannot both
 * get it and a crash leaves no record without its keys nor keys without their
 * record. Keys a service no longer holds (its spec dropped the port, it was
 * removed) go in the transaction that says so; what a store written before
 * the keys existed lacks, or holds for services gone, is put right at start.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/manager.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "agent/store/store.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/spec.h"

#define ALLOC_KEY_MAX 96
/* Allocations of one service: its ports and its VIP on each network. */
#define ALLOC_MAX     (SPEC_MAX_PORTS + SPEC_MAX_NETWORKS + 1)
#define ALLOC_VAL_MAX 128
/* Reservations retried when another manager took the VIP or port picked. */
#define ALLOC_ATTEMPTS 32

/* What a service holds: the store keys, and whether each was picked here. */
struct alloc_want {
	char key[ALLOC_KEY_MAX];
	int port_idx; /* -1: the VIP */
	bool picked;
};

static int proto_of(json_t *pc)
{
	const char *s = json_string_value(json_object_get(pc, "Protocol"));
	return s && strcmp(s, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
}

static const char *proto_str(int proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

static bool host_mode(json_t *pc)
{
	const char *m = json_string_value(json_object_get(pc, "PublishMode"));
	return m && strcmp(m, "host") == 0;
}

static json_t *spec_ports(json_t *svc)
{
	return json_object_get(json_object_get(json_object_get(svc, "Spec"), "EndpointSpec"),
			       "Ports");
}

static void port_key(int proto, int port, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s/%d", PUBLISH_ALLOC_PORTS, proto_str(proto), port);
}

static void vip_key(const char *ip, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", PUBLISH_ALLOC_VIPS, ip);
}

static void alloc_value(const char *sid, char *buf, size_t len)
{
	snprintf(buf, len, "{\"ServiceID\":\"%s\"}", sid);
}

/* The service id in a key's value; "" when it cannot be read. */
static void value_sid(const struct store_kv *kv, char *ret, size_t len)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	snprintf(ret, len, "%s", json_string_value(json_object_get(j, "ServiceID")) ?: "");
	json_decref(j);
}

/* The keys a service record holds: its VIP and its published ports. A
 * removed service holds none. Returns how many (at most max). */
static size_t record_keys(json_t *svc, char (*keys)[ALLOC_KEY_MAX], size_t max)
{
	size_t n = 0;
	if (!svc || json_is_true(json_object_get(svc, "Removed")))
		return 0;
	const char *vip = json_string_value(json_object_get(svc, "VirtualIP"));
	if (vip && *vip && n < max)
		vip_key(vip, keys[n++], ALLOC_KEY_MAX);
	const char *net;
	json_t *v;
	json_object_foreach(json_object_get(svc, PUBLISH_MORE_VIPS), net, v)
	{
		if (json_string_length(v) && n < max)
			vip_key(json_string_value(v), keys[n++], ALLOC_KEY_MAX);
	}
	size_t i;
	json_t *pc;
	json_array_foreach(spec_ports(svc), i, pc)
	{
		int pub = (int)json_integer_value(json_object_get(pc, "PublishedPort"));
		if (pub > 0 && n < max)
			port_key(proto_of(pc), pub, keys[n++], ALLOC_KEY_MAX);
	}
	return n;
}

/* Who holds key: 1 and its service id (and mod revision), or 0 when free. */
static int alloc_read(struct agent *a, const char *key, char *ret_sid, size_t len, int64_t *ret_mod,
		      struct shoal_err *err)
{
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, key, false, 0, &kvs, err);
	if (r < 0)
		return r;
	r = kvs->n > 0;
	if (r) {
		value_sid(&kvs->kvs[0], ret_sid, len);
		if (ret_mod)
			*ret_mod = kvs->kvs[0].mod_revision;
	}
	store_kvs_free(kvs);
	return r;
}

/* "service NAME" for the holder of an allocation. */
static void owner_name(struct agent *a, const char *sid, char *buf, size_t len)
{
	char key[160];
	json_t *svc = NULL;
	snprintf(key, sizeof(key), "%s%s", CLUSTER_SERVICES, sid);
	if (*sid && cluster_get(a, key, &svc, NULL, NULL) == 0) {
		snprintf(buf, len, "service %s",
			 json_string_value(json_object_get(json_object_get(svc, "Spec"), "Name"))
				 ?: sid);
		json_decref(svc);
		return;
	}
	snprintf(buf, len, "service %s", *sid ? sid : "(unknown)");
}

static bool vip_in_record(json_t *svc, const char *ip)
{
	const char *vip = json_string_value(json_object_get(svc, "VirtualIP"));
	if (vip && strcmp(vip, ip) == 0)
		return true;
	const char *net;
	json_t *v;
	json_object_foreach(json_object_get(svc, PUBLISH_MORE_VIPS), net, v)
	{
		if (strcmp(json_string_value(v) ?: "", ip) == 0)
			return true;
	}
	return false;
}

/* The lowest VIP no other service holds, nor svc on another network. */
static int vip_pick(struct agent *a, json_t *svc, char *ret, size_t len, struct shoal_err *err)
{
	const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, PUBLISH_ALLOC_VIPS, true, 0, &kvs, err);
	if (r < 0)
		return r;
	_cleanup_free_ uint8_t *used = calloc(PUBLISH_VIP_COUNT, 1);
	if (!used) {
		store_kvs_free(kvs);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	struct in_addr base;
	inet_pton(AF_INET, PUBLISH_VIP_BASE, &base);
	uint32_t first = ntohl(base.s_addr) + 1;
	for (size_t i = 0; i < kvs->n; i++) {
		char owner[80];
		struct in_addr in;
		value_sid(&kvs->kvs[i], owner, sizeof(owner));
		if (strcmp(owner, sid) == 0 ||
		    inet_pton(AF_INET, kvs->kvs[i].key + strlen(PUBLISH_ALLOC_VIPS), &in) != 1)
			continue;
		uint32_t h = ntohl(in.s_addr);
		if (h >= first && h - first < PUBLISH_VIP_COUNT)
			used[h - first] = 1;
	}
	store_kvs_free(kvs);
	for (uint32_t k = 0; k < PUBLISH_VIP_COUNT; k++)
		if (!used[k]) {
			struct in_addr in = {.s_addr = htonl(first + k)};
			inet_ntop(AF_INET, &in, ret, (socklen_t)len);
			if (vip_in_record(svc, ret))
				continue;
			return 0;
		}
	return shoal_err_set_status(err, 409, ENOSPC, "no free virtual IP left for the service");
}

/* The lowest port of the assignment range that no other service holds, no
 * other entry of this spec asks for, and no container or task of this node
 * binds. */
static int port_pick(struct agent *a, const char *sid, int proto, json_t *ports, size_t self,
		     struct shoal_err *err)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "%s%s/", PUBLISH_ALLOC_PORTS, proto_str(proto));
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, prefix, true, 0, &kvs, err);
	if (r < 0)
		return r;
	uint8_t used[PUBLISH_PORT_MAX - PUBLISH_PORT_MIN + 1] = {0};
	for (size_t i = 0; i < kvs->n; i++) {
		char owner[80];
		value_sid(&kvs->kvs[i], owner, sizeof(owner));
		int port = atoi(kvs->kvs[i].key + strlen(prefix));
		if (strcmp(owner, sid) != 0 && port >= PUBLISH_PORT_MIN && port <= PUBLISH_PORT_MAX)
			used[port - PUBLISH_PORT_MIN] = 1;
	}
	store_kvs_free(kvs);
	size_t i;
	json_t *pc;
	json_array_foreach(ports, i, pc)
	{
		int pub = (int)json_integer_value(json_object_get(pc, "PublishedPort"));
		if (i != self && proto_of(pc) == proto && pub >= PUBLISH_PORT_MIN &&
		    pub <= PUBLISH_PORT_MAX)
			used[pub - PUBLISH_PORT_MIN] = 1;
	}
	for (int port = PUBLISH_PORT_MIN; port <= PUBLISH_PORT_MAX; port++) {
		char buf[160];
		if (!used[port - PUBLISH_PORT_MIN] &&
		    !publish_port_owner(a, proto, port, sid, buf, sizeof(buf)))
			return port;
	}
	return shoal_err_set_status(err, 409, ENOSPC,
				    "EndpointSpec.Ports[%zu]: no free port left in %d-%d", self,
				    PUBLISH_PORT_MIN, PUBLISH_PORT_MAX);
}

/* The service record without its version, as the store keeps it. */
static char *record_dump(json_t *svc)
{
	json_t *copy = json_copy(svc);
	if (!copy)
		return NULL;
	json_object_del(copy, "Version");
	char *s = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	return s;
}

static json_t *spec_networks(json_t *svc)
{
	return json_object_get(json_object_get(json_object_get(svc, "Spec"), "TaskTemplate"),
			       "Networks");
}

static bool wants_vip(json_t *svc)
{
	const char *mode = json_string_value(json_object_get(
		json_object_get(json_object_get(svc, "Spec"), "EndpointSpec"), "Mode"));
	return !mode || strcmp(mode, "dnsrr") != 0;
}

/* The network Docker's Endpoint.VirtualIPs names: the service's overlay
 * network (the spec holds it by id), the ingress network for a service
 * meshed on it, or the node's bridge. */
static const char *vip_network(struct agent *a, json_t *svc)
{
	const char *t = publish_service_network(svc, NULL);
	json_t *old = json_object_get(json_object_get(svc, "Spec"), "Networks");
	if (!t)
		t = json_string_value(json_object_get(json_array_get(old, 0), "Target"));
	if (!t || !*t)
		t = publish_service_network(svc, overlay_ingress_network(a));
	return t && *t ? t : "bridge";
}

static void set_vip(struct agent *a, json_t *svc, const char *vip)
{
	if (!vip) {
		json_object_del(svc, "VirtualIP");
		json_object_del(svc, "Endpoint");
		return;
	}
	/* vip may be the record's own string, replaced below */
	char addr[INET_ADDRSTRLEN + 4];
	snprintf(addr, sizeof(addr), "%s/32", vip);
	json_object_set_new(svc, "VirtualIP", json_stringn(addr, strcspn(addr, "/")));
	json_t *vips = json_array();
	json_array_append_new(
		vips, json_pack("{s:s, s:s}", "NetworkID", vip_network(a, svc), "Addr", addr));
	/* one on each further network, in the spec's order */
	size_t i;
	json_t *n;
	json_array_foreach(spec_networks(svc), i, n)
	{
		const char *t = json_string_value(json_object_get(n, "Target"));
		const char *ip = json_string_value(
			json_object_get(json_object_get(svc, PUBLISH_MORE_VIPS), t ?: ""));
		if (i == 0 || !ip)
			continue;
		snprintf(addr, sizeof(addr), "%s/32", ip);
		json_array_append_new(vips, json_pack("{s:s, s:s}", "NetworkID", t, "Addr", addr));
	}
	json_object_set_new(svc, "Endpoint", json_pack("{s:o}", "VirtualIPs", vips));
}

/* The VIPs of the further networks: the record's where it has one for the
 * network, picked otherwise (marked in picked[], one per network index);
 * those of networks no longer in the spec dropped. */
static int more_vips(struct agent *a, json_t *svc, bool *picked, struct shoal_err *err)
{
	/* held: the record's member is replaced below */
	_cleanup_(json_decrefp) json_t *old = json_incref(json_object_get(svc, PUBLISH_MORE_VIPS));
	json_t *more = json_object();
	if (!more)
		return shoal_err_set(err, ENOMEM, "out of memory");
	size_t i;
	json_t *n;
	json_array_foreach(spec_networks(svc), i, n)
	{
		const char *t = json_string_value(json_object_get(n, "Target"));
		if (i == 0 || !t || !*t)
			continue;
		const char *ip = json_string_value(json_object_get(old, t));
		picked[i] = !ip;
		if (ip) {
			json_object_set_new(more, t, json_string(ip));
			continue;
		}
		char pick[INET_ADDRSTRLEN];
		/* what this record holds already is not picked twice */
		json_object_set(svc, PUBLISH_MORE_VIPS, more);
		int r = vip_pick(a, svc, pick, sizeof(pick), err);
		if (r < 0) {
			json_decref(more);
			return r;
		}
		json_object_set_new(more, t, json_string(pick));
	}
	if (json_object_size(more))
		json_object_set_new(svc, PUBLISH_MORE_VIPS, more);
	else {
		json_object_del(svc, PUBLISH_MORE_VIPS);
		json_decref(more);
	}
	return 0;
}

/* The transaction being built: room for a compare and an op per allocation
 * wanted or freed, and the record's. */
struct commit {
	struct store_cmp *cmps;
	struct store_op *ops;
	size_t n_cmps, n_ops;
};

/* One attempt: the allocations svc wants, read and compared, and the
 * transaction. 1: written; 0: an allocation picked here was taken meanwhile
 * (pick again); < 0: refused, err says why. */
static int commit_once(struct agent *a, json_t *svc, json_t *prev, int64_t expect_rev,
		       const bool *auto_port, bool auto_vip, struct alloc_want *want,
		       char (*held)[ALLOC_KEY_MAX], struct commit *c, int64_t *ret_rev,
		       struct shoal_err *err)
{
	const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
	bool removed = json_is_true(json_object_get(svc, "Removed"));
	json_t *ports = spec_ports(svc);
	char skey[160], mine[ALLOC_VAL_MAX];
	snprintf(skey, sizeof(skey), "%s%s", CLUSTER_SERVICES, sid);
	alloc_value(sid, mine, sizeof(mine));
	size_t n_want = 0;
	c->n_cmps = c->n_ops = 0;
	if (expect_rev >= 0)
		c->cmps[c->n_cmps++] = (struct store_cmp){.key = skey,
							  .target = STORE_CMP_MOD,
							  .op = STORE_CMP_EQ,
							  .num = expect_rev};
	int r;
	if (!removed) {
		if (auto_vip) {
			char ip[INET_ADDRSTRLEN];
			if ((r = vip_pick(a, svc, ip, sizeof(ip), err)) < 0)
				return r;
			set_vip(a, svc, ip);
		}
		const char *vip = json_string_value(json_object_get(svc, "VirtualIP"));
		if (vip && *vip) {
			/* a VIP on each further network too */
			bool picked[SPEC_MAX_NETWORKS + 1] = {0};
			if ((r = more_vips(a, svc, picked, err)) < 0)
				return r;
			/* the network it is on follows the spec (an update may move it) */
			set_vip(a, svc, vip);
			vip = json_string_value(json_object_get(svc, "VirtualIP"));
			vip_key(vip, want[n_want].key, ALLOC_KEY_MAX);
			want[n_want].port_idx = -1;
			want[n_want++].picked = auto_vip;
			size_t k;
			json_t *n;
			json_array_foreach(spec_networks(svc), k, n)
			{
				const char *ip = json_string_value(json_object_get(
					json_object_get(svc, PUBLISH_MORE_VIPS),
					json_string_value(json_object_get(n, "Target")) ?: ""));
				if (k == 0 || !ip || k > SPEC_MAX_NETWORKS)
					continue;
				vip_key(ip, want[n_want].key, ALLOC_KEY_MAX);
				want[n_want].port_idx = -1;
				want[n_want++].picked = picked[k];
			}
		} else {
			json_object_del(svc, PUBLISH_MORE_VIPS);
		}
		size_t i;
		json_t *pc;
		json_array_foreach(ports, i, pc)
		{
			int pub = (int)json_integer_value(json_object_get(pc, "PublishedPort"));
			if (auto_port[i]) {
				if ((pub = port_pick(a, sid, proto_of(pc), ports, i, err)) < 0)
					return pub;
				json_object_set_new(pc, "PublishedPort", json_integer(pub));
			}
			if (pub <= 0)
				continue; /* host mode without a port: per task, where it runs */
			port_key(proto_of(pc), pub, want[n_want].key, ALLOC_KEY_MAX);
			want[n_want].port_idx = (int)i;
			want[n_want++].picked = auto_port[i];
		}
	}
	for (size_t w = 0; w < n_want; w++) {
		char owner[80] = "";
		if ((r = alloc_read(a, want[w].key, owner, sizeof(owner), NULL, err)) < 0)
			return r;
		if (r == 0) {
			c->cmps[c->n_cmps++] = (struct store_cmp){.key = want[w].key,
								  .target = STORE_CMP_CREATE,
								  .op = STORE_CMP_EQ,
								  .num = 0};
			c->ops[c->n_ops++] = (struct store_op){.type = STORE_OP_PUT,
							       .key = want[w].key,
							       .value = mine,
							       .value_len = strlen(mine)};
			continue;
		}
		if (strcmp(owner, sid) == 0) {
			/* still ours when the record is written */
			c->cmps[c->n_cmps++] = (struct store_cmp){.key = want[w].key,
								  .target = STORE_CMP_VALUE,
								  .op = STORE_CMP_EQ,
								  .value = mine,
								  .value_len = strlen(mine)};
			continue;
		}
		if (want[w].picked)
			return 0;
		char who[200];
		owner_name(a, owner, who, sizeof(who));
		if (want[w].port_idx < 0) {
			/* a VIP the record already had, held by another service: a
			 * store from before the reservations; the record keeps it */
			log_warn("publish: virtual IP %s of service %s is held by %s",
				 want[w].key + strlen(PUBLISH_ALLOC_VIPS), sid, who);
			continue;
		}
		json_t *pc = json_array_get(ports, (size_t)want[w].port_idx);
		return shoal_err_set_status(
			err, 409, EADDRINUSE, "port %d/%s is already published by %s",
			(int)json_integer_value(json_object_get(pc, "PublishedPort")),
			proto_str(proto_of(pc)), who);
	}
	/* what the record held and holds no more */
	size_t n_held = record_keys(prev, held, ALLOC_MAX);
	if (removed) {
		/* the record as it was, marked: every key it names goes */
		json_t *was = json_copy(svc);
		json_object_del(was, "Removed");
		n_held += record_keys(was, held + n_held, ALLOC_MAX);
		json_decref(was);
	}
	for (size_t h = 0; h < n_held; h++) {
		bool kept = false, dup = false;
		for (size_t w = 0; w < n_want && !kept; w++)
			kept = strcmp(want[w].key, held[h]) == 0;
		for (size_t k = 0; k < h && !dup; k++)
			dup = strcmp(held[k], held[h]) == 0;
		if (kept || dup)
			continue;
		char owner[80] = "";
		if ((r = alloc_read(a, held[h], owner, sizeof(owner), NULL, err)) < 0)
			return r;
		if (r == 0 || strcmp(owner, sid) != 0)
			continue;
		c->cmps[c->n_cmps++] = (struct store_cmp){.key = held[h],
							  .target = STORE_CMP_VALUE,
							  .op = STORE_CMP_EQ,
							  .value = mine,
							  .value_len = strlen(mine)};
		c->ops[c->n_ops++] = (struct store_op){.type = STORE_OP_DELETE, .key = held[h]};
	}
	_cleanup_free_ char *rec = record_dump(svc);
	if (!rec)
		return shoal_err_set(err, ENOMEM, "encoding %s", skey);
	c->ops[c->n_ops++] = (struct store_op){
		.type = STORE_OP_PUT, .key = skey, .value = rec, .value_len = strlen(rec)};
	struct store_txn_result res = {0};
	r = store_txn(a->store, c->cmps, c->n_cmps, c->ops, c->n_ops, NULL, 0, &res, err);
	if (r < 0)
		return r;
	bool ok = res.succeeded;
	int64_t rev = res.revision;
	store_txn_result_clear(&res);
	if (ok) {
		manager_note_write(a, skey, rev);
		*ret_rev = rev;
		return 1;
	}
	/* the record itself changed, or an allocation moved under us */
	if (expect_rev >= 0) {
		struct store_kvs *kvs = NULL;
		if ((r = store_get(a->store, skey, false, 0, &kvs, err)) < 0)
			return r;
		int64_t cur = kvs->n ? kvs->kvs[0].mod_revision : 0;
		store_kvs_free(kvs);
		if (cur != expect_rev)
			return shoal_err_set_status(
				err, 409, EAGAIN,
				expect_rev == 0
					? "service %s exists already"
					: "update out of sequence: %s changed since version "
					  "%lld; read it again and retry",
				skey, (long long)expect_rev);
	}
	return 0;
}

int publish_service_commit(struct agent *a, json_t *svc, json_t *prev, int64_t expect_rev,
			   int64_t *ret_rev, struct shoal_err *err)
{
	json_t *ports = spec_ports(svc);
	size_t np = json_array_size(ports);
	if (np > ALLOC_MAX - 1)
		return shoal_err_set_status(err, 400, E2BIG,
					    "EndpointSpec.Ports: %zu ports; at most %d", np,
					    ALLOC_MAX - 1);
	bool removed = json_is_true(json_object_get(svc, "Removed"));
	_cleanup_free_ bool *auto_port = calloc(np + 1, sizeof(bool));
	_cleanup_free_ struct alloc_want *want = calloc(ALLOC_MAX, sizeof(*want));
	_cleanup_free_ char(*held)[ALLOC_KEY_MAX] = calloc(2 * ALLOC_MAX, ALLOC_KEY_MAX);
	/* wanted (ALLOC_MAX) and freed (2 * ALLOC_MAX), and the record's */
	size_t cap = 3 * ALLOC_MAX + 2;
	struct commit c = {0};
	_cleanup_free_ struct store_cmp *cmps = c.cmps = calloc(cap, sizeof(*c.cmps));
	_cleanup_free_ struct store_op *ops = c.ops = calloc(cap, sizeof(*c.ops));
	if (!auto_port || !want || !held || !cmps || !ops)
		return shoal_err_set(err, ENOMEM, "out of memory");
	size_t i;
	json_t *pc;
	json_array_foreach(ports, i, pc)
	{
		/* ingress without a port gets one; host mode gets one per task */
		auto_port[i] = !removed &&
			       json_integer_value(json_object_get(pc, "PublishedPort")) <= 0 &&
			       !host_mode(pc);
	}
	const char *vip = json_string_value(json_object_get(svc, "VirtualIP"));
	bool auto_vip = !removed && !prev && (!vip || !*vip) && wants_vip(svc);
	/* the further networks' VIPs as the record came: picked again from it */
	_cleanup_(json_decrefp) json_t *more0 =
		json_deep_copy(json_object_get(svc, PUBLISH_MORE_VIPS));
	for (int attempt = 0; attempt < ALLOC_ATTEMPTS; attempt++) {
		int64_t rev = 0;
		int r = commit_once(a, svc, prev, expect_rev, auto_port, auto_vip, want, held, &c,
				    &rev, err);
		if (r < 0)
			return r;
		if (r > 0) {
			if (ret_rev)
				*ret_rev = rev;
			cluster_kick(a);
			return 0;
		}
		/* someone took what was picked: pick again from what is free now */
		log_debug("publish: a VIP or port picked for service %s was taken meanwhile; "
			  "picking again",
			  json_string_value(json_object_get(svc, "ID")) ?: "");
		json_array_foreach(ports, i, pc) if (auto_port[i])
			json_object_set_new(pc, "PublishedPort", json_integer(0));
		if (auto_vip)
			set_vip(a, svc, NULL);
		if (more0)
			json_object_set(svc, PUBLISH_MORE_VIPS, more0);
		else
			json_object_del(svc, PUBLISH_MORE_VIPS);
	}
	return shoal_err_set_status(
		err, 503, EBUSY,
		"could not reserve a virtual IP and ports for the service after "
		"%d attempts (other managers allocating at the same time); retry",
		ALLOC_ATTEMPTS);
}

/* ---- reconciliation at start ---- */

/* Deletes (value NULL) or creates an allocation key if the service record is
 * still at srev and the key as read. */
static int reconcile_one(struct agent *a, const char *key, int64_t kmod, const char *skey,
			 int64_t srev, const char *value, struct shoal_err *err)
{
	struct store_cmp cmps[2] = {
		{.key = skey, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = srev},
		{.key = key,
		 .target = value ? STORE_CMP_CREATE : STORE_CMP_MOD,
		 .op = STORE_CMP_EQ,
		 .num = value ? 0 : kmod},
	};
	struct store_op op = {.type = value ? STORE_OP_PUT : STORE_OP_DELETE,
			      .key = key,
			      .value = value,
			      .value_len = value ? strlen(value) : 0};
	struct store_txn_result res = {0};
	int r = store_txn(a->store, cmps, 2, &op, 1, NULL, 0, &res, err);
	if (r < 0)
		return r;
	r = res.succeeded ? 1 : 0;
	store_txn_result_clear(&res);
	return r;
}

int publish_alloc_reconcile(struct agent *a, struct shoal_err *err)
{
	/* The keys before the records: a key read here whose record is absent
	 * afterwards was orphaned (records and keys are written together), and
	 * every change after these reads fails the compares below. */
	struct store_kvs *vips = NULL, *ports = NULL, *svcs = NULL;
	int r = store_get(a->store, PUBLISH_ALLOC_VIPS, true, 0, &vips, err);
	if (r >= 0)
		r = store_get(a->store, PUBLISH_ALLOC_PORTS, true, 0, &ports, err);
	if (r >= 0)
		r = store_get(a->store, CLUSTER_SERVICES, true, 0, &svcs, err);
	json_t *by_id = json_object(); /* service id -> its index in svcs */
	json_t *recs = json_array();
	json_t *have = json_object(); /* allocation key -> true */
	unsigned freed = 0, restored = 0;
	if (r < 0 || !by_id || !recs || !have)
		goto out;
	for (size_t i = 0; i < svcs->n; i++) {
		json_t *j = json_loadb(svcs->kvs[i].value, svcs->kvs[i].value_len, 0, NULL);
		json_array_append_new(recs, j ? j : json_null());
		const char *sid = json_string_value(json_object_get(j, "ID"));
		if (sid)
			json_object_set_new(by_id, sid, json_integer((json_int_t)i));
	}
	char held[ALLOC_MAX][ALLOC_KEY_MAX];
	struct store_kvs *sets[2] = {vips, ports};
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < sets[s]->n; i++) {
			const struct store_kv *kv = &sets[s]->kvs[i];
			char sid[80], skey[160];
			value_sid(kv, sid, sizeof(sid));
			snprintf(skey, sizeof(skey), "%s%s", CLUSTER_SERVICES, sid);
			json_t *idx = *sid ? json_object_get(by_id, sid) : NULL;
			json_t *rec =
				idx ? json_array_get(recs, (size_t)json_integer_value(idx)) : NULL;
			int64_t srev = idx ? svcs->kvs[json_integer_value(idx)].mod_revision : 0;
			size_t n = record_keys(rec, held, ALLOC_MAX);
			bool holds = false;
			for (size_t k = 0; k < n && !holds; k++)
				holds = strcmp(held[k], kv->key) == 0;
			if (holds) {
				json_object_set_new(have, kv->key, json_true());
				continue;
			}
			r = reconcile_one(a, kv->key, kv->mod_revision, skey, srev, NULL, err);
			if (r < 0)
				goto out;
			freed += r;
		}
	}
	/* records from before the reservations: their keys, where free */
	size_t i;
	json_t *rec;
	json_array_foreach(recs, i, rec)
	{
		const char *sid = json_string_value(json_object_get(rec, "ID"));
		if (!sid)
			continue;
		char value[ALLOC_VAL_MAX];
		alloc_value(sid, value, sizeof(value));
		size_t n = record_keys(rec, held, ALLOC_MAX);
		for (size_t k = 0; k < n; k++) {
			if (json_object_get(have, held[k]))
				continue;
			r = reconcile_one(a, held[k], 0, svcs->kvs[i].key,
					  svcs->kvs[i].mod_revision, value, err);
			if (r < 0)
				goto out;
			restored += r;
		}
	}
	r = 0;
	if (freed || restored)
		log_info("publish: allocations: %u held by services gone freed, %u of existing "
			 "services reserved",
			 freed, restored);
out:
	json_decref(by_id);
	json_decref(recs);
	json_decref(have);
	store_kvs_free(vips);
	store_kvs_free(ports);
	store_kvs_free(svcs);
	return r;
}
