// SPDX-License-Identifier: Apache-2.0
/* Docker's /swarm endpoints over agent/swarm.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/swarm.h"
#include "lib/cleanup.h"

#define SWARM_ALREADY                                                                     \
	"This node is already part of a swarm. Use \"docker swarm leave\" to leave this " \
	"swarm and join another one."
#define SWARM_JOIN_HOW                                                          \
	"A shoal node joins a cluster when shoald starts: shoald --store etcd " \
	"--store-endpoints URL --advertise-addr IP --join-token TOKEN"

void api_swarm_inspect(struct api_req *r)
{
	json_t *sw = NULL;
	struct shoal_err err = {0};
	int rc = swarm_get(r->agent, &sw, NULL, &err);
	if (rc == -ENOENT) {
		api_reply_error(r, 503,
				"This node is not a swarm manager: the cluster has no "
				"record yet (its first manager makes it)");
		return;
	}
	if (rc < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, sw);
}

/* Every shoal node is in its cluster from its start (one node alone on the
 * embedded store): init and join answer as Docker's do for such a node, and
 * say how a node joins another cluster. */
void api_swarm_init(struct api_req *r)
{
	api_reply_error(r, 503, "%s", SWARM_ALREADY);
}

void api_swarm_join(struct api_req *r)
{
	api_reply_error(r, 503, "%s %s", SWARM_ALREADY, SWARM_JOIN_HOW);
}

void api_swarm_leave(struct api_req *r)
{
	api_reply_error(r, 503,
			"A shoal node leaves its cluster when its shoald stops (the node is down "
			"after --node-ttl; `docker node rm` then forgets it). %s",
			SWARM_JOIN_HOW);
}

static int query_bool(struct api_req *r, const char *key, bool *ret)
{
	const char *v = api_query(r, key);
	*ret = false;
	if (!v || !*v || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
		return 0;
	if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
		*ret = true;
		return 0;
	}
	api_reply_error(r, 400, "%s: expected true or false, got \"%s\"", key, v);
	return -EINVAL;
}

void api_swarm_update(struct api_req *r)
{
	bool rw, rm, rk;
	if (query_bool(r, "rotateWorkerToken", &rw) < 0 ||
	    query_bool(r, "rotateManagerToken", &rm) < 0 ||
	    query_bool(r, "rotateManagerUnlockKey", &rk) < 0)
		return;
	if (rk) {
		api_reply_error(r, 400,
				"rotateManagerUnlockKey: autolock is not supported by "
				"shoal, so there is no unlock key");
		return;
	}
	const char *vs = api_query(r, "version");
	char *end = NULL;
	long long version = vs ? strtoll(vs, &end, 10) : -1;
	if (!vs || !*vs || *end || version < 0) {
		api_reply_error(r, 400, "version: required, the cluster's Version.Index as read");
		return;
	}
	_cleanup_(json_decrefp) json_t *spec = api_body_json(r, false);
	if (!spec)
		return;
	struct shoal_err err = {0};
	if (swarm_update(r->agent, spec, version, rw, rm, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 200);
}

void api_swarm_unlockkey(struct api_req *r)
{
	api_reply_error(r, 400,
			"autolock is not supported by shoal: the cluster has no "
			"unlock key");
}
