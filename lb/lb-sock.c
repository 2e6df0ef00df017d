// SPDX-License-Identifier: Apache-2.0
/* East-west balancing: the cgroup socket hooks of sock_lb.bpf.c, sharing
 * the tc programs' service, backend and Maglev maps. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdint.h>
#include <string.h>
#include <sys/vfs.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lb/lb.h"
#include "sock_lb.skel.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct sock_lb *, sock_lb__destroy)

/* Programs attached to one cgroup hook, or maps used by one program, that a
 * query reads at once; more is an error, not a truncated answer. */
#define LB_SOCK_QUERY_MAX 64

/* Reverse hooks first: a socket that connects while the hooks go in must
 * not see its backend's address in getpeername(). Detached in reverse. */
static const struct lb_sock_hook {
	enum bpf_attach_type type;
	const char *name; /* the program's name: how our attachments are found */
} lb_sock_hooks[] = {
	{BPF_CGROUP_UDP4_RECVMSG, "lb_recvmsg4"},
	{BPF_CGROUP_INET4_GETPEERNAME, "lb_getpeername4"},
	{BPF_CGROUP_UDP4_SENDMSG, "lb_sendmsg4"},
	{BPF_CGROUP_INET4_CONNECT, "lb_connect4"},
};

/* The kernel keeps BPF_OBJ_NAME_LEN - 1 characters of a name. */
static bool lb_sock_name_eq(const char *kernel_name, const char *name)
{
	return strncmp(kernel_name, name, BPF_OBJ_NAME_LEN - 1) == 0;
}

static int lb_sock_open_cgroup(const char *path, struct shoal_err *err)
{
	_cleanup_close_ int fd = -EBADF;
	struct statfs fs;

	if (!path)
		return shoal_err_set(err, EINVAL, "no cgroup given for the socket load balancer");
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return shoal_err_errno(err, errno, "opening cgroup %s", path);
	if (fstatfs(fd, &fs) < 0)
		return shoal_err_errno(err, errno, "reading the file system of %s", path);
	if (fs.f_type != CGROUP2_SUPER_MAGIC)
		return shoal_err_set(err, EINVAL,
				     "%s is not a cgroup v2 directory; socket hooks attach to the "
				     "unified hierarchy (/sys/fs/cgroup/unified on hybrid hosts)",
				     path);
	return TAKE_FD(fd);
}

/* Ids of our program for hook h attached directly to the cgroup. */
static int lb_sock_ours(int cg, const struct lb_sock_hook *h, uint32_t ret_ids[LB_SOCK_QUERY_MAX],
			uint32_t *ret_n)
{
	uint32_t ids[LB_SOCK_QUERY_MAX], cnt = LB_SOCK_QUERY_MAX, flags = 0, n = 0;
	int r;

	r = bpf_prog_query(cg, h->type, 0, &flags, ids, &cnt);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < cnt && i < LB_SOCK_QUERY_MAX; i++) {
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);
		_cleanup_close_ int fd = bpf_prog_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue; /* detached meanwhile */
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			return -errno;
		if (lb_sock_name_eq(info.name, h->name))
			ret_ids[n++] = ids[i];
	}
	*ret_n = n;
	return 0;
}

/* A new fd for the map called name that the program uses; -ENOENT if none. */
static int lb_sock_prog_map(int prog_fd, const char *name)
{
	uint32_t ids[LB_SOCK_QUERY_MAX];
	struct bpf_prog_info info = {.nr_map_ids = LB_SOCK_QUERY_MAX,
				     .map_ids = (uint64_t)(uintptr_t)ids};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) < 0)
		return -errno;
	if (info.nr_map_ids > LB_SOCK_QUERY_MAX)
		return -E2BIG;
	for (uint32_t i = 0; i < info.nr_map_ids; i++) {
		struct bpf_map_info mi = {};
		uint32_t mlen = sizeof(mi);
		_cleanup_close_ int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) < 0)
			return -errno;
		if (lb_sock_name_eq(mi.name, name))
			return TAKE_FD(fd);
	}
	return -ENOENT;
}

/* The per-socket maps of the programs we attached here before, if any. */
static int lb_sock_old_map(int cg, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(lb_sock_hooks); i++) {
		uint32_t ids[LB_SOCK_QUERY_MAX], n = 0;
		int r = lb_sock_ours(cg, &lb_sock_hooks[i], ids, &n);

		if (r < 0)
			return r;
		for (uint32_t j = 0; j < n; j++) {
			_cleanup_close_ int pfd = bpf_prog_get_fd_by_id(ids[j]);

			if (pfd < 0)
				continue;
			r = lb_sock_prog_map(pfd, name);
			if (r != -ENOENT)
				return r;
		}
	}
	return -ENOENT;
}

/* Every map the programs share with the tc path comes from the loaded
 * ingress program; the per-socket ones from our earlier programs on this
 * cgroup, else they are created. Maps only the tc path uses are not. */
