// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/network-ipam.h"
#include "agent/networks.h"
#include "agent/overlay-agent.h"
#include "agent/overlay-ipam.h"
#include "agent/publish.h"
#include "agent/store/store.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/task.h"

/* A reservation whose network object never came (its creator died between
 * the two writes) is given back after this long. */
#define NET_ORPHAN_NS (30LL * 1000000000)
#define NET_NAME_MAX  128

/* ---- the node's networks ---- */

static const char *const local_names[] = {"bridge", "host", "none"};

static void local_id(struct agent *a, const char *name, char out[65])
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s/network/%s", a->node_id, name);
	sha256_hex(buf, strlen(buf), out);
}

static json_t *local_network(struct agent *a, const char *name)
{
	char id[65];
	local_id(a, name, id);
	bool bridge = strcmp(name, "bridge") == 0;
	json_t *config = json_array(), *containers = json_object();
	if (bridge) {
		struct net_cidr c;
		char gw[20] = "";
		if (net_cidr_parse("", a->cfg.bridge_subnet, &c, NULL) == 0) {
			struct net_cidr g = {.addr = c.addr + 1, .prefix = 32};
			net_cidr_format(&g, gw, sizeof(gw));
			*strchr(gw, '/') = '\0';
		}
		json_array_append_new(config, json_pack("{s:s, s:s}", "Subnet",
							a->cfg.bridge_subnet, "Gateway", gw));
	}
	for (struct container *c = a->containers; c; c = c->next) {
		if (strcmp(c->net_mode, name) != 0 || c->state != CONTAINER_RUNNING)
			continue;
		char ip[40] = "", mac[18] = "";
		if (c->net_attached) {
			struct net_cidr h = {.addr = ntohl(c->ip.s_addr), .prefix = c->prefixlen};
			net_cidr_format(&h, ip, sizeof(ip));
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->mac[0],
				 c->mac[1], c->mac[2], c->mac[3], c->mac[4], c->mac[5]);
		}
		json_object_set_new(containers, c->id,
				    json_pack("{s:s, s:s, s:s, s:s}", "Name", c->name, "MacAddress",
					      mac, "IPv4Address", ip, "IPv6Address", ""));
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:s, s:n, s:o}, s:b, s:b, s:b, "
			 "s:{s:s}, s:b, s:o, s:{}, s:{}}",
			 "Name", name, "Id", id, "Created", "0001-01-01T00:00:00Z", "Scope",
			 "local", "Driver",
			 bridge			     ? "bridge"
			 : strcmp(name, "host") == 0 ? "host"
						     : "null",
			 "EnableIPv6", 0, "IPAM", "Driver", "default", "Options", "Config", config,
			 "Internal", 0, "Attachable", 0, "Ingress", 0, "ConfigFrom", "Network", "",
			 "ConfigOnly", 0, "Containers", containers, "Options", "Labels");
}

bool network_of_mode(struct agent *a, const char *mode, char id[65], const char **ret_name,
		     const char **ret_driver)
{
	for (size_t i = 0; i < ARRAY_SIZE(local_names); i++)
		if (strcmp(mode, local_names[i]) == 0) {
			local_id(a, mode, id);
			*ret_name = local_names[i];
			*ret_driver = i == 0 ? "bridge" : i == 1 ? "host" : "null";
			return true;
		}
	if (!overlay_net_mode(mode))
		return false;
	snprintf(id, 65, "%s", mode);
	*ret_name = overlay_network_name(a, mode) ?: mode;
	*ret_driver = "overlay";
	return true;
}

/* ---- the reservation record ---- */

static int record_get(struct agent *a, json_t **ret, int64_t *rev, struct shoal_err *err)
{
	int r = cluster_get(a, CLUSTER_NET_RECORD, ret, rev, err);
	if (r == -ENOENT) {
		if (err)
			shoal_err_clear(err);
		*ret = json_object();
		*rev = 0;
		return 0;
	}
	return r;
}

/* Names: {"NAME": {"ID": ID, "At": NS}}. */
static json_t *record_names(json_t *rec)
{
	json_t *n = json_object_get(rec, "Names");
	if (!json_is_object(n)) {
		n = json_object();
		json_object_set_new(rec, "Names", n);
	}
	return n;
}

