// SPDX-License-Identifier: Apache-2.0
/* The VXLAN source filter: the tc program (bpf/vxlan_filter.bpf.c) where it
 * loads and attaches, an nftables netdev ingress table where it does not.
 * Both sit on the underlay device's ingress and judge the same packets. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <nftables/libnftables.h>

#include "bpf/shared/vxlan_filter.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "overlay/vxlan.h"
#include "vxlan_filter.skel.h"

/* Our tc filter: a fixed handle, and a priority before the load
 * balancer's (0x5348), so that VXLAN is judged before anything else looks
 * at it; what passes goes on to the next filter (TC_ACT_UNSPEC). */
#define VXF_TC_HANDLE 0x5658
#define VXF_TC_PRIO   0x5300
#define VXF_PROG_NAME "vxlan_filter"
#define VXF_LOG_SIZE  65536

static const char *const vxf_pins[] = {"vxf_allowed", "vxf_stats"};

struct vxlan_filter {
	enum vxlan_filter_kind kind;
	char underlay[IFNAMSIZ];
	char table[32]; /* nft: "<prefix>_vxlan" */
	uint16_t port;
	char reason[512]; /* why not bpf */
	struct vxf *skel;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct vxlan_filter *, vxlan_filter_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nft_ctx *, nft_ctx_free)

const char *vxlan_filter_kind_name(enum vxlan_filter_kind k)
{
	return k == VXLAN_FILTER_BPF ? "bpf" : "nft";
}

enum vxlan_filter_kind vxlan_filter_kind(const struct vxlan_filter *f)
{
	return f->kind;
}

const char *vxlan_filter_fallback_reason(const struct vxlan_filter *f)
{
	return f->reason;
}

void vxlan_filter_free(struct vxlan_filter *f)
{
	if (!f)
		return;
	vxf__destroy(f->skel);
	free(f);
}

static int check_opts(const struct vxlan_filter_opts *o, struct shoal_err *err)
{
	size_t n = o->underlay ? strlen(o->underlay) : 0;

	if (n == 0 || n >= IFNAMSIZ)
		return shoal_err_set(err, EINVAL,
				     "VXLAN filter: underlay device name \"%s\" is not valid",
				     o->underlay ? o->underlay : "");
	n = o->prefix ? strlen(o->prefix) : 0;
	if (n == 0 || n > 8)
		return shoal_err_set(err, EINVAL,
				     "VXLAN filter: device prefix \"%s\" must be 1 to 8 characters",
				     o->prefix ? o->prefix : "");
	for (const char *p = o->prefix; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return shoal_err_set(err, EINVAL,
					     "VXLAN filter: device prefix \"%s\" may hold only "
					     "letters, digits and '_'",
					     o->prefix);
	if (!o->force_nft && (!o->pin_dir || !*o->pin_dir))
		return shoal_err_set(err, EINVAL, "VXLAN filter: a bpffs pin directory is needed");
	return 0;
}

/* ---- nftables ---- */

static int nft_run(const char *cmd, char **ret_out, struct shoal_err *err)
{
	_cleanup_(nft_ctx_freep) struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);

	if (!ctx)
		return shoal_err_set(err, ENOMEM, "creating an nftables context");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, cmd) != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		char msg[512];
		size_t n;

		snprintf(msg, sizeof(msg), "%s", e && *e ? e : "unknown error");
		n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		return shoal_err_set(err, EIO, "nftables: %s", msg);
	}
	if (ret_out) {
		const char *o = nft_ctx_get_output_buffer(ctx);

		*ret_out = strdup(o ? o : "");
		if (!*ret_out)
			return shoal_err_set(err, ENOMEM, "copying nftables output");
	}
	return 0;
}

static bool nft_table_exists(const char *table)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "list table netdev %s", table);
	return nft_run(cmd, NULL, NULL) == 0;
}

static int nft_remove(const char *table, struct shoal_err *err)
{
	char cmd[96];

	if (!nft_table_exists(table))
		return 0;
	snprintf(cmd, sizeof(cmd), "delete table netdev %s", table);
	return nft_run(cmd, NULL, err);
}

/* Idempotent: the set's elements and the counter survive a second open;
 * the rule is rewritten (flush + add, one transaction). */
