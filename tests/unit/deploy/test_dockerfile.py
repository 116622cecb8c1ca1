"""The one image: Python 3.11 slim, the whole distribution installed with pip, non-root, entrypoint `yibao`."""

from __future__ import annotations

import ast
import json
from typing import Any

from unit.deploy.ops_support import DOCKERFILE, REPO


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        pending = f"{pending} {text[:-1].strip()}" if text.endswith("\\") else f"{pending} {text}"
        if not text.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            lines.append((keyword.upper(), rest.strip()))
            pending = ""
    return lines


def _setup_roots() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ROOTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no ROOTS mapping")


def test_image_is_built_from_python_3_11_slim() -> None:
    assert [args for keyword, args in _instructions() if keyword == "FROM"] == ["python:3.11-slim"]


def test_image_copies_every_folder_the_distribution_maps() -> None:
    copied = " ".join(args for keyword, args in _instructions() if keyword == "COPY")
    for package, folder in _setup_roots().items():
        top = folder.split("/")[0]
        assert f"{top}/" in copied, f"{package} ({folder}) is not copied into the image"
    for needed in ("pyproject.toml", "setup.py", "README.md"):
        assert needed in copied


def test_image_installs_the_project_with_pip() -> None:
    runs = [args for keyword, args in _instructions() if keyword == "RUN"]
    assert any("pip install /src" in run for run in runs)
    assert not any("-e " in run or "--editable" in run for run in runs)


def test_image_runs_as_the_user_the_pods_expect(base_docs: list[dict[str, Any]]) -> None:
    (user,) = [args for keyword, args in _instructions() if keyword == "USER"]
    uid = int(user.split(":")[0])
    assert uid != 0
    for doc in base_docs:
        if doc["kind"] in ("Deployment", "Job"):
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid, doc["metadata"]["name"]


def test_image_entrypoint_is_yibao() -> None:
    (entrypoint,) = [args for keyword, args in _instructions() if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["yibao"]


def test_image_writes_no_byte_code_at_run_time() -> None:
    # the root filesystem is read-only in the pods
    env = " ".join(args for keyword, args in _instructions() if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_build_context_filter_keeps_the_mapped_folders() -> None:
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert "**" in ignore
    for folder in {f.split("/")[0] for f in _setup_roots().values()}:
        assert f"!{folder}/" in ignore, f"{folder}/ is excluded from the build context"
