"""The registration chain's platform calls, one module per transaction family. Each module holds, top to bottom,
what its calls send, how the platform is asked when an answer is lost (the :class:`~yibao.chains.model.Lookup`;
*whether* it is asked is the catalog's ``lost_answers``), what an answer or a refusal changes, and what it tells
HIS and settlement:

* :mod:`.person` — 1101 人员信息获取 (which insurance the visit uses), 2001 待遇检查;
* :mod:`.register` — 2201 挂号 / 2401 入院 (lost answers: 5201 / 5303);
* :mod:`.visit_info` — 2203 就诊信息上传;
* :mod:`.cancel` — 2202 挂号撤销 / 2404 入院撤销 (退号, 取消入院, 医保 → 自费);
* :mod:`.discharge` — 2402 出院 and 2405 出院撤销 (HIS's, settlement's reopening, a late admission change);
* :mod:`.admission_change` — 2403 入院信息变更.

:mod:`.common` holds what several of them share; :mod:`.inpatient` the admission fields 2401/2402/2403 send.

Every ``on_ok`` / ``on_refused`` receives the state as it is when the answer is recorded (a message may have been
absorbed meanwhile), so each looks up what it answers (this request, this version) and applies a relative change,
moving the state on so the same call is never chosen again after it succeeded or was refused.
"""
