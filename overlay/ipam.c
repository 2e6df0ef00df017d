// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "overlay/bridge.h"

/*
 * A bitmap over the whole subnet, one bit per address, indexed by host part.
 * The network address (index 0), the gateway (index 1) and broadcast (last
 * index) are set at creation and never counted as free. Allocation is next
 * fit: the search starts after the last address handed out and wraps, so a
 * released address is reused only after the rest of the range went round.
 */
struct ipam {
	uint32_t network; /* host byte order */
	uint32_t size;	  /* addresses in the subnet, 2^(32 - prefixlen) */
	uint32_t next;	  /* index where the next search starts */
	uint32_t free;
	uint8_t prefixlen;
	uint64_t *bits;
};

#define IPAM_MIN_PREFIX 8
#define IPAM_MAX_PREFIX 30

static bool bit_test(const struct ipam *ip, uint32_t i)
{
	return ip->bits[i / 64] & (UINT64_C(1) << (i % 64));
}

static void bit_set(struct ipam *ip, uint32_t i)
{
	ip->bits[i / 64] |= UINT64_C(1) << (i % 64);
}

static void bit_clear(struct ipam *ip, uint32_t i)
{
	ip->bits[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

int ipam_parse_cidr(const char *cidr, struct in_addr *ret_net, uint8_t *ret_prefixlen,
		    struct shoal_err *err)
{
	if (!cidr || !*cidr)
		return shoal_err_set(err, EINVAL,
				     "empty subnet: give one as CIDR, e.g. 10.213.0.0/16");

	const char *slash = strchr(cidr, '/');
	if (!slash)
		return shoal_err_set(
			err, EINVAL,
			"subnet \"%s\" has no prefix length: give it as CIDR, e.g. 10.213.0.0/16",
			cidr);
	size_t alen = (size_t)(slash - cidr);
	char abuf[INET_ADDRSTRLEN];
	if (alen == 0 || alen >= sizeof(abuf))
		return shoal_err_set(err, EINVAL, "subnet \"%s\": not an IPv4 address before '/'",
				     cidr);
	memcpy(abuf, cidr, alen);
	abuf[alen] = '\0';

	struct in_addr a;
	if (inet_pton(AF_INET, abuf, &a) != 1)
		return shoal_err_set(err, EINVAL, "subnet \"%s\": \"%s\" is not an IPv4 address",
				     cidr, abuf);

	const char *p = slash + 1;
	if (*p < '0' || *p > '9' || strlen(p) > 2 || (p[1] && (p[1] < '0' || p[1] > '9')))
		return shoal_err_set(err, EINVAL, "subnet \"%s\": prefix length must be a number",
				     cidr);
	int len = atoi(p);
	if (len < IPAM_MIN_PREFIX || len > IPAM_MAX_PREFIX)
		return shoal_err_set(
			err, EINVAL,
			"subnet \"%s\": prefix length /%d is not supported; use /%d to /%d", cidr,
			len, IPAM_MIN_PREFIX, IPAM_MAX_PREFIX);

	uint32_t host = ntohl(a.s_addr);
	uint32_t mask = ~UINT32_C(0) << (32 - len);
	if (host & ~mask) {
		struct in_addr n = {.s_addr = htonl(host & mask)};
		char nbuf[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &n, nbuf, sizeof(nbuf));
		return shoal_err_set(err, EINVAL,
				     "subnet \"%s\" has host bits set: did you mean %s/%d?", cidr,
				     nbuf, len);
	}
	*ret_net = a;
	*ret_prefixlen = (uint8_t)len;
	return 0;
}

int ipam_new(const char *cidr, struct ipam **ret, struct shoal_err *err)
{
	struct in_addr net;
	uint8_t plen;
	int r = ipam_parse_cidr(cidr, &net, &plen, err);
	if (r < 0)
		return r;

	struct ipam *ip = calloc(1, sizeof(*ip));
	if (!ip)
		return shoal_err_set(err, ENOMEM, "allocating IPAM for %s", cidr);
	ip->network = ntohl(net.s_addr);
	ip->prefixlen = plen;
	ip->size = UINT32_C(1) << (32 - plen);
	ip->bits = calloc((ip->size + 63) / 64, sizeof(uint64_t));
	if (!ip->bits) {
		free(ip);
		return shoal_err_set(err, ENOMEM, "allocating IPAM bitmap for %s", cidr);
	}
	bit_set(ip, 0);
	bit_set(ip, 1);
	bit_set(ip, ip->size - 1);
	ip->free = ip->size - 3;
	ip->next = 2;
	*ret = ip;
	return 0;
}

void ipam_free(struct ipam *ip)
{
	if (!ip)
		return;
	free(ip->bits);
	free(ip);
}

/* First clear bit in [from, to), or UINT32_MAX. Skips full words. */
static uint32_t find_clear(const struct ipam *ip, uint32_t from, uint32_t to)
{
	uint32_t i = from;
	while (i < to) {
		if (i % 64 == 0 && to - i >= 64 && ip->bits[i / 64] == UINT64_MAX) {
			i += 64;
			continue;
		}
		if (!bit_test(ip, i))
			return i;
		i++;
	}
	return UINT32_MAX;
}

int ipam_alloc(struct ipam *ip, struct in_addr *ret)
{
	if (ip->free == 0)
		return -ENOSPC;
	uint32_t i = find_clear(ip, ip->next, ip->size);
	if (i == UINT32_MAX)
		i = find_clear(ip, 0, ip->next);
	if (i == UINT32_MAX)
		return -ENOSPC;
	bit_set(ip, i);
	ip->free--;
	ip->next = i + 1 >= ip->size ? 0 : i + 1;
	ret->s_addr = htonl(ip->network + i);
	return 0;
}

static int addr_index(const struct ipam *ip, struct in_addr addr, uint32_t *ret)
{
	uint32_t h = ntohl(addr.s_addr);
	if (h - ip->network >= ip->size || h < ip->network)
		return -ERANGE;
	*ret = h - ip->network;
	return 0;
}

static bool index_is_fixed(const struct ipam *ip, uint32_t i)
{
	return i == 0 || i == 1 || i == ip->size - 1;
}

int ipam_reserve(struct ipam *ip, struct in_addr addr)
{
	uint32_t i;
	int r = addr_index(ip, addr, &i);
	if (r < 0)
		return r;
	if (bit_test(ip, i))
		return -EEXIST;
	bit_set(ip, i);
	ip->free--;
	return 0;
}

int ipam_release(struct ipam *ip, struct in_addr addr)
{
	uint32_t i;
	int r = addr_index(ip, addr, &i);
	if (r < 0)
		return r;
	if (index_is_fixed(ip, i))
		return -EINVAL;
	if (!bit_test(ip, i))
		return -ENOENT;
	bit_clear(ip, i);
	ip->free++;
	return 0;
}

bool ipam_contains(const struct ipam *ip, struct in_addr addr)
{
	uint32_t i;
	return addr_index(ip, addr, &i) == 0;
}

struct in_addr ipam_network(const struct ipam *ip)
{
	return (struct in_addr){.s_addr = htonl(ip->network)};
}

struct in_addr ipam_gateway(const struct ipam *ip)
{
	return (struct in_addr){.s_addr = htonl(ip->network + 1)};
}

struct in_addr ipam_broadcast(const struct ipam *ip)
{
	return (struct in_addr){.s_addr = htonl(ip->network + ip->size - 1)};
}

uint8_t ipam_prefixlen(const struct ipam *ip)
{
	return ip->prefixlen;
}

uint32_t ipam_free_count(const struct ipam *ip)
{
	return ip->free;
}