/* The record without id's reservations. */
static json_t *record_drop(json_t *rec, const char *id)
{
	json_t *out = net_ipam_release(rec, id);
	json_t *names = record_names(out);
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(names, tmp, k, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "ID")) ?: "", id) == 0)
			json_object_del(names, k);
	}
	return out;
}

/* Gives back reservations left by creators that died before storing the
 * network (older than NET_ORPHAN_NS, no object). */
static json_t *record_sweep(struct agent *a, json_t *rec, bool *changed)
{
	json_t *out = json_incref(rec);
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(rec, "Names"), k, v)
	{
		const char *id = json_string_value(json_object_get(v, "ID"));
		int64_t at = json_integer_value(json_object_get(v, "At"));
		if (!id || now_ns() - at < NET_ORPHAN_NS)
			continue;
		char key[160];
		snprintf(key, sizeof(key), "%s%s", CLUSTER_NETWORKS, id);
		json_t *o = NULL;
		if (cluster_get(a, key, &o, NULL, NULL) == -ENOENT) {
			log_info("network %s: a reservation without a network, given back", k);
			json_t *n = record_drop(out, id);
			json_decref(out);
			out = n;
			*changed = true;
		}
		json_decref(o);
	}
	return out;
}

/* ---- create ---- */

static const char *const known_create[] = {
	"Name",	    "CheckDuplicate", "Driver",	 "Scope",      "EnableIPv6", "EnableIPv4", "IPAM",
	"Internal", "Attachable",     "Ingress", "ConfigOnly", "ConfigFrom", "Options",	   "Labels",
};

static bool zero(json_t *v)
{
	return !v || json_is_null(v) || json_is_false(v) ||
	       (json_is_string(v) && !json_string_length(v)) ||
	       (json_is_object(v) && !json_object_size(v)) ||
	       (json_is_array(v) && !json_array_size(v));
}

