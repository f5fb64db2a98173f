"""The dashboard's two languages, English and 简体中文: the message catalogue and the helpers that pick one language.

The language is part of the view, in the URL's query (``lang=en|zh``, English by default), so that links, kiosk URLs
(``/wall?kiosk=1&lang=zh``) and tour files carry it. Every text the pages write comes either from :data:`MESSAGES`
(through :func:`t`) or from a registry's bilingual field (through the ``*_name`` helpers below); names that come from
data (units, event types) have their own Chinese column, and fall back to English where an imported city has none.

>>> t("page.map", "zh"), t("page.map", "en")
('地图', 'Map')
>>> t("kpi.rank", "zh", rank=2, siblings=8)
' · 第2名/共8'
>>> normalise_language("ZH"), normalise_language("<b>fr</b>")
('zh', 'en')
>>> with_language("/wall?kiosk=1", "zh"), with_language("/?unit=1", "en")
('/wall?kiosk=1&lang=zh', '/?unit=1')
"""
from __future__ import annotations

import math
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
HTML_LANG = {"en": "en", "zh": "zh-CN"}
# The fonts that draw each language (Debian: fonts-noto-cjk, fonts-liberation — Chromium's recommended font —,
# fonts-dejavu); assets/theme.css uses the same stacks. Liberation Sans before DejaVu Sans: its figures are as wide
# as Noto's, for which the wall's tiles are sized (DejaVu's are far wider).
# Latin first, CJK as the fallback: the CJK fonts lack Latin letters with diacritics (č, ž, ő, ł), so with a CJK font
# first a name like "Győr" is drawn in two fonts, and a decomposed "č" as a "c" with a loose caron. Chinese
# characters, missing from the Latin fonts, fall through to Noto Sans CJK SC (the Simplified Chinese cut).
FONT_FAMILY = {"en": '"Noto Sans", "Liberation Sans", "DejaVu Sans", "Noto Sans CJK SC", sans-serif',
               "zh": '"Noto Sans", "Liberation Sans", "DejaVu Sans", "Noto Sans CJK SC", "Noto Sans SC", sans-serif'}

