/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the load balancer's BPF tests share: packet buffers and checksums
 * computed the slow way, and the setup every such test needs (root, bpffs,
 * a private network namespace, programs that load). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define BPF_FS_MAGIC 0xcafe4a11

static inline uint32_t A(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

/* b + ETH_HLEN is 4-byte aligned, as the IP header wants. */
struct pkt {
	uint32_t len;
	uint8_t pad[2];
	uint8_t b[512];
};

static inline uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static inline uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint32_t pseudo_sum(const struct iphdr *ip, uint16_t l4len)
{
	uint32_t sum = 0;

	sum = csum_add(sum, &ip->saddr, 4);
	sum = csum_add(sum, &ip->daddr, 4);
	sum += ip->protocol;
	sum += l4len;
	return sum;
}

static inline struct iphdr *ip_of(struct pkt *p)
{
	return (struct iphdr *)(p->b + ETH_HLEN);
}

static inline uint8_t *l4_of(struct pkt *p)
{
	return p->b + ETH_HLEN + ip_of(p)->ihl * 4;
}

/* Pins /sys/fs/bpf/<prefix>-<pid> of earlier runs that died before their
 * teardown (a sanitizer abort). */
static inline void bpf_test_remove_stale_pins(const char *prefix)
{
	_cleanup_closedir_ DIR *d = opendir("/sys/fs/bpf");
	struct dirent *de;
	size_t plen = strlen(prefix);

	while (d && (de = readdir(d))) {
		char path[300], *end;
		long pid;

		if (strncmp(de->d_name, prefix, plen) != 0 || de->d_name[plen] != '-')
			continue;
		pid = strtol(de->d_name + plen + 1, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/sys/fs/bpf/%s", de->d_name);
		rm_rf(path);
	}
}

/* Root, bpffs (mounted as shoald does when the machine has none), a private
 * network namespace that goes away with the process (lo brought up when
 * asked), stale pins of prefix removed, and the programs loadable: 0, or 77
 * (skip) after saying why. */
static inline int bpf_test_prepare(const char *pin_prefix, bool lo_up)
{
	struct statfs fs;

	if (geteuid() != 0) {
		printf("SKIP: BPF_PROG_TEST_RUN and bpffs pins need root\n");
		return 77;
	}
	if ((statfs("/sys/fs/bpf", &fs) < 0 || fs.f_type != BPF_FS_MAGIC) &&
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0) {
		printf("SKIP: no bpffs at /sys/fs/bpf and mounting one failed: %m\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: cannot create a network namespace: %m\n");
		return 77;
	}
	if (lo_up) {
		/* lo starts down in a new namespace */
		struct ifreq ifr = {.ifr_name = "lo"};
		_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
			printf("SKIP: cannot read lo's flags: %m\n");
			return 77;
		}
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
			printf("SKIP: cannot bring lo up: %m\n");
			return 77;
		}
	}
	bpf_test_remove_stale_pins(pin_prefix);
	if (!getenv("LB_TEST_VERBOSE"))
		libbpf_set_print(NULL);

	struct lb_open_opts o = {0};
	struct shoal_err err = {0};
	struct lb *probe = NULL;

	if (lb_open(&o, &probe, &err) < 0) {
		printf("SKIP: cannot load the load balancer programs: %s\n", err.msg);
		return 77;
	}
	lb_close(probe);
	return 0;
}
