/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "lib/err.h"

/* `shoal bench overlay`, in two files: the command, its topology and phases
 * (bench-overlay.c), and what it does inside the node namespaces: commands
 * run there, their output, and rtnetlink sockets that watch or dump their
 * FDB and neighbour tables (bench-overlay-net.c). A namespace is named by a
 * path: /run/netns/NAME, or a container's SandboxKey; "" is the bench's own. */

/* Runs argv in the namespace at netns and waits for it. With ret_out, its
 * standard output (at most 4 MiB, NUL-terminated, free()). 0, or -errno with
 * err naming the command and how it ended (the end of what it printed on
 * stderr). */
int bov_run(const char *netns, char *const argv[], char **ret_out, struct shoal_err *err);
/* bov_run() of a command line split at spaces (no quoting). */
int bov_runf(const char *netns, struct shoal_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* argv in the background in the namespace at netns, killed with this process;
 * its output to log (or discarded). The pid, or -errno. */
pid_t bov_spawn(const char *netns, char *const argv[], const char *log);
/* SIGTERM, then SIGKILL after a moment; reaped. Accepts pid <= 0. */
void bov_stop(pid_t pid);
/* Creates an rtnetlink socket in the namespace at netns (non-blocking,
 * close-on-exec); with groups, subscribed to them (RTNLGRP_* bits) and given a
 * large receive buffer. The fd or -errno. */
int bov_nl_socket(const char *netns, uint32_t groups, struct shoal_err *err);

/* A neighbour message: an FDB entry (AF_BRIDGE) or an IPv4 neighbour. */
struct bov_neigh {
	bool del;     /* RTM_DELNEIGH */
	bool fdb;     /* AF_BRIDGE; else AF_INET */
	bool has_mac; /* NDA_LLADDR */
	bool has_dst; /* NDA_DST: the remote VTEP (FDB), the address (neighbour) */
	uint8_t mac[6];
	struct in_addr dst;
	int ifindex;
	uint16_t state;
};
typedef void (*bov_neigh_cb)(const struct bov_neigh *n, void *arg);
/* Reads every message waiting on a monitor socket. 0, -ENOBUFS when the
 * kernel dropped some (the socket overran), or -errno. */
int bov_nl_drain(int fd, bov_neigh_cb cb, void *arg);
/* Dumps the FDB and the IPv4 neighbour table of the namespace at netns. */
int bov_nl_dump(const char *netns, bov_neigh_cb cb, void *arg, struct shoal_err *err);
