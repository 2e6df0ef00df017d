/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "lib/err.h"
#include "lib/json.h"

struct agent;

/* One API request being served. Handlers either reply before returning or keep
 * the request (api_req_defer) and reply later from another callback. */
struct api_req {
	struct agent *agent;
	struct evhttp_request *req;
	struct evkeyvalq query;
	const char *params[2]; /* the {} segments of the route, in order */
	char param_buf[2][256];
	bool deferred;
	bool cancelled; /* client went away while deferred */
	bool streaming; /* the answer's head is out (api_stream_start) */
	void (*on_cancel)(struct api_req *r);
	void *userdata;
	/* Internal requests (the agent calling its own handlers, e.g. the task
	 * executor starting a container) have no HTTP request; the reply goes
	 * here instead: status and body (NUL-terminated, may be ""). */
	void (*on_reply)(void *arg, int status, const char *body);
	void *reply_arg;
};

typedef void (*api_handler)(struct api_req *r);

/* What a route takes as its body; the connection guard (agent/http-guard.c)
 * applies the limit before anything is buffered. */
enum api_body {
	API_BODY_SMALL,	 /* none expected; up to API_MAX_SMALL_BODY tolerated */
	API_BODY_JSON,	 /* a JSON document, up to AGENT_MAX_JSON_BODY */
	API_BODY_UPLOAD, /* a tarball, streamed to a file, up to AGENT_MAX_IMAGE_BODY */
};

struct api_route {
	enum evhttp_cmd_type method;
	const char *pattern; /* "/containers/{}/start" */
	api_handler fn;
	enum api_body body;
	bool hijack; /* the connection may become a raw stream after the request */
};

#define API_MAX_SMALL_BODY (64 * 1024)

int api_server_start(struct agent *a, struct shoal_err *err);
void api_server_stop(struct agent *a);

/* Replies. Each frees r unless it was deferred-and-cancelled bookkeeping says otherwise. */
void api_reply_json(struct api_req *r, int status, json_t *body); /* steals body */
void api_reply_empty(struct api_req *r, int status);
void api_reply_raw(struct api_req *r, int status, const char *content_type, const void *data,
		   size_t len);
void api_reply_error(struct api_req *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void api_reply_err(struct api_req *r, const struct shoal_err *err);
void api_req_defer(struct api_req *r);
/* A request with no HTTP behind it, answered through on_reply. */
struct api_req *api_req_internal(struct agent *a, void (*on_reply)(void *, int, const char *),
				 void *arg);
void api_req_free(struct api_req *r);

/* Query parameters. */
const char *api_query(struct api_req *r, const char *key);
bool api_query_bool(struct api_req *r, const char *key, bool def);
/* -EINVAL (and an error reply already sent) when present but not an integer. */
int api_query_int(struct api_req *r, const char *key, int64_t def, int64_t *ret);

/* Parses the body as a JSON object (empty body -> empty object when allow_empty).
 * On failure replies 400/413 and returns NULL. */
json_t *api_body_json(struct api_req *r, bool allow_empty);

/* The body of an API_BODY_UPLOAD route, written to an unlinked file in the data
 * dir as it arrives. done is called once, on the loop: with the file (offset 0;
 * the callee closes it), or with fd -1 and the reason (err->status is the HTTP
 * status to answer), and then answers r; or with r NULL when the client went
 * away (only arg is to be released). r is deferred meanwhile. */
typedef void (*api_upload_cb)(struct api_req *r, int fd, const struct shoal_err *err, void *arg);
void api_body_upload(struct api_req *r, api_upload_cb done, void *arg);

/* Takes over the connection for a raw stream (Docker's hijack). Sends the 101
 * (when the client asked to upgrade) or a 200 with raw-stream content type,
 * and returns the connection's bufferevent with timeouts cleared; the caller
 * installs its callbacks and later calls api_hijack_close(). */
struct bufferevent *api_hijack(struct api_req *r, const char *content_type);
void api_hijack_close(struct evhttp_connection *evcon);

/* Chunked streaming replies (logs, image load progress). A request whose stream
 * has started may still be answered with api_reply_*: the body is then the
 * stream's last chunk (a wait's answer, whose head goes out at once as Docker's
 * does); an error status becomes Docker's wait error, {"StatusCode": -1,
 * "Error": {"Message": ...}}, since the status line is gone. */
void api_stream_start(struct api_req *r, int status, const char *content_type);
void api_stream_chunk(struct api_req *r, const void *data, size_t len);
void api_stream_end(struct api_req *r);
