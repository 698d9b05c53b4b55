# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Seeing embeddings: PCA, t-SNE and UMAP, and what they hide
#
# A face recogniser turns every photo into a point in 64 or 512 dimensions.
# We cannot look at those points, so we squash them to two dimensions and
# look at the picture. The lecture's exercise asks: *visualise the
# embeddings learned by a face recognition network — does it separate the
# pictures of different people?* A picture alone cannot answer that
# honestly: every projection throws information away, and t-SNE and UMAP
# draw clusters even where there are none. So in this notebook every picture
# comes with numbers, computed in the full space **and** in the picture.
#
# 1. **Embedders** — the course's own pretrained face embedder (or the
#    published FaceNet when its weights are on disk), a network trained as a
#    classifier, and one trained with a metric loss
# 2. **Three projections** — PCA, t-SNE and UMAP, with fixed seeds; what it
#    costs to compile UMAP, and reusing a fitted map
# 3. **Does it separate people?** — k-NN accuracy and silhouette in the full
#    space versus in 2-D, and the trustworthiness of each picture
# 4. **An explorer** for UMAP's `n_neighbors` / `min_dist` and t-SNE's perplexity
# 5. **What else the embedding encodes** — coloured by a group attribute
# 6. **Image retrieval** with CNN features versus a colour histogram
# 7. **Separable versus discriminative** features: softmax, center loss and
#    ArcFace in a 2-D embedding
# 8. **Classifier-trained versus metric-trained** embeddings of people never
#    seen in training
# 9. **A published face recogniser**: loading FaceNet's VGGFace2 weights
# 10. **Exercises** (graded, with self-checks)
#
# Every number quoted below is computed when the notebook runs.

# %%
# On Google Colab (detected, not asked): install the course package first.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "course_utils @ git+https://github.com/cnn-course/cnn-course@main"], check=True)
# --- end of Colab set-up

import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from course_utils import embeddings as E
from course_utils import env_report, limit_cpu_threads, pick, resolve_device, seed_everything
from course_utils import pretrained as P
from course_utils.data import PKBatchSampler, identity_split, load_face_attributes, load_face_identities
from course_utils.facerec import SoftmaxCenterLoss, augment_faces, evaluate_embeddings
from course_utils.pretrained.facenet import InceptionResnetV1, check_facenet_state_dict, facenet_preprocess, load_facenet, try_facenet
from course_utils.losses import ArcFaceLoss, CenterLoss, TripletLoss
from course_utils.miners import BatchHardMiner
from course_utils.models.embedding import EmbeddingNet, PerImageStandardize, face_backbone
from course_utils.plots import plot_embedding_2d, plot_thumbnails, show_images, show_retrieval
from course_utils.train import fit, make_loader

info = env_report()
device = resolve_device()
notebook_start = time.perf_counter()

# %% [markdown]
# UMAP (the `umap-learn` package) is written with **numba**, which compiles
# its functions to machine code the first time they run: tens of seconds.
# numba can keep the compiled code on disk, in `NUMBA_CACHE_DIR`; we point it
# into the course cache *before* UMAP is imported, and count the compiled
# functions already there. A second run of this notebook starts warm.
# `configure_numba_cache` also picks numba's `workqueue` threading layer:
# with its default (OpenMP) workers, which keep spinning after UMAP returns,
# PyTorch training after a UMAP fit ran several times slower on two cores.
#
# The networks here are tiny; on a CPU their operations are too small to be
# worth splitting among threads, so we compute with one thread (the last cell
# restores the default).

# %%
numba_dir = E.configure_numba_cache()
numba_files_before = E.numba_cache_files()
print(f"numba cache: {numba_dir} ({numba_files_before} compiled functions on disk before this run)")

default_threads = limit_cpu_threads(1, device=device)  # None keeps PyTorch's default
print(f"computing on {device} with {torch.get_num_threads()} CPU thread(s) (default {default_threads})")
IMG = 48  # the course face embedder was trained on 48-pixel faces
EPOCHS = pick(fast=25, full=60)
print(f"{IMG} px faces; {EPOCHS} epochs per trained network")

# %% [markdown]
# ## 1. The data and three embedders
#
# The faces are ORL (AT&T: 40 people, 10 grey photos each) when they are in
# the data directory, and SynthFaces otherwise (the loader says so). We split
# by **identity**: 30 people to train on, 10 people that no network trained
# here ever sees.

# %%
faces = load_face_identities("orl", image_size=IMG)
ON_ORL = faces.name == "orl_faces"
split = identity_split(faces.targets, test_fraction=0.25, seed=0)
train_set, test_set = faces.subset(split.train), faces.subset(split.test)
train_set.targets = np.unique(train_set.targets, return_inverse=True)[1]  # 0..K-1 for the classifiers
n_train_ids = len(np.unique(train_set.targets))
print(f"data: {faces.name} ({'real photos' if ON_ORL else 'SYNTHETIC fallback: put ORL in the data dir for real faces'})")
print(f"{len(faces)} images of {faces.n_classes} people; training {n_train_ids} people ({len(train_set)} images), "
      f"test {len(np.unique(test_set.targets))} unseen people ({len(test_set)} images)")
assert set(faces.targets[split.train]).isdisjoint(faces.targets[split.test])

# %% [markdown]
# **A pretrained face recogniser.** The real thing is FaceNet's
# Inception-ResNet-v1 trained on VGGFace2 (3.3 million photos of 9,131
# people), whose weights facenet-pytorch publishes; `try_facenet` loads them
# when the file is in the torch cache (section 9 shows the loading code).
# Offline, we use the **course's own face embedder**, a small ResNet trained
# to tell apart 200 *synthetic* people (`faces_supervised`, shipped with the
# package): it has never seen a real face, let alone these people.

