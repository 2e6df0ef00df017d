// SPDX-License-Identifier: Apache-2.0
/* cgroup v2 socket hooks: east-west balancing of service VIPs (lb_*, on the
 * agent's cgroup) and published ports reached from the node itself (node_*,
 * on the root of the cgroup v2 tree). */
#include "bpf/lib/sock.h"

SEC("cgroup/connect4")
int lb_connect4(struct bpf_sock_addr *ctx)
{
	return lb_sock_verdict(lb_sock_fwd4(ctx, false, false));
}

SEC("cgroup/sendmsg4")
int lb_sendmsg4(struct bpf_sock_addr *ctx)
{
	return lb_sock_verdict(lb_sock_fwd4(ctx, true, false));
}

/* recvmsg4 and getpeername4 must return 1. */
SEC("cgroup/recvmsg4")
int lb_recvmsg4(struct bpf_sock_addr *ctx)
{
	lb_sock_rev4(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int lb_getpeername4(struct bpf_sock_addr *ctx)
{
	lb_sock_rev4(ctx);
	return 1;
}

SEC("cgroup/connect4")
int node_connect4(struct bpf_sock_addr *ctx)
{
	return lb_sock_verdict(lb_sock_fwd4(ctx, false, true));
}

SEC("cgroup/sendmsg4")
int node_sendmsg4(struct bpf_sock_addr *ctx)
{
	return lb_sock_verdict(lb_sock_fwd4(ctx, true, true));
}

SEC("cgroup/recvmsg4")
int node_recvmsg4(struct bpf_sock_addr *ctx)
{
	lb_sock_rev4(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int node_getpeer4(struct bpf_sock_addr *ctx)
{
	lb_sock_rev4(ctx);
	return 1;
}

char LICENSE[] SEC("license") = "Apache-2.0";
