// SPDX-License-Identifier: Apache-2.0
/* Desired state of a VXLAN network against what the kernel has: checks,
 * names and the diff. Pure: no syscalls, unit-tested offline. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/neighbour.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "overlay/vxlan-internal.h"
#include "overlay/vxlan.h"

#define VXLAN_PREFIX_MAX 8
#define VXLAN_MTU_MIN	 68

static const char *fmt_ip(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static void fmt_mac(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static int check_prefix(const char *prefix, struct shoal_err *err)
{
	size_t n = prefix ? strlen(prefix) : 0;

	if (n == 0 || n > VXLAN_PREFIX_MAX)
		return shoal_err_set(err, EINVAL, "device prefix \"%s\" must be 1 to %d characters",
				     prefix ? prefix : "", VXLAN_PREFIX_MAX);
	if (!isalpha((unsigned char)prefix[0]))
		return shoal_err_set(err, EINVAL, "device prefix \"%s\" must start with a letter",
				     prefix);
	for (const char *p = prefix; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return shoal_err_set(
				err, EINVAL,
				"device prefix \"%s\" may hold only letters, digits and "
				"'_'",
				prefix);
	return 0;
}

static int check_id(const char *id, struct shoal_err *err)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > VXLAN_NET_ID_MAX)
		return shoal_err_set(err, EINVAL, "network id \"%s\" must be 1 to %d characters",
				     id ? id : "", VXLAN_NET_ID_MAX);
	return 0;
}

int vxlan_net_ifnames(const char *prefix, const char *net_id, char ret_bridge[IFNAMSIZ],
		      char ret_vxlan[IFNAMSIZ], struct shoal_err *err)
{
	char h[65];
	int r;

	r = check_prefix(prefix, err);
	if (r < 0)
		return r;
	r = check_id(net_id, err);
	if (r < 0)
		return r;
	/* A hash rather than the id itself: ids are longer than IFNAMSIZ and
	 * may hold characters device names do not. */
	sha256_hex(net_id, strlen(net_id), h);
	int room = IFNAMSIZ - 1 - (int)strlen(prefix) - 1;
	snprintf(ret_bridge, IFNAMSIZ, "%sn%.*s", prefix, room, h);
	snprintf(ret_vxlan, IFNAMSIZ, "%sx%.*s", prefix, room, h);
	return 0;
}

bool vxlan_is_ifname(const char *prefix, const char *name)
{
	size_t n = strlen(prefix);
	size_t want = IFNAMSIZ - 1;

	if (strncmp(name, prefix, n) != 0 || (name[n] != 'n' && name[n] != 'x'))
		return false;
	if (strlen(name) != want)
		return false;
	for (const char *p = name + n + 1; *p; p++)
		if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
			return false;
	return true;
}

void vxlan_mac_from_addr(struct in_addr addr, uint8_t ret[6])
{
	ret[0] = 0x02;
	ret[1] = 0x42;
	memcpy(ret + 2, &addr.s_addr, 4);
}

uint16_t vxlan_net_port(const struct vxlan_net *net)
{
	return net->port ? net->port : VXLAN_PORT_DEFAULT;
}

int vxlan_net_mtu(const struct vxlan_net *net, int underlay_mtu, int *ret, struct shoal_err *err)
{
	int max = underlay_mtu - VXLAN_OVERHEAD;

	if (max < VXLAN_MTU_MIN)
		return shoal_err_set(err, EINVAL,
				     "underlay device %s has MTU %d: too small to carry VXLAN "
				     "(at least %d)",
				     net->underlay, underlay_mtu, VXLAN_MTU_MIN + VXLAN_OVERHEAD);
	if (net->mtu == 0) {
		*ret = max;
		return 0;
	}
	if (net->mtu > max)
		return shoal_err_set(err, EINVAL,
				     "MTU %d does not fit on underlay device %s (MTU %d): at most "
				     "%d, %d bytes go to the VXLAN headers",
				     net->mtu, net->underlay, underlay_mtu, max, VXLAN_OVERHEAD);
	*ret = net->mtu;
	return 0;
}

