# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · FairFace and dataset bias: assess it, look for it in the embedding, mitigate it
#
# A face model learns from the faces it is shown. When one group of people
# dominates the training data, the model may work less well for the others —
# or it may not; that is a question to **measure**, not to assume. This
# notebook assesses group differences in data and models, and tries two kinds
# of mitigation, with intervals on every number.
#
# 1. **The data card** — where FairFace comes from, how it was labelled, and
#    what its race categories can and cannot mean
# 2. **Composition audit** — counts and shares by race group, gender and age,
#    next to published compositions of other face data sets
# 3. **Per-group performance** — the same gender classifier trained on a
#    *skewed* and on a *balanced* training set of the same size, assessed with
#    fairlearn's `MetricFrame` and bootstrap intervals
# 4. **Verification bias** — false match and false non-match rates per group,
#    at one global threshold and at per-group thresholds, next to NIST FRVT's
#    published findings
# 5. **How much space does each group occupy in the representation?** —
#    spread of the embeddings per group, a UMAP map, and what a linear probe
#    on a skew-trained backbone inherits
# 6. **Mitigation and its trade-offs** — rebalanced sampling, and per-group
#    thresholds with fairlearn's `ThresholdOptimizer`
# 7. **Exercises** (graded, with self-checks)
#
# Every measured number is computed when the notebook runs; the only numbers
# typed in are published ones, each with its source. The text says what the
# measurements *can* support; the printed verdicts are computed from the
# intervals, so they stay true whatever this run finds.

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
from fairlearn.metrics import MetricFrame
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import TensorDataset

from course_utils import data_dir, env_report, limit_cpu_threads, pick, resolve_device, seed_everything
from course_utils import fairness as Fa
from course_utils.data import (
    SynthFacesConfig,
    load_face_attributes,
    load_fairface,
    load_fairface_labels,
    make_synthfaces,
    stratified_split,
)
from course_utils.facerec import augment_faces
from course_utils.losses import CosFaceLoss
from course_utils.models.embedding import EmbeddingNet, PerImageStandardize, face_backbone
from course_utils.plots import plot_embedding_groups, plot_group_intervals, show_images
from course_utils.settings import DATASET_MARKERS
from course_utils.train import fit, make_loader

info = env_report()
device = resolve_device()
notebook_start = time.perf_counter()

# %% [markdown]
# The networks here are tiny, so on a CPU we compute with one thread (extra
# threads mostly wait for each other, badly so on shared cores); the last
# cell restores the default. All sizes come from `pick`: fast mode trains
# fewer epochs and seeds.

# %%
default_threads = limit_cpu_threads(1, device=device)  # None keeps PyTorch's default
IMG = 32  # pixels: small on purpose, so that everything trains in seconds
EPOCHS = pick(fast=20, full=40)  # gender classifiers
SEEDS = pick(fast=2, full=5)  # training seeds per training set
VER_EPOCHS = pick(fast=20, full=60)  # verification embeddings (SynthFaces)
N_BOOT = pick(fast=1000, full=5000)  # bootstrap replicates
print(f"{device}, {torch.get_num_threads()} CPU thread(s); {IMG} px; {EPOCHS} epochs x {SEEDS} seeds; "
      f"{N_BOOT} bootstrap replicates")

# %% [markdown]
# ## 1. The data card
#
# | | |
# | --- | --- |
# | **Data set** | FairFace (Kärkkäinen & Joo, *FairFace: Face Attribute Dataset for Balanced Race, Gender, and Age for Bias Measurement and Mitigation*, WACV 2021; <https://github.com/joojs/fairface>) |
# | **Size** | 108,501 face images in the paper; the released label files list 86,744 training and 10,954 validation images |
# | **Source of the images** | mostly the YFCC-100M Flickr collection (photographs shared under Creative Commons licences), plus other public web sources; faces detected and cropped automatically |
# | **Licence** | CC BY 4.0 (attribution) for the released images and labels |
# | **Labels** | race group (7), gender (2), age bin (9), assigned by crowd workers (Amazon Mechanical Turk) who *looked at the photograph*; the paper describes how the answers of several annotators were combined and doubtful labels re-checked |
# | **Purpose** | a face attribute data set *balanced* on race so that attribute classifiers can be trained and their group differences measured |
# | **Consent** | the people shown did not consent to being in a face data set; the photographs were public under CC licences, which govern copying, not the use of a face for model training |
#
# **What "race" means here, and what it cannot mean.**
#
# - The labels are **perceived** race, gender and age: what annotators judged
#   from one photograph, not what the person would say about themselves. A
#   label can be wrong for the person, and annotators disagree most on
#   people between categories.
# - The **seven groups** (White, Black, Indian, East Asian, Southeast Asian,
#   Middle Eastern, Latino_Hispanic) are FairFace's choice. Racial categories
#   are social constructs; which ones exist and where their borders run differ
#   between countries and over time (a US census category is not an Indian or
#   a Brazilian one). Many people fit none, or several.
# - **Gender** is labelled as two categories as perceived, which leaves out
#   people whose gender is neither or differs from their appearance.
# - So a per-group number below is a statement about *images labelled that
#   way in this data set*, not about any people as such.
#
# Language: we **assess** differences between groups and **mitigate** them
# with specific techniques, reporting what each one improves and what it
# costs. No single number shows that a model is "fair".

# %% [markdown]
# ## 2. Composition audit
#
# We count the labels of the **complete** official label files when they are
# in the data directory (`fairface/labels_full/`), else those of the local
# sample, else — on a fresh machine with no data — the embedded SynthFaces
# stand-in (a message says which).

# %%
root = data_dir()
REAL = (root / DATASET_MARKERS["fairface"]).exists()
FULL_LABELS = (root / "fairface" / "labels_full" / "fairface_label_train.csv").is_file()
if REAL:
    labels = pd.concat([load_fairface_labels(s, full=FULL_LABELS).assign(split=s) for s in ("train", "val")],
                       ignore_index=True)
    label_source = "the complete official FairFace label files" if FULL_LABELS else "the local FairFace sample"
    GROUP, TARGET, POSITIVE, DOMINANT, AGE = "race", "gender", "Female", "White", "age"
