// SPDX-License-Identifier: Apache-2.0
/*
 * A create's mounts (HostConfig.Binds, HostConfig.Mounts, HostConfig.Tmpfs
 * and Config.Volumes) as one checked list, in Docker's terms: pure, so that
 * it is fuzzed with the rest of the create checks. What shoal does not do is
 * refused naming the field; nothing is dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/container-config.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* A path inside the container: absolute, not the root, no "." or ".."
 * component, no empty component (Docker cleans them; shoal asks for the
 * clean form rather than guess). */
static int check_target(const char *field, const char *t, struct shoal_err *err)
{
	if (!t || t[0] != '/')
		return shoal_err_set(err, EINVAL, "%s: the destination must be an absolute path",
				     field);
	if (strcmp(t, "/") == 0)
		return shoal_err_set(err, EINVAL, "%s: the destination cannot be /", field);
	if (strlen(t) >= CONTAINER_MOUNT_PATH_MAX)
		return shoal_err_set(err, EINVAL, "%s: the destination is longer than %d bytes",
				     field, CONTAINER_MOUNT_PATH_MAX - 1);
	for (const char *p = t; *p;) {
		const char *c = p + 1, *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);
		if ((n == 0 && *e) || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.') || (n == 0 && !*e && p != t))
			return shoal_err_set(err, EINVAL,
					     "%s: destination %s is not a clean path (no empty, . "
					     "or .. parts, no trailing /)",
					     field, t);
		p = e;
	}
	return 0;
}

static int check_source_path(const char *field, const char *s, struct shoal_err *err)
{
	if (!s || s[0] != '/')
		return shoal_err_set(err, EINVAL, "%s: a bind source must be an absolute host path",
				     field);
	if (strlen(s) >= CONTAINER_MOUNT_PATH_MAX)
		return shoal_err_set(err, EINVAL, "%s: the source is longer than %d bytes", field,
				     CONTAINER_MOUNT_PATH_MAX - 1);
	return 0;
}

int container_volume_name_check(const char *field, const char *name, struct shoal_err *err)
{
	size_t n = name ? strlen(name) : 0;
	bool ok = n >= 2 && n <= CONTAINER_VOLUME_NAME_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		char ch = name[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');
		ok = alnum || (i > 0 && (ch == '_' || ch == '.' || ch == '-'));
	}
	if (!ok)
		return shoal_err_set(err, EINVAL,
				     "%s: \"%s\" is not a valid volume name: 2 to %d characters "
				     "of [a-zA-Z0-9][a-zA-Z0-9_.-]",
				     field, name ? name : "", CONTAINER_VOLUME_NAME_MAX);
	return 0;
}

static json_t *entry(const char *type, const char *dest, bool rw)
{
	return json_pack("{s:s, s:s, s:b}", "Type", type, "Destination", dest, "RW", rw);
}

