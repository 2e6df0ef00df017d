// SPDX-License-Identifier: Apache-2.0
/* Overlay networks on this node: store -> desired VXLAN networks -> kernel,
 * on a worker (agent/overlay-agent.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <net/if.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/dns.h"
#include "agent/manager.h"
#include "agent/membership.h"
#include "agent/networks.h"
#include "agent/overlay-agent.h"
#include "agent/overlay-ipam.h"
#include "agent/policy-agent.h"
#include "agent/publish.h"
#include "agent/store/store.h"
#include "agent/worker.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "overlay/bridge.h"
#include "overlay/vxlan-ep.h"
#include "overlay/vxlan.h"

#include "agent/overlay-agent-internal.h"

static struct overlay_agent *oa_of(struct agent *a)
{
	return a->overlay_agent;
}

bool overlay_mesh_on(struct agent *a)
{
	struct overlay_agent *oa = oa_of(a);
	return oa && oa->mesh;
}

bool overlay_net_mode(const char *mode)
{
	return mode && *mode && strcmp(mode, "bridge") != 0 && strcmp(mode, "host") != 0 &&
	       strcmp(mode, "none") != 0 && strcmp(mode, "default") != 0;
}

/* ---- the store's view ---- */

static void net_event(struct overlay_agent *oa, const struct store_kv *kv, bool put)
{
	const char *id = kv->key + strlen(CLUSTER_NETWORKS);
	if (!*id || strchr(id, '/'))
		return;
	if (!put) {
		json_object_del(oa->nets, id);
		return;
	}
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	if (json_is_object(j))
		json_object_set(oa->nets, id, j);
	json_decref(j);
}

void oa_ep_event(struct overlay_agent *oa, const struct store_kv *kv, bool put)
{
	char net[OVL_ID_MAX + 1], ep[OVL_ID_MAX + 1];
	if (ovl_key_split(kv->key, OVL_ENDPOINT_PREFIX, net, sizeof(net), ep, sizeof(ep)) < 0)
		return;
	json_t *m = json_object_get(oa->eps, net);
	json_t *x = json_object_get(oa->ep_index, net);
	if (!put) {
		json_object_del(m, ep);
		if (m && !json_object_size(m))
			json_object_del(oa->eps, net);
		json_object_del(x, ep);
		if (x && !json_object_size(x))
			json_object_del(oa->ep_index, net);
		return;
	}
	struct ovl_endpoint e;
	struct shoal_err err = {0};
	if (ovl_endpoint_parse(kv->value, kv->value_len, &e, &err) < 0) {
		log_warn("overlay: %s: %s; ignored", kv->key, err.msg);
		return;
	}
	if (!m) {
		m = json_object();
		json_object_set_new(oa->eps, net, m);
	}
	json_object_set_new(m, ep, json_stringn(kv->value, kv->value_len));
	/* what the data plane and the DNS read on every sync and question,
	 * parsed once here */
	if (!x) {
		x = json_object();
		json_object_set_new(oa->ep_index, net, x);
	}
	json_object_set_new(x, ep,
			    json_pack("{s:I, s:s, s:s, s:b}", "IP", (json_int_t)ntohl(e.ip.s_addr),
				      "Node", e.node, "Name", e.name, "Container",
				      e.kind == OVL_EP_CONTAINER));
}

static void node_event(struct overlay_agent *oa, const struct store_kv *kv, bool put)
{
	const char *id = kv->key + strlen(CLUSTER_NODES);
	oa->vteps_dirty = true;
	if (!put) {
		json_object_del(oa->nodes, id);
		return;
	}
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	const char *addr = json_string_value(json_object_get(json_object_get(j, "Status"), "Addr"));
	struct in_addr in;
	if (addr && inet_pton(AF_INET, addr, &in) == 1)
		json_object_set_new(oa->nodes, id, json_string(addr));
	else
		json_object_del(oa->nodes, id);
	json_decref(j);
}

/* Liveness, followed here rather than read from membership at apply time:
 * this watch's own event is what makes the apply, and it must not see the
 * node alive still because membership's watch has not spoken yet. */
static void alive_event(struct overlay_agent *oa, const struct store_kv *kv, bool put)
{
	const char *id = kv->key + strlen(CLUSTER_ALIVE);
	if (!*id || strchr(id, '/'))
		return;
	if (put) {
		json_object_set_new(oa->alive, id, json_true());
		json_object_del(oa->reclaimed, id);
	} else
		json_object_del(oa->alive, id);
}

bool oa_node_alive(struct overlay_agent *oa, const char *node)
{
	return json_object_get(oa->alive, node) != NULL;
}

static void kick(struct overlay_agent *oa);

static void watch_cb(const struct store_event *ev, size_t n, const struct shoal_err *err,
		     void *userdata,
		     void (*apply)(struct overlay_agent *, const struct store_kv *, bool))
{
	struct overlay_agent *oa = userdata;
	if (err) {
		oa->watch_broken = true;
		return;
	}
	bool node_gone = false;
	for (size_t i = 0; i < n; i++) {
		apply(oa, &ev[i].kv, ev[i].type == STORE_EVENT_PUT);
		node_gone |= apply == alive_event && ev[i].type != STORE_EVENT_PUT;
	}
	/* service backends and names on other nodes follow this view: the
	 * manager's own watch may have seen the change before this one; names
	 * follow at once (they are read from this view), and so must backends
	 * when a node goes */
	if (node_gone)
		manager_data_plane_lost(oa->a);
	else if (n && (apply == oa_ep_event || apply == alive_event))
		manager_data_plane_changed(oa->a);
	if (n && (apply == oa_ep_event || apply == alive_event || apply == net_event))
		policy_agent_peers_changed(oa->a);
	kick(oa);
}

static void nets_cb(const struct store_event *ev, size_t n, const struct shoal_err *err, void *u)
{
	watch_cb(ev, n, err, u, net_event);
}

static void eps_cb(const struct store_event *ev, size_t n, const struct shoal_err *err, void *u)
{
	watch_cb(ev, n, err, u, oa_ep_event);
}

static void nodes_cb(const struct store_event *ev, size_t n, const struct shoal_err *err, void *u)
{
	watch_cb(ev, n, err, u, node_event);
}

static void alive_cb(const struct store_event *ev, size_t n, const struct shoal_err *err, void *u)
{
	watch_cb(ev, n, err, u, alive_event);
}

