// SPDX-License-Identifier: Apache-2.0
/* Network policy enforcement: the pinned maps, the veth and socket
 * programs, the endpoint registry, counters and the flow log reader. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb/lb-internal.h"
#include "lb/lb-policy.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"
#include "policy_sock.skel.h"
#include "policy_veth.skel.h"

/* Our filters on a veth: before the load balancer's reply program (a lower
 * priority number runs first), a handle of our own. */
#define LB_POLICY_TC_HANDLE 0x5350
#define LB_POLICY_TC_PRIO   0x5300

#define LB_POLICY_QUEUE_TICK_MS 100 /* the queue fallback's drain period */

/* What survives an agent restart: the state enforcement reads. The flow log
 * buffers belong to their reader. */
static const char *const lb_policy_pinned[] = {
	"policy_ipcache",    "policy_eps", "policy_map",      "policy_local_eps", "policy_veth_eps",
	"policy_cgroup_eps", "policy_ct",  "policy_counters", "policy_stats",
};

struct lb_policy {
	struct policy_veth *veth;
	struct policy_sock *sock;
	struct lb_feature_status ringbuf;
	char sock_reason[256]; /* why the socket programs are unavailable; "" if not */
	int ncpus;
	int fd_ipcache, fd_eps, fd_map, fd_local, fd_veth, fd_cgroup, fd_counters, fd_stats;
	struct ring_buffer *rb;
	int timer; /* the queue's drain tick, without a ring buffer */
	lb_policy_flow_cb cb;
	void *userdata;
	int consumed;
};

const struct lb_feature_status *lb_policy_ringbuf(const struct lb_policy *p)
{
	return &p->ringbuf;
}

struct lb_policy *lb_policy_close(struct lb_policy *p)
{
	if (!p)
		return NULL;
	ring_buffer__free(p->rb);
	if (p->timer >= 0)
		close(p->timer);
	policy_sock__destroy(p->sock);
	policy_veth__destroy(p->veth);
	free(p);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_policy *, lb_policy_close)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_compiled *, policy_compiled_free)

int lb_policy_prog_fd(const struct lb_policy *p, enum lb_policy_prog prog)
{
	switch (prog) {
	case LB_POLICY_FROM_EP:
		return bpf_program__fd(p->veth->progs.pol_from_ep);
	case LB_POLICY_TO_EP:
		return bpf_program__fd(p->veth->progs.pol_to_ep);
	case LB_POLICY_CONNECT4:
		return p->sock ? bpf_program__fd(p->sock->progs.pol_connect4) : -ENOENT;
	case LB_POLICY_SENDMSG4:
		return p->sock ? bpf_program__fd(p->sock->progs.pol_sendmsg4) : -ENOENT;
	}
	return -EINVAL;
}

static bool lb_policy_is_pinned(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(lb_policy_pinned); i++)
		if (strcmp(lb_policy_pinned[i], name) == 0)
			return true;
	return false;
}

/* The size of the map pinned at path; 0 if there is none. */
static int lb_policy_pinned_size(const char *path, uint32_t *ret)
{
	struct bpf_map_info mi = {};
	uint32_t len = sizeof(mi);
	_cleanup_close_ int fd = bpf_obj_get(path);

	*ret = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0)
		return -errno;
	*ret = mi.max_entries;
	return 0;
}

/* Sizes, pins and shared maps of the veth object, before its load. */
static int lb_policy_prepare(struct lb_policy *p, const struct lb_policy_open_opts *o,
			     struct shoal_err *err)
{
	struct bpf_map *map;
	int ingress = -ENOENT, r;

