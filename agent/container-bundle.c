// SPDX-License-Identifier: Apache-2.0
/* A container's generated /etc files (hosts, hostname, resolv.conf): what a
 * start writes into its bundle, and their early writing after a create. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/container-internal.h"
#include "agent/container.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/runtime.h"

char *container_make_hosts(struct container *c, const char *hostname)
{
	char ip[INET_ADDRSTRLEN];
	char *s = NULL;
	if (c->net_attached) {
		inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
		if (asprintf(
			    &s,
			    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
			    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
			    "ff02::2\tip6-allrouters\n%s\t%s\n",
			    ip, hostname) < 0)
			return NULL;
	} else if (asprintf(&s,
			    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
			    "127.0.1.1\t%s\n",
			    hostname) < 0) {
		return NULL;
	}
	return s;
}

/* The node's resolv.conf, less loopback resolvers a container cannot reach;
 * on the bridge, the agent's DNS server (service discovery) instead of every
 * resolver: it forwards what is not a service or a container. */
char *container_make_resolv_conf(struct container *c)
{
	struct agent *a = c->agent;
	bool own_dns = c->net_attached && a->dns;
	_cleanup_free_ char *host = NULL;
	if (read_file("/etc/resolv.conf", 64 * 1024, &host, NULL) < 0)
		host = strdup("");
	if (!host)
		return NULL;
	size_t cap = strlen(host) + 64;
	char *out = calloc(1, cap);
	if (!out)
		return NULL;
	if (own_dns) {
		char gw[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &c->gateway, gw, sizeof(gw));
		snprintf(out, cap, "nameserver %s\n", gw);
	}
	char *save = NULL;
	for (char *line = strtok_r(host, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (str_has_prefix(line, "nameserver") &&
		    (own_dns || strstr(line, " 127.") || strstr(line, " ::1")))
			continue;
		strcat(out, line);
		strcat(out, "\n");
	}
	return out;
}

/* What the bundle's hosts, hostname and resolv.conf hold, as one string. */
static char *bundle_sig(const char *hostname, const char *hosts, const char *resolv)
{
	char *s = NULL;
	if (asprintf(&s, "%zu:%s%zu:%s%zu:%s", strlen(hostname), hostname, strlen(hosts), hosts,
		     strlen(resolv), resolv) < 0)
		return NULL;
	return s;
}

/*
 * The files a start would write, written right after the create reply: the
 * first start finds them as it would make them (same hostname, no network
 * endpoint yet, the node's resolv.conf unchanged) and skips them. Only that
 * first start: from then on the container may have written to them, and every
 * later start writes them afresh as before.
 */
static void bundle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	const char *hostname = "";
	json_get_string(c->config, "Hostname", &hostname, NULL);
	_cleanup_free_ char *hosts = container_make_hosts(c, hostname);
	_cleanup_free_ char *resolv = container_make_resolv_conf(c);
	if (!hosts || !resolv)
		return;
	_cleanup_free_ char *sig = bundle_sig(hostname, hosts, resolv);
	struct rt_spec spec = {
		.id = c->id,
		.bundle_dir = c->bundle_dir,
		.hostname = hostname,
		.hosts = hosts,
		.resolv_conf = resolv,
	};
	struct shoal_err err = {0};
	if (!sig || rt_bundle_prepare(&spec, &err) < 0) {
		log_debug("container %.12s: writing its bundle's files: %s", c->id, err.msg);
		return;
	}
	free(c->bundle_sig);
	c->bundle_sig = TAKE_PTR(sig);
}

void container_bundle_soon(struct container *c)
{
	static const struct timeval now = {0, 0};
	if (!c->bundle_ev)
		c->bundle_ev = evtimer_new(c->agent->base, bundle_cb, c);
	if (c->bundle_ev)
		evtimer_add(c->bundle_ev, &now);
}

/* True when the bundle holds what this start would write; in any case the
 * next start writes them again. */
bool container_bundle_take(struct container *c, const char *hostname, const char *hosts,
			   const char *resolv)
{
	if (c->bundle_ev)
		event_del(c->bundle_ev);
	_cleanup_free_ char *sig = c->bundle_sig;
	c->bundle_sig = NULL;
	if (!sig)
		return false;
	_cleanup_free_ char *now = bundle_sig(hostname, hosts, resolv);
	return now && strcmp(now, sig) == 0;
}
