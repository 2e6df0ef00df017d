// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/http-internal.h"
#include "agent/http.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

static const struct api_route routes[] = {
	{EVHTTP_REQ_GET, "/_ping", api_ping, API_BODY_SMALL, false},
	{EVHTTP_REQ_HEAD, "/_ping", api_ping, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/version", api_version, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/info", api_info, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/lb", api_lb_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/metrics", api_metrics, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/create", api_container_create, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/containers/json", api_container_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/containers/{}/json", api_container_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/start", api_container_start, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/stop", api_container_stop, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/kill", api_container_kill, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/wait", api_container_wait, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/attach", api_container_attach, API_BODY_SMALL, true},
	{EVHTTP_REQ_POST, "/containers/{}/resize", api_container_resize, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/containers/{}/logs", api_container_logs, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/prune", api_container_prune, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/restart", api_container_restart, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/rename", api_container_rename, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/pause", api_container_pause, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/unpause", api_container_unpause, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/update", api_container_update, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/containers/{}/top", api_container_top, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/containers/{}/stats", api_container_stats, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/events", api_events, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/system/df", api_system_df, API_BODY_SMALL, false},
	{EVHTTP_REQ_DELETE, "/containers/{}", api_container_delete, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/containers/{}/exec", api_exec_create, API_BODY_JSON, false},
	{EVHTTP_REQ_POST, "/exec/{}/start", api_exec_start, API_BODY_JSON, true},
	{EVHTTP_REQ_GET, "/exec/{}/json", api_exec_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/exec/{}/resize", api_exec_resize, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/images/load", api_image_load, API_BODY_UPLOAD, false},
	{EVHTTP_REQ_POST, "/images/create", api_image_create, API_BODY_UPLOAD, false},
	{EVHTTP_REQ_GET, "/networks", api_network_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/networks/create", api_network_create, API_BODY_JSON, false},
	{EVHTTP_REQ_POST, "/networks/prune", api_network_prune, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/networks/{}", api_network_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_DELETE, "/networks/{}", api_network_delete, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/networks/{}/connect", api_network_connect, API_BODY_JSON, false},
	{EVHTTP_REQ_POST, "/networks/{}/disconnect", api_network_disconnect, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/volumes", api_volume_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/volumes/create", api_volume_create, API_BODY_JSON, false},
	{EVHTTP_REQ_POST, "/volumes/prune", api_volume_prune, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/volumes/{}", api_volume_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_DELETE, "/volumes/{}", api_volume_delete, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/images/json", api_image_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/images/{}/json", api_image_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/images/prune", api_image_prune, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/images/{}/tag", api_image_tag, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/images/{}/history", api_image_history, API_BODY_SMALL, false},
	{EVHTTP_REQ_DELETE, "/images/{}", api_image_delete, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/services/create", api_service_create, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/services", api_service_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/services/{}", api_service_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/services/{}/update", api_service_update, API_BODY_JSON, false},
	{EVHTTP_REQ_DELETE, "/services/{}", api_service_delete, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/services/{}/logs", api_service_logs, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/tasks", api_task_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/tasks/{}", api_task_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/swarm", api_swarm_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/swarm/init", api_swarm_init, API_BODY_JSON, false},
	{EVHTTP_REQ_POST, "/swarm/join", api_swarm_join, API_BODY_JSON, false},
	{EVHTTP_REQ_POST, "/swarm/leave", api_swarm_leave, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/swarm/update", api_swarm_update, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/swarm/unlockkey", api_swarm_unlockkey, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/nodes", api_node_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/nodes/{}", api_node_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/nodes/{}/update", api_node_update, API_BODY_JSON, false},
	{EVHTTP_REQ_POST, "/secrets/create", api_secret_create, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/secrets", api_secret_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/secrets/{}", api_secret_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/secrets/{}/update", api_secret_update, API_BODY_JSON, false},
	{EVHTTP_REQ_DELETE, "/secrets/{}", api_secret_delete, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/configs/create", api_config_create, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/configs", api_config_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/configs/{}", api_config_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/configs/{}/update", api_config_update, API_BODY_JSON, false},
	{EVHTTP_REQ_DELETE, "/configs/{}", api_config_delete, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/policies/create", api_policy_create, API_BODY_JSON, false},
	{EVHTTP_REQ_GET, "/policies", api_policy_list, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/policies/explain", api_policy_explain, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/policies/log", api_policy_log, API_BODY_SMALL, false},
	{EVHTTP_REQ_GET, "/policies/{}", api_policy_inspect, API_BODY_SMALL, false},
	{EVHTTP_REQ_POST, "/policies/{}/update", api_policy_update, API_BODY_JSON, false},
	{EVHTTP_REQ_DELETE, "/policies/{}", api_policy_delete, API_BODY_SMALL, false},
};

/* An idle keep-alive connection is dropped after this; a request head or body
 * has its own deadlines (agent/http-guard.c). A request a handler holds
 * (api_req_defer) has no read deadline until it is answered. */
#define HTTP_IO_TIMEOUT_S 30
#define HTTP_MAX_HEAD	  (64 * 1024) /* request line and headers */

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	default:
		return "OTHER";
	}
}

/* Strips an optional "/v1.NN" API version prefix, as Docker accepts both. */
static const char *strip_version(const char *path)
{
	if (path[0] == '/' && path[1] == 'v' && isdigit((unsigned char)path[2])) {
		const char *p = path + 2;
		while (isdigit((unsigned char)*p) || *p == '.')
			p++;
		if (*p == '/')
			return p;
	}
	return path;
}

/* Routes that read or change the cluster's state (services, tasks, nodes,
 * secrets, configs, and the writes of policies): a worker node answers them as Docker's workers do,
 * so that a client never acts on a view a worker does not keep. Its own
 * containers, images and the policy explanations of its own traffic stay. */
static bool route_cluster_only(const char *pattern, enum evhttp_cmd_type m)
{
	static const char *const prefixes[] = {"/services", "/tasks", "/nodes", "/secrets",
					       "/configs"};
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (str_has_prefix(pattern, prefixes[i]))
			return true;
	if (strcmp(pattern, "/swarm") == 0 || strcmp(pattern, "/swarm/update") == 0)
		return true;
	return str_has_prefix(pattern, "/policies") && m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD;
}

#define WORKER_REFUSAL                                                                     \
	"This node is not a swarm manager. Worker nodes can't be used to view or modify "  \
	"cluster state. Please run this command on a manager node or promote the current " \
	"node to a manager."

/* Matches path against a pattern; "{}" matches one non-empty segment (URL-decoded
 * into r->param_buf). Image names contain '/', so a trailing "{}" after
 * "/images/" and before "/json" may span segments. */
static bool route_match(const char *pattern, const char *path, struct api_req *r)
{
	int np = 0;
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (p[0] == '{' && p[1] == '}') {
			p += 2;
			const char *end;
			if (str_has_prefix(pattern, "/images/")) {
				/* greedy up to the pattern's remaining suffix */
				size_t rest = strlen(p), sl = strlen(s);
				if (sl <= rest || strcmp(s + sl - rest, p) != 0)
					return false;
				end = s + sl - rest;
			} else {
				end = strchr(s, '/');
				if (!end)
					end = s + strlen(s);
			}
			size_t len = (size_t)(end - s);
			if (len == 0 || np >= 2)
				return false;
			char raw[256];
			if (len >= sizeof(raw))
				return false;
			memcpy(raw, s, len);
			raw[len] = '\0';
			char *dec = evhttp_uridecode(raw, 0, NULL);
			if (!dec)
				return false;
			snprintf(r->param_buf[np], sizeof(r->param_buf[np]), "%s", dec);
			free(dec);
			r->params[np] = r->param_buf[np];
			np++;
			s = end;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	if (*s == '/' && s[1] == '\0')
		s++;
	return *p == '\0' && *s == '\0';
}

const struct api_route *api_route_find(enum evhttp_cmd_type method, const char *path)
{
	path = strip_version(path);
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		struct api_req probe = {0};
		if (routes[i].method == method && route_match(routes[i].pattern, path, &probe))
			return &routes[i];
	}
	return NULL;
}

void api_req_conn_closed(struct api_req *r)
{
	/* libevent frees the request with the connection; the owner of a deferred
	 * request learns it must not reply. */
	r->cancelled = true;
	r->req = NULL;
	if (r->on_cancel)
		r->on_cancel(r);
}

static void conn_close_cb(struct evhttp_connection *evcon, void *arg)
{
	api_req_conn_closed(arg);
}

/* A deferred request stops being watched for its connection's close. */
static void req_undefer(struct api_req *r)
{
	if (!r->deferred || !r->req)
		return;
	r->deferred = false;
	if (http_guard_undefer(r->req))
		return;
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
}

static void dispatch_cb(struct evhttp_request *req, void *arg)
{
	struct agent *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct api_req *r = calloc(1, sizeof(*r));
	if (!r) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	r->agent = a;
	r->req = req;
	TAILQ_INIT(&r->query);
	if (!path) {
		api_reply_error(r, 400, "malformed request URI");
		return;
	}
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	if (q && evhttp_parse_query_str(q, &r->query) < 0) {
		api_reply_error(r, 400, "malformed query string");
		return;
	}
	path = strip_version(path);
	log_debug("api: %s %s", method_name(m), evhttp_request_get_uri(req));
	bool path_known = false;
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		struct api_req probe = {0};
		if (!route_match(routes[i].pattern, path, &probe))
			continue;
		path_known = true;
		/* before the method: a worker refuses what a manager has too */
		if (a->cfg.role && strcmp(a->cfg.role, "worker") == 0 &&
		    route_cluster_only(routes[i].pattern, m)) {
			api_reply_error(r, 503, "%s", WORKER_REFUSAL);
			return;
		}
		if (routes[i].method != m)
			continue;
		memcpy(r->param_buf, probe.param_buf, sizeof(r->param_buf));
		for (int k = 0; k < 2; k++)
			r->params[k] = probe.params[k] ? r->param_buf[k] : NULL;
		routes[i].fn(r);
		return;
	}
	if (path_known)
		api_reply_error(r, 405, "method %s not allowed on %s", method_name(m), path);
	else
		api_reply_error(r, 404, "page not found: %s", path);
}

static struct bufferevent *req_bev(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
	return evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
}

/* read_deadline: false while a handler holds the request (a wait, a log
 * follow), when the client has nothing to send. */
static void req_set_timeouts(struct evhttp_request *req, bool read_deadline)
{
	struct bufferevent *bev = req_bev(req);
	struct timeval tv = {HTTP_IO_TIMEOUT_S, 0};
	if (bev)
		bufferevent_set_timeouts(bev, read_deadline ? &tv : NULL, &tv);
}

int api_server_start(struct agent *a, struct shoal_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(a->cfg.socket_path) >= sizeof(sa.sun_path))
		return shoal_err_set(err, ENAMETOOLONG, "socket path %s is too long (max %zu)",
				     a->cfg.socket_path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, a->cfg.socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return shoal_err_errno(err, errno, "socket");
	/* A live agent on this socket must not be displaced; a stale file may. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return shoal_err_set(
			err, EADDRINUSE,
			"another shoald is already serving %s; stop it or pass --socket",
			a->cfg.socket_path);
	}
	unlink(a->cfg.socket_path);
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		close(fd);
		return shoal_err_errno(err, e, "listening on %s", a->cfg.socket_path);
	}
	chmod(a->cfg.socket_path, 0660);
	a->http = evhttp_new(a->base);
	if (!a->http) {
		close(fd);
		return shoal_err_set(err, ENOMEM, "evhttp_new");
	}
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT);
	/* a backstop: the guard applies each route's own limit first, and upload
	 * bodies never reach evhttp */
	evhttp_set_max_body_size(a->http, AGENT_MAX_JSON_BODY);
	evhttp_set_max_headers_size(a->http, HTTP_MAX_HEAD);
	evhttp_set_timeout(a->http, HTTP_IO_TIMEOUT_S);
	evhttp_set_default_content_type(a->http, "application/json");
	evhttp_set_gencb(a->http, dispatch_cb, a);
	struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(a->http, fd);
	if (!bound) {
		close(fd);
		return shoal_err_set(err, EIO, "evhttp_accept_socket failed");
	}
	struct http_guard_opts go = {.max_connections = a->cfg.max_connections,
				     .upload_dir = a->cfg.data_dir};
	return http_guard_start(a->base, a->http, evhttp_bound_socket_get_listener(bound), &go,
				err);
}

void api_server_stop(struct agent *a)
{
	if (a->http) {
		evhttp_free(a->http);
		a->http = NULL;
	}
	http_guard_stop();
	if (a->cfg.socket_path)
		unlink(a->cfg.socket_path);
}

void api_req_free(struct api_req *r)
{
	if (!r)
		return;
	req_undefer(r);
	evhttp_clear_headers(&r->query);
	free(r);
}

struct api_req *api_req_internal(struct agent *a, void (*on_reply)(void *, int, const char *),
				 void *arg)
{
	struct api_req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->agent = a;
	TAILQ_INIT(&r->query);
	r->on_reply = on_reply;
	r->reply_arg = arg;
	return r;
}

void api_req_defer(struct api_req *r)
{
	r->deferred = true;
	if (!r->req)
		return;
	if (!http_guard_defer(r->req, r)) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
		if (evcon)
			evhttp_connection_set_closecb(evcon, conn_close_cb, r);
	}
	req_set_timeouts(r->req, false);
}

static void send_buffer(struct api_req *r, int status, struct evbuffer *buf)
{
	if (r->on_reply) {
		size_t n = buf ? evbuffer_get_length(buf) : 0;
		char *body = malloc(n + 1);
		if (body) {
			if (n)
				evbuffer_copyout(buf, body, n);
			body[n] = '\0';
		}
		r->on_reply(r->reply_arg, status, body ? body : "");
		free(body);
		api_req_free(r);
		return;
	}
	if (r->req && !r->cancelled && r->streaming) {
		size_t n = buf ? evbuffer_get_length(buf) : 0;
		if (status >= 400 && n) {
			json_t *m = json_loadb((const char *)evbuffer_pullup(buf, (ev_ssize_t)n), n,
					       0, NULL);
			json_t *e = json_pack(
				"{s:i, s:{s:s}}", "StatusCode", -1, "Error", "Message",
				json_string_value(json_object_get(m, "message")) ?: "error");
			char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
			if (s) {
				api_stream_chunk(r, s, strlen(s));
				api_stream_chunk(r, "\n", 1);
			}
			free(s);
			json_decref(e);
			json_decref(m);
		} else if (n) {
			api_stream_chunk(r, evbuffer_pullup(buf, (ev_ssize_t)n), n);
		}
		api_stream_end(r);
		return;
	}
	if (r->req && !r->cancelled) {
		const char *reason = status < 300 ? "OK" : status == 304 ? "Not Modified" : "Error";
		if (evhttp_request_get_command(r->req) == EVHTTP_REQ_HEAD && buf) {
			/* the head a GET would have, without the body */
			char len[32];
			snprintf(len, sizeof(len), "%zu", evbuffer_get_length(buf));
			evhttp_add_header(evhttp_request_get_output_headers(r->req),
					  "Content-Length", len);
			evbuffer_drain(buf, evbuffer_get_length(buf));
		}
		if (r->deferred) {
			req_undefer(r);
			req_set_timeouts(r->req, true);
		}
		if (http_guard_replying(r->req))
			evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection",
					  "close");
		evhttp_send_reply(r->req, status, reason, buf);
	}
	api_req_free(r);
}

void api_reply_json(struct api_req *r, int status, json_t *body)
{
	struct evbuffer *buf = evbuffer_new();
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (r->req) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
		evhttp_add_header(h, "Content-Type", "application/json");
		evhttp_add_header(h, "Api-Version", "1.43");
		evhttp_add_header(h, "Server", "shoald/" SHOAL_VERSION);
	}
	if (s) {
		evbuffer_add(buf, s, strlen(s));
		evbuffer_add(buf, "\n", 1);
		free(s);
	}
	send_buffer(r, status, buf);
	evbuffer_free(buf);
}

void api_reply_empty(struct api_req *r, int status)
{
	if (r->req) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
		evhttp_add_header(h, "Api-Version", "1.43");
	}
	send_buffer(r, status, NULL);
}

