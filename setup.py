"""Package layout of the one distribution (metadata is in pyproject.toml).

Every folder of the design is a sub-package of the ``yibao`` namespace; sub-packages inside them are found
automatically, so adding a folder with an ``__init__.py`` needs no change here.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "yibao.cli": "libs/cli",
    "yibao.core": "libs/core",
    "yibao.stack": "libs/stack",
    "yibao.hisevents": "libs/hisevents",
    "yibao.fakedata": "libs/fakedata",
    "yibao.chains": "libs/chains",
    "yibao.envelope": "libs/envelope",
    "yibao.simulator": "simulator",
    "yibao.ingest": "services/ingest",
    "yibao.registration": "services/registration",
    "yibao.settlement": "services/settlement",
    "yibao.upload_scheduler": "services/upload-scheduler",
    "yibao.workinjury_sync": "services/workinjury-sync",
    "yibao.mobilepay": "services/mobilepay",
    "yibao.reconciliation": "services/reconciliation",
    "yibao.his_writer": "services/his-writer",
    "yibao.counter": "services/counter",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    here = Path(__file__).resolve().parent
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in ROOTS.items():
        root = here / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root)
            if any(part.startswith((".", "__")) or part == "tests" for part in rel.parts):
                continue
            pkg = ".".join([name, *rel.parts])
            packages.append(pkg)
            package_dir[pkg] = "/".join([folder, *rel.parts])
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
