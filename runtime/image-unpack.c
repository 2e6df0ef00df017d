// SPDX-License-Identifier: Apache-2.0
/* Unpacking one layer tarball into an overlayfs diff directory.
 *
 * Every parent of an entry is opened component by component with O_NOFOLLOW
 * from the layer root, so no entry can be written through a symlink, whether
 * the symlink came from this tarball or not. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image-internal.h"
#include "runtime/image.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_read_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_META	".wh..wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

void image_warn(json_t *warnings, const char *fmt, ...)
{
	if (!warnings)
		return;
	size_t n = json_array_size(warnings);
	if (n > IMAGE_MAX_WARNINGS)
		return;
	if (n == IMAGE_MAX_WARNINGS) {
		json_array_append_new(warnings, json_string("further warnings omitted"));
		return;
	}
	char buf[PATH_MAX + 256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(warnings, json_string(buf));
}

/* Compression formats a layer or image tarball may use. Listed rather than
 * "all" so that libarchive never runs an external decompressor. */
static void support_filters(struct archive *a)
{
	archive_read_support_filter_none(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_zstd(a);
}

struct archive *image_archive_new(bool raw)
{
	struct archive *a = archive_read_new();
	if (!a)
		return NULL;
	support_filters(a);
	if (raw)
		archive_read_support_format_raw(a);
	else
		archive_read_support_format_tar(a);
	return a;
}

int image_stream_digest(const char *path, char ret_hex[65], uint64_t *ret_size,
			struct shoal_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return shoal_err_errno(err, errno, "stat %s", path);

	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		return shoal_err_set(err, ENOMEM, "sha256 context");
	uint64_t total = 0;

	if (st.st_size > 0) {
		_cleanup_(archive_read_freep) struct archive *a = image_archive_new(true);
		if (!a)
			return shoal_err_set(err, ENOMEM, "libarchive");
		if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK)
			return shoal_err_set(err, EBADMSG, "%s", archive_error_string(a));
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r != ARCHIVE_OK && r != ARCHIVE_EOF)
			return shoal_err_set(err, EBADMSG, "%s", archive_error_string(a));
		if (r == ARCHIVE_OK) {
			static __thread char buf[65536];
			for (;;) {
				la_ssize_t k = archive_read_data(a, buf, sizeof(buf));
				if (k < 0)
					return shoal_err_set(err, EBADMSG, "decompressing: %s",
							     archive_error_string(a));
				if (k == 0)
					break;
				EVP_DigestUpdate(md, buf, (size_t)k);
				total += (uint64_t)k;
			}
		}
	}
	unsigned char digest[32];
	unsigned int dlen = 0;
	EVP_DigestFinal_ex(md, digest, &dlen);
	for (int i = 0; i < 32; i++)
		sprintf(ret_hex + 2 * i, "%02x", digest[i]);
	if (ret_size)
		*ret_size = total;
	return 0;
}

struct dir_time {
	char *path;
	struct timespec ts[2];
};

struct unpack {
	int root_fd;
	const char *dest;
	json_t *warnings;
	struct shoal_err *err;
	bool as_root;
	struct dir_time *dirs;
	size_t n_dirs, cap_dirs;
};

/* Cleans an entry name: drops "." and empty components; refuses absolute names,
 * ".." and names that are too long. "" means the layer root. */
static int clean_path(struct unpack *u, const char *what, const char *in, char *out)
{
	size_t len = strlen(in);
	if (len > IMAGE_MAX_ENTRY_PATH)
		return shoal_err_set(u->err, ENAMETOOLONG,
				     "entry \"%.64s...\": path longer than %d bytes", in,
				     IMAGE_MAX_ENTRY_PATH);
	if (in[0] == '/')
		return shoal_err_set(u->err, EINVAL, "%s \"%s\": absolute path", what, in);
	size_t o = 0;
	const char *p = in;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return shoal_err_set(u->err, EINVAL, "%s \"%s\": path escapes the layer",
					     what, in);
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	out[o] = '\0';
	return 0;
}

