// SPDX-License-Identifier: Apache-2.0
/* VXLAN networks in the kernel, over libnl-route-3: dump what exists, diff
 * (overlay/vxlan-diff.c), apply the difference in order. libnl does every
 * object here but one (vxlan link attributes, ARP neighbours through
 * rtnl_neigh, addresses, the dumps); its errors carry no extended ACK text,
 * so each one is wrapped with what was being done. The exception is the
 * vxlan FDB entry: libnl 3.7 leaves NDA_DST out of every AF_BRIDGE request,
 * and an FDB entry without its remote VTEP is refused, so those requests
 * are built on libmnl (overlay/vxlan-fdb.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <linux/neighbour.h>

#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/socket.h>

#include "lib/cleanup.h"
#include "overlay/vxlan-internal.h"
#include "overlay/vxlan.h"

/* Rounds of dump-diff-apply in one call: a second and third only when a
 * change raced with someone else's (an object appeared or went between the
 * dump and the request). */
#define VXLAN_APPLY_ROUNDS 3

struct vxlan_ctx {
	struct nl_sock *sk;	    /* libnl */
	struct vxlan_fdb_sock *fdb; /* libmnl, for the FDB */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_neigh *, rtnl_neigh_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vxlan_ctx *, vxlan_ctx_free)

/* libnl's own codes, back to errno for callers (and the API's status). */
static int nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_EXIST:
		return EEXIST;
	case NLE_OBJ_NOTFOUND:
		return ENOENT;
	case NLE_NODEV:
		return ENODEV;
	case NLE_PERM:
		return EPERM;
	case NLE_NOACCESS:
		return EACCES;
	case NLE_INVAL:
	case NLE_MISSING_ATTR:
		return EINVAL;
	case NLE_NOMEM:
		return ENOMEM;
	case NLE_BUSY:
		return EBUSY;
	case NLE_RANGE:
		return ERANGE;
	case NLE_OPNOTSUPP:
		return EOPNOTSUPP;
	case NLE_NOADDR:
		return EADDRNOTAVAIL;
	case NLE_AGAIN:
		return EAGAIN;
	case NLE_AF_NOSUPPORT:
		return EAFNOSUPPORT;
	default:
		return EIO;
	}
}

static int nle_set(struct shoal_err *err, int nle, const char *what, const char *name)
{
	return shoal_err_set(err, nle_errno(nle), "%s %s: %s", what, name, nl_geterror(nle));
}

static const char *fmt_ip(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

int vxlan_ctx_new(struct vxlan_ctx **ret, struct shoal_err *err)
{
	_cleanup_(vxlan_ctx_freep) struct vxlan_ctx *ctx = calloc(1, sizeof(*ctx));
	int r;

	if (!ctx)
		return shoal_err_set(err, ENOMEM, "out of memory");
	ctx->sk = nl_socket_alloc();
	if (!ctx->sk)
		return shoal_err_set(err, ENOMEM, "allocating a netlink socket");
	r = nl_connect(ctx->sk, NETLINK_ROUTE);
	if (r < 0)
		return nle_set(err, r, "opening", "a NETLINK_ROUTE socket");
	r = vxlan_fdb_sock_open(&ctx->fdb);
	if (r < 0)
		return shoal_err_errno(err, -r, "opening a NETLINK_ROUTE socket");
	*ret = TAKE_PTR(ctx);
	return 0;
}

void vxlan_ctx_free(struct vxlan_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->sk)
		nl_socket_free(ctx->sk);
	vxlan_fdb_sock_free(ctx->fdb);
	free(ctx);
}

static struct nl_addr *addr_in(struct in_addr a)
{
	return nl_addr_build(AF_INET, &a, sizeof(a));
}

static struct nl_addr *addr_ll(const uint8_t mac[6])
{
	return nl_addr_build(AF_LLC, mac, 6);
}

static bool in_from(struct nl_addr *a, struct in_addr *ret)
{
	if (!a || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4)
		return false;
	memcpy(ret, nl_addr_get_binary_addr(a), 4);
	return true;
}