/* Reads everything under prefix into the view; *ret_rev: the read's revision. */
static int load_prefix(struct overlay_agent *oa, const char *prefix, json_t *view,
		       void (*apply)(struct overlay_agent *, const struct store_kv *, bool),
		       int64_t *ret_rev, struct shoal_err *err)
{
	struct store_kvs *kvs = NULL;
	int r = store_get(oa->a->store, prefix, true, 0, &kvs, err);
	if (r < 0)
		return r;
	json_object_clear(view);
	for (size_t i = 0; i < kvs->n; i++)
		apply(oa, &kvs->kvs[i], true);
	*ret_rev = kvs->revision;
	store_kvs_free(kvs);
	return 0;
}

static void watches_cancel(struct overlay_agent *oa)
{
	struct store_watch **ws[] = {&oa->w_nets, &oa->w_eps, &oa->w_nodes, &oa->w_alive};
	for (size_t i = 0; i < ARRAY_SIZE(ws); i++) {
		if (*ws[i])
			store_watch_cancel(*ws[i]);
		*ws[i] = NULL;
	}
}

/* Reads the four prefixes and, with watch, follows each from there. */
static int ovl_read_all(struct overlay_agent *oa, bool watch, struct shoal_err *err)
{
	struct {
		const char *prefix;
		json_t *view;
		void (*apply)(struct overlay_agent *, const struct store_kv *, bool);
		store_watch_cb cb;
		struct store_watch **w;
	} parts[] = {
		{CLUSTER_NETWORKS, oa->nets, net_event, nets_cb, &oa->w_nets},
		{OVL_ENDPOINT_PREFIX, oa->eps, oa_ep_event, eps_cb, &oa->w_eps},
		{CLUSTER_NODES, oa->nodes, node_event, nodes_cb, &oa->w_nodes},
		{CLUSTER_ALIVE, oa->alive, alive_event, alive_cb, &oa->w_alive},
	};
	watches_cancel(oa);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		int64_t rev = 0;
		if (parts[i].view == oa->eps)
			json_object_clear(oa->ep_index);
		int r = load_prefix(oa, parts[i].prefix, parts[i].view, parts[i].apply, &rev, err);
		if (r < 0)
			return r;
		if (watch && (r = store_watch(oa->a->store, parts[i].prefix, true, rev + 1,
					      parts[i].cb, oa, parts[i].w, err)) < 0)
			return r;
	}
	oa->vteps_dirty = true;
	oa->watch_broken = false;
	return 0;
}

/* ---- the worker ---- */

/* The routing mesh's return path on a VXLAN device (with its network's
 * subnet) or an overlay container's veth. A failure is kept for the loop's
 * log; the device works on without it (mesh replies then leave through
 * this node, where the client does not expect them). */
static void mesh_hook(struct ovl_job *j, const char *ifname, bool vxlan, uint32_t subnet,
		      uint8_t prefixlen)
{
	struct lb_mesh *m = j->oa->mesh;
	if (!m)
		return;
	struct shoal_err err = {0};
	int ifindex = (int)if_nametoindex(ifname);
	int r = ifindex <= 0 ? shoal_err_errno(&err, errno, "interface %s", ifname)
		: vxlan	     ? lb_mesh_net_attach(m, ifindex, subnet, prefixlen, &err)
			     : lb_mesh_veth_attach(m, ifindex, &err);
	if (r < 0 && !j->mesh_err[0])
		snprintf(j->mesh_err, sizeof(j->mesh_err), "%s: %s", ifname, err.msg);
}

static void job_work(void *arg)
{
	struct ovl_job *j = arg;
	struct overlay_agent *oa = j->oa;
	if (j->sweep) {
		_cleanup_free_ const char **keep = calloc(2 * j->n_apply + 1, sizeof(*keep));
		size_t nk = 0;
		for (size_t i = 0; keep && i < j->n_apply; i++) {
			keep[nk++] = j->apply[i].vn.bridge;
			keep[nk++] = j->apply[i].vn.vxlan;
		}
		j->swept = keep ? vxlan_sweep(oa->ctx, oa->a->cfg.device_prefix, keep, nk,
					      &j->sweep_err)
				: -ENOMEM;
	}
	for (size_t i = 0; i < j->n_remove; i++)
		j->remove[i].r = vxlan_net_remove(oa->ctx, j->remove[i].bridge, j->remove[i].vxlan,
						  &j->remove[i].err);
	for (size_t i = 0; i < j->n_apply; i++) {
		struct ovl_apply *ap = &j->apply[i];
		ap->r = vxlan_net_apply(oa->ctx, &ap->vn, &ap->st, &ap->err);
		if (ap->r >= 0)
			mesh_hook(j, ap->vn.vxlan, true, ap->subnet, ap->vn.prefixlen);
	}
	for (struct ovl_plumb *p = j->plumbs; p; p = p->next) {
		if (p->unplumb) {
			p->r = vxlan_ep_unplumb(NULL, p->ep.host_ifname, &p->err);
			continue;
		}
		struct ovl_apply *ap = NULL;
		for (size_t i = 0; i < j->n_apply && !ap; i++)
			if (strcmp(j->apply[i].net, p->net) == 0)
				ap = &j->apply[i];
		if (!ap) {
			p->r = p->err.code ? -p->err.code
					   : shoal_err_set(&p->err, ENOENT,
							   "network %s is not known on this node",
							   p->net);
			continue;
		}
		if (ap->r < 0) {
			p->err = ap->err;
			p->r = ap->r;
			shoal_err_wrap(&p->err, "making network %s on this node", ap->name);
			continue;
		}
		snprintf(p->ep.bridge, sizeof(p->ep.bridge), "%s", ap->vn.bridge);
		p->ep.gateway = ap->vn.gateway;
		p->ep.mtu = ap->st.mtu;
		p->r = vxlan_ep_plumb(&p->ep, &p->err);
		if (p->r >= 0)
			mesh_hook(j, p->ep.host_ifname, false, 0, 0);
	}
	for (size_t i = 0; i < j->n_mesh_veths; i++)
		mesh_hook(j, j->mesh_veths[i], false, 0, 0);
	if (j->set_masq)
		j->masq_r =
			vxlan_masq_set(oa->a->cfg.device_prefix, j->masq, j->n_masq, &j->masq_err);
	if (oa->filter && j->set_vteps)
		j->vteps_r =
			vxlan_filter_set_allowed(oa->filter, j->vteps, j->n_vteps, &j->vteps_err);
	if (oa->filter)
		j->stats_ok = vxlan_filter_stats(oa->filter, &j->stats, NULL) == 0;
}

