// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/caps.h"

/* Indexed by capability number; names without the CAP_ prefix. */
static const char *const cap_names[] = {
	[0] = "CHOWN",
	[1] = "DAC_OVERRIDE",
	[2] = "DAC_READ_SEARCH",
	[3] = "FOWNER",
	[4] = "FSETID",
	[5] = "KILL",
	[6] = "SETGID",
	[7] = "SETUID",
	[8] = "SETPCAP",
	[9] = "LINUX_IMMUTABLE",
	[10] = "NET_BIND_SERVICE",
	[11] = "NET_BROADCAST",
	[12] = "NET_ADMIN",
	[13] = "NET_RAW",
	[14] = "IPC_LOCK",
	[15] = "IPC_OWNER",
	[16] = "SYS_MODULE",
	[17] = "SYS_RAWIO",
	[18] = "SYS_CHROOT",
	[19] = "SYS_PTRACE",
	[20] = "SYS_PACCT",
	[21] = "SYS_ADMIN",
	[22] = "SYS_BOOT",
	[23] = "SYS_NICE",
	[24] = "SYS_RESOURCE",
	[25] = "SYS_TIME",
	[26] = "SYS_TTY_CONFIG",
	[27] = "MKNOD",
	[28] = "LEASE",
	[29] = "AUDIT_WRITE",
	[30] = "AUDIT_CONTROL",
	[31] = "SETFCAP",
	[32] = "MAC_OVERRIDE",
	[33] = "MAC_ADMIN",
	[34] = "SYSLOG",
	[35] = "WAKE_ALARM",
	[36] = "BLOCK_SUSPEND",
	[37] = "AUDIT_READ",
	[38] = "PERFMON",
	[39] = "BPF",
	[40] = "CHECKPOINT_RESTORE",
};

/* With the prefix, for rt_cap_to_name(). */
static const char *const cap_full_names[] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

_Static_assert(ARRAY_SIZE(cap_names) == ARRAY_SIZE(cap_full_names), "cap name tables differ");
_Static_assert(ARRAY_SIZE(cap_names) <= 64, "capability masks are 64 bits");

#define BIT(n) (UINT64_C(1) << (n))

uint64_t rt_caps_default(void)
{
	return BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FSETID) | BIT(CAP_FOWNER) |
	       BIT(CAP_MKNOD) | BIT(CAP_NET_RAW) | BIT(CAP_SETGID) | BIT(CAP_SETUID) |
	       BIT(CAP_SETFCAP) | BIT(CAP_SETPCAP) | BIT(CAP_NET_BIND_SERVICE) |
	       BIT(CAP_SYS_CHROOT) | BIT(CAP_KILL) | BIT(CAP_AUDIT_WRITE);
}

/* Probing the bounding set needs no file system, so this also works in a child
 * whose root is already the container's. */
static int cap_last_probe(void)
{
	int last = 0;
	while (last < 63 && prctl(PR_CAPBSET_READ, (unsigned long)(last + 1), 0, 0, 0) >= 0)
		last++;
	return last;
}

int rt_cap_last(void)
{
	static int cached = -1;
	if (cached >= 0)
		return cached;

	int last = -1;
	int64_t v;
	if (read_int64_file("/proc/sys/kernel/cap_last_cap", &v) == 0 && v > 0 && v < 64)
		last = (int)v;
	else
		last = cap_last_probe();
	cached = last;
	return last;
}

uint64_t rt_caps_all(void)
{
	int last = rt_cap_last();
	return last >= 63 ? UINT64_MAX : BIT(last + 1) - 1;
}

const char *rt_cap_to_name(int cap)
{
	if (cap < 0 || (size_t)cap >= ARRAY_SIZE(cap_full_names))
		return NULL;
	return cap_full_names[cap];
}

int rt_cap_from_name(const char *name, int *ret, struct shoal_err *err)
{
	if (!name || !*name)
		return shoal_err_set_status(err, 400, EINVAL, "invalid capability: empty name");

	const char *s = name;
	if (strncasecmp(s, "CAP_", 4) == 0)
		s += 4;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++) {
		if (strcasecmp(s, cap_names[i]) == 0) {
			if ((int)i > rt_cap_last())
				return shoal_err_set_status(
					err, 400, EINVAL,
					"capability not supported by this kernel: %s", name);
			*ret = (int)i;
			return 0;
		}
	}
	return shoal_err_set_status(err, 400, EINVAL, "unknown capability: \"%s\"", name);
}

int rt_caps_format(uint64_t mask, char *buf, size_t len)
{
	if (len == 0)
		return -ENOBUFS;
	size_t off = 0;
	buf[0] = '\0';
	for (int i = 0; i < 64; i++) {
		if (!(mask & BIT(i)))
			continue;
		char num[16];
		const char *name = rt_cap_to_name(i);
		if (!name) {
			snprintf(num, sizeof(num), "CAP_%d", i);
			name = num;
		}
		size_t n = strlen(name) + (off ? 1 : 0);
		if (off + n >= len)
			return -ENOBUFS;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", name);
	}
	return (int)off;
}

