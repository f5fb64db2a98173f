"""Reference lists: the default responsibility list, intake channels, sensor kinds and building uses; incident kinds
and severities, industries and work-safety risk classes, grid-worker posts, road classes and conditions.

They are data, not code: the sample generator builds the sample city from them, and the indicator families of
:mod:`metrics.families` (per event category, department, channel, event type, sensor kind) are declared over them.
An imported city with other vocabularies simply has no data for the members it lacks.

Modelled on Shenzhen's citizen-request platform (../shared/CONTEXT.md): the real list has over 4,000 event types;
these are 48 common ones, each with a responsible department and a time limit in hours. ``weight`` is the relative
share of orders, ``night_share`` the share received between 22:00 and 06:00 (noise complaints come at night).
"""
from __future__ import annotations

DEPARTMENTS = {
    "urban_management": ("Urban Management Bureau", "城市管理和综合执法局"),
    "environment": ("Ecology and Environment Bureau", "生态环境局"),
    "transport": ("Transport Bureau", "交通运输局"),
    "traffic_police": ("Traffic Police", "公安交警"),
    "housing": ("Housing and Construction Bureau", "住房和建设局"),
    "water": ("Water Affairs Bureau", "水务局"),
    "market": ("Market Supervision Bureau", "市场监督管理局"),
    "labour": ("Human Resources and Social Security Bureau", "人力资源和社会保障局"),
    "police": ("Public Security Bureau", "公安局"),
    "emergency": ("Emergency Management Bureau", "应急管理局"),
    "fire": ("Fire and Rescue Brigade", "消防救援支队"),
    "street_office": ("Street Office", "街道办事处"),
    "health": ("Health Commission", "卫生健康委员会"),
    "education": ("Education Bureau", "教育局"),
    "planning": ("Planning and Natural Resources Bureau", "规划和自然资源局"),
}

