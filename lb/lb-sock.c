// SPDX-License-Identifier: Apache-2.0
/* East-west balancing: the cgroup socket hooks of sock_lb.bpf.c, sharing
 * the tc programs' service, backend and Maglev maps. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"
#include "lb/lb-internal.h"
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

/* The node hooks, in the same order; each attachment is a bpf_link pinned
 * as pin_dir/link_<name>. */
static const struct lb_sock_hook lb_node_hooks[] = {
	{BPF_CGROUP_UDP4_RECVMSG, "node_recvmsg4"},
	{BPF_CGROUP_INET4_GETPEERNAME, "node_getpeer4"},
	{BPF_CGROUP_UDP4_SENDMSG, "node_sendmsg4"},
	{BPF_CGROUP_INET4_CONNECT, "node_connect4"},
};

/* Maps of the node hooks alone, pinned in pin_dir (with the per-socket ones). */
static bool lb_node_map(const char *name)
{
	return strncmp(name, "lb_node_", strlen("lb_node_")) == 0;
}

/* Loads only the programs of one hook set. */
static int lb_sock_only(struct sock_lb *skel, const struct lb_sock_hook *hooks, size_t n)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj)
	{
		bool want = false;

		for (size_t i = 0; i < n; i++)
			if (strcmp(bpf_program__name(prog), hooks[i].name) == 0)
				want = true;
		if (bpf_program__set_autoload(prog, want) < 0)
			return -EINVAL;
	}
	return 0;
}

static int lb_sock_available(struct lb *lb, struct shoal_err *err)
{
	const struct lb_feature_status *st = lb_feature(lb, LB_FEAT_SOCKET_LB);

	if (st->state != LB_FEATURE_ON)
		return shoal_err_set(err, EOPNOTSUPP, "the socket hooks are unavailable: %s",
				     st->reason);
	return 0;
}

static int lb_sock_load(struct sock_lb *skel, const char *what, struct shoal_err *err)
{
	char reason[256];
	int r;

	lb_load_log_begin(reason, sizeof(reason));
	r = sock_lb__load(skel);
	lb_load_log_end();
	if (r < 0)
		return shoal_err_set(err, -r, "loading %s: %s", what,
				     reason[0] ? reason : strerror(-r));
	return 0;
}

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
			r = lb_prog_map_fd(pfd, name);
			if (r != -ENOENT)
				return r;
		}
	}
	return -ENOENT;
}

/* Every map the programs share with the tc path comes from the loaded
 * ingress program. The per-socket ones: with a pin_dir (node hooks), pinned
 * there and reused from there, with the node hooks' own maps; else from our
 * earlier programs on this cgroup, or created. Maps only the tc path uses,
 * and the node maps for the VIP hooks, are not created. */
static int lb_sock_share_maps(struct lb *lb, struct sock_lb *skel, int cg, const char *pin_dir,
			      struct shoal_err *err)
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
		if (pin_dir && (per_socket || lb_node_map(name))) {
			char path[PATH_MAX];

			snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
			r = bpf_map__set_pin_path(map, path);
			if (r < 0)
				return shoal_err_errno(err, -r, "pinning map %s", name);
			continue;
		}
		if (lb_node_map(name)) {
			if (bpf_map__set_autocreate(map, false) < 0)
				return shoal_err_set(err, EINVAL, "leaving out map %s", name);
			continue;
		}
		fd = per_socket ? lb_sock_old_map(cg, name) : lb_prog_map_fd(ingress, name);
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

	r = lb_sock_available(lb, err);
	if (r < 0)
		return r;
	cg = lb_sock_open_cgroup(cgroup_path, err);
	if (cg < 0)
		return cg;
	skel = sock_lb__open();
	if (!skel)
		return shoal_err_errno(err, errno, "opening the socket load balancer programs");
	LB_SET_KNOBS(lb, skel);
	if (lb_sock_only(skel, lb_sock_hooks, ARRAY_SIZE(lb_sock_hooks)) < 0)
		return shoal_err_set(err, EINVAL, "selecting the socket load balancer programs");
	r = lb_sock_share_maps(lb, skel, cg, NULL, err);
	if (r < 0)
		return r;
	r = lb_sock_load(skel, "the socket load balancer programs", err);
	if (r < 0)
		return r;

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

