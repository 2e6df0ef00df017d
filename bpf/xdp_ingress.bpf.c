// SPDX-License-Identifier: Apache-2.0
/* XDP on the node's uplink (native mode only): the tc ingress path, same
 * source, run before the kernel allocates an skb. DNATed packets pass to
 * the stack marked for tc ingress, which does the local endpoint hand off. */
#define LB_XDP 1
#include "bpf/lib/lb.h"

SEC("xdp")
int lb_xdp_ingress(struct xdp_md *ctx)
{
	return lb_verdict(lb_ingress4(ctx));
}

char LICENSE[] SEC("license") = "Apache-2.0";