else:
    synth_all = make_synthfaces(SynthFacesConfig(n_identities=700, images_per_identity=1, image_size=32, seed=2))
    labels = synth_all.attributes.assign(split="all")
    label_source = ("the embedded SynthFaces default (no FairFace in the data directory): skin_tone, presentation "
                    "and age_group stand in for race, gender and age")
    GROUP, TARGET, POSITIVE, DOMINANT, AGE = "skin_tone", "presentation", "feminine", "light", "age_group"
print(f"composition of {len(labels):,} labels from {label_source}")
by_group = Fa.composition_table(labels, GROUP)
by_gender = Fa.composition_table(labels, TARGET)
by_age = Fa.composition_table(labels, AGE)
pd.concat({GROUP: by_group, TARGET: by_gender, AGE: by_age}).round(4)

# %%
joint = Fa.composition_table(labels, [GROUP, TARGET])["share"].unstack().round(4)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
by_group["share"].plot.bar(ax=axes[0], color="C0", rot=30)
axes[0].axhline(1 / len(by_group), color="0.4", ls="--", lw=0.8, label="equal shares")
axes[0].set(ylabel="share of images", title=f"{GROUP} ({label_source.split(':')[0]})")
axes[0].legend(fontsize="small")
by_age["share"].plot.bar(ax=axes[1], color="C1", rot=30)
axes[1].set(ylabel="share of images", title=AGE)
largest, smallest = by_group["share"].max(), by_group["share"].min()
print(f"largest {GROUP} group: {by_group['share'].idxmax()} ({largest:.1%}); smallest: "
      f"{by_group['share'].idxmin()} ({smallest:.1%}); ratio {smallest / largest:.2f}")
joint

# %%
assert by_group["count"].sum() == len(labels) and np.isclose(by_group["share"].sum(), 1)
assert by_group["count"].min() > 0

# %% [markdown]
# For comparison, compositions other authors **state in the text** of their
# papers (rows with their sources). The FairFace paper compares the racial
# composition of several widely used face data sets in a figure and finds
# them "strongly biased toward Caucasian faces"; we do not copy numbers read
# off a chart, so look at the paper's figure for those. Note that the
# published rows count different things (skin type, estimated race,
# estimated gender), with different methods.

# %%
published = Fa.published_compositions()
fairface_row = pd.DataFrame([{"dataset": f"FairFace ({label_source.split(':')[0]})", "attribute": GROUP,
                              "group": DOMINANT, "share": round(float(by_group.loc[DOMINANT, "share"]), 3),
                              "source": "computed above"}])
pd.concat([published, fairface_row], ignore_index=True)

# %% [markdown]
# FairFace is close to balanced on its own race labels by design; the
# published data sets quoted above give one group 78–86 % of their faces. The
# age bins are far from balanced (most faces are adults of 20–39), which
# matters for any per-age analysis.
#
# ## 3. Per-group performance: skewed versus balanced training data
#
# The experiment: train **the same** gender classifier on two training sets
# of **the same size**, drawn from the same pool —
#
# - *skewed*: one group (White; on SynthFaces the lightest skin tone) makes
#   up half the set, the others share the rest equally, as in many face data
#   sets;
# - *balanced*: every group equally.
#
# Inside every group, women and men are kept equal, so only the group mix
# differs. Both are assessed on the same **balanced** validation set. A
# calibration set (20 % of the training images, never trained on) is kept
# aside for the post-processing of section 6 and the probes of section 5.

# %%
FACE_CROP = (0.1, 0.1, 0.9, 0.9)  # cut most of FairFace's 0.25 margin: more face per pixel
if REAL:
    train_ds = load_fairface("train", image_size=IMG, crop=FACE_CROP)
    val_ds = load_fairface("val", image_size=IMG, crop=FACE_CROP)
else:
    train_ds = load_face_attributes("fairface", split="train", image_size=IMG)
    val_ds = load_face_attributes("fairface", split="val", image_size=IMG)
DATA_NAME = "FairFace (real photographs)" if REAL else "SynthFaces (embedded default, synthetic faces)"
print(f"images: {DATA_NAME}: {len(train_ds)} training, {len(val_ds)} validation, {tuple(train_ds.image_shape)}")


def columns(ds):
    a = ds.attributes
    age = a[AGE].astype(str)
    if REAL:  # FairFace's 9 age bins -> 3 coarse groups
        age = age.map(lambda v: "0-19" if v in ("0-2", "3-9", "10-19") else "20-39" if v in ("20-29", "30-39")
                      else "40+")
    return a[GROUP].astype(str).to_numpy(), (a[TARGET].astype(str) == POSITIVE).to_numpy().astype(np.int64), \
        age.to_numpy()


group_tr, y_tr, age_tr = columns(train_ds)
group_va, y_va, age_va = columns(val_ds)
GROUPS = sorted(set(group_va))
cell = np.char.add(np.char.add(group_tr.astype(str), "|"), y_tr.astype(str))
pool_split = stratified_split(cell, test_fraction=0.2, seed=0)
pool, calib = pool_split.train, pool_split.test
DOMINANT_SHARE = 0.5
# the dominant group's images in the pool (per class) bound the size: it gets half of the skewed set
dominant_per_class = min(int(((group_tr[pool] == DOMINANT) & (y_tr[pool] == c)).sum()) for c in (0, 1))
SIZE = min(600, 4 * dominant_per_class)
sets = {s: Fa.skewed_and_balanced(group_tr[pool], size=SIZE, dominant=DOMINANT, dominant_share=DOMINANT_SHARE,
                                  strata=y_tr[pool], seed=s) for s in range(SEEDS)}
sets = {s: {k: pool[v] for k, v in d.items()} for s, d in sets.items()}
mix = pd.DataFrame({name: pd.Series(group_tr[idx]).value_counts() for name, idx in sets[0].items()}).loc[GROUPS]
mix["validation"] = pd.Series(group_va).value_counts()
mix["calibration"] = pd.Series(group_tr[calib]).value_counts()
print(f"training sets of {SIZE} images; {DOMINANT} = {DOMINANT_SHARE:.0%} of the skewed one; "
      f"positive class = {POSITIVE}")
mix

# %%
assert all(len(d["skewed"]) == len(d["balanced"]) == SIZE for d in sets.values())
assert not set(calib) & set(np.concatenate([v for d in sets.values() for v in d.values()]))
assert mix["validation"].max() <= 1.1 * mix["validation"].min(), "the validation set is (close to) balanced"


# %% [markdown]
# The classifier: the small residual network of notebook 04 (per-image
# standardisation, a 64-dimensional embedding) with a linear head, trained
# with horizontal flips. Its 64 numbers before the head are the
# representation that section 5 looks into.

