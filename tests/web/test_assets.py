"""The dashboard works offline: every asset is served by the package, and the vendored files
are exactly the ones VENDORED.md names."""

from __future__ import annotations

import hashlib
import re

from califusion.web.render import STATIC_DIR, TEMPLATES_DIR

VENDOR = STATIC_DIR / "vendor"
# a URL that would make the browser fetch something from elsewhere
EXTERNAL = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import"""
)


def test_vendored_files_match_their_recorded_hashes() -> None:
    listed = {}
    for line in (VENDOR / "VENDORED.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"[0-9a-f]{64}", cells[-1]):
            listed[cells[0]] = cells[-1]
    present = {p.name for p in VENDOR.iterdir() if p.name != "VENDORED.md"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_pages_and_our_own_assets_load_nothing_from_elsewhere() -> None:
    files = [*TEMPLATES_DIR.glob("*.html"), *STATIC_DIR.glob("*.css"), *STATIC_DIR.glob("*.js")]
    assert len(files) > 10
    for path in files:
        assert not EXTERNAL.search(path.read_text()), path.name


def test_templates_carry_no_inline_script_or_style() -> None:
    """The Content-Security-Policy forbids them; they would silently not run."""
    for path in TEMPLATES_DIR.glob("*.html"):
        text = path.read_text()
        assert "<style" not in text, path.name
        assert " style=" not in text, path.name
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert not re.search(r"\son[a-z]+=", text), path.name
        assert "hx-on" not in text, path.name
