// SPDX-License-Identifier: Apache-2.0
/* Secrets and configs in the agent: the node's key, a service's references
 * checked against the store, and the files a task's container gets. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/secrets.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

/* Stored secrets sealed under a key other than this node's: said once at the
 * start, naming one of them, so that a node given the wrong file is found
 * before its first task is rejected. */
static void key_check_stored(struct agent *a)
{
	json_t *all = NULL;
	if (cluster_list(a, SECRETS_PREFIX, &all, NULL) < 0)
		return;
	size_t i, n = 0;
	json_t *o;
	const char *name = NULL, *kid = NULL;
	json_array_foreach(all, i, o)
	{
		const char *k =
			json_string_value(json_object_get(json_object_get(o, "Sealed"), "KeyID"));
		if (k && strcmp(k, a->secrets->id) != 0) {
			if (!n++) {
				name = json_string_value(
					json_object_get(json_object_get(o, "Spec"), "Name"));
				kid = k;
			}
		}
	}
	if (n)
		log_error(
			"%zu stored secret(s) (%s among them) were encrypted with secrets key %s, "
			"and this node's key (%s) is %s: tasks using them are rejected on this "
			"node; give every node the same --secrets-key-file",
			n, name ? name : "?", kid, a->secrets->path, a->secrets->id);
	json_decref(all);
}

static void task_dir(struct agent *a, const char *task_id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/secrets/%s", a->cfg.run_dir, task_id);
}

static bool task_id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 64)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

void secrets_task_release(struct agent *a, const char *task_id)
{
	if (!task_id_ok(task_id))
		return;
	char dir[4096];
	task_dir(a, task_id, dir, sizeof(dir));
	/* the tmpfs goes (its pages with it); the containers that bound its
	 * files are gone, or keep their own binds until they go */
	if (umount2(dir, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("secrets of task %s: unmounting %s: %s", task_id, dir, strerror(errno));
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("secrets of task %s: removing %s: %s", task_id, dir, strerror(errno));
}

void secrets_container_removed(struct agent *a, json_t *labels)
{
	const char *tid = json_string_value(json_object_get(labels, "com.docker.swarm.task.id"));
	if (tid)
		secrets_task_release(a, tid);
}

/* What a task left when its container was removed while the agent was away,
 * or when the agent stopped between the files and the container. */
static void sweep(struct agent *a)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/secrets", a->cfg.run_dir);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		bool used = false;
		for (struct container *c = a->containers; c && !used; c = c->next) {
			const char *tid = json_string_value(json_object_get(
				json_object_get(c->config, "Labels"), "com.docker.swarm.task.id"));
			used = tid && strcmp(tid, de->d_name) == 0;
		}
		if (!used)
			secrets_task_release(a, de->d_name);
	}
}

int secrets_init(struct agent *a, struct shoal_err *err)
{
	char path[4096];
	bool given = a->cfg.secrets_key_file != NULL;
	if (given)
		snprintf(path, sizeof(path), "%s", a->cfg.secrets_key_file);
	else
		snprintf(path, sizeof(path), "%s/%s", a->cfg.data_dir, SECRETS_KEY_FILENAME);
	struct secrets_key *k = calloc(1, sizeof(*k));
	if (!k)
		return shoal_err_set(err, ENOMEM, "out of memory");
	int r = secrets_key_load(path, !given, k, err);
	if (r < 0) {
		free(k);
		return r;
	}
	a->secrets = k;
	log_info("secrets key %s (id %s)", k->path, k->id);
	return 0;
}

void secrets_start(struct agent *a)
{
	if (!a->secrets)
		return;
	key_check_stored(a);
	sweep(a);
}

void secrets_free(struct agent *a)
{
	if (!a->secrets)
		return;
	explicit_bzero(a->secrets, sizeof(*a->secrets));
	free(a->secrets);
	a->secrets = NULL;
}

/* ---- a service's references ---- */

