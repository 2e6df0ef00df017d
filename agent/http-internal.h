/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include <event2/http.h>
#include <event2/listener.h>

#include "agent/http.h"

struct agent;

/* agent/http.c: the route a request would take (NULL when none); path without
 * the query, with or without the /v1.NN prefix. */
const struct api_route *api_route_find(enum evhttp_cmd_type method, const char *path);

/* agent/http.c: a deferred request's connection is going; the request is
 * cancelled (its owner learns through on_cancel). */
void api_req_conn_closed(struct api_req *r);

/*
 * agent/http-guard.c: every API connection has a guard that sees the bytes read
 * before evhttp does and runs each request through http_parser, so that
 * - the body limit of the request's route is applied before the body is
 *   buffered (a Content-Length above it is answered at once);
 * - a request head must arrive complete within HTTP_HEAD_TIMEOUT_S of its first
 *   byte, and a body (but an upload's) within HTTP_BODY_TIMEOUT_S of its head:
 *   a client trickling bytes does not keep a connection for ever;
 * - an upload route's body goes to a file as it arrives; evhttp sees the head
 *   only (with Content-Length: 0) and the handler gets the file;
 * - connections are capped; past the cap the listener pauses.
 * A connection that becomes a raw stream (attach, exec) is passed through.
 */
#define HTTP_HEAD_TIMEOUT_S 10
#define HTTP_BODY_TIMEOUT_S 30
/* JSON bodies buffered at once, over all connections */
#define HTTP_BODY_BUDGET (256ll << 20)

struct http_guard_opts {
	int max_connections;	/* 0: the default, bounded by RLIMIT_NOFILE */
	const char *upload_dir; /* where upload files are made (the data dir) */
};

/* Installs the guard on http's connections and the cap on its listener. */
int http_guard_start(struct event_base *base, struct evhttp *http, struct evconnlistener *listener,
		     const struct http_guard_opts *o, struct shoal_err *err);
void http_guard_stop(void);
/* The request a handler holds on its connection, cancelled with it (false:
 * an unguarded connection, where the caller watches the close itself). */
bool http_guard_defer(struct evhttp_request *req, struct api_req *r);
bool http_guard_undefer(struct evhttp_request *req);
/* The request's connection became a raw stream: pass its bytes through. */
void http_guard_hijacked(struct evhttp_request *req);
/* The request is being answered (once per request, as its answer starts); true
 * when its connection must close after the answer (a stream route answered
 * without a stream, a refused request behind it). */
bool http_guard_replying(struct evhttp_request *req);
/* The connection cap in force (after the RLIMIT_NOFILE bound). */
int http_guard_max_connections(void);
