"""The call as data: rules/anso2021.toml loads, and a broken rules file says what is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailbot.calls import Call, RulesError, load_call, normalise_name, parse_size
from tests.conftest import RULES, write_rules


def test_deadline_is_end_of_july_30_beijing(call: Call) -> None:
    assert call.deadline == datetime(2021, 7, 31, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert call.deadline.isoformat() == "2021-07-31T00:00:00+08:00"


def test_call_facts(call: Call) -> None:
    assert call.id == "anso2021"
    assert call.call.mailbox == "anso2021program@anso.org.cn"
    assert (
        call.expected_subject("中国科学院植物研究所", "张喆")
        == "合作专项建议书：中国科学院植物研究所+张喆"
    )
    assert call.attachments.word_extensions == [".docx", ".doc"]
    assert call.attachments.pdf_extensions == [".pdf"]
    assert call.attachments.max_file_size == 50 * 1024 * 1024


def test_sizes() -> None:
    assert parse_size("1KB") == 1024
    assert parse_size("1.5 mb") == 1572864
    assert parse_size(10) == 10
    with pytest.raises(ValueError):
        parse_size("lots")


def test_names_compare_after_nfkc_without_white_space() -> None:
    assert normalise_name("中国科学院 植物研究所＋张 喆") == normalise_name(
        "中国科学院植物研究所+张喆"
    )
    assert normalise_name("ＡＢＣ") == normalise_name("abc")


def _rules_with(tmp_path: Path, old: str, new: str) -> Path:
    text = RULES.read_text(encoding="utf-8")
    assert old in text
    return write_rules(tmp_path, text.replace(old, new), "broken.toml")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('deadline = "2021-07-30 24:00"', 'deadline = "2021-07-32 24:00"', "[call] deadline"),
        ('deadline = "2021-07-30 24:00"', 'deadline = "July 30"', "[call] deadline"),
        ('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"', "[call] timezone"),
        ('max_file_size = "50MB"', 'max_file_size = "big"', "[attachments] max_file_size"),
        ('pdf_extensions = [".pdf"]', 'pdf_extensions = ["pdf"]', "[attachments] pdf_extensions"),
        ('stem = "{institution}+{pi}"', 'stem = "{institution}"', "[naming] stem"),
        ('prefix = "合作专项建议书"', 'prefixx = "合作专项建议书"', "[subject] prefix: missing"),
        ('mailbox = "anso2021program@anso.org.cn"', 'mailbox = "anso"', "[call] mailbox"),
        ("[call]", "[call]\ncolour = 'red'", "[call] colour: unknown key"),
    ],
)
def test_a_bad_key_is_named_with_its_file(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = _rules_with(tmp_path, old, new)
    with pytest.raises(RulesError) as info:
        load_call(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[call\n", encoding="utf-8")
    with pytest.raises(RulesError, match="not valid TOML"):
        load_call(bad)
    with pytest.raises(RulesError, match="no such rules file"):
        load_call(tmp_path / "absent.toml")


def test_a_new_call_is_a_new_file(tmp_path: Path) -> None:
    text = (
        RULES.read_text(encoding="utf-8")
        .replace('id = "anso2021"', 'id = "anso2022"')
        .replace('"2021-07-30 24:00"', '"2022-06-15 17:30"')
        .replace('prefix = "合作专项建议书"', 'prefix = "2022合作专项申请"')
    )
    call = load_call(write_rules(tmp_path, text, "anso2022.toml"))
    assert call.id == "anso2022"
    assert call.deadline == datetime(2022, 6, 15, 17, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert call.deadline - timedelta(days=1) < call.deadline
    assert call.expected_subject("甲所", "乙") == "2022合作专项申请：甲所+乙"


def test_a_missing_list_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(RULES.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RulesError, match=r"\[lists\] cas_institutes: cannot read"):
        load_call(path)


def test_the_lists_are_read(call: Call) -> None:
    assert "中国科学院植物研究所" in call.institution_lists.cas_institutes
    assert "Institute of Botany" in call.institution_lists.cas_institutes
    assert "Kasetsart University" in call.institution_lists.anso_members
    assert all(not name.startswith("#") for name in call.institution_lists.cas_institutes)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_months = ",
            'max_months = "x" #',
            "[form] limits.max_months: Input should be a "
            "valid integer, unable to parse string as an integer",
        ),
        (
            "max_months = ",
            "max_months = 3.5 #",
            "[form] limits.max_months: Input should be a "
            "valid integer, got a number with a fractional part",
        ),
        (
            'pdf_extensions = [".pdf"]',
            "pdf_extensions = [1]",
            "[attachments] pdf_extensions.0: Input should be a valid string",
        ),
        (
            'pdf_extensions = [".pdf"]',
            'pdf_extensions = ".pdf"',
            "[attachments] pdf_extensions: Input should be a valid list",
        ),
        ("[naming]", "[naming]\n[naming.x]", "[naming] x: unknown key"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_as_before(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    with pytest.raises(RulesError) as info:
        load_call(_rules_with(tmp_path, old, new))
    assert expected in str(info.value)


def test_every_wrong_key_is_named_at_once(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8")
    text = text.replace('mailbox = "anso2021program@anso.org.cn"', 'mailbox = "anso"')
    text = text.replace("[call]", "[call]\ncolour = 'red'")
    with pytest.raises(RulesError) as info:
        load_call(write_rules(tmp_path, text, "broken.toml"))
    assert "[call] mailbox: expected an e-mail address, got 'anso'; " in str(info.value)
    assert str(info.value).endswith("[call] colour: unknown key")


def test_a_numeric_string_and_an_integer_are_read_as_numbers(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8").replace("max_months = ", 'max_months = "7" #')
    call = load_call(write_rules(tmp_path, text, "r.toml"))
    assert call.form is not None
    assert call.form.limits.max_months == 7
    assert isinstance(call.form.limits.budget_min_wan, float)
