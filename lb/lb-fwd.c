// SPDX-License-Identifier: Apache-2.0
/* Host routing to local endpoints: the registry the uplink's ingress program
 * reads (lb_local_eps) and the reply program on the containers' veths. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"
#include "lb/lb-internal.h"
#include "lb/lb.h"
#include "tc_veth.skel.h"

/* Our filter on a veth's tc ingress: a fixed handle and priority, so that a
 * restarted agent replaces its own program and never touches another. */
#define LB_FWD_TC_HANDLE 0x5346
#define LB_FWD_TC_PRIO	 0x5346
#define LB_FWD_PROG_NAME "lb_veth_ingress"

/* The ingress program's maps that lb-fwd pins itself. */
static const char *const lb_fwd_pinned[] = {"lb_local_eps", "lb_fwd_flows"};

struct lb_fwd {
	struct lb *lb; /* keeps the backends' endpoint slots (lb_be_eps) */
	struct tc_veth *skel;
	int fd_eps;   /* lb_local_eps of the load balancer */
	int fd_flows; /* lb_fwd_flows */
	int *hooks;   /* ifindexes we attached to */
	size_t n_hooks;
};

static int lb_fwd_map_id(int fd, uint32_t *ret)
{
	struct bpf_map_info mi = {};
	uint32_t len = sizeof(mi);

	if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0)
		return -errno;
	*ret = mi.id;
	return 0;
}

/* Copies every entry of from into to, which must have the same key and value
 * sizes; entries that do not fit (a full map) are left out. */
static int lb_fwd_copy_map(int from, int to)
{
	struct bpf_map_info mf = {}, mt = {};
	uint32_t lf = sizeof(mf), lt = sizeof(mt);
	_cleanup_free_ uint8_t *key = NULL, *next = NULL, *val = NULL;
	bool first = true;

	if (bpf_obj_get_info_by_fd(from, &mf, &lf) < 0 || bpf_obj_get_info_by_fd(to, &mt, &lt) < 0)
		return -errno;
	if (mf.key_size != mt.key_size || mf.value_size != mt.value_size)
		return -EINVAL;
	key = calloc(1, mf.key_size);
	next = calloc(1, mf.key_size);
	val = calloc(1, mf.value_size);
	if (!key || !next || !val)
		return -ENOMEM;
	for (;;) {
		if (bpf_map_get_next_key(from, first ? NULL : key, next) < 0)
			return errno == ENOENT ? 0 : -errno;
		first = false;
		memcpy(key, next, mf.key_size);
		if (bpf_map_lookup_elem(from, key, val) < 0)
			continue; /* evicted meanwhile */
		if (bpf_map_update_elem(to, key, val, BPF_ANY) < 0 && errno != E2BIG)
			return -errno;
	}
}

/* Pins fd at dir/name. A pin of another map there is replaced; with
 * carry_over, that map's entries are copied into fd first. */
static int lb_fwd_pin(const char *dir, const char *name, int fd, bool carry_over,
		      struct shoal_err *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int old = -EBADF;
	uint32_t id = 0, old_id = 0;
	int r;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	r = lb_fwd_map_id(fd, &id);
	if (r < 0)
		return shoal_err_errno(err, -r, "reading map %s", name);
	old = bpf_obj_get(path);
	if (old >= 0) {
		r = lb_fwd_map_id(old, &old_id);
		if (r < 0)
			return shoal_err_errno(err, -r, "reading pinned map %s", path);
		if (old_id == id)
			return 0;
		if (carry_over) {
			r = lb_fwd_copy_map(old, fd);
			if (r < 0)
				return shoal_err_errno(err, -r, "carrying %s over", path);
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "removing the old pin %s", path);
	} else if (errno != ENOENT) {
		return shoal_err_errno(err, errno, "opening pinned map %s", path);
	}
	if (bpf_obj_pin(fd, path) < 0)
		return shoal_err_errno(err, errno, "pinning %s", path);
	return 0;
}

struct lb_fwd *lb_fwd_close(struct lb_fwd *f)
{
	if (!f)
		return NULL;
	tc_veth__destroy(f->skel);
	if (f->fd_eps >= 0)
		close(f->fd_eps);
	if (f->fd_flows >= 0)
		close(f->fd_flows);
	free(f->hooks);
	free(f);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_fwd *, lb_fwd_close)

