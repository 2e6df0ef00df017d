// SPDX-License-Identifier: Apache-2.0
/* The load balancer's programs on interfaces: tc ingress and egress, and the
 * XDP ingress program where asked for and the driver runs it natively. */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "lb/lb-internal.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/err.h"

/* Our tc filters: a fixed handle and priority per hook, so that a restarted
 * agent replaces its own programs and never touches anyone else's. */
#define LB_TC_HANDLE 0x5348
#define LB_TC_PRIO   0x5348

bool lb_prog_is_named(uint32_t prog_id, const char *name)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	_cleanup_close_ int fd = bpf_prog_get_fd_by_id(prog_id);

	if (fd < 0)
		return false;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return false;
	return strncmp(info.name, name, BPF_OBJ_NAME_LEN - 1) == 0;
}

int lb_prog_map_fd(int prog_fd, const char *name)
{
	uint32_t ids[LB_PROG_MAPS_MAX];
	struct bpf_prog_info info = {.nr_map_ids = LB_PROG_MAPS_MAX,
				     .map_ids = (uint64_t)(uintptr_t)ids};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) < 0)
		return -errno;
	if (info.nr_map_ids > LB_PROG_MAPS_MAX)
		return -E2BIG;
	for (uint32_t i = 0; i < info.nr_map_ids; i++) {
		struct bpf_map_info mi = {};
		uint32_t mlen = sizeof(mi);
		_cleanup_close_ int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) < 0)
			return -errno;
		if (strncmp(mi.name, name, BPF_OBJ_NAME_LEN - 1) == 0)
			return TAKE_FD(fd);
	}
	return -ENOENT;
}

int lb_tc_detach_at(int ifindex, enum bpf_tc_attach_point point, uint32_t handle, uint32_t prio,
		    const char *name)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = handle, .priority = prio);
	LIBBPF_OPTS(bpf_tc_opts, d, .handle = handle, .priority = prio);
	int r;

	r = bpf_tc_query(&hook, &q);
	if (r == -ENOENT || r == -EINVAL || r == -ENODEV)
		return 0; /* no such filter, no clsact, or no interface */
	if (r < 0)
		return r;
	if (!lb_prog_is_named(q.prog_id, name))
		return -EBUSY;
	r = bpf_tc_detach(&hook, &d);
	return r == -ENOENT || r == -ENODEV ? 0 : r;
}

int lb_tc_attach_at(int ifindex, enum bpf_tc_attach_point point, uint32_t handle, uint32_t prio,
		    int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = handle, .priority = prio, .prog_fd = prog_fd,
		    .flags = BPF_TC_F_REPLACE);
	int r;

	r = bpf_tc_hook_create(&hook);
	if (r < 0 && r != -EEXIST)
		return r;
	return bpf_tc_attach(&hook, &o);
}

static int lb_tc_detach_one(int ifindex, enum bpf_tc_attach_point point, const char *name)
{
	return lb_tc_detach_at(ifindex, point, LB_TC_HANDLE, LB_TC_PRIO, name);
}

static int lb_tc_attach_one(int ifindex, enum bpf_tc_attach_point point, int prog_fd)
{
	return lb_tc_attach_at(ifindex, point, LB_TC_HANDLE, LB_TC_PRIO, prog_fd);
}

/* Our XDP program off the interface, native mode only (the only one we
 * attach): 0, or -EBUSY when another program is there. */
static int lb_xdp_detach_one(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, o);
	uint32_t id = 0;
	int r;

	r = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);
	if (r == -ENODEV || (r >= 0 && id == 0))
		return 0;
	if (r < 0)
		return r;
	if (!lb_prog_is_named(id, "lb_xdp_ingress"))
		return -EBUSY;
	_cleanup_close_ int fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Only if it is still that program: never someone else's. */
	o.old_prog_fd = fd;
	r = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE | XDP_FLAGS_REPLACE, &o);
	return r == -EEXIST || r == -ENOENT ? 0 : r;
}

/* Native mode or nothing: generic XDP runs on an skb that exists already
 * and costs more than the tc program it would precede. Replaces our own
 * earlier program; another one stays (-EBUSY). */
