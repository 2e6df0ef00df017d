/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <netinet/in.h>

struct agent;

/*
 * Service discovery: a DNS server (libevent evdns) on the bridge network's
 * gateway address, port 53, which containers on the bridge use as their
 * resolver. It answers, from the store as it is at the time of the query:
 *   SERVICE          the service's virtual IP, or with endpoint mode dnsrr the
 *                    addresses of its running tasks;
 *   tasks.SERVICE    the addresses of its running tasks;
 *   CONTAINER        a bridge container's address, by name;
 * and forwards every other A/AAAA question to the node's resolvers.
 */
int dns_start(struct agent *a, struct in_addr listen_addr);
void dns_stop(struct agent *a);
