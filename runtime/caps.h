/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Capability sets as bitmasks (bit n = capability n). */

/* Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID,
 * SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE. */
uint64_t rt_caps_default(void);
/* Every capability this kernel knows (from /proc/sys/kernel/cap_last_cap). */
uint64_t rt_caps_all(void);
/* "NET_ADMIN", "CAP_NET_ADMIN", "net_admin" -> bit number; -EINVAL with the name in err. */
int rt_cap_from_name(const char *name, int *ret, struct shoal_err *err);
const char *rt_cap_to_name(int cap);
/* default (or all when privileged), plus adds, minus drops; "ALL" in either list as Docker. */
int rt_caps_compute(const char *const *add, const char *const *drop, bool privileged, uint64_t *ret,
		    struct shoal_err *err);
/* "CAP_CHOWN,CAP_KILL,..." in bit order into buf (truncated names never appear:
 * -ENOBUFS when buf is too small). Returns the length written. */
int rt_caps_format(uint64_t mask, char *buf, size_t len);
/* Highest capability number this kernel knows (cap_last_cap). */
int rt_cap_last(void);

/* The capability sets of a container process. */
struct rt_cap_sets {
	uint64_t bounding, effective, permitted, inheritable, ambient;
};

/* The sets a container process holds for the computed mask (rt_caps_compute)
 * and its uid, as runc applies Docker's spec: root gets mask as bounding,
 * effective and permitted; any other uid gets mask as bounding only, every
 * other set empty. Inheritable and ambient are always empty. So --cap-add for
 * a non-root user widens only the bounding set, which is what file
 * capabilities (setcap'd binaries) of the image can draw on. Pure. */
void rt_caps_for_user(uint64_t mask, uint32_t uid, struct rt_cap_sets *ret);

/* In the container child, after setuid work: the sets of rt_caps_for_user()
 * for mask and the current uid (root only when real and effective uid are 0).
 *
 * Ordering expected from the caller (the child, right before execve):
 *   1. prctl(PR_SET_KEEPCAPS, 1) while still uid 0, so that the permitted set
 *      survives the switch to a non-root uid (the bounding drop needs
 *      CAP_SETPCAP);
 *   2. setgroups(), setresgid(), setresuid() to the container user;
 *   3. rt_caps_apply(mask): raises the effective set back to the (kept)
 *      permitted set, drops every capability outside mask from the bounding set
 *      (this needs CAP_SETPCAP, which is why it runs before the capset), clears
 *      the ambient set and sets effective, permitted and inheritable as
 *      rt_caps_for_user() says: for a non-root uid all three end up empty;
 *   4. prctl(PR_SET_NO_NEW_PRIVS, 1), rt_seccomp_install(), execve.
 * The seccomp program is read (rt_seccomp_read_file) before pivot_root and
 * before step 2: with a reduced set (no CAP_DAC_OVERRIDE) or a new root the
 * agent's filter file can no longer be opened.
 * No allocation, no file access (the last capability is probed with
 * PR_CAPBSET_READ), so it works inside the container's new root. */
int rt_caps_apply(uint64_t mask, struct shoal_err *err);
