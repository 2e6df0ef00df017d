/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/shared/lb_consts.h"
#include "bpf/shared/lb_drop.h"
#include "bpf/shared/lb_structs.h"

/* Every map here is pinned by lb/ under the agent's bpffs dir and reused on
 * the next load, so that flows survive an agent restart. Sizes given here
 * are defaults; lb_open() resizes lb_maglev's value (the table), lb_ct and lb_rnat. */

/* (addr, port, proto) -> service; addr 0 is a published port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_SERVICES);
	__type(key, struct lb_svc_key);
	__type(value, struct lb_svc);
} lb_services SEC(".maps");

/* (proto, port) -> kinds of service on it (LB_PORT_*), written by user
 * space before the services it announces and cleared after them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 65536);
	__type(key, __u32);
	__type(value, __u32);
} lb_ports SEC(".maps");

/* Service id -> its key (struct lb_svc_key), so that an established flow
 * is checked against its service without a lookup in lb_services. Written
 * by user space before the service, zeroed after its removal. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct lb_svc_key);
} lb_svc_keys SEC(".maps");

/* Backend id -> address, port, state, owning service. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_backend);
} lb_backends SEC(".maps");

/* Service id -> its Maglev table: the value is the whole table of backend
 * ids (__u32[maglev_size]; lb_open() sets the value size before load). A
 * hash without preallocation: an update of an existing key links a new
 * element in place of the old one, so a packet sees either the old table or
 * the new, never a mix, and the update returns without waiting for an RCU
 * grace period (map-in-map updates do wait, about 16 ms each). Memory is
 * taken only for the services that have a table: see lb_consts.h. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32) * LB_MAGLEV_DEFAULT);
} lb_maglev SEC(".maps");

/* Forward flows (client -> service) -> chosen backend. An LRU with per-CPU
 * eviction lists (BPF_F_NO_COMMON_LRU): one table every CPU can read, so a
 * flow keeps its backend whichever queue its packets land on, without the
 * CPUs contending on one LRU list. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_ct_entry);
} lb_ct SEC(".maps");

/* Reply flows (backend -> client) -> the service address the client used. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CT_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_rnat_entry);
} lb_rnat SEC(".maps");

/* Per service id: packets, bytes and new flows seen on ingress. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct lb_stats);
} lb_svc_stats SEC(".maps");

/* Per backend id: packets, bytes and new flows sent to it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_stats);
} lb_be_stats SEC(".maps");

/* Drops by reason, at index -reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_DROP_MAX + 1);
	__type(key, __u32);
	__type(value, __u64);
} lb_drops SEC(".maps");

/* Geometry of the pinned maps (struct lb_meta); written by user space only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_meta);
} lb_meta SEC(".maps");
