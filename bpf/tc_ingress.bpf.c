// SPDX-License-Identifier: Apache-2.0
/* tc ingress on the node's uplink: published ports and VIPs, DNAT. With the
 * XDP program on the same uplink, the packets it DNATed arrive marked and
 * only get the local endpoint hand off here. */
#include "bpf/lib/lb.h"

SEC("tc")
int lb_ingress(struct __sk_buff *skb)
{
	__u32 be_id = lb_xdp_claimed(skb);

	if (be_id)
		return lb_verdict(lb_fwd4_after_xdp(skb, be_id));
	return lb_verdict(lb_ingress4(skb));
}

char LICENSE[] SEC("license") = "Apache-2.0";
