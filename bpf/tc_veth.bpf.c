// SPDX-License-Identifier: Apache-2.0
/* tc ingress on the host side of a local container's veth: replies of
 * published-port flows forwarded past the node's stack, reverse-NATed and
 * sent out of the uplink towards the client. */
#include "bpf/lib/lb.h"

SEC("tc")
int lb_veth_ingress(struct __sk_buff *skb)
{
	return lb_verdict(lb_fwd_reply4(skb));
}

char LICENSE[] SEC("license") = "Apache-2.0";
