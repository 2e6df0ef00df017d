// SPDX-License-Identifier: Apache-2.0
/* cgroup v2 socket hooks: east-west balancing of service VIPs. */
#include "bpf/lib/sock.h"

SEC("cgroup/connect4")
int lb_connect4(struct bpf_sock_addr *ctx)
{
	return lb_sock_verdict(lb_sock_fwd4(ctx, false));
}

SEC("cgroup/sendmsg4")
int lb_sendmsg4(struct bpf_sock_addr *ctx)
{
	return lb_sock_verdict(lb_sock_fwd4(ctx, true));
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

char LICENSE[] SEC("license") = "Apache-2.0";
