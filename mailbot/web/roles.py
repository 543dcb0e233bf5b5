"""The desk's account roles, apart from the desk so that `mailbot user add` offers them cheaply."""

# admin: everything, and the accounts; editor: reads and acts; viewer: reads only.
ROLES = ("admin", "editor", "viewer")
