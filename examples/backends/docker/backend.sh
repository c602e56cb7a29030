#!/usr/bin/env bash
# kscaler exec backend (protocol 1, docs/backends/exec.md): k3s agents as containers on this
# host, driven with the docker CLI. Usage: backend.sh list|launch|terminate, one JSON request on
# stdin, one JSON answer on stdout, diagnostics on stderr. See README.md next to this file.
# shellcheck disable=SC2016 # $names inside single quotes are jq variables
set -euo pipefail
shopt -s inherit_errexit  # a failing command inside $(...) fails it, not just goes on

docker=${DOCKER:-docker}                      # any docker-compatible CLI: docker, podman
image=${K3S_IMAGE:-rancher/k3s:v1.31.4-k3s1}  # its entrypoint is the k3s binary
# Extra `docker run` options, split on spaces (e.g. --network, --memory, --ulimit).
read -r -a run_args <<<"${DOCKER_RUN_ARGS:-}"

# The answer to a failed call: outcome nothing_launched (nothing changed) or unknown (it may have
# acted). kscaler treats a failure without this object as unknown.
fail() { # outcome message [capacity]
    jq -cn --arg outcome "$1" --arg message "$2" --argjson capacity "${3:-false}" \
        '{protocol: 1, error: {outcome: $outcome, capacity: $capacity, message: $message}}'
    echo "docker backend: $2" >&2
    exit 1
}

operation=${1:-}
request=$(cat)
jq -e 'type == "object"' >/dev/null 2>&1 <<<"$request" || fail nothing_launched "stdin must hold one JSON object"
field() { jq -r "$@" <<<"$request"; }

# A program that does not know the version must refuse before acting.
[ "$(field '.protocol')" = 1 ] || fail nothing_launched "unsupported protocol $(field '.protocol'); this program speaks 1"
[ "$(field '.operation')" = "$operation" ] || fail nothing_launched "the request's operation is not '$operation'"
cluster=$(field '.cluster_id')
[[ $cluster =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || fail nothing_launched "cluster_id '$cluster' must be lowercase letters, digits and dashes (it is part of container names)"
dry_run=$(field '.dry_run // false')

# The machines of this cluster (and of one launch, if given), in the protocol's list shape.
# `ps -a` keeps exited containers: kscaler sees them as ended and deletes their ghost nodes.
machines() { # [launch_id]
    local filters=(--filter "label=kscaler.cluster=$cluster") ids
    [ -z "${1:-}" ] || filters+=(--filter "label=kscaler.launch-id=$1")
    ids=$("$docker" ps -a -q "${filters[@]}") || return 1
    if [ -z "$ids" ]; then echo '[]'; return; fi
    # shellcheck disable=SC2086 # one id a word
    "$docker" inspect $ids | jq -c '[.[] | .Config.Labels as $l | {
        id: (.Name | ltrimstr("/")),
        state: (.State.Status | if . == "running" or . == "restarting" or . == "paused" then "running"
                elif . == "created" or . == "configured" or . == "initialized" then "pending" else "ended" end),
        launch_time: (.Created | (.[0:19] + "Z" | fromdateiso8601) as $t
                      | (capture("(?<sign>[+-])(?<h>[0-9]{2}):(?<m>[0-9]{2})$")
                         | ((.h | tonumber) * 3600 + (.m | tonumber) * 60) * (if .sign == "+" then -1 else 1 end)) // 0
                      | $t + . | todateiso8601),
        machine_type: $l["kscaler.machine-type"], placement: $l["kscaler.placement"],
        pool: $l["kscaler.pool"], launch_id: $l["kscaler.launch-id"],
        provider_id: ("k3s://" + (.Name | ltrimstr("/"))),
        protected: ($l["kscaler.protected"] == "true")}]'
}

answer_machines() { jq -c '{protocol: 1, machines: .}' <<<"$1"; }

engine_ready() {
    "$docker" version >/dev/null 2>&1 || fail nothing_launched "'$docker version' failed: is the engine running and may this user use it?"
}

