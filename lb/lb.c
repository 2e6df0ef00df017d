// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"
#include "lb/lb-internal.h"
#include "lb/lb.h"
#include "lb/maglev.h"
#include "tc_egress.skel.h"
#include "tc_ingress.skel.h"
#include "xdp_ingress.skel.h"

#define LB_RECOVER_BATCH 4096

/* Maps pinned under pin_dir: all the state flows and services need. */
static const char *const lb_pinned_maps[] = {
	"lb_services",
	"lb_backends",
	"lb_maglev",
	"lb_ct",
	"lb_rnat",
	"lb_svc_stats",
	"lb_be_stats",
	"lb_drops",
	"lb_meta",
	"lb_ports",
	"lb_svc_keys",
	/* shared with every handle on the same pins, so that programs any of
	 * them attaches forward to the local endpoints the agent registered,
	 * and the reply program finds the flows they forwarded */
	"lb_local_eps",
	"lb_fwd_flows",
};

static const char *const lb_drop_names[LB_DROP_MAX + 1] = {
#define LB_DROP_NAME_(name, num, str) [num] = str,
	LB_DROP_REASONS(LB_DROP_NAME_)
#undef LB_DROP_NAME_
};

_Static_assert(LB_DROP_REWRITE == -LB_DROP_MAX, "LB_DROP_MAX is the last drop reason");

const char *lb_drop_reason_name(int reason)
{
	if (reason >= 0 || -reason > LB_DROP_MAX)
		return NULL;
	return lb_drop_names[-reason];
}

uint32_t lb_maglev_size(const struct lb *lb)
{
	return lb->maglev_size;
}

int lb_prog_fd(const struct lb *lb, enum lb_hook hook)
{
	if (hook == LB_HOOK_INGRESS)
		return bpf_program__fd(lb->in->progs.lb_ingress);
	if (hook == LB_HOOK_EGRESS)
		return bpf_program__fd(lb->eg->progs.lb_egress);
	if (hook == LB_HOOK_XDP)
		return lb->xdp ? bpf_program__fd(lb->xdp->progs.lb_xdp_ingress) : -ENOENT;
	return -EINVAL;
}

const struct lb_feature_status *lb_feature(const struct lb *lb, enum lb_feature f)
{
	static const struct lb_feature_status bad = {.state = LB_FEATURE_UNAVAILABLE,
						     .reason = "no such feature"};

	return f < LB_FEAT_MAX ? &lb->features[f] : &bad;
}

void lb_feature_unavailable(struct lb *lb, enum lb_feature f, const char *reason)
{
	if (f >= LB_FEAT_MAX || lb_feature_required(f))
		return;
	lb->features[f].state = LB_FEATURE_UNAVAILABLE;
	snprintf(lb->features[f].reason, sizeof(lb->features[f].reason), "%s", reason);
}

static void lb_svc_state_clear(struct lb_svc_state *s)
{
	free(s->be);
	*s = (struct lb_svc_state){};
}

struct lb *lb_close(struct lb *lb)
{
	if (!lb)
		return NULL;
	xdp_ingress__destroy(lb->xdp);
	tc_egress__destroy(lb->eg);
	tc_ingress__destroy(lb->in);
	if (lb->svcs)
		for (uint32_t i = 0; i < LB_MAX_SERVICES; i++)
			lb_svc_state_clear(&lb->svcs[i]);
	free(lb->svcs);
	free(lb->be_used);
	free(lb->port_kinds);
	free(lb);
	return NULL;
}

/* True if the service map pinned under dir holds no service (or is gone). */
static bool lb_pinned_services_empty(const char *dir)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	char key[64];

	if (asprintf(&path, "%s/lb_services", dir) < 0)
		return false;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT;
	return bpf_map_get_next_key(fd, NULL, key) < 0 && errno == ENOENT;
}

static int lb_pinned_remove(const char *dir, struct shoal_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(lb_pinned_maps); i++) {
		_cleanup_free_ char *path = NULL;

		if (asprintf(&path, "%s/%s", dir, lb_pinned_maps[i]) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		if (unlink(path) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "removing %s", path);
	}
	return 0;
}

/* Reads the geometry of maps already pinned under dir. 0 if there is none.
 * Pins of another layout (an older shoald, other LB_MAX_* limits) are
 * replaced when they hold no service, and refused otherwise: their flows
 * would be misread. */
static int lb_pinned_meta(const char *dir, struct lb_meta *ret, struct shoal_err *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct lb_meta meta = {};
	uint32_t zero = 0;
	bool same;

	if (asprintf(&path, "%s/lb_meta", dir) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return shoal_err_errno(err, errno, "opening pinned map %s", path);
	}
	if (bpf_map_lookup_elem(fd, &zero, &meta) < 0)
		return shoal_err_errno(err, errno, "reading %s", path);
	same = meta.magic == LB_META_MAGIC && meta.version == LB_META_VERSION &&
	       meta.max_services == LB_MAX_SERVICES && meta.max_backends == LB_MAX_BACKENDS;
	if (!same && lb_pinned_services_empty(dir)) {
		int r = lb_pinned_remove(dir, err);

		return r < 0 ? r : 0;
	}
	if (meta.magic == 0)
		return 0; /* pinned by a load that did not finish */
	if (!same)
		return shoal_err_set(
			err, EEXIST,
			"the load balancer maps pinned in %s have another layout (version %u, "
			"%u services, %u backends; this shoald uses version %u, %u, %u) and hold "
			"services: stop the agent and run `shoald --teardown` with the same roots "
			"(the flows they hold are lost), then start it again",
			dir, meta.version, meta.max_services, meta.max_backends, LB_META_VERSION,
			LB_MAX_SERVICES, LB_MAX_BACKENDS);
	*ret = meta;
	return 1;
}

