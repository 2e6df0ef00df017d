// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/runtime-internal.h"

/*
 * The container's file system, set up by the container child in its own mount
 * namespace. The overlay is mounted, then the child pivots into it at once:
 * every later mount target is resolved inside the new root, so a symlink in
 * the image (etc -> /somewhere) can never make us create or cover a host path.
 * What must come from the host (the bundle's generated files, /sys for host
 * networking) is cloned into detached mounts with open_tree() before the pivot
 * and attached with move_mount() after it (a plain bind from the old root is
 * refused once that root is detached).
 */

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct fd_set_ref {
	int *fds;
	size_t n;
};

static void fds_close(struct fd_set_ref *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->fds[i] >= 0)
			close(f->fds[i]);
}

static int clone_tree(const char *path, bool recursive, struct shoal_err *err)
{
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
			      OPEN_TREE_CLONE | O_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
	if (fd < 0)
		return shoal_err_errno(err, errno, "cloning mount of %s", path);
	return fd;
}

static int attach_tree(int fd, const char *target, struct shoal_err *err)
{
	if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return shoal_err_errno(err, errno, "mounting onto %s", target);
	return 0;
}

static const char *const masked_paths[] = {
	"/proc/asound",	       "/proc/acpi",	   "/proc/kcore",	"/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi",	       "/sys/firmware",
};

static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static int do_mount(const char *src, const char *target, const char *type, unsigned long flags,
		    const char *data, struct shoal_err *err)
{
	if (mount(src, target, type, flags, data) < 0)
		return shoal_err_errno(err, errno, "mounting %s on %s",
				       src ? src : (type ? type : "(remount)"), target);
	return 0;
}

static int ensure_dir(const char *path, struct shoal_err *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return shoal_err_errno(err, errno, "creating mount point %s", path);
	return 0;
}

static int ensure_file(const char *path, struct shoal_err *err)
{
	struct stat st;
	/* An existing file is used as is: opening it for writing would copy it up. */
	if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode))
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return shoal_err_errno(err, errno, "creating mount point %s", path);
	close(fd);
	return 0;
}

/* A directory and its parents, inside the container's root (after the
 * pivot: a symlink in the image resolves within it). */
static int ensure_dir_p(const char *path, struct shoal_err *err)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return shoal_err_set(err, ENAMETOOLONG, "mount point %s: path too long", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = ensure_dir(buf, err);
		*p = '/';
		if (r < 0)
			return r;
	}
	return ensure_dir(buf, err);
}

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
struct mount_attr_arg {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* The mounts the spec asks for, after the root and the generated files:
 * binds from trees cloned before the pivot (fds[i]), tmpfs made here. */
static int mounts_attach(const struct rt_spec *spec, const int *fds, struct shoal_err *err)
{
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct rt_mount *m = &spec->mounts[i];
		int r;
		if (m->type == RT_MOUNT_TMPFS) {
			unsigned long fl = MS_NOSUID | MS_NODEV | (m->noexec ? MS_NOEXEC : 0) |
					   (m->readonly ? MS_RDONLY : 0);
			if ((r = ensure_dir_p(m->target, err)) < 0 ||
			    (r = do_mount("tmpfs", m->target, "tmpfs", fl, m->data, err)) < 0)
				return r;
			continue;
		}
		struct stat st;
		if (fstat(fds[i], &st) < 0)
			return shoal_err_errno(err, errno, "bind source %s", m->source);
		if (S_ISDIR(st.st_mode)) {
			r = ensure_dir_p(m->target, err);
		} else {
			char parent[PATH_MAX];
			snprintf(parent, sizeof(parent), "%s", m->target);
			char *slash = strrchr(parent, '/');
			if (slash && slash != parent)
				*slash = '\0';
			r = slash && slash != parent ? ensure_dir_p(parent, err) : 0;
			if (r == 0)
				r = ensure_file(m->target, err);
		}
		if (r < 0 || (r = attach_tree(fds[i], m->target, err)) < 0)
			return r;
		if (!m->readonly)
			continue;
		/* read-only all the way down where the kernel can (5.12), else the
		 * bind itself */
		struct mount_attr_arg attr = {.attr_set = MOUNT_ATTR_RDONLY};
		if (syscall(SYS_mount_setattr, AT_FDCWD, m->target, AT_RECURSIVE, &attr,
			    sizeof(attr)) < 0 &&
		    (r = do_mount(NULL, m->target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL,
				  err)) < 0)
			return r;
	}
	return 0;
}

