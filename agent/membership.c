// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/membership.h"
#include "agent/node-cache.h"
#include "agent/store/store.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

/* The port managers would talk on; shown in ManagerStatus.Addr as swarm does
 * (shoal's nodes talk through the store, not to each other). */
#define MEMBERSHIP_MANAGER_PORT 2377

struct membership {
	int64_t lease;
	struct store_lease_keeper *keeper;
	struct store_watch *alive_w, *leader_w, *nodes_w;
	/* every node's record and liveness, from the watches: a pass of the
	 * manager reads no node record from the store */
	struct node_cache *nodes;
	int64_t started;
	char leader[128];
	bool leading;
	bool lost;	   /* the lease is gone: register again */
	bool watch_broken; /* a watch ended: read again and watch anew */
	bool store_down;   /* logged once per outage */
	struct event *tick;
};

static struct membership *ms(struct agent *a)
{
	return a->membership;
}

static const char *node_addr(struct agent *a)
{
	return a->cfg.advertise_addr ? a->cfg.advertise_addr : "127.0.0.1";
}

static bool is_manager(struct agent *a)
{
	return strcmp(a->cfg.role, "manager") == 0;
}

/* --node-label K=V as an object. */
static json_t *node_labels(struct agent *a)
{
	json_t *o = json_object();
	for (char **l = a->cfg.node_labels; l && *l; l++) {
		const char *eq = strchr(*l, '=');
		char k[512];
		snprintf(k, sizeof(k), "%.*s", (int)(eq - *l), *l);
		json_object_set_new(o, k, json_string(eq + 1));
	}
	return o;
}

/* The node's record: created with its spec (role, the labels given at the
 * first start, active), refreshed at every start with what the node is. */
static int node_register(struct agent *a, struct shoal_err *err)
{
	char key[128], now[40];
	snprintf(key, sizeof(key), "%s%s", CLUSTER_NODES, a->node_id);
	format_rfc3339(now_ns(), now);
	struct sysinfo si;
	sysinfo(&si);
	struct utsname u;
	uname(&u);
	for (int attempt = 0; attempt < 5; attempt++) {
		json_t *n = NULL;
		int64_t rev = 0;
		int r = cluster_get(a, key, &n, &rev, NULL);
		if (r < 0) {
			rev = 0;
			n = json_pack("{s:s, s:s, s:{s:s, s:o, s:s}}", "ID", a->node_id,
				      "CreatedAt", now, "Spec", "Name", "", "Labels",
				      node_labels(a), "Availability", "active");
		}
		json_t *spec = json_object_get(n, "Spec");
		if (json_is_object(spec))
			json_object_set_new(spec, "Role", json_string(a->cfg.role));
		json_object_set_new(n, "UpdatedAt", json_string(now));
		json_object_set_new(
			n, "Description",
			json_pack("{s:s, s:{s:s, s:s}, s:{s:I, s:I}, s:{s:s, s:o}}", "Hostname",
				  a->hostname, "Platform", "Architecture", u.machine, "OS", "linux",
				  "Resources", "NanoCPUs",
				  (json_int_t)sysconf(_SC_NPROCESSORS_ONLN) * 1000000000LL,
				  "MemoryBytes", (json_int_t)si.totalram * si.mem_unit, "Engine",
				  "EngineVersion", SHOAL_VERSION, "Labels", node_labels(a)));
		json_object_set_new(
			n, "Status",
			json_pack("{s:s, s:s}", "State", "ready", "Addr", node_addr(a)));
		if (is_manager(a)) {
			char maddr[64];
			snprintf(maddr, sizeof(maddr), "%s:%d", node_addr(a),
				 MEMBERSHIP_MANAGER_PORT);
			json_object_set_new(n, "ManagerStatus",
					    json_pack("{s:s, s:s}", "Reachability", "reachable",
						      "Addr", maddr));
		} else {
			json_object_del(n, "ManagerStatus");
		}
		r = cluster_put(a, key, n, rev, NULL, err);
		json_decref(n);
		if ((r == -ENOSPC || r == -EDQUOT) && rev > 0) {
			/* a full data disk must not keep the agent from serving
			 * (and stopping what filled it): the record it has stays */
			log_warn("membership: node record not refreshed: %s", err ? err->msg : "");
			if (err)
				shoal_err_clear(err);
			return 0;
		}
		if (r != -EAGAIN)
			return r;
	}
	return shoal_err_set(err, EAGAIN, "registering node %s: the store kept changing",
			     a->node_id);
}