# key → (English, 中文). One place, both columns side by side, for translators. ``{name}`` fields are filled by t().
MESSAGES: dict[str, tuple[str, str]] = {
    # the shared top bar
    "page.map": ("Map", "地图"),
    "page.hotspots": ("Hotspots", "热点"),
    "page.catalogue": ("Catalogue", "指标目录"),
    "page.wall": ("Wall", "大屏"),
    "page.orders": ("Orders", "工单"),
    "page.supervision": ("Supervision", "督办"),
    "topbar.as_of": ("data as of", "数据截至"),
    "topbar.store_unavailable": ("(store unavailable)", "（数据库暂不可用）"),
    "order.store_unavailable": ("Not saved: the store is unavailable. Try again in a few seconds.",
                                "未保存：数据库暂不可用，请几秒后重试。"),
    "order.store_unknown": ("The store stopped answering while this was being saved: it may have been saved. "
                            "Reload the order before acting again.",
                            "保存时数据库停止响应：可能已保存。请先刷新工单再办理。"),
    "topbar.as_of_title": ("The time of the newest data these figures rest on (not the clock)",
                           "这些数字所依据的最新数据的时间（不是当前时钟）"),
    "topbar.now": ("time now", "当前时间"),
    "topbar.now_title": ("The clock's time, against which deadlines and cards are judged on this page",
                         "当前时钟时间：本页的期限与红黄牌按此判断"),
    "language.switch": ("Language", "语言"),
    "language.en": ("EN", "EN"),
    "language.zh": ("中文", "中文"),
    # KPI cards
    "kpi.no_previous": ("no previous", "无上期"),
    "kpi.no_previous_title": ("no figure for the window before", "上一时段无数据"),
    "kpi.same": ("= previous", "与上期持平"),
    "kpi.points": (" pts", "个百分点"),
    "kpi.previous_title": ("previous window: {value}", "上一时段：{value}"),
    "kpi.rank": (" · #{rank} of {siblings}", " · 第{rank}名/共{siblings}"),
    "kpi.spark_title": ("from {low} to {high} over the window", "本时段内 {low} 至 {high}"),
    "kpi.on_the_map": ("On the map", "地图指标"),
    # the map page
    "level.province": ("Provinces", "各省"),
    "level.city": ("Cities", "各市"),
    "level.district": ("Districts", "各区"),
    "level.street": ("Streets", "各街道"),
    "level.community": ("Communities", "各社区"),
    "level.grid": ("Grid cells", "各网格"),
    "map.subtitle": ("{children} coloured by {indicator} ({unit}) · {window}",
                     "{children}着色指标：{indicator}（{unit}） · {window}"),
    "map.ranking": ("{children} by {indicator}", "{children}{indicator}排名"),
    "map.lowest_level": ("Lowest level", "最低层级"),
    "score.label": ("Vital-sign score", "生命体征指数"),
    "score.pulled_down_by": ("pulled down by", "扣分项"),
    "score.state": ("state", "状态"),
    "score.weight": ("weight", "权重"),
    "score.points": ("points", "扣分"),
    "score.all_good": ("every judged indicator is good", "所有评价指标均正常"),
    "score_basis.rests_on": ("rests on {count} judged indicators", "基于{count}项评价指标"),
    "score.no_data": ("no data: no indicator with thresholds has data here, so there is no score",
                      "无数据：此处没有任何带阈值的指标有数据，无法评分"),
    # the catalogue
    "catalogue.title": ("Indicator catalogue · {unit}", "指标目录 · {unit}"),
    "catalogue.subtitle": ("{count} indicators in {topics} topics · values for {window}, change against the window "
                           "before it", "{topics}个专题共{count}项指标 · {window}数值，与上一时段比较"),
    "catalogue.column.indicator": ("Indicator", "指标"),
    "catalogue.column.value": ("Value", "数值"),
    "catalogue.column.change": ("Change", "变化"),
    "catalogue.column.state": ("State", "状态"),
    "catalogue.column.formula": ("Formula", "计算方法"),
    "catalogue.column.thresholds": ("Thresholds", "阈值"),
    "catalogue.column.direction": ("Direction", "方向"),
    "catalogue.column.owner": ("Owner · update", "责任单位 · 更新"),
    "direction.up": ("higher is better", "越高越好"),
    "direction.down": ("lower is better", "越低越好"),
    "direction.none": ("no direction (a volume to know)", "无方向（仅供了解的数量）"),
    "thresholds.none": ("none (shown as information)", "无（仅作信息展示）"),
    "thresholds.surge": ("by its rise against the previous window, z = (now − before) ÷ √(before + (0.1 × before)²): "
                         "{steps}", "按较上一时段的增幅判定，z = (本期 − 上期) ÷ √(上期 + (0.1 × 上期)²)：{steps}"),
    "thresholds.below": ("below {upper} {state}", "低于{upper}{state}"),
    "thresholds.between": ("{lower} to {upper} {state}", "{lower}至{upper}{state}"),
    "thresholds.from": ("from {lower} {state}", "{lower}及以上{state}"),
    "frequency.real-time": ("real-time", "实时"),
    "frequency.hourly": ("hourly", "每小时"),
    "frequency.daily": ("daily", "每日"),
    "frequency.monthly": ("monthly", "每月"),
    # the hotspots page
    "hotspots.title": ("Recurring hotspots", "高频问题热点"),
    "hotspots.subtitle": ("{count} found in {window}: the same event type at the same place in the same hours, on at "
                          "least half of the days, far above what the place's volume explains (Poisson scan, "
                          "Bonferroni-corrected; see metrics/hotspots.py)",
                          "{window}发现{count}处：同一类事件在同一地点、同一时段，至少半数日子反复出现，且远超该地"
                          "诉求量所能解释的水平（泊松扫描，Bonferroni校正；见 metrics/hotspots.py）"),
    "hotspots.none": ("No recurring hotspot in this window.", "本时段无高频问题热点。"),
    "hotspots.column.event_type": ("Event type", "事件类型"),
    "hotspots.column.place": ("Place", "地点"),
    "hotspots.column.district": ("District", "区"),
    "hotspots.column.hours": ("Hours", "时段"),
    "hotspots.column.days": ("Days", "天数"),
    "hotspots.column.orders": ("Orders", "工单"),
    "hotspots.column.expected": ("Expected", "预期"),
    "hotspots.column.ratio": ("× expected", "倍于预期"),
    "hotspots.column.evidence": ("Evidence", "依据"),
    "hotspots.days_seen": ("{seen} of {days}", "{seen}/{days}天"),
    "hotspots.evidence_text": ("{orders} '{event}' orders in grid {grid} between {start} and {end} on {seen} of "
                               "{days} {day_word}; {expected} expected",
                               "{days}{day_word}中有{seen}{day_word}在{start}–{end}之间，网格{grid}出现“{event}”"
                               "工单{orders}件；预期{expected}件"),
    "hotspots.day_word.days": ("days", "天"),
    "hotspots.day_word.nights": ("nights", "晚"),
    # the wall
    "wall.data_as_of": ("Data as of", "数据截至"),
    "wall.kiosk": ("Kiosk mode", "全屏模式"),
    "wall.topic": ("Topic", "专题"),
    "wall.next": ("next ›", "下一个 ›"),
    "wall.children_by": ("{children} by", "{children}分布"),
    "wall.all": ("all", "全部"),
    "wall.ramp": ("darker = less · no thresholds", "颜色越深数值越小 · 无阈值"),
    "wall.ranking": ("{child} ranking", "{children}排名"),
    "wall.worst_first": ("worst first", "由差到好"),
    "wall.largest_first": ("largest first", "由大到小"),
    "wall.on_the_map": ("on the map", "地图显示"),
    "wall.no_thresholds": ("no thresholds: a volume to know, not to judge", "无阈值：仅供了解的数量，不作评价"),
    "wall.vital_signs": ("City vital signs", "城市生命体征"),
    "wall.composite": ("composite of {count} judged indicators", "由{count}项评价指标综合得出"),
    "wall.pulled_down_by": ("pulled down by", "扣分项"),
    "wall.all_good": ("every judged indicator is good", "所有评价指标均正常"),
    "wall.now": ("Now", "实时态势"),
    "wall.tile.alarms": ("Active alarms", "在途告警"),
    "wall.tile.red_cards": ("Red-card orders", "红牌工单"),
    "wall.tile.open": ("Open orders", "在办工单"),
    "wall.tile.hotspots": ("Hotspots, 7 days", "近7天热点"),
    "wall.note.critical": ("{count} critical", "严重{count}条"),
    "wall.note.children": ("in {count} of {total} {nouns}", "涉及{count}/{total}个{noun}"),
    "wall.note.open": ("not yet handled", "尚未办结"),
    "wall.note.most_in": ("most in {district}", "{district}最多"),
    "wall.note.recurring": ("recurring", "反复出现"),
    "wall.note.none_recurring": ("none recurring", "无反复问题"),
    "ticker.active_alarms": ("active alarms", "在途告警"),
    "ticker.critical": ("{count} critical", "严重{count}条"),
    "ticker.all_clear": ("All clear — no active alarm, no red-card order, no recurring hotspot",
                         "一切正常——无在途告警、无红牌工单、无高频热点"),
    "ticker.tag.critical": ("CRITICAL", "严重告警"),
    "ticker.tag.warning": ("WARNING", "预警"),
    "ticker.tag.red_card": ("RED CARD", "红牌"),
    "ticker.tag.hotspot": ("HOTSPOT", "热点"),
    # (the ticker names the sensor's kind just before: the Chinese does not repeat it)
    "alarm_limit.over": ("{kind} {value} over limit {limit}", "{value}，超过限值 {limit}"),
    "alarm.smoke detected": ("smoke detected", "探测到烟雾"),
    "alarm.cover displaced": ("cover displaced", "井盖移位"),
    "alarm.lamp failure": ("lamp failure", "路灯故障"),
    "alarm.overload / leakage current": ("overload / leakage current", "过载 / 漏电流"),
    "play.speed.slow": ("15 min/s", "15分钟/秒"),
    "play.speed.normal": ("1 h/s", "1小时/秒"),
    "play.speed.fast": ("3 h/s", "3小时/秒"),
    "ticker.alarm": ("{kind} · {where} · {message} · since {since}", "{kind} · {where} · {message} · {since}起"),
    "ticker.more": ("+ {count} more active alarms", "另有{count}条在途告警"),
    "ticker.red_card": ("{district}: {count} red-card order{plural}", "{district}：{count}件红牌工单"),
    "ticker.hotspot": ("{event} · {place} · {start}–{end} on {seen} of {days} days · {orders} orders, {ratio}× "
                       "expected", "{event} · {place} · {start}–{end} · {days}天中{seen}天出现 · {orders}件工单，"
                       "为预期的{ratio}倍"),
    # the wall's clock, freshness and age (written by the browser: see wall.py's clientside callback)
    "age.just_now": ("just now", "刚刚"),
    "age.minutes": ("{minutes} min ago", "{minutes}分钟前"),
    "age.hours": ("{hours} h {minutes} min ago", "{hours}小时{minutes}分钟前"),
    "age.days": ("{days} d {hours} h ago", "{days}天{hours}小时前"),
    "fresh.good": ("live", "实时"),
    "fresh.watch": ("delayed", "延迟"),
    "fresh.warning": ("stale", "过期"),
    "fresh.critical": ("no longer updated", "已停止更新"),
    # The map page's layer panel, building card and playback bar
    "layers.title": ("Layers", "图层"),
    "layers.buildings_by": ("Buildings by", "建筑着色"),
    "layers.color.use": ("use", "用途"),
    "layers.color.state": ("indicator", "指标"),
    "layers.color.alarms": ("alarms", "告警"),
    "layers.no_data": ("no data", "无数据"),
    "layers.newest": ("newest record {when}", "最新记录 {when}"),
    "layers.too_many_points": ("{count} orders are too many to draw one by one: drill down, or use the hexagons",
                               "工单 {count} 件，过多无法逐点绘制：请下钻，或改用六边形"),
    "layers.no_buildings": ("no buildings in this city", "本市无建筑数据"),
    "layers.buildings_from_zoom": ("3D buildings from zoom {zoom}: zoom in or drill down",
                                   "三维建筑自 {zoom} 级起显示：请放大或下钻"),
    "legend.alarm_critical": ("Open critical alarm", "严重告警"),
    "legend.alarm_open": ("Open alarm", "告警"),
    "legend.sensor_down": ("Sensor offline or faulty", "设备离线或故障"),
    "legend.no_alarm": ("No alarm", "无告警"),
    "legend.few_orders": ("few orders", "工单少"),
    "legend.orders_per_cell": ("{count}+ per cell", "每格 {count} 件以上"),
    "legend.dense": ("dense", "密集"),
    "legend.open": ("open", "未办结"),
    "legend.closed": ("closed", "已办结"),
    "legend.hotspot": ("recurring hotspot", "高频热点"),
    "legend.land": ("land (district outlines)", "陆地（区界）"),
    "legend.water": ("water", "水域"),
    "legend.roads": ("roads (schematic in the sample city)", "道路（样例城市为示意）"),
    "legend.basemap_land": ("land (the city's base map)", "陆地（本市底图）"),
    "legend.basemap_roads": ("roads (the city's base map)", "道路（本市底图）"),
    "legend.green": ("parks and green space", "公园绿地"),
    "card.building": ("Building {id}", "建筑 {id}"),
    "card.back": ("back to the grid cell", "返回网格"),
    "card.use": ("use", "用途"),
    "card.height": ("height", "高度"),
    "card.height_value": ("{metres} m · {floors} floors", "{metres} 米 · {floors} 层"),
    "card.built": ("built", "建成"),
    "card.residents": ("residents", "居住人口"),
    "card.fire": ("Fire IoT", "消防物联"),
    "card.fire_none": ("no fire detectors", "无烟感设备"),
    "card.fire_detail": ("{detectors} detectors · {online} online · {in_alarm} in alarm",
                         "烟感 {detectors} 个 · 在线 {online} · 告警 {in_alarm}"),
    "card.high_rise": ("high-rise ≥100 m", "超高层（≥100米）"),
    "card.sensors": ("Sensors ({count})", "感知设备（{count}）"),
    "card.no_sensors": ("no sensors in this building", "本楼无感知设备"),
    "card.orders": ("Open orders nearby ({count})", "周边未办结工单（{count}）"),
    "card.no_orders": ("no open orders within 50 m", "50米内无未办结工单"),
    "card.as_of": ("data as of {when}", "数据截至 {when}"),
    "sensor_status.online": ("online", "在线"),
    "sensor_status.offline": ("offline", "离线"),
    "sensor_status.fault": ("fault", "故障"),
    "card.col.kind": ("kind", "类型"),
    "card.col.id": ("id", "编号"),
    "card.col.state": ("state", "状态"),
    "card.col.last": ("last", "最新"),
    "card.col.at": ("at", "时间"),
    "card.col.status": ("status", "设备状态"),
    "card.col.order": ("order", "工单"),
    "card.col.type": ("type", "类型"),
    "card.col.received": ("received", "受理"),
    "card.col.distance": ("distance", "距离"),
    "card.alerts": ("Alerts of this building and its sensors ({count})", "本楼及其设备的告警（{count}）"),
    "card.no_alerts": ("no alerts for this building or its sensors", "本楼及其设备无告警"),
    "card.col.severity": ("severity", "级别"),
    "card.col.alert": ("alert", "告警"),
    "card.col.alert_status": ("status", "处置状态"),
    "card.col.fired": ("fired", "触发"),
    "map.buildings_title": ("Buildings · alarms first, then tallest", "建筑 · 告警优先，再按高度"),
    "map.no_buildings": ("no buildings here", "此处无建筑"),
    "map.floors": ("{use} · {floors} floors", "{use} · {floors} 层"),
    "export.menu": ("⤓ Export", "⤓ 导出"),
    "export.png": ("Screen as PNG", "截图（PNG）"),
    "export.csv": ("KPI table as CSV", "指标表（CSV）"),
    "export.scene": ("3D scene, offline HTML", "三维场景（离线HTML）"),
    "export.scene_help": ("one file that opens in a browser with no network: for presentations away from the server",
                          "单个文件，无网络也能在浏览器中打开：用于离开服务器的演示"),
    "tour.menu": ("▶ Tour", "▶ 导览"),
    "tour.help": ("a scripted sequence of views", "按脚本依次播放的视图"),
    "tour.length": ("{steps} steps · {seconds} s", "{steps} 步 · {seconds} 秒"),
    "tour.none": ("no tours in {folder}", "{folder} 中没有导览"),
    "tour.incident.started": ("Drill: {incident} started{place}", "演练：已启动{incident}{place}"),
    "tour.refused.roles": ("Drill not started: only a supervisor or an administrator may start an incident",
                            "演练未启动：仅督办人员或管理员可启动演练事件"),
    "tour.refused.scoped": ("Drill not started: an incident is city-wide; only an account for the whole city may "
                             "start one", "演练未启动：演练事件覆盖全市，仅全市范围的账号可启动"),
    "tour.incident.failed": ("Drill not started: {reason}", "演练未启动：{reason}"),
    "tour.incident.requested": ("Drill: {incident} asked of the simulator; it starts within seconds",
                                "演练：已请求模拟器启动{incident}，数秒内开始"),
    "tour.incident.no_simulator": ("Drill not started: incidents play in live mode with the simulator "
                                   "(CITYTWIN_SIMULATE, `make run`); this server replays its data, so the step "
                                   "only shows the view",
                                   "演练未启动：演练事件仅在实时模式下由模拟器播放（CITYTWIN_SIMULATE，`make run`）；"
                                   "本服务器为回放模式，此步骤仅显示视图"),
    "tour.incident.kind.pm25_episode": ("a PM2.5 episode", "PM2.5污染过程"),
    "tour.incident.kind.fire": ("a fire alarm in a high-rise", "高层建筑火灾报警"),
    "tour.incident.kind.storm": ("a storm: water gauges rising", "暴雨：水位上涨"),
    "tour.incident.kind.hotspot": ("a burst of complaints in one grid cell", "单个网格诉求激增"),
    "tour.incident.at": (" at {place}", "（地点：{place}）"),
    "play.replay": ("▶ Replay 24 h", "▶ 回放24小时"),
    "play.play": ("▶ Play", "▶ 播放"),
    "play.pause": ("❚❚ Pause", "❚❚ 暂停"),
    "play.live": ("live", "实时"),
    "loading.page": ("Loading the screen…", "正在加载页面…"),
    "loading.map": ("Loading the map…", "正在加载地图…"),
    "loading.picker": ("Loading the indicators…", "正在加载指标…"),
    "loading.slider": ("Loading the playback…", "正在加载回放…"),
    "play.thinned": ("1 in {step} of {count}", "{count} 件中每 {step} 件显示 1 件"),
    "play.note_title": ("orders drawn: thinned to stay under 2 MB", "绘制的工单：抽稀以保持在 2 MB 以下"),
    # work orders: statuses, clocks
    "status.received": ("Received", "已受理"),
    "status.dispatched": ("Dispatched", "已分拨"),
    "status.accepted": ("Accepted", "已签收"),
    "status.handled": ("Handled", "已处置"),
    "status.feedback": ("Replied", "已反馈"),
    "status.evaluated": ("Evaluated", "已评价"),
    "status.closed": ("Closed", "已办结"),
    "status.cancelled": ("Cancelled", "已作废"),
    "clock.card.yellow": ("Yellow", "黄牌"),
    "clock.card.red": ("Red", "红牌"),
    "clock.reason.overdue": ("past its deadline", "已超期"),
    "clock.reason.no_first_response": ("no response in 24 h", "24小时未响应"),
    "clock.reason.near_deadline": ("near its deadline", "临近时限"),
    "clock.reason.first_response_due": ("response due", "即将超过响应时限"),
    # the work-order list
    "orders.overdue_by": ("overdue by {hours}", "超期{hours}"),
    "orders.hours_left": ("{hours} left", "剩余{hours}"),
    "orders.days": ("{days} d", "{days}天"),
    "orders.hours": ("{hours} h", "{hours}小时"),
    "orders.loading": ("Loading…", "加载中…"),
    "orders.none": ("No order matches these filters", "没有符合条件的工单"),
    "orders.count": ("{count} orders", "共{count}件"),
    "orders.refused": ("Cannot list: {reason}", "无法查询：{reason}"),
    # dcc.Dropdown's own words (its search box, the menu's empty result): English in the component itself.
    "dropdown.select_all": ("Select all", "全选"),
    "dropdown.deselect_all": ("Deselect all", "取消全选"),
    "dropdown.selected_count": ("{num_selected} selected", "已选 {num_selected} 项"),
    "dropdown.search": ("Search", "搜索"),
    "dropdown.clear_search": ("Clear search", "清除搜索"),
    "dropdown.clear_selection": ("Clear selection", "清除选择"),
    "dropdown.no_options_found": ("No options found", "没有匹配的选项"),
    "orders.filter.status": ("Status", "状态"),
    "orders.filter.event_type": ("Event type", "事项类型"),
    "orders.filter.department": ("Department", "责任部门"),
    "orders.filter.unit": ("District", "区"),
    "orders.filter.channel": ("Channel", "渠道"),
    "orders.filter.overdue": ("Red card", "红牌"),
    "orders.filter.escalated": ("Escalated", "已督办"),
    "orders.filter.q": ("Order id", "工单编号"),
    "orders.column.order_id": ("Order", "工单编号"),
    "orders.column.received_at": ("Received", "受理时间"),
    "orders.column.status": ("Status", "状态"),
    "orders.column.card": ("Card", "亮牌"),
    "orders.column.clock": ("Clock", "时限"),
    "orders.column.event_type": ("Event type", "事项类型"),
    "orders.column.department": ("Department", "责任部门"),
    "orders.column.grid_code": ("Place", "位置"),
    "orders.column.channel": ("Channel", "渠道"),
    "orders.column.deadline_at": ("Deadline", "办理时限"),
    "orders.column.description": ("Description", "诉求内容"),
    # one order
    "order.evaluate_satisfied": ("Evaluate: satisfied", "评价：满意"),
    "order.evaluate_unsatisfied": ("Evaluate: unsatisfied (reopen)", "评价：不满意（重办）"),
    "order.reopened": ("reopened {count}×", "重办{count}次"),
    "order.event_type": ("Event type", "事项类型"),
    "order.department": ("Department", "责任部门"),
    "order.place": ("Place", "位置"),
    "order.channel": ("Channel", "渠道"),
    "order.received": ("Received", "受理时间"),
    "order.deadline": ("Deadline", "办理时限"),
    "order.version": ("Version", "版本"),
    "order.rules_version": ("Responsibility list", "职责清单版本"),
    "order.description": ("What the citizen said", "诉求内容"),
    "order.step_to": ("→ {status}", "转为{status}"),
    "order.from_stage_times": ("from the stage times", "据各环节时间"),
    "order.actor.supervision_sweep": ("supervision sweep", "督办自动巡检"),
    "order.note.red_card.overdue": ("red card: past its deadline, not handled", "红牌：已超期未办结"),
    "order.note.red_card.no_first_response": ("red card: not dispatched within 24 hours of intake",
                                              "红牌：受理后24小时内未派发"),
    "order.timeline": ("Timeline, {count} steps", "办理过程（{count}步）"),
    "map.ranking_order": (" · worst first, #1 is best", " · 最差在前，第1名最好"),
    "map.no_such_unit": ("This city has no unit “{unit}”: showing the whole city instead.",
                         "本市没有编号为“{unit}”的单元，以下显示全市。"),
    "order.timeline_scroll": ("← earlier steps: scroll left", "← 更早的步骤：向左滚动"),
    "order.lane.intake": ("Intake", "受理"),
    "order.lane.dispatch": ("Dispatch center", "分拨中心"),
    "order.lane.citizen": ("Citizen", "市民"),
    "order.lane.supervision": ("Supervision", "督办"),
    "order.final": ("This order is final: nothing more can be done to it.", "工单已终结，不能再操作。"),
    "order.back_to_list": ("‹ all orders", "‹ 工单列表"),
    "order.unknown": ("No such order", "没有这个工单"),
    "order.unknown_detail": ("There is no order {order_id}: check the id in the list.",
                             "没有编号为 {order_id} 的工单，请在列表中核对编号。"),
    "order.act": ("Act on this order", "办理"),
    "order.actor": ("Your name", "经办人"),
    "order.note": ("Note", "办理意见"),
    "order.note_hint": ("required to reject, re-dispatch, cancel or escalate", "退回、改派、作废、督办时必填"),
    "order.to_department": ("Department (dispatch, re-dispatch)", "分拨部门（分拨、改派）"),
    "order.by_the_list": ("by the responsibility list", "按职责清单"),
    "order.actor_missing": ("enter your name first", "请先填写经办人"),
    "order.conflict": ("Not done: {order_id} changed while you had it open. {actor} did “{action}” at {at}; it is "
                       "now {status} (version {version}). Nothing of yours was written and your note is kept: check "
                       "the order below, then act again if you still need to.",
                       "未执行：您打开{order_id}后，工单已被他人办理。{actor}于{at}执行了“{action}”，工单现为{status}"
                       "（版本{version}）。您的操作未写入，办理意见已保留：请核对下方工单后再办理。"),
    "order.refused": ("Refused: {reason}", "不能办理：{reason}"),
    # Refusals of the order service and the access layer, by message id (layers/lifecycle.py, layers/workorders.py
    # and dashboard/auth name them with their values; dashboard/components/order_views.refusal_text says them).
    "refusal.not_allowed": ("cannot {action} an order that is {status}; allowed here: {allowed}",
                            "“{status}”状态的工单不能“{action}”；此时可办理：{allowed}"),
    "refusal.final": ("cannot {action} an order that is {status} (it is final); allowed here: {allowed}",
                      "“{status}”状态的工单已终结，不能“{action}”；此时可办理：{allowed}"),
    "refusal.reopen_limit": ("cannot reopen an order already reopened {count} times (at most {limit}); record the "
                             "evaluation instead", "该工单已重办{count}次（最多{limit}次），不能再重办；请记录评价"),
    "refusal.note_required": ("“{action}” needs a note saying why", "“{action}”须填写办理意见说明理由"),
    "refusal.same_department": ("the order is already with {department}; re-dispatch it to another department",
                                "工单已在{department}，请改派给其他部门"),
    "refusal.no_department": ("“{action}” does not take a department", "“{action}”不需要选择部门"),
    "refusal.department_required": ("a department is required", "须选择部门"),
    "refusal.unknown_department": ("unknown department {department}", "没有“{department}”这个部门"),
    "refusal.required": ("{field} is required", "须填写{field}"),
    "refusal.too_long": ("{field} is {length:,} characters long; at most {limit:,} are allowed",
                         "{field}共{length:,}字，最多{limit:,}字"),
    "refusal.unknown_order": ("there is no order {order_id}", "没有工单{order_id}"),
    "refusal.not_signed_in": ("not signed in", "未登录"),
    "refusal.roles": ("“{action}”: your roles ({roles}) may not take this action", "您的角色（{roles}）不能“{action}”"),
    "refusal.not_your_department": ("“{action}”: this order is not your department's", "“{action}”：该工单不属于本部门"),
    "refusal.outside_area": ("this order is outside your area", "该工单不在您的管辖范围内"),
    "refusal.sweep_scoped": ("the city-wide sweep is for city-wide supervisors", "全市督办只能由全市督办人员执行"),
    "refusal.nothing": ("none", "无"),
    "field.note": ("the note", "办理意见"),
    "field.actor": ("your name", "经办人"),
    "order.done": ("Done: {action}. The order is now {status} (version {version}).",
                   "已办理：{action}。工单现为{status}（版本{version}）。"),
    # the supervision board
    "supervision.title": ("Supervision board", "督办看板"),
    "supervision.subtitle": ("Cards at {at} · open orders read at {read}", "{at} 亮牌情况 · 在办工单读取于 {read}"),
    "supervision.column.department": ("Department", "责任部门"),
    "supervision.column.district": ("District", "区"),
    "supervision.column.open": ("Open", "在办"),
    "supervision.column.yellow": ("Yellow", "黄牌"),
    "supervision.column.red": ("Red", "红牌"),
    "supervision.red_definition": ("Red card: not handled by its deadline, or not dispatched 24 h after intake — "
                                   "the map's and the wall's red-card count", "红牌：超过办理时限未办结，或受理24小时后仍未分拨"
                                   "——与地图、大屏的红牌工单数同一口径"),
    "supervision.column.escalated": ("Escalated", "已督办"),
    "supervision.column.to_escalate": ("To escalate", "待督办"),
    "supervision.column.card": ("Card", "亮牌"),
    "supervision.column.order_id": ("Order", "工单编号"),
    "supervision.column.event_type": ("Event type", "事项类型"),
    "supervision.column.clock": ("Clock", "时限"),
    "supervision.escalate_all": ("Escalate {count} red cards", "督办{count}张红牌"),
    "supervision.by_department": ("By department", "按部门"),
    "supervision.by_district": ("By district", "按区"),
    "supervision.carded": ("Carded orders, red first ({shown} of {count})", "亮牌工单，红牌在前（{shown}/{count}）"),
    "supervision.sweep": ("the server also sweeps every {minutes} min", "系统每{minutes}分钟自动督办一次"),
    "supervision.no_sweep": ("no automatic sweep (CITYTWIN_ESCALATION_MINUTES=0)",
                             "未开启自动督办（CITYTWIN_ESCALATION_MINUTES=0）"),
    "supervision.escalated": ("Escalated {count} orders.", "已督办{count}件工单。"),
    # alerts (dashboard/pages/alerts.py, the wall's cue)
    "page.alerts": ("Alerts", "告警"),
    "alerts.filter.status": ("Status", "状态"),
    "alerts.filter.severity": ("Severity", "级别"),
    "alerts.filter.kind": ("Kind of rule", "规则类型"),
    "alerts.filter.unit": ("District", "区"),
    "alerts.count": ("{count} alerts · {critical} critical unacknowledged", "共{count}条 · 严重未确认{critical}条"),
    "alerts.none": ("No alert matches these filters.", "没有符合条件的告警。"),
    "alerts.open": ("open", "未关闭"),
    "alerts.status.firing": ("firing", "告警中"),
    "alerts.status.acknowledged": ("acknowledged", "已确认"),
    "alerts.status.assigned": ("assigned", "已派单"),
    "alerts.status.resolved": ("resolved", "已解除"),
    "alerts.condition.clearing": ("condition clear, resolving after {minutes} min", "条件已消除，{minutes}分钟后自动解除"),
    "alerts.condition.clear": ("condition clear", "条件已消除"),
    "alerts.kind.reading_threshold": ("sensor reading", "感知读数"),
    "alerts.kind.indicator_state": ("indicator", "指标"),
    "alerts.kind.sensor_silent": ("sensor offline", "设备离线"),
    "alerts.kind.anomaly": ("early warning", "异常预警"),
    "alerts.kind.fire_alarm": ("fire alarm", "火灾报警"),
    "alerts.kind.order_burst": ("burst of requests", "诉求激增"),
    "alerts.action.acknowledge": ("Acknowledge", "确认"),
    "alerts.action.assign": ("Assign: file a work order", "派单：生成工单"),
    "alerts.action.resolve": ("Resolve by hand", "人工解除"),
    "alerts.action.fire": ("fired", "触发"),
    "alerts.action.clearing": ("condition cleared", "条件消除"),
    "alerts.action.recur": ("condition back", "条件复现"),
    "alerts.action.clear": ("condition clear", "条件消除"),
    "alerts.column.severity": ("Severity", "级别"),
    "alerts.column.alert": ("Alert", "告警"),
    "alerts.column.place": ("Where", "位置"),
    "alerts.column.fired": ("Fired", "触发时间"),
    "alerts.column.status": ("Status", "状态"),
    "alerts.column.order": ("Work order", "工单"),
    "alerts.evidence": ("Evidence", "依据"),
    "alerts.rule": ("Rule {rule} (version {version})", "规则 {rule}（第{version}版）"),
    "alerts.on_map": ("on the map", "在地图上查看"),
    "alerts.sensor": ("sensor {sensor}", "设备 {sensor}"),
    "alerts.building": ("building {building}", "建筑 {building}"),
    "alerts.order_link": ("work order {order}", "工单 {order}"),
    "alerts.timeline": ("History", "处置记录"),
    "alerts.pick": ("Pick an alert in the list to act on it.", "在列表中选择一条告警进行处置。"),
    "alerts.unknown": ("There is no alert {alert}.", "没有告警 {alert}。"),
    "alerts.actor": ("Your name", "处置人"),
    "alerts.note": ("Note", "处置意见"),
    "alerts.note_hint": ("required to resolve by hand", "人工解除时必填"),
    "alerts.department": ("Department (assign)", "责任部门（派单）"),
    "alerts.department_hint": ("the rule's event type's department", "按规则事项类型的责任部门"),
    "alerts.final": ("This alert is resolved: nothing more can be done to it.", "告警已解除，不能再操作。"),
    "alerts.done": ("Done: {action}. The alert is now {status}.", "已办理：{action}。告警当前状态：{status}。"),
    "alerts.refused": ("Refused: {reason}", "不能办理：{reason}"),
    "alerts.from_alert": ("Filed from alert {alert}", "由告警 {alert} 生成"),
    "wall.cue": ("CRITICAL ALERT — NOT ACKNOWLEDGED", "严重告警 — 尚未确认"),
    "wall.cue_more": ("+ {count} more critical", "另有{count}条严重告警"),
    "wall.cue_since": ("since {since}", "{since}起"),
    "ticker.tag.alert": ("ALERT", "告警"),
    "ticker.alert": ("{title} · {where} · {evidence} · {status}", "{title} · {where} · {evidence} · 状态：{status}"),
    "wall.early_warning": ("Early warning", "异常预警"),
    "wall.forecast": ("Next 24 h: {orders} requests expected ({low}–{high})", "未来24小时预计诉求{orders}件（{low}–{high}）"),
    "wall.anomaly": ("{unit}: {value} requests in the hour from {hour}, usually {baseline}",
                     "{unit}：{hour}起一小时诉求{value}件，通常{baseline}件"),
    "wall.no_anomaly": ("No unusual hour in any district", "各区诉求量均正常"),
    "wall.no_anomaly_here": ("The last hour's requests were as usual", "上一小时诉求量正常"),
    "alerts.here": ("Open alerts here: {count} ({critical} critical)", "本区域未关闭告警：{count}条（严重{critical}条）"),
}