static bool mac_from(struct nl_addr *a, uint8_t ret[6])
{
	if (!a || nl_addr_get_len(a) != 6)
		return false;
	memcpy(ret, nl_addr_get_binary_addr(a), 6);
	return true;
}

/* ---- dump ---- */

static int link_get(struct vxlan_ctx *ctx, const char *name, struct rtnl_link **ret,
		    struct shoal_err *err)
{
	int r = rtnl_link_get_kernel(ctx->sk, 0, name, ret);

	if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		return nle_set(err, r, "reading device", name);
	return 1;
}

static void link_fill(struct rtnl_link *l, struct vxlan_link_state *ret)
{
	const char *kind = rtnl_link_get_type(l);

	memset(ret, 0, sizeof(*ret));
	ret->exists = true;
	ret->ifindex = rtnl_link_get_ifindex(l);
	snprintf(ret->kind, sizeof(ret->kind), "%s", kind ? kind : "");
	ret->up = rtnl_link_get_flags(l) & IFF_UP;
	ret->mtu = (int)rtnl_link_get_mtu(l);
	ret->master = rtnl_link_get_master(l);
	mac_from(rtnl_link_get_addr(l), ret->mac);
	if (!kind || strcmp(kind, "vxlan") != 0)
		return;

	uint32_t u = 0;
	if (rtnl_link_vxlan_get_id(l, &u) == 0)
		ret->vni = u;
	u = 0;
	if (rtnl_link_vxlan_get_port(l, &u) == 0)
		ret->port = (uint16_t)u;
	u = 0;
	if (rtnl_link_vxlan_get_link(l, &u) == 0)
		ret->link = (int)u;
	_cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
	if (rtnl_link_vxlan_get_local(l, &local) == 0)
		in_from(local, &ret->local);
	_cleanup_(nl_addr_putp) struct nl_addr *group = NULL;
	struct in_addr g = {0};
	if (rtnl_link_vxlan_get_group(l, &group) == 0)
		ret->has_group = !in_from(group, &g) || g.s_addr != 0;
	ret->learning = rtnl_link_vxlan_get_learning(l) > 0;
	ret->proxy = rtnl_link_vxlan_get_proxy(l) > 0;
	ret->l2miss = rtnl_link_vxlan_get_l2miss(l) > 0;
	ret->l3miss = rtnl_link_vxlan_get_l3miss(l) > 0;
	ret->metadata = rtnl_link_vxlan_get_collect_metadata(l) > 0;
}

struct observed_buf {
	struct vxlan_observed o;
	struct vxlan_fdb_entry *fdb;
	struct vxlan_neigh_entry *neigh;
	struct vxlan_addr_entry *addrs;
	size_t cap_fdb, cap_neigh, cap_addrs;
};

static void observed_buf_clear(struct observed_buf *b)
{
	free(b->fdb);
	free(b->neigh);
	free(b->addrs);
	memset(b, 0, sizeof(*b));
}

