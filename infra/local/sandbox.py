#!/usr/bin/env python3
"""The local sandbox: kscaler scaling a simulated cluster on moto + a real Prometheus.

    sandbox.py demo [--scenario FILE] [--out DIR]    both policies side by side, then summary + chart,
                                                     then `kscaler backtest` of both over the history
    sandbox.py run --config FILE [--scenario FILE]   one policy, live

Live, each tick (--interval) is one line with every policy's nodes, unschedulable pods and
action side by side, a banner marks each phase of the scenario, and a policy's reason is
printed when its decision changes (ksandbox/live.py); --verbose prints every run's own lines.

Needs the Python of the repository's .venv (boto3, PyYAML) and a kscaler binary (KSTEST_BINARY,
default .build/release/kscaler). Everything listens on 127.0.0.1 and is stopped on exit,
also on Ctrl-C.
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402

from ksandbox import live, report  # noqa: E402
from ksandbox.peers import REPO_ROOT, PeerError  # noqa: E402
from ksandbox.sandbox import Aborted, Sandbox, Timings, deep_merge  # noqa: E402
from ksandbox.scenario import ScenarioError, load  # noqa: E402

POLICIES = {
    "kscaler": (HERE / "configs/kscaler.yaml",
                "kscaler: pending pods' requests sized in one run, requests-based utilisation, short cooldowns"),
    "classic": (HERE / "configs/classic.yaml",
                "classic: 1 node per run, CPU usage > 70 % / < 30 %, 15 s cooldowns"),
}


def interrupt_on_sigterm():
    """SIGTERM stops the sandbox like Ctrl-C does: every process it started is stopped."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


class LivePrinter:
    """The side-by-side view (ksandbox/live.py) fed by every sandbox's run loop, each line
    printed once every policy has reached its tick."""

    def __init__(self, labels, phases, interval, printer):
        self.view = live.LiveView(labels, phases, interval)
        self.printer = printer
        self.lock = threading.Lock()

    def on_run(self, label, run):
        with self.lock:
            self._print(self.view.add(label, run))

    def finish(self, label):
        with self.lock:
            self._print(self.view.finish(label))

    def close(self):
        with self.lock:
            self._print(self.view.close())

    def _print(self, lines):
        for line in lines:
            self.printer(line)


def play(sandboxes, printer, after=None, finished=None):
    """Starts each sandbox and plays its scenario in its own thread; returns their results.
    `after(sandbox)` runs once its scenario is over, while its peers still run; `finished(label)`
    once its scenario is over or failed. Ctrl-C (KeyboardInterrupt in this thread) aborts them
    all and waits for their clean-up."""
    abort = sandboxes[0].abort
    results, failures = {}, []

    def worker(sandbox):
        try:
            with sandbox:
                if sandbox.on_run is None:
                    printer(f"{sandbox.label}: peers up (moto {sandbox.moto.endpoint}, Prometheus {sandbox.prometheus.url}), "
                            f"kscaler every {sandbox.timings.interval:g}s")
                else:
                    printer(f"{sandbox.label}: peers up (moto {sandbox.moto.endpoint}, Prometheus {sandbox.prometheus.url})")
                try:
                    results[sandbox.label] = sandbox.run_scenario()
                finally:
                    if finished is not None:
                        finished(sandbox.label)
                if after is not None:
                    after(sandbox)
        except Aborted:
            pass
        except BaseException as error:  # reported below; the other sandbox is stopped too
            failures.append(f"{sandbox.label}: {error}")
            abort.set()

    threads = [threading.Thread(target=worker, args=(s,), name=s.label) for s in sandboxes]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.2)
    except KeyboardInterrupt:
        printer("interrupted: stopping every process the sandbox started…")
        abort.set()
        for thread in threads:
            thread.join(timeout=60)
        raise
    if failures:
        raise PeerError("\n".join(failures))
    return [results[s.label] for s in sandboxes]


def write_outputs(results, out_dir, printer):
    out_dir.mkdir(parents=True, exist_ok=True)
    for result in results:
        result.save(out_dir / f"{result.label}-result.json")
    plain = [asdict(r) for r in results]
    summaries = [report.summarize(r) for r in plain]
    table = report.markdown_table(summaries, {label: text for label, (_, text) in POLICIES.items()})
    scenario = plain[0]
    header = (f"# Sandbox summary: {scenario['scenario_name']}\n\n"
              f"kscaler run every {scenario['interval']:g} s; a node is Ready {scenario['boot_delay']:g} s after its instance "
              f"starts; phases: " + ", ".join(f"{p['name']} {p['end'] - p['start']:g} s" for p in scenario["phases"]) + ".\n\n")
    (out_dir / "summary.md").write_text(header + table)
    (out_dir / "chart.svg").write_text(report.svg_chart(plain))
    printer("\n" + table)
    printer(f"written: {out_dir / 'summary.md'}, {out_dir / 'chart.svg'}, and each run's JSON in {out_dir}/*-result.json")
    for result in plain:
        for error in result["cluster_errors"]:
            printer(f"{result['label']}: simulator error: {error}")


