"""Faults under `netspec train --nproc 2`: signals to the launcher stop every worker after
one save (exit 130/143, a checkpoint that resumes), a second Ctrl-C at once; a worker killed
with SIGKILL ends the run in one line and exit 1, with no worker left behind and no
traceback (the worker that lost contact with it exits silently, and the launcher names the
killed one); a launcher killed with SIGKILL leaves no worker running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netspec.training import checkpoints
from netspec.training.distributed import LOST_PEER, _free_port, _supervise

pytestmark = [pytest.mark.slow,  # each starts three processes (tests/tiers.py)
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

# Many short epochs (64 steps of a tiny net): a signal lands mid-epoch, well before the end.
SPEC = """
    name: faulty
    input: [1, 8, 8]
    layers:
      - conv2d: {out: 4, kernel: 3}
      - relu
      - flatten
      - linear: 10
    train:
      epochs: 500
      batch_size: 16
      data: {synthetic: {size: 1280, val_split: 0.2}}
      optimizer: {sgd: {lr: 0.05}}
      schedule: constant
      device: cpu
"""
STARTED = 120.0
"""Seconds to wait for the first epoch's checkpoint (three Python processes import torch)."""
ENDED = 30.0
"""Seconds the run may take to end after the fault (the launcher's grace period is 5 s)."""


def start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    """`netspec train --nproc 2` of SPEC, once its first checkpoint is written and its
    second epoch is under way: (launcher, spec, run folder)."""
    spec = tmp_path / "faulty.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    out = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "netspec", "train", str(spec), "--nproc", "2",
                                 "--out", str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + STARTED
    while not (out / "last.pt").exists():
        assert launcher.poll() is None, launcher.communicate()
        assert time.monotonic() < deadline, "no checkpoint after the first epoch"
        time.sleep(0.1)
    time.sleep(0.5)  # into the next epoch
    return launcher, spec, out


def workers(launcher: subprocess.Popen[str]) -> dict[int, int]:
    """The launcher's worker processes: {rank: pid}."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue  # gone meanwhile
        if ppid == launcher.pid:
            rank = next(int(v[5:]) for v in environ if v.startswith(b"RANK="))
            found[rank] = int(stat.parent.name)
    return found


def finish(launcher: subprocess.Popen[str]) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, seconds) of the launcher, which must end within ENDED."""
    began = time.monotonic()
    stdout, stderr = launcher.communicate(timeout=ENDED)
    return launcher.returncode, stdout, stderr, time.monotonic() - began


