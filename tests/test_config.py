"""envknit.yaml: parsing, validation, finding it, the config hash, and comment-keeping edits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envknit.cli._edit import edit_requirement
from envknit.config import (
    Config,
    EnvironmentConfig,
    config_hash,
    find_config,
    load_config,
    parse_requirement,
)
from envknit.errors import ConfigError, UnknownEnvironmentError

SAMPLE = """\
# project environments (keep this comment)
environments:
  default:
    python_version: "3.12"
    packages:
      - requests==2.28.2   # pinned for the legacy API
      - attrs
    dev_packages: []
  # the new stack
  new:
    packages:
      - {name: requests, version: "2.31.0", extras: [socks]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "envknit.yaml"
    path.write_text(text)
    return path


def test_load_sample(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SAMPLE))
    assert sorted(config.environments) == ["default", "new"]
    default = config.environment("default")
    assert default.python_version == "3.12"
    assert default.packages == ("requests==2.28.2", "attrs")
    assert config.environment("new").packages == ("requests[socks]==2.31.0",)
    with pytest.raises(UnknownEnvironmentError, match=r"'nope'.*'default', 'new'"):
        config.environment("nope")


def test_found_by_walking_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, SAMPLE)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_config() == path.resolve()
    assert load_config().path == path.resolve()


def test_missing_config_says_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="envknit init"):
        find_config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("environments: [1, 2", "malformed YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("environments:\n  ../x:\n    packages: []\n", "invalid environment name"),
        ("environments:\n  e:\n    packages: ['a;rm -rf ~']\n", "invalid requirement"),
        ("environments:\n  e:\n    packages: ['../../etc']\n", "invalid requirement"),
        ("environments:\n  e:\n    packages: ['x @ file:///etc']\n", "direct references"),
        ("environments:\n  e:\n    python_version: '/abs'\n", "python_version"),
        ("environments:\n  e:\n    packges: []\n", "unknown key"),
        ("environments:\n  e:\n    python_version: 3.10\n", 'python_version: "3.10"'),
        ("environments:\n  e:\n    packages: [a, A]\n", "listed twice"),
        ("environments:\n  e:\n    packages: [\"a\\nb\"]\n", "control characters"),
    ],
)
def test_bad_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_requirement_forms() -> None:
    assert parse_requirement("Requests >= 2") == "Requests>=2"
    assert parse_requirement({"name": "a", "version": "1.0"}) == "a==1.0"
    assert parse_requirement({"name": "a", "version": ">=1", "extras": ["x"]}) == "a[x]>=1"
    with pytest.raises(ConfigError):
        parse_requirement({"version": "1"})


def test_config_hash_ignores_order_but_not_content() -> None:
    a = EnvironmentConfig(name="e", packages=("a", "b"))
    b = EnvironmentConfig(name="e", packages=("b", "a"))
    c = EnvironmentConfig(name="e", packages=("a",))
    d = EnvironmentConfig(name="e", packages=("a", "b"), python_version="3.11")
    assert config_hash(a) == config_hash(b)
    assert len({config_hash(a), config_hash(c), config_hash(d)}) == 3


def test_edit_keeps_comments_and_order() -> None:
    added = edit_requirement(SAMPLE, "default", "packages", "idna", "idna>=3")
    assert added.kept_layout
    assert "# pinned for the legacy API" in added.text
    assert "# the new stack" in added.text
    data = yaml.safe_load(added.text)
    assert data["environments"]["default"]["packages"] == ["requests==2.28.2", "attrs", "idna>=3"]
    replaced = edit_requirement(added.text, "default", "packages", "requests", "requests==2.0")
    assert replaced.kept_layout
    assert yaml.safe_load(replaced.text)["environments"]["default"]["packages"][0] == (
        "requests==2.0"
    )
    removed = edit_requirement(replaced.text, "default", "packages", "attrs", None)
    assert removed.kept_layout and "keep this comment" in removed.text
    assert yaml.safe_load(removed.text)["environments"]["default"]["packages"] == [
        "requests==2.0", "idna>=3"
    ]
    dev = edit_requirement(removed.text, "default", "dev_packages", "pytest", "pytest")
    assert dev.kept_layout
    assert yaml.safe_load(dev.text)["environments"]["default"]["dev_packages"] == ["pytest"]
    new_env = edit_requirement(dev.text, "other", "packages", "a", 'a; python_version < "4"')
    assert new_env.kept_layout
    assert yaml.safe_load(new_env.text)["environments"]["other"] == {
        "packages": ['a; python_version < "4"']
    }


