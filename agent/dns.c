// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/util.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/dns.h"
#include "agent/manager.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "lib/log.h"
#include "lib/util.h"

#define DNS_TTL		 5 /* answers follow task changes: keep caches short */
#define DNS_MAX_ANSWERS	 64
#define DNS_MAX_FORWARDS 256 /* questions forwarded at once */

/* One address the server answers on. */
struct dns_port {
	struct in_addr addr;
	int fd;
	struct evdns_server_port *port;
};

struct dns {
	struct dns_port main;	/* the bridge's gateway */
	struct dns_port *extra; /* this node's addresses on overlay networks */
	size_t n_extra;
	struct in_addr warned;	     /* the last address that could not be bound, said once */
	struct evdns_base *upstream; /* the node's resolvers, made on first use */
	unsigned forwarding;
};

struct forward {
	struct agent *agent;
	struct evdns_server_request *req;
	char name[256];
	int type;
};

/* Whether a service on the asker's network (net: an overlay network's id,
 * NULL for the bridge) goes by name: its own, or an alias it has there; the
 * index of that network among the service's in *ret_ni. A service on the
 * ingress network only (it has none of its own) goes by no name, as in
 * swarm: the ingress network carries the routing mesh, not names. */
static bool service_named(struct agent *a, json_t *svc, const char *net, const char *name,
			  size_t *ret_ni)
{
	const char *snet = publish_service_network(svc, NULL);
	if (!snet && publish_service_network(svc, overlay_ingress_network(a)))
		return false;
	const char *n, *vip;
	size_t ni = 0;
	if (net) {
		while (publish_service_net_at(svc, ni, NULL, &n, &vip) &&
		       (!n || strcmp(n, net) != 0))
			ni++;
		if (!publish_service_net_at(svc, ni, NULL, &n, &vip))
			return false;
	} else if (snet) {
		return false;
	}
	*ret_ni = ni;
	json_t *spec = json_object_get(svc, "Spec");
	const char *sname = json_string_value(json_object_get(spec, "Name"));
	if (sname && strcasecmp(sname, name) == 0)
		return true;
	json_t *att = json_array_get(
		json_object_get(json_object_get(spec, "TaskTemplate"), "Networks"), ni);
	size_t i;
	json_t *al;
	json_array_foreach(json_object_get(att, "Aliases"), i, al)
	{
		const char *s = json_string_value(al);
		if (s && strcasecmp(s, name) == 0)
			return true;
	}
	return false;
}

/* Addresses of a service's running tasks: on its overlay network net on
 * every live node, or this node's on the bridge (net NULL). */
static int task_addrs(struct agent *a, json_t *svc, const char *net, struct in_addr *out, int max)
{
	const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
	int n = 0;
	const char *tid;
	json_t *t;
	json_object_foreach(manager_service_tasks(a, sid), tid, t)
	{
		if (n >= max)
			break;
		if (!publish_task_active(t))
			continue;
		const char *cid = json_string_value(json_object_get(
			json_object_get(json_object_get(t, "Status"), "ContainerStatus"),
			"ContainerID"));
		if (!cid)
			continue;
		if (net) {
			struct in_addr in = overlay_ep_addr(a, net, cid);
			if (in.s_addr)
				out[n++] = in;
			continue;
		}
		struct container *c = container_get(a, cid);
		if (c && c->net_attached && c->state == CONTAINER_RUNNING)
			out[n++] = c->ip;
	}
	return n;
}

/* Our own names, for an asker on net (NULL: the bridge): answers filled,
 * -ENOENT when the name is not ours. advance: an A question, which takes the
 * next turn of a rotated answer. */
static int lookup(struct agent *a, const char *net, const char *name, struct in_addr *out, int max,
		  bool advance, int *ret_ttl)
{
	bool tasks_only = false;
	if (strncasecmp(name, "tasks.", 6) == 0) {
		name += 6;
		tasks_only = true;
	}
	const char *sid;
	json_t *svc;
	json_object_foreach(manager_services(a), sid, svc)
	{
		size_t ni = 0;
		if (json_is_true(json_object_get(svc, "Removed")) ||
		    !service_named(a, svc, net, name, &ni))
			continue;
		/* the VIP on the asker's network, to the tasks' addresses there */
		const char *snet = NULL, *vip = NULL;
		publish_service_net_at(svc, ni, NULL, &snet, &vip);
		bool balanced = publish_vips_balanced(a);
		if (vip && !tasks_only && balanced)
			return inet_pton(AF_INET, vip, &out[0]) == 1 ? 1 : 0;
		int n = task_addrs(a, svc, snet, out, max);
		if (vip && !tasks_only && n > 1) {
			/* a VIP without the socket hooks to balance it: one
			 * task per answer, in turn, not cached. All of them
			 * would not spread: glibc sorts answers by prefix match
			 * (RFC 6724 rule 9), so every client would take the
			 * same task. */
			static unsigned turn;
			out[0] = out[turn % (unsigned)n];
			turn += advance;
			n = 1;
			*ret_ttl = 0;
		}
		return n;
	}
	if (tasks_only)
		return -ENOENT;
	if (net)
		return overlay_ep_find_name(a, net, name, &out[0]) ? 1 : -ENOENT;
	for (struct container *c = a->containers; c; c = c->next)
		if (strcasecmp(c->name, name) == 0 && c->net_attached &&
		    c->state == CONTAINER_RUNNING && !overlay_net_mode(c->net_mode)) {
			out[0] = c->ip;
			return 1;
		}
	return -ENOENT;
}

