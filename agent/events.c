// SPDX-License-Identifier: Apache-2.0
/* The node's event bus and GET /events (agent/events.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
#include "agent/events.h"
#include "agent/networks.h"
#include "lib/cleanup.h"
#include "lib/util.h"

struct follower {
	struct follower *next;
	struct api_req *r;
	json_t *filters;
	int64_t until_ns; /* 0: none */
	struct event *until_timer;
};

/* Events as Docker's JSON, oldest at ring[head], n of them. */
static struct {
	json_t *ring[EVENTS_RING_SIZE];
	size_t head, n;
	struct follower *followers;
	unsigned n_followers;
	int64_t last_ns; /* timeNano stays increasing, so since/until order them */
} bus;

static const char *attr(json_t *ev, const char *key)
{
	return json_string_value(
		json_object_get(json_object_get(json_object_get(ev, "Actor"), "Attributes"), key));
}

static bool m_type(const char *v, void *ev)
{
	return strcmp(v, json_string_value(json_object_get(ev, "Type")) ?: "") == 0;
}

static bool m_event(const char *v, void *ev)
{
	/* "exec_start: sh -c ..." is matched by "exec_start" */
	const char *a = json_string_value(json_object_get(ev, "Action")) ?: "";
	size_t n = strcspn(a, ":");
	return strcmp(v, a) == 0 || (strlen(v) == n && strncmp(v, a, n) == 0);
}

static bool m_container(const char *v, void *ev)
{
	if (!m_type("container", ev))
		return false;
	const char *id = json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID"));
	const char *name = attr(ev, "name");
	return (id && *v && str_has_prefix(id, v)) || (name && strcmp(name, v) == 0);
}

static bool m_label(const char *v, void *ev)
{
	return api_filter_label(json_object_get(json_object_get(ev, "Actor"), "Attributes"), v);
}

static bool m_image(const char *v, void *ev)
{
	const char *img = attr(ev, "image"), *from = json_string_value(json_object_get(ev, "from"));
	const char *id = json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID"));
	return (img && strcmp(img, v) == 0) || (from && strcmp(from, v) == 0) ||
	       (m_type("image", ev) && id &&
		(strcmp(id, v) == 0 || attr(ev, "name") == NULL ||
		 strcmp(attr(ev, "name"), v) == 0));
}

/* volume=, network=, service=, node=: the object's id (a prefix) or name */
static bool m_object(const char *type, const char *v, json_t *ev)
{
	if (!m_type(type, ev))
		return false;
	const char *id = json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID"));
	const char *name = attr(ev, "name");
	return (id && *v && str_has_prefix(id, v)) || (name && strcmp(name, v) == 0);
}

static bool m_volume(const char *v, void *ev)
{
	return m_object("volume", v, ev);
}

static bool m_network(const char *v, void *ev)
{
	return m_object("network", v, ev);
}

static bool m_service(const char *v, void *ev)
{
	return m_object("service", v, ev);
}

static bool m_node(const char *v, void *ev)
{
	return m_object("node", v, ev);
}

static bool m_scope(const char *v, void *ev)
{
	return strcmp(v, json_string_value(json_object_get(ev, "scope")) ?: "") == 0;
}

static bool event_matches(json_t *ev, json_t *filters)
{
	return api_filter_match(filters, "type", m_type, ev) &&
	       api_filter_match(filters, "volume", m_volume, ev) &&
	       api_filter_match(filters, "network", m_network, ev) &&
	       api_filter_match(filters, "service", m_service, ev) &&
	       api_filter_match(filters, "node", m_node, ev) &&
	       api_filter_match(filters, "scope", m_scope, ev) &&
	       api_filter_match(filters, "event", m_event, ev) &&
	       api_filter_match(filters, "container", m_container, ev) &&
	       api_filter_match(filters, "label", m_label, ev) &&
	       api_filter_match(filters, "image", m_image, ev);
}

static int64_t event_ns(json_t *ev)
{
	return json_integer_value(json_object_get(ev, "timeNano"));
}

static void send_event(struct api_req *r, json_t *ev)
{
	char *s = json_dumps(ev, JSON_COMPACT);
	if (!s)
		return;
	size_t n = strlen(s);
	s[n] = '\n';
	api_stream_chunk(r, s, n + 1);
	free(s);
}

static void follower_free(struct follower *f)
{
	for (struct follower **pp = &bus.followers; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			bus.n_followers--;
			break;
		}
	if (f->until_timer)
		event_free(f->until_timer);
	json_decref(f->filters);
	free(f);
}

static void follower_end(struct follower *f)
{
	struct api_req *r = f->r;
	r->on_cancel = NULL;
	r->userdata = NULL;
	follower_free(f);
	api_stream_end(r);
}

