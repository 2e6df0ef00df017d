/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
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
int rt_caps_compute(const char *const *add, const char *const *drop, bool privileged,
		    uint64_t *ret, struct shoal_err *err);
/* In the container child, after setuid work: bounding set, then effective,
 * permitted, inheritable and ambient (for non-root users) set to mask. */
int rt_caps_apply(uint64_t mask, struct shoal_err *err);
