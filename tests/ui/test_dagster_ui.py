"""The Dagster UI after `mlplatform demo`, in Chromium: what the README says a user sees there, and one click.

`dagster dev -w workspace.yaml` over the demo's embedded home (fixtures in tests/ui/conftest.py).
"""

from __future__ import annotations

import re

import pytest

from processes import graphql

ASSETS = ["raw_dataset", "candidate_model", "production_alias", "predictions", "monitoring_report"]
LINEAGE = set(zip(ASSETS, ASSETS[1:]))  # a chain: each asset feeds the next
CHECKS = {
    "raw_dataset": ["no_nulls", "target_present", "typed_schema"],
    "monitoring_report": ["no_feature_drift", "production_quality"],
}
JOBS = ["data_load_job", "training_job", "inference_job", "monitoring_job"]
ALIAS_SENSOR = "alias_sensor"
RUN_TIMEOUT_S = 300  # a cold run worker imports the platform; generous for a loaded machine


def _hide_navigation(browser, url: str) -> None:
    """Collapse the left navigation (the browser keeps the choice) and reload, so the graph fits the wider page."""
    browser.open(url)
    browser.click_on("//button[.//*[normalize-space(text())='Hide navigation']]", "no 'Hide navigation' button")
    browser.driver.refresh()


def _graph(browser) -> dict:
    """Nodes (name -> box) and edges (start, end points) of the rendered lineage SVG."""
    return browser.run_js(
        """
        const names = arguments[0];
        const nodes = {};
        for (const box of document.querySelectorAll('svg foreignObject')) {
          const label = [...box.querySelectorAll('*')].find(e => names.includes((e.textContent || '').trim())
                                                                && e.children.length === 0);
          const text = box.firstElementChild ? box.firstElementChild.innerText : '';
          if (label) nodes[label.textContent.trim()] = {x: +box.getAttribute('x'), y: +box.getAttribute('y'),
                                                       w: +box.getAttribute('width'), h: +box.getAttribute('height'),
                                                       text};
        }
        const edges = [...document.querySelectorAll('svg path[marker-end]')].map(p => p.getAttribute('d'));
        return {nodes, edges};
        """,
        ASSETS,
    )


def _edges(graph: dict) -> set[tuple[str, str]]:
    """Each drawn edge as (upstream, downstream): it leaves one node's right side and ends at another's left."""
    found = set()
    for path in graph["edges"]:
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]
        (x1, y1), (x2, y2) = numbers[:2], numbers[-2:]
        source = [
            n for n, b in graph["nodes"].items() if abs(b["x"] + b["w"] - x1) <= 20 and b["y"] <= y1 <= b["y"] + b["h"]
        ]
        target = [n for n, b in graph["nodes"].items() if abs(b["x"] - x2) <= 20 and b["y"] <= y2 <= b["y"] + b["h"]]
        assert len(source) == len(target) == 1, (path, graph["nodes"])
        found.add((source[0], target[0]))
    return found


def _full_graph(browser):
    """The graph once every node shows its details (checks, partitions) and every edge is drawn, else None."""
    graph = _graph(browser)
    nodes = graph["nodes"]
    if set(nodes) != set(ASSETS) or len(graph["edges"]) != len(LINEAGE):
        return None
    texts = [n["text"] for n in nodes.values()]
    if not all("Asset checks" in t for t in texts) or any("Loading" in t for t in texts):
        return None  # zoomed out too far for details, or still loading them
    return graph if all(f"/ {len(checks)}" in nodes[asset]["text"] for asset, checks in CHECKS.items()) else None


def test_asset_graph_shows_the_five_assets_their_lineage_and_checks(dagster_ui, browser):
    browser.viewport(1600, 560)
    try:
        # The lifecycle group's lineage: the graph alone (no asset list beside it), wide enough for node details.
        _hide_navigation(browser, f"{dagster_ui}/locations/mlplatform/asset-groups/lifecycle/lineage")
        graph = browser.until(
            lambda _: _full_graph(browser), "the asset graph never showed the five assets with their details"
        )
        browser.screenshot("asset-graph")
    finally:
        browser.viewport(1600, 900)
    assert _edges(graph) == LINEAGE
    assert [name for name, _ in sorted(graph["nodes"].items(), key=lambda item: item[1]["x"])] == ASSETS
    for asset, checks in CHECKS.items():
        assert f"{len(checks)} / {len(checks)} Passed" in graph["nodes"][asset]["text"], graph["nodes"][asset]["text"]


