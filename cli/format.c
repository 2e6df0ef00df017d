// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/format.h"
#include "lib/cleanup.h"

void cli_human_duration(int64_t seconds, char *buf, size_t size)
{
	int64_t minutes = seconds / 60;
	/* go-units rounds hours to the nearest. */
	int64_t hours = (seconds + 1800) / 3600;
	if (seconds < 1)
		snprintf(buf, size, "Less than a second");
	else if (seconds == 1)
		snprintf(buf, size, "1 second");
	else if (seconds < 60)
		snprintf(buf, size, "%" PRId64 " seconds", seconds);
	else if (minutes == 1)
		snprintf(buf, size, "About a minute");
	else if (minutes < 60)
		snprintf(buf, size, "%" PRId64 " minutes", minutes);
	else if (hours == 1)
		snprintf(buf, size, "About an hour");
	else if (hours < 48)
		snprintf(buf, size, "%" PRId64 " hours", hours);
	else if (hours < 24 * 7 * 2)
		snprintf(buf, size, "%" PRId64 " days", hours / 24);
	else if (hours < 24 * 30 * 2)
		snprintf(buf, size, "%" PRId64 " weeks", hours / 24 / 7);
	else if (hours < 24 * 365 * 2)
		snprintf(buf, size, "%" PRId64 " months", hours / 24 / 30);
	else
		snprintf(buf, size, "%" PRId64 " years", seconds / 3600 / 24 / 365);
}

static void custom_size(double v, double base, const char *const *units, size_t nunits,
			int precision, char *buf, size_t size)
{
	size_t i = 0;
	while (v >= base && i < nunits - 1) {
		v /= base;
		i++;
	}
	snprintf(buf, size, "%.*g%s", precision, v, units[i]);
}

void cli_human_size(double bytes, int precision, char *buf, size_t size)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
	custom_size(bytes, 1000.0, units, ARRAY_SIZE(units), precision, buf, size);
}

void cli_bytes_size(double bytes, char *buf, size_t size)
{
	static const char *const units[] = {"B",   "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB", "ZiB", "YiB"};
	custom_size(bytes, 1024.0, units, ARRAY_SIZE(units), 4, buf, size);
}

size_t cli_str_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

char *cli_ellipsis(const char *s, size_t max)
{
	if (cli_str_width(s) <= max)
		return strdup(s);
	if (max == 0)
		return strdup("");
	/* Keep max-1 characters, then "…". */
	size_t chars = 0, i = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (chars == max - 1)
				break;
			chars++;
		}
	}
	char *r = malloc(i + sizeof("…"));
	if (!r)
		return NULL;
	memcpy(r, s, i);
	strcpy(r + i, "…");
	return r;
}

char *cli_quote(const char *s)
{
	size_t n = strlen(s);
	char *r = malloc(n * 4 + 3);
	if (!r)
		return NULL;
	char *o = r;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			*o++ = '\\';
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			*o++ = '\\';
			break;
		case '\n':
			*o++ = '\\';
			*o++ = 'n';
			break;
		case '\t':
			*o++ = '\\';
			*o++ = 't';
			break;
		case '\r':
			*o++ = '\\';
			*o++ = 'r';
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				o += sprintf(o, "\\x%02x", *p);
			else
				*o++ = (char)*p;
		}
	}
	*o++ = '"';
	*o = '\0';
	return r;
}

void cli_short_id(const char *id, char *buf, size_t size)
{
	if (!id)
		id = "";
	if (strncmp(id, "sha256:", 7) == 0)
		id += 7;
	snprintf(buf, size, "%.12s", id);
}

void cli_daemon_error(int status, const char *body, char *buf, size_t size)
{
	const char *msg = NULL;
	json_t *j = NULL;
	if (body && *body) {
		j = json_loads(body, JSON_DECODE_ANY, NULL);
		if (j && json_is_object(j))
			msg = json_string_value(json_object_get(j, "message"));
		if (!msg && !j)
			msg = body;
	}
	if (msg) {
		size_t n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
			n--;
		snprintf(buf, size, "Error response from daemon: %.*s", (int)n, msg);
	} else {
		snprintf(buf, size, "Error response from daemon: unexpected status %d", status);
	}
	json_decref(j);
}

struct cli_table {
	size_t ncols, nrows, cap;
	char **cells; /* nrows * ncols */
};

struct cli_table *cli_table_new(size_t ncols)
{
	struct cli_table *t = calloc(1, sizeof(*t));
	if (t)
		t->ncols = ncols;
	return t;
}

struct cli_table *cli_table_free(struct cli_table *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
	return NULL;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(char *));
		if (!nc)
			return -ENOMEM;
		t->cells = nc;
		t->cap = ncap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		row[c] = strdup(cells[c] ? cells[c] : "");
		if (!row[c]) {
			while (c-- > 0)
				free(row[c]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

int cli_table_print(const struct cli_table *t, FILE *f)
{
	_cleanup_free_ size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
	if (!width)
		return -ENOMEM;
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = cli_str_width(t->cells[r * t->ncols + c]) + 3;
			if (w < 10)
				w = 10;
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			fputs(cell, f);
			if (c + 1 < t->ncols)
				fprintf(f, "%*s", (int)(width[c] - cli_str_width(cell)), "");
		}
		fputc('\n', f);
	}
	return 0;
}

