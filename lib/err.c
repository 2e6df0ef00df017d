// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static int err_vset(struct shoal_err *err, int status, int code, const char *fmt, va_list ap)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	if (err) {
		err->code = code;
		err->status = status;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return -code;
}

int shoal_err_set(struct shoal_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, 0, code, fmt, ap);
	va_end(ap);
	return r;
}

int shoal_err_set_status(struct shoal_err *err, int status, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, status, code, fmt, ap);
	va_end(ap);
	return r;
}

int shoal_err_errno(struct shoal_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, 0, code, fmt, ap);
	va_end(ap);
	if (err) {
		size_t n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(-r));
	}
	return r;
}

int shoal_err_wrap(struct shoal_err *err, const char *fmt, ...)
{
	if (!err)
		return -EIO;
	char prefix[512], old[sizeof(err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	if (err->code == 0)
		err->code = EIO;
	return -err->code;
}

void shoal_err_clear(struct shoal_err *err)
{
	if (err) {
		err->code = 0;
		err->status = 0;
		err->msg[0] = '\0';
	}
}

int shoal_err_http_status(const struct shoal_err *err)
{
	if (err->status)
		return err->status;
	switch (err->code) {
	case EINVAL:
	case E2BIG:
	case ENAMETOOLONG:
	case EBADMSG:
	case EMSGSIZE:
		return 400;
	case ENOENT:
	case ESRCH:
		return 404;
	case EEXIST:
	case EBUSY:
	case EALREADY:
		return 409;
	case EPERM:
	case EACCES:
		return 403;
	default:
		return 500;
	}
}
