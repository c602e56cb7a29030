"""The demo's live view (ksandbox/live.py) on recorded runs: fixtures/demo-runs.json holds every
run of both policies from one real `make demo` (each report as kscaler printed it, trimmed to
what the view reads; record_demo_runs.py re-records it). No peers needed."""
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from ksandbox import live
from ksandbox.driver import Run
from ksandbox.sandbox import verbose_lines

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROW = re.compile(r"^ *(\d+)s  ")
BANNER = re.compile(r"^── (\S+), (\d+)–(\d+) s")


@pytest.fixture(scope="module")
def demo():
    return json.loads((FIXTURES / "demo-runs.json").read_text())


def rendered(demo, **changes):
    return live.render(demo["policies"], demo["phases"], demo["interval"], **changes)


def reason_blocks(lines):
    """(row time, label, the reason's text with its lines joined) for each reason printed."""
    blocks, t = [], None
    for line in lines:
        if ROW.match(line):
            t = int(ROW.match(line).group(1))
        elif (match := re.match(r"^ {8}(\w+): (.*)$", line)) and t is not None:
            blocks.append([t, match.group(1), match.group(2)])
        elif blocks and line.startswith(" " * 9) and not line.strip().startswith(("nodes", "──")) and t is not None:
            blocks[-1][2] += " " + line.strip()
    return [tuple(block) for block in blocks]


def test_every_line_fits_in_100_columns(demo):
    lines = rendered(demo)
    assert lines
    assert max(len(line) for line in lines) <= 100, [line for line in lines if len(line) > 100]


def test_one_row_per_tick_with_both_policies_side_by_side(demo):
    lines = rendered(demo)
    rows = [line for line in lines if ROW.match(line)]
    # 135 s at one run every 3 s: ticks 0…135, each policy's run on it.
    assert [int(ROW.match(row).group(1)) for row in rows] == list(range(0, 136, 3))
    burst = next(row for row in rows if row.lstrip().startswith("18s"))
    # kscaler launches the 3 nodes the 12 pending pods need; classic one.
    assert burst.split() == ["18s", "1", "1", "0", "12", "▲3", "1", "1", "0", "12", "▲1"]
    first_scale_down = next(row for row in rows if row.lstrip().startswith("90s"))
    assert first_scale_down.split()[5] == "▼1" and first_scale_down.split()[10] == "·"


def test_a_banner_exactly_where_the_phase_changes(demo):
    lines = rendered(demo)
    banners = [(i, BANNER.match(line)) for i, line in enumerate(lines) if BANNER.match(line)]
    assert [(m.group(1), int(m.group(2))) for _, m in banners] == [("quiet", 0), ("burst", 15), ("quiet", 75)]
    for index, match in banners:
        following_row = next(line for line in lines[index + 1:] if ROW.match(line))
        assert int(ROW.match(following_row).group(1)) == int(match.group(2))
    assert "batch 14" in lines[banners[1][0]]


