"""Byte-level message helpers and DKIM.

Message content stays the bytes received; headers are only ever prepended (``rawmail``), and
``dkim`` signs those bytes as they will be sent.
"""
