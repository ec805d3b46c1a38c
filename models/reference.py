"""Exact Gibbs reference quantities for 2-D potentials on a square box.

The density is ``p(x) = exp(-beta * U(x)) / Z`` restricted to the box
``[lo, hi]^2``.  All quantities are computed by deterministic composite
Gauss-Legendre quadrature on meshes that are geometrically graded toward the
lines where the density has narrow valleys or is not smooth, refined
adaptively where needed, so that they can serve as ground truth (relative
accuracy ~1e-10 in typical use) for measuring sampler bias near singular
points.

Integration scheme
------------------
Every integral is an iterated integral
``int dx1 int_{L(x1)}^{U(x1)} dx0 exp(-beta U(x0, x1))``.

* The **inner** (``x0``) integral of every row ``x1`` is split at the valley
  lines ``x0 = b0`` (``b0`` in the axis-0 breaks), at the diagonal kink points
  ``x0 = b0 +/- (x1 - b1)`` (where ``|x0 - b0| = |x1 - b1|``: the kinks of
  e.g. ``min(x0**2, x1**2)``), at cell edges and at its limits (box, cell or
  disk boundary).
* The **outer** (``x1``) integral is split at the valley lines ``x1 = b1``,
  at every ``x1`` where two of the inner break curves meet (kink/box edge,
  kink/valley, circle/valley, circle/kink, circle/box edge, kink/cell edge),
  at the top and bottom of a disk and at cell edges: there the row integral
  has kinks, square-root end behaviour or step-like features.
* Around each break point ``p`` of a valley, kink or disk top/bottom, panel
  end points ``p +/- min_panel * 5**k`` (``k = 0, 1, ...``) are inserted: a
  geometric mesh of ratio 1/5 from ``min_panel`` up to the box size.  With
  Gauss-Legendre order 16 a panel ``[d, 5 d]`` integrates a function that is
  analytic except at distance ``d`` to ~1e-13, so valleys of any width
  ``>~ min_panel`` and point singularities are resolved.  No initial panel is
  longer than ``max_panel``.
* Each panel is then checked with an error estimate from its last two
  Legendre coefficients (computed from the same Gauss nodes); panels whose
  estimate exceeds ``1e-12`` of their row (or cell, or disk) total, and
  ``1e-15`` of the box normalizer, are bisected until they pass.  This
  handles smooth but steep parts of the density (e.g. the flanks of valleys
  inside small cells or disks away from a valley).

The potential is evaluated vectorized on large node batches in float64.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.polynomial.legendre import leggauss, legvander

__all__ = ["GibbsReference"]

#: Ratio between the sizes of successive panels of the geometric grading.
_GRADING_FACTOR = 5.0
#: Default smallest graded panel relative to the box size (``valley_width`` unset).
_DEFAULT_MIN_PANEL_REL = 1e-6
#: Default largest initial panel relative to the box size (``max_panel`` unset).
_DEFAULT_MAX_PANEL_REL = 1.0 / 32.0
#: Panel error tolerance relative to the total of its row / cell / disk.
_RTOL = 1e-12
#: Panel error tolerance relative to the box normalizer (summed over panels).
_ATOL_REL = 1e-15
#: Maximal number of bisection rounds.
_MAX_ROUNDS = 40
#: Relative normalizer error estimate above which a warning is emitted.
_WARN_REL_ERROR = 1e-8
#: Number of quadrature nodes per potential-evaluation chunk (inner integrals).
_CHUNK_NODES = 2**20


def _x64_context() -> contextlib.AbstractContextManager[Any]:
    """Return a context manager enabling float64 in JAX (no-op without JAX)."""
    try:
        import jax
    except ImportError:  # pragma: no cover - jax is a project dependency
        return contextlib.nullcontext()
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        try:
            return enable(True)
        except TypeError:  # pragma: no cover - very old JAX
            pass
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()  # pragma: no cover


def _as_finite_float(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _parse_breaks(breaks: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted break coordinates of axis 0 and axis 1."""
    items = [breaks] if np.ndim(breaks) == 0 else list(breaks)
    try:
        ndims = [np.ndim(b) for b in items]
    except (TypeError, ValueError):  # pragma: no cover - ragged input
        ndims = [-1]
    if len(items) == 2 and ndims == [1, 1]:
        per_axis = [items[0], items[1]]
    elif all(d == 0 for d in ndims):
        per_axis = [items, items]
    else:
        raise ValueError(
            "breaks must be a sequence of floats (used for both axes) or a pair "
            f"of such sequences (one per axis), got {breaks!r}"
        )
    out = []
    for axis_breaks in per_axis:
        try:
            arr = np.asarray(axis_breaks, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"breaks must contain real numbers, got {breaks!r}") from None
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"breaks must be finite, got {breaks!r}")
        out.append(np.unique(arr))
    return out[0], out[1]


