"""The PNG chart of ``fleetlink eval diagnostics``: lead time per alert type."""

from __future__ import annotations

from pathlib import Path

from diagnostics.scoring import Scorecard

TARGET_LEAD_DAYS = 7


def write_lead_chart(card: Scorecard, path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here; never a GUI backend in a server process
    import matplotlib.pyplot as plt

    types = [t for t in card.types if t.lead_days]
    figure, axes = plt.subplots(figsize=(10, 1.2 + 0.8 * max(len(types), 1)))
    try:
        if types:
            axes.boxplot(
                [t.lead_days for t in types],
                vert=False,
                tick_labels=[
                    f"{t.type}\n(recall {t.recall:.2f}, n={t.detected})"
                    if t.recall is not None
                    else t.type
                    for t in types
                ],
                showfliers=False,
            )
            for row, t in enumerate(types, start=1):
                axes.scatter(t.lead_days, [row] * len(t.lead_days), s=12, alpha=0.6)
        axes.axvline(TARGET_LEAD_DAYS, linestyle="--", color="grey", label="7-day target")
        axes.set_xlabel("lead time: days from the first correct alert to the failure")
        axes.set_title(title, fontsize=10)
        axes.legend(loc="lower right")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
