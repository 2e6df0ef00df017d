// SPDX-License-Identifier: Apache-2.0
/* Network policy on the host side of a local container's veth: tc ingress
 * sees what the container sends (its egress), tc egress what is delivered to
 * it (its ingress). A passed packet goes on to the next filter of the hook
 * (TC_ACT_UNSPEC), so the load balancer's reply program, a filter of its own
 * at a later priority on the same tc ingress, still runs after it. */
#include "bpf/lib/policy.h"

SEC("tc")
int pol_from_ep(struct __sk_buff *skb)
{
	return policy_from_ep4(skb);
}

SEC("tc")
int pol_to_ep(struct __sk_buff *skb)
{
	return policy_to_ep4(skb);
}

char LICENSE[] SEC("license") = "Apache-2.0";