def backtest(sandbox, binary, out_dir):
    """`kscaler backtest` of both sandbox policies over this sandbox's own Prometheus history
    (the scenario, start to end), run while that Prometheus is still up. Each policy's template
    gets this sandbox's cluster, table and Prometheus. Returns the human output, or why it failed
    (the demo's own results stand either way)."""
    base = sandbox.config
    shared = {key: base[key] for key in ("cluster_id", "table", "region", "prometheus") if key in base}
    workers = {key: base["workers"][key] for key in ("image_id", "subnets", "security_groups") if key in base.get("workers", {})}
    directory = out_dir / "backtest"
    directory.mkdir(parents=True, exist_ok=True)
    arguments = []
    for label, (template, _) in POLICIES.items():
        path = directory / f"{label}.yaml"
        config = deep_merge(yaml.safe_load(template.read_text()), dict(shared, workers=workers))
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        arguments += ["--config", str(path)]
    command = [str(binary), "backtest", "--from", f"{sandbox.started_at:.3f}", "--to", f"{sandbox.ended_at:.3f}",
               "--step", f"{sandbox.timings.interval:g}s", "--boot-time", f"{sandbox.scenario.boot_delay:g}s",
               "--chart", str(out_dir / "backtest.svg")] + arguments
    try:
        done = subprocess.run(command, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "kscaler backtest did not finish within 120 s"
    except OSError as error:
        return f"kscaler backtest could not start: {error}"
    if done.returncode != 0:
        return f"kscaler backtest failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    (out_dir / "backtest.txt").write_text(done.stdout)
    return done.stdout + f"\nwritten: {out_dir / 'backtest.txt'}, {out_dir / 'backtest.svg'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="kscaler and the classic policy on the same scenario, side by side")
    one = sub.add_parser("run", help="one policy on a scenario")
    one.add_argument("--config", required=True, help="a kscaler config (see configs/); the sandbox adds endpoints and network")
    for p in (demo, one):
        p.add_argument("--scenario", default=str(HERE / "scenarios/quiet-burst-quiet.toml"))
        p.add_argument("--out", default=str(REPO_ROOT / "sandbox-out"))
        p.add_argument("--interval", type=float, default=3.0, help="seconds between kscaler runs (default 3)")
        p.add_argument("--verbose", action="store_true",
                       help="every run's own lines (decision, state, first reason, drains) instead of one line per tick")
    args = parser.parse_args()
    interrupt_on_sigterm()

    binary = Path(os.environ.get("KSTEST_BINARY", REPO_ROOT / ".build/release/kscaler"))
    out_dir = Path(args.out)
    printer = lambda line: print(line, flush=True)  # noqa: E731
    abort = threading.Event()
    timings = Timings(interval=args.interval, run_timeout=10)
    try:
        scenario = load(args.scenario)
        if args.command == "demo":
            chosen = [(label, path) for label, (path, _) in POLICIES.items()]
        else:
            chosen = [(Path(args.config).stem, Path(args.config))]
        # One line per tick, the policies side by side; --verbose: every run's own lines.
        view = None if args.verbose else LivePrinter([label for label, _ in chosen], scenario.phases, timings.interval, printer)
        sandboxes = [Sandbox(label, scenario, path, out_dir / label, binary, timings, printer=printer, label=label, abort=abort,
                             on_run=view and view.on_run)
                     for label, path in chosen]
        opening = (f"scenario {scenario.name!r}: " + ", ".join(f"{p.name} {p.duration:g}s" for p in scenario.phases)
                   + f"; policies: {', '.join(label for label, _ in chosen)} (each in its own sandbox)")
        if view is None:
            printer(opening)
        else:
            printer(f"scenario {scenario.name!r}: " + ", ".join(f"{p.name} {p.duration:g}s" for p in scenario.phases))
            for line in live.wrap(f"policies: {', '.join(label for label, _ in chosen)}, each in its own sandbox, "
                                  f"kscaler run every {timings.interval:g}s", live.WIDTH, "", "  "):
                printer(line)
        started = time.time()
        replays = {}
        # The demo ends with a backtest of both policies over the kscaler sandbox's own history.
        after = (lambda sandbox: replays.update({sandbox.label: backtest(sandbox, binary, out_dir)})
                 if sandbox.label == "kscaler" else None) if args.command == "demo" else None
        try:
            results = play(sandboxes, printer, after, finished=view and view.finish)
        finally:
            if view is not None:
                view.close()
        write_outputs(results, out_dir, printer)
        for text in replays.values():
            printer("\n" + text)
        printer(f"sandbox finished in {time.time() - started:.0f}s")
    except (PeerError, ScenarioError) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sandbox: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
