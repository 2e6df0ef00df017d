// SPDX-License-Identifier: Apache-2.0
/* tc egress on the node's uplink: reverse NAT of replies from backends. */
#include "bpf/lib/lb.h"

SEC("tc")
int lb_egress(struct __sk_buff *skb)
{
	return lb_verdict(lb_egress4(skb));
}

char LICENSE[] SEC("license") = "Apache-2.0";