static void job_free(struct ovl_job *j)
{
	for (size_t i = 0; i < j->n_apply; i++)
		free(j->apply[i].remotes);
	free(j->apply);
	free(j->remove);
	free(j->masq);
	free(j->masq_sig);
	free(j->vteps);
	free(j->mesh_veths);
	for (struct ovl_plumb *p = j->plumbs, *next; p; p = next) {
		next = p->next;
		free(p);
	}
	free(j);
}

static void dns_listeners_sync(struct overlay_agent *oa);

/* The remote endpoints an apply put in the kernel: the load balancer uses a
 * remote task's address once it is there (a connection to one that is not
 * yet would find no FDB entry), so a change of the set is a change of the
 * data plane's input. */
static void programmed_set(struct overlay_agent *oa, const struct ovl_apply *ap)
{
	json_t *set = json_object();
	for (size_t i = 0; set && i < ap->vn.n_remotes; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%u", (unsigned)ap->vn.remotes[i].ip.s_addr);
		json_object_set_new(set, k, json_true());
	}
	if (!set)
		return;
	if (!json_equal(set, json_object_get(oa->programmed, ap->net)))
		manager_data_plane_changed(oa->a);
	json_object_set_new(oa->programmed, ap->net, set);
}

static void job_done(void *arg)
{
	struct ovl_job *j = arg;
	struct overlay_agent *oa = j->oa;
	oa->busy = false;
	oa->applies++;
	if (j->sweep) {
		if (j->swept < 0)
			log_warn("overlay: removing networks no longer wanted: %s",
				 j->sweep_err.msg);
		else if (j->swept > 0)
			log_info("overlay: removed %d devices of networks no longer wanted here",
				 j->swept);
	}
	for (size_t i = 0; i < j->n_remove; i++) {
		struct ovl_remove *rm = &j->remove[i];
		if (rm->r < 0) {
			log_warn("overlay: removing network %s from this node: %s", rm->net,
				 rm->err.msg);
			continue;
		}
		log_info("overlay: network %.12s removed from this node (no container on it)",
			 rm->net);
		json_object_del(oa->active, rm->net);
		json_object_del(oa->errs, rm->net);
		json_object_del(oa->programmed, rm->net);
	}
	for (size_t i = 0; i < j->n_apply; i++) {
		struct ovl_apply *ap = &j->apply[i];
		const char *last = json_string_value(json_object_get(oa->errs, ap->net));
		if (ap->r < 0) {
			if (!last || strcmp(last, ap->err.msg) != 0)
				log_warn("overlay: network %s: %s", ap->name, ap->err.msg);
			json_object_set_new(oa->errs, ap->net, json_string(ap->err.msg));
			continue;
		}
		if (last)
			log_info("overlay: network %s is in place again", ap->name);
		json_object_del(oa->errs, ap->net);
		bool known = json_object_get(oa->active, ap->net) != NULL;
		if (!known)
			log_info("overlay: network %s on this node: %s and %s, vni %u, mtu %d, %zu "
				 "remote endpoints",
				 ap->name, ap->vn.bridge, ap->vn.vxlan, ap->vn.vni, ap->st.mtu,
				 ap->vn.n_remotes);
		else if (ap->st.links_created || ap->st.links_deleted)
			log_info("overlay: network %s: devices made again (%u created, %u "
				 "replaced)",
				 ap->name, ap->st.links_created, ap->st.links_deleted);
		if (known && ap->st.ops)
			oa->repairs++;
		char gw[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &ap->vn.gateway, gw, sizeof(gw));
		programmed_set(oa, ap);
		json_object_set_new(oa->active, ap->net,
				    json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:s}", "Name",
					      ap->name, "Bridge", ap->vn.bridge, "Vxlan",
					      ap->vn.vxlan, "MTU", ap->st.mtu, "VNI",
					      (int)ap->vn.vni, "Remotes",
					      (json_int_t)ap->vn.n_remotes, "Gateway", gw));
	}
	dns_listeners_sync(oa);
	if (j->set_masq) {
		if (j->masq_r < 0) {
			log_warn("overlay: egress masquerading: %s", j->masq_err.msg);
		} else {
			free(oa->masq_applied);
			oa->masq_applied = TAKE_PTR(j->masq_sig);
		}
	}
	if (j->set_vteps && j->vteps_r < 0) {
		log_warn("overlay: the VXLAN source filter's allowed set: %s", j->vteps_err.msg);
		oa->vteps_dirty = true;
	}
	if (j->stats_ok)
		oa->stats = j->stats;
	if (j->mesh_err[0] && strcmp(j->mesh_err, oa->mesh_logged) != 0)
		log_warn("overlay: the routing mesh's return path on %s", j->mesh_err);
	snprintf(oa->mesh_logged, sizeof(oa->mesh_logged), "%s", j->mesh_err);
	for (struct ovl_plumb *p = j->plumbs; p; p = p->next)
		p->cb(p->r, &p->err, p->arg);
	job_free(j);
	if (oa->again) {
		oa->again = false;
		kick(oa);
	}
}

/* The DNS server answers on this node's address on every network made here
 * (as last applied: a record that is rewritten does not close and reopen it):
 * the resolver of the network's containers, their default gateway. */
static void dns_listeners_sync(struct overlay_agent *oa)
{
	struct in_addr addrs[DNS_LISTEN_MAX];
	size_t n = 0;
	const char *net;
	json_t *v;
	json_object_foreach(oa->active, net, v)
	{
		const char *gw = json_string_value(json_object_get(v, "Gateway"));
		if (n < DNS_LISTEN_MAX && gw && inet_pton(AF_INET, gw, &addrs[n]) == 1)
			n++;
	}
	dns_listen_set(oa->a, addrs, n);
}

/* Networks this node builds for the routing mesh whether or not a container
 * of it is on them: those of services publishing a port in ingress mode, so
 * that a client of the port here reaches their tasks on every node. A set
 * (network id -> true); the services as the manager's watch has them. */
static json_t *mesh_nets(struct overlay_agent *oa)
{
	json_t *set = json_object();
	const char *ingress = overlay_ingress_network(oa->a);
	const char *sid;
	json_t *svc;
	json_object_foreach(manager_services(oa->a), sid, svc)
	{
		const char *net = publish_service_network(svc, ingress);
		if (!net || !set || json_is_true(json_object_get(svc, "Removed")) ||
		    !publish_service_meshed(svc))
			continue;
		json_object_set_new(set, net, json_true());
	}
	return set;
}

