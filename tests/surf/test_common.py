"""Argument types, targets from flags, and ``main`` in-process (fast; the subprocess
tests in test_cli.py cover the real command)."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

import surf.common as common
from surf.cli import build_parser, main
from surf.common import (
    UserError,
    beta_spec,
    emit_json,
    float_list,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    probability,
    target_from_args,
)


@pytest.mark.parametrize(
    "fn, good, bad",
    [
        (positive_int, {"1": 1, "42": 42}, ["0", "-3", "1.5", "x", ""]),
        (nonnegative_int, {"0": 0, "7": 7}, ["-1", "2.0", "y"]),
        (positive_float, {"0.5": 0.5, "1e-3": 1e-3, "3": 3.0}, ["0", "-1", "nan", "inf", "z"]),
        (nonnegative_float, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "-inf"]),
        (probability, {"0": 0.0, "0.9": 0.9}, ["1", "1.5", "-0.1", "nan"]),
    ],
)
def test_number_types(fn, good, bad):
    for text, value in good.items():
        assert fn(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            fn(text)


def test_float_list():
    assert float_list("1,2") == (1.0, 2.0)
    assert float_list(" -0.5 , 3 ") == (-0.5, 3.0)
    for text in ("", ",", "a,b", "1,nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            float_list(text)


def test_beta_spec():
    assert beta_spec("wbic") == "wbic"
    assert beta_spec(" EquiPartition ") == "equipartition"
    assert beta_spec("2.5") == 2.5
    for text in ("0", "-1", "hot", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            beta_spec(text)


def sample_args(*argv):
    return build_parser().parse_args(["sample", *argv])


def test_target_from_toy_flags():
    args = sample_args("--model", "cross", "--param", "lam=5", "--param", "a=3", "--beta", "7")
    target = target_from_args(args, start_key=None, num_chains=2)
    assert target.name == "cross" and target.beta == 7.0
    assert target.config["params"]["lam"] == 5.0 and target.config["params"]["a"] == 3.0


def test_target_from_flags_defaults_to_beta_one():
    target = target_from_args(sample_args("--model", "quadratic"), start_key=None, num_chains=1)
    assert target.beta == 1.0


@pytest.mark.parametrize(
    "argv, words",
    [
        ((), "say what to sample"),
        (("--param", "lam=5"), "say what to sample"),
        (("--loss", "f.py:loss", "--param", "lam=5", "--dim", "2"), "--param only applies to --model"),
        (("--loss", "f.py:loss"), "--loss needs --dim"),
        (("--loss", "f.py:loss", "--dim", "2", "--box", "0,1,2"), "--box takes LO,HI"),
        (("--loss", "f.py:loss", "--dim", "2", "--box", "1,0"), "low < high"),
        (("--numpyro", "m.py:model", "--beta", "equipartition"), "needs a loss"),
        (("--model", "cross", "--param", "box=-1"), "half-width"),
        (("--model", "quadratic", "--beta", "wbic"), "--num-data"),
    ],
)
def test_target_from_bad_flags_is_a_user_error(argv, words):
    with pytest.raises(UserError, match=words) as info:
        target_from_args(sample_args(*argv), start_key=None, num_chains=1)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("flag, value", [("--box", "-1,1"), ("--center", "-0.5,0")])
def test_negative_box_and_center_parse(flag, value):
    args = sample_args("--loss", "f.py:loss", "--dim", "2", flag, value)
    assert getattr(args, flag[2:]) == tuple(float(v) for v in value.split(","))


def test_negative_box_with_equals_sign_parses():
    args = sample_args("--loss", "f.py:loss", "--dim", "2", "--box=-1,1", "--center=-0.5,0")
    assert args.box == (-1.0, 1.0) and args.center == (-0.5, 0.0)


def test_emit_json_is_one_line_of_plain_json(capsys):
    emit_json({"a": np.float32(1.5), "b": np.arange(3), "c": None, "d": math.pi, "e": object})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    obj = json.loads(out)
    assert obj["a"] == 1.5 and obj["b"] == [0, 1, 2] and obj["c"] is None and obj["d"] == math.pi
    assert isinstance(obj["e"], str)


@pytest.fixture
def no_cache(monkeypatch):
    # main() turns on JAX's persistent cache process-wide; keep this test process out of it
    monkeypatch.setattr(common, "enable_compilation_cache", lambda path=None: None)
    monkeypatch.delenv("SURF_DEBUG", raising=False)


def test_main_without_a_command_is_a_one_line_error(no_cache, capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "choose a command" in err


def test_main_reports_a_user_error_in_one_line(no_cache, capsys):
    assert main(["sample", "--model", "cross", "--param", "zz=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("surf sample: error: unknown parameter 'zz'")


def test_main_debug_shows_the_exception(no_cache):
    with pytest.raises(UserError, match="unknown parameter"):
        main(["--debug", "sample", "--model", "cross", "--param", "zz=1"])


def test_usage_errors_exit_2_with_one_line(no_cache, capsys):
    with pytest.raises(SystemExit) as info:
        main(["sample", "--model", "cross", "--chains", "0"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--chains" in err


def test_program_facts_only_for_built_in_models_and_with_every_option():
    from samplers.kernels import SamplerOptions

    args = build_parser().parse_args(["sample", "--model", "cross", "--beta", "20"])
    target = target_from_args(args, start_key=None, num_chains=2)
    facts = common.program_facts(args, target, "nuts", SamplerOptions())
    assert facts["target"] == target.config and facts["sampler"] == "nuts"
    assert set(facts["sampler_options"]) == set(vars(SamplerOptions()))  # every option, defaults too
    other = common.program_facts(args, target, "nuts", SamplerOptions(mass_matrix="identity"))
    assert other != facts
    for flags in (["--loss", "x.py:f", "--dim", "2"], ["--numpyro", "m.py:model"]):
        user = build_parser().parse_args(["sample", *flags])
        assert common.program_facts(user, target, "nuts", SamplerOptions()) is None, flags
