// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <net/if.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <linux/magic.h>

#include "agent/agent.h"
#include "agent/container.h"
#include "agent/http.h"
#include "agent/dns.h"
#include "agent/manager.h"
#include "agent/publish.h"
#include "agent/membership.h"
#include "agent/overlay-agent.h"
#include "agent/secrets.h"
#include "agent/swarm.h"
#include "agent/store/store.h"
#include "agent/stream.h"
#include "lb/lb.h"
#include "lb/maglev.h"
#include "agent/events.h"
#include "agent/volumes.h"
#include "agent/worker.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "overlay/bridge.h"
#include "runtime/cgroup.h"
#include "runtime/image.h"
#include "runtime/runtime.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: shoald [OPTIONS]\n\n"
		"The shoal node agent: runs containers and serves the API on a unix socket.\n\n"
		"Options:\n"
		"  --data-dir DIR        persistent state (default /var/lib/shoal)\n"
		"  --run-dir DIR         runtime state (default /run/shoal)\n"
		"  --socket PATH         API socket (default <run-dir>/shoal.sock)\n"
		"  --cgroup-parent P     container cgroups parent, relative to shoald's own cgroup\n"
		"                        or absolute with a leading / (default shoal)\n"
		"  --bpffs-dir DIR       pinned BPF objects (default /sys/fs/bpf/shoal)\n"
		"  --device-prefix P     prefix of every network device and table (default shoal)\n"
		"  --bridge-subnet CIDR  subnet of the default bridge network (default 10.213.0.0/16)\n"
		"  --store BACKEND       cluster store: sqlite (default, this node alone) or etcd\n"
		"                        (several nodes sharing one state)\n"
		"  --store-endpoints URL etcd members, comma-separated http(s)://HOST:PORT\n"
		"  --store-cacert FILE   CA bundle that verifies the etcd members (https)\n"
		"  --store-cert FILE     client certificate for etcd (with --store-key)\n"
		"  --store-key FILE      its private key\n"
		"  --store-user NAME     etcd user, with --store-password-file\n"
		"  --store-password-file FILE  the etcd user's password (first line)\n"
		"  --advertise-addr IP   this node's address for the other nodes (required with\n"
		"                        --store etcd)\n"
		"  --role ROLE           manager (default: may lead the cluster) or worker\n"
		"  --join-token TOKEN    a join token of the cluster in the store (`docker swarm\n"
		"                        join-token worker|manager`): checked before the node\n"
		"                        registers; it says the node's role\n"
		"  --node-label K=V      a label of this node, for placement constraints\n"
		"                        (repeatable)\n"
		"  --node-ttl SECONDS    a node whose agent stops renewing its lease is down\n"
		"                        after this long (default 5; 2 to 60)\n"
		"  --log-level LEVEL     error, warn, info (default), debug\n"
		"  --log-max-size SIZE   container log rotation size (default 10m)\n"
		"  --log-max-files N     container log files kept (default 3)\n"
		"  --log-max-total SIZE  all container logs of the node together, as a size or a\n"
		"                        share of the data dir's file system like 25%% (default\n"
		"                        25%%; 0 = no cap); past it, and while the file system\n"
		"                        has less than min(5%%, 64m) free, log lines are dropped\n"
		"                        and counted\n"
		"  --task-history-limit N  finished tasks kept per service slot (default 5,\n"
		"                        as swarm's TaskHistoryRetentionLimit; 1 to 100)\n"
		"  --max-connections N   API connections served at once (default 8192, fewer\n"
		"                        when the open-file limit is lower); past it the\n"
		"                        socket's backlog waits\n"
		"  --monitor-path PATH   shoal-monitor binary (default: beside shoald)\n"
		"  --insecure-registry HOST[:PORT]  pull from this registry over plain HTTP\n"
		"                        (repeatable; a HOST without a port covers every port;\n"
		"                        every other registry is HTTPS with its certificate\n"
		"                        verified)\n"
		"  --secrets-key-file PATH  the key secrets are encrypted with in the store: 32\n"
		"                        random bytes in a file owned by root, mode 0600; give\n"
		"                        every node of a cluster the same file (default:\n"
		"                        DATADIR/secrets.key, made on the first start)\n"
		"  --uplink IFNAME       balance published ports on this interface (repeatable;\n"
		"                        default: every interface but lo and shoald's own)\n"
		"  --xdp                 also run the published-port ingress path as native XDP\n"
		"                        on the uplinks whose driver has it (tc stays; opt-in:\n"
		"                        attaching XDP resets the link on some NIC drivers)\n"
		"  --maglev-size N       Maglev table entries per published port or VIP: a prime,\n"
		"                        at least 100 x the backends of any one service\n"
		"                        (default 16381; a node keeps the size its maps were\n"
		"                        pinned with until shoald --teardown)\n"
		"  --lb-flows N          flow table entries of the load balancer (default 65536)\n"
		"  --check               probe the kernel's data-plane features, print them and\n"
		"                        exit (non-zero when a required one is missing)\n"
		"  --teardown            remove what an agent with these roots left on the node\n"
		"                        (tc and socket hooks, pinned maps, the bridge and its\n"
		"                        nftables table, mounted network namespaces, the cgroup\n"
		"                        parent) and exit, loading no program; run it with no\n"
		"                        agent running\n"
		"  --version             print the version\n"
		"  -h, --help            this help\n");
}

