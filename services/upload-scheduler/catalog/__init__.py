"""The platform catalogs (目录): 1301-1319 downloaded incrementally by version (files through 9102, parsed as
streams; the paged queries page by page), 1901 dictionaries and 1201 the institution — each stored with its
version (:mod:`.store`), applied whole or not at all (a corrupt file is refused with its name and line and the
catalog in force stays), and published on ``yibao.catalog.v1`` (:mod:`.publish`) so services and HIS read one
current catalog. :mod:`.sync` runs it; a restart resumes from the last version applied.
"""
