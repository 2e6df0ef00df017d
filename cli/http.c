// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/http.h"
#include "lib/cleanup.h"
#include "lib/util.h"

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_EOF };

struct cli_http {
	int fd;
	char *buf;	   /* CLI_HTTP_MAX_HEAD bytes */
	size_t start, end; /* unread bytes are buf[start..end) */
	enum body_mode mode;
	uint64_t remaining;
	struct cli_chunked chunked;
	bool eof;
};

int cli_http_parse_host(const char *host, char *ret_path, size_t size)
{
	const char *p = host;
	if (str_has_prefix(p, "unix://"))
		p += strlen("unix://");
	else if (strstr(p, "://"))
		return -EPROTONOSUPPORT;
	if (p[0] != '/')
		return -EINVAL;
	if (strlen(p) >= size || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	strcpy(ret_path, p);
	return 0;
}

int cli_http_from_fd(int fd, struct cli_http **ret)
{
	struct cli_http *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->buf = malloc(CLI_HTTP_MAX_HEAD);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	c->fd = fd;
	*ret = c;
	return 0;
}

int cli_http_connect(const char *path, struct cli_http **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	int r = cli_http_from_fd(fd, ret);
	if (r < 0)
		return r;
	TAKE_FD(fd);
	return 0;
}

struct cli_http *cli_http_free(struct cli_http *c)
{
	if (!c)
		return NULL;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
	return NULL;
}

int cli_http_fd(const struct cli_http *c)
{
	return c->fd;
}

size_t cli_http_buffered(const struct cli_http *c)
{
	return c->end - c->start;
}

static int send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_fd_body(int sock, int fd, bool chunked)
{
	_cleanup_free_ char *buf = malloc(64 * 1024 + 32);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		/* Room for the chunk-size line in front of the data. */
		ssize_t n = read(fd, buf + 16, 64 * 1024);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		int r;
		if (chunked) {
			char line[16];
			int l = snprintf(line, sizeof(line), "%zx\r\n", (size_t)n);
			memcpy(buf + 16 - l, line, (size_t)l);
			memcpy(buf + 16 + n, "\r\n", 2);
			r = send_all(sock, buf + 16 - l, (size_t)l + (size_t)n + 2);
		} else {
			r = send_all(sock, buf + 16, (size_t)n);
		}
		if (r < 0)
			return r;
	}
	if (chunked)
		return send_all(sock, "0\r\n\r\n", 5);
	return 0;
}

int cli_http_send(struct cli_http *c, const struct cli_http_req *req, struct shoal_err *err)
{
	char head[4096];
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: shoal\r\nUser-Agent: shoal-cli/%s\r\n",
			 req->method, req->path, SHOAL_VERSION);
	if (n < 0 || (size_t)n >= sizeof(head) - 512)
		return shoal_err_set(err, ENAMETOOLONG, "request path too long");
	size_t off = (size_t)n;
#define APPEND(...) off += (size_t)snprintf(head + off, sizeof(head) - off, __VA_ARGS__)
	if (req->upgrade)
		APPEND("Connection: Upgrade\r\nUpgrade: tcp\r\n");
	else
		APPEND("Connection: close\r\n");
	bool has_body = req->body || req->body_fd >= 0;
	if (req->content_type && has_body)
		APPEND("Content-Type: %s\r\n", req->content_type);
	if (req->headers)
		APPEND("%s", req->headers);
	bool chunked = false;
	if (req->body_fd >= 0) {
		if (req->body_fd_len >= 0) {
			APPEND("Content-Length: %" PRId64 "\r\n", req->body_fd_len);
		} else {
			APPEND("Transfer-Encoding: chunked\r\n");
			chunked = true;
		}
	} else if (req->body || strcmp(req->method, "POST") == 0 ||
		   strcmp(req->method, "PUT") == 0) {
		APPEND("Content-Length: %zu\r\n", req->body ? req->body_len : 0);
	}
	APPEND("\r\n");
#undef APPEND
	if (off >= sizeof(head))
		return shoal_err_set(err, ENAMETOOLONG, "request header too long");
	int r = send_all(c->fd, head, off);
	if (r >= 0 && req->body && req->body_len > 0)
		r = send_all(c->fd, req->body, req->body_len);
	if (r >= 0 && req->body_fd >= 0)
		r = send_fd_body(c->fd, req->body_fd, chunked);
	if (r < 0)
		return shoal_err_errno(err, r, "sending request %s %s", req->method, req->path);
	return 0;
}

/* Reads more bytes into the buffer, compacting first; 0 at EOF. */
static ssize_t fill(struct cli_http *c)
{
	if (c->start > 0) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	if (c->end >= CLI_HTTP_MAX_HEAD)
		return -ENOBUFS;
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->end, CLI_HTTP_MAX_HEAD - c->end, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			c->eof = true;
		c->end += (size_t)n;
		return n;
	}
}

