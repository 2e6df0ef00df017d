#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: start shoald on the embedded store, load the bundled test image,
# run a container, and say what to try next. `make demo-stop` stops it.
set -euo pipefail
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
SHOALD="$BUILD/bin/shoald"
SHOAL="$BUILD/bin/shoal"
PIDFILE=/run/shoal/shoald.pid
CLIENT_NS=shoal-demo-client
LOG=/var/log/shoald.log

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: shoald needs root (namespaces, cgroups, network devices): run 'sudo make demo'" >&2
	exit 1
fi

if [ "${2:-}" = "stop" ]; then
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		"$SHOAL" service rm $("$SHOAL" service ls -q) >/dev/null 2>&1 || true
		for _ in $(seq 1 150); do
			[ -z "$("$SHOAL" ps -q 2>/dev/null)" ] && break
			sleep 0.1
		done
		"$SHOAL" rm -f $("$SHOAL" ps -aq) >/dev/null 2>&1 || true
		pid=$(cat "$PIDFILE")
		kill "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		rm -f "$PIDFILE"
		# the hooks, pinned maps, bridge and nftables table outlive the agent on purpose
		"$SHOALD" --teardown >/dev/null 2>&1 || true
		ip netns del "$CLIENT_NS" 2>/dev/null || true
		ip link del shdemo0 2>/dev/null || true
		echo "shoald stopped and its containers removed."
	else
		echo "shoald is not running (no live pid in $PIDFILE)."
	fi
	exit 0
fi

mkdir -p /run/shoal
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	echo "shoald is already running (pid $(cat "$PIDFILE"))."
else
	echo "Starting shoald (data in /var/lib/shoal, socket /run/shoal/shoal.sock, log $LOG)..."
	setsid "$SHOALD" >>"$LOG" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 100); do
		"$SHOAL" version >/dev/null 2>&1 && break
		kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$LOG"; exit 1; }
		sleep 0.05
	done
fi

echo
echo "\$ shoal image load -i $BUILD/images/busybox.tar"
"$SHOAL" image load -i "$BUILD/images/busybox.tar"
echo
echo "\$ shoal run --rm busybox sh -c 'echo hello from \$(hostname), pid \$\$, address \$(ip -4 -o addr show eth0 | awk \"{print \\\$4}\")'"
"$SHOAL" run --rm busybox sh -c 'echo hello from $(hostname), pid $$, address $(ip -4 -o addr show eth0 | awk "{print \$4}")'
echo
echo "\$ shoal run -d --name web busybox httpd -f -p 80 -h /var/www"
"$SHOAL" rm -f web >/dev/null 2>&1 || true
"$SHOAL" run -d --name web busybox httpd -f -p 80 -h /var/www
echo
echo "\$ shoal service create --name hello --replicas 3 -p 8080:80 busybox sh -c 'hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www'"
"$SHOAL" service rm hello >/dev/null 2>&1 && sleep 2 || true
"$SHOAL" service create --name hello --replicas 3 -p 8080:80 --stop-grace-period 1s \
	busybox sh -c 'hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www'
echo
echo "\$ shoal service ps hello"
"$SHOAL" service ps hello

# A client host of its own (a network namespace with a veth into this one) asks
# the published port; each answer names the replica that served it.
if ! ip netns list | grep -q "^$CLIENT_NS"; then
	ip netns add "$CLIENT_NS"
	ip link add shdemo0 type veth peer name shdemoc
	ip link set shdemoc netns "$CLIENT_NS"
	ip addr add 10.252.0.1/30 dev shdemo0
	ip link set shdemo0 up
	ip -n "$CLIENT_NS" addr add 10.252.0.2/30 dev shdemoc
	ip -n "$CLIENT_NS" link set shdemoc up
	ip -n "$CLIENT_NS" link set lo up
	sleep 2.5 # shoald picks the new uplink up on its next scan
fi
echo
echo "\$ # from a client namespace: requests to the published port 8080 until each replica answered"
seen=""
for i in $(seq 1 30); do
	who=$(ip netns exec "$CLIENT_NS" busybox sh -c \
		'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 10.252.0.1 8080' 2>/dev/null | tail -n 1)
	echo "answered by replica ${who:-(no answer)}"
	[ -n "$who" ] && [[ " $seen " != *" $who "* ]] && seen="$seen $who"
	[ "$(wc -w <<<"$seen")" -ge 3 ] && [ "$i" -ge 6 ] && break
done
echo "$i requests, answered by $(wc -w <<<"$seen") distinct replicas"
echo
echo "\$ shoal ps"
"$SHOAL" ps
cat <<EOT

shoald is running in the background. Try next (the CLI is $SHOAL):

  export PATH=$BUILD/bin:\$PATH
  shoal exec web sh -c 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc 127.0.0.1 80'   # ask the web server
  shoal run -it busybox sh                      # an interactive shell in a new container
  shoal run --rm --memory 16m busybox sh -c 'x=\$(head -c 64000000 /dev/zero | tr "\\0" a)'; echo \$?   # 137: OOM-killed
  shoal logs -f web                             # follow a container's log
  shoal service scale hello=5                   # more replicas, placed by the scheduler
  shoal lb ls                                   # the published port, its backends, counters
  shoal run --rm busybox nslookup hello         # service discovery: the service's virtual IP
  shoal service update --env-add V=2 hello      # a rolling update, one task at a time
  shoal service rollback hello                  # and back
  shoal inspect web                             # everything about it
  shoal bench start                             # container start latency, side by side with runc
  make demo-stop                                # stop shoald and remove the demo containers
EOT
