// SPDX-License-Identifier: Apache-2.0
/* Network policy at the socket, on the cgroup v2 hooks where the socket
 * load balancer runs: attached after its programs (BPF_F_ALLOW_MULTI runs a
 * cgroup's programs in attach order), it judges the backend the balancer
 * chose, as the veth program judges the packets that follow. */
#include "bpf/lib/policy.h"

SEC("cgroup/connect4")
int pol_connect4(struct bpf_sock_addr *ctx)
{
	return policy_sock4(ctx, false);
}

SEC("cgroup/sendmsg4")
int pol_sendmsg4(struct bpf_sock_addr *ctx)
{
	return policy_sock4(ctx, true);
}

char LICENSE[] SEC("license") = "Apache-2.0";