# %%
facenet = try_facenet("vggface2")  # None offline: then the course's embedder is used
course_embedder = P.load_source_model("faces_supervised").eval()
print(f"course face embedder: {course_embedder.source_meta['arch']}, {course_embedder.source_meta['params']:,} "
      f"parameters, trained on {course_embedder.source_meta['data']['name']} "
      f"({course_embedder.source_meta['data']['n_classes']} identities)")


def course_forward(model, x):
    """Grey faces -> the 3-channel input the course embedder was trained on -> its pooled features (N, 64)."""
    return model(x.expand(-1, 3, -1, -1))


if facenet is not None:
    PRETRAINED = ("FaceNet (VGGFace2, published)", facenet, lambda m, x: m(facenet_preprocess(x)))
else:
    PRETRAINED = ("course face embedder (SynthFaces)", course_embedder, course_forward)
print("pretrained embedder used below:", PRETRAINED[0])

# %% [markdown]
# **Two embedders we train**, from the same random start and with the same
# data, augmentation and optimiser, on the 30 training people:
#
# * a **classifier**: the 64-number embedding layer followed by a linear
#   softmax layer over the 30 people; afterwards the softmax layer is thrown
#   away and the embedding kept (DeepFace's recipe);
# * a **metric learner**: the same network trained with the batch-hard
#   triplet loss on unit vectors (FaceNet's recipe), which asks directly for
#   "same person close, different people far".

# %%
EMB_DIM = 64
aug_gen = torch.Generator().manual_seed(0)


def make_net(*, normalize=True):
    seed_everything(0)
    return EmbeddingNet(face_backbone(in_chans=faces.image_shape[0]), embedding_dim=EMB_DIM, normalize=normalize,
                        input_norm=PerImageStandardize())


def train_forward(model, images):
    return model(augment_faces(images, generator=aug_gen) if model.training else images)


