/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdarg.h>

/* An error that carries an errno and a message a person can act on.
 * Modules below the agent fill one in and return -code; the agent logs it
 * once, or turns it into an API response. Wrapping prepends context on the
 * way up ("starting container web: mounting rootfs: No such device"). */
struct shoal_err {
	int code;   /* positive errno; 0 = no error */
	int status; /* HTTP status the API should answer with; 0 = derive from code */
	char msg[1024];
};

/* Sets err (if non-NULL) and returns -code. */
int shoal_err_set(struct shoal_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like shoal_err_set, also records the HTTP status for the API. */
int shoal_err_set_status(struct shoal_err *err, int status, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prefixes the message with context; returns -err->code. */
int shoal_err_wrap(struct shoal_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* shoal_err_set with ": strerror(code)" appended. */
int shoal_err_errno(struct shoal_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void shoal_err_clear(struct shoal_err *err);
/* HTTP status for an error: err->status, else derived from err->code. */
int shoal_err_http_status(const struct shoal_err *err);