# %%
class AttributeNet(nn.Module):
    """Backbone -> 64-d embedding -> linear head (2 classes)."""

    def __init__(self):
        super().__init__()
        self.backbone = EmbeddingNet(face_backbone(in_chans=3), embedding_dim=64, normalize=False,
                                     input_norm=PerImageStandardize())
        self.head = nn.Linear(64, 2)

    def embed(self, x):
        return self.backbone(x)

    def forward(self, x):
        return self.head(self.embed(x))


X_tr, X_va = train_ds.float_images(), val_ds.float_images()
flip_gen = torch.Generator().manual_seed(0)


def flip_forward(model, x):
    if model.training:
        flip = torch.rand(x.shape[0], generator=flip_gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return model(x)


def train_net(idx, seed, *, sampler=None):
    seed_everything(seed)
    net = AttributeNet()
    loader = make_loader(TensorDataset(X_tr[idx], torch.as_tensor(y_tr[idx])), batch_size=32,
                         shuffle=sampler is None, sampler=sampler, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=EPOCHS * len(loader))
    fit(net, loader, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=EPOCHS, scheduler=sched,
        scheduler_step="batch", forward_fn=flip_forward, device=device, progress=False)
    return net.eval()


@torch.no_grad()
def positive_score(net, x):
    """P(positive class) for images x."""
    return torch.softmax(net.to(device)(x.to(device)), 1)[:, 1].cpu().numpy()


t0 = time.perf_counter()
nets = {(kind, s): train_net(sets[s][kind], s) for s in range(SEEDS) for kind in ("skewed", "balanced")}
scores_va = {key: positive_score(net, X_va) for key, net in nets.items()}
pred_va = {key: (sc >= 0.5).astype(int) for key, sc in scores_va.items()}
print(f"{len(nets)} classifiers trained in {time.perf_counter() - t0:.0f} s")

# %% [markdown]
# ### MetricFrame: accuracy and error rates per group
#
# fairlearn's `MetricFrame` evaluates each metric on every group's slice of
# the validation set; `.difference()` is the largest minus the smallest group
# value, `.ratio()` the smallest over the largest. With the positive class
# = female: the *false positive rate* is the share of men classified as
# women, the *false negative rate* the share of women classified as men.

# %%
frames = {kind: Fa.group_metric_frame(y_va, pred_va[(kind, 0)], group_va) for kind in ("skewed", "balanced")}
for kind, mf in frames.items():
    print(f"{kind} training set (seed 0): overall accuracy {mf.overall['accuracy']:.3f}; between groups: "
          f"accuracy difference {mf.difference()['accuracy']:.3f}, ratio {mf.ratio()['accuracy']:.3f}")
pd.concat({kind: mf.by_group for kind, mf in frames.items()}, axis=1).round(3)

# %% [markdown]
# ### Bootstrap intervals
#
# With about a hundred validation images per group, a per-group accuracy is
# uncertain by several points. `bootstrap_group_metrics` redraws each group's
# validation images with replacement (1,000s of times, vectorised) and
# reports 95 % percentile intervals for every group, for the difference and
# ratio, and for the **paired contrast** skewed − balanced (both models are
# scored on the same redrawn images, so the contrast's interval is narrower
# than the two separate ones suggest).

# %%
boot = Fa.bootstrap_group_metrics(y_va, {k: pred_va[(k, 0)] for k in ("skewed", "balanced")}, group_va,
                                  n_boot=N_BOOT, seed=0, contrasts=[("skewed", "balanced")], order=GROUPS)
acc = boot[boot.metric == "accuracy"]
table = acc.assign(interval=acc.apply(lambda r: f"{r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]", axis=1))
table.pivot(index="group", columns="model", values="interval").loc[[*GROUPS, "difference", "ratio"]]

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), layout="constrained")
plot_group_intervals(acc[acc.model.isin(["skewed", "balanced"]) & acc.group.isin(GROUPS)], ax=axes[0],
                     ylabel="accuracy", reference=0.5, groups=GROUPS,
                     title=f"gender accuracy per {GROUP}, 95% bootstrap intervals")
plot_group_intervals(acc[(acc.model == "skewed - balanced") & acc.group.isin(GROUPS)], ax=axes[1],
                     ylabel="accuracy, skewed − balanced", reference=0.0, groups=GROUPS,
                     title="paired contrast (same validation images)");

# %%
contrast = acc[acc.model == "skewed - balanced"].set_index("group")
verdict = {g: "higher" if r.low > 0 else "lower" if r.high < 0 else "no clear difference"
           for g, r in contrast.loc[GROUPS].iterrows()}
print("skew-trained minus balance-trained accuracy, per group (95% paired interval):")
for g in GROUPS:
    r = contrast.loc[g]
    print(f"  {g:16s} {r.estimate:+.3f} [{r.low:+.3f}, {r.high:+.3f}]  -> {verdict[g]}")
d = contrast.loc["difference"]
print(f"between-group accuracy difference, skewed minus balanced: {d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]")
seed_rows = []
for s in range(SEEDS):
    for kind in ("skewed", "balanced"):
        mf = Fa.group_metric_frame(y_va, pred_va[(kind, s)], group_va, metrics=[Fa.ACCURACY])
        seed_rows.append({"seed": s, "training set": kind, "overall": mf.overall.iloc[0],
                          f"{DOMINANT}": mf.by_group.loc[DOMINANT].iloc[0],
                          f"others (mean)": mf.by_group.drop(DOMINANT).iloc[:, 0].mean(),
                          "difference": mf.difference().iloc[0]})
per_seed = pd.DataFrame(seed_rows)
per_seed.round(3)

# %%
est = boot[(boot.model == "skewed") & (boot.metric == "accuracy")].set_index("group")["estimate"]
assert np.allclose(est.loc[GROUPS].to_numpy(), frames["skewed"].by_group["accuracy"].loc[GROUPS].to_numpy())
assert np.isclose(est["difference"], frames["skewed"].difference()["accuracy"])
assert (acc["low"] <= acc["estimate"] + 1e-12).all() and (acc["estimate"] <= acc["high"] + 1e-12).all()
assert min(mf.overall["accuracy"] for mf in frames.values()) > 0.55, "both classifiers must beat chance"

