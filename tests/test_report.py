"""The SLA budget report: its numbers are the experiment's, its sections are all there, its SLA table is
right, the command works on every shipped scenario, and the HTML renders in a real headless Chromium
with every image loaded and no console error."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import matplotlib

matplotlib.use("Agg", force=True)

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SCENARIOS
from scipy import stats as sps

import deploysim
from deploysim.cli import main
from deploysim.durations import format_duration_s
from deploysim.experiments.replication import replication_row
from deploysim.readable import percent_text
from deploysim.report import build, render
from deploysim.report.build import (
    BUDGET_CAUSES,
    fmt_ci,
    fmt_count,
    fmt_credit,
    fmt_hours,
    fmt_pct,
    fmt_prob,
    fmt_rate,
    fmt_seconds,
    fmt_signed,
)
from deploysim.report.policy_text import bake_words, pipeline_words, policy_text
from deploysim.report.sensitivity import BASE, sensitivity, settings_of
from deploysim.run import simulate

SEED = 3
REPS = 5
MONTHS = 0.2
TARGET = 99.99
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTIONS = ["At a glance", "SLA target and allowed downtime", "Expected downtime", "Breach probability",
            "Expected service credit", "Where the budget goes", "One month in detail",
            "The deployment policy in words", "DORA four keys", "What would change the picture most",
            "How these figures are made"]


@pytest.fixture(scope="module")
def aws():
    return deploysim.load_scenario(SCENARIOS / "aws-typical.yaml")


@pytest.fixture(scope="module")
def made(aws, tmp_path_factory):
    """A small report of aws-typical: experiment, example month, sweep of the flag pipeline and the alarms."""
    exp = deploysim.monte_carlo(aws, replications=REPS, seed=SEED, months=MONTHS, sla_target_pct=TARGET,
                                workers=2, progress=False)
    example = simulate(aws, seed=build.example_seed(SEED), months=MONTHS, sla_target_pct=TARGET)
    sens = sensitivity(aws, replications=2, seed=SEED, months=MONTHS, sla_target_pct=TARGET, pipelines=["flag"],
                       workers=2, progress=False)
    report = build.build_report(aws, exp, example, sens, command="deploysim report scenarios/aws-typical.yaml")
    out = tmp_path_factory.mktemp("report")
    render.write_report(report, out)
    return {
        "exp": exp,
        "example": example,
        "sens": sens,
        "report": report,
        "out": out,
        "md": (out / "report.md").read_text(encoding="utf-8"),
        "html": (out / "index.html").read_text(encoding="utf-8"),
    }


def _row(md: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is `first_cell`."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r} in the report")


# ---------------------------------------------------------------- content


def test_sla_table_holds_the_correct_budgets(made):
    rows = {r["target_pct"]: r["allowed_s"] for r in build.sla_table(TARGET)}
    assert rows == {99.9: 2592.0, 99.95: 1296.0, 99.99: 259.2, 99.999: 25.92}
    md = made["md"]
    assert _row(md, "99.9%")[1:3] == ["43.2 min", "2592 s"]
    assert _row(md, "99.95%")[1:3] == ["21.6 min", "1296 s"]
    assert _row(md, "99.99%")[1:4] == ["4.32 min", "259.2 s", "← this report's target"]
    assert _row(md, "99.999%")[1:3] == ["25.9 s", "25.92 s"]
    # The chosen target is added to the table when it is not one of the four.
    assert [r["target_pct"] for r in build.sla_table(99.5)] == [99.5, 99.9, 99.95, 99.99, 99.999]


def test_every_section_is_present_in_both_formats(made):
    md, page = made["md"], made["html"]
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings == SECTIONS
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in page
    for pipeline in ("code", "config", "flag"):
        assert f"### Pipeline {pipeline}" in md


def test_downtime_breach_and_credit_are_the_experiments(made):
    exp, md = made["exp"], made["md"]
    summary = exp.summary().set_index("metric")
    reps = exp.replications
    for metric, label in (("downtime_s", "downtime per month (request-weighted over regions)"),
                          ("worst_region_downtime_s", "downtime per month of the worst region")):
        x = reps[metric].to_numpy(float)
        ci = deploysim.experiments.stats.mean_ci(x)
        assert _row(md, label)[1:5] == [fmt_seconds(x.mean()), fmt_ci(*ci, fmt_seconds), fmt_seconds(np.median(x)),
                                        fmt_seconds(np.quantile(x, 0.9))]
    up = summary.loc["worst_region_uptime_pct"]
    assert _row(md, "monthly uptime of the worst region")[1:3] == [
        fmt_pct(up["mean"]), fmt_ci(up["mean_ci_low"], up["mean_ci_high"], fmt_pct)]
    # Breach probability: k of n, exact Clopper-Pearson interval.
    k, n = int(reps["sla_breach"].sum()), len(reps)
    ci = sps.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert (f"In **{k} of {n}** replications the worst region's monthly uptime fell below 99.99%: a breach "
            f"probability of **{fmt_prob(k / n)}**, 95% interval {fmt_ci(ci.low, ci.high, fmt_prob)}") in md
    credit = reps["service_credit_pct"].to_numpy(float)
    assert _row(md, "service credit, % of the bill")[1] == fmt_credit(credit.mean())
    glance = next(line for line in md.splitlines() if line.startswith("- Expected service credit"))
    if np.ptp(credit) == 0:  # no spread: the headline says why there is no interval, in words
        assert glance.endswith("of the bill (no interval: every replication owed the same).")
    else:
        assert "of the bill [" in glance
    assert "| 99.9% | 10% |" in md and "| 99% | 25% |" in md and "| 95% | 100% |" in md
    # s3-standard's first tier (99.9%) is below the 99.99% target: the report says so and names the fitting table.
    assert "Tables whose first tier is 99.99%: dynamodb-standard (--credit-table)." in md


def test_where_the_budget_goes_splits_the_downtime(made):
    exp, md = made["exp"], made["md"]
    reps = exp.replications
    down = reps["downtime_s"].mean()
    total = 0.0
    for key, label in BUDGET_CAUSES:
        mean = reps[key].mean()
        total += mean
        cells = _row(md, label)
        assert cells[1] == fmt_seconds(mean)
        assert cells[3] == f"{100 * mean / down:.1f}%"
        assert cells[4] == f"{100 * mean / 259.2:.1f}%"
    assert total == pytest.approx(down, rel=1e-9)  # the causes add up to the downtime
    fr = reps["false_rollbacks"].to_numpy(float)
    assert f"**False rollbacks**: {fmt_count(fr.mean())} per month" in md
    assert "cost lead time, not downtime" in md
    assert _row(md, "bad changes caught by alarms per month")[1] == fmt_count(reps["caught_by_alarm"].mean())


def test_dora_four_keys_are_the_experiments(made):
    reps, md = made["exp"].replications, made["md"]
    assert _row(md, "deployment frequency (per week)")[1] == f"{reps['deployments_per_week'].mean():.1f}"
    assert _row(md, "lead time for changes (median of a month)")[1] == fmt_hours(reps["lead_time_p50_h"].mean())
    assert _row(md, "change failure rate")[1] == fmt_rate(reps["change_failure_rate"].mean())
    ttr = reps["ttr_p50_s"].to_numpy(float)
    assert _row(md, "time to restore (median of a month)")[1] == fmt_seconds(np.nanmean(ttr))


def test_example_month_is_replication_1_of_the_experiment(made):
    row = replication_row(made["example"])
    first = made["exp"].replications.iloc[0]
    assert first["replication"] == 0
    assert row["downtime_s"] == pytest.approx(first["downtime_s"])
    assert row["changes"] == first["changes"]
    change = made["report"].data["example_change"]
    if change is not None:  # the costliest bad change's blast radius is in the report
        ch = made["example"].changes.set_index("change_id").loc[change["change_id"]]
        assert ch["failed_requests"] == max(made["example"].changes.query("bad")["failed_requests"])
        assert f"change {change['change_id']}" in made["md"]


def test_policy_in_words_says_what_the_scenario_says(aws):
    words = pipeline_words("code", aws.policy.pipelines["code"], aws)
    assert words["intro"].startswith("About 10 changes a week enter the **code** pipeline; 8% are bad")
    prod1 = words["stages"][2]
    assert "a one-box of 1 host, baking 1 h and until it has served 100 Create requests" in prod1
    assert "then 1 AZ, baking 12 h and until it has served 1,000 Create requests" in prod1
    assert "then the remaining AZs, baking 2 h" in prod1
    assert "batches of at most 33%" in prod1
    assert "rolls the version back automatically, everywhere the change went" in words["watch"]
    assert "in batches of at most 33% of the hosts to revert, 5 min each" in words["watch"]
    assert words["blockers"].startswith("A production stage (and each of its steps) starts only Mon–Fri 09:00–17:00")
    assert "Region_Aggregate in ALARM" in words["blockers"]
    flag = pipeline_words("flag", aws.policy.pipelines["flag"], aws)
    assert flag["blockers"].startswith("A production stage (and each of its steps) starts at any hour")
    assert "keep serving" in flag["stages"][1]
    no_safety = policy_text(deploysim.load_scenario(SCENARIOS / "no-safety.yaml"))
    assert "No alarm is watched: a bad change is found only by people." in no_safety
    assert bake_words(deploysim.scenario.schema.Bake(duration=0)) == "with no bake"


def test_sensitivity_moves_each_setting_one_rung_on_common_seeds(made, aws):
    sens = made["sens"]
    v = sens.variants
    names = [s.name for s in settings_of(aws, ["flag"])]
    assert names == ["flag first-wave bakes", "flag later-wave bakes", "flag batch size (largest share)",
                     "alarm datapoints to alarm (M of N)"]
    # The flag batch size is already 100%: one rung up is the scenario itself and is not run.
    assert list(v[v["setting"] == "flag batch size (largest share)"]["to"]) == ["50%"]
    assert set(v[v["setting"] == "flag first-wave bakes"]["to"]) == {"15 min", "30 min"}
    assert set(v[v["setting"] == "alarm datapoints to alarm (M of N)"]["to"]) == {
        "1 of 2, 2 of 3, 2 of 5, 3 of 5, 4 of 5", "3 of 3, 4 of 4, 4 of 5, 5 of 5, 6 of 6"}
    # Paired differences from the scenario, replication by replication.
    reps = sens.experiment.replications
    base = reps[reps["policy"] == BASE].set_index("replication")["downtime_s"]
    for r in v.to_dict("records"):
        mine = reps[reps["policy"] == r["label"]].set_index("replication")["downtime_s"]
        assert r["d_downtime_s"] == pytest.approx((mine - base).mean())
    assert sens.ranking["score"].is_monotonic_decreasing
    assert set(sens.ranking["setting"]) == set(v["setting"])
    # The report lists the sweep's top settings and every variant.
    md = made["md"]
    for r in v.to_dict("records"):
        assert _row(md, r["setting"]) is not None
    for name in sens.top()["setting"]:
        assert f"**{name}** — clear effect on" in md


def test_figures_are_files_beside_the_markdown_and_inline_in_the_html(made):
    report, out, md, page = made["report"], made["out"], made["md"], made["html"]
    names = [f.name for f in report.figures]
    assert {"uptime-histogram", "budget-burndown", "error-rate", "cdf", "sensitivity"} <= set(names)
    assert report.notes == []
    for fig in report.figures:
        path = out / "figures" / f"figure-{fig.name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](figures/figure-{fig.name}.png)" in md
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == len(names)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    # Self-contained: no script, no stylesheet or image from anywhere else.
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)\s*=\s*"(?!data:)', page)
    assert "http://" not in page and "https://" not in page


def test_html_escapes_text_and_keeps_bold():
    rep = build.Report("t", [build.Paragraph("a <b> & **bold** `code`")], {})
    page = render.to_html(rep)
    assert "<p>a &lt;b&gt; &amp; <strong>bold</strong> <code>code</code></p>" in page


def test_tiny_and_normal_figures_read_as_people_write_them():
    """Three significant digits, no scientific notation, and a floor (1 ms, 0.001%) below which a
    non-zero figure says '< floor'; a difference keeps its sign."""
    assert [fmt_seconds(v) for v in (0.0, 5.48e-4, 0.0749, 0.9996, 25.92, 259.2, 2.5 * 86400, 4 * 86400)] == [
        "0 s", "< 1 ms", "74.9 ms", "1 s", "25.9 s", "4.32 min", "60 h", "4 days"]
    assert [fmt_signed(v, fmt_seconds) for v in (0.0, 5.48e-4, -5.48e-4, 0.548, -42.0)] == [
        "+0 s", "+< 1 ms", "−< 1 ms", "+548 ms", "−42 s"]
    assert [fmt_credit(v) for v in (0.0, 1.6e-05, 0.0123, 10.0, 25.0)] == ["0%", "< 0.001%", "0.0123%", "10%", "25%"]
    assert [percent_text(v) for v in (-1.6e-05, -4.5)] == ["−< 0.001%", "−4.5%"]
    assert fmt_seconds(float("nan")) == fmt_credit(None) == fmt_signed(float("nan"), fmt_seconds) == "n/a"
    # The text tables' compact durations: no false zero either.
    assert [format_duration_s(v) for v in (0.0, 5.48e-4, 25.92, 4320.0)] == ["0.0s", "<0.1s", "25.9s", "1h12m"]


def test_the_report_has_no_scientific_notation(made):
    """Tiny shares and differences (a month's failed requests, a sweep's downtime deltas) read as numbers."""
    for text in (made["md"], made["html"]):
        prose = re.sub(r"data:image/png;base64,[^\"]+", "", text)
        assert re.findall(r"\d(?:\.\d+)?e[-+]\d+", prose) == []


# ---------------------------------------------------------------- the command


@pytest.mark.parametrize("name", ["aws-typical", "startup-fast", "no-safety", "local-fleet"])
def test_report_command_works_on_every_shipped_scenario(name, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", str(SCENARIOS / f"{name}.yaml"), "--sla", "99.99", "-n", "2",
                                       "--months", "0.1", "--sensitivity-replications", "0", "--workers", "1",
                                       "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith(f"# SLA budget report: {name}")
    assert "No sensitivity sweep was run" in md
    assert "replications per variant, not" not in md  # one replication count: nothing to explain
    assert (out / "index.html").stat().st_size > 10_000
    assert "warning" not in result.output


def test_report_command_with_its_sweep(tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(main, ["report", str(SCENARIOS / "startup-fast.yaml"), "-n", "3", "--months", "0.05",
                                       "--sensitivity-replications", "2", "--sensitivity-pipeline", "code",
                                       "--workers", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| code one-box bakes | 30 min | 15 min |" in md
    assert "--sensitivity-pipeline code" in md
    # Progress on stderr, a line per phase, though stderr is not a terminal here.
    assert "The sensitivity sweep below runs 2 replications per variant, not 3" in md  # counts differ: said
    for phase in ("phase 1 of 3: 3 replication(s) of startup-fast", "phase 2 of 3: the example month",
                  "phase 3 of 3: sensitivity sweep, 2 replication(s) per variant", "building the report"):
        assert phase in result.stderr
    assert "blog" not in md  # no editorial asides
    description = deploysim.load_scenario(SCENARIOS / "startup-fast.yaml").description
    assert description not in md.split("## At a glance")[0]  # the headline is the run's, not a stale description


@pytest.mark.parametrize("args, message", [
    (["--sensitivity-pipeline", "nope"], "unknown pipeline(s) 'nope'"),
    (["--credit-table", "nope"], "Invalid value for '--credit-table'"),
    (["--sla", "100"], "Invalid value for '--sla'"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path):
    result = CliRunner().invoke(main, ["report", str(SCENARIOS / "startup-fast.yaml"), "-o", str(tmp_path / "r"),
                                       "-q", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "r").exists()


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["report", str(SCENARIOS / "startup-fast.yaml"), "-o", str(blocker / "r"),
                                       "-n", "1", "--months", "0.05", "--sensitivity-replications", "0", "-q",
                                       "--workers", "1"])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot write to")


# ---------------------------------------------------------------- in a real browser


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip(
            "no `chromium` on PATH: install Debian's chromium package (`make system-deps`) to run the browser test"
        )
    return path


CHECK_IMAGES = "Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth, alt: i.alt}))"
# A laptop's screen: the report must read there without zooming or scrolling sideways.
VIEWPORT = {"width": 1366, "height": 768}
# As displayed: each image's width, each table's width against the room its container gives it, the page's width.
CHECK_LAYOUT = """(() => {
  const room = el => { const s = getComputedStyle(el);
                       return el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); };
  return {
    page: {scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth},
    images: Array.from(document.images).map(i => ({alt: i.alt, width: i.getBoundingClientRect().width})),
    tables: Array.from(document.querySelectorAll("table")).map(t => ({
      head: t.rows[0].innerText.slice(0, 60), scroll: t.scrollWidth, room: room(t.parentElement)})),
  };
})()"""


def _render_with_playwright(chromium: str, url: str) -> tuple[list[dict], list[str], str, dict]:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url[:80]}"))
            page.goto(url, wait_until="load")
            images = page.evaluate(CHECK_IMAGES)
            title = page.title()
            layout = page.evaluate(CHECK_LAYOUT)
        finally:
            browser.close()
    return images, errors, title, layout


def _render_with_devtools(chromium: str, url: str) -> tuple[list[dict], list[str], str, dict]:
    """The same check over Chromium's DevTools protocol directly (for when playwright's driver cannot start)."""
    from tornado.websocket import websocket_connect

    with tempfile.TemporaryDirectory() as profile:
        # Its own process group: Chromium's helper processes go down with it before the profile is removed.
        proc = subprocess.Popen([chromium, *CHROMIUM_ARGS, "--remote-debugging-port=0", f"--user-data-dir={profile}",
                                 "about:blank"], stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            port = None
            for line in proc.stderr:
                m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                if m:
                    port = int(m.group(1))
                    break
            assert port, "chromium did not open its DevTools port"
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            return asyncio.run(_devtools_session(websocket_connect, ws_url, url))
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _wait_group_gone(proc.pid)


def _wait_group_gone(pgid: int, timeout_s: float = 10.0) -> None:
    """Wait until no process of the group is left (they exit asynchronously after SIGKILL)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