/* A container on several networks asks from its first one's address: its
 * names are answered on each of its networks in turn, as Docker's are. */
static int lookup_other_nets(struct agent *a, struct in_addr from, const char *asked_on,
			     const char *name, struct in_addr *out, bool advance, int *ret_ttl)
{
	for (struct container *c = a->containers; c; c = c->next) {
		struct container_att at;
		bool asker = false;
		for (size_t i = 0; i < CONTAINER_ATT_MAX && !asker; i++)
			asker = container_att(c, i, &at) && at.ip.s_addr == from.s_addr;
		if (!asker || !c->n_more_nets)
			continue;
		for (size_t i = 0; i < CONTAINER_ATT_MAX; i++) {
			if (!container_att(c, i, &at))
				continue;
			const char *net = overlay_net_mode(at.net) ? at.net : NULL;
			if ((net == NULL) == (asked_on == NULL) &&
			    (!net || strcmp(net, asked_on) == 0))
				continue; /* asked there already */
			int n = lookup(a, net, name, out, DNS_MAX_ANSWERS, advance, ret_ttl);
			if (n != -ENOENT)
				return n;
		}
		break;
	}
	return -ENOENT;
}

static void forward_cb(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	struct forward *f = arg;
	struct dns *d = f->agent->dns;
	d->forwarding--;
	if (result == DNS_ERR_NONE && count > 0) {
		for (int i = 0; i < count; i++) {
			if (type == DNS_IPv4_A)
				evdns_server_request_add_a_reply(f->req, f->name, 1,
								 (char *)addresses + 4 * i, ttl);
			else if (type == DNS_IPv6_AAAA)
				evdns_server_request_add_aaaa_reply(
					f->req, f->name, 1, (char *)addresses + 16 * i, ttl);
		}
		evdns_server_request_respond(f->req, DNS_ERR_NONE);
	} else {
		evdns_server_request_respond(f->req, result == DNS_ERR_NOTEXIST
							     ? DNS_ERR_NOTEXIST
							     : DNS_ERR_SERVERFAILED);
	}
	free(f);
}

static void forward(struct agent *a, struct evdns_server_request *req, const char *name, int type)
{
	struct dns *d = a->dns;
	if (!d->upstream) {
		d->upstream = evdns_base_new(a->base, 0);
		if (!d->upstream ||
		    evdns_base_resolv_conf_parse(d->upstream, DNS_OPTION_NAMESERVERS,
						 "/etc/resolv.conf") != 0) {
			evdns_server_request_respond(req, DNS_ERR_SERVERFAILED);
			return;
		}
	}
	struct forward *f = d->forwarding < DNS_MAX_FORWARDS ? calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		evdns_server_request_respond(req, DNS_ERR_SERVERFAILED);
		return;
	}
	f->agent = a;
	f->req = req;
	f->type = type;
	snprintf(f->name, sizeof(f->name), "%s", name);
	d->forwarding++;
	struct evdns_request *r =
		type == EVDNS_TYPE_A ? evdns_base_resolve_ipv4(d->upstream, name,
							       DNS_QUERY_NO_SEARCH, forward_cb, f)
				     : evdns_base_resolve_ipv6(d->upstream, name,
							       DNS_QUERY_NO_SEARCH, forward_cb, f);
	if (!r) {
		d->forwarding--;
		free(f);
		evdns_server_request_respond(req, DNS_ERR_SERVERFAILED);
	}
}

