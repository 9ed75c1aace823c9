"""How a command ends when it is stopped from outside, met as a user meets it: Ctrl-C typed on a terminal (here a
pseudo-terminal that is the command's controlling terminal, so the byte 0x03 makes the kernel send SIGINT to the
whole foreground process group, Beam's SDK workers and their extraction children included) shows one line and
exits 130; a reader that closes the pipe (`| head -1`) gets nothing on standard error and status 141
(console/endings.py says why 141). Runs are made from the demo crawl; nothing here reads the shared data."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import run_pipeline
from console.endings import BROKEN_PIPE, INTERRUPTED, RESUME, held_interrupts
from tests.test_pipeline import IN_MEMORY, run

TOKENMILL = [sys.executable, "-m", "tokenmill_cli"]
ONE_LINE = f"tokenmill: {RESUME}"
PROGRESS = "tokenmill: read "  # the live progress line, redrawn in place (console/progress.py)


def _controlling_terminal() -> None:  # in the child, after setsid: the pty on stdin becomes its terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _catches_sigint(pid: int) -> bool:
    """Whether the process has a SIGINT handler yet (/proc's SigCgt). Before Python installs its own, at the
    interpreter's start, a Ctrl-C kills it as it kills any program: nothing to test, and on a loaded machine a
    fixed delay could land there."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone: type anyway, and the test says what it saw
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(caught & (1 << (signal.SIGINT - 1)))


def type_ctrl_c(argv: list[str], when, deadline: float = 300.0,
                command: list[str] = TOKENMILL) -> tuple[int, bytes, int]:
    """Run `tokenmill argv` (or `command argv`) on a pseudo-terminal of its own and type Ctrl-C once
    `when(shown, seconds)` holds; (exit status, every byte the terminal showed, the session id: the command's
    pid)."""
    master, terminal = pty.openpty()
    proc = subprocess.Popen([*command, *argv], stdin=terminal, stdout=terminal, stderr=terminal,
                            cwd=run_pipeline.CHECKOUT, start_new_session=True, preexec_fn=_controlling_terminal)
    os.close(terminal)
    shown, start, typed = b"", time.monotonic(), False
    try:
        while True:
            elapsed = time.monotonic() - start
            assert elapsed < deadline, f"still running after {deadline} s: {shown[-2000:]!r}"
            if not typed and when(shown, elapsed) and _catches_sigint(proc.pid):
                os.write(master, b"\x03")
                typed = True
            if select.select([master], [], [], 0.05)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every process holding the terminal has ended
                    chunk = b""
                if not chunk:
                    break
                shown += chunk
        assert typed, f"the command ended before Ctrl-C was typed: {shown[-2000:]!r}"
        return proc.wait(timeout=60), shown, proc.pid
    finally:
        os.close(master)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def visible(shown: bytes) -> tuple[list[str], list[str]]:
    """(the lines a user reads, the progress line's redraws): the terminal's echo of Ctrl-C (^C) removed, each
    line and each redraw (carriage return, erase to end of line) taken apart."""
    pieces = [p for p in re.split(r"\r\n|\r|\n|\x1b\[K", shown.decode("utf-8", "replace").replace("^C", "")) if p]
    return [p for p in pieces if not p.startswith(PROGRESS)], [p for p in pieces if p.startswith(PROGRESS)]


def still_running(session: int, wait: float = 20.0) -> list[str]:
    """Processes of the command's session (its workers, their children) still alive after up to `wait` s."""
    end = time.monotonic() + wait
    while True:
        ps = subprocess.run(["ps", "-s", str(session), "-o", "stat=,args="], capture_output=True, text=True)
        alive = [line for line in ps.stdout.splitlines() if line.strip() and not line.lstrip().startswith("Z")]
        if not alive or time.monotonic() > end:
            return alive
        time.sleep(0.2)


def run_argv(demo_crawl: list[str], out: Path, *extra: str) -> list[str]:
    # Beam's multi_processing runner (the default) with two workers: the processes a terminal's Ctrl-C reaches.
    return ["run", "--input", *demo_crawl, "--output", str(out), "--direct_num_workers=2", *extra]


@pytest.mark.parametrize("after", [0.3, 1.5], ids=["while-beam-is-imported", "while-the-run-is-prepared"])
def test_ctrl_c_during_start_up_shows_one_line_and_exits_130(demo_crawl, tmp_path, after):
    code, shown, session = type_ctrl_c(run_argv(demo_crawl, tmp_path / "out"), lambda _s, seconds: seconds > after)
    lines, _progress = visible(shown)
    assert (code, lines) == (INTERRUPTED, [ONE_LINE]), shown[-3000:]
    assert still_running(session) == []


def test_ctrl_c_while_run_pipeline_py_imports_beam_shows_one_line_and_exits_130(demo_crawl, tmp_path):
    """`python run_pipeline.py` imports Beam as the module loads, before `main`: the Ctrl-C is held there too."""
    argv = run_argv(demo_crawl, tmp_path / "out")[1:]  # run_pipeline.py takes the run's flags without `run`
    code, shown, _session = type_ctrl_c(argv, lambda _s, seconds: seconds > 0.3,
                                        command=[sys.executable, str(Path(run_pipeline.CHECKOUT) / "run_pipeline.py")])
    assert (code, visible(shown)[0]) == (INTERRUPTED, [ONE_LINE]), shown[-3000:]


def test_a_ctrl_c_that_an_import_swallows_still_stops_the_command():
    """What CI saw on 1243931: the Ctrl-C typed 0.3 s in landed inside a compiled module's collections.abc patch,
    which catches and prints what is raised in it ("Exception ignored in: <module 'collections.abc'>"), and the
    run went on to exit 0. The import here does the same with a real SIGINT; held, the interrupt comes after it."""

    def swallowing_import() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the signal is handled here, in the main thread
        except BaseException:  # noqa: BLE001 - what the compiled module does
            pass

    handler = signal.getsignal(signal.SIGINT)
    swallowing_import()  # as it was: nothing reaches the caller
    with pytest.raises(KeyboardInterrupt):
        with held_interrupts():
            swallowing_import()
    assert signal.getsignal(signal.SIGINT) is handler
    with held_interrupts():  # no Ctrl-C, no interrupt
        pass


@pytest.mark.parametrize("workers", [["--direct_num_workers=2"], []], ids=["worker-processes", "in-process"])
def test_ctrl_c_in_mid_run_shows_one_line_and_the_same_command_runs_it_again(demo_crawl, tmp_path, workers):
    """Before: 160-255 lines (each worker's and extraction child's KeyboardInterrupt traceback, grpc errors,
    'Worker subprocess exited with return code -2') and then the one line. Without a --direct_* flag the
    demo crawl, a small input, runs in the driver's process (driver/runner.py: IN_PROCESS_BYTES)."""
    argv = [a for a in run_argv(demo_crawl, tmp_path / "out") if a != "--direct_num_workers=2"] + workers
    code, shown, session = type_ctrl_c(argv, lambda s, _seconds: PROGRESS.encode() in s)
    lines, progress = visible(shown)
    assert progress, "Ctrl-C was typed once the progress line showed: the workers were reading"
    assert (code, lines) == (INTERRUPTED, [ONE_LINE]), shown[-3000:]
    assert still_running(session) == []
    assert (tmp_path / "out" / "_started.json").exists()  # what the line promises: the same command runs it again
    again = subprocess.run([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("tokenmill: 18 records, 8 kept")
    assert again.stderr == f"tokenmill: note: running the interrupted run in {tmp_path / 'out'} again from the start\n"


def test_ctrl_c_in_mid_run_with_verbose_shows_the_workers_own_lines_then_the_one_line(demo_crawl, tmp_path):
    code, shown, _session = type_ctrl_c(run_argv(demo_crawl, tmp_path / "out", "--verbose"),
                                         lambda s, _seconds: PROGRESS.encode() in s)
    lines, _progress = visible(shown)
    assert code == INTERRUPTED and lines[-1] == ONE_LINE
    assert "KeyboardInterrupt" in lines and len(lines) > 10  # what the quiet console keeps back


def test_an_error_the_interrupt_turns_into_is_still_the_one_line_and_130(capfd):
    """Beam's clean-up can raise another error while a Ctrl-C unwinds the run; standard error is silenced from
    the interrupt on, so it ended with exit 1 and nothing shown. The run here is a stand-in that does just that,
    under the real QuietStderr, with a real SIGINT."""

    def interrupted_run(argv, console_fd=None):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            os.write(2, b"Traceback (most recent call last): ... grpc._channel._InactiveRpcError\n")  # as workers do
            raise RuntimeError("the runner's channel closed while it stopped") from None
        raise AssertionError("no SIGINT arrived")

    assert run_pipeline.main([], command=interrupted_run) == INTERRUPTED
    assert capfd.readouterr().err == f"tokenmill: {RESUME}\n"


def test_a_ctrl_c_while_standard_error_is_swapped_still_gets_its_one_line():
    """A Ctrl-C that lands inside QuietStderr's set-up, after descriptor 2 became its pipe: the line went into
    the pipe, which no one forwarded, and the run ended 130 with nothing shown. In a fresh interpreter, whose
    standard error is a real descriptor (pytest's capture would take sys.stderr's writes before descriptor 2)."""
    script = (
        "import os, signal, sys, time\n"
        "import run_pipeline\n"
        "from console.quiet import QuietStderr\n"
        "class CtrlCInSetUp(QuietStderr):\n"
        "    def _watch_sigint(self):\n"
        "        super()._watch_sigint()\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(1)\n"
        "def command(argv, console_fd=None):\n"
        "    raise AssertionError('the run started')\n"
        "run_pipeline.QuietStderr = CtrlCInSetUp\n"
        "sys.exit(run_pipeline.main([], command=command))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=run_pipeline.CHECKOUT, capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stderr) == (INTERRUPTED, f"tokenmill: {RESUME}\n")


def test_ctrl_c_in_any_other_command_is_one_line_and_130():
    """`tokenmill decode` waiting for token ids on the terminal: KeyboardInterrupt's traceback before."""
    code, shown, _session = type_ctrl_c(["decode", "--tokenizer", "cl100k_base"], lambda _s, seconds: seconds > 1.5)
    assert (code, visible(shown)[0]) == (INTERRUPTED, ["tokenmill: interrupted"]), shown[-3000:]


# --- a reader that closes the pipe ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(demo_crawl, tmp_path_factory) -> Path:
    """`a` (the default recipe) and `b` (German only, so it drops what `a` keeps), and a release of `a`."""
    root = tmp_path_factory.mktemp("endings")
    (root / "de.toml").write_text('[filters.language]\nkeep = ["de"]\n[output]\ndropped_text_sample_rate = 1.0\n')
    run(demo_crawl, root / "a", *IN_MEMORY)
    run(demo_crawl, root / "b", "--config", str(root / "de.toml"), *IN_MEMORY)
    subprocess.run([*TOKENMILL, "release", str(root / "a"), "--name", "demo", "--version", "1", "--to",
                    str(root / "rel")], cwd=run_pipeline.CHECKOUT, check=True, capture_output=True)
    return root


def pipe_head_has_left() -> int:
    """The write end of a real pipe into `head -1` that has read its one line and exited: what a command's output
    meets once `| head -1` has what it wanted. Made so before the command writes, so that the command meets the
    closed pipe whatever its output's size and timing."""
    read_end, write_end = os.pipe()
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.DEVNULL)
    os.close(read_end)
    os.write(write_end, b"the line head wanted\n")
    assert head.wait(timeout=30) == 0
    return write_end


COMMANDS = {
    "stats": ["stats", "{a}"],
    "stats --json": ["stats", "{a}", "--json"],
    "inspect": ["inspect", "{a}", "--sample", "20"],
    "inspect --json": ["inspect", "{a}", "--json"],
    "inspect --id": ["inspect", "{a}", "--id", "{doc_id}"],
    "diff": ["diff", "{a}", "{b}"],
    "recipes": ["recipes"],
    "recipes --show": ["recipes", "--show", "fineweb"],
    "decode": ["decode", "--from", "{a}", "9906", "1917"],
    "report": ["report", "{a}", "-o", "{root}/report.html"],
    "verify": ["verify", "{root}/rel"],
    "help": ["--help"],
    "a command's --help": ["inspect", "--help"],  # argparse prints, then raises SystemExit
    "version": ["--version"],
    "run": ["run", "--input", "{crawl}", "--output", "{root}/run-into-a-closed-pipe", "--overwrite", *IN_MEMORY],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_printing_command_into_a_pipe_head_has_closed_is_quiet_and_exits_141(two_runs, demo_crawl, name):
    """Before: a BrokenPipeError traceback (or 'Exception ignored ... BrokenPipeError' from the interpreter's last
    flush) and exit 1 or 120. Standard error shows what the command says anyway (inspect's count of matching
    documents), never a traceback."""
    doc_id = pq.read_table(next((two_runs / "a" / "shards").glob("*.parquet")), columns=["doc_id"])["doc_id"][0].as_py()
    argv = [a.format(a=two_runs / "a", b=two_runs / "b", root=two_runs, doc_id=doc_id, crawl=demo_crawl[0])
            for a in COMMANDS[name]]
    alone = subprocess.run([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    assert alone.returncode == 0, alone.stderr
    pipe = pipe_head_has_left()
    try:
        cut = subprocess.run([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, stdout=pipe, stderr=subprocess.PIPE,
                             text=True)
    finally:
        os.close(pipe)
    assert (cut.returncode, cut.stderr) == (BROKEN_PIPE, alone.stderr)


def test_decode_of_a_whole_shard_piped_into_head_prints_its_first_line_and_ends_quietly(two_runs):
    """`tokenmill decode --from RUN < ids | head -1`, a shell pipeline's two processes: the text (~1 MB) is
    more than the pipe holds, so decode is still writing when head leaves."""
    import json

    from tokenization.tokenizers import Tokenizer

    tokenizer = Tokenizer(json.loads((two_runs / "a" / "manifest.json").read_text())["tokenizer"]["name"], False)
    tokens = [t for row in pq.read_table(next((two_runs / "a" / "shards").glob("*.parquet")),
                                         columns=["tokens"])["tokens"].to_pylist() for t in row[:-1]]
    text = tokenizer.decode(tokens)
    ids = tokens * (1_000_000 // len(text) + 1)
    decode = subprocess.Popen([*TOKENMILL, "decode", "--from", str(two_runs / "a")], cwd=run_pipeline.CHECKOUT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=decode.stdout, stdout=subprocess.PIPE)
    decode.stdout.close()  # head alone reads it now, as in a shell
    decode.stdin.write(" ".join(map(str, ids)).encode())
    decode.stdin.close()
    first, _ = head.communicate(timeout=120)
    err = decode.stderr.read()
    assert (decode.wait(timeout=120), err) == (BROKEN_PIPE, b"")
    assert first.decode() == text.split("\n", 1)[0] + "\n"


def test_the_quiet_console_ends_with_the_run_when_a_child_was_started_inside_it(tmp_path):
    """A spawned child (as the extraction child is, in a worker that runs in the driver's process) starts
    multiprocessing's resource tracker, which lives until the process exits. Started inside the quiet console,
    it held the console's pipe, and leaving the console waited its 5 s timeout for it after every such run. In a
    fresh interpreter, where no tracker runs yet: the child's line is shown and the console is left at once."""
    script = (
        "import multiprocessing, os, sys, time\n"
        "from console.quiet import QuietStderr\n"
        "def hello():\n"
        "    print('from the child', file=sys.stderr, flush=True)\n"
        "if __name__ == '__main__':\n"
        "    with QuietStderr():\n"
        "        p = multiprocessing.get_context('spawn').Process(target=hello)\n"
        "        p.start(); p.join()\n"
        "        start = time.monotonic()\n"
        "    print(f'left after {time.monotonic() - start:.1f} s')\n"
    )
    (tmp_path / "child.py").write_text(script)  # spawn imports the parent's __main__ from its file
    done = subprocess.run([sys.executable, str(tmp_path / "child.py")], cwd=run_pipeline.CHECKOUT,
                          env=dict(os.environ, PYTHONPATH=run_pipeline.CHECKOUT), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "from the child" in done.stderr
    left = float(done.stdout.split()[2])
    assert left < 2.5, done.stdout  # the console waits at most 5 s for a holder of its pipe


def test_leaving_does_what_a_normal_exit_does_that_matters(tmp_path):
    """console/endings.leave skips the interpreter's teardown (0.5-0.7 s with Beam loaded), not what comes before
    it: a thread pool's queued work finishes, non-daemon threads are joined, atexit handlers run (here one that
    writes a file, as logging's flushes its handlers), buffered output is flushed, and the status is the one given."""
    script = (
        "import atexit, concurrent.futures, pathlib, sys, threading, time\n"
        "from console.endings import leave\n"
        "out = pathlib.Path(sys.argv[1])\n"
        "atexit.register(lambda: (out / 'atexit').write_text('ran'))\n"
        "pool = concurrent.futures.ThreadPoolExecutor(1)\n"
        "pool.submit(lambda: (time.sleep(0.3), (out / 'pool').write_text('done')))\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), (out / 'thread').write_text('joined'))).start()\n"
        "print('the last line', end='')\n"
        "leave(3)\n"
        "print('never')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=run_pipeline.CHECKOUT,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (3, "the last line", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atexit", "pool", "thread"]
