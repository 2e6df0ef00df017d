// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "runtime/runtime-internal.h"

/* The container's passwd and group files are read with plain stdio and no NSS:
 * they belong to the image, not to the host. */

static bool parse_id(const char *s, uint32_t *ret)
{
	if (!s || !*s)
		return false;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX - 1)
			return false;
	}
	*ret = (uint32_t)v;
	return true;
}

/* Splits line at ':' into at most n fields; returns how many were found. */
static size_t split_fields(char *line, char **f, size_t n)
{
	size_t i = 0;
	f[i++] = line;
	for (char *p = line; *p && i < n; p++) {
		if (*p == ':') {
			*p = '\0';
			f[i++] = p + 1;
		}
	}
	return i;
}

static void chomp(char *s)
{
	size_t l = strlen(s);
	while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == '\r'))
		s[--l] = '\0';
}

struct pw_entry {
	bool found;
	char name[256];
	uint32_t uid, gid;
	char home[PATH_MAX];
};

/* Finds the passwd entry whose name is want (or, when by_id, whose uid is id). */
static void passwd_find(FILE *f, const char *want, bool by_id, uint32_t id, struct pw_entry *ret)
{
	char buf[4096];
	ret->found = false;
	if (!f)
		return;
	rewind(f);
	while (fgets(buf, sizeof(buf), f)) {
		chomp(buf);
		if (buf[0] == '#' || buf[0] == '\0')
			continue;
		char *fl[7];
		if (split_fields(buf, fl, 7) < 7)
			continue;
		uint32_t uid, gid;
		if (!parse_id(fl[2], &uid) || !parse_id(fl[3], &gid))
			continue;
		if (by_id ? uid != id : strcmp(fl[0], want) != 0)
			continue;
		ret->found = true;
		snprintf(ret->name, sizeof(ret->name), "%s", fl[0]);
		ret->uid = uid;
		ret->gid = gid;
		snprintf(ret->home, sizeof(ret->home), "%s", fl[5]);
		return;
	}
}

static bool member_of(char *members, const char *name)
{
	char *save = NULL;
	for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
		while (*m == ' ')
			m++;
		if (strcmp(m, name) == 0)
			return true;
	}
	return false;
}

/* Finds a group by name or (when by_id) by gid. */
static bool group_find(FILE *f, const char *want, bool by_id, uint32_t id, uint32_t *ret_gid)
{
	char buf[8192];
	if (!f)
		return false;
	rewind(f);
	while (fgets(buf, sizeof(buf), f)) {
		chomp(buf);
		if (buf[0] == '#' || buf[0] == '\0')
			continue;
		char *fl[4];
		if (split_fields(buf, fl, 4) < 3)
			continue;
		uint32_t gid;
		if (!parse_id(fl[2], &gid))
			continue;
		if (by_id ? gid != id : strcmp(fl[0], want) != 0)
			continue;
		*ret_gid = gid;
		return true;
	}
	return false;
}

static int supplementary_groups(FILE *f, const char *user, struct rt_user *u)
{
	char buf[8192];
	if (!f)
		return 0;
	rewind(f);
	while (fgets(buf, sizeof(buf), f)) {
		chomp(buf);
		if (buf[0] == '#' || buf[0] == '\0')
			continue;
		char *fl[4];
		if (split_fields(buf, fl, 4) < 4)
			continue;
		uint32_t gid;
		if (!parse_id(fl[2], &gid) || !member_of(fl[3], user))
			continue;
		bool dup = false;
		for (size_t i = 0; i < u->ngroups; i++)
			dup |= u->groups[i] == gid;
		if (dup)
			continue;
		if (u->ngroups >= RT_MAX_GROUPS)
			return -E2BIG;
		u->groups[u->ngroups++] = gid;
	}
	return 0;
}