@pytest.mark.parametrize("asset", sorted(CHECKS))
def test_asset_checks_are_listed_and_passed(dagster_ui, browser, asset):
    checks = CHECKS[asset]
    browser.open(f"{dagster_ui}/assets/{asset}?view=checks")
    browser.find_text(f"Checks ({len(checks)})")
    for check in checks:
        row = browser.find(
            f"//*[normalize-space(text())='{check}']/ancestor::*[.//*[normalize-space(text())='Succeeded']][1]",
            f"check {check} not shown as succeeded",
        )
        assert check in row.text
    browser.screenshot(f"dagster-checks-{asset}")


def test_jobs_are_listed(dagster_ui, browser):
    browser.open(f"{dagster_ui}/jobs")
    for job in JOBS:
        browser.find_text(job)
    browser.screenshot("dagster-jobs")


def _metadata_xpath(key: str) -> str:
    return f"//tr[td[1][normalize-space(.)='{key}']]/td[last()]"


def _metadata(browser, key: str):
    """The value cell of one metadata entry on the asset's overview page."""
    return browser.find(_metadata_xpath(key), f"no metadata entry {key!r}")


def _table(cell) -> tuple[list[str], list[list[str]]]:
    headers = [th.text.strip() for th in cell.find_elements("xpath", ".//table//th")]
    rows = [
        [td.text.strip() for td in tr.find_elements("xpath", "./td")]
        for tr in cell.find_elements("xpath", ".//table/tbody/tr")
    ]
    return headers, rows


def _markdown_image(browser, key: str, screenshot: str) -> dict:
    """Open a Markdown metadata entry holding a picture and check the browser decoded it; returns its size."""
    browser.click_on(
        _metadata_xpath(key) + "//*[normalize-space(text())='[Show Markdown]']", f"{key}: no [Show Markdown]"
    )
    image = browser.find("//img[starts-with(@src, 'data:image/png;base64,')]", f"{key}: no picture in the dialog")
    size = browser.until(
        lambda _: browser.run_js(
            "const i = arguments[0]; return i.complete && i.naturalWidth > 0 && "
            "{width: i.naturalWidth, height: i.naturalHeight};",
            image,
        ),
        f"{key}: the picture never decoded",
    )
    browser.screenshot(screenshot)
    browser.click_on("//button[normalize-space(.)='Close']", "no Close button on the dialog")
    browser.until(
        lambda d: not d.find_elements(browser.By.XPATH, "//img[starts-with(@src, 'data:image/png')]"),
        f"{key}: the dialog did not close",
        10,
    )
    return size


def test_monitoring_report_shows_drift_per_feature_and_histograms(dagster_ui, browser, demo):
    browser.open(f"{dagster_ui}/assets/monitoring_report")
    headers, rows = _table(_metadata(browser, "drift"))
    assert headers[:1] == ["feature"] and {"psi", "ks_pvalue", "drifted"} <= set(headers)
    assert [r[0] for r in rows] == ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    drifted = _metadata(browser, "drifted_features").text.strip()
    assert drifted == str(demo.summary["monitoring"]["drifted_features"])
    assert _metadata(browser, "held_out_rows").text.strip() == "30"
    size = _markdown_image(browser, "drift_histograms", "dagster-drift-histograms")
    assert size["width"] > 400


def test_candidate_model_shows_scores_and_a_confusion_matrix(dagster_ui, browser):
    browser.open(f"{dagster_ui}/assets/candidate_model")
    headers, rows = _table(_metadata(browser, "candidates"))
    metrics = ["validation_accuracy", "validation_balanced_accuracy", "validation_f1_macro", "validation_roc_auc"]
    assert headers == ["algorithm", *metrics, "registered"]
    assert sorted(r[0] for r in rows) == ["hist_gradient_boosting", "logistic_regression", "random_forest", "svm"]
    assert [r[-1] for r in rows].count("true") == 1
    assert _metadata(browser, "train_rows").text.strip() == "120"
    _markdown_image(browser, "validation_plot", "dagster-confusion-matrix")


def test_production_alias_shows_the_promotion_decision(dagster_ui, browser, demo):
    browser.open(f"{dagster_ui}/assets/production_alias")
    verdict = _metadata(browser, "verdict").text
    version = demo.summary["model"]["production_version"]
    assert verdict.startswith("Promoted") and f"v{version}" in verdict and "Production" in verdict, verdict
    headers, rows = _table(_metadata(browser, "scores"))
    assert headers[:2] == ["model", "version"] and rows[0][:2] == ["candidate", str(version)]
    assert _metadata(browser, "promoted").text.strip() == "true"
    browser.screenshot("dagster-production-alias")