	if (o->lb)
		ingress = lb_prog_fd(o->lb, LB_HOOK_INGRESS);
	bpf_object__for_each_map(map, p->veth->obj)
	{
		const char *name = bpf_map__name(map);
		_cleanup_free_ char *path = NULL;
		uint32_t want = 0, pinned = 0;

		if (bpf_map__is_internal(map))
			continue;
		if (strncmp(name, "lb_", 3) == 0) {
			_cleanup_close_ int fd = -EBADF;

			if (ingress < 0 && o->lb_pin_dir) {
				_cleanup_free_ char *lpath = NULL;

				if (asprintf(&lpath, "%s/%s", o->lb_pin_dir, name) < 0)
					return shoal_err_set(err, ENOMEM, "out of memory");
				fd = bpf_obj_get(lpath);
				if (fd < 0 && errno == ENOENT)
					continue;
				if (fd < 0)
					return shoal_err_errno(err, errno, "opening %s", lpath);
				r = bpf_map__reuse_fd(map, fd);
				if (r < 0)
					return shoal_err_errno(err, -r, "sharing map %s", name);
				continue;
			}
			if (ingress < 0)
				continue; /* ours, empty: nothing is published */
			fd = lb_prog_map_fd(ingress, name);
			if (fd < 0)
				return shoal_err_errno(err, -fd,
						       "finding the load balancer's map %s", name);
			r = bpf_map__reuse_fd(map, fd);
			if (r < 0)
				return shoal_err_errno(err, -r, "sharing map %s", name);
			continue;
		}
		if (strcmp(name, "policy_flowlog") == 0 && p->ringbuf.state != LB_FEATURE_ON) {
			/* A stub the kernel can create: the program's ring buffer
			 * branch is dead code with the knob off. */
			if (bpf_map__set_type(map, BPF_MAP_TYPE_ARRAY) < 0 ||
			    bpf_map__set_key_size(map, sizeof(uint32_t)) < 0 ||
			    bpf_map__set_value_size(map, sizeof(uint32_t)) < 0 ||
			    bpf_map__set_max_entries(map, 1) < 0)
				return shoal_err_set(err, EINVAL, "stubbing the ring buffer map");
			continue;
		}
		if (strcmp(name, "policy_flowlog_queue") == 0 &&
		    p->ringbuf.state == LB_FEATURE_ON) {
			if (bpf_map__set_max_entries(map, 1) < 0)
				return shoal_err_set(err, EINVAL, "shrinking the flow log queue");
			continue;
		}
		if (strcmp(name, "policy_map") == 0)
			want = o->map_size;
		else if (strcmp(name, "policy_ct") == 0)
			want = o->ct_size;
		if (!o->pin_dir || !lb_policy_is_pinned(name)) {
			if (want && bpf_map__set_max_entries(map, want) < 0)
				return shoal_err_set(err, EINVAL, "sizing map %s", name);
			continue;
		}
		if (asprintf(&path, "%s/%s", o->pin_dir, name) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		r = lb_policy_pinned_size(path, &pinned);
		if (r < 0)
			return shoal_err_errno(err, -r, "reading pinned map %s", path);
		if (pinned && want && pinned != want)
			return shoal_err_set(
				err, EEXIST,
				"%s holds %u entries, %u asked: the pinned policy maps "
				"are kept across restarts; remove %s (its enforcement "
				"state is lost) to resize",
				path, pinned, want, o->pin_dir);
		if (pinned)
			want = pinned;
		if (want && bpf_map__set_max_entries(map, want) < 0)
			return shoal_err_set(err, EINVAL, "sizing map %s", name);
		r = bpf_map__set_pin_path(map, path);
		if (r < 0)
			return shoal_err_errno(err, -r, "pinning map %s", name);
	}
	p->veth->rodata->policy_cfg_ringbuf = p->ringbuf.state == LB_FEATURE_ON;
	p->veth->rodata->policy_cfg_log_allowed = !o->log_denied_only;
	return 0;
}

/* The socket programs use the veth object's maps, all of them. */
static int lb_policy_sock_load(struct lb_policy *p, struct shoal_err *err)
{
	char reason[256];
	struct bpf_map *map;
	int r;

	p->sock = policy_sock__open();
	if (!p->sock)
		return shoal_err_errno(err, errno, "opening the policy socket programs");
	p->sock->rodata->policy_cfg_ringbuf = p->veth->rodata->policy_cfg_ringbuf;
	p->sock->rodata->policy_cfg_log_allowed = p->veth->rodata->policy_cfg_log_allowed;
	bpf_object__for_each_map(map, p->sock->obj)
	{
		struct bpf_map *from;

		if (bpf_map__is_internal(map))
			continue;
		from = bpf_object__find_map_by_name(p->veth->obj, bpf_map__name(map));
		if (!from)
			return shoal_err_set(err, ENOENT, "no map %s to share", bpf_map__name(map));
		r = bpf_map__reuse_fd(map, bpf_map__fd(from));
		if (r < 0)
			return shoal_err_errno(err, -r, "sharing map %s", bpf_map__name(map));
	}
	lb_load_log_begin(reason, sizeof(reason));
	r = policy_sock__load(p->sock);
	lb_load_log_end();
	if (r < 0)
		return shoal_err_set(err, -r, "loading the policy socket programs: %s",
				     reason[0] ? reason : strerror(-r));
	return 0;
}

int lb_policy_open(const struct lb_policy_open_opts *opts, struct lb_policy **ret,
		   struct shoal_err *err)
{
	static const struct lb_policy_open_opts none = {0};
	const struct lb_policy_open_opts *o = opts ? opts : &none;
	_cleanup_(lb_policy_closep) struct lb_policy *p = NULL;
	struct lb_feature_status st[LB_FEAT_MAX];
	uint32_t disable = o->disable, env = 0;
	char reason[256];
	int r;

