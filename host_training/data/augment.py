"""Augmentation: a declarative list of steps, each a small function on the sample as a whole.

The config names the steps in order (``[[AUGMENT.steps]]`` tables: ``name = "flip"`` plus
the step's parameters); :class:`Augmenter` runs them on ``(image, keypoints, mask)`` and
always ends with an image of the network's input size.

Two kinds of step:

* ``pixel`` (the default): ``fn(image, keypoints, mask, rng, **params) -> (image, keypoints,
  mask)``. ``image`` is uint8 HxWx3 RGB, ``keypoints`` (N, K, 3) float32 ``x, y, v`` in that
  image's pixels, ``mask`` uint8 HxW (255 = the loss counts, 0 = ignore) or ``None`` when
  every pixel counts. A user adds one with::

      @register_step("posterize")
      def posterize(image, keypoints, mask, rng, bits=4):
          return image & (0xFF << (8 - bits)) & 0xFF, keypoints, mask

* ``affine`` (geometry): ``fn(frame, rng, **params)`` describes a transform with
  ``frame.apply(matrix, size)``; consecutive affine steps are folded into one matrix and
  the image and mask are warped once (one ``cv2.warpAffine`` each), keypoints exactly.

Pixel centres are at integer coordinates, as in :mod:`openpose_plus.edge.geometry`.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from openpose_plus.edge.skeleton import Skeleton

__all__ = ["register_step", "registered_steps", "check_step", "Augmenter", "Frame", "Step"]


@dataclass(frozen=True)
class Step:
    name: str
    fn: Callable[..., Any]
    kind: str                       # "pixel" or "affine"
    params: Dict[str, Any]          # parameter -> default
    check: Optional[Callable[[Dict[str, Any]], None]] = None


_REGISTRY: Dict[str, Step] = {}


def register_step(name: Optional[str] = None, kind: str = "pixel",
                  check: Optional[Callable[[Dict[str, Any]], None]] = None) -> Callable[[Callable], Callable]:
    """Decorator: make ``fn`` available to configs as ``name`` (default: the function's name).

    ``check(params)`` may raise ValueError for bad parameter values, so a config is refused
    when it is loaded, not hours into training.
    """
    if kind not in ("pixel", "affine"):
        raise ValueError("step kind must be 'pixel' or 'affine', got %r" % (kind,))

    def wrap(fn: Callable) -> Callable:
        step_name = name or fn.__name__
        sig = inspect.signature(fn)
        fixed = 4 if kind == "pixel" else 2  # (image, keypoints, mask, rng) or (frame, rng)
        names = list(sig.parameters)
        if len(names) < fixed:
            raise TypeError("augmentation step %r must take %s first" % (
                step_name, "(image, keypoints, mask, rng)" if kind == "pixel" else "(frame, rng)"))
        params = {}
        for p in list(sig.parameters.values())[fixed:]:
            if p.default is inspect.Parameter.empty:
                raise TypeError("augmentation step %r: parameter %r needs a default" % (step_name, p.name))
            params[p.name] = p.default
        _REGISTRY[step_name] = Step(step_name, fn, kind, params, check)
        return fn

    return wrap


def registered_steps() -> Dict[str, Step]:
    return dict(_REGISTRY)


def check_step(spec: Mapping[str, Any]) -> Step:
    """Validate one ``{name = ..., params...}`` table; ValueError says what is wrong."""
    name = spec.get("name")
    if not isinstance(name, str):
        raise ValueError("needs name = \"<step>\" (known: %s)" % ", ".join(sorted(_REGISTRY)))
    step = _REGISTRY.get(name)
    if step is None:
        raise ValueError("unknown step %r (known: %s)" % (name, ", ".join(sorted(_REGISTRY))))
    params = {k: v for k, v in spec.items() if k != "name"}
    for k, v in params.items():
        if k not in step.params:
            raise ValueError("%s: unknown parameter %r (known: %s)" % (name, k, ", ".join(step.params) or "none"))
        default = step.params[k]
        ok = True
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        elif isinstance(default, str):
            ok = isinstance(v, str)
        if not ok:
            raise ValueError("%s.%s: must be like %r, got %r" % (name, k, default, v))
    if step.check is not None:
        merged = dict(step.params)
        merged.update(params)
        try:
            step.check(merged)
        except ValueError as exc:
            raise ValueError("%s: %s" % (name, exc)) from None
    return step


# -- the frame affine steps describe ---------------------------------------------------

class Frame(object):
    """The sample as geometry: the current canvas size, the keypoints on it, and the pending
    3x3 matrix from the source image to it. ``apply`` composes; nothing is warped yet."""

    __slots__ = ("size", "keypoints", "matrix", "input_size", "skeleton")

    def __init__(self, size: Tuple[int, int], keypoints: np.ndarray, input_size: Tuple[int, int],
                 skeleton: Skeleton) -> None:
        self.size = (int(size[0]), int(size[1]))      # (w, h)
        self.keypoints = keypoints                     # (N, K, 3), current canvas pixels
        self.matrix = np.eye(3, dtype=np.float64)
        self.input_size = input_size                   # (w, h) the network wants
        self.skeleton = skeleton

    def apply(self, m: np.ndarray, size: Optional[Tuple[int, int]] = None) -> None:
        """Transform by ``m`` (2x3 or 3x3, current canvas -> new canvas) of ``size`` (w, h)."""
        m3 = np.eye(3, dtype=np.float64)
        m3[:2] = np.asarray(m, np.float64)[:2]
        self.matrix = m3 @ self.matrix
        if self.keypoints.size:
            xy = self.keypoints[..., :2].astype(np.float64)
            out = xy @ m3[:2, :2].T + m3[:2, 2]
            self.keypoints = self.keypoints.copy()
            self.keypoints[..., :2] = out
        if size is not None:
            w, h = int(size[0]), int(size[1])
            if w <= 0 or h <= 0:
                raise ValueError("an augmentation step asked for an empty canvas %dx%d" % (w, h))
            self.size = (w, h)

    def permute_parts(self, perm: Sequence[int]) -> None:
        """Part ``i`` becomes part ``perm[i]`` (mirroring swaps left and right)."""
        if self.keypoints.size:
            out = np.empty_like(self.keypoints)
            out[:, list(perm)] = self.keypoints
            self.keypoints = out


def _scale_about_origin(s: float) -> np.ndarray:
    # Pixel centres: a scaled image's pixel u maps to (u + 0.5) * s - 0.5 (as Letterbox).
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5]])


# -- built-in steps ------------------------------------------------------------------------

def _check_scale(p: Dict[str, Any]) -> None:
    if not 0 < p["min_scale"] <= p["max_scale"]:
        raise ValueError("needs 0 < min_scale <= max_scale, got %r, %r" % (p["min_scale"], p["max_scale"]))
    _check_prob(p)


def _check_prob(p: Dict[str, Any]) -> None:
    if "prob" in p and not 0.0 <= p["prob"] <= 1.0:
        raise ValueError("prob must be between 0 and 1, got %r" % (p["prob"],))


@register_step("random_scale", kind="affine", check=_check_scale)
def random_scale(frame: Frame, rng: np.random.Generator, min_scale: float = 0.6, max_scale: float = 1.1,
                 prob: float = 1.0) -> None:
    """Scale the whole canvas by a factor drawn uniformly from [min_scale, max_scale]."""
    if rng.random() >= prob:
        return
    s = float(rng.uniform(min_scale, max_scale))
    w, h = frame.size
    frame.apply(_scale_about_origin(s), (max(1, int(round(w * s))), max(1, int(round(h * s)))))


def _check_rotate(p: Dict[str, Any]) -> None:
    if not 0 <= p["max_degrees"] <= 180:
        raise ValueError("max_degrees must be 0..180, got %r" % (p["max_degrees"],))
    _check_prob(p)


@register_step("random_rotate", kind="affine", check=_check_rotate)
def random_rotate(frame: Frame, rng: np.random.Generator, max_degrees: float = 30.0, prob: float = 1.0) -> None:
    """Rotate about the canvas centre by up to ``max_degrees``; the canvas grows to hold all of it."""
    if rng.random() >= prob or max_degrees == 0:
        return
    deg = float(rng.uniform(-max_degrees, max_degrees))
    w, h = frame.size
    c, s = abs(math.cos(math.radians(deg))), abs(math.sin(math.radians(deg)))
    nw, nh = int(math.ceil(w * c + h * s)), int(math.ceil(w * s + h * c))
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), deg, 1.0)
    m[0, 2] += (nw - w) / 2.0
    m[1, 2] += (nh - h) / 2.0
    frame.apply(m, (nw, nh))


def _check_crop(p: Dict[str, Any]) -> None:
    if p["center"] not in ("person", "random", "center"):
        raise ValueError("center must be person | random | center, got %r" % (p["center"],))
    if p["jitter"] < 0:
        raise ValueError("jitter must be zero or more, got %r" % (p["jitter"],))


@register_step("crop_pad", kind="affine", check=_check_crop)
def crop_pad(frame: Frame, rng: np.random.Generator, center: str = "person", jitter: float = 40.0) -> None:
    """Cut (or pad) the canvas to the input size around a centre: a random labelled person's
    (as OpenPose), a random point, or the canvas centre; moved by up to ``jitter`` pixels."""
    w, h = frame.size
    iw, ih = frame.input_size
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    kp = frame.keypoints
    if center == "person" and kp.size:
        labelled = kp[..., 2] > 0
        people = np.flatnonzero(labelled.any(axis=1))
        if people.size:
            p = int(people[rng.integers(0, people.size)])
            cx, cy = (float(v) for v in kp[p, labelled[p], :2].mean(axis=0))
    elif center == "random":
        cx, cy = float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1))
    if jitter > 0:
        cx += float(rng.uniform(-jitter, jitter))
        cy += float(rng.uniform(-jitter, jitter))
    tx, ty = (iw - 1) / 2.0 - cx, (ih - 1) / 2.0 - cy
    frame.apply(np.array([[1.0, 0.0, round(tx)], [0.0, 1.0, round(ty)]]), (iw, ih))


@register_step("flip", kind="affine", check=_check_prob)
def flip(frame: Frame, rng: np.random.Generator, prob: float = 0.5) -> None:
    """Mirror left-right, and swap left and right parts (a mirrored left wrist is a right wrist)."""
    if rng.random() >= prob:
        return
    w, _ = frame.size
    frame.apply(np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0]]))
    frame.permute_parts(frame.skeleton.flip_permutation())


def _check_jitter(p: Dict[str, Any]) -> None:
    for k in ("brightness", "contrast", "saturation"):
        if not 0 <= p[k] < 1:
            raise ValueError("%s must be in [0, 1), got %r" % (k, p[k]))
    if not 0 <= p["hue"] <= 90:
        raise ValueError("hue must be 0..90 degrees, got %r" % (p["hue"],))
    _check_prob(p)


@register_step("color_jitter", check=_check_jitter)
def color_jitter(image: np.ndarray, keypoints: np.ndarray, mask: Optional[np.ndarray], rng: np.random.Generator,
                 brightness: float = 0.25, contrast: float = 0.25, saturation: float = 0.25, hue: float = 0.0,
                 prob: float = 1.0):
    """Random brightness, contrast and saturation as one 3x4 colour matrix (a single
    ``cv2.transform``, saturating to 0..255), then hue in degrees."""
    if rng.random() >= prob:
        return image, keypoints, mask
    b = 1.0 + rng.uniform(-brightness, brightness)
    c = 1.0 + rng.uniform(-contrast, contrast)
    s = 1.0 + rng.uniform(-saturation, saturation)
    # saturation: blend with the grey value (Rec. 601 weights, as cv2's RGB2GRAY);
    # contrast about mid-grey, then brightness: out = c * (sat(p) - 128) + 128 * b.
    grey = np.array([0.299, 0.587, 0.114], np.float32)
    m = s * np.eye(3, dtype=np.float32) + (1.0 - s) * np.tile(grey, (3, 1))
    matrix = np.concatenate([c * m, np.full((3, 1), 128.0 * (b - c), np.float32)], axis=1)
    image = cv2.transform(image, matrix)
    if hue > 0:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        shift = int(round(rng.uniform(-hue, hue) / 2.0))  # OpenCV hue is 0..179 (2 degrees a unit)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return image, keypoints, mask


def _check_blur(p: Dict[str, Any]) -> None:
    if not 0 < p["max_sigma"] <= 10:
        raise ValueError("max_sigma must be in (0, 10], got %r" % (p["max_sigma"],))
    _check_prob(p)


@register_step("blur", check=_check_blur)
def blur(image: np.ndarray, keypoints: np.ndarray, mask: Optional[np.ndarray], rng: np.random.Generator,
         prob: float = 0.3, max_sigma: float = 1.5):
    """Gaussian blur with a random sigma (out-of-focus or moving cameras)."""
    if rng.random() >= prob:
        return image, keypoints, mask
    sigma = float(rng.uniform(0.3, max_sigma))
    return cv2.GaussianBlur(image, (0, 0), sigma), keypoints, mask


# -- running the list --------------------------------------------------------------------

class Augmenter(object):
    """Runs configured steps; the result is always ``input_size`` (w, h).

    Without a ``crop_pad`` step the canvas is letterboxed into the input at the end.
    """

    def __init__(self, steps: Sequence[Mapping[str, Any]], skeleton: Skeleton, input_size: Tuple[int, int],
                 pad_value: int = 128) -> None:
        self.skeleton = skeleton
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.pad_value = int(pad_value)
        self.steps: List[Tuple[Step, Dict[str, Any]]] = []
        for i, spec in enumerate(steps):
            try:
                step = check_step(spec)
            except ValueError as exc:
                raise ValueError("AUGMENT.steps[%d]: %s" % (i, exc)) from None
            self.steps.append((step, {k: v for k, v in spec.items() if k != "name"}))

    def __call__(self, image: np.ndarray, keypoints: np.ndarray, mask: Optional[np.ndarray],
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """``(image, keypoints, mask)`` of the source -> the same at the input size."""
        h, w = image.shape[:2]
        frame = Frame((w, h), np.asarray(keypoints, np.float32), self.input_size, self.skeleton)
        for step, params in self.steps:
            if step.kind == "affine":
                step.fn(frame, rng, **params)
                continue
            image, mask = self._warp(image, mask, frame)
            image, kp, mask = step.fn(image, frame.keypoints, mask, rng, **params)
            h, w = image.shape[:2]
            frame = Frame((w, h), np.asarray(kp, np.float32), self.input_size, self.skeleton)
        if frame.size != self.input_size:
            self._letterbox(frame)
        image, mask = self._warp(image, mask, frame)
        return image, frame.keypoints, mask

    def _letterbox(self, frame: Frame) -> None:
        (w, h), (iw, ih) = frame.size, self.input_size
        s = min(iw / w, ih / h)
        m = _scale_about_origin(s)
        m[0, 2] += (iw - int(round(w * s))) // 2
        m[1, 2] += (ih - int(round(h * s))) // 2
        frame.apply(m, (iw, ih))

    def _warp(self, image: np.ndarray, mask: Optional[np.ndarray], frame: Frame):
        """Materialise the pending matrix: one warp of the image and one of the mask."""
        m = frame.matrix
        h, w = image.shape[:2]
        if frame.size == (w, h) and np.allclose(m, np.eye(3), atol=1e-9):
            return image, mask
        m2 = m[:2]
        # A large shrink samples sparsely with bilinear; shrink with INTER_AREA first.
        scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
        if scale < 0.5:
            f = 1.0 / math.floor(1.0 / scale)
            small = cv2.resize(image, (max(1, int(round(w * f))), max(1, int(round(h * f)))),
                               interpolation=cv2.INTER_AREA)
            sh, sw = small.shape[:2]
            pre = np.array([[sw / w, 0, 0.5 * sw / w - 0.5], [0, sh / h, 0.5 * sh / h - 0.5], [0, 0, 1]])
            m2 = (m @ np.linalg.inv(pre))[:2]
            image_src = small
        else:
            image_src = image
        out = cv2.warpAffine(image_src, m2, frame.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(self.pad_value,) * 3)
        if mask is not None:
            # Padding outside the source is plain background: the loss counts there.
            mask = cv2.warpAffine(mask, m[:2], frame.size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        frame.matrix = np.eye(3)
        return out, mask