static void set_leader(struct agent *a, const char *id)
{
	struct membership *m = ms(a);
	bool was = m->leading;
	snprintf(m->leader, sizeof(m->leader), "%s", id ? id : "");
	node_cache_set_leader(m->nodes, m->leader);
	m->leading = id && strcmp(id, a->node_id) == 0 && !m->lost;
	if (m->leading != was) {
		if (m->leading)
			log_info("membership: this node leads the cluster");
		else
			log_warn("membership: this node no longer leads the cluster%s%s",
				 m->leader[0] ? "; the leader is " : "", m->leader);
		cluster_kick(a);
	}
}

/* The leadership this node held before a restart, on a lease of its previous
 * life that would expire under it: moved onto the current lease, unless it
 * changed hands since it was read. */
static void reclaim(struct agent *a, int64_t mod_rev)
{
	struct membership *m = ms(a);
	struct store_cmp cmp = {
		.key = CLUSTER_LEADER, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = mod_rev};
	struct store_op put = {.type = STORE_OP_PUT,
			       .key = CLUSTER_LEADER,
			       .value = a->node_id,
			       .value_len = strlen(a->node_id),
			       .lease = m->lease};
	struct store_txn_result res = {0};
	struct shoal_err err = {0};
	if (store_txn(a->store, &cmp, 1, &put, 1, NULL, 0, &res, &err) < 0)
		log_debug("membership: taking the leadership back: %s", err.msg);
	else if (res.succeeded)
		set_leader(a, a->node_id);
	store_txn_result_clear(&res);
}

/* Takes the leadership if it is free (a manager only). */
static void campaign(struct agent *a)
{
	struct membership *m = ms(a);
	if (!is_manager(a) || m->lost || !m->lease)
		return;
	struct store_cmp cmp = {
		.key = CLUSTER_LEADER, .target = STORE_CMP_CREATE, .op = STORE_CMP_EQ, .num = 0};
	struct store_op put = {.type = STORE_OP_PUT,
			       .key = CLUSTER_LEADER,
			       .value = a->node_id,
			       .value_len = strlen(a->node_id),
			       .lease = m->lease};
	struct store_op get = {.type = STORE_OP_GET, .key = CLUSTER_LEADER};
	struct store_txn_result res = {0};
	struct shoal_err err = {0};
	if (store_txn(a->store, &cmp, 1, &put, 1, &get, 1, &res, &err) < 0) {
		log_debug("membership: campaigning: %s", err.msg);
		return;
	}
	if (res.succeeded) {
		set_leader(a, a->node_id);
	} else if (res.n_gets == 1 && res.gets[0].n == 1) {
		const struct store_kv *kv = &res.gets[0].kvs[0];
		if (strcmp(kv->value, a->node_id) == 0 && kv->lease != m->lease)
			reclaim(a, kv->mod_revision);
		else
			set_leader(a, kv->value);
	}
	store_txn_result_clear(&res);
}

static void lease_lost_cb(int64_t id, const struct shoal_err *err, void *userdata)
{
	struct agent *a = userdata;
	struct membership *m = ms(a);
	log_warn("membership: %s; registering the node again", err ? err->msg : "lease lost");
	m->lost = true;
	set_leader(a, m->leader); /* not leading on a lost lease */
	event_active(m->tick, EV_TIMEOUT, 0);
}

/* A new lease, the liveness key on it, and a keeper renewing it. */
static int register_live(struct agent *a, struct shoal_err *err)
{
	struct membership *m = ms(a);
	if (m->keeper) {
		store_lease_keeper_stop(m->keeper);
		m->keeper = NULL;
	}
	int64_t lease = 0;
	int r = store_lease_grant(a->store, a->cfg.node_ttl_s, &lease, err);
	if (r < 0)
		return shoal_err_wrap(err, "granting the node's lease");
	char key[128], now[40];
	snprintf(key, sizeof(key), "%s%s", CLUSTER_ALIVE, a->node_id);
	format_rfc3339(now_ns(), now);
	json_t *v = json_pack("{s:s, s:s, s:s}", "Addr", node_addr(a), "Since", now, "Role",
			      a->cfg.role);
	_cleanup_free_ char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!s)
		return shoal_err_set(err, ENOMEM, "out of memory");
	r = store_put(a->store, key, s, strlen(s), lease, NULL, err);
	if (r < 0) {
		store_lease_revoke(a->store, lease, NULL);
		return shoal_err_wrap(err, "writing the node's liveness");
	}
	r = store_lease_keep(a->store, lease, a->cfg.node_ttl_s, lease_lost_cb, a, &m->keeper, err);
	if (r < 0) {
		store_lease_revoke(a->store, lease, NULL);
		return r;
	}
	m->lease = lease;
	m->lost = false;
	return 0;
}