launch() {
    local launched launch_id count machine_type placement pool existing live missing name i
    launch_id=$(field '.launch_id')
    count=$(field '.count')
    [[ $launch_id =~ ^[A-Za-z0-9._:-]{1,63}$ ]] || fail nothing_launched "launch_id '$launch_id' must be 1-63 of [A-Za-z0-9._:-] (it becomes a label)"
    [[ $count =~ ^[0-9]+$ ]] || fail nothing_launched "count '$count' must be a whole number"
    machine_type=$(field --arg d "${K3S_MACHINE_TYPE:-container}" '.offering.machine_type // $d')
    placement=$(field --arg d "${K3S_PLACEMENT:-$(hostname)}" '.offering.placement // $d')
    pool=$(field '.bootstrap.pool // "default"')
    engine_ready
    [ -r "${K3S_TOKEN_FILE:-}" ] || fail nothing_launched "K3S_TOKEN_FILE must name a readable file holding the k3s join token"

    # Idempotency: a launch id that containers already carry launches only what is missing.
    existing=$(machines "$launch_id") || fail nothing_launched "listing containers failed (see above)"
    live=$(jq '[.[] | select(.state != "ended")] | length' <<<"$existing")
    missing=$((count - live))
    if [ "$dry_run" = true ] || [ "$missing" -le 0 ]; then answer_machines "$existing"; return; fi

    # The agent's command: k3s agent, joining with the token from a read-only mount (never in
    # argv or the environment), named after its container so kscaler matches node to machine.
    local agent=()
    if [ -n "${KSCALER_TEST_AGENT_COMMAND:-}" ]; then
        read -r -a agent <<<"$KSCALER_TEST_AGENT_COMMAND"   # test-only: a stand-in for the agent
    else
        [ -n "${K3S_URL:-}" ] || fail nothing_launched "K3S_URL must name the k3s server, e.g. https://10.0.0.2:6443"
        agent=(agent --server "$K3S_URL" --token-file /etc/kscaler/k3s-token)
        while IFS= read -r label; do agent+=(--node-label "$label"); done < <(field '.bootstrap.labels // {} | to_entries[] | "\(.key)=\(.value)"')
        while IFS= read -r taint; do agent+=(--node-taint "$taint"); done < <(field '.bootstrap.taints // [] | .[]')
    fi

    for ((i = 0; i < missing; i++)); do
        name="kscaler-$cluster-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
        local node_args=("${agent[@]}")
        [ -n "${KSCALER_TEST_AGENT_COMMAND:-}" ] || node_args+=(--node-name "$name")
        # k3s in a container needs a privileged container and tmpfs /run, as k3d runs it.
        if ! "$docker" run -d --name "$name" --hostname "$name" --privileged --tmpfs /run --tmpfs /var/run \
            --restart unless-stopped \
            --label "kscaler.cluster=$cluster" --label "kscaler.launch-id=$launch_id" \
            --label "kscaler.pool=$pool" --label "kscaler.machine-type=$machine_type" \
            --label "kscaler.placement=$placement" --label "kscaler.protected=false" \
            -v "$K3S_TOKEN_FILE:/etc/kscaler/k3s-token:ro" "${run_args[@]}" \
            "$image" "${node_args[@]}" >/dev/null; then
            # Nothing started in this call and no container was created: nothing changed.
            if [ "$i" -eq 0 ] && ! "$docker" container inspect "$name" >/dev/null 2>&1; then
                fail nothing_launched "'$docker run' of $image failed before creating a container (see above)"
            fi
            fail unknown "'$docker run' failed after $i of $missing containers of launch $launch_id started"
        fi
    done
    launched=$(machines "$launch_id") || fail unknown "launched, but listing launch $launch_id failed"
    answer_machines "$launched"
}

terminate() {
    local ids current id
    mapfile -t ids < <(field '.machine_ids // [] | .[]')
    current=$(machines) || fail nothing_launched "listing containers failed (see above)"
    # Only this cluster's unprotected containers, checked before removing any.
    for id in "${ids[@]}"; do
        [[ $id == "kscaler-$cluster-"* ]] || fail nothing_launched "'$id' is not a machine of cluster $cluster"
        [ "$(jq --arg id "$id" 'any(.[]; .id == $id and .protected)' <<<"$current")" = false ] ||
            fail nothing_launched "'$id' is protected (label kscaler.protected=true)"
    done
    if [ "$dry_run" != true ]; then
        engine_ready
        for id in "${ids[@]}"; do
            # Gone already is success; a container that is still there after rm -f is not.
            # kill first: podman's rm -f waits out the stop timeout (10 s each), docker's kills.
            "$docker" kill "$id" >/dev/null 2>&1 || true
            if ! "$docker" rm -f "$id" >/dev/null 2>&1 && "$docker" container inspect "$id" >/dev/null 2>&1; then
                fail unknown "'$docker rm -f $id' failed and the container is still there"
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
