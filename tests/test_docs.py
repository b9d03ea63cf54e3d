"""`make docs` builds the API reference: a page per public module, with the docstrings.

The build is ``scripts/docs.sh`` (``python -m pdoc`` with the stub and template it
needs), run here into a temporary directory. Native functions and classes must carry
the full docstrings of ``_core.pyi``, not the short ones compiled into the module.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["realtalk", "realtalk/core", "realtalk/protocol", "realtalk/audio", "realtalk/server"]
PAGES += ["realtalk/relay"]
PAGES += ["realtalk/exceptions"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("docs") / "api"
    # The build uses the virtualenv running the tests.
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent)}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docs.sh"), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stderr


def docstring(page: Path, anchor: str) -> str:
    """The text of the docstring documented under ``id=anchor`` on ``page``."""
    text = page.read_text(encoding="utf-8")
    start = text.index(f'id="{anchor}"')
    body = text[text.index('<div class="docstring">', start) :]
    body = body[: body.index("</div>")]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", body)))


def test_every_public_module_has_a_page_and_nothing_private_does(docs: tuple[Path, str]) -> None:
    out, _ = docs
    assert (out / "index.html").is_file()
    pages = {p.relative_to(out).with_suffix("").as_posix() for p in out.rglob("*.html")}
    assert pages == {"index", *PAGES}


def test_the_build_is_warning_free(docs: tuple[Path, str]) -> None:
    _, stderr = docs
    assert "Warn" not in stderr, stderr


def test_session_api_is_documented(docs: tuple[Path, str]) -> None:
    out, _ = docs
    page = out / "realtalk.html"
    assert "Open a Realtime session" in docstring(page, "connect")
    interrupt = docstring(page, "Session.interrupt")
    assert "Stop the assistant now" in interrupt
    # Sphinx's "~" (short form) is dropped, the cross-reference stays a link.
    assert "~" not in interrupt
    assert 'href="realtalk/protocol.html#Interrupted"' in page.read_text(encoding="utf-8")


def test_native_api_has_the_stub_docstrings(docs: tuple[Path, str]) -> None:
    page = docs[0] / "realtalk" / "core.html"
    assert "Jitter buffer and playhead" in docstring(page, "PlaybackBuffer")
    assert "ties to even" in docstring(page, "f32_to_pcm16")
    # The signatures come from the stub too (the compiled module has no annotations).
    assert "float32" in page.read_text(encoding="utf-8").split('id="f32_to_pcm16"')[1][:3000]


def test_enum_members_keep_their_docs(docs: tuple[Path, str]) -> None:
    page = docs[0] / "realtalk" / "protocol.html"
    assert "conversation.item.truncate" in docstring(page, "InterruptAction.TRUNCATE")


def test_every_page_links_every_module(docs: tuple[Path, str]) -> None:
    out, _ = docs
    nav = (out / "realtalk" / "server.html").read_text(encoding="utf-8").split("<h2>Modules</h2>")
    assert len(nav) == 2
    for module in ("realtalk.core", "realtalk.protocol", "realtalk.audio", "realtalk.exceptions"):
        assert f">{module}</a>" in nav[1]
