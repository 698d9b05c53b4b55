"""Face-recognition protocols on embeddings, and the small training glue around them.

Used by notebooks 04-06. Everything here works on embeddings already
computed (see :func:`course_utils.models.embedding.extract_embeddings`) and
builds on :mod:`course_utils.metrics`; scores follow its convention (**higher
= more likely the same person**; cosine similarity by default).

Protocols, all on identities never seen in training:

* **verification** (1:1, "are these two faces the same person?"):
  :func:`verification_pairs` takes every genuine pair and all (or a sample
  of) the impostor pairs; :func:`verification_scores` scores them;
* **closed-set identification** (1:N, "who is it?", everyone is enrolled):
  :func:`gallery_probe_split` with ``n_unknown=0`` enrols ``per_identity``
  images of each person (one-shot by default) and probes with the rest;
* **open-set identification** (some probes are strangers, who must be
  rejected): :func:`gallery_probe_split` with unknown identities;
  :func:`identify` rejects probes whose best score is below a threshold.

:func:`evaluate_embeddings` runs all three and returns one dict of numbers
(AUC, EER, TAR@FAR, rank-1, rank-5, open-set DIR@FAR).

Training glue: :class:`TrackedLoss` records a loss's diagnostics per epoch
(e.g. the active-triplet fraction) as a ``fit`` callback,
:class:`SoftmaxCenterLoss` is softmax + center loss in one module, and
:func:`augment_faces` is batch-wise augmentation, cheap enough for a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils import metrics as M
from course_utils.losses import CenterLoss
from course_utils.miners import active_triplet_fraction
from course_utils.train import Callback, TrainState

__all__ = [
    "ScoreFn",
    "cosine_scores",
    "VerificationPairs",
    "verification_pairs",
    "verification_scores",
    "GalleryProbeSplit",
    "gallery_probe_split",
    "similarity_matrix",
    "identify",
    "evaluate_embeddings",
    "TrackedLoss",
    "SoftmaxCenterLoss",
    "augment_faces",
]

#: A paired score function: ``(x1 (N, D), x2 (N, D)) -> (N,)`` scores, higher = more alike.
ScoreFn = Callable[[Tensor, Tensor], Any]


def _to_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().float().cpu()
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def _labels(labels: Any) -> np.ndarray:
    lab = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {lab.shape}.")
    return lab


def _check_emb(emb: Tensor, labels: np.ndarray) -> None:
    if emb.ndim != 2 or emb.shape[0] != labels.shape[0]:
        raise ValueError(
            f"embeddings must have shape (N, D) with N = len(labels) = {labels.shape[0]}; got {tuple(emb.shape)}."
        )


def cosine_scores(x1: Any, x2: Any) -> np.ndarray:
    """Cosine similarity of paired rows: (N, D), (N, D) -> (N,) (the default score)."""
    a, b = _to_tensor(x1), _to_tensor(x2)
    return (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(dim=1).numpy().astype(np.float64)


def _score(score_fn: ScoreFn | None, x1: Tensor, x2: Tensor) -> np.ndarray:
    if score_fn is None:
        return cosine_scores(x1, x2)
    with torch.no_grad():
        out = score_fn(x1, x2)
    out = out.detach().float().cpu().numpy() if isinstance(out, Tensor) else np.asarray(out, dtype=float)
    if out.shape != (x1.shape[0],):
        raise ValueError(f"score_fn must return one score per pair, shape ({x1.shape[0]},); got {out.shape}.")
    return out.astype(np.float64)


# --------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class VerificationPairs:
    """Index pairs into a set of images, with ``same`` = both show the same identity.

    Attributes:
        first, second: ``(P,)`` int64 indices, ``first < second``.
        same: ``(P,)`` bool.
    """

    first: np.ndarray
    second: np.ndarray
    same: np.ndarray

    def __len__(self) -> int:
        return int(self.first.size)

    @property
    def n_genuine(self) -> int:
        return int(self.same.sum())

    @property
    def n_impostor(self) -> int:
        return int((~self.same).sum())


def verification_pairs(labels: Any, *, max_impostors: int | None = None, seed: int = 0) -> VerificationPairs:
    """Every genuine pair ``i < j`` and all, or a random sample of, the impostor pairs.

    Args:
        labels: ``(N,)`` identity of each image.
        max_impostors: keep at most this many impostor pairs (drawn without
            replacement); ``None`` keeps them all.
        seed: seed of the impostor sample.

    Returns:
        :class:`VerificationPairs`, sorted by ``(first, second)``.

    Raises:
        ValueError: no genuine or no impostor pair can be formed.
    """
    lab = _labels(labels)
    i, j = np.triu_indices(lab.size, k=1)
    same = lab[i] == lab[j]
    if not same.any() or same.all():
        raise ValueError(
            f"verification needs genuine and impostor pairs; these {lab.size} images give "
            f"{int(same.sum())} genuine and {int((~same).sum())} impostor pairs."
        )
    keep = same.copy()
    imp = np.flatnonzero(~same)
    if max_impostors is not None and max_impostors < imp.size:
        if max_impostors < 1:
            raise ValueError(f"max_impostors must be >= 1, got {max_impostors}.")
        imp = np.random.default_rng(seed).choice(imp, max_impostors, replace=False)
    keep[imp] = True
    return VerificationPairs(i[keep].astype(np.int64), j[keep].astype(np.int64), same[keep])


def verification_scores(
    embeddings: Any,
    labels: Any,
    *,
    pairs: VerificationPairs | None = None,
    max_impostors: int | None = None,
    seed: int = 0,
    score_fn: ScoreFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ``same`` flags of verification pairs of a set of embeddings.

    Args:
        embeddings: ``(N, D)``.
        labels: ``(N,)``.
        pairs: the pairs to score (default: :func:`verification_pairs`).
        max_impostors, seed: passed to :func:`verification_pairs`.
        score_fn: paired score function (default: cosine similarity).

    Returns:
        ``(scores, same)``, each ``(P,)``.
    """
    emb, lab = _to_tensor(embeddings), _labels(labels)
    _check_emb(emb, lab)
    if pairs is None:
        pairs = verification_pairs(lab, max_impostors=max_impostors, seed=seed)
    return _score(score_fn, emb[pairs.first], emb[pairs.second]), pairs.same.copy()


