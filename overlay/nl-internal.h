/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <linux/netlink.h>

#include "lib/err.h"

/*
 * rtnetlink for the bridge network, on libmnl. Each object kind has a flat
 * builder that writes one request into a caller buffer (no socket, no
 * kernel: unit-tested by parsing the message back) and a parser for what the
 * kernel answers. nl_sock_transact() sends a batch of requests in one
 * sendmsg(), matches every reply by sequence number and returns the first
 * error with the kernel's extended ACK message.
 *
 * libmnl rather than libnl-route-3 here: the veth request carries the peer's
 * target netns fd inside VETH_INFO_PEER, several requests go out in one
 * write, and the extended ACK text is needed in errors; all three are direct
 * with hand-built messages.
 */

#define NL_BUF_SIZE  16384
#define NL_BATCH_MAX 16

struct nl_sock {
	int fd;
	uint32_t seq;
};

/* Opens a NETLINK_ROUTE socket in the calling thread's netns. */
int nl_sock_open(struct nl_sock *s);
/* Wraps an already opened NETLINK_ROUTE socket fd (takes ownership). */
int nl_sock_adopt(struct nl_sock *s, int fd);
void nl_sock_close(struct nl_sock *s);
/* Opens and configures a raw NETLINK_ROUTE fd (ext ack, capped acks). */
int nl_socket_fd(void);

typedef int (*nl_msg_cb)(const struct nlmsghdr *nlh, void *data);

/* Sends every message in buf[0..len) (at most NL_BATCH_MAX; a dump must be
 * alone), asking an ACK for each non-dump request, and waits until each is
 * answered. cb (may be NULL) sees every data message. Returns 0 or the first
 * -errno; ext (may be NULL) gets the kernel's extended ACK text, or "". */
int nl_sock_transact(struct nl_sock *s, void *buf, size_t len, nl_msg_cb cb, void *data, char *ext,
		     size_t extlen);

/* Builders: each writes one message at buf (NL_BUF_SIZE free bytes at most
 * used) and returns it; sequence numbers are set by nl_sock_transact(). */
struct nlmsghdr *nl_build_link_get(void *buf, const char *ifname);
struct nlmsghdr *nl_build_link_dump(void *buf);
/* mac may be NULL (random); a set MAC keeps the bridge from taking a port's. */
struct nlmsghdr *nl_build_bridge_new(void *buf, const char *ifname, int mtu, const uint8_t *mac);
struct nl_veth_spec {
	const char *ifname; /* host side */
	int master;	    /* ifindex of the bridge, 0 = none */
	int mtu;	    /* 0 = kernel default */
	const char *peer_ifname;
	int peer_netns_fd;	 /* -1 = same netns */
	const uint8_t *peer_mac; /* NULL = random */
};
struct nlmsghdr *nl_build_veth_new(void *buf, const struct nl_veth_spec *spec);
/* ifindex > 0 selects by index, else by ifname. up < 0 leaves flags alone;
 * mtu 0 leaves the MTU alone. */
struct nlmsghdr *nl_build_link_set(void *buf, int ifindex, const char *ifname, int up, int mtu);
struct nlmsghdr *nl_build_link_del(void *buf, int ifindex, const char *ifname);
struct nlmsghdr *nl_build_addr_new(void *buf, int ifindex, struct in_addr addr, uint8_t prefixlen,
				   struct in_addr brd);
struct nlmsghdr *nl_build_addr_dump(void *buf);
struct nlmsghdr *nl_build_route_default(void *buf, struct in_addr gw, int oif);
struct nlmsghdr *nl_build_route_dump(void *buf);

struct nl_link {
	int ifindex;
	unsigned int flags;
	int master;
	int mtu;
	char ifname[16];
	char kind[16];
	uint8_t mac[6];
	bool has_mac;
};
int nl_parse_link(const struct nlmsghdr *nlh, struct nl_link *ret);

struct nl_addr {
	int ifindex;
	uint8_t prefixlen;
	struct in_addr addr;
};
/* -EAFNOSUPPORT for non-IPv4 addresses. */
int nl_parse_addr(const struct nlmsghdr *nlh, struct nl_addr *ret);

struct nl_route {
	uint8_t dst_len;
	uint32_t table;
	int oif;
	struct in_addr dst;
	struct in_addr gateway;
};
int nl_parse_route(const struct nlmsghdr *nlh, struct nl_route *ret);

/* An error naming what failed, with the kernel's extended ACK text when it
 * gave one: "WHAT (kernel: EXT)". Returns r. */
int nl_err(struct shoal_err *err, int r, const char *ext, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* nl_sock_transact()'s callback that parses an RTM_NEWLINK into data (a
 * struct nl_link). */
int nl_link_get_cb(const struct nlmsghdr *nlh, void *data);
/* Inside a container's namespace (nlfd, a NETLINK_ROUTE socket there, stays
 * open): lo and eth0 up, eth0's address with its broadcast, the default
 * route via gateway. where names the namespace in errors. */
int nl_eth0_configure(int nlfd, char *buf, const char *where, struct in_addr addr,
		      uint8_t prefixlen, struct in_addr broadcast, struct in_addr gateway,
		      struct shoal_err *err);
/* The same for the interface ifname; without a gateway (0) no route but its
 * subnet's: a container's second and further networks. */
int nl_if_configure(int nlfd, char *buf, const char *where, const char *ifname, struct in_addr addr,
		    uint8_t prefixlen, struct in_addr broadcast, struct in_addr gateway,
		    struct shoal_err *err);
