"""The dashboard: Dash pages, components and map builders. It never computes an indicator itself; it asks
``dashboard.services``, the one bridge to ``layers`` and ``metrics``."""
