"""The reply and desk templates, shipped inside mailbot as package data (mailbot.templates)."""
