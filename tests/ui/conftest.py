"""The UIs people use, in a real browser: one demo, one `dagster dev`, one `mlflow server`, one Chromium per session.

Debian's `chromium` and `chromium-driver` driven by Selenium (tests/setup/browser.sh installs all three; `make test`
runs it). A missing browser fails these tests with that hint, it never skips them. Every screenshot goes to
tests/ui/screenshots/ (or $MLPLATFORM_SCREENSHOTS_DIR); asset-graph.png and mlflow-model.png are the README's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlplatform.serving.processes import free_port

from processes import BIN, dagster_dev, graphql, stop, wait_for_http

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SETUP_HINT = (
    "run `bash tests/setup/browser.sh` (make test does) to install Debian chromium, chromium-driver and selenium"
)
# As the machine notes prescribe: no sandbox as root, and no background traffic to a network that is not there.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
VIEWPORT = (1600, 900)
WAIT_S = 60  # explicit waits: a page or element that takes longer than this is a failure
DEFAULT_SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
SUITE_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
DATASET = "iris"


@dataclass(frozen=True)
class Demo:
    home: Path
    summary: dict


@pytest.fixture(scope="session", autouse=True)
def browser_installed() -> None:
    """Checked before the minute of demo and servers: without a browser these tests fail, with the fix."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: {SETUP_HINT}", pytrace=False)
    try:
        import selenium  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"selenium is not importable in {sys.executable} ({exc}): {SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def suite(request):
    """tests/conftest.py as pytest loaded it (REPO_ROOT, PLATFORM_VARIABLES).

    Both conftest modules are named `conftest` and pytest keeps only the latest in sys.modules, so
    `from conftest import ...` here would find this file; the plugin manager has the suite's by its path.
    """
    module = request.config.pluginmanager.get_plugin(str(SUITE_CONFTEST))
    assert module is not None, f"{SUITE_CONFTEST} is not loaded"
    return module


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("MLPLATFORM_SCREENSHOTS_DIR") or DEFAULT_SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def demo(suite, tmp_path_factory) -> Demo:
    """`mlplatform demo` on the embedded default, as a user runs it before opening the UIs."""
    home = tmp_path_factory.mktemp("ui") / "home"
    result = subprocess.run(
        [str(BIN / "mlplatform"), "demo", "--home", str(home), "--dataset", DATASET, "--json"],
        capture_output=True,
        text=True,
        env=_platform_free_environment(suite),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return Demo(home, json.loads(result.stdout))


@dataclass(frozen=True)
class Servers:
    dagster: str
    mlflow: str


@pytest.fixture(scope="session")
def ui_servers(suite, demo, tmp_path_factory) -> Servers:
    """`dagster dev -w workspace.yaml` and `mlflow server` over the demo's home, started side by side."""
    logs = tmp_path_factory.mktemp("ui-servers")
    with ExitStack() as stack:
        mlflow_url = stack.enter_context(_mlflow_server(demo.home, logs / "mlflow-server.log", suite))
        env = {"DAGSTER_HOME": str(demo.home / "dagster"), "MLPLATFORM_HOME": str(demo.home)}
        # The alias sensor serves Production while the UI runs; its servers outlive `dagster dev`: stop them last.
        stack.callback(
            subprocess.run,
            [str(BIN / "mlplatform"), "serve", "down"],
            capture_output=True,
            timeout=120,
            env={**_platform_free_environment(suite), "MLPLATFORM_HOME": str(demo.home)},
        )
        dagster_url = stack.enter_context(dagster_dev(suite.REPO_ROOT, logs / "dagster-dev.log", env))
        _wait_for_assets(dagster_url, logs / "dagster-dev.log")
        # The one-time "join the community" dialog would cover every page: dismiss it as its Skip button does.
        graphql(dagster_url, "mutation { setNuxSeen }")
        yield Servers(dagster_url, mlflow_url())


@pytest.fixture(scope="session")
def dagster_ui(ui_servers) -> str:
    return ui_servers.dagster


@pytest.fixture(scope="session")
def mlflow_ui(ui_servers) -> str:
    return ui_servers.mlflow


@contextmanager
def _mlflow_server(home: Path, log: Path, suite):
    """A real `mlflow server` over the demo's SQLite store (the runs' artifacts are at absolute file: URIs).

    Yields a function that waits until it answers and returns its URL, so it starts while `dagster dev` does.
    Its job runner (Huey workers for GenAI jobs, about 10 s of start-up and of shutdown) is not needed to browse.
    """
    port = free_port()
    env = {
        **_platform_free_environment(suite),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with open(log, "wb") as out:  # cwd: proxied artifact uploads (none here) would land in the home, not the repo
        process = subprocess.Popen(
            command, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> str:
        wait_for_http(f"{url}/health", process, log)
        return url

    try:
        yield ready
    finally:
        stop(process)


@pytest.fixture(scope="session")
def browser(ui_servers, tmp_path_factory, screenshots):
    """Headless Debian Chromium through Debian's chromedriver (checked by ``browser_installed``).

    It needs the servers, so it closes before they stop (open pages would hold their connections).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}")
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # An explicit chromedriver path: Selenium Manager (which would download a driver) never runs.
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path_factory.mktemp("chromedriver") / "log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        page = Browser(driver, screenshots)
        page.viewport(*VIEWPORT)
        yield page
    finally:
        driver.quit()


class Browser:
    """Selenium with explicit waits and named screenshots; XPath text matches ignore surrounding whitespace."""

    def __init__(self, driver, screenshots: Path) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.folder, self.By = driver, screenshots, By
        self._wait = lambda timeout: WebDriverWait(driver, timeout, poll_frequency=0.2)

    def viewport(self, width: int, height: int) -> None:
        """Exact CSS viewport (and screenshot) size, whatever the headless window's decorations."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def open(self, url: str) -> None:
        self.driver.get(url)

    def until(self, condition, message: str, timeout: float = WAIT_S):
        """Wait for ``condition(driver)`` to return something truthy; fail with ``message`` and a screenshot."""
        from selenium.common.exceptions import TimeoutException

        try:
            return self._wait(timeout).until(condition)
        except TimeoutException:
            shot = self.screenshot("failure-" + "".join(c if c.isalnum() else "-" for c in message)[:60])
            pytest.fail(f"{message} (waited {timeout} s; {self.driver.current_url}; screenshot {shot})", pytrace=False)

    def find(self, xpath: str, message: str, timeout: float = WAIT_S):
        """The first visible element matching ``xpath``."""

        def visible(driver):
            return next((e for e in driver.find_elements(self.By.XPATH, xpath) if e.is_displayed()), None)

        return self.until(visible, message, timeout)

    text_xpath = staticmethod(lambda text: text_xpath(text))

    def find_text(self, text: str, timeout: float = WAIT_S):
        """The innermost visible element whose whole text is ``text`` (React may split it into several nodes)."""
        return self.find(text_xpath(text), f"no {text!r} on the page", timeout)

    def click(self, element) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def click_on(self, xpath: str, message: str, timeout: float = WAIT_S) -> None:
        """Click the first visible, enabled element matching ``xpath``, finding it again while React re-renders it."""
        from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException

        def clicked(driver) -> bool:
            try:
                element = next((e for e in driver.find_elements(self.By.XPATH, xpath) if e.is_displayed()), None)
                if element is None or not element.is_enabled():
                    return False
                self.click(element)
                return True
            except (StaleElementReferenceException, ElementClickInterceptedException):
                return False

        self.until(clicked, message, timeout)

    def texts(self, xpath: str) -> list[str]:
        return [e.text.strip() for e in self.driver.find_elements(self.By.XPATH, xpath)]

    def body_text(self) -> str:
        return self.driver.execute_script("return document.body.innerText")

    def run_js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, name: str) -> Path:
        path = self.folder / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def text_xpath(text: str) -> str:
    """The innermost elements whose whole text, whitespace normalized, is ``text``."""
    literal = _literal(text)
    return f"//*[normalize-space(.)={literal}][not(*[normalize-space(.)={literal}])]"


def _literal(text: str) -> str:
    """``text`` as an XPath string literal."""
    if "'" not in text:
        return f"'{text}'"
    return "concat(" + ', "\'", '.join(f"'{part}'" for part in text.split("'")) + ")"


def _platform_free_environment(suite) -> dict:
    return {k: v for k, v in os.environ.items() if k not in suite.PLATFORM_VARIABLES}


ASSETS_QUERY = "{ assetNodes { assetKey { path } } }"


def _wait_for_assets(url: str, log: Path, timeout_s: float = 120) -> None:
    """The code location loads after the webserver answers; wait until it serves the five assets."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if len(graphql(url, ASSETS_QUERY)["assetNodes"]) >= 5:
                return
        except (AssertionError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not serve the assets within {timeout_s} s:\n{log.read_text()[-4000:]}")
