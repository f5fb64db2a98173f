"""Colours of states and the dark wall-screen palette: one source for the CSS (as variables) and the map (as RGBA)."""
from __future__ import annotations

STATE_COLORS = {
    "good": "#22c55e",
    "watch": "#eab308",
    "warning": "#f97316",
    "critical": "#ef4444",
    "neutral": "#38bdf8",
    "no_data": "#64748b",
}
STATE_LABELS = {
    "good": ("Good", "正常"),
    "watch": ("Watch", "关注"),
    "warning": ("Warning", "预警"),
    "critical": ("Critical", "告警"),
    "neutral": ("Info", "信息"),
    "no_data": ("No data", "无数据"),
}
PALETTE = {
    "bg": "#0b1220",
    "panel": "#111a2e",
    "panel-edge": "#1e2a44",
    "text": "#e2e8f0",
    "muted": "#94a3b8",
    "accent": "#38bdf8",
}


def rgba(hex_color: str, alpha: int = 255) -> list[int]:
    hex_color = hex_color.lstrip("#")
    return [int(hex_color[i:i + 2], 16) for i in (0, 2, 4)] + [alpha]


def css_variables() -> str:
    """``:root { --state-good: …; --bg: …; }`` for the page's <style>."""
    entries = [f"--state-{k.replace('_', '-')}: {v};" for k, v in STATE_COLORS.items()]
    entries += [f"--{k}: {v};" for k, v in PALETTE.items()]
    return ":root {" + " ".join(entries) + "}"
