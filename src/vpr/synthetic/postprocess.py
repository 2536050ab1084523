"""The camera's response: exposure, colour cast, tone curve, vignetting, blur, noise, JPEG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from vpr.synthetic.appearance import Appearance
from vpr.synthetic.rng import rng_for


def develop(linear: np.ndarray, appearance: Appearance) -> Image.Image:
    """Turns linear RGB (H, W, 3) into an 8-bit picture as a camera would."""
    height, width, _ = linear.shape
    gain = appearance.exposure * np.asarray(appearance.colour_cast, dtype=np.float32)
    if appearance.time_of_day == "night":
        gain = gain * 2.2  # auto-exposure lifts dark scenes (and their noise)
    exposed = linear * gain
    # A soft shoulder instead of hard clipping keeps lit windows and lamps from saturating flat.
    toned = exposed / (1.0 + 0.25 * exposed)
    toned = np.clip(toned * 1.25, 0.0, 1.0) ** (1 / 2.2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    radius2 = ((xx + 0.5) / width - 0.5) ** 2 + ((yy + 0.5) / height - 0.5) ** 2
    toned = toned * (1.0 - 0.35 * radius2)[..., None]
    picture = Image.fromarray((toned * 255.0 + 0.5).astype(np.uint8))
    if appearance.blur > 0:
        picture = picture.filter(ImageFilter.GaussianBlur(appearance.blur))
    if appearance.noise_sigma > 0:
        rng = rng_for(appearance.salt, "noise")
        noisy = np.asarray(picture, dtype=np.float32)
        noisy = noisy + rng.normal(0.0, appearance.noise_sigma, noisy.shape)
        picture = Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
    return picture


def encode_jpeg(picture: Image.Image, quality: int) -> bytes:
    """JPEG bytes of a picture (deterministic for a given libjpeg)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()