static uint32_t host_mask(uint8_t prefixlen)
{
	return prefixlen >= 32 ? 0 : 0xffffffffu >> prefixlen;
}

static bool in_subnet(struct in_addr a, struct in_addr gw, uint8_t prefixlen)
{
	uint32_t m = ~host_mask(prefixlen);

	return (ntohl(a.s_addr) & m) == (ntohl(gw.s_addr) & m);
}

static bool is_host(struct in_addr a, uint8_t prefixlen)
{
	uint32_t h = ntohl(a.s_addr) & host_mask(prefixlen);

	return h != 0 && h != host_mask(prefixlen);
}

static bool bad_unicast(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return h == 0 || h == 0xffffffffu || (h >> 28) == 0xe || (h >> 24) == 127;
}

static bool mac_zero(const uint8_t m[6])
{
	static const uint8_t z[6];

	return memcmp(m, z, 6) == 0;
}

static int cmp_remote_ip(const void *a, const void *b)
{
	const struct vxlan_remote *x = *(const struct vxlan_remote *const *)a;
	const struct vxlan_remote *y = *(const struct vxlan_remote *const *)b;
	uint32_t p = ntohl(x->ip.s_addr), q = ntohl(y->ip.s_addr);

	return p < q ? -1 : p > q;
}

static int cmp_remote_mac(const void *a, const void *b)
{
	const struct vxlan_remote *x = *(const struct vxlan_remote *const *)a;
	const struct vxlan_remote *y = *(const struct vxlan_remote *const *)b;

	return memcmp(x->mac, y->mac, 6);
}

/* Pointers to net's remotes, sorted by cmp. */
static const struct vxlan_remote **sorted_remotes(const struct vxlan_net *net,
						  int (*cmp)(const void *, const void *))
{
	const struct vxlan_remote **v = calloc(net->n_remotes ? net->n_remotes : 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < net->n_remotes; i++)
		v[i] = &net->remotes[i];
	qsort(v, net->n_remotes, sizeof(*v), cmp);
	return v;
}

static bool same_remote(const struct vxlan_remote *a, const struct vxlan_remote *b)
{
	return a->ip.s_addr == b->ip.s_addr && memcmp(a->mac, b->mac, 6) == 0 &&
	       a->vtep.s_addr == b->vtep.s_addr;
}

static int check_remotes(const struct vxlan_net *net, struct shoal_err *err)
{
	_cleanup_free_ const struct vxlan_remote **by_ip = NULL;
	_cleanup_free_ const struct vxlan_remote **by_mac = NULL;
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], m[18], m2[18];

	for (size_t i = 0; i < net->n_remotes; i++) {
		const struct vxlan_remote *e = &net->remotes[i];

		if (!in_subnet(e->ip, net->gateway, net->prefixlen) ||
		    !is_host(e->ip, net->prefixlen))
			return shoal_err_set(err, EINVAL,
					     "remote endpoint %s is not a host address of the "
					     "network's subnet (%s/%u)",
					     fmt_ip(e->ip, a), fmt_ip(net->gateway, b),
					     net->prefixlen);
		if (e->ip.s_addr == net->gateway.s_addr)
			return shoal_err_set(err, EINVAL,
					     "remote endpoint %s is this node's gateway address",
					     fmt_ip(e->ip, a));
		fmt_mac(e->mac, m);
		if (mac_zero(e->mac) || (e->mac[0] & 1))
			return shoal_err_set(err, EINVAL,
					     "remote endpoint %s has MAC %s: not a unicast address",
					     fmt_ip(e->ip, a), m);
		if (bad_unicast(e->vtep))
			return shoal_err_set(
				err, EINVAL,
				"remote endpoint %s has VTEP %s: not a unicast address",
				fmt_ip(e->ip, a), fmt_ip(e->vtep, b));
		if (e->vtep.s_addr == net->local.s_addr)
			return shoal_err_set(
				err, EINVAL,
				"remote endpoint %s has this node's own VTEP %s: local "
				"endpoints are not remote endpoints",
				fmt_ip(e->ip, a), fmt_ip(e->vtep, b));
	}
	by_ip = sorted_remotes(net, cmp_remote_ip);
	by_mac = sorted_remotes(net, cmp_remote_mac);
	if (!by_ip || !by_mac)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 1; i < net->n_remotes; i++) {
		const struct vxlan_remote *x = by_ip[i - 1], *y = by_ip[i];

		if (x->ip.s_addr == y->ip.s_addr && !same_remote(x, y)) {
			fmt_mac(x->mac, m);
			fmt_mac(y->mac, m2);
			return shoal_err_set(
				err, EINVAL,
				"remote endpoint %s is given twice, with MAC %s and %s",
				fmt_ip(x->ip, a), m, m2);
		}
	}
	for (size_t i = 1; i < net->n_remotes; i++) {
		const struct vxlan_remote *x = by_mac[i - 1], *y = by_mac[i];

		if (!memcmp(x->mac, y->mac, 6) && x->vtep.s_addr != y->vtep.s_addr) {
			fmt_mac(x->mac, m);
			return shoal_err_set(err, EINVAL,
					     "MAC %s is given behind two VTEPs, %s and %s", m,
					     fmt_ip(x->vtep, a), fmt_ip(y->vtep, b));
		}
	}
	return 0;
}