# %% [markdown]
# **Reading the result.** The verdicts above come from the paired intervals:
# "no clear difference" means that the interval includes zero — at this
# sample size the data cannot tell the two training sets apart for that
# group. The per-seed table shows how much a second training run moves
# the numbers; the bootstrap covers the validation sample only, not the
# training randomness, so a gap smaller than the seed-to-seed spread is not
# evidence either. What the experiment can show is limited by its size: a few
# hundred training images at 32 pixels, about a hundred validation images per
# group. Published studies with large models and data sets (the FairFace paper
# among them) report that training on a more balanced race composition gave
# more consistent accuracy across groups on *other* data sets; an experiment
# this small may or may not reproduce that, and we report what it measured.
#
# ## 4. Verification bias: false matches and false non-matches per group
#
# FairFace has no identities, so it cannot measure *verification* (are these
# two photos the same person?). We use **SynthFaces**, whose identities carry
# a skin-tone group, with a deliberate imbalance: an embedding network
# (CosFace loss, notebook 04) is trained on identities of which 70 % have the
# lightest tone, and a second one on the same number of identities with all
# tones equal. Both are tested on **new** identities, equally many per tone.
# (With a real identity data set that carries group labels, the same cells
# apply to its embeddings; none ships with the course.) SynthFaces renders
# darker tones with lower contrast of brows and eyes, as in real photographs,
# so a group difference may come from the images as well as from the training
# mix — comparing the two training sets separates the two.
#
# Following NIST FRVT, impostor pairs are taken **within** a group (two
# different people of the same group), and the rates are:
#
# - **FMR** (false match rate): impostor pairs accepted, `score >= t`;
# - **FNMR** (false non-match rate): genuine pairs rejected.

# %%
ver_cfg = dict(n_identities=pick(fast=120, full=300), images_per_identity=8, image_size=32)
ver_train = {
    "skewed (70% light)": make_synthfaces(SynthFacesConfig(**ver_cfg, skin_tone_proportions=(0.7, 0.1, 0.1, 0.1),
                                                           seed=10)),
    "balanced": make_synthfaces(SynthFacesConfig(**ver_cfg, seed=10)),
}
ver_test = make_synthfaces(SynthFacesConfig(n_identities=80, images_per_identity=6, image_size=32, seed=99))
tone_test = ver_test.attributes["skin_tone"].astype(str).to_numpy()
pairs, pair_group = Fa.within_group_pairs(ver_test.targets, tone_test)
print("SynthFaces identities per skin tone in training:",
      {k: ds.attributes.groupby("skin_tone", observed=False)["identity"].nunique().to_dict()
       for k, ds in ver_train.items()})
print(f"test: {ver_test.n_classes} new identities, {len(ver_test)} images; {pairs.n_genuine} genuine and "
      f"{pairs.n_impostor} within-group impostor pairs")
show_images(ver_test.images[::24][:16], list(tone_test[::24][:16]), ncols=8, title="test identities by skin tone");

# %%
aug_gen = torch.Generator().manual_seed(0)


def train_embedding(ds, seed=0):
    seed_everything(seed)
    net = EmbeddingNet(face_backbone(in_chans=3), embedding_dim=64, input_norm=PerImageStandardize())
    loss = CosFaceLoss(ds.n_classes, embedding_dim=64, s=16.0, m=0.2)
    opt = torch.optim.AdamW([{"params": net.parameters()}, {"params": loss.parameters(), "weight_decay": 0.0}],
                            lr=3e-3, weight_decay=1e-2)
    fit(net, make_loader(ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed)),
        loss_fn=loss, optimizer=opt, epochs=VER_EPOCHS,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(opt, VER_EPOCHS), device=device, progress=False,
        forward_fn=lambda m, x: m(augment_faces(x, generator=aug_gen) if m.training else x))
    return net.eval()


@torch.no_grad()
def embed(net, x):
    return net.to(device)(x.to(device)).cpu()


t0 = time.perf_counter()
ver_nets = {k: train_embedding(ds) for k, ds in ver_train.items()}
ver_emb = {k: embed(net, ver_test.float_images()) for k, net in ver_nets.items()}
ver_scores = {k: (e[pairs.first] * e[pairs.second]).sum(1).numpy() for k, e in ver_emb.items()}
print(f"2 embedding networks trained in {time.perf_counter() - t0:.0f} s")

# %% [markdown]
# One **global threshold** is set so that the false match rate over *all*
# test impostor pairs is `FMR_TARGET`; then `MetricFrame` splits the
# pair-level outcomes by group. **Per-group thresholds** instead give every
# group the target FMR on its own pairs.

# %%
FMR_TARGET = 0.05  # far above operational FMRs (NIST reports 1e-5 and below): a small test set and small networks
ver_tables = {}
for k, s in ver_scores.items():
    t_global = Fa.threshold_at_fmr(s, pairs.same, FMR_TARGET)
    t_group = Fa.per_group_thresholds(s, pairs.same, pair_group, FMR_TARGET)
    ver_tables[(k, "global threshold")] = Fa.verification_by_group(s, pairs.same, pair_group, t_global)
    ver_tables[(k, "per-group thresholds")] = Fa.verification_by_group(s, pairs.same, pair_group, t_group)
ver_table = pd.concat({f"{k} | {how}": t[["FMR", "FNMR", "threshold"]] for (k, how), t in ver_tables.items()},
                      axis=1)
ver_table.round(4)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained")
for ax, rate in zip(axes, ["FMR", "FNMR"]):
    wide = pd.DataFrame({f"{k} | {how}": t[rate] for (k, how), t in ver_tables.items()})
    wide.plot.bar(ax=ax, rot=0)
    ax.set(ylabel=rate, title=f"{rate} per skin tone (target FMR {FMR_TARGET})")
    if rate == "FMR":
        ax.axhline(FMR_TARGET, color="0.4", ls="--", lw=0.8)
    ax.legend(fontsize="x-small")
for k in ver_scores:
    g = ver_tables[(k, "global threshold")]
    print(f"{k:20s} global threshold: FMR from {g['FMR'].min():.4f} ({g['FMR'].idxmin()}) to {g['FMR'].max():.4f} "
          f"({g['FMR'].idxmax()}), max/min = {g['FMR'].max() / max(g['FMR'].min(), 1e-12):.1f}; "
          f"FNMR from {g['FNMR'].min():.3f} to {g['FNMR'].max():.3f}")

