// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime-internal.h"

void rt_format_time_nano(int64_t ns, char ret[40])
{
	time_t s = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	int n = snprintf(ret, 40, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (frac > 0) {
		char f[16];
		snprintf(f, sizeof(f), "%09ld", frac);
		size_t l = 9;
		while (l > 0 && f[l - 1] == '0')
			l--;
		f[l] = '\0';
		n += snprintf(ret + n, (size_t)(40 - n), ".%s", f);
	}
	snprintf(ret + n, (size_t)(40 - n), "Z");
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t l;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		l = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		l = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		l = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < l)
		return 0;
	for (size_t i = 1; i < l; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return l;
}

/* JSON string body as Go's encoder writes it: HTML-safe, invalid UTF-8 as U+FFFD. */
static size_t json_escape(char *out, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)text;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c >= 0x80) {
			size_t l = utf8_len(p + i, len - i);
			if (l == 0) {
				memcpy(out + o, "\\ufffd", 6);
				o += 6;
				i++;
			} else if (l == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
				   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
				memcpy(out + o, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
				o += 6;
				i += 3;
			} else {
				memcpy(out + o, p + i, l);
				o += l;
				i += l;
			}
			continue;
		}
		i++;
		switch (c) {
		case '"':
		case '\\':
			out[o++] = '\\';
			out[o++] = (char)c;
			continue;
		case '\n':
			out[o++] = '\\';
			out[o++] = 'n';
			continue;
		case '\r':
			out[o++] = '\\';
			out[o++] = 'r';
			continue;
		case '\t':
			out[o++] = '\\';
			out[o++] = 't';
			continue;
		default:
			break;
		}
		if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			memcpy(out + o, "\\u00", 4);
			o += 4;
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
			continue;
		}
		out[o++] = (char)c;
	}
	return o;
}

size_t rt_log_encode(char *buf, const char *text, size_t len, enum rt_log_stream stream,
		     int64_t time_ns)
{
	char ts[40];
	size_t o = 0;
	memcpy(buf, "{\"log\":\"", 8);
	o = 8;
	o += json_escape(buf + o, text, len);
	rt_format_time_nano(time_ns, ts);
	o += (size_t)sprintf(buf + o, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
			     stream == RT_LOG_STDERR ? "stderr" : "stdout", ts);
	return o;
}

int rt_log_open(struct rt_log *log, const char *path, int64_t max_size, int max_files)
{
	log->pending[0] = log->pending[1] = 0;
	log->max_size = max_size > 0 ? max_size : 10 * 1024 * 1024;
	log->max_files = max_files > 0 ? max_files : 3;
	log->floor = 0;
	log->budget = 0;
	log->checked_ns = 0;
	log->blocked = false;
	log->dropped = 0;
	log->drop_why = NULL;
	log->usage = NULL;
	log->max_total = 0;
	if (strlen(path) >= sizeof(log->path))
		return -ENAMETOOLONG;
	snprintf(log->path, sizeof(log->path), "%s", path);
	log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(log->fd, &st) < 0) {
		int r = -errno;
		close(log->fd);
		log->fd = -1;
		return r;
	}
	log->size = st.st_size;
	struct statvfs sv;
	if (fstatvfs(log->fd, &sv) == 0) {
		int64_t fs = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
		int64_t f = fs / 100 * RT_LOG_FLOOR_PERCENT;
		log->floor = f < RT_LOG_FLOOR_MAX ? f : RT_LOG_FLOOR_MAX;
	}
	return 0;
}

int rt_log_set_total(struct rt_log *log, const char *usage_path, int64_t max_total)
{
	int64_t *u = NULL;
	int r = rt_log_usage_open(usage_path, false, &u);
	if (r < 0)
		return r;
	if (log->usage)
		rt_log_usage_close(log->usage);
	log->usage = u;
	log->max_total = max_total > 0 ? max_total : 0;
	return 0;
}

static void usage_add(struct rt_log *log, int64_t n)
{
	if (log->usage && n != 0)
		__atomic_add_fetch(log->usage, n, __ATOMIC_RELAXED);
}

static int log_rotate(struct rt_log *log)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	struct stat st;
	if (log->max_files <= 1) {
		if (ftruncate(log->fd, 0) < 0)
			return -errno;
		usage_add(log, -log->size);
		log->size = 0;
		return 0;
	}
	snprintf(to, sizeof(to), "%s.%d", log->path, log->max_files - 1);
	off_t gone = stat(to, &st) == 0 ? st.st_size : 0;
	if (unlink(to) < 0 && errno != ENOENT)
		return -errno;
	usage_add(log, -(int64_t)gone);
	for (int i = log->max_files - 2; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%d", log->path, i);
		snprintf(to, sizeof(to), "%s.%d", log->path, i + 1);
		if (rename(from, to) < 0 && errno != ENOENT)
			return -errno;
	}
	snprintf(to, sizeof(to), "%s.1", log->path);
	if (rename(log->path, to) < 0)
		return -errno;
	int fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	close(log->fd);
	log->fd = fd;
	log->size = 0;
	return 0;
}