/* 1 when the node came up or went down, 0 when not, -errno. */
static int alive_apply(struct membership *m, const struct store_kv *kv, bool put)
{
	const char *id = kv->key + strlen(CLUSTER_ALIVE);
	if (!*id)
		return 0;
	int r = put ? node_cache_alive_put(m->nodes, id)
		    : node_cache_alive_del(m->nodes, id, now_ns());
	if (r < 0)
		log_warn("membership: node %.12s's liveness not kept: %s", id, strerror(-r));
	return r;
}

static void record_apply(struct membership *m, const struct store_kv *kv, bool put)
{
	const char *id = kv->key + strlen(CLUSTER_NODES);
	if (!*id)
		return;
	if (!put) {
		node_cache_record_del(m->nodes, id);
		return;
	}
	int r = node_cache_record_put(m->nodes, id, kv->value, kv->value_len, kv->mod_revision);
	if (r == -EBADMSG)
		log_warn("store: %s is not a JSON object; skipped", kv->key);
	else if (r < 0)
		log_warn("membership: node record %s not kept: %s", kv->key, strerror(-r));
}

static void alive_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
		     void *userdata)
{
	struct agent *a = userdata;
	struct membership *m = ms(a);
	if (err) {
		m->watch_broken = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool up = ev[i].type == STORE_EVENT_PUT;
		if (alive_apply(m, &ev[i].kv, up) > 0)
			log_info("membership: node %.12s is %s",
				 ev[i].kv.key + strlen(CLUSTER_ALIVE), up ? "up" : "down");
	}
	cluster_kick(a);
}

static void nodes_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
		     void *userdata)
{
	struct agent *a = userdata;
	struct membership *m = ms(a);
	if (err) {
		m->watch_broken = true;
		return;
	}
	uint64_t gen = node_cache_generation(m->nodes);
	for (size_t i = 0; i < n; i++)
		record_apply(m, &ev[i].kv, ev[i].type == STORE_EVENT_PUT);
	if (node_cache_generation(m->nodes) != gen)
		cluster_kick(a);
}

static void leader_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
		      void *userdata)
{
	struct agent *a = userdata;
	struct membership *m = ms(a);
	if (err) {
		m->watch_broken = true;
		return;
	}
	const struct store_event *last = &ev[n - 1];
	if (last->type == STORE_EVENT_PUT) {
		set_leader(a, last->kv.value);
	} else {
		set_leader(a, NULL);
		campaign(a); /* free: whoever asks first leads */
	}
}

/* Reads the node records, the liveness and the leader, and watches each from
 * there: read once, then kept from the events; read again only when a watch
 * ended (its revision was compacted, the store went away). */
static int watch_all(struct agent *a, struct shoal_err *err)
{
	struct membership *m = ms(a);
	if (m->alive_w)
		store_watch_cancel(m->alive_w);
	if (m->leader_w)
		store_watch_cancel(m->leader_w);
	if (m->nodes_w)
		store_watch_cancel(m->nodes_w);
	m->alive_w = m->leader_w = m->nodes_w = NULL;
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, CLUSTER_NODES, true, 0, &kvs, err);
	if (r < 0)
		return r;
	node_cache_reload_begin(m->nodes, NODE_CACHE_RECORDS);
	for (size_t i = 0; i < kvs->n; i++)
		record_apply(m, &kvs->kvs[i], true);
	node_cache_reload_end(m->nodes, NODE_CACHE_RECORDS, now_ns());
	int64_t rev = kvs->revision;
	store_kvs_free(kvs);
	r = store_watch(a->store, CLUSTER_NODES, true, rev + 1, nodes_cb, a, &m->nodes_w, err);
	if (r < 0)
		return r;
	r = store_get(a->store, CLUSTER_ALIVE, true, 0, &kvs, err);
	if (r < 0)
		return r;
	node_cache_reload_begin(m->nodes, NODE_CACHE_ALIVE);
	for (size_t i = 0; i < kvs->n; i++)
		alive_apply(m, &kvs->kvs[i], true);
	node_cache_reload_end(m->nodes, NODE_CACHE_ALIVE, now_ns());
	rev = kvs->revision;
	store_kvs_free(kvs);
	r = store_watch(a->store, CLUSTER_ALIVE, true, rev + 1, alive_cb, a, &m->alive_w, err);
	if (r < 0)
		return r;
	r = store_get(a->store, CLUSTER_LEADER, false, 0, &kvs, err);
	if (r < 0)
		return r;
	set_leader(a, kvs->n ? kvs->kvs[0].value : NULL);
	rev = kvs->revision;
	store_kvs_free(kvs);
	r = store_watch(a->store, CLUSTER_LEADER, false, rev + 1, leader_cb, a, &m->leader_w, err);
	if (r < 0)
		return r;
	m->watch_broken = false;
	cluster_kick(a);
	return 0;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct membership *m = ms(a);
	struct shoal_err err = {0};
	if (m->lost) {
		if (register_live(a, &err) < 0) {
			log_debug("membership: %s", err.msg);
			return;
		}
		log_info("membership: the node is registered again");
		shoal_err_clear(&err);
		m->watch_broken = true;
	}
	if (m->watch_broken && watch_all(a, &err) < 0) {
		log_debug("membership: watching the nodes: %s", err.msg);
		return;
	}
	/* Silent store: past two thirds of the TTL without a renewal the lease
	 * may be about to expire; a leader steps down before anyone could take
	 * over, and takes the lead again once the store answers. */
	int64_t quiet = now_ns() - store_lease_keeper_renewed_ns(m->keeper);
	bool ok = quiet < (int64_t)a->cfg.node_ttl_s * 1000000000LL * 2 / 3;
	if (!ok && !m->store_down) {
		log_warn("membership: no answer from the store for %lld ms%s",
			 (long long)(quiet / 1000000),
			 m->leading ? ": stepping down as leader" : "");
		m->store_down = true;
		if (m->leading) {
			m->leading = false;
			cluster_kick(a);
		}
	} else if (ok && m->store_down) {
		log_info("membership: the store answers again");
		m->store_down = false;
		set_leader(a, m->leader);
	}
	if (ok && !m->leader[0])
		campaign(a);
}