/* The store flags together: what etcd needs, and nothing given for a backend
 * that does not use it. */
static int config_check_store(struct agent_config *cfg)
{
	bool etcd = strcmp(cfg->store_backend, "etcd") == 0;
	if (!etcd && strcmp(cfg->store_backend, "sqlite") != 0) {
		fprintf(stderr, "shoald: --store %s: expected sqlite or etcd\n",
			cfg->store_backend);
		return -EINVAL;
	}
	const char *etcd_only = cfg->store_endpoints	   ? "--store-endpoints"
				: cfg->store_cacert	   ? "--store-cacert"
				: cfg->store_cert	   ? "--store-cert"
				: cfg->store_key	   ? "--store-key"
				: cfg->store_user	   ? "--store-user"
				: cfg->store_password_file ? "--store-password-file"
							   : NULL;
	if (!etcd) {
		if (etcd_only) {
			fprintf(stderr, "shoald: %s is for --store etcd\n", etcd_only);
			return -EINVAL;
		}
		return 0;
	}
	if (!cfg->store_endpoints) {
		fprintf(stderr, "shoald: --store etcd needs --store-endpoints\n");
		return -EINVAL;
	}
	if (!cfg->advertise_addr) {
		fprintf(stderr, "shoald: --store etcd needs --advertise-addr: the address the "
				"other nodes reach this one at\n");
		return -EINVAL;
	}
	if (!cfg->store_user != !cfg->store_password_file) {
		fprintf(stderr, "shoald: --store-user and --store-password-file go together\n");
		return -EINVAL;
	}
	if (cfg->store_password_file) {
		FILE *f = fopen(cfg->store_password_file, "re");
		char line[1024];
		if (!f || !fgets(line, sizeof(line), f)) {
			fprintf(stderr, "shoald: --store-password-file %s: %s\n",
				cfg->store_password_file, f ? "empty" : strerror(errno));
			if (f)
				fclose(f);
			return -EINVAL;
		}
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
		cfg->store_password = strdup(line);
		explicit_bzero(line, sizeof(line));
		if (!cfg->store_password)
			return -ENOMEM;
	}
	return 0;
}

