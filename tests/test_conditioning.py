"""Conditioning end to end: class folders -> labelled items -> a conditional run (the test plugin's
'test-conditional' task) -> classes.json -> `gan sample --class` grids and `gan eval --per-class`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import gancore
import gancore.testing
from gancore._cli import main
from gancore._inference import load_run
from gancore._pictures import save_grid
from tests.conftest import MISBEHAVING_TEST_PLUGINS, require_test_plugins

# Three classes of four flat gray 8x8 images each: dark cats, mid-gray dogs, light owls.
CLASS_VALUES = {"cat": 30, "dog": 130, "owl": 230}

RUN = """
[run]
name = "conditional"
seed = 0
steps = 20

[data]
name = "image-folder"
path = "{path}"
resolution = 8
channels = 1
labels = "subfolders"

[task]
name = "test-conditional"

[loss]
name = "non-saturating"

[training]
batch_size = 4
ema_half_life_images = 20
log_every = 10
sample_every = 0
checkpoint_every = 0
"""


def write_class_folders(root: Path) -> Path:
    for name, value in CLASS_VALUES.items():
        (root / name).mkdir(parents=True)
        for i in range(4):
            pixels = np.full((8, 8), value + 5 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-step run of 'test-conditional' on the three class folders."""
    require_test_plugins("gancore-test-good")
    root = tmp_path_factory.mktemp("conditional")
    # Module scope runs before the function-scoped fixtures that set these; set them here too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_DISABLE_PLUGINS", MISBEHAVING_TEST_PLUGINS)
        patch.delenv("GANCORE_LOAD_PLUGINS", raising=False)
        gancore.reset_registry()
        data = write_class_folders(root / "data")
        config_file = root / "run.toml"
        config_file.write_text(RUN.format(path=data.as_posix()))
        gancore.train(gancore.load_config(config_file), root / "run", progress=False)
        gancore.reset_registry()
    return root / "run"


def gan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def expected_grid(
    run_dir: Path, path: Path, labels: torch.Tensor, seed: int, **grid: Any
) -> np.ndarray:
    """The grid drawn from the run's EMA generator called directly on ``labels``."""
    run = load_run(run_dir)
    task, generator = run.built.task, run.generators["generator"]
    inputs = task.sample_inputs(run.generators, run.built.dataset, len(labels), seed, labels=labels)
    assert torch.equal(inputs["label"], labels)
    with torch.no_grad():
        images = generator(inputs["z"], labels)
    save_grid(images, path, **grid)
    return np.asarray(Image.open(path))


class TestLabelledRun:
    def test_training_writes_the_class_names(self, trained: Path) -> None:
        """The run directory holds classes.json with the sorted class folder names."""
        assert json.loads((trained / "classes.json").read_text()) == {
            "classes": ["cat", "dog", "owl"]
        }
        assert gancore.load_config(trained / "config.toml").data.options.labels == "subfolders"

    def test_batches_carry_labels(self, trained: Path) -> None:
        """The rebuilt dataset's items carry the index of their folder's class."""
        dataset = load_run(trained).built.dataset
        assert dataset.classes == ("cat", "dog", "owl")
        assert dataset.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
        assert [round(float(dataset[i]["x"].mean()) * 127.5 + 127.5) for i in (0, 5, 11)] == [
            30,
            135,
            245,
        ]