static int lb_map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

/* Makes obj use the maps of the same name that from has (loaded already). */
static int lb_share_maps(struct bpf_object *obj, struct bpf_object *from, struct shoal_err *err)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj)
	{
		int fd, r;

		if (bpf_map__is_internal(map))
			continue;
		fd = lb_map_fd(from, bpf_map__name(map));
		if (fd < 0)
			return shoal_err_set(err, ENOENT, "map %s missing from the ingress program",
					     bpf_map__name(map));
		r = bpf_map__reuse_fd(map, fd);
		if (r < 0)
			return shoal_err_errno(err, -r, "sharing map %s", bpf_map__name(map));
	}
	return 0;
}

/* The XDP program, optional: a kernel that refuses it leaves tc alone doing
 * the work, which it does whole (the XDP program only ever takes a share
 * of it). Without metadata XDP could not tell tc which packets it already
 * DNATed (a backend port that is itself published would be balanced twice),
 * nor hand it the backend for the local endpoint redirect: it is not loaded
 * at all then. */
static void lb_load_xdp(struct lb *lb)
{
	struct lb_feature_status *st = &lb->features[LB_FEAT_XDP];
	char reason[sizeof(st->reason)];
	struct shoal_err err = {};
	int r;

	lb->xdp = xdp_ingress__open();
	if (!lb->xdp) {
		snprintf(st->reason, sizeof(st->reason), "opening the XDP program: %s",
			 strerror(errno));
		st->state = LB_FEATURE_UNAVAILABLE;
		return;
	}
	LB_SET_KNOBS(lb, lb->xdp);
	r = lb_share_maps(lb->xdp->obj, lb->in->obj, &err);
	if (r >= 0) {
		lb_load_log_begin(reason, sizeof(reason));
		r = xdp_ingress__load(lb->xdp);
		lb_load_log_end();
		if (r < 0)
			snprintf(err.msg, sizeof(err.msg), "the kernel refuses the XDP program: %s",
				 reason[0] ? reason : strerror(-r));
	}
	if (r < 0) {
		snprintf(st->reason, sizeof(st->reason), "%s", err.msg);
		st->state = LB_FEATURE_UNAVAILABLE;
		lb->xdp = (xdp_ingress__destroy(lb->xdp), NULL);
		return;
	}
	lb->xdp_on = true;
}

