/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>
#include <stddef.h>

#include "lib/err.h"

/* Docker's default seccomp profile (moby profiles/seccomp/default.json: an allow
 * list with EPERM default action, argument filters for clone/personality/socket,
 * and capability-conditional syscalls), compiled with libseccomp into a classic
 * BPF program once by the agent (rt_seccomp_compile in runtime.h), loaded by the
 * container child with no libseccomp in the monitor. */

/* Compiles the profile for a capability mask (syscalls that Docker allows only
 * with CAP_SYS_ADMIN etc. are added when the cap is present) and writes the raw
 * sock_filter array to path. */
int rt_seccomp_compile_caps(const char *path, uint64_t caps, struct shoal_err *err);
/* Largest filter file accepted (the kernel's own limit, BPF_MAXINSNS = 4096
 * instructions, is half of it). */
#define RT_SECCOMP_FILE_MAX (64 * 1024)

/* The two halves of rt_seccomp_load_file(), for a child that changes root or
 * drops capabilities between them (after pivot_root or setuid the file may be
 * out of sight or unreadable): read the program into buf (size >= the file;
 * RT_SECCOMP_FILE_MAX always suffices) while the file is reachable, install
 * it last, right before execve. No malloc in either. */
int rt_seccomp_read_file(const char *path, void *buf, size_t size, size_t *ret_len,
			 struct shoal_err *err);
int rt_seccomp_install(const void *prog, size_t len, struct shoal_err *err);

/* Reads a filter file written by the above (limit 64 KiB) and installs it with
 * seccomp(SECCOMP_SET_MODE_FILTER) (the caller has set no_new_privs or holds
 * CAP_SYS_ADMIN). Async-signal-safe enough for a forked child: no malloc. */
int rt_seccomp_load_file(const char *path, struct shoal_err *err);
