"""Where mail comes from: IMAP (imapclient) or a local Maildir, behind one Mailbox protocol."""
