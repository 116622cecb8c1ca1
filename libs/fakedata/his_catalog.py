"""What the fake hospital offers: departments, doctors, diagnoses and chargeable items.

Department ``caty`` values are 诊疗科目 codes as the national platform uses them (A03 内科 …). Diagnosis codes
look like 医保版 ICD-10 codes; item codes pair a hospital code (medins_list_codg) with a national-looking code
(med_list_codg: X… 西药, C… 耗材, 00… 医疗服务). Prices are plausible, not any province's price list.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Department", "Doctor", "Item", "OUTP_DEPTS", "INP_DEPTS", "OUTP_DIAGNOSES", "ACUTE_OUTP_DIAGNOSES",
           "INP_DIAGNOSES", "OUTP_ITEMS", "INP_DAILY_ITEMS", "INP_EXTRA_ITEMS", "REGISTRATION_FEES", "doctors_of"]


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    caty: str


@dataclass(frozen=True)
class Doctor:
    code: str
    name: str
    dept: Department


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    yb_code: str
    price: Decimal
    drug: bool = False
    dosage: str | None = None
    frequency: str | None = None
    route: str | None = None


def _drug(code: str, name: str, yb_code: str, price: str, dosage: str, frequency: str, route: str) -> Item:
    return Item(code, name, yb_code, Decimal(price), True, dosage, frequency, route)


OUTP_DEPTS: tuple[Department, ...] = (
    Department("0301", "内科门诊", "A03"),
    Department("0401", "外科门诊", "A04"),
    Department("0501", "妇科门诊", "A05"),
    Department("0701", "儿科门诊", "A07"),
    Department("1001", "眼科门诊", "A10"),
    Department("1301", "皮肤科门诊", "A13"),
    Department("5001", "中医科门诊", "A50"),
    Department("2001", "急诊科", "A20"),
)

INP_DEPTS: tuple[Department, ...] = (
    Department("0302", "心血管内科病区", "A03"),
    Department("0303", "呼吸内科病区", "A03"),
    Department("0304", "肾内科病区", "A03"),
    Department("0402", "普外科病区", "A04"),
    Department("0403", "骨科病区", "A04"),
    Department("0502", "产科病区", "A05"),
)

_DOCTOR_NAMES = ("陈志明", "李秀兰", "黄建华", "梁海燕", "何国强", "罗晓东", "吴丽萍", "林永康", "郑文辉",
                 "谢春生", "冯婷婷", "曾德福", "彭锦荣", "邓佳琪")


def doctors_of(dept: Department) -> tuple[Doctor, ...]:
    """Two doctors per department, stable by department code."""
    start = int(dept.code) % len(_DOCTOR_NAMES)
    return tuple(
        Doctor(f"D{dept.code}{i + 1:02d}", _DOCTOR_NAMES[(start + i) % len(_DOCTOR_NAMES)], dept) for i in range(2)
    )


#: (ICD-10 医保版 code, name, chief complaint)
OUTP_DIAGNOSES: tuple[tuple[str, str, str], ...] = (
    ("J06.900", "急性上呼吸道感染", "咽痛、发热2天"),
    ("J20.900", "急性支气管炎", "咳嗽、咳痰5天"),
    ("I10.x00", "高血压", "头晕1周，血压升高"),
    ("E11.900", "2型糖尿病", "口干多饮，复诊取药"),
    ("K29.700", "胃炎", "上腹部隐痛3天"),
    ("M54.500", "腰痛", "腰部疼痛1月"),
    ("L30.900", "皮炎", "皮肤瘙痒、红斑1周"),
    ("H10.900", "结膜炎", "双眼发红、分泌物增多"),
)

#: the outpatient diagnoses under no 门诊慢特病 (a plain visit's: no 备案 to look up, settled as 普通门诊)
ACUTE_OUTP_DIAGNOSES: tuple[tuple[str, str, str], ...] = tuple(
    d for d in OUTP_DIAGNOSES if not d[0].startswith(("I10", "E11")))

INP_DIAGNOSES: tuple[tuple[str, str], ...] = (
    ("J18.900", "肺炎"),
    ("I63.900", "脑梗死"),
    ("K35.800", "急性阑尾炎"),
    ("S72.000", "股骨颈骨折"),
    ("I25.103", "冠状动脉粥样硬化性心脏病"),
    ("N18.500", "慢性肾脏病5期"),
)

#: 挂号性质 -> registration fee (诊查费)
REGISTRATION_FEES: dict[str, Decimal] = {"01": Decimal("10.00"), "02": Decimal("25.00"), "03": Decimal("15.00")}

OUTP_ITEMS: tuple[Item, ...] = (
    _drug("Y00123", "阿莫西林胶囊 0.25g*24粒", "XJ01CAA040A001010100001", "12.50", "0.5g", "tid", "口服"),
    _drug("Y00456", "布洛芬缓释胶囊 0.3g*20粒", "XM01AEB046E001010101443", "18.80", "0.3g", "bid", "口服"),
    _drug("Y00789", "盐酸二甲双胍片 0.5g*20片", "XA10BAE076A001010104023", "9.60", "0.5g", "tid", "口服"),
    _drug("Y01001", "苯磺酸氨氯地平片 5mg*7片", "XC08CAA098A001010101515", "25.20", "5mg", "qd", "口服"),
    _drug("Y01320", "复方甘草口服溶液 100ml", "XR05CAF050X001010100239", "6.35", "10ml", "tid", "口服"),
    Item("250101001", "血常规", "002501010010000-250101001", Decimal("20.00")),
    Item("250301002", "肝功能", "002503010020000-250301002", Decimal("45.00")),
    Item("210102015", "胸部DR", "002101020150000-210102015", Decimal("80.00")),
    Item("C00031", "一次性使用输液器", "C14020106400100000026", Decimal("3.50")),
)

INP_DAILY_ITEMS: tuple[Item, ...] = (
    Item("110900001", "普通病房床位费", "001109000010000-110900001", Decimal("45.00")),
    Item("120100002", "二级护理", "001201000020000-120100002", Decimal("28.00")),
    Item("110300001", "住院诊查费", "001103000010000-110300001", Decimal("20.00")),
)

INP_EXTRA_ITEMS: tuple[Item, ...] = (
    _drug("Y02002", "0.9%氯化钠注射液 250ml", "XB05XAA179B002010100433", "4.50", "250ml", "qd", "静滴"),
    _drug("Y02150", "注射用头孢曲松钠 1g", "XJ01DDA063B001010100028", "16.30", "2g", "qd", "静滴"),
    _drug("Y03011", "阿司匹林肠溶片 100mg*30片", "XB01ACA056A012010100321", "15.80", "100mg", "qd", "口服"),
    Item("311000006", "血液透析", "003110000060000-311000006", Decimal("420.00")),
    Item("250101001", "血常规", "002501010010000-250101001", Decimal("20.00")),
    Item("220600001", "心电图", "002206000010000-220600001", Decimal("25.00")),
    Item("C00031", "一次性使用输液器", "C14020106400100000026", Decimal("3.50")),
)
