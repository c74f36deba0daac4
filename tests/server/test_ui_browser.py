"""The web UI in a real browser: Playwright driving Debian's Chromium against a real ``loopline server``.

Screenshots of the main pages go to docs/screenshots/ when ``LOOPLINE_SCREENSHOTS=1`` (so a normal run
leaves the tree clean).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import serve_loopline
from ui_seed import LONG_POINTS, Seeded, pipeline_step, put_job, seed, seed_traffic, store_context

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parents[2] / "docs/screenshots"

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    home = tmp_path_factory.mktemp("ui-browser")
    # No loop controller: the seeded rollouts stay where the seed put them.
    with serve_loopline(home, check_log=True, env={"LOOPLINE_CONTROLLER_INTERVAL": "0"}) as url:
        yield url, seed(url, home)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records console errors and uncaught exceptions; the test fails on any."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = context.new_page()
    p.set_default_timeout(30_000)
    errors: list[str] = []
    p.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    p.errors = errors
    yield p
    context.close()
    assert not errors, errors


def _shot(page: Any, name: str) -> None:
    if os.environ.get("LOOPLINE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _rows(page: Any) -> list[str]:
    return [
        str(x)
        for x in page.eval_on_selector_all("#runs-table tbody tr", "rs => rs.map(r => r.dataset.runId)")
    ]


def test_every_page_loads_without_console_errors(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    for path, name in [
        ("/ui/", "experiments"),
        (f"/ui/experiments/{s.experiment_id}", "runs"),
        (f"/ui/runs/{s.run_ids['run-03']}", "run"),
        ("/ui/models", "models"),
        (f"/ui/models/{s.model}", "model"),
        (f"/ui/lineage?uri=runs:/{s.parent}", "lineage"),
        (f"/ui/compare?run={s.run_ids['run-01']}&run={s.run_ids['run-02']}", "compare-params"),
        ("/ui/deployments", "deployments"),
        ("/ui/loop", "loop"),
        (f"/ui/events?uri=rollouts:/{s.loop.rejected if s.loop else 1}", "events"),
        ("/ui/monitors", "monitors"),
        ("/ui/datasets", "datasets"),
        (f"/ui/datasets/{s.dataset}", "dataset"),
        ("/ui/features", "features"),
        ("/ui/features/customer_stats", "feature-view"),
        ("/ui/pipelines", "pipelines"),
        (f"/ui/jobs/{s.jobs.failed if s.jobs else ''}", "job-failed"),
        (f"/ui/pipelines/runs/{s.pipelines.failed if s.pipelines else ''}", "pipeline-run"),
    ]:
        answer = page.goto(url + path)
        assert answer.status == 200, path
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").first.is_visible()
        _shot(page, name)
    assert not page.errors


def test_browser_root_lands_on_the_ui(site: tuple[str, Seeded], page: Any) -> None:
    url, _ = site
    page.goto(url + "/")
    assert page.url == url + "/ui/"
    assert page.locator("h1").inner_text() == "Experiments"


def test_runs_table_filters_and_sorts(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    page.goto(f"{url}/ui/experiments/{s.experiment_id}")
    assert len(_rows(page)) == 30
    # Sort by the lr param: a click on its header (htmx swaps the table), then again for descending.
    page.click("th[data-column='params.lr'] a")
    page.wait_for_selector("th[data-column='params.lr'][aria-sort='ascending']")
    by_lr = [s.run_ids[n] for n in sorted(s.lr, key=lambda n: s.lr[n])]
    assert _rows(page) == by_lr
    assert "sort=params.lr" in page.url  # the URL is pushed: a reload or a shared link shows the same
    page.click("th[data-column='params.lr'] a")
    page.wait_for_selector("th[data-column='params.lr'][aria-sort='descending']")
    assert _rows(page) == by_lr[::-1]
    # Filter with the search_runs grammar, typed into the labelled field and submitted with Enter.
    page.get_by_label("Filter", exact=True).fill("metrics.loss < 0.06")
    page.get_by_label("Filter", exact=True).press("Enter")
    page.wait_for_function("document.getElementById('runs-total').textContent !== '30'")
    expected = [r for r in by_lr[::-1] if s.loss[_name(s, r)] < 0.06]
    assert _rows(page) == expected
    assert page.locator("#runs-total").inner_text() == str(len(expected))
    _shot(page, "runs-filtered")
    # A bad filter says why, in the page, and keeps the form.
    page.get_by_label("Filter", exact=True).fill("metrics.loss <")
    page.get_by_label("Filter", exact=True).press("Enter")
    assert "runs-error" in page.wait_for_selector("[role=alert]").get_attribute("id")
    assert page.get_by_label("Filter", exact=True).input_value() == "metrics.loss <"
    # The browser logs the 400 it was answered; that one is expected, and the only one.
    assert page.errors == [
        "console: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page.errors.clear()


def _name(s: Seeded, run_id: str) -> str:
    return next(n for n, r in s.run_ids.items() if r == run_id)


def test_metric_chart_renders_the_servers_points(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    page.goto(f"{url}/ui/runs/{s.long_run}")
    chart = page.wait_for_selector("figure.chart[data-loaded='true']")
    data = page.evaluate("() => window.looplineCharts['loss'].data")
    xs, ys, smoothed = data  # x, the raw points, and their moving average (none yet: the same)
    assert smoothed == ys
    assert int(chart.get_attribute("data-total")) == LONG_POINTS
    assert chart.get_attribute("data-exact") == "false"
    assert 2 < len(xs) < LONG_POINTS and xs == sorted(xs)
    assert max(ys) > 5  # the spike at step 4321 is drawn
    assert page.locator("figure.chart canvas").count() == 1
    _shot(page, "run-chart")
    # Zoom by dragging across the plot: the chart asks for the range and gets exact points.
    box = page.locator("figure.chart .u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.70, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.72, y, steps=5)
    page.mouse.up()
    page.wait_for_selector("figure.chart[data-zoomed='true']")
    zx = page.evaluate("() => window.looplineCharts['loss'].data[0]")
    assert chart.get_attribute("data-exact") == "true"
    assert zx == list(range(int(zx[0]), int(zx[-1]) + 1))  # every step in the range, none skipped
    assert 0.65 * LONG_POINTS < zx[0] < zx[-1] < 0.77 * LONG_POINTS


def _ema(ys: list[float | None], weight: float) -> list[float | None]:
    out: list[float | None] = []
    last, n = 0.0, 0
    for y in ys:
        if y is None:
            out.append(None)
            continue
        last, n = last * weight + (1 - weight) * y, n + 1
        out.append(last / (1 - weight**n))
    return out


def test_smoothing_slider_redraws_a_moving_average_by_keyboard(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    page.goto(f"{url}/ui/runs/{s.run_ids['run-07']}")
    page.wait_for_selector("figure.chart[data-key='loss'][data-loaded='true']")
    slider = page.get_by_label("Smoothing")
    slider.focus()
    page.keyboard.press("End")  # 0.99
    for _ in range(9):
        page.keyboard.press("ArrowLeft")  # 0.90
    assert page.locator("#smoothing-value").inner_text() == "0.9"
    xs, ys, smoothed = page.evaluate("() => window.looplineCharts['loss'].data")
    assert xs == list(range(20)) and ys[0] == 1 + s.lr["run-07"]
    assert smoothed == pytest.approx(_ema(ys, 0.9))
    assert smoothed[-1] > ys[-1] + 0.05  # the average still remembers the early, higher losses


def test_compare_selected_runs_overlays_their_curves(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    names = ["run-01", "run-02", "run-05"]
    page.goto(f"{url}/ui/experiments/{s.experiment_id}")
    for n in names:
        page.get_by_label(f"Select {n} to compare").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/ui/compare?run=*")
    assert page.locator("h1").inner_text() == "Compare 3 runs"
    page.wait_for_selector("figure.chart[data-key='loss'][data-loaded='true']")
    data = page.evaluate("() => window.looplineCharts['loss'].data")
    assert len(data) == 1 + 2 * len(names)  # x, then each run's raw and smoothed points
    assert data[0] == list(range(20))
    for i in range(len(names)):  # the page lists the runs in the order the table ticked them
        rid = page.locator("#compared-runs tbody tr").nth(i).get_attribute("data-run-id")
        lr = s.lr[_name(s, rid)]
        assert data[1 + 2 * i] == pytest.approx([1 / (step + 1) + lr for step in range(20)])
    assert (
        sorted(
            _name(s, r)
            for r in page.eval_on_selector_all(
                "svg.parallel path.run-line", "ps => ps.map(p => p.dataset.runId)"
            )
        )
        == names
    )
    _shot(page, "compare")


def test_lineage_view_navigates_by_click(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    page.goto(f"{url}/ui/lineage?uri=runs:/{s.parent}")
    child = f"runs:/{s.child}"
    assert page.locator(f"li.node[data-uri='{child}'] .relation").inner_text().endswith("parent_of")
    page.click(f"li.node[data-uri='{child}'] a[data-lineage-link]")
    page.wait_for_url("**/ui/lineage?uri=runs%3A%2F" + s.child)
    # Now the child is the object: its parent is upstream, the model version it produced downstream.
    assert page.locator(".lineage-col.center li.node").get_attribute("data-uri") == child
    assert page.locator(f"li.node[data-uri='runs:/{s.parent}']").count() == 1
    version = page.locator(f"li.node[data-uri='models:/{s.model}/2']")
    assert version.count() == 1
    version.locator("a.open").click()
    page.wait_for_url(f"**/ui/models/{s.model}#v2")
    assert "@champion" in page.locator("tr#v2").inner_text()


def test_artifact_browser_previews_tables_images_and_sandboxed_reports(
    site: tuple[str, Seeded], page: Any
) -> None:
    url, s = site
    page.goto(f"{url}/ui/runs/{s.artifacts_run}")
    listing = page.get_by_role("list", name="Files in the artifact root")
    listing.get_by_role("link", name="data/").focus()
    page.keyboard.press("Enter")  # the browser works from the keyboard: links, swapped in by htmx
    page.get_by_role("link", name="sample.csv").click()
    table = page.locator("#artifact-preview table")
    assert table.locator("thead th").all_inner_texts() == ["city", "customers"]
    assert table.locator("tbody tr").count() == 50
    page.get_by_role("link", name="artifacts").click()  # back to the root by the folder crumbs
    page.get_by_role("link", name="loss.png").wait_for(state="detached")  # inside plots/, not listed here
    page.get_by_role("link", name="plots/").click()
    page.get_by_role("link", name="loss.png").click()
    image = page.locator("#artifact-preview img")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('#artifact-preview img').complete")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 20]
    page.get_by_role("link", name="artifacts").click()
    page.get_by_role("link", name="report.html").click()
    frame = page.frame_locator("#artifact-preview iframe")
    assert frame.locator("#r").inner_text() == "Drift report"
    page.evaluate("() => document.getElementById('artifacts-h').scrollIntoView()")
    _shot(page, "run-artifacts")
    report = next(f for f in page.frames if "artifacts/raw" in f.url)
    assert report.title() == "Drift"  # its script (which sets the title to "ran") did not run
    # The sandbox blocked it, and Chromium says so on the console: that, and nothing else.
    assert all("Blocked script execution" in e and "sandboxed" in e for e in page.errors), page.errors
    assert page.errors
    page.errors.clear()


def test_deployment_weights_update_live(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    page.goto(f"{url}/ui/deployments/churn")
    shares = "() => [...document.querySelectorAll('#routes [data-share]')].map(e => e.textContent)"
    assert page.evaluate(shares) == ["90%", "10%"]
    # The traffic chart draws the seeded requests (5 answered, one of them a 500) ...
    page.wait_for_selector("#traffic-chart[data-loaded='true']", timeout=10_000)
    drawn = "() => window.looplineCharts['deployment-traffic'].data[1].reduce((a, b) => a + (b || 0), 0)"
    assert page.evaluate(drawn) == 5
    assert page.evaluate("() => Math.max(...window.looplineCharts['deployment-traffic'].data[2])") == 20
    assert s.home
    seed_traffic(store_context(s.home))  # ... and five more that come while the page stays open
    page.wait_for_function(f"() => ({drawn})() === 10", timeout=15_000)
    page.evaluate("() => { window.looplineSamePage = true; }")  # gone if the page reloaded
    _shot(page, "deployment")
    # The rollout moves on through the API while the page stays open: the page follows by itself.
    routes = [
        {"model": "models:/churn-model/1", "weight": 50},
        {"model": "models:/churn-model/2", "weight": 50},
    ]
    answer = httpx.post(
        f"{url}/api/2.0/loopline/deployments/set",
        json={"name": "churn", "routes": routes, "comment": "canary 50%"},
        timeout=30,
    )
    answer.raise_for_status()
    page.wait_for_function(f"() => ({shares})().join() === '50%,50%'", timeout=10_000)
    assert page.locator("#revision").inner_text() == "3"
    assert page.locator("#revisions tbody tr").first.get_attribute("data-revision") == "3"
    assert "canary 50%" in page.locator("#revisions tbody tr").first.inner_text()
    assert page.evaluate("() => window.looplineSamePage") is True  # no reload, no navigation


def test_dataset_diff_of_two_versions_chosen_in_the_form(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    page.goto(f"{url}/ui/datasets/{s.dataset}")
    assert page.get_by_label("From").input_value() == "1" and page.get_by_label("To").input_value() == "2"
    page.get_by_role("button", name="Compare").click()
    page.wait_for_selector("#schema-diff")
    assert page.locator("#schema-diff tr[data-change='added'] th").inner_text() == "spend"
    assert page.locator("#profile-diff tr[data-shifted='true']").count() == 2
    page.evaluate("() => document.getElementById('diff-h').scrollIntoView()")
    _shot(page, "dataset-diff")


def test_monitor_charts_the_drift_share_of_each_run(site: tuple[str, Seeded], page: Any) -> None:
    url, s = site
    assert s.monitor
    page.goto(f"{url}/ui/monitors/{s.monitor.name}")
    page.wait_for_selector("figure.series-chart[data-loaded='true']")
    xs, shares, threshold = page.evaluate("() => window.looplineCharts['drift_share'].data")
    assert len(xs) == 3 and xs == sorted(xs) and threshold == [0.5] * 3
    assert shares[-1] == pytest.approx(2 / 3) and shares[0] < 0.5
    assert page.locator("figure.series-chart canvas").count() == 1
    drifted = page.locator("#drift-columns tr[data-drifted='true'] th").all_inner_texts()
    assert [t.split()[0] for t in drifted] == ["age", "plan"]
    _shot(page, "monitor")
    with page.expect_popup() as popup:
        page.get_by_role("link", name="The HTML report").click()
    report = popup.value
    report.wait_for_load_state()
    assert "Dataset drift detected" in report.locator(".verdict").inner_text()
    report.close()


def test_a_running_pipelines_dag_follows_it_until_it_finishes(site: tuple[str, Seeded], page: Any) -> None:
    from loopline.clock import now_ms
    from loopline.pipelines.sql_store import SqlPipelineStore

    url, s = site
    assert s.pipelines and s.home
    run_id = s.pipelines.running
    page.goto(f"{url}/ui/pipelines/runs/{run_id}")
    state = "n => document.querySelector(`g[data-node='${n}']`).dataset.status"
    assert page.evaluate(state, "train") == "running"
    page.evaluate("() => { window.looplineSamePage = true; }")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if f"/pipelines/runs/{run_id}" in r.url else None)
    # The runner moves on while the page stays open: train done, evaluate running.
    ctx = store_context(s.home)
    store = SqlPipelineStore(ctx.engine, workspace=ctx.workspace, actor=ctx.actor)
    t = now_ms()
    store.progress(
        run_id,
        finished=[pipeline_step(run_id, "train", "succeeded", t - 5000, 5000)],
        started=["evaluate"],
        start_time=t,
    )
    page.wait_for_function(f"() => ({state})('evaluate') === 'running'", timeout=10_000)
    assert page.evaluate(state, "train") == "succeeded"
    _shot(page, "pipeline-live")
    store.progress(
        run_id,
        finished=[
            pipeline_step(run_id, "evaluate", "succeeded", t, 800),
            pipeline_step(run_id, "register", "succeeded", t + 900, 100),
        ],
    )
    store.finish_run(run_id, "succeeded", None)
    page.wait_for_selector("#pipeline-live[data-status='succeeded']", timeout=10_000)
    assert page.evaluate(state, "register") == "succeeded"
    assert page.get_attribute("#pipeline-live", "hx-trigger") is None
    seen = len(polls)
    page.wait_for_timeout(2500)  # longer than a poll: none comes once the run has finished
    assert len(polls) == seen and seen >= 2
    assert page.evaluate("() => window.looplineSamePage") is True


def test_a_jobs_progress_moves_live_on_the_jobs_page(site: tuple[str, Seeded], page: Any) -> None:
    from loopline.clock import now_ms

    url, s = site
    assert s.jobs and s.home
    ctx = store_context(s.home)
    put_job(ctx, s.jobs.running)  # its server's heartbeat: a job silent for 30 s reads as dead
    page.goto(f"{url}/ui/jobs")
    row = f"#jobs tr[data-job='{s.jobs.running}']"
    value = f'() => document.querySelector("{row} progress").value'
    assert page.evaluate(value) == 30
    put_job(ctx, s.jobs.running, done=90, message="checking blobs: 90")
    page.wait_for_function(f"() => ({value})() === 90", timeout=10_000)
    assert "90 of 120 (75%)" in page.locator(row).inner_text()
    _shot(page, "jobs")
    put_job(ctx, s.jobs.running, status="succeeded", done=120, finished_ms=now_ms(), result="{}")
    page.wait_for_selector(f"{row}[data-status='succeeded']", timeout=10_000)
    assert page.get_attribute("#jobs-live", "data-live") == "false"  # nothing runs: it stopped asking
