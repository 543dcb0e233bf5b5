"""Readings of one mail that several checks share: its subject, its files, its documents.

Each is computed once per mail by :class:`mailbot.judge.checks.case.Case` and
never does I/O; a reading knows nothing of the checks that use it.
"""