def test_edit_falls_back_for_flow_lists() -> None:
    text = "# gone\nenvironments: {default: {packages: [a]}}\n"
    result = edit_requirement(text, "default", "packages", "b", "b")
    assert not result.kept_layout
    assert yaml.safe_load(result.text) == {"environments": {"default": {"packages": ["a", "b"]}}}


def test_unquoted_python_version(tmp_path: Path) -> None:
    text = "environments:\n  e:\n    python_version: 3.12\n"
    assert load_config(write(tmp_path, text)).environment("e").python_version == "3.12"


@pytest.mark.parametrize("value", [1e100, float("inf"), 1e-7, 3])
def test_python_version_of_any_number_is_one_config_error(value: object) -> None:
    with pytest.raises(ConfigError, match="python_version"):
        Config.from_dict({"environments": {"d": {"python_version": value}}}, Path("x"))


def _no_parser(*_args: object, **_kwargs: object) -> object:
    raise AssertionError("envknit.yaml was parsed although its bytes are cached")


def test_unchanged_bytes_are_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import envknit._yamlfile

    path, cache = tmp_path / "envknit.yaml", tmp_path / "cache"
    path.write_text(SAMPLE)
    first = load_config(path, cache_dir=cache)
    assert first == load_config(path)
    with monkeypatch.context() as m:
        m.setattr(envknit._yamlfile, "read_yaml", _no_parser)
        assert load_config(path, cache_dir=cache) == first
    path.write_text(SAMPLE.replace("attrs", "idna"))  # other bytes: parsed again
    changed = load_config(path, cache_dir=cache)
    assert "idna" in changed.environment("default").packages
    with monkeypatch.context() as m:
        m.setattr(envknit._yamlfile, "read_yaml", _no_parser)
        assert load_config(path, cache_dir=cache) == changed


@pytest.mark.parametrize("extra", ["created: 2024-01-01\n", "1: one\n", "x: .inf\n"])
def test_what_json_could_not_carry_is_cached_as_its_environments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str
) -> None:
    import envknit._yamlfile

    path, cache = tmp_path / "envknit.yaml", tmp_path / "cache"
    path.write_text(extra + SAMPLE)
    assert load_config(path, cache_dir=cache) == load_config(path)
    monkeypatch.setattr(envknit._yamlfile, "read_yaml", _no_parser)
    assert load_config(path, cache_dir=cache).environments == load_config(
        path, cache_dir=cache).environments


def test_the_cache_is_keyed_on_the_exact_bytes_and_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envknit import _configcache

    path, cache = tmp_path / "envknit.yaml", tmp_path / "cache"
    path.write_text(SAMPLE)
    first = load_config(path, cache_dir=cache)
    source = path.read_bytes()
    envs = _configcache.load(str(cache), str(path), source)
    assert envs is not None and [e[0] for e in envs] == list(first.environments)
    assert envs[0][5] == config_hash(first.environment("default"))
    assert _configcache.load(str(cache), str(path), source + b"\n") is None
    assert _configcache.load(str(cache), str(path), source.replace(b"\n", b"\r\n")) is None
    assert _configcache.load(str(cache), str(tmp_path / "other.yaml"), source) is None
    monkeypatch.setattr(_configcache, "__version__", "0.0.0-other")
    assert _configcache.load(str(cache), str(path), source) is None


def test_errors_and_a_bad_cache_are_as_without_it(tmp_path: Path) -> None:
    path, cache = tmp_path / "envknit.yaml", tmp_path / "cache"
    for text in ("environments: [\n", "environments:\n  bad name:\n"):
        path.write_text(text)
        with pytest.raises(ConfigError) as without:
            load_config(path)
        with pytest.raises(ConfigError) as with_cache:
            load_config(path, cache_dir=cache)
        assert str(with_cache.value) == str(without.value)
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "nope.yaml", cache_dir=cache)
    assert "not found" in str(missing.value)
    path.write_text(SAMPLE)
    load_config(path, cache_dir=cache)
    for memo in cache.rglob("*.txt"):
        memo.write_text("envknit-config 1\0not\0ours")
    assert load_config(path, cache_dir=cache) == load_config(path)


def test_the_size_limit_is_the_readers() -> None:
    from envknit import _configcache, _yamlfile

    assert _configcache.MAX_SIZE == _yamlfile.MAX_SIZE