# code, category, English name, Chinese name, department, time limit (hours), weight, night share
EVENT_TYPES = [
    ("garbage_overflow", "city_appearance", "Garbage overflow", "垃圾满溢", "urban_management", 24, 6.0, 0.05),
    ("illegal_street_vending", "city_appearance", "Illegal street vending", "占道经营", "urban_management", 24, 5.0, 0.15),
    ("illegal_advertising", "city_appearance", "Illegal advertising", "违规广告", "urban_management", 96, 2.0, 0.02),
    ("construction_waste_dumping", "city_appearance", "Construction waste dumping", "建筑垃圾乱倒", "urban_management", 60, 2.0, 0.10),
    ("illegal_construction", "city_appearance", "Illegal construction", "违法建设", "planning", 288, 2.5, 0.02),
    ("green_space_damage", "city_appearance", "Damaged green space", "绿地损毁", "urban_management", 96, 1.0, 0.02),
    ("night_construction_noise", "environment", "Construction noise at night", "夜间施工噪音", "environment", 24, 4.0, 0.80),
    ("business_noise", "environment", "Noise from shops and bars", "商业噪音", "environment", 24, 4.0, 0.60),
    ("neighbour_noise", "environment", "Noise from neighbours", "邻里噪音", "street_office", 60, 3.0, 0.50),
    ("cooking_fumes", "environment", "Restaurant cooking fumes", "餐饮油烟", "environment", 96, 2.0, 0.10),
    ("water_pollution", "environment", "River or drain pollution", "水体污染", "environment", 96, 1.0, 0.05),
    ("air_pollution_odour", "environment", "Odour or dust pollution", "异味扬尘", "environment", 60, 1.5, 0.10),
    ("illegal_parking", "traffic", "Illegal parking", "违章停车", "traffic_police", 24, 7.0, 0.10),
    ("traffic_signal_fault", "traffic", "Traffic signal fault", "信号灯故障", "traffic_police", 24, 1.0, 0.05),
    ("road_congestion", "traffic", "Road congestion", "道路拥堵", "traffic_police", 24, 1.5, 0.02),
    ("bus_service", "traffic", "Bus service complaint", "公交服务", "transport", 192, 2.0, 0.02),
    ("taxi_service", "traffic", "Taxi and ride-hailing complaint", "出租网约车投诉", "transport", 192, 2.0, 0.10),
    ("shared_bike_clutter", "traffic", "Shared bikes blocking the way", "共享单车乱停放", "transport", 24, 3.0, 0.05),
    ("road_damage", "municipal", "Damaged road surface", "路面破损", "transport", 96, 2.5, 0.03),
    ("manhole_cover_missing", "municipal", "Missing or broken manhole cover", "井盖缺失破损", "water", 24, 1.0, 0.05),
    ("streetlight_out", "municipal", "Streetlight out", "路灯不亮", "urban_management", 60, 2.0, 0.60),
    ("drain_blocked", "municipal", "Blocked drain", "排水堵塞", "water", 60, 2.0, 0.05),
    ("waterlogging", "municipal", "Waterlogged street", "道路积水", "water", 24, 1.5, 0.10),
    ("water_supply_outage", "municipal", "Water supply outage", "停水", "water", 24, 1.5, 0.05),
    ("property_management", "housing", "Property management dispute", "物业管理纠纷", "housing", 288, 4.0, 0.03),
    ("rental_housing_safety", "housing", "Rental housing safety", "出租屋安全隐患", "housing", 96, 2.0, 0.03),
    ("elevator_fault", "housing", "Elevator fault", "电梯故障", "market", 24, 1.5, 0.05),
    ("building_leak", "housing", "Leaking building", "房屋渗漏", "housing", 192, 1.5, 0.02),
    ("wage_arrears", "labour", "Unpaid wages", "欠薪", "labour", 288, 2.5, 0.02),
    ("labour_contract", "labour", "Labour contract dispute", "劳动合同纠纷", "labour", 288, 1.5, 0.02),
    ("social_insurance", "labour", "Social insurance query", "社保咨询", "labour", 192, 2.0, 0.01),
    ("food_safety", "market", "Food safety", "食品安全", "market", 96, 2.0, 0.05),
    ("consumer_complaint", "market", "Consumer complaint", "消费投诉", "market", 288, 4.0, 0.05),
    ("unlicensed_business", "market", "Unlicensed business", "无证经营", "market", 192, 1.0, 0.05),
    ("price_gouging", "market", "Price gouging", "价格违法", "market", 192, 0.8, 0.02),
    ("public_order", "public_safety", "Public order disturbance", "扰乱公共秩序", "police", 24, 1.5, 0.40),
    ("fraud_report", "public_safety", "Fraud report", "诈骗举报", "police", 96, 1.0, 0.05),
    ("e_bike_indoor_charging", "public_safety", "E-bike charging indoors", "电动车入户充电", "fire", 24, 1.5, 0.30),
    ("fire_hazard", "public_safety", "Fire hazard", "消防隐患", "fire", 24, 1.5, 0.10),
    ("blocked_fire_exit", "public_safety", "Blocked fire exit", "消防通道堵塞", "fire", 24, 1.5, 0.10),
    ("gas_leak", "public_safety", "Gas smell or leak", "燃气泄漏", "emergency", 24, 0.5, 0.15),
    ("slope_risk", "public_safety", "Slope or landslide risk", "边坡隐患", "emergency", 60, 0.3, 0.05),
    ("stray_animals", "social", "Stray animals", "流浪动物", "street_office", 96, 1.0, 0.10),
    ("community_services", "social", "Community services", "社区服务", "street_office", 192, 2.0, 0.01),
    ("school_enrolment", "social", "School enrolment", "入学咨询", "education", 192, 1.5, 0.01),
    ("hospital_service", "social", "Hospital service", "医疗服务投诉", "health", 192, 1.5, 0.03),
    ("epidemic_prevention", "social", "Epidemic prevention", "疫情防控", "health", 60, 0.5, 0.05),
    ("government_service", "social", "Government service counter", "政务服务", "street_office", 192, 1.5, 0.01),
]

