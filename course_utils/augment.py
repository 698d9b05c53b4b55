"""Batch augmentations: whole batches at once, in one indexing operation.

:func:`random_crop_flip` crops and mirrors a batch ``(N, C, H, W)``;
:class:`BatchAugment` is a ``collate_fn`` applying it (training loader only);
:func:`augment_faces` applies small similarity transforms, mirror flips and
brightness changes to a batch of faces (identity-preserving, for metric learning);
:class:`SimCLRAugment` is SimCLR's crop, flip, colour jitter and greying of a batch.

``fit(..., train_transform=augment)`` applies one to training batches only
(``functools.partial`` sets its arguments); :class:`BatchAugment` does it in
the training loader instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import default_collate

__all__ = ["random_crop_flip", "BatchAugment", "augment_faces", "SimCLRAugment"]


def random_crop_flip(x: Tensor, *, padding: int = 0, flip: bool = False,
                     generator: torch.Generator | None = None) -> Tensor:
    """Batched augmentation: a random crop of each zero-padded image, and a random horizontal flip.

    The same as ``torchvision.transforms.v2.RandomCrop(size, padding)`` and
    ``RandomHorizontalFlip()`` applied image by image, but done for the whole
    batch with one indexing operation (much faster on small images).

    Args:
        x: (N, C, H, W).
        padding: pixels of zeros added on each side before cropping back to
            (H, W): shifts of up to ``padding`` pixels in each direction.
        flip: mirror half of the images left-right (only where that keeps the
            class: cars and cats, not digits).
    """
    n, _, h, w = x.shape
    if padding:
        padded = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)).to(x.device)  # (N, H)
        cols = (dx[:, None] + torch.arange(w)).to(x.device)  # (N, W)
        idx = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


class BatchAugment:
    """A ``collate_fn`` that stacks a batch and applies :func:`random_crop_flip` to it.

    Use it for the training loader only:
    ``make_loader(train_set, shuffle=True, collate_fn=BatchAugment(padding=2, flip=True))``.
    """

    def __init__(self, *, padding: int = 0, flip: bool = False) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, batch: list) -> tuple[Tensor, Tensor]:
        images, targets = default_collate(batch)[:2]
        return random_crop_flip(images, padding=self.padding, flip=self.flip), targets

    def __repr__(self) -> str:
        return f"BatchAugment(padding={self.padding}, flip={self.flip})"


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


class SimCLRAugment(nn.Module):
    """SimCLR's augmentations on a whole batch, on its device (Chen et al., 2020).

    Each image gets its own random resized crop (area ``crop_scale`` of the
    image, aspect ratio in ``[3/4, 4/3]``), a horizontal flip with
    probability 1/2, colour jitter (brightness, contrast, saturation by up
    to ``jitter``), and is turned grey with probability ``grayscale_prob``.
    Inputs are ``(N, C, H, W)`` in ``[0, 1]``; outputs too.

    Args:
        crop_scale: range of the crop's share of the image area.
        flip: random horizontal flips.
        jitter: strength of the colour jitter (0 turns it off).
        grayscale_prob: probability of a grey image.
        generator: a CPU ``torch.Generator`` for reproducible draws.
    """

    def __init__(self, *, crop_scale: tuple[float, float] = (0.3, 1.0), flip: bool = True, jitter: float = 0.4,
                 grayscale_prob: float = 0.2, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}.")
        self.crop_scale, self.flip, self.jitter, self.grayscale_prob = crop_scale, flip, jitter, grayscale_prob
        self.generator = generator

    def _rand(self, n: int, device: torch.device) -> Tensor:
        return torch.rand(n, generator=self.generator).to(device)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> augmented ``(N, C, H, W)``."""
        n, c = x.shape[:2]
        dev = x.device
        lo, hi = self.crop_scale
        area = lo + (hi - lo) * self._rand(n, dev)
        log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * self._rand(n, dev)
        # keep the crop inside the image: aspect ratio within [area, 1 / area]
        log_area = torch.log(area)
        ratio = torch.exp(torch.maximum(torch.minimum(log_r, -log_area), log_area))
        sx = torch.sqrt(area * ratio).clamp(max=1.0)
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        tx = (2 * self._rand(n, dev) - 1) * (1 - sx)
        ty = (2 * self._rand(n, dev) - 1) * (1 - sy)
        if self.flip:
            sx = torch.where(self._rand(n, dev) < 0.5, -sx, sx)
        theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if self.jitter > 0:
            j = self.jitter
            shape = (n, 1, 1, 1)
            brightness = (1 - j + 2 * j * self._rand(n, dev)).view(shape)
            contrast = (1 - j + 2 * j * self._rand(n, dev)).view(shape)
            out = out * brightness
            mean = out.mean(dim=(1, 2, 3), keepdim=True)
            out = (out - mean) * contrast + mean
            if c == 3:
                saturation = (1 - j + 2 * j * self._rand(n, dev)).view(shape)
                grey = _luma(out)
                out = grey + (out - grey) * saturation
        if self.grayscale_prob > 0 and c == 3:
            to_grey = (self._rand(n, dev) < self.grayscale_prob).view(n, 1, 1, 1)
            out = torch.where(to_grey, _luma(out).expand_as(out), out)
        return out.clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return (f"crop_scale={self.crop_scale}, flip={self.flip}, jitter={self.jitter}, "
                f"grayscale_prob={self.grayscale_prob}")


def _luma(x: Tensor) -> Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
