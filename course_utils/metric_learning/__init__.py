"""Metric learning: distances between embeddings, miners that choose pairs and triplets, and the losses.

- ``distances``  paired and pairwise squared L2, L2, L1, cosine (the one cosine similarity
                 of the package); DeepFace's normaliser and chi-square verifier
- ``miners``     all-triplets, batch-hard, semi-hard and pair miners on one :class:`Miner` base
- ``losses``     contrastive, triplet, center, softmax + center, ArcFace, CosFace, pair head,
                 label smoothing, NT-Xent
- ``tracking``   :class:`TrackedLoss`: a loss's diagnostics per epoch, as a ``fit`` callback
"""

from course_utils.metric_learning.distances import (
    METRICS,
    ChiSquareVerifier,
    DeepFaceNormalizer,
    chi_square_features,
    cosine_distance,
    cosine_similarity,
    l1,
    l2,
    paired_distance,
    pairwise_cosine_distance,
    pairwise_cosine_similarity,
    pairwise_distance,
    pairwise_l1,
    pairwise_l2,
    pairwise_squared_l2,
    squared_l2,
    weighted_chi_square_distance,
)
from course_utils.metric_learning.losses import (
    ArcFaceLoss,
    CenterLoss,
    ContrastiveLoss,
    CosFaceLoss,
    LabelSmoothingCrossEntropy,
    NTXentLoss,
    SiamesePairClassifier,
    SoftmaxCenterLoss,
    TripletLoss,
)
from course_utils.metric_learning.miners import (
    AllTripletsMiner,
    BatchHardMiner,
    MinedPairs,
    MinedTriplets,
    Miner,
    PairMiner,
    SemiHardMiner,
    active_triplet_fraction,
    check_embeddings_labels,
    valid_triplet_mask,
)
from course_utils.metric_learning.tracking import TrackedLoss

__all__ = [
    "METRICS",
    "squared_l2",
    "l2",
    "l1",
    "cosine_similarity",
    "cosine_distance",
    "paired_distance",
    "pairwise_squared_l2",
    "pairwise_l2",
    "pairwise_l1",
    "pairwise_cosine_similarity",
    "pairwise_cosine_distance",
    "pairwise_distance",
    "DeepFaceNormalizer",
    "chi_square_features",
    "weighted_chi_square_distance",
    "ChiSquareVerifier",
    "Miner",
    "check_embeddings_labels",
    "MinedTriplets",
    "MinedPairs",
    "AllTripletsMiner",
    "BatchHardMiner",
    "SemiHardMiner",
    "PairMiner",
    "valid_triplet_mask",
    "active_triplet_fraction",
    "ContrastiveLoss",
    "TripletLoss",
    "CenterLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "SiamesePairClassifier",
    "LabelSmoothingCrossEntropy",
    "NTXentLoss",
    "SoftmaxCenterLoss",
    "TrackedLoss",
]
