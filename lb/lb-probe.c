// SPDX-License-Identifier: Apache-2.0
/* Kernel feature probes: each loads a minimal program (or creates a minimal
 * map) that uses exactly what the load balancer's programs need, and keeps
 * the verifier's verdict. Helper probes that match verifier message text
 * (libbpf_probe_bpf_helper(), `bpftool feature probe`) miss the messages
 * of newer kernels and report a refused helper as available. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "lb/lb-internal.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define I_MOV_IMM(dst, v) \
	((struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = (dst), .imm = (v)})
#define I_MOV_REG(dst, src) \
	((struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = (dst), .src_reg = (src)})
#define I_ADD_IMM(dst, v) \
	((struct bpf_insn){.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = (dst), .imm = (v)})
#define I_CALL(fn) ((struct bpf_insn){.code = BPF_JMP | BPF_CALL, .imm = (fn)})
#define I_EXIT()   ((struct bpf_insn){.code = BPF_JMP | BPF_EXIT})
/* ld_imm64 of a map fd: two instructions */
#define I_LD_MAP_FD(dst, fd)                                  \
	((struct bpf_insn){.code = BPF_LD | BPF_DW | BPF_IMM, \
			   .dst_reg = (dst),                  \
			   .src_reg = BPF_PSEUDO_MAP_FD,      \
			   .imm = (fd)}),                     \
		((struct bpf_insn){0})

#define R0  BPF_REG_0
#define R1  BPF_REG_1
#define R2  BPF_REG_2
#define R3  BPF_REG_3
#define R4  BPF_REG_4
#define R5  BPF_REG_5
#define R6  BPF_REG_6
#define R10 BPF_REG_10

#define LB_PROBE_LOG_SIZE  65536
#define LB_PROBE_MAX_INSNS 64

static const struct lb_feature_desc {
	const char *name;
	bool required;
	const char *what;     /* what it is, for the table */
	const char *provides; /* the kernel version or option that brings it */
	const char *fallback; /* what is done without it; NULL for required ones */
} lb_feature_descs[LB_FEAT_MAX] = {
	[LB_FEAT_TC] =
		{"tc", true, "tc programs: published ports, reverse NAT",
		 "Linux 4.9+ with CONFIG_BPF_SYSCALL, CONFIG_NET_CLS_BPF, CONFIG_NET_SCH_INGRESS",
		 NULL},
	[LB_FEAT_MAPS] = {"maps", true, "flow and service maps (LRU hash, per-CPU, batch ops)",
			  "Linux 5.6+ (BPF_MAP_UPDATE_BATCH) with CONFIG_BPF_SYSCALL", NULL},
	[LB_FEAT_COARSE_CLOCK] = {"coarse-clock", false, "bpf_ktime_get_coarse_ns for flow timers",
				  "Linux 5.11+", "bpf_ktime_get_ns (a little slower per packet)"},
	[LB_FEAT_HOST_ROUTING] =
		{"host-routing", false, "bpf_redirect_peer/bpf_redirect_neigh to local containers",
		 "Linux 5.10+",
		 "published-port traffic to local containers goes through the node's stack"},
	[LB_FEAT_SOCKET_LB] =
		{"socket-lb", false,
		 "cgroup socket hooks: service VIPs and localhost:PORT at connect()",
		 "Linux 5.8+ with CONFIG_CGROUP_BPF and a cgroup v2 hierarchy",
		 "service names resolve to task addresses (DNS round robin); published ports "
		 "answer the node's own processes through a userland proxy"},
	[LB_FEAT_XDP] = {"xdp", false, "XDP ingress before the skb (--xdp), metadata to tc",
			 "Linux 5.18+ (bpf_xdp_load_bytes) accepting bpf_xdp_adjust_meta in XDP",
			 "tc alone handles published ports"},
	[LB_FEAT_RINGBUF] =
		{"ringbuf", false, "policy flow log in a BPF ring buffer",
		 "Linux 5.8+ (BPF_MAP_TYPE_RINGBUF, bpf_ringbuf_output)",
		 "a BPF queue map (Linux 4.20) drained every 100 ms; a perf event array "
		 "would need bpf_perf_event_output, which is reserved to GPL programs"},
};

const char *lb_feature_name(enum lb_feature f)
{
	return f < LB_FEAT_MAX ? lb_feature_descs[f].name : NULL;
}

bool lb_feature_required(enum lb_feature f)
{
	return f < LB_FEAT_MAX && lb_feature_descs[f].required;
}

const char *lb_feature_what(enum lb_feature f)
{
	return f < LB_FEAT_MAX ? lb_feature_descs[f].what : NULL;
}

