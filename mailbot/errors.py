"""The root of mailbot's errors.

Outcomes for a mail (accepted, needs correction, late, ignored) are verdicts,
not exceptions. Exceptions are for the operator's mistakes and broken
surroundings, and each one carries what the operator needs to fix it::

    MailbotError
     ├── RulesError      (mailbot.calls)   a rules file that cannot be used
     ├── ConfigError     (mailbot.config)  a settings file that cannot be used
     └── OAuth2Error     (mailbot.net.oauth2)  no access token: the provider refused or is
                                               unreachable; the IMAP source and SMTP transport
                                               report it as theirs
"""


class MailbotError(Exception):
    """Anything mailbot reports to its operator as a one-line error."""
