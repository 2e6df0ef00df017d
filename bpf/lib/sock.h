/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/lb.h"
#include "bpf/lib/maps.h"

/* East-west balancing at the socket: the destination an application gives
 * connect() (TCP, connected UDP) or sendmsg() (unconnected UDP) is a
 * service VIP; it is rewritten to a backend before the kernel routes
 * anything, so the packets carry the backend's address from the start and
 * need no NAT. getpeername() and recvmsg() translate the backend back to
 * the VIP. Only services with an address are served here: a published port
 * (address 0) would otherwise capture every connection to its port.
 *
 * The node hooks (node = true) serve published ports to the node's own
 * processes, whose packets never cross an uplink's tc hook: a destination
 * that is loopback or one of the node's addresses, with the port of a
 * published port, goes to one of its backends. They sit on the root of the
 * cgroup v2 tree, where every process of the machine is, so they act only on
 * sockets of the agent's network namespace (lb_node_cfg).
 *
 * For the VIP hooks these maps are not pinned; lb/ hands them from the
 * programs it replaces to their successors, so a new agent finds the flows
 * of the old one. The node hooks' copies are pinned by lb/. */

/* (UDP socket, service address) -> backend its datagrams go to. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_SOCK_FLOWS_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lb_sock_key);
	__type(value, struct lb_sock_flow);
} lb_sock_flows SEC(".maps");

/* (socket, backend address) -> the service address the application used. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_SOCK_FLOWS_DEFAULT);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lb_sock_key);
	__type(value, struct lb_rnat_entry);
} lb_sock_rnat SEC(".maps");

/* [0]: the agent's network namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_node_cfg);
} lb_node_cfg SEC(".maps");

/* The node's own addresses (besides 127.0.0.0/8); the value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_NODE_ADDRS_MAX);
	__type(key, __be32);
	__type(value, __u8);
} lb_node_addrs SEC(".maps");

/* Whether the socket belongs to the agent's network namespace. */
static __always_inline bool lb_node_netns(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	struct lb_node_cfg *cfg = bpf_map_lookup_elem(&lb_node_cfg, &zero);

	return cfg && cfg->netns_cookie && bpf_get_netns_cookie(ctx) == cfg->netns_cookie;
}

/* Loopback or one of the node's addresses. */
static __always_inline bool lb_node_addr(__be32 addr)
{
	if ((bpf_ntohl(addr) >> 24) == 127)
		return true;
	return bpf_map_lookup_elem(&lb_node_addrs, &addr) != NULL;
}

/* The socket path sees no packets: it counts new flows (a connect(), a UDP
 * socket's first datagram to a service) and, for UDP, datagrams sent. */
static __always_inline void lb_sock_stats_add(void *map, __u32 id, bool datagram, bool new_flow)
{
	struct lb_stats *st = bpf_map_lookup_elem(map, &id);

	if (!st)
		return;
	if (datagram)
		st->packets++;
	if (new_flow)
		st->new_flows++;
}

/* Forward translation; datagram: called from sendmsg4, once per datagram;
 * node: the node hooks (published ports), else the VIP hooks. */
