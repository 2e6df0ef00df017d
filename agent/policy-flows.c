// SPDX-License-Identifier: Apache-2.0
/* The policy agent's flow log (a ring of records in a file the data plane's
 * events are written to, followed by `shoal policy log`) and explain. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/policy-agent-internal.h"
#include "agent/policy-agent.h"
#include "agent/publish.h"
#include "agent/store/store.h"
#include "agent/worker.h"
#include "lb/lb-policy.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/policy.h"

/* --- flow log --- */

int pa_flow_open(struct policy_agent *pa)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/policy-flows", pa->a->cfg.data_dir);
	size_t len = PA_FLOW_HEAD + (size_t)PA_FLOW_RECORDS * sizeof(struct pa_flow_rec);
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	bool fresh = (size_t)st.st_size != len;
	if (fresh && (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)len) < 0))
		return -errno;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	struct pa_flow_head *h = m;
	if (fresh || h->magic != PA_FLOW_MAGIC || h->rec_size != sizeof(struct pa_flow_rec) ||
	    h->capacity != PA_FLOW_RECORDS) {
		memset(m, 0, len);
		h->magic = PA_FLOW_MAGIC;
		h->rec_size = sizeof(struct pa_flow_rec);
		h->capacity = PA_FLOW_RECORDS;
		h->next_seq = 1;
	}
	pa->flow_head = h;
	pa->flow_recs = (struct pa_flow_rec *)((char *)m + PA_FLOW_HEAD);
	pa->flow_map_len = len;
	struct timespec mono, real;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	pa->mono_to_real =
		((int64_t)real.tv_sec - mono.tv_sec) * 1000000000LL + (real.tv_nsec - mono.tv_nsec);
	return 0;
}

static const char *pa_verdict_name(int v)
{
	return policy_verdict_str((enum policy_verdict)v);
}

static int pa_verdict_parse(const char *s)
{
	if (!s || !*s)
		return 0;
	if (strcmp(s, "allowed") == 0 || strcmp(s, "allow") == 0)
		return POLICY_VERDICT_ALLOW;
	if (strcmp(s, "dropped") == 0 || strcmp(s, "deny") == 0 || strcmp(s, "denied") == 0)
		return POLICY_VERDICT_DENY;
	if (strcmp(s, "audit") == 0 || strcmp(s, "audited") == 0)
		return POLICY_VERDICT_AUDIT;
	return -1;
}

static json_t *pa_rec_json(const struct pa_flow_rec *rec)
{
	char t[40], sa[INET_ADDRSTRLEN], da[INET_ADDRSTRLEN];
	format_rfc3339(rec->time_ns, t);
	inet_ntop(AF_INET, &rec->saddr, sa, sizeof(sa));
	inet_ntop(AF_INET, &rec->daddr, da, sizeof(da));
	json_t *src = json_pack("{s:s,s:i}", "Address", sa, "Port", (int)rec->sport);
	json_t *dst = json_pack("{s:s,s:i}", "Address", da, "Port", (int)rec->dport);
	if (rec->src[0])
		json_object_set_new(src, "Name", json_string(rec->src));
	if (rec->src_svc[0])
		json_object_set_new(src, "Service", json_string(rec->src_svc));
	if (rec->dst[0])
		json_object_set_new(dst, "Name", json_string(rec->dst));
	if (rec->dst_svc[0])
		json_object_set_new(dst, "Service", json_string(rec->dst_svc));
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:b,s:b,s:b}", "Time", t, "Verdict",
			      pa_verdict_name(rec->verdict), "Direction",
			      rec->dir == POLICY_DIR_INGRESS ? "Ingress" : "Egress", "Protocol",
			      policy_proto_str(rec->proto), "Source", src, "Destination", dst,
			      "Published", (rec->flags & POLICY_EV_F_PUBLISHED) != 0, "Socket",
			      (rec->flags & POLICY_EV_F_SOCKET) != 0, "Rejudged",
			      (rec->flags & POLICY_EV_F_REJUDGED) != 0);
	if (rec->policy[0])
		json_object_set_new(o, "Policy", json_string(rec->policy));
	else
		json_object_set_new(o, "Policy", json_null());
	json_object_set_new(o, "Rule",
			    rec->rule == POLICY_RULE_NONE ? json_null() : json_integer(rec->rule));
	return o;
}

static bool pa_party_match(const char *want, uint32_t addr, const char *name, const char *svc)
{
	if (!want || !*want)
		return true;
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr, a, sizeof(a));
	return strcmp(want, a) == 0 || (name[0] && strcmp(want, name) == 0) ||
	       (svc[0] && strcmp(want, svc) == 0);
}

