#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Restart policies of plain containers (--restart no|always|unless-stopped|
# on-failure[:N]): restarts with Docker's backoff, a stop or a removal during
# the backoff, update and restart through the API, and what the agent starts
# again when it comes back after a kill -9.
. "$(dirname "$0")/lib.sh"
node_start

field() { shoal inspect -f "$2" "$1" 2>/dev/null; }
state_is() { [ "$(field "$1" '{{.State.Status}}')" = "$2" ]; }
count_ge() {
	local n
	n=$(field "$1" '{{.RestartCount}}')
	[ -n "$n" ] && [ "$n" -ge "$2" ]
}
gone() { ! shoal inspect "$1" >/dev/null 2>&1; }
exited_after() { state_is "$1" exited && count_ge "$1" "$2"; }
# events NAME: the container's actions so far, one a line
events_of() {
	local id
	id=$(field "$1" '{{.Id}}')
	api GET "/events?since=1&until=$(($(date +%s) + 1))&filters=%7B%22container%22%3A%5B%22$id%22%5D%7D" |
		cut -d' ' -f2- | grep -o '"Action":"[a-z]*"' | cut -d'"' -f4
}
R="--network none"

log "on-failure:2 of exit 3: restarted twice, then left exited"
must "run onf" shoal run -d --name onf $R --restart on-failure:2 busybox sh -c 'exit 3'
eventually 10 exited_after onf 2 || fail "onf did not end exited after 2 restarts"
sleep 0.5 # (the next restart, were there one, would have come after 400 ms)
expect_eq "on-failure:2 ends with RestartCount 2, exited 3" "2 exited 3 false" \
	"$(field onf '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} {{.State.Restarting}}')"
ev=$(events_of onf | tr '\n' ' ')
expect_eq "events: die then start per restart" "create start die start die start die " "$ev"
expect_eq "inspect names the policy" "on-failure 2" \
	"$(field onf '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}')"

log "on-failure of exit 0: not restarted"
must "run onf0" shoal run -d --name onf0 $R --restart on-failure busybox true
eventually 5 state_is onf0 exited
sleep 0.3
expect_eq "on-failure of exit 0 is not restarted" "0 exited" \
	"$(field onf0 '{{.RestartCount}} {{.State.Status}}')"

log "always of a short sleep: restarts again and again, StartedAt moves"
must "run alw" shoal run -d --name alw $R --restart always busybox sleep 0.2
first_start=$(field alw '{{.State.StartedAt}}')
eventually 10 count_ge alw 3 || fail "alw restarted fewer than 3 times: $(field alw '{{.RestartCount}}')"
[ "$(field alw '{{.State.StartedAt}}')" != "$first_start" ] && ok "StartedAt updated per restart" ||
	fail "StartedAt still $first_start"
eventually 10 state_is alw running
must "stop alw" shoal stop -t 1 alw
eventually 5 state_is alw exited
n=$(field alw '{{.RestartCount}}')
sleep 1
expect_eq "a stopped always container stays stopped" "exited $n" \
	"$(field alw '{{.State.Status}} {{.RestartCount}}')"
must "start alw" shoal start alw
expect_eq "a user's start resets RestartCount" "0" "$(field alw '{{.RestartCount}}')"
eventually 10 count_ge alw 1 || fail "alw not restarted after the user's start cleared the stop"

log "a container waiting out its backoff: restarting in inspect and ps; wait, stop, restart, rm -f"
must "run flap" shoal run -d --name flap $R --restart always busybox sh -c 'exit 1'
waiting() { state_is "$1" restarting && count_ge "$1" "$2"; }
eventually 15 waiting flap 5 || fail "flap not seen restarting after 5 restarts"
expect_eq "inspect while restarting" "restarting true true 1 0" \
	"$(field flap '{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.State.ExitCode}} {{.State.Pid}}')"
