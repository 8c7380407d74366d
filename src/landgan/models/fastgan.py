"""FastGAN (Liu et al., ICLR 2021): a light generator with skip-layer excitation and a
self-supervised discriminator, for 64, 128 and 256 px.

Generator
  z (joined by the condition vector when there is one) goes through a linear layer to
  a 4x4 map, BatchNorm and GLU (the paper's transposed conv on a 1x1 map is the same
  map as a linear). Each upsampling block is nearest x2 + conv3x3 + BN + GLU: the conv
  gives twice the channels and the GLU gates one half with the other. There is no
  transposed conv anywhere (no checkerboard artefacts), and no noise injection, so an
  image is a pure function of (z, c) -- it exports to ONNX as a plain graph.

Skip-layer excitation (SLE)
  A low-res map is average-pooled to 4x4, a valid conv4x4 takes it to 1x1, then
  LeakyReLU(0.1), conv1x1 and a sigmoid give one gate per channel of a high-res map,
  which is multiplied by it. The pairs (low -> high, px) are :data:`SLE_PAIRS`:

  * 256 px: 8 -> 128 and 16 -> 256 (the paper's pairs);
  * 128 px: 4 -> 64 and 8 -> 128;
  *  64 px: 4 -> 32 and 8 -> 64.

  The pooling is a fixed AvgPool2d(size // 4), which is exactly the paper's adaptive
  pooling at these power-of-two sizes and exports to ONNX without shape arithmetic.
  ``G.sle`` lists the modules; each also has ``gate(low)``.

Discriminator
  A stride-2 conv4x4 + LeakyReLU(0.2) stem (no BN on raw pixels, as in DCGAN) halves
  the image; residual blocks then halve it down to 8x8 (main path conv4x4/2 + BN +
  LReLU, conv3x3 + BN + LReLU; shortcut avgpool2 + conv1x1 + BN + LReLU; the two are
  averaged). The head (conv1x1 + BN + LReLU, conv4x4 valid) scores the 5x5 overlapping
  patches of the 8x8 map; their mean is the logit. Conditional: projection term
  (Miyato & Koyama 2018) as in DCGANDiscriminator, but on mean- rather than sum-pooled
  8x8 features, to match the head's patch mean (summed, it started 64x larger). With
  ``cond_head`` a linear layer also predicts the condition from those pooled features
  (AC-GAN style); the trainer's ``--cond-aux`` weighs it.

  Spectral norm (the official code's choice) is on every conv/linear of the scoring
  path, on top of BN: it bounds D's slope, which the hinge loss alone does not, and it
  costs no measurable time (one power iteration per weight, against convs over a
  whole batch), so it is on (``spectral=False`` turns it off). The decoders stay plain:
  they never reach the logit, so they need no Lipschitz bound. (The registry's
  ``--sn`` would stack a second spectral norm and strip D's BatchNorms, decoders'
  included: leave it off for this model.)

  Self-supervision, :meth:`FastGANDiscriminator.real_scores_and_recon_loss`: two small
  decoders (upsample + conv3x3 + BN + GLU blocks, conv3x3 to RGB, tanh) reconstruct
  (a) the whole real image at R/2 px from the 8x8 map and (b) one quadrant of it
  (full-res R/2 px) from the matching 8x8 quarter of the 16x16 map. The loss is L1 (the
  paper's LPIPS needs downloaded weights): its gradient does not fade as the error
  shrinks and it blurs less than MSE. The trainer adds it to D's loss on real images
  only.

Widths and cost
  Every map of side s has ``min(8*width, width*R/(2s))`` channels in G and D (the
  DCGAN plan at the same resolution: ``width`` at R/2, capped at 8x), and decoders a
  quarter of D's width at the same side. An upsample + conv3x3 + GLU block does 4.5x
  the multiply-adds of DCGAN's transposed conv at the same widths (18 vs 4 per output
  pixel and channel pair), so width 64 would cost ~2.6x a dcgan4 step. landgan's
  default is width 32 (``TrainConfig.g_width``/``d_width``, also the constructors'
  default): about 0.75x a dcgan4 step (FLOPs 1.66 G, 1-thread time 0.73x), so on a
  2-core CPU it takes more steps per minute than the DCGAN it replaces. Width 40 was the
  widest within 1.5x of dcgan4 on both 1 and 2 threads; pass ``--g-width 40 --d-width
  40`` (or more, on a GPU) to trade steps for capacity.

  Step times by width, against dcgan4, are tabled in docs/models.md ("fastgan's step
  cost by width").

  Parameters (G / D, spectral-norm copies counted) at 64 / 128 / 256 px: width 32 1.77 M /
  0.44 M, 2.98 / 1.82, 4.16 / 3.97; width 40 2.51 / 0.69 (D's decoders 0.09), 4.40 / 2.85
  (0.38), 6.25 / 6.20 (1.07); width 64 5.44 / 1.75, 10.29 / 7.28, 15.01 / 15.87 (dcgan4:
  3.58 M / 2.77 M). Conditional BN adds 0.01-0.02 M to G for a 5-element condition;
  on a 4x4 layout (``MapModulation``, 3x3 convs from 5 channels) about 0.09 M.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from landgan.models.dcgan import init_weights
from landgan.models.fastgan_blocks import (
    GLU,
    CondModulation,
    DownBlock,
    SkipExcitation,
    decoder,
    doublings,
    plan,
    spectral_normed,
    up_block,
)
from landgan.models.layout import MapHead, MapModulation, layout_grid, map_projection
from landgan.models.spec import NetArgs

RESOLUTIONS = (64, 128, 256)
# (low side, high side) of each skip-layer excitation, per output resolution.
SLE_PAIRS = {64: ((4, 32), (8, 64)), 128: ((4, 64), (8, 128)), 256: ((8, 128), (16, 256))}
FINAL = 8  # side of D's last feature map
PART = 16  # side of the map whose quadrants the part decoder reads


class FastGANGenerator(nn.Module):
    """z (N, z_dim) [+ c (N, cond_dim)] -> image (N, 3, R, R) in [-1, 1].

    ``cond_bn``: the condition also scales and shifts every BatchNorm's output
    (:class:`CondModulation`, BigGAN-style conditional BN), so it acts on each
    resolution, not only through the first layer's input; with ``layout_elements`` the
    condition is a layout map and modulates pixel by pixel (:class:`MapModulation`).
    """

    def __init__(
        self,
        resolution: int,
        z_dim: int = 100,
        width: int = 32,
        cond_dim: int = 0,
        cond_bn: bool = False,
        layout_elements: int = 0,
    ):
        super().__init__()
        if resolution not in SLE_PAIRS:
            raise ValueError(f"fastgan supports {RESOLUTIONS} px, not {resolution}")
        self.z_dim, self.cond_dim, self.resolution = z_dim, cond_dim, resolution
        self.sizes = doublings(4, resolution)
        ch = {s: plan(resolution, width, s) for s in self.sizes}
        # The condition joins z before the first layer, which thus also embeds it.
        self.project = nn.Linear(z_dim + cond_dim, 2 * ch[4] * 16, bias=False)
        self.project_bn = nn.BatchNorm2d(2 * ch[4])
        self.glu = GLU()
        self.up = nn.ModuleList(up_block(ch[s // 2], ch[s]) for s in self.sizes[1:])
        self.sle = nn.ModuleList(
            SkipExcitation(ch[lo], ch[hi], lo, hi) for lo, hi in SLE_PAIRS[resolution]
        )
        self.to_rgb = nn.Sequential(nn.Conv2d(ch[resolution], 3, 3, 1, 1), nn.Tanh())
        init_weights(self)
        # Its own list beside the blocks, so that a model without it keeps the state-dict
        # keys it always had (older checkpoints load unchanged); one per BN, 4x4 first.
        # A layout map modulates where it lies (SPADE), a composition the whole image.
        grid = layout_grid(cond_dim, layout_elements) if layout_elements else 0
        mod = (
            (lambda n: MapModulation(layout_elements, grid, n))
            if layout_elements
            else (lambda n: CondModulation(cond_dim, n))
        )
        self.cond_bn = (
            nn.ModuleList(mod(2 * ch[s]) for s in self.sizes) if cond_dim and cond_bn else None
        )

    def _bn(self, i: int, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return h if self.cond_bn is None else self.cond_bn[i](h, c)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim:
            z = torch.cat([z, c.to(z.dtype)], 1)
        h = self.glu(self._bn(0, self.project_bn(self.project(z).unflatten(1, (-1, 4, 4))), c))
        gates = {m.high: m for m in self.sle}
        lows = {m.low for m in self.sle}
        kept = {4: h} if 4 in lows else {}
        for i, (side, block) in enumerate(zip(self.sizes[1:], self.up), 1):
            upsample, conv, bn, glu = block
            h = glu(self._bn(i, bn(conv(upsample(h))), c))
            if side in gates:
                h = gates[side](kept[gates[side].low], h)
            if side in lows:
                kept[side] = h
        return self.to_rgb(h)


class FastGANDiscriminator(nn.Module):
    """image (N, 3, R, R) [+ c] -> one logit per image; decoders for the self-supervised loss."""

    def __init__(
        self,
        resolution: int,
        width: int = 32,
        cond_dim: int = 0,
        spectral: bool = True,
        cond_head: bool = False,
        layout_elements: int = 0,
    ):
        super().__init__()
        if resolution not in SLE_PAIRS:
            raise ValueError(f"fastgan supports {RESOLUTIONS} px, not {resolution}")
        self.resolution = resolution
        sides = doublings(FINAL, resolution // 2)[::-1]  # R/2, R/4, ..., 8
        ch = {s: plan(resolution, width, s) for s in sides}
        self.stem = nn.Sequential(
            nn.Conv2d(3, ch[sides[0]], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)
        )
        self.blocks = nn.ModuleList(DownBlock(ch[a], ch[b]) for a, b in zip(sides, sides[1:]))
        self.part_index = sides.index(PART) - 1  # the block whose output is 16x16
        c8 = ch[FINAL]
        self.head = nn.Sequential(
            nn.Conv2d(c8, c8, 1, bias=False),
            nn.BatchNorm2d(c8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c8, 1, 4),
        )
        # Projection discriminator (Miyato & Koyama 2018): logit += <embed(c), features>.
        # ``layout_elements``: a layout map is projected and predicted cell by cell.
        self.layout = layout_elements if cond_dim else 0
        self.embed = nn.Linear(self.layout or cond_dim, c8, bias=False) if cond_dim else None
        # AC-GAN-style head: the condition's logits from the same pooled features.
        self.grid = layout_grid(cond_dim, self.layout) if self.layout else 0
        self.predict = (
            None
            if not (cond_dim and cond_head)
            else MapHead(c8, self.layout, self.grid)
            if self.layout
            else nn.Linear(c8, cond_dim)
        )
        # Decoders a quarter as wide as D: cheap, so the features must carry the content.
        rec = sides[::-1]  # 8, 16, ..., R/2: both decoders end at R/2
        dch = {s: max(4, ch[s] // 4) for s in rec}
        self.decode_all = decoder(c8, rec, dch)
        self.decode_part = decoder(ch[PART], rec, dch)
        init_weights(self)  # before spectral norm, which then reads these weights
        if spectral:  # the scoring path only: the decoders never reach the logit
            for net in (self.stem, self.blocks, self.head, self.embed):
                if net is not None:
                    spectral_normed(net)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(16x16 map, 8x8 map) of an image batch."""
        h, f16 = self.stem(x), None
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.part_index:
                f16 = h
        return f16, h

    def _logits(self, f8: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        # Mean over the 5x5 patch scores: a logit per image, PatchGAN-style evidence.
        out = self.head(f8).mean((1, 2, 3))
        if self.embed is not None and self.layout:
            out = out + map_projection(self.embed, f8, c, self.layout, self.grid)
        elif self.embed is not None:
            # Mean-pooled, not summed: the scale of the head's patch mean above.
            out = out + (self.embed(c.to(f8.dtype)) * f8.mean((2, 3))).sum(1)
        return out

    def _prediction(self, f8: torch.Tensor) -> torch.Tensor | None:
        if self.predict is None:
            return None
        return self.predict(f8) if self.layout else self.predict(f8.mean((2, 3)))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.scores(x, c)[0]

    def scores(
        self, x: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, condition logits (N, K), a layout's (N, cells, K), or None without a
        ``cond_head``) in one pass."""
        f8 = self.features(x)[1]
        return self._logits(f8, c), self._prediction(f8)

    def real_scores_and_recon_loss(
        self, x: torch.Tensor, c: torch.Tensor | None = None, part: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """(logits, condition logits or None, L1 reconstruction loss) of real images;
        ``part`` 0..3 picks the quadrant (row-major: 0 top-left, 3 bottom-right), drawn
        from the global RNG when None."""
        if part is None:
            part = int(torch.randint(4, ()))
        elif part not in range(4):
            raise ValueError(f"part must be 0..3, not {part}")
        f16, f8 = self.features(x)
        row, col = divmod(part, 2)
        half, q = PART // 2, self.resolution // 2
        crop = f16[:, :, row * half : (row + 1) * half, col * half : (col + 1) * half]
        quarter = x[:, :, row * q : (row + 1) * q, col * q : (col + 1) * q]
        rec_all, rec_part = self.decode_all(f8), self.decode_part(crop)
        side = rec_all.shape[-1]
        target_all = F.interpolate(x, size=side, mode="area")
        target_part = F.interpolate(quarter, size=side, mode="area")
        loss = F.l1_loss(rec_all, target_all.to(rec_all.dtype)) + F.l1_loss(
            rec_part, target_part.to(rec_part.dtype)
        )
        return self._logits(f8, c), self._prediction(f8), loss


def build_fastgan(args: NetArgs) -> tuple[nn.Module, nn.Module]:
    """(FastGANGenerator, FastGANDiscriminator) at 64, 128 or 256 px."""
    if args.resolution not in RESOLUTIONS:
        raise ValueError(f"fastgan supports {RESOLUTIONS} px, not {args.resolution}")
    # A layout is read where it lies only with --cond-bn: older layout models load as trained.
    spatial = args.layout_elements if args.cond_bn else 0
    return (
        FastGANGenerator(
            args.resolution, args.z_dim, args.g_width, args.cond_dim, args.cond_bn, spatial
        ),
        FastGANDiscriminator(
            args.resolution,
            args.d_width,
            args.cond_dim,
            cond_head=args.cond_head,
            layout_elements=spatial,
        ),
    )
