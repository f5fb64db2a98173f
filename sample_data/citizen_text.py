"""What a citizen says when filing a request, for the sample city's generated orders (issue 15 item 13).

Each event type of the responsibility list (:data:`layers.reference.EVENT_TYPES`) has requests written the way
residents of Shenzhen file them through the 12345 hotline, the WeChat mini-program or the i深圳 app: the problem,
where, since when, and what they want. Most citizens write in Chinese; a share (:data:`ENGLISH_SHARE`, an
assumption for a city with many foreign residents and visitors) write in English. A text is composed from the
event type's own sentences, a place and a time, and a closing line, so that the 120,000 orders of the demo city do
not repeat a handful of strings; every text is plain text (no markup), as a citizen types it.

>>> import numpy as np
>>> texts = citizen_requests(np.array(["garbage_overflow", "gas_leak"]), np.random.default_rng(1))
>>> len(texts), all(isinstance(t, str) and t for t in texts)
(2, True)
"""
from __future__ import annotations

import numpy as np

# Share of requests written in English (assumed; the rest in Chinese).
ENGLISH_SHARE = 0.2
# Texts composed per event type and language; orders draw from these pools (fast at 3 million orders).
POOL_SIZE = 48

# Event type → (Chinese sentences, English sentences); {place} and {when} are filled in.
REQUESTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "garbage_overflow": (
        ("{place}的垃圾桶{when}一直满着没人清运，垃圾都堆到地上了，臭味很大。",
         "{place}垃圾满溢，{when}没有清理，苍蝇蚊子很多。"),
        ("The bins {place} have been overflowing {when}; rubbish is piling up on the pavement and it smells.",
         "Nobody has emptied the bins {place} {when}. There are flies everywhere.")),
    "illegal_street_vending": (
        ("{place}{when}有流动摊贩占道摆卖，行人只能走机动车道，很危险。",
         "{place}小吃摊占用人行道经营，{when}油烟和垃圾很多。"),
        ("Street vendors set up {place} {when} and block the footpath; people have to walk in the road.",
         "Food stalls are occupying the pavement {place} {when}, leaving grease and rubbish behind.")),
    "illegal_advertising": (
        ("{place}墙上和电线杆上贴满了小广告，{when}越来越多。",
         "{place}有人{when}乱发传单、乱贴办证广告，影响市容。"),
        ("The walls and poles {place} are covered in stickers and flyers, more of them {when}.",
         "Someone keeps putting up illegal adverts {place} {when}.")),
    "construction_waste_dumping": (
        ("{place}{when}被人倾倒了大量建筑垃圾，碎砖和装修废料堆成一堆。",
         "有货车{when}在{place}偷倒渣土，路面都是泥。"),
        ("Someone dumped a large pile of construction rubble {place} {when}.",
         "Trucks have been dumping building waste {place} {when}; the road is covered in mud.")),
    "illegal_construction": (
        ("{place}有住户{when}在楼顶加建铁皮房，怀疑是违建。",
         "{place}一楼商铺{when}私自扩建，把公共空地围起来了。"),
        ("A resident {place} has been building an extra room on the roof {when}; it looks illegal.",
         "The shop {place} extended its front onto public space {when} without any permit I can see.")),
    "green_space_damage": (
        ("{place}的绿化带{when}被人踩坏，还有人在里面种菜。",
         "{place}的行道树{when}被砍了几棵，草地也被车压坏了。"),
        ("The flower beds {place} have been trampled {when} and someone is growing vegetables in them.",
         "Several trees {place} were cut down {when} and cars are parking on the grass.")),
    "night_construction_noise": (
        ("{place}的工地{when}通宵施工，打桩机声音特别大，根本睡不着。",
         "{place}工地{when}晚上十一点以后还在施工，请查一下有没有夜间施工许可。"),
        ("The construction site {place} works through the night {when}; the pile driver keeps everyone awake.",
         "Building work {place} goes on after 11 pm {when}. Do they have a night-work permit?")),
    "business_noise": (
        ("{place}的酒吧{when}音乐开得很大声，一直到凌晨两三点。",
         "{place}的商铺用大喇叭叫卖，{when}吵得不行。"),
        ("The bar {place} plays loud music until 2 or 3 am {when}.",
         "The shops {place} use loudspeakers to call customers {when}; it is unbearable.")),
    "neighbour_noise": (
        ("{place}楼上住户{when}半夜拖动家具、跳绳，多次沟通无果。",
         "{place}邻居家{when}每天很晚还在唱卡拉OK，影响休息。"),
        ("The flat above me {place} makes loud noise late at night {when}; talking to them did not help.",
         "My neighbours {place} sing karaoke until late {when}.")),
    "cooking_fumes": (
        ("{place}的餐馆油烟直排，{when}整栋楼都是油烟味，窗户都不敢开。",
         "{place}烧烤店{when}油烟很大，没有装净化设备。"),
        ("The restaurant {place} vents its cooking fumes straight out; the whole building smells {when}.",
         "The barbecue place {place} has no fume filter; smoke comes into our flats {when}.")),
    "water_pollution": (
        ("{place}的河道{when}发黑发臭，还有死鱼漂着。",
         "{place}有排污口{when}往河里排污水，颜色很奇怪。"),
        ("The river {place} has turned black and smells {when}; there are dead fish.",
         "A pipe {place} is discharging dirty water into the river {when}.")),
    "air_pollution_odour": (
        ("{place}{when}有很重的刺鼻气味，不知道是哪个工厂排的。",
         "{place}工地{when}扬尘很严重，没有洒水也没有覆盖。"),
        ("There is a strong chemical smell {place} {when}; we do not know which factory it comes from.",
         "The site {place} raises a lot of dust {when}; nothing is covered or watered.")),
    "illegal_parking": (
        ("{place}{when}有车辆长期违停，堵住了消防通道和小区出入口。",
         "{place}路边{when}停满了车，公交车都过不去。"),
        ("Cars are parked illegally {place} {when}, blocking the fire lane and the estate entrance.",
         "Cars double-park {place} {when} and the buses cannot get through.")),
    "traffic_signal_fault": (
        ("{place}路口的红绿灯{when}不亮了，车辆和行人都很乱。",
         "{place}的行人信号灯{when}一直是红灯，不变绿。"),
        ("The traffic lights at the junction {place} have been out {when}; it is chaos.",
         "The pedestrian light {place} stays red all the time {when}.")),
    "road_congestion": (
        ("{place}{when}早晚高峰堵得很厉害，建议优化信号灯配时。",
         "{place}{when}因为施工围挡只剩一条车道，天天堵车。"),
        ("Traffic {place} is jammed every rush hour {when}; please look at the signal timing.",
         "Roadworks {place} leave only one lane open {when}, so it is gridlocked every day.")),
    "bus_service": (
        ("{place}的公交车{when}经常不按时到站，一等就是半个小时。",
         "{place}上车时司机态度很差，{when}还不等乘客坐稳就开车。"),
        ("The bus {place} has been irregular {when}; I often wait half an hour.",
         "The bus driver {place} was rude and pulled away before passengers sat down {when}.")),
    "taxi_service": (
        ("{when}在{place}打车，司机拒载还绕路，要求投诉。",
         "{when}坐网约车从{place}出发，司机多收费，平台不处理。"),
        ("{when} a taxi driver {place} refused to take me and another one took a long detour.",
         "A ride-hailing driver overcharged me on a trip from {place} {when}, and the platform did nothing.")),
    "shared_bike_clutter": (
        ("{place}{when}堆满了共享单车，人行道和盲道都被堵住了。",
         "{place}的共享单车{when}倒了一地，没人清理。"),
        ("Shared bikes are piled up {place} {when}, blocking the pavement and the tactile path.",
         "Dozens of shared bikes have been lying on the ground {place} {when}.")),
    "road_damage": (
        ("{place}路面{when}出现一个大坑，下雨积水看不见，电动车差点摔倒。",
         "{place}的人行道砖{when}松动破损，老人容易绊倒。"),
        ("There is a big pothole {place} {when}; a scooter nearly fell in it after the rain.",
         "The paving {place} is broken and loose {when}; elderly people trip on it.")),
    "manhole_cover_missing": (
        ("{place}的井盖{when}不见了，只放了一个路障，晚上很危险。",
         "{place}有个井盖{when}破了一角，车压过去哐哐响。"),
        ("A manhole cover is missing {place} {when}; there is only a cone, dangerous at night.",
         "The manhole cover {place} is cracked {when} and rattles when cars drive over it.")),
    "streetlight_out": (
        ("{place}的路灯{when}都不亮，晚上一片漆黑，走路不安全。",
         "{place}有几盏路灯{when}坏了，一闪一闪的。"),
        ("The streetlights {place} have been out {when}; it is pitch dark at night.",
         "Several streetlights {place} keep flickering {when}.")),
    "drain_blocked": (
        ("{place}的下水道{when}堵了，污水漫到路面上。",
         "{place}雨水篦子{when}被垃圾堵住，一下雨就积水。"),
        ("The drain {place} has been blocked {when}; dirty water is flowing onto the street.",
         "The storm drain grates {place} are clogged with rubbish {when}.")),
    "waterlogging": (
        ("{place}{when}一下雨就积水，水深到小腿，车辆熄火。",
         "{place}的低洼路段{when}积水严重，行人过不去。"),
        ("The street {place} floods every time it rains {when}; the water is knee-deep.",
         "The underpass {place} is flooded {when} and people cannot get through.")),
    "water_supply_outage": (
        ("{place}{when}突然停水，没有收到任何通知，什么时候恢复？",
         "{place}{when}水压很低，高层完全没有水。"),
        ("There has been no water {place} {when} and we had no notice. When will it come back?",
         "Water pressure {place} is so low {when} that the upper floors have none.")),
    "property_management": (
        ("{place}物业{when}不作为，电梯坏了、垃圾不清，还要涨物业费。",
         "{place}物业{when}擅自把公共车位出租，业主不同意。"),
        ("The property management {place} does nothing {when} but wants to raise the fees.",
         "The management company {place} rented out the shared parking spaces {when} without asking owners.")),
    "rental_housing_safety": (
        ("{place}的出租屋{when}住了很多人，隔成很多小间，消防隐患很大。",
         "{place}的城中村出租屋{when}电线乱拉，担心起火。"),
        ("The rented flat {place} is split into tiny rooms for many tenants {when}; it is a fire risk.",
         "The wiring in the rented rooms {place} is a tangle {when}; I am afraid of a fire.")),
    "elevator_fault": (
        ("{place}的电梯{when}经常故障，今天又困人了。",
         "{place}电梯{when}运行时异响抖动，年检标志也过期了。"),
        ("The lift {place} keeps breaking down {when}; people were trapped again today.",
         "The lift {place} shakes and makes noises {when}, and its inspection certificate has expired.")),
    "building_leak": (
        ("{place}楼上漏水到我家天花板{when}，楼上住户不配合维修。",
         "{place}外墙{when}渗水，一下雨墙面就发霉。"),
        ("Water has been leaking through my ceiling {place} {when}; the upstairs owner will not fix it.",
         "The outer wall {place} lets rain in {when} and the inside is going mouldy.")),
    "wage_arrears": (
        ("我在{place}的工地干活，老板{when}拖欠工资三个月，一共一万多元。",
         "{place}的工厂{when}拖欠我们二十多名工人工资，老板联系不上。"),
        ("My employer at the site {place} has not paid my wages {when}: three months, over 10,000 yuan.",
         "The factory {place} owes more than twenty of us our wages {when} and the boss is unreachable.")),
    "labour_contract": (
        ("在{place}的公司上班，{when}公司不签劳动合同，也不买社保。",
         "{place}的公司{when}单方面解除合同，不给经济补偿。"),
        ("The company {place} has not given me a contract {when} and pays no social insurance.",
         "The company {place} ended my contract {when} without any compensation.")),
    "social_insurance": (
        ("想咨询一下，{when}在{place}换了工作，社保怎么转移？",
         "{when}在{place}办理医保，系统显示缴费中断，想问原因。"),
        ("I changed jobs {when} and now work {place}. How do I transfer my social insurance?",
         "My medical insurance shows a gap in payments {when}; I work {place}. Why?")),
    "food_safety": (
        ("{when}在{place}的餐馆吃饭后全家拉肚子，怀疑食物不干净。",
         "{place}的超市{when}卖过期食品，已经拍照留证。"),
        ("My family got food poisoning after eating at the restaurant {place} {when}.",
         "The supermarket {place} sells food past its expiry date {when}; I have photos.")),
    "consumer_complaint": (
        ("{when}在{place}的健身房办卡，现在门店关门跑路了，要求退款。",
         "{when}在{place}买的家电有质量问题，商家拒绝退换。"),
        ("The gym {place} where I paid for a year closed {when}. I want my money back.",
         "An appliance I bought {place} {when} is faulty and the shop refuses to replace it.")),
    "unlicensed_business": (
        ("{place}{when}开了一家没有营业执照的小作坊。",
         "{place}的诊所{when}没有挂任何资质，怀疑无证行医。"),
        ("A workshop without any business licence opened {place} {when}.",
         "The clinic {place} displays no licence at all {when}; I think it is unlicensed.")),
    "price_gouging": (
        ("{place}的商店{when}明码标价和结账价格不一样。",
         "{place}{when}停车场乱收费，收费标准没有公示。"),
        ("The shop {place} charges more at the till than on the price tags {when}.",
         "The car park {place} charges whatever it likes {when}; no tariff is posted.")),
    "public_order": (
        ("{place}{when}深夜有人聚集喝酒吵闹，还打架。",
         "{place}{when}经常有人醉酒闹事，居民很害怕。"),
        ("People gather {place} late at night {when}, drinking, shouting and fighting.",
         "Drunk people cause trouble {place} {when}; residents are afraid.")),
    "fraud_report": (
        ("{when}接到自称{place}客服的电话，让我转账，怀疑是诈骗。",
         "{when}在{place}附近有人推销理财产品，承诺高回报，疑似非法集资。"),
        ("{when} I got a call from someone claiming to be customer service {place} asking me to transfer money.",
         "People {place} are selling 'investment' products promising high returns {when}; it looks like fraud.")),
    "e_bike_indoor_charging": (
        ("{place}有住户{when}把电动车推进楼道和家里充电，太危险了。",
         "{place}楼道里{when}飞线给电动车充电，物业不管。"),
        ("Residents {place} charge their e-bikes inside the stairwell and their flats {when}.",
         "Someone runs a cable down the corridor {place} to charge an e-bike {when}; management ignores it.")),
    "fire_hazard": (
        ("{place}的消防栓{when}没有水，灭火器也过期了。",
         "{place}的商铺{when}堆放大量易燃物品，存在消防隐患。"),
        ("The fire hydrant {place} has no water {when} and the extinguishers are out of date.",
         "The shop {place} stores a lot of flammable goods {when}.")),
    "blocked_fire_exit": (
        ("{place}的消防通道{when}被杂物和车辆堵死了。",
         "{place}的安全出口{when}被上锁，万一着火跑不出去。"),
        ("The fire lane {place} has been blocked by cars and junk {when}.",
         "The emergency exit {place} has been locked {when}. Nobody could get out in a fire.")),
    "gas_leak": (
        ("{place}{when}闻到很浓的煤气味，担心燃气泄漏，请马上派人来看。",
         "{place}的燃气管道{when}有嘶嘶的漏气声。"),
        ("There is a strong smell of gas {place} {when}. Please send someone now.",
         "I can hear gas hissing from the pipe {place} {when}.")),
    "slope_risk": (
        ("{place}后面的山坡{when}下雨后有泥土滑落，挡土墙也裂了。",
         "{place}的边坡{when}出现裂缝，担心暴雨时滑坡。"),
        ("Soil has been sliding off the slope behind {place} after the rain {when}; the wall is cracked.",
         "Cracks have opened in the slope {place} {when}; I fear a landslide in the next storm.")),
    "stray_animals": (
        ("{place}{when}有几条流浪狗，追咬路人，小孩不敢出门。",
         "{place}的流浪猫{when}越来越多，晚上叫得很厉害。"),
        ("Stray dogs {place} chase and bite passers-by {when}; children are scared.",
         "There are more and more stray cats {place} {when}, howling all night.")),
    "community_services": (
        ("{when}想在{place}的社区办理居住证明，需要带什么材料？",
         "{place}社区{when}的老年食堂关了，老人吃饭不方便。"),
        ("{when} I need a residence certificate from the community office {place}. What should I bring?",
         "The canteen for the elderly {place} closed {when}; older residents have nowhere to eat.")),
    "school_enrolment": (
        ("孩子明年上小学，住在{place}，{when}想咨询学位申请的积分规则。",
         "{when}学位申请系统一直登录不上，住址是{place}。"),
        ("My child starts primary school next year; we live {place}. How are enrolment points counted?",
         "I could not log in to the school place application {when}; our address is {place}.")),
    "hospital_service": (
        ("{when}在{place}的医院看急诊，等了四个小时没人管。",
         "{place}的社区医院{when}挂号难，号源一放出来就没了。"),
        ("{when} I waited four hours in the emergency room of the hospital {place} without being seen.",
         "It is impossible to book at the clinic {place} {when}; appointments vanish in seconds.")),
    "epidemic_prevention": (
        ("{place}{when}蚊子特别多，担心登革热，请来喷药消杀。",
         "{place}的积水容器{when}滋生蚊虫，请处理。"),
        ("There are swarms of mosquitoes {place} {when}; please spray against dengue.",
         "Standing water {place} is breeding mosquitoes {when}.")),
    "government_service": (
        ("{when}到{place}的政务服务中心办事，排队三个小时，窗口只开了两个。",
         "{when}在{place}办营业执照，材料已经交齐但一直没有审批结果。"),
        ("{when} I queued for three hours at the service centre {place}; only two counters were open.",
         "I applied for a business licence {place} {when} with every document and have heard nothing since.")),
}