static int nft_setup(struct vxlan_filter *f, struct shoal_err *err)
{
	char cmd[1024];
	int n = snprintf(cmd, sizeof(cmd),
			 "add table netdev %1$s\n"
			 "add set netdev %1$s allowed { type ipv4_addr; }\n"
			 "add counter netdev %1$s unknown_source\n"
			 "add chain netdev %1$s ingress { type filter hook ingress device \"%2$s\" "
			 "priority -500; policy accept; }\n"
			 "flush chain netdev %1$s ingress\n"
			 "add rule netdev %1$s ingress ip protocol udp udp dport %3$u "
			 "ip saddr != @allowed counter name \"unknown_source\" drop\n",
			 f->table, f->underlay, f->port);

	if (n < 0 || (size_t)n >= sizeof(cmd))
		return shoal_err_set(err, ENAMETOOLONG, "nftables command too long");
	int r = nft_run(cmd, NULL, err);
	if (r < 0)
		return shoal_err_wrap(err, "creating table netdev %s on %s", f->table, f->underlay);
	return 0;
}

static int nft_set_allowed(struct vxlan_filter *f, const struct in_addr *v, size_t n,
			   struct shoal_err *err)
{
	size_t cap = 128 + n * 18;
	_cleanup_free_ char *cmd = malloc(cap);
	size_t off;

	if (!cmd)
		return shoal_err_set(err, ENOMEM, "out of memory");
	/* One transaction: the set is never seen half filled. */
	off = (size_t)snprintf(cmd, cap, "flush set netdev %s allowed\n", f->table);
	if (n) {
		off += (size_t)snprintf(cmd + off, cap - off, "add element netdev %s allowed { ",
					f->table);
		for (size_t i = 0; i < n; i++) {
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &v[i], a, sizeof(a));
			off += (size_t)snprintf(cmd + off, cap - off, "%s%s", i ? ", " : "", a);
		}
		snprintf(cmd + off, cap - off, " }\n");
	}
	int r = nft_run(cmd, NULL, err);
	if (r < 0)
		return shoal_err_wrap(err, "setting the allowed VTEPs in table netdev %s",
				      f->table);
	return 0;
}

static int nft_stats(struct vxlan_filter *f, struct vxlan_filter_stats *ret, struct shoal_err *err)
{
	_cleanup_free_ char *out = NULL;
	char cmd[96];
	const char *p;

	snprintf(cmd, sizeof(cmd), "list counter netdev %s unknown_source", f->table);
	int r = nft_run(cmd, &out, err);
	if (r < 0)
		return shoal_err_wrap(err, "reading the VXLAN drop counter");
	p = strstr(out, "packets ");
	if (!p)
		return shoal_err_set(err, EBADMSG, "no packet count in \"%s\"", out);
	memset(ret, 0, sizeof(*ret));
	ret->dropped_unknown_source = strtoull(p + 8, NULL, 10);
	return 0;
}

/* ---- eBPF ---- */

static bool prog_is_ours(uint32_t id)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	_cleanup_close_ int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return false;
	return strncmp(info.name, VXF_PROG_NAME, BPF_OBJ_NAME_LEN - 1) == 0;
}

/* Our filter off the device: 0 when gone or never there; -EBUSY when
 * someone else's program holds our handle and priority. */
static int tc_detach(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = VXF_TC_HANDLE, .priority = VXF_TC_PRIO);
	LIBBPF_OPTS(bpf_tc_opts, d, .handle = VXF_TC_HANDLE, .priority = VXF_TC_PRIO);
	int r = bpf_tc_query(&hook, &q);

	if (r == -ENOENT || r == -EINVAL)
		return 0;
	if (r < 0)
		return r;
	if (!prog_is_ours(q.prog_id))
		return -EBUSY;
	r = bpf_tc_detach(&hook, &d);
	return r == -ENOENT ? 0 : r;
}

static int tc_attach(int ifindex, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = VXF_TC_HANDLE, .priority = VXF_TC_PRIO);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = VXF_TC_HANDLE, .priority = VXF_TC_PRIO,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int r = bpf_tc_hook_create(&hook);

	if (r < 0 && r != -EEXIST)
		return r;
	r = bpf_tc_query(&hook, &q);
	if (r == 0 && !prog_is_ours(q.prog_id))
		return -EBUSY; /* never replace someone else's */
	return bpf_tc_attach(&hook, &o);
}

/* The last line of a verifier log that says something. */
static void log_reason(const char *log, char *ret, size_t len)
{
	const char *best = NULL;
	size_t best_n = 0;

	for (const char *l = log; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t k = e ? (size_t)(e - l) : strlen(l);

		if (k > 0 && strncmp(l, "processed ", 10) != 0 &&
		    strncmp(l, "verification time", 17) != 0 &&
		    strncmp(l, "stack depth", 11) != 0) {
			best = l;
			best_n = k;
		}
		l = e ? e + 1 : NULL;
	}
	if (best)
		snprintf(ret, len, "%.*s", (int)best_n, best);
}