# %%
for (k, how), t in ver_tables.items():
    imp = ~pairs.same
    if how == "per-group thresholds":
        assert (t["FMR"] <= FMR_TARGET + 1e-12).all()
    for g in sorted(set(tone_test)):
        m = (pair_group == g)
        assert np.isclose(t.loc[g, "FMR"], np.mean(ver_scores[k][m & imp] >= t.loc[g, "threshold"]))
assert np.isclose(np.mean(ver_scores["balanced"][~pairs.same] >=
                          Fa.threshold_at_fmr(ver_scores["balanced"], pairs.same, FMR_TARGET)), FMR_TARGET, atol=2e-3)

# %% [markdown]
# **What a global threshold does.** A deployed system has one threshold. If
# a group's impostor scores sit higher — its people look more alike *to this
# network* — that group gets more false matches at the same threshold. The
# table shows this run's per-group FMR and FNMR; per-group thresholds equalise
# the FMR by construction and move the difference into the FNMR (a group
# whose threshold must rise to hold the FMR gets more false non-matches).
# Pairs share images, so these rates are not independent draws: a binomial
# interval would be too narrow, and an interval would have to resample
# identities. With a few dozen test identities per group, treat differences
# of less than a factor of about two with caution.
#
# **NIST FRVT, for scale.** NIST's *Face Recognition Vendor Test Part 3:
# Demographic Effects* (Grother, Ngan & Hanaoka, NISTIR 8280, December 2019)
# measured 189 mostly commercial algorithms on US government photographs. For
# one-to-one verification it found false positive (false match) rates that
# were highest for West and East African and East Asian faces and lowest for
# Eastern European faces, larger by **factors of 10 to beyond 100** for many
# algorithms; differences in false non-match rates were generally smaller.
# False positives were also more frequent for women, and for the elderly and
# children. For a number of algorithms developed in China the effect was
# reversed (low false positive rates on East Asian faces), consistent with
# the training data mattering, and some of the most accurate algorithms
# showed much smaller differentials. The report sets thresholds exactly as
# above (one threshold, FMR measured per group), and stresses that
# demographic differentials depend on the algorithm: each system has to be
# measured on its own.
#
# ## 5. How much space does each group occupy in the representation?
#
# A network spends its representation where its training data are: a group
# it saw little of may be **squeezed** into a small region, where different
# faces sit close together. We measure the per-group spread of the 64-d
# embeddings (L2-normalised) of the validation images, for the gender
# classifiers of section 3 and for the verification networks of section 4:
#
# - mean distance to the group centroid;
# - log-determinant of the group's covariance in a shared 8-d PCA space (a
#   log-volume);
# - mean distance to the 5 nearest neighbours in the same group;
# - mean distance to the nearest **impostor** (another identity of the same
#   group; on FairFace every image counts as its own identity).
#
# Groups are compared on equal-size random subsamples (these distances shrink
# as a group gets more points), and the intervals are the 2.5–97.5 %
# range over 200 subsamples.

# %%
occupancy = {}
with torch.no_grad():
    for kind in ("skewed", "balanced"):
        emb_va = nets[(kind, 0)].embed(X_va.to(device)).cpu()
        occupancy[f"gender net, {kind}"] = Fa.occupancy_stats(emb_va, group_va, n_boot=200, order=GROUPS, seed=0)
for k, e in ver_emb.items():
    occupancy[f"verification net, {k}"] = Fa.occupancy_stats(e, tone_test, identities=ver_test.targets,
                                                            n_boot=200, seed=0)
occ = pd.concat([t.assign(model=k) for k, t in occupancy.items()], ignore_index=True)
occ_wide = occ.pivot_table(index=["model", "group"], columns="stat", values="estimate", sort=False)
occ_wide[list(Fa.OCCUPANCY_STATS)].round(3)

# %%
fig, axes = plt.subplots(2, 2, figsize=(13, 7), layout="constrained")
for ax, stat in zip(axes.flat, Fa.OCCUPANCY_STATS):
    part = occ[(occ.stat == stat) & occ.model.str.startswith("gender")]
    plot_group_intervals(part, ax=ax, groups=GROUPS, ylabel=stat, title=f"gender nets: {stat}")

# %%
dom_rank = {}
for k, t in occupancy.items():
    nn_imp = t[t.stat == "nearest impostor"].set_index("group")
    dom = DOMINANT if k.startswith("gender") else "light"
    others = nn_imp.drop(dom)
    clear = (nn_imp.loc[dom, "low"] > others["high"]).sum()
    dom_rank[k] = f"{dom} nearest-impostor distance {nn_imp.loc[dom, 'estimate']:.3f}; above the interval of " \
                  f"{clear}/{len(others)} other groups"
    print(f"{k:36s} {dom_rank[k]}")
link = pd.DataFrame([{"model": k, "group": g,
                      "nearest impostor": occupancy[f"verification net, {k}"].set_index(["group", "stat"]).loc[
                          (g, "nearest impostor"), "estimate"],
                      "FMR at the global threshold": ver_tables[(k, "global threshold")].loc[g, "FMR"]}
                     for k in ver_scores for g in sorted(set(tone_test))])
rho = link["nearest impostor"].corr(link["FMR at the global threshold"], method="spearman")
print(f"verification nets: Spearman correlation between a group's nearest-impostor distance and its FMR at the "
      f"global threshold, over {len(link)} (network, group) pairs: {rho:+.2f}")
assert set(occ["stat"]) == set(Fa.OCCUPANCY_STATS)
assert (occ["low"] <= occ["high"]).all()

# %% [markdown]
# If crowding explains false matches, groups with a *smaller* nearest-impostor
# distance should have a *higher* FMR at one global threshold: a negative
# correlation above. Eight points make this a hint, not a test.
#
# A UMAP map of the same validation embeddings, one colour per group. UMAP
# keeps neighbourhoods, not distances or densities, so read it for
# *structure* (do groups separate? does one spread out?) and take the
# numbers from the table above. (The first UMAP call compiles code with
# numba, which is cached in the course cache directory.)

# %%
t0 = time.perf_counter()
fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
with torch.no_grad():
    for ax, kind in zip(axes, ("skewed", "balanced")):
        xy = Fa.umap_2d(nets[(kind, 0)].embed(X_va.to(device)).cpu().numpy(), n_neighbors=15, seed=0)
        plot_embedding_groups(xy, group_va, ax=ax, order=GROUPS, title=f"gender net trained on the {kind} set")
