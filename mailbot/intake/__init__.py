"""The intake: poll the mailbox, record each mail and its submission in one transaction, file it."""