class TestSampleClass:
    def test_one_class_by_name_or_index(
        self, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--class dog draws every sample of the grid from G(z, dog); --class 1 is the same."""
        out = tmp_path / "dog.png"
        code, stdout, err = gan(
            capsys, "sample", str(trained), "--class", "dog", "--num", "6", "--out", str(out)
        )
        assert (code, err) == (0, "")
        assert stdout == f"wrote {out} (class dog)\n"
        dogs = torch.full((6,), 1, dtype=torch.int64)
        expected = expected_grid(trained, tmp_path / "expected.png", dogs, 0, header="class dog")
        assert np.array_equal(np.asarray(Image.open(out)), expected)
        owls = expected_grid(trained, tmp_path / "owls.png", dogs + 1, 0, header="class dog")
        assert not np.array_equal(owls, expected)  # the comparison sees the label
        by_index = tmp_path / "one.png"
        assert (
            gan(
                capsys, "sample", str(trained), "--class", "1", "--num", "6", "--out", str(by_index)
            )[0]
            == 0
        )
        assert by_index.read_bytes() == out.read_bytes()

    def test_class_per_row_by_default(
        self, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --class a conditional run's grid has one named row per class:
        ceil(5 / 3) = 2 samples of cat, then dog, then owl."""
        code, stdout, _ = gan(capsys, "sample", str(trained), "--num", "5", "--seed", "3")
        assert code == 0
        out = trained / "samples" / "sample-3.png"
        assert stdout == f"wrote {out}\n"
        labels = torch.tensor([0, 0, 1, 1, 2, 2])
        expected = expected_grid(
            trained, tmp_path / "rows.png", labels, 3, columns=2, row_names=("cat", "dog", "owl")
        )
        assert np.array_equal(np.asarray(Image.open(out)), expected)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                "dgo",
                "error: --class: unknown class 'dgo' (did you mean 'dog'?); classes: 0 'cat', "
                "1 'dog', 2 'owl'",
            ),
            (
                "3",
                "error: --class: class index 3 is out of range (expected 0..2); classes: 0 'cat', "
                "1 'dog', 2 'owl'",
            ),
        ],
    )
    def test_unknown_class(
        self, trained: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
    ) -> None:
        """An unknown name or an index past the last class is one line, exit 2, no grid."""
        code, stdout, err = gan(capsys, "sample", str(trained), "--class", value)
        assert (code, stdout, err) == (2, "", message + "\n")
        assert not (trained / "samples" / "sample-0-class-3.png").exists()

    def test_class_with_a_picture_option(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--class and a plugin option that draws its own picture (gan-stylegan's
        --style-mixing, say) are refused together before any run is loaded."""

        class Mixing:
            @gancore.hookimpl
            def gancore_register_sample_options(
                self, register: gancore.RegisterSampleOptionCallback
            ) -> None:
                register("--mix", help="a picture of its own", picture=lambda run, args: "")

        with gancore.testing.registered_plugin("mixing", Mixing()):
            code, _, err = gan(capsys, "sample", "nowhere", "--class", "1", "--mix")
        assert (code, err) == (2, "error: --class: cannot be combined with --mix\n")

    def test_unconditional_run(
        self, toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unconditional run refuses --class and --per-class in one line each."""
        run_dir = tmp_path / "toy"
        config = gancore.load_config(toy_config, ["run.steps=2", "training.sample_every=0"])
        gancore.train(config, run_dir, progress=False)
        capsys.readouterr()  # the training's report
        assert not (run_dir / "classes.json").exists()
        code, _, err = gan(capsys, "sample", str(run_dir), "--class", "0")
        assert (code, err) == (
            2,
            "error: task 'unconditional' is not conditional; --class needs a conditional task\n",
        )
        code, _, err = gan(capsys, "eval", str(run_dir), "--metric", "mode-coverage", "--per-class")
        assert (code, err) == (
            2,
            "error: task 'unconditional' is not conditional; --per-class needs a conditional "
            "task\n",
        )


class TestEvalPerClass:
    def test_keys_by_class_name(
        self,
        trained: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--per-class scores each class against its own 4 images, keyed by class name, beside
        the overall value, with the mean over classes (intra-class FID)."""
        monkeypatch.setenv("GANCORE_CACHE", str(tmp_path / "cache"))
        code, stdout, err = gan(
            capsys,
            "eval",
            str(trained),
            "--metric",
            "fid",
            "--set",
            "extractor='digits-classifier'",
            "--num",
            "6",
            "--per-class",
        )
        assert (code, err) == (0, "")
        result = json.loads(stdout)
        assert list(result["per_class"]) == ["cat", "dog", "owl"]
        assert (result["fid.protocol"]["num_real"], "class" not in result["fid.protocol"]) == (
            6,
            True,
        )
        for label, name in enumerate(("cat", "dog", "owl")):
            scores = result["per_class"][name]
            assert set(scores) == {"fid.fd-digits", "fid.generator", "fid.protocol"}
            protocol = scores["fid.protocol"]
            assert (protocol["class"], protocol["num_real"], protocol["num_generated"]) == (
                label,
                4,
                6,
            )
        values = [result["per_class"][n]["fid.fd-digits"] for n in ("cat", "dog", "owl")]
        assert len(set(values)) == 3
        assert result["per_class_mean"] == {"fid.fd-digits": pytest.approx(sum(values) / 3)}
        assert result["fid.fd-digits"] not in values

    def test_reference_data_must_match(
        self, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--ref data with other classes, or without labels, is refused before any scoring."""
        other = write_class_folders(tmp_path / "other")
        shutil.rmtree(other / "owl")  # classes cat and dog only
        table = (
            f"{{name = 'image-folder', path = '{other.as_posix()}', resolution = 8, channels = 1"
        )
        args = ["eval", str(trained), "--metric", "fid", "--per-class", "--ref"]
        code, _, err = gan(capsys, *args, table + ", labels = 'subfolders'}")
        assert (code, err) == (
            2,
            "error: --per-class: the data's classes (cat, dog) are not the run's (cat, dog, owl)\n",
        )
        code, _, err = gan(capsys, *args, table + "}")
        assert (code, err) == (
            2,
            "error: --per-class: the data has no 'label' key to select classes by (keys: x)\n",
        )
