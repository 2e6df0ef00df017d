// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/network-ipam.h"

static uint32_t mask_of(uint8_t prefix)
{
	return prefix ? ~0u << (32 - prefix) : 0;
}

int net_cidr_parse(const char *field, const char *s, struct net_cidr *ret, struct shoal_err *err)
{
	char buf[32];
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return shoal_err_set_status(err, 400, EINVAL,
					    "%s: \"%s\" is not a subnet like 10.0.1.0/24", field,
					    s ? s : "");
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	struct in_addr a;
	char *end = NULL;
	long p = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, buf, &a) != 1 || !slash[1] || *end || p < 0 || p > 32)
		return shoal_err_set_status(
			err, 400, EINVAL, "%s: \"%s\" is not a subnet like 10.0.1.0/24", field, s);
	uint32_t h = ntohl(a.s_addr);
	if (h & ~mask_of((uint8_t)p))
		return shoal_err_set_status(
			err, 400, EINVAL, "%s: \"%s\" has host bits set (the network is %s/%ld?)",
			field, s, inet_ntoa((struct in_addr){htonl(h & mask_of((uint8_t)p))}), p);
	*ret = (struct net_cidr){.addr = h, .prefix = (uint8_t)p};
	return 0;
}

void net_cidr_format(const struct net_cidr *c, char *buf, size_t len)
{
	struct in_addr a = {htonl(c->addr)};
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u", ip, c->prefix);
}

bool net_cidr_overlap(const struct net_cidr *a, const struct net_cidr *b)
{
	uint8_t p = a->prefix < b->prefix ? a->prefix : b->prefix;
	return (a->addr & mask_of(p)) == (b->addr & mask_of(p));
}

/* The network that holds a subnet overlapping c, or NULL. */
static const char *overlapping(json_t *subnets, const struct net_cidr *c, char *which, size_t len)
{
	const char *k;
	json_t *v;
	json_object_foreach(subnets, k, v)
	{
		struct net_cidr o;
		if (net_cidr_parse("", k, &o, NULL) == 0 && net_cidr_overlap(&o, c)) {
			snprintf(which, len, "%s", k);
			return json_string_value(v) ?: "";
		}
	}
	return NULL;
}

static bool avoided(const char *const *avoid, const struct net_cidr *c)
{
	for (; avoid && *avoid; avoid++) {
		struct net_cidr o;
		if (net_cidr_parse("", *avoid, &o, NULL) == 0 && net_cidr_overlap(&o, c))
			return true;
	}
	return false;
}

int net_ipam_alloc(json_t *record, const struct net_alloc_req *req, json_t **ret_record,
		   struct net_alloc *ret, struct shoal_err *err)
{
	json_t *subnets = json_object_get(record, "Subnets");
	json_t *vnis = json_object_get(record, "VNIs");
	if (json_object_size(subnets) >= NET_MAX_NETWORKS)
		return shoal_err_set_status(err, 409, ENOSPC, "at most %d networks",
					    NET_MAX_NETWORKS);
	struct net_cidr c;
	char which[32];
	const char *holder;
	int r;
	if (req->subnet) {
		if ((r = net_cidr_parse("IPAM.Config[0].Subnet", req->subnet, &c, err)) < 0)
			return r;
		if (c.prefix < 8 || c.prefix > 29)
			return shoal_err_set_status(
				err, 400, EINVAL,
				"IPAM.Config[0].Subnet: %s: a prefix from /8 to /29 is supported",
				req->subnet);
		if ((holder = overlapping(subnets, &c, which, sizeof(which))))
			return shoal_err_set_status(
				err, 409, EEXIST,
				"IPAM.Config[0].Subnet: %s overlaps %s of network %s", req->subnet,
				which, holder);
		if (avoided(req->avoid, &c))
			return shoal_err_set_status(
				err, 409, EEXIST,
				"IPAM.Config[0].Subnet: %s overlaps a subnet this node uses (its "
				"bridge network)",
				req->subnet);
	} else {
		struct net_cidr pool;
		net_cidr_parse("", NET_POOL_DEFAULT, &pool, NULL);
		uint32_t step = 1u << (32 - NET_POOL_SIZE), n = 1u << (NET_POOL_SIZE - pool.prefix);
		bool found = false;
		for (uint32_t i = 0; i < n && !found; i++) {
			c = (struct net_cidr){.addr = pool.addr + i * step,
					      .prefix = NET_POOL_SIZE};
			found = !overlapping(subnets, &c, which, sizeof(which)) &&
				!avoided(req->avoid, &c);
		}
		if (!found)
			return shoal_err_set_status(
				err, 409, ENOSPC,
				"no free /%d left in the address pool %s: give a --subnet",
				NET_POOL_SIZE, NET_POOL_DEFAULT);
	}
	uint32_t mask = mask_of(c.prefix);
	uint32_t gw = c.addr + 1;
	if (req->gateway) {
		struct in_addr g;
		if (inet_pton(AF_INET, req->gateway, &g) != 1)
			return shoal_err_set_status(err, 400, EINVAL,
						    "IPAM.Config[0].Gateway: \"%s\" is not an IPv4 "
						    "address",
						    req->gateway);
		gw = ntohl(g.s_addr);
		if ((gw & mask) != c.addr || gw == c.addr || gw == (c.addr | ~mask))
			return shoal_err_set_status(
				err, 400, EINVAL,
				"IPAM.Config[0].Gateway: %s is not a host address of the subnet",
				req->gateway);
	}
	uint32_t vni = req->vni;
	char key[16];
	if (vni) {
		if (vni < 1 || vni > NET_VNI_LAST)
			return shoal_err_set_status(err, 400, EINVAL, "vni: %u is outside 1-%u",
						    vni, NET_VNI_LAST);
		snprintf(key, sizeof(key), "%u", vni);
		if (json_object_get(vnis, key))
			return shoal_err_set_status(err, 409, EEXIST,
						    "vni: %u is used by network %s", vni,
						    json_string_value(json_object_get(vnis, key)));
	} else {
		for (vni = NET_VNI_FIRST; vni <= NET_VNI_LAST; vni++) {
			snprintf(key, sizeof(key), "%u", vni);
			if (!json_object_get(vnis, key))
				break;
		}
	}
	json_t *out = record ? json_deep_copy(record) : json_object();
	if (!out)
		return shoal_err_set(err, ENOMEM, "out of memory");
	if (!json_is_object(json_object_get(out, "Subnets")))
		json_object_set_new(out, "Subnets", json_object());
	if (!json_is_object(json_object_get(out, "VNIs")))
		json_object_set_new(out, "VNIs", json_object());
	net_cidr_format(&c, ret->subnet, sizeof(ret->subnet));
	struct in_addr ga = {htonl(gw)};
	inet_ntop(AF_INET, &ga, ret->gateway, sizeof(ret->gateway));
	ret->vni = vni;
	snprintf(key, sizeof(key), "%u", vni);
	json_object_set_new(json_object_get(out, "Subnets"), ret->subnet,
			    json_string(req->network_id));
	json_object_set_new(json_object_get(out, "VNIs"), key, json_string(req->network_id));
	*ret_record = out;
	return 0;
}

json_t *net_ipam_release(json_t *record, const char *network_id)
{
	json_t *out = record ? json_deep_copy(record) : json_object();
	const char *sections[] = {"Subnets", "VNIs"};
	for (size_t s = 0; out && s < 2; s++) {
		json_t *o = json_object_get(out, sections[s]);
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(o, tmp, k, v)
		{
			if (strcmp(json_string_value(v) ?: "", network_id) == 0)
				json_object_del(o, k);
		}
	}
	return out;
}
