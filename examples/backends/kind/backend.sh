#!/usr/bin/env bash
# kscaler exec backend (protocol 1, docs/backends/exec.md): kubeadm workers for a Kind cluster,
# as containers of the kind node image joined with `kubeadm join`, driven with podman or docker.
# Usage: backend.sh list|launch|terminate, one JSON request on stdin, one JSON answer on stdout,
# diagnostics on stderr. See README.md next to this file.
# shellcheck disable=SC2016 # $names inside single quotes are jq variables
set -euo pipefail
shopt -s inherit_errexit  # a failing command inside $(...) fails it, not just goes on

engine=${KIND_ENGINE:-podman}                  # podman or docker (any docker-compatible CLI)
kind_cluster=${KIND_CLUSTER:-kind}             # the Kind cluster's name (`kind create cluster --name`)
image=${KIND_NODE_IMAGE:-kindest/node:v1.31.4} # the same image (and version) as the control plane
network=${KIND_NETWORK:-kind}                  # Kind puts its nodes on this network
# Kind's own provider id scheme, so `provider_id: kind://podman/<cluster>/{id}` matches.
provider_prefix="kind://$(basename "$engine")/$kind_cluster/"

fail() { # outcome message [capacity]; outcome nothing_launched (nothing changed) or unknown
    jq -cn --arg outcome "$1" --arg message "$2" --argjson capacity "${3:-false}" \
        '{protocol: 1, error: {outcome: $outcome, capacity: $capacity, message: $message}}'
    echo "kind backend: $2" >&2
    exit 1
}

operation=${1:-}
request=$(cat)
jq -e 'type == "object"' >/dev/null 2>&1 <<<"$request" || fail nothing_launched "stdin must hold one JSON object"
field() { jq -r "$@" <<<"$request"; }
[ "$(field '.protocol')" = 1 ] || fail nothing_launched "unsupported protocol $(field '.protocol'); this program speaks 1"
[ "$(field '.operation')" = "$operation" ] || fail nothing_launched "the request's operation is not '$operation'"
cluster=$(field '.cluster_id')
[[ $cluster =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || fail nothing_launched "cluster_id '$cluster' must be lowercase letters, digits and dashes (it is part of container names)"
dry_run=$(field '.dry_run // false')

# This cluster's worker containers (of one launch, if given), in the protocol's list shape.
machines() { # [launch_id]
    local filters=(--filter "label=kscaler.cluster=$cluster") ids
    [ -z "${1:-}" ] || filters+=(--filter "label=kscaler.launch-id=$1")
    ids=$("$engine" ps -a -q "${filters[@]}") || return 1
    if [ -z "$ids" ]; then echo '[]'; return; fi
    # shellcheck disable=SC2086 # one id a word
    "$engine" inspect $ids | jq -c --arg prefix "$provider_prefix" '[.[] | .Config.Labels as $l | {
        id: (.Name | ltrimstr("/")),
        state: (.State.Status | if . == "running" or . == "restarting" or . == "paused" then "running"
                elif . == "created" or . == "configured" or . == "initialized" then "pending" else "ended" end),
        launch_time: (.Created | (.[0:19] + "Z" | fromdateiso8601) as $t
                      | (capture("(?<sign>[+-])(?<h>[0-9]{2}):(?<m>[0-9]{2})$")
                         | ((.h | tonumber) * 3600 + (.m | tonumber) * 60) * (if .sign == "+" then -1 else 1 end)) // 0
                      | $t + . | todateiso8601),
        machine_type: $l["kscaler.machine-type"], placement: $l["kscaler.placement"],
        pool: $l["kscaler.pool"], launch_id: $l["kscaler.launch-id"],
        provider_id: ($prefix + (.Name | ltrimstr("/"))),
        protected: ($l["kscaler.protected"] == "true")}]'
}

answer_machines() { jq -c '{protocol: 1, machines: .}' <<<"$1"; }

engine_ready() {
    "$engine" version >/dev/null 2>&1 || fail nothing_launched "'$engine version' failed: is the engine running and may this user use it?"
}

