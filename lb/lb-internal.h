/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <bpf/libbpf.h>

#include "bpf/shared/lb_structs.h"
#include "lb/lb.h"

/* Between the load balancer core (lb.c), its hooks (lb-hooks.c) and host
 * routing (lb-fwd.c). */

struct tc_ingress;
struct tc_egress;
struct xdp_ingress;

/* Interfaces one handle attaches to at most. */
#define LB_MAX_HOOKS 64

struct lb_be {
	uint32_t id;
	uint32_t addr; /* network order */
	uint16_t port; /* host order */
	uint8_t state;
};

struct lb_svc_state {
	bool used;
	struct lb_svc_key key; /* as in the map */
	uint32_t active;
	size_t n;
	struct lb_be *be;
};

struct lb {
	struct tc_ingress *in;
	struct tc_egress *eg;
	struct xdp_ingress *xdp;
	uint32_t maglev_size;
	uint32_t ct_size;
	bool xdp_on; /* the XDP program is loaded (asked, and available) */
	struct lb_feature_status features[LB_FEAT_MAX];
	int ncpus;
	int fd_services, fd_backends, fd_maglev, fd_svc_stats, fd_be_stats, fd_drops, fd_ports,
		fd_svc_keys, fd_local_eps, fd_be_eps;
	uint32_t *port_kinds;	   /* lb_ports as written, by LB_PORT_INDEX() */
	struct lb_svc_state *svcs; /* by service id; 0 unused */
	uint8_t *be_used;	   /* by backend id; 0 reserved */
	uint32_t be_next;	   /* ids are handed out round-robin: reuse is late */
	uint32_t svc_next;
	int hooks[LB_MAX_HOOKS];
	size_t n_hooks;
};

/* Writes ep (NULL: not local) into the lb_be_eps slot of every backend
 * whose address is addr (network byte order). */
int lb_local_ep_sync(struct lb *lb, uint32_t addr, const struct lb_local_ep *ep);

/* Whether program prog_id is called name (as the kernel keeps it: at most
 * BPF_OBJ_NAME_LEN - 1 characters). */
bool lb_prog_is_named(uint32_t prog_id, const char *name);

/* Our tc filter at (handle, prio) on ifindex's hook point: attached (made,
 * or replacing the program there), or removed only when it is the program
 * called name (-EBUSY when another one is there; 0 when none is). */
int lb_tc_attach_at(int ifindex, enum bpf_tc_attach_point point, uint32_t handle, uint32_t prio,
		    int prog_fd);
int lb_tc_detach_at(int ifindex, enum bpf_tc_attach_point point, uint32_t handle, uint32_t prio,
		    const char *name);

/* A new fd for the map called name that prog_fd uses; -ENOENT if none. */
#define LB_PROG_MAPS_MAX 64
int lb_prog_map_fd(int prog_fd, const char *name);

/* A new fd for lb_local_eps, the registry the endpoint slots are kept from
 * (the programs themselves read only lb_be_eps). */
int lb_local_eps_fd(const struct lb *lb);

/* The verifier's reason for a refusal: the last `lines` lines (at most
 * LB_REASON_LINES_MAX) of log that are not a summary, joined with " | ";
 * "" if none. */
#define LB_REASON_LINES_MAX 8
void lb_verifier_reason(const char *log, int lines, char *ret, size_t len);
/* Between these two calls, the reason of the last program load that
 * failed lands in buf (through libbpf's print callback, which is passed on
 * to the one set before). */
void lb_load_log_begin(char *buf, size_t len);
void lb_load_log_end(void);

/* The knobs of every program built on bpf/lib/lb.h, from the features. */
#define LB_SET_KNOBS(lb, skel)                                                       \
	do {                                                                         \
		(skel)->rodata->lb_maglev_size = (lb)->maglev_size;                  \
		(skel)->rodata->lb_cfg_host_routing =                                \
			(lb)->features[LB_FEAT_HOST_ROUTING].state == LB_FEATURE_ON; \
		(skel)->rodata->lb_cfg_coarse_clock =                                \
			(lb)->features[LB_FEAT_COARSE_CLOCK].state == LB_FEATURE_ON; \
	} while (0)