static int check_body(json_t *body, const char **ret_subnet, const char **ret_gw, uint32_t *ret_vni,
		      int64_t *ret_mtu, struct shoal_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(known_create) && !known; i++)
			known = strcmp(k, known_create[i]) == 0;
		if (!known && !zero(v))
			return shoal_err_set_status(err, 400, EINVAL,
						    "%s: not supported by shoal; leave it out", k);
	}
	const char *name = json_string_value(json_object_get(body, "Name"));
	if (!name || !*name)
		return shoal_err_set_status(err, 400, EINVAL, "Name: required");
	bool good = strlen(name) <= NET_NAME_MAX;
	for (const char *q = name; *q && good; q++)
		good = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		       (*q >= '0' && *q <= '9') || (q > name && strchr("_.-", *q));
	if (!good)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"Name: \"%s\" is not a valid network name: up to %d characters of "
			"[a-zA-Z0-9][a-zA-Z0-9_.-]",
			name, NET_NAME_MAX);
	for (size_t i = 0; i < ARRAY_SIZE(local_names); i++)
		if (strcmp(name, local_names[i]) == 0)
			return shoal_err_set_status(
				err, 409, EEXIST,
				"network with name %s already exists (the node's own)", name);
	const char *driver = json_string_value(json_object_get(body, "Driver"));
	if (driver && *driver && strcmp(driver, "overlay") != 0)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"Driver: \"%s\" is not supported by shoal: networks are overlay networks "
			"(-d overlay); the node's bridge, host and none are there already",
			driver);
	const char *scope = json_string_value(json_object_get(body, "Scope"));
	if (scope && *scope && strcmp(scope, "swarm") != 0)
		return shoal_err_set_status(err, 400, EINVAL,
					    "Scope: an overlay network's scope is swarm");
	if (json_is_true(json_object_get(body, "EnableIPv6")))
		return shoal_err_set_status(err, 400, EINVAL,
					    "EnableIPv6: IPv6 networks are not supported by shoal");
	json_t *v4 = json_object_get(body, "EnableIPv4");
	if (v4 && json_is_false(v4))
		return shoal_err_set_status(err, 400, EINVAL,
					    "EnableIPv4: a network without IPv4 is not supported");
	const char *bools[] = {"Internal", "Attachable", "Ingress", "ConfigOnly", "CheckDuplicate"};
	for (size_t i = 0; i < ARRAY_SIZE(bools); i++) {
		json_t *b = json_object_get(body, bools[i]);
		if (b && !json_is_boolean(b) && !json_is_null(b))
			return shoal_err_set_status(err, 400, EINVAL, "%s: expected true or false",
						    bools[i]);
	}
	if (json_is_true(json_object_get(body, "ConfigOnly")))
		return shoal_err_set_status(err, 400, EINVAL, "ConfigOnly: not supported by shoal");
	if (json_is_true(json_object_get(body, "Ingress")) &&
	    (json_is_true(json_object_get(body, "Attachable")) ||
	     json_is_true(json_object_get(body, "Internal"))))
		return shoal_err_set_status(
			err, 400, EINVAL,
			"Ingress: an ingress network cannot be %s: it carries the routing mesh "
			"of published ports, to services only",
			json_is_true(json_object_get(body, "Attachable")) ? "attachable"
									  : "internal");
	json_t *ipam = json_object_get(body, "IPAM");
	if (ipam && !json_is_null(ipam)) {
		if (!json_is_object(ipam))
			return shoal_err_set_status(err, 400, EINVAL, "IPAM: expected an object");
		json_object_foreach(ipam, k, v)
		{
			if (strcmp(k, "Config") == 0)
				continue;
			if (strcmp(k, "Driver") == 0 && json_is_string(v) &&
			    (!json_string_length(v) ||
			     strcmp(json_string_value(v), "default") == 0))
				continue;
			if (!zero(v))
				return shoal_err_set_status(err, 400, EINVAL,
							    "IPAM.%s: not supported by shoal", k);
		}
		json_t *cfg = json_object_get(ipam, "Config");
		if (json_array_size(cfg) > 1)
			return shoal_err_set_status(err, 400, EINVAL,
						    "IPAM.Config: one subnet per network");
		json_t *c0 = json_array_get(cfg, 0);
		json_object_foreach(c0, k, v)
		{
			if (strcmp(k, "Subnet") == 0 || strcmp(k, "Gateway") == 0) {
				if (!json_is_string(v))
					return shoal_err_set_status(
						err, 400, EINVAL,
						"IPAM.Config[0].%s: expected a string", k);
				continue;
			}
			if (!zero(v))
				return shoal_err_set_status(
					err, 400, EINVAL,
					"IPAM.Config[0].%s: not supported by shoal", k);
		}
		const char *s = json_string_value(json_object_get(c0, "Subnet"));
		const char *g = json_string_value(json_object_get(c0, "Gateway"));
		*ret_subnet = s && *s ? s : NULL;
		*ret_gw = g && *g ? g : NULL;
		if (*ret_gw && !*ret_subnet)
			return shoal_err_set_status(err, 400, EINVAL,
						    "IPAM.Config[0].Gateway: give the Subnet too");
	}
	json_t *opts = json_object_get(body, "Options");
	if (opts && !json_is_null(opts) && !json_is_object(opts))
		return shoal_err_set_status(err, 400, EINVAL, "Options: expected an object");
	json_object_foreach(opts, k, v)
	{
		const char *s = json_string_value(v);
		char *end = NULL;
		long long n = s ? strtoll(s, &end, 10) : -1;
		bool num = s && *s && end && !*end;
		if (strcmp(k, "vni") == 0 ||
		    strcmp(k, "com.docker.network.driver.overlay.vxlanid_list") == 0) {
			if (!num || n < 1 || n > NET_VNI_LAST)
				return shoal_err_set_status(err, 400, EINVAL,
							    "Options.%s: a VXLAN id from 1 to %u",
							    k, NET_VNI_LAST);
			*ret_vni = (uint32_t)n;
		} else if (strcmp(k, "mtu") == 0 ||
			   strcmp(k, "com.docker.network.driver.mtu") == 0) {
			if (!num || n < 576 || n > 65535)
				return shoal_err_set_status(err, 400, EINVAL,
							    "Options.%s: an MTU from 576 to 65535",
							    k);
			*ret_mtu = n;
		} else if (strcmp(k, "encrypted") == 0) {
			/* the design is in README ("Encryption"); no fake */
			return shoal_err_set_status(
				err, 400, EINVAL,
				"Options.encrypted: encrypted overlay networks are not supported "
				"by shoal yet (they need IPsec ESP or WireGuard in the kernel)");
		} else {
			return shoal_err_set_status(err, 400, EINVAL,
						    "Options.%s: not supported by shoal (vni, mtu)",
						    k);
		}
	}
	json_t *labels = json_object_get(body, "Labels");
	if (labels && !json_is_null(labels)) {
		if (!json_is_object(labels))
			return shoal_err_set_status(err, 400, EINVAL, "Labels: expected an object");
		json_object_foreach(labels, k, v) if (
			!json_is_string(
				v)) return shoal_err_set_status(err, 400, EINVAL,
								"Labels.%s: expected a string", k);
	}
	return 0;
}

