"""The web UI over HTTP: pages, paging, filters, chart data, static files and the vendored files' hashes.

The browser's view of the same pages is in test_ui_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import numpy as np
import pytest
from support import serve_loopline
from ui_seed import ARTIFACTS, LONG_POINTS, PIPELINE_NODES, RUNS, Seeded, seed

from loopline.server.ui.compare import PLOT_HEIGHT, PLOT_TOP
from loopline.server.ui.downsample import min_max
from loopline.server.ui.lineage_view import page_of
from loopline.server.ui.pipeline_view import BOX_H, BOX_W, layers

STATIC = Path(__file__).parents[2] / "src/loopline/server/ui/static"
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    home = tmp_path_factory.mktemp("ui")
    # No loop controller: the seeded rollouts stay where the seed put them.
    with serve_loopline(home, check_log=True, env={"LOOPLINE_CONTROLLER_INTERVAL": "0"}) as url:
        yield url, seed(url, home)


class _Page(HTMLParser):
    """What the tests read of a page: its asset URLs, the run rows' IDs and texts, and links."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.rows: list[str] = []
        self.links: dict[str, str] = {}  # rel -> href
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.assets.append(str(a["src"]))
        if tag == "link" and a.get("href"):
            self.assets.append(str(a["href"]))
        if tag == "tr" and a.get("data-run-id"):
            self.rows.append(str(a["data-run-id"]))
        if tag == "a" and a.get("rel") and a.get("href"):
            self.links[str(a["rel"])] = str(a["href"])
        if a.get("id"):
            self.ids.add(str(a["id"]))


def _get(
    url: str, params: list[tuple[str, str]] | None = None, **headers: str
) -> tuple[httpx.Response, _Page]:
    answer = httpx.get(url, params=params, headers={**HTML, **headers}, timeout=30)
    page = _Page()
    page.feed(answer.text)
    return answer, page


def _pages(url: str, s: Seeded) -> list[str]:
    return [
        "/ui/",
        f"/ui/experiments/{s.experiment_id}",
        f"/ui/runs/{s.long_run}",
        "/ui/models",
        f"/ui/models/{s.model}",
        f"/ui/lineage?uri=runs:/{s.parent}",
        "/ui/lineage",
        f"/ui/compare?run={s.run_ids['run-01']}&run={s.run_ids['run-02']}",
        f"/ui/runs/{s.artifacts_run}/artifacts?path=data/sample.csv",
        "/ui/deployments",
        "/ui/deployments/churn",
        "/ui/loop",
        "/ui/events",
        "/ui/monitors",
        "/ui/monitors/churn-drift",
        "/ui/datasets",
        "/ui/datasets/churn-train?a=1&b=2",
        "/ui/features",
        "/ui/features/customer_stats",
        "/ui/jobs",
        f"/ui/jobs/{s.jobs.failed if s.jobs else ''}",
        "/ui/pipelines",
        f"/ui/pipelines/runs/{s.pipelines.failed if s.pipelines else ''}",
    ]


