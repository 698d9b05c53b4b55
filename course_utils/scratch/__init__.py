"""From-scratch reference versions of the CNN building blocks.

Each function here is written to be read next to its formula and is checked
against PyTorch in ``tests/test_scratch.py``; notebook 01 walks through them.
They are reference code: use ``torch.nn`` layers to train real networks.

Map (modules ``conv``, ``filters``, ``layers``, ``deep``; batch augmentation
lives in :mod:`course_utils.augment`):

- convolution: :func:`conv2d_loop` (explicit loops), :func:`conv2d_unfold`
  (im2col: ``F.unfold`` + one matrix product), :func:`conv_output_size`
- receptive fields: :func:`receptive_field` (the calculator, over
  ``(kernel, stride, dilation)`` tuples or a chain of layers) and
  :func:`measured_receptive_field` (the input region that reaches one output
  pixel, measured with gradients)
- classic filters: :func:`classic_filter`, :data:`CLASSIC_FILTERS`,
  :func:`apply_filter`
- pooling: :func:`shift_tolerance` (how much a feature changes when its input
  moves by a few pixels)
- normalisation and regularisation: :func:`batch_norm_2d`,
  :class:`BatchNorm2dScratch`, :class:`DropBlock2d`
- activations: :class:`Maxout`
- deep stacks: :func:`mlp_stack`, :func:`init_weights`,
  :func:`layer_gradient_norms`, :func:`activation_stats`
- "no fully connected layers": :func:`linear_to_conv1x1`

Shapes: ``N`` batch, ``C`` channels, ``H, W`` height and width, ``k`` kernel
size, ``s`` stride, ``p`` padding, ``d`` dilation, ``g`` groups.
"""

from course_utils.scratch.conv import (
    ReceptiveFieldRow,
    conv2d_loop,
    conv2d_unfold,
    conv_output_size,
    measured_receptive_field,
    receptive_field,
)
from course_utils.scratch.deep import (
    activation_stats,
    init_weights,
    layer_gradient_norms,
    mlp_stack,
)
from course_utils.scratch.filters import (
    CLASSIC_FILTERS,
    apply_filter,
    classic_filter,
    filter_min_size,
    shift_tolerance,
)
from course_utils.scratch.layers import (
    BatchNorm2dScratch,
    DropBlock2d,
    Maxout,
    batch_norm_2d,
    linear_to_conv1x1,
)

__all__ = [
    "conv2d_loop",
    "conv2d_unfold",
    "conv_output_size",
    "ReceptiveFieldRow",
    "receptive_field",
    "measured_receptive_field",
    "CLASSIC_FILTERS",
    "classic_filter",
    "filter_min_size",
    "apply_filter",
    "shift_tolerance",
    "batch_norm_2d",
    "BatchNorm2dScratch",
    "Maxout",
    "linear_to_conv1x1",
    "DropBlock2d",
    "mlp_stack",
    "init_weights",
    "layer_gradient_norms",
    "activation_stats",
]