static bool is_all(const char *s)
{
	return strcasecmp(s, "ALL") == 0;
}

static bool list_has_all(const char *const *list)
{
	for (; list && *list; list++)
		if (is_all(*list))
			return true;
	return false;
}

/* Bits named in list, "ALL" skipped. */
static int list_mask(const char *const *list, uint64_t *ret, struct shoal_err *err)
{
	uint64_t m = 0;
	for (; list && *list; list++) {
		if (is_all(*list))
			continue;
		int cap;
		int r = rt_cap_from_name(*list, &cap, err);
		if (r < 0)
			return r;
		m |= BIT(cap);
	}
	*ret = m;
	return 0;
}

/* As Docker's TweakCapabilities: privileged ignores both lists; "ALL" in add
 * means every capability but the dropped ones; "ALL" in drop means only the
 * added ones; otherwise the default set minus drops plus adds (an add wins). */
int rt_caps_compute(const char *const *add, const char *const *drop, bool privileged, uint64_t *ret,
		    struct shoal_err *err)
{
	if (privileged) {
		*ret = rt_caps_all();
		return 0;
	}

	uint64_t add_mask, drop_mask;
	int r = list_mask(add, &add_mask, err);
	if (r < 0)
		return r;
	r = list_mask(drop, &drop_mask, err);
	if (r < 0)
		return r;

	uint64_t caps;
	if (list_has_all(add))
		caps = rt_caps_all() & ~drop_mask;
	else if (list_has_all(drop))
		caps = add_mask;
	else
		caps = (rt_caps_default() & ~drop_mask) | add_mask;
	*ret = caps & rt_caps_all();
	return 0;
}

static int caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	memset(data, 0, 2 * sizeof(*data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	return 0;
}

static int caps_set(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2] = {
		{.effective = (uint32_t)eff,
		 .permitted = (uint32_t)perm,
		 .inheritable = (uint32_t)inh},
		{.effective = (uint32_t)(eff >> 32),
		 .permitted = (uint32_t)(perm >> 32),
		 .inheritable = (uint32_t)(inh >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return 0;
}

void rt_caps_for_user(uint64_t mask, uint32_t uid, struct rt_cap_sets *ret)
{
	/* Docker's spec (oci.SetCapabilities) lists the set as bounding, effective
	 * and permitted for root and as bounding only for any other uid, and
	 * never as inheritable (CVE-2022-24769: a non-empty inheritable set lets
	 * a binary with inheritable file capabilities gain them) nor ambient.
	 * runc applies exactly that, so after execve a non-root user holds
	 * nothing and only file capabilities (masked by the bounding set) grant
	 * anything: an image's USER is a real boundary. */
	*ret = (struct rt_cap_sets){.bounding = mask};
	if (uid == 0) {
		ret->effective = mask;
		ret->permitted = mask;
	}
}

int rt_caps_apply(uint64_t mask, struct shoal_err *err)
{
	struct __user_cap_data_struct cur[2];
	int last = cap_last_probe();
	uint64_t known = last >= 63 ? UINT64_MAX : BIT(last + 1) - 1;
	mask &= known;

	/* Both uids: a process that is root in name only (setresuid(0, 1000, ..))
	 * is treated as non-root, as the kernel's execve does. */
	struct rt_cap_sets want;
	rt_caps_for_user(mask, getuid() == 0 && geteuid() == 0 ? 0 : 1, &want);

	int r = caps_get(cur);
	if (r < 0)
		return shoal_err_errno(err, r, "reading capabilities");
	uint64_t perm = (uint64_t)cur[0].permitted | ((uint64_t)cur[1].permitted << 32);
	uint64_t inh = (uint64_t)cur[0].inheritable | ((uint64_t)cur[1].inheritable << 32);
	if (want.permitted & ~perm)
		return shoal_err_set(err, EPERM,
				     "setting capabilities: requested set is not permitted "
				     "(was PR_SET_KEEPCAPS set before setuid?)");

	/* After setuid with PR_SET_KEEPCAPS the effective set is empty while the
	 * permitted set is intact: bring it back so the bounding drop has SETPCAP. */
	r = caps_set(perm, perm, inh);
	if (r < 0)
		return shoal_err_errno(err, r, "raising effective capabilities");

	for (int i = 0; i <= last; i++) {
		if (want.bounding & BIT(i))
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)i, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				continue;
			return shoal_err_errno(err, errno, "dropping %s from the bounding set",
					       rt_cap_to_name(i) ? rt_cap_to_name(i)
								 : "capability");
		}
	}

	/* Nothing inherited from the agent survives in the ambient set. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return shoal_err_errno(err, errno, "clearing ambient capabilities");
	r = caps_set(want.effective, want.permitted, want.inheritable);
	if (r < 0)
		return shoal_err_errno(err, r, "setting capabilities");
	return 0;
}