static int check_ifname(const char *what, const char *name, struct shoal_err *err)
{
	size_t n = strnlen(name, IFNAMSIZ);

	if (n == 0 || n >= IFNAMSIZ)
		return shoal_err_set(err, EINVAL,
				     "%s device name \"%.*s\" must be 1 to %d characters", what,
				     IFNAMSIZ, name, IFNAMSIZ - 1);
	if (strchr(name, '/') || strchr(name, ' ') || !strcmp(name, ".") || !strcmp(name, ".."))
		return shoal_err_set(err, EINVAL, "%s device name \"%s\" is not a valid name", what,
				     name);
	return 0;
}

int vxlan_net_check(const struct vxlan_net *net, struct shoal_err *err)
{
	char a[INET_ADDRSTRLEN];
	int r;

	r = check_id(net->id, err);
	if (r < 0)
		return r;
	if (net->vni == 0 || net->vni > VXLAN_VNI_MAX)
		return shoal_err_set(err, EINVAL, "network %s: VNI %u is outside 1..%u", net->id,
				     net->vni, VXLAN_VNI_MAX);
	if ((r = check_ifname("bridge", net->bridge, err)) < 0 ||
	    (r = check_ifname("vxlan", net->vxlan, err)) < 0 ||
	    (r = check_ifname("underlay", net->underlay, err)) < 0)
		return shoal_err_wrap(err, "network %s", net->id);
	if (!strcmp(net->bridge, net->vxlan) || !strcmp(net->bridge, net->underlay) ||
	    !strcmp(net->vxlan, net->underlay))
		return shoal_err_set(err, EINVAL,
				     "network %s: bridge, vxlan and underlay devices need three "
				     "different names",
				     net->id);
	if (bad_unicast(net->local))
		return shoal_err_set(err, EINVAL,
				     "network %s: local VTEP address %s is not a unicast address",
				     net->id, fmt_ip(net->local, a));
	if (net->prefixlen < 8 || net->prefixlen > 30)
		return shoal_err_set(err, EINVAL, "network %s: prefix length /%u is outside 8..30",
				     net->id, net->prefixlen);
	if (!is_host(net->gateway, net->prefixlen))
		return shoal_err_set(err, EINVAL,
				     "network %s: gateway %s/%u is the subnet's network or "
				     "broadcast address",
				     net->id, fmt_ip(net->gateway, a), net->prefixlen);
	if (net->mtu != 0 && (net->mtu < VXLAN_MTU_MIN || net->mtu > 65535))
		return shoal_err_set(err, EINVAL, "network %s: MTU %d is outside %d..65535",
				     net->id, net->mtu, VXLAN_MTU_MIN);
	if (net->n_remotes > VXLAN_REMOTES_MAX)
		return shoal_err_set(err, E2BIG,
				     "network %s: %zu remote endpoints, more than the %d one node "
				     "holds per network",
				     net->id, net->n_remotes, VXLAN_REMOTES_MAX);
	if (net->n_remotes && !net->remotes)
		return shoal_err_set(err, EINVAL, "network %s: remote endpoints missing", net->id);
	r = check_remotes(net, err);
	if (r < 0)
		return shoal_err_wrap(err, "network %s", net->id);
	return 0;
}