expect_contains "ps lists it without -a" "Restarting (1)" "$(shoal ps --filter name=flap)"
expect_contains "status filter restarting" "flap" "$(shoal ps -a --filter status=restarting --format '{{.Names}}')"
out=$(api DELETE "/containers/flap")
expect_contains "rm without force refused while restarting" "409 " "$out"
expect_contains "... saying why" "cannot remove a restarting container" "$out"
out=$(api POST "/containers/flap/start")
expect_eq "start of a restarting container: not modified" "304" "${out%% *}"
shoal wait flap >"$T/wait.out" 2>&1 &
waiter=$!
sleep 0.2
kill -0 "$waiter" 2>/dev/null && ok "wait blocks while it waits to restart" ||
	fail "wait returned at once for a container waiting to restart"
must "stop during the backoff" shoal stop flap
wait "$waiter"
expect_eq "the wait ends when the stop cancels the restart" "1" "$(cat "$T/wait.out")"
n=$(field flap '{{.RestartCount}}')
# past the backoff it was waiting out: 100 ms doubled per restart
sleep "$(awk -v n="$n" 'BEGIN { printf "%.1f", 0.1 * 2 ^ (n - 1) + 0.3 }')"
expect_eq "stop during the backoff cancels the restart" "exited $n" \
	"$(field flap '{{.State.Status}} {{.RestartCount}}')"
expect_contains "the stop is an event" "stop" "$(events_of flap | tail -n 2)"
must "shoal restart of a stopped always container" shoal restart -t 1 flap
eventually 5 count_ge flap 1 || fail "flap: its policy does not apply after the API restart"
eventually 15 waiting flap 5 || fail "flap not seen restarting again"
n=$(field flap '{{.RestartCount}}')
must "rm -f during the backoff" shoal rm -f flap
gone flap && ok "rm -f during the backoff removes it" || fail "flap still there after rm -f"
sleep "$(awk -v n="$n" 'BEGIN { printf "%.1f", 0.1 * 2 ^ (n - 1) + 0.3 }')"
gone flap && ok "no restart after the removal" || fail "flap came back"

log "update --restart and its refusals"
must "run upd" shoal run -d --name upd $R busybox sleep 0.3
must "shoal update --restart always" shoal update --restart always upd
expect_eq "the policy is recorded" "always" "$(field upd '{{.HostConfig.RestartPolicy.Name}}')"
eventually 10 count_ge upd 2 || fail "upd not restarted under its updated policy"
out=$(api POST /containers/upd/update '{"RestartPolicy":{"Name":"sometimes"}}')
expect_contains "update with an unknown policy refused" "400 " "$out"
expect_contains "... naming it" "unknown policy 'sometimes'" "$out"
out=$(api POST /containers/upd/update '{"RestartPolicy":{"Name":"unless-stopped","MaximumRetryCount":3}}')
expect_contains "update with a count for unless-stopped refused" "can only be used with 'on-failure'" "$out"
out=$(api POST /containers/upd/update '{"RestartPolicy":{"Name":"no"}}')
expect_eq "update back to no through the API" "200" "${out%% *}"
out=$(shoal update upd 2>&1) && fail "update without flags accepted"
expect_contains "update without flags" "you must provide one or more flags" "$out"
eventually 5 state_is upd exited
n=$(field upd '{{.RestartCount}}')
sleep 0.5
expect_eq "no policy: no more restarts" "exited $n" "$(field upd '{{.State.Status}} {{.RestartCount}}')"
must "create rmd" shoal create --name rmd --rm $R busybox true
out=$(api POST /containers/rmd/update '{"RestartPolicy":{"Name":"always"}}')
expect_contains "update of an AutoRemove container refused" "409 " "$out"
expect_contains "... as Docker says" "Restart policy cannot be updated because AutoRemove is enabled" "$out"