static bool is_worker(struct agent *a)
{
	return a->cfg.role && strcmp(a->cfg.role, "worker") == 0;
}

int network_create(struct agent *a, json_t *body, json_t **ret, struct shoal_err *err)
{
	const char *subnet = NULL, *gw = NULL;
	uint32_t vni = 0;
	int64_t mtu = 0;
	if (is_worker(a))
		return shoal_err_set_status(
			err, 503, EPERM,
			"Cannot create a multi-host network from a worker node. "
			"Please create the network from a manager node.");
	int r = check_body(body, &subnet, &gw, &vni, &mtu, err);
	if (r < 0)
		return r;
	const char *name = json_string_value(json_object_get(body, "Name"));
	bool ingress = json_is_true(json_object_get(body, "Ingress"));
	char hex[65], id[26];
	if ((r = random_hex_id(hex)) < 0)
		return shoal_err_errno(err, -r, "naming the network");
	memcpy(id, hex, 25);
	id[25] = '\0';
	const char *avoid[] = {a->cfg.bridge_subnet, NULL};
	struct net_alloc al;
	/* the reservation first: a network is stored only with its subnet held */
	for (int attempt = 0;; attempt++) {
		json_t *rec = NULL;
		int64_t rev = 0;
		if ((r = record_get(a, &rec, &rev, err)) < 0)
			return r;
		bool swept = false;
		json_t *cur = record_sweep(a, rec, &swept);
		json_decref(rec);
		json_t *have = json_object_get(record_names(cur), name);
		if (have) {
			json_decref(cur);
			return shoal_err_set_status(err, 409, EEXIST,
						    "network with name %s already exists", name);
		}
		const char *k;
		json_t *v;
		json_object_foreach(record_names(cur), k, v)
		{
			if (!ingress || !json_is_true(json_object_get(v, "Ingress")))
				continue;
			r = shoal_err_set_status(
				err, 409, EEXIST,
				"network %s is the ingress network already: there is "
				"one (remove it first to make another)",
				k);
			json_decref(cur);
			return r;
		}
		struct net_alloc_req req = {.network_id = id,
					    .subnet = subnet,
					    .gateway = gw,
					    .vni = vni,
					    .avoid = avoid};
		json_t *next = NULL;
		r = net_ipam_alloc(cur, &req, &next, &al, err);
		json_decref(cur);
		if (r < 0)
			return r;
		json_object_set_new(record_names(next), name,
				    json_pack("{s:s, s:I, s:b}", "ID", id, "At",
					      (json_int_t)now_ns(), "Ingress", ingress));
		r = cluster_put(a, CLUSTER_NET_RECORD, next, rev, NULL, err);
		json_decref(next);
		if (r == 0)
			break;
		if (r != -EAGAIN || attempt >= 20)
			return r;
		shoal_err_clear(err);
	}
	char now[40], vni_s[16], mtu_s[16], key[160];
	format_rfc3339(now_ns(), now);
	snprintf(vni_s, sizeof(vni_s), "%u", al.vni);
	json_t *opts = json_pack("{s:s}", "com.docker.network.driver.overlay.vxlanid_list", vni_s);
	if (mtu) {
		snprintf(mtu_s, sizeof(mtu_s), "%lld", (long long)mtu);
		json_object_set_new(opts, "com.docker.network.driver.mtu", json_string(mtu_s));
	}
	json_t *labels = json_object_get(body, "Labels");
	json_t *net = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:s, s:n, s:[{s:s, s:s}]}, s:b, s:b, s:b, "
		"s:{s:s}, s:b, s:{}, s:o, s:O}",
		"Name", name, "Id", id, "Created", now, "Scope", "swarm", "Driver", "overlay",
		"EnableIPv6", 0, "IPAM", "Driver", "default", "Options", "Config", "Subnet",
		al.subnet, "Gateway", al.gateway, "Internal",
		json_is_true(json_object_get(body, "Internal")), "Attachable",
		json_is_true(json_object_get(body, "Attachable")), "Ingress", ingress, "ConfigFrom",
		"Network", "", "ConfigOnly", 0, "Containers", "Options", opts, "Labels",
		json_is_object(labels) ? labels : json_object());
	snprintf(key, sizeof(key), "%s%s", CLUSTER_NETWORKS, id);
	r = net ? cluster_put(a, key, net, 0, NULL, err)
		: shoal_err_set(err, ENOMEM, "out of memory");
	json_decref(net);
	if (r < 0) {
		/* give the reservation back (else the sweep does, later) */
		for (int attempt = 0; attempt < 5; attempt++) {
			json_t *rec = NULL;
			int64_t rev = 0;
			if (record_get(a, &rec, &rev, NULL) < 0)
				break;
			json_t *next = record_drop(rec, id);
			json_decref(rec);
			int pr = cluster_put(a, CLUSTER_NET_RECORD, next, rev, NULL, NULL);
			json_decref(next);
			if (pr != -EAGAIN)
				break;
		}
		return r;
	}
	log_info("network %s (%s) created: %s, vni %u%s", name, id, al.subnet, al.vni,
		 ingress ? " (the ingress network)" : "");
	*ret = json_pack("{s:s, s:s}", "Id", id, "Warning", "");
	return 0;
}

