"""SynthFaces: procedural face-like images, so face notebooks run with no data.

An identity is a parameter vector (face shape, skin tone, eye spacing, size,
shape and colour, brows, nose, mouth, hair colour, length and hairline,
beard, a mole, ears). Every image of an identity adds nuisance variation:
pose (in-plane rotation, yaw, pitch), scale, translation, lighting direction
and strength, exposure and colour cast, expression (smile, open mouth,
blinks), background, noise and occluders (glasses, sunglasses, hats, a
blob in front of the lower face).

Each identity carries demographic-like attributes whose proportions are set
in :class:`SynthFacesConfig`, so that imbalance can be built in on purpose:

* ``skin_tone``: ``light``, ``medium_light``, ``medium_dark``, ``dark``
  (the skin colour; darker tones also lower the contrast of brows and eyes,
  as in real photographs);
* ``presentation``: ``feminine``, ``masculine`` (hair length, brows, beard,
  jaw);
* ``age_group``: ``young``, ``middle``, ``older`` (grey hair, forehead lines,
  receding hairline).

Rendering is vectorised with PyTorch over chunks of images (soft-edged
ellipses and curves composited in face coordinates), deterministic for a
given config, RGB, 32 to 128 pixels.

Example:
    >>> ds = make_synthfaces(SynthFacesConfig(n_identities=20, images_per_identity=10))
    >>> image, identity = ds[0]          # (3, 64, 64) float in [0, 1], int
    >>> ds.attributes["skin_tone"].value_counts()
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from course_utils.data.cache import TensorImageDataset

__all__ = [
    "SKIN_TONES",
    "PRESENTATIONS",
    "AGE_GROUPS",
    "SynthFacesConfig",
    "make_synthfaces",
    "render_synthfaces",
    "sample_identities",
]

SKIN_TONES: tuple[str, ...] = ("light", "medium_light", "medium_dark", "dark")
PRESENTATIONS: tuple[str, ...] = ("feminine", "masculine")
AGE_GROUPS: tuple[str, ...] = ("young", "middle", "older")

# Base skin colours (linear-ish RGB in [0, 1]) of the tone groups, lightest first.
_SKIN_BASE = np.array(
    [[0.93, 0.78, 0.67], [0.80, 0.60, 0.46], [0.58, 0.40, 0.29], [0.38, 0.25, 0.18]], dtype=np.float32
)
_HAIR = np.array(
    [[0.06, 0.05, 0.05], [0.20, 0.13, 0.08], [0.36, 0.24, 0.14], [0.50, 0.25, 0.12], [0.80, 0.66, 0.42],
     [0.62, 0.32, 0.16]],
    dtype=np.float32,
)
_HAIR_P = np.array([0.32, 0.26, 0.18, 0.08, 0.11, 0.05])
_IRIS = np.array(
    [[0.18, 0.10, 0.06], [0.33, 0.20, 0.10], [0.42, 0.36, 0.18], [0.25, 0.42, 0.28], [0.25, 0.42, 0.65],
     [0.45, 0.50, 0.55]],
    dtype=np.float32,
)
_IRIS_P = np.array([0.35, 0.25, 0.12, 0.08, 0.12, 0.08])
_CHUNK = 64  # fixed so that the output never depends on how work is split


@dataclass(frozen=True)
class SynthFacesConfig:
    """What to generate.

    Attributes:
        n_identities: number of distinct people.
        images_per_identity: images of each person.
        image_size: side of the square RGB images, 32 to 128.
        skin_tone_proportions: shares of :data:`SKIN_TONES` (normalised; exact
            counts by largest remainder, so ``(0.7, 0.1, 0.1, 0.1)`` gives
            exactly 70 % light-skinned identities).
        presentation_proportions: shares of :data:`PRESENTATIONS`.
        age_proportions: shares of :data:`AGE_GROUPS`.
        nuisance: scale of the per-image variation (0 = every image of an
            identity identical up to noise; 1 = default; 1.5 = hard).
        noise_std: standard deviation of the pixel noise (on ``[0, 1]``).
        glasses_prob: probability that an image shows glasses (a quarter of
            them sunglasses).
        hat_prob: probability of a hat hiding the hair.
        occluder_prob: probability of a blob in front of the lower face.
        seed: everything is a deterministic function of the config.
    """

    n_identities: int = 100
    images_per_identity: int = 20
    image_size: int = 64
    skin_tone_proportions: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    presentation_proportions: tuple[float, ...] = (0.5, 0.5)
    age_proportions: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)
    nuisance: float = 1.0
    noise_std: float = 0.025
    glasses_prob: float = 0.15
    hat_prob: float = 0.08
    occluder_prob: float = 0.08
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_identities < 1 or self.images_per_identity < 1:
            raise ValueError("n_identities and images_per_identity must be >= 1.")
        if not 32 <= self.image_size <= 128:
            raise ValueError(f"image_size={self.image_size}: SynthFaces renders 32 to 128 pixels.")
        for name, props, names in (
            ("skin_tone_proportions", self.skin_tone_proportions, SKIN_TONES),
            ("presentation_proportions", self.presentation_proportions, PRESENTATIONS),
            ("age_proportions", self.age_proportions, AGE_GROUPS),
        ):
            p = np.asarray(props, dtype=float)
            if p.shape != (len(names),) or (p < 0).any() or p.sum() <= 0:
                raise ValueError(f"{name} needs {len(names)} non-negative shares for {names}; got {props}.")
        if self.nuisance < 0 or self.noise_std < 0:
            raise ValueError("nuisance and noise_std must be >= 0.")
        for name in ("glasses_prob", "hat_prob", "occluder_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1].")

    @property
    def n_images(self) -> int:
        return self.n_identities * self.images_per_identity


def _quota(n: int, proportions: Sequence[float]) -> np.ndarray:
    """Exact counts per group summing to ``n`` (largest-remainder rounding)."""
    p = np.asarray(proportions, dtype=float)
    p = p / p.sum()
    raw = p * n
    counts = np.floor(raw).astype(int)
    rest = n - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    return counts


def _assign(n: int, proportions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    counts = _quota(n, proportions)
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def sample_identities(config: SynthFacesConfig) -> dict[str, np.ndarray]:
    """The identity parameters: a dict of arrays with ``n_identities`` rows.

    Group codes are in ``skin_tone``, ``presentation`` and ``age_group``
    (indices into :data:`SKIN_TONES`, ...); colours are ``(n, 3)`` arrays.
    """
    n = config.n_identities
    rng = np.random.default_rng([config.seed, 1])
    tone = _assign(n, config.skin_tone_proportions, rng)
    pres = _assign(n, config.presentation_proportions, rng)
    age = _assign(n, config.age_proportions, rng)
    masc = (pres == 1).astype(np.float32)
    older = (age == 2).astype(np.float32)
    u = lambda lo, hi: rng.uniform(lo, hi, n).astype(np.float32)  # noqa: E731

    skin = _SKIN_BASE[tone] * rng.uniform(0.92, 1.08, (n, 1)) + rng.normal(0, 0.02, (n, 3))
    hair = _HAIR[rng.choice(len(_HAIR), n, p=_HAIR_P)] * rng.uniform(0.85, 1.15, (n, 1))
    grey = np.where(age == 2, rng.uniform(0.4, 0.9, n), np.where(age == 1, rng.uniform(0.0, 0.3, n), 0.0))
    hair = hair * (1 - grey[:, None]) + 0.72 * grey[:, None]
    eye_rx = u(0.065, 0.105)
    params = {
        "skin_tone": tone,
        "presentation": pres,
        "age_group": age,
        "skin": np.clip(skin, 0.05, 1.0).astype(np.float32),
        "hair": np.clip(hair, 0.0, 1.0).astype(np.float32),
        "iris": _IRIS[rng.choice(len(_IRIS), n, p=_IRIS_P)],
        "face_rx": u(0.47, 0.60) + 0.03 * masc,
        "face_ry": u(0.62, 0.76) + 0.02 * older,
        "jaw": u(0.05, 0.35) + 0.12 * (1 - masc),
        "eye_dx": u(0.17, 0.27),
        "eye_y": u(-0.16, -0.04),
        "eye_rx": eye_rx,
        "eye_ry": eye_rx * u(0.38, 0.62),
        "eye_tilt": u(-0.28, 0.28),
        "iris_r": u(0.030, 0.042),
        "brow_dy": u(0.075, 0.13),
        "brow_rx": eye_rx * u(1.1, 1.6),
        "brow_ry": u(0.012, 0.026) + 0.010 * masc,
        "brow_angle": u(-0.35, 0.35),
        "nose_len": u(0.12, 0.24),
        "nose_rx": u(0.040, 0.080),
        "mouth_y": u(0.27, 0.40),
        "mouth_rx": u(0.10, 0.19),
        "lip_ry": u(0.014, 0.032) + 0.008 * (1 - masc),
        "mouth_curv": u(-0.5, 0.5),
        "hair_len": np.where(masc > 0, u(0.0, 0.35), u(0.3, 1.0)).astype(np.float32),
        "hair_vol": u(0.02, 0.12),
        "hairline": u(0.45, 0.75) + older * masc * u(0.0, 0.25),
        "fringe": u(-0.5, 0.9),
        "beard": (masc * (rng.random(n) < 0.4) * u(0.35, 0.85)).astype(np.float32),
        "mole": (rng.random(n) < 0.35).astype(np.float32),
        "mole_x": u(-0.32, 0.32),
        "mole_y": u(-0.25, 0.30),
        "mole_r": u(0.016, 0.03),
        "ear_ry": u(0.08, 0.14),
        "wrinkles": np.choose(age, [0.0, 0.03, 0.08]).astype(np.float32) * u(0.6, 1.4),
    }
    return params


def _sample_nuisance(config: SynthFacesConfig, n_images: int, skin: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([config.seed, 2])
    nu = float(config.nuisance)
    n = n_images
    u = lambda lo, hi: rng.uniform(lo, hi, n).astype(np.float32)  # noqa: E731
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    angle = u(0, 2 * math.pi)
    bg = rng.uniform(0.05, 0.95, (n, 3)) * rng.uniform(0.3, 1.0, (n, 1))
    bg = 0.45 + min(nu, 1.0) * (bg - 0.45)  # nuisance 0: a plain grey background
    glasses = rng.random(n) < config.glasses_prob
    occ_colour = np.where(rng.random((n, 1)) < 0.5, skin * rng.uniform(0.8, 1.1, (n, 1)), rng.random((n, 3)))
    return {
        "rot": f32(np.clip(rng.normal(0, 0.10 * nu, n), -0.35, 0.35)),
        "scale": f32(np.exp(np.clip(rng.normal(0, 0.07 * nu, n), -0.2, 0.2))),
        "tx": f32(np.clip(rng.normal(0, 0.05 * nu, n), -0.15, 0.15)),
        "ty": f32(np.clip(rng.normal(0, 0.05 * nu, n), -0.15, 0.15)),
        "yaw": u(-0.3, 0.3) * nu,
        "pitch": u(-0.15, 0.15) * nu,
        "smile": u(-0.3, 1.0) * nu,
        "mouth_open": f32(rng.random(n) ** 3 * 0.035 * nu),
        "eye_open": f32(np.where(rng.random(n) < 0.05 * nu, 0.15, 1 - 0.35 * nu * rng.random(n) ** 2).clip(0.1, 1)),
        "gaze": u(-0.4, 0.4) * nu,
        "brow_raise": f32(rng.normal(0, 0.012 * nu, n)),
        "light_x": f32(np.cos(angle)),
        "light_y": f32(np.sin(angle)),
        "light": u(0.05, 0.6) * nu,
        "exposure": f32(np.exp(rng.normal(0, 0.15 * nu, n))),
        "cast": f32(1 + rng.normal(0, 0.04 * nu, (n, 3))),
        "bg": f32(bg),
        "bg_gx": u(-0.2, 0.2) * min(nu, 1.0),
        "bg_gy": u(-0.2, 0.2) * min(nu, 1.0),
        "hair_jitter": f32(rng.normal(0, 0.015 * nu, n)),
        "glasses": glasses,
        "sunglasses": glasses & (rng.random(n) < 0.25),
        "lens_r": u(0.085, 0.125),
        "frame": f32(rng.uniform(0.0, 0.35, (n, 1)) * np.ones((1, 3))),
        "hat": rng.random(n) < config.hat_prob,
        "hat_y": u(-0.55, -0.35),
        "hat_colour": f32(rng.random((n, 3))),
        "occluder": rng.random(n) < config.occluder_prob,
        "occ_x": u(-0.35, 0.35),
        "occ_y": u(0.15, 0.6),
        "occ_rx": u(0.15, 0.35),
        "occ_ry": u(0.10, 0.25),
        "occ_colour": f32(occ_colour),
        "noise": u(0.5, 1.5) * config.noise_std,
    }


# ----------------------------------------------------------------------- rendering
def _ramp(signed: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage from a signed distance (positive inside)."""
    return signed.mul_(1.0 / px).add_(0.5).clamp_(0.0, 1.0)


