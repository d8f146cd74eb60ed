"""``envknit install``: every locked package of the chosen environments into the store."""

from __future__ import annotations

import sys

from ..names import python_tuple
from ..pythons import find_python
from ..store.install import install_environment
from ..store.layout import envknit_home
from ..store.projects import register_project
from ._common import load_project, uv_options

TYPE_CHECKING = False  # typing: for the type checker only
if TYPE_CHECKING:
    import argparse  # the usual command lines are read without it (cli._lockargs)

__all__ = ["cmd_install"]


def cmd_install(args: argparse.Namespace) -> int:
    project = load_project()
    envs = project.locked_environments(args.env)
    home = envknit_home()
    # register first, so a gc running meanwhile already keeps what this project needs
    register_project(project.lock_path, home)
    tty = sys.stderr.isatty()
    # without a uv option, UvOptions' defaults: envknit._uv (subprocess...) loads only if uv runs
    uv_flags = args.find_links or args.no_index or args.offline or args.no_build
    options = uv_options(args) if uv_flags else None

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    for env in envs:
        python_exe = find_python(env.python_version)
        count = len(env.selected(include_dev=not args.no_dev))
        print(f"{env.name}: {count} package(s) for Python {env.python_version} "
              f"({python_exe})", file=sys.stderr, flush=tty)
        result = install_environment(
            env,
            python_exe=python_exe,
            python=python_tuple(env.python_version),
            home=home,
            include_dev=not args.no_dev,
            progress=progress,
            options=options,
            show=sys.stderr,
        )
        print(f"{env.name}: {len(result.installed)} installed, {len(result.reused)} already in "
              "the store")
    return 0
