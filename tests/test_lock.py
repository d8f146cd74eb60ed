"""The lock model: round trip, determinism, validation errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envknit.errors import LockError, LockSchemaError, UnknownEnvironmentError
from envknit.lock import DistFile, Lock, LockedEnvironment, LockedPackage, load_lock, save_lock

SHA = "a" * 64


def _lock() -> Lock:
    pkg = LockedPackage(
        name="mylib", version="1.0.0", dependencies=("helper",),
        files=(DistFile(name="mylib-1.0.0-py3-none-any.whl", sha256=SHA),),
    )
    helper = LockedPackage(
        name="helper", version="1.2", dev=True,
        files=(DistFile(name="helper-1.2.tar.gz", sha256="b" * 64),),
    )
    env = LockedEnvironment(name="default", python_version="3.12", packages=(pkg, helper))
    return Lock(environments={"default": env}, resolver_version="0.13.9")


def test_round_trip_and_sorted(tmp_path: Path) -> None:
    path = tmp_path / "envknit.lock.yaml"
    save_lock(_lock(), path)
    loaded = load_lock(path)
    assert loaded.environment("default").package("MyLib") is not None
    assert [p.name for p in loaded.environment("default").packages] == ["helper", "mylib"]
    assert loaded.environment("default").package("helper").dev is True  # type: ignore[union-attr]
    assert path.read_text() == _lock().dumps() == loaded.dumps()
    assert str(tmp_path) not in path.read_text()


def test_unknown_major_refused(tmp_path: Path) -> None:
    data = _lock().to_dict()
    data["schema_version"] = "2.0"
    path = tmp_path / "envknit.lock.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(LockSchemaError, match=r"'2.0' is not supported .*1\.x") as info:
        load_lock(path)
    assert str(path) in str(info.value)


def test_minor_versions_accepted() -> None:
    data = _lock().to_dict()
    data["schema_version"] = "1.7"
    assert Lock.from_dict(data).environment("default").python_version == "3.12"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["environments"]["default"]["packages"][0].update(name="../../etc"),
         "environments.default.packages[0].name"),
        (lambda d: d["environments"]["default"]["packages"][1].update(version="1.0\nx"),
         "environments.default.packages[1].version"),
        (lambda d: d["environments"]["default"]["packages"][1]["files"][0].update(name="/abs.whl"),
         "environments.default.packages[1].files[0].name"),
        (lambda d: d["environments"]["default"]["packages"][1]["files"][0].update(sha256="zz"),
         "environments.default.packages[1].files[0].sha256"),
        (lambda d: d["environments"]["default"].pop("python_version"),
         "environments.default.python_version"),
        (lambda d: d["environments"].update({"a;rm -rf ~": {}}), "environments"),
    ],
)
def test_invalid_fields_are_named(mutate: object, field: str) -> None:
    data = _lock().to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(LockError) as info:
        Lock.from_dict(data)
    assert info.value.field == field
    assert repr(field) in str(info.value)


def test_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "envknit.lock.yaml"
    path.write_text("environments: [unclosed\n")
    with pytest.raises(LockError, match="malformed YAML"):
        load_lock(path)


def test_missing_lock_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="run 'envknit lock'"):
        load_lock(tmp_path / "nope.yaml")


def test_unknown_environment_names_existing() -> None:
    with pytest.raises(UnknownEnvironmentError, match=r"'ml'.*'default'"):
        _lock().environment("ml")


@pytest.mark.parametrize("files", [[], None, "x"])
def test_package_without_file_hashes_refused(files: object) -> None:
    # with no hash, any installed file of that version would pass for the locked one
    data = _lock().to_dict()
    pkg = data["environments"]["default"]["packages"][1]
    if files is None:
        del pkg["files"]
    else:
        pkg["files"] = files
    with pytest.raises(LockError) as info:
        Lock.from_dict(data)
    assert "'environments.default.packages[1].files'" in str(info.value)
