"""Freeze-D: the first k declared critic blocks stop training."""

from __future__ import annotations

import pytest
import torch
from gan_ada.regularizers import FreezeD
from torch import nn


class BlockCritic(nn.Module):
    """Three conv blocks and a head, declared input to output."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Linear(4, 1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.blocks[1](torch.relu(self.blocks[0](x))))
        return self.blocks[2](h.mean(dim=(2, 3))).squeeze(1)


class NoBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)


class TestFreezeD:
    @pytest.mark.parametrize("k", [0, 1, 2, 3])
    def test_freezes_exactly_the_first_k_blocks(self, k: int) -> None:
        """Parameters of blocks[:k] lose requires_grad; the rest keep it."""
        critic = BlockCritic()
        FreezeD(blocks=k).setup_critic(critic)
        for i, block in enumerate(critic.blocks):
            for param in block.parameters():
                assert param.requires_grad == (i >= k), (i, k)

    def test_frozen_blocks_get_no_gradient(self) -> None:
        """After a backward pass, frozen parameters have no gradient; trainable ones do."""
        critic = BlockCritic()
        FreezeD(blocks=1).setup_critic(critic)
        critic(torch.randn(2, 1, 5, 5)).sum().backward()
        assert all(p.grad is None for p in critic.blocks[0].parameters())
        assert all(p.grad is not None for p in critic.blocks[1].parameters())

    def test_no_penalty(self) -> None:
        """A constraint: penalty is None, interval 1, critic player."""
        reg = FreezeD(blocks=1)
        assert reg.penalty(lambda x: x, torch.zeros(1), torch.zeros(1), ()) is None
        assert (reg.player, reg.interval) == ("critic", 1)

    def test_critic_without_blocks(self) -> None:
        """A critic that declares no blocks is a one-line error naming its class."""
        with pytest.raises(ValueError, match="freeze-d: critic NoBlocks declares no 'blocks'"):
            FreezeD(blocks=1).setup_critic(NoBlocks())

    def test_too_many_blocks(self) -> None:
        """Asking for more blocks than the critic has names both numbers and the class."""
        with pytest.raises(
            ValueError, match="'blocks' = 4 but critic BlockCritic declares only 3 blocks"
        ):
            FreezeD(blocks=4).setup_critic(BlockCritic())

    def test_negative_blocks(self) -> None:
        """blocks must be >= 0."""
        with pytest.raises(ValueError, match="'blocks' must be >= 0"):
            FreezeD(blocks=-1)


class TestOnTheCoreCritic:
    def test_dcgan_critic_blocks(self) -> None:
        """On gancore's dcgan critic, blocks = 2 freezes its first two convolutions (with their
        normalization) and nothing after them."""
        import gancore

        registry, _ = gancore.load_registry()
        spec = registry.get("critic", "dcgan")
        critic = spec.build(spec.defaults(), gancore.BuildContext(data_shape=(1, 16, 16)))
        blocks = list(critic.blocks)
        assert len(blocks) == 3  # 16 -> 8 -> 4, then the 4x4 scoring conv
        FreezeD(blocks=2).setup_critic(critic)
        frozen = {id(p) for b in blocks[:2] for p in b.parameters()}
        assert frozen
        for param in critic.parameters():
            assert param.requires_grad == (id(param) not in frozen)
        assert all(p.requires_grad for p in blocks[2].parameters())
