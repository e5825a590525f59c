"""The one config dataclass: unknown keys and wrong types are rejected with the key's name; flags override
a config file; the resolved config survives a JSON round trip."""
from __future__ import annotations

import json

import pytest

from kit.config import TrainConfig, config_from_dict, config_to_dict, load_config, resolve_config
from kit.cv import build_parser


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="epoch"):
        config_from_dict({"epoch": 3})


@pytest.mark.parametrize("key,value", [("epochs", "three"), ("lr", "fast"), ("pretrained", 1),
                                       ("label_cols", "a"), ("model", None), ("batch_size", 2.5)])
def test_wrong_type_is_named(key, value):
    with pytest.raises(ValueError, match=key):
        config_from_dict({key: value})


def test_int_is_accepted_where_float_expected():
    assert config_from_dict({"lr": 1}).lr == 1.0
    assert isinstance(config_from_dict({"lr": 1}).lr, float)


def test_round_trip_through_json(tmp_path):
    cfg = TrainConfig(model="test_resnet", lr=3e-4, label_cols=["a", "b"], ema_decay=0.99, balance="selective")
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config_to_dict(cfg)))
    assert load_config(path) == cfg


def test_flags_override_file_and_defaults_fill_the_rest(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"model": "test_resnet", "lr": 0.01, "epochs": 3}))
    args = build_parser().parse_args(["--config", str(path), "--lr", "0.5", "--no-tta"])
    cfg = resolve_config(args, args.config)
    assert (cfg.model, cfg.lr, cfg.epochs, cfg.tta) == ("test_resnet", 0.5, 3, False)
    assert cfg.batch_size == TrainConfig().batch_size


@pytest.mark.parametrize("flags,match", [(["--folds", "1"], "folds"), (["--balance-target", "lots"], "balance_target"),
                                         (["--epochs", "2", "--freeze-epochs", "2"], "freeze_epochs")])
def test_invalid_values_are_refused(flags, match):
    args = build_parser().parse_args(flags)
    with pytest.raises(ValueError, match=match):
        resolve_config(args)


def test_bad_config_file_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        load_config(path)
