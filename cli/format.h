/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Output formatting shared by the commands, matching the docker CLI. */

/* "Less than a second", "1 second", "5 seconds", "About a minute", "3 hours",
 * "2 weeks" ... (go-units HumanDuration). */
void cli_human_duration(int64_t seconds, char *buf, size_t size);
/* Decimal units with `precision` significant digits: "4.26MB", "512B", "1.5kB". */
void cli_human_size(double bytes, int precision, char *buf, size_t size);
/* Binary units, 4 significant digits: "23.4GiB" (info's Total Memory). */
void cli_bytes_size(double bytes, char *buf, size_t size);
/* Display width in characters (UTF-8 code points). */
size_t cli_str_width(const char *s);
/* Copy of s cut to max characters, the last replaced by "…" when cut. */
char *cli_ellipsis(const char *s, size_t max);
/* Go's strconv.Quote: double quotes, backslash escapes. */
char *cli_quote(const char *s);
/* Short image/container id: strips "sha256:" and keeps 12 hex characters. */
void cli_short_id(const char *id, char *buf, size_t size);
/* "Error response from daemon: <message>" from an error body (JSON with
 * "message", or plain text, or the status when the body is empty). */
void cli_daemon_error(int status, const char *body, char *buf, size_t size);

/* Rows of tab-separated cells printed like Go's tabwriter with minwidth 10,
 * padding 3 (the docker CLI's tables): every column but the last padded. */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols);
struct cli_table *cli_table_free(struct cli_table *t);
/* Adds a row of ncols cells (copied). */
int cli_table_add(struct cli_table *t, const char *const *cells);
int cli_table_print(const struct cli_table *t, FILE *f);

/* A subset of Go templates, enough for `inspect -f`/`--format`:
 *   text outside {{ }} copied as is
 *   {{.}}  {{.A.B.C}}          the value at a dotted path (field names exact)
 *   {{json .A}}                the value as compact JSON
 *   {{index .A "key"}}  {{index .A 2}}
 *   {{join .A ","}}            array elements joined
 *   {{upper .A}} {{lower .A}}  {{len .A}}
 * Values print as Go prints them: strings raw, integral numbers without a
 * fraction, arrays "[a b]", objects "map[k:v]", a missing key "<no value>",
 * null "<nil>". Returns the expansion (malloc'd) or NULL with *ret_error set. */
char *cli_template_render(const char *tmpl, json_t *value, char *ret_error, size_t errsize);
