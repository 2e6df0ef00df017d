// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "agent/container-config.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/util.h"
#include "runtime/caps.h"

int container_hostname_check(const char *field, const char *s, struct shoal_err *err)
{
	size_t len = strlen(s);
	if (len > HOSTNAME_MAX)
		return shoal_err_set(
			err, EINVAL,
			"%s: \"%.32s...\" is %zu characters long, at most %d are allowed", field, s,
			len, HOSTNAME_MAX);
	const char *label = s;
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t n = (size_t)(p - label);
			if (n == 0 && (*p == '.' || p != s))
				return shoal_err_set(
					err, EINVAL,
					"%s: \"%s\" has an empty label (two dots, or a dot at an end)",
					field, s);
			if (n > HOSTNAME_LABEL_MAX)
				return shoal_err_set(
					err, EINVAL,
					"%s: a label of \"%s\" is %zu characters long, at most %d are allowed",
					field, s, n, HOSTNAME_LABEL_MAX);
			if (n > 0 && (label[0] == '-' || p[-1] == '-'))
				return shoal_err_set(
					err, EINVAL,
					"%s: \"%s\": a label may not begin or end with a hyphen",
					field, s);
			if (*p == '\0')
				break;
			label = p + 1;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-') {
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				return shoal_err_set(
					err, EINVAL,
					"%s: contains the byte 0x%02x; a hostname is letters, digits, hyphens and dots (RFC 1123)",
					field, (unsigned char)*p);
			return shoal_err_set(
				err, EINVAL,
				"%s: \"%s\" contains '%c'; a hostname is letters, digits, hyphens and dots (RFC 1123)",
				field, s, *p);
		}
	}
	return 0;
}

/* "name", "uid", "name:group", "uid:gid": no control characters, at most one
 * colon, no empty part. The names themselves are looked up in the image at
 * start. */
static int check_user(const char *s, struct shoal_err *err)
{
	size_t len = strlen(s);
	if (len > USER_SPEC_MAX)
		return shoal_err_set(err, EINVAL,
				     "User: %zu characters long, at most %d are allowed", len,
				     USER_SPEC_MAX);
	if (!*s)
		return 0;
	const char *colon = strchr(s, ':');
	if (colon && (colon == s || !colon[1] || strchr(colon + 1, ':')))
		return shoal_err_set(err, EINVAL,
				     "User: \"%s\" is not user, uid, user:group or uid:gid", s);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/')
			return shoal_err_set(
				err, EINVAL,
				"User: contains the character 0x%02x; expected user, uid, user:group or uid:gid",
				(unsigned char)*p);
	return 0;
}

static void human_bytes(int64_t v, char *buf, size_t len)
{
	if (v >= (INT64_C(1) << 30))
		snprintf(buf, len, "%.1f GiB", (double)v / (double)(INT64_C(1) << 30));
	else
		snprintf(buf, len, "%.1f MiB", (double)v / (double)(INT64_C(1) << 20));
}

/* Memory and MemorySwap as Docker checks them (at least 6 MB; swap -1 for
 * unlimited, else at least the memory and only with a memory limit), plus what
 * the machine can hold: a limit above it is never reached, and INT64_MAX only
 * fails later when the kernel refuses it. */
static int check_memory(json_t *hc, const struct container_host *host, struct shoal_err *err)
{
	int64_t mem = 0, swap = 0;
	char have[32];
	int r;
	if ((r = json_get_int(hc, "Memory", &mem, err)) == 0) {
		if (mem < 0)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.Memory: %lld is negative; 0 means no limit",
				(long long)mem);
		if (mem > 0 && mem < MEMORY_MIN)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.Memory: Minimum memory limit allowed is 6MB (got %lld bytes)",
				(long long)mem);
		if (host->mem_bytes > 0 && mem > host->mem_bytes) {
			human_bytes(host->mem_bytes, have, sizeof(have));
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.Memory: %lld bytes is more than this machine has (%s)",
				(long long)mem, have);
		}
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	if ((r = json_get_int(hc, "MemorySwap", &swap, err)) == 0) {
		if (swap < -1)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.MemorySwap: %lld is invalid; -1 means unlimited swap, 0 twice the memory",
				(long long)swap);
		if (swap > 0 && mem == 0)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.MemorySwap: You should always set the Memory limit when using Memoryswap limit, see usage");
		if (swap > 0 && swap < mem)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.MemorySwap: Minimum memoryswap limit should be larger than memory limit, see usage");
		int64_t most = host->mem_bytes > 0 ? host->mem_bytes + host->swap_bytes : 0;
		if (most > 0 && swap > most && swap > mem) {
			human_bytes(most, have, sizeof(have));
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.MemorySwap: %lld bytes is more than this machine's memory and swap together (%s)",
				(long long)swap, have);
		}
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	return 0;
}

