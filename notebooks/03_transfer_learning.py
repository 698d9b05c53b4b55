# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Transfer learning, measured
#
# A network trained on one task has learned features — edges, textures, parts
# of faces — that are useful for another. *Transfer learning* reuses them, and
# the lecture gave rules of thumb for how: with little target data and a
# similar source, freeze the network and train a new head; with much data,
# fine-tune more of it. In this notebook we **measure** those rules instead of
# quoting them.
#
# 1. **Where pretrained weights come from** — ImageNet through torchvision's
#    weights API, and small checkpoints that ship with the course
# 2. **The target task** — recognising people from a few photographs
# 3. **The four regimes** — from scratch, frozen features + linear head,
#    fine-tune the last blocks, fine-tune everything with smaller learning rates
# 4. **The 2 x 2 table** — little vs much target data, similar vs different
#    source — reproduced, with learning curves and spread over seeds
# 5. **Per-layer learning rates**
# 6. **Multi-task learning** — one backbone, several heads, a weighted sum of losses
# 7. **Self-supervised sources** — SimCLR's contrastive pre-training without labels
# 8. **Label smoothing and calibration** — reliability diagrams, expected calibration error
# 9. **DropBlock versus dropout**
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

import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import course_utils
from course_utils import env_report, limit_cpu_threads, pick, resolve_device, seed_everything
from course_utils import pretrained as P
from course_utils import transfer as T
from course_utils.data import (
    SynthFacesConfig,
    balanced_indices,
    load_face_attributes,
    load_face_identities,
    make_synthfaces,
    stratified_split,
)
from course_utils.layers import DropBlock2d
from course_utils.losses import LabelSmoothingCrossEntropy, NTXentLoss
from course_utils.metrics import expected_calibration_error
from course_utils.models import create_model
from course_utils.plots import plot_mean_curves, plot_reliability_diagram, show_images

info = env_report()
device = resolve_device()
notebook_start = time.perf_counter()

# %% [markdown]
# All sizes come from `pick`: fast mode trains for a few epochs on fewer
# seeds; full mode for longer and on more seeds. The image size is the one
# the course checkpoints were trained at.
#
# The networks of this notebook are tiny (a few million multiply-adds per
# image, linear heads on 64 numbers). On a CPU their operations are too small
# to be worth splitting among threads: the threads spend their time waiting
# for each other — badly so when other programs share the cores. So we
# compute with one CPU thread (`limit_cpu_threads(None)` keeps PyTorch's
# default); the last cell restores the setting.

# %%
default_threads = limit_cpu_threads(1, device=device)  # None keeps PyTorch's default
print(f"computing on {device} with {torch.get_num_threads()} CPU thread(s) (default {default_threads})")
IMAGE_SIZE = 48
EPOCHS = pick(fast=8, full=30)  # passes over the images (scratch, fine-tune all)
TAIL_EPOCHS = pick(fast=10, full=40)  # passes over cached activations (cheap)
ATTR_EPOCHS = pick(fast=6, full=20)  # ... of the larger attribute data set (sections 6 and 8)
LITTLE = 2  # training images per person in the "little data" cells
MUCH = pick(fast=5, full=7)  # ... and in the "much data" cells
SEEDS_LITTLE = pick(fast=3, full=5)  # seeds where the data are smallest
SEEDS_MUCH = 3
print(f"{IMAGE_SIZE} px images; {EPOCHS} epochs over images, {TAIL_EPOCHS} (faces) or {ATTR_EPOCHS} (attributes) "
      "over cached activations; "
      f"little = {LITTLE}, much = {MUCH} images per person; {SEEDS_LITTLE} / {SEEDS_MUCH} seeds")

# %% [markdown]
# ## 1. Where pretrained weights come from
#
# ### ImageNet, through torchvision's weights API
#
# torchvision describes each set of pretrained weights with an enum member:
# where the file is, how the images must be preprocessed (its own
# `transforms()`), and what it scored on ImageNet. The file is downloaded
# once into the torch cache. `try_imagenet_model` returns `None` (and says
# why) when the weights can be neither found in the cache nor downloaded —
# then we use the course's own checkpoints below.

# %%
weights = P.imagenet_weights("resnet18")
print(f"{weights}: {weights.meta['num_params']:,} parameters, ImageNet top-1 "
      f"{weights.meta['_metrics']['ImageNet-1K']['acc@1']}%")
print("file:", P.weights_cache_path(weights))
print("preprocessing:", weights.transforms())
imagenet = P.try_imagenet_model("resnet18")
print("ImageNet ResNet-18:", "available" if imagenet is not None else "not available: offline path only")

# %% [markdown]
# The zoo's `resnet18` registers its tensors in the same order and with the
# same shapes as torchvision's, so `load_torchvision_state_dict` can put any
# torchvision-format file into it. Here we check it on a randomly initialised
# torchvision ResNet-18 saved the way torchvision saves its weights — the two
# networks must then compute the same function.

# %%
tv_net = torchvision.models.resnet18().eval()
tv_file = course_utils.cache_dir("checkpoints") / "resnet18_torchvision_format.pth"
torch.save(tv_net.state_dict(), tv_file)
zoo_net = create_model("resnet18").eval()
load_report = P.load_torchvision_state_dict(zoo_net, tv_file)
x_check = torch.rand(2, 3, 64, 64)
with torch.no_grad():
    max_diff = (zoo_net(x_check) - tv_net(x_check)).abs().max().item()
