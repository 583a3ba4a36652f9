"""Turns `results.json` into what people read: the plain-text tables the run prints,
`BENCHMARKS.md` (the same tables in Markdown, the chart, the method) and the latency
chart `bench/latency.png`. Figures are only ever copied from the results, never typed.
"""

from __future__ import annotations

import math
from pathlib import Path

OVERHEAD_METHOD = (
    "relctl's own overhead = relctl's time for the figure (for a deployment: the entry's "
    "`date_created` → the `status_updated_at` relctl wrote, both on this machine's clock; "
    "for the burst: first write → every intent finished) minus moto's share, Σ over the AWS "
    "operations relctl made in that span (its own `relctl_aws_calls_total` diff, DynamoDB "
    "Streams polling excluded) of calls × moto's median time per call of that operation "
    "(scenario 6: raw unsigned JSON-protocol requests over one keep-alive connection, "
    "sequential, on the same moto after scenarios 1-2, so no client library's cost is in it). "
    "An operation scenario 6 did not time is charged the median of the timed ones (marked *). "
    "What remains is relctl's own work plus its waits: the stream poll (`poll_interval` 250 ms, "
    "so ~125 ms on average before the intent is even read), the ECS actuator's poll interval, "
    "the client-side rate limits and queueing; with concurrent calls (the burst) moto's share "
    "is its busy time as if it served one call at a time (it is one Python process)."
)


def fmt(v, unit: str = "", digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}{unit}"
    return f"{v:,}{unit}"


class Section:
    def __init__(self, title: str, headers: list[str] | None = None, rows: list[list] | None = None,
                 notes: list[str] | None = None):
        self.title, self.headers, self.rows, self.notes = title, headers or [], rows or [], notes or []


def count(result: dict, op: str) -> str:
    """A call count, with its non-ok outcomes: "4 (1 error)"."""
    n = result.get("by_operation", {}).get(op)
    if n is None:
        return "—"
    bad = result.get("non_ok", {}).get(op, {})
    return fmt(n) + (" (" + ", ".join(f"{v} {k}" for k, v in sorted(bad.items())) + ")" if bad else "")


def dnf(result: dict) -> str | None:
    return result.get("did_not_finish") or result.get("error")


