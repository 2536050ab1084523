"""The serve page as package data: the template shipped, filled in once, values escaped."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

import pytest
from helpers.paths import REPO

from vpr.serve import page


def test_every_placeholder_is_filled_and_the_settings_parse():
    rendered = page.render_page(1234567, 3, 40, 3 * 2**19, max_batch_files=7,
                                max_batch_bytes=2**20)
    assert not re.search(r"__[A-Z_]+__", rendered)
    assert "Index of 1,234,567 geotagged images." in rendered
    assert 'max="40"' in rendered and 'value="3"' in rendered
    assert "at most 1.5 MB a photo" in rendered
    settings = re.search(r'<script type="application/json" id="settings">(.*?)</script>',
                         rendered).group(1)
    assert json.loads(settings) == {"maxUploadBytes": 3 * 2**19, "maxBatchFiles": 7,
                                    "maxBatchBytes": 2**20, "tileUrl": page.TILE_URL}


def test_values_are_escaped_and_never_searched_for_placeholders(monkeypatch):
    # The tile URL is a constant today; if it ever held markup, it must not end the <script>.
    monkeypatch.setattr(page, "TILE_URL", "</script><b>__IMAGES__</b>")
    rendered = page.render_page(5, 1, 2, 2**20)
    settings = rendered.split('id="settings">', 1)[1].split("</script>", 1)[0]
    assert json.loads(settings)["tileUrl"] == "</script><b>__IMAGES__</b>"
    assert "</script><b>" not in rendered
    assert rendered.count("__IMAGES__") == 1  # the value's own text, left as it was


def test_a_template_that_drifted_from_the_code_is_a_clear_error(monkeypatch):
    template = page.page_template()
    monkeypatch.setattr(page, "page_template", lambda: template + "<p>__NEW_VALUE__</p>")
    with pytest.raises(RuntimeError, match="NEW_VALUE"):
        page.render_page(5, 1, 2, 2**20)
    monkeypatch.setattr(page, "page_template", lambda: template.replace("__TOP_K__", "5"))
    with pytest.raises(RuntimeError, match="TOP_K"):
        page.render_page(5, 1, 2, 2**20)


def test_the_serve_package_data_is_declared_for_the_wheel():
    # A file under vpr/serve/ that no package-data pattern names is missing from an install.
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["vpr.serve"]
    serve = REPO / "src" / "vpr" / "serve"
    data = [path.relative_to(serve).as_posix() for path in serve.rglob("*")
            if path.is_file() and path.suffix not in {".py", ".pyc"}]
    assert "templates/page.html" in data and "static/page.js" in data
    unshipped = [name for name in data
                 if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert unshipped == []
