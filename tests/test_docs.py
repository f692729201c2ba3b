"""The README and the API docs match the code."""

from __future__ import annotations

import re
from pathlib import Path

from tsstats.config import SETTINGS

ROOT = Path(__file__).parent.parent


def test_readme_settings_table_matches_the_settings():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `(--[\w-]+)` \| `(TSSTATS_\w+)` \| `([^`]*)` \| (.*) \|$", readme, re.M)
    assert [row[0] for row in rows] == [setting.name for setting in SETTINGS]
    for (name, flag, env, default, meaning), setting in zip(rows, SETTINGS, strict=True):
        assert (flag, env, default, meaning) == (setting.flag, setting.env_var, setting.shown_default(),
                                                 setting.help), name


def test_readme_commands_exist():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/serve.sh" in readme and "bash scripts/test.sh" in readme
    assert (ROOT / "scripts/serve.sh").exists() and (ROOT / "scripts/test.sh").exists()
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()


def test_api_docs_name_every_route():
    from tsstats.server import create_app  # noqa: F401  (the routes are declared there)

    source = (ROOT / "tsstats/server.py").read_text()
    routes = set(re.findall(r'@route\("([^"]+)"', source))
    docs = (ROOT / "docs/api.md").read_text()
    for route in routes:
        shown = re.sub(r"<(\w+):str>", r"{id}", route)
        assert shown in docs, route