RUNS = """{ runsOrError(filter: {tags: [{key: "dagster/partition", value: "%s"}]}) {
  ... on Runs { results { runId status jobName assetSelection { path } } } } }"""


def _runs(url: str, partition: str) -> dict[str, dict]:
    return {r["runId"]: r for r in graphql(url, RUNS % partition)["runsOrError"]["results"]}


def test_materialize_raw_dataset_from_the_ui_starts_a_run_that_succeeds(dagster_ui, browser, demo):
    partition = demo.summary["dataset"]["name"]
    before = set(_runs(dagster_ui, partition))
    browser.open(f"{dagster_ui}/assets/raw_dataset")
    browser.click_on("//button[starts-with(normalize-space(.), 'Materialize')]", "no Materialize button")
    # A partitioned asset: the launch dialog asks which partitions.
    dialog_title = "Launch runs to materialize raw_dataset"
    browser.find_text(dialog_title)
    browser.click_on(browser.text_xpath("Select a partition or create one"), "no partition picker")
    browser.click_on(
        f"//*[@role='menuitem'][.//*[normalize-space(text())='{partition}']]", f"partition {partition} is not offered"
    )
    browser.click_on(browser.text_xpath(dialog_title), "the dialog went away")  # closes the partition menu
    browser.find("//button[normalize-space(.)='Launch 1 run']", "the dialog does not offer to launch 1 run")
    browser.screenshot("dagster-materialize-dialog")
    browser.click_on("//button[normalize-space(.)='Launch 1 run']", "no 'Launch 1 run' button")

    def new_run(_):
        started = [r for run_id, r in _runs(dagster_ui, partition).items() if run_id not in before]
        return started[0] if started else None

    run = browser.until(new_run, "no run started after Launch", 30)
    assert [a["path"] for a in run["assetSelection"]] == [["raw_dataset"]]

    def finished(_):
        status = _runs(dagster_ui, partition)[run["runId"]]["status"]
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    status = browser.until(finished, f"run {run['runId']} did not finish", RUN_TIMEOUT_S)
    browser.open(f"{dagster_ui}/runs/{run['runId']}")
    browser.find_text("Success" if status == "SUCCESS" else "Failure")
    browser.until(lambda _: f"RUN_{status}" in browser.body_text(), "the run's event log never loaded")
    browser.screenshot("dagster-materialize-run")
    assert status == "SUCCESS", (
        f"run {run['runId']} ended {status}: see the screenshot and {dagster_ui}/runs/{run['runId']}"
    )


def _automation_switch(browser, name: str):
    """The on/off switch of a schedule or sensor on the Automation page; None while the page shows none for it."""
    rows = browser.driver.find_elements(browser.By.XPATH, browser.text_xpath(name))
    if not rows:
        return None
    # Its row: the nearest ancestor holding both its select box and its switch; the switch comes second.
    switches = rows[0].find_elements(
        browser.By.XPATH, "./ancestor::*[count(.//input[@type='checkbox']) = 2][1]//input[@type='checkbox']"
    )
    return switches[1] if len(switches) == 2 else None


def _shown_running(browser, name: str) -> bool:
    """Whether the Automation page shows ``name`` switched on (the switches settle after the list renders)."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def on(_):
        try:
            switch = _automation_switch(browser, name)
            return switch is not None and switch.is_selected()
        except StaleElementReferenceException:
            return False

    try:
        return WebDriverWait(browser.driver, 20, poll_frequency=0.2).until(on)
    except TimeoutException:
        return False


def _automation_page(browser, dagster_ui: str) -> None:
    browser.open(f"{dagster_ui}/automation")
    browser.find_text(f"{JOBS[0]}_schedule")  # the list has loaded


def test_schedules_are_running(dagster_ui, browser):
    _automation_page(browser, dagster_ui)
    running = {f"{job}_schedule": _shown_running(browser, f"{job}_schedule") for job in JOBS}
    browser.screenshot("dagster-automation")
    assert all(running.values()), f"not shown as running: {[name for name, on in running.items() if not on]}"


def test_alias_sensor_is_running(dagster_ui, browser):
    _automation_page(browser, dagster_ui)
    listed = browser.driver.find_elements(browser.By.XPATH, browser.text_xpath(ALIAS_SENSOR))
    assert listed, f"the Automation page shows no sensor {ALIAS_SENSOR!r}"
    running = _shown_running(browser, ALIAS_SENSOR)
    browser.screenshot("dagster-automation-sensor")
    assert running, f"{ALIAS_SENSOR} is shown as stopped"
