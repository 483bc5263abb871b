"""The building blocks of SAGAN and BigGAN: self-attention, spectrally normalized layers, the
residual blocks of the generator and the critic, and BigGAN's conditional batch norm.

- :class:`SelfAttention` (Zhang et al. 2019, "Self-Attention Generative Adversarial Networks",
  Sec. 3): a residual non-local block usable in any convolutional network.
- :func:`conv` / :func:`linear`: layers with spectral normalization (Miyato et al. 2018), the
  weight divided by its largest singular value, estimated by one power iteration per forward.
- :class:`GeneratorBlock` / :class:`CriticBlock`: the ResNet blocks of SNGAN, SAGAN and BigGAN
  (Miyato et al. 2018, Appendix; Brock et al. 2019, Fig. 15).
- :class:`HierarchicalBatchNorm`: BigGAN's conditional batch norm, whose gain and bias are linear
  in a conditioning vector (a latent chunk concatenated with the shared class embedding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "CriticBlock",
    "DeepCriticBlock",
    "DeepGeneratorBlock",
    "GeneratorBlock",
    "HierarchicalBatchNorm",
    "SelfAttention",
    "conv",
    "linear",
    "raw_weight",
]


def _finish(layer: nn.Conv2d | nn.Linear, sn: bool) -> nn.Module:
    """Orthogonal initialization (BigGAN, Sec. 4), zero bias, then spectral norm if ``sn``."""
    nn.init.orthogonal_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return spectral_norm(layer) if sn else layer


def conv(
    in_channels: int, out_channels: int, kernel: int, sn: bool, bias: bool = True
) -> nn.Module:
    """A ``kernel x kernel`` convolution with "same" padding, spectrally normalized if ``sn``."""
    layer = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)
    return _finish(layer, sn)


def linear(in_features: int, out_features: int, sn: bool, bias: bool = True) -> nn.Module:
    """A linear layer, spectrally normalized if ``sn``."""
    return _finish(nn.Linear(in_features, out_features, bias=bias), sn)


def raw_weight(layer: nn.Module) -> torch.Tensor:
    """The trained weight of a convolution or linear layer: with spectral norm the unnormalized
    ``W`` (``parametrizations.weight.original``), else ``weight``."""
    parametrizations = getattr(layer, "parametrizations", None)
    if parametrizations is not None and hasattr(parametrizations, "weight"):
        original: torch.Tensor = parametrizations.weight.original
        return original
    weight: torch.Tensor = layer.weight  # type: ignore[assignment]
    return weight


# -------------------------------------------------------------------------------------------------
# Self-attention
# -------------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Self-attention over the positions of a feature map (Zhang et al. 2019, Sec. 3, Eqs. 1-3).

    For ``x`` ``[N, C, H, W]`` with positions ``i, j`` in ``1 .. H*W``, 1x1 convolutions ``f``,
    ``g``, ``h`` to ``C/8`` channels and ``v`` back to ``C``:

    - ``s_ij = f(x_i)^T g(x_j)``;
    - ``beta_{j,i} = exp(s_ij) / sum_i exp(s_ij)`` (softmax over the attended positions ``i``);
    - ``o_j = v(sum_i beta_{j,i} h(x_i))``;
    - ``y = gamma * o + x``, ``gamma`` a learned scalar initialised to 0, so that a fresh block is
      the identity and the network first relies on local features.

    The four convolutions are spectrally normalized when ``sn`` (SAGAN does, in both networks).
    """

    def __init__(
        self,
        channels: int,  # C, the feature map's channels
        sn: bool = True,  # spectral normalization on f, g, h, v
        reduction: int = 8,  # C / reduction channels for f, g, h (the paper's 8)
    ) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.channels = channels
        self.f = conv(channels, inner, 1, sn, bias=False)
        self.g = conv(channels, inner, 1, sn, bias=False)
        self.h = conv(channels, inner, 1, sn, bias=False)
        self.v = conv(inner, channels, 1, sn, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The map ``beta`` ``[N, H*W, H*W]``, ``beta[n, i, j] = beta_{j,i}`` (sums to 1 over i)."""
        f = rearrange(self.f(x), "n c h w -> n c (h w)")
        g = rearrange(self.g(x), "n c h w -> n c (h w)")
        s = torch.einsum("nci,ncj->nij", f, g)  # s[n, i, j] = f(x_i) . g(x_j)
        return torch.softmax(s, dim=1)  # over the attended positions i

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"self-attention: expected [N, {self.channels}, H, W] (got {list(x.shape)})"
            )
        beta = self.attention(x)
        h = rearrange(self.h(x), "n c h w -> n c (h w)")
        attended = torch.einsum("nci,nij->ncj", h, beta)  # sum_i beta_{j,i} h(x_i)
        o = self.v(rearrange(attended, "n c (h w) -> n c h w", h=x.shape[2]))
        return self.gamma * o + x


# -------------------------------------------------------------------------------------------------
# Conditional batch norm of BigGAN
# -------------------------------------------------------------------------------------------------


class HierarchicalBatchNorm(nn.Module):
    """``BN(h) * (1 + W_gamma c) + W_beta c``: batch norm without its own affine transform, its
    per-channel gain and bias linear (no bias term) in the conditioning vector ``c`` ``[N, D]``
    (Brock et al. 2019, Sec. 3 and Appendix B: ``c`` is the block's latent chunk concatenated with
    the shared class embedding). ``1 +`` makes a zero condition the plain normalization. The
    projections are spectrally normalized when ``sn`` (BigGAN's G has spectral norm throughout).
    """

    def __init__(self, channels: int, condition_dim: int, sn: bool = True) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)  # convertible to synchronized BN
        self.gain = linear(condition_dim, channels, sn, bias=False)
        self.bias = linear(condition_dim, channels, sn, bias=False)

    def forward(self, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gain = rearrange(1.0 + self.gain(condition), "n c -> n c 1 1")
        bias = rearrange(self.bias(condition), "n c -> n c 1 1")
        out: torch.Tensor = self.bn(h) * gain + bias
        return out


# -------------------------------------------------------------------------------------------------
# Residual blocks
# -------------------------------------------------------------------------------------------------


def _normalize(norm: nn.Module, h: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
    out: torch.Tensor = norm(h) if condition is None else norm(h, condition)
    return out


class GeneratorBlock(nn.Module):
    """The up-sampling residual block: ``x -> conv(relu(norm2(conv(up(relu(norm1(x)))))))`` plus
    the shortcut ``conv1x1(up(x))``; ``up`` is nearest-neighbour x2.

    ``norm1``, ``norm2``: batch norm layers (``nn.BatchNorm2d``, which gan-conditional's
    ``conditional-batchnorm`` can replace, or :class:`HierarchicalBatchNorm`, which takes the
    block's ``condition``).
    """

    def __init__(
        self, in_channels: int, out_channels: int, norm1: nn.Module, norm2: nn.Module, sn: bool
    ) -> None:
        super().__init__()
        self.norm1, self.norm2 = norm1, norm2
        # no bias before norm2: batch norm removes it (its gradient is zero, and Adam would turn
        # the rounding noise of that zero into steps of size lr)
        self.conv1 = conv(in_channels, out_channels, 3, sn, bias=False)
        self.conv2 = conv(out_channels, out_channels, 3, sn)
        self.shortcut = conv(in_channels, out_channels, 1, sn)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(_normalize(self.norm1, x, condition))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(_normalize(self.norm2, h, condition)))
        skip: torch.Tensor = self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))
        return h + skip


class CriticBlock(nn.Module):
    """The critic's residual block: ``conv(relu(conv(relu(x))))``, average-pooled x2 when
    ``downsample``, plus a shortcut (a 1x1 convolution when the channels change or the block
    downsamples). The first block of the critic has no activation before its first convolution
    (``preactivation = False``: the input is the image) and pools before its shortcut conv."""

    def __init__(
        self, in_channels: int, out_channels: int, downsample: bool, preactivation: bool, sn: bool
    ) -> None:
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = conv(in_channels, out_channels, 3, sn)
        self.conv2 = conv(out_channels, out_channels, 3, sn)
        learned = in_channels != out_channels or downsample
        self.shortcut = conv(in_channels, out_channels, 1, sn) if learned else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            skip = x
        elif self.preactivation:
            skip = self._pool(self.shortcut(x))
        else:  # the input block: pool first (cheaper, as SNGAN's optimized block)
            skip = self.shortcut(self._pool(x))
        return h + skip


# -------------------------------------------------------------------------------------------------
# BigGAN-deep's bottleneck blocks
# -------------------------------------------------------------------------------------------------


class DeepGeneratorBlock(nn.Module):
    """BigGAN-deep's generator block (Brock et al. 2019, Appendix B, Fig. 16(b)): a bottleneck,
    ``1x1 (C -> C/4) -> 3x3 -> 3x3 -> 1x1 (-> out)``, each convolution preceded by a conditional
    batch norm and a ReLU, the up-sampling (x2, nearest) before the first 3x3; the skip keeps the
    first ``out`` channels of the input (up-sampled too): identity wherever it can be."""

    def __init__(
        self, in_channels: int, out_channels: int, condition_dim: int, upsample: bool, sn: bool
    ) -> None:
        super().__init__()
        if out_channels > in_channels:
            raise ValueError(
                f"biggan-deep: a generator block cannot widen ({in_channels} -> {out_channels} "
                "channels): its skip drops channels"
            )
        hidden = max(1, in_channels // 4)
        self.out_channels, self.upsample = out_channels, upsample
        self.norms = nn.ModuleList(
            HierarchicalBatchNorm(c, condition_dim, sn)
            for c in (in_channels, hidden, hidden, hidden)
        )
        # no bias before a batch norm (it removes it)
        self.conv1 = conv(in_channels, hidden, 1, sn, bias=False)
        self.conv2 = conv(hidden, hidden, 3, sn, bias=False)
        self.conv3 = conv(hidden, hidden, 3, sn, bias=False)
        self.conv4 = conv(hidden, out_channels, 1, sn)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        n1, n2, n3, n4 = self.norms
        h = self.conv1(F.relu(n1(x, condition)))
        h = self.conv2(self._up(F.relu(n2(h, condition))))
        h = self.conv3(F.relu(n3(h, condition)))
        h = self.conv4(F.relu(n4(h, condition)))
        return h + self._up(x[:, : self.out_channels])


class DeepCriticBlock(nn.Module):
    """BigGAN-deep's critic block (Fig. 16(c)): ``ReLU -> 1x1 (-> out/4) -> ReLU -> 3x3 -> ReLU
    -> 3x3 -> ReLU -> avgpool -> 1x1 (-> out)``; the skip is the input (average-pooled when the
    block downsamples), widened by concatenating a 1x1 convolution's extra channels."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, sn: bool) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"biggan-deep: a critic block cannot narrow ({in_channels} -> {out_channels} "
                "channels): its skip keeps every input channel"
            )
        hidden = max(1, out_channels // 4)
        self.downsample = downsample
        self.conv1 = conv(in_channels, hidden, 1, sn)
        self.conv2 = conv(hidden, hidden, 3, sn)
        self.conv3 = conv(hidden, hidden, 3, sn)
        self.conv4 = conv(hidden, out_channels, 1, sn)
        extra = out_channels - in_channels
        self.shortcut = conv(in_channels, extra, 1, sn) if extra else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        h = self.conv4(self._pool(F.relu(self.conv3(F.relu(h)))))
        skip = self._pool(x)
        if self.shortcut is not None:
            skip = torch.cat([skip, self.shortcut(skip)], dim=1)
        return h + skip