/* The root of the cgroup v2 tree that holds path: its topmost ancestor on
 * the same file system. */
static int lb_sock_cgroup_root(const char *path, char *ret, size_t len, struct shoal_err *err)
{
	char cur[PATH_MAX];
	struct stat st, up;

	if (!path)
		return shoal_err_set(err, EINVAL, "no cgroup given for the node hooks");
	if (!realpath(path, cur))
		return shoal_err_errno(err, errno, "resolving cgroup %s", path);
	if (stat(cur, &st) < 0)
		return shoal_err_errno(err, errno, "cgroup %s", cur);
	for (;;) {
		char *slash = strrchr(cur, '/');

		if (!slash || slash == cur)
			break;
		*slash = '\0';
		if (stat(cur, &up) < 0 || up.st_dev != st.st_dev) {
			*slash = '/';
			break;
		}
	}
	if ((size_t)snprintf(ret, len, "%s", cur) >= len)
		return shoal_err_set(err, ENAMETOOLONG, "cgroup path %s is too long", cur);
	return 0;
}

/* The network namespace of the caller. */
static int lb_sock_netns_cookie(__u64 *ret)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(*ret);

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, ret, &len) < 0)
		return -errno;
	return 0;
}

static void lb_node_link_path(const char *pin_dir, const struct lb_sock_hook *h, char *ret,
			      size_t len)
{
	snprintf(ret, len, "%s/link_%s", pin_dir, h->name);
}

/* Puts prog at h through the pinned link: the link of an earlier agent gets
 * the new program in place; else a new link is made and pinned.
 * *ret_new: the link is new. */
static int lb_node_link(int cg, const struct lb_sock_hook *h, int prog_fd, const char *pin_dir,
			bool *ret_new)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -EBADF;
	int r;

	lb_node_link_path(pin_dir, h, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (bpf_link_update(fd, prog_fd, NULL) == 0) {
			*ret_new = false;
			return 0;
		}
		/* a link detached meanwhile holds nothing: it is replaced */
		unlink(path);
		close(TAKE_FD(fd));
	}
	fd = bpf_link_create(prog_fd, cg, h->type, NULL);
	if (fd < 0)
		return fd;
	r = bpf_obj_pin(fd, path);
	if (r < 0)
		return r;
	*ret_new = true;
	return 0;
}