const char *lb_feature_provides(enum lb_feature f)
{
	return f < LB_FEAT_MAX ? lb_feature_descs[f].provides : NULL;
}

const char *lb_feature_fallback(enum lb_feature f)
{
	return f < LB_FEAT_MAX ? lb_feature_descs[f].fallback : NULL;
}

const char *lb_feature_state_name(enum lb_feature_state s)
{
	switch (s) {
	case LB_FEATURE_ON:
		return "on";
	case LB_FEATURE_OFF:
		return "off";
	case LB_FEATURE_UNAVAILABLE:
		return "unavailable";
	}
	return "?";
}

int lb_features_parse(const char *list, uint32_t *ret, struct shoal_err *err)
{
	_cleanup_free_ char *copy = NULL;
	uint32_t bits = 0;
	char *save = NULL;

	if (!list || !*list) {
		*ret = 0;
		return 0;
	}
	copy = strdup(list);
	if (!copy)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		enum lb_feature f;

		for (f = 0; f < LB_FEAT_MAX; f++)
			if (strcmp(tok, lb_feature_descs[f].name) == 0)
				break;
		if (f == LB_FEAT_MAX)
			return shoal_err_set(err, EINVAL,
					     "unknown data-plane feature \"%s\" (optional ones: "
					     "coarse-clock, host-routing, socket-lb, xdp, ringbuf)",
					     tok);
		if (lb_feature_descs[f].required)
			return shoal_err_set(err, EINVAL,
					     "data-plane feature \"%s\" is required and cannot be "
					     "turned off",
					     tok);
		bits |= 1u << f;
	}
	*ret = bits;
	return 0;
}

/* The verifier's reason: the last `lines` lines of its log that are not a
 * summary, oldest first, joined with " | ". */