static int validate_host_config(json_t *hc, const struct container_host *host,
				struct shoal_err *err)
{
	int64_t v;
	bool b;
	const char *s;
	int r;
	if ((r = check_memory(hc, host, err)) < 0)
		return r;
	if ((r = json_get_int(hc, "NanoCpus", &v, err)) == 0) {
		long ncpu = host->ncpus > 0 ? host->ncpus : 1;
		if (v < 0 || (v > 0 && v < 10000000) || v > (int64_t)ncpu * 1000000000LL)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.NanoCpus: Range of CPUs is from 0.01 to %ld.00, as there are only %ld CPUs available",
				ncpu, ncpu);
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	if ((r = json_get_int(hc, "CpuShares", &v, err)) == 0) {
		if (v < 0 || (v > 0 && v < 2) || v > 262144)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.CpuShares %lld is out of range (2 to 262144, or 0 for the default)",
				(long long)v);
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	if ((r = json_get_int(hc, "PidsLimit", &v, err)) == 0) {
		if (v < -1 || v > PIDS_LIMIT_MAX)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.PidsLimit %lld is out of range (1 to %d, or 0 or -1 for no limit)",
				(long long)v, PIDS_LIMIT_MAX);
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	const char *bools[] = {"ReadonlyRootfs", "Privileged", "AutoRemove"};
	for (size_t i = 0; i < ARRAY_SIZE(bools); i++)
		if ((r = json_get_bool(hc, bools[i], &b, err)) < 0 && r != -ENOENT)
			return shoal_err_wrap(err, "HostConfig");
	const char *caplists[] = {"CapAdd", "CapDrop"};
	for (size_t i = 0; i < ARRAY_SIZE(caplists); i++) {
		_cleanup_strv_ char **caps = NULL;
		if ((r = json_get_strv(hc, caplists[i], false, &caps, err)) == -ENOENT)
			continue;
		if (r < 0)
			return shoal_err_wrap(err, "HostConfig");
		for (size_t k = 0; caps[k]; k++) {
			int cap;
			if (strcasecmp(caps[k], "ALL") == 0)
				continue;
			if (rt_cap_from_name(caps[k], &cap, err) < 0)
				return shoal_err_wrap(err, "HostConfig.%s", caplists[i]);
		}
	}
	_cleanup_strv_ char **secopts = NULL;
	if ((r = json_get_strv(hc, "SecurityOpt", false, &secopts, err)) == 0) {
		for (size_t k = 0; secopts[k]; k++)
			if (strcmp(secopts[k], "seccomp=unconfined") != 0 &&
			    strcmp(secopts[k], "seccomp:unconfined") != 0 &&
			    strcmp(secopts[k], "no-new-privileges") != 0 &&
			    strcmp(secopts[k], "no-new-privileges:true") != 0 &&
			    strcmp(secopts[k], "no-new-privileges=true") != 0)
				return shoal_err_set(
					err, EINVAL,
					"invalid --security-opt %s: supported are seccomp=unconfined and no-new-privileges",
					secopts[k]);
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	if ((r = json_get_string(hc, "NetworkMode", &s, err)) == 0) {
		/* another name is an overlay network's, looked up at create */
		bool shape = *s && strlen(s) <= 128 && isalnum((unsigned char)*s);
		for (const char *q = s; *q && shape; q++)
			shape = isalnum((unsigned char)*q) || strchr("_.-", *q);
		if (*s && strcmp(s, "default") != 0 && strcmp(s, "bridge") != 0 &&
		    strcmp(s, "none") != 0 && strcmp(s, "host") != 0 && !shape)
			return shoal_err_set_status(err, 404, ENOENT, "network %s not found", s);
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	json_t *pb;
	if ((r = json_get_object(hc, "PortBindings", &pb, err)) == 0) {
		const char *k;
		json_t *binds;
		json_object_foreach(pb, k, binds)
		{
			char *end;
			long cport = strtol(k, &end, 10);
			if (cport < 1 || cport > 65535 ||
			    (*end && strcmp(end, "/tcp") != 0 && strcmp(end, "/udp") != 0))
				return shoal_err_set(
					err, EINVAL,
					"HostConfig.PortBindings: \"%s\" is not PORT/tcp or PORT/udp",
					k);
			if (!json_is_array(binds))
				return shoal_err_set(
					err, EINVAL,
					"HostConfig.PortBindings.%s: expected an array of {\"HostPort\": \"N\"}",
					k);
			size_t i;
			json_t *bind;
			json_array_foreach(binds, i, bind)
			{
				const char *hp = NULL, *hip = NULL;
				if (!json_is_object(bind) ||
				    json_get_string(bind, "HostPort", &hp, NULL) < 0)
					return shoal_err_set(
						err, EINVAL,
						"HostConfig.PortBindings.%s[%zu]: HostPort is required",
						k, i);
				long hport = strtol(hp, &end, 10);
				if (*end || hport < 1 || hport > 65535)
					return shoal_err_set(
						err, EINVAL,
						"HostConfig.PortBindings.%s[%zu]: HostPort \"%s\" is not a port (1-65535)",
						k, i, hp);
				if (json_get_string(bind, "HostIp", &hip, NULL) == 0 && *hip &&
				    strcmp(hip, "0.0.0.0") != 0)
					return shoal_err_set(
						err, EINVAL,
						"HostConfig.PortBindings.%s[%zu]: publishing on one address (%s) is not supported; ports are published on every address",
						k, i, hip);
			}
		}
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	struct container_restart_policy rp;
	if ((r = container_restart_policy_parse(json_object_get(hc, "RestartPolicy"), &rp, err)) <
	    0)
		return r;
	b = false;
	json_get_bool(hc, "AutoRemove", &b, NULL);
	if (b && rp.mode != CONTAINER_RESTART_NO)
		return shoal_err_set(err, EINVAL,
				     "can't create 'AutoRemove' container with restart policy: "
				     "HostConfig.AutoRemove (--rm) and RestartPolicy %s exclude "
				     "each other",
				     container_restart_mode_name(rp.mode));
	json_t *lc, *lcc;
	if ((r = json_get_object(hc, "LogConfig", &lc, err)) == 0) {
		if (json_get_string(lc, "Type", &s, err) == 0 && *s && strcmp(s, "json-file") != 0)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.LogConfig.Type %s: only json-file is supported", s);
		if (json_get_object(lc, "Config", &lcc, err) == 0) {
			int64_t size;
			if (json_get_string(lcc, "max-size", &s, err) == 0 &&
			    (parse_size(s, &size) < 0 || size < 4096))
				return shoal_err_set(
					err, EINVAL,
					"log-opt max-size=%s: expected a size of at least 4k like 10m",
					s);
			char *end = NULL;
			long nfiles = 0;
			if (json_get_string(lcc, "max-file", &s, err) == 0 &&
			    ((nfiles = strtol(s, &end, 10)) < 1 || nfiles > 100 || *end ||
			     end == s))
				return shoal_err_set(
					err, EINVAL,
					"log-opt max-file=%s: expected a number from 1 to 100", s);
		}
	} else if (r != -ENOENT)
		return shoal_err_wrap(err, "HostConfig");
	return 0;
}

void container_host_probe(struct container_host *ret)
{
	struct sysinfo si;
	*ret = (struct container_host){.ncpus = sysconf(_SC_NPROCESSORS_ONLN)};
	if (sysinfo(&si) == 0) {
		ret->mem_bytes = (int64_t)si.totalram * si.mem_unit;
		ret->swap_bytes = (int64_t)si.totalswap * si.mem_unit;
	}
}

/* A value that asks for nothing: null, false, 0, "", an empty object, or an
 * array of such values. An object with keys asks for something even when its
 * values are empty (Volumes: {"/data": {}} asks for a volume). */
static bool json_zero(json_t *v)
{
	size_t i;
	json_t *e;
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE:
		return true;
	case JSON_INTEGER:
		return json_integer_value(v) == 0;
	case JSON_REAL:
		return json_real_value(v) == 0;
	case JSON_STRING:
		return json_string_length(v) == 0;
	case JSON_ARRAY:
		json_array_foreach(v, i, e) if (!json_zero(e)) return false;
		return true;
	case JSON_OBJECT:
		return json_object_size(v) == 0;
	default:
		return false;
	}
}

/* An object whose every member asks for nothing (an endpoint's settings). */
static bool json_members_zero(json_t *v)
{
	const char *k;
	json_t *e;
	if (!json_is_object(v))
		return json_zero(v);
	json_object_foreach(v, k, e) if (!json_members_zero(e)) return false;
	return true;
}

/* Fields Docker's API has and shoal does not do: refused unless they ask for
 * nothing (the docker CLI sends most of them, empty), never ignored. Values
 * the docker CLI sends as its defaults count as nothing too. */
struct field_default {
	const char *key;
	const char *str; /* this string is the default */
	json_int_t num;	 /* or this number */
	bool has_num;
};

static const struct field_default defaults[] = {
	{"MemorySwappiness", NULL, -1, true},
	{"NetworkMode", "default", 0, false},
	{"Isolation", "default", 0, false},
};

static bool default_value(const char *key, json_t *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
		if (strcmp(defaults[i].key, key) != 0)
			continue;
		if (defaults[i].str && json_is_string(v) &&
		    strcmp(json_string_value(v), defaults[i].str) == 0)
			return true;
		if (defaults[i].has_num && json_is_integer(v) &&
		    json_integer_value(v) == defaults[i].num)
			return true;
	}
	return false;
}

static bool listed(const char *key, const char *const *known, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(key, known[i]) == 0)
			return true;
	return false;
}

