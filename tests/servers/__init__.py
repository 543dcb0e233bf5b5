"""Real servers on 127.0.0.1 for integration tests, one module per server.

- common.py: ports, the account a server runs as, work folders, MissingDependencyError,
  ServerError and the start/stop/close lifecycle every server shares;
- dovecot.py: Dovecot IMAP with one Maildir user (plain, STARTTLS, IMAPS);
- smtp.py: an aiosmtpd sink that records every message;
- postgres.py: a throwaway PostgreSQL cluster with one login role;
- oauth.py: an OAuth2 provider, and Dovecot and an SMTP sink that take its tokens;
- coremail.py: a stand-in for Coremail's IMAP, which refuses SELECT before ID.

Import from the module that holds a name, e.g. ``from tests.servers.dovecot import Dovecot``.
"""