print(f"{load_report.loaded} tensors loaded; largest logit difference: {max_diff:.1e}")
assert max_diff < 1e-4
del tv_net, zoo_net

# %% [markdown]
# ### The course checkpoints (always available)
#
# Three small source networks ship with the package, all the same
# architecture (`resnet_small` with ResNet-18's 7x7 stem) so that only the
# *source* differs:
#
# - `faces_supervised`: trained to recognise SynthFaces identities — a source
#   **similar** to face targets;
# - `digits_supervised`: trained on handwritten digits — a **different** source;
# - `faces_simclr`: trained on the same SynthFaces images **without labels**,
#   with SimCLR's contrastive loss (section 7).
#
# `scripts/make_checkpoints.py` made them from frozen recipes
# (`course_utils.pretrained.RECIPES`); the JSON next to each file records the
# recipe, data, seed, accuracy and training time.

# %%
sources = P.sources_table()
sources

# %%
for name in sources.index:
    meta = P.source_info(name)
    print(f"{name:18s} {meta['accuracy_kind']}: {meta['accuracy']:.3f} (chance {meta['chance_accuracy']:.3f}); "
          f"{meta['size_bytes'] / 1024:.0f} kB, trained in {meta['training_seconds']:.0f} s on {meta['device']}")
assert set(P.RECIPES) <= set(sources.index)

# %% [markdown]
# ## 2. The target task: recognising people from a few photographs
#
# The target is face identification on the ORL faces (grey photographs of
# a few dozen people) when they are in the data directory; otherwise
# SynthFaces people the sources never saw (a message says so). Part of each
# person's photographs is held out for testing; training uses either `LITTLE`
# or `MUCH` of the rest, drawn anew for each seed. The counts are printed below.

# %%
faces = load_face_identities("orl", image_size=IMAGE_SIZE, rgb=True)
REAL_FACES = faces.name == "orl_faces"
NUM_CLASSES = faces.n_classes
split = stratified_split(faces.targets, test_fraction=0.3, seed=0)
test_set = faces.subset(split.test)
pool = split.train


def train_subset(per_person: int, seed: int):
    """``per_person`` training photographs of every person, drawn with ``seed``."""
    keep = balanced_indices(faces.targets[pool], max_per_group=per_person, seed=seed)
    return faces.subset(pool[keep])


print(f"target: {faces.name} ({'real faces' if REAL_FACES else 'embedded fallback'}), {NUM_CLASSES} people; "
      f"{len(test_set)} test images, {len(train_subset(LITTLE, 0))} (little) or {len(train_subset(MUCH, 0))} "
      f"(much) training images")
show_images(train_subset(LITTLE, 0).images[:16].float() / 255, train_subset(LITTLE, 0).targets[:16], ncols=8,
            title=f"{LITTLE} training photographs per person (little data)");

# %% [markdown]
# ## 3. The four regimes
#
# | regime | what is trained | what it costs |
# | --- | --- | --- |
# | from scratch | every weight, from a random start | the most data and compute |
# | **feature extraction**: frozen backbone + new linear head | the head only | features computed **once** and cached |
# | fine-tune the last block(s) | the last blocks and the head | earlier activations computed once and cached |
# | fine-tune everything | every weight, the backbone with ~1/10 of the head's learning rate | as from scratch |
#
# Freezing is two things: `requires_grad=False` (no gradient, no update), and
# batch-norm layers kept in eval mode so their running statistics do not drift
# (`transfer.freeze` does both). Here is what each regime trains:

# %%
def scratch_model():
    return create_model("resnet_small", stem="imagenet", num_classes=NUM_CLASSES)


def source_model(name: str):
    return lambda: P.load_source_model(name, num_classes=NUM_CLASSES)


probe_model = T.freeze_all_but_head(source_model("faces_supervised")())
last_model = T.unfreeze_last_blocks(source_model("faces_supervised")(), 2)
trainable = {"scratch": T.count_trainable(scratch_model()), "linear_probe": T.count_trainable(probe_model),
             "finetune_last": T.count_trainable(last_model),
             "finetune_all": T.count_trainable(source_model("faces_supervised")())}
print("trainable parameters:", trainable)
assert trainable["linear_probe"] < trainable["finetune_last"] < trainable["finetune_all"] == trainable["scratch"]
T.trainable_table(last_model)

# %% [markdown]
# Frozen layers compute the same thing every epoch, so there is no need to run
# them every epoch: `cached_features` runs them once and stores the result in
# the cache directory under a digest of the weights and the images. The
# linear probe then trains on 64 numbers per image; "fine-tune the last
# blocks" trains on the activations that enter them.

# %%
t0 = time.perf_counter()
feats = T.cached_features(probe_model, test_set, name="03-demo")
t_first = time.perf_counter() - t0
t0 = time.perf_counter()
feats_again = T.cached_features(probe_model, test_set, name="03-demo")
t_again = time.perf_counter() - t0
acts = T.cached_features(probe_model, test_set, n_last_blocks=2, name="03-demo")
print(f"embeddings {tuple(feats.features.shape)}: {t_first:.2f} s "
      f"({'read from the cache' if feats.from_cache else 'computed'}), then {t_again:.3f} s (read from the cache)")
print(f"activations entering the last 2 blocks: {tuple(acts.features.shape)}")
assert feats_again.from_cache and torch.equal(feats.features, feats_again.features)

