// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/network-ipam.h"
#include "agent/overlay-ipam.h"

static uint32_t mask_of(uint8_t prefix)
{
	return prefix ? ~0u << (32 - prefix) : 0;
}

static int copy_id(const char *what, const char *s, char *dst, size_t len, struct shoal_err *err)
{
	if (!s || !*s || strlen(s) >= len || strchr(s, '/'))
		return shoal_err_set(err, EINVAL, "%s: \"%s\" is not a usable id", what,
				     s ? s : "");
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int ovl_network_parse(json_t *net, struct ovl_network *ret, struct shoal_err *err)
{
	struct ovl_network n = {0};
	int r = copy_id("network Id", json_string_value(json_object_get(net, "Id")), n.id,
			sizeof(n.id), err);
	if (r < 0)
		return r;
	const char *name = json_string_value(json_object_get(net, "Name"));
	snprintf(n.name, sizeof(n.name), "%s", name ? name : n.id);
	json_t *c0 = json_array_get(json_object_get(json_object_get(net, "IPAM"), "Config"), 0);
	struct net_cidr c;
	if ((r = net_cidr_parse("IPAM.Config[0].Subnet",
				json_string_value(json_object_get(c0, "Subnet")), &c, err)) < 0)
		return shoal_err_wrap(err, "network %s", n.name);
	if (c.prefix < 8 || c.prefix > 30)
		return shoal_err_set(err, EINVAL, "network %s: a /%u subnet is not supported",
				     n.name, c.prefix);
	n.subnet.net = c.addr;
	n.subnet.prefix = c.prefix;
	const char *gw = json_string_value(json_object_get(c0, "Gateway"));
	struct in_addr g;
	if (gw && *gw) {
		if (inet_pton(AF_INET, gw, &g) != 1 ||
		    !ovl_subnet_contains(&n.subnet, ntohl(g.s_addr)))
			return shoal_err_set(err, EINVAL,
					     "network %s: gateway \"%s\" is not in its subnet",
					     n.name, gw);
		n.subnet.gateway = ntohl(g.s_addr);
	} else {
		n.subnet.gateway = c.addr + 1;
	}
	json_t *opts = json_object_get(net, "Options");
	const char *vni = json_string_value(
		json_object_get(opts, "com.docker.network.driver.overlay.vxlanid_list"));
	char *end = NULL;
	unsigned long v = vni ? strtoul(vni, &end, 10) : 0;
	if (!vni || end == vni || (*end && *end != ',') || v < 1 || v > NET_VNI_LAST)
		return shoal_err_set(err, EINVAL, "network %s: no usable VXLAN id (\"%s\")", n.name,
				     vni ? vni : "");
	n.vni = (uint32_t)v;
	const char *mtu = json_string_value(json_object_get(opts, "com.docker.network.driver.mtu"));
	if (mtu && *mtu) {
		long m = strtol(mtu, &end, 10);
		if (*end || m < 576 || m > 65535)
			return shoal_err_set(err, EINVAL, "network %s: mtu \"%s\" is not usable",
					     n.name, mtu);
		n.mtu = (int)m;
	}
	n.attachable = json_is_true(json_object_get(net, "Attachable"));
	n.internal = json_is_true(json_object_get(net, "Internal"));
	*ret = n;
	return 0;
}

uint32_t ovl_subnet_capacity(const struct ovl_subnet *s)
{
	uint32_t size = 1u << (32 - s->prefix);
	uint32_t n = size - 2;
	return ovl_subnet_contains(s, s->gateway) ? n - 1 : n;
}

bool ovl_subnet_contains(const struct ovl_subnet *s, uint32_t addr)
{
	uint32_t m = mask_of(s->prefix);
	return (addr & m) == s->net && addr != s->net && addr != (s->net | ~m);
}

uint32_t ovl_ipam_hint(const struct ovl_subnet *s, const char *owner)
{
	/* FNV-1a: spreads owners over the subnet, the same owner the same spot */
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)owner; p && *p; p++)
		h = (h ^ *p) * 16777619u;
	uint32_t size = 1u << (32 - s->prefix);
	return s->net + 1 + h % (size - 2);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int ovl_ipam_pick(const struct ovl_subnet *s, const uint32_t *taken, size_t n, uint32_t hint,
		  uint32_t *ret)
{
	uint32_t size = 1u << (32 - s->prefix);
	uint32_t *sorted = NULL;
	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
		memcpy(sorted, taken, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_u32);
	}
	uint32_t start = hint - s->net;
	if ((hint & mask_of(s->prefix)) != s->net)
		start = 1;
	int r = -ENOSPC;
	for (uint32_t i = 0; i < size; i++) {
		uint32_t a = s->net + (start + i) % size;
		if (!ovl_subnet_contains(s, a) || a == s->gateway)
			continue;
		if (n && bsearch(&a, sorted, n, sizeof(*sorted), cmp_u32))
			continue;
		*ret = a;
		r = 0;
		break;
	}
	free(sorted);
	return r;
}