# The levels of the hierarchy by name, one row each (layers.specs.ALL_LEVELS): what a screen calls the units of a
# level is read from the data's own levels, never assumed (a province's wall names its cities, issue 16).
# level: (one in English, several in English, Chinese noun, the operations center's name for a top unit of it)
LEVEL_WORDS = {
    "province": ("province", "provinces", "省", ("Province Operations Center", "全省运行指挥中心")),
    "city": ("city", "cities", "市", ("City Operations Center", "城市运行指挥中心")),
    "district": ("district", "districts", "区", ("District Operations Center", "区运行指挥中心")),
    "street": ("street", "streets", "街道", ("Street Operations Center", "街道运行指挥中心")),
    "community": ("community", "communities", "社区", ("Community Operations Center", "社区运行指挥中心")),
    "grid": ("grid cell", "grid cells", "网格", ("Grid Operations Center", "网格运行指挥中心")),
}
for _level, (_one, _many, _zh, _center) in LEVEL_WORDS.items():
    MESSAGES[f"level.one.{_level}"] = (_one, _zh)
    MESSAGES[f"level.many.{_level}"] = (_many, _zh)
    MESSAGES[f"wall.center.{_level}"] = _center
    # "Shenzhen city operations" / "深圳市城市运行指挥中心"; "Guangdong province operations" / "广东省运行指挥中心"
    MESSAGES[f"brand.sub.{_level}"] = (f"{{city}} {_one} operations",
                                       "{city_zh}" + ("城市" if _level == "city" else "") + "运行指挥中心")