print(f"UMAP: {time.perf_counter() - t0:.0f} s")

# %% [markdown]
# ### The transfer-learning consequence: a linear probe on a skew-trained backbone
#
# A backbone is often reused for another task with a **linear probe** (a
# logistic regression on frozen embeddings, notebook 03). Whatever the
# backbone did not learn for a group, the probe cannot recover. We freeze the
# two gender networks and train a probe for a *new* task, coarse age
# (3 groups), on the balanced calibration images, then assess it per group
# on the validation set.

# %%
probe_preds = {}
with torch.no_grad():
    for kind in ("skewed", "balanced"):
        net = nets[(kind, 0)]
        f_cal, f_va = net.embed(X_tr[calib].to(device)).cpu().numpy(), net.embed(X_va.to(device)).cpu().numpy()
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
        probe.fit(f_cal, age_tr[calib])
        probe_preds[f"{kind} backbone"] = probe.predict(f_va)
age_codes = {a: i for i, a in enumerate(sorted(set(age_va)))}
probe_boot = Fa.bootstrap_group_metrics(np.vectorize(age_codes.get)(age_va),
                                        {k: np.vectorize(age_codes.get)(v) for k, v in probe_preds.items()},
                                        group_va, metrics=[Fa.ACCURACY], n_boot=N_BOOT, order=GROUPS,
                                        contrasts=[("skewed backbone", "balanced backbone")])
majority_age = pd.Series(age_va).value_counts(normalize=True).max()
print(f"age probe on {len(calib)} calibration images; majority-class accuracy {majority_age:.3f}")
probe_boot.assign(interval=probe_boot.apply(lambda r: f"{r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]", axis=1)) \
    .pivot(index="group", columns="model", values="interval").loc[[*GROUPS, "difference", "ratio"]]

# %%
pc = probe_boot[probe_boot.model == "skewed backbone - balanced backbone"].set_index("group")
n_lower = int((pc.loc[GROUPS, "high"] < 0).sum())
n_higher = int((pc.loc[GROUPS, "low"] > 0).sum())
print(f"probe on the skew-trained backbone: clearly lower for {n_lower}, clearly higher for {n_higher}, "
      f"no clear difference for {len(GROUPS) - n_lower - n_higher} of {len(GROUPS)} groups")
assert all(0 <= v <= 1 for v in probe_boot.loc[probe_boot.model.str.endswith("backbone") &
                                               ~probe_boot.model.str.contains(" - "), "estimate"])

# %% [markdown]
# ## 6. Mitigation and its trade-offs
#
# ### Rebalanced sampling
#
# When only the skewed data exist, the cheapest mitigation is to **draw**
# every group equally often during training (`balanced_sampler`; reweighting
# the loss by `group_balancing_weights` is the same idea in expectation). It
# adds no information: the few images of a small group are simply repeated,
# which can also mean over-fitting to them.

# %%
t0 = time.perf_counter()
for s in range(SEEDS):
    idx = sets[s]["skewed"]
    nets[("skewed, rebalanced sampling", s)] = train_net(
        idx, s, sampler=Fa.balanced_sampler(group_tr[idx], num_samples=len(idx), seed=s))
    pred_va[("skewed, rebalanced sampling", s)] = (positive_score(nets[("skewed, rebalanced sampling", s)], X_va)
                                                    >= 0.5).astype(int)
print(f"{SEEDS} rebalanced runs in {time.perf_counter() - t0:.0f} s; weights of the skewed set per group:",
      pd.Series(Fa.group_balancing_weights(group_tr[sets[0]["skewed"]])).groupby(
          group_tr[sets[0]["skewed"]]).first().round(2).to_dict())

# %% [markdown]
# ### Per-group thresholds with fairlearn's `ThresholdOptimizer`
#
# Post-processing leaves the network alone and picks, for every group, a
# threshold on its score (randomised between two thresholds where needed) so
# that a constraint holds — here **equalized odds**: equal true and false
# positive rates across groups — while accuracy is as high as possible. It is
# fitted on the **calibration** images, never on the validation set.
# `ScoreClassifier` wraps the skew-trained network's precomputed scores as a
# fitted scikit-learn classifier (`prefit=True`). Its costs: the group label
# must be known *at prediction time*, which is often unavailable, unreliable
# or not allowed to be used; predictions become randomised; and equalising
# error rates can lower them for no group and raise them for some.

# %%
score_cal = positive_score(nets[("skewed", 0)], X_tr[calib])
optimizer = ThresholdOptimizer(estimator=Fa.ScoreClassifier().fit(), constraints="equalized_odds",
                               objective="accuracy_score", prefit=True, predict_method="predict_proba")
optimizer.fit(score_cal[:, None], y_tr[calib], sensitive_features=group_tr[calib])
pred_va[("skewed, ThresholdOptimizer", 0)] = optimizer.predict(scores_va[("skewed", 0)][:, None],
                                                                sensitive_features=group_va, random_state=0)
compared = {k: pred_va[(k, 0)] for k in ("balanced", "skewed", "skewed, rebalanced sampling",
                                         "skewed, ThresholdOptimizer")}
mit = Fa.bootstrap_group_metrics(y_va, compared, group_va, n_boot=N_BOOT, order=GROUPS,
                                 contrasts=[("skewed, rebalanced sampling", "skewed"),
                                            ("skewed, ThresholdOptimizer", "skewed")])
summary = []
for k in compared:
    mf = Fa.group_metric_frame(y_va, compared[k], group_va)
    row = {"model (seed 0)": k, "overall accuracy": mf.overall["accuracy"],
           "worst-group accuracy": mf.by_group["accuracy"].min()}
    for m in ("accuracy", "false positive rate", "false negative rate"):
        r = mit[(mit.model == k) & (mit.metric == m) & (mit.group == "difference")].iloc[0]
        row[f"{m} difference"] = f"{r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]"
    summary.append(row)
pd.DataFrame(summary).set_index("model (seed 0)").round(3)

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), layout="constrained")
for ax, m in zip(axes, ("false positive rate", "false negative rate")):
    plot_group_intervals(mit[(mit.metric == m) & mit.group.isin(GROUPS) & ~mit.model.str.contains(" - ")],
                         ax=ax, groups=GROUPS, ylabel=m, title=f"{m} (positive = {POSITIVE})")