def gone(pids: list[int]) -> bool:
    """Whether none of `pids` is a process any more (the launcher reaped them all)."""
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_launcher_stops_every_worker_after_one_save(tmp_path, sent, status):
    launcher, spec, out = start(tmp_path)
    pids = list(workers(launcher).values())
    assert len(pids) == 2
    launcher.send_signal(sent)
    code, stdout, stderr, _ = finish(launcher)
    assert code == status, stderr
    assert gone(pids)
    assert "Traceback" not in stderr
    stops = [line for line in stdout.splitlines() if line.startswith("stopped by")]
    assert len(stops) == 1 and stops[0].startswith(f"stopped by {sent.name} at epoch "), stdout
    state = checkpoints.load(out / "last.pt")
    assert state["step"] > 0  # saved mid-epoch, where the signal stopped it
    assert len(state["rng"]) == 2
    assert not list(out.glob("*.tmp*"))

    epochs = state["epoch"] + 1  # finish the interrupted epoch, in one process
    resumed = subprocess.run([sys.executable, "-m", "netspec", "train", str(spec), "--resume",
                              str(out / "last.pt"), "--epochs", str(epochs), "--quiet"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoints.load(out / "last.pt")["epoch"] == epochs


def test_a_second_ctrl_c_stops_every_worker_at_once(tmp_path):
    launcher, _, _ = start(tmp_path)
    pids = list(workers(launcher).values())
    launcher.send_signal(signal.SIGINT)
    time.sleep(0.05)
    launcher.send_signal(signal.SIGINT)
    code, _, stderr, _ = finish(launcher)
    assert code == 130, stderr
    assert gone(pids)
    assert "Traceback" not in stderr and "netspec train: error" not in stderr


def test_a_killed_worker_ends_the_run_in_one_line(tmp_path):
    launcher, _, out = start(tmp_path)
    ranks = workers(launcher)
    assert sorted(ranks) == [0, 1]
    os.kill(ranks[1], signal.SIGKILL)
    code, _, stderr, seconds = finish(launcher)
    assert code == 1, stderr
    assert stderr.splitlines()[-1] == (
        f"netspec train: error: worker 1 (rank 1) was killed by SIGKILL; stopped the other "
        f"workers; the last checkpoint is {out / 'last.pt'}")
    assert "Traceback" not in stderr
    assert gone(list(ranks.values()))
    assert seconds < 15
    assert checkpoints.load(out / "last.pt")["epoch"] >= 1  # the last checkpoint is whole


def test_a_killed_launcher_leaves_no_worker_running(tmp_path):
    """The workers get SIGTERM when the launcher dies (PR_SET_PDEATHSIG): they save and end."""
    launcher, _, out = start(tmp_path)
    pids = list(workers(launcher).values())
    launcher.kill()
    launcher.communicate(timeout=ENDED)
    deadline = time.monotonic() + ENDED
    while any(_running(pid) for pid in pids):
        assert time.monotonic() < deadline, "workers left running after the launcher died"
        time.sleep(0.1)
    assert checkpoints.load(out / "last.pt")["step"] > 0  # each stopped cleanly, rank 0 saved


def _running(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (an orphan's zombie is reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


LOSES_ITS_PEER = """
import os, sys, time
import torch, torch.distributed as dist
from netspec.errors import PeerLost
from netspec.training.distributed import World, peer_errors

rank, port = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", rank=rank, world_size=2, init_method=f"tcp://127.0.0.1:{port}")
if rank == 1:
    os._exit(0)  # gone without a word, as SIGKILL leaves it
time.sleep(1.0)
world = World(0, 2)
try:
    with peer_errors(world):
        dist.all_reduce(torch.ones(1))
except PeerLost as exc:
    print(f"PeerLost: {exc}")
finally:
    world.close()  # as fit does: left to the interpreter's exit, gloo's threads may abort it
"""


def test_a_collective_whose_other_rank_is_gone_raises_peer_lost(tmp_path):
    """A real gloo all_reduce after the other rank died: PeerLost, which a launched worker
    turns into a silent exit (LOST_PEER) rather than a traceback."""
    script = tmp_path / "loses_its_peer.py"
    script.write_text(LOSES_ITS_PEER)
    port = str(_free_port())
    ranks = [subprocess.Popen([sys.executable, str(script), str(rank), port], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for rank in (1, 0)]
    stdout, stderr = ranks[1].communicate(timeout=STARTED)
    ranks[0].wait(timeout=ENDED)
    assert ranks[1].returncode == 0, stderr
    assert stdout.startswith("PeerLost: rank 0 lost contact with another training process ("), \
        stdout + stderr
    assert "gloo" in stdout


def test_the_launcher_names_the_worker_that_failed_not_one_that_lost_it(tmp_path, capsys):
    """Worker 0 ends with LOST_PEER right after worker 1 was killed: when the launcher sees
    both ended at one look, it names worker 1; a lost peer alone is named as such."""
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed.kill()
    lost = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({LOST_PEER})"])
    for worker in (killed, lost):
        worker.wait(timeout=ENDED)
    assert _supervise([lost, killed], [], tmp_path) == 1
    assert capsys.readouterr().err == (
        f"netspec train: error: worker 1 (rank 1) was killed by SIGKILL; stopped the other "
        f"workers; no checkpoint was written to {tmp_path}\n")
    assert _supervise([lost], [], tmp_path) == 1
    assert capsys.readouterr().err.startswith(
        "netspec train: error: worker 0 (rank 0) lost contact with the others;")
