/* SPDX-License-Identifier: Apache-2.0 */
/* A throwaway single-member etcd for tests: 127.0.0.1 on free ports, its data in a temp
 * dir, optionally https with a CA, server and client certificates made with openssl. The
 * process is killed by pid and the dir removed by etcd_fixture_destroy(), and also at exit
 * or on a fatal signal when a test fails half way; the member dies with the test process. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct etcd_fixture {
	char dir[128];
	char url[64]; /* the client URL */
	char peer_url[64];
	bool tls;	  /* https, and client certificates required */
	char cacert[192]; /* with tls: the CA, and a client certificate and key it signed */
	char cert[192];
	char key[192];
	pid_t pid; /* 0 when not running */
};

/* Creates the dir (and certificates), starts etcd and waits until it serves. 0 or -errno,
 * with a message on stderr. */
int etcd_fixture_start(struct etcd_fixture *f, bool tls);
/* SIGKILL, as a crash or a pulled plug would. */
void etcd_fixture_kill(struct etcd_fixture *f);
/* Starts the member again on the same ports and data dir. */
int etcd_fixture_restart(struct etcd_fixture *f);
/* Kills the member and removes its dir. */
void etcd_fixture_destroy(struct etcd_fixture *f);
/* Runs etcdctl against the member with the given arguments (a NULL-terminated list). */
int etcd_fixture_ctl(struct etcd_fixture *f, const char *const *args);
/* A port on 127.0.0.1 nothing listens on, for a dead endpoint. */
int etcd_fixture_free_port(void);
