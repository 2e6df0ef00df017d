#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Networks: the node's bridge, host and none listed and inspected as Docker's;
# overlay networks created with a given or a pooled subnet, a given gateway, VNI
# and labels, listed, filtered, inspected by name, id and id prefix, removed
# and pruned; overlapping subnets, taken names and VNIs, other drivers, IPv6
# and unsupported options refused naming the field, with nothing stored; the
# node's networks cannot be removed, a service's network can once the service
# is removed; the docker CLI's network commands.
. "$(dirname "$0")/lib.sh"
node_start

log "the node's networks"
out=$(shoal network ls)
for n in "bridge *bridge *local" "host *host *local" "none *null *local"; do
	echo "$out" | grep -Eq "$n" && ok "listed: $n" || fail "not listed: $n in [$out]"
done
out=$(shoal network inspect bridge)
expect_contains "the bridge's subnet" '"Subnet": "10.213.0.0/16"' "$out"
out=$(shoal network rm bridge 2>&1)
expect_contains "the node's bridge cannot be removed" "pre-defined network and cannot be removed" "$out"

log "overlay networks"
id1=$(shoal network create -d overlay --subnet 10.50.0.0/24 --gateway 10.50.0.254 --label team=a --opt vni=5001 front)
[ ${#id1} -eq 25 ] && ok "create prints the id" || fail "id: [$id1]"
id2=$(shoal network create back)
out=$(shoal network inspect front)
expect_contains "its subnet" '"Subnet": "10.50.0.0/24"' "$out"
expect_contains "its gateway" '"Gateway": "10.50.0.254"' "$out"
expect_contains "its VNI" '"com.docker.network.driver.overlay.vxlanid_list": "5001"' "$out"
expect_contains "its label" '"team": "a"' "$out"
expect_contains "scope swarm" '"Scope": "swarm"' "$out"
out=$(shoal network inspect "$id2")
expect_contains "a pooled /24 when no subnet is given" '"Subnet": "10.0.0.0/24"' "$out"
expect_contains "by id prefix" '"Name": "back"' "$(shoal network inspect "${id2:0:8}")"
expect_eq "ls --filter label" "front" "$(shoal network ls --filter label=team=a --format '{{.Name}}')"
expect_eq "ls --filter type=custom" "back front" "$(shoal network ls --filter type=custom --format '{{.Name}}' | sort | tr '\n' ' ' | sed 's/ $//')"

log "refused, naming the field, with nothing stored"
out=$(shoal network create --subnet 10.50.0.0/16 over 2>&1)
expect_contains "an overlapping subnet" "overlaps 10.50.0.0/24 of network $id1" "$out"
out=$(shoal network create --subnet 10.213.7.0/24 onbridge 2>&1)
expect_contains "a subnet of the node's bridge" "bridge network" "$out"
out=$(shoal network create front 2>&1)
expect_contains "a taken name" "network with name front already exists" "$out"
out=$(shoal network create --opt vni=5001 samevni 2>&1)
expect_contains "a taken VNI" "vni: 5001 is used by network $id1" "$out"
out=$(shoal network create -d bridge mybridge 2>&1)
expect_contains "another driver" 'Driver: "bridge" is not supported by shoal' "$out"
out=$(shoal network create --ipv6 six 2>&1)
expect_contains "IPv6" "EnableIPv6" "$out"
out=$(shoal network create --subnet 10.70.0.0/24 --gateway 10.71.0.1 gw 2>&1)
expect_contains "a gateway outside its subnet" "IPAM.Config[0].Gateway: 10.71.0.1 is not a host address" "$out"
out=$(shoal network create --opt encrypted=true enc 2>&1)
expect_contains "encryption refused, naming what it needs" "Options.encrypted: encrypted overlay networks are not supported by shoal yet" "$out"
out=$(shoal network create --opt color=blue blue 2>&1)
expect_contains "an unknown option refused" "Options.color: not supported by shoal (vni, mtu)" "$out"
out=$(api POST /networks/create '{"Name":"x","Driver":"overlay","IPAM":{"Config":[{"Subnet":"10.80.0.0/24","IPRange":"10.80.0.0/25"}]}}')
expect_contains "an IP range" "IPAM.Config[0].IPRange: not supported" "$out"

expect_eq "custom networks are still two" "back front" "$(shoal network ls --filter type=custom --format '{{.Name}}' | sort | tr '\n' ' ' | sed 's/ $//')"

out=$(api POST /services/create '{"Name":"onbridge","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Networks":[{"Target":"bridge"}]}}')
expect_contains "a service on the node's bridge network is refused" "bridge is not an overlay network" "$out"
expect_eq "and not created" "" "$(shoal service ls -q)"
out=$(api POST /services/create '{"Name":"onnet","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Networks":[{"Target":"back"}]}}')
expect_contains "a service on an overlay network is created" "201 " "${out:0:4}"
out=$(api GET /services/onnet)
expect_contains "its VIP is on the overlay network (Endpoint.VirtualIPs[0].NetworkID)" "\"NetworkID\":\"$id2\"" "$(echo "$out" | tr -d ' \n')"
out=$(shoal network rm back 2>&1)
expect_contains "a network a service uses is not removed" "in use by service(s) onnet" "$out"
must "removing the service" shoal service rm onnet
# its record stays, marked removed, until its tasks have stopped: that does
# not keep the network
must "network rm right after service rm" shoal network rm back
expect_contains "back is gone: 404" "404 " "$(api GET /networks/back)"

log "removal and prune"
must "removing front" shoal network rm front
expect_contains "gone: 404" "404 " "$(api GET /networks/front)"
id3=$(shoal network create --subnet 10.50.0.0/16 wide)
[ -n "$id3" ] && ok "its subnet and name are free again" || fail "10.50.0.0/16 still taken"
out=$(shoal network prune -f)
expect_contains "prune removes unused networks" "wide" "$out"
expect_eq "nothing custom left" "" "$(shoal network ls -q --filter type=custom)"

DOCKER=$(command -v docker || true)
if [ -n "$DOCKER" ]; then
	log "the docker CLI"
	export DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$T/docker-config"
	dk() { timeout -k 2 20 "$DOCKER" "$@"; }
	out=$(dk network ls 2>&1)
	expect_contains "docker network ls" "bridge" "$out"
	did=$(dk network create -d overlay --subnet 10.90.0.0/24 dnet 2>&1)
	[ ${#did} -eq 25 ] && ok "docker network create -d overlay" || fail "docker network create: $did"
	expect_contains "docker network inspect" '"Subnet": "10.90.0.0/24"' "$(dk network inspect dnet 2>&1)"
	expect_contains "docker network create (bridge driver) refused" "not supported by shoal" "$(dk network create plain 2>&1)"
	must "docker network rm" dk network rm dnet
fi
finish
