"""Gen 1 routed imports: use(), import_version, set_default, strict mode, enable/disable."""

from __future__ import annotations

import builtins
import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

import envknit
from envknit.routing import configured_locks

from ._builders import make_store_entry, write_lock
from ._routing_fixtures import make_mylib_lock


@pytest.fixture
def lock(envknit_home: Path, tmp_path: Path) -> Path:
    path = make_mylib_lock(envknit_home, tmp_path)
    assert envknit.configure_from_lock(path) == 4
    return path


def _in_entry(module: Any, dist: str, version: str) -> bool:
    return f"/store/{dist}/{version}/" in Path(module.__file__).as_posix()


def test_use_gives_each_version_in_any_order(lock: Path) -> None:
    for version in ("1.0.0", "2.0.0", "1.0.0", "2.0.0"):
        with envknit.use("mylib", version) as entered:
            import mylib

            assert mylib is entered
            assert mylib.__version__ == version
            assert _in_entry(mylib, "mylib", version)
            # its own absolute and relative submodule imports stay in its version
            sub_who, rel_who = f"sub {version}", f"rel {version}"
            assert (sub_who, rel_who) == (mylib.sub.WHO, mylib.rel.WHO)
            from mylib import sub

            assert sub_who == sub.WHO
            import mylib.sub as sub2

            assert sub2 is sub


def test_nested_blocks_inner_wins_outer_keeps_its_module(lock: Path) -> None:
    with envknit.use("mylib", "1.0.0"):
        import mylib as outer

        with envknit.use("mylib", "2.0.0"):
            import mylib as inner

            assert inner.__version__ == "2.0.0"
            assert outer.__version__ == "1.0.0"
        import mylib as again

        assert again is outer
        assert again.__version__ == "1.0.0"


def test_transitive_routing_also_lazily_after_the_block(lock: Path) -> None:
    with envknit.use("mylib", "1.0.0") as one:
        assert one.HELPER_AT_IMPORT == "1.0.0"
        import helper

        assert helper.__version__ == "1.0.0"  # use() pins the locked dependencies too
    with envknit.use("mylib", "2.0.0") as two:
        assert two.HELPER_AT_IMPORT == "2.0.0"
    # after the blocks, inside an unrelated block: each mylib still gets its own helper
    with envknit.use("helper", "2.0.0"):
        version, file = one.helper_lazy()
        assert version == "1.0.0"
        assert "/store/helper/1.0.0/" in Path(file).as_posix()
        assert one.helper_lazy_import_module() == "1.0.0"
    with envknit.use("helper", "1.0.0"):
        assert two.helper_lazy()[0] == "2.0.0"
        assert two.helper_lazy_import_module() == "2.0.0"


def test_import_module_and_metadata_agree_with_the_block(lock: Path) -> None:
    for version in ("2.0.0", "1.0.0"):
        with envknit.use("mylib", version):
            import mylib

            assert importlib.import_module("mylib") is mylib
            found = importlib.import_module("mylib.sub"), importlib.import_module(".rel", "mylib")
            assert [m.WHO for m in found] == [f"sub {version}", f"rel {version}"]
            assert importlib.metadata.version("mylib") == version
            assert importlib.metadata.version("helper") == version
            spec = importlib.util.find_spec("mylib")
            assert spec is not None and spec.origin is not None
            assert f"/store/mylib/{version}/" in Path(spec.origin).as_posix()
            sub_spec = importlib.util.find_spec("mylib.sub")
            assert sub_spec is not None and f"/{version}/" in str(sub_spec.origin)
            text = importlib.resources.files("mylib").joinpath("sub.py").read_text()
            assert text == f"WHO = 'sub {version}'\n"
    assert "mylib" not in sys.modules  # never under its plain name
    assert importlib.util.find_spec("mylib") is None  # outside blocks: as without envknit