/* Loads and attaches the program: 0, or -errno with f->reason saying why
 * not (the caller falls back). Errors the fallback cannot help with (a pin
 * directory that cannot be made, someone else's filter in our place) go to
 * err and are returned as they are, with reason left empty. */
static int bpf_setup(struct vxlan_filter *f, const char *pin_dir, int ifindex,
		     struct shoal_err *err)
{
	_cleanup_free_ char *log = malloc(VXF_LOG_SIZE);
	char path[512];
	int r;

	if (!log)
		return shoal_err_set(err, ENOMEM, "out of memory");
	log[0] = '\0';
	r = mkdir_p(pin_dir, 0700);
	if (r < 0)
		return shoal_err_errno(err, -r, "creating %s", pin_dir);
	f->skel = vxf__open();
	if (!f->skel) {
		snprintf(f->reason, sizeof(f->reason), "opening the eBPF object: %s",
			 strerror(errno));
		return -errno;
	}
	f->skel->rodata->vxf_port = f->port;
	for (size_t i = 0; i < ARRAY_SIZE(vxf_pins); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(f->skel->obj, vxf_pins[i]);

		snprintf(path, sizeof(path), "%s/%s", pin_dir, vxf_pins[i]);
		if (!m || (r = bpf_map__set_pin_path(m, path)) < 0)
			return shoal_err_set(err, EINVAL, "pinning %s", path);
	}
	bpf_program__set_log_buf(f->skel->progs.vxlan_filter, log, VXF_LOG_SIZE);
	r = vxf__load(f->skel);
	if (r < 0) {
		char why[256] = "";

		log_reason(log, why, sizeof(why));
		snprintf(f->reason, sizeof(f->reason), "loading the eBPF program: %s",
			 why[0] ? why : strerror(-r));
		return r;
	}
	r = tc_attach(ifindex, bpf_program__fd(f->skel->progs.vxlan_filter));
	if (r == -EBUSY)
		return shoal_err_set(err, EBUSY,
				     "another tc program holds handle 0x%x priority 0x%x on %s's "
				     "ingress",
				     VXF_TC_HANDLE, VXF_TC_PRIO, f->underlay);
	if (r < 0) {
		snprintf(f->reason, sizeof(f->reason), "attaching the tc program to %s: %s",
			 f->underlay, strerror(-r));
		return r;
	}
	return 0;
}

static void unpin(const char *pin_dir)
{
	char path[512];

	for (size_t i = 0; pin_dir && i < ARRAY_SIZE(vxf_pins); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, vxf_pins[i]);
		(void)unlink(path);
	}
}

int vxlan_filter_open(const struct vxlan_filter_opts *opts, struct vxlan_filter **ret,
		      struct shoal_err *err)
{
	_cleanup_(vxlan_filter_freep) struct vxlan_filter *f = NULL;
	unsigned int ifindex;
	int r;

	r = check_opts(opts, err);
	if (r < 0)
		return r;
	ifindex = if_nametoindex(opts->underlay);
	if (ifindex == 0)
		return shoal_err_errno(err, errno, "VXLAN filter: underlay device %s",
				       opts->underlay);
	f = calloc(1, sizeof(*f));
	if (!f)
		return shoal_err_set(err, ENOMEM, "out of memory");
	snprintf(f->underlay, sizeof(f->underlay), "%s", opts->underlay);
	snprintf(f->table, sizeof(f->table), "%s_vxlan", opts->prefix);
	f->port = opts->port ? opts->port : VXLAN_PORT_DEFAULT;

	if (opts->force_nft) {
		snprintf(f->reason, sizeof(f->reason),
			 "turned off (force_nft), as if it did not load");
	} else {
		struct shoal_err e2 = {0};

		r = bpf_setup(f, opts->pin_dir, (int)ifindex, &e2);
		if (r >= 0) {
			f->kind = VXLAN_FILTER_BPF;
			f->reason[0] = '\0';
			/* Coming back from the fallback: one filter, not two. */
			r = nft_remove(f->table, err);
			if (r < 0)
				return r;
			*ret = TAKE_PTR(f);
			return 0;
		}
		if (!f->reason[0]) {
			if (err)
				*err = e2;
			return r;
		}
		vxf__destroy(f->skel);
		f->skel = NULL;
	}
	f->kind = VXLAN_FILTER_NFT;
	r = tc_detach((int)ifindex);
	if (r < 0 && r != -EBUSY)
		return shoal_err_errno(err, -r, "detaching the VXLAN tc program from %s",
				       f->underlay);
	r = nft_setup(f, err);
	if (r < 0 && !opts->force_nft)
		return shoal_err_wrap(err,
				      "VXLAN filter: the eBPF program is unavailable (%s), and "
				      "so is the nftables fallback",
				      f->reason);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(f);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int bpf_set_allowed(struct vxlan_filter *f, const struct in_addr *v, size_t n,
			   struct shoal_err *err)
{
	int fd = bpf_map__fd(f->skel->maps.vxf_allowed);
	_cleanup_free_ uint32_t *want = calloc(n ? n : 1, sizeof(*want));
	uint32_t key, next;
	uint8_t one = 1;
	size_t k = 0;
	int r;