int ovl_key_split(const char *key, const char *prefix, char *ret_net, size_t netlen, char *ret_rest,
		  size_t restlen)
{
	size_t pl = strlen(prefix);
	if (strncmp(key, prefix, pl) != 0)
		return -EINVAL;
	const char *net = key + pl, *slash = strchr(net, '/');
	if (!slash || slash == net || !slash[1] || strchr(slash + 1, '/'))
		return -EINVAL;
	size_t nl = (size_t)(slash - net), rl = strlen(slash + 1);
	if (nl >= netlen || rl >= restlen)
		return -EINVAL;
	memcpy(ret_net, net, nl);
	ret_net[nl] = '\0';
	memcpy(ret_rest, slash + 1, rl + 1);
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;
	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
			 &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

int ovl_endpoint_parse(const char *text, size_t len, struct ovl_endpoint *ret,
		       struct shoal_err *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return shoal_err_set(err, EBADMSG, "endpoint record is not a JSON object");
	}
	struct ovl_endpoint ep = {0};
	int r = copy_id("ID", json_string_value(json_object_get(j, "ID")), ep.id, sizeof(ep.id),
			err);
	if (r == 0)
		r = copy_id("Network", json_string_value(json_object_get(j, "Network")), ep.net,
			    sizeof(ep.net), err);
	if (r == 0)
		r = copy_id("Node", json_string_value(json_object_get(j, "Node")), ep.node,
			    sizeof(ep.node), err);
	const char *kind = json_string_value(json_object_get(j, "Kind"));
	const char *ip = json_string_value(json_object_get(j, "IP"));
	const char *vtep = json_string_value(json_object_get(j, "VTEP"));
	const char *mac = json_string_value(json_object_get(j, "MAC"));
	const char *name = json_string_value(json_object_get(j, "Name"));
	if (r == 0 && (!kind || (strcmp(kind, "container") && strcmp(kind, "gateway"))))
		r = shoal_err_set(err, EINVAL,
				  "endpoint %s: Kind \"%s\" is not container or "
				  "gateway",
				  ep.id, kind ? kind : "");
	if (r == 0 && (!ip || inet_pton(AF_INET, ip, &ep.ip) != 1))
		r = shoal_err_set(err, EINVAL, "endpoint %s: IP \"%s\" is not an IPv4 address",
				  ep.id, ip ? ip : "");
	if (r == 0 && (!vtep || inet_pton(AF_INET, vtep, &ep.vtep) != 1))
		r = shoal_err_set(err, EINVAL, "endpoint %s: VTEP \"%s\" is not an IPv4 address",
				  ep.id, vtep ? vtep : "");
	if (r == 0 && parse_mac(mac, ep.mac) < 0)
		r = shoal_err_set(err, EINVAL, "endpoint %s: MAC \"%s\" is not a MAC address",
				  ep.id, mac ? mac : "");
	if (r == 0) {
		ep.kind = strcmp(kind, "gateway") == 0 ? OVL_EP_GATEWAY : OVL_EP_CONTAINER;
		snprintf(ep.name, sizeof(ep.name), "%s", name ? name : "");
		*ret = ep;
	}
	json_decref(j);
	return r;
}

char *ovl_endpoint_format(const struct ovl_endpoint *ep)
{
	char ip[INET_ADDRSTRLEN], vtep[INET_ADDRSTRLEN], mac[18];
	inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
	inet_ntop(AF_INET, &ep->vtep, vtep, sizeof(vtep));
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", ep->mac[0], ep->mac[1],
		 ep->mac[2], ep->mac[3], ep->mac[4], ep->mac[5]);
	json_t *j =
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", ep->id, "Network",
			  ep->net, "Kind", ep->kind == OVL_EP_GATEWAY ? "gateway" : "container",
			  "Name", ep->name, "IP", ip, "MAC", mac, "Node", ep->node, "VTEP", vtep);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	return s;
}

char *ovl_addr_owner(const char *node, const char *endpoint)
{
	json_t *j = json_pack("{s:s, s:s}", "Node", node, "Endpoint", endpoint);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	return s;
}

size_t ovl_endpoint_names(const char *const *texts, const size_t *lens, size_t n, char *buf,
			  size_t len)
{
	size_t count = 0, off = 0;
	bool cut = false;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		struct ovl_endpoint e;
		if (ovl_endpoint_parse(texts[i], lens[i], &e, NULL) < 0 ||
		    e.kind != OVL_EP_CONTAINER)
			continue;
		const char *name = e.name[0] ? e.name : e.id;
		const char *sep = count ? ", " : "";
		count++;
		if (cut)
			continue;
		/* room for this one and a ", ..." after it */
		if (off + strlen(sep) + strlen(name) + 5 < len) {
			off += (size_t)snprintf(buf + off, len - off, "%s%s", sep, name);
		} else {
			cut = true;
			if (off + strlen(sep) + 3 < len)
				off += (size_t)snprintf(buf + off, len - off, "%s...", sep);
		}
	}
	return count;
}

json_t *ovl_attachment(const struct ovl_network *n, json_t *labels, struct in_addr ip)
{
	char s[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN + 4];
	inet_ntop(AF_INET, &ip, s, sizeof(s));
	snprintf(cidr, sizeof(cidr), "%s/%u", s, n->subnet.prefix);
	return json_pack("{s:{s:s, s:{s:s, s:o, s:{s:s}, s:s, s:b, s:b}}, s:[s]}", "Network", "ID",
			 n->id, "Spec", "Name", n->name, "Labels",
			 labels ? json_incref(labels) : json_object(), "DriverConfiguration",
			 "Name", "overlay", "Scope", "swarm", "Attachable", n->attachable,
			 "Internal", n->internal, "Addresses", cidr);
}