/* The veth program shares the ingress program's maps; those it does not use
 * are not created. */
static int lb_fwd_load(struct lb_fwd *f, int ingress, struct shoal_err *err)
{
	char reason[256];
	struct bpf_map *map;
	int r;

	f->skel = tc_veth__open();
	if (!f->skel)
		return shoal_err_errno(err, errno, "opening the veth program");
	LB_SET_KNOBS(f->lb, f->skel);
	bpf_object__for_each_map(map, f->skel->obj)
	{
		const char *name = bpf_map__name(map);
		_cleanup_close_ int fd = -EBADF;

		if (bpf_map__is_internal(map))
			continue;
		fd = lb_prog_map_fd(ingress, name);
		if (fd == -ENOENT) {
			if (bpf_map__set_autocreate(map, false) < 0)
				return shoal_err_set(err, EINVAL, "leaving out map %s", name);
			continue;
		}
		if (fd < 0)
			return shoal_err_errno(err, -fd, "finding the load balancer's map %s",
					       name);
		r = bpf_map__reuse_fd(map, fd);
		if (r < 0)
			return shoal_err_errno(err, -r, "sharing map %s", name);
	}
	lb_load_log_begin(reason, sizeof(reason));
	r = tc_veth__load(f->skel);
	lb_load_log_end();
	if (r < 0)
		return shoal_err_set(err, -r, "loading the veth program: %s",
				     reason[0] ? reason : strerror(-r));
	return 0;
}

int lb_fwd_open(struct lb *lb, const struct lb_fwd_open_opts *opts, struct lb_fwd **ret,
		struct shoal_err *err)
{
	_cleanup_(lb_fwd_closep) struct lb_fwd *f = NULL;
	int ingress, r;

