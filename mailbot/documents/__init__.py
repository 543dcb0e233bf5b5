"""Reading what the proposal's files say: the Word form (python-docx) and the PDF scan (pypdf)."""