CATEGORIES = {
    "city_appearance": ("City appearance", "市容环境"),
    "environment": ("Environment and noise", "生态环境与噪音"),
    "traffic": ("Traffic and transport", "交通出行"),
    "municipal": ("Municipal facilities", "市政设施"),
    "housing": ("Housing and property", "住房物业"),
    "labour": ("Labour and social security", "劳动社保"),
    "market": ("Market and consumers", "市场监管"),
    "public_safety": ("Public safety", "公共安全"),
    "social": ("Social affairs", "社会事务"),
}

# code, English name, Chinese name, share of orders
CHANNELS = [
    ("hotline_12345", "12345 hotline", "12345热线", 0.38),
    ("ishenzhen_app", "i Shenzhen app", "i深圳", 0.16),
    ("wechat", "WeChat mini-program", "微信小程序", 0.14),
    ("grid_patrol", "Grid-worker patrol", "网格员巡查", 0.12),
    ("ai_camera", "AI camera detection", "AI视频识别", 0.07),
    ("website", "Government website", "政府网站", 0.03),
    ("secretary_mailbox", "Secretary's mailbox", "书记信箱", 0.02),
    ("mayor_mailbox", "Mayor's mailbox", "市长信箱", 0.02),
    ("women_children_line", "Women and children's rights line", "妇女儿童维权热线", 0.01),
    ("media", "Media and social media", "媒体舆情", 0.02),
    ("visit", "Walk-in visit", "来访", 0.02),
    ("iot_alarm", "IoT sensor alarm", "物联感知告警", 0.01),
]

# code, English, Chinese, unit, located in ("building" | "grid"), share of sensors, measures (has readings)
SENSOR_KINDS = [
    ("pm25", "PM2.5 monitor", "PM2.5监测", "µg/m³", "grid", 0.06, True),
    ("noise", "Noise monitor", "噪声监测", "dB(A)", "grid", 0.08, True),
    ("water_level", "Water level gauge", "水位监测", "m", "grid", 0.04, True),
    ("traffic_flow", "Traffic flow counter", "车流量检测", "veh/h", "grid", 0.08, True),
    ("smoke", "Smoke and fire detector (high-rise)", "高层建筑烟感", "", "building", 0.30, False),
    ("manhole_cover", "Smart manhole cover", "智能井盖", "", "grid", 0.14, False),
    ("streetlight", "Smart streetlight", "智慧路灯", "", "grid", 0.20, False),
    ("electrical_safety", "Electrical safety monitor", "用电安全监测", "", "building", 0.10, False),
]

# Thresholds that raise an alarm for the measuring kinds (used by the generator to derive alarms from readings).
READING_ALARM_LIMITS = {"pm25": 75.0, "noise": 70.0, "water_level": 2.5, "traffic_flow": 2600.0}

BUILDING_USES = [
    # code, English, Chinese, share in the core, share elsewhere
    ("residential", "Residential", "住宅", 0.50, 0.50),
    ("commercial", "Commercial", "商业", 0.16, 0.08),
    ("office", "Office", "办公", 0.16, 0.04),
    ("industrial", "Industrial", "工业", 0.04, 0.26),
    ("public", "Public services", "公共服务", 0.08, 0.06),
    ("mixed", "Mixed use", "综合", 0.06, 0.06),
]

# The dense, tall core of Shenzhen (adcodes): Futian, Luohu, Nanshan.
CORE_DISTRICTS = {"440304", "440303", "440305"}

# --- emergency incidents, enterprises, grid management, cameras, roads ---------------------------------------------

# code, English, Chinese, share of incidents, median minutes on scene (arrival → resolved)
INCIDENT_KINDS = [
    ("traffic_accident", "Traffic accident", "交通事故", 0.34, 35.0),
    ("medical", "Medical emergency", "医疗急救", 0.28, 25.0),
    ("fire", "Fire", "火灾", 0.11, 70.0),
    ("elevator_entrapment", "People trapped in a lift", "电梯困人", 0.08, 30.0),
    ("flooding", "Flooding", "内涝", 0.05, 180.0),
    ("gas_leak", "Gas leak", "燃气泄漏", 0.05, 60.0),
    ("crowd", "Crowd gathering", "人群聚集", 0.04, 120.0),
    ("hazardous_chemicals", "Hazardous chemicals leak", "危化品泄漏", 0.02, 150.0),
    ("building_collapse_risk", "Building or slope collapse risk", "房屋边坡坍塌风险", 0.03, 240.0),
]

