"""services/registration: who the patient is and which platform visit their HIS visit is (issue 5, part 1).

Driven by the canonical HIS events (``yibao.his.events.v1``) and by settlement's answers
(``yibao.settlement.facts.v1``), each HIS visit runs as a persisted chain on :mod:`yibao.chains`:

* outpatient — 1101 人员信息 → (2001 待遇检查) → 2201 挂号 → 2203 就诊信息 (again when diagnoses change);
  退号: ask settlement to unwind → 2202;
* inpatient — 1101 → (2001) → 2401 入院 → 2403 入院变更 → 2402 出院; 取消出院: ask settlement → 2405;
  取消入院: refused while discharged, else ask settlement (2302) → 2404;
* self-pay visits (the patient's choice; 医保 may become 自费 for one registration, never the reverse) make no
  platform call at all.

What HIS gets back goes out as :class:`~yibao.core.results.HisResult`; what settlement needs as
:class:`~yibao.core.results.VisitFact`. The 诊查费统筹 rules (seed 000 §6.5) are data
(:mod:`yibao.registration.consultation_fee`), applied at the counter and served to kiosks and WeChat by the
worker's HTTP endpoint (:mod:`yibao.registration.http`).
"""
