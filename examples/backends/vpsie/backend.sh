#!/usr/bin/env bash
# kscaler exec backend (protocol 1, docs/backends/exec.md): workers of a VPSie managed Kubernetes
# cluster, added to and removed from its node groups through VPSie's REST API with curl.
# Usage: backend.sh list|launch|terminate, one JSON request on stdin, one JSON answer on stdout,
# diagnostics on stderr. See README.md next to this file: parts of the API are ASSUMED.
# shellcheck disable=SC2016 # $names inside single quotes are jq variables
set -euo pipefail
shopt -s inherit_errexit  # a failing command inside $(...) fails it, not just goes on

api_url=${VPSIE_API_URL:-https://api.vpsie.com/apps/v2}
vpsie_cluster=${VPSIE_CLUSTER:-}                 # the VPSie cluster's identifier
default_group=${VPSIE_DEFAULT_GROUP:-}           # node group name used when the offering names none

fail() { # outcome message [capacity]; outcome nothing_launched (nothing changed) or unknown
    jq -cn --arg outcome "$1" --arg message "$2" --argjson capacity "${3:-false}" \
        '{protocol: 1, error: {outcome: $outcome, capacity: $capacity, message: $message}}'
    echo "vpsie backend: $2" >&2
    exit 1
}

operation=${1:-}
request=$(cat)
jq -e 'type == "object"' >/dev/null 2>&1 <<<"$request" || fail nothing_launched "stdin must hold one JSON object"
field() { jq -r "$@" <<<"$request"; }
[ "$(field '.protocol')" = 1 ] || fail nothing_launched "unsupported protocol $(field '.protocol'); this program speaks 1"
[ "$(field '.operation')" = "$operation" ] || fail nothing_launched "the request's operation is not '$operation'"
cluster=$(field '.cluster_id')
[[ $cluster =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || fail nothing_launched "cluster_id '$cluster' must be lowercase letters, digits and dashes (it becomes a tag)"
dry_run=$(field '.dry_run // false')
[ -n "$vpsie_cluster" ] || fail nothing_launched "VPSIE_CLUSTER must hold the VPSie cluster's identifier"
[ -r "${VPSIE_TOKEN_FILE:-}" ] || fail nothing_launched "VPSIE_TOKEN_FILE must name a readable file holding the VPSie API token"

# The token goes to curl in a header file only this user can read, never in argv or the
# environment; printf is a shell builtin, so it is in no process's argv either.
work=$(umask 077 && mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'Vpsie-Auth: %s\n' "$(tr -d '\r\n' <"$VPSIE_TOKEN_FILE")" >"$work/headers"

# One API call: prints the response body, records the HTTP status (000 when none came back) for
# last_status (a file: calls run in command substitutions) and returns curl's exit status.
api() { # method path [json body]
    local out rc=0
    out=$(curl -sS --fail-with-body --max-time 30 -X "$1" -H @"$work/headers" -H 'Accept: application/json' \
        ${3:+-H 'Content-Type: application/json' --data-binary "$3"} -w '\n%{http_code}' "$api_url$2") || rc=$?
    echo "${out##*$'\n'}" >"$work/status"
    printf '%s' "${out%$'\n'*}"
    return "$rc"
}
last_status() { cat "$work/status" 2>/dev/null || echo 000; }

# ---------------------------------------------------------------------------------------------
# VPSie API request shapes: everything this program assumes about VPSie is in this block.
# CONFIRMED from VPSie's Go SDK (github.com/vpsie/govpsie, k8s.go, tag.go, govpsie.go): the
# Vpsie-Auth header, base URL, the cluster and node-group paths and the add-node call.
# ASSUMED (not in the SDK or any public doc found): the node fields `identifier`, `tags` and
# `group_name` in the cluster's node list, the add call answering the new node's identifier,
# the entity name "vm" for tags, and the call deleting ONE chosen node (the SDK only "reduces" a
# group by a node VPSie picks, which kscaler cannot use: it names the machines to remove).
vpsie_nodes() {          # -> JSON array of node objects
    api GET "/k8s/cluster/byId/$vpsie_cluster" | jq -c '.data.nodes // []'
}
vpsie_group_id() {       # group name -> numeric id (CONFIRMED: ListK8sGroups)
    api GET "/k8s/node/groups/byClusterId/$vpsie_cluster" | jq -r --arg name "$1" '.data[] | select(.group_name == $name) | .id' | head -n1
}
vpsie_add_node() {       # group id -> new node identifier (path CONFIRMED: AddNode; answer ASSUMED)
    api POST "/k8s/cluster/byId/$vpsie_cluster/add/slave/group/$1" | jq -r '.data.identifier // empty'
}
vpsie_tag_node() {       # identifier, tags... (CONFIRMED: Tags.Edit; entity "vm" ASSUMED)
    local id=$1; shift
    api PUT /tags/edit "$(jq -cn --arg id "$id" '{entity: "vm", identifier: $id, tags: $ARGS.positional}' --args "$@")" >/dev/null
}
vpsie_delete_node() {    # identifier (ASSUMED)
    api DELETE "/k8s/cluster/byId/$vpsie_cluster/node/$1" >/dev/null
}
# ---------------------------------------------------------------------------------------------

# This cluster's machines (of one launch, if given): the nodes tagged kscaler-cluster-<id>. The
# machine id is the node's hostname, which is its Kubernetes node name (node_name: "{id}").
machines() { # [launch_id]
    local nodes
    nodes=$(vpsie_nodes) || return
    jq -c --arg tag "kscaler-cluster-$cluster" --arg launch "${1:-}" '[.[]
        | select((.tags // []) | index($tag))
        | (.tags | map(select(startswith("kscaler-")) | ltrimstr("kscaler-") | split("=")
                       | {key: .[0], value: (.[1:] | join("="))}) | from_entries) as $t
        | select($launch == "" or $t.launch == $launch)
        | {id: .hostname, node: .identifier, state: "running",
           launch_time: (.created_on | sub(" "; "T") | sub("\\.[0-9]+"; "") | if endswith("Z") then . else . + "Z" end),
           machine_type: .group_name, placement: .dcIdentifier, pool: $t.pool, launch_id: $t.launch,
           protected: ($t.protected == "true")}]' <<<"$nodes"
}

# The list shape, without the node identifier kept for terminate.
answer_machines() { jq -c '{protocol: 1, machines: map(del(.node))}' <<<"$1"; }

launch() {
    local launched launch_id count group pool group_id existing missing i node
    launch_id=$(field '.launch_id')
    count=$(field '.count')
    [[ $launch_id =~ ^[A-Za-z0-9._:-]{1,63}$ ]] || fail nothing_launched "launch_id '$launch_id' must be 1-63 of [A-Za-z0-9._:-]"
    [[ $count =~ ^[0-9]+$ ]] || fail nothing_launched "count '$count' must be a whole number"
    group=$(field --arg d "$default_group" '.offering.machine_type // $d')
    pool=$(field '.bootstrap.pool // "default"')
    [ -n "$group" ] || fail nothing_launched "the offering names no node group and VPSIE_DEFAULT_GROUP is empty"
    group_id=$(vpsie_group_id "$group") || fail nothing_launched "listing node groups failed (HTTP $(last_status))"
    [ -n "$group_id" ] || fail nothing_launched "VPSie cluster $vpsie_cluster has no node group '$group'"

    # Idempotency: nodes tagged with this launch id count; only the missing ones are added.
    existing=$(machines "$launch_id") || fail nothing_launched "listing nodes failed (HTTP $(last_status))"
    missing=$((count - $(jq length <<<"$existing")))
    if [ "$dry_run" = true ] || [ "$missing" -le 0 ]; then answer_machines "$existing"; return; fi

    for ((i = 0; i < missing; i++)); do
        if ! node=$(vpsie_add_node "$group_id") || [ -z "$node" ]; then
            # Refused (4xx) before anything in this call: nothing changed. A 5xx, no answer (a
            # timeout may come after the request arrived) or an earlier success: it may have acted.
            [ "$i" -eq 0 ] && [[ $(last_status) == 4* ]] && fail nothing_launched "adding a node to group '$group' failed (HTTP $(last_status))"
            fail unknown "adding node $((i + 1)) of $missing to group '$group' failed (HTTP $(last_status))"
        fi
        # Between the add and the tag, a crash leaves an untagged node kscaler cannot see: the
        # README's limitation. The tags are what makes the next launch find this one.
        vpsie_tag_node "$node" "kscaler-cluster-$cluster" "kscaler-launch=$launch_id" "kscaler-pool=$pool" ||
            fail unknown "node $node was added but tagging it failed (HTTP $(last_status)): it is untagged"
    done
    launched=$(machines "$launch_id") || fail unknown "launched, but listing launch $launch_id failed"
    answer_machines "$launched"
}

terminate() {
    local ids current id node
    mapfile -t ids < <(field '.machine_ids // [] | .[]')
    current=$(machines) || fail nothing_launched "listing nodes failed (HTTP $(last_status))"
    for id in "${ids[@]}"; do
        [ "$(jq --arg id "$id" 'any(.[]; .id == $id and .protected)' <<<"$current")" = false ] ||
            fail nothing_launched "'$id' is protected (tag kscaler-protected=true)"
    done
    [ "$dry_run" = true ] || for id in "${ids[@]}"; do
        # Map the hostname back to the node's identifier; a node not listed is gone: success.
        node=$(jq -r --arg id "$id" '.[] | select(.id == $id) | .node' <<<"$current")
        [ -n "$node" ] || continue
        vpsie_delete_node "$node" || [ "$(last_status)" = 404 ] || fail unknown "deleting node $id failed (HTTP $(last_status))"
    done
    jq -cn '{protocol: 1, terminated: $ARGS.positional}' --args "${ids[@]}"
}

case "$operation" in
    list) all=$(machines) || fail nothing_launched "listing nodes failed (HTTP $(last_status))"; answer_machines "$all" ;;
    launch) launch ;;
    terminate) terminate ;;
    *) fail nothing_launched "unknown operation '$operation' (expected list, launch or terminate)" ;;
esac
