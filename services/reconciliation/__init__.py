"""yibao.reconciliation — daily 3201/3202 reconciliation with the national platform, single-sided ledger
(单边账) detection and repair under finance's control, and reports (issue 6).

Modules: ``ledger`` (the hospital-side ledger from HisResults), ``statement`` (3201), ``detail_file`` and
``result_file`` (3202's files), ``classify``, ``truth`` (5203 and the call log), ``plans`` (the repair of each
class), ``approval``, ``repairs`` (applying them), ``writeback`` (results to HIS), ``runs`` (runs in the
database), ``reconciler`` (a run end to end), ``reports``, ``api`` (HTTP), ``commands``, ``schedule``, ``auth``
(tokens, roles, four eyes), ``audit``, ``signing`` (signed commands), ``sessions`` and ``console`` (the web
console), ``chart``, ``app`` (the worker), ``cli`` (``yibao recon``).
"""
