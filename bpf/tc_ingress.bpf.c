// SPDX-License-Identifier: Apache-2.0
/* tc ingress on the node's uplink: published ports and VIPs, DNAT. */
#include "bpf/lib/lb.h"

SEC("tc")
int lb_ingress(struct __sk_buff *skb)
{
	return lb_verdict(lb_ingress4(skb));
}

char LICENSE[] SEC("license") = "Apache-2.0";