static void request_cb(struct evdns_server_request *req, void *arg)
{
	struct agent *a = arg;
	if (req->nquestions != 1) {
		evdns_server_request_respond(req, DNS_ERR_FORMAT);
		return;
	}
	struct evdns_server_question *q = req->questions[0];
	char name[256];
	snprintf(name, sizeof(name), "%s", q->name);
	size_t len = strlen(name);
	if (len && name[len - 1] == '.')
		name[len - 1] = '\0';
	/* the asker's network: names are answered within it */
	struct sockaddr_storage from = {0};
	char net_id[128];
	const char *net = NULL;
	/* (it returns the address's length) */
	if (evdns_server_request_get_requesting_addr(req, (struct sockaddr *)&from, sizeof(from)) >
		    0 &&
	    from.ss_family == AF_INET &&
	    overlay_net_of_addr(a, ((struct sockaddr_in *)&from)->sin_addr, net_id, sizeof(net_id)))
		net = net_id;
	struct in_addr addrs[DNS_MAX_ANSWERS];
	int ttl = DNS_TTL;
	int n = lookup(a, net, name, addrs, DNS_MAX_ANSWERS, q->type == EVDNS_TYPE_A, &ttl);
	if (n == -ENOENT && from.ss_family == AF_INET)
		n = lookup_other_nets(a, ((struct sockaddr_in *)&from)->sin_addr, net, name, addrs,
				      q->type == EVDNS_TYPE_A, &ttl);
	if (n >= 0) {
		/* ours: A records; other types of our names have no records */
		/* one record per address: evdns packs n addresses into one record */
		for (int i = 0; q->type == EVDNS_TYPE_A && i < n; i++)
			evdns_server_request_add_a_reply(req, q->name, 1, &addrs[i], ttl);
		evdns_server_request_respond(req, DNS_ERR_NONE);
		return;
	}
	if (q->type == EVDNS_TYPE_A || q->type == EVDNS_TYPE_AAAA) {
		forward(a, req, name, q->type);
		return;
	}
	evdns_server_request_respond(req, DNS_ERR_NOTIMPL);
}

/* A UDP socket on addr:53 served by request_cb. freebind: the address need
 * not be up yet (an overlay network's bridge is made on the worker). */
static int port_open(struct agent *a, struct in_addr addr, bool freebind, struct dns_port *ret)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr = addr};
	if ((freebind && setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct evdns_server_port *port =
		evdns_add_server_port_with_base(a->base, fd, 0, request_cb, a);
	if (!port) {
		close(fd);
		return -ENOMEM;
	}
	*ret = (struct dns_port){.addr = addr, .fd = fd, .port = port};
	return 0;
}

static void port_close(struct dns_port *p)
{
	/* the port closes its socket, once no request of it is pending */
	if (p->port)
		evdns_close_server_port(p->port);
	else if (p->fd >= 0)
		close(p->fd);
	p->port = NULL;
	p->fd = -1;
}

int dns_start(struct agent *a, struct in_addr listen_addr)
{
	struct dns *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	int r = port_open(a, listen_addr, false, &d->main);
	if (r < 0) {
		free(d);
		return r;
	}
	a->dns = d;
	return 0;
}

void dns_listen_set(struct agent *a, const struct in_addr *addrs, size_t n)
{
	struct dns *d = a->dns;
	if (!d)
		return;
	/* gone ones closed, in place */
	size_t kept = 0;
	for (size_t i = 0; i < d->n_extra; i++) {
		bool want = false;
		for (size_t k = 0; k < n && !want; k++)
			want = addrs[k].s_addr == d->extra[i].addr.s_addr;
		if (want)
			d->extra[kept++] = d->extra[i];
		else
			port_close(&d->extra[i]);
	}
	d->n_extra = kept;
	for (size_t k = 0; k < n; k++) {
		bool have = addrs[k].s_addr == d->main.addr.s_addr;
		for (size_t i = 0; i < d->n_extra && !have; i++)
			have = d->extra[i].addr.s_addr == addrs[k].s_addr;
		if (have)
			continue;
		struct dns_port *grown = realloc(d->extra, (d->n_extra + 1) * sizeof(*grown));
		if (!grown)
			return;
		d->extra = grown;
		int r = port_open(a, addrs[k], true, &d->extra[d->n_extra]);
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &addrs[k], ip, sizeof(ip));
		if (r < 0) {
			/* tried again at the next sync (a port just closed
			 * keeps its socket until its pending answers are out) */
			if (d->warned.s_addr != addrs[k].s_addr)
				log_warn("service discovery on %s:53: %s; containers on that "
					 "network resolve no service or container names until it "
					 "can be bound",
					 ip, strerror(-r));
			d->warned = addrs[k];
			continue;
		}
		if (d->warned.s_addr == addrs[k].s_addr)
			d->warned.s_addr = 0;
		log_debug("dns: answering on %s:53", ip);
		d->n_extra++;
	}
}

void dns_stop(struct agent *a)
{
	struct dns *d = a->dns;
	if (!d)
		return;
	port_close(&d->main);
	for (size_t i = 0; i < d->n_extra; i++)
		port_close(&d->extra[i]);
	free(d->extra);
	if (d->upstream)
		evdns_base_free(d->upstream, 1);
	free(d);
	a->dns = NULL;
}