reb = pd.DataFrame([{
    "seed": s, "training": k,
    "overall": Fa.group_metric_frame(y_va, pred_va[(k, s)], group_va, metrics=[Fa.ACCURACY]).overall.iloc[0],
    "difference": Fa.group_metric_frame(y_va, pred_va[(k, s)], group_va, metrics=[Fa.ACCURACY]).difference().iloc[0]}
    for s in range(SEEDS) for k in ("skewed", "skewed, rebalanced sampling", "balanced")])
reb.pivot(index="seed", columns="training", values=["overall", "difference"]).round(3)

# %%
for k in ("skewed, rebalanced sampling", "skewed, ThresholdOptimizer"):
    c = mit[(mit.model == f"{k} - skewed") & (mit.metric == "accuracy")].set_index("group")
    ov_before = Fa.ACCURACY(y_va, compared["skewed"])
    ov_after = Fa.ACCURACY(y_va, compared[k])
    d = c.loc["difference"]
    print(f"{k}: overall accuracy {ov_before:.3f} -> {ov_after:.3f}; between-group accuracy difference changes by "
          f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}] "
          f"({'interval excludes 0' if d.low > 0 or d.high < 0 else 'interval includes 0: no clear change'})")
assert set(np.unique(pred_va[("skewed, ThresholdOptimizer", 0)])) <= {0, 1}
assert len(mit) > 0 and mit["estimate"].notna().any()

# %% [markdown]
# **The trade-offs, in general and here.** Rebalanced sampling changes what
# the network sees, not what exists: it cannot add faces of a group that the
# data lack, and on tiny groups it can over-fit. Post-processing with per-group
# thresholds can equalise chosen error rates on the calibration set, but the
# equality holds only approximately on new data (the calibration set here has
# a few dozen images per group), the overall accuracy may drop, and it needs
# the group label at decision time. In verification (section 4), per-group
# thresholds equalised FMR by construction and moved the differences into
# FNMR. The only mitigation that adds information is **better data** —
# more, and more varied, faces of the groups a model serves badly — which is
# what FairFace was built for. Whether any of these changes is an
# improvement depends on which error matters in the application: a false
# match that unlocks a phone or names the wrong suspect is not the same as a
# false non-match that makes someone try again.

# %% [markdown]
# ## 7. Exercises
#
# Each exercise has a cell for your code (between the `BEGIN/END SOLUTION`
# markers in the instructor's copy; a `NotImplementedError` in yours) and a
# self-check cell with `assert`s that compares your code with the package's
# or with fairlearn. They use only what the notebook imported at the top.
#
# ### Exercise 1 (1 point): composition shares
#
# Write `composition_shares(frame, column)` returning a `pd.Series` of the
# share of each value of `column` (index = the values, sorted; values sum to 1).

# %% tags=["solution"] exercise="composition_shares"
def composition_shares(frame: pd.DataFrame, column: str) -> pd.Series:
    ### BEGIN SOLUTION
    # Hint: frame[column].value_counts(normalize=True) gives the shares; sort the index.
    return frame[column].value_counts(normalize=True).sort_index()
    ### END SOLUTION


# %% tags=["check"] exercise="composition_shares" points=1
toy_frame = pd.DataFrame({"g": list("abbcccc"), "h": list("xxyyyyy")})
for col in ("g", "h"):
    mine = composition_shares(toy_frame, col)
    ref = Fa.composition_table(toy_frame, col)["share"]
    assert np.allclose(mine.loc[ref.index].to_numpy(), ref.to_numpy()), col
    assert np.isclose(mine.sum(), 1.0)
print("composition_shares agrees with fairness.composition_table")

# %% [markdown]
# ### Exercise 2 (2 points): accuracy gap between groups
#
# Write `accuracy_gap(y_true, y_pred, groups)` returning `(difference, ratio)`
# of the per-group accuracies: largest minus smallest, and smallest over
# largest. Do it with NumPy or pandas (no fairlearn); the check compares it
# with `MetricFrame`.

