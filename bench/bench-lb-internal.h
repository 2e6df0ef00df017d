/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

struct lb;

/* The HTTP load generator of `shoal bench lb`. */
struct bench_lb_load {
	uint64_t requests; /* answered, after the warm-up */
	uint64_t errors;   /* connections refused, reset or closed early */
	double per_sec;	   /* requests (keep-alive) or connections (new) per second */
	int64_t p50_ns, p99_ns;
};

/* Runs `conns` concurrent HTTP/1.1 clients against addr:port (network byte
 * order address, host order port) for `seconds` in the calling process's
 * network namespace. new_conn: one request per connection ("Connection:
 * close"), latency from connect() to the last byte; otherwise keep-alive,
 * latency per request. src: the clients' source address, 0 for any. */
int bench_lb_load_run(uint32_t src, uint32_t addr, uint16_t port, int conns, double seconds,
		      bool new_conn, struct bench_lb_load *ret);

/* bench_lb_load_run() in a child that joins the network namespace ns_fd
 * (pinned to cpus when not NULL), so that the caller stays in its own: 0 and
 * *ret, -errno, or -ECONNREFUSED when the child gave no result. */
int bench_lb_load_in(int ns_fd, const cpu_set_t *cpus, uint32_t src, uint32_t addr, uint16_t port,
		     int conns, double seconds, bool new_conn, struct bench_lb_load *ret);

/* ns per packet of the tc and XDP ingress programs of lb (a hit on an
 * established, DNATed flow of a published port; a miss) and of empty
 * programs, into out["packet_ns"]. Programs two services on free_port and
 * free_port + 1 for the time of the runs; node_addr (network order) is the
 * address they are published on. */
int bench_lb_packet_cost(struct lb *lb, uint32_t node_addr, uint16_t free_port, json_t *out,
			 struct shoal_err *err);

/* out["ratio_to_direct"] from the medians in out. */
void bench_lb_ratios(json_t *out);
/* The table, from out (its "config", "cpus" and results) to stdout. */
void bench_lb_print(json_t *out);
