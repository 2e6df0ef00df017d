/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/shared/lb_consts.h"
#include "bpf/shared/lb_drop.h"
#include "bpf/shared/lb_structs.h"
#include "lib/err.h"

/* North-south load balancing on a node's uplink (published ports, VIPs).
 *
 * Data path: tc ingress on the uplink looks the packet up by (destination
 * address, port, protocol), then by (any address, port, protocol); keeps a
 * flow on its backend through an LRU conntrack; picks new flows' backends
 * by Maglev; DNATs to the backend, keeping the client's source address; the
 * kernel routes the packet on to the backend. tc egress on the same uplink
 * rewrites the replies' source back to the address and port the client used.
 * Backends must therefore be reached through this node and answer through
 * its uplink: local tasks (bridge, veth) are.
 *
 * Remote backends (a task on another node) need SNAT to this node's address
 * on top, so that replies come back here for reverse NAT: a per-backend
 * flag, a source port allocated per flow from a node range, a conntrack
 * entry keyed by the SNATed reply tuple on ingress and bpf_redirect() out
 * of the uplink. Not part of this data plane yet: every backend is treated
 * as local.
 *
 * Backend states: active backends take new flows; draining ones keep the
 * flows they have; in maintenance, a backend's flows move to active ones.
 * A TCP flow closes on RST, or on FIN from both sides: a later SYN on its
 * tuple is a new flow (picked afresh), and its replies stop being rewritten
 * LB_CT_CLOSE_GRACE_NS after the close.
 *
 * All state is in maps pinned under opts->pin_dir: a new lb_open() on the
 * same dir (agent restart) reuses them, flows included, and lb_close() leaves
 * the tc hooks running. Changes are map updates: a backend set change
 * replaces one service's Maglev table (one map value, written atomically and
 * without waiting for an RCU grace period), nothing else is rebuilt.
 *
 * Not thread-safe: one caller (the agent's loop) at a time. */

struct lb;

/* Kernel features the data plane uses. Required ones missing: lb_open()
 * fails, naming what provides them. Optional ones each have a fallback,
 * taken when the kernel lacks them or when they are turned off: by
 * lb_open_opts.disable or by the SHOAL_LB_DISABLE environment variable
 * ("xdp,host-routing"), which tests set to run every fallback on every
 * kernel. Probed once per process by loading a minimal program that uses
 * the feature (lb/lb-probe.c), never by reading verifier messages. */
enum lb_feature {
	LB_FEAT_TC,	      /* required: the tc programs' helpers */
	LB_FEAT_MAPS,	      /* required: LRU hash, per-CPU and batch map operations */
	LB_FEAT_COARSE_CLOCK, /* bpf_ktime_get_coarse_ns; else bpf_ktime_get_ns */
	LB_FEAT_HOST_ROUTING, /* bpf_redirect_peer/_neigh; else the node's stack */
	LB_FEAT_SOCKET_LB,    /* cgroup sock_addr hooks; else DNS round robin, proxy */
	LB_FEAT_XDP,	      /* XDP ingress with metadata (asked with opts.xdp) */
	LB_FEAT_RINGBUF,      /* policy flow log in a BPF ring buffer; else a BPF queue */
	LB_FEAT_MAX
};

#define LB_DISABLE_ENV "SHOAL_LB_DISABLE"

enum lb_feature_state {
	LB_FEATURE_ON,
	LB_FEATURE_OFF,		/* available, not asked for */
	LB_FEATURE_UNAVAILABLE, /* reason says why: the kernel, or turned off */
};

struct lb_feature_status {
	enum lb_feature_state state;
	char reason[256];
};

const char *lb_feature_name(enum lb_feature f);
const char *lb_feature_state_name(enum lb_feature_state s);
bool lb_feature_required(enum lb_feature f);
/* What the feature does, and the kernel version or option that brings it. */
const char *lb_feature_what(enum lb_feature f);
const char *lb_feature_provides(enum lb_feature f);
/* What is done without it; NULL for a required feature. */
const char *lb_feature_fallback(enum lb_feature f);
/* "xdp,host-routing" -> (1u << LB_FEAT_XDP) | ...; unknown and required
 * names are refused. */
int lb_features_parse(const char *list, uint32_t *ret, struct shoal_err *err);
/* What this kernel offers, less the disable bits: -EOPNOTSUPP when a
 * required feature is missing (ret says which and why), else 0. XDP shows
 * as on when the kernel has it. Needs the rights a load needs (root). */
int lb_features_probe(uint32_t disable, struct lb_feature_status ret[LB_FEAT_MAX]);