static int lb_xdp_attach_one(struct lb *lb, int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, o);
	uint32_t id = 0;
	int r;

	r = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);
	if (r < 0)
		return r;
	if (id && !lb_prog_is_named(id, "lb_xdp_ingress"))
		return -EBUSY;
	_cleanup_close_ int old = id ? bpf_prog_get_fd_by_id(id) : -EBADF;
	uint32_t flags = XDP_FLAGS_DRV_MODE;

	if (old >= 0) {
		o.old_prog_fd = old;
		flags |= XDP_FLAGS_REPLACE;
	} else {
		flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
	}
	return bpf_xdp_attach(ifindex, lb_prog_fd(lb, LB_HOOK_XDP), flags, &o);
}

int lb_xdp_attached(int ifindex)
{
	uint32_t id = 0;
	int r = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);

	if (r < 0)
		return r;
	return id && lb_prog_is_named(id, "lb_xdp_ingress");
}

int lb_attach(struct lb *lb, int ifindex, struct shoal_err *err)
{
	bool known = false;
	int r;

	if (ifindex <= 0)
		return shoal_err_set(err, EINVAL, "bad interface index %d", ifindex);
	for (size_t i = 0; i < lb->n_hooks; i++)
		known |= lb->hooks[i] == ifindex;
	if (!known && lb->n_hooks == LB_MAX_HOOKS)
		return shoal_err_set(err, ENOSPC, "the load balancer is on %d interfaces already",
				     LB_MAX_HOOKS);
	r = lb_tc_attach_one(ifindex, BPF_TC_INGRESS, lb_prog_fd(lb, LB_HOOK_INGRESS));
	if (r < 0)
		return shoal_err_errno(err, -r, "attaching tc ingress on interface %d", ifindex);
	r = lb_tc_attach_one(ifindex, BPF_TC_EGRESS, lb_prog_fd(lb, LB_HOOK_EGRESS));
	if (r < 0) {
		lb_tc_detach_one(ifindex, BPF_TC_INGRESS, "lb_ingress");
		return shoal_err_errno(err, -r, "attaching tc egress on interface %d", ifindex);
	}
	if (!known)
		lb->hooks[lb->n_hooks++] = ifindex;
	/* XDP after tc, which must be there for the packets XDP hands on. A
	 * driver without native XDP, or another XDP program, leaves tc alone
	 * doing the work: 0. Without opts.xdp, ours from an earlier agent goes. */
	if (!lb->xdp_on) {
		lb_xdp_detach_one(ifindex);
		return 0;
	}
	return lb_xdp_attach_one(lb, ifindex) < 0 ? 0 : 1;
}

int lb_attach_ifname(struct lb *lb, const char *ifname, struct shoal_err *err)
{
	unsigned int idx = if_nametoindex(ifname);

	if (idx == 0)
		return shoal_err_errno(err, errno, "interface %s", ifname);
	return lb_attach(lb, (int)idx, err);
}

int lb_detach(struct lb *lb, int ifindex, struct shoal_err *err)
{
	int r1, r2;

	r1 = lb_xdp_detach_one(ifindex);
	if (r1 < 0 && r1 != -EBUSY)
		return shoal_err_errno(err, -r1, "detaching XDP from interface %d", ifindex);
	r1 = lb_tc_detach_one(ifindex, BPF_TC_INGRESS, "lb_ingress");
	r2 = lb_tc_detach_one(ifindex, BPF_TC_EGRESS, "lb_egress");
	for (size_t i = 0; lb && i < lb->n_hooks; i++)
		if (lb->hooks[i] == ifindex) {
			lb->hooks[i] = lb->hooks[--lb->n_hooks];
			break;
		}
	if (r1 == -EBUSY || r2 == -EBUSY)
		return shoal_err_set(err, EBUSY,
				     "interface %d has another program at the load balancer's tc "
				     "handle; left in place",
				     ifindex);
	if (r1 < 0 || r2 < 0)
		return shoal_err_errno(err, r1 < 0 ? -r1 : -r2,
				       "detaching the load balancer from interface %d", ifindex);
	return 0;
}