void api_reply_raw(struct api_req *r, int status, const char *content_type, const void *data,
		   size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	if (r->req) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
		evhttp_add_header(h, "Content-Type", content_type);
		evhttp_add_header(h, "Api-Version", "1.43");
	}
	evbuffer_add(buf, data, len);
	send_buffer(r, status, buf);
	evbuffer_free(buf);
}

void api_reply_error(struct api_req *r, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (status >= 500)
		log_error("api: %s", msg);
	else
		log_debug("api: %d %s", status, msg);
	api_reply_json(r, status, json_pack("{s:s}", "message", msg));
}

void api_reply_err(struct api_req *r, const struct shoal_err *err)
{
	api_reply_error(r, shoal_err_http_status(err), "%s", err->msg);
}

const char *api_query(struct api_req *r, const char *key)
{
	return evhttp_find_header(&r->query, key);
}

bool api_query_bool(struct api_req *r, const char *key, bool def)
{
	const char *v = api_query(r, key);
	if (!v)
		return def;
	return !(strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "") == 0);
}

int api_query_int(struct api_req *r, const char *key, int64_t def, int64_t *ret)
{
	const char *v = api_query(r, key);
	if (!v || !*v) {
		*ret = def;
		return 0;
	}
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end) {
		api_reply_error(r, 400, "query parameter %s=%s is not an integer", key, v);
		return -EINVAL;
	}
	*ret = n;
	return 0;
}

