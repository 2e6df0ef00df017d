/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Knobs for optional kernel features, set by lb/ before load from what its
 * probes found (lb_features_probe()). They are read-only data: the verifier
 * reads each as a constant and never walks the branch it turns off, so a
 * helper the kernel lacks (or refuses for this program type) can sit behind
 * a knob that is off, and the program still loads. The defaults are what a
 * current kernel has. */

/* bpf_redirect_peer() to local endpoints (Linux 5.10). Off: every DNATed
 * packet goes on through the kernel's routing. */
const volatile bool lb_cfg_host_routing = true;

/* bpf_ktime_get_coarse_ns() (Linux 5.11), one tick's precision, which is
 * all the flow timers need. Off: bpf_ktime_get_ns(). */
const volatile bool lb_cfg_coarse_clock = true;

static __always_inline __u64 lb_now_ns(void)
{
	if (lb_cfg_coarse_clock)
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns();
}
