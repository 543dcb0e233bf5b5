"""What the secretariat sees, read from the database: the CLI, the desk and the digest all ask here.

- ``labels``: status names in Chinese and English, one table for every reader.
- ``log``: the intake log, one row per submission, filtered, sorted and paged in SQL.
- ``search``: what a search box matches (reference, institution and its aliases, PI,
  sender, title).
- ``attention``: the one definition of mail and letters needing a person.
- ``activity``: what happened lately (mail, letters, decisions).
- ``submission``: one submission in full, each mail with the version it made.
- ``export``: the log as a spreadsheet, guarded against formulas.
"""
