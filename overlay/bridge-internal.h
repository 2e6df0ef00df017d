/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "overlay/bridge.h"

/* Whether name has the shape bridge_host_ifname() gives for prefix. */
bool bridge_is_host_ifname(const char *prefix, const char *name);

#define BRIDGE_NFT_CHAINS_MAX 16
#define BRIDGE_NFT_RULES_MAX  64

struct bridge_nft_chain {
	char family[8];
	char table[64];
	char chain[64];
};

struct bridge_nft_rule {
	struct bridge_nft_chain c;
	unsigned long handle;
};

struct bridge_nft_scan {
	struct bridge_nft_chain drop_fwd[BRIDGE_NFT_CHAINS_MAX];
	size_t n_drop_fwd;
	struct bridge_nft_rule ours[BRIDGE_NFT_RULES_MAX];
	size_t n_ours;
};

/* Parses `nft -a list ruleset` output (modified in place). */
void bridge_nft_scan_ruleset(char *text, const char *comment, struct bridge_nft_scan *sc);