struct lb_open_opts {
	/* bpffs directory for the pinned maps (created if missing); NULL:
	 * nothing is pinned and the state dies with the last reference. */
	const char *pin_dir;
	/* Maglev table size per service, prime, at least 100 times the largest
	 * number of active backends of a service. 0: LB_MAGLEV_DEFAULT, or the
	 * size of the maps already pinned. */
	uint32_t maglev_size;
	/* Flow entries. 0: LB_CT_DEFAULT, or the pinned maps' size. */
	uint32_t ct_size;
	/* lb_attach() also puts the ingress path on the interface as a native
	 * XDP program (never generic mode), tc staying for egress, for the
	 * local endpoint hand off and as the fallback. Measured by `shoal bench
	 * lb` (2 cores, kernel 6.18, veth uplink, in one run, ratios to a
	 * direct connection): tc alone 1.20 keep-alive / 1.18 new connections,
	 * XDP + tc 1.23 / 1.51; per packet (BPF_PROG_TEST_RUN, established
	 * flow, DNAT) tc 113-122 ns on a CHECKSUM_NONE skb, 85-96 ns on a
	 * CHECKSUM_COMPLETE one, XDP 70-78 ns. It pays, most on new
	 * connections, but stays opt-in: attaching XDP resets the link on some
	 * NIC drivers, needs native driver support (lb_attach() falls back to
	 * tc alone), and the XDP rewrite updates the L4 checksum as a complete
	 * one, which a frame that a local sender handed to a veth with
	 * checksum offload is not (harmless when it goes to a local endpoint,
	 * which trusts such a checksum; wrong if the kernel sent it on through
	 * a device that completes checksums). */
	bool xdp;
	/* (1u << enum lb_feature) bits: optional features treated as if the
	 * kernel lacked them; SHOAL_LB_DISABLE adds to them. */
	uint32_t disable;
};

/* Addresses in network byte order, ports in host byte order. */
struct lb_service_key {
	uint32_t addr; /* 0: a published port, on every address of the node */
	uint16_t port;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
};

struct lb_backend_spec {
	uint32_t addr;
	uint16_t port;
	enum lb_backend_state state; /* ACTIVE, DRAINING or MAINTENANCE */
};

struct lb_counters {
	uint64_t packets;
	uint64_t bytes;
	uint64_t new_flows;
};

enum lb_hook {
	LB_HOOK_INGRESS,
	LB_HOOK_EGRESS,
	LB_HOOK_XDP, /* the ingress path as an XDP program (lb_open_opts.xdp) */
};

/* Loads the programs, creating or reusing the pinned maps, and reloads the
 * services and backends they hold. */
int lb_open(const struct lb_open_opts *opts, struct lb **ret, struct shoal_err *err);
/* Frees the handle; the hooks stay attached and the pinned maps stay. */
struct lb *lb_close(struct lb *lb);

uint32_t lb_maglev_size(const struct lb *lb);
/* A feature as this handle uses it: on, off (not asked) or unavailable
 * with the reason (the kernel's, or a failed attach's, e.g. no cgroup v2). */
const struct lb_feature_status *lb_feature(const struct lb *lb, enum lb_feature f);
/* Marks an optional feature unavailable after the fact (an attach that
 * failed), with the reason; later calls that need it refuse at once. */
void lb_feature_unavailable(struct lb *lb, enum lb_feature f, const char *reason);
int lb_prog_fd(const struct lb *lb, enum lb_hook hook);

/* Attaches ingress and egress tc programs to an interface (clsact qdisc
 * created when missing), replacing our own earlier programs there. With
 * opts.xdp, then the XDP program in native mode: 1 when it is on, 0 when
 * the driver has no native XDP or another XDP program is there (tc alone
 * does the work). Without opts.xdp, ours left by an earlier agent is
 * removed: 0. */
int lb_attach(struct lb *lb, int ifindex, struct shoal_err *err);
/* 1 if our XDP program is on the interface (native mode), 0 if not. */
int lb_xdp_attached(int ifindex);
int lb_attach_ifname(struct lb *lb, const char *ifname, struct shoal_err *err);
/* Removes our programs (tc and XDP) from the interface; other filters and
 * XDP programs, and the clsact qdisc that may hold them, are left alone.
 * lb may be NULL: ours are found by name, nothing is loaded (teardown). */
int lb_detach(struct lb *lb, int ifindex, struct shoal_err *err);

/* Creates or updates a service with exactly these backends. Backends are
 * matched by (addr, port): a kept backend keeps its flows; a dropped one's
 * flows move to the remaining active backends. */
int lb_service_upsert(struct lb *lb, const struct lb_service_key *key,
		      const struct lb_backend_spec *backends, size_t n, struct shoal_err *err);
int lb_service_delete(struct lb *lb, const struct lb_service_key *key, struct shoal_err *err);
int lb_backend_set_state(struct lb *lb, const struct lb_service_key *key, uint32_t addr,
			 uint16_t port, enum lb_backend_state state, struct shoal_err *err);