/* Opens the directory that holds path (relative, clean); returns its fd and the
 * last component. Missing parents are created when create is set. */
static int open_parent(struct unpack *u, const char *path, bool create, int *ret_fd,
		       const char **ret_base)
{
	char comp[NAME_MAX + 1];
	_cleanup_close_ int fd = fcntl(u->root_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return shoal_err_errno(u->err, errno, "dup");
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		size_t n = (size_t)(slash - p);
		if (n > NAME_MAX)
			return shoal_err_set(u->err, ENAMETOOLONG,
					     "entry \"%s\": component too long", path);
		memcpy(comp, p, n);
		comp[n] = '\0';
		int nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
				return shoal_err_errno(u->err, errno, "entry \"%s\": creating %.*s",
						       path, (int)(slash - path), path);
			nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0) {
			if (errno == ELOOP || errno == ENOTDIR)
				return shoal_err_set(
					u->err, EINVAL,
					"entry \"%s\": path goes through \"%.*s\", which "
					"is not a directory (symlink?)",
					path, (int)(slash - path), path);
			return shoal_err_errno(u->err, errno, "entry \"%s\": opening %.*s", path,
					       (int)(slash - path), path);
		}
		close(fd);
		fd = nfd;
		p = slash + 1;
	}
	if (strlen(p) > NAME_MAX)
		return shoal_err_set(u->err, ENAMETOOLONG, "entry \"%s\": name too long", path);
	*ret_fd = TAKE_FD(fd);
	*ret_base = p;
	return 0;
}

/* Removes whatever is at pfd/base (a file, or a whole directory tree). */
static int remove_existing(struct unpack *u, int pfd, const char *base, const char *path)
{
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : shoal_err_errno(u->err, errno, "entry \"%s\"", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(pfd, base, 0) < 0)
			return shoal_err_errno(u->err, errno, "entry \"%s\": replacing", path);
		return 0;
	}
	_cleanup_free_ char *full = NULL;
	if (asprintf(&full, "%s/%s", u->dest, path) < 0)
		return shoal_err_set(u->err, ENOMEM, "out of memory");
	int r = rm_rf(full);
	if (r < 0)
		return shoal_err_errno(u->err, r, "entry \"%s\": replacing directory", path);
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
}

static int entry_owner(struct unpack *u, struct archive_entry *e, const char *path, uid_t *uid,
		       gid_t *gid)
{
	la_int64_t ui = archive_entry_uid(e), gi = archive_entry_gid(e);
	if (ui < 0 || ui >= UINT32_MAX || gi < 0 || gi >= UINT32_MAX)
		return shoal_err_set(u->err, EINVAL, "entry \"%s\": bad owner %lld:%lld", path,
				     (long long)ui, (long long)gi);
	*uid = (uid_t)ui;
	*gid = (gid_t)gi;
	return 0;
}

static void apply_xattrs(struct unpack *u, int fd, struct archive_entry *e, const char *path)
{
	const char *name;
	const void *value;
	size_t size;
	if (archive_entry_xattr_reset(e) == 0)
		return;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!name)
			continue;
		/* overlayfs reads these from lower layers; a tarball does not get to set
		 * them except through whiteout entries */
		if (str_has_prefix(name, "trusted.overlay.")) {
			image_warn(u->warnings, "ignored xattr %s on /%s", name, path);
			continue;
		}
		if (fsetxattr(fd, name, value, size, 0) < 0)
			image_warn(u->warnings, "could not set xattr %s on /%s: %s", name, path,
				   strerror(errno));
	}
}