static int lb_load(struct lb *lb, const char *pin_dir, struct shoal_err *err)
{
	char reason[256];
	struct bpf_map *map;
	int r;

	lb->in = tc_ingress__open();
	if (!lb->in)
		return shoal_err_errno(err, errno, "opening the tc ingress program");
	LB_SET_KNOBS(lb, lb->in);
	r = bpf_map__set_value_size(lb->in->maps.lb_maglev, sizeof(uint32_t) * lb->maglev_size);
	if (r >= 0)
		r = bpf_map__set_max_entries(lb->in->maps.lb_ct, lb->ct_size);
	if (r >= 0)
		r = bpf_map__set_max_entries(lb->in->maps.lb_rnat, lb->ct_size);
	if (r < 0)
		return shoal_err_errno(err, -r, "sizing the load balancer maps");
	for (size_t i = 0; pin_dir && i < ARRAY_SIZE(lb_pinned_maps); i++) {
		_cleanup_free_ char *path = NULL;

		map = bpf_object__find_map_by_name(lb->in->obj, lb_pinned_maps[i]);
		if (!map)
			return shoal_err_set(err, ENOENT, "map %s missing from the program",
					     lb_pinned_maps[i]);
		if (asprintf(&path, "%s/%s", pin_dir, lb_pinned_maps[i]) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		r = bpf_map__set_pin_path(map, path);
		if (r < 0)
			return shoal_err_errno(err, -r, "pinning %s", path);
	}
	lb_load_log_begin(reason, sizeof(reason));
	r = tc_ingress__load(lb->in);
	lb_load_log_end();
	if (r < 0)
		return shoal_err_set(err, -r, "loading the tc ingress program%s%s: %s",
				     pin_dir ? " with the maps pinned in " : "",
				     pin_dir ? pin_dir : "", reason[0] ? reason : strerror(-r));

	/* The egress and XDP programs share every map with the ingress one. */
	lb->eg = tc_egress__open();
	if (!lb->eg)
		return shoal_err_errno(err, errno, "opening the tc egress program");
	LB_SET_KNOBS(lb, lb->eg);
	r = lb_share_maps(lb->eg->obj, lb->in->obj, err);
	if (r < 0)
		return r;
	lb_load_log_begin(reason, sizeof(reason));
	r = tc_egress__load(lb->eg);
	lb_load_log_end();
	if (r < 0)
		return shoal_err_set(err, -r, "loading the tc egress program: %s",
				     reason[0] ? reason : strerror(-r));
	if (lb->features[LB_FEAT_XDP].state == LB_FEATURE_ON)
		lb_load_xdp(lb);

	lb->fd_services = bpf_map__fd(lb->in->maps.lb_services);
	lb->fd_backends = bpf_map__fd(lb->in->maps.lb_backends);
	lb->fd_maglev = bpf_map__fd(lb->in->maps.lb_maglev);
	lb->fd_svc_stats = bpf_map__fd(lb->in->maps.lb_svc_stats);
	lb->fd_be_stats = bpf_map__fd(lb->in->maps.lb_be_stats);
	lb->fd_drops = bpf_map__fd(lb->in->maps.lb_drops);
	lb->fd_ports = bpf_map__fd(lb->in->maps.lb_ports);
	lb->fd_svc_keys = bpf_map__fd(lb->in->maps.lb_svc_keys);
	lb->fd_local_eps = bpf_map__fd(lb->in->maps.lb_local_eps);
	lb->fd_be_eps = bpf_map__fd(lb->in->maps.lb_be_eps);
	return 0;
}

/* Rebuilds the in-memory view from the maps (they may come from a pin). */
static int lb_be_ep_write(struct lb *lb, uint32_t id, uint32_t addr);

static int lb_recover(struct lb *lb, struct shoal_err *err)
{
	struct lb_svc_key key, next;
	struct lb_svc svc;
	bool first = true;

	for (;;) {
		struct lb_svc_state *s;

		if (bpf_map_get_next_key(lb->fd_services, first ? NULL : &key, &next) < 0) {
			if (errno == ENOENT)
				break;
			return shoal_err_errno(err, errno, "listing services");
		}
		first = false;
		key = next;
		if (bpf_map_lookup_elem(lb->fd_services, &key, &svc) < 0)
			continue;
		if (svc.id == 0 || svc.id >= LB_MAX_SERVICES || lb->svcs[svc.id].used)
			return shoal_err_set(err, EUCLEAN, "pinned service map holds a bad id %u",
					     svc.id);
		s = &lb->svcs[svc.id];
		s->used = true;
		s->key = key;
		s->active = svc.active;
	}
	/* lb_ports from the services found: pinned too, but rewritten whole so
	 * that it matches them whatever happened to it. */
	for (uint32_t id = 1; id < LB_MAX_SERVICES; id++) {
		const struct lb_svc_key *mk = &lb->svcs[id].key;
		uint32_t *v = &lb->port_kinds[LB_PORT_INDEX(mk->proto, mk->port)];

		if (!lb->svcs[id].used || mk->port == 0)
			continue;
		if (mk->addr)
			*v += 1U << LB_PORT_VIPS_SHIFT;
		else
			*v |= LB_PORT_PUBLISHED;
	}
	{
		_cleanup_free_ uint32_t *idx = calloc(2 * 65536, sizeof(*idx));
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		uint32_t count = 2 * 65536;

		if (!idx)
			return shoal_err_set(err, ENOMEM, "out of memory");
		for (uint32_t i = 0; i < count; i++)
			idx[i] = i;
		if (bpf_map_update_batch(lb->fd_ports, idx, lb->port_kinds, &count, &bo) < 0)
			return shoal_err_errno(err, errno, "writing the service ports");
	}
	/* lb_svc_keys likewise: every slot, the free ones zeroed. */
	{
		_cleanup_free_ uint32_t *idx = calloc(LB_MAX_SERVICES, sizeof(*idx));
		_cleanup_free_ struct lb_svc_key *keys = calloc(LB_MAX_SERVICES, sizeof(*keys));
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		uint32_t count = LB_MAX_SERVICES;

		if (!idx || !keys)
			return shoal_err_set(err, ENOMEM, "out of memory");
		for (uint32_t i = 0; i < count; i++) {
			idx[i] = i;
			if (lb->svcs[i].used)
				keys[i] = lb->svcs[i].key;
		}
		if (bpf_map_update_batch(lb->fd_svc_keys, idx, keys, &count, &bo) < 0)
			return shoal_err_errno(err, errno, "writing the service keys");
	}

	/* Read in batches: one system call per key would make every open of
	 * LB_MAX_BACKENDS slots take a noticeable time. */
	_cleanup_free_ uint32_t *ids = calloc(LB_RECOVER_BATCH, sizeof(*ids));
	_cleanup_free_ struct lb_backend *bes = calloc(LB_RECOVER_BATCH, sizeof(*bes));
	uint32_t in_batch = 0, out_batch = 0;
	bool done = false;

	if (!ids || !bes)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (bool start = true; !done; start = false) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		uint32_t count = LB_RECOVER_BATCH;
		int r;

		r = bpf_map_lookup_batch(lb->fd_backends, start ? NULL : &in_batch, &out_batch, ids,
					 bes, &count, &bo);
		if (r < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "reading the backends");
		done = r < 0;
		in_batch = out_batch;
		for (uint32_t i = 0; i < count; i++) {
			const struct lb_backend *be = &bes[i];
			uint32_t id = ids[i];
			struct lb_svc_state *s;
			struct lb_be *nbe;

			if (id == 0 || id >= LB_MAX_BACKENDS || be->state == LB_BACKEND_UNUSED)
				continue;
			if (be->svc_id == 0 || be->svc_id >= LB_MAX_SERVICES ||
			    !lb->svcs[be->svc_id].used)
				continue; /* left by an update that failed halfway; reusable */
			s = &lb->svcs[be->svc_id];
			nbe = reallocarray(s->be, s->n + 1, sizeof(*s->be));
			if (!nbe)
				return shoal_err_set(err, ENOMEM, "out of memory");
			s->be = nbe;
			s->be[s->n++] = (struct lb_be){.id = id,
						       .addr = be->addr,
						       .port = ntohs(be->port),
						       .state = be->state};
			lb->be_used[id] = 1;
			lb->be_next = id + 1 >= LB_MAX_BACKENDS ? 1 : id + 1;
		}
	}
	/* The backends' endpoint slots (lb_be_eps is this handle's own) from
	 * the pinned endpoints, if any were registered. */
	uint32_t any;
	if (bpf_map_get_next_key(lb->fd_local_eps, NULL, &any) < 0)
		return 0;
	for (uint32_t id = 1; id < LB_MAX_SERVICES; id++) {
		const struct lb_svc_state *s = &lb->svcs[id];

		for (size_t i = 0; s->used && i < s->n; i++) {
			int r = lb_be_ep_write(lb, s->be[i].id, s->be[i].addr);
			if (r < 0)
				return shoal_err_errno(err, -r,
						       "writing a backend's endpoint slot");
		}
	}
	return 0;
}