/* Grows *v (of *cap elements of size sz) to hold n + 1. */
static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *p = realloc(*v, c * sz);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static int observe_neigh(struct vxlan_ctx *ctx, struct observed_buf *b, struct shoal_err *err)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	int vx = b->o.vxlan.ifindex;
	int r;

	/* One dump per family: AF_UNSPEC does not include the bridge FDB. */
	r = rtnl_neigh_alloc_cache_flags(ctx->sk, &cache, NL_CACHE_AF_ITER);
	if (r < 0)
		return nle_set(err, r, "dumping", "neighbour and FDB entries");
	for (struct nl_object *obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_neigh *n = (struct rtnl_neigh *)obj;

		if (rtnl_neigh_get_ifindex(n) != vx)
			continue;
		int family = rtnl_neigh_get_family(n);
		if (family == AF_BRIDGE) {
			/* The bridge's own entries for the port (NTF_MASTER)
			 * are the bridge's business. */
			if ((rtnl_neigh_get_flags(n) & NTF_MASTER) || rtnl_neigh_get_master(n) > 0)
				continue;
			struct vxlan_fdb_entry e = {.state = (uint16_t)rtnl_neigh_get_state(n)};
			if (!mac_from(rtnl_neigh_get_lladdr(n), e.mac))
				continue;
			in_from(rtnl_neigh_get_dst(n), &e.dst);
			if (grow((void **)&b->fdb, &b->cap_fdb, b->o.n_fdb, sizeof(e)) < 0)
				return shoal_err_set(err, ENOMEM, "out of memory");
			b->fdb[b->o.n_fdb++] = e;
		} else if (family == AF_INET) {
			struct vxlan_neigh_entry e = {.state = (uint16_t)rtnl_neigh_get_state(n)};
			if (!in_from(rtnl_neigh_get_dst(n), &e.ip))
				continue;
			e.has_mac = mac_from(rtnl_neigh_get_lladdr(n), e.mac);
			if (grow((void **)&b->neigh, &b->cap_neigh, b->o.n_neigh, sizeof(e)) < 0)
				return shoal_err_set(err, ENOMEM, "out of memory");
			b->neigh[b->o.n_neigh++] = e;
		}
	}
	b->o.fdb = b->fdb;
	b->o.neigh = b->neigh;
	return 0;
}

static int observe_addrs(struct vxlan_ctx *ctx, struct observed_buf *b, struct shoal_err *err)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	int r;

	r = rtnl_addr_alloc_cache(ctx->sk, &cache);
	if (r < 0)
		return nle_set(err, r, "dumping", "addresses");
	for (struct nl_object *obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_addr *a = (struct rtnl_addr *)obj;
		struct vxlan_addr_entry e = {0};

		if (rtnl_addr_get_ifindex(a) != b->o.bridge.ifindex ||
		    rtnl_addr_get_family(a) != AF_INET)
			continue;
		if (!in_from(rtnl_addr_get_local(a), &e.addr))
			continue;
		e.prefixlen = (uint8_t)rtnl_addr_get_prefixlen(a);
		if (grow((void **)&b->addrs, &b->cap_addrs, b->o.n_addrs, sizeof(e)) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		b->addrs[b->o.n_addrs++] = e;
	}
	b->o.addrs = b->addrs;
	return 0;
}

static int observe(struct vxlan_ctx *ctx, const struct vxlan_net *net, struct observed_buf *b,
		   struct shoal_err *err)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *ul = NULL, *br = NULL, *vx = NULL;
	int r;

	observed_buf_clear(b);
	if ((r = link_get(ctx, net->underlay, &ul, err)) < 0 ||
	    (r = link_get(ctx, net->bridge, &br, err)) < 0 ||
	    (r = link_get(ctx, net->vxlan, &vx, err)) < 0)
		return r;
	if (ul) {
		b->o.underlay_ifindex = rtnl_link_get_ifindex(ul);
		b->o.underlay_mtu = (int)rtnl_link_get_mtu(ul);
	}
	if (br)
		link_fill(br, &b->o.bridge);
	if (vx)
		link_fill(vx, &b->o.vxlan);
	if (br && (r = observe_addrs(ctx, b, err)) < 0)
		return r;
	if (vx && (r = observe_neigh(ctx, b, err)) < 0)
		return r;
	return 0;
}

/* ---- apply ---- */

struct exec_state {
	int br_ifindex;
	int vx_ifindex;
	int ul_ifindex;
};

static int link_del(struct vxlan_ctx *ctx, const char *name, struct shoal_err *err)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *l = rtnl_link_alloc();
	int r;

	if (!l)
		return shoal_err_set(err, ENOMEM, "out of memory");
	rtnl_link_set_name(l, name);
	r = rtnl_link_delete(ctx->sk, l);
	if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
		return 0;
	if (r < 0)
		return nle_set(err, r, "deleting device", name);
	return 0;
}

