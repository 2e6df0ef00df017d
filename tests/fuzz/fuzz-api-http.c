// SPDX-License-Identifier: Apache-2.0
/* libFuzzer over the whole HTTP request path of shoald: the input is the raw
 * bytes of a client connection (method, path, query, headers, body, several
 * pipelined requests, garbage), written to the agent's real API server
 * (agent/http.c and its connection guard, agent/http-guard.c, over libevent's
 * evhttp, on a unix socket) with the routes
 * answered by stubs that use the same request helpers as the real handlers
 * (JSON bodies, query integers, deferred replies, streams, hijacks). Any input
 * must end in replies or a closed connection, never a crash, a leak or a hang. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/http.h"
#include "lib/log.h"

#define FUZZ_LOOP_TURNS 400 /* event loop turns per input before it counts as a hang */

static struct agent agent;
static char sock_path[108];

static void reply_ok(struct api_req *r)
{
	api_reply_json(r, 200, json_pack("{s:s?, s:s?}", "a", r->params[0], "b", r->params[1]));
}

static void with_body(struct api_req *r)
{
	json_t *j = api_body_json(r, true);
	if (j)
		api_reply_json(r, 201, j);
}

static void with_query(struct api_req *r)
{
	int64_t n;
	if (api_query_int(r, "t", 10, &n) < 0)
		return;
	api_reply_json(r, 200,
		       json_pack("{s:I, s:b, s:s?}", "t", (json_int_t)n, "all",
				 api_query_bool(r, "all", false), "name", api_query(r, "name")));
}

/* A deferred reply, answered on the next loop turn unless the client left. */
struct later {
	struct api_req *r;
};

static void later_cancel(struct api_req *r)
{
	struct later *l = r->userdata;
	l->r = NULL;
	api_req_free(r);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;
	if (l->r) {
		l->r->on_cancel = NULL;
		api_reply_json(l->r, 200, json_pack("{s:i}", "StatusCode", 0));
	}
	free(l);
}

static void deferred(struct api_req *r)
{
	struct later *l = calloc(1, sizeof(*l));
	if (!l) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	l->r = r;
	r->userdata = l;
	r->on_cancel = later_cancel;
	api_req_defer(r);
	struct timeval tv = {0, 0};
	event_base_once(agent.base, -1, EV_TIMEOUT, later_cb, l, &tv);
}

static void streamed(struct api_req *r)
{
	api_stream_start(r, 200, "application/octet-stream");
	api_stream_chunk(r, "line\n", 5);
	api_stream_end(r);
}

static void hijacked(struct api_req *r)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	struct bufferevent *bev = api_hijack(r, "application/vnd.docker.raw-stream");
	r->req = NULL;
	api_req_free(r);
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
	api_hijack_close(evcon);
}

