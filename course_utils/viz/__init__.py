"""Every figure and explorer of the course: ``ax=None`` in, ``Axes`` out; the only home of matplotlib and ipywidgets.

Each plotting helper takes ``ax=None`` (a new figure is made when no Axes is
given) and returns the ``Axes`` it drew on, so notebooks can compose
figures. Nothing here shows a figure (pyplot's ``show``) or changes ``rcParams``.

- ``core``          :func:`new_axes`
- ``images``        images, grids, kernels
- ``training``      training curves, mean curves over seeds, confusion matrices, reliability diagrams
- ``cost``          accuracy against cost, Pareto fronts, where the cost goes (notebook 02)
- ``verification``  ROC curves, score distributions, image pairs
- ``embeddings``    2-D maps, thumbnails, retrieval results
- ``fairness``      per-group intervals, embeddings by group
- ``widgets``       ipywidgets explorers with a static fallback when headless
"""

from course_utils.viz.core import (
    new_axes,
)
from course_utils.viz.cost import (
    plot_accuracy_vs_cost,
    plot_cost_breakdown,
    plot_pareto_front,
)
from course_utils.viz.embeddings import (
    plot_embedding_2d,
    plot_thumbnails,
    show_retrieval,
)
from course_utils.viz.fairness import (
    plot_embedding_groups,
    plot_group_intervals,
)
from course_utils.viz.images import (
    image_grid,
    show_images,
    show_kernels,
    to_numpy_image,
)
from course_utils.viz.training import (
    plot_confusion_matrix,
    plot_history,
    plot_mean_curves,
    plot_reliability_diagram,
)
from course_utils.viz.verification import (
    plot_roc_curves,
    plot_score_distributions,
    show_pairs,
)
from course_utils.viz.widgets import (
    CONV_FILTERS,
    Explorer,
    conv_explorer,
    in_kernel,
    interactive_figure,
    projection_explorer,
    threshold_explorer,
)

__all__ = [
    "new_axes",
    "to_numpy_image",
    "image_grid",
    "show_images",
    "show_kernels",
    "plot_history",
    "plot_confusion_matrix",
    "plot_reliability_diagram",
    "plot_mean_curves",
    "plot_accuracy_vs_cost",
    "plot_cost_breakdown",
    "plot_pareto_front",
    "plot_roc_curves",
    "plot_score_distributions",
    "show_pairs",
    "plot_embedding_2d",
    "plot_thumbnails",
    "show_retrieval",
    "plot_group_intervals",
    "plot_embedding_groups",
    "Explorer",
    "interactive_figure",
    "in_kernel",
    "conv_explorer",
    "CONV_FILTERS",
    "threshold_explorer",
    "projection_explorer",
]