# Indicator units, in the words a Chinese dashboard uses; symbols (%, µg/m³, dB(A)) are the same in both.
UNITS_ZH = {
    "alarms": "条", "buildings": "栋", "enterprises": "家", "hazards": "处", "incidents": "起",
    "incidents/day": "起/日", "issues": "件", "minutes": "分钟", "orders": "件", "orders/day": "件/日", "people": "人",
    "people/km²": "人/km²", "residents": "人", "sensor-hours": "设备·小时", "veh/h": "辆/小时", "working days": "工作日",
}


def normalise_language(value) -> str:
    """``"en"`` or ``"zh"``: what the URL asks for, English for anything else (missing, unknown, hostile)."""
    value = str(value or "").strip().lower()
    if value.startswith("zh"):
        return "zh"
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str, **format_args) -> str:
    """The message ``key`` in ``lang``, with its ``{fields}`` filled; an unknown key raises KeyError."""
    english, chinese = MESSAGES[key]
    text = chinese if normalise_language(lang) == "zh" else english
    return text.format(**format_args) if format_args else text


def written_language(text) -> str | None:
    """The HTML ``lang`` of a person's own words: Chinese when they hold Han characters, else English; None for
    no text. Shown as written on pages of either language (a citizen who wrote in English is quoted in English),
    and marked, so that the browser picks the fonts and a screen reader the voice of the words themselves."""
    if not isinstance(text, str) or not text.strip():
        return None
    return HTML_LANG["zh"] if re.search(r"[\u3400-\u9fff]", text) else HTML_LANG["en"]


