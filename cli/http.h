/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

/* A small blocking HTTP/1.1 client for the agent's unix socket: one request
 * per connection, Content-Length or chunked bodies both ways, and Docker's
 * hijack (101 UPGRADED, then a raw byte stream on the same socket). */

#define CLI_HTTP_MAX_HEAD (64 * 1024)	     /* status line + headers */
#define CLI_HTTP_MAX_BODY (64 * 1024 * 1024) /* bodies read whole into memory */

struct cli_http;

struct cli_http_req {
	const char *method;
	const char *path;	  /* with query string, already escaped */
	const char *content_type; /* NULL: none */
	const void *body;	  /* sent with Content-Length */
	size_t body_len;
	int body_fd;	     /* >= 0: stream the body from this fd (see body_fd_len) */
	int64_t body_fd_len; /* >= 0: Content-Length of body_fd, < 0: chunked upload */
	bool upgrade;	     /* Connection: Upgrade, Upgrade: tcp */
	const char *headers; /* more header lines, each "Name: value\r\n"; NULL: none */
};

struct cli_http_resp {
	int status;
	char reason[64];
	char content_type[128];
	int64_t content_length; /* -1 when absent */
	bool chunked;
	bool upgraded; /* 101 */
};

/* Parses "unix:///path" (or a bare absolute path) into the socket path. */
int cli_http_parse_host(const char *host, char *ret_path, size_t size);

/* Connects to the unix socket path; -errno on failure. */
int cli_http_connect(const char *path, struct cli_http **ret);
/* Wraps an already connected stream socket (takes ownership of fd). */
int cli_http_from_fd(int fd, struct cli_http **ret);
struct cli_http *cli_http_free(struct cli_http *c);
int cli_http_fd(const struct cli_http *c);

int cli_http_send(struct cli_http *c, const struct cli_http_req *req, struct shoal_err *err);
/* Reads the status line and headers. */
int cli_http_read_head(struct cli_http *c, struct cli_http_resp *ret, struct shoal_err *err);
/* Reads decoded body bytes (Content-Length, chunked, or to EOF); 0 at the end. */
ssize_t cli_http_read_body(struct cli_http *c, void *buf, size_t len);
/* Reads the whole body (at most max bytes, -EFBIG past it), NUL-terminated. */
int cli_http_read_body_all(struct cli_http *c, size_t max, char **ret, size_t *ret_len);
/* After an upgrade: raw stream bytes, bytes already buffered first; 0 at EOF. */
ssize_t cli_http_read_raw(struct cli_http *c, void *buf, size_t len);
/* Number of raw bytes buffered but not yet returned by cli_http_read_raw. */
size_t cli_http_buffered(const struct cli_http *c);

/* Chunked transfer decoding as a pure state machine, fed whatever arrived. */
struct cli_chunked {
	int state;
	uint64_t remaining;
	size_t linelen;
	bool done;
};
/* Decodes from in[0..len) into out[0..outlen). Sets *consumed to the bytes of
 * input used; returns the bytes produced, or -EBADMSG on malformed input. When
 * the terminating chunk and trailers are consumed, d->done is set. */
ssize_t cli_chunked_decode(struct cli_chunked *d, const void *in, size_t len, size_t *consumed,
			   void *out, size_t outlen);

/* Docker's stdcopy framing: [stream u8][0 0 0][size u32 BE] then size bytes. */
enum { CLI_STREAM_STDIN = 0, CLI_STREAM_STDOUT = 1, CLI_STREAM_STDERR = 2, CLI_STREAM_SYSERR = 3 };
#define CLI_STDCOPY_MAX_FRAME (64 * 1024 * 1024)

typedef int (*cli_stdcopy_cb)(void *userdata, int stream, const void *data, size_t len);
struct cli_stdcopy {
	uint8_t hdr[8];
	size_t hdrlen;
	uint32_t remaining;
	int stream;
};
/* Feeds received bytes; calls cb for each piece of payload with its stream.
 * Returns 0, -EBADMSG for a bad header, or the first negative value from cb. */
int cli_stdcopy_feed(struct cli_stdcopy *s, const void *data, size_t len, cli_stdcopy_cb cb,
		     void *userdata);
/* True when no frame is half-received (clean end of stream). */
bool cli_stdcopy_idle(const struct cli_stdcopy *s);
