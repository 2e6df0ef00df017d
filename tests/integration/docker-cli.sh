#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real docker CLI against shoald (DOCKER_HOST=unix://...): every command is
# bounded by a timeout, so a hang fails with the command named. Covered so far:
# version, info, images, load, ps, run (foreground with its exit code, -d, -i
# with stdin closed before the start, --rm), exec, logs, stop, start -a, rm;
# and the HTTP framing the CLI relies on (HEAD without a body, keep-alive and
# pipelined requests answered in order, a wait whose head comes at once).
. "$(dirname "$0")/lib.sh"

DOCKER=${DOCKER:-$(command -v docker)}
[ -n "$DOCKER" ] || { echo "SKIP: no docker CLI on this machine"; exit $SKIP; }
[ -x "$DOCKER" ] || { echo "SKIP: no docker CLI at $DOCKER (scripts/deps.sh installs it)"; exit $SKIP; }
log "docker client $("$DOCKER" version --format '{{.Client.Version}} (API {{.Client.APIVersion}})' 2>/dev/null)"
node_start
export DOCKER_HOST="unix://$SOCK"
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
export DOCKER_CONFIG="$T/docker-config"

# dk SECONDS ARGS...: docker with a deadline; a hang is a failure naming the command
dk() {
	local secs=$1
	shift
	timeout -k 2 "$secs" "$DOCKER" "$@"
	local rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		fail "docker $* hung (no answer in ${secs} s)"
	fi
	return $rc
}

