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
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
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
/* One BPF_PROG_TEST_RUN of prog_fd on in (the skb on the namespace's
 * loopback device), out filled: the program's return value, or -errno when
 * the run itself fails (*ret_err set). */
static inline int bpf_test_run_pkt(int prog_fd, const struct pkt *in, struct pkt *out, int *ret_err)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = in->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b), .repeat = 1);

	memset(out, 0, sizeof(*out));
	*ret_err = bpf_prog_test_run_opts(prog_fd, &o);
	out->len = o.data_size_out;
	return (int)o.retval;
}

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

	/* What the machine has is settled above: programs that do not load
	 * now are a failure, with the reason. */
	if (lb_open(&o, &probe, &err) < 0) {
		printf("FAIL: cannot load the load balancer programs: %s\n", err.msg);
		return 1;
	}
	lb_close(probe);
	return 0;
}

/* 1 if BPF_PROG_TEST_RUN on a tc program takes flag, 0 if the kernel
 * refuses it, -errno if the question cannot be asked. */
static inline int bpf_test_run_flag_supported(uint32_t flag)
{
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	uint8_t frame[64] = {[12] = 0x08};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof(frame),
		    .repeat = 1, .flags = flag);
	_cleanup_close_ int fd =
		bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "shoal_flag", "GPL", insns, 2, NULL);
	int r;

	if (fd < 0)
		return fd;
	r = bpf_prog_test_run_opts(fd, &o);
	if (r == -EINVAL)
		return 0;
	return r < 0 ? r : 1;
}

/* The address of a kernel symbol; -ENOENT if /proc/kallsyms hides it. */
static inline int bpf_test_ksym(const char *name, unsigned long long *ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/kallsyms", "re");
	char line[512], sym[256], type;
	unsigned long long addr;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %255s", &addr, &type, sym) == 3 &&
		    strcmp(sym, name) == 0) {
			if (addr == 0)
				return -ENOENT;
			*ret = addr;
			return 0;
		}
	return -ENOENT;
}

/* Whether the loaded program calls the helper function `helper` (its
 * kernel symbol, "bpf_redirect_peer"): 1, 0, or -errno. Reads the program
 * as the verifier left it, dead branches removed, where a helper call's
 * immediate is the function's offset from __bpf_call_base. */
static inline int bpf_test_prog_calls(int prog_fd, const char *helper)
{
	unsigned long long base, fn;
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	_cleanup_free_ struct bpf_insn *insns = NULL;
	uint32_t n;

	if (bpf_test_ksym("__bpf_call_base", &base) < 0 || bpf_test_ksym(helper, &fn) < 0)
		return -ENOENT;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) < 0)
		return -errno;
	n = info.xlated_prog_len / sizeof(*insns);
	if (n == 0)
		return -EPERM; /* not shown to this caller */
	insns = calloc(n, sizeof(*insns));
	if (!insns)
		return -ENOMEM;
	info = (struct bpf_prog_info){.xlated_prog_len = n * sizeof(*insns),
				      .xlated_prog_insns = (uint64_t)(uintptr_t)insns};
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) < 0)
		return -errno;
	for (uint32_t i = 0; i < n; i++)
		if (insns[i].code == (BPF_JMP | BPF_CALL) && insns[i].src_reg == 0 &&
		    base + (long long)insns[i].imm == fn)
			return 1;
	return 0;
}

/* The feature knobs really take the helpers out: the tc ingress program
 * calls bpf_redirect_peer and bpf_ktime_get_coarse_ns with host routing
 * and the coarse clock on (which also shows that the check sees calls),
 * and neither with them turned off, as a kernel without them needs.
 * 0, 1 (failed), or 77 when this machine hides kernel symbols. */
static inline int bpf_test_check_knobs(void)
{
	static const struct {
		enum lb_feature f;
		const char *helper;
	} knobs[] = {
		{LB_FEAT_HOST_ROUTING, "bpf_redirect_peer"},
		{LB_FEAT_COARSE_CLOCK, "bpf_ktime_get_coarse_ns"},
	};
	unsigned long long addr;

	if (bpf_test_ksym("__bpf_call_base", &addr) < 0) {
		printf("SKIP: /proc/kallsyms hides kernel addresses (kptr_restrict): the "
		       "programs' helper calls cannot be read back\n");
		return 77;
	}
	for (int off = 0; off < 2; off++) {
		struct lb_open_opts o = {0};
		struct shoal_err err = {0};
		struct lb *l = NULL;

		for (size_t i = 0; off && i < ARRAY_SIZE(knobs); i++)
			o.disable |= 1u << knobs[i].f;
		if (lb_open(&o, &l, &err) < 0) {
			printf("FAIL: lb_open with the knobs %s: %s\n", off ? "off" : "on",
			       err.msg);
			return 1;
		}
		for (size_t i = 0; i < ARRAY_SIZE(knobs); i++) {
			bool on = lb_feature(l, knobs[i].f)->state == LB_FEATURE_ON;
			int r = bpf_test_prog_calls(lb_prog_fd(l, LB_HOOK_INGRESS),
						    knobs[i].helper);

			if (r < 0) {
				printf("FAIL: reading the tc ingress program: %s\n", strerror(-r));
				lb_close(l);
				return 1;
			}
			printf("%s %s: the tc ingress program %s %s\n", lb_feature_name(knobs[i].f),
			       on ? "on" : "off", r ? "calls" : "does not call", knobs[i].helper);
			if (r != on) {
				printf("FAIL: expected the opposite\n");
				lb_close(l);
				return 1;
			}
		}
		lb_close(l);
	}
	return 0;
}