/* The lowerdir value for extra (a layer above the image's, or NULL) and the
 * image's layers, topmost first. Mount data is limited to a page: with many
 * layers the value goes relative to their common parent directory, returned
 * in ret_dir (else ""), which the mount must then be made from as cwd. */
static int overlay_lowerdir(const struct rt_spec *spec, const char *extra, char *buf, size_t len,
			    char *ret_dir, size_t dir_len, struct shoal_err *err)
{
	size_t nlayers = 0;
	for (const char *const *l = spec->layer_dirs; l && *l; l++)
		nlayers++;
	if (nlayers == 0)
		return shoal_err_set(err, EINVAL, "the image has no layers");

	const char *common = NULL;
	size_t common_len = 0;
	size_t total = extra ? strlen(extra) + 1 : 0;
	for (size_t i = 0; i < nlayers; i++)
		total += strlen(spec->layer_dirs[i]) + 1;
	if (total + strlen(spec->bundle_dir) * 2 + 64 > len) {
		const char *first = spec->layer_dirs[0];
		const char *slash = strrchr(first, '/');
		if (slash && slash != first) {
			common = first;
			common_len = (size_t)(slash - first);
			for (size_t i = 1; i < nlayers; i++) {
				const char *l = spec->layer_dirs[i];
				if (strncmp(l, common, common_len) != 0 || l[common_len] != '/' ||
				    strchr(l + common_len + 1, '/')) {
					common = NULL;
					break;
				}
			}
		}
	}
	size_t o = (size_t)snprintf(buf, len, "%s%s", extra ? extra : "", extra ? ":" : "");
	for (size_t i = nlayers; i-- > 0;) {
		const char *l = spec->layer_dirs[i];
		if (common)
			l += common_len + 1;
		int n = snprintf(buf + o, len - o, "%s%s", l, i > 0 ? ":" : "");
		if (n < 0 || (size_t)n >= len - o)
			return shoal_err_set(err, E2BIG,
					     "too many image layers for one overlay mount");
		o += (size_t)n;
	}
	snprintf(ret_dir, dir_len, "%.*s", common ? (int)common_len : 0, common ? common : "");
	return 0;
}

/* Mounts an overlay of extra and the image's layers at target: with the
 * bundle's upper and work directories, or read-only without them. */
static int mount_overlay(const struct rt_spec *spec, const char *extra, bool upper,
			 const char *target, struct shoal_err *err)
{
	char opts[4096], lower[3800], dir[PATH_MAX];
	int r = overlay_lowerdir(spec, extra, lower, sizeof(lower), dir, sizeof(dir), err);
	if (r < 0)
		return r;
	int n = snprintf(opts, sizeof(opts), "lowerdir=%s", lower);
	if (upper)
		n = snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s/upper,workdir=%s/work",
			     lower, spec->bundle_dir, spec->bundle_dir);
	if (n < 0 || (size_t)n >= sizeof(opts))
		return shoal_err_set(err, E2BIG, "too many image layers for one overlay mount");
	if (dir[0] && chdir(dir) < 0)
		return shoal_err_errno(err, errno, "entering %s", dir);
	if (mount("overlay", target, "overlay", upper ? 0 : MS_RDONLY, opts) < 0)
		return shoal_err_errno(err, errno, "mounting the container rootfs (overlay) on %s",
				       target);
	return 0;
}

/*
 * The mount points layer: the mount targets the runtime needs (/proc, /dev,
 * /sys, /etc/hosts, ...) that the image lacks, made once per image and shared
 * read-only by all its containers as the lowest-but-image layer, as Docker's
 * init layer. Without it every start creates them in the container's upper
 * directory (a copy-up of /etc and half a dozen journalled creates on the
 * start path). It lives beside the image store's layers,
 * <store>/init/<chain of the top layer> (the chain names the whole stack),
 * is built under a temporary name and renamed into place (a concurrent start
 * that loses the race drops its copy), and is never changed afterwards. Only
 * plain absences under real directories are filled: anything else (a symlinked
 * /etc, a file where a directory should be) is left to the start as before.
 */
static const struct {
	const char *path;
	bool dir;
} mount_points[] = {
	{"proc", true},
	{"dev", true},
	{"sys", true},
	{"etc", true},
	{"etc/hosts", false},
	{"etc/hostname", false},
	{"etc/resolv.conf", false},
};

