"""Evaluation: how good a model's outputs are.

- ``classification``  accuracy, calibration (reliability bins, expected calibration error)
- ``verification``    1:1 face verification: score convention and :func:`pair_scores`, pairs,
                      ROC, AUC, EER, TAR@FAR, validated accuracy
- ``identification``  1:N: gallery/probe splits, similarity matrices, CMC, rank-k, open set
- ``retrieval``       leave-one-out k-NN precision@1 and accuracy, nearest neighbours,
                      retrieval precision@k, a colour-histogram baseline
- ``embedding_set``   :class:`EmbeddingSet`: vectors, labels and group attributes of a data set,
                      from :func:`course_utils.train.predict`
- ``projections``     PCA / t-SNE / UMAP to 2-D with fixed seeds, a cache of fitted reducers,
                      numba's on-disk cache for UMAP
- ``separation``      k-NN accuracy, silhouette and trustworthiness in full space and 2-D,
                      identity-level intervals
- ``faces``           every face protocol in one call (:func:`evaluate_embeddings`); comparing
                      models on held-out people with identity-level intervals and verdicts
- ``regression``      age estimation: :func:`mean_absolute_error`, :func:`cumulative_score`
                      (CS@k), :func:`max_absolute_error`, :func:`age_scores` with bootstrap
                      intervals, per-group errors :func:`group_mae` and :func:`group_mae_table`
"""

from course_utils.evaluation.classification import (
    ReliabilityBins,
    accuracy,
    expected_calibration_error,
    reliability_bins,
)
from course_utils.evaluation.embedding_set import (
    EmbeddingSet,
)
from course_utils.evaluation.faces import (
    METRIC_NAMES,
    evaluate_embeddings,
    gallery_false_alarm_rate,
    identity_intervals,
    interval_table,
    pairwise_far_for_alarm_rate,
    rank1_hits,
    verdict_table,
)
from course_utils.evaluation.identification import (
    GalleryProbeSplit,
    OpenSetResult,
    cmc_curve,
    gallery_probe_split,
    identify,
    open_set_identification,
    open_set_rates,
    rank_k_accuracy,
    similarity_matrix,
)
from course_utils.evaluation.projections import (
    PROJECTION_DEFAULTS,
    Projection,
    ProjectionCache,
    configure_numba_cache,
    exact_knn,
    import_umap,
    numba_cache_files,
    project,
)
from course_utils.evaluation.regression import (
    AgeScores,
    absolute_errors,
    age_scores,
    cumulative_score,
    group_mae,
    group_mae_table,
    max_absolute_error,
    mean_absolute_error,
)
from course_utils.evaluation.retrieval import (
    color_histograms,
    knn_accuracy,
    knn_correct,
    knn_precision_at_1,
    nearest_neighbours,
    retrieval_hits,
    retrieval_precision,
)
from course_utils.evaluation.separation import (
    angular_spread,
    centre_distance_correlation,
    knn_accuracy_2d,
    separation_intervals,
    separation_table,
    silhouette,
    trustworthiness,
)
from course_utils.evaluation.verification import (
    EER,
    ScoreFn,
    ValidatedAccuracy,
    VerificationPairs,
    all_pair_scores,
    best_accuracy_threshold,
    distances_to_scores,
    equal_error_rate,
    euclidean_scores,
    pair_scores,
    roc_auc,
    roc_curve,
    tar_at_far,
    tar_at_fars,
    threshold_at_far,
    validated_verification_accuracy,
    verification_accuracy,
    verification_pairs,
    verification_scores,
)

__all__ = [
    "accuracy",
    "ReliabilityBins",
    "reliability_bins",
    "expected_calibration_error",
    "ScoreFn",
    "distances_to_scores",
    "pair_scores",
    "euclidean_scores",
    "all_pair_scores",
    "roc_curve",
    "roc_auc",
    "EER",
    "equal_error_rate",
    "tar_at_far",
    "threshold_at_far",
    "tar_at_fars",
    "verification_accuracy",
    "best_accuracy_threshold",
    "ValidatedAccuracy",
    "validated_verification_accuracy",
    "VerificationPairs",
    "verification_pairs",
    "verification_scores",
    "cmc_curve",
    "rank_k_accuracy",
    "OpenSetResult",
    "open_set_rates",
    "open_set_identification",
    "GalleryProbeSplit",
    "gallery_probe_split",
    "similarity_matrix",
    "identify",
    "knn_precision_at_1",
    "knn_accuracy",
    "EmbeddingSet",
    "PROJECTION_DEFAULTS",
    "Projection",
    "project",
    "ProjectionCache",
    "configure_numba_cache",
    "numba_cache_files",
    "import_umap",
    "exact_knn",
    "silhouette",
    "trustworthiness",
    "knn_accuracy_2d",
    "separation_table",
    "angular_spread",
    "knn_correct",
    "centre_distance_correlation",
    "separation_intervals",
    "nearest_neighbours",
    "retrieval_precision",
    "retrieval_hits",
    "color_histograms",
    "METRIC_NAMES",
    "evaluate_embeddings",
    "rank1_hits",
    "identity_intervals",
    "interval_table",
    "verdict_table",
    "gallery_false_alarm_rate",
    "pairwise_far_for_alarm_rate",
    "AgeScores",
    "absolute_errors",
    "age_scores",
    "cumulative_score",
    "group_mae",
    "group_mae_table",
    "max_absolute_error",
    "mean_absolute_error",
]