async def _devtools_session(connect, ws_url: str, url: str) -> tuple[list[dict], list[str], str, dict]:
    conn = await connect(ws_url, max_message_size=64 * 1024 * 1024)
    counter, errors = [0], []

    async def call(method: str, **params):
        counter[0] += 1
        mine = counter[0]
        conn.write_message(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(conn.read_message(), 30))
            if msg.get("id") == mine:
                return msg.get("result", {})
            _collect(msg, errors)

    for domain in ("Runtime", "Log", "Page"):
        await call(f"{domain}.enable")
    await call("Emulation.setDeviceMetricsOverride", width=VIEWPORT["width"], height=VIEWPORT["height"],
               deviceScaleFactor=1, mobile=False)
    await call("Page.navigate", url=url)
    while True:
        msg = json.loads(await asyncio.wait_for(conn.read_message(), 60))
        if msg.get("method") == "Page.loadEventFired":
            break
        _collect(msg, errors)
    images = (await call("Runtime.evaluate", expression=CHECK_IMAGES, returnByValue=True))["result"]["value"]
    title = (await call("Runtime.evaluate", expression="document.title", returnByValue=True))["result"]["value"]
    layout = (await call("Runtime.evaluate", expression=CHECK_LAYOUT, returnByValue=True))["result"]["value"]
    conn.close()
    return images, errors, title, layout


