#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal run` end to end through shoald: the container's process, its limits,
# its isolation, its logs and its lifecycle.
. "$(dirname "$0")/lib.sh"
node_start

log "exit codes"
shoal run --rm --network none busybox true; expect_eq "true exits 0" 0 $?
shoal run --rm --network none busybox false; expect_eq "false exits 1" 1 $?
shoal run --rm --network none busybox sh -c 'exit 42'; expect_eq "exit 42" 42 $?
out=$(shoal run --rm --network none busybox nope-not-here 2>&1); rc=$?
expect_eq "missing executable exits 127" 127 $rc
expect_contains "missing executable message" 'executable file not found' "$out"

log "env, workdir, user, hostname"
out=$(shoal run --rm --network none -e FOO=bar -e PATH=/bin busybox sh -c 'echo $FOO:$PATH')
expect_eq "env" "bar:/bin" "$out"
out=$(shoal run --rm --network none -w /tmp/newdir busybox pwd)
expect_eq "workdir (created)" "/tmp/newdir" "$out"
out=$(shoal run --rm --network none -u 1000:1000 busybox id -u)
expect_eq "user by id" "1000" "$out"
out=$(shoal run --rm --network none -u app busybox sh -c 'id -un; echo $HOME')
expect_eq "user by name + HOME" "app
/home/app" "$out"
out=$(shoal run --rm --network none --hostname box1 busybox hostname)
expect_eq "hostname" "box1" "$out"
out=$(shoal run --rm --network none busybox sh -c 'echo $$')
expect_eq "pid 1 in its own pid namespace" "1" "$out"
out=$(shoal run --rm --network none --hostname box2 busybox sh -c 'cat /etc/hostname; grep box2 /etc/hosts')
expect_eq "hostname and hosts written for the first start" "box2
127.0.1.1	box2" "$out"
must_get id "creating a container" shoal create --network none busybox \
	sh -c 'grep -c scribble /etc/hosts; echo scribble >> /etc/hosts'
shoal start "$id" >/dev/null; shoal wait "$id" >/dev/null
shoal start "$id" >/dev/null; shoal wait "$id" >/dev/null
out=$(shoal logs "$id" | tr '\n' ' ')
expect_eq "every start writes /etc/hosts afresh" "0 0 " "$out"
# a start right after the exit races the last run's monitor, which is still
# removing its run files: each of these must start
fails=0
for _ in $(seq 1 20); do
	shoal start "$id" >/dev/null 2>&1 || fails=$((fails + 1))
	shoal wait "$id" >/dev/null 2>&1
done
expect_eq "20 starts right after each exit all start" 0 "$fails"
shoal rm -f "$id" >/dev/null

log "stdout and stderr, stdin"
out=$(shoal run --rm --network none busybox sh -c 'echo out; echo err >&2' 2>/dev/null)
expect_eq "stdout only on stdout" "out" "$out"
out=$(shoal run --rm --network none busybox sh -c 'echo out; echo err >&2' 2>&1 >/dev/null)
expect_eq "stderr only on stderr" "err" "$out"
out=$(echo "piped in" | shoal run --rm -i --network none busybox cat)
expect_eq "stdin with -i" "piped in" "$out"

log "tty"
out=$(shoal run --rm -t --network none busybox tty | tr -d '\r')
expect_eq "the terminal is the container's own /dev/pts/0" "/dev/pts/0" "$out"
out=$(shoal run --rm -t --network none busybox sh -c 'test -t 0 && test -t 1 && echo tty' | tr -d '\r')
expect_eq "stdin and stdout are the terminal" "tty" "$out"
must_get t "starting a container" shoal run -d --network none busybox sleep 100
out=$(shoal exec -t "$t" tty | tr -d '\r')
expect_eq "an exec's terminal is the container's own too" "/dev/pts/0" "$out"
shoal rm -f "$t" >/dev/null