/* Template rendering. */

struct tbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void tb_add(struct tbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void tb_puts(struct tbuf *b, const char *s)
{
	tb_add(b, s, strlen(s));
}

static void tb_printf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(struct tbuf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	tb_puts(b, tmp);
}

/* A value during evaluation: a JSON value, a missing key, or a scratch string. */
struct tval {
	json_t *v; /* borrowed unless owned */
	bool missing;
	bool owned;
};

static void tval_clear(struct tval *t)
{
	if (t->owned)
		json_decref(t->v);
	*t = (struct tval){0};
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void go_print(struct tbuf *b, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		tb_add(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		tb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		tb_printf(b, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		tb_puts(b, "true");
		break;
	case JSON_FALSE:
		tb_puts(b, "false");
		break;
	case JSON_NULL:
		tb_puts(b, "<nil>");
		break;
	case JSON_ARRAY: {
		size_t i;
		json_t *e;
		tb_puts(b, "[");
		json_array_foreach(v, i, e)
		{
			if (i)
				tb_puts(b, " ");
			go_print(b, e);
		}
		tb_puts(b, "]");
		break;
	}
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		_cleanup_free_ const char **keys = calloc(n ? n : 1, sizeof(char *));
		if (!keys) {
			b->oom = true;
			return;
		}
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e) keys[i++] = k;
		qsort(keys, n, sizeof(char *), cmp_str);
		tb_puts(b, "map[");
		for (i = 0; i < n; i++) {
			if (i)
				tb_puts(b, " ");
			tb_puts(b, keys[i]);
			tb_puts(b, ":");
			go_print(b, json_object_get(v, keys[i]));
		}
		tb_puts(b, "]");
		break;
	}
	}
}

/* Splits an action into words; quoted strings keep their quotes out. */
#define MAX_WORDS 8
static int split_words(char *s, char **words, bool *quoted, char *err, size_t errsize)
{
	int n = 0;
	while (*s) {
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (n == MAX_WORDS) {
			snprintf(err, errsize, "too many arguments in action");
			return -EINVAL;
		}
		if (*s == '"') {
			char *o = ++s;
			words[n] = o;
			quoted[n] = true;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1]) {
					s++;
					*o++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
					s++;
				} else {
					*o++ = *s++;
				}
			}
			if (*s != '"') {
				snprintf(err, errsize, "unterminated quoted string");
				return -EINVAL;
			}
			s++;
			*o = '\0';
		} else {
			words[n] = s;
			quoted[n] = false;
			while (*s && !isspace((unsigned char)*s))
				s++;
			if (*s)
				*s++ = '\0';
		}
		n++;
	}
	return n;
}

static int eval_path(const char *path, json_t *root, struct tval *ret, char *err, size_t errsize)
{
	if (path[0] != '.') {
		snprintf(err, errsize, "unexpected \"%s\" (want a .Field path)", path);
		return -EINVAL;
	}
	json_t *v = root;
	const char *p = path + 1;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0) {
			snprintf(err, errsize, "bad field path \"%s\"", path);
			return -EINVAL;
		}
		if (!json_is_object(v)) {
			if (json_is_null(v)) {
				snprintf(err, errsize, "nil pointer evaluating %s", path);
			} else {
				snprintf(err, errsize, "can't evaluate field %.*s in %s", (int)n, p,
					 path);
			}
			return -EINVAL;
		}
		json_t *next = json_object_getn(v, p, n);
		if (!next) {
			*ret = (struct tval){.missing = true};
			return 0;
		}
		v = next;
		p += n;
		if (*p == '.')
			p++;
	}
	*ret = (struct tval){.v = v};
	return 0;
}

static int eval_arg(const char *w, bool quoted, json_t *root, struct tval *ret, char *err,
		    size_t errsize)
{
	if (quoted) {
		*ret = (struct tval){.v = json_string(w), .owned = true};
		return ret->v ? 0 : -ENOMEM;
	}
	if (isdigit((unsigned char)w[0]) || (w[0] == '-' && isdigit((unsigned char)w[1]))) {
		*ret = (struct tval){.v = json_integer(strtoll(w, NULL, 10)), .owned = true};
		return ret->v ? 0 : -ENOMEM;
	}
	return eval_path(w, root, ret, err, errsize);
}