def train_embedder(criterion, *, normalize=True):
    net = make_net(normalize=normalize)
    loader = make_loader(train_set, batch_sampler=PKBatchSampler(train_set.targets, p=10, k=5, seed=0), device=device)
    opt = torch.optim.AdamW([{"params": net.parameters()},
                             {"params": list(criterion.parameters()), "weight_decay": 0.0}], lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    t0 = time.perf_counter()
    hist = fit(net, loader, loss_fn=criterion, optimizer=opt, epochs=EPOCHS, scheduler=sched, device=device,
               forward_fn=train_forward, progress=False)
    net.normalize = True
    return net.eval(), hist, time.perf_counter() - t0


classifier_net, hist_cls, t_cls = train_embedder(SoftmaxCenterLoss(n_train_ids, embedding_dim=EMB_DIM, center_weight=0.0),
                                                 normalize=False)
metric_net, hist_met, t_met = train_embedder(TripletLoss(0.2, miner=BatchHardMiner(margin=0.2)))
print(f"classifier (softmax): {t_cls:.1f} s, final loss {hist_cls.last('train_loss'):.3f}")
print(f"metric (batch-hard triplet): {t_met:.1f} s, final loss {hist_met.last('train_loss'):.3f}")

# %% [markdown]
# ## 2. Extracting embeddings
#
# `E.extract` runs a model over a data set in batches, on the chosen device,
# in eval mode, and returns an `EmbeddingSet`: the vectors `(N, D)`, the
# labels `(N,)`, and the data set's group attributes (one row per image).

# %%
emb = {
    "metric-trained": E.extract(metric_net, test_set, device=device, name="metric-trained"),
    "classifier-trained": E.extract(classifier_net, test_set, device=device, name="classifier-trained"),
    PRETRAINED[0]: E.extract(PRETRAINED[1], test_set, device=device, forward_fn=PRETRAINED[2], name=PRETRAINED[0]),
}
for name, e in emb.items():
    print(f"{name:36s} {len(e)} x {e.dim}")
test_emb = emb["metric-trained"]
assert test_emb.vectors.shape == (len(test_set), EMB_DIM) and np.array_equal(test_emb.labels, test_set.targets)

# %% [markdown]
# ## 3. Three projections, and what UMAP costs
#
# * **PCA** keeps the two directions of largest variance: a linear map, so
#   distances and directions in the picture mean something, but clusters that
#   differ along other directions pile up on each other.
# * **t-SNE** (van der Maaten and Hinton, 2008) matches, point by point, a
#   distribution over neighbours in the full space (Gaussian, with a width set
#   by the *perplexity*, roughly the number of neighbours that count) to one in
#   2-D (a heavy-tailed Student-t). It keeps neighbourhoods; sizes of clusters
#   and distances between them carry almost no information.
# * **UMAP** (McInnes et al., 2018) builds a weighted k-nearest-neighbour graph
#   (`n_neighbors`) and lays it out in 2-D, with `min_dist` setting how tightly
#   points may pack. It is faster than t-SNE on large sets, keeps somewhat more
#   of the global layout, and — unlike t-SNE — can place **new** points into a
#   fitted map (`transform`).
#
# All three get a fixed seed (`random_state`); with one, UMAP runs
# single-threaded and gives the same map every time. `ProjectionCache` fits
# each (method, parameters) once and hands back the same fit afterwards. The
# first UMAP fit of a session includes importing UMAP and numba's compilation:
# we time it, then time a second, identical fit.

# %%
t0 = time.perf_counter()
umap = E.import_umap()
t_import = time.perf_counter() - t0
cache = E.ProjectionCache(test_emb.vectors, seed=0)
proj = {"PCA": cache.get("pca"), "t-SNE": cache.get("tsne"), "UMAP": cache.get("umap")}
cold = t_import + proj["UMAP"].seconds
warm_fit = E.project(test_emb.vectors, "umap", seed=0)  # the same fit again, outside the cache
numba_files_after = E.numba_cache_files()
print(f"UMAP cold: import {t_import:.1f} s + first fit {proj['UMAP'].seconds:.1f} s = {cold:.1f} s")
print(f"UMAP warm: the same fit again {warm_fit.seconds:.2f} s")
print(f"numba on-disk cache: {numba_files_before} compiled functions before, {numba_files_after} now "
      f"({'HIT: compiled code was loaded from disk' if numba_files_before else 'MISS: compiled and saved for next time'})")
print(f"t-SNE {proj['t-SNE'].seconds:.2f} s, PCA {proj['PCA'].seconds:.3f} s")
assert np.allclose(warm_fit.coords, proj["UMAP"].coords), "a fixed seed gives the same UMAP map"
assert warm_fit.seconds < cold

# %% [markdown]
# A fitted UMAP can place new points without refitting. Mirror-flipped
# photos of the same ten people are new images of the same faces: they should
# land next to their originals. (`transform` is itself compiled on its first
# call.)

# %%
flipped = E.extract(metric_net, test_set, device=device,
                    forward_fn=lambda m, x: m(torch.flip(x, dims=[3])))
t0 = time.perf_counter()
placed = proj["UMAP"].transform(flipped.vectors)
t_transform = time.perf_counter() - t0
nearest = np.linalg.norm(placed[:, None] - proj["UMAP"].coords[None], axis=2).argmin(axis=1)
flip_same_person = float(np.mean(test_emb.labels[nearest] == flipped.labels))
print(f"transform of {len(placed)} flipped faces: {t_transform:.1f} s (no refit); "
      f"{flip_same_person:.0%} land nearest to a photo of the same person")
assert flip_same_person > 2 / 10, "flipped faces should land near their person far more often than chance (1 in 10)"

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
for ax, (name, p) in zip(axes, proj.items()):
    plot_embedding_2d(p.coords, test_emb.labels, ax=ax, legend=name == "PCA",
                      title=f"{p.label}: {len(test_emb)} faces of 10 unseen people")
fig.suptitle("the metric-trained embedding (64-d), three ways to draw it");

# %% [markdown]
# With the faces themselves at their points, the map becomes readable: one
# can see *why* two photos ended up together (the same pose, the same
# glasses, the same lighting...). A larger `min_dist` spreads each cluster
# out so that the thumbnails overlap less; it changes the packing, not who is
# next to whom.

# %%
spread_out = cache.get("umap", min_dist=0.8)
plot_thumbnails(spread_out.coords, test_set.images, labels=test_emb.labels, zoom=0.55,
                title=f"{spread_out.label} of the metric-trained embedding, with the faces");

# %% [markdown]
# ## 4. Does it separate people? Numbers, not only pictures
#
# For each space — the full 64-d embedding and each 2-D picture — we measure:
#
# * **k-NN accuracy** (leave-one-out, k = 5): each photo is given the
#   majority identity of its 5 nearest other photos. It asks "are my
#   neighbours the same person?", which is what identification does.
# * **silhouette**: for each point, `(b - a) / max(a, b)` with `a` the mean
#   distance to its own person's photos and `b` the mean distance to the
#   nearest other person's; +1 is tight, well-separated clusters, 0 overlap.
# * **trustworthiness** (of a picture): 1 when the 5 nearest neighbours of
#   every point in 2-D were also near in the full space; it drops when the
#   picture puts together points that were far apart — the false clusters.
#
# We also ask whether the *distances between people* survive: the rank
# correlation (Spearman) between the distances of the ten people's centres in
# the full space and in each picture.

# %%
from scipy.stats import spearmanr
from scipy.spatial.distance import pdist


def centre_distance_correlation(x, xy, labels):
    ids = np.unique(labels)
    full = pdist(np.stack([x[labels == i].mean(0) for i in ids]))
    flat = pdist(np.stack([xy[labels == i].mean(0) for i in ids]))
    return float(spearmanr(full, flat)[0])


def separation(e, projections):
    table = E.separation_table(e.vectors, projections, e.labels)
    table["centre distances kept (Spearman)"] = [1.0] + [
        centre_distance_correlation(e.vectors, p.coords, e.labels) for p in projections.values()]
    return table


sep_metric = separation(test_emb, proj)
sep_metric.round(3)

# %%
full_row = sep_metric.iloc[0]
print(f"full {test_emb.dim}-d space: {full_row['knn_acc']:.0%} of photos have a 5-NN majority of the right person "
      f"(chance about {1 / 10:.0%}), silhouette {full_row['silhouette']:.2f}")
for name in proj:
    r = sep_metric.loc[name]
    print(f"{name:6s}: k-NN {r['knn_acc']:.0%} ({r['knn_acc'] - full_row['knn_acc']:+.0%} vs full), silhouette "
          f"{r['silhouette']:.2f} ({r['silhouette'] - full_row['silhouette']:+.2f}), trustworthiness "
          f"{r['trustworthiness']:.3f}")
assert sep_metric["knn_acc"].between(0, 1).all() and sep_metric["trustworthiness"].iloc[1:].between(0, 1).all()
pictures = sep_metric.iloc[1:]
print(f"most trustworthy picture: {pictures['trustworthiness'].idxmax()}; best at keeping the distances between "
      f"people: {pictures['centre distances kept (Spearman)'].idxmax()}")
knn_target = 0.7 if ON_ORL else 0.3  # SynthFaces' nuisance variation makes the fallback harder for 30 training ids
assert full_row["knn_acc"] > knn_target, f"the metric-trained embedding should separate unseen people ({knn_target})"
assert sep_metric.loc["t-SNE", "trustworthiness"] > sep_metric.loc["PCA", "trustworthiness"] - 0.05

# %% [markdown]
# How to read it:
#
# * The **full-space** row is the truth the pictures are judged against.
#   A 2-D picture can *raise* the silhouette above it: t-SNE and UMAP pull
#   neighbourhoods into tight blobs and push them apart, so a picture can
#   look much cleaner than the embedding it comes from. The k-NN accuracy in
#   2-D is closer to honest, because it only asks about neighbours.
# * **PCA** is linear: it tends to keep the distances between people's
#   centres (high rank correlation) while mixing neighbourhoods (low
#   trustworthiness, low 2-D k-NN accuracy); **t-SNE** and **UMAP** tend to do
#   the opposite. The line printed above says which won each contest in this
#   run. Never read the distance between two clusters, or their sizes, off a
#   t-SNE picture.
# * With 10 photos of 10 people, every number moves by a few points with the
#   seed of the projection; compare differences against that.
#
# The same questions for the pretrained embedder, on **all 40 people** of the
# data set (none of whom it has seen): a harder picture, with 40 colours.

# %%
all_emb = E.extract(PRETRAINED[1], faces, device=device, forward_fn=PRETRAINED[2], name=PRETRAINED[0])
cache_all = E.ProjectionCache(all_emb.vectors, seed=0)
proj_all = {"PCA": cache_all.get("pca"), "t-SNE": cache_all.get("tsne"), "UMAP": cache_all.get("umap")}
sep_all = separation(all_emb, proj_all)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
for ax, (name, p) in zip(axes, proj_all.items()):
    plot_embedding_2d(p.coords, all_emb.labels, ax=ax, s=10,
                      title=f"{p.label}\n{name} k-NN acc {sep_all.loc[name, 'knn_acc']:.2f}")
fig.suptitle(f"{PRETRAINED[0]}: {len(all_emb)} photos of {faces.n_classes} people it has never seen")
print(f"UMAP of {len(all_emb)} points: {proj_all['UMAP'].seconds:.1f} s (compiled already); "
      f"t-SNE {proj_all['t-SNE'].seconds:.1f} s")
sep_all.round(3)

# %%
assert 0 <= sep_all.iloc[0]["knn_acc"] <= 1
print(f"pretrained embedder, full space: k-NN accuracy {sep_all.iloc[0]['knn_acc']:.2f} over 40 people "
      f"(chance {1 / 40:.3f}); best 2-D picture by k-NN: {sep_all.iloc[1:]['knn_acc'].idxmax()}")

# %% [markdown]
# ## 5. The explorer: what the knobs do
#
# `n_neighbors` sets how local UMAP's graph is: small values break people into
# fragments, large ones merge them into a continuum. `min_dist` only changes
# how tightly the points pack, not who is next to whom. t-SNE's `perplexity`
# plays the role of `n_neighbors`. The text line gives each picture's numbers,
# so that you can see a prettier picture that is *less* trustworthy. In a
# browser the figure follows the sliders; without one (CI, a script) it is
# drawn once, at the values fitted above, which the cache returns without
# refitting.

# %%
hits_before = cache.hits
explorer = E.projection_explorer(cache, test_emb.labels, n_neighbors=15, min_dist=0.1, perplexity=30)
explorer

# %%
print(explorer.info)
print(f"first frame reused {cache.hits - hits_before} cached fits")
assert "trustworthiness" in explorer.info and explorer.figure is not None
assert cache.hits - hits_before == 2, "the first frame should reuse the UMAP and t-SNE fitted above"

# %% [markdown]
# ## 6. What else is in the embedding? Colouring by a group attribute
#
# Colour the same kind of picture by an attribute the network was never
# asked about. We embed FairFace photos (when present; SynthFaces' stand-in
# attributes otherwise) with the course face embedder and colour them by the
# group labels. If a k-NN vote in the embedding predicts an attribute well
# above the majority rate, the embedding **encodes** it — and what an
# embedding encodes can be used, or can leak. Notebook 06 measures what this
# means for the error rates of different groups.

# %%
attr = load_face_attributes("fairface", split="val", image_size=IMG, target="gender",
                            max_per_group=pick(fast=40, full=None))
attr_emb = E.extract(course_embedder, attr, device=device, forward_fn=course_forward, name="course face embedder")
cols = list(attr.group_columns)[:2]
attr_proj = E.project(attr_emb.vectors, "umap", seed=0)
rows = {}
fig, axes = plt.subplots(1, len(cols), figsize=(6.5 * len(cols), 5), layout="constrained", squeeze=False)
for ax, col in zip(axes[0], cols):
    values = attr_emb.groups[col].astype(str).to_numpy()
    codes = np.unique(values, return_inverse=True)[1]
    rows[col] = {"groups": len(np.unique(values)), "majority rate": float(np.bincount(codes).max() / len(codes)),
                 "k-NN acc (full)": E.knn_accuracy_2d(attr_emb.vectors, codes, k=10),
                 "k-NN acc (UMAP)": E.knn_accuracy_2d(attr_proj.coords, codes, k=10)}
    plot_embedding_2d(attr_proj.coords, values, ax=ax, s=8, title=f"coloured by {col}")
fig.suptitle(f"{attr.name}: {len(attr)} faces, UMAP of the course face embedder ({attr_proj.seconds:.1f} s)")
attr_table = pd.DataFrame(rows).T
attr_table.round(3)

# %%
assert attr_table["k-NN acc (full)"].between(0, 1).all()
for col, r in attr_table.iterrows():
    gain = r["k-NN acc (full)"] - r["majority rate"]
    print(f"{col}: 10-NN vote {r['k-NN acc (full)']:.2f} vs majority rate {r['majority rate']:.2f} "
          f"({'encoded' if gain > 0.05 else 'barely encoded'}: {gain:+.2f})")

# %% [markdown]
# ## 7. Image retrieval with CNN features
#
# Before anyone trained embeddings for faces, the first striking use of CNN
# features was **similarity search**: Krizhevsky et al. (2012) showed that
# images whose last hidden layers are close look alike, even when their
# pixels do not. The older baseline compared **colour histograms**. We query
# with every test photo against all the others (leave-one-out) and count how
# many of the k returned photos show the same person: **precision@k** (k = 9
# is every other photo of that person).
#
# ORL photos are grey, so the "colour" histogram is a 32-bin intensity
# histogram there (on colour images the same function builds a joint RGB
# histogram). The CNN features of our trained network are its penultimate
# layer (the pooled features before the embedding projection) and its
# embedding; the course face embedder's output is its penultimate layer too
# (its classifier was removed).

# %%
test_images = test_set.float_images()
pooled = lambda m, x: m.pooled_features(x)  # noqa: E731 - the layer before the projection
FEATURES = {  # name -> (function of images (N, 1, H, W) -> features (N, D), metric)
    "intensity histogram (32 bins)": (lambda x: E.color_histograms(x, bins=32), "intersection"),
    "raw pixels": (lambda x: PerImageStandardize()(x).flatten(1).numpy(), "cosine"),
    f"pretrained: {PRETRAINED[0]}": (lambda x: PRETRAINED[2](PRETRAINED[1], x).numpy(), "cosine"),
    "metric-trained net, penultimate": (lambda x: pooled(metric_net, x).numpy(), "cosine"),
    "metric-trained net, embedding": (lambda x: metric_net(x).numpy(), "cosine"),
}
# the same photos, relit: every query's brightness scaled by a random factor in [0.6, 1.4]
relight = 0.6 + 0.8 * torch.rand(len(test_images), 1, 1, 1, generator=torch.Generator().manual_seed(0))
relit_images = (test_images * relight).clamp(0, 1)
features, rows = {}, {}
with torch.no_grad():
    for name, (fn, metric) in FEATURES.items():
        f, f_relit = fn(test_images), fn(relit_images)
        features[name] = (f, metric)
        rows[name] = {**{f"P@{k}": E.retrieval_precision(f, test_set.targets, k=k, metric=metric) for k in (1, 5, 9)},
                      "P@5, relit queries": E.retrieval_precision(f, test_set.targets, k=5, metric=metric,
                                                                  queries=f_relit)}
retrieval = pd.DataFrame(rows).T
retrieval["chance"] = 9 / (len(test_set) - 1)
retrieval.round(3)

# %%
queries = np.array([np.flatnonzero(test_set.targets == t)[0] for t in np.unique(test_set.targets)[:4]])
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), layout="constrained")
for ax, name in zip(axes, ["intensity histogram (32 bins)", "metric-trained net, penultimate"]):
    f, metric = features[name]
    idx, _ = E.nearest_neighbours(f, k=5, metric=metric)
    show_retrieval(test_set.images[queries], test_set.images[idx[queries]],
                   test_set.targets[idx[queries]] == test_set.targets[queries][:, None], ax=ax,
                   title=f"{name}\nP@5 = {retrieval.loc[name, 'P@5']:.2f} (blue: query; green: same person)")

