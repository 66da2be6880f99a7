"""The README's images come from the browser tests, not from someone's screen.

Every ``docs/*.png`` the README shows (and every ``docs/*.png`` in the tree) is
saved by a browser test through ``screenshot(..., docs="NAME.png")``
(tests/browser/conftest.py), which ``make screenshots``
(scripts/update_screenshots.sh) runs to regenerate them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _docs_images_the_tests_save() -> dict[str, str]:
    saved: dict[str, str] = {}
    for path in sorted((ROOT / "tests" / "browser").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "screenshot":
                for keyword in node.keywords:
                    if keyword.arg == "docs" and isinstance(keyword.value, ast.Constant):
                        assert keyword.value.value not in saved, keyword.value.value
                        saved[str(keyword.value.value)] = path.name
    return saved


def test_every_readme_image_is_saved_by_a_browser_test() -> None:
    saved = _docs_images_the_tests_save()
    shown = re.findall(r"\]\(docs/([\w.-]+\.png)\)", (ROOT / "README.md").read_text())
    assert shown, "the README shows no docs/ image"
    in_tree = sorted(p.name for p in (ROOT / "docs").glob("*.png"))
    assert sorted(set(shown)) == in_tree, (shown, in_tree)  # no unused or missing image
    missing = [name for name in shown if name not in saved]
    assert missing == [], f"README images no browser test saves: {missing}"
    assert sorted(saved) == in_tree, saved  # and no test saves an image nothing shows
    script = (ROOT / "scripts" / "update_screenshots.sh").read_text()
    assert "DSPEX_UPDATE_SCREENSHOTS=1" in script and 'docs="' in script
