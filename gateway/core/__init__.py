"""Pure domain: no I/O, stdlib only. Adapters wrap it."""