/* What differs between a secret and a config where a task uses one. */
struct ref_kind {
	const char *what;     /* "secret" */
	const char *prefix;   /* its records */
	const char *ref_key;  /* the ContainerSpec member listing them */
	const char *id_key;   /* a reference's id member */
	const char *name_key; /* and its name member */
	bool sealed;	      /* secrets: sealed data; configs: base64 in the spec */
	char file_tag;	      /* its files in the task's tmpfs: s0, s1, c0... */
	const char *root;     /* where a relative target goes in the container */
};

static const struct ref_kind REF_KINDS[] = {
	{"secret", SECRETS_PREFIX, "Secrets", "SecretID", "SecretName", true, 's', "/run/secrets/"},
	{"config", CONFIGS_PREFIX, "Configs", "ConfigID", "ConfigName", false, 'c', "/"},
};

static int resolve_list(json_t *all, json_t *refs, const struct ref_kind *k, struct shoal_err *err)
{
	size_t i;
	json_t *ref;
	json_array_foreach(refs, i, ref)
	{
		const char *id = json_string_value(json_object_get(ref, k->id_key));
		const char *name = json_string_value(json_object_get(ref, k->name_key));
		json_t *found = NULL;
		size_t j;
		json_t *o;
		json_array_foreach(all, j, o)
		{
			const char *oid = json_string_value(json_object_get(o, "ID")) ?: "";
			const char *oname = json_string_value(json_object_get(
						    json_object_get(o, "Spec"), "Name"))
						    ?: "";
			if (id && *id ? strcmp(oid, id) == 0 &&
						(!name || !*name || !strcmp(oname, name))
				      : name && strcmp(oname, name) == 0) {
				found = o;
				break;
			}
		}
		if (!found)
			return shoal_err_set_status(err, 400, ENOENT, "%s not found: %s", k->what,
						    name && *name ? name
						    : id	  ? id
								  : "");
		json_object_set(ref, k->id_key, json_object_get(found, "ID"));
		json_object_set(ref, k->name_key,
				json_object_get(json_object_get(found, "Spec"), "Name"));
	}
	return 0;
}

int secrets_service_resolve(struct agent *a, json_t *spec, struct shoal_err *err)
{
	json_t *cs = json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec");
	for (size_t i = 0; i < ARRAY_SIZE(REF_KINDS); i++) {
		const struct ref_kind *k = &REF_KINDS[i];
		json_t *refs = json_object_get(cs, k->ref_key);
		if (!json_array_size(refs))
			continue;
		_cleanup_(json_decrefp) json_t *all = NULL;
		int r;
		if ((r = cluster_list(a, k->prefix, &all, err)) < 0 ||
		    (r = resolve_list(all, refs, k, err)) < 0)
			return r;
	}
	return 0;
}

/* ---- a task's files ---- */

static int write_one(const char *path, const uint8_t *data, size_t len, json_t *file,
		     struct shoal_err *err)
{
	const char *uid = json_string_value(json_object_get(file, "UID")) ?: "0";
	const char *gid = json_string_value(json_object_get(file, "GID")) ?: "0";
	json_t *mj = json_object_get(file, "Mode");
	mode_t mode = json_is_integer(mj) ? (mode_t)json_integer_value(mj) & 07777 : 0444;
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return shoal_err_errno(err, errno, "creating %s", path);
	int r = write_all(fd, data, len);
	if (r < 0)
		return shoal_err_errno(err, -r, "writing %s", path);
	if (fchown(fd, (uid_t)strtoul(uid, NULL, 10), (gid_t)strtoul(gid, NULL, 10)) < 0)
		return shoal_err_errno(err, errno, "owning %s to %s:%s", path, uid, gid);
	if (fchmod(fd, mode) < 0)
		return shoal_err_errno(err, errno, "mode of %s", path);
	return 0;
}

static int bind_add(json_t *mounts, const char *src, const char *target)
{
	return json_array_append_new(mounts,
				     json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source",
					       src, "Target", target, "ReadOnly", true));
}

/* The file of one reference, written in dir and bound read-only at its
 * target. */
