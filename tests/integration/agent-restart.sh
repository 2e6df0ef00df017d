#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Containers outlive shoald: kill -9 the agent with containers running, exiting
# and being created, restart it, and check it re-adopts every one of them.
. "$(dirname "$0")/lib.sh"
node_start

must_get long "starting container long" shoal run -d --name long --network none busybox \
	sh -c 'i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done'
must_get pid_before "long's pid" shoal inspect -f '{{.State.Pid}}' long
must_get bridged "starting container bridged" shoal run -d --name bridged busybox sleep 300
must_get ip_before "bridged's address" shoal inspect -f '{{.NetworkSettings.IPAddress}}' bridged
must "starting container shortlived" shoal run -d --name shortlived --network none busybox \
	sh -c 'sleep 1.5; exit 7'
must "creating container later" shoal create --name later --network none busybox echo started-later
# a start racing with the kill
shoal run -d --name racing --network none busybox sleep 300 >/dev/null 2>&1 &
racer=$!
sleep 0.01
agent_kill9
wait $racer 2>/dev/null
log "shoald killed; containers keep running"
kill -0 "$pid_before" 2>/dev/null && ok "container process alive while the agent is down" || fail "container died with the agent"
sleep 2.5

agent_start
expect_eq "running container re-adopted" "running" "$(shoal inspect -f '{{.State.Status}}' long)"
expect_eq "same process after restart" "$pid_before" "$(shoal inspect -f '{{.State.Pid}}' long)"
expect_eq "exit while away recorded" "exited 7" "$(shoal inspect -f '{{.State.Status}} {{.State.ExitCode}}' shortlived)"
expect_eq "bridged container keeps its address" "$ip_before" "$(shoal inspect -f '{{.NetworkSettings.IPAddress}}' bridged)"
n=$(shoal logs long | wc -l)
[ "$n" -ge 12 ] && ok "logs kept flowing while the agent was down ($n lines)" || fail "only $n log lines"
out=$(shoal start later >/dev/null && shoal wait later && shoal logs later)
expect_eq "container created before the kill starts after it" "0
started-later" "$out"
st=$(shoal inspect -f '{{.State.Status}}' racing 2>/dev/null)
case "$st" in
running | created | exited | "") ok "racing start settled as [$st]" ;;
*) fail "racing start left state [$st]" ;;
esac
out=$(shoal exec long echo exec-after-restart)
expect_eq "exec after restart" "exec-after-restart" "$out"
# a new container gets a fresh address, not the adopted one's
must_get other "starting a container after the restart" shoal run -d busybox sleep 60
expect_not_contains "no address reuse after restart" "$ip_before" "$(shoal inspect -f '{{.NetworkSettings.IPAddress}}' "$other")"

# a second restart, this time graceful
agent_stop
agent_start
expect_eq "still running after a graceful restart" "running" "$(shoal inspect -f '{{.State.Status}}' long)"
shoal stop -t 1 long >/dev/null
expect_eq "stop after restart" "exited" "$(shoal inspect -f '{{.State.Status}}' long)"
shoal rm -f $(shoal ps -aq) >/dev/null
expect_eq "all removed" 0 "$(shoal ps -aq | wc -l)"
sleep 0.3
expect_eq "no container processes left" "" "$(cg_pids)"
finish