# %% [markdown]
# ## 4. The 2 x 2 table, measured
#
# Rows: little or much target data. Columns: a similar source (faces) or a
# different one (digits). In each cell we run all four regimes with the same
# hyper-parameters (`RegimeConfig`) and several seeds — each seed draws other
# training photographs and another head initialisation — and report the mean
# test accuracy with a 95 % t-interval. From-scratch training does not depend
# on the source; it is run once per row and shown in both columns.

# %%
config = T.RegimeConfig(epochs=EPOCHS, probe_epochs=3 * EPOCHS, lr=3e-3, probe_lr=1e-2, n_last_blocks=2,
                        backbone_lr_factor=0.1, batch_size=16)
SOURCES = {"similar (faces)": "faces_supervised", "different (digits)": "digits_supervised"}
SIZES = {"little": (LITTLE, SEEDS_LITTLE), "much": (MUCH, SEEDS_MUCH)}


def regime_runs(regime, model_fn, per_person, n_seeds, cache_name):
    return T.run_seeds(lambda s: T.run_regime(regime, model_fn, train_subset(per_person, s), test_set,
                                              num_classes=NUM_CLASSES, config=config, seed=s, device=device,
                                              cache_name=cache_name), n_seeds, value="accuracy")


t0 = time.perf_counter()
runs = {}
for size, (per_person, n_seeds) in SIZES.items():
    scratch = regime_runs("scratch", scratch_model, per_person, n_seeds, None)
    for kind, ckpt in SOURCES.items():
        runs[(size, kind, "scratch")] = scratch
        for regime in T.REGIMES[1:]:
            runs[(size, kind, regime)] = regime_runs(regime, source_model(ckpt), per_person, n_seeds, f"03-{ckpt}")
table_seconds = time.perf_counter() - t0
print(f"{len(runs)} cells x regimes measured in {table_seconds:.0f} s")

# %%
cells = [(size, kind) for size in SIZES for kind in SOURCES]
table = pd.DataFrame({f"{size} data, {kind} source": {r: str(runs[(size, kind, r)].summary) for r in T.REGIMES}
                      for size, kind in cells})
best = {(size, kind): max(T.REGIMES, key=lambda r: runs[(size, kind, r)].summary.mean) for size, kind in cells}
table.loc["best"] = [best[c] for c in cells]
print("test accuracy, mean ± 95% interval over seeds (chance = 1/{})".format(NUM_CLASSES))
table

# %%
LECTURE = {("little", "similar (faces)"): "linear classifier on the frozen features",
           ("little", "different (digits)"): "hard case: a linear classifier on earlier layers, or fine-tune a little",
           ("much", "similar (faces)"): "fine-tune the last layers",
           ("much", "different (digits)"): "fine-tune many layers, or train from scratch"}
grid = pd.DataFrame([{"target data": size, "source": kind, "lecture's advice": LECTURE[(size, kind)],
                      "measured best": best[(size, kind)],
                      "its accuracy": str(runs[(size, kind, best[(size, kind)])].summary)} for size, kind in cells])
grid

# %% [markdown]
# The same runs as learning curves: test accuracy after each epoch, the mean
# over seeds as a line and the range as a band. (The linear probe trains on
# cached features, so it gets three times as many, much cheaper, epochs.)

# %%
fig, axes = plt.subplots(2, 2, figsize=(12, 8), layout="constrained", sharey=True)
for ax, (size, kind) in zip(axes.flat, cells):
    curves = {r: np.array([res.curve for res in runs[(size, kind, r)].results]) for r in T.REGIMES}
    plot_mean_curves(curves, ax=ax, chance=1 / NUM_CLASSES, title=f"{size} data, {kind} source")

# %%
little_sim = {r: runs[("little", "similar (faces)", r)].summary for r in T.REGIMES}
gain = max(little_sim[r].mean for r in T.REGIMES[1:]) - little_sim["scratch"].mean
print(f"with {LITTLE} photographs per person, the best use of the face source beats training from scratch "
      f"by {gain:.3f} accuracy")
assert gain > 0, "a similar pretrained source should beat scratch training on tiny data"
for key, r in runs.items():
    assert all(0 <= v <= 1 for v in r.summary.values), key

# %% [markdown]
# The lecture's rules of thumb are in the "lecture's advice" column; the
# "measured best" column is what this run found. Read the answers to these
# questions off the numbers above (and the summary printed below):
#
# - How far behind is training from scratch when there are only a couple of
#   photographs per person?
# - Do the frozen features of the similar source beat those of the different
#   one, and does the gap shrink once more of the network is fine-tuned?
# - With more data, do the regimes that train more weights catch up?
#
# Two cautions. "Similar" is relative: with ORL present, the face source was
# trained on *synthetic* faces and the target is real photographs. And fast
# mode trains for a few epochs only, which favours the cheap regimes; run the
# notebook with `COURSE_FAST=0` for the full-length numbers.

# %%
for size in SIZES:
    frozen = {kind: round(runs[(size, kind, "linear_probe")].summary.mean, 3) for kind in SOURCES}
    tuned = {kind: round(runs[(size, kind, "finetune_last")].summary.mean, 3) for kind in SOURCES}
    print(f"{size} data: frozen features {frozen}; last blocks fine-tuned {tuned}")
    print(f"   gap similar - different: frozen {np.subtract(*frozen.values()):+.3f}, "
          f"fine-tuned {np.subtract(*tuned.values()):+.3f}; scratch {runs[(size, 'similar (faces)', 'scratch')].summary}")