static int refuse_unsupported(json_t *obj, const char *where, const char *const *known,
			      size_t n_known, struct shoal_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		if (listed(k, known, n_known) || json_zero(v) || default_value(k, v))
			continue;
		return shoal_err_set(err, EINVAL,
				     "%s%s%s: not supported by shoal; leave it out (it would not "
				     "be applied)",
				     where, *where ? "." : "", k);
	}
	return 0;
}

/* What a create may ask for, at the top and in HostConfig. */
static const char *const known_top[] = {
	"Hostname",
	"Domainname",
	"User",
	"AttachStdin",
	"AttachStdout",
	"AttachStderr",
	"Tty",
	"OpenStdin",
	"StdinOnce",
	"Env",
	"Cmd",
	"Healthcheck",
	"Image",
	"WorkingDir",
	"Entrypoint",
	"Labels",
	"StopSignal",
	"StopTimeout",
	"HostConfig",
	"NetworkingConfig",
	"ExposedPorts",
	"ArgsEscaped",
	"NetworkDisabled",
	"Volumes",
};
static const char *const known_host[] = {
	"Memory",	"MemorySwap",  "NanoCpus",	 "CpuShares",	  "PidsLimit",
	"PortBindings", "NetworkMode", "LogConfig",	 "SecurityOpt",	  "CapAdd",
	"CapDrop",	"Privileged",  "ReadonlyRootfs", "AutoRemove",	  "ConsoleSize",
	"Binds",	"Mounts",      "Tmpfs",		 "RestartPolicy",
};

