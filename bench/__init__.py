"""The intake benchmark against real servers on 127.0.0.1: `python -m bench` (see bench/run.py)."""