# %% [markdown]
# ## 5. Per-layer learning rates
#
# Fine-tuning everything with one learning rate lets the large gradients of a
# fresh head wreck the pretrained early layers. Two remedies: a smaller
# learning rate for the whole backbone (1/10 above), or **discriminative**
# learning rates that decay block by block towards the input
# (`layerwise_lr_groups`). The optimizer receives one parameter group per block:

# %%
groups = T.layerwise_lr_groups(source_model("faces_supervised")(), lr=3e-3, decay=0.5)
pd.DataFrame([{"group": g["name"], "lr": g["lr"], "parameters": sum(p.numel() for p in g["params"])}
              for g in groups])

# %%
lr_variants = {
    "one LR for all": dataclasses.replace(config, backbone_lr_factor=1.0),
    "backbone LR / 10": config,
    "per-layer LR (decay 0.5)": dataclasses.replace(config, layerwise_decay=0.5),
}
lr_runs = {}
for name, cfg in lr_variants.items():
    if cfg is config:
        lr_runs[name] = runs[("little", "similar (faces)", "finetune_all")]
        continue
    lr_runs[name] = T.run_seeds(lambda s, cfg=cfg: T.run_regime(
        "finetune_all", source_model("faces_supervised"), train_subset(LITTLE, s), test_set,
        num_classes=NUM_CLASSES, config=cfg, seed=s, device=device), SEEDS_LITTLE, value="accuracy")
print("fine-tune everything, little data, similar source:")
for name, r in lr_runs.items():
    print(f"  {name:26s} {r.summary}")
assert all(0 <= r.summary.mean <= 1 for r in lr_runs.values())

# %% [markdown]
# ## 6. Multi-task learning: one backbone, several heads
#
# Face attributes (gender, age group, ethnic group) are learned from the same
# cues. A **multi-task** model shares one backbone and puts one linear head
# per task on it; its loss is a weighted sum
# `L = w_gender L_gender + w_age L_age + w_race L_race`. We compare it with
# three single-task models of the same size. The data are FairFace when it is
# present (age coarsened to three groups), otherwise SynthFaces' stand-in
# attributes (a message says so). The shared part is the last block of the
# face source, trained on cached activations; the earlier blocks are frozen.

# %%
attr_train = load_face_attributes("fairface", split="train", image_size=IMAGE_SIZE,
                                  max_per_group=pick(fast=60, full=None),
                                  synth=SynthFacesConfig(n_identities=pick(fast=210, full=525), images_per_identity=4,
                                                         image_size=IMAGE_SIZE, seed=0))
attr_test = load_face_attributes("fairface", split="val", image_size=IMAGE_SIZE,
                                 synth=SynthFacesConfig(n_identities=175, images_per_identity=4,
                                                        image_size=IMAGE_SIZE, seed=1))
AGE3 = {"0-2": "0-19", "3-9": "0-19", "10-19": "0-19", "20-29": "20-39", "30-39": "20-39"}


def task_columns(ds) -> pd.DataFrame:
    a = ds.attributes
    if ds.name == "fairface":
        return pd.DataFrame({"gender": a["gender"].astype(str), "age": a["age"].astype(str).map(lambda v: AGE3.get(v, "40+")),
                             "race": a["race"].astype(str)})
    return pd.DataFrame({"gender": a["presentation"].astype(str), "age": a["age_group"].astype(str),
                         "race": a["skin_tone"].astype(str)})


TASKS = ["gender", "age", "race"]
Y_train, task_names = T.multitask_targets(task_columns(attr_train), TASKS)
Y_test, _ = T.multitask_targets(task_columns(attr_test), TASKS, categories=task_names)
print(f"{attr_train.name}: {len(attr_train)} training and {len(attr_test)} test images; tasks:",
      {t: task_names[t] for t in TASKS})

face_source = P.load_source_model("faces_supervised")
T.freeze(face_source)
acts_train = T.cached_features(face_source, attr_train, n_last_blocks=1, name="03-attributes")
acts_test = T.cached_features(face_source, attr_test, n_last_blocks=1, name="03-attributes")
print("cached activations:", tuple(acts_train.features.shape))

# %%
TASK_WEIGHTS = {"gender": 1.0, "age": 1.0, "race": 1.0}
SEEDS_MT = 3


def fresh_tail(num_outputs: int, seed: int):
    """The face source's last block + a new head, on its own copy of the weights."""
    seed_everything(seed)
    _, tail = T.split_model(P.load_source_model("faces_supervised"), 1)
    tail.reset_classifier(num_outputs)
    return tail


def multi_task(seed: int) -> dict:
    backbone = fresh_tail(0, seed)  # no classifier: returns the embedding
    model = T.MultiTaskModel(backbone, backbone.num_features, {t: len(task_names[t]) for t in TASKS})
    hist = T.train_tail(model, acts_train, acts_test, epochs=ATTR_EPOCHS, seed=seed,
                        loss_fn=T.MultiTaskLoss(TASKS, TASK_WEIGHTS),
                        metrics={t: T.task_accuracy(t, i) for i, t in enumerate(TASKS)},
                        train_targets=Y_train, test_targets=Y_test, device=device)
    return {t: hist.last(f"val_{t}") for t in TASKS}


def single_task(seed: int) -> dict:
    out = {}
    for i, t in enumerate(TASKS):
        hist = T.train_tail(fresh_tail(len(task_names[t]), seed), acts_train, acts_test, epochs=ATTR_EPOCHS,
                            seed=seed, train_targets=Y_train[:, i], test_targets=Y_test[:, i], device=device)
        out[t] = hist.last("val_acc")
    return out