static int link_set(struct vxlan_ctx *ctx, const char *name, int ifindex, const struct vxlan_op *op,
		    int master, struct shoal_err *err)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *orig = rtnl_link_alloc();
	_cleanup_(rtnl_link_putp) struct rtnl_link *ch = rtnl_link_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *mac = NULL;
	int r;

	if (!orig || !ch)
		return shoal_err_set(err, ENOMEM, "out of memory");
	rtnl_link_set_ifindex(orig, ifindex);
	if (op->mtu)
		rtnl_link_set_mtu(ch, (unsigned int)op->mtu);
	if (op->set_up)
		rtnl_link_set_flags(ch, IFF_UP);
	if (op->set_master)
		rtnl_link_set_master(ch, master);
	if (op->set_mac) {
		mac = addr_ll(op->mac);
		if (!mac)
			return shoal_err_set(err, ENOMEM, "out of memory");
		rtnl_link_set_addr(ch, mac);
	}
	r = rtnl_link_change(ctx->sk, orig, ch, 0);
	if (r < 0)
		return nle_set(err, r, "changing device", name);
	return 0;
}

static int bridge_add(struct vxlan_ctx *ctx, const struct vxlan_net *net, const struct vxlan_op *op,
		      struct shoal_err *err)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *l = rtnl_link_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *mac = addr_ll(op->mac);
	int r;

	if (!l || !mac)
		return shoal_err_set(err, ENOMEM, "out of memory");
	r = rtnl_link_set_type(l, "bridge");
	if (r < 0)
		return nle_set(err, r, "creating bridge", net->bridge);
	rtnl_link_set_name(l, net->bridge);
	rtnl_link_set_mtu(l, (unsigned int)op->mtu);
	/* A set MAC keeps the bridge from taking a port's, and lets other
	 * nodes know the gateway's MAC from its address. */
	rtnl_link_set_addr(l, mac);
	rtnl_link_set_flags(l, IFF_UP);
	r = rtnl_link_add(ctx->sk, l, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0)
		return nle_set(err, r, "creating bridge", net->bridge);
	return 0;
}

static int vxlan_add(struct vxlan_ctx *ctx, const struct vxlan_net *net, const struct vxlan_op *op,
		     const struct exec_state *st, struct shoal_err *err)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *l = rtnl_link_vxlan_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *local = addr_in(net->local);
	char a[INET_ADDRSTRLEN];
	int r;

	if (!l || !local)
		return shoal_err_set(err, ENOMEM, "out of memory");
	rtnl_link_set_name(l, net->vxlan);
	if ((r = rtnl_link_vxlan_set_id(l, net->vni)) < 0 ||
	    (r = rtnl_link_vxlan_set_local(l, local)) < 0 ||
	    (r = rtnl_link_vxlan_set_port(l, vxlan_net_port(net))) < 0 ||
	    (r = rtnl_link_vxlan_set_link(l, (uint32_t)st->ul_ifindex)) < 0 ||
	    /* The kernel turns learning on unless told otherwise. */
	    (r = rtnl_link_vxlan_set_learning(l, 0)) < 0 ||
	    /* ARP for remote endpoints answered here from the neighbour
	     * entries, never sent across. */
	    (r = rtnl_link_vxlan_set_proxy(l, 1)) < 0 ||
	    (r = rtnl_link_vxlan_set_l2miss(l, 0)) < 0 ||
	    (r = rtnl_link_vxlan_set_l3miss(l, 0)) < 0)
		return nle_set(err, r, "creating vxlan device", net->vxlan);
	rtnl_link_set_mtu(l, (unsigned int)op->mtu);
	rtnl_link_set_master(l, st->br_ifindex);
	rtnl_link_set_flags(l, IFF_UP);
	r = rtnl_link_add(ctx->sk, l, NLM_F_CREATE | NLM_F_EXCL);
	if (r == -NLE_EXIST) {
		int e = shoal_err_set(
			err, EEXIST,
			"creating vxlan device %s: another VXLAN device may already use "
			"VNI %u on %s port %u",
			net->vxlan, net->vni, fmt_ip(net->local, a), vxlan_net_port(net));
		return e;
	}
	if (r == -NLE_NOADDR || r == -NLE_INVAL)
		return shoal_err_set(err, nle_errno(r),
				     "creating vxlan device %s: %s (is %s an address of this node "
				     "on %s?)",
				     net->vxlan, nl_geterror(r), fmt_ip(net->local, a),
				     net->underlay);
	if (r < 0)
		return nle_set(err, r, "creating vxlan device", net->vxlan);
	return 0;
}