PLACES_ZH = ("小区东门", "{n}栋楼下", "地铁站{exit}出口", "菜市场旁边", "学校门口", "公交站台", "停车场入口",
             "商业街", "公园南门", "十字路口", "城中村巷子里", "{n}号楼", "幼儿园对面", "加油站旁边")
PLACES_EN = ("by the east gate of our estate", "outside Block {n}", "at Exit {exit} of the metro station",
             "next to the wet market", "outside the school gate", "at the bus stop", "at the car park entrance",
             "on the shopping street", "by the south gate of the park", "at the crossroads",
             "in the lanes of the urban village", "at Building {n}", "opposite the kindergarten",
             "next to the petrol station")
TIMES_ZH = ("最近几天", "从昨天开始", "今天早上", "已经一个星期了", "这两天", "每天晚上", "周末", "这个月")
TIMES_EN = ("for the last few days", "since yesterday", "this morning", "for a week now", "these past two days",
            "every night", "at weekends", "this month")
CLOSINGS_ZH = ("请尽快处理。", "希望相关部门尽快处理，谢谢！", "已经反映过一次了，还是没人管。", "请派人来看看。",
               "", "麻烦了，谢谢。")
CLOSINGS_EN = (" Please deal with it soon.", " Thank you.", " I reported this before and nothing happened.",
               " Please send someone to look.", "", " Thanks for your help.")