mt_runs = T.run_seeds(multi_task, SEEDS_MT, value=lambda r: np.mean(list(r.values())))
st_runs = T.run_seeds(single_task, SEEDS_MT, value=lambda r: np.mean(list(r.values())))
majority = {t: float(np.bincount(Y_test[:, i]).max() / len(Y_test)) for i, t in enumerate(TASKS)}
mt_table = pd.DataFrame({
    "multi-task (1 shared block, 3 heads)": {t: str(T.summarize([r[t] for r in mt_runs.results])) for t in TASKS},
    "single-task (3 separate blocks)": {t: str(T.summarize([r[t] for r in st_runs.results])) for t in TASKS},
    "majority class": {t: f"{majority[t]:.3f}" for t in TASKS},
})
shared_tail = fresh_tail(0, 0)
shared = T.count_trainable(T.MultiTaskModel(shared_tail, shared_tail.num_features,
                                             {t: len(task_names[t]) for t in TASKS}))
separate = sum(T.count_trainable(fresh_tail(len(task_names[t]), 0)) for t in TASKS)
print(f"trainable parameters: multi-task {shared:,}, three single-task models {separate:,} "
      f"(ratio {shared / separate:.2f})")
print(f"mean accuracy over tasks: multi-task {mt_runs.summary}, single-task {st_runs.summary}")
mt_table

# %%
for t in TASKS:
    assert T.summarize([r[t] for r in mt_runs.results]).mean > 0.8 * majority[t]
assert shared < separate

# %% [markdown]
# One multi-task model does the work of three, with the fraction of the
# trainable parameters printed above. Whether sharing *helps* accuracy depends
# on how related the tasks are and how much data each has: compare the two
# columns above, and mind the intervals. The weights `w_t` matter too: a task with a larger loss
# dominates the shared block — try `TASK_WEIGHTS = {"gender": 1, "age": 1, "race": 3}`.
#
# ## 7. Beyond supervised pre-training: SimCLR
#
# Labels are expensive; images are not. **SimCLR** (Chen et al., 2020) learns
# features from unlabelled images: two random augmentations of each image
# should map to nearby points, and away from the other images in the batch.
# The NT-Xent loss is a softmax cross-entropy over cosine similarities
# (see `losses.NTXentLoss`). The augmentations carry the knowledge of what
# should *not* matter — crop, flip, colour, grey:

# %%
unlabelled = make_synthfaces(n_identities=pick(fast=32, full=100), images_per_identity=8, image_size=IMAGE_SIZE,
                             seed=7)
augment = T.SimCLRAugment(generator=torch.Generator().manual_seed(0))
originals = unlabelled.float_images()[::8][:8]  # one image of each of eight people
show_images(torch.cat([originals, augment(originals), augment(originals)]), ncols=8,
            title="originals (top), two augmented views of each (below)");

# %% [markdown]
# `pretrain_simclr` is `fit` with a `forward_fn` that augments each batch twice
# on the device and returns both projections; labels are never read. A short
# run from a random start shows the loss falling (`faces_simclr` was trained
# the same way, for longer):

# %%
simclr_model, simclr_hist = T.pretrain_simclr(create_model("resnet_small", stem="imagenet", num_classes=0),
                                              unlabelled, epochs=pick(fast=3, full=10), batch_size=64,
                                              temperature=0.2, seed=0, device=device)
print("NT-Xent loss per epoch:", [round(v, 3) for v in simclr_hist["train_loss"]],
      f"(chance level log(2N-1) = {np.log(2 * 64 - 1):.3f})")
assert simclr_hist.last("train_loss") < simclr_hist["train_loss"][0]

# %% [markdown]
# Now the question that matters: how good are the features of each source on
# *our* target? We fit linear probes on frozen features (cheap, and the
# purest test of a representation) for every source, plus a randomly
# initialised network as the no-pretraining baseline, and the ImageNet
# ResNet-18 when it is available.

# %%
probe_sources = {"faces, supervised": "faces_supervised", "faces, SimCLR (no labels)": "faces_simclr",
                 "digits, supervised": "digits_supervised", "random initialisation": None}
probe_rows = {}
for label, ckpt in probe_sources.items():
    row = {}
    for size, (per_person, n_seeds) in SIZES.items():
        if ckpt in SOURCES.values():  # measured in the 2 x 2 table already, same seeds
            kind = next(k for k, v in SOURCES.items() if v == ckpt)
            row[size] = runs[(size, kind, "linear_probe")]
        else:
            row[size] = regime_runs("linear_probe", source_model(ckpt) if ckpt else scratch_model, per_person,
                                    n_seeds, f"03-{ckpt or 'random'}")
    probe_rows[label] = row
if imagenet is not None:
    tf = imagenet.weights.transforms(crop_size=pick(fast=112, full=224), resize_size=pick(fast=128, full=256))

    def imagenet_probe(per_person, seed):
        net = imagenet.model
        tr = T.cached_features(net, train_subset(per_person, seed).with_transform(tf), name="03-imagenet")
        te = T.cached_features(net, test_set.with_transform(tf), name="03-imagenet")
        return T.train_linear_probe(tr, te, num_classes=NUM_CLASSES, epochs=3 * EPOCHS, seed=seed)[1].last("val_acc")

    probe_rows["ImageNet ResNet-18 (torchvision)"] = {
        size: T.run_seeds(lambda s, k=k: imagenet_probe(k, s), n) for size, (k, n) in SIZES.items()}
