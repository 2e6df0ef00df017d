// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/runtime-internal.h"

/* The bundle's directories and generated files: written by the start's setup
 * helper, or ahead of the start by the agent (see rt_spec.bundle_ready). */

static int write_bundle_file(const char *dir, const char *name, const char *content,
			     struct shoal_err *err)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return shoal_err_errno(err, errno, "creating %s", p);
	int r = write_all(fd, content, strlen(content));
	if (r < 0)
		return shoal_err_errno(err, -r, "writing %s", p);
	return 0;
}

int rt_bundle_prepare(const struct rt_spec *s, struct shoal_err *err)
{
	char p[PATH_MAX];
	static const char *const dirs[] = {"upper", "work", "merged"};
	int r = mkdir_p(s->bundle_dir, 0710);
	if (r < 0)
		return shoal_err_errno(err, -r, "creating %s", s->bundle_dir);
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(p, sizeof(p), "%s/%s", s->bundle_dir, dirs[i]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return shoal_err_errno(err, errno, "creating %s", p);
	}
	const char *hn = s->hostname && *s->hostname ? s->hostname : "localhost";
	static const char default_hosts[] =
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
		"ff02::2\tip6-allrouters\n";
	char hostname[300];
	snprintf(hostname, sizeof(hostname), "%s\n", hn);
	if ((r = write_bundle_file(s->bundle_dir, "hosts", s->hosts ? s->hosts : default_hosts,
				   err)) < 0 ||
	    (r = write_bundle_file(s->bundle_dir, "hostname", hostname, err)) < 0)
		return r;
	if (s->resolv_conf &&
	    (r = write_bundle_file(s->bundle_dir, "resolv.conf", s->resolv_conf, err)) < 0)
		return r;
	return 0;
}