static int render_action(struct tbuf *b, char *action, json_t *root, char *err, size_t errsize)
{
	char *words[MAX_WORDS];
	bool quoted[MAX_WORDS];
	int n = split_words(action, words, quoted, err, errsize);
	if (n < 0)
		return n;
	if (n == 0) {
		snprintf(err, errsize, "missing value for command");
		return -EINVAL;
	}
	struct tval args[MAX_WORDS] = {0};
	int r = 0;
	const char *fn = quoted[0] || words[0][0] == '.' ? NULL : words[0];
	for (int i = fn ? 1 : 0; i < n; i++) {
		r = eval_arg(words[i], quoted[i], root, &args[i], err, errsize);
		if (r < 0)
			goto out;
	}
	if (!fn) {
		if (n != 1) {
			snprintf(err, errsize, "can't give argument to non-function %s", words[0]);
			r = -EINVAL;
		} else if (args[0].missing) {
			tb_puts(b, "<no value>");
		} else {
			go_print(b, args[0].v);
		}
		goto out;
	}
	int nargs = n - 1;
	struct tval *a = args + 1;
	if (strcmp(fn, "json") == 0 && nargs == 1) {
		if (a[0].missing) {
			tb_puts(b, "null");
		} else {
			_cleanup_free_ char *s = json_dumps(a[0].v, JSON_COMPACT | JSON_ENCODE_ANY |
									    JSON_PRESERVE_ORDER);
			if (!s) {
				r = -ENOMEM;
				goto out;
			}
			tb_puts(b, s);
		}
	} else if (strcmp(fn, "index") == 0 && nargs == 2) {
		json_t *c = a[0].v, *k = a[1].v, *v = NULL;
		if (a[0].missing || a[1].missing) {
			snprintf(err, errsize, "index of missing value");
			r = -EINVAL;
			goto out;
		}
		if (json_is_object(c) && json_is_string(k)) {
			v = json_object_get(c, json_string_value(k));
			if (!v) {
				tb_puts(b, "<no value>");
				goto out;
			}
		} else if (json_is_array(c) && json_is_integer(k)) {
			json_int_t i = json_integer_value(k);
			if (i < 0 || (size_t)i >= json_array_size(c)) {
				snprintf(err, errsize, "index out of range: %" JSON_INTEGER_FORMAT,
					 i);
				r = -EINVAL;
				goto out;
			}
			v = json_array_get(c, (size_t)i);
		} else {
			snprintf(err, errsize, "can't index item of this type");
			r = -EINVAL;
			goto out;
		}
		go_print(b, v);
	} else if (strcmp(fn, "join") == 0 && nargs == 2) {
		if (!json_is_array(a[0].v) || !json_is_string(a[1].v)) {
			snprintf(err, errsize, "join wants an array and a separator string");
			r = -EINVAL;
			goto out;
		}
		size_t i;
		json_t *e;
		json_array_foreach(a[0].v, i, e)
		{
			if (i)
				tb_puts(b, json_string_value(a[1].v));
			go_print(b, e);
		}
	} else if ((strcmp(fn, "upper") == 0 || strcmp(fn, "lower") == 0) && nargs == 1) {
		struct tbuf t = {0};
		if (a[0].missing)
			tb_puts(&t, "<no value>");
		else
			go_print(&t, a[0].v);
		for (size_t i = 0; i < t.len; i++)
			t.p[i] = (char)(fn[0] == 'u' ? toupper((unsigned char)t.p[i])
						     : tolower((unsigned char)t.p[i]));
		if (t.p)
			tb_add(b, t.p, t.len);
		free(t.p);
	} else if (strcmp(fn, "len") == 0 && nargs == 1) {
		json_t *v = a[0].v;
		if (json_is_array(v))
			tb_printf(b, "%zu", json_array_size(v));
		else if (json_is_object(v))
			tb_printf(b, "%zu", json_object_size(v));
		else if (json_is_string(v))
			tb_printf(b, "%zu", json_string_length(v));
		else {
			snprintf(err, errsize, "len of this type");
			r = -EINVAL;
		}
	} else {
		snprintf(err, errsize, "function \"%s\" not defined or wrong number of arguments",
			 fn);
		r = -EINVAL;
	}
out:
	for (int i = 0; i < n; i++)
		tval_clear(&args[i]);
	return r;
}

char *cli_template_render(const char *tmpl, json_t *value, char *ret_error, size_t errsize)
{
	struct tbuf b = {0};
	const char *p = tmpl;
	tb_puts(&b, "");
	while (*p) {
		const char *open = strstr(p, "{{");
		if (!open) {
			tb_puts(&b, p);
			break;
		}
		tb_add(&b, p, (size_t)(open - p));
		const char *close = strstr(open + 2, "}}");
		if (!close) {
			snprintf(ret_error, errsize, "unclosed action");
			free(b.p);
			return NULL;
		}
		_cleanup_free_ char *action = strndup(open + 2, (size_t)(close - open - 2));
		if (!action) {
			free(b.p);
			return NULL;
		}
		if (render_action(&b, action, value, ret_error, errsize) < 0) {
			free(b.p);
			return NULL;
		}
		p = close + 2;
	}
	if (b.oom) {
		snprintf(ret_error, errsize, "out of memory");
		free(b.p);
		return NULL;
	}
	return b.p;
}