/* ---- the diff ---- */

static const char *const op_names[VXLAN_OP_KIND_MAX] = {
	[VXLAN_OP_VXLAN_DEL] = "vxlan-del",   [VXLAN_OP_BRIDGE_DEL] = "bridge-del",
	[VXLAN_OP_BRIDGE_ADD] = "bridge-add", [VXLAN_OP_BRIDGE_SET] = "bridge-set",
	[VXLAN_OP_ADDR_DEL] = "addr-del",     [VXLAN_OP_ADDR_ADD] = "addr-add",
	[VXLAN_OP_VXLAN_ADD] = "vxlan-add",   [VXLAN_OP_VXLAN_SET] = "vxlan-set",
	[VXLAN_OP_FDB_DEL] = "fdb-del",	      [VXLAN_OP_FDB_SET] = "fdb-set",
	[VXLAN_OP_NEIGH_DEL] = "neigh-del",   [VXLAN_OP_NEIGH_SET] = "neigh-set",
};

const char *vxlan_op_name(enum vxlan_op_kind k)
{
	return k < VXLAN_OP_KIND_MAX ? op_names[k] : "?";
}

void vxlan_op_describe(const struct vxlan_op *op, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], m[18];
	const char *name = vxlan_op_name(op->kind);
	const char *why = op->why ? op->why : "";

	fmt_mac(op->mac, m);
	switch (op->kind) {
	case VXLAN_OP_ADDR_DEL:
	case VXLAN_OP_ADDR_ADD:
		snprintf(buf, len, "%s %s/%u (%s)", name, fmt_ip(op->ip, a), op->prefixlen, why);
		break;
	case VXLAN_OP_FDB_DEL:
	case VXLAN_OP_FDB_SET:
		snprintf(buf, len, "%s %s -> %s (%s)", name, m, fmt_ip(op->dst, a), why);
		break;
	case VXLAN_OP_NEIGH_DEL:
	case VXLAN_OP_NEIGH_SET:
		snprintf(buf, len, "%s %s -> %s (%s)", name, fmt_ip(op->ip, b), m, why);
		break;
	case VXLAN_OP_BRIDGE_ADD:
	case VXLAN_OP_VXLAN_ADD:
	case VXLAN_OP_BRIDGE_SET:
	case VXLAN_OP_VXLAN_SET:
		if (op->mtu)
			snprintf(buf, len, "%s mtu %d (%s)", name, op->mtu, why);
		else
			snprintf(buf, len, "%s (%s)", name, why);
		break;
	default:
		snprintf(buf, len, "%s (%s)", name, why);
		break;
	}
}

void vxlan_plan_clear(struct vxlan_plan *plan)
{
	free(plan->ops);
	memset(plan, 0, sizeof(*plan));
}

