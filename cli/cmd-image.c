// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"
#include "lib/util.h"

int cli_cmd_image(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal image", cli_image_commands, argc, argv);
}

/* Prints one progress message (docker's jsonmessage); 1 when it was an error.
 * Lines with a progress bar are shown only when show_progress (a terminal), as
 * docker does; quiet shows errors only. */
static int print_message(const char *line, size_t len, bool show_progress, bool quiet)
{
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0;
	json_error_t jerr;
	_cleanup_json_ json_t *m = json_loadb(line, len, 0, &jerr);
	if (!m) {
		fprintf(stderr, "Error: malformed progress message from daemon: %.*s\n",
			(int)(len > 200 ? 200 : len), line);
		return 1;
	}
	const char *emsg =
		json_string_value(json_object_get(json_object_get(m, "errorDetail"), "message"));
	if (!emsg)
		emsg = json_string_value(json_object_get(m, "error"));
	if (emsg) {
		fprintf(stderr, "%s\n", emsg);
		return 1;
	}
	if (quiet)
		return 0;
	const char *stream = json_string_value(json_object_get(m, "stream"));
	if (stream) {
		/* Each message of a load or import answer is one line (Docker's
		 * own warning streams carry their newline, shoald's did not:
		 * "...to empty stringLoaded image"), so a line always ends here. */
		size_t n = strlen(stream);
		fputs(stream, stdout);
		if (n > 0 && stream[n - 1] != '\n')
			fputc('\n', stdout);
		fflush(stdout);
		return 0;
	}
	const char *status = json_string_value(json_object_get(m, "status"));
	if (status) {
		const char *id = json_string_value(json_object_get(m, "id"));
		const char *progress = json_string_value(json_object_get(m, "progress"));
		if (progress && !show_progress)
			return 0;
		printf("%s%s%s%s%s\n", id ? id : "", id ? ": " : "", status, progress ? " " : "",
		       progress ? progress : "");
		fflush(stdout);
	}
	return 0;
}

static int print_messages(struct cli_http *c, bool show_progress, bool quiet);

/* Streams body_fd to path and prints the JSON message stream that comes back. */
static int upload_tar(struct cli_ctx *ctx, const char *path, int fd)
{
	struct stat st;
	int64_t len = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		len = st.st_size;
	struct cli_call call = {
		.method = "POST",
		.path = path,
		.body_fd = fd,
		.body_fd_len = len,
		.content_type = "application/x-tar",
	};
	struct shoal_err err = {0};
	_cleanup_http_ struct cli_http *c = NULL;
	struct cli_http_resp resp;
	if (cli_request(ctx, &call, &c, &resp, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	return print_messages(c, false, false);
}

/* Prints the JSON message stream of an answer; the exit status. */
static int print_messages(struct cli_http *c, bool show_progress, bool quiet)
{
	size_t cap = 64 * 1024, used = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return cli_oom();
	int status = 0;
	for (;;) {
		if (used == cap) {
			if (cap >= 16 * 1024 * 1024) {
				fprintf(stderr, "Error: progress message from daemon too long\n");
				return 1;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				return cli_oom();
			buf = nb;
			cap *= 2;
		}
		ssize_t n = cli_http_read_body(c, buf + used, cap - used);
		if (n < 0) {
			fprintf(stderr, "Error reading response from daemon: %s\n",
				strerror((int)-n));
			return 1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', used - (size_t)(start - buf)))) {
			status |= print_message(start, (size_t)(nl - start), show_progress, quiet);
			start = nl + 1;
		}
		used -= (size_t)(start - buf);
		memmove(buf, start, used);
	}
	if (used > 0)
		status |= print_message(buf, used, show_progress, quiet);
	return status;
}

static const struct cli_opt load_opts[] = {
	{'i', "input", 'i', CLI_OPT_VALUE, "string",
	 "Read from tar archive file, instead of STDIN"},
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Suppress the load output"},
	{0},
};

int cli_cmd_image_load(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]",
			  desc[] = "Load an image from a tar archive or STDIN";
	const char *input = NULL;
	bool quiet = false;
	struct cli_opts p;
	cli_opts_init(&p, load_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'i') {
			input = p.value;
		} else if (id == 'q') {
			quiet = cli_opts_bool(&p);
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	int npos = p.npos;
	cli_opts_done(&p);
	if (npos > 0)
		return cli_args_error(ctx, usage, desc, "accepts no arguments");
	_cleanup_close_ int fd = -EBADF;
	if (input) {
		fd = open(input, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "open %s: %s\n", input, strerror(errno));
			return 1;
		}
	} else if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "requested load from stdin, but stdin is empty\n");
		return 1;
	}
	return upload_tar(ctx, quiet ? "/images/load?quiet=1" : "/images/load",
			  input ? fd : STDIN_FILENO);
}

