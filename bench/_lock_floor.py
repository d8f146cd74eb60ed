"""The floor of ``envknit lock``: a Python that starts, runs uv commands at once, reads them.

    python -I _lock_floor.py CMD [ARG...] [:: CMD [ARG...]]...

Run by bench_cli.py with the clean venv's python. It does nothing but what any lock must do
beyond uv's own work: start an interpreter, spawn every command at once (``os.posix_spawn``,
stdout and stderr on pipes), read all their output until EOF, and reap them. Exit status 1
(with the failing command's stderr) if any command fails. stdlib only; it imports ``select``
and nothing else beyond what the interpreter's start-up already loaded.
"""

import os
import select
import sys


def main() -> int:
    commands: list[list[str]] = [[]]
    for arg in sys.argv[1:]:
        if arg == "::":
            commands.append([])
        else:
            commands[-1].append(arg)
    running = []  # (pid, stdout read end, stderr read end)
    for cmd in commands:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.posix_spawn(cmd[0], cmd, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out_w, 1),
                                           (os.POSIX_SPAWN_DUP2, err_w, 2)])
        os.close(out_w)
        os.close(err_w)
        running.append((pid, out_r, err_r))
    chunks: dict[int, list[bytes]] = {fd: [] for _, o, e in running for fd in (o, e)}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    open_fds = len(chunks)
    while open_fds:
        for fd, _event in poller.poll():
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                poller.unregister(fd)
                os.close(fd)
                open_fds -= 1
    status = 0
    for pid, _out, err in running:
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            sys.stderr.write(b"".join(chunks[err]).decode(errors="replace"))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