static bool pa_rec_match(const struct pa_follower *f, const struct pa_flow_rec *rec)
{
	if (f->verdict && rec->verdict != f->verdict)
		return false;
	return pa_party_match(f->from, rec->saddr, rec->src, rec->src_svc) &&
	       pa_party_match(f->to, rec->daddr, rec->dst, rec->dst_svc);
}

void pa_follower_free(struct pa_follower *f)
{
	if (!f)
		return;
	free(f->from);
	free(f->to);
	free(f);
}

static void pa_follower_unlink(struct policy_agent *pa, struct pa_follower *f)
{
	for (struct pa_follower **pp = &pa->followers; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			pa->n_followers--;
			return;
		}
}

static bool pa_send_rec(struct api_req *r, const struct pa_flow_rec *rec)
{
	json_t *o = pa_rec_json(rec);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return false;
	size_t n = strlen(s);
	s[n] = '\n';
	api_stream_chunk(r, s, n + 1);
	free(s);
	return true;
}

static size_t pa_req_backlog(struct api_req *r)
{
	if (!r->req)
		return 0;
	struct evhttp_connection *ec = evhttp_request_get_connection(r->req);
	struct bufferevent *bev = ec ? evhttp_connection_get_bufferevent(ec) : NULL;
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

void pa_flow_cb(const struct policy_flow_event *ev, void *userdata)
{
	struct policy_agent *pa = userdata;
	struct pa_flow_head *h = pa->flow_head;
	if (!h)
		return;
	uint64_t seq = h->next_seq++;
	struct pa_flow_rec *rec = &pa->flow_recs[(seq - 1) % PA_FLOW_RECORDS];
	memset(rec, 0, sizeof(*rec));
	rec->time_ns = (int64_t)ev->ts_ns + pa->mono_to_real;
	rec->saddr = ev->saddr;
	rec->daddr = ev->daddr;
	rec->sport = ntohs(ev->sport);
	rec->dport = ntohs(ev->dport);
	rec->proto = ev->proto;
	rec->dir = ev->dir;
	rec->verdict = ev->verdict;
	rec->flags = ev->flags;
	rec->rule = ev->rule;
	rec->policy_id = ev->policy;
	const struct pa_ep *s = pa_ep_by_addr(pa, ntohl(ev->saddr));
	const struct pa_ep *d = pa_ep_by_addr(pa, ntohl(ev->daddr));
	if (s) {
		snprintf(rec->src, sizeof(rec->src), "%s", s->name);
		snprintf(rec->src_svc, sizeof(rec->src_svc), "%s", s->service);
	}
	if (d) {
		snprintf(rec->dst, sizeof(rec->dst), "%s", d->name);
		snprintf(rec->dst_svc, sizeof(rec->dst_svc), "%s", d->service);
	}
	const char *pn = ev->policy ? pa_policy_name(pa, ev->policy) : NULL;
	if (pn)
		snprintf(rec->policy, sizeof(rec->policy), "%s", pn);
	else if (ev->policy)
		snprintf(rec->policy, sizeof(rec->policy), "#%u", ev->policy);
	__atomic_store_n(&rec->seq, seq, __ATOMIC_RELEASE);

	for (struct pa_follower *f = pa->followers, *next; f; f = next) {
		next = f->next;
		if (!pa_rec_match(f, rec))
			continue;
		if (pa_req_backlog(f->r) > PA_FOLLOW_MAX_BUF) {
			/* a reader this far behind is let go rather than buffered
			 * without bound */
			pa_follower_unlink(pa, f);
			f->r->on_cancel = NULL;
			f->r->userdata = NULL;
			api_stream_end(f->r);
			pa_follower_free(f);
			continue;
		}
		pa_send_rec(f->r, rec);
	}
}

void pa_flow_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct policy_agent *pa = arg;
	(void)fd;
	(void)what;
	int r = lb_policy_flowlog_consume(pa->lbp);
	if (r < 0)
		log_debug("policy: reading the flow log: %s", strerror(-r));
}

static void pa_follow_cancel(struct api_req *r)
{
	struct pa_follower *f = r->userdata;
	if (!f)
		return;
	pa_follower_unlink(f->pa, f);
	pa_follower_free(f);
	r->userdata = NULL;
}