# --------------------------------------------------------------------------- identification
@dataclass(frozen=True)
class GalleryProbeSplit:
    """A gallery (enrolled images) and probes (queries) drawn from one set of images.

    Attributes:
        gallery: ``(G,)`` indices of enrolled images.
        probes: ``(P,)`` indices of query images (never in the gallery).
        known: ``(P,)`` bool, whether the probe's identity is enrolled.
        unknown_identities: identities with no image in the gallery.
    """

    gallery: np.ndarray
    probes: np.ndarray
    known: np.ndarray
    unknown_identities: np.ndarray

    @property
    def n_known_probes(self) -> int:
        return int(self.known.sum())

    @property
    def n_unknown_probes(self) -> int:
        return int((~self.known).sum())


def gallery_probe_split(
    labels: Any, *, per_identity: int = 1, n_unknown: int | float = 0, seed: int = 0
) -> GalleryProbeSplit:
    """Enrol ``per_identity`` images of each known person; every other image is a probe.

    Args:
        labels: ``(N,)`` identity of each image.
        per_identity: gallery images per enrolled identity (1 = one-shot).
        n_unknown: identities left out of the gallery, whose images are all
            *unknown* probes (open set); an int, or a fraction in ``(0, 1)`` of
            the identities. 0 gives a closed set.
        seed: seed of the choice of unknown identities and gallery images.

    Returns:
        A :class:`GalleryProbeSplit`.

    Raises:
        ValueError: an enrolled identity has no image left to probe with, or
            no identity would be enrolled.
    """
    lab = _labels(labels)
    ids = np.unique(lab)
    if isinstance(n_unknown, float) and 0 < n_unknown < 1:
        n_unknown = int(round(n_unknown * ids.size))
    n_unknown = int(n_unknown)
    if per_identity < 1:
        raise ValueError(f"per_identity must be >= 1, got {per_identity}.")
    if not 0 <= n_unknown < ids.size:
        raise ValueError(f"n_unknown must be in [0, {ids.size - 1}] for {ids.size} identities, got {n_unknown}.")
    rng = np.random.default_rng(seed)
    unknown_ids = np.sort(rng.choice(ids, n_unknown, replace=False)) if n_unknown else ids[:0]
    gallery = []
    for ident in ids:
        if ident in unknown_ids:
            continue
        members = np.flatnonzero(lab == ident)
        if members.size <= per_identity:
            raise ValueError(
                f"identity {ident!r} has {members.size} image(s): it needs more than per_identity={per_identity} "
                "to leave a probe."
            )
        gallery.append(rng.choice(members, per_identity, replace=False))
    gallery_idx = np.sort(np.concatenate(gallery)).astype(np.int64)
    probes = np.setdiff1d(np.arange(lab.size), gallery_idx).astype(np.int64)
    known = ~np.isin(lab[probes], unknown_ids)
    return GalleryProbeSplit(gallery_idx, probes, known, unknown_ids)