static char *find_head_end(char *p, size_t len, size_t *ret_seplen)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n') {
			*ret_seplen = 2;
			return p + i;
		}
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n') {
			*ret_seplen = 3;
			return p + i;
		}
	}
	return NULL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int cli_http_read_head(struct cli_http *c, struct cli_http_resp *ret, struct shoal_err *err)
{
	char *headend;
	size_t seplen = 0;
	for (;;) {
		headend = find_head_end(c->buf + c->start, c->end - c->start, &seplen);
		if (headend)
			break;
		if (c->end - c->start >= CLI_HTTP_MAX_HEAD)
			return shoal_err_set(err, EMSGSIZE, "response header larger than %d bytes",
					     CLI_HTTP_MAX_HEAD);
		ssize_t n = fill(c);
		if (n < 0)
			return shoal_err_errno(err, (int)n, "reading response");
		if (n == 0)
			return shoal_err_set(
				err, ECONNRESET,
				c->end == c->start
					? "the daemon closed the connection without a response"
					: "the daemon closed the connection in the middle of a response");
	}
	size_t headlen = (size_t)(headend - (c->buf + c->start)) + 1;
	_cleanup_free_ char *head = strndup(c->buf + c->start, headlen);
	if (!head)
		return -ENOMEM;
	c->start += headlen + seplen - 1;

	struct cli_http_resp resp = {.content_length = -1};
	char *save = NULL;
	char *line = strtok_r(head, "\n", &save);
	if (!line)
		return shoal_err_set(err, EBADMSG, "malformed response: empty status line");
	line = trim(line);
	int minor = 0;
	int consumed = 0;
	if (sscanf(line, "HTTP/1.%d %d%n", &minor, &resp.status, &consumed) != 2 ||
	    resp.status < 100 || resp.status > 999)
		return shoal_err_set(err, EBADMSG, "malformed response status line: %.80s", line);
	snprintf(resp.reason, sizeof(resp.reason), "%s", trim(line + consumed));
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *name = trim(line), *value = trim(colon + 1);
		if (strcasecmp(name, "Content-Length") == 0) {
			char *end;
			errno = 0;
			long long v = strtoll(value, &end, 10);
			if (errno || *end || v < 0)
				return shoal_err_set(err, EBADMSG,
						     "malformed Content-Length: %.40s", value);
			resp.content_length = v;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			if (strcasestr(value, "chunked"))
				resp.chunked = true;
		} else if (strcasecmp(name, "Content-Type") == 0) {
			snprintf(resp.content_type, sizeof(resp.content_type), "%s", value);
		}
	}
	resp.upgraded = resp.status == 101;
	if (resp.upgraded || resp.status == 204 || resp.status == 304)
		c->mode = BODY_NONE;
	else if (resp.chunked)
		c->mode = BODY_CHUNKED;
	else if (resp.content_length >= 0)
		c->mode = BODY_LENGTH;
	else
		c->mode = BODY_EOF;
	c->remaining = resp.content_length > 0 ? (uint64_t)resp.content_length : 0;
	memset(&c->chunked, 0, sizeof(c->chunked));
	*ret = resp;
	return 0;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF };

#define CHUNK_LINE_MAX 4096

ssize_t cli_chunked_decode(struct cli_chunked *d, const void *in, size_t len, size_t *consumed,
			   void *out, size_t outlen)
{
	const unsigned char *p = in;
	unsigned char *o = out;
	size_t i = 0, produced = 0;
	while (i < len && !d->done) {
		unsigned char ch = p[i];
		switch (d->state) {
		case CH_SIZE:
			if (isxdigit(ch)) {
				if (d->linelen >= 15)
					return -EBADMSG;
				unsigned v = isdigit(ch) ? (unsigned)(ch - '0')
							 : (unsigned)(tolower(ch) - 'a' + 10);
				d->remaining = d->remaining * 16 + v;
				d->linelen++;
				i++;
			} else if (d->linelen == 0) {
				return -EBADMSG;
			} else if (ch == ';' || ch == ' ' || ch == '\t') {
				d->state = CH_EXT;
				i++;
			} else if (ch == '\r') {
				d->state = CH_SIZE_LF;
				i++;
			} else if (ch == '\n') {
				d->state = d->remaining ? CH_DATA : CH_TRAILER;
				d->linelen = 0;
				i++;
			} else {
				return -EBADMSG;
			}
			break;
		case CH_EXT:
			if (++d->linelen > CHUNK_LINE_MAX)
				return -EBADMSG;
			if (ch == '\n') {
				d->state = d->remaining ? CH_DATA : CH_TRAILER;
				d->linelen = 0;
			}
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -EBADMSG;
			d->state = d->remaining ? CH_DATA : CH_TRAILER;
			d->linelen = 0;
			i++;
			break;
		case CH_DATA: {
			if (produced == outlen)
				goto out;
			size_t n = len - i;
			if (n > d->remaining)
				n = (size_t)d->remaining;
			if (n > outlen - produced)
				n = outlen - produced;
			memcpy(o + produced, p + i, n);
			produced += n;
			i += n;
			d->remaining -= n;
			if (d->remaining == 0)
				d->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch == '\r') {
				d->state = CH_DATA_LF;
			} else if (ch == '\n') {
				d->state = CH_SIZE;
			} else {
				return -EBADMSG;
			}
			i++;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -EBADMSG;
			d->state = CH_SIZE;
			i++;
			break;
		case CH_TRAILER:
			/* Trailer lines until an empty one; linelen counts the current line. */
			if (ch == '\n') {
				if (d->linelen == 0)
					d->done = true;
				d->linelen = 0;
			} else if (ch != '\r' || d->linelen > 0) {
				if (++d->linelen > CHUNK_LINE_MAX)
					return -EBADMSG;
			}
			i++;
			break;
		default:
			return -EBADMSG;
		}
	}
out:
	*consumed = i;
	return (ssize_t)produced;
}