/* A snapshot of what this node should have, for the worker. */
static struct ovl_job *job_build(struct overlay_agent *oa)
{
	struct agent *a = oa->a;
	struct ovl_job *j = calloc(1, sizeof(*j));
	size_t cap = json_object_size(oa->eps);
	if (!j)
		return NULL;
	j->oa = oa;
	j->apply = calloc(cap ? cap : 1, sizeof(*j->apply));
	j->masq = calloc(cap ? cap : 1, sizeof(*j->masq));
	j->remove = calloc(json_object_size(oa->active) + 1, sizeof(*j->remove));
	if (!j->apply || !j->masq || !j->remove) {
		job_free(j);
		return NULL;
	}
	json_t *mesh = mesh_nets(oa);
	const char *net;
	json_t *eps;
	json_object_foreach(oa->eps, net, eps)
	{
		if (!oa_local_containers(oa, net) && !json_object_get(mesh, net))
			continue;
		struct ovl_network n;
		struct shoal_err err = {0};
		if (!oa_net_lookup(oa, net, &n, &err)) {
			/* removed from the store under its containers: the
			 * devices stay as they are until the last one goes */
			continue;
		}
		if (j->n_apply >= OVL_NETS_MAX) {
			log_warn("overlay: more than %d networks on this node; %s left out",
				 OVL_NETS_MAX, n.name);
			continue;
		}
		struct ovl_endpoint gw;
		if (oa_gateway_ensure(oa, &n, &gw, &err) < 0) {
			log_warn("overlay: network %s: this node's address: %s", n.name, err.msg);
			continue;
		}
		struct ovl_apply *ap = &j->apply[j->n_apply];
		snprintf(ap->net, sizeof(ap->net), "%s", n.id);
		snprintf(ap->name, sizeof(ap->name), "%s", n.name);
		struct vxlan_net *vn = &ap->vn;
		snprintf(vn->id, sizeof(vn->id), "%s", n.id);
		if (vxlan_net_ifnames(a->cfg.device_prefix, n.id, vn->bridge, vn->vxlan, &err) <
		    0) {
			log_warn("overlay: network %s: %s", n.name, err.msg);
			continue;
		}
		bool clash = false;
		for (size_t i = 0; i < j->n_apply && !clash; i++)
			clash = strcmp(j->apply[i].vn.bridge, vn->bridge) == 0;
		if (clash) {
			/* vxlan.h: the other network's devices would look like drift */
			log_warn(
				"overlay: network %s: its device names clash with another network's "
				"on this node (%s); left out",
				n.name, vn->bridge);
			continue;
		}
		vn->vni = n.vni;
		vn->local = oa->vtep;
		snprintf(vn->underlay, sizeof(vn->underlay), "%s", oa->underlay);
		vn->mtu = n.mtu;
		vn->gateway = gw.ip;
		vn->prefixlen = n.subnet.prefix;
		ap->subnet = htonl(n.subnet.net);
		ap->remotes = calloc(json_object_size(eps) + 1, sizeof(*ap->remotes));
		if (!ap->remotes)
			continue;
		const char *k;
		json_t *v;
		json_object_foreach(eps, k, v)
		{
			const char *text = json_string_value(v);
			struct ovl_endpoint e;
			/* a node that is down: its endpoints are forgotten
			 * (their records stay for the grace, in case it comes
			 * back) */
			if (ovl_endpoint_parse(text, strlen(text), &e, NULL) < 0 ||
			    strcmp(e.node, a->node_id) == 0 || e.vtep.s_addr == oa->vtep.s_addr ||
			    !oa_node_alive(oa, e.node))
				continue;
			struct vxlan_remote *rm = &ap->remotes[vn->n_remotes++];
			rm->ip = e.ip;
			rm->vtep = e.vtep;
			memcpy(rm->mac, e.mac, 6);
		}
		vn->remotes = ap->remotes;
		struct vxlan_masq *m = &j->masq[j->n_masq++];
		snprintf(m->bridge, sizeof(m->bridge), "%s", vn->bridge);
		m->net.s_addr = htonl(n.subnet.net);
		m->prefixlen = n.subnet.prefix;
		m->internal = n.internal;
		j->n_apply++;
	}
	/* made here, no longer wanted: the devices go, with this node's address */
	const char *id;
	json_t *act;
	json_object_foreach(oa->active, id, act)
	{
		bool wanted = false;
		for (size_t i = 0; i < j->n_apply && !wanted; i++)
			wanted = strcmp(j->apply[i].net, id) == 0;
		if (wanted || oa_local_containers(oa, id) || oa_local_attached(oa, id))
			continue;
		struct ovl_remove *rm = &j->remove[j->n_remove++];
		snprintf(rm->net, sizeof(rm->net), "%s", id);
		snprintf(rm->bridge, sizeof(rm->bridge), "%s",
			 json_string_value(json_object_get(act, "Bridge")));
		snprintf(rm->vxlan, sizeof(rm->vxlan), "%s",
			 json_string_value(json_object_get(act, "Vxlan")));
		char gid[OVL_ID_MAX + 1];
		struct ovl_endpoint gw;
		oa_gateway_id(oa, gid, sizeof(gid));
		if (oa_ep_lookup(oa, id, gid, &gw))
			oa_ep_delete(oa, &gw);
	}
	json_decref(mesh);
	j->sweep = !oa->swept;
	oa->swept = true;
	/* after a start, the veths of the containers found running get the
	 * mesh's program again (the pins carry the flows; the program is new) */
	if (j->sweep && oa->mesh) {
		size_t n = 0;
		for (struct container *c = a->containers; c; c = c->next)
			n += overlay_net_mode(c->net_mode) && c->host_ifname[0];
		j->mesh_veths = calloc(n + 1, sizeof(*j->mesh_veths));
		for (struct container *c = a->containers; j->mesh_veths && c; c = c->next)
			if (overlay_net_mode(c->net_mode) && c->host_ifname[0])
				snprintf(j->mesh_veths[j->n_mesh_veths++], IFNAMSIZ, "%s",
					 c->host_ifname);
	}
	j->plumbs = TAKE_PTR(oa->plumbs);
	/* the masquerade table when what it says changed */
	size_t siglen = 64 + j->n_masq * 64;
	j->masq_sig = calloc(1, siglen);
	if (j->masq_sig) {
		size_t off = 0;
		for (size_t i = 0; i < j->n_masq; i++)
			off += (size_t)snprintf(j->masq_sig + off, siglen - off, "%s %x/%u %d;",
						j->masq[i].bridge, j->masq[i].net.s_addr,
						j->masq[i].prefixlen, j->masq[i].internal);
		j->set_masq = !oa->masq_applied || strcmp(oa->masq_applied, j->masq_sig) != 0;
	}
	if (oa->filter && oa->vteps_dirty) {
		j->vteps = calloc(json_object_size(oa->nodes) + 1, sizeof(*j->vteps));
		if (j->vteps) {
			const char *nid;
			json_t *addr;
			json_object_foreach(oa->nodes, nid, addr)
			{
				if (inet_pton(AF_INET, json_string_value(addr),
					      &j->vteps[j->n_vteps]) == 1)
					j->n_vteps++;
			}
			j->set_vteps = true;
			oa->vteps_dirty = false;
		}
	}
	return j;
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct overlay_agent *oa = arg;
	if (oa->busy) {
		oa->again = true;
		return;
	}
	struct ovl_job *j = job_build(oa);
	if (!j) {
		log_warn("overlay: out of memory building the networks' state; retried at the "
			 "next resync");
		return;
	}
	oa->busy = true;
	if (worker_submit(oa->worker, job_work, job_done, j) < 0) {
		oa->busy = false;
		for (struct ovl_plumb *p = j->plumbs; p; p = p->next) {
			shoal_err_set(&p->err, ENOMEM, "the overlay worker took no more work");
			p->r = -ENOMEM;
			p->cb(p->r, &p->err, p->arg);
		}
		job_free(j);
	}
}