# %% tags=["solution"] exercise="accuracy_gap"
def accuracy_gap(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    ### BEGIN SOLUTION
    # Hint: pd.Series(y_true == y_pred).groupby(groups).mean() gives the per-group accuracies.
    per_group = pd.Series(np.asarray(y_true) == np.asarray(y_pred)).groupby(np.asarray(groups)).mean()
    return float(per_group.max() - per_group.min()), float(per_group.min() / per_group.max())
    ### END SOLUTION


# %% tags=["check"] exercise="accuracy_gap" points=2
rng_ex = np.random.default_rng(0)
g_ex = rng_ex.choice(["p", "q", "r"], 500)
y_ex = rng_ex.integers(0, 2, 500)
p_ex = np.where(rng_ex.random(500) < np.where(g_ex == "p", 0.9, 0.7), y_ex, 1 - y_ex)
mf_ex = MetricFrame(metrics=Fa.ACCURACY, y_true=y_ex, y_pred=p_ex, sensitive_features=g_ex)
diff_ex, ratio_ex = accuracy_gap(y_ex, p_ex, g_ex)
assert np.isclose(diff_ex, mf_ex.difference()) and np.isclose(ratio_ex, mf_ex.ratio())
assert accuracy_gap(y_ex, y_ex, g_ex) == (0.0, 1.0)
print("accuracy_gap agrees with MetricFrame.difference() and .ratio()")

# %% [markdown]
# ### Exercise 3 (2 points): a bootstrap interval
#
# Write `bootstrap_accuracy_interval(correct, n_boot, seed)` for a boolean
# array `correct` (one entry per image of one group): draw `n_boot` resamples
# of the same size **with replacement**, compute the accuracy of each, and
# return the 2.5 % and 97.5 % quantiles `(low, high)`.

# %% tags=["solution"] exercise="bootstrap_interval"
def bootstrap_accuracy_interval(correct: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    ### BEGIN SOLUTION
    # Hint: idx = rng.integers(0, n, size=(n_boot, n)); correct[idx].mean(1) are the resampled accuracies.
    rng = np.random.default_rng(seed)
    c = np.asarray(correct, dtype=float)
    accs = c[rng.integers(0, c.size, size=(n_boot, c.size))].mean(axis=1)
    return float(np.quantile(accs, 0.025)), float(np.quantile(accs, 0.975))
    ### END SOLUTION


# %% tags=["check"] exercise="bootstrap_interval" points=2
correct_ex = np.random.default_rng(1).random(150) < 0.7
low_ex, high_ex = bootstrap_accuracy_interval(correct_ex, 4000, 0)
ref_ex = Fa.bootstrap_group_metrics(correct_ex.astype(int), np.ones(150, dtype=int), np.zeros(150),
                                    metrics=[Fa.ACCURACY], n_boot=4000, seed=3).iloc[0]
assert low_ex < correct_ex.mean() < high_ex
assert abs(low_ex - ref_ex.low) < 0.02 and abs(high_ex - ref_ex.high) < 0.02, (low_ex, high_ex, ref_ex)
wide_low, wide_high = bootstrap_accuracy_interval(correct_ex[:30], 4000, 0)
assert wide_high - wide_low > 1.5 * (high_ex - low_ex), "fewer images must give a wider interval"
print(f"your interval [{low_ex:.3f}, {high_ex:.3f}]; the package's [{ref_ex.low:.3f}, {ref_ex.high:.3f}]")

# %% [markdown]
# ### Exercise 4 (2 points): FMR and FNMR per group
#
# Write `rates_by_group(scores, same, groups, threshold)` returning a
# DataFrame indexed by group with columns `FMR` (impostor pairs with
# `score >= threshold`, as a share of impostor pairs) and `FNMR` (genuine
# pairs with `score < threshold`, as a share of genuine pairs).

# %% tags=["solution"] exercise="rates_by_group"
def rates_by_group(scores: np.ndarray, same: np.ndarray, groups: np.ndarray, threshold: float) -> pd.DataFrame:
    ### BEGIN SOLUTION
    # Hint: for each group g, m = groups == g; FMR = mean(scores[m & ~same] >= threshold).
    rows = {}
    for g in sorted(set(groups)):
        m = groups == g
        rows[g] = {"FMR": float(np.mean(scores[m & ~same] >= threshold)),
                   "FNMR": float(np.mean(scores[m & same] < threshold))}
    return pd.DataFrame(rows).T
    ### END SOLUTION


# %% tags=["check"] exercise="rates_by_group" points=2
rng_ex = np.random.default_rng(2)
same_ex = rng_ex.random(3000) < 0.3
grp_ex = rng_ex.choice(["u", "v", "w"], 3000)
sc_ex = np.where(same_ex, rng_ex.normal(1.5, 1, 3000), rng_ex.normal(np.where(grp_ex == "w", 0.5, 0), 1, 3000))
for t_ex in (0.5, 1.0, 2.0):
    mine = rates_by_group(sc_ex, same_ex, grp_ex, t_ex)
    ref = Fa.verification_by_group(sc_ex, same_ex, grp_ex, t_ex)
    assert np.allclose(mine.loc[ref.index, ["FMR", "FNMR"]].to_numpy(float), ref[["FMR", "FNMR"]].to_numpy()), t_ex
print("rates_by_group agrees with fairness.verification_by_group (MetricFrame on pairs)")

# %% [markdown]
# ### Exercise 5 (2 points): a threshold for a target FMR
#
# Write `threshold_for_fmr(impostor_scores, fmr)`: the **lowest** threshold
# `t` such that the share of impostor scores `>= t` is at most `fmr`. Hint
# from the docstring of `Fa.threshold_at_fmr`: sort the scores from the
# highest and look at the `floor(fmr * n)`-th one.

# %% tags=["solution"] exercise="threshold_for_fmr"
def threshold_for_fmr(impostor_scores: np.ndarray, fmr: float) -> float:
    ### BEGIN SOLUTION
    # Hint: sort the scores from the highest; at most floor(fmr * n) of them may be >= t, and np.nextafter helps.
    s = np.sort(np.asarray(impostor_scores, dtype=float))[::-1]
    k = int(np.floor(fmr * s.size + 1e-9))
    return float(np.nextafter(s[k], np.inf))
    ### END SOLUTION


# %% tags=["check"] exercise="threshold_for_fmr" points=2
imp_ex = np.round(np.random.default_rng(3).normal(size=1000), 2)  # with ties
for f_ex in (0.001, 0.01, 0.1, 0.3):
    t_ex = threshold_for_fmr(imp_ex, f_ex)
    assert np.mean(imp_ex >= t_ex) <= f_ex, f_ex
    ref = Fa.threshold_at_fmr(imp_ex, np.zeros(1000, dtype=bool), f_ex)
    assert np.mean(imp_ex >= t_ex) == np.mean(imp_ex >= ref), "not the lowest such threshold"
print("threshold_for_fmr agrees with fairness.threshold_at_fmr")

# %% [markdown]
# ### Exercise 6 (1 point): group-balancing weights
#
# Write `balancing_weights(groups)`: one weight per sample, `N / (G * n_g)`
# for a sample of group `g` (`N` samples, `G` groups, `n_g` in group `g`), so
# that every group has the same total weight and the mean weight is 1.

# %% tags=["solution"] exercise="balancing_weights"
def balancing_weights(groups: np.ndarray) -> np.ndarray:
    ### BEGIN SOLUTION
    # Hint: counts = pd.Series(groups).value_counts(); map each sample to its group's count.
    counts = pd.Series(groups).value_counts()
    n_g = pd.Series(groups).map(counts).to_numpy(dtype=float)
    return len(groups) / (len(counts) * n_g)
    ### END SOLUTION


# %% tags=["check"] exercise="balancing_weights" points=1
g_ex = np.array(["a"] * 70 + ["b"] * 20 + ["c"] * 10)
w_ex = balancing_weights(g_ex)
assert np.allclose(w_ex, Fa.group_balancing_weights(g_ex))
assert np.isclose(w_ex.mean(), 1.0) and np.allclose(pd.Series(w_ex).groupby(g_ex).sum(), 100 / 3)
print("balancing_weights agrees with fairness.group_balancing_weights")

# %% [markdown]
# ## What next
#
# - Run the notebook in full mode (`COURSE_FAST=0`): more seeds and epochs
#   narrow the seed-to-seed spread of section 3.
# - Change `DOMINANT_SHARE`, or make another group dominant, and see whether
#   the per-group contrasts move.
# - With a real identity data set that carries group labels, feed its
#   embeddings, identities and groups into section 4's cells.
# - Read the FairFace paper and NISTIR 8280 themselves: both describe their
#   limits in detail.

# %%
torch.set_num_threads(default_threads)
print(f"data: {DATA_NAME}; notebook finished in {time.perf_counter() - notebook_start:.0f} s; "
      f"CPU threads restored to {default_threads}")
