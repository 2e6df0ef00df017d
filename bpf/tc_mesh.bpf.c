// SPDX-License-Identifier: Apache-2.0
/* The routing mesh's return path on a backend's node (bpf/lib/mesh.h): one
 * program on each VXLAN device's ingress, one on each overlay container's
 * host-side veth. */
#include "bpf/lib/mesh.h"

SEC("tc")
int lb_mesh_in(struct __sk_buff *skb)
{
	return lb_mesh_note(skb);
}

SEC("tc")
int lb_mesh_out(struct __sk_buff *skb)
{
	return lb_mesh_reply(skb);
}

char LICENSE[] SEC("license") = "Apache-2.0";
