"""relctl's end-to-end benchmark (run it as `scripts/bench [--quick] [--release]`).

Starts moto on a free loopback port per scenario group, runs the real `relctl`
controller binary and CLI against it, and measures: deployment latency (intent →
succeeded), AWS calls per deployment by pin kind and per resync pass, the ECR-tag + ECS
scenario at 5 and 50 services, a burst of intents, the controller's memory and CPU
around a full resync, and moto's own per-call cost (subtracted to give relctl's own
overhead). Prints the tables, writes bench/results.json, bench/latency.png and
BENCHMARKS.md. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import report
import scenarios
from harness import DidNotFinish, Pids

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "pins": (scenarios.pins_group, ("latency", "calls", "moto"), 2400),
    "ecs": (scenarios.ecs_group, ("ecs",), 900),
    "burst": (scenarios.burst_group, ("burst",), 1200),
    "rss": (scenarios.rss_group, ("rss",), 2400),
}


def machine() -> dict:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"nproc": int(nproc or os.cpu_count() or 0), "cpu": cpu, "memory_gib": mem_kb / 1024 / 1024,
            "kernel": platform.release(), "python": platform.python_version(), "loadavg_start": loadavg()}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build_info(relctl: Path, profile: str) -> dict:
    def git(*args):
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None
    version = subprocess.run([str(relctl), "--version"], capture_output=True, text=True).stdout.strip()
    return {"profile": profile, "binary": str(relctl.relative_to(ROOT)) if relctl.is_relative_to(ROOT) else str(relctl),
            "version": version, "commit": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"))}


class Backstop(Exception):
    pass


def run_group(name: str, fn, budget: float, ctx) -> dict:
    """One group under a hard time limit (SIGALRM), beside the deadlines its waits check."""
    def alarm(_sig, _frame):
        raise Backstop(f"{name}: did not finish within its {budget:.0f}s budget")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(budget))
    try:
        return fn(ctx)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--relctl", type=Path, required=True, help="the relctl binary")
    ap.add_argument("--profile", default="debug")
    ap.add_argument("--moto", type=Path, required=True, help="moto_server")
    ap.add_argument("--work", type=Path, required=True, help="scratch directory (logs, configs, pids)")
    ap.add_argument("--quick", action="store_true", help="the small sizes")
    ap.add_argument("--only", default="", help=f"comma-separated groups: {','.join(GROUPS)}")
    ap.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.json and latency.png go")
    ap.add_argument("--md", type=Path, default=ROOT / "BENCHMARKS.md", help="the Markdown page to write")
    ap.add_argument("--no-write-md", action="store_true", help="do not write the Markdown page")
    ap.add_argument("--command", default="scripts/bench", help="the command line, for the record")
    ap.add_argument("--given-binary", action="store_true",
                    help="the binary was not built from this work tree (--bin): its commit is unknown")
    ap.add_argument("--render-only", action="store_true", help="re-render from an existing results.json")
    args = ap.parse_args()

    results_path, chart_path = args.out / "results.json", args.out / "latency.png"
    if args.render_only:
        results = json.loads(results_path.read_text())
        print(report.render_text(results))
        if not args.no_write_md:
            args.md.write_text(report.render_markdown(results))
        return 0

    # SIGTERM (scripts/bench's trap) unwinds like Ctrl-C: every group's `finally` stops
    # its controllers and moto.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_start = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:6.1f}s] {msg}", flush=True)

    mach = machine()
    mach["moto"] = subprocess.run([str(args.moto.parent / "python"), "-c", "import moto; print(moto.__version__)"],
                                  capture_output=True, text=True).stdout.strip()
    ctx = scenarios.Ctx(relctl=args.relctl.resolve(), moto=args.moto.resolve(), work=args.work,
                        pids=Pids(args.work), quick=args.quick, say=say)
    results = {
        "command": args.command, "quick": args.quick,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": mach, "build": build_info(ctx.relctl, args.profile), "scenarios": {},
    }
    if args.given_binary:
        results["build"].update(commit=None, dirty=False, given=True)
    wanted = [g for g in (args.only.split(",") if args.only else GROUPS) if g]
    failed = []
    for name in wanted:
        fn, keys, budget = GROUPS[name]
        say(f"=== group {name}: {', '.join(keys)}")
        try:
            got = run_group(name, fn, budget, ctx)
            results["scenarios"].update(got if len(keys) > 1 else {keys[0]: got})
        except (DidNotFinish, Backstop) as e:
            say(f"group {name} did not finish: {e}")
            failed.append(name)
            for k in keys:
                results["scenarios"].setdefault(k, {"did_not_finish": str(e)})
        except Exception as e:  # report the rest of the run; the traceback is for the log
            traceback.print_exc()
            failed.append(name)
            for k in keys:
                results["scenarios"].setdefault(k, {"error": f"{type(e).__name__}: {e}"})
        # Each group writes as it goes, so a later failure loses nothing.
        results["wall_s"] = time.monotonic() - t_start
        results_path.write_text(json.dumps(results, indent=1, sort_keys=False, default=str) + "\n")

    results["machine"]["loadavg_end"] = loadavg()
    results["chart"] = report.chart(results, chart_path)
    results["overheads"] = report.overheads(results)
    results["wall_s"] = time.monotonic() - t_start
    results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print()
    print(report.render_text(results))
    if not args.no_write_md:
        args.md.write_text(report.render_markdown(results))
        say(f"wrote {results_path.relative_to(ROOT) if results_path.is_relative_to(ROOT) else results_path}, "
            f"{chart_path.name if results['chart'] else '(no chart)'} and {args.md.name}")
    say(f"done in {results['wall_s']:.0f} s" + (f"; groups with problems: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
