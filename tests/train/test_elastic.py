"""Beyond one process group: elastic resume (another number of processes, mid-epoch), `--resume auto` under
`torchrun --max-restarts`, and two torchrun "nodes" that train as one node with two processes.

The subprocess tests use the test probes of `visionzoo.train.probes`: a log of the sample indices each rank
trains on, and a rank that kills itself once after a given update and its checkpoint.
"""

import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from visionzoo.data.samplers import EpochBatchSampler, RepeatBatchSampler, epoch_permutation
from visionzoo.train import TrainConfig
from visionzoo.train.checkpoint import ResumeError, load_state
from visionzoo.train.elastic import elastic_config, process_counts, rank_loss_sum, resumed_position
from visionzoo.train.engine import auto_resume, check_grad_accum
from visionzoo.train.probes import FAULT, SAMPLE_LOG

from .conftest import run_cli

SRC = str(Path(__file__).resolve().parents[2] / "src")
VIT = ["--model", "test_vit", "--num-classes", "10", "--img-size", "32", "--opt", "sgd", "--lr", "0.05",
       "--scale", "0.6", "1", "--hflip", "0", "--seed", "3", "--epochs", "1", "--batch-size", "32",
       "--workers", "0", "--checkpoint-every", "5", "--deterministic"]
TRAIN_IMAGES = 1437  # the digits' training split
GLOBAL_BATCH = 64
UPDATES = TRAIN_IMAGES // GLOBAL_BATCH  # 22


# ---- the order: what makes elastic resume exact ----------------------------------------------------------
def _rank_batches(sampler_of, world: int, start: int) -> list[list]:
    return [batch for rank in range(world) for batch in sampler_of(rank, world, start)]


@pytest.mark.parametrize("kind", ["epoch", "repeat"])
@pytest.mark.parametrize(("world", "accum", "new_world"), [(2, 1, 1), (1, 2, 2), (4, 1, 2), (2, 3, 3)])
def test_the_rest_of_an_epoch_is_split_over_another_world_without_repeats_or_gaps(kind, world, accum,
                                                                                   new_world):
    size, batch = 1000, 8
    new_accum = world * accum // new_world

    def sampler_of(rank, processes, start):
        # the epoch's micro-batches per rank, as the run computes them (the same updates on either world)
        if kind == "epoch":
            stop = size // (batch * world * accum) * world * accum // processes
            return EpochBatchSampler(size, batch, 5, 3, rank, processes, start=start, stop=stop)
        updates = RepeatBatchSampler.batches_per_epoch(size, batch, world, 3) // accum
        stop = updates * accum * world // processes
        return RepeatBatchSampler(size, batch, 5, 3, rank, processes, 3, start=start, stop=stop)

    position = 3 * accum  # after three updates
    before = _rank_batches(lambda r, w, s: list(sampler_of(r, w, s))[:position - s], world, 0)
    after = _rank_batches(sampler_of, new_world, resumed_position(position, world, new_world))
    whole = _rank_batches(sampler_of, world, 0)
    keys = Counter(tuple(item) for batch_items in before + after for item in batch_items)
    assert max(keys.values()) == 1  # none twice
    assert set(keys) == {tuple(item) for batch_items in whole for item in batch_items}  # none skipped
    assert new_accum * new_world == world * accum


def test_another_world_keeps_the_global_batch_or_names_the_sizes_that_do():
    config = TrainConfig(model="test_vit", data="d", output="o", batch_size=32, grad_accum=3)
    assert elastic_config(config, 2, 3, "run").optim.grad_accum == 2
    assert elastic_config(config, 2, 6, "run").optim.grad_accum == 1
    assert elastic_config(config, 2, 2, "run") is config
    with pytest.raises(ResumeError, match=r"^run has a global batch of 192 .* resume it with 1, 2, 3, 6 "
                                          r"process\(es\)$"):
        elastic_config(config, 2, 4, "run")
    assert process_counts(4) == [1, 2, 4]
    with pytest.raises(ResumeError, match="between two updates"):
        resumed_position(3, 1, 2)


def test_the_epoch_loss_sum_moves_to_rank_zero_on_another_world():
    sums = [torch.tensor(1.5, dtype=torch.float64), torch.tensor(2.25, dtype=torch.float64)]
    assert rank_loss_sum(sums, 1, 2) is sums[1]
    assert float(rank_loss_sum(sums, 0, 3)) == 3.75 and float(rank_loss_sum(sums, 2, 3)) == 0.0


def test_a_grad_accum_given_again_must_be_the_runs_or_keep_its_global_batch():
    check_grad_accum(None, 1, 2, "run")
    check_grad_accum(1, 1, 2, "run")  # the command that started the run, now on half the processes
    check_grad_accum(2, 1, 2, "run")
    with pytest.raises(ResumeError, match="is 2 on this number of processes, not 4"):
        check_grad_accum(4, 1, 2, "run")


def test_resume_auto_resumes_a_checkpoint_restarts_a_run_without_one_and_refuses_other_files(tmp_path):
    assert auto_resume(tmp_path / "new", False) == (None, False)
    (tmp_path / "args.yaml").write_text("model: x\n")
    assert auto_resume(tmp_path, False) == (None, True)  # killed before its first checkpoint: start again
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert auto_resume(tmp_path, False) == (str(tmp_path), False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert auto_resume(other, False) == (None, False)  # the usual refusal follows in train()


# ---- whole runs: torchrun groups of CPU processes (gloo) ------------------------------------------------
def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **extra}


