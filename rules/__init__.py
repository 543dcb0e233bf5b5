"""The calls' rules: one TOML file per call and its lists, shipped as package data."""