/* Owner, mode, xattrs of an open file or directory. */
static int apply_meta_fd(struct unpack *u, int fd, struct archive_entry *e, const char *path)
{
	uid_t uid;
	gid_t gid;
	int r = entry_owner(u, e, path, &uid, &gid);
	if (r < 0)
		return r;
	if (u->as_root && fchown(fd, uid, gid) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": chown", path);
	/* after chown, which clears set-id bits */
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": chmod", path);
	apply_xattrs(u, fd, e, path);
	return 0;
}

static int write_data(struct unpack *u, struct archive *a, struct archive_entry *e, int fd,
		      const char *path)
{
	const void *buf;
	size_t size;
	la_int64_t offset, end = 0;
	for (;;) {
		int r = archive_read_data_block(a, &buf, &size, &offset);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return shoal_err_set(u->err, EBADMSG, "entry \"%s\": %s", path,
					     archive_error_string(a));
		const char *p = buf;
		size_t left = size;
		la_int64_t off = offset;
		while (left > 0) {
			ssize_t k = pwrite(fd, p, left, off);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				return shoal_err_errno(u->err, errno, "entry \"%s\": writing",
						       path);
			}
			p += k;
			left -= (size_t)k;
			off += k;
		}
		if (offset + (la_int64_t)size > end)
			end = offset + (la_int64_t)size;
	}
	/* sparse files end in a hole */
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > end)
		end = archive_entry_size(e);
	if (ftruncate(fd, end) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": truncate", path);
	return 0;
}