static void upload_done(struct api_req *r, int fd, const struct shoal_err *err, void *arg)
{
	if (!r)
		return;
	if (fd < 0) {
		api_reply_err(r, err);
		return;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	close(fd);
	api_reply_json(r, 200, json_pack("{s:I}", "Size", (json_int_t)size));
}

static void uploaded(struct api_req *r)
{
	api_body_upload(r, upload_done, NULL);
}

void api_ping(struct api_req *r)
{
	api_reply_raw(r, 200, "text/plain", "OK", 2);
}
void api_version(struct api_req *r)
{
	reply_ok(r);
}
void api_info(struct api_req *r)
{
	reply_ok(r);
}
void api_lb_list(struct api_req *r)
{
	reply_ok(r);
}
void api_metrics(struct api_req *r)
{
	api_reply_raw(r, 200, "text/plain", "", 0);
}
void api_container_create(struct api_req *r)
{
	with_body(r);
}
void api_container_list(struct api_req *r)
{
	with_query(r);
}
void api_container_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_container_start(struct api_req *r)
{
	deferred(r);
}
void api_container_stop(struct api_req *r)
{
	with_query(r);
}
void api_container_kill(struct api_req *r)
{
	api_reply_empty(r, 204);
}
void api_container_wait(struct api_req *r)
{
	deferred(r);
}
void api_container_delete(struct api_req *r)
{
	with_query(r);
}
void api_container_attach(struct api_req *r)
{
	hijacked(r);
}
void api_container_resize(struct api_req *r)
{
	with_query(r);
}
void api_container_logs(struct api_req *r)
{
	streamed(r);
}
void api_exec_create(struct api_req *r)
{
	with_body(r);
}
void api_exec_start(struct api_req *r)
{
	hijacked(r);
}
void api_exec_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_exec_resize(struct api_req *r)
{
	with_query(r);
}
void api_image_load(struct api_req *r)
{
	uploaded(r);
}
void api_image_create(struct api_req *r)
{
	uploaded(r);
}
void api_image_list(struct api_req *r)
{
	reply_ok(r);
}
void api_image_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_image_delete(struct api_req *r)
{
	reply_ok(r);
}
void api_container_restart(struct api_req *r)
{
	deferred(r);
}
void api_container_rename(struct api_req *r)
{
	with_query(r);
}
void api_container_pause(struct api_req *r)
{
	reply_ok(r);
}
void api_container_unpause(struct api_req *r)
{
	reply_ok(r);
}
void api_container_update(struct api_req *r)
{
	with_body(r);
}
void api_container_top(struct api_req *r)
{
	with_query(r);
}
void api_container_stats(struct api_req *r)
{
	streamed(r);
}
void api_events(struct api_req *r)
{
	streamed(r);
}
void api_system_df(struct api_req *r)
{
	reply_ok(r);
}
void api_swarm_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_swarm_init(struct api_req *r)
{
	with_body(r);
}
void api_swarm_join(struct api_req *r)
{
	with_body(r);
}
void api_swarm_leave(struct api_req *r)
{
	reply_ok(r);
}
void api_swarm_update(struct api_req *r)
{
	with_body(r);
}
void api_swarm_unlockkey(struct api_req *r)
{
	reply_ok(r);
}
void api_container_prune(struct api_req *r)
{
	with_query(r);
}
void api_image_prune(struct api_req *r)
{
	with_query(r);
}
void api_image_tag(struct api_req *r)
{
	with_query(r);
}
void api_image_history(struct api_req *r)
{
	reply_ok(r);
}
void api_service_create(struct api_req *r)
{
	with_body(r);
}
void api_service_list(struct api_req *r)
{
	with_query(r);
}
void api_service_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_service_update(struct api_req *r)
{
	with_body(r);
}
void api_service_delete(struct api_req *r)
{
	reply_ok(r);
}
void api_service_logs(struct api_req *r)
{
	streamed(r);
}
void api_task_list(struct api_req *r)
{
	with_query(r);
}
void api_task_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_node_list(struct api_req *r)
{
	reply_ok(r);
}
void api_node_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_node_update(struct api_req *r)
{
	with_body(r);
}
void api_network_list(struct api_req *r)
{
	with_query(r);
}
void api_network_inspect(struct api_req *r)
{
	with_query(r);
}
void api_network_create(struct api_req *r)
{
	with_body(r);
}
void api_network_delete(struct api_req *r)
{
	reply_ok(r);
}
void api_network_prune(struct api_req *r)
{
	with_query(r);
}
void api_network_connect(struct api_req *r)
{
	with_body(r);
}
void api_network_disconnect(struct api_req *r)
{
	with_body(r);
}
void api_volume_list(struct api_req *r)
{
	with_query(r);
}
void api_volume_create(struct api_req *r)
{
	with_body(r);
}
void api_volume_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_volume_delete(struct api_req *r)
{
	with_query(r);
}
void api_volume_prune(struct api_req *r)
{
	with_query(r);
}
void api_policy_create(struct api_req *r)
{
	with_body(r);
}
void api_policy_list(struct api_req *r)
{
	reply_ok(r);
}
void api_policy_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_policy_update(struct api_req *r)
{
	with_body(r);
}
void api_policy_delete(struct api_req *r)
{
	reply_ok(r);
}
void api_policy_explain(struct api_req *r)
{
	with_query(r);
}
void api_policy_log(struct api_req *r)
{
	streamed(r);
}
void api_secret_create(struct api_req *r)
{
	with_body(r);
}
void api_secret_list(struct api_req *r)
{
	reply_ok(r);
}
void api_secret_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_secret_update(struct api_req *r)
{
	with_body(r);
}
void api_secret_delete(struct api_req *r)
{
	with_query(r);
}
void api_config_create(struct api_req *r)
{
	with_body(r);
}
void api_config_list(struct api_req *r)
{
	reply_ok(r);
}
void api_config_inspect(struct api_req *r)
{
	reply_ok(r);
}
void api_config_update(struct api_req *r)
{
	with_body(r);
}
void api_config_delete(struct api_req *r)
{
	with_query(r);
}

static void remove_socket(void)
{
	unlink(sock_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_LVL_ERROR);
	snprintf(sock_path, sizeof(sock_path), "/tmp/shoal-fuzz-http.%d.sock", (int)getpid());
	agent.cfg.socket_path = sock_path;
	agent.cfg.data_dir = "/tmp"; /* upload bodies: unlinked files there */
	agent.base = event_base_new();
	struct shoal_err err = {0};
	if (!agent.base || api_server_start(&agent, &err) < 0) {
		fprintf(stderr, "fuzz-api-http: starting the API server: %s\n", err.msg);
		abort();
	}
	atexit(remove_socket);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	/* the input fits the socket buffer (-max_len), so one write sends it all */
	int buf = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (len && write(fd, data, len) != (ssize_t)len)
		abort();
	shutdown(fd, SHUT_WR);
	bool closed = false;
	for (int turn = 0; turn < FUZZ_LOOP_TURNS && !closed; turn++) {
		event_base_loop(agent.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
		char out[4096];
		ssize_t n;
		while ((n = read(fd, out, sizeof(out))) > 0)
			;
		closed = n == 0 || (n < 0 && errno != EAGAIN);
	}
	close(fd);
	/* let the server see the close and free the connection */
	for (int turn = 0; turn < 8; turn++)
		event_base_loop(agent.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
	return 0;
}