# %%
hist, cnn = retrieval.loc["intensity histogram (32 bins)"], retrieval.loc["metric-trained net, penultimate"]
print(f"P@5 on the photos as taken: CNN features {cnn['P@5']:.2f}, histogram {hist['P@5']:.2f} "
      f"(chance {retrieval['chance'].iloc[0]:.2f})")
print(f"P@5 with relit queries:     CNN features {cnn['P@5, relit queries']:.2f}, histogram "
      f"{hist['P@5, relit queries']:.2f}")
assert cnn["P@5"] > 3 * retrieval["chance"].iloc[0]
assert cnn["P@5, relit queries"] > hist["P@5, relit queries"] + 0.2, "relighting should break the histogram, not the CNN"

# %% [markdown]
# Look at the first columns of the table before the last one. On ORL the
# humble histogram comes close to the trained network, or beats it (the
# printout above says which, in this run): each person was photographed in
# **one session**, under one lighting, against one background, so "same
# brightness distribution" almost means "same person".
# That is a property of the data set, not of faces — a shortcut that any
# method, a CNN included, can learn and that breaks on new photos. Relight
# the queries (last column) and the histogram collapses, while the CNN
# features, computed on standardised images and trained with brightness
# augmentation, barely move (standardised raw pixels are immune to a pure
# change of brightness by construction; a shift of the head would break them).
#
# A histogram throws away *where* things are: two photos with the same
# lighting match, whoever is in them. Raw pixels keep where things are, but
# a small shift of the head changes them all. CNN features are built to
# be stable under small shifts and sensitive to shapes, and the trained
# embedding adds the one thing retrieval of *people* needs: invariance to
# pose and expression of the same person.
#
# ## 8. Separable versus discriminative features
#
# Wen et al. (2016) trained networks whose last hidden layer has **two**
# units, so the features can be drawn directly, without any projection. With
# softmax alone the classes are **separable** — each sits in its own wedge
# from the origin — but they are long and thin, and a new class would have
# nowhere to go: good for closed-set classification, poor for comparing new
# faces by distance. Adding the **center loss** pulls each class to a point:
# the features become **discriminative** (small within-class, large
# between-class distances). **ArcFace** normalises the features and asks for
# an angular margin: classes become tight arcs on the circle.
#
# We repeat the experiment on scikit-learn's handwritten digits (ten classes,
# always available), with the same small network and the same data for all
# three losses.

