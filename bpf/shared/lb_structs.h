/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/types.h>

/* Map keys and values shared by the tc programs and lb/. Addresses and ports
 * are in network byte order, as they sit in the packet.
 *
 * IPv6 fits in without new maps: the service, backend, flow and reverse NAT
 * structs grow a family byte and 16-byte addresses (IPv4 kept in the same
 * field as a mapped address), the programs get an ETH_P_IPV6 parse branch
 * (extension headers walked to the L4 header; no IP checksum to fix, only
 * the L4 pseudo-header), and one service may then mix backend families. */

/* Service lookup key: a published port has addr 0 (any address of this
 * node); a VIP has its address. The programs try the exact key first. */
struct lb_svc_key {
	__be32 addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct lb_svc {
	__u32 id;     /* index into lb_maglev and lb_svc_stats */
	__u32 active; /* backends in the Maglev table; 0: new flows are dropped */
	__u32 flags;
	__u32 pad;
};

enum lb_backend_state {
	LB_BACKEND_UNUSED = 0,	    /* free slot */
	LB_BACKEND_ACTIVE = 1,	    /* new and existing flows */
	LB_BACKEND_DRAINING = 2,    /* existing flows only */
	LB_BACKEND_MAINTENANCE = 3, /* no flows: existing ones are moved */
};

struct lb_backend {
	__be32 addr;
	__be16 port;
	__u8 state; /* enum lb_backend_state */
	__u8 flags;
	__u32 svc_id; /* owning service: a flow whose backend moved is re-picked */
};

/* A flow as seen on the wire: forward direction for lb_ct (client ->
 * service), reply direction for lb_rnat (backend -> client). */
struct lb_flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* A TCP flow's close, as the programs see it: ingress sees the client's
 * packets, egress the backend's. RST from either side, or FIN from both,
 * closes it: a later SYN (without ACK) on the same tuple is a new flow, and
 * egress stops rewriting replies LB_CT_CLOSE_GRACE_NS after the close.
 * Each side writes only its own byte, so no update of the other is lost
 * (the programs are built for BPF v1, which has no atomic OR). */
struct lb_ct_entry {
	__u32 backend_id;
	__u32 svc_id;
	__u64 created_ns; /* bpf_ktime_get_coarse_ns() */
	__u64 last_seen_ns;
	__u64 closed_ns; /* 0: open; else when it closed */
	__u8 fin_client; /* the client sent FIN */
	__u8 fin_backend;
	__u8 pad[2];
	__u32 touch_jiffies; /* low bits of jiffies when last_seen_ns was checked */
};

/* What a reply's source is rewritten back to. In lb_rnat, flags has
 * LB_RNAT_CLOSED once the flow closed (the close time is in its lb_ct
 * entry). */
#define LB_RNAT_CLOSED 1U

struct lb_rnat_entry {
	__be32 addr;
	__be16 port;
	__u16 flags;
	__u32 svc_id;
};

/* lb_ports[LB_PORT_INDEX(proto, port)]: which kinds of service use that
 * port, so that a packet costs one service lookup (none for a port without
 * services). Bit 0: a published port (address 0); the rest, value >>
 * LB_PORT_VIPS_SHIFT: how many services with an address use it. */
#define LB_PORT_PUBLISHED	      1U
#define LB_PORT_VIPS_SHIFT	      1
#define LB_PORT_INDEX(proto, port_be) (((proto) == 17 ? 0x10000U : 0U) | (__u16)(port_be))

struct lb_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/* lb_meta[0]: how the pinned maps were sized, so that a later lb_open()
 * reuses them with the same geometry or refuses clearly. */
struct lb_meta {
	__u32 magic;
	__u32 version;
	__u32 maglev_size;
	__u32 ct_size;
	__u32 max_services;
	__u32 max_backends;
};

/* Socket-level balancing (cgroup connect4/sendmsg4/recvmsg4/getpeername4).
 * A socket is named by its cookie, which the kernel never reuses. Forward:
 * (socket, service address) -> backend, for UDP, so that the datagrams of
 * one socket stay on one backend while it is active or draining. Reverse:
 * (socket, backend address) -> the service address the application used,
 * as a struct lb_rnat_entry, shown by getpeername() and recvmsg(). */
struct lb_sock_key {
	__u64 cookie;
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct lb_sock_flow {
	__u32 backend_id;
	__u32 svc_id;
};

/* Published ports from the node itself (the node hooks of sock_lb.bpf.c, on
 * the root of the cgroup v2 tree): only sockets of the agent's own network
 * namespace are translated, and only towards loopback or one of the node's
 * addresses (lb_node_addrs, kept up to date by the agent). */
#define LB_NODE_ADDRS_MAX 256

struct lb_node_cfg {
	__u64 netns_cookie; /* the agent's network namespace; 0: translate nothing */
};

/* lb_local_eps: a backend address that is a container on this node ->
 * where its packets go. The tc ingress program on the uplink writes the two
 * MAC addresses and hands the packet straight to the container's end of the
 * veth pair (bpf_redirect_peer on the host end). */
struct lb_local_ep {
	__u32 ifindex;	  /* host-side veth */
	__u8 mac[6];	  /* the container's interface: destination */
	__u8 host_mac[6]; /* the host-side veth: source */
};

/* lb_fwd_flows: a reply flow (as struct lb_flow_key) whose forward packets
 * were redirected to a local endpoint -> the uplink they came in on, where
 * its replies are sent back out. */
struct lb_fwd_flow {
	__u32 ifindex;
	__u32 pad;
};

/* Routing mesh across nodes. A published port's flow that enters on node E
 * and goes to a task on node B crosses the overlay with the client's own
 * address: E DNATs it to the task's overlay address and routes it into the
 * overlay. B notes, per flow, the node it came from, so that the task's
 * replies go back through E (whose uplink reverse-NATs them) instead of out
 * of B with the task's address.
 *
 * lb_mesh_nets: a VXLAN device's ifindex -> the overlay network's subnet. A
 * packet from the overlay whose source is outside the subnet is a mesh flow
 * (anything else from another node carries an address of the network). */
struct lb_mesh_net {
	__be32 addr; /* subnet address, network order */
	__be32 mask; /* network order */
};

/* lb_mesh_flows: a reply flow (as struct lb_flow_key: task -> client) ->
 * the entry node's gateway MAC on the network and the VXLAN device to send
 * it back through. An entry ends (so that a later flow with the same
 * addresses and ports, entering at this node, is not sent away) a grace
 * after the flow's close (a TCP FIN or RST from the task, an RST from the
 * client), or for UDP after a quiet period; a new TCP flow (SYN) or a frame
 * from another entry node rewrites it. */
struct lb_mesh_flow {
	__u32 ifindex; /* the VXLAN device */
	__u8 mac[6];   /* the entry node's address on the overlay */
	__u8 pad[2];
	__u64 seen_ns;	 /* the client's last packet (refreshed once a second) */
	__u64 closed_ns; /* when the flow closed; 0: open */
};

/* XDP metadata (in front of the frame, bpf_xdp_adjust_meta()) left by the
 * XDP ingress program on a packet it took charge of: DNATed to backend_id
 * (or dropped). tc ingress on the same uplink then only hands the packet to
 * a local endpoint (lb_fwd4()) instead of looking it up again, which would
 * DNAT it a second time when the backend's port is a published one too. */
#define LB_XDP_META_MAGIC 0x5a0a1b01U
struct lb_xdp_meta {
	__u32 magic;
	__u32 backend_id;
};
