"""A source distribution whose build waits for the test: a build from source you can watch.

Its in-tree build backend (stdlib only, no build requirements, so it builds offline) answers
``prepare_metadata_for_build_wheel`` at once, and ``build_wheel`` only once the file named by
``$ENVKNIT_TEST_RELEASE`` exists (at most 120 s): the test sees the build running, then lets it end.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

__all__ = ["RELEASE_VAR", "build_waiting_sdist"]

RELEASE_VAR = "ENVKNIT_TEST_RELEASE"

_BACKEND = '''\
"""A PEP 517 backend that builds a one-module wheel, waiting for $ENVKNIT_TEST_RELEASE."""
import base64, hashlib, os, time, zipfile

NAME, VERSION = {name!r}, {version!r}
DIST_INFO = f"{{NAME}}-{{VERSION}}.dist-info"
METADATA = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    os.makedirs(os.path.join(metadata_directory, DIST_INFO))
    with open(os.path.join(metadata_directory, DIST_INFO, "METADATA"), "w") as fh:
        fh.write(METADATA)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    release = os.environ.get("{release}")
    deadline = time.monotonic() + 120
    while release and not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    files = {{
        f"{{NAME}}/__init__.py": f"__version__ = {{VERSION!r}}\\n",
        f"{{DIST_INFO}}/METADATA": METADATA,
        f"{{DIST_INFO}}/WHEEL": "Wheel-Version: 1.0\\nGenerator: slow\\nRoot-Is-Purelib: true\\n"
                                "Tag: py3-none-any\\n",
    }}
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{b64}},{{len(text.encode())}}")
    files[f"{{DIST_INFO}}/RECORD"] = "\\n".join(record + [f"{{DIST_INFO}}/RECORD,,"]) + "\\n"
    wheel = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel
'''

_PYPROJECT = '''\
[build-system]
requires = []
build-backend = "slow_backend"
backend-path = ["."]

[project]
name = "{name}"
version = "{version}"
'''


def build_waiting_sdist(dest: Path, name: str, version: str) -> Path:
    """Write ``name-version.tar.gz`` (see the module docstring) into ``dest``; return it."""
    dest.mkdir(parents=True, exist_ok=True)
    root = f"{name}-{version}"
    files = {
        "pyproject.toml": _PYPROJECT.format(name=name, version=version),
        "slow_backend.py": _BACKEND.format(name=name, version=version, release=RELEASE_VAR),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
    }
    sdist = dest / f"{root}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{root}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sdist
