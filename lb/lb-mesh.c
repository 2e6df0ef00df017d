// SPDX-License-Identifier: Apache-2.0
/* The routing mesh's return path on a backend's node: the programs of
 * bpf/tc_mesh.bpf.c, their pinned maps and their hooks (see lb.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb/lb-internal.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/util.h"
#include "tc_mesh.skel.h"

/* Our filters: a fixed handle, and priorities that put the veth program
 * after the policy programs (0x5300) and before the load balancer's reply
 * program (0x5346), which ends the chain for packets it does not take. */
#define LB_MESH_TC_HANDLE    0x534d
#define LB_MESH_TC_PRIO_VX   0x534d
#define LB_MESH_TC_PRIO_VETH 0x5345

static const char *const lb_mesh_pins[] = {"lb_mesh_nets", "lb_mesh_flows", "lb_mesh_stats"};

struct lb_mesh {
	struct tc_mesh *skel;
};

struct lb_mesh *lb_mesh_close(struct lb_mesh *m)
{
	if (!m)
		return NULL;
	tc_mesh__destroy(m->skel);
	free(m);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_mesh *, lb_mesh_close)

void lb_mesh_unpin(const char *pin_dir)
{
	char path[512];

	for (size_t i = 0; pin_dir && i < ARRAY_SIZE(lb_mesh_pins); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, lb_mesh_pins[i]);
		unlink(path);
	}
}

/* Opens and loads the programs with their maps on the pins in pin_dir
 * (reused when there, made and pinned when not). */
static int lb_mesh_load(struct lb_mesh *m, const struct lb_mesh_open_opts *o, char *reason,
			size_t len)
{
	const char *pin_dir = o->pin_dir;
	int r;

	tc_mesh__destroy(m->skel);
	m->skel = tc_mesh__open();
	if (!m->skel)
		return -errno;
	if (o->close_grace_ns)
		m->skel->rodata->lb_mesh_close_grace_ns = o->close_grace_ns;
	if (o->udp_idle_ns)
		m->skel->rodata->lb_mesh_udp_idle_ns = o->udp_idle_ns;
	for (size_t i = 0; pin_dir && i < ARRAY_SIZE(lb_mesh_pins); i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(m->skel->obj, lb_mesh_pins[i]);
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", pin_dir, lb_mesh_pins[i]);
		if (!map)
			return -ENOENT;
		r = bpf_map__set_pin_path(map, path);
		if (r < 0)
			return r;
	}
	lb_load_log_begin(reason, len);
	r = tc_mesh__load(m->skel);
	lb_load_log_end();
	return r;
}

int lb_mesh_open(const struct lb_mesh_open_opts *opts, struct lb_mesh **ret, struct shoal_err *err)
{
	_cleanup_(lb_mesh_closep) struct lb_mesh *m = NULL;
	struct lb_mesh_open_opts o = opts ? *opts : (struct lb_mesh_open_opts){0};
	const char *pin_dir = o.pin_dir;
	char reason[256] = "";
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return shoal_err_set(err, ENOMEM, "out of memory");
	if (pin_dir) {
		r = mkdir_p(pin_dir, 0700);
		if (r < 0)
			return shoal_err_errno(err, -r, "creating %s", pin_dir);
	}
	r = lb_mesh_load(m, &o, reason, sizeof(reason));
	if (r < 0 && pin_dir) {
		/* pins of another layout (an older agent): made afresh; the
		 * flows they held come back with their next packets */
		lb_mesh_unpin(pin_dir);
		reason[0] = '\0';
		r = lb_mesh_load(m, &o, reason, sizeof(reason));
	}
	if (r < 0)
		return shoal_err_set(err, -r, "loading the mesh programs: %s",
				     reason[0] ? reason : strerror(-r));
	*ret = TAKE_PTR(m);
	return 0;
}

int lb_mesh_in_fd(const struct lb_mesh *m)
{
	return bpf_program__fd(m->skel->progs.lb_mesh_in);
}

