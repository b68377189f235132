"""TransferLab entry point: the desktop app, or the CLI when given a command.

``python main.py …`` and the installed ``transferlab …`` command (pyproject.toml) both call
``run``.
"""
import multiprocessing
import sys


def main(argv: list[str]) -> int:
    from core.frontends.cli import is_cli

    if is_cli(argv):
        from core.frontends.cli import main as cli_main

        return cli_main(argv)
    from gui.app import run_app

    return run_app(argv)


def run() -> None:
    multiprocessing.freeze_support()  # first: the packaged app re-enters here in child processes
    from core.allocator import ensure_tuned

    ensure_tuned()  # restarts this process once with the faster malloc setting (core/allocator.py)
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
