"""Criterions (registered on import)."""
