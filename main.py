"""TransferLab entry point: the desktop app, or the CLI when given a command."""
import multiprocessing
import sys

CLI_COMMANDS = {"train", "predict", "evaluate", "export", "check"}


def main(argv: list[str]) -> int:
    if argv and (argv[0] in CLI_COMMANDS or argv[0] in ("-h", "--help")):
        from core.frontends.cli import main as cli_main

        return cli_main(argv)
    from gui.app import run_app

    return run_app(argv)


if __name__ == "__main__":
    multiprocessing.freeze_support()  # first: the packaged app re-enters here in child processes
    from core.allocator import ensure_tuned

    ensure_tuned()  # restarts this process once with the faster malloc setting (core/allocator.py)
    sys.exit(main(sys.argv[1:]))
