"""Install anywhere: the wheel, installed into a fresh venv outside the checkout, runs on its own.

Slow (about a minute): it builds the wheel as `pip wheel` does, installs it
without dependencies into a new virtual environment in a temporary folder,
and runs `mailbot demo`, `check` and `form-template` from a folder that is not
the checkout. The dependencies come from the test's own environment (no
network): the new venv sees the system's site-packages and, when the test
itself runs in a venv, that venv's site-packages through a .pth file.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAILBOT_CONFIG", "PYTHONPATH")}
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def build_wheel(out: Path) -> Path:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, ROOT, cwd=out)
    (wheel,) = out.glob("mailbot-*.whl")
    return wheel


def fresh_venv(where: Path) -> Path:
    """A new venv with pip, seeing the test environment's packages but not the checkout."""
    run(sys.executable, "-m", "venv", "--system-site-packages", where, cwd=where.parent)
    python = where / "bin" / "python"
    inner = run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=where
    )
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    # Plain path lines: the editable install's own .pth (the checkout) is not read from there.
    Path(inner.stdout.strip(), "test-environment.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists the packages by hand (rules/ and templates/ are mapped in)."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "mailbot").rglob("__init__.py")
    }
    assert found <= listed
    assert {"mailbot.rules", "mailbot.templates", "mailbot.migrations"} <= listed


@pytest.mark.slow
def test_the_wheel_runs_demo_check_and_form_template_outside_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "mailbot/rules/anso2021.toml",
        "mailbot/rules/cas_institutes.txt",
        "mailbot/rules/anso_members.txt",
        "mailbot/rules/ongoing_projects.txt",
        "mailbot/templates/reply/accepted.zh.txt.j2",
        "mailbot/templates/web/reply/reminder.en.txt.j2",
        "mailbot/templates/web/base.html",
        "mailbot/migrations/env.py",
        "mailbot/migrations/versions/0001_initial_schema.py",
        "mailbot/config.example.toml",
    ):
        assert shipped in names, shipped

    python = fresh_venv(tmp_path / "venv")
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    office = tmp_path / "office"
    office.mkdir()
    where = run(python, "-c", "import mailbot; print(mailbot.__file__)", cwd=office).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where
    mailbot = tmp_path / "venv" / "bin" / "mailbot"

    demo = run(mailbot, "demo", cwd=office).stdout
    assert "demo: 9 applicant mails delivered" in demo
    assert "ANSO2021-0001" in demo
    assert "中国科学院植物研究所" in demo
    replies = list((office / "demo" / "outbox").glob("*.eml"))
    assert len(replies) == 7

    sample = office / "mail.eml"
    sample.write_bytes((ROOT / "tests" / "data" / "coremail-accepted.eml").read_bytes())
    verdict = json.loads(run(mailbot, "check", sample, "--json", cwd=office).stdout)
    assert verdict["status"] == "accepted"
    assert verdict["form"]["institution"] == "中国科学院植物研究所"

    form = office / "forms" / "proposal.docx"
    assert f"form written to {form}" in run(mailbot, "form-template", form, cwd=office).stdout
    from docx import Document

    cells = [c.text for t in Document(str(form)).tables for r in t.rows for c in r.cells]
    assert any("项目名称" in text for text in cells)

    config = office / "etc" / "mailbot.toml"
    init = run(mailbot, "init", "--config", config, "--data-dir", office / "data", cwd=office)
    assert "Edit it next" in init.stdout
    assert "database ready" in run(mailbot, "--config", config, "init", cwd=office).stdout
    # The desk's pages come from the bundled templates too.
    login = run(python, "-c", DESK_LOGIN, config, cwd=office).stdout
    assert "200" in login.splitlines()[0]
    assert "<form" in login


DESK_LOGIN = """
import sys
from mailbot.app import App
from mailbot.config import load_settings
from mailbot.web.app import create_app

page = create_app(App.build(load_settings(sys.argv[1]))).test_client().get("/login")
print(page.status_code)
print(page.get_data(as_text=True))
"""
