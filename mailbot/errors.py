"""The root of mailbot's errors, and the whole tree drawn in one place.

Outcomes for a mail (accepted, needs correction, late, ignored) are verdicts,
not exceptions. Exceptions are for the operator's mistakes and broken
surroundings, and each one carries what the operator needs to fix it: the
command line prints it as one line (``mailbot: ...``, exit 2), the daemon
logs it and carries on with the next mail or the next poll. Each error is
defined beside the code that raises it::

    * MailbotError (mailbot.errors): anything mailbot reports to its operator as one line
      x RulesError (mailbot.calls): a rules file that cannot be read or describes no call
      x ConfigError (mailbot.config): a settings file that cannot be read or holds a wrong
        value
      x OAuth2Error (mailbot.net.oauth2): no access token: the provider refused the refresh
        token or is unreachable; the IMAP source and SMTP transport report it as theirs
      x SourceError (mailbot.sources.base): the mailbox cannot be reached or refused an
        operation; the daemon retries at the next poll
        + LoginRefused (mailbot.sources.imap): the IMAP server refused the login (user name,
          password or token), in the server's words
      x DatabaseError (mailbot.store.db): the database cannot be reached or its schema is
        not mailbot's
      x StoreError (mailbot.store.blobs): a blob cannot be written (disk full, read-only,
        not ours); the mail stays in the mailbox for the next poll
      x LeaseLost (mailbot.store.leases): another daemon took this mailbox's lease while
        this one ran: it stops recording mail
      x LeaseHeld (mailbot.store.leases): another daemon serves this mailbox: nothing was done
      x JudgeError (mailbot.judge.bounded): mailbot's own code failed on one mail in a
        judging process; raised at the daemon's per-mail boundary, with the traceback
      x RenderError (mailbot.replies.render): a reply template is missing, broken, or has
        no Subject line
      x ReplyError (mailbot.replies.outbox): a reply cannot be built: the From address in
        the settings is unusable
      x TransportError (mailbot.replies.transports): one reply could not be handed over;
        a later attempt may succeed
        + TransportUnavailable (mailbot.replies.transports): no reply can be handed over
          now: the server is unreachable or refuses us
        + DeliveryUncertain (mailbot.replies.transports): the server had the whole reply
          but its answer never came: the reply may have been delivered
      x ClaimLost (mailbot.replies.sender): the reply being sent is no longer "sending":
        another sender reset or took it
      x BackupError (mailbot.service.backup): a backup or restore cannot go on; names the
        place and what is wrong there
      x PacketError (mailbot.ledger.packet): the review packet cannot be made: a file of
        an accepted submission is missing from the store or no longer matches its sha256
      x AccountError (mailbot.web.auth): a desk account cannot be created or changed as
        asked (shown on the desk's page)
      x ActionError (mailbot.web.actions): the desk refuses an act, with the reason as a
        code (web.labels.REFUSALS says it in words)
      x LetterError (mailbot.web.letters): the desk's letters.toml cannot be read

Two exceptions stand outside the tree on purpose, as a mail's outcomes do;
neither ever reaches the operator::

    * Unsettled (mailbot.mail.fastmime): the fast base64 path lost a token it cut out;
      parsing catches it and reads the whole mail the standard library's way
    * UnreadableDocument (mailbot.documents.word): an applicant's Word or PDF file
      cannot be read; it becomes a Problem (word_unreadable, pdf_unreadable) in the
      verdict, worded for the applicant in Chinese and English

tests/test_layout.py reads this tree and fails when it names a class that is
not there, misses one, or puts one under the wrong parent.
"""


class MailbotError(Exception):
    """Anything mailbot reports to its operator as a one-line error."""
