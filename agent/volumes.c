// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/container-config.h"
#include "agent/container.h"
#include "agent/events.h"
#include "agent/volumes.h"
#include "agent/worker.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

static int vol_dir(struct agent *a, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/volumes%s%s", a->cfg.data_dir, name ? "/" : "",
			 name ? name : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int volume_data_path(struct agent *a, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/volumes/%s/_data", a->cfg.data_dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static json_t *vol_json(struct agent *a, const char *name, json_t *meta)
{
	char mp[4096];
	volume_data_path(a, name, mp, sizeof(mp));
	json_t *labels = json_object_get(meta, "Labels");
	return json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:{}}", "Name", name, "Driver", "local",
			 "Mountpoint", mp, "CreatedAt",
			 json_string_value(json_object_get(meta, "CreatedAt")) ?: "", "Labels",
			 json_is_object(labels) ? labels : json_object(), "Scope", "local",
			 "Options");
}

static json_t *vol_meta(struct agent *a, const char *name)
{
	char p[4096];
	if (snprintf(p, sizeof(p), "%s/volumes/%s/volume.json", a->cfg.data_dir, name) >=
	    (int)sizeof(p))
		return NULL;
	return json_load_file(p, 0, NULL);
}

int volume_get(struct agent *a, const char *name, json_t **ret, struct shoal_err *err)
{
	int r = container_volume_name_check("name", name, err);
	if (r < 0) {
		err->status = 404;
		return r;
	}
	json_t *meta = vol_meta(a, name);
	if (!meta)
		return shoal_err_set_status(err, 404, ENOENT, "get %s: no such volume", name);
	*ret = vol_json(a, name, meta);
	json_decref(meta);
	return 0;
}

bool volume_is_anonymous(struct agent *a, const char *name)
{
	json_t *meta = vol_meta(a, name);
	bool anon = json_is_true(json_object_get(meta, "Anonymous"));
	json_decref(meta);
	return anon;
}

int volume_create(struct agent *a, const char *name, json_t *labels, bool anonymous, json_t **ret,
		  struct shoal_err *err)
{
	int r = container_volume_name_check("Name", name, err);
	if (r < 0) {
		err->status = 400;
		return r;
	}
	json_t *meta = vol_meta(a, name);
	if (meta) {
		if (ret)
			*ret = vol_json(a, name, meta);
		json_decref(meta);
		return 0;
	}
	char dir[4096], data[4096], p[4200], now[40];
	if (vol_dir(a, NULL, dir, sizeof(dir)) < 0 ||
	    volume_data_path(a, name, data, sizeof(data)) < 0)
		return shoal_err_set(err, ENAMETOOLONG, "volume path too long");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return shoal_err_errno(err, errno, "creating %s", dir);
	vol_dir(a, name, dir, sizeof(dir));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return shoal_err_errno(err, errno, "creating volume %s", name);
	/* the data directory as Docker makes it: root's, world-readable */
	if (mkdir(data, 0755) < 0 && errno != EEXIST)
		return shoal_err_errno(err, errno, "creating volume %s", name);
	format_rfc3339(now_ns(), now);
	meta = json_pack("{s:s, s:s, s:O, s:b}", "Name", name, "CreatedAt", now, "Labels",
			 json_is_object(labels) ? labels : json_object(), "Anonymous", anonymous);
	_cleanup_free_ char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
	snprintf(p, sizeof(p), "%s/volume.json", dir);
	r = text ? write_file_atomic(p, text, strlen(text), 0600) : -ENOMEM;
	if (r < 0) {
		json_decref(meta);
		rmdir(data);
		rmdir(dir);
		return shoal_err_errno(err, -r, "recording volume %s", name);
	}
	if (ret)
		*ret = vol_json(a, name, meta);
	json_decref(meta);
	events_volume(a, "create", name);
	log_info("volume %s created", name);
	return 0;
}

static int cmp_name(const void *x, const void *y)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)x, "Name")),
		      json_string_value(json_object_get(*(json_t *const *)y, "Name")));
}

int volume_list(struct agent *a, json_t **ret, struct shoal_err *err)
{
	char dir[4096];
	json_t *out = json_array();
	if (!out || vol_dir(a, NULL, dir, sizeof(dir)) < 0) {
		json_decref(out);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	DIR *d = opendir(dir);
	if (!d && errno != ENOENT) {
		json_decref(out);
		return shoal_err_errno(err, errno, "reading %s", dir);
	}
	size_t n = 0;
	json_t **v = NULL;
	for (struct dirent *de; d && (de = readdir(d));) {
		if (de->d_name[0] == '.' || container_volume_name_check("", de->d_name, NULL) < 0)
			continue;
		json_t *meta = vol_meta(a, de->d_name);
		if (!meta)
			continue;
		json_t **nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			json_decref(meta);
			break;
		}
		v = nv;
		v[n++] = vol_json(a, de->d_name, meta);
		json_decref(meta);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_name);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(out, v[i]);
	free(v);
	*ret = out;
	return 0;
}

