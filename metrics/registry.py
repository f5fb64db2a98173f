"""The indicator registry: every city vital sign is declared here once.

The dashboard's KPI cards, map colouring, legends and indicator picker, the catalogue page and docs/indicators.md
are generated from :data:`INDICATORS`; one formula + one declaration + one test adds an indicator. The headline
indicators are declared one by one below; the families (per event category, department, channel, event type and
sensor kind) are generated from them by :mod:`metrics.families`.
"""
from __future__ import annotations

from metrics import (buildings, cameras, enterprises, families, incidents, patrols, roads, sensors,
                     workorders)
from metrics.spec import Indicator, Thresholds

# The 14 topics of the command center's wall (Shenzhen's city center shows 14; see ../shared/CONTEXT.md).
TOPICS = {
    "requests": ("Public requests and work orders", "民意诉求与工单"),
    "public_safety": ("Public safety", "公共安全"),
    "fire_safety": ("Fire safety of high-rises", "高层建筑消防安全"),
    "environment": ("Environment", "生态环境"),
    "flooding": ("Flooding and drainage", "防汛排水"),
    "traffic": ("Traffic", "交通运行"),
    "municipal": ("Municipal infrastructure", "市政设施"),
    "housing": ("Buildings and housing", "房屋建筑"),
    "population": ("Population and density", "人口密度"),
    "government_services": ("Government services", "政务服务"),
    "economy": ("Economy and enterprises", "经济与企业"),
    "grid_management": ("Grid management and city appearance", "网格化管理与市容"),
    "emergency": ("Emergency response", "应急管理"),
    "sensors": ("Sensor network health", "物联感知"),
}

_PERCENT = "{:.2f}"
_SERVICE_DESK = "Government Service and Data Bureau"
_EMERGENCY = "Emergency Management Bureau"
_GRID_CENTER = "Grid Management Center"


def _rate_higher_is_better(critical_below: float, warning_below: float, watch_below: float) -> Thresholds:
    return Thresholds.of("critical", (critical_below, "warning"), (warning_below, "watch"), (watch_below, "good"))


def _lower_is_better(watch_from: float, warning_from: float, critical_from: float) -> Thresholds:
    return Thresholds.of("good", (watch_from, "watch"), (warning_from, "warning"), (critical_from, "critical"))


