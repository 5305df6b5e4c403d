"""Headless Chromium for the report page's tests: find it, dump a page's DOM, take a screenshot."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_parproc.plugin.report.page import DATA_ELEMENT_ID

#: looked for on PATH in this order, after ``$PARPROC_BROWSER``
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT_S = 120.0
#: how long the page's timers may run (virtual time: a page that is idle sooner ends sooner)
VIRTUAL_TIME_BUDGET_MS = 10000


class BrowserError(RuntimeError):
    """The browser failed or ran past its time; keeps the command and what it wrote."""

    def __init__(self, command: list[str], returncode: int | None, stderr: str) -> None:
        super().__init__(
            f"{command[0]} exited with {returncode}: {' '.join(command[1:])}\n{stderr[-4000:]}"
        )
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


def find_browser() -> str | None:
    """The path of a Chromium, ``$PARPROC_BROWSER`` first, or None where there is none."""
    chosen = os.environ.get("PARPROC_BROWSER")
    if chosen:
        return shutil.which(chosen)
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def _run_browser(html_path: str | os.PathLike[str], *arguments: str, fragment: str = "") -> str:
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium: apt-get install chromium, or set $PARPROC_BROWSER")
    url = Path(html_path).resolve().as_uri() + fragment
    # A fresh profile per call: two browsers on one profile wait on its lock.
    with tempfile.TemporaryDirectory(
        prefix="parproc-browser-", ignore_cleanup_errors=True
    ) as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            *arguments,
            url,
        ]
        # A session of its own: on a timeout the whole browser (a wrapper script, its zygote
        # and renderers) is killed, not only the process that subprocess started.
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            raise BrowserError(command, None, stderr.decode(errors="replace")) from None
    if process.returncode != 0:
        raise BrowserError(command, process.returncode, stderr.decode(errors="replace"))
    return stdout.decode("utf-8", errors="replace")


def dump_dom(
    html_path: str | os.PathLike[str],
    *,
    width: int = 1400,
    height: int = 900,
    fragment: str = "",
) -> str:
    """The page's DOM as HTML after its scripts ran, in a window of ``width`` x ``height``;
    ``fragment`` (``#...``) is added to the page's address."""
    return _run_browser(
        html_path, f"--window-size={width},{height}", "--dump-dom", fragment=fragment
    )


def screenshot(
    html_path: str | os.PathLike[str],
    png_path: str | os.PathLike[str],
    width: int,
    height: int,
    *,
    fragment: str = "",
) -> None:
    """A PNG of the page's first ``width`` x ``height`` pixels, written to ``png_path``."""
    _run_browser(
        html_path,
        f"--screenshot={Path(png_path).resolve()}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        fragment=fragment,
    )


def require_browser() -> str:
    """The browser's path, or the test is skipped saying how to get one."""
    path = find_browser()
    if path is None:
        pytest.skip(
            "no Chromium (chromium, chromium-browser, google-chrome or $PARPROC_BROWSER): "
            "apt-get install chromium"
        )
    return path


# Tags that have no end tag: html.parser reports only their start.
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}


@dataclass
class Node:
    tag: str
    attributes: dict[str, str]
    #: position of the element around it in ``Dom.nodes``
    parent: int | None
    #: ``data-lane`` of the lane row it is in (its own, for a row)
    lane: str | None

    @property
    def classes(self) -> set[str]:
        return set(self.attributes.get("class", "").split())


class Dom(HTMLParser):
    """The elements of a dumped page in document order, and the text inside each id."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.nodes: list[Node] = []
        self._open: list[int] = []
        self._texts: dict[str, list[str]] = defaultdict(list)
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        parent = self._open[-1] if self._open else None
        inherited = self.nodes[parent].lane if parent is not None else None
        self.nodes.append(Node(tag, attributes, parent, attributes.get("data-lane", inherited)))
        if tag not in VOID_TAGS:
            self._open.append(len(self.nodes) - 1)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, -1, -1):
            if self.nodes[self._open[depth]].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        for index in self._open:
            element_id = self.nodes[index].attributes.get("id")
            if element_id and element_id != DATA_ELEMENT_ID:
                self._texts[element_id].append(data)

    def text(self, element_id: str) -> str:
        return " ".join(" ".join(self._texts[element_id]).split())

    def by_id(self, element_id: str) -> Node:
        (node,) = [node for node in self.nodes if node.attributes.get("id") == element_id]
        return node

    def with_class(self, name: str) -> list[Node]:
        return [node for node in self.nodes if name in node.classes]

    def children(self, node: Node) -> list[Node]:
        position = self.nodes.index(node)
        return [child for child in self.nodes if child.parent == position]


def drawn(path: Path, fragment: str = "") -> Dom:
    """The page at ``path`` after Chromium ran its script, which must have drawn it whole."""
    dom = Dom(dump_dom(path, fragment=fragment))
    assert dom.text("page-error") == ""
    (body,) = [node for node in dom.nodes if node.tag == "body"]
    assert body.attributes.get("data-state") == "drawn"
    return dom