void lb_verifier_reason(const char *log, int lines, char *ret, size_t len)
{
	const char *start[LB_REASON_LINES_MAX], *end[LB_REASON_LINES_MAX];
	int n = 0;
	size_t off = 0;

	ret[0] = '\0';
	if (lines < 1)
		return;
	if (lines > LB_REASON_LINES_MAX)
		lines = LB_REASON_LINES_MAX;
	for (const char *l = log; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t k = e ? (size_t)(e - l) : strlen(l);

		if (k > 0 && strncmp(l, "processed ", 10) != 0 &&
		    strncmp(l, "verification time", 17) != 0 &&
		    strncmp(l, "stack depth", 11) != 0 && !memmem(l, k, "PROG LOAD LOG", 13)) {
			if (n == lines) {
				memmove(start, start + 1, (size_t)(n - 1) * sizeof(*start));
				memmove(end, end + 1, (size_t)(n - 1) * sizeof(*end));
				n--;
			}
			start[n] = l;
			end[n++] = l + k;
		}
		l = e ? e + 1 : NULL;
	}
	for (int i = 0; i < n && off + 1 < len; i++) {
		int w = snprintf(ret + off, len - off, "%s%.*s", i ? " | " : "",
				 (int)(end[i] - start[i]), start[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* Loads a minimal program; 0 or -errno with the verifier's reason in ret. */
static int lb_probe_prog(enum bpf_prog_type type, enum bpf_attach_type attach,
			 const struct bpf_insn *insns, size_t n, char *ret, size_t len)
{
	_cleanup_free_ char *log = malloc(LB_PROBE_LOG_SIZE);
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = attach, .log_level = 1,
		    .log_size = LB_PROBE_LOG_SIZE);
	int fd, e;

	if (!log) {
		snprintf(ret, len, "out of memory");
		return -ENOMEM;
	}
	log[0] = '\0';
	o.log_buf = log;
	fd = bpf_prog_load(type, "shoal_probe", "GPL", insns, n, &o);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	e = fd;
	/* Some kernels want log_level 0 for a program that loads; one that
	 * does not load says why with either. */
	lb_verifier_reason(log, 1, ret, len);
	if (!ret[0])
		snprintf(ret, len, "%s", strerror(-e));
	return e;
}

static int lb_probe_tc(char *ret, size_t len)
{
	/* Every packet-changing helper the tc programs call. */
	const struct bpf_insn insns[] = {
		I_MOV_REG(R6, R1),
		I_MOV_REG(R1, R6),
		I_MOV_IMM(R2, 0),
		I_MOV_REG(R3, R10),
		I_ADD_IMM(R3, -8),
		I_MOV_IMM(R4, 4),
		I_CALL(BPF_FUNC_skb_load_bytes),
		I_MOV_REG(R1, R6),
		I_MOV_IMM(R2, 0),
		I_MOV_REG(R3, R10),
		I_ADD_IMM(R3, -8),
		I_MOV_IMM(R4, 4),
		I_MOV_IMM(R5, 0),
		I_CALL(BPF_FUNC_skb_store_bytes),
		I_MOV_REG(R1, R6),
		I_MOV_IMM(R2, 0),
		I_MOV_IMM(R3, 0),
		I_MOV_IMM(R4, 0),
		I_MOV_IMM(R5, 2),
		I_CALL(BPF_FUNC_l3_csum_replace),
		I_MOV_REG(R1, R6),
		I_MOV_IMM(R2, 0),
		I_MOV_IMM(R3, 0),
		I_MOV_IMM(R4, 0),
		I_MOV_IMM(R5, 2),
		I_CALL(BPF_FUNC_l4_csum_replace),
		I_MOV_REG(R1, R6),
		I_MOV_IMM(R2, 0),
		I_CALL(BPF_FUNC_csum_update),
		I_MOV_IMM(R0, 0),
		I_EXIT(),
	};

	return lb_probe_prog(BPF_PROG_TYPE_SCHED_CLS, 0, insns, ARRAY_SIZE(insns), ret, len);
}

static int lb_probe_maps(char *ret, size_t len)
{
	LIBBPF_OPTS(bpf_map_create_opts, lru, .map_flags = BPF_F_NO_COMMON_LRU);
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	_cleanup_close_ int a = -EBADF, b = -EBADF, c = -EBADF;
	uint32_t key = 0, val = 0, count = 1;

	a = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "shoal_probe", 4, 4, 16, &lru);
	if (a < 0) {
		snprintf(ret, len, "creating an LRU hash map: %s", strerror(errno));
		return -errno;
	}
	b = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "shoal_probe", 4, 4, 1, NULL);
	if (b < 0) {
		snprintf(ret, len, "creating a per-CPU array map: %s", strerror(errno));
		return -errno;
	}
	c = bpf_map_create(BPF_MAP_TYPE_ARRAY, "shoal_probe", 4, 4, 1, NULL);
	if (c < 0) {
		snprintf(ret, len, "creating an array map: %s", strerror(errno));
		return -errno;
	}
	if (bpf_map_update_batch(c, &key, &val, &count, &bo) < 0) {
		snprintf(ret, len, "batch update of an array map: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int lb_probe_coarse_clock(char *ret, size_t len)
{
	const struct bpf_insn insns[] = {
		I_CALL(BPF_FUNC_ktime_get_coarse_ns),
		I_MOV_IMM(R0, 0),
		I_EXIT(),
	};

	return lb_probe_prog(BPF_PROG_TYPE_SCHED_CLS, 0, insns, ARRAY_SIZE(insns), ret, len);
}

static int lb_probe_host_routing(char *ret, size_t len)
{
	const struct bpf_insn insns[] = {
		I_MOV_IMM(R1, 0),
		I_MOV_IMM(R2, 0),
		I_CALL(BPF_FUNC_redirect_peer),
		I_MOV_IMM(R1, 0),
		I_MOV_IMM(R2, 0),
		I_MOV_IMM(R3, 0),
		I_MOV_IMM(R4, 0),
		I_CALL(BPF_FUNC_redirect_neigh),
		I_MOV_IMM(R0, 0),
		I_EXIT(),
	};

	return lb_probe_prog(BPF_PROG_TYPE_SCHED_CLS, 0, insns, ARRAY_SIZE(insns), ret, len);
}

static int lb_probe_socket_lb(char *ret, size_t len)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET4_CONNECT,
		BPF_CGROUP_UDP4_SENDMSG,
		BPF_CGROUP_UDP4_RECVMSG,
		BPF_CGROUP_INET4_GETPEERNAME,
	};
	const struct bpf_insn insns[] = {
		I_MOV_REG(R6, R1), I_CALL(BPF_FUNC_get_socket_cookie),
		I_MOV_REG(R1, R6), I_CALL(BPF_FUNC_get_netns_cookie),
		I_MOV_IMM(R0, 1),  I_EXIT(),
	};

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		int r = lb_probe_prog(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, types[i], insns,
				      ARRAY_SIZE(insns), ret, len);
		if (r < 0)
			return r;
	}
	return 0;
}

static int lb_probe_xdp(char *ret, size_t len)
{
	const struct bpf_insn insns[] = {
		I_MOV_REG(R6, R1),	 I_MOV_IMM(R2, -8), I_CALL(BPF_FUNC_xdp_adjust_meta),
		I_MOV_REG(R1, R6),	 I_MOV_IMM(R2, 0),  I_MOV_REG(R3, R10),
		I_ADD_IMM(R3, -8),	 I_MOV_IMM(R4, 4),  I_CALL(BPF_FUNC_xdp_load_bytes),
		I_MOV_IMM(R0, XDP_PASS), I_EXIT(),
	};

	return lb_probe_prog(BPF_PROG_TYPE_XDP, 0, insns, ARRAY_SIZE(insns), ret, len);
}

/* A ring buffer map, and a tc program writing to it: the map type alone
 * does not show the helper is allowed for the program type. */
static int lb_probe_ringbuf(char *ret, size_t len)
{
	_cleanup_close_ int map = -EBADF;

	map = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "shoal_probe", 0, 0, 4096, NULL);
	if (map < 0) {
		int e = -errno;

		snprintf(ret, len, "creating a ring buffer map: %s", strerror(-e));
		return e;
	}
	const struct bpf_insn insns[] = {
		I_MOV_IMM(R0, 0),
		(struct bpf_insn){.code = BPF_STX | BPF_DW | BPF_MEM,
				  .dst_reg = R10,
				  .src_reg = R0,
				  .off = -8},
		I_LD_MAP_FD(R1, map),
		I_MOV_REG(R2, R10),
		I_ADD_IMM(R2, -8),
		I_MOV_IMM(R3, 8),
		I_MOV_IMM(R4, 0),
		I_CALL(BPF_FUNC_ringbuf_output),
		I_MOV_IMM(R0, 0),
		I_EXIT(),
	};

	return lb_probe_prog(BPF_PROG_TYPE_SCHED_CLS, 0, insns, ARRAY_SIZE(insns), ret, len);
}