def _torchrun(launch: list[str], args: list[str], **env) -> subprocess.Popen:
    return subprocess.Popen(["timeout", "300", sys.executable, "-m", "torch.distributed.run", *launch,
                             "-m", "visionzoo", "train", *args], env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate()
    return process.returncode, out, err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _trained_samples(logs: Path, epoch: int, before_step: int | None = None) -> list[int]:
    """The sample indices the ranks logged for `epoch` (those of updates before `before_step`)."""
    found = []
    for log in logs.glob("rank-*.txt"):
        for line in log.read_text().splitlines():
            logged_epoch, step, *indices = map(int, line.split())
            if logged_epoch == epoch and (before_step is None or step < before_step):
                found += indices
    return found


def _assert_each_sample_once(killed_logs: Path, resumed_logs: Path, stopped_step: int) -> None:
    seen = _trained_samples(killed_logs, 0, stopped_step) + _trained_samples(resumed_logs, 0)
    counts = Counter(seen)
    assert max(counts.values()) == 1, "a sample seen twice"
    assert sorted(counts) == sorted(epoch_permutation(TRAIN_IMAGES, 3, 0)[:UPDATES * GLOBAL_BATCH])


def _kill_at_step_10(state_folder: Path) -> dict:
    stopped = load_state(state_folder)
    assert stopped["step"] == 10 and stopped["epoch"] == 0, "killed after update 10 and its checkpoint"
    return stopped


@pytest.mark.heavy
def test_two_processes_killed_mid_epoch_resume_on_one(digits, tmp_path):
    run, logs, resumed_logs = tmp_path / "run", tmp_path / "logs", tmp_path / "resumed"
    logs.mkdir(), resumed_logs.mkdir()
    code, _, err = _finish(_torchrun(["--standalone", "--nproc-per-node", "2"],
                                     [*VIT, "--data", str(digits[0]), "--output", str(run)],
                                     **{SAMPLE_LOG: str(logs), FAULT: f"0:10:{tmp_path / 'marker'}"}))
    assert code != 0, err[-2000:]
    stopped = _kill_at_step_10(run)
    assert stopped["world_size"] == 2 and stopped["position"] == 10

    resumed = run_cli(["train", "--resume", str(run)], env={SAMPLE_LOG: str(resumed_logs)})
    assert resumed.returncode == 0, resumed.stderr
    assert "on 1 process(es) instead of 2, 2 micro-batch(es) per update" in resumed.stderr
    _assert_each_sample_once(logs, resumed_logs, 10)
    final = load_state(run)
    assert (final["step"], final["world_size"], final["config"]["grad_accum"]) == (UPDATES, 1, 2)
    assert "world_size: 1" in (run / "args.yaml").read_text()


@pytest.mark.heavy
def test_one_process_killed_mid_epoch_resumes_on_two(digits, tmp_path):
    run, logs, resumed_logs = tmp_path / "run", tmp_path / "logs", tmp_path / "resumed"
    logs.mkdir(), resumed_logs.mkdir()
    killed = run_cli(["train", *VIT, "--batch-size", "32", "--grad-accum", "2", "--data", str(digits[0]),
                      "--output", str(run)],
                     env={SAMPLE_LOG: str(logs), FAULT: f"0:10:{tmp_path / 'marker'}"})
    assert killed.returncode == -9, killed.stderr
    assert _kill_at_step_10(run)["position"] == 20  # micro-batches of one process

    code, out, err = _finish(_torchrun(["--standalone", "--nproc-per-node", "2"], ["--resume", str(run)],
                                       **{SAMPLE_LOG: str(resumed_logs)}))
    assert code == 0, err[-3000:]
    assert out.count("trained 22 updates") == 1
    _assert_each_sample_once(logs, resumed_logs, 10)
    final = load_state(run)
    assert (final["step"], final["world_size"], final["config"]["grad_accum"]) == (UPDATES, 2, 1)


@pytest.fixture(scope="module")
def two_process_run(digits, tmp_path_factory):
    """A run of two processes on one node, never interrupted: the reference of the tests below."""
    run = tmp_path_factory.mktemp("one_node") / "run"
    code, _, err = _finish(_torchrun(["--standalone", "--nproc-per-node", "2"],
                                     [*VIT, "--data", str(digits[0]), "--output", str(run)]))
    assert code == 0, err[-3000:]
    return load_state(run)


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, tensor in a.items():
        assert torch.equal(tensor, b[key]), key


@pytest.mark.heavy
def test_resume_auto_under_torchrun_max_restarts_recovers_a_killed_rank(two_process_run, digits, tmp_path):
    run, marker = tmp_path / "run", tmp_path / "marker"
    code, out, err = _finish(_torchrun(
        ["--standalone", "--nproc-per-node", "2", "--max-restarts", "1"],
        [*VIT, "--data", str(digits[0]), "--output", str(run), "--resume", "auto"],
        **{FAULT: f"1:12:{marker}"}))
    assert code == 0, err[-3000:]
    assert marker.is_file(), "rank 1 was not killed"
    assert "resuming" in err and out.count("trained 22 updates") == 1
    final = load_state(run)
    assert final["step"] == UPDATES
    _same_weights(final["model"], two_process_run["model"])  # the same world size resumes bit for bit


@pytest.mark.heavy
def test_two_nodes_train_as_one_node_with_two_processes(two_process_run, digits, tmp_path):
    run, port = tmp_path / "run", _free_port()
    nodes = [_torchrun(["--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(rank),
                        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "vz"],
                       [*VIT, "--data", str(digits[0]), "--output", str(run)]) for rank in (0, 1)]
    results = [_finish(node) for node in nodes]
    for code, _, err in results:
        assert code == 0, err[-3000:]
    assert sum(out.count("trained 22 updates") for _, out, _ in results) == 1  # one rank reports
    final = load_state(run)
    assert final["world_size"] == 2 and final["step"] == UPDATES
    _same_weights(final["model"], two_process_run["model"])