	r = lb_features_parse(getenv(LB_DISABLE_ENV), &env, err);
	if (r < 0)
		return shoal_err_wrap(err, "%s", LB_DISABLE_ENV);
	disable |= env;
	r = lb_features_probe(disable, st);
	if (r < 0) {
		for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++)
			if (lb_feature_required(f) && st[f].state != LB_FEATURE_ON)
				return shoal_err_set(err, EOPNOTSUPP, "%s (%s) unavailable: %s",
						     lb_feature_name(f), lb_feature_provides(f),
						     st[f].reason);
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return shoal_err_set(err, ENOMEM, "out of memory");
	p->timer = -EBADF;
	p->ringbuf = st[LB_FEAT_RINGBUF];
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0)
		return shoal_err_errno(err, -p->ncpus, "counting CPUs");
	if (o->pin_dir) {
		r = mkdir_p(o->pin_dir, 0700);
		if (r < 0)
			return shoal_err_errno(err, -r, "creating %s", o->pin_dir);
	}
	p->veth = policy_veth__open();
	if (!p->veth)
		return shoal_err_errno(err, errno, "opening the policy veth programs");
	r = lb_policy_prepare(p, o, err);
	if (r < 0)
		return r;
	lb_load_log_begin(reason, sizeof(reason));
	r = policy_veth__load(p->veth);
	lb_load_log_end();
	if (r < 0)
		return shoal_err_set(err, -r, "loading the policy veth programs: %s",
				     reason[0] ? reason : strerror(-r));
	p->fd_ipcache = bpf_map__fd(p->veth->maps.policy_ipcache);
	p->fd_eps = bpf_map__fd(p->veth->maps.policy_eps);
	p->fd_map = bpf_map__fd(p->veth->maps.policy_map);
	p->fd_local = bpf_map__fd(p->veth->maps.policy_local_eps);
	p->fd_veth = bpf_map__fd(p->veth->maps.policy_veth_eps);
	p->fd_cgroup = bpf_map__fd(p->veth->maps.policy_cgroup_eps);
	p->fd_counters = bpf_map__fd(p->veth->maps.policy_counters);
	p->fd_stats = bpf_map__fd(p->veth->maps.policy_stats);
	if (st[LB_FEAT_SOCKET_LB].state != LB_FEATURE_ON) {
		snprintf(p->sock_reason, sizeof(p->sock_reason), "socket-lb unavailable: %s",
			 st[LB_FEAT_SOCKET_LB].reason);
	} else {
		struct shoal_err serr = {0};

		if (lb_policy_sock_load(p, &serr) < 0) {
			/* The veth still judges every flow; refused at
			 * lb_policy_sock_attach() with this reason. */
			snprintf(p->sock_reason, sizeof(p->sock_reason), "%s", serr.msg);
			policy_sock__destroy(p->sock);
			p->sock = NULL;
		}
	}
	*ret = TAKE_PTR(p);
	return 0;
}

/* ---- maps ---- */

static int lb_policy_ipcache_key_cmp(const void *a, const void *b)
{
	const struct policy_ipcache_key *x = a, *y = b;

	if (x->prefixlen != y->prefixlen)
		return x->prefixlen < y->prefixlen ? -1 : 1;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return 0;
}

static struct policy_ipcache_key lb_policy_ipcache_key(const struct policy_ipcache_entry *e)
{
	return (struct policy_ipcache_key){.prefixlen = e->prefix.len,
					   .addr = htonl(e->prefix.addr)};
}

static int lb_policy_ipcache_write(struct lb_policy *p, const struct policy_compiled *c,
				   struct shoal_err *err)
{
	for (size_t i = 0; i < c->n_ipcache; i++) {
		struct policy_ipcache_key k = lb_policy_ipcache_key(&c->ipcache[i]);
		struct policy_ipcache_value v = {.identity = c->ipcache[i].identity}, old;

		if (bpf_map_lookup_elem(p->fd_ipcache, &k, &old) == 0 && old.identity == v.identity)
			continue;
		if (bpf_map_update_elem(p->fd_ipcache, &k, &v, BPF_ANY) < 0)
			return shoal_err_errno(err, errno, "writing ipcache entry %s/%u",
					       inet_ntoa((struct in_addr){k.addr}), k.prefixlen);
	}
	return 0;
}

/* Deletes the ipcache entries c does not have. */
static int lb_policy_ipcache_prune(struct lb_policy *p, const struct policy_compiled *c,
				   struct shoal_err *err)
{
	_cleanup_free_ struct policy_ipcache_key *want = NULL, *gone = NULL;
	struct policy_ipcache_key k, next;
	size_t n_gone = 0;
	bool first = true;

	want = calloc(c->n_ipcache + 1, sizeof(*want));
	gone = calloc(POLICY_IPCACHE_MAX, sizeof(*gone));
	if (!want || !gone)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_ipcache; i++)
		want[i] = lb_policy_ipcache_key(&c->ipcache[i]);
	qsort(want, c->n_ipcache, sizeof(*want), lb_policy_ipcache_key_cmp);
	/* Collected first: deleting the key an LPM trie walk stands on
	 * restarts the walk. */
	while (n_gone < POLICY_IPCACHE_MAX) {
		if (bpf_map_get_next_key(p->fd_ipcache, first ? NULL : &k, &next) < 0) {
			if (errno == ENOENT)
				break;
			return shoal_err_errno(err, errno, "reading the ipcache");
		}
		first = false;
		k = next;
		if (!bsearch(&k, want, c->n_ipcache, sizeof(*want), lb_policy_ipcache_key_cmp))
			gone[n_gone++] = k;
	}
	for (size_t i = 0; i < n_gone; i++)
		if (bpf_map_delete_elem(p->fd_ipcache, &gone[i]) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "deleting an ipcache entry");
	return 0;
}