# %%
from course_utils.data import load_digits_dataset, stratified_split

digits = load_digits_dataset()
dsplit = stratified_split(digits.targets, test_fraction=0.25, seed=0)
d_train, d_test = digits.subset(dsplit.train), digits.subset(dsplit.test)
EPOCHS_2D = pick(fast=30, full=60)


def make_2d_net():
    seed_everything(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 2))


def train_2d(criterion, *, center_lr=None):
    net = make_2d_net()
    groups = [{"params": net.parameters()}]
    if isinstance(criterion, SoftmaxCenterLoss):
        groups.append({"params": criterion.classifier.parameters()})
        if center_lr:
            groups.append(criterion.center.param_group(lr=center_lr))
    else:
        groups.append({"params": criterion.parameters()})
    opt = torch.optim.Adam(groups, lr=3e-3)
    loader = make_loader(d_train, batch_size=128, shuffle=True, device=device, generator=torch.Generator().manual_seed(0))
    fit(net, loader, loss_fn=criterion, optimizer=opt, epochs=EPOCHS_2D, device=device, progress=False)
    return net.eval()


t0 = time.perf_counter()
losses_2d = {
    "softmax": SoftmaxCenterLoss(10, embedding_dim=2, center_weight=0.0),
    "softmax + center loss": SoftmaxCenterLoss(10, embedding_dim=2, center_weight=0.1),
    "ArcFace": ArcFaceLoss(10, embedding_dim=2, s=10.0, m=0.2),
}
nets_2d = {name: train_2d(crit, center_lr=0.5 if "center" in name else None) for name, crit in losses_2d.items()}
print(f"three 2-D networks trained in {time.perf_counter() - t0:.1f} s")