def dropdown_labels(lang: str) -> dict[str, str]:
    """The words a ``dcc.Dropdown`` shows of its own (its ``labels``), in ``lang``; ``{num_selected}`` is filled by
    the component."""
    return {key.removeprefix("dropdown."): t(key, lang) for key in MESSAGES if key.startswith("dropdown.")}


def both(key: str, **format_args) -> tuple[str, str]:
    """The message ``key`` in English and in Chinese (for things that carry both, like the map's legend entries)."""
    return t(key, "en", **format_args), t(key, "zh", **format_args)


def messages(lang: str, *prefixes: str) -> dict[str, str]:
    """Every message whose key starts with one of ``prefixes``, in ``lang`` (for text the browser writes)."""
    return {key: t(key, lang) for key in MESSAGES if key.startswith(prefixes)}


def pick(english, chinese, lang: str) -> str:
    """One of a bilingual pair: the Chinese one in zh unless it is missing (an imported name without a zh column)."""
    if normalise_language(lang) == "zh" and _present(chinese):
        return str(chinese)
    return "" if not _present(english) else str(english)


def pair(names: tuple[str, str], lang: str) -> str:
    """``("Good", "正常")`` → the one for ``lang`` (theme.STATE_LABELS, registry.TOPICS, reference lists)."""
    return pick(names[0], names[1], lang)


