// SPDX-License-Identifier: Apache-2.0
/* The checksum arithmetic of the NAT rewrite (bpf/lib/csum.h) against the
 * kernel's handling of each kind of skb, written out here from
 * inet_proto_csum_replace_by_diff(): random TCP and UDP packets are
 * rewritten as lb_rewrite4() does and the result must verify the way the
 * receiver (or, for CHECKSUM_PARTIAL, the device) checks it. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bpf/lib/csum.h"

#define L4_LEN 40

struct pkt {
	uint32_t saddr, daddr; /* as in the packet */
	uint8_t proto;
	uint8_t l4[L4_LEN] __attribute__((aligned(4))); /* ports at 0 and 2 */
	size_t check_off;
};

static uint32_t sum16(const void *p, size_t n)
{
	const uint16_t *w = p;
	uint32_t s = 0;

	for (size_t i = 0; i < n / 2; i++)
		s += w[i];
	return s;
}

static uint16_t fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint16_t pseudo(const struct pkt *p)
{
	return fold((uint64_t)sum16(&p->saddr, 4) + sum16(&p->daddr, 4) + htons(p->proto) +
		    htons(L4_LEN));
}

static uint16_t *check_of(struct pkt *p)
{
	return (uint16_t *)(p->l4 + p->check_off);
}

/* The whole L4 sum with the field in it: 0xffff (or 0) when valid. */
static uint16_t verify(struct pkt *p)
{
	return fold((uint64_t)pseudo(p) + sum16(p->l4, L4_LEN));
}

static void random_pkt(struct pkt *p, bool udp)
{
	p->saddr = (uint32_t)random();
	p->daddr = (uint32_t)random();
	p->proto = udp ? 17 : 6;
	p->check_off = udp ? 6 : 16;
	for (size_t i = 0; i < L4_LEN; i++)
		p->l4[i] = (uint8_t)random();
	*check_of(p) = 0;
}

/* A complete checksum, as a sender without offload writes it. */
static void fill_complete(struct pkt *p)
{
	uint16_t c;

	*check_of(p) = 0;
	c = (uint16_t)~verify(p);
	*check_of(p) = p->proto == 17 && c == 0 ? 0xffff : c;
}

/* CHECKSUM_PARTIAL: the field holds the pseudo-header sum. */
static void fill_partial(struct pkt *p)
{
	*check_of(p) = pseudo(p);
}

/* What the device does with a CHECKSUM_PARTIAL packet before sending it. */
static void finish_partial(struct pkt *p)
{
	uint16_t c = (uint16_t)~fold(sum16(p->l4, L4_LEN));

	*check_of(p) = p->proto == 17 && c == 0 ? 0xffff : c;
}

/* bpf_l4_csum_replace(skb, off, 0, diff, BPF_F_PSEUDO_HDR [| MARK_MANGLED_0]). */
static void kernel_replace_by_diff(struct pkt *p, uint16_t diff, bool partial)
{
	uint16_t *f = check_of(p);
	bool mm = p->proto == 17;

	if (mm && *f == 0)
		return;
	if (!partial)
		*f = (uint16_t)~fold((uint64_t)diff + (uint16_t) ~*f);
	else
		*f = fold((uint64_t)diff + *f);
	if (mm && *f == 0)
		*f = 0xffff;
}

/* lb_rewrite4() on the destination, for a skb that is not
 * CHECKSUM_COMPLETE; partial says which reading the kernel takes. */
static void rewrite(struct pkt *p, uint32_t addr, uint16_t port, bool partial)
{
	uint16_t da = lb_csum_delta4(p->daddr, addr);
	uint16_t dp = lb_csum_delta2(*(uint16_t *)(p->l4 + 2), port);
	uint16_t check = *check_of(p), diff;

	p->daddr = addr;
	memcpy(p->l4 + 2, &port, 2);
	if (p->proto == 17 && check == 0)
		return;
	*check_of(p) = lb_csum_split(check, da, dp, &diff);
	kernel_replace_by_diff(p, diff, partial);
}

/* The CHECKSUM_COMPLETE branch: the field in place, skb->csum by -da. */
static uint16_t rewrite_complete(struct pkt *p, uint32_t addr, uint16_t port)
{
	uint16_t da = lb_csum_delta4(p->daddr, addr);
	uint16_t dp = lb_csum_delta2(*(uint16_t *)(p->l4 + 2), port);
	uint16_t check = lb_csum_field_update(*check_of(p), lb_csum_add(da, dp));

	p->daddr = addr;
	memcpy(p->l4 + 2, &port, 2);
	*check_of(p) = p->proto == 17 && check == 0 ? 0xffff : check;
	return (uint16_t)~da;
}

static void test_complete_field(void **state)
{
	struct pkt p;

	srandom(1);
	for (int i = 0; i < 200000; i++) {
		random_pkt(&p, i & 1);
		fill_complete(&p);
		rewrite(&p, (uint32_t)random(), (uint16_t)random(), false);
		assert_int_equal(verify(&p), 0xffff);
	}
}

static void test_partial_field(void **state)
{
	struct pkt p;

	srandom(2);
	for (int i = 0; i < 200000; i++) {
		random_pkt(&p, i & 1);
		fill_partial(&p);
		rewrite(&p, (uint32_t)random(), (uint16_t)random(), true);
		/* The field still holds the new pseudo-header sum, so the
		 * device's checksum verifies. */
		assert_int_equal(fold(*check_of(&p)) % 0xffff, pseudo(&p) % 0xffff);
		finish_partial(&p);
		assert_int_equal(verify(&p), 0xffff);
	}
}

static void test_complete_skb(void **state)
{
	struct pkt p;

	srandom(3);
	for (int i = 0; i < 200000; i++) {
		uint64_t before, after;
		uint16_t adj;

		random_pkt(&p, i & 1);
		fill_complete(&p);
		/* skb->csum over what changes: the address (the IP checksum
		 * moves against it and cancels out) and the L4 header. */
		before = fold((uint64_t)sum16(p.l4, L4_LEN));
		adj = rewrite_complete(&p, (uint32_t)random(), (uint16_t)random());
		after = fold((uint64_t)sum16(p.l4, L4_LEN));
		assert_int_equal(verify(&p), 0xffff);
		assert_int_equal(fold(before + adj) % 0xffff, after % 0xffff);
	}
}

static void test_udp_without_checksum(void **state)
{
	struct pkt p;

	random_pkt(&p, true);
	rewrite(&p, 0x01020304, 0x1111, false);
	assert_int_equal(*check_of(&p), 0);
	rewrite(&p, 0x05060708, 0x2222, true);
	assert_int_equal(*check_of(&p), 0);
}

static void test_half(void **state)
{
	for (uint32_t d = 0; d <= 0xffff; d++) {
		uint16_t h = lb_csum_half((uint16_t)d);

		assert_int_equal(fold((uint64_t)h + h) % 0xffff, d % 0xffff);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_half),
		cmocka_unit_test(test_complete_field),
		cmocka_unit_test(test_partial_field),
		cmocka_unit_test(test_complete_skb),
		cmocka_unit_test(test_udp_without_checksum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