static int lb_node_unlink(const char *pin_dir, const struct lb_sock_hook *h)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -EBADF;

	lb_node_link_path(pin_dir, h, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	/* detached now, whoever else holds the link */
	if (bpf_link_detach(fd) < 0 && errno != ENOLINK && errno != EINVAL)
		return -errno;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int lb_sock_node_attach(struct lb *lb, const char *cgroup_path, const char *pin_dir,
			struct shoal_err *err)
{
	_cleanup_(sock_lb__destroyp) struct sock_lb *skel = NULL;
	_cleanup_close_ int cg = -EBADF;
	bool added[ARRAY_SIZE(lb_node_hooks)] = {};
	struct lb_node_cfg cfg = {};
	char root[PATH_MAX];
	uint32_t zero = 0;
	int r;

	r = lb_sock_available(lb, err);
	if (r < 0)
		return r;
	r = lb_sock_cgroup_root(cgroup_path, root, sizeof(root), err);
	if (r < 0)
		return r;
	cg = lb_sock_open_cgroup(root, err);
	if (cg < 0)
		return cg;
	r = lb_sock_netns_cookie(&cfg.netns_cookie);
	if (r < 0)
		return shoal_err_errno(err, -r, "reading the network namespace cookie");
	r = mkdir_p(pin_dir, 0700);
	if (r < 0)
		return shoal_err_errno(err, -r, "creating %s", pin_dir);
	skel = sock_lb__open();
	if (!skel)
		return shoal_err_errno(err, errno, "opening the socket load balancer programs");
	LB_SET_KNOBS(lb, skel);
	if (lb_sock_only(skel, lb_node_hooks, ARRAY_SIZE(lb_node_hooks)) < 0)
		return shoal_err_set(err, EINVAL, "selecting the node hooks");
	r = lb_sock_share_maps(lb, skel, cg, pin_dir, err);
	if (r < 0)
		return r;
	r = lb_sock_load(skel, "the node hooks", err);
	if (r < 0)
		return r;
	r = bpf_map__update_elem(skel->maps.lb_node_cfg, &zero, sizeof(zero), &cfg, sizeof(cfg),
				 BPF_ANY);
	if (r < 0)
		return shoal_err_errno(err, -r, "writing the node hooks' configuration");

	for (size_t i = 0; i < ARRAY_SIZE(lb_node_hooks); i++) {
		const struct lb_sock_hook *h = &lb_node_hooks[i];
		struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, h->name);

		r = p ? lb_node_link(cg, h, bpf_program__fd(p), pin_dir, &added[i]) : -ENOENT;
		if (r < 0) {
			for (size_t j = i; j-- > 0;)
				if (added[j])
					lb_node_unlink(pin_dir, &lb_node_hooks[j]);
			return shoal_err_errno(err, -r, "attaching %s to cgroup %s", h->name, root);
		}
	}
	return 0;
}

int lb_sock_node_detach(const char *pin_dir, struct shoal_err *err)
{
	static const char *const maps[] = {"lb_node_cfg", "lb_node_addrs", "lb_sock_flows",
					   "lb_sock_rnat"};

	for (size_t i = ARRAY_SIZE(lb_node_hooks); i-- > 0;) {
		int r = lb_node_unlink(pin_dir, &lb_node_hooks[i]);

		if (r < 0)
			return shoal_err_errno(err, -r, "detaching %s", lb_node_hooks[i].name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", pin_dir, maps[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "removing %s", path);
	}
	if (rmdir(pin_dir) < 0 && errno != ENOENT)
		return shoal_err_errno(err, errno, "removing %s", pin_dir);
	return 0;
}

int lb_sock_node_addrs(const char *pin_dir, const uint32_t *addrs, size_t n, struct shoal_err *err)
{
	uint32_t have[LB_NODE_ADDRS_MAX], key, next;
	_cleanup_close_ int fd = -EBADF;
	char path[PATH_MAX];
	size_t nh = 0;
	uint8_t one = 1;
	int r;

	if (n > LB_NODE_ADDRS_MAX)
		return shoal_err_set(err, E2BIG, "%zu node addresses; at most %d", n,
				     LB_NODE_ADDRS_MAX);
	snprintf(path, sizeof(path), "%s/lb_node_addrs", pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return shoal_err_errno(err, -fd, "opening %s", path);
	for (r = bpf_map_get_next_key(fd, NULL, &next); r == 0 && nh < LB_NODE_ADDRS_MAX;
	     r = bpf_map_get_next_key(fd, &key, &next)) {
		have[nh++] = next;
		key = next;
	}
	for (size_t i = 0; i < nh; i++) {
		bool keep = false;

		for (size_t j = 0; j < n; j++)
			if (addrs[j] == have[i])
				keep = true;
		if (!keep && bpf_map_delete_elem(fd, &have[i]) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "removing a node address");
	}
	for (size_t j = 0; j < n; j++)
		if (bpf_map_update_elem(fd, &addrs[j], &one, BPF_ANY) < 0)
			return shoal_err_errno(err, errno, "adding a node address");
	return 0;
}