static int addr_op(struct vxlan_ctx *ctx, const struct vxlan_net *net, const struct vxlan_op *op,
		   int ifindex, bool add, struct shoal_err *err)
{
	_cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *local = addr_in(op->ip);
	char s[INET_ADDRSTRLEN];
	int r;

	if (!a || !local)
		return shoal_err_set(err, ENOMEM, "out of memory");
	nl_addr_set_prefixlen(local, op->prefixlen);
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_family(a, AF_INET);
	rtnl_addr_set_prefixlen(a, op->prefixlen);
	if ((r = rtnl_addr_set_local(a, local)) < 0)
		goto fail;
	if (add) {
		uint32_t hm = op->prefixlen >= 32 ? 0 : 0xffffffffu >> op->prefixlen;
		struct in_addr brd = {.s_addr = op->ip.s_addr | htonl(hm)};
		_cleanup_(nl_addr_putp) struct nl_addr *b = addr_in(brd);

		if (!b)
			return shoal_err_set(err, ENOMEM, "out of memory");
		if ((r = rtnl_addr_set_broadcast(a, b)) < 0)
			goto fail;
		r = rtnl_addr_add(ctx->sk, a, NLM_F_REPLACE);
	} else {
		r = rtnl_addr_delete(ctx->sk, a, 0);
		if (r == -NLE_NOADDR || r == -NLE_OBJ_NOTFOUND)
			r = 0;
	}
	if (r >= 0)
		return 0;
fail:
	return shoal_err_set(err, nle_errno(r), "%s address %s/%u on %s: %s",
			     add ? "adding" : "deleting", fmt_ip(op->ip, s), op->prefixlen,
			     net->bridge, nl_geterror(r));
}

static int fdb_op(struct vxlan_ctx *ctx, const struct vxlan_net *net, const struct vxlan_op *op,
		  int ifindex, struct shoal_err *err)
{
	bool add = op->kind == VXLAN_OP_FDB_SET;
	char ext[256], desc[128];
	int r;

	r = vxlan_fdb_send(ctx->fdb, add, ifindex, op->mac, op->dst, ext, sizeof(ext));
	if (r >= 0 || (r == -ENOENT && !add))
		return 0;
	vxlan_op_describe(op, desc, sizeof(desc));
	return shoal_err_set(err, -r, "%s on %s: %s%s%s", desc, net->vxlan, strerror(-r),
			     ext[0] ? ": " : "", ext);
}

static int neigh_op(struct vxlan_ctx *ctx, const struct vxlan_net *net, const struct vxlan_op *op,
		    int ifindex, struct shoal_err *err)
{
	bool add = op->kind == VXLAN_OP_NEIGH_SET;
	_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = rtnl_neigh_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *dst = addr_in(op->ip);
	_cleanup_(nl_addr_putp) struct nl_addr *ll = addr_ll(op->mac);
	char desc[128];
	int r;

	if (!n || !dst || !ll)
		return shoal_err_set(err, ENOMEM, "out of memory");
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_family(n, AF_INET);
	rtnl_neigh_set_dst(n, dst);
	rtnl_neigh_set_lladdr(n, ll);
	if (add) {
		rtnl_neigh_set_state(n, NUD_PERMANENT);
		/* Replace: an entry someone left (or a crash half way) is
		 * overwritten, never "File exists". */
		r = rtnl_neigh_add(ctx->sk, n, NLM_F_CREATE | NLM_F_REPLACE);
	} else {
		r = rtnl_neigh_delete(ctx->sk, n, 0);
		if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NOADDR)
			r = 0;
	}
	if (r >= 0)
		return 0;
	vxlan_op_describe(op, desc, sizeof(desc));
	return shoal_err_set(err, nle_errno(r), "%s on %s: %s", desc, net->vxlan, nl_geterror(r));
}

