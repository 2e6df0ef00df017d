/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "bpf/shared/lb_structs.h"
#include "lb/lb.h"

/* Between the load balancer core (lb.c) and host routing (lb-fwd.c). */

/* Writes ep (NULL: not local) into the lb_be_eps slot of every backend
 * whose address is addr (network byte order). */
int lb_local_ep_sync(struct lb *lb, uint32_t addr, const struct lb_local_ep *ep);

/* Whether program prog_id is called name (as the kernel keeps it: at most
 * BPF_OBJ_NAME_LEN - 1 characters). */
bool lb_prog_is_named(uint32_t prog_id, const char *name);

/* A new fd for the map called name that prog_fd uses; -ENOENT if none. */
#define LB_PROG_MAPS_MAX 64
int lb_prog_map_fd(int prog_fd, const char *name);

/* A new fd for lb_local_eps, the registry the endpoint slots are kept from
 * (the programs themselves read only lb_be_eps). */
int lb_local_eps_fd(const struct lb *lb);
