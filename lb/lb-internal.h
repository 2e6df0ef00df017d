/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "bpf/shared/lb_structs.h"
#include "lb/lb.h"

/* Between the load balancer core (lb.c) and host routing (lb-fwd.c). */

/* Writes ep (NULL: not local) into the lb_be_eps slot of every backend
 * whose address is addr (network byte order). */
int lb_local_ep_sync(struct lb *lb, uint32_t addr, const struct lb_local_ep *ep);

/* A new fd for lb_local_eps, the registry the endpoint slots are kept from
 * (the programs themselves read only lb_be_eps). */
int lb_local_eps_fd(const struct lb *lb);