int lb_open(const struct lb_open_opts *opts, struct lb **ret, struct shoal_err *err)
{
	const struct lb_open_opts none = {};
	struct lb_meta meta = {};
	struct lb *lb;
	uint32_t zero = 0, disable, env_disable = 0;
	bool pinned = false;
	int r;

	if (!opts)
		opts = &none;
	disable = opts->disable;
	r = lb_features_parse(getenv(LB_DISABLE_ENV), &env_disable, err);
	if (r < 0)
		return shoal_err_wrap(err, "%s", LB_DISABLE_ENV);
	disable |= env_disable;
	if (opts->maglev_size && !lb_maglev_size_valid(opts->maglev_size))
		return shoal_err_set(err, EINVAL,
				     "Maglev table size %u is not a prime between %u and %u",
				     opts->maglev_size, LB_MAGLEV_MIN, LB_MAGLEV_MAX);
	if (opts->pin_dir) {
		r = mkdir_p(opts->pin_dir, 0700);
		if (r < 0)
			return shoal_err_errno(err, -r, "creating %s", opts->pin_dir);
		r = lb_pinned_meta(opts->pin_dir, &meta, err);
		if (r < 0)
			return r;
		pinned = r > 0;
	}
	if (pinned && opts->maglev_size && opts->maglev_size != meta.maglev_size)
		return shoal_err_set(err, EEXIST,
				     "the maps pinned in %s have Maglev tables of %u entries, not "
				     "%u; open with that size or remove the pins",
				     opts->pin_dir, meta.maglev_size, opts->maglev_size);
	if (pinned && opts->ct_size && opts->ct_size != meta.ct_size)
		return shoal_err_set(err, EEXIST,
				     "the maps pinned in %s hold %u flows, not %u; open with that "
				     "size or remove the pins",
				     opts->pin_dir, meta.ct_size, opts->ct_size);

	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return shoal_err_set(err, ENOMEM, "out of memory");
	lb->maglev_size = pinned ? meta.maglev_size
				 : (opts->maglev_size ? opts->maglev_size : LB_MAGLEV_DEFAULT);
	if (lb_features_probe(disable, lb->features) < 0) {
		for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++)
			if (lb_feature_required(f) && lb->features[f].state != LB_FEATURE_ON) {
				r = shoal_err_set(err, EOPNOTSUPP,
						  "this kernel lacks %s (%s), which the load "
						  "balancer needs: %s; it comes with %s",
						  lb_feature_name(f), lb_feature_what(f),
						  lb->features[f].reason, lb_feature_provides(f));
				goto fail;
			}
	}
	if (!opts->xdp && lb->features[LB_FEAT_XDP].state == LB_FEATURE_ON)
		lb->features[LB_FEAT_XDP].state = LB_FEATURE_OFF;
	lb->ct_size = pinned ? meta.ct_size : (opts->ct_size ? opts->ct_size : LB_CT_DEFAULT);
	lb->be_next = 1;
	lb->svc_next = 1;
	lb->svcs = calloc(LB_MAX_SERVICES, sizeof(*lb->svcs));
	lb->be_used = calloc(LB_MAX_BACKENDS, 1);
	lb->port_kinds = calloc(2 * 65536, sizeof(*lb->port_kinds));
	lb->ncpus = libbpf_num_possible_cpus();
	if (!lb->svcs || !lb->be_used || !lb->port_kinds) {
		r = shoal_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	if (lb->ncpus < 0) {
		r = shoal_err_errno(err, -lb->ncpus, "counting possible CPUs");
		goto fail;
	}
	r = lb_load(lb, opts->pin_dir, err);
	if (r < 0)
		goto fail;
	if (!pinned) {
		meta = (struct lb_meta){
			.magic = LB_META_MAGIC,
			.version = LB_META_VERSION,
			.maglev_size = lb->maglev_size,
			.ct_size = lb->ct_size,
			.max_services = LB_MAX_SERVICES,
			.max_backends = LB_MAX_BACKENDS,
		};
		if (bpf_map_update_elem(bpf_map__fd(lb->in->maps.lb_meta), &zero, &meta, 0) < 0) {
			r = shoal_err_errno(err, errno, "writing lb_meta");
			goto fail;
		}
	}
	r = lb_recover(lb, err);
	if (r < 0)
		goto fail;
	*ret = lb;
	return 0;
fail:
	lb_close(lb);
	return r;
}