log "the HTTP framing"
out=$(python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(5)
# HEAD, then GET, pipelined on one keep-alive connection
s.sendall(b"HEAD /_ping HTTP/1.1\r\nHost: d\r\n\r\nGET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
data = b""
while data.count(b"HTTP/1.1") < 2 or not data.endswith(b"OK"):
    b = s.recv(4096)
    if not b:
        break
    data += b
first, _, rest = data.partition(b"\r\n\r\n")
print("first:", first.split(b"\r\n")[0].decode())
print("rest starts:", rest[:15].decode())
print("rest ends:", rest[-2:].decode())
PY
)
expect_contains "HEAD answered" "first: HTTP/1.1 200 OK" "$out"
expect_contains "HEAD has no body: the next answer follows its head at once" "rest starts: HTTP/1.1 200 OK" "$out"
expect_contains "the pipelined GET has its body" "rest ends: OK" "$out"

log "version, info, images, load"
out=$(dk 10 version 2>&1)
expect_eq "docker version exits 0" 0 $?
expect_contains "the server is shoal" "shoal" "$out"
expect_not_contains "no stray bytes after an answer" "Unsolicited response" "$out"
out=$(dk 10 info --format '{{.ServerVersion}} {{.OperatingSystem}}' 2>&1)
expect_eq "docker info exits 0" 0 $?
must "docker load" dk 30 load -i "$TEST_IMAGE"
out=$(dk 10 images --format '{{.Repository}}:{{.Tag}}' 2>&1)
expect_contains "docker images lists the loaded image" "busybox:latest" "$out"

log "run in the foreground, detached, with stdin"
out=$(dk 20 run --rm busybox echo hello 2>&1)
expect_eq "docker run prints the output" "hello" "$out"
dk 20 run --rm busybox sh -c 'exit 7'
expect_eq "docker run exits with the container's code" 7 $?
out=$(printf 'line one\nline two\n' | dk 20 run --rm -i busybox wc -l 2>&1)
expect_eq "docker run -i: stdin reaches the process and its end closes it" "2" "$(echo $out)"
must_get id "docker run -d" dk 20 run -d --name d1 busybox sh -c 'echo started; sleep 1000'
out=$(dk 10 ps --format '{{.Names}} {{.Status}}' 2>&1)
expect_contains "docker ps shows it running" "d1 Up" "$out"
out=$(dk 10 exec d1 sh -c 'echo in-exec $((6*7))' 2>&1)
expect_eq "docker exec" "in-exec 42" "$out"
out=$(dk 10 logs d1 2>&1)
expect_eq "docker logs" "started" "$out"
must "docker stop" dk 20 stop -t 1 d1
out=$(dk 10 ps -a --filter name=d1 --format '{{.Names}}' 2>&1)
expect_contains "docker ps -a shows it stopped" "d1" "$out"
must "docker rm" dk 10 rm d1
must_get id "docker create" dk 10 create --name d2 busybox sh -c 'echo from-start-a; exit 3'
out=$(dk 20 start -a d2 2>&1)
rc=$?
expect_eq "docker start -a streams the output" "from-start-a" "$out"
expect_eq "docker start -a exits with the container's code" 3 "$rc"
must "docker rm -f" dk 10 rm -f d2

log "filters, limits, since: applied or refused, never ignored"
must_get ida "a first container" dk 10 run -d --name fa --label tier=edge busybox sleep 1000
must_get idb "a second" dk 10 run -d --name fb busybox sh -c 'echo early; sleep 2; echo late; sleep 1000'
dk 10 run --name fc busybox sh -c 'exit 4'
out=$(dk 10 ps --filter name=fa --format '{{.Names}}' 2>&1)
expect_eq "ps --filter name" "fa" "$out"
out=$(dk 10 ps --filter label=tier=edge --format '{{.Names}}' 2>&1)
expect_eq "ps --filter label" "fa" "$out"
out=$(dk 10 ps -a --filter status=exited --format '{{.Names}}' 2>&1)
expect_eq "ps --filter status=exited" "fc" "$out"
out=$(dk 10 ps -a --filter exited=4 --format '{{.Names}}' 2>&1)
expect_eq "ps --filter exited=4" "fc" "$out"
out=$(dk 10 ps -n 1 --format '{{.Names}}' 2>&1)
expect_eq "ps -n 1: the newest, stopped or not" "fc" "$out"
out=$(dk 10 ps --filter health=healthy 2>&1)
expect_contains "an unsupported filter is refused, naming it" "health is not supported" "$out"
out=$(dk 10 images --filter reference='busy*' --format '{{.Repository}}' 2>&1)
expect_eq "images --filter reference" "busybox" "$out"
out=$(dk 10 images --filter dangling=true -q 2>&1)
expect_eq "images --filter dangling=true" "" "$out"
wait_until 10 sh -c "$DOCKER logs fb 2>&1 | grep -q late"
out=$(dk 10 logs --since 1s fb 2>&1)
expect_not_contains "logs --since leaves out older lines" "early" "$out"
out=$(dk 10 logs --until 1s fb 2>&1)
expect_contains "logs --until keeps older lines" "early" "$out"
must "removing them" dk 10 rm -f fa fb fc

log "fields shoal does not do are refused, naming them"
out=$(dk 10 run --rm -v /tmp:/x:z busybox true 2>&1)
expect_contains "an SELinux relabel (-v ...:z) is refused" 'mode option "z" is not supported' "$out"
out=$(dk 10 service create -d --name withmount --mount type=volume,source=v,target=/v,volume-driver=nfs busybox true 2>&1)
expect_contains "a service's mount with another volume driver is refused, naming it" \
	"TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions.DriverConfig: only the local driver" "$out"
out=$(dk 10 run --restart sometimes --name rp busybox true 2>&1)
expect_contains "an unknown restart policy is refused" "unknown policy 'sometimes'" "$out"
out=$(dk 10 run --rm --dns 10.0.0.1 busybox true 2>&1)
expect_contains "--dns is refused" "HostConfig.Dns: not supported" "$out"
out=$(dk 10 run --rm --health-cmd true busybox true 2>&1)
expect_contains "a plain container's health check is refused" "Healthcheck: health checks run for service tasks only" "$out"
out=$(dk 10 create --stop-timeout 1 --name st busybox sleep 1000 2>&1)
must "starting it" dk 10 start st
t0=$(date +%s)
must "docker stop uses the container's StopTimeout" dk 20 stop st
t1=$(date +%s)
if [ $((t1 - t0)) -lt 5 ]; then ok "stopped within its 1 s StopTimeout ($((t1 - t0)) s)"; else fail "stop took $((t1 - t0)) s"; fi
must "removing it" dk 10 rm st
out=$(dk 10 ps -aq 2>&1)
expect_eq "nothing left" "" "$out"

finish
