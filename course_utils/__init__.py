"""course_utils: the companion package of the course notebooks.

Map of the package. Data flows one way, settings -> data -> models -> train
-> metric_learning / evaluation -> transfer / pretrained -> fairness -> viz;
notebooks call into it, the package never imports a notebook or the authoring
tools (``course_tools``: building notebooks, releases, grading, the Colab
snippet), and only ``viz`` imports matplotlib and ipywidgets
(``tests/test_import_rules.py`` keeps it so).

- ``settings``     fast mode, data/cache directories, seeding, device, env report
- ``arrays``       the one conversion of array-likes (tensors, arrays, lists) to NumPy or tensors
- ``data``         one module per real face data set (``orl``, ``lfw``, ``fairface``,
                   ``utkface``, ``folder``: your own photos, one folder per person) and what
                   they share (``face_files``), fallbacks (``faces``), embedded images,
                   SynthFaces, words of several languages (``text``), pair/triplet/P x K
                   sampling, splits; ``cache``: the one atomic writer (``atomic_write``,
                   ``atomic_path``) and the content-keyed tensor cache (``load_or_build``)
- ``augment``      batch augmentations for ``fit(..., train_transform=...)``: random crop +
                   flip (``BatchAugment``), ``augment_faces``, ``SimCLRAugment``
- ``scratch``      from-scratch reference ops: convolution and receptive fields, classic
                   filters, batch norm, Maxout, DropBlock, deep-stack diagnostics
- ``models``       blocks by kind, one module per family group, the registry
                   (``create_model``, refuses duplicate names, records ``arch_name``); models
                   list their blocks and head (``feature_blocks()``, ``head_blocks()``);
                   the port of dlib's face ResNet, EfficientNet-Lite0, embedding nets,
                   Kim's text CNN
- ``cost``         parameters, multiply-adds, latency
- ``train``        fit (``train_transform`` augments training batches only) / evaluate /
                   predict (the one inference entry point: outputs, targets and the data
                   set's attributes), AMP, loaders; re-exports ``callbacks`` (History,
                   early stopping, best checkpoint) and ``checkpointing`` (atomic save,
                   safe load)
- ``distributed``  torchrun + DistributedDataParallel for ``fit``: process group, ranks,
                   sharded loaders, reduced metrics, gathered losses, rank-0 output
- ``metric_learning`` sub-package: ``distances`` (squared L2, L1, cosine: the one cosine
                   similarity; DeepFace normalisation, chi-square verifier), ``miners``
                   (all-triplets, batch-hard, semi-hard, pair, on one ``Miner`` base),
                   ``losses`` (contrastive, triplet, center, softmax + center, ArcFace,
                   CosFace, pair head, label smoothing, NT-Xent), ``tracking`` (``TrackedLoss``)
- ``evaluation``   sub-package: ``classification`` (accuracy, calibration), ``verification``
                   (score convention, ``pair_scores``, pairs, ROC, EER, TAR@FAR),
                   ``identification`` (gallery/probe splits, CMC, open set), ``retrieval``
                   (k-NN, nearest neighbours, precision@k), ``faces`` (every protocol in one
                   call; identity-level intervals and verdicts for comparing models),
                   ``embedding_set`` (vectors + labels + groups from ``predict``),
                   ``projections`` (PCA/t-SNE/UMAP, fit cache, numba cache set-up),
                   ``separation`` (separation tables, intervals), ``regression`` (age)
- ``pretrained``   sub-package: ImageNet weights (``imagenet``: torchvision's, and
                   EfficientNet-Lite0 offline), the course's shipped source checkpoints
                   and their recipes (``sources``), FaceNet's network and weight loader
                   (``facenet``), dlib's face recogniser (``recognizer``: detect, align,
                   descriptors by the PyTorch port or dlib, a descriptor cache; its
                   weight reader ``dlib_format``), the aligned face chips its network reads
                   (``chips``) and attribute heads (``heads``)
- ``transfer``     sub-package: ``freezing`` (freezing, per-layer learning rates),
                   ``features`` (cached features, front / tail split, linear probes),
                   ``regimes`` (the four ways to reuse a network), ``selfsupervised``
                   (SimCLR pre-training), ``multitask`` (multi-task heads and losses)
- ``nas``          neural architecture search that trains: a search space over the zoo's
                   blocks, performance estimation by short training (a lookup table when
                   filled), random search, regularised evolution, successive halving
                   (it trains, so it sits with ``transfer``; only notebooks import it)
- ``fairness``     sub-package: composition audits (``composition``), per-group metrics
                   with fairlearn's MetricFrame and bootstrap intervals (``group_metrics``),
                   FMR/FNMR per group (``verification``), embedding-space occupancy
                   (``occupancy``), rebalancing and a ThresholdOptimizer adapter (``mitigation``)
- ``stats``        the statistics behind every claim: seed and bootstrap intervals
                   (identity-level for faces), permutation gaps, Holm, ``compare``
                   verdicts, minimum detectable differences, ``run_seeds``
- ``viz``          every figure, by domain (``images``, ``training``, ``cost``,
                   ``verification``, ``embeddings``, ``fairness``): ``ax=None`` in, ``Axes`` out;
                   ``viz.widgets``: ipywidgets explorers with a static fallback when headless
                   (``plots`` and ``widgets`` are deprecated forwarders to it, removed soon)
- ``selfcheck``    "write it yourself" exercises: forbidden calls in a solution, by AST
- ``nbtools``      deprecated forwarder to ``course_tools.nbtools`` (removed soon)

The names below are re-exported for convenience; everything else is imported
from its module (``from course_utils.metric_learning import TripletLoss``).
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