/* ---- read ---- */

int network_list(struct agent *a, json_t **ret, struct shoal_err *err)
{
	json_t *out = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(local_names); i++)
		json_array_append_new(out, local_network(a, local_names[i]));
	json_t *nets = NULL;
	int r = cluster_list(a, CLUSTER_NETWORKS, &nets, err);
	if (r < 0) {
		json_decref(out);
		return r;
	}
	size_t i;
	json_t *n;
	json_array_foreach(nets, i, n)
	{
		json_object_del(n, "Version");
		json_array_append(out, n);
	}
	json_decref(nets);
	*ret = out;
	return 0;
}

int network_get(struct agent *a, const char *ref, json_t **ret, struct shoal_err *err)
{
	json_t *all = NULL;
	int r = network_list(a, &all, err);
	if (r < 0)
		return r;
	json_t *found = NULL;
	size_t i, prefix_hits = 0;
	json_t *n;
	/* a full id, then a name, then a unique id prefix */
	json_array_foreach(all, i,
			   n) if (!found && strcmp(json_string_value(json_object_get(n, "Id")),
						   ref) == 0) found = n;
	json_array_foreach(all, i,
			   n) if (!found && strcmp(json_string_value(json_object_get(n, "Name")),
						   ref) == 0) found = n;
	json_t *pfx = NULL;
	json_array_foreach(all, i, n)
	{
		if (!found && *ref &&
		    strncmp(json_string_value(json_object_get(n, "Id")), ref, strlen(ref)) == 0) {
			pfx = n;
			prefix_hits++;
		}
	}
	if (!found && prefix_hits == 1)
		found = pfx;
	if (!found) {
		json_decref(all);
		if (prefix_hits > 1)
			return shoal_err_set_status(err, 400, EINVAL,
						    "network %s is ambiguous (%zu matches)", ref,
						    prefix_hits);
		return shoal_err_set_status(err, 404, ENOENT, "network %s not found", ref);
	}
	*ret = json_incref(found);
	json_decref(all);
	return 0;
}

/* ---- remove ---- */

/* Whether one of the attachments in list (a spec's Networks) targets the
 * network, by id or name. */
static bool net_attached(json_t *list, const char *id, const char *name)
{
	size_t j;
	json_t *att;
	json_array_foreach(list, j, att)
	{
		const char *t = json_string_value(json_object_get(att, "Target"));
		if (t && (strcmp(t, id) == 0 || strcmp(t, name) == 0))
			return true;
	}
	return false;
}

/* Who keeps a network: the services that still exist (not being removed)
 * whose spec attaches it, and the tasks on it still meant to run (desired
 * and observed state at most running, as swarmkit's RemoveNetwork judges).
 * A removed service's tasks being shut down do not keep it: their ids go in
 * going, so that their containers' endpoints, which stay until each has
 * stopped, are not counted either. */
struct net_users {
	json_t *services; /* names */
	json_t *tasks;	  /* ids */
	json_t *going;	  /* task id -> true */
};