int rt_user_resolve(const char *user, const char *passwd_path, const char *group_path,
		    struct rt_user *ret, struct shoal_err *err)
{
	char spec[512];
	if (!user)
		user = "";
	if (strlen(user) >= sizeof(spec))
		return shoal_err_set_status(err, 400, EINVAL, "user name too long");
	snprintf(spec, sizeof(spec), "%s", user);
	char *uname = spec, *gname = strchr(spec, ':');
	if (gname)
		*gname++ = '\0';
	if (!*uname)
		uname = (char *)"0";

	_cleanup_fclose_ FILE *pw = fopen(passwd_path, "re");
	_cleanup_fclose_ FILE *gr = fopen(group_path, "re");

	struct rt_user u = {0};
	struct pw_entry e;
	uint32_t id;
	bool numeric = parse_id(uname, &id);
	passwd_find(pw, uname, numeric, numeric ? id : 0, &e);
	if (e.found) {
		u.uid = e.uid;
		u.gid = e.gid;
		snprintf(u.home, sizeof(u.home), "%s", e.home[0] ? e.home : "/");
	} else if (numeric) {
		u.uid = id;
		u.gid = 0;
		snprintf(u.home, sizeof(u.home), "/");
	} else {
		return shoal_err_set_status(
			err, 400, ENOENT,
			"unable to find user %s: no matching entries in passwd file", uname);
	}

	if (gname && *gname) {
		uint32_t gid;
		bool gnum = parse_id(gname, &id);
		if (group_find(gr, gname, gnum, gnum ? id : 0, &gid))
			u.gid = gid;
		else if (gnum)
			u.gid = id;
		else
			return shoal_err_set_status(
				err, 400, ENOENT,
				"unable to find group %s: no matching entries in group file",
				gname);
	}
	if (e.found) {
		int r = supplementary_groups(gr, e.name, &u);
		if (r < 0)
			return shoal_err_set_status(err, 400, -r, "user %s is in too many groups",
						    e.name);
	}
	*ret = u;
	return 0;
}

const char *rt_env_get(const char *const *env, const char *name)
{
	size_t l = strlen(name);
	const char *v = NULL;
	for (; env && *env; env++)
		if (strncmp(*env, name, l) == 0 && (*env)[l] == '=')
			v = *env + l + 1;
	return v;
}

static int check_exec(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

int rt_lookup_exec(const char *file, const char *path_env, char *ret, size_t len,
		   struct shoal_err *err)
{
	if (!file || !*file)
		return shoal_err_set_status(err, 400, ENOENT,
					    "exec: \"\": executable file not found in $PATH");
	if (strchr(file, '/')) {
		int r = check_exec(file);
		if (r == -ENOENT)
			return shoal_err_set_status(
				err, 400, ENOENT,
				"exec: \"%s\": stat %s: no such file or directory", file, file);
		if (r == -EISDIR)
			return shoal_err_set_status(err, 400, EACCES,
						    "exec: \"%s\": is a directory", file);
		if (r < 0)
			return shoal_err_set_status(err, 400, -r, "exec: \"%s\": permission denied",
						    file);
		if (strlen(file) >= len)
			return shoal_err_set(err, ENAMETOOLONG, "exec: \"%s\": name too long",
					     file);
		snprintf(ret, len, "%s", file);
		return 0;
	}
	if (!path_env)
		path_env = RT_DEFAULT_PATH;
	const char *p = path_env;
	for (;;) {
		const char *end = strchrnul(p, ':');
		size_t dl = (size_t)(end - p);
		char cand[PATH_MAX];
		/* An empty PATH element means the current directory, as in execvp. */
		int n = dl == 0 ? snprintf(cand, sizeof(cand), "./%s", file)
				: snprintf(cand, sizeof(cand), "%.*s/%s", (int)dl, p, file);
		if (n > 0 && (size_t)n < sizeof(cand) && check_exec(cand) == 0 && (size_t)n < len) {
			memcpy(ret, cand, (size_t)n + 1);
			return 0;
		}
		if (!*end)
			break;
		p = end + 1;
	}
	return shoal_err_set_status(err, 400, ENOENT,
				    "exec: \"%s\": executable file not found in $PATH", file);
}
