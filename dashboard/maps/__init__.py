"""Our thin adapter over deckgl-dash: map components and layer specs built from plain data."""