ssize_t cli_http_read_body(struct cli_http *c, void *buf, size_t len)
{
	if (len == 0)
		return 0;
	for (;;) {
		size_t avail = c->end - c->start;
		switch (c->mode) {
		case BODY_NONE:
			return 0;
		case BODY_LENGTH:
			if (c->remaining == 0)
				return 0;
			if (avail == 0) {
				ssize_t n = fill(c);
				if (n < 0)
					return n;
				if (n == 0)
					return -ECONNRESET;
				continue;
			} else {
				size_t n = avail;
				if (n > c->remaining)
					n = (size_t)c->remaining;
				if (n > len)
					n = len;
				memcpy(buf, c->buf + c->start, n);
				c->start += n;
				c->remaining -= n;
				return (ssize_t)n;
			}
		case BODY_EOF:
			if (avail == 0) {
				if (c->eof)
					return 0;
				ssize_t n = fill(c);
				if (n <= 0)
					return n;
				continue;
			} else {
				size_t n = avail < len ? avail : len;
				memcpy(buf, c->buf + c->start, n);
				c->start += n;
				return (ssize_t)n;
			}
		case BODY_CHUNKED: {
			if (c->chunked.done)
				return 0;
			size_t used = 0;
			ssize_t n = cli_chunked_decode(&c->chunked, c->buf + c->start, avail, &used,
						       buf, len);
			if (n < 0)
				return n;
			c->start += used;
			if (n > 0)
				return n;
			if (c->chunked.done)
				return 0;
			ssize_t f = fill(c);
			if (f < 0)
				return f;
			if (f == 0)
				return -ECONNRESET;
			continue;
		}
		}
	}
}

int cli_http_read_body_all(struct cli_http *c, size_t max, char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap >= max)
				return -EFBIG;
			size_t ncap = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap = ncap;
		}
		ssize_t n = cli_http_read_body(c, buf + len, cap - len);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

ssize_t cli_http_read_raw(struct cli_http *c, void *buf, size_t len)
{
	size_t avail = c->end - c->start;
	if (avail > 0) {
		size_t n = avail < len ? avail : len;
		memcpy(buf, c->buf + c->start, n);
		c->start += n;
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : n;
	}
}

int cli_stdcopy_feed(struct cli_stdcopy *s, const void *data, size_t len, cli_stdcopy_cb cb,
		     void *userdata)
{
	const uint8_t *p = data;
	while (len > 0) {
		if (s->remaining == 0) {
			size_t n = sizeof(s->hdr) - s->hdrlen;
			if (n > len)
				n = len;
			memcpy(s->hdr + s->hdrlen, p, n);
			s->hdrlen += n;
			p += n;
			len -= n;
			if (s->hdrlen < sizeof(s->hdr))
				return 0;
			s->hdrlen = 0;
			if (s->hdr[0] > CLI_STREAM_SYSERR)
				return -EBADMSG;
			s->stream = s->hdr[0];
			s->remaining = (uint32_t)s->hdr[4] << 24 | (uint32_t)s->hdr[5] << 16 |
				       (uint32_t)s->hdr[6] << 8 | s->hdr[7];
			if (s->remaining > CLI_STDCOPY_MAX_FRAME)
				return -EBADMSG;
			continue;
		}
		size_t n = len < s->remaining ? len : s->remaining;
		int r = cb(userdata, s->stream, p, n);
		if (r < 0)
			return r;
		p += n;
		len -= n;
		s->remaining -= (uint32_t)n;
	}
	return 0;
}

bool cli_stdcopy_idle(const struct cli_stdcopy *s)
{
	return s->hdrlen == 0 && s->remaining == 0;
}
