/* SPDX-License-Identifier: Apache-2.0 */
/* From one compiled state to the next as map operations, so that a flow is
 * judged by one endpoint's old entries or its new ones, never a mix.
 *
 * Entries of an endpoint that changes are written under its other
 * generation (the live one is untouched, so lookups still see the old state
 * whole), then one array update flips the generation (a single 8-byte
 * value: the data plane reads old or new), then the old generation is
 * deleted. The operations are ordered all writes, then all flips, then all
 * deletes, which keeps the moment where one endpoint runs new entries and
 * another old ones as short as the flips. The price: an endpoint's entries
 * exist twice during an update, so the map is sized for two generations of
 * its largest endpoint on top of the rest. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy-internal.h"

struct policy_key policy_entry_key(uint16_t ep, uint8_t gen, enum policy_dir dir,
				   const struct policy_entry *e)
{
	return (struct policy_key){
		.prefixlen = POLICY_KEY_FULL_BITS - e->port_bits,
		.ep = ep,
		.gen = gen,
		.dir = (uint8_t)dir,
		.identity = e->identity,
		.proto = e->proto,
		.port = htons(e->port),
	};
}

void policy_ops_done(struct policy_ops *ops)
{
	free(ops->v);
	ops->v = NULL;
	ops->n = 0;
}

struct ops_buf {
	struct policy_op *v;
	size_t n, cap;
};

static int push(struct ops_buf *b, const struct policy_op *op)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct policy_op *v = realloc(b->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = *op;
	return 0;
}

static bool program_eq(const struct policy_ep_program *a, const struct policy_ep_program *b)
{
	for (int d = 0; d < 2; d++) {
		if (a->n_entries[d] != b->n_entries[d])
			return false;
		for (size_t i = 0; i < a->n_entries[d]; i++) {
			const struct policy_entry *x = &a->entries[d][i], *y = &b->entries[d][i];
			if (x->identity != y->identity || x->proto != y->proto ||
			    x->port != y->port || x->port_bits != y->port_bits ||
			    x->value.verdict != y->value.verdict ||
			    x->value.rule != y->value.rule || x->value.policy != y->value.policy)
				return false;
		}
	}
	return true;
}

static int write_entries(struct ops_buf *b, const struct policy_ep_program *p, uint8_t gen,
			 enum policy_op_kind kind)
{
	for (int d = 0; d < 2; d++)
		for (size_t i = 0; i < p->n_entries[d]; i++) {
			struct policy_op op = {
				.kind = kind,
				.key = policy_entry_key(p->ep, gen, (enum policy_dir)d,
							&p->entries[d][i]),
			};
			if (kind == POLICY_OP_UPDATE)
				op.value = p->entries[d][i].value;
			if (push(b, &op) < 0)
				return -ENOMEM;
		}
	return 0;
}

int policy_diff(const struct policy_compiled *old, struct policy_compiled *new,
		struct policy_ops *ret)
{
	struct ops_buf writes = {0}, flips = {0}, deletes = {0};
	size_t n_old = old ? old->n_eps : 0;
	size_t i = 0, j = 0;
	int r = 0;
	/* Both lists are in endpoint slot order: one merge pass. */
	while (r >= 0 && (i < n_old || j < new->n_eps)) {
		const struct policy_ep_program *o = i < n_old ? &old->eps[i] : NULL;
		struct policy_ep_program *n = j < new->n_eps ? &new->eps[j] : NULL;
		if (o && (!n || o->ep < n->ep)) {
			/* Nothing selects it any more: clear, then delete. */
			struct policy_op op = {.kind = POLICY_OP_EP_CLEAR, .key = {.ep = o->ep}};
			r = push(&flips, &op);
			if (r >= 0)
				r = write_entries(&deletes, o, o->gen, POLICY_OP_DELETE);
			i++;
			continue;
		}
		if (o && o->ep == n->ep && program_eq(o, n)) {
			n->gen = o->gen;
			i++;
			j++;
			continue;
		}
		n->gen = o && o->ep == n->ep ? (uint8_t)(o->gen ^ 1) : 0;
		r = write_entries(&writes, n, n->gen, POLICY_OP_UPDATE);
		struct policy_op op = {
			.kind = POLICY_OP_EP_SET,
			.key = {.ep = n->ep},
			.ep_state = {.gen = n->gen, .flags = POLICY_EP_F_ACTIVE},
		};
		if (r >= 0)
			r = push(&flips, &op);
		if (r >= 0 && o && o->ep == n->ep) {
			r = write_entries(&deletes, o, o->gen, POLICY_OP_DELETE);
			i++;
		}
		j++;
	}
	struct policy_op *v = NULL;
	size_t total = writes.n + flips.n + deletes.n;
	if (r >= 0 && total && !(v = malloc(total * sizeof(*v))))
		r = -ENOMEM;
	if (r >= 0) {
		if (writes.n)
			memcpy(v, writes.v, writes.n * sizeof(*v));
		if (flips.n)
			memcpy(v + writes.n, flips.v, flips.n * sizeof(*v));
		if (deletes.n)
			memcpy(v + writes.n + flips.n, deletes.v, deletes.n * sizeof(*v));
		ret->v = v;
		ret->n = total;
	}
	free(writes.v);
	free(flips.v);
	free(deletes.v);
	return r < 0 ? r : 0;
}
