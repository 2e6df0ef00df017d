// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "overlay/bridge.h"
#include "overlay/netns-internal.h"
#include "overlay/nl-internal.h"

/* The kernel gives every namespace's loopback this index. */
#define LOOPBACK_IFINDEX 1

int netns_dir_prepare(const char *dir, struct shoal_err *err)
{
	int r = mkdir_p(dir, 0755);
	if (r < 0)
		return shoal_err_errno(err, r, "creating netns directory %s", dir);
	if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return shoal_err_errno(err, errno, "making %s a shared mount", dir);
	/* Not a mount point yet: make it one. */
	if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0)
		return shoal_err_errno(err, errno, "bind-mounting %s on itself", dir);
	if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0)
		return shoal_err_errno(err, errno, "making %s a shared mount", dir);
	return 0;
}

struct ns_job {
	const char *path;
	int nsfd;
	int nlfd;
	struct shoal_err *err;
	int r;
};

/*
 * Runs on a short-lived thread: unshare(CLONE_NEWNET) moves only this thread
 * into the new namespace, and the thread ends there, so the caller's thread
 * never changes namespace and no failure can leave it in the wrong one. The
 * netlink socket opened here stays bound to the new namespace after the
 * thread is gone.
 */
static void *ns_thread(void *arg)
{
	struct ns_job *job = arg;

	if (unshare(CLONE_NEWNET) < 0) {
		job->r = shoal_err_errno(job->err, errno, "creating network namespace");
		return NULL;
	}
	if (mount("/proc/thread-self/ns/net", job->path, "none", MS_BIND, NULL) < 0) {
		job->r = shoal_err_errno(job->err, errno, "bind-mounting network namespace at %s",
					 job->path);
		return NULL;
	}
	job->nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (job->nsfd < 0) {
		job->r = shoal_err_errno(job->err, errno, "opening the new network namespace");
		return NULL;
	}
	job->nlfd = nl_socket_fd();
	if (job->nlfd < 0) {
		job->r = shoal_err_errno(job->err, job->nlfd,
					 "opening a netlink socket in the new network namespace");
		return NULL;
	}
	job->r = 0;
	return NULL;
}

int netns_create_open(const char *path, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == EEXIST)
			return shoal_err_set(err, EEXIST,
					     "network namespace %s already exists: remove it first",
					     path);
		return shoal_err_errno(err, errno, "creating network namespace file %s", path);
	}
	close(fd);

	struct ns_job job = {.path = path, .nsfd = -EBADF, .nlfd = -EBADF, .err = err, .r = -EIO};
	pthread_t t;
	int r = pthread_create(&t, NULL, ns_thread, &job);
	if (r != 0) {
		unlink(path);
		return shoal_err_errno(err, r, "starting the network namespace thread");
	}
	pthread_join(t, NULL);
	if (job.r < 0) {
		if (job.nsfd >= 0)
			close(job.nsfd);
		netns_remove(path);
		return job.r;
	}
	*ret_nsfd = job.nsfd;
	*ret_nlfd = job.nlfd;
	return 0;
}

int netns_lo_up(int nlfd, struct shoal_err *err)
{
	struct nl_sock s;
	nl_sock_adopt(&s, nlfd);
	_cleanup_free_ char *buf = malloc(NL_BUF_SIZE);
	if (!buf)
		return shoal_err_set(err, ENOMEM, "bringing lo up");
	struct nlmsghdr *nlh = nl_build_link_set(buf, LOOPBACK_IFINDEX, NULL, 1, 0);
	char ext[256];
	int r = nl_sock_transact(&s, buf, nlh->nlmsg_len, NULL, NULL, ext, sizeof(ext));
	if (r < 0)
		return shoal_err_errno(err, r, "bringing lo up%s%s", ext[0] ? ": " : "", ext);
	return 0;
}

int netns_create(const char *path, struct shoal_err *err)
{
	char dirbuf[PATH_MAX];
	if (!path || !*path || strlen(path) >= sizeof(dirbuf))
		return shoal_err_set(err, EINVAL, "invalid network namespace path");
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	int r = netns_dir_prepare(dirname(dirbuf), err);
	if (r < 0)
		return r;

	_cleanup_close_ int nsfd = -EBADF, nlfd = -EBADF;
	r = netns_create_open(path, &nsfd, &nlfd, err);
	if (r < 0)
		return r;
	r = netns_lo_up(nlfd, err);
	if (r < 0) {
		netns_remove(path);
		return shoal_err_wrap(err, "network namespace %s", path);
	}
	return 0;
}

int netns_remove(const char *path)
{
	int r = 0;
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		r = -errno;
	if (unlink(path) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}
