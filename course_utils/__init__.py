"""course_utils: the companion package of the course notebooks.

Map of the package. Data flows one way, settings -> data -> models -> train
-> embeddings/metrics -> fairness -> plots; notebooks call into it, the
package never imports a notebook, and only ``plots`` and ``widgets`` import
matplotlib.

- ``settings``     fast mode, data/cache directories, seeding, device, env report
- ``data``         real face data (ORL, LFW, FairFace, UTKFace, your own photos: one
                   folder per person), embedded images, SynthFaces, words of several
                   languages (``text``), pair/triplet/P x K sampling, splits, caches
- ``layers``       from-scratch reference ops (convolution, batch norm, DropBlock ...)
- ``models``       blocks and the registered model zoo (``create_model``), including
                   the port of dlib's face ResNet and EfficientNet-Lite0; Kim's text CNN
- ``cost``         parameters, multiply-adds, latency
- ``train``        fit / evaluate / predict, History, callbacks, AMP, checkpoints
- ``distributed``  torchrun + DistributedDataParallel for ``fit``: process group, ranks,
                   sharded loaders, reduced metrics, gathered losses, rank-0 output
- ``distances``    squared L2, L1, cosine; DeepFace normalisation, chi-square verifier
- ``miners``       all-triplets, batch-hard, semi-hard, pair miners
- ``losses``       contrastive, triplet, center, ArcFace, CosFace, pair head,
                   label smoothing, NT-Xent
- ``metrics``      verification (ROC, EER, TAR@FAR), identification (CMC, open set),
                   k-NN, calibration
- ``facerec``      face verification/identification glue: pairs, gallery/probe
                   splits, one-call evaluation, softmax + center loss, augmentation
- ``facecompare``  comparing face models on held-out people: identity-level intervals
                   of AUC / TAR@FAR / rank-1, verdict tables, gallery false-alarm rates
- ``pretrained``   sub-package: ImageNet weights (``imagenet``: torchvision's, and
                   EfficientNet-Lite0 offline), the course's shipped source checkpoints
                   and their recipes (``sources``), FaceNet's network and weight loader
                   (``facenet``), dlib's face recogniser (``recognizer``: detect, align,
                   descriptors by the PyTorch port or dlib, a descriptor cache; its
                   weight reader ``dlib_format``) and attribute heads (``heads``)
- ``transfer``     freezing, per-layer learning rates, cached features, linear
                   probes, multi-task heads, SimCLR pre-training
- ``embeddings``   extraction (vectors + labels + groups), PCA/t-SNE/UMAP with a fit
                   cache and numba cache set-up, separation tables, retrieval
- ``fairness``     composition audits, per-group metrics with fairlearn's MetricFrame
                   and bootstrap intervals, FMR/FNMR per group, embedding-space
                   occupancy, rebalancing, a ThresholdOptimizer adapter
- ``stats``        the statistics behind every claim: seed and bootstrap intervals
                   (identity-level for faces), permutation gaps, Holm, ``compare``
                   verdicts, minimum detectable differences, ``run_seeds``
- ``plots``        every figure: ``ax=None`` in, ``Axes`` out
- ``widgets``      ipywidgets explorers with a static fallback when headless
- ``selfcheck``    "write it yourself" exercises: forbidden calls in a solution, by AST
- ``assignments``  (instructor) shim for ``course_tools.grading``: releases, sandboxed grading
- ``nbtools``      builds the ``.ipynb`` notebooks from their percent scripts
- ``colab``        the Colab install snippet and README badges

The names below are re-exported for convenience; everything else is imported
from its module (``from course_utils.losses import TripletLoss``).
"""

from course_utils.settings import (
    cache_dir,
    data_dir,
    env_report,
    get_settings,
    is_fast,
    limit_cpu_threads,
    pick,
    resolve_device,
    seed_everything,
)
from course_utils.train import (
    History,
    evaluate,
    fit,
    load_checkpoint,
    make_loader,
    predict,
    save_checkpoint,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "History",
    "cache_dir",
    "data_dir",
    "env_report",
    "evaluate",
    "fit",
    "get_settings",
    "is_fast",
    "limit_cpu_threads",
    "load_checkpoint",
    "make_loader",
    "pick",
    "predict",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