static size_t backlog(struct api_req *r)
{
	struct evhttp_connection *evcon = r->req ? evhttp_request_get_connection(r->req) : NULL;
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

void events_publish(struct agent *a, const char *type, const char *action, const char *id,
		    const char *from, json_t *attrs)
{
	(void)a;
	int64_t ns = now_ns();
	if (ns <= bus.last_ns)
		ns = bus.last_ns + 1;
	bus.last_ns = ns;
	/* the cluster's objects are swarm-scoped, as Docker has them */
	bool swarm = strcmp(type, "service") == 0 || strcmp(type, "node") == 0 ||
		     strcmp(type, "network") == 0 || strcmp(type, "secret") == 0 ||
		     strcmp(type, "config") == 0;
	json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:o}, s:s, s:I, s:I}", "Type", type, "Action",
			       action, "Actor", "ID", id, "Attributes",
			       attrs ? attrs : json_object(), "scope", swarm ? "swarm" : "local",
			       "time", (json_int_t)(ns / 1000000000), "timeNano", (json_int_t)ns);
	if (!ev)
		return;
	/* the fields of API < 1.22 that the docker CLI still reads */
	if (strcmp(type, "container") == 0 || strcmp(type, "image") == 0) {
		json_object_set_new(ev, "status", json_string(action));
		json_object_set_new(ev, "id", json_string(id));
		if (from)
			json_object_set_new(ev, "from", json_string(from));
	}
	size_t slot = (bus.head + bus.n) % EVENTS_RING_SIZE;
	if (bus.n == EVENTS_RING_SIZE) {
		json_decref(bus.ring[bus.head]);
		bus.head = (bus.head + 1) % EVENTS_RING_SIZE;
	} else {
		bus.n++;
	}
	bus.ring[slot] = ev;
	for (struct follower *f = bus.followers, *next; f; f = next) {
		next = f->next;
		if (f->until_ns && ns > f->until_ns)
			continue;
		if (!event_matches(ev, f->filters))
			continue;
		if (backlog(f->r) > EVENTS_MAX_BACKLOG) {
			follower_end(f);
			continue;
		}
		send_event(f->r, ev);
	}
}

void events_container(struct container *c, const char *action, const char *key, const char *value)
{
	json_t *attrs = json_object();
	if (!attrs)
		return;
	json_t *labels = json_object_get(c->config, "Labels");
	if (json_is_object(labels))
		json_object_update(attrs, labels);
	json_object_set_new(attrs, "image", json_string(c->image_ref ? c->image_ref : ""));
	json_object_set_new(attrs, "name", json_string(c->name));
	if (key && value)
		json_object_set_new(attrs, key, json_string(value));
	events_publish(c->agent, "container", action, c->id, c->image_ref, attrs);
}

void events_image(struct agent *a, const char *action, const char *id, const char *name)
{
	json_t *attrs = json_object();
	if (attrs && name)
		json_object_set_new(attrs, "name", json_string(name));
	events_publish(a, "image", action, id, NULL, attrs);
}

void events_volume(struct agent *a, const char *action, const char *name)
{
	events_publish(a, "volume", action, name, NULL, json_pack("{s:s}", "driver", "local"));
}

void events_container_network(struct container *c, const char *net, bool connect)
{
	struct agent *a = c->agent;
	char id[65];
	const char *name, *driver;
	if (network_of_mode(a, net, id, &name, &driver))
		events_publish(a, "network", connect ? "connect" : "disconnect", id, NULL,
			       json_pack("{s:s, s:s, s:s}", "container", c->id, "name", name,
					 "type", driver));
}

void events_container_run(struct container *c, bool start)
{
	events_container_network(c, c->net_mode, start);
	for (size_t k = 0; k < c->n_more_nets; k++)
		events_container_network(c, c->more_nets[k].net, start);
	size_t i;
	json_t *m;
	json_array_foreach(c->mounts, i, m)
	{
		const char *vol = json_string_value(json_object_get(m, "Name"));
		if (!vol ||
		    strcmp(json_string_value(json_object_get(m, "Type")) ?: "", "volume") != 0)
			continue;
		json_t *attrs = json_pack("{s:s, s:s}", "container", c->id, "driver", "local");
		if (attrs && start) {
			json_object_set_new(
				attrs, "destination",
				json_string(json_string_value(json_object_get(m, "Destination"))
						    ?: ""));
			json_object_set_new(attrs, "propagation", json_string(""));
			json_object_set_new(attrs, "read/write",
					    json_string(json_is_false(json_object_get(m, "RW"))
								? "false"
								: "true"));
		}
		events_publish(c->agent, "volume", start ? "mount" : "unmount", vol, NULL, attrs);
	}
}

