/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Small helpers shared by every module. All return >= 0 or -errno. */

/* mkdir -p with the given mode for each created component. */
int mkdir_p(const char *path, mode_t mode);
/* rm -rf that stays on one file system and never follows symlinks. */
int rm_rf(const char *path);
/* Writes data to path via a temporary file + fsync-less rename: readers see
 * the old or the new content, never a half. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file; fails with -EFBIG past max bytes. Result is NUL-terminated. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Writes a short string to an existing file (cgroup and proc knobs). */
int write_string_file(const char *path, const char *s);
/* Reads an integer from a file (cgroup counters). */
int read_int64_file(const char *path, int64_t *ret);

/* 64 lowercase hex characters from the kernel's random source (container ids). */
int random_hex_id(char ret[65]);
/* sha256 of a buffer as 64 lowercase hex characters. */
void sha256_hex(const void *data, size_t len, char ret[65]);

/* Time since the epoch in nanoseconds, and RFC 3339 with nanoseconds, UTC. */
int64_t now_ns(void);
int64_t mono_ns(void);
void format_rfc3339(int64_t ns, char ret[40]);

int fd_set_nonblock(int fd, bool on);
int fd_set_cloexec(int fd, bool on);
/* Writes all of buf, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes; -EPIPE on early EOF. */
int read_all(int fd, void *buf, size_t len);
/* Passes fd over a unix socket as one byte, tag, with SCM_RIGHTS; 0 or
 * -errno. */
int fd_send(int sock, char tag, int fd);
/* The one descriptor a message on sock carries (close-on-exec), or -errno
 * (-EPROTO: a message without exactly one). flags as for recvmsg(). */
int fd_recv(int sock, int flags);

/* NULL-terminated string vectors. */
size_t strv_length(char *const *v);
char **strv_copy(char *const *v);
void strv_free(char **v);
/* Appends a copy of s; returns -ENOMEM on failure (v unchanged). */
int strv_push(char ***v, const char *s);

bool str_has_prefix(const char *s, const char *prefix);
/* Parses "512m", "1g", "100k", "1024" (bytes, 1024-based) into bytes. */
int parse_size(const char *s, int64_t *ret);