json_t *api_body_json(struct api_req *r, bool allow_empty)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	if (len > AGENT_MAX_JSON_BODY) {
		api_reply_error(r, 413,
				"request body is %zu bytes; the limit for JSON bodies is %u", len,
				AGENT_MAX_JSON_BODY);
		return NULL;
	}
	if (len == 0) {
		if (allow_empty)
			return json_object();
		api_reply_error(r, 400, "request body is empty; a JSON object is required");
		return NULL;
	}
	const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	json_error_t jerr;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		api_reply_error(r, 400, "request body is not valid JSON: %s (line %d, column %d)",
				jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		api_reply_error(r, 400, "request body must be a JSON object");
		return NULL;
	}
	return j;
}

struct bufferevent *api_hijack(struct api_req *r, const char *content_type)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	const char *upgrade =
		evhttp_find_header(evhttp_request_get_input_headers(r->req), "Upgrade");
	req_undefer(r); /* the stream owns the connection now */
	http_guard_hijacked(r->req);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	if (upgrade)
		evbuffer_add_printf(bufferevent_get_output(bev),
				    "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\n"
				    "Connection: Upgrade\r\nUpgrade: tcp\r\n"
				    "Api-Version: 1.43\r\n\r\n",
				    content_type);
	else
		evbuffer_add_printf(bufferevent_get_output(bev),
				    "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
				    "Api-Version: 1.43\r\n\r\n",
				    content_type);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return bev;
}

void api_hijack_close(struct evhttp_connection *evcon)
{
	evhttp_connection_free(evcon);
}

void api_stream_start(struct api_req *r, int status, const char *content_type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Api-Version", "1.43");
	if (http_guard_replying(r->req))
		evhttp_add_header(h, "Connection", "close");
	/* a stream (logs --follow) may be silent for long: no read deadline */
	req_set_timeouts(r->req, false);
	r->streaming = true;
	evhttp_send_reply_start(r->req, status, "OK");
}

void api_stream_chunk(struct api_req *r, const void *data, size_t len)
{
	if (!r->req || r->cancelled || len == 0)
		return;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, data, len);
	evhttp_send_reply_chunk(r->req, b);
	evbuffer_free(b);
}

void api_stream_end(struct api_req *r)
{
	if (r->req && !r->cancelled) {
		req_undefer(r);
		req_set_timeouts(r->req, true);
		evhttp_send_reply_end(r->req);
	}
	api_req_free(r);
}
