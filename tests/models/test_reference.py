"""Tests of models.reference.GibbsReference against scipy and closed forms."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import erf

from models.reference import GibbsReference

A = 100.0
CENTER = (-1.0, -1.0)


def cross(lam: float, a: float = A):
    """The cross potential a*min(x0^2, x1^2) + lam/2 |x - c|^2 (jax.numpy)."""

    def potential(x):
        x0, x1 = x[..., 0], x[..., 1]
        return a * jnp.minimum(x0**2, x1**2) + 0.5 * lam * (
            (x0 - CENTER[0]) ** 2 + (x1 - CENTER[1]) ** 2
        )

    return potential


def cross_scalar(x0: float, x1: float, lam: float, a: float = A) -> float:
    return a * min(x0 * x0, x1 * x1) + 0.5 * lam * ((x0 - CENTER[0]) ** 2 + (x1 - CENTER[1]) ** 2)


def scipy_log_integral(beta, lam, *, circle=None, rect=(-1.0, 1.0, -1.0, 1.0), shift0=(0.0, 0.0)):
    """log of int exp(-beta U) over a rectangle (optionally intersected with a disk).

    Nested scipy.integrate.quad with break points at the valleys, the diagonal
    kinks and where the kinks meet the disk; ``exp`` is shifted by ``beta*lam/2``
    (about the minimum of U) to avoid underflow.  ``shift0`` translates the
    potential: U(x - shift0).
    """
    a0, b0, a1, b1 = rect
    s0, s1 = shift0
    ref = 0.5 * lam

    def limits(x1):
        lo, hi = a0, b0
        if circle is not None:
            c0, c1, r = circle
            s = math.sqrt(max(r * r - (x1 - c1) ** 2, 0.0))
            lo, hi = max(lo, c0 - s), min(hi, c0 + s)
        return lo, hi

    def inner(x1):
        lo, hi = limits(x1)
        if hi <= lo:
            return 0.0
        d = abs(x1 - s1)
        pts = [p for p in (s0 - d, s0, s0 + d) if lo < p < hi]
        val, _ = quad(
            lambda x0: math.exp(-beta * (cross_scalar(x0 - s0, x1 - s1, lam) - ref)),
            lo,
            hi,
            points=pts or None,
            epsabs=0.0,
            epsrel=1e-13,
            limit=500,
        )
        return val

    pts = [s1]
    for corner in (a0, b0):  # where the diagonal kinks hit the inner limits
        pts += [s1 + (corner - s0), s1 - (corner - s0)]
    if circle is not None:
        c0, c1, r = circle
        a1, b1 = max(a1, c1 - r), min(b1, c1 + r)
        for sigma in (1.0, -1.0):  # kink x0 = s0 + sigma (x1 - s1) meets the circle
            d = s0 - sigma * s1 - c0
            disc = 2 * r * r - d * d
            if disc >= 0:
                pts += [c1 + (-sigma * d + sg * math.sqrt(disc)) / 2 for sg in (1.0, -1.0)]
        for edge in (a0, b0):  # circle meets the rectangle edges
            if abs(edge - c0) <= r:
                h = math.sqrt(r * r - (edge - c0) ** 2)
                pts += [c1 - h, c1 + h]
        if abs(s0 - c0) <= r:  # circle meets the vertical valley
            h = math.sqrt(r * r - (s0 - c0) ** 2)
            pts += [c1 - h, c1 + h]
    pts = sorted({p for p in pts if a1 < p < b1})
    val, _ = quad(inner, a1, b1, points=pts or None, epsabs=0.0, epsrel=1e-12, limit=500)
    return math.log(val) - beta * ref


def closed_form_normalizer(beta: float, a: float = A) -> float:
    """Z of a*min(x0^2, x1^2) on [-1, 1]^2: 8 int_0^1 (1 - t) exp(-k t^2) dt."""
    k = beta * a
    return 8.0 * (
        math.sqrt(math.pi) / (2 * math.sqrt(k)) * erf(math.sqrt(k)) + math.expm1(-k) / (2 * k)
    )


def closed_form_origin_disk(beta: float, r: float, a: float = A) -> float:
    """int over |x| < r of exp(-beta a min(x0^2, x1^2)) via the polar form."""
    k = beta * a

    def f(t):
        s2 = math.sin(t) ** 2
        return -math.expm1(-k * r * r * s2) / (2 * k * s2) if s2 > 0 else 0.5 * r * r

    val, _ = quad(f, 0.0, math.pi / 4, epsabs=0.0, epsrel=1e-13, limit=200)
    return 8.0 * val


_REFS: dict[tuple[float, float], GibbsReference] = {}


def cross_ref(lam: float, beta: float) -> GibbsReference:
    key = (lam, beta)
    if key not in _REFS:
        _REFS[key] = GibbsReference(cross(lam), beta=beta)
    return _REFS[key]


# --------------------------------------------------------------------- scipy


@pytest.mark.parametrize("beta", [20.0, 100.0])
@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_normalizer_matches_scipy(lam, beta):
    ref = cross_ref(lam, beta)
    expected = scipy_log_integral(beta, lam)
    assert abs(ref.log_normalizer - expected) < 1e-7  # relative error of Z
    assert ref.normalizer_error < 1e-9


@pytest.mark.parametrize("center", [(0.0, 0.0), (0.5, 0.0)])
@pytest.mark.parametrize("beta", [20.0, 100.0])
@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_disk_mass_matches_scipy(lam, beta, center):
    ref = cross_ref(lam, beta)
    radius = 0.1
    expected = math.exp(
        scipy_log_integral(beta, lam, circle=(*center, radius)) - scipy_log_integral(beta, lam)
    )
    got = ref.disk_mass(center, radius)
    assert got == pytest.approx(expected, rel=1e-6, abs=0.0)
    assert ref.occupancy(center, radius) == got


def test_scipy_reference_itself_is_converged():
    beta = 100.0
    assert math.exp(scipy_log_integral(beta, 0.0)) == pytest.approx(
        closed_form_normalizer(beta), rel=1e-11
    )


# --------------------------------------------------------------- closed forms


@pytest.mark.parametrize("beta", [20.0, 200.0])
def test_cross_lam0_closed_form(beta):
    ref = cross_ref(0.0, beta)
    z = closed_form_normalizer(beta)
    assert abs(ref.log_normalizer - math.log(z)) < 1e-9
    for radius in (0.003, 0.1, 0.5):
        expected = closed_form_origin_disk(beta, radius) / z
        assert ref.disk_mass((0.0, 0.0), radius) == pytest.approx(expected, rel=1e-9)
    # The whole box; a disk containing it.
    assert ref.disk_mass((0.0, 0.0), 1.5) == pytest.approx(1.0, abs=1e-12)
    # Quadrant symmetry and the symmetric cells.
    np.testing.assert_allclose(ref.cell_masses([-1, 0, 1], [-1, 0, 1]), 0.25, rtol=1e-10)


def test_mean_energy_cross_matches_scipy():
    beta, lam = 20.0, 5.0
    ref = cross_ref(lam, beta)
    z = math.exp(ref.log_normalizer)

    def inner(x1):
        d = abs(x1)
        return quad(
            lambda x0: cross_scalar(x0, x1, lam) * math.exp(-beta * cross_scalar(x0, x1, lam)),
            -1.0,
            1.0,
            points=[-d, 0.0, d] if d > 0 else [0.0],
            epsabs=0.0,
            epsrel=1e-12,
            limit=500,
        )[0]

    expected = quad(inner, -1.0, 1.0, points=[0.0], epsabs=0.0, epsrel=1e-11, limit=500)[0] / z
    assert ref.mean_energy() == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_quadratic_on_big_box(beta):
    ref = GibbsReference(lambda x: jnp.sum(x**2, axis=-1), beta=beta, box=(-12.0, 12.0))
    assert ref.log_normalizer == pytest.approx(math.log(math.pi / beta), abs=1e-10)
    assert ref.mean_energy() == pytest.approx(1.0 / beta, rel=1e-10)
    for r in (0.05, 0.5, 2.0):
        expected = -math.expm1(-beta * r * r)
        assert ref.disk_mass((0.0, 0.0), r) == pytest.approx(expected, rel=1e-10)
    # Off-center disk: compare with the polar integral of the Gaussian.
    center, r = np.array([1.0, 0.5]), 0.7
    rho = float(np.hypot(*center))

    def radial(s):
        # int over the angle of exp(-beta |c + s e|^2) in closed form (Bessel I0).
        from scipy.special import i0e

        return s * 2 * math.pi * math.exp(-beta * (s - rho) ** 2) * i0e(2 * beta * rho * s)

    expected = quad(radial, 0.0, r, epsabs=0.0, epsrel=1e-13)[0] * beta / math.pi
    assert ref.disk_mass(center, r) == pytest.approx(expected, rel=1e-9)


def test_constant_potential_areas():
    ref = GibbsReference(lambda x: jnp.zeros(x.shape[:-1]), beta=3.0, box=(-1.0, 1.0))
    area = 4.0
    assert ref.log_normalizer == pytest.approx(math.log(area), abs=1e-13)
    assert ref.mean_energy() == pytest.approx(0.0, abs=1e-14)
    r = 0.3
    assert ref.disk_mass((0.2, -0.1), r) == pytest.approx(math.pi * r * r / area, rel=1e-10)
    # Quarter disk at a corner, half disk on an edge.
    r = 0.5
    assert ref.disk_mass((1.0, 1.0), r) == pytest.approx(math.pi * r * r / 4 / area, rel=1e-10)
    assert ref.disk_mass((-1.0, 0.0), r) == pytest.approx(math.pi * r * r / 2 / area, rel=1e-10)
    # Disk crossing an edge: circle minus the circular segment beyond x0 = 1.
    c0, r = 0.8, 0.5
    d = 1.0 - c0
    segment = r * r * math.acos(d / r) - d * math.sqrt(r * r - d * d)
    assert ref.disk_mass((c0, 0.0), r) == pytest.approx(
        (math.pi * r * r - segment) / area, rel=1e-10
    )
    # Disks fully outside / covering the box.
    assert ref.disk_mass((3.0, 3.0), 0.5) == 0.0
    assert ref.disk_mass((0.0, 0.0), 2.0) == pytest.approx(1.0, abs=1e-13)
    # Cells: area fractions.
    e0, e1 = np.array([-1.0, -0.2, 0.5]), np.array([-0.5, 0.0, 0.25, 1.0])
    expected = np.outer(np.diff(e0), np.diff(e1)) / area
    np.testing.assert_allclose(ref.cell_masses(e0, e1), expected, rtol=1e-12)


# -------------------------------------------------------------- cells/density


@pytest.mark.parametrize(("lam", "beta"), [(0.0, 100.0), (5.0, 20.0)])
def test_cell_masses_sum_to_one_and_match_scipy(lam, beta):
    ref = cross_ref(lam, beta)
    edges = np.linspace(-1.0, 1.0, 21)
    masses = ref.cell_masses(edges, edges)
    assert masses.shape == (20, 20)
    assert np.all(masses >= 0)
    assert masses.sum() == pytest.approx(1.0, abs=1e-11)
    # Cells near the crossing (including ones that split a valley) vs scipy.
    log_z = scipy_log_integral(beta, lam)
    e0 = np.array([-0.1, -0.03, 0.0, 0.1])
    e1 = np.array([0.0, 0.1, 0.2])
    cells = ref.cell_masses(e0, e1)
    assert cells.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            rect = (e0[i], e0[i + 1], e1[j], e1[j + 1])
            expected = math.exp(scipy_log_integral(beta, lam, rect=rect) - log_z)
            assert cells[i, j] == pytest.approx(expected, rel=1e-8)
    # Consistency: the 20 x 20 cells aggregate to coarser cells.
    coarse = ref.cell_masses(edges[::2], edges[::2])
    np.testing.assert_allclose(
        masses.reshape(10, 2, 10, 2).sum(axis=(1, 3)), coarse, rtol=1e-9, atol=1e-15
    )


def test_cells_and_disks_agree_for_box_covering_disk():
    ref = cross_ref(5.0, 20.0)
    sub = ref.cell_masses([-1.0, 1.0], [-1.0, 1.0])
    assert sub.shape == (1, 1)
    assert sub[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert ref.disk_mass((0.0, 0.0), math.sqrt(2.0) + 1e-9) == pytest.approx(1.0, abs=1e-12)


def test_density_integrates_to_one_and_matches_potential():
    beta, lam = 20.0, 5.0
    ref = cross_ref(lam, beta)
    x = np.linspace(-1.0, 1.0, 2001)
    dens = ref.density(x, x)
    assert dens.shape == (2001, 2001)
    total = np.trapezoid(np.trapezoid(dens, x, axis=1), x)
    assert total == pytest.approx(1.0, abs=1e-3)
    # Pointwise value and the [i, j] <-> (x0[i], x1[j]) layout.
    x0, x1 = np.array([0.3, -0.02]), np.array([0.01, 0.5, 0.7])
    d = ref.density(x0, x1)
    for i in range(2):
        for j in range(3):
            expected = math.exp(-beta * cross_scalar(x0[i], x1[j], lam) - ref.log_normalizer)
            assert d[i, j] == pytest.approx(expected, rel=1e-12)
    assert ref.density([1.5], [0.0])[0, 0] == 0.0


# ----------------------------------------------------- potentials and breaks


def test_numpy_potential_and_float64_evaluation():
    beta, lam = 100.0, 5.0

    def np_cross(x):
        x = np.asarray(x)
        return A * np.minimum(x[..., 0] ** 2, x[..., 1] ** 2) + 0.5 * lam * (
            (x[..., 0] + 1.0) ** 2 + (x[..., 1] + 1.0) ** 2
        )

    ref_np = GibbsReference(np_cross, beta=beta)
    ref_jax = cross_ref(lam, beta)
    # float32 evaluation would differ at the 1e-5 level here.
    assert ref_np.log_normalizer == pytest.approx(ref_jax.log_normalizer, abs=1e-12)
    assert ref_np.mean_energy() == pytest.approx(ref_jax.mean_energy(), rel=1e-12)


def test_float32_potential_warns():
    with pytest.warns(RuntimeWarning, match="float32"):
        GibbsReference(lambda x: jnp.sum(x**2, axis=-1).astype(jnp.float32), beta=1.0)


def test_translated_breaks():
    beta, lam = 20.0, 5.0
    s0, s1 = 0.3, -0.2
    shifted = lambda x: cross(lam)(x - jnp.array([s0, s1]))  # noqa: E731
    ref = GibbsReference(shifted, beta=beta, breaks=((s0,), (s1,)))
    assert ref.log_normalizer == pytest.approx(
        scipy_log_integral(beta, lam, shift0=(s0, s1)), abs=1e-7
    )
    center, r = (s0, s1), 0.1
    expected = math.exp(
        scipy_log_integral(beta, lam, circle=(*center, r), shift0=(s0, s1)) - ref.log_normalizer
    )
    assert ref.disk_mass(center, r) == pytest.approx(expected, rel=1e-6)
    # Same break for both axes: translate the box instead of the potential.
    ref_box = GibbsReference(cross(lam), beta=beta, box=(-1.3, 0.7), breaks=(0.0,))
    ref_shift = GibbsReference(
        lambda x: cross(lam)(x - 0.3), beta=beta, box=(-1.0, 1.0), breaks=(0.3,)
    )
    assert ref_box.log_normalizer == pytest.approx(ref_shift.log_normalizer, abs=1e-10)


def test_valley_width_hint_is_accurate():
    beta = 200.0
    ref = GibbsReference(cross(0.0), beta=beta, valley_width=1 / math.sqrt(2 * beta * A))
    assert abs(ref.log_normalizer - math.log(closed_form_normalizer(beta))) < 1e-9


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta") as info:
        GibbsReference(cross(0.0), beta=beta)
    assert repr(beta) in str(info.value)


@pytest.mark.parametrize("box", [(1.0, -1.0), (0.5, 0.5), (0.0, float("inf"))])
def test_bad_box(box):
    with pytest.raises(ValueError, match="box") as info:
        GibbsReference(cross(0.0), beta=1.0, box=box)
    assert any(repr(v) in str(info.value) for v in box)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"order": 2}, "order"),
        ({"valley_width": 0.0}, "valley_width"),
        ({"max_panel": -1.0}, "max_panel"),
        ({"breaks": (float("nan"),)}, "breaks"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_options(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        GibbsReference(cross(0.0), beta=1.0, **kwargs)


def test_bad_potential_values():
    def log_potential(x):
        return jnp.log(x[..., 0] + 0.5)  # nan / -inf for x0 <= -0.5

    with pytest.raises(ValueError, match="non-finite value"):
        GibbsReference(log_potential, beta=1.0)
    with pytest.raises(ValueError, match="output shape"):
        GibbsReference(lambda x: x, beta=1.0)
    with pytest.raises(ValueError, match="callable"):
        GibbsReference(3.0, beta=1.0)


@pytest.mark.parametrize("radius", [0.0, -0.1, float("nan")])
def test_bad_radius(radius):
    ref = cross_ref(0.0, 20.0)
    with pytest.raises(ValueError, match="radius") as info:
        ref.disk_mass((0.0, 0.0), radius)
    assert repr(radius) in str(info.value)
    with pytest.raises(ValueError, match="radius"):
        ref.occupancy((0.0, 0.0), radius)


def test_bad_center_edges_and_coordinates():
    ref = cross_ref(0.0, 20.0)
    with pytest.raises(ValueError, match="center"):
        ref.disk_mass((0.0, 0.0, 0.0), 0.1)
    with pytest.raises(ValueError, match="center"):
        ref.disk_mass((float("nan"), 0.0), 0.1)
    with pytest.raises(ValueError, match="edges0"):
        ref.cell_masses([0.0, -0.5], [0.0, 0.5])
    with pytest.raises(ValueError, match=r"edges1 must lie in the box .*1\.5"):
        ref.cell_masses([0.0, 0.5], [0.0, 1.5])
    with pytest.raises(ValueError, match="edges0"):
        ref.cell_masses([0.0], [0.0, 0.5])
    with pytest.raises(ValueError, match="x0"):
        ref.density(np.zeros((2, 2)), [0.0])


def test_normal_crossing_normalizer():
    """U = x0^2 x1^2 (smooth, valleys widening toward the origin) with default hints."""
    beta = 200.0

    def row(t):  # int_{-1}^{1} exp(-beta t^2 x0^2) dx0 / 2
        return math.sqrt(math.pi / beta) * erf(math.sqrt(beta) * t) / (2 * t) if t > 0 else 1.0

    z = 4 * quad(row, 0.0, 1.0, epsabs=0.0, epsrel=1e-13, limit=200)[0]
    ref = GibbsReference(lambda x: x[..., 0] ** 2 * x[..., 1] ** 2, beta=beta)
    assert abs(ref.log_normalizer - math.log(z)) < 1e-10
