"""kscaler in a closed loop with `fleet.backend: proxmox`: the EC2 burst scenario's promises
(closed_loop_checks.py) hold when the workers are VMs cloned on the Proxmox stand-in
(ksandbox/proxmox.py, which stands in for a Proxmox VE cluster's API), with its nodes named
kscaler-<cluster_id>-<vmid> and carrying proxmox://<cluster_name>/<vmid>. The lease and state
stay in moto's DynamoDB; nothing else of AWS is used."""
import pytest

from closed_loop_checks import (BURST_NODES, BURST_PHASES, check_back_to_min_after_the_load_is_gone_and_the_window_passed,
                                check_every_pod_is_scheduled_within_two_runs_after_the_boot_delay,
                                check_never_more_than_max_nor_more_than_one_node_over_the_demand,
                                check_no_ghost_node_left_and_the_health_gate_never_tripped,
                                check_no_up_down_up_and_cooldowns_hold)
from conftest import play, scale_runs, scenario
from ksandbox.proxmox_machines import CLUSTER_NAME, CLUSTER_TAG_PREFIX, MACHINE_TYPE, WORKERS, tags_of

# The simulator's allocatable of a 2c-4g VM, as kscaler's sizes say it.
SIZES = {MACHINE_TYPE: WORKERS["sizes"][MACHINE_TYPE]}


@pytest.fixture(scope="module")
def burst(module_tmp):
    """min 1, max 5 on 2c-4g VMs: the burst needs 4 nodes, as on t3.large (cpu is the limit)."""
    return play(module_tmp, "burst-proxmox", scenario(BURST_PHASES, instance_sizes=SIZES), BURST_NODES, backend="proxmox")


def test_every_pod_is_scheduled_within_two_runs_after_the_boot_delay(burst):
    check_every_pod_is_scheduled_within_two_runs_after_the_boot_delay(burst)


def test_never_more_than_max_nor_more_than_one_node_over_the_demand(burst):
    check_never_more_than_max_nor_more_than_one_node_over_the_demand(burst)


def test_back_to_min_after_the_load_is_gone_and_the_window_passed(burst):
    check_back_to_min_after_the_load_is_gone_and_the_window_passed(burst)


def test_no_up_down_up_and_cooldowns_hold(burst):
    check_no_up_down_up_and_cooldowns_hold(burst)


def test_no_ghost_node_left_and_the_health_gate_never_tripped(burst):
    check_no_ghost_node_left_and_the_health_gate_never_tripped(burst)


def test_kscaler_acted_on_proxmox_vms_named_and_identified_as_the_backend_expects(burst):
    backends = {(r["report"] or {}).get("backend") for r in burst["runs"] if r["report"]}
    assert backends == {"proxmox"}, f"runs reported backends {backends}"
    launched = [i for t, direction, ids in scale_runs(burst) if direction == "up" for i in ids]
    assert launched and all(i.isdigit() for i in launched), f"launched machine ids should be VM ids: {launched}"
    cluster_id = burst["config"]["cluster_id"]
    lives = {i["instance_id"]: i for i in burst["instances"]}
    for vmid in launched:
        assert lives[vmid]["instance_type"] == MACHINE_TYPE and lives[vmid]["ready_at"] is not None, lives[vmid]
    vms = {str(vm["vmid"]): vm for vm in burst["proxmox_vms"]}
    for vmid, vm in vms.items():
        assert vm["resource"]["name"] == f"kscaler-{cluster_id}-{vmid}", vm
    workers = {n["name"]: n["provider_id"] for n in burst["api_nodes"] if n["name"].startswith("kscaler-")}
    assert workers == {f"kscaler-{cluster_id}-{vmid}": f"proxmox://{CLUSTER_NAME}/{vmid}" for vmid in vms}, \
        f"the API's worker Nodes {workers} should be the VMs {sorted(vms)}, named and identified as the backend expects"


def test_the_standin_holds_exactly_the_live_machines_at_the_end(burst):
    """Nothing leaked (no VM the simulator does not count as live, no half-made clone, nothing
    untagged) and every VM kscaler terminated is destroyed."""
    cluster_id = burst["config"]["cluster_id"]
    vms = {str(vm["vmid"]): vm for vm in burst["proxmox_vms"]}
    live = {i["instance_id"] for i in burst["instances"] if i["gone_at"] is None}
    assert set(vms) == live, f"the stand-in holds VMs {sorted(vms)}, the live machines are {sorted(live)}"
    assert len(live) == burst["samples"][-1]["instances"] == 1, f"expected min 1 at the end: {sorted(live)}"
    for vmid, vm in vms.items():
        assert CLUSTER_TAG_PREFIX + cluster_id in tags_of(vm["resource"]) and vm["status"] == "running", vm
    terminated = {i for t, direction, ids in scale_runs(burst) if direction == "down" for i in ids}
    gone = {i["instance_id"] for i in burst["instances"] if i["gone_at"] is not None}
    assert terminated, "kscaler terminated nothing: the test did not test anything"
    assert gone == terminated, f"machines gone {sorted(gone)}, kscaler terminated {sorted(terminated)}"
    assert not terminated & set(vms), f"terminated VMs still on the stand-in: {sorted(terminated & set(vms))}"