static int task_file(struct agent *a, const struct ref_kind *k, const char *dir, size_t i,
		     json_t *ref, json_t *mounts, struct shoal_err *err)
{
	const char *id = json_string_value(json_object_get(ref, k->id_key)) ?: "";
	const char *name = json_string_value(json_object_get(ref, k->name_key)) ?: id;
	json_t *file = json_object_get(ref, "File");
	const char *fname = json_string_value(json_object_get(file, "Name")) ?: name;
	char key[256], path[4200], target[4200];
	snprintf(key, sizeof(key), "%s%s", k->prefix, id);
	_cleanup_(json_decrefp) json_t *rec = NULL;
	int r = cluster_get(a, key, &rec, NULL, err);
	if (r < 0)
		return r == -ENOENT ? shoal_err_set(err, ENOENT, "%s %s (%s) not found", k->what,
						    name, id)
				    : shoal_err_wrap(err, "reading %s %s", k->what, name);
	uint8_t *data = NULL;
	size_t len = 0;
	if (k->sealed) {
		if ((r = secrets_unseal(a->secrets, id, json_object_get(rec, "Sealed"), &data, &len,
					err)) < 0)
			return shoal_err_wrap(err, "%s %s cannot be decrypted on this node",
					      k->what, name);
	} else {
		json_t *dj = json_object_get(json_object_get(rec, "Spec"), "Data");
		if (!json_is_string(dj) ||
		    secrets_b64_decode(json_string_value(dj), json_string_length(dj), &data, &len) <
			    0)
			return shoal_err_set(err, EBADMSG, "%s %s: its stored data is not base64",
					     k->what, name);
	}
	snprintf(path, sizeof(path), "%s/%c%zu", dir, k->file_tag, i);
	r = write_one(path, data, len, file, err);
	explicit_bzero(data, len);
	free(data);
	if (r < 0)
		return shoal_err_wrap(err, "%s %s", k->what, name);
	snprintf(target, sizeof(target), "%s%s", fname[0] == '/' ? "" : k->root, fname);
	return bind_add(mounts, path, target) < 0 ? shoal_err_set(err, ENOMEM, "out of memory") : 0;
}

int secrets_task_prepare(struct agent *a, const char *task_id, json_t *task, json_t *config,
			 struct shoal_err *err)
{
	json_t *cs = json_object_get(json_object_get(task, "Spec"), "ContainerSpec");
	json_t *secrets = json_object_get(cs, "Secrets"), *configs = json_object_get(cs, "Configs");
	size_t ns = json_array_size(secrets), nc = json_array_size(configs);
	if (!ns && !nc)
		return 0;
	if (!task_id_ok(task_id))
		return shoal_err_set(err, EINVAL, "task id %s cannot name a directory", task_id);
	if (ns && !a->secrets)
		return shoal_err_set(err, ENOKEY, "this node has no secrets key");
	char dir[4096], opts[64];
	snprintf(dir, sizeof(dir), "%s/secrets", a->cfg.run_dir);
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return shoal_err_errno(err, -r, "creating %s", dir);
	task_dir(a, task_id, dir, sizeof(dir));
	secrets_task_release(a, task_id); /* a start of this task cut short before */
	if (mkdir(dir, 0700) < 0)
		return shoal_err_errno(err, errno, "creating %s", dir);
	/* every file at its largest, and room for the inodes */
	snprintf(opts, sizeof(opts), "mode=0700,size=%zu",
		 (ns + nc) * (SECRETS_MAX_DATA + 4096) + 65536);
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
		r = shoal_err_errno(err, errno, "mounting a tmpfs at %s", dir);
		rmdir(dir);
		return r;
	}
	json_t *hc = json_object_get(config, "HostConfig");
	if (!hc) {
		hc = json_object();
		json_object_set_new(config, "HostConfig", hc);
	}
	json_t *mounts = json_object_get(hc, "Mounts");
	if (!json_is_array(mounts)) {
		mounts = json_array();
		json_object_set_new(hc, "Mounts", mounts);
	}
	for (size_t k = 0; k < ARRAY_SIZE(REF_KINDS); k++) {
		size_t i;
		json_t *ref;
		json_array_foreach(json_object_get(cs, REF_KINDS[k].ref_key), i, ref)
		{
			if ((r = task_file(a, &REF_KINDS[k], dir, i, ref, mounts, err)) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	secrets_task_release(a, task_id);
	return r;
}