/* ---- services ---- */

static struct lb_svc_key lb_key_to_map(const struct lb_service_key *k)
{
	return (struct lb_svc_key){.addr = k->addr, .port = htons(k->port), .proto = k->proto};
}

/* The service map is the index from key to id: every used slot has its
 * entry there, written last by lb_service_upsert() and removed first by
 * lb_service_delete(). */
static struct lb_svc_state *lb_find(struct lb *lb, const struct lb_service_key *key,
				    uint32_t *ret_id)
{
	struct lb_svc_key mk = lb_key_to_map(key);
	struct lb_svc sv;

	if (bpf_map_lookup_elem(lb->fd_services, &mk, &sv) < 0)
		return NULL;
	if (sv.id == 0 || sv.id >= LB_MAX_SERVICES || !lb->svcs[sv.id].used ||
	    memcmp(&lb->svcs[sv.id].key, &mk, sizeof(mk)) != 0)
		return NULL;
	if (ret_id)
		*ret_id = sv.id;
	return &lb->svcs[sv.id];
}

/* A free service slot, searched from after the last one handed out. */
static uint32_t lb_svc_alloc(struct lb *lb)
{
	for (uint32_t i = 0; i < LB_MAX_SERVICES - 1; i++) {
		uint32_t id = lb->svc_next + i;

		if (id >= LB_MAX_SERVICES)
			id -= LB_MAX_SERVICES - 1;
		if (!lb->svcs[id].used) {
			lb->svc_next = id + 1 >= LB_MAX_SERVICES ? 1 : id + 1;
			return id;
		}
	}
	return 0;
}

static struct lb_be *lb_svc_find_be(struct lb_svc_state *s, uint32_t addr, uint16_t port)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->be[i].addr == addr && s->be[i].port == port)
			return &s->be[i];
	return NULL;
}

static int lb_be_alloc(struct lb *lb, uint32_t *ret)
{
	for (uint32_t i = 0; i < LB_MAX_BACKENDS - 1; i++) {
		uint32_t id = lb->be_next + i;

		if (id >= LB_MAX_BACKENDS)
			id -= LB_MAX_BACKENDS - 1;
		if (!lb->be_used[id]) {
			lb->be_used[id] = 1;
			lb->be_next = id + 1 >= LB_MAX_BACKENDS ? 1 : id + 1;
			*ret = id;
			return 0;
		}
	}
	return -ENOSPC;
}

static int lb_stats_zero(struct lb *lb, int fd, uint32_t id)
{
	_cleanup_free_ struct lb_stats *z = calloc(lb->ncpus, sizeof(*z));

	if (!z)
		return -ENOMEM;
	return bpf_map_update_elem(fd, &id, z, 0) < 0 ? -errno : 0;
}

/* A backend's lb_be_eps slot: its address's local endpoint, if any. */
static int lb_be_ep_write(struct lb *lb, uint32_t id, uint32_t addr)
{
	struct lb_local_ep ep = {};

	if (addr && bpf_map_lookup_elem(lb->fd_local_eps, &addr, &ep) < 0 && errno != ENOENT)
		return -errno;
	return bpf_map_update_elem(lb->fd_be_eps, &id, &ep, 0) < 0 ? -errno : 0;
}

/* The local endpoint slot goes in before the backend and out after it, so
 * that a packet never sees a backend with another backend's endpoint. */
static int lb_be_write(struct lb *lb, const struct lb_be *be, uint32_t svc_id)
{
	struct lb_backend v = {
		.addr = be->addr, .port = htons(be->port), .state = be->state, .svc_id = svc_id};
	int r;

	if (!be->state)
		v = (struct lb_backend){};
	if (be->state) {
		r = lb_be_ep_write(lb, be->id, be->addr);
		if (r < 0)
			return r;
	}
	if (bpf_map_update_elem(lb->fd_backends, &be->id, &v, 0) < 0)
		return -errno;
	return be->state ? 0 : lb_be_ep_write(lb, be->id, 0);
}