static int (*const lb_probes[LB_FEAT_MAX])(char *, size_t) = {
	[LB_FEAT_TC] = lb_probe_tc,
	[LB_FEAT_MAPS] = lb_probe_maps,
	[LB_FEAT_COARSE_CLOCK] = lb_probe_coarse_clock,
	[LB_FEAT_HOST_ROUTING] = lb_probe_host_routing,
	[LB_FEAT_SOCKET_LB] = lb_probe_socket_lb,
	[LB_FEAT_XDP] = lb_probe_xdp,
	[LB_FEAT_RINGBUF] = lb_probe_ringbuf,
};

/* The kernel does not change under a process: probed once. */
static struct lb_feature_status lb_probed[LB_FEAT_MAX];
static bool lb_probed_done;

int lb_features_probe(uint32_t disable, struct lb_feature_status ret[LB_FEAT_MAX])
{
	bool missing = false;

	if (!lb_probed_done) {
		for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++) {
			struct lb_feature_status *s = &lb_probed[f];
			int r = lb_probes[f](s->reason, sizeof(s->reason));

			s->state = r < 0 ? LB_FEATURE_UNAVAILABLE : LB_FEATURE_ON;
			if (r == -EPERM && !s->reason[0])
				snprintf(s->reason, sizeof(s->reason),
					 "not permitted (needs root)");
			if (r >= 0)
				s->reason[0] = '\0';
		}
		lb_probed_done = true;
	}
	for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++) {
		ret[f] = lb_probed[f];
		if ((disable & (1u << f)) && ret[f].state == LB_FEATURE_ON) {
			ret[f].state = LB_FEATURE_UNAVAILABLE;
			snprintf(ret[f].reason, sizeof(ret[f].reason),
				 "turned off (%s=%s), as if the kernel lacked it", LB_DISABLE_ENV,
				 lb_feature_descs[f].name);
		}
		if (lb_feature_descs[f].required && ret[f].state != LB_FEATURE_ON)
			missing = true;
	}
	return missing ? -EOPNOTSUPP : 0;
}

/* Verifier logs of failed loads, from libbpf's own print (it grows its
 * buffer until the whole log fits; a fixed buffer of ours would keep the
 * head or fail with ENOSPC), kept for the error message. */
static libbpf_print_fn_t lb_print_prev;
static char *lb_capture_buf;
static size_t lb_capture_len;

static int lb_print_capture(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (lb_capture_buf && level == LIBBPF_WARN && strstr(fmt, "BEGIN PROG LOAD LOG")) {
		char *s = NULL;
		va_list aq;

		va_copy(aq, ap);
		if (vasprintf(&s, fmt, aq) >= 0) {
			/* the failing instruction and the verdict */
			lb_verifier_reason(s, 3, lb_capture_buf, lb_capture_len);
			free(s);
		}
		va_end(aq);
	}
	return lb_print_prev ? lb_print_prev(level, fmt, ap) : 0;
}

void lb_load_log_begin(char *buf, size_t len)
{
	buf[0] = '\0';
	lb_capture_buf = buf;
	lb_capture_len = len;
	lb_print_prev = libbpf_set_print(lb_print_capture);
}

void lb_load_log_end(void)
{
	libbpf_set_print(lb_print_prev);
	lb_print_prev = NULL;
	lb_capture_buf = NULL;
	lb_capture_len = 0;
}