void policy_agent_log(struct api_req *r)
{
	struct policy_agent *pa = pa_of(r->agent);
	if (!pa || !pa->flow_head) {
		api_reply_error(r, 503, "the flow log is unavailable: %s",
				pa && pa->err.msg[0] ? pa->err.msg
						     : "network policy is not enforced");
		return;
	}
	int verdict = pa_verdict_parse(api_query(r, "verdict"));
	if (verdict < 0) {
		api_reply_error(r, 400, "verdict %s: expected dropped, audit or allowed",
				api_query(r, "verdict"));
		return;
	}
	bool follow = api_query_bool(r, "follow", false);
	int64_t tail;
	if (api_query_int(r, "tail", -1, &tail) < 0)
		return;
	if (follow && pa->n_followers >= PA_MAX_FOLLOWERS) {
		api_reply_error(r, 429, "%d flow log followers already: stop one first",
				PA_MAX_FOLLOWERS);
		return;
	}
	struct pa_follower *f = calloc(1, sizeof(*f));
	if (!f) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	f->r = r;
	f->pa = pa;
	f->verdict = verdict;
	const char *from = api_query(r, "from"), *to = api_query(r, "to");
	if ((from && !(f->from = strdup(from))) || (to && !(f->to = strdup(to)))) {
		pa_follower_free(f);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	api_stream_start(r, 200, "application/x-ndjson");
	uint64_t next = pa->flow_head->next_seq;
	uint64_t first = next > PA_FLOW_RECORDS ? next - PA_FLOW_RECORDS : 1;
	/* tail N: the last N matching records; counted backwards first */
	if (tail >= 0) {
		uint64_t s = next, found = 0;
		while (s > first && found < (uint64_t)tail) {
			s--;
			const struct pa_flow_rec *rec = &pa->flow_recs[(s - 1) % PA_FLOW_RECORDS];
			if (rec->seq == s && pa_rec_match(f, rec))
				found++;
		}
		first = found < (uint64_t)tail ? first : s;
		if (tail == 0)
			first = next;
	}
	for (uint64_t s = first; s < next; s++) {
		const struct pa_flow_rec *rec = &pa->flow_recs[(s - 1) % PA_FLOW_RECORDS];
		if (rec->seq == s && pa_rec_match(f, rec))
			pa_send_rec(r, rec);
	}
	if (!follow) {
		pa_follower_free(f);
		api_stream_end(r);
		return;
	}
	f->next = pa->followers;
	pa->followers = f;
	pa->n_followers++;
	r->userdata = f;
	r->on_cancel = pa_follow_cancel;
	api_req_defer(r);
}

/* --- explain --- */

static int pa_party_resolve(struct policy_agent *pa, const struct policy_model *m, const char *ref,
			    struct policy_party *ret, json_t **ret_desc, struct shoal_err *err)
{
	struct in_addr ia;
	if (inet_pton(AF_INET, ref, &ia) == 1) {
		*ret = policy_model_party(m, ntohl(ia.s_addr));
		const char *kind = ret->kind == POLICY_PARTY_ENDPOINT ? "endpoint"
				   : ret->kind == POLICY_PARTY_NODE   ? "node"
								      : "world";
		*ret_desc = json_pack("{s:s,s:s}", "Address", ref, "Kind", kind);
		if (ret->kind == POLICY_PARTY_ENDPOINT && ret->ep)
			json_object_set_new(*ret_desc, "Name", json_string(ret->ep->name));
		return 0;
	}
	const struct pa_ep *found = NULL;
	struct container *c = container_find(pa->a, ref, NULL);
	if (c) {
		for (size_t i = 0; i < pa->n_eps && !found; i++)
			if (strcmp(pa->eps[i].id, c->id) == 0)
				found = &pa->eps[i];
		if (!found)
			return shoal_err_set_status(err, 400, EINVAL,
						    "container %s is not running on a network "
						    "that policy applies to (bridge or an overlay "
						    "network)",
						    ref);
	}
	for (size_t i = 0; i < pa->n_eps && !found; i++)
		if (strcmp(pa->eps[i].service, ref) == 0)
			found = &pa->eps[i];
	if (!found)
		return shoal_err_set_status(err, 404, ENOENT,
					    "%s: no such container, service with a running task "
					    "on this node, or IPv4 address",
					    ref);
	*ret = policy_model_party(m, found->addr);
	char a[INET_ADDRSTRLEN];
	struct in_addr na = {.s_addr = htonl(found->addr)};
	inet_ntop(AF_INET, &na, a, sizeof(a));
	*ret_desc =
		json_pack("{s:s,s:s,s:s}", "Address", a, "Kind", "endpoint", "Name", found->name);
	if (found->service[0])
		json_object_set_new(*ret_desc, "Service", json_string(found->service));
	return 0;
}

static json_t *pa_decision_json(const struct policy_decision *d)
{
	json_t *chain = json_array();
	for (size_t i = 0; i < d->n; i++) {
		const struct policy_step *s = &d->chain[i];
		json_t *st = json_pack("{s:s,s:s,s:s}", "Policy", s->policy->name, "Direction",
				       policy_dir_str(s->dir), "Action",
				       s->rule < 0 ? "deny" : policy_action_str(s->action));
		json_object_set_new(st, "Rule", s->rule < 0 ? json_null() : json_integer(s->rule));
		json_object_set_new(st, "Tier",
				    json_string(s->policy->tier == POLICY_TIER_CLUSTER ? "cluster"
						: s->policy->tier == POLICY_TIER_BASELINE
							? "baseline"
							: "service"));
		json_array_append_new(chain, st);
	}
	char *text = policy_decision_format(d);
	json_t *o = json_pack("{s:s,s:o,s:s}", "Verdict", policy_verdict_str(d->verdict), "Chain",
			      chain, "Text", text ?: "");
	free(text);
	return o;
}

static int pa_explain_model(struct policy_agent *pa, struct pa_model *mm, const char *from,
			    const char *to, uint8_t proto, uint16_t port, json_t **ret,
			    struct shoal_err *err);

int policy_agent_explain(struct agent *a, const char *from, const char *to, uint8_t proto,
			 uint16_t port, json_t **ret, struct shoal_err *err)
{
	struct policy_agent *pa = pa_of(a);
	if (!pa)
		return shoal_err_set_status(err, 503, ENOTSUP, "network policy is not running");
	if (!pa->policies_loaded) {
		int r = pa_policies_load(pa, err);
		if (r < 0)
			return r;
		pa->policies_loaded = true;
	}
	if (pa_containers_sig(a) != pa->sig || !pa->eps)
		pa_reconcile(pa);
	struct pa_ep *bound = NULL;
	size_t n_bound = 0;
	if (pa->eps_stale || pa->job || pa_containers_sig(a) != pa->sig) {
		/* the endpoints as they are, for the names; the bound ones
		 * stay the agent's while a compile runs */
		struct pa_ep *eps = NULL;
		size_t n_eps = 0;
		if (pa_eps_build(pa, &eps, &n_eps) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
		if (pa->eps_stale) {
			pa_eps_free(pa->eps, pa->n_eps);
			pa->eps_stale = false;
		} else {
			bound = pa->eps;
			n_bound = pa->n_eps;
		}
		pa->eps = eps;
		pa->n_eps = n_eps;
	}
	struct pa_model mm;
	int r = pa_model_build(pa, &mm);
	if (r >= 0) {
		r = pa_explain_model(pa, &mm, from, to, proto, port, ret, err);
		free(mm.eps);
	} else {
		r = shoal_err_set(err, ENOMEM, "out of memory");
	}
	if (bound) {
		pa_eps_free(pa->eps, pa->n_eps);
		pa->eps = bound;
		pa->n_eps = n_bound;
	}
	return r;
}

static int pa_explain_model(struct policy_agent *pa, struct pa_model *mm, const char *from,
			    const char *to, uint8_t proto, uint16_t port, json_t **ret,
			    struct shoal_err *err)
{
	struct policy_flow flow = {.proto = proto, .port = port};
	json_t *fj = NULL, *tj = NULL;
	int r = pa_party_resolve(pa, &mm->m, from, &flow.src, &fj, err);
	if (r >= 0)
		r = pa_party_resolve(pa, &mm->m, to, &flow.dst, &tj, err);
	if (r < 0) {
		json_decref(fj);
		return r;
	}
	struct policy_flow_result res;
	policy_eval_flow(&mm->set, &flow, &res);
	json_t *o = json_pack("{s:s,s:o,s:o,s:s,s:i}", "Verdict", policy_verdict_str(res.verdict),
			      "From", fj, "To", tj, "Protocol", policy_proto_str(proto), "Port",
			      (int)port);
	json_object_set_new(o, "Egress",
			    res.has_egress ? pa_decision_json(&res.egress) : json_null());
	json_object_set_new(o, "Ingress",
			    res.has_ingress ? pa_decision_json(&res.ingress) : json_null());
	*ret = o;
	return 0;
}