def test_pages_load_their_assets_from_the_package_only(site: tuple[str, Seeded]) -> None:
    url, s = site
    for path in _pages(url, s):
        answer, page = _get(url + path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert answer.headers["content-type"].startswith("text/html")
        assert page.assets, path
        for asset in page.assets:
            assert asset.startswith("/ui/static/"), (path, asset)  # no CDN, no other host
            assert httpx.get(url + asset).status_code == 200, asset


def test_vendored_files_match_their_recorded_hashes() -> None:
    manifest = json.loads((STATIC / "vendor/VENDOR.json").read_text())
    names = set()
    for package in manifest["packages"]:
        names.add(package["name"])
        assert package["source"].startswith("https://registry.npmjs.org/")
        assert package["license"] and package["version"] and package["integrity"].startswith("sha512-")
        for f in package["files"]:
            data = (STATIC / "vendor" / f["to"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"], f["to"]
    assert names == {"htmx.org", "uplot"}


def test_static_files_stay_inside_the_static_folder(site: tuple[str, Seeded]) -> None:
    url, _ = site
    assert httpx.get(url + "/ui/static/ui.js").status_code == 200
    for path in ("/ui/static/%2e%2e/templating.py", "/ui/static/..%2Ftemplating.py", "/ui/static/nope.js"):
        assert httpx.get(url + path).status_code == 404, path


def test_root_sends_browsers_to_the_ui_and_programs_a_pointer(site: tuple[str, Seeded]) -> None:
    url, _ = site
    browser = httpx.get(url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 307 and browser.headers["location"] == "/ui/"
    program = httpx.get(url + "/")
    assert program.status_code == 200 and program.json()["ui"] == "/ui/"


def test_runs_table_sorts_by_a_param_and_pages_with_tokens(site: tuple[str, Seeded]) -> None:
    url, s = site
    base = f"{url}/ui/experiments/{s.experiment_id}"
    by_lr = [s.run_ids[n] for n in sorted(s.lr, key=lambda n: s.lr[n])]
    answer, first = _get(f"{base}?sort=metrics.accuracy&dir=desc&page_size=25")
    assert answer.status_code == 200
    assert first.rows == by_lr[:25]  # accuracy = 1 - lr: highest accuracy first
    assert f'<span id="runs-total">{RUNS}</span> runs' in answer.text
    _, second = _get(url + first.links["next"])
    assert second.rows == by_lr[25:]
    assert "next" not in second.links
    _, back = _get(url + second.links["prev"])
    assert back.rows == first.rows


def test_runs_table_filters_with_the_search_runs_grammar(site: tuple[str, Seeded]) -> None:
    url, s = site
    ok, page = _get(
        f"{url}/ui/experiments/{s.experiment_id}?filter=metrics.loss+%3C+0.06&sort=params.lr&dir=asc"
    )
    expected = [s.run_ids[n] for n in sorted(s.lr, key=lambda n: s.lr[n]) if s.loss[n] < 0.06]
    assert ok.status_code == 200
    assert expected and page.rows == expected
    bad, page = _get(f"{url}/ui/experiments/{s.experiment_id}?filter=metrics.loss+%3C")
    assert bad.status_code == 400 and "runs-error" in page.ids and not page.rows


def test_htmx_requests_get_the_table_alone(site: tuple[str, Seeded]) -> None:
    url, s = site
    answer, page = _get(f"{url}/ui/experiments/{s.experiment_id}", **{"HX-Request": "true"})
    assert answer.status_code == 200
    assert "<html" not in answer.text and "runs-table" in page.ids and len(page.rows) == RUNS


def test_missing_objects_are_pages_not_json(site: tuple[str, Seeded]) -> None:
    url, _ = site
    for path in ("/ui/runs/" + "0" * 32, "/ui/experiments/999", "/ui/models/nope"):
        answer = httpx.get(url + path, headers=HTML)
        assert answer.status_code == 404 and "text/html" in answer.headers["content-type"], path
        assert 'role="alert"' in answer.text


def test_metric_points_are_downsampled_and_exact_when_zoomed(site: tuple[str, Seeded]) -> None:
    url, s = site
    api = f"{url}/ui/api/metric"
    whole = httpx.get(api, params={"run_id": s.long_run, "key": "loss", "buckets": 200}).json()
    assert whole["total"] == LONG_POINTS and not whole["exact"]
    assert len(whole["x"]) <= 400 and whole["x"] == sorted(whole["x"])
    assert max(whole["y"]) > 5  # the one spike at step 4321 survives downsampling
    assert 4321 in whole["x"]
    zoom = httpx.get(api, params={"run_id": s.long_run, "key": "loss", "min": 4300, "max": 4399}).json()
    assert zoom["exact"] and zoom["x"] == list(range(4300, 4400)) and zoom["total"] == 100
    assert httpx.get(api, params={"run_id": s.long_run, "key": "nope"}).status_code == 404
    assert httpx.get(api, params={"run_id": s.long_run, "key": "loss", "buckets": 0}).status_code == 400


def test_model_page_shows_versions_and_aliases(site: tuple[str, Seeded]) -> None:
    url, s = site
    answer, page = _get(f"{url}/ui/models/{s.model}")
    assert {"v1", "v2"} <= page.ids
    row2 = re.search(r'<tr id="v2">(.*?)</tr>', answer.text, re.S)
    assert row2 and "@champion" in row2[1] and s.child[:8] in row2[1]


def test_min_max_keeps_extremes_in_x_order() -> None:
    x = np.arange(10_000, dtype=np.float64)[::-1].copy()  # unsorted input
    y = np.sin(x / 100)
    y[1234] = -7.0  # index 1234 holds x = 8765
    y[5] = np.nan
    out = min_max(x, y, 100)
    assert not out.exact and out.total == 10_000 and len(out.x) <= 300
    assert out.x == sorted(out.x)
    assert -7.0 in out.y and 8765.0 in out.x
    assert None in out.y  # the NaN stays a visible gap
    small = min_max(x, y, 100, lo=100, hi=149)
    assert small.exact and small.x == [float(i) for i in range(100, 150)]


def test_compare_shows_the_params_that_differ_and_one_line_per_run(site: tuple[str, Seeded]) -> None:
    url, s = site
    names = ["run-01", "run-02", "run-05"]
    ids = [s.run_ids[n] for n in names]
    answer, page = _get(f"{url}/ui/compare", params=[("run", i) for i in ids])
    assert answer.status_code == 200, answer.text[:500]
    assert page.rows[:3] == ids  # the table of compared runs, in the order asked
    # lr and depth differ between these three (depth = 2 + i % 4: 3, 4, 3): both in the diff table.
    differing = re.findall(r'<tr class="differs" data-key="([^"]+)">', answer.text)
    assert differing[:2] == ["depth", "lr"] and 'id="params-differ">2<' in answer.text
    lr_row = re.search(r'<tr class="differs" data-key="lr">(.*?)</tr>', answer.text, re.S)
    assert lr_row and [f">{s.lr[n]}<" in lr_row[1] for n in names] == [True] * 3
    # Parallel coordinates: axes depth, lr (params), accuracy, loss (metrics); one path per run.
    axes = re.findall(r'<g class="axis (param|metric)" data-key="([^"]+)">', answer.text)
    assert axes == [("param", "depth"), ("param", "lr"), ("metric", "accuracy"), ("metric", "loss")]
    paths = re.findall(
        r'<path class="run-line" d="([^"]+)" stroke="[^"]+" data-run-id="([^"]+)"', answer.text
    )
    assert [p[1] for p in paths] == ids
    # The run with the highest lr has the lowest accuracy: its lr vertex at the top, accuracy at the bottom.
    top = max(names, key=lambda n: s.lr[n])
    d = dict((rid, path) for path, rid in paths)[s.run_ids[top]]
    ys = [float(v.split(",")[1]) for v in re.findall(r"[ML]([\d.]+,[\d.]+)", d)]
    assert ys[1] == PLOT_TOP and ys[2] == PLOT_TOP + PLOT_HEIGHT
    # One overlaid chart per metric, each naming every run's series.
    charts = re.findall(r"data-key=\"(\w+)\" data-runs='([^']+)'", answer.text)
    assert [k for k, _ in charts] == ["accuracy", "loss"]
    assert [r["id"] for r in json.loads(charts[0][1].replace("&#34;", '"'))] == ids


def test_compare_refuses_no_runs_too_many_and_unknown_ones(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert httpx.get(f"{url}/ui/compare", headers=HTML).status_code == 400
    many = [("run", f"{i:032x}") for i in range(21)]
    too_many = httpx.get(f"{url}/ui/compare", params=many, headers=HTML)
    assert too_many.status_code == 400 and "at most 20" in too_many.text
    unknown = httpx.get(f"{url}/ui/compare", params=[("run", s.long_run), ("run", "0" * 32)], headers=HTML)
    assert unknown.status_code == 404 and 'role="alert"' in unknown.text


def _artifacts(url: str, run_id: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{url}/ui/runs/{run_id}/artifacts", params={"path": path}, headers={**HTML, **headers})


def test_artifact_browser_lists_folders_and_previews_each_kind(site: tuple[str, Seeded]) -> None:
    url, s = site
    root = _artifacts(url, s.artifacts_run, "", **{"HX-Request": "true"})
    assert root.status_code == 200 and "<html" not in root.text  # the run page's fragment
    listed = re.findall(r'<li data-path="([^"]+)"', root.text)
    assert listed == ["data", "model", "notes.txt", "plots", "report.html", "weights.bin"]
    folder = _artifacts(url, s.artifacts_run, "data")
    assert "<html" in folder.text  # without htmx: a page of its own
    assert re.findall(r'<li data-path="([^"]+)"', folder.text) == ["data/sample.csv", "data/sample.parquet"]

    csv_page = _artifacts(url, s.artifacts_run, "data/sample.csv").text
    assert 'data-kind="table"' in csv_page and '<th scope="col">city</th>' in csv_page
    assert "<td>Oslo</td><td>12</td>" in csv_page and "First 50 rows" in csv_page
    parquet_page = _artifacts(url, s.artifacts_run, "data/sample.parquet").text
    assert "id (int64)" in parquet_page and "First 50 rows of 120" in parquet_page
    assert "<td>49</td><td>0.49</td>" in parquet_page and "<td>50</td>" not in parquet_page
    text = _artifacts(url, s.artifacts_run, "notes.txt").text
    assert "&lt;b&gt;not bold&lt;/b&gt; — ünïcode" in text  # escaped, decoded
    assert "sklearn: {}" in _artifacts(url, s.artifacts_run, "model/MLmodel").text  # no suffix: text
    image = _artifacts(url, s.artifacts_run, "plots/loss.png").text
    assert f'<img src="/ui/runs/{s.artifacts_run}/artifacts/raw?path=plots%2Floss.png"' in image
    report = _artifacts(url, s.artifacts_run, "report.html").text
    assert re.search(r'<iframe src="[^"]+raw\?path=report.html" sandbox title=', report)
    assert "No preview for this kind of file" in _artifacts(url, s.artifacts_run, "weights.bin").text


def test_raw_artifacts_are_sandboxed_and_typed(site: tuple[str, Seeded]) -> None:
    url, s = site
    raw = f"{url}/ui/runs/{s.artifacts_run}/artifacts/raw"
    image = httpx.get(raw, params={"path": "plots/loss.png"})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == ARTIFACTS["plots/loss.png"]
    report = httpx.get(raw, params={"path": "report.html"})
    assert report.headers["content-type"].startswith("text/html")
    assert report.headers["content-security-policy"] == "sandbox"  # its script cannot run as the UI
    assert report.headers["x-content-type-options"] == "nosniff"
    other = httpx.get(raw, params={"path": "weights.bin"})
    assert other.headers["content-type"] == "application/octet-stream"
    assert other.headers["content-disposition"].startswith("attachment")
    assert other.content == ARTIFACTS["weights.bin"]


def test_artifact_paths_cannot_leave_the_runs_folder(site: tuple[str, Seeded]) -> None:
    url, s = site
    # Another run's files sit beside this run's folder: "../<other run>/…" must not reach them.
    sneaky = [
        "../x",
        "data/../../x",
        "..",
        "data/./sample.csv",
        "a\\..\\b",
        "x\x00y",
        f"../{s.artifacts_run}",
    ]
    for path in sneaky:
        page = _artifacts(url, s.run_ids["run-04"], path)
        assert page.status_code == 400 and 'id="artifacts-error"' in page.text, path
        raw = httpx.get(f"{url}/ui/runs/{s.run_ids['run-04']}/artifacts/raw", params={"path": path})
        assert raw.status_code == 400 and raw.json()["message"] == "Invalid path", path
    # A leading slash is stripped (as MLflow does): still a path inside the run's folder.
    assert _artifacts(url, s.run_ids["run-04"], "/etc/passwd").status_code == 404
    missing = _artifacts(url, s.artifacts_run, "nope.txt")
    assert missing.status_code == 404 and 'role="alert"' in missing.text
    empty = _artifacts(url, s.run_ids["run-04"], "")
    assert empty.status_code == 200 and "No artifacts logged." in empty.text


def test_deployment_page_shows_shares_rollout_progress_and_history(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.loop
    listing = httpx.get(f"{url}/ui/deployments", headers=HTML).text
    assert re.search(r'data-deployment="churn">.*?90%.*?10%', listing, re.S)
    answer = httpx.get(f"{url}/ui/deployments/churn", headers=HTML)
    assert answer.status_code == 200
    shares = re.findall(r'<tr data-model="([^"]+)">.*?<span data-share>([^<]+)</span>', answer.text, re.S)
    assert shares == [("models:/churn-model/1", "90%"), ("models:/churn-model/2", "10%")]
    assert 'id="revision">2<' in answer.text
    assert re.findall(r'<tr data-revision="(\d+)">', answer.text) == ["2", "1"]  # newest first
    # The rolling rollout: step 2 of 3 current (canary 10%), 150 s (when seeded) of its 600 s bake done.
    rolling = re.search(rf'data-rollout="{s.loop.rolling}".*?</article>', answer.text, re.S)
    assert rolling and 'aria-current="step">canary 10%' in rolling[0]
    assert re.search(r" (2[5-9]|30)% of 600 s", rolling[0])
    assert rolling[0].count('class="done"') == 1
    assert f'data-rollout="{s.loop.waiting}"' in answer.text  # awaiting approval: active too
    assert "roc_auc: candidate 0.8112" in answer.text  # the rejected one, with the gate's reason
    fragment = httpx.get(f"{url}/ui/deployments/churn", headers={**HTML, "HX-Request": "true"})
    assert fragment.text.startswith('<div id="deployment-live" hx-get="/ui/deployments/churn"')
    assert 'hx-trigger="every 2s"' in fragment.text
    missing = httpx.get(f"{url}/ui/deployments/nope", headers=HTML)
    assert missing.status_code == 404 and "No deployment named" in missing.text


def test_deployment_traffic_counts_answered_requests_per_minute(site: tuple[str, Seeded]) -> None:
    url, s = site
    page = httpx.get(f"{url}/ui/deployments/churn", headers=HTML).text
    assert 'data-src="/ui/api/deployment-traffic?name=churn"' in page and "uPlot.iife.min.js" in page
    body = httpx.get(f"{url}/ui/api/deployment-traffic", params={"name": "churn"}, timeout=30).json()
    assert len(body["x"]) in (60, 61) and body["x"] == sorted(body["x"])  # the last hour, per minute
    i = body["x"].index((s.traffic_ms - s.traffic_ms % 60_000) / 1000)
    # v1 and v2 answered 5 (one a 500); the shadow's 900 ms answer is not traffic.
    assert body["buckets"][i] == {
        "start_ms": s.traffic_ms - s.traffic_ms % 60_000,
        "requests": 5,
        "errors": 1,
        "p50_ms": 30.0,
        "p99_ms": 50.0,
    }
    assert (body["requests_per_min"][i], body["error_rate"][i], body["p99_ms"][i]) == (5, 0.2, 50.0)
    assert sum(body["requests_per_min"]) == 5 and body["error_rate"][i - 1] is None
    missing = httpx.get(f"{url}/ui/api/deployment-traffic", params={"name": "nope"}, timeout=30)
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    assert httpx.get(f"{url}/ui/api/deployment-traffic", timeout=30).status_code == 400


def test_loop_page_shows_policies_approvals_and_the_gates_numbers(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.loop
    answer = httpx.get(f"{url}/ui/loop", headers=HTML)
    assert answer.status_code == 200
    assert re.findall(r'<tr data-policy="([^"]+)">', answer.text) == ["churn-gated", "churn-loop"]
    assert 'id="waiting-count">1<' in answer.text
    assert re.search(
        rf'<li data-rollout="{s.loop.waiting}">.*?loopline approve {s.loop.waiting}', answer.text
    )
    # Its Approve button posts JSON to the REST route (the browser test with auth approves with it).
    form = re.search(rf'<form class="approve" id="approve-{s.loop.waiting}"(.*?)</form>', answer.text, re.S)
    assert (
        form and 'hx-post="/api/2.0/loopline/automation/rollouts/approve" hx-ext="loopline-json"' in form[1]
    )
    assert f'name="id" value="{s.loop.waiting}" data-json="int"' in form[1] and 'name="reason"' in form[1]
    assert answer.text.count('<form class="approve"') == 1  # only the rollout that waits
    rejected = re.search(rf'<tr id="rollout-{s.loop.rejected}".*?</tr>\s*</tbody>', answer.text, re.S)
    assert rejected and "rejected" in rejected[0]
    assert '<details class="verdict" open>' in rejected[0]  # a failed gate shows its rules at once
    metric = re.search(r'<tr data-rule="metric">(.*?)</tr>', rejected[0], re.S)
    assert metric and 'class="fail"' in metric[1]
    assert "candidate = 0.8112" in metric[1] and "bound = -0.0402" in metric[1]
    assert "allowed loss 0.01" in metric[1]


def test_events_page_lists_the_audit_trail_of_an_object_under_dora(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.loop
    everything = httpx.get(f"{url}/ui/events", headers=HTML).text
    assert 'id="dora"' in everything and 'data-dora="deployments">0 ' in everything
    actions = re.findall(r'<tr data-action="([^"]+)">', everything)
    assert {"loop.gate", "loop.rollout_step", "loop.approval_wait", "loop.retrain_start"} <= set(actions)
    one = httpx.get(f"{url}/ui/events", params={"uri": f"rollouts:/{s.loop.rejected}"}, headers=HTML).text
    assert re.findall(r'<tr data-action="([^"]+)">', one) == ["loop.gate", "loop.retrain_start"]
    assert "&#34;passed&#34;: false" in one  # the gate's payload
    assert httpx.get(f"{url}/ui/events", params={"limit": "x"}, headers=HTML).status_code == 400


def test_monitors_list_their_newest_run(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.monitor
    answer = httpx.get(f"{url}/ui/monitors", headers=HTML)
    row = re.search(r'<tr data-monitor="churn-drift">(.*?)</tr>', answer.text, re.S)
    assert row and "deployments:/churn" in row[1] and "datasets:/churn-train/1" in row[1]
    assert '<span class="badge failed">failed</span>' in row[1]  # the newest run failed


def test_monitor_page_charts_drift_and_shows_the_latest_reports_columns(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.monitor
    answer = httpx.get(f"{url}/ui/monitors/{s.monitor.name}", headers=HTML)
    assert answer.status_code == 200
    # The chart's points: one per run that measured drift, oldest first, an hour apart.
    spec = json.loads(re.search(r"data-series='([^']+)'", answer.text)[1].replace("&#34;", '"'))  # type: ignore[index]
    shares, threshold = spec["series"][0]["y"], spec["series"][1]["y"]
    assert len(spec["x"]) == 3 and [round(b - a) for a, b in zip(spec["x"], spec["x"][1:], strict=False)] == [
        3600,
        3600,
    ]
    assert shares[0] < shares[-1] and shares[-1] == pytest.approx(2 / 3) and threshold == [0.5] * 3
    # The latest report (run 3, before the failed run 4): age and plan drifted, spend did not.
    columns = dict(re.findall(r'<tr data-column="([^"]+)" data-drifted="(true|false)">', answer.text))
    assert columns == {"age": "true", "plan": "true", "spend": "false"}
    assert list(columns) == ["age", "plan", "spend"]  # drifted first
    for name, drifted in columns.items():  # a drifted column's bar passes its threshold's tick (40 px)
        bar = re.search(rf'data-column="{name}".*?<rect x="0" y="2" width="([\d.]+)"', answer.text, re.S)
        assert bar and (float(bar[1]) > 40) == (drifted == "true"), name
    assert "<svg" in re.search(r'data-column="plan".*?</tr>', answer.text, re.S)[0].split("</svg>", 2)[1]  # type: ignore[index]
    runs = re.findall(r'<tr data-run="(\d+)">', answer.text)
    assert runs == [str(r) for r in reversed(s.monitor.runs)]
    assert "the inference log of churn is not readable" in answer.text
    assert f"/ui/monitors/churn-drift/report?run_id={s.monitor.with_report}" in answer.text


def test_monitor_reports_are_sandboxed_pages(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.monitor
    report = httpx.get(f"{url}/ui/monitors/{s.monitor.name}/report", params={"run_id": s.monitor.runs[0]})
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.headers["content-security-policy"] == "sandbox"
    assert report.headers["x-content-type-options"] == "nosniff"
    assert "No dataset drift" in report.text and "<script" not in report.text
    newest = httpx.get(f"{url}/ui/monitors/{s.monitor.name}/report").text
    assert "Dataset drift detected" in newest and "polyline" in newest  # with each column's history
    failed = httpx.get(f"{url}/ui/monitors/{s.monitor.name}/report", params={"run_id": s.monitor.runs[-1]})
    assert failed.status_code == 404 and 'role="alert"' in failed.text
    for path in ("/ui/monitors/nope", "/ui/monitors/nope/report"):
        missing = httpx.get(url + path, headers=HTML)
        assert missing.status_code == 404 and 'role="alert"' in missing.text, path
    bad = httpx.get(f"{url}/ui/monitors/{s.monitor.name}/report", params={"run_id": "x"}, headers=HTML)
    assert bad.status_code == 400 and 'role="alert"' in bad.text


def test_datasets_list_and_a_datasets_versions_schema_profile_and_validation(
    site: tuple[str, Seeded],
) -> None:
    url, s = site
    listing = httpx.get(f"{url}/ui/datasets", headers=HTML).text
    row = re.search(r'<tr data-dataset="churn-train">(.*?)</tr>', listing, re.S)
    assert row and "@prod → v2" in row[1]
    answer = httpx.get(f"{url}/ui/datasets/{s.dataset}", headers=HTML)
    assert answer.status_code == 200
    assert re.findall(r'<tr data-version="(\d+)"', answer.text) == ["2", "1"]
    assert '<tr data-version="2" aria-current="true"' in answer.text  # the latest is shown
    schema = answer.text.split('id="schema"')[1].split("</table>")[0]
    assert re.findall(r'<tr data-column="([^"]+)">', schema) == ["age", "plan", "spend"]
    age = re.search(r'<tr data-column="age">(.*?)</tr>', schema, re.S)
    assert age and ">150<" in age[1] and ">29<" in age[1]  # max and min from the profile
    plan = re.search(r'<tr data-column="plan">(.*?)</tr>', schema, re.S)
    assert plan and re.search(r"max</span> <span class=\"muted\">\(4\)", plan[1])  # most frequent first
    validation = re.search(r'<article class="validation".*?</article>', answer.text, re.S)
    assert (
        validation and 'data-success="false"' in validation[0] and "1 of 2 expectations met" in validation[0]
    )
    between = re.search(r'<tr data-expectation="between\(age\)">(.*?)</tr>', validation[0], re.S)
    assert between and 'class="fail"' in between[1] and ">1</td>" in between[1]  # one failing row
    assert re.search(r'data-version="2".*?<span class="fail">failed</span>', answer.text, re.S)
    old = httpx.get(f"{url}/ui/datasets/{s.dataset}", params={"version": 1}, headers=HTML).text
    assert '<tr data-version="1" aria-current="true"' in old and "Not validated." in old
    assert 'data-column="spend"' not in old.split('id="schema"')[1]


def test_dataset_diff_between_two_chosen_versions(site: tuple[str, Seeded]) -> None:
    url, s = site
    answer = httpx.get(f"{url}/ui/datasets/{s.dataset}", params={"a": 1, "b": 2}, headers=HTML)
    assert answer.status_code == 200
    diff = answer.text.split('id="diff"')[1]
    assert re.search(r'data-diff="rows">6 → 10<', diff)
    assert re.findall(r'<tr data-change="(\w+)"><th scope="row">(\w+)</th>', diff) == [("added", "spend")]
    shifted = dict(re.findall(r'<tr data-column="(\w+)" data-shifted="(true|false)">', diff))
    assert shifted == {"age": "true", "plan": "true"}  # the mean moved; a plan appeared
    assert "+ max" in diff
    assert '<option value="1" selected>v1</option>' in answer.text  # the form shows what was asked


def test_dataset_pages_show_errors_as_pages(site: tuple[str, Seeded]) -> None:
    url, s = site
    for params, status in (
        ({}, 404),
        ({"version": "9"}, 404),
        ({"a": "x"}, 400),
        ({"a": "1", "b": "9"}, 404),
    ):
        name = "nope" if not params else s.dataset
        answer = httpx.get(f"{url}/ui/datasets/{name}", params=params, headers=HTML)
        assert answer.status_code == status and 'role="alert"' in answer.text, params


def test_dag_layers_follow_the_deepest_input_and_order_by_the_inputs_places() -> None:
    assert layers(PIPELINE_NODES) == [
        ["raw"],
        ["clean"],
        ["split", "report"],
        ["train"],
        ["evaluate"],
        ["register"],
    ]
    crossing = [
        {"id": "a", "deps": []},
        {"id": "b", "deps": []},
        {"id": "from_b", "deps": ["b"]},
        {"id": "from_a", "deps": ["a"]},
        {"id": "both", "deps": ["from_a", "b"]},  # b is one layer up: both sits right of from_a
    ]
    assert layers(crossing) == [["a", "b"], ["from_a", "from_b"], ["both"]]
    assert layers(
        [{"id": "x", "deps": ["x", "y"]}, {"id": "y", "deps": ["x"]}]
    )  # a damaged graph still draws


def _boxes(html: str) -> dict[str, tuple[str, float, float, str]]:
    """node -> (status, x, y, the box's texts) of the DAG's SVG."""
    out = {}
    for node, status, x, y, body in re.findall(
        r'<g class="dag-step [^"]+" data-node="([^"]+)" data-status="([^"]+)" '
        r'transform="translate\(([\d.]+),([\d.]+)\)">(.*?)</g>',
        html,
        re.S,
    ):
        out[node] = (status, float(x), float(y), " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", body)))
    return out


def test_pipeline_runs_and_a_runs_dag_with_status_cache_and_duration(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.pipelines
    p = s.pipelines
    listing = httpx.get(f"{url}/ui/pipelines", headers=HTML).text
    assert re.findall(r'<tr data-run="([0-9a-f]+)">', listing) == [p.running, p.failed, p.first]
    only_failed = httpx.get(f"{url}/ui/pipelines", params={"status": "failed"}, headers=HTML).text
    assert re.findall(r'<tr data-run="([0-9a-f]+)">', only_failed) == [p.failed]
    answer = httpx.get(f"{url}/ui/pipelines/runs/{p.failed}", headers=HTML)
    assert answer.status_code == 200
    boxes = _boxes(answer.text)
    assert {n: b[0] for n, b in boxes.items()} == {
        "raw": "dataset", "clean": "cached", "split": "cached", "report": "cached",
        "train": "succeeded", "evaluate": "failed", "register": "upstream_failed",
    }  # fmt: skip
    # Layers left to right, each a box and a gap apart; split and report share a layer, one above the other.
    xs = {n: b[1] for n, b in boxes.items()}
    assert (
        xs["raw"] < xs["clean"] < xs["split"] == xs["report"] < xs["train"] < xs["evaluate"] < xs["register"]
    )
    assert xs["clean"] - xs["raw"] > BOX_W and abs(boxes["split"][2] - boxes["report"][2]) > BOX_H
    assert "cache hit" in boxes["clean"][3] and f"from {p.first[:8]}" in boxes["clean"][3]
    assert "ran · 39.0 s" in boxes["train"][3] and "datasets:/churn-train@prod" in boxes["raw"][3]
    edges = re.findall(r'<path class="edge" d="[^"]+" data-from="([^"]+)" data-to="([^"]+)"', answer.text)
    assert sorted(edges) == sorted(
        (d, n["id"])
        for n in PIPELINE_NODES
        for d in n["deps"]  # type: ignore[attr-defined]
    )
    assert "ValueError: the holdout has no positive labels" in answer.text
    assert 'hx-trigger="every' not in answer.text  # finished: the page does not poll
    assert 'data-count="cached">3 cache hit<' in answer.text


def test_a_running_pipeline_run_polls_for_its_live_part(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.pipelines
    page = httpx.get(f"{url}/ui/pipelines/runs/{s.pipelines.running}", headers=HTML).text
    assert (
        f'<div id="pipeline-live" hx-get="/ui/pipelines/runs/{s.pipelines.running}" hx-trigger="every 2s"'
        in page
    )
    assert _boxes(page)["train"][0] == "running" and _boxes(page)["register"][0] == "pending"
    fragment = httpx.get(
        f"{url}/ui/pipelines/runs/{s.pipelines.running}", headers={**HTML, "HX-Request": "true"}
    ).text
    assert fragment.startswith('<div id="pipeline-live"') and "<html" not in fragment
    missing = httpx.get(f"{url}/ui/pipelines/runs/{'0' * 32}", headers=HTML)
    assert missing.status_code == 404 and 'role="alert"' in missing.text


def test_jobs_show_their_progress_and_poll_only_while_one_runs(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.jobs
    answer = httpx.get(f"{url}/ui/jobs", headers=HTML)
    assert answer.status_code == 200
    rows = dict(re.findall(r'<tr data-job="([0-9a-f]+)" data-status="(\w+)">', answer.text))
    assert rows == {s.jobs.running: "running", s.jobs.failed: "failed", s.jobs.done: "succeeded"}
    running = re.search(rf'<tr data-job="{s.jobs.running}".*?</tr>', answer.text, re.S)
    assert running and '<progress max="120" value="30"' in running[0] and "30 of 120 (25%)" in running[0]
    assert "checking blobs" in running[0]
    assert 'id="jobs-live" hx-get="/ui/jobs" hx-trigger="every 2s"' in answer.text  # one job runs: live
    done_only = httpx.get(f"{url}/ui/jobs", params={"status": "succeeded"}, headers=HTML).text
    assert re.findall(r'<tr data-job="([0-9a-f]+)"', done_only) == [s.jobs.done]
    assert 'data-live="false"' in done_only and "hx-trigger" not in done_only
    failed = httpx.get(f"{url}/ui/jobs/{s.jobs.failed}", headers=HTML).text
    assert "The inference log of churn is empty." in failed and "Serve some requests first." in failed
    assert "hx-trigger" not in failed
    done = httpx.get(f"{url}/ui/jobs/{s.jobs.done}", headers=HTML).text
    assert "&#34;rows&#34;: 1200" in done and "1,200 of 1,200 (100%)" in done
    live = httpx.get(f"{url}/ui/jobs/{s.jobs.running}", headers={**HTML, "HX-Request": "true"}).text
    assert live.startswith(f'<div id="job-live" hx-get="/ui/jobs/{s.jobs.running}" hx-trigger="every 2s"')
    missing = httpx.get(f"{url}/ui/jobs/nope", headers=HTML)
    assert missing.status_code == 404 and 'role="alert"' in missing.text


def test_features_list_definitions_sources_and_last_materialisations(site: tuple[str, Seeded]) -> None:
    url, s = site
    assert s.features
    answer = httpx.get(f"{url}/ui/features", headers=HTML)
    assert answer.status_code == 200
    views = dict(
        re.findall(
            r'<tr data-view="(\w+)">(.*?)</tr>',
            answer.text.split('id="feature-views"')[1].split("</table>")[0],
            re.S,
        )
    )
    assert set(views) == {"customer_plan", "customer_stats"}
    assert "spend_30d" in views["customer_stats"] and "720.0 h" in views["customer_stats"]
    assert re.search(
        r'data-last><span class="badge done">done</span> up to 2026-01-02 00:00:00 .*?\(3 rows',
        views["customer_stats"],
    )
    assert "never" in views["customer_plan"]
    assert re.search(
        r'<tr data-entity="customer"><th scope="row">customer</th><td class="mono">customer_id</td>',
        answer.text,
    )
    source = re.search(r'<tr data-source-kind="file">(.*?)</tr>', answer.text, re.S)
    assert source and "customers.parquet" in source[1] and "customer_plan</a>, <a" in source[1]
    assert 'data-view="spend_ratio"' in answer.text and 'data-service="churn_features"' in answer.text
    assert re.findall(r'data-materialization="\d+" data-view="(\w+)" data-status="(\w+)"', answer.text) == [
        ("customer_stats", "done")
    ]


def test_a_feature_views_page_and_what_uses_it(site: tuple[str, Seeded]) -> None:
    url, _ = site
    answer = httpx.get(f"{url}/ui/features/customer_stats", headers=HTML)
    assert answer.status_code == 200
    assert "Spend and orders over the last 30 days." in answer.text
    used = re.search(r"<dt>Used by</dt><dd>(.*?)</dd>", answer.text, re.S)
    assert used and re.findall(r">(\w+)</a>", used[1]) == ["churn_features", "spend_ratio"]
    assert re.findall(r'data-materialization="\d+" data-view="(\w+)"', answer.text) == ["customer_stats"]
    odfv = httpx.get(f"{url}/ui/features/spend_ratio", headers=HTML).text
    assert "def spend_ratio(df" in odfv and "Materialisations" not in odfv
    missing = httpx.get(f"{url}/ui/features/nope", headers=HTML)
    assert missing.status_code == 404 and 'role="alert"' in missing.text
    entity = httpx.get(f"{url}/ui/features/customer", headers=HTML)
    assert entity.status_code in (400, 404) and 'role="alert"' in entity.text


def test_lineage_nodes_link_to_the_pages_of_their_objects() -> None:
    assert page_of("datasets:/churn-train/2") == "/ui/datasets/churn-train?version=2"
    assert page_of("datasets:/churn-train@prod") == "/ui/datasets/churn-train"
    assert page_of("monitors:/churn-drift") == "/ui/monitors/churn-drift"
    assert page_of("pipelines:/churn-train/abc123/train") == "/ui/pipelines/runs/abc123"
    assert page_of("features:/customer_stats") == "/ui/features/customer_stats"
    assert page_of("deployments:/churn") == "/ui/deployments/churn"
    assert page_of("features:/entity/customer") is None