/* A flip's value: the diff's state, with a count of the endpoint's flips in
 * the spare word, so that two flips (back to the same generation) still
 * read as a change to the flows the conntrack holds. */
static int lb_policy_ep_write(struct lb_policy *p, uint16_t ep, const struct policy_ep_state *st)
{
	struct policy_ep_state old = {0}, v = *st;
	uint32_t key = ep;

	if (bpf_map_lookup_elem(p->fd_eps, &key, &old) < 0)
		return -errno;
	v.pad2 = old.pad2 + 1;
	if (bpf_map_update_elem(p->fd_eps, &key, &v, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int lb_policy_apply(struct lb_policy *p, const struct policy_compiled *c,
		    const struct policy_ops *ops, struct shoal_err *err)
{
	int r;

	if (c) {
		r = lb_policy_ipcache_write(p, c, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; ops && i < ops->n; i++) {
		const struct policy_op *op = &ops->v[i];
		struct policy_ep_state zero = {0};

		switch (op->kind) {
		case POLICY_OP_UPDATE:
			if (bpf_map_update_elem(p->fd_map, &op->key, &op->value, BPF_ANY) < 0) {
				if (errno == ENOSPC || errno == E2BIG)
					return shoal_err_set(
						err, ENOSPC,
						"the policy map is full (%u entries; an update "
						"holds both generations of the endpoints it "
						"changes): open it with a larger map_size",
						bpf_map__max_entries(p->veth->maps.policy_map));
				return shoal_err_errno(
					err, errno, "writing policy entry %zu of %zu (endpoint %u)",
					i + 1, ops->n, op->key.ep);
			}
			break;
		case POLICY_OP_DELETE:
			if (bpf_map_delete_elem(p->fd_map, &op->key) < 0 && errno != ENOENT)
				return shoal_err_errno(err, errno,
						       "deleting policy entry %zu of %zu (endpoint "
						       "%u)",
						       i + 1, ops->n, op->key.ep);
			break;
		case POLICY_OP_EP_SET:
		case POLICY_OP_EP_CLEAR:
			r = lb_policy_ep_write(p, op->key.ep,
					       op->kind == POLICY_OP_EP_SET ? &op->ep_state
									    : &zero);
			if (r < 0)
				return shoal_err_errno(err, -r, "flipping endpoint %u", op->key.ep);
			break;
		default:
			return shoal_err_set(err, EINVAL,
					     "policy operation %zu has unknown kind %d", i + 1,
					     (int)op->kind);
		}
	}
	if (c)
		return lb_policy_ipcache_prune(p, c, err);
	return 0;
}

struct lb_policy_row {
	uint16_t ep;
	uint8_t dir;
	struct policy_entry e;
};

static int lb_policy_row_cmp(const void *a, const void *b)
{
	const struct lb_policy_row *x = a, *y = b;

	if (x->ep != y->ep)
		return (int)x->ep - (int)y->ep;
	if (x->dir != y->dir)
		return (int)x->dir - (int)y->dir;
	/* the compiler's order of one side's entries */
	if (x->e.identity != y->e.identity)
		return x->e.identity < y->e.identity ? -1 : 1;
	if (x->e.proto != y->e.proto)
		return (int)x->e.proto - (int)y->e.proto;
	return (int)x->e.port - (int)y->e.port;
}

struct lb_policy_keys {
	struct policy_key *v;
	size_t n, cap;
};

static int lb_policy_keys_push(struct lb_policy_keys *k, const struct policy_key *key)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 1024;
		struct policy_key *v = reallocarray(k->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = *key;
	return 0;
}

static int lb_policy_load_ipcache(struct lb_policy *p, struct policy_compiled *c)
{
	struct policy_ipcache_key k, next;
	size_t cap = 0;
	bool first = true;

	for (;;) {
		struct policy_ipcache_value v;

		if (bpf_map_get_next_key(p->fd_ipcache, first ? NULL : &k, &next) < 0)
			return errno == ENOENT ? 0 : -errno;
		first = false;
		k = next;
		if (bpf_map_lookup_elem(p->fd_ipcache, &k, &v) < 0)
			continue;
		if (c->n_ipcache == cap) {
			size_t nc = cap ? 2 * cap : 256;
			struct policy_ipcache_entry *e = reallocarray(c->ipcache, nc, sizeof(*e));

			if (!e)
				return -ENOMEM;
			c->ipcache = e;
			cap = nc;
		}
		c->ipcache[c->n_ipcache++] = (struct policy_ipcache_entry){
			.prefix = {.addr = ntohl(k.addr), .len = (uint8_t)k.prefixlen},
			.identity = v.identity,
		};
	}
}

int lb_policy_state_load(struct lb_policy *p, struct policy_compiled **ret, struct shoal_err *err)
{
	_cleanup_(policy_compiled_freep) struct policy_compiled *c = NULL;
	_cleanup_free_ struct policy_ep_state *eps = NULL;
	_cleanup_free_ struct lb_policy_row *rows = NULL;
	struct lb_policy_keys stale = {0};
	struct policy_key k, next;
	size_t n_rows = 0, cap_rows = 0;
	bool first = true;
	int r = 0;

	c = calloc(1, sizeof(*c));
	eps = calloc(POLICY_EPS_MAX, sizeof(*eps));
	if (!c || !eps)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < POLICY_EPS_MAX; i++)
		if (bpf_map_lookup_elem(p->fd_eps, &i, &eps[i]) < 0)
			return shoal_err_errno(err, errno, "reading endpoint %u's generation", i);
	while (r >= 0) {
		struct policy_value v;

		if (bpf_map_get_next_key(p->fd_map, first ? NULL : &k, &next) < 0) {
			if (errno != ENOENT)
				r = -errno;
			break;
		}
		first = false;
		k = next;
		if (bpf_map_lookup_elem(p->fd_map, &k, &v) < 0)
			continue;
		if (!(eps[k.ep].flags & POLICY_EP_F_ACTIVE) || eps[k.ep].gen != k.gen ||
		    k.prefixlen < POLICY_KEY_FIXED_BITS || k.prefixlen > POLICY_KEY_FULL_BITS ||
		    k.dir > POLICY_DIR_EGRESS) {
			r = lb_policy_keys_push(&stale, &k);
			continue;
		}
		if (n_rows == cap_rows) {
			size_t nc = cap_rows ? 2 * cap_rows : 1024;
			struct lb_policy_row *nr = reallocarray(rows, nc, sizeof(*nr));

			if (!nr) {
				r = -ENOMEM;
				break;
			}
			rows = nr;
			cap_rows = nc;
		}
		rows[n_rows++] = (struct lb_policy_row){
			.ep = k.ep,
			.dir = k.dir,
			.e = {.identity = k.identity,
			      .proto = k.proto,
			      .port_bits = (uint8_t)(POLICY_KEY_FULL_BITS - k.prefixlen),
			      .port = ntohs(k.port),
			      .value = v},
		};
	}
	if (r < 0) {
		free(stale.v);
		return shoal_err_errno(err, -r, "reading the policy entries");
	}
	/* Left by an update that stopped between its writes and its deletes:
	 * the next update would write the other generation over them. */
	for (size_t i = 0; i < stale.n; i++)
		if (bpf_map_delete_elem(p->fd_map, &stale.v[i]) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
	free(stale.v);
	if (r < 0)
		return shoal_err_errno(err, -r, "deleting stale policy entries");
	if (n_rows)
		qsort(rows, n_rows, sizeof(*rows), lb_policy_row_cmp);
	size_t n_active = 0;

	for (uint32_t e = 0; e < POLICY_EPS_MAX; e++)
		n_active += (eps[e].flags & POLICY_EP_F_ACTIVE) != 0;
	c->eps = calloc(n_active + 1, sizeof(*c->eps));
	if (!c->eps)
		return shoal_err_set(err, ENOMEM, "out of memory");
	/* Every active endpoint, one without entries too: the next diff
	 * must clear it if nothing selects it any more. */
	size_t i = 0;

	for (uint32_t e = 0; e < POLICY_EPS_MAX; e++) {
		struct policy_ep_program *prog;

		if (!(eps[e].flags & POLICY_EP_F_ACTIVE))
			continue;
		prog = &c->eps[c->n_eps++];
		prog->ep = (uint16_t)e;
		prog->gen = eps[e].gen;
		for (int d = 0; d < 2; d++) {
			size_t j = i;

			while (j < n_rows && rows[j].ep == e && rows[j].dir == d)
				j++;
			if (j == i)
				continue;
			prog->entries[d] = calloc(j - i, sizeof(struct policy_entry));
			if (!prog->entries[d])
				return shoal_err_set(err, ENOMEM, "out of memory");
			for (size_t x = i; x < j; x++)
				prog->entries[d][x - i] = rows[x].e;
			prog->n_entries[d] = j - i;
			i = j;
		}
	}
	r = lb_policy_load_ipcache(p, c);
	if (r < 0)
		return shoal_err_errno(err, -r, "reading the ipcache");
	*ret = TAKE_PTR(c);
	return 0;
}

/* ---- endpoints ---- */

int lb_policy_endpoint_set(struct lb_policy *p, const struct lb_policy_endpoint *ep,
			   struct shoal_err *err)
{
	struct policy_local_ep v = {0}, old;

	if (!ep || ep->addr == 0)
		return shoal_err_set(err, EINVAL, "a policy endpoint needs an address");
	v.ep = ep->ep;
	v.identity = ep->identity;
	v.addr = ep->addr;
	if (ep->ifindex < 0)
		return shoal_err_set(err, EINVAL, "bad interface index %d", ep->ifindex);
	v.ifindex = (uint32_t)ep->ifindex;
	if (ep->ifindex && bpf_map_update_elem(p->fd_veth, &v.ifindex, &v, BPF_ANY) < 0)
		return shoal_err_errno(err, errno, "registering the veth of endpoint %u", ep->ep);
	/* an update that moves or drops the veth binding */
	if (bpf_map_lookup_elem(p->fd_local, &ep->addr, &old) == 0 && old.ifindex &&
	    old.ifindex != v.ifindex && bpf_map_delete_elem(p->fd_veth, &old.ifindex) < 0 &&
	    errno != ENOENT)
		return shoal_err_errno(err, errno, "unbinding the old veth of endpoint %u", ep->ep);
	if (ep->cgroup_id && bpf_map_update_elem(p->fd_cgroup, &ep->cgroup_id, &v, BPF_ANY) < 0)
		return shoal_err_errno(err, errno, "registering the cgroup of endpoint %u", ep->ep);
	if (bpf_map_update_elem(p->fd_local, &ep->addr, &v, BPF_ANY) < 0) {
		if (errno == E2BIG)
			return shoal_err_set(err, ENOSPC,
					     "%d local policy endpoints registered already",
					     POLICY_LOCAL_EPS_MAX);
		return shoal_err_errno(err, errno, "registering endpoint %u", ep->ep);
	}
	return 0;
}

int lb_policy_endpoint_delete(struct lb_policy *p, uint32_t addr, struct shoal_err *err)
{
	struct policy_local_ep v;
	uint64_t k, next, gone[16];
	size_t n_gone = 0;
	bool first = true;

	if (bpf_map_lookup_elem(p->fd_local, &addr, &v) < 0)
		return shoal_err_errno(err, errno, "removing policy endpoint %s",
				       inet_ntoa((struct in_addr){addr}));
	while (n_gone < ARRAY_SIZE(gone)) {
		struct policy_local_ep c;

		if (bpf_map_get_next_key(p->fd_cgroup, first ? NULL : &k, &next) < 0)
			break;
		first = false;
		k = next;
		if (bpf_map_lookup_elem(p->fd_cgroup, &k, &c) == 0 && c.addr == addr)
			gone[n_gone++] = k;
	}
	for (size_t i = 0; i < n_gone; i++)
		bpf_map_delete_elem(p->fd_cgroup, &gone[i]);
	if (v.ifindex && bpf_map_delete_elem(p->fd_veth, &v.ifindex) < 0 && errno != ENOENT)
		return shoal_err_errno(err, errno, "removing the veth of policy endpoint");
	if (bpf_map_delete_elem(p->fd_local, &addr) < 0 && errno != ENOENT)
		return shoal_err_errno(err, errno, "removing policy endpoint");
	return 0;
}

/* ---- hooks ---- */

static const char *lb_policy_tc_name(enum bpf_tc_attach_point at)
{
	return at == BPF_TC_INGRESS ? "pol_from_ep" : "pol_to_ep";
}

int lb_policy_veth_attach(struct lb_policy *p, int ifindex, struct shoal_err *err)
{
	static const enum bpf_tc_attach_point at[] = {BPF_TC_INGRESS, BPF_TC_EGRESS};
	int r;

	if (ifindex <= 0)
		return shoal_err_set(err, EINVAL, "bad interface index %d", ifindex);
	for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = at[i]);
		LIBBPF_OPTS(bpf_tc_opts, o, .handle = LB_POLICY_TC_HANDLE,
			    .priority = LB_POLICY_TC_PRIO, .flags = BPF_TC_F_REPLACE,
			    .prog_fd = lb_policy_prog_fd(p, at[i] == BPF_TC_INGRESS
								    ? LB_POLICY_FROM_EP
								    : LB_POLICY_TO_EP));

		r = bpf_tc_hook_create(&hook);
		if (r < 0 && r != -EEXIST)
			return shoal_err_errno(err, -r, "creating clsact on interface %d", ifindex);
		r = bpf_tc_attach(&hook, &o);
		if (r < 0)
			return shoal_err_errno(err, -r, "attaching %s to interface %d",
					       lb_policy_tc_name(at[i]), ifindex);
	}
	return 0;
}

int lb_policy_veth_detach(struct lb_policy *p, int ifindex, struct shoal_err *err)
{
	static const enum bpf_tc_attach_point at[] = {BPF_TC_INGRESS, BPF_TC_EGRESS};
	int r;

	(void)p;
	for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = at[i]);
		LIBBPF_OPTS(bpf_tc_opts, q, .handle = LB_POLICY_TC_HANDLE,
			    .priority = LB_POLICY_TC_PRIO);
		LIBBPF_OPTS(bpf_tc_opts, d, .handle = LB_POLICY_TC_HANDLE,
			    .priority = LB_POLICY_TC_PRIO);

		r = bpf_tc_query(&hook, &q);
		if (r == -ENOENT || r == -EINVAL || r == -ENODEV)
			continue;
		if (r < 0)
			return shoal_err_errno(err, -r, "reading the filters of interface %d",
					       ifindex);
		if (!lb_prog_is_named(q.prog_id, lb_policy_tc_name(at[i])))
			return shoal_err_set(err, EBUSY,
					     "interface %d has another program at the policy "
					     "program's tc handle; left in place",
					     ifindex);
		r = bpf_tc_detach(&hook, &d);
		if (r < 0 && r != -ENOENT && r != -ENODEV)
			return shoal_err_errno(err, -r, "detaching %s from interface %d",
					       lb_policy_tc_name(at[i]), ifindex);
	}
	return 0;
}