/* "ro,nocopy" and the like, for Binds. */
static int bind_mode(const char *field, const char *mode, bool volume, json_t *e,
		     struct shoal_err *err)
{
	_cleanup_free_ char *dup = strdup(mode);
	if (!dup)
		return shoal_err_set(err, ENOMEM, "out of memory");
	bool rw_set = false;
	for (char *save = NULL, *o = strtok_r(dup, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (strcmp(o, "ro") == 0 || strcmp(o, "rw") == 0) {
			if (rw_set)
				return shoal_err_set(err, EINVAL, "%s: ro and rw given twice",
						     field);
			rw_set = true;
			json_object_set_new(e, "RW", json_boolean(o[1] == 'w'));
		} else if (strcmp(o, "rprivate") == 0 && !volume) {
			continue; /* the default */
		} else if (strcmp(o, "nocopy") == 0 && volume) {
			continue; /* shoal never copies the image's content into a volume */
		} else {
			return shoal_err_set(
				err, EINVAL,
				"%s: mode option \"%s\" is not supported by shoal (ro, rw%s)",
				field, o, volume ? ", nocopy" : ", rprivate");
		}
	}
	json_object_set_new(e, "Mode", json_string(mode));
	return 0;
}

static int parse_bind(const char *field, const char *spec, json_t *out, struct shoal_err *err)
{
	/* SOURCE:DEST[:MODE]; DEST alone asks for an anonymous volume */
	_cleanup_free_ char *dup = strdup(spec);
	if (!dup)
		return shoal_err_set(err, ENOMEM, "out of memory");
	char *parts[4] = {0};
	size_t n = 0;
	for (char *p = dup; n < 4;) {
		parts[n++] = p;
		char *c = strchr(p, ':');
		if (!c)
			break;
		*c = '\0';
		p = c + 1;
	}
	if (n < 2 || n > 3 || !parts[0][0] || !parts[1][0])
		return shoal_err_set(err, EINVAL,
				     "%s: \"%s\": expected SOURCE:DESTINATION[:MODE] (a host path "
				     "or a volume name, then a path in the container)",
				     field, spec);
	int r = check_target(field, parts[1], err);
	if (r < 0)
		return r;
	bool volume = parts[0][0] != '/';
	json_t *e = entry(volume ? "volume" : "bind", parts[1], true);
	if (volume) {
		if ((r = container_volume_name_check(field, parts[0], err)) < 0) {
			json_decref(e);
			return r;
		}
		json_object_set_new(e, "Name", json_string(parts[0]));
	} else {
		if ((r = check_source_path(field, parts[0], err)) < 0) {
			json_decref(e);
			return r;
		}
		json_object_set_new(e, "Source", json_string(parts[0]));
		/* -v makes a missing host directory, as Docker does */
		json_object_set_new(e, "CreateSource", json_true());
		json_object_set_new(e, "Propagation", json_string("rprivate"));
	}
	json_object_set_new(e, "Mode", json_string(""));
	if (n == 3 && (r = bind_mode(field, parts[2], volume, e, err)) < 0) {
		json_decref(e);
		return r;
	}
	json_array_append_new(out, e);
	return 0;
}

/* Every member of obj is one of the listed keys or asks for nothing. */
static int only_keys(const char *field, json_t *obj, const char *const *keys, size_t n,
		     struct shoal_err *err)
{
	const char *k;
	json_t *v;
	if (obj && !json_is_object(obj) && !json_is_null(obj))
		return shoal_err_set(err, EINVAL, "%s: expected an object", field);
	json_object_foreach(obj, k, v)
	{
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(k, keys[i]) == 0;
		if (known || json_is_null(v) || json_is_false(v) ||
		    (json_is_string(v) && !json_string_length(v)) ||
		    (json_is_object(v) && !json_object_size(v)))
			continue;
		return shoal_err_set(err, EINVAL,
				     "%s.%s: not supported by shoal; leave it out (it would not "
				     "be applied)",
				     field, k);
	}
	return 0;
}

static int tmpfs_size_mode(const char *field, json_t *to, json_t *e, struct shoal_err *err)
{
	char data[128] = "";
	json_t *size = json_object_get(to, "SizeBytes"), *mode = json_object_get(to, "Mode");
	if (size && !json_is_null(size)) {
		if (!json_is_integer(size) || json_integer_value(size) < 0)
			return shoal_err_set(err, EINVAL,
					     "%s.TmpfsOptions.SizeBytes: expected bytes, 0 or more",
					     field);
		if (json_integer_value(size) > 0)
			snprintf(data, sizeof(data), "size=%lld",
				 (long long)json_integer_value(size));
	}
	if (mode && !json_is_null(mode)) {
		if (!json_is_integer(mode) || json_integer_value(mode) < 0 ||
		    json_integer_value(mode) > 07777)
			return shoal_err_set(err, EINVAL,
					     "%s.TmpfsOptions.Mode: expected file mode bits",
					     field);
		if (json_integer_value(mode) > 0) {
			size_t l = strlen(data);
			snprintf(data + l, sizeof(data) - l, "%smode=%llo", l ? "," : "",
				 (unsigned long long)json_integer_value(mode));
		}
	}
	json_object_set_new(e, "TmpfsData", json_string(data));
	json_object_set_new(e, "NoExec", json_true());
	return 0;
}

static int parse_mount(const char *field, json_t *m, json_t *out, struct shoal_err *err)
{
	static const char *const keys[] = {"Type",	    "Source",	   "Target",
					   "ReadOnly",	    "Consistency", "BindOptions",
					   "VolumeOptions", "TmpfsOptions"};
	int r = only_keys(field, m, keys, ARRAY_SIZE(keys), err);
	if (r < 0)
		return r;
	const char *type = json_string_value(json_object_get(m, "Type"));
	const char *src = json_string_value(json_object_get(m, "Source"));
	const char *target = json_string_value(json_object_get(m, "Target"));
	const char *cons = json_string_value(json_object_get(m, "Consistency"));
	json_t *ro = json_object_get(m, "ReadOnly");
	char f[160];
	if (!type)
		return shoal_err_set(err, EINVAL, "%s.Type: required (bind, volume or tmpfs)",
				     field);
	snprintf(f, sizeof(f), "%s.Target", field);
	if ((r = check_target(f, target, err)) < 0)
		return r;
	if (ro && !json_is_boolean(ro) && !json_is_null(ro))
		return shoal_err_set(err, EINVAL, "%s.ReadOnly: expected true or false", field);
	if (cons && *cons && strcmp(cons, "default") != 0 && strcmp(cons, "consistent") != 0)
		return shoal_err_set(err, EINVAL,
				     "%s.Consistency: \"%s\" is not supported by shoal (default)",
				     field, cons);
	json_t *e = entry(type, target, !json_is_true(ro));
	json_object_set_new(e, "Mode", json_string(""));
	if (strcmp(type, "bind") == 0) {
		static const char *const bkeys[] = {"Propagation", "CreateMountpoint"};
		json_t *bo = json_object_get(m, "BindOptions");
		const char *prop = json_string_value(json_object_get(bo, "Propagation"));
		snprintf(f, sizeof(f), "%s.BindOptions", field);
		if ((r = only_keys(f, bo, bkeys, ARRAY_SIZE(bkeys), err)) < 0)
			goto fail;
		snprintf(f, sizeof(f), "%s.Source", field);
		if ((r = check_source_path(f, src, err)) < 0)
			goto fail;
		if (prop && *prop && strcmp(prop, "rprivate") != 0) {
			r = shoal_err_set(err, EINVAL,
					  "%s.BindOptions.Propagation: \"%s\" is not supported by "
					  "shoal (rprivate)",
					  field, prop);
			goto fail;
		}
		if (json_object_get(m, "VolumeOptions") || json_object_get(m, "TmpfsOptions")) {
			r = shoal_err_set(
				err, EINVAL,
				"%s: VolumeOptions and TmpfsOptions do not go with a bind", field);
			goto fail;
		}
		json_object_set_new(e, "Source", json_string(src));
		json_object_set_new(e, "Propagation", json_string("rprivate"));
		json_object_set_new(
			e, "CreateSource",
			json_boolean(json_is_true(json_object_get(bo, "CreateMountpoint"))));
	} else if (strcmp(type, "volume") == 0) {
		static const char *const vkeys[] = {"NoCopy", "Labels", "DriverConfig"};
		json_t *vo = json_object_get(m, "VolumeOptions");
		snprintf(f, sizeof(f), "%s.VolumeOptions", field);
		if ((r = only_keys(f, vo, vkeys, ARRAY_SIZE(vkeys), err)) < 0)
			goto fail;
		json_t *dc = json_object_get(vo, "DriverConfig");
		const char *driver = json_string_value(json_object_get(dc, "Name"));
		if ((driver && *driver && strcmp(driver, "local") != 0) ||
		    json_object_size(json_object_get(dc, "Options"))) {
			r = shoal_err_set(err, EINVAL,
					  "%s.VolumeOptions.DriverConfig: only the local driver "
					  "without options is supported",
					  field);
			goto fail;
		}
		json_t *labels = json_object_get(vo, "Labels");
		if (labels && !json_is_null(labels)) {
			const char *k;
			json_t *v;
			if (!json_is_object(labels)) {
				r = shoal_err_set(err, EINVAL,
						  "%s.VolumeOptions.Labels: expected an object",
						  field);
				goto fail;
			}
			json_object_foreach(labels, k, v) if (!json_is_string(v))
			{
				r = shoal_err_set(err, EINVAL,
						  "%s.VolumeOptions.Labels.%s: expected a string",
						  field, k);
				goto fail;
			}
			json_object_set(e, "Labels", labels);
		}
		if (json_object_get(m, "BindOptions") || json_object_get(m, "TmpfsOptions")) {
			r = shoal_err_set(
				err, EINVAL,
				"%s: BindOptions and TmpfsOptions do not go with a volume", field);
			goto fail;
		}
		if (src && *src) {
			snprintf(f, sizeof(f), "%s.Source", field);
			if ((r = container_volume_name_check(f, src, err)) < 0)
				goto fail;
			json_object_set_new(e, "Name", json_string(src));
		}
	} else if (strcmp(type, "tmpfs") == 0) {
		static const char *const tkeys[] = {"SizeBytes", "Mode"};
		json_t *to = json_object_get(m, "TmpfsOptions");
		snprintf(f, sizeof(f), "%s.TmpfsOptions", field);
		if (src && *src) {
			r = shoal_err_set(err, EINVAL, "%s.Source: a tmpfs has no source", field);
			goto fail;
		}
		if ((r = only_keys(f, to, tkeys, ARRAY_SIZE(tkeys), err)) < 0 ||
		    (r = tmpfs_size_mode(field, to, e, err)) < 0)
			goto fail;
	} else {
		r = shoal_err_set(err, EINVAL,
				  "%s.Type: \"%s\" is not supported by shoal (bind, volume, tmpfs)",
				  field, type);
		goto fail;
	}
	json_array_append_new(out, e);
	return 0;
fail:
	json_decref(e);
	return r;
}

/* --tmpfs /run:rw,size=64m,mode=1777 */
static int parse_tmpfs(const char *field, const char *dest, const char *opts, json_t *out,
		       struct shoal_err *err)
{
	int r = check_target(field, dest, err);
	if (r < 0)
		return r;
	json_t *e = entry("tmpfs", dest, true);
	bool noexec = true;
	char data[256] = "";
	_cleanup_free_ char *dup = strdup(opts ? opts : "");
	if (!dup) {
		json_decref(e);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	for (char *save = NULL, *o = strtok_r(dup, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (strcmp(o, "ro") == 0 || strcmp(o, "rw") == 0) {
			json_object_set_new(e, "RW", json_boolean(o[1] == 'w'));
		} else if (strcmp(o, "exec") == 0 || strcmp(o, "noexec") == 0) {
			noexec = o[0] == 'n';
		} else if (strcmp(o, "nosuid") == 0 || strcmp(o, "nodev") == 0) {
			continue; /* always */
		} else if (strncmp(o, "size=", 5) == 0 || strncmp(o, "mode=", 5) == 0 ||
			   strncmp(o, "uid=", 4) == 0 || strncmp(o, "gid=", 4) == 0 ||
			   strncmp(o, "nr_inodes=", 10) == 0) {
			const char *v = strchr(o, '=') + 1;
			bool good = *v != '\0';
			for (const char *p = v; *p && good; p++)
				good = (*p >= '0' && *p <= '9') ||
				       (strncmp(o, "size=", 5) == 0 && p[1] == '\0' &&
					strchr("kKmMgG%", *p));
			size_t l = strlen(data);
			if (!good || l + strlen(o) + 2 > sizeof(data)) {
				json_decref(e);
				return shoal_err_set(err, EINVAL, "%s: bad tmpfs option \"%s\"",
						     field, o);
			}
			snprintf(data + l, sizeof(data) - l, "%s%s", l ? "," : "", o);
		} else {
			json_decref(e);
			return shoal_err_set(
				err, EINVAL,
				"%s: tmpfs option \"%s\" is not supported by shoal "
				"(ro, rw, exec, noexec, nosuid, nodev, size, mode, uid, "
				"gid, nr_inodes)",
				field, o);
		}
	}
	json_object_set_new(e, "TmpfsData", json_string(data));
	json_object_set_new(e, "NoExec", json_boolean(noexec));
	json_object_set_new(e, "Mode", json_string(opts ? opts : ""));
	json_array_append_new(out, e);
	return 0;
}

/* At most CONTAINER_MOUNTS_MAX, one per destination. */
static int check_list(json_t *out, struct shoal_err *err)
{
	size_t i;
	json_t *v;
	if (json_array_size(out) > CONTAINER_MOUNTS_MAX)
		return shoal_err_set(err, EINVAL, "%zu mounts: at most %d are supported",
				     json_array_size(out), CONTAINER_MOUNTS_MAX);
	json_array_foreach(out, i, v)
	{
		const char *d = json_string_value(json_object_get(v, "Destination"));
		for (size_t j = 0; j < i; j++)
			if (strcmp(d, json_string_value(json_object_get(json_array_get(out, j),
									"Destination"))) == 0)
				return shoal_err_set(err, EINVAL, "Duplicate mount point: %s", d);
	}
	return 0;
}

int container_mounts_parse(json_t *config, json_t *hc, json_t **ret, struct shoal_err *err)
{
	json_t *out = json_array();
	char f[96];
	int r = 0;
	size_t i;
	json_t *v;
	if (!out)
		return shoal_err_set(err, ENOMEM, "out of memory");
	json_t *binds = json_object_get(hc, "Binds");
	if (binds && !json_is_null(binds) && !json_is_array(binds)) {
		r = shoal_err_set(err, EINVAL, "HostConfig.Binds: expected an array of strings");
		goto fail;
	}
	json_array_foreach(binds, i, v)
	{
		snprintf(f, sizeof(f), "HostConfig.Binds[%zu]", i);
		if (!json_is_string(v)) {
			r = shoal_err_set(err, EINVAL, "%s: expected a string", f);
			goto fail;
		}
		if ((r = parse_bind(f, json_string_value(v), out, err)) < 0)
			goto fail;
	}
	json_t *mounts = json_object_get(hc, "Mounts");
	if (mounts && !json_is_null(mounts) && !json_is_array(mounts)) {
		r = shoal_err_set(err, EINVAL, "HostConfig.Mounts: expected an array");
		goto fail;
	}
	json_array_foreach(mounts, i, v)
	{
		snprintf(f, sizeof(f), "HostConfig.Mounts[%zu]", i);
		if (!json_is_object(v)) {
			r = shoal_err_set(err, EINVAL, "%s: expected an object", f);
			goto fail;
		}
		if ((r = parse_mount(f, v, out, err)) < 0)
			goto fail;
	}
	json_t *tmpfs = json_object_get(hc, "Tmpfs");
	if (tmpfs && !json_is_null(tmpfs) && !json_is_object(tmpfs)) {
		r = shoal_err_set(err, EINVAL, "HostConfig.Tmpfs: expected an object");
		goto fail;
	}
	const char *k;
	json_object_foreach(tmpfs, k, v)
	{
		snprintf(f, sizeof(f), "HostConfig.Tmpfs[%.60s]", k);
		if (!json_is_string(v)) {
			r = shoal_err_set(err, EINVAL, "%s: expected a string of options", f);
			goto fail;
		}
		if ((r = parse_tmpfs(f, k, json_string_value(v), out, err)) < 0)
			goto fail;
	}
	/* Config.Volumes: a path with no source is an anonymous volume, unless
	 * something above already mounts there */
	json_t *vols = json_object_get(config, "Volumes");
	if (vols && !json_is_null(vols) && !json_is_object(vols)) {
		r = shoal_err_set(err, EINVAL, "Volumes: expected an object of paths");
		goto fail;
	}
	json_object_foreach(vols, k, v)
	{
		snprintf(f, sizeof(f), "Volumes[%.60s]", k);
		if ((r = check_target(f, k, err)) < 0)
			goto fail;
		bool covered = false;
		json_t *m;
		json_array_foreach(out, i, m) covered =
			covered ||
			strcmp(json_string_value(json_object_get(m, "Destination")), k) == 0;
		if (covered)
			continue;
		json_t *e = entry("volume", k, true);
		json_object_set_new(e, "Mode", json_string(""));
		json_object_set_new(e, "Anonymous", json_true());
		json_array_append_new(out, e);
	}
	if ((r = check_list(out, err)) < 0)
		goto fail;
	*ret = out;
	return 0;
fail:
	json_decref(out);
	return r;
}

int container_mounts_check(const char *field, json_t *mounts, struct shoal_err *err)
{
	_cleanup_(json_decrefp) json_t *out = json_array();
	char f[160];
	size_t i;
	json_t *v;
	int r;
	if (!out)
		return shoal_err_set(err, ENOMEM, "out of memory");
	if (mounts && !json_is_array(mounts))
		return shoal_err_set(err, EINVAL, "%s: expected an array", field);
	json_array_foreach(mounts, i, v)
	{
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (!json_is_object(v))
			return shoal_err_set(err, EINVAL, "%s: expected an object", f);
		if ((r = parse_mount(f, v, out, err)) < 0)
			return r;
	}
	return check_list(out, err);
}
