"""Application services between the protocol adapters and the store.

Recipient checks (``checks``), what an outcome does and the notices it sends (``outcomes``),
the tenant directory (``tenants``), SMTP credentials (``credentials``), DKIM signing with the
tenant's keys (``signing``), DNS look-ups (``dns``) and retention (``retention``).
"""