# kubeadm's JoinConfiguration for one node, as JSON (which kubeadm reads as YAML). jq reads the
# token from its file itself: it is never in an argv or the environment.
join_config() { # node_name
    field --arg name "$1" --arg endpoint "$KUBEADM_API_SERVER" --arg hash "$KUBEADM_CA_CERT_HASH" \
        --arg provider_id "$provider_prefix$1" --rawfile token "$KUBEADM_TOKEN_FILE" '{
        apiVersion: "kubeadm.k8s.io/v1beta3", kind: "JoinConfiguration",
        discovery: {bootstrapToken: {apiServerEndpoint: $endpoint, token: ($token | rtrimstr("\n")),
                                     caCertHashes: [$hash]}},
        nodeRegistration: {name: $name, criSocket: "unix:///run/containerd/containerd.sock",
            ignorePreflightErrors: ["all"],
            kubeletExtraArgs: {"provider-id": $provider_id,
                "node-labels": (.bootstrap.labels // {} | to_entries | map("\(.key)=\(.value)") | join(","))},
            taints: [.bootstrap.taints // [] | .[] | capture("^(?<key>[^=:]+)(=(?<value>[^:]*))?:(?<effect>.+)$")
                     | {key, effect} + (if .value then {value} else {} end)]}}'
}

launch() {
    local launched launch_id count machine_type placement pool existing live missing name i
    launch_id=$(field '.launch_id')
    count=$(field '.count')
    [[ $launch_id =~ ^[A-Za-z0-9._:-]{1,63}$ ]] || fail nothing_launched "launch_id '$launch_id' must be 1-63 of [A-Za-z0-9._:-] (it becomes a label)"
    [[ $count =~ ^[0-9]+$ ]] || fail nothing_launched "count '$count' must be a whole number"
    machine_type=$(field --arg d "${KIND_MACHINE_TYPE:-kind-node}" '.offering.machine_type // $d')
    placement=$(field --arg d "$(hostname)" '.offering.placement // $d')
    pool=$(field '.bootstrap.pool // "default"')
    engine_ready
    [ -r "${KUBEADM_TOKEN_FILE:-}" ] || fail nothing_launched "KUBEADM_TOKEN_FILE must name a readable file holding a kubeadm bootstrap token (kubeadm token create)"
    [ -n "${KUBEADM_API_SERVER:-}" ] || fail nothing_launched "KUBEADM_API_SERVER must name the API server, e.g. $kind_cluster-control-plane:6443"
    [[ ${KUBEADM_CA_CERT_HASH:-} == sha256:* ]] || fail nothing_launched "KUBEADM_CA_CERT_HASH must be the cluster CA's sha256:<hex> hash"

    # Idempotency: a launch id that containers already carry launches only what is missing.
    existing=$(machines "$launch_id") || fail nothing_launched "listing containers failed (see above)"
    live=$(jq '[.[] | select(.state != "ended")] | length' <<<"$existing")
    missing=$((count - live))
    if [ "$dry_run" = true ] || [ "$missing" -le 0 ]; then answer_machines "$existing"; return; fi

    for ((i = 0; i < missing; i++)); do
        name="kscaler-$cluster-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
        # The options `kind create cluster` gives its nodes: systemd inside needs them.
        if ! "$engine" run -d --name "$name" --hostname "$name" --privileged --network "$network" \
            --tmpfs /tmp --tmpfs /run --volume /var --volume /lib/modules:/lib/modules:ro \
            --restart on-failure:1 \
            --label "io.x-k8s.kind.cluster=$kind_cluster" --label io.x-k8s.kind.role=worker \
            --label "kscaler.cluster=$cluster" --label "kscaler.launch-id=$launch_id" \
            --label "kscaler.pool=$pool" --label "kscaler.machine-type=$machine_type" \
            --label "kscaler.placement=$placement" --label "kscaler.protected=false" \
            "$image" >/dev/null; then
            if [ "$i" -eq 0 ] && ! "$engine" container inspect "$name" >/dev/null 2>&1; then
                fail nothing_launched "'$engine run' of $image failed before creating a container (see above)"
            fi
            fail unknown "'$engine run' failed after $i of $missing containers of launch $launch_id started"
        fi
        # The join runs in the background (it waits for systemd, then takes a minute): a node
        # that never joins is a failed boot kscaler terminates after provision_timeout.
        join_config "$name" | "$engine" exec -i "$name" sh -c 'umask 077; cat > /etc/kscaler-join.yaml' ||
            fail unknown "could not write the join configuration into $name"
        "$engine" exec -d "$name" sh -c 'for i in $(seq 120); do systemctl is-active -q containerd && break; sleep 1; done
            kubeadm join --config /etc/kscaler-join.yaml > /var/log/kscaler-join.log 2>&1
            rm -f /etc/kscaler-join.yaml' || fail unknown "could not start kubeadm join in $name"
    done
    launched=$(machines "$launch_id") || fail unknown "launched, but listing launch $launch_id failed"
    answer_machines "$launched"
}

terminate() {
    local ids current id
    mapfile -t ids < <(field '.machine_ids // [] | .[]')
    current=$(machines) || fail nothing_launched "listing containers failed (see above)"
    for id in "${ids[@]}"; do
        [[ $id == "kscaler-$cluster-"* ]] || fail nothing_launched "'$id' is not a machine of cluster $cluster"
        [ "$(jq --arg id "$id" 'any(.[]; .id == $id and .protected)' <<<"$current")" = false ] ||
            fail nothing_launched "'$id' is protected (label kscaler.protected=true)"
    done
    if [ "$dry_run" != true ]; then
        engine_ready
        for id in "${ids[@]}"; do
            # kill first: podman's rm -f waits out the stop timeout (10 s each), docker's kills.
            "$engine" kill "$id" >/dev/null 2>&1 || true
            if ! "$engine" rm -f "$id" >/dev/null 2>&1 && "$engine" container inspect "$id" >/dev/null 2>&1; then
                fail unknown "'$engine rm -f $id' failed and the container is still there"
            fi
        done
    fi
    jq -cn '{protocol: 1, terminated: $ARGS.positional}' --args "${ids[@]}"
}

case "$operation" in
    list) engine_ready; all=$(machines) || fail nothing_launched "listing containers failed (see above)"; answer_machines "$all" ;;
    launch) launch ;;
    terminate) terminate ;;
    *) fail nothing_launched "unknown operation '$operation' (expected list, launch or terminate)" ;;
esac