static const struct {
	enum bpf_attach_type type;
	const char *name;
	enum lb_policy_prog prog;
} lb_policy_sock_hooks[] = {
	{BPF_CGROUP_INET4_CONNECT, "pol_connect4", LB_POLICY_CONNECT4},
	{BPF_CGROUP_UDP4_SENDMSG, "pol_sendmsg4", LB_POLICY_SENDMSG4},
};

static int lb_policy_cgroup_open(const char *path, struct shoal_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct statfs fs;

	if (fd < 0)
		return shoal_err_errno(err, errno, "opening cgroup %s", path);
	if (fstatfs(fd, &fs) < 0)
		return shoal_err_errno(err, errno, "reading cgroup %s", path);
	if (fs.f_type != CGROUP2_SUPER_MAGIC)
		return shoal_err_set(err, EINVAL,
				     "%s is not a cgroup v2 directory; the policy socket hooks "
				     "attach to the v2 hierarchy",
				     path);
	return TAKE_FD(fd);
}

/* Programs called name attached directly to cgroup cg at type: ids, at most
 * max. */
static int lb_policy_ours(int cg, enum bpf_attach_type type, const char *name, uint32_t *ret,
			  size_t max)
{
	uint32_t ids[64], n = ARRAY_SIZE(ids), flags = 0;
	size_t k = 0;

	if (bpf_prog_query(cg, type, 0, &flags, ids, &n) < 0)
		return -errno;
	for (uint32_t i = 0; i < n && k < max; i++)
		if (lb_prog_is_named(ids[i], name))
			ret[k++] = ids[i];
	return (int)k;
}