/* Coalesced: every change of this loop turn goes into one job; changes while
 * a job runs go into the next one. */
static void kick(struct overlay_agent *oa)
{
	if (!oa->started || oa->unavailable[0])
		return;
	if (oa->busy) {
		oa->again = true;
		return;
	}
	event_active(oa->kick_ev, EV_TIMEOUT, 0);
}

static void resync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct overlay_agent *oa = arg;
	if (oa->watch_broken) {
		struct shoal_err err = {0};
		if (ovl_read_all(oa, true, &err) < 0) {
			log_debug("overlay: watching the store: %s", err.msg);
			return;
		}
	}
	oa_reregister(oa);
	oa_reclaim_dead(oa);
	kick(oa);
}

/* ---- the underlay ---- */

static int find_underlay(struct overlay_agent *oa, const char *addr, struct shoal_err *err)
{
	if (!addr || inet_pton(AF_INET, addr, &oa->vtep) != 1)
		return shoal_err_set(err, EINVAL,
				     "overlay networks need this node's underlay address: start "
				     "shoald with --advertise-addr");
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return shoal_err_errno(err, errno, "listing addresses");
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		struct sockaddr_in *sin = (struct sockaddr_in *)i->ifa_addr;
		if (sin->sin_addr.s_addr == oa->vtep.s_addr) {
			snprintf(oa->underlay, sizeof(oa->underlay), "%s", i->ifa_name);
			break;
		}
	}
	freeifaddrs(ifa);
	if (!oa->underlay[0])
		return shoal_err_set(err, EADDRNOTAVAIL,
				     "overlay networks: no device of this node holds the advertise "
				     "address %s",
				     addr);
	if (strcmp(oa->underlay, "lo") == 0)
		return shoal_err_set(err, EINVAL,
				     "overlay networks: the advertise address %s is on lo; give "
				     "the address other nodes reach this one at",
				     addr);
	return 0;
}

/* ---- lifecycle ---- */

int overlay_agent_init(struct agent *a, struct shoal_err *err)
{
	struct overlay_agent *oa = calloc(1, sizeof(*oa));
	if (!oa)
		return shoal_err_set(err, ENOMEM, "out of memory");
	a->overlay_agent = oa;
	oa->a = a;
	oa->nets = json_object();
	oa->eps = json_object();
	oa->ep_index = json_object();
	oa->nodes = json_object();
	oa->alive = json_object();
	oa->reclaimed = json_object();
	oa->active = json_object();
	oa->programmed = json_object();
	oa->errs = json_object();
	oa->kick_ev = event_new(a->base, -1, 0, kick_cb, oa);
	oa->resync_ev = event_new(a->base, -1, EV_PERSIST, resync_cb, oa);
	if (!oa->nets || !oa->eps || !oa->ep_index || !oa->nodes || !oa->alive || !oa->reclaimed ||
	    !oa->active || !oa->programmed || !oa->errs || !oa->kick_ev || !oa->resync_ev)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(oa->netns_dir, sizeof(oa->netns_dir), "%s/netns", a->cfg.run_dir);
	struct shoal_err e = {0};
	if (find_underlay(oa, a->cfg.advertise_addr, &e) < 0)
		snprintf(oa->unavailable, sizeof(oa->unavailable), "%s", e.msg);
	e = (struct shoal_err){0};
	if (!oa->unavailable[0] && vxlan_ctx_new(&oa->ctx, &e) < 0)
		snprintf(oa->unavailable, sizeof(oa->unavailable), "overlay networks: %s", e.msg);
	int r = worker_new(a->base, &oa->worker);
	if (r < 0)
		return shoal_err_errno(err, -r, "starting the overlay worker");
	return ovl_read_all(oa, false, err);
}

