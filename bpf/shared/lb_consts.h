/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Sizes of the load balancer maps. Each one can be overridden at build time
 * (-DLB_MAX_SERVICES=...); the Maglev table size and the conntrack size are
 * also load-time options of lb_open(), applied before the maps are created.
 *
 * Kernel memory of the maps these sizes govern, with the defaults below
 * (N = possible CPUs; a hash element carries about 56 bytes of header):
 *   lb_services   HASH, preallocated, 16384 x (56 + 8 + 16) B   = 1.3 MiB
 *   lb_backends   ARRAY, 131072 x 16 B                          = 2 MiB
 *   lb_maglev     HASH, not preallocated: one element per service
 *                 with a table, 56 + 8 + 4 x maglev_size B each, in an
 *                 allocation rounded up to a power of two: at
 *                 LB_MAGLEV_DEFAULT (16381) that is 128 KiB, so 10,000
 *                 services take 1.25 GiB; 16363, the largest prime whose
 *                 element fits 64 KiB, halves that (shoald --maglev-size).
 *   lb_ports      ARRAY, 2 x 65536 x 8 B                        = 1 MiB
 *   lb_svc_keys   ARRAY, 16384 x 8 B                            = 128 KiB
 *   lb_svc_stats  PERCPU_ARRAY, 16384 x 24 B x N                = 384 KiB x N
 *   lb_be_stats   PERCPU_ARRAY, 131072 x 24 B x N               = 3 MiB x N
 *   lb_ct         LRU_HASH, ct_size x (48 + 16 + 40) B          = 6.5 MiB
 *   lb_rnat       LRU_HASH, ct_size x (48 + 16 + 16) B          = 5 MiB
 *                 at LB_CT_DEFAULT (not sized by the limits here)
 * User space (lb/) keeps about 48 B per service slot and 1 B per backend
 * slot on top. */

/* Services (published ports and VIPs); service id 0 is never used. */
#ifndef LB_MAX_SERVICES
#define LB_MAX_SERVICES 16384
#endif

/* Backends over all services; backend id 0 means "no backend". */
#ifndef LB_MAX_BACKENDS
#define LB_MAX_BACKENDS 131072
#endif

/* Backends listed for one service (any state). */
#ifndef LB_MAX_BACKENDS_PER_SERVICE
#define LB_MAX_BACKENDS_PER_SERVICE 1024
#endif

/* Maglev lookup table entries per service: a prime at least 100 times the
 * number of active backends, so that each backend's share stays within 1%
 * (16381 serves 163 backends a service, as Cilium's default does). */
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

/* The coarse clock is read for that at most once per this many jiffies
 * (bpf_jiffies64() costs nothing; at HZ 100 to 1000 it is 1 s to 100 ms). */
#ifndef LB_CT_TOUCH_JIFFIES
#define LB_CT_TOUCH_JIFFIES 100
#endif

/* A closed TCP flow (RST, or FIN both ways) still has its replies rewritten
 * this long, for the last ACKs and retransmitted FINs; then tc egress drops
 * its reverse entry and lets the tuple's packets pass unchanged. */
#ifndef LB_CT_CLOSE_GRACE_NS
#define LB_CT_CLOSE_GRACE_NS 3000000000ULL
#endif

/* Written into the pinned lb_meta map; a pin set with another magic or
 * version is refused instead of being misread. */
#define LB_META_MAGIC	0x73686c62 /* "shlb" */
#define LB_META_VERSION 2

/* Socket-level (east-west) balancing: entries of lb_sock_flows (UDP socket
 * -> backend) and of lb_sock_rnat (socket + backend -> service address). */
#ifndef LB_SOCK_FLOWS_DEFAULT
#define LB_SOCK_FLOWS_DEFAULT 65536
#endif

/* Local endpoints (containers on this node) that published-port traffic is
 * redirected to directly, past the node's IP stack (lb_local_eps). */
/* Overlay networks the mesh return path is on, per node. */
#define LB_MAX_MESH_NETS 1024

#ifndef LB_MAX_LOCAL_EPS
#define LB_MAX_LOCAL_EPS 4096
#endif