	if (!want)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		want[i] = v[i].s_addr;
	qsort(want, n, sizeof(*want), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || want[k - 1] != want[i])
			want[k++] = want[i];
	if (k > VXF_ALLOWED_MAX)
		return shoal_err_set(err, E2BIG, "%zu VTEPs allowed, more than the filter's %d", k,
				     VXF_ALLOWED_MAX);
	/* Additions before removals: a node in both sets never drops out. */
	for (size_t i = 0; i < k; i++) {
		if (bpf_map_update_elem(fd, &want[i], &one, BPF_ANY) < 0)
			return shoal_err_errno(err, errno, "adding an allowed VTEP");
	}
	/* Deleting the current key breaks a get_next walk: collect first. */
	_cleanup_free_ uint32_t *gone = calloc(VXF_ALLOWED_MAX, sizeof(*gone));
	size_t n_gone = 0;
	if (!gone)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (r = bpf_map_get_next_key(fd, NULL, &next); r == 0;
	     r = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (!bsearch(&key, want, k, sizeof(*want), cmp_u32) && n_gone < VXF_ALLOWED_MAX)
			gone[n_gone++] = key;
	}
	for (size_t i = 0; i < n_gone; i++)
		if (bpf_map_delete_elem(fd, &gone[i]) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "removing an allowed VTEP");
	return 0;
}

int vxlan_filter_set_allowed(struct vxlan_filter *f, const struct in_addr *vteps, size_t n,
			     struct shoal_err *err)
{
	if (n && !vteps)
		return shoal_err_set(err, EINVAL, "allowed VTEPs missing");
	if (n > VXF_ALLOWED_MAX)
		return shoal_err_set(err, E2BIG, "%zu VTEPs allowed, more than the filter's %d", n,
				     VXF_ALLOWED_MAX);
	if (f->kind == VXLAN_FILTER_BPF)
		return bpf_set_allowed(f, vteps, n, err);
	return nft_set_allowed(f, vteps, n, err);
}

int vxlan_filter_stats(struct vxlan_filter *f, struct vxlan_filter_stats *ret,
		       struct shoal_err *err)
{
	if (f->kind == VXLAN_FILTER_NFT)
		return nft_stats(f, ret, err);

	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return shoal_err_errno(err, ncpu ? -ncpu : EINVAL, "counting possible CPUs");
	_cleanup_free_ uint64_t *vals = calloc((size_t)ncpu, sizeof(*vals));
	uint64_t sum[VXF_STATS_SLOTS] = {0};
	int fd = bpf_map__fd(f->skel->maps.vxf_stats);

	if (!vals)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (uint32_t slot = 0; slot < VXF_STATS_SLOTS; slot++) {
		if (bpf_map_lookup_elem(fd, &slot, vals) < 0)
			return shoal_err_errno(err, errno, "reading VXLAN filter counters");
		for (int c = 0; c < ncpu; c++)
			sum[slot] += vals[c];
	}
	ret->accepted = sum[VXF_STAT_ACCEPTED];
	ret->dropped_unknown_source = sum[-VXF_DROP_UNKNOWN_SOURCE];
	return 0;
}

int vxlan_filter_remove(const struct vxlan_filter_opts *opts, struct shoal_err *err)
{
	char table[32];
	unsigned int ifindex;
	int r;

	r = check_opts(opts, err);
	if (r < 0)
		return r;
	ifindex = if_nametoindex(opts->underlay);
	if (ifindex) {
		r = tc_detach((int)ifindex);
		if (r == -EBUSY)
			return shoal_err_set(err, EBUSY,
					     "the tc program at handle 0x%x priority 0x%x on %s is "
					     "not ours: left in place",
					     VXF_TC_HANDLE, VXF_TC_PRIO, opts->underlay);
		if (r < 0)
			return shoal_err_errno(err, -r, "detaching the VXLAN tc program from %s",
					       opts->underlay);
	}
	unpin(opts->pin_dir);
	snprintf(table, sizeof(table), "%s_vxlan", opts->prefix);
	return nft_remove(table, err);
}