static void net_users_clear(struct net_users *u)
{
	json_decref(u->services);
	json_decref(u->tasks);
	json_decref(u->going);
	*u = (struct net_users){0};
}

static bool task_meant_to_run(json_t *t)
{
	enum task_state desired, observed;
	/* "ready" (held before its start) and any name not known count as
	 * running: a task is let go only when it is surely on its way out */
	if (task_state_from_name(json_string_value(json_object_get(t, "DesiredState")) ?: "",
				 &desired) == 0 &&
	    desired > TASK_RUNNING)
		return false;
	if (task_state_from_name(
		    json_string_value(json_object_get(json_object_get(t, "Status"), "State")) ?: "",
		    &observed) == 0 &&
	    observed > TASK_RUNNING)
		return false;
	return true;
}

static int network_users(struct agent *a, json_t *net, struct net_users *ret, struct shoal_err *err)
{
	json_t *svcs = NULL, *tasks = NULL;
	if (cluster_list(a, CLUSTER_SERVICES, &svcs, err) < 0)
		return -EIO;
	if (cluster_list(a, CLUSTER_TASKS, &tasks, err) < 0) {
		json_decref(svcs);
		return -EIO;
	}
	const char *id = json_string_value(json_object_get(net, "Id"));
	const char *name = json_string_value(json_object_get(net, "Name"));
	/* the ingress network: used by every service publishing a port in
	 * ingress mode without a network of its own */
	const char *ingress = json_is_true(json_object_get(net, "Ingress")) ? id : NULL;
	struct net_users u = {json_array(), json_array(), json_object()};
	json_t *live = json_object(); /* service id -> true, not being removed */
	size_t i;
	json_t *s, *t;
	json_array_foreach(svcs, i, s)
	{
		if (json_is_true(json_object_get(s, "Removed")))
			continue;
		json_t *spec = json_object_get(s, "Spec");
		const char *sid = json_string_value(json_object_get(s, "ID"));
		if (sid)
			json_object_set_new(live, sid, json_true());
		if (net_attached(json_object_get(json_object_get(spec, "TaskTemplate"), "Networks"),
				 id, name) ||
		    net_attached(json_object_get(spec, "Networks"), id, name) ||
		    (ingress && publish_service_network(s, ingress) == ingress))
			json_array_append(u.services, json_object_get(spec, "Name"));
	}
	json_array_foreach(tasks, i, t)
	{
		const char *tid = json_string_value(json_object_get(t, "ID"));
		const char *sid = json_string_value(json_object_get(t, "ServiceID"));
		if (!tid || !net_attached(json_object_get(json_object_get(t, "Spec"), "Networks"),
					  id, name))
			continue;
		if ((sid && !json_object_get(live, sid)) || !task_meant_to_run(t))
			json_object_set_new(u.going, tid, json_true());
		else
			json_array_append_new(u.tasks, json_string(tid));
	}
	json_decref(live);
	json_decref(svcs);
	json_decref(tasks);
	if (!u.services || !u.tasks || !u.going) {
		net_users_clear(&u);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	*ret = u;
	return 0;
}

/* Whether endpoint record text is a container of a task in going: task
 * containers are named <service>.<slot or node>.<task id>. */
static bool ep_going(const char *text, size_t len, json_t *going)
{
	struct ovl_endpoint e;
	if (!json_object_size(going) || ovl_endpoint_parse(text, len, &e, NULL) < 0 ||
	    e.kind != OVL_EP_CONTAINER)
		return false;
	const char *dot = strrchr(e.name, '.');
	return dot && json_object_get(going, dot + 1);
}

/* The names of the containers (tasks' included) with an endpoint on the
 * network, on any node, from their endpoint records, but for those of the
 * tasks in going (how many of those there are in ret_going): ", "-separated
 * in buf (cut short, with "...", when they do not fit). The count, or -errno. */
static int network_endpoints(struct agent *a, const char *net_id, json_t *going, char *buf,
			     size_t len, size_t *ret_going, struct shoal_err *err)
{
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "%s%s/", OVL_ENDPOINT_PREFIX, net_id);
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, prefix, true, 0, &kvs, err);
	if (r < 0)
		return shoal_err_wrap(err, "reading the endpoints of network %s", net_id);
	const char **texts = calloc(kvs->n + 1, sizeof(*texts));
	size_t *lens = calloc(kvs->n + 1, sizeof(*lens));
	if (!texts || !lens) {
		free(texts);
		free(lens);
		store_kvs_free(kvs);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	size_t n = 0, skipped = 0;
	for (size_t i = 0; i < kvs->n; i++) {
		if (ep_going(kvs->kvs[i].value, kvs->kvs[i].value_len, going)) {
			skipped++;
			continue;
		}
		texts[n] = kvs->kvs[i].value;
		lens[n++] = kvs->kvs[i].value_len;
	}
	int count = (int)ovl_endpoint_names(texts, lens, n, buf, len);
	*ret_going = skipped;
	free(texts);
	free(lens);
	store_kvs_free(kvs);
	return count;
}

