"""Viewing conditions: time of day, weather, season, camera response, occluders, city epoch.

An :class:`Appearance` is plain data drawn once per image by :func:`sample_appearance`; the
renderer turns it into a :class:`Lighting` (sky colours, sun, ambient light, window and lamp
light) with :func:`lighting_for`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIMES_OF_DAY = ("day", "sunset", "night")
SEASONS = ("spring", "summer", "autumn", "winter")
# Month written in the timestamp for each season (northern-hemisphere style).
SEASON_MONTHS = {"spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11),
                 "winter": (12, 1, 2)}
HOURS = {"day": (9, 16), "sunset": (18, 19), "night": (21, 23)}


@dataclass(frozen=True)
class Appearance:
    """Everything about an image that is not the place or the viewpoint."""

    time_of_day: str = "day"  # one of TIMES_OF_DAY
    sun_azimuth: float = 150.0  # compass degrees
    cloudiness: float = 0.3  # 0 clear .. 1 overcast
    fog_distance: float = float("inf")  # metres at which fog hides 63% of the light
    haze: float = 0.0  # 0 .. 1, distance fading towards a pale sky colour
    exposure: float = 1.0  # gain applied to linear light
    colour_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_sigma: float = 1.5  # sensor noise, in 8-bit levels
    jpeg_quality: int = 90
    blur: float = 0.0  # Gaussian blur radius in output pixels
    season: str = "summer"  # one of SEASONS: the colour of the trees
    occluders: float = 1.0  # density of vehicles and pedestrians (0 = empty streets)
    epoch: int = 0  # 0: the city as first built; 1: some facades repainted, signs changed
    salt: int = 0  # per-image seed for lit windows, clouds, vehicles, noise


@dataclass(frozen=True)
class Lighting:
    """Colours and light levels derived from an :class:`Appearance` (linear RGB)."""

    sky_zenith: np.ndarray
    sky_horizon: np.ndarray
    sun_direction: np.ndarray  # (2,) horizontal unit vector towards the sun
    sun_colour: np.ndarray  # diffuse light on a facade facing the sun
    ambient: np.ndarray  # light on every facade
    night: bool
    window_lit_rate: float
    sign_lit_rate: float
    lamp_strength: float
    fog_colour: np.ndarray
    fog_distance: float
    cloud_colour: np.ndarray
    foliage: np.ndarray  # (3,) tree crown colour for the season
    foliage_density: float  # 0 bare branches .. 1 full crown


def lighting_for(appearance: Appearance) -> Lighting:
    """The light and colours of an appearance."""
    azimuth = np.radians(appearance.sun_azimuth)
    sun_direction = np.array([np.sin(azimuth), np.cos(azimuth)], dtype=np.float32)
    overcast = appearance.cloudiness
    if appearance.time_of_day == "day":
        zenith, horizon = [0.20, 0.38, 0.78], [0.70, 0.78, 0.90]
        sun, ambient = np.array([1.0, 0.95, 0.85]) * (1 - 0.7 * overcast), [0.55, 0.58, 0.62]
        night, lit, signs, lamps = False, 0.0, 0.0, 0.0
        cloud = [0.92, 0.92, 0.94]
    elif appearance.time_of_day == "sunset":
        zenith, horizon = [0.18, 0.18, 0.40], [1.00, 0.55, 0.25]
        sun, ambient = np.array([0.95, 0.50, 0.22]) * (1 - 0.6 * overcast), [0.28, 0.24, 0.30]
        night, lit, signs, lamps = False, 0.12, 0.4, 0.25
        cloud = [0.85, 0.50, 0.40]
    elif appearance.time_of_day == "night":
        zenith, horizon = [0.005, 0.008, 0.025], [0.05, 0.045, 0.05]
        sun, ambient = np.zeros(3), [0.018, 0.020, 0.030]
        night, lit, signs, lamps = True, 0.35, 0.8, 1.0
        cloud = [0.06, 0.05, 0.06]
    else:
        raise ValueError(f"unknown time of day {appearance.time_of_day!r}; "
                         f"expected one of {TIMES_OF_DAY}")
    zenith = np.array(zenith) * (1 - overcast) + np.array(horizon) * 0.8 * overcast
    fog_colour = {"day": [0.72, 0.74, 0.76], "sunset": [0.60, 0.45, 0.40],
                  "night": [0.05, 0.05, 0.055]}[appearance.time_of_day]
    fog_distance = appearance.fog_distance
    if appearance.haze > 0 and not np.isfinite(fog_distance):
        # Haze is fog at a long distance, tinted like the horizon.
        fog_distance = 600.0 / appearance.haze
        fog_colour = horizon
    foliage, density = {
        "spring": ([0.30, 0.55, 0.18], 0.8),
        "summer": ([0.10, 0.30, 0.08], 1.0),
        "autumn": ([0.65, 0.32, 0.06], 0.75),
        "winter": ([0.25, 0.20, 0.15], 0.0),
    }[appearance.season]
    as_array = lambda values: np.asarray(values, dtype=np.float32)  # noqa: E731
    return Lighting(
        sky_zenith=as_array(zenith),
        sky_horizon=as_array(horizon),
        sun_direction=sun_direction,
        sun_colour=as_array(sun),
        ambient=as_array(ambient),
        night=night,
        window_lit_rate=lit,
        sign_lit_rate=signs,
        lamp_strength=lamps,
        fog_colour=as_array(fog_colour),
        fog_distance=float(fog_distance),
        cloud_colour=as_array(cloud),
        foliage=as_array(foliage),
        foliage_density=density,
    )


@dataclass(frozen=True)
class AppearanceProfile:
    """How varied the images of one role are (training, database, queries)."""

    times: dict[str, float]  # time of day -> probability
    fog_rate: float = 0.0
    haze_max: float = 0.0
    exposure_spread: float = 0.0  # log2 stops
    cast_spread: float = 0.0
    jpeg_quality: tuple[int, int] = (85, 95)
    blur_rate: float = 0.0
    seasons: tuple[str, ...] = ("summer",)
    occluders: tuple[float, float] = (0.3, 1.0)
    epochs: tuple[int, ...] = (0,)


PROFILES = {
    # Training images of a place vary in everything, so a model can learn invariance.
    "train": AppearanceProfile(
        times={"day": 0.65, "sunset": 0.2, "night": 0.15}, fog_rate=0.1, haze_max=0.6,
        exposure_spread=0.5, cast_spread=0.08, jpeg_quality=(45, 95), blur_rate=0.08,
        seasons=SEASONS, occluders=(0.0, 2.0), epochs=(0, 1),
    ),
    # Reference images: daytime, clear, summer, the city as first built.
    "database": AppearanceProfile(
        times={"day": 1.0}, haze_max=0.2, exposure_spread=0.15, cast_spread=0.03,
        jpeg_quality=(85, 95), occluders=(0.2, 0.8),
    ),
    # Queries: another traversal, later (epoch 1), any season and weather.
    "query": AppearanceProfile(
        times={"day": 0.7, "sunset": 0.2, "night": 0.1}, fog_rate=0.2, haze_max=0.7,
        exposure_spread=0.6, cast_spread=0.1, jpeg_quality=(40, 90), blur_rate=0.2,
        seasons=SEASONS, occluders=(0.5, 2.0), epochs=(1,),
    ),
}


def sample_appearance(
    rng: np.random.Generator, profile: AppearanceProfile, time_of_day: str | None = None
) -> Appearance:
    """Draws the conditions of one image.

    Args:
        rng: the image's own random stream.
        profile: the role's spread of conditions.
        time_of_day: forces the time of day (Tokyo-like query thirds); drawn when None.
    """
    names = list(profile.times)
    drawn = names[rng.choice(len(names), p=np.array([profile.times[n] for n in names]))]
    time_of_day = time_of_day or drawn
    foggy = rng.random() < profile.fog_rate
    exposure = 2.0 ** rng.uniform(-profile.exposure_spread, profile.exposure_spread)
    cast = 1.0 + rng.uniform(-profile.cast_spread, profile.cast_spread, 3)
    noise = rng.uniform(0.5, 2.5) * (3.0 if time_of_day == "night" else 1.0)
    return Appearance(
        time_of_day=time_of_day,
        sun_azimuth=float(rng.uniform(0, 360)),
        cloudiness=float(rng.uniform(0.0, 0.9)),
        fog_distance=float(rng.uniform(25.0, 90.0)) if foggy else float("inf"),
        haze=float(rng.uniform(0.0, profile.haze_max)),
        exposure=float(exposure),
        colour_cast=tuple(float(c) for c in cast),
        noise_sigma=float(noise),
        jpeg_quality=int(rng.integers(profile.jpeg_quality[0], profile.jpeg_quality[1] + 1)),
        blur=float(rng.uniform(0.4, 1.0)) if rng.random() < profile.blur_rate else 0.0,
        season=str(profile.seasons[rng.integers(len(profile.seasons))]),
        occluders=float(rng.uniform(*profile.occluders)),
        epoch=int(profile.epochs[rng.integers(len(profile.epochs))]),
        salt=int(rng.integers(0, 2**31 - 1)),
    )