log "bad policies refused"
before=$(shoal ps -aq | wc -l)
out=$(shoal run -d --rm --restart always busybox true 2>&1) && fail "--rm with --restart accepted"
expect_contains "--rm with --restart" "Conflicting options: cannot specify both --restart and --rm" "$out"
out=$(shoal run -d --restart sometimes busybox true 2>&1) && fail "--restart sometimes accepted"
expect_contains "unknown policy" "unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'" "$out"
out=$(shoal run -d --restart always:3 busybox true 2>&1) && fail "--restart always:3 accepted"
expect_contains "a count for always" "maximum retry count can only be used with 'on-failure'" "$out"
out=$(shoal run -d --restart on-failure:-1 busybox true 2>&1) && fail "--restart on-failure:-1 accepted"
expect_contains "a negative count" "maximum retry count cannot be negative" "$out"
out=$(shoal run -d --restart on-failure:x busybox true 2>&1) && fail "--restart on-failure:x accepted"
expect_contains "a count that is not a number" "maximum retry count must be an integer" "$out"
out=$(api POST /containers/create '{"Image":"busybox","Cmd":["true"],"HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"on-failure"}}}')
expect_contains "API: AutoRemove with a policy refused with 400" "400 " "$out"
expect_contains "... Docker's message" "can't create 'AutoRemove' container with restart policy" "$out"
expect_eq "no container made by a refused run" "$before" "$(shoal ps -aq | wc -l)"

log "agent restarts: what starts again"
must "run us" shoal run -d --name us $R --restart unless-stopped busybox sleep 300
must "run us_stopped" shoal run -d --name us_stopped $R --restart unless-stopped busybox sleep 300
must "run alw_stopped" shoal run -d --name alw_stopped $R --restart always busybox sleep 300
must "run onf_stopped" shoal run -d --name onf_stopped $R --restart on-failure busybox sleep 300
must "run plain" shoal run -d --name plain $R busybox sleep 300
must "stop us_stopped" shoal stop -t 0 us_stopped
must "stop alw_stopped" shoal stop -t 0 alw_stopped
must "stop onf_stopped" shoal stop -t 0 onf_stopped
must "run bo" shoal run -d --name bo $R --restart always busybox sh -c 'exit 4'
eventually 15 waiting bo 5 || fail "bo not seen restarting after 5 restarts"
must_get us_pid "us's pid" field us '{{.State.Pid}}'
must_get plain_pid "plain's pid" field plain '{{.State.Pid}}'
agent_kill9
# the containers outlive the agent; two of them die while it is away
kill -9 "$us_pid" "$plain_pid"
sleep 0.3
agent_start
eventually 10 count_ge us 1 || fail "us: not restarted after it died while the agent was away"
eventually 10 state_is us running || fail "unless-stopped: not running again after the agent restart"
eventually 10 state_is alw_stopped running ||
	fail "always after a manual stop: Docker starts it with the daemon; here $(field alw_stopped '{{.State.Status}}')"
expect_eq "a start with the agent resets RestartCount" "0" "$(field alw_stopped '{{.RestartCount}}')"
n=$(field bo '{{.RestartCount}}')
eventually 10 count_ge bo $((n + 1)) || fail "the restart the agent was killed in did not go on"
sleep 0.5
expect_eq "unless-stopped after a manual stop stays stopped" "exited" "$(field us_stopped '{{.State.Status}}')"
expect_eq "on-failure is not started with the agent" "exited" "$(field onf_stopped '{{.State.Status}}')"
expect_eq "no policy: not restarted" "exited 0" "$(field plain '{{.State.Status}} {{.RestartCount}}')"

log "a graceful agent restart keeps the manual stop"
must "stop us" shoal stop -t 0 us
agent_stop
agent_start
sleep 0.5
expect_eq "unless-stopped stopped by the user: still stopped" "exited" "$(field us '{{.State.Status}}')"
expect_eq "always: still running" "running" "$(field alw_stopped '{{.State.Status}}')"

must "remove everything" shoal rm -f $(shoal ps -aq)
expect_eq "all removed" 0 "$(shoal ps -aq | wc -l)"
sleep 1.8
expect_eq "nothing came back" 0 "$(shoal ps -aq | wc -l)"
eventually 5 test -z "$(cg_pids)"
expect_eq "no container processes left" "" "$(cg_pids)"
finish
