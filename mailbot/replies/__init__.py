"""Replies: rendered from templates, queued with the verdict, sent by a separate job."""
