"""Images as users have them: EXIF orientation, non-square files (crop, pad, stretch), rectangular
resolutions, palette, 16-bit and transparent files, unreadable files, and the built-in DCGAN on
rectangular images. Every image is generated in ``tmp_path``; every expected value is exact."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from PIL import Image

from gancore.builtin.datasets import ImageFolderOptions, build_image_folder
from gancore.builtin.networks import (
    DCGANCriticOptions,
    DCGANGeneratorOptions,
    build_dcgan_critic,
    build_dcgan_generator,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _load(folder: Path, **options: object) -> torch.Tensor:
    """The first item's ``x`` of an image-folder over ``folder``, as 0..255 values."""
    dataset = build_image_folder(ImageFolderOptions(path=str(folder), **options), None)
    return ((dataset[0]["x"] + 1.0) * 127.5).round()  # exact: x = v / 127.5 - 1 in float32


def _chw(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` or ``[H, W]`` as float ``[C, H, W]``."""
    tensor = torch.from_numpy(pixels.astype(np.float32))
    return tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor.unsqueeze(0)


def _thirds(width: int, height: int) -> np.ndarray:
    """A ``height x width`` RGB image: red, green and blue vertical thirds."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    third = width // 3
    pixels[:, :third] = RED
    pixels[:, third : 2 * third] = GREEN
    pixels[:, 2 * third :] = BLUE
    return pixels


@attrs.frozen
class Context:
    data_shape: tuple[int, ...]
    input_shape: tuple[int, ...] | None = None


class TestExifOrientation:
    def test_orientation_tag_is_applied(self, tmp_path: Path) -> None:
        """A JPEG tagged Orientation 6 (rotate 90 degrees clockwise to view) loads upright: equal,
        pixel for pixel, to the same JPEG without the tag, rotated."""
        pixels = np.zeros((8, 16, 3), dtype=np.uint8)  # 8 tall, 16 wide, as stored
        pixels[:, :8] = (200, 40, 40)
        pixels[:4, 8:] = (40, 200, 40)
        exif = Image.Exif()
        exif[0x0112] = 6
        tagged, plain = tmp_path / "tagged", tmp_path / "plain"
        tagged.mkdir()
        plain.mkdir()
        Image.fromarray(pixels).save(tagged / "a.jpg", exif=exif, quality=95)
        Image.fromarray(pixels).save(plain / "a.jpg", quality=95)
        with Image.open(plain / "a.jpg") as stored:
            upright = np.array(stored.convert("RGB").transpose(Image.Transpose.ROTATE_270))
        assert upright.shape == (16, 8, 3)  # viewed: 16 tall, 8 wide
        loaded = _load(tagged, resolution=[16, 8])
        assert torch.equal(loaded, _chw(upright))
        # Without the tag the same request crops the stored (landscape) picture instead.
        assert not torch.equal(_load(plain, resolution=[16, 8]), loaded)


class TestFit:
    def test_crop_to_a_rectangle(self, tmp_path: Path) -> None:
        """fit 'crop' to 8x16 keeps the centred 8x16 box of a 8x24 image: columns 4..19, no
        resampling (4 red, 8 green, 4 blue columns)."""
        Image.fromarray(_thirds(24, 8)).save(tmp_path / "wide.png")
        loaded = _load(tmp_path, resolution=[8, 16])
        expected = _chw(_thirds(24, 8)[:, 4:20])
        assert loaded.shape == (3, 8, 16)
        assert torch.equal(loaded, expected)

    @pytest.mark.parametrize(("fill", "value"), [("black", 0.0), ("white", 255.0)])
    def test_pad_with_a_constant(self, tmp_path: Path, fill: str, value: float) -> None:
        """fit 'pad' letterboxes a 16x8 (wide) image into 16x16: rows 4..11 are the image, rows
        0..3 and 12..15 the fill."""
        Image.fromarray(_thirds(16, 8)).save(tmp_path / "wide.png")
        loaded = _load(tmp_path, resolution=16, fit="pad", pad_fill=fill)
        assert torch.equal(loaded[:, 4:12], _chw(_thirds(16, 8)))
        assert torch.all(loaded[:, :4] == value)
        assert torch.all(loaded[:, 12:] == value)

    def test_pad_with_the_edge(self, tmp_path: Path) -> None:
        """pad_fill 'edge' repeats the image's outermost rows: a tall image padded sideways repeats
        its first and last columns."""
        pixels = np.arange(16 * 8 * 3, dtype=np.uint8).reshape(16, 8, 3)  # 16 tall, 8 wide
        Image.fromarray(pixels).save(tmp_path / "tall.png")
        loaded = _load(tmp_path, resolution=16, fit="pad", pad_fill="edge")
        image = _chw(pixels)
        assert torch.equal(loaded[:, :, 4:12], image)
        assert torch.equal(loaded[:, :, :4], image[:, :, :1].expand(3, 16, 4))
        assert torch.equal(loaded[:, :, 12:], image[:, :, -1:].expand(3, 16, 4))

    def test_stretch_is_one_resize(self, tmp_path: Path) -> None:
        """fit 'stretch' is Pillow's Lanczos resize of the whole image, aspect ratio ignored."""
        Image.fromarray(_thirds(24, 8)).save(tmp_path / "wide.png")
        expected = np.array(
            Image.fromarray(_thirds(24, 8)).resize((8, 8), Image.Resampling.LANCZOS)
        )
        assert torch.equal(_load(tmp_path, resolution=8, fit="stretch"), _chw(expected))

    def test_old_crop_option_still_reads(self, tmp_path: Path) -> None:
        """'crop' keeps its meaning: 'none' is fit 'stretch', 'center' is fit 'crop'."""
        Image.fromarray(_thirds(24, 8)).save(tmp_path / "wide.png")
        assert ImageFolderOptions(path="x", crop="none").fit == "stretch"
        assert ImageFolderOptions(path="x", crop="center").fit == "crop"
        assert ImageFolderOptions(path="x").fit == "crop"  # the default: today's centre crop
        assert torch.equal(
            _load(tmp_path, resolution=8, crop="none"), _load(tmp_path, resolution=8, fit="stretch")
        )

    def test_option_errors(self) -> None:
        """Contradicting 'crop' and 'fit', a fill without padding and a non-power-of-two side are
        one-line errors naming the keys and the values given."""
        with pytest.raises(ValueError, match="disagrees") as exc:
            ImageFolderOptions(path="x", crop="none", fit="pad")
        assert str(exc.value) == (
            "image-folder: 'crop' = 'none' (fit 'stretch') disagrees with 'fit' = 'pad'; "
            "give 'fit' only"
        )
        with pytest.raises(ValueError, match="pad_fill") as exc:
            ImageFolderOptions(path="x", pad_fill="edge")
        assert (
            str(exc.value)
            == "image-folder: 'pad_fill' applies only to fit = 'pad' (got fit 'crop')"
        )
        with pytest.raises(ValueError, match="resolution") as exc:
            ImageFolderOptions(path="x", resolution=[16, 24])
        assert str(exc.value) == (
            "'resolution' must be a power of two in [8, 1024], or [height, width] with each a "
            "power of two in [8, 1024] (got [16, 24])"
        )

    def test_rectangular_resolution_from_a_run_file(self, tmp_path: Path) -> None:
        """A TOML array [height, width] becomes the dataset's shape (C, H, W)."""
        import gancore

        Image.fromarray(_thirds(24, 8)).save(tmp_path / "wide.png")
        document = {
            "data": {"name": "image-folder", "path": str(tmp_path), "resolution": [8, 32]},
            "generator": {"name": "dcgan"},
            "critic": {"name": "dcgan"},
        }
        registry, _ = gancore.load_registry(entry_points=False)
        dataset = gancore.parse_config(document, registry).data.build()
        assert dataset.shapes == {"x": (3, 8, 32)}
        assert dataset[0]["x"].shape == (3, 8, 32)


class TestModes:
    def test_palette_gives_colours_not_indices(self, tmp_path: Path) -> None:
        """A palette image loads as its palette's colours (RGB), and as their luma with
        channels = 1, not as the index values 0 and 1."""
        indices = np.zeros((8, 8), dtype=np.uint8)
        indices[:, 4:] = 1
        picture = Image.fromarray(indices, mode="P")
        picture.putpalette([*RED, *(0, 0, 200)] + [0] * (254 * 3))
        picture.save(tmp_path / "p.png")
        rgb = _load(tmp_path, resolution=8)
        assert rgb[:, 0, 0].tolist() == [255.0, 0.0, 0.0]
        assert rgb[:, 0, 7].tolist() == [0.0, 0.0, 200.0]
        gray = _load(tmp_path, resolution=8, channels=1)
        # ITU-R 601-2 luma in Pillow's fixed point: (255 * 19595 + 32768) >> 16 = 76
        assert gray[0, 0, 0].item() == 76.0
        assert gray[0, 0, 7].item() == float((200 * 7471 + 32768) >> 16)  # 23

    def test_16_bit_is_scaled_not_clipped(self, tmp_path: Path) -> None:
        """16-bit grayscale maps v to round(v / 257): 0, 1000, 25700, 65535 -> 0, 4, 100, 255
        (Pillow's own conversion would clip 1000 and above to 255)."""
        quadrants = np.array([[0, 1000], [25700, 65535]], dtype=np.uint16)
        Image.fromarray(quadrants.repeat(4, 0).repeat(4, 1)).save(tmp_path / "deep.png")
        with Image.open(tmp_path / "deep.png") as stored:
            assert stored.mode == "I;16"
        loaded = _load(tmp_path, resolution=8, channels=1)  # 8x8 already: no resampling
        assert [loaded[0, 0, 0].item(), loaded[0, 0, 7].item()] == [0.0, 4.0]
        assert [loaded[0, 7, 0].item(), loaded[0, 7, 7].item()] == [100.0, 255.0]

    @pytest.mark.parametrize(
        ("policy", "under_transparent"),
        [("drop", [200.0, 100.0, 0.0]), ("white", [255.0] * 3), ("black", [0.0] * 3)],
    )
    def test_alpha_policies(
        self, tmp_path: Path, policy: str, under_transparent: list[float]
    ) -> None:
        """A transparent pixel shows its colour ('drop') or the background ('white', 'black');
        an opaque one is unchanged."""
        pixels = np.zeros((8, 8, 4), dtype=np.uint8)
        pixels[:, :4] = (200, 100, 0, 0)  # transparent
        pixels[:, 4:] = (10, 20, 30, 255)  # opaque
        Image.fromarray(pixels, mode="RGBA").save(tmp_path / "a.png")
        loaded = _load(tmp_path, resolution=8, alpha=policy)
        assert loaded[:, 0, 0].tolist() == under_transparent
        assert loaded[:, 0, 7].tolist() == [10.0, 20.0, 30.0]

    def test_gray_with_alpha_over_white(self, tmp_path: Path) -> None:
        """LA images composite like RGBA ones: transparent -> 255, opaque -> the gray value."""
        pixels = np.zeros((8, 8, 2), dtype=np.uint8)
        pixels[:, :4] = (90, 0)
        pixels[:, 4:] = (90, 255)
        Image.fromarray(pixels, mode="LA").save(tmp_path / "la.png")
        loaded = _load(tmp_path, resolution=8, channels=1, alpha="white")
        assert [loaded[0, 0, 0].item(), loaded[0, 0, 7].item()] == [255.0, 90.0]

    def test_palette_transparency_over_black(self, tmp_path: Path) -> None:
        """A palette image's transparent index composites over the background too."""
        indices = np.zeros((8, 8), dtype=np.uint8)
        indices[:, 4:] = 1
        picture = Image.fromarray(indices, mode="P")
        picture.putpalette([*RED, *GREEN] + [0] * (254 * 3))
        picture.save(tmp_path / "p.png", transparency=0)
        with Image.open(tmp_path / "p.png") as stored:
            assert (stored.mode, stored.info["transparency"]) == ("P", 0)
        loaded = _load(tmp_path, resolution=8, alpha="black")
        assert loaded[:, 0, 0].tolist() == [0.0, 0.0, 0.0]
        assert loaded[:, 0, 7].tolist() == [0.0, 255.0, 0.0]

    def test_alpha_error(self, tmp_path: Path) -> None:
        """alpha = 'error' refuses the file, naming it and the way out."""
        Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(tmp_path / "a.png")
        with pytest.raises(ValueError, match="transparency") as exc:
            _load(tmp_path, resolution=8, alpha="error")
        assert str(exc.value) == (
            f"image-folder: '{tmp_path / 'a.png'}' has transparency (mode RGBA) and alpha = "
            "'error'; set alpha = 'drop', 'white' or 'black'"
        )

    def test_transparency_is_reported_once(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Two transparent files: one log line, naming the first and the policy; both counted."""
        for name in ("a.png", "b.png"):
            Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(tmp_path / name)
        Image.new("RGB", (8, 8)).save(tmp_path / "c.png")
        dataset = build_image_folder(ImageFolderOptions(path=str(tmp_path), resolution=8), None)
        with caplog.at_level(logging.WARNING, logger="gancore.data"):
            for index in range(len(dataset)):
                dataset[index]
        assert [r.getMessage() for r in caplog.records] == [
            f"image-folder: '{tmp_path / 'a.png'}' has transparency (mode RGBA): its alpha is "
            "ignored (the colours under transparent pixels show) (alpha = 'drop'); other files "
            "with transparency are handled alike and not reported"
        ]
        assert dataset.alpha_files == 2

    @pytest.mark.parametrize("content", [b"not an image at all", "truncated"])
    def test_unreadable_file_is_named(self, tmp_path: Path, content: bytes | str) -> None:
        """A file Pillow cannot decode (garbage, or a PNG cut short) is a one-line error naming
        it."""
        path = tmp_path / "bad.png"
        if content == "truncated":
            Image.fromarray(_thirds(24, 24)).save(path)
            path.write_bytes(path.read_bytes()[:60])
        else:
            assert isinstance(content, bytes)
            path.write_bytes(content)
        with pytest.raises(ValueError, match="cannot read") as exc:
            _load(tmp_path, resolution=8)
        message = str(exc.value)
        assert message.startswith(f"image-folder: cannot read '{path}': ")
        assert "\n" not in message


class TestRectangularDCGAN:
    def test_generator_and_critic_take_rectangular_images(self) -> None:
        """16x32 images: the generator makes [N, 3, 16, 32], the critic scores them, and its
        features (4x8 maps) score the same as its forward."""
        torch.manual_seed(0)
        generator = build_dcgan_generator(DCGANGeneratorOptions(latent_dim=8), Context((3, 16, 32)))
        critic = build_dcgan_critic(DCGANCriticOptions(channels=8), Context((3, 16, 32)))
        images = generator(torch.randn(2, 8))
        assert images.shape == (2, 3, 16, 32)
        critic.eval()
        scores = critic(images)
        assert scores.shape == (2,)
        assert critic.feature_dim == 16 * 4 * 8  # 16 maps at the 4x8 base: 8 * (16 / 2) / 4
        assert torch.allclose(critic.score(critic.features(images)), scores, atol=1e-6)
        with pytest.raises(ValueError, match=re.escape("expected images [N, 3, 16, 32]")):
            critic(torch.zeros(1, 3, 32, 16))

    def test_tall_images(self) -> None:
        """64x8 (height 64, width 8) works too: the base map is 32x4."""
        generator = build_dcgan_generator(DCGANGeneratorOptions(latent_dim=4), Context((1, 64, 8)))
        assert generator(torch.randn(3, 4)).shape == (3, 1, 64, 8)
        critic = build_dcgan_critic(DCGANCriticOptions(channels=4), Context((1, 64, 8)))
        assert critic(torch.zeros(3, 1, 64, 8)).shape == (3,)

    def test_unsupported_shape_is_one_line(self) -> None:
        """A side that is not a power of two in [8, 128] is refused, naming the network and the
        shape."""
        with pytest.raises(ValueError, match="power of two") as exc:
            build_dcgan_critic(DCGANCriticOptions(), Context((3, 20, 32)))
        assert str(exc.value) == (
            "dcgan critic: image height and width must each be a power of two from 8 to 128 "
            "(got 3x20x32)"
        )

    def test_from_a_rectangular_image_folder(self, tmp_path: Path) -> None:
        """The dataset's (C, H, W) builds a generator whose samples have that shape."""
        Image.fromarray(_thirds(48, 12)).save(tmp_path / "wide.png")
        dataset = build_image_folder(
            ImageFolderOptions(path=str(tmp_path), resolution=[8, 32]), None
        )
        generator = build_dcgan_generator(DCGANGeneratorOptions(), Context(dataset.shapes["x"]))
        assert generator(torch.randn(1, 100)).shape == (1, *dataset.shapes["x"])