log "read-only rootfs"
shoal run --rm --network none --read-only busybox touch /x 2>/dev/null
expect_eq "touch on read-only rootfs fails" 1 $?
shoal run --rm --network none busybox touch /x
expect_eq "touch on writable rootfs works" 0 $?
out=$(shoal run --rm --network none --read-only busybox sh -c 'echo ok > /tmp/f 2>/dev/null || echo denied')
expect_eq "read-only covers /tmp of the image" "denied" "$out"

log "capabilities"
shoal run --rm --network none busybox sh -c 'touch /f && chown 1000 /f'
expect_eq "chown allowed by default" 0 $?
shoal run --rm --network none --cap-drop CHOWN busybox sh -c 'touch /f && chown 1000 /f' 2>/dev/null
expect_eq "chown denied after --cap-drop CHOWN" 1 $?
shoal run --rm --network none busybox sh -c 'touch /f && mknod /dev/x c 1 3' 2>/dev/null
expect_eq "mknod allowed by default (CAP_MKNOD)" 0 $?
shoal run --rm --network none --cap-drop MKNOD busybox mknod /x c 1 3 2>/dev/null
expect_eq "mknod denied after --cap-drop MKNOD" 1 $?
shoal run --rm --network none busybox ip link set lo down 2>/dev/null
[ $? -ne 0 ] && ok "ip link set denied without NET_ADMIN" || fail "ip link set allowed without NET_ADMIN"
shoal run --rm --network none --cap-add NET_ADMIN busybox ip link set lo down
expect_eq "ip link set allowed with --cap-add NET_ADMIN" 0 $?

log "seccomp"
out=$(shoal run --rm --network none busybox unshare -U true 2>&1; echo rc=$?)
expect_not_contains "unshare(CLONE_NEWUSER) blocked by the default profile" "rc=0" "$out"
out=$(shoal run --rm --network none --security-opt seccomp=unconfined --cap-add SYS_ADMIN busybox unshare -U true 2>&1; echo rc=$?)
expect_contains "unshare allowed when unconfined" "rc=0" "$out"

log "limits"
shoal run --rm --network none --memory 16m busybox sh -c 'x=$(head -c 64000000 /dev/zero | tr "\0" a); echo ${#x}' >/dev/null 2>&1
expect_eq "memory limit exceeded -> 137" 137 $?
must_get id "starting a container with --memory 16m" shoal run -d --network none --memory 16m \
	busybox sh -c 'x=$(head -c 64000000 /dev/zero | tr "\0" a)'
shoal wait "$id" >/dev/null
expect_eq "OOMKilled reported" "true" "$(shoal inspect -f '{{.State.OOMKilled}}' "$id")"
expect_eq "ExitCode 137 in inspect" "137" "$(shoal inspect -f '{{.State.ExitCode}}' "$id")"
shoal rm "$id" >/dev/null
out=$(shoal run --rm --network none --pids-limit 20 busybox sh -c 'for i in $(seq 1 60); do sleep 5 & done 2>/dev/null; sleep 0.2; ls /proc | grep -c "^[0-9]"')
[ "${out:-0}" -le 21 ] && ok "pids limit caps processes ($out)" || fail "pids limit: $out processes"
must_get id "starting a container with --cpus 0.5" shoal run -d --network none --cpus 0.5 \
	busybox sleep 30
