"""A user's loss loaded from ``FILE.py:FUNCTION``."""

from __future__ import annotations

import math
import textwrap

import jax
import jax.numpy as jnp
import pytest

from models.custom import check_loss_fn, custom_loss_target, load_function
from models.target import Box

GOOD = """
import jax.numpy as jnp

SHIFT = 0.5

def loss(x):
    return jnp.sum((x - SHIFT) ** 2)

def other(x):
    return 3.0 * jnp.sum(x ** 2)

not_a_function = 3
"""


def write(tmp_path, source: str, name: str = "user_loss.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_custom_loss_target_builds_the_tempered_density(tmp_path):
    path = write(tmp_path, GOOD)
    target = custom_loss_target(f"{path}:loss", 2, beta=3.0)
    assert target.dim == 2 and target.beta == 3.0
    assert target.name == f"custom:{path}:loss"
    assert target.config["loss"] == f"{path}:loss"
    z = jnp.asarray([0.1, -0.7])
    expected = -3.0 * float(jnp.sum((z - 0.5) ** 2))
    assert float(target.logdensity_fn(z)) == pytest.approx(expected, rel=1e-6)
    assert float(target.record_fn(z)["loss"]) == pytest.approx(-expected / 3.0, rel=1e-6)


def test_load_function_picks_the_named_function(tmp_path):
    path = write(tmp_path, GOOD)
    x = jnp.asarray([1.0, 2.0])
    assert float(load_function(f"{path}:other")(x)) == pytest.approx(15.0)
    assert float(load_function(f"{path}:loss")(x)) == pytest.approx(0.25 + 2.25)


def test_two_files_with_the_same_function_name_do_not_collide(tmp_path):
    a = write(tmp_path, "def loss(x):\n    return 1.0 + 0 * x.sum()\n", "a.py")
    b = write(tmp_path, "def loss(x):\n    return 2.0 + 0 * x.sum()\n", "b.py")
    x = jnp.zeros(2)
    assert float(load_function(f"{a}:loss")(x)) == 1.0
    assert float(load_function(f"{b}:loss")(x)) == 2.0


def test_custom_loss_target_on_a_box_and_with_a_center(tmp_path):
    path = write(tmp_path, GOOD)
    target = custom_loss_target(f"{path}:loss", 2, box=Box(0.0, 1.0), center=(0.5, 0.5))
    assert target.singular_point == (0.5, 0.5)
    x = target.to_original(target.init_fn(jax.random.key(0), 100))
    assert bool(jnp.all((x > 0) & (x < 1)))


def test_custom_loss_target_accepts_a_start_key(tmp_path):
    # regression: `start_key or default` once raised TypeError (a key array has no truth value)
    path = write(tmp_path, GOOD)
    for key in (jax.random.key(1), jax.random.PRNGKey(1)):
        target = custom_loss_target(f"{path}:loss", 2, beta=2.0, start_key=key)
        assert target.beta == 2.0


def test_custom_loss_target_equipartition_reads_the_loss_at_the_starts(tmp_path):
    path = write(tmp_path, GOOD)
    key, chains = jax.random.key(4), 8
    target = custom_loss_target(
        f"{path}:loss", 3, beta="equipartition", start_key=key, num_chains=chains
    )
    starts = target.to_original(target.init_fn(key, chains))
    mean_loss = float(jnp.mean(jnp.sum((starts - 0.5) ** 2, axis=-1)))
    assert math.isclose(target.beta, 3 / (2 * mean_loss), rel_tol=1e-5)


BAD_SOURCES = {
    "syntax": ("def loss(x)\n    return x\n", "loss", "importing .* failed: SyntaxError"),
    "import": ("import not_a_module_surf_xyz\n", "loss", "importing .* failed: ModuleNotFoundError"),
    "raises_at_import": ("raise RuntimeError('boom')\n", "loss", "importing .* failed: RuntimeError: boom"),
    "missing": (GOOD, "nope", "has no function 'nope'"),
    "not_callable": (GOOD, "not_a_function", "is not callable"),
    "vector": ("def loss(x):\n    return x ** 2\n", "loss", r"must return a scalar, got shape \(2,\)"),
    "nan": ("import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(x) * jnp.nan\n", "loss", "not finite"),
    "inf": ("import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(x) + jnp.inf\n", "loss", "not finite"),
    "two_args": ("def loss(x, y):\n    return x.sum()\n", "loss", "the loss failed .*TypeError"),
    "raises": ("def loss(x):\n    raise ValueError('bad x')\n", "loss", "the loss failed .*bad x"),
    "numpy": (
        "import numpy as np\ndef loss(x):\n    return float(np.sum(np.asarray(x) ** 2))\n",
        "loss",
        "not differentiable with JAX",
    ),
    "nan_grad": (
        "import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(jnp.sqrt(0.0 * x))\n",
        "loss",
        "gradient is not finite",
    ),
}




@pytest.mark.parametrize(
    "case",
    sorted(BAD_SOURCES),
)
def test_bad_user_code_is_a_one_line_value_error(tmp_path, case):
    source, fn, words = BAD_SOURCES[case]
    path = write(tmp_path, source, f"bad_{case}.py")
    with pytest.raises(ValueError, match=words) as info:
        custom_loss_target(f"{path}:{fn}", 2)
    assert "\n" not in str(info.value)
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("/definitely/not/here.py:loss", "file not found: /definitely/not/here.py"),
        ("no_colon_at_all", "expected FILE.py:FUNCTION"),
        (":loss", "expected FILE.py:FUNCTION"),
        ("file.py:", "expected FILE.py:FUNCTION"),
    ],
)
def test_bad_specs(spec, words):
    with pytest.raises(ValueError, match=words) as info:
        custom_loss_target(spec, 2)
    assert "\n" not in str(info.value)


def test_a_folder_is_not_a_loss_file(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        load_function(f"{tmp_path}:loss")


def test_bad_dim_and_center(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ValueError, match="--dim must be a positive integer"):
        custom_loss_target(f"{path}:loss", 0)
    with pytest.raises(ValueError, match="--center has 3 coordinates but --dim is 2"):
        custom_loss_target(f"{path}:loss", 2, center=(0.0, 0.0, 0.0))


def test_check_loss_fn_accepts_a_good_loss():
    check_loss_fn(lambda x: jnp.sum(x**2), 3, jnp.ones(3))  # no exception
    with pytest.raises(ValueError, match="scalar"):
        check_loss_fn(lambda x: x, 3, jnp.ones(3))
