/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <netinet/in.h>
#include <stddef.h>

struct agent;

/*
 * Service discovery: a DNS server (libevent evdns) on the bridge network's
 * gateway address and on this node's address on every overlay network made
 * here, port 53: each network's containers use their gateway as their
 * resolver. Names are scoped per network as Docker scopes them: the network
 * of the asker is the one whose subnet holds the question's source address
 * (the bridge for any other), and it is answered, as things are at the time
 * of the question:
 *   SERVICE, ALIAS   a service on the asker's network, by its name or one of
 *                    its aliases there: its virtual IP, or the addresses of
 *                    its running tasks (endpoint mode dnsrr; or one of them
 *                    per answer, in turn, without the socket hooks);
 *   tasks.SERVICE    the addresses of its running tasks (on every live node
 *                    for an overlay network, this node's on the bridge);
 *   CONTAINER        a container's address on the asker's network, by name
 *                    (on any live node for an overlay network);
 * and every other A/AAAA question is forwarded to the node's resolvers.
 */
int dns_start(struct agent *a, struct in_addr listen_addr);
void dns_stop(struct agent *a);
/* Overlay networks' addresses to answer on besides the bridge's. */
#define DNS_LISTEN_MAX 1024
/* Listens on exactly these addresses (besides the bridge's): sockets for new
 * ones (bound before the address is up: IP_FREEBIND), the rest closed. */
void dns_listen_set(struct agent *a, const struct in_addr *addrs, size_t n);
