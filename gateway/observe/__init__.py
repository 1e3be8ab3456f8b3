"""What the gateway tells the world about itself.

Events and their sinks (``events``), Prometheus metrics (``metrics``), structured logs
(``logging``) and webhooks with their outbox (``webhooks``).
"""