def moto_share(calls: dict[str, float], medians: dict[str, float]) -> tuple[float, bool]:
    """Σ calls × median ms; True when an operation had no timing of its own."""
    if not medians:
        return float("nan"), True
    fallback = sorted(medians.values())[len(medians) // 2]
    total, estimated = 0.0, False
    for op, n in calls.items():
        if op in medians:
            total += n * medians[op]
        else:
            total += n * fallback
            estimated = True
    return total, estimated


def overheads(results: dict) -> list[dict]:
    """relctl's time minus moto's share, per figure that has both (see OVERHEAD_METHOD)."""
    medians = results.get("scenarios", {}).get("moto", {}).get("median_ms", {})
    out = []

    def add(name, ms, calls):
        if ms is None or not calls:
            return
        share, est = moto_share(calls, medians)
        out.append({"figure": name, "relctl_ms": ms, "calls": sum(calls.values()),
                    "moto_ms": share, "own_ms": ms - share, "estimated": est})
    sc = results.get("scenarios", {})
    lat = sc.get("latency", {})
    if not dnf(lat) and lat.get("controller_ms"):
        add("latency p50 (one deployment, 3 services)", lat["controller_ms"]["p50"],
            lat.get("calls_per_deployment", {}))
    for env, label in (("p10", "ssm_parameters, 10 services"), ("json", "ssm_json_document, 10 services"),
                       ("ecr", "ecr_tag, 10 services")):
        r = sc.get("calls", {}).get(env, {})
        if not dnf(r) and r.get("controller_s") is not None:
            add(f"one deployment, {label} (median of 3)", r["controller_s"] * 1000, r["by_operation"])
    for n, r in sorted(sc.get("ecs", {}).get("runs", {}).items(), key=lambda kv: int(kv[0])):
        if not dnf(r) and r.get("controller_s") is not None:
            add(f"ECS N={n} ({r['status']})", r["controller_s"] * 1000, r["by_operation"])
    b = sc.get("burst", {})
    if not dnf(b) and b.get("settled_s"):
        add(f"burst, {b['intents']} intents", b["settled_s"] * 1000, b["by_operation"])
    return out


def sections(results: dict) -> list[Section]:
    sc = results.get("scenarios", {})
    out: list[Section] = []

    # 1. latency
    lat = sc.get("latency", {})
    s = Section("1. Latency: intent → succeeded (pin-only, ssm_parameters, 3 services, sequential)")
    if dnf(lat):
        s.notes.append(f"DID NOT FINISH: {dnf(lat)}")
    if lat.get("observed_ms"):
        s.headers = ["measure", "p50 ms", "p90 ms", "p99 ms", "max ms"]
        for label, key in (("date_created → seen succeeded (GetItem every 10 ms)", "observed_ms"),
                           ("date_created → status_updated_at (relctl's own stamp)", "controller_ms"),
                           ("`relctl deploy` (the CLI, process start → exit)", "cli_ms")):
            st = lat[key]
            s.rows.append([label] + [fmt(st[k]) for k in ("p50", "p90", "p99", "max")])
        s.notes.append(f"{lat['deployments']} deployments written by `relctl deploy`, one at a time, "
                       f"{lat['succeeded']} succeeded (after one warm-up deployment); each release "
                       f"changes all 3 images; stream poll_interval 250 ms; a random 0-250 ms pause before "
                       f"each deployment keeps them from locking onto one phase of that poll; wall time "
                       f"{lat['wall_s']:.0f} s.")
        for bad in lat.get("not_succeeded", [])[:5]:
            s.notes.append(f"not succeeded: {bad['release_id']}: {bad['status']}: {bad['message']}")
        if lat.get("incomplete"):
            s.notes.append(f"stopped early: {lat['incomplete']}")
    out.append(s)

    # 2. calls
    calls = sc.get("calls", {})
    cols = [("p10", "ssm_parameters"), ("json", "ssm_json_document"), ("ecr", "ecr_tag"),
            ("resync", "resync pass")]
    s = Section("2. AWS calls per deployment, by kind (relctl_aws_calls_total diff; DynamoDB Streams excluded)")
    per_lat = {k: v for k, v in lat.get("calls_per_deployment", {}).items()}
    ops = sorted({op for c, _ in cols for op in calls.get(c, {}).get("by_operation", {})} | set(per_lat))
    s.headers = ["service operation"] + [label for _, label in cols] + ["latency run (3 svc), mean"]
    for op in ops:
        s.rows.append([op] + [count(calls.get(c, {}), op) for c, _ in cols] + [fmt(per_lat.get(op), digits=2)])
    s.rows.append(["total"] + [fmt(calls.get(c, {}).get("total")) for c, _ in cols]
                  + [fmt(sum(per_lat.values()), digits=2) if per_lat else "—"])
    s.rows.append(["status"] + [calls.get(c, {}).get("status", "—") if c != "resync" else "" for c, _ in cols] + [""])
    s.rows.append(["relctl time, median of 3 (ms)"]
                  + [fmt(calls[c]["controller_s"] * 1000) if calls.get(c, {}).get("controller_s") is not None
                     else "" for c, _ in cols[:3]] + ["", fmt(lat.get("controller_ms", {}).get("p50"))])
    s.notes.append("ssm_parameters / ssm_json_document / ecr_tag: the calls of one deployment of 10 services whose "
                   "images all change, after a warm-up deployment to the same environment, no actuator; the time "
                   "is the median of three such deployments (date_created → status_updated_at). resync pass: one "
                   "steady-state resync of that converged 10-service environment alone (a controller configured "
                   f"with only it, resync_interval = {calls.get('resync', {}).get('resync_interval', '5s')}), "
                   "scraped between two settled points around one `relctl_resyncs_total` increment.")
    s.notes.append("The controllers that count calls renew their lease every 5 min (lease.duration 10m), so "
                   "no lease write falls inside a measurement. \"(1 error)\": calls that AWS (moto) answered "
                   "with an error, e.g. a conditional write whose condition failed; they are counted in the total.")
    for c, label in cols:
        if dnf(calls.get(c, {})):
            s.notes.append(f"{label}: DID NOT FINISH: {dnf(calls[c])}")
        elif calls.get(c, {}).get("status") not in (None, "succeeded"):
            s.notes.append(f"{label}: {calls[c]['status']}: {calls[c].get('message')}")
        elif c != "resync" and calls.get(c, {}).get("same_calls_each_time") is False:
            s.notes.append(f"{label}: the three deployments made {calls[c]['totals_each']} calls (the first is shown)")
    out.append(s)

    # 3. ECS
    ecs = sc.get("ecs", {})
    s = Section("3. ECR-tag pin + ECS actuator (discover = \"tags\"), one deployment to stage")
    if dnf(ecs):
        s.notes.append(f"DID NOT FINISH: {dnf(ecs)}")
    runs = sorted(ecs.get("runs", {}).items(), key=lambda kv: int(kv[0]))
    s.headers = ["N services", "status", "intent → outcome s", "AWS calls", "env.stage tags set", "message"]
    for n, r in runs:
        if dnf(r):
            s.rows.append([n, "did not finish", "—", "—", "—", dnf(r)])
        else:
            msg = (r.get("message") or "").replace("\n", " ")
            s.rows.append([n, r["status"], fmt(r.get("controller_s"), digits=2), fmt(r["total"]),
                           f"{r['env_stage_tags_present']}/{n}", msg[:160] + ("…" if len(msg) > 160 else "")])
    if ecs:
        s.notes.append(f"ECS actuator poll_interval = {ecs.get('ecs_poll_interval')} for the benchmark "
                       "(default 15 s). Each N: ECR repositories uk.ac.wellcome/svc{i} with one image tagged "
                       "ref.<sha> and latest, services svc{i}-stage and svc{i}-prod (tagged deployment:service "
                       "and deployment:env, task definitions on :env.stage / :env.prod, desiredCount 0), "
                       "releases table wellcome-releases-ecs{N}, a release of the ref.<sha> URIs deployed to "
                       "stage with `relctl deploy`. moto runs no tasks and does not roll deployments out, "
                       "so this measures relctl's own work and calls, not a real rollout's duration; the "
                       "outcome and message are relctl's, as it wrote them.")
    out.append(s)
    if runs:
        ops = sorted({op for _, r in runs for op in r.get("by_operation", {})})
        s = Section("3b. ECS scenario: calls by operation", ["service operation"] + [f"N={n}" for n, _ in runs])
        for op in ops:
            s.rows.append([op] + [count(r, op) for _, r in runs])
        out.append(s)

    # 4. burst
    b = sc.get("burst", {})
    s = Section("4. Burst: intents written at once, newest per environment wins")
    if dnf(b):
        s.notes.append(f"DID NOT FINISH: {dnf(b)}")
    if b.get("settled_s") is not None:
        s.headers = ["figure", "value"]
        s.rows = [
            ["intents / environments", f"{b['intents']:,} / {b['environments']}"],
            ["written in (BatchWriteItem calls)", f"{b['write_s']:.2f} s ({b['batch_write_calls']})"],
            ["first write → every intent finished", f"{b['settled_s']:.1f} s"],
            ["intents finished per second", f"{b['intents_per_s']:.1f}"],
            ["environments whose newest succeeded", f"{b['newest_succeeded']}/{b['environments']}"],
            ["environments pinned at their newest", f"{b['pinned_newest']}/{b['environments']}"],
            ["older intents superseded / succeeded / other",
             f"{b['older_superseded']} / {b['older_succeeded']} / {b['older_other']}"],
            ["stream records read / reconciles run", f"{fmt(b.get('stream_records'))} / {fmt(b.get('reconciles'))}"],
            ["largest stream lag / queue depth / reconciles in flight seen",
             f"{fmt(b.get('max_stream_lag_s'), ' s', 1)} / {fmt(b.get('max_queue_depth'))} / {fmt(b.get('max_in_flight'))}"],
            ["AWS calls (Streams excluded)", fmt(b["total"])],
        ] + [[f"  {op}", count(b, op)] for op in b["by_operation"]]
        s.notes.append(b.get("note", ""))
    out.append(s)

    # 5. RSS
    r = sc.get("rss", {})
    s = Section("5. Controller memory (VmRSS) and a full resync")
    if dnf(r):
        s.notes.append(f"DID NOT FINISH: {dnf(r)}")
    s.headers = ["configuration", "VmRSS MiB", "VmHWM MiB", "resync wall s", "resync CPU s", "queue drain s"]
    idle = r.get("idle", {})
    if idle and not dnf(idle):
        s.rows.append(["idle, 1 project × 2 environments", fmt(idle["rss_mib"], digits=1),
                       fmt(idle["hwm_mib"], digits=1), "—", "—", "—"])
    for n, run in sorted(r.get("runs", {}).items(), key=lambda kv: int(kv[0])):
        if dnf(run):
            s.rows.append([f"{int(n):,} environments", "did not finish", "", "", "", dnf(run)])
            continue
        s.rows.append([f"{int(n):,} environments, at 'resync finished'", fmt(run["rss_at_resync_finished_mib"], digits=1),
                       "", fmt(run["resync_wall_s"], digits=2), fmt(run["resync_cpu_s"], digits=2), ""])
        s.rows.append([f"{int(n):,} environments, queue drained", fmt(run["rss_settled_mib"], digits=1),
                       fmt(run["hwm_mib"], digits=1), "", "", fmt(run["queue_drain_after_resync_s"], digits=1)])
    if r:
        s.notes.append(f"One project, N pin-only environments, empty releases table; resync_rate = "
                       f"{r.get('resync_rate', 0):,.0f}/s for the benchmark (default 10/s, which would take "
                       "N/10 s by design). Resync wall time is between the 'resync started' and 'resync "
                       "finished' log lines; CPU is utime+stime from /proc/PID/stat across the same span "
                       "(read when the bench saw each line). Each resync schedules a reconcile per "
                       "environment; 'queue drain' is the time after 'resync finished' until none is queued.")
    out.append(s)

    # 6. moto
    m = sc.get("moto", {})
    s = Section("6. moto's own cost per call, and relctl's own overhead")
    if dnf(m):
        s.notes.append(f"DID NOT FINISH: {dnf(m)}")
    if m.get("median_ms"):
        s.headers = ["operation", "moto median ms", "moto p90 ms"]
        for op, med in m["median_ms"].items():
            s.rows.append([op, fmt(med, digits=2), fmt(m["p90_ms"][op], digits=2)])
        for op, med in m.get("boto3_median_ms", {}).items():
            s.rows.append([f"{op} via boto3 (for comparison)", fmt(med, digits=2), ""])
        s.notes.append(f"{m['calls_per_operation']} calls each; {m['method']}.")
    out.append(s)
    ov = overheads(results)
    if ov:
        s = Section("6b. relctl's own overhead = relctl's time − Σ calls × moto median",
                    ["figure", "relctl ms", "AWS calls", "moto share ms", "relctl's own ms"])
        for o in ov:
            s.rows.append([o["figure"], fmt(o["relctl_ms"]), fmt(o["calls"], digits=1) if isinstance(o["calls"], float)
                           else fmt(o["calls"]), fmt(o["moto_ms"]) + ("*" if o["estimated"] else ""),
                           fmt(o["own_ms"])])
        s.notes.append("How: see \"Method: subtracting moto's cost\" (BENCHMARKS.md) or the end of this output.")
        out.append(s)
    return out


def text_table(headers: list[str], rows: list[list]) -> str:
    if not headers:
        return ""
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(headers))]
    widths[-1] = min(widths[-1], 100)

    def line(r):
        return "  ".join(str(c).ljust(widths[i]) if i < len(widths) - 1 else str(c) for i, c in enumerate(r))
    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def render_text(results: dict) -> str:
    out = [machine_line(results), ""]
    for s in sections(results):
        out.append(f"== {s.title}")
        if s.headers:
            out.append(text_table(s.headers, s.rows))
        for n in s.notes:
            if n:
                out.append(f"   {n}")
        out.append("")
    out += ["== Method: subtracting moto's cost", f"   {OVERHEAD_METHOD}", ""]
    return "\n".join(out)


