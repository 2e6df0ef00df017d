#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shared by the policy tests (policy.sh on one node, policy-cluster.sh on
# three): the probing tool, the image that carries it, and the oracle.
# Source it after lib.sh (or cluster-lib.sh): it uses $T and must.
#
# busybox has no UDP server or client and its nc probes one target at a
# time: the tasks' image adds /udptool,
#   udptool serve [-t] PORT...    a UDP echo on each PORT ("ok" to any
#                                 datagram); with -t also a TCP server on each
#                                 that writes "ok" and closes
#   udptool probe [-w MS] [tcp:|udp:]IP:PORT...
#                                 every target at once, one socket each (UDP
#                                 when no protocol is given): a datagram, or a
#                                 connection that must read "ok"; prints
#                                 "IP PORT/PROTO 1|0" per target once
#                                 answered, refused (a policy at connect() or
#                                 sendmsg(), an ICMP error, a reset), or after
#                                 MS milliseconds (1000 by default)
POLICY_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

policy_udptool_source() {
	cat <<'C'
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#define MAXT 512
enum { DONE, UDP, TCP_CONNECTING, TCP_READING, LISTEN_UDP, LISTEN_TCP };
static struct pollfd p[MAXT];
static int state[MAXT], tcp[MAXT], got[MAXT], port[MAXT];
static char ip[MAXT][64], rbuf[MAXT][2];

static void result(int i, int r)
{
	printf("%s %d/%s %d\n", ip[i], port[i], tcp[i] ? "tcp" : "udp", r);
	if (p[i].fd >= 0)
		close(p[i].fd);
	p[i].fd = -1;
	state[i] = DONE;
}

static int serve(int argc, char **argv)
{
	int n = 0, with_tcp = argc > 0 && strcmp(argv[0], "-t") == 0;
	for (int a = with_tcp; a < argc; a++)
		for (int t = 0; t <= with_tcp; t++) {
			struct sockaddr_in sa = {.sin_family = AF_INET,
						 .sin_port = htons((unsigned short)atoi(argv[a]))};
			int one = 1;
			if (n == MAXT)
				return 2;
			p[n].fd = socket(AF_INET, t ? SOCK_STREAM | SOCK_NONBLOCK : SOCK_DGRAM, 0);
			p[n].events = POLLIN;
			state[n] = t ? LISTEN_TCP : LISTEN_UDP;
			if (p[n].fd < 0)
				return 1;
			setsockopt(p[n].fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(p[n].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			    (t && listen(p[n].fd, 512) < 0))
				return 1;
			n++;
		}
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		for (int i = 0; i < n; i++) {
			char buf[512];
			struct sockaddr_in from;
			socklen_t len = sizeof(from);
			if (!(p[i].revents & POLLIN))
				continue;
			if (state[i] == LISTEN_UDP) {
				if (recvfrom(p[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
					     &len) >= 0)
					sendto(p[i].fd, "ok", 2, 0, (struct sockaddr *)&from, len);
				continue;
			}
			int c;
			while ((c = accept(p[i].fd, NULL, NULL)) >= 0) {
				/* a fresh socket's buffer takes two bytes without blocking */
				if (write(c, "ok", 2) < 0)
					perror("write");
				close(c);
			}
		}
	}
}

int main(int argc, char **argv)
{
	int n = 0, wait_ms = 1000;
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 2, argv + 2);
	if (argc < 3 || strcmp(argv[1], "probe") != 0)
		return 2;
	int a = 2;
	if (strcmp(argv[a], "-w") == 0 && a + 1 < argc) {
		wait_ms = atoi(argv[a + 1]);
		a += 2;
	}
	for (; a < argc; a++, n++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		const char *t = argv[a];
		char *c;
		if (n == MAXT)
			return 2;
		tcp[n] = strncmp(t, "tcp:", 4) == 0;
		if (tcp[n] || strncmp(t, "udp:", 4) == 0)
			t += 4;
		snprintf(ip[n], sizeof(ip[n]), "%s", t);
		c = strchr(ip[n], ':');
		if (!c)
			return 2;
		*c = 0;
		port[n] = atoi(c + 1);
		sa.sin_port = htons((unsigned short)port[n]);
		if (inet_pton(AF_INET, ip[n], &sa.sin_addr) != 1)
			return 2;
		p[n].fd = socket(AF_INET, (tcp[n] ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK, 0);
		if (p[n].fd < 0) {
			result(n, 0);
			continue;
		}
		if (tcp[n]) {
			if (connect(p[n].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
			    errno != EINPROGRESS) {
				result(n, 0);
				continue;
			}
			state[n] = TCP_CONNECTING;
			p[n].events = POLLOUT;
			continue;
		}
		/* a refusal (policy at sendmsg, or ICMP) is a 0 at once */
		if (connect(p[n].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    send(p[n].fd, "ping", 4, 0) < 0) {
			result(n, 0);
			continue;
		}
		state[n] = UDP;
		p[n].events = POLLIN;
	}
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = wait_ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(p, (nfds_t)n, (int)left) <= 0)
			break;
		for (int i = 0; i < n; i++) {
			char buf[16];
			ssize_t k;
			int err = 0;
			socklen_t len = sizeof(err);
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			switch (state[i]) {
			case UDP:
				k = recv(p[i].fd, buf, sizeof(buf), 0);
				result(i, k == 2 && memcmp(buf, "ok", 2) == 0);
				break;
			case TCP_CONNECTING:
				if (getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
					result(i, 0);
					break;
				}
				state[i] = TCP_READING;
				p[i].events = POLLIN;
				break;
			case TCP_READING:
				k = recv(p[i].fd, rbuf[i] + got[i], (size_t)(2 - got[i]), 0);
				if (k < 0 && errno == EAGAIN)
					break;
				if (k <= 0) {
					result(i, 0);
					break;
				}
				got[i] += (int)k;
				if (got[i] == 2)
					result(i, memcmp(rbuf[i], "ok", 2) == 0);
				break;
			}
		}
	}
	for (int i = 0; i < n; i++)
		if (p[i].fd >= 0)
			result(i, 0);
	return 0;
}
C
}

# policy_image_make: the test image (busybox) with /udptool added, as a
# root filesystem tar in $T/img/udp.tar for `shoal image import`.
policy_image_make() {
	local l
	policy_udptool_source >"$T/udptool.c"
	must "building the UDP tool" cc -static -O2 -o "$T/udptool" "$T/udptool.c"
	mkdir -p "$T/img/rootfs" "$T/img/save"
	must "unpacking the test image" tar -C "$T/img/save" -xf "$TEST_IMAGE"
	for l in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$T/img/save/manifest.json"); do
		must "unpacking a layer" tar -C "$T/img/rootfs" -xf "$T/img/save/$l"
	done
	must "adding the UDP tool" cp "$T/udptool" "$T/img/rootfs/udptool"
	must "packing the image" tar -C "$T/img/rootfs" -cf "$T/img/udp.tar" .
	rm -rf "$T/img/rootfs" "$T/img/save"
}

# policy_oracle POLICIES.json PARTIES [--outside ADDR]...: the expected
# "SRC DST PORT/PROTO 1|0" lines (policy_oracle.py says how), sorted as sort
# sorts here
policy_oracle() {
	python3 "$POLICY_LIB_DIR/policy_oracle.py" "$@" | sort
}