int lb_local_eps_fd(const struct lb *lb)
{
	int fd = fcntl(lb->fd_local_eps, F_DUPFD_CLOEXEC, 3);

	return fd < 0 ? -errno : fd;
}

int lb_local_ep_sync(struct lb *lb, uint32_t addr, const struct lb_local_ep *ep)
{
	const struct lb_local_ep none = {};

	for (uint32_t id = 1; id < LB_MAX_SERVICES; id++) {
		const struct lb_svc_state *s = &lb->svcs[id];

		for (size_t i = 0; s->used && i < s->n; i++) {
			if (s->be[i].addr != addr || s->be[i].state == LB_BACKEND_UNUSED)
				continue;
			if (bpf_map_update_elem(lb->fd_be_eps, &s->be[i].id, ep ? ep : &none, 0) <
			    0)
				return -errno;
		}
	}
	return 0;
}

/* Builds the service's Maglev table from its active backends and writes it
 * as one map value: readers see the old table or the new one. */
static int lb_table_install(struct lb *lb, uint32_t svc_id, const struct lb_be *be, size_t n,
			    struct shoal_err *err)
{
	_cleanup_free_ uint64_t *keys = calloc(n ? n : 1, sizeof(*keys));
	_cleanup_free_ uint32_t *ids = calloc(n ? n : 1, sizeof(*ids));
	_cleanup_free_ uint32_t *table = calloc(lb->maglev_size, sizeof(*table));
	size_t na = 0;
	int r;

	if (!keys || !ids || !table)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (be[i].state == LB_BACKEND_ACTIVE) {
			keys[na] = (uint64_t)ntohl(be[i].addr) << 16 | be[i].port;
			ids[na++] = be[i].id;
		}
	if (na == 0) {
		if (bpf_map_delete_elem(lb->fd_maglev, &svc_id) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "removing the Maglev table");
		return 0;
	}
	r = lb_maglev_build(keys, na, lb->maglev_size, table);
	if (r < 0)
		return shoal_err_errno(err, -r, "building the Maglev table");
	for (uint32_t s = 0; s < lb->maglev_size; s++)
		table[s] = ids[table[s]];

	if (bpf_map_update_elem(lb->fd_maglev, &svc_id, table, 0) < 0)
		return shoal_err_errno(err, errno, "installing the Maglev table");
	return 0;
}

/* Counts a service in or out of lb_ports. A service balanced on every port
 * (port 0) is the socket hooks' only: tc never looks it up. */
static int lb_port_ref(struct lb *lb, const struct lb_svc_key *mk, int delta)
{
	uint32_t idx = LB_PORT_INDEX(mk->proto, mk->port);
	uint32_t v = lb->port_kinds[idx];

	if (mk->port == 0)
		return 0;
	if (mk->addr == 0)
		v = delta > 0 ? v | LB_PORT_PUBLISHED : v & ~LB_PORT_PUBLISHED;
	else
		v += (uint32_t)delta << LB_PORT_VIPS_SHIFT;
	if (bpf_map_update_elem(lb->fd_ports, &idx, &v, 0) < 0)
		return -errno;
	lb->port_kinds[idx] = v;
	return 0;
}

static int lb_validate(const struct lb *lb, const struct lb_service_key *key,
		       const struct lb_backend_spec *backends, size_t n, struct shoal_err *err)
{
	size_t active = 0;

	if (!key || (key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP))
		return shoal_err_set(err, EINVAL, "service protocol must be TCP or UDP");
	/* port 0: a virtual IP balanced on every port, by the socket hooks only;
	 * its backends take the port each connection asked for (port 0) */
	bool any_port = key->port == 0;
	if (any_port && key->addr == 0)
		return shoal_err_set(err, EINVAL, "a published port must not be 0");
	if (n > LB_MAX_BACKENDS_PER_SERVICE)
		return shoal_err_set(err, E2BIG, "%zu backends; a service can have at most %d", n,
				     LB_MAX_BACKENDS_PER_SERVICE);
	for (size_t i = 0; i < n; i++) {
		const struct lb_backend_spec *b = &backends[i];

		if (b->addr == 0 || (b->port == 0) != any_port)
			return shoal_err_set(
				err, EINVAL,
				any_port ? "backend %zu of an any-port service must have port 0"
					 : "backend %zu has no address or port",
				i);
		if (b->state < LB_BACKEND_ACTIVE || b->state > LB_BACKEND_MAINTENANCE)
			return shoal_err_set(err, EINVAL, "backend %zu has a bad state %d", i,
					     b->state);
		for (size_t j = 0; j < i; j++)
			if (backends[j].addr == b->addr && backends[j].port == b->port)
				return shoal_err_set(err, EINVAL,
						     "backend %zu is listed twice (as %zu)", i, j);
		active += b->state == LB_BACKEND_ACTIVE;
	}
	if (active * LB_MAGLEV_BACKENDS_FACTOR > lb->maglev_size)
		return shoal_err_set(err, E2BIG,
				     "%zu active backends need a Maglev table of at least %zu "
				     "entries; the load balancer was opened with %u",
				     active, active * LB_MAGLEV_BACKENDS_FACTOR, lb->maglev_size);
	return 0;
}