int lb_mesh_out_fd(const struct lb_mesh *m)
{
	return bpf_program__fd(m->skel->progs.lb_mesh_out);
}

int lb_mesh_net_attach(struct lb_mesh *m, int ifindex, uint32_t addr, int prefix,
		       struct shoal_err *err)
{
	struct lb_mesh_net net = {};
	uint32_t key = (uint32_t)ifindex;
	int r;

	if (ifindex <= 0)
		return shoal_err_set(err, EINVAL, "bad interface index %d", ifindex);
	if (prefix < 0 || prefix > 32)
		return shoal_err_set(err, EINVAL, "bad prefix length %d", prefix);
	net.mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	net.addr = addr & net.mask;
	if (bpf_map_update_elem(bpf_map__fd(m->skel->maps.lb_mesh_nets), &key, &net, BPF_ANY) < 0)
		return shoal_err_errno(err, errno, "recording the subnet of interface %d", ifindex);
	r = lb_tc_attach_at(ifindex, BPF_TC_INGRESS, LB_MESH_TC_HANDLE, LB_MESH_TC_PRIO_VX,
			    lb_mesh_in_fd(m));
	if (r < 0)
		return shoal_err_errno(err, -r, "attaching the mesh program to interface %d",
				       ifindex);
	return 0;
}

static int lb_mesh_detach(int ifindex, uint32_t prio, const char *name, struct shoal_err *err)
{
	int r = lb_tc_detach_at(ifindex, BPF_TC_INGRESS, LB_MESH_TC_HANDLE, prio, name);

	if (r == -EBUSY)
		return shoal_err_set(err, EBUSY,
				     "interface %d has another program at the mesh program's tc "
				     "handle; left in place",
				     ifindex);
	if (r < 0)
		return shoal_err_errno(err, -r, "detaching the mesh program from interface %d",
				       ifindex);
	return 0;
}

int lb_mesh_net_detach(struct lb_mesh *m, int ifindex, struct shoal_err *err)
{
	uint32_t key = (uint32_t)ifindex;

	if (bpf_map_delete_elem(bpf_map__fd(m->skel->maps.lb_mesh_nets), &key) < 0 &&
	    errno != ENOENT)
		return shoal_err_errno(err, errno, "forgetting the subnet of interface %d",
				       ifindex);
	return lb_mesh_detach(ifindex, LB_MESH_TC_PRIO_VX, "lb_mesh_in", err);
}

int lb_mesh_veth_attach(struct lb_mesh *m, int ifindex, struct shoal_err *err)
{
	int r;

	if (ifindex <= 0)
		return shoal_err_set(err, EINVAL, "bad interface index %d", ifindex);
	r = lb_tc_attach_at(ifindex, BPF_TC_INGRESS, LB_MESH_TC_HANDLE, LB_MESH_TC_PRIO_VETH,
			    lb_mesh_out_fd(m));
	if (r < 0)
		return shoal_err_errno(err, -r, "attaching the mesh program to interface %d",
				       ifindex);
	return 0;
}

int lb_mesh_veth_detach(struct lb_mesh *m, int ifindex, struct shoal_err *err)
{
	(void)m;
	return lb_mesh_detach(ifindex, LB_MESH_TC_PRIO_VETH, "lb_mesh_out", err);
}

int lb_mesh_counters(const struct lb_mesh *m, struct lb_mesh_counters *ret)
{
	int ncpus = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(m->skel->maps.lb_mesh_stats);
	uint64_t *v;
	uint64_t sum[2] = {0, 0};

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t k = 0; k < 2; k++) {
		if (bpf_map_lookup_elem(fd, &k, v) < 0) {
			int e = -errno;

			free(v);
			return e;
		}
		for (int c = 0; c < ncpus; c++)
			sum[k] += v[c];
	}
	free(v);
	ret->noted = sum[0];
	ret->returned = sum[1];
	return 0;
}
