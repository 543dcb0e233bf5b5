"""The quick run's promises: a test is marked by the server fixtures it uses, and a server that is
not installed skips the test that needs it, with the reason (under CI it fails instead)."""

from __future__ import annotations

import pytest

# A suite of three tests as a newcomer might write them, run by pytest inside this test.
SUITE = """
import pytest

from tests.servers.common import MissingDependencyError

MISSING = "dovecot binary not found; install the Debian package 'dovecot-imapd'"


@pytest.fixture
def dovecot():
    raise MissingDependencyError(MISSING)


def test_a_mailbox(dovecot):
    pass


def test_a_server_started_in_the_test():
    raise MissingDependencyError(MISSING)


def test_the_kernel():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini("[pytest]\naddopts = --strict-markers\nmarkers =\n    servers\n    browser\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_a_test_using_a_server_fixture_is_marked_and_left_out_of_the_quick_run(
    suite: pytest.Pytester,
) -> None:
    quick = suite.runpytest_inprocess("-p", "tests.fixtures", "-m", "not servers", "-q")
    quick.assert_outcomes(passed=1, skipped=1, deselected=1)
    servers = suite.runpytest_inprocess("-p", "tests.fixtures", "-m", "servers", "-q")
    servers.assert_outcomes(skipped=1, deselected=2)


def test_a_missing_server_is_a_skip_that_names_the_package(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess("-p", "tests.fixtures", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED*2*not installed here: dovecot binary not found*"])
    assert "dovecot-imapd" in result.stdout.str()


def test_under_ci_a_missing_server_fails(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_inprocess("-p", "tests.fixtures")
    result.assert_outcomes(passed=1, failed=1, errors=1)
