/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Sizes of the load balancer maps. Each one can be overridden at build time
 * (-DLB_MAX_SERVICES=...); the Maglev table size and the conntrack size are
 * also load-time options of lb_open(), applied before the maps are created. */

/* Services (published ports and VIPs); service id 0 is never used. */
#ifndef LB_MAX_SERVICES
#define LB_MAX_SERVICES 1024
#endif

/* Backends over all services; backend id 0 means "no backend". */
#ifndef LB_MAX_BACKENDS
#define LB_MAX_BACKENDS 16384
#endif

/* Backends listed for one service (any state). */
#ifndef LB_MAX_BACKENDS_PER_SERVICE
#define LB_MAX_BACKENDS_PER_SERVICE 1024
#endif

/* Maglev lookup table entries per service: a prime at least 100 times the
 * number of active backends, so that each backend's share stays within 1%. */
#ifndef LB_MAGLEV_DEFAULT
#define LB_MAGLEV_DEFAULT 16381
#endif
#ifndef LB_MAGLEV_MAX
#define LB_MAGLEV_MAX 131071
#endif
#define LB_MAGLEV_MIN		  101
#define LB_MAGLEV_BACKENDS_FACTOR 100

/* Flow entries (forward conntrack and reverse NAT each hold this many). */
#ifndef LB_CT_DEFAULT
#define LB_CT_DEFAULT 65536
#endif

/* A conntrack entry's last_seen_ns is rewritten at most this often, so that
 * the packets of a busy flow do not all dirty the same cache line. */
#ifndef LB_CT_TOUCH_NS
#define LB_CT_TOUCH_NS 1000000000ULL
#endif

/* Written into the pinned lb_meta map; a pin set with another magic or
 * version is refused instead of being misread. */
#define LB_META_MAGIC	0x73686c62 /* "shlb" */
#define LB_META_VERSION 1

/* Socket-level (east-west) balancing: entries of lb_sock_flows (UDP socket
 * -> backend) and of lb_sock_rnat (socket + backend -> service address). */
#ifndef LB_SOCK_FLOWS_DEFAULT
#define LB_SOCK_FLOWS_DEFAULT 65536
#endif