/* Services currently programmed, in id order; *ret is malloc'ed. */
int lb_service_list(struct lb *lb, struct lb_service_key **ret, size_t *ret_n);
/* A service's backends as programmed; *ret is malloc'ed. */
int lb_service_backends(struct lb *lb, const struct lb_service_key *key,
			struct lb_backend_spec **ret, size_t *ret_n);

/* Counters summed over CPUs. */
int lb_service_counters(struct lb *lb, const struct lb_service_key *key, struct lb_counters *ret);
int lb_backend_counters(struct lb *lb, const struct lb_service_key *key, uint32_t addr,
			uint16_t port, struct lb_counters *ret);
/* ret[-reason] for each drop reason; ret[0] is 0. */
int lb_drops_read(struct lb *lb, uint64_t ret[LB_DROP_MAX + 1]);
/* "malformed-ipv4" etc. for a negative reason; NULL if unknown. */
const char *lb_drop_reason_name(int reason);

/* East-west: socket-level balancing of service VIPs on cgroup v2 hooks.
 *
 * connect4 (TCP, connected UDP) and sendmsg4 (each unconnected UDP
 * datagram) rewrite a destination that is a service with a nonzero address
 * to one of its backends, chosen by Maglev over the active backends with
 * the socket cookie as the hash; a UDP socket keeps its backend while that
 * backend stays active or draining. getpeername4 and recvmsg4 show the VIP
 * instead of the backend to the socket that was sent there. The programs
 * share the service, backend and Maglev maps with the tc path, so every
 * lb_service_upsert() reaches both. A service without an active backend
 * fails connect()/sendmsg() with EPERM, counted in lb_drops_read().
 * Counters: new_flows per connect() or new UDP socket-to-service pair,
 * packets per UDP datagram sent; no bytes.
 *
 * cgroup_path is a cgroup v2 directory; the hooks apply to every process in
 * it and its descendants (hybrid hosts: under /sys/fs/cgroup/unified). They
 * stay attached when the handle is closed; a later lb_sock_attach() on the
 * same cgroup (a restarted agent) replaces our programs in place, keeping
 * their per-socket maps, and leaves other programs alone. */
int lb_sock_attach(struct lb *lb, const char *cgroup_path, struct shoal_err *err);
/* Removes our four programs from the cgroup; others' stay. lb may be NULL. */
int lb_sock_detach(struct lb *lb, const char *cgroup_path, struct shoal_err *err);

/* Published ports reached from the node itself: its own processes' packets
 * never cross an uplink's tc hook, so four more programs (connect4,
 * sendmsg4, recvmsg4, getpeername4) translate, at the socket, a destination
 * that is loopback (127.0.0.0/8) or one of the node's addresses with the
 * port of a published service (address 0 key) to one of its backends, the
 * same way the VIP hooks do, and back for getpeername()/recvmsg(). They go
 * on the root of the cgroup v2 tree that holds cgroup_path (every process
 * of the machine is under it; on hybrid hosts /sys/fs/cgroup/unified),
 * BPF_F_ALLOW_MULTI, and act only on sockets of the caller's network
 * namespace (its cookie, in a config map), so that agents sharing a machine
 * in their own namespaces leave each other alone.
 *
 * The attachments are bpf_links pinned in pin_dir (with the hooks' own
 * maps): a later call with the same pin_dir (a restarted agent) swaps the
 * programs in place, flows kept; removing pin_dir (shoald --teardown, or
 * lb_sock_node_detach()) detaches them. */
int lb_sock_node_attach(struct lb *lb, const char *cgroup_path, const char *pin_dir,
			struct shoal_err *err);
int lb_sock_node_detach(const char *pin_dir, struct shoal_err *err);
/* Sets the node's own addresses (network byte order; loopback is implied),
 * at most LB_NODE_ADDRS_MAX. */
int lb_sock_node_addrs(const char *pin_dir, const uint32_t *addrs, size_t n, struct shoal_err *err);

/* Host routing to local endpoints: published-port traffic to a backend
 * that is a container on this node skips the node's IP stack.
 *
 * The tc ingress program on the uplink looks the backend's address up in
 * lb_local_eps after the DNAT; when it is there, it addresses the frame to
 * the container and redirects it into the container's end of the veth pair.
 * A tc ingress program on the host end of each such veth (lb_veth_attach())
 * takes the replies of those flows, reverse-NATs them and sends them out of
 * the uplink the flow came in on. Everything else keeps the kernel's path:
 * backends not registered here, the containers' other traffic, and the
 * flows' packets whenever either program is not in place.
 *
 * A handle shares the maps of an open struct lb (which must outlive it).
 * lb_local_eps and lb_fwd_flows are pinned in opts->pin_dir; a new handle on
 * the same dir (an agent restart) carries the flows of the maps pinned there
 * over into the new programs' maps, so that replies of established flows
 * keep their path, and replaces the pins. Veth hooks stay when the handle is
 * closed; a later lb_veth_attach() replaces our program in place. */
