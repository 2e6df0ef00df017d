// SPDX-License-Identifier: Apache-2.0
/*
 * A container's further networks: overlay networks it joins beside its first
 * (eth0), as eth1, eth2, ... inside its one network namespace. Docker's
 * NetworkingConfig.EndpointsConfig at create names them, and POST
 * /networks/{id}/connect|disconnect adds and drops them, while the container
 * runs or not. Each is an endpoint of its network like a first one (an
 * address and a record in the store, a veth into the network's bridge on this
 * node), with no default route: the first network keeps it.
 *
 * Which networks a container is on is kept in its record across stops and
 * restarts of the agent; each start attaches them after the first network is
 * in place and before the process runs, and its exit gives them back with the
 * first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/container-internal.h"
#include "agent/container.h"
#include "agent/events.h"
#include "agent/manager.h"
#include "agent/overlay-agent.h"
#include "agent/policy-agent.h"
#include "lib/log.h"

bool container_on_net(const struct container *c, const char *net, struct in_addr *ret_ip)
{
	if (!net)
		return false;
	if (c->net_attached && strcmp(c->net_mode, net) == 0) {
		if (ret_ip)
			*ret_ip = c->ip;
		return true;
	}
	for (size_t i = 0; i < c->n_more_nets; i++) {
		const struct container_net *m = &c->more_nets[i];
		if (m->attached && strcmp(m->net, net) == 0) {
			if (ret_ip)
				*ret_ip = m->ip;
			return true;
		}
	}
	return false;
}

bool container_att(const struct container *c, size_t i, struct container_att *ret)
{
	if (i == 0) {
		if (!c->net_attached)
			return false;
		*ret = (struct container_att){.net = c->net_mode,
					      .ifname = "eth0",
					      .ip = c->ip,
					      .prefixlen = c->prefixlen,
					      .host_ifname = c->host_ifname};
		return true;
	}
	if (i > c->n_more_nets || !c->more_nets[i - 1].attached)
		return false;
	const struct container_net *m = &c->more_nets[i - 1];
	*ret = (struct container_att){.net = m->net,
				      .ifname = m->ifname,
				      .ip = m->ip,
				      .prefixlen = m->prefixlen,
				      .host_ifname = m->host_ifname};
	return true;
}

static struct container_net *more_net(struct container *c, const char *net)
{
	for (size_t i = 0; i < c->n_more_nets; i++)
		if (strcmp(c->more_nets[i].net, net) == 0)
			return &c->more_nets[i];
	return NULL;
}

/* The lowest ethN not in use, as Docker numbers a connected network. */
static void next_ifname(struct container *c, char *ret, size_t len)
{
	for (int n = 1;; n++) {
		char name[8];
		snprintf(name, sizeof(name), "eth%d", n);
		bool used = false;
		for (size_t i = 0; i < c->n_more_nets && !used; i++)
			used = strcmp(c->more_nets[i].ifname, name) == 0;
		if (!used) {
			snprintf(ret, len, "%s", name);
			return;
		}
	}
}

static int more_net_add(struct container *c, const char *net_id, const char *ref,
			struct shoal_err *err)
{
	if (strcmp(c->net_mode, net_id) == 0 || more_net(c, net_id))
		return shoal_err_set_status(err, 403, EEXIST,
					    "endpoint with name %s already exists in network %s",
					    c->name, ref);
	if (c->n_more_nets >= CONTAINER_MORE_NETS)
		return shoal_err_set_status(err, 400, E2BIG,
					    "container %s is on %d networks, the limit: eth0 and "
					    "%d more",
					    c->name, CONTAINER_MORE_NETS + 1, CONTAINER_MORE_NETS);
	struct container_net *m = &c->more_nets[c->n_more_nets];
	*m = (struct container_net){0};
	snprintf(m->net, sizeof(m->net), "%s", net_id);
	next_ifname(c, m->ifname, sizeof(m->ifname));
	c->n_more_nets++;
	return 0;
}

static void more_net_drop(struct container *c, struct container_net *m)
{
	size_t i = (size_t)(m - c->more_nets);
	memmove(&c->more_nets[i], &c->more_nets[i + 1],
		(c->n_more_nets - i - 1) * sizeof(*c->more_nets));
	c->n_more_nets--;
}

