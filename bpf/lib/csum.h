/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/types.h>

/* Ones' complement arithmetic for the incremental checksum updates of the
 * NAT rewrite (RFC 1624), with no BPF dependency so that user space tests
 * can run it against every way an skb carries its L4 checksum.
 *
 * Values are taken as they sit in the packet (byte order does not matter
 * for a ones' complement sum as long as every operand is read the same
 * way). A 16-bit ones' complement sum is arithmetic modulo 0xffff, where
 * 0x0000 and 0xffff are the same number. */

/* Folds a 64-bit sum of 16-bit words to 16 bits (end-around carry). */
static __always_inline __u16 lb_csum_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* to - from for a 32-bit field, as a 16-bit ones' complement value. */
static __always_inline __u16 lb_csum_delta4(__be32 from, __be32 to)
{
	__u32 nf = ~(__u32)from;

	return lb_csum_fold((__u64)(nf & 0xffff) + (nf >> 16) + (to & 0xffff) + (to >> 16));
}

/* to - from for a 16-bit field. */
static __always_inline __u16 lb_csum_delta2(__be16 from, __be16 to)
{
	return lb_csum_fold((__u64)(__u16)~from + to);
}

static __always_inline __u16 lb_csum_add(__u16 a, __u16 b)
{
	return lb_csum_fold((__u64)a + b);
}

static __always_inline __u16 lb_csum_sub(__u16 a, __u16 b)
{
	return lb_csum_fold((__u64)a + (__u16)~b);
}

/* Half of d: 0xffff is odd, so 2 has an inverse (0x8000) modulo 0xffff. */
static __always_inline __u16 lb_csum_half(__u16 d)
{
	return (__u16)(((__u32)d + ((d & 1) ? 0xffffU : 0)) >> 1);
}

/* A complete L4 checksum field (the ones' complement of the sum it covers)
 * after its covered data grew by delta: HC' = ~(~HC + delta). */
static __always_inline __u16 lb_csum_field_update(__u16 check, __u16 delta)
{
	return (__u16)~lb_csum_add((__u16)~check, delta);
}

/* The rewrite of one address (da = to - from, in the pseudo-header) and one
 * port (dp) when the program cannot tell how the skb carries its L4
 * checksum, with one bpf_l4_csum_replace(BPF_F_PSEUDO_HDR) call in diff
 * mode. That call subtracts its diff from a complete checksum field and
 * adds it to the pseudo-header sum that a CHECKSUM_PARTIAL field holds. A
 * complete field must lose da + dp, a partial one gain da only (the device
 * sums the port itself). Writing first
 *   field1 = field - dp/2,   then calling with diff = da + dp/2
 * gives field - da - dp in the first case and field + da in the second.
 * Returns field1 (never 0, which a UDP field would read as "no checksum")
 * and sets *ret_diff. */
static __always_inline __u16 lb_csum_split(__u16 check, __u16 da, __u16 dp, __u16 *ret_diff)
{
	__u16 h = lb_csum_half(dp), f1;

	*ret_diff = lb_csum_add(da, h);
	f1 = lb_csum_sub(check, h);
	return f1 ? f1 : 0xffff;
}
