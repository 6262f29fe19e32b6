"""Figures of a run: the solution and its error, the loss curves, and a KAN's edge functions.

Every figure is written atomically (a temporary file, then ``os.replace``), like the run's other files."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from kanpde.results import atomic_write  # noqa: E402


def save(fig, path: Path, **options) -> None:
    """``fig`` as a PNG at ``path``, written atomically; the figure is closed."""
    try:
        atomic_write(Path(path), lambda name: fig.savefig(name, **{"dpi": 110, "format": "png", **options}))
    finally:
        plt.close(fig)


def _field_panel(ax, names, axes, values, title, cmap="viridis", limits=(None, None)):
    if len(axes) == 1:
        ax.plot(axes[0], values)
        ax.set_xlabel(names[0])
        if limits[0] is not None:
            ax.set_ylim(*limits)
    else:
        image = ax.pcolormesh(axes[0], axes[1], values.T, shading="auto", cmap=cmap, vmin=limits[0], vmax=limits[1])
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        plt.colorbar(image, ax=ax)
    ax.set_title(title)


def plot_solution(path: Path, names: Sequence[str], axes: Sequence[np.ndarray], prediction: np.ndarray,
                  reference: np.ndarray | None, title: str) -> None:
    """Prediction, reference and pointwise error on the evaluation grid (1-D or 2-D; higher: a slice)."""
    while len(axes) > 2:  # show the middle slice of the extra axes
        axes, names = axes[:-1], names[:-1]
        prediction = np.take(prediction, prediction.shape[-1] // 2, axis=-1)
        reference = None if reference is None else np.take(reference, reference.shape[-1] // 2, axis=-1)
    shared = (None, None)
    if reference is not None:  # prediction and reference on one colour scale, so that they compare by eye
        both = np.concatenate([np.ravel(prediction), np.ravel(reference)])
        both = both[np.isfinite(both)]
        if both.size:
            low, high = float(both.min()), float(both.max())
            pad = 0.05 * (high - low) if len(axes) == 1 else 0.0
            shared = (low - pad, high + pad) if high > low else (None, None)
    panels = [(prediction, "prediction", "viridis", shared)]
    if reference is not None:
        panels += [(reference, "reference", "viridis", shared),
                   (np.abs(prediction - reference), "|error|", "magma", (None, None))]
    fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (values, label, cmap, limits) in zip(axs[0], panels):
        _field_panel(ax, names, axes, values, label, cmap, limits)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)


def plot_scattered(path: Path, names: Sequence[str], points: np.ndarray, prediction: np.ndarray,
                   reference: np.ndarray | None, title: str, inside) -> None:
    """Prediction, reference and |error| at scattered 2-D points (Delaunay triangles whose centroid
    ``inside`` rejects, such as those across a hole, are left blank)."""
    import matplotlib.tri as mtri

    triangulation = mtri.Triangulation(points[:, 0], points[:, 1])
    centroids = points[triangulation.triangles].mean(axis=1)
    triangulation.set_mask(~inside(centroids))
    panels = [(prediction, "prediction", "viridis")]
    if reference is not None:
        panels += [(reference, "reference", "viridis"), (np.abs(prediction - reference), "|error|", "magma")]
    fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (values, label, cmap) in zip(axs[0], panels):
        image = ax.tripcolor(triangulation, values, shading="gouraud", cmap=cmap)
        plt.colorbar(image, ax=ax)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_aspect("equal")
        ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)


def history_marks(events: Sequence[str], stage_ends: Sequence[int]) -> list[tuple[int, str]]:
    """(step, label) of what changed the optimisation: stage changes, grid extensions, pruning and snapping
    (from the events)."""
    marks = [(step, "stage") for step in stage_ends]
    for event in events:
        match = re.match(r"step (\d+): grid (\d+) -> (\d+)", event)
        if match:
            marks.append((int(match.group(1)), f"G={match.group(3)}"))
        match = re.match(r"step (\d+): (pruned|snapped)", event)  # symbolic discovery (kanpde.discover)
        if match:
            marks.append((int(match.group(1)), match.group(2)))
    return sorted(marks)


def plot_history(path: Path, rows: Sequence[dict], terms: Sequence[str], events: Sequence[str] = (),
                 stage_ends: Sequence[int] = ()) -> None:
    """Loss terms and the evaluated relative L2 error against the step, with a dashed line where a stage
    starts or the grid is extended."""
    if not rows:
        return
    steps = np.array([row["step"] for row in rows])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in ["loss", *terms]:
        ax.semilogy(steps, [row.get(name, math.nan) for row in rows], label=name, lw=1)
    errors = [(row["step"], row["rel_l2"]) for row in rows if not math.isnan(row.get("rel_l2", math.nan))]
    if errors:
        ax.semilogy(*zip(*errors), "k.-", label="rel. L2 error", lw=1)
    for step, label in history_marks(events, stage_ends):
        ax.axvline(step, color="0.4", ls="--", lw=0.8)
        ax.annotate(label, (step, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                    fontsize=7, color="0.3")
    ax.set_xlabel("step")
    ax.set_ylabel("mean squared residual / error (log)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save(fig, path)


@torch.no_grad()
def plot_kan_edges(path: Path, kan, max_edges: int = 48) -> None:
    """Every edge function φ_ji of every layer over its grid range (at most ``max_edges`` per layer)."""
    layers = list(kan.layers)
    fig, axs = plt.subplots(len(layers), 1, figsize=(9, 2.6 * len(layers)), squeeze=False)
    for index, (layer, ax) in enumerate(zip(layers, axs[:, 0])):
        bounds = layer.grid_range()
        steps = torch.linspace(0, 1, 200, dtype=bounds.dtype, device=bounds.device)[:, None]
        s = bounds[:, 0] + steps * (bounds[:, 1] - bounds[:, 0])  # [200, n_in]
        spline = layer.edge_splines(s) * layer.spline_weight
        base = torch.nn.functional.silu(s)[..., None] * layer.base_weight
        phi = (spline + base).cpu().numpy()
        edges = [(i, j) for i in range(layer.in_features) for j in range(layer.out_features)]
        colours = plt.get_cmap("turbo")(np.linspace(0.05, 0.95, min(len(edges), max_edges)))
        styles = ["-", "--", ":", "-."]
        for n, (i, j) in enumerate(edges[:max_edges]):  # colour and line style: distinguishable past 10 edges
            ax.plot(s[:, i].cpu().numpy(), phi[:, i, j], lw=1, color=colours[n], ls=styles[n % len(styles)],
                    label=f"φ{index}[{i}→{j}]")
        ax.set_title(f"layer {index}: {layer.in_features}→{layer.out_features}, G={layer.grid}"
                     + (f" (first {max_edges} of {len(edges)} edges)" if len(edges) > max_edges else ""))
        ax.set_xlabel("input")
        ax.set_ylabel("φ")
        ax.legend(fontsize=6, ncol=max(1, math.ceil(min(len(edges), max_edges) / 12)), loc="center left",
                  bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save(fig, path)