static int refresh_ifindex(const char *name, int *ret, struct shoal_err *err)
{
	unsigned int i = if_nametoindex(name);

	if (i == 0)
		return shoal_err_errno(err, errno, "looking up %s after creating it", name);
	*ret = (int)i;
	return 0;
}

static int exec_op(struct vxlan_ctx *ctx, const struct vxlan_net *net, const struct vxlan_op *op,
		   struct exec_state *st, struct shoal_err *err)
{
	int r;

	switch (op->kind) {
	case VXLAN_OP_VXLAN_DEL:
		st->vx_ifindex = 0;
		return link_del(ctx, net->vxlan, err);
	case VXLAN_OP_BRIDGE_DEL:
		st->br_ifindex = 0;
		return link_del(ctx, net->bridge, err);
	case VXLAN_OP_BRIDGE_ADD:
		r = bridge_add(ctx, net, op, err);
		return r < 0 ? r : refresh_ifindex(net->bridge, &st->br_ifindex, err);
	case VXLAN_OP_BRIDGE_SET:
		return link_set(ctx, net->bridge, st->br_ifindex, op, 0, err);
	case VXLAN_OP_ADDR_DEL:
	case VXLAN_OP_ADDR_ADD:
		return addr_op(ctx, net, op, st->br_ifindex, op->kind == VXLAN_OP_ADDR_ADD, err);
	case VXLAN_OP_VXLAN_ADD:
		r = vxlan_add(ctx, net, op, st, err);
		return r < 0 ? r : refresh_ifindex(net->vxlan, &st->vx_ifindex, err);
	case VXLAN_OP_VXLAN_SET:
		return link_set(ctx, net->vxlan, st->vx_ifindex, op, st->br_ifindex, err);
	case VXLAN_OP_FDB_DEL:
	case VXLAN_OP_FDB_SET:
		return fdb_op(ctx, net, op, st->vx_ifindex, err);
	case VXLAN_OP_NEIGH_DEL:
	case VXLAN_OP_NEIGH_SET:
		return neigh_op(ctx, net, op, st->vx_ifindex, err);
	default:
		return shoal_err_set(err, EINVAL, "unknown operation %d", (int)op->kind);
	}
}

static int plan_net(struct vxlan_ctx *ctx, const struct vxlan_net *net, struct observed_buf *b,
		    struct vxlan_plan *plan, struct shoal_err *err)
{
	int r = observe(ctx, net, b, err);

	if (r < 0)
		return shoal_err_wrap(err, "network %s", net->id);
	return vxlan_diff(net, &b->o, plan, err);
}

int vxlan_net_apply(struct vxlan_ctx *ctx, const struct vxlan_net *net,
		    struct vxlan_apply_stats *ret, struct shoal_err *err)
{
	struct vxlan_apply_stats total = {0};
	int r;