static int parse_args(struct agent_config *cfg, int argc, char **argv)
{
	enum {
		O_DATA = 256,
		O_RUN,
		O_SOCK,
		O_CG,
		O_BPF,
		O_PREFIX,
		O_SUBNET,
		O_STORE,
		O_EP,
		O_LOG,
		O_LMS,
		O_LMF,
		O_THL,
		O_MAXCONN,
		O_CACERT,
		O_CERT,
		O_KEY,
		O_SUSER,
		O_SPASS,
		O_ADV,
		O_ROLE,
		O_JOIN,
		O_NLABEL,
		O_NTTL,
		O_LMT,
		O_MON,
		O_VER,
		O_UPLINK,
		O_TEARDOWN,
		O_CHECK,
		O_XDP,
		O_MAGLEV,
		O_FLOWS,
		O_INSECURE_REG,
		O_SECKEY
	};
	static const struct option opts[] = {
		{"data-dir", required_argument, NULL, O_DATA},
		{"run-dir", required_argument, NULL, O_RUN},
		{"socket", required_argument, NULL, O_SOCK},
		{"cgroup-parent", required_argument, NULL, O_CG},
		{"bpffs-dir", required_argument, NULL, O_BPF},
		{"device-prefix", required_argument, NULL, O_PREFIX},
		{"bridge-subnet", required_argument, NULL, O_SUBNET},
		{"store", required_argument, NULL, O_STORE},
		{"store-endpoints", required_argument, NULL, O_EP},
		{"log-level", required_argument, NULL, O_LOG},
		{"log-max-size", required_argument, NULL, O_LMS},
		{"log-max-files", required_argument, NULL, O_LMF},
		{"task-history-limit", required_argument, NULL, O_THL},
		{"max-connections", required_argument, NULL, O_MAXCONN},
		{"store-cacert", required_argument, NULL, O_CACERT},
		{"store-cert", required_argument, NULL, O_CERT},
		{"store-key", required_argument, NULL, O_KEY},
		{"store-user", required_argument, NULL, O_SUSER},
		{"store-password-file", required_argument, NULL, O_SPASS},
		{"advertise-addr", required_argument, NULL, O_ADV},
		{"role", required_argument, NULL, O_ROLE},
		{"join-token", required_argument, NULL, O_JOIN},
		{"node-label", required_argument, NULL, O_NLABEL},
		{"node-ttl", required_argument, NULL, O_NTTL},
		{"log-max-total", required_argument, NULL, O_LMT},
		{"monitor-path", required_argument, NULL, O_MON},
		{"version", no_argument, NULL, O_VER},
		{"uplink", required_argument, NULL, O_UPLINK},
		{"teardown", no_argument, NULL, O_TEARDOWN},
		{"check", no_argument, NULL, O_CHECK},
		{"xdp", no_argument, NULL, O_XDP},
		{"maglev-size", required_argument, NULL, O_MAGLEV},
		{"lb-flows", required_argument, NULL, O_FLOWS},
		{"insecure-registry", required_argument, NULL, O_INSECURE_REG},
		{"secrets-key-file", required_argument, NULL, O_SECKEY},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char **dst = NULL;
		switch (c) {
		case O_DATA:
			dst = &cfg->data_dir;
			break;
		case O_RUN:
			dst = &cfg->run_dir;
			break;
		case O_SOCK:
			dst = &cfg->socket_path;
			break;
		case O_CG:
			dst = &cfg->cgroup_parent;
			break;
		case O_BPF:
			dst = &cfg->bpffs_dir;
			break;
		case O_PREFIX:
			dst = &cfg->device_prefix;
			break;
		case O_SUBNET:
			dst = &cfg->bridge_subnet;
			break;
		case O_STORE:
			dst = &cfg->store_backend;
			break;
		case O_EP:
			dst = &cfg->store_endpoints;
			break;
		case O_CACERT:
			dst = &cfg->store_cacert;
			break;
		case O_CERT:
			dst = &cfg->store_cert;
			break;
		case O_KEY:
			dst = &cfg->store_key;
			break;
		case O_SUSER:
			dst = &cfg->store_user;
			break;
		case O_SPASS:
			dst = &cfg->store_password_file;
			break;
		case O_ADV: {
			struct in_addr ia;
			if (inet_pton(AF_INET, optarg, &ia) != 1 ||
			    ia.s_addr == htonl(INADDR_ANY) || (ntohl(ia.s_addr) >> 24) == 127) {
				fprintf(stderr,
					"shoald: --advertise-addr %s: expected this node's IPv4 address, "
					"reachable from the other nodes (not 0.0.0.0 or 127.x)\n",
					optarg);
				return -EINVAL;
			}
			dst = &cfg->advertise_addr;
			break;
		}
		case O_ROLE:
			if (strcmp(optarg, "manager") != 0 && strcmp(optarg, "worker") != 0) {
				fprintf(stderr, "shoald: --role %s: expected manager or worker\n",
					optarg);
				return -EINVAL;
			}
			dst = &cfg->role;
			cfg->role_given = true;
			break;
		case O_JOIN:
			if (!str_has_prefix(optarg, SWARM_TOKEN_PREFIX) || strlen(optarg) > 95) {
				fprintf(stderr,
					"shoald: --join-token: expected a token of the form "
					"%s..., as `docker swarm join-token` shows it\n",
					SWARM_TOKEN_PREFIX);
				return -EINVAL;
			}
			dst = &cfg->join_token;
			break;
		case O_NLABEL: {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || strlen(optarg) > 512) {
				fprintf(stderr, "shoald: --node-label %s: expected KEY=VALUE\n",
					optarg);
				return -EINVAL;
			}
			if (strv_push(&cfg->node_labels, optarg) < 0)
				return -ENOMEM;
			break;
		}
		case O_NTTL: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 2 || v > 60) {
				fprintf(stderr,
					"shoald: --node-ttl %s: expected 2 to 60 (seconds)\n",
					optarg);
				return -EINVAL;
			}
			cfg->node_ttl_s = (int)v;
			break;
		}
		case O_LOG:
			dst = &cfg->log_level;
			break;
		case O_MON:
			dst = &cfg->monitor_path;
			break;
		case O_LMS:
			if (parse_size(optarg, &cfg->log_max_size) < 0 ||
			    cfg->log_max_size < 4096) {
				fprintf(stderr,
					"shoald: --log-max-size %s: expected a size of at least 4k, like 10m\n",
					optarg);
				return -EINVAL;
			}
			break;
		case O_LMF: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 100) {
				fprintf(stderr, "shoald: --log-max-files %s: expected 1 to 100\n",
					optarg);
				return -EINVAL;
			}
			cfg->log_max_files = (int)v;
			break;
		}
		case O_THL: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 100) {
				fprintf(stderr,
					"shoald: --task-history-limit %s: expected 1 to 100\n",
					optarg);
				return -EINVAL;
			}
			cfg->task_history_limit = (int)v;
			break;
		}
		case O_MAXCONN: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 16 || v > 1000000) {
				fprintf(stderr,
					"shoald: --max-connections %s: expected 16 to 1000000\n",
					optarg);
				return -EINVAL;
			}
			cfg->max_connections = (int)v;
			break;
		}
		case O_LMT: {
			char *end;
			long pct = strtol(optarg, &end, 10);
			if (end != optarg && strcmp(end, "%") == 0) {
				if (pct < 1 || pct > 100) {
					fprintf(stderr,
						"shoald: --log-max-total %s: a share is 1%% to 100%%\n",
						optarg);
					return -EINVAL;
				}
				cfg->log_max_total = -pct;
			} else if (strcmp(optarg, "0") == 0) {
				cfg->log_max_total = INT64_MAX; /* no cap */
			} else if (parse_size(optarg, &cfg->log_max_total) < 0 ||
				   cfg->log_max_total < (1 << 20)) {
				fprintf(stderr,
					"shoald: --log-max-total %s: expected a size of at least 1m "
					"(like 2g), a share like 25%%, or 0 for no cap\n",
					optarg);
				return -EINVAL;
			}
			break;
		}
		case O_TEARDOWN:
			cfg->teardown = true;
			break;
		case O_CHECK:
			cfg->check = true;
			break;
		case O_XDP:
			cfg->xdp = true;
			break;
		case O_MAGLEV:
		case O_FLOWS: {
			/* the range here; lb_open() says what else is wrong (not a
			 * prime, or not what the pinned maps hold) */
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			bool mg = c == O_MAGLEV;
			if (*end || *optarg == '-' || v < (mg ? LB_MAGLEV_MIN : 1024) ||
			    v > (mg ? LB_MAGLEV_MAX : 16u << 20)) {
				fprintf(stderr, "shoald: --%s %s: expected %s from %u to %u\n",
					mg ? "maglev-size" : "lb-flows", optarg,
					mg ? "a prime" : "a count", mg ? LB_MAGLEV_MIN : 1024u,
					mg ? LB_MAGLEV_MAX : 16u << 20);
				return -EINVAL;
			}
			if (mg && !lb_maglev_size_valid((uint32_t)v)) {
				fprintf(stderr,
					"shoald: --maglev-size %s: not a prime (16381, 65521 and "
					"131071 are)\n",
					optarg);
				return -EINVAL;
			}
			if (mg)
				cfg->maglev_size = (uint32_t)v;
			else
				cfg->lb_flows = (uint32_t)v;
			break;
		}
		case O_UPLINK:
			if (!*optarg || strlen(optarg) >= 16) {
				fprintf(stderr, "shoald: --uplink %s: not an interface name\n",
					optarg);
				return -EINVAL;
			}
			if (strv_push(&cfg->uplinks, optarg) < 0)
				return -ENOMEM;
			break;
		case O_INSECURE_REG:
			if (!*optarg || strpbrk(optarg, "/@ ") || strlen(optarg) > 255) {
				fprintf(stderr,
					"shoald: --insecure-registry %s: expected HOST or HOST:PORT\n",
					optarg);
				return -EINVAL;
			}
			if (strv_push(&cfg->insecure_registries, optarg) < 0)
				return -ENOMEM;
			break;
		case O_SECKEY:
			dst = &cfg->secrets_key_file;
			break;
		case O_VER:
			printf("shoald %s\n", SHOAL_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (dst) {
			if (!*optarg) {
				fprintf(stderr, "shoald: --%s must not be empty\n",
					opts[c - O_DATA].name);
				return -EINVAL;
			}
			free(*dst);
			*dst = strdup(optarg);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shoald: unexpected argument %s\n", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
#define DEF(f, v)    \
	if (!cfg->f) \
	cfg->f = strdup(v)
	DEF(data_dir, "/var/lib/shoal");
	DEF(run_dir, "/run/shoal");
	DEF(cgroup_parent, "shoal");
	DEF(bpffs_dir, "/sys/fs/bpf/shoal");
	DEF(device_prefix, "shoal");
	DEF(bridge_subnet, "10.213.0.0/16");
	DEF(store_backend, "sqlite");
	DEF(role, "manager");
	DEF(log_level, "info");
#undef DEF
	if (!cfg->socket_path && asprintf(&cfg->socket_path, "%s/shoal.sock", cfg->run_dir) < 0)
		return -ENOMEM;
	if (!cfg->monitor_path) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -errno;
		exe[n] = '\0';
		if (asprintf(&cfg->monitor_path, "%s/shoal-monitor", dirname(exe)) < 0)
			return -ENOMEM;
	}
	if (strlen(cfg->device_prefix) > 8) {
		fprintf(stderr, "shoald: --device-prefix %s is longer than 8 characters\n",
			cfg->device_prefix);
		return -EINVAL;
	}
	if (!cfg->log_max_size)
		cfg->log_max_size = 10 << 20;
	if (!cfg->log_max_files)
		cfg->log_max_files = 3;
	if (!cfg->task_history_limit)
		cfg->task_history_limit = 5;
	if (!cfg->log_max_total)
		cfg->log_max_total = -25;
	if (!cfg->node_ttl_s)
		cfg->node_ttl_s = 5;
	return config_check_store(cfg);
}

