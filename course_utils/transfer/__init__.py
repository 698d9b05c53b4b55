"""Transfer learning, measured: freezing, learning rates, cached features, regimes, SimCLR, multi-task.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``freezing``       :func:`freeze` / :func:`unfreeze`, :func:`freeze_all_but_head`,
                   :func:`unfreeze_last_blocks`, :func:`trainable_table`, a model's
                   :func:`backbone_blocks` and :func:`head_modules`, learning rates per part
                   (:func:`param_groups`, :func:`layerwise_lr_groups`)
``features``       :func:`cached_features` (keyed by :func:`feature_digest`), :class:`FeatureSet`,
                   the front / :class:`TailModel` split, :func:`train_linear_probe`, :func:`train_tail`
``regimes``        :data:`REGIMES`, :func:`fine_tune`, :class:`RegimeConfig`, :func:`run_regime`
``selfsupervised`` SimCLR: :class:`SimCLRModel`, :func:`pretrain_simclr` (its batch augmentation,
                   :class:`~course_utils.augment.SimCLRAugment`, is re-exported here)
``multitask``      :class:`MultiTaskModel`, :class:`MultiTaskLoss`, :func:`task_accuracy`,
                   :func:`task_mae`, :func:`multitask_targets`, the age loss :class:`AgeLoss`,
                   :func:`mlp_trunk`, :func:`train_multitask`, :class:`TrunkConfig`,
                   :func:`train_trunk_heads`, :func:`predict_tasks`
=================  ==========================================================================

Count what will train with :func:`course_utils.cost.count_parameters`
(``trainable_only=True``); run a model over a data set with
:func:`course_utils.train.predict`. Seed statistics (:func:`summarize`,
:func:`run_seeds`) live in :mod:`course_utils.stats` and are re-exported here.
Aligned face chips for dlib's network (``aligned_chips``) are in
:mod:`course_utils.pretrained.chips`.
"""

from course_utils.augment import SimCLRAugment
from course_utils.stats import SeedRuns, SeedSummary, run_seeds, summarize
from course_utils.transfer.features import (
    FeatureSet,
    TailModel,
    cached_features,
    feature_digest,
    split_model,
    train_linear_probe,
    train_tail,
)
from course_utils.transfer.freezing import (
    backbone_blocks,
    freeze,
    freeze_all_but_head,
    head_modules,
    layerwise_lr_groups,
    param_groups,
    trainable_table,
    unfreeze,
    unfreeze_last_blocks,
)
from course_utils.transfer.multitask import (
    AgeLoss,
    MultiTaskLoss,
    MultiTaskModel,
    TaskOutputs,
    TrunkConfig,
    mlp_trunk,
    multitask_targets,
    predict_tasks,
    task_accuracy,
    task_mae,
    train_multitask,
    train_trunk_heads,
)
from course_utils.transfer.regimes import (
    REGIMES,
    RegimeConfig,
    RegimeResult,
    fine_tune,
    run_regime,
)
from course_utils.transfer.selfsupervised import (
    SimCLRModel,
    pretrain_simclr,
    simclr_forward_fn,
)

__all__ = [
    "REGIMES",
    "freeze",
    "unfreeze",
    "freeze_all_but_head",
    "unfreeze_last_blocks",
    "trainable_table",
    "head_modules",
    "backbone_blocks",
    "param_groups",
    "layerwise_lr_groups",
    "TailModel",
    "split_model",
    "FeatureSet",
    "feature_digest",
    "cached_features",
    "train_linear_probe",
    "train_tail",
    "fine_tune",
    "RegimeConfig",
    "RegimeResult",
    "run_regime",
    "SeedSummary",
    "SeedRuns",
    "summarize",
    "run_seeds",
    "SimCLRAugment",
    "SimCLRModel",
    "simclr_forward_fn",
    "pretrain_simclr",
    "MultiTaskModel",
    "MultiTaskLoss",
    "TaskOutputs",
    "task_accuracy",
    "task_mae",
    "multitask_targets",
    "AgeLoss",
    "mlp_trunk",
    "train_multitask",
    "TrunkConfig",
    "train_trunk_heads",
    "predict_tasks",
]
