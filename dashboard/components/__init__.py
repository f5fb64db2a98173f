"""Render-only components: they take plain data and return Dash components."""
