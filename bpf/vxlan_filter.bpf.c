// SPDX-License-Identifier: Apache-2.0
/* tc ingress on the underlay device: VXLAN only from known cluster nodes. */
#include "bpf/lib/vxlan_filter.h"

SEC("tc")
int vxlan_filter(struct __sk_buff *skb)
{
	return vxf_verdict(vxf_judge(skb));
}

char LICENSE[] SEC("license") = "Apache-2.0";