def test_a_reason_only_when_the_decision_changes(demo):
    blocks = reason_blocks(rendered(demo))
    for label, runs in demo["policies"].items():
        # Independently of the view: a run's decision is its action, the first and last
        # reasons' codes, and the other actions it took.
        def decision(run):
            report = run["report"]
            codes = [r["code"] for r in report["decision"]["reasons"]]
            return (json.dumps(report["decision"]["action"].get("type")), report["decision"]["action"].get("count"),
                    len(report["decision"]["action"].get("victims", [])), codes[:1] + codes[-1:],
                    sorted(a["kind"] for a in report["actions"] if a["kind"] not in ("launch", "drain_start")))
        changed = [round(run["t"] // 3 * 3) for i, run in enumerate(runs) if i == 0 or decision(run) != decision(runs[i - 1])]
        printed = [t for t, who, _ in blocks if who == label]
        assert printed == changed
        assert len(printed) < len(runs) / 2
    steady = [(t, who) for t, who, text in blocks if "steady:" in text]
    # kscaler: at the start and once back at its minimum; classic: at the start and after its burst.
    assert steady == [(0, "kscaler"), (0, "classic"), (36, "kscaler"), (78, "classic"), (129, "kscaler")]


def test_a_long_reason_wraps_between_words_and_loses_none(demo):
    lines = rendered(demo)
    runs = {(round(run["t"] // 3 * 3), label): run for label, policy_runs in demo["policies"].items() for run in policy_runs}
    checked = 0
    for index, line in enumerate(lines):
        match = re.match(r"^ {8}(\w+): (.*)$", line)
        if not match or ROW.match(line):
            continue
        row = next(ROW.match(previous) for previous in reversed(lines[:index]) if ROW.match(previous))
        expected = live.PolicyTick(runs[(int(row.group(1)), match.group(1))]).reason
        pieces = [match.group(2)]
        for following in lines[index + 1:]:
            if not following.startswith(" " * 17) or following[17] == " ":
                break
            pieces.append(following[17:])
        # Every line holds whole words, and together they are the reason, word for word.
        assert " ".join(pieces) == " ".join(expected.split())
        assert all(len(piece.split()) >= 1 and piece == piece.strip() for piece in pieces)
        checked += len(pieces) > 2
    assert checked >= 5  # the drains' and cooldowns' reasons take three lines


def test_wrap_breaks_only_between_words():
    text = "scale-up blocked: cooldown 15s since the last scale-up ends t=33s (in 12s); " * 4
    lines = live.wrap(text, 40, "    classic: ", " " * 13)
    assert max(len(line) for line in lines) <= 40
    assert " ".join(line.strip() for line in lines).split()[1:] == text.split()
    # A figure stays with its unit.
    assert live.wrap("xxxxxxxx 6 GiB requested, 50 % used", 10, "", "") == ["xxxxxxxx", "6 GiB", "requested,", "50 % used"]
    # A single word longer than a whole line is the one thing split (a URL in an error).
    url = "http://127.0.0.1:9090/" + "x" * 60
    split = live.wrap(f"prometheus {url} refused", 40, "", "  ")
    assert max(len(line) for line in split) <= 40 and "".join(line.strip() for line in split) == f"prometheus{url}refused"


def test_timestamps_read_on_the_scenario_clock(demo):
    run = next(run for run in demo["policies"]["classic"] if run["number"] == 8)
    reason = live.PolicyTick(run).reason
    assert "T" not in re.sub(r"[^0-9T:Z-]", " ", reason).split()
    # The cooldown of the launch at 18 s (15 s) ends 33 s into the scenario.
    assert "ends t=33s (in 12s)" in reason


def test_the_order_runs_arrive_in_does_not_change_the_view(demo):
    """Live, the two sandboxes' runs arrive interleaved by wall-clock time; render() feeds one
    policy's runs after the other's."""
    view = live.LiveView(list(demo["policies"]), demo["phases"], demo["interval"])
    arrivals = sorted(((run["finished"], label, run) for label, runs in demo["policies"].items() for run in runs),
                      key=lambda item: item[0])
    lines = []
    for _, label, run in arrivals:
        lines += view.add(label, run)
    for label in demo["policies"]:
        lines += view.finish(label)
    assert lines + view.close() == rendered(demo)


def test_ticks_wait_for_every_policy_still_playing(demo):
    kscaler, classic = demo["policies"]["kscaler"], demo["policies"]["classic"]
    view = live.LiveView(["kscaler", "classic"], demo["phases"], demo["interval"])
    assert view.add("kscaler", kscaler[0]) == [] and view.add("kscaler", kscaler[1]) == []
    first = view.add("classic", classic[0])
    assert [line for line in first if ROW.match(line)] == [line for line in first if line.lstrip().startswith("0s")]
    # classic stops early (its sandbox failed): kscaler's tick shows with classic's columns blank.
    after = view.finish("classic")
    row = next(line for line in after if ROW.match(line))
    assert row.split() == ["3s", "1", "1", "0", "0", "·"]


def test_a_run_without_a_report_or_skipped_is_shown(demo):
    run = dict(demo["policies"]["kscaler"][3])
    failed = dict(run, report=None, exit_code=4, stderr_tail="kscaler: the table kscaler-sandbox does not exist")
    skipped = dict(demo["policies"]["kscaler"][4])
    skipped["report"] = dict(skipped["report"], outcome="skipped")
    lines = live.render({"kscaler": demo["policies"]["kscaler"][:3] + [failed, skipped]}, demo["phases"], 3)
    assert any(line.split()[-1:] == ["err"] and line.lstrip().startswith("9s") for line in lines)
    assert "        kscaler: exit 4, no report: kscaler: the table kscaler-sandbox does not exist" in lines
    assert any(line.lstrip().startswith("12s") and line.split()[-1] == "skip" for line in lines)
    assert max(len(line) for line in lines) <= 100


def test_verbose_stream_unchanged(demo):
    """`--verbose` prints what the demo printed before the live view: demo-verbose.txt is that
    stream as the unchanged code printed it live during the recorded run (its run lines, in the
    order printed), byte for byte."""
    every = sorted((run for runs in demo["policies"].values() for run in runs), key=lambda run: run["started"])
    printed = []
    for record in every:
        run = Run(**{key: record[key] for key in Run.__dataclass_fields__})
        sample = SimpleNamespace(**record["sample"]) if record["sample"] else None
        printed.append(verbose_lines(run, record["started"] - record["t"], sample, record["evictions"]))
    assert "\n".join(printed) + "\n" == (FIXTURES / "demo-verbose.txt").read_text()


def test_a_run_for_a_tick_already_printed_gets_its_own_line(demo):
    kscaler = demo["policies"]["kscaler"]
    view = live.LiveView(["kscaler"], demo["phases"], demo["interval"])
    assert any(line.lstrip().startswith("0s") for line in view.add("kscaler", kscaler[0]))
    late = view.add("kscaler", dict(kscaler[1], t=2.5))
    assert [line.split()[:2] for line in late] == [["0s", "1"]]  # no second banner, no repeated reason


def test_node_pools_one_policy():
    """`sandbox.py run --config configs/pools.yaml --scenario scenarios/two-pools.toml`, recorded:
    one column, and each pool's nodes, pending pods and the pods no pool fits with the reason."""
    pools = json.loads((FIXTURES / "pools-runs.json").read_text())
    lines = live.render(pools["policies"], pools["phases"], pools["interval"])
    assert max(len(line) for line in lines) <= 100
    assert [BANNER.match(line).group(1) for line in lines if BANNER.match(line)] == ["quiet", "burst", "quiet"]
    rows = [line for line in lines if ROW.match(line)]
    assert len(rows) == len(pools["policies"]["pools"]) and all(len(row.split()) == 6 for row in rows)
    launch = next(row for row in rows if "▲" in row)
    assert launch.split()[0] == "15s" and launch.split()[-1] == "▲5"  # 2 general + 3 batch in one run
    text = " ".join(line.strip() for line in lines)
    assert "pools: general 1 -> 3 (6 pending), batch spot 0 -> 3 (10 pending), fitting no pool: ml/gpu-00021, ml/gpu-00022" in text
    blocks = reason_blocks(lines)
    assert len(blocks) < len(rows) / 2