static const struct cli_opt pull_opts[] = {
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Suppress verbose output"},
	{0},
};

static void base64url(const unsigned char *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = t[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = t[v & 63];
	}
	out[o] = '\0';
}

/* The length of the registry part of a reference, as docker decides it: the first
 * component when it looks like a host ("." or ":" in it, or "localhost"); 0 when
 * there is none (docker.io). */
static size_t ref_registry_len(const char *ref)
{
	size_t n = strcspn(ref, "/");
	if (ref[n] == '/' && (memchr(ref, '.', n) || memchr(ref, ':', n) ||
			      (n == 9 && strncmp(ref, "localhost", 9) == 0)))
		return n;
	return 0;
}

static char *ref_registry(const char *ref)
{
	size_t n = ref_registry_len(ref);
	return n ? strndup(ref, n) : strdup("docker.io");
}

/* X-Registry-Auth from SHOAL_REGISTRY_AUTH=user:password; NULL header when unset. */
static int registry_auth_header(const char *ref, char **ret)
{
	*ret = NULL;
	const char *env = getenv("SHOAL_REGISTRY_AUTH");
	if (!env || !*env)
		return 0;
	const char *colon = strchr(env, ':');
	if (!colon || colon == env || !colon[1]) {
		fprintf(stderr, "SHOAL_REGISTRY_AUTH must be user:password\n");
		return -EINVAL;
	}
	_cleanup_free_ char *user = strndup(env, (size_t)(colon - env));
	_cleanup_free_ char *server = ref_registry(ref);
	if (!user || !server)
		return -ENOMEM;
	_cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s}", "username", user, "password",
					     colon + 1, "serveraddress", server);
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!text)
		return -ENOMEM;
	size_t n = strlen(text);
	_cleanup_free_ char *b64 = malloc(n / 3 * 4 + 8);
	if (!b64)
		return -ENOMEM;
	base64url((const unsigned char *)text, n, b64);
	explicit_bzero(text, n);
	if (asprintf(ret, "X-Registry-Auth: %s\r\n", b64) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

int cli_cmd_image_pull(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] NAME[:TAG|@DIGEST]",
			  desc[] = "Download an image from a registry (credentials from "
				   "SHOAL_REGISTRY_AUTH=user:password)";
	bool quiet = false;
	struct cli_opts p;
	cli_opts_init(&p, pull_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'q')
			quiet = cli_opts_bool(&p);
		else
			return cli_opts_fail(ctx, &p, id, usage, desc);
	}
	if (p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires exactly 1 argument");
	_cleanup_free_ char *ref = strdup(p.pos[0]);
	cli_opts_done(&p);
	if (!ref)
		return cli_oom();
	_cleanup_free_ char *auth = NULL, *e = cli_escape(ref), *path = NULL;
	int r = registry_auth_header(ref, &auth);
	if (r == -ENOMEM)
		return cli_oom();
	if (r < 0)
		return 1;
	if (!e || asprintf(&path, "/images/create?fromImage=%s", e) < 0)
		return cli_oom();
	struct cli_call call = {
		.method = "POST",
		.path = path,
		.body_fd = -1,
		.headers = auth,
	};
	struct shoal_err err = {0};
	_cleanup_http_ struct cli_http *c = NULL;
	struct cli_http_resp resp;
	r = cli_request(ctx, &call, &c, &resp, &err);
	if (auth)
		explicit_bzero(auth, strlen(auth));
	if (r < 0) {
		cli_print_err(&err);
		return 1;
	}
	int status = print_messages(c, isatty(STDOUT_FILENO), quiet);
	if (status == 0) {
		/* the full name, as docker prints it last */
		const char *name = ref;
		_cleanup_free_ char *full = NULL;
		if (!strchr(ref, '@')) {
			size_t n = ref_registry_len(ref);
			const char *rest = n ? ref + n + 1 : ref;
			_cleanup_free_ char *reg = ref_registry(ref);
			bool hub = reg && strcmp(reg, "docker.io") == 0;
			const char *slash = strrchr(rest, '/');
			bool tagged = strchr(slash ? slash : rest, ':') != NULL;
			if (reg && asprintf(&full, "%s/%s%s%s", reg,
					    hub && !strchr(rest, '/') ? "library/" : "", rest,
					    tagged ? "" : ":latest") >= 0)
				name = full;
		}
		printf("%s\n", name);
	}
	return status;
}