probe_table = pd.DataFrame({label: {f"{size} data": str(r.summary) for size, r in row.items()}
                            for label, row in probe_rows.items()}).T
print("linear probe on frozen features, test accuracy")
probe_table

# %%
ssl = probe_rows["faces, SimCLR (no labels)"]["little"].summary.mean
sup = probe_rows["faces, supervised"]["little"].summary.mean
rnd = probe_rows["random initialisation"]["little"].summary.mean
print(f"little data: supervised source {sup:.3f}, SimCLR source {ssl:.3f}, random features {rnd:.3f}")
assert all(0 <= r.summary.mean <= 1 for row in probe_rows.values() for r in row.values())

# %% [markdown]
# The supervised face source had identity labels for every training image;
# SimCLR saw the same images without a single label. Compare both with the
# random-feature baseline: the gap between random features and SimCLR is what
# contrastive pre-training learned from unlabelled faces alone. (SimCLR's
# features keep improving with many more epochs and larger batches than we can
# afford on a CPU.)
#
# ## 8. Regularisation: label smoothing and calibration
#
# With one-hot targets the cross-entropy is minimised only by infinite logits,
# so networks learn to be over-confident. **Label smoothing** trains against
# `y_ls = (1 - a) y_onehot + a / K` instead. Whether a model's confidence can
# be trusted is measured by a **reliability diagram** — accuracy against
# confidence in bins — and the **expected calibration error**
# `ECE = sum_b (n_b / N) |acc_b - conf_b|`. We train the last block on the
# ethnic-group task above for long enough to over-fit, with and without
# smoothing.

# %%
race = TASKS.index("race")
LS_EPOCHS = 2 * ATTR_EPOCHS  # long enough to over-fit


def calibration_run(smoothing: float, seed: int) -> dict:
    tail = fresh_tail(len(task_names["race"]), seed)
    T.train_tail(tail, acts_train, acts_test, epochs=LS_EPOCHS, seed=seed, label_smoothing=smoothing,
                 train_targets=Y_train[:, race], test_targets=Y_test[:, race], device=device)
    probs, labels = T.predict_probs(tail, acts_test.dataset(Y_test[:, race]), device=device)
    return {"probs": probs, "labels": labels, "accuracy": float(np.mean(probs.argmax(1) == labels)),
            "confidence": float(probs.max(1).mean()), "ece": expected_calibration_error(probs, labels, n_bins=10)}


calibration = {name: T.run_seeds(lambda s, a=a: calibration_run(a, s), SEEDS_MT, value="ece")
               for name, a in {"cross-entropy": 0.0, "label smoothing a=0.1": 0.1}.items()}
for name, r in calibration.items():
    print(f"{name:22s} accuracy {T.summarize([x['accuracy'] for x in r.results])}, "
          f"mean confidence {T.summarize([x['confidence'] for x in r.results])}, ECE {r.summary}")

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
for ax, (name, r), color in zip(axes, calibration.items(), ["C0", "C1"]):
    first = r.results[0]
    plot_reliability_diagram(first["probs"], first["labels"], n_bins=10, ax=ax, label=name, color=color,
                             title=f"{name} (seed {r.seeds[0]})")

# %%
conf_ce = np.mean([x["confidence"] for x in calibration["cross-entropy"].results])
conf_ls = np.mean([x["confidence"] for x in calibration["label smoothing a=0.1"].results])
assert conf_ls < conf_ce, "smoothed targets cap the confidence"

# %% [markdown]
# Bars below the diagonal mean over-confidence: the model says "90 % sure" and
# is right less often. Smoothing pulls the confidences down; compare the two
# ECE values printed above (with few test images per bin, ECE itself is noisy).
#
# ## 9. DropBlock versus dropout
#
# Dropout zeroes single activations; in a feature map their neighbours carry
# nearly the same information, so the network barely notices. **DropBlock**
# (`layers.DropBlock2d`) zeroes whole squares, forcing the network to use
# other parts of the face. We insert either one before the last two blocks
# (on the activation maps whose shape section 3 printed), and train on the
# little-data face target, over several seeds.

# %%
REG_P = 0.3
regularisers = {"none": lambda: None, f"dropout p={REG_P}": lambda: nn.Dropout(REG_P),
                f"DropBlock p={REG_P}, 3x3 blocks": lambda: DropBlock2d(REG_P, block_size=3)}
source = P.load_source_model("faces_supervised")
T.freeze(source)


def regularised_tail(make_reg, seed):
    train = T.cached_features(source, train_subset(LITTLE, seed), n_last_blocks=2, name="03-faces_supervised")
    test = T.cached_features(source, test_set, n_last_blocks=2, name="03-faces_supervised")
    seed_everything(seed)
    _, tail = T.split_model(P.load_source_model("faces_supervised"), 2, pre=make_reg())
    tail.reset_classifier(NUM_CLASSES)
    return T.train_tail(tail, train, test, epochs=TAIL_EPOCHS, seed=seed, device=device)


reg_runs = {name: T.run_seeds(lambda s, f=f: regularised_tail(f, s), SEEDS_LITTLE,
                              value=lambda h: h.last("val_acc")) for name, f in regularisers.items()}
for name, r in reg_runs.items():
    print(f"{name:28s} test accuracy {r.summary}")
plot_mean_curves({name: np.array([h["val_acc"] for h in r.results]) for name, r in reg_runs.items()},
                 chance=1 / NUM_CLASSES, title=f"last two blocks, {LITTLE} photographs per person");