int lb_service_upsert(struct lb *lb, const struct lb_service_key *key,
		      const struct lb_backend_spec *backends, size_t n, struct shoal_err *err)
{
	_cleanup_free_ struct lb_be *nbe = NULL;
	struct lb_svc_state *s;
	struct lb_svc_key mk;
	struct lb_svc sv = {};
	uint32_t svc_id = 0;
	size_t active = 0;
	bool created = false;
	int r;

	r = lb_validate(lb, key, backends, n, err);
	if (r < 0)
		return r;
	s = lb_find(lb, key, &svc_id);
	if (!s) {
		svc_id = lb_svc_alloc(lb);
		if (svc_id == 0)
			return shoal_err_set(err, ENOSPC, "all %d service slots are in use",
					     LB_MAX_SERVICES - 1);
		s = &lb->svcs[svc_id];
		created = true;
		r = lb_stats_zero(lb, lb->fd_svc_stats, svc_id);
		if (r < 0)
			return shoal_err_errno(err, -r, "resetting service counters");
	}
	mk = lb_key_to_map(key);

	nbe = calloc(n ? n : 1, sizeof(*nbe));
	if (!nbe)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct lb_be *old =
			created ? NULL : lb_svc_find_be(s, backends[i].addr, backends[i].port);

		nbe[i] = (struct lb_be){.addr = backends[i].addr,
					.port = backends[i].port,
					.state = backends[i].state};
		active += nbe[i].state == LB_BACKEND_ACTIVE;
		if (old) {
			nbe[i].id = old->id;
			continue;
		}
		r = lb_be_alloc(lb, &nbe[i].id);
		if (r == 0)
			r = lb_stats_zero(lb, lb->fd_be_stats, nbe[i].id);
		if (r < 0) {
			shoal_err_errno(err, -r, "allocating a backend id");
			goto undo;
		}
	}

	/* Order matters to packets in flight: a backend is active in the
	 * backends map before any table names it, and leaves the table before
	 * it stops being active. */
	for (size_t i = 0; i < n; i++)
		if (nbe[i].state == LB_BACKEND_ACTIVE) {
			r = lb_be_write(lb, &nbe[i], svc_id);
			if (r < 0) {
				shoal_err_errno(err, -r, "writing backend %u", nbe[i].id);
				goto undo;
			}
		}
	r = lb_table_install(lb, svc_id, nbe, n, err);
	if (r < 0)
		goto undo;
	for (size_t i = 0; i < n; i++)
		if (nbe[i].state != LB_BACKEND_ACTIVE) {
			r = lb_be_write(lb, &nbe[i], svc_id);
			if (r < 0) {
				shoal_err_errno(err, -r, "writing backend %u", nbe[i].id);
				goto undo;
			}
		}
	sv.id = svc_id;
	sv.active = active;
	if (created) {
		r = bpf_map_update_elem(lb->fd_svc_keys, &svc_id, &mk, 0) < 0 ? -errno : 0;
		if (r == 0)
			r = lb_port_ref(lb, &mk, 1);
		if (r < 0) {
			shoal_err_errno(err, -r, "announcing the service's port");
			goto undo;
		}
	}
	if (bpf_map_update_elem(lb->fd_services, &mk, &sv, 0) < 0) {
		r = shoal_err_errno(err, errno, "writing the service");
		if (created)
			lb_port_ref(lb, &mk, -1);
		goto undo;
	}

	/* Backends no longer listed: their flows re-pick on the next packet. */
	for (size_t i = 0; !created && i < s->n; i++) {
		bool kept = false;

		for (size_t j = 0; j < n && !kept; j++)
			kept = nbe[j].id == s->be[i].id;
		if (kept)
			continue;
		s->be[i].state = LB_BACKEND_UNUSED;
		lb_be_write(lb, &s->be[i], 0);
		lb->be_used[s->be[i].id] = 0;
	}
	free(s->be);
	s->be = TAKE_PTR(nbe);
	s->n = n;
	s->used = true;
	s->key = mk;
	s->active = active;
	return 0;

undo:
	/* Ids handed out by this call go back; entries written for them are
	 * cleared so that a restart does not adopt them. */
	for (size_t i = 0; i < n; i++) {
		if (nbe[i].id == 0 || (!created && lb_svc_find_be(s, nbe[i].addr, nbe[i].port)))
			continue;
		nbe[i].state = LB_BACKEND_UNUSED;
		lb_be_write(lb, &nbe[i], 0);
		lb->be_used[nbe[i].id] = 0;
	}
	if (created)
		bpf_map_delete_elem(lb->fd_maglev, &svc_id);
	return r;
}