static void config_free(struct agent_config *cfg)
{
	free(cfg->store_cacert);
	free(cfg->store_cert);
	free(cfg->store_key);
	free(cfg->store_user);
	free(cfg->store_password_file);
	if (cfg->store_password) {
		explicit_bzero(cfg->store_password, strlen(cfg->store_password));
		free(cfg->store_password);
	}
	free(cfg->advertise_addr);
	free(cfg->role);
	free(cfg->join_token);
	strv_free(cfg->node_labels);
	free(cfg->data_dir);
	free(cfg->run_dir);
	free(cfg->socket_path);
	free(cfg->cgroup_parent);
	free(cfg->bpffs_dir);
	free(cfg->device_prefix);
	free(cfg->bridge_subnet);
	free(cfg->store_backend);
	free(cfg->store_endpoints);
	free(cfg->monitor_path);
	free(cfg->log_level);
	strv_free(cfg->uplinks);
	strv_free(cfg->insecure_registries);
	free(cfg->secrets_key_file);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;
	log_info("shoald: signal %d, shutting down (containers keep running)", (int)sig);
	event_base_loopbreak(a->base);
}

/* libevent's own messages (evdns's among them) in the agent's log, not bare on
 * stderr. evdns reports a nameserver going down ("Nameserver 10.0.0.2:53 has
 * failed: ...", "All nameservers have failed") at EVENT_LOG_MSG, its level for
 * news; for the agent that is a warning: names stop resolving. */