/* NetworkingConfig: an endpoint on a network names nothing but the network
 * (aliases, addresses, links are for networks shoal does not have yet). */
static int check_networking_config(json_t *nc, struct shoal_err *err)
{
	const char *k, *net;
	json_t *v, *ep;
	json_object_foreach(nc, k, v)
	{
		if (strcmp(k, "EndpointsConfig") != 0) {
			if (json_zero(v))
				continue;
			return shoal_err_set(err, EINVAL,
					     "NetworkingConfig.%s: not supported by shoal", k);
		}
		if (!json_is_object(v) && !json_is_null(v))
			return shoal_err_set(
				err, EINVAL,
				"NetworkingConfig.EndpointsConfig: expected an object");
		json_object_foreach(v, net, ep)
		{
			if (!json_members_zero(ep))
				return shoal_err_set(
					err, EINVAL,
					"NetworkingConfig.EndpointsConfig.%s: endpoint settings "
					"(aliases, addresses, links) are not supported by shoal",
					net);
		}
	}
	return 0;
}

int container_config_check(json_t *body, struct shoal_err *err)
{
	struct container_host host;
	container_host_probe(&host);
	return container_config_check_host(body, &host, err);
}

int container_config_check_host(json_t *body, const struct container_host *host,
				struct shoal_err *err)
{
	const char *image = NULL, *s;
	bool b;
	int r;
	if ((r = json_get_string(body, "Image", &image, err)) == -ENOENT || (r == 0 && !*image))
		return shoal_err_set(err, EINVAL,
				     "Image: required, the image to run (e.g. \"busybox\")");
	if (r < 0)
		return r;
	const char *strs[] = {"WorkingDir", "User", "Hostname", "Domainname", "StopSignal"};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		if ((r = json_get_string(body, strs[i], &s, err)) < 0 && r != -ENOENT)
			return r;
	const char *bools[] = {"Tty",	       "OpenStdin",    "StdinOnce",	 "AttachStdin",
			       "AttachStdout", "AttachStderr", "NetworkDisabled"};
	for (size_t i = 0; i < ARRAY_SIZE(bools); i++)
		if ((r = json_get_bool(body, bools[i], &b, err)) < 0 && r != -ENOENT)
			return r;
	_cleanup_strv_ char **cmd = NULL, **entrypoint = NULL, **env = NULL;
	if ((r = json_get_strv(body, "Cmd", true, &cmd, err)) < 0 && r != -ENOENT)
		return r;
	if ((r = json_get_strv(body, "Entrypoint", true, &entrypoint, err)) < 0 && r != -ENOENT)
		return r;
	if ((r = json_get_strv(body, "Env", false, &env, err)) < 0 && r != -ENOENT)
		return r;
	for (size_t i = 0; env && env[i]; i++)
		if (!env[i][0] || env[i][0] == '=')
			return shoal_err_set(err, EINVAL,
					     "Env[%zu]: invalid environment variable \"%s\"", i,
					     env[i]);
	if (json_get_string(body, "WorkingDir", &s, NULL) == 0 && *s && *s != '/')
		return shoal_err_set(
			err, EINVAL,
			"the working directory '%s' is invalid, it needs to be an absolute path",
			s);
	/* The hostname ends up in the container's UTS namespace (at most 64
	 * bytes) and in its /etc/hosts and /etc/hostname, one per line: a newline
	 * would add entries of the user's choosing. */
	if (json_get_string(body, "Hostname", &s, NULL) == 0 && *s) {
		if (strlen(s) > HOSTNAME_LABEL_MAX)
			return shoal_err_set(
				err, EINVAL,
				"Hostname: %zu characters long, at most %d are allowed (the kernel's limit); put the rest in Domainname",
				strlen(s), HOSTNAME_LABEL_MAX);
		if ((r = container_hostname_check("Hostname", s, err)) < 0)
			return r;
	}
	if (json_get_string(body, "Domainname", &s, NULL) == 0 && *s &&
	    (r = container_hostname_check("Domainname", s, err)) < 0)
		return r;
	if (json_get_string(body, "User", &s, NULL) == 0 && (r = check_user(s, err)) < 0)
		return r;
	json_t *labels;
	if ((r = json_get_object(body, "Labels", &labels, err)) == 0) {
		const char *k;
		json_t *v;
		json_object_foreach(labels, k, v)
		{
			if (!json_is_string(v))
				return shoal_err_set(err, EINVAL, "Labels.%s: expected a string",
						     k);
		}
	} else if (r != -ENOENT)
		return r;
	json_t *hc = NULL;
	if ((r = json_get_object(body, "HostConfig", &hc, err)) < 0 && r != -ENOENT)
		return r;
	if (hc && (r = validate_host_config(hc, host, err)) < 0)
		return r;
	bool task = json_object_get(json_object_get(body, "Labels"), "com.docker.swarm.task.id");
	if ((r = refuse_unsupported(body, "", known_top, ARRAY_SIZE(known_top), err)) < 0)
		return r;
	json_t *stop_t = json_object_get(body, "StopTimeout");
	if (stop_t && !json_is_null(stop_t) &&
	    (!json_is_integer(stop_t) || json_integer_value(stop_t) < 0))
		return shoal_err_set(err, EINVAL, "StopTimeout: expected whole seconds, 0 or more");
	/* A health check runs for a service's task (the executor probes it), not for
	 * a plain container: there it would not be applied. */
	json_t *hcheck = json_object_get(body, "Healthcheck");
	if (hcheck && !json_zero(hcheck) && !task)
		return shoal_err_set(
			err, EINVAL,
			"Healthcheck: health checks run for service tasks only; a plain "
			"container's would not be applied");
	/* A service's task may carry its reservation (placement: the scheduler
	 * honours it) and its init flag; a plain container may not. */
	if (hc && task) {
		struct container_restart_policy rp;
		if (container_restart_policy_parse(json_object_get(hc, "RestartPolicy"), &rp,
						   NULL) == 0 &&
		    rp.mode != CONTAINER_RESTART_NO)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.RestartPolicy: a service task is restarted "
				"by its service's restart policy, not its container's");
		json_t *h = json_copy(hc);
		json_object_del(h, "MemoryReservation");
		json_object_del(h, "Init");
		r = refuse_unsupported(h, "HostConfig", known_host, ARRAY_SIZE(known_host), err);
		json_decref(h);
		if (r < 0)
			return r;
	} else if (hc && (r = refuse_unsupported(hc, "HostConfig", known_host,
						 ARRAY_SIZE(known_host), err)) < 0) {
		return r;
	}
	json_t *nc = json_object_get(body, "NetworkingConfig");
	if (json_is_object(nc) && (r = check_networking_config(nc, err)) < 0)
		return r;
	json_t *mounts = NULL;
	if ((r = container_mounts_parse(body, hc, &mounts, err)) < 0)
		return r;
	json_decref(mounts);

	return 0;
}

