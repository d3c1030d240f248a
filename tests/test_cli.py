"""The CLI end to end: purify files, folders and arrays; info; clear errors with non-zero exits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from purifier.data import load_dataset


def test_help_for_every_command(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0 and "purify" in out and "train-ebm" in out
    for cmd in ("purify", "info", "train-ebm", "train-classifier"):
        code, out, _ = cli(cmd, "--help")
        assert code == 0 and "usage" in out


def test_purify_folder_of_pngs(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    x, _ = load_dataset("mnist", "test", data_dir)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray((x[i, 0].numpy() * 255).astype(np.uint8)).save(src / f"digit{i}.png")
    code, out, err = cli("purify", "--model", model_dir, "--input", src, "--output", tmp_path / "out", "--steps", "3", "--seed", "1")
    assert code == 0, err
    for i in range(3):
        img = Image.open(tmp_path / "out" / f"digit{i}.png")
        assert img.size == (28, 28) and img.mode == "L"
    assert (tmp_path / "out" / "grid.png").is_file() and "purified 3 image(s)" in out


def test_purify_npy_keeps_layout_and_is_deterministic(cli, model_dir: Path, tmp_path: Path) -> None:
    arr = (np.random.default_rng(0).random((4, 28, 28)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", arr)
    outs = []
    for run in ("a", "b"):
        code, _, err = cli("purify", "--model", model_dir, "--input", tmp_path / "x.npy", "--output", tmp_path / run, "--steps", "3")
        assert code == 0, err
        outs.append(np.load(tmp_path / run / "x_purified.npy"))
    assert outs[0].shape == (4, 28, 28) and outs[0].dtype == np.uint8
    assert np.array_equal(outs[0], outs[1])


def test_purify_npz_with_replicates(cli, model_dir: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", images=np.random.default_rng(1).random((2, 1, 28, 28)).astype(np.float32))
    code, _, err = cli("purify", "--model", model_dir, "--input", tmp_path / "x.npz", "--output", tmp_path / "o", "--steps", "2", "--replicates", "3")
    assert code == 0, err
    with np.load(tmp_path / "o" / "x_purified.npz") as z:
        assert z["images"].shape == (2, 3, 1, 28, 28) and z["images"].dtype == np.float32


def test_info_prints_verified_metadata(cli, model_dir: Path) -> None:
    code, out, _ = cli("info", model_dir)
    meta = json.loads(out)
    assert code == 0 and meta["weights_verified"] and meta["kind"] == "ebm"


def test_bad_inputs_give_one_line_errors(cli, model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 32, 32), np.uint8))
    np.save(tmp_path / "good.npy", np.zeros((2, 28, 28), np.uint8))
    cases = [
        (("purify", "--model", tmp_path / "none", "--input", tmp_path, "--output", tmp_path / "o"), "no ebm checkpoint"),
        (("purify", "--model", model_dir, "--input", tmp_path / "missing.png", "--output", tmp_path / "o"), "no such file"),
        (("purify", "--model", model_dir, "--input", tmp_path / "bad.png", "--output", tmp_path / "o"), "not a readable image"),
        (("purify", "--model", model_dir, "--input", tmp_path / "wrong.npy", "--output", tmp_path / "o"), "does not hold images"),
        (("purify", "--model", model_dir, "--input", tmp_path / "good.npy", "--output", tmp_path / "o", "--steps", "-3"), "steps must be"),
        (("info", tmp_path / "none"), "no ebm checkpoint"),
        (("purify", "--model", model_dir, "--input", tmp_path / "good.npy", "--output", tmp_path / "o", "--threads", "0"), "--threads must be >= 1"),
    ]
    for args, message in cases:
        code, _, err = cli(*args)
        assert code == 2, (args, err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_serve_and_export_fail_in_one_line_before_serving(cli, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad service settings (flag or environment), a bad model and an unwritable output folder: one line, no traceback,
    and nothing starts listening (each case returns instead of serving)."""
    (tmp_path / "a-file").write_text("")
    cases = [
        (("serve", "--model", model_dir, "--max-batch-size", "0"), {}, 2, "--max-batch-size / EBM_PURIFY_MAX_BATCH_SIZE: Input should be greater"),
        (("serve", "--model", model_dir, "--port", "70000"), {}, 2, "--port / EBM_PURIFY_PORT"),
        (("serve", "--model", model_dir), {"EBM_PURIFY_PORT": "abc"}, 2, "--port / EBM_PURIFY_PORT: Input should be a valid integer"),
        (("serve", "--model", model_dir), {"EBM_PURIFY_CORS_ORIGINS": "not-json"}, 2, "list fields are JSON"),
        (("serve", "--model", tmp_path / "none"), {}, 2, "no ebm checkpoint"),
        (("export-onnx", "--model", model_dir, "--out", tmp_path / "a-file" / "onnx"), {}, 1, "Not a directory"),
    ]
    for args, env, want, message in cases:
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            code, _, err = cli(*args)
        assert code == want, (args, err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)


def test_demo_runs_on_a_model_folder(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    code, out, err = cli("demo", "--model", model_dir, "--n", "3", "--steps", "2", "--replicates", "2", "--out", tmp_path, "--data-dir", data_dir)
    assert code == 0, err
    assert "bare@adv" in out and (tmp_path / "demo_grid.png").is_file()
    assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == 3