static struct vxlan_op *plan_push(struct vxlan_plan *plan, enum vxlan_op_kind kind, const char *why)
{
	if (plan->n == plan->cap) {
		size_t cap = plan->cap ? plan->cap * 2 : 16;
		struct vxlan_op *ops = realloc(plan->ops, cap * sizeof(*ops));

		if (!ops)
			return NULL;
		plan->ops = ops;
		plan->cap = cap;
	}
	struct vxlan_op *op = &plan->ops[plan->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->why = why;
	return op;
}

void vxlan_plan_stats(const struct vxlan_plan *plan, struct vxlan_apply_stats *ret)
{
	struct vxlan_apply_stats s = {.ops = (unsigned int)plan->n, .mtu = plan->mtu};

	for (size_t i = 0; i < plan->n; i++) {
		switch (plan->ops[i].kind) {
		case VXLAN_OP_VXLAN_DEL:
		case VXLAN_OP_BRIDGE_DEL:
			s.links_deleted++;
			break;
		case VXLAN_OP_BRIDGE_ADD:
		case VXLAN_OP_VXLAN_ADD:
			s.links_created++;
			break;
		case VXLAN_OP_BRIDGE_SET:
		case VXLAN_OP_VXLAN_SET:
			s.links_changed++;
			break;
		case VXLAN_OP_ADDR_DEL:
		case VXLAN_OP_ADDR_ADD:
			s.addrs_changed++;
			break;
		case VXLAN_OP_FDB_DEL:
		case VXLAN_OP_FDB_SET:
			s.fdb_changed++;
			break;
		case VXLAN_OP_NEIGH_DEL:
		case VXLAN_OP_NEIGH_SET:
			s.neigh_changed++;
			break;
		default:
			break;
		}
	}
	*ret = s;
}

/* Why an existing vxlan device cannot stay, or NULL if it can. Attributes a
 * vxlan device is created with are replaced by recreating it: changelink
 * refuses most of them. */
static const char *vxlan_wrong(const struct vxlan_net *net, const struct vxlan_observed *have)
{
	const struct vxlan_link_state *v = &have->vxlan;

	if (strcmp(v->kind, "vxlan") != 0)
		return "the name is held by a device that is not vxlan";
	if (v->vni != net->vni)
		return "VNI differs";
	if (v->local.s_addr != net->local.s_addr)
		return "local VTEP address differs";
	if (v->port != vxlan_net_port(net))
		return "UDP port differs";
	if (v->link != have->underlay_ifindex)
		return "not pinned to the underlay device";
	if (v->learning)
		return "learning is on";
	if (!v->proxy)
		return "ARP proxy is off";
	if (v->l2miss || v->l3miss)
		return "miss notifications are on";
	if (v->has_group)
		return "a group or default remote is set";
	if (v->metadata)
		return "in external (metadata) mode";
	return NULL;
}

static int cmp_fdb(const void *a, const void *b)
{
	const struct vxlan_fdb_entry *x = *(const struct vxlan_fdb_entry *const *)a;
	const struct vxlan_fdb_entry *y = *(const struct vxlan_fdb_entry *const *)b;

	return memcmp(x->mac, y->mac, 6);
}

static const struct vxlan_remote *find_by_mac(const struct vxlan_remote **v, size_t n,
					      const uint8_t mac[6], size_t *ret_i)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(v[mid]->mac, mac, 6);