static void libevent_log_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		if (strstr(msg, " failed"))
			log_warn("libevent: %s", msg);
		else
			log_info("libevent: %s", msg);
		break;
	case EVENT_LOG_WARN:
		log_warn("libevent: %s", msg);
		break;
	default:
		log_error("libevent: %s", msg);
		break;
	}
}

/* bpffs is not mounted at boot on these machines; pins need it. */
static void ensure_bpffs(struct agent *a)
{
	if (!str_has_prefix(a->cfg.bpffs_dir, "/sys/fs/bpf"))
		return;
	struct statfs sfs;
	if (statfs("/sys/fs/bpf", &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC)
		goto mkdir;
	mkdir("/sys/fs/bpf", 0700);
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0) {
		log_warn("mounting bpffs at /sys/fs/bpf: %s", strerror(errno));
		return;
	}
mkdir:
	if (mkdir_p(a->cfg.bpffs_dir, 0700) < 0)
		log_warn("creating %s: %s", a->cfg.bpffs_dir, strerror(errno));
}

static int node_identity(struct agent *a, struct shoal_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/node-id", a->cfg.data_dir);
	_cleanup_free_ char *s = NULL;
	if (read_file(path, 128, &s, NULL) == 0 && strlen(s) >= 64) {
		snprintf(a->node_id, sizeof(a->node_id), "%.64s", s);
	} else {
		int r = random_hex_id(a->node_id);
		if (r < 0 || (r = write_file_atomic(path, a->node_id, 64, 0600)) < 0)
			return shoal_err_errno(err, -r, "writing %s", path);
	}
	if (gethostname(a->hostname, sizeof(a->hostname)) < 0)
		snprintf(a->hostname, sizeof(a->hostname), "localhost");
	return 0;
}