def _collect(msg: dict, errors: list[str]) -> None:
    method, params = msg.get("method"), msg.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
        errors.append(f"console.error: {params.get('args')}")
    elif method == "Runtime.exceptionThrown":
        errors.append(f"pageerror: {params.get('exceptionDetails', {}).get('text')}")
    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        errors.append(f"log: {params['entry'].get('text')}")


def _render(chromium: str, url: str) -> tuple[list[dict], list[str], str, dict]:
    try:
        return _render_with_playwright(chromium, url)
    except ImportError:
        return _render_with_devtools(chromium, url)
    except Exception as error:  # playwright's driver could not start: talk to Chromium directly
        if "playwright" not in type(error).__module__:
            raise
        return _render_with_devtools(chromium, url)


@pytest.fixture(scope="module")
def rendered(made):
    """The report's HTML as headless Chromium shows it on a 1366 × 768 laptop screen."""
    return _render(_chromium(), (made["out"] / "index.html").resolve().as_uri())


def test_html_renders_in_headless_chromium_with_every_image_loaded(made, rendered):
    images, errors, title, _ = rendered
    assert title == "SLA budget report: aws-typical"
    assert len(images) == len(made["report"].figures) >= 5
    broken = [i["alt"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert broken == []
    assert errors == []


def test_html_reads_on_a_laptop_screen_without_sideways_scrolling(made, rendered):
    """At 1366 × 768 every figure is shown at least 500 px wide and no table is wider than its room."""
    layout = rendered[3]
    assert len(layout["images"]) == len(made["report"].figures)
    assert [i["alt"] for i in layout["images"] if i["width"] < 500] == []
    assert [t["head"] for t in layout["tables"] if t["scroll"] > t["room"]] == []
    assert len(layout["tables"]) >= 5
    assert layout["page"]["scroll"] <= layout["page"]["client"]


def test_devtools_fallback_sees_images_and_errors(tmp_path):
    """The fallback path itself: a page with one good image, one broken image and a console error."""
    chromium = _chromium()
    png = build.figure_png(_small_figure())
    import base64

    page = tmp_path / "p.html"
    page.write_text(f'<html><head><title>x</title></head><body><img alt="good" src="data:image/png;base64,'
                    f'{base64.b64encode(png).decode()}"><img alt="bad" src="data:image/png;base64,AAAA">'
                    '<script>console.error("boom")</script></body></html>')
    images, errors, title, layout = _render_with_devtools(chromium, page.as_uri())
    assert title == "x"
    assert [(i["alt"], i["complete"] and i["width"] > 0) for i in images] == [("good", True), ("bad", False)]
    assert any("boom" in e for e in errors)
    assert layout["page"]["client"] == VIEWPORT["width"]  # the laptop screen was emulated


def _small_figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [0, 1])
    return fig

