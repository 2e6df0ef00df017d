/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "agent/http.h"

/* Docker's filters query parameter (agent/api-filters.c): {"key": ["value",
 * ...]} with only supported keys (else a 400 is sent and NULL returned);
 * {} without filters. */
json_t *api_filters(struct api_req *r, const char *const *supported, size_t n_supported);
/* Values of one key are ORed: true when match() holds for one of them, or when
 * the key is not filtered on. */
bool api_filter_match(json_t *filters, const char *key, bool (*match)(const char *v, void *ctx),
		      void *ctx);
/* Docker's name filter: an extended regular expression (a substring when it
 * does not compile). */
bool api_filter_regex(const char *pattern, const char *s);
/* "k" or "k=v" against a labels object. */
bool api_filter_label(json_t *labels, const char *want);

/* System */
void api_ping(struct api_req *r);
void api_version(struct api_req *r);
void api_info(struct api_req *r);
void api_lb_list(struct api_req *r);
void api_metrics(struct api_req *r);

/* Networks (agent/api-networks.c) */
void api_network_list(struct api_req *r);
void api_network_inspect(struct api_req *r);
void api_network_create(struct api_req *r);
void api_network_delete(struct api_req *r);
void api_network_prune(struct api_req *r);
void api_network_connect(struct api_req *r);
void api_network_disconnect(struct api_req *r);

/* Volumes (agent/api-volumes.c) */
void api_volume_list(struct api_req *r);
void api_volume_create(struct api_req *r);
void api_volume_inspect(struct api_req *r);
void api_volume_delete(struct api_req *r);
void api_volume_prune(struct api_req *r);

/* Containers */
void api_container_create(struct api_req *r);
void api_container_list(struct api_req *r);
void api_container_inspect(struct api_req *r);
void api_container_start(struct api_req *r);
void api_container_stop(struct api_req *r);
void api_container_kill(struct api_req *r);
void api_container_wait(struct api_req *r);
void api_container_delete(struct api_req *r);
void api_container_attach(struct api_req *r);
void api_container_resize(struct api_req *r);
void api_container_logs(struct api_req *r);
/* agent/api-container-ops.c */
void api_container_restart(struct api_req *r);
void api_container_rename(struct api_req *r);
void api_container_pause(struct api_req *r);
void api_container_unpause(struct api_req *r);
void api_container_update(struct api_req *r);
void api_container_top(struct api_req *r);
void api_container_stats(struct api_req *r);
/* agent/api-disk.c: disk usage and prunes */
void api_system_df(struct api_req *r);
void api_container_prune(struct api_req *r);
void api_image_prune(struct api_req *r);
/* agent/events.c: GET /events (since, until, filters type, container, event,
 * label, image) */
void api_events(struct api_req *r);

/* api-swarm.c */
void api_swarm_inspect(struct api_req *r);
void api_swarm_init(struct api_req *r);
void api_swarm_join(struct api_req *r);
void api_swarm_leave(struct api_req *r);
void api_swarm_update(struct api_req *r);
void api_swarm_unlockkey(struct api_req *r);

/* Exec */
void api_exec_create(struct api_req *r);
void api_exec_start(struct api_req *r);
void api_exec_inspect(struct api_req *r);
void api_exec_resize(struct api_req *r);

/* Images */
void api_image_load(struct api_req *r);
void api_image_create(struct api_req *r);
void api_image_list(struct api_req *r);
void api_image_inspect(struct api_req *r);
void api_image_delete(struct api_req *r);
void api_image_tag(struct api_req *r);
void api_image_history(struct api_req *r);

/* Services, tasks, nodes */
void api_service_create(struct api_req *r);
void api_service_list(struct api_req *r);
void api_service_inspect(struct api_req *r);
void api_service_update(struct api_req *r);
void api_service_delete(struct api_req *r);
void api_service_logs(struct api_req *r);
void api_task_list(struct api_req *r);
void api_task_inspect(struct api_req *r);
void api_node_list(struct api_req *r);
void api_node_inspect(struct api_req *r);
void api_node_update(struct api_req *r);

/* Secrets and configs (agent/api-secrets.c) */
void api_secret_create(struct api_req *r);
void api_secret_list(struct api_req *r);
void api_secret_inspect(struct api_req *r);
void api_secret_update(struct api_req *r);
void api_secret_delete(struct api_req *r);
void api_config_create(struct api_req *r);
void api_config_list(struct api_req *r);
void api_config_inspect(struct api_req *r);
void api_config_update(struct api_req *r);
void api_config_delete(struct api_req *r);

/* Network policies (agent/api-policies.c) */
void api_policy_create(struct api_req *r);
void api_policy_list(struct api_req *r);
void api_policy_inspect(struct api_req *r);
void api_policy_update(struct api_req *r);
void api_policy_delete(struct api_req *r);
void api_policy_explain(struct api_req *r);
void api_policy_log(struct api_req *r);
