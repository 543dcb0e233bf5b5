"""`python -m bench checkjson [--write]`: is `mailbot check --json` unchanged?

Runs `mailbot check --json` (the click command itself, in this process) on
every mail the project and its neighbours hold:

- the files under tests/data;
- one mail per client of tests/mailfactory/, and its deliberately broken mails;
- every mail under ../shared/corpora (where that folder is present).

and compares each output with the digest recorded in bench/results/check-json.json.
`--write` records the digests instead (after a change meant to alter a verdict).
A mail whose own bytes differ from the recorded ones is reported as such: that
is a change of input, not of mailbot. Exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
RECORD = ROOT / "bench" / "results" / "check-json.json"
UNKNOWN_AT = "2021-07-20T10:00:00+08:00"
_NOT_MAIL = {"LICENSE", "NOTICE", "README.md"}


def _project_mails() -> Iterator[tuple[str, bytes]]:
    for path in sorted((ROOT / "tests" / "data").glob("*.eml")):
        yield f"tests/data/{path.name}", path.read_bytes()
    from tests import mailfactory as factory
    from tests.mailfactory.base import Att
    from tests.mailfactory.broken import (
        broken_bad_base64,
        broken_no_boundary,
        broken_unknown_charset,
    )
    from tests.mailfactory.documents import docx_bytes, pdf_bytes

    attachments = [
        Att(f"{factory.SAMPLE_STEM}.docx", docx_bytes()),
        Att(f"{factory.SAMPLE_STEM}.pdf", pdf_bytes()),
    ]
    for client in factory.CLIENTS:
        yield (
            f"mailfactory/{client}",
            factory.build_mail(client, subject=factory.SAMPLE_SUBJECT, attachments=attachments),
        )
    broken: list[Callable[[], bytes]] = [
        broken_no_boundary,
        broken_bad_base64,
        broken_unknown_charset,
    ]
    for make in broken:
        yield f"mailfactory/{make.__name__}", make()


def _corpus_mails() -> Iterator[tuple[str, bytes]]:
    if not CORPORA.is_dir():
        return
    for path in sorted(CORPORA.rglob("*")):
        if path.is_file() and path.name not in _NOT_MAIL:
            yield f"corpora/{path.relative_to(CORPORA)}", path.read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def outputs() -> dict[str, dict[str, str]]:
    """Each mail's name -> the digests of its bytes and of `check --json`'s output."""
    from mailbot.cli import main

    runner = CliRunner()
    env = {"MAILBOT_CONFIG": None}
    found: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, raw in [*_project_mails(), *_corpus_mails()]:
            mail = Path(folder) / "mail.eml"
            mail.write_bytes(raw)
            result = runner.invoke(main, ["check", "--json", str(mail)], env=env)
            if b'"received_at_unknown"' in result.stdout_bytes:
                # Judged as received now: judge it again at a fixed time to compare.
                args = ["check", "--json", "--received-at", UNKNOWN_AT, str(mail)]
                result = runner.invoke(main, args, env=env)
            found[name] = {
                "mail": _sha(raw),
                "exit": str(result.exit_code),
                "output": _sha(result.stdout_bytes),
            }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench checkjson", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--write", action="store_true", help="record the digests")
    args = parser.parse_args(argv)
    os.environ.pop("MAILBOT_CONFIG", None)
    found = outputs()
    if args.write:
        RECORD.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{len(found)} outputs recorded in {RECORD.relative_to(ROOT)}")
        return 0
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    differ = 0
    for name, now in found.items():
        was = recorded.get(name)
        if was is None:
            print(f"new     {name}")
        elif was["mail"] != now["mail"]:
            print(f"input   {name}: the mail itself changed")
            differ += 1
        elif was != now:
            print(f"CHANGED {name}")
            differ += 1
    absent = len(set(recorded) - set(found))
    print(
        f"{len(found)} mails checked, {differ} differ"
        + (f"; {absent} recorded mails not present here" if absent else "")
    )
    return 1 if differ else 0