void overlay_agent_start(struct agent *a)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa)
		return;
	struct shoal_err err = {0};
	if (ovl_read_all(oa, true, &err) < 0) {
		log_warn("overlay: watching the store: %s; retried every %d s", err.msg,
			 OVERLAY_RESYNC_S);
		oa->watch_broken = true;
	}
	oa_give_back_unused(oa);
	oa_reregister(oa);
	/* SHOAL_VXLAN_FILTER=nft: the fallback, as if the program did not load */
	const char *want = getenv("SHOAL_VXLAN_FILTER");
	bool bad_want = want && *want && strcmp(want, "bpf") != 0 && strcmp(want, "nft") != 0;
	if (!oa->unavailable[0] && bad_want) {
		snprintf(oa->filter_err, sizeof(oa->filter_err),
			 "SHOAL_VXLAN_FILTER=%s: expected bpf or nft", want);
		log_warn("overlay: no VXLAN source filter: %s", oa->filter_err);
	} else if (!oa->unavailable[0]) {
		struct vxlan_filter_opts fo = {
			.underlay = oa->underlay,
			.pin_dir = a->cfg.bpffs_dir,
			.prefix = a->cfg.device_prefix,
			.force_nft = want && strcmp(want, "nft") == 0,
		};
		err = (struct shoal_err){0};
		if (vxlan_filter_open(&fo, &oa->filter, &err) < 0) {
			snprintf(oa->filter_err, sizeof(oa->filter_err), "%s", err.msg);
			log_warn("overlay: no VXLAN source filter on %s: %s", oa->underlay,
				 err.msg);
		} else {
			snprintf(oa->filter_kind, sizeof(oa->filter_kind), "%s",
				 vxlan_filter_kind_name(vxlan_filter_kind(oa->filter)));
			snprintf(oa->filter_reason, sizeof(oa->filter_reason), "%s",
				 vxlan_filter_fallback_reason(oa->filter));
			log_info("overlay: VXLAN from the cluster's nodes only, on %s (%s%s%s)",
				 oa->underlay, oa->filter_kind, oa->filter_reason[0] ? ": " : "",
				 oa->filter_reason);
		}
	} else {
		log_info("%s", oa->unavailable);
	}
	if (!oa->unavailable[0]) {
		err = (struct shoal_err){0};
		struct lb_mesh_open_opts mo = {.pin_dir = a->cfg.bpffs_dir};
		if (lb_mesh_open(&mo, &oa->mesh, &err) < 0) {
			snprintf(oa->mesh_reason, sizeof(oa->mesh_reason), "%s", err.msg);
			log_warn("overlay: no routing mesh across nodes: %s (a published port "
				 "here answers from this node's tasks only)",
				 err.msg);
		}
	}
	oa->started = true;
	struct timeval tv = {OVERLAY_RESYNC_S, 0};
	event_add(oa->resync_ev, &tv);
	if (!oa->unavailable[0])
		kick(oa);
}

void overlay_agent_stop(struct agent *a)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa)
		return;
	/* the running job finishes; queued ones are dropped (their plumbs with
	 * them: the starts they belong to are rolled back at the next start) */
	worker_free(oa->worker);
	watches_cancel(oa);
	if (oa->kick_ev)
		event_free(oa->kick_ev);
	if (oa->resync_ev)
		event_free(oa->resync_ev);
	for (struct ovl_plumb *p = oa->plumbs, *next; p; p = next) {
		next = p->next;
		free(p);
	}
	vxlan_filter_free(oa->filter);
	lb_mesh_close(oa->mesh);
	vxlan_ctx_free(oa->ctx);
	json_decref(oa->nets);
	json_decref(oa->eps);
	json_decref(oa->ep_index);
	json_decref(oa->nodes);
	json_decref(oa->alive);
	json_decref(oa->reclaimed);
	json_decref(oa->active);
	json_decref(oa->programmed);
	json_decref(oa->errs);
	free(oa->masq_applied);
	free(oa);
	a->overlay_agent = NULL;
}

int overlay_agent_teardown(struct agent *a, struct shoal_err *err)
{
	struct vxlan_ctx *ctx = NULL;
	int r = vxlan_ctx_new(&ctx, err);
	if (r < 0)
		return r;
	r = vxlan_sweep(ctx, a->cfg.device_prefix, NULL, 0, err);
	vxlan_ctx_free(ctx);
	if (r < 0)
		return r;
	if ((r = vxlan_masq_set(a->cfg.device_prefix, NULL, 0, err)) < 0)
		return r;
	/* the mesh's hooks went with the devices and veths */
	lb_mesh_unpin(a->cfg.bpffs_dir);
	struct overlay_agent probe = {.a = a};
	if (find_underlay(&probe, a->cfg.advertise_addr, NULL) < 0)
		return 0; /* no underlay: no filter was ever put on one */
	struct vxlan_filter_opts fo = {
		.underlay = probe.underlay,
		.pin_dir = a->cfg.bpffs_dir,
		.prefix = a->cfg.device_prefix,
	};
	return vxlan_filter_remove(&fo, err);
}

json_t *overlay_agent_info(struct agent *a)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa)
		return json_null();
	char vtep[INET_ADDRSTRLEN] = "";
	if (!oa->unavailable[0])
		inet_ntop(AF_INET, &oa->vtep, vtep, sizeof(vtep));
	json_t *nets = json_array();
	const char *id;
	json_t *v;
	json_object_foreach(oa->active, id, v)
	{
		json_t *n = json_deep_copy(v);
		json_object_set_new(n, "ID", json_string(id));
		const char *e = json_string_value(json_object_get(oa->errs, id));
		if (e)
			json_object_set_new(n, "Error", json_string(e));
		json_array_append_new(nets, n);
	}
	json_t *filter =
		oa->filter ? json_pack("{s:s, s:s, s:I, s:I}", "Kind", oa->filter_kind,
				       "FallbackReason", oa->filter_reason, "DroppedUnknownSource",
				       (json_int_t)oa->stats.dropped_unknown_source, "Accepted",
				       (json_int_t)oa->stats.accepted)
			   : json_pack("{s:s, s:s}", "Kind", "none", "Error",
				       oa->filter_err[0] ? oa->filter_err : oa->unavailable);
	struct lb_mesh_counters mc = {0};
	json_t *mesh =
		oa->mesh && lb_mesh_counters(oa->mesh, &mc) == 0
			? json_pack("{s:s, s:I, s:I}", "State", "on", "Noted", (json_int_t)mc.noted,
				    "Returned", (json_int_t)mc.returned)
			: json_pack("{s:s, s:s}", "State", "unavailable", "Reason",
				    oa->mesh_reason[0] ? oa->mesh_reason : oa->unavailable);
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:I}", "Error", oa->unavailable,
			 "VTEP", vtep, "Underlay", oa->underlay, "Filter", filter, "Mesh", mesh,
			 "Networks", nets, "Applies", (json_int_t)oa->applies, "Repairs",
			 (json_int_t)oa->repairs);
}

/* ---- containers ---- */

