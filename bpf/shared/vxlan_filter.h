/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The VXLAN source filter (bpf/vxlan_filter.bpf.c), shared with user space
 * (overlay/vxlan-filter.c). */

/* Nodes whose VTEP address may send VXLAN to this one. */
#ifndef VXF_ALLOWED_MAX
#define VXF_ALLOWED_MAX 4096
#endif

/* Drop reasons, negative as everywhere in the data plane; vxf_stats counts
 * each at index -code, and packets accepted from a known VTEP at index 0. */
#define VXF_DROP_REASONS(X) \
	X(VXF_DROP_UNKNOWN_SOURCE, 1, "unknown-source") /* UDP to the port from no known VTEP */

#define VXF_DROP_ENUM_(name, num, str) name = -(num),
enum vxf_drop_reason { VXF_DROP_REASONS(VXF_DROP_ENUM_) };
#undef VXF_DROP_ENUM_

#define VXF_STAT_ACCEPTED 0
#define VXF_DROP_MAX	  1
#define VXF_STATS_SLOTS	  (VXF_DROP_MAX + 1)