int container_env_merge(char **image_env, char **user_env, char ***ret)
{
	_cleanup_strv_ char **out = calloc(1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; image_env && image_env[i]; i++)
		if (strv_push(&out, image_env[i]) < 0)
			return -ENOMEM;
	for (size_t i = 0; user_env && user_env[i]; i++) {
		const char *eq = strchr(user_env[i], '=');
		size_t klen = eq ? (size_t)(eq - user_env[i]) : strlen(user_env[i]);
		bool replaced = false;
		for (size_t k = 0; out[k]; k++)
			if (strncmp(out[k], user_env[i], klen) == 0 &&
			    (out[k][klen] == '=' || out[k][klen] == '\0')) {
				char *n = strdup(user_env[i]);
				if (!n)
					return -ENOMEM;
				free(out[k]);
				out[k] = n;
				replaced = true;
				break;
			}
		if (!replaced && strv_push(&out, user_env[i]) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(out);
	return 0;
}

/* ---- restart policies ---- */

const char *container_restart_mode_name(enum container_restart_mode m)
{
	switch (m) {
	case CONTAINER_RESTART_ALWAYS:
		return "always";
	case CONTAINER_RESTART_UNLESS_STOPPED:
		return "unless-stopped";
	case CONTAINER_RESTART_ON_FAILURE:
		return "on-failure";
	case CONTAINER_RESTART_NO:
		break;
	}
	return "no";
}

int container_restart_policy_parse(json_t *v, struct container_restart_policy *ret,
				   struct shoal_err *err)
{
	struct container_restart_policy p = {.mode = CONTAINER_RESTART_NO};
	if (!v || json_is_null(v)) {
		*ret = p;
		return 0;
	}
	if (!json_is_object(v))
		return shoal_err_set(err, EINVAL,
				     "HostConfig.RestartPolicy: expected an object {\"Name\": ..., "
				     "\"MaximumRetryCount\": ...}");
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		if (strcmp(k, "Name") != 0 && strcmp(k, "MaximumRetryCount") != 0)
			return shoal_err_set(
				err, EINVAL,
				"HostConfig.RestartPolicy.%s: unknown field; a restart "
				"policy has Name and MaximumRetryCount",
				k);
	}
	json_t *name = json_object_get(v, "Name"), *max = json_object_get(v, "MaximumRetryCount");
	if (name && !json_is_null(name) && !json_is_string(name))
		return shoal_err_set(err, EINVAL,
				     "HostConfig.RestartPolicy.Name: expected a string");
	if (max && !json_is_null(max) && !json_is_integer(max))
		return shoal_err_set(err, EINVAL,
				     "HostConfig.RestartPolicy.MaximumRetryCount: expected a whole "
				     "number");
	const char *n = json_string_value(name) ?: "";
	json_int_t count = json_integer_value(max);
	if (!*n) {
		/* Docker accepts a count without a name (an older client's
		 * zero value): no policy either way */
		*ret = p;
		return 0;
	}
	if (strcmp(n, "no") == 0)
		p.mode = CONTAINER_RESTART_NO;
	else if (strcmp(n, "always") == 0)
		p.mode = CONTAINER_RESTART_ALWAYS;
	else if (strcmp(n, "unless-stopped") == 0)
		p.mode = CONTAINER_RESTART_UNLESS_STOPPED;
	else if (strcmp(n, "on-failure") == 0)
		p.mode = CONTAINER_RESTART_ON_FAILURE;
	else
		return shoal_err_set(err, EINVAL,
				     "invalid restart policy: unknown policy '%.64s'; use one of "
				     "'no', 'always', 'on-failure', or 'unless-stopped'",
				     n);
	if (p.mode != CONTAINER_RESTART_ON_FAILURE && count != 0)
		return shoal_err_set(err, EINVAL,
				     "invalid restart policy: maximum retry count can only be used "
				     "with 'on-failure'%s",
				     count < 0 ? " and cannot be negative" : "");
	if (count < 0)
		return shoal_err_set(
			err, EINVAL,
			"invalid restart policy: maximum retry count cannot be negative");
	if (count > INT32_MAX)
		return shoal_err_set(
			err, EINVAL,
			"invalid restart policy: maximum retry count %lld is too large "
			"(at most %d; 0 means no limit)",
			(long long)count, INT32_MAX);
	p.max_retries = (int)count;
	*ret = p;
	return 0;
}

bool container_restart_on_exit(const struct container_restart_policy *p, int exit_code,
			       bool manual_stop, int restart_count)
{
	switch (p->mode) {
	case CONTAINER_RESTART_ALWAYS:
		return true;
	case CONTAINER_RESTART_UNLESS_STOPPED:
		return !manual_stop;
	case CONTAINER_RESTART_ON_FAILURE:
		return exit_code != 0 && (p->max_retries == 0 || restart_count < p->max_retries);
	case CONTAINER_RESTART_NO:
		break;
	}
	return false;
}

bool container_restart_at_agent_start(const struct container_restart_policy *p, bool manual_stop)
{
	return p->mode == CONTAINER_RESTART_ALWAYS ||
	       (p->mode == CONTAINER_RESTART_UNLESS_STOPPED && !manual_stop);
}

int64_t container_restart_backoff_ms(int64_t prev_ms, int64_t ran_ns)
{
	if (ran_ns >= CONTAINER_RESTART_RESET_NS || prev_ms <= 0)
		return CONTAINER_RESTART_DELAY_MIN_MS;
	if (prev_ms >= CONTAINER_RESTART_DELAY_MAX_MS / 2)
		return CONTAINER_RESTART_DELAY_MAX_MS;
	return prev_ms * 2;
}