def test_missing_version_names_installed_ones(lock: Path) -> None:
    with pytest.raises(envknit.VersionNotInstalledError) as info:
        envknit.use("mylib", "3.0.0")
    assert isinstance(info.value, ModuleNotFoundError)
    assert "mylib==3.0.0 is not installed; installed versions: 1.0.0, 2.0.0" in str(info.value)
    with pytest.raises(envknit.VersionNotInstalledError, match="installed versions: none"):
        envknit.import_version("nothere", "1.0")
    with pytest.raises(envknit.VersionNotInstalledError):
        envknit.set_default("mylib", "9")
    with pytest.raises(envknit.VersionNotInstalledError, match="installed versions: none"):
        envknit.use("../mylib", "1.0.0")
    with pytest.raises(envknit.InvalidNameError, match="not a PEP 440 version"):
        envknit.use("mylib", "1.0/../../x")
    with envknit.use("mylib", "2.0") as equal:  # equal under PEP 440 to 2.0.0
        assert equal.__version__ == "2.0.0"


def test_outside_blocks_the_default_or_the_normal_import_system(
    lock: Path, tmp_path: Path
) -> None:
    envknit.enable()
    with pytest.raises(ModuleNotFoundError):
        import mylib  # noqa: F401  # nothing chosen, no copy on sys.path: as without envknit
    host = tmp_path / "hostsite"
    (host / "mylib").mkdir(parents=True)
    (host / "mylib" / "__init__.py").write_text("__version__ = 'host'\n")
    sys.path.insert(0, str(host))
    import mylib as plain

    assert plain.__version__ == "host"
    assert sys.modules["mylib"] is plain
    with envknit.use("mylib", "1.0.0"):
        import mylib as inside

        assert inside.__version__ == "1.0.0"
        # sys.modules["mylib"] holds the host copy; import_module still answers per context
        assert importlib.import_module("mylib") is inside
    envknit.set_default("mylib", "2.0.0")
    import mylib as chosen

    assert chosen.__version__ == "2.0.0"
    assert importlib.import_module("mylib") is chosen
    with envknit.use("mylib", "1.0.0"):
        import mylib as again

        assert again.__version__ == "1.0.0"
    envknit.set_default("mylib", None)
    import mylib as back

    assert back is plain


def test_strict_mode_refuses_plain_imports_outside_blocks(lock: Path) -> None:
    envknit.enable(strict=True)
    with pytest.raises(envknit.StrictModeError, match="strict mode: 'mylib' is managed") as info:
        import mylib  # noqa: F401
    assert "versions: 1.0.0, 2.0.0" in str(info.value)
    assert isinstance(info.value, ImportError)
    with pytest.raises(envknit.StrictModeError):
        importlib.import_module("mylib")
    with envknit.use("mylib", "1.0.0") as one:
        import mylib as inside

        assert inside.__version__ == "1.0.0"
    assert one.helper_lazy()[0] == "1.0.0"  # its own environment still routes
    envknit.set_default("mylib", "2.0.0")
    import mylib as chosen

    assert chosen.__version__ == "2.0.0"


def test_env_activates_a_whole_environment(lock: Path) -> None:
    with envknit.use(env="old") as nothing:
        assert nothing is None
        import helper
        import mylib

        assert (mylib.__version__, helper.__version__) == ("1.0.0", "1.0.0")
        with envknit.use(env="new"):
            import helper as helper2

            assert helper2.__version__ == "2.0.0"
    with envknit.use("mylib", env="new") as two:
        assert two.__version__ == "2.0.0"
    with pytest.raises(envknit.UnknownEnvironmentError, match=r"environments: 'new', 'old'"):
        envknit.use(env="nope")


def test_import_version_without_a_block(lock: Path) -> None:
    one = envknit.import_version("mylib", "1.0.0")
    two = envknit.import_version("mylib", "2.0.0")
    assert (one.__version__, two.__version__) == ("1.0.0", "2.0.0")
    assert (one.helper_lazy()[0], two.helper_lazy()[0]) == ("1.0.0", "2.0.0")
    assert envknit.import_version("mylib", "1.0.0") is one