static int agent_init(struct agent *a, int *lock_fd, struct shoal_err *err)
{
	char path[4096];
	int r;
	const char *dirs[] = {a->cfg.data_dir, a->cfg.run_dir};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if ((r = mkdir_p(dirs[i], 0711)) < 0)
			return shoal_err_errno(err, -r, "creating %s", dirs[i]);
	const char *subs[][2] = {{a->cfg.data_dir, "containers"},
				 {a->cfg.data_dir, "seccomp"},
				 {a->cfg.run_dir, "containers"},
				 {a->cfg.run_dir, "netns"}};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		snprintf(path, sizeof(path), "%s/%s", subs[i][0], subs[i][1]);
		if ((r = mkdir_p(path, 0700)) < 0)
			return shoal_err_errno(err, -r, "creating %s", path);
	}
	snprintf(path, sizeof(path), "%s/shoald.lock", a->cfg.data_dir);
	*lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*lock_fd < 0)
		return shoal_err_errno(err, errno, "opening %s", path);
	if (flock(*lock_fd, LOCK_EX | LOCK_NB) < 0)
		return shoal_err_set(
			err, EBUSY,
			"another shoald is using %s; give each agent its own --data-dir",
			a->cfg.data_dir);
	snprintf(path, sizeof(path), "%s/ballast", a->cfg.data_dir);
	logs_ballast_check(a, path); /* before the first write of this start */
	if ((r = node_identity(a, err)) < 0)
		return r;
	/* before anything is made on the node: a key that cannot be used stops here */
	if ((r = secrets_init(a, err)) < 0)
		return r;
	ensure_bpffs(a);

	snprintf(path, sizeof(path), "%s/state.db", a->cfg.data_dir);
	struct store_options so = {
		.backend = a->cfg.store_backend,
		.path = path,
		.endpoints = a->cfg.store_endpoints,
		.base = a->base,
		.cacert = a->cfg.store_cacert,
		.cert = a->cfg.store_cert,
		.key = a->cfg.store_key,
		.username = a->cfg.store_user,
		.password = a->cfg.store_password,
	};
	if ((r = store_open(&so, &a->store, err)) < 0)
		return shoal_err_wrap(err, "opening the %s store", a->cfg.store_backend);
	snprintf(path, sizeof(path), "%s/images", a->cfg.data_dir);
	if ((r = image_store_open(path, &a->images, err)) < 0)
		return shoal_err_wrap(err, "opening the image store");
	if ((r = rt_cgroup_parent_prepare(a->cfg.cgroup_parent, a->cgroup_v2, sizeof(a->cgroup_v2),
					  err)) < 0)
		return shoal_err_wrap(err, "preparing cgroup parent %s", a->cfg.cgroup_parent);
	snprintf(a->seccomp_default, sizeof(a->seccomp_default), "%s/seccomp/default.bpf",
		 a->cfg.data_dir);
	if ((r = rt_seccomp_compile(a->seccomp_default, err)) < 0) {
		/* A full data disk must not keep the agent from serving (and stopping
		 * what filled it): the profile is rebuilt at every start anyway.
		 * (libseccomp reports a failed write as ECANCELED, not ENOSPC.) */
		log_warn("%s; the profile goes to the run dir", err->msg);
		snprintf(a->seccomp_default, sizeof(a->seccomp_default), "%s/seccomp-default.bpf",
			 a->cfg.run_dir);
		*err = (struct shoal_err){0};
		r = rt_seccomp_compile(a->seccomp_default, err);
	}
	if (r < 0)
		return shoal_err_wrap(err, "compiling the default seccomp profile");
	if (access(a->cfg.monitor_path, X_OK) < 0)
		return shoal_err_errno(err, errno, "monitor binary %s", a->cfg.monitor_path);
	if ((r = worker_new(a->base, &a->worker)) < 0)
		return shoal_err_errno(err, -r, "starting the worker thread");
	volumes_init(a);
	struct shoal_err lerr = {0};
	if (logs_usage_start(a, &lerr) < 0)
		log_warn("no node-wide cap on container logs (the free-space floor stays): %s",
			 lerr.msg);

	struct bridge_net_options bo = {
		.prefix = a->cfg.device_prefix,
		.subnet = a->cfg.bridge_subnet,
	};
	char nsdir[4096];
	snprintf(nsdir, sizeof(nsdir), "%s/netns", a->cfg.run_dir);
	bo.netns_dir = nsdir;
	if (bridge_net_setup(&bo, &a->bridge, &a->bridge_err) < 0)
		log_warn(
			"bridge network unavailable (containers can still use --network none or host): %s",
			a->bridge_err.msg);
	if (a->bridge) {
		/* service discovery on the bridge gateway */
		struct in_addr net;
		uint8_t plen;
		if (ipam_parse_cidr(a->cfg.bridge_subnet, &net, &plen, NULL) == 0) {
			struct in_addr gw = {.s_addr = htonl(ntohl(net.s_addr) + 1)};
			int dr = dns_start(a, gw);
			if (dr < 0)
				log_warn("service discovery unavailable: DNS on %s:53: %s",
					 inet_ntoa(gw), strerror(-dr));
		}
	}
	struct shoal_err perr = {0};
	if (publish_init(a, &perr) < 0)
		log_warn("published ports unavailable: %s", perr.msg);
	policy_agent_init(a);
	if ((r = overlay_agent_init(a, err)) < 0)
		return shoal_err_wrap(err, "reading the overlay networks");
	if ((r = container_load_all(a, err)) < 0)
		return shoal_err_wrap(err, "loading containers");
	secrets_start(a);
	overlay_agent_start(a);
	if ((r = swarm_start(a, err)) < 0)
		return r;
	if ((r = membership_start(a, err)) < 0)
		return shoal_err_wrap(err, "joining the cluster");
	if ((r = manager_start(a, err)) < 0)
		return shoal_err_wrap(err, "starting the manager");
	if ((r = api_server_start(a, err)) < 0)
		return r;
	return 0;
}