/* Whether networks can be added to a container of this mode at all. */
static int check_joinable(struct container *c, const char *ref, struct shoal_err *err)
{
	if (strcmp(c->net_mode, "host") == 0 || strcmp(c->net_mode, "none") == 0)
		return shoal_err_set_status(
			err, 400, EINVAL,
			"container %s uses the %s network: it cannot join network %s as well",
			c->name, c->net_mode, ref);
	return 0;
}

int container_nets_from_create(struct container *c, json_t *body, bool task, struct shoal_err *err)
{
	json_t *eps = json_object_get(json_object_get(body, "NetworkingConfig"), "EndpointsConfig");
	const char *first = NULL;
	json_get_string(json_object_get(body, "HostConfig"), "NetworkMode", &first, NULL);
	const char *ref;
	json_t *v;
	json_object_foreach(eps, ref, v)
	{
		/* the first network may be named here too (Docker's CLI does) */
		if (first && strcmp(ref, first) == 0)
			continue;
		if (strcmp(c->net_mode, "bridge") == 0 &&
		    (!strcmp(ref, "bridge") || !strcmp(ref, "default")))
			continue;
		int r = check_joinable(c, ref, err);
		if (r < 0)
			return r;
		char id[CONTAINER_NET_ID_MAX];
		if (!strcmp(ref, "bridge") || !strcmp(ref, "host") || !strcmp(ref, "none"))
			return shoal_err_set_status(err, 400, EINVAL,
						    "network %s: a container joins it only as its "
						    "first network (NetworkMode)",
						    ref);
		if ((r = overlay_network_resolve(c->agent, ref, task, id, sizeof(id), err)) < 0)
			return r;
		if (strcmp(id, c->net_mode) == 0)
			continue;
		if ((r = more_net_add(c, id, ref, err)) < 0)
			return r;
	}
	return 0;
}

json_t *container_nets_record(struct container *c)
{
	json_t *out = json_array();
	for (size_t i = 0; out && i < c->n_more_nets; i++) {
		const struct container_net *m = &c->more_nets[i];
		char ip[INET_ADDRSTRLEN] = "";
		if (m->attached)
			inet_ntop(AF_INET, &m->ip, ip, sizeof(ip));
		json_array_append_new(out,
				      json_pack("{s:s, s:s, s:b, s:s, s:i, s:s}", "Network", m->net,
						"Interface", m->ifname, "Attached", m->attached,
						"IPAddress", ip, "PrefixLen", (int)m->prefixlen,
						"HostIfname", m->attached ? m->host_ifname : ""));
	}
	return out;
}

void container_nets_load(struct container *c, json_t *arr)
{
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o)
	{
		if (c->n_more_nets >= CONTAINER_MORE_NETS)
			break;
		const char *net = json_string_value(json_object_get(o, "Network"));
		const char *ifn = json_string_value(json_object_get(o, "Interface"));
		if (!net || !ifn)
			continue;
		struct container_net *m = &c->more_nets[c->n_more_nets++];
		*m = (struct container_net){0};
		snprintf(m->net, sizeof(m->net), "%s", net);
		snprintf(m->ifname, sizeof(m->ifname), "%s", ifn);
		m->attached = json_is_true(json_object_get(o, "Attached"));
		inet_pton(AF_INET, json_string_value(json_object_get(o, "IPAddress")) ?: "0.0.0.0",
			  &m->ip);
		m->prefixlen = (uint8_t)json_integer_value(json_object_get(o, "PrefixLen"));
		snprintf(m->host_ifname, sizeof(m->host_ifname), "%s",
			 json_string_value(json_object_get(o, "HostIfname")) ?: "");
	}
}

/* ---- attaching, at a start and by a connect ---- */

/* Takes the address and writes the record: the container's record says so
 * before the veth is made, as for its first network. */
static int more_net_alloc(struct container *c, struct container_net *m, struct shoal_err *err)
{
	struct overlay_ep_info ep;
	int r = overlay_ep_alloc(c->agent, m->net, c->id, c->name, m->ifname, &ep, err);
	if (r < 0)
		return r;
	m->attached = true;
	m->ip = ep.ip;
	m->prefixlen = ep.prefixlen;
	snprintf(m->host_ifname, sizeof(m->host_ifname), "%s", ep.host_ifname);
	if ((r = container_persist(c)) < 0)
		return shoal_err_errno(err, -r, "recording network %.12s in %s/container.json",
				       m->net, c->bundle_dir);
	return 0;
}

