"""Local weight files (--weights): timm state dicts in their usual wrappings, kit checkpoints of another
class count (head skipped), a run that really starts from them, and files that cannot be used."""
from __future__ import annotations

import re

import pandas as pd
import pytest
import timm
import torch
from competitions import digits_competition

from kit.cv import main
from kit.model import create_model, load_weights

quiet = lambda *a, **k: None  # noqa: E731


@pytest.fixture
def timm_weights(tmp_path, one_thread) -> tuple[str, dict]:
    torch.manual_seed(1234)  # not the init create_model would make: equality below means "loaded"
    state = timm.create_model("test_resnet", num_classes=8).state_dict()
    path = tmp_path / "resnet.pth"
    torch.save(state, path)
    return str(path), state


def assert_tensors_equal(model, state: dict, names) -> None:
    own = model.state_dict()
    for name in names:
        assert torch.equal(own[name], state[name]), name


def test_timm_state_dict_is_loaded(timm_weights):
    path, state = timm_weights
    fresh = create_model("test_resnet", 8, log=quiet)
    assert not torch.equal(fresh.state_dict()["conv1.0.weight"], state["conv1.0.weight"])  # a real difference
    model = create_model("test_resnet", 8, weights=path, log=quiet)
    assert_tensors_equal(model, state, state)


@pytest.mark.parametrize("wrap", ["state_dict", "model_state_dict", "module.", "safetensors"])
def test_usual_wrappings_of_a_state_dict(timm_weights, tmp_path, wrap):
    path, state = timm_weights
    target = tmp_path / "wrapped.pt"
    if wrap == "safetensors":
        from safetensors.torch import save_file
        target = tmp_path / "w.safetensors"
        save_file(state, str(target))
    elif wrap == "module.":  # saved from DataParallel / DDP
        torch.save({f"module.{k}": v for k, v in state.items()}, target)
    else:
        torch.save({wrap: state, "epoch": 3}, target)
    assert_tensors_equal(create_model("test_resnet", 8, weights=str(target), log=quiet), state, state)


def test_kit_checkpoint_of_another_class_count_loads_all_but_the_head(bccd_run):
    checkpoint = bccd_run.run_dir / "fold0" / "best.pt"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    model = timm.create_model("test_resnet", num_classes=3)
    found = load_weights(model, checkpoint, log=quiet)
    assert found.head == ["fc.weight", "fc.bias"]  # 8-class head in the file, 3-class model
    assert found.left_at_init(model.state_dict()) == ["fc.weight", "fc.bias"]
    assert found.by_order == 0 and found.by_name == len(saved) - 2
    assert model.state_dict()["fc.weight"].shape[0] == 3 and not model.state_dict()["fc.weight"].any()  # zeroed
    assert_tensors_equal(model, saved, [k for k in saved if not k.startswith("fc.")])


def test_run_with_weights_starts_from_the_file(bccd_run, cv_args, tmp_path, capsys):
    """lr 0 makes training a no-op on the parameters: the run's best.pt holds exactly what it loaded."""
    data = digits_competition(tmp_path / "digits3", n_train=80, n_test=10)
    train = pd.read_csv(data / "train.csv", dtype=str)
    train[train["label"].isin(["zero", "one", "two"])].to_csv(data / "train.csv", index=False)  # 3 classes
    checkpoint = bccd_run.run_dir / "fold0" / "best.pt"
    argv = [a for a in cv_args(data, "from_bccd", "--weights", str(checkpoint), "--lr", "0", "--min-lr", "0")
            if a != "--quiet"]
    capsys.readouterr()
    assert main(argv) == 0
    assert re.search(rf"weights {re.escape(str(checkpoint))}: \d+ tensors by name, 0 by order, 2 left at init "
                     r"\(fc.weight, fc.bias\); the new head is zeroed", capsys.readouterr().out)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    for fold in (0, 1):
        trained = torch.load(tmp_path / "oof" / "from_bccd" / f"fold{fold}" / "best.pt", weights_only=False)["model"]
        assert trained["fc.weight"].shape[0] == 3
        params = [n for n, _ in timm.create_model("test_resnet").named_parameters() if not n.startswith("fc.")]
        for name in params:  # parameters, not BatchNorm running stats (those move in train mode even at lr 0)
            assert torch.equal(trained[name], saved[name]), name


def test_unusable_weight_files_error_before_the_run_starts(cv_args, small_bccd, tmp_path, capsys):
    other = tmp_path / "effnet.pth"
    torch.save(timm.create_model("test_efficientnet", num_classes=8).state_dict(), other)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x02 not a pickle at all" * 10)
    cases = [(other, r"by order its #0 tensor conv_stem.weight \(24, 3, 3, 3\) does not fit the model's "
                     r"conv1.0.weight \(16, 3, 3, 3\)"), (garbage, r"cannot be read"),
             (tmp_path / "absent.pth", r"does not exist")]
    for path, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=rf"weights file {re.escape(str(path))}.*{message}"):
            create_model("test_resnet", 8, weights=str(path), log=quiet)
        capsys.readouterr()
        assert main(cv_args(small_bccd, "bad_weights", "--weights", str(path))) != 0
        err = capsys.readouterr().err
        assert re.search(rf"^error: weights file {re.escape(str(path))}.*{message}", err), err
        assert not (tmp_path / "oof" / "bad_weights").exists()
