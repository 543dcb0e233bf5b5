"""Connections to the mail servers: TLS, OAuth2 tokens, which hosts are this machine."""
