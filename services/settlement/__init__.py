"""yibao.settlement: fee details, pre-settlement, settlement and refunds of the national 医保 chains.

``yibao worker settlement`` (:mod:`yibao.settlement.app`) owns 2204/2205 and 2301/2302 (details), 2206/2207 and
2303/2304 (pre-settlement and settlement, 中途结算 included), 2208/2305 (refunds), the 血透 sheet settled at
outpatient (:mod:`yibao.settlement.hemodialysis`), and answers registration's unwind requests.
"""