# China's four levels of emergencies (突发事件分级, level IV to I), code, English, Chinese, share of incidents.
INCIDENT_SEVERITIES = [
    ("general", "General (level IV)", "一般（IV级）", 0.92),
    ("relatively_major", "Relatively major (level III)", "较大（III级）", 0.065),
    ("major", "Major (level II)", "重大（II级）", 0.013),
    ("especially_major", "Especially major (level I)", "特别重大（I级）", 0.002),
]

# Work-safety risk classes of an enterprise (安全生产分级分类监管).
RISK_CLASSES = {
    "major_hazard": ("Major hazard installation", "重大危险源企业"),
    "key": ("Key supervision", "重点监管企业"),
    "ordinary": ("Ordinary", "一般企业"),
}

# code, English, Chinese, share on industrial sites, on office sites, on shop/housing sites,
# probability of a major hazard installation, probability of key supervision, median employees
INDUSTRIES = [
    ("electronics", "Electronics manufacturing", "电子制造", 0.34, 0.02, 0.01, 0.008, 0.15, 60),
    ("manufacturing", "Other manufacturing", "其他制造", 0.30, 0.01, 0.02, 0.012, 0.14, 35),
    ("chemicals", "Chemicals and plastics", "化工塑料", 0.06, 0.00, 0.00, 0.160, 0.55, 40),
    ("logistics", "Logistics and warehousing", "物流仓储", 0.14, 0.03, 0.02, 0.040, 0.20, 25),
    ("construction", "Construction", "建筑施工", 0.08, 0.06, 0.01, 0.010, 0.30, 30),
    ("energy", "Fuel and gas supply", "燃气加油", 0.02, 0.00, 0.01, 0.300, 0.50, 15),
    ("software_it", "Software and IT", "软件信息", 0.01, 0.30, 0.01, 0.000, 0.01, 25),
    ("finance", "Finance", "金融", 0.00, 0.18, 0.04, 0.000, 0.01, 30),
    ("business_services", "Business services", "商务服务", 0.02, 0.30, 0.10, 0.000, 0.02, 10),
    ("retail", "Retail", "零售", 0.01, 0.05, 0.40, 0.000, 0.04, 5),
    ("catering", "Catering", "餐饮", 0.01, 0.03, 0.30, 0.002, 0.08, 8),
    ("hospitality", "Hotels and entertainment", "住宿娱乐", 0.01, 0.02, 0.08, 0.000, 0.20, 20),
]

# Inspection interval of the supervised risk classes; ordinary enterprises are inspected by random spot checks.
INSPECTION_INTERVAL_DAYS = {"major_hazard": 90, "key": 180}

# code, English, Chinese
GRID_WORKER_POSTS = [
    ("full_time", "Full-time grid worker", "专职网格员"),
    ("assistant", "Grid assistant", "网格协管员"),
]

# code, English, Chinese, share of segments, median length (m), share in poor condition relative to the mean,
# typical congestion index in the late afternoon (1 free flow – 10 gridlock)
ROAD_CLASSES = [
    ("expressway", "Expressway", "快速路", 0.05, 900.0, 0.5, 4.5),
    ("arterial", "Arterial road", "主干路", 0.15, 450.0, 0.8, 4.8),
    ("secondary", "Secondary road", "次干路", 0.25, 280.0, 1.0, 3.8),
    ("branch", "Branch road", "支路", 0.55, 160.0, 1.3, 2.6),
]

ROAD_CONDITIONS = {"good": ("Good", "良好"), "fair": ("Fair", "一般"), "poor": ("Poor", "较差")}