def _present(text) -> bool:
    if text is None:
        return False
    if isinstance(text, float) and math.isnan(text):
        return False
    return str(text) != "" and str(text).lower() not in ("nan", "<na>", "none")


# --- registry objects -----------------------------------------------------------------------------------------

def field(obj, name: str, lang: str) -> str:
    """``obj.name`` or ``obj.name_zh`` (attributes, dict keys or a pandas row alike): indicators and units have
    ``name``/``name_zh``, layer specs ``title``/``title_zh``."""
    def get(attr):
        if isinstance(obj, dict):
            return obj.get(attr)
        return getattr(obj, attr, None)
    return pick(get(name), get(f"{name}_zh"), lang)


def indicator_name(indicator, lang: str) -> str:
    return field(indicator, "name", lang)


def indicator_description(indicator, lang: str) -> str:
    """What an indicator measures, its formula in words (the registry's ``description`` / ``description_zh``)."""
    return field(indicator, "description", lang)


def unit_name(unit, lang: str) -> str:
    """An administrative unit's name (a lineage dict, a children row, a GeoJSON feature's properties)."""
    return field(unit, "name", lang)


def layer_title(spec, lang: str) -> str:
    return field(spec, "title", lang)


def window_label(window: str, lang: str) -> str:
    from metrics.spec import WINDOWS, WINDOWS_ZH
    return pick(WINDOWS[window], WINDOWS_ZH[window], lang)


