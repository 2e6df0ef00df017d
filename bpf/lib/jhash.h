/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <linux/types.h>

/* Bob Jenkins' lookup3 final mix, as the kernel's jhash_3words(): three words
 * in, one well-mixed word out, no loops for the verifier to bound. */
#define LB_JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 lb_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 lb_jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += LB_JHASH_INITVAL + (3 << 2) + initval;
	b += LB_JHASH_INITVAL + (3 << 2) + initval;
	c += LB_JHASH_INITVAL + (3 << 2) + initval;

	c ^= b;
	c -= lb_rol32(b, 14);
	a ^= c;
	a -= lb_rol32(c, 11);
	b ^= a;
	b -= lb_rol32(a, 25);
	c ^= b;
	c -= lb_rol32(b, 16);
	a ^= c;
	a -= lb_rol32(c, 4);
	b ^= a;
	b -= lb_rol32(a, 14);
	c ^= b;
	c -= lb_rol32(b, 24);
	return c;
}
