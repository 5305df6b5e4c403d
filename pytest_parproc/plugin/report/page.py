"""The ``--par-report`` page: one self-contained HTML file, its script, style and data inline."""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from .timeline import Tests

#: the page's script and style, read from beside this module
SCRIPT_FILE = "timeline.js"
STYLE_FILE = "timeline.css"
#: the id of the ``<script type="application/json">`` element that holds the data
DATA_ELEMENT_ID = "parproc-data"

# The HTML parser ends a <script> element at the first "</script" whatever it is inside of
# (HTML Living Standard, "script data state"), and "<!--" inside one changes how it ends: JSON
# escapes for these characters keep any node id from ending the data early.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def write_page(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write the timeline page of a run to ``path``, replacing what was there at once (a
    temporary file in the same folder, then ``os.replace``), so a reader never sees half a page.

    ``data`` (all times in seconds from the run's start):

    - ``title``, ``backend``, ``n_jobs``, ``started`` (epoch seconds), ``wall_s``,
      ``test_time_s``, ``speedup`` (or None, with the reason in ``no_speedup``);
    - ``lanes``: ``{"id", "label", "kind", "note", "startup": [start, end] or None}`` in display
      order; ``kind`` is ``main``, ``shared``, ``worker`` or ``serial``;
    - ``tests``: ``[lane index, node id, outcome, start, end, phases, flag]``, ``phases`` being
      ``[when, start, end, outcome]`` and ``flag`` one of ``""``, ``"crash"``, ``"timeout"``;
    - ``events``: ``[lane index, name, start, end]``; ``markers``: ``[lane index, kind, time,
      text]``;
    - ``summary``: ``wall_s``, ``speedup``, ``busy`` (``[lane id, seconds, share]``), ``longest``
      (``[node id, lane id, seconds]``), ``idle_at_end`` (``[lane id, seconds]``) and
      ``idle_at_end_s``.

    Every field is optional to the page: it draws what it is given.
    """
    target = Path(path)
    page = render_page(data)
    descriptor, temporary_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        # (a node id from a path that is not UTF-8 holds lone surrogates: written escaped,
        # which JSON reads back as the same code point)
        with os.fdopen(
            descriptor, "w", encoding="utf-8", errors="backslashreplace", newline="\n"
        ) as stream:
            stream.write(page)
        # mkstemp makes the file readable by its owner only; a report is shared like any
        # other build output.
        os.chmod(temporary_name, 0o644)
        os.replace(temporary_name, target)
    except BaseException:
        try:
            os.unlink(temporary_name)
        except OSError:
            pass
        raise


def render_page(data: dict[str, Any]) -> str:
    """The page's HTML text for ``data`` (see ``write_page``)."""
    folder = Path(__file__).parent
    script = (folder / SCRIPT_FILE).read_text(encoding="utf-8")
    style = (folder / STYLE_FILE).read_text(encoding="utf-8")
    # Both are inlined as they are: an end tag inside them would cut the page short.
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError(f"{SCRIPT_FILE} or {STYLE_FILE} holds an end tag and cannot be inlined")
    title = html.escape(str(data.get("title") or "pytest-parproc run"))
    return "".join(
        [
            "<!DOCTYPE html>\n",
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{title}</title>\n",
            f"<style>\n{style}\n</style>\n",
            "</head>\n<body>\n",
            '<div id="page-error" hidden></div>\n',
            f'<header id="header">\n<h1 id="title">{title}</h1>\n<p id="run-info"></p>\n',
            "</header>\n",
            "<noscript><p>This page draws its timeline with JavaScript; "
            "allow scripts to see it.</p></noscript>\n",
            '<section id="summary"></section>\n',
            '<section id="timeline-section">\n',
            '<div id="toolbar"></div>\n<div id="legend"></div>\n',
            '<div id="timeline"></div>\n</section>\n',
            '<div id="tooltip" hidden></div>\n',
            f'<script type="application/json" id="{DATA_ELEMENT_ID}">{data_json(data)}</script>\n',
            f"<script>\n{script}\n</script>\n",
            "</body>\n</html>\n",
        ]
    )


def data_json(data: dict[str, Any]) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element and that ``JSON.parse``
    reads: NaN and infinities (which ``json.dumps`` writes and JSON has not) become null."""
    tests = data.get("tests")
    fast = isinstance(tests, Tests)  # (a run's: written at once, see ``Tests``)
    if fast:
        data = {**data, "tests": []}
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # Rare enough to pay for a second pass over the data only when it happens.
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if fast:
        assert isinstance(tests, Tests)
        text = text.replace('"tests":[]', f'"tests":{tests.json()}', 1)
    for character, escape in _JSON_ESCAPES.items():
        text = text.replace(character, escape)
    return text


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