static const struct cli_opt import_opts[] = {
	{'m', "message", 'm', CLI_OPT_VALUE, "string", "Set commit message for imported image"},
	{'c', "change", 'c', CLI_OPT_VALUE, "list",
	 "Apply Dockerfile instruction to the created image"},
	{0},
};

/* Splits "repo[:tag]" (a ':' after the last '/' starts the tag). */
static void split_ref(const char *ref, char **ret_repo, const char **ret_tag)
{
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(ref, ':');
	if (colon && (!slash || colon > slash)) {
		*ret_repo = strndup(ref, (size_t)(colon - ref));
		*ret_tag = colon + 1;
	} else {
		*ret_repo = strdup(ref);
		*ret_tag = "";
	}
}

static int query_add(char **q, const char *key, const char *value)
{
	_cleanup_free_ char *e = cli_escape(value);
	char *n = NULL;
	if (!e || asprintf(&n, "%s%s%s=%s", *q ? *q : "", *q && **q ? "&" : "", key, e) < 0)
		return -ENOMEM;
	free(*q);
	*q = n;
	return 0;
}

int cli_cmd_image_import(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] file|- [REPOSITORY[:TAG]]",
			  desc[] =
				  "Import the contents from a tarball to create a filesystem image";
	_cleanup_free_ char *q = strdup("fromSrc=-");
	if (!q)
		return cli_oom();
	struct cli_opts p;
	cli_opts_init(&p, import_opts, argc, argv, false);
	int id, r = 0;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'm') {
			r |= query_add(&q, "message", p.value);
		} else if (id == 'c') {
			r |= query_add(&q, "changes", p.value);
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1 || p.npos > 2)
		return cli_opts_args_fail(ctx, &p, usage, desc,
					  p.npos < 1 ? "requires at least 1 argument"
						     : "requires at most 2 arguments");
	const char *file = p.pos[0];
	if (p.npos == 2) {
		_cleanup_free_ char *repo = NULL;
		const char *tag;
		split_ref(p.pos[1], &repo, &tag);
		if (!repo) {
			cli_opts_done(&p);
			return cli_oom();
		}
		r |= query_add(&q, "repo", repo);
		if (*tag)
			r |= query_add(&q, "tag", tag);
	}
	_cleanup_close_ int fd = -EBADF;
	if (strcmp(file, "-") != 0) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "open %s: %s\n", file, strerror(errno));
			cli_opts_done(&p);
			return 1;
		}
	}
	cli_opts_done(&p);
	_cleanup_free_ char *path = NULL;
	if (r || asprintf(&path, "/images/create?%s", q) < 0)
		return cli_oom();
	return upload_tar(ctx, path, fd >= 0 ? fd : STDIN_FILENO);
}

static const struct cli_opt ls_opts[] = {
	{'a', "all", 'a', CLI_OPT_BOOL, NULL, "Show all images"},
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only show image IDs"},
	{OPT_NO_TRUNC, "no-trunc", 0, CLI_OPT_BOOL, NULL, "Don't truncate output"},
	{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
	 "Format output using a template (fields: .ID .Repository .Tag .CreatedSince .CreatedAt .Size)"},
	{0},
};