/* --check: the data-plane features this kernel offers, as shoald would use
 * them with the same flags and SHOAL_LB_DISABLE. 1 when a required one is
 * missing. */
static int check(struct agent *a)
{
	struct lb_feature_status st[LB_FEAT_MAX];
	struct shoal_err err = {0};
	uint32_t disable = 0;
	int rc = 0;
	libbpf_set_print(NULL);
	if (lb_features_parse(getenv(LB_DISABLE_ENV), &disable, &err) < 0) {
		fprintf(stderr, "shoald: %s: %s\n", LB_DISABLE_ENV, err.msg);
		return 2;
	}
	lb_features_probe(disable, st);
	if (!a->cfg.xdp && st[LB_FEAT_XDP].state == LB_FEATURE_ON)
		st[LB_FEAT_XDP].state = LB_FEATURE_OFF;
	/* the socket hooks attach to the cgroup v2 tree the agent is in */
	if (st[LB_FEAT_SOCKET_LB].state == LB_FEATURE_ON && !a->cgroup_v2[0]) {
		st[LB_FEAT_SOCKET_LB].state = LB_FEATURE_UNAVAILABLE;
		snprintf(st[LB_FEAT_SOCKET_LB].reason, sizeof(st[LB_FEAT_SOCKET_LB].reason),
			 "no cgroup v2 hierarchy for cgroup parent %s", a->cfg.cgroup_parent);
	}
	json_t *features = publish_features_json(st);
	size_t i;
	json_t *f;
	printf("%-14s %-12s %-9s %s\n", "FEATURE", "STATE", "REQUIRED", "DETAIL");
	json_array_foreach(features, i, f)
	{
		const char *state = json_string_value(json_object_get(f, "State"));
		const char *reason = json_string_value(json_object_get(f, "Reason"));
		const char *fb = json_string_value(json_object_get(f, "Fallback"));
		bool req = json_is_true(json_object_get(f, "Required"));
		bool missing = strcmp(state, "unavailable") == 0;
		printf("%-14s %-12s %-9s %s", json_string_value(json_object_get(f, "Name")), state,
		       req ? "yes" : "no",
		       *reason ? reason : json_string_value(json_object_get(f, "Description")));
		if (missing && fb)
			printf("; instead: %s", fb);
		if (missing && req) {
			printf("; needs %s", json_string_value(json_object_get(f, "Provides")));
			rc = 1;
		}
		printf("\n");
	}
	json_decref(features);
	if (rc)
		fprintf(stderr, "shoald: a required data-plane feature is missing: published "
				"ports would be refused\n");
	return rc;
}

/* --teardown: the node-level objects an agent with these roots leaves behind
 * on purpose (so that traffic survives its restarts), removed for good.
 * Nothing is loaded: our programs are found by name on every interface and
 * on the cgroup, the pinned links and maps by path. */