static int lb_sock_share_maps(struct lb *lb, struct sock_lb *skel, int cg, struct shoal_err *err)
{
	int ingress = lb_prog_fd(lb, LB_HOOK_INGRESS);
	struct bpf_map *map;
	int r;

	bpf_object__for_each_map(map, skel->obj)
	{
		const char *name = bpf_map__name(map);
		bool per_socket = strncmp(name, "lb_sock_", strlen("lb_sock_")) == 0;
		_cleanup_close_ int fd = -EBADF;

		if (bpf_map__is_internal(map))
			continue;
		fd = per_socket ? lb_sock_old_map(cg, name) : lb_sock_prog_map(ingress, name);
		if (fd == -ENOENT) {
			if (!per_socket && bpf_map__set_autocreate(map, false) < 0)
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
	return 0;
}

/* Attaches prog at h, in place of our earlier program there if any, next to
 * anyone else's. *ret_new: nothing of ours was there before. */
static int lb_sock_attach_one(int cg, const struct lb_sock_hook *h, int prog_fd, bool *ret_new)
{
	uint32_t ids[LB_SOCK_QUERY_MAX], n = 0;
	_cleanup_close_ int old = -EBADF;
	int r;

	r = lb_sock_ours(cg, h, ids, &n);
	if (r < 0)
		return r;
	if (n > 0) {
		old = bpf_prog_get_fd_by_id(ids[0]);
		if (old < 0)
			return -errno;
	}
	{
		LIBBPF_OPTS(bpf_prog_attach_opts, o,
			    .flags = BPF_F_ALLOW_MULTI | (old >= 0 ? BPF_F_REPLACE : 0),
			    .replace_prog_fd = old >= 0 ? old : 0);

		r = bpf_prog_attach_opts(prog_fd, cg, h->type, &o);
		if (r < 0)
			return r;
	}
	/* More than one of ours (two agents raced): one is enough. */
	for (uint32_t i = 1; i < n; i++) {
		_cleanup_close_ int extra = bpf_prog_get_fd_by_id(ids[i]);

		if (extra >= 0)
			bpf_prog_detach2(extra, cg, h->type);
	}
	*ret_new = n == 0;
	return 0;
}

static int lb_sock_detach_one(int cg, const struct lb_sock_hook *h)
{
	uint32_t ids[LB_SOCK_QUERY_MAX], n = 0;
	int r;

	r = lb_sock_ours(cg, h, ids, &n);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < n; i++) {
		_cleanup_close_ int fd = bpf_prog_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		if (bpf_prog_detach2(fd, cg, h->type) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

int lb_sock_attach(struct lb *lb, const char *cgroup_path, struct shoal_err *err)
{
	_cleanup_(sock_lb__destroyp) struct sock_lb *skel = NULL;
	_cleanup_close_ int cg = -EBADF;
	bool added[ARRAY_SIZE(lb_sock_hooks)] = {};
	int r;

	cg = lb_sock_open_cgroup(cgroup_path, err);
	if (cg < 0)
		return cg;
	skel = sock_lb__open();
	if (!skel)
		return shoal_err_errno(err, errno, "opening the socket load balancer programs");
	skel->rodata->lb_maglev_size = lb_maglev_size(lb);
	r = lb_sock_share_maps(lb, skel, cg, err);
	if (r < 0)
		return r;
	r = sock_lb__load(skel);
	if (r < 0)
		return shoal_err_errno(err, -r, "loading the socket load balancer programs");

	for (size_t i = 0; i < ARRAY_SIZE(lb_sock_hooks); i++) {
		const struct lb_sock_hook *h = &lb_sock_hooks[i];
		struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, h->name);

		r = p ? lb_sock_attach_one(cg, h, bpf_program__fd(p), &added[i]) : -ENOENT;
		if (r < 0) {
			/* Hooks this call added go; replaced ones keep the new
			 * program, which shares every map with the old. */
			for (size_t j = i; j-- > 0;)
				if (added[j])
					lb_sock_detach_one(cg, &lb_sock_hooks[j]);
			return shoal_err_errno(err, -r, "attaching %s to cgroup %s", h->name,
					       cgroup_path);
		}
	}
	/* The cgroup holds the programs, and they their maps, from here on. */
	return 0;
}

int lb_sock_detach(struct lb *lb, const char *cgroup_path, struct shoal_err *err)
{
	_cleanup_close_ int cg = -EBADF;

	cg = lb_sock_open_cgroup(cgroup_path, err);
	if (cg < 0)
		return cg;
	for (size_t i = ARRAY_SIZE(lb_sock_hooks); i-- > 0;) {
		int r = lb_sock_detach_one(cg, &lb_sock_hooks[i]);

		if (r < 0)
			return shoal_err_errno(err, -r, "detaching %s from cgroup %s",
					       lb_sock_hooks[i].name, cgroup_path);
	}
	return 0;
}