struct lb_fwd;

struct lb_fwd_open_opts {
	/* bpffs directory for the pins (the load balancer's own); NULL: none. */
	const char *pin_dir;
};

struct lb_endpoint {
	uint32_t addr;	     /* network byte order */
	int ifindex;	     /* host side of the container's veth pair */
	uint8_t mac[6];	     /* the container's interface */
	uint8_t host_mac[6]; /* the host side of the veth */
};

int lb_fwd_open(struct lb *lb, const struct lb_fwd_open_opts *opts, struct lb_fwd **ret,
		struct shoal_err *err);
/* Frees the handle; veth hooks and pins stay. */
struct lb_fwd *lb_fwd_close(struct lb_fwd *f);
/* The veth program, for BPF_PROG_TEST_RUN. */
int lb_fwd_prog_fd(const struct lb_fwd *f);

/* Registers (or updates) a local endpoint. Attach the reply program to its
 * veth first: a flow whose forward packets skip the stack must have its
 * replies skip it too. */
int lb_endpoint_set(struct lb_fwd *f, const struct lb_endpoint *ep, struct shoal_err *err);
/* -ENOENT if addr was not registered. */
int lb_endpoint_delete(struct lb_fwd *f, uint32_t addr, struct shoal_err *err);
/* Registered endpoints; *ret is malloc'ed. */
int lb_endpoint_list(struct lb_fwd *f, struct lb_endpoint **ret, size_t *ret_n);

/* Attaches the reply program to tc ingress of a host-side veth (clsact
 * created when missing), replacing our earlier program there. */
int lb_veth_attach(struct lb_fwd *f, int ifindex, struct shoal_err *err);
/* Removes our program from the interface; a missing interface or filter is
 * not an error, someone else's program at our handle is (-EBUSY). */
int lb_veth_detach(struct lb_fwd *f, int ifindex, struct shoal_err *err);

/* The routing mesh's return path on a backend's node (bpf/lib/mesh.h). A
 * published port's flow entering node E for a task on node B crosses the
 * overlay with the client's address (E DNATs it to the task's overlay
 * address and routes it there). On B, a program on each VXLAN device's
 * ingress notes such flows (their source is outside the network's subnet)
 * with E's gateway MAC, and a program on each overlay container's host-side
 * veth sends their replies back to E through the VXLAN device, where E's
 * uplink reverse-NATs them: the backend sees the client's real address and
 * the client sees E's. Only basic helpers are used (no optional feature).
 *
 * Independent of struct lb: its own maps, pinned in pin_dir (lb_mesh_nets,
 * lb_mesh_flows, lb_mesh_stats) and taken over by the next open on the same
 * dir, so that flows survive an agent restart. Hooks stay when the handle is
 * closed; lb_mesh_unpin() removes the pins (teardown). */
struct lb_mesh;
struct lb_mesh_open_opts {
	const char *pin_dir; /* NULL: no pins */
	/* how long an entry outlives its flow's close, and a quiet UDP flow's
	 * entry lives; 0: 2 s and 120 s */
	uint64_t close_grace_ns, udp_idle_ns;
};
int lb_mesh_open(const struct lb_mesh_open_opts *opts, struct lb_mesh **ret, struct shoal_err *err);
struct lb_mesh *lb_mesh_close(struct lb_mesh *m);
void lb_mesh_unpin(const char *pin_dir);
/* The programs, for BPF_PROG_TEST_RUN: on the VXLAN device, on the veth. */
int lb_mesh_in_fd(const struct lb_mesh *m);
int lb_mesh_out_fd(const struct lb_mesh *m);
/* On the VXLAN device ifindex of a network whose subnet is addr/prefix
 * (network order): notes mesh flows arriving there. Replaces our earlier
 * program and the subnet. */
int lb_mesh_net_attach(struct lb_mesh *m, int ifindex, uint32_t addr, int prefix,
		       struct shoal_err *err);
int lb_mesh_net_detach(struct lb_mesh *m, int ifindex, struct shoal_err *err);
/* On an overlay container's host-side veth, before the load balancer's
 * reply program: sends mesh replies back. */
int lb_mesh_veth_attach(struct lb_mesh *m, int ifindex, struct shoal_err *err);
int lb_mesh_veth_detach(struct lb_mesh *m, int ifindex, struct shoal_err *err);
struct lb_mesh_counters {
	uint64_t noted;	   /* mesh flows noted (or moved to another entry node) */
	uint64_t returned; /* replies sent back through their entry node */
};
int lb_mesh_counters(const struct lb_mesh *m, struct lb_mesh_counters *ret);