def _compose(sentences, places, times, closings, rng: np.random.Generator, english: bool) -> str:
    sentence = sentences[rng.integers(len(sentences))]
    place = places[rng.integers(len(places))].format(n=int(rng.integers(1, 40)), exit="ABCD"[rng.integers(4)])
    text = sentence.format(place=place, when=times[rng.integers(len(times))])
    if english:
        text = text[0].upper() + text[1:]
    return text + closings[rng.integers(len(closings))]


def request_pools(rng: np.random.Generator, pool_size: int = POOL_SIZE) -> dict[str, tuple[list[str], list[str]]]:
    """Per event type, ``pool_size`` composed requests in Chinese and in English."""
    return {code: ([_compose(zh, PLACES_ZH, TIMES_ZH, CLOSINGS_ZH, rng, False) for _ in range(pool_size)],
                   [_compose(en, PLACES_EN, TIMES_EN, CLOSINGS_EN, rng, True) for _ in range(pool_size)])
            for code, (zh, en) in REQUESTS.items()}


def citizen_requests(event_types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One citizen's text per order (an object array on ``event_types``' order); None for an event type that has
    no sentences (a type added to the responsibility list later)."""
    pools = request_pools(rng)
    english = rng.random(len(event_types)) < ENGLISH_SHARE
    pick = rng.integers(0, POOL_SIZE, len(event_types))
    texts = np.full(len(event_types), None, dtype=object)
    for code, (chinese, english_pool) in pools.items():
        rows = np.flatnonzero(event_types == code)
        if len(rows):
            texts[rows] = np.where(english[rows], np.array(english_pool, dtype=object)[pick[rows]],
                                   np.array(chinese, dtype=object)[pick[rows]])
    return texts
