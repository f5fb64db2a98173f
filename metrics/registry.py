"""The indicator registry: every city vital sign is declared here once.

The dashboard's KPI cards, map colouring, legends and indicator picker are generated from :data:`INDICATORS`; one
formula + one declaration + one test adds an indicator.
"""
from __future__ import annotations

from metrics import sensors, workorders
from metrics.spec import Indicator, Thresholds

TOPICS = {
    "requests": ("Public requests and work orders", "民意诉求与工单"),
    "sensors": ("Sensor network health", "物联感知"),
    "environment": ("Environment", "生态环境"),
}

_PERCENT = "{:.2f}"
_SERVICE_DESK = "Government Service and Data Bureau"


def _rate_higher_is_better(critical_below: float, warning_below: float, watch_below: float) -> Thresholds:
    return Thresholds.of("critical", (critical_below, "warning"), (warning_below, "watch"), (watch_below, "good"))


def _lower_is_better(watch_from: float, warning_from: float, critical_from: float) -> Thresholds:
    return Thresholds.of("good", (watch_from, "watch"), (warning_from, "warning"), (critical_from, "critical"))


INDICATORS: dict[str, Indicator] = {i.id: i for i in [
    Indicator(
        id="order_volume", name="Requests received", name_zh="诉求受理量", topic="requests", unit="orders",
        aggregation="count", formula=workorders.order_volume, inputs=("orders",), thresholds=None,
        good_direction="none", owner=_SERVICE_DESK, frequency="hourly",
        description="Number of work orders received in the window, from every channel."),
    Indicator(
        id="on_time_rate", weight=2.0, name="On-time completion", name_zh="按时办结率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.on_time_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_rate_higher_is_better(95, 98, 99), good_direction="up", owner=_SERVICE_DESK, frequency="hourly",
        description="Orders handled by their deadline ÷ orders received in the window whose outcome is known "
                    "(handled, or past the deadline unhandled) × 100."),
    Indicator(
        id="satisfaction_rate", weight=2.0, name="Satisfaction", name_zh="满意率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.satisfaction_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_rate_higher_is_better(95, 98, 99), good_direction="up", owner=_SERVICE_DESK, frequency="daily",
        description="Orders the citizen rated satisfied ÷ orders received in the window and evaluated × 100."),
    Indicator(
        id="reopen_rate", name="Reopened when unsatisfied", name_zh="不满意重办率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.reopen_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_lower_is_better(1.0, 2.0, 4.0), good_direction="down", owner=_SERVICE_DESK, frequency="daily",
        description="Evaluated orders reopened at least once ÷ orders received in the window and evaluated × 100."),
    Indicator(
        id="average_handling_days", name="Average handling time", name_zh="平均处置时长", topic="requests",
        unit="working days", aggregation="mean", formula=workorders.average_handling_days, inputs=("orders",),
        format="{:.2f}", thresholds=_lower_is_better(1.5, 2.5, 4.0), good_direction="down", owner=_SERVICE_DESK,
        frequency="hourly",
        description="Mean working days (weekends and public holidays excluded) from intake to handling, over "
                    "orders received in the window and handled."),
    Indicator(
        id="response_24h_rate", name="24-hour response", name_zh="24小时响应率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.response_24h_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_rate_higher_is_better(95, 98, 99.5), good_direction="up", owner=_SERVICE_DESK,
        frequency="hourly",
        description="Orders dispatched within 24 hours of intake ÷ orders received in the window that are "
                    "dispatched or older than 24 hours × 100."),
    Indicator(
        id="open_orders", name="Open orders", name_zh="在办工单", topic="requests", unit="orders",
        aggregation="count", formula=workorders.open_orders, inputs=("orders",), thresholds=None,
        good_direction="none", owner=_SERVICE_DESK, frequency="real-time",
        description="Orders received and not yet handled at the end of the window."),
    Indicator(
        id="overdue_orders", weight=2.0, name="Overdue orders (red card)", name_zh="超期工单（红牌）", topic="requests",
        unit="orders", aggregation="count", formula=workorders.overdue_orders, inputs=("orders",),
        thresholds=_lower_is_better(1, 10, 50), good_direction="down", owner=_SERVICE_DESK, frequency="real-time",
        description="Orders not yet handled at the end of the window and past their deadline."),
    Indicator(
        id="sensor_online_rate", name="Sensors online", name_zh="设备在线率", topic="sensors", unit="%",
        aggregation="rate", formula=sensors.sensor_online_rate, inputs=("sensors",), format=_PERCENT,
        thresholds=_rate_higher_is_better(90, 95, 98), good_direction="up", owner="Data Resource Center",
        frequency="real-time",
        description="Sensors that reported in the hour before the window's end ÷ sensors installed by then × 100."),
    Indicator(
        id="active_alarms", weight=2.0, name="Active alarms", name_zh="在途告警", topic="sensors", unit="alarms",
        aggregation="count", formula=sensors.active_alarms, inputs=("alarms",),
        thresholds=_lower_is_better(1, 10, 50), good_direction="down", owner="Emergency Management Bureau",
        frequency="real-time",
        description="Sensor alarms raised and not cleared at the end of the window."),
    Indicator(
        id="pm25_exceedance_hours", name="PM2.5 exceedances", name_zh="PM2.5超标时数", topic="environment",
        unit="sensor-hours", aggregation="count", formula=sensors.pm25_exceedance_hours, inputs=("readings",),
        thresholds=_lower_is_better(1, 10, 50), good_direction="down", owner="Ecology and Environment Bureau",
        frequency="hourly",
        description="Hourly PM2.5 readings above 75 µg/m³ (GB 3095-2012 grade II) in the window."),
    Indicator(
        id="pm25_mean", name="PM2.5 average", name_zh="PM2.5均值", topic="environment", unit="µg/m³",
        aggregation="mean", formula=sensors.pm25_mean, inputs=("readings",), format="{:.1f}",
        thresholds=_lower_is_better(35, 55, 75), good_direction="down", owner="Ecology and Environment Bureau",
        frequency="hourly",
        description="Mean of the hourly PM2.5 readings in the window (35 µg/m³ is the grade II annual limit)."),
]}


def indicator(indicator_id: str) -> Indicator:
    try:
        return INDICATORS[indicator_id]
    except KeyError:
        raise KeyError(f"unknown indicator {indicator_id!r}") from None