def similarity_matrix(queries: Any, references: Any, *, score_fn: ScoreFn | None = None) -> np.ndarray:
    """Scores of every query against every reference: (P, D), (G, D) -> (P, G).

    Cosine similarity by default (one matrix product); a paired ``score_fn``
    is applied to all ``P * G`` pairs.
    """
    q, r = _to_tensor(queries), _to_tensor(references)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"queries (P, D) and references (G, D) expected; got {tuple(q.shape)} and {tuple(r.shape)}.")
    if score_fn is None:
        return (F.normalize(q, dim=1) @ F.normalize(r, dim=1).T).numpy().astype(np.float64)
    p, g = q.shape[0], r.shape[0]
    flat = _score(score_fn, q.repeat_interleave(g, dim=0), r.repeat(p, 1))
    return flat.reshape(p, g)


def identify(
    probe_embeddings: Any,
    gallery_embeddings: Any,
    gallery_labels: Any,
    *,
    threshold: float = -math.inf,
    score_fn: ScoreFn | None = None,
    reject_label: Any = -1,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-gallery identification with rejection.

    Each probe gets the label of its best-scoring gallery entry, or
    ``reject_label`` ("unknown person") when that best score is below
    ``threshold``.

    Returns:
        ``(predicted_labels, best_scores)``, each ``(P,)``.
    """
    g_lab = _labels(gallery_labels)
    s = similarity_matrix(probe_embeddings, gallery_embeddings, score_fn=score_fn)
    if s.shape[1] != g_lab.size:
        raise ValueError(f"gallery_labels has {g_lab.size} entries for {s.shape[1]} gallery embeddings.")
    best = s.argmax(axis=1)
    top = s[np.arange(s.shape[0]), best]
    pred = np.where(top >= threshold, g_lab[best], reject_label)
    return pred, top


# --------------------------------------------------------------------------- one call
def evaluate_embeddings(
    embeddings: Any,
    labels: Any,
    *,
    far: float = 1e-2,
    open_set_far: float = 0.1,
    n_unknown: int | float = 0.5,
    max_impostors: int | None = None,
    score_fn: ScoreFn | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Verification, closed-set and open-set identification numbers for one set of embeddings.

    The embeddings should come from identities never seen in training.

    * verification on :func:`verification_pairs`: ``auc``, ``eer``,
      ``tar_at_far`` (TAR at ``far``);
    * closed set, one-shot (one gallery image per identity, every other
      image a probe): ``rank1``, ``rank5``;
    * open set (``n_unknown`` identities left out of the one-shot gallery):
      ``dir_at_far``, the detection-and-identification rate at a false-alarm
      rate of ``open_set_far``.

    Also returns the counts the numbers rest on (``n_genuine``,
    ``n_impostor``, ``n_identities``, ``n_unknown_probes``).

    Args:
        embeddings: ``(N, D)``.
        labels: ``(N,)``; every identity needs at least two images.
        far: false accept rate of ``tar_at_far``.
        open_set_far: false alarm rate of ``dir_at_far``.
        n_unknown: identities (int) or share of them (float < 1) that are
            unknown in the open-set protocol.
        max_impostors: sample this many impostor pairs (default: all).
        score_fn: paired score function (default cosine similarity).
        seed: seed of the samples and splits.
    """
    emb, lab = _to_tensor(embeddings), _labels(labels)
    _check_emb(emb, lab)
    scores, same = verification_scores(emb, lab, max_impostors=max_impostors, seed=seed, score_fn=score_fn)
    out: dict[str, float] = {
        "auc": M.roc_auc(scores, same),
        "eer": M.equal_error_rate(scores, same).eer,
        "tar_at_far": M.tar_at_far(scores, same, far=far),
    }
    closed = gallery_probe_split(lab, n_unknown=0, seed=seed)
    s = similarity_matrix(emb[closed.probes], emb[closed.gallery], score_fn=score_fn)
    out["rank1"] = M.rank_k_accuracy(s, lab[closed.gallery], lab[closed.probes], k=1)
    out["rank5"] = M.rank_k_accuracy(s, lab[closed.gallery], lab[closed.probes], k=min(5, closed.gallery.size))
    opened = gallery_probe_split(lab, n_unknown=n_unknown, seed=seed)
    s = similarity_matrix(emb[opened.probes], emb[opened.gallery], score_fn=score_fn)
    res = M.open_set_identification(s, lab[opened.gallery], lab[opened.probes], far=open_set_far)
    out["dir_at_far"] = res.detection_identification_rate
    out.update(
        n_genuine=float(same.sum()),
        n_impostor=float((~same).sum()),
        n_identities=float(np.unique(lab).size),
        n_unknown_probes=float(opened.n_unknown_probes),
    )
    return out


# --------------------------------------------------------------------------- training glue
class TrackedLoss(Callback):
    """Wrap a loss so that its per-batch diagnostics are averaged per epoch.

    Use the same object as ``loss_fn`` and as a callback of ``fit``::

        tracked = TrackedLoss(TripletLoss(0.2, miner=BatchHardMiner(margin=0.2)), all_triplets_margin=0.2)
        fit(net, loader, loss_fn=tracked, callbacks=[tracked], ...)
        tracked.history          # [{"epoch": 1, "loss": ..., "active_fraction": ..., ...}, ...]

    Per epoch it records the mean over batches of the loss value and of each
    attribute in ``attrs`` that the loss has (``last_active_fraction`` of the
    triplet and contrastive losses, reported as ``active_fraction``); with
    ``all_triplets_margin`` also ``active_fraction_all``, the fraction of
    *all* valid triplets of the batch that violate that margin, whichever
    triplets the loss trained on.

    Attributes:
        loss: the wrapped loss (its parameters, e.g. ArcFace's class weights,
            must go to the optimizer).
        history: one dict per finished epoch.
    """

    def __init__(
        self,
        loss: Callable[[Any, Any], Tensor],
        *,
        attrs: Sequence[str] = ("last_active_fraction",),
        all_triplets_margin: float | None = None,
    ) -> None:
        self.loss = loss
        self.attrs = tuple(attrs)
        self.all_triplets_margin = all_triplets_margin
        self.history: list[dict[str, float]] = []
        self._batches: dict[str, list[float]] = {}

    @staticmethod
    def _key(attr: str) -> str:
        return attr[len("last_"):] if attr.startswith("last_") else attr

    def __call__(self, outputs: Any, targets: Any) -> Tensor:
        value = self.loss(outputs, targets)
        self._batches.setdefault("loss", []).append(float(value.detach()))
        for attr in self.attrs:
            if hasattr(self.loss, attr):
                self._batches.setdefault(self._key(attr), []).append(float(getattr(self.loss, attr)))
        if self.all_triplets_margin is not None and isinstance(outputs, Tensor):
            frac = active_triplet_fraction(outputs.detach().float(), targets, margin=self.all_triplets_margin)
            self._batches.setdefault("active_fraction_all", []).append(frac)
        return value

    def on_fit_start(self, state: TrainState) -> None:
        self.history, self._batches = [], {}

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        row = {"epoch": float(state.epoch)}
        row.update({k: float(np.mean(v)) for k, v in self._batches.items() if v})
        self.history.append(row)
        self._batches = {}

    def series(self, key: str) -> list[float]:
        """The per-epoch values of ``key`` (``loss``, ``active_fraction``, ...)."""
        return [row.get(key, math.nan) for row in self.history]


class SoftmaxCenterLoss(nn.Module):
    """Softmax cross-entropy plus ``center_weight`` x center loss (Wen et al., 2016).

    A linear classifier over the training identities separates them; the
    center loss pulls each embedding towards its identity's centre, so that
    the classes become compact, which is what verification of *new* people
    needs. Only the embedding is kept after training.

    Give the centres their own learning rate::

        crit = SoftmaxCenterLoss(30, embedding_dim=64, center_weight=0.01)
        opt = torch.optim.Adam([*net.parameters(), *crit.classifier.parameters()], lr=1e-3)
        opt.add_param_group(crit.center.param_group(lr=0.5))   # or use SGD for both

    Attributes:
        classifier: ``nn.Linear(embedding_dim, num_classes)``.
        center: the :class:`~course_utils.losses.CenterLoss`.
        last_ce, last_center: the two terms of the last call (floats).
    """

    def __init__(self, num_classes: int, *, embedding_dim: int, center_weight: float = 0.01) -> None:
        super().__init__()
        if center_weight < 0:
            raise ValueError(f"center_weight must be >= 0, got {center_weight}.")
        self.classifier = nn.Linear(embedding_dim, num_classes)
        self.center = CenterLoss(num_classes, embedding_dim=embedding_dim)
        self.center_weight = float(center_weight)
        self.last_ce = 0.0
        self.last_center = 0.0

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """``ce(classifier(e), y) + center_weight * center(e, y)``: (N, D), (N,) -> scalar."""
        ce = F.cross_entropy(self.classifier(embeddings), labels.long())
        center = self.center(embeddings, labels)
        self.last_ce, self.last_center = float(ce.detach()), float(center.detach())
        return ce + self.center_weight * center


def augment_faces(
    images: Tensor,
    *,
    max_rotation: float = 10.0,
    max_shift: float = 0.08,
    max_scale: float = 0.08,
    flip: bool = True,
    brightness: float = 0.2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random small similarity transforms, mirror flips and brightness changes of a batch.

    One ``affine_grid`` + ``grid_sample`` call for the whole batch, so it
    costs little next to the network. Borders are extended (no black
    corners). Faces stay faces: a few degrees, a few per cent of shift and
    scale; identity is preserved, which is what metric learning needs.

    Args:
        images: ``(N, C, H, W)`` in ``[0, 1]``.
        max_rotation: degrees.
        max_shift: fraction of the image size.
        max_scale: relative zoom in or out.
        flip: mirror half of the images left-right.
        brightness: relative brightness change.
        generator: for reproducible draws.

    Returns:
        ``(N, C, H, W)`` in ``[0, 1]``.
    """
    if images.ndim != 4:
        raise ValueError(f"augment_faces expects (N, C, H, W), got {tuple(images.shape)}.")
    n, dev = images.shape[0], images.device

    def u(*shape: int) -> Tensor:  # uniform in [-1, 1], drawn on the CPU for reproducibility
        return (torch.rand(*shape, generator=generator) * 2 - 1).to(dev)

    ang = u(n) * math.radians(max_rotation)
    scale = 1 + u(n) * max_scale
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).to(dev) if flip else torch.ones(n, device=dev)
    tx, ty = u(n) * 2 * max_shift, u(n) * 2 * max_shift
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack(
        [torch.stack([cos * mirror, -sin, tx], 1), torch.stack([sin * mirror, cos, ty], 1)], 1
    ).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    return (out * (1 + u(n, 1, 1, 1).to(images.dtype) * brightness)).clamp(0, 1)