def machine_line(results: dict) -> str:
    m, b = results.get("machine", {}), results.get("build", {})
    return (f"machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('memory_gib', 0):.1f} GiB, "
            f"Linux {m.get('kernel')}, load {m.get('loadavg_start')} → {m.get('loadavg_end')}; "
            f"{results.get('date')}; relctl {b.get('version')} "
            f"({b.get('profile')} build, {build_source(b)}); "
            f"moto {m.get('moto')}")


def build_source(b: dict) -> str:
    if b.get("given"):
        return "a given binary (--bin), commit not recorded"
    return f"built from commit {b.get('commit')}" + (" with uncommitted changes" if b.get("dirty") else "")


def md_escape(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(results: dict) -> str:
    m, b = results.get("machine", {}), results.get("build", {})
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by `scripts/bench` from bench/results.json (bench/report.py); do not edit by hand. -->",
        "",
        "relctl measured end to end: the real `relctl controller` and `relctl` CLI against a local "
        "[moto](https://github.com/getmoto/moto) server on a free loopback port, which the bench starts "
        "and stops itself. This is not a test: nothing is asserted, everything is measured and printed. "
        "moto is far slower than AWS per call and serves one call at a time, so absolute figures are "
        "moto-bound; scenario 6 measures moto's own per-call cost and subtracts it.",
        "",
        "## How these figures were made",
        "",
        f"- Command: `{results.get('command')}` (run `scripts/bench [--quick] [--release]`; "
        "`--quick` runs the smaller sizes)",
        f"- Date: {results.get('date')}",
        f"- Machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('memory_gib', 0):.1f} GiB memory, "
        f"Linux {m.get('kernel')}, Python {m.get('python')}, moto {m.get('moto')}; load average "
        f"{m.get('loadavg_start')} at the start, {m.get('loadavg_end')} at the end (other work on the "
        "machine shows here)",
        f"- relctl: {b.get('version')}, **{b.get('profile')} build** (`{b.get('binary')}`), {build_source(b)}",
        f"- Run time: {results.get('wall_s', 0):.0f} s",
        "",
        "Settings the bench changes from the defaults (each scenario says which apply): ECS actuator "
        "`poll_interval = \"200ms\"` (default 15 s); `resync_rate = 100000` in scenario 5 (default 10/s); "
        "`resync_interval = \"1h\"` where a periodic resync would disturb a measurement and `\"5s\"` for "
        "the resync pass in scenario 2; `lease.duration = \"10m\"`, `renew_every = \"5m\"` where calls "
        "are counted. Everything else is the default (`poll_interval` 250 ms, concurrency 8, the "
        "client-side rate limits).",
        "",
    ]
    for s in sections(results):
        out += [f"## {s.title}", ""]
        if s.headers:
            out.append("| " + " | ".join(md_escape(h) for h in s.headers) + " |")
            out.append("|" + "|".join(" --- " for _ in s.headers) + "|")
            for r in s.rows:
                out.append("| " + " | ".join(md_escape(c) for c in r) + " |")
            out.append("")
        for n in s.notes:
            if n:
                out += [n, ""]
        if s.title.startswith("1.") and results.get("chart"):
            out += ["![latency](bench/latency.png)", ""]
    out += [
        "## Method: subtracting moto's cost",
        "",
        OVERHEAD_METHOD,
        "",
        "Everything else is in `bench/results.json` (every sample, every call count with its "
        "outcome). The bench's code is in `bench/` (`bench.py` runs the scenarios of "
        "`scenarios.py` on the processes of `harness.py`; `report.py` writes this page).",
        "",
    ]
    return "\n".join(out)