int lb_service_delete(struct lb *lb, const struct lb_service_key *key, struct shoal_err *err)
{
	struct lb_svc_state *s;
	uint32_t svc_id;

	s = lb ? lb_find(lb, key, &svc_id) : NULL;
	if (!s)
		return shoal_err_set(err, ENOENT, "no such service");
	if (bpf_map_delete_elem(lb->fd_services, &s->key) < 0 && errno != ENOENT)
		return shoal_err_errno(err, errno, "removing the service");
	if (bpf_map_delete_elem(lb->fd_maglev, &svc_id) < 0 && errno != ENOENT)
		return shoal_err_errno(err, errno, "removing the Maglev table");
	for (size_t i = 0; i < s->n; i++) {
		s->be[i].state = LB_BACKEND_UNUSED;
		lb_be_write(lb, &s->be[i], 0);
		lb->be_used[s->be[i].id] = 0;
	}
	lb_port_ref(lb, &s->key, -1);
	bpf_map_update_elem(lb->fd_svc_keys, &svc_id, &(struct lb_svc_key){}, 0);
	lb_svc_state_clear(s);
	return 0;
}

int lb_backend_set_state(struct lb *lb, const struct lb_service_key *key, uint32_t addr,
			 uint16_t port, enum lb_backend_state state, struct shoal_err *err)
{
	_cleanup_free_ struct lb_backend_spec *spec = NULL;
	struct lb_svc_state *s = lb_find(lb, key, NULL);
	bool found = false;

	if (!s)
		return shoal_err_set(err, ENOENT, "no such service");
	spec = calloc(s->n ? s->n : 1, sizeof(*spec));
	if (!spec)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		spec[i] = (struct lb_backend_spec){
			.addr = s->be[i].addr, .port = s->be[i].port, .state = s->be[i].state};
		if (spec[i].addr == addr && spec[i].port == port) {
			spec[i].state = state;
			found = true;
		}
	}
	if (!found)
		return shoal_err_set(err, ENOENT, "the service has no such backend");
	return lb_service_upsert(lb, key, spec, s->n, err);
}

int lb_service_list(struct lb *lb, struct lb_service_key **ret, size_t *ret_n)
{
	_cleanup_free_ struct lb_service_key *v = NULL;
	size_t n = 0;

	v = calloc(LB_MAX_SERVICES, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t id = 1; id < LB_MAX_SERVICES; id++)
		if (lb->svcs[id].used)
			v[n++] = (struct lb_service_key){.addr = lb->svcs[id].key.addr,
							 .port = ntohs(lb->svcs[id].key.port),
							 .proto = lb->svcs[id].key.proto};
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int lb_service_backends(struct lb *lb, const struct lb_service_key *key,
			struct lb_backend_spec **ret, size_t *ret_n)
{
	struct lb_svc_state *s = lb_find(lb, key, NULL);
	struct lb_backend_spec *v;

	if (!s)
		return -ENOENT;
	v = calloc(s->n ? s->n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		v[i] = (struct lb_backend_spec){
			.addr = s->be[i].addr, .port = s->be[i].port, .state = s->be[i].state};
	*ret = v;
	*ret_n = s->n;
	return 0;
}

/* ---- counters ---- */

static int lb_stats_sum(struct lb *lb, int fd, uint32_t id, struct lb_counters *ret)
{
	_cleanup_free_ struct lb_stats *v = calloc(lb->ncpus, sizeof(*v));
	struct lb_counters c = {};

	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &id, v) < 0)
		return -errno;
	for (int i = 0; i < lb->ncpus; i++) {
		c.packets += v[i].packets;
		c.bytes += v[i].bytes;
		c.new_flows += v[i].new_flows;
	}
	*ret = c;
	return 0;
}

int lb_service_counters(struct lb *lb, const struct lb_service_key *key, struct lb_counters *ret)
{
	uint32_t id;

	if (!lb_find(lb, key, &id))
		return -ENOENT;
	return lb_stats_sum(lb, lb->fd_svc_stats, id, ret);
}

int lb_backend_counters(struct lb *lb, const struct lb_service_key *key, uint32_t addr,
			uint16_t port, struct lb_counters *ret)
{
	struct lb_svc_state *s = lb_find(lb, key, NULL);
	struct lb_be *be = s ? lb_svc_find_be(s, addr, port) : NULL;

	if (!be)
		return -ENOENT;
	return lb_stats_sum(lb, lb->fd_be_stats, be->id, ret);
}

int lb_drops_read(struct lb *lb, uint64_t ret[LB_DROP_MAX + 1])
{
	_cleanup_free_ uint64_t *v = calloc(lb->ncpus, sizeof(*v));
	uint64_t out[LB_DROP_MAX + 1] = {};

	if (!v)
		return -ENOMEM;
	for (uint32_t idx = 1; idx <= LB_DROP_MAX; idx++) {
		if (bpf_map_lookup_elem(lb->fd_drops, &idx, v) < 0)
			return -errno;
		for (int i = 0; i < lb->ncpus; i++)
			out[idx] += v[i];
	}
	memcpy(ret, out, sizeof(out));
	return 0;
}
