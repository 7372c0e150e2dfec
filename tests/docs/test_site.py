"""The documentation site as a reader meets it: built with ``mkdocs build --strict``, every
internal link and anchor of every page resolves, and headless Chromium (Debian's ``chromium``)
opens the home page and the API reference, loads everything they ask for, and takes
screenshots that are not blank.

Set ``EVENTWIRE_DOCS_SCREENSHOTS=DIR`` to keep the screenshots in ``DIR``.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.docs.blocks import ROOT

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,1400",
]
PAGES = {"home": "", "reference": "reference/publishers/"}


class _Links(html.parser.HTMLParser):
    """The links, resources and element ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("id", "name"):
            if found.get(name):
                self.ids.add(str(found[name]))
        for name in ("href", "src"):
            value = found.get(name)
            if value and not (tag == "link" and found.get("rel") == "canonical"):
                self.targets.append(value)


@functools.cache
def _parsed(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own interpreter and mkdocs
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"mkdocs build --strict: {time.monotonic() - started:.1f} s")
    return target


def _file_of(site: Path, page: Path, target: str) -> tuple[Path | None, str]:
    """The built file a link of ``page`` points at (None when external) and its fragment."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith(("mailto:", "data:", "javascript:")):
        return None, ""
    if not parts.path:
        return page, parts.fragment
    base = "/" + page.relative_to(site).as_posix()
    resolved = unquote(urlsplit(urljoin(base, parts.path)).path)
    file = site / resolved.lstrip("/")
    if resolved.endswith("/") or file.is_dir():
        file = file / "index.html"
    return file, parts.fragment


def test_every_internal_link_and_anchor_resolves(site: Path) -> None:
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    assert len(pages) >= 20
    broken: list[str] = []
    checked = 0
    for page in pages:
        for target in _parsed(page).targets:
            file, fragment = _file_of(site, page, target)
            if file is None:
                continue
            checked += 1
            where = f"{page.relative_to(site)} -> {target}"
            if not file.is_file():
                broken.append(f"{where}: no such file")
            elif fragment and file.suffix == ".html" and fragment not in _parsed(file).ids:
                broken.append(f"{where}: no element with id {fragment!r}")
    assert broken == []
    assert checked > 1000  # navigation, assets, cross-references: the crawl saw them


def test_the_api_reference_documents_every_public_name(site: Path) -> None:
    import eventwire
    import eventwire.outbox
    import eventwire.testing

    reference = "".join(p.read_text() for p in (site / "reference").rglob("index.html"))
    missing = [
        f"{module.__name__}.{name}"
        for module in (eventwire, eventwire.testing, eventwire.outbox)
        for name in module.__all__
        if f'id="{module.__name__}.{name}"' not in reference
    ]
    assert missing == [], "add them to a page of docs/reference/"


@pytest.mark.parametrize("page_name", ["performance", "benchmark-results"])
def test_the_plots_are_on_the_performance_pages(site: Path, page_name: str) -> None:
    page = _parsed(site / page_name / "index.html")
    images = [t for t in page.targets if "images/benchmarks/" in t]
    assert sorted(Path(i).name for i in images) == ["cpu.png", "latency.png", "throughput.png"]
    for image in images:
        assert (site / page_name / image).resolve().is_file(), image


def test_the_committed_report_shows_its_plots_beside_it() -> None:
    """benchmarks/RESULTS.md links images/benchmarks/*.png: there for a reader of the file."""
    benchmarks = Path(__file__).parents[2] / "benchmarks"
    text = (benchmarks / "RESULTS.md").read_text(encoding="utf-8")
    for name in ("throughput", "cpu", "latency"):
        assert f"images/benchmarks/{name}.png)" in text
        assert (benchmarks / "images" / "benchmarks" / f"{name}.png").is_file()


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.requests.append((self.path, int(code)))

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(site: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """The built site on a loopback port, and the requests it answered."""
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "headless Chromium is needed: `make browser` installs Debian's chromium"
        " (apt-get, as root), or run `sudo apt-get install chromium`"
    )
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(  # noqa: S603 - the system's chromium, our own arguments
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("page", list(PAGES))
def test_chromium_opens_the_page_and_takes_a_screenshot(
    page: str, served: tuple[str, list[tuple[str, int]]], tmp_path: Path
) -> None:
    import matplotlib.image

    base, requests = served
    url = base + PAGES[page]
    dom = _run_chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    expected = {"home": "A first event in five minutes", "reference": "eventwire.AsyncPublisher"}
    assert expected[page] in dom.stdout
    assert 'class="md-header' in dom.stdout  # the theme rendered around the content
    screenshot = tmp_path / f"{page}.png"
    shot = _run_chromium(tmp_path, f"--screenshot={screenshot}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (1400, 1280)
    assert pixels.std() > 0.05, "a blank screenshot"
    failed = [(path, code) for path, code in requests if code >= 400]
    assert failed == []
    assert any(path.endswith(".css") for path, _ in requests)  # the stylesheets were loaded
    keep = os.environ.get("EVENTWIRE_DOCS_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / screenshot.name)
