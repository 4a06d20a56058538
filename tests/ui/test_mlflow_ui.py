"""The MLflow UI after `mlplatform demo`, in Chromium: the registered model with its alias, the run's artifacts.

A real `mlflow server` over the demo's SQLite store (fixtures in tests/ui/conftest.py).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

PRODUCTION = "Production"
# MLflow UI preferences kept in the browser: the classic-ML navigation, and no assistant panel over the page.
UI_PREFERENCES = {
    "mlflow.workflowType_v1": json.dumps("machine_learning"),
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
}


def _api(url: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}", timeout=30) as answer:
        return json.loads(answer.read())


def _open(browser, mlflow_ui: str, route: str) -> None:
    """Open a page of the single-page app, with the preferences set before it first renders."""
    browser.open(f"{mlflow_ui}/")
    for key, value in UI_PREFERENCES.items():
        browser.run_js("localStorage.setItem(arguments[0], arguments[1])", key, value)
    browser.open(f"{mlflow_ui}/#{route}")
    browser.driver.refresh()


def _production_version(mlflow_ui: str, model: str) -> dict:
    return _api(mlflow_ui, "registered-models/alias", name=model, alias=PRODUCTION)["model_version"]


def test_registered_model_shows_the_production_alias(mlflow_ui, browser, demo):
    model = demo.summary["model"]["name"]
    version = demo.summary["model"]["production_version"]
    browser.viewport(1400, 620)
    try:
        _open(browser, mlflow_ui, f"/models/{model}")
        browser.find(f"//h2[normalize-space(.)='{model}'] | //*[normalize-space(text())='{model}']", "no model title")
        row_xpath = f"//*[@role='row'][.//a[normalize-space(.)='Version {version}']]"
        row = browser.until(
            lambda d: next(
                (r for r in d.find_elements(browser.By.XPATH, row_xpath) if f"@ {PRODUCTION}" in _text(r)), None
            ),
            f"version {version} is not listed with the {PRODUCTION} alias",
        )
        assert "iris" in row.text, row.text
        browser.screenshot("mlflow-model")
    finally:
        browser.viewport(1600, 900)
    assert _production_version(mlflow_ui, model)["version"] == str(version)


def test_model_version_page_links_its_source_run(mlflow_ui, browser, demo):
    model = demo.summary["model"]["name"]
    version = demo.summary["model"]["production_version"]
    _open(browser, mlflow_ui, f"/models/{model}/versions/{version}")
    browser.find_text(f"Version {version}")
    browser.until(
        lambda _: f"Aliases\n:\n@ {PRODUCTION}" in _text(browser), f"the version page shows no {PRODUCTION} alias"
    )
    run_id = _production_version(mlflow_ui, model)["run_id"]
    browser.find(f"//a[contains(@href, '/runs/{run_id}')]", "no link to the source run")
    browser.screenshot("mlflow-model-version")
    browser.click_on(f"//a[contains(@href, '/runs/{run_id}')]", "no link to the source run")
    browser.until(lambda d: run_id in d.current_url, "the source run link did not open the run")


def _artifacts_page(browser, mlflow_ui: str, run_id: str) -> None:
    run = _api(mlflow_ui, "runs/get", run_id=run_id)["run"]
    _open(browser, mlflow_ui, f"/experiments/{run['info']['experiment_id']}/runs/{run_id}/artifacts")


def _preview(browser, folder: str, name: str):
    """Expand ``folder`` in the artifact tree (if not yet) and select ``name``."""
    items = browser.driver.find_elements(browser.By.XPATH, browser.text_xpath(name))
    if not any(i.is_displayed() for i in items):
        browser.click_on(browser.text_xpath(folder), f"no artifact folder {folder}")
    browser.click_on(browser.text_xpath(name), f"no artifact {folder}/{name}")


def test_run_shows_its_data_contract_artifacts(mlflow_ui, browser, demo):
    run_id = _production_version(mlflow_ui, demo.summary["model"]["name"])["run_id"]
    _artifacts_page(browser, mlflow_ui, run_id)
    _preview(browser, "data_contract", "sample_input.csv")
    browser.find_text("input_schema.json")
    _preview(browser, "data_contract", "input_schema.json")
    browser.until(lambda _: '"target_column": "target"' in browser.body_text(), "input_schema.json is not previewed")
    text = browser.body_text()
    for feature in ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"):
        assert feature in text
    browser.screenshot("mlflow-data-contract")
    _preview(browser, "metrics", "validation_metrics.json")
    browser.until(lambda _: '"accuracy"' in browser.body_text(), "validation_metrics.json is not previewed")
    _preview(browser, "plots", "confusion_matrix.png")
    _rendered_image(browser, "plots/confusion_matrix.png")
    browser.screenshot("mlflow-confusion-matrix")


def test_monitoring_run_shows_the_drift_histograms(mlflow_ui, browser, demo):
    experiment = _api(mlflow_ui, "experiments/get-by-name", experiment_name="mlplatform")["experiment"]
    request = urllib.request.Request(
        f"{mlflow_ui}/api/2.0/mlflow/runs/search",
        data=json.dumps(
            {"experiment_ids": [experiment["experiment_id"]], "filter": "attributes.run_name LIKE 'monitor-%'"}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        [run] = json.loads(answer.read())["runs"]
    _artifacts_page(browser, mlflow_ui, run["info"]["run_id"])
    _preview(browser, "monitoring", "feature_drift.png")
    _rendered_image(browser, "monitoring/feature_drift.png")
    browser.screenshot("mlflow-drift-histograms")


def _text(element_or_browser) -> str:
    """Visible text with MLflow's no-break spaces (as in "@ Production") made plain."""
    text = element_or_browser.body_text() if hasattr(element_or_browser, "body_text") else element_or_browser.text
    return text.replace("\xa0", " ")


def _rendered_image(browser, path: str) -> None:
    """The preview pane names the artifact and shows it as a picture the browser decoded (from a blob: URL)."""
    browser.until(
        lambda _: (
            path in browser.body_text()
            and browser.run_js(
                "return [...document.images]"
                ".some(i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 100);"
            )
        ),
        f"{path} is not shown as a picture",
    )