json_t *volume_users(struct agent *a, const char *name)
{
	json_t *ids = json_array();
	for (struct container *c = a->containers; c; c = c->next) {
		size_t i;
		json_t *m;
		json_array_foreach(c->mounts, i, m)
		{
			const char *n = json_string_value(json_object_get(m, "Name"));
			if (n &&
			    strcmp(json_string_value(json_object_get(m, "Type")) ?: "", "volume") ==
				    0 &&
			    strcmp(n, name) == 0) {
				json_array_append_new(ids, json_string(c->id));
				break;
			}
		}
	}
	return ids;
}

static __thread int64_t size_sum;

static int size_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		size_sum += (int64_t)st->st_blocks * 512;
	return 0;
}

int64_t volume_size(struct agent *a, const char *name)
{
	char p[4096];
	if (volume_data_path(a, name, p, sizeof(p)) < 0)
		return 0;
	size_sum = 0;
	nftw(p, size_entry, 32, FTW_PHYS | FTW_MOUNT);
	return size_sum;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_work(void *arg)
{
	nftw(arg, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void rm_done(void *arg)
{
	free(arg);
}

int volume_remove(struct agent *a, const char *name, struct shoal_err *err)
{
	json_t *v = NULL;
	int r = volume_get(a, name, &v, err);
	if (r < 0)
		return r;
	json_decref(v);
	json_t *users = volume_users(a, name);
	if (json_array_size(users)) {
		char ids[256] = "";
		size_t i, off = 0;
		json_t *id;
		json_array_foreach(users, i, id) if (off < sizeof(ids) - 16) off +=
			(size_t)snprintf(ids + off, sizeof(ids) - off, "%s%.12s", i ? ", " : "",
					 json_string_value(id));
		json_decref(users);
		return shoal_err_set_status(err, 409, EBUSY, "remove %s: volume is in use - [%s]",
					    name, ids);
	}
	json_decref(users);
	/* renamed out of the way at once, its content deleted beside the loop */
	char dir[4096], trash[4200];
	vol_dir(a, name, dir, sizeof(dir));
	snprintf(trash, sizeof(trash), "%s/volumes/.removing-%s-%llx", a->cfg.data_dir, name,
		 (unsigned long long)now_ns());
	if (rename(dir, trash) < 0)
		return shoal_err_errno(err, errno, "removing volume %s", name);
	char *arg = strdup(trash);
	if (!arg || worker_submit(a->worker, rm_work, rm_done, arg) < 0) {
		if (arg) {
			rm_work(arg);
			free(arg);
		}
	}
	events_volume(a, "destroy", name);
	log_info("volume %s removed", name);
	return 0;
}

/* ---- containers' mounts ---- */

int volumes_resolve(struct agent *a, json_t *body, json_t **ret, struct shoal_err *err)
{
	json_t *ms = NULL;
	int r = container_mounts_parse(body, json_object_get(body, "HostConfig"), &ms, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m)
	{
		const char *type = json_string_value(json_object_get(m, "Type"));
		if (strcmp(type, "bind") == 0) {
			const char *src = json_string_value(json_object_get(m, "Source"));
			struct stat st;
			if (!json_is_true(json_object_get(m, "CreateSource")) &&
			    stat(src, &st) < 0) {
				r = shoal_err_set_status(
					err, 400, EINVAL,
					"invalid mount config for type \"bind\": bind source path "
					"does not exist: %s",
					src);
				goto fail;
			}
			continue;
		}
		if (strcmp(type, "volume") != 0)
			continue;
		const char *name = json_string_value(json_object_get(m, "Name"));
		char anon[65];
		if (!name) {
			if ((r = random_hex_id(anon)) < 0) {
				shoal_err_errno(err, -r, "naming an anonymous volume");
				goto fail;
			}
			name = anon;
			json_object_set_new(m, "Name", json_string(anon));
			json_object_set_new(m, "Anonymous", json_true());
		}
		if ((r = volume_create(a, name, json_object_get(m, "Labels"),
				       json_is_true(json_object_get(m, "Anonymous")), NULL, err)) <
		    0)
			goto fail;
		json_object_set_new(m, "Driver", json_string("local"));
	}
	*ret = ms;
	return 0;
fail:
	/* what this call made anonymously goes again */
	for (size_t j = 0; j < i; j++) {
		json_t *e = json_array_get(ms, j);
		const char *n = json_string_value(json_object_get(e, "Name"));
		if (n && json_is_true(json_object_get(e, "Anonymous")))
			volume_remove(a, n, NULL);
	}
	json_decref(ms);
	return r;
}

int volumes_spec(struct agent *a, json_t *mounts, struct rt_mount **ret, size_t *ret_n,
		 char ***ret_paths, struct shoal_err *err)
{
	size_t n = json_array_size(mounts);
	*ret = NULL;
	*ret_n = 0;
	*ret_paths = NULL;
	if (!n)
		return 0;
	struct rt_mount *v = calloc(n, sizeof(*v));
	char **paths = calloc(n + 1, sizeof(*paths));
	if (!v || !paths) {
		free(v);
		free(paths);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	size_t i;
	json_t *m;
	json_array_foreach(mounts, i, m)
	{
		const char *type = json_string_value(json_object_get(m, "Type")) ?: "";
		struct rt_mount *rm = &v[i];
		rm->target = json_string_value(json_object_get(m, "Destination"));
		rm->readonly = !json_is_true(json_object_get(m, "RW"));
		if (strcmp(type, "tmpfs") == 0) {
			rm->type = RT_MOUNT_TMPFS;
			rm->noexec = json_is_true(json_object_get(m, "NoExec"));
			const char *d = json_string_value(json_object_get(m, "TmpfsData"));
			rm->data = d && *d ? d : NULL;
			continue;
		}
		rm->type = RT_MOUNT_BIND;
		if (strcmp(type, "bind") == 0) {
			rm->source = json_string_value(json_object_get(m, "Source"));
			if (json_is_true(json_object_get(m, "CreateSource")) &&
			    access(rm->source, F_OK) < 0 && mkdir_p(rm->source, 0755) < 0) {
				int e = errno;
				free(v);
				strv_free(paths);
				return shoal_err_errno(err, e, "creating bind source %s",
						       rm->source);
			}
			continue;
		}
		const char *name = json_string_value(json_object_get(m, "Name")) ?: "";
		char p[4096];
		int r;
		/* a volume removed by hand while the container was stopped comes back */
		if ((r = volume_create(a, name, NULL, json_is_true(json_object_get(m, "Anonymous")),
				       NULL, err)) < 0 ||
		    volume_data_path(a, name, p, sizeof(p)) < 0 || !(paths[i] = strdup(p))) {
			free(v);
			strv_free(paths);
			return r < 0 ? r : shoal_err_set(err, ENOMEM, "out of memory");
		}
		rm->source = paths[i];
	}
	*ret = v;
	*ret_n = n;
	*ret_paths = paths;
	return 0;
}

json_t *volumes_inspect(struct agent *a, json_t *mounts)
{
	json_t *out = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(mounts, i, m)
	{
		const char *type = json_string_value(json_object_get(m, "Type")) ?: "";
		json_t *e = json_pack("{s:s, s:s, s:O, s:O}", "Type", type, "Destination",
				      json_string_value(json_object_get(m, "Destination")) ?: "",
				      "Mode", json_object_get(m, "Mode") ?: json_string(""), "RW",
				      json_object_get(m, "RW") ?: json_true());
		if (strcmp(type, "volume") == 0) {
			const char *name = json_string_value(json_object_get(m, "Name")) ?: "";
			char p[4096] = "";
			volume_data_path(a, name, p, sizeof(p));
			json_object_set_new(e, "Name", json_string(name));
			json_object_set_new(e, "Source", json_string(p));
			json_object_set_new(e, "Driver", json_string("local"));
			json_object_set_new(e, "Propagation", json_string(""));
		} else if (strcmp(type, "bind") == 0) {
			json_object_set(e, "Source", json_object_get(m, "Source"));
			json_object_set_new(e, "Propagation", json_string("rprivate"));
		} else {
			json_object_set_new(e, "Source", json_string(""));
			json_object_set_new(e, "Propagation", json_string(""));
		}
		json_array_append_new(out, e);
	}
	return out;
}

json_t *volumes_anonymous(json_t *mounts)
{
	json_t *names = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(mounts, i, m)
	{
		if (json_is_true(json_object_get(m, "Anonymous")) && json_object_get(m, "Name"))
			json_array_append(names, json_object_get(m, "Name"));
	}
	return names;
}

void volumes_remove_names(struct agent *a, json_t *names)
{
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n)
	{
		struct shoal_err err = {0};
		if (volume_remove(a, json_string_value(n), &err) < 0 && err.status != 409)
			log_warn("volume %s: %s", json_string_value(n), err.msg);
	}
}

void volumes_init(struct agent *a)
{
	char dir[4096];
	if (vol_dir(a, NULL, dir, sizeof(dir)) < 0)
		return;
	DIR *d = opendir(dir);
	for (struct dirent *de; d && (de = readdir(d));) {
		if (strncmp(de->d_name, ".removing-", 10) != 0)
			continue;
		char *p = NULL;
		if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
			break;
		if (worker_submit(a->worker, rm_work, rm_done, p) < 0) {
			rm_work(p);
			free(p);
		}
	}
	if (d)
		closedir(d);
}