int membership_start(struct agent *a, struct shoal_err *err)
{
	struct membership *m = calloc(1, sizeof(*m));
	if (!m)
		return shoal_err_set(err, ENOMEM, "out of memory");
	a->membership = m;
	m->nodes = node_cache_new();
	m->started = now_ns();
	m->tick = event_new(a->base, -1, EV_PERSIST, tick_cb, a);
	if (!m->nodes || !m->tick)
		return shoal_err_set(err, ENOMEM, "out of memory");
	int r = node_register(a, err);
	if (r < 0)
		return r;
	if ((r = register_live(a, err)) < 0 || (r = watch_all(a, err)) < 0)
		return r;
	campaign(a);
	int64_t ms_ = a->cfg.node_ttl_s * 1000 / 6;
	struct timeval tv = {ms_ / 1000, (ms_ % 1000) * 1000};
	event_add(m->tick, &tv);
	return 0;
}

void membership_stop(struct agent *a)
{
	struct membership *m = ms(a);
	if (!m)
		return;
	if (m->leading && a->store) {
		struct store_cmp cmp = {.key = CLUSTER_LEADER,
					.target = STORE_CMP_VALUE,
					.op = STORE_CMP_EQ,
					.value = a->node_id,
					.value_len = strlen(a->node_id)};
		struct store_op del = {.type = STORE_OP_DELETE, .key = CLUSTER_LEADER};
		struct store_txn_result res = {0};
		if (store_txn(a->store, &cmp, 1, &del, 1, NULL, 0, &res, NULL) == 0 &&
		    res.succeeded)
			log_info("membership: leadership handed back");
		store_txn_result_clear(&res);
	}
	if (m->tick)
		event_free(m->tick);
	if (m->alive_w)
		store_watch_cancel(m->alive_w);
	if (m->leader_w)
		store_watch_cancel(m->leader_w);
	if (m->nodes_w)
		store_watch_cancel(m->nodes_w);
	if (m->keeper)
		store_lease_keeper_stop(m->keeper);
	node_cache_free(m->nodes);
	free(m);
	a->membership = NULL;
}

bool membership_is_leader(struct agent *a)
{
	return ms(a) && ms(a)->leading;
}

const char *membership_leader(struct agent *a)
{
	return ms(a) ? ms(a)->leader : "";
}

bool membership_alive(struct agent *a, const char *node_id)
{
	return ms(a) && node_cache_alive(ms(a)->nodes, node_id);
}

int64_t membership_down_since(struct agent *a, const char *node_id)
{
	if (!ms(a) || membership_alive(a, node_id))
		return 0;
	int64_t t = node_cache_down_since(ms(a)->nodes, node_id);
	return t ? t : ms(a)->started;
}

bool membership_store_ok(struct agent *a)
{
	return ms(a) && !ms(a)->store_down && !ms(a)->lost;
}

void membership_decorate(struct agent *a, json_t *node)
{
	if (ms(a))
		node_cache_decorate(ms(a)->nodes, node);
}

json_t *membership_nodes(struct agent *a)
{
	return ms(a) ? node_cache_list(ms(a)->nodes) : NULL;
}

uint64_t membership_nodes_generation(struct agent *a)
{
	return ms(a) ? node_cache_generation(ms(a)->nodes) : 0;
}