static int unpack_whiteout(struct unpack *u, struct archive_entry *e, const char *path, int pfd,
			   const char *base)
{
	if (strcmp(base, WHITEOUT_OPAQUE) == 0) {
		if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return shoal_err_errno(u->err, errno,
					       "entry \"%s\": marking directory opaque", path);
		return 0;
	}
	if (str_has_prefix(base, WHITEOUT_META))
		return 0; /* aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing to apply */
	const char *victim = base + strlen(WHITEOUT_PREFIX);
	if (!*victim || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
		return shoal_err_set(u->err, EINVAL, "entry \"%s\": bad whiteout", path);

	char vpath[IMAGE_MAX_ENTRY_PATH + 1];
	size_t dlen = (size_t)(base - path);
	snprintf(vpath, sizeof(vpath), "%.*s%s", (int)dlen, path, victim);
	int r = remove_existing(u, pfd, victim, vpath);
	if (r < 0)
		return r;
	if (mknodat(pfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": creating whiteout", path);
	uid_t uid;
	gid_t gid;
	r = entry_owner(u, e, path, &uid, &gid);
	if (r < 0)
		return r;
	if (u->as_root && fchownat(pfd, victim, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": chown", path);
	return 0;
}

static int unpack_hardlink(struct unpack *u, const char *path, int pfd, const char *base,
			   const char *link)
{
	char target[IMAGE_MAX_ENTRY_PATH + 1];
	int r = clean_path(u, "hard link target", link, target);
	if (r < 0)
		return shoal_err_wrap(u->err, "entry \"%s\"", path);
	if (!*target || strcmp(target, path) == 0)
		return shoal_err_set(u->err, EINVAL, "entry \"%s\": bad hard link target \"%s\"",
				     path, link);
	_cleanup_close_ int tfd = -EBADF;
	const char *tbase;
	r = open_parent(u, target, false, &tfd, &tbase);
	if (r < 0)
		return shoal_err_set(u->err, EINVAL,
				     "entry \"%s\": hard link target \"%s\" is not in the layer",
				     path, link);
	struct stat st;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
		return shoal_err_set(u->err, EINVAL,
				     "entry \"%s\": hard link target \"%s\" is not in the layer",
				     path, link);
	r = remove_existing(u, pfd, base, path);
	if (r < 0)
		return r;
	if (linkat(tfd, tbase, pfd, base, 0) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": linking to \"%s\"", path,
				       link);
	return 0;
}

static int unpack_dir(struct unpack *u, struct archive_entry *e, const char *path, int pfd,
		      const char *base)
{
	_cleanup_close_ int fd = -EBADF;
	if (!*path) {
		fd = fcntl(u->root_fd, F_DUPFD_CLOEXEC, 3);
	} else {
		struct stat st;
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
			int r = remove_existing(u, pfd, base, path);
			if (r < 0)
				return r;
		}
		if (mkdirat(pfd, base, 0700) < 0 && errno != EEXIST)
			return shoal_err_errno(u->err, errno, "entry \"%s\": mkdir", path);
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": opening directory", path);
	int r = apply_meta_fd(u, fd, e, path);
	if (r < 0)
		return r;

	/* times last: creating children would change them */
	if (u->n_dirs == u->cap_dirs) {
		size_t cap = u->cap_dirs ? u->cap_dirs * 2 : 64;
		struct dir_time *n = realloc(u->dirs, cap * sizeof(*n));
		if (!n)
			return shoal_err_set(u->err, ENOMEM, "out of memory");
		u->dirs = n;
		u->cap_dirs = cap;
	}
	struct dir_time *d = &u->dirs[u->n_dirs];
	d->path = strdup(path);
	if (!d->path)
		return shoal_err_set(u->err, ENOMEM, "out of memory");
	entry_times(e, d->ts);
	u->n_dirs++;
	return 0;
}

static int unpack_file(struct unpack *u, struct archive *a, struct archive_entry *e,
		       const char *path, int pfd, const char *base)
{
	int r = remove_existing(u, pfd, base, path);
	if (r < 0)
		return r;
	_cleanup_close_ int fd =
		openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": create", path);
	r = write_data(u, a, e, fd, path);
	if (r < 0)
		return r;
	r = apply_meta_fd(u, fd, e, path);
	if (r < 0)
		return r;
	struct timespec ts[2];
	entry_times(e, ts);
	if (futimens(fd, ts) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": setting times", path);
	return 0;
}

/* Symlinks and FIFOs: no fd to work on, so by name relative to the parent. */
static int unpack_special(struct unpack *u, struct archive_entry *e, const char *path, int pfd,
			  const char *base, bool is_symlink)
{
	int r = remove_existing(u, pfd, base, path);
	if (r < 0)
		return r;
	if (is_symlink) {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target)
			return shoal_err_set(u->err, EINVAL, "entry \"%s\": empty symlink target",
					     path);
		if (symlinkat(target, pfd, base) < 0)
			return shoal_err_errno(u->err, errno, "entry \"%s\": symlink", path);
	} else {
		if (mkfifoat(pfd, base, 0600) < 0)
			return shoal_err_errno(u->err, errno, "entry \"%s\": mkfifo", path);
	}
	uid_t uid;
	gid_t gid;
	r = entry_owner(u, e, path, &uid, &gid);
	if (r < 0)
		return r;
	if (u->as_root && fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": chown", path);
	if (!is_symlink && fchmodat(pfd, base, archive_entry_perm(e) & 07777, 0) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": chmod", path);
	struct timespec ts[2];
	entry_times(e, ts);
	if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return shoal_err_errno(u->err, errno, "entry \"%s\": setting times", path);
	return 0;
}