cgq=$(cat /sys/fs/cgroup/cpu/${CG_PARENT#/}/$id/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/${CG_PARENT#/}/$id/cpu.max 2>/dev/null)
expect_contains "cpu quota visible in the cgroup" "50000" "$cgq"
shoal rm -f "$id" >/dev/null

log "detached, logs, exec, stop, kill, wait, inspect"
must_get id "starting container web1" shoal run -d --name web1 --network none busybox \
	sh -c 'trap "" TERM; i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done'
expect_eq "-d prints a 64-hex id" 64 ${#id}
sleep 0.5
out=$(shoal logs web1 | head -n 2)
expect_eq "logs" "line0
line1" "$out"
out=$(shoal logs --tail 1 web1 | wc -l)
expect_eq "logs --tail 1" 1 "$out"
out=$(timeout 10 "$SHOAL_BIN" logs -f web1 | head -n 30 | tail -n 1)
expect_contains "logs -f keeps following" "line" "$out"
out=$(shoal exec web1 sh -c 'echo $$; hostname')
expect_contains "exec runs inside (its own pid)" "$(echo "$id" | cut -c1-12)" "$out"
shoal exec web1 sh -c 'exit 3'; expect_eq "exec exit code" 3 $?
out=$(echo hi | shoal exec -i web1 cat)
expect_eq "exec -i stdin" "hi" "$out"
expect_eq "ps shows it" 1 "$(shoal ps -q | grep -c "${id:0:12}")"
start=$(date +%s)
shoal stop -t 1 web1 >/dev/null
expect_eq "stop of a TERM-ignoring process ends in KILL" "137" "$(shoal inspect -f '{{.State.ExitCode}}' web1)"
expect_eq "stopped state" "exited" "$(shoal inspect -f '{{.State.Status}}' web1)"
expect_eq "ps without -a hides it" 0 "$(shoal ps -q | grep -c "${id:0:12}")"
expect_eq "ps -a shows it" 1 "$(shoal ps -aq | grep -c "${id:0:12}")"
shoal rm web1 >/dev/null; expect_eq "rm" 0 $?
shoal inspect web1 >/dev/null 2>&1; expect_eq "gone after rm" 1 $?
[ -d "$T/data/containers/$id" ] && fail "bundle left behind" || ok "bundle removed"

must_get id "starting a container to kill" shoal run -d --network none busybox sleep 60
shoal kill "$id" >/dev/null
expect_eq "wait after kill" "137" "$(shoal wait "$id")"
shoal rm "$id" >/dev/null
must_get id "starting a container to remove" shoal run -d --network none busybox sleep 60
shoal rm "$id" >/dev/null 2>&1; expect_eq "rm of a running container refused" 1 $?
shoal rm -f "$id" >/dev/null; expect_eq "rm -f of a running container" 0 $?

log "--rm removes"
shoal run --rm --name gone1 --network none busybox true
shoal inspect gone1 >/dev/null 2>&1; expect_eq "--rm container is gone" 1 $?

log "networks"
out=$(shoal run --rm --network none busybox sh -c 'ls /sys/class/net | tr "\n" " "')
expect_eq "--network none has only lo" "lo " "$out"
out=$(shoal run --rm --network none busybox sh -c 'ip -o link show lo | grep -c "[<,]UP[,>]"')
expect_eq "--network none has lo up" "1" "$out"
must_get n1 "starting a container" shoal run -d --network none busybox sleep 100
must_get n2 "starting another container" shoal run -d --network none busybox sleep 100
ns1=$(shoal exec "$n1" readlink /proc/1/ns/net); ns2=$(shoal exec "$n2" readlink /proc/1/ns/net)
[ -n "$ns1" ] && [ "$ns1" != "$ns2" ] && ok "each --network none container has its own netns" ||
	fail "--network none containers share a netns: [$ns1] [$ns2]"
shoal rm -f "$n1" "$n2" >/dev/null
out=$(shoal run --rm busybox sh -c 'ip -4 -o addr show eth0 | awk "{print \$4}"')
expect_contains "bridge network gives eth0 an address" "10.213." "$out"
out=$(shoal run --rm busybox sh -c 'ping -c1 -W2 10.213.0.1 >/dev/null && echo reach')
expect_eq "bridge gateway reachable" "reach" "$out"
must_get a "starting a web server on the bridge" shoal run -d busybox httpd -f -p 8080 -h /var/www
must_get aip "its address" shoal inspect -f '{{.NetworkSettings.IPAddress}}' "$a"
out=$(shoal run --rm busybox sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\r\n\r\n' | nc $aip 8080 && break; sleep 0.2; done" 2>/dev/null | tail -n 1)
expect_eq "container to container over the bridge" "hello from shoal" "$out"
shoal rm -f "$a" >/dev/null
out=$(shoal run --rm --network host busybox sh -c 'ls /sys/class/net | grep -c .')
[ "$out" -ge 2 ] && ok "--network host sees the node's links" || fail "--network host: $out links"

log "mount points layer"
# the image's mount targets the runtime needs are made once, beside its layers,
# and the directories they sit in keep the image's own attributes
img="$T/data/images"
# the top layer's directory, named by its chain: the last of RootFS.Layers
top=$(api GET /images/busybox/json | grep -o '"Layers": *\[[^]]*\]' | grep -o '[^"/]*" *\]$' | tr -d '" ]')
[ -n "$top" ] && [ -d "$img/init/$top" ] && ok "mount points layer made for the image" || fail "no $img/init/$top"
want=$(stat -c '%a %u %g %Y' "$img/layers/$top/etc")
expect_eq "/etc keeps the image's mode, owner and time" "$want" \
	"$(shoal run --rm --network none busybox stat -c '%a %u %g %Y' /etc)"
out=$(shoal run --rm --network none busybox sh -c 'ls /etc | tr "\n" " "')
expect_contains "/etc still has the image's files" "passwd" "$out"
must_get m "starting a container" shoal run -d --network none busybox sleep 100
shoal exec "$m" test -f /etc/hosts && ok "/etc/hosts is there" || fail "no /etc/hosts"
out=$(ls -A "$T/data/containers/$m/upper")
expect_eq "nothing made in the container's upper layer at start" "" "$out"
shoal rm -f "$m" >/dev/null

log "a start the agent did not get to record"
# kill -9 between the start and its record: the record still says created
must_get u "starting a container" shoal run -d --network none busybox sleep 300
must_get upid "its pid" shoal inspect -f '{{.State.Pid}}' "$u"
agent_kill9
sed -i -e 's/"Status":"running"/"Status":"created"/' -e 's/"Pid":[0-9]*/"Pid":0/' \
	"$T/data/containers/$u/container.json"
agent_start
expect_eq "re-adopted as running" "running $upid" "$(shoal inspect -f '{{.State.Status}} {{.State.Pid}}' "$u")"
shoal rm -f "$u" >/dev/null

log "shoal bench start: the API path and what a user types, side by side"
# shoal runs the benchmarks from shoal-bench beside it, with the same flags
must_get out "shoal bench start" shoal bench start --runs 3 --containers 0 --no-runc --json
rows=$(printf '%s' "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin)
print(" ".join("%s=%s" % (k, r[k]["runs"]) for k in ("network_none","shoal_cli","docker_cli") if k in r))')
want="network_none=3 shoal_cli=3"
command -v docker >/dev/null && want="$want docker_cli=3"
expect_eq "the API, shoal run --rm and docker run --rm rows" "$want" "$rows"
mkdir -p "$T/lone" && cp "$SHOAL_BIN" "$T/lone/shoal"
out=$("$T/lone/shoal" bench start --help 2>&1)
expect_contains "shoal without shoal-bench beside it says so" "$T/lone/shoal-bench: No such file" "$out"

log "cleanup leaves nothing"
left=$(shoal ps -aq | wc -l); [ "$left" -eq 0 ] || shoal ps -a
expect_eq "no containers left" 0 "$left"
expect_eq "no container cgroups left" "" "$(cg_pids)"
eventually 10 no_veths && ok "no veths left" || fail "veths left: $(in_node ip -o link show | grep -c "${TAG}v")"
shoal rmi busybox >/dev/null
expect_eq "the mount points layer goes with the image" "" "$(ls -A "$T/data/images/init" 2>/dev/null)"
finish