/* Docker's timestamps: seconds[.nanoseconds] since the epoch, or RFC 3339. */
static int parse_time(const char *s, int64_t *ret)
{
	const char *p = s;
	if (isdigit((unsigned char)*p)) {
		char *end;
		errno = 0;
		long long sec = strtoll(p, &end, 10);
		if (!errno && (*end == '\0' || *end == '.')) {
			int64_t ns = 0;
			if (*end == '.') {
				const char *f = end + 1;
				int digits = 0;
				for (; isdigit((unsigned char)*f); f++, digits++)
					if (digits < 9)
						ns = ns * 10 + (*f - '0');
				if (*f || digits == 0)
					return -EINVAL;
				for (; digits < 9; digits++)
					ns *= 10;
			}
			*ret = (int64_t)sec * 1000000000 + ns;
			return 0;
		}
	}
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -EINVAL;
	int64_t ns = 0;
	if (*rest == '.') {
		int digits = 0;
		for (rest++; isdigit((unsigned char)*rest); rest++, digits++)
			if (digits < 9)
				ns = ns * 10 + (*rest - '0');
		for (; digits < 9; digits++)
			ns *= 10;
	}
	int64_t off = 0;
	if (*rest == '+' || *rest == '-') {
		int hh, mm;
		if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(rest) != 6)
			return -EINVAL;
		off = (hh * 3600 + mm * 60) * (*rest == '-' ? -1 : 1);
	} else if (strcmp(rest, "Z") != 0) {
		return -EINVAL;
	}
	*ret = ((int64_t)timegm(&tm) - off) * 1000000000 + ns;
	return 0;
}

static int query_time(struct api_req *r, const char *key, int64_t *ret)
{
	const char *v = api_query(r, key);
	*ret = 0;
	if (!v || !*v)
		return 0;
	if (parse_time(v, ret) < 0) {
		api_reply_error(
			r, 400,
			"%s=%s: expected a time as seconds since the epoch (with an optional "
			".fraction) or RFC 3339",
			key, v);
		return -EINVAL;
	}
	return 0;
}

static void follower_cancel(struct api_req *r)
{
	struct follower *f = r->userdata;
	if (f)
		follower_free(f);
	api_req_free(r);
}

static void until_cb(evutil_socket_t fd, short what, void *arg)
{
	follower_end(arg);
}

static const char *const event_types[] = {"container", "image", "volume",  "network", "daemon",
					  "plugin",    "node",	"service", "secret",  "config"};

void api_events(struct api_req *r)
{
	static const char *const keys[] = {"type",   "container", "event",   "label", "image",
					   "volume", "network",	  "service", "node",  "scope"};
	int64_t since, until;
	if (query_time(r, "since", &since) < 0 || query_time(r, "until", &until) < 0)
		return;
	if (since && until && until < since) {
		api_reply_error(r, 400, "until (%s) is before since (%s)", api_query(r, "until"),
				api_query(r, "since"));
		return;
	}
	_cleanup_(json_decrefp) json_t *f = api_filters(r, keys, ARRAY_SIZE(keys));
	if (!f)
		return;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(f, "type"), i, v)
	{
		bool ok = false;
		for (size_t k = 0; k < ARRAY_SIZE(event_types); k++)
			ok |= strcmp(json_string_value(v), event_types[k]) == 0;
		if (!ok) {
			api_reply_error(r, 400,
					"filters: type %s: expected container, image, volume, "
					"network, daemon, plugin, node, service, secret or config",
					json_string_value(v));
			return;
		}
	}
	int64_t now = now_ns();
	bool follow = !until || until > now;
	if (follow && r->req && bus.n_followers >= EVENTS_MAX_FOLLOWERS) {
		api_reply_error(r, 503,
				"%u event streams are open, the limit; close one and try again",
				bus.n_followers);
		return;
	}
	if (!r->req) {
		api_reply_error(r, 400, "events are a stream: ask over HTTP");
		return;
	}
	api_stream_start(r, 200, "application/json");
	/* Docker replays only with since; without it the stream starts now */
	if (since)
		for (size_t k = 0; k < bus.n; k++) {
			json_t *ev = bus.ring[(bus.head + k) % EVENTS_RING_SIZE];
			int64_t t = event_ns(ev);
			if (t < since || (until && t > until) || !event_matches(ev, f))
				continue;
			send_event(r, ev);
		}
	if (!follow) {
		api_stream_end(r);
		return;
	}
	struct follower *fo = calloc(1, sizeof(*fo));
	if (!fo) {
		api_stream_end(r);
		return;
	}
	fo->r = r;
	fo->filters = TAKE_PTR(f);
	fo->until_ns = until;
	if (until) {
		int64_t d = until - now;
		struct timeval tv = {.tv_sec = d / 1000000000, .tv_usec = (d % 1000000000) / 1000};
		fo->until_timer = evtimer_new(r->agent->base, until_cb, fo);
		if (!fo->until_timer || evtimer_add(fo->until_timer, &tv) < 0) {
			json_decref(fo->filters);
			if (fo->until_timer)
				event_free(fo->until_timer);
			free(fo);
			api_stream_end(r);
			return;
		}
	}
	fo->next = bus.followers;
	bus.followers = fo;
	bus.n_followers++;
	r->userdata = fo;
	r->on_cancel = follower_cancel;
	api_req_defer(r);
}

void events_shutdown(void)
{
	while (bus.followers)
		follower_end(bus.followers);
	for (size_t k = 0; k < bus.n; k++)
		json_decref(bus.ring[(bus.head + k) % EVENTS_RING_SIZE]);
	bus.n = 0;
	bus.head = 0;
	events_store_forget();
}