static void more_net_giveback(struct container *c, struct container_net *m)
{
	if (!m->attached)
		return;
	overlay_ep_forget(c->agent, m->net, c->id);
	m->attached = false;
	m->ip.s_addr = 0;
	m->host_ifname[0] = '\0';
}

struct nets_op {
	struct agent *a;
	char id[65];
	char net[CONTAINER_NET_ID_MAX];
	size_t next; /* at a start: the next further network to attach */
	container_nets_done_cb done;
	void *arg;
};

static void start_next(struct nets_op *op);

static void start_plumbed_cb(int r, struct shoal_err *err, void *arg)
{
	struct nets_op *op = arg;
	struct container *c = container_get(op->a, op->id);
	if (r < 0) {
		if (c)
			shoal_err_wrap(err, "connecting the container to network %s",
				       overlay_network_name(op->a, op->net) ?: op->net);
		op->done(r, err, op->arg);
		free(op);
		return;
	}
	start_next(op);
}

static void start_next(struct nets_op *op)
{
	struct container *c = container_get(op->a, op->id);
	struct shoal_err err = {0};
	if (!c || op->next >= c->n_more_nets) {
		op->done(0, &err, op->arg);
		free(op);
		return;
	}
	struct container_net *m = &c->more_nets[op->next++];
	snprintf(op->net, sizeof(op->net), "%s", m->net);
	int r = more_net_alloc(c, m, &err);
	if (r < 0) {
		shoal_err_wrap(&err, "connecting the container to network %s",
			       overlay_network_name(op->a, m->net) ?: m->net);
		op->done(r, &err, op->arg);
		free(op);
		return;
	}
	overlay_ep_plumb(op->a, m->net, c->id, m->ifname, start_plumbed_cb, op);
}

void container_nets_attach(struct container *c, container_nets_done_cb done, void *arg)
{
	struct shoal_err err = {0};
	if (!c->n_more_nets) {
		done(0, &err, arg);
		return;
	}
	struct nets_op *op = calloc(1, sizeof(*op));
	if (!op) {
		shoal_err_set(&err, ENOMEM, "out of memory");
		done(-ENOMEM, &err, arg);
		return;
	}
	*op = (struct nets_op){.a = c->agent, .done = done, .arg = arg};
	snprintf(op->id, sizeof(op->id), "%s", c->id);
	start_next(op);
}

void container_nets_release(struct container *c)
{
	for (size_t i = 0; i < c->n_more_nets; i++)
		more_net_giveback(c, &c->more_nets[i]);
}

/* ---- POST /networks/{id}/connect|disconnect ---- */

/* The data plane's view of the node's endpoints follows. */
static void networks_changed(struct agent *a)
{
	manager_kick(a);
	policy_agent_kick(a);
}

static bool live(const struct container *c)
{
	return c->state == CONTAINER_RUNNING && c->net_attached;
}

static void op_req_cancel(struct api_req *r)
{
	struct nets_op *op = r->userdata;
	if (op)
		op->arg = NULL;
	api_req_free(r);
}

/* The request answered (200, or err), unless its client went; op freed. */
static void op_done(struct nets_op *op, const struct shoal_err *err)
{
	struct api_req *req = op->arg;
	if (req) {
		req->userdata = NULL;
		req->on_cancel = NULL;
		if (err)
			api_reply_err(req, err);
		else
			api_reply_empty(req, 200);
	}
	free(op);
}

static void connected_cb(int r, struct shoal_err *err, void *arg)
{
	struct nets_op *op = arg;
	struct container *c = container_get(op->a, op->id);
	struct container_net *m = c ? more_net(c, op->net) : NULL;
	if (r < 0 && c && m) {
		/* nothing of it stays: the address and record back, the entry gone */
		more_net_giveback(c, m);
		more_net_drop(c, m);
		container_persist(c);
	}
	if (r >= 0 && c) {
		log_info("container %.12s (%s): connected to network %s as %s", c->id, c->name,
			 overlay_network_name(op->a, op->net) ?: op->net, m ? m->ifname : "?");
		networks_changed(op->a);
		events_container_network(c, op->net, true);
	}
	op_done(op, r < 0 ? err : NULL);
}