def test_distribution_name_differs_from_import_name(
    envknit_home: Path, tmp_path: Path
) -> None:
    # envknit reads a lock it has not cached with the host's PyYAML (a dependency of envknit),
    # so load it first: what matters is that routing gives the host its own module back.
    import yaml as host_yaml

    old = make_store_entry(
        envknit_home, "PyYAML", "1.0.0", {"yaml/__init__.py": "__version__ = '1.0.0'\n"}
    )
    new = make_store_entry(
        envknit_home, "PyYAML", "1.1.0", {"yaml/__init__.py": "__version__ = '1.1.0'\n"}
    )
    path = write_lock(tmp_path / "envknit.lock.yaml", {"a": [old], "b": [new]})
    assert envknit.configure_from_lock(path) == 2
    for version in ("1.0.0", "1.1.0"):
        with envknit.use("PyYAML", version) as module:
            import yaml

            assert yaml is module
            assert yaml.__version__ == version
            assert importlib.metadata.version("PyYAML") == version
        with envknit.use("yaml", version) as by_import_name:
            assert by_import_name.__version__ == version
    envknit.disable()
    assert sys.modules.get("yaml") is host_yaml


def _compiled_lock(home: Path, tmp_path: Path) -> Path:
    """fast 1.0/2.0 have a (fake, never loaded) extension; app 1.0/2.0 depend on them."""
    envs = {}
    for version in ("1.0", "2.0"):
        files: dict[str, str | bytes] = {
            "fast/__init__.py": f"__version__ = {version!r}\n",
            "fast/_speedups.cpython-312-x86_64-linux-gnu.so": b"not really an ELF file",
        }
        # a pure tag so that the entry matches every Python here; detection reads RECORD only
        fast = make_store_entry(home, "fast", version, files)
        app_src = "def fast_version():\n    import fast\n    return fast.__version__\n"
        app = make_store_entry(
            home, "app", version, {"app/__init__.py": app_src}, dependencies=["fast"]
        )
        envs[f"e{version[0]}"] = [fast, app]
    return write_lock(tmp_path / "envknit.lock.yaml", envs)


def test_compiled_package_raises_cextension_error(envknit_home: Path, tmp_path: Path) -> None:
    envknit.configure_from_lock(_compiled_lock(envknit_home, tmp_path))
    with pytest.raises(envknit.CExtensionError) as info:
        envknit.use("fast", "1.0").__enter__()
    message = str(info.value)
    assert "fast==1.0 has compiled extensions" in message
    assert "_speedups.cpython-312-x86_64-linux-gnu.so" in message
    assert "auto_worker=True" in message and "envknit.worker('fast', '1.0')" in message
    assert isinstance(info.value, ImportError)
    with pytest.raises(envknit.CExtensionError):
        envknit.import_version("fast", "2.0")


def test_compiled_dependency_loads_in_one_version_only(
    envknit_home: Path, tmp_path: Path
) -> None:
    envknit.configure_from_lock(_compiled_lock(envknit_home, tmp_path))
    one = envknit.import_version("app", "1.0")
    two = envknit.import_version("app", "2.0")
    assert one.fast_version() == "1.0"  # the first version of a compiled package may load
    with pytest.raises(envknit.CExtensionError, match=r"fast==2\.0 has compiled extensions"):
        two.fast_version()
    assert one.fast_version() == "1.0"