def state_label(state: str, lang: str) -> str:
    from dashboard.theme import STATE_LABELS
    return pair(STATE_LABELS.get(state, STATE_LABELS["no_data"]), lang)


def topic_title(topic: str, lang: str) -> str:
    from metrics.registry import TOPICS
    return pair(TOPICS[topic], lang)


def level_label(level: str, lang: str) -> str:
    """The units of ``level`` as a heading: ``Districts`` / ``各区``."""
    return t(f"level.{level}", lang)


def level_noun(level: str, lang: str, many: bool = False) -> str:
    """The units of ``level`` in running text: ``city`` / ``cities`` / ``市``."""
    return t(f"level.{'many' if many else 'one'}.{level}", lang)


def unit_of_measure(unit: str, lang: str) -> str:
    """An indicator's unit (``orders`` → ``件`` in zh)."""
    return UNITS_ZH.get(unit, unit) if normalise_language(lang) == "zh" else unit


def department_name(name: str, lang: str) -> str:
    """An indicator's owner: the responsibility list's departments have a Chinese name; others stay as they are."""
    if normalise_language(lang) != "zh":
        return name
    from layers.reference import DEPARTMENTS
    return next((zh for en, zh in DEPARTMENTS.values() if en == name), OWNERS_ZH.get(name, name))


