"""Tasks (registered on import)."""