		if (c == 0) {
			*ret_i = mid;
			return v[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct vxlan_remote *find_by_ip(const struct vxlan_remote **v, size_t n,
					     struct in_addr ip, size_t *ret_i)
{
	size_t lo = 0, hi = n;
	uint32_t want = ntohl(ip.s_addr);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t k = ntohl(v[mid]->ip.s_addr);

		if (k == want) {
			*ret_i = mid;
			return v[mid];
		}
		if (k < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Removes exact repeats from a sorted vector (check allowed them). */
static size_t uniq(const struct vxlan_remote **v, size_t n, int (*cmp)(const void *, const void *))
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (k == 0 || cmp(&v[k - 1], &v[i]) != 0)
			v[k++] = v[i];
	return k;
}

static int diff_fdb(const struct vxlan_net *net, const struct vxlan_observed *have, bool fresh,
		    struct vxlan_plan *plan)
{
	_cleanup_free_ const struct vxlan_remote **want = sorted_remotes(net, cmp_remote_mac);
	_cleanup_free_ bool *kept = NULL;
	_cleanup_free_ const struct vxlan_fdb_entry **obs = NULL;
	size_t n;

	if (!want)
		return -ENOMEM;
	n = uniq(want, net->n_remotes, cmp_remote_mac);
	kept = calloc(n ? n : 1, sizeof(*kept));
	obs = calloc(have->n_fdb ? have->n_fdb : 1, sizeof(*obs));
	if (!kept || !obs)
		return -ENOMEM;
	for (size_t i = 0; !fresh && i < have->n_fdb; i++)
		obs[i] = &have->fdb[i];
	/* Sorted so that a plan comes out the same whatever the dump order. */
	if (!fresh)
		qsort(obs, have->n_fdb, sizeof(*obs), cmp_fdb);

	/* Deletions first: a MAC's wrong remotes go before its right one is
	 * set, so that replacing never leaves two. */
	for (size_t i = 0; !fresh && i < have->n_fdb; i++) {
		const struct vxlan_fdb_entry *e = obs[i];
		size_t k;
		const struct vxlan_remote *w = find_by_mac(want, n, e->mac, &k);

		if (w && w->vtep.s_addr == e->dst.s_addr) {
			if (e->state & NUD_PERMANENT)
				kept[k] = true;
			continue; /* set below if not permanent */
		}
		struct vxlan_op *op =
			plan_push(plan, VXLAN_OP_FDB_DEL, w ? "remote VTEP differs" : "not wanted");
		if (!op)
			return -ENOMEM;
		memcpy(op->mac, e->mac, 6);
		op->dst = e->dst;
	}
	for (size_t k = 0; k < n; k++) {
		if (kept[k])
			continue;
		struct vxlan_op *op = plan_push(plan, VXLAN_OP_FDB_SET, "missing");
		if (!op)
			return -ENOMEM;
		memcpy(op->mac, want[k]->mac, 6);
		op->dst = want[k]->vtep;
	}
	return 0;
}

static int cmp_neigh(const void *a, const void *b)
{
	const struct vxlan_neigh_entry *x = *(const struct vxlan_neigh_entry *const *)a;
	const struct vxlan_neigh_entry *y = *(const struct vxlan_neigh_entry *const *)b;
	uint32_t p = ntohl(x->ip.s_addr), q = ntohl(y->ip.s_addr);

	return p < q ? -1 : p > q;
}

static int diff_neigh(const struct vxlan_net *net, const struct vxlan_observed *have, bool fresh,
		      struct vxlan_plan *plan)
{
	_cleanup_free_ const struct vxlan_remote **want = sorted_remotes(net, cmp_remote_ip);
	_cleanup_free_ bool *kept = NULL;
	_cleanup_free_ const struct vxlan_neigh_entry **obs = NULL;
	size_t n;

	if (!want)
		return -ENOMEM;
	n = uniq(want, net->n_remotes, cmp_remote_ip);
	kept = calloc(n ? n : 1, sizeof(*kept));
	obs = calloc(have->n_neigh ? have->n_neigh : 1, sizeof(*obs));
	if (!kept || !obs)
		return -ENOMEM;
	for (size_t i = 0; !fresh && i < have->n_neigh; i++)
		obs[i] = &have->neigh[i];
	if (!fresh)
		qsort(obs, have->n_neigh, sizeof(*obs), cmp_neigh);

	for (size_t i = 0; !fresh && i < have->n_neigh; i++) {
		const struct vxlan_neigh_entry *e = obs[i];
		size_t k;
		const struct vxlan_remote *w = find_by_ip(want, n, e->ip, &k);

		if (w) {
			/* A wrong MAC or state is replaced in place below. */
			if (e->has_mac && !memcmp(e->mac, w->mac, 6) && (e->state & NUD_PERMANENT))
				kept[k] = true;
			continue;
		}
		struct vxlan_op *op = plan_push(plan, VXLAN_OP_NEIGH_DEL, "not wanted");
		if (!op)
			return -ENOMEM;
		op->ip = e->ip;
		if (e->has_mac)
			memcpy(op->mac, e->mac, 6);
	}
	for (size_t k = 0; k < n; k++) {
		if (kept[k])
			continue;
		struct vxlan_op *op = plan_push(plan, VXLAN_OP_NEIGH_SET, "missing or different");
		if (!op)
			return -ENOMEM;
		op->ip = want[k]->ip;
		memcpy(op->mac, want[k]->mac, 6);
	}
	return 0;
}

int vxlan_diff(const struct vxlan_net *net, const struct vxlan_observed *have,
	       struct vxlan_plan *plan, struct shoal_err *err)
{
	const struct vxlan_link_state *br = &have->bridge, *vx = &have->vxlan;
	uint8_t brmac[6];
	struct vxlan_op *op;
	const char *why;
	bool br_fresh = false, vx_fresh = false;
	int mtu, r;

	if (have->underlay_ifindex <= 0)
		return shoal_err_set(err, ENODEV, "network %s: underlay device %s not found",
				     net->id, net->underlay);
	r = vxlan_net_mtu(net, have->underlay_mtu, &mtu, err);
	if (r < 0)
		return shoal_err_wrap(err, "network %s", net->id);
	plan->mtu = mtu;
	vxlan_mac_from_addr(net->gateway, brmac);

	why = vx->exists ? vxlan_wrong(net, have) : NULL;
	if (why) {
		if (!plan_push(plan, VXLAN_OP_VXLAN_DEL, why))
			goto oom;
	}
	bool vx_ok = vx->exists && !why;

	if (br->exists && strcmp(br->kind, "bridge") != 0) {
		if (!plan_push(plan, VXLAN_OP_BRIDGE_DEL,
			       "the name is held by a device that is not a bridge"))
			goto oom;
	}
	if (!br->exists || strcmp(br->kind, "bridge") != 0) {
		op = plan_push(plan, VXLAN_OP_BRIDGE_ADD, br->exists ? "recreated" : "missing");
		if (!op)
			goto oom;
		op->mtu = mtu;
		memcpy(op->mac, brmac, 6);
		br_fresh = true;
	} else if (br->mtu != mtu || memcmp(br->mac, brmac, 6) != 0 || !br->up) {
		op = plan_push(plan, VXLAN_OP_BRIDGE_SET,
			       br->mtu != mtu ? "MTU differs"
			       : !br->up      ? "down"
					      : "MAC differs");
		if (!op)
			goto oom;
		op->mtu = br->mtu != mtu ? mtu : 0;
		op->set_mac = memcmp(br->mac, brmac, 6) != 0;
		memcpy(op->mac, brmac, 6);
		op->set_up = !br->up;
	}

	bool have_gw = false;
	for (size_t i = 0; !br_fresh && i < have->n_addrs; i++) {
		const struct vxlan_addr_entry *a = &have->addrs[i];

		if (a->addr.s_addr == net->gateway.s_addr && a->prefixlen == net->prefixlen) {
			have_gw = true;
			continue;
		}
		op = plan_push(plan, VXLAN_OP_ADDR_DEL, "not wanted");
		if (!op)
			goto oom;
		op->ip = a->addr;
		op->prefixlen = a->prefixlen;
	}
	if (!have_gw) {
		op = plan_push(plan, VXLAN_OP_ADDR_ADD, "missing");
		if (!op)
			goto oom;
		op->ip = net->gateway;
		op->prefixlen = net->prefixlen;
	}

	if (!vx_ok) {
		op = plan_push(plan, VXLAN_OP_VXLAN_ADD, vx->exists ? "recreated" : "missing");
		if (!op)
			goto oom;
		op->mtu = mtu;
		vx_fresh = true;
	} else {
		/* A recreated bridge has lost its ports. */
		bool master = br_fresh || vx->master != br->ifindex;

		if (vx->mtu != mtu || master || !vx->up) {
			op = plan_push(plan, VXLAN_OP_VXLAN_SET,
				       vx->mtu != mtu ? "MTU differs"
				       : master	      ? "not in the bridge"
						      : "down");
			if (!op)
				goto oom;
			op->mtu = vx->mtu != mtu ? mtu : 0;
			op->set_master = master;
			op->set_up = !vx->up;
		}
	}

	r = diff_fdb(net, have, vx_fresh, plan);
	if (r < 0)
		goto oom;
	r = diff_neigh(net, have, vx_fresh, plan);
	if (r < 0)
		goto oom;
	return 0;
oom:
	return shoal_err_set(err, ENOMEM, "out of memory planning network %s", net->id);
}