# Owners named in metrics/registry.py that are not departments of the responsibility list.
OWNERS_ZH = {"Government Service and Data Bureau": "政务服务和数据管理局", "Grid Management Center": "网格管理中心",
             "Data Resource Center": "数据资源中心", "Traffic Police": "公安交警"}


def frequency_label(frequency: str, lang: str) -> str:
    key = f"frequency.{frequency}"
    return t(key, lang) if key in MESSAGES else frequency


def thresholds_text(indicator, lang: str, number_format: str = "{:g}") -> str:
    """The indicator's thresholds in words (metrics.catalogue.thresholds_text, in either language)."""
    from metrics.spec import SURGE
    if indicator.judged_by == "surge":
        return t("thresholds.surge", lang, steps=_steps_text(SURGE, lang, number_format))
    if indicator.thresholds is None:
        return t("thresholds.none", lang)
    return _steps_text(indicator.thresholds, lang, number_format)


def _steps_text(thresholds, lang: str, number_format: str) -> str:
    parts = []
    steps = thresholds.steps
    for i, step in enumerate(steps):
        upper = steps[i + 1].value if i + 1 < len(steps) else None
        state = state_label(step.state, lang) if normalise_language(lang) == "zh" else step.state
        if i == 0:
            parts.append(state if upper is None else
                         t("thresholds.below", lang, upper=number_format.format(upper), state=state))
        elif upper is None:
            parts.append(t("thresholds.from", lang, lower=number_format.format(step.value), state=state))
        else:
            parts.append(t("thresholds.between", lang, lower=number_format.format(step.value),
                           upper=number_format.format(upper), state=state))
    return " · ".join(parts)


# --- links ----------------------------------------------------------------------------------------------------

def with_language(href: str, lang: str) -> str:
    """``href`` carrying ``lang=zh`` (English is the default, so an English link carries no ``lang``)."""
    parts = urlsplit(href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    if normalise_language(lang) != DEFAULT_LANGUAGE:
        query.append(("lang", normalise_language(lang)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def language_query(lang: str) -> dict:
    """``{"lang": "zh"}`` or ``{}``: for the query dicts the pages build."""
    lang = normalise_language(lang)
    return {} if lang == DEFAULT_LANGUAGE else {"lang": lang}


# --- names that come with the data ------------------------------------------------------------------------------

def localise_hotspots(found, city, lang: str):
    """The services' hotspot table with its event type, place and district named in ``lang`` (Chinese names from
    the city's responsibility list and units; the English ones where a city has none)."""
    if normalise_language(lang) != "zh" or found.empty:
        return found
    units_zh = city.units["name_zh"]
    event_types = city["event_types"].set_index("code") if "event_types" in city.layers else None
    events_zh = event_types["name_zh"] if event_types is not None and "name_zh" in event_types else None
    event_name = found["event_name"] if events_zh is None else \
        found["event_type"].map(events_zh).where(lambda s: s.map(_present), found["event_name"])
    place = found["grid_code"].map(units_zh).where(lambda s: s.map(_present), found["place"])
    district = found["grid_code"].map(city.hierarchy["district"]).map(units_zh)
    return found.assign(event_name=event_name, place=place,
                        district=district.where(district.map(_present), found["district"]))


def hotspot_evidence(row, lang: str) -> str:
    """A hotspot's evidence sentence: metrics.hotspots writes it in English; in Chinese it is said from the row."""
    if normalise_language(lang) != "zh":
        return str(row.evidence)
    from metrics.hotspots import HOURS, NIGHT_HOURS
    band = {(row.start_hour + offset) % HOURS for offset in range((row.end_hour - row.start_hour) % HOURS or HOURS)}
    day_word = t("hotspots.day_word.nights" if band <= NIGHT_HOURS else "hotspots.day_word.days", lang)
    expected = row.expected
    shown = f"{expected:,.0f}" if expected >= 10 else f"{expected:.1f}" if expected >= 1 else f"{expected:.2g}"
    return t("hotspots.evidence_text", lang, orders=f"{row.orders:,}", event=row.event_name, grid=row.grid_code,
             start=f"{row.start_hour:02d}:00", end=f"{row.end_hour:02d}:00", seen=row.days_seen, days=row.days,
             day_word=day_word, expected=shown)


_OVER_LIMIT = re.compile(r"(?P<kind>[a-z_0-9]+) (?P<value>-?[\d.]+) over limit (?P<limit>-?[\d.]+)")


def alarm_message(message, lang: str, kind_names: dict[str, tuple[str, str]] | None = None) -> str:
    """An alarm's text in ``lang``: the sensor systems' known messages ("noise 72.23 over limit 70", "lamp
    failure") have message ids with both languages; any other text is the system's own and is shown as it came.

    >>> alarm_message("noise 72.23 over limit 70", "zh", {"noise": ("Noise", "噪声")})
    '72.23，超过限值 70'
    >>> alarm_message("lamp failure", "zh")
    '路灯故障'
    """
    text = "" if message is None else str(message)
    if normalise_language(lang) == "en":
        return text
    known = _OVER_LIMIT.fullmatch(text)
    if known:
        kind = known["kind"]
        name = pair((kind_names or {}).get(kind, (kind, kind)), lang)
        return t("alarm_limit.over", lang, kind=name, value=known["value"], limit=known["limit"])
    key = f"alarm.{text}"  # the alarm's own message names its text (tests/test_i18n.py counts these as used)
    return t(key, lang) if key in MESSAGES else text
