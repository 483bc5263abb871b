"""`gan sample RUN --vary-code NAME`: InfoGAN's latent-traversal grids, through the CLI."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
import torch
from gan_conditional.sampling import code_values
from gan_conditional.tasks import InfoGAN
from PIL import Image

import gancore
import gancore.testing as gt
from gancore._cli import main

DATA = {"name": "digits", "resolution": 8}


def _train(root: Path, name: str, **sections: Any) -> Path:
    document = gt.tiny_run(2, data=DATA, **sections)
    document["training"]["sample_every"] = 0
    gancore.train(
        gancore.parse_config(document, gancore.get_registry()), root / name, progress=False
    )
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two-step InfoGAN (Cat(3) and 2 continuous codes) and conditional runs on 8x8 digits."""
    root = tmp_path_factory.mktemp("sampling")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_LOAD_PLUGINS", "gan-conditional")
        gancore.reset_registry()
        infogan = _train(
            root,
            "infogan",
            task={"name": "infogan", "categorical": [3], "continuous": 2},
            generator={"name": "dcgan", "latent_dim": 9, "channels": 4},
            critic={"name": "dcgan", "channels": 4, "norm": "none"},
        )
        conditional = _train(
            root,
            "conditional",
            task={"name": "conditional"},
            generator={
                "name": "concat",
                "latent_dim": 4,
                "inner": {"name": "dcgan", "channels": 4},
            },
            critic={"name": "projection", "inner": {"name": "dcgan", "channels": 4}},
        )
        gancore.reset_registry()
    return {"infogan": infogan, "conditional": conditional}


class TestCodeSweep:
    def test_rows_set_the_code_columns_keep_the_rest(self) -> None:
        """Row r holds value r of the varied code; every row repeats the columns' noise and
        other codes, drawn from the seed as sample_inputs draws them."""
        task = InfoGAN(categorical=[3, 2], continuous=2)
        generators: Any = {"generator": types.SimpleNamespace(latent_dim=4 + 7)}
        z = task.code_sweep(generators, "c1", torch.arange(3), 5, seed=1)["z"]
        assert z.shape == (15, 11)
        rows = z.view(3, 5, 11)
        for r in range(3):
            assert torch.equal(rows[r, :, :4], rows[0, :, :4])  # noise
            assert torch.equal(rows[r, :, 7:], rows[0, :, 7:])  # the other codes
            assert rows[r, :, 4:7].argmax(1).tolist() == [r] * 5
        noise = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(rows[0, :, :4], noise)
        # a continuous code: c4 is the second continuous one, z's last entry
        sweep = task.code_sweep(generators, "c4", torch.tensor([-2.0, 0.5]), 2, seed=1)["z"]
        assert sweep[:, -1].tolist() == [-2.0, -2.0, 0.5, 0.5]
        assert torch.equal(sweep[:2, :-1], sweep[2:, :-1])

    def test_values(self) -> None:
        """A categorical code takes each of its values; a continuous one -2..2 in 5 steps by
        default (Chen et al. 2016, Fig. 2), or as asked."""
        task = InfoGAN(categorical=[4], continuous=1)
        assert code_values(task, "c1", None, None).tolist() == [0, 1, 2, 3]
        assert code_values(task, "c2", None, None).tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
        assert code_values(task, "c2", 3, [-1.0, 1.0]).tolist() == [-1.0, 0.0, 1.0]
        assert task.code_names() == ["c1", "c2"]


class TestCommand:
    def test_categorical_grid(
        self, runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--vary-code c1 --num 8: 3 rows (the code's values) of ceil(8 / 3) = 3 columns."""
        out = tmp_path / "c1.png"
        code = main(
            ["sample", str(runs["infogan"]), "--vary-code", "c1", "--num", "8", "--out", str(out)]
        )
        assert code == 0
        assert capsys.readouterr().out == (
            f"wrote {out} (rows: c1 (categorical, 3 values) = 0 .. 2; columns: noise and other "
            "codes from seed 0)\n"
        )
        with Image.open(out) as image:
            width, height = image.size
        assert width > height  # 3 x 3 cells plus the row names' margin on the left

    def test_continuous_grid(
        self, runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "c3.png"
        args = ["--vary-code", "c3", "--code-steps", "3", "--code-range", "-1", "1"]
        assert main(["sample", str(runs["infogan"]), *args, "--out", str(out)]) == 0
        assert capsys.readouterr().out == (
            f"wrote {out} (rows: c3 (continuous) = -1.00 .. +1.00; columns: noise and other "
            "codes from seed 0)\n"
        )
        assert out.is_file()

    def test_default_path(self, runs: dict[str, Path]) -> None:
        assert main(["sample", str(runs["infogan"]), "--vary-code", "c2", "--seed", "3"]) == 0
        assert (runs["infogan"] / "samples" / "vary-c2-3.png").is_file()

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            (
                ["--vary-code", "c9"],
                "error: --vary-code: unknown code 'c9'; codes: c1 (categorical, 3 values), "
                "c2 (continuous), c3 (continuous)",
            ),
            (
                ["--vary-code", "c1", "--code-steps", "4"],
                "error: --code-steps: only for a continuous code (c1 (categorical, 3 values))",
            ),
            (
                ["--vary-code", "c2", "--code-steps", "1"],
                "error: --code-steps: must be >= 2 (got 1)",
            ),
            (
                ["--vary-code", "c2", "--code-range", "1", "-1"],
                "error: --code-range: expected LOW < HIGH, finite numbers (got 1 -1)",
            ),
            (["--code-steps", "3"], "error: --code-steps: needs --vary-code NAME"),
            (
                ["--vary-code", "c1", "--class", "1"],
                "error: --class: cannot be combined with --vary-code",
            ),
        ],
    )
    def test_bad_options_are_one_line(
        self,
        runs: dict[str, Path],
        capsys: pytest.CaptureFixture[str],
        args: list[str],
        error: str,
    ) -> None:
        assert main(["sample", str(runs["infogan"]), *args]) == 2
        assert capsys.readouterr().err == error + "\n"

    def test_needs_infogan(self, runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["sample", str(runs["conditional"]), "--vary-code", "c1"]) == 2
        assert capsys.readouterr().err == (
            "error: --vary-code: task 'conditional' has no latent codes (task 'infogan' has)\n"
        )