static int lb_policy_detach_id(int cg, enum bpf_attach_type type, uint32_t id)
{
	_cleanup_close_ int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return -errno;
	return bpf_prog_detach2(fd, cg, type) < 0 ? -errno : 0;
}

int lb_policy_sock_attach(struct lb_policy *p, const char *cgroup_path, struct shoal_err *err)
{
	_cleanup_close_ int cg = -EBADF;

	if (!p->sock)
		return shoal_err_set(err, EOPNOTSUPP, "policy at the socket is unavailable: %s",
				     p->sock_reason);
	cg = lb_policy_cgroup_open(cgroup_path, err);
	if (cg < 0)
		return cg;
	for (size_t i = 0; i < ARRAY_SIZE(lb_policy_sock_hooks); i++) {
		int fd = lb_policy_prog_fd(p, lb_policy_sock_hooks[i].prog);
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info), old[8];
		int n, r;

		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			return shoal_err_errno(err, errno, "reading %s",
					       lb_policy_sock_hooks[i].name);
		n = lb_policy_ours(cg, lb_policy_sock_hooks[i].type, lb_policy_sock_hooks[i].name,
				   old, ARRAY_SIZE(old));
		if (n < 0)
			return shoal_err_errno(err, -n, "reading the programs of cgroup %s",
					       cgroup_path);
		/* Ours (this very program) first out, to go back in last. */
		for (int k = 0; k < n; k++)
			if (old[k] == info.id) {
				r = lb_policy_detach_id(cg, lb_policy_sock_hooks[i].type, old[k]);
				if (r < 0)
					return shoal_err_errno(err, -r, "moving %s",
							       lb_policy_sock_hooks[i].name);
			}
		r = bpf_prog_attach(fd, cg, lb_policy_sock_hooks[i].type, BPF_F_ALLOW_MULTI);
		if (r < 0)
			return shoal_err_errno(err, errno, "attaching %s to cgroup %s",
					       lb_policy_sock_hooks[i].name, cgroup_path);
		/* An earlier agent's copy goes once ours is in: no gap. */
		for (int k = 0; k < n; k++)
			if (old[k] != info.id) {
				r = lb_policy_detach_id(cg, lb_policy_sock_hooks[i].type, old[k]);
				if (r < 0 && r != -ENOENT)
					return shoal_err_errno(err, -r, "detaching an earlier %s",
							       lb_policy_sock_hooks[i].name);
			}
	}
	return 0;
}

