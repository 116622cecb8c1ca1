"""Building blocks of synthetic Chinese people: surnames, given-name characters, regions.

Common surnames and everyday given-name characters, combined at random, give names that look ordinary without
being anyone in particular. Region codes are real 行政区划 codes (GB/T 2260) so certnos look plausible; the
医保区划 (insuplc_admdvs) list mixes the hospital's own city with a few other cities and provinces, because
异地就医 patients exist and must be handled.
"""

from __future__ import annotations

__all__ = ["SURNAMES", "GIVEN_CHARS", "BIRTH_REGIONS", "INSURANCE_AREAS", "LOCAL_ADMDVS"]

SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
) + ("欧阳", "司马", "上官")

GIVEN_CHARS: tuple[str, ...] = tuple(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文辉志红玉梅晨宇浩然子轩欣怡雨涵嘉豪思远俊杰"
    "婷雪佳琪梓萱一诺家乐晓东海燕春生秋菊德福永康锦荣少华冬梅丹妮颖慧晶宏斌"
)

#: 6-digit birthplace region codes used in certnos (Guangdong mostly, some elsewhere)
BIRTH_REGIONS: tuple[str, ...] = (
    "440604", "440605", "440606", "440607", "440608",  # 佛山 禅城 南海 顺德 三水 高明
    "441702", "441704", "441721", "441781",            # 阳江 江城 阳东 阳西 阳春
    "440103", "440104", "440106", "440111",            # 广州 荔湾 越秀 天河 白云
    "440303", "440304", "440305",                      # 深圳 罗湖 福田 南山
    "430102", "430104",                                # 长沙 芙蓉 岳麓
    "360102", "450103", "510104", "420106", "350102",  # 南昌 南宁 成都 武汉 福州
)

#: the hospital's own 医保区划 (Foshan; seed 000 is a Foshan hospital)
LOCAL_ADMDVS = "440600"

#: 参保地医保区划 with weights: mostly local, some other Guangdong cities, some other provinces
INSURANCE_AREAS: tuple[tuple[str, int], ...] = (
    ("440600", 70),  # 佛山 (local)
    ("441700", 6),   # 阳江
    ("440100", 8),   # 广州
    ("440300", 4),   # 深圳
    ("430100", 4),   # 长沙 (other province)
    ("360100", 3),   # 南昌 (other province)
    ("450100", 3),   # 南宁 (other province)
    ("440699", 2),   # 佛山市本级 (省内 city-level pool)
)