int overlay_network_resolve(struct agent *a, const char *ref, bool for_task, char *ret_id,
			    size_t len, struct shoal_err *err)
{
	json_t *net = NULL;
	int r = network_get(a, ref, &net, err);
	if (r < 0)
		return r;
	const char *driver = json_string_value(json_object_get(net, "Driver"));
	const char *name = json_string_value(json_object_get(net, "Name"));
	const char *id = json_string_value(json_object_get(net, "Id"));
	if (!driver || strcmp(driver, "overlay") != 0 || !id) {
		r = shoal_err_set_status(
			err, 400, EINVAL,
			"network %s: containers join the node's bridge, host or none "
			"by those names",
			ref);
	} else if (!for_task && !json_is_true(json_object_get(net, "Attachable"))) {
		r = shoal_err_set_status(
			err, 403, EPERM,
			"Could not attach to network %s: rpc error: code = "
			"PermissionDenied desc = network %s not manually attachable",
			ref, name ? name : ref);
	} else if (strlen(id) >= len) {
		r = shoal_err_set(err, ENAMETOOLONG, "network id %s is too long", id);
	} else {
		snprintf(ret_id, len, "%s", id);
	}
	json_decref(net);
	return r;
}

void overlay_ep_more_ifname(struct agent *a, const char *net_id, const char *ep_id, char ret[16])
{
	char key[2 * OVL_ID_MAX + 2];
	snprintf(key, sizeof(key), "%s.%s", ep_id, net_id);
	bridge_host_ifname(a->cfg.device_prefix, key, ret);
}

static bool more_ifname(const char *ifname)
{
	return ifname && *ifname && strcmp(ifname, "eth0") != 0;
}

int overlay_ep_alloc(struct agent *a, const char *net_id, const char *ep_id, const char *name,
		     const char *ifname, struct overlay_ep_info *ret, struct shoal_err *err)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa)
		return shoal_err_set(err, ENODEV, "overlay networks are not running on this node");
	if (oa->unavailable[0])
		return shoal_err_set_status(err, 503, ENODEV, "%s", oa->unavailable);
	struct ovl_network n;
	if (!oa_net_lookup(oa, net_id, &n, err)) {
		/* the watch may lag a network just made: ask the store */
		json_t *j = NULL;
		char key[256];
		snprintf(key, sizeof(key), "%s%s", CLUSTER_NETWORKS, net_id);
		shoal_err_clear(err);
		int r = cluster_get(a, key, &j, NULL, err);
		if (r < 0)
			return r;
		json_object_del(j, "Version");
		json_object_set_new(oa->nets, net_id, j);
		if (!oa_net_lookup(oa, net_id, &n, err))
			return -(err->code ? err->code : EINVAL);
	}
	struct ovl_endpoint gw, e;
	int r = oa_gateway_ensure(oa, &n, &gw, err);
	if (r < 0)
		return shoal_err_wrap(err, "network %s: this node's address on it", n.name);
	struct ovl_endpoint old;
	if (oa_ep_lookup(oa, n.id, ep_id, &old))
		oa_ep_delete(oa, &old); /* a start before that never released */
	if ((r = oa_ep_new(oa, &n, ep_id, name, OVL_EP_CONTAINER, &e, err)) < 0)
		return r;
	struct overlay_ep_info info = {.ip = e.ip, .gateway = gw.ip, .prefixlen = n.subnet.prefix};
	memcpy(info.mac, e.mac, 6);
	snprintf(info.netns_path, sizeof(info.netns_path), "%s/%s", oa->netns_dir, ep_id);
	if (more_ifname(ifname))
		overlay_ep_more_ifname(a, net_id, ep_id, info.host_ifname);
	else
		bridge_host_ifname(a->cfg.device_prefix, ep_id, info.host_ifname);
	*ret = info;
	return 0;
}

void overlay_ep_plumb(struct agent *a, const char *net_id, const char *ep_id, const char *ifname,
		      overlay_ep_done_cb cb, void *arg)
{
	struct overlay_agent *oa = oa_of(a);
	struct ovl_plumb *p = calloc(1, sizeof(*p));
	struct shoal_err err = {0};
	struct ovl_endpoint e;
	if (!p || !oa || !oa_ep_lookup(oa, net_id, ep_id, &e)) {
		shoal_err_set(&err, p ? ENOENT : ENOMEM, "endpoint %.12s on network %.12s: %s",
			      ep_id, net_id, p ? "no record of it" : "out of memory");
		free(p);
		cb(-err.code, &err, arg);
		return;
	}
	struct ovl_network n;
	if (!oa_net_lookup(oa, net_id, &n, &err)) {
		free(p);
		cb(-(err.code ? err.code : EINVAL), &err, arg);
		return;
	}
	snprintf(p->net, sizeof(p->net), "%s", net_id);
	snprintf(p->ep_id, sizeof(p->ep_id), "%s", ep_id);
	snprintf(p->ep.netns_path, sizeof(p->ep.netns_path), "%s/%s", oa->netns_dir, ep_id);
	if (more_ifname(ifname)) {
		overlay_ep_more_ifname(a, net_id, ep_id, p->ep.host_ifname);
		snprintf(p->ep.ifname, sizeof(p->ep.ifname), "%s", ifname);
	} else {
		bridge_host_ifname(a->cfg.device_prefix, ep_id, p->ep.host_ifname);
	}
	p->ep.addr = e.ip;
	p->ep.prefixlen = n.subnet.prefix;
	memcpy(p->ep.mac, e.mac, 6);
	p->cb = cb;
	p->arg = arg;
	struct shoal_err derr = {0};
	if (!oa->netns_dir_ready && vxlan_ep_dir_prepare(oa->netns_dir, &derr) < 0) {
		free(p);
		cb(-derr.code, &derr, arg);
		return;
	}
	oa->netns_dir_ready = true;
	p->next = oa->plumbs;
	oa->plumbs = p;
	kick(oa);
}

const char *overlay_network_name(struct agent *a, const char *net_id)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa || !net_id)
		return NULL;
	return json_string_value(json_object_get(json_object_get(oa->nets, net_id), "Name"));
}

const char *overlay_ingress_network(struct agent *a)
{
	struct overlay_agent *oa = oa_of(a);
	/* without overlay networks here, this node's tasks stay on its bridge */
	if (!oa || oa->unavailable[0])
		return NULL;
	const char *id;
	json_t *j;
	json_object_foreach(oa->nets, id, j)
	{
		if (json_is_true(json_object_get(j, "Ingress")))
			return id;
	}
	return NULL;
}

json_t *overlay_ep_attachments(struct agent *a, const char *ep_id)
{
	struct overlay_agent *oa = oa_of(a);
	json_t *out = json_array();
	if (!oa || !out || !ep_id || !*ep_id)
		return out;
	const char *net;
	json_t *eps;
	json_object_foreach(oa->eps, net, eps)
	{
		struct ovl_endpoint e;
		struct ovl_network n;
		if (!json_object_get(eps, ep_id) || !oa_ep_lookup(oa, net, ep_id, &e) ||
		    !oa_net_lookup(oa, net, &n, NULL))
			continue;
		json_t *att = ovl_attachment(
			&n, json_object_get(json_object_get(oa->nets, net), "Labels"), e.ip);
		if (att)
			json_array_append_new(out, att);
	}
	return out;
}