def chart(results: dict, path: Path) -> bool:
    """Histogram and CDF of the latency samples; False when there are none."""
    lat = results.get("scenarios", {}).get("latency", {})
    obs, ctl = lat.get("samples_observed_ms") or [], lat.get("samples_controller_ms") or []
    if not obs:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (h, c) = plt.subplots(1, 2, figsize=(11, 4.2))
    lo, hi = min(obs + ctl), max(obs + ctl)
    n_bins = max(10, min(60, len(obs) // 4))
    edges = [lo + (hi - lo) * i / n_bins for i in range(n_bins + 1)]
    h.hist(obs, bins=edges, alpha=0.7, label="seen succeeded (GetItem poll, 10 ms)")
    h.hist(ctl, bins=edges, alpha=0.6, label="status_updated_at (relctl's stamp)")
    h.set_xlabel("ms from the entry's date_created")
    h.set_ylabel("deployments")
    h.legend(fontsize=8)
    for series, label in ((obs, "seen succeeded"), (ctl, "status_updated_at")):
        s = sorted(series)
        c.plot(s, [(i + 1) / len(s) for i in range(len(s))], label=label)
    st = lat["observed_ms"]
    for q in ("p50", "p90", "p99"):
        c.axvline(st[q], linestyle=":", color="grey")
        c.text(st[q], 0.5, f" {q} {st[q]:.0f} ms", rotation=90, fontsize=7, color="grey", va="center")
    c.set_xlabel("ms from the entry's date_created")
    c.set_ylabel("fraction of deployments")
    c.set_ylim(0, 1.01)
    c.legend(fontsize=8, loc="lower right")
    b = results.get("build", {})
    fig.suptitle(f"relctl intent → succeeded, {lat['deployments']} sequential deployments against moto "
                 f"({b.get('profile')} build, {results.get('date', '')[:10]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