static __always_inline int lb_sock_fwd4(struct bpf_sock_addr *ctx, bool datagram, bool node)
{
	struct lb_svc_key sk = {};
	struct lb_sock_key fk = {}, rk = {};
	struct lb_flow_key hk = {};
	struct lb_sock_flow *fl, nfl = {};
	struct lb_rnat_entry rn = {};
	struct lb_backend *be = NULL;
	struct lb_svc *svc;
	__u32 be_id = 0, proto = ctx->protocol;
	bool udp = proto == IPPROTO_UDP, new_flow = false;
	__u64 cookie;
	int ret;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	__be32 req_addr = ctx->user_ip4;
	__be16 req_port = (__be16)ctx->user_port;

	if (req_addr == 0)
		return 0;
	sk.port = req_port;
	sk.proto = proto;
	if (node) {
		/* a published port: its key has address 0 */
		if (!lb_node_addr(req_addr) || !lb_node_netns(ctx))
			return 0;
		svc = bpf_map_lookup_elem(&lb_services, &sk);
		if (!svc)
			return 0;
	} else {
		/* the exact port, else a VIP balanced on every port (port 0),
		 * whose backends then take the port the socket asked for */
		sk.addr = req_addr;
		svc = bpf_map_lookup_elem(&lb_services, &sk);
		if (!svc) {
			sk.port = 0;
			svc = bpf_map_lookup_elem(&lb_services, &sk);
			if (!svc)
				return 0;
		}
	}

	cookie = bpf_get_socket_cookie(ctx);
	fk.cookie = cookie;
	fk.addr = req_addr;
	fk.port = req_port;
	fk.proto = proto;
	if (udp) {
		fl = bpf_map_lookup_elem(&lb_sock_flows, &fk);
		if (fl && fl->svc_id == svc->id) {
			be_id = fl->backend_id;
			be = lb_backend_for_flow(be_id, svc->id);
		}
	}
	if (!be) {
		/* The socket stands in for the client's address and port: each
		 * connection hashes apart, and a UDP socket that lost its entry
		 * finds the same backend again while the table is unchanged. */
		hk.saddr = (__u32)cookie;
		hk.daddr = (__u32)(cookie >> 32) ^ req_addr;
		hk.dport = req_port;
		hk.proto = proto;
		ret = lb_maglev_pick(svc, &hk, &be_id);
		if (ret < 0)
			return ret;
		be = bpf_map_lookup_elem(&lb_backends, &be_id);
		if (!be)
			return LB_DROP_BACKEND_INVALID;
		new_flow = true;
		if (udp) {
			nfl.backend_id = be_id;
			nfl.svc_id = svc->id;
			if (bpf_map_update_elem(&lb_sock_flows, &fk, &nfl, BPF_ANY) < 0)
				return LB_DROP_CT_UPDATE;
		}
	}

	__be16 be_port = be->port ? be->port : req_port;
	rk.cookie = cookie;
	rk.addr = be->addr;
	rk.port = be_port;
	rk.proto = proto;
	if (new_flow || !bpf_map_lookup_elem(&lb_sock_rnat, &rk)) {
		rn.addr = req_addr;
		rn.port = req_port;
		rn.svc_id = svc->id;
		if (bpf_map_update_elem(&lb_sock_rnat, &rk, &rn, BPF_ANY) < 0)
			return LB_DROP_CT_UPDATE;
	}

	ctx->user_ip4 = be->addr;
	ctx->user_port = (__u32)be_port;
	lb_sock_stats_add(&lb_svc_stats, svc->id, datagram, new_flow);
	lb_sock_stats_add(&lb_be_stats, be_id, datagram, new_flow);
	return 0;
}

/* Reverse translation: a peer address that is a backend this socket was
 * sent to reads as the service address. */
static __always_inline void lb_sock_rev4(struct bpf_sock_addr *ctx)
{
	struct lb_sock_key rk = {};
	struct lb_rnat_entry *rn;
	__u32 proto = ctx->protocol;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return;
	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.addr = ctx->user_ip4;
	rk.port = (__be16)ctx->user_port;
	rk.proto = proto;
	rn = bpf_map_lookup_elem(&lb_sock_rnat, &rk);
	if (!rn)
		return;
	ctx->user_ip4 = rn->addr;
	ctx->user_port = (__u32)rn->port;
}

/* connect4/sendmsg4 verdict: 1 lets the call go on; 0 fails it with EPERM,
 * which is what a service without a usable backend gets (at once, rather
 * than a timeout towards an address nobody has). Counted by reason. */
static __always_inline int lb_sock_verdict(int ret)
{
	__u32 idx;
	__u64 *cnt;

	if (ret >= 0)
		return 1;
	idx = -ret;
	cnt = bpf_map_lookup_elem(&lb_drops, &idx);
	if (cnt)
		(*cnt)++;
	return 0;
}
