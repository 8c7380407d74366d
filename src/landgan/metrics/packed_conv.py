"""Convolutions through oneDNN with prepacked weights and a fused ReLU (CPU inference).

``F.conv2d`` on CPU converts the weights to oneDNN's blocked layout on every call,
and a following ReLU is one more pass over the output. :class:`PackedConv2d` instead
calls the oneDNN kernels that ``torch.compile`` uses on CPU -- the private ops
``torch.ops.mkldnn._reorder_convolution_weight`` / ``_convolution_pointwise`` --
packing the weights once per input shape and fusing the ReLU. Anywhere else (GPU,
autograd, another dtype, a build without the ops) it is a plain ``nn.Conv2d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _mkldnn_fusable(x: Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``conv(x)`` may take the prepacked oneDNN path (CPU fp32 inference only)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and conv.weight.dtype == torch.float32
        and conv.__dict__.get("_fuse_ok", True)
        and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    )


def mkldnn_conv(conv: nn.Conv2d, x: Tensor, post_op: str) -> Tensor:
    """``conv(x)`` then ``post_op`` ("relu" or "none") as one oneDNN call, weights prepacked.

    Packed weights are cached on ``conv`` per input shape (and weight version, so an
    in-place weight update repacks). Falls back to plain PyTorch, for good, if the
    private ops are missing or refuse.
    """
    # Channel slices of a merged Stem output are strided views; oneDNN wants dense NHWC
    # (F.conv2d would make the same copy internally).
    x = x.contiguous(memory_format=torch.channels_last)
    cache = conv.__dict__.setdefault("_packed", {})
    key = (tuple(x.shape), conv.weight._version, conv.weight.data_ptr())
    try:
        w = cache.get(key)
        if w is None:
            if len(cache) >= 4:  # batch sizes seen: typically the batch and one remainder
                cache.clear()
            w = cache[key] = torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight.detach(),
                list(conv.padding),
                list(conv.stride),
                list(conv.dilation),
                conv.groups,
                list(x.shape),
            )
        return torch.ops.mkldnn._convolution_pointwise(
            x,
            w,
            conv.bias,
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            post_op,
            [],
            "",
        )
    except (RuntimeError, AttributeError, TypeError):
        conv.__dict__["_fuse_ok"] = False  # this build cannot: use plain PyTorch from now on
        y = F.conv2d(
            x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
        )
        return F.relu_(y) if post_op == "relu" else y


class PackedConv2d(nn.Conv2d):
    """``nn.Conv2d`` taking :func:`mkldnn_conv` where it can; ``post_op`` after it."""

    post_op = "none"

    def forward(self, x: Tensor) -> Tensor:
        if _mkldnn_fusable(x, self):
            return mkldnn_conv(self, x, self.post_op)
        y = super().forward(x)
        return F.relu_(y) if self.post_op == "relu" else y

    def __getstate__(self):  # copies and pickles drop the packed weights (opaque tensors)
        state = self.__dict__.copy()
        state.pop("_packed", None)
        return state

    def _apply(self, fn, *args, **kwargs):  # .to(), .float(), ...: packed copies go stale
        self.__dict__.pop("_packed", None)
        return super()._apply(fn, *args, **kwargs)