/* Whether a record of n bytes may go to the log now; if not, why in log->drop_why. */
static bool log_may_write(struct rt_log *log, size_t n, int64_t now)
{
	if (log->usage && log->max_total > 0 &&
	    __atomic_load_n(log->usage, __ATOMIC_RELAXED) + (int64_t)n > log->max_total) {
		log->drop_why = "the node's total for container logs (--log-max-total) is reached";
		return false;
	}
	if (log->floor <= 0)
		return true;
	bool look = log->blocked ? now - log->checked_ns >= RT_LOG_CHECK_NS || now < log->checked_ns
				 : log->budget < (int64_t)n;
	if (look) {
		struct statvfs sv;
		log->checked_ns = now;
		log->blocked = false;
		log->budget = RT_LOG_CHECK_BYTES;
		if (fstatvfs(log->fd, &sv) == 0) {
			int64_t spare = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize - log->floor;
			log->blocked = spare < (int64_t)n;
			/* Half of what is left, so that the look comes sooner as the
			 * floor nears (other writers share the file system). */
			if (spare / 2 < log->budget)
				log->budget = spare / 2;
		}
	}
	if (log->blocked) {
		log->drop_why = "the disk is nearly full";
		return false;
	}
	return true;
}

/* Appends one encoded record, all of it or nothing. */
static int log_append(struct rt_log *log, const char *buf, size_t n)
{
	const char *p = buf;
	size_t left = n;
	while (left > 0) {
		ssize_t w = write(log->fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			/* No half record: readers parse the file line by line. */
			if (left < n && ftruncate(log->fd, log->size) < 0)
				log->size += (int64_t)(n - left);
			return r;
		}
		p += w;
		left -= (size_t)w;
	}
	log->size += (int64_t)n;
	log->budget -= (int64_t)n;
	usage_add(log, (int64_t)n);
	return 0;
}

/* The record that says how many were dropped, once writing works again. */
static int log_write_marker(struct rt_log *log, int64_t time_ns)
{
	char text[256], buf[6 * sizeof(text) + 128];
	int len = snprintf(text, sizeof(text), "[shoal: %llu log lines dropped: %s]\n",
			   (unsigned long long)log->dropped,
			   log->drop_why ? log->drop_why : "the disk is nearly full");
	size_t n = rt_log_encode(buf, text, (size_t)len, RT_LOG_STDERR, time_ns);
	int r = log_append(log, buf, n);
	if (r == 0)
		log->dropped = 0;
	return r;
}

static int log_record(struct rt_log *log, enum rt_log_stream stream, const char *text, size_t len,
		      int64_t time_ns)
{
	/* Worst case 6 bytes per input byte, plus the envelope. */
	static char buf[6 * RT_LOG_LINE_MAX + 128];
	if (log->fd < 0)
		return -EBADF;
	if (log->size >= log->max_size) {
		int r = log_rotate(log);
		if (r < 0)
			return r;
	}
	size_t n = rt_log_encode(buf, text, len, stream, time_ns);
	/* Room for the marker too, so that it goes out before the next record. */
	if (!log_may_write(log, n + (log->dropped ? 256 : 0), time_ns)) {
		log->dropped++;
		return -ENOSPC;
	}
	int r = log->dropped ? log_write_marker(log, time_ns) : 0;
	if (r == 0)
		r = log_append(log, buf, n);
	if (r == -ENOSPC || r == -EDQUOT) {
		log->dropped++;
		log->drop_why = "the disk is full";
		log->blocked = true;
		log->checked_ns = time_ns;
	}
	return r;
}

int rt_log_write(struct rt_log *log, enum rt_log_stream stream, const char *data, size_t len,
		 int64_t time_ns)
{
	char *line = log->line[stream];
	size_t *pend = &log->pending[stream];
	int ret = 0;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) + 1 : len;
		if (take > RT_LOG_LINE_MAX - *pend)
			take = RT_LOG_LINE_MAX - *pend;
		bool complete = take > 0 && data[take - 1] == '\n';
		if (*pend == 0 && (complete || take == RT_LOG_LINE_MAX)) {
			/* A whole record straight from the input. */
			int r = log_record(log, stream, data, take, time_ns);
			if (r < 0)
				ret = r;
		} else {
			memcpy(line + *pend, data, take);
			*pend += take;
			if (complete || *pend == RT_LOG_LINE_MAX) {
				int r = log_record(log, stream, line, *pend, time_ns);
				if (r < 0)
					ret = r;
				*pend = 0;
			}
		}
		data += take;
		len -= take;
	}
	return ret;
}

int rt_log_flush(struct rt_log *log, enum rt_log_stream stream, int64_t time_ns)
{
	size_t *pend = &log->pending[stream];
	if (*pend == 0)
		return 0;
	int r = log_record(log, stream, log->line[stream], *pend, time_ns);
	*pend = 0;
	return r;
}

void rt_log_close(struct rt_log *log)
{
	if (log->fd >= 0 && log->dropped) {
		/* The count is not lost with the container: past the guard (it is one
		 * small record), unless the disk is full for good. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		log_write_marker(log, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
	}
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
	if (log->usage)
		rt_log_usage_close(log->usage);
	log->usage = NULL;
}

int rt_log_usage_open(const char *path, bool create, int64_t **ret)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (st.st_size < (off_t)sizeof(int64_t) &&
		 (!create || ftruncate(fd, sizeof(int64_t)) < 0))
		r = create ? -errno : -EINVAL;
	void *m = MAP_FAILED;
	if (r == 0) {
		m = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			r = -errno;
	}
	close(fd);
	if (r < 0)
		return r;
	*ret = m;
	return 0;
}

void rt_log_usage_close(int64_t *usage)
{
	if (usage)
		munmap(usage, sizeof(int64_t));
}

int64_t rt_log_usage_scan(const char *containers_dir)
{
	int64_t total = 0;
	DIR *d = opendir(containers_dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int dfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			continue;
		DIR *c = fdopendir(dfd);
		if (!c) {
			close(dfd);
			continue;
		}
		struct dirent *f;
		while ((f = readdir(c))) {
			struct stat st;
			if (strstr(f->d_name, "-json.log") &&
			    fstatat(dirfd(c), f->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				total += st.st_size;
		}
		closedir(c);
	}
	closedir(d);
	return total;
}