feat_2d, rows = {}, {}
for name, net in nets_2d.items():
    f = E.extract(net, d_test, device=device).vectors
    crit = losses_2d[name]
    with torch.no_grad():
        logits = crit.logits(torch.as_tensor(f)) if name == "ArcFace" else crit.classifier(torch.as_tensor(f))
    feat_2d[name] = f
    rows[name] = {"test accuracy": float((logits.argmax(1).numpy() == d_test.targets).mean()),
                  "silhouette (Euclidean)": E.silhouette(f, d_test.targets),
                  "silhouette (cosine)": E.silhouette(f, d_test.targets, metric="cosine"),
                  "angular spread (deg)": E.angular_spread(f, d_test.targets)}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
for ax, (name, f) in zip(axes, feat_2d.items()):
    shown = f / np.linalg.norm(f, axis=1, keepdims=True) if name == "ArcFace" else f  # ArcFace compares angles only
    plot_embedding_2d(shown, d_test.targets, ax=ax, s=8, legend=name == "softmax",
                      title=f"{name}: accuracy {rows[name]['test accuracy']:.2f}")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
fig.suptitle(f"the 2-D features of {len(d_test)} held-out digits (no projection: the network's own 2 numbers)")
table_2d = pd.DataFrame(rows).T
table_2d.round(3)

# %%
assert (table_2d["test accuracy"] > 0.6).all()
assert table_2d.loc["softmax + center loss", "silhouette (Euclidean)"] > table_2d.loc["softmax", "silhouette (Euclidean)"]
print(f"center loss: Euclidean silhouette {table_2d.loc['softmax', 'silhouette (Euclidean)']:.2f} -> "
      f"{table_2d.loc['softmax + center loss', 'silhouette (Euclidean)']:.2f}; ArcFace angular spread "
      f"{table_2d.loc['ArcFace', 'angular spread (deg)']:.1f} deg vs softmax "
      f"{table_2d.loc['softmax', 'angular spread (deg)']:.1f} deg")

# %% [markdown]
# All three classify the held-out digits; what differs is the geometry.
# Softmax features fan out from the origin in long wedges: separable, but
# points of one class can be farther apart than points of two different
# classes near the origin (a modest Euclidean silhouette). The center loss
# pulls each class together (a higher Euclidean silhouette). ArcFace's
# features only count by their angle (drawn at unit radius): it is trained
# for narrow arcs, and its cosine silhouette is the one to read. For comparing
# **new** faces by distance or angle, compact classes are what matters; that
# is the question of the next section.
#
# ## 9. Classifier-trained versus metric-trained embeddings of unseen people
#
# Back to faces. Both networks of section 1 learned from the same 30 people;
# we judge them on the 10 others, with the verification and identification
# numbers of notebook 04 and the separation numbers of section 4.

# %%
pixels = PerImageStandardize()(test_images).flatten(1).numpy()
candidates = {"raw pixels": E.EmbeddingSet(pixels.astype(np.float32), test_set.targets), **emb}
compare = {}
for name, e in candidates.items():
    e = e.normalized()
    r = evaluate_embeddings(torch.as_tensor(e.vectors), e.labels)
    compare[name] = {"AUC": r["auc"], "EER": r["eer"], "rank-1 (one-shot)": r["rank1"],
                     "5-NN acc": E.knn_accuracy_2d(e.vectors, e.labels), "silhouette": E.silhouette(e.vectors, e.labels)}
compare = pd.DataFrame(compare).T
compare.round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
for ax, name in zip(axes, ["classifier-trained", "metric-trained", PRETRAINED[0]]):
    p = proj["UMAP"] if name == "metric-trained" else E.project(emb[name].normalized().vectors, "umap", seed=0)
    plot_embedding_2d(p.coords, emb[name].labels, ax=ax, legend=False,
                      title=f"{name}\nsilhouette {compare.loc[name, 'silhouette']:.2f}, AUC {compare.loc[name, 'AUC']:.3f}")
fig.suptitle("UMAP of 10 unseen people, three embedders");

# %%
assert compare.loc["metric-trained", "AUC"] > compare.loc["raw pixels", "AUC"]
assert compare.loc["classifier-trained", "AUC"] > compare.loc["raw pixels", "AUC"]
better = "metric-trained" if compare.loc["metric-trained", "silhouette"] > compare.loc["classifier-trained", "silhouette"] \
    else "classifier-trained"
print(f"more compact clusters of unseen people: {better} (silhouette "
      f"{compare.loc['metric-trained', 'silhouette']:.2f} metric vs {compare.loc['classifier-trained', 'silhouette']:.2f} "
      f"classifier); AUC {compare.loc['metric-trained', 'AUC']:.3f} vs {compare.loc['classifier-trained', 'AUC']:.3f}")