static int teardown(struct agent *a)
{
	int rc = 0;
	struct shoal_err err = {0};
	char pins[4096];
	libbpf_set_print(NULL); /* interfaces without our hooks are expected */
	struct if_nameindex *ifs = if_nameindex();
	for (struct if_nameindex *it = ifs; it && it->if_index; it++)
		if (lb_detach(NULL, (int)it->if_index, &err) < 0)
			log_warn("shoald: %s", err.msg);
	if (ifs)
		if_freenameindex(ifs);
	if (a->cgroup_v2[0] && lb_sock_detach(NULL, a->cgroup_v2, &err) < 0)
		log_warn("shoald: %s", err.msg);
	snprintf(pins, sizeof(pins), "%s/node", a->cfg.bpffs_dir);
	if (lb_sock_node_detach(pins, &err) < 0)
		log_warn("shoald: %s", err.msg);
	if (overlay_agent_teardown(a, &err) < 0) {
		log_error("shoald: removing the overlay networks: %s", err.msg);
		rc = 1;
	}
	rm_rf(a->cfg.bpffs_dir);
	struct bridge_net_options bo = {
		.prefix = a->cfg.device_prefix,
		.subnet = a->cfg.bridge_subnet,
	};
	char nsdir[4096];
	snprintf(nsdir, sizeof(nsdir), "%s/netns", a->cfg.run_dir);
	bo.netns_dir = nsdir;
	if (bridge_net_teardown(&bo, &err) < 0) {
		log_error("shoald: removing the bridge network: %s", err.msg);
		rc = 1;
	}
	if (rt_cgroup_parent_remove(a->cfg.cgroup_parent, &err) < 0)
		log_warn("shoald: removing cgroup parent %s: %s (containers still running?)",
			 a->cfg.cgroup_parent, err.msg);
	log_info("shoald: node objects of prefix %s removed", a->cfg.device_prefix);
	return rc;
}

int main(int argc, char **argv)
{
	struct agent a = {0};
	struct shoal_err err = {0};
	if (parse_args(&a.cfg, argc, argv) < 0)
		return 2;
	enum log_level lvl;
	if (log_level_parse(a.cfg.log_level, &lvl) < 0) {
		fprintf(stderr, "shoald: --log-level %s: use error, warn, info or debug\n",
			a.cfg.log_level);
		return 2;
	}
	log_set_level(lvl);
	if (geteuid() != 0) {
		fprintf(stderr,
			"shoald: must run as root (it creates namespaces, cgroups and network devices)\n");
		return 1;
	}
	/* Inherited descriptors would leak into every monitor and keep, e.g., a
	 * caller's pipe open for as long as containers run. */
	close_range(3, ~0U, 0);
	srandom((unsigned)(now_ns() ^ getpid()));
	if (a.cfg.check) {
		enum rt_cgroup_layout layout = RT_CGROUP_V1;
		if (rt_cgroup_detect(&layout, NULL) == 0 && layout != RT_CGROUP_V1)
			snprintf(a.cgroup_v2, sizeof(a.cgroup_v2), "%s", "v2");
		int crc = check(&a);
		config_free(&a.cfg);
		return crc;
	}
	if (a.cfg.teardown) {
		rt_cgroup_parent_prepare(a.cfg.cgroup_parent, a.cgroup_v2, sizeof(a.cgroup_v2),
					 NULL);
		int trc = teardown(&a);
		config_free(&a.cfg);
		return trc;
	}
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	event_set_log_callback(libevent_log_cb);
	a.base = event_base_new();
	a.started_ns = now_ns();
	_cleanup_close_ int lock_fd = -EBADF;
	int rc = 0;
	if (!a.base) {
		log_error("shoald: cannot create the event loop");
		rc = 1;
		goto out;
	}
	if (agent_init(&a, &lock_fd, &err) < 0) {
		log_error("shoald: %s", err.msg);
		rc = 1;
		goto out;
	}
	a.sig_term = evsignal_new(a.base, SIGTERM, signal_cb, &a);
	a.sig_int = evsignal_new(a.base, SIGINT, signal_cb, &a);
	event_add(a.sig_term, NULL);
	event_add(a.sig_int, NULL);
	log_info("shoald %s: node %.12s, listening on %s, data %s, %u container(s)", SHOAL_VERSION,
		 a.node_id, a.cfg.socket_path, a.cfg.data_dir, a.n_containers);
	event_base_dispatch(a.base);
out:
	policy_agent_stop(&a);
	events_shutdown();
	api_server_stop(&a);
	manager_stop(&a);
	overlay_agent_stop(&a);
	membership_stop(&a);
	dns_stop(&a);
	publish_free(&a);
	if (a.sig_term)
		event_free(a.sig_term);
	if (a.sig_int)
		event_free(a.sig_int);
	worker_free(a.worker);
	logs_usage_stop(&a);
	exec_free_all(&a);
	container_free_all(&a);
	bridge_net_free(a.bridge);
	image_store_free(a.images);
	secrets_free(&a);
	store_close(a.store);
	if (a.base)
		event_base_free(a.base);
	config_free(&a.cfg);
	return rc;
}
