"""Assessing group differences in face data and models, and mitigating them.

The measurements of notebook 06, as small tested functions, in modules
``composition``, ``group_metrics``, ``verification``, ``occupancy``, ``mitigation``:

* **Composition**: :func:`composition_table` counts a label column;
  :data:`PUBLISHED_COMPOSITIONS` holds compositions of other face data sets
  as their sources state them (each row carries its citation).
* **Equal-size training sets**: :func:`group_quotas` and
  :func:`sample_by_quota` draw a *skewed* set (one group dominant) and a
  *balanced* one of exactly the same size, stratified by a second column
  (e.g. the label) inside each group; :func:`skewed_and_balanced` does both.
* **Per-group metrics with intervals**: a metric is a :class:`RateMetric`
  (a ratio of per-sample counts: accuracy, error rate, FPR, FNR, selection
  rate), which makes the bootstrap vectorised. :func:`group_metric_frame`
  is fairlearn's ``MetricFrame`` on those metrics;
  :func:`bootstrap_group_metrics` adds percentile intervals for every group,
  for the between-group difference (max - min) and ratio (min / max), for
  several models on the same resamples, and for model contrasts.
* **Verification per group**: :func:`within_group_pairs` (impostor pairs
  inside a group, as NIST FRVT's demographic FMR uses),
  :func:`threshold_at_fmr`, :func:`per_group_thresholds` and
  :func:`verification_by_group` (FMR and FNMR per group, from
  ``MetricFrame`` on pair-level outcomes).
* **Space occupancy**: :func:`occupancy_stats`, per-group spread of
  embeddings (distance to the centroid, covariance log-determinant in a
  shared PCA space, k-NN distance, nearest-impostor distance) over random
  equal-size subsamples, with intervals.
* **Impostor pairs without identities** (FairFace: every image assumed a
  different person): :func:`within_cell_pairs`, :func:`pair_distances`,
  :func:`impostor_fmr` (FMR per group and threshold, optionally per image
  bootstrap replicate from :func:`image_bootstrap_counts`),
  :func:`distance_threshold_at_fmr`, :func:`fmr_by_group` (FMR with
  intervals and the highest-to-lowest ratio), :func:`fmr_permutation_test`.
* **Occupancy with resampling intervals**: :func:`occupancy_bootstrap`
  (spread, nearest-neighbour distance, PCA log-determinant; images resampled).
* **Contrasts**: :func:`contrast_with_rest` (each group against the others,
  bootstrap p-values with Holm), :func:`paired_group_contrasts` (two
  classifiers on the same images: McNemar per group, Holm).
* **Mitigation**: :func:`group_balancing_weights`, :func:`balanced_sampler`
  (reweighting / rebalanced sampling), :class:`ScoreClassifier` (wraps
  precomputed scores for fairlearn's ``ThresholdOptimizer``).
* :func:`umap_2d`: a 2-D UMAP projection with numba's cache in the course cache.

Conventions: ``groups`` is any array-like of labels (strings or codes), one
per sample; tables are indexed by the group labels in sorted order unless an
``order`` is given. Nothing here imports matplotlib (see :mod:`course_utils.viz`).
"""

from course_utils.fairness.composition import (
    PUBLISHED_COMPOSITIONS,
    PublishedComposition,
    composition_table,
    group_quotas,
    published_compositions,
    sample_by_quota,
    skewed_and_balanced,
)
from course_utils.fairness.group_metrics import (
    ACCURACY,
    CLASSIFICATION_METRICS,
    ERROR_RATE,
    FALSE_NEGATIVE_RATE,
    FALSE_POSITIVE_RATE,
    SELECTION_RATE,
    RateMetric,
    bootstrap_group_metrics,
    contrast_with_rest,
    group_metric_frame,
    paired_group_contrasts,
)
from course_utils.fairness.mitigation import (
    ScoreClassifier,
    balanced_sampler,
    group_balancing_weights,
)
from course_utils.fairness.occupancy import (
    OCCUPANCY_BOOTSTRAP_STATS,
    OCCUPANCY_STATS,
    occupancy_bootstrap,
    occupancy_stats,
    umap_2d,
)
from course_utils.fairness.verification import (
    distance_threshold_at_fmr,
    fmr_by_group,
    fmr_permutation_test,
    image_bootstrap_counts,
    impostor_fmr,
    pair_distances,
    per_group_thresholds,
    threshold_at_fmr,
    verification_by_group,
    within_cell_pairs,
    within_group_pairs,
)

__all__ = [
    "PublishedComposition",
    "PUBLISHED_COMPOSITIONS",
    "published_compositions",
    "composition_table",
    "group_quotas",
    "sample_by_quota",
    "skewed_and_balanced",
    "RateMetric",
    "ACCURACY",
    "ERROR_RATE",
    "FALSE_POSITIVE_RATE",
    "FALSE_NEGATIVE_RATE",
    "SELECTION_RATE",
    "CLASSIFICATION_METRICS",
    "group_metric_frame",
    "bootstrap_group_metrics",
    "within_group_pairs",
    "threshold_at_fmr",
    "per_group_thresholds",
    "verification_by_group",
    "OCCUPANCY_STATS",
    "occupancy_stats",
    "within_cell_pairs",
    "pair_distances",
    "image_bootstrap_counts",
    "impostor_fmr",
    "distance_threshold_at_fmr",
    "fmr_by_group",
    "fmr_permutation_test",
    "OCCUPANCY_BOOTSTRAP_STATS",
    "occupancy_bootstrap",
    "contrast_with_rest",
    "paired_group_contrasts",
    "group_balancing_weights",
    "balanced_sampler",
    "ScoreClassifier",
    "umap_2d",
]