	r = vxlan_net_check(net, err);
	if (r < 0)
		return r;
	for (int round = 0; round < VXLAN_APPLY_ROUNDS; round++) {
		struct observed_buf b = {0};
		struct vxlan_plan plan = {0};
		struct vxlan_apply_stats s;
		struct exec_state st;
		bool raced = false;

		r = plan_net(ctx, net, &b, &plan, err);
		st = (struct exec_state){.br_ifindex = b.o.bridge.ifindex,
					 .vx_ifindex = b.o.vxlan.ifindex,
					 .ul_ifindex = b.o.underlay_ifindex};
		observed_buf_clear(&b);
		if (r < 0) {
			vxlan_plan_clear(&plan);
			return r;
		}
		for (size_t i = 0; i < plan.n; i++) {
			r = exec_op(ctx, net, &plan.ops[i], &st, err);
			if (r == -EEXIST || r == -ENOENT || r == -ENODEV) {
				/* Someone else changed it since the dump:
				 * dump again and redo the rest. */
				if (round + 1 < VXLAN_APPLY_ROUNDS) {
					plan.n = i;
					raced = true;
					break;
				}
			}
			if (r < 0) {
				vxlan_plan_clear(&plan);
				return shoal_err_wrap(err, "network %s", net->id);
			}
		}
		vxlan_plan_stats(&plan, &s);
		vxlan_plan_clear(&plan);
		total.ops += s.ops;
		total.links_created += s.links_created;
		total.links_deleted += s.links_deleted;
		total.links_changed += s.links_changed;
		total.addrs_changed += s.addrs_changed;
		total.fdb_changed += s.fdb_changed;
		total.neigh_changed += s.neigh_changed;
		total.mtu = s.mtu;
		if (!raced)
			break;
	}
	if (ret)
		*ret = total;
	return 0;
}

int vxlan_net_plan(struct vxlan_ctx *ctx, const struct vxlan_net *net,
		   struct vxlan_apply_stats *ret, char *desc, size_t desclen, struct shoal_err *err)
{
	struct observed_buf b = {0};
	struct vxlan_plan plan = {0};
	int r;

	r = vxlan_net_check(net, err);
	if (r < 0)
		return r;
	r = plan_net(ctx, net, &b, &plan, err);
	observed_buf_clear(&b);
	if (r < 0) {
		vxlan_plan_clear(&plan);
		return r;
	}
	if (desc && desclen) {
		size_t off = 0;

		desc[0] = '\0';
		for (size_t i = 0; i < plan.n && off + 1 < desclen; i++) {
			char line[256];

			vxlan_op_describe(&plan.ops[i], line, sizeof(line));
			int w = snprintf(desc + off, desclen - off, "%s\n", line);
			if (w < 0)
				break;
			off += (size_t)w;
		}
	}
	if (ret)
		vxlan_plan_stats(&plan, ret);
	vxlan_plan_clear(&plan);
	return 0;
}

int vxlan_net_remove(struct vxlan_ctx *ctx, const char *bridge, const char *vxlan,
		     struct shoal_err *err)
{
	int r;

	/* The vxlan device first: its FDB and neighbour entries go with it,
	 * and the bridge is then empty. */
	r = link_del(ctx, vxlan, err);
	if (r < 0)
		return r;
	return link_del(ctx, bridge, err);
}

int vxlan_sweep(struct vxlan_ctx *ctx, const char *prefix, const char *const *keep, size_t n,
		struct shoal_err *err)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	char(*doomed)[IFNAMSIZ] = NULL;
	size_t n_doomed = 0, cap = 0;
	int removed = 0, r;

	r = rtnl_link_alloc_cache(ctx->sk, AF_UNSPEC, &cache);
	if (r < 0)
		return nle_set(err, r, "dumping", "devices");
	for (struct nl_object *obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		const char *name = rtnl_link_get_name((struct rtnl_link *)obj);
		bool kept = false;

		if (!name || !vxlan_is_ifname(prefix, name))
			continue;
		for (size_t i = 0; i < n && !kept; i++)
			kept = keep[i] && !strcmp(keep[i], name);
		if (kept)
			continue;
		if (grow((void **)&doomed, &cap, n_doomed, sizeof(*doomed)) < 0) {
			free(doomed);
			return shoal_err_set(err, ENOMEM, "out of memory");
		}
		snprintf(doomed[n_doomed++], IFNAMSIZ, "%s", name);
	}
	for (size_t i = 0; i < n_doomed; i++) {
		r = link_del(ctx, doomed[i], err);
		if (r < 0) {
			free(doomed);
			return r;
		}
		removed++;
	}
	free(doomed);
	return removed;
}