static bool under_aufs_meta(const char *path)
{
	for (const char *p = path;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			return false;
		if (str_has_prefix(p, WHITEOUT_META))
			return true;
		p = slash + 1;
	}
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		return shoal_err_set(u->err, EBADMSG, "entry without a usable name");
	char path[IMAGE_MAX_ENTRY_PATH + 1];
	int r = clean_path(u, "entry", raw, path);
	if (r < 0)
		return r;
	mode_t type = archive_entry_filetype(e);
	const char *link = archive_entry_hardlink(e);

	/* aufs keeps hard link bookkeeping under .wh..wh.plnk/: none of it is content */
	if (under_aufs_meta(path))
		return 0;
	if (!*path) {
		if (type == AE_IFDIR && !link)
			return unpack_dir(u, e, path, -EBADF, "");
		return shoal_err_set(u->err, EINVAL, "entry \"%s\": not a directory at the root",
				     raw);
	}
	_cleanup_close_ int pfd = -EBADF;
	const char *base;
	r = open_parent(u, path, true, &pfd, &base);
	if (r < 0)
		return r;

	if (str_has_prefix(base, WHITEOUT_PREFIX))
		return unpack_whiteout(u, e, path, pfd, base);
	if (link)
		return unpack_hardlink(u, path, pfd, base, link);

	switch (type) {
	case AE_IFDIR:
		return unpack_dir(u, e, path, pfd, base);
	case AE_IFREG:
		return unpack_file(u, a, e, path, pfd, base);
	case AE_IFLNK:
		return unpack_special(u, e, path, pfd, base, true);
	case AE_IFIFO:
		return unpack_special(u, e, path, pfd, base, false);
	case AE_IFCHR:
	case AE_IFBLK:
		image_warn(u->warnings, "skipped device node /%s", path);
		return 0;
	default:
		image_warn(u->warnings, "skipped /%s: unsupported file type", path);
		return 0;
	}
}

static int apply_dir_times(struct unpack *u)
{
	for (size_t i = u->n_dirs; i > 0; i--) {
		struct dir_time *d = &u->dirs[i - 1];
		if (!*d->path) {
			if (futimens(u->root_fd, d->ts) < 0)
				return shoal_err_errno(u->err, errno, "setting times of /");
			continue;
		}
		_cleanup_close_ int pfd = -EBADF;
		const char *base;
		int r = open_parent(u, d->path, false, &pfd, &base);
		if (r < 0)
			continue; /* replaced or removed by a later entry */
		_cleanup_close_ int fd =
			openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (futimens(fd, d->ts) < 0)
			return shoal_err_errno(u->err, errno, "entry \"%s\": setting times",
					       d->path);
	}
	return 0;
}

static int unpack_stream(struct unpack *u, const char *src)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return shoal_err_errno(u->err, errno, "stat %s", src);
	if (st.st_size == 0)
		return 0; /* an empty layer */

	_cleanup_(archive_read_freep) struct archive *a = image_archive_new(false);
	if (!a)
		return shoal_err_set(u->err, ENOMEM, "libarchive");
	if (archive_read_open_filename(a, src, 65536) != ARCHIVE_OK)
		return shoal_err_set(u->err, EBADMSG, "%s", archive_error_string(a));
	size_t n_entries = 0;
	for (;;) {
		struct archive_entry *e;
		int k = archive_read_next_header(a, &e);
		if (k == ARCHIVE_EOF)
			break;
		if (k != ARCHIVE_OK && k != ARCHIVE_WARN)
			return shoal_err_set(u->err, EBADMSG, "truncated or corrupt tar: %s",
					     archive_error_string(a));
		if (++n_entries > IMAGE_MAX_LAYER_ENTRIES)
			return shoal_err_set(u->err, E2BIG, "more than %u entries",
					     IMAGE_MAX_LAYER_ENTRIES);
		int r = unpack_entry(u, a, e);
		if (r < 0)
			return r;
	}
	return apply_dir_times(u);
}

int image_layer_unpack(const char *src, const char *dest, json_t *warnings, struct shoal_err *err)
{
	if (mkdir(dest, 0755) < 0)
		return shoal_err_errno(err, errno, "creating %s", dest);
	struct unpack u = {
		.root_fd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
		.dest = dest,
		.warnings = warnings,
		.err = err,
		.as_root = geteuid() == 0,
	};
	int r;
	if (u.root_fd < 0)
		r = shoal_err_errno(err, errno, "opening %s", dest);
	else
		r = unpack_stream(&u, src);
	for (size_t i = 0; i < u.n_dirs; i++)
		free(u.dirs[i].path);
	free(u.dirs);
	if (u.root_fd >= 0)
		close(u.root_fd);
	return r;
}
