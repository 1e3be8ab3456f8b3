"""Fakes for tests: a loopback DNS server (``dns_server``) and a scripted MTA (``mx``)."""