def _check_edges(name: str, edges: Any, lo: float, hi: float) -> np.ndarray:
    try:
        arr = np.asarray(edges, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of floats, got {edges!r}") from None
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be 1-D with at least 2 entries, got {edges!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {edges!r}")
    if not np.all(np.diff(arr) > 0):
        raise ValueError(f"{name} must be strictly increasing, got {edges!r}")
    if arr[0] < lo or arr[-1] > hi:
        raise ValueError(
            f"{name} must lie in the box [{lo}, {hi}], got range [{arr[0]}, {arr[-1]}]"
        )
    return arr


def _group_sum(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the rows of ``values`` (shape ``(p,)`` or ``(p, k)``) per group."""
    if values.ndim == 1:
        return np.bincount(groups, weights=values, minlength=n_groups)
    out = np.zeros((n_groups, values.shape[1]))
    np.add.at(out, groups, values)
    return out


class GibbsReference:
    """Exact reference quantities of a 2-D Gibbs density on a square box.

    The (unnormalized) density is ``exp(-beta * U(x))`` on ``[lo, hi]^2`` and
    zero outside.  Integrals are computed with composite Gauss-Legendre
    quadrature on meshes graded toward the hinted valley lines and the
    diagonal kink lines through their crossings, with adaptive bisection of
    panels that fail an error check (see the module docstring).

    Parameters
    ----------
    potential : callable
        ``potential(x)`` maps an array of shape ``(..., 2)`` to shape ``(...)``.
        It may use ``jax.numpy`` (it is evaluated with JAX's float64 mode
        enabled) or NumPy.  It is called on float64 NumPy arrays of shape
        ``(n, 2)``.
    beta : float
        Inverse temperature, ``> 0``.
    box : tuple of float, optional
        ``(lo, hi)``; the domain is ``[lo, hi]^2``.  Default ``(-1.0, 1.0)``.
    breaks : tuple of float, or pair of tuples of float, optional
        Coordinates of the lines along which the density has narrow valleys
        or is not smooth: ``(b, ...)`` means the lines ``x0 = b`` and
        ``x1 = b``; a pair ``((b0, ...), (b1, ...))`` gives the lines
        ``x0 = b0`` and ``x1 = b1`` separately.  Default ``(0.0,)``: the two
        axes.  Breaks outside the box are harmless.
    order : int, optional
        Gauss-Legendre nodes per panel, ``>= 6``.  Default 16.
    valley_width : float or None, optional
        Width of the narrowest valley (for an ``a * x0**2`` valley,
        ``1 / sqrt(2 * beta * a)``).  The graded mesh goes down to panels of
        ``valley_width / 4``.  Default ``None``: down to ``1e-6 * (hi - lo)``,
        which resolves any valley wider than ~1e-6 of the box at a small
        cost (the grading is geometric, about 9 panels per side of a break).
    max_panel : float or None, optional
        Largest initial panel length (adaptive bisection may refine further).
        Default ``None``: ``(hi - lo) / 32``.
    diagonal_kinks : bool, optional
        Also break at the diagonals ``|x0 - b0| = |x1 - b1|`` through every
        crossing ``(b0, b1)`` of break lines.  Default ``True``.
    batch_size : int, optional
        Points per potential call.  Default ``2**18``.

    Attributes
    ----------
    log_normalizer : float
        ``log Z`` with ``Z = int_box exp(-beta U(x)) dx``.
    normalizer_error : float
        Estimated relative error of ``Z``: the sum of the panel error
        estimates (a warning is emitted above 1e-8).  The estimates are
        reliable for the hinted features; a kink that is not hinted and lies
        close to a panel end can be missed by them (the result is then
        typically still accurate to ~1e-8).
    beta : float
        The inverse temperature.
    box : tuple of float
        ``(lo, hi)``.
    breaks : tuple of numpy.ndarray
        Break coordinates of axis 0 and of axis 1.

    Raises
    ------
    ValueError
        For invalid arguments (``beta <= 0``, ``lo >= hi``, ...) and when the
        potential returns non-finite values or a wrong shape.

    Notes
    -----
    Relative accuracy is about 1e-12 for the normalizer, the mean energy and
    for disk and cell masses above ~1e-9; smaller masses are accurate to about
    1e-15 of the total mass (absolute).  The constructor evaluates the
    potential on a few million points (well under a second for simple
    potentials); a disk or cell query a few million at most.  A JAX-traceable
    potential is ``jax.jit``-compiled on fixed batch shapes.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> def cross(x):
    ...     return 100.0 * jnp.minimum(x[..., 0] ** 2, x[..., 1] ** 2)
    >>> ref = GibbsReference(cross, beta=200.0)
    >>> round(ref.disk_mass((0.0, 0.0), 1.5), 12)
    1.0
    """

    def __init__(
        self,
        potential: Callable[[Any], Any],
        *,
        beta: float,
        box: tuple[float, float] = (-1.0, 1.0),
        breaks: tuple[float, ...] | tuple[tuple[float, ...], tuple[float, ...]] = (0.0,),
        order: int = 16,
        valley_width: float | None = None,
        max_panel: float | None = None,
        diagonal_kinks: bool = True,
        batch_size: int = 2**18,
    ) -> None:
        if not callable(potential):
            raise ValueError(f"potential must be callable, got {potential!r}")
        beta_f = _as_finite_float("beta", beta)
        if beta_f <= 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        try:
            lo_raw, hi_raw = box
        except (TypeError, ValueError):
            raise ValueError(f"box must be a pair (lo, hi), got {box!r}") from None
        lo = _as_finite_float("box[0]", lo_raw)
        hi = _as_finite_float("box[1]", hi_raw)
        if not lo < hi:
            raise ValueError(f"box must satisfy lo < hi, got box={box!r}")
        if isinstance(order, bool) or not isinstance(order, numbers.Integral):
            raise ValueError(f"order must be an integer, got {order!r}")
        if order < 6:
            raise ValueError(f"order must be >= 6, got {order!r}")
        width = hi - lo
        if valley_width is None:
            min_panel = _DEFAULT_MIN_PANEL_REL * width
        else:
            vw = _as_finite_float("valley_width", valley_width)
            if vw <= 0:
                raise ValueError(f"valley_width must be > 0, got {valley_width!r}")
            min_panel = min(vw / 4.0, width)
        if max_panel is None:
            max_panel_f = _DEFAULT_MAX_PANEL_REL * width
        else:
            max_panel_f = _as_finite_float("max_panel", max_panel)
            if max_panel_f <= 0:
                raise ValueError(f"max_panel must be > 0, got {max_panel!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise ValueError(f"batch_size must be an integer, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")

        self._potential = potential
        self.beta = beta_f
        self.box = (lo, hi)
        self.breaks = _parse_breaks(breaks)
        self._min_panel = float(min_panel)
        self._batch_size = int(batch_size)
        self._grid = np.linspace(lo, hi, max(1, math.ceil(width / max_panel_f - 1e-9)) + 1)
        self._warned_dtype = False
        self._jitted: Any = None

        # Gauss-Legendre rule and the map from node values to the last two
        # Legendre coefficients (for the error estimate).
        self._gx, self._gw = leggauss(int(order))
        k = np.arange(order - 2, order)
        self._tail = legvander(self._gx, order - 1)[:, -2:] * self._gw[:, None] * (2 * k + 1) / 2

        # Inner break "lines" x0 = alpha + sigma * x1 with sigma in {0, 1, -1}.
        b0s, b1s = self.breaks
        self._valley_lines = [(float(b0), 0.0) for b0 in b0s]
        kinks = []
        if diagonal_kinks:
            kinks = [
                (float(b0 - sigma * b1), sigma) for b0 in b0s for b1 in b1s for sigma in (1.0, -1.0)
            ]
        self._kink_lines = kinks
        kink_arr = np.asarray(kinks, dtype=float).reshape(-1, 2)
        self._kink_alpha = kink_arr[:, 0]
        self._kink_sigma = kink_arr[:, 1]

        # Pass 1 (initial mesh only): energy shift and scale of the normalizer.
        full = {
            "outer": (lo, hi),
            "inner": (lo, hi),
            "circle": None,
            "edges0": None,
            "edges1": None,
        }
        self._shift, rough = self._rough_pass(full)
        if not rough > 0:
            raise ValueError(
                "the integral of exp(-beta*U) over the box is not positive "
                f"({rough!r}); check the potential and beta={beta!r}"
            )
        self._atol = _ATOL_REL * rough
        # Pass 2: adaptive refinement.
        res, err, exhausted = self._integrate(**full, with_energy=True)
        s_box = float(res[0, 0, 0])
        self._box_sum = s_box
        self.log_normalizer = float(-self._shift + math.log(s_box))
        self.normalizer_error = float(err / s_box)
        self._mean_energy = float(res[0, 0, 1] / s_box)
        if self.normalizer_error > _WARN_REL_ERROR or exhausted:
            warnings.warn(
                "GibbsReference: estimated relative error of the normalizer is "
                f"{self.normalizer_error:.3g} (refinement exhausted: {exhausted}); the "
                "potential may have sharp features not covered by `breaks`, "
                "`valley_width` or `max_panel`",
                RuntimeWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------ public

    @classmethod
    def from_target(cls, target, **options) -> GibbsReference:
        """The exact reference of a 2-D :class:`~models.target.Target` on a box.

        The target's loss takes one flat position; it is vectorized here, and
        the quadrature breaks at the target's singular point (the valleys of
        a singular potential cross there).
        """
        import jax.numpy as jnp

        if target.dim != 2 or target.box is None or target.loss_fn is None:
            raise ValueError(
                f"an exact reference needs a 2-D loss on a box; {target.name} has dim "
                f"{target.dim}, box {target.box}"
            )
        if target.singular_point is not None and "breaks" not in options:
            c0, c1 = (float(c) for c in target.singular_point)
            options["breaks"] = ((c0,), (c1,))
        potential = jnp.vectorize(target.loss_fn, signature="(n)->()")
        return cls(potential, beta=target.beta, box=(target.box.low, target.box.high), **options)

    def disk_mass(self, center: Sequence[float] | np.ndarray, radius: float) -> float:
        """Probability of the disk ``|x - center| < radius``.

        Parameters
        ----------
        center : array_like, shape (2,)
            Center of the disk (may lie outside the box).
        radius : float
            Radius, ``> 0``.

        Returns
        -------
        float
            ``P(|x - center| < radius)`` under the normalized density on the
            box; only the part of the disk inside the box counts.

        Raises
        ------
        ValueError
            If ``radius <= 0`` or ``center`` is not a finite pair.
        """
        try:
            c = np.asarray(center, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"center must be a pair of floats, got {center!r}") from None
        if c.shape != (2,) or not np.all(np.isfinite(c)):
            raise ValueError(f"center must be a finite pair of floats, got {center!r}")
        r = _as_finite_float("radius", radius)
        if r <= 0:
            raise ValueError(f"radius must be > 0, got {radius!r}")
        lo, hi = self.box
        a1, b1 = max(lo, c[1] - r), min(hi, c[1] + r)
        a0, b0 = max(lo, c[0] - r), min(hi, c[0] + r)
        if not (a1 < b1 and a0 < b0):
            return 0.0
        res, _, _ = self._integrate(
            outer=(a1, b1),
            inner=(a0, b0),
            circle=(float(c[0]), float(c[1]), r),
            edges0=None,
            edges1=None,
            with_energy=False,
        )
        return float(min(max(res[0, 0, 0] / self._box_sum, 0.0), 1.0))

    def occupancy(self, center: Sequence[float] | np.ndarray, radius: float) -> float:
        """Occupancy of the disk ``|x - center| < radius``.

        The occupancy is the probability that a sample of the Gibbs density on
        the box lies in the disk; identical to :meth:`disk_mass`.

        Parameters
        ----------
        center : array_like, shape (2,)
            Center of the disk.
        radius : float
            Radius, ``> 0``.

        Returns
        -------
        float
            Probability mass of the part of the disk inside the box.
        """
        return self.disk_mass(center, radius)

    def mean_energy(self) -> float:
        """Mean potential energy ``E[U]`` under the normalized density.

        Returns
        -------
        float
            ``int_box U exp(-beta U) dx / Z``.
        """
        return self._mean_energy

    def cell_masses(
        self, edges0: Sequence[float] | np.ndarray, edges1: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Exact probability masses of the cells of a rectangular grid.

        Parameters
        ----------
        edges0, edges1 : array_like, 1-D
            Strictly increasing cell edges along ``x0`` and ``x1``; they must
            lie in the box (they need not cover it).

        Returns
        -------
        numpy.ndarray, shape (len(edges0) - 1, len(edges1) - 1)
            Entry ``[i, j]`` is the probability of the cell
            ``[edges0[i], edges0[i+1]] x [edges1[j], edges1[j+1]]``, integrated
            (not density times area).

        Raises
        ------
        ValueError
            If the edges are not finite and strictly increasing, have fewer
            than two entries or leave the box.
        """
        lo, hi = self.box
        e0 = _check_edges("edges0", edges0, lo, hi)
        e1 = _check_edges("edges1", edges1, lo, hi)
        res, _, _ = self._integrate(
            outer=(float(e1[0]), float(e1[-1])),
            inner=(float(e0[0]), float(e0[-1])),
            circle=None,
            edges0=e0,
            edges1=e1,
            with_energy=False,
        )
        # res has shape (n1 cells, n0 cells, 1).
        return np.ascontiguousarray(res[:, :, 0].T) / self._box_sum

    def density(
        self, x0: Sequence[float] | np.ndarray, x1: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Normalized density on the grid spanned by ``x0`` and ``x1``.

        Parameters
        ----------
        x0, x1 : array_like, 1-D
            Coordinates along each axis.

        Returns
        -------
        numpy.ndarray, shape (len(x0), len(x1))
            Entry ``[i, j]`` is ``exp(-beta U(x0[i], x1[j])) / Z``; zero
            outside the box.

        Raises
        ------
        ValueError
            If the coordinates are not finite 1-D arrays.
        """
        arrs = []
        for name, v in (("x0", x0), ("x1", x1)):
            try:
                a = np.asarray(v, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a 1-D array of floats, got {v!r}") from None
            if a.ndim != 1 or not np.all(np.isfinite(a)):
                raise ValueError(f"{name} must be a finite 1-D array, got {v!r}")
            arrs.append(a)
        g0, g1 = np.meshgrid(arrs[0], arrs[1], indexing="ij")
        lo, hi = self.box
        inside = (g0 >= lo) & (g0 <= hi) & (g1 >= lo) & (g1 <= hi)
        out = np.zeros(g0.shape)
        if np.any(inside):
            u = self._eval_potential(g0[inside], g1[inside])
            out[inside] = np.exp(-self.beta * u - self.log_normalizer)
        return out

    # ----------------------------------------------------------------- private

    def _call_potential(self, pts: np.ndarray) -> Any:
        """Call the potential, jit-compiled when it is traceable by JAX.

        Batches are padded to a few fixed sizes (see :meth:`_eval_potential`),
        so JAX compiles only a handful of shapes.  Potentials that cannot be
        traced (plain NumPy code) are called directly.
        """
        if self._jitted is None:
            self._jitted = False
            try:
                import jax

                candidate = jax.jit(self._potential)
                out = candidate(pts)
                self._jitted = candidate
                return out
            except Exception:  # noqa: BLE001 - not traceable: call it directly
                self._jitted = False
        if self._jitted is not False:
            return self._jitted(pts)
        return self._potential(pts)

    def _eval_potential(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        """Evaluate the potential in float64 on flat coordinate arrays."""
        n = x0.size
        out = np.empty(n)
        with _x64_context():
            for start in range(0, n, self._batch_size):
                stop = min(n, start + self._batch_size)
                m = stop - start
                size = min(self._batch_size, max(1024, 1 << (m - 1).bit_length()))
                pts = np.empty((size, 2))
                pts[:m, 0] = x0[start:stop]
                pts[:m, 1] = x1[start:stop]
                pts[m:] = pts[0]
                arr = np.asarray(self._call_potential(pts))
                if arr.shape != (size,):
                    raise ValueError(
                        "potential must map shape (n, 2) to (n,), got output shape "
                        f"{arr.shape} for input shape {pts.shape}"
                    )
                arr = arr[:m]
                pts = pts[:m]
                if arr.dtype != np.float64 and not self._warned_dtype:
                    self._warned_dtype = True
                    warnings.warn(
                        f"GibbsReference: the potential returned dtype {arr.dtype}, not "
                        "float64; the reference values are limited by its precision",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                arr = arr.astype(np.float64, copy=False)
                bad = ~np.isfinite(arr)
                if np.any(bad):
                    i = int(np.argmax(bad))
                    raise ValueError(
                        f"potential returned a non-finite value {arr[i]!r} at "
                        f"x=({pts[i, 0]!r}, {pts[i, 1]!r})"
                    )
                out[start:stop] = arr
        return out

    def _ladder(self, min_panel: float) -> np.ndarray:
        """Signed offsets ``0, +/- min_panel * 5**k`` reaching past the box size."""
        span = self.box[1] - self.box[0]
        n = max(
            1, math.ceil(math.log(max(span, min_panel) / min_panel) / math.log(_GRADING_FACTOR)) + 1
        )
        pos = min_panel * _GRADING_FACTOR ** np.arange(n)
        return np.concatenate([-pos[::-1], [0.0], pos])

    def _outer_points(
        self,
        outer: tuple[float, float],
        inner: tuple[float, float],
        circle: tuple[float, float, float] | None,
        edges0: np.ndarray | None,
        edges1: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Graded and plain break points of the outer (``x1``) integral."""
        graded: list[float] = list(self.breaks[1])
        plain: list[float] = []
        lines = self._valley_lines + self._kink_lines + [(inner[0], 0.0), (inner[1], 0.0)]
        for i, (al1, s1) in enumerate(lines):
            for al2, s2 in lines[i + 1 :]:
                if s1 != s2:
                    graded.append((al2 - al1) / (s1 - s2))
        if edges0 is not None:
            for al, s in self._kink_lines:
                plain.extend(((edges0 - al) / s).tolist())
        if edges1 is not None:
            plain.extend(edges1.tolist())
        if circle is not None:
            c0, c1, r = circle
            graded.extend([c1 - r, c1 + r])
            for al, s in lines:
                # Solve (al + s x1 - c0)^2 + (x1 - c1)^2 = r^2 for x1.
                d = al - c0
                qa = s * s + 1.0
                qb = 2.0 * (s * d - c1)
                qc = d * d + c1 * c1 - r * r
                disc = qb * qb - 4.0 * qa * qc
                if disc >= 0:
                    sq = math.sqrt(disc)
                    graded.extend([(-qb - sq) / (2 * qa), (-qb + sq) / (2 * qa)])
        a, b = outer

        def _clean(pts: list[float]) -> np.ndarray:
            arr = np.asarray(pts, dtype=float)
            arr = arr[np.isfinite(arr)]
            return np.unique(arr[(arr >= a) & (arr <= b)])

        return _clean(graded), _clean(plain)

    def _panels(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        graded: np.ndarray,
        plain: np.ndarray,
        ladder: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Non-empty initial panels of many rows.

        ``lower``/``upper`` have shape ``(rows,)``, ``graded`` shape
        ``(rows, g)`` and ``plain`` shape ``(p,)``.  Returns flat arrays of the
        row index, left end and half length of every non-empty panel.
        """
        rows = lower.shape[0]
        pts = [lower[:, None], upper[:, None], np.broadcast_to(self._grid, (rows, self._grid.size))]
        if graded.shape[-1]:
            pts.append((graded[:, :, None] + ladder).reshape(rows, -1))
        if plain.size:
            pts.append(np.broadcast_to(plain, (rows, plain.size)))
        allp = np.clip(np.concatenate(pts, axis=1), lower[:, None], upper[:, None])
        allp.sort(axis=1)
        left = allp[:, :-1]
        half = 0.5 * (allp[:, 1:] - left)
        keep = half > 0
        return np.nonzero(keep)[0], left[keep], half[keep]

    def _error(self, vals: np.ndarray, half: np.ndarray) -> np.ndarray:
        """Panel error estimate from the last two Legendre coefficients.

        ``vals`` has shape ``(p, order)`` or ``(p, order, k)``.  With
        ``t = |c_{n-2}| + |c_{n-1}|`` (interpolation error scale) and
        ``m = max |f|`` on the panel, the estimate is ``2 h t min(1, t / m)``:
        an ``n``-point Gauss rule converges about twice as fast as the
        interpolant, so the relative tail is squared.  Rounding noise of the
        values (e.g. of inner integrals) therefore does not trigger bisection.
        """
        if vals.ndim == 2:
            tail = np.abs(vals @ self._tail).sum(axis=-1)
            scale = np.max(np.abs(vals), axis=1)
        else:
            tail = np.abs(np.einsum("pnk,nc->pkc", vals, self._tail)).sum(axis=-1)
            scale = np.max(np.abs(vals), axis=1)
            half = half[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(scale > 0, np.minimum(1.0, tail / scale), 0.0)
        return 2.0 * half * tail * ratio

    def _rough_pass(self, domain: dict[str, Any]) -> tuple[float, float]:
        """Non-adaptive pass over the initial mesh of ``domain``.

        Returns the minimum of ``beta * U`` on the nodes (used as the shift
        of all Boltzmann factors, against overflow) and the integral of the
        shifted Boltzmann factor (used to scale the absolute tolerance).
        """
        ladder = self._ladder(self._min_panel)
        g_out, p_out = self._outer_points(**domain)
        a1, b1 = domain["outer"]
        _, left, half = self._panels(np.array([a1]), np.array([b1]), g_out[None, :], p_out, ladder)
        x1 = ((left + half)[:, None] + half[:, None] * self._gx).reshape(-1)
        w1 = (half[:, None] * self._gw).reshape(-1)
        weights, beta_u = [], []
        step = 64
        for start in range(0, x1.size, step):
            rows = x1[start : start + step]
            row, il, ih = self._initial_inner_panels(rows, domain, ladder)
            x0 = ((il + ih)[:, None] + ih[:, None] * self._gx).reshape(-1)
            u = self._eval_potential(x0, np.repeat(rows[row], self._gx.size))
            beta_u.append(self.beta * u)
            weights.append(((ih * w1[start : start + step][row])[:, None] * self._gw).reshape(-1))
        bu = np.concatenate(beta_u)
        shift = float(np.min(bu))
        return shift, float(np.sum(np.concatenate(weights) * np.exp(-(bu - shift))))

    def _inner_limits(
        self, x1: np.ndarray, domain: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        a0, b0 = domain["inner"]
        lower = np.full(x1.shape, float(a0))
        upper = np.full(x1.shape, float(b0))
        circle = domain["circle"]
        if circle is not None:
            c0, c1, r = circle
            s = np.sqrt(np.maximum(r * r - (x1 - c1) ** 2, 0.0))
            lower = np.maximum(lower, c0 - s)
            upper = np.maximum(np.minimum(upper, c0 + s), lower)
        return lower, upper

    def _initial_inner_panels(
        self, x1: np.ndarray, domain: dict[str, Any], ladder: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lower, upper = self._inner_limits(x1, domain)
        graded = np.concatenate(
            [
                np.broadcast_to(self.breaks[0], (x1.size, self.breaks[0].size)),
                self._kink_alpha[None, :] + self._kink_sigma[None, :] * x1[:, None],
            ],
            axis=1,
        )
        edges0 = domain["edges0"]
        plain = edges0 if edges0 is not None else np.zeros(0)
        return self._panels(lower, upper, graded, plain, ladder)

    def _inner(
        self,
        x1: np.ndarray,
        domain: dict[str, Any],
        ladder: np.ndarray,
        *,
        with_energy: bool,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Inner integrals of rows ``x1``.

        Returns the integrals, shape ``(rows, n_cells0, c)`` (``c`` is 2 with
        the energy moment, else 1), the summed error estimates per row and
        whether the refinement limit was hit.
        """
        edges0 = domain["edges0"]
        n_rows = x1.size
        n_cells = edges0.size - 1 if edges0 is not None else 1
        n_comp = 2 if with_energy else 1
        n_groups = n_rows * n_cells
        row, left, half = self._initial_inner_panels(x1, domain, ladder)
        if edges0 is not None:
            cell = np.clip(np.searchsorted(edges0, left + half, side="right") - 1, 0, n_cells - 1)
        else:
            cell = np.zeros(row.size, dtype=np.int64)
        out = np.zeros((n_groups, n_comp))
        err = np.zeros(n_groups)
        atol_density = self._atol / (self.box[1] - self.box[0]) ** 2
        min_half = 1e-15 * (self.box[1] - self.box[0])
        exhausted = False
        for rnd in range(_MAX_ROUNDS):
            if row.size == 0:
                break
            nodes = (left + half)[:, None] + half[:, None] * self._gx
            u = self._eval_potential(nodes.reshape(-1), np.repeat(x1[row], self._gx.size))
            u = u.reshape(nodes.shape)
            f = np.exp(-(self.beta * u - self._shift))
            q = half * (f @ self._gw)
            groups = row * n_cells + cell
            e = self._error(f, half)
            total = out[:, 0] + _group_sum(groups, q, n_groups)
            tol = np.maximum(_RTOL * np.abs(total[groups]), atol_density * 2.0 * half)
            ok = (e <= tol) | (half <= min_half)
            if rnd == _MAX_ROUNDS - 1 and not np.all(ok):
                exhausted = True
                ok[:] = True
            g_ok = groups[ok]
            out[:, 0] += _group_sum(g_ok, q[ok], n_groups)
            if with_energy:
                out[:, 1] += _group_sum(g_ok, half[ok] * ((u[ok] * f[ok]) @ self._gw), n_groups)
            err += _group_sum(g_ok, e[ok], n_groups)
            bad = ~ok
            h2 = 0.5 * half[bad]
            left = np.concatenate([left[bad], left[bad] + 2.0 * h2])
            half = np.concatenate([h2, h2])
            row = np.concatenate([row[bad], row[bad]])
            cell = np.concatenate([cell[bad], cell[bad]])
        err_rows = err.reshape(n_rows, n_cells).sum(axis=1)
        return out.reshape(n_rows, n_cells, n_comp), err_rows, exhausted

    def _integrate(
        self,
        *,
        outer: tuple[float, float],
        inner: tuple[float, float],
        circle: tuple[float, float, float] | None,
        edges0: np.ndarray | None,
        edges1: np.ndarray | None,
        with_energy: bool,
    ) -> tuple[np.ndarray, float, bool]:
        """Iterated integral of the shifted Boltzmann factor over a domain.

        Returns the integrals per (outer cell, inner cell, component), shape
        ``(n_cells1, n_cells0, c)``, the summed error estimate and whether the
        refinement limit was hit.
        """
        domain = {
            "outer": outer,
            "inner": inner,
            "circle": circle,
            "edges0": edges0,
            "edges1": edges1,
        }
        min_panel = self._min_panel
        if circle is not None:
            # Resolve the square-root behaviour at the top/bottom of small disks.
            min_panel = min(min_panel, 2e-6 * circle[2])
        ladder = self._ladder(min_panel)
        n = self._gx.size
        n_cells0 = edges0.size - 1 if edges0 is not None else 1
        n_cells1 = edges1.size - 1 if edges1 is not None else 1
        n_comp = 2 if with_energy else 1
        width = self.box[1] - self.box[0]
        atol_length = self._atol / width
        min_half = 1e-15 * width

        g_out, p_out = self._outer_points(outer, inner, circle, edges0, edges1)
        _, left, half = self._panels(
            np.array([outer[0]]), np.array([outer[1]]), g_out[None, :], p_out, ladder
        )
        if edges1 is not None:
            cell = np.clip(np.searchsorted(edges1, left + half, side="right") - 1, 0, n_cells1 - 1)
        else:
            cell = np.zeros(left.size, dtype=np.int64)
        # Rows per inner call so that the initial inner nodes fit a chunk.
        per_row = 3 + self._grid.size + (self.breaks[0].size + self._kink_alpha.size) * ladder.size
        per_row += edges0.size if edges0 is not None else 0
        rows_per_call = max(1, _CHUNK_NODES // (per_row * n))

        out = np.zeros((n_cells1, n_cells0 * n_comp))
        err = 0.0
        exhausted = False
        for rnd in range(_MAX_ROUNDS):
            if left.size == 0:
                break
            x1 = ((left + half)[:, None] + half[:, None] * self._gx).reshape(-1)
            vals = np.empty((x1.size, n_cells0 * n_comp))
            row_err = np.empty(x1.size)
            for start in range(0, x1.size, rows_per_call):
                sl = slice(start, start + rows_per_call)
                v, e_rows, ex = self._inner(x1[sl], domain, ladder, with_energy=with_energy)
                vals[sl] = v.reshape(v.shape[0], -1)
                row_err[sl] = e_rows
                exhausted |= ex
            vals = vals.reshape(left.size, n, n_cells0 * n_comp)
            q = half[:, None] * np.einsum("pnk,n->pk", vals, self._gw)
            q_inner_err = half * (row_err.reshape(left.size, n) @ self._gw)
            e = self._error(vals[:, :, ::n_comp], half)  # mass components only
            total = out[:, ::n_comp] + _group_sum(cell, q[:, ::n_comp], n_cells1)
            tol = np.maximum(_RTOL * np.abs(total[cell]), atol_length * 2.0 * half[:, None])
            ok = np.all(e <= tol, axis=1) | (half <= min_half)
            if rnd == _MAX_ROUNDS - 1 and not np.all(ok):
                exhausted = True
                ok[:] = True
            err += float(np.sum(e[ok])) + float(np.sum(q_inner_err[ok]))
            out += _group_sum(cell[ok], q[ok], n_cells1)
            bad = ~ok
            h2 = 0.5 * half[bad]
            left = np.concatenate([left[bad], left[bad] + 2.0 * h2])
            half = np.concatenate([h2, h2])
            cell = np.concatenate([cell[bad], cell[bad]])
        return out.reshape(n_cells1, n_cells0, n_comp), err, exhausted
