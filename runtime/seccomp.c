// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <seccomp.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/caps.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"
#include "runtime/seccomp-profile.h"

static inline void seccomp_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

/* The profile's arch names for the architecture this binary is built for. */
static unsigned int native_arch(void)
{
#if defined(__x86_64__) && defined(__ILP32__)
	return SP_X32;
#elif defined(__x86_64__)
	return SP_AMD64;
#elif defined(__i386__)
	return SP_X86;
#elif defined(__aarch64__)
	return SP_ARM64;
#elif defined(__arm__)
	return SP_ARM;
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return SP_PPC64LE;
#elif defined(__s390x__)
	return SP_S390X;
#elif defined(__s390__)
	return SP_S390;
#elif defined(__riscv) && __riscv_xlen == 64
	return SP_RISCV64;
#else
	return 0;
#endif
}

static void kernel_version(int *major, int *minor)
{
	struct utsname u;
	*major = *minor = 0;
	if (uname(&u) == 0)
		sscanf(u.release, "%d.%d", major, minor);
}

static bool rule_applies(const struct sp_rule *r, uint64_t caps, unsigned int arch, int kmajor,
			 int kminor)
{
	if (r->arches_include && !(r->arches_include & arch))
		return false;
	if (r->arches_exclude & arch)
		return false;
	if ((r->caps_include & caps) != r->caps_include)
		return false;
	if (r->caps_exclude & caps)
		return false;
	if (r->min_kernel_major &&
	    (kmajor < r->min_kernel_major ||
	     (kmajor == r->min_kernel_major && kminor < r->min_kernel_minor)))
		return false;
	return true;
}

/* Docker's archMap: a 64-bit x86 filter also covers the 32-bit and x32 ABIs,
 * arm64 covers arm, and so on, so a container cannot escape the filter by
 * switching syscall ABI. */
static int add_sub_arches(scmp_filter_ctx ctx)
{
	static const struct {
		uint32_t native;
		uint32_t subs[2];
	} map[] = {
		{SCMP_ARCH_X86_64, {SCMP_ARCH_X86, SCMP_ARCH_X32}},
		{SCMP_ARCH_AARCH64, {SCMP_ARCH_ARM, 0}},
		{SCMP_ARCH_S390X, {SCMP_ARCH_S390, 0}},
	};
	uint32_t native = seccomp_arch_native();
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (map[i].native != native)
			continue;
		for (size_t j = 0; j < ARRAY_SIZE(map[i].subs) && map[i].subs[j]; j++) {
			int r = seccomp_arch_add(ctx, map[i].subs[j]);
			if (r < 0 && r != -EEXIST)
				return r;
		}
	}
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, const struct sp_rule *rule, const char *name,
		    struct shoal_err *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	/* Names this libseccomp does not know (newer syscalls) stay under the
	 * default action, as Docker does. */
	if (nr == __NR_SCMP_ERROR)
		return 0;

	struct scmp_arg_cmp cmp[ARRAY_SIZE(rule->args)];
	for (unsigned int i = 0; i < rule->nargs; i++) {
		cmp[i] = (struct scmp_arg_cmp){
			.arg = rule->args[i].index,
			.op = rule->args[i].op,
			.datum_a = rule->args[i].value,
			.datum_b = rule->args[i].value_two,
		};
	}
	uint32_t action =
		rule->errno_ret ? SCMP_ACT_ERRNO((uint32_t)rule->errno_ret) : SCMP_ACT_ALLOW;
	int r = seccomp_rule_add_array(ctx, action, nr, rule->nargs, rule->nargs ? cmp : NULL);
	if (r == -EEXIST)
		return 0;
	if (r < 0)
		return shoal_err_errno(err, r, "seccomp: adding rule for %s", name);
	return 0;
}

int rt_seccomp_compile_caps(const char *path, uint64_t caps, struct shoal_err *err)
{
	_cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return shoal_err_set(err, ENOMEM, "seccomp: initialising filter failed");

	int r = add_sub_arches(ctx);
	if (r < 0)
		return shoal_err_errno(err, r, "seccomp: adding architectures");
	/* The child sets no_new_privs itself; the exported program must not rely
	 * on libseccomp doing it. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	/* A binary tree of syscall numbers instead of one long chain: the kernel
	 * walks far fewer instructions per syscall, and loading the filter (which
	 * the kernel checks and converts on every container start) is cheaper. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

	unsigned int arch = native_arch();
	int kmajor, kminor;
	kernel_version(&kmajor, &kminor);

	for (size_t i = 0; i < ARRAY_SIZE(sp_rules); i++) {
		const struct sp_rule *rule = &sp_rules[i];
		if (!rule_applies(rule, caps, arch, kmajor, kminor))
			continue;
		for (const char *const *n = rule->names; *n; n++) {
			r = add_rule(ctx, rule, *n, err);
			if (r < 0)
				return r;
		}
	}

	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return shoal_err_set(err, ENAMETOOLONG, "seccomp: path too long: %s", path);
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return shoal_err_errno(err, errno, "seccomp: creating %s", tmp);
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0) {
		unlink(tmp);
		return shoal_err_errno(err, r, "seccomp: exporting filter to %s", tmp);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size == 0 || st.st_size % sizeof(struct sock_filter) ||
	    st.st_size > RT_SECCOMP_FILE_MAX) {
		unlink(tmp);
		return shoal_err_set(err, EINVAL, "seccomp: exported filter has a bad size");
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return shoal_err_errno(err, r, "seccomp: renaming %s to %s", tmp, path);
	}
	return 0;
}

int rt_seccomp_compile(const char *path, struct shoal_err *err)
{
	return rt_seccomp_compile_caps(path, rt_caps_default(), err);
}

int rt_seccomp_read_file(const char *path, void *buf, size_t size, size_t *ret_len,
			 struct shoal_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shoal_err_errno(err, errno, "seccomp: opening %s", path);

	size_t len = 0;
	char *p = buf;
	for (;;) {
		if (len == size) {
			char extra;
			ssize_t k = read(fd, &extra, 1);
			if (k > 0)
				return shoal_err_set(err, EFBIG,
						     "seccomp: %s is larger than %zu bytes", path,
						     size);
			break;
		}
		ssize_t k = read(fd, p + len, size - len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return shoal_err_errno(err, errno, "seccomp: reading %s", path);
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	if (len == 0 || len % sizeof(struct sock_filter))
		return shoal_err_set(err, EINVAL, "seccomp: %s is not a BPF program (%zu bytes)",
				     path, len);
	*ret_len = len;
	return 0;
}

int rt_seccomp_install(const void *prog, size_t len, struct shoal_err *err)
{
	if (len == 0 || len % sizeof(struct sock_filter) ||
	    len / sizeof(struct sock_filter) > USHRT_MAX)
		return shoal_err_set(err, EINVAL, "seccomp: bad program length %zu", len);
	struct sock_fprog fprog = {
		.len = (unsigned short)(len / sizeof(struct sock_filter)),
		.filter = (struct sock_filter *)prog,
	};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
		return shoal_err_errno(err, errno, "seccomp: installing filter");
	return 0;
}

int rt_seccomp_load_file(const char *path, struct shoal_err *err)
{
	/* Static, not malloc'd: this runs in a freshly forked child. */
	static struct sock_filter prog[RT_SECCOMP_FILE_MAX / sizeof(struct sock_filter)];
	size_t len;
	int r = rt_seccomp_read_file(path, prog, sizeof(prog), &len, err);
	if (r < 0)
		return r;
	return rt_seccomp_install(prog, len, err);
}