# %%
assert all(0 <= r.summary.mean <= 1 for r in reg_runs.values())
print(f"whole notebook so far: {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# With so little data and a short schedule the differences may well lie
# inside the intervals — that is a result too. DropBlock's reported gains
# (ImageNet, COCO) come from long schedules with `drop_prob` ramped up during
# training and larger feature maps.
#
# ## 10. Exercises
#
# Each exercise has a cell for your code (between the `BEGIN/END SOLUTION`
# markers in the instructor's copy; a `NotImplementedError` in yours) and a
# self-check cell with `assert`s that compares your code with the package's.
# The exercises only use what the notebook imported at the top, so you can
# run them in any order.
#
# ### Exercise 1 (1 point): freeze all but the head
#
# Write `freeze_backbone(model)` for a zoo model: set `requires_grad=False` on
# every parameter except those of `model.classifier`, and return the number
# of trainable parameters left.

# %% tags=["solution"] exercise="freeze_backbone"
def freeze_backbone(model: nn.Module) -> int:
    ### BEGIN SOLUTION
    # Hint: loop over model.named_parameters(); keep requires_grad only for names starting with "classifier.".
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier."))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
    ### END SOLUTION


# %% tags=["check"] exercise="freeze_backbone" points=1
for arch, k in [("resnet_small", 40), ("vgg_small", 7)]:
    mine, ref = create_model(arch, num_classes=k), create_model(arch, num_classes=k)
    n = freeze_backbone(mine)
    assert n == T.count_trainable(T.freeze_all_but_head(ref)) == mine.num_features * k + k, arch
    assert all(p.requires_grad == r.requires_grad for p, r in zip(mine.parameters(), ref.parameters())), arch
print("freeze_backbone agrees with transfer.freeze_all_but_head")

# %% [markdown]
# ### Exercise 2 (2 points): per-layer learning rates
#
# Write `per_layer_groups(model, lr, decay)` returning optimizer parameter
# groups: the head (`T.head_modules(model)`) at `lr`; then the backbone
# blocks (`T.backbone_blocks(model)`, input side first) from the last one
# down, at `lr * decay`, `lr * decay**2`, ... Leave out frozen parameters.

# %% tags=["solution"] exercise="per_layer_lr"
def per_layer_groups(model: nn.Module, lr: float, decay: float) -> list[dict]:
    ### BEGIN SOLUTION
    # Hint: [{"params": [...], "lr": ...}, ...]; enumerate(reversed(T.backbone_blocks(model)), start=1) gives the exponent.
    head = [p for _, m in T.head_modules(model) for p in m.parameters() if p.requires_grad]
    groups = [{"params": head, "lr": lr}]
    for k, (_, block) in enumerate(reversed(T.backbone_blocks(model)), start=1):
        params = [p for p in block.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr * decay**k})
    return [g for g in groups if g["params"]]
    ### END SOLUTION


# %% tags=["check"] exercise="per_layer_lr" points=2
def lr_of_each_parameter(groups):
    return {id(p): g["lr"] for g in groups for p in g["params"]}


for arch in ["resnet_small", "vgg_small"]:
    m = create_model(arch, num_classes=5)
    T.unfreeze_last_blocks(m, 3)
    mine = lr_of_each_parameter(per_layer_groups(m, 0.1, 0.5))
    ref = lr_of_each_parameter(T.layerwise_lr_groups(m, lr=0.1, decay=0.5))
    assert mine.keys() == ref.keys(), f"{arch}: not the same (trainable) parameters"
    assert all(np.isclose(mine[k], ref[k]) for k in ref), f"{arch}: a learning rate differs"
    torch.optim.SGD(per_layer_groups(m, 0.1, 0.5), lr=0.1)
print("per_layer_groups agrees with transfer.layerwise_lr_groups")

# %% [markdown]
# ### Exercise 3 (2 points): label smoothing
#
# Write `smoothed_cross_entropy(logits, targets, a)`: the mean over the batch
# of the cross-entropy against `y_ls = (1 - a) * onehot(y) + a / K`, without
# `F.cross_entropy`'s `label_smoothing` argument.

# %% tags=["solution"] exercise="label_smoothing"
def smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, a: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    # Hint: build y_ls with F.one_hot(targets, K).float(); the loss is -(y_ls * F.log_softmax(logits, 1)).sum(1).mean().
    k = logits.shape[1]
    y_ls = (1 - a) * F.one_hot(targets, k).float() + a / k
    return -(y_ls * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    ### END SOLUTION


# %% tags=["check"] exercise="label_smoothing" points=2
torch.manual_seed(0)
logits_ex, targets_ex = torch.randn(16, 6) * 3, torch.randint(0, 6, (16,))
for a in (0.0, 0.1, 0.4):
    ours = smoothed_cross_entropy(logits_ex, targets_ex, a)
    assert torch.allclose(ours, LabelSmoothingCrossEntropy(a)(logits_ex, targets_ex), atol=1e-5), a
    assert torch.allclose(ours, F.cross_entropy(logits_ex, targets_ex, label_smoothing=a), atol=1e-5), a
print("smoothed_cross_entropy matches losses.LabelSmoothingCrossEntropy and F.cross_entropy")

# %% [markdown]
# ### Exercise 4 (2 points): expected calibration error
#
# Write `ece(probs, labels, n_bins)` for probabilities `probs` `(N, K)`:
# confidence = top probability, bins of equal width on `[0, 1]` (bin `b`
# holds confidences in `(b/n_bins, (b+1)/n_bins]`, the first one also 0), and
# `ECE = sum_b (n_b / N) |accuracy_b - mean confidence_b|` over non-empty bins.

# %% tags=["solution"] exercise="ece"
def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    ### BEGIN SOLUTION
    # Hint: conf = probs.max(1); correct = probs.argmax(1) == labels; bin = np.clip(np.ceil(conf * n_bins) - 1, 0, n_bins - 1).
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)
    ### END SOLUTION


