"""The grouped bar chart of a sweep: one group per cell, one bar per test set and Recall@N."""

from __future__ import annotations

from pathlib import Path

from vpr.sweep.results import SweepResults, paper_value


def plot_recalls(results: SweepResults, recalls: tuple[str, ...], path: str | Path,
                 compare: bool = False) -> Path | None:
    """Saves the chart as a PNG; error bars are the standard deviation over seeds.

    With ``compare``, the published numbers are black crosses on their bars.

    Returns:
        The PNG path, or None when no run has finished yet.
    """
    columns, rows = results.rows(recalls)
    rows = [row for row in rows if row.done]
    if not rows or not columns:
        return None
    # A bare Figure renders with Agg and leaves pyplot's backend alone (servers, notebooks).
    import matplotlib
    from matplotlib.figure import Figure

    width = 0.8 / len(columns)
    figure = Figure(figsize=(max(6.0, 1.0 + 0.3 * len(rows) * len(columns)), 4.5), dpi=120)
    axes = figure.subplots()
    colours = matplotlib.colormaps["tab10" if len(columns) <= 10 else "tab20"]
    for index, column in enumerate(columns):
        positions = [group + (index - (len(columns) - 1) / 2) * width
                     for group in range(len(rows))]
        means = [row.mean(column) or 0.0 for row in rows]
        errors = [row.std(column) or 0.0 for row in rows]
        axes.bar(positions, means, width, yerr=errors if any(errors) else None, capsize=2,
                 label=f"{column[0]} {column[1]}", color=colours(index))
        if compare:
            published = [paper_value(results.paper, row.cell, *column) for row in rows]
            points = [(x, y) for x, y in zip(positions, published) if y is not None]
            if points:
                axes.scatter(*zip(*points), marker="x", s=25, color="black", zorder=3,
                             label="paper" if index == 0 else None)
    labels = [" / ".join(str(row.cell.get(key, "")) for key in results.keys) for row in rows]
    axes.set_xticks(range(len(rows)))
    axes.set_xticklabels(labels, rotation=30 if len(rows) > 3 else 0, ha="right"
                         if len(rows) > 3 else "center", fontsize=8)
    axes.set_ylabel("Recall@N (%)")
    axes.set_ylim(0, 100)
    axes.set_title(results.name)
    axes.legend(fontsize=8, ncol=min(4, len(columns) + compare))
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    return path
