/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The program context the ingress path is written against, so that the tc
 * and XDP programs compile from one source: a program built with LB_XDP
 * defined (bpf/xdp_ingress.bpf.c) gets struct xdp_md, every other one
 * struct __sk_buff. What differs between the two is here (packet access,
 * length, protocol, verdicts) and in the rewrite (nat.h) and the final hand
 * off (fwd.h); the decisions (lb.h) are shared. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/shared/lb_structs.h"

#ifdef LB_XDP
typedef struct xdp_md lb_ctx_t;
#define LB_ACT_PASS XDP_PASS
#define LB_ACT_DROP XDP_DROP
#else
typedef struct __sk_buff lb_ctx_t;
#define LB_ACT_PASS TC_ACT_OK
#define LB_ACT_DROP TC_ACT_SHOT
#endif

static __always_inline void *lb_ctx_data(const lb_ctx_t *ctx)
{
	return (void *)(long)ctx->data;
}

static __always_inline void *lb_ctx_data_end(const lb_ctx_t *ctx)
{
	return (void *)(long)ctx->data_end;
}

#ifdef LB_XDP
/* A program not loaded for multi-buffer frames (xdp.frags) only ever sees
 * linear ones: the frame is data..data_end. */
static __always_inline __u32 lb_ctx_len(const lb_ctx_t *ctx)
{
	return (__u32)(ctx->data_end - ctx->data);
}

/* The EtherType, as skb->protocol has it for an untagged frame; 0 for a
 * frame shorter than an Ethernet header. */
static __always_inline __be16 lb_ctx_protocol(const lb_ctx_t *ctx)
{
	struct ethhdr *eth = lb_ctx_data(ctx);

	if ((void *)(eth + 1) > lb_ctx_data_end(ctx))
		return 0;
	return eth->h_proto;
}

static __always_inline int lb_ctx_load_bytes(lb_ctx_t *ctx, __u32 off, void *to, __u32 len)
{
	return bpf_xdp_load_bytes(ctx, off, to, len);
}
#else
static __always_inline __u32 lb_ctx_len(const lb_ctx_t *ctx)
{
	return ctx->len;
}

static __always_inline __be16 lb_ctx_protocol(const lb_ctx_t *ctx)
{
	return (__be16)ctx->protocol;
}

static __always_inline int lb_ctx_load_bytes(lb_ctx_t *ctx, __u32 off, void *to, __u32 len)
{
	return bpf_skb_load_bytes(ctx, off, to, len);
}
#endif