INDICATORS: dict[str, Indicator] = {i.id: i for i in [
    Indicator(
        id="order_volume", judged_by="surge", name="Requests received", name_zh="诉求受理量", topic="requests", unit="orders",
        aggregation="count", formula=workorders.order_volume, inputs=("orders",), thresholds=None,
        good_direction="none", owner=_SERVICE_DESK, frequency="hourly",
        description="Number of work orders received in the window, from every channel.",
        description_zh="窗口期内从各渠道受理的工单数。"),
    Indicator(
        id="on_time_rate", weight=2.0, name="On-time completion", name_zh="按时办结率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.on_time_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_rate_higher_is_better(95, 98, 99), good_direction="up", owner=_SERVICE_DESK, frequency="hourly",
        description="Orders handled by their deadline ÷ orders received in the window whose outcome is known "
                    "(handled, or past the deadline unhandled) × 100.",
        description_zh="按期办结的工单 ÷ 窗口期内受理且结果已知（已办结，或逾期未办结）的工单 × 100。"),
    Indicator(
        id="satisfaction_rate", weight=2.0, name="Satisfaction", name_zh="满意率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.satisfaction_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_rate_higher_is_better(95, 98, 99), good_direction="up", owner=_SERVICE_DESK, frequency="daily",
        description="Orders the citizen rated satisfied ÷ orders received in the window and evaluated × 100.",
        description_zh="市民评价为满意的工单 ÷ 窗口期内受理且已评价的工单 × 100。"),
    Indicator(
        id="reopen_rate", name="Reopened when unsatisfied", name_zh="不满意重办率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.reopen_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_lower_is_better(1.0, 2.0, 4.0), good_direction="down", owner=_SERVICE_DESK, frequency="daily",
        description="Evaluated orders reopened at least once ÷ orders received in the window and evaluated × 100.",
        description_zh="至少重办一次的已评价工单 ÷ 窗口期内受理且已评价的工单 × 100。"),
    Indicator(
        id="average_handling_days", name="Average handling time", name_zh="平均处置时长", topic="requests",
        unit="working days", aggregation="mean", formula=workorders.average_handling_days, inputs=("orders",),
        format="{:.2f}", thresholds=_lower_is_better(1.5, 2.5, 4.0), good_direction="down", owner=_SERVICE_DESK,
        frequency="hourly",
        description="Mean working days (weekends and public holidays excluded) from intake to handling, over "
                    "orders received in the window and handled.",
        description_zh="窗口期内受理且已办结的工单从受理到办结的平均工作日数（不含周末和法定节假日）。"),
    Indicator(
        id="response_24h_rate", name="24-hour response", name_zh="24小时响应率", topic="requests", unit="%",
        aggregation="rate", formula=workorders.response_24h_rate, inputs=("orders",), format=_PERCENT,
        thresholds=_rate_higher_is_better(95, 98, 99.5), good_direction="up", owner=_SERVICE_DESK,
        frequency="hourly",
        description="Orders dispatched within 24 hours of intake ÷ orders received in the window that are "
                    "dispatched or older than 24 hours × 100.",
        description_zh="受理后24小时内派发的工单 ÷ 窗口期内受理、已派发或受理已超过24小时的工单 × 100。"),
    Indicator(
        id="open_orders", judged_by="surge", name="Open orders", name_zh="在办工单", topic="requests", unit="orders",
        aggregation="count", formula=workorders.open_orders, inputs=("orders",), thresholds=None,
        good_direction="none", owner=_SERVICE_DESK, frequency="real-time",
        description="Orders received and not yet handled at the end of the window.",
        description_zh="窗口期结束时已受理、尚未办结的工单数。"),
    Indicator(
        id="overdue_orders", weight=2.0, name="Red-card orders", name_zh="红牌工单", topic="requests",
        unit="orders", aggregation="count", formula=workorders.overdue_orders, inputs=("orders",),
        thresholds=_lower_is_better(1, 10, 50), good_direction="down", owner=_SERVICE_DESK, frequency="real-time",
        description="Red-card orders at the end of the window: not yet handled and at or past their deadline, or "
                    "not dispatched within 24 hours of intake (the supervision board's red cards).",
        description_zh="窗口期结束时的红牌工单：尚未办结且已到或超过办理时限，或受理后24小时内未派发（即督办看板上的红牌）。"),
    Indicator(
        id="sensor_online_rate", name="Sensors online", name_zh="设备在线率", topic="sensors", unit="%",
        aggregation="rate", formula=sensors.sensor_online_rate, inputs=("sensors",), format=_PERCENT,
        thresholds=_rate_higher_is_better(90, 95, 98), good_direction="up", owner="Data Resource Center",
        frequency="real-time",
        description="Sensors that reported in the hour before the window's end ÷ sensors installed by then × 100.",
        description_zh="窗口期结束前一小时内有上报的设备 ÷ 截至当时已安装的设备 × 100。"),
    Indicator(
        id="active_alarms", weight=2.0, name="Active alarms", name_zh="在途告警", topic="sensors", unit="alarms",
        aggregation="count", formula=sensors.active_alarms, inputs=("alarms",),
        thresholds=_lower_is_better(1, 10, 50), good_direction="down", owner="Emergency Management Bureau",
        frequency="real-time",
        description="Sensor alarms raised and not cleared at the end of the window.",
        description_zh="窗口期结束时已触发、尚未解除的设备告警数。"),
    Indicator(
        id="pm25_exceedance_hours", name="PM2.5 exceedances", name_zh="PM2.5超标时数", topic="environment",
        unit="sensor-hours", aggregation="count", formula=sensors.pm25_exceedance_hours, inputs=("readings",),
        rows_add_up=True, thresholds=_lower_is_better(1, 10, 50), good_direction="down",
        owner="Ecology and Environment Bureau", frequency="hourly",
        description="Hourly PM2.5 readings above 75 µg/m³ (GB 3095-2012 grade II) in the window.",
        description_zh="窗口期内PM2.5小时读数高于75 µg/m³（GB 3095-2012 二级标准）的次数。"),
    Indicator(
        id="pm25_mean", name="PM2.5 average", name_zh="PM2.5均值", topic="environment", unit="µg/m³",
        aggregation="mean", formula=sensors.pm25_mean, inputs=("readings",), rows_add_up=True, format="{:.1f}",
        thresholds=_lower_is_better(35, 55, 75), good_direction="down", owner="Ecology and Environment Bureau",
        frequency="hourly",
        description="Mean of the hourly PM2.5 readings in the window (35 µg/m³ is the grade II annual limit).",
        description_zh="窗口期内PM2.5小时读数的平均值（35 µg/m³ 为二级标准年均限值）。"),
    Indicator(
        id="residents", judged_by="surge", name="Residents", name_zh="常住人口", topic="population", unit="people",
        aggregation="count", formula=buildings.residents, inputs=("buildings",), thresholds=None,
        good_direction="none", owner="Public Security Bureau", frequency="monthly", headline=False,
        description="Residents living in the unit's buildings.",
        description_zh="居住在本单元建筑中的常住人口。"),
    Indicator(
        id="population_density", name="Population density", name_zh="人口密度", topic="population",
        unit="people/km²", aggregation="mean", formula=buildings.population_density, inputs=("buildings",),
        thresholds=_lower_is_better(20_000, 40_000, 60_000), good_direction="down", owner="Public Security Bureau",
        frequency="monthly", headline=False,
        description="Residents ÷ the unit's area in km² (Shenzhen averages about 7,000; Longhua 14,400).",
        description_zh="常住人口 ÷ 本单元面积（km²）（深圳平均约7,000；龙华14,400）。"),
    Indicator(
        id="orders_per_10k_residents", name="Requests per 10,000 residents a day", name_zh="日均万人诉求量",
        topic="population", unit="orders/day", aggregation="mean", formula=buildings.orders_per_10k_residents,
        inputs=("orders", "buildings"), format="{:.1f}", thresholds=_lower_is_better(100, 200, 400),
        good_direction="down", owner=_SERVICE_DESK, frequency="daily", headline=False,
        description="Orders received in the window × 10,000 ÷ residents ÷ days in the window (Shenzhen: about "
                    "100,000 a day for 17.8 million people, 56; business districts with few residents run higher).",
        description_zh="窗口期内受理的工单 × 10,000 ÷ 常住人口 ÷ 窗口期天数（深圳：每天约100,000件、1,780万人，约56；常住人口少的商务区偏高）。"),
    Indicator(
        id="buildings", judged_by="surge", name="Buildings", name_zh="建筑数量", topic="housing", unit="buildings",
        aggregation="count", formula=buildings.building_count, inputs=("buildings",), thresholds=None,
        good_direction="none", owner="Housing and Construction Bureau", frequency="monthly", headline=False,
        description="Buildings in the unit.",
        description_zh="本单元内的建筑数。"),
    Indicator(
        id="old_building_share", name="Buildings from before 1990", name_zh="1990年前建筑占比", topic="housing",
        unit="%", aggregation="rate", formula=buildings.old_building_share, inputs=("buildings",), format=_PERCENT,
        thresholds=_lower_is_better(10, 20, 35), good_direction="down", owner="Housing and Construction Bureau",
        frequency="monthly", headline=False,
        description="Buildings built before 1990 ÷ buildings with a known year of construction × 100.",
        description_zh="1990年以前建成的建筑 ÷ 建成年份已知的建筑 × 100。"),
    Indicator(
        id="skyscrapers", judged_by="surge", name="Buildings of 100 m and more", name_zh="超高层建筑", topic="fire_safety",
        unit="buildings", aggregation="count", formula=buildings.skyscraper_count, inputs=("buildings",),
        thresholds=None, good_direction="none", owner="Fire and Rescue Brigade", frequency="monthly",
        headline=False, description="Buildings 100 m or taller, each under fire-IoT supervision.",
        description_zh="高度100米及以上的建筑，均纳入消防物联网监管。"),
    Indicator(
        id="high_rise_smoke_coverage", name="High-rises with fire IoT", name_zh="高层建筑烟感覆盖率",
        topic="fire_safety", unit="%", aggregation="rate", formula=buildings.high_rise_smoke_coverage,
        inputs=("buildings", "sensors"), format=_PERCENT, thresholds=_rate_higher_is_better(30, 60, 90),
        good_direction="up", owner="Fire and Rescue Brigade", frequency="daily", headline=False,
        description="High-rise buildings (over 27 m) with at least one smoke and fire sensor ÷ high-rise "
                    "buildings × 100.",
        description_zh="装有至少一个烟感火灾探测器的高层建筑（27米以上） ÷ 高层建筑 × 100。"),
    Indicator(
        id="noise_mean", name="Noise level", name_zh="噪声均值", topic="environment", unit="dB(A)",
        aggregation="mean", formula=sensors.reading_mean("noise"), inputs=("readings",), rows_add_up=True,
        format="{:.1f}",
        thresholds=_lower_is_better(55, 65, 70), good_direction="down", owner="Ecology and Environment Bureau",
        frequency="hourly", headline=False, description="Mean of the hourly noise readings in the window.",
        description_zh="窗口期内噪声小时读数的平均值。"),
    Indicator(
        id="night_noise_hours", name="Night noise over 55 dB(A)", name_zh="夜间噪声超标时数", topic="environment",
        unit="sensor-hours", aggregation="count", formula=sensors.hours_over("noise", 55.0, night_only=True),
        inputs=("readings",), rows_add_up=True, thresholds=_lower_is_better(1, 20, 100), good_direction="down",
        owner="Ecology and Environment Bureau", frequency="hourly", headline=False,
        description="Hourly noise readings above 55 dB(A) between 22:00 and 06:00 (GB 3096-2008 class 2 "
                    "night limit is 50) in the window.",
        description_zh="窗口期内22:00至06:00噪声小时读数高于55 dB(A)的次数（GB 3096-2008 2类区夜间限值为50）。"),
    Indicator(
        id="water_level_high_hours", name="Water level over 2.5 m", name_zh="水位超警时数", topic="flooding",
        unit="sensor-hours", aggregation="count", formula=sensors.hours_over("water_level", 2.5),
        inputs=("readings",), rows_add_up=True, thresholds=_lower_is_better(1, 5, 20), good_direction="down",
        owner="Water Affairs Bureau", frequency="hourly", headline=False,
        description="Hourly water-level readings above the 2.5 m warning level in the window.",
        description_zh="窗口期内水位小时读数高于2.5米警戒水位的次数。"),
    Indicator(
        id="traffic_flow_mean", name="Traffic flow", name_zh="平均车流量", topic="traffic", unit="veh/h",
        aggregation="mean", formula=sensors.reading_mean("traffic_flow"), inputs=("readings",), rows_add_up=True,
        thresholds=_lower_is_better(1_200, 1_600, 2_000), good_direction="down", owner="Traffic Police",
        frequency="hourly", headline=False,
        description="Mean of the hourly vehicle counts of the traffic-flow counters in the window (near 2,000 an "
                    "hour a counted section runs at capacity).",
        description_zh="窗口期内交通流量计每小时车辆数的平均值（一个计数断面每小时接近2,000辆即达到通行能力）。"),

    # --- emergencies, work safety, grid management, cameras and roads (their own layers; not headline figures) --
    Indicator(
        id="active_incidents", weight=2.0, name="Active emergency incidents", name_zh="在处置突发事件",
        topic="emergency", unit="incidents", aggregation="count", formula=incidents.active_incidents,
        inputs=("incidents",), thresholds=_lower_is_better(1, 10, 50), good_direction="down",
        owner=_EMERGENCY, frequency="real-time", headline=False,
        description="Incidents (fires, accidents, floods, gas leaks, …) reported before the end of the window and "
                    "not resolved by then.",
        description_zh="窗口期结束前上报、至结束时尚未处置完毕的突发事件（火灾、事故、内涝、燃气泄漏等）。"),
    Indicator(
        id="incident_arrival_minutes", name="Emergency arrival time", name_zh="应急平均到场时长",
        topic="emergency", unit="minutes", aggregation="mean", formula=incidents.mean_arrival_minutes,
        inputs=("incidents",), format="{:.1f}", thresholds=_lower_is_better(10, 12, 15), good_direction="down",
        owner=_EMERGENCY, frequency="hourly", headline=False,
        description="Mean minutes from the report to the first responders' arrival, over incidents reported in "
                    "the window and reached before its end.",
        description_zh="窗口期内上报、且在结束前已到场的事件，从上报到首批救援力量到场的平均分钟数。"),
    Indicator(
        id="incident_arrival_15min_rate", name="Emergencies reached within 15 minutes", name_zh="15分钟到场率",
        topic="emergency", unit="%", aggregation="rate", formula=incidents.arrival_within_15_min_rate,
        inputs=("incidents",), format=_PERCENT, thresholds=_rate_higher_is_better(70, 80, 90),
        good_direction="up", owner=_EMERGENCY, frequency="hourly", headline=False,
        description="Incidents reached within 15 minutes of the report ÷ incidents reported in the window whose "
                    "responders arrived, or whose 15 minutes had passed, before its end × 100.",
        description_zh="上报后15分钟内到场的事件 ÷ 窗口期内上报、在结束前已到场或已过15分钟的事件 × 100。"),
    Indicator(
        id="incidents_per_100k_residents", name="Incidents per 100,000 residents a day",
        name_zh="十万人日均突发事件数", topic="public_safety", unit="incidents/day", aggregation="mean",
        formula=incidents.incidents_per_100k_residents, inputs=("incidents", "buildings"), format="{:.2f}",
        thresholds=_lower_is_better(3, 5, 8), good_direction="down", owner=_EMERGENCY, frequency="daily",
        headline=False,
        description="Incidents reported in the window × 100,000 ÷ residents ÷ the window's length in days "
                    "(the sample city: about 2.8 at the demo and city scales).",
        description_zh="窗口期内上报的事件 × 100,000 ÷ 常住人口 ÷ 窗口期天数（样例城市：演示和全市规模约2.8）。"),
    Indicator(
        id="major_hazard_overdue_inspections", weight=2.0, name="Major hazard sites overdue for inspection",
        name_zh="重大危险源企业超期未检", topic="public_safety", unit="enterprises", aggregation="count",
        formula=enterprises.major_hazard_overdue, inputs=("enterprises",), thresholds=_lower_is_better(1, 3, 10),
        good_direction="down", owner=_EMERGENCY, frequency="daily", headline=False,
        description="Major hazard installations not inspected in the 90 days before the end of the window "
                    "(or never).",
        description_zh="窗口期结束前90天内未检查（或从未检查）的重大危险源。"),
    Indicator(
        id="inspection_overdue_rate", name="Safety inspections overdue", name_zh="安全检查超期率", topic="economy",
        unit="%", aggregation="rate", formula=enterprises.inspection_overdue_rate, inputs=("enterprises",),
        format=_PERCENT, thresholds=_lower_is_better(2, 5, 10), good_direction="down", owner=_EMERGENCY,
        frequency="daily", headline=False,
        description="Enterprises overdue for their periodic inspection (major hazard: 90 days; key supervision: "
                    "180 days) ÷ enterprises of those two classes × 100.",
        description_zh="逾期未做定期检查的企业（重大危险源：90天；重点监管：180天） ÷ 这两类企业 × 100。"),
    Indicator(
        id="open_hazards_per_major_hazard_site", name="Open hazards per major hazard site",
        name_zh="重大危险源企业平均未整改隐患", topic="public_safety", unit="hazards", aggregation="mean",
        formula=enterprises.open_hazards_per_major_hazard, inputs=("enterprises",), format="{:.2f}",
        thresholds=_lower_is_better(0.5, 1, 2), good_direction="down", owner=_EMERGENCY, frequency="daily",
        headline=False, description="Hazards found and not yet fixed ÷ major hazard installations.",
        description_zh="已发现、尚未整改的隐患 ÷ 重大危险源数。"),
    Indicator(
        id="patrolled_cells_24h_rate", name="Grid cells patrolled in 24 hours", name_zh="24小时网格巡查覆盖率",
        topic="grid_management", unit="%", aggregation="rate", formula=patrols.patrolled_cells_24h_rate,
        inputs=("patrols",), format=_PERCENT, thresholds=_rate_higher_is_better(80, 90, 95), good_direction="up",
        owner=_GRID_CENTER, frequency="hourly", headline=False,
        description="Grid cells a patrol went through in the 24 hours before the end of the window ÷ grid cells "
                    "× 100.",
        description_zh="窗口期结束前24小时内有巡查经过的网格 ÷ 网格总数 × 100。"),
    Indicator(
        id="issues_per_patrol", name="Issues found per patrol", name_zh="每次巡查发现问题数",
        topic="grid_management", unit="issues", aggregation="mean", formula=patrols.issues_per_patrol,
        inputs=("patrols",), format="{:.2f}", thresholds=_lower_is_better(0.5, 1, 2), good_direction="down",
        owner=_GRID_CENTER, frequency="daily", headline=False,
        description="Issues found ÷ patrols started in the window and finished before its end (many issues per "
                    "patrol: a cell that needs work at the source).",
        description_zh="发现的问题 ÷ 窗口期内开始、在结束前完成的巡查（每次巡查问题多：该网格需从源头治理）。"),
    Indicator(
        id="residents_per_grid_worker", name="Residents per grid worker", name_zh="网格员人均服务人口",
        topic="grid_management", unit="residents", aggregation="mean", formula=patrols.residents_per_grid_worker,
        inputs=("buildings", "grid_workers"), thresholds=_lower_is_better(1_500, 2_500, 4_000),
        good_direction="down", owner=_GRID_CENTER, frequency="monthly", headline=False,
        description="Residents ÷ grid workers assigned to the unit (the national guideline: one full-time worker "
                    "for a grid of 300–500 households).",
        description_zh="常住人口 ÷ 分配到本单元的网格员（国家指引：300–500户的网格配一名专职网格员）。"),
    Indicator(
        id="camera_online_rate", name="Cameras online", name_zh="视频监控在线率", topic="sensors", unit="%",
        aggregation="rate", formula=cameras.camera_online_rate, inputs=("cameras",), format=_PERCENT,
        thresholds=_rate_higher_is_better(90, 95, 98), good_direction="up", owner="Public Security Bureau",
        frequency="real-time", headline=False,
        description="Cameras that reported in the hour before the end of the window ÷ cameras × 100.",
        description_zh="窗口期结束前一小时内有上报的摄像头 ÷ 摄像头总数 × 100。"),
    Indicator(
        id="ai_camera_share", name="Cameras with AI video analysis", name_zh="AI视频分析覆盖率",
        topic="public_safety", unit="%", aggregation="rate", formula=cameras.ai_camera_share, inputs=("cameras",),
        format=_PERCENT, thresholds=_rate_higher_is_better(10, 20, 40), good_direction="up",
        owner="Public Security Bureau", frequency="monthly", headline=False,
        description="Cameras with AI video analysis (garbage overflow, e-bikes taken indoors, road damage, …) ÷ "
                    "cameras × 100.",
        description_zh="具备AI视频分析（垃圾满溢、电动车入户、道路破损等）的摄像头 ÷ 摄像头总数 × 100。"),
    Indicator(
        id="poor_road_share", name="Roads in poor condition", name_zh="路况较差道路占比", topic="municipal",
        unit="%", aggregation="rate", formula=roads.poor_road_share, inputs=("road_segments",), format=_PERCENT,
        thresholds=_lower_is_better(3, 6, 10), good_direction="down", owner="Transport Bureau",
        frequency="monthly", headline=False,
        description="Length of road in poor condition ÷ length of road × 100.",
        description_zh="路况差的道路长度 ÷ 道路总长度 × 100。"),
    Indicator(
        id="congested_road_share", name="Congested roads", name_zh="拥堵道路占比", topic="traffic", unit="%",
        aggregation="rate", formula=roads.congested_road_share, inputs=("road_segments",), format=_PERCENT,
        thresholds=_lower_is_better(5, 10, 20), good_direction="down", owner="Traffic Police",
        frequency="real-time", headline=False,
        description="Length of road whose current congestion index is 7 or more (of 10) ÷ length of road × 100.",
        description_zh="当前拥堵指数达到7及以上（满分10）的道路长度 ÷ 道路总长度 × 100。"),
]}

_BASE = dict(INDICATORS)
INDICATORS.update({member.id: member for member in [
    *families.category_members([_BASE[i] for i in (
        "order_volume", "on_time_rate", "satisfaction_rate", "reopen_rate", "average_handling_days",
        "response_24h_rate", "overdue_orders")]),
    *families.department_members([_BASE[i] for i in ("on_time_rate", "satisfaction_rate", "overdue_orders")]),
    *families.channel_members([_BASE["order_volume"]]),
    *families.event_type_members([_BASE["order_volume"]]),
    *families.sensor_kind_members([_BASE["sensor_online_rate"], _BASE["active_alarms"]]),
]})


def indicator(indicator_id: str) -> Indicator:
    try:
        return INDICATORS[indicator_id]
    except KeyError:
        raise KeyError(f"unknown indicator {indicator_id!r}") from None
