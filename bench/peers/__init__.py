"""Peer drivers: each runs inside its own venv (bench/.venvs/<peer>) with the standard library
plus that peer, prints one ``BENCH-RESULT {json}`` line, and exits."""
