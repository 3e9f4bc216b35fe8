"""``make package``: dist/timeseg-<version>.zip, the plugin as the QGIS plugin repository wants it.

One top folder ``timeseg/`` with the plugin's code, icon, licence, metadata and the shipped
models with their checkpoints (``.pt``, read with ``torch.load(weights_only=True)``: fitting a model to
one's area starts from them); no tests, caches, virtual environments, build outputs or version-control files.
"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

from timeseg.core.atomic import atomic_file

ROOT = Path(__file__).resolve().parents[1]
TOP_FILES = ("__init__.py", "__main__.py", "cli.py", "plugin.py", "metadata.txt", "LICENSE", "README.md",
             "CHANGELOG.md", "resources.qrc", "requirements.txt", "requirements-gpu.txt")
PACKAGES = ("core", "models", "ui", "provider", "icons")
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", "real"}  # real: training data, not for analysts
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".partial"}  # the weights' .pt stay: the Train panel fine-tunes roads.pt
MAX_BYTES = 25 * 1024 * 1024


def plugin_version() -> str:
    metadata = configparser.ConfigParser()
    metadata.read(ROOT / "metadata.txt")
    return metadata["general"]["version"]


def plugin_files() -> list[Path]:
    files = [ROOT / name for name in TOP_FILES]
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            hidden = path.name.startswith(".")  # a run's temporary files and locks
            if path.is_file() and not hidden and not SKIPPED_PARTS & set(path.parts) \
                    and path.suffix not in SKIPPED_SUFFIXES:
                files.append(path)
    return files


def build(output_dir: Path = ROOT / "dist") -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"timeseg-{plugin_version()}.zip"
    with atomic_file(target) as partial:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in plugin_files():
                archive.write(path, Path("timeseg") / path.relative_to(ROOT))
        if partial.stat().st_size > MAX_BYTES:
            raise SystemExit(f"the plugin zip would be over {MAX_BYTES // 2**20} MB")
    return target


if __name__ == "__main__":
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