def test_use_auto_worker_hands_compiled_packages_to_worker(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envknit.configure_from_lock(_compiled_lock(envknit_home, tmp_path))
    calls: list[object] = []

    class FakeWorker:
        def __init__(self, name: str, version: str) -> None:
            calls.append((name, version))

        def __enter__(self) -> str:
            calls.append("enter")
            return "proxy"

        def __exit__(self, *exc: object) -> None:
            calls.append("exit")

    from envknit import _worker

    monkeypatch.setattr(_worker, "worker", FakeWorker)
    with envknit.use("fast", "2.0", auto_worker=True) as proxy:
        assert proxy == "proxy"
        assert importlib.metadata.version("fast") == "2.0"
    assert calls == [("fast", "2.0"), "enter", "exit"]


def test_unmanaged_imports_behave_as_without_envknit(lock: Path, tmp_path: Path) -> None:
    (tmp_path / "plainpkg").mkdir()
    (tmp_path / "plainpkg" / "__init__.py").write_text("from . import part\nX = 1\n")
    (tmp_path / "plainpkg" / "part.py").write_text("Y = 2\n")
    sys.path.insert(0, str(tmp_path))
    envknit.enable()
    import json
    from os import path as ospath

    import plainpkg

    assert json is sys.modules["json"]
    assert ospath is sys.modules["os.path"]
    assert sys.modules["plainpkg"] is plainpkg and plainpkg.part.Y == 2
    assert importlib.import_module("plainpkg.part") is plainpkg.part
    with pytest.raises(ModuleNotFoundError) as info:
        import no_such_module_anywhere  # noqa: F401
    assert type(info.value) is ModuleNotFoundError


def test_disable_restores_import_state(lock: Path) -> None:
    bootstrap = sys.modules["importlib._bootstrap"]
    before = (list(sys.meta_path), builtins.__import__, bootstrap._gcd_import, set(sys.modules))
    envknit.enable()
    assert builtins.__import__ is not before[1]
    with envknit.use("mylib", "1.0.0"):
        import mylib
    envknit.import_version("mylib", "2.0.0")
    envknit.disable()
    after = (list(sys.meta_path), builtins.__import__, bootstrap._gcd_import, set(sys.modules))
    assert after == before
    with pytest.raises(ModuleNotFoundError):
        import mylib  # noqa: F401
    # enabling again brings back the same modules (one load per version)
    with envknit.use("mylib", "1.0.0") as again:
        assert again.__version__ == "1.0.0"


def test_use_enables_the_router_and_configure_records_locks(
    envknit_home: Path, tmp_path: Path
) -> None:
    path = make_mylib_lock(envknit_home, tmp_path)
    assert configured_locks() == ()
    assert envknit.configure_from_lock(path, env="old") == 2
    assert builtins.__import__ is __import__  # configuring alone installs nothing
    assert configured_locks() == (path.resolve(),)
    with pytest.raises(envknit.VersionNotInstalledError):
        envknit.use("mylib", "2.0.0")
    envknit.configure_from_lock(path)
    assert configured_locks() == (path.resolve(),)
    with envknit.use("mylib", "2.0.0") as two:
        assert two.__version__ == "2.0.0"
    with pytest.raises(envknit.UnknownEnvironmentError):
        envknit.configure_from_lock(path, env="nope")


def test_packages_missing_from_the_store_are_skipped(
    envknit_home: Path, tmp_path: Path
) -> None:
    path = make_mylib_lock(envknit_home, tmp_path)
    import shutil

    shutil.rmtree(envknit_home / "store" / "mylib" / "2.0.0")
    shutil.rmtree(envknit_home / "store" / "helper" / "1.0.0")
    assert envknit.configure_from_lock(path) == 2
    with pytest.raises(envknit.VersionNotInstalledError, match=r"installed versions: 1\.0\.0 \("):
        envknit.use("mylib", "2.0.0")
    # mylib 1.0.0 is installed but its locked helper 1.0.0 is not: no silent fall-back to 2.0.0
    message = r"helper==1\.0\.0 is not installed; installed versions: 2\.0\.0"
    with pytest.raises(envknit.VersionNotInstalledError, match=message):
        envknit.use("mylib", "1.0.0").__enter__()
    with envknit.use(env="old"), pytest.raises(envknit.VersionNotInstalledError, match=message):
        import helper  # noqa: F401
    with envknit.use(env="new"):
        import helper as two

        assert two.__version__ == "2.0.0"


def test_owner_in_several_environments_prefers_the_active_one(
    envknit_home: Path, tmp_path: Path
) -> None:
    path = make_mylib_lock(envknit_home, tmp_path)
    from envknit.lock import load_lock

    lock_data = load_lock(path)
    old, new = lock_data.environment("old"), lock_data.environment("new")
    mixed = [old.package("mylib"), new.package("helper")]
    assert None not in mixed
    write_lock(path, {"old": old.packages, "new": new.packages, "mixed": mixed})  # type: ignore[dict-item]
    envknit.configure_from_lock(path)
    one = envknit.import_version("mylib", "1.0.0")
    with envknit.use(env="mixed"):
        assert one.helper_lazy()[0] == "2.0.0"
    with envknit.use(env="old"):
        assert one.helper_lazy()[0] == "1.0.0"
    # no env active: the first environment configured (a lock's are read in name order)
    assert one.helper_lazy()[0] == "2.0.0"


def test_an_exception_in_a_block_restores_the_outer_context(lock: Path) -> None:
    with envknit.use("mylib", "1.0.0"):
        with pytest.raises(RuntimeError), envknit.use("mylib", "2.0.0"):
            raise RuntimeError("boom")
        import mylib

        assert mylib.__version__ == "1.0.0"


def test_auto_worker_for_a_pure_package_returns_the_module(lock: Path) -> None:
    with envknit.use("mylib", "1.0.0", auto_worker=True) as module:
        assert module.__version__ == "1.0.0"
        assert _in_entry(module, "mylib", "1.0.0")


def test_star_import_and_reload_of_a_routed_module(lock: Path) -> None:
    with envknit.use("mylib", "2.0.0") as two:
        namespace: dict[str, Any] = {}
        exec("from mylib import *", namespace)
        assert namespace["HELPER_AT_IMPORT"] == "2.0.0"
        assert importlib.reload(two) is two
        assert two.__version__ == "2.0.0"


def _c_import(name: str, fromlist: tuple[str, ...] = ()) -> Any:
    """Import like C code does (Cython 3, mypyc): PyImport_ImportModuleLevelObject directly,
    which never calls builtins.__import__."""
    import ctypes

    func = ctypes.pythonapi.PyImport_ImportModuleLevelObject
    func.restype = ctypes.py_object
    func.argtypes = [ctypes.py_object] * 4 + [ctypes.c_int]
    return func(name, {}, {}, fromlist, 0)


def test_imports_from_c_code(envknit_home: Path, tmp_path: Path, lock: Path) -> None:
    (tmp_path / "c").mkdir()
    envknit.configure_from_lock(_compiled_lock(envknit_home, tmp_path / "c"))
    envknit.import_version("app", "1.0").fast_version()  # fast 1.0 is now the compiled one
    before = set(sys.modules)
    with envknit.use("mylib", "1.0.0"):
        # a pure package is never put under its plain name: C code gets the normal system
        with pytest.raises(ModuleNotFoundError):
            _c_import("mylib")
        # a compiled package exists in one version per process: C code gets that one
        fast = _c_import("fast")
        assert fast is sys.modules["_envknit_v.fast__1_0.fast"]
        assert fast.__version__ == "1.0"
    assert sys.modules["fast"].__version__ == "1.0"
    envknit.disable()
    assert "fast" not in sys.modules
    assert not {m for m in set(sys.modules) - before if m.startswith("_envknit_v")}


def test_routing_exports() -> None:
    import envknit.routing as routing

    assert set(routing.__all__) == {
        "ContextExecutor", "ContextThread", "configure_from_lock", "configured_locks",
        "context_wrap", "disable", "enable", "import_version", "set_default", "use",
    }
    for name in routing.__all__:
        assert getattr(routing, name) is getattr(envknit, name, getattr(routing, name))
    assert envknit.ContextThread.__module__ == envknit.ContextExecutor.__module__ == "envknit"
    assert callable(routing._reset_for_tests)


def test_pickle_round_trip_keeps_the_version(lock: Path) -> None:
    import pickle

    with envknit.use("mylib", "1.0.0") as one:
        pass
    with envknit.use("mylib", "2.0.0"):
        # the pickled reference names the private module of 1.0.0, whichever block is active
        assert pickle.loads(pickle.dumps(one.helper_lazy)) is one.helper_lazy