/* names (strings) ", "-separated in buf, cut short when they do not fit */
static void names_join(json_t *names, char *buf, size_t len)
{
	size_t i, off = 0;
	json_t *u;
	buf[0] = '\0';
	json_array_foreach(names, i, u) if (off < len - 64) off += (size_t)snprintf(
		buf + off, len - off, "%s%s", i ? ", " : "", json_string_value(u) ?: "");
}

int network_remove(struct agent *a, const char *ref, struct shoal_err *err)
{
	json_t *net = NULL;
	int r = network_get(a, ref, &net, err);
	if (r < 0)
		return r;
	if (strcmp(json_string_value(json_object_get(net, "Scope")), "local") == 0) {
		r = shoal_err_set_status(err, 403, EPERM,
					 "%s is a pre-defined network and cannot be removed",
					 json_string_value(json_object_get(net, "Name")));
		json_decref(net);
		return r;
	}
	if (is_worker(a)) {
		json_decref(net);
		return shoal_err_set_status(
			err, 503, EPERM,
			"Cannot remove a multi-host network from a worker node. "
			"Please remove the network from a manager node.");
	}
	struct net_users users = {0};
	if ((r = network_users(a, net, &users, err)) < 0) {
		json_decref(net);
		return r;
	}
	const char *name = json_string_value(json_object_get(net, "Name"));
	char list[512];
	if (json_array_size(users.services) || json_array_size(users.tasks)) {
		bool svcs = json_array_size(users.services) > 0;
		names_join(svcs ? users.services : users.tasks, list, sizeof(list));
		r = shoal_err_set_status(err, 409, EBUSY, "network %s is in use by %s %s", name,
					 svcs ? "service(s)" : "task(s)", list);
		net_users_clear(&users);
		json_decref(net);
		return r;
	}
	char id[64], key[160];
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(net, "Id")));
	/* containers on it, on any node (Docker's words) */
	size_t draining = 0;
	r = network_endpoints(a, id, users.going, list, sizeof(list), &draining, err);
	net_users_clear(&users);
	if (r != 0) {
		if (r > 0)
			r = shoal_err_set_status(
				err, 409, EBUSY,
				"error while removing network: network %s id %s has active "
				"endpoints (%s)",
				name, id, list);
		json_decref(net);
		return r;
	}
	json_decref(net);
	snprintf(key, sizeof(key), "%s%s", CLUSTER_NETWORKS, id);
	if ((r = cluster_delete(a, key, -1, err)) < 0 && r != -ENOENT)
		return r;
	for (int attempt = 0;; attempt++) {
		json_t *rec = NULL;
		int64_t rev = 0;
		if ((r = record_get(a, &rec, &rev, err)) < 0)
			return r;
		json_t *next = record_drop(rec, id);
		json_decref(rec);
		r = cluster_put(a, CLUSTER_NET_RECORD, next, rev, NULL, err);
		json_decref(next);
		if (r == 0)
			break;
		if (r != -EAGAIN || attempt >= 20)
			return r;
		shoal_err_clear(err);
	}
	if (draining) {
		/* the stopping tasks' nodes give back their endpoints, addresses
		 * and devices as each container goes */
		log_info("network %s removed; its tasks being shut down leave it as they stop", id);
		return 0;
	}
	/* no endpoint is left on it: an address still held is an orphan (an
	 * agent killed between taking it and recording its endpoint) */
	snprintf(key, sizeof(key), "%s%s/", OVL_ADDR_PREFIX, id);
	struct shoal_err e = {0};
	if (store_delete(a->store, key, true, NULL, &e) < 0)
		log_warn("network %s: giving its addresses back: %s", id, e.msg);
	log_info("network %s removed", id);
	return 0;
}