# %% [markdown]
# The argument for metric learning: a classifier learns whatever separates
# *its* 30 people, and nothing asks it to keep the photos of a *new* person
# together; a metric loss asks exactly that, for every pair in every batch.
# The argument for classifiers: every step compares each photo with all 30
# class weights at once, a strong, stable signal — which is why margin
# classifiers (ArcFace, CosFace) took over face recognition. The table says
# which argument won on these 10 people, in this run. With 30 training people
# and a short schedule, the gap between the two is of the order of the noise
# of the split and the seed: rerun with another seed in `identity_split`
# before believing a winner. Both are far above the raw pixels on the
# separation numbers, and far below a production face recogniser.
#
# ## 10. A published face recogniser: FaceNet on VGGFace2
#
# `course_utils.pretrained.facenet.InceptionResnetV1` rebuilds FaceNet's network
# module for module in facenet-pytorch's layout, so the published state dict
# `20180402-114759-vggface2.pt` (107 MB) loads into it key for key.
# `load_facenet` finds the file in the torch cache (or downloads it with
# `download=True`), checks its SHA-256 when one is pinned, and checks every key and shape
# against the model, naming what differs. The inputs are 160 x 160 RGB face
# crops mapped to `(x * 255 - 127.5) / 128` (`facenet_preprocess`); the output
# is a unit 512-d embedding.
#
# We cannot download 107 MB here, so we check the loader on a state dict in
# the published format — the same keys and shapes, random values — and on one
# that does not fit.

# %%
published_format = InceptionResnetV1(num_classes=8631).state_dict()  # what the VGGFace2 file holds
n_tensors = sum(not k.endswith("num_batches_tracked") for k in published_format)
n_params = sum(v.numel() for k, v in published_format.items() if not k.endswith("num_batches_tracked"))
loaded = load_facenet(published_format)
with torch.no_grad():
    x = facenet_preprocess(test_images[:2])
    out = loaded(x)
print(f"the published format: {n_tensors} tensors, {n_params / 1e6:.1f} M numbers "
      f"(of which the 8,631-way logits {8631 * 513 / 1e6:.1f} M, dropped for embeddings)")
print(f"input {tuple(test_images[:2].shape)} -> preprocessed {tuple(x.shape)} -> embeddings {tuple(out.shape)}, "
      f"norms {out.norm(dim=1).numpy().round(4)}")
wrong = dict(published_format)
wrong["last_linear.weight"] = torch.zeros(128, 1792)
try:
    load_facenet(wrong)
except ValueError as err:
    print("a file that does not fit is refused:", str(err).splitlines()[1].strip())
print("published weights on this machine:", "yes, used above" if facenet is not None else
      "no (offline): the course's own face embedder stood in for FaceNet")
assert out.shape == (2, 512) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your code (a `NotImplementedError` in your
# copy) and a self-check that compares your function with a reference (the
# package's or scikit-learn's). No error means it passed.
#
# ### Exercise 1 (3 points): trustworthiness by hand
#
# Write `trustworthiness_by_hand(x_high, x_low, k)` for arrays `(N, D)` and
# `(N, 2)`, with Euclidean distances in both:
#
# `T(k) = 1 - 2 / (N k (2N - 3k - 1)) * Σ_i Σ_{j ∈ U_k(i)} (r(i, j) - k)`
#
# where `U_k(i)` are the points among the `k` nearest neighbours of `i` in the
# picture but **not** among its `k` nearest in the full space, and `r(i, j)`
# is the rank of `j` among `i`'s neighbours in the full space (nearest = 1).

# %% tags=["solution"] exercise="trustworthiness"
def trustworthiness_by_hand(x_high: np.ndarray, x_low: np.ndarray, k: int) -> float:
    ### BEGIN SOLUTION
    # Hint: d = np.linalg.norm(x[:, None] - x[None], axis=2); np.fill_diagonal(d, np.inf); order = np.argsort(d, axis=1).
    n = len(x_high)

    def order(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")

    high, low = order(x_high), order(x_low)
    rank = np.empty_like(high)
    rank[np.arange(n)[:, None], high] = np.arange(1, n + 1)[None, :]
    penalty = 0.0
    for i in range(n):
        for j in set(low[i, :k]) - set(high[i, :k]):
            penalty += rank[i, j] - k
    return float(1 - 2 / (n * k * (2 * n - 3 * k - 1)) * penalty)
    ### END SOLUTION


# %% tags=["check"] exercise="trustworthiness" points=3
rng = np.random.default_rng(1)
hi_ex = rng.normal(size=(60, 8))
cases = {"first two coordinates": (hi_ex, hi_ex[:, :2]), "a random picture": (hi_ex, rng.normal(size=(60, 2))),
         "t-SNE of the test faces": (test_emb.vectors.astype(np.float64), proj["t-SNE"].coords)}
for what, (hi_use, lo_ex) in cases.items():
    for k in (3, 7):
        mine, ref = trustworthiness_by_hand(hi_use, lo_ex, k), E.trustworthiness(hi_use, lo_ex, n_neighbors=k)
        assert abs(mine - ref) < 1e-9, (what, k, mine, ref)
print("trustworthiness_by_hand matches sklearn.manifold.trustworthiness")

# %% [markdown]
# ### Exercise 2 (2 points): retrieval precision@k
#
# Write `precision_at_k(features, labels, k)`: every item queries all the
# others by **cosine** similarity; return the mean, over queries, of the share
# of its `k` most similar items that have its label.

# %% tags=["solution"] exercise="precision_at_k"
def precision_at_k(features: np.ndarray, labels: np.ndarray, k: int) -> float:
    ### BEGIN SOLUTION
    # Hint: normalise the rows, s = f @ f.T, set the diagonal to -inf, take np.argsort(-s, axis=1)[:, :k].
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    s = f @ f.T
    np.fill_diagonal(s, -np.inf)
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.mean(labels[top] == labels[:, None]))
    ### END SOLUTION


# %% tags=["check"] exercise="precision_at_k" points=2
f_ex = features["metric-trained net, penultimate"][0]
for k in (1, 5, 9):
    mine, ref = precision_at_k(f_ex, test_set.targets, k), E.retrieval_precision(f_ex, test_set.targets, k=k)
    assert abs(mine - ref) < 1e-9, (k, mine, ref)
print(f"precision_at_k matches embeddings.retrieval_precision (P@5 = {precision_at_k(f_ex, test_set.targets, 5):.3f})")

# %% [markdown]
# ### Exercise 3 (1 point): an intensity histogram
#
# Write `intensity_histogram(images, bins)` for grey images `(N, 1, H, W)` in
# `[0, 1]`: `bins` equal bins over `[0, 1]` (a value of exactly 1 goes in the
# last bin), each histogram divided by the number of pixels. Shape `(N, bins)`.

# %% tags=["solution"] exercise="intensity_histogram"
def intensity_histogram(images: torch.Tensor, bins: int) -> np.ndarray:
    ### BEGIN SOLUTION
    # Hint: b = (images * bins).long().clamp(max=bins - 1); count each bin per image with torch.bincount or ==.
    b = (images.flatten(1) * bins).long().clamp(0, bins - 1)
    counts = torch.stack([(b == j).sum(dim=1) for j in range(bins)], dim=1)
    return (counts.double() / b.shape[1]).numpy()
    ### END SOLUTION


# %% tags=["check"] exercise="intensity_histogram" points=1
for bins in (4, 32):
    mine = intensity_histogram(test_images[:20], bins)
    assert mine.shape == (20, bins) and np.allclose(mine.sum(1), 1)
    assert np.allclose(mine, E.color_histograms(test_images[:20], bins=bins)), bins
assert np.allclose(intensity_histogram(torch.ones(1, 1, 2, 2), 4), [[0, 0, 0, 1]])
print("intensity_histogram matches embeddings.color_histograms on grey images")

# %% [markdown]
# ### Exercise 4 (2 points): PCA to 2-D with an SVD
#
# Write `pca_2d(x)`: centre the columns of `x` `(N, D)`, take its singular
# value decomposition, and return the coordinates on the first two principal
# directions, `(N, 2)`. (The sign of each direction is arbitrary; the check
# allows either.)

# %% tags=["solution"] exercise="pca_2d"
def pca_2d(x: np.ndarray) -> np.ndarray:
    ### BEGIN SOLUTION
    # Hint: xc = x - x.mean(0); u, s, vt = np.linalg.svd(xc, full_matrices=False); project on vt[:2].
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:2].T
    ### END SOLUTION