int cli_cmd_image_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] [REPOSITORY[:TAG]]", desc[] = "List images";
	bool all = false, quiet = false, trunc = true;
	const char *format = NULL;
	struct cli_opts p;
	cli_opts_init(&p, ls_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'a') {
			all = cli_opts_bool(&p);
		} else if (id == 'q') {
			quiet = cli_opts_bool(&p);
		} else if (id == OPT_NO_TRUNC) {
			trunc = !cli_opts_bool(&p);
		} else if (id == OPT_FORMAT) {
			format = p.value;
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos > 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at most 1 argument");
	_cleanup_free_ char *match = p.npos == 1 ? strdup(p.pos[0]) : NULL;
	cli_opts_done(&p);

	_cleanup_json_ json_t *list =
		cli_list_get(ctx, all ? "/images/json?all=1" : "/images/json", "image");
	if (!list)
		return 1;
	struct cli_table *t = cli_table_new(5);
	if (!t)
		return cli_oom();
	static const char *const head[] = {"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"};
	cli_table_add(t, head);
	_cleanup_json_ json_t *seen = json_object();
	int status = 0;
	size_t i;
	json_t *img;
	json_array_foreach(list, i, img)
	{
		const char *iid = json_string_value(json_object_get(img, "Id"));
		char idbuf[128], ago[80], size[32], created[64];
		if (!iid)
			iid = "";
		if (trunc)
			cli_short_id(iid, idbuf, sizeof(idbuf));
		else
			snprintf(idbuf, sizeof(idbuf), "%s", iid);
		json_int_t ct = json_integer_value(json_object_get(img, "Created"));
		cli_human_duration((int64_t)time(NULL) - ct, ago, sizeof(ago));
		strcat(ago, " ago");
		time_t tt = (time_t)ct;
		struct tm tm;
		localtime_r(&tt, &tm);
		strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
		json_t *sz = json_object_get(img, "Size");
		cli_human_size(json_is_number(sz) ? json_number_value(sz) : 0, 3, size,
			       sizeof(size));
		json_t *tags = json_object_get(img, "RepoTags");
		size_t ntags = json_array_size(tags);
		for (size_t k = 0; k < (ntags ? ntags : 1); k++) {
			const char *rt = ntags ? json_string_value(json_array_get(tags, k)) : NULL;
			_cleanup_free_ char *repo = NULL;
			const char *tag = "<none>";
			if (rt && strcmp(rt, "<none>:<none>") != 0) {
				split_ref(rt, &repo, &tag);
				if (!*tag)
					tag = "<none>";
			}
			if (match && (!rt || (strcmp(rt, match) != 0 &&
					      (!repo || strcmp(repo, match) != 0))))
				continue;
			if (quiet) {
				if (!json_object_get(seen, idbuf)) {
					json_object_set_new(seen, idbuf, json_true());
					printf("%s\n", idbuf);
				}
				continue;
			}
			if (format) {
				_cleanup_json_ json_t *row = json_pack(
					"{s:s,s:s,s:s,s:s,s:s,s:s}", "ID", idbuf, "Repository",
					repo ? repo : "<none>", "Tag", tag, "CreatedSince", ago,
					"CreatedAt", created, "Size", size);
				char terr[256];
				_cleanup_free_ char *s =
					row ? cli_template_render(format, row, terr, sizeof(terr))
					    : NULL;
				if (!s) {
					fprintf(stderr, "template parsing error: %s\n",
						row ? terr : "out of memory");
					status = 1;
					goto out;
				}
				printf("%s\n", s);
				continue;
			}
			const char *cells[] = {repo ? repo : "<none>", tag, idbuf, ago, size};
			cli_table_add(t, cells);
		}
	}
	if (!quiet && !format)
		cli_table_print(t, stdout);
out:
	cli_table_free(t);
	return status;
}

static const struct cli_opt rmi_opts[] = {
	{'f', "force", 'f', CLI_OPT_BOOL, NULL, "Force removal of the image"},
	{OPT_NO_PRUNE, "no-prune", 0, CLI_OPT_BOOL, NULL, "Do not delete untagged parents"},
	{0},
};

int cli_cmd_image_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] IMAGE [IMAGE...]",
			  desc[] = "Remove one or more images";
	bool force = false, noprune = false;
	struct cli_opts p;
	cli_opts_init(&p, rmi_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			force = cli_opts_bool(&p);
		} else if (id == OPT_NO_PRUNE) {
			noprune = cli_opts_bool(&p);
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	int status = 0;
	for (int i = 0; i < p.npos; i++) {
		_cleanup_free_ char *e = cli_escape(p.pos[i]), *path = NULL;
		if (!e || asprintf(&path, "/images/%s%s%s%s", e, force || noprune ? "?" : "",
				   force ? "force=1" : "",
				   noprune ? (force ? "&noprune=1" : "noprune=1") : "") < 0) {
			status = cli_oom();
			break;
		}
		struct shoal_err err = {0};
		_cleanup_json_ json_t *resp = NULL;
		if (cli_call_json(ctx, "DELETE", path, NULL, NULL, &resp, &err) < 0) {
			cli_print_err(&err);
			status = 1;
			continue;
		}
		size_t k;
		json_t *item;
		json_array_foreach(resp, k, item)
		{
			const char *u = json_string_value(json_object_get(item, "Untagged"));
			const char *d = json_string_value(json_object_get(item, "Deleted"));
			if (u)
				printf("Untagged: %s\n", u);
			if (d)
				printf("Deleted: %s\n", d);
		}
	}
	cli_opts_done(&p);
	return status;
}
