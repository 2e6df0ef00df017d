// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/util.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/dns.h"
#include "agent/publish.h"
#include "lib/log.h"
#include "lib/util.h"

#define DNS_TTL		 5 /* answers follow task changes: keep caches short */
#define DNS_MAX_ANSWERS	 64
#define DNS_MAX_FORWARDS 256 /* questions forwarded at once */

struct dns {
	struct evdns_server_port *port;
	struct evdns_base *upstream; /* the node's resolvers, made on first use */
	int fd;
	unsigned forwarding;
};

struct forward {
	struct agent *agent;
	struct evdns_server_request *req;
	char name[256];
	int type;
};

/* Addresses of a service's running tasks, on this node's bridge. */
static int task_addrs(struct agent *a, const char *sid, struct in_addr *out, int max)
{
	json_t *tasks = NULL;
	if (cluster_list(a, CLUSTER_TASKS, &tasks, NULL) < 0)
		return 0;
	int n = 0;
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		if (n >= max)
			break;
		json_t *st = json_object_get(t, "Status");
		if (strcmp(json_string_value(json_object_get(t, "ServiceID")) ?: "", sid) != 0 ||
		    strcmp(json_string_value(json_object_get(st, "State")) ?: "", "running") != 0 ||
		    strcmp(json_string_value(json_object_get(t, "DesiredState")) ?: "",
			   "running") != 0)
			continue;
		const char *cid = json_string_value(
			json_object_get(json_object_get(st, "ContainerStatus"), "ContainerID"));
		struct container *c = cid ? container_find(a, cid, NULL) : NULL;
		if (c && c->net_attached && c->state == CONTAINER_RUNNING)
			out[n++] = c->ip;
	}
	json_decref(tasks);
	return n;
}

/* Our own names: 0 answers filled, -ENOENT when the name is not ours. */
/* advance: an A question, which takes the next turn of a rotated answer */
static int lookup(struct agent *a, const char *name, struct in_addr *out, int max, bool advance,
		  int *ret_ttl)
{
	bool tasks_only = false;
	if (strncasecmp(name, "tasks.", 6) == 0) {
		name += 6;
		tasks_only = true;
	}
	json_t *services = NULL;
	if (cluster_list(a, CLUSTER_SERVICES, &services, NULL) == 0) {
		size_t i;
		json_t *svc;
		json_array_foreach(services, i, svc)
		{
			const char *sname = json_string_value(
				json_object_get(json_object_get(svc, "Spec"), "Name"));
			if (!sname || strcasecmp(sname, name) != 0 ||
			    json_is_true(json_object_get(svc, "Removed")))
				continue;
			const char *vip = json_string_value(json_object_get(svc, "VirtualIP"));
			int n = 0;
			if (vip && !tasks_only && publish_vips_balanced(a)) {
				n = inet_pton(AF_INET, vip, &out[0]) == 1 ? 1 : 0;
			} else {
				n = task_addrs(a,
					       json_string_value(json_object_get(svc, "ID")) ?: "",
					       out, max);
			}
			if (vip && !tasks_only && n > 1 && !publish_vips_balanced(a)) {
				/* a VIP without the socket hooks to balance it:
				 * one task per answer, in turn, not cached. All
				 * of them would not spread: glibc sorts answers
				 * by prefix match (RFC 6724 rule 9), so every
				 * client would take the same task. */
				static unsigned turn;
				out[0] = out[turn % (unsigned)n];
				turn += advance;
				n = 1;
				*ret_ttl = 0;
			}
			json_decref(services);
			return n;
		}
		json_decref(services);
	}
	if (tasks_only)
		return -ENOENT;
	for (struct container *c = a->containers; c; c = c->next)
		if (strcasecmp(c->name, name) == 0 && c->net_attached &&
		    c->state == CONTAINER_RUNNING) {
			out[0] = c->ip;
			return 1;
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
	struct in_addr addrs[DNS_MAX_ANSWERS];
	int ttl = DNS_TTL;
	int n = lookup(a, name, addrs, DNS_MAX_ANSWERS, q->type == EVDNS_TYPE_A, &ttl);
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

int dns_start(struct agent *a, struct in_addr listen_addr)
{
	struct dns *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->fd < 0) {
		free(d);
		return -errno;
	}
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(53), .sin_addr = listen_addr};
	if (bind(d->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(d->fd);
		free(d);
		return -e;
	}
	d->port = evdns_add_server_port_with_base(a->base, d->fd, 0, request_cb, a);
	if (!d->port) {
		close(d->fd);
		free(d);
		return -ENOMEM;
	}
	a->dns = d;
	return 0;
}

void dns_stop(struct agent *a)
{
	struct dns *d = a->dns;
	if (!d)
		return;
	evdns_close_server_port(d->port);
	if (d->upstream)
		evdns_base_free(d->upstream, 1);
	close(d->fd);
	free(d);
	a->dns = NULL;
}