def _ellipse(dx: torch.Tensor, dy: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Coverage of the ellipse ``(dx/rx)^2 + (dy/ry)^2 <= 1`` (approximate signed distance)."""
    d2 = (dx * (1.0 / rx)).square_()
    b = dy * (1.0 / ry)
    d2.addcmul_(b, b)
    c = torch.sqrt(rx * ry) * 0.5 / px  # signed distance ~ (1 - d2) * sqrt(rx * ry) / 2
    return d2.mul_(-c).add_(c + 0.5).clamp_(0.0, 1.0)


def _rotated(dx: torch.Tensor, dy: torch.Tensor, angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c, s = torch.cos(angle), torch.sin(angle)
    return dx * c + dy * s, dy * c - dx * s


def _paint(img: torch.Tensor, colour: torch.Tensor, mask: torch.Tensor) -> None:
    """In place: ``img = img + mask * (colour - img)``; colour ``(B, 3)``, mask ``(B, H, W)``."""
    img.lerp_(colour[:, :, None, None].expand_as(img), mask.unsqueeze(1))


def _paint_subset(
    img: torch.Tensor, flag: torch.Tensor, draw: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Paint only the images where ``flag`` is true; ``draw(idx)`` returns (colour, mask)."""
    idx = torch.nonzero(flag).squeeze(1)
    if idx.numel() == 0:
        return
    colour, mask = draw(idx)
    sub = img[idx]
    _paint(sub, colour, mask)
    img[idx] = sub


def _render_chunk(p: dict[str, torch.Tensor], size: int, generator: torch.Generator) -> torch.Tensor:
    """Render one chunk; every entry of ``p`` has a leading batch dimension ``B``."""
    b = p["rot"].shape[0]
    s = lambda k: p[k].view(b, 1, 1)  # noqa: E731 - per-image scalar, broadcastable over (H, W)
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    gu, gv = grid.view(1, 1, size), grid.view(1, size, 1)
    du = (gu - s("tx")) / s("scale")
    dv = (gv - s("ty")) / s("scale")
    x, y = _rotated(du, dv, s("rot"))  # face coordinates (B, H, W), y down
    px = (2.0 / size) / s("scale")  # one pixel in face units
    yaw, pitch = s("yaw"), s("pitch")

    img = p["bg"][:, :, None, None] + (p["bg_gx"][:, None, None, None] * gu + p["bg_gy"][:, None, None, None] * gv)
    img = img.expand(b, 3, size, size).clone()
    skin, hair = p["skin"], p["hair"]
    face_rx, face_ry = s("face_rx") * (1 - 0.12 * yaw.abs()), s("face_ry")
    face_x = 0.05 * yaw

    # hair behind the head (long hair reaches below the jaw)
    vol = s("hair_vol") + s("hair_jitter")
    hair_ry = face_ry * (0.95 + 0.55 * s("hair_len")) + vol
    hair_cy = hair_ry - face_ry - vol
    hair_rx = face_rx + vol + 0.03
    hair_mask = _ellipse(x - face_x, y - hair_cy, hair_rx, hair_ry, px)
    _paint(img, hair * 0.85, hair_mask.clone())
    # neck
    neck = _ramp(0.55 * face_rx - (x - face_x).abs(), px) * _ramp(y - 0.4 * face_ry, px)
    _paint(img, skin * 0.78, neck)
    # ears
    ear_y = s("eye_y") + 0.06 + 0.1 * pitch
    for side in (-1.0, 1.0):
        ear = _ellipse(x - (side * face_rx * 0.97 + face_x), y - ear_y, torch.full_like(face_rx, 0.055), s("ear_ry"), px)
        _paint(img, skin * 0.88, ear)
    # face: an ellipse that narrows towards the chin
    yn = (y / face_ry).clamp(0.0, 1.0).square_()
    rx_eff = face_rx * (1.0 - s("jaw") * yn)
    face = _ellipse(x - face_x, y, rx_eff, face_ry, px)
    _paint(img, skin, face)

    # beard and forehead lines (identity features, only where present)
    _paint_subset(
        img,
        p["beard"] > 0,
        lambda i: (
            hair[i] * 0.8 + skin[i] * 0.2,
            face[i]
            * ((y[i] - (p["mouth_y"][i].view(-1, 1, 1) - 0.17)) * (1 / 0.12)).clamp_(0.0, 1.0)  # soft upper edge
            * p["beard"][i].view(-1, 1, 1),
        ),
    )
    _paint_subset(
        img,
        p["wrinkles"] > 0,
        lambda i: (
            skin[i] * 0.55,
            face[i]
            * _ramp(p["eye_y"][i].view(-1, 1, 1) - 0.17 - y[i], px[i])
            * torch.sin(y[i] * 55.0).clamp_(min=0.0)
            * p["wrinkles"][i].view(-1, 1, 1)
            * 2.5,
        ),
    )
    _paint_subset(
        img,
        p["mole"] > 0,
        lambda i: (
            skin[i] * 0.35,
            _ellipse(
                x[i] - p["mole_x"][i].view(-1, 1, 1) - face_x[i],
                y[i] - p["mole_y"][i].view(-1, 1, 1),
                p["mole_r"][i].view(-1, 1, 1),
                p["mole_r"][i].view(-1, 1, 1),
                px[i],
            ),
        ),
    )

    # hair on top of the head: inside the hair ellipse and above the hairline
    hairline = -face_ry * s("hairline") + s("fringe") * (x - face_x).square() * 0.6
    _paint(img, hair, hair_mask * _ramp(hairline - y, px))

    # eyes, brows
    dark = (skin * 0.25).clamp(max=0.12)
    eye_y = s("eye_y") + 0.1 * pitch
    eye_ry = s("eye_ry") * s("eye_open")
    for side in (-1.0, 1.0):
        ex = side * s("eye_dx") + 0.22 * yaw
        dx, dy = _rotated(x - ex, y - eye_y, side * s("eye_tilt"))
        _paint(img, dark, _ellipse(dx, dy, s("eye_rx") * 1.12, eye_ry + 0.012, px) * 0.8)
        sclera = _ellipse(dx, dy, s("eye_rx"), eye_ry, px)
        _paint(img, torch.tensor([[0.93, 0.91, 0.88]]).expand(b, 3), sclera)
        gx = dx - s("gaze") * s("eye_rx") * 0.5
        iris_r = s("iris_r")
        _paint(img, p["iris"], _ellipse(gx, dy, iris_r, iris_r, px) * sclera)
        _paint(img, dark * 0.3, _ellipse(gx, dy, iris_r * 0.45, iris_r * 0.45, px) * sclera)
        bx, by = _rotated(x - ex, y - (eye_y - s("brow_dy") - s("brow_raise")), side * s("brow_angle"))
        by = by + 0.35 * s("brow_rx") * (bx / s("brow_rx")).square()  # arch
        _paint(img, hair * 0.6 + dark * 0.4, _ellipse(bx, by, s("brow_rx"), s("brow_ry"), px))

    # nose: a shadow on the side away from the light, and nostrils
    tip_y = eye_y + s("nose_len") + 0.06 + 0.05 * pitch
    nose_x = 0.4 * yaw
    shade_side = torch.where(s("light_x") >= 0, -1.0, 1.0)
    bridge = _ellipse(
        x - (nose_x + shade_side * s("nose_rx") * 0.6), y - (eye_y + tip_y) * 0.5, s("nose_rx") * 0.35, (tip_y - eye_y) * 0.5, px
    )
    _paint(img, skin * 0.72, bridge * 0.6)
    for side in (-1.0, 1.0):
        nostril = _ellipse(x - (nose_x + side * s("nose_rx") * 0.55), y - tip_y, s("nose_rx") * 0.4, s("nose_rx") * 0.22, px)
        _paint(img, skin * 0.4, nostril)

    # mouth: upper and lower lip around a curved centre line, dark gap when open
    mx = 0.3 * yaw
    t = (x - mx) / s("mouth_rx")
    t2 = t.square()
    curv = s("mouth_curv") - 1.2 * s("smile")
    centre = s("mouth_y") + 0.1 * pitch + 0.05 * curv * t2
    half_open = s("mouth_open") * 0.5
    dy = (y - centre - half_open).abs_()
    width = _ramp((1.0 - t2) * s("mouth_rx") * 0.5, px)
    lips = _ramp((s("lip_ry") * (1.0 - 0.6 * t2) + half_open) - dy, px) * width
    lip_colour = skin * torch.tensor([[0.78, 0.52, 0.52]]) + torch.tensor([[0.08, 0.0, 0.0]])
    _paint(img, lip_colour, lips)
    _paint_subset(
        img,
        p["mouth_open"] > 0.004,
        lambda i: (dark[i] * 0.5, _ramp(half_open[i] * (1.0 - t2[i]) - dy[i], px[i]) * width[i]),
    )

    # occluders: glasses, hats, a blob over the lower face
    def glasses(i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xi, yi, pxi, lens = x[i], y[i] - eye_y[i], px[i], p["lens_r"][i].view(-1, 1, 1)
        ring = torch.zeros_like(xi)
        tint = torch.zeros_like(xi)
        for side in (-1.0, 1.0):
            r = torch.sqrt((xi - side * p["eye_dx"][i].view(-1, 1, 1) - 0.22 * yaw[i]).square() + yi.square())
            ring = torch.maximum(ring, _ramp(0.012 - (r - lens).abs(), pxi))
            tint = torch.maximum(tint, _ramp(lens - r, pxi))
        bridge = _ramp(0.010 - yi.abs(), pxi) * _ramp(p["eye_dx"][i].view(-1, 1, 1) - (xi - 0.22 * yaw[i]).abs(), pxi)
        mask = torch.maximum(ring, bridge)
        sun = p["sunglasses"][i].view(-1, 1, 1).float()
        return p["frame"][i], torch.maximum(mask, tint * sun * 0.92)

    _paint_subset(img, p["glasses"], glasses)
    _paint_subset(
        img,
        p["hat"],
        lambda i: (
            p["hat_colour"][i],
            _ramp(
                -face_ry[i] * 0.2 + p["hat_y"][i].view(-1, 1, 1) - y[i] + 0.08 * (x[i] / face_rx[i]).square(), px[i]
            )
            * _ramp(face_rx[i] * 1.3 - (x[i] - face_x[i]).abs(), px[i]),
        ),
    )
    _paint_subset(
        img,
        p["occluder"],
        lambda i: (
            p["occ_colour"][i],
            _ellipse(
                x[i] - p["occ_x"][i].view(-1, 1, 1),
                y[i] - p["occ_y"][i].view(-1, 1, 1),
                p["occ_rx"][i].view(-1, 1, 1),
                p["occ_ry"][i].view(-1, 1, 1),
                px[i],
            ),
        ),
    )

    # lighting: a directional term on the head, weaker on the background; exposure, colour cast
    nx = ((x - face_x) / face_rx).clamp_(-1.2, 1.2)
    ny = (y / face_ry).clamp_(-1.2, 1.2)
    shade = (nx * s("light_x") + ny * s("light_y")).mul_(s("light")).add_(1.0).mul_(s("exposure"))
    img.mul_(shade.unsqueeze(1)).mul_(p["cast"][:, :, None, None])
    noise = torch.randn((b, 1, size, size), generator=generator).mul_(p["noise"].view(b, 1, 1, 1))
    img.add_(noise).clamp_(0.0, 1.0)
    return img.mul_(255.0).round_().to(torch.uint8)


def render_synthfaces(
    identity: dict[str, np.ndarray],
    nuisance: dict[str, np.ndarray],
    image_identity: np.ndarray,
    *,
    image_size: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """Render images from identity and per-image parameters.

    Args:
        identity: output of :func:`sample_identities` (``n_identities`` rows).
        nuisance: per-image parameters (``n_images`` rows).
        image_identity: ``(n_images,)`` identity index of each image.
        image_size: side in pixels.
        seed: seed of the pixel noise.

    Returns:
        ``uint8`` tensor ``(n_images, 3, image_size, image_size)``.
    """
    n = len(image_identity)
    out = torch.empty((n, 3, image_size, image_size), dtype=torch.uint8)
    keys_id = [k for k in identity if k not in ("skin_tone", "presentation", "age_group")]

    def render(chunk: int) -> None:
        torch.set_num_threads(1)  # per thread: chunks run in parallel instead (see below)
        sl = slice(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK))
        ids = image_identity[sl]
        p: dict[str, torch.Tensor] = {k: torch.from_numpy(np.ascontiguousarray(identity[k][ids])) for k in keys_id}
        p.update({k: torch.from_numpy(np.ascontiguousarray(v[sl])) for k, v in nuisance.items()})
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + chunk)
        with torch.no_grad():
            out[sl] = _render_chunk(p, image_size, gen)

    # Chunks of small tensors scale badly with intra-op threads (and collapse when the CPU is
    # shared), so each worker thread renders whole chunks single-threaded; PyTorch releases the
    # GIL inside its kernels. The result does not depend on the number of workers.
    n_chunks = -(-n // _CHUNK)
    previous = torch.get_num_threads()
    workers = max(1, min(previous, os.cpu_count() or 1, n_chunks, 8))
    try:
        if workers == 1:
            for chunk in range(n_chunks):
                render(chunk)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(render, range(n_chunks)))
    finally:
        torch.set_num_threads(previous)
    return out


def make_synthfaces(
    config: SynthFacesConfig | None = None,
    *,
    transform: Callable[[torch.Tensor], Any] | None = None,
    **overrides: Any,
) -> TensorImageDataset:
    """Generate a SynthFaces data set.

    Args:
        config: what to generate (default :class:`SynthFacesConfig`).
        transform: applied to each float image ``(3, S, S)`` on indexing.
        **overrides: fields replacing those of ``config``, e.g.
            ``make_synthfaces(n_identities=40, image_size=32)``.

    Returns:
        A :class:`TensorImageDataset` with images ``(N, 3, S, S)`` ordered by
        identity, ``targets`` the identity ids, ``classes`` ``"id000"``...,
        and ``attributes`` with the columns ``identity``, ``skin_tone``,
        ``presentation``, ``age_group`` (categorical) and the nuisances
        ``glasses``, ``sunglasses``, ``hat``, ``occluder``, ``yaw``, ``light``.
    """
    config = config or SynthFacesConfig()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    ident = sample_identities(config)
    image_identity = np.repeat(np.arange(config.n_identities), config.images_per_identity)
    nuis = _sample_nuisance(config, config.n_images, ident["skin"][image_identity])
    images = render_synthfaces(ident, nuis, image_identity, image_size=config.image_size, seed=config.seed)
    cat = lambda codes, names: pd.Categorical.from_codes(codes, categories=list(names))  # noqa: E731
    attributes = pd.DataFrame(
        {
            "identity": image_identity,
            "skin_tone": cat(ident["skin_tone"][image_identity], SKIN_TONES),
            "presentation": cat(ident["presentation"][image_identity], PRESENTATIONS),
            "age_group": cat(ident["age_group"][image_identity], AGE_GROUPS),
            "glasses": nuis["glasses"],
            "sunglasses": nuis["sunglasses"],
            "hat": nuis["hat"],
            "occluder": nuis["occluder"],
            "yaw": nuis["yaw"],
            "light": nuis["light"],
        }
    )
    width = max(3, len(str(config.n_identities - 1)))
    return TensorImageDataset(
        images,
        image_identity,
        classes=[f"id{i:0{width}d}" for i in range(config.n_identities)],
        attributes=attributes,
        group_columns=("skin_tone", "presentation", "age_group"),
        name="synthfaces",
        target_name="identity",
        transform=transform,
    )