int lb_policy_sock_detach(struct lb_policy *p, const char *cgroup_path, struct shoal_err *err)
{
	_cleanup_close_ int cg = -EBADF;

	(void)p;
	cg = lb_policy_cgroup_open(cgroup_path, err);
	if (cg < 0)
		return cg;
	for (size_t i = 0; i < ARRAY_SIZE(lb_policy_sock_hooks); i++) {
		uint32_t old[8];
		int n = lb_policy_ours(cg, lb_policy_sock_hooks[i].type,
				       lb_policy_sock_hooks[i].name, old, ARRAY_SIZE(old));

		if (n < 0)
			return shoal_err_errno(err, -n, "reading the programs of cgroup %s",
					       cgroup_path);
		for (int k = 0; k < n; k++) {
			int r = lb_policy_detach_id(cg, lb_policy_sock_hooks[i].type, old[k]);

			if (r < 0 && r != -ENOENT)
				return shoal_err_errno(err, -r, "detaching %s",
						       lb_policy_sock_hooks[i].name);
		}
	}
	return 0;
}

/* ---- counters ---- */

int lb_policy_counters(struct lb_policy *p, struct lb_policy_counter **ret, size_t *ret_n)
{
	_cleanup_free_ struct lb_policy_counter *v = NULL;
	_cleanup_free_ struct policy_counter *per = calloc((size_t)p->ncpus, sizeof(*per));
	struct policy_counter_key k, next;
	size_t n = 0;
	bool first = true;

	v = calloc(POLICY_COUNTERS_MAX, sizeof(*v));
	if (!v || !per)
		return -ENOMEM;
	while (n < POLICY_COUNTERS_MAX) {
		if (bpf_map_get_next_key(p->fd_counters, first ? NULL : &k, &next) < 0) {
			if (errno == ENOENT)
				break;
			return -errno;
		}
		first = false;
		k = next;
		if (bpf_map_lookup_elem(p->fd_counters, &k, per) < 0)
			continue;
		v[n].key = k;
		for (int c = 0; c < p->ncpus; c++) {
			v[n].val.flows += per[c].flows;
			v[n].val.packets += per[c].packets;
		}
		n++;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int lb_policy_stats(struct lb_policy *p, uint64_t ret[POLICY_STAT_MAX])
{
	_cleanup_free_ uint64_t *per = calloc((size_t)p->ncpus, sizeof(*per));

	if (!per)
		return -ENOMEM;
	for (uint32_t i = 0; i < POLICY_STAT_MAX; i++) {
		ret[i] = 0;
		if (bpf_map_lookup_elem(p->fd_stats, &i, per) < 0)
			return -errno;
		for (int c = 0; c < p->ncpus; c++)
			ret[i] += per[c];
	}
	return 0;
}

/* ---- flow log ---- */

static int lb_policy_rb_cb(void *ctx, void *data, size_t size)
{
	struct lb_policy *p = ctx;

	if (size >= sizeof(struct policy_flow_event)) {
		p->cb(data, p->userdata);
		p->consumed++;
	}
	return 0;
}

int lb_policy_flowlog_open(struct lb_policy *p, lb_policy_flow_cb cb, void *userdata,
			   struct shoal_err *err)
{
	struct itimerspec its = {
		.it_interval = {.tv_nsec = LB_POLICY_QUEUE_TICK_MS * 1000000L},
		.it_value = {.tv_nsec = LB_POLICY_QUEUE_TICK_MS * 1000000L},
	};

	if (!cb)
		return shoal_err_set(err, EINVAL, "a flow log reader needs a callback");
	if (p->rb || p->timer >= 0)
		return shoal_err_set(err, EBUSY, "the flow log has a reader already");
	p->cb = cb;
	p->userdata = userdata;
	if (p->ringbuf.state == LB_FEATURE_ON) {
		p->rb = ring_buffer__new(bpf_map__fd(p->veth->maps.policy_flowlog), lb_policy_rb_cb,
					 p, NULL);
		if (!p->rb)
			return shoal_err_errno(err, errno, "opening the flow log ring buffer");
		return 0;
	}
	/* A queue map has nothing to wait on: a timer stands in, so the
	 * caller's loop treats both transports alike. */
	p->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->timer < 0)
		return shoal_err_errno(err, errno, "creating the flow log timer");
	if (timerfd_settime(p->timer, 0, &its, NULL) < 0)
		return shoal_err_errno(err, errno, "arming the flow log timer");
	return 0;
}

int lb_policy_flowlog_fd(const struct lb_policy *p)
{
	if (p->rb)
		return ring_buffer__epoll_fd(p->rb);
	if (p->timer >= 0)
		return p->timer;
	return -ENOENT;
}

int lb_policy_flowlog_consume(struct lb_policy *p)
{
	int fd = bpf_map__fd(p->veth->maps.policy_flowlog_queue);
	uint64_t ticks;
	int r;

	p->consumed = 0;
	if (p->rb) {
		r = ring_buffer__consume(p->rb);
		return r < 0 ? r : p->consumed;
	}
	if (p->timer < 0)
		return -ENOENT;
	if (read(p->timer, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return -errno;
	/* at most one queue's worth: a turn of the loop stays bounded */
	for (uint32_t i = 0; i < POLICY_FLOWLOG_QUEUE_LEN; i++) {
		struct policy_flow_event ev;

		if (bpf_map_lookup_and_delete_elem(fd, NULL, &ev) < 0) {
			if (errno == ENOENT)
				break;
			return -errno;
		}
		p->cb(&ev, p->userdata);
		p->consumed++;
	}
	return p->consumed;
}

uint64_t lb_policy_flowlog_lost(struct lb_policy *p)
{
	uint64_t st[POLICY_STAT_MAX];

	if (lb_policy_stats(p, st) < 0)
		return 0;
	return st[POLICY_STAT_LOG_LOST];
}