# %% tags=["check"] exercise="ece" points=2
rng_ex = np.random.default_rng(0)
for n_bins in (5, 10, 15):
    raw = np.exp(rng_ex.normal(size=(300, 4)) * 2)
    probs_ex = raw / raw.sum(1, keepdims=True)
    labels_ex = rng_ex.integers(0, 4, 300)
    assert np.isclose(ece(probs_ex, labels_ex, n_bins), expected_calibration_error(probs_ex, labels_ex, n_bins=n_bins),
                      atol=1e-9), n_bins
assert np.isclose(ece(np.eye(3), np.arange(3), 10), 0.0)
print("ece matches metrics.expected_calibration_error")

# %% [markdown]
# ### Exercise 5 (2 points): a linear probe
#
# Write `linear_probe(train_x, train_y, test_x, test_y, num_classes)` that
# fits a linear classifier (logistic regression) on frozen features and
# returns its test accuracy. Any method will do: `torch.optim` on an
# `nn.Linear`, or scikit-learn. Standardising the features first helps.

# %% tags=["solution"] exercise="linear_probe"
def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int) -> float:
    ### BEGIN SOLUTION
    # Hint: standardise with the training mean/std; train nn.Linear(D, num_classes) with Adam (lr 1e-2) for a few hundred full-batch steps.
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xtr, xte = (train_x - mean) / std, (test_x - mean) / std
    torch.manual_seed(0)
    head = nn.Linear(xtr.shape[1], num_classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(head(xtr), train_y).backward()
        opt.step()
    with torch.no_grad():
        return float((head(xte).argmax(1) == test_y).float().mean())
    ### END SOLUTION


# %% tags=["check"] exercise="linear_probe" points=2
g_ex = torch.Generator().manual_seed(0)
centres = torch.randn(5, 16, generator=g_ex) * 2
y_tr, y_te = torch.arange(100) % 5, torch.arange(50) % 5
x_tr = centres[y_tr] + torch.randn(100, 16, generator=g_ex) * 3 + 10
x_te = centres[y_te] + torch.randn(50, 16, generator=g_ex) * 3 + 10
y_shuffled = y_te[torch.randperm(50, generator=g_ex)]  # test labels that no probe can predict
theirs = T.train_linear_probe(T.FeatureSet(x_tr, y_tr), T.FeatureSet(x_te, y_te), num_classes=5,
                              epochs=100)[1].last("val_acc")
mine = linear_probe(x_tr, y_tr, x_te, y_te, 5)
mine_shuffled = linear_probe(x_tr, y_tr, x_te, y_shuffled, 5)
print(f"your probe: {mine:.3f} (on shuffled test labels {mine_shuffled:.3f}); "
      f"transfer.train_linear_probe: {theirs:.3f}")
assert 0 <= mine <= 1 and mine >= theirs - 0.06, "the probe should be about as good as the package's"
assert mine_shuffled < 0.5, "with shuffled test labels the accuracy must fall towards chance (0.2)"

# %% [markdown]
# ### Exercise 6 (2 points): the NT-Xent loss
#
# Write `nt_xent(z1, z2, temperature)` for two `(N, D)` batches of
# projections (row `i` of `z1` and of `z2` are two views of image `i`):
# normalise the `2N` rows, take all cosine similarities divided by the
# temperature, exclude each row's similarity with itself, and return the mean
# cross-entropy of picking the other view among the `2N - 1` candidates.

# %% tags=["solution"] exercise="nt_xent"
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    ### BEGIN SOLUTION
    # Hint: z = F.normalize(torch.cat([z1, z2]), dim=1); sim = z @ z.T / t; mask the diagonal with -inf; targets are i+N for i<N and i-N after.
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets)
    ### END SOLUTION


# %% tags=["check"] exercise="nt_xent" points=2
torch.manual_seed(1)
za, zb = torch.randn(8, 5), torch.randn(8, 5)
for t in (0.1, 0.5, 1.0):
    assert torch.allclose(nt_xent(za, zb, t), NTXentLoss(t)(za, zb), atol=1e-5), t
assert nt_xent(za, za + 0.01 * zb, 0.1) < nt_xent(za, zb, 0.1), "matching views must give a lower loss"
print("nt_xent matches losses.NTXentLoss")

# %% [markdown]
# ## What next
#
# Notebook 04 trains face *embeddings* for verification and identification,
# starting from the same kind of pretrained backbone. To go further here:
# run in full mode (`COURSE_FAST=0`), try other sources (`P.RECIPES` and
# `scripts/make_checkpoints.py`), or — with internet access — look at the
# ImageNet ResNet-18's row in the linear-probe table of section 7 (it appears
# when the weights can be loaded) and run the four regimes with it.

# %%
torch.set_num_threads(default_threads)
print(f"notebook finished in {time.perf_counter() - notebook_start:.0f} s; CPU threads restored to {default_threads}")
