"""Exact Gibbs reference quantities for 2-D potentials on a square box.

The density is ``p(x) = exp(-beta * U(x)) / Z`` restricted to the box
``[lo, hi]^2``.  All quantities are computed by deterministic composite
Gauss-Legendre quadrature on meshes that are geometrically graded toward the
lines where the density is narrow or non-smooth, so that they can serve as
ground truth (relative accuracy ~1e-9 or better in typical use) for measuring
sampler bias near singular points.

Integration scheme
------------------
Every integral is written as an iterated integral
``int dx1 int_{L(x1)}^{U(x1)} dx0 exp(-beta U(x0, x1))``.

* The **inner** (``x0``) integral of every row ``x1`` is split at the valley
  lines ``x0 = b0`` (``b0`` in the axis-0 breaks), at the diagonal kink points
  ``x0 = b0 +/- (x1 - b1)`` (where ``|x0 - b0| = |x1 - b1|``; the kinks of
  e.g. ``min(x0**2, x1**2)``), at cell edges and at the limits.
* The **outer** (``x1``) integral is split at the valley lines ``x1 = b1``,
  at every ``x1`` where two inner break curves meet (kink/box-edge,
  kink/valley, circle/valley, circle/kink, circle/box-edge, ...), at the top
  and bottom of a disk and at cell edges.  At these points the row integral
  has kinks, square-root endpoint behaviour or step-like features.
* Around each *graded* break point ``p`` the panel end points
  ``p +/- min_panel * 5**k`` (``k = 0, 1, ...``) are inserted, i.e. a
  geometric mesh with ratio 1/5 from ``min_panel`` up to the box size.  With
  Gauss-Legendre order 16 a panel ``[d, 5 d]`` integrates a function that is
  analytic except at distance ``d`` to ~1e-13 relative accuracy, so narrow
  valleys of any width ``>~ min_panel`` and point singularities are resolved.
* In addition no panel is longer than ``max_panel`` (a uniform grid of
  break points), which resolves smooth but sharp parts of the density, e.g. a
  steep confining quadratic.

Every set of break points is merged, sorted and each non-empty panel gets an
order-``order`` Gauss-Legendre rule; the potential is evaluated vectorized on
large node batches in float64.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.polynomial.legendre import leggauss

__all__ = ["GibbsReference"]

#: Ratio between the sizes of successive panels of the geometric grading.
_GRADING_FACTOR = 5.0
#: Default smallest graded panel relative to the box size (``valley_width`` unset).
_DEFAULT_MIN_PANEL_REL = 1e-6
#: Default largest panel relative to the box size (``max_panel`` unset).
_DEFAULT_MAX_PANEL_REL = 1.0 / 32.0
#: Order difference of the lower-order rule used for the normalizer error estimate.
_ERROR_ORDER_DROP = 4
#: Relative normalizer error estimate above which a warning is emitted.
_WARN_REL_ERROR = 1e-8


def _x64_context() -> contextlib.AbstractContextManager[Any]:
    """Return a context manager that enables float64 in JAX (no-op without JAX)."""
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
    """Return the break coordinates of axis 0 and axis 1."""
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


class GibbsReference:
    """Exact reference quantities of a 2-D Gibbs density on a square box.

    The (unnormalized) density is ``exp(-beta * U(x))`` on ``[lo, hi]^2`` and
    zero outside.  Integrals are computed with composite Gauss-Legendre
    quadrature on meshes graded toward the hinted valley lines and the
    diagonal kink lines through their crossings (see the module docstring).

    Parameters
    ----------
    potential : callable
        ``potential(x)`` maps an array of shape ``(..., 2)`` to shape ``(...)``.
        It may be written with ``jax.numpy`` (it is then evaluated with JAX's
        float64 mode enabled) or with NumPy.  It is called on float64 NumPy
        arrays of shape ``(n, 2)``.
    beta : float
        Inverse temperature, ``> 0``.
    box : tuple of float, optional
        ``(lo, hi)``; the domain is ``[lo, hi]^2``.  Default ``(-1.0, 1.0)``.
    breaks : tuple of float, or pair of tuples of float, optional
        Coordinates of the lines along which the density has narrow valleys or
        is not smooth: a tuple ``(b, ...)`` means the lines ``x0 = b`` and
        ``x1 = b``; a pair ``((b0, ...), (b1, ...))`` gives the lines
        ``x0 = b0`` and ``x1 = b1`` separately.  Default ``(0.0,)``, the two
        axes.  Breaks outside the box are harmless.
    order : int, optional
        Number of Gauss-Legendre nodes per panel (``>= 2 + 4``).  Default 16.
    valley_width : float or None, optional
        Width scale of the narrowest valley (for ``a * x**2`` valleys,
        ``1 / sqrt(2 * beta * a)``).  The graded mesh is refined down to panels
        of ``valley_width / 4``.  Default ``None``: refine down to
        ``1e-6 * (hi - lo)``, which resolves valleys down to ~1e-6 of the box
        size at a modest cost (the grading is geometric).  Giving a value larger
        than the true width degrades the accuracy.
    max_panel : float or None, optional
        Largest allowed panel length, to resolve smooth but sharp features away
        from the breaks.  Default ``None``: ``(hi - lo) / 32``.
    diagonal_kinks : bool, optional
        Also break at the diagonal lines ``|x0 - b0| = |x1 - b1|`` through every
        crossing of break lines (the kinks of ``min(x0**2, x1**2)``-type
        potentials).  Default ``True``.
    batch_size : int, optional
        Number of points per potential evaluation.  Default ``2**18``.

    Attributes
    ----------
    log_normalizer : float
        ``log Z`` with ``Z = int_box exp(-beta U(x)) dx``.
    normalizer_error : float
        Estimated relative error of ``Z``: difference between the order
        ``order`` result and a result of order ``order - 4`` on the same mesh
        (a pessimistic estimate; a warning is emitted when it exceeds 1e-8,
        which indicates an unhinted sharp feature).
    beta : float
    box : tuple of float
    breaks : tuple of numpy.ndarray
        The break coordinates of axis 0 and axis 1.

    Raises
    ------
    ValueError
        For invalid arguments (``beta <= 0``, ``lo >= hi``, ...) or when the
        potential returns non-finite values or a wrong shape.

    Notes
    -----
    The mesh of the normalizer has about 1e6 nodes for the default settings;
    constructing takes a fraction of a second for simple potentials.

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
        if order < 2 + _ERROR_ORDER_DROP:
            raise ValueError(f"order must be >= {2 + _ERROR_ORDER_DROP}, got {order!r}")
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
        self._order = int(order)
        self._min_panel = float(min_panel)
        self._diagonal_kinks = bool(diagonal_kinks)
        self._batch_size = int(batch_size)
        n_grid = max(1, math.ceil(width / max_panel_f - 1e-12))
        self._grid = np.linspace(lo, hi, n_grid + 1)
        self._warned_dtype = False

        # Inner break "lines" x0 = alpha + sigma * x1 (sigma in {0, +1, -1}).
        b0s, b1s = self.breaks
        valleys = [(float(b0), 0.0) for b0 in b0s]
        kinks: list[tuple[float, float]] = []
        if self._diagonal_kinks:
            for b0 in b0s:
                for b1 in b1s:
                    for sigma in (1.0, -1.0):
                        kinks.append((float(b0 - sigma * b1), sigma))
        self._valley_lines = valleys
        self._kink_lines = kinks
        kink_arr = np.asarray(kinks, dtype=float).reshape(-1, 2)
        self._kink_alpha = kink_arr[:, 0]
        self._kink_sigma = kink_arr[:, 1]

        # Normalizer, mean energy and the error estimate.
        self._shift: float | None = None
        s_hi, e_hi = self._box_integrals(self._order, with_energy=True)
        s_lo, _ = self._box_integrals(self._order - _ERROR_ORDER_DROP, with_energy=False)
        if not s_hi > 0:
            raise ValueError(
                f"the integral of exp(-beta*U) over the box is not positive ({s_hi!r}); "
                f"check the potential and beta={beta!r}"
            )
        self._box_sum = s_hi
        self.log_normalizer = float(-self._shift + math.log(s_hi))  # type: ignore[operator]
        self.normalizer_error = float(abs(s_hi - s_lo) / s_hi)
        self._mean_energy = float(e_hi / s_hi)
        if self.normalizer_error > _WARN_REL_ERROR:
            warnings.warn(
                f"GibbsReference: estimated relative error of the normalizer is "
                f"{self.normalizer_error:.3g}; the potential may have sharp features "
                "not covered by `breaks`/`valley_width`/`max_panel`",
                RuntimeWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------ public

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
            If ``radius <= 0`` or the center is not a finite pair.
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
        total = 0.0
        for chunk in self._chunks(
            order=self._order,
            outer=(a1, b1),
            inner=(a0, b0),
            circle=(float(c[0]), float(c[1]), r),
            edges0=None,
            edges1=None,
        ):
            x0, x1, w = chunk[0], chunk[1], chunk[2]
            total += float(np.sum(w * self._boltzmann(x0, x1)))
        return float(min(max(total / self._box_sum, 0.0), 1.0))

    def occupancy(self, center: Sequence[float] | np.ndarray, radius: float) -> float:
        """Occupancy of the disk ``|x - center| < radius``.

        The occupancy is the probability that a sample from the Gibbs density
        on the box lies in the disk; identical to :meth:`disk_mass`.

        Parameters
        ----------
        center : array_like, shape (2,)
            Center of the disk.
        radius : float
            Radius, ``> 0``.

        Returns
        -------
        float
            The occupancy (probability mass) of the disk inside the box.
        """
        return self.disk_mass(center, radius)

    def mean_energy(self) -> float:
        """Mean potential energy ``E[U]`` under the normalized density.

        Returns
        -------
        float
            ``int U exp(-beta U) / Z`` over the box.
        """
        return self._mean_energy

    def cell_masses(
        self, edges0: Sequence[float] | np.ndarray, edges1: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Exact probability mass of the rectangle cells of a grid.

        Parameters
        ----------
        edges0, edges1 : array_like, 1-D
            Strictly increasing cell edges along ``x0`` and ``x1``, inside the box.

        Returns
        -------
        numpy.ndarray, shape (len(edges0) - 1, len(edges1) - 1)
            Entry ``[i, j]`` is the probability of
            ``[edges0[i], edges0[i+1]] x [edges1[j], edges1[j+1]]`` (integrated,
            not density times area).

        Raises
        ------
        ValueError
            If the edges are not strictly increasing, not finite, have fewer
            than two entries or leave the box.
        """
        lo, hi = self.box
        e0 = _check_edges("edges0", edges0, lo, hi)
        e1 = _check_edges("edges1", edges1, lo, hi)
        n0, n1 = e0.size - 1, e1.size - 1
        acc = np.zeros(n0 * n1)
        for x0, x1, w, ci, cj in self._chunks(
            order=self._order,
            outer=(float(e1[0]), float(e1[-1])),
            inner=(float(e0[0]), float(e0[-1])),
            circle=None,
            edges0=e0,
            edges1=e1,
        ):
            vals = w * self._boltzmann(x0, x1)
            acc += np.bincount(ci * n1 + cj, weights=vals, minlength=n0 * n1)
        return acc.reshape(n0, n1) / self._box_sum

    def density(self, x0: Sequence[float] | np.ndarray, x1: Sequence[float] | np.ndarray) -> np.ndarray:
        """Normalized density on the grid ``x0 x x1``.

        Parameters
        ----------
        x0, x1 : array_like, 1-D
            Coordinates along each axis.

        Returns
        -------
        numpy.ndarray, shape (len(x0), len(x1))
            ``[i, j]`` is ``exp(-beta U(x0[i], x1[j])) / Z``; zero outside the box.

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

    def _eval_potential(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        """Evaluate the potential in float64 on flat coordinate arrays."""
        n = x0.size
        out = np.empty(n)
        with _x64_context():
            for start in range(0, n, self._batch_size):
                stop = min(n, start + self._batch_size)
                pts = np.stack([x0[start:stop], x1[start:stop]], axis=-1)
                val = self._potential(pts)
                arr = np.asarray(val)
                if arr.dtype != np.float64 and not self._warned_dtype:
                    self._warned_dtype = True
                    warnings.warn(
                        f"GibbsReference: the potential returned dtype {arr.dtype}, not "
                        "float64; the reference values are limited by its precision",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                arr = arr.astype(np.float64, copy=False)
                if arr.shape != (stop - start,):
                    raise ValueError(
                        f"potential must map shape (n, 2) to (n,), got output shape "
                        f"{arr.shape} for input shape {pts.shape}"
                    )
                bad = ~np.isfinite(arr)
                if np.any(bad):
                    k = int(np.argmax(bad))
                    raise ValueError(
                        f"potential returned a non-finite value {arr[k]!r} at x="
                        f"({pts[k, 0]!r}, {pts[k, 1]!r})"
                    )
                out[start:stop] = arr
        return out

    def _boltzmann(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        """Shifted Boltzmann factor ``exp(-(beta U - shift))``."""
        bu = self.beta * self._eval_potential(x0, x1)
        return np.exp(-(bu - self._shift))

    def _box_integrals(self, order: int, *, with_energy: bool) -> tuple[float, float]:
        """Sum of shifted Boltzmann weights (and of ``U`` times them) over the box."""
        lo, hi = self.box
        parts = []
        for x0, x1, w, _, _ in self._chunks(
            order=order, outer=(lo, hi), inner=(lo, hi), circle=None, edges0=None, edges1=None
        ):
            parts.append((w, self._eval_potential(x0, x1)))
        if self._shift is None:
            self._shift = float(min(self.beta * np.min(u) for _, u in parts))
        total = 0.0
        energy = 0.0
        for w, u in parts:
            f = w * np.exp(-(self.beta * u - self._shift))
            total += float(np.sum(f))
            if with_energy:
                energy += float(np.sum(f * u))
        return total, energy

    def _ladder(self, span: float, min_panel: float) -> np.ndarray:
        """Signed offsets ``0, +/- min_panel * 5**k`` reaching past ``span``."""
        n = max(1, math.ceil(math.log(max(span, min_panel) / min_panel) / math.log(_GRADING_FACTOR)) + 1)
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
        # Lines x0 = alpha + sigma x1 that bound or split the inner integral.
        lines = list(self._valley_lines) + list(self._kink_lines)
        lines += [(inner[0], 0.0), (inner[1], 0.0)]
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
                # (al + s x1 - c0)^2 + (x1 - c1)^2 = r^2
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
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted panel end points per row (rows = leading axis).

        ``graded`` has shape ``(rows, g)``, ``plain`` shape ``(rows, p)`` or
        ``(p,)``.  Returns the left end points and half lengths of all panels,
        shape ``(rows, n_panels)`` (empty panels have half length 0).
        """
        rows = lower.shape[0]
        pts = [lower[:, None], upper[:, None], np.broadcast_to(self._grid, (rows, self._grid.size))]
        if graded.shape[-1]:
            pts.append((graded[:, :, None] + ladder).reshape(rows, -1))
        if plain.shape[-1]:
            pts.append(np.broadcast_to(plain, (rows, plain.shape[-1])))
        allp = np.concatenate(pts, axis=1)
        allp = np.clip(allp, lower[:, None], upper[:, None])
        allp.sort(axis=1)
        left = allp[:, :-1]
        half = 0.5 * (allp[:, 1:] - left)
        return left, half

    def _chunks(
        self,
        *,
        order: int,
        outer: tuple[float, float],
        inner: tuple[float, float],
        circle: tuple[float, float, float] | None,
        edges0: np.ndarray | None,
        edges1: np.ndarray | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Yield flat quadrature nodes ``(x0, x1, weight, cell_i, cell_j)`` in chunks."""
        gx, gw = leggauss(order)
        min_panel = self._min_panel
        if circle is not None:
            # Resolve the square-root behaviour at the top/bottom of small disks.
            min_panel = min(min_panel, 1e-6 * 2.0 * circle[2])
        lo, hi = self.box
        ladder = self._ladder(hi - lo, min_panel)

        # Outer nodes.
        g_out, p_out = self._outer_points(outer, inner, circle, edges0, edges1)
        left, half = self._panels(
            np.array([outer[0]]), np.array([outer[1]]), g_out[None, :], p_out, ladder
        )
        left, half = left[0], half[0]
        keep = half > 0
        left, half = left[keep], half[keep]
        x1_all = (left + half)[:, None] + half[:, None] * gx
        w1_all = half[:, None] * gw
        if edges1 is not None:
            cj_panel = np.clip(np.searchsorted(edges1, left + half, side="right") - 1, 0, edges1.size - 2)
            cj_all = np.repeat(cj_panel, order)
        else:
            cj_all = np.zeros(x1_all.size, dtype=np.int64)
        x1_all = x1_all.reshape(-1)
        w1_all = w1_all.reshape(-1)

        # Inner break points.
        valley0 = self.breaks[0]
        plain0 = edges0 if edges0 is not None else np.zeros(0)
        n_graded = valley0.size + self._kink_alpha.size
        n_pts = 3 + self._grid.size + n_graded * ladder.size + plain0.size
        rows_per_chunk = max(1, (2 * self._batch_size) // max(1, n_pts * order))

        for start in range(0, x1_all.size, rows_per_chunk):
            stop = min(x1_all.size, start + rows_per_chunk)
            x1 = x1_all[start:stop]
            w1 = w1_all[start:stop]
            rows = x1.size
            lower = np.full(rows, inner[0])
            upper = np.full(rows, inner[1])
            if circle is not None:
                c0, c1, r = circle
                s = np.sqrt(np.maximum(r * r - (x1 - c1) ** 2, 0.0))
                lower = np.maximum(lower, c0 - s)
                upper = np.minimum(upper, c0 + s)
                upper = np.maximum(upper, lower)
            graded = np.concatenate(
                [
                    np.broadcast_to(valley0, (rows, valley0.size)),
                    self._kink_alpha[None, :] + self._kink_sigma[None, :] * x1[:, None],
                ],
                axis=1,
            )
            il, ih = self._panels(lower, upper, graded, plain0, ladder)
            keep = ih > 0
            row_idx = np.nonzero(keep)[0]
            il, ih = il[keep], ih[keep]
            mid = il + ih
            x0 = (mid[:, None] + ih[:, None] * gx).reshape(-1)
            w = (ih[:, None] * gw * w1[row_idx][:, None]).reshape(-1)
            x1n = np.repeat(x1[row_idx], order)
            if edges0 is not None:
                ci_panel = np.clip(np.searchsorted(edges0, mid, side="right") - 1, 0, edges0.size - 2)
                ci = np.repeat(ci_panel, order)
            else:
                ci = np.zeros(x0.size, dtype=np.int64)
            cj = cj_all[start:stop][row_idx].repeat(order)
            yield x0, x1n, w, ci, cj