# %% tags=["check"] exercise="pca_2d" points=2
mine = pca_2d(test_emb.vectors.astype(np.float64))
ref = proj["PCA"].coords
assert mine.shape == ref.shape
for c in range(2):
    assert np.allclose(mine[:, c], ref[:, c], atol=1e-4) or np.allclose(mine[:, c], -ref[:, c], atol=1e-4), c
print("pca_2d matches scikit-learn's PCA (up to the sign of each axis)")

# %% [markdown]
# ### Exercise 5 (2 points): the silhouette by hand
#
# Write `silhouette_by_hand(x, labels)` with Euclidean distances: for each
# point, `a` = mean distance to the *other* points of its label, `b` = the
# smallest, over the other labels, of the mean distance to that label's
# points; `s = (b - a) / max(a, b)`. Return the mean of `s` over points
# (every label has at least two points here).

# %% tags=["solution"] exercise="silhouette"
def silhouette_by_hand(x: np.ndarray, labels: np.ndarray) -> float:
    ### BEGIN SOLUTION
    # Hint: d = np.linalg.norm(x[:, None] - x[None], axis=2); loop over points, mask by labels.
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    s = np.empty(len(x))
    for i in range(len(x)):
        same = labels == labels[i]
        a = d[i, same].sum() / (same.sum() - 1)
        b = min(d[i, labels == c].mean() for c in np.unique(labels) if c != labels[i])
        s[i] = (b - a) / max(a, b)
    return float(s.mean())
    ### END SOLUTION


# %% tags=["check"] exercise="silhouette" points=2
for name, xs in [("UMAP", proj["UMAP"].coords), ("full", test_emb.vectors.astype(np.float64))]:
    mine, ref = silhouette_by_hand(xs, test_emb.labels), E.silhouette(xs, test_emb.labels)
    assert abs(mine - ref) < 1e-6, (name, mine, ref)
print("silhouette_by_hand matches sklearn.metrics.silhouette_score")

# %% [markdown]
# ### Exercise 6 (1 point): the center loss
#
# Write `center_loss(features, labels, centres)`: half the mean, over the
# batch, of the squared distance of each feature `(N, D)` to its label's
# centre (`centres` is `(K, D)`).

# %% tags=["solution"] exercise="center_loss"
def center_loss(features: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    # Hint: centres[labels] picks each feature's centre.
    return 0.5 * (features - centres[labels]).pow(2).sum(dim=1).mean()
    ### END SOLUTION


# %% tags=["check"] exercise="center_loss" points=1
ref_loss = CenterLoss(10, embedding_dim=2)
f_cl = torch.as_tensor(feat_2d["softmax + center loss"][:50])
y_cl = torch.as_tensor(d_test.targets[:50])
assert torch.allclose(center_loss(f_cl, y_cl, ref_loss.centers.detach()), ref_loss(f_cl, y_cl).detach(), atol=1e-6)
print("center_loss matches losses.CenterLoss")

# %% [markdown]
# ## What next
#
# Notebook 06 takes the question of section 6 further: a face embedding
# encodes group attributes; does it also work **equally well** for everyone?
# To go further here: run in full mode (`COURSE_FAST=0`); move the sliders of
# section 5 and watch trustworthiness fall as the picture gets prettier; put
# FaceNet's weights in the torch cache (`load_facenet(download=True)` once,
# with internet) and rerun: every table then includes it.

# %%
torch.set_num_threads(default_threads)
print(f"UMAP: cold {cold:.1f} s (import {t_import:.1f} s + first fit), warm fit {warm_fit.seconds:.2f} s, "
      f"first transform {t_transform:.1f} s; numba cache {'hit' if numba_files_before else 'miss'}")
print(f"notebook finished in {time.perf_counter() - notebook_start:.0f} s; CPU threads restored to {default_threads}")
