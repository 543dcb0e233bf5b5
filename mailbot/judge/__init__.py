"""Judging one mail: the checks, the limits they run under, the judging processes, the Verdict."""
