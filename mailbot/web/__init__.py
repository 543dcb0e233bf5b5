"""The secretariat's intake desk: a web page to read, search and act on submissions."""