	if (!lb)
		return shoal_err_set(err, EINVAL, "no load balancer to forward for");
	if (lb_feature(lb, LB_FEAT_HOST_ROUTING)->state != LB_FEATURE_ON)
		return shoal_err_set(err, EOPNOTSUPP, "host routing is unavailable: %s",
				     lb_feature(lb, LB_FEAT_HOST_ROUTING)->reason);
	ingress = lb_prog_fd(lb, LB_HOOK_INGRESS);
	f = calloc(1, sizeof(*f));
	if (!f)
		return shoal_err_set(err, ENOMEM, "out of memory");
	f->lb = lb;
	f->fd_eps = f->fd_flows = -EBADF;
	f->fd_eps = lb_local_eps_fd(lb);
	if (f->fd_eps < 0)
		return shoal_err_errno(err, -f->fd_eps, "sharing the local endpoint map");
	f->fd_flows = lb_prog_map_fd(ingress, "lb_fwd_flows");
	if (f->fd_flows < 0)
		return shoal_err_errno(err, -f->fd_flows,
				       "the tc ingress program has no forwarded flow map");
	r = lb_fwd_load(f, ingress, err);
	if (r < 0) {
		/* The ingress program redirects only to endpoints registered
		 * here, which without the reply program must be none. */
		lb_feature_unavailable(lb, LB_FEAT_HOST_ROUTING, err->msg);
		return r;
	}
	if (opts && opts->pin_dir) {
		r = mkdir_p(opts->pin_dir, 0700);
		if (r < 0)
			return shoal_err_errno(err, -r, "creating %s", opts->pin_dir);
		/* Endpoints are registered again by the caller; flows are not. */
		r = lb_fwd_pin(opts->pin_dir, lb_fwd_pinned[0], f->fd_eps, false, err);
		if (r >= 0)
			r = lb_fwd_pin(opts->pin_dir, lb_fwd_pinned[1], f->fd_flows, true, err);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(f);
	return 0;
}

int lb_fwd_prog_fd(const struct lb_fwd *f)
{
	return bpf_program__fd(f->skel->progs.lb_veth_ingress);
}

/* ---- endpoints ---- */

int lb_endpoint_set(struct lb_fwd *f, const struct lb_endpoint *ep, struct shoal_err *err)
{
	struct lb_local_ep v = {};
	int r;

	if (!ep || ep->addr == 0 || ep->ifindex <= 0)
		return shoal_err_set(err, EINVAL, "a local endpoint needs an address and a veth");
	v.ifindex = (uint32_t)ep->ifindex;
	memcpy(v.mac, ep->mac, sizeof(v.mac));
	memcpy(v.host_mac, ep->host_mac, sizeof(v.host_mac));
	if (bpf_map_update_elem(f->fd_eps, &ep->addr, &v, BPF_ANY) < 0)
		return shoal_err_errno(err, errno, "registering local endpoint");
	r = lb_local_ep_sync(f->lb, ep->addr, &v);
	if (r < 0)
		return shoal_err_errno(err, -r, "pointing the backends at the local endpoint");
	return 0;
}

int lb_endpoint_delete(struct lb_fwd *f, uint32_t addr, struct shoal_err *err)
{
	struct lb_local_ep v;
	int r;

	if (bpf_map_lookup_elem(f->fd_eps, &addr, &v) < 0)
		return shoal_err_errno(err, errno, "removing local endpoint");
	r = lb_local_ep_sync(f->lb, addr, NULL);
	if (r < 0)
		return shoal_err_errno(err, -r, "taking the local endpoint from the backends");
	if (bpf_map_delete_elem(f->fd_eps, &addr) < 0)
		return shoal_err_errno(err, errno, "removing local endpoint");
	return 0;
}

int lb_endpoint_list(struct lb_fwd *f, struct lb_endpoint **ret, size_t *ret_n)
{
	_cleanup_free_ struct lb_endpoint *v = NULL;
	uint32_t key = 0, next;
	bool first = true;
	size_t n = 0;

	v = calloc(LB_MAX_LOCAL_EPS, sizeof(*v));
	if (!v)
		return -ENOMEM;
	while (n < LB_MAX_LOCAL_EPS) {
		struct lb_local_ep e;

		if (bpf_map_get_next_key(f->fd_eps, first ? NULL : &key, &next) < 0) {
			if (errno == ENOENT)
				break;
			return -errno;
		}
		first = false;
		key = next;
		if (bpf_map_lookup_elem(f->fd_eps, &key, &e) < 0)
			continue;
		v[n].addr = key;
		v[n].ifindex = (int)e.ifindex;
		memcpy(v[n].mac, e.mac, sizeof(e.mac));
		memcpy(v[n].host_mac, e.host_mac, sizeof(e.host_mac));
		n++;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* ---- veth hooks ---- */

int lb_veth_attach(struct lb_fwd *f, int ifindex, struct shoal_err *err)
{
	bool known = false;
	int r;

	if (ifindex <= 0)
		return shoal_err_set(err, EINVAL, "bad interface index %d", ifindex);
	for (size_t i = 0; i < f->n_hooks; i++)
		known |= f->hooks[i] == ifindex;
	if (!known && f->n_hooks >= LB_MAX_LOCAL_EPS)
		return shoal_err_set(err, ENOSPC, "the reply program is on %d veths already",
				     LB_MAX_LOCAL_EPS);
	r = lb_tc_attach_at(ifindex, BPF_TC_INGRESS, LB_FWD_TC_HANDLE, LB_FWD_TC_PRIO,
			    lb_fwd_prog_fd(f));
	if (r < 0)
		return shoal_err_errno(err, -r, "attaching the reply program to interface %d",
				       ifindex);
	if (!known) {
		int *nh = reallocarray(f->hooks, f->n_hooks + 1, sizeof(*nh));

		if (!nh)
			return shoal_err_set(err, ENOMEM, "out of memory");
		f->hooks = nh;
		f->hooks[f->n_hooks++] = ifindex;
	}
	return 0;
}

int lb_veth_detach(struct lb_fwd *f, int ifindex, struct shoal_err *err)
{
	int r;

	for (size_t i = 0; i < f->n_hooks; i++)
		if (f->hooks[i] == ifindex) {
			f->hooks[i] = f->hooks[--f->n_hooks];
			break;
		}
	r = lb_tc_detach_at(ifindex, BPF_TC_INGRESS, LB_FWD_TC_HANDLE, LB_FWD_TC_PRIO,
			    LB_FWD_PROG_NAME);
	if (r == -EBUSY)
		return shoal_err_set(err, EBUSY,
				     "interface %d has another program at the reply program's tc "
				     "handle; left in place",
				     ifindex);
	if (r < 0)
		return shoal_err_errno(err, -r, "detaching the reply program from interface %d",
				       ifindex);
	return 0;
}