static void disconnected_cb(int r, struct shoal_err *err, void *arg)
{
	struct nets_op *op = arg;
	struct container *c = container_get(op->a, op->id);
	struct container_net *m = c ? more_net(c, op->net) : NULL;
	if (c && m && (r >= 0 || err->code == ENODEV)) {
		m->attached = false;
		more_net_drop(c, m);
		container_persist(c);
		networks_changed(op->a);
		events_container_network(c, op->net, false);
	}
	op_done(op, r < 0 && err->code != ENODEV ? err : NULL);
}

static struct nets_op *op_new(struct container *c, const char *net, struct api_req *r)
{
	struct nets_op *op = calloc(1, sizeof(*op));
	if (!op) {
		api_reply_error(r, 500, "out of memory");
		return NULL;
	}
	*op = (struct nets_op){.a = c->agent, .arg = r};
	snprintf(op->id, sizeof(op->id), "%s", c->id);
	snprintf(op->net, sizeof(op->net), "%s", net);
	r->userdata = op;
	r->on_cancel = op_req_cancel;
	api_req_defer(r);
	return op;
}

void container_net_connect(struct container *c, const char *ref, struct api_req *r)
{
	struct shoal_err err = {0};
	char id[CONTAINER_NET_ID_MAX];
	if (check_joinable(c, ref, &err) < 0 ||
	    overlay_network_resolve(c->agent, ref, false, id, sizeof(id), &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	if (c->state == CONTAINER_STARTING || c->state == CONTAINER_REMOVING) {
		api_reply_error(r, 409, "container %s is %s: connect it when it has started",
				c->name,
				c->state == CONTAINER_STARTING ? "starting" : "being removed");
		return;
	}
	if (more_net_add(c, id, ref, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	struct container_net *m = &c->more_nets[c->n_more_nets - 1];
	if (!live(c)) {
		/* joined at its next start */
		int q = container_persist(c);
		if (q < 0) {
			more_net_drop(c, m);
			api_reply_error(r, 500, "recording the network in %s/container.json: %s",
					c->bundle_dir, strerror(-q));
			return;
		}
		api_reply_empty(r, 200);
		return;
	}
	if (more_net_alloc(c, m, &err) < 0) {
		more_net_giveback(c, m);
		more_net_drop(c, m);
		container_persist(c);
		api_reply_err(r, &err);
		return;
	}
	struct nets_op *op = op_new(c, id, r);
	if (!op) {
		more_net_giveback(c, m);
		more_net_drop(c, m);
		container_persist(c);
		return;
	}
	overlay_ep_plumb(c->agent, id, c->id, m->ifname, connected_cb, op);
}

void container_net_disconnect(struct container *c, const char *ref, struct api_req *r)
{
	struct shoal_err err = {0};
	char id[CONTAINER_NET_ID_MAX] = "";
	/* a network removed meanwhile is still named by its id */
	if (overlay_network_resolve(c->agent, ref, true, id, sizeof(id), &err) < 0) {
		if (strlen(ref) >= sizeof(id) || !more_net(c, ref)) {
			api_reply_err(r, &err);
			return;
		}
		snprintf(id, sizeof(id), "%s", ref);
	}
	if (strcmp(c->net_mode, id) == 0) {
		api_reply_error(r, 400,
				"network %s is container %s's first network (eth0), given at "
				"create: it cannot be disconnected",
				ref, c->name);
		return;
	}
	struct container_net *m = more_net(c, id);
	if (!m) {
		api_reply_error(r, 404, "container %s is not connected to network %s", c->name,
				ref);
		return;
	}
	if (c->state == CONTAINER_STARTING || c->state == CONTAINER_REMOVING) {
		api_reply_error(r, 409, "container %s is %s: disconnect it when it has started",
				c->name,
				c->state == CONTAINER_STARTING ? "starting" : "being removed");
		return;
	}
	if (!m->attached || !live(c)) {
		more_net_giveback(c, m);
		more_net_drop(c, m);
		container_persist(c);
		api_reply_empty(r, 200);
		return;
	}
	struct nets_op *op = op_new(c, id, r);
	if (op)
		overlay_ep_detach(c->agent, id, c->id, disconnected_cb, op);
}