static bool mount_points_path(const struct rt_spec *spec, char *buf, size_t len)
{
	size_t n = 0;
	while (spec->layer_dirs && spec->layer_dirs[n])
		n++;
	if (n == 0)
		return false;
	const char *top = spec->layer_dirs[n - 1];
	const char *slash = strrchr(top, '/');
	if (!slash || slash == top || !slash[1])
		return false;
	/* <store>/layers/<chain> */
	size_t dlen = (size_t)(slash - top);
	if (dlen < 7 || strncmp(top + dlen - 7, "/layers", 7) != 0)
		return false;
	int k = snprintf(buf, len, "%.*s/init/%s", (int)(dlen - 7), top, slash + 1);
	return k > 0 && (size_t)k < len;
}

/* Gives a directory made in the layer the attributes of the one it covers. */
static void copy_dir_attrs(const char *from, const char *to)
{
	struct stat st;
	if (lstat(from, &st) < 0)
		return;
	(void)lchown(to, st.st_uid, st.st_gid);
	(void)chmod(to, st.st_mode & 07777);
	struct timespec ts[2] = {st.st_atim, st.st_mtim};
	(void)utimensat(AT_FDCWD, to, ts, AT_SYMLINK_NOFOLLOW);
}

static int mount_points_build(const struct rt_spec *spec, const char *path, const char *view,
			      struct shoal_err *err)
{
	char tmp[PATH_MAX], parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = '\0';
	int r = mkdir_p(parent, 0755);
	if (r < 0)
		return shoal_err_errno(err, -r, "creating %s", parent);
	if (snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", parent, spec->id) >= (int)sizeof(tmp))
		return shoal_err_set(err, ENAMETOOLONG, "path too long: %s", parent);
	rm_rf(tmp);
	if (mkdir(tmp, 0755) < 0)
		return shoal_err_errno(err, errno, "creating %s", tmp);
	copy_dir_attrs(view, tmp);
	for (size_t i = 0; i < ARRAY_SIZE(mount_points); i++) {
		const char *mp = mount_points[i].path;
		char in_view[PATH_MAX], in_tmp[PATH_MAX], up[PATH_MAX];
		struct stat st;
		snprintf(in_view, sizeof(in_view), "%s/%s", view, mp);
		if (lstat(in_view, &st) == 0)
			continue;
		/* Its parent must be a real directory in the image (or one of ours). */
		snprintf(up, sizeof(up), "%s", mp);
		char *sl = strrchr(up, '/');
		if (sl) {
			*sl = '\0';
			snprintf(in_tmp, sizeof(in_tmp), "%s/%s", tmp, up);
			bool ours = lstat(in_tmp, &st) == 0;
			snprintf(in_view, sizeof(in_view), "%s/%s", view, up);
			if (!ours) {
				if (lstat(in_view, &st) < 0 || !S_ISDIR(st.st_mode))
					continue;
				if (mkdir(in_tmp, 0755) < 0)
					goto fail;
				copy_dir_attrs(in_view, in_tmp);
			}
		}
		snprintf(in_tmp, sizeof(in_tmp), "%s/%s", tmp, mp);
		if (mount_points[i].dir) {
			if (mkdir(in_tmp, 0755) < 0)
				goto fail;
		} else {
			int fd = open(in_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				goto fail;
			close(fd);
		}
	}
	/* Last, as making entries in them changed their times: the directories
	 * that cover the image's keep its attributes. */
	copy_dir_attrs(view, tmp);
	for (size_t i = 0; i < ARRAY_SIZE(mount_points); i++) {
		char in_view[PATH_MAX], in_tmp[PATH_MAX];
		struct stat st;
		snprintf(in_view, sizeof(in_view), "%s/%s", view, mount_points[i].path);
		snprintf(in_tmp, sizeof(in_tmp), "%s/%s", tmp, mount_points[i].path);
		if (mount_points[i].dir && lstat(in_view, &st) == 0 && S_ISDIR(st.st_mode) &&
		    lstat(in_tmp, &st) == 0)
			copy_dir_attrs(in_view, in_tmp);
	}
	if (rename(tmp, path) < 0) {
		r = errno;
		rm_rf(tmp);
		/* Another start put its copy in place first. */
		if (r == EEXIST || r == ENOTEMPTY)
			return 0;
		return shoal_err_errno(err, r, "renaming %s", tmp);
	}
	return 0;
fail:
	r = shoal_err_errno(err, errno, "building %s", tmp);
	rm_rf(tmp);
	return r;
}

/* fsconfig takes strings of at most 255 bytes. */
#define FSCONFIG_STR_MAX 255

static int fsconfig_str(int fd, const char *key, const char *value)
{
	if (strlen(value) > FSCONFIG_STR_MAX)
		return -E2BIG;
	return fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0) < 0 ? -errno : 0;
}

int rt_overlay_fsmount(const struct rt_spec *spec, struct shoal_err *err)
{
	char mp[PATH_MAX], p[PATH_MAX];
	const char *extra = NULL;
	if (mount_points_path(spec, mp, sizeof(mp))) {
		/* The first start of an image builds it, in the child's namespace. */
		if (access(mp, F_OK) < 0)
			return shoal_err_set(err, ENOENT, "no mount points layer yet");
		extra = mp;
	}
	/* What the child's rt_bundle_prepare() makes too; first one wins. */
	int r = mkdir_p(spec->bundle_dir, 0710);
	if (r < 0)
		return shoal_err_errno(err, -r, "creating %s", spec->bundle_dir);
	static const char *const dirs[] = {"upper", "work"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(p, sizeof(p), "%s/%s", spec->bundle_dir, dirs[i]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return shoal_err_errno(err, errno, "creating %s", p);
	}
	_cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return shoal_err_errno(err, errno, "fsopen overlay");
	/* One layer per "lowerdir+" (kernel 6.8 and later), else all in one. */
	size_t n = 0;
	while (spec->layer_dirs && spec->layer_dirs[n])
		n++;
	if (n == 0)
		return shoal_err_set(err, EINVAL, "the image has no layers");
	r = extra ? fsconfig_str(fs, "lowerdir+", extra) : -ENOENT;
	for (size_t i = n; (r >= 0 || r == -ENOENT) && i-- > 0;)
		r = fsconfig_str(fs, "lowerdir+", spec->layer_dirs[i]);
	if (r < 0) {
		char lower[3800], dir[PATH_MAX];
		close(fs);
		fs = fsopen("overlay", FSOPEN_CLOEXEC);
		if (fs < 0)
			return shoal_err_errno(err, errno, "fsopen overlay");
		r = overlay_lowerdir(spec, extra, lower, sizeof(lower), dir, sizeof(dir), err);
		if (r < 0)
			return r;
		if (dir[0])
			return shoal_err_set(err, E2BIG, "layer paths too long for fsconfig");
		r = fsconfig_str(fs, "lowerdir", lower);
		if (r < 0)
			return shoal_err_errno(err, -r, "fsconfig lowerdir");
	}
	snprintf(p, sizeof(p), "%s/upper", spec->bundle_dir);
	if ((r = fsconfig_str(fs, "upperdir", p)) < 0)
		return shoal_err_errno(err, -r, "fsconfig upperdir");
	snprintf(p, sizeof(p), "%s/work", spec->bundle_dir);
	if ((r = fsconfig_str(fs, "workdir", p)) < 0)
		return shoal_err_errno(err, -r, "fsconfig workdir");
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return shoal_err_errno(err, errno, "creating the overlay");
	int m = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (m < 0)
		return shoal_err_errno(err, errno, "fsmount overlay");
	return m;
}

/* The mount points layer for spec's image, built on first use; false when
 * there is none (the layers are not the image store's, or building failed). */
static bool mount_points_layer(const struct rt_spec *spec, char *buf, size_t len)
{
	if (!mount_points_path(spec, buf, len))
		return false;
	if (access(buf, F_OK) == 0)
		return true;
	/* The image as its containers see it, read-only: its only layer, or an
	 * overlay of them on the bundle's merged directory (in our own mount
	 * namespace, gone with the umount). */
	size_t n = 0;
	while (spec->layer_dirs[n])
		n++;
	char view[PATH_MAX], cwd[PATH_MAX];
	bool mounted = false;
	if (n == 1) {
		snprintf(view, sizeof(view), "%s", spec->layer_dirs[0]);
	} else {
		snprintf(view, sizeof(view), "%s/merged", spec->bundle_dir);
		if (!getcwd(cwd, sizeof(cwd)) || mount_overlay(spec, NULL, false, view, NULL) < 0)
			return false;
		mounted = true;
		if (chdir(cwd) < 0)
			return false;
	}
	int r = mount_points_build(spec, buf, view, NULL);
	if (mounted)
		umount2(view, MNT_DETACH);
	return r == 0 && access(buf, F_OK) == 0;
}

static int mount_dev(struct shoal_err *err)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {
		{"/dev/null", 1, 3},   {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
		{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
	};
	static const char *const links[][2] = {
		{"/proc/self/fd", "/dev/fd"},	    {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},	    {"/proc/kcore", "/dev/core"},
	};
	int r;
	if ((r = ensure_dir("/dev", err)) < 0 ||
	    (r = do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
			  "mode=755,size=65536k", err)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		if (mknod(nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0)
			return shoal_err_errno(err, errno, "creating %s", nodes[i].name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		if (symlink(links[i][0], links[i][1]) < 0)
			return shoal_err_errno(err, errno, "creating %s", links[i][1]);
	}
	if ((r = ensure_dir("/dev/pts", err)) < 0 ||
	    (r = do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
			  "newinstance,ptmxmode=0666,mode=0620,gid=5", err)) < 0)
		return r;
	if ((r = ensure_dir("/dev/shm", err)) < 0 ||
	    (r = do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=1777,size=65536k", err)) < 0)
		return r;
	if ((r = ensure_dir("/dev/mqueue", err)) < 0 ||
	    (r = do_mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
			  err)) < 0)
		return r;
	return 0;
}

/*
 * A terminal from the container's own devpts instance (as runc's console
 * socket does it): programs in the container find it as /dev/pts/N and it
 * dies with the container.
 */
int rt_pty_open(int *ret_master, int *ret_slave, int *ret_index, struct shoal_err *err)
{
	_cleanup_close_ int m = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return shoal_err_errno(err, errno, "opening /dev/pts/ptmx");
	int unlock = 0, n = -1;
	if (ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCGPTN, &n) < 0)
		return shoal_err_errno(err, errno, "unlocking the pseudo terminal");
	int sl = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sl < 0)
		return shoal_err_errno(err, errno, "opening the terminal's slave side");
	/* A size until the client sends its own: programs that ask before the
	 * first resize see 24x80 rather than 0x0. */
	struct winsize ws = {.ws_row = 24, .ws_col = 80};
	ioctl(m, TIOCSWINSZ, &ws);
	*ret_master = TAKE_FD(m);
	*ret_slave = sl;
	if (ret_index)
		*ret_index = n;
	return 0;
}

/* The container's first terminal, which is its console as well, as Docker
 * sets it up. */
static int open_console(int *ret_master, int *ret_slave, struct shoal_err *err)
{
	_cleanup_close_ int m = -EBADF, sl = -EBADF;
	int n, r;
	if ((r = rt_pty_open(&m, &sl, &n, err)) < 0)
		return r;
	char path[64];
	snprintf(path, sizeof(path), "/dev/pts/%d", n);
	if ((r = ensure_file("/dev/console", err)) < 0 ||
	    (r = do_mount(path, "/dev/console", NULL, MS_BIND, NULL, err)) < 0)
		return r;
	*ret_master = TAKE_FD(m);
	*ret_slave = TAKE_FD(sl);
	return 0;
}

static int bind_file(int tree_fd, const char *target, struct shoal_err *err)
{
	int r = ensure_file(target, err);
	if (r < 0)
		return r;
	return attach_tree(tree_fd, target, err);
}

static int mask_paths(struct shoal_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(masked_paths); i++) {
		const char *p = masked_paths[i];
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		int r;
		if (S_ISDIR(st.st_mode))
			r = do_mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL, err);
		else
			r = do_mount("/dev/null", p, NULL, MS_BIND, NULL, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(readonly_paths); i++) {
		const char *p = readonly_paths[i];
		if (access(p, F_OK) < 0)
			continue;
		int r = do_mount(p, p, NULL, MS_BIND | MS_REC, NULL, err);
		if (r < 0)
			return r;
		r = do_mount(p, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int rt_rootfs_setup(const struct rt_spec *spec, int overlay_fd, int *ret_pty_master,
		    int *ret_pty_slave, struct shoal_err *err)
{
	char merged[PATH_MAX];
	int r;
	if (snprintf(merged, sizeof(merged), "%s/merged", spec->bundle_dir) >= (int)sizeof(merged))
		return shoal_err_set(err, ENAMETOOLONG, "bundle path too long");

	/* Host mount events still reach us, ours never reach the host. */
	if ((r = do_mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL, err)) < 0)
		return r;
	char p[PATH_MAX + 16];
	_cleanup_close_ int hosts_fd = -EBADF, hostname_fd = -EBADF, resolv_fd = -EBADF;
	_cleanup_close_ int sys_fd = -EBADF;
	snprintf(p, sizeof(p), "%s/hosts", spec->bundle_dir);
	if ((hosts_fd = clone_tree(p, false, err)) < 0)
		return hosts_fd;
	snprintf(p, sizeof(p), "%s/hostname", spec->bundle_dir);
	if ((hostname_fd = clone_tree(p, false, err)) < 0)
		return hostname_fd;
	if (spec->resolv_conf) {
		snprintf(p, sizeof(p), "%s/resolv.conf", spec->bundle_dir);
		if ((resolv_fd = clone_tree(p, false, err)) < 0)
			return resolv_fd;
	}
	if (spec->net_mode == RT_NET_HOST && (sys_fd = clone_tree("/sys", true, err)) < 0)
		return sys_fd;
	int bind_fds[RT_MAX_MOUNTS];
	if (spec->n_mounts > RT_MAX_MOUNTS)
		return shoal_err_set(err, E2BIG, "more than %d mounts", RT_MAX_MOUNTS);
	for (size_t i = 0; i < spec->n_mounts; i++)
		bind_fds[i] = -EBADF;
	/* closed on every way out */
	_cleanup_(fds_close) struct fd_set_ref binds = {.fds = bind_fds, .n = spec->n_mounts};
	for (size_t i = 0; i < spec->n_mounts; i++) {
		if (spec->mounts[i].type != RT_MOUNT_BIND)
			continue;
		if ((bind_fds[i] = clone_tree(spec->mounts[i].source, true, err)) < 0)
			return shoal_err_wrap(err, "bind mount %s", spec->mounts[i].source);
	}
	if (overlay_fd >= 0) {
		if ((r = attach_tree(overlay_fd, merged, err)) < 0)
			return r;
	} else {
		char mp_layer[PATH_MAX];
		bool have_mp = mount_points_layer(spec, mp_layer, sizeof(mp_layer));
		if ((r = mount_overlay(spec, have_mp ? mp_layer : NULL, true, merged, err)) < 0)
			return r;
	}

	if (chdir(merged) < 0)
		return shoal_err_errno(err, errno, "entering %s", merged);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return shoal_err_errno(err, errno, "pivot_root into %s", merged);
	if (umount2(".", MNT_DETACH) < 0)
		return shoal_err_errno(err, errno, "detaching the old root");
	if (chdir("/") < 0)
		return shoal_err_errno(err, errno, "chdir /");

	if ((r = ensure_dir("/proc", err)) < 0 ||
	    (r = do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, err)) <
		    0)
		return r;
	if ((r = mount_dev(err)) < 0)
		return r;
	if (ret_pty_master && (r = open_console(ret_pty_master, ret_pty_slave, err)) < 0)
		return r;
	if ((r = ensure_dir("/sys", err)) < 0)
		return r;
	if (sys_fd >= 0) {
		if ((r = attach_tree(sys_fd, "/sys", err)) < 0 ||
		    (r = do_mount(NULL, "/sys", NULL,
				  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
					  MS_NOEXEC,
				  NULL, err)) < 0)
			return r;
	} else if ((r = do_mount("sysfs", "/sys", "sysfs",
				 MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL, err)) < 0) {
		return r;
	}
	if ((r = ensure_dir("/etc", err)) < 0 || (r = bind_file(hosts_fd, "/etc/hosts", err)) < 0 ||
	    (r = bind_file(hostname_fd, "/etc/hostname", err)) < 0)
		return r;
	if (resolv_fd >= 0 && (r = bind_file(resolv_fd, "/etc/resolv.conf", err)) < 0)
		return r;
	if ((r = mounts_attach(spec, bind_fds, err)) < 0)
		return r;
	if ((r = mask_paths(err)) < 0)
		return r;
	if (spec->read_only &&
	    (r = do_mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL, err)) < 0)
		return r;
	return 0;
}