void overlay_ep_release(struct agent *a, const char *net_id, const char *ep_id)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa)
		return;
	char path[4096 + OVL_ID_MAX + 2], ifname[IFNAMSIZ];
	snprintf(path, sizeof(path), "%s/%s", oa->netns_dir, ep_id);
	bridge_host_ifname(a->cfg.device_prefix, ep_id, ifname);
	/* the namespace's removal is a umount and an unlink; its veth goes in
	 * the kernel's asynchronous cleanup */
	struct shoal_err err = {0};
	if (vxlan_ep_unplumb(path, ifname, &err) < 0)
		log_warn("overlay: endpoint %.12s: %s", ep_id, err.msg);
	struct ovl_endpoint e;
	if (oa_ep_lookup(oa, net_id, ep_id, &e))
		oa_ep_delete(oa, &e);
	kick(oa);
}

void overlay_ep_forget(struct agent *a, const char *net_id, const char *ep_id)
{
	struct overlay_agent *oa = oa_of(a);
	struct ovl_endpoint e;
	if (oa && oa_ep_lookup(oa, net_id, ep_id, &e)) {
		oa_ep_delete(oa, &e);
		kick(oa);
	}
}

struct ovl_detach {
	struct agent *a;
	char net[OVL_ID_MAX + 1];
	char ep_id[OVL_ID_MAX + 1];
	overlay_ep_done_cb cb;
	void *arg;
};

static void detached_cb(int r, struct shoal_err *err, void *arg)
{
	struct ovl_detach *d = arg;
	/* the record and address go once nothing uses them, even when the
	 * veth was gone already */
	if (r >= 0 || err->code == ENODEV)
		overlay_ep_forget(d->a, d->net, d->ep_id);
	d->cb(r, err, d->arg);
	free(d);
}

void overlay_ep_detach(struct agent *a, const char *net_id, const char *ep_id,
		       overlay_ep_done_cb cb, void *arg)
{
	struct overlay_agent *oa = oa_of(a);
	struct ovl_plumb *p = calloc(1, sizeof(*p));
	struct ovl_detach *d = calloc(1, sizeof(*d));
	if (!oa || !p || !d) {
		struct shoal_err err = {0};
		shoal_err_set(&err, oa ? ENOMEM : ENODEV, "%s",
			      oa ? "out of memory"
				 : "overlay networks are not running on this node");
		free(p);
		free(d);
		cb(-err.code, &err, arg);
		return;
	}
	*d = (struct ovl_detach){.a = a, .cb = cb, .arg = arg};
	snprintf(d->net, sizeof(d->net), "%s", net_id);
	snprintf(d->ep_id, sizeof(d->ep_id), "%s", ep_id);
	snprintf(p->net, sizeof(p->net), "%s", net_id);
	snprintf(p->ep_id, sizeof(p->ep_id), "%s", ep_id);
	overlay_ep_more_ifname(a, net_id, ep_id, p->ep.host_ifname);
	p->unplumb = true;
	p->cb = detached_cb;
	p->arg = d;
	p->next = oa->plumbs;
	oa->plumbs = p;
	kick(oa);
}

static bool ep_node_live(struct overlay_agent *oa, const char *node)
{
	return node && (strcmp(node, oa->a->node_id) == 0 || oa_node_alive(oa, node));
}

struct in_addr overlay_ep_addr(struct agent *a, const char *net_id, const char *ep_id)
{
	struct overlay_agent *oa = oa_of(a);
	struct in_addr in = {0};
	if (!oa || !net_id || !ep_id)
		return in;
	json_t *x = json_object_get(json_object_get(oa->ep_index, net_id), ep_id);
	const char *node = json_string_value(json_object_get(x, "Node"));
	if (!x || !ep_node_live(oa, node))
		return in;
	in.s_addr = htonl((uint32_t)json_integer_value(json_object_get(x, "IP")));
	if (strcmp(node, a->node_id) == 0)
		return in; /* plumbed before its container runs */
	/* another node's: once its FDB and neighbour entries are here */
	char k[16];
	snprintf(k, sizeof(k), "%u", (unsigned)in.s_addr);
	if (!json_object_get(json_object_get(oa->programmed, net_id), k))
		in.s_addr = 0;
	return in;
}

bool overlay_net_of_addr(struct agent *a, struct in_addr addr, char *ret_id, size_t len)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa)
		return false;
	const char *id;
	json_t *j;
	json_object_foreach(oa->nets, id, j)
	{
		struct ovl_network n;
		if (ovl_network_parse(j, &n, NULL) == 0 &&
		    ovl_subnet_contains(&n.subnet, ntohl(addr.s_addr)) && strlen(id) < len) {
			snprintf(ret_id, len, "%s", id);
			return true;
		}
	}
	return false;
}

bool overlay_ep_find_name(struct agent *a, const char *net_id, const char *name,
			  struct in_addr *ret)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa || !net_id || !name || !*name)
		return false;
	const char *id;
	json_t *x;
	json_object_foreach(json_object_get(oa->ep_index, net_id), id, x)
	{
		const char *n = json_string_value(json_object_get(x, "Name"));
		if (!json_is_true(json_object_get(x, "Container")) || !n ||
		    strcasecmp(n, name) != 0 ||
		    !ep_node_live(oa, json_string_value(json_object_get(x, "Node"))))
			continue;
		ret->s_addr = htonl((uint32_t)json_integer_value(json_object_get(x, "IP")));
		return true;
	}
	return false;
}

void overlay_ep_records(struct agent *a, overlay_ep_record_cb cb, void *userdata)
{
	struct overlay_agent *oa = oa_of(a);
	if (!oa)
		return;
	const char *net, *id;
	json_t *eps, *text;
	json_object_foreach(oa->eps, net, eps)
	{
		const char *name = overlay_network_name(a, net);
		json_object_foreach(eps, id, text)
		{
			json_t *rec = json_loads(json_string_value(text), 0, NULL);
			const char *node = json_string_value(json_object_get(rec, "Node"));
			if (json_is_object(rec) && node)
				cb(name ? name : net, rec, ep_node_live(oa, node),
				   strcmp(node, a->node_id) == 0, userdata);
			json_decref(rec);
		}
	}
}
